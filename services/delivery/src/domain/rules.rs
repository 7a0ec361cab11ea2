//! The rules of a project's life: the project made from a handover (and
//! changed by an amendment's), milestone and task changes, acceptance,
//! go-live, hour logs, and the computed progress and profitability.

use crm_types::{Actor, Date, Etag, Violation};

use super::error::{DeliveryError, Missing, resource};
use super::model::*;

type Result<T> = std::result::Result<T, DeliveryError>;

/// A stale etag is refused; empty means "whatever is current".
pub fn check_etag(etag: &str, version: i64) -> Result<()> {
    if Etag::matches(etag, u64::try_from(version).unwrap_or_default()) {
        Ok(())
    } else {
        Err(DeliveryError::Stale)
    }
}

fn new_milestone(
    id: String,
    name: &str,
    due: Date,
    origin: MilestoneOrigin,
    actor: &str,
    now: i64,
) -> Milestone {
    Milestone {
        id,
        version: 1,
        name: name.to_owned(),
        due,
        owner_id: String::new(),
        acceptance_criteria: String::new(),
        status: MilestoneStatus::Planned,
        origin,
        payment_milestone_id: String::new(),
        commitment: String::new(),
        acceptance: None,
        stamp: Stamp::new(actor, now),
    }
}

/// The milestones a handover commits to: one per payment milestone of the
/// plan, and one per special requirement with a deadline, due that many
/// days after signing ("deploy within 15 days").
fn planned_milestones(
    h: &Handover,
    mut new_id: impl FnMut() -> String,
    actor: &str,
    now: i64,
) -> Vec<Milestone> {
    let mut out = Vec::new();
    for p in &h.payments {
        let mut m = new_milestone(
            new_id(),
            &p.name,
            p.due,
            MilestoneOrigin::PaymentPlan,
            actor,
            now,
        );
        m.payment_milestone_id.clone_from(&p.payment_milestone_id);
        out.push(m);
    }
    for r in h.requirements.iter().filter(|r| r.due_within_days > 0) {
        let mut m = new_milestone(
            new_id(),
            &commitment_name(&r.description),
            commitment_due(h.signed_on, r.due_within_days),
            MilestoneOrigin::Commitment,
            actor,
            now,
        );
        m.commitment.clone_from(&r.description);
        out.push(m);
    }
    out.truncate(MAX_MILESTONES);
    out
}

/// A dated commitment is due `days` after the signing day.
pub fn commitment_due(signed_on: Date, days: i32) -> Date {
    signed_on.plus_days(i64::from(days))
}

/// A milestone's name from a requirement: its first 200 characters.
fn commitment_name(description: &str) -> String {
    description.trim().chars().take(200).collect()
}

/// The project a signed contract is handed over as: the deal team's
/// delivery manager manages it.
pub fn project_from_handover(
    tenant: &str,
    id: String,
    h: Handover,
    new_id: impl FnMut() -> String,
    actor: &str,
    now: i64,
) -> Project {
    let milestones = planned_milestones(&h, new_id, actor, now);
    let mut p = Project {
        id,
        tenant: tenant.to_owned(),
        version: 0,
        name: if h.title.trim().is_empty() {
            format!("contract {}", h.contract_id)
        } else {
            h.title.clone()
        },
        status: ProjectStatus::Active,
        project_manager_id: h.delivery_manager_id.clone(),
        member_ids: Vec::new(),
        progress_line: String::new(),
        progress_line_time: None,
        handover: h,
        milestones,
        tasks: Vec::new(),
        service_team: None,
        service_level: String::new(),
        go_live: None,
        stamp: Stamp::new(actor, now),
    };
    sort_milestones(&mut p);
    p
}

/// What an amendment's handover did to a project.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Amended {
    /// Ids of the milestones added or re-dated.
    pub changed: Vec<String>,
}

