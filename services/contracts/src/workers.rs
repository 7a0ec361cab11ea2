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
            crm_service::sweeper_ran("contracts", "deadlines", swept.skipped);
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, TransactionTrait};

    use super::*;
    use crate::domain::{Contract, Date, MilestoneStatus, Status, testing};
    use crate::{Contracts, ContractsSettings, store};

    /// The contracts database of one test: a schema of its own on the
    /// PostgreSQL server of `CRM_TEST_DATABASE_URL`, else a SQLite file.
    async fn open() -> (Contracts, DatabaseConnection, String, std::path::PathBuf) {
        let name = format!("contracts_test_{}", crm_store::new_id().replace('-', "_"));
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        let url = std::env::var("CRM_TEST_DATABASE_URL").ok();
        let location = crm_store::Location::for_service(&name, url.as_deref(), &dir);
        let db = crm_store::connect(&location, 4).await.unwrap();
        let context = crm_service::Context {
            db: db.clone(),
            identity: None,
            peers: crm_service::Peers::default(),
        };
        let service =
            <Contracts as crm_service::Service>::open(context, ContractsSettings::default())
                .await
                .unwrap();
        (service, db, name, dir)
    }

    async fn close(db: DatabaseConnection, schema: &str, dir: std::path::PathBuf) {
        if db.get_database_backend() == DbBackend::Postgres {
            let _ = db
                .execute_unprepared(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .await;
        }
        db.close().await.unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A signed contract of `tenant` whose term starts on 2027-01-01, with
    /// one milestone due 2027-01-31.
    async fn signed(db: &DatabaseConnection, tenant: &str, id: &str) -> Contract {
        let mut c = testing::ready();
        c.id = id.to_owned();
        c.family_id = id.to_owned();
        c.tenant = tenant.to_owned();
        c.opportunity_id = format!("opp-{id}");
        c.status = Status::Signed;
        // As RecordSignature schedules it: 60 days before 2027-12-31.
        c.renewal_due = Date::new(2027, 11, 1);
        for m in &mut c.milestones {
            m.id = crm_types::new_id();
            m.status = MilestoneStatus::Due;
        }
        store::insert_contract(db, &c).await.unwrap();
        c
    }

    async fn status(db: &DatabaseConnection, tenant: &str, id: &str) -> Status {
        store::load_contract(db, tenant, id).await.unwrap().status
    }

    fn on(y: i32, m: i32, d: i32) -> i64 {
        let date = Date::new(y, m, d).unwrap();
        let micros = date.days() * 86_400_000_000 + 3_600_000_000;
        assert_eq!(Date::of_micros(micros), date);
        micros
    }

    /// One contract that cannot be read, and (on PostgreSQL) one that
    /// another transaction holds (`FOR UPDATE SKIP LOCKED`), are passed
    /// over: the other contracts of their tenant and every other tenant's
    /// still fire, even when the bad ones fill whole batches at the front;
    /// a timer fires once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_busy_or_broken_contract_does_not_stop_the_sweep_for_anyone() {
        let (service, db, schema, dir) = open().await;
        let app = service.app().clone();
        signed(&db, "attacker", "a1").await;
        signed(&db, "attacker", "a2").await;
        signed(&db, "attacker", "a3").await;
        signed(&db, "victim", "v1").await;
        // a1 cannot be read any more.
        db.execute_unprepared("UPDATE contracts SET body = 'not a contract' WHERE id = 'a1'")
            .await
            .unwrap();
        let postgres = db.get_database_backend() == DbBackend::Postgres;
        let blocker = if postgres {
            let txn = db.begin().await.unwrap();
            txn.execute_unprepared("UPDATE contracts SET update_time = 7 WHERE id = 'a2'")
                .await
                .unwrap();
            Some(txn)
        } else {
            None
        };
        let start = on(2027, 1, 1);
        let swept = sweep(&app, start, 2).await;
        assert_eq!(swept.skipped, 1, "{swept:?}");
        assert_eq!(status(&db, "attacker", "a3").await, Status::Active);
        assert_eq!(status(&db, "victim", "v1").await, Status::Active);
        if let Some(blocker) = blocker {
            assert_eq!(swept.fired, 2);
            blocker.commit().await.unwrap();
            assert_eq!(
                status(&db, "attacker", "a2").await,
                Status::Signed,
                "passed over"
            );
            // Its turn comes at the next sweep.
            assert_eq!(sweep(&app, start, 2).await.fired, 1);
        }
        assert_eq!(status(&db, "attacker", "a2").await, Status::Active);
        // Fired once: the same day again finds nothing to do.
        let again = sweep(&app, start, 2).await;
        assert_eq!((again.fired, again.skipped), (0, 1));
        close(db, &schema, dir).await;
    }

    /// Shutdown stops the sweeper where it waits or works: its task ends
    /// within the grace period, with every contract it did not reach left
    /// for the next start.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_sweeper_stops_at_shutdown() {
        let (service, db, schema, dir) = open().await;
        for i in 0..50 {
            signed(&db, &format!("t{}", i % 3), &format!("c{i}")).await;
        }
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let sweeper = spawn_sweeper(
            service.app().clone(),
            Duration::from_millis(20),
            5,
            async move {
                let _ = stopped.await;
            },
        );
        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(10), sweeper)
            .await
            .expect("the sweeper stops at shutdown")
            .unwrap();
        close(db, &schema, dir).await;
    }

    /// The timers of a term: the milestone overdue after its due date,
    /// the renewal notice 60 days before the end, expiry after it; each
    /// once, each with its event.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_timers_of_a_term_fire_once_each_with_their_events() {
        let (service, db, schema, dir) = open().await;
        let app = service.app().clone();
        signed(&db, "t", "c1").await;
        let events = || async {
            db.query_all_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                r#"SELECT "type" AS event_type FROM outbox_events"#,
            ))
            .await
            .map(|rows| {
                rows.iter()
                    .filter_map(|r| r.try_get::<String>("", "event_type").ok())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
        };
        assert_eq!(sweep(&app, on(2027, 1, 1), 10).await.fired, 1);
        assert_eq!(
            sweep(&app, on(2027, 2, 1), 10).await.fired,
            1,
            "milestone overdue"
        );
        let c = store::load_contract(&db, "t", "c1").await.unwrap();
        assert_eq!(c.milestones[0].status, MilestoneStatus::Overdue);
        assert_eq!(
            sweep(&app, on(2027, 11, 1), 10).await.fired,
            1,
            "renewal notice"
        );
        assert_eq!(sweep(&app, on(2027, 11, 2), 10).await.fired, 0);
        assert_eq!(sweep(&app, on(2028, 1, 1), 10).await.fired, 1, "expired");
        assert_eq!(status(&db, "t", "c1").await, Status::Expired);
        assert_eq!(sweep(&app, on(2028, 1, 2), 10).await.fired, 0);
        let seen = events().await;
        for expected in [
            "crm.contracts.v1.ContractActivated",
            "crm.contracts.v1.PaymentMilestoneOverdue",
            "crm.contracts.v1.ContractRenewalDue",
            "crm.contracts.v1.ContractExpired",
        ] {
            assert_eq!(
                seen.iter().filter(|e| *e == expected).count(),
                1,
                "{expected}: {seen:?}"
            );
        }
        close(db, &schema, dir).await;
    }
}
