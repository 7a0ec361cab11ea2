//! The gRPC face of the contracts service: each handler gets the request's
//! context and message (`ContractError::handle`), maps it into the
//! domain's values (`wire`), runs the use case (`app`) and maps the answer
//! back. No SQL and no rules here.

mod error;

use std::time::Instant;

use crm_proto::crm::contracts::v1::{self as pb, contract_service_server::ContractService};
use crm_rpc::{
    DomainError, FieldViolation, RpcError,
    fields::{self, Lines},
    paging::{self, Binding, PageLimits},
    required_id,
};
use crm_service::{AuditTrail, ConfigWire, Replay, TenantConfigs};
use tonic::{Request, Response, Status};

use crate::app::{DecisionInput, Page, SignatureInput, UseCases};
use crate::domain::{ContractError, ContractFilter, ContractsConfig, MilestoneFilter, Visibility};
use crate::wire;

/// The caller's deadline (`grpc-timeout`), which calls to other services
/// must not outlast.
fn deadline<T>(req: &Request<T>) -> Option<Instant> {
    req.metadata()
        .as_ref()
        .get(crm_server::grpc::GRPC_TIMEOUT)
        .and_then(crm_server::grpc::parse_grpc_timeout)
        .and_then(|left| Instant::now().checked_add(left))
}

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

fn text(value: &str, field: &str, max: usize) -> Result<(), FieldViolation> {
    fields::text(value, field, max, Lines::Single)
}

fn required_text(value: &str, field: &str, max: usize) -> Result<(), FieldViolation> {
    if value.trim().is_empty() {
        return Err(FieldViolation::new(field, "required"));
    }
    text(value, field, max)
}

#[derive(Clone)]
pub struct ContractsApi {
    app: UseCases,
    pages: PageLimits,
    configs: TenantConfigs<ContractsConfig, pb::ContractsConfig>,
    audit: AuditTrail,
}

