//! The health signals every service exports besides its RPC metrics, read
//! when the metrics are collected (observable instruments: nothing is
//! counted on the hot path):
//!
//! - `db.client.connection.count` by `db.client.connection.state`
//!   (`used`, `idle`) and `db.client.connection.max`: the connection pool,
//!   as OpenTelemetry's database conventions name them;
//! - `crm.events.head`: the highest event sequence numbered (its rate is
//!   the service's event throughput);
//! - `crm.events.unnumbered`: the outbox lag, committed events still
//!   waiting for their number when the sequencer last looked;
//! - `crm.events.stalled_subscribers`: subscribers dropped for stalling.
//!
//! Each event consumer exports its own lag and dead letters
//! (`crm.events.consumer.lag`, `crm.events.dead_lettered`: crm-events).

use crm_events::Events;
use crm_telemetry::{KeyValue, meter};
use sea_orm::{DatabaseBackend, DatabaseConnection};

/// (in use, idle, max) connections of `db`'s pool.
fn pool(db: &DatabaseConnection) -> (u64, u64, u64) {
    let (size, idle, max) = match db.get_database_backend() {
        DatabaseBackend::Postgres => {
            let p = db.get_postgres_connection_pool();
            (p.size(), p.num_idle(), p.options().get_max_connections())
        }
        DatabaseBackend::Sqlite => {
            let p = db.get_sqlite_connection_pool();
            (p.size(), p.num_idle(), p.options().get_max_connections())
        }
        _ => (0, 0, 0),
    };
    let size = u64::from(size);
    let idle = u64::try_from(idle).unwrap_or(u64::MAX).min(size);
    (size - idle, idle, u64::from(max))
}

/// Registers the observable instruments of the service `name`; they read
/// `db` and `events` at each collection for as long as the process exports.
pub(crate) fn observe(name: &str, db: &DatabaseConnection, events: &Events) {
    let meter = meter(name);
    let connections = db.clone();
    meter
        .u64_observable_gauge("db.client.connection.count")
        .with_description("Connections of the database pool, by state")
        .with_unit("{connection}")
        .with_callback(move |gauge| {
            let (used, idle, _) = pool(&connections);
            gauge.observe(used, &[KeyValue::new("db.client.connection.state", "used")]);
            gauge.observe(idle, &[KeyValue::new("db.client.connection.state", "idle")]);
        })
        .build();
    let connections = db.clone();
    meter
        .u64_observable_gauge("db.client.connection.max")
        .with_description("The most connections the pool opens")
        .with_unit("{connection}")
        .with_callback(move |gauge| gauge.observe(pool(&connections).2, &[]))
        .build();
    let head = events.clone();
    meter
        .i64_observable_gauge("crm.events.head")
        .with_description("The highest event sequence numbered")
        .with_unit("{event}")
        .with_callback(move |gauge| gauge.observe(head.head(), &[]))
        .build();
    let lag = events.clone();
    meter
        .u64_observable_gauge("crm.events.unnumbered")
        .with_description(
            "Committed events waiting for their number at the sequencer's last look (the outbox lag)",
        )
        .with_unit("{event}")
        .with_callback(move |gauge| gauge.observe(lag.unnumbered(), &[]))
        .build();
    let stalled = events.clone();
    meter
        .u64_observable_counter("crm.events.stalled_subscribers")
        .with_description("Event subscribers dropped for taking nothing from a full buffer")
        .with_unit("{subscriber}")
        .with_callback(move |counter| counter.observe(stalled.stalled_subscribers_dropped(), &[]))
        .build();
}

/// Counts one run of a service's sweeper (`crm.sweeper.runs`, by
/// `sweeper`) and the records it passed over, to try again at the next run
/// (`crm.sweeper.skipped`): a sweeper that stops running, or keeps
/// skipping, is an operator's alarm.
pub fn sweeper_ran(service: &str, sweeper: &'static str, skipped: impl TryInto<u64>) {
    let meter = meter(service);
    let attributes = [KeyValue::new("sweeper", sweeper)];
    meter
        .u64_counter("crm.sweeper.runs")
        .with_description("Runs of a service's sweeper")
        .with_unit("{run}")
        .build()
        .add(1, &attributes);
    meter
        .u64_counter("crm.sweeper.skipped")
        .with_description("Records a sweeper passed over, to try again at its next run")
        .with_unit("{record}")
        .build()
        .add(skipped.try_into().unwrap_or(u64::MAX), &attributes);
}
