use serde::{Deserialize, Serialize};

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Text when stdout is a terminal, JSON otherwise (a cluster's log collector).
    #[default]
    Auto,
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Text,
}

/// The `[telemetry]` section of the configuration.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TelemetryConfig {
    pub log_format: LogFormat,
    /// Which log lines to write, in `RUST_LOG` syntax (`info,crm_leads=debug`).
    pub log_filter: String,
    /// OTLP/gRPC collector, e.g. `http://otel-collector:4317`. Traces and
    /// metrics are exported only when this is set.
    pub otlp_endpoint: Option<String>,
    /// `service.namespace` of the exported telemetry, and the prefix of
    /// each component's `service.name` (`crm-leads`).
    pub service_name: String,
    /// Where to serve `GET /metrics` in the Prometheus text format, e.g.
    /// `0.0.0.0:9464`; off when unset.
    pub prometheus_addr: Option<String>,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        Self {
            log_format: LogFormat::Auto,
            log_filter: "info".to_owned(),
            otlp_endpoint: None,
            service_name: "crm".to_owned(),
            prometheus_addr: None,
        }
    }
}
