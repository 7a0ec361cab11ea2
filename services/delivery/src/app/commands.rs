//! The commands on projects: each in one unit of work with its audit
//! entries, its events and the risk rules run on the result.

use crm_store::idempotency::RequestKey;
use crm_types::{Actor, AuditEntry, Change, Date, new_id};

use super::{Result, Trail, UseCases, View, risks};
use crate::domain::{
    self, Acceptance, AcceptanceChannel, DeliveryError, MilestoneInput, MilestoneStatus, Project,
    TaskInput, WorkLog, access, resource,
};
use crate::store;
use crate::wire;

/// UpdateProject's fields, each `None` when not to change.
#[derive(Debug, Clone, Default)]
pub struct ProjectPatch {
    pub name: Option<String>,
    pub progress_line: Option<String>,
    pub member_ids: Option<Vec<String>>,
    pub project_manager_id: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct AcceptInput {
    pub accepted_by: String,
    pub signature_reference: String,
    pub comment: String,
}

#[derive(Debug, Clone)]
pub struct GoLiveInput {
    pub service_manager_id: String,
    pub service_level: String,
    pub date: Option<Date>,
}

#[derive(Debug, Clone)]
pub struct LogInput {
    pub project_id: String,
    pub milestone_id: String,
    pub task_id: String,
    pub person_id: String,
    pub date: Date,
    pub minutes: i64,
    pub note: String,
}

impl UseCases {
    /// One command on a project: load it locked, let `change` decide (it
    /// checks the caller and etags, and records its audit entries), save
    /// it, run the risk rules, then add the events of `after`, which read
    /// the saved project and its hours; all in one transaction.
    async fn change<T, F, A>(
        &self,
        tenant: &str,
        project_id: &str,
        change: F,
        after: A,
    ) -> Result<(View, T)>
    where
        T: Send,
        F: Fn(&mut Project, &mut Trail, i64) -> Result<T> + Send + Sync,
        A: Fn(&View, &T, i64) -> Vec<crm_events::NewEvent> + Send + Sync,
    {
        let (change, after) = (&change, &after);
        self.uow
            .run(tenant, |tx| async move {
                let now = crm_types::now_micros();
                let cfg = store::config(&*tx, tenant, &self.defaults).await?.config;
                let stored = store::load_for_update(&*tx, tenant, project_id).await?;
                let mut p = stored.project;
                let read = p.version;
                let mut trail = Trail::default();
                let value = change(&mut p, &mut trail, now)?;
                store::save_project(&*tx, &p, read, None).await?;
                p.version = read + 1;
                let (logged, _) = risks::reassess(&*tx, &p, &cfg, now, &mut trail).await?;
                let view = View {
                    project: p,
                    handover: stored.handover,
                    logged,
                    config: cfg,
                };
                for event in after(&view, &value, now) {
                    trail.event(event);
                }
                trail.done((view, value))
            })
            .await
    }

    /// The project a milestone or task belongs to (NOT_FOUND otherwise).
    async fn project_of(&self, tenant: &str, item: &str, kind: &'static str) -> Result<String> {
        store::project_of_item(self.db(), tenant, item)
            .await?
            .ok_or_else(|| DeliveryError::not_found(kind, item))
    }

    pub async fn update_project(
        &self,
        actor: &Actor,
        tenant: &str,
        id: &str,
        etag: &str,
        patch: ProjectPatch,
    ) -> Result<View> {
        let (view, ()) = self
            .change(
                tenant,
                id,
                |p, trail, now| {
                    access::check_manager(p, actor)?;
                    domain::check_etag(etag, p.version)?;
                    domain::check_active(p)?;
                    let mut changes = Vec::new();
                    if let Some(name) = &patch.name {
                        changes.extend(Change::of("name", &p.name, name));
                        p.name.clone_from(name);
                    }
                    if let Some(line) = &patch.progress_line {
                        changes.extend(Change::of("progress_line", &p.progress_line, line));
                        p.progress_line.clone_from(line);
                        p.progress_line_time = Some(now);
                    }
                    if let Some(members) = &patch.member_ids {
                        changes.extend(Change::of(
                            "member_ids",
                            p.member_ids.join(","),
                            members.join(","),
                        ));
                        p.member_ids.clone_from(members);
                    }
                    if let Some(pm) = &patch.project_manager_id {
                        if *pm != p.project_manager_id && !actor.has(crm_types::Role::Manager) {
                            return Err(DeliveryError::forbidden(
                                "NOT_PROJECT_MANAGER",
                                "only a manager hands the project to another project manager",
                            ));
                        }
                        changes.extend(Change::of("project_manager_id", &p.project_manager_id, pm));
                        p.project_manager_id.clone_from(pm);
                    }
                    p.stamp.touch(&actor.id, now);
                    trail.audit(
                        AuditEntry::new(&p.id, "project.updated", &actor.id, now)
                            .with_field_changes(changes),
                    );
                    Ok(())
                },
                |_, _, _| Vec::new(),
            )
            .await?;
        Ok(view)
    }

