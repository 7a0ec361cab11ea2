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
    /// [`RpcError::InvalidArgument`] with a reason of its own in
    /// `ErrorInfo` (e.g. `DAY_OVER_24_HOURS`), for a rule a client tells
    /// apart from a malformed field.
    InvalidArgumentBecause {
        reason: &'static str,
        violations: Vec<FieldViolation>,
    },
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
    /// RESOURCE_EXHAUSTED with a `RetryInfo`: the caller's budget refills
    /// after `retry_after`.
    RateLimited {
        reason: &'static str,
        message: String,
        retry_after: std::time::Duration,
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
    ///
    /// Bounded whatever the input: quoted values are cut at
    /// [`MAX_TEXT_BYTES`], at most [`MAX_VIOLATIONS`] violations are listed
    /// (`ErrorInfo.metadata["violations_omitted"]` counts the rest), and the
    /// whole status (message and details, as sent in the trailers) stays
    /// under [`MAX_STATUS_BYTES`]: an oversized header block would break
    /// the HTTP/2 connection the call shares with others, and clients
    /// refuse metadata over 8 KiB.
    pub fn into_status(self, domain: &str) -> Status {
        let mut details = ErrorDetails::new();
        let mut omitted = 0;
        let own_reason = match &self {
            RpcError::InvalidArgumentBecause { reason, .. } => Some(*reason),
            _ => None,
        };
        let (code, reason, message) = match self {
            RpcError::InvalidArgument(violations)
            | RpcError::InvalidArgumentBecause { violations, .. } => {
                let (listed, rest) = bounded_violations(
                    violations
                        .into_iter()
                        .map(|v| (v.field, v.description))
                        .collect(),
                    |(field, description)| {
                        let mut d = ErrorDetails::new();
                        d.add_bad_request_violation(field.clone(), description.clone());
                        d
                    },
                );
                omitted = rest;
                let message = listed
                    .iter()
                    .map(|(field, description)| format!("{field}: {description}"))
                    .collect::<Vec<_>>()
                    .join("; ");
                for (field, description) in listed {
                    details.add_bad_request_violation(field, description);
                }
                (
                    Code::InvalidArgument,
                    own_reason.unwrap_or("INVALID_ARGUMENT"),
                    message,
                )
            }
            RpcError::NotFound { resource, id } => {
                let id = clip(id, MAX_TEXT_BYTES);
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
                let message = clip(message, MAX_MESSAGE_BYTES);
                details.set_resource_info(
                    resource,
                    clip(existing_id, MAX_TEXT_BYTES),
                    "",
                    message.clone(),
                );
                (Code::AlreadyExists, reason, message)
            }
            RpcError::Aborted { reason, message } => (Code::Aborted, reason, message),
            RpcError::FailedPrecondition {
                reason,
                message,
                violations,
            } => {
                let (listed, rest) = bounded_violations(
                    violations
                        .into_iter()
                        .map(|v| (v.kind, (v.subject, v.description)))
                        .collect(),
                    |(kind, (subject, description))| {
                        let mut d = ErrorDetails::new();
                        d.add_precondition_failure_violation(
                            kind.clone(),
                            subject.clone(),
                            description.clone(),
                        );
                        d
                    },
                );
                omitted = rest;
                for (kind, (subject, description)) in listed {
                    details.add_precondition_failure_violation(kind, subject, description);
                }
                (Code::FailedPrecondition, reason, message)
            }
            RpcError::PermissionDenied { reason, message } => {
                (Code::PermissionDenied, reason, message)
            }
            RpcError::ResourceExhausted { reason, message } => {
                (Code::ResourceExhausted, reason, message)
            }
            RpcError::RateLimited {
                reason,
                message,
                retry_after,
            } => {
                details.set_retry_info(Some(retry_after));
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
        let mut metadata = std::collections::HashMap::<String, String>::new();
        let mut message = clip(message, MAX_MESSAGE_BYTES);
        if omitted > 0 {
            metadata.insert("violations_omitted".to_owned(), omitted.to_string());
            message.push_str(&format!("; and {omitted} more"));
        }
        details.set_error_info(reason, domain, metadata);
        Status::with_error_details(code, message, details)
    }
}

/// Most violations listed in one error; the rest are counted.
pub const MAX_VIOLATIONS: usize = 20;
/// Longest text (a field path, a description with the value it quotes, an
/// id) kept in an error, in bytes; longer ones are cut and say so.
pub const MAX_TEXT_BYTES: usize = 160;
/// Longest error message, in bytes.
pub const MAX_MESSAGE_BYTES: usize = 512;
/// Budget of a whole status as sent: `grpc-message` plus
/// `grpc-status-details-bin` (base64), in bytes.
pub const MAX_STATUS_BYTES: usize = 6 * 1024;
/// What the details of a status may take of [`MAX_STATUS_BYTES`]: the
/// message (percent-encoded, up to three bytes per byte) and the
/// `ErrorInfo` have the rest.
const MAX_DETAILS_BYTES: usize = MAX_STATUS_BYTES - MAX_MESSAGE_BYTES * 3 - 512;

/// Texts of a violation, each cut to [`MAX_TEXT_BYTES`].
trait Clipped {
    fn clipped(self) -> Self;
}

impl Clipped for String {
    fn clipped(self) -> Self {
        clip(self, MAX_TEXT_BYTES)
    }
}

impl<A: Clipped, B: Clipped> Clipped for (A, B) {
    fn clipped(self) -> Self {
        (self.0.clipped(), self.1.clipped())
    }
}

/// The violations to list, cut short, at most [`MAX_VIOLATIONS`] and
/// within the details budget (`size` gives one violation as details), and
/// how many were left out.
fn bounded_violations<V: Clipped>(
    violations: Vec<V>,
    size: impl Fn(&V) -> ErrorDetails,
) -> (Vec<V>, usize) {
    let total = violations.len();
    let mut listed = Vec::new();
    let mut used = 0;
    for v in violations.into_iter().take(MAX_VIOLATIONS) {
        let v = v.clipped();
        let bytes = encoded_details_len(size(&v));
        if used + bytes > MAX_DETAILS_BYTES {
            break;
        }
        used += bytes;
        listed.push(v);
    }
    let omitted = total - listed.len();
    (listed, omitted)
}

/// How many bytes `details` take in `grpc-status-details-bin` (base64 of
/// the encoded `google.rpc.Status`), with room for the `ErrorInfo`.
fn encoded_details_len(details: ErrorDetails) -> usize {
    let status = Status::with_error_details(Code::Unknown, "", details);
    status.details().len().div_ceil(3) * 4
}

/// `text` cut to at most `max` bytes (on a character boundary), saying how
/// much was left out.
fn clip(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut cut = max.saturating_sub(24);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}... ({} bytes more)", &text[..cut], text.len() - cut)
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
    fn invalid_argument_may_carry_its_own_reason() {
        let status = RpcError::InvalidArgumentBecause {
            reason: "DAY_OVER_24_HOURS",
            violations: vec![FieldViolation::new("log.hours", "over 24 hours")],
        }
        .into_status("crm.delivery");
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        assert_eq!(
            details.error_info().map(|i| i.reason.as_str()),
            Some("DAY_OVER_24_HOURS")
        );
        assert_eq!(
            details
                .bad_request()
                .map(|b| b.field_violations[0].field.as_str()),
            Some("log.hours")
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

    /// What a status costs as trailers: its message (percent-encoded) and
    /// its details (base64).
    fn sent_bytes(status: &Status) -> usize {
        let mut headers = tonic::codegen::http::HeaderMap::new();
        let _ = status.add_header(&mut headers);
        headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum()
    }

    /// Finding 13: a huge bad value and a flood of violations make a small
    /// reply, saying what was left out.
    #[test]
    fn finding_13_errors_stay_small_whatever_the_input() {
        let huge = "\u{4e2d}".repeat(70_000);
        let status = RpcError::invalid(
            "lead.source_channel",
            format!("{huge:?} is not one of the tenant's channels"),
        )
        .into_status("crm.leads");
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(sent_bytes(&status) < 2 * 1024, "{}", sent_bytes(&status));
        assert!(status.message().starts_with("lead.source_channel: "));
        assert!(
            status.message().contains("bytes more)"),
            "{}",
            status.message()
        );

        let many = (0..500)
            .map(|i| FieldViolation::new(format!("leads[{i}].phone"), huge.clone()))
            .collect();
        let status = RpcError::InvalidArgument(many).into_status("crm.leads");
        assert!(
            sent_bytes(&status) < MAX_STATUS_BYTES,
            "{}",
            sent_bytes(&status)
        );
        let details = status.get_error_details();
        let listed = details
            .bad_request()
            .map(|b| b.field_violations.len())
            .unwrap_or_default();
        assert!(listed > 0 && listed <= MAX_VIOLATIONS, "{listed}");
        let omitted = details
            .error_info()
            .and_then(|i| i.metadata.get("violations_omitted").cloned());
        assert_eq!(omitted, Some((500 - listed).to_string()));
        assert!(
            status
                .message()
                .ends_with(&format!("; and {} more", 500 - listed))
        );

        let status = RpcError::NotFound {
            resource: "lead",
            id: "x".repeat(1 << 20),
        }
        .into_status("crm.leads");
        assert!(sent_bytes(&status) < 2 * 1024, "{}", sent_bytes(&status));
    }
}
