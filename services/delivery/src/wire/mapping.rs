//! Mapping between `crm.delivery.v1` messages and the domain's values.

use crm_proto::crm::common::v1 as common;
use crm_proto::crm::contracts::v1 as contracts;
use crm_proto::crm::delivery::v1 as pb;
use crm_rpc::{FieldViolation, fields};
use crm_types::Violation;
use prost::Message as _;

use crate::domain::{
    self, AcceptanceChannel, Capacity, Date, DeliveryConfig, Handover, Logged, MINUTES_PER_HOUR,
    Milestone, MilestoneOrigin, MilestoneStatus, PlannedPayment, Project, ProjectStatus,
    Requirement, RiskAlert, RiskKind, RiskStatus, Task, TaskStatus, WorkLog,
};

pub fn field_violation(v: Violation) -> FieldViolation {
    FieldViolation::new(v.field, v.description)
}

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

/// Minutes as the API's hours.
#[allow(clippy::cast_precision_loss)]
pub fn hours(minutes: i64) -> f64 {
    minutes as f64 / MINUTES_PER_HOUR as f64
}

// ---- enums

pub fn project_status_pb(s: ProjectStatus) -> i32 {
    (match s {
        ProjectStatus::Active => pb::ProjectStatus::Active,
        ProjectStatus::Completed => pb::ProjectStatus::Completed,
    }) as i32
}

/// A filter's status: unspecified is any.
pub fn project_status(v: i32, field: &str) -> Result<Option<ProjectStatus>, FieldViolation> {
    match pb::ProjectStatus::try_from(v) {
        Ok(pb::ProjectStatus::Unspecified) => Ok(None),
        Ok(pb::ProjectStatus::Active) => Ok(Some(ProjectStatus::Active)),
        Ok(pb::ProjectStatus::Completed) => Ok(Some(ProjectStatus::Completed)),
        Err(_) => Err(FieldViolation::new(field, "unknown status")),
    }
}

pub fn milestone_status_pb(s: MilestoneStatus) -> i32 {
    (match s {
        MilestoneStatus::Planned => pb::MilestoneStatus::Planned,
        MilestoneStatus::InProgress => pb::MilestoneStatus::InProgress,
        MilestoneStatus::ReadyForAcceptance => pb::MilestoneStatus::ReadyForAcceptance,
        MilestoneStatus::Accepted => pb::MilestoneStatus::Accepted,
    }) as i32
}

fn origin_pb(o: MilestoneOrigin) -> i32 {
    (match o {
        MilestoneOrigin::PaymentPlan => pb::MilestoneOrigin::PaymentPlan,
        MilestoneOrigin::Commitment => pb::MilestoneOrigin::Commitment,
        MilestoneOrigin::Manual => pb::MilestoneOrigin::Manual,
    }) as i32
}

fn task_status_pb(s: TaskStatus) -> i32 {
    (match s {
        TaskStatus::Todo => pb::TaskStatus::Todo,
        TaskStatus::InProgress => pb::TaskStatus::InProgress,
        TaskStatus::Done => pb::TaskStatus::Done,
    }) as i32
}

/// A task's status as sent: unspecified is "unchanged" (TODO on create).
pub fn task_status(v: i32, field: &str) -> Result<Option<TaskStatus>, FieldViolation> {
    match pb::TaskStatus::try_from(v) {
        Ok(pb::TaskStatus::Unspecified) => Ok(None),
        Ok(pb::TaskStatus::Todo) => Ok(Some(TaskStatus::Todo)),
        Ok(pb::TaskStatus::InProgress) => Ok(Some(TaskStatus::InProgress)),
        Ok(pb::TaskStatus::Done) => Ok(Some(TaskStatus::Done)),
        Err(_) => Err(FieldViolation::new(field, "unknown status")),
    }
}

fn risk_kind_pb(k: RiskKind) -> i32 {
    (match k {
        RiskKind::MilestoneOverdue => pb::RiskKind::MilestoneOverdue,
        RiskKind::BehindPace => pb::RiskKind::BehindPace,
        RiskKind::UnassignedTask => pb::RiskKind::UnassignedTask,
        RiskKind::OverBudget => pb::RiskKind::OverBudget,
        RiskKind::ResourceShortage => pb::RiskKind::ResourceShortage,
    }) as i32
}

