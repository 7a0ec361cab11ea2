//! The rules of accounts, opportunities and approvals, and the values the
//! use cases exchange: plain Rust, no tonic, no SQL.

mod access;
mod approvals;
mod config;
mod conversion;
mod error;
mod gates;
mod model;
mod rules;
mod values;

pub use access::{
    Visibility, awaiting_role, check_account_owner, check_account_visible, check_approval_visible,
    check_team_change, forecast_owner, new_account, new_opportunity,
};
pub use approvals::{
    Approval, ApprovalDetail, ApprovalKind, ApprovalStatus, DELIVERY_REVIEW_FIELDS, Decided,
    Decision, Effect, Step, decide, effect, record_review, request_account_change,
    request_approval, settle_account_change,
};
pub use config::{GATE_FIELDS, OpportunityConfig, StageGate};
pub use conversion::{
    account_from_lead, check_existing_conversion, contact_from_lead, opportunity_from_lead,
};
pub use crm_types::{Actor, Change, Violation};
pub use error::{Missing, OpportunityError};
pub use gates::{GateFacts, RequiredAction, check_advance};
pub use model::{
    Account, Activity, ActivityKind, Contact, DecisionRole, Grade, Member, Opportunity,
    Qualification, ReviewState, Stage, Team, WorkHours, name_key,
};
pub use rules::{
    MAX_MONEY_UNITS, OpportunityPatch, StageViolation, Updated, account_core_change, advance,
    check_contact_of, check_etag, finish_account_update, money_violation, update, update_account,
    void_review_if_changed,
};
pub use values::{
    AccountDraft, AccountFilter, AccountUpdate, ActivityDraft, ApprovalFilter, ApprovalReader,
    ContactDraft, ForecastLine, LeadSnapshot, OpportunityDraft, OpportunityFilter, StageTotal,
    WorkHoursDraft, forecast,
};

/// The resource names errors give the service's records.
pub mod resource {
    pub const ACCOUNT: &str = "crm.opportunities.v1.Account";
    pub const CONTACT: &str = "crm.opportunities.v1.Contact";
    pub const OPPORTUNITY: &str = "crm.opportunities.v1.Opportunity";
    pub const APPROVAL: &str = "crm.opportunities.v1.Approval";
}
