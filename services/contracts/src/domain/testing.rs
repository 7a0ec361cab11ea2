//! Fixtures of the domain's unit tests.
#![allow(clippy::unwrap_used)]

use crm_types::{Actor, Date, Money, Role};

use super::model::*;
use super::rules::new_contract;

/// Monday 2026-11-30 09:00 UTC.
pub const MONDAY_9: i64 = 1_796_029_200_000_000;

pub fn sales() -> Actor {
    Actor::new("amy", vec![Role::Sales])
}
pub fn other_sales() -> Actor {
    Actor::new("bob", vec![Role::Sales])
}
pub fn manager() -> Actor {
    Actor::new("wang", vec![Role::Manager])
}
pub fn finance() -> Actor {
    Actor::new("fei", vec![Role::Finance])
}
pub fn legal() -> Actor {
    Actor::new("lin", vec![Role::Legal])
}

pub fn ids() -> impl FnMut() -> String {
    let mut n = 0;
    move || {
        n += 1;
        format!("m{n}")
    }
}

pub fn facts() -> OpportunityFacts {
    OpportunityFacts {
        id: "o1".into(),
        account_id: "acc1".into(),
        name: "ERP for ACME".into(),
        won: true,
        team: Team {
            account_manager_id: "amy".into(),
            solution_manager_id: "sol".into(),
            delivery_manager_id: "dora".into(),
            other_member_ids: vec![],
        },
        amount: Some(Money::new("CNY", 120_000, 0)),
        reviewed: ReviewedScope {
            reviewed: true,
            quote: Some(Money::new("CNY", 100_000, 0)),
            workload_person_days: 40,
            solution_summary: "ERP rollout".into(),
        },
        key_contacts: vec![],
    }
}

/// A draft prefilled from the opportunity's quote: no term, no milestones.
pub fn draft() -> Contract {
    new_contract(
        facts(),
        DraftPatch::default(),
        &sales(),
        "t",
        "c1".into(),
        ids(),
        0,
    )
    .unwrap()
}

/// A draft ready to submit: 2027 as its term, one milestone of 100%.
pub fn ready() -> Contract {
    let patch = DraftPatch {
        term: Some(Some(Term {
            start: Date::new(2027, 1, 1).unwrap(),
            end: Date::new(2027, 12, 31).unwrap(),
        })),
        milestones: Some(vec![MilestoneInput {
            name: "all".into(),
            due_date: Date::new(2027, 1, 31).unwrap(),
            share: Share::Percent(100),
        }]),
        ..DraftPatch::default()
    };
    new_contract(facts(), patch, &sales(), "t", "c1".into(), ids(), 0).unwrap()
}
