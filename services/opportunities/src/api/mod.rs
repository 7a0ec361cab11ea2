//! The gRPC face of the opportunities service: decode the request and name
//! the caller, map it into the domain's values (`wire`), run the use case
//! (`app`), map the answer back. No SQL and no rules here.

mod error;

use crm_auth::Principal;
use crm_proto::crm::opportunities::v1::{
    self as pb, opportunity_service_server::OpportunityService,
};
use crm_rpc::{
    FieldViolation, fields,
    paging::{self, Binding, PageLimits},
};
use crm_store::idempotency::RequestKey;
use crm_types::Actor;
use tonic::{Request, Response, Status};

use crate::app::{Page, UseCases};
use crate::domain::{ApprovalKind, OpportunityFilter, Visibility};
use crate::wire;
use error::{invalid, one, status};

/// The caller of a request.
fn actor(p: &Principal) -> Actor {
    Actor::new(p.subject.clone(), p.roles.clone())
}

fn principal<T>(req: &Request<T>) -> Result<Principal, Status> {
    crm_auth::principal(req).cloned()
}

fn required(value: &str, field: &str) -> Result<(), Status> {
    if value.is_empty() || value.len() > 64 {
        return Err(one(FieldViolation::new(field, "required: an id")));
    }
    Ok(())
}

/// The request id of a creating call (AIP-155), and what identifies it.
struct Creating {
    request_id: String,
    hash: String,
}

impl Creating {
    fn of<M: prost::Message>(request_id: &str, body: &M) -> Result<Self, Status> {
        let request_id = fields::request_id(request_id)
            .map_err(one)?
            .unwrap_or_default()
            .to_owned();
        Ok(Creating {
            request_id,
            hash: fields::request_hash(body),
        })
    }

    fn key<'a>(&'a self, tenant: &'a str, method: &'a str) -> Option<RequestKey<'a>> {
        (!self.request_id.is_empty()).then_some(RequestKey {
            tenant,
            request_id: &self.request_id,
            method,
            request_hash: &self.hash,
        })
    }
}

/// The next page token when the page came back full.
fn next<T>(items: &[T], limit: u64, binding: &Binding, last_key: impl Fn(&T) -> String) -> String {
    match items.last() {
        Some(last) if items.len() as u64 == limit => paging::encode(&last_key(last), binding),
        _ => String::new(),
    }
}

fn non_empty(s: &str) -> Option<&str> {
    (!s.is_empty()).then_some(s)
}

#[derive(Clone)]
pub struct OpportunitiesApi {
    app: UseCases,
    pages: PageLimits,
}

impl OpportunitiesApi {
    pub fn new(app: UseCases, pages: PageLimits) -> Self {
        OpportunitiesApi { app, pages }
    }

    /// The page size and the key to start after, from a list request.
    fn page(
        &self,
        size: i32,
        token: &str,
        binding: &Binding,
    ) -> Result<(u64, Option<String>), Status> {
        let mut v = Vec::new();
        let limit = self.pages.size(size).map_err(|e| v.push(e)).unwrap_or(1);
        let after = paging::decode(token, binding)
            .map_err(|e| v.push(e))
            .ok()
            .flatten();
        if v.is_empty() {
            Ok((limit, after))
        } else {
            Err(invalid(v))
        }
    }
}

