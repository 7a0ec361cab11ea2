//! The noisy neighbour: a quiet tenant's GetLead latency alone, then
//! beside a noisy tenant that floods streams, reads its events slowly,
//! imports big batches, sends request bodies that never end and hammers
//! the rate limit, all through the same gateway. Reports both p99s and
//! their ratio (the goal: at most 2x).

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use crm_auth::{DevKeys, Role, TokenMinter};
use crm_proto::crm::{
    events::v1::{SubscribeRequest, event_service_client::EventServiceClient},
    leads::v1::{self as pb, lead_service_client::LeadServiceClient},
};
use serde::Serialize;
use tokio::{runtime::Handle, task::JoinSet};
use tonic::{
    Request, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    transport::Endpoint,
};

use crate::{Args, BoxError, Tally};

/// What the noisy tenant runs at once.
const STREAMS: usize = 300;
const SLOW_CONSUMERS: usize = 8;
const IMPORTERS: usize = 2;
const IMPORT_ROWS: u64 = 1_000;
const ENDLESS_BODIES: usize = 32;
const HAMMERS: usize = 8;

#[derive(Debug, Serialize)]
pub struct NoisyReport {
    quiet_alone: Phase,
    quiet_beside_noisy: Phase,
    /// p99 beside the noisy tenant over p99 alone.
    p99_ratio: f64,
    noisy: Noise,
}

#[derive(Debug, Serialize)]
struct Phase {
    requests: u64,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
    errors: std::collections::BTreeMap<String, u64>,
}

/// What the noisy tenant got done (and was refused).
#[derive(Debug, Default, Serialize)]
struct Noise {
    streams_opened: u64,
    streams_refused: u64,
    /// Messages the flood of streams received (events and heartbeats).
    stream_messages: u64,
    imported_rows: u64,
    imports_refused: u64,
    endless_bodies_ended: u64,
    hammer_calls: u64,
    hammer_refused: u64,
}

#[derive(Default)]
struct Counters {
    streams_opened: AtomicU64,
    streams_refused: AtomicU64,
    stream_messages: AtomicU64,
    imported_rows: AtomicU64,
    imports_refused: AtomicU64,
    endless_bodies_ended: AtomicU64,
    hammer_calls: AtomicU64,
    hammer_refused: AtomicU64,
}

impl Counters {
    fn report(&self) -> Noise {
        let n = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Noise {
            streams_opened: n(&self.streams_opened),
            streams_refused: n(&self.streams_refused),
            stream_messages: n(&self.stream_messages),
            imported_rows: n(&self.imported_rows),
            imports_refused: n(&self.imports_refused),
            endless_bodies_ended: n(&self.endless_bodies_ended),
            hammer_calls: n(&self.hammer_calls),
            hammer_refused: n(&self.hammer_refused),
        }
    }
}

fn authorized<T>(token: &str, message: T) -> Result<Request<T>, BoxError> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    Ok(request)
}

fn endpoint(args: &Args) -> Result<Endpoint, BoxError> {
    Ok(Endpoint::from_shared(args.target.clone())?.tcp_nodelay(true))
}

fn lead(tag: &str, n: u64, notes: usize) -> pb::Lead {
    pb::Lead {
        company: format!("{tag} {n}"),
        contact_name: "Noisy Neighbour".into(),
        phone: format!("+9{:013}", n),
        source_channel: "referral".into(),
        notes: "n".repeat(notes),
        ..Default::default()
    }
}

pub async fn run(args: &Args) -> Result<NoisyReport, BoxError> {
    let keys = DevKeys::load_or_create(&args.data_dir)?;
    let minter = keys.minter("crm", "crm")?;
    let mint = |tenant: &str, subject: &str, role: Role| {
        minter.mint(subject, tenant, &[role], Duration::from_secs(3600))
    };
    let run = u64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis(),
    )? % 1_000_000;
    let quiet = format!("quiet-{run}");
    let noisy = format!("noisy-{run}");
    let channel = endpoint(args)?.connect().await?;

    // The quiet tenant's lead, and the noisy tenant's backlog of big events
    // for its slow consumers.
    let quiet_tokens = (0..4)
        .map(|i| mint(&quiet, &format!("quinn-{i}"), Role::Manager))
        .collect::<Result<Vec<_>, _>>()?;
    let quiet_token = &quiet_tokens[0];
    let quiet_id = LeadServiceClient::new(channel.clone())
        .create_lead(authorized(
            quiet_token,
            pb::CreateLeadRequest {
                lead: Some(lead("Quiet", run, 0)),
                ..Default::default()
            },
        )?)
        .await?
        .into_inner()
        .lead
        .ok_or("no lead")?
        .id;
    let boss = mint(&noisy, "boss", Role::Manager)?;
    let backlog = (0..300).map(|i| lead("Backlog", run * 10_000 + i, 9_000));
    LeadServiceClient::new(channel.clone())
        .batch_create_leads(authorized(
            &boss,
            pb::BatchCreateLeadsRequest {
                leads: backlog.collect(),
                ..Default::default()
            },
        )?)
        .await?;

    let quiet_load = || quiet_phase(args, &quiet_tokens, &quiet_id);
    let alone = quiet_load().await?;

    let stop = Arc::new(AtomicBool::new(false));
    let counters = Arc::new(Counters::default());
    let mut noise = JoinSet::new();
    let noise_env = Noisy {
        endpoint: endpoint(args)?,
        minter: Arc::new(minter),
        tenant: noisy.clone(),
        stop: Arc::clone(&stop),
        counters: Arc::clone(&counters),
        run,
    };
    // The noisy tenant runs on a runtime of its own, as it would on a
    // machine of its own: its client-side work (decoding floods of events,
    // re-sending refused calls) must not queue the quiet callers' tasks in
    // this process, or the report would measure the load generator rather
    // than the suite.
    let noise_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("noisy-tenant")
        .enable_all()
        .build()?;
    {
        let _on_noise_runtime = noise_runtime.enter();
        noise_env.spawn_all(&mut noise, noise_runtime.handle())?;
    }
    let beside = quiet_load().await?;
    stop.store(true, Ordering::Relaxed);
    noise.abort_all();
    while noise.join_next().await.is_some() {}
    noise_runtime.shutdown_background();

    Ok(NoisyReport {
        p99_ratio: beside.p99_ms / alone.p99_ms.max(1e-6),
        quiet_alone: alone,
        quiet_beside_noisy: beside,
        noisy: counters.report(),
    })
}