    pub async fn create_milestone(
        &self,
        actor: &Actor,
        tenant: &str,
        request: Option<RequestKey<'_>>,
        project_id: &str,
        input: MilestoneInput,
    ) -> Result<(View, String)> {
        let input = &input;
        let id: String = self
            .uow
            .run_once(tenant, request, |tx| async move {
                let now = crm_types::now_micros();
                let cfg = store::config(&*tx, tenant, &self.defaults).await?.config;
                let stored = store::load_for_update(&*tx, tenant, project_id).await?;
                let mut p = stored.project;
                access::check_member(&p, actor)?;
                let read = p.version;
                let id = domain::add_milestone(&mut p, new_id(), input.clone(), &actor.id, now)?;
                store::save_project(&*tx, &p, read, None).await?;
                p.version = read + 1;
                let mut trail = Trail::default();
                trail.audit(AuditEntry::new(&id, "milestone.created", &actor.id, now));
                risks::reassess(&*tx, &p, &cfg, now, &mut trail).await?;
                trail.done(id)
            })
            .await?;
        let view = self.view(actor, tenant, project_id).await?;
        Ok((view, id))
    }

    pub async fn update_milestone(
        &self,
        actor: &Actor,
        tenant: &str,
        id: &str,
        etag: &str,
        input: MilestoneInput,
    ) -> Result<View> {
        let project_id = self.project_of(tenant, id, resource::MILESTONE).await?;
        let (view, ()) = self
            .change(
                tenant,
                &project_id,
                |p, trail, now| {
                    access::check_member(p, actor)?;
                    domain::update_milestone(p, id, etag, input.clone(), &actor.id, now)?;
                    trail.audit(AuditEntry::new(id, "milestone.updated", &actor.id, now));
                    Ok(())
                },
                |_, _, _| Vec::new(),
            )
            .await?;
        Ok(view)
    }

    /// StartMilestone and MarkMilestoneReady.
    pub async fn move_milestone(
        &self,
        actor: &Actor,
        tenant: &str,
        id: &str,
        etag: &str,
        to: MilestoneStatus,
    ) -> Result<View> {
        let project_id = self.project_of(tenant, id, resource::MILESTONE).await?;
        let (view, _) = self
            .change(
                tenant,
                &project_id,
                |p, trail, now| {
                    access::check_member(p, actor)?;
                    let from = domain::move_milestone(p, id, etag, to, &actor.id, now)?;
                    trail.audit(
                        AuditEntry::new(id, "milestone.status_changed", &actor.id, now)
                            .with_field_changes(
                                Change::of("status", from.as_str(), to.as_str())
                                    .into_iter()
                                    .collect(),
                            ),
                    );
                    Ok(from)
                },
                |v, from, now| {
                    wire::milestone_status_changed(&v.project, id, *from, &v.logged, now)
                        .into_iter()
                        .collect()
                },
            )
            .await?;
        Ok(view)
    }

    pub async fn accept_milestone(
        &self,
        actor: &Actor,
        tenant: &str,
        id: &str,
        etag: &str,
        input: AcceptInput,
    ) -> Result<View> {
        let project_id = self.project_of(tenant, id, resource::MILESTONE).await?;
        let integration = actor.has(crm_types::Role::Integration);
        if integration && input.signature_reference.is_empty() {
            return Err(DeliveryError::invalid(
                "signature_reference",
                "required for an e-signed acceptance recorded by an integration",
            ));
        }
        let (view, _) = self
            .change(
                tenant,
                &project_id,
                |p, trail, now| {
                    access::check_acceptor(p, actor)?;
                    let acceptance = Acceptance {
                        recorded_by: actor.id.clone(),
                        channel: if integration {
                            AcceptanceChannel::ESignature
                        } else {
                            AcceptanceChannel::ProjectManager
                        },
                        accepted_by: input.accepted_by.clone(),
                        signature_reference: input.signature_reference.clone(),
                        comment: input.comment.clone(),
                        time: now,
                    };
                    let from = domain::accept_milestone(p, id, etag, acceptance, &actor.id, now)?;
                    trail.audit(AuditEntry::new(id, "milestone.accepted", &actor.id, now));
                    Ok(from)
                },
                |v, from, now| {
                    let accepted = wire::milestone_accepted(&v.project, id, &v.logged, now);
                    let changed =
                        wire::milestone_status_changed(&v.project, id, *from, &v.logged, now);
                    accepted.into_iter().chain(changed).collect()
                },
            )
            .await?;
        Ok(view)
    }

