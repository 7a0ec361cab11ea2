//! The contracts service's errors, in the domain's terms; `api/error.rs`
//! maps each to its status once.

use crm_types::Violation;

/// One thing a transition needs and the contract lacks (a
/// `PreconditionFailure` violation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Missing {
    pub subject: String,
    pub description: String,
}

impl Missing {
    pub fn new(subject: &str, description: &str) -> Self {
        Missing {
            subject: subject.to_owned(),
            description: description.to_owned(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ContractError {
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
    /// The opportunity already has a contract: its id.
    #[error("the opportunity already has contract {0}")]
    Exists(String),
    /// The opportunities service could not be asked; nothing was stored.
    #[error("{0}")]
    Unavailable(String),
    /// Another service's refusal, passed on: its gRPC code (as a number)
    /// and message.
    #[error("the opportunities service refused ({code}): {message}")]
    Remote { code: i32, message: String },
    #[error("request id was already used for a different request")]
    RequestIdReused,
    #[error("storage: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl ContractError {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        ContractError::Invalid(vec![Violation::new(field, description)])
    }

    pub fn not_found(resource: &'static str, id: &str) -> Self {
        ContractError::NotFound {
            resource,
            id: id.to_owned(),
        }
    }

    pub fn precondition(reason: &'static str, message: impl Into<String>) -> Self {
        ContractError::Precondition(reason, message.into())
    }

    pub fn forbidden(reason: &'static str, message: impl Into<String>) -> Self {
        ContractError::Forbidden(reason, message.into())
    }
}

/// Resource names for NOT_FOUND.
pub mod resource {
    pub const CONTRACT: &str = "contracts.crmsuite.com/Contract";
    pub const MILESTONE: &str = "contracts.crmsuite.com/PaymentMilestone";
    pub const OPPORTUNITY: &str = "opportunities.crmsuite.com/Opportunity";
}
