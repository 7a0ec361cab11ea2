//! The gRPC face of the opportunities service: decode and authorise, map
//! into the domain, call the store, map the answer back.

pub(crate) mod mapping;

use std::collections::BTreeMap;

use crm_auth::Principal;
use crm_proto::crm::opportunities::v1::{
    self as pb, opportunity_service_server::OpportunityService,
};
use crm_rpc::{
    FieldViolation, PreconditionViolation, RpcError, fields,
    paging::{self, Binding, PageLimits},
};
use crm_store::idempotency::RequestKey;
use tonic::{Request, Response, Status};

use crate::domain::{
    Account, Activity, Actor, ApprovalKind, Contact, OppConfig, OppError, Opportunity, Stage,
    WorkHours,
};
use crate::store::{LeadSnapshot, OppFilter, OppStore};

const DOMAIN: &str = "crm.opportunities";

/// The one place an opportunities error becomes a gRPC status.
fn status(err: OppError) -> Status {
    let rpc = match err {
        OppError::Invalid(vs) => RpcError::InvalidArgument(
            vs.into_iter()
                .map(|v| FieldViolation::new(v.field, v.description))
                .collect(),
        ),
        OppError::NotFound { resource, id } => RpcError::NotFound { resource, id },
        OppError::Stale => RpcError::Aborted {
            reason: "ETAG_MISMATCH",
            message: "the record was changed since it was read".into(),
        },
        OppError::Forbidden(reason, message) => RpcError::PermissionDenied { reason, message },
        OppError::Precondition("DUPLICATE_ACCOUNT", existing_id) => RpcError::AlreadyExists {
            reason: "DUPLICATE_ACCOUNT",
            resource: crate::store::ACCOUNT,
            message: format!("an account with this name exists: {existing_id}"),
            existing_id,
        },
        OppError::Precondition(reason, message) => RpcError::FailedPrecondition {
            reason,
            message,
            violations: vec![],
        },
        OppError::GateNotMet(missing) => RpcError::FailedPrecondition {
            reason: "STAGE_GATE_NOT_MET",
            message: format!(
                "missing: {}",
                missing
                    .iter()
                    .map(|m| m.subject.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            violations: missing
                .into_iter()
                .map(|m| PreconditionViolation {
                    kind: m.kind,
                    subject: m.subject,
                    description: m.description,
                })
                .collect(),
        },
        OppError::RequestIdReused => RpcError::InvalidArgument(vec![FieldViolation::new(
            "request_id",
            "already used for a different request",
        )]),
        OppError::Store(e) => RpcError::Internal(e),
    };
    rpc.into_status(DOMAIN)
}

fn invalid(vs: Vec<FieldViolation>) -> Status {
    RpcError::InvalidArgument(vs).into_status(DOMAIN)
}

fn one(v: FieldViolation) -> Status {
    invalid(vec![v])
}

fn actor(p: &Principal) -> Actor {
    Actor {
        id: p.subject.clone(),
        roles: p.roles.clone(),
    }
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

fn key<'a>(
    tenant: &'a str,
    request_id: &'a str,
    method: &'a str,
    hash: &'a str,
) -> Option<RequestKey<'a>> {
    (!request_id.is_empty()).then_some(RequestKey {
        tenant,
        request_id,
        method,
        request_hash: hash,
    })
}

/// The next page token when the page came back full.
fn next<T>(items: &[T], limit: u64, binding: &Binding, last_key: impl Fn(&T) -> String) -> String {
    match items.last() {
        Some(last) if items.len() as u64 == limit => paging::encode(&last_key(last), binding),
        _ => String::new(),
    }
}

#[derive(Clone)]
pub struct OpportunitiesApi {
    store: OppStore,
    pages: PageLimits,
}

impl OpportunitiesApi {
    pub fn new(store: OppStore, pages: PageLimits) -> Self {
        OpportunitiesApi { store, pages }
    }

    async fn config(&self, tenant: &str) -> Result<OppConfig, Status> {
        Ok(self.store.config(tenant).await.map_err(status)?.config)
    }

    async fn visible(&self, tenant: &str, id: &str, actor: &Actor) -> Result<Opportunity, Status> {
        let opp = self
            .store
            .get_opportunity(tenant, id)
            .await
            .map_err(status)?;
        opp.check_access(actor).map_err(status)?;
        Ok(opp)
    }

    fn page<K: serde::de::DeserializeOwned>(
        &self,
        size: i32,
        token: &str,
        binding: &Binding,
    ) -> Result<(u64, Option<K>), Status> {
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
        let request_id = fields::request_id(&body.request_id)
            .map_err(one)?
            .unwrap_or_default();
        let hash = fields::request_hash(&body);
        let a = body.account.unwrap_or_default();
        if a.name.trim().is_empty() || a.name.chars().count() > 200 {
            return Err(one(FieldViolation::new(
                "account.name",
                "required, at most 200 characters",
            )));
        }
        let me = actor(&p);
        let owner = if a.owner_id.is_empty() {
            me.id.clone()
        } else {
            a.owner_id.clone()
        };
        if owner != me.id && !me.supervisor() {
            return Err(status(OppError::Forbidden(
                "NOT_MANAGER",
                "only managers create accounts for someone else".into(),
            )));
        }
        let now = crm_store::now_micros();
        let account = Account {
            id: crm_store::new_id(),
            tenant: p.tenant.clone(),
            version: 1,
            name: a.name.trim().to_owned(),
            registration_number: a.registration_number.trim().to_owned(),
            industry: a.industry.trim().to_owned(),
            region: a.region.trim().to_owned(),
            owner_id: owner,
            pending_approval_id: None,
            create_time: now,
            update_time: now,
            creator: me.id.clone(),
            updater: me.id.clone(),
        };
        let created = self
            .store
            .create_account(
                key(&p.tenant, request_id, "CreateAccount", &hash),
                &account,
                now,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::CreateAccountResponse {
            account: Some(mapping::account_pb(&created)),
        }))
    }

    async fn get_account(
        &self,
        req: Request<pb::GetAccountRequest>,
    ) -> Result<Response<pb::GetAccountResponse>, Status> {
        let p = principal(&req)?;
        required(&req.get_ref().id, "id")?;
        let a = self
            .store
            .get_account(&p.tenant, &req.get_ref().id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::GetAccountResponse {
            account: Some(mapping::account_pb(&a)),
        }))
    }

    async fn list_accounts(
        &self,
        req: Request<pb::ListAccountsRequest>,
    ) -> Result<Response<pb::ListAccountsResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        let binding = Binding::new(&p.tenant, "ListAccounts").with("owner", &body.owner_id);
        let (limit, after) = self.page::<String>(body.page_size, &body.page_token, &binding)?;
        let owner = (!body.owner_id.is_empty()).then_some(body.owner_id.as_str());
        let items = self
            .store
            .list_accounts(&p.tenant, owner, after.as_deref(), limit)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListAccountsResponse {
            next_page_token: next(&items, limit, &binding, |a| a.id.clone()),
            accounts: items.iter().map(mapping::account_pb).collect(),
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
        let paths = fields::mask_paths(
            body.update_mask.as_ref(),
            &[
                "name",
                "registration_number",
                "industry",
                "region",
                "owner_id",
            ],
        )
        .map_err(one)?;
        if paths.is_empty() {
            return Err(one(FieldViolation::new(
                "update_mask",
                "names no field to change",
            )));
        }
        let has = |f: &str| paths.iter().any(|x| x == f);
        let mut core = BTreeMap::new();
        for (field, value) in [
            ("name", &a.name),
            ("registration_number", &a.registration_number),
            ("industry", &a.industry),
        ] {
            if has(field) {
                core.insert(field.to_owned(), value.trim().to_owned());
            }
        }
        let immediate = (
            has("region").then(|| a.region.trim().to_owned()),
            has("owner_id").then(|| a.owner_id.clone()),
        );
        let config = self.config(&p.tenant).await?;
        let (account, approval) = self
            .store
            .update_account(
                &p.tenant,
                &a.id,
                &a.etag,
                immediate,
                core,
                &body.reason,
                &actor(&p),
                &config,
                crm_store::now_micros(),
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::UpdateAccountResponse {
            account: Some(mapping::account_pb(&account)),
            approval: approval.as_ref().map(mapping::approval_pb),
        }))
    }

    async fn create_contact(
        &self,
        req: Request<pb::CreateContactRequest>,
    ) -> Result<Response<pb::CreateContactResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        let request_id = fields::request_id(&body.request_id)
            .map_err(one)?
            .unwrap_or_default();
        let hash = fields::request_hash(&body);
        let c = body.contact.unwrap_or_default();
        let mut v = Vec::new();
        if c.account_id.is_empty() {
            v.push(FieldViolation::new("contact.account_id", "required"));
        }
        if c.name.trim().is_empty() {
            v.push(FieldViolation::new("contact.name", "required"));
        }
        if !v.is_empty() {
            return Err(invalid(v));
        }
        let now = crm_store::now_micros();
        let contact = Contact {
            id: crm_store::new_id(),
            account_id: c.account_id,
            name: c.name.trim().to_owned(),
            title: c.title,
            phone: c.phone,
            email: c.email,
            create_time: now,
            creator: p.subject.clone(),
        };
        let created = self
            .store
            .create_contact(
                &p.tenant,
                key(&p.tenant, request_id, "CreateContact", &hash),
                &contact,
                now,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::CreateContactResponse {
            contact: Some(mapping::contact_pb(&created)),
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
        let (limit, after) = self.page::<String>(body.page_size, &body.page_token, &binding)?;
        let items = self
            .store
            .list_contacts(&p.tenant, &body.account_id, after.as_deref(), limit)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListContactsResponse {
            next_page_token: next(&items, limit, &binding, |c| c.id.clone()),
            contacts: items.iter().map(mapping::contact_pb).collect(),
        }))
    }

    async fn create_opportunity(
        &self,
        req: Request<pb::CreateOpportunityRequest>,
    ) -> Result<Response<pb::CreateOpportunityResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        let request_id = fields::request_id(&body.request_id)
            .map_err(one)?
            .unwrap_or_default();
        let hash = fields::request_hash(&body);
        let o = body.opportunity.unwrap_or_default();
        let d = mapping::draft(&o).map_err(invalid)?;
        let me = actor(&p);
        let mut team = d.team;
        if team.account_manager_id.is_empty() {
            team.account_manager_id = me.id.clone();
        }
        if !me.supervisor() && !team.includes(&me.id) {
            return Err(status(OppError::Forbidden(
                "NOT_ON_TEAM",
                "sales create opportunities they are on the team of".into(),
            )));
        }
        let now = crm_store::now_micros();
        let opp = Opportunity {
            id: crm_store::new_id(),
            tenant: p.tenant.clone(),
            version: 1,
            account_id: o.account_id.clone(),
            name: d.name,
            amount: d.amount,
            expected_close_date: d.expected_close_date,
            grade: d.grade,
            team,
            competitors: d.competitors,
            stage: Stage::Validate,
            win_loss_reason: String::new(),
            qualification: d.qualification,
            solution_summary: String::new(),
            workload_person_days: None,
            quote: None,
            delivery_review: None,
            lead_id: None,
            create_time: now,
            update_time: now,
            creator: me.id.clone(),
            updater: me.id.clone(),
        };
        let config = self.config(&p.tenant).await?;
        let created = self
            .store
            .create_opportunity(
                key(&p.tenant, request_id, "CreateOpportunity", &hash),
                &opp,
                &config,
                now,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::CreateOpportunityResponse {
            opportunity: Some(mapping::opportunity_pb(&created, &config)),
        }))
    }

    async fn convert_lead(
        &self,
        req: Request<pb::ConvertLeadRequest>,
    ) -> Result<Response<pb::ConvertLeadResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        let mut v = Vec::new();
        if body.lead_id.is_empty() {
            v.push(FieldViolation::new("lead_id", "required"));
        }
        if body.company.trim().is_empty() {
            v.push(FieldViolation::new("company", "required"));
        }
        let amount = mapping::money(body.amount.as_ref(), "amount", &mut v);
        if !v.is_empty() {
            return Err(invalid(v));
        }
        let lead = LeadSnapshot {
            lead_id: body.lead_id,
            company: body.company,
            contact_name: body.contact_name,
            phone: body.phone,
            email: body.email,
            industry: body.industry,
            region: body.region,
            owner_id: body.owner_id,
            opportunity_name: body.opportunity_name,
            amount,
        };
        let config = self.config(&p.tenant).await?;
        let (opp, account, contact) = self
            .store
            .convert_lead(
                &p.tenant,
                &lead,
                &actor(&p),
                &config,
                crm_store::now_micros(),
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ConvertLeadResponse {
            opportunity: Some(mapping::opportunity_pb(&opp, &config)),
            account: Some(mapping::account_pb(&account)),
            contact_id: contact.unwrap_or_default(),
        }))
    }

    async fn get_opportunity(
        &self,
        req: Request<pb::GetOpportunityRequest>,
    ) -> Result<Response<pb::GetOpportunityResponse>, Status> {
        let p = principal(&req)?;
        required(&req.get_ref().id, "id")?;
        let opp = self
            .visible(&p.tenant, &req.get_ref().id, &actor(&p))
            .await?;
        let config = self.config(&p.tenant).await?;
        Ok(Response::new(pb::GetOpportunityResponse {
            opportunity: Some(mapping::opportunity_pb(&opp, &config)),
        }))
    }

    async fn list_opportunities(
        &self,
        req: Request<pb::ListOpportunitiesRequest>,
    ) -> Result<Response<pb::ListOpportunitiesResponse>, Status> {
        let p = principal(&req)?;
        let me = actor(&p);
        let body = req.into_inner();
        let stage = mapping::stage(body.stage, "stage").map_err(one)?;
        let binding = Binding::new(&p.tenant, "ListOpportunities")
            .with("caller", if me.supervisor() { "" } else { &me.id })
            .with("stage", body.stage)
            .with("account", &body.account_id)
            .with("owner", &body.owner_id);
        let (limit, after) = self.page::<String>(body.page_size, &body.page_token, &binding)?;
        let filter = OppFilter {
            team_member: (!me.supervisor()).then(|| me.id.clone()),
            stage,
            account_id: (!body.account_id.is_empty()).then(|| body.account_id.clone()),
            owner_id: (!body.owner_id.is_empty()).then(|| body.owner_id.clone()),
        };
        let items = self
            .store
            .list_opportunities(&p.tenant, &filter, after.as_deref(), limit)
            .await
            .map_err(status)?;
        let config = self.config(&p.tenant).await?;
        Ok(Response::new(pb::ListOpportunitiesResponse {
            next_page_token: next(&items, limit, &binding, |o| o.id.clone()),
            opportunities: items
                .iter()
                .map(|o| mapping::opportunity_pb(o, &config))
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
        let paths =
            fields::mask_paths(body.update_mask.as_ref(), mapping::UPDATABLE).map_err(one)?;
        let patches = mapping::patches(&o, &paths).map_err(invalid)?;
        let opp = self
            .store
            .update_opportunity(
                &p.tenant,
                &o.id,
                &o.etag,
                patches,
                &actor(&p),
                crm_store::now_micros(),
            )
            .await
            .map_err(status)?;
        let config = self.config(&p.tenant).await?;
        Ok(Response::new(pb::UpdateOpportunityResponse {
            opportunity: Some(mapping::opportunity_pb(&opp, &config)),
        }))
    }

    async fn advance_stage(
        &self,
        req: Request<pb::AdvanceStageRequest>,
    ) -> Result<Response<pb::AdvanceStageResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        required(&body.id, "id")?;
        let target = match mapping::stage(body.target_stage, "target_stage").map_err(one)? {
            Some(s) => s,
            None => return Err(one(FieldViolation::new("target_stage", "required"))),
        };
        let config = self.config(&p.tenant).await?;
        let (opp, violation) = self
            .store
            .advance(
                &p.tenant,
                &body.id,
                &body.etag,
                target,
                &body.override_reason,
                &actor(&p),
                &config,
                crm_store::now_micros(),
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::AdvanceStageResponse {
            opportunity: Some(mapping::opportunity_pb(&opp, &config)),
            violation: violation.as_ref().map(mapping::violation_pb),
        }))
    }

    async fn set_decision_chain_member(
        &self,
        req: Request<pb::SetDecisionChainMemberRequest>,
    ) -> Result<Response<pb::SetDecisionChainMemberResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        required(&body.opportunity_id, "opportunity_id")?;
        let member = mapping::member(body.member.as_ref()).map_err(invalid)?;
        let saved = self
            .store
            .set_member(
                &p.tenant,
                &body.opportunity_id,
                &member,
                &actor(&p),
                crm_store::now_micros(),
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::SetDecisionChainMemberResponse {
            member: Some(mapping::member_pb(&saved)),
        }))
    }

    async fn list_decision_chain(
        &self,
        req: Request<pb::ListDecisionChainRequest>,
    ) -> Result<Response<pb::ListDecisionChainResponse>, Status> {
        let p = principal(&req)?;
        let id = req.get_ref().opportunity_id.clone();
        required(&id, "opportunity_id")?;
        self.visible(&p.tenant, &id, &actor(&p)).await?;
        let members = self
            .store
            .decision_chain(&p.tenant, &id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListDecisionChainResponse {
            members: members.iter().map(mapping::member_pb).collect(),
        }))
    }

    async fn log_activity(
        &self,
        req: Request<pb::LogActivityRequest>,
    ) -> Result<Response<pb::LogActivityResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        let request_id = fields::request_id(&body.request_id)
            .map_err(one)?
            .unwrap_or_default();
        let hash = fields::request_hash(&body);
        required(&body.opportunity_id, "opportunity_id")?;
        let a = body.activity.unwrap_or_default();
        let now = crm_store::now_micros();
        let mut v = Vec::new();
        let kind = match mapping::activity_kind(a.kind, "activity.kind") {
            Ok(Some(k)) => Some(k),
            Ok(None) => {
                v.push(FieldViolation::new("activity.kind", "required"));
                None
            }
            Err(e) => {
                v.push(e);
                None
            }
        };
        let occur_time = match &a.occur_time {
            Some(ts) => fields::micros(ts, "activity.occur_time")
                .map_err(|e| v.push(e))
                .unwrap_or(now),
            None => now,
        };
        if occur_time > now + 60_000_000 {
            v.push(FieldViolation::new(
                "activity.occur_time",
                "must not be in the future",
            ));
        }
        let Some(kind) = kind.filter(|_| v.is_empty()) else {
            return Err(invalid(v));
        };
        let activity = Activity {
            id: crm_store::new_id(),
            opportunity_id: body.opportunity_id.clone(),
            kind,
            contact_ids: a.contact_ids,
            occur_time,
            notes: a.notes,
            creator: p.subject.clone(),
        };
        let logged = self
            .store
            .log_activity(
                &p.tenant,
                key(&p.tenant, request_id, "LogActivity", &hash),
                &activity,
                &actor(&p),
                now,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::LogActivityResponse {
            activity: Some(mapping::activity_pb(&logged)),
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
        let (limit, after) = self.page::<String>(body.page_size, &body.page_token, &binding)?;
        self.visible(&p.tenant, &body.opportunity_id, &actor(&p))
            .await?;
        let items = self
            .store
            .activities(&p.tenant, &body.opportunity_id, after.as_deref(), limit)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListActivitiesResponse {
            next_page_token: next(&items, limit, &binding, |a| a.id.clone()),
            activities: items.iter().map(mapping::activity_pb).collect(),
        }))
    }

    async fn request_approval(
        &self,
        req: Request<pb::RequestApprovalRequest>,
    ) -> Result<Response<pb::RequestApprovalResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        let request_id = fields::request_id(&body.request_id)
            .map_err(one)?
            .unwrap_or_default();
        let hash = fields::request_hash(&body);
        required(&body.opportunity_id, "opportunity_id")?;
        let kind = match mapping::approval_kind(body.kind, "kind").map_err(one)? {
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
        let config = self.config(&p.tenant).await?;
        let approval = self
            .store
            .request_approval(
                &p.tenant,
                key(&p.tenant, request_id, "RequestApproval", &hash),
                kind,
                &body.opportunity_id,
                &body.reason,
                &actor(&p),
                &config,
                crm_store::now_micros(),
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::RequestApprovalResponse {
            approval: Some(mapping::approval_pb(&approval)),
        }))
    }

    async fn request_delivery_review(
        &self,
        req: Request<pb::RequestDeliveryReviewRequest>,
    ) -> Result<Response<pb::RequestDeliveryReviewResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        let request_id = fields::request_id(&body.request_id)
            .map_err(one)?
            .unwrap_or_default();
        let hash = fields::request_hash(&body);
        required(&body.opportunity_id, "opportunity_id")?;
        let config = self.config(&p.tenant).await?;
        let approval = self
            .store
            .request_approval(
                &p.tenant,
                key(&p.tenant, request_id, "RequestDeliveryReview", &hash),
                ApprovalKind::DeliveryReview,
                &body.opportunity_id,
                &body.reason,
                &actor(&p),
                &config,
                crm_store::now_micros(),
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::RequestDeliveryReviewResponse {
            approval: Some(mapping::approval_pb(&approval)),
        }))
    }

    async fn get_approval(
        &self,
        req: Request<pb::GetApprovalRequest>,
    ) -> Result<Response<pb::GetApprovalResponse>, Status> {
        let p = principal(&req)?;
        required(&req.get_ref().id, "id")?;
        let a = self
            .store
            .get_approval(&p.tenant, &req.get_ref().id)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::GetApprovalResponse {
            approval: Some(mapping::approval_pb(&a)),
        }))
    }

    async fn list_approvals(
        &self,
        req: Request<pb::ListApprovalsRequest>,
    ) -> Result<Response<pb::ListApprovalsResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        let st = mapping::approval_status(body.status, "status").map_err(one)?;
        let binding = Binding::new(&p.tenant, "ListApprovals")
            .with("subject", &body.subject_id)
            .with("status", body.status);
        let (limit, after) = self.page::<String>(body.page_size, &body.page_token, &binding)?;
        let subject = (!body.subject_id.is_empty()).then_some(body.subject_id.as_str());
        let items = self
            .store
            .list_approvals(&p.tenant, subject, st, after.as_deref(), limit)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListApprovalsResponse {
            next_page_token: next(&items, limit, &binding, |a| a.id.clone()),
            approvals: items.iter().map(mapping::approval_pb).collect(),
        }))
    }

    async fn decide_approval(
        &self,
        req: Request<pb::DecideApprovalRequest>,
    ) -> Result<Response<pb::DecideApprovalResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        required(&body.id, "id")?;
        let decision = match mapping::decision(body.decision, "decision").map_err(one)? {
            Some(d) => d,
            None => {
                return Err(one(FieldViolation::new(
                    "decision",
                    "required: approve or reject",
                )));
            }
        };
        let approval = self
            .store
            .decide(
                &p.tenant,
                &body.id,
                &body.etag,
                decision,
                &body.comment,
                &body.on_behalf_of,
                &actor(&p),
                crm_store::now_micros(),
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::DecideApprovalResponse {
            approval: Some(mapping::approval_pb(&approval)),
        }))
    }

    async fn log_work_hours(
        &self,
        req: Request<pb::LogWorkHoursRequest>,
    ) -> Result<Response<pb::LogWorkHoursResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        let request_id = fields::request_id(&body.request_id)
            .map_err(one)?
            .unwrap_or_default();
        let hash = fields::request_hash(&body);
        required(&body.opportunity_id, "opportunity_id")?;
        let w = body.work_hours.unwrap_or_default();
        let mut v = Vec::new();
        let date = mapping::date(w.work_date.as_ref(), "work_hours.work_date", &mut v);
        if w.work_date.is_none() {
            v.push(FieldViolation::new("work_hours.work_date", "required"));
        }
        if !(1..=1440).contains(&w.minutes) {
            v.push(FieldViolation::new(
                "work_hours.minutes",
                "1 to 1440 minutes",
            ));
        }
        let Some(date) = date.filter(|_| v.is_empty()) else {
            return Err(invalid(v));
        };
        let hours = WorkHours {
            id: crm_store::new_id(),
            opportunity_id: body.opportunity_id.clone(),
            person_id: p.subject.clone(),
            work_date: date,
            minutes: w.minutes,
            notes: w.notes,
        };
        let logged = self
            .store
            .log_work_hours(
                &p.tenant,
                key(&p.tenant, request_id, "LogWorkHours", &hash),
                &hours,
                &actor(&p),
                crm_store::now_micros(),
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::LogWorkHoursResponse {
            work_hours: Some(mapping::work_hours_pb(&logged)),
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
        let (limit, after) = self.page::<String>(body.page_size, &body.page_token, &binding)?;
        self.visible(&p.tenant, &body.opportunity_id, &actor(&p))
            .await?;
        let (items, total) = self
            .store
            .work_hours(&p.tenant, &body.opportunity_id, after.as_deref(), limit)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListWorkHoursResponse {
            next_page_token: next(&items, limit, &binding, |w| w.id.clone()),
            work_hours: items.iter().map(mapping::work_hours_pb).collect(),
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
        let (limit, after) = self.page::<String>(body.page_size, &body.page_token, &binding)?;
        let opp = (!body.opportunity_id.is_empty()).then_some(body.opportunity_id.as_str());
        let items = self
            .store
            .violations(&p.tenant, opp, after.as_deref(), limit)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListStageViolationsResponse {
            next_page_token: next(&items, limit, &binding, |v| v.id.clone()),
            violations: items.iter().map(mapping::violation_pb).collect(),
        }))
    }

    async fn get_forecast(
        &self,
        req: Request<pb::GetForecastRequest>,
    ) -> Result<Response<pb::GetForecastResponse>, Status> {
        let p = principal(&req)?;
        let me = actor(&p);
        let body = req.into_inner();
        let owner = match (body.owner_id.is_empty(), me.supervisor()) {
            (true, true) => None,
            (true, false) => Some(me.id.clone()),
            (false, _) if body.owner_id == me.id || me.supervisor() => Some(body.owner_id.clone()),
            (false, _) => {
                return Err(status(OppError::Forbidden(
                    "NOT_MANAGER",
                    "only managers see another person's pipeline".into(),
                )));
            }
        };
        let config = self.config(&p.tenant).await?;
        let lines = self
            .store
            .forecast(&p.tenant, owner.as_deref(), &config)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::GetForecastResponse {
            lines: lines.iter().map(mapping::forecast_pb).collect(),
        }))
    }

    async fn get_opportunity_config(
        &self,
        req: Request<pb::GetOpportunityConfigRequest>,
    ) -> Result<Response<pb::GetOpportunityConfigResponse>, Status> {
        let p = principal(&req)?;
        let stored = self.store.config(&p.tenant).await.map_err(status)?;
        Ok(Response::new(pb::GetOpportunityConfigResponse {
            config: Some(mapping::config_pb(&stored)),
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
        let config = mapping::config(&input).map_err(invalid)?;
        let stored = self
            .store
            .replace_config(
                &p.tenant,
                config,
                &input.etag,
                &p.subject,
                crm_store::now_micros(),
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::UpdateOpportunityConfigResponse {
            config: Some(mapping::config_pb(&stored)),
        }))
    }

    async fn list_audit_entries(
        &self,
        req: Request<pb::ListAuditEntriesRequest>,
    ) -> Result<Response<pb::ListAuditEntriesResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        let binding = Binding::new(&p.tenant, "ListAuditEntries").with("subject", &body.subject_id);
        let (limit, after) = self.page::<String>(body.page_size, &body.page_token, &binding)?;
        let subject = (!body.subject_id.is_empty()).then_some(body.subject_id.as_str());
        let entries = self
            .store
            .audit_entries(&p.tenant, subject, after.as_deref(), limit)
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ListAuditEntriesResponse {
            next_page_token: next(&entries, limit, &binding, |e| e.id.clone()),
            entries: entries.into_iter().map(crm_rpc::audit_entry).collect(),
        }))
    }
}
