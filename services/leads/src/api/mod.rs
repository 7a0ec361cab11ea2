//! The gRPC face of the leads service: each handler gets the request's
//! context and message (`LeadError::handle`), maps it into the domain
//! (`wire`), runs the use case (`app`) and maps the answer back. No SQL and
//! no business rules live here.

mod error;

use crm_proto::crm::leads::v1::{self as pb, lead_service_server::LeadService};
use crm_rpc::{
    DomainError, FieldViolation, Refusal, RequestContext, fields, paging::PageLimits, required_id,
};
use crm_service::{AuditTrail, ConfigWire, Lane, Replay, TenantConfigs};
use std::sync::Arc;

use tonic::{Request, Response, Status};

use crate::app::App;
use crate::domain::{Intake, LeadConfig, LeadError, ListFilter, visibility};
use crate::wire;

/// The leads gRPC service.
#[derive(Clone)]
pub struct LeadsApi {
    app: App,
    pages: PageLimits,
    max_import_rows: usize,
    import_budget: Arc<Option<crm_server::TenantBudget>>,
    import_lane: Lane,
    configs: TenantConfigs<LeadConfig, pb::LeadConfig>,
    audit: AuditTrail,
}

impl LeadsApi {
    pub fn new(
        app: App,
        pages: PageLimits,
        max_import_rows: usize,
        import_budget: Arc<Option<crm_server::TenantBudget>>,
        import_lane: Lane,
    ) -> Self {
        LeadsApi {
            configs: TenantConfigs::new(
                app.db().clone(),
                app.defaults().clone(),
                "lead-config",
                ConfigWire {
                    to_message: wire::config_to_proto,
                    from_message: wire::config_from_proto,
                    etag: |c| &c.etag,
                },
            ),
            audit: AuditTrail::new(app.db().clone(), pages),
            app,
            pages,
            max_import_rows,
            import_budget,
            import_lane,
        }
    }
}

/// Who creates leads, in which tenant and under which configuration: what
/// CreateLead and BatchCreateLeads both hand the use case.
fn intake<'a>(
    ctx: &'a RequestContext,
    config: &'a LeadConfig,
    on_duplicate: i32,
) -> Result<Intake<'a>, FieldViolation> {
    Ok(Intake {
        tenant: &ctx.tenant,
        on_duplicate: wire::on_duplicate(on_duplicate)?,
        actor: &ctx.caller,
        config,
        now: ctx.now,
    })
}

impl LeadsApi {
    /// BatchCreateLeads, on the import lane.
    async fn import(
        &self,
        mut ctx: RequestContext,
        body: pb::BatchCreateLeadsRequest,
    ) -> Result<pb::BatchCreateLeadsResponse, Refusal<LeadError>> {
        ctx.replayable(&body.request_id, &body)?;
        if body.leads.is_empty() || body.leads.len() > self.max_import_rows {
            let rows = format!("1 to {} rows per import", self.max_import_rows);
            return Err(FieldViolation::new("leads", rows).into());
        }
        if let Some(budget) = self.import_budget.as_ref()
            && !self.app.already_done(ctx.request_key()).await?
            && let Err(retry_after) =
                budget.take(&ctx.tenant, body.leads.len(), std::time::Instant::now())
        {
            return Err(LeadError::ImportBudget {
                rows: body.leads.len(),
                per_second: budget.per_second(),
                retry_after,
            }
            .into());
        }
        let config = self.app.config(&ctx.tenant).await?;
        let rows: Vec<_> = body
            .leads
            .iter()
            .map(|l| wire::import_row(l, &config))
            .collect();
        let intake = intake(&ctx, &config, body.on_duplicate)?;
        let outcomes = self.app.import(intake, ctx.request_key(), &rows).await?;
        let accepted = outcomes.iter().filter(|o| o.rejection.is_none()).count();
        let rejected = outcomes.len() - accepted;
        Ok(pb::BatchCreateLeadsResponse {
            results: outcomes.into_iter().map(wire::import_result).collect(),
            accepted_count: i32::try_from(accepted).unwrap_or(i32::MAX),
            rejected_count: i32::try_from(rejected).unwrap_or(i32::MAX),
        })
    }
}

