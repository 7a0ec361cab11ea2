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
