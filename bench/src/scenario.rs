//! What each caller sends, and the setup a scenario needs first.

use std::{
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use crm_auth::{DevKeys, Role};
use crm_proto::crm::leads::v1::{self as pb, lead_service_client::LeadServiceClient};
use crm_proto::crm::tickets::v1::{self as tickets_pb, ticket_service_client::TicketServiceClient};
use tonic::{
    Request,
    metadata::{Ascii, MetadataValue},
    transport::Channel,
};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

use crate::{Args, BoxError, Outcome, Scenario};

/// Rows per BatchCreateLeads while seeding.
const SEED_BATCH: u64 = 5_000;

/// Shared by every caller of a run.
pub struct Setup {
    auth: MetadataValue<Ascii>,
    /// Leads to read or to log interactions on.
    lead_ids: Vec<String>,
    /// Makes created leads unique across runs (phones, companies).
    run: u64,
    created: AtomicU64,
}

fn with_auth<T>(auth: &MetadataValue<Ascii>, message: T) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert("authorization", auth.clone());
    request
}

fn lead(run: u64, n: u64) -> pb::Lead {
    pb::Lead {
        company: format!("Bench {run}-{n}"),
        contact_name: "Load Tester".into(),
        phone: format!("+9{:06}{:07}", run % 1_000_000, n % 10_000_000),
        source_channel: "referral".into(),
        ..Default::default()
    }
}

impl Setup {
    pub async fn prepare(args: &Args, channel: &Channel) -> Result<Setup, BoxError> {
        let keys = DevKeys::load_or_create(&args.data_dir)?;
        let token = keys.minter("crm", "crm")?.mint(
            "bench",
            &args.tenant,
            &[Role::Sales, Role::Manager, Role::Admin, Role::Integration],
            Duration::from_secs(3600),
        )?;
        let auth: MetadataValue<Ascii> = format!("Bearer {token}").parse()?;
        let run = u64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)?
                .as_millis(),
        )? % 1_000_000;
        let mut setup = Setup {
            auth,
            lead_ids: Vec::new(),
            run,
            created: AtomicU64::new(0),
        };
        if args.scenario == Scenario::Health {
            return Ok(setup);
        }
        if args.scenario == Scenario::SimilarSolutions {
            crate::similar::seed(args, args.seed_tickets).await?;
            return Ok(setup);
        }
        let mut leads = LeadServiceClient::new(channel.clone());
        // Interactions must not qualify leads mid-run: a conversion would
        // add another service's work to the figure.
        let mut config = leads
            .get_lead_config(with_auth(&setup.auth, pb::GetLeadConfigRequest {}))
            .await?
            .into_inner()
            .config
            .ok_or("no lead config")?;
        if config.qualify_threshold != 100 {
            config.qualify_threshold = 100;
            config.hot_threshold = 100;
            config.etag.clear();
            leads
                .update_lead_config(with_auth(
                    &setup.auth,
                    pb::UpdateLeadConfigRequest {
                        config: Some(config),
                    },
                ))
                .await?;
        }
        setup.seed(&mut leads, args.seed_leads.max(1_000)).await?;
        let page = leads
            .list_leads(with_auth(
                &setup.auth,
                pb::ListLeadsRequest {
                    page_size: 500,
                    ..Default::default()
                },
            ))
            .await?
            .into_inner();
        setup.lead_ids = page.leads.into_iter().map(|l| l.id).collect();
        Ok(setup)
    }

    /// Imports leads until the tenant has `want`.
    async fn seed(
        &self,
        leads: &mut LeadServiceClient<Channel>,
        want: u64,
    ) -> Result<(), BoxError> {
        let stats = leads
            .get_channel_stats(with_auth(&self.auth, pb::GetChannelStatsRequest {}))
            .await?
            .into_inner();
        let have: i64 = stats.channels.iter().map(|c| c.leads).sum();
        let mut missing = want.saturating_sub(u64::try_from(have).unwrap_or(0));
        let mut n = 0;
        while missing > 0 {
            let rows = missing.min(SEED_BATCH);
            let batch = (0..rows).map(|i| lead(self.run, n + i)).collect();
            let mut request = with_auth(
                &self.auth,
                pb::BatchCreateLeadsRequest {
                    leads: batch,
                    ..Default::default()
                },
            );
            request.set_timeout(Duration::from_secs(120));
            leads.batch_create_leads(request).await?;
            n += rows;
            missing -= rows;
        }
        Ok(())
    }
}

/// One concurrent caller.
pub struct Caller {
    leads: LeadServiceClient<Channel>,
    tickets: TicketServiceClient<Channel>,
    health: HealthClient<Channel>,
    setup: Arc<Setup>,
    rng: u64,
}

impl Caller {
    pub fn new(channel: Channel, setup: Arc<Setup>, index: usize) -> Self {
        Caller {
            leads: LeadServiceClient::new(channel.clone()),
            tickets: TicketServiceClient::new(channel.clone()),
            health: HealthClient::new(channel),
            setup,
            rng: 0x9E37_79B9_7F4A_7C15 ^ (index as u64 + 1),
        }
    }

    fn next_lead(&mut self) -> String {
        // xorshift: cheap, and good enough to spread reads over the leads.
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let ids = &self.setup.lead_ids;
        ids.get((self.rng % ids.len().max(1) as u64) as usize)
            .cloned()
            .unwrap_or_default()
    }

    pub async fn call(&mut self, scenario: Scenario) -> Outcome {
        let setup = self.setup.clone();
        let auth = &setup.auth;
        let result = match scenario {
            Scenario::Health => self
                .health
                .check(HealthCheckRequest {
                    service: String::new(),
                })
                .await
                .map(|_| ()),
            Scenario::GetLead => {
                let id = self.next_lead();
                self.leads
                    .get_lead(with_auth(auth, pb::GetLeadRequest { id }))
                    .await
                    .map(|_| ())
            }
            Scenario::CreateLead => {
                let n = 10_000_000 + setup.created.fetch_add(1, Ordering::Relaxed);
                let request = pb::CreateLeadRequest {
                    lead: Some(lead(setup.run, n)),
                    ..Default::default()
                };
                self.leads
                    .create_lead(with_auth(auth, request))
                    .await
                    .map(|_| ())
            }
            Scenario::ListLeads => {
                let request = pb::ListLeadsRequest {
                    page_size: 50,
                    status: pb::LeadStatus::New as i32,
                    ..Default::default()
                };
                self.leads
                    .list_leads(with_auth(auth, request))
                    .await
                    .map(|_| ())
            }
            Scenario::LogInteraction => {
                let request = pb::LogInteractionRequest {
                    lead_id: self.next_lead(),
                    interaction: Some(pb::Interaction {
                        kind: pb::InteractionKind::CallNotConnected as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                };
                self.leads
                    .log_interaction(with_auth(auth, request))
                    .await
                    .map(|_| ())
            }
            Scenario::SimilarSolutions => {
                let words = 3 + (self.rng % 4) as usize;
                let text = crate::similar::text(&mut self.rng, words);
                let request = tickets_pb::FindSimilarSolutionsRequest {
                    text,
                    limit: 5,
                    ..Default::default()
                };
                self.tickets
                    .find_similar_solutions(with_auth(auth, request))
                    .await
                    .map(|_| ())
            }
            // Run apart (ceiling.rs, noisy.rs), never by a caller.
            Scenario::SqliteCeiling | Scenario::NoisyNeighbour => Ok(()),
        };
        match result {
            Ok(()) => Outcome::Ok,
            Err(status) => Outcome::Err(status.code()),
        }
    }
}