#[tonic::async_trait]
impl LeadService for LeadsApi {
    async fn create_lead(
        &self,
        req: Request<pb::CreateLeadRequest>,
    ) -> Result<Response<pb::CreateLeadResponse>, Status> {
        LeadError::handle(req, |mut ctx, body| async move {
            ctx.replayable(&body.request_id, &body)?;
            let config = self.app.config(&ctx.tenant).await?;
            let draft = wire::draft(&body.lead.unwrap_or_default(), &config)?;
            let intake = intake(&ctx, &config, body.on_duplicate)?;
            let (lead, merged) = self.app.create(intake, ctx.request_key(), &draft).await?;
            Ok(pb::CreateLeadResponse {
                lead: Some(wire::lead(&lead)),
                merged,
            })
        })
        .await
    }

    async fn batch_create_leads(
        &self,
        req: Request<pb::BatchCreateLeadsRequest>,
    ) -> Result<Response<pb::BatchCreateLeadsResponse>, Status> {
        LeadError::handle(req, |ctx, body| {
            let api = self.clone();
            async move {
                // Thousands of rows checked, planned and written: on the
                // import lane, off the workers that serve every other call.
                self.import_lane
                    .run(async move { api.import(ctx, body).await })
                    .await
                    .map_err(LeadError::store)?
            }
        })
        .await
    }

    async fn get_lead(
        &self,
        req: Request<pb::GetLeadRequest>,
    ) -> Result<Response<pb::GetLeadResponse>, Status> {
        LeadError::handle(req, |ctx, body| async move {
            required_id(&body.id, "id")?;
            let lead = self.app.get(&ctx.tenant, &body.id, &ctx.caller).await?;
            Ok(pb::GetLeadResponse {
                lead: Some(wire::lead(&lead)),
            })
        })
        .await
    }

    async fn list_leads(
        &self,
        req: Request<pb::ListLeadsRequest>,
    ) -> Result<Response<pb::ListLeadsResponse>, Status> {
        LeadError::handle(req, |ctx, body| async move {
            let me = &ctx.caller;
            let mut violations = Vec::new();
            // A page token is bound to what the caller may see.
            let binding = ctx
                .binding()
                .with("caller", visibility(me).restricted_to().unwrap_or_default())
                .with("scope", body.scope)
                .with("status", body.status)
                .with("channel", &body.source_channel)
                .with("owner", &body.owner_id);
            let page = self
                .pages
                .page::<String>(body.page_size, &body.page_token, binding)
                .map_err(|vs| violations.extend(vs))
                .ok();
            let status = wire::status_from_proto(body.status, "status")
                .map_err(|e| violations.push(e))
                .ok()
                .flatten();
            let scope = wire::scope_from_proto(body.scope)
                .map_err(|e| violations.push(e))
                .unwrap_or_default();
            wire::check(&mut violations, fields::id(&body.owner_id, "owner_id"));
            wire::check(
                &mut violations,
                wire::short_text(&body.source_channel, "source_channel"),
            );
            let non_empty = |s: &String| (!s.is_empty()).then(|| s.clone());
            let filter = ListFilter::new(
                me,
                scope,
                non_empty(&body.owner_id),
                status,
                non_empty(&body.source_channel),
            )
            .map_err(|v| violations.push(FieldViolation::new(v.field, v.description)))
            .ok();
            let (Some(page), Some(filter), true) = (page, filter, violations.is_empty()) else {
                return Err(violations.into());
            };
            let after = page.after.as_deref();
            let leads = self
                .app
                .list(&ctx.tenant, &filter, after, page.limit)
                .await?;
            Ok(pb::ListLeadsResponse {
                next_page_token: page.next_token(&leads, |l| l.id.clone()),
                leads: leads.iter().map(wire::lead).collect(),
            })
        })
        .await
    }

