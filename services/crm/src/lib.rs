//! The suite as one program: settings, the registry of services, and
//! starting any service or all of them. The `crm` binary and the
//! end-to-end tests both start the suite through [`serve_on`], so tests run
//! exactly what operators run.

mod entry;
mod registry;
mod settings;
#[cfg(feature = "testing")]
pub mod testing;

use std::{collections::BTreeMap, net::SocketAddr, str::FromStr, sync::Arc};

use crm_auth::{DevKeys, Verifier};
use crm_server::Shutdown;
use crm_store::Location;
use tokio::{net::TcpListener, task::JoinSet};

pub use entry::{Entry, Launch};
pub use registry::{SERVICES, Settings};
pub use settings::{Addresses, ClientSettings, StoreSettings};

/// What a process runs: everything, the gateway, or one service of the
/// registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// Every service and the gateway, in one process.
    All,
    Gateway,
    /// The service of this name.
    Service(&'static str),
}

impl Component {
    fn runs(self, service: &str) -> bool {
        match self {
            Component::All => true,
            Component::Gateway => false,
            Component::Service(name) => name == service,
        }
    }
}

impl FromStr for Component {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "all" => Ok(Component::All),
            "gateway" => Ok(Component::Gateway),
            _ => SERVICES
                .iter()
                .find(|e| e.name == s)
                .map(|e| Component::Service(e.name))
                .ok_or_else(|| {
                    let names: Vec<_> = SERVICES.iter().map(|e| e.name).collect();
                    format!("expected all, gateway, {}", names.join(", "))
                }),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("auth: {0}")]
    Auth(#[from] crm_auth::AuthError),
    #[error("database: {0}")]
    Database(#[from] crm_store::DbErr),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("settings: {0}")]
    Settings(String),
    #[error("server: {0}")]
    Server(#[from] crm_server::ServerError),
    #[error("tls: {0}")]
    Tls(#[from] crm_server::TlsError),
    #[error("gateway: {0}")]
    Gateway(#[from] crm_gateway::GatewayError),
    #[error("a service task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Listeners for the components a process runs; a missing one binds the
/// configured address.
#[derive(Debug, Default)]
pub struct Listeners {
    pub gateway: Option<TcpListener>,
    /// By service name.
    pub services: BTreeMap<String, TcpListener>,
}

/// Whether a process running `component` is in development mode: it
/// trusts (and signs its own work with) the key kept in the data directory,
/// which `crm token` signs with. `auth.development` decides when set; unset,
/// only everything in one process (`crm serve`) with no keys configured and
/// every listen address on loopback, so that a process reachable from
/// elsewhere never trusts a key that whoever writes its data volume could
/// plant.
pub fn development_mode(settings: &Settings, component: Component) -> bool {
    if let Some(explicit) = settings.auth.development {
        return explicit;
    }
    let auth = &settings.auth;
    let no_keys = auth.public_key_files.is_empty() && auth.jwks_file.is_none();
    let serve = &settings.serve;
    component == Component::All
        && no_keys
        && std::iter::once(&serve.gateway_addr)
            .chain(serve.services.values())
            .all(|addr| is_loopback(addr))
}

/// `127.0.0.1:port`, `[::1]:port` or `localhost:port`.
fn is_loopback(addr: &str) -> bool {
    match addr.parse::<SocketAddr>() {
        Ok(addr) => addr.ip().is_loopback(),
        Err(_) => addr
            .rsplit_once(':')
            .is_some_and(|(host, _)| host.eq_ignore_ascii_case("localhost")),
    }
}

/// The development key of the data directory, made on first use.
fn dev_keys(settings: &Settings) -> Result<DevKeys, Error> {
    ensure_dir(&settings.data_dir)?;
    Ok(DevKeys::load_or_create(&settings.data_dir)?)
}

/// The verifier for incoming tokens: the configured keys, and in
/// `development` mode the development key, said loudly on every start.
/// No key at all is a start-up error naming the settings. The service key's
/// public half (`auth.service_key_file`) is trusted for service tokens only.
pub fn verifier(settings: &Settings, development: bool) -> Result<Verifier, Error> {
    let extra = if development {
        let keys = dev_keys(settings)?;
        tracing::error!(
            key = %keys.signing_key_path().display(),
            "DEVELOPMENT MODE: trusting the development key in the data directory; whoever can \
             read or replace it mints tokens for any tenant. Never in production: configure \
             auth.public_key_files or auth.jwks_file and set auth.development = false"
        );
        vec![keys.public_key_pem()]
    } else {
        Vec::new()
    };
    let service = match service_key(settings)? {
        Some(private) => vec![crm_auth::public_key_of(&private)?],
        None => Vec::new(),
    };
    Ok(Verifier::with_service_keys(
        &settings.auth,
        &extra,
        &service,
    )?)
}

/// The configured service key (`auth.service_key_file`), if any.
fn service_key(settings: &Settings) -> Result<Option<Vec<u8>>, Error> {
    let Some(path) = &settings.auth.service_key_file else {
        return Ok(None);
    };
    std::fs::read(path)
        .map(Some)
        .map_err(|source| Error::DataDir {
            path: path.display().to_string(),
            source,
        })
}

fn ensure_dir(path: &std::path::Path) -> Result<(), Error> {
    std::fs::create_dir_all(path).map_err(|source| Error::DataDir {
        path: path.display().to_string(),
        source,
    })
}

async fn bind(given: Option<TcpListener>, addr: &str) -> Result<TcpListener, Error> {
    match given {
        Some(l) => Ok(l),
        None => TcpListener::bind(addr)
            .await
            .map_err(|source| Error::Listen {
                addr: addr.to_owned(),
                source,
            }),
    }
}

/// Opens the database of `service`: its own SQLite file, or its own
/// PostgreSQL schema.
async fn database(
    settings: &Settings,
    service: &str,
) -> Result<crm_store::DatabaseConnection, Error> {
    let location = Location::for_service(
        service,
        settings.store.database_url.as_deref(),
        &settings.data_dir,
    );
    if location.schema.is_none() {
        ensure_dir(&settings.data_dir)?;
    }
    Ok(crm_store::connect(&location, settings.store.max_connections).await?)
}

/// The services' own identity for work they do by themselves or on a
/// user's behalf (conversion): the configured service key, or in
/// `development` mode the development key. It signs service tokens only:
/// for the service audience (`auth.service_audience`), which the verifier
/// accepts with the `internal` role alone.
pub fn service_identity(
    settings: &Settings,
    development: bool,
) -> Result<Option<crm_auth::TokenMinter>, Error> {
    let auth = &settings.auth;
    if let Some(pem) = service_key(settings)? {
        return Ok(Some(crm_auth::TokenMinter::from_ed25519_pem(
            &pem,
            &auth.issuer,
            &auth.service_audience,
        )?));
    }
    if development {
        return Ok(Some(
            dev_keys(settings)?.minter(&auth.issuer, &auth.service_audience)?,
        ));
    }
    Ok(None)
}

/// Refuses to start `component` without a service identity when a service
/// it runs has work that acts as that identity: the work would otherwise
/// be silently off (qualified leads never converted, signed contracts never
/// handed over).
fn require_identity(settings: &Settings, component: Component) -> Result<(), Error> {
    let needs: Vec<String> = SERVICES
        .iter()
        .filter(|e| component.runs(e.name))
        .filter_map(|e| e.needs_identity(settings))
        .map(str::to_owned)
        .collect();
    if needs.is_empty() {
        return Ok(());
    }
    Err(Error::Settings(format!(
        "auth.service_key_file is not set (and this is not development mode), but {} \
         act(s) as the service identity: set auth.service_key_file to the services' Ed25519 \
         private key (PEM), or turn that work off",
        needs.join("; ")
    )))
}

/// Checks what the settings' types cannot: the database URL is
/// PostgreSQL's, every address is `host:port` and every peer URL `http(s)`,
/// and every `serve.<service>_addr` names a service of the registry.
/// (Durations of zero are refused when the settings load.)
pub fn check(settings: &Settings) -> Result<(), Error> {
    settings.store.check().map_err(Error::Settings)?;
    settings.serve.check().map_err(Error::Settings)?;
    for (name, url) in &settings.peers {
        settings::check_url(&format!("peers.{name}"), url).map_err(Error::Settings)?;
    }
    for (package, url) in &settings.gateway.upstreams {
        settings::check_url(&format!("gateway.upstreams.{package}"), url)
            .map_err(Error::Settings)?;
    }
    let names: Vec<_> = SERVICES.iter().map(|e| e.name).collect();
    if let Some(unknown) = settings.peers.keys().find(|k| !names.contains(&k.as_str())) {
        return Err(Error::Settings(format!(
            "unknown configuration key `peers.{unknown}`; expected one of {}",
            names.join(", ")
        )));
    }
    for key in settings.serve.services.keys() {
        let known = key
            .strip_suffix("_addr")
            .is_some_and(|name| SERVICES.iter().any(|e| e.name == name));
        if !known {
            let expected: Vec<_> = SERVICES
                .iter()
                .map(|e| format!("{}_addr", e.name))
                .collect();
            return Err(Error::Settings(format!(
                "unknown configuration key `serve.{key}`; expected gateway_addr, {}",
                expected.join(", ")
            )));
        }
    }
    Ok(())
}

/// Where each service is: the address this process bound for the services
/// it runs; for the others, `peers.<service>` or else the configured
/// `serve.<service>_addr`.
///
/// Addresses (not `peers` URLs) are `https://` when the components serve
/// TLS (`server.tls`): the components of one deployment share it.
fn peers(settings: &Settings, bound: &BTreeMap<&str, SocketAddr>) -> crm_service::Peers {
    let scheme = if settings.server.tls.enabled() {
        "https"
    } else {
        "http"
    };
    let urls = SERVICES
        .iter()
        .filter_map(|e| {
            let url = match (bound.get(e.name), settings.peers.get(e.name)) {
                (Some(addr), _) => format!("{scheme}://{addr}"),
                (None, Some(url)) => url.clone(),
                (None, None) => format!("{scheme}://{}", settings.serve.of(e.name)?),
            };
            Some((e.name.to_owned(), url))
        })
        .collect();
    crm_service::Peers::new(urls)
}

async fn context(
    settings: &Settings,
    entry: &Entry,
    identity: Option<Arc<crm_auth::TokenMinter>>,
    peers: crm_service::Peers,
) -> Result<crm_service::Context, Error> {
    Ok(crm_service::Context {
        db: database(settings, entry.name).await?,
        identity,
        peers,
    })
}

/// Applies every service's migrations. It needs the database and nothing
/// else: no key is read or made and no auth is set up, so that a migration
/// Job runs on a read-only root filesystem with only the database URL.
/// Migrators of processes started together take turns (`crm_store::migrate`).
pub async fn migrate(settings: &Settings) -> Result<(), Error> {
    check(settings)?;
    let peers = peers(settings, &BTreeMap::new());
    for entry in SERVICES.iter() {
        // Opening spawns no worker: no identity is needed to migrate.
        let context = context(settings, entry, None, peers.clone()).await?;
        // Opening a service applies its migrations; nothing is served.
        let _launch = entry.open(settings, context).await?;
    }
    Ok(())
}

/// The given listener, or one bound to `addr`, with its actual address.
async fn listen(
    given: Option<TcpListener>,
    addr: &str,
) -> Result<(TcpListener, SocketAddr), Error> {
    let listener = bind(given, addr).await?;
    let local = listener.local_addr().map_err(|source| Error::Listen {
        addr: addr.to_owned(),
        source,
    })?;
    Ok((listener, local))
}

/// Runs `component` until `shutdown`, then drains. The first component to
/// fail stops the others.
pub async fn serve_on(
    mut settings: Settings,
    component: Component,
    mut listeners: Listeners,
    shutdown: Shutdown,
) -> Result<(), Error> {
    check(&settings)?;
    // TLS files are read and checked before anything starts (the
    // listeners load them again, from the same files).
    settings
        .server
        .tls
        .load(settings.server.handshake_timeout)?;
    let client_tls = settings.client.tls.load()?;
    settings.gateway.client_tls = settings.client.tls.clone();
    let development = development_mode(&settings, component);
    let verifier = Arc::new(verifier(&settings, development)?);
    let identity = service_identity(&settings, development)?.map(Arc::new);
    if identity.is_none() {
        require_identity(&settings, component)?;
    }
    let mut tasks: JoinSet<Result<(), Error>> = JoinSet::new();

    // Bind first, so that every service and the gateway know where the
    // services of this process actually listen.
    let mut bound = Vec::new();
    let mut addrs = BTreeMap::new();
    for entry in SERVICES.iter().filter(|e| component.runs(e.name)) {
        let addr = settings.serve.of(entry.name).unwrap_or_default().to_owned();
        let (listener, local) = listen(listeners.services.remove(entry.name), &addr).await?;
        addrs.insert(entry.name, local);
        bound.push((entry, listener, local));
    }
    let peers = peers(&settings, &addrs).with_tls(client_tls);
    for entry in SERVICES.iter() {
        let Some(url) = peers.url(entry.name) else {
            continue;
        };
        let upstreams = &mut settings.gateway.upstreams;
        if addrs.contains_key(entry.name) {
            upstreams.insert(entry.package.to_owned(), url.to_owned());
        } else {
            upstreams
                .entry(entry.package.to_owned())
                .or_insert_with(|| url.to_owned());
        }
    }

    for (entry, listener, addr) in bound {
        let context = context(&settings, entry, identity.clone(), peers.clone()).await?;
        let launch = entry.open(&settings, context).await?;
        tracing::info!(%addr, service = entry.name, "service listening");
        let (verifier, server, shutdown) =
            (verifier.clone(), settings.server.clone(), shutdown.clone());
        tasks.spawn(async move { Ok(launch(listener, verifier, server, shutdown).await?) });
    }
    if matches!(component, Component::All | Component::Gateway) {
        let (listener, addr) = listen(listeners.gateway, &settings.serve.gateway_addr).await?;
        tracing::info!(%addr, "gateway listening");
        let (gateway, verifier, server, shutdown) = (
            settings.gateway.clone(),
            verifier.clone(),
            settings.server.clone(),
            shutdown.clone(),
        );
        tasks.spawn(async move {
            Ok(crm_gateway::serve(&gateway, &server, verifier, listener, shutdown).await?)
        });
    }

    let mut first_error = None;
    while let Some(done) = tasks.join_next().await {
        let result = done.map_err(Error::from).and_then(|r| r);
        if let Err(err) = result {
            shutdown.trigger();
            first_error.get_or_insert(err);
        }
    }
    first_error.map_or(Ok(()), Err)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn every_registry_line_names_its_section_after_its_service() {
        for entry in SERVICES.iter() {
            assert_eq!(entry.section, entry.name, "{entry:?}");
            assert!(entry.package.starts_with("crm."), "{entry:?}");
        }
        let names: std::collections::BTreeSet<_> = SERVICES.iter().map(|e| e.name).collect();
        assert_eq!(names.len(), SERVICES.len(), "names are unique");
    }

    #[test]
    fn a_component_is_all_the_gateway_or_a_registered_service() {
        assert_eq!("all".parse::<Component>(), Ok(Component::All));
        assert_eq!("gateway".parse::<Component>(), Ok(Component::Gateway));
        for entry in SERVICES.iter() {
            assert_eq!(
                entry.name.parse::<Component>(),
                Ok(Component::Service(entry.name))
            );
        }
        let err = "billing".parse::<Component>().unwrap_err();
        assert!(err.contains("leads"), "{err}");
    }

    #[test]
    fn separate_services_find_each_other_unless_configured_otherwise() {
        let mut settings = Settings::default();
        settings
            .serve
            .services
            .insert("leads_addr".into(), "10.0.0.1:7001".into());
        let found = peers(&settings, &BTreeMap::new());
        assert_eq!(found.url("leads"), Some("http://10.0.0.1:7001"));
        assert_eq!(found.url("opportunities"), Some("http://127.0.0.1:50062"));
        settings
            .peers
            .insert("leads".into(), "http://crm-leads:50061".into());
        assert_eq!(
            peers(&settings, &BTreeMap::new()).url("leads"),
            Some("http://crm-leads:50061"),
            "where others reach a service wins over where it listens"
        );
        let here = BTreeMap::from([("opportunities", SocketAddr::from(([127, 0, 0, 1], 9)))]);
        assert_eq!(
            peers(&settings, &here).url("opportunities"),
            Some("http://127.0.0.1:9"),
            "a service of this process is where it actually listens"
        );
    }

    fn settings_from(vars: &[(&str, &str)]) -> Settings {
        let vars = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
        crm_config::load_from(None, vars).unwrap()
    }

    #[test]
    fn development_mode_is_explicit_or_everything_on_loopback_without_keys() {
        let defaults = Settings::default();
        assert!(
            development_mode(&defaults, Component::All),
            "crm serve, no setup"
        );
        assert!(!development_mode(&defaults, Component::Gateway));
        assert!(!development_mode(&defaults, Component::Service("leads")));
        for vars in [
            [("CRM__SERVE__GATEWAY_ADDR", "0.0.0.0:50051")],
            [("CRM__SERVE__LEADS_ADDR", "10.0.0.1:50061")],
            [("CRM__AUTH__PUBLIC_KEY_FILES", "/etc/crm/keys/public.pem")],
            [("CRM__AUTH__DEVELOPMENT", "false")],
        ] {
            assert!(
                !development_mode(&settings_from(&vars), Component::All),
                "{vars:?}"
            );
        }
        let explicit = settings_from(&[
            ("CRM__AUTH__DEVELOPMENT", "true"),
            ("CRM__SERVE__GATEWAY_ADDR", "0.0.0.0:50051"),
        ]);
        assert!(development_mode(&explicit, Component::Gateway));
        assert!(is_loopback("[::1]:1") && is_loopback("localhost:1"));
        assert!(!is_loopback("[::]:1") && !is_loopback("crm-leads:50061"));
    }

    /// Finding 3: with no keys configured and not in development mode (a
    /// process listening beyond loopback, one component alone, or
    /// `auth.development = false` with an empty key list), start-up fails
    /// naming the setting, before any key is made or trusted.
    #[tokio::test]
    async fn finding_3_no_keys_outside_development_mode_stops_start_up() {
        let cases: [(&[(&str, &str)], Component); 3] = [
            (&[("CRM__SERVE__GATEWAY_ADDR", "0.0.0.0:0")], Component::All),
            (&[], Component::Service("leads")),
            (
                &[
                    ("CRM__AUTH__PUBLIC_KEY_FILES", ""),
                    ("CRM__AUTH__DEVELOPMENT", "false"),
                ],
                Component::All,
            ),
        ];
        for (i, (vars, component)) in cases.into_iter().enumerate() {
            let data =
                std::env::temp_dir().join(format!("crm-finding-3-{}-{i}", std::process::id()));
            let mut settings = settings_from(vars);
            settings.data_dir = data.clone();
            for addr in settings.serve.services.values_mut() {
                *addr = "127.0.0.1:0".into();
            }
            if settings.serve.gateway_addr.starts_with("127.") {
                settings.serve.gateway_addr = "127.0.0.1:0".into();
            }
            // Stopped before it starts: without the check it would return Ok.
            let shutdown = Shutdown::new();
            shutdown.trigger();
            let result = serve_on(settings, component, Listeners::default(), shutdown).await;
            let keys_made = data.join("keys").exists();
            let _ = std::fs::remove_dir_all(&data);
            let err = result
                .map(|()| "started".to_owned())
                .unwrap_or_else(|e| e.to_string());
            assert!(
                err.contains("auth.development"),
                "{vars:?} {component:?}: {err}"
            );
            assert!(
                !keys_made,
                "{vars:?} {component:?}: no development key made"
            );
        }
    }

    /// Issue 15: outside development mode, a process whose services have
    /// work acting as the service identity (leads' automatic conversion)
    /// does not start without `auth.service_key_file`, and says so naming
    /// the setting and the work; with that work off, or for a component
    /// without such work, it starts.
    #[tokio::test]
    async fn work_acting_as_the_service_identity_needs_a_service_key() {
        let keys_dir = std::env::temp_dir().join(format!(
            "crm-identity-{}-{}",
            std::process::id(),
            crm_store::new_id()
        ));
        let keys = DevKeys::load_or_create(&keys_dir).unwrap();
        let public = keys.public_key_path().display().to_string();
        let start = |vars: Vec<(&str, &str)>, component: Component| {
            let mut settings = settings_from(&vars);
            settings.data_dir = keys_dir.join("data");
            for addr in settings.serve.services.values_mut() {
                *addr = "127.0.0.1:0".into();
            }
            settings.serve.gateway_addr = "127.0.0.1:0".into();
            // Stopped before it starts: it returns once opened and drained.
            let shutdown = Shutdown::new();
            shutdown.trigger();
            serve_on(settings, component, Listeners::default(), shutdown)
        };
        let production = vec![
            ("CRM__AUTH__PUBLIC_KEY_FILES", public.as_str()),
            ("CRM__AUTH__DEVELOPMENT", "false"),
        ];
        for component in [Component::All, Component::Service("leads")] {
            let err = start(production.clone(), component)
                .await
                .map(|()| "started".to_owned())
                .unwrap_or_else(|e| e.to_string());
            assert!(
                err.contains("auth.service_key_file") && err.contains("leads.auto_convert"),
                "{component:?}: {err}"
            );
        }
        let mut off = production.clone();
        off.push(("CRM__LEADS__AUTO_CONVERT", "false"));
        let started = start(off, Component::Service("leads")).await;
        let opportunities = start(production, Component::Service("opportunities")).await;
        let _ = std::fs::remove_dir_all(&keys_dir);
        started.unwrap();
        opportunities.unwrap();
    }

    /// Issue 15: values of the right type but the wrong meaning stop
    /// start-up naming the key, as the suite loads and checks them.
    #[test]
    fn settings_wrong_in_meaning_stop_start_up_naming_the_key() {
        let load = |vars: &[(&str, &str)]| {
            let vars = vars.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned()));
            crm_config::load_from::<Settings>(None, vars)
                .map_err(|e| e.to_string())
                .and_then(|s| check(&s).map_err(|e| e.to_string()))
        };
        load(&[]).unwrap();
        for (vars, key) in [
            (
                [("CRM__LEADS__SWEEP_INTERVAL", "0s")],
                "leads.sweep_interval: must be greater than 0",
            ),
            (
                [("CRM__SERVER__DATABASE_PROBE_INTERVAL", "0ms")],
                "server.database_probe_interval: must be greater than 0",
            ),
            (
                [("CRM__STORE__DATABASE_URL", "mysql://crm@db/crm")],
                "store.database_url",
            ),
            (
                [("CRM__SERVE__GATEWAY_ADDR", "0.0.0.0")],
                "serve.gateway_addr",
            ),
            ([("CRM__PEERS__LEADS", "crm-leads:50061")], "peers.leads"),
        ] {
            let err = load(&vars).unwrap_err();
            assert!(err.contains(key), "{vars:?}: {err}");
        }
    }

    #[test]
    fn an_address_of_no_registered_service_stops_start_up_naming_the_key() {
        let settings: Settings = crm_config::load_from(
            None,
            [(
                "CRM__SERVE__BILLING_ADDR".to_owned(),
                "127.0.0.1:1".to_owned(),
            )],
        )
        .unwrap();
        let err = check(&settings).unwrap_err().to_string();
        assert!(err.contains("serve.billing_addr"), "{err}");
        let mut settings = Settings::default();
        settings.peers.insert("billing".into(), "http://x".into());
        let err = check(&settings).unwrap_err().to_string();
        assert!(err.contains("peers.billing"), "{err}");
        let ok: Settings = crm_config::load_from(
            None,
            [(
                "CRM__SERVE__LEADS_ADDR".to_owned(),
                "127.0.0.1:1".to_owned(),
            )],
        )
        .unwrap();
        check(&ok).unwrap();
        assert_eq!(ok.serve.of("leads"), Some("127.0.0.1:1"));
        assert_eq!(ok.serve.of("opportunities"), Some("127.0.0.1:50062"));
    }
}
