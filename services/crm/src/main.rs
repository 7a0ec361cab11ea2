//! `crm`: serve any service or all of them, migrate, mint development tokens.

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
    }
    Ok(())
}
