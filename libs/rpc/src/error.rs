use std::error::Error as StdError;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// The field's path in the request, e.g. `lead.email`.
    pub field: String,
    pub description: String,
}

impl FieldViolation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        FieldViolation {
            field: field.into(),
            description: description.into(),
        }
    }

    /// The same violation under a parent path (`email` -> `lead.email`).
    pub fn under(mut self, parent: &str) -> Self {
        self.field = format!("{parent}.{}", self.field);
        self
    }
}

/// One unmet precondition of a refused change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreconditionViolation {
    /// UPPER_SNAKE_CASE kind, e.g. `LEAD_DISQUALIFIED`.
    pub kind: String,
    /// What it is about, e.g. the lead id.
    pub subject: String,
    pub description: String,
}

/// A failure as the API reports it. Every service maps its domain error
/// into this, in its `api` module, and nowhere else.
#[derive(Debug)]
pub enum RpcError {
    /// One violation per bad field (AIP-193 BadRequest).
    InvalidArgument(Vec<FieldViolation>),
    /// Missing, or another tenant's: the caller cannot tell which.
    NotFound { resource: &'static str, id: String },
    AlreadyExists {
        reason: &'static str,
        resource: &'static str,
        /// The record that is already there.
        existing_id: String,
        message: String,
    },
    /// Stale etag or a concurrent change won (AIP-154).
    Aborted {
        reason: &'static str,
        message: String,
    },
    FailedPrecondition {
        reason: &'static str,
        message: String,
        violations: Vec<PreconditionViolation>,
    },
    PermissionDenied {
        reason: &'static str,
        message: String,
    },
    ResourceExhausted {
        reason: &'static str,
        message: String,
    },
    Unavailable {
        reason: &'static str,
        message: String,
    },
    /// Anything the caller cannot fix: logged in full, reported with the trace id only.
    Internal(Box<dyn StdError + Send + Sync>),
}

impl RpcError {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        RpcError::InvalidArgument(vec![FieldViolation::new(field, description)])
    }

    pub fn internal(err: impl StdError + Send + Sync + 'static) -> Self {
        RpcError::Internal(Box::new(err))
    }

    /// The status for this error, with `ErrorInfo` in `domain` (e.g. `crm.leads`).
    pub fn into_status(self, domain: &str) -> Status {
        let mut details = ErrorDetails::new();
        let (code, reason, message) = match self {
            RpcError::InvalidArgument(violations) => {
                let message = violations
                    .iter()
                    .map(|v| format!("{}: {}", v.field, v.description))
                    .collect::<Vec<_>>()
                    .join("; ");
                for v in violations {
                    details.add_bad_request_violation(v.field, v.description);
                }
                (Code::InvalidArgument, "INVALID_ARGUMENT", message)
            }
            RpcError::NotFound { resource, id } => {
                details.set_resource_info(resource, id.clone(), "", "not found");
                (
                    Code::NotFound,
                    "NOT_FOUND",
                    format!("{resource} {id} not found"),
                )
            }
            RpcError::AlreadyExists {
                reason,
                resource,
                existing_id,
                message,
            } => {
                details.set_resource_info(resource, existing_id, "", message.clone());
                (Code::AlreadyExists, reason, message)
            }
            RpcError::Aborted { reason, message } => (Code::Aborted, reason, message),
            RpcError::FailedPrecondition {
                reason,
                message,
                violations,
            } => {
                for v in violations {
                    details.add_precondition_failure_violation(v.kind, v.subject, v.description);
                }
                (Code::FailedPrecondition, reason, message)
            }
            RpcError::PermissionDenied { reason, message } => {
                (Code::PermissionDenied, reason, message)
            }
            RpcError::ResourceExhausted { reason, message } => {
                (Code::ResourceExhausted, reason, message)
            }
            RpcError::Unavailable { reason, message } => (Code::Unavailable, reason, message),
            RpcError::Internal(err) => {
                let trace = current_trace_id();
                tracing::error!(error = %err, source = ?err.source(), trace_id = %trace, "internal error");
                (
                    Code::Internal,
                    "INTERNAL",
                    format!("internal error; trace id {trace}"),
                )
            }
        };
        details.set_error_info(
            reason,
            domain,
            std::collections::HashMap::<String, String>::new(),
        );
        Status::with_error_details(code, message, details)
    }
}

/// The trace id the log line of an internal error can be found by.
fn current_trace_id() -> String {
    crm_telemetry::current_trace_id().unwrap_or_else(|| "none".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_argument_lists_every_field() {
        let status = RpcError::InvalidArgument(vec![
            FieldViolation::new("lead.company", "required"),
            FieldViolation::new("lead.email", "not an email address"),
        ])
        .into_status("crm.leads");
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let fields: Vec<_> = details
            .bad_request()
            .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
            .unwrap_or_default();
        assert_eq!(fields, ["lead.company", "lead.email"]);
        assert_eq!(
            details.error_info().map(|i| i.domain.as_str()),
            Some("crm.leads")
        );
    }

    #[test]
    fn internal_hides_the_cause() {
        let status = RpcError::internal(std::io::Error::other("password=secret in DSN"))
            .into_status("crm.leads");
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("secret"));
    }

    #[test]
    fn precondition_failure_lists_every_violation() {
        let status = RpcError::FailedPrecondition {
            reason: "STAGE_GATE",
            message: "blocked".into(),
            violations: vec![
                PreconditionViolation {
                    kind: "FIELD".into(),
                    subject: "amount".into(),
                    description: "required".into(),
                },
                PreconditionViolation {
                    kind: "ACTION".into(),
                    subject: "meeting".into(),
                    description: "required".into(),
                },
            ],
        }
        .into_status("crm.x");
        let details = status.get_error_details();
        assert_eq!(
            details.precondition_failure().map(|p| p.violations.len()),
            Some(2)
        );
        assert_eq!(
            details.error_info().map(|i| i.reason.as_str()),
            Some("STAGE_GATE")
        );
    }
}
