//! The end-to-end test kit: each test gets the real suite (gateway and
//! services) on 127.0.0.1:0 with its own data directory, its own keys and
//! its own database: SQLite by default, a fresh PostgreSQL database when
//! `CRM_TEST_DATABASE_URL` is set.

use std::{
    future::Future,
    net::SocketAddr,
    time::{Duration, Instant},
};

pub use crm::Component;
use crm::{Listeners, Settings};
use crm_auth::{DevKeys, Role, TokenMinter};
use crm_proto::crm::events::v1::event_service_client::EventServiceClient;
use crm_proto::crm::leads::v1::lead_service_client::LeadServiceClient;
use crm_proto::crm::opportunities::v1::opportunity_service_client::OpportunityServiceClient;
use crm_server::Shutdown;
use tokio::{net::TcpListener, task::JoinHandle};
use tonic::{
    metadata::MetadataValue,
    service::interceptor::InterceptedService,
    transport::{Channel, Endpoint},
};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A client that sends `authorization: Bearer <token>` on every call.
pub type LeadsClient = LeadServiceClient<InterceptedService<Channel, Bearer>>;
/// A service's event stream through the gateway.
pub type EventsClient = EventServiceClient<InterceptedService<Channel, Bearer>>;
/// The opportunities API, with the caller's token on every call.
pub type OpportunitiesClient = OpportunityServiceClient<InterceptedService<Channel, Bearer>>;

/// Adds the bearer token (and, for event streams, the source service) to
/// each request.
#[derive(Clone)]
pub struct Bearer(
    Option<MetadataValue<tonic::metadata::Ascii>>,
    Option<MetadataValue<tonic::metadata::Ascii>>,
);

impl Bearer {
    fn of(token: Option<&str>) -> Self {
        Bearer(token.and_then(|t| format!("Bearer {t}").parse().ok()), None)
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            req.metadata_mut().insert("authorization", value.clone());
        }
        if let Some(source) = &self.1 {
            req.metadata_mut().insert("x-crm-source", source.clone());
        }
        Ok(req)
    }
}

/// A PostgreSQL database made for one test and dropped after it.
struct PgDatabase {
    admin_url: String,
    name: String,
}

impl PgDatabase {
    async fn create(admin_url: &str) -> Result<(Self, String), BoxError> {
        let name = format!("crm_test_{}", uuid::Uuid::now_v7().simple());
        let admin = crm_store::connect(
            &crm_store::Location {
                url: admin_url.to_owned(),
                schema: None,
            },
            1,
        )
        .await?;
        use crm_store::ConnectionTrait;
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await?;
        admin.close().await?;
        let (base, query) = admin_url
            .split_once('?')
            .map_or((admin_url, ""), |(b, q)| (b, q));
        let root = base.rsplit_once('/').map_or(base, |(root, _)| root);
        let url = if query.is_empty() {
            format!("{root}/{name}")
        } else {
            format!("{root}/{name}?{query}")
        };
        Ok((
            PgDatabase {
                admin_url: admin_url.to_owned(),
                name,
            },
            url,
        ))
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs outside async code; a small runtime of its own does the work.
        let done = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                use crm_store::ConnectionTrait;
                if let Ok(admin) =
                    crm_store::connect(&crm_store::Location { url, schema: None }, 1).await
                {
                    let _ = admin
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                    let _ = admin.close().await;
                }
            });
        });
        let _ = done.join();
    }
}

/// The running suite of one test.
pub struct TestSuite {
    pub gateway: SocketAddr,
    pub leads: SocketAddr,
    pub opportunities: SocketAddr,
    pub settings: Settings,
    shutdown: Shutdown,
    task: Option<JoinHandle<Result<(), crm::Error>>>,
    /// The suite runs on a runtime of its own so that [`TestSuite::kill`]
    /// can drop every task it has (connections and transactions in flight
    /// included), as a crash would.
    runtime: Option<tokio::runtime::Runtime>,
    minter: TokenMinter,
    signing_key_pem: Vec<u8>,
    _pg: Option<PgDatabase>,
    _data: tempfile::TempDir,
}

