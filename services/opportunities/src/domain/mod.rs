//! The rules of accounts, opportunities and approvals: plain Rust, no
//! tonic, no SQL.

mod approvals;
mod config;
mod error;
mod gates;
mod model;
mod rules;

pub use approvals::{
    Approval, ApprovalKind, ApprovalStatus, Decided, Decision, Step, decide, new_approval,
};
pub use config::{OppConfig, StageGate};
pub use error::{Missing, OppError, Violation};
pub use gates::{GateFacts, RequiredAction, check_advance};
pub use model::{
    Account, Activity, ActivityKind, Actor, Contact, DecisionRole, Grade, Member, Opportunity,
    Qualification, ReviewState, Stage, Team, WorkHours, name_key,
};
pub use rules::{
    Change, OppPatch, StageViolation, account_core_change, advance, apply_account_change, update,
    void_review_if_changed,
};
