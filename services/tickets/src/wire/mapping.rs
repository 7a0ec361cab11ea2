//! Proto messages to domain values (every bad field named) and back.

use crm_proto::crm::common::v1 as common;
use crm_proto::crm::tickets::v1 as pb;
use crm_rpc::{
    FieldViolation,
    fields::{self, Lines},
};
use crm_types::Violation;

use crate::domain::{
    Account, Basis, Calendar, Channel, ChurnReason, ChurnRules, Comment, CommentVisibility, Date,
    Engineer, Entitlement, HealthWeights, Money, NewTicket, Origin, Plan, Priority, RetentionTask,
    Solution, Status, Target, Ticket, TicketPatch, TicketsConfig, Tier, TierThresholds, check_plan,
    is_category,
};

pub fn field_violation(v: Violation) -> FieldViolation {
    FieldViolation::new(v.field, v.description)
}

fn ts(micros: i64) -> Option<prost_types::Timestamp> {
    Some(fields::timestamp(micros))
}

// ---- enums

pub fn priority(p: i32, field: &str) -> Result<Priority, FieldViolation> {
    match pb::Priority::try_from(p) {
        Ok(pb::Priority::P1) => Ok(Priority::P1),
        Ok(pb::Priority::P2) => Ok(Priority::P2),
        Ok(pb::Priority::P3) => Ok(Priority::P3),
        Ok(pb::Priority::P4) => Ok(Priority::P4),
        _ => Err(FieldViolation::new(field, "must be one of P1, P2, P3, P4")),
    }
}

/// A filter's priority: unspecified for any.
pub fn priority_filter(p: i32, field: &str) -> Result<Option<Priority>, FieldViolation> {
    if p == 0 {
        Ok(None)
    } else {
        priority(p, field).map(Some)
    }
}

pub fn priority_pb(p: Priority) -> i32 {
    (match p {
        Priority::P1 => pb::Priority::P1,
        Priority::P2 => pb::Priority::P2,
        Priority::P3 => pb::Priority::P3,
        Priority::P4 => pb::Priority::P4,
    }) as i32
}

pub fn channel(c: i32, field: &str) -> Result<Channel, FieldViolation> {
    match pb::Channel::try_from(c) {
        Ok(pb::Channel::Phone) => Ok(Channel::Phone),
        Ok(pb::Channel::Email) => Ok(Channel::Email),
        Ok(pb::Channel::Portal) => Ok(Channel::Portal),
        Ok(pb::Channel::Chat) => Ok(Channel::Chat),
        Ok(pb::Channel::Integration) => Ok(Channel::Integration),
        _ => Err(FieldViolation::new(
            field,
            "must be one of phone, email, portal, chat, integration",
        )),
    }
}

pub fn channel_pb(c: Channel) -> i32 {
    (match c {
        Channel::Phone => pb::Channel::Phone,
        Channel::Email => pb::Channel::Email,
        Channel::Portal => pb::Channel::Portal,
        Channel::Chat => pb::Channel::Chat,
        Channel::Integration => pb::Channel::Integration,
    }) as i32
}

pub fn status_filter(s: i32, field: &str) -> Result<Option<Status>, FieldViolation> {
    use pb::TicketStatus as P;
    match P::try_from(s) {
        Ok(P::Unspecified) => Ok(None),
        Ok(P::New) => Ok(Some(Status::New)),
        Ok(P::Assigned) => Ok(Some(Status::Assigned)),
        Ok(P::InProgress) => Ok(Some(Status::InProgress)),
        Ok(P::WaitingOnCustomer) => Ok(Some(Status::WaitingOnCustomer)),
        Ok(P::Resolved) => Ok(Some(Status::Resolved)),
        Ok(P::Closed) => Ok(Some(Status::Closed)),
        Err(_) => Err(FieldViolation::new(field, "not a ticket status")),
    }
}

pub fn status_pb(s: Status) -> i32 {
    use pb::TicketStatus as P;
    (match s {
        Status::New => P::New,
        Status::Assigned => P::Assigned,
        Status::InProgress => P::InProgress,
        Status::WaitingOnCustomer => P::WaitingOnCustomer,
        Status::Resolved => P::Resolved,
        Status::Closed => P::Closed,
    }) as i32
}

fn basis(b: i32, field: &str) -> Result<Basis, FieldViolation> {
    match pb::HoursBasis::try_from(b) {
        Ok(pb::HoursBasis::Business) => Ok(Basis::Business),
        Ok(pb::HoursBasis::Calendar) => Ok(Basis::Calendar),
        _ => Err(FieldViolation::new(field, "must be business or calendar")),
    }
}

fn basis_pb(b: Basis) -> i32 {
    (match b {
        Basis::Business => pb::HoursBasis::Business,
        Basis::Calendar => pb::HoursBasis::Calendar,
    }) as i32
}

