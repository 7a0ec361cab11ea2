use super::*;
use crate::domain::calendar::{Basis, MINUTE};
use crate::domain::model::Origin;
use crm_types::Role;

const HOUR: i64 = 60 * MINUTE;

fn actor() -> Actor {
    Actor::new("eng-1", vec![Role::Service])
}

/// Calendar hours, so that arithmetic in tests is plain.
fn config() -> TicketsConfig {
    let mut c = TicketsConfig::default();
    for t in &mut c.default_plan.targets {
        t.basis = Basis::Calendar;
    }
    c
}

fn ticket(config: &TicketsConfig, priority: Priority, now: i64) -> Ticket {
    let applied = applicable(&[], local_date(config, now), Tier::Existing, config);
    new_ticket(
        NewTicket {
            account_id: "acc-1".into(),
            contact_id: String::new(),
            channel: Channel::Email,
            category: "network".into(),
            priority,
            subject: "VPN down".into(),
            description: String::new(),
        },
        "t1".into(),
        "acme",
        &actor(),
        &applied,
        Tier::Existing,
        "",
        config,
        now,
    )
}

fn entitlement(level: &str, from: Date, to: Date, first_response_minutes: u32) -> Entitlement {
    let mut plan = TicketsConfig::default().default_plan;
    plan.service_level = level.into();
    for t in &mut plan.targets {
        t.first_response_minutes = first_response_minutes;
        t.resolution_minutes = first_response_minutes * 4;
    }
    Entitlement {
        id: format!("e-{level}"),
        tenant: "acme".into(),
        version: 1,
        account_id: "acc-1".into(),
        plan,
        valid_from: from,
        valid_to: to,
        origin: Origin::Manual,
        project_id: String::new(),
        contract_id: String::new(),
        account_manager_id: String::new(),
        create_time: 0,
        creator: "admin".into(),
    }
}

fn d(y: i32, m: i32, day: i32) -> Date {
    Date::new(y, m, day).unwrap_or(Date {
        year: 2000,
        month: 1,
        day: 1,
    })
}

#[test]
fn a_ticket_goes_through_its_statuses() {
    let c = config();
    let mut t = ticket(&c, Priority::P2, 0);
    assert_eq!(t.status, Status::New);
    assert!(start(&mut t, "eng-1", &c, 1).is_err(), "not assigned yet");
    assign(&mut t, "eng-1", "mgr", &c, 1).ok();
    assert_eq!(t.status, Status::Assigned);
    start(&mut t, "eng-1", &c, 2).ok();
    assert_eq!(t.status, Status::InProgress);
    assert_eq!(t.sla.first_response_time, Some(2));
    wait(&mut t, "eng-1", &c, 3).ok();
    resume(&mut t, "eng-1", &c, 4).ok();
    resolve(&mut t, "restarted the gateway", "eng-1", &c, 5).ok();
    assert_eq!(t.status, Status::Resolved);
    close(&mut t, "eng-1", &c, 6).ok();
    assert_eq!(t.status, Status::Closed);
}

#[test]
fn closing_a_new_ticket_is_refused() {
    let c = config();
    let mut t = ticket(&c, Priority::P2, 0);
    assert!(matches!(
        close(&mut t, "mgr", &c, 1),
        Err(TicketError::Precondition("INVALID_TRANSITION", _))
    ));
}

#[test]
fn reopening_only_within_the_window() {
    let c = config();
    let mut t = ticket(&c, Priority::P2, 0);
    assign(&mut t, "eng-1", "mgr", &c, 0).ok();
    start(&mut t, "eng-1", &c, 0).ok();
    resolve(&mut t, "fixed", "eng-1", &c, HOUR).ok();
    let mut late = t.clone();
    assert!(reopen(&mut t, "eng-1", &c, HOUR + 7 * DAY).is_ok());
    assert_eq!(t.status, Status::InProgress);
    assert_eq!(t.reopen_count, 1);
    assert!(t.sla.resolution.running_since.is_some());
    assert!(matches!(
        reopen(&mut late, "eng-1", &c, HOUR + 7 * DAY + 1),
        Err(TicketError::Precondition("REOPEN_WINDOW_PASSED", _))
    ));
}

#[test]
fn waiting_on_the_customer_pauses_the_clocks() {
    let c = config();
    // P2: 240 minutes to respond, 1440 to resolve.
    let mut t = ticket(&c, Priority::P2, 0);
    assign(&mut t, "eng-1", "mgr", &c, 0).ok();
    start(&mut t, "eng-1", &c, HOUR).ok();
    wait(&mut t, "eng-1", &c, 2 * HOUR).ok();
    assert_eq!(t.sla.resolution_due, None);
    // Ten hours of waiting do not count.
    resume(&mut t, "eng-1", &c, 12 * HOUR).ok();
    assert_eq!(t.sla.resolution_due, Some(12 * HOUR + 22 * HOUR));
    assert!(sweep(&mut t, "sweeper", &c, 24 * HOUR).is_empty());
}

