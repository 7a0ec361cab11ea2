//! The delivery project and what it holds: milestones, tasks, the handover
//! facts the rules read, hour logs, risk alerts and capacities. Times are
//! Unix microseconds, durations whole minutes.

use crm_types::Date;
use serde::{Deserialize, Serialize};

/// Minutes in an hour, for the hours the API speaks in.
pub const MINUTES_PER_HOUR: i64 = 60;
/// One person's day, across every project.
pub const MAX_MINUTES_PER_DAY: i64 = 24 * MINUTES_PER_HOUR;
/// The most milestones one project holds.
pub const MAX_MILESTONES: usize = 200;
/// The most tasks one project holds.
pub const MAX_TASKS: usize = 2_000;
/// The most members besides the project manager.
pub const MAX_MEMBERS: usize = 50;
/// The largest task estimate, in minutes (10,000 hours).
pub const MAX_ESTIMATE_MINUTES: i64 = 10_000 * MINUTES_PER_HOUR;

macro_rules! string_enum {
    ($name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Option<Self> {
                match s { $($text => Some($name::$variant),)+ _ => None }
            }
        }
    };
}

string_enum!(ProjectStatus {
    Active = "active",
    Completed = "completed",
});

string_enum!(MilestoneStatus {
    Planned = "planned",
    InProgress = "in_progress",
    ReadyForAcceptance = "ready_for_acceptance",
    Accepted = "accepted",
});

string_enum!(MilestoneOrigin {
    PaymentPlan = "payment_plan",
    Commitment = "commitment",
    Manual = "manual",
});

string_enum!(TaskStatus {
    Todo = "todo",
    InProgress = "in_progress",
    Done = "done",
});

string_enum!(RiskKind {
    MilestoneOverdue = "milestone_overdue",
    BehindPace = "behind_pace",
    UnassignedTask = "unassigned_task",
    OverBudget = "over_budget",
    ResourceShortage = "resource_shortage",
});

string_enum!(RiskStatus {
    Open = "open",
    Acknowledged = "acknowledged",
    Resolved = "resolved",
});

string_enum!(AcceptanceChannel {
    ProjectManager = "project_manager",
    ESignature = "e_signature",
});

/// A payment milestone of the contract's plan, as handed over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlannedPayment {
    pub payment_milestone_id: String,
    pub name: String,
    pub due: Date,
}

/// A special requirement, as handed over; dated when `due_within_days` > 0.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Requirement {
    pub description: String,
    pub due_within_days: i32,
}

/// What the rules read from a contract's handover package (the package
/// itself is kept whole beside the project).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handover {
    pub contract_id: String,
    pub contract_version: i32,
    pub contract_family_id: String,
    pub opportunity_id: String,
    pub account_id: String,
    pub title: String,
    pub account_manager_id: String,
    pub delivery_manager_id: String,
    /// The workload the delivery manager reviewed, in person-days.
    pub reviewed_person_days: i32,
    pub signed_on: Date,
    pub term: Option<(Date, Date)>,
    pub payments: Vec<PlannedPayment>,
    pub requirements: Vec<Requirement>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Acceptance {
    pub recorded_by: String,
    pub channel: AcceptanceChannel,
    pub accepted_by: String,
    pub signature_reference: String,
    pub comment: String,
    pub time: i64,
}

/// Who made and last changed a record, and when.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stamp {
    pub create_time: i64,
    pub update_time: i64,
    pub creator: String,
    pub updater: String,
}

impl Stamp {
    pub fn new(actor: &str, now: i64) -> Self {
        Stamp {
            create_time: now,
            update_time: now,
            creator: actor.to_owned(),
            updater: actor.to_owned(),
        }
    }

