//! The service's own work: the SLA sweeper that raises warnings and
//! breaches and then re-judges the loyalty tiers due for review (bounded
//! batches of keys across tenants; each ticket and each account in its own
//! transaction, so a busy or broken one holds up nobody else; shutdown
//! cuts a sweep short between them, losing and repeating nothing), and
//! the consumer of the delivery service's go-live events.

use std::{future::Future, time::Duration};

use crm_events::{Event, Handler};
use sea_orm::DatabaseTransaction;

use crate::app::{Swept, UseCases};
use crate::domain::TicketError;
use crate::store::{AccountRef, DueRef};
use crate::wire;

/// Who runs the SLA clocks, in the audit trail.
pub const SWEEPER: &str = "system:tickets-sweeper";

/// The go-live consumer's cursor name (stable across releases).
pub const PROJECT_CONSUMER: &str = "tickets.delivery-project-completed";

/// The account-owner consumer's cursor name (stable across releases).
pub const OWNER_CONSUMER: &str = "tickets.opportunities-account-owner";

/// Runs the SLA clocks, then the tier reviews, every `interval` until
/// `shutdown` completes.
pub fn spawn_sweeper(
    app: UseCases,
    interval: Duration,
    batch: u64,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::pin!(shutdown);
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = ticks.tick() => {}
            }
            let swept = tokio::select! {
                () = &mut shutdown => return,
                swept = sweep(&app, crm_store::now_micros(), batch) => swept,
            };
            crm_service::sweeper_ran("tickets", "sla", swept.skipped);
            if swept.fired > 0 || swept.skipped > 0 {
                tracing::info!(
                    fired = swept.fired,
                    skipped = swept.skipped,
                    "ran the SLA clocks"
                );
            }
            let reviewed = tokio::select! {
                () = &mut shutdown => return,
                reviewed = sweep_tiers(&app, crm_store::now_micros(), batch) => reviewed,
            };
            crm_service::sweeper_ran("tickets", "tiers", reviewed.skipped);
            if reviewed.changed > 0 || reviewed.skipped > 0 {
                tracing::info!(
                    changed = reviewed.changed,
                    skipped = reviewed.skipped,
                    "reviewed the loyalty tiers"
                );
            }
        }
    })
}

/// One pass over every ticket with an SLA check due at `now`, of every
/// tenant, `batch` keys per query.
pub async fn sweep(app: &UseCases, now: i64, batch: u64) -> Swept {
    let (fired, skipped) = in_batches(
        "SLA check",
        batch,
        |after: Option<DueRef>| async move { app.due_tickets(now, after.as_ref(), batch).await },
        |due: DueRef| async move {
            app.sweep_ticket(&due.tenant_id, &due.id, SWEEPER, now)
                .await
        },
    )
    .await;
    Swept { fired, skipped }
}

/// What one pass over the tiers due for review did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Reviewed {
    /// Accounts whose tier changed.
    pub changed: usize,
    /// Accounts that failed: tried again at the next pass.
    pub skipped: usize,
}

/// One pass over every account of every tenant whose loyalty tier is due
/// for review at `now` (its last purchase stops being recent, or its
/// oldest purchase in the frequency window leaves it), `batch` keys per
/// query, each account in its own unit of work.
pub async fn sweep_tiers(app: &UseCases, now: i64, batch: u64) -> Reviewed {
    let (changed, skipped) = in_batches(
        "tier review",
        batch,
        |after: Option<AccountRef>| async move {
            app.due_tier_reviews(now, after.as_ref(), batch).await
        },
        |due: AccountRef| async move {
            app.review_tier(&due.tenant_id, &due.account_id, SWEEPER, now)
                .await
                .map(usize::from)
        },
    )
    .await;
    Reviewed { changed, skipped }
}

/// Walks the keys `page` finds, `batch` at a time, running `each` on every
/// one: a key that fails is logged, counted and passed over until the next
/// pass; a page that cannot be read ends this pass. Returns what `each`
/// counted and how many keys failed.
async fn in_batches<K, Page, Each>(
    what: &str,
    batch: u64,
    mut page: impl FnMut(Option<K>) -> Page,
    mut each: impl FnMut(K) -> Each,
) -> (usize, usize)
where
    K: Clone + std::fmt::Debug,
    Page: Future<Output = Result<Vec<K>, TicketError>>,
    Each: Future<Output = Result<usize, TicketError>>,
{
    let (mut done, mut skipped) = (0, 0);
    let mut after = None;
    loop {
        let keys = match page(after.clone()).await {
            Ok(keys) => keys,
            Err(err) => {
                tracing::warn!(error = %err, "{what} pass failed; retrying next interval");
                return (done, skipped);
            }
        };
        let more = keys.len() as u64 == batch;
        for key in keys {
            match each(key.clone()).await {
                Ok(n) => done += n,
                Err(err) => {
                    skipped += 1;
                    tracing::warn!(key = ?key, error = %err, "{what} failed; passing over it");
                }
            }
            after = Some(key);
        }
        if !more {
            return (done, skipped);
        }
    }
}

/// Makes each go-live's entitlement in the event's tenant, in the
/// transaction that moves the consumer's cursor.
pub struct ProjectHandler {
    pub app: UseCases,
}

/// Why a go-live could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    /// The event itself is unusable: parked, the stream goes on.
    #[error("unusable DeliveryProjectCompleted: {0}")]
    Unusable(String),
    #[error(transparent)]
    Ticket(#[from] TicketError),
}

impl Handler for ProjectHandler {
    type Error = ProjectError;

    async fn handle(&self, txn: &DatabaseTransaction, event: &Event) -> Result<(), ProjectError> {
        if event.r#type != wire::PROJECT_COMPLETED {
            return Ok(());
        }
        let payload = event
            .payload
            .as_ref()
            .ok_or_else(|| ProjectError::Unusable("no payload".into()))?;
        let p =
            wire::project_completed(&event.tenant_id, payload).map_err(ProjectError::Unusable)?;
        if self.app.apply_project_completed(txn, &p).await? {
            self.app.notify();
        }
        Ok(())
    }

    fn is_permanent(&self, error: &ProjectError) -> bool {
        matches!(
            error,
            ProjectError::Unusable(_) | ProjectError::Ticket(TicketError::Invalid(_))
        )
    }
}

/// Sets each account's manager to its owner in the opportunities service
/// (AccountCreated, and AccountChanged of the owner) in the event's tenant,
/// in the transaction that moves the consumer's cursor.
pub struct AccountOwnerHandler {
    pub app: UseCases,
}

/// Why an account event could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum OwnerError {
    /// The event itself is unusable: parked, the stream goes on.
    #[error("unusable account event: {0}")]
    Unusable(String),
    #[error(transparent)]
    Ticket(#[from] TicketError),
}

impl Handler for AccountOwnerHandler {
    type Error = OwnerError;

    async fn handle(&self, txn: &DatabaseTransaction, event: &Event) -> Result<(), OwnerError> {
        let payload = event
            .payload
            .as_ref()
            .ok_or_else(|| OwnerError::Unusable("no payload".into()))?;
        let owner = wire::account_owner(&event.tenant_id, &event.r#type, payload)
            .map_err(OwnerError::Unusable)?;
        if let Some(owner) = owner {
            self.app.apply_account_owner(txn, &owner).await?;
        }
        Ok(())
    }

    fn is_permanent(&self, error: &OwnerError) -> bool {
        matches!(
            error,
            OwnerError::Unusable(_) | OwnerError::Ticket(TicketError::Invalid(_))
        )
    }
}
