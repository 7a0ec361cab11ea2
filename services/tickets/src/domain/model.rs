//! The records of the service: entitlements, tickets with their SLA
//! clocks, comments and engineers.

use serde::{Deserialize, Serialize};

use super::calendar::{Basis, Calendar, MINUTE};
use crm_types::Date;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    P1,
    P2,
    P3,
    P4,
}

impl Priority {
    pub const ALL: [Priority; 4] = [Priority::P1, Priority::P2, Priority::P3, Priority::P4];

    pub fn as_str(self) -> &'static str {
        match self {
            Priority::P1 => "p1",
            Priority::P2 => "p2",
            Priority::P3 => "p3",
            Priority::P4 => "p4",
        }
    }

    /// 1 for P1 .. 4 for P4: the order of the queue.
    pub fn rank(self) -> i32 {
        match self {
            Priority::P1 => 1,
            Priority::P2 => 2,
            Priority::P3 => 3,
            Priority::P4 => 4,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Phone,
    Email,
    Portal,
    Chat,
    Integration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    New,
    Assigned,
    InProgress,
    WaitingOnCustomer,
    Resolved,
    Closed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::New => "new",
            Status::Assigned => "assigned",
            Status::InProgress => "in_progress",
            Status::WaitingOnCustomer => "waiting_on_customer",
            Status::Resolved => "resolved",
            Status::Closed => "closed",
        }
    }

    /// Assigned and not resolved: counts as an engineer's open load.
    pub fn is_open_load(self) -> bool {
        matches!(
            self,
            Status::Assigned | Status::InProgress | Status::WaitingOnCustomer
        )
    }

    pub const OPEN_LOAD: [Status; 3] = [
        Status::Assigned,
        Status::InProgress,
        Status::WaitingOnCustomer,
    ];
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tier {
    New,
    Existing,
    Loyal,
}

impl Tier {
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::New => "new",
            Tier::Existing => "existing",
            Tier::Loyal => "loyal",
        }
    }
}

/// The targets of one priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    pub priority: Priority,
    pub first_response_minutes: u32,
    pub resolution_minutes: u32,
    pub basis: Basis,
}

/// The most minutes a target may be (a year).
pub const MAX_TARGET_MINUTES: u32 = 525_600;

/// A service level with one target per priority.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Plan {
    pub service_level: String,
    pub targets: Vec<Target>,
}

impl Plan {
    pub fn target(&self, priority: Priority) -> Option<Target> {
        self.targets
            .iter()
            .copied()
            .find(|t| t.priority == priority)
    }

    /// A plan's every target at `percent` of `self`'s minutes (at least one
    /// minute each), in `basis`.
    pub fn scaled(&self, name: &str, percent: u32, basis: Basis) -> Plan {
        let scale = |m: u32| (u64::from(m) * u64::from(percent) / 100).max(1);
        Plan {
            service_level: name.to_owned(),
            targets: self
                .targets
                .iter()
                .map(|t| Target {
                    priority: t.priority,
                    first_response_minutes: u32::try_from(scale(t.first_response_minutes))
                        .unwrap_or(MAX_TARGET_MINUTES),
                    resolution_minutes: u32::try_from(scale(t.resolution_minutes))
                        .unwrap_or(MAX_TARGET_MINUTES),
                    basis,
                })
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Origin {
    ProjectCompleted,
    Manual,
}

/// What an account is owed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entitlement {
    pub id: String,
    pub tenant: String,
    pub version: i64,
    pub account_id: String,
    pub plan: Plan,
    pub valid_from: Date,
    pub valid_to: Date,
    pub origin: Origin,
    pub project_id: String,
    pub contract_id: String,
    pub account_manager_id: String,
    pub create_time: i64,
    pub creator: String,
}

impl Entitlement {
    pub fn active_on(&self, day: Date) -> bool {
        self.valid_from <= day && day <= self.valid_to
    }
}

/// One SLA clock: counted time used so far, and since when it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Clock {
    pub target_minutes: u32,
    /// Counted micros used up to `running_since` (or up to the pause).
    pub used: i64,
    /// When it last started running; `None` while paused or stopped.
    pub running_since: Option<i64>,
    /// When it stopped for good (responded, resolved).
    pub stopped_at: Option<i64>,
    pub warned: bool,
    pub breached: bool,
}

impl Clock {
    pub fn started(target_minutes: u32, now: i64) -> Clock {
        Clock {
            target_minutes,
            running_since: Some(now),
            ..Clock::default()
        }
    }

    fn target(&self) -> i64 {
        i64::from(self.target_minutes) * MINUTE
    }

    /// Counted time used at `now`.
    pub fn used_at(&self, cal: &Calendar, basis: Basis, now: i64) -> i64 {
        self.used
            + self
                .running_since
                .map_or(0, |since| cal.elapsed(basis, since, now))
    }

    pub fn pause(&mut self, cal: &Calendar, basis: Basis, now: i64) {
        self.used = self.used_at(cal, basis, now);
        self.running_since = None;
    }

    pub fn resume(&mut self, now: i64) {
        if self.stopped_at.is_none() && self.running_since.is_none() {
            self.running_since = Some(now);
        }
    }

    pub fn stop(&mut self, cal: &Calendar, basis: Basis, now: i64) {
        if self.stopped_at.is_none() {
            self.pause(cal, basis, now);
            self.stopped_at = Some(now);
        }
    }

    /// Runs again after a stop (a reopened ticket's resolution clock).
    pub fn restart(&mut self, now: i64) {
        self.stopped_at = None;
        self.resume(now);
    }

    /// When the target is reached, while running.
    pub fn due(&self, cal: &Calendar, basis: Basis) -> Option<i64> {
        let since = self.running_since?;
        Some(cal.add(basis, since, self.target() - self.used))
    }

