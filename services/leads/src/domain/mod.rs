//! The rules of leads: plain Rust, no tonic, no SQL. The `api` module maps
//! requests into these types, the `store` module persists what they decide.

mod config;
mod error;
mod lead;
pub mod normalize;
mod rules;
mod scoring;

pub use config::{BudgetFloor, LeadConfig, ScoringModel};
pub use error::{LeadError, Violation};
pub use lead::{
    Amount, Budget, Change, CompanySize, DuplicateKeys, Lead, LeadStatus, Patch, Profile,
};
pub use rules::{
    Actor, Interaction, OnDuplicate, ReturnReason, assign, check_convertible, check_visible, claim,
    convert, disqualify, log_interaction, merge_into, new_lead, overdue, release, return_to_pool,
    update,
};
pub use scoring::{InteractionKind, ScoreBreakdown, ScoreItem, Tally, score};