/// Applies a newer version's handover: the package is replaced, payment
/// milestones are matched by name and commitments by text (re-dated and
/// re-linked unless accepted), new ones are added; nothing is removed
/// (work done stays recorded). `None` when the handover is not newer (a
/// replayed or older event): nothing changes.
pub fn amend(
    p: &mut Project,
    h: Handover,
    mut new_id: impl FnMut() -> String,
    actor: &str,
    now: i64,
) -> Option<Amended> {
    if h.contract_version <= p.handover.contract_version {
        return None;
    }
    let mut amended = Amended::default();
    for planned in planned_milestones(&h, &mut new_id, actor, now) {
        let room = p.milestones.len() < MAX_MILESTONES;
        let existing = p.milestones.iter_mut().find(|m| {
            m.origin == planned.origin
                && match planned.origin {
                    MilestoneOrigin::PaymentPlan => m.name == planned.name,
                    _ => m.commitment == planned.commitment,
                }
        });
        match existing {
            Some(m) if m.status == MilestoneStatus::Accepted => {}
            Some(m) => {
                // Re-dated is a change the team must see; a new version's
                // payment milestone id is only followed.
                if m.due != planned.due {
                    m.due = planned.due;
                    amended.changed.push(m.id.clone());
                }
                if m.payment_milestone_id != planned.payment_milestone_id {
                    m.payment_milestone_id = planned.payment_milestone_id;
                }
                m.version += 1;
                m.stamp.touch(actor, now);
            }
            None if room => {
                amended.changed.push(planned.id.clone());
                p.milestones.push(planned);
            }
            None => {}
        }
    }
    p.handover = h;
    sort_milestones(p);
    p.stamp.touch(actor, now);
    Some(amended)
}

/// Changes need an active project.
pub fn check_active(p: &Project) -> Result<()> {
    if p.status == ProjectStatus::Completed {
        return Err(DeliveryError::precondition(
            "PROJECT_COMPLETED",
            "the project has gone live; it no longer changes",
        ));
    }
    Ok(())
}

fn check_not_accepted(m: &Milestone) -> Result<()> {
    if m.status == MilestoneStatus::Accepted {
        return Err(DeliveryError::precondition(
            "MILESTONE_ACCEPTED",
            format!("milestone {} is accepted; it is never reopened", m.id),
        ));
    }
    Ok(())
}

/// Sorted by due date, then creation: the order lists show.
pub fn sort_milestones(p: &mut Project) {
    p.milestones
        .sort_by(|a, b| (a.due, &a.id).cmp(&(b.due, &b.id)));
}

/// A new milestone's values.
#[derive(Debug, Clone, Default)]
pub struct MilestoneInput {
    pub name: Option<String>,
    pub due: Option<Date>,
    pub owner_id: Option<String>,
    pub acceptance_criteria: Option<String>,
}

pub fn add_milestone(
    p: &mut Project,
    id: String,
    input: MilestoneInput,
    actor: &str,
    now: i64,
) -> Result<String> {
    check_active(p)?;
    let mut bad = Vec::new();
    if input.name.as_deref().is_none_or(|n| n.trim().is_empty()) {
        bad.push(Violation::new("milestone.name", "required"));
    }
    if input.due.is_none() {
        bad.push(Violation::new("milestone.due_date", "required"));
    }
    if !bad.is_empty() {
        return Err(DeliveryError::Invalid(bad));
    }
    if p.milestones.len() >= MAX_MILESTONES {
        return Err(DeliveryError::precondition(
            "TOO_MANY_MILESTONES",
            format!("a project holds at most {MAX_MILESTONES} milestones"),
        ));
    }
    let (Some(name), Some(due)) = (input.name, input.due) else {
        return Err(DeliveryError::invalid("milestone", "required"));
    };
    let mut m = new_milestone(
        id.clone(),
        name.trim(),
        due,
        MilestoneOrigin::Manual,
        actor,
        now,
    );
    m.owner_id = input.owner_id.unwrap_or_default();
    m.acceptance_criteria = input.acceptance_criteria.unwrap_or_default();
    p.milestones.push(m);
    sort_milestones(p);
    p.stamp.touch(actor, now);
    Ok(id)
}

/// Applies the fields that are set; accepted milestones are final.
pub fn update_milestone(
    p: &mut Project,
    id: &str,
    etag: &str,
    input: MilestoneInput,
    actor: &str,
    now: i64,
) -> Result<()> {
    check_active(p)?;
    let m = p
        .milestone_mut(id)
        .ok_or_else(|| DeliveryError::not_found(resource::MILESTONE, id))?;
    check_etag(etag, m.version)?;
    check_not_accepted(m)?;
    if let Some(name) = input.name {
        if name.trim().is_empty() {
            return Err(DeliveryError::invalid("milestone.name", "required"));
        }
        m.name = name.trim().to_owned();
    }
    if let Some(due) = input.due {
        m.due = due;
    }
    if let Some(owner) = input.owner_id {
        m.owner_id = owner;
    }
    if let Some(criteria) = input.acceptance_criteria {
        m.acceptance_criteria = criteria;
    }
    m.version += 1;
    m.stamp.touch(actor, now);
    sort_milestones(p);
    p.stamp.touch(actor, now);
    Ok(())
}

