use crm_types::Violation;

/// A requirement of a stage gate (or of a delivery review) that is not met.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Missing {
    /// FIELD, ACTION or APPROVAL.
    pub kind: String,
    pub subject: String,
    pub description: String,
}

impl Missing {
    pub fn field(field: &str, description: String) -> Self {
        Missing {
            kind: "FIELD".into(),
            subject: field.into(),
            description,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OpportunityError {
    #[error("invalid input: {0:?}")]
    Invalid(Vec<Violation>),
    /// Missing, or another tenant's.
    #[error("{resource} {id} not found")]
    NotFound { resource: &'static str, id: String },
    #[error("the record was changed since it was read")]
    Stale,
    #[error("{1}")]
    Forbidden(&'static str, String),
    #[error("{1}")]
    Precondition(&'static str, String),
    /// An account with the same name exists: its id.
    #[error("an account with this name exists: {0}")]
    DuplicateAccount(String),
    #[error("the stage gate is not met: {} requirement(s) missing", .0.len())]
    GateNotMet(Vec<Missing>),
    #[error("request id was already used for a different request")]
    RequestIdReused,
    #[error("storage: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl OpportunityError {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        OpportunityError::Invalid(vec![Violation::new(field, description)])
    }

    pub fn not_found(resource: &'static str, id: &str) -> Self {
        OpportunityError::NotFound {
            resource,
            id: id.to_owned(),
        }
    }
}
