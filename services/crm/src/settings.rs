//! Every setting of the suite, one section per part. Defaults make
//! `crm serve` work with no file; a TOML file (`--config`) and then
//! `CRM__SECTION__KEY` environment variables override them.
//!
//! The sections of the services come from the registry (`registry.rs`):
//! `[leads]`, `[opportunities]`, ... each the service's own settings type,
//! and `serve.<service>_addr` for where it listens.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Declares the suite from its registry: the [`Settings`] with one section
/// per service, and [`SERVICES`], each service's [`Entry`].
#[macro_export]
macro_rules! suite {
    ($($name:ident : $service:ty = $port:literal),* $(,)?) => {
        /// Every setting of the suite.
        #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
        #[serde(deny_unknown_fields, default)]
        pub struct Settings {
            /// SQLite files and the development signing key live here.
            pub data_dir: std::path::PathBuf,
            pub serve: $crate::Addresses,
            pub store: $crate::StoreSettings,
            pub server: crm_server::ServerConfig,
            pub auth: crm_auth::AuthConfig,
            pub gateway: crm_gateway::GatewayConfig,
            pub telemetry: crm_telemetry::TelemetryConfig,
            /// Where the other components reach each service, by name
            /// (`leads = "http://crm-leads:50061"`); a service not listed
            /// is reached at its `serve.<service>_addr`.
            pub peers: std::collections::BTreeMap<String, String>,
            $(pub $name: <$service as crm_service::Service>::Settings,)*
        }

        impl Default for Settings {
            fn default() -> Self {
                Settings {
                    data_dir: std::path::PathBuf::from("./data"),
                    serve: $crate::Addresses::with_defaults(
                        [$((stringify!($name), $port)),*],
                    ),
                    store: Default::default(),
                    server: Default::default(),
                    auth: Default::default(),
                    gateway: Default::default(),
                    telemetry: Default::default(),
                    peers: Default::default(),
                    $($name: Default::default(),)*
                }
            }
        }

        /// Every service of the suite, in the registry's order.
        pub static SERVICES: std::sync::LazyLock<Vec<$crate::Entry>> =
            std::sync::LazyLock::new(|| vec![
                $($crate::Entry::of::<$service>(stringify!($name), |s: &Settings| &s.$name),)*
            ]);
    };
}

/// Where each component listens: `gateway_addr`, and `<service>_addr` for
/// every service of the registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Addresses {
    pub gateway_addr: String,
    /// `<service>_addr` -> address; checked against the registry at start-up.
    #[serde(flatten)]
    pub services: BTreeMap<String, String>,
}

impl Default for Addresses {
    fn default() -> Self {
        Addresses::with_defaults([])
    }
}

impl Addresses {
    /// The gateway on 127.0.0.1:50051, each service on 127.0.0.1:`port`.
    pub fn with_defaults<'a>(services: impl IntoIterator<Item = (&'a str, u16)>) -> Self {
        Addresses {
            gateway_addr: "127.0.0.1:50051".into(),
            services: services
                .into_iter()
                .map(|(name, port)| (format!("{name}_addr"), format!("127.0.0.1:{port}")))
                .collect(),
        }
    }

    /// Where `service` listens.
    pub fn of(&self, service: &str) -> Option<&str> {
        self.services
            .get(&format!("{service}_addr"))
            .map(String::as_str)
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
