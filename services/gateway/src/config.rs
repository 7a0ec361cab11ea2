use std::{collections::BTreeMap, time::Duration};

use serde::{Deserialize, Serialize};

/// The `[gateway]` section.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// Where each contract package is served: `"crm.leads.v1" =
    /// "http://leads:50061"`. A package without an entry is UNIMPLEMENTED.
    pub upstreams: BTreeMap<String, String>,
    /// Calls in progress (streams included) beyond which new calls are
    /// refused at once with UNAVAILABLE rather than queued.
    pub max_in_flight: usize,
    pub rate_limit: RateLimitConfig,
    /// Largest request message passed on, in bytes.
    pub max_request_bytes: usize,
    /// Upper bound on a call's deadline; a client's shorter `grpc-timeout`
    /// wins, and the upstream is told what is left of it.
    #[serde(with = "crm_config::duration")]
    pub max_timeout: Duration,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            upstreams: BTreeMap::new(),
            max_in_flight: 1024,
            rate_limit: RateLimitConfig::default(),
            max_request_bytes: 4 * 1024 * 1024,
            max_timeout: Duration::from_secs(30),
        }
    }
}

/// A token bucket per tenant: `burst` calls at once, refilled at
/// `requests_per_second`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// 0 turns the limit off.
    pub requests_per_second: u32,
    pub burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            requests_per_second: 100,
            burst: 200,
        }
    }
}
