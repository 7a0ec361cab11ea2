use super::{LeadStatus, Violation};

/// Why a lead operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum LeadError {
    #[error("invalid input: {0:?}")]
    Invalid(Vec<Violation>),
    /// Missing, or another tenant's.
    #[error("lead {0} not found")]
    NotFound(String),
    #[error("the lead was changed since etag {given} was read (now {current})")]
    StaleEtag { given: String, current: String },
    /// `existing_id` is empty when the caller may not see that lead.
    #[error("a lead with the same {key} exists{}", named(existing_id))]
    Duplicate {
        key: &'static str,
        existing_id: String,
    },
    /// A merge would give the lead a key another lead has.
    #[error(
        "merging would give the lead the {key} of another lead{}",
        named(existing_id)
    )]
    MergeConflict {
        key: &'static str,
        existing_id: String,
    },
    #[error("lead {0} belongs to another sales user")]
    NotOwner(String),
    #[error("only managers may act for another user")]
    NotManager,
    #[error("lead {id} is {status} and can no longer change")]
    Closed { id: String, status: LeadStatus },
    #[error("lead {0} is owned by someone; only pool leads can be claimed")]
    AlreadyOwned(String),
    #[error("lead {0} is in the public pool")]
    InPool(String),
    #[error("the daily claim limit of {limit} leads is reached")]
    ClaimLimit { limit: u32 },
    /// The tenant imported more rows than its budget refills: others share
    /// the service.
    #[error(
        "the tenant's import budget ({per_second} rows a second) does not hold {rows} more rows yet; retry in {retry_after:?}"
    )]
    ImportBudget {
        rows: usize,
        per_second: u32,
        retry_after: std::time::Duration,
    },
    #[error("request id was already used for a different request")]
    RequestIdReused,
    #[error("the lead configuration was changed since etag {0} was read")]
    StaleConfig(String),
    #[error("storage: {0}")]
    Store(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// ": id", or nothing for a lead the caller may not see.
fn named(id: &str) -> String {
    if id.is_empty() {
        String::new()
    } else {
        format!(": {id}")
    }
}

impl LeadError {
    pub fn invalid(field: impl Into<String>, description: impl Into<String>) -> Self {
        LeadError::Invalid(vec![Violation::new(field, description)])
    }

    pub fn store(err: impl std::error::Error + Send + Sync + 'static) -> Self {
        LeadError::Store(Box::new(err))
    }
}
