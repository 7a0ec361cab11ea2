//! Tickets: creation with the SLA and dispatch, the transitions, comments,
//! similar solutions and CSAT.

use crm_store::idempotency::RequestKey;
use crm_types::{Actor, AuditEntry, Role, new_id, now_micros};
use sea_orm::ConnectionTrait;

use super::accounts::touch_account;
use super::{Page, Result, Trail, UseCases};
use crate::domain::{
    self, Comment, CommentVisibility, MINUTE, NewTicket, Solution, Status, Ticket, TicketError,
    TicketFilter, TicketPatch, TicketsConfig, Tier, Visibility, can_work, check_visible, choose,
    local_date, resource, search_terms,
};
use crate::store;
use crate::wire::events;

/// The most similar solutions offered on creation.
pub const SIMILAR_ON_CREATE: u64 = 5;

/// What FindSimilarSolutions searches by.
#[derive(Debug, Clone)]
pub enum SimilarQuery {
    Ticket(String),
    Text(String),
}

fn entry(t: &Ticket, action: &str, actor: &str, now: i64) -> AuditEntry {
    AuditEntry::new(&t.id, action, actor, now)
}

/// Finds the engineer for a new ticket, or says why it waits.
pub(super) async fn dispatch(
    conn: &impl ConnectionTrait,
    t: &Ticket,
) -> Result<std::result::Result<String, String>> {
    let candidates = store::candidates(conn, &t.tenant, &t.category).await?;
    Ok(match choose(&candidates) {
        Some(c) => Ok(c.id.clone()),
        None => Err(format!(
            "no on-duty engineer has the skill \"{}\"",
            t.category
        )),
    })
}

/// The account's figures after a first response.
pub(super) async fn note_response(
    conn: &impl ConnectionTrait,
    t: &Ticket,
    config: &TicketsConfig,
    actor: &str,
    now: i64,
    trail: &mut Trail,
) -> Result<()> {
    let minutes = (t.sla.first_response_time.unwrap_or(now) - t.create_time) / MINUTE;
    let on_time = !t.sla.first_response.breached;
    touch_account(
        conn,
        &t.tenant,
        &t.account_id,
        config,
        actor,
        now,
        trail,
        |a| {
            a.stats.responded += 1;
            a.stats.response_minutes_total += minutes;
            if on_time {
                a.stats.responded_on_time += 1;
            }
        },
    )
    .await?;
    Ok(())
}

impl UseCases {
    /// Creates a ticket with its SLA, dispatches it, and offers the
    /// resolutions of similar resolved tickets.
    pub async fn create_ticket(
        &self,
        actor: &Actor,
        tenant: &str,
        request: Option<RequestKey<'_>>,
        input: NewTicket,
    ) -> Result<(Ticket, Vec<Solution>)> {
        let config = self.rules(tenant).await?;
        let (config, input) = (&config, &input);
        let id: String = self
            .uow
            .run_once(tenant, request, |tx| async move {
                let now = now_micros();
                let account = store::load_account(&*tx, tenant, &input.account_id).await?;
                let tier = account.as_ref().map_or(Tier::New, |a| a.tier);
                let manager = account
                    .as_ref()
                    .map(|a| a.account_manager_id.clone())
                    .unwrap_or_default();
                let entitlements = store::list_entitlements(
                    &*tx,
                    tenant,
                    Some(&input.account_id),
                    None,
                    store::MAX_ACCOUNT_ENTITLEMENTS,
                )
                .await?;
                let applied =
                    domain::applicable(&entitlements, local_date(config, now), tier, config);
                let mut t = domain::new_ticket(
                    input.clone(),
                    new_id(),
                    tenant,
                    actor,
                    &applied,
                    tier,
                    &manager,
                    config,
                    now,
                );
                let mut trail = Trail::default();
                trail.audit(
                    entry(&t, "ticket.created", &actor.id, now)
                        .with_reason(format!("SLA {}", t.sla.service_level)),
                );
                match dispatch(&*tx, &t).await? {
                    Ok(engineer) => {
                        domain::assign(&mut t, &engineer, &actor.id, config, now)?;
                        t.version = 1;
                        store::mark_assigned(&*tx, tenant, &engineer, now).await?;
                        trail.audit(
                            entry(&t, "ticket.assigned", &actor.id, now)
                                .with_reason(format!("dispatched to {engineer}")),
                        );
                    }
                    Err(reason) => domain::queue(&mut t, reason),
                }
                store::insert_ticket(&*tx, &t).await?;
                trail.event(events::created(&t, now));
                if t.assignee_id.is_some() {
                    trail.event(events::assigned(&t, None, now));
                }
                let complaint = t.complaint;
                touch_account(
                    &*tx,
                    tenant,
                    &t.account_id,
                    config,
                    &actor.id,
                    now,
                    &mut trail,
                    |a| {
                        a.stats.tickets += 1;
                        if complaint {
                            a.stats.complaints += 1;
                        }
                    },
                )
                .await?;
                trail.done(t.id)
            })
            .await?;
        let t = store::load_ticket(self.db(), tenant, &id).await?;
        let similar = self
            .similar_to(
                tenant,
                &format!("{} {}", t.subject, t.description),
                &t.id,
                SIMILAR_ON_CREATE,
            )
            .await?;
        Ok((t, similar))
    }