    pub async fn go_live(
        &self,
        actor: &Actor,
        tenant: &str,
        id: &str,
        etag: &str,
        input: GoLiveInput,
    ) -> Result<View> {
        let (view, ()) = self
            .change(
                tenant,
                id,
                |p, trail, now| {
                    access::check_manager(p, actor)?;
                    domain::check_etag(etag, p.version)?;
                    let today = Date::of_micros(now);
                    let date = input.date.unwrap_or(today);
                    if date > today {
                        return Err(DeliveryError::invalid(
                            "go_live_date",
                            "must not be in the future",
                        ));
                    }
                    domain::go_live(
                        p,
                        &input.service_manager_id,
                        &input.service_level,
                        date,
                        &actor.id,
                        now,
                    )?;
                    trail.audit(AuditEntry::new(&p.id, "project.completed", &actor.id, now));
                    Ok(())
                },
                |v, (), now| {
                    vec![wire::project_completed(
                        &v.project,
                        &v.handover,
                        &v.logged,
                        &v.config,
                        now,
                    )]
                },
            )
            .await?;
        Ok(view)
    }

    pub async fn create_task(
        &self,
        actor: &Actor,
        tenant: &str,
        request: Option<RequestKey<'_>>,
        project_id: &str,
        input: TaskInput,
    ) -> Result<(View, String)> {
        let input = &input;
        let id: String = self
            .uow
            .run_once(tenant, request, |tx| async move {
                let now = crm_types::now_micros();
                let cfg = store::config(&*tx, tenant, &self.defaults).await?.config;
                let stored = store::load_for_update(&*tx, tenant, project_id).await?;
                let mut p = stored.project;
                access::check_member(&p, actor)?;
                let read = p.version;
                let id = domain::add_task(&mut p, new_id(), input.clone(), &actor.id, now)?;
                store::save_project(&*tx, &p, read, None).await?;
                p.version = read + 1;
                let mut trail = Trail::default();
                trail.audit(AuditEntry::new(&id, "task.created", &actor.id, now));
                risks::reassess(&*tx, &p, &cfg, now, &mut trail).await?;
                trail.done(id)
            })
            .await?;
        let view = self.view(actor, tenant, project_id).await?;
        Ok((view, id))
    }

    pub async fn update_task(
        &self,
        actor: &Actor,
        tenant: &str,
        id: &str,
        etag: &str,
        input: TaskInput,
    ) -> Result<View> {
        let project_id = self.project_of(tenant, id, resource::TASK).await?;
        let (view, ()) = self
            .change(
                tenant,
                &project_id,
                |p, trail, now| {
                    access::check_member(p, actor)?;
                    domain::update_task(p, id, etag, input.clone(), &actor.id, now)?;
                    trail.audit(AuditEntry::new(id, "task.updated", &actor.id, now));
                    Ok(())
                },
                |_, _, _| Vec::new(),
            )
            .await?;
        Ok(view)
    }

