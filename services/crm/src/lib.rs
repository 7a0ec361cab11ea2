//! The suite as one program: settings, and starting any service or all of
//! them. The `crm` binary and the end-to-end test kit both start the suite
//! through [`serve_on`], so tests run exactly what operators run.

mod settings;

use std::{net::SocketAddr, sync::Arc};

use crm_auth::{DevKeys, Verifier};
use crm_leads::Leads;
use crm_opportunities::Opportunities;
use crm_server::Shutdown;
use crm_store::Location;
use tokio::{net::TcpListener, task::JoinSet};

pub use settings::{Addresses, Settings, StoreSettings};

/// What a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Component {
    /// Every service and the gateway, in one process.
    All,
    Leads,
    Opportunities,
    Gateway,
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
    #[error("server: {0}")]
    Server(#[from] crm_server::ServerError),
    #[error("gateway: {0}")]
    Gateway(#[from] crm_gateway::GatewayError),
    #[error("a service task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Listeners for the components a process runs; `None` binds the
/// configured address.
#[derive(Debug, Default)]
pub struct Listeners {
    pub gateway: Option<TcpListener>,
    pub leads: Option<TcpListener>,
    pub opportunities: Option<TcpListener>,
}

/// The verifier for incoming tokens. With no keys configured, the suite is
/// in development mode: it trusts the key `crm serve` made in the data
/// directory (and `crm token` signs with), and says so in the log.
pub fn verifier(settings: &Settings) -> Result<Verifier, Error> {
    let configured =
        !settings.auth.public_key_files.is_empty() || settings.auth.jwks_file.is_some();
    let extra = if configured {
        Vec::new()
    } else {
        ensure_dir(&settings.data_dir)?;
        let keys = DevKeys::load_or_create(&settings.data_dir)?;
        tracing::warn!(
            data_dir = %settings.data_dir.display(),
            "no auth keys configured: trusting the development key in the data directory"
        );
        vec![keys.public_key_pem()]
    };
    Ok(Verifier::new(&settings.auth, &extra)?)
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

/// The services' own identity for work they do by themselves: the
/// configured service key, or in development the development key.
pub fn service_identity(settings: &Settings) -> Result<Option<crm_auth::TokenMinter>, Error> {
    let auth = &settings.auth;
    if let Some(path) = &auth.service_key_file {
        let pem = std::fs::read(path).map_err(|source| Error::DataDir {
            path: path.display().to_string(),
            source,
        })?;
        return Ok(Some(crm_auth::TokenMinter::from_ed25519_pem(
            &pem,
            &auth.issuer,
            &auth.audience,
        )?));
    }
    if auth.public_key_files.is_empty() && auth.jwks_file.is_none() {
        ensure_dir(&settings.data_dir)?;
        return Ok(Some(
            DevKeys::load_or_create(&settings.data_dir)?.minter(&auth.issuer, &auth.audience)?,
        ));
    }
    Ok(None)
}

/// Opens (and migrates) the leads service.
pub async fn open_leads(settings: &Settings) -> Result<Leads, Error> {
    let identity = service_identity(settings)?;
    Ok(Leads::open(
        database(settings, "leads").await?,
        settings.leads.clone(),
        identity,
    )
    .await?)
}

/// Opens (and migrates) the opportunities service.
pub async fn open_opportunities(settings: &Settings) -> Result<Opportunities, Error> {
    Ok(Opportunities::open(
        database(settings, "opportunities").await?,
        settings.opportunities.clone(),
    )
    .await?)
}

/// Applies every service's migrations.
pub async fn migrate(settings: &Settings) -> Result<(), Error> {
    open_leads(settings).await?;
    open_opportunities(settings).await?;
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
    listeners: Listeners,
    shutdown: Shutdown,
) -> Result<(), Error> {
    let verifier = Arc::new(verifier(&settings)?);
    let mut tasks: JoinSet<Result<(), Error>> = JoinSet::new();
    let all = component == Component::All;

    if !all {
        settings.find_services_at_their_addresses();
    }
    // In one process, callers reach each service where it actually listens.
    if all || component == Component::Opportunities {
        let opportunities = open_opportunities(&settings).await?;
        let (listener, addr) =
            listen(listeners.opportunities, &settings.serve.opportunities_addr).await?;
        let url = format!("http://{addr}");
        settings
            .gateway
            .upstreams
            .insert("crm.opportunities.v1".to_owned(), url.clone());
        settings.leads.opportunities_url.get_or_insert(url);
        tracing::info!(%addr, "opportunities service listening");
        let (verifier, server, shutdown) =
            (verifier.clone(), settings.server.clone(), shutdown.clone());
        tasks.spawn(async move {
            Ok(opportunities
                .serve(listener, verifier, &server, shutdown)
                .await?)
        });
    }
    if all || component == Component::Leads {
        let leads = open_leads(&settings).await?;
        let (listener, addr) = listen(listeners.leads, &settings.serve.leads_addr).await?;
        settings
            .gateway
            .upstreams
            .insert("crm.leads.v1".to_owned(), format!("http://{addr}"));
        tracing::info!(%addr, "leads service listening");
        let (verifier, server, shutdown) =
            (verifier.clone(), settings.server.clone(), shutdown.clone());
        tasks.spawn(async move { Ok(leads.serve(listener, verifier, &server, shutdown).await?) });
    }
    if all || component == Component::Gateway {
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
