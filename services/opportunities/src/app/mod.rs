//! The use cases of the service. Each command loads what the domain needs
//! through `store`, lets `domain` decide, and commits the change with its
//! audit entries, its events (built by `wire`) and, for creating calls, its
//! idempotency record in one unit of work. Queries read through `store` and
//! apply the same visibility rule as the commands.

use crm_events::{NewEvent, Outbox};
use crm_store::{
    DatabaseConnection,
    idempotency::RequestKey,
    uow::{Effect, UnitOfWork},
};
use crm_types::{Actor, AuditEntry, Change, FieldChange, new_id, now_micros};

use crate::domain::{
    self, Account, AccountDraft, AccountUpdate, Activity, ActivityDraft, Approval, ApprovalKind,
    ApprovalStatus, Contact, ContactDraft, Decision, ForecastLine, LeadSnapshot, Member,
    Opportunity, OpportunityConfig, OpportunityDraft, OpportunityError, OpportunityFilter,
    OpportunityPatch, Stage, StageViolation, Step, Visibility, WorkHours, WorkHoursDraft,
};
use crate::store::{self, StoredConfig};
use crate::wire::events;

type Result<T> = std::result::Result<T, OpportunityError>;

/// What a command writes beside its change: its audit entries, each with
/// the event it publishes, and its milestone events, in the order they
/// happened.
#[derive(Default)]
struct Trail {
    audit: Vec<AuditEntry>,
    events: Vec<NewEvent>,
}

impl Trail {
    fn audit(&mut self, tenant: &str, entry: AuditEntry) {
        self.events.extend(events::of_entry(tenant, &entry));
        self.audit.push(entry);
    }

    fn event(&mut self, event: NewEvent) {
        self.events.push(event);
    }

    /// The command's result with everything it writes beside it.
    fn done<T>(self, value: T) -> Result<Effect<T, NewEvent>> {
        Ok(Effect::new(value).audits(self.audit).events(self.events))
    }
}

/// The audit entry of a created record, naming it.
fn created(id: &str, action: &str, actor: &str, name: &str, now: i64) -> AuditEntry {
    AuditEntry::new(id, action, actor, now).with_field_changes(vec![Change {
        field: "name",
        old: String::new(),
        new: name.to_owned(),
    }])
}

/// A page of a list: where to start after, and how many.
#[derive(Debug, Clone, Copy)]
pub struct Page<'a> {
    pub after: Option<&'a str>,
    pub limit: u64,
}

/// The service's use cases over its database and outbox.
#[derive(Clone)]
pub struct UseCases {
    uow: UnitOfWork<Outbox>,
    /// The configuration of tenants that have not set their own.
    defaults: OpportunityConfig,
}

impl UseCases {
    pub fn new(db: DatabaseConnection, defaults: OpportunityConfig, outbox: Outbox) -> Self {
        UseCases {
            uow: UnitOfWork::new(db, outbox),
            defaults,
        }
    }

    fn db(&self) -> &DatabaseConnection {
        self.uow.db()
    }

    // ---- configuration

    pub async fn config(&self, tenant: &str) -> Result<StoredConfig> {
        store::config(self.db(), tenant, &self.defaults).await
    }

    async fn rules(&self, tenant: &str) -> Result<OpportunityConfig> {
        Ok(self.config(tenant).await?.config)
    }

    pub async fn replace_config(
        &self,
        actor: &Actor,
        tenant: &str,
        config: OpportunityConfig,
        etag: &str,
    ) -> Result<StoredConfig> {
        let now = now_micros();
        let (config, defaults) = (&config, &self.defaults);
        self.uow
            .run(tenant, |tx| async move {
                let stored =
                    store::replace_config(&*tx, tenant, config, defaults, etag, &actor.id, now)
                        .await?;
                Trail::default().done(stored)
            })
            .await
    }

    // ---- accounts and contacts

    pub async fn create_account(
        &self,
        actor: &Actor,
        tenant: &str,
        request: Option<RequestKey<'_>>,
        draft: AccountDraft,
    ) -> Result<Account> {
        let now = now_micros();
        let account = domain::new_account(draft, actor, tenant, new_id(), now)?;
        let new = &account;
        let id: String = self
            .uow
            .run_once(tenant, request, |tx| async move {
                if let Some(existing) = store::account_named(&*tx, tenant, &new.name).await? {
                    return Err(OpportunityError::DuplicateAccount(existing.id));
                }
                store::insert_account(&*tx, new).await?;
                let mut trail = Trail::default();
                trail.audit(
                    tenant,
                    created(&new.id, "account.created", &actor.id, &new.name, now),
                );
                trail.event(events::account_created(new, now));
                trail.done(new.id.clone())
            })
            .await?;
        if id == account.id {
            Ok(account)
        } else {
            store::load_account(self.db(), tenant, &id).await
        }
    }

