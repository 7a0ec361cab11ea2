//! The gRPC face of the tickets service: each handler gets the request's
//! context and message (`TicketError::handle`), maps it into the domain's
//! values (`wire`), runs the use case (`app`) and maps the answer back. No
//! SQL and no rules here.

mod error;

use crm_proto::crm::tickets::v1::{self as pb, ticket_service_server::TicketService};
use crm_rpc::{
    DomainError, FieldViolation, RpcError,
    fields::{self, Lines},
    paging::{self, Binding, PageLimits},
    required_id,
};
use crm_service::{AuditTrail, ConfigWire, Replay, TenantConfigs};
use tonic::{Request, Response, Status};

use crate::app::{Move, Page, PurchaseInput, SimilarQuery, UseCases};
use crate::domain::{TicketError, TicketFilter, TicketsConfig};
use crate::wire;

/// The most similar solutions one call returns.
const MAX_SIMILAR: i32 = 20;

fn non_empty(s: &str) -> Option<String> {
    (!s.is_empty()).then(|| s.to_owned())
}

fn short_text(value: &str, field: &str) -> Result<(), FieldViolation> {
    fields::text(value, field, 500, Lines::Single)
}

fn score(
    value: i32,
    field: &str,
    range: std::ops::RangeInclusive<i32>,
) -> Result<u8, FieldViolation> {
    if range.contains(&value) {
        u8::try_from(value).map_err(|_| FieldViolation::new(field, "out of range"))
    } else {
        Err(FieldViolation::new(
            field,
            format!("must be {}-{}", range.start(), range.end()),
        ))
    }
}

#[derive(Clone)]
pub struct TicketsApi {
    app: UseCases,
    pages: PageLimits,
    configs: TenantConfigs<TicketsConfig, pb::TicketsConfig>,
    audit: AuditTrail,
}

