//! The gRPC face of the delivery service: each handler gets the request's
//! context and message (`DeliveryError::handle`), checks and maps it into
//! the domain's values (`wire`), runs the use case (`app`) and maps the
//! answer back. No SQL and no rules here.

mod error;

use crm_proto::crm::delivery::v1::{self as pb, delivery_service_server::DeliveryService};
use crm_rpc::{
    DomainError, FieldViolation, RpcError,
    fields::{self, Lines},
    paging::{self, Binding, PageLimits},
    required_id,
};
use crm_service::{AuditTrail, ConfigWire, Replay, TenantConfigs};
use tonic::{Request, Response, Status};

use crate::app::{AcceptInput, GoLiveInput, LogInput, ProjectPatch, UseCases, View};
use crate::domain::{
    self, DeliveryConfig, DeliveryError, MAX_ESTIMATE_MINUTES, MAX_MEMBERS, MAX_MINUTES_PER_DAY,
    MINUTES_PER_HOUR, MilestoneInput, MilestoneStatus, TaskInput,
};
use crate::store::{AlertFilter, ProjectFilter};
use crate::wire;

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

fn line(value: &str, field: &str, max: usize) -> Result<(), FieldViolation> {
    fields::text(value, field, max, Lines::Single)
}

fn free_text(value: &str, field: &str) -> Result<(), FieldViolation> {
    fields::text(value, field, fields::MAX_NOTES_CHARS, Lines::Multi)
}

/// Every violation of a request, reported together.
fn all(
    checks: impl IntoIterator<Item = Result<(), FieldViolation>>,
) -> Result<(), Vec<FieldViolation>> {
    let bad: Vec<_> = checks.into_iter().filter_map(Result::err).collect();
    if bad.is_empty() { Ok(()) } else { Err(bad) }
}

/// Which of `fields` an update changes: the mask's paths, or with no mask
/// every one `set` says is set.
fn paths(
    mask: Option<&prost_types::FieldMask>,
    allowed: &[&str],
    set: impl Fn(&str) -> bool,
) -> Result<Vec<String>, FieldViolation> {
    let listed = fields::mask_paths(mask, allowed)?;
    if mask.is_some_and(|m| !m.paths.is_empty()) {
        return Ok(listed);
    }
    Ok(allowed
        .iter()
        .filter(|f| set(f))
        .map(|f| (*f).to_owned())
        .collect())
}

fn hours(value: f64, field: &str, positive: bool, max: i64) -> Result<i64, FieldViolation> {
    domain::minutes_of(value, field, positive, max).map_err(|e| match e {
        DeliveryError::Invalid(mut v) if !v.is_empty() => wire::field_violation(v.remove(0)),
        _ => FieldViolation::new(field, "not a valid number of hours"),
    })
}

#[derive(Clone)]
pub struct DeliveryApi {
    app: UseCases,
    pages: PageLimits,
    configs: TenantConfigs<DeliveryConfig, pb::DeliveryConfig>,
    audit: AuditTrail,
}

impl DeliveryApi {
    pub fn new(app: UseCases, pages: PageLimits) -> Self {
        DeliveryApi {
            configs: TenantConfigs::new(
                app.db().clone(),
                app.defaults().clone(),
                "delivery-config",
                ConfigWire {
                    to_message: wire::config_pb,
                    from_message: wire::config,
                    etag: |c| &c.etag,
                },
            ),
            audit: AuditTrail::new(app.db().clone(), pages),
            app,
            pages,
        }
    }

    fn page<K: serde::de::DeserializeOwned>(
        &self,
        size: i32,
        token: &str,
        binding: Binding,
    ) -> Result<paging::Page<K>, RpcError> {
        Ok(self.pages.page(size, token, binding)?)
    }
}

fn project(v: &View) -> Option<pb::Project> {
    Some(wire::project_pb(
        &v.project,
        &v.handover,
        &v.logged,
        &v.config,
    ))
}

fn milestone(v: &View, id: &str) -> Result<Option<pb::Milestone>, DeliveryError> {
    let m = v
        .project
        .milestone(id)
        .ok_or_else(|| DeliveryError::not_found(domain::resource::MILESTONE, id))?;
    Ok(Some(wire::milestone_pb(&v.project, m, &v.logged)))
}