    pub async fn get_account(&self, tenant: &str, id: &str) -> Result<Account> {
        store::load_account(self.db(), tenant, id).await
    }

    pub async fn list_accounts(
        &self,
        tenant: &str,
        owner: Option<&str>,
        page: Page<'_>,
    ) -> Result<Vec<Account>> {
        store::list_accounts(self.db(), tenant, owner, page.after, page.limit).await
    }

    /// Applies region and owner at once; core fields become an
    /// ACCOUNT_CHANGE approval.
    pub async fn update_account(
        &self,
        actor: &Actor,
        tenant: &str,
        id: &str,
        etag: &str,
        update: AccountUpdate,
    ) -> Result<(Account, Option<Approval>)> {
        let now = now_micros();
        let config = self.rules(tenant).await?;
        let (config, update) = (&config, &update);
        self.uow
            .run(tenant, |tx| async move {
                let mut account = store::load_account(&*tx, tenant, id).await?;
                domain::check_etag(etag, account.version)?;
                let (version, before) = (account.version, account.clone());
                let core = domain::update_account(&mut account, update, actor)?;
                let mut trail = Trail::default();
                let approval = if core.is_empty() {
                    None
                } else {
                    let approval = domain::request_account_change(
                        &account,
                        core,
                        &update.reason,
                        actor,
                        config,
                        new_id(),
                        now,
                    );
                    store::insert_approval(&*tx, &approval).await?;
                    account.pending_approval_id = Some(approval.id.clone());
                    trail.event(events::approval_requested(&approval, now));
                    Some(approval)
                };
                let changes = domain::finish_account_update(&before, &mut account, actor, now);
                if !changes.is_empty() {
                    store::save_account(&*tx, &account, version).await?;
                    trail.audit(
                        tenant,
                        AuditEntry::new(id, "account.updated", &actor.id, now)
                            .with_field_changes(changes)
                            .with_reason(&update.reason),
                    );
                }
                trail.done((account, approval))
            })
            .await
    }

    pub async fn create_contact(
        &self,
        actor: &Actor,
        tenant: &str,
        request: Option<RequestKey<'_>>,
        draft: ContactDraft,
    ) -> Result<Contact> {
        let now = now_micros();
        let contact = draft.contact(actor, new_id(), now);
        let new = &contact;
        let id: String = self
            .uow
            .run_once(tenant, request, |tx| async move {
                store::load_account(&*tx, tenant, &new.account_id).await?;
                store::insert_contact(&*tx, tenant, new).await?;
                let mut trail = Trail::default();
                trail.audit(
                    tenant,
                    created(&new.id, "contact.created", &actor.id, &new.name, now),
                );
                trail.done(new.id.clone())
            })
            .await?;
        if id == contact.id {
            Ok(contact)
        } else {
            store::load_contact(self.db(), tenant, &id).await
        }
    }

    pub async fn list_contacts(
        &self,
        tenant: &str,
        account_id: &str,
        page: Page<'_>,
    ) -> Result<Vec<Contact>> {
        store::load_account(self.db(), tenant, account_id).await?;
        store::list_contacts(self.db(), tenant, account_id, page.after, page.limit).await
    }

    // ---- opportunities

    pub async fn create_opportunity(
        &self,
        actor: &Actor,
        tenant: &str,
        request: Option<RequestKey<'_>>,
        draft: OpportunityDraft,
    ) -> Result<(Opportunity, OpportunityConfig)> {
        let now = now_micros();
        let opportunity = domain::new_opportunity(draft, actor, tenant, new_id(), now)?;
        let config = self.rules(tenant).await?;
        let (new, rules) = (&opportunity, &config);
        let id: String = self
            .uow
            .run_once(tenant, request, |tx| async move {
                store::load_account(&*tx, tenant, &new.account_id).await?;
                store::insert_opportunity(&*tx, new).await?;
                let mut trail = Trail::default();
                trail.audit(
                    tenant,
                    created(&new.id, "opportunity.created", &actor.id, &new.name, now),
                );
                trail.event(events::opportunity_created(new, rules, now));
                trail.done(new.id.clone())
            })
            .await?;
        if id == opportunity.id {
            Ok((opportunity, config))
        } else {
            Ok((
                store::load_opportunity(self.db(), tenant, &id).await?,
                config,
            ))
        }
    }