impl TicketsApi {
    pub fn new(app: UseCases, pages: PageLimits) -> Self {
        TicketsApi {
            configs: TenantConfigs::new(
                app.db().clone(),
                app.defaults().clone(),
                "tickets-config",
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

    async fn engineer_pb(
        &self,
        tenant: &str,
        e: &crate::domain::Engineer,
    ) -> Result<pb::Engineer, TicketError> {
        let loads = self
            .app
            .open_load(tenant, std::slice::from_ref(&e.id))
            .await?;
        Ok(wire::engineer_pb(
            e,
            loads.get(&e.id).copied().unwrap_or_default(),
        ))
    }
}

fn ticket(t: &crate::domain::Ticket) -> Option<pb::Ticket> {
    Some(wire::ticket_pb(t))
}

fn solutions(s: &[crate::domain::Solution]) -> Vec<pb::SimilarSolution> {
    s.iter()
        .enumerate()
        .map(|(i, s)| wire::solution_pb(s, i + 1))
        .collect()
}

#[tonic::async_trait]
impl TicketService for TicketsApi {
    async fn create_entitlement(
        &self,
        req: Request<pb::CreateEntitlementRequest>,
    ) -> Result<Response<pb::CreateEntitlementResponse>, Status> {
        TicketError::handle(req, |mut ctx, body| async move {
            ctx.replayable(&body.request_id, &body)?;
            let input = wire::entitlement_input(&body.entitlement.unwrap_or_default())?;
            let e = self
                .app
                .create_entitlement(&ctx.caller, &ctx.tenant, ctx.request_key(), input)
                .await?;
            Ok(pb::CreateEntitlementResponse {
                entitlement: Some(wire::entitlement_pb(&e)),
            })
        })
        .await
    }

    async fn get_entitlement(
        &self,
        req: Request<pb::GetEntitlementRequest>,
    ) -> Result<Response<pb::GetEntitlementResponse>, Status> {
        TicketError::handle(req, |ctx, body| async move {
            required_id(&body.id, "id")?;
            let e = self.app.get_entitlement(&ctx.tenant, &body.id).await?;
            Ok(pb::GetEntitlementResponse {
                entitlement: Some(wire::entitlement_pb(&e)),
            })
        })
        .await
    }

    async fn list_entitlements(
        &self,
        req: Request<pb::ListEntitlementsRequest>,
    ) -> Result<Response<pb::ListEntitlementsResponse>, Status> {
        TicketError::handle(req, |ctx, body| async move {
            fields::id(&body.account_id, "account_id")?;
            let binding = ctx.binding().with("account", &body.account_id);
            let page = self.page::<String>(body.page_size, &body.page_token, binding)?;
            let items = self
                .app
                .list_entitlements(
                    &ctx.tenant,
                    non_empty(&body.account_id).as_deref(),
                    Page {
                        after: page.after.as_ref(),
                        limit: page.limit,
                    },
                )
                .await?;
            Ok(pb::ListEntitlementsResponse {
                next_page_token: page.next_token(&items, |e| e.id.clone()),
                entitlements: items.iter().map(wire::entitlement_pb).collect(),
            })
        })
        .await
    }

    async fn create_ticket(
        &self,
        req: Request<pb::CreateTicketRequest>,
    ) -> Result<Response<pb::CreateTicketResponse>, Status> {
        TicketError::handle(req, |mut ctx, body| async move {
            ctx.replayable(&body.request_id, &body)?;
            let input = wire::new_ticket(&body.ticket.unwrap_or_default())?;
            let (t, similar) = self
                .app
                .create_ticket(&ctx.caller, &ctx.tenant, ctx.request_key(), input)
                .await?;
            Ok(pb::CreateTicketResponse {
                ticket: ticket(&t),
                similar_solutions: solutions(&similar),
            })
        })
        .await
    }

    async fn get_ticket(
        &self,
        req: Request<pb::GetTicketRequest>,
    ) -> Result<Response<pb::GetTicketResponse>, Status> {
        TicketError::handle(req, |ctx, body| async move {
            required_id(&body.id, "id")?;
            let t = self
                .app
                .get_ticket(&ctx.caller, &ctx.tenant, &body.id)
                .await?;
            Ok(pb::GetTicketResponse { ticket: ticket(&t) })
        })
        .await
    }

    async fn list_tickets(
        &self,
        req: Request<pb::ListTicketsRequest>,
    ) -> Result<Response<pb::ListTicketsResponse>, Status> {
        TicketError::handle(req, |ctx, body| async move {
            let mut bad = Vec::new();
            for (v, f) in [
                (&body.assignee_id, "assignee_id"),
                (&body.account_id, "account_id"),
            ] {
                if let Err(e) = fields::id(v, f) {
                    bad.push(e);
                }
            }
            let status = wire::status_filter(body.status, "status")
                .map_err(|e| bad.push(e))
                .ok()
                .flatten();
            let priority = wire::priority_filter(body.priority, "priority")
                .map_err(|e| bad.push(e))
                .ok()
                .flatten();
            if !bad.is_empty() {
                return Err(bad.into());
            }
            // A page token is bound to whose list and which filters.
            let binding = ctx
                .binding()
                .with("caller", &ctx.caller.id)
                .with("status", body.status)
                .with("assignee", &body.assignee_id)
                .with("account", &body.account_id)
                .with("priority", body.priority)
                .with("breached", body.breached);
            let page = self.page::<String>(body.page_size, &body.page_token, binding)?;
            let filter = TicketFilter {
                status,
                assignee_id: non_empty(&body.assignee_id),
                account_id: non_empty(&body.account_id),
                priority,
                breached: body.breached,
            };
            let items = self
                .app
                .list_tickets(
                    &ctx.caller,
                    &ctx.tenant,
                    &filter,
                    Page {
                        after: page.after.as_ref(),
                        limit: page.limit,
                    },
                )
                .await?;
            Ok(pb::ListTicketsResponse {
                next_page_token: page.next_token(&items, |t| t.id.clone()),
                tickets: items.iter().map(wire::ticket_pb).collect(),
            })
        })
        .await
    }

    async fn update_ticket(
        &self,
        req: Request<pb::UpdateTicketRequest>,
    ) -> Result<Response<pb::UpdateTicketResponse>, Status> {
        TicketError::handle(req, |ctx, body| async move {
            let input = body.ticket.unwrap_or_default();
            required_id(&input.id, "ticket.id")?;
            let paths = fields::mask_paths(body.update_mask.as_ref(), wire::UPDATE_PATHS)?;
            let patch = wire::ticket_patch(&input, &paths)?;
            let t = self
                .app
                .update_ticket(&ctx.caller, &ctx.tenant, &input.id, &input.etag, patch)
                .await?;
            Ok(pb::UpdateTicketResponse { ticket: ticket(&t) })
        })
        .await
    }

    async fn assign_ticket(
        &self,
        req: Request<pb::AssignTicketRequest>,
    ) -> Result<Response<pb::AssignTicketResponse>, Status> {
        TicketError::handle(req, |ctx, body| async move {
            required_id(&body.id, "id")?;
            required_id(&body.assignee_id, "assignee_id")?;
            short_text(&body.reason, "reason")?;
            let t = self
                .app
                .assign_ticket(
                    &ctx.caller,
                    &ctx.tenant,
                    &body.id,
                    &body.etag,
                    &body.assignee_id,
                    &body.reason,
                )
                .await?;
            Ok(pb::AssignTicketResponse { ticket: ticket(&t) })
        })
        .await
    }

    async fn start_ticket(
        &self,
        req: Request<pb::StartTicketRequest>,
    ) -> Result<Response<pb::StartTicketResponse>, Status> {
        TicketError::handle(req, |ctx, body| async move {
            required_id(&body.id, "id")?;
            let t = self
                .app
                .transition(
                    &ctx.caller,
                    &ctx.tenant,
                    &body.id,
                    &body.etag,
                    Move::Start,
                    "",
                )
                .await?;
            Ok(pb::StartTicketResponse { ticket: ticket(&t) })
        })
        .await
    }

    async fn wait_on_customer(
        &self,
        req: Request<pb::WaitOnCustomerRequest>,
    ) -> Result<Response<pb::WaitOnCustomerResponse>, Status> {
        TicketError::handle(req, |ctx, body| async move {
            required_id(&body.id, "id")?;
            short_text(&body.reason, "reason")?;
            let t = self
                .app
                .transition(
                    &ctx.caller,
                    &ctx.tenant,
                    &body.id,
                    &body.etag,
                    Move::Wait,
                    &body.reason,
                )
                .await?;
            Ok(pb::WaitOnCustomerResponse { ticket: ticket(&t) })
        })
        .await
    }

    async fn resume_ticket(
        &self,
        req: Request<pb::ResumeTicketRequest>,
    ) -> Result<Response<pb::ResumeTicketResponse>, Status> {
        TicketError::handle(req, |ctx, body| async move {
            required_id(&body.id, "id")?;
            let t = self
                .app
                .transition(
                    &ctx.caller,
                    &ctx.tenant,
                    &body.id,
                    &body.etag,
                    Move::Resume,
                    "",
                )
                .await?;
            Ok(pb::ResumeTicketResponse { ticket: ticket(&t) })
        })
        .await
    }

    async fn resolve_ticket(
        &self,
        req: Request<pb::ResolveTicketRequest>,
    ) -> Result<Response<pb::ResolveTicketResponse>, Status> {
        TicketError::handle(req, |ctx, body| async move {
            required_id(&body.id, "id")?;
            if body.resolution.trim().is_empty() {
                return Err(FieldViolation::new("resolution", "required").into());
            }
            fields::text(
                &body.resolution,
                "resolution",
                fields::MAX_NOTES_CHARS,
                Lines::Multi,
            )?;
            let t = self
                .app
                .resolve_ticket(
                    &ctx.caller,
                    &ctx.tenant,
                    &body.id,
                    &body.etag,
                    &body.resolution,
                )
                .await?;
            Ok(pb::ResolveTicketResponse { ticket: ticket(&t) })
        })
        .await
    }

    async fn close_ticket(
        &self,
        req: Request<pb::CloseTicketRequest>,
    ) -> Result<Response<pb::CloseTicketResponse>, Status> {
        TicketError::handle(req, |ctx, body| async move {
            required_id(&body.id, "id")?;
            let t = self
                .app
                .transition(
                    &ctx.caller,
                    &ctx.tenant,
                    &body.id,
                    &body.etag,
                    Move::Close,
                    "",
                )
                .await?;
            Ok(pb::CloseTicketResponse { ticket: ticket(&t) })
        })
        .await
    }

    async fn reopen_ticket(
        &self,
        req: Request<pb::ReopenTicketRequest>,
    ) -> Result<Response<pb::ReopenTicketResponse>, Status> {
        TicketError::handle(req, |ctx, body| async move {
            required_id(&body.id, "id")?;
            short_text(&body.reason, "reason")?;
            let t = self
                .app
                .reopen_ticket(&ctx.caller, &ctx.tenant, &body.id, &body.etag, &body.reason)
                .await?;
            Ok(pb::ReopenTicketResponse { ticket: ticket(&t) })
        })
        .await
    }

    async fn add_comment(
        &self,
        req: Request<pb::AddCommentRequest>,
    ) -> Result<Response<pb::AddCommentResponse>, Status> {
        TicketError::handle(req, |mut ctx, body| async move {
            ctx.replayable(&body.request_id, &body)?;
            let c = body.comment.clone().unwrap_or_default();
            required_id(&c.ticket_id, "comment.ticket_id")?;
            let mut bad = Vec::new();
            if c.body.trim().is_empty() {
                bad.push(FieldViolation::new("comment.body", "required"));
            } else if let Err(e) = fields::text(
                &c.body,
                "comment.body",
                fields::MAX_NOTES_CHARS,
                Lines::Multi,
            ) {
                bad.push(e);
            }
            let visibility = wire::visibility(c.visibility, "comment.visibility")
                .map_err(|e| bad.push(e))
                .ok();
            let Some(visibility) = visibility.filter(|_| bad.is_empty()) else {
                return Err(bad.into());
            };
            let (comment, t) = self
                .app
                .add_comment(
                    &ctx.caller,
                    &ctx.tenant,
                    ctx.request_key(),
                    &c.ticket_id,
                    &c.body,
                    visibility,
                )
                .await?;
            Ok(pb::AddCommentResponse {
                comment: Some(wire::comment_pb(&comment)),
                ticket: ticket(&t),
            })
        })
        .await
    }

    async fn list_comments(
        &self,
        req: Request<pb::ListCommentsRequest>,
    ) -> Result<Response<pb::ListCommentsResponse>, Status> {
        TicketError::handle(req, |ctx, body| async move {
            required_id(&body.ticket_id, "ticket_id")?;
            let binding = ctx
                .binding()
                .with("caller", &ctx.caller.id)
                .with("ticket", &body.ticket_id);
            let page = self.page::<String>(body.page_size, &body.page_token, binding)?;
            let items = self
                .app
                .list_comments(
                    &ctx.caller,
                    &ctx.tenant,
                    &body.ticket_id,
                    Page {
                        after: page.after.as_ref(),
                        limit: page.limit,
                    },
                )
                .await?;
            Ok(pb::ListCommentsResponse {
                next_page_token: page.next_token(&items, |c| c.id.clone()),
                comments: items.iter().map(wire::comment_pb).collect(),
            })
        })
        .await
    }

    async fn upsert_engineer(
        &self,
        req: Request<pb::UpsertEngineerRequest>,
    ) -> Result<Response<pb::UpsertEngineerResponse>, Status> {
        TicketError::handle(req, |ctx, body| async move {
            let input = wire::engineer_input(&body.engineer.unwrap_or_default())?;
            let (e, _) = self
                .app
                .upsert_engineer(
                    &ctx.caller,
                    &ctx.tenant,
                    crate::app::EngineerInput {
                        id: input.id,
                        etag: input.etag,
                        display_name: input.display_name,
                        skills: input.skills,
                        on_duty: Some(input.on_duty),
                    },
                )
                .await?;
            Ok(pb::UpsertEngineerResponse {
                engineer: Some(self.engineer_pb(&ctx.tenant, &e).await?),
            })
        })
        .await
    }

    async fn get_engineer(
        &self,
        req: Request<pb::GetEngineerRequest>,
    ) -> Result<Response<pb::GetEngineerResponse>, Status> {
        TicketError::handle(req, |ctx, body| async move {
            required_id(&body.id, "id")?;
            let e = self
                .app
                .engineer(&ctx.caller, &ctx.tenant, &body.id)
                .await?;
            Ok(pb::GetEngineerResponse {
                engineer: Some(self.engineer_pb(&ctx.tenant, &e).await?),
            })
        })
        .await
    }

    async fn list_engineers(
        &self,
        req: Request<pb::ListEngineersRequest>,
    ) -> Result<Response<pb::ListEngineersResponse>, Status> {
        TicketError::handle(req, |ctx, body| async move {
            let binding = ctx.binding().with("on_duty", body.on_duty_only);
            let page = self.page::<String>(body.page_size, &body.page_token, binding)?;
            let items = self
                .app
                .list_engineers(
                    &ctx.tenant,
                    body.on_duty_only,
                    Page {
                        after: page.after.as_ref(),
                        limit: page.limit,
                    },
                )
                .await?;
            let ids: Vec<String> = items.iter().map(|e| e.id.clone()).collect();
            let loads = self.app.open_load(&ctx.tenant, &ids).await?;
            // Engineers page oldest id first: the key is the last id.
            let next_page_token = page.next_token(&items, |e| e.id.clone());
            Ok(pb::ListEngineersResponse {
                next_page_token,
                engineers: items
                    .iter()
                    .map(|e| wire::engineer_pb(e, loads.get(&e.id).copied().unwrap_or_default()))
                    .collect(),
            })
        })
        .await
    }

    async fn set_engineer_duty(
        &self,
        req: Request<pb::SetEngineerDutyRequest>,
    ) -> Result<Response<pb::SetEngineerDutyResponse>, Status> {
        TicketError::handle(req, |ctx, body| async move {
            required_id(&body.id, "id")?;
            let (e, taken) = self
                .app
                .set_duty(&ctx.caller, &ctx.tenant, &body.id, &body.etag, body.on_duty)
                .await?;
            Ok(pb::SetEngineerDutyResponse {
                engineer: Some(self.engineer_pb(&ctx.tenant, &e).await?),
                assigned_ticket_ids: taken,
            })
        })
        .await
    }

    async fn find_similar_solutions(
        &self,
        req: Request<pb::FindSimilarSolutionsRequest>,
    ) -> Result<Response<pb::FindSimilarSolutionsResponse>, Status> {
        TicketError::handle(req, |ctx, body| async move {
            fields::id(&body.ticket_id, "ticket_id")?;
            fields::text(&body.text, "text", 1000, Lines::Multi)?;
            let query = match (body.ticket_id.is_empty(), body.text.trim().is_empty()) {
                (false, true) => SimilarQuery::Ticket(body.ticket_id.clone()),
                (true, false) => SimilarQuery::Text(body.text.clone()),
                _ => {
                    return Err(FieldViolation::new(
                        "ticket_id",
                        "exactly one of ticket_id and text is required",
                    )
                    .into());
                }
            };
            if !(0..=MAX_SIMILAR).contains(&body.limit) {
                return Err(FieldViolation::new("limit", "0-20").into());
            }
            let limit = if body.limit == 0 {
                5
            } else {
                u64::try_from(body.limit).unwrap_or(5)
            };
            let found = self
                .app
                .find_similar(&ctx.caller, &ctx.tenant, query, limit)
                .await?;
            Ok(pb::FindSimilarSolutionsResponse {
                solutions: solutions(&found),
            })
        })
        .await
    }

    async fn record_csat(
        &self,
        req: Request<pb::RecordCsatRequest>,
    ) -> Result<Response<pb::RecordCsatResponse>, Status> {
        TicketError::handle(req, |mut ctx, body| async move {
            ctx.replayable(&body.request_id, &body)?;
            required_id(&body.ticket_id, "ticket_id")?;
            let value = score(body.score, "score", 1..=5)?;
            fields::text(
                &body.comment,
                "comment",
                fields::MAX_NOTES_CHARS,
                Lines::Multi,
            )?;
            let t = self
                .app
                .record_csat(
                    &ctx.caller,
                    &ctx.tenant,
                    ctx.request_key(),
                    &body.ticket_id,
                    value,
                )
                .await?;
            Ok(pb::RecordCsatResponse { ticket: ticket(&t) })
        })
        .await
    }

    async fn record_nps(
        &self,
        req: Request<pb::RecordNpsRequest>,
    ) -> Result<Response<pb::RecordNpsResponse>, Status> {
        TicketError::handle(req, |mut ctx, body| async move {
            ctx.replayable(&body.request_id, &body)?;
            required_id(&body.account_id, "account_id")?;
            required_id(&body.contact_id, "contact_id")?;
            let value = score(body.score, "score", 0..=10)?;
            fields::text(
                &body.comment,
                "comment",
                fields::MAX_NOTES_CHARS,
                Lines::Multi,
            )?;
            let a = self
                .app
                .record_nps(
                    &ctx.caller,
                    &ctx.tenant,
                    ctx.request_key(),
                    &body.account_id,
                    &body.contact_id,
                    value,
                )
                .await?;
            Ok(pb::RecordNpsResponse {
                health: Some(wire::health_pb(&a)),
            })
        })
        .await
    }

    async fn record_usage_signal(
        &self,
        req: Request<pb::RecordUsageSignalRequest>,
    ) -> Result<Response<pb::RecordUsageSignalResponse>, Status> {
        TicketError::handle(req, |mut ctx, body| async move {
            ctx.replayable(&body.request_id, &body)?;
            required_id(&body.account_id, "account_id")?;
            let opened = wire::guide_opened(body.kind, "kind")?;
            let a = self
                .app
                .record_usage_signal(
                    &ctx.caller,
                    &ctx.tenant,
                    ctx.request_key(),
                    &body.account_id,
                    opened,
                )
                .await?;
            Ok(pb::RecordUsageSignalResponse {
                health: Some(wire::health_pb(&a)),
            })
        })
        .await
    }

    async fn record_purchase(
        &self,
        req: Request<pb::RecordPurchaseRequest>,
    ) -> Result<Response<pb::RecordPurchaseResponse>, Status> {
        TicketError::handle(req, |mut ctx, body| async move {
            ctx.replayable(&body.request_id, &body)?;
            required_id(&body.account_id, "account_id")?;
            fields::id(&body.account_manager_id, "account_manager_id")?;
            fields::text(
                &body.industry,
                "industry",
                fields::MAX_SHORT_CHARS,
                Lines::Single,
            )?;
            let amount = body
                .amount
                .as_ref()
                .ok_or_else(|| FieldViolation::new("amount", "required"))?;
            let amount = wire::money(amount, "amount")?;
            if amount.total_nanos() <= 0 {
                return Err(FieldViolation::new("amount", "must be more than 0").into());
            }
            let time = match &body.purchase_time {
                Some(t) => fields::micros(t, "purchase_time")?,
                None => ctx.now,
            };
            if time > ctx.now {
                return Err(
                    FieldViolation::new("purchase_time", "must not be in the future").into(),
                );
            }
            let (a, recent) = self
                .app
                .record_purchase(
                    &ctx.caller,
                    &ctx.tenant,
                    ctx.request_key(),
                    PurchaseInput {
                        account_id: body.account_id.clone(),
                        amount,
                        time,
                        industry: body.industry.clone(),
                        account_manager_id: body.account_manager_id.clone(),
                    },
                )
                .await?;
            Ok(pb::RecordPurchaseResponse {
                tier: Some(wire::account_tier_pb(&a, recent)),
            })
        })
        .await
    }

    async fn get_account_health(
        &self,
        req: Request<pb::GetAccountHealthRequest>,
    ) -> Result<Response<pb::GetAccountHealthResponse>, Status> {
        TicketError::handle(req, |ctx, body| async move {
            required_id(&body.account_id, "account_id")?;
            let a = self
                .app
                .health(&ctx.caller, &ctx.tenant, &body.account_id)
                .await?;
            Ok(pb::GetAccountHealthResponse {
                health: Some(wire::health_pb(&a)),
            })
        })
        .await
    }

    async fn list_at_risk_accounts(
        &self,
        req: Request<pb::ListAtRiskAccountsRequest>,
    ) -> Result<Response<pb::ListAtRiskAccountsResponse>, Status> {
        TicketError::handle(req, |ctx, body| async move {
            let binding = ctx.binding().with("caller", &ctx.caller.id);
            let page = self.page::<(i32, String)>(body.page_size, &body.page_token, binding)?;
            let items = self
                .app
                .at_risk(
                    &ctx.caller,
                    &ctx.tenant,
                    Page {
                        after: page.after.as_ref(),
                        limit: page.limit,
                    },
                )
                .await?;
            Ok(pb::ListAtRiskAccountsResponse {
                next_page_token: page.next_token(&items, |a| {
                    (i32::try_from(a.score).unwrap_or(0), a.account_id.clone())
                }),
                accounts: items.iter().map(wire::health_pb).collect(),
            })
        })
        .await
    }

    async fn list_retention_tasks(
        &self,
        req: Request<pb::ListRetentionTasksRequest>,
    ) -> Result<Response<pb::ListRetentionTasksResponse>, Status> {
        TicketError::handle(req, |ctx, body| async move {
            fields::id(&body.account_id, "account_id")?;
            let binding = ctx
                .binding()
                .with("caller", &ctx.caller.id)
                .with("account", &body.account_id);
            let page = self.page::<String>(body.page_size, &body.page_token, binding)?;
            let items = self
                .app
                .retention_tasks(
                    &ctx.caller,
                    &ctx.tenant,
                    non_empty(&body.account_id).as_deref(),
                    Page {
                        after: page.after.as_ref(),
                        limit: page.limit,
                    },
                )
                .await?;
            Ok(pb::ListRetentionTasksResponse {
                next_page_token: page.next_token(&items, |t| t.id.clone()),
                tasks: items.iter().map(wire::retention_pb).collect(),
            })
        })
        .await
    }

    async fn get_loyalty_tier(
        &self,
        req: Request<pb::GetLoyaltyTierRequest>,
    ) -> Result<Response<pb::GetLoyaltyTierResponse>, Status> {
        TicketError::handle(req, |ctx, body| async move {
            required_id(&body.account_id, "account_id")?;
            let (a, recent) = self
                .app
                .loyalty_tier(&ctx.caller, &ctx.tenant, &body.account_id)
                .await?;
            Ok(pb::GetLoyaltyTierResponse {
                tier: Some(wire::account_tier_pb(&a, recent)),
            })
        })
        .await
    }

    async fn get_tickets_config(
        &self,
        req: Request<pb::GetTicketsConfigRequest>,
    ) -> Result<Response<pb::GetTicketsConfigResponse>, Status> {
        TicketError::handle(req, |ctx, _body| async move {
            Ok(pb::GetTicketsConfigResponse {
                config: Some(self.configs.get(&ctx).await?),
            })
        })
        .await
    }

    async fn update_tickets_config(
        &self,
        req: Request<pb::UpdateTicketsConfigRequest>,
    ) -> Result<Response<pb::UpdateTicketsConfigResponse>, Status> {
        TicketError::handle(req, |ctx, body| async move {
            Ok(pb::UpdateTicketsConfigResponse {
                config: Some(self.configs.replace(&ctx, body.config).await?),
            })
        })
        .await
    }

    async fn list_audit_entries(
        &self,
        req: Request<pb::ListAuditEntriesRequest>,
    ) -> Result<Response<pb::ListAuditEntriesResponse>, Status> {
        TicketError::handle(req, |ctx, body| async move {
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