pub fn tier_pb(t: Tier) -> i32 {
    (match t {
        Tier::New => pb::LoyaltyTier::New,
        Tier::Existing => pb::LoyaltyTier::Existing,
        Tier::Loyal => pb::LoyaltyTier::Loyal,
    }) as i32
}

pub fn churn_pb(r: ChurnReason) -> i32 {
    (match r {
        ChurnReason::GuideUnopened => pb::ChurnReason::GuideUnopened,
        ChurnReason::ComplaintsRising => pb::ChurnReason::ComplaintsRising,
        ChurnReason::LowRatings => pb::ChurnReason::LowRatings,
    }) as i32
}

pub fn visibility(v: i32, field: &str) -> Result<CommentVisibility, FieldViolation> {
    match pb::CommentVisibility::try_from(v) {
        Ok(pb::CommentVisibility::Public) => Ok(CommentVisibility::Public),
        Ok(pb::CommentVisibility::Internal) => Ok(CommentVisibility::Internal),
        _ => Err(FieldViolation::new(field, "must be public or internal")),
    }
}

/// A usage signal: `true` for a guide opened, `false` for one sent.
pub fn guide_opened(kind: i32, field: &str) -> Result<bool, FieldViolation> {
    match pb::UsageSignalKind::try_from(kind) {
        Ok(pb::UsageSignalKind::GuideSent) => Ok(false),
        Ok(pb::UsageSignalKind::GuideOpened) => Ok(true),
        _ => Err(FieldViolation::new(
            field,
            "must be guide sent or guide opened",
        )),
    }
}

// ---- values

pub fn date(d: &common::Date, field: &str) -> Result<Date, FieldViolation> {
    Date::new(d.year, d.month, d.day)
        .ok_or_else(|| FieldViolation::new(field, "not a valid calendar date"))
}

pub fn date_pb(d: Date) -> common::Date {
    common::Date {
        year: d.year,
        month: i32::from(d.month),
        day: i32::from(d.day),
    }
}

pub fn money(m: &common::Money, field: &str) -> Result<Money, FieldViolation> {
    fields::money(m, field)?;
    Ok(Money::new(m.currency_code.clone(), m.units, m.nanos))
}

pub fn category(value: &str, field: &str) -> Result<(), FieldViolation> {
    if is_category(value) {
        Ok(())
    } else {
        Err(FieldViolation::new(
            field,
            "required: 1-64 lower case letters, digits, '-' or '_'",
        ))
    }
}

fn required_text(value: &str, field: &str, max: usize, lines: Lines) -> Result<(), FieldViolation> {
    if value.trim().is_empty() {
        return Err(FieldViolation::new(field, "required"));
    }
    fields::text(value, field, max, lines)
}

fn collect(v: &mut Vec<FieldViolation>, r: Result<(), FieldViolation>) {
    if let Err(e) = r {
        v.push(e);
    }
}

fn done<T>(v: Vec<FieldViolation>, value: T) -> Result<T, Vec<FieldViolation>> {
    if v.is_empty() { Ok(value) } else { Err(v) }
}

pub fn target(t: &pb::SlaTarget, field: &str, v: &mut Vec<FieldViolation>) -> Option<Target> {
    let p = priority(t.priority, &format!("{field}.priority"))
        .map_err(|e| v.push(e))
        .ok();
    let b = basis(t.basis, &format!("{field}.basis"))
        .map_err(|e| v.push(e))
        .ok();
    let minutes = |m: i32, name: &str, v: &mut Vec<FieldViolation>| {
        u32::try_from(m).ok().filter(|m| *m > 0).or_else(|| {
            v.push(FieldViolation::new(format!("{field}.{name}"), "1-525600"));
            None
        })
    };
    let fr = minutes(t.first_response_minutes, "first_response_minutes", v);
    let rs = minutes(t.resolution_minutes, "resolution_minutes", v);
    Some(Target {
        priority: p?,
        first_response_minutes: fr?,
        resolution_minutes: rs?,
        basis: b?,
    })
}

/// A plan with its every bad field, named under `field`.
pub fn plan(p: Option<&pb::SlaPlan>, field: &str, v: &mut Vec<FieldViolation>) -> Option<Plan> {
    let Some(p) = p else {
        v.push(FieldViolation::new(field, "required"));
        return None;
    };
    if p.targets.len() > 4 {
        v.push(FieldViolation::new(
            format!("{field}.targets"),
            "exactly one target for each priority P1-P4",
        ));
        return None;
    }
    collect(
        v,
        fields::text(
            &p.service_level,
            &format!("{field}.service_level"),
            100,
            Lines::Single,
        ),
    );
    let before = v.len();
    let targets: Vec<Target> = p
        .targets
        .iter()
        .enumerate()
        .filter_map(|(i, t)| target(t, &format!("{field}.targets[{i}]"), v))
        .collect();
    let plan = Plan {
        service_level: p.service_level.clone(),
        targets,
    };
    if v.len() == before {
        let mut bad = Vec::new();
        check_plan(&plan, field, &mut bad);
        v.extend(bad.into_iter().map(field_violation));
    }
    (v.len() == before).then_some(plan)
}

