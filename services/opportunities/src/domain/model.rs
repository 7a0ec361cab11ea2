//! The records of the service and their small value types.

use crm_types::{Actor, Date, Money, Violation};
use serde::{Deserialize, Serialize};

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}
pub(crate) use string_enum;

string_enum!(
    /// Sales stages in order (seed 003 §6); won and lost are final.
    Stage {
        Validate = "validate",
        Approved = "approved",
        NeedsAnalysis = "needs_analysis",
        ValuePresentation = "value_presentation",
        Proposal = "proposal",
        Bidding = "bidding",
        Negotiation = "negotiation",
        Won = "won",
        Lost = "lost",
    }
);

impl Stage {
    pub fn is_final(self) -> bool {
        matches!(self, Stage::Won | Stage::Lost)
    }

    /// Position in the sales process; lost ranks with won.
    pub fn rank(self) -> usize {
        match self {
            Stage::Lost => Stage::Won as usize,
            other => other as usize,
        }
    }
}

string_enum!(Grade { A = "a", B = "b", C = "c", E = "e" });

string_enum!(DecisionRole {
    DecisionMaker = "decision_maker",
    Influencer = "influencer",
    TechnicalEvaluator = "technical_evaluator",
    User = "user",
    Coach = "coach",
});

string_enum!(ActivityKind { Meeting = "meeting", Call = "call", Demo = "demo", Visit = "visit", Email = "email" });

/// Folded for matching names: lower case, letters and digits only.
pub fn name_key(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub tenant: String,
    pub version: i64,
    pub name: String,
    pub registration_number: String,
    pub industry: String,
    pub region: String,
    pub owner_id: String,
    pub pending_approval_id: Option<String>,
    pub create_time: i64,
    pub update_time: i64,
    pub creator: String,
    pub updater: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub title: String,
    pub phone: String,
    pub email: String,
    pub create_time: i64,
    pub creator: String,
}

/// The iron triangle and more.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    pub account_manager_id: String,
    pub solution_manager_id: String,
    pub delivery_manager_id: String,
    pub other_member_ids: Vec<String>,
}

impl Team {
    /// Everyone on the team, once each: what membership rows hold.
    pub fn members(&self) -> std::collections::BTreeSet<&str> {
        [
            self.account_manager_id.as_str(),
            self.solution_manager_id.as_str(),
            self.delivery_manager_id.as_str(),
        ]
        .into_iter()
        .chain(self.other_member_ids.iter().map(String::as_str))
        .filter(|m| !m.is_empty())
        .collect()
    }

    pub fn includes(&self, person: &str) -> bool {
        !person.is_empty()
            && (self.account_manager_id == person
                || self.solution_manager_id == person
                || self.delivery_manager_id == person
                || self.other_member_ids.iter().any(|m| m == person))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Qualification {
    pub is_real: bool,
    pub can_compete: bool,
    pub can_win: bool,
    pub worth_it: bool,
    pub notes: String,
}

/// The delivery review's state on the opportunity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReviewState {
    pub approval_id: String,
    pub status: super::ApprovalStatus,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opportunity {
    pub id: String,
    pub tenant: String,
    pub version: i64,
    pub account_id: String,
    pub name: String,
    pub amount: Option<Money>,
    pub expected_close_date: Option<Date>,
    pub grade: Option<Grade>,
    pub team: Team,
    pub competitors: Vec<String>,
    pub stage: Stage,
    pub win_loss_reason: String,
    pub qualification: Option<Qualification>,
    pub solution_summary: String,
    pub workload_person_days: Option<i32>,
    pub quote: Option<Money>,
    pub delivery_review: Option<ReviewState>,
    pub lead_id: Option<String>,
    pub create_time: i64,
    pub update_time: i64,
    pub creator: String,
    pub updater: String,
}

impl Opportunity {
    /// The opaque etag of this version, as clients see it.
    pub fn etag(&self) -> String {
        crm_types::Etag::of_version(u64::try_from(self.version).unwrap_or_default()).to_string()
    }

    /// Whether `actor` may see and change this opportunity (see
    /// [`super::Visibility`]).
    pub fn check_access(&self, actor: &Actor) -> Result<(), super::OpportunityError> {
        if super::Visibility::of(actor).admits(&self.team) {
            Ok(())
        } else {
            Err(super::OpportunityError::Forbidden(
                "NOT_ON_TEAM",
                format!("{} is not on the team of {}", actor.id, self.id),
            ))
        }
    }

    /// What the delivery manager reviews, and who reviews it, in one
    /// comparable string: another delivery manager has not reviewed it.
    pub fn review_snapshot(&self) -> String {
        format!(
            "{}\u{1f}{}\u{1f}{}\u{1f}{}",
            self.team.delivery_manager_id,
            self.solution_summary,
            self.workload_person_days
                .map(|d| d.to_string())
                .unwrap_or_default(),
            self.quote
                .as_ref()
                .map(Money::to_string)
                .unwrap_or_default()
        )
    }
}

/// A contact's place in the decision chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub contact_id: String,
    pub role: DecisionRole,
    pub relationship: u8,
    pub solution_acceptance: u8,
    pub price_acceptance: u8,
}

impl Member {
    /// Every bad field, named under `member`.
    pub fn validate(&self) -> Vec<Violation> {
        [
            ("member.relationship", self.relationship),
            ("member.solution_acceptance", self.solution_acceptance),
            ("member.price_acceptance", self.price_acceptance),
        ]
        .into_iter()
        .filter(|(_, r)| !(1..=5).contains(r))
        .map(|(f, _)| Violation::new(f, "a rating from 1 to 5"))
        .collect()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Activity {
    pub id: String,
    pub opportunity_id: String,
    pub kind: ActivityKind,
    pub contact_ids: Vec<String>,
    pub occur_time: i64,
    pub notes: String,
    pub creator: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkHours {
    pub id: String,
    pub opportunity_id: String,
    pub person_id: String,
    pub work_date: Date,
    pub minutes: i32,
    pub notes: String,
}