impl TestSuite {
    /// The suite with default settings.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// The suite with settings adjusted by `tweak`.
    #[allow(clippy::expect_used)] // a test cannot run without its suite
    pub async fn start_with(tweak: impl FnOnce(&mut Settings)) -> Self {
        let data = tempfile::tempdir().expect("temporary data directory");
        let mut settings = Settings {
            data_dir: data.path().to_path_buf(),
            ..Settings::default()
        };
        settings.leads.sweep_interval = Duration::from_millis(50);
        // Quiet streams show they are alive quickly.
        settings.leads.events.heartbeat_interval = Duration::from_millis(200);
        settings.opportunities.events.heartbeat_interval = Duration::from_millis(200);
        let pg = match std::env::var("CRM_TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => {
                let (db, test_url) = PgDatabase::create(&url)
                    .await
                    .expect("create a test database");
                settings.store.database_url = Some(test_url);
                settings.store.max_connections = 4;
                Some(db)
            }
            _ => None,
        };
        tweak(&mut settings);
        let keys = DevKeys::load_or_create(&settings.data_dir).expect("development keys");
        let minter = keys
            .minter(&settings.auth.issuer, &settings.auth.audience)
            .expect("token minter");
        let signing_key_pem =
            std::fs::read(settings.data_dir.join("keys/dev-signing-key.pem")).expect("signing key");
        let mut suite = TestSuite {
            gateway: SocketAddr::from(([127, 0, 0, 1], 0)),
            leads: SocketAddr::from(([127, 0, 0, 1], 0)),
            opportunities: SocketAddr::from(([127, 0, 0, 1], 0)),
            settings,
            shutdown: Shutdown::new(),
            task: None,
            runtime: None,
            minter,
            signing_key_pem,
            _pg: pg,
            _data: data,
        };
        suite.run().await;
        suite
    }

    #[allow(clippy::expect_used)]
    async fn run(&mut self) {
        let bind = || {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
            listener
                .set_nonblocking(true)
                .expect("non-blocking listener");
            listener
        };
        let (gateway, leads, opportunities) = (bind(), bind(), bind());
        self.gateway = gateway.local_addr().expect("gateway address");
        self.leads = leads.local_addr().expect("leads address");
        self.opportunities = opportunities.local_addr().expect("opportunities address");
        self.shutdown = Shutdown::new();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("suite runtime");
        let (settings, shutdown) = (self.settings.clone(), self.shutdown.clone());
        self.task = Some(runtime.spawn(async move {
            // Listeners belong to the runtime that polls them.
            let listeners = Listeners {
                gateway: Some(TcpListener::from_std(gateway).expect("gateway listener")),
                leads: Some(TcpListener::from_std(leads).expect("leads listener")),
                opportunities: Some(
                    TcpListener::from_std(opportunities).expect("opportunities listener"),
                ),
            };
            crm::serve_on(settings, Component::All, listeners, shutdown).await
        }));
        self.runtime = Some(runtime);
    }

    /// Stops the suite gracefully and waits for it.
    #[allow(clippy::expect_used)]
    pub async fn stop(&mut self) {
        self.shutdown.trigger();
        if let Some(task) = self.task.take() {
            task.await
                .expect("suite task")
                .expect("suite stopped cleanly");
        }
        self.kill().await;
    }

    /// Kills the suite at once, as a crash would: every task of it is
    /// dropped where it stands, uncommitted transactions with them.
    pub async fn kill(&mut self) {
        self.task = None;
        if let Some(runtime) = self.runtime.take() {
            // Dropping a runtime cancels its tasks and waits for its workers
            // to exit: when this returns, the suite is gone.
            let _ = tokio::task::spawn_blocking(move || drop(runtime)).await;
        }
    }

    /// Runs one more component of the suite (same data and keys) on
    /// `listener`, until the suite stops: e.g. a service that was down.
    #[allow(clippy::expect_used)]
    pub fn spawn_component(&self, component: Component, listener: std::net::TcpListener) {
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let runtime = self.runtime.as_ref().expect("the suite is running");
        let (settings, shutdown) = (self.settings.clone(), self.shutdown.clone());
        runtime.spawn(async move {
            let listener = TcpListener::from_std(listener).expect("listener");
            let listeners = match component {
                Component::Opportunities => Listeners {
                    opportunities: Some(listener),
                    ..Listeners::default()
                },
                Component::Leads => Listeners {
                    leads: Some(listener),
                    ..Listeners::default()
                },
                _ => Listeners {
                    gateway: Some(listener),
                    ..Listeners::default()
                },
            };
            crm::serve_on(settings, component, listeners, shutdown).await
        });
    }

    /// Starts the suite again on the same data (new ports).
    pub async fn restart(&mut self) {
        self.run().await;
    }

    /// A token for `subject` of `tenant` with `roles`, signed with the
    /// suite's development key.
    #[allow(clippy::expect_used)]
    pub fn token(&self, tenant: &str, subject: &str, roles: &[Role]) -> String {
        self.minter
            .mint(subject, tenant, roles, Duration::from_secs(600))
            .expect("mint token")
    }

    /// The development signing key, for crafting deliberately bad tokens.
    pub fn signing_key_pem(&self) -> &[u8] {
        &self.signing_key_pem
    }

    fn channel(addr: SocketAddr) -> Channel {
        // Lazy: the listener is bound, so the first call connects.
        Endpoint::from_shared(format!("http://{addr}")).map_or_else(
            |_| unreachable!("a socket address is a valid URI"),
            |e| e.connect_lazy(),
        )
    }

    /// The leads API through the gateway, as `token` (or without one).
    pub fn leads_client(&self, token: Option<&str>) -> LeadsClient {
        Self::client(Self::channel(self.gateway), token)
    }

    /// The leads API reached directly, bypassing the gateway.
    pub fn leads_direct(&self, token: Option<&str>) -> LeadsClient {
        Self::client(Self::channel(self.leads), token)
    }

    fn client(channel: Channel, token: Option<&str>) -> LeadsClient {
        LeadServiceClient::with_interceptor(channel, Bearer::of(token))
    }

    /// The event stream of `source` (e.g. "leads") through the gateway.
    pub fn events_client(&self, token: &str, source: &str) -> EventsClient {
        let mut bearer = Bearer::of(Some(token));
        bearer.1 = source.parse().ok();
        EventServiceClient::with_interceptor(Self::channel(self.gateway), bearer)
    }

    /// The opportunities API through the gateway, as `token`.
    pub fn opportunities_client(&self, token: Option<&str>) -> OpportunitiesClient {
        OpportunityServiceClient::with_interceptor(Self::channel(self.gateway), Bearer::of(token))
    }

    /// A raw channel to the gateway, for health and reflection checks.
    pub fn gateway_channel(&self) -> Channel {
        Self::channel(self.gateway)
    }
}

impl Drop for TestSuite {
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(runtime) = self.runtime.take() {
            // Not from inside the test's runtime: dropping one runtime
            // within another must happen on a plain thread.
            let _ = std::thread::spawn(move || drop(runtime)).join();
        }
    }
}

/// Waits until `check` yields `Some`, polling every 20 ms, failing after
/// `timeout`: a condition with a deadline, never a fixed sleep.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    let mut poll = tokio::time::interval(Duration::from_millis(20));
    loop {
        poll.tick().await;
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
    }
}

/// Signs arbitrary claims with an Ed25519 PEM key: for tests of tokens the
/// minter would never make (expired, wrong audience, missing tenant).
#[allow(clippy::expect_used)]
pub fn sign_claims(pem: &[u8], claims: &serde_json::Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_ed_pem(pem).expect("Ed25519 PEM key");
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA),
        claims,
        &key,
    )
    .expect("sign claims")
}

/// Seconds since the epoch, for claims.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}
