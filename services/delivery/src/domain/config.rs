//! The tenant's delivery configuration: the thresholds of the risk rules
//! and the capacity default. Defaults are the operator's
//! (`delivery.defaults`); a tenant replaces them whole.

use crm_types::Violation;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    /// A task without an assignee is a risk once its milestone is due
    /// within this many days.
    pub unassigned_task_window_days: i32,
    /// Hours over the budget by more than this percentage are a risk.
    pub over_budget_threshold_percent: i32,
    /// A person's capacity when none was set, in minutes a week.
    pub default_capacity_minutes_per_week: i64,
    /// Tasks whose milestone is due within this many days are planned load.
    pub load_window_days: i32,
    /// The team's pace is what it logged over this many days, per day.
    pub pace_window_days: i32,
    /// Hours in a person-day, to read the reviewed workload.
    pub hours_per_person_day: i32,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            unassigned_task_window_days: 5,
            over_budget_threshold_percent: 10,
            default_capacity_minutes_per_week: 40 * 60,
            load_window_days: 14,
            pace_window_days: 14,
            hours_per_person_day: 8,
        }
    }
}

impl DeliveryConfig {
    /// Every field out of its range, named as in the proto.
    pub fn check(&self) -> Result<(), Vec<Violation>> {
        let mut bad = Vec::new();
        let mut range = |value: i64, field: &str, lo: i64, hi: i64| {
            if !(lo..=hi).contains(&value) {
                bad.push(Violation::new(
                    format!("config.{field}"),
                    format!("must be {lo} to {hi}"),
                ));
            }
        };
        range(
            self.unassigned_task_window_days.into(),
            "unassigned_task_window_days",
            0,
            365,
        );
        range(
            self.over_budget_threshold_percent.into(),
            "over_budget_threshold_percent",
            0,
            1000,
        );
        range(
            self.default_capacity_minutes_per_week,
            "default_capacity_hours_per_week",
            0,
            168 * 60,
        );
        range(self.load_window_days.into(), "load_window_days", 1, 365);
        range(self.pace_window_days.into(), "pace_window_days", 1, 365);
        range(
            self.hours_per_person_day.into(),
            "hours_per_person_day",
            1,
            24,
        );
        if bad.is_empty() { Ok(()) } else { Err(bad) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_bounds_name_the_field() {
        assert!(DeliveryConfig::default().check().is_ok());
        let bad = DeliveryConfig {
            pace_window_days: 0,
            hours_per_person_day: 25,
            ..DeliveryConfig::default()
        };
        let fields: Vec<_> = bad
            .check()
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(
            fields,
            ["config.pace_window_days", "config.hours_per_person_day"]
        );
    }
}
