//! The gRPC face of the leads service: decode and authorise each request,
//! map it into the domain, call the store, map the answer back. No SQL and
//! no business rules live here.

pub(crate) mod mapping;

use crm_auth::{Principal, Role};
use crm_proto::crm::leads::v1::{self as pb, lead_service_server::LeadService};
use crm_proto::crm::opportunities::v1::{
    self as opp, opportunity_service_client::OpportunityServiceClient,
};
use crm_rpc::{
    FieldViolation, RpcError, fields,
    paging::{self, Binding, PageLimits},
};
use crm_store::idempotency::RequestKey;
use tonic::{Request, Response, Status};

use crate::domain::{Actor, LeadError, LeadStatus, OnDuplicate};
use crate::store::{LeadStore, ListFilter};

const DOMAIN: &str = "crm.leads";

/// The one place a lead error becomes a gRPC status.
fn status(err: LeadError) -> Status {
    let rpc = match err {
        LeadError::Invalid(vs) => RpcError::InvalidArgument(mapping::violations(vs, "lead")),
        LeadError::NotFound(id) => RpcError::NotFound {
            resource: "crm.leads.v1.Lead",
            id,
        },
        LeadError::StaleEtag { .. } => RpcError::Aborted {
            reason: "ETAG_MISMATCH",
            message: err.to_string(),
        },
        LeadError::StaleConfig(_) => RpcError::Aborted {
            reason: "ETAG_MISMATCH",
            message: err.to_string(),
        },
        LeadError::Duplicate {
            ref existing_id, ..
        } => RpcError::AlreadyExists {
            reason: "DUPLICATE_LEAD",
            resource: "crm.leads.v1.Lead",
            existing_id: existing_id.clone(),
            message: err.to_string(),
        },
        LeadError::NotOwner(_) | LeadError::NotManager => RpcError::PermissionDenied {
            reason: "NOT_LEAD_OWNER",
            message: err.to_string(),
        },
        LeadError::Closed { .. } => RpcError::FailedPrecondition {
            reason: "LEAD_CLOSED",
            message: err.to_string(),
            violations: vec![],
        },
        LeadError::AlreadyOwned(_) => RpcError::FailedPrecondition {
            reason: "LEAD_OWNED",
            message: err.to_string(),
            violations: vec![],
        },
        LeadError::InPool(_) => RpcError::FailedPrecondition {
            reason: "LEAD_IN_POOL",
            message: err.to_string(),
            violations: vec![],
        },
        LeadError::ClaimLimit { .. } => RpcError::FailedPrecondition {
            reason: "CLAIM_LIMIT_REACHED",
            message: err.to_string(),
            violations: vec![],
        },
        LeadError::RequestIdReused => {
            RpcError::InvalidArgument(vec![FieldViolation::new("request_id", err.to_string())])
        }
        LeadError::Store(e) => RpcError::Internal(e),
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
        supervisor: p.has_any(&[Role::Manager, Role::Admin, Role::Integration]),
        sales: p.has_role(Role::Sales),
    }
}

fn required_id(id: &str, field: &str) -> Result<(), Status> {
    if id.is_empty() || id.len() > 64 {
        return Err(one(FieldViolation::new(field, "required: the lead's id")));
    }
    Ok(())
}

fn on_duplicate(value: i32) -> Result<OnDuplicate, Status> {
    match pb::DuplicatePolicy::try_from(value) {
        Ok(pb::DuplicatePolicy::Merge) => Ok(OnDuplicate::Merge),
        Ok(_) => Ok(OnDuplicate::Reject),
        Err(_) => Err(one(FieldViolation::new(
            "on_duplicate",
            "unknown duplicate policy",
        ))),
    }
}

/// The opportunities service as the leads service calls it.
pub type OpportunitiesClient = OpportunityServiceClient<tonic::transport::Channel>;

/// The leads gRPC service.
#[derive(Clone)]
pub struct LeadsApi {
    store: LeadStore,
    pages: PageLimits,
    max_import_rows: usize,
    opportunities: Option<OpportunitiesClient>,
}

