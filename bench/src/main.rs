//! `crm-bench`: a load generator for the suite. N concurrent callers share
//! a number of HTTP/2 connections, run one scenario for a fixed time (or
//! request count) after a warm-up that is not measured, and report
//! throughput, latency percentiles (HDR histogram) and errors by code, as
//! text and as JSON. It mints its own token with the development key of the
//! data directory the suite runs on, and stops by itself.
//!
//! ```sh
//! crm-bench --target http://127.0.0.1:50051 --scenario get-lead --concurrency 32 --duration 10s
//! ```

mod ceiling;
mod noisy;
mod scenario;
mod similar;

use std::{
    collections::BTreeMap,
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};

use clap::{Parser, ValueEnum};
use hdrhistogram::Histogram;
use serde::Serialize;
use tonic::transport::{Channel, Endpoint};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Scenario {
    /// grpc.health.v1.Health/Check: the gRPC ceiling of the machine.
    Health,
    GetLead,
    CreateLead,
    /// One page of 50 leads with a status filter.
    ListLeads,
    /// LogInteraction, which rescores the lead.
    LogInteraction,
    /// The inserts of a CreateLead straight into SQLite, same durability: the storage ceiling.
    SqliteCeiling,
    /// A quiet tenant's GetLead p99 alone and beside a noisy tenant
    /// (floods of streams, slow consumers, big imports, endless request
    /// bodies, one user hammering): through the gateway.
    NoisyNeighbour,
    /// FindSimilarSolutions with a 3-6 word text over the tenant's
    /// resolved tickets (`--seed-tickets`), through the tickets service.
    SimilarSolutions,
}

#[derive(Debug, Parser)]
#[command(name = "crm-bench", about = "Load generator for the CRM suite")]
pub struct Args {
    /// The gateway or a service, e.g. http://127.0.0.1:50051.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    target: String,
    #[arg(long, value_enum)]
    scenario: Scenario,
    /// Concurrent callers.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// HTTP/2 connections the callers share.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Measured time, e.g. "10s".
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Unmeasured time before it.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    warmup: Duration,
    /// Stop after this many measured requests instead (with --duration as a bound).
    #[arg(long)]
    requests: Option<u64>,
    /// The data directory of the suite: its development key signs the token.
    #[arg(long, default_value = "./data")]
    data_dir: PathBuf,
    #[arg(long, default_value = "bench")]
    tenant: String,
    /// Make sure the tenant has at least this many leads first (ListLeads).
    #[arg(long, default_value_t = 0)]
    seed_leads: u64,
    /// Write the report as JSON here too.
    #[arg(long)]
    json: Option<PathBuf>,
    /// A label for the report (e.g. "gateway", "direct").
    #[arg(long, default_value = "")]
    label: String,
    /// Make sure the tenant has at least this many resolved tickets first
    /// (similar-solutions), written straight into the tickets database.
    #[arg(long, default_value_t = 0)]
    seed_tickets: u64,
    /// The suite's PostgreSQL URL (`store.database_url`) for seeding
    /// tickets; unset, the SQLite file under `--data-dir`.
    #[arg(long)]
    database_url: Option<String>,
    /// SQLite file for the storage ceiling.
    #[arg(long, default_value = "./bench-ceiling.db")]
    sqlite_file: PathBuf,
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    let (number, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?}: expected e.g. 10s, 500ms, 2m"))?;
    match unit {
        "ms" => Ok(Duration::from_millis(n)),
        "s" | "" => Ok(Duration::from_secs(n)),
        "m" => Ok(Duration::from_secs(n * 60)),
        _ => Err(format!("{s:?}: unit ms, s or m")),
    }
}

/// What one call did.
pub enum Outcome {
    Ok,
    Err(tonic::Code),
}

/// The report of one run.
#[derive(Debug, Serialize)]
pub struct Report {
    pub scenario: Scenario,
    pub label: String,
    pub target: String,
    pub concurrency: usize,
    pub connections: usize,
    pub measured_seconds: f64,
    pub requests: u64,
    pub throughput_per_second: f64,
    pub latency_ms: BTreeMap<String, f64>,
    pub errors: BTreeMap<String, u64>,
}