    /// When `percent` of the target is used, while running.
    pub fn warn_at(&self, cal: &Calendar, basis: Basis, percent: u32) -> Option<i64> {
        let since = self.running_since?;
        let share = self.target() * i64::from(percent) / 100;
        Some(cal.add(basis, since, share - self.used))
    }

    /// The next instant this clock needs the sweeper: its warning or its
    /// breach, whichever is still to come.
    pub fn next_check(&self, cal: &Calendar, basis: Basis, percent: u32) -> Option<i64> {
        if self.breached {
            return None;
        }
        if !self.warned {
            return self.warn_at(cal, basis, percent);
        }
        self.due(cal, basis)
    }
}

/// A ticket's SLA: what applies and the two clocks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sla {
    pub service_level: String,
    pub entitlement_id: Option<String>,
    /// The plan applied, kept so a priority change re-targets the clocks.
    pub plan: Plan,
    pub target: Target,
    pub first_response: Clock,
    pub resolution: Clock,
    pub first_response_time: Option<i64>,
    pub escalation_level: u32,
    /// Derived on every change (the calendar may change later; the times
    /// shown are those computed at the last change).
    pub first_response_due: Option<i64>,
    pub resolution_due: Option<i64>,
    pub next_check: Option<i64>,
}

impl Sla {
    pub fn breached(&self) -> bool {
        self.first_response.breached || self.resolution.breached
    }
}

/// A support ticket.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticket {
    pub id: String,
    pub tenant: String,
    pub version: i64,
    pub account_id: String,
    pub contact_id: String,
    pub channel: Channel,
    pub category: String,
    pub priority: Priority,
    pub subject: String,
    pub description: String,
    pub status: Status,
    pub assignee_id: Option<String>,
    pub queue_reason: String,
    pub sla: Sla,
    pub resolution: String,
    pub csat: u8,
    pub account_tier: Tier,
    pub complaint: bool,
    /// The account manager when the ticket was made: whom sales
    /// visibility follows.
    pub account_manager_id: String,
    pub reopen_count: u32,
    pub resolve_time: Option<i64>,
    pub close_time: Option<i64>,
    pub create_time: i64,
    pub update_time: i64,
    pub creator: String,
    pub updater: String,
}

impl Ticket {
    pub fn vip(&self) -> bool {
        self.account_tier == Tier::Loyal
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommentVisibility {
    Public,
    Internal,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    pub id: String,
    pub ticket_id: String,
    pub body: String,
    pub visibility: CommentVisibility,
    pub author: String,
    pub create_time: i64,
}

/// The most skills an engineer has.
pub const MAX_SKILLS: usize = 50;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Engineer {
    pub id: String,
    pub tenant: String,
    pub version: i64,
    pub display_name: String,
    pub skills: Vec<String>,
    pub on_duty: bool,
    pub last_assigned_time: Option<i64>,
    pub update_time: i64,
    pub updater: String,
}

/// What a list of tickets is narrowed to.
#[derive(Debug, Clone, Default)]
pub struct TicketFilter {
    pub status: Option<Status>,
    pub assignee_id: Option<String>,
    pub account_id: Option<String>,
    pub priority: Option<Priority>,
    pub breached: bool,
}

/// What the service knows of an account: its manager and industry, its
/// health figures and risk, its purchases and tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    pub tenant: String,
    pub account_id: String,
    pub account_manager_id: String,
    pub industry: String,
    pub tier: Tier,
    pub stats: super::health::AccountStats,
    pub score: u32,
    pub at_risk: bool,
    pub risk_reasons: Vec<super::health::ChurnReason>,
    /// Whether any health event was recorded (GetAccountHealth is
    /// NOT_FOUND before).
    pub health_known: bool,
    pub purchases: u64,
    pub currency: String,
    pub total_nanos: i128,
    pub last_purchase_time: Option<i64>,
    /// When the tier must be judged again if no purchase comes first
    /// (`loyalty::next_review`); `None` while only a purchase can change it.
    #[serde(default)]
    pub next_tier_review: Option<i64>,
    pub update_time: i64,
}

impl Account {
    pub fn new(tenant: &str, account_id: &str, now: i64) -> Account {
        Account {
            tenant: tenant.to_owned(),
            account_id: account_id.to_owned(),
            account_manager_id: String::new(),
            industry: String::new(),
            tier: Tier::New,
            stats: super::health::AccountStats::default(),
            score: 100,
            at_risk: false,
            risk_reasons: Vec::new(),
            health_known: false,
            purchases: 0,
            currency: String::new(),
            total_nanos: 0,
            last_purchase_time: None,
            next_tier_review: None,
            update_time: now,
        }
    }
}

/// A retention task for an account at risk.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionTask {
    pub id: String,
    pub account_id: String,
    pub assignee_id: String,
    pub reasons: Vec<super::health::ChurnReason>,
    pub create_time: i64,
}

/// A resolved ticket offered as a similar solution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Solution {
    pub ticket_id: String,
    pub subject: String,
    pub category: String,
    pub resolution: String,
    pub resolve_time: Option<i64>,
}

/// Who manages an account, as the opportunities service's account events
/// say (the account's owner), read by `wire`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountOwner {
    pub tenant: String,
    pub account_id: String,
    pub owner_id: String,
}

/// What a DeliveryProjectCompleted event says, as `wire` read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectCompleted {
    pub tenant: String,
    pub project_id: String,
    pub account_id: String,
    pub contract_id: String,
    pub service_level: String,
    pub term: Option<(Date, Date)>,
    pub account_manager_id: String,
}
