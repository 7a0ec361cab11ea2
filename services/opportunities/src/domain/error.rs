/// One invalid input field, named as in the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub description: String,
}

impl Violation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Violation {
            field: field.into(),
            description: description.into(),
        }
    }
}

/// A requirement of a stage gate that is not met.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Missing {
    /// FIELD, ACTION or APPROVAL.
    pub kind: String,
    pub subject: String,
    pub description: String,
}

#[derive(Debug, thiserror::Error)]
pub enum OppError {
    #[error("invalid input: {0:?}")]
    Invalid(Vec<Violation>),
    /// Missing, or another tenant's.
    #[error("{resource} {id} not found")]
    NotFound { resource: &'static str, id: String },
    #[error("the record was changed since it was read")]
    Stale,
    #[error("{0}")]
    Forbidden(&'static str, String),
    #[error("{1}")]
    Precondition(&'static str, String),
    #[error("the stage gate is not met: {} requirement(s) missing", .0.len())]
    GateNotMet(Vec<Missing>),
    #[error("request id was already used for a different request")]
    RequestIdReused,
    #[error("storage: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl OppError {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        OppError::Invalid(vec![Violation::new(field, description)])
    }

    pub fn not_found(resource: &'static str, id: &str) -> Self {
        OppError::NotFound {
            resource,
            id: id.to_owned(),
        }
    }
}
