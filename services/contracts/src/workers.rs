//! The service's own work: the sweeper that runs the lifecycle timers
//! (activation, expiry, the renewal notice, overdue approval steps and
//! payment milestones). Bounded batches of keys across tenants; each
//! contract in its own transaction, so a busy or broken contract holds up
//! nobody else; shutdown cuts a sweep short between (or during) contracts,
//! losing and repeating nothing.

use std::{future::Future, time::Duration};

use crate::app::{Swept, UseCases};

/// Who runs the timers, in the audit trail.
pub const SWEEPER: &str = "system:contracts-sweeper";

/// Runs the timers every `interval` until `shutdown` completes.
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
            if swept.fired > 0 || swept.skipped > 0 {
                tracing::info!(
                    fired = swept.fired,
                    skipped = swept.skipped,
                    "ran contract timers"
                );
            }
        }
    })
}

/// One pass over every contract with a timer due at `now`, of every
/// tenant, `batch` keys per query.
pub async fn sweep(app: &UseCases, now: i64, batch: u64) -> Swept {
    let mut swept = Swept::default();
    let mut after = None;
    loop {
        let page = match app.due_timers(now, after.as_ref(), batch).await {
            Ok(page) => page,
            Err(err) => {
                tracing::warn!(error = %err, "contract sweep failed; retrying next interval");
                return swept;
            }
        };
        let more = page.len() as u64 == batch;
        for due in page {
            match app.fire_timers(&due.tenant_id, &due.id, SWEEPER, now).await {
                Ok(n) => swept.fired += n,
                Err(err) => {
                    swept.skipped += 1;
                    tracing::warn!(
                        tenant = %due.tenant_id, contract = %due.id, error = %err,
                        "a contract's timers failed; passing over it"
                    );
                }
            }
            after = Some(due);
        }
        if !more {
            return swept;
        }
    }
}
