//! Events (DESIGN "Events"): each service appends events to its own outbox
//! in the transaction of the change, a sequencer numbers them once
//! committed, `crm.events.v1.EventService/Subscribe` replays and follows
//! them, and consumers in other services apply each exactly once.
//!
//! - [`append`] / [`Outbox`]: write an event inside the change's
//!   transaction; [`Outbox::notify`] after the commit.
//! - [`Events::spawn_sequencer`]: one task per database numbers committed
//!   events (gap-free, in commit-then-creation order), wakes subscribers,
//!   and deletes events older than the retention.
//! - [`Events::grpc`]: the EventService of the service's database.
//! - [`Consumer`]: applies another service's events with a [`Handler`],
//!   its cursor kept in the consumer's database in the handler's transaction.
//! - [`migrations`]: the tables, for every service's migrator.
//!
//! Wiring, in a service (its migrator lists [`migrations`] too):
//!
//! ```no_run
//! # async fn wire(
//! #     db: sea_orm::DatabaseConnection,
//! #     cfg: crm_events::EventsConfig,
//! #     shutdown: crm_server::Shutdown,
//! # ) -> Result<(), Box<dyn std::error::Error>> {
//! use crm_events::{Events, NewEvent};
//!
//! let events = Events::open(db.clone(), cfg).await?;
//! let sequencer = events.spawn_sequencer(shutdown.clone());
//! // Served beside the service's own API, behind the same auth layer.
//! let routes = tonic::service::Routes::new(events.grpc(shutdown.clone()));
//!
//! // In the store: append in the change's transaction, notify after commit.
//! let outbox = events.outbox();
//! let txn = crm_store::begin_write(&db).await?;
//! // ... the change and its audit entry ...
//! let payload = prost_types::Timestamp::default(); // the service's event message
//! outbox
//!     .append(&txn, NewEvent::new("acme", "lead-1", crm_store::now_micros(), &payload))
//!     .await?;
//! txn.commit().await?;
//! outbox.notify();
//! # drop((sequencer, routes));
//! # Ok(())
//! # }
//! ```

mod config;
mod consumer;
pub mod entity;
mod local;
mod migration;
mod outbox;
mod reads;
mod sequencer;
mod stream;

use std::sync::{
    Arc,
    atomic::{AtomicU64, Ordering},
};

use crm_proto::crm::events::v1::event_service_server::EventServiceServer;
use crm_server::Shutdown;
use sea_orm::{DatabaseConnection, DbErr};
use tokio::{
    sync::{Notify, watch},
    task::JoinHandle,
    time::{Instant, MissedTickBehavior},
};

pub use config::{EventsConfig, InvalidConfig, MIN_RETENTION};
pub use consumer::{Backoff, Consumer, ConsumerError, Handler, SOURCE_METADATA, TokenProvider};
pub use crm_proto::crm::events::v1::Event;
pub use local::{LocalConsumer, LocalHandler, LocalStats};
pub use migration::migrations;
pub use outbox::{NewEvent, Outbox, append, append_many};
pub use stream::{EventStream, Outgoing};

/// The `ErrorInfo.domain` of the errors the event stream makes.
pub const ERROR_DOMAIN: &str = "crm.events";