    pub async fn get_ticket(&self, actor: &Actor, tenant: &str, id: &str) -> Result<Ticket> {
        let t = store::load_ticket(self.db(), tenant, id).await?;
        check_visible(&t, actor)?;
        Ok(t)
    }

    pub async fn list_tickets(
        &self,
        actor: &Actor,
        tenant: &str,
        filter: &TicketFilter,
        page: Page<'_, String>,
    ) -> Result<Vec<Ticket>> {
        store::list_tickets(
            self.db(),
            tenant,
            &Visibility::of(actor),
            filter,
            page.after,
            page.limit,
        )
        .await
    }

    /// One command on a ticket: load it locked, check the etag, let
    /// `change` decide and say what to record, save it.
    async fn change<F>(
        &self,
        actor: &Actor,
        tenant: &str,
        id: &str,
        etag: &str,
        change: F,
    ) -> Result<Ticket>
    where
        F: Fn(&mut Ticket, &mut Trail, i64, &TicketsConfig) -> Result<After> + Send + Sync,
    {
        let config = self.rules(tenant).await?;
        let (config, change) = (&config, &change);
        self.uow
            .run(tenant, |tx| async move {
                let now = now_micros();
                let mut t = store::load_ticket_for_update(&*tx, tenant, id).await?;
                check_visible(&t, actor)?;
                let read = t.version;
                domain::check_etag(etag, read)?;
                let mut trail = Trail::default();
                let responded_before = t.sla.first_response_time.is_some();
                let after = change(&mut t, &mut trail, now, config)?;
                store::save_ticket(&*tx, &t, read).await?;
                let actor = t.updater.clone();
                if !responded_before && t.sla.first_response_time.is_some() {
                    note_response(&*tx, &t, config, &actor, now, &mut trail).await?;
                }
                match after {
                    After::Nothing => {}
                    After::Resolved => {
                        store::index_ticket(&*tx, &t).await?;
                        touch_account(
                            &*tx,
                            tenant,
                            &t.account_id,
                            config,
                            &actor,
                            now,
                            &mut trail,
                            |a| a.stats.resolved += 1,
                        )
                        .await?;
                    }
                    After::Reopened => {
                        store::unindex_ticket(&*tx, tenant, &t.id).await?;
                        touch_account(
                            &*tx,
                            tenant,
                            &t.account_id,
                            config,
                            &actor,
                            now,
                            &mut trail,
                            |a| a.stats.resolved = a.stats.resolved.saturating_sub(1),
                        )
                        .await?;
                    }
                    After::Assigned(engineer) => {
                        store::mark_assigned(&*tx, tenant, &engineer, now).await?;
                    }
                }
                trail.done(t)
            })
            .await
    }

    pub async fn update_ticket(
        &self,
        actor: &Actor,
        tenant: &str,
        id: &str,
        etag: &str,
        patch: TicketPatch,
    ) -> Result<Ticket> {
        self.change(actor, tenant, id, etag, |t, trail, now, config| {
            can_work(t, actor, false)?;
            let changes = domain::update(t, patch.clone(), &actor.id, config, now)?;
            if !changes.is_empty() {
                trail.audit(entry(t, "ticket.updated", &actor.id, now).with_field_changes(changes));
            }
            Ok(After::Nothing)
        })
        .await
    }