pub fn plan_pb(p: &Plan) -> pb::SlaPlan {
    pb::SlaPlan {
        service_level: p.service_level.clone(),
        targets: p.targets.iter().map(target_pb).collect(),
    }
}

pub fn target_pb(t: &Target) -> pb::SlaTarget {
    pb::SlaTarget {
        priority: priority_pb(t.priority),
        first_response_minutes: i32::try_from(t.first_response_minutes).unwrap_or(i32::MAX),
        resolution_minutes: i32::try_from(t.resolution_minutes).unwrap_or(i32::MAX),
        basis: basis_pb(t.basis),
    }
}

// ---- entitlements

/// A manual entitlement as an admin sends it.
pub struct EntitlementInput {
    pub account_id: String,
    pub plan: Plan,
    pub valid_from: Date,
    pub valid_to: Date,
    pub account_manager_id: String,
}

pub fn entitlement_input(e: &pb::Entitlement) -> Result<EntitlementInput, Vec<FieldViolation>> {
    let mut v = Vec::new();
    if e.account_id.is_empty() {
        v.push(FieldViolation::new("entitlement.account_id", "required"));
    }
    collect(&mut v, fields::id(&e.account_id, "entitlement.account_id"));
    collect(
        &mut v,
        fields::id(&e.account_manager_id, "entitlement.account_manager_id"),
    );
    let plan = plan(e.plan.as_ref(), "entitlement.plan", &mut v);
    let day = |d: Option<&common::Date>, f: &str, v: &mut Vec<FieldViolation>| match d {
        None => {
            v.push(FieldViolation::new(f, "required"));
            None
        }
        Some(d) => date(d, f).map_err(|e| v.push(e)).ok(),
    };
    let from = day(e.valid_from.as_ref(), "entitlement.valid_from", &mut v);
    let to = day(e.valid_to.as_ref(), "entitlement.valid_to", &mut v);
    if let (Some(f), Some(t)) = (from, to)
        && t < f
    {
        v.push(FieldViolation::new(
            "entitlement.valid_to",
            "must not be before valid_from",
        ));
    }
    match (plan, from, to) {
        (Some(plan), Some(valid_from), Some(valid_to)) if v.is_empty() => Ok(EntitlementInput {
            account_id: e.account_id.clone(),
            plan,
            valid_from,
            valid_to,
            account_manager_id: e.account_manager_id.clone(),
        }),
        _ => Err(v),
    }
}

pub fn entitlement_pb(e: &Entitlement) -> pb::Entitlement {
    pb::Entitlement {
        id: e.id.clone(),
        etag: crm_rpc::etag(e.version),
        account_id: e.account_id.clone(),
        plan: Some(plan_pb(&e.plan)),
        valid_from: Some(date_pb(e.valid_from)),
        valid_to: Some(date_pb(e.valid_to)),
        origin: (match e.origin {
            Origin::ProjectCompleted => pb::EntitlementOrigin::ProjectCompleted,
            Origin::Manual => pb::EntitlementOrigin::Manual,
        }) as i32,
        project_id: e.project_id.clone(),
        contract_id: e.contract_id.clone(),
        account_manager_id: e.account_manager_id.clone(),
        create_time: ts(e.create_time),
        creator: e.creator.clone(),
    }
}

// ---- tickets

pub fn new_ticket(t: &pb::Ticket) -> Result<NewTicket, Vec<FieldViolation>> {
    let mut v = Vec::new();
    if t.account_id.is_empty() {
        v.push(FieldViolation::new("ticket.account_id", "required"));
    }
    collect(&mut v, fields::id(&t.account_id, "ticket.account_id"));
    collect(&mut v, fields::id(&t.contact_id, "ticket.contact_id"));
    let ch = channel(t.channel, "ticket.channel")
        .map_err(|e| v.push(e))
        .ok();
    let p = priority(t.priority, "ticket.priority")
        .map_err(|e| v.push(e))
        .ok();
    collect(&mut v, category(&t.category, "ticket.category"));
    collect(
        &mut v,
        required_text(
            &t.subject,
            "ticket.subject",
            fields::MAX_NAME_CHARS,
            Lines::Single,
        ),
    );
    collect(
        &mut v,
        fields::text(
            &t.description,
            "ticket.description",
            fields::MAX_NOTES_CHARS,
            Lines::Multi,
        ),
    );
    match (ch, p) {
        (Some(channel), Some(priority)) if v.is_empty() => Ok(NewTicket {
            account_id: t.account_id.clone(),
            contact_id: t.contact_id.clone(),
            channel,
            category: t.category.clone(),
            priority,
            subject: t.subject.clone(),
            description: t.description.clone(),
        }),
        _ => Err(v),
    }
}

