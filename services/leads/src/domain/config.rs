//! A tenant's lead configuration: channels, the scoring model, thresholds,
//! the claim limit and the follow-up windows. The operator's file gives the
//! defaults; a tenant's admin may replace them through the API.

use std::{collections::BTreeMap, time::Duration};

use serde::{Deserialize, Serialize};

use super::{CompanySize, InteractionKind, Violation};

/// A minimum budget: whole units of one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetFloor {
    pub currency: String,
    pub units: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScoringModel {
    pub interaction_weights: BTreeMap<InteractionKind, i32>,
    pub behaviour_cap: i32,
    pub frequency_points: i32,
    #[serde(with = "crm_config::duration")]
    pub frequency_window: Duration,
    pub frequency_cap: i32,
    pub target_industries: Vec<String>,
    pub industry_points: i32,
    pub min_budget: Option<BudgetFloor>,
    pub budget_points: i32,
    pub target_company_sizes: Vec<CompanySize>,
    pub company_size_points: i32,
}

impl Default for ScoringModel {
    /// Deep behaviour (a demo, a viewed contract template) can carry a lead
    /// to the default threshold of 80 on its own; profile fit adds up to 20.
    fn default() -> Self {
        use InteractionKind::*;
        ScoringModel {
            interaction_weights: [
                (CallConnected, 8),
                (CallNotConnected, 1),
                (EmailOpened, 2),
                (EmailReplied, 8),
                (Visit, 15),
                (DemoAttended, 20),
                (ContractTemplateViewed, 25),
                (Meeting, 12),
                (FormFilled, 5),
            ]
            .into_iter()
            .collect(),
            behaviour_cap: 60,
            frequency_points: 4,
            frequency_window: Duration::from_secs(30 * 86_400),
            frequency_cap: 20,
            target_industries: Vec::new(),
            industry_points: 10,
            min_budget: None,
            budget_points: 5,
            target_company_sizes: Vec::new(),
            company_size_points: 5,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LeadConfig {
    pub channels: Vec<String>,
    pub scoring: ScoringModel,
    pub qualify_threshold: i32,
    pub hot_threshold: i32,
    pub daily_claim_limit: u32,
    #[serde(with = "crm_config::duration")]
    pub follow_up_window: Duration,
    #[serde(with = "crm_config::duration")]
    pub hot_follow_up_window: Duration,
}

impl Default for LeadConfig {
    fn default() -> Self {
        LeadConfig {
            channels: [
                "referral",
                "trade-show",
                "sem",
                "cold-call",
                "website",
                "partner",
                "marketing",
            ]
            .map(String::from)
            .to_vec(),
            scoring: ScoringModel::default(),
            qualify_threshold: 80,
            hot_threshold: 60,
            daily_claim_limit: 20,
            follow_up_window: Duration::from_secs(48 * 3600),
            hot_follow_up_window: Duration::from_secs(24 * 3600),
        }
    }
}

impl ScoringModel {
    /// Interactions at or after this time count towards the frequency score.
    pub fn window_start(&self, now: i64) -> i64 {
        now.saturating_sub(i64::try_from(self.frequency_window.as_micros()).unwrap_or(i64::MAX))
    }
}

/// A tenant's lead configuration as stored, with its version; version 0 is
/// the operator's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredConfig {
    pub config: LeadConfig,
    pub version: i64,
    pub update_time: Option<i64>,
    pub updater: String,
}

/// Most channels a tenant may configure: every lead names one, and a
/// refusal lists them all.
pub const MAX_CHANNELS: usize = 100;
/// Most target industries of the scoring model.
pub const MAX_TARGET_INDUSTRIES: usize = 100;
/// Longest target industry, in characters: as long as a lead's industry.
pub const MAX_INDUSTRY_CHARS: usize = 100;

impl LeadConfig {
    /// Every violation of the configuration, with field paths as in the
    /// API's `LeadConfig` message.
    pub fn validate(&self) -> Vec<Violation> {
        let mut v = Vec::new();
        if self.channels.is_empty() {
            v.push(Violation::new("channels", "at least one channel"));
        }
        if self.channels.len() > MAX_CHANNELS {
            v.push(Violation::new(
                "channels",
                format!("at most {MAX_CHANNELS} channels"),
            ));
        }
        // Items are checked only within a list's bound: a huge list costs
        // one violation, not quadratic work.
        for (i, channel) in self.channels.iter().enumerate().take(MAX_CHANNELS) {
            let valid = (1..=64).contains(&channel.len())
                && channel.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                });
            if !valid {
                v.push(Violation::new(
                    format!("channels[{i}]"),
                    "1-64 of a-z, 0-9, - and _",
                ));
            } else if self.channels[..i].contains(channel) {
                v.push(Violation::new(format!("channels[{i}]"), "listed twice"));
            }
        }
        let industries = &self.scoring.target_industries;
        if industries.len() > MAX_TARGET_INDUSTRIES {
            v.push(Violation::new(
                "scoring.target_industries",
                format!("at most {MAX_TARGET_INDUSTRIES} industries"),
            ));
        }
        for (i, industry) in industries.iter().enumerate().take(MAX_TARGET_INDUSTRIES) {
            let field = format!("scoring.target_industries[{i}]");
            let chars = industry.chars().count();
            if !(1..=MAX_INDUSTRY_CHARS).contains(&chars)
                || industry.trim() != industry
                || industry.chars().any(char::is_control)
            {
                v.push(Violation::new(
                    field,
                    format!(
                        "1 to {MAX_INDUSTRY_CHARS} characters, no control characters or surrounding spaces"
                    ),
                ));
            } else if industries[..i]
                .iter()
                .any(|o| o.to_lowercase() == industry.to_lowercase())
            {
                v.push(Violation::new(field, "listed twice"));
            }
        }
        let sizes = &self.scoring.target_company_sizes;
        // One of each size at most (unknown, small, medium, large, enterprise).
        const SIZES: usize = 5;
        if sizes.len() > SIZES {
            v.push(Violation::new(
                "scoring.target_company_sizes",
                format!("at most {SIZES}, each once"),
            ));
        }
        for (i, size) in sizes.iter().enumerate().take(SIZES) {
            if sizes[..i].contains(size) {
                v.push(Violation::new(
                    format!("scoring.target_company_sizes[{i}]"),
                    "listed twice",
                ));
            }
        }
        let mut percent = |field: &str, value: i32| {
            if !(0..=100).contains(&value) {
                v.push(Violation::new(field, "must be 0-100"));
            }
        };
        percent("qualify_threshold", self.qualify_threshold);
        percent("hot_threshold", self.hot_threshold);
        let s = &self.scoring;
        percent("scoring.behaviour_cap", s.behaviour_cap);
        percent("scoring.frequency_points", s.frequency_points);
        percent("scoring.frequency_cap", s.frequency_cap);
        percent("scoring.industry_points", s.industry_points);
        percent("scoring.budget_points", s.budget_points);
        percent("scoring.company_size_points", s.company_size_points);
        for (kind, points) in &s.interaction_weights {
            percent(
                &format!("scoring.interaction_weights[{}]", kind.as_str()),
                *points,
            );
        }
        if self.qualify_threshold < 1 {
            v.push(Violation::new("qualify_threshold", "must be at least 1"));
        }
        if self.hot_threshold > self.qualify_threshold {
            v.push(Violation::new(
                "hot_threshold",
                "must not exceed qualify_threshold",
            ));
        }
        if s.min_budget.as_ref().is_some_and(|b| b.units < 0) {
            v.push(Violation::new("scoring.min_budget", "must not be negative"));
        }
        for (field, d) in [
            ("follow_up_window", self.follow_up_window),
            ("hot_follow_up_window", self.hot_follow_up_window),
            ("scoring.frequency_window", s.frequency_window),
        ] {
            if d.as_secs() == 0 {
                v.push(Violation::new(field, "must be at least one second"));
            }
        }
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        assert_eq!(LeadConfig::default().validate(), vec![]);
    }

