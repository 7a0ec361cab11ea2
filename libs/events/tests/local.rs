//! A service's local consumer: each of its own events applied exactly once
//! across crashes, and work that fails is retried until it succeeds.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{
    sync::{
        Arc,
        atomic::{AtomicU32, Ordering},
    },
    time::Duration,
};

use crm_events::{Backoff, Event, Events, EventsConfig, LocalConsumer, LocalHandler};
use crm_server::Shutdown;
use crm_store::{ConnectionTrait, DatabaseConnection, Location};
use sea_orm::{DatabaseTransaction, DbBackend, Statement};
use support::{Isolated, TestDb, event, eventually};

const DB: &str = "local";

/// Counts each application; `prepare` fails the first `fail_first` times,
/// as a call to a service that is down would.
struct Counter {
    fail_first: u32,
    prepared: Arc<AtomicU32>,
}

impl LocalHandler for Counter {
    type Plan = ();
    type Error = String;

    async fn prepare(&self, _event: &Event) -> Result<(), String> {
        let n = self.prepared.fetch_add(1, Ordering::SeqCst);
        if n < self.fail_first {
            Err(format!("attempt {n}: unavailable"))
        } else {
            Ok(())
        }
    }

    async fn apply(&self, txn: &DatabaseTransaction, event: &Event, (): ()) -> Result<(), String> {
        let backend = txn.get_database_backend();
        let sql = match backend {
            DbBackend::Postgres => {
                "INSERT INTO applied (event_id, times) VALUES ($1, 1)
                 ON CONFLICT (event_id) DO UPDATE SET times = applied.times + 1"
            }
            _ => {
                "INSERT INTO applied (event_id, times) VALUES (?, 1)
                 ON CONFLICT (event_id) DO UPDATE SET times = applied.times + 1"
            }
        };
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [event.id.clone().into()],
        ))
        .await
        .map(|_| ())
        .map_err(|e| e.to_string())
    }
}

async fn database(location: &Location) -> DatabaseConnection {
    let db = support::connect(location, 2).await;
    db.execute_unprepared("CREATE TABLE IF NOT EXISTS applied (event_id VARCHAR(64) PRIMARY KEY, times BIGINT NOT NULL)")
        .await
        .unwrap();
    db
}

/// (events applied, applications in all, most applications of one event)
async fn tally(db: &DatabaseConnection) -> (i64, i64, i64) {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(times), 0) AS BIGINT) AS total, COALESCE(MAX(times), 0) AS most FROM applied",
        ))
        .await
        .unwrap()
        .unwrap();
    (
        row.try_get("", "n").unwrap(),
        row.try_get("", "total").unwrap(),
        row.try_get("", "most").unwrap(),
    )
}

/// The service (sequencer and local consumer) on a runtime of its own, so
/// that killing it drops everything it was doing.
fn start_service(location: Location, fail_first: u32, prepared: Arc<AtomicU32>) -> Isolated {
    Isolated::spawn(async move {
        let db = database(&location).await;
        let cfg = EventsConfig {
            sequencer_tick: Duration::from_millis(20),
            ..EventsConfig::default()
        };
        let events = Events::open(db, cfg).await.unwrap();
        let shutdown = Shutdown::new();
        events.spawn_sequencer(shutdown.clone());
        let consumer = LocalConsumer::new("test.local")
            .with_types(["test.Counted"])
            .with_backoff(Backoff {
                initial: Duration::from_millis(10),
                max: Duration::from_millis(50),
            });
        let _ = consumer
            .spawn(
                &events,
                Counter {
                    fail_first,
                    prepared,
                },
                shutdown,
            )
            .await;
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_own_event_is_applied_exactly_once_across_crashes_and_failures() {
    const EVENTS: i64 = 1000;
    const BATCH: i64 = 10;
    let testdb = TestDb::new().await;
    let location = testdb.location(DB);
    let writes = database(&location).await;
    let writer = tokio::spawn(async move {
        for batch in 0..EVENTS / BATCH {
            let txn = crm_store::begin_write(&writes).await.unwrap();
            for i in 0..BATCH {
                let n = batch * BATCH + i;
                crm_events::append(&txn, event("acme", "test.Counted", &n.to_string()))
                    .await
                    .unwrap();
                // Events of other types are passed over, not applied.
                crm_events::append(&txn, event("acme", "test.Ignored", &n.to_string()))
                    .await
                    .unwrap();
            }
            txn.commit().await.unwrap();
        }
    });
    let reads = database(&location).await;
    let mut round = 0;
    loop {
        let (before, _, _) = tally(&reads).await;
        if before == EVENTS {
            break;
        }
        round += 1;
        // The first run's handler fails its first attempts: the event is retried, not skipped.
        let fail_first = if round == 1 { 5 } else { 0 };
        let mut running = start_service(location.clone(), fail_first, Arc::new(AtomicU32::new(0)));
        let target = (before + 120).min(EVENTS);
        eventually(Duration::from_secs(60), "the consumer's progress", || {
            let db = &reads;
            async move { (tally(db).await.0 >= target).then_some(()) }
        })
        .await;
        running.kill().await;
    }
    writer.await.unwrap();
    let (applied, total, most) = tally(&reads).await;
    eprintln!(
        "local consumer crashes: {round}, events: {EVENTS}, applied: {applied}, applications: {total}, most of one event: {most}"
    );
    assert!(round >= 5, "the run crashed the consumer {round} times");
    assert_eq!(
        (applied, total, most),
        (EVENTS, EVENTS, 1),
        "every event once"
    );
}
