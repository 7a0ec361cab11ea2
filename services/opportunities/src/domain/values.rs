//! The values the use cases take and give: drafts of new records, list
//! filters, a lead as the conversion sees it, the forecast.

use crm_types::{Actor, Date, Money};

use super::{
    Activity, ActivityKind, Contact, Grade, OpportunityConfig, Qualification, Stage, Team,
    WorkHours,
};

/// The fields of a new account, checked for form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountDraft {
    pub name: String,
    pub registration_number: String,
    pub industry: String,
    pub region: String,
    /// Empty: the creator.
    pub owner_id: String,
}

/// The fields of a new contact, checked for form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactDraft {
    pub account_id: String,
    pub name: String,
    pub title: String,
    pub phone: String,
    pub email: String,
}

impl ContactDraft {
    /// The new contact, made by `actor`.
    pub fn contact(self, actor: &Actor, id: String, now: i64) -> Contact {
        Contact {
            id,
            account_id: self.account_id,
            name: self.name,
            title: self.title,
            phone: self.phone,
            email: self.email,
            create_time: now,
            creator: actor.id.clone(),
        }
    }
}

/// The fields of a new opportunity, checked for form.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpportunityDraft {
    pub account_id: String,
    pub name: String,
    pub amount: Option<Money>,
    pub expected_close_date: Option<Date>,
    pub grade: Option<Grade>,
    /// An empty account manager is the creator.
    pub team: Team,
    pub competitors: Vec<String>,
    pub qualification: Option<Qualification>,
}

/// An activity to log, checked for form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivityDraft {
    pub kind: ActivityKind,
    pub contact_ids: Vec<String>,
    pub occur_time: i64,
    pub notes: String,
}

impl ActivityDraft {
    /// The activity `actor` logs on the opportunity.
    pub fn activity(self, opportunity_id: &str, actor: &Actor, id: String) -> Activity {
        Activity {
            id,
            opportunity_id: opportunity_id.to_owned(),
            kind: self.kind,
            contact_ids: self.contact_ids,
            occur_time: self.occur_time,
            notes: self.notes,
            creator: actor.id.clone(),
        }
    }
}

/// Presales hours to log, checked for form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkHoursDraft {
    pub work_date: Date,
    pub minutes: i32,
    pub notes: String,
}

impl WorkHoursDraft {
    /// The hours `actor` worked on the opportunity.
    pub fn work_hours(self, opportunity_id: &str, actor: &Actor, id: String) -> WorkHours {
        WorkHours {
            id,
            opportunity_id: opportunity_id.to_owned(),
            person_id: actor.id.clone(),
            work_date: self.work_date,
            minutes: self.minutes,
            notes: self.notes,
        }
    }
}

/// What an account update asks for: region and owner apply at once, core
/// fields (name, registration number, industry) through an approval.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountUpdate {
    pub region: Option<String>,
    pub owner_id: Option<String>,
    pub core: std::collections::BTreeMap<String, String>,
    pub reason: String,
}

/// Which opportunities a list returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpportunityFilter {
    /// Set from [`super::Visibility`]: only opportunities whose team
    /// includes this person.
    pub team_member: Option<String>,
    pub stage: Option<Stage>,
    pub account_id: Option<String>,
    pub owner_id: Option<String>,
}

/// A lead as the conversion sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeadSnapshot {
    pub lead_id: String,
    pub company: String,
    pub contact_name: String,
    pub phone: String,
    pub email: String,
    pub industry: String,
    pub region: String,
    pub owner_id: String,
    pub opportunity_name: String,
    pub amount: Option<Money>,
}

/// The open pipeline of one stage in one currency, as stored: the exact sum
/// in billionths, which may exceed what a `Money` holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageTotal {
    pub stage: Stage,
    pub currency: String,
    pub count: i64,
    pub total_nanos: i128,
}

/// `total` billionths of `currency`, capped at the largest `Money` (a sum
/// that large needs millions of opportunities at the maximum amount).
fn capped(currency: &str, total: i128) -> Money {
    let most = Money::new(currency, i64::MAX, 999_999_999);
    Money::from_total_nanos(currency, total.min(most.total_nanos())).unwrap_or(most)
}