    /// Converts a lead: finds or creates its account (by name) and contact
    /// (by name within the account) and creates its opportunity, unless the
    /// lead already has one: one opportunity per lead however often called.
    pub async fn convert_lead(
        &self,
        actor: &Actor,
        tenant: &str,
        lead: LeadSnapshot,
    ) -> Result<(Opportunity, Account, Option<String>, OpportunityConfig)> {
        let now = now_micros();
        let config = self.rules(tenant).await?;
        let (lead, rules) = (&lead, &config);
        let (opportunity, account, contact) = self
            .uow
            .run(tenant, |tx| async move {
                if let Some(opp) = store::opportunity_of_lead(&*tx, tenant, &lead.lead_id).await? {
                    let account = store::load_account(&*tx, tenant, &opp.account_id).await?;
                    let contact =
                        store::contact_named(&*tx, tenant, &account.id, &lead.contact_name).await?;
                    return Trail::default().done((opp, account, contact.map(|c| c.id)));
                }
                let mut trail = Trail::default();
                let account = match store::account_named(&*tx, tenant, &lead.company).await? {
                    Some(found) => found,
                    None => {
                        let new = domain::account_from_lead(lead, actor, tenant, new_id(), now);
                        store::insert_account(&*tx, &new).await?;
                        trail.audit(
                            tenant,
                            AuditEntry::new(&new.id, "account.created", &actor.id, now)
                                .with_reason(format!("lead {}", lead.lead_id)),
                        );
                        trail.event(events::account_created(&new, now));
                        new
                    }
                };
                let contact =
                    match store::contact_named(&*tx, tenant, &account.id, &lead.contact_name)
                        .await?
                    {
                        Some(found) => Some(found.id),
                        None => {
                            match domain::contact_from_lead(lead, &account.id, actor, new_id(), now)
                            {
                                Some(new) => {
                                    store::insert_contact(&*tx, tenant, &new).await?;
                                    Some(new.id)
                                }
                                None => None,
                            }
                        }
                    };
                let opp = domain::opportunity_from_lead(lead, &account, actor, new_id(), now);
                store::insert_opportunity(&*tx, &opp).await?;
                trail.audit(
                    tenant,
                    AuditEntry::new(&opp.id, "opportunity.created", &actor.id, now)
                        .with_reason(format!("converted from lead {}", lead.lead_id)),
                );
                trail.event(events::opportunity_created(&opp, rules, now));
                trail.done((opp, account, contact))
            })
            .await?;
        Ok((opportunity, account, contact, config))
    }

    /// The opportunity `id`, if `actor` may see it.
    async fn visible(&self, actor: &Actor, tenant: &str, id: &str) -> Result<Opportunity> {
        let opp = store::load_opportunity(self.db(), tenant, id).await?;
        opp.check_access(actor)?;
        Ok(opp)
    }

    pub async fn get_opportunity(
        &self,
        actor: &Actor,
        tenant: &str,
        id: &str,
    ) -> Result<(Opportunity, OpportunityConfig)> {
        let opp = self.visible(actor, tenant, id).await?;
        Ok((opp, self.rules(tenant).await?))
    }

    /// The opportunities `filter` names among those `actor` may see.
    pub async fn list_opportunities(
        &self,
        actor: &Actor,
        tenant: &str,
        filter: OpportunityFilter,
        page: Page<'_>,
    ) -> Result<(Vec<Opportunity>, OpportunityConfig)> {
        let filter = OpportunityFilter {
            team_member: Visibility::of(actor).team_member().map(str::to_owned),
            ..filter
        };
        let items =
            store::list_opportunities(self.db(), tenant, &filter, page.after, page.limit).await?;
        Ok((items, self.rules(tenant).await?))
    }