/// A milestone's status transition (not acceptance): the status before.
pub fn move_milestone(
    p: &mut Project,
    id: &str,
    etag: &str,
    to: MilestoneStatus,
    actor: &str,
    now: i64,
) -> Result<MilestoneStatus> {
    check_active(p)?;
    let m = p
        .milestone_mut(id)
        .ok_or_else(|| DeliveryError::not_found(resource::MILESTONE, id))?;
    check_etag(etag, m.version)?;
    check_not_accepted(m)?;
    let from = m.status;
    let allowed = matches!(
        (from, to),
        (MilestoneStatus::Planned, MilestoneStatus::InProgress)
            | (
                MilestoneStatus::ReadyForAcceptance,
                MilestoneStatus::InProgress
            )
            | (
                MilestoneStatus::InProgress,
                MilestoneStatus::ReadyForAcceptance
            )
    );
    if !allowed {
        return Err(DeliveryError::precondition(
            "INVALID_TRANSITION",
            format!(
                "a milestone {} cannot become {}",
                from.as_str(),
                to.as_str()
            ),
        ));
    }
    m.status = to;
    m.version += 1;
    m.stamp.touch(actor, now);
    p.stamp.touch(actor, now);
    Ok(from)
}

/// Records the customer's acceptance: the milestone must be ready for
/// acceptance and every one of its tasks done; every missing thing is
/// listed.
pub fn accept_milestone(
    p: &mut Project,
    id: &str,
    etag: &str,
    acceptance: Acceptance,
    actor: &str,
    now: i64,
) -> Result<MilestoneStatus> {
    check_active(p)?;
    let open: Vec<Missing> = p
        .tasks_of(id)
        .filter(|t| t.status != TaskStatus::Done)
        .map(|t| {
            Missing::new(
                "TASK_NOT_DONE",
                &t.id,
                format!("task {:?} is not done", t.title),
            )
        })
        .collect();
    let m = p
        .milestone_mut(id)
        .ok_or_else(|| DeliveryError::not_found(resource::MILESTONE, id))?;
    check_etag(etag, m.version)?;
    let mut missing = Vec::new();
    if m.status == MilestoneStatus::Accepted {
        missing.push(Missing::new(
            "ACCEPTED",
            id,
            "the milestone is accepted already",
        ));
    } else if m.status != MilestoneStatus::ReadyForAcceptance {
        missing.push(Missing::new(
            "STATUS",
            id,
            format!(
                "the milestone is {}, not ready_for_acceptance",
                m.status.as_str()
            ),
        ));
    }
    missing.extend(open);
    if !missing.is_empty() {
        return Err(DeliveryError::Incomplete {
            reason: "MILESTONE_NOT_ACCEPTABLE",
            missing,
        });
    }
    let from = m.status;
    m.status = MilestoneStatus::Accepted;
    m.acceptance = Some(acceptance);
    m.version += 1;
    m.stamp.touch(actor, now);
    p.stamp.touch(actor, now);
    Ok(from)
}

/// Go-live: every milestone accepted (each open one listed); forms the
/// service-stage team.
pub fn go_live(
    p: &mut Project,
    service_manager_id: &str,
    service_level: &str,
    date: Date,
    actor: &str,
    now: i64,
) -> Result<()> {
    check_active(p)?;
    let mut missing: Vec<Missing> = p
        .milestones
        .iter()
        .filter(|m| m.status != MilestoneStatus::Accepted)
        .map(|m| {
            Missing::new(
                "MILESTONE_NOT_ACCEPTED",
                &m.id,
                format!("milestone {:?} is {}", m.name, m.status.as_str()),
            )
        })
        .collect();
    if p.milestones.is_empty() {
        missing.push(Missing::new(
            "NO_MILESTONES",
            &p.id,
            "the project has no milestone",
        ));
    }
    if !missing.is_empty() {
        return Err(DeliveryError::Incomplete {
            reason: "OPEN_MILESTONES",
            missing,
        });
    }
    p.status = ProjectStatus::Completed;
    p.service_team = Some(ServiceTeam {
        service_manager_id: service_manager_id.to_owned(),
        delivery_manager_id: p.project_manager_id.clone(),
        account_manager_id: p.handover.account_manager_id.clone(),
    });
    service_level.clone_into(&mut p.service_level);
    p.go_live = Some(date);
    p.stamp.touch(actor, now);
    Ok(())
}