fn task(v: &View, id: &str) -> Result<Option<pb::Task>, DeliveryError> {
    let t = v
        .project
        .task(id)
        .ok_or_else(|| DeliveryError::not_found(domain::resource::TASK, id))?;
    Ok(Some(wire::task_pb(&v.project, t, &v.logged)))
}

fn milestone_input(
    m: &pb::Milestone,
    set: &[String],
) -> Result<MilestoneInput, Vec<FieldViolation>> {
    let has = |f: &str| set.iter().any(|s| s == f);
    all([
        line(&m.name, "milestone.name", fields::MAX_NAME_CHARS),
        fields::id(&m.owner_id, "milestone.owner_id"),
        free_text(&m.acceptance_criteria, "milestone.acceptance_criteria"),
    ])?;
    let due = if has("due_date") {
        match &m.due_date {
            Some(d) => Some(wire::date(d, "milestone.due_date").map_err(|v| vec![v])?),
            None => return Err(vec![FieldViolation::new("milestone.due_date", "required")]),
        }
    } else {
        None
    };
    Ok(MilestoneInput {
        name: has("name").then(|| m.name.clone()),
        due,
        owner_id: has("owner_id").then(|| m.owner_id.clone()),
        acceptance_criteria: has("acceptance_criteria").then(|| m.acceptance_criteria.clone()),
    })
}

fn task_input(t: &pb::Task, set: &[String]) -> Result<TaskInput, Vec<FieldViolation>> {
    let has = |f: &str| set.iter().any(|s| s == f);
    all([
        line(&t.title, "task.title", fields::MAX_NAME_CHARS),
        fields::id(&t.assignee_id, "task.assignee_id"),
        fields::id(&t.milestone_id, "task.milestone_id"),
    ])?;
    let estimate = if has("estimate_hours") {
        Some(
            hours(
                t.estimate_hours,
                "task.estimate_hours",
                false,
                MAX_ESTIMATE_MINUTES,
            )
            .map_err(|v| vec![v])?,
        )
    } else {
        None
    };
    let status = wire::task_status(t.status, "task.status").map_err(|v| vec![v])?;
    Ok(TaskInput {
        milestone_id: non_empty(&t.milestone_id),
        title: has("title").then(|| t.title.clone()),
        assignee_id: has("assignee_id").then(|| t.assignee_id.clone()),
        estimate_minutes: estimate,
        status: if has("status") { status } else { None },
    })
}

#[tonic::async_trait]
impl DeliveryService for DeliveryApi {
    async fn get_project(
        &self,
        req: Request<pb::GetProjectRequest>,
    ) -> Result<Response<pb::GetProjectResponse>, Status> {
        DeliveryError::handle(req, |ctx, body| async move {
            required_id(&body.id, "id")?;
            let v = self.app.view(&ctx.caller, &ctx.tenant, &body.id).await?;
            Ok(pb::GetProjectResponse {
                project: project(&v),
            })
        })
        .await
    }

    async fn list_projects(
        &self,
        req: Request<pb::ListProjectsRequest>,
    ) -> Result<Response<pb::ListProjectsResponse>, Status> {
        DeliveryError::handle(req, |ctx, body| async move {
            all([
                fields::id(&body.account_id, "account_id"),
                fields::id(&body.project_manager_id, "project_manager_id"),
            ])?;
            let status = wire::project_status(body.status, "status")?;
            let binding = ctx
                .binding()
                .with("caller", &ctx.caller.id)
                .with("status", body.status)
                .with("account", &body.account_id)
                .with("pm", &body.project_manager_id);
            let page = self.page::<String>(body.page_size, &body.page_token, binding)?;
            let filter = ProjectFilter {
                status,
                account_id: non_empty(&body.account_id),
                project_manager_id: non_empty(&body.project_manager_id),
            };
            let views = self
                .app
                .list_projects(
                    &ctx.caller,
                    &ctx.tenant,
                    &filter,
                    page.after.as_deref(),
                    page.limit,
                )
                .await?;
            Ok(pb::ListProjectsResponse {
                next_page_token: page.next_token(&views, |v| v.project.id.clone()),
                projects: views.iter().filter_map(project).collect(),
            })
        })
        .await
    }

