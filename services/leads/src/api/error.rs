//! How a lead error reaches the wire: its place in the API's vocabulary,
//! stated once; crm-rpc builds the status.

use crm_rpc::{DomainError, FieldViolation, RpcError};
use tonic::Status;

use crate::app::ConvertError;
use crate::domain::LeadError;
use crate::wire;

const LEAD: &str = "crm.leads.v1.Lead";

impl DomainError for LeadError {
    const DOMAIN: &'static str = "crm.leads";

    fn into_rpc(self) -> RpcError {
        let message = self.to_string();
        let refused = |reason| RpcError::FailedPrecondition {
            reason,
            message: message.clone(),
            violations: vec![],
        };
        match self {
            LeadError::Invalid(vs) => RpcError::InvalidArgument(wire::violations(vs, "lead")),
            LeadError::NotFound(id) => RpcError::NotFound { resource: LEAD, id },
            LeadError::StaleEtag { .. } | LeadError::StaleConfig(_) => RpcError::Aborted {
                reason: "ETAG_MISMATCH",
                message,
            },
            LeadError::Duplicate { existing_id, .. } => RpcError::AlreadyExists {
                reason: "DUPLICATE_LEAD",
                resource: LEAD,
                existing_id,
                message,
            },
            LeadError::MergeConflict { existing_id, .. } => RpcError::AlreadyExists {
                reason: "MERGE_CONFLICT",
                resource: LEAD,
                existing_id,
                message,
            },
            LeadError::NotOwner(_) | LeadError::NotManager => RpcError::PermissionDenied {
                reason: "NOT_LEAD_OWNER",
                message,
            },
            LeadError::Closed { .. } => refused("LEAD_CLOSED"),
            LeadError::AlreadyOwned(_) => refused("LEAD_OWNED"),
            LeadError::InPool(_) => refused("LEAD_IN_POOL"),
            LeadError::ClaimLimit { .. } => refused("CLAIM_LIMIT_REACHED"),
            LeadError::ImportBudget { retry_after, .. } => RpcError::RateLimited {
                reason: "IMPORT_RATE_LIMITED",
                message,
                retry_after,
            },
            LeadError::RequestIdReused => {
                RpcError::InvalidArgument(vec![FieldViolation::new("request_id", message)])
            }
            LeadError::Store(e) => crm_service::storage_error(e),
        }
    }
}

/// A failed conversion: the lead's own refusal, the opportunities
/// service's refusal as it gave it, or that service being out of reach.
pub fn converting(err: ConvertError) -> Status {
    match err {
        ConvertError::Lead(err) => err.into_status(),
        ConvertError::Unavailable(message) => LeadError::refuse(RpcError::Unavailable {
            reason: "OPPORTUNITIES_UNAVAILABLE",
            message,
        }),
        ConvertError::Refused(status) => status,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{LeadStatus, Violation};

    #[test]
    fn lead_errors_keep_their_codes_and_reasons() {
        let duplicate = LeadError::Duplicate {
            key: "email",
            existing_id: "l1".into(),
        };
        assert!(matches!(
            duplicate.into_rpc(),
            RpcError::AlreadyExists { reason: "DUPLICATE_LEAD", existing_id, .. } if existing_id == "l1"
        ));
        let stale = LeadError::StaleEtag {
            given: "v1".into(),
            current: "v2".into(),
        };
        assert!(matches!(
            stale.into_rpc(),
            RpcError::Aborted {
                reason: "ETAG_MISMATCH",
                ..
            }
        ));
        assert!(matches!(
            LeadError::NotManager.into_rpc(),
            RpcError::PermissionDenied {
                reason: "NOT_LEAD_OWNER",
                ..
            }
        ));
        let closed = LeadError::Closed {
            id: "l1".into(),
            status: LeadStatus::Converted,
        };
        for (err, expected) in [
            (closed, "LEAD_CLOSED"),
            (LeadError::AlreadyOwned("l1".into()), "LEAD_OWNED"),
            (LeadError::InPool("l1".into()), "LEAD_IN_POOL"),
            (LeadError::ClaimLimit { limit: 3 }, "CLAIM_LIMIT_REACHED"),
        ] {
            assert!(
                matches!(err.into_rpc(), RpcError::FailedPrecondition { reason, .. } if reason == expected),
                "{expected}"
            );
        }
        assert_eq!(LeadError::DOMAIN, "crm.leads");
    }

    #[test]
    fn a_lead_violation_is_reported_under_the_lead() {
        let err = LeadError::Invalid(vec![Violation::new("email", "bad")]);
        assert!(matches!(
            err.into_rpc(),
            RpcError::InvalidArgument(vs) if vs == [FieldViolation::new("lead.email", "bad")]
        ));
        assert!(matches!(
            LeadError::RequestIdReused.into_rpc(),
            RpcError::InvalidArgument(vs) if vs[0].field == "request_id"
        ));
    }

    #[test]
    fn an_unreachable_opportunities_service_is_unavailable() {
        let status = converting(ConvertError::Unavailable("down".into()));
        assert_eq!(status.code(), tonic::Code::Unavailable);
    }
}
