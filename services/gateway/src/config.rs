use std::{collections::BTreeMap, time::Duration};

use crm_server::{CallLimits, RateLimitConfig};
use serde::{Deserialize, Deserializer, Serialize};

/// The `[gateway]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Where each contract package is served: `"crm.leads.v1" =
    /// "http://leads:50061"`. A package without an entry is UNIMPLEMENTED.
    #[serde(deserialize_with = "dotted_keys")]
    pub upstreams: BTreeMap<String, String>,
    /// Packages that every service serves for itself, routed by a metadata
    /// key instead of by package: `"crm.events.v1" = "x-crm-source"` sends
    /// a call with `x-crm-source: leads` to the `crm.leads.v1` upstream. A
    /// call without the key, or naming no upstream, is INVALID_ARGUMENT.
    #[serde(deserialize_with = "dotted_keys")]
    pub multiplexed: BTreeMap<String, String>,
    /// For packages of `multiplexed`: the `string` field of the request
    /// message that may name the service instead of the metadata key, so
    /// that generated clients need no metadata: `"crm.events.v1" =
    /// "source"` routes `SubscribeRequest{source: "leads"}` to the
    /// `crm.leads.v1` upstream. The gateway reads it from the first request
    /// message (at most `max_request_bytes` of it) and forwards the body
    /// unchanged. When the field and the key are both set they must agree,
    /// or the call is INVALID_ARGUMENT (ROUTING_KEY_CONFLICT). A compressed
    /// first message cannot be read here: such calls need the key.
    #[serde(deserialize_with = "dotted_keys")]
    pub multiplexed_fields: BTreeMap<String, String>,
    /// Unary calls in progress beyond which new calls are refused at once
    /// with UNAVAILABLE rather than queued; streams have their own budget
    /// (`limits.max_streams`).
    pub max_in_flight: usize,
    /// Token buckets per tenant and per subject within it.
    pub rate_limit: RateLimitConfig,
    /// Per tenant and per subject caps on calls and streams, request body
    /// idle time, stream lifetime.
    pub limits: CallLimits,
    /// The connections to the services.
    pub upstream: UpstreamConfig,
    /// Largest request message passed on, in bytes.
    pub max_request_bytes: usize,
    /// Upper bound on a call's deadline; a client's shorter `grpc-timeout`
    /// wins, and the upstream is told what is left of it.
    #[serde(with = "crm_config::duration")]
    pub max_timeout: Duration,
    /// How soon the gateway tries again to follow an upstream's health that
    /// it cannot reach, and how often it probes a quiet connection to it;
    /// the gateway reports each upstream's status under its package and
    /// service names (`crm.leads.v1.LeadService`).
    #[serde(with = "crm_config::duration")]
    pub upstream_health_interval: Duration,
    /// The TLS of calls to `https://` upstreams: the process's `client.tls`
    /// section, filled in by whoever starts the gateway (not a key of
    /// `[gateway]`).
    #[serde(skip)]
    pub client_tls: crm_server::ClientTls,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            upstreams: BTreeMap::new(),
            multiplexed: BTreeMap::from([("crm.events.v1".to_owned(), "x-crm-source".to_owned())]),
            multiplexed_fields: BTreeMap::from([("crm.events.v1".to_owned(), "source".to_owned())]),
            max_in_flight: 1024,
            rate_limit: RateLimitConfig::default(),
            limits: CallLimits::default(),
            upstream: UpstreamConfig::default(),
            max_request_bytes: 4 * 1024 * 1024,
            max_timeout: Duration::from_secs(30),
            upstream_health_interval: Duration::from_secs(2),
            client_tls: crm_server::ClientTls::default(),
        }
    }
}

/// A map keyed by package names. The configuration loader reads a dotted
/// key (`crm.events.v1`) as a path of nested tables, so the map may come as
/// `{crm: {events: {v1: ...}}}`: joined back into one key here.
fn dotted_keys<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Node {
        Value(String),
        Table(BTreeMap<String, Node>),
    }
    fn flatten(prefix: &str, table: BTreeMap<String, Node>, out: &mut BTreeMap<String, String>) {
        for (key, node) in table {
            let key = if prefix.is_empty() {
                key
            } else {
                format!("{prefix}.{key}")
            };
            match node {
                Node::Value(value) => {
                    out.insert(key, value);
                }
                Node::Table(table) => flatten(&key, table, out),
            }
        }
    }
    let mut out = BTreeMap::new();
    flatten("", BTreeMap::<String, Node>::deserialize(d)?, &mut out);
    Ok(out)
}

/// How the gateway reaches each service. Unary calls share one HTTP/2
/// connection per service; streams get connections of their own, so a
/// stalled stream can never hold up a unary call, and flow-control windows
/// are sized so that stalled streams cannot exhaust a connection's window:
/// a stream connection's window is `stream_window_bytes` times
/// `streams_per_connection`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamConfig {
    /// Receive window of one unary call, in bytes.
    pub unary_stream_window_bytes: u32,
    /// Receive window of the unary connection, in bytes: room for many
    /// unary replies that their clients read slowly.
    pub unary_connection_window_bytes: u32,
    /// Receive window of one stream, in bytes.
    pub stream_window_bytes: u32,
    /// Streams on one upstream connection; more open another connection.
    pub streams_per_connection: usize,
    /// Largest header block accepted from a service, in bytes. Large, so an
    /// oversized error from a service fails only its own call, never the
    /// connection others share.
    pub max_header_list_bytes: u32,
    /// Largest status (`grpc-message` and `grpc-status-details-bin`)
    /// relayed to a client, in bytes; a larger one is cut down (message
    /// shortened, details reduced to the `ErrorInfo`).
    pub max_status_bytes: usize,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        Self {
            unary_stream_window_bytes: 1024 * 1024,
            unary_connection_window_bytes: 64 * 1024 * 1024,
            stream_window_bytes: 256 * 1024,
            streams_per_connection: 32,
            max_header_list_bytes: 1024 * 1024,
            max_status_bytes: 7 * 1024,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn the_event_stream_is_multiplexed_by_source_by_default() {
        // Through the configuration loader: a dotted package name must stay
        // one key, not become a nested table.
        let cfg: GatewayConfig = crm_config::load_from(None, []).unwrap();
        assert_eq!(
            cfg.multiplexed,
            BTreeMap::from([("crm.events.v1".to_owned(), "x-crm-source".to_owned())])
        );
        assert_eq!(
            cfg.multiplexed_fields,
            BTreeMap::from([("crm.events.v1".to_owned(), "source".to_owned())])
        );
    }

    #[test]
    fn package_names_in_a_file_stay_whole() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("gateway.toml");
        std::fs::write(
            &file,
            r#"
[upstreams]
"crm.leads.v1" = "http://leads:50061"
[multiplexed]
"crm.events.v1" = "x-event-source"
"crm.audit.v1" = "x-audit-source"
"#,
        )
        .unwrap();
        let cfg: GatewayConfig = crm_config::load_from(Some(&file), []).unwrap();
        assert_eq!(
            cfg.upstreams,
            BTreeMap::from([("crm.leads.v1".to_owned(), "http://leads:50061".to_owned())])
        );
        assert_eq!(
            cfg.multiplexed,
            BTreeMap::from([
                ("crm.audit.v1".to_owned(), "x-audit-source".to_owned()),
                ("crm.events.v1".to_owned(), "x-event-source".to_owned()),
            ])
        );
    }
}
