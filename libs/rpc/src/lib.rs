//! gRPC conventions shared by every service's `api` layer.
//!
//! - [`RequestContext`]: the caller, tenant, time, method and request id of
//!   a request, read the same way by every handler ([`DomainError::handle`]).
//! - [`DomainError`]: how a service's error enum maps into [`RpcError`],
//!   which becomes a `tonic::Status` with google.rpc details in exactly one
//!   place ([`RpcError::into_status`]).
//! - [`paging`]: page sizes and opaque page tokens bound to query and tenant.
//! - [`fields`]: field masks, timestamps, money and request digests.
//! - ids, opaque etags and audit entries ([`required_id`], [`etag`],
//!   [`audit_entry`]).

mod context;
mod domain;
mod error;
pub mod fields;
mod handler;
pub mod paging;
mod resource;

pub use context::{RequestContext, RequestId};
pub use domain::DomainError;
pub use error::{FieldViolation, PreconditionViolation, RpcError};
pub use handler::Refusal;
pub use resource::{audit_entry, etag, required_id};
