use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The `[server]` section: how a process serves gRPC.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// How long in-flight calls get to finish after SIGTERM; keep it below
    /// Kubernetes' `terminationGracePeriodSeconds`.
    #[serde(with = "crm_config::duration")]
    pub grace_period: Duration,
    /// Largest gRPC request message accepted, in bytes (as sent, i.e.
    /// compressed if the client compresses).
    pub max_request_bytes: usize,
    /// Upper bound on any call until its response starts; a client's shorter
    /// `grpc-timeout` wins.
    #[serde(with = "crm_config::duration")]
    pub request_timeout: Duration,
    /// HTTP/2 PING interval, so dead peers and idle-killing middleboxes are
    /// noticed.
    #[serde(with = "crm_config::duration")]
    pub http2_keepalive_interval: Duration,
    /// How long a PING may go unanswered before the connection is closed.
    #[serde(with = "crm_config::duration")]
    pub http2_keepalive_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            grace_period: Duration::from_secs(30),
            max_request_bytes: 4 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            http2_keepalive_interval: Duration::from_secs(20),
            http2_keepalive_timeout: Duration::from_secs(10),
        }
    }
}
