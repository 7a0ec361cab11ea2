//! What the event tests share: a database per test (SQLite in a temporary
//! directory, or a fresh PostgreSQL database when `CRM_TEST_DATABASE_URL`
//! is set), a producer serving the EventService over real gRPC on
//! 127.0.0.1:0, tokens, and waiting on conditions with deadlines.

#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::{future::Future, net::SocketAddr, path::PathBuf, sync::Arc, time::Duration};

use crm_auth::{AuthConfig, DevKeys, Role, TokenMinter, Verifier};
use crm_events::{Event, Events, EventsConfig, NewEvent};
use crm_proto::crm::events::v1::{
    SubscribeRequest, SubscribeResponse, event_service_client::EventServiceClient,
    subscribe_response::Kind,
};
use crm_server::{ServerConfig, Shutdown};
use crm_store::{ConnectionTrait, DatabaseConnection, Location};
use sea_orm_migration::{MigrationTrait, MigratorTrait};
use tokio::net::TcpListener;
use tonic::{Status, Streaming, transport::Endpoint};

/// Generous bound on anything a test waits for; never a pause.
pub const DEADLINE: Duration = Duration::from_secs(30);

pub async fn within<F: Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(DEADLINE, f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen within {DEADLINE:?}"))
}

/// Polls `check` until it yields `Some`, failing after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut poll = tokio::time::interval(Duration::from_millis(20));
    loop {
        poll.tick().await;
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
    }
}

pub fn telemetry() {
    // Idempotent; gives real trace ids, and logs when a test fails.
    let _ = crm_telemetry::init(&crm_telemetry::TelemetryConfig::default());
}

struct Migrator;

#[sea_orm_migration::async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut all = crm_store::shared_migrations();
        all.extend(crm_events::migrations());
        all
    }
}

/// The databases of one test, dropped after it.
pub struct TestDb {
    dir: tempfile::TempDir,
    pg: Option<PgDatabase>,
}

impl TestDb {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let pg = match std::env::var("CRM_TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => Some(PgDatabase::create(&url).await),
            _ => None,
        };
        TestDb { dir, pg }
    }

    /// Where the service `name` keeps its data: its own SQLite file, or its
    /// own schema of the test's PostgreSQL database.
    pub fn location(&self, name: &str) -> Location {
        Location::for_service(
            name,
            self.pg.as_ref().map(|pg| pg.url.as_str()),
            self.dir.path(),
        )
    }

    pub fn dir(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }

    /// A migrated pool on `name`'s data.
    pub async fn connect(&self, name: &str, pool: u32) -> DatabaseConnection {
        connect(&self.location(name), pool).await
    }
}

pub async fn connect(location: &Location, pool: u32) -> DatabaseConnection {
    let db = crm_store::connect(location, pool).await.unwrap();
    Migrator::up(&db, None).await.unwrap();
    db
}

struct PgDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl PgDatabase {
    async fn create(admin_url: &str) -> Self {
        let name = format!("crm_test_{}", uuid::Uuid::now_v7().simple());
        let admin = crm_store::connect(
            &Location {
                url: admin_url.to_owned(),
                schema: None,
            },
            1,
        )
        .await
        .unwrap();
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        admin.close().await.unwrap();
        let (base, query) = admin_url.split_once('?').unwrap_or((admin_url, ""));
        let root = base.rsplit_once('/').map_or(base, |(root, _)| root);
        let url = if query.is_empty() {
            format!("{root}/{name}")
        } else {
            format!("{root}/{name}?{query}")
        };
        PgDatabase {
            admin_url: admin_url.to_owned(),
            name,
            url,
        }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs outside async code: a small runtime of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                if let Ok(admin) = crm_store::connect(&Location { url, schema: None }, 1).await {
                    let _ = admin
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                    let _ = admin.close().await;
                }
            });
        })
        .join();
    }
}

/// Signing keys and a verifier, as a deployment has them: the users' key
/// and the services' own identity key (service tokens only).
pub struct Keys {
    pub minter: Arc<TokenMinter>,
    /// Signs service tokens: audience `crm-internal`, role `internal`.
    pub service: Arc<TokenMinter>,
    pub verifier: Arc<Verifier>,
    _dir: tempfile::TempDir,
    _service_dir: tempfile::TempDir,
}

impl Keys {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let keys = DevKeys::load_or_create(dir.path()).unwrap();
        let service_dir = tempfile::tempdir().unwrap();
        let service_keys = DevKeys::load_or_create(service_dir.path()).unwrap();
        let cfg = AuthConfig::default();
        let minter = Arc::new(keys.minter(&cfg.issuer, &cfg.audience).unwrap());
        let service = Arc::new(
            service_keys
                .minter(&cfg.issuer, &cfg.service_audience)
                .unwrap(),
        );
        let verifier = Arc::new(
            Verifier::with_service_keys(
                &cfg,
                &[keys.public_key_pem()],
                &[service_keys.public_key_pem()],
            )
            .unwrap(),
        );
        Keys {
            minter,
            service,
            verifier,
            _dir: dir,
            _service_dir: service_dir,
        }
    }

    pub fn token(&self, tenant: &str, roles: &[Role]) -> String {
        self.minter
            .mint("integration-1", tenant, roles, Duration::from_secs(3600))
            .unwrap()
    }

    /// A service identity's token (role `internal`).
    pub fn service_token(&self, tenant: &str) -> String {
        self.service
            .mint(
                "delivery",
                tenant,
                &[Role::Internal],
                Duration::from_secs(3600),
            )
            .unwrap()
    }
}

