//! The delivery service (DOMAIN.md §4): one delivery project per signed
//! contract, made from the contracts service's `ContractSigned` events
//! (every tenant's, each exactly once, in its own tenant), milestones and
//! tasks with computed progress, the customer-facing progress line, work
//! hours, risk alerts raised on every change and by a sweeper, dated
//! commitments, capacity and resource shortage, profitability, acceptance
//! (with the payment milestone for ERP) and go-live into the service
//! stage.
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

use crm_proto::crm::delivery::v1::delivery_service_server::DeliveryServiceServer;
use crm_rpc::paging::PageLimits;
use sea_orm::DbErr;
use serde::{Deserialize, Serialize};

pub use api::DeliveryApi;
pub use app::UseCases;

/// The gRPC service name, as health checks know it.
pub const SERVICE_NAME: &str = "crm.delivery.v1.DeliveryService";

/// The subject of the service's own token when it reads other services'
/// streams.
pub const SERVICE_SUBJECT: &str = "system:delivery";

/// Every tenant's ContractSigned: the projects it hands over.
const HANDOVERS: crm_service::InternalConsumer<'static> = crm_service::InternalConsumer {
    name: workers::HANDOVER_CONSUMER,
    source: "contracts",
    types: &[app::CONTRACT_SIGNED],
    subject: SERVICE_SUBJECT,
};

/// The operator's settings for the delivery service (`[delivery]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliverySettings {
    /// The configuration of tenants that have not set their own: the
    /// risk thresholds and the capacity default.
    pub defaults: domain::DeliveryConfig,
    pub pages: PageLimits,
    /// The event stream: retention, heartbeats, sequencer tick.
    pub events: crm_events::EventsConfig,
    /// How often the sweeper runs the risk rules.
    #[serde(with = "crm_config::duration")]
    pub sweep_interval: Duration,
    /// Projects (and people) the sweeper reads per query; each is checked
    /// in its own transaction.
    pub sweep_batch: u64,
    /// Whether the service consumes the contracts service's ContractSigned
    /// events (the handover). It subscribes as the service identity, so a
    /// process running it outside development mode needs
    /// `auth.service_key_file`.
    pub consume_handovers: bool,
    /// Where the handover consumer reads the contracts service's events;
    /// unset, the suite's address of it (`peers.contracts`).
    pub contracts_url: Option<String>,
    /// The longest pause between reconnections to the contracts service.
    #[serde(with = "crm_config::duration")]
    pub consumer_backoff_max: Duration,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        DeliverySettings {
            defaults: domain::DeliveryConfig::default(),
            pages: PageLimits::default(),
            events: crm_events::EventsConfig::default(),
            sweep_interval: Duration::from_secs(300),
            sweep_batch: 500,
            consume_handovers: true,
            contracts_url: None,
            consumer_backoff_max: Duration::from_secs(30),
        }
    }
}

/// The delivery service over one database: its gRPC service, the handover
/// consumer and the risk sweeper.
#[derive(Clone)]
pub struct Delivery {
    app: UseCases,
    settings: DeliverySettings,
    events: crm_events::Events,
    db: sea_orm::DatabaseConnection,
    /// The handover consumer; `None` without an identity or an address of
    /// the contracts service.
    consumer: Option<crm_events::Consumer>,
}

impl Delivery {
    fn grpc(&self, max_message_bytes: usize) -> DeliveryServiceServer<DeliveryApi> {
        DeliveryServiceServer::new(DeliveryApi::new(self.app.clone(), self.settings.pages))
            .max_decoding_message_size(max_message_bytes)
    }

    /// The use cases, for tests and tools.
    pub fn app(&self) -> &UseCases {
        &self.app
    }

    /// Whether the handover consumer runs (it needs the service identity
    /// and the contracts service's address).
    pub fn consumes_handovers(&self) -> bool {
        self.consumer.is_some()
    }

    /// The handover consumer, for its cursor and metrics.
    pub fn consumer(&self) -> Option<&crm_events::Consumer> {
        self.consumer.as_ref()
    }
}

impl crm_service::Service for Delivery {
    type Settings = DeliverySettings;

    const NAME: &'static str = "delivery";
    const PACKAGE: &'static str = "crm.delivery.v1";
    const GRPC_SERVICE: &'static str = SERVICE_NAME;

    /// Opens the service on its database, applying its migrations. The
    /// handover consumer reads the contracts service at `contracts_url` if
    /// set, else where the suite says it is, with the service identity.
    async fn open(
        context: crm_service::Context,
        settings: DeliverySettings,
    ) -> Result<Self, DbErr> {
        settings
            .defaults
            .check()
            .map_err(|bad| DbErr::Custom(format!("delivery.defaults: {bad:?}")))?;
        let db = context.db;
        crm_store::migrate::<store::Migrator>(&db).await?;
        let events = crm_events::Events::open(db.clone(), settings.events.clone())
            .await
            .map_err(|e| DbErr::Custom(format!("delivery.events: {e}")))?;
        let app = UseCases::new(db.clone(), settings.defaults.clone(), events.outbox());
        let url = settings
            .contracts_url
            .clone()
            .or_else(|| context.peers.url("contracts").map(str::to_owned));
        let consumer = match (url, context.identity) {
            _ if !settings.consume_handovers => {
                tracing::warn!(
                    "delivery.consume_handovers is off: signed contracts are not handed over"
                );
                None
            }
            (Some(url), Some(identity)) => {
                let channel = context
                    .peers
                    .channel_to("contracts", &url)
                    .map_err(|e| DbErr::Custom(format!("delivery.contracts_url: {e}")))?;
                Some(HANDOVERS.build(channel, identity, settings.consumer_backoff_max))
            }
            (None, _) => {
                tracing::error!(
                    "delivery: no address of the contracts service (delivery.contracts_url or \
                     peers.contracts): signed contracts are not handed over"
                );
                None
            }
            (Some(_), None) => {
                tracing::error!(
                    "delivery: no service identity (auth.service_key_file): the handover \
                     consumer cannot subscribe to the contracts service and is not running"
                );
                None
            }
        };
        Ok(Delivery {
            app,
            settings,
            events,
            db,
            consumer,
        })
    }

    /// The handover consumer subscribes to every tenant's signed contracts
    /// as the service.
    fn needs_identity(settings: &DeliverySettings) -> Option<&'static str> {
        settings.consume_handovers.then_some(
            "delivery.consume_handovers (every tenant's signed contracts are read from the \
             contracts service as the service)",
        )
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
        let mut workers = vec![crm_service::Worker::new(
            "delivery risk sweeper",
            workers::spawn_sweeper(
                self.app.clone(),
                self.settings.sweep_interval,
                self.settings.sweep_batch.max(1),
                async move { stop.triggered().await },
            ),
        )];
        if let Some(consumer) = &self.consumer {
            let handler = workers::HandoverHandler {
                app: self.app.clone(),
            };
            let task = consumer
                .clone()
                .spawn(self.db.clone(), handler, shutdown.clone());
            workers.push(crm_service::Worker::new(
                "delivery handover consumer",
                tokio::spawn(async move {
                    match task.await {
                        Ok(Ok(())) => {}
                        Ok(Err(err)) => {
                            tracing::error!(error = %err, "the handover consumer stopped")
                        }
                        Err(err) => tracing::error!(error = %err, "the handover consumer failed"),
                    }
                }),
            ));
        }
        workers
    }
}
