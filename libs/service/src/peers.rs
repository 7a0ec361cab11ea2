//! Where the other services of the suite are, and channels to them.

use std::{collections::BTreeMap, time::Duration};

use tonic::transport::{Channel, ClientTlsConfig, Endpoint};

/// The base URL of each service by name (`"opportunities"` ->
/// `http://crm-opportunities:50062`), as the process found or was told,
/// and the TLS of calls to `https://` ones (`client.tls`).
#[derive(Debug, Clone, Default)]
pub struct Peers {
    urls: BTreeMap<String, String>,
    tls: Option<ClientTlsConfig>,
}

/// A peer URL that is not a valid endpoint.
#[derive(Debug, thiserror::Error)]
#[error("the address of service {service} ({url:?}) is not a valid URL: {reason}")]
pub struct PeerError {
    pub service: String,
    pub url: String,
    pub reason: String,
}

impl Peers {
    pub fn new(urls: BTreeMap<String, String>) -> Self {
        Peers { urls, tls: None }
    }

    /// Calls to `https://` peers use `tls` (the CA to trust, and the
    /// client certificate for mutual TLS).
    pub fn with_tls(mut self, tls: ClientTlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    pub fn url(&self, service: &str) -> Option<&str> {
        self.urls.get(service).map(String::as_str)
    }

    /// A channel to `service` that connects on first use (the peer may
    /// start later than this process), or `None` if its address is unknown.
    pub fn channel(&self, service: &str) -> Result<Option<Channel>, PeerError> {
        self.url(service)
            .map(|url| self.channel_to(service, url))
            .transpose()
    }

    /// A lazily connecting channel to `service` at `url` (an address
    /// configured for one use, e.g. `leads.opportunities_url`), with this
    /// process's client TLS when it is `https://`.
    pub fn channel_to(&self, service: &str, url: &str) -> Result<Channel, PeerError> {
        connect(service, url, self.tls.as_ref())
    }
}

/// A lazily connecting channel to `url`, without client TLS settings (an
/// `https://` URL trusts the public web roots): prefer
/// [`Peers::channel_to`], which applies `client.tls`.
pub fn channel(service: &str, url: &str) -> Result<Channel, PeerError> {
    connect(service, url, None)
}

fn connect(service: &str, url: &str, tls: Option<&ClientTlsConfig>) -> Result<Channel, PeerError> {
    let error = |reason: String| PeerError {
        service: service.to_owned(),
        url: url.to_owned(),
        reason,
    };
    let endpoint = Endpoint::from_shared(url.to_owned()).map_err(|e| error(e.to_string()))?;
    let endpoint = match tls {
        Some(tls) => crm_server::secure(endpoint, url, tls, &format!("peers.{service}"))
            .map_err(|e| error(e.to_string()))?,
        None => endpoint,
    };
    Ok(endpoint
        .connect_timeout(Duration::from_secs(5))
        .tcp_nodelay(true)
        .connect_lazy())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_known_peer_gets_a_lazy_channel_and_a_bad_url_names_the_service() {
        let peers = Peers::new(BTreeMap::from([
            ("opportunities".to_owned(), "http://127.0.0.1:1".to_owned()),
            ("contracts".to_owned(), "not a url".to_owned()),
        ]));
        assert!(matches!(peers.channel("opportunities"), Ok(Some(_))));
        assert!(matches!(peers.channel("tickets"), Ok(None)));
        let err = peers.channel("contracts").err().map(|e| e.to_string());
        assert!(
            err.as_deref().is_some_and(|e| e.contains("contracts")),
            "{err:?}"
        );
    }
}