    async fn update_project(
        &self,
        req: Request<pb::UpdateProjectRequest>,
    ) -> Result<Response<pb::UpdateProjectResponse>, Status> {
        DeliveryError::handle(req, |ctx, body| async move {
            let input = body.project.unwrap_or_default();
            required_id(&input.id, "project.id")?;
            let set = paths(
                body.update_mask.as_ref(),
                &["name", "progress_line", "member_ids", "project_manager_id"],
                |f| match f {
                    "name" => !input.name.is_empty(),
                    "progress_line" => !input.progress_line.is_empty(),
                    "member_ids" => !input.member_ids.is_empty(),
                    _ => !input.project_manager_id.is_empty(),
                },
            )?;
            let has = |f: &str| set.iter().any(|s| s == f);
            let members = fields::ids(&input.member_ids, "project.member_ids", MAX_MEMBERS);
            let mut bad: Vec<FieldViolation> = [
                line(&input.name, "project.name", fields::MAX_NAME_CHARS),
                line(&input.progress_line, "project.progress_line", 500),
                fields::id(&input.project_manager_id, "project.project_manager_id"),
            ]
            .into_iter()
            .filter_map(Result::err)
            .collect();
            if has("name") && input.name.trim().is_empty() {
                bad.push(FieldViolation::new("project.name", "required"));
            }
            if has("project_manager_id") && input.project_manager_id.is_empty() {
                bad.push(FieldViolation::new(
                    "project.project_manager_id",
                    "required",
                ));
            }
            let members = members.map_err(|v| bad.push(v)).unwrap_or_default();
            if !bad.is_empty() {
                return Err(bad.into());
            }
            let patch = ProjectPatch {
                name: has("name").then(|| input.name.trim().to_owned()),
                progress_line: has("progress_line").then(|| input.progress_line.trim().to_owned()),
                member_ids: has("member_ids").then_some(members),
                project_manager_id: has("project_manager_id")
                    .then(|| input.project_manager_id.clone()),
            };
            let v = self
                .app
                .update_project(&ctx.caller, &ctx.tenant, &input.id, &input.etag, patch)
                .await?;
            Ok(pb::UpdateProjectResponse {
                project: project(&v),
            })
        })
        .await
    }

    async fn create_milestone(
        &self,
        req: Request<pb::CreateMilestoneRequest>,
    ) -> Result<Response<pb::CreateMilestoneResponse>, Status> {
        DeliveryError::handle(req, |mut ctx, body| async move {
            ctx.replayable(&body.request_id, &body)?;
            let m = body.milestone.unwrap_or_default();
            required_id(&m.project_id, "milestone.project_id")?;
            let set = ["name", "due_date", "owner_id", "acceptance_criteria"].map(str::to_owned);
            let input = milestone_input(&m, &set)?;
            let (v, id) = self
                .app
                .create_milestone(
                    &ctx.caller,
                    &ctx.tenant,
                    ctx.request_key(),
                    &m.project_id,
                    input,
                )
                .await?;
            Ok(pb::CreateMilestoneResponse {
                milestone: milestone(&v, &id)?,
            })
        })
        .await
    }

    async fn update_milestone(
        &self,
        req: Request<pb::UpdateMilestoneRequest>,
    ) -> Result<Response<pb::UpdateMilestoneResponse>, Status> {
        DeliveryError::handle(req, |ctx, body| async move {
            let m = body.milestone.unwrap_or_default();
            required_id(&m.id, "milestone.id")?;
            let set = paths(
                body.update_mask.as_ref(),
                &["name", "due_date", "owner_id", "acceptance_criteria"],
                |f| match f {
                    "name" => !m.name.is_empty(),
                    "due_date" => m.due_date.is_some(),
                    "owner_id" => !m.owner_id.is_empty(),
                    _ => !m.acceptance_criteria.is_empty(),
                },
            )?;
            let input = milestone_input(&m, &set)?;
            let v = self
                .app
                .update_milestone(&ctx.caller, &ctx.tenant, &m.id, &m.etag, input)
                .await?;
            Ok(pb::UpdateMilestoneResponse {
                milestone: milestone(&v, &m.id)?,
            })
        })
        .await
    }

