//! How a delivery error reaches the wire: its place in the API's
//! vocabulary, stated once; crm-rpc builds the status.

use crm_rpc::{DomainError, FieldViolation, PreconditionViolation, RpcError};

use crate::domain::DeliveryError;
use crate::wire::field_violation;

impl DomainError for DeliveryError {
    const DOMAIN: &'static str = "crm.delivery";

    fn into_rpc(self) -> RpcError {
        match self {
            DeliveryError::Invalid(vs) => {
                RpcError::InvalidArgument(vs.into_iter().map(field_violation).collect())
            }
            DeliveryError::NotFound { resource, id } => RpcError::NotFound { resource, id },
            DeliveryError::Stale => RpcError::Aborted {
                reason: "ETAG_MISMATCH",
                message: "the record was changed since it was read".into(),
            },
            DeliveryError::Forbidden(reason, message) => {
                RpcError::PermissionDenied { reason, message }
            }
            DeliveryError::Precondition(reason, message) => RpcError::FailedPrecondition {
                reason,
                message,
                violations: vec![],
            },
            DeliveryError::Incomplete { reason, missing } => RpcError::FailedPrecondition {
                reason,
                message: format!(
                    "missing: {}",
                    missing
                        .iter()
                        .map(|m| format!("{} {}", m.kind, m.subject))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                violations: missing
                    .into_iter()
                    .map(|m| PreconditionViolation {
                        kind: m.kind.into(),
                        subject: m.subject,
                        description: m.description,
                    })
                    .collect(),
            },
            DeliveryError::Rule {
                reason,
                field,
                description,
            } => RpcError::InvalidArgumentBecause {
                reason,
                violations: vec![FieldViolation::new(field, description)],
            },
            DeliveryError::RequestIdReused => RpcError::InvalidArgument(vec![FieldViolation::new(
                "request_id",
                "already used for a different request",
            )]),
            DeliveryError::BadHandover(message) => RpcError::FailedPrecondition {
                reason: "BAD_HANDOVER",
                message,
                violations: vec![],
            },
            DeliveryError::Store(e) => crm_service::storage_error(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::Missing;

    #[test]
    fn a_refused_transition_lists_every_missing_thing() {
        assert_eq!(DeliveryError::DOMAIN, "crm.delivery");
        let refused = DeliveryError::Incomplete {
            reason: "OPEN_MILESTONES",
            missing: vec![
                Missing::new("MILESTONE_NOT_ACCEPTED", "m1", "planned"),
                Missing::new("MILESTONE_NOT_ACCEPTED", "m2", "in_progress"),
            ],
        };
        assert!(matches!(
            refused.into_rpc(),
            RpcError::FailedPrecondition { reason: "OPEN_MILESTONES", violations, .. }
                if violations.len() == 2 && violations[1].subject == "m2"
        ));
        assert!(matches!(
            DeliveryError::Stale.into_rpc(),
            RpcError::Aborted {
                reason: "ETAG_MISMATCH",
                ..
            }
        ));
    }
}
