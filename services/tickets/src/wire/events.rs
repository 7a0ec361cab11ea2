//! The events a change publishes, written to the outbox in the change's
//! transaction. Each carries the record as it was right after the change.

use crm_events::NewEvent;
use crm_proto::crm::tickets::v1 as pb;

use super::mapping::{
    account_tier_pb, entitlement_pb, health_pb, retention_pb, status_pb, ticket_pb, tier_pb,
};
use crate::domain::{Account, ClockKind, Entitlement, RetentionTask, Status, Ticket, Tier};

fn on_ticket<M: prost::Name>(t: &Ticket, time: i64, payload: &M) -> NewEvent {
    NewEvent::new(&t.tenant, &t.id, time, payload)
}

fn snapshot(t: &Ticket) -> Option<pb::Ticket> {
    Some(ticket_pb(t))
}

fn clock_pb(c: ClockKind) -> i32 {
    (match c {
        ClockKind::FirstResponse => pb::SlaClock::FirstResponse,
        ClockKind::Resolution => pb::SlaClock::Resolution,
    }) as i32
}

pub fn entitlement_created(e: &Entitlement, time: i64) -> NewEvent {
    NewEvent::new(
        &e.tenant,
        &e.id,
        time,
        &pb::EntitlementCreated {
            entitlement: Some(entitlement_pb(e)),
        },
    )
}

pub fn created(t: &Ticket, time: i64) -> NewEvent {
    on_ticket(
        t,
        time,
        &pb::TicketCreated {
            ticket: snapshot(t),
        },
    )
}

pub fn assigned(t: &Ticket, previous: Option<&str>, time: i64) -> NewEvent {
    on_ticket(
        t,
        time,
        &pb::TicketAssigned {
            ticket: snapshot(t),
            previous_assignee_id: previous.unwrap_or_default().to_owned(),
        },
    )
}

pub fn status_changed(t: &Ticket, previous: Status, time: i64) -> NewEvent {
    on_ticket(
        t,
        time,
        &pb::TicketStatusChanged {
            ticket: snapshot(t),
            previous_status: status_pb(previous),
        },
    )
}

pub fn warning(t: &Ticket, clock: ClockKind, time: i64) -> NewEvent {
    on_ticket(
        t,
        time,
        &pb::TicketSlaWarning {
            ticket: snapshot(t),
            clock: clock_pb(clock),
        },
    )
}

pub fn breached(
    t: &Ticket,
    clock: ClockKind,
    level: u32,
    next: Option<&str>,
    time: i64,
) -> NewEvent {
    on_ticket(
        t,
        time,
        &pb::TicketSlaBreached {
            ticket: snapshot(t),
            clock: clock_pb(clock),
            escalation_level: i32::try_from(level).unwrap_or(i32::MAX),
            next_assignee_id: next.unwrap_or_default().to_owned(),
        },
    )
}

pub fn resolved(t: &Ticket, time: i64) -> NewEvent {
    on_ticket(
        t,
        time,
        &pb::TicketResolved {
            ticket: snapshot(t),
        },
    )
}

pub fn reopened(t: &Ticket, reason: &str, time: i64) -> NewEvent {
    on_ticket(
        t,
        time,
        &pb::TicketReopened {
            ticket: snapshot(t),
            reason: reason.to_owned(),
        },
    )
}

pub fn csat_recorded(t: &Ticket, time: i64) -> NewEvent {
    on_ticket(
        t,
        time,
        &pb::CsatRecorded {
            ticket: snapshot(t),
        },
    )
}

pub fn health_changed(a: &Account, previous_score: u32, time: i64) -> NewEvent {
    NewEvent::new(
        &a.tenant,
        &a.account_id,
        time,
        &pb::AccountHealthChanged {
            health: Some(health_pb(a)),
            previous_score: i32::try_from(previous_score).unwrap_or(0),
        },
    )
}

pub fn churn_risk_raised(a: &Account, time: i64) -> NewEvent {
    NewEvent::new(
        &a.tenant,
        &a.account_id,
        time,
        &pb::AccountChurnRiskRaised {
            health: Some(health_pb(a)),
        },
    )
}

pub fn retention_task_created(tenant: &str, task: &RetentionTask, time: i64) -> NewEvent {
    NewEvent::new(
        tenant,
        &task.account_id,
        time,
        &pb::RetentionTaskCreated {
            task: Some(retention_pb(task)),
        },
    )
}

pub fn tier_changed(a: &Account, recent: u64, previous: Tier, time: i64) -> NewEvent {
    NewEvent::new(
        &a.tenant,
        &a.account_id,
        time,
        &pb::LoyaltyTierChanged {
            tier: Some(account_tier_pb(a, recent)),
            previous_tier: tier_pb(previous),
        },
    )
}
