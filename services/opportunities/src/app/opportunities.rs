//! Opportunities, their decision chains, activities and hours, the stage
//! gates and the weighted pipeline.

use crm_store::idempotency::RequestKey;
use crm_types::{Actor, AuditEntry, FieldChange, new_id, now_micros};

use super::{Page, Result, Trail, UseCases, created};
use crate::domain::{
    self, Account, Activity, ActivityDraft, ForecastLine, LeadSnapshot, Member, Opportunity,
    OpportunityConfig, OpportunityDraft, OpportunityFilter, OpportunityPatch, Stage,
    StageViolation, Visibility, WorkHours, WorkHoursDraft,
};
use crate::store;
use crate::wire::events;

impl UseCases {
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
                // An opportunity is opened on an account its creator sees.
                self.visible_account(&*tx, actor, tenant, &new.account_id)
                    .await?;
                store::insert_opportunity(&*tx, new).await?;
                let mut trail = Trail::default();
                trail.event(events::opportunity_created(new, rules, now));
                trail.audit(created(
                    &new.id,
                    "opportunity.created",
                    &actor.id,
                    &new.name,
                    now,
                ));
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
    /// lead already has one: one opportunity per lead however often called,
    /// returned only to an `actor` who may see it. `actor` is the user the
    /// leads service converts for, or that service itself.
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
                    domain::check_existing_conversion(&opp, actor)?;
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
                        trail.event(events::account_created(&new, now));
                        trail.audit(
                            AuditEntry::new(&new.id, "account.created", &actor.id, now)
                                .with_reason(format!("lead {}", lead.lead_id)),
                        );
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
                                    trail.account_changed(
                                        &account,
                                        created(
                                            &new.id,
                                            "contact.created",
                                            &actor.id,
                                            &new.name,
                                            now,
                                        )
                                        .with_reason(format!("lead {}", lead.lead_id)),
                                    );
                                    Some(new.id)
                                }
                                None => None,
                            }
                        }
                    };
                let opp = domain::opportunity_from_lead(lead, &account, actor, new_id(), now);
                store::insert_opportunity(&*tx, &opp).await?;
                trail.event(events::opportunity_created(&opp, rules, now));
                trail.audit(
                    AuditEntry::new(&opp.id, "opportunity.created", &actor.id, now)
                        .with_reason(format!("converted from lead {}", lead.lead_id)),
                );
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
        let config = self.rules(tenant).await?;
        let rules = &config;
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
                    trail.opportunity_changed(
                        &opp,
                        rules,
                        AuditEntry::new(id, "opportunity.updated", &actor.id, now)
                            .with_field_changes(updated.changes),
                    );
                }
                trail.done(opp)
            })
            .await?;
        Ok((opp, config))
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
                trail.opportunity_changed(
                    &opp,
                    rules,
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
        let config = self.rules(tenant).await?;
        let rules = &config;
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
                trail.opportunity_changed(
                    &opp,
                    rules,
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
        let config = self.rules(tenant).await?;
        let rules = &config;
        let id: String = self
            .uow
            .run_once(tenant, request, |tx| async move {
                let opp = store::load_opportunity(&*tx, tenant, opportunity_id).await?;
                opp.check_access(actor)?;
                // The ids are deduplicated and bounded by the wire: one query.
                let contacts = store::load_contacts(&*tx, tenant, &new.contact_ids).await?;
                for (i, contact) in contacts.iter().enumerate() {
                    domain::check_contact_of(&opp, contact, format!("activity.contact_ids[{i}]"))?;
                }
                store::insert_activity(&*tx, tenant, new, now).await?;
                let mut trail = Trail::default();
                trail.opportunity_changed(
                    &opp,
                    rules,
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
        let config = self.rules(tenant).await?;
        let rules = &config;
        let id: String = self
            .uow
            .run_once(tenant, request, |tx| async move {
                let opp = store::load_opportunity(&*tx, tenant, opportunity_id).await?;
                opp.check_access(actor)?;
                store::insert_work_hours(&*tx, tenant, new, now).await?;
                let mut trail = Trail::default();
                trail.opportunity_changed(
                    &opp,
                    rules,
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
}
