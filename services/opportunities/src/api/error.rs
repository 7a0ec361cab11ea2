//! The one place an opportunities error becomes a gRPC status.

use crm_rpc::{FieldViolation, PreconditionViolation, RpcError};
use tonic::Status;

use crate::domain::{OpportunityError, resource};
use crate::wire::field_violation;

const DOMAIN: &str = "crm.opportunities";

pub fn status(err: OpportunityError) -> Status {
    let rpc = match err {
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
        OpportunityError::RequestIdReused => RpcError::InvalidArgument(vec![FieldViolation::new(
            "request_id",
            "already used for a different request",
        )]),
        OpportunityError::Store(e) => RpcError::Internal(e),
    };
    rpc.into_status(DOMAIN)
}

pub fn invalid(vs: Vec<FieldViolation>) -> Status {
    RpcError::InvalidArgument(vs).into_status(DOMAIN)
}

pub fn one(v: FieldViolation) -> Status {
    invalid(vec![v])
}