/// Why [`Events::open`] failed.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error(transparent)]
    Config(#[from] InvalidConfig),
    #[error("reading the outbox head: {0}")]
    Db(#[from] DbErr),
}

/// The event machinery of one service database.
#[derive(Debug, Clone)]
pub struct Events {
    db: DatabaseConnection,
    cfg: EventsConfig,
    /// The highest sequence known to be numbered and committed.
    head: Arc<watch::Sender<i64>>,
    wake: Arc<Notify>,
    /// Subscribers dropped for stalling, since start (a metric).
    stalled: Arc<AtomicU64>,
    /// Events found waiting for their number at the sequencer's last look.
    unnumbered: Arc<AtomicU64>,
    /// The database turns subscribers read through.
    reads: Arc<reads::ReadTurns>,
    /// Each tenant's budget of bytes its streams are sent a second.
    pace: Arc<Option<crm_server::TenantBudget>>,
}

impl Events {
    /// Opens the machinery on `db`, whose migrations (with [`migrations`])
    /// have been applied.
    pub async fn open(db: DatabaseConnection, cfg: EventsConfig) -> Result<Self, EventsError> {
        cfg.validate()?;
        let head = sequencer::read_head(&db).await?;
        Ok(Self {
            db,
            head: Arc::new(watch::Sender::new(head.last_sequence)),
            wake: Arc::new(Notify::new()),
            stalled: Arc::new(AtomicU64::new(0)),
            unnumbered: Arc::new(AtomicU64::new(0)),
            reads: Arc::new(reads::ReadTurns::new(
                cfg.subscriber_reads,
                cfg.tenant_subscriber_reads,
            )),
            pace: Arc::new(crm_server::TenantBudget::new(
                cfg.tenant_bytes_per_second,
                cfg.tenant_bytes_per_second as usize,
            )),
            cfg,
        })
    }

    /// The handle the service's store appends through.
    pub fn outbox(&self) -> Outbox {
        Outbox {
            wake: Arc::clone(&self.wake),
        }
    }

    /// The EventService over this database. Open streams end with
    /// UNAVAILABLE (SHUTTING_DOWN) once `shutdown` fires.
    pub fn grpc(&self, shutdown: Shutdown) -> EventServiceServer<EventStream> {
        EventServiceServer::new(self.stream(shutdown))
    }

    /// The service implementation itself, for callers that wrap it.
    pub fn stream(&self, shutdown: Shutdown) -> EventStream {
        EventStream::new(
            self.db.clone(),
            self.head.subscribe(),
            self.cfg.clone(),
            shutdown,
            Arc::clone(&self.stalled),
            Arc::clone(&self.reads),
            Arc::clone(&self.pace),
        )
    }

    /// How many subscribers were dropped for taking nothing from a full
    /// buffer for `subscriber_stall_timeout`, since start.
    pub fn stalled_subscribers_dropped(&self) -> u64 {
        self.stalled.load(Ordering::Relaxed)
    }

    /// The outbox lag: committed events that were still waiting for their
    /// number when the sequencer last looked (at most 10,000 are counted).
    /// Above zero for long only while numbering falls behind or fails.
    pub fn unnumbered(&self) -> u64 {
        self.unnumbered.load(Ordering::Relaxed)
    }

    /// The highest sequence this process has seen numbered.
    pub fn head(&self) -> i64 {
        *self.head.borrow()
    }

    /// Numbers the committed events now (what the sequencer does on each
    /// wake-up) and returns the head.
    pub async fn sequence(&self) -> Result<i64, DbErr> {
        let head = sequencer::number(&self.db, &self.unnumbered).await?;
        self.publish(head);
        Ok(head)
    }

    /// Deletes the events that were created before `now - retention` (Unix
    /// microseconds); returns how many.
    pub async fn prune(&self, now: i64) -> Result<u64, DbErr> {
        sequencer::prune(&self.db, self.cfg.retention, now).await
    }

    fn publish(&self, head: i64) {
        // Subscribers wake only when the head moved.
        self.head.send_if_modified(|seen| {
            let moved = head > *seen;
            if moved {
                *seen = head;
            }
            moved
        });
    }

    /// Runs the sequencer until `shutdown`: on each [`Outbox::notify`] and
    /// every `sequencer_tick` (events committed by other processes), and
    /// prunes every `prune_interval`. Each pass is whole transactions, so
    /// stopping between or during passes loses nothing. Run one per process; on
    /// PostgreSQL several processes' sequencers take turns on a row lock.
    pub fn spawn_sequencer(&self, shutdown: Shutdown) -> JoinHandle<()> {
        let events = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(events.cfg.sequencer_tick);
            tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
            let mut next_prune = Instant::now();
            loop {
                tokio::select! {
                    biased;
                    () = shutdown.triggered() => return,
                    () = events.wake.notified() => {}
                    _ = tick.tick() => {}
                }
                // A pass may wait for a write turn behind a long import:
                // shutdown cuts it short (an open transaction rolls back).
                let numbered = tokio::select! {
                    biased;
                    () = shutdown.triggered() => return,
                    numbered = events.sequence() => numbered,
                };
                if let Err(err) = numbered {
                    tracing::warn!(error = %err, "numbering events failed; retrying");
                }
                if Instant::now() >= next_prune {
                    next_prune = Instant::now() + events.cfg.prune_interval;
                    let pruned = tokio::select! {
                        biased;
                        () = shutdown.triggered() => return,
                        pruned = events.prune(crm_store::now_micros()) => pruned,
                    };
                    match pruned {
                        Ok(0) => {}
                        Ok(deleted) => tracing::info!(deleted, "deleted expired events"),
                        Err(err) => tracing::warn!(error = %err, "pruning events failed"),
                    }
                }
            }
        })
    }
}
