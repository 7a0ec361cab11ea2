//! The delivery service's errors, in the domain's terms; `api/error.rs`
//! maps each to its status once.

use crm_types::Violation;

/// One thing a transition needs and lacks: a `PreconditionFailure`
/// violation (its kind, what it is about, why).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub kind: &'static str,
    pub subject: String,
    pub description: String,
}

impl Missing {
    pub fn new(kind: &'static str, subject: &str, description: impl Into<String>) -> Self {
        Missing {
            kind,
            subject: subject.to_owned(),
            description: description.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("invalid input: {0:?}")]
    Invalid(Vec<Violation>),
    /// Missing, invisible to the caller, or another tenant's.
    #[error("{resource} {id} not found")]
    NotFound { resource: &'static str, id: String },
    #[error("the record was changed since it was read")]
    Stale,
    #[error("{1}")]
    Forbidden(&'static str, String),
    #[error("{1}")]
    Precondition(&'static str, String),
    /// A transition refused with everything it lacks.
    #[error("{reason}: {} requirement(s) missing", .missing.len())]
    Incomplete {
        reason: &'static str,
        missing: Vec<Missing>,
    },
    /// A field breaks a rule a client tells apart by its reason (e.g.
    /// DAY_OVER_24_HOURS): INVALID_ARGUMENT naming the field.
    #[error("{field}: {description}")]
    Rule {
        reason: &'static str,
        field: &'static str,
        description: String,
    },
    #[error("request id was already used for a different request")]
    RequestIdReused,
    /// A handed-over contract the service cannot make a project of, however
    /// often it is retried (a poison event).
    #[error("unusable handover: {0}")]
    BadHandover(String),
    #[error("storage: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl DeliveryError {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        DeliveryError::Invalid(vec![Violation::new(field, description)])
    }

    pub fn not_found(resource: &'static str, id: &str) -> Self {
        DeliveryError::NotFound {
            resource,
            id: id.to_owned(),
        }
    }

    pub fn precondition(reason: &'static str, message: impl Into<String>) -> Self {
        DeliveryError::Precondition(reason, message.into())
    }

    pub fn forbidden(reason: &'static str, message: impl Into<String>) -> Self {
        DeliveryError::Forbidden(reason, message.into())
    }
}

/// Resource names for NOT_FOUND.
pub mod resource {
    pub const PROJECT: &str = "delivery.crmsuite.com/Project";
    pub const MILESTONE: &str = "delivery.crmsuite.com/Milestone";
    pub const TASK: &str = "delivery.crmsuite.com/Task";
    pub const RISK_ALERT: &str = "delivery.crmsuite.com/RiskAlert";
}
