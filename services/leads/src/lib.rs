//! The leads service: intake and duplicates,
//! interactions and scoring, the public pool and follow-up discipline,
//! channel statistics, the audit trail.
//!
//! Data flows one way: `api` decodes and authorises a request, `wire` maps
//! it into `domain` values, `app` loads through `store`, lets `domain`
//! decide and commits the change with its audit entry and events in one
//! unit of work, and `wire` maps the answer back. `workers` runs the
//! sweeper and the automatic conversion.

pub mod api;
pub mod app;
pub mod domain;
pub mod store;
pub mod wire;
mod workers;

use std::{future::Future, sync::Arc, time::Duration};

use crm_proto::crm::leads::v1::lead_service_server::LeadServiceServer;
use crm_rpc::paging::PageLimits;
use sea_orm::{DatabaseConnection, DbErr};
use serde::{Deserialize, Serialize};

pub use api::LeadsApi;
pub use app::App;

/// The identity the sweeper acts under in the audit trail.
pub const SWEEPER: &str = "system:leads-sweeper";

/// The operator's settings for the leads service (`[leads]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LeadsSettings {
    /// The lead configuration of tenants that have not set their own.
    pub defaults: domain::LeadConfig,
    pub pages: PageLimits,
    /// Rows per BatchCreateLeads.
    pub max_import_rows: usize,
    /// Rows a tenant may import per second, over all its imports; one
    /// import of `max_import_rows` always fits a full budget. 0: no budget.
    /// Imports are the heaviest calls there are: without a budget one
    /// tenant's back-to-back imports take the machine from the others.
    pub import_rows_per_second: u32,
    /// Threads the imports run on, apart from the workers that serve every
    /// other call: an import's stretches of CPU (checking, planning and
    /// writing thousands of rows) never hold a small call up.
    pub import_threads: usize,
    /// How often the sweeper looks for leads to return to the pool.
    #[serde(with = "crm_config::duration")]
    pub sweep_interval: Duration,
    /// Leads the sweeper returns per transaction.
    pub sweep_batch: u64,
    /// Where ConvertLead reaches the opportunities service, e.g.
    /// `http://crm-opportunities:50062`; unset, the suite's address of the
    /// opportunities service.
    pub opportunities_url: Option<String>,
    /// The event stream: retention, heartbeats, sequencer tick.
    pub events: crm_events::EventsConfig,
    /// Convert leads that reach the qualify threshold into opportunities.
    pub auto_convert: bool,
    /// Longest wait between attempts while the opportunities service is down.
    #[serde(with = "crm_config::duration")]
    pub conversion_retry_max: Duration,
    /// The longest ConvertLead waits for the opportunities service; a
    /// caller's earlier deadline cuts it shorter.
    #[serde(with = "crm_config::duration")]
    pub convert_timeout: Duration,
}

impl Default for LeadsSettings {
    fn default() -> Self {
        LeadsSettings {
            defaults: domain::LeadConfig::default(),
            pages: PageLimits::default(),
            max_import_rows: 10_000,
            import_rows_per_second: 2_000,
            import_threads: 1,
            sweep_interval: Duration::from_secs(60),
            sweep_batch: 500,
            opportunities_url: None,
            events: crm_events::EventsConfig::default(),
            auto_convert: true,
            conversion_retry_max: Duration::from_secs(30),
            convert_timeout: app::DEFAULT_CONVERT_TIMEOUT,
        }
    }
}

/// The leads service over one database: its gRPC service and its sweeper.
#[derive(Clone)]
pub struct Leads {
    app: App,
    config: LeadsSettings,
    /// Whether ConvertLead can reach the opportunities service.
    converts: bool,
    events: crm_events::Events,
    db: DatabaseConnection,
    /// The service's own identity, for work it does by itself.
    identity: Option<std::sync::Arc<crm_auth::TokenMinter>>,
    /// Each tenant's rows to import, shared by every instance of the API.
    import_budget: Arc<Option<crm_server::TenantBudget>>,
    /// The threads imports run on.
    import_lane: crm_service::Lane,
}