/// The mask paths UpdateTicket takes.
pub const UPDATE_PATHS: &[&str] = &[
    "subject",
    "description",
    "category",
    "priority",
    "contact_id",
];

pub fn ticket_patch(t: &pb::Ticket, paths: &[String]) -> Result<TicketPatch, Vec<FieldViolation>> {
    let mut v = Vec::new();
    let all = paths.is_empty();
    let wants = |p: &str, set: bool| {
        if all {
            set
        } else {
            paths.iter().any(|x| x == p)
        }
    };
    let mut patch = TicketPatch::default();
    if wants("subject", !t.subject.is_empty()) {
        collect(
            &mut v,
            required_text(
                &t.subject,
                "ticket.subject",
                fields::MAX_NAME_CHARS,
                Lines::Single,
            ),
        );
        patch.subject = Some(t.subject.clone());
    }
    if wants("description", !t.description.is_empty()) {
        collect(
            &mut v,
            fields::text(
                &t.description,
                "ticket.description",
                fields::MAX_NOTES_CHARS,
                Lines::Multi,
            ),
        );
        patch.description = Some(t.description.clone());
    }
    if wants("category", !t.category.is_empty()) {
        collect(&mut v, category(&t.category, "ticket.category"));
        patch.category = Some(t.category.clone());
    }
    if wants("priority", t.priority != 0) {
        patch.priority = priority(t.priority, "ticket.priority")
            .map_err(|e| v.push(e))
            .ok();
    }
    if wants("contact_id", !t.contact_id.is_empty()) {
        collect(&mut v, fields::id(&t.contact_id, "ticket.contact_id"));
        patch.contact_id = Some(t.contact_id.clone());
    }
    done(v, patch)
}

pub fn ticket_pb(t: &Ticket) -> pb::Ticket {
    let s = &t.sla;
    let used = |c: &crate::domain::Clock| c.used / crate::domain::MINUTE;
    pb::Ticket {
        id: t.id.clone(),
        etag: crm_rpc::etag(t.version),
        account_id: t.account_id.clone(),
        contact_id: t.contact_id.clone(),
        channel: channel_pb(t.channel),
        category: t.category.clone(),
        priority: priority_pb(t.priority),
        subject: t.subject.clone(),
        description: t.description.clone(),
        status: status_pb(t.status),
        assignee_id: t.assignee_id.clone().unwrap_or_default(),
        queue_reason: t.queue_reason.clone(),
        sla: Some(pb::Sla {
            service_level: s.service_level.clone(),
            entitlement_id: s.entitlement_id.clone().unwrap_or_default(),
            target: Some(target_pb(&s.target)),
            first_response_due_time: fields::opt_timestamp(s.first_response_due),
            resolution_due_time: fields::opt_timestamp(s.resolution_due),
            first_response_time: fields::opt_timestamp(s.first_response_time),
            first_response_used_minutes: used(&s.first_response),
            resolution_used_minutes: used(&s.resolution),
            paused: t.status == Status::WaitingOnCustomer,
            first_response_breached: s.first_response.breached,
            resolution_breached: s.resolution.breached,
            first_response_warned: s.first_response.warned,
            resolution_warned: s.resolution.warned,
            escalation_level: i32::try_from(s.escalation_level).unwrap_or(i32::MAX),
        }),
        resolution: t.resolution.clone(),
        csat: i32::from(t.csat),
        account_tier: tier_pb(t.account_tier),
        complaint: t.complaint,
        reopen_count: i32::try_from(t.reopen_count).unwrap_or(i32::MAX),
        resolve_time: fields::opt_timestamp(t.resolve_time),
        close_time: fields::opt_timestamp(t.close_time),
        create_time: ts(t.create_time),
        update_time: ts(t.update_time),
        creator: t.creator.clone(),
        updater: t.updater.clone(),
    }
}

pub fn comment_pb(c: &Comment) -> pb::Comment {
    pb::Comment {
        id: c.id.clone(),
        ticket_id: c.ticket_id.clone(),
        body: c.body.clone(),
        visibility: (match c.visibility {
            CommentVisibility::Public => pb::CommentVisibility::Public,
            CommentVisibility::Internal => pb::CommentVisibility::Internal,
        }) as i32,
        author: c.author.clone(),
        create_time: ts(c.create_time),
    }
}

// ---- engineers

pub struct EngineerInput {
    pub id: String,
    pub etag: String,
    pub display_name: String,
    pub skills: Vec<String>,
    pub on_duty: bool,
}

