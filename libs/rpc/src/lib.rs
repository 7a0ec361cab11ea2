//! gRPC conventions shared by every service's `api` layer.
//!
//! - [`RpcError`]: the vocabulary of failures every service maps its domain
//!   errors into, turned into a `tonic::Status` with google.rpc details in
//!   exactly one place ([`RpcError::into_status`]).
//! - [`paging`]: page sizes and opaque page tokens bound to query and tenant.
//! - [`fields`]: field masks, timestamps, money and request digests.

mod error;
pub mod fields;
pub mod paging;

pub use error::{FieldViolation, PreconditionViolation, RpcError};

use crm_proto::crm::common::v1 as common;

/// An audit trail entry as every service's `ListAuditEntries` returns it.
pub fn audit_entry(e: crm_types::AuditEntry) -> common::AuditEntry {
    common::AuditEntry {
        id: e.id,
        subject_id: e.subject_id,
        action: e.action,
        actor: e.actor,
        time: Some(fields::timestamp(e.time)),
        changes: e
            .changes
            .into_iter()
            .map(|c| common::FieldChange {
                field: c.field,
                old_value: c.old,
                new_value: c.new,
            })
            .collect(),
        reason: e.reason,
    }
}