    async fn start_milestone(
        &self,
        req: Request<pb::StartMilestoneRequest>,
    ) -> Result<Response<pb::StartMilestoneResponse>, Status> {
        DeliveryError::handle(req, |ctx, body| async move {
            required_id(&body.id, "id")?;
            let v = self
                .app
                .move_milestone(
                    &ctx.caller,
                    &ctx.tenant,
                    &body.id,
                    &body.etag,
                    MilestoneStatus::InProgress,
                )
                .await?;
            Ok(pb::StartMilestoneResponse {
                milestone: milestone(&v, &body.id)?,
            })
        })
        .await
    }

    async fn mark_milestone_ready(
        &self,
        req: Request<pb::MarkMilestoneReadyRequest>,
    ) -> Result<Response<pb::MarkMilestoneReadyResponse>, Status> {
        DeliveryError::handle(req, |ctx, body| async move {
            required_id(&body.id, "id")?;
            let v = self
                .app
                .move_milestone(
                    &ctx.caller,
                    &ctx.tenant,
                    &body.id,
                    &body.etag,
                    MilestoneStatus::ReadyForAcceptance,
                )
                .await?;
            Ok(pb::MarkMilestoneReadyResponse {
                milestone: milestone(&v, &body.id)?,
            })
        })
        .await
    }

    async fn accept_milestone(
        &self,
        req: Request<pb::AcceptMilestoneRequest>,
    ) -> Result<Response<pb::AcceptMilestoneResponse>, Status> {
        DeliveryError::handle(req, |ctx, body| async move {
            required_id(&body.id, "id")?;
            all([
                line(&body.accepted_by, "accepted_by", fields::MAX_NAME_CHARS),
                line(
                    &body.signature_reference,
                    "signature_reference",
                    fields::MAX_NAME_CHARS,
                ),
                free_text(&body.comment, "comment"),
            ])?;
            let input = AcceptInput {
                accepted_by: body.accepted_by.trim().to_owned(),
                signature_reference: body.signature_reference.trim().to_owned(),
                comment: body.comment.clone(),
            };
            let v = self
                .app
                .accept_milestone(&ctx.caller, &ctx.tenant, &body.id, &body.etag, input)
                .await?;
            Ok(pb::AcceptMilestoneResponse {
                milestone: milestone(&v, &body.id)?,
            })
        })
        .await
    }

    async fn go_live(
        &self,
        req: Request<pb::GoLiveRequest>,
    ) -> Result<Response<pb::GoLiveResponse>, Status> {
        DeliveryError::handle(req, |ctx, body| async move {
            required_id(&body.id, "id")?;
            all([
                required_id(&body.service_manager_id, "service_manager_id"),
                line(
                    &body.service_level,
                    "service_level",
                    fields::MAX_SHORT_CHARS,
                ),
            ])?;
            let date = body
                .go_live_date
                .as_ref()
                .map(|d| wire::date(d, "go_live_date"))
                .transpose()?;
            let input = GoLiveInput {
                service_manager_id: body.service_manager_id.clone(),
                service_level: body.service_level.trim().to_owned(),
                date,
            };
            let v = self
                .app
                .go_live(&ctx.caller, &ctx.tenant, &body.id, &body.etag, input)
                .await?;
            Ok(pb::GoLiveResponse {
                project: project(&v),
            })
        })
        .await
    }

    async fn create_task(
        &self,
        req: Request<pb::CreateTaskRequest>,
    ) -> Result<Response<pb::CreateTaskResponse>, Status> {
        DeliveryError::handle(req, |mut ctx, body| async move {
            ctx.replayable(&body.request_id, &body)?;
            required_id(&body.project_id, "project_id")?;
            let t = body.task.unwrap_or_default();
            required_id(&t.milestone_id, "task.milestone_id")?;
            let set = ["title", "assignee_id", "estimate_hours", "status"].map(str::to_owned);
            let input = task_input(&t, &set)?;
            let (v, id) = self
                .app
                .create_task(
                    &ctx.caller,
                    &ctx.tenant,
                    ctx.request_key(),
                    &body.project_id,
                    input,
                )
                .await?;
            Ok(pb::CreateTaskResponse {
                task: task(&v, &id)?,
            })
        })
        .await
    }