pub fn engineer_input(e: &pb::Engineer) -> Result<EngineerInput, Vec<FieldViolation>> {
    let mut v = Vec::new();
    if e.id.is_empty() {
        v.push(FieldViolation::new("engineer.id", "required"));
    }
    collect(&mut v, fields::id(&e.id, "engineer.id"));
    collect(
        &mut v,
        fields::text(
            &e.display_name,
            "engineer.display_name",
            fields::MAX_SHORT_CHARS,
            Lines::Single,
        ),
    );
    let mut skills: Vec<String> = Vec::new();
    if e.skills.len() > crate::domain::MAX_SKILLS {
        v.push(FieldViolation::new("engineer.skills", "at most 50"));
    } else {
        for (i, s) in e.skills.iter().enumerate() {
            collect(&mut v, category(s, &format!("engineer.skills[{i}]")));
            if !skills.contains(s) {
                skills.push(s.clone());
            }
        }
    }
    done(
        v,
        EngineerInput {
            id: e.id.clone(),
            etag: e.etag.clone(),
            display_name: e.display_name.clone(),
            skills,
            on_duty: e.on_duty,
        },
    )
}

pub fn engineer_pb(e: &Engineer, open: u64) -> pb::Engineer {
    pb::Engineer {
        id: e.id.clone(),
        etag: crm_rpc::etag(e.version),
        display_name: e.display_name.clone(),
        skills: e.skills.clone(),
        on_duty: e.on_duty,
        open_tickets: i32::try_from(open).unwrap_or(i32::MAX),
        last_assigned_time: fields::opt_timestamp(e.last_assigned_time),
        update_time: ts(e.update_time),
        updater: e.updater.clone(),
    }
}

// ---- similar solutions, health, tiers

pub fn solution_pb(s: &Solution, rank: usize) -> pb::SimilarSolution {
    pb::SimilarSolution {
        ticket_id: s.ticket_id.clone(),
        subject: s.subject.clone(),
        category: s.category.clone(),
        resolution: s.resolution.clone(),
        rank: i32::try_from(rank).unwrap_or(i32::MAX),
        resolve_time: fields::opt_timestamp(s.resolve_time),
    }
}

fn count(n: u32) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

pub fn health_pb(a: &Account) -> pb::AccountHealth {
    let s = &a.stats;
    let mean_csat = if s.csat_count == 0 {
        0
    } else {
        i64::from(s.csat_total) * 100 / i64::from(s.csat_count)
    };
    pb::AccountHealth {
        account_id: a.account_id.clone(),
        score: count(a.score),
        nps: s.nps(),
        nps_answers: count(s.nps_answers),
        mean_first_response_minutes: s.mean_first_response_minutes(),
        resolution_rate_percent: count(s.resolution_rate()),
        complaint_share_percent: count(s.complaint_share()),
        breaches: count(s.breaches),
        tickets: count(s.tickets),
        mean_csat_hundredths: i32::try_from(mean_csat).unwrap_or(0),
        unopened_guides_in_a_row: count(s.unopened_guides_in_a_row),
        at_risk: a.at_risk,
        risk_reasons: a.risk_reasons.iter().map(|r| churn_pb(*r)).collect(),
        account_manager_id: a.account_manager_id.clone(),
        tier: tier_pb(a.tier),
        update_time: ts(a.update_time),
    }
}

pub fn account_tier_pb(a: &Account, recent_purchases: u64) -> pb::AccountTier {
    let average = if a.purchases == 0 {
        0
    } else {
        a.total_nanos / i128::from(a.purchases)
    };
    let units = i64::try_from(average / 1_000_000_000).unwrap_or(i64::MAX);
    let nanos = i32::try_from(average % 1_000_000_000).unwrap_or(0);
    pb::AccountTier {
        account_id: a.account_id.clone(),
        tier: tier_pb(a.tier),
        industry: a.industry.clone(),
        purchases: i32::try_from(a.purchases).unwrap_or(i32::MAX),
        recent_purchases: i32::try_from(recent_purchases).unwrap_or(i32::MAX),
        average_order_value: (!a.currency.is_empty()).then(|| common::Money {
            currency_code: a.currency.clone(),
            units,
            nanos,
        }),
        last_purchase_time: fields::opt_timestamp(a.last_purchase_time),
    }
}

pub fn retention_pb(t: &RetentionTask) -> pb::RetentionTask {
    pb::RetentionTask {
        id: t.id.clone(),
        account_id: t.account_id.clone(),
        assignee_id: t.assignee_id.clone(),
        reasons: t.reasons.iter().map(|r| churn_pb(*r)).collect(),
        status: pb::RetentionTaskStatus::Open as i32,
        create_time: ts(t.create_time),
    }
}