/// A task's values as sent.
#[derive(Debug, Clone, Default)]
pub struct TaskInput {
    pub milestone_id: Option<String>,
    pub title: Option<String>,
    pub assignee_id: Option<String>,
    pub estimate_minutes: Option<i64>,
    pub status: Option<TaskStatus>,
}

pub fn add_task(
    p: &mut Project,
    id: String,
    input: TaskInput,
    actor: &str,
    now: i64,
) -> Result<String> {
    check_active(p)?;
    let milestone_id = input.milestone_id.unwrap_or_default();
    let Some(m) = p.milestone(&milestone_id) else {
        return Err(DeliveryError::invalid(
            "task.milestone_id",
            "not a milestone of this project",
        ));
    };
    check_not_accepted(m)?;
    let title = input.title.unwrap_or_default();
    if title.trim().is_empty() {
        return Err(DeliveryError::invalid("task.title", "required"));
    }
    if p.tasks.len() >= MAX_TASKS {
        return Err(DeliveryError::precondition(
            "TOO_MANY_TASKS",
            format!("a project holds at most {MAX_TASKS} tasks"),
        ));
    }
    p.tasks.push(Task {
        id: id.clone(),
        version: 1,
        milestone_id,
        title: title.trim().to_owned(),
        assignee_id: input.assignee_id.unwrap_or_default(),
        estimate_minutes: input.estimate_minutes.unwrap_or(0),
        status: input.status.unwrap_or(TaskStatus::Todo),
        stamp: Stamp::new(actor, now),
    });
    p.stamp.touch(actor, now);
    Ok(id)
}

pub fn update_task(
    p: &mut Project,
    id: &str,
    etag: &str,
    input: TaskInput,
    actor: &str,
    now: i64,
) -> Result<()> {
    check_active(p)?;
    let milestone_id = p
        .task(id)
        .ok_or_else(|| DeliveryError::not_found(resource::TASK, id))?
        .milestone_id
        .clone();
    if let Some(m) = p.milestone(&milestone_id) {
        check_not_accepted(m)?;
    }
    let t = p
        .task_mut(id)
        .ok_or_else(|| DeliveryError::not_found(resource::TASK, id))?;
    check_etag(etag, t.version)?;
    if let Some(title) = input.title {
        if title.trim().is_empty() {
            return Err(DeliveryError::invalid("task.title", "required"));
        }
        t.title = title.trim().to_owned();
    }
    if let Some(a) = input.assignee_id {
        t.assignee_id = a;
    }
    if let Some(e) = input.estimate_minutes {
        t.estimate_minutes = e;
    }
    if let Some(s) = input.status {
        t.status = s;
    }
    t.version += 1;
    t.stamp.touch(actor, now);
    p.stamp.touch(actor, now);
    Ok(())
}

/// Hours in minutes, from the API's hours: finite, rounded to the minute,
/// within `0..=max` (more than 0 when `positive`).
pub fn minutes_of(hours: f64, field: &str, positive: bool, max: i64) -> Result<i64> {
    let bad = |why: &str| DeliveryError::invalid(field, why.to_owned());
    if !hours.is_finite() {
        return Err(bad("must be a number of hours"));
    }
    if hours < 0.0 {
        return Err(bad("must not be negative"));
    }
    let minutes = (hours * 60.0).round();
    // Bounded before the cast: the comparison is exact for these values.
    #[allow(clippy::cast_precision_loss)]
    if minutes > max as f64 {
        return Err(bad(&format!("at most {} hours", max / MINUTES_PER_HOUR)));
    }
    #[allow(clippy::cast_possible_truncation)]
    let minutes = minutes as i64;
    if positive && minutes <= 0 {
        return Err(bad("must be more than 0 hours"));
    }
    Ok(minutes)
}