impl Report {
    fn text(&self) -> String {
        let l = |k: &str| self.latency_ms.get(k).copied().unwrap_or_default();
        let errors = if self.errors.is_empty() {
            "none".to_owned()
        } else {
            self.errors
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        format!(
            "{:?} {} ({} callers, {} connections): {:.0} req/s over {:.1}s, {} requests; latency ms p50 {:.3} p90 {:.3} p99 {:.3} max {:.3}; errors {}",
            self.scenario,
            self.label,
            self.concurrency,
            self.connections,
            self.throughput_per_second,
            self.measured_seconds,
            self.requests,
            l("p50"),
            l("p90"),
            l("p99"),
            l("max"),
            errors
        )
    }
}

pub(crate) struct Tally {
    pub(crate) latency: Histogram<u64>,
    pub(crate) errors: BTreeMap<String, u64>,
    pub(crate) requests: u64,
}

impl Tally {
    pub(crate) fn new() -> Result<Self, BoxError> {
        // Microseconds, 1 µs .. 60 s, 3 significant digits.
        Ok(Tally {
            latency: Histogram::new_with_bounds(1, 60_000_000, 3)?,
            errors: BTreeMap::new(),
            requests: 0,
        })
    }

    pub(crate) fn merge(&mut self, other: &Tally) -> Result<(), BoxError> {
        self.latency.add(&other.latency)?;
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        self.requests += other.requests;
        Ok(())
    }
}

async fn channels(target: &str, n: usize) -> Result<Vec<Channel>, BoxError> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n.max(1) {
        // Each `connect` is its own HTTP/2 connection.
        out.push(
            Endpoint::from_shared(target.to_owned())?
                .tcp_nodelay(true)
                .connect()
                .await?,
        );
    }
    Ok(out)
}

async fn run(args: &Args) -> Result<Report, BoxError> {
    if args.scenario == Scenario::SqliteCeiling {
        return ceiling::sqlite(args).await;
    }
    let channels = channels(&args.target, args.connections).await?;
    let setup = Arc::new(scenario::Setup::prepare(args, &channels[0]).await?);
    let started = Instant::now();
    let measure_from = started + args.warmup;
    let stop_at = measure_from + args.duration;
    let budget = Arc::new(std::sync::atomic::AtomicU64::new(
        args.requests.unwrap_or(u64::MAX),
    ));
    let mut workers = Vec::with_capacity(args.concurrency);
    for i in 0..args.concurrency.max(1) {
        let (channel, setup, budget) = (
            channels[i % channels.len()].clone(),
            setup.clone(),
            budget.clone(),
        );
        let scenario = args.scenario;
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::new()?;
            let mut caller = scenario::Caller::new(channel, setup, i);
            loop {
                let begin = Instant::now();
                if begin >= stop_at {
                    break;
                }
                let outcome = caller.call(scenario).await;
                if begin < measure_from {
                    continue;
                }
                if budget.fetch_sub(1, std::sync::atomic::Ordering::Relaxed) == 0 {
                    break;
                }
                tally.requests += 1;
                let micros = u64::try_from(begin.elapsed().as_micros()).unwrap_or(u64::MAX);
                tally.latency.saturating_record(micros.max(1));
                if let Outcome::Err(code) = outcome {
                    *tally.errors.entry(format!("{code:?}")).or_default() += 1;
                }
            }
            Ok::<Tally, BoxError>(tally)
        }));
    }
    let mut total = Tally::new()?;
    for worker in workers {
        total.merge(&worker.await??)?;
    }
    let measured = (Instant::now().min(stop_at) - measure_from.min(Instant::now()))
        .as_secs_f64()
        .max(1e-9);
    Ok(report(args, total, measured))
}

pub(crate) fn report(args: &Args, total: Tally, measured: f64) -> Report {
    let ms = |q: f64| total.latency.value_at_quantile(q) as f64 / 1000.0;
    let latency_ms = [
        ("p50", ms(0.5)),
        ("p90", ms(0.9)),
        ("p99", ms(0.99)),
        ("max", total.latency.max() as f64 / 1000.0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    Report {
        scenario: args.scenario,
        label: args.label.clone(),
        target: args.target.clone(),
        concurrency: args.concurrency,
        connections: args.connections,
        measured_seconds: measured,
        requests: total.requests,
        throughput_per_second: total.requests as f64 / measured,
        latency_ms,
        errors: total.errors,
    }
}

#[tokio::main]
async fn main() -> Result<(), BoxError> {
    let args = Args::parse();
    if args.scenario == Scenario::NoisyNeighbour {
        let report = noisy::run(&args).await?;
        let json = serde_json::to_vec_pretty(&report)?;
        println!("{}", String::from_utf8_lossy(&json));
        if let Some(path) = &args.json {
            std::fs::write(path, json)?;
        }
        return Ok(());
    }
    let report = run(&args).await?;
    println!("{}", report.text());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)?;
    }
    Ok(())
}
