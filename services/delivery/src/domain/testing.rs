//! Fixtures for the domain's unit tests.
#![allow(clippy::unwrap_used)]

use crm_types::Date;

use super::model::*;
use super::rules::project_from_handover;

/// 2027-01-01 plus `n` days.
pub fn day(n: i64) -> Date {
    Date::new(2027, 1, 1).unwrap().plus_days(n)
}

/// A contract signed on day 0 with one payment milestone ("go-live",
/// due day 30) and a requirement "deploy within 15 days".
pub fn handover(version: i32) -> Handover {
    Handover {
        contract_id: format!("c{version}"),
        contract_version: version,
        contract_family_id: "c1".into(),
        opportunity_id: "o1".into(),
        account_id: "acct".into(),
        title: "ACME rollout".into(),
        account_manager_id: "am".into(),
        delivery_manager_id: "dm".into(),
        reviewed_person_days: 0,
        signed_on: day(0),
        term: Some((day(0), day(364))),
        payments: vec![PlannedPayment {
            payment_milestone_id: "pm1".into(),
            name: "go-live".into(),
            due: day(30),
        }],
        requirements: vec![],
    }
}

/// A project from [`handover`] with its one milestone.
pub fn project() -> Project {
    let mut n = 0;
    project_from_handover(
        "t",
        "p1".into(),
        handover(1),
        || {
            n += 1;
            format!("m{n}")
        },
        "system",
        0,
    )
}

pub fn task(id: &str, milestone: &str, assignee: &str, minutes: i64) -> Task {
    Task {
        id: id.into(),
        version: 1,
        milestone_id: milestone.into(),
        title: id.into(),
        assignee_id: assignee.into(),
        estimate_minutes: minutes,
        status: TaskStatus::Todo,
        stamp: Stamp::new("dm", 0),
    }
}