/// Where an hour log goes, checked against the project: the task and the
/// milestone must be the project's own and agree; the day not in the
/// future; the milestone not accepted. Returns the milestone's id.
pub fn check_log(
    p: &Project,
    milestone_id: &str,
    task_id: &str,
    date: Date,
    today: Date,
) -> Result<String> {
    let mut bad = Vec::new();
    if date > today {
        bad.push(Violation::new("log.work_date", "must not be in the future"));
    }
    let mut milestone = milestone_id.to_owned();
    if !task_id.is_empty() {
        match p.task(task_id) {
            None => bad.push(Violation::new("log.task_id", "not a task of this project")),
            Some(t) if !milestone_id.is_empty() && t.milestone_id != milestone_id => bad.push(
                Violation::new("log.milestone_id", "not the milestone of the task"),
            ),
            Some(t) => milestone.clone_from(&t.milestone_id),
        }
    } else if milestone_id.is_empty() {
        bad.push(Violation::new(
            "log.milestone_id",
            "required: a milestone or a task",
        ));
    }
    if !milestone.is_empty() && bad.is_empty() && p.milestone(&milestone).is_none() {
        bad.push(Violation::new(
            "log.milestone_id",
            "not a milestone of this project",
        ));
    }
    if !bad.is_empty() {
        return Err(DeliveryError::Invalid(bad));
    }
    if let Some(m) = p.milestone(&milestone) {
        check_not_accepted(m)?;
    }
    check_active(p)?;
    Ok(milestone)
}

/// Whether `more` minutes fit in a person's day that holds `logged`.
pub fn fits_in_day(logged: i64, more: i64) -> bool {
    logged.saturating_add(more) <= MAX_MINUTES_PER_DAY
}

/// Computed progress (never typed in): each milestone counts equally; an
/// accepted one is complete, any other as complete as the estimate share
/// of its done tasks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Progress {
    pub percent: i32,
    pub accepted: i32,
    pub total: i32,
    pub done_minutes: i64,
    pub total_minutes: i64,
}

pub fn progress(p: &Project) -> Progress {
    let mut out = Progress::default();
    let mut basis_points: i128 = 0;
    for m in &p.milestones {
        out.total += 1;
        let (mut done, mut all) = (0i64, 0i64);
        for t in p.tasks_of(&m.id) {
            all = all.saturating_add(t.estimate_minutes);
            if t.status == TaskStatus::Done {
                done = done.saturating_add(t.estimate_minutes);
            }
        }
        out.done_minutes = out.done_minutes.saturating_add(done);
        out.total_minutes = out.total_minutes.saturating_add(all);
        if m.status == MilestoneStatus::Accepted {
            out.accepted += 1;
            basis_points += 10_000;
        } else if all > 0 {
            basis_points += i128::from(done) * 10_000 / i128::from(all);
        }
    }
    if out.total > 0 {
        let percent = basis_points / (i128::from(out.total) * 100);
        out.percent = i32::try_from(percent.clamp(0, 100)).unwrap_or(0);
    }
    out
}

/// Actual hours against the reviewed workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Profitability {
    pub reviewed_minutes: i64,
    pub planned_minutes: i64,
    pub actual_minutes: i64,
    pub reviewed_used_percent: i32,
}

pub fn reviewed_minutes(p: &Project, hours_per_person_day: i32) -> i64 {
    i64::from(p.handover.reviewed_person_days.max(0))
        * i64::from(hours_per_person_day)
        * MINUTES_PER_HOUR
}

pub fn profitability(p: &Project, logged: &Logged, hours_per_person_day: i32) -> Profitability {
    let reviewed = reviewed_minutes(p, hours_per_person_day);
    let planned = p.tasks.iter().map(|t| t.estimate_minutes).sum();
    let used = if reviewed > 0 {
        i32::try_from(logged.total.saturating_mul(100) / reviewed).unwrap_or(i32::MAX)
    } else {
        0
    };
    Profitability {
        reviewed_minutes: reviewed,
        planned_minutes: planned,
        actual_minutes: logged.total,
        reviewed_used_percent: used,
    }
}

/// Who may log for whom: anyone on the project for themselves, the
/// project manager (or a manager) for anyone.
pub fn check_log_person(p: &Project, actor: &Actor, person: &str) -> Result<()> {
    if person == actor.id || super::access::is_manager_of(p, actor) {
        Ok(())
    } else {
        Err(DeliveryError::forbidden(
            "NOT_PROJECT_MANAGER",
            "only the project manager logs hours for somebody else",
        ))
    }
}
