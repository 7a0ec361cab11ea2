//! The rules of leads and the use cases' value types: plain Rust, no tonic,
//! no SQL. `wire` maps requests into these types, `app` loads through
//! `store`, lets these functions decide and commits what they return.

mod config;
mod duplicates;
mod error;
mod intake;
mod lead;
pub mod normalize;
mod rules;
mod scoring;
mod stats;
#[cfg(test)]
mod testing;
mod visibility;

pub use config::{BudgetFloor, LeadConfig, ScoringModel, StoredConfig};
pub use crm_types::{Actor, AuditEntry, Change, Role, Violation};
pub use duplicates::{DuplicateIndex, DuplicateKey, DuplicateKeys};
pub use error::LeadError;
pub use intake::{
    Admission, Draft, ImportPlan, Intake, Merge, OnDuplicate, Rejection, RowOutcome, named_leads,
    shown_to,
};
pub use lead::{Amount, Budget, CompanySize, Lead, LeadStatus, Patch, Profile};
pub use rules::{
    ClaimWindow, Interaction, ReturnReason, assign, check_convertible, claim, convert, disqualify,
    log_interaction, merge_into, new_lead, overdue, release, return_to_pool, update,
};
pub use scoring::{InteractionKind, ScoreBreakdown, ScoreItem, Tally, score};
pub use stats::{ChannelCount, ChannelStats, channel_stats};
pub use visibility::{
    LeadScope, ListFilter, Visibility, check_visible, due_list_owner, visibility,
};
