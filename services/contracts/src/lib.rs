//! The contracts service (DOMAIN.md §3): contracts made from won
//! opportunities (checked with the opportunities service as the caller),
//! lines and totals in integer money, payment milestones that add up, the
//! approval chain on the shared engine (with scope control's delivery
//! review), e-signature and the handover to delivery, amendments as new
//! versions, lifecycle timers, and the receivables ERP works from.
//!
//! A request flows one way: `api` decodes it and names the caller, `wire`
//! maps it into the domain's values, `app` runs the use case (loads
//! through `store`, lets `domain` decide, commits the change with its
//! audit entries and events in one unit of work), and `wire` maps the
//! answer back. Imports follow the same direction.

pub mod api;
pub mod app;
pub mod domain;
pub mod store;
pub mod wire;
pub mod workers;

use std::time::Duration;

use crm_proto::crm::contracts::v1::contract_service_server::ContractServiceServer;
use crm_rpc::paging::PageLimits;
use sea_orm::DbErr;
use serde::{Deserialize, Serialize};

pub use api::ContractsApi;
pub use app::UseCases;

/// The gRPC service name, as health checks know it.
pub const SERVICE_NAME: &str = "crm.contracts.v1.ContractService";

/// The operator's settings for the contracts service (`[contracts]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ContractsSettings {
    /// The configuration of tenants that have not set their own: the
    /// approval chain and its rules, step durations, the renewal notice.
    pub defaults: domain::ContractsConfig,
    pub pages: PageLimits,
    /// The event stream: retention, heartbeats, sequencer tick.
    pub events: crm_events::EventsConfig,
    /// How often the sweeper runs the lifecycle timers.
    #[serde(with = "crm_config::duration")]
    pub sweep_interval: Duration,
    /// Contracts the sweeper reads per query; each is changed in its own
    /// transaction.
    pub sweep_batch: u64,
    /// Where CreateContract reaches the opportunities service; unset, the
    /// suite's address of it (`peers.opportunities`).
    pub opportunities_url: Option<String>,
    /// The longest CreateContract waits for the opportunities service; the
    /// caller's earlier deadline cuts it shorter.
    #[serde(with = "crm_config::duration")]
    pub opportunities_timeout: Duration,
}

impl Default for ContractsSettings {
    fn default() -> Self {
        ContractsSettings {
            defaults: domain::ContractsConfig::default(),
            pages: PageLimits::default(),
            events: crm_events::EventsConfig::default(),
            sweep_interval: Duration::from_secs(60),
            sweep_batch: 500,
            opportunities_url: None,
            opportunities_timeout: app::DEFAULT_REMOTE_TIMEOUT,
        }
    }
}

/// The contracts service over one database: its gRPC service and its
/// sweeper.
#[derive(Clone)]
pub struct Contracts {
    app: UseCases,
    settings: ContractsSettings,
    events: crm_events::Events,
    db: sea_orm::DatabaseConnection,
}

impl Contracts {
    /// The tonic service, refusing messages over `max_message_bytes`.
    fn grpc(&self, max_message_bytes: usize) -> ContractServiceServer<ContractsApi> {
        ContractServiceServer::new(ContractsApi::new(self.app.clone(), self.settings.pages))
            .max_decoding_message_size(max_message_bytes)
    }

    /// The use cases, for tests and tools.
    pub fn app(&self) -> &UseCases {
        &self.app
    }
}

impl crm_service::Service for Contracts {
    type Settings = ContractsSettings;

    const NAME: &'static str = "contracts";
    const PACKAGE: &'static str = "crm.contracts.v1";
    const GRPC_SERVICE: &'static str = SERVICE_NAME;

    /// Opens the service on its database, applying its migrations;
    /// CreateContract reaches opportunities at `opportunities_url` if set,
    /// else where the suite says it is (connected on first use).
    async fn open(
        context: crm_service::Context,
        settings: ContractsSettings,
    ) -> Result<Self, DbErr> {
        settings
            .defaults
            .check()
            .map_err(|bad| DbErr::Custom(format!("contracts.defaults: {bad:?}")))?;
        let db = context.db;
        crm_store::migrate::<store::Migrator>(&db).await?;
        let events = crm_events::Events::open(db.clone(), settings.events.clone())
            .await
            .map_err(|e| DbErr::Custom(format!("contracts.events: {e}")))?;
        let url = settings
            .opportunities_url
            .clone()
            .or_else(|| context.peers.url("opportunities").map(str::to_owned));
        let opportunities = url
            .map(|url| context.peers.channel_to("opportunities", &url))
            .transpose()
            .map_err(|e| DbErr::Custom(format!("contracts.opportunities_url: {e}")))?
            .map(|c| {
                app::OpportunitiesClient::new(crm_service::traced("contracts", "opportunities", c))
            });
        let app = UseCases::new(
            db.clone(),
            settings.defaults.clone(),
            events.outbox(),
            opportunities,
            settings.opportunities_timeout,
        );
        Ok(Contracts {
            app,
            settings,
            events,
            db,
        })
    }

    fn routes(&self, max_request_bytes: usize) -> tonic::service::Routes {
        tonic::service::Routes::new(self.grpc(max_request_bytes))
    }

    fn events(&self) -> &crm_events::Events {
        &self.events
    }

    fn db(&self) -> &sea_orm::DatabaseConnection {
        &self.db
    }

    fn workers(&self, shutdown: &crm_server::Shutdown) -> Vec<crm_service::Worker> {
        let stop = shutdown.clone();
        vec![crm_service::Worker::new(
            "contract sweeper",
            workers::spawn_sweeper(
                self.app.clone(),
                self.settings.sweep_interval,
                self.settings.sweep_batch.max(1),
                async move { stop.triggered().await },
            ),
        )]
    }
}
