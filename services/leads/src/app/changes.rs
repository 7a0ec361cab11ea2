//! Changes of one lead, and the sweeper's return of overdue leads.

use crm_events::NewEvent;
use serde::{Deserialize, Serialize};

use super::{App, Effect, RequestKey, entry, recorded};
use crate::{
    domain::{
        self, Actor, AuditEntry, Change, ClaimWindow, Interaction, InteractionKind, Lead,
        LeadConfig, LeadError, Patch, check_visible,
    },
    store, wire,
};

/// What a LogInteraction call recorded for its replay.
#[derive(Serialize, Deserialize)]
struct Logged {
    interaction_id: String,
}

/// One change of a lead: the action it is audited as, by whom, when.
#[derive(Clone, Copy)]
pub(super) struct Action<'a> {
    pub tenant: &'a str,
    pub id: &'a str,
    pub etag: &'a str,
    pub name: &'a str,
    pub actor: &'a str,
    pub now: i64,
}

/// A lead after a change, with the audit entry and events to write (none
/// when nothing changed).
pub(super) struct Applied {
    pub lead: Lead,
    pub audit: Vec<AuditEntry>,
    pub events: Vec<NewEvent>,
}

impl Applied {
    pub(super) fn into_effect(self) -> Effect<Lead> {
        Effect::new(self.lead)
            .audits(self.audit)
            .events(self.events)
    }
}

/// Loads the lead of `action` in `tx`, checks its etag, lets `decide`
/// change it (returning the changes and the audit reason), and stores it.
/// Nothing is written when nothing changed.
pub(super) async fn apply(
    tx: &impl sea_orm::ConnectionTrait,
    action: Action<'_>,
    decide: impl FnOnce(&mut Lead) -> Result<(Vec<Change>, String), LeadError>,
) -> Result<Applied, LeadError> {
    let mut lead = store::load(tx, action.tenant, action.id).await?;
    lead.check_etag(action.etag)?;
    let (version, before) = (lead.version, lead.status);
    let (changes, reason) = decide(&mut lead)?;
    if changes.is_empty() {
        return Ok(Applied {
            lead,
            audit: Vec::new(),
            events: Vec::new(),
        });
    }
    store::save(tx, &lead, version).await?;
    let audit = entry(&lead, action.name, action.actor, action.now, changes).with_reason(reason);
    Ok(Applied {
        events: wire::events::of_change(&lead, Some(before), &audit),
        audit: vec![audit],
        lead,
    })
}

impl App {
    /// Runs one change of a lead as a unit of work.
    async fn change(
        &self,
        action: Action<'_>,
        decide: impl Fn(&mut Lead) -> Result<(Vec<Change>, String), LeadError> + Sync,
    ) -> Result<Lead, LeadError> {
        let decide = &decide;
        self.uow
            .run(action.tenant, |tx| async move {
                Ok(apply(&*tx, action, decide).await?.into_effect())
            })
            .await
    }

    pub async fn update(
        &self,
        tenant: &str,
        id: &str,
        etag: &str,
        patches: &[Patch],
        actor: &Actor,
        config: &LeadConfig,
        now: i64,
    ) -> Result<Lead, LeadError> {
        let action = Action {
            tenant,
            id,
            etag,
            name: "lead.updated",
            actor: &actor.id,
            now,
        };
        self.uow
            .run(tenant, |tx| async move {
                let window_start = config.scoring.window_start(now);
                let tally = store::tally(&*tx, tenant, id, window_start).await?;
                apply(&*tx, action, |lead| {
                    check_visible(lead, actor)?;
                    let changes =
                        domain::update(lead, patches.to_vec(), actor, &tally, config, now)?;
                    Ok((changes, String::new()))
                })
                .await
                .map(Applied::into_effect)
            })
            .await
    }

    pub async fn delete(
        &self,
        tenant: &str,
        id: &str,
        etag: &str,
        actor: &Actor,
        now: i64,
    ) -> Result<(), LeadError> {
        self.uow
            .run(tenant, |tx| async move {
                let lead = store::load(&*tx, tenant, id).await?;
                lead.check_etag(etag)?;
                store::delete(&*tx, &lead).await?;
                let audit = entry(
                    &lead,
                    "lead.deleted",
                    &actor.id,
                    now,
                    lead.creation_changes(),
                );
                Ok(recorded((), &lead, Some(lead.status), audit))
            })
            .await
    }

