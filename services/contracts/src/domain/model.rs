//! The contract and its parts, as the rules see them. A contract is stored
//! as one document (serde) beside the columns its lists and timers filter
//! on, so these types are its storage format too: fields are only added,
//! with defaults.

use crm_approvals::{Status as ApprovalStatus, Step};
use crm_types::{Date, Money, Role};
use serde::{Deserialize, Serialize};

/// Where a contract is (DOMAIN.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Draft,
    InApproval,
    Approved,
    SentForSignature,
    Signed,
    Active,
    Expired,
    Terminated,
    Superseded,
}

impl Status {
    pub const ALL: [Status; 9] = [
        Status::Draft,
        Status::InApproval,
        Status::Approved,
        Status::SentForSignature,
        Status::Signed,
        Status::Active,
        Status::Expired,
        Status::Terminated,
        Status::Superseded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::InApproval => "in_approval",
            Status::Approved => "approved",
            Status::SentForSignature => "sent_for_signature",
            Status::Signed => "signed",
            Status::Active => "active",
            Status::Expired => "expired",
            Status::Terminated => "terminated",
            Status::Superseded => "superseded",
        }
    }

    pub fn parse(text: &str) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Signed or active: the version in force.
    pub fn in_force(self) -> bool {
        matches!(self, Status::Signed | Status::Active)
    }
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One priced line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineItem {
    pub item: String,
    pub quantity: i64,
    pub unit_price: Money,
    pub discount_percent: u8,
    /// Computed: quantity x unit price x (100 - discount) / 100.
    pub line_total: Money,
}

/// A line as a caller sends it, before pricing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineInput {
    pub item: String,
    pub quantity: i64,
    pub unit_price: Money,
    pub discount_percent: u8,
}

/// From the start date to the end date, both included.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Term {
    pub start: Date,
    pub end: Date,
}

/// A milestone's share of the total.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Share {
    Amount(Money),
    Percent(u8),
}

/// Where a payment milestone is, as ERP sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MilestoneStatus {
    Planned,
    Due,
    Invoiced,
    Overdue,
    Paid,
    /// Replaced by a signed amendment's milestones.
    Cancelled,
}

impl MilestoneStatus {
    pub const ALL: [MilestoneStatus; 6] = [
        MilestoneStatus::Planned,
        MilestoneStatus::Due,
        MilestoneStatus::Invoiced,
        MilestoneStatus::Overdue,
        MilestoneStatus::Paid,
        MilestoneStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MilestoneStatus::Planned => "planned",
            MilestoneStatus::Due => "due",
            MilestoneStatus::Invoiced => "invoiced",
            MilestoneStatus::Overdue => "overdue",
            MilestoneStatus::Paid => "paid",
            MilestoneStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<MilestoneStatus> {
        MilestoneStatus::ALL
            .into_iter()
            .find(|s| s.as_str() == text)
    }

    /// Owed and not yet paid: what the overdue timer watches.
    pub fn open(self) -> bool {
        matches!(self, MilestoneStatus::Due | MilestoneStatus::Invoiced)
    }
}

/// A payment milestone of a contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Milestone {
    pub id: String,
    /// Its own version, for RecordPayment's etag.
    pub version: i64,
    pub name: String,
    pub due_date: Date,
    pub share: Share,
    /// Computed: the fixed amount or the percentage of the total.
    pub amount: Money,
    pub status: MilestoneStatus,
    #[serde(default)]
    pub erp_reference: String,
    #[serde(default)]
    pub invoice_time: Option<i64>,
    #[serde(default)]
    pub paid_time: Option<i64>,
    #[serde(default)]
    pub overdue_time: Option<i64>,
}

/// A milestone as a caller sends it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MilestoneInput {
    pub name: String,
    pub due_date: Date,
    pub share: Share,
}

/// A requirement delivery must honour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecialRequirement {
    pub description: String,
    pub due_within_days: u32,
}

/// The opportunity's team, captured at creation.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    pub account_manager_id: String,
    pub solution_manager_id: String,
    pub delivery_manager_id: String,
    pub other_member_ids: Vec<String>,
}

impl Team {
    /// Every member, once, without empty ids.
    pub fn members(&self) -> Vec<&str> {
        let mut all: Vec<&str> = [
            self.account_manager_id.as_str(),
            self.solution_manager_id.as_str(),
            self.delivery_manager_id.as_str(),
        ]
        .into_iter()
        .chain(self.other_member_ids.iter().map(String::as_str))
        .filter(|m| !m.is_empty())
        .collect();
        all.sort_unstable();
        all.dedup();
        all
    }
}

/// A customer contact delivery needs to know.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyContact {
    pub contact_id: String,
    pub name: String,
    pub title: String,
    pub phone: String,
    pub email: String,
    pub decision_role: String,
}

/// What the delivery manager reviewed on the opportunity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewedScope {
    pub reviewed: bool,
    pub quote: Option<Money>,
    pub workload_person_days: i32,
    pub solution_summary: String,
}

/// What the contracts service learnt of the opportunity at creation, as
/// the caller was allowed to see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpportunityFacts {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub won: bool,
    pub team: Team,
    pub amount: Option<Money>,
    pub reviewed: ReviewedScope,
    pub key_contacts: Vec<KeyContact>,
}

