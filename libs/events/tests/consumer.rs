//! Consumers: every event applied exactly once across crashes of the
//! consumer and restarts of the producer; the event's trace continued; the
//! cursor kept from expiring by heartbeats; an expired cursor reported.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{net::SocketAddr, sync::Arc, time::Duration};

use crm_auth::{Role, TokenMinter};
use crm_events::{Backoff, Consumer, ConsumerError, Event, Events, EventsConfig, Handler};
use crm_server::Shutdown;
use crm_store::{ConnectionTrait, DatabaseConnection, Location};
use sea_orm::{DatabaseTransaction, DbBackend, DbErr, Statement};
use support::{Isolated, Keys, TestDb, event, eventually};
use tokio::sync::mpsc;
use tonic::transport::{Channel, Endpoint};
use tracing::Instrument as _;

const SOURCE: &str = "producer";

/// Counts each event it applies in the consumer's database; a duplicate
/// shows as `times` > 1.
struct Counter {
    seen: Option<mpsc::UnboundedSender<(i64, Option<String>)>>,
}

impl Handler for Counter {
    type Error = DbErr;

    async fn handle(&self, txn: &DatabaseTransaction, event: &Event) -> Result<(), DbErr> {
        let backend = txn.get_database_backend();
        let sql = match backend {
            DbBackend::Postgres => {
                "INSERT INTO applied (event_id, sequence, times) VALUES ($1, $2, 1)
                 ON CONFLICT (event_id) DO UPDATE SET times = applied.times + 1"
            }
            _ => {
                "INSERT INTO applied (event_id, sequence, times) VALUES (?, ?, 1)
                 ON CONFLICT (event_id) DO UPDATE SET times = applied.times + 1"
            }
        };
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [event.id.clone().into(), event.sequence.into()],
        ))
        .await?;
        if let Some(seen) = &self.seen {
            let _ = seen.send((event.sequence, crm_telemetry::current_trace_id()));
        }
        Ok(())
    }
}

async fn consumer_db(location: &Location, pool: u32) -> DatabaseConnection {
    let db = support::connect(location, pool).await;
    db.execute_unprepared(
        "CREATE TABLE IF NOT EXISTS applied (
             event_id VARCHAR(64) PRIMARY KEY, sequence BIGINT NOT NULL, times BIGINT NOT NULL)",
    )
    .await
    .unwrap();
    db
}

/// (events applied, applications in all, most applications of one event)
async fn tally(db: &DatabaseConnection) -> (i64, i64, i64) {
    let row = db
        .query_one_raw(Statement::from_string(
            db.get_database_backend(),
            // SUM is NUMERIC on PostgreSQL: cast back to BIGINT.
            "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(times), 0) AS BIGINT) AS total,
                    COALESCE(MAX(times), 0) AS most
             FROM applied",
        ))
        .await
        .unwrap()
        .unwrap();
    let n: i64 = row.try_get("", "n").unwrap();
    let total: i64 = row.try_get("", "total").unwrap();
    let most: i64 = row.try_get("", "most").unwrap();
    (n, total, most)
}

fn channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy()
}

fn consumer(addr: SocketAddr, minter: Arc<TokenMinter>) -> Consumer {
    Consumer::new("test.counter", SOURCE, "acme", channel(addr), move || {
        minter.mint(
            "svc:consumer",
            "acme",
            &[Role::Integration],
            Duration::from_secs(600),
        )
    })
    .with_backoff(Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(300),
    })
}

/// The producer on a runtime of its own, listening on `addr`.
fn start_producer(
    location: Location,
    addr: SocketAddr,
    verifier: Arc<crm_auth::Verifier>,
    cfg: EventsConfig,
) -> Isolated {
    // Bound here, so that a restart finds the port free at once or fails
    // loudly; std sets SO_REUSEADDR, so the old connections do not hold it.
    let listener = std::net::TcpListener::bind(addr).unwrap();
    listener.set_nonblocking(true).unwrap();
    Isolated::spawn(async move {
        let db = support::connect(&location, 4).await;
        let events = Events::open(db, cfg).await.unwrap();
        let shutdown = Shutdown::new();
        events.spawn_sequencer(shutdown.clone());
        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
        let _ = support::serve(events, verifier, listener, shutdown).await;
    })
}

