//! Lead scoring (DOMAIN 1, seed 004 §2.1): score 0-100 = interaction
//! frequency + depth of behaviour + profile fit, each capped, with every
//! contribution listed so a person can see why.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Profile, ScoringModel};

/// What happened between us and the lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InteractionKind {
    CallConnected,
    CallNotConnected,
    EmailOpened,
    EmailReplied,
    Visit,
    DemoAttended,
    ContractTemplateViewed,
    Meeting,
    FormFilled,
}

impl InteractionKind {
    pub const ALL: [InteractionKind; 9] = [
        InteractionKind::CallConnected,
        InteractionKind::CallNotConnected,
        InteractionKind::EmailOpened,
        InteractionKind::EmailReplied,
        InteractionKind::Visit,
        InteractionKind::DemoAttended,
        InteractionKind::ContractTemplateViewed,
        InteractionKind::Meeting,
        InteractionKind::FormFilled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            InteractionKind::CallConnected => "call_connected",
            InteractionKind::CallNotConnected => "call_not_connected",
            InteractionKind::EmailOpened => "email_opened",
            InteractionKind::EmailReplied => "email_replied",
            InteractionKind::Visit => "visit",
            InteractionKind::DemoAttended => "demo_attended",
            InteractionKind::ContractTemplateViewed => "contract_template_viewed",
            InteractionKind::Meeting => "meeting",
            InteractionKind::FormFilled => "form_filled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// A lead's interactions, counted: what the score needs, read with one
/// aggregate query instead of loading every interaction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    pub per_kind: BTreeMap<InteractionKind, u32>,
    /// Interactions inside the model's frequency window.
    pub in_window: u32,
}

impl Tally {
    /// The tally with one more interaction of `kind` at `occur_time`: the
    /// one being logged, which its rescoring counts.
    pub fn with_logged(
        mut self,
        kind: InteractionKind,
        occur_time: i64,
        model: &ScoringModel,
        now: i64,
    ) -> Self {
        *self.per_kind.entry(kind).or_default() += 1;
        if occur_time >= model.window_start(now) {
            self.in_window += 1;
        }
        self
    }
}

/// One contribution to a score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScoreItem {
    pub component: String,
    pub reason: String,
    pub points: i32,
}

/// A score and how it came about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScoreBreakdown {
    pub frequency: i32,
    pub behaviour: i32,
    pub profile_fit: i32,
    pub total: i32,
    pub items: Vec<ScoreItem>,
}

/// Scores a lead from its profile and its interactions.
pub fn score(profile: &Profile, tally: &Tally, model: &ScoringModel) -> ScoreBreakdown {
    let mut items = Vec::new();
    let mut item = |component: &str, reason: String, points: i32| {
        if points != 0 {
            items.push(ScoreItem {
                component: component.to_owned(),
                reason,
                points,
            });
        }
    };

    let frequency_raw = saturating_mul(tally.in_window, model.frequency_points);
    let frequency = frequency_raw.min(model.frequency_cap);
    item(
        "frequency",
        format!(
            "{} interactions in the last {} days",
            tally.in_window,
            model.frequency_window.as_secs() / 86_400
        ),
        frequency,
    );

    let mut behaviour_raw = 0_i32;
    for (kind, count) in &tally.per_kind {
        let weight = model.interaction_weights.get(kind).copied().unwrap_or(0);
        let points = saturating_mul(*count, weight);
        behaviour_raw = behaviour_raw.saturating_add(points);
        item("behaviour", format!("{} x{count}", kind.as_str()), points);
    }
    let behaviour = behaviour_raw.min(model.behaviour_cap);
    if behaviour < behaviour_raw {
        item(
            "behaviour",
            format!("capped at {}", model.behaviour_cap),
            behaviour - behaviour_raw,
        );
    }

    let mut profile_fit = 0;
    let industry = profile.industry.to_lowercase();
    if !industry.is_empty()
        && model
            .target_industries
            .iter()
            .any(|t| t.to_lowercase() == industry)
    {
        profile_fit += model.industry_points;
        item(
            "profile_fit",
            format!("industry {}", profile.industry),
            model.industry_points,
        );
    }
    if let (Some(floor), Some(budget)) = (&model.min_budget, &profile.budget)
        && floor.currency == budget.currency
        && budget
            .ceiling()
            .is_some_and(|c| c.nanos_total() >= i128::from(floor.units) * 1_000_000_000)
    {
        profile_fit += model.budget_points;
        item(
            "profile_fit",
            format!("budget reaches {} {}", floor.units, floor.currency),
            model.budget_points,
        );
    }
    if model.target_company_sizes.contains(&profile.company_size) {
        profile_fit += model.company_size_points;
        item(
            "profile_fit",
            format!("company size {}", profile.company_size.as_str()),
            model.company_size_points,
        );
    }

    let total = (frequency + behaviour + profile_fit).clamp(0, 100);
    ScoreBreakdown {
        frequency,
        behaviour,
        profile_fit,
        total,
        items,
    }
}

