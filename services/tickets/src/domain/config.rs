//! A tenant's tickets configuration. The operator's settings give the
//! defaults of tenants that have not set their own.

use std::collections::HashSet;

use crm_types::Violation;
use serde::{Deserialize, Serialize};

use super::calendar::{Basis, Calendar};
use super::model::{MAX_TARGET_MINUTES, Plan, Priority, Target};

pub const MAX_ESCALATION_LEVELS: usize = 5;
pub const MAX_COMPLAINT_CATEGORIES: usize = 20;
pub const MAX_TIER_THRESHOLDS: usize = 50;
pub const MAX_SERVICE_LEVELS: usize = 20;
pub const MAX_HOLIDAYS: usize = 400;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthWeights {
    pub nps: u32,
    pub response_time: u32,
    pub resolution_rate: u32,
    pub complaints: u32,
    pub breaches: u32,
    /// The customers' mean CSAT of the rated tickets.
    pub csat: u32,
}

impl Default for HealthWeights {
    fn default() -> Self {
        HealthWeights {
            nps: 30,
            response_time: 20,
            resolution_rate: 20,
            complaints: 15,
            breaches: 15,
            csat: 20,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChurnRules {
    pub unopened_guides_in_a_row: u32,
    pub complaint_window_days: u32,
    pub complaint_min_count: u32,
    pub low_rating_max: u8,
    /// 0: the low-ratings rule is off.
    pub low_ratings_in_a_row: u32,
}

impl Default for ChurnRules {
    fn default() -> Self {
        ChurnRules {
            unopened_guides_in_a_row: 3,
            complaint_window_days: 30,
            complaint_min_count: 2,
            low_rating_max: 2,
            low_ratings_in_a_row: 0,
        }
    }
}

/// Seed defaults (DOMAIN.md §6): recent = within 1 month, frequent = 2 or
/// more purchases a month, valuable = 50,000 or more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TierThresholds {
    pub industry: String,
    pub recent_days: u32,
    pub frequency_window_days: u32,
    pub frequent_purchases: u32,
    pub valuable_order_units: i64,
    pub existing_min_purchases: u32,
}

impl Default for TierThresholds {
    fn default() -> Self {
        TierThresholds {
            industry: String::new(),
            recent_days: 30,
            frequency_window_days: 30,
            frequent_purchases: 2,
            valuable_order_units: 50_000,
            existing_min_purchases: 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TicketsConfig {
    pub calendar: Calendar,
    pub default_plan: Plan,
    pub vip_plan: Plan,
    pub service_levels: Vec<Plan>,
    pub warning_percent: u32,
    pub reopen_window_days: u32,
    /// The assignee of each escalation level.
    pub escalation: Vec<String>,
    pub health_weights: HealthWeights,
    pub churn_rules: ChurnRules,
    pub complaint_categories: Vec<String>,
    pub tier_thresholds: Vec<TierThresholds>,
}

fn standard_plan() -> Plan {
    let t = |priority, first_response_minutes, resolution_minutes| Target {
        priority,
        first_response_minutes,
        resolution_minutes,
        basis: Basis::Business,
    };
    Plan {
        service_level: "standard".into(),
        targets: vec![
            t(Priority::P1, 60, 480),
            t(Priority::P2, 240, 1440),
            t(Priority::P3, 480, 4320),
            t(Priority::P4, 1440, 7200),
        ],
    }
}

impl Default for TicketsConfig {
    fn default() -> Self {
        let default_plan = standard_plan();
        TicketsConfig {
            calendar: Calendar::default(),
            vip_plan: default_plan.scaled("vip", 50, Basis::Calendar),
            default_plan,
            service_levels: Vec::new(),
            warning_percent: 80,
            reopen_window_days: 7,
            escalation: Vec::new(),
            health_weights: HealthWeights::default(),
            churn_rules: ChurnRules::default(),
            complaint_categories: vec!["complaint".into()],
            tier_thresholds: Vec::new(),
        }
    }
}

/// Whether `s` is a category (and skill) name: lower case letters, digits,
/// '-' and '_', 1-64 characters.
pub fn is_category(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
}

/// Every bad field of a plan, named under `field`.
pub fn check_plan(plan: &Plan, field: &str, bad: &mut Vec<Violation>) {
    let name = plan.service_level.trim();
    if name.is_empty() || plan.service_level.chars().count() > 100 {
        bad.push(Violation::new(
            format!("{field}.service_level"),
            "required, at most 100 characters",
        ));
    }
    let mut seen = HashSet::new();
    for (i, t) in plan.targets.iter().enumerate() {
        if !seen.insert(t.priority) {
            bad.push(Violation::new(
                format!("{field}.targets[{i}].priority"),
                "each priority once",
            ));
        }
        let range = 1..=MAX_TARGET_MINUTES;
        if !range.contains(&t.first_response_minutes) {
            bad.push(Violation::new(
                format!("{field}.targets[{i}].first_response_minutes"),
                "1-525600",
            ));
        }
        if !range.contains(&t.resolution_minutes) || t.resolution_minutes < t.first_response_minutes
        {
            bad.push(Violation::new(
                format!("{field}.targets[{i}].resolution_minutes"),
                "1-525600, not less than the first response",
            ));
        }
    }
    if plan.targets.len() != 4 || seen.len() != 4 {
        bad.push(Violation::new(
            format!("{field}.targets"),
            "exactly one target for each priority P1-P4",
        ));
    }
}

impl TicketsConfig {
    /// The plan an entitlement made from a go-live takes.
    pub fn plan_named(&self, name: &str) -> Plan {
        self.service_levels
            .iter()
            .find(|p| p.service_level == name)
            .cloned()
            .unwrap_or_else(|| self.default_plan.clone())
    }

    pub fn is_complaint(&self, category: &str) -> bool {
        self.complaint_categories.iter().any(|c| c == category)
    }

    /// The thresholds of an industry, else the default ones.
    pub fn thresholds(&self, industry: &str) -> TierThresholds {
        self.tier_thresholds
            .iter()
            .find(|t| !industry.is_empty() && t.industry == industry)
            .or_else(|| self.tier_thresholds.iter().find(|t| t.industry.is_empty()))
            .cloned()
            .unwrap_or_default()
    }

    /// Every bad field, named as in the TicketsConfig message.
    pub fn check(&self) -> Result<(), Vec<Violation>> {
        let mut bad = Vec::new();
        let c = &self.calendar;
        if !(-840..=840).contains(&c.utc_offset_minutes) {
            bad.push(Violation::new("calendar.utc_offset_minutes", "-840..840"));
        }
        let days: HashSet<_> = c.working_days.iter().collect();
        if c.working_days.is_empty()
            || c.working_days.len() > 7
            || days.len() != c.working_days.len()
            || c.working_days.iter().any(|d| !(1..=7).contains(d))
        {
            bad.push(Violation::new(
                "calendar.working_days",
                "1 to 7 days, each 1 (Monday) to 7 (Sunday), each once",
            ));
        }
        if c.day_start_minute > 1439 {
            bad.push(Violation::new("calendar.day_start_minute", "0-1439"));
        }
        if c.day_end_minute > 1440 || c.day_end_minute <= c.day_start_minute {
            bad.push(Violation::new(
                "calendar.day_end_minute",
                "1-1440, after the start",
            ));
        }
        let holidays: HashSet<i64> = c.holidays.iter().map(|d| d.days()).collect();
        if c.holidays.len() > MAX_HOLIDAYS || holidays.len() != c.holidays.len() {
            bad.push(Violation::new(
                "calendar.holidays",
                "at most 400, each once",
            ));
        }
        check_plan(&self.default_plan, "default_plan", &mut bad);
        check_plan(&self.vip_plan, "vip_plan", &mut bad);
        let mut names = HashSet::new();
        if self.service_levels.len() > MAX_SERVICE_LEVELS {
            bad.push(Violation::new("service_levels", "at most 20"));
        }
        for (i, p) in self.service_levels.iter().enumerate() {
            check_plan(p, &format!("service_levels[{i}]"), &mut bad);
            if !names.insert(&p.service_level) {
                bad.push(Violation::new(
                    format!("service_levels[{i}].service_level"),
                    "each name once",
                ));
            }
        }
        if !(1..=99).contains(&self.warning_percent) {
            bad.push(Violation::new("warning_percent", "1-99"));
        }
        if self.reopen_window_days > 365 {
            bad.push(Violation::new("reopen_window_days", "0-365"));
        }
        if self.escalation.len() > MAX_ESCALATION_LEVELS
            || self.escalation.iter().any(|a| {
                a.is_empty()
                    || a.chars().count() > 64
                    || a.chars().any(|c| c.is_whitespace() || c.is_control())
            })
        {
            bad.push(Violation::new(
                "escalation.assignee_ids",
                "at most 5 ids of 1-64 characters without spaces",
            ));
        }
        let w = &self.health_weights;
        let weights = [
            w.nps,
            w.response_time,
            w.resolution_rate,
            w.complaints,
            w.breaches,
            w.csat,
        ];
        if weights.iter().any(|x| *x > 100) || weights.iter().all(|x| *x == 0) {
            bad.push(Violation::new("health_weights", "each 0-100, not all 0"));
        }
        let r = &self.churn_rules;
        if !(1..=100).contains(&r.unopened_guides_in_a_row) {
            bad.push(Violation::new(
                "churn_rules.unopened_guides_in_a_row",
                "1-100",
            ));
        }
        if !(1..=365).contains(&r.complaint_window_days) {
            bad.push(Violation::new("churn_rules.complaint_window_days", "1-365"));
        }
        if !(1..=1000).contains(&r.complaint_min_count) {
            bad.push(Violation::new("churn_rules.complaint_min_count", "1-1000"));
        }
        if !(1..=5).contains(&r.low_rating_max) {
            bad.push(Violation::new("churn_rules.low_rating_max", "1-5"));
        }
        if r.low_ratings_in_a_row > 100 {
            bad.push(Violation::new("churn_rules.low_ratings_in_a_row", "0-100"));
        }
        let cats: HashSet<_> = self.complaint_categories.iter().collect();
        if self.complaint_categories.len() > MAX_COMPLAINT_CATEGORIES
            || cats.len() != self.complaint_categories.len()
            || !self.complaint_categories.iter().all(|c| is_category(c))
        {
            bad.push(Violation::new(
                "complaint_categories",
                "at most 20 categories (lower case letters, digits, '-', '_'), each once",
            ));
        }
        let mut industries = HashSet::new();
        if self.tier_thresholds.len() > MAX_TIER_THRESHOLDS {
            bad.push(Violation::new("tier_thresholds", "at most 50"));
        }
        for (i, t) in self.tier_thresholds.iter().enumerate() {
            let f = |name: &str| format!("tier_thresholds[{i}].{name}");
            if !industries.insert(&t.industry) || t.industry.chars().count() > 100 {
                bad.push(Violation::new(
                    f("industry"),
                    "at most 100 characters, each once",
                ));
            }
            if !(1..=3650).contains(&t.recent_days) {
                bad.push(Violation::new(f("recent_days"), "1-3650"));
            }
            if !(1..=3650).contains(&t.frequency_window_days) {
                bad.push(Violation::new(f("frequency_window_days"), "1-3650"));
            }
            if !(1..=1000).contains(&t.frequent_purchases) {
                bad.push(Violation::new(f("frequent_purchases"), "1-1000"));
            }
            if !(0..=1_000_000_000_000_000).contains(&t.valuable_order_units) {
                bad.push(Violation::new(f("valuable_order_units"), "0-10^15"));
            }
            if !(1..=1000).contains(&t.existing_min_purchases) {
                bad.push(Violation::new(f("existing_min_purchases"), "1-1000"));
            }
        }
        if bad.is_empty() { Ok(()) } else { Err(bad) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid() {
        assert_eq!(TicketsConfig::default().check(), Ok(()));
    }

    #[test]
    fn a_plan_needs_one_target_per_priority() {
        let mut c = TicketsConfig::default();
        c.default_plan.targets.pop();
        let Err(bad) = c.check() else {
            panic!("accepted");
        };
        assert!(bad.iter().any(|v| v.field == "default_plan.targets"));
    }

    #[test]
    fn thresholds_follow_the_industry_else_the_default() {
        let c = TicketsConfig {
            tier_thresholds: vec![TierThresholds {
                industry: "retail".into(),
                valuable_order_units: 10,
                ..TierThresholds::default()
            }],
            ..TicketsConfig::default()
        };
        assert_eq!(c.thresholds("retail").valuable_order_units, 10);
        assert_eq!(c.thresholds("energy").valuable_order_units, 50_000);
    }
}