/// Calls a second per quiet caller: the quiet tenant stays well inside its
/// fair share (four users, each under the per-subject rate).
const QUIET_RATE: u64 = 10;

/// The quiet tenant's GetLeads: `concurrency` callers, each paced at
/// [`QUIET_RATE`], over `connections` connections for the warm-up and then
/// `duration`.
async fn quiet_phase(args: &Args, tokens: &[String], id: &str) -> Result<Phase, BoxError> {
    let mut channels = Vec::new();
    for _ in 0..args.connections.max(1) {
        channels.push(endpoint(args)?.connect().await?);
    }
    let measure_from = Instant::now() + args.warmup;
    let stop_at = measure_from + args.duration;
    let mut callers = JoinSet::new();
    for i in 0..args.concurrency.max(1) {
        let mut client = LeadServiceClient::new(channels[i % channels.len()].clone());
        let (token, id) = (tokens[i % tokens.len()].clone(), id.to_owned());
        callers.spawn(async move {
            let mut tally = Tally::new()?;
            let mut pace = tokio::time::interval(Duration::from_millis(1000 / QUIET_RATE));
            while Instant::now() < stop_at {
                pace.tick().await;
                let begin = Instant::now();
                let mut request = authorized(&token, pb::GetLeadRequest { id: id.clone() })?;
                request.set_timeout(Duration::from_secs(10));
                let outcome = client.get_lead(request).await;
                if begin < measure_from {
                    continue;
                }
                tally.requests += 1;
                let micros = u64::try_from(begin.elapsed().as_micros()).unwrap_or(u64::MAX);
                tally.latency.saturating_record(micros.max(1));
                if let Err(status) = outcome {
                    *tally
                        .errors
                        .entry(format!("{:?}", status.code()))
                        .or_default() += 1;
                }
            }
            Ok::<Tally, BoxError>(tally)
        });
    }
    let mut total = Tally::new()?;
    while let Some(tally) = callers.join_next().await {
        total.merge(&tally??)?;
    }
    let ms = |q: f64| total.latency.value_at_quantile(q) as f64 / 1000.0;
    Ok(Phase {
        requests: total.requests,
        p50_ms: ms(0.5),
        p99_ms: ms(0.99),
        max_ms: total.latency.max() as f64 / 1000.0,
        errors: total.errors,
    })
}

/// The noisy tenant's load, until `stop`.
struct Noisy {
    endpoint: Endpoint,
    minter: Arc<TokenMinter>,
    tenant: String,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    run: u64,
}

type Tasks = JoinSet<Result<(), BoxError>>;

impl Noisy {
    fn token(&self, subject: &str, role: Role) -> Result<String, BoxError> {
        Ok(self
            .minter
            .mint(subject, &self.tenant, &[role], Duration::from_secs(3600))?)
    }