    async fn update_lead(
        &self,
        req: Request<pb::UpdateLeadRequest>,
    ) -> Result<Response<pb::UpdateLeadResponse>, Status> {
        LeadError::handle(req, |ctx, body| async move {
            let input = body.lead.unwrap_or_default();
            required_id(&input.id, "lead.id")?;
            let paths = fields::mask_paths(body.update_mask.as_ref(), wire::UPDATABLE)?;
            let patches = wire::patches(&input, &paths)?;
            let config = self.app.config(&ctx.tenant).await?;
            let (id, etag, me) = (&input.id, &input.etag, &ctx.caller);
            let lead = self
                .app
                .update(&ctx.tenant, id, etag, &patches, me, &config, ctx.now)
                .await?;
            Ok(pb::UpdateLeadResponse {
                lead: Some(wire::lead(&lead)),
            })
        })
        .await
    }

    async fn delete_lead(
        &self,
        req: Request<pb::DeleteLeadRequest>,
    ) -> Result<Response<pb::DeleteLeadResponse>, Status> {
        LeadError::handle(req, |ctx, body| async move {
            required_id(&body.id, "id")?;
            self.app
                .delete(&ctx.tenant, &body.id, &body.etag, &ctx.caller, ctx.now)
                .await?;
            Ok(pb::DeleteLeadResponse {})
        })
        .await
    }

    async fn log_interaction(
        &self,
        req: Request<pb::LogInteractionRequest>,
    ) -> Result<Response<pb::LogInteractionResponse>, Status> {
        LeadError::handle(req, |mut ctx, body| async move {
            let now = ctx.now;
            let mut violations = Vec::new();
            if let Err(e) = ctx.replayable(&body.request_id, &body) {
                violations.push(e);
            }
            wire::check(&mut violations, required_id(&body.lead_id, "lead_id"));
            let input = body.interaction.clone().unwrap_or_default();
            let kind = wire::kind_from_proto(input.kind, "interaction.kind")
                .map_err(|e| violations.push(e))
                .ok();
            let occur_time = match &input.occur_time {
                Some(ts) => fields::micros(ts, "interaction.occur_time")
                    .map_err(|e| violations.push(e))
                    .unwrap_or(now),
                None => now,
            };
            // A minute of clock skew between systems is tolerated.
            if occur_time > now + 60_000_000 {
                violations.push(FieldViolation::new(
                    "interaction.occur_time",
                    "must not be in the future",
                ));
            }
            wire::check(
                &mut violations,
                wire::notes(&input.notes, "interaction.notes"),
            );
            let Some(kind) = kind.filter(|_| violations.is_empty()) else {
                return Err(violations.into());
            };
            let config = self.app.config(&ctx.tenant).await?;
            let (interaction, lead) = self
                .app
                .log_interaction(
                    &ctx.tenant,
                    ctx.request_key(),
                    &body.lead_id,
                    kind,
                    occur_time,
                    &input.notes,
                    &ctx.caller,
                    &config,
                    now,
                )
                .await?;
            Ok(pb::LogInteractionResponse {
                interaction: Some(wire::interaction(&interaction)),
                lead: Some(wire::lead(&lead)),
            })
        })
        .await
    }

    async fn list_interactions(
        &self,
        req: Request<pb::ListInteractionsRequest>,
    ) -> Result<Response<pb::ListInteractionsResponse>, Status> {
        LeadError::handle(req, |ctx, body| async move {
            required_id(&body.lead_id, "lead_id")?;
            let binding = ctx.binding().with("lead", &body.lead_id);
            let page = self
                .pages
                .page::<String>(body.page_size, &body.page_token, binding)?;
            // Visibility of the interactions is the lead's.
            let (lead, me, after) = (&body.lead_id, &ctx.caller, page.after.as_deref());
            let items = self
                .app
                .interactions(&ctx.tenant, lead, me, after, page.limit)
                .await?;
            Ok(pb::ListInteractionsResponse {
                next_page_token: page.next_token(&items, |i| i.id.clone()),
                interactions: items.iter().map(wire::interaction).collect(),
            })
        })
        .await
    }

