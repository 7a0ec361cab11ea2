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

/// Applies every event except those whose subject starts with "poison",
/// which it refuses for good (as a conversion request over the size limit
/// is refused).
struct Picky;

impl LocalHandler for Picky {
    type Plan = ();
    type Error = String;

    async fn prepare(&self, event: &Event) -> Result<(), String> {
        if event.subject_id.starts_with("poison") {
            return Err(format!("{} is refused", event.subject_id));
        }
        Ok(())
    }

    async fn apply(&self, txn: &DatabaseTransaction, event: &Event, (): ()) -> Result<(), String> {
        Counter {
            fail_first: 0,
            prepared: Arc::default(),
        }
        .apply(txn, event, ())
        .await
    }

    fn is_permanent(&self, _error: &String) -> bool {
        true
    }
}

async fn write(db: &DatabaseConnection, events: &Events, batch: Vec<crm_events::NewEvent>) {
    let txn = crm_store::begin_write(db).await.unwrap();
    crm_events::append_many(&txn, batch).await.unwrap();
    txn.commit().await.unwrap();
    events.outbox().notify();
}

fn quick() -> Backoff {
    Backoff {
        initial: Duration::from_millis(10),
        max: Duration::from_millis(50),
    }
}

/// Finding 5: one tenant's event that its handler refuses for good does
/// not stop the others' (every tenant's events after it are applied), and
/// after `max_attempts` it moves to the dead letters, counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding_5_a_poison_event_of_one_tenant_does_not_stop_the_others_and_is_dead_lettered() {
    let testdb = TestDb::new().await;
    let db = database(&testdb.location(DB)).await;
    let cfg = EventsConfig {
        sequencer_tick: Duration::from_millis(20),
        ..EventsConfig::default()
    };
    let events = Events::open(db.clone(), cfg).await.unwrap();
    let shutdown = Shutdown::new();
    events.spawn_sequencer(shutdown.clone());
    let consumer = LocalConsumer::new("test.picky")
        .with_types(["test.Counted"])
        .with_backoff(quick())
        .with_max_attempts(3);
    let stats = consumer.stats();
    let task = consumer.clone().spawn(&events, Picky, shutdown.clone());

    let mut batch = vec![event("mallory", "test.Counted", "poison-1")];
    for i in 0..5 {
        batch.push(event("globex", "test.Counted", &format!("g{i}")));
        batch.push(event("mallory", "test.Counted", &format!("m{i}")));
    }
    write(&db, &events, batch).await;
    eventually(
        Duration::from_secs(20),
        "the others' events applied",
        || {
            let db = &db;
            async move { (tally(db).await.0 == 10).then_some(()) }
        },
    )
    .await;
    eventually(
        Duration::from_secs(20),
        "the poison event dead-lettered",
        || {
            let stats = Arc::clone(&stats);
            async move { (stats.dead_lettered() == 1).then_some(()) }
        },
    )
    .await;
    let dead = consumer.dead_letters(&db).await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (
            dead[0].subject_id.as_str(),
            dead[0].tenant_id.as_str(),
            dead[0].attempts
        ),
        ("poison-1", "mallory", 3)
    );
    assert!(
        dead[0].last_error.contains("refused"),
        "{:?}",
        dead[0].last_error
    );
    assert_eq!(stats.parked(), 1);
    // Later events go on as usual.
    write(
        &db,
        &events,
        vec![event("globex", "test.Counted", "g-late")],
    )
    .await;
    eventually(Duration::from_secs(20), "a later event applied", || {
        let db = &db;
        async move { (tally(db).await.0 == 11).then_some(()) }
    })
    .await;
    shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(tally(&db).await, (11, 11, 1), "each applied once");
}

/// Finding 5: pruning never deletes events a local consumer has not
/// passed, so a consumer that was away longer than the retention still
/// applies every one of them instead of silently skipping the pruned ones.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding_5_pruning_stops_at_a_local_consumers_cursor() {
    let testdb = TestDb::new().await;
    let db = database(&testdb.location(DB)).await;
    let events = Events::open(db.clone(), EventsConfig::default())
        .await
        .unwrap();
    let consumer = LocalConsumer::new("test.away")
        .with_types(["test.Counted"])
        .with_backoff(quick());
    // The consumer applies the first events, then is away.
    write(
        &db,
        &events,
        (0..3)
            .map(|i| event("acme", "test.Counted", &format!("a{i}")))
            .collect(),
    )
    .await;
    events.sequence().await.unwrap();
    let shutdown = Shutdown::new();
    let task = consumer.clone().spawn(&events, Picky, shutdown.clone());
    eventually(Duration::from_secs(20), "the first events applied", || {
        let db = &db;
        async move { (tally(db).await.0 == 3).then_some(()) }
    })
    .await;
    shutdown.trigger();
    task.await.unwrap();
    write(
        &db,
        &events,
        (3..8)
            .map(|i| event("acme", "test.Counted", &format!("a{i}")))
            .collect(),
    )
    .await;
    assert_eq!(events.sequence().await.unwrap(), 8);

    // Long after the retention: only what the consumer passed may go.
    let later = crm_store::now_micros()
        + i64::try_from(EventsConfig::default().retention.as_micros()).unwrap()
        + 1;
    assert_eq!(events.prune(later).await.unwrap(), 3);

    let shutdown = Shutdown::new();
    let task = consumer.spawn(&events, Picky, shutdown.clone());
    eventually(
        Duration::from_secs(20),
        "the events after the cursor applied",
        || {
            let db = &db;
            async move { (tally(db).await.0 == 8).then_some(()) }
        },
    )
    .await;
    shutdown.trigger();
    task.await.unwrap();
    assert_eq!(tally(&db).await, (8, 8, 1));
}
