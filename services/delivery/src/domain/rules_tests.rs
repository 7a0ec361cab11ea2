//! Unit tests of the project rules.
#![allow(clippy::unwrap_used)]

use super::error::DeliveryError;
use super::model::*;
use super::rules::*;
use super::testing::{day, handover, project, task};

fn ids() -> impl FnMut() -> String {
    let mut n = 100;
    move || {
        n += 1;
        format!("m{n}")
    }
}

#[test]
fn a_handover_makes_a_project_managed_by_the_delivery_manager_with_its_commitments_dated() {
    let mut h = handover(1);
    h.requirements = vec![
        Requirement {
            description: "deploy within 15 days".into(),
            due_within_days: 15,
        },
        Requirement {
            description: "weekly report".into(),
            due_within_days: 0,
        },
    ];
    let p = project_from_handover("t", "p".into(), h, ids(), "system", 0);
    assert_eq!(p.project_manager_id, "dm");
    assert_eq!(p.status, ProjectStatus::Active);
    let planned: Vec<_> = p
        .milestones
        .iter()
        .map(|m| (m.origin, m.due, m.name.as_str()))
        .collect();
    assert_eq!(
        planned,
        [
            (
                MilestoneOrigin::Commitment,
                day(15),
                "deploy within 15 days"
            ),
            (MilestoneOrigin::PaymentPlan, day(30), "go-live"),
        ]
    );
    assert_eq!(p.milestones[1].payment_milestone_id, "pm1");
}

#[test]
fn an_amendment_redates_and_adds_milestones_and_a_replay_changes_nothing() {
    let mut p = project();
    let mut h2 = handover(2);
    h2.payments[0].due = day(40);
    h2.payments[0].payment_milestone_id = "pm1-v2".into();
    h2.payments.push(PlannedPayment {
        payment_milestone_id: "pm2".into(),
        name: "acceptance".into(),
        due: day(60),
    });
    let amended = amend(&mut p, h2.clone(), ids(), "system", 5).unwrap();
    assert_eq!(amended.changed.len(), 2);
    assert_eq!(p.milestones.len(), 2);
    assert_eq!(
        (
            p.milestones[0].due,
            p.milestones[0].payment_milestone_id.as_str()
        ),
        (day(40), "pm1-v2")
    );
    assert_eq!(p.handover.contract_version, 2);
    // The same version again (a replayed event), or an older one: nothing.
    assert!(amend(&mut p, h2, ids(), "system", 6).is_none());
    assert!(amend(&mut p, handover(1), ids(), "system", 6).is_none());
    assert_eq!(p.milestones.len(), 2);
}

#[test]
fn milestones_move_forward_and_an_accepted_one_never_reopens() {
    let mut p = project();
    let m = p.milestones[0].id.clone();
    assert!(matches!(
        move_milestone(&mut p, &m, "", MilestoneStatus::ReadyForAcceptance, "dm", 1),
        Err(DeliveryError::Precondition("INVALID_TRANSITION", _))
    ));
    move_milestone(&mut p, &m, "", MilestoneStatus::InProgress, "dm", 1).unwrap();
    move_milestone(&mut p, &m, "", MilestoneStatus::ReadyForAcceptance, "dm", 1).unwrap();
    accept_milestone(&mut p, &m, "", acceptance(), "dm", 2).unwrap();
    assert!(matches!(
        move_milestone(&mut p, &m, "", MilestoneStatus::InProgress, "dm", 3),
        Err(DeliveryError::Precondition("MILESTONE_ACCEPTED", _))
    ));
    assert!(matches!(
        update_milestone(&mut p, &m, "", MilestoneInput::default(), "dm", 3),
        Err(DeliveryError::Precondition("MILESTONE_ACCEPTED", _))
    ));
}

fn acceptance() -> Acceptance {
    Acceptance {
        recorded_by: "dm".into(),
        channel: AcceptanceChannel::ProjectManager,
        accepted_by: "customer".into(),
        signature_reference: String::new(),
        comment: String::new(),
        time: 2,
    }
}

#[test]
fn acceptance_lists_every_open_task_and_a_wrong_status() {
    let mut p = project();
    let m = p.milestones[0].id.clone();
    p.tasks.push(task("t1", &m, "dev", 60));
    p.tasks.push(task("t2", &m, "dev", 60));
    p.tasks[1].status = TaskStatus::Done;
    p.tasks.push(task("t3", &m, "dev", 60));
    let Err(DeliveryError::Incomplete { reason, missing }) =
        accept_milestone(&mut p, &m, "", acceptance(), "dm", 1)
    else {
        panic!("accepted with open tasks")
    };
    assert_eq!(reason, "MILESTONE_NOT_ACCEPTABLE");
    let listed: Vec<_> = missing
        .iter()
        .map(|v| (v.kind, v.subject.as_str()))
        .collect();
    assert_eq!(
        listed,
        [
            ("STATUS", m.as_str()),
            ("TASK_NOT_DONE", "t1"),
            ("TASK_NOT_DONE", "t3")
        ]
    );
}

