//! The gRPC face of the opportunities service: each handler gets the
//! request's context and message (`OpportunityError::handle`), maps it
//! into the domain's values (`wire`), runs the use case (`app`) and maps
//! the answer back. No SQL and no rules here.

mod error;

use crm_proto::crm::opportunities::v1::{
    self as pb, opportunity_service_server::OpportunityService,
};
use crm_rpc::{
    DomainError, FieldViolation, RpcError, fields,
    paging::{self, Binding, PageLimits},
    required_id,
};
use crm_service::{AuditTrail, ConfigWire, Replay, TenantConfigs};
use tonic::{Request, Response, Status};

use crate::app::{Page, UseCases};
use crate::domain::{
    ApprovalKind, OpportunityConfig, OpportunityError, OpportunityFilter, Visibility,
};
use crate::wire;

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

/// The rows of a list page as the use cases take them.
fn rows(page: &paging::Page<String>) -> Page<'_> {
    Page {
        after: page.after.as_deref(),
        limit: page.limit,
    }
}

#[derive(Clone)]
pub struct OpportunitiesApi {
    app: UseCases,
    pages: PageLimits,
    configs: TenantConfigs<OpportunityConfig, pb::OpportunityConfig>,
    audit: AuditTrail,
}

impl OpportunitiesApi {
    pub fn new(app: UseCases, pages: PageLimits) -> Self {
        OpportunitiesApi {
            configs: TenantConfigs::new(
                app.db().clone(),
                app.defaults().clone(),
                "opportunity-config",
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

    /// The page a list request asks for, its token bound to `binding`.
    fn page(
        &self,
        size: i32,
        token: &str,
        binding: Binding,
    ) -> Result<paging::Page<String>, RpcError> {
        Ok(self.pages.page(size, token, binding)?)
    }
}

#[tonic::async_trait]
impl OpportunityService for OpportunitiesApi {
    async fn create_account(
        &self,
        req: Request<pb::CreateAccountRequest>,
    ) -> Result<Response<pb::CreateAccountResponse>, Status> {
        OpportunityError::handle(req, |mut ctx, body| async move {
            ctx.replayable(&body.request_id, &body)?;
            let draft = wire::account_draft(body.account.unwrap_or_default())?;
            let key = ctx.request_key();
            let created = self
                .app
                .create_account(&ctx.caller, &ctx.tenant, key, draft)
                .await?;
            Ok(pb::CreateAccountResponse {
                account: Some(wire::account_pb(&created)),
            })
        })
        .await
    }

    async fn get_account(
        &self,
        req: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::GetAccountResponse>, Status> {
        OpportunityError::handle(req, |ctx, body| async move {
            required_id(&body.id, "id")?;
            let account = wire::account_pb(
                &self
                    .app
                    .get_account(&ctx.caller, &ctx.tenant, &body.id)
                    .await?,
            );
            Ok(pb::GetAccountResponse {
                account: Some(account),
            })
        })
        .await
    }

    async fn list_accounts(
        &self,
        req: Request<pb::ListAccountsRequest>,
    ) -> Result<Response<pb::ListAccountsResponse>, Status> {
        OpportunityError::handle(req, |ctx, body| async move {
            fields::id(&body.owner_id, "owner_id")?;
            // A page token is bound to whose list it is.
            let caller = Visibility::of(&ctx.caller);
            let binding = ctx
                .binding()
                .with("caller", caller.team_member().unwrap_or_default())
                .with("owner", &body.owner_id);
            let page = self.page(body.page_size, &body.page_token, binding)?;
            let owner = non_empty(&body.owner_id);
            let items = self
                .app
                .list_accounts(&ctx.caller, &ctx.tenant, owner, rows(&page))
                .await?;
            Ok(pb::ListAccountsResponse {
                next_page_token: page.next_token(&items, |a| a.id.clone()),
                accounts: items.iter().map(wire::account_pb).collect(),
            })
        })
        .await
    }

    async fn update_account(
        &self,
        req: Request<pb::UpdateAccountRequest>,
    ) -> Result<Response<pb::UpdateAccountResponse>, Status> {
        OpportunityError::handle(req, |ctx, body| async move {
            let input = body.account.unwrap_or_default();
            required_id(&input.id, "account.id")?;
            let paths = fields::mask_paths(body.update_mask.as_ref(), wire::ACCOUNT_UPDATABLE)?;
            let update = wire::account_update(&input, &paths, body.reason)?;
            let (id, etag) = (&input.id, &input.etag);
            let (account, approval) = self
                .app
                .update_account(&ctx.caller, &ctx.tenant, id, etag, update)
                .await?;
            Ok(pb::UpdateAccountResponse {
                account: Some(wire::account_pb(&account)),
                approval: approval.as_ref().map(wire::approval_pb),
            })
        })
        .await
    }

    async fn create_contact(
        &self,
        req: Request<pb::CreateContactRequest>,
    ) -> Result<Response<pb::CreateContactResponse>, Status> {
        OpportunityError::handle(req, |mut ctx, body| async move {
            ctx.replayable(&body.request_id, &body)?;
            let draft = wire::contact_draft(body.contact.unwrap_or_default())?;
            let key = ctx.request_key();
            let created = self
                .app
                .create_contact(&ctx.caller, &ctx.tenant, key, draft)
                .await?;
            Ok(pb::CreateContactResponse {
                contact: Some(wire::contact_pb(&created)),
            })
        })
        .await
    }

    async fn list_contacts(
        &self,
        req: Request<pb::ListContactsRequest>,
    ) -> Result<Response<pb::ListContactsResponse>, Status> {
        OpportunityError::handle(req, |ctx, body| async move {
            required_id(&body.account_id, "account_id")?;
            let binding = ctx.binding().with("account", &body.account_id);
            let page = self.page(body.page_size, &body.page_token, binding)?;
            let account = &body.account_id;
            let items = self
                .app
                .list_contacts(&ctx.caller, &ctx.tenant, account, rows(&page))
                .await?;
            Ok(pb::ListContactsResponse {
                next_page_token: page.next_token(&items, |c| c.id.clone()),
                contacts: items.iter().map(wire::contact_pb).collect(),
            })
        })
        .await
    }

    async fn create_opportunity(
        &self,
        req: Request<pb::CreateOpportunityRequest>,
    ) -> Result<Response<pb::CreateOpportunityResponse>, Status> {
        OpportunityError::handle(req, |mut ctx, body| async move {
            ctx.replayable(&body.request_id, &body)?;
            let draft = wire::draft(&body.opportunity.unwrap_or_default())?;
            let key = ctx.request_key();
            let (created, config) = self
                .app
                .create_opportunity(&ctx.caller, &ctx.tenant, key, draft)
                .await?;
            Ok(pb::CreateOpportunityResponse {
                opportunity: Some(wire::opportunity_pb(&created, &config)),
            })
        })
        .await
    }

    async fn convert_lead(
        &self,
        req: Request<pb::ConvertLeadRequest>,
    ) -> Result<Response<pb::ConvertLeadResponse>, Status> {
        // Only the leads service calls this (role internal); it names the
        // user it converts for, who is then the actor.
        let acting = crm_auth::acting_for(&req)
            .map(|user| crm_types::Actor::new(user.subject.clone(), user.roles.clone()));
        OpportunityError::handle(req, |ctx, body| async move {
            let lead = wire::lead_snapshot(body)?;
            let actor = acting.unwrap_or(ctx.caller);
            let (opportunity, account, contact, config) =
                self.app.convert_lead(&actor, &ctx.tenant, lead).await?;
            Ok(pb::ConvertLeadResponse {
                opportunity: Some(wire::opportunity_pb(&opportunity, &config)),
                account: Some(wire::account_pb(&account)),
                contact_id: contact.unwrap_or_default(),
            })
        })
        .await
    }

    async fn get_opportunity(
        &self,
        req: Request<pb::GetOpportunityRequest>,
    ) -> Result<Response<pb::GetOpportunityResponse>, Status> {
        OpportunityError::handle(req, |ctx, body| async move {
            required_id(&body.id, "id")?;
            let (opportunity, config) = self
                .app
                .get_opportunity(&ctx.caller, &ctx.tenant, &body.id)
                .await?;
            Ok(pb::GetOpportunityResponse {
                opportunity: Some(wire::opportunity_pb(&opportunity, &config)),
            })
        })
        .await
    }

    async fn list_opportunities(
        &self,
        req: Request<pb::ListOpportunitiesRequest>,
    ) -> Result<Response<pb::ListOpportunitiesResponse>, Status> {
        OpportunityError::handle(req, |ctx, body| async move {
            let stage = wire::stage(body.stage, "stage")?;
            fields::id(&body.account_id, "account_id")?;
            fields::id(&body.owner_id, "owner_id")?;
            // A page token is bound to whose list it is.
            let visibility = Visibility::of(&ctx.caller);
            let binding = ctx
                .binding()
                .with("caller", visibility.team_member().unwrap_or_default())
                .with("stage", body.stage)
                .with("account", &body.account_id)
                .with("owner", &body.owner_id);
            let page = self.page(body.page_size, &body.page_token, binding)?;
            let filter = OpportunityFilter {
                team_member: None,
                stage,
                account_id: non_empty(&body.account_id).map(str::to_owned),
                owner_id: non_empty(&body.owner_id).map(str::to_owned),
            };
            let (items, config) = self
                .app
                .list_opportunities(&ctx.caller, &ctx.tenant, filter, rows(&page))
                .await?;
            Ok(pb::ListOpportunitiesResponse {
                next_page_token: page.next_token(&items, |o| o.id.clone()),
                opportunities: items
                    .iter()
                    .map(|o| wire::opportunity_pb(o, &config))
                    .collect(),
            })
        })
        .await
    }

    async fn update_opportunity(
        &self,
        req: Request<pb::UpdateOpportunityRequest>,
    ) -> Result<Response<pb::UpdateOpportunityResponse>, Status> {
        OpportunityError::handle(req, |ctx, body| async move {
            let input = body.opportunity.unwrap_or_default();
            required_id(&input.id, "opportunity.id")?;
            let paths = fields::mask_paths(body.update_mask.as_ref(), wire::UPDATABLE)?;
            let patches = wire::patches(&input, &paths)?;
            let (id, etag) = (&input.id, &input.etag);
            let (opportunity, config) = self
                .app
                .update_opportunity(&ctx.caller, &ctx.tenant, id, etag, patches)
                .await?;
            Ok(pb::UpdateOpportunityResponse {
                opportunity: Some(wire::opportunity_pb(&opportunity, &config)),
            })
        })
        .await
    }

    async fn advance_stage(
        &self,
        req: Request<pb::AdvanceStageRequest>,
    ) -> Result<Response<pb::AdvanceStageResponse>, Status> {
        OpportunityError::handle(req, |ctx, body| async move {
            required_id(&body.id, "id")?;
            let target = wire::stage(body.target_stage, "target_stage")?
                .ok_or(FieldViolation::new("target_stage", "required"))?;
            wire::notes(&body.override_reason, "override_reason")?;
            let (id, etag, reason) = (&body.id, &body.etag, &body.override_reason);
            let (opportunity, violation, config) = self
                .app
                .advance(&ctx.caller, &ctx.tenant, id, etag, target, reason)
                .await?;
            Ok(pb::AdvanceStageResponse {
                opportunity: Some(wire::opportunity_pb(&opportunity, &config)),
                violation: violation.as_ref().map(wire::violation_pb),
            })
        })
        .await
    }

    async fn set_decision_chain_member(
        &self,
        req: Request<pb::SetDecisionChainMemberRequest>,
    ) -> Result<Response<pb::SetDecisionChainMemberResponse>, Status> {
        OpportunityError::handle(req, |ctx, body| async move {
            required_id(&body.opportunity_id, "opportunity_id")?;
            let member = wire::member(body.member.as_ref())?;
            let opportunity = &body.opportunity_id;
            let saved = self
                .app
                .set_member(&ctx.caller, &ctx.tenant, opportunity, member)
                .await?;
            Ok(pb::SetDecisionChainMemberResponse {
                member: Some(wire::member_pb(&saved)),
            })
        })
        .await
    }

    async fn list_decision_chain(
        &self,
        req: Request<pb::ListDecisionChainRequest>,
    ) -> Result<Response<pb::ListDecisionChainResponse>, Status> {
        OpportunityError::handle(req, |ctx, body| async move {
            let id = &body.opportunity_id;
            required_id(id, "opportunity_id")?;
            let members = self
                .app
                .decision_chain(&ctx.caller, &ctx.tenant, id)
                .await?;
            Ok(pb::ListDecisionChainResponse {
                members: members.iter().map(wire::member_pb).collect(),
            })
        })
        .await
    }

    async fn log_activity(
        &self,
        req: Request<pb::LogActivityRequest>,
    ) -> Result<Response<pb::LogActivityResponse>, Status> {
        OpportunityError::handle(req, |mut ctx, body| async move {
            ctx.replayable(&body.request_id, &body)?;
            required_id(&body.opportunity_id, "opportunity_id")?;
            let draft = wire::activity(body.activity.unwrap_or_default(), ctx.now)?;
            let (key, opportunity) = (ctx.request_key(), &body.opportunity_id);
            let logged = self
                .app
                .log_activity(&ctx.caller, &ctx.tenant, key, opportunity, draft)
                .await?;
            Ok(pb::LogActivityResponse {
                activity: Some(wire::activity_pb(&logged)),
            })
        })
        .await
    }

    async fn list_activities(
        &self,
        req: Request<pb::ListActivitiesRequest>,
    ) -> Result<Response<pb::ListActivitiesResponse>, Status> {
        OpportunityError::handle(req, |ctx, body| async move {
            let opportunity = &body.opportunity_id;
            required_id(opportunity, "opportunity_id")?;
            let binding = ctx.binding().with("opportunity", opportunity);
            let page = self.page(body.page_size, &body.page_token, binding)?;
            let items = self
                .app
                .activities(&ctx.caller, &ctx.tenant, opportunity, rows(&page))
                .await?;
            Ok(pb::ListActivitiesResponse {
                next_page_token: page.next_token(&items, |a| a.id.clone()),
                activities: items.iter().map(wire::activity_pb).collect(),
            })
        })
        .await
    }

    async fn request_approval(
        &self,
        req: Request<pb::RequestApprovalRequest>,
    ) -> Result<Response<pb::RequestApprovalResponse>, Status> {
        OpportunityError::handle(req, |mut ctx, body| async move {
            ctx.replayable(&body.request_id, &body)?;
            required_id(&body.opportunity_id, "opportunity_id")?;
            wire::notes(&body.reason, "reason")?;
            // Two kinds have their own methods, which carry what they need.
            let kind = match wire::approval_kind(body.kind, "kind")? {
                Some(ApprovalKind::AccountChange) => {
                    Err("account changes are requested with UpdateAccount")
                }
                Some(ApprovalKind::DeliveryReview) => {
                    Err("delivery reviews are requested with RequestDeliveryReview")
                }
                Some(kind) => Ok(kind),
                None => Err("required"),
            }
            .map_err(|why| FieldViolation::new("kind", why))?;
            let (key, opportunity) = (ctx.request_key(), &body.opportunity_id);
            let approval = self
                .app
                .request_approval(
                    &ctx.caller,
                    &ctx.tenant,
                    key,
                    kind,
                    opportunity,
                    &body.reason,
                )
                .await?;
            Ok(pb::RequestApprovalResponse {
                approval: Some(wire::approval_pb(&approval)),
            })
        })
        .await
    }

    async fn request_delivery_review(
        &self,
        req: Request<pb::RequestDeliveryReviewRequest>,
    ) -> Result<Response<pb::RequestDeliveryReviewResponse>, Status> {
        OpportunityError::handle(req, |mut ctx, body| async move {
            ctx.replayable(&body.request_id, &body)?;
            required_id(&body.opportunity_id, "opportunity_id")?;
            wire::notes(&body.reason, "reason")?;
            let (key, opportunity) = (ctx.request_key(), &body.opportunity_id);
            let kind = ApprovalKind::DeliveryReview;
            let approval = self
                .app
                .request_approval(
                    &ctx.caller,
                    &ctx.tenant,
                    key,
                    kind,
                    opportunity,
                    &body.reason,
                )
                .await?;
            Ok(pb::RequestDeliveryReviewResponse {
                approval: Some(wire::approval_pb(&approval)),
            })
        })
        .await
    }

    async fn get_approval(
        &self,
        req: Request<pb::GetApprovalRequest>,
    ) -> Result<Response<pb::GetApprovalResponse>, Status> {
        OpportunityError::handle(req, |ctx, body| async move {
            required_id(&body.id, "id")?;
            let approval = self
                .app
                .get_approval(&ctx.caller, &ctx.tenant, &body.id)
                .await?;
            Ok(pb::GetApprovalResponse {
                approval: Some(wire::approval_pb(&approval)),
            })
        })
        .await
    }

    async fn list_approvals(
        &self,
        req: Request<pb::ListApprovalsRequest>,
    ) -> Result<Response<pb::ListApprovalsResponse>, Status> {
        OpportunityError::handle(req, |ctx, body| async move {
            let status = wire::approval_status(body.status, "status")?;
            fields::id(&body.subject_id, "subject_id")?;
            let caller = Visibility::of(&ctx.caller);
            let binding = ctx
                .binding()
                .with("caller", caller.team_member().unwrap_or_default())
                .with("subject", &body.subject_id)
                .with("status", body.status);
            let page = self.page(body.page_size, &body.page_token, binding)?;
            let subject = non_empty(&body.subject_id);
            let items = self
                .app
                .list_approvals(&ctx.caller, &ctx.tenant, subject, status, rows(&page))
                .await?;
            Ok(pb::ListApprovalsResponse {
                next_page_token: page.next_token(&items, |a| a.id.clone()),
                approvals: items.iter().map(wire::approval_pb).collect(),
            })
        })
        .await
    }

    async fn decide_approval(
        &self,
        req: Request<pb::DecideApprovalRequest>,
    ) -> Result<Response<pb::DecideApprovalResponse>, Status> {
        OpportunityError::handle(req, |ctx, body| async move {
            required_id(&body.id, "id")?;
            wire::notes(&body.comment, "comment")?;
            fields::id(&body.on_behalf_of, "on_behalf_of")?;
            let decision = wire::decision(body.decision, "decision")?.ok_or(
                FieldViolation::new("decision", "required: approve or reject"),
            )?;
            let approval = self
                .app
                .decide(
                    &ctx.caller,
                    &ctx.tenant,
                    &body.id,
                    &body.etag,
                    decision,
                    &body.comment,
                    &body.on_behalf_of,
                )
                .await?;
            Ok(pb::DecideApprovalResponse {
                approval: Some(wire::approval_pb(&approval)),
            })
        })
        .await
    }

    async fn log_work_hours(
        &self,
        req: Request<pb::LogWorkHoursRequest>,
    ) -> Result<Response<pb::LogWorkHoursResponse>, Status> {
        OpportunityError::handle(req, |mut ctx, body| async move {
            ctx.replayable(&body.request_id, &body)?;
            required_id(&body.opportunity_id, "opportunity_id")?;
            let draft = wire::work_hours(body.work_hours.unwrap_or_default())?;
            let (key, opportunity) = (ctx.request_key(), &body.opportunity_id);
            let logged = self
                .app
                .log_work_hours(&ctx.caller, &ctx.tenant, key, opportunity, draft)
                .await?;
            Ok(pb::LogWorkHoursResponse {
                work_hours: Some(wire::work_hours_pb(&logged)),
            })
        })
        .await
    }

    async fn list_work_hours(
        &self,
        req: Request<pb::ListWorkHoursRequest>,
    ) -> Result<Response<pb::ListWorkHoursResponse>, Status> {
        OpportunityError::handle(req, |ctx, body| async move {
            let opportunity = &body.opportunity_id;
            required_id(opportunity, "opportunity_id")?;
            let binding = ctx.binding().with("opportunity", opportunity);
            let page = self.page(body.page_size, &body.page_token, binding)?;
            let (items, total) = self
                .app
                .work_hours(&ctx.caller, &ctx.tenant, opportunity, rows(&page))
                .await?;
            Ok(pb::ListWorkHoursResponse {
                next_page_token: page.next_token(&items, |w| w.id.clone()),
                work_hours: items.iter().map(wire::work_hours_pb).collect(),
                total_minutes: total,
            })
        })
        .await
    }

    async fn list_stage_violations(
        &self,
        req: Request<pb::ListStageViolationsRequest>,
    ) -> Result<Response<pb::ListStageViolationsResponse>, Status> {
        OpportunityError::handle(req, |ctx, body| async move {
            fields::id(&body.opportunity_id, "opportunity_id")?;
            let binding = ctx.binding().with("opportunity", &body.opportunity_id);
            let page = self.page(body.page_size, &body.page_token, binding)?;
            let opportunity = non_empty(&body.opportunity_id);
            let items = self
                .app
                .violations(&ctx.tenant, opportunity, rows(&page))
                .await?;
            Ok(pb::ListStageViolationsResponse {
                next_page_token: page.next_token(&items, |v| v.id.clone()),
                violations: items.iter().map(wire::violation_pb).collect(),
            })
        })
        .await
    }

    async fn get_forecast(
        &self,
        req: Request<pb::GetForecastRequest>,
    ) -> Result<Response<pb::GetForecastResponse>, Status> {
        OpportunityError::handle(req, |ctx, body| async move {
            fields::id(&body.owner_id, "owner_id")?;
            let owner = &body.owner_id;
            let lines = self.app.forecast(&ctx.caller, &ctx.tenant, owner).await?;
            Ok(pb::GetForecastResponse {
                lines: lines.iter().map(wire::forecast_pb).collect(),
            })
        })
        .await
    }

    async fn get_opportunity_config(
        &self,
        req: Request<pb::GetOpportunityConfigRequest>,
    ) -> Result<Response<pb::GetOpportunityConfigResponse>, Status> {
        OpportunityError::handle(req, |ctx, _| async move {
            let stored = self.configs.get(&ctx).await?;
            Ok(pb::GetOpportunityConfigResponse {
                config: Some(stored),
            })
        })
        .await
    }

    async fn update_opportunity_config(
        &self,
        req: Request<pb::UpdateOpportunityConfigRequest>,
    ) -> Result<Response<pb::UpdateOpportunityConfigResponse>, Status> {
        OpportunityError::handle(req, |ctx, body| async move {
            let replaced = self.configs.replace(&ctx, body.config).await?;
            Ok(pb::UpdateOpportunityConfigResponse {
                config: Some(replaced),
            })
        })
        .await
    }

    async fn list_audit_entries(
        &self,
        req: Request<pb::ListAuditEntriesRequest>,
    ) -> Result<Response<pb::ListAuditEntriesResponse>, Status> {
        OpportunityError::handle(req, |ctx, body| async move {
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
