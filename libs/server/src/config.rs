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
    /// Streams (calls) one connection may have open at once; more wait in
    /// the client. Bounds what one connection costs.
    pub http2_max_concurrent_streams: u32,
    /// Largest header list (metadata) a client may send, in bytes.
    pub http2_max_header_list_size: u32,
    /// Open connections at most; beyond it new ones are closed at once, so
    /// file descriptors are left for the process's own work.
    pub max_connections: usize,
    /// How long a new connection has to send the HTTP/2 preface; a socket
    /// that sends nothing is closed after it.
    #[serde(with = "crm_config::duration")]
    pub handshake_timeout: Duration,
    /// A connection from which nothing (not even a PING acknowledgement)
    /// has been read for this long is closed.
    #[serde(with = "crm_config::duration")]
    pub connection_idle_timeout: Duration,
    /// Unary calls in progress in this process, all callers together;
    /// beyond it calls are refused at once with UNAVAILABLE (OVERLOADED).
    pub max_in_flight: usize,
    /// Per tenant and per subject token buckets of a service reached
    /// directly.
    pub rate_limit: RateLimitConfig,
    /// Per tenant and per subject caps on calls and streams.
    pub limits: CallLimits,
    /// How often a service checks that its database answers. While it does
    /// not, health is NOT_SERVING and calls fail at once with UNAVAILABLE
    /// (DATABASE_UNAVAILABLE) rather than wait for the pool.
    #[serde(with = "crm_config::duration")]
    pub database_probe_interval: Duration,
    /// A connection this old (plus up to a tenth more, drawn once per
    /// listener) is asked to go away with an HTTP/2 GOAWAY: its calls in
    /// flight run to their end, and the client's next calls open a new
    /// connection, through the Service to any replica, so long-lived
    /// connections rebalance after a scale-up. Unset: never.
    #[serde(with = "crm_config::duration::option")]
    pub max_connection_age: Option<Duration>,
    /// TLS on the listener, and mutual TLS with a client CA
    /// (`server.tls.*`); unset, plaintext.
    pub tls: crate::ServerTls,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            grace_period: Duration::from_secs(30),
            max_request_bytes: 4 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            http2_keepalive_interval: Duration::from_secs(20),
            http2_keepalive_timeout: Duration::from_secs(10),
            http2_max_concurrent_streams: 100,
            http2_max_header_list_size: 16 * 1024,
            max_connections: 4096,
            handshake_timeout: Duration::from_secs(10),
            connection_idle_timeout: Duration::from_secs(300),
            max_in_flight: 1024,
            rate_limit: RateLimitConfig::default(),
            limits: CallLimits::default(),
            database_probe_interval: Duration::from_secs(2),
            max_connection_age: None,
            tls: crate::ServerTls::default(),
        }
    }
}

/// Token buckets: `burst` calls at once, refilled at `requests_per_second`,
/// per tenant; inside the tenant's, the same per subject (user or service
/// account), so one user cannot spend the whole company's budget.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Per tenant; 0 turns the rate limits off.
    pub requests_per_second: u32,
    pub burst: u32,
    /// Per subject within its tenant; 0 turns this one off.
    pub subject_requests_per_second: u32,
    pub subject_burst: u32,
    /// A call over the limit is answered (RATE_LIMITED) when the caller's
    /// next call could pass, up to this long, holding one of the caller's
    /// call slots meanwhile: a client that retries at once instead of
    /// waiting as told slows down to its rate, rather than spending the
    /// server's time on a stream of refusals.
    #[serde(with = "crm_config::duration")]
    pub refusal_delay_max: Duration,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            requests_per_second: 100,
            burst: 200,
            subject_requests_per_second: 50,
            subject_burst: 100,
            refusal_delay_max: Duration::from_secs(1),
        }
    }
}

/// Caps on what one tenant, and one subject of it, may hold open at once,
/// streams budgeted apart from unary calls; plus the time bounds that keep
/// a held slot from being held for ever.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallLimits {
    /// Streaming calls open in the process, all callers together; beyond it
    /// UNAVAILABLE (OVERLOADED). Counted apart from `max_in_flight`.
    pub max_streams: usize,
    /// Unary calls in progress per tenant / per subject; beyond it
    /// RESOURCE_EXHAUSTED (TOO_MANY_CALLS).
    pub tenant_calls: usize,
    pub subject_calls: usize,
    /// Open streams per tenant / per subject; beyond it RESOURCE_EXHAUSTED
    /// (TOO_MANY_STREAMS).
    pub tenant_streams: usize,
    pub subject_streams: usize,
    /// A stream is ended after this long with UNAVAILABLE
    /// (STREAM_LIFETIME) and a `RetryInfo`: reconnect and resume (events:
    /// from the last sequence), possibly on another replica.
    #[serde(with = "crm_config::duration")]
    pub stream_lifetime: Duration,
    /// A request body that sends nothing for this long (and has not ended)
    /// fails the call, releasing its slot.
    #[serde(with = "crm_config::duration")]
    pub request_idle_timeout: Duration,
}

impl Default for CallLimits {
    fn default() -> Self {
        Self {
            max_streams: 1024,
            tenant_calls: 64,
            subject_calls: 16,
            tenant_streams: 64,
            subject_streams: 16,
            stream_lifetime: Duration::from_secs(30 * 60),
            request_idle_timeout: Duration::from_secs(10),
        }
    }
}