fn risk_status_pb(s: RiskStatus) -> i32 {
    (match s {
        RiskStatus::Open => pb::RiskStatus::Open,
        RiskStatus::Acknowledged => pb::RiskStatus::Acknowledged,
        RiskStatus::Resolved => pb::RiskStatus::Resolved,
    }) as i32
}

pub fn risk_status(v: i32, field: &str) -> Result<Option<RiskStatus>, FieldViolation> {
    match pb::RiskStatus::try_from(v) {
        Ok(pb::RiskStatus::Unspecified) => Ok(None),
        Ok(pb::RiskStatus::Open) => Ok(Some(RiskStatus::Open)),
        Ok(pb::RiskStatus::Acknowledged) => Ok(Some(RiskStatus::Acknowledged)),
        Ok(pb::RiskStatus::Resolved) => Ok(Some(RiskStatus::Resolved)),
        Err(_) => Err(FieldViolation::new(field, "unknown status")),
    }
}

fn channel_pb(c: AcceptanceChannel) -> i32 {
    (match c {
        AcceptanceChannel::ProjectManager => pb::AcceptanceChannel::ProjectManager,
        AcceptanceChannel::ESignature => pb::AcceptanceChannel::ESignature,
    }) as i32
}

// ---- the handover

/// The facts the rules read from a signed contract's handover package;
/// an error says why the package cannot make a project (a poison event).
pub fn handover(
    signed: &contracts::ContractSigned,
    sign_time: i64,
) -> Result<(Handover, Vec<u8>), String> {
    let h = signed
        .handover
        .as_ref()
        .ok_or("ContractSigned without a handover package")?;
    let required = |value: &str, name: &str| -> Result<String, String> {
        if value.is_empty() {
            Err(format!("the handover has no {name}"))
        } else {
            fields::id(value, name).map_err(|v| v.description)?;
            Ok(value.to_owned())
        }
    };
    let contract_id = required(&h.contract_id, "contract_id")?;
    let family = if h.contract_family_id.is_empty() {
        contract_id.clone()
    } else {
        required(&h.contract_family_id, "contract_family_id")?
    };
    let team = h.team.clone().unwrap_or_default();
    let signed_on = h
        .sign_time
        .as_ref()
        .map_or(Date::of_micros(sign_time), |t| {
            Date::of_micros(t.seconds.saturating_mul(1_000_000))
        });
    let term = h.term.as_ref().and_then(|t| {
        let start = t.start_date.as_ref().and_then(|d| date(d, "").ok())?;
        let end = t.end_date.as_ref().and_then(|d| date(d, "").ok())?;
        Some((start, end))
    });
    let payments = h
        .milestones
        .iter()
        .filter_map(|m| {
            Some(PlannedPayment {
                payment_milestone_id: m.id.clone(),
                name: m.name.chars().take(200).collect(),
                due: m.due_date.as_ref().and_then(|d| date(d, "").ok())?,
            })
        })
        .collect();
    let requirements = h
        .special_requirements
        .iter()
        .map(|r| Requirement {
            description: r.description.chars().take(2_000).collect(),
            due_within_days: r.due_within_days.clamp(0, 3650),
        })
        .collect();
    let title = signed
        .contract
        .as_ref()
        .map(|c| c.title.chars().take(200).collect())
        .unwrap_or_default();
    Ok((
        Handover {
            contract_id,
            contract_version: h.contract_version,
            contract_family_id: family,
            opportunity_id: h.opportunity_id.clone(),
            account_id: h.account_id.clone(),
            title,
            account_manager_id: team.account_manager_id,
            delivery_manager_id: team.delivery_manager_id,
            reviewed_person_days: h.workload_person_days.max(0),
            signed_on,
            term,
            payments,
            requirements,
        },
        h.encode_to_vec(),
    ))
}

fn package(bytes: &[u8]) -> Option<contracts::HandoverPackage> {
    contracts::HandoverPackage::decode(bytes).ok()
}

// ---- records