    pub async fn update_opportunity(
        &self,
        actor: &Actor,
        tenant: &str,
        id: &str,
        etag: &str,
        patches: Vec<OpportunityPatch>,
    ) -> Result<(Opportunity, OpportunityConfig)> {
        let now = now_micros();
        let patches = &patches;
        let opp = self
            .uow
            .run(tenant, |tx| async move {
                let mut opp = store::load_opportunity(&*tx, tenant, id).await?;
                domain::check_etag(etag, opp.version)?;
                let version = opp.version;
                let updated = domain::update(&mut opp, patches.clone(), actor, now)?;
                if let Some(review) = &updated.voided_review {
                    let mut approval = store::load_approval(&*tx, tenant, review).await?;
                    let version = approval.version;
                    if approval.void(now) {
                        store::save_approval(&*tx, &approval, version).await?;
                    }
                }
                let mut trail = Trail::default();
                if !updated.changes.is_empty() {
                    store::save_opportunity(&*tx, &opp, version).await?;
                    trail.audit(
                        tenant,
                        AuditEntry::new(id, "opportunity.updated", &actor.id, now)
                            .with_field_changes(updated.changes),
                    );
                }
                trail.done(opp)
            })
            .await?;
        Ok((opp, self.rules(tenant).await?))
    }

    pub async fn advance(
        &self,
        actor: &Actor,
        tenant: &str,
        id: &str,
        etag: &str,
        target: Stage,
        override_reason: &str,
    ) -> Result<(Opportunity, Option<StageViolation>, OpportunityConfig)> {
        let now = now_micros();
        let config = self.rules(tenant).await?;
        let rules = &config;
        let (opp, violation) = self
            .uow
            .run(tenant, |tx| async move {
                let mut opp = store::load_opportunity(&*tx, tenant, id).await?;
                domain::check_etag(etag, opp.version)?;
                let (version, from) = (opp.version, opp.stage);
                let facts = store::gate_facts(&*tx, tenant, id).await?;
                let (changes, violation) = domain::advance(
                    &mut opp,
                    target,
                    actor,
                    override_reason,
                    &facts,
                    rules,
                    new_id(),
                    now,
                )?;
                store::save_opportunity(&*tx, &opp, version).await?;
                if let Some(v) = &violation {
                    store::insert_violation(&*tx, tenant, v).await?;
                }
                let reason = violation
                    .as_ref()
                    .map(|v| format!("gate overridden: {}", v.reason))
                    .unwrap_or_default();
                let mut trail = Trail::default();
                trail.audit(
                    tenant,
                    AuditEntry::new(id, "opportunity.stage_changed", &actor.id, now)
                        .with_field_changes(changes)
                        .with_reason(reason),
                );
                for event in events::stage_changed(&opp, from, violation.as_ref(), rules, now) {
                    trail.event(event);
                }
                trail.done((opp, violation))
            })
            .await?;
        Ok((opp, violation, config))
    }

    // ---- decision chain, activities, hours

    pub async fn set_member(
        &self,
        actor: &Actor,
        tenant: &str,
        opportunity_id: &str,
        member: Member,
    ) -> Result<Member> {
        let now = now_micros();
        let m = &member;
        self.uow
            .run(tenant, |tx| async move {
                let opp = store::load_opportunity(&*tx, tenant, opportunity_id).await?;
                opp.check_access(actor)?;
                let contact = store::load_contact(&*tx, tenant, &m.contact_id).await?;
                domain::check_contact_of(&opp, &contact, "member.contact_id")?;
                store::put_member(&*tx, tenant, opportunity_id, m, now).await?;
                let text = format!(
                    "{} {}/{}/{}",
                    m.role, m.relationship, m.solution_acceptance, m.price_acceptance
                );
                let mut trail = Trail::default();
                trail.audit(
                    tenant,
                    AuditEntry::new(
                        opportunity_id,
                        "opportunity.decision_chain_set",
                        &actor.id,
                        now,
                    )
                    .with_changes(vec![FieldChange {
                        field: format!("decision_chain.{}", m.contact_id),
                        old: String::new(),
                        new: text,
                    }]),
                );
                trail.done(())
            })
            .await?;
        Ok(member)
    }

    pub async fn decision_chain(
        &self,
        actor: &Actor,
        tenant: &str,
        opportunity_id: &str,
    ) -> Result<Vec<Member>> {
        self.visible(actor, tenant, opportunity_id).await?;
        store::decision_chain(self.db(), tenant, opportunity_id).await
    }