    async fn update_task(
        &self,
        req: Request<pb::UpdateTaskRequest>,
    ) -> Result<Response<pb::UpdateTaskResponse>, Status> {
        DeliveryError::handle(req, |ctx, body| async move {
            let t = body.task.unwrap_or_default();
            required_id(&t.id, "task.id")?;
            let set = paths(
                body.update_mask.as_ref(),
                &["title", "assignee_id", "estimate_hours", "status"],
                |f| match f {
                    "title" => !t.title.is_empty(),
                    "assignee_id" => !t.assignee_id.is_empty(),
                    "estimate_hours" => t.estimate_hours != 0.0,
                    _ => t.status != 0,
                },
            )?;
            let mut input = task_input(&t, &set)?;
            // The milestone is immutable: a task never moves.
            input.milestone_id = None;
            let v = self
                .app
                .update_task(&ctx.caller, &ctx.tenant, &t.id, &t.etag, input)
                .await?;
            Ok(pb::UpdateTaskResponse {
                task: task(&v, &t.id)?,
            })
        })
        .await
    }

    async fn list_milestones(
        &self,
        req: Request<pb::ListMilestonesRequest>,
    ) -> Result<Response<pb::ListMilestonesResponse>, Status> {
        DeliveryError::handle(req, |ctx, body| async move {
            required_id(&body.project_id, "project_id")?;
            let v = self
                .app
                .view(&ctx.caller, &ctx.tenant, &body.project_id)
                .await?;
            let p = &v.project;
            let mut tasks: Vec<_> = p.tasks.iter().collect();
            let order = |id: &str| p.milestones.iter().position(|m| m.id == id);
            tasks.sort_by_key(|t| (order(&t.milestone_id), t.id.clone()));
            Ok(pb::ListMilestonesResponse {
                milestones: p
                    .milestones
                    .iter()
                    .map(|m| wire::milestone_pb(p, m, &v.logged))
                    .collect(),
                tasks: tasks
                    .into_iter()
                    .map(|t| wire::task_pb(p, t, &v.logged))
                    .collect(),
            })
        })
        .await
    }

    async fn log_work_hours(
        &self,
        req: Request<pb::LogWorkHoursRequest>,
    ) -> Result<Response<pb::LogWorkHoursResponse>, Status> {
        DeliveryError::handle(req, |mut ctx, body| async move {
            ctx.replayable(&body.request_id, &body)?;
            let l = body.log.unwrap_or_default();
            let mut bad: Vec<FieldViolation> = [
                required_id(&l.project_id, "log.project_id"),
                fields::id(&l.milestone_id, "log.milestone_id"),
                fields::id(&l.task_id, "log.task_id"),
                fields::id(&l.person_id, "log.person_id"),
                free_text(&l.note, "log.note"),
            ]
            .into_iter()
            .filter_map(Result::err)
            .collect();
            let minutes = hours(l.hours, "log.hours", true, MAX_MINUTES_PER_DAY)
                .map_err(|v| bad.push(v))
                .unwrap_or(0);
            let date = match &l.work_date {
                None => {
                    bad.push(FieldViolation::new("log.work_date", "required"));
                    None
                }
                Some(d) => wire::date(d, "log.work_date").map_err(|v| bad.push(v)).ok(),
            };
            let Some(date) = date.filter(|_| bad.is_empty()) else {
                return Err(bad.into());
            };
            let input = LogInput {
                project_id: l.project_id.clone(),
                milestone_id: l.milestone_id.clone(),
                task_id: l.task_id.clone(),
                person_id: l.person_id.clone(),
                date,
                minutes,
                note: l.note.clone(),
            };
            let log = self
                .app
                .log_hours(&ctx.caller, &ctx.tenant, ctx.request_key(), input)
                .await?;
            Ok(pb::LogWorkHoursResponse {
                log: Some(wire::log_pb(&log)),
            })
        })
        .await
    }

