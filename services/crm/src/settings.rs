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

impl Settings {
    /// For services run as separate processes: the gateway's upstreams and
    /// the leads service's way to opportunities that are not configured
    /// point at the services' own `serve` addresses, so that the components
    /// started on one machine find each other with no further setting.
    pub fn find_services_at_their_addresses(&mut self) {
        let url = |addr: &str| format!("http://{addr}");
        let (leads, opportunities) = (
            url(&self.serve.leads_addr),
            url(&self.serve.opportunities_addr),
        );
        let upstreams = &mut self.gateway.upstreams;
        upstreams.entry("crm.leads.v1".to_owned()).or_insert(leads);
        upstreams
            .entry("crm.opportunities.v1".to_owned())
            .or_insert_with(|| opportunities.clone());
        self.leads.opportunities_url.get_or_insert(opportunities);
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separate_services_find_each_other_unless_configured_otherwise() {
        let mut settings = Settings::default();
        settings.serve.leads_addr = "10.0.0.1:7001".into();
        settings.serve.opportunities_addr = "10.0.0.2:7002".into();
        settings.gateway.upstreams.insert(
            "crm.opportunities.v1".into(),
            "http://opportunities:50062".into(),
        );
        settings.find_services_at_their_addresses();
        let upstream = |p: &str| settings.gateway.upstreams.get(p).cloned();
        assert_eq!(
            upstream("crm.leads.v1").as_deref(),
            Some("http://10.0.0.1:7001")
        );
        assert_eq!(
            upstream("crm.opportunities.v1").as_deref(),
            Some("http://opportunities:50062"),
            "a configured upstream is kept"
        );
        assert_eq!(
            settings.leads.opportunities_url.as_deref(),
            Some("http://10.0.0.2:7002")
        );
    }
}