    pub async fn log_activity(
        &self,
        actor: &Actor,
        tenant: &str,
        request: Option<RequestKey<'_>>,
        opportunity_id: &str,
        draft: ActivityDraft,
    ) -> Result<Activity> {
        let now = now_micros();
        let activity = draft.activity(opportunity_id, actor, new_id());
        let new = &activity;
        let id: String = self
            .uow
            .run_once(tenant, request, |tx| async move {
                let opp = store::load_opportunity(&*tx, tenant, opportunity_id).await?;
                opp.check_access(actor)?;
                for (i, contact_id) in new.contact_ids.iter().enumerate() {
                    let contact = store::load_contact(&*tx, tenant, contact_id).await?;
                    domain::check_contact_of(&opp, &contact, format!("activity.contact_ids[{i}]"))?;
                }
                store::insert_activity(&*tx, tenant, new, now).await?;
                let mut trail = Trail::default();
                trail.audit(
                    tenant,
                    AuditEntry::new(
                        opportunity_id,
                        "opportunity.activity_logged",
                        &actor.id,
                        now,
                    )
                    .with_reason(new.kind.as_str()),
                );
                trail.done(new.id.clone())
            })
            .await?;
        if id == activity.id {
            Ok(activity)
        } else {
            store::load_activity(self.db(), tenant, &id).await
        }
    }

    pub async fn activities(
        &self,
        actor: &Actor,
        tenant: &str,
        opportunity_id: &str,
        page: Page<'_>,
    ) -> Result<Vec<Activity>> {
        self.visible(actor, tenant, opportunity_id).await?;
        store::list_activities(self.db(), tenant, opportunity_id, page.after, page.limit).await
    }

    pub async fn log_work_hours(
        &self,
        actor: &Actor,
        tenant: &str,
        request: Option<RequestKey<'_>>,
        opportunity_id: &str,
        draft: WorkHoursDraft,
    ) -> Result<WorkHours> {
        let now = now_micros();
        let hours = draft.work_hours(opportunity_id, actor, new_id());
        let new = &hours;
        let id: String = self
            .uow
            .run_once(tenant, request, |tx| async move {
                let opp = store::load_opportunity(&*tx, tenant, opportunity_id).await?;
                opp.check_access(actor)?;
                store::insert_work_hours(&*tx, tenant, new, now).await?;
                let mut trail = Trail::default();
                trail.audit(
                    tenant,
                    AuditEntry::new(
                        opportunity_id,
                        "opportunity.work_hours_logged",
                        &actor.id,
                        now,
                    )
                    .with_reason(format!(
                        "{} minutes on {}",
                        new.minutes,
                        new.work_date.iso()
                    )),
                );
                trail.done(new.id.clone())
            })
            .await?;
        if id == hours.id {
            Ok(hours)
        } else {
            store::load_work_hours(self.db(), tenant, &id).await
        }
    }

    /// A page of the opportunity's hours and the total minutes.
    pub async fn work_hours(
        &self,
        actor: &Actor,
        tenant: &str,
        opportunity_id: &str,
        page: Page<'_>,
    ) -> Result<(Vec<WorkHours>, i64)> {
        self.visible(actor, tenant, opportunity_id).await?;
        store::list_work_hours(self.db(), tenant, opportunity_id, page.after, page.limit).await
    }

    pub async fn violations(
        &self,
        tenant: &str,
        opportunity_id: Option<&str>,
        page: Page<'_>,
    ) -> Result<Vec<StageViolation>> {
        store::list_violations(self.db(), tenant, opportunity_id, page.after, page.limit).await
    }

    // ---- approvals

    pub async fn request_approval(
        &self,
        actor: &Actor,
        tenant: &str,
        request: Option<RequestKey<'_>>,
        kind: ApprovalKind,
        opportunity_id: &str,
        reason: &str,
    ) -> Result<Approval> {
        let now = now_micros();
        let config = self.rules(tenant).await?;
        let rules = &config;
        let id: String = self
            .uow
            .run_once(tenant, request, |tx| async move {
                let mut opp = store::load_opportunity(&*tx, tenant, opportunity_id).await?;
                let version = opp.version;
                let approval =
                    domain::request_approval(&mut opp, kind, reason, actor, rules, new_id(), now)?;
                store::save_opportunity(&*tx, &opp, version).await?;
                store::insert_approval(&*tx, &approval).await?;
                let mut trail = Trail::default();
                trail.audit(
                    tenant,
                    AuditEntry::new(&approval.id, "approval.requested", &actor.id, now)
                        .with_reason(format!("{kind} for {opportunity_id}: {reason}")),
                );
                trail.event(events::approval_requested(&approval, now));
                trail.done(approval.id)
            })
            .await?;
        store::load_approval(self.db(), tenant, &id).await
    }