    async fn list_work_hours(
        &self,
        req: Request<pb::ListWorkHoursRequest>,
    ) -> Result<Response<pb::ListWorkHoursResponse>, Status> {
        DeliveryError::handle(req, |ctx, body| async move {
            all([
                required_id(&body.project_id, "project_id"),
                fields::id(&body.person_id, "person_id"),
            ])?;
            let binding = ctx
                .binding()
                .with("project", &body.project_id)
                .with("person", &body.person_id);
            let page = self.page::<String>(body.page_size, &body.page_token, binding)?;
            let logs = self
                .app
                .list_logs(
                    &ctx.caller,
                    &ctx.tenant,
                    &body.project_id,
                    (!body.person_id.is_empty()).then_some(body.person_id.as_str()),
                    page.after.as_deref(),
                    page.limit,
                )
                .await?;
            Ok(pb::ListWorkHoursResponse {
                next_page_token: page.next_token(&logs, |l| l.id.clone()),
                logs: logs.iter().map(wire::log_pb).collect(),
            })
        })
        .await
    }

    async fn get_hours_summary(
        &self,
        req: Request<pb::GetHoursSummaryRequest>,
    ) -> Result<Response<pb::GetHoursSummaryResponse>, Status> {
        DeliveryError::handle(req, |ctx, body| async move {
            required_id(&body.project_id, "project_id")?;
            let v = self
                .app
                .view(&ctx.caller, &ctx.tenant, &body.project_id)
                .await?;
            let p = &v.project;
            let total = |key: &str, planned: i64, actual: i64| pb::HoursTotal {
                key: key.to_owned(),
                planned_hours: wire::hours(planned),
                actual_hours: wire::hours(actual),
            };
            let planned: i64 = p.tasks.iter().map(|t| t.estimate_minutes).sum();
            let mut people: std::collections::BTreeMap<String, (i64, i64)> = Default::default();
            for t in p.tasks.iter().filter(|t| !t.assignee_id.is_empty()) {
                people.entry(t.assignee_id.clone()).or_default().0 += t.estimate_minutes;
            }
            for (person, minutes) in &v.logged.by_person {
                people.entry(person.clone()).or_default().1 += minutes;
            }
            Ok(pb::GetHoursSummaryResponse {
                project: Some(total(&p.id, planned, v.logged.total)),
                people: people
                    .iter()
                    .take(500)
                    .map(|(k, (plan, act))| total(k, *plan, *act))
                    .collect(),
                milestones: p
                    .milestones
                    .iter()
                    .map(|m| {
                        let plan = p.tasks_of(&m.id).map(|t| t.estimate_minutes).sum();
                        total(&m.id, plan, v.logged.milestone(&m.id))
                    })
                    .collect(),
            })
        })
        .await
    }

    async fn list_risk_alerts(
        &self,
        req: Request<pb::ListRiskAlertsRequest>,
    ) -> Result<Response<pb::ListRiskAlertsResponse>, Status> {
        DeliveryError::handle(req, |ctx, body| async move {
            fields::id(&body.project_id, "project_id")?;
            let status = wire::risk_status(body.status, "status")?;
            let binding = ctx
                .binding()
                .with("caller", &ctx.caller.id)
                .with("project", &body.project_id)
                .with("status", body.status);
            let page = self.page::<String>(body.page_size, &body.page_token, binding)?;
            let filter = AlertFilter {
                project_id: non_empty(&body.project_id),
                status,
            };
            let alerts = self
                .app
                .list_alerts(
                    &ctx.caller,
                    &ctx.tenant,
                    &filter,
                    page.after.as_deref(),
                    page.limit,
                )
                .await?;
            Ok(pb::ListRiskAlertsResponse {
                next_page_token: page.next_token(&alerts, |a| a.id.clone()),
                alerts: alerts.iter().map(wire::alert_pb).collect(),
            })
        })
        .await
    }

    async fn acknowledge_risk_alert(
        &self,
        req: Request<pb::AcknowledgeRiskAlertRequest>,
    ) -> Result<Response<pb::AcknowledgeRiskAlertResponse>, Status> {
        DeliveryError::handle(req, |ctx, body| async move {
            required_id(&body.id, "id")?;
            let a = self
                .app
                .acknowledge(&ctx.caller, &ctx.tenant, &body.id, &body.etag)
                .await?;
            Ok(pb::AcknowledgeRiskAlertResponse {
                alert: Some(wire::alert_pb(&a)),
            })
        })
        .await
    }

