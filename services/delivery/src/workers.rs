//! The service's own work: the handover consumer (every tenant's
//! `ContractSigned` from the contracts service, each applied exactly once
//! in its tenant) and the risk sweeper (bounded batches of keys across
//! tenants; each project or person in its own transaction, so a busy or
//! broken one holds up nobody; shutdown cuts a sweep short between them).

use std::{future::Future, time::Duration};

use crm_events::{Event, Handler};
use sea_orm::DatabaseTransaction;

use crate::app::{Swept, UseCases};
use crate::domain::DeliveryError;

/// The consumer's name: the key of its cursor (stable across releases).
pub const HANDOVER_CONSUMER: &str = "delivery.handover";

/// Applies ContractSigned events: a project per contract family.
pub struct HandoverHandler {
    pub app: UseCases,
}

impl Handler for HandoverHandler {
    type Error = DeliveryError;

    async fn handle(&self, txn: &DatabaseTransaction, event: &Event) -> Result<(), DeliveryError> {
        self.app.apply_handover(txn, event).await
    }

    /// A handover that can never make a project is parked; anything else
    /// (the database away, a concurrent replica's insert) is retried.
    fn is_permanent(&self, error: &DeliveryError) -> bool {
        matches!(
            error,
            DeliveryError::BadHandover(_) | DeliveryError::Invalid(_)
        )
    }
}

/// Runs the risk rules every `interval` until `shutdown` completes.
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
                swept = sweep(&app, crm_types::now_micros(), batch) => swept,
            };
            if swept.changed > 0 || swept.skipped > 0 {
                tracing::info!(
                    checked = swept.checked,
                    changed = swept.changed,
                    skipped = swept.skipped,
                    "swept delivery risks"
                );
            }
        }
    })
}

/// One pass at `now` over every active project and every person with
/// planned work (or an open shortage), of every tenant, `batch` keys per
/// query.
pub async fn sweep(app: &UseCases, now: i64, batch: u64) -> Swept {
    let mut swept = Swept::default();
    let mut after = None;
    loop {
        let page = match app.active_projects(after.as_ref(), batch).await {
            Ok(page) => page,
            Err(err) => {
                tracing::warn!(error = %err, "delivery sweep failed; retrying next interval");
                return swept;
            }
        };
        let more = page.len() as u64 == batch;
        for (tenant, id) in page {
            match app.sweep_project(&tenant, &id, now).await {
                Ok(Some(changed)) => {
                    swept.checked += 1;
                    swept.changed += changed;
                }
                Ok(None) => swept.skipped += 1,
                Err(err) => {
                    swept.skipped += 1;
                    tracing::warn!(
                        tenant = %tenant, project = %id, error = %err,
                        "a project's risks failed; passing over it"
                    );
                }
            }
            after = Some((tenant, id));
        }
        if !more {
            break;
        }
    }
    let mut after = None;
    loop {
        let page = match app.people_to_check(after.as_ref(), batch).await {
            Ok(page) => page,
            Err(err) => {
                tracing::warn!(error = %err, "delivery sweep failed; retrying next interval");
                return swept;
            }
        };
        let more = page.len() as u64 == batch;
        for (tenant, person) in page {
            match app.sweep_person(&tenant, &person, now).await {
                Ok(changed) => {
                    swept.checked += 1;
                    swept.changed += changed;
                }
                Err(err) => {
                    swept.skipped += 1;
                    tracing::warn!(
                        tenant = %tenant, person = %person, error = %err,
                        "a person's load failed; passing over it"
                    );
                }
            }
            after = Some((tenant, person));
        }
        if !more {
            return swept;
        }
    }
}