// ---- configuration

fn u32_of(n: i32) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

pub fn config_pb(
    c: &TicketsConfig,
    version: i64,
    update_time: Option<i64>,
    updater: &str,
) -> pb::TicketsConfig {
    let cal = &c.calendar;
    let w = &c.health_weights;
    let r = &c.churn_rules;
    let i = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
    pb::TicketsConfig {
        etag: crm_rpc::etag(version),
        calendar: Some(pb::BusinessCalendar {
            utc_offset_minutes: cal.utc_offset_minutes,
            working_days: cal.working_days.iter().map(|d| i32::from(*d)).collect(),
            day_start_minute: i(cal.day_start_minute),
            day_end_minute: i(cal.day_end_minute),
            holidays: cal.holidays.iter().map(|d| date_pb(*d)).collect(),
        }),
        default_plan: Some(plan_pb(&c.default_plan)),
        vip_plan: Some(plan_pb(&c.vip_plan)),
        warning_percent: i(c.warning_percent),
        reopen_window_days: i(c.reopen_window_days),
        escalation: Some(pb::EscalationRule {
            assignee_ids: c.escalation.clone(),
        }),
        health_weights: Some(pb::HealthWeights {
            nps: i(w.nps),
            response_time: i(w.response_time),
            resolution_rate: i(w.resolution_rate),
            complaints: i(w.complaints),
            breaches: i(w.breaches),
            csat: Some(i(w.csat)),
        }),
        churn_rules: Some(pb::ChurnRules {
            unopened_guides_in_a_row: i(r.unopened_guides_in_a_row),
            complaint_window_days: i(r.complaint_window_days),
            complaint_min_count: i(r.complaint_min_count),
            low_rating_max: i32::from(r.low_rating_max),
            low_ratings_in_a_row: i(r.low_ratings_in_a_row),
        }),
        complaint_categories: c.complaint_categories.clone(),
        tier_thresholds: c
            .tier_thresholds
            .iter()
            .map(|t| pb::TierThresholds {
                industry: t.industry.clone(),
                recent_days: i(t.recent_days),
                frequency_window_days: i(t.frequency_window_days),
                frequent_purchases: i(t.frequent_purchases),
                valuable_order_units: t.valuable_order_units,
                existing_min_purchases: i(t.existing_min_purchases),
            })
            .collect(),
        update_time: fields::opt_timestamp(update_time),
        updater: updater.to_owned(),
        service_levels: c.service_levels.iter().map(plan_pb).collect(),
    }
}

