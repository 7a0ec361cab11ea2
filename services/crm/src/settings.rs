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
            /// How this process calls the other components (`client.tls`).
            pub client: $crate::ClientSettings,
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
                    client: Default::default(),
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

    /// Every address is `host:port` with a port (0 picks one), as the
    /// error names the key.
    pub fn check(&self) -> Result<(), String> {
        std::iter::once(("gateway_addr", &self.gateway_addr))
            .chain(self.services.iter().map(|(k, v)| (k.as_str(), v)))
            .try_for_each(|(key, addr)| {
                check_address(addr).map_err(|reason| format!("serve.{key}: {reason}"))
            })
    }

    /// Where `service` listens.
    pub fn of(&self, service: &str) -> Option<&str> {
        self.services
            .get(&format!("{service}_addr"))
            .map(String::as_str)
    }
}

/// The `[client]` section: how this process calls the other components.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientSettings {
    /// TLS of calls to `https://` peers and upstreams: the CA to trust
    /// (unset: the public web roots) and, for mutual TLS, the certificate
    /// and key this process presents.
    pub tls: crm_server::ClientTls,
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

impl StoreSettings {
    /// A database URL is PostgreSQL's: anything else used to fall back to
    /// SQLite files without a word.
    pub fn check(&self) -> Result<(), String> {
        let Some(url) = &self.database_url else {
            return Ok(());
        };
        let scheme = url.split_once("://").map(|(scheme, _)| scheme);
        match scheme {
            Some("postgres" | "postgresql") => Ok(()),
            Some("sqlite") => Err(
                "store.database_url: SQLite takes no URL: leave it unset for one file per service \
                 under data_dir"
                    .into(),
            ),
            _ => Err(format!(
                "store.database_url: expected postgres://... or postgresql://..., got {}",
                scheme.map_or_else(|| "no scheme".to_owned(), |s| format!("{s}://")),
            )),
        }
    }
}

/// `host:port`, `[v6]:port`: a host and a port number.
fn check_address(addr: &str) -> Result<(), String> {
    if addr.parse::<std::net::SocketAddr>().is_ok() {
        return Ok(());
    }
    let Some((host, port)) = addr.rsplit_once(':') else {
        return Err(format!("{addr:?} is not host:port"));
    };
    if host.is_empty() || host.contains(['/', ' ']) || port.parse::<u16>().is_err() {
        return Err(format!("{addr:?} is not host:port"));
    }
    Ok(())
}

/// An `http://` or `https://` URL with a host, as the key names it.
pub(crate) fn check_url(key: &str, url: &str) -> Result<(), String> {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with(['/', ':']) => Ok(()),
        _ => Err(format!(
            "{key}: expected an http:// or https:// URL with a host, got {url:?}"
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Issue 15: `mysql://` used to start on local SQLite files.
    #[test]
    fn a_database_url_is_postgresql_or_unset() {
        let with = |url: &str| StoreSettings {
            database_url: Some(url.to_owned()),
            ..StoreSettings::default()
        };
        StoreSettings::default().check().unwrap();
        with("postgres://u@db:5432/crm").check().unwrap();
        with("postgresql://u@db/crm").check().unwrap();
        for url in ["mysql://u@db/crm", "sqlite://./x.db", "", "db:5432"] {
            let err = with(url).check().unwrap_err();
            assert!(err.starts_with("store.database_url: "), "{url}: {err}");
        }
    }

    #[test]
    fn an_address_is_host_and_port() {
        let mut addresses = Addresses::with_defaults([("leads", 50061)]);
        addresses.check().unwrap();
        for ok in ["0.0.0.0:0", "[::]:50061", "crm-leads:50061", "localhost:1"] {
            addresses.gateway_addr = ok.into();
            addresses.check().unwrap();
        }
        for bad in [
            "50051",
            "127.0.0.1",
            "127.0.0.1:http",
            ":50051",
            "host:70000",
        ] {
            addresses.gateway_addr = "127.0.0.1:1".into();
            addresses.services.insert("leads_addr".into(), bad.into());
            let err = addresses.check().unwrap_err();
            assert!(err.starts_with("serve.leads_addr: "), "{bad}: {err}");
        }
    }

    #[test]
    fn a_peer_is_an_http_url() {
        check_url("peers.leads", "http://crm-leads:50061").unwrap();
        check_url("peers.leads", "https://leads.example.com").unwrap();
        for bad in ["crm-leads:50061", "grpc://x:1", "http://", "http:///x"] {
            let err = check_url("peers.leads", bad).unwrap_err();
            assert!(err.starts_with("peers.leads: "), "{bad}: {err}");
        }
    }
}