    pub async fn get_approval(&self, tenant: &str, id: &str) -> Result<Approval> {
        store::load_approval(self.db(), tenant, id).await
    }

    pub async fn list_approvals(
        &self,
        tenant: &str,
        subject: Option<&str>,
        status: Option<ApprovalStatus>,
        page: Page<'_>,
    ) -> Result<Vec<Approval>> {
        store::list_approvals(self.db(), tenant, subject, status, page.after, page.limit).await
    }

    /// Decides the current step; a decision that ends the chain takes
    /// effect on its subject in the same unit of work (an account change
    /// applied, a delivery review recorded).
    pub async fn decide(
        &self,
        actor: &Actor,
        tenant: &str,
        id: &str,
        etag: &str,
        decision: Decision,
        comment: &str,
        on_behalf_of: &str,
    ) -> Result<Approval> {
        let now = now_micros();
        self.uow
            .run(tenant, |tx| async move {
                let mut approval = store::load_approval(&*tx, tenant, id).await?;
                domain::check_etag(etag, approval.version)?;
                let version = approval.version;
                let reviewed = match approval.kind {
                    ApprovalKind::DeliveryReview => {
                        Some(store::load_opportunity(&*tx, tenant, &approval.subject_id).await?)
                    }
                    _ => None,
                };
                let delivery_manager = reviewed
                    .as_ref()
                    .map(|o| o.team.delivery_manager_id.as_str());
                let decided = domain::decide(
                    &mut approval,
                    actor,
                    decision,
                    comment,
                    on_behalf_of,
                    delivery_manager,
                    now,
                )?;
                store::save_approval(&*tx, &approval, version).await?;
                let mut trail = Trail::default();
                match (domain::effect(&approval, decided), reviewed) {
                    (domain::Effect::DeliveryReview { status }, Some(mut opp)) => {
                        let version = opp.version;
                        domain::record_review(&mut opp, &approval.id, status, actor, now);
                        store::save_opportunity(&*tx, &opp, version).await?;
                    }
                    (domain::Effect::AccountChange { approved }, _) => {
                        let mut account =
                            store::load_account(&*tx, tenant, &approval.subject_id).await?;
                        let version = account.version;
                        let changes = domain::settle_account_change(
                            &mut account,
                            &approval.detail.proposed,
                            approved,
                            actor,
                            now,
                        );
                        store::save_account(&*tx, &account, version).await?;
                        trail.audit(
                            tenant,
                            AuditEntry::new(
                                &account.id,
                                "account.core_fields_changed",
                                &actor.id,
                                now,
                            )
                            .with_field_changes(changes)
                            .with_reason(format!("approval {id} {decided:?}")),
                        );
                    }
                    _ => {}
                }
                let who = approval
                    .last_decided()
                    .map(Step::decided_by)
                    .unwrap_or_default();
                trail.audit(
                    tenant,
                    AuditEntry::new(id, "approval.decided", &actor.id, now)
                        .with_reason(format!("{decision} by {who}: {}", comment.trim())),
                );
                trail.event(events::approval_decided(&approval, now));
                trail.done(approval)
            })
            .await
    }

    // ---- pipeline and audit

    /// The weighted open pipeline of `owner` (empty: the caller's, or
    /// everyone's for a supervisor).
    pub async fn forecast(
        &self,
        actor: &Actor,
        tenant: &str,
        owner: &str,
    ) -> Result<Vec<ForecastLine>> {
        let owner = domain::forecast_owner(actor, owner)?;
        let config = self.rules(tenant).await?;
        let totals = store::open_pipeline(self.db(), tenant, owner.as_deref()).await?;
        Ok(domain::forecast(totals, &config))
    }

    pub async fn audit_entries(
        &self,
        tenant: &str,
        subject: Option<&str>,
        page: Page<'_>,
    ) -> Result<Vec<AuditEntry>> {
        store::audit_entries(self.db(), tenant, subject, page.after, page.limit).await
    }
}