impl Leads {
    /// Opens the service on `db`, applying its migrations; ConvertLead
    /// reaches the opportunities service on `opportunities` (connected on
    /// first use: it may start later).
    async fn open_on(
        db: DatabaseConnection,
        config: LeadsSettings,
        identity: Option<Arc<crm_auth::TokenMinter>>,
        opportunities: Option<tonic::transport::Channel>,
    ) -> Result<Self, DbErr> {
        crm_store::migrate::<store::Migrator>(&db).await?;
        let events = crm_events::Events::open(db.clone(), config.events.clone())
            .await
            .map_err(|e| DbErr::Custom(format!("leads.events: {e}")))?;
        let uow = crm_store::uow::UnitOfWork::new(db.clone(), events.outbox());
        let opportunities = opportunities.map(|c| {
            app::OpportunitiesClient::new(crm_service::traced("leads", "opportunities", c))
        });
        let import_lane = crm_service::Lane::new("leads-import", config.import_threads)
            .map_err(|e| DbErr::Custom(format!("leads.import_threads: {e}")))?;
        Ok(Leads {
            import_lane,
            import_budget: Arc::new(crm_server::TenantBudget::new(
                config.import_rows_per_second,
                config.max_import_rows,
            )),
            converts: opportunities.is_some(),
            app: App::new(uow, config.defaults.clone(), opportunities)
                .with_convert_timeout(config.convert_timeout)
                .with_identity(identity.clone()),
            config,
            events,
            db,
            identity,
        })
    }

    /// The tonic service, refusing messages over `max_message_bytes`.
    fn grpc(&self, max_message_bytes: usize) -> LeadServiceServer<LeadsApi> {
        let api = LeadsApi::new(
            self.app.clone(),
            self.config.pages,
            self.config.max_import_rows,
            Arc::clone(&self.import_budget),
            self.import_lane.clone(),
        );
        LeadServiceServer::new(api).max_decoding_message_size(max_message_bytes)
    }

    /// Returns overdue leads to the pool every `sweep_interval` until
    /// `shutdown` completes. Each lead returns in a transaction of its own,
    /// so stopping mid-sweep loses nothing and repeats nothing.
    fn spawn_sweeper(
        &self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> tokio::task::JoinHandle<()> {
        workers::spawn_sweeper(
            self.app.clone(),
            SWEEPER,
            self.config.sweep_interval,
            self.config.sweep_batch.max(1),
            shutdown,
        )
    }

    /// Converts qualified leads, driven by their `LeadQualified` events, when
    /// enabled and the service can reach opportunities as itself.
    fn spawn_converter(
        &self,
        shutdown: crm_server::Shutdown,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let (true, Some(_)) = (self.converts, &self.identity) else {
            if self.config.auto_convert {
                tracing::warn!(
                    "automatic conversion is off: no opportunities_url or no service identity key"
                );
            }
            return None;
        };
        if !self.config.auto_convert {
            return None;
        }
        let handler = workers::AutoConvert {
            app: self.app.clone(),
        };
        let backoff = crm_events::Backoff {
            initial: Duration::from_millis(100),
            max: self.config.conversion_retry_max,
        };
        let consumer = crm_events::LocalConsumer::new("leads.auto-convert")
            .with_types([<crm_proto::crm::leads::v1::LeadQualified as prost::Name>::full_name()])
            .with_backoff(backoff);
        Some(consumer.spawn(&self.events, handler, shutdown))
    }
}

impl crm_service::Service for Leads {
    type Settings = LeadsSettings;

    const NAME: &'static str = "leads";
    const PACKAGE: &'static str = "crm.leads.v1";
    const GRPC_SERVICE: &'static str = SERVICE_NAME;

    /// ConvertLead reaches opportunities at `opportunities_url` if set,
    /// else where the suite says the opportunities service is.
    async fn open(context: crm_service::Context, settings: LeadsSettings) -> Result<Self, DbErr> {
        let url = settings
            .opportunities_url
            .clone()
            .or_else(|| context.peers.url("opportunities").map(str::to_owned));
        let channel = url
            .map(|url| context.peers.channel_to("opportunities", &url))
            .transpose()
            .map_err(|e| DbErr::Custom(format!("leads.opportunities_url: {e}")))?;
        Self::open_on(context.db, settings, context.identity, channel).await
    }

    /// The automatic conversion calls opportunities as the service.
    fn needs_identity(settings: &LeadsSettings) -> Option<&'static str> {
        settings.auto_convert.then_some(
            "leads.auto_convert (qualified leads are converted into opportunities as the service)",
        )
    }

    fn routes(&self, max_request_bytes: usize) -> tonic::service::Routes {
        tonic::service::Routes::new(self.grpc(max_request_bytes))
    }

    fn events(&self) -> &crm_events::Events {
        &self.events
    }

    fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    fn workers(&self, shutdown: &crm_server::Shutdown) -> Vec<crm_service::Worker> {
        let sweeper = self.spawn_sweeper({
            let shutdown = shutdown.clone();
            async move { shutdown.triggered().await }
        });
        let mut workers = vec![crm_service::Worker::new("lead sweeper", sweeper)];
        if let Some(converter) = self.spawn_converter(shutdown.clone()) {
            workers.push(crm_service::Worker::new("lead converter", converter));
        }
        workers
    }
}

/// The gRPC service name, as health checks know it.
pub const SERVICE_NAME: &str = "crm.leads.v1.LeadService";
