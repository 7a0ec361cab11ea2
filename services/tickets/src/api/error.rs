//! How a tickets error reaches the wire: its place in the API's
//! vocabulary, stated once; crm-rpc builds the status.

use crm_rpc::{DomainError, FieldViolation, RpcError};

use crate::domain::TicketError;
use crate::wire::field_violation;

impl DomainError for TicketError {
    const DOMAIN: &'static str = "crm.tickets";

    fn into_rpc(self) -> RpcError {
        match self {
            TicketError::Invalid(vs) => {
                RpcError::InvalidArgument(vs.into_iter().map(field_violation).collect())
            }
            TicketError::NotFound { resource, id } => RpcError::NotFound { resource, id },
            TicketError::Stale => RpcError::Aborted {
                reason: "ETAG_MISMATCH",
                message: "the record was changed since it was read".into(),
            },
            TicketError::Forbidden(reason, message) => {
                RpcError::PermissionDenied { reason, message }
            }
            TicketError::Precondition(reason, message) => RpcError::FailedPrecondition {
                reason,
                message,
                violations: vec![],
            },
            TicketError::RequestIdReused => RpcError::InvalidArgument(vec![FieldViolation::new(
                "request_id",
                "already used for a different request",
            )]),
            TicketError::Store(e) => crm_service::storage_error(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticket_errors_keep_their_codes_and_reasons() {
        assert_eq!(TicketError::DOMAIN, "crm.tickets");
        assert!(matches!(
            TicketError::precondition("REOPEN_WINDOW_PASSED", "late").into_rpc(),
            RpcError::FailedPrecondition {
                reason: "REOPEN_WINDOW_PASSED",
                ..
            }
        ));
        assert!(matches!(
            TicketError::Stale.into_rpc(),
            RpcError::Aborted {
                reason: "ETAG_MISMATCH",
                ..
            }
        ));
    }
}
