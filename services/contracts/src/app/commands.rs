//! The commands on contracts: each in one unit of work with its audit
//! entries and events.

use std::time::Instant;

use crm_auth::BearerToken;
use crm_store::idempotency::{self, Prior, RequestKey};
use crm_types::{Actor, AuditEntry, new_id, now_micros};

use super::{Result, Trail, UseCases};
use crate::domain::{
    self, Contract, ContractError, DraftPatch, MilestoneStatus, Outcome, Receivable, Recorded,
    SignatureOutcome, Status, StepDecision, resource,
};
use crate::store;
use crate::wire::events;

/// A decision as the api hands it over.
#[derive(Debug, Clone)]
pub struct DecisionInput {
    pub step: i32,
    pub approval_id: String,
    pub decision: domain::Decision,
    pub comment: String,
    pub on_behalf_of: String,
}

/// A signature callback as the api hands it over.
#[derive(Debug, Clone)]
pub struct SignatureInput {
    pub envelope_id: String,
    pub outcome: SignatureOutcome,
    pub signer: String,
    pub time: i64,
    pub decline_reason: String,
}

fn entry(c: &Contract, action: &str, actor: &str, now: i64) -> AuditEntry {
    AuditEntry::new(&c.id, action, actor, now)
}

impl UseCases {
    /// Creates a draft from a won opportunity, read from the opportunities
    /// service as the caller. A retry of a call that succeeded returns its
    /// contract without asking the opportunities service again.
    pub async fn create(
        &self,
        actor: &Actor,
        tenant: &str,
        request: Option<RequestKey<'_>>,
        opportunity_id: &str,
        patch: DraftPatch,
        token: Option<&BearerToken>,
        deadline: Option<Instant>,
    ) -> Result<Contract> {
        if let Some(key) = request {
            match idempotency::prior(self.db(), key).await? {
                Prior::Same(outcome) => {
                    let id: String = serde_json::from_str(&outcome)
                        .map_err(|e| ContractError::Store(Box::new(e)))?;
                    // The first result, to whoever may see it.
                    return self.get(actor, tenant, &id).await;
                }
                Prior::Conflict => return Err(ContractError::RequestIdReused),
                Prior::None => {}
            }
        }
        let facts = self.opportunity(opportunity_id, token, deadline).await?;
        let now = now_micros();
        let (facts, patch) = (&facts, &patch);
        let id: String = self
            .uow
            .run_once(tenant, request, |tx| async move {
                if let Some(existing) = store::first_version(&*tx, tenant, opportunity_id).await? {
                    return Err(ContractError::Exists(existing.id));
                }
                let c = domain::new_contract(
                    facts.clone(),
                    patch.clone(),
                    actor,
                    tenant,
                    new_id(),
                    new_id,
                    now,
                )?;
                store::insert_contract(&*tx, &c).await?;
                let mut trail = Trail::default();
                trail.audit(
                    entry(&c, "contract.created", &actor.id, now)
                        .with_reason(format!("from opportunity {}", c.opportunity_id)),
                );
                trail.event(events::created(&c, now));
                trail.done(c.id)
            })
            .await?;
        store::load_contract(self.db(), tenant, &id).await
    }

    /// One command on a contract the actor sees: load it locked, check the
    /// etag, let `change` decide and say what to record, save it.
    async fn change<F>(
        &self,
        actor: &Actor,
        tenant: &str,
        id: &str,
        etag: &str,
        change: F,
    ) -> Result<Contract>
    where
        F: Fn(&mut Contract, &mut Trail, i64) -> Result<bool> + Send + Sync,
    {
        let change = &change;
        self.uow
            .run(tenant, |tx| async move {
                let now = now_micros();
                let mut c = store::load_for_update(&*tx, tenant, id).await?;
                if !domain::can_decide(&c, actor) {
                    return Err(ContractError::not_found(resource::CONTRACT, id));
                }
                domain::check_etag(etag, c.version)?;
                let read = c.version;
                let mut trail = Trail::default();
                if change(&mut c, &mut trail, now)? {
                    store::save_contract(&*tx, &c, read).await?;
                }
                trail.done(c)
            })
            .await
    }

    pub async fn update(
        &self,
        actor: &Actor,
        tenant: &str,
        id: &str,
        etag: &str,
        patch: DraftPatch,
    ) -> Result<Contract> {
        self.change(actor, tenant, id, etag, |c, trail, now| {
            domain::check_visible(c, actor)?;
            let read = c.version;
            let changes = domain::update_draft(c, patch.clone(), actor, new_id, now)?;
            if c.version == read {
                return Ok(false);
            }
            let audit = entry(c, "contract.updated", &actor.id, now).with_field_changes(changes);
            trail.event(events::updated(c, &audit, now));
            trail.audit(audit);
            Ok(true)
        })
        .await
    }

