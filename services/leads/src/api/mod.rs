//! The gRPC face of the leads service: decode and authorise each request,
//! map it into the domain (`wire`), run the use case (`app`), map the answer
//! back. No SQL and no business rules live here.

use crm_auth::Principal;
use crm_proto::crm::leads::v1::{self as pb, lead_service_server::LeadService};
use crm_rpc::{
    FieldViolation, RpcError, fields,
    paging::{self, Binding, PageLimits},
};
use tonic::{Request, Response, Status};

use crate::app::{App, ConvertError, RequestKey};
use crate::domain::{Actor, Intake, LeadError, ListFilter, visibility};
use crate::wire;

const DOMAIN: &str = "crm.leads";

/// The one place a lead error becomes a gRPC status.
fn status(err: LeadError) -> Status {
    let rpc = match err {
        LeadError::Invalid(vs) => RpcError::InvalidArgument(wire::violations(vs, "lead")),
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
    Actor::new(p.subject.clone(), p.roles.clone())
}

fn required_id(id: &str, field: &str) -> Result<(), Status> {
    if id.is_empty() || id.len() > 64 {
        return Err(one(FieldViolation::new(field, "required: the lead's id")));
    }
    Ok(())
}

fn convert_status(err: ConvertError) -> Status {
    match err {
        ConvertError::Lead(err) => status(err),
        ConvertError::Unavailable(message) => RpcError::Unavailable {
            reason: "OPPORTUNITIES_UNAVAILABLE",
            message,
        }
        .into_status(DOMAIN),
        ConvertError::Refused(status) => status,
    }
}

/// The leads gRPC service.
#[derive(Clone)]
pub struct LeadsApi {
    app: App,
    pages: PageLimits,
    max_import_rows: usize,
}

impl LeadsApi {
    pub fn new(app: App, pages: PageLimits, max_import_rows: usize) -> Self {
        LeadsApi {
            app,
            pages,
            max_import_rows,
        }
    }

    async fn config(&self, tenant: &str) -> Result<crate::domain::LeadConfig, Status> {
        self.app.config(tenant).await.map_err(status)
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
        let draft = wire::draft(&input, &config).map_err(invalid)?;
        let key = request_key(&p.tenant, request_id, "CreateLead", &hash);
        let intake = Intake {
            tenant: &p.tenant,
            on_duplicate: wire::on_duplicate(body.on_duplicate).map_err(one)?,
            actor: &actor(&p),
            config: &config,
            now: crm_store::now_micros(),
        };
        let (lead, merged) = self.app.create(intake, key, &draft).await.map_err(status)?;
        Ok(Response::new(pb::CreateLeadResponse {
            lead: Some(wire::lead(&lead)),
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
        let rows: Vec<_> = body
            .leads
            .iter()
            .map(|l| wire::import_row(l, &config))
            .collect();
        let key = request_key(&p.tenant, request_id, "BatchCreateLeads", &hash);
        let intake = Intake {
            tenant: &p.tenant,
            on_duplicate: wire::on_duplicate(body.on_duplicate).map_err(one)?,
            actor: &actor(&p),
            config: &config,
            now: crm_store::now_micros(),
        };
        let outcomes = self.app.import(intake, key, &rows).await.map_err(status)?;
        let accepted = outcomes.iter().filter(|o| o.rejection.is_none()).count();
        let rejected = outcomes.len() - accepted;
        Ok(Response::new(pb::BatchCreateLeadsResponse {
            results: outcomes.into_iter().map(wire::import_result).collect(),
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
        let lead = self
            .app
            .get(&p.tenant, id, &actor(&p))
            .await
            .map_err(status)?;
        Ok(Response::new(pb::GetLeadResponse {
            lead: Some(wire::lead(&lead)),
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
        let status_filter = wire::status_from_proto(body.status, "status")
            .map_err(|e| violations.push(e))
            .ok()
            .flatten();
        let scope = wire::scope_from_proto(body.scope)
            .map_err(|e| violations.push(e))
            .unwrap_or_default();
        let filter = ListFilter::new(
            &me,
            scope,
            (!body.owner_id.is_empty()).then(|| body.owner_id.clone()),
            status_filter,
            (!body.source_channel.is_empty()).then(|| body.source_channel.clone()),
        )
        .map_err(|v| violations.push(FieldViolation::new(v.field, v.description)))
        .ok();
        // A page token is bound to what the caller may see.
        let visible = visibility(&me);
        let binding = Binding::new(&p.tenant, "ListLeads")
            .with("caller", visible.restricted_to().unwrap_or_default())
            .with("scope", body.scope)
            .with("status", body.status)
            .with("channel", &body.source_channel)
            .with("owner", &body.owner_id);
        let after: Option<String> = paging::decode(&body.page_token, &binding)
            .map_err(|e| violations.push(e))
            .ok()
            .flatten();
        let Some(filter) = filter.filter(|_| violations.is_empty()) else {
            return Err(invalid(violations));
        };
        let leads = self
            .app
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
            leads: leads.iter().map(wire::lead).collect(),
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
        let paths = fields::mask_paths(body.update_mask.as_ref(), wire::UPDATABLE).map_err(one)?;
        let patches = wire::patches(&input, &paths).map_err(invalid)?;
        let config = self.config(&p.tenant).await?;
        let lead = self
            .app
            .update(
                &p.tenant,
                &input.id,
                &input.etag,
                &patches,
                &actor(&p),
                &config,
                crm_store::now_micros(),
            )
            .await
            .map_err(status)?;
        Ok(Response::new(pb::UpdateLeadResponse {
            lead: Some(wire::lead(&lead)),
        }))
    }

    async fn delete_lead(
        &self,
        req: Request<pb::DeleteLeadRequest>,
    ) -> Result<Response<pb::DeleteLeadResponse>, Status> {
        let p = principal(&req)?;
        let body = req.into_inner();
        required_id(&body.id, "id")?;
        self.app
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
            .app
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
            interaction: Some(wire::interaction(&interaction)),
            lead: Some(wire::lead(&lead)),
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
        let items = self
            .app
            .interactions(
                &p.tenant,
                &body.lead_id,
                &actor(&p),
                after.as_deref(),
                limit,
            )
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
            interactions: items.iter().map(wire::interaction).collect(),
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
            .app
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
            lead: Some(wire::lead(&lead)),
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
            .app
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
            lead: Some(wire::lead(&lead)),
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
            .app
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
            lead: Some(wire::lead(&lead)),
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
            .app
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
            lead: Some(wire::lead(&lead)),
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
        let lead = self
            .app
            .convert(
                &p.tenant,
                &body.id,
                &body.etag,
                &actor(&p),
                token,
                body.opportunity_name,
                body.amount,
                crm_store::now_micros(),
            )
            .await
            .map_err(convert_status)?;
        Ok(Response::new(pb::ConvertLeadResponse {
            lead: Some(wire::lead(&lead)),
        }))
    }

    async fn list_due_follow_ups(
        &self,
        req: Request<pb::ListDueFollowUpsRequest>,
    ) -> Result<Response<pb::ListDueFollowUpsResponse>, Status> {
        let p = principal(&req)?;
        let me = actor(&p);
        let body = req.into_inner();
        let owner = self.app.due_owner(&me, &body.owner_id).map_err(status)?;
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
            .app
            .due(&p.tenant, &me, &owner, before, after, limit)
            .await
            .map_err(status)?;
        let next = match leads.last() {
            Some(l) if leads.len() as u64 == limit => {
                paging::encode(&(l.attention_time().unwrap_or_default(), &l.id), &binding)
            }
            _ => String::new(),
        };
        Ok(Response::new(pb::ListDueFollowUpsResponse {
            leads: leads.iter().map(wire::lead).collect(),
            next_page_token: next,
        }))
    }

    async fn get_channel_stats(
        &self,
        req: Request<pb::GetChannelStatsRequest>,
    ) -> Result<Response<pb::GetChannelStatsResponse>, Status> {
        let p = principal(&req)?;
        let stats = self.app.channel_stats(&p.tenant).await.map_err(status)?;
        let channels = stats.into_iter().map(wire::channel_stats).collect();
        Ok(Response::new(pb::GetChannelStatsResponse { channels }))
    }

    async fn get_lead_config(
        &self,
        req: Request<pb::GetLeadConfigRequest>,
    ) -> Result<Response<pb::GetLeadConfigResponse>, Status> {
        let p = principal(&req)?;
        let stored = self.app.stored_config(&p.tenant).await.map_err(status)?;
        Ok(Response::new(pb::GetLeadConfigResponse {
            config: Some(wire::config_to_proto(&stored)),
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
        let config = wire::config_from_proto(&input).map_err(invalid)?;
        let stored = self
            .app
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
            config: Some(wire::config_to_proto(&stored)),
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
            .app
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
