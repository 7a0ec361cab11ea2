//! Entitlements: by hand, and from the delivery service's go-live events
//! (exactly one per completed project).

use crm_store::idempotency::RequestKey;
use crm_types::{Actor, AuditEntry, new_id, now_micros};
use sea_orm::ConnectionTrait;

use super::{Page, Result, Trail, UseCases};
use crate::domain::{Entitlement, Origin, Plan, ProjectCompleted, TicketError, local_date};
use crate::store;
use crate::wire::{EntitlementInput, events};

/// The service identity's name in audit entries of go-live entitlements.
pub const CONSUMER: &str = "tickets.delivery-consumer";

async fn insert(
    conn: &impl ConnectionTrait,
    e: &Entitlement,
    trail: &mut Trail,
    now: i64,
) -> Result<()> {
    store::insert_entitlement(conn, e).await?;
    if !e.account_manager_id.is_empty() {
        let mut a = store::load_account(conn, &e.tenant, &e.account_id)
            .await?
            .unwrap_or_else(|| crate::domain::Account::new(&e.tenant, &e.account_id, now));
        a.account_manager_id = e.account_manager_id.clone();
        store::save_account(conn, &a).await?;
    }
    trail.audit(
        AuditEntry::new(&e.id, "entitlement.created", &e.creator, now).with_reason(format!(
            "{} for account {}",
            e.plan.service_level, e.account_id
        )),
    );
    trail.event(events::entitlement_created(e, now));
    Ok(())
}

impl UseCases {
    pub async fn create_entitlement(
        &self,
        actor: &Actor,
        tenant: &str,
        request: Option<RequestKey<'_>>,
        input: EntitlementInput,
    ) -> Result<Entitlement> {
        let input = &input;
        let id: String = self
            .uow
            .run_once(tenant, request, |tx| async move {
                let now = now_micros();
                let e = Entitlement {
                    id: new_id(),
                    tenant: tenant.to_owned(),
                    version: 1,
                    account_id: input.account_id.clone(),
                    plan: input.plan.clone(),
                    valid_from: input.valid_from,
                    valid_to: input.valid_to,
                    origin: Origin::Manual,
                    project_id: String::new(),
                    contract_id: String::new(),
                    account_manager_id: input.account_manager_id.clone(),
                    create_time: now,
                    creator: actor.id.clone(),
                };
                let mut trail = Trail::default();
                insert(&*tx, &e, &mut trail, now).await?;
                trail.done(e.id)
            })
            .await?;
        store::load_entitlement(self.db(), tenant, &id).await
    }

    /// Applies a go-live inside the consumer's transaction (which also
    /// moves its cursor): the entitlement unless the project has one.
    /// Returns whether one was created.
    pub async fn apply_project_completed(
        &self,
        txn: &impl ConnectionTrait,
        p: &ProjectCompleted,
    ) -> Result<bool> {
        if p.account_id.is_empty() || p.project_id.is_empty() {
            return Err(TicketError::invalid(
                "account_id",
                "a go-live without an account or project",
            ));
        }
        if store::entitlement_of_project(txn, &p.tenant, &p.project_id)
            .await?
            .is_some()
        {
            return Ok(false);
        }
        let config = store::config(txn, &p.tenant, &self.defaults).await?.config;
        let now = now_micros();
        let plan: Plan = config.plan_named(&p.service_level);
        let today = local_date(&config, now);
        let (valid_from, valid_to) = p.term.unwrap_or((today, today.plus_days(365)));
        let e = Entitlement {
            id: new_id(),
            tenant: p.tenant.clone(),
            version: 1,
            account_id: p.account_id.clone(),
            plan,
            valid_from,
            valid_to: valid_to.max(valid_from),
            origin: Origin::ProjectCompleted,
            project_id: p.project_id.clone(),
            contract_id: p.contract_id.clone(),
            account_manager_id: p.account_manager_id.clone(),
            create_time: now,
            creator: CONSUMER.to_owned(),
        };
        let mut trail = Trail::default();
        insert(txn, &e, &mut trail, now).await?;
        crm_store::audit::append(txn, &p.tenant, trail.audit).await?;
        self.outbox.append_many(txn, trail.events).await?;
        Ok(true)
    }

    /// Wakes the sequencer after a consumer's commit.
    pub fn notify(&self) {
        self.outbox.notify();
    }

    pub async fn get_entitlement(&self, tenant: &str, id: &str) -> Result<Entitlement> {
        store::load_entitlement(self.db(), tenant, id).await
    }

    pub async fn list_entitlements(
        &self,
        tenant: &str,
        account_id: Option<&str>,
        page: Page<'_, String>,
    ) -> Result<Vec<Entitlement>> {
        store::list_entitlements(self.db(), tenant, account_id, page.after, page.limit).await
    }
}