    pub async fn submit(
        &self,
        actor: &Actor,
        tenant: &str,
        id: &str,
        etag: &str,
    ) -> Result<Contract> {
        let config = self.rules(tenant).await?;
        self.change(actor, tenant, id, etag, |c, trail, now| {
            domain::check_visible(c, actor)?;
            domain::submit(c, actor, &config, new_id(), now)?;
            let steps = c
                .approval
                .as_ref()
                .map(|a| a.steps.len())
                .unwrap_or_default();
            trail.audit(
                entry(c, "contract.submitted", &actor.id, now)
                    .with_reason(format!("approval chain of {steps} steps")),
            );
            trail.event(events::submitted(c, now));
            trail.event(events::approval_requested(c, now));
            Ok(true)
        })
        .await
    }

    /// Decides a step; two concurrent decisions of one step: the second
    /// waits for the first (the row is locked) and finds it decided.
    pub async fn decide(
        &self,
        actor: &Actor,
        tenant: &str,
        id: &str,
        etag: &str,
        input: DecisionInput,
    ) -> Result<Contract> {
        let config = self.rules(tenant).await?;
        self.change(actor, tenant, id, etag, |c, trail, now| {
            let decision = StepDecision {
                number: input.step,
                approval_id: &input.approval_id,
                decision: input.decision,
                comment: &input.comment,
                on_behalf_of: &input.on_behalf_of,
            };
            let index = usize::try_from(input.step.saturating_sub(1)).unwrap_or_default();
            let outcome = domain::decide(c, actor, decision, &config, now)?;
            let who = c
                .approval
                .as_ref()
                .and_then(|a| a.steps.get(index))
                .map(crm_approvals::Step::decided_by)
                .unwrap_or_default();
            trail.audit(
                entry(c, "contract.approval_decided", &actor.id, now).with_reason(format!(
                    "step {} {} by {who}: {}",
                    input.step,
                    input.decision,
                    input.comment.trim()
                )),
            );
            trail.event(events::approval_decided(c, index, now));
            match outcome {
                Outcome::Advanced(_) => trail.event(events::approval_requested(c, now)),
                Outcome::Approved => {
                    trail.audit(entry(c, "contract.approved", &actor.id, now));
                    trail.event(events::approved(c, now));
                }
                Outcome::Rejected => {
                    trail.audit(
                        entry(c, "contract.returned_to_draft", &actor.id, now)
                            .with_reason(input.comment.trim().to_owned()),
                    );
                    trail.event(events::returned_to_draft(c, index, now));
                }
            }
            Ok(true)
        })
        .await
    }

    pub async fn send_for_signature(
        &self,
        actor: &Actor,
        tenant: &str,
        id: &str,
        etag: &str,
        provider: &str,
        envelope_id: &str,
    ) -> Result<Contract> {
        self.change(actor, tenant, id, etag, |c, trail, now| {
            domain::check_visible(c, actor)?;
            domain::send_for_signature(c, actor, provider, envelope_id, now)?;
            trail.audit(
                entry(c, "contract.sent_for_signature", &actor.id, now)
                    .with_reason(format!("{provider} envelope {envelope_id}")),
            );
            trail.event(events::sent_for_signature(c, now));
            Ok(true)
        })
        .await
    }