    /// Logs an interaction and rescores the lead; a retry with the same
    /// request id returns the first interaction.
    pub async fn log_interaction(
        &self,
        tenant: &str,
        request: Option<RequestKey<'_>>,
        lead_id: &str,
        kind: InteractionKind,
        occur_time: i64,
        notes: &str,
        actor: &Actor,
        config: &LeadConfig,
        now: i64,
    ) -> Result<(Interaction, Lead), LeadError> {
        let logged = self
            .uow
            .run_once(tenant, request, |tx| async move {
                let mut lead = store::load(&*tx, tenant, lead_id).await?;
                check_visible(&lead, actor)?;
                let logged = Interaction {
                    id: crm_store::new_id(),
                    lead_id: lead_id.to_owned(),
                    kind,
                    occur_time,
                    notes: notes.to_owned(),
                    creator: actor.id.clone(),
                    create_time: now,
                };
                let window_start = config.scoring.window_start(now);
                let tally = store::tally(&*tx, tenant, lead_id, window_start)
                    .await?
                    .with_logged(kind, occur_time, &config.scoring, now);
                let (version, before) = (lead.version, lead.status);
                let changes = domain::log_interaction(&mut lead, actor, &tally, config, now)?;
                store::insert_interaction(&*tx, tenant, &logged).await?;
                store::save(&*tx, &lead, version).await?;
                let audit = entry(&lead, "lead.interaction_logged", &actor.id, now, changes)
                    .with_reason(kind.as_str());
                let logged = Logged {
                    interaction_id: logged.id,
                };
                Ok::<_, LeadError>(recorded(logged, &lead, Some(before), audit))
            })
            .await?;
        let interaction = store::load_interaction(self.db(), tenant, &logged.interaction_id)
            .await
            .map_err(|_| LeadError::NotFound(lead_id.to_owned()))?;
        let lead = store::load(self.db(), tenant, lead_id).await?;
        // A replay answers only who may still see the lead.
        check_visible(&lead, actor)?;
        Ok((interaction, lead))
    }

    pub async fn assign(
        &self,
        tenant: &str,
        id: &str,
        etag: &str,
        owner: &str,
        actor: &Actor,
        config: &LeadConfig,
        now: i64,
    ) -> Result<Lead, LeadError> {
        let action = Action {
            tenant,
            id,
            etag,
            name: "lead.assigned",
            actor: &actor.id,
            now,
        };
        self.change(action, |lead| {
            Ok((
                domain::assign(lead, owner, actor, config, now)?,
                String::new(),
            ))
        })
        .await
    }

    /// Claims a pool lead, within the actor's daily claim limit.
    pub async fn claim(
        &self,
        tenant: &str,
        id: &str,
        etag: &str,
        actor: &Actor,
        config: &LeadConfig,
        now: i64,
    ) -> Result<Lead, LeadError> {
        let action = Action {
            tenant,
            id,
            etag,
            name: "lead.claimed",
            actor: &actor.id,
            now,
        };
        self.uow
            .run(tenant, |tx| async move {
                store::lock_claimer(&*tx, tenant, &actor.id).await?;
                let window = ClaimWindow::of(actor, now);
                let claims = store::count_claims(&*tx, tenant, &window).await?;
                let applied = apply(&*tx, action, |lead| {
                    Ok((
                        domain::claim(lead, actor, claims, config, now)?,
                        String::new(),
                    ))
                })
                .await?;
                store::record_claim(&*tx, tenant, &actor.id, id, now).await?;
                Ok(applied.into_effect())
            })
            .await
    }

    pub async fn release(
        &self,
        tenant: &str,
        id: &str,
        etag: &str,
        reason: &str,
        actor: &Actor,
        now: i64,
    ) -> Result<Lead, LeadError> {
        let action = Action {
            tenant,
            id,
            etag,
            name: "lead.released",
            actor: &actor.id,
            now,
        };
        self.change(action, |lead| {
            Ok((domain::release(lead, actor, now)?, reason.to_owned()))
        })
        .await
    }

    pub async fn disqualify(
        &self,
        tenant: &str,
        id: &str,
        etag: &str,
        reason: &str,
        actor: &Actor,
        now: i64,
    ) -> Result<Lead, LeadError> {
        let action = Action {
            tenant,
            id,
            etag,
            name: "lead.disqualified",
            actor: &actor.id,
            now,
        };
        self.change(action, |lead| {
            Ok((
                domain::disqualify(lead, reason, actor, now)?,
                reason.trim().to_owned(),
            ))
        })
        .await
    }

    /// Up to `batch` overdue leads of any tenant after `after`, in the
    /// sweeper's order (deadline, tenant, id).
    pub async fn overdue_leads(
        &self,
        now: i64,
        after: Option<&store::OverdueRef>,
        batch: u64,
    ) -> Result<Vec<store::OverdueRef>, LeadError> {
        store::overdue_after(self.db(), now, after, batch).await
    }

    /// Returns one overdue lead to the pool, audited, in a unit of work of
    /// its own: a lead changed meanwhile, being changed (locked) or
    /// unreadable costs only itself. False when there was nothing to do.
    pub async fn return_overdue(
        &self,
        tenant: &str,
        id: &str,
        sweeper: &str,
        now: i64,
    ) -> Result<bool, LeadError> {
        self.uow
            .run(tenant, |tx| async move {
                // Read again, locked: the owner may have followed up since.
                let Some(mut lead) = store::lock_unless_busy(&*tx, tenant, id).await? else {
                    return Ok(Effect::new(false));
                };
                let Some(reason) = domain::overdue(&lead, now) else {
                    return Ok(Effect::new(false));
                };
                let version = lead.version;
                let changes = domain::return_to_pool(&mut lead, sweeper, now);
                store::save(&*tx, &lead, version).await?;
                let audit = entry(&lead, "lead.returned_to_pool", sweeper, now, changes)
                    .with_reason(reason.to_string());
                let events = wire::events::of_change(&lead, Some(lead.status), &audit);
                Ok::<_, LeadError>(Effect::new(true).audit(audit).events(events))
            })
            .await
    }
}