#[tonic::async_trait]
impl OpportunityService for OpportunitiesApi {
    async fn create_account(
        &self,
        req: Request<pb::CreateAccountRequest>,
    ) -> Result<Response<pb::CreateAccountResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        let creating = Creating::of(&body.request_id, &body)?;
        let draft = wire::account_draft(body.account.unwrap_or_default()).map_err(invalid)?;
        let created = self
            .app
            .create_account(
                &actor(&p),
                &p.tenant,
                creating.key(&p.tenant, "CreateAccount"),
                draft,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::CreateAccountResponse {
            account: Some(wire::account_pb(&created)),
        }))
    }

    async fn get_account(
        &self,
        req: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::GetAccountResponse>, Status> {
        let p = principal(&req)?;
        required(&req.get_ref().id, "id")?;
        let a = self
            .app
            .get_account(&p.tenant, &req.get_ref().id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::GetAccountResponse {
            account: Some(wire::account_pb(&a)),
        }))
    }

    async fn list_accounts(
        &self,
        req: Request<pb::ListAccountsRequest>,
    ) -> Result<Response<pb::ListAccountsResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        let binding = Binding::new(&p.tenant, "ListAccounts").with("owner", &body.owner_id);
        let (limit, after) = self.page(body.page_size, &body.page_token, &binding)?;
        let page = Page {
            after: after.as_deref(),
            limit,
        };
        let items = self
            .app
            .list_accounts(&p.tenant, non_empty(&body.owner_id), page)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListAccountsResponse {
            next_page_token: next(&items, limit, &binding, |a| a.id.clone()),
            accounts: items.iter().map(wire::account_pb).collect(),
        }))
    }

    async fn update_account(
        &self,
        req: Request<pb::UpdateAccountRequest>,
    ) -> Result<Response<pb::UpdateAccountResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        let a = body.account.unwrap_or_default();
        required(&a.id, "account.id")?;
        let paths =
            fields::mask_paths(body.update_mask.as_ref(), wire::ACCOUNT_UPDATABLE).map_err(one)?;
        let update = wire::account_update(&a, &paths, body.reason).map_err(invalid)?;
        let (account, approval) = self
            .app
            .update_account(&actor(&p), &p.tenant, &a.id, &a.etag, update)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::UpdateAccountResponse {
            account: Some(wire::account_pb(&account)),
            approval: approval.as_ref().map(wire::approval_pb),
        }))
    }

    async fn create_contact(
        &self,
        req: Request<pb::CreateContactRequest>,
    ) -> Result<Response<pb::CreateContactResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        let creating = Creating::of(&body.request_id, &body)?;
        let draft = wire::contact_draft(body.contact.unwrap_or_default()).map_err(invalid)?;
        let created = self
            .app
            .create_contact(
                &actor(&p),
                &p.tenant,
                creating.key(&p.tenant, "CreateContact"),
                draft,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::CreateContactResponse {
            contact: Some(wire::contact_pb(&created)),
        }))
    }

    async fn list_contacts(
        &self,
        req: Request<pb::ListContactsRequest>,
    ) -> Result<Response<pb::ListContactsResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        required(&body.account_id, "account_id")?;
        let binding = Binding::new(&p.tenant, "ListContacts").with("account", &body.account_id);
        let (limit, after) = self.page(body.page_size, &body.page_token, &binding)?;
        let page = Page {
            after: after.as_deref(),
            limit,
        };
        let items = self
            .app
            .list_contacts(&p.tenant, &body.account_id, page)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListContactsResponse {
            next_page_token: next(&items, limit, &binding, |c| c.id.clone()),
            contacts: items.iter().map(wire::contact_pb).collect(),
        }))
    }

    async fn create_opportunity(
        &self,
        req: Request<pb::CreateOpportunityRequest>,
    ) -> Result<Response<pb::CreateOpportunityResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        let creating = Creating::of(&body.request_id, &body)?;
        let draft = wire::draft(&body.opportunity.unwrap_or_default()).map_err(invalid)?;
        let (created, config) = self
            .app
            .create_opportunity(
                &actor(&p),
                &p.tenant,
                creating.key(&p.tenant, "CreateOpportunity"),
                draft,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::CreateOpportunityResponse {
            opportunity: Some(wire::opportunity_pb(&created, &config)),
        }))
    }

    async fn convert_lead(
        &self,
        req: Request<pb::ConvertLeadRequest>,
    ) -> Result<Response<pb::ConvertLeadResponse>, Status> {
        let p = principal(&req)?;
        let lead = wire::lead_snapshot(req.into_inner()).map_err(invalid)?;
        let (opp, account, contact, config) = self
            .app
            .convert_lead(&actor(&p), &p.tenant, lead)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ConvertLeadResponse {
            opportunity: Some(wire::opportunity_pb(&opp, &config)),
            account: Some(wire::account_pb(&account)),
            contact_id: contact.unwrap_or_default(),
        }))
    }

    async fn get_opportunity(
        &self,
        req: Request<pb::GetOpportunityRequest>,
    ) -> Result<Response<pb::GetOpportunityResponse>, Status> {
        let p = principal(&req)?;
        required(&req.get_ref().id, "id")?;
        let (opp, config) = self
            .app
            .get_opportunity(&actor(&p), &p.tenant, &req.get_ref().id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::GetOpportunityResponse {
            opportunity: Some(wire::opportunity_pb(&opp, &config)),
        }))
    }

    async fn list_opportunities(
        &self,
        req: Request<pb::ListOpportunitiesRequest>,
    ) -> Result<Response<pb::ListOpportunitiesResponse>, Status> {
        let p = principal(&req)?;
        let me = actor(&p);
        let body = req.into_inner();
        let stage = wire::stage(body.stage, "stage").map_err(one)?;
        // A page token is bound to whose list it is.
        let binding = Binding::new(&p.tenant, "ListOpportunities")
            .with(
                "caller",
                Visibility::of(&me).team_member().unwrap_or_default(),
            )
            .with("stage", body.stage)
            .with("account", &body.account_id)
            .with("owner", &body.owner_id);
        let (limit, after) = self.page(body.page_size, &body.page_token, &binding)?;
        let filter = OpportunityFilter {
            team_member: None,
            stage,
            account_id: non_empty(&body.account_id).map(str::to_owned),
            owner_id: non_empty(&body.owner_id).map(str::to_owned),
        };
        let page = Page {
            after: after.as_deref(),
            limit,
        };
        let (items, config) = self
            .app
            .list_opportunities(&me, &p.tenant, filter, page)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListOpportunitiesResponse {
            next_page_token: next(&items, limit, &binding, |o| o.id.clone()),
            opportunities: items
                .iter()
                .map(|o| wire::opportunity_pb(o, &config))
                .collect(),
        }))
    }

    async fn update_opportunity(
        &self,
        req: Request<pb::UpdateOpportunityRequest>,
    ) -> Result<Response<pb::UpdateOpportunityResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        let o = body.opportunity.unwrap_or_default();
        required(&o.id, "opportunity.id")?;
        let paths = fields::mask_paths(body.update_mask.as_ref(), wire::UPDATABLE).map_err(one)?;
        let patches = wire::patches(&o, &paths).map_err(invalid)?;
        let (opp, config) = self
            .app
            .update_opportunity(&actor(&p), &p.tenant, &o.id, &o.etag, patches)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::UpdateOpportunityResponse {
            opportunity: Some(wire::opportunity_pb(&opp, &config)),
        }))
    }

    async fn advance_stage(
        &self,
        req: Request<pb::AdvanceStageRequest>,
    ) -> Result<Response<pb::AdvanceStageResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        required(&body.id, "id")?;
        let Some(target) = wire::stage(body.target_stage, "target_stage").map_err(one)? else {
            return Err(one(FieldViolation::new("target_stage", "required")));
        };
        let (opp, violation, config) = self
            .app
            .advance(
                &actor(&p),
                &p.tenant,
                &body.id,
                &body.etag,
                target,
                &body.override_reason,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::AdvanceStageResponse {
            opportunity: Some(wire::opportunity_pb(&opp, &config)),
            violation: violation.as_ref().map(wire::violation_pb),
        }))
    }

    async fn set_decision_chain_member(
        &self,
        req: Request<pb::SetDecisionChainMemberRequest>,
    ) -> Result<Response<pb::SetDecisionChainMemberResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        required(&body.opportunity_id, "opportunity_id")?;
        let member = wire::member(body.member.as_ref()).map_err(invalid)?;
        let saved = self
            .app
            .set_member(&actor(&p), &p.tenant, &body.opportunity_id, member)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::SetDecisionChainMemberResponse {
            member: Some(wire::member_pb(&saved)),
        }))
    }

    async fn list_decision_chain(
        &self,
        req: Request<pb::ListDecisionChainRequest>,
    ) -> Result<Response<pb::ListDecisionChainResponse>, Status> {
        let p = principal(&req)?;
        let id = &req.get_ref().opportunity_id;
        required(id, "opportunity_id")?;
        let members = self
            .app
            .decision_chain(&actor(&p), &p.tenant, id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListDecisionChainResponse {
            members: members.iter().map(wire::member_pb).collect(),
        }))
    }

    async fn log_activity(
        &self,
        req: Request<pb::LogActivityRequest>,
    ) -> Result<Response<pb::LogActivityResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        let creating = Creating::of(&body.request_id, &body)?;
        required(&body.opportunity_id, "opportunity_id")?;
        let draft = wire::activity(body.activity.unwrap_or_default(), crm_types::now_micros())
            .map_err(invalid)?;
        let logged = self
            .app
            .log_activity(
                &actor(&p),
                &p.tenant,
                creating.key(&p.tenant, "LogActivity"),
                &body.opportunity_id,
                draft,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::LogActivityResponse {
            activity: Some(wire::activity_pb(&logged)),
        }))
    }

    async fn list_activities(
        &self,
        req: Request<pb::ListActivitiesRequest>,
    ) -> Result<Response<pb::ListActivitiesResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        required(&body.opportunity_id, "opportunity_id")?;
        let binding =
            Binding::new(&p.tenant, "ListActivities").with("opportunity", &body.opportunity_id);
        let (limit, after) = self.page(body.page_size, &body.page_token, &binding)?;
        let page = Page {
            after: after.as_deref(),
            limit,
        };
        let items = self
            .app
            .activities(&actor(&p), &p.tenant, &body.opportunity_id, page)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListActivitiesResponse {
            next_page_token: next(&items, limit, &binding, |a| a.id.clone()),
            activities: items.iter().map(wire::activity_pb).collect(),
        }))
    }

    async fn request_approval(
        &self,
        req: Request<pb::RequestApprovalRequest>,
    ) -> Result<Response<pb::RequestApprovalResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        let creating = Creating::of(&body.request_id, &body)?;
        required(&body.opportunity_id, "opportunity_id")?;
        // Two kinds have their own methods, which carry what they need.
        let kind = match wire::approval_kind(body.kind, "kind").map_err(one)? {
            Some(ApprovalKind::AccountChange) => {
                return Err(one(FieldViolation::new(
                    "kind",
                    "account changes are requested with UpdateAccount",
                )));
            }
            Some(ApprovalKind::DeliveryReview) => {
                return Err(one(FieldViolation::new(
                    "kind",
                    "delivery reviews are requested with RequestDeliveryReview",
                )));
            }
            Some(k) => k,
            None => return Err(one(FieldViolation::new("kind", "required"))),
        };
        let approval = self
            .app
            .request_approval(
                &actor(&p),
                &p.tenant,
                creating.key(&p.tenant, "RequestApproval"),
                kind,
                &body.opportunity_id,
                &body.reason,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::RequestApprovalResponse {
            approval: Some(wire::approval_pb(&approval)),
        }))
    }

    async fn request_delivery_review(
        &self,
        req: Request<pb::RequestDeliveryReviewRequest>,
    ) -> Result<Response<pb::RequestDeliveryReviewResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        let creating = Creating::of(&body.request_id, &body)?;
        required(&body.opportunity_id, "opportunity_id")?;
        let approval = self
            .app
            .request_approval(
                &actor(&p),
                &p.tenant,
                creating.key(&p.tenant, "RequestDeliveryReview"),
                ApprovalKind::DeliveryReview,
                &body.opportunity_id,
                &body.reason,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::RequestDeliveryReviewResponse {
            approval: Some(wire::approval_pb(&approval)),
        }))
    }

    async fn get_approval(
        &self,
        req: Request<pb::GetApprovalRequest>,
    ) -> Result<Response<pb::GetApprovalResponse>, Status> {
        let p = principal(&req)?;
        required(&req.get_ref().id, "id")?;
        let a = self
            .app
            .get_approval(&p.tenant, &req.get_ref().id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::GetApprovalResponse {
            approval: Some(wire::approval_pb(&a)),
        }))
    }

    async fn list_approvals(
        &self,
        req: Request<pb::ListApprovalsRequest>,
    ) -> Result<Response<pb::ListApprovalsResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        let st = wire::approval_status(body.status, "status").map_err(one)?;
        let binding = Binding::new(&p.tenant, "ListApprovals")
            .with("subject", &body.subject_id)
            .with("status", body.status);
        let (limit, after) = self.page(body.page_size, &body.page_token, &binding)?;
        let page = Page {
            after: after.as_deref(),
            limit,
        };
        let items = self
            .app
            .list_approvals(&p.tenant, non_empty(&body.subject_id), st, page)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListApprovalsResponse {
            next_page_token: next(&items, limit, &binding, |a| a.id.clone()),
            approvals: items.iter().map(wire::approval_pb).collect(),
        }))
    }

    async fn decide_approval(
        &self,
        req: Request<pb::DecideApprovalRequest>,
    ) -> Result<Response<pb::DecideApprovalResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        required(&body.id, "id")?;
        let Some(decision) = wire::decision(body.decision, "decision").map_err(one)? else {
            return Err(one(FieldViolation::new(
                "decision",
                "required: approve or reject",
            )));
        };
        let approval = self
            .app
            .decide(
                &actor(&p),
                &p.tenant,
                &body.id,
                &body.etag,
                decision,
                &body.comment,
                &body.on_behalf_of,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::DecideApprovalResponse {
            approval: Some(wire::approval_pb(&approval)),
        }))
    }

    async fn log_work_hours(
        &self,
        req: Request<pb::LogWorkHoursRequest>,
    ) -> Result<Response<pb::LogWorkHoursResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        let creating = Creating::of(&body.request_id, &body)?;
        required(&body.opportunity_id, "opportunity_id")?;
        let draft = wire::work_hours(body.work_hours.unwrap_or_default()).map_err(invalid)?;
        let logged = self
            .app
            .log_work_hours(
                &actor(&p),
                &p.tenant,
                creating.key(&p.tenant, "LogWorkHours"),
                &body.opportunity_id,
                draft,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::LogWorkHoursResponse {
            work_hours: Some(wire::work_hours_pb(&logged)),
        }))
    }

    async fn list_work_hours(
        &self,
        req: Request<pb::ListWorkHoursRequest>,
    ) -> Result<Response<pb::ListWorkHoursResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        required(&body.opportunity_id, "opportunity_id")?;
        let binding =
            Binding::new(&p.tenant, "ListWorkHours").with("opportunity", &body.opportunity_id);
        let (limit, after) = self.page(body.page_size, &body.page_token, &binding)?;
        let page = Page {
            after: after.as_deref(),
            limit,
        };
        let (items, total) = self
            .app
            .work_hours(&actor(&p), &p.tenant, &body.opportunity_id, page)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListWorkHoursResponse {
            next_page_token: next(&items, limit, &binding, |w| w.id.clone()),
            work_hours: items.iter().map(wire::work_hours_pb).collect(),
            total_minutes: total,
        }))
    }

    async fn list_stage_violations(
        &self,
        req: Request<pb::ListStageViolationsRequest>,
    ) -> Result<Response<pb::ListStageViolationsResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        let binding = Binding::new(&p.tenant, "ListStageViolations")
            .with("opportunity", &body.opportunity_id);
        let (limit, after) = self.page(body.page_size, &body.page_token, &binding)?;
        let page = Page {
            after: after.as_deref(),
            limit,
        };
        let items = self
            .app
            .violations(&p.tenant, non_empty(&body.opportunity_id), page)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListStageViolationsResponse {
            next_page_token: next(&items, limit, &binding, |v| v.id.clone()),
            violations: items.iter().map(wire::violation_pb).collect(),
        }))
    }

    async fn get_forecast(
        &self,
        req: Request<pb::GetForecastRequest>,
    ) -> Result<Response<pb::GetForecastResponse>, Status> {
        let p = principal(&req)?;
        let lines = self
            .app
            .forecast(&actor(&p), &p.tenant, &req.get_ref().owner_id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::GetForecastResponse {
            lines: lines.iter().map(wire::forecast_pb).collect(),
        }))
    }

    async fn get_opportunity_config(
        &self,
        req: Request<pb::GetOpportunityConfigRequest>,
    ) -> Result<Response<pb::GetOpportunityConfigResponse>, Status> {
        let p = principal(&req)?;
        let s = self.app.config(&p.tenant).await.map_err(status)?;
        Ok(Response::new(pb::GetOpportunityConfigResponse {
            config: Some(wire::config_pb(
                &s.config,
                s.version,
                s.update_time,
                &s.updater,
            )),
        }))
    }

    async fn update_opportunity_config(
        &self,
        req: Request<pb::UpdateOpportunityConfigRequest>,
    ) -> Result<Response<pb::UpdateOpportunityConfigResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        let Some(input) = body.config else {
            return Err(one(FieldViolation::new("config", "required")));
        };
        let config = wire::config(&input).map_err(invalid)?;
        let s = self
            .app
            .replace_config(&actor(&p), &p.tenant, config, &input.etag)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::UpdateOpportunityConfigResponse {
            config: Some(wire::config_pb(
                &s.config,
                s.version,
                s.update_time,
                &s.updater,
            )),
        }))
    }

    async fn list_audit_entries(
        &self,
        req: Request<pb::ListAuditEntriesRequest>,
    ) -> Result<Response<pb::ListAuditEntriesResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        let binding = Binding::new(&p.tenant, "ListAuditEntries").with("subject", &body.subject_id);
        let (limit, after) = self.page(body.page_size, &body.page_token, &binding)?;
        let page = Page {
            after: after.as_deref(),
            limit,
        };
        let entries = self
            .app
            .audit_entries(&p.tenant, non_empty(&body.subject_id), page)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListAuditEntriesResponse {
            next_page_token: next(&entries, limit, &binding, |e| e.id.clone()),
            entries: entries.into_iter().map(crm_rpc::audit_entry).collect(),
        }))
    }
}