    /// The provider's callback. A signed amendment supersedes the version
    /// in force, in the same unit of work.
    pub async fn record_signature(
        &self,
        actor: &Actor,
        tenant: &str,
        id: &str,
        etag: &str,
        input: SignatureInput,
    ) -> Result<Contract> {
        let config = self.rules(tenant).await?;
        let (config, input) = (&config, &input);
        self.uow
            .run(tenant, |tx| async move {
                let now = now_micros();
                let mut c = store::load_for_update(&*tx, tenant, id).await?;
                domain::check_visible(&c, actor)?;
                domain::check_etag(etag, c.version)?;
                let read = c.version;
                let mut trail = Trail::default();
                let recorded = domain::record_signature(
                    &mut c,
                    actor,
                    &input.envelope_id,
                    input.outcome,
                    &input.signer,
                    input.time,
                    &input.decline_reason,
                    config.renewal_notice_days,
                    now,
                )?;
                match recorded {
                    Recorded::Repeat => return trail.done(c),
                    Recorded::Declined => {
                        trail.audit(
                            entry(&c, "contract.signature_declined", &actor.id, now)
                                .with_reason(input.decline_reason.trim().to_owned()),
                        );
                        trail.event(events::signature_declined(
                            &c,
                            input.decline_reason.trim(),
                            now,
                        ));
                    }
                    Recorded::Signed => {
                        let mut superseded = None;
                        if !c.previous_version_id.is_empty() {
                            for mut old in store::versions(&*tx, tenant, &c.family_id).await? {
                                let old_read = old.version;
                                if old.id != c.id
                                    && domain::supersede(&mut old, &mut c, &actor.id, now)
                                {
                                    store::save_contract(&*tx, &old, old_read).await?;
                                    trail.audit(
                                        entry(&old, "contract.superseded", &actor.id, now)
                                            .with_reason(format!(
                                                "by version {}",
                                                c.contract_version
                                            )),
                                    );
                                    superseded = Some(old.id);
                                }
                            }
                        }
                        trail.audit(
                            entry(&c, "contract.signed", &actor.id, now)
                                .with_reason(format!("signed by {}", input.signer)),
                        );
                        trail.event(events::signed(&c, superseded.as_deref(), now));
                    }
                }
                store::save_contract(&*tx, &c, read).await?;
                trail.done(c)
            })
            .await
    }

    pub async fn terminate(
        &self,
        actor: &Actor,
        tenant: &str,
        id: &str,
        etag: &str,
        reason: &str,
    ) -> Result<Contract> {
        self.change(actor, tenant, id, etag, |c, trail, now| {
            domain::check_visible(c, actor)?;
            domain::terminate(c, actor, reason, now)?;
            trail.audit(
                entry(c, "contract.terminated", &actor.id, now)
                    .with_reason(reason.trim().to_owned()),
            );
            trail.event(events::terminated(c, now));
            Ok(true)
        })
        .await
    }

    /// A new draft version of a signed or active contract.
    pub async fn amend(
        &self,
        actor: &Actor,
        tenant: &str,
        request: Option<RequestKey<'_>>,
        id: &str,
        etag: &str,
        reason: &str,
    ) -> Result<Contract> {
        let new: String = self
            .uow
            .run_once(tenant, request, |tx| async move {
                let now = now_micros();
                let c = store::load_for_update(&*tx, tenant, id).await?;
                domain::check_visible(&c, actor)?;
                domain::check_etag(etag, c.version)?;
                let family = store::versions(&*tx, tenant, &c.family_id).await?;
                let open = family.iter().find(|v| {
                    v.id != c.id
                        && v.contract_version > c.contract_version
                        && matches!(
                            v.status,
                            Status::Draft
                                | Status::InApproval
                                | Status::Approved
                                | Status::SentForSignature
                        )
                });
                let next = domain::amend(&c, actor, open, new_id(), new_id, now)?;
                store::insert_contract(&*tx, &next).await?;
                let mut trail = Trail::default();
                trail.audit(
                    entry(&next, "contract.amended", &actor.id, now).with_reason(format!(
                        "amends version {}: {}",
                        c.contract_version,
                        reason.trim()
                    )),
                );
                trail.event(events::amended(&next, reason.trim(), now));
                trail.done(next.id)
            })
            .await?;
        store::load_contract(self.db(), tenant, &new).await
    }

    /// ERP's invoice or payment of a milestone.
    pub async fn record_payment(
        &self,
        actor: &Actor,
        tenant: &str,
        milestone_id: &str,
        etag: &str,
        status: MilestoneStatus,
        reference: &str,
        time: Option<i64>,
    ) -> Result<Receivable> {
        let contract_id = store::milestone_contract(self.db(), tenant, milestone_id).await?;
        let contract_id = &contract_id;
        self.uow
            .run(tenant, |tx| async move {
                let now = now_micros();
                let mut c = store::load_for_update(&*tx, tenant, contract_id).await?;
                let read = c.version;
                let m = domain::record_payment(
                    &mut c,
                    milestone_id,
                    etag,
                    status,
                    reference,
                    time.unwrap_or(now),
                    actor,
                    now,
                )?;
                store::save_contract(&*tx, &c, read).await?;
                let mut trail = Trail::default();
                trail.audit(
                    AuditEntry::new(
                        milestone_id,
                        &format!("milestone.{}", status.as_str()),
                        &actor.id,
                        now,
                    )
                    .with_reason(format!("{} of contract {}: {reference}", m.amount, c.id)),
                );
                trail.event(events::payment_recorded(&c, &m, now));
                trail.done(Receivable {
                    milestone: m,
                    contract_id: c.id.clone(),
                    account_id: c.account_id.clone(),
                })
            })
            .await
    }
}