    /// A manager assigns or reassigns; the engineer must be the tenant's.
    pub async fn assign_ticket(
        &self,
        actor: &Actor,
        tenant: &str,
        id: &str,
        etag: &str,
        assignee: &str,
        reason: &str,
    ) -> Result<Ticket> {
        if store::load_engineer(self.db(), tenant, assignee)
            .await?
            .is_none()
        {
            return Err(TicketError::not_found(resource::ENGINEER, assignee));
        }
        self.change(actor, tenant, id, etag, |t, trail, now, config| {
            check_visible(t, actor)?;
            let before = domain::assign(t, assignee, &actor.id, config, now)?;
            trail.audit(entry(t, "ticket.assigned", &actor.id, now).with_reason(reason));
            trail.event(events::assigned(t, before.as_deref(), now));
            Ok(After::Assigned(assignee.to_owned()))
        })
        .await
    }

    /// The simple transitions: start, wait, resume, close.
    pub async fn transition(
        &self,
        actor: &Actor,
        tenant: &str,
        id: &str,
        etag: &str,
        to: Move,
        reason: &str,
    ) -> Result<Ticket> {
        self.change(actor, tenant, id, etag, |t, trail, now, config| {
            // An integration acts for the customer: answering (resume) and
            // confirming (close), never working the ticket.
            can_work(t, actor, matches!(to, Move::Resume | Move::Close))?;
            let before = match to {
                Move::Start => domain::start(t, &actor.id, config, now)?,
                Move::Wait => domain::wait(t, &actor.id, config, now)?,
                Move::Resume => domain::resume(t, &actor.id, config, now)?,
                Move::Close => domain::close(t, &actor.id, config, now)?,
            };
            trail.audit(
                entry(t, &format!("ticket.{}", t.status.as_str()), &actor.id, now)
                    .with_reason(reason),
            );
            trail.event(events::status_changed(t, before, now));
            Ok(After::Nothing)
        })
        .await
    }

    pub async fn resolve_ticket(
        &self,
        actor: &Actor,
        tenant: &str,
        id: &str,
        etag: &str,
        resolution: &str,
    ) -> Result<Ticket> {
        self.change(actor, tenant, id, etag, |t, trail, now, config| {
            can_work(t, actor, false)?;
            domain::resolve(t, resolution, &actor.id, config, now)?;
            trail.audit(entry(t, "ticket.resolved", &actor.id, now));
            trail.event(events::resolved(t, now));
            Ok(After::Resolved)
        })
        .await
    }

    pub async fn reopen_ticket(
        &self,
        actor: &Actor,
        tenant: &str,
        id: &str,
        etag: &str,
        reason: &str,
    ) -> Result<Ticket> {
        self.change(actor, tenant, id, etag, |t, trail, now, config| {
            can_work(t, actor, true)?;
            domain::reopen(t, &actor.id, config, now)?;
            trail.audit(entry(t, "ticket.reopened", &actor.id, now).with_reason(reason));
            trail.event(events::reopened(t, reason, now));
            Ok(After::Reopened)
        })
        .await
    }

    /// The customer's rating; a second replaces the first.
    pub async fn record_csat(
        &self,
        actor: &Actor,
        tenant: &str,
        request: Option<RequestKey<'_>>,
        id: &str,
        score: u8,
    ) -> Result<Ticket> {
        let config = self.rules(tenant).await?;
        let config = &config;
        self.uow
            .run_once(tenant, request, |tx| async move {
                let now = now_micros();
                let mut t = store::load_ticket_for_update(&*tx, tenant, id).await?;
                check_visible(&t, actor)?;
                let read = t.version;
                let previous = t.csat;
                domain::rate(&mut t, score, &actor.id, now)?;
                store::save_ticket(&*tx, &t, read).await?;
                let mut trail = Trail::default();
                trail.audit(
                    entry(&t, "ticket.csat_recorded", &actor.id, now)
                        .with_reason(score.to_string()),
                );
                trail.event(events::csat_recorded(&t, now));
                touch_account(
                    &*tx,
                    tenant,
                    &t.account_id,
                    config,
                    &actor.id,
                    now,
                    &mut trail,
                    |a| {
                        // A second rating replaces the first.
                        if previous == 0 {
                            a.stats.record_csat(score, &config.churn_rules)
                        } else {
                            a.stats.replace_csat(previous, score, &config.churn_rules)
                        }
                    },
                )
                .await?;
                trail.done(())
            })
            .await?;
        store::load_ticket(self.db(), tenant, id).await
    }

