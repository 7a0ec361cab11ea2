//! The tickets service (DOMAIN.md §5): entitlements made from the delivery
//! service's go-live events (every tenant's, each exactly once, in its own
//! tenant) or by an admin; tickets with first-response and resolution
//! clocks on the tenant's business calendar, paused while waiting on the
//! customer; warnings and breaches raised by a sweeper and escalated by the
//! tenant's rule; dispatch by skill, duty and open load; similar solutions
//! from the database's full-text index; CSAT, NPS, usage signals, the
//! account health report and churn risk with retention tasks; loyalty
//! tiers from the purchases an integration records.
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

use crm_proto::crm::tickets::v1::ticket_service_server::TicketServiceServer;
use crm_rpc::paging::PageLimits;
use sea_orm::DbErr;
use serde::{Deserialize, Serialize};

pub use api::TicketsApi;
pub use app::UseCases;

/// The gRPC service name, as health checks know it.
pub const SERVICE_NAME: &str = "crm.tickets.v1.TicketService";

/// The subject of the service's own token when it reads other services'
/// streams.
pub const SERVICE_SUBJECT: &str = "system:tickets";

/// Every tenant's DeliveryProjectCompleted: the entitlements it makes.
const GO_LIVES: crm_service::InternalConsumer<'static> = crm_service::InternalConsumer {
    name: workers::PROJECT_CONSUMER,
    source: "delivery",
    types: &[wire::PROJECT_COMPLETED],
    subject: SERVICE_SUBJECT,
};

/// Every tenant's AccountCreated and AccountChanged of the opportunities
/// service: the current account manager.
const ACCOUNT_OWNERS: crm_service::InternalConsumer<'static> = crm_service::InternalConsumer {
    name: workers::OWNER_CONSUMER,
    source: "opportunities",
    types: &[wire::ACCOUNT_CREATED, wire::ACCOUNT_CHANGED],
    subject: SERVICE_SUBJECT,
};

/// The operator's settings for the tickets service (`[tickets]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TicketsSettings {
    /// The configuration of tenants that have not set their own: the
    /// calendar, the default and VIP SLA, warnings, escalation, health,
    /// churn and tier rules.
    pub defaults: domain::TicketsConfig,
    pub pages: PageLimits,
    /// The event stream: retention, heartbeats, sequencer tick.
    pub events: crm_events::EventsConfig,
    /// How often the sweeper runs the SLA clocks.
    #[serde(with = "crm_config::duration")]
    pub sweep_interval: Duration,
    /// Tickets the sweeper reads per query; each is changed in its own
    /// transaction.
    pub sweep_batch: u64,
    /// The most matching resolved tickets a similar-solutions query
    /// ranks: the bound on its cost when the query's words are common.
    pub search_candidates: u64,
    /// Whether go-lives make entitlements: the consumer reads every
    /// tenant's DeliveryProjectCompleted as the service identity, so a
    /// process running it outside development mode needs
    /// `auth.service_key_file`.
    pub consume_go_lives: bool,
    /// Where the go-live consumer reads the delivery service's events;
    /// unset, the suite's address of it (`peers.delivery`).
    pub delivery_url: Option<String>,
    /// Whether sales see their accounts by the current account manager:
    /// the consumer reads every tenant's AccountCreated and AccountChanged
    /// from the opportunities service as the service identity and makes
    /// each account's owner its manager (its tickets, health and retention
    /// tasks follow).
    pub follow_account_owners: bool,
    /// Where that consumer reads the opportunities service's events;
    /// unset, the suite's address of it (`peers.opportunities`).
    pub opportunities_url: Option<String>,
    /// The longest pause between reconnections to the delivery and
    /// opportunities services.
    #[serde(with = "crm_config::duration")]
    pub consumer_backoff_max: Duration,
}

impl Default for TicketsSettings {
    fn default() -> Self {
        TicketsSettings {
            defaults: domain::TicketsConfig::default(),
            pages: PageLimits::default(),
            events: crm_events::EventsConfig::default(),
            sweep_interval: Duration::from_secs(30),
            sweep_batch: 500,
            search_candidates: app::DEFAULT_SEARCH_CANDIDATES,
            consume_go_lives: true,
            delivery_url: None,
            follow_account_owners: true,
            opportunities_url: None,
            consumer_backoff_max: Duration::from_secs(30),
        }
    }
}

/// The tickets service over one database: its gRPC service, the go-live
/// consumer and the SLA sweeper.
#[derive(Clone)]
pub struct Tickets {
    app: UseCases,
    settings: TicketsSettings,
    events: crm_events::Events,
    db: sea_orm::DatabaseConnection,
    consumer: Option<crm_events::Consumer>,
    owner_consumer: Option<crm_events::Consumer>,
}

impl Tickets {
    fn grpc(&self, max_message_bytes: usize) -> TicketServiceServer<TicketsApi> {
        TicketServiceServer::new(TicketsApi::new(self.app.clone(), self.settings.pages))
            .max_decoding_message_size(max_message_bytes)
    }

    /// The use cases, for tests and tools.
    pub fn app(&self) -> &UseCases {
        &self.app
    }

    /// The go-live consumer, for its cursor and metrics; `None` without
    /// the service identity or the delivery service's address.
    pub fn consumer(&self) -> Option<&crm_events::Consumer> {
        self.consumer.as_ref()
    }

    /// The account-owner consumer; `None` without the service identity or
    /// the opportunities service's address.
    pub fn owner_consumer(&self) -> Option<&crm_events::Consumer> {
        self.owner_consumer.as_ref()
    }
}