impl LeadsApi {
    pub fn new(
        store: LeadStore,
        pages: PageLimits,
        max_import_rows: usize,
        opportunities: Option<OpportunitiesClient>,
    ) -> Self {
        LeadsApi {
            store,
            pages,
            max_import_rows,
            opportunities,
        }
    }

    /// Asks the opportunities service to convert `lead`, as the caller
    /// (their token) and within the caller's trace.
    pub(crate) async fn convert_remotely(
        &self,
        lead: &crate::domain::Lead,
        token: Option<crm_auth::BearerToken>,
        name: String,
        amount: Option<crm_proto::crm::common::v1::Money>,
    ) -> Result<opp::ConvertLeadResponse, Status> {
        let unavailable = |message: String| {
            RpcError::Unavailable {
                reason: "OPPORTUNITIES_UNAVAILABLE",
                message,
            }
            .into_status(DOMAIN)
        };
        let Some(mut client) = self.opportunities.clone() else {
            return Err(unavailable(
                "no opportunities service is configured (leads.opportunities_url)".into(),
            ));
        };
        let p = &lead.profile;
        let request = opp::ConvertLeadRequest {
            lead_id: lead.id.clone(),
            company: p.company.clone(),
            contact_name: p.contact_name.clone(),
            phone: p.phone.clone(),
            email: p.email.clone(),
            industry: p.industry.clone(),
            region: p.region.clone(),
            owner_id: lead.owner_id.clone().unwrap_or_default(),
            opportunity_name: name,
            amount,
        };
        let mut headers = http::HeaderMap::new();
        crm_telemetry::inject_trace_context(&mut headers);
        let mut call = Request::from_parts(
            tonic::metadata::MetadataMap::from_headers(headers),
            Default::default(),
            request,
        );
        if let Some(value) = token.and_then(|t| t.header_value().parse().ok()) {
            call.metadata_mut().insert("authorization", value);
        }
        call.set_timeout(std::time::Duration::from_secs(10));
        match client.convert_lead(call).await {
            Ok(reply) => Ok(reply.into_inner()),
            Err(s)
                if matches!(
                    s.code(),
                    tonic::Code::Unavailable
                        | tonic::Code::DeadlineExceeded
                        | tonic::Code::Unknown
                        | tonic::Code::Cancelled
                ) =>
            {
                Err(unavailable(format!(
                    "the opportunities service did not answer ({}); the lead is unchanged, retry later",
                    s.code()
                )))
            }
            Err(s) => Err(s),
        }
    }

    async fn config(&self, tenant: &str) -> Result<crate::domain::LeadConfig, Status> {
        Ok(self.store.config(tenant).await.map_err(status)?.config)
    }
}

fn principal<T>(req: &Request<T>) -> Result<Principal, Status> {
    crm_auth::principal(req).cloned()
}

/// The idempotency key of a creating call; none without a request id.
fn request_key<'a>(
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