pub fn project_pb(
    p: &Project,
    handover: &[u8],
    logged: &Logged,
    cfg: &DeliveryConfig,
) -> pb::Project {
    let progress = domain::progress(p);
    let money = domain::profitability(p, logged, cfg.hours_per_person_day);
    pb::Project {
        id: p.id.clone(),
        etag: crm_rpc::etag(p.version),
        contract_family_id: p.handover.contract_family_id.clone(),
        contract_id: p.handover.contract_id.clone(),
        account_id: p.handover.account_id.clone(),
        opportunity_id: p.handover.opportunity_id.clone(),
        name: p.name.clone(),
        status: project_status_pb(p.status),
        project_manager_id: p.project_manager_id.clone(),
        member_ids: p.member_ids.clone(),
        progress_line: p.progress_line.clone(),
        progress_line_time: fields::opt_timestamp(p.progress_line_time),
        handover: package(handover),
        progress: Some(pb::Progress {
            percent: progress.percent,
            accepted_milestones: progress.accepted,
            total_milestones: progress.total,
            done_estimate_hours: hours(progress.done_minutes),
            total_estimate_hours: hours(progress.total_minutes),
        }),
        profitability: Some(pb::Profitability {
            reviewed_hours: hours(money.reviewed_minutes),
            planned_hours: hours(money.planned_minutes),
            actual_hours: hours(money.actual_minutes),
            reviewed_used_percent: money.reviewed_used_percent,
        }),
        service_team: p.service_team.as_ref().map(|t| pb::ServiceTeam {
            service_manager_id: t.service_manager_id.clone(),
            delivery_manager_id: t.delivery_manager_id.clone(),
            account_manager_id: t.account_manager_id.clone(),
        }),
        service_level: p.service_level.clone(),
        go_live_date: p.go_live.map(date_pb),
        create_time: Some(fields::timestamp(p.stamp.create_time)),
        update_time: Some(fields::timestamp(p.stamp.update_time)),
        creator: p.stamp.creator.clone(),
        updater: p.stamp.updater.clone(),
    }
}

pub fn milestone_pb(p: &Project, m: &Milestone, logged: &Logged) -> pb::Milestone {
    let (mut estimate, mut done) = (0, 0);
    for t in p.tasks_of(&m.id) {
        estimate += t.estimate_minutes;
        if t.status == TaskStatus::Done {
            done += t.estimate_minutes;
        }
    }
    pb::Milestone {
        id: m.id.clone(),
        etag: crm_rpc::etag(m.version),
        project_id: p.id.clone(),
        name: m.name.clone(),
        due_date: Some(date_pb(m.due)),
        owner_id: m.owner_id.clone(),
        acceptance_criteria: m.acceptance_criteria.clone(),
        status: milestone_status_pb(m.status),
        origin: origin_pb(m.origin),
        payment_milestone_id: m.payment_milestone_id.clone(),
        commitment: m.commitment.clone(),
        estimate_hours: hours(estimate),
        done_estimate_hours: hours(done),
        logged_hours: hours(logged.milestone(&m.id)),
        acceptance: m.acceptance.as_ref().map(|a| pb::Acceptance {
            recorded_by: a.recorded_by.clone(),
            channel: channel_pb(a.channel),
            accepted_by: a.accepted_by.clone(),
            signature_reference: a.signature_reference.clone(),
            comment: a.comment.clone(),
            accept_time: Some(fields::timestamp(a.time)),
        }),
        create_time: Some(fields::timestamp(m.stamp.create_time)),
        update_time: Some(fields::timestamp(m.stamp.update_time)),
        creator: m.stamp.creator.clone(),
        updater: m.stamp.updater.clone(),
    }
}

pub fn task_pb(p: &Project, t: &Task, logged: &Logged) -> pb::Task {
    pb::Task {
        id: t.id.clone(),
        etag: crm_rpc::etag(t.version),
        project_id: p.id.clone(),
        milestone_id: t.milestone_id.clone(),
        title: t.title.clone(),
        assignee_id: t.assignee_id.clone(),
        estimate_hours: hours(t.estimate_minutes),
        status: task_status_pb(t.status),
        logged_hours: hours(logged.task(&t.id)),
        create_time: Some(fields::timestamp(t.stamp.create_time)),
        update_time: Some(fields::timestamp(t.stamp.update_time)),
        creator: t.stamp.creator.clone(),
        updater: t.stamp.updater.clone(),
    }
}

pub fn log_pb(l: &WorkLog) -> pb::WorkHourLog {
    pb::WorkHourLog {
        id: l.id.clone(),
        project_id: l.project_id.clone(),
        milestone_id: l.milestone_id.clone(),
        task_id: l.task_id.clone(),
        person_id: l.person_id.clone(),
        work_date: Some(date_pb(l.date)),
        hours: hours(l.minutes),
        note: l.note.clone(),
        create_time: Some(fields::timestamp(l.create_time)),
        creator: l.creator.clone(),
    }
}

