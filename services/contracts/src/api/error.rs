//! How a contracts error reaches the wire: its place in the API's
//! vocabulary, stated once; crm-rpc builds the status.

use crm_rpc::{DomainError, FieldViolation, PreconditionViolation, RpcError};

use crate::domain::{ContractError, resource};
use crate::wire::field_violation;

impl DomainError for ContractError {
    const DOMAIN: &'static str = "crm.contracts";

    fn into_rpc(self) -> RpcError {
        match self {
            ContractError::Invalid(vs) => {
                RpcError::InvalidArgument(vs.into_iter().map(field_violation).collect())
            }
            ContractError::NotFound { resource, id } => RpcError::NotFound { resource, id },
            ContractError::Stale => RpcError::Aborted {
                reason: "ETAG_MISMATCH",
                message: "the record was changed since it was read".into(),
            },
            ContractError::Forbidden(reason, message) => {
                RpcError::PermissionDenied { reason, message }
            }
            ContractError::Precondition(reason, message) => RpcError::FailedPrecondition {
                reason,
                message,
                violations: vec![],
            },
            ContractError::Incomplete { reason, missing } => RpcError::FailedPrecondition {
                reason,
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
                        kind: "FIELD".into(),
                        subject: m.subject,
                        description: m.description,
                    })
                    .collect(),
            },
            ContractError::Exists(existing_id) => RpcError::AlreadyExists {
                reason: "CONTRACT_EXISTS",
                resource: resource::CONTRACT,
                message: format!(
                    "the opportunity has contract {existing_id}; amend it with AmendContract"
                ),
                existing_id,
            },
            ContractError::Unavailable(message) => RpcError::Unavailable {
                reason: "OPPORTUNITIES_UNAVAILABLE",
                message,
            },
            ContractError::Remote { code, message } => match tonic::Code::from(code) {
                tonic::Code::InvalidArgument => {
                    RpcError::InvalidArgument(vec![FieldViolation::new(
                        "contract.opportunity_id",
                        message,
                    )])
                }
                tonic::Code::ResourceExhausted => RpcError::ResourceExhausted {
                    reason: "OPPORTUNITIES_EXHAUSTED",
                    message,
                },
                // Whatever else the dependency says, it did not serve the
                // call: retryable.
                _ => RpcError::Unavailable {
                    reason: "OPPORTUNITIES_UNAVAILABLE",
                    message,
                },
            },
            ContractError::RequestIdReused => RpcError::InvalidArgument(vec![FieldViolation::new(
                "request_id",
                "already used for a different request",
            )]),
            ContractError::Store(e) => crm_service::storage_error(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Missing;

    #[test]
    fn contract_errors_keep_their_codes_and_reasons() {
        assert_eq!(ContractError::DOMAIN, "crm.contracts");
        assert!(matches!(
            ContractError::Exists("c1".into()).into_rpc(),
            RpcError::AlreadyExists { reason: "CONTRACT_EXISTS", existing_id, .. } if existing_id == "c1"
        ));
        assert!(matches!(
            ContractError::Unavailable("down".into()).into_rpc(),
            RpcError::Unavailable {
                reason: "OPPORTUNITIES_UNAVAILABLE",
                ..
            }
        ));
        let incomplete = ContractError::Incomplete {
            reason: "INCOMPLETE",
            missing: vec![Missing::new("term", "t"), Missing::new("milestones", "m")],
        };
        assert!(matches!(
            incomplete.into_rpc(),
            RpcError::FailedPrecondition { reason: "INCOMPLETE", violations, .. } if violations.len() == 2
        ));
    }
}
