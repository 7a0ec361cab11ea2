//! Satisfaction, health, churn risk and loyalty tiers: what each relevant
//! event does to an account, recomputed in the event's transaction.

use crm_store::idempotency::RequestKey;
use crm_types::{Actor, AuditEntry, Money, Role, new_id};
use sea_orm::ConnectionTrait;

use super::{Page, Result, Trail, UseCases};
use crate::domain::{
    Account, AccountOwner, DAY, PurchaseFigures, RetentionTask, TicketError, TicketsConfig, Tier,
    next_review, rejudge, resource, tier,
};
use crate::store::{self, AccountRef};
use crate::wire::events;

/// Loads the account (or starts one), lets `change` update its figures,
/// then re-judges its health and churn risk: the score's change, the risk
/// raised with its retention task for the account manager.
pub(super) async fn touch_account<F>(
    conn: &impl ConnectionTrait,
    tenant: &str,
    account_id: &str,
    config: &TicketsConfig,
    actor: &str,
    now: i64,
    trail: &mut Trail,
    change: F,
) -> Result<Account>
where
    F: FnOnce(&mut Account),
{
    let mut a = store::load_account(conn, tenant, account_id)
        .await?
        .unwrap_or_else(|| Account::new(tenant, account_id, now));
    change(&mut a);
    let window = i64::from(config.churn_rules.complaint_window_days) * DAY;
    let windows = store::complaint_windows(conn, tenant, account_id, now, window).await?;
    let judged = rejudge(
        &mut a,
        &config.health_weights,
        &config.churn_rules,
        windows,
        now,
    );
    store::save_account(conn, &a).await?;
    if judged.score_changed {
        trail.event(events::health_changed(&a, judged.previous_score, now));
    }
    if judged.risk_raised {
        let task = RetentionTask {
            id: new_id(),
            account_id: a.account_id.clone(),
            assignee_id: a.account_manager_id.clone(),
            reasons: a.risk_reasons.clone(),
            create_time: now,
        };
        store::insert_retention(conn, tenant, &task).await?;
        trail.event(events::churn_risk_raised(&a, now));
        trail.event(events::retention_task_created(tenant, &task, now));
        trail.audit(
            AuditEntry::new(&a.account_id, "account.churn_risk_raised", actor, now).with_reason(
                a.risk_reasons
                    .iter()
                    .map(|r| format!("{r:?}"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
        );
    }
    Ok(a)
}

/// The actor of audit entries of account managers set from the
/// opportunities service's account events.
pub const OWNER_ACTOR: &str = "system:tickets-account-owners";

/// A tier judged anew: if it changed, the LoyaltyTierChanged event and
/// the audit entry, whoever judged it (a purchase or the sweeper).
fn tier_trail(trail: &mut Trail, a: &Account, recent: u64, previous: Tier, actor: &str, now: i64) {
    if a.tier != previous {
        trail.event(events::tier_changed(a, recent, previous, now));
        trail.audit(
            AuditEntry::new(&a.account_id, "account.tier_changed", actor, now)
                .with_reason(format!("{} -> {}", previous.as_str(), a.tier.as_str())),
        );
    }
}

/// A purchase as the integration reports it.
#[derive(Debug, Clone)]
pub struct PurchaseInput {
    pub account_id: String,
    pub amount: Money,
    pub time: i64,
    pub industry: String,
    pub account_manager_id: String,
}

/// Who may read an account's health: sales only their own accounts.
fn check_account_visible(a: &Account, actor: &Actor) -> Result<()> {
    let tenant_wide = [Role::Manager, Role::Admin, Role::Integration, Role::Service]
        .iter()
        .any(|r| actor.has(*r));
    if tenant_wide || (!a.account_manager_id.is_empty() && a.account_manager_id == actor.id) {
        Ok(())
    } else {
        Err(TicketError::not_found(
            resource::ACCOUNT_HEALTH,
            &a.account_id,
        ))
    }
}

/// Sales see only their own accounts in lists.
fn manager_scope(actor: &Actor) -> Option<&str> {
    let tenant_wide = [Role::Manager, Role::Admin, Role::Integration]
        .iter()
        .any(|r| actor.has(*r));
    (!tenant_wide).then_some(actor.id.as_str())
}

impl UseCases {
    /// An NPS answer (0-10) of a contact.
    pub async fn record_nps(
        &self,
        actor: &Actor,
        tenant: &str,
        request: Option<RequestKey<'_>>,
        account_id: &str,
        contact_id: &str,
        score: u8,
    ) -> Result<Account> {
        let config = self.rules(tenant).await?;
        let config = &config;
        self.uow
            .run_once(tenant, request, |tx| async move {
                let now = crm_types::now_micros();
                let mut trail = Trail::default();
                touch_account(
                    &*tx,
                    tenant,
                    account_id,
                    config,
                    &actor.id,
                    now,
                    &mut trail,
                    |a| a.stats.record_nps(score),
                )
                .await?;
                trail.audit(
                    AuditEntry::new(account_id, "account.nps_recorded", &actor.id, now)
                        .with_reason(format!("contact {contact_id}: {score}")),
                );
                trail.done(())
            })
            .await?;
        self.account(tenant, account_id).await
    }

    /// A usage signal: a guide sent counts as unopened until one is opened.
    pub async fn record_usage_signal(
        &self,
        actor: &Actor,
        tenant: &str,
        request: Option<RequestKey<'_>>,
        account_id: &str,
        opened: bool,
    ) -> Result<Account> {
        let config = self.rules(tenant).await?;
        let config = &config;
        self.uow
            .run_once(tenant, request, |tx| async move {
                let now = crm_types::now_micros();
                let mut trail = Trail::default();
                touch_account(
                    &*tx,
                    tenant,
                    account_id,
                    config,
                    &actor.id,
                    now,
                    &mut trail,
                    |a| {
                        if opened {
                            a.stats.unopened_guides_in_a_row = 0;
                        } else {
                            a.stats.unopened_guides_in_a_row += 1;
                        }
                    },
                )
                .await?;
                let what = if opened { "guide opened" } else { "guide sent" };
                trail.audit(
                    AuditEntry::new(account_id, "account.usage_signal", &actor.id, now)
                        .with_reason(what),
                );
                trail.done(())
            })
            .await?;
        self.account(tenant, account_id).await
    }

    /// A purchase: the account's figures and its loyalty tier.
    pub async fn record_purchase(
        &self,
        actor: &Actor,
        tenant: &str,
        request: Option<RequestKey<'_>>,
        input: PurchaseInput,
    ) -> Result<(Account, u64)> {
        let config = self.rules(tenant).await?;
        let (config, input) = (&config, &input);
        self.uow
            .run_once(tenant, request, |tx| async move {
                let now = crm_types::now_micros();
                let mut a = store::load_account(&*tx, tenant, &input.account_id)
                    .await?
                    .unwrap_or_else(|| Account::new(tenant, &input.account_id, now));
                if !a.currency.is_empty() && a.currency != input.amount.currency {
                    return Err(TicketError::invalid(
                        "amount.currency_code",
                        format!("the account's purchases are in {}", a.currency),
                    ));
                }
                store::insert_purchase(
                    &*tx,
                    store::NewPurchase {
                        id: new_id(),
                        tenant,
                        account_id: &input.account_id,
                        time: input.time,
                        currency: &input.amount.currency,
                        units: input.amount.units,
                        nanos: input.amount.nanos,
                    },
                )
                .await?;
                a.currency = input.amount.currency.clone();
                a.purchases += 1;
                a.total_nanos += input.amount.total_nanos();
                a.last_purchase_time =
                    Some(a.last_purchase_time.unwrap_or(i64::MIN).max(input.time));
                if !input.industry.is_empty() {
                    a.industry = input.industry.clone();
                }
                if !input.account_manager_id.is_empty() {
                    a.account_manager_id = input.account_manager_id.clone();
                }
                let previous = a.tier;
                let recent = self.judge_tier(&*tx, &mut a, config, now).await?;
                a.update_time = now;
                store::save_account(&*tx, &a).await?;
                let mut trail = Trail::default();
                trail.audit(
                    AuditEntry::new(&a.account_id, "account.purchase_recorded", &actor.id, now)
                        .with_reason(format!(
                            "{} {}.{:09}",
                            input.amount.currency, input.amount.units, input.amount.nanos
                        )),
                );
                tier_trail(&mut trail, &a, recent, previous, &actor.id, now);
                trail.done(())
            })
            .await?;
        let a = self.account(tenant, &input.account_id).await?;
        let recent = self.recent_purchases(tenant, &a, config).await?;
        Ok((a, recent))
    }

    /// Judges the tier at `now`, and when to judge it again without a
    /// purchase; returns the purchases in the window.
    async fn judge_tier(
        &self,
        conn: &impl ConnectionTrait,
        a: &mut Account,
        config: &TicketsConfig,
        now: i64,
    ) -> Result<u64> {
        let t = config.thresholds(&a.industry);
        let since = now - i64::from(t.frequency_window_days) * DAY;
        let recent = store::purchases_since(conn, &a.tenant, &a.account_id, since).await?;
        let oldest = if recent == 0 {
            None
        } else {
            store::oldest_purchase_since(conn, &a.tenant, &a.account_id, since).await?
        };
        let figures = PurchaseFigures {
            purchases: a.purchases,
            recent_purchases: recent,
            average_nanos: if a.purchases == 0 {
                0
            } else {
                a.total_nanos / i128::from(a.purchases)
            },
            last_purchase_time: a.last_purchase_time,
            oldest_recent_purchase_time: oldest,
        };
        a.tier = tier(&figures, &t, now);
        a.next_tier_review = next_review(&figures, &t, now);
        Ok(recent)
    }

    /// Applies an account's owner from the opportunities service inside
    /// the consumer's transaction (which also moves its cursor): the owner
    /// becomes the account's manager, and the account's tickets and open
    /// retention tasks follow in one statement each. An account not known
    /// here yet gets its row, as any account event makes one, so that its
    /// first ticket copies its manager. Returns whether anything changed:
    /// a replay finds the manager set and changes nothing.
    pub async fn apply_account_owner(
        &self,
        txn: &impl ConnectionTrait,
        o: &AccountOwner,
    ) -> Result<bool> {
        let now = crm_types::now_micros();
        let mut a = store::load_account(txn, &o.tenant, &o.account_id)
            .await?
            .unwrap_or_else(|| Account::new(&o.tenant, &o.account_id, now));
        if a.account_manager_id == o.owner_id {
            return Ok(false);
        }
        let previous = std::mem::replace(&mut a.account_manager_id, o.owner_id.clone());
        a.update_time = now;
        store::save_account(txn, &a).await?;
        let tickets =
            store::reassign_account_tickets(txn, &o.tenant, &o.account_id, &o.owner_id).await?;
        let tasks =
            store::reassign_retention_tasks(txn, &o.tenant, &o.account_id, &o.owner_id).await?;
        let entry = AuditEntry::new(&a.account_id, "account.manager_changed", OWNER_ACTOR, now)
            .with_reason(format!(
                "{} -> {} ({tickets} tickets, {tasks} open retention tasks)",
                if previous.is_empty() {
                    "nobody"
                } else {
                    &previous
                },
                o.owner_id
            ));
        crm_store::audit::append(txn, &o.tenant, vec![entry]).await?;
        Ok(true)
    }

    /// Up to `batch` accounts of any tenant whose tier is due for review
    /// at `now`.
    pub async fn due_tier_reviews(
        &self,
        now: i64,
        after: Option<&AccountRef>,
        batch: u64,
    ) -> Result<Vec<AccountRef>> {
        store::due_tier_reviews(self.db(), now, after, batch).await
    }

    /// Judges one account's tier again at `now` as `sweeper`, in a unit of
    /// work of its own: a change is told exactly as a purchase's is (the
    /// LoyaltyTierChanged event and an audit entry). Returns whether the
    /// tier changed.
    pub async fn review_tier(
        &self,
        tenant: &str,
        account_id: &str,
        sweeper: &str,
        now: i64,
    ) -> Result<bool> {
        let config = self.rules(tenant).await?;
        let config = &config;
        self.uow
            .run(tenant, |tx| async move {
                let Some(mut a) = store::load_account(&*tx, tenant, account_id).await? else {
                    return Trail::default().done(false);
                };
                if a.next_tier_review.is_none_or(|at| at > now) {
                    // Judged meanwhile (a purchase): nothing due any more.
                    return Trail::default().done(false);
                }
                let previous = a.tier;
                let recent = self.judge_tier(&*tx, &mut a, config, now).await?;
                a.update_time = now;
                store::save_account(&*tx, &a).await?;
                let mut trail = Trail::default();
                tier_trail(&mut trail, &a, recent, previous, sweeper, now);
                trail.done(a.tier != previous)
            })
            .await
    }

    async fn recent_purchases(
        &self,
        tenant: &str,
        a: &Account,
        config: &TicketsConfig,
    ) -> Result<u64> {
        let t = config.thresholds(&a.industry);
        let since = crm_types::now_micros() - i64::from(t.frequency_window_days) * DAY;
        store::purchases_since(self.db(), tenant, &a.account_id, since).await
    }

    async fn account(&self, tenant: &str, account_id: &str) -> Result<Account> {
        store::load_account(self.db(), tenant, account_id)
            .await?
            .ok_or_else(|| TicketError::not_found(resource::ACCOUNT_HEALTH, account_id))
    }

    pub async fn health(&self, actor: &Actor, tenant: &str, account_id: &str) -> Result<Account> {
        let a = self.account(tenant, account_id).await?;
        if !a.health_known {
            return Err(TicketError::not_found(resource::ACCOUNT_HEALTH, account_id));
        }
        check_account_visible(&a, actor)?;
        Ok(a)
    }

    /// The tier judged now, with the purchases in the window.
    pub async fn loyalty_tier(
        &self,
        actor: &Actor,
        tenant: &str,
        account_id: &str,
    ) -> Result<(Account, u64)> {
        let mut a = self.account(tenant, account_id).await?;
        if a.purchases == 0 {
            return Err(TicketError::not_found(resource::ACCOUNT, account_id));
        }
        check_account_visible(&a, actor)?;
        let config = self.rules(tenant).await?;
        let recent = self
            .judge_tier(self.db(), &mut a, &config, crm_types::now_micros())
            .await?;
        Ok((a, recent))
    }

    pub async fn at_risk(
        &self,
        actor: &Actor,
        tenant: &str,
        page: Page<'_, (i32, String)>,
    ) -> Result<Vec<Account>> {
        store::at_risk(
            self.db(),
            tenant,
            manager_scope(actor),
            page.after,
            page.limit,
        )
        .await
    }

    pub async fn retention_tasks(
        &self,
        actor: &Actor,
        tenant: &str,
        account_id: Option<&str>,
        page: Page<'_, String>,
    ) -> Result<Vec<RetentionTask>> {
        store::list_retention(
            self.db(),
            tenant,
            manager_scope(actor),
            account_id,
            page.after,
            page.limit,
        )
        .await
    }
}
