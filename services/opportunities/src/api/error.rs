//! How an opportunities error reaches the wire: its place in the API's
//! vocabulary, stated once; crm-rpc builds the status.

use crate::domain::{OpportunityError, resource};
use crate::wire::field_violation;
use crm_rpc::{DomainError, FieldViolation, PreconditionViolation, RpcError};

impl DomainError for OpportunityError {
    const DOMAIN: &'static str = "crm.opportunities";

    fn into_rpc(self) -> RpcError {
        match self {
            OpportunityError::Invalid(vs) => {
                RpcError::InvalidArgument(vs.into_iter().map(field_violation).collect())
            }
            OpportunityError::NotFound { resource, id } => RpcError::NotFound { resource, id },
            OpportunityError::Stale => RpcError::Aborted {
                reason: "ETAG_MISMATCH",
                message: "the record was changed since it was read".into(),
            },
            OpportunityError::Forbidden(reason, message) => {
                RpcError::PermissionDenied { reason, message }
            }
            OpportunityError::DuplicateAccount(existing_id) => RpcError::AlreadyExists {
                reason: "DUPLICATE_ACCOUNT",
                resource: resource::ACCOUNT,
                message: format!("an account with this name exists: {existing_id}"),
                existing_id,
            },
            OpportunityError::Precondition(reason, message) => RpcError::FailedPrecondition {
                reason,
                message,
                violations: vec![],
            },
            OpportunityError::GateNotMet(missing) => RpcError::FailedPrecondition {
                reason: "STAGE_GATE_NOT_MET",
                message: format!(
                    "missing: {}",
                    missing
                        .iter()
                        .map(|m| m.subject.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                violations: missing
                    .into_iter()
                    .map(|m| PreconditionViolation {
                        kind: m.kind,
                        subject: m.subject,
                        description: m.description,
                    })
                    .collect(),
            },
            OpportunityError::RequestIdReused => {
                RpcError::InvalidArgument(vec![FieldViolation::new(
                    "request_id",
                    "already used for a different request",
                )])
            }
            OpportunityError::Store(e) => crm_service::storage_error(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Missing;

    #[test]
    fn opportunity_errors_keep_their_codes_and_reasons() {
        assert_eq!(OpportunityError::DOMAIN, "crm.opportunities");
        assert!(matches!(
            OpportunityError::Stale.into_rpc(),
            RpcError::Aborted {
                reason: "ETAG_MISMATCH",
                ..
            }
        ));
        assert!(matches!(
            OpportunityError::DuplicateAccount("a1".into()).into_rpc(),
            RpcError::AlreadyExists { reason: "DUPLICATE_ACCOUNT", existing_id, .. } if existing_id == "a1"
        ));
        let gate = OpportunityError::GateNotMet(vec![
            Missing::field("amount", "required".into()),
            Missing::field("close_date", "required".into()),
        ]);
        assert!(matches!(
            gate.into_rpc(),
            RpcError::FailedPrecondition { reason: "STAGE_GATE_NOT_MET", violations, .. }
                if violations.len() == 2
        ));
        assert!(matches!(
            OpportunityError::RequestIdReused.into_rpc(),
            RpcError::InvalidArgument(vs) if vs[0].field == "request_id"
        ));
    }
}