#[test]
fn the_customers_reply_resumes_only_a_ticket_waiting_on_them() {
    let c = config();
    let mut t = ticket(&c, Priority::P2, 0);
    assign(&mut t, "eng-1", "mgr", &c, 0).ok();
    start(&mut t, "eng-1", &c, HOUR).ok();
    // In progress: a reply changes nothing.
    let version = t.version;
    assert_eq!(customer_replied(&mut t, "portal", &c, HOUR), None);
    assert_eq!((t.status, t.version), (Status::InProgress, version));
    wait(&mut t, "eng-1", &c, 2 * HOUR).ok();
    assert_eq!(
        customer_replied(&mut t, "portal", &c, 12 * HOUR),
        Some(Status::WaitingOnCustomer)
    );
    assert_eq!(t.status, Status::InProgress);
    // The clock ran again from the reply, the ten hours left out.
    assert_eq!(t.sla.resolution_due, Some(12 * HOUR + 22 * HOUR));
}

#[test]
fn a_warning_then_a_breach_escalate_once_each() {
    let mut c = config();
    c.escalation = vec!["senior-1".into(), "svc-manager".into()];
    // P1: 60 minutes to respond.
    let mut t = ticket(&c, Priority::P1, 0);
    assign(&mut t, "eng-1", "mgr", &c, 0).ok();
    assert_eq!(t.sla.next_check, Some(48 * MINUTE));
    assert!(sweep(&mut t, "sweeper", &c, 47 * MINUTE).is_empty());
    assert_eq!(
        sweep(&mut t, "sweeper", &c, 48 * MINUTE),
        vec![Fired::Warning(ClockKind::FirstResponse)]
    );
    assert!(
        sweep(&mut t, "sweeper", &c, 50 * MINUTE).is_empty(),
        "warned once"
    );
    let fired = sweep(&mut t, "sweeper", &c, 61 * MINUTE);
    assert_eq!(
        fired,
        vec![Fired::Breach {
            clock: ClockKind::FirstResponse,
            level: 1,
            next_assignee: Some("senior-1".into()),
            previous_assignee: Some("eng-1".into()),
        }]
    );
    assert_eq!(t.assignee_id.as_deref(), Some("senior-1"));
    assert_eq!(t.sla.escalation_level, 1);
    assert!(t.sla.breached());
    assert!(
        sweep(&mut t, "sweeper", &c, 62 * MINUTE).is_empty(),
        "breached once"
    );
}

#[test]
fn a_breach_past_the_rule_keeps_the_assignee() {
    let c = config();
    let mut t = ticket(&c, Priority::P1, 0);
    assign(&mut t, "eng-1", "mgr", &c, 0).ok();
    let fired = sweep(&mut t, "sweeper", &c, 2 * HOUR);
    assert!(
        fired
            .iter()
            .any(|f| matches!(f, Fired::Breach { next_assignee: Some(a), .. } if a == "eng-1"))
    );
}

#[test]
fn business_hour_targets_wait_for_the_working_day() {
    let c = TicketsConfig::default();
    // Friday 2026-12-04 17:30 UTC (calendar UTC, 09-18): P1 60 business
    // minutes = 30 on Friday + 30 on Monday.
    let friday = d(2026, 12, 4).days() * DAY + 17 * HOUR + 30 * MINUTE;
    let t = ticket(&c, Priority::P1, friday);
    let monday = d(2026, 12, 7).days() * DAY + 9 * HOUR + 30 * MINUTE;
    assert_eq!(t.sla.first_response_due, Some(monday));
}

#[test]
fn the_active_entitlement_applies_else_the_default() {
    let c = TicketsConfig::default();
    let old = entitlement("silver", d(2025, 1, 1), d(2025, 12, 31), 120);
    let gold = entitlement("gold", d(2026, 1, 1), d(2026, 12, 31), 30);
    let today = d(2026, 6, 1);
    let applied = applicable(&[old.clone(), gold], today, Tier::Existing, &c);
    assert_eq!(applied.plan.service_level, "gold");
    assert_eq!(applied.entitlement_id.as_deref(), Some("e-gold"));
    let none = applicable(&[old], today, Tier::Existing, &c);
    assert_eq!(none.plan.service_level, "standard");
    assert_eq!(none.entitlement_id, None);
}

#[test]
fn a_loyal_account_gets_the_tighter_vip_targets() {
    let c = TicketsConfig::default();
    let applied = applicable(&[], d(2026, 6, 1), Tier::Loyal, &c);
    assert_eq!(applied.plan.service_level, "vip");
    assert_eq!(
        applied
            .plan
            .target(Priority::P1)
            .map(|t| t.resolution_minutes),
        Some(240)
    );
    // An entitlement tighter than VIP keeps its own.
    let tight = entitlement("platinum", d(2026, 1, 1), d(2026, 12, 31), 10);
    let applied = applicable(&[tight], d(2026, 6, 1), Tier::Loyal, &c);
    assert_eq!(applied.plan.service_level, "platinum");
}

#[test]
fn a_priority_change_retargets_the_clocks() {
    let c = config();
    let mut t = ticket(&c, Priority::P4, 0);
    let changes = update(
        &mut t,
        TicketPatch {
            priority: Some(Priority::P1),
            ..TicketPatch::default()
        },
        "mgr",
        &c,
        0,
    );
    assert!(changes.is_ok_and(|c| c.len() == 1));
    assert_eq!(t.sla.first_response_due, Some(HOUR));
}

#[test]
fn a_rating_needs_a_resolution() {
    let c = config();
    let mut t = ticket(&c, Priority::P2, 0);
    assert!(matches!(
        rate(&mut t, 5, "int", 0),
        Err(TicketError::Precondition("NOT_RESOLVED", _))
    ));
}
