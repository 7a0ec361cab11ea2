//! A tenant's contract configuration: the approval chain and the rules
//! that add steps, expected step durations, the renewal notice, and the
//! separation of duties. The operator's settings give the defaults of
//! tenants that have not set their own.

use crm_types::{Money, Role, Violation};
use serde::{Deserialize, Serialize};

/// The roles that may decide a step of a contract's chain.
pub const DECIDING_ROLES: [Role; 5] = [
    Role::Manager,
    Role::Finance,
    Role::Legal,
    Role::Delivery,
    Role::Admin,
];
/// The longest chain a tenant configures.
pub const MAX_CHAIN: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContractsConfig {
    /// The chain every submission goes through, in order (seed 004 §3.2:
    /// sales manager -> finance -> legal).
    pub approval_chain: Vec<Role>,
    /// A total at or above the threshold of its currency adds a second
    /// manager step.
    pub large_total_thresholds: Vec<Money>,
    /// A line discounted by more than this percentage adds another finance
    /// step; 0 or 100 turns the rule off.
    pub deep_discount_percent: u8,
    /// Working days each step is expected to take (seed 004 §3.2: "legal
    /// review, expected within 1 working day").
    pub step_expected_working_days: u8,
    /// Days before the end of the term the renewal notice is raised.
    pub renewal_notice_days: u16,
    /// Distinct deciders, the OA integrations, and the approvers they may
    /// decide for: the same policy as opportunities'.
    pub approval_policy: crm_approvals::Policy,
}

impl Default for ContractsConfig {
    fn default() -> Self {
        ContractsConfig {
            approval_chain: vec![Role::Manager, Role::Finance, Role::Legal],
            large_total_thresholds: Vec::new(),
            deep_discount_percent: 0,
            step_expected_working_days: 1,
            renewal_notice_days: 60,
            approval_policy: crm_approvals::Policy::default(),
        }
    }
}

impl ContractsConfig {
    /// Every bad field, named as in the ContractsConfig message.
    pub fn check(&self) -> Result<(), Vec<Violation>> {
        let mut bad = Vec::new();
        if self.approval_chain.is_empty() || self.approval_chain.len() > MAX_CHAIN {
            bad.push(Violation::new(
                "config.approval_chain",
                format!("1 to {MAX_CHAIN} roles"),
            ));
        }
        for (i, role) in self.approval_chain.iter().enumerate() {
            if !DECIDING_ROLES.contains(role) {
                bad.push(Violation::new(
                    format!("config.approval_chain[{i}]"),
                    "must be manager, finance, legal, delivery or admin",
                ));
            }
        }
        for (i, t) in self.large_total_thresholds.iter().enumerate() {
            let max = i128::from(super::pricing::MAX_AMOUNT_UNITS) * 1_000_000_000;
            if t.total_nanos() <= 0 || t.total_nanos() > max {
                bad.push(Violation::new(
                    format!("config.large_total_thresholds[{i}]"),
                    format!(
                        "must be more than 0 and at most {} units",
                        super::pricing::MAX_AMOUNT_UNITS
                    ),
                ));
            }
            if self.large_total_thresholds[..i]
                .iter()
                .any(|o| o.currency == t.currency)
            {
                bad.push(Violation::new(
                    format!("config.large_total_thresholds[{i}].currency_code"),
                    "one threshold per currency",
                ));
            }
        }
        if self.deep_discount_percent > 100 {
            bad.push(Violation::new(
                "config.deep_discount_percent",
                "must be 0 to 100",
            ));
        }
        if !(1..=30).contains(&self.step_expected_working_days) {
            bad.push(Violation::new(
                "config.step_expected_working_days",
                "must be 1 to 30",
            ));
        }
        if !(1..=3650).contains(&self.renewal_notice_days) {
            bad.push(Violation::new(
                "config.renewal_notice_days",
                "must be 1 to 3650",
            ));
        }
        if bad.is_empty() { Ok(()) } else { Err(bad) }
    }

    /// The large-total threshold of `currency`, if the tenant set one.
    pub fn threshold(&self, currency: &str) -> Option<&Money> {
        self.large_total_thresholds
            .iter()
            .find(|t| t.currency == currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_chain_is_manager_finance_legal_and_valid() {
        let c = ContractsConfig::default();
        assert_eq!(
            c.approval_chain,
            [Role::Manager, Role::Finance, Role::Legal]
        );
        assert_eq!(
            (c.step_expected_working_days, c.renewal_notice_days),
            (1, 60)
        );
        assert_eq!(c.check(), Ok(()));
    }

    #[test]
    fn bad_configurations_name_each_field() {
        let c = ContractsConfig {
            approval_chain: vec![Role::Sales],
            large_total_thresholds: vec![
                Money::new("CNY", 0, 0),
                Money::new("USD", 1_000_000_000_001, 0),
            ],
            step_expected_working_days: 0,
            renewal_notice_days: 0,
            ..ContractsConfig::default()
        };
        let fields: Vec<String> = c
            .check()
            .err()
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(
            fields,
            [
                "config.approval_chain[0]",
                "config.large_total_thresholds[0]",
                "config.large_total_thresholds[1]",
                "config.step_expected_working_days",
                "config.renewal_notice_days"
            ]
        );
    }
}