    /// Logs hours: the project's member for themselves (its manager for
    /// anyone), within 24 hours per person and day across everything.
    pub async fn log_hours(
        &self,
        actor: &Actor,
        tenant: &str,
        request: Option<RequestKey<'_>>,
        input: LogInput,
    ) -> Result<WorkLog> {
        let input = &input;
        let id: String = self
            .uow
            .run_once(tenant, request, |tx| async move {
                let now = crm_types::now_micros();
                let cfg = store::config(&*tx, tenant, &self.defaults).await?.config;
                let stored = store::load_for_update(&*tx, tenant, &input.project_id).await?;
                let p = stored.project;
                access::check_member(&p, actor)?;
                let person = if input.person_id.is_empty() {
                    actor.id.clone()
                } else {
                    input.person_id.clone()
                };
                domain::check_log_person(&p, actor, &person)?;
                let milestone = domain::check_log(
                    &p,
                    &input.milestone_id,
                    &input.task_id,
                    input.date,
                    Date::of_micros(now),
                )?;
                if !store::add_to_day(
                    &*tx,
                    tenant,
                    &person,
                    input.date,
                    input.minutes,
                    domain::MAX_MINUTES_PER_DAY,
                )
                .await?
                {
                    return Err(DeliveryError::Rule {
                        reason: "DAY_OVER_24_HOURS",
                        field: "log.hours",
                        description:
                            "the person's hours on that day would pass 24 across every project"
                                .into(),
                    });
                }
                let log = WorkLog {
                    id: new_id(),
                    tenant: tenant.to_owned(),
                    project_id: p.id.clone(),
                    milestone_id: milestone,
                    task_id: input.task_id.clone(),
                    person_id: person,
                    date: input.date,
                    minutes: input.minutes,
                    note: input.note.clone(),
                    create_time: now,
                    creator: actor.id.clone(),
                };
                store::insert_log(&*tx, &log).await?;
                let mut trail = Trail::default();
                trail.audit(
                    AuditEntry::new(&log.id, "hours.logged", &actor.id, now).with_reason(format!(
                        "{} minutes by {} on {}",
                        log.minutes,
                        log.person_id,
                        log.date.iso()
                    )),
                );
                risks::reassess(&*tx, &p, &cfg, now, &mut trail).await?;
                trail.done(log.id)
            })
            .await?;
        store::load_log(self.db(), tenant, &id)
            .await?
            .ok_or_else(|| DeliveryError::not_found("delivery.crmsuite.com/WorkHourLog", &id))
    }

    pub async fn acknowledge(
        &self,
        actor: &Actor,
        tenant: &str,
        id: &str,
        etag: &str,
    ) -> Result<crate::domain::RiskAlert> {
        self.uow
            .run(tenant, |tx| async move {
                let now = crm_types::now_micros();
                let mut alert = store::load_alert(&*tx, tenant, id).await?;
                self.check_alert_visible(&*tx, actor, tenant, &alert)
                    .await?;
                let responsible = alert.responsible_ids.contains(&actor.id)
                    || actor.has(crm_types::Role::Manager);
                if !responsible {
                    return Err(DeliveryError::forbidden(
                        "NOT_RESPONSIBLE",
                        "only the alert's responsible people acknowledge it",
                    ));
                }
                domain::check_etag(etag, alert.version)?;
                if alert.status != crate::domain::RiskStatus::Open {
                    return Err(DeliveryError::precondition(
                        "NOT_OPEN",
                        format!("the alert is {}", alert.status.as_str()),
                    ));
                }
                let read = alert.version;
                alert.status = crate::domain::RiskStatus::Acknowledged;
                alert.acknowledged_by.clone_from(&actor.id);
                alert.acknowledge_time = Some(now);
                store::save_alert(&*tx, &alert, read).await?;
                alert.version = read + 1;
                let mut trail = Trail::default();
                trail.audit(AuditEntry::new(id, "risk.acknowledged", &actor.id, now));
                trail.event(wire::risk_acknowledged(&alert, now));
                trail.done(alert)
            })
            .await
    }

    pub async fn set_capacity(
        &self,
        actor: &Actor,
        tenant: &str,
        person: &str,
        minutes_per_week: i64,
        etag: &str,
    ) -> Result<crate::domain::Capacity> {
        self.uow
            .run(tenant, |tx| async move {
                let now = crm_types::now_micros();
                let cfg = store::config(&*tx, tenant, &self.defaults).await?.config;
                let read = store::capacity(&*tx, tenant, person)
                    .await?
                    .map_or(0, |c| c.0);
                domain::check_etag(etag, read)?;
                store::set_capacity(&*tx, tenant, person, minutes_per_week, read, &actor.id, now)
                    .await?;
                let mut trail = Trail::default();
                trail.audit(
                    AuditEntry::new(
                        &format!("capacity/{person}"),
                        "capacity.set",
                        &actor.id,
                        now,
                    )
                    .with_reason(format!("{minutes_per_week} minutes a week")),
                );
                risks::reassess_person(&*tx, tenant, person, &cfg, now, &mut trail).await?;
                trail.done(())
            })
            .await?;
        self.capacity_of(tenant, person).await
    }
}
