//! The scaffold every service of the suite runs on.
//!
//! A service crate implements [`Service`]: its name, its gRPC routes, its
//! event stream and its background workers. Everything a process does with
//! a service beyond that is generic and lives here: opening it on its own
//! database ([`Context`]), serving it behind the shared auth layer with
//! health, the event stream and the sequencer ([`serve`]), stopping its
//! workers on shutdown, and reaching other services ([`Peers`]). The `crm`
//! binary keeps the list of services (its registry) and needs nothing else.
//!
//! What every service's api layer does alike lives here too: serving the
//! tenant's configuration ([`TenantConfigs`]) and audit trail
//! ([`AuditTrail`]), and the idempotency key of a creating call ([`Replay`]).

mod audit;
mod config;
mod consumers;
mod database;
mod lane;
mod metrics;
mod outbound;
mod peers;
mod replay;
mod storage;
mod supervise;

use std::{future::Future, sync::Arc};

use crm_server::{ServerConfig, ServerError, Shutdown};
use serde::{Serialize, de::DeserializeOwned};
use tokio::{net::TcpListener, task::JoinHandle};

pub use audit::AuditTrail;
pub use config::{ConfigWire, TenantConfigs};
pub use consumers::InternalConsumer;
pub use lane::{Lane, LaneError};
pub use metrics::sweeper_ran;
pub use outbound::{PeerChannel, outbound, traced};
pub use peers::{PeerError, Peers, channel};
pub use replay::Replay;
pub use storage::storage_error;

/// What a service is given when its process opens it.
#[derive(Clone)]
pub struct Context {
    /// Its own database (a SQLite file or a PostgreSQL schema), not yet
    /// migrated: [`Service::open`] applies its migrations.
    pub db: crm_store::DatabaseConnection,
    /// The suite's own identity, for work a service does by itself
    /// (consumers, sweepers); `None` when no service key is configured.
    pub identity: Option<Arc<crm_auth::TokenMinter>>,
    /// Where the other services are.
    pub peers: Peers,
}

/// One service of the suite.
pub trait Service: Clone + Send + Sync + Sized + 'static {
    /// The operator's settings of this service: the `[<NAME>]` section.
    type Settings: Serialize + DeserializeOwned + Default + Clone + std::fmt::Debug + Send + Sync;

    /// Its name: the `crm serve <NAME>` argument, its settings section,
    /// its SQLite file and PostgreSQL schema, its `x-crm-source`.
    const NAME: &'static str;
    /// The proto package the gateway routes to it, e.g. `crm.leads.v1`.
    const PACKAGE: &'static str;
    /// Its main gRPC service, as health checks name it.
    const GRPC_SERVICE: &'static str;

    /// Opens the service on its database, applying its migrations.
    fn open(
        context: Context,
        settings: Self::Settings,
    ) -> impl Future<Output = Result<Self, crm_store::DbErr>> + Send;

    /// Its gRPC API, refusing messages over `max_request_bytes`.
    fn routes(&self, max_request_bytes: usize) -> tonic::service::Routes;

    /// Its event stream (outbox, sequencer, Subscribe).
    fn events(&self) -> &crm_events::Events;

    /// Its own database, watched while it is served: while it cannot be
    /// reached the service reports NOT_SERVING and refuses calls at once.
    fn db(&self) -> &crm_store::DatabaseConnection;

    /// What of this configuration acts as the suite's service identity
    /// ([`Context::identity`]), e.g. `"leads.auto_convert (the automatic
    /// conversion calls opportunities as the service)"`; `None` when
    /// nothing does. A process that would run it without an identity does
    /// not start, and says so naming the setting, rather than serving with
    /// the worker silently off.
    fn needs_identity(settings: &Self::Settings) -> Option<&'static str> {
        let _ = settings;
        None
    }

    /// Its background workers (sweepers, consumers), each stopping at a
    /// safe point once `shutdown` triggers. Each runs until then: one that
    /// ends before turns the service's health NOT_SERVING.
    fn workers(&self, shutdown: &Shutdown) -> Vec<Worker> {
        let _ = shutdown;
        Vec::new()
    }
}

/// A background task of a service, named for the log.
pub struct Worker {
    pub name: &'static str,
    pub task: JoinHandle<()>,
}

impl Worker {
    pub fn new(name: &'static str, task: JoinHandle<()>) -> Self {
        Worker { name, task }
    }
}

/// Serves `service` on `listener` until `shutdown`: its API and its event
/// stream behind the shared auth layer and fair limits, health and reflection, the event
/// sequencer and its workers; then drains and waits for the workers.
///
/// Its database is probed every `server.database_probe_interval`: while it
/// cannot be reached, health is NOT_SERVING and calls are refused at once
/// with UNAVAILABLE `DATABASE_UNAVAILABLE`; once it answers, SERVING again.
/// A worker that ends before shutdown (a panic) turns health NOT_SERVING
/// for good, logged at error level: the process must be replaced.
pub async fn serve<S: Service>(
    service: &S,
    listener: TcpListener,
    verifier: Arc<crm_auth::Verifier>,
    server: &ServerConfig,
    shutdown: Shutdown,
) -> Result<(), ServerError> {
    let events = service.events();
    metrics::observe(S::NAME, service.db(), events);
    let mut workers = vec![Worker::new(
        "event sequencer",
        events.spawn_sequencer(shutdown.clone()),
    )];
    let (database, probe) = database::DatabaseWatch::spawn(
        S::NAME,
        service.db().clone(),
        server.database_probe_interval,
        shutdown.clone(),
    );
    workers.push(Worker::new("database probe", probe));
    workers.extend(service.workers(&shutdown));
    let (workers_up, workers) = supervise::supervise(S::NAME, workers, &shutdown);
    // Serving while the database answers and every worker runs.
    let (ready, follower) = supervise::both(database.subscribe(), workers_up, shutdown.clone());
    let domain = crm_server::error_domain(S::GRPC_SERVICE);
    let routes = service
        .routes(server.max_request_bytes)
        .add_service(events.grpc(shutdown.clone()))
        .into_axum_router()
        // Innermost: a known outage is refused without waiting for the pool.
        .layer(database::DatabaseGateLayer::new(
            std::sync::Arc::clone(&database),
            domain.clone(),
        ))
        // Fair shares per tenant and subject, as in the gateway: a service
        // reached directly is protected the same way (the last layer added
        // runs first, so auth names the caller before).
        .layer(crm_server::FairLayer::new(
            server.max_in_flight,
            &server.rate_limit,
            &server.limits,
            domain,
        ))
        .layer(crm_auth::AuthLayer::new(verifier));
    let served = crm_server::serve_ready(
        S::GRPC_SERVICE,
        routes.into(),
        listener,
        server,
        shutdown,
        ready,
    )
    .await;
    for worker in workers.into_iter().chain([follower]) {
        // A supervising task does not fail: it awaits and logs.
        let _ = worker.await;
    }
    served
}