    async fn assign_lead(
        &self,
        req: Request<pb::AssignLeadRequest>,
    ) -> Result<Response<pb::AssignLeadResponse>, Status> {
        LeadError::handle(req, |ctx, body| async move {
            required_id(&body.id, "id")?;
            if body.owner_id.is_empty() {
                return Err(
                    FieldViolation::new("owner_id", "required: the sales user's id").into(),
                );
            }
            fields::id(&body.owner_id, "owner_id")?;
            let config = self.app.config(&ctx.tenant).await?;
            let (id, etag, owner) = (&body.id, &body.etag, &body.owner_id);
            let lead = self
                .app
                .assign(&ctx.tenant, id, etag, owner, &ctx.caller, &config, ctx.now)
                .await?;
            Ok(pb::AssignLeadResponse {
                lead: Some(wire::lead(&lead)),
            })
        })
        .await
    }

    async fn claim_lead(
        &self,
        req: Request<pb::ClaimLeadRequest>,
    ) -> Result<Response<pb::ClaimLeadResponse>, Status> {
        LeadError::handle(req, |ctx, body| async move {
            required_id(&body.id, "id")?;
            let config = self.app.config(&ctx.tenant).await?;
            let (id, etag, me) = (&body.id, &body.etag, &ctx.caller);
            let lead = self
                .app
                .claim(&ctx.tenant, id, etag, me, &config, ctx.now)
                .await?;
            Ok(pb::ClaimLeadResponse {
                lead: Some(wire::lead(&lead)),
            })
        })
        .await
    }

    async fn release_lead(
        &self,
        req: Request<pb::ReleaseLeadRequest>,
    ) -> Result<Response<pb::ReleaseLeadResponse>, Status> {
        LeadError::handle(req, |ctx, body| async move {
            required_id(&body.id, "id")?;
            wire::notes(&body.reason, "reason")?;
            let (id, etag, reason) = (&body.id, &body.etag, body.reason.trim());
            let lead = self
                .app
                .release(&ctx.tenant, id, etag, reason, &ctx.caller, ctx.now)
                .await?;
            Ok(pb::ReleaseLeadResponse {
                lead: Some(wire::lead(&lead)),
            })
        })
        .await
    }

    async fn disqualify_lead(
        &self,
        req: Request<pb::DisqualifyLeadRequest>,
    ) -> Result<Response<pb::DisqualifyLeadResponse>, Status> {
        LeadError::handle(req, |ctx, body| async move {
            required_id(&body.id, "id")?;
            wire::notes(&body.reason, "reason")?;
            if body.reason.trim().is_empty() {
                return Err(FieldViolation::new(
                    "reason",
                    "required: why the lead is not a possible customer",
                )
                .into());
            }
            let (id, etag, reason) = (&body.id, &body.etag, &body.reason);
            let lead = self
                .app
                .disqualify(&ctx.tenant, id, etag, reason, &ctx.caller, ctx.now)
                .await?;
            Ok(pb::DisqualifyLeadResponse {
                lead: Some(wire::lead(&lead)),
            })
        })
        .await
    }