/// A configuration as an admin sends it: an unset part keeps the default;
/// every bad field is named.
pub fn config(c: &pb::TicketsConfig) -> Result<TicketsConfig, Vec<FieldViolation>> {
    let mut v = Vec::new();
    let mut out = TicketsConfig::default();
    if let Some(cal) = &c.calendar {
        if cal.working_days.len() > 7 || cal.holidays.len() > crate::domain::MAX_HOLIDAYS {
            v.push(FieldViolation::new(
                "config.calendar",
                "at most 7 working days and 400 holidays",
            ));
        } else {
            let holidays: Vec<Date> = cal
                .holidays
                .iter()
                .enumerate()
                .filter_map(|(i, d)| {
                    date(d, &format!("config.calendar.holidays[{i}]"))
                        .map_err(|e| v.push(e))
                        .ok()
                })
                .collect();
            out.calendar = Calendar {
                utc_offset_minutes: cal.utc_offset_minutes,
                working_days: if cal.working_days.is_empty() {
                    Calendar::default().working_days
                } else {
                    cal.working_days
                        .iter()
                        .map(|d| u8::try_from(*d).unwrap_or(0))
                        .collect()
                },
                day_start_minute: u32_of(cal.day_start_minute),
                day_end_minute: u32_of(cal.day_end_minute),
                holidays,
            };
            if cal.day_start_minute == 0 && cal.day_end_minute == 0 {
                out.calendar.day_start_minute = Calendar::default().day_start_minute;
                out.calendar.day_end_minute = Calendar::default().day_end_minute;
            }
        }
    }
    if c.default_plan.is_some()
        && let Some(p) = plan(c.default_plan.as_ref(), "config.default_plan", &mut v)
    {
        out.default_plan = p;
    }
    if c.vip_plan.is_some()
        && let Some(p) = plan(c.vip_plan.as_ref(), "config.vip_plan", &mut v)
    {
        out.vip_plan = p;
    }
    if c.service_levels.len() > crate::domain::MAX_SERVICE_LEVELS {
        v.push(FieldViolation::new("config.service_levels", "at most 20"));
    } else {
        out.service_levels = c
            .service_levels
            .iter()
            .enumerate()
            .filter_map(|(i, p)| plan(Some(p), &format!("config.service_levels[{i}]"), &mut v))
            .collect();
    }
    if c.warning_percent != 0 {
        out.warning_percent = u32_of(c.warning_percent);
    }
    if c.reopen_window_days < 0 {
        v.push(FieldViolation::new("config.reopen_window_days", "0-365"));
    } else {
        out.reopen_window_days = u32_of(c.reopen_window_days);
    }
    if let Some(e) = &c.escalation {
        match fields::ids(
            &e.assignee_ids,
            "config.escalation.assignee_ids",
            crate::domain::MAX_ESCALATION_LEVELS,
        ) {
            Ok(ids) => out.escalation = ids,
            Err(e) => v.push(e),
        }
    }
    if let Some(w) = &c.health_weights {
        out.health_weights = HealthWeights {
            nps: u32_of(w.nps),
            response_time: u32_of(w.response_time),
            resolution_rate: u32_of(w.resolution_rate),
            complaints: u32_of(w.complaints),
            breaches: u32_of(w.breaches),
            csat: w.csat.map_or(HealthWeights::default().csat, u32_of),
        };
    }
    if let Some(r) = &c.churn_rules {
        let d = ChurnRules::default();
        let or = |n: i32, default: u32| if n == 0 { default } else { u32_of(n) };
        out.churn_rules = ChurnRules {
            unopened_guides_in_a_row: or(r.unopened_guides_in_a_row, d.unopened_guides_in_a_row),
            complaint_window_days: or(r.complaint_window_days, d.complaint_window_days),
            complaint_min_count: or(r.complaint_min_count, d.complaint_min_count),
            low_rating_max: if r.low_rating_max == 0 {
                d.low_rating_max
            } else {
                u8::try_from(r.low_rating_max).unwrap_or(u8::MAX)
            },
            low_ratings_in_a_row: u32_of(r.low_ratings_in_a_row),
        };
    }
    if !c.complaint_categories.is_empty() {
        out.complaint_categories = c.complaint_categories.clone();
    }
    if c.tier_thresholds.len() > crate::domain::MAX_TIER_THRESHOLDS {
        v.push(FieldViolation::new("config.tier_thresholds", "at most 50"));
    } else {
        let d = TierThresholds::default();
        out.tier_thresholds = c
            .tier_thresholds
            .iter()
            .map(|t| {
                let or = |n: i32, default: u32| if n == 0 { default } else { u32_of(n) };
                TierThresholds {
                    industry: t.industry.clone(),
                    recent_days: or(t.recent_days, d.recent_days),
                    frequency_window_days: or(t.frequency_window_days, d.frequency_window_days),
                    frequent_purchases: or(t.frequent_purchases, d.frequent_purchases),
                    valuable_order_units: t.valuable_order_units,
                    existing_min_purchases: or(t.existing_min_purchases, d.existing_min_purchases),
                }
            })
            .collect();
    }
    if !v.is_empty() {
        return Err(v);
    }
    out.check().map_err(|bad| {
        bad.into_iter()
            .map(|b| field_violation(Violation::new(format!("config.{}", b.field), b.description)))
            .collect::<Vec<_>>()
    })?;
    Ok(out)
}

// ---- the delivery service's events

/// The type of the go-live event this service consumes.
pub const PROJECT_COMPLETED: &str = "crm.delivery.v1.DeliveryProjectCompleted";

/// Reads a DeliveryProjectCompleted of `tenant`; an error names what is
/// wrong with it (it will not get better on a retry).
pub fn project_completed(
    tenant: &str,
    payload: &prost_types::Any,
) -> Result<crate::domain::ProjectCompleted, String> {
    use crm_proto::crm::delivery::v1 as delivery;
    use prost::Message;
    let e = delivery::DeliveryProjectCompleted::decode(payload.value.as_slice())
        .map_err(|e| format!("the payload does not decode: {e}"))?;
    let project = e.project.unwrap_or_default();
    let term = match e.contract_term {
        Some(t) => match (t.start_date, t.end_date) {
            (Some(s), Some(end)) => Some((
                date(&s, "contract_term.start_date").map_err(|v| v.description)?,
                date(&end, "contract_term.end_date").map_err(|v| v.description)?,
            )),
            _ => None,
        },
        None => None,
    };
    let account_id = if e.account_id.is_empty() {
        project.account_id.clone()
    } else {
        e.account_id
    };
    let bounded = |s: &str| s.chars().count() <= fields::MAX_ID_CHARS && !s.is_empty();
    if !bounded(&project.id) || !bounded(&account_id) {
        return Err("the event names no project or account (or one too long)".into());
    }
    let mut service_level = e.service_level;
    if service_level.chars().count() > 100 {
        service_level.clear();
    }
    Ok(crate::domain::ProjectCompleted {
        tenant: tenant.to_owned(),
        project_id: project.id,
        account_id,
        contract_id: e.contract_id,
        service_level,
        term,
        account_manager_id: e
            .service_team
            .map(|t| t.account_manager_id)
            .filter(|m| m.chars().count() <= fields::MAX_ID_CHARS)
            .unwrap_or_default(),
    })
}

