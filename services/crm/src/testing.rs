//! The suite harness for end-to-end tests (feature `testing`): every
//! service of the registry and the gateway on 127.0.0.1:0, with their own
//! data directory, development keys and database (SQLite, or a fresh
//! PostgreSQL database when `CRM_TEST_DATABASE_URL` is set), run by the same
//! [`serve_on`](crate::serve_on) as `crm serve`.

#![allow(clippy::expect_used)] // a test cannot run without its suite

use std::{collections::BTreeMap, net::SocketAddr, time::Duration};

use crm_auth::{DevKeys, Role, TokenMinter};
use crm_server::Shutdown;
use crm_testkit::{Bearer, TestDatabase};
use tokio::{net::TcpListener, task::JoinHandle};
use tonic::{
    service::interceptor::InterceptedService,
    transport::{Channel, Endpoint},
};

use crate::{Component, Listeners, SERVICES, Settings};

/// A channel that sends a bearer token on every call.
pub type Authorized = InterceptedService<Channel, Bearer>;

/// The running suite of one test.
pub struct TestSuite {
    pub gateway: SocketAddr,
    /// Where each service of the registry listens, by name.
    pub services: BTreeMap<&'static str, SocketAddr>,
    pub settings: Settings,
    shutdown: Shutdown,
    task: Option<JoinHandle<Result<(), crate::Error>>>,
    /// The suite runs on a runtime of its own so that [`TestSuite::kill`]
    /// can drop every task it has (connections and transactions in flight
    /// included), as a crash would.
    runtime: Option<tokio::runtime::Runtime>,
    minter: TokenMinter,
    signing_key_pem: Vec<u8>,
    _database: Option<TestDatabase>,
    _data: tempfile::TempDir,
}

impl TestSuite {
    /// The suite with settings adjusted by `tweak`.
    pub async fn start_with(tweak: impl FnOnce(&mut Settings)) -> Self {
        let data = tempfile::tempdir().expect("temporary data directory");
        let mut settings = Settings {
            data_dir: data.path().to_path_buf(),
            ..Settings::default()
        };
        let database = match crm_testkit::test_database_url() {
            Some(url) => {
                let (db, test_url) = TestDatabase::create(&url)
                    .await
                    .expect("create a test database");
                settings.store.database_url = Some(test_url);
                settings.store.max_connections = 4;
                Some(db)
            }
            None => None,
        };
        // Every component, also one started alone (`spawn_component`),
        // trusts the suite's development key; a test may turn it off.
        settings.auth.development = Some(true);
        tweak(&mut settings);
        let keys = DevKeys::load_or_create(&settings.data_dir).expect("development keys");
        let minter = keys
            .minter(&settings.auth.issuer, &settings.auth.audience)
            .expect("token minter");
        let signing_key_pem =
            std::fs::read(settings.data_dir.join("keys/dev-signing-key.pem")).expect("signing key");
        let mut suite = TestSuite {
            gateway: SocketAddr::from(([127, 0, 0, 1], 0)),
            services: BTreeMap::new(),
            settings,
            shutdown: Shutdown::new(),
            task: None,
            runtime: None,
            minter,
            signing_key_pem,
            _database: database,
            _data: data,
        };
        suite.run().await;
        suite
    }

    async fn run(&mut self) {
        let gateway = bind_any();
        self.gateway = gateway.local_addr().expect("gateway address");
        let mut listeners = Vec::new();
        for entry in SERVICES.iter() {
            let listener = bind_any();
            self.services
                .insert(entry.name, listener.local_addr().expect("service address"));
            listeners.push((entry.name, listener));
        }
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
                services: listeners
                    .into_iter()
                    .map(|(name, l)| {
                        let l = TcpListener::from_std(l).expect("service listener");
                        (name.to_owned(), l)
                    })
                    .collect(),
            };
            crate::serve_on(settings, Component::All, listeners, shutdown).await
        }));
        self.runtime = Some(runtime);
    }

    /// Stops the suite gracefully and waits for it.
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
    pub fn spawn_component(&self, component: Component, listener: std::net::TcpListener) {
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let runtime = self.runtime.as_ref().expect("the suite is running");
        let (settings, shutdown) = (self.settings.clone(), self.shutdown.clone());
        runtime.spawn(async move {
            let listener = TcpListener::from_std(listener).expect("listener");
            let mut listeners = Listeners::default();
            match component {
                Component::Service(name) => {
                    listeners.services.insert(name.to_owned(), listener);
                }
                Component::All | Component::Gateway => listeners.gateway = Some(listener),
            }
            crate::serve_on(settings, component, listeners, shutdown).await
        });
    }

    /// Starts the suite again on the same data (new ports).
    pub async fn restart(&mut self) {
        self.run().await;
    }

    /// A token for `subject` of `tenant` with `roles`, signed with the
    /// suite's development key.
    pub fn token(&self, tenant: &str, subject: &str, roles: &[Role]) -> String {
        self.minter
            .mint(subject, tenant, roles, Duration::from_secs(600))
            .expect("mint token")
    }

    /// The development signing key, for crafting deliberately bad tokens.
    pub fn signing_key_pem(&self) -> &[u8] {
        &self.signing_key_pem
    }

    /// A raw channel to the gateway, for health and reflection checks.
    pub fn gateway_channel(&self) -> Channel {
        channel(self.gateway)
    }

    /// The gateway, sending `token` (or none) on every call: wrap it in any
    /// generated client (`LeadServiceClient::new(suite.through_gateway(..))`).
    pub fn through_gateway(&self, token: Option<&str>) -> Authorized {
        InterceptedService::new(channel(self.gateway), Bearer::new(token))
    }

    /// The event stream of `source` through the gateway, as `token`.
    pub fn events_through_gateway(&self, token: &str, source: &str) -> Authorized {
        InterceptedService::new(
            channel(self.gateway),
            Bearer::new(Some(token)).with_source(source),
        )
    }

    /// `service` reached directly, bypassing the gateway.
    pub fn direct(&self, service: &str, token: Option<&str>) -> Authorized {
        let addr = *self.services.get(service).expect("a registered service");
        InterceptedService::new(channel(addr), Bearer::new(token))
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

fn bind_any() -> std::net::TcpListener {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener
        .set_nonblocking(true)
        .expect("non-blocking listener");
    listener
}

fn channel(addr: SocketAddr) -> Channel {
    // Lazy: the listener is bound, so the first call connects.
    Endpoint::from_shared(format!("http://{addr}")).map_or_else(
        |_| unreachable!("a socket address is a valid URI"),
        |e| e.connect_lazy(),
    )
}