fn start_consumer(location: Location, consumer: Consumer, shutdown: Shutdown) -> Isolated {
    Isolated::spawn(async move {
        // A pool of this runtime: it dies with it, as a crashed process's would.
        let db = consumer_db(&location, 2).await;
        consumer
            .run(&db, &Counter { seen: None }, &shutdown)
            .await
            .unwrap();
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_event_is_applied_exactly_once_across_consumer_crashes_and_producer_restarts() {
    const EVENTS: i64 = 2000;
    const BATCH: i64 = 20;
    support::telemetry();
    let testdb = TestDb::new().await;
    let keys = Keys::new();
    let minter = Arc::clone(&keys.minter);
    let cfg = EventsConfig {
        // The writer below is another process: its commits are found by
        // the tick, not by a notify.
        sequencer_tick: Duration::from_millis(20),
        heartbeat_interval: Duration::from_millis(200),
        ..EventsConfig::default()
    };
    let producer_writes = testdb.connect(SOURCE, 2).await;
    let consumer_reads = consumer_db(&testdb.location("consumer"), 2).await;
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut producer = start_producer(
        testdb.location(SOURCE),
        addr,
        Arc::clone(&keys.verifier),
        cfg.clone(),
    );

    let writer = tokio::spawn(async move {
        for batch in 0..EVENTS / BATCH {
            let txn = crm_store::begin_write(&producer_writes).await.unwrap();
            for i in 0..BATCH {
                let n = batch * BATCH + i;
                crm_events::append(&txn, event("acme", "test.Counted", &n.to_string()))
                    .await
                    .unwrap();
            }
            txn.commit().await.unwrap();
        }
    });

    let mut round = 0;
    loop {
        let (before, _, _) = tally(&consumer_reads).await;
        if before == EVENTS {
            break;
        }
        round += 1;
        let shutdown = Shutdown::new();
        let mut running = start_consumer(
            testdb.location("consumer"),
            consumer(addr, Arc::clone(&minter)),
            shutdown.clone(),
        );
        // Let it make some progress, then crash it wherever it is.
        let target = (before + 150).min(EVENTS);
        eventually(Duration::from_secs(60), "the consumer's progress", || {
            let db = &consumer_reads;
            async move { (tally(db).await.0 >= target).then_some(()) }
        })
        .await;
        running.kill().await;
        if round % 3 == 0 {
            // The producer crashes too and comes back on the same address.
            producer.kill().await;
            producer = start_producer(
                testdb.location(SOURCE),
                addr,
                Arc::clone(&keys.verifier),
                cfg.clone(),
            );
        }
    }
    writer.await.unwrap();
    assert!(round >= 5, "the run crashed the consumer {round} times");

    let (applied, total, most) = tally(&consumer_reads).await;
    eprintln!(
        "consumer crashes: {round}, producer restarts: {}, events: {EVENTS}, applied: {applied}, applications: {total}, most of one event: {most}",
        round / 3
    );
    assert_eq!(
        (applied, total, most),
        (EVENTS, EVENTS, 1),
        "every event once"
    );
    let cursor = consumer(addr, minter)
        .cursor(&consumer_reads)
        .await
        .unwrap();
    assert_eq!(cursor, EVENTS);
    producer.kill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_handler_continues_the_events_trace_and_heartbeats_keep_the_cursor_fresh() {
    support::telemetry();
    let producer = support::Producer::start(EventsConfig {
        heartbeat_interval: Duration::from_millis(100),
        ..EventsConfig::default()
    })
    .await;
    let consumer_db = consumer_db(&producer.testdb.location("consumer"), 2).await;
    let minter = Arc::clone(&producer.keys.minter);
    let consumer = consumer(producer.addr, Arc::clone(&minter)).with_types(["test.Wanted"]);

    // A change made under a caller's trace.
    let trace_id = "0af7651916cd43dd8448eb211c80319c";
    let span = tracing::info_span!("change");
    {
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "traceparent",
            format!("00-{trace_id}-b7ad6b7169203331-01")
                .parse()
                .unwrap(),
        );
        span.set_parent(crm_telemetry::extract_trace_context(&headers))
            .unwrap();
    }
    producer
        .write(vec![event("acme", "test.Wanted", "w1")])
        .instrument(span)
        .await;
    producer
        .write(
            (0..5)
                .map(|i| event("acme", "test.Other", &format!("o{i}")))
                .collect(),
        )
        .await;

    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let shutdown = Shutdown::new();
    let task = tokio::spawn({
        let (db, consumer, shutdown) = (consumer_db.clone(), consumer.clone(), shutdown.clone());
        async move {
            consumer
                .run(
                    &db,
                    &Counter {
                        seen: Some(seen_tx),
                    },
                    &shutdown,
                )
                .await
        }
    });
    let (sequence, trace) = support::within("the event to be applied", seen.recv())
        .await
        .unwrap();
    assert_eq!(sequence, 1);
    assert_eq!(
        trace.as_deref(),
        Some(trace_id),
        "the handler's span continues the trace"
    );
    // Nothing of the other type arrives, yet the cursor moves past it.
    eventually(
        Duration::from_secs(10),
        "the cursor to reach the head",
        || {
            let (db, consumer) = (&consumer_db, &consumer);
            async move { (consumer.cursor(db).await.unwrap() == 6).then_some(()) }
        },
    )
    .await;
    assert_eq!(tally(&consumer_db).await, (1, 1, 1));

    shutdown.trigger();
    support::within("the consumer to stop", task)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_cursor_stops_the_consumer_with_a_reason() {
    support::telemetry();
    let producer = support::Producer::start(EventsConfig::default()).await;
    producer
        .write(
            (0..3)
                .map(|i| event("acme", "test.Counted", &i.to_string()))
                .collect(),
        )
        .await;
    producer.events.sequence().await.unwrap();
    let far = crm_store::now_micros() + 30 * 86_400_000_000;
    assert_eq!(producer.events.prune(far).await.unwrap(), 3);

    let consumer_db = consumer_db(&producer.testdb.location("consumer"), 2).await;
    let consumer = consumer(producer.addr, Arc::clone(&producer.keys.minter));
    consumer.set_cursor(&consumer_db, 1).await.unwrap();
    let outcome = support::within(
        "the consumer to give up",
        consumer.run(&consumer_db, &Counter { seen: None }, &Shutdown::new()),
    )
    .await;
    match outcome {
        Err(ConsumerError::CursorExpired { cursor, .. }) => assert_eq!(cursor, 1),
        other => panic!("expected CursorExpired, got {other:?}"),
    }
    assert_eq!(tally(&consumer_db).await, (0, 0, 0));
}