/// Which accounts a list returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AccountFilter {
    /// Set from [`super::Visibility`]: only accounts this person owns or
    /// works on an opportunity of.
    pub visible_to: Option<String>,
    pub owner_id: Option<String>,
}

/// Who a list of approvals is narrowed to: those whose subject the person
/// sees, and the pending ones awaiting one of their roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalReader {
    pub person: String,
    pub roles: Vec<crm_types::Role>,
}

/// Which approvals a list returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApprovalFilter {
    /// Set from [`super::Visibility`]; `None` for supervisors.
    pub reader: Option<ApprovalReader>,
    pub subject_id: Option<String>,
    pub status: Option<super::ApprovalStatus>,
}

impl ApprovalFilter {
    /// The filter as `actor` may apply it.
    pub fn for_actor(
        actor: &Actor,
        subject_id: Option<String>,
        status: Option<super::ApprovalStatus>,
    ) -> Self {
        let reader = super::Visibility::of(actor)
            .team_member()
            .map(|person| ApprovalReader {
                person: person.to_owned(),
                roles: actor.roles.clone(),
            });
        ApprovalFilter {
            reader,
            subject_id,
            status,
        }
    }
}

/// One stage's pipeline in one currency, weighted by the stage's
/// probability.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForecastLine {
    pub stage: Stage,
    pub count: i64,
    pub amount: Money,
    pub weighted: Money,
}

/// The weighted pipeline: each stage's total times its probability, in
/// stage order, then by currency.
pub fn forecast(totals: Vec<StageTotal>, config: &OpportunityConfig) -> Vec<ForecastLine> {
    let mut lines: Vec<ForecastLine> = totals
        .into_iter()
        .map(|t| {
            let weighted = t.total_nanos * i128::from(config.probability(t.stage)) / 100;
            ForecastLine {
                weighted: capped(&t.currency, weighted),
                amount: capped(&t.currency, t.total_nanos),
                stage: t.stage,
                count: t.count,
            }
        })
        .collect();
    lines.sort_by(|a, b| (a.stage, &a.amount.currency).cmp(&(b.stage, &b.amount.currency)));
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forecast_weights_each_stage_by_its_probability() {
        let total = |stage, currency: &str, units: i64| StageTotal {
            stage,
            currency: currency.into(),
            count: 2,
            total_nanos: i128::from(units) * 1_000_000_000,
        };
        let lines = forecast(
            vec![
                total(Stage::Proposal, "USD", 1_000),
                total(Stage::Validate, "CNY", 500),
                total(Stage::Proposal, "CNY", 2_000),
            ],
            &OpportunityConfig::default(),
        );
        let shown: Vec<_> = lines
            .iter()
            .map(|l| (l.stage, l.amount.currency.as_str(), l.weighted.units))
            .collect();
        assert_eq!(
            shown,
            [
                (Stage::Validate, "CNY", 50),
                (Stage::Proposal, "CNY", 1_000),
                (Stage::Proposal, "USD", 500),
            ]
        );
    }

    #[test]
    fn a_pipeline_beyond_what_money_holds_is_capped_not_lost() {
        let huge = StageTotal {
            stage: Stage::Proposal,
            currency: "CNY".into(),
            count: 20_000_000,
            total_nanos: i128::from(i64::MAX) * 4_000_000_000,
        };
        let lines = forecast(vec![huge], &OpportunityConfig::default());
        assert_eq!(lines.len(), 1, "the line is kept");
        assert_eq!(lines[0].amount.units, i64::MAX);
        assert_eq!(
            lines[0].weighted.units,
            i64::MAX,
            "half of 4 x max is still over"
        );
        let small = StageTotal {
            stage: Stage::Proposal,
            currency: "CNY".into(),
            count: 3,
            total_nanos: 3 * i128::from(crate::domain::MAX_MONEY_UNITS) * 1_000_000_000,
        };
        let lines = forecast(vec![small], &OpportunityConfig::default());
        assert_eq!(
            (lines[0].amount.units, lines[0].weighted.units),
            (3_000_000_000_000, 1_500_000_000_000),
            "bounded amounts sum exactly"
        );
    }
}