// ---- the opportunities service's events

/// The account events this service consumes: who manages each account.
pub const ACCOUNT_CREATED: &str = "crm.opportunities.v1.AccountCreated";
pub const ACCOUNT_CHANGED: &str = "crm.opportunities.v1.AccountChanged";

/// The account manager an AccountCreated or AccountChanged of `tenant`
/// names: the account's `owner_id` in its snapshot, else the `owner_id`
/// change of its audit entry. `Ok(None)` for an event that says nothing of
/// the owner (another field changed, a contact's change); an error names
/// what is wrong with the event (it will not get better on a retry).
pub fn account_owner(
    tenant: &str,
    event_type: &str,
    payload: &prost_types::Any,
) -> Result<Option<crate::domain::AccountOwner>, String> {
    use crm_proto::crm::opportunities::v1 as opportunities;
    use prost::Message;
    let (account, entry) = match event_type {
        ACCOUNT_CREATED => {
            let e = opportunities::AccountCreated::decode(payload.value.as_slice())
                .map_err(|e| format!("the payload does not decode: {e}"))?;
            (e.account, None)
        }
        ACCOUNT_CHANGED => {
            let e = opportunities::AccountChanged::decode(payload.value.as_slice())
                .map_err(|e| format!("the payload does not decode: {e}"))?;
            (e.account, e.entry)
        }
        _ => return Ok(None),
    };
    let (account_id, owner_id) = match (account, entry) {
        (Some(a), _) => (a.id, a.owner_id),
        (None, Some(entry)) if entry.action.starts_with("account.") => {
            let Some(change) = entry.changes.into_iter().find(|c| c.field == "owner_id") else {
                return Ok(None);
            };
            (entry.subject_id, change.new_value)
        }
        _ => return Ok(None),
    };
    let bounded = |s: &str| s.chars().count() <= fields::MAX_ID_CHARS && !s.is_empty();
    if !bounded(&account_id) || !bounded(&owner_id) {
        return Err("the event names no account or owner (or one too long)".into());
    }
    Ok(Some(crate::domain::AccountOwner {
        tenant: tenant.to_owned(),
        account_id,
        owner_id,
    }))
}

#[cfg(test)]
mod account_owner_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crm_proto::crm::opportunities::v1 as opportunities;
    use prost::Message;

    fn any(m: &impl Message) -> prost_types::Any {
        prost_types::Any {
            type_url: String::new(),
            value: m.encode_to_vec(),
        }
    }

    fn entry(action: &str, field: &str, new: &str) -> common::AuditEntry {
        common::AuditEntry {
            subject_id: "acc".into(),
            action: action.into(),
            changes: vec![common::FieldChange {
                field: field.into(),
                old_value: "amy".into(),
                new_value: new.into(),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn the_owner_comes_from_the_snapshot_or_the_audit_entrys_change() {
        let created = opportunities::AccountCreated {
            account: Some(opportunities::Account {
                id: "acc".into(),
                owner_id: "amy".into(),
                ..Default::default()
            }),
        };
        let owner = account_owner("t", ACCOUNT_CREATED, &any(&created)).unwrap();
        assert_eq!(owner.map(|o| o.owner_id), Some("amy".to_owned()));
        let changed = opportunities::AccountChanged {
            account: None,
            entry: Some(entry("account.updated", "owner_id", "bob")),
        };
        let owner = account_owner("t", ACCOUNT_CHANGED, &any(&changed))
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                owner.tenant.as_str(),
                owner.account_id.as_str(),
                owner.owner_id.as_str()
            ),
            ("t", "acc", "bob")
        );
    }

    #[test]
    fn other_changes_say_nothing_and_a_broken_event_is_unusable() {
        for e in [
            entry("account.updated", "region", "north"),
            entry("contact.updated", "owner_id", "bob"),
        ] {
            let changed = opportunities::AccountChanged {
                account: None,
                entry: Some(e),
            };
            assert_eq!(
                account_owner("t", ACCOUNT_CHANGED, &any(&changed)),
                Ok(None)
            );
        }
        let cleared = opportunities::AccountChanged {
            account: None,
            entry: Some(entry("account.updated", "owner_id", "")),
        };
        assert!(account_owner("t", ACCOUNT_CHANGED, &any(&cleared)).is_err());
        let junk = prost_types::Any {
            type_url: String::new(),
            value: vec![0xff, 0xff],
        };
        assert!(account_owner("t", ACCOUNT_CHANGED, &junk).is_err());
    }
}
