//! The ticket's life: which SLA applies, the status machine, the clocks
//! (paused while waiting on the customer), warnings, breaches and their
//! escalation.

use crm_types::{Actor, Date, Etag};

use super::calendar::DAY;
use super::config::TicketsConfig;
use super::error::TicketError;
use super::model::{
    Channel, Clock, Entitlement, Plan, Priority, Sla, Status, Target, Ticket, Tier,
};

/// A new ticket as the caller describes it (validated by `wire`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTicket {
    pub account_id: String,
    pub contact_id: String,
    pub channel: Channel,
    pub category: String,
    pub priority: Priority,
    pub subject: String,
    pub description: String,
}

/// The changes UpdateTicket may make; `None` leaves a field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TicketPatch {
    pub subject: Option<String>,
    pub description: Option<String>,
    pub category: Option<String>,
    pub priority: Option<Priority>,
    pub contact_id: Option<String>,
}

/// What SLA a ticket gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub plan: Plan,
    pub entitlement_id: Option<String>,
}

/// The tenant-local date of an instant.
pub fn local_date(config: &TicketsConfig, now: i64) -> Date {
    let offset = i64::from(config.calendar.utc_offset_minutes) * super::calendar::MINUTE;
    Date::from_days((now + offset).div_euclid(DAY))
}

/// The account's active entitlement (the latest to start), else the
/// tenant's default SLA; a loyal (VIP) account gets, per priority, the
/// tighter of that and the VIP plan.
pub fn applicable(
    entitlements: &[Entitlement],
    today: Date,
    tier: Tier,
    config: &TicketsConfig,
) -> Applied {
    let active = entitlements
        .iter()
        .filter(|e| e.active_on(today))
        .max_by(|a, b| {
            a.valid_from
                .cmp(&b.valid_from)
                .then(a.create_time.cmp(&b.create_time))
        });
    let mut plan = active.map_or_else(|| config.default_plan.clone(), |e| e.plan.clone());
    if tier == Tier::Loyal {
        let mut tighter = false;
        for t in &mut plan.targets {
            if let Some(v) = config.vip_plan.target(t.priority)
                && v.resolution_minutes < t.resolution_minutes
            {
                *t = v;
                tighter = true;
            }
        }
        if tighter {
            plan.service_level = config.vip_plan.service_level.clone();
        }
    }
    Applied {
        plan,
        entitlement_id: active.map(|e| e.id.clone()),
    }
}

fn target_of(plan: &Plan, priority: Priority, config: &TicketsConfig) -> Target {
    plan.target(priority)
        .or_else(|| config.default_plan.target(priority))
        .unwrap_or(Target {
            priority,
            first_response_minutes: 60,
            resolution_minutes: 480,
            basis: super::calendar::Basis::Calendar,
        })
}

/// A new ticket with both clocks running from `now`; dispatch comes after.
#[allow(clippy::too_many_arguments)]
pub fn new_ticket(
    input: NewTicket,
    id: String,
    tenant: &str,
    actor: &Actor,
    applied: &Applied,
    tier: Tier,
    account_manager_id: &str,
    config: &TicketsConfig,
    now: i64,
) -> Ticket {
    let target = target_of(&applied.plan, input.priority, config);
    let complaint = config.is_complaint(&input.category);
    let mut t = Ticket {
        id,
        tenant: tenant.to_owned(),
        version: 1,
        account_id: input.account_id,
        contact_id: input.contact_id,
        channel: input.channel,
        category: input.category,
        priority: input.priority,
        subject: input.subject,
        description: input.description,
        status: Status::New,
        assignee_id: None,
        queue_reason: String::new(),
        sla: Sla {
            service_level: applied.plan.service_level.clone(),
            entitlement_id: applied.entitlement_id.clone(),
            plan: applied.plan.clone(),
            target,
            first_response: Clock::started(target.first_response_minutes, now),
            resolution: Clock::started(target.resolution_minutes, now),
            first_response_time: None,
            escalation_level: 0,
            first_response_due: None,
            resolution_due: None,
            next_check: None,
        },
        resolution: String::new(),
        csat: 0,
        account_tier: tier,
        complaint,
        account_manager_id: account_manager_id.to_owned(),
        reopen_count: 0,
        resolve_time: None,
        close_time: None,
        create_time: now,
        update_time: now,
        creator: actor.id.clone(),
        updater: actor.id.clone(),
    };
    refresh(&mut t, config);
    t
}

/// Derives the due times and the sweeper's next check from the clocks.
pub fn refresh(t: &mut Ticket, config: &TicketsConfig) {
    let (cal, basis, pct) = (&config.calendar, t.sla.target.basis, config.warning_percent);
    let s = &mut t.sla;
    s.first_response_due = s.first_response.due(cal, basis);
    s.resolution_due = s.resolution.due(cal, basis);
    s.next_check = [
        s.first_response.next_check(cal, basis, pct),
        s.resolution.next_check(cal, basis, pct),
    ]
    .into_iter()
    .flatten()
    .min();
}