#[test]
fn going_live_needs_every_milestone_accepted_and_forms_the_service_team() {
    let mut p = project();
    let m = p.milestones[0].id.clone();
    let Err(DeliveryError::Incomplete { reason, missing }) =
        go_live(&mut p, "sm", "gold", day(31), "dm", 1)
    else {
        panic!("went live with an open milestone")
    };
    assert_eq!((reason, missing.len()), ("OPEN_MILESTONES", 1));
    assert_eq!(
        (missing[0].kind, missing[0].subject.as_str()),
        ("MILESTONE_NOT_ACCEPTED", m.as_str())
    );
    p.milestones[0].status = MilestoneStatus::Accepted;
    go_live(&mut p, "sm", "gold", day(31), "dm", 1).unwrap();
    assert_eq!(p.status, ProjectStatus::Completed);
    let team = p.service_team.clone().unwrap();
    assert_eq!(
        (
            team.service_manager_id.as_str(),
            team.delivery_manager_id.as_str(),
            team.account_manager_id.as_str()
        ),
        ("sm", "dm", "am")
    );
    assert!(matches!(
        go_live(&mut p, "sm", "", day(31), "dm", 2),
        Err(DeliveryError::Precondition("PROJECT_COMPLETED", _))
    ));
}

#[test]
fn progress_is_computed_from_accepted_milestones_and_done_estimates() {
    let mut p = project();
    let m1 = p.milestones[0].id.clone();
    let mut second = p.milestones[0].clone();
    second.id = "m2".into();
    p.milestones.push(second);
    assert_eq!(progress(&p).percent, 0);
    p.tasks.push(task("a", "m2", "dev", 60));
    p.tasks.push(task("b", "m2", "dev", 180));
    p.tasks[0].status = TaskStatus::Done;
    // m1: 0 %, m2: 25 % -> 12 %.
    let pr = progress(&p);
    assert_eq!(
        (pr.percent, pr.done_minutes, pr.total_minutes),
        (12, 60, 240)
    );
    p.milestone_mut(&m1).unwrap().status = MilestoneStatus::Accepted;
    assert_eq!(progress(&p).percent, 62);
    assert_eq!(progress(&p).accepted, 1);
}

#[test]
fn hours_are_positive_at_most_a_day_and_logs_stay_in_the_project() {
    assert_eq!(
        minutes_of(1.5, "log.hours", true, MAX_MINUTES_PER_DAY).unwrap(),
        90
    );
    for bad in [-1.0, 0.0, 24.5, f64::NAN, f64::INFINITY] {
        assert!(
            matches!(
                minutes_of(bad, "log.hours", true, MAX_MINUTES_PER_DAY),
                Err(DeliveryError::Invalid(v)) if v[0].field == "log.hours"
            ),
            "{bad}"
        );
    }
    assert!(fits_in_day(20 * 60, 4 * 60));
    assert!(!fits_in_day(20 * 60, 4 * 60 + 1));
    let mut p = project();
    let m = p.milestones[0].id.clone();
    p.tasks.push(task("t1", &m, "dev", 60));
    assert_eq!(check_log(&p, "", "t1", day(1), day(1)).unwrap(), m);
    let field = |r: Result<String, DeliveryError>| match r {
        Err(DeliveryError::Invalid(v)) => v[0].field.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        field(check_log(&p, "", "t1", day(2), day(1))),
        "log.work_date"
    );
    assert_eq!(
        field(check_log(&p, "", "other", day(1), day(1))),
        "log.task_id"
    );
    assert_eq!(
        field(check_log(&p, "other", "", day(1), day(1))),
        "log.milestone_id"
    );
    p.milestones[0].status = MilestoneStatus::Accepted;
    assert!(matches!(
        check_log(&p, &m, "", day(1), day(1)),
        Err(DeliveryError::Precondition("MILESTONE_ACCEPTED", _))
    ));
}

#[test]
fn profitability_reads_actual_hours_against_the_reviewed_workload() {
    let mut p = project();
    p.handover.reviewed_person_days = 10; // 80h
    let logged = Logged {
        total: 100 * 60,
        ..Logged::default()
    };
    let pr = profitability(&p, &logged, 8);
    assert_eq!(
        (
            pr.reviewed_minutes,
            pr.actual_minutes,
            pr.reviewed_used_percent
        ),
        (80 * 60, 100 * 60, 125)
    );
}