pub fn alert_pb(a: &RiskAlert) -> pb::RiskAlert {
    pb::RiskAlert {
        id: a.id.clone(),
        etag: crm_rpc::etag(a.version),
        project_id: a.project_id.clone(),
        kind: risk_kind_pb(a.kind),
        status: risk_status_pb(a.status),
        cause: a.cause.clone(),
        milestone_id: a.milestone_id.clone(),
        task_id: a.task_id.clone(),
        person_id: a.person_id.clone(),
        detail: a.detail.clone(),
        responsible_ids: a.responsible_ids.clone(),
        raise_time: Some(fields::timestamp(a.raise_time)),
        acknowledged_by: a.acknowledged_by.clone(),
        acknowledge_time: fields::opt_timestamp(a.acknowledge_time),
        resolve_time: fields::opt_timestamp(a.resolve_time),
    }
}

pub fn capacity_pb(c: &Capacity) -> pb::Capacity {
    #[allow(clippy::cast_precision_loss)]
    let per_week = c.minutes_per_week as f64 / MINUTES_PER_HOUR as f64;
    pb::Capacity {
        person_id: c.person_id.clone(),
        etag: crm_rpc::etag(c.version),
        hours_per_week: per_week,
        planned_hours: hours(c.planned_minutes),
        window_capacity_hours: hours(c.window_minutes),
        is_default: c.is_default,
        update_time: fields::opt_timestamp(c.update_time),
        updater: c.updater.clone(),
    }
}

pub fn progress_line_pb(p: &Project, handover: &[u8]) -> pb::ProgressLine {
    pb::ProgressLine {
        project_id: p.id.clone(),
        project_name: p.name.clone(),
        account_id: p.handover.account_id.clone(),
        progress_line: p.progress_line.clone(),
        progress_percent: domain::progress(p).percent,
        status: project_status_pb(p.status),
        contacts: package(handover)
            .map(|h| h.key_contacts.into_iter().take(50).collect())
            .unwrap_or_default(),
        update_time: fields::opt_timestamp(p.progress_line_time),
    }
}

// ---- configuration

pub fn config_pb(
    c: &DeliveryConfig,
    version: i64,
    update_time: Option<i64>,
    updater: &str,
) -> pb::DeliveryConfig {
    #[allow(clippy::cast_precision_loss)]
    let capacity = c.default_capacity_minutes_per_week as f64 / MINUTES_PER_HOUR as f64;
    pb::DeliveryConfig {
        etag: crm_rpc::etag(version),
        unassigned_task_window_days: c.unassigned_task_window_days,
        over_budget_threshold_percent: c.over_budget_threshold_percent,
        default_capacity_hours_per_week: capacity,
        load_window_days: c.load_window_days,
        pace_window_days: c.pace_window_days,
        hours_per_person_day: c.hours_per_person_day,
        update_time: fields::opt_timestamp(update_time),
        updater: updater.to_owned(),
    }
}

/// The configuration a client sent; zero fields take the defaults.
pub fn config(c: &pb::DeliveryConfig) -> Result<DeliveryConfig, Vec<FieldViolation>> {
    let d = DeliveryConfig::default();
    let or = |v: i32, default: i32| if v == 0 { default } else { v };
    let capacity = if c.default_capacity_hours_per_week == 0.0 {
        Ok(d.default_capacity_minutes_per_week)
    } else {
        domain::minutes_of(
            c.default_capacity_hours_per_week,
            "config.default_capacity_hours_per_week",
            false,
            168 * MINUTES_PER_HOUR,
        )
    };
    let mut bad = Vec::new();
    let capacity = capacity.unwrap_or_else(|e| {
        if let domain::DeliveryError::Invalid(v) = e {
            bad.extend(v.into_iter().map(field_violation));
        }
        0
    });
    let config = DeliveryConfig {
        // 0 is a meaningful window for unassigned tasks ("only once due").
        unassigned_task_window_days: c.unassigned_task_window_days,
        over_budget_threshold_percent: c.over_budget_threshold_percent,
        default_capacity_minutes_per_week: capacity,
        load_window_days: or(c.load_window_days, d.load_window_days),
        pace_window_days: or(c.pace_window_days, d.pace_window_days),
        hours_per_person_day: or(c.hours_per_person_day, d.hours_per_person_day),
    };
    if let Err(v) = config.check() {
        bad.extend(v.into_iter().map(field_violation));
    }
    if bad.is_empty() { Ok(config) } else { Err(bad) }
}
