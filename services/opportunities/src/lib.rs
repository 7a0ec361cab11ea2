//! The opportunities service: accounts and contacts,
//! decision chains, stage gates, the iron triangle, approvals, presales
//! hours, the weighted pipeline, and lead conversion.
//!
//! A request flows one way: `api` decodes it and names the caller, `wire`
//! maps it into the domain's values, `app` runs the use case (loads through
//! `store`, lets `domain` decide, commits the change with its audit entries
//! and events in one unit of work), and `wire` maps the answer back.
//! Imports follow the same direction: `api -> app -> {domain, store, wire}`,
//! `wire -> domain`, `store -> domain`.

pub mod api;
pub mod app;
pub mod domain;
pub mod store;
pub mod wire;

use crm_proto::crm::opportunities::v1::opportunity_service_server::OpportunityServiceServer;
use crm_rpc::paging::PageLimits;
use sea_orm::DbErr;
use serde::{Deserialize, Serialize};

pub use api::OpportunitiesApi;
pub use app::UseCases;

/// The gRPC service name, as health checks know it.
pub const SERVICE_NAME: &str = "crm.opportunities.v1.OpportunityService";

/// The operator's settings for the opportunities service (`[opportunities]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OpportunitiesSettings {
    /// The configuration of tenants that have not set their own: stage
    /// probabilities, gates (seed 003's TAS+ by default), approval chains.
    pub defaults: domain::OpportunityConfig,
    pub pages: PageLimits,
    /// The event stream: retention, heartbeats, sequencer tick.
    pub events: crm_events::EventsConfig,
}

/// The opportunities service over one database.
#[derive(Clone)]
pub struct Opportunities {
    app: UseCases,
    settings: OpportunitiesSettings,
    events: crm_events::Events,
    db: sea_orm::DatabaseConnection,
}

impl Opportunities {
    /// The tonic service, refusing messages over `max_message_bytes`.
    fn grpc(&self, max_message_bytes: usize) -> OpportunityServiceServer<OpportunitiesApi> {
        OpportunityServiceServer::new(OpportunitiesApi::new(self.app.clone(), self.settings.pages))
            .max_decoding_message_size(max_message_bytes)
    }
}

impl crm_service::Service for Opportunities {
    type Settings = OpportunitiesSettings;

    const NAME: &'static str = "opportunities";
    const PACKAGE: &'static str = "crm.opportunities.v1";
    const GRPC_SERVICE: &'static str = SERVICE_NAME;

    /// Opens the service on its database, applying its migrations.
    async fn open(
        context: crm_service::Context,
        settings: OpportunitiesSettings,
    ) -> Result<Self, DbErr> {
        let db = context.db;
        crm_store::migrate::<store::Migrator>(&db).await?;
        let events = crm_events::Events::open(db.clone(), settings.events.clone())
            .await
            .map_err(|e| DbErr::Custom(format!("opportunities.events: {e}")))?;
        let app = UseCases::new(db.clone(), settings.defaults.clone(), events.outbox());
        Ok(Opportunities {
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
}
