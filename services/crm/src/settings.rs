//! Every setting of the suite, one section per part. Defaults make
//! `crm serve` work with no file; a TOML file (`--config`) and then
//! `CRM__SECTION__KEY` environment variables override them.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// SQLite files and the development signing key live here.
    pub data_dir: PathBuf,
    pub serve: Addresses,
    pub store: StoreSettings,
    pub server: crm_server::ServerConfig,
    pub auth: crm_auth::AuthConfig,
    pub gateway: crm_gateway::GatewayConfig,
    pub telemetry: crm_telemetry::TelemetryConfig,
    pub leads: crm_leads::LeadsConfig,
    pub opportunities: crm_opportunities::OpportunitiesConfig,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            data_dir: PathBuf::from("./data"),
            serve: Addresses::default(),
            store: StoreSettings::default(),
            server: Default::default(),
            auth: Default::default(),
            gateway: Default::default(),
            telemetry: Default::default(),
            leads: Default::default(),
            opportunities: Default::default(),
        }
    }
}

/// Where each component listens.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Addresses {
    pub gateway_addr: String,
    pub leads_addr: String,
    pub opportunities_addr: String,
}

impl Default for Addresses {
    fn default() -> Self {
        Addresses {
            gateway_addr: "127.0.0.1:50051".into(),
            leads_addr: "127.0.0.1:50061".into(),
            opportunities_addr: "127.0.0.1:50062".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// `postgres://...` for PostgreSQL (a schema per service); unset for
    /// SQLite files under the data directory.
    pub database_url: Option<String>,
    /// Connections per service.
    pub max_connections: u32,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            database_url: None,
            max_connections: 16,
        }
    }
}