    /// Spawns each kind of noise named in `NOISE` (comma separated:
    /// streams, slow, imports, endless, hammer; all when unset).
    fn spawn_all(&self, noise: &mut Tasks, runtime: &Handle) -> Result<(), BoxError> {
        let kinds = std::env::var("NOISE").unwrap_or_default();
        let on = |kind: &str| kinds.is_empty() || kinds.split(',').any(|k| k == kind);
        let shared = self.endpoint.connect_lazy();
        // A flood of streams, read as they come, from a few accounts.
        for i in (0..STREAMS).filter(|_| on("streams")) {
            let token = self.token(&format!("erp-{}", i % 4), Role::Integration)?;
            let counters = Arc::clone(&self.counters);
            let mut client = EventServiceClient::new(shared.clone());
            noise.spawn_on(
                async move {
                    let request = authorized(&token, subscribe())?;
                    match client.subscribe(request).await {
                        Ok(stream) => {
                            counters.streams_opened.fetch_add(1, Ordering::Relaxed);
                            let mut stream = stream.into_inner();
                            while let Ok(Some(_)) = stream.message().await {
                                counters.stream_messages.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(_) => {
                            counters.streams_refused.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Ok(())
                },
                runtime,
            );
        }
        // Slow consumers: one event a second, each on a connection of its
        // own with the smallest windows, over the backlog of big events.
        for _ in (0..SLOW_CONSUMERS).filter(|_| on("slow")) {
            let token = self.token("warehouse", Role::Integration)?;
            let channel = self
                .endpoint
                .clone()
                .initial_stream_window_size(65_535)
                .initial_connection_window_size(65_535)
                .connect_lazy();
            noise.spawn_on(
                async move {
                    let mut client = EventServiceClient::new(channel);
                    let mut stream = client
                        .subscribe(authorized(&token, subscribe())?)
                        .await?
                        .into_inner();
                    let mut tick = tokio::time::interval(Duration::from_secs(1));
                    while let Ok(Some(_)) = stream.message().await {
                        tick.tick().await;
                    }
                    Ok(())
                },
                runtime,
            );
        }
        // Big imports, back to back.
        for importer in (0..IMPORTERS).filter(|_| on("imports")) {
            let token = self.token("importer", Role::Manager)?;
            let (stop, counters) = (Arc::clone(&self.stop), Arc::clone(&self.counters));
            let mut client = LeadServiceClient::new(shared.clone());
            // Unique valid phones: run, importer, batch and row.
            let base = (self.run % 1_000) * 1_000_000_000 + importer as u64 * 100_000_000;
            noise.spawn_on(
                async move {
                    let mut batch = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let rows = (0..IMPORT_ROWS)
                            .map(|i| lead("Import", base + batch * IMPORT_ROWS + i, 200))
                            .collect();
                        batch += 1;
                        let request = authorized(
                            &token,
                            pb::BatchCreateLeadsRequest {
                                leads: rows,
                                ..Default::default()
                            },
                        )?;
                        match client.batch_create_leads(request).await {
                            Ok(reply) => {
                                let accepted = u64::try_from(reply.into_inner().accepted_count)?;
                                counters
                                    .imported_rows
                                    .fetch_add(accepted, Ordering::Relaxed);
                            }
                            Err(status) => {
                                if counters.imports_refused.fetch_add(1, Ordering::Relaxed) == 0 {
                                    eprintln!(
                                        "an import refused: {:?} {}",
                                        status.code(),
                                        status.message()
                                    );
                                }
                                tokio::time::sleep(Duration::from_millis(100)).await;
                            }
                        }
                    }
                    Ok(())
                },
                runtime,
            );
        }
        // Request bodies that never end, opened again as soon as they fail.
        for _ in (0..ENDLESS_BODIES).filter(|_| on("endless")) {
            let token = self.token("spammer", Role::Sales)?;
            let (stop, counters) = (Arc::clone(&self.stop), Arc::clone(&self.counters));
            let channel = shared.clone();
            noise.spawn_on(
                async move {
                    while !stop.load(Ordering::Relaxed) {
                        let mut grpc = tonic::client::Grpc::new(channel.clone());
                        grpc.ready().await?;
                        let body = tonic::codegen::tokio_stream::pending::<Vec<u8>>();
                        let path = "/crm.leads.v1.LeadService/CreateLead".parse()?;
                        let _ = grpc
                            .client_streaming(authorized(&token, body)?, path, Raw)
                            .await;
                        counters
                            .endless_bodies_ended
                            .fetch_add(1, Ordering::Relaxed);
                        // A refused call comes back at once: do not spin.
                        tokio::time::sleep(Duration::from_secs(2)).await;
                    }
                    Ok(())
                },
                runtime,
            );
        }
        // One user hammering a cheap call.
        for _ in (0..HAMMERS).filter(|_| on("hammer")) {
            let token = self.token("hammer", Role::Sales)?;
            let (stop, counters) = (Arc::clone(&self.stop), Arc::clone(&self.counters));
            let mut client = LeadServiceClient::new(shared.clone());
            noise.spawn_on(
                async move {
                    while !stop.load(Ordering::Relaxed) {
                        let request = authorized(&token, pb::GetLeadConfigRequest {})?;
                        counters.hammer_calls.fetch_add(1, Ordering::Relaxed);
                        if client.get_lead_config(request).await.is_err() {
                            counters.hammer_refused.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    Ok(())
                },
                runtime,
            );
        }
        Ok(())
    }
}

fn subscribe() -> SubscribeRequest {
    SubscribeRequest {
        source: "leads".into(),
        ..Default::default()
    }
}

/// Raw message bytes, for a request body the bench controls.
#[derive(Debug, Clone, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        use bytes::BufMut as _;
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        use bytes::Buf as _;
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}