pub fn check_etag(sent: &str, version: i64) -> Result<(), TicketError> {
    if sent.is_empty() || Etag::matches(sent, u64::try_from(version).unwrap_or_default()) {
        Ok(())
    } else {
        Err(TicketError::Stale)
    }
}

fn invalid_transition(t: &Ticket, to: &str) -> TicketError {
    TicketError::precondition(
        "INVALID_TRANSITION",
        format!("a {} ticket cannot be {to}", t.status.as_str()),
    )
}

fn touch(t: &mut Ticket, actor: &str, now: i64) {
    t.version += 1;
    t.update_time = now;
    t.updater = actor.to_owned();
}

/// Assigns the ticket; a new one becomes assigned. Returns the assignee
/// before.
pub fn assign(
    t: &mut Ticket,
    assignee: &str,
    actor: &str,
    config: &TicketsConfig,
    now: i64,
) -> Result<Option<String>, TicketError> {
    if matches!(t.status, Status::Resolved | Status::Closed) {
        return Err(invalid_transition(t, "assigned"));
    }
    let before = t.assignee_id.replace(assignee.to_owned());
    if t.status == Status::New {
        t.status = Status::Assigned;
    }
    t.queue_reason.clear();
    touch(t, actor, now);
    refresh(t, config);
    Ok(before)
}

/// Leaves a new ticket in the queue with the reason.
pub fn queue(t: &mut Ticket, reason: String) {
    t.queue_reason = reason;
}

/// The first response: stops the first-response clock once.
pub fn respond(t: &mut Ticket, config: &TicketsConfig, now: i64) -> bool {
    if t.sla.first_response_time.is_some() {
        return false;
    }
    t.sla.first_response_time = Some(now);
    t.sla
        .first_response
        .stop(&config.calendar, t.sla.target.basis, now);
    refresh(t, config);
    true
}

pub fn start(
    t: &mut Ticket,
    actor: &str,
    config: &TicketsConfig,
    now: i64,
) -> Result<Status, TicketError> {
    if t.status != Status::Assigned {
        return Err(invalid_transition(t, "started"));
    }
    let before = t.status;
    t.status = Status::InProgress;
    respond(t, config, now);
    touch(t, actor, now);
    refresh(t, config);
    Ok(before)
}

/// in_progress -> waiting_on_customer: both clocks pause.
pub fn wait(
    t: &mut Ticket,
    actor: &str,
    config: &TicketsConfig,
    now: i64,
) -> Result<Status, TicketError> {
    if t.status != Status::InProgress {
        return Err(invalid_transition(t, "put on waiting"));
    }
    let before = t.status;
    t.status = Status::WaitingOnCustomer;
    let (cal, basis) = (&config.calendar, t.sla.target.basis);
    t.sla.first_response.pause(cal, basis, now);
    t.sla.resolution.pause(cal, basis, now);
    touch(t, actor, now);
    refresh(t, config);
    Ok(before)
}

/// waiting_on_customer -> in_progress: the clocks run again.
pub fn resume(
    t: &mut Ticket,
    actor: &str,
    config: &TicketsConfig,
    now: i64,
) -> Result<Status, TicketError> {
    if t.status != Status::WaitingOnCustomer {
        return Err(invalid_transition(t, "resumed"));
    }
    let before = t.status;
    t.status = Status::InProgress;
    t.sla.first_response.resume(now);
    t.sla.resolution.resume(now);
    touch(t, actor, now);
    refresh(t, config);
    Ok(before)
}

/// The customer's public reply: a ticket waiting on the customer goes
/// back to in_progress and its clocks run again; any other status is left
/// as it is. Returns the status before, when it resumed.
pub fn customer_replied(
    t: &mut Ticket,
    actor: &str,
    config: &TicketsConfig,
    now: i64,
) -> Option<Status> {
    (t.status == Status::WaitingOnCustomer)
        .then(|| resume(t, actor, config, now).ok())
        .flatten()
}

pub fn resolve(
    t: &mut Ticket,
    resolution: &str,
    actor: &str,
    config: &TicketsConfig,
    now: i64,
) -> Result<(), TicketError> {
    if !matches!(t.status, Status::InProgress | Status::WaitingOnCustomer) {
        return Err(invalid_transition(t, "resolved"));
    }
    let (cal, basis) = (&config.calendar, t.sla.target.basis);
    respond(t, config, now);
    t.sla.resolution.stop(cal, basis, now);
    t.status = Status::Resolved;
    t.resolution = resolution.to_owned();
    t.resolve_time = Some(now);
    touch(t, actor, now);
    refresh(t, config);
    Ok(())
}

pub fn close(
    t: &mut Ticket,
    actor: &str,
    config: &TicketsConfig,
    now: i64,
) -> Result<Status, TicketError> {
    if t.status != Status::Resolved {
        return Err(invalid_transition(t, "closed"));
    }
    let before = t.status;
    t.status = Status::Closed;
    t.close_time = Some(now);
    touch(t, actor, now);
    refresh(t, config);
    Ok(before)
}