    /// Adds a comment; the assignee's first public one is the first
    /// response, and the customer's public one (an integration's) resumes
    /// a ticket waiting on the customer, in the same unit of work.
    pub async fn add_comment(
        &self,
        actor: &Actor,
        tenant: &str,
        request: Option<RequestKey<'_>>,
        ticket_id: &str,
        body: &str,
        visibility: CommentVisibility,
    ) -> Result<(Comment, Ticket)> {
        let config = self.rules(tenant).await?;
        let config = &config;
        let comment_id: String = self
            .uow
            .run_once(tenant, request, |tx| async move {
                let now = now_micros();
                let mut t = store::load_ticket_for_update(&*tx, tenant, ticket_id).await?;
                can_work(&t, actor, true)?;
                if t.status == Status::Closed {
                    return Err(TicketError::precondition(
                        "TICKET_CLOSED",
                        "the ticket is closed",
                    ));
                }
                if actor.has(Role::Integration)
                    && !actor.has(Role::Manager)
                    && visibility != CommentVisibility::Public
                {
                    return Err(TicketError::invalid(
                        "comment.visibility",
                        "an integration posts the customer's public replies only",
                    ));
                }
                let c = Comment {
                    id: new_id(),
                    ticket_id: t.id.clone(),
                    body: body.to_owned(),
                    visibility,
                    author: actor.id.clone(),
                    create_time: now,
                };
                store::insert_comment(&*tx, tenant, &c).await?;
                let mut trail = Trail::default();
                trail.audit(entry(&t, "ticket.commented", &actor.id, now));
                let read = t.version;
                let public = visibility == CommentVisibility::Public;
                // The contract: an integration's public comment is the
                // customer's reply, which resumes a ticket waiting on them.
                let from_customer = actor.has(Role::Integration) && !actor.has(Role::Manager);
                let mut changed = false;
                if from_customer
                    && public
                    && let Some(before) = domain::customer_replied(&mut t, &actor.id, config, now)
                {
                    trail.audit(
                        entry(&t, "ticket.in_progress", &actor.id, now)
                            .with_reason("the customer replied"),
                    );
                    trail.event(events::status_changed(&t, before, now));
                    changed = true;
                }
                let by_assignee = t.assignee_id.as_deref() == Some(actor.id.as_str());
                let responded = by_assignee && public && domain::respond(&mut t, config, now);
                if responded && !changed {
                    t.version += 1;
                    t.update_time = now;
                    t.updater = actor.id.clone();
                }
                if changed || responded {
                    store::save_ticket(&*tx, &t, read).await?;
                }
                if responded {
                    note_response(&*tx, &t, config, &actor.id, now, &mut trail).await?;
                }
                trail.done(c.id)
            })
            .await?;
        let c = store::load_comment(self.db(), tenant, &comment_id)
            .await?
            .ok_or_else(|| TicketError::not_found(resource::TICKET, ticket_id))?;
        let t = store::load_ticket(self.db(), tenant, ticket_id).await?;
        Ok((c, t))
    }

    pub async fn list_comments(
        &self,
        actor: &Actor,
        tenant: &str,
        ticket_id: &str,
        page: Page<'_, String>,
    ) -> Result<Vec<Comment>> {
        let t = store::load_ticket(self.db(), tenant, ticket_id).await?;
        check_visible(&t, actor)?;
        let staff = [Role::Service, Role::Manager, Role::Admin]
            .iter()
            .any(|r| actor.has(*r));
        store::list_comments(self.db(), tenant, ticket_id, !staff, page.after, page.limit).await
    }

    /// Resolutions of the resolved tickets most similar to `text`.
    async fn similar_to(
        &self,
        tenant: &str,
        text: &str,
        exclude: &str,
        limit: u64,
    ) -> Result<Vec<Solution>> {
        let terms = search_terms(text);
        let ids = store::search(
            self.db(),
            tenant,
            &terms,
            exclude,
            limit,
            self.search_candidates,
        )
        .await?;
        Ok(store::tickets_by_ids(self.db(), tenant, &ids)
            .await?
            .iter()
            .map(store::solution)
            .collect())
    }

    pub async fn find_similar(
        &self,
        actor: &Actor,
        tenant: &str,
        query: SimilarQuery,
        limit: u64,
    ) -> Result<Vec<Solution>> {
        match query {
            SimilarQuery::Ticket(id) => {
                let t = self.get_ticket(actor, tenant, &id).await?;
                self.similar_to(
                    tenant,
                    &format!("{} {}", t.subject, t.description),
                    &t.id,
                    limit,
                )
                .await
            }
            SimilarQuery::Text(text) => self.similar_to(tenant, &text, "", limit).await,
        }
    }
}

/// What a ticket command does besides saving the ticket.
pub(super) enum After {
    Nothing,
    Resolved,
    Reopened,
    Assigned(String),
}

/// A transition without input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    Start,
    Wait,
    Resume,
    Close,
}