impl crm_service::Service for Tickets {
    type Settings = TicketsSettings;

    const NAME: &'static str = "tickets";
    const PACKAGE: &'static str = "crm.tickets.v1";
    const GRPC_SERVICE: &'static str = SERVICE_NAME;

    /// Opens the service on its database, applying its migrations. The
    /// go-live consumer reads the delivery service at `delivery_url` if
    /// set, else where the suite says it is, with the service identity.
    async fn open(context: crm_service::Context, settings: TicketsSettings) -> Result<Self, DbErr> {
        settings
            .defaults
            .check()
            .map_err(|bad| DbErr::Custom(format!("tickets.defaults: {bad:?}")))?;
        let db = context.db;
        crm_store::migrate::<store::Migrator>(&db).await?;
        let events = crm_events::Events::open(db.clone(), settings.events.clone())
            .await
            .map_err(|e| DbErr::Custom(format!("tickets.events: {e}")))?;
        let app = UseCases::new(db.clone(), settings.defaults.clone(), events.outbox())
            .with_search_candidates(settings.search_candidates);
        let url = settings
            .delivery_url
            .clone()
            .or_else(|| context.peers.url("delivery").map(str::to_owned));
        let consumer = match (url, context.identity.clone()) {
            _ if !settings.consume_go_lives => {
                tracing::warn!("tickets.consume_go_lives is off: go-lives make no entitlements");
                None
            }
            (Some(url), Some(identity)) => {
                let channel = context
                    .peers
                    .channel_to("delivery", &url)
                    .map_err(|e| DbErr::Custom(format!("tickets.delivery_url: {e}")))?;
                Some(GO_LIVES.build(channel, identity, settings.consumer_backoff_max))
            }
            (None, _) => {
                tracing::error!(
                    "tickets: no address of the delivery service (tickets.delivery_url or \
                     peers.delivery): go-lives make no entitlements"
                );
                None
            }
            (Some(_), None) => {
                tracing::error!(
                    "tickets: no service identity (auth.service_key_file): the go-live \
                     consumer cannot subscribe to the delivery service and is not running"
                );
                None
            }
        };
        let url = settings
            .opportunities_url
            .clone()
            .or_else(|| context.peers.url("opportunities").map(str::to_owned));
        let owner_consumer = match (url, context.identity) {
            _ if !settings.follow_account_owners => {
                tracing::warn!(
                    "tickets.follow_account_owners is off: a reassigned account's tickets stay \
                     with its former account manager"
                );
                None
            }
            (Some(url), Some(identity)) => {
                let channel = context
                    .peers
                    .channel_to("opportunities", &url)
                    .map_err(|e| DbErr::Custom(format!("tickets.opportunities_url: {e}")))?;
                Some(ACCOUNT_OWNERS.build(channel, identity, settings.consumer_backoff_max))
            }
            (None, _) => {
                tracing::error!(
                    "tickets: no address of the opportunities service (tickets.opportunities_url \
                     or peers.opportunities): reassigned accounts keep their former manager"
                );
                None
            }
            (Some(_), None) => {
                tracing::error!(
                    "tickets: no service identity (auth.service_key_file): the account-owner \
                     consumer cannot subscribe to the opportunities service and is not running"
                );
                None
            }
        };
        Ok(Tickets {
            app,
            settings,
            events,
            db,
            consumer,
            owner_consumer,
        })
    }

    /// The go-live consumer subscribes to every tenant's completed
    /// projects as the service.
    fn needs_identity(settings: &TicketsSettings) -> Option<&'static str> {
        if settings.consume_go_lives {
            Some(
                "tickets.consume_go_lives (every tenant's completed projects are read from the \
                 delivery service as the service)",
            )
        } else {
            settings.follow_account_owners.then_some(
                "tickets.follow_account_owners (every tenant's account events are read from the \
                 opportunities service as the service)",
            )
        }
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
            "tickets SLA sweeper",
            workers::spawn_sweeper(
                self.app.clone(),
                self.settings.sweep_interval,
                self.settings.sweep_batch.max(1),
                async move { stop.triggered().await },
            ),
        )];
        if let Some(consumer) = &self.consumer {
            let handler = workers::ProjectHandler {
                app: self.app.clone(),
            };
            let task = consumer
                .clone()
                .spawn(self.db.clone(), handler, shutdown.clone());
            workers.push(crm_service::Worker::new(
                "tickets go-live consumer",
                tokio::spawn(async move {
                    match task.await {
                        Ok(Ok(())) => {}
                        Ok(Err(err)) => {
                            tracing::error!(error = %err, "the go-live consumer stopped")
                        }
                        Err(err) => tracing::error!(error = %err, "the go-live consumer failed"),
                    }
                }),
            ));
        }
        if let Some(consumer) = &self.owner_consumer {
            let handler = workers::AccountOwnerHandler {
                app: self.app.clone(),
            };
            let task = consumer
                .clone()
                .spawn(self.db.clone(), handler, shutdown.clone());
            workers.push(crm_service::Worker::new(
                "tickets account-owner consumer",
                tokio::spawn(async move {
                    match task.await {
                        Ok(Ok(())) => {}
                        Ok(Err(err)) => {
                            tracing::error!(error = %err, "the account-owner consumer stopped")
                        }
                        Err(err) => {
                            tracing::error!(error = %err, "the account-owner consumer failed")
                        }
                    }
                }),
            ));
        }
        workers
    }
}