#[tonic::async_trait]
impl LeadService for LeadsApi {
    async fn create_lead(
        &self,
        req: Request<pb::CreateLeadRequest>,
    ) -> Result<Response<pb::CreateLeadResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        let request_id = fields::request_id(&body.request_id)
            .map_err(one)?
            .unwrap_or_default();
        let hash = fields::request_hash(&body);
        let config = self.config(&p.tenant).await?;
        let input = body.lead.unwrap_or_default();
        let draft = mapping::draft(&input, &config).map_err(invalid)?;
        let key = request_key(&p.tenant, request_id, "CreateLead", &hash);
        let (lead, merged) = self
            .store
            .create(
                &p.tenant,
                key,
                &draft,
                on_duplicate(body.on_duplicate)?,
                &actor(&p),
                &config,
                crm_store::now_micros(),
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::CreateLeadResponse {
            lead: Some(mapping::lead(&lead)),
            merged,
        }))
    }

    async fn batch_create_leads(
        &self,
        req: Request<pb::BatchCreateLeadsRequest>,
    ) -> Result<Response<pb::BatchCreateLeadsResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        let request_id = fields::request_id(&body.request_id)
            .map_err(one)?
            .unwrap_or_default();
        if body.leads.is_empty() || body.leads.len() > self.max_import_rows {
            return Err(one(FieldViolation::new(
                "leads",
                format!("1 to {} rows per import", self.max_import_rows),
            )));
        }
        let hash = fields::request_hash(&body);
        let config = self.config(&p.tenant).await?;
        let rows = body
            .leads
            .iter()
            .map(|l| {
                mapping::draft(l, &config).map_err(|vs| {
                    vs.into_iter()
                        .map(|v| {
                            crate::domain::Violation::new(
                                v.field.trim_start_matches("lead.").to_owned(),
                                v.description,
                            )
                        })
                        .collect()
                })
            })
            .collect();
        let key = request_key(&p.tenant, request_id, "BatchCreateLeads", &hash);
        let outcomes = self
            .store
            .import(
                &p.tenant,
                key,
                rows,
                on_duplicate(body.on_duplicate)?,
                &actor(&p),
                &config,
                crm_store::now_micros(),
            )
            .await
            .map_err(status)?;
        let accepted = outcomes.iter().filter(|o| o.rejection.is_none()).count();
        let rejected = outcomes.len() - accepted;
        Ok(Response::new(pb::BatchCreateLeadsResponse {
            results: outcomes.into_iter().map(mapping::import_result).collect(),
            accepted_count: i32::try_from(accepted).unwrap_or(i32::MAX),
            rejected_count: i32::try_from(rejected).unwrap_or(i32::MAX),
        }))
    }

    async fn get_lead(
        &self,
        req: Request<pb::GetLeadRequest>,
    ) -> Result<Response<pb::GetLeadResponse>, Status> {
        let p = principal(&req)?;
        let id = &req.get_ref().id;
        required_id(id, "id")?;
        let lead = self.store.get(&p.tenant, id).await.map_err(status)?;
        crate::domain::check_visible(&lead, &actor(&p)).map_err(status)?;
        Ok(Response::new(pb::GetLeadResponse {
            lead: Some(mapping::lead(&lead)),
        }))
    }

    async fn list_leads(
        &self,
        req: Request<pb::ListLeadsRequest>,
    ) -> Result<Response<pb::ListLeadsResponse>, Status> {
        let p = principal(&req)?;
        let me = actor(&p);
        let body = req.into_inner();
        let mut violations = Vec::new();
        let limit = self
            .pages
            .size(body.page_size)
            .map_err(|e| violations.push(e))
            .unwrap_or(1);
        let status_filter = mapping::status_from_proto(body.status, "status")
            .map_err(|e| violations.push(e))
            .ok()
            .flatten();
        let scope = pb::LeadScope::try_from(body.scope)
            .map_err(|_| violations.push(FieldViolation::new("scope", "unknown scope")))
            .ok();
        if !body.owner_id.is_empty() && !me.supervisor && body.owner_id != me.id {
            violations.push(FieldViolation::new(
                "owner_id",
                "only managers may list another user's leads",
            ));
        }
        let binding = Binding::new(&p.tenant, "ListLeads")
            .with("caller", if me.supervisor { "" } else { &me.id })
            .with("scope", body.scope)
            .with("status", body.status)
            .with("channel", &body.source_channel)
            .with("owner", &body.owner_id);
        let after: Option<String> = paging::decode(&body.page_token, &binding)
            .map_err(|e| violations.push(e))
            .ok()
            .flatten();
        if !violations.is_empty() {
            return Err(invalid(violations));
        }
        let filter = ListFilter {
            visible_to: (!me.supervisor).then(|| me.id.clone()),
            owner: match scope {
                Some(pb::LeadScope::Mine) => Some(me.id.clone()),
                _ => (!body.owner_id.is_empty()).then(|| body.owner_id.clone()),
            },
            pool: scope == Some(pb::LeadScope::Pool),
            status: status_filter,
            channel: (!body.source_channel.is_empty()).then(|| body.source_channel.clone()),
        };
        let leads = self
            .store
            .list(&p.tenant, &filter, after.as_deref(), limit)
            .await
            .map_err(status)?;
        let next = if leads.len() as u64 == limit {
            leads
                .last()
                .map(|l| paging::encode(&l.id, &binding))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListLeadsResponse {
            leads: leads.iter().map(mapping::lead).collect(),
            next_page_token: next,
        }))
    }

    async fn update_lead(
        &self,
        req: Request<pb::UpdateLeadRequest>,
    ) -> Result<Response<pb::UpdateLeadResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        let input = body.lead.unwrap_or_default();
        required_id(&input.id, "lead.id")?;
        let paths =
            fields::mask_paths(body.update_mask.as_ref(), mapping::UPDATABLE).map_err(one)?;
        let patches = mapping::patches(&input, &paths).map_err(invalid)?;
        let config = self.config(&p.tenant).await?;
        let lead = self
            .store
            .update(
                &p.tenant,
                &input.id,
                &input.etag,
                patches,
                &actor(&p),
                &config,
                crm_store::now_micros(),
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::UpdateLeadResponse {
            lead: Some(mapping::lead(&lead)),
        }))
    }

    async fn delete_lead(
        &self,
        req: Request<pb::DeleteLeadRequest>,
    ) -> Result<Response<pb::DeleteLeadResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        required_id(&body.id, "id")?;
        self.store
            .delete(
                &p.tenant,
                &body.id,
                &body.etag,
                &actor(&p),
                crm_store::now_micros(),
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::DeleteLeadResponse {}))
    }

    async fn log_interaction(
        &self,
        req: Request<pb::LogInteractionRequest>,
    ) -> Result<Response<pb::LogInteractionResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        let now = crm_store::now_micros();
        let mut violations = Vec::new();
        let request_id = fields::request_id(&body.request_id)
            .map_err(|e| violations.push(e))
            .ok()
            .flatten()
            .unwrap_or_default();
        if body.lead_id.is_empty() {
            violations.push(FieldViolation::new("lead_id", "required"));
        }
        let input = body.interaction.clone().unwrap_or_default();
        let kind = mapping::kind_from_proto(input.kind, "interaction.kind")
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
        if input.notes.chars().count() > 10_000 {
            violations.push(FieldViolation::new(
                "interaction.notes",
                "at most 10,000 characters",
            ));
        }
        let Some(kind) = kind.filter(|_| violations.is_empty()) else {
            return Err(invalid(violations));
        };
        let hash = fields::request_hash(&body);
        let config = self.config(&p.tenant).await?;
        let key = request_key(&p.tenant, request_id, "LogInteraction", &hash);
        let (interaction, lead) = self
            .store
            .log_interaction(
                &p.tenant,
                key,
                &body.lead_id,
                kind,
                occur_time,
                &input.notes,
                &actor(&p),
                &config,
                now,
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::LogInteractionResponse {
            interaction: Some(mapping::interaction(&interaction)),
            lead: Some(mapping::lead(&lead)),
        }))
    }

    async fn list_interactions(
        &self,
        req: Request<pb::ListInteractionsRequest>,
    ) -> Result<Response<pb::ListInteractionsResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        required_id(&body.lead_id, "lead_id")?;
        let limit = self.pages.size(body.page_size).map_err(one)?;
        let binding = Binding::new(&p.tenant, "ListInteractions").with("lead", &body.lead_id);
        let after: Option<String> = paging::decode(&body.page_token, &binding).map_err(one)?;
        // Visibility of the interactions is the lead's.
        let lead = self
            .store
            .get(&p.tenant, &body.lead_id)
            .await
            .map_err(status)?;
        crate::domain::check_visible(&lead, &actor(&p)).map_err(status)?;
        let items = self
            .store
            .list_interactions(&p.tenant, &body.lead_id, after.as_deref(), limit)
            .await
            .map_err(status)?;
        let next = if items.len() as u64 == limit {
            items
                .last()
                .map(|i| paging::encode(&i.id, &binding))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListInteractionsResponse {
            interactions: items.iter().map(mapping::interaction).collect(),
            next_page_token: next,
        }))
    }

    async fn assign_lead(
        &self,
        req: Request<pb::AssignLeadRequest>,
    ) -> Result<Response<pb::AssignLeadResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        required_id(&body.id, "id")?;
        if body.owner_id.is_empty() || body.owner_id.len() > 128 {
            return Err(one(FieldViolation::new(
                "owner_id",
                "required: the sales user's id, at most 128 characters",
            )));
        }
        let config = self.config(&p.tenant).await?;
        let lead = self
            .store
            .assign(
                &p.tenant,
                &body.id,
                &body.etag,
                &body.owner_id,
                &actor(&p),
                &config,
                crm_store::now_micros(),
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::AssignLeadResponse {
            lead: Some(mapping::lead(&lead)),
        }))
    }

    async fn claim_lead(
        &self,
        req: Request<pb::ClaimLeadRequest>,
    ) -> Result<Response<pb::ClaimLeadResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        required_id(&body.id, "id")?;
        let config = self.config(&p.tenant).await?;
        let lead = self
            .store
            .claim(
                &p.tenant,
                &body.id,
                &body.etag,
                &actor(&p),
                &config,
                crm_store::now_micros(),
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ClaimLeadResponse {
            lead: Some(mapping::lead(&lead)),
        }))
    }

    async fn release_lead(
        &self,
        req: Request<pb::ReleaseLeadRequest>,
    ) -> Result<Response<pb::ReleaseLeadResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        required_id(&body.id, "id")?;
        let lead = self
            .store
            .release(
                &p.tenant,
                &body.id,
                &body.etag,
                body.reason.trim(),
                &actor(&p),
                crm_store::now_micros(),
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ReleaseLeadResponse {
            lead: Some(mapping::lead(&lead)),
        }))
    }

    async fn disqualify_lead(
        &self,
        req: Request<pb::DisqualifyLeadRequest>,
    ) -> Result<Response<pb::DisqualifyLeadResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        required_id(&body.id, "id")?;
        if body.reason.trim().is_empty() {
            return Err(one(FieldViolation::new(
                "reason",
                "required: why the lead is not a possible customer",
            )));
        }
        let lead = self
            .store
            .disqualify(
                &p.tenant,
                &body.id,
                &body.etag,
                &body.reason,
                &actor(&p),
                crm_store::now_micros(),
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::DisqualifyLeadResponse {
            lead: Some(mapping::lead(&lead)),
        }))
    }

    async fn convert_lead(
        &self,
        req: Request<pb::ConvertLeadRequest>,
    ) -> Result<Response<pb::ConvertLeadResponse>, Status> {
        let p = principal(&req)?;
        let token = crm_auth::bearer_token(&req).cloned();
        let body = req.into_inner();
        required_id(&body.id, "id")?;
        if let Some(m) = &body.amount {
            fields::money(m, "amount").map_err(one)?;
            if m.units < 0 || m.nanos < 0 {
                return Err(one(FieldViolation::new("amount", "must not be negative")));
            }
        }
        let me = actor(&p);
        let lead = self.store.get(&p.tenant, &body.id).await.map_err(status)?;
        crate::domain::check_visible(&lead, &me).map_err(status)?;
        lead.check_etag(&body.etag).map_err(status)?;
        if !crate::domain::check_convertible(&lead, &me).map_err(status)? {
            return Ok(Response::new(pb::ConvertLeadResponse {
                lead: Some(mapping::lead(&lead)),
            }));
        }
        // The opportunities service creates at most one opportunity per
        // lead, so this step may be repeated after any failure below.
        let converted = self
            .convert_remotely(&lead, token, body.opportunity_name, body.amount)
            .await?;
        let opportunity_id = converted.opportunity.map(|o| o.id).unwrap_or_default();
        let account_id = converted.account.map(|a| a.id).unwrap_or_default();
        let lead = self
            .store
            .mark_converted(
                &p.tenant,
                &body.id,
                &opportunity_id,
                &account_id,
                &me,
                crm_store::now_micros(),
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::ConvertLeadResponse {
            lead: Some(mapping::lead(&lead)),
        }))
    }

    async fn list_due_follow_ups(
        &self,
        req: Request<pb::ListDueFollowUpsRequest>,
    ) -> Result<Response<pb::ListDueFollowUpsResponse>, Status> {
        let p = principal(&req)?;
        let me = actor(&p);
        let body = req.into_inner();
        let owner = if body.owner_id.is_empty() {
            me.id.clone()
        } else {
            body.owner_id.clone()
        };
        if owner != me.id && !p.has_role(Role::Manager) {
            return Err(status(LeadError::NotManager));
        }
        let before = match &body.due_before {
            Some(ts) => fields::micros(ts, "due_before").map_err(one)?,
            None => crm_store::now_micros(),
        };
        let limit = self.pages.size(body.page_size).map_err(one)?;
        let binding = Binding::new(&p.tenant, "ListDueFollowUps")
            .with("owner", &owner)
            .with("before", before);
        let after: Option<(i64, String)> =
            paging::decode(&body.page_token, &binding).map_err(one)?;
        let leads = self
            .store
            .due(&p.tenant, &owner, before, after, limit)
            .await
            .map_err(status)?;
        let next = match leads.last() {
            Some(l) if leads.len() as u64 == limit => {
                paging::encode(&(l.attention_time().unwrap_or_default(), &l.id), &binding)
            }
            _ => String::new(),
        };
        Ok(Response::new(pb::ListDueFollowUpsResponse {
            leads: leads.iter().map(mapping::lead).collect(),
            next_page_token: next,
        }))
    }

    async fn get_channel_stats(
        &self,
        req: Request<pb::GetChannelStatsRequest>,
    ) -> Result<Response<pb::GetChannelStatsResponse>, Status> {
        let p = principal(&req)?;
        let counts = self.store.channel_counts(&p.tenant).await.map_err(status)?;
        let mut by_channel: std::collections::BTreeMap<String, pb::ChannelStats> =
            Default::default();
        for c in counts {
            let stats = by_channel
                .entry(c.channel.clone())
                .or_insert_with(|| pb::ChannelStats {
                    channel: c.channel.clone(),
                    ..Default::default()
                });
            stats.leads += c.leads;
            match c.status {
                LeadStatus::Qualified => stats.qualified += c.leads,
                LeadStatus::Converted => {
                    stats.qualified += c.leads;
                    stats.converted += c.leads;
                }
                LeadStatus::Disqualified => stats.disqualified += c.leads,
                LeadStatus::New | LeadStatus::Working | LeadStatus::Nurturing => {}
            }
        }
        let channels = by_channel
            .into_values()
            .map(|mut s| {
                s.conversion_rate = if s.leads == 0 {
                    0.0
                } else {
                    s.converted as f64 / s.leads as f64
                };
                s
            })
            .collect();
        Ok(Response::new(pb::GetChannelStatsResponse { channels }))
    }

    async fn get_lead_config(
        &self,
        req: Request<pb::GetLeadConfigRequest>,
    ) -> Result<Response<pb::GetLeadConfigResponse>, Status> {
        let p = principal(&req)?;
        let stored = self.store.config(&p.tenant).await.map_err(status)?;
        Ok(Response::new(pb::GetLeadConfigResponse {
            config: Some(mapping::config_to_proto(&stored)),
        }))
    }

    async fn update_lead_config(
        &self,
        req: Request<pb::UpdateLeadConfigRequest>,
    ) -> Result<Response<pb::UpdateLeadConfigResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        let Some(input) = body.config else {
            return Err(one(FieldViolation::new("config", "required")));
        };
        let config = mapping::config_from_proto(&input).map_err(invalid)?;
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
        Ok(Response::new(pb::UpdateLeadConfigResponse {
            config: Some(mapping::config_to_proto(&stored)),
        }))
    }

    async fn list_audit_entries(
        &self,
        req: Request<pb::ListAuditEntriesRequest>,
    ) -> Result<Response<pb::ListAuditEntriesResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        let limit = self.pages.size(body.page_size).map_err(one)?;
        let binding = Binding::new(&p.tenant, "ListAuditEntries").with("lead", &body.lead_id);
        let after: Option<String> = paging::decode(&body.page_token, &binding).map_err(one)?;
        let subject = (!body.lead_id.is_empty()).then_some(body.lead_id.as_str());
        let entries = self
            .store
            .audit_entries(&p.tenant, subject, after.as_deref(), limit)
            .await
            .map_err(status)?;
        let next = if entries.len() as u64 == limit {
            entries
                .last()
                .map(|e| paging::encode(&e.id, &binding))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListAuditEntriesResponse {
            entries: entries.into_iter().map(crm_rpc::audit_entry).collect(),
            next_page_token: next,
        }))
    }
}