/// What a step of a contract's chain is, beside its decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepInfo {
    /// "delivery_review", "sales_manager", "finance", "legal", ...
    pub name: String,
    /// Only this person decides it; empty: any holder of the role.
    pub assignee: String,
    pub start_time: Option<i64>,
    pub expected_time: Option<i64>,
    /// The overdue event was raised.
    pub overdue: bool,
}

/// One submission's approval: the shared engine's steps and status, with
/// the contract's own facts of each step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContractApproval {
    pub id: String,
    pub requester_id: String,
    pub status: ApprovalStatus,
    pub steps: Vec<Step>,
    pub info: Vec<StepInfo>,
    /// Index of the step awaiting a decision.
    pub current_step: usize,
    pub submit_time: i64,
}

impl ContractApproval {
    /// The step awaiting a decision, with its facts, while pending.
    pub fn pending(&self) -> Option<(usize, &Step, &StepInfo)> {
        if self.status != ApprovalStatus::Pending {
            return None;
        }
        let i = self.current_step;
        Some((i, self.steps.get(i)?, self.info.get(i)?))
    }

    /// Whether `person` decided a step of this approval (directly or
    /// through an integration).
    pub fn decided_by(&self, person: &str) -> bool {
        self.steps
            .iter()
            .any(|s| s.decision.is_some() && (s.decider_id == person || s.on_behalf_of == person))
    }
}

/// What the signature provider did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignatureOutcome {
    Signed,
    Declined,
}

/// The e-signature of a contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signature {
    pub provider: String,
    pub envelope_id: String,
    pub sender_id: String,
    pub send_time: i64,
    pub outcome: Option<SignatureOutcome>,
    pub signer: String,
    pub outcome_time: Option<i64>,
    pub decline_reason: String,
}

/// One version of a contract.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contract {
    pub id: String,
    pub tenant: String,
    /// The record's version, for etags and optimistic writes.
    pub version: i64,
    pub opportunity_id: String,
    pub account_id: String,
    pub owner_id: String,
    pub title: String,
    pub currency: String,
    pub lines: Vec<LineItem>,
    pub total: Money,
    pub term: Option<Term>,
    pub milestones: Vec<Milestone>,
    pub scope_of_work: String,
    pub workload_person_days: i32,
    pub special_requirements: Vec<SpecialRequirement>,
    pub status: Status,
    /// 1, 2, 3... within the family.
    pub contract_version: i32,
    pub family_id: String,
    pub previous_version_id: String,
    pub approval: Option<ContractApproval>,
    pub signature: Option<Signature>,
    pub team: Team,
    pub key_contacts: Vec<KeyContact>,
    pub reviewed_scope: ReviewedScope,
    pub termination_reason: String,
    /// The day the renewal notice is due, until it was raised.
    pub renewal_due: Option<Date>,
    pub create_time: i64,
    pub update_time: i64,
    pub creator: String,
    pub updater: String,
}

impl Contract {
    /// The role, assignee, start and expected time of the pending step.
    pub fn pending_step(&self) -> Option<(Role, &StepInfo)> {
        if self.status != Status::InApproval {
            return None;
        }
        self.approval
            .as_ref()
            .and_then(ContractApproval::pending)
            .map(|(_, step, info)| (step.role, info))
    }

    /// The earliest due date of a milestone that is owed and not paid or
    /// found overdue yet: when the overdue timer looks at it next.
    pub fn next_receivable_due(&self) -> Option<Date> {
        self.milestones
            .iter()
            .filter(|m| m.status.open() && m.overdue_time.is_none())
            .map(|m| m.due_date)
            .min()
    }

    /// Everyone who sees it as theirs: the owner and the team.
    pub fn members(&self) -> Vec<&str> {
        let mut all = self.team.members();
        if !self.owner_id.is_empty() {
            all.push(self.owner_id.as_str());
        }
        all.sort_unstable();
        all.dedup();
        all
    }
}

/// The fields of a draft a caller sets (create), or changes (update: each
/// `Some` replaces the field).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DraftPatch {
    pub title: Option<String>,
    pub currency: Option<String>,
    pub lines: Option<Vec<LineInput>>,
    pub term: Option<Option<Term>>,
    pub milestones: Option<Vec<MilestoneInput>>,
    pub scope_of_work: Option<String>,
    pub workload_person_days: Option<i32>,
    pub special_requirements: Option<Vec<SpecialRequirement>>,
}

/// What ListContracts narrows to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContractFilter {
    pub visibility: super::Visibility,
    pub status: Option<Status>,
    pub account_id: Option<String>,
    pub owner_id: Option<String>,
    pub ending_before: Option<Date>,
}

/// What ListPaymentMilestones narrows to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MilestoneFilter {
    pub status: Option<MilestoneStatus>,
    pub due_before: Option<Date>,
    pub account_id: Option<String>,
}

/// A payment milestone with its contract, as the receivables view lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Receivable {
    pub milestone: Milestone,
    pub contract_id: String,
    pub account_id: String,
}