/// Serves `events`' EventService on `listener`, behind the auth layer, as a
/// service does.
pub async fn serve(
    events: Events,
    verifier: Arc<Verifier>,
    listener: TcpListener,
    shutdown: Shutdown,
) -> Result<(), crm_server::ServerError> {
    let routes = tonic::service::Routes::new(events.grpc(shutdown.clone()))
        .into_axum_router()
        .layer(crm_auth::AuthLayer::new(verifier));
    let server = ServerConfig {
        grace_period: Duration::from_secs(5),
        ..ServerConfig::default()
    };
    crm_server::serve("events-test", routes.into(), listener, &server, shutdown).await
}

/// A producer in the test's runtime: database, sequencer and server.
pub struct Producer {
    pub db: DatabaseConnection,
    pub events: Events,
    pub addr: SocketAddr,
    pub keys: Keys,
    pub shutdown: Shutdown,
    pub server: tokio::task::JoinHandle<Result<(), crm_server::ServerError>>,
    pub testdb: TestDb,
}

impl Producer {
    pub async fn start(cfg: EventsConfig) -> Self {
        telemetry();
        let testdb = TestDb::new().await;
        let db = testdb.connect("producer", 10).await;
        let events = Events::open(db.clone(), cfg).await.unwrap();
        let shutdown = Shutdown::new();
        events.spawn_sequencer(shutdown.clone());
        let keys = Keys::new();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(serve(
            events.clone(),
            Arc::clone(&keys.verifier),
            listener,
            shutdown.clone(),
        ));
        Producer {
            db,
            events,
            addr,
            keys,
            shutdown,
            server,
            testdb,
        }
    }

    /// Appends `batch` in one transaction, commits, wakes the sequencer.
    pub async fn write(&self, batch: Vec<NewEvent>) {
        let txn = crm_store::begin_write(&self.db).await.unwrap();
        for event in batch {
            crm_events::append(&txn, event).await.unwrap();
        }
        txn.commit().await.unwrap();
        self.events.outbox().notify();
    }

    pub async fn subscribe(
        &self,
        tenant: &str,
        after: i64,
        types: &[&str],
    ) -> Result<Streaming<SubscribeResponse>, Status> {
        subscribe(
            self.addr,
            &self.keys.token(tenant, &[Role::Integration]),
            after,
            types,
        )
        .await
    }
}

pub async fn subscribe(
    addr: SocketAddr,
    token: &str,
    after: i64,
    types: &[&str],
) -> Result<Streaming<SubscribeResponse>, Status> {
    subscribe_with(addr, token, after, types, false).await
}

/// [`subscribe`], asking for every tenant's events when `all_tenants`.
pub async fn subscribe_with(
    addr: SocketAddr,
    token: &str,
    after: i64,
    types: &[&str],
    all_tenants: bool,
) -> Result<Streaming<SubscribeResponse>, Status> {
    let channel = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy();
    let mut request = tonic::Request::new(SubscribeRequest {
        after_sequence: after,
        types: types.iter().map(|t| (*t).to_owned()).collect(),
        all_tenants,
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    EventServiceClient::new(channel)
        .subscribe(request)
        .await
        .map(tonic::Response::into_inner)
}

/// An event of `tenant` and `event_type` about `subject`.
pub fn event(tenant: &str, event_type: &str, subject: &str) -> NewEvent {
    NewEvent {
        tenant_id: tenant.to_owned(),
        event_type: event_type.to_owned(),
        subject_id: subject.to_owned(),
        time: crm_store::now_micros(),
        payload: prost_types::Any {
            type_url: format!("type.googleapis.com/{event_type}"),
            value: subject.as_bytes().to_vec(),
        },
    }
}

/// What came next on a stream.
#[derive(Debug)]
pub enum Next {
    Event(Box<Event>),
    Heartbeat(i64),
}

pub async fn next(stream: &mut Streaming<SubscribeResponse>) -> Next {
    let message = within("the next message", stream.message())
        .await
        .unwrap()
        .expect("the stream ended");
    match message.kind.expect("a message kind") {
        Kind::Event(event) => Next::Event(Box::new(event)),
        Kind::Heartbeat(hb) => {
            assert!(hb.time.is_some());
            Next::Heartbeat(hb.head_sequence)
        }
    }
}

/// The next event, skipping heartbeats.
pub async fn next_event(stream: &mut Streaming<SubscribeResponse>) -> Event {
    loop {
        if let Next::Event(event) = next(stream).await {
            return *event;
        }
    }
}

/// The next heartbeat's head, failing on an event.
pub async fn next_heartbeat(stream: &mut Streaming<SubscribeResponse>) -> i64 {
    match next(stream).await {
        Next::Heartbeat(head) => head,
        Next::Event(event) => panic!("expected a heartbeat, got event {event:?}"),
    }
}

/// The `(reason, domain)` of a status's ErrorInfo.
pub fn reason(status: &Status) -> Option<(String, String)> {
    use tonic_types::StatusExt as _;
    status
        .get_details_error_info()
        .map(|info| (info.reason, info.domain))
}

/// A multi-threaded runtime of its own, so a test can kill everything on it
/// at once as a crash would: dropping a runtime drops its tasks,
/// connections and transactions included.
pub struct Isolated {
    runtime: Option<tokio::runtime::Runtime>,
}

impl Isolated {
    pub fn spawn<F>(task: F) -> Self
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        runtime.spawn(task);
        Isolated {
            runtime: Some(runtime),
        }
    }

    pub async fn kill(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            // Returns once every worker has exited and every task is gone.
            tokio::task::spawn_blocking(move || drop(runtime))
                .await
                .unwrap();
        }
    }
}

impl Drop for Isolated {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            let _ = std::thread::spawn(move || drop(runtime)).join();
        }
    }
}
