//! The tickets service's errors, in the domain's terms; `api/error.rs`
//! maps each to its status once.

use crm_types::Violation;

#[derive(Debug, thiserror::Error)]
pub enum TicketError {
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
    #[error("request id was already used for a different request")]
    RequestIdReused,
    #[error("storage: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl TicketError {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        TicketError::Invalid(vec![Violation::new(field, description)])
    }

    pub fn not_found(resource: &'static str, id: &str) -> Self {
        TicketError::NotFound {
            resource,
            id: id.to_owned(),
        }
    }

    pub fn precondition(reason: &'static str, message: impl Into<String>) -> Self {
        TicketError::Precondition(reason, message.into())
    }

    pub fn forbidden(reason: &'static str, message: impl Into<String>) -> Self {
        TicketError::Forbidden(reason, message.into())
    }
}

/// Resource names for NOT_FOUND.
pub mod resource {
    pub const TICKET: &str = "tickets.crmsuite.com/Ticket";
    pub const ENTITLEMENT: &str = "tickets.crmsuite.com/Entitlement";
    pub const ENGINEER: &str = "tickets.crmsuite.com/Engineer";
    pub const ACCOUNT_HEALTH: &str = "tickets.crmsuite.com/AccountHealth";
    pub const ACCOUNT: &str = "opportunities.crmsuite.com/Account";
}
