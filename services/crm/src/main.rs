//! `crm`: serve any service or all of them, migrate, mint development
//! tokens, check a running component's health.

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{Parser, Subcommand};
use crm::{Component, Listeners, Settings};
use crm_auth::{DevKeys, Role};

/// mimalloc rather than the system allocator: under load glibc's malloc was
/// a fifth of the CPU of a call, and its per-thread arenas held on to
/// memory the suite no longer used.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "crm",
    version,
    about = "The CRM suite: leads to service, over gRPC"
)]
struct Cli {
    /// A TOML settings file; CRM__SECTION__KEY environment variables override it.
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the suite (default: everything in one process, SQLite under ./data).
    Serve {
        /// `all`, `gateway`, or a service: leads, opportunities, ...
        #[arg(default_value = "all", value_parser = parse_component)]
        component: Component,
    },
    /// Apply every service's database migrations and exit.
    Migrate,
    /// Print a development token signed with the key in the data directory
    /// (trusted by `crm serve` in development mode: `auth.development`).
    Token {
        #[arg(long)]
        tenant: String,
        /// Comma-separated: sales, solution, delivery, service, finance, legal, manager, admin, integration.
        #[arg(long, value_delimiter = ',', required = true)]
        roles: Vec<String>,
        /// The user the token is for (`sub`).
        #[arg(long, default_value = "dev-user")]
        subject: String,
        /// Hours until it expires.
        #[arg(long, default_value_t = 12)]
        hours: u64,
        /// Where the development key is (default: the configured data_dir).
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
    /// Ask a running component's grpc.health.v1 Check; exit 0 if it is
    /// SERVING, 1 if not or if it does not answer (container health checks:
    /// the image has no shell).
    Health {
        /// Whose listen address to ask (`serve.<component>_addr`, an
        /// unspecified host such as 0.0.0.0 asked on loopback): `gateway` or
        /// a service.
        #[arg(default_value = "gateway")]
        component: String,
        /// Ask this `host:port` instead.
        #[arg(long)]
        addr: Option<String>,
        /// The health service name to check; "" is the server as a whole.
        #[arg(long, default_value = "")]
        service: String,
        /// Seconds to wait for the answer, connecting included.
        #[arg(long, default_value_t = 3)]
        timeout: u64,
        /// Ask over TLS trusting this CA (PEM). Without it, TLS is used when
        /// the components serve it (`server.tls.cert_file`), trusting
        /// `client.tls.ca_file`; `client.tls.cert_file`/`key_file` are
        /// presented for mutual TLS.
        #[arg(long)]
        tls_ca: Option<PathBuf>,
        /// The name the server's certificate must carry (default: the
        /// host asked, e.g. when the certificate names only the service's
        /// DNS name and the check asks 127.0.0.1).
        #[arg(long)]
        tls_domain: Option<String>,
    },
}

fn parse_component(s: &str) -> Result<Component, String> {
    s.parse()
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings: Settings = match crm_config::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(err) => {
            eprintln!("crm: {err}");
            return ExitCode::from(2);
        }
    };
    match run(cli.command, settings).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("crm: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, mut settings: Settings) -> Result<(), Box<dyn std::error::Error>> {
    match command {
        Command::Serve { component } => {
            let _telemetry = crm_telemetry::init(&settings.telemetry)?;
            let shutdown = crm_server::Shutdown::new();
            shutdown.on_os_signal();
            crm::serve_on(settings, component, Listeners::default(), shutdown).await?;
        }
        Command::Migrate => {
            // A one-shot has nothing to be scraped for (and must not take
            // the port of a server beside it).
            settings.telemetry.prometheus_addr = None;
            let _telemetry = crm_telemetry::init(&settings.telemetry)?;
            crm::migrate(&settings).await?;
            println!("migrations applied");
        }
        Command::Token {
            tenant,
            roles,
            subject,
            hours,
            data_dir,
        } => {
            if let Some(dir) = data_dir {
                settings.data_dir = dir;
            }
            let roles = roles
                .iter()
                .map(|r| r.trim().parse::<Role>())
                .collect::<Result<Vec<_>, _>>()?;
            // A token the suite would refuse is no use: say so here.
            let max = settings.auth.max_token_lifetime_seconds;
            let ttl = hours
                .checked_mul(3600)
                .filter(|s| *s <= max)
                .ok_or_else(|| {
                    format!(
                        "--hours {hours} is longer than auth.max_token_lifetime_seconds ({max})"
                    )
                })?;
            std::fs::create_dir_all(&settings.data_dir)?;
            let keys = DevKeys::load_or_create(&settings.data_dir)?;
            let minter = keys.minter(&settings.auth.issuer, &settings.auth.audience)?;
            let token = minter.mint(&subject, &tenant, &roles, Duration::from_secs(ttl))?;
            println!("{token}");
        }
        Command::Health {
            component,
            addr,
            service,
            timeout,
            tls_ca,
            tls_domain,
        } => {
            let addr = match addr {
                Some(addr) => addr,
                None if component == "gateway" => settings.serve.gateway_addr.clone(),
                None => settings
                    .serve
                    .of(&component)
                    .ok_or_else(|| format!("health: no serve.{component}_addr"))?
                    .to_owned(),
            };
            let addr = loopback_if_unspecified(&addr);
            let tls = (tls_ca.is_some() || settings.server.tls.enabled())
                .then(|| {
                    let mut client = settings.client.tls.clone();
                    client.ca_file = tls_ca.or(client.ca_file);
                    let config = client.load()?;
                    Ok::<_, crm_server::TlsError>(match tls_domain {
                        Some(name) => config.domain_name(name),
                        None => config,
                    })
                })
                .transpose()?;
            health(&addr, service, tls, Duration::from_secs(timeout.max(1))).await?;
            println!("{addr}: SERVING");
        }
    }
    Ok(())
}

/// A listen address on every interface (`0.0.0.0`, `[::]`) is asked on
/// loopback.
fn loopback_if_unspecified(addr: &str) -> String {
    match addr.parse::<std::net::SocketAddr>() {
        Ok(a) if a.ip().is_unspecified() => {
            let ip: std::net::IpAddr = if a.is_ipv4() {
                std::net::Ipv4Addr::LOCALHOST.into()
            } else {
                std::net::Ipv6Addr::LOCALHOST.into()
            };
            std::net::SocketAddr::new(ip, a.port()).to_string()
        }
        _ => addr.to_owned(),
    }
}

/// grpc.health.v1 Check of `service` at `addr` within `timeout`: Ok when
/// SERVING, else what was answered (or why nothing was).
/// Over TLS when `tls` is given.
async fn health(
    addr: &str,
    service: String,
    tls: Option<tonic::transport::ClientTlsConfig>,
    timeout: Duration,
) -> Result<(), String> {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let mut endpoint = tonic::transport::Endpoint::from_shared(format!("{scheme}://{addr}"))
        .map_err(|e| format!("health: {addr}: {e}"))?
        .connect_timeout(timeout);
    if let Some(tls) = tls {
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| format!("health: {addr}: TLS: {e}"))?;
    }
    let check = async {
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| format!("health: {addr}: cannot connect: {e}"))?;
        let reply = HealthClient::new(channel)
            .check(HealthCheckRequest {
                service: service.clone(),
            })
            .await
            .map_err(|s| format!("health: {addr}: {:?}: {}", s.code(), s.message()))?;
        Ok::<_, String>(reply.into_inner().status())
    };
    let status = tokio::time::timeout(timeout, check)
        .await
        .map_err(|_| format!("health: {addr}: no answer within {timeout:?}"))??;
    if status == ServingStatus::Serving {
        Ok(())
    } else {
        Err(format!(
            "health: {addr}: {service:?} is {}",
            status.as_str_name()
        ))
    }
}