    pub fn touch(&mut self, actor: &str, now: i64) {
        self.update_time = now;
        actor.clone_into(&mut self.updater);
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Milestone {
    pub id: String,
    /// Its own version, for its etag.
    pub version: i64,
    pub name: String,
    pub due: Date,
    pub owner_id: String,
    pub acceptance_criteria: String,
    pub status: MilestoneStatus,
    pub origin: MilestoneOrigin,
    pub payment_milestone_id: String,
    pub commitment: String,
    pub acceptance: Option<Acceptance>,
    pub stamp: Stamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    pub id: String,
    pub version: i64,
    pub milestone_id: String,
    pub title: String,
    pub assignee_id: String,
    pub estimate_minutes: i64,
    pub status: TaskStatus,
    pub stamp: Stamp,
}

/// The service-stage team formed at go-live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceTeam {
    pub service_manager_id: String,
    pub delivery_manager_id: String,
    pub account_manager_id: String,
}

/// A delivery project: one per contract family, with its milestones and
/// tasks (a bounded aggregate, changed as a whole under one version).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub id: String,
    pub tenant: String,
    /// The row's version (its etag); set by the store.
    #[serde(skip)]
    pub version: i64,
    pub name: String,
    pub status: ProjectStatus,
    pub project_manager_id: String,
    pub member_ids: Vec<String>,
    pub progress_line: String,
    pub progress_line_time: Option<i64>,
    pub handover: Handover,
    pub milestones: Vec<Milestone>,
    pub tasks: Vec<Task>,
    pub service_team: Option<ServiceTeam>,
    pub service_level: String,
    pub go_live: Option<Date>,
    pub stamp: Stamp,
}

impl Project {
    pub fn milestone(&self, id: &str) -> Option<&Milestone> {
        self.milestones.iter().find(|m| m.id == id)
    }

    pub fn milestone_mut(&mut self, id: &str) -> Option<&mut Milestone> {
        self.milestones.iter_mut().find(|m| m.id == id)
    }

    pub fn task(&self, id: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.id == id)
    }

    pub fn task_mut(&mut self, id: &str) -> Option<&mut Task> {
        self.tasks.iter_mut().find(|t| t.id == id)
    }

    pub fn tasks_of<'a>(&'a self, milestone_id: &'a str) -> impl Iterator<Item = &'a Task> + 'a {
        self.tasks
            .iter()
            .filter(move |t| t.milestone_id == milestone_id)
    }

    /// Everyone who may see the project by being on it: the project
    /// manager, the members, the deal team's account manager and the
    /// service manager (each once).
    pub fn people(&self) -> Vec<String> {
        let mut people = vec![self.project_manager_id.clone()];
        people.extend(self.member_ids.iter().cloned());
        people.push(self.handover.account_manager_id.clone());
        if let Some(team) = &self.service_team {
            people.push(team.service_manager_id.clone());
        }
        people.retain(|p| !p.is_empty());
        people.sort();
        people.dedup();
        people
    }
}

/// Hours a person logged on a project's milestone (and task) on one day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkLog {
    pub id: String,
    pub tenant: String,
    pub project_id: String,
    pub milestone_id: String,
    pub task_id: String,
    pub person_id: String,
    pub date: Date,
    pub minutes: i64,
    pub note: String,
    pub create_time: i64,
    pub creator: String,
}

/// A risk alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RiskAlert {
    pub id: String,
    pub tenant: String,
    #[serde(skip)]
    pub version: i64,
    pub project_id: String,
    pub kind: RiskKind,
    pub status: RiskStatus,
    pub cause: String,
    pub milestone_id: String,
    pub task_id: String,
    pub person_id: String,
    pub detail: String,
    pub responsible_ids: Vec<String>,
    pub raise_time: i64,
    pub acknowledged_by: String,
    pub acknowledge_time: Option<i64>,
    pub resolve_time: Option<i64>,
}

/// A person's capacity, as set (or the tenant default).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capacity {
    pub person_id: String,
    pub version: i64,
    pub minutes_per_week: i64,
    pub is_default: bool,
    pub update_time: Option<i64>,
    pub updater: String,
    /// The planned load within the load window, in minutes.
    pub planned_minutes: i64,
    /// The capacity over the load window, in minutes.
    pub window_minutes: i64,
}

/// The hours logged on one project, summed by the store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Logged {
    pub total: i64,
    pub by_milestone: std::collections::HashMap<String, i64>,
    pub by_task: std::collections::HashMap<String, i64>,
    pub by_person: std::collections::HashMap<String, i64>,
    /// Logged within the pace window before today.
    pub recent: i64,
}

impl Logged {
    pub fn milestone(&self, id: &str) -> i64 {
        self.by_milestone.get(id).copied().unwrap_or(0)
    }

    pub fn task(&self, id: &str) -> i64 {
        self.by_task.get(id).copied().unwrap_or(0)
    }
}
