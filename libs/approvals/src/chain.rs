//! Which steps an approval asks: the kind's chain, plus the steps a
//! tenant's rules add for what this request is about.

use std::collections::BTreeMap;

use crm_types::Role;
use serde::{Deserialize, Serialize};

/// A non-float number a rule compares: `units` and billionths, as money is
/// kept (an amount of 1,000,000.00 or a discount of 12.5 percent).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Quantity {
    pub units: i64,
    pub nanos: i32,
}

impl Quantity {
    pub fn new(units: i64, nanos: i32) -> Self {
        Quantity { units, nanos }
    }

    fn total_nanos(self) -> i128 {
        i128::from(self.units) * 1_000_000_000 + i128::from(self.nanos)
    }
}

impl PartialOrd for Quantity {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Quantity {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.total_nanos().cmp(&other.total_nanos())
    }
}

/// What a request states about its subject, by measure name: the service
/// chooses the names (`amount.CNY` for an opportunity's amount in yuan,
/// `line_discount_percent` for a contract's largest line discount).
pub type Facts = BTreeMap<String, Quantity>;

/// A tenant's rule: when the request's `measure` is over `over`, the chain
/// gets a step for `role` (after the kind's own steps, in rule order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepRule {
    pub measure: String,
    pub over: Quantity,
    pub role: Role,
}

impl StepRule {
    fn applies(&self, facts: &Facts) -> bool {
        facts.get(&self.measure).is_some_and(|v| *v > self.over)
    }
}

/// The roles of an approval's steps: `base` (the kind's chain), then one
/// step per rule that applies to `facts`, each role asked once.
pub fn chain(base: &[Role], rules: &[StepRule], facts: &Facts) -> Vec<Role> {
    let mut roles = base.to_vec();
    for rule in rules.iter().filter(|r| r.applies(facts)) {
        if !roles.contains(&rule.role) {
            roles.push(rule.role);
        }
    }
    roles
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(pairs: &[(&str, Quantity)]) -> Facts {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    }

    #[test]
    fn an_amount_over_the_threshold_adds_a_step() {
        let rules = [StepRule {
            measure: "amount.CNY".into(),
            over: Quantity::new(1_000_000, 0),
            role: Role::Finance,
        }];
        let base = [Role::Manager];
        let at = facts(&[("amount.CNY", Quantity::new(1_000_000, 0))]);
        assert_eq!(chain(&base, &rules, &at), [Role::Manager], "not over");
        let over = facts(&[("amount.CNY", Quantity::new(1_000_000, 1))]);
        assert_eq!(chain(&base, &rules, &over), [Role::Manager, Role::Finance]);
        let other_currency = facts(&[("amount.USD", Quantity::new(9_000_000, 0))]);
        assert_eq!(chain(&base, &rules, &other_currency), [Role::Manager]);
    }

    #[test]
    fn a_line_discount_over_a_percentage_adds_finance_then_legal_once() {
        let rules = [
            StepRule {
                measure: "line_discount_percent".into(),
                over: Quantity::new(15, 0),
                role: Role::Finance,
            },
            StepRule {
                measure: "line_discount_percent".into(),
                over: Quantity::new(30, 0),
                role: Role::Legal,
            },
            StepRule {
                measure: "line_discount_percent".into(),
                over: Quantity::new(40, 0),
                role: Role::Manager,
            },
        ];
        let base = [Role::Manager];
        let small = facts(&[("line_discount_percent", Quantity::new(12, 500_000_000))]);
        assert_eq!(chain(&base, &rules, &small), [Role::Manager]);
        let deep = facts(&[("line_discount_percent", Quantity::new(45, 0))]);
        assert_eq!(
            chain(&base, &rules, &deep),
            [Role::Manager, Role::Finance, Role::Legal],
            "each role is asked once, in rule order after the kind's own steps"
        );
    }
}