    #[test]
    fn lists_and_their_strings_are_bounded() {
        let mut c = LeadConfig {
            channels: (0..=MAX_CHANNELS).map(|i| format!("c{i}")).collect(),
            ..LeadConfig::default()
        };
        c.scoring.target_industries = vec![
            "Retail".into(),
            "retail".into(),
            "x".repeat(MAX_INDUSTRY_CHARS + 1),
            "a\0b".into(),
            String::new(),
            " padded".into(),
            "製造業".into(),
        ];
        c.scoring.target_company_sizes = vec![CompanySize::Large, CompanySize::Large];
        let fields: Vec<_> = c.validate().into_iter().map(|v| v.field).collect();
        assert_eq!(
            fields,
            [
                "channels",
                "scoring.target_industries[1]",
                "scoring.target_industries[2]",
                "scoring.target_industries[3]",
                "scoring.target_industries[4]",
                "scoring.target_industries[5]",
                "scoring.target_company_sizes[1]",
            ]
        );
        c.channels.truncate(MAX_CHANNELS);
        c.scoring.target_industries =
            vec!["x".repeat(MAX_INDUSTRY_CHARS); MAX_TARGET_INDUSTRIES + 1];
        let fields: Vec<_> = c.validate().into_iter().map(|v| v.field).collect();
        assert_eq!(fields[0], "scoring.target_industries");
    }

    #[test]
    fn every_bad_field_is_named() {
        let c = LeadConfig {
            channels: vec!["Referral".into(), "sem".into(), "sem".into()],
            qualify_threshold: 120,
            hot_threshold: 130,
            follow_up_window: Duration::ZERO,
            ..LeadConfig::default()
        };
        let fields: Vec<_> = c.validate().into_iter().map(|v| v.field).collect();
        for f in [
            "channels[0]",
            "channels[2]",
            "qualify_threshold",
            "hot_threshold",
            "follow_up_window",
        ] {
            assert!(fields.iter().any(|x| x == f), "{f} missing from {fields:?}");
        }
    }
}
