//! The domain kernel shared by the services: value types every service's
//! rules speak in. Plain Rust, no gRPC, no SQL; each service's `wire` maps
//! them from and to `crm.common.v1` messages.

mod actor;
mod change;
mod etag;
mod money;
mod role;

pub use actor::{Actor, Violation};
pub use change::{AuditEntry, Change, FieldChange};
pub use etag::Etag;
pub use money::{Date, Money};
pub use role::{ParseRoleError, Role};

/// A new record id: a UUIDv7, so ids sort by creation time and keyset
/// pages by id come out newest or oldest first.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Now, in Unix microseconds.
pub fn now_micros() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(now.as_micros()).unwrap_or(i64::MAX)
}