fn saturating_mul(count: u32, points: i32) -> i32 {
    i32::try_from(count)
        .unwrap_or(i32::MAX)
        .saturating_mul(points)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{Amount, Budget, BudgetFloor, CompanySize, LeadConfig};

    fn tally(kinds: &[(InteractionKind, u32)], in_window: u32) -> Tally {
        Tally {
            per_kind: kinds.iter().copied().collect(),
            in_window,
        }
    }

    #[test]
    fn a_logged_interaction_counts_in_the_window_only_when_inside_it() {
        let model = LeadConfig::default().scoring;
        let now = 100 * 86_400_000_000;
        let start = model.window_start(now);
        let old = Tally::default().with_logged(InteractionKind::Visit, start - 1, &model, now);
        assert_eq!(old.per_kind.get(&InteractionKind::Visit), Some(&1));
        assert_eq!(old.in_window, 0);
        let recent = old.with_logged(InteractionKind::Visit, start, &model, now);
        assert_eq!(recent.per_kind.get(&InteractionKind::Visit), Some(&2));
        assert_eq!(recent.in_window, 1);
    }

    #[test]
    fn a_demo_weighs_more_than_an_opened_email() {
        let model = LeadConfig::default().scoring;
        let profile = Profile::default();
        let demo = score(
            &profile,
            &tally(&[(InteractionKind::DemoAttended, 1)], 1),
            &model,
        );
        let email = score(
            &profile,
            &tally(&[(InteractionKind::EmailOpened, 1)], 1),
            &model,
        );
        assert!(demo.total > email.total, "{demo:?} vs {email:?}");
        assert_eq!(demo.frequency, email.frequency);
    }

    #[test]
    fn components_are_capped_and_the_total_is_their_sum() {
        let model = LeadConfig::default().scoring;
        let many = tally(&[(InteractionKind::ContractTemplateViewed, 50)], 50);
        let s = score(&Profile::default(), &many, &model);
        assert_eq!(s.behaviour, model.behaviour_cap);
        assert_eq!(s.frequency, model.frequency_cap);
        assert_eq!(s.total, s.frequency + s.behaviour + s.profile_fit);
        assert!(s.items.iter().any(|i| i.reason.starts_with("capped")));
    }

    #[test]
    fn profile_fit_uses_the_tenants_targets() {
        let mut model = LeadConfig::default().scoring;
        model.target_industries = vec!["Manufacturing".into()];
        model.target_company_sizes = vec![CompanySize::Large];
        model.min_budget = Some(BudgetFloor {
            currency: "CNY".into(),
            units: 100_000,
        });
        let profile = Profile {
            industry: "manufacturing".into(),
            company_size: CompanySize::Large,
            budget: Some(Budget {
                currency: "CNY".into(),
                min: None,
                max: Some(Amount {
                    units: 150_000,
                    nanos: 0,
                }),
            }),
            ..Profile::default()
        };
        let s = score(&profile, &Tally::default(), &model);
        assert_eq!(
            s.profile_fit,
            model.industry_points + model.budget_points + model.company_size_points
        );

        let other_currency = Profile {
            budget: Some(Budget {
                currency: "USD".into(),
                min: None,
                max: Some(Amount {
                    units: 150_000,
                    nanos: 0,
                }),
            }),
            ..profile.clone()
        };
        let s2 = score(&other_currency, &Tally::default(), &model);
        assert_eq!(s2.profile_fit, s.profile_fit - model.budget_points);
    }

    #[test]
    fn weights_are_configuration() {
        let mut model = LeadConfig::default().scoring;
        model
            .interaction_weights
            .insert(InteractionKind::EmailOpened, 40);
        let s = score(
            &Profile::default(),
            &tally(&[(InteractionKind::EmailOpened, 1)], 0),
            &model,
        );
        assert_eq!(s.behaviour, 40);
    }
}