    async fn convert_lead(
        &self,
        req: Request<pb::ConvertLeadRequest>,
    ) -> Result<Response<pb::ConvertLeadResponse>, Status> {
        // The caller's deadline, which the remote call must not outlast.
        let deadline = req
            .metadata()
            .as_ref()
            .get(crm_server::grpc::GRPC_TIMEOUT)
            .and_then(crm_server::grpc::parse_grpc_timeout)
            .and_then(|left| std::time::Instant::now().checked_add(left));
        LeadError::handle(req, |ctx, body| async move {
            required_id(&body.id, "id")?;
            wire::name(&body.opportunity_name, "opportunity_name")?;
            if let Some(m) = &body.amount {
                fields::money(m, "amount")?;
                if m.units < 0 || m.nanos < 0 {
                    return Err(FieldViolation::new("amount", "must not be negative").into());
                }
            }
            let lead = self
                .app
                .convert(
                    &ctx.tenant,
                    &body.id,
                    &body.etag,
                    &ctx.caller,
                    body.opportunity_name,
                    body.amount,
                    deadline,
                    ctx.now,
                )
                .await
                .map_err(error::converting)?;
            Ok(pb::ConvertLeadResponse {
                lead: Some(wire::lead(&lead)),
            })
        })
        .await
    }

    async fn list_due_follow_ups(
        &self,
        req: Request<pb::ListDueFollowUpsRequest>,
    ) -> Result<Response<pb::ListDueFollowUpsResponse>, Status> {
        LeadError::handle(req, |ctx, body| async move {
            let me = &ctx.caller;
            fields::id(&body.owner_id, "owner_id")?;
            let owner = self.app.due_owner(me, &body.owner_id)?;
            let before = match &body.due_before {
                Some(ts) => fields::micros(ts, "due_before")?,
                None => ctx.now,
            };
            let binding = ctx.binding().with("owner", &owner).with("before", before);
            let page =
                self.pages
                    .page::<(i64, String)>(body.page_size, &body.page_token, binding)?;
            let after = page.after.clone();
            let leads = self
                .app
                .due(&ctx.tenant, me, &owner, before, after, page.limit)
                .await?;
            Ok(pb::ListDueFollowUpsResponse {
                next_page_token: page.next_token(&leads, |l| {
                    (l.attention_time().unwrap_or_default(), l.id.clone())
                }),
                leads: leads.iter().map(wire::lead).collect(),
            })
        })
        .await
    }

    async fn get_channel_stats(
        &self,
        req: Request<pb::GetChannelStatsRequest>,
    ) -> Result<Response<pb::GetChannelStatsResponse>, Status> {
        LeadError::handle(req, |ctx, _| async move {
            let stats = self.app.channel_stats(&ctx.tenant).await?;
            let channels = stats.into_iter().map(wire::channel_stats).collect();
            Ok(pb::GetChannelStatsResponse { channels })
        })
        .await
    }

    async fn get_lead_config(
        &self,
        req: Request<pb::GetLeadConfigRequest>,
    ) -> Result<Response<pb::GetLeadConfigResponse>, Status> {
        LeadError::handle(req, |ctx, _| async move {
            let config = Some(self.configs.get(&ctx).await?);
            Ok(pb::GetLeadConfigResponse { config })
        })
        .await
    }

    async fn update_lead_config(
        &self,
        req: Request<pb::UpdateLeadConfigRequest>,
    ) -> Result<Response<pb::UpdateLeadConfigResponse>, Status> {
        LeadError::handle(req, |ctx, body| async move {
            let config = Some(self.configs.replace(&ctx, body.config).await?);
            Ok(pb::UpdateLeadConfigResponse { config })
        })
        .await
    }

    async fn list_audit_entries(
        &self,
        req: Request<pb::ListAuditEntriesRequest>,
    ) -> Result<Response<pb::ListAuditEntriesResponse>, Status> {
        LeadError::handle(req, |ctx, body| async move {
            fields::id(&body.lead_id, "lead_id")?;
            let lead = ("lead", body.lead_id.as_str());
            let (entries, next_page_token) = self
                .audit
                .list(&ctx, lead, body.page_size, &body.page_token)
                .await?;
            Ok(pb::ListAuditEntriesResponse {
                entries,
                next_page_token,
            })
        })
        .await
    }
}