impl ContractsApi {
    pub fn new(app: UseCases, pages: PageLimits) -> Self {
        ContractsApi {
            configs: TenantConfigs::new(
                app.db().clone(),
                app.defaults().clone(),
                "contracts-config",
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

fn contract(c: &crate::domain::Contract) -> Option<pb::Contract> {
    Some(wire::contract_pb(c))
}

#[tonic::async_trait]
impl ContractService for ContractsApi {
    async fn create_contract(
        &self,
        req: Request<pb::CreateContractRequest>,
    ) -> Result<Response<pb::CreateContractResponse>, Status> {
        let deadline = deadline(&req);
        let token = crm_auth::bearer_token(&req).cloned();
        ContractError::handle(req, |mut ctx, body| async move {
            ctx.replayable(&body.request_id, &body)?;
            let input = body.contract.unwrap_or_default();
            required_id(&input.opportunity_id, "contract.opportunity_id")?;
            let patch = wire::draft_patch(&input, None)?;
            let key = ctx.request_key();
            let created = self
                .app
                .create(
                    &ctx.caller,
                    &ctx.tenant,
                    key,
                    &input.opportunity_id,
                    patch,
                    token.as_ref(),
                    deadline,
                )
                .await?;
            Ok(pb::CreateContractResponse {
                contract: contract(&created),
            })
        })
        .await
    }

    async fn get_contract(
        &self,
        req: Request<pb::GetContractRequest>,
    ) -> Result<Response<pb::GetContractResponse>, Status> {
        ContractError::handle(req, |ctx, body| async move {
            required_id(&body.id, "id")?;
            let c = self.app.get(&ctx.caller, &ctx.tenant, &body.id).await?;
            Ok(pb::GetContractResponse {
                contract: contract(&c),
            })
        })
        .await
    }

    async fn list_contracts(
        &self,
        req: Request<pb::ListContractsRequest>,
    ) -> Result<Response<pb::ListContractsResponse>, Status> {
        ContractError::handle(req, |ctx, body| async move {
            fields::id(&body.account_id, "account_id")?;
            fields::id(&body.owner_id, "owner_id")?;
            let status = wire::status(body.status, "status")?;
            let ending_before = body
                .ending_before
                .as_ref()
                .map(|d| wire::date(d, "ending_before"))
                .transpose()?;
            let visibility = Visibility::of(&ctx.caller);
            let caller = match &visibility {
                Visibility::Tenant => String::new(),
                Visibility::Member(person) => person.clone(),
            };
            // A page token is bound to whose list and which filters.
            let binding = ctx
                .binding()
                .with("caller", &caller)
                .with("status", body.status)
                .with("account", &body.account_id)
                .with("owner", &body.owner_id)
                .with(
                    "ending_before",
                    ending_before.map(|d| d.iso()).unwrap_or_default(),
                );
            let page = self.page::<String>(body.page_size, &body.page_token, binding)?;
            let filter = ContractFilter {
                visibility,
                status,
                account_id: non_empty(&body.account_id),
                owner_id: non_empty(&body.owner_id),
                ending_before,
            };
            let items = self
                .app
                .list(
                    &ctx.tenant,
                    &filter,
                    Page {
                        after: page.after.as_ref(),
                        limit: page.limit,
                    },
                )
                .await?;
            Ok(pb::ListContractsResponse {
                next_page_token: page.next_token(&items, |c| c.id.clone()),
                contracts: items.iter().map(wire::contract_pb).collect(),
            })
        })
        .await
    }

    async fn update_contract(
        &self,
        req: Request<pb::UpdateContractRequest>,
    ) -> Result<Response<pb::UpdateContractResponse>, Status> {
        ContractError::handle(req, |ctx, body| async move {
            let input = body.contract.unwrap_or_default();
            required_id(&input.id, "contract.id")?;
            let paths = fields::mask_paths(body.update_mask.as_ref(), wire::UPDATE_PATHS)?;
            let patch = wire::draft_patch(&input, Some(&paths))?;
            let c = self
                .app
                .update(&ctx.caller, &ctx.tenant, &input.id, &input.etag, patch)
                .await?;
            Ok(pb::UpdateContractResponse {
                contract: contract(&c),
            })
        })
        .await
    }

    async fn submit_contract(
        &self,
        req: Request<pb::SubmitContractRequest>,
    ) -> Result<Response<pb::SubmitContractResponse>, Status> {
        ContractError::handle(req, |ctx, body| async move {
            required_id(&body.id, "id")?;
            let c = self
                .app
                .submit(&ctx.caller, &ctx.tenant, &body.id, &body.etag)
                .await?;
            Ok(pb::SubmitContractResponse {
                contract: contract(&c),
            })
        })
        .await
    }

    async fn decide_contract_approval(
        &self,
        req: Request<pb::DecideContractApprovalRequest>,
    ) -> Result<Response<pb::DecideContractApprovalResponse>, Status> {
        ContractError::handle(req, |ctx, body| async move {
            required_id(&body.id, "id")?;
            fields::id(&body.approval_id, "approval_id")?;
            fields::id(&body.on_behalf_of, "on_behalf_of")?;
            fields::text(
                &body.comment,
                "comment",
                fields::MAX_NOTES_CHARS,
                Lines::Multi,
            )?;
            if body.step < 1 {
                return Err(
                    FieldViolation::new("step", "required: the 1-based step number").into(),
                );
            }
            let input = DecisionInput {
                step: body.step,
                approval_id: body.approval_id,
                decision: wire::decision(body.decision)?,
                comment: body.comment,
                on_behalf_of: body.on_behalf_of,
            };
            let c = self
                .app
                .decide(&ctx.caller, &ctx.tenant, &body.id, &body.etag, input)
                .await?;
            Ok(pb::DecideContractApprovalResponse {
                contract: contract(&c),
            })
        })
        .await
    }

    async fn list_approval_inbox(
        &self,
        req: Request<pb::ListApprovalInboxRequest>,
    ) -> Result<Response<pb::ListApprovalInboxResponse>, Status> {
        ContractError::handle(req, |ctx, body| async move {
            let mut roles: Vec<&str> = ctx.caller.roles.iter().map(|r| r.as_str()).collect();
            roles.sort_unstable();
            let binding = ctx
                .binding()
                .with("caller", &ctx.caller.id)
                .with("roles", roles.join(","));
            let page = self.page::<(i64, String)>(body.page_size, &body.page_token, binding)?;
            let items = self
                .app
                .inbox(
                    &ctx.caller,
                    &ctx.tenant,
                    Page {
                        after: page.after.as_ref(),
                        limit: page.limit,
                    },
                )
                .await?;
            let next_page_token = page.next_token(&items, |c| {
                let since = c
                    .pending_step()
                    .and_then(|(_, info)| info.start_time)
                    .unwrap_or_default();
                (since, c.id.clone())
            });
            Ok(pb::ListApprovalInboxResponse {
                next_page_token,
                items: items
                    .iter()
                    .map(|c| pb::InboxItem {
                        contract: contract(c),
                        step: c
                            .approval
                            .as_ref()
                            .and_then(|a| a.pending().map(|(i, _, _)| wire::step_pb(a, i))),
                    })
                    .collect(),
            })
        })
        .await
    }

    async fn send_for_signature(
        &self,
        req: Request<pb::SendForSignatureRequest>,
    ) -> Result<Response<pb::SendForSignatureResponse>, Status> {
        ContractError::handle(req, |ctx, body| async move {
            required_id(&body.id, "id")?;
            let mut bad = Vec::new();
            if let Err(v) = required_text(&body.provider, "provider", fields::MAX_SHORT_CHARS) {
                bad.push(v);
            }
            if let Err(v) = required_text(&body.envelope_id, "envelope_id", fields::MAX_NAME_CHARS)
            {
                bad.push(v);
            }
            if !bad.is_empty() {
                return Err(bad.into());
            }
            let c = self
                .app
                .send_for_signature(
                    &ctx.caller,
                    &ctx.tenant,
                    &body.id,
                    &body.etag,
                    body.provider.trim(),
                    body.envelope_id.trim(),
                )
                .await?;
            Ok(pb::SendForSignatureResponse {
                contract: contract(&c),
            })
        })
        .await
    }

    async fn record_signature(
        &self,
        req: Request<pb::RecordSignatureRequest>,
    ) -> Result<Response<pb::RecordSignatureResponse>, Status> {
        ContractError::handle(req, |ctx, body| async move {
            required_id(&body.id, "id")?;
            let mut bad = Vec::new();
            let mut keep = |r: Result<(), FieldViolation>| {
                if let Err(v) = r {
                    bad.push(v);
                }
            };
            keep(required_text(
                &body.envelope_id,
                "envelope_id",
                fields::MAX_NAME_CHARS,
            ));
            keep(required_text(
                &body.signer,
                "signer",
                fields::MAX_NAME_CHARS,
            ));
            keep(fields::text(
                &body.decline_reason,
                "decline_reason",
                fields::MAX_NOTES_CHARS,
                Lines::Multi,
            ));
            let outcome = wire::outcome(body.outcome).map_err(|v| bad.push(v)).ok();
            let time = body
                .outcome_time
                .as_ref()
                .map(|t| fields::micros(t, "outcome_time"))
                .transpose()
                .map_err(|v| bad.push(v))
                .ok()
                .flatten();
            let Some(outcome) = outcome.filter(|_| bad.is_empty()) else {
                return Err(bad.into());
            };
            let input = SignatureInput {
                envelope_id: body.envelope_id.trim().to_owned(),
                outcome,
                signer: body.signer.trim().to_owned(),
                time: time.unwrap_or(ctx.now),
                decline_reason: body.decline_reason,
            };
            let c = self
                .app
                .record_signature(&ctx.caller, &ctx.tenant, &body.id, &body.etag, input)
                .await?;
            Ok(pb::RecordSignatureResponse {
                contract: contract(&c),
            })
        })
        .await
    }

    async fn terminate_contract(
        &self,
        req: Request<pb::TerminateContractRequest>,
    ) -> Result<Response<pb::TerminateContractResponse>, Status> {
        ContractError::handle(req, |ctx, body| async move {
            required_id(&body.id, "id")?;
            fields::text(
                &body.reason,
                "reason",
                fields::MAX_NOTES_CHARS,
                Lines::Multi,
            )?;
            let c = self
                .app
                .terminate(&ctx.caller, &ctx.tenant, &body.id, &body.etag, &body.reason)
                .await?;
            Ok(pb::TerminateContractResponse {
                contract: contract(&c),
            })
        })
        .await
    }

    async fn amend_contract(
        &self,
        req: Request<pb::AmendContractRequest>,
    ) -> Result<Response<pb::AmendContractResponse>, Status> {
        ContractError::handle(req, |mut ctx, body| async move {
            ctx.replayable(&body.request_id, &body)?;
            required_id(&body.id, "id")?;
            fields::text(
                &body.reason,
                "reason",
                fields::MAX_NOTES_CHARS,
                Lines::Multi,
            )?;
            let key = ctx.request_key();
            let c = self
                .app
                .amend(
                    &ctx.caller,
                    &ctx.tenant,
                    key,
                    &body.id,
                    &body.etag,
                    &body.reason,
                )
                .await?;
            Ok(pb::AmendContractResponse {
                contract: contract(&c),
            })
        })
        .await
    }

    async fn list_contract_versions(
        &self,
        req: Request<pb::ListContractVersionsRequest>,
    ) -> Result<Response<pb::ListContractVersionsResponse>, Status> {
        ContractError::handle(req, |ctx, body| async move {
            required_id(&body.id, "id")?;
            let versions = self
                .app
                .versions(&ctx.caller, &ctx.tenant, &body.id)
                .await?;
            Ok(pb::ListContractVersionsResponse {
                contracts: versions.iter().map(wire::contract_pb).collect(),
            })
        })
        .await
    }

    async fn list_payment_milestones(
        &self,
        req: Request<pb::ListPaymentMilestonesRequest>,
    ) -> Result<Response<pb::ListPaymentMilestonesResponse>, Status> {
        ContractError::handle(req, |ctx, body| async move {
            fields::id(&body.account_id, "account_id")?;
            let status = wire::milestone_status(body.status, "status")?;
            let due_before = body
                .due_before
                .as_ref()
                .map(|d| wire::date(d, "due_before"))
                .transpose()?;
            let binding = ctx
                .binding()
                .with("status", body.status)
                .with(
                    "due_before",
                    due_before.map(|d| d.iso()).unwrap_or_default(),
                )
                .with("account", &body.account_id);
            let page = self.page::<(String, String)>(body.page_size, &body.page_token, binding)?;
            let filter = MilestoneFilter {
                status,
                due_before,
                account_id: non_empty(&body.account_id),
            };
            let items = self
                .app
                .milestones(
                    &ctx.tenant,
                    &filter,
                    Page {
                        after: page.after.as_ref(),
                        limit: page.limit,
                    },
                )
                .await?;
            Ok(pb::ListPaymentMilestonesResponse {
                next_page_token: page.next_token(&items, |r| {
                    (r.milestone.due_date.iso(), r.milestone.id.clone())
                }),
                milestones: items
                    .iter()
                    .map(|r| wire::milestone_pb(&r.milestone, &r.contract_id, &r.account_id))
                    .collect(),
            })
        })
        .await
    }

    async fn record_payment(
        &self,
        req: Request<pb::RecordPaymentRequest>,
    ) -> Result<Response<pb::RecordPaymentResponse>, Status> {
        ContractError::handle(req, |ctx, body| async move {
            required_id(&body.milestone_id, "milestone_id")?;
            required_text(&body.erp_reference, "erp_reference", fields::MAX_NAME_CHARS)?;
            let status = wire::milestone_status(body.status, "status")?.ok_or_else(|| {
                FieldViolation::new(
                    "status",
                    "required: MILESTONE_STATUS_INVOICED or MILESTONE_STATUS_PAID",
                )
            })?;
            let time = body
                .time
                .as_ref()
                .map(|t| fields::micros(t, "time"))
                .transpose()?;
            let r = self
                .app
                .record_payment(
                    &ctx.caller,
                    &ctx.tenant,
                    &body.milestone_id,
                    &body.etag,
                    status,
                    body.erp_reference.trim(),
                    time,
                )
                .await?;
            Ok(pb::RecordPaymentResponse {
                milestone: Some(wire::milestone_pb(
                    &r.milestone,
                    &r.contract_id,
                    &r.account_id,
                )),
            })
        })
        .await
    }

    async fn get_contracts_config(
        &self,
        req: Request<pb::GetContractsConfigRequest>,
    ) -> Result<Response<pb::GetContractsConfigResponse>, Status> {
        ContractError::handle(req, |ctx, _body| async move {
            Ok(pb::GetContractsConfigResponse {
                config: Some(self.configs.get(&ctx).await?),
            })
        })
        .await
    }

    async fn update_contracts_config(
        &self,
        req: Request<pb::UpdateContractsConfigRequest>,
    ) -> Result<Response<pb::UpdateContractsConfigResponse>, Status> {
        ContractError::handle(req, |ctx, body| async move {
            Ok(pb::UpdateContractsConfigResponse {
                config: Some(self.configs.replace(&ctx, body.config).await?),
            })
        })
        .await
    }

    async fn list_audit_entries(
        &self,
        req: Request<pb::ListAuditEntriesRequest>,
    ) -> Result<Response<pb::ListAuditEntriesResponse>, Status> {
        ContractError::handle(req, |ctx, body| async move {
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