/// resolved -> in_progress within the reopen window of the resolution.
pub fn reopen(
    t: &mut Ticket,
    actor: &str,
    config: &TicketsConfig,
    now: i64,
) -> Result<(), TicketError> {
    if t.status != Status::Resolved {
        return Err(invalid_transition(t, "reopened"));
    }
    let resolved = t.resolve_time.unwrap_or(t.update_time);
    if now > resolved.saturating_add(i64::from(config.reopen_window_days) * DAY) {
        return Err(TicketError::precondition(
            "REOPEN_WINDOW_PASSED",
            format!(
                "a ticket may be reopened within {} days of its resolution",
                config.reopen_window_days
            ),
        ));
    }
    t.status = Status::InProgress;
    t.reopen_count += 1;
    t.sla.resolution.restart(now);
    touch(t, actor, now);
    refresh(t, config);
    Ok(())
}

/// Applies UpdateTicket's changes; a priority change re-targets the
/// clocks. Returns the audit changes.
pub fn update(
    t: &mut Ticket,
    patch: TicketPatch,
    actor: &str,
    config: &TicketsConfig,
    now: i64,
) -> Result<Vec<crm_types::Change>, TicketError> {
    if t.status == Status::Closed {
        return Err(TicketError::precondition(
            "TICKET_CLOSED",
            "the ticket is closed",
        ));
    }
    let mut changes = Vec::new();
    let mut set = |field: &'static str, slot: &mut String, new: Option<String>| {
        if let Some(new) = new
            && *slot != new
        {
            changes.extend(crm_types::Change::of(field, &*slot, &new));
            *slot = new;
        }
    };
    set("subject", &mut t.subject, patch.subject);
    set("description", &mut t.description, patch.description);
    set("contact_id", &mut t.contact_id, patch.contact_id);
    if let Some(c) = patch.category
        && c != t.category
    {
        changes.extend(crm_types::Change::of("category", &t.category, &c));
        t.complaint = config.is_complaint(&c);
        t.category = c;
    }
    if let Some(p) = patch.priority
        && p != t.priority
    {
        changes.extend(crm_types::Change::of(
            "priority",
            p_str(t.priority),
            p_str(p),
        ));
        t.priority = p;
        let target = target_of(&t.sla.plan, p, config);
        t.sla.target = target;
        t.sla.first_response.target_minutes = target.first_response_minutes;
        t.sla.resolution.target_minutes = target.resolution_minutes;
    }
    if !changes.is_empty() {
        touch(t, actor, now);
        refresh(t, config);
    }
    Ok(changes)
}

fn p_str(p: Priority) -> &'static str {
    p.as_str()
}

/// Checks a CSAT rating can be recorded and records it.
pub fn rate(t: &mut Ticket, score: u8, actor: &str, now: i64) -> Result<(), TicketError> {
    if !matches!(t.status, Status::Resolved | Status::Closed) {
        return Err(TicketError::precondition(
            "NOT_RESOLVED",
            "a rating is recorded on a resolved or closed ticket",
        ));
    }
    t.csat = score;
    touch(t, actor, now);
    Ok(())
}

/// Which clock an SLA event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClockKind {
    FirstResponse,
    Resolution,
}

/// What the sweeper found on a ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fired {
    Warning(ClockKind),
    Breach {
        clock: ClockKind,
        level: u32,
        /// The assignee per the escalation rule (the same when the rule
        /// names nobody for the level).
        next_assignee: Option<String>,
        previous_assignee: Option<String>,
    },
}

/// The time-based transitions due at `now`: a warning at the configured
/// share of a target, a breach at the target, each once per clock; a
/// breach escalates one level and hands the ticket to the level's assignee.
pub fn sweep(t: &mut Ticket, actor: &str, config: &TicketsConfig, now: i64) -> Vec<Fired> {
    let (cal, basis, pct) = (&config.calendar, t.sla.target.basis, config.warning_percent);
    let mut fired = Vec::new();
    for kind in [ClockKind::FirstResponse, ClockKind::Resolution] {
        let clock = match kind {
            ClockKind::FirstResponse => &mut t.sla.first_response,
            ClockKind::Resolution => &mut t.sla.resolution,
        };
        if clock.running_since.is_none() || clock.breached {
            continue;
        }
        let used = clock.used_at(cal, basis, now);
        let target = i64::from(clock.target_minutes) * super::calendar::MINUTE;
        if !clock.warned && used >= target * i64::from(pct) / 100 {
            clock.warned = true;
            fired.push(Fired::Warning(kind));
        }
        if used >= target {
            clock.breached = true;
            t.sla.escalation_level += 1;
            let level = t.sla.escalation_level;
            let previous = t.assignee_id.clone();
            let rule = usize::try_from(level - 1)
                .ok()
                .and_then(|i| config.escalation.get(i))
                .cloned();
            if let Some(next) = &rule {
                t.assignee_id = Some(next.clone());
                t.queue_reason.clear();
                if t.status == Status::New {
                    t.status = Status::Assigned;
                }
            }
            fired.push(Fired::Breach {
                clock: kind,
                level,
                next_assignee: t.assignee_id.clone(),
                previous_assignee: previous,
            });
        }
    }
    if !fired.is_empty() {
        touch(t, actor, now);
    }
    refresh(t, config);
    fired
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
