//! The rules of contracts: plain Rust, no tonic and no SQL.

mod access;
mod approval;
mod config;
mod error;
mod model;
mod pricing;
mod rules;
mod timers;

#[cfg(test)]
pub(crate) mod testing;

pub use access::{Inbox, Visibility, can_decide, can_see, check_visible};
pub use approval::{
    Outcome, StepDecision, StepState, add_working_days, chain, decide, progress_summary,
    step_state, submit,
};
pub use config::{ContractsConfig, DECIDING_ROLES, MAX_CHAIN};
pub use error::{ContractError, Missing, resource};
pub use model::*;
pub use pricing::{MAX_AMOUNT_UNITS, MAX_LINES, MAX_MILESTONES, MAX_QUANTITY};
pub use rules::{
    Recorded, amend, check_etag, check_owner, new_contract, record_payment, record_signature,
    scope_changes, send_for_signature, supersede, terminate, update_draft,
};
pub use timers::{Fired, fire};

pub use crm_approvals::{Decision, Status as ApprovalStatus, Step};
pub use crm_types::{Actor, Date, Money, Role};