    async fn set_capacity(
        &self,
        req: Request<pb::SetCapacityRequest>,
    ) -> Result<Response<pb::SetCapacityResponse>, Status> {
        DeliveryError::handle(req, |ctx, body| async move {
            let c = body
                .capacity
                .ok_or_else(|| FieldViolation::new("capacity", "required"))?;
            required_id(&c.person_id, "capacity.person_id")?;
            let minutes = hours(
                c.hours_per_week,
                "capacity.hours_per_week",
                false,
                168 * MINUTES_PER_HOUR,
            )?;
            let stored = self
                .app
                .set_capacity(&ctx.caller, &ctx.tenant, &c.person_id, minutes, &c.etag)
                .await?;
            Ok(pb::SetCapacityResponse {
                capacity: Some(wire::capacity_pb(&stored)),
            })
        })
        .await
    }

    async fn list_capacities(
        &self,
        req: Request<pb::ListCapacitiesRequest>,
    ) -> Result<Response<pb::ListCapacitiesResponse>, Status> {
        DeliveryError::handle(req, |ctx, body| async move {
            let page = self.page::<String>(body.page_size, &body.page_token, ctx.binding())?;
            let list = self
                .app
                .list_capacities(&ctx.tenant, page.after.as_deref(), page.limit)
                .await?;
            Ok(pb::ListCapacitiesResponse {
                next_page_token: page.next_token(&list, |c| c.person_id.clone()),
                capacities: list.iter().map(wire::capacity_pb).collect(),
            })
        })
        .await
    }

    async fn list_progress_lines(
        &self,
        req: Request<pb::ListProgressLinesRequest>,
    ) -> Result<Response<pb::ListProgressLinesResponse>, Status> {
        DeliveryError::handle(req, |ctx, body| async move {
            required_id(&body.account_id, "account_id")?;
            let binding = ctx.binding().with("account", &body.account_id);
            let page = self.page::<String>(body.page_size, &body.page_token, binding)?;
            let views = self
                .app
                .progress_lines(
                    &ctx.tenant,
                    &body.account_id,
                    page.after.as_deref(),
                    page.limit,
                )
                .await?;
            Ok(pb::ListProgressLinesResponse {
                next_page_token: page.next_token(&views, |v| v.project.id.clone()),
                lines: views
                    .iter()
                    .map(|v| wire::progress_line_pb(&v.project, &v.handover))
                    .collect(),
            })
        })
        .await
    }

    async fn get_delivery_config(
        &self,
        req: Request<pb::GetDeliveryConfigRequest>,
    ) -> Result<Response<pb::GetDeliveryConfigResponse>, Status> {
        DeliveryError::handle(req, |ctx, _body| async move {
            Ok(pb::GetDeliveryConfigResponse {
                config: Some(self.configs.get(&ctx).await?),
            })
        })
        .await
    }

    async fn update_delivery_config(
        &self,
        req: Request<pb::UpdateDeliveryConfigRequest>,
    ) -> Result<Response<pb::UpdateDeliveryConfigResponse>, Status> {
        DeliveryError::handle(req, |ctx, body| async move {
            Ok(pb::UpdateDeliveryConfigResponse {
                config: Some(self.configs.replace(&ctx, body.config).await?),
            })
        })
        .await
    }

    async fn list_audit_entries(
        &self,
        req: Request<pb::ListAuditEntriesRequest>,
    ) -> Result<Response<pb::ListAuditEntriesResponse>, Status> {
        DeliveryError::handle(req, |ctx, body| async move {
            fields::id(&body.subject_id, "subject_id")?;
            let (size, token) = (body.page_size, &body.page_token);
            let subject = ("subject", body.subject_id.as_str());
            let (entries, next) = self.audit.list(&ctx, subject, size, token).await?;
            Ok(pb::ListAuditEntriesResponse {
                next_page_token: next,
                entries,
            })
        })
        .await
    }
}
