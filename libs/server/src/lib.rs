//! Server bootstrap: the shared tower stack, health, reflection, graceful
//! shutdown for a tonic service or the gateway.
//!
//! [`serve`] is how every process serves gRPC: it adds health and reflection
//! to the caller's routes, wraps everything in the shared stack (trace →
//! drain → deadline → message size limit) and runs until [`Shutdown`]
//! fires, then drains within the configured grace period.
//!
//! The layers are public so the gateway can put the same rules in its own
//! stack: [`DeadlineLayer`], [`MessageSizeLimitLayer`], and the gRPC helpers
//! in [`grpc`]. [`FairLayer`] holds the fair shares (per tenant and per
//! subject rate limits, caps on calls and on streams, idle request bodies,
//! stream lifetimes), applied after auth by the gateway and by every
//! service alike.

mod config;
mod deadline;
mod drain;
mod fair;
pub mod grpc;
mod limit;
mod rate_limit;
mod serve;
mod shutdown;
mod tls;
mod transport;

pub use config::{CallLimits, RateLimitConfig, ServerConfig};
pub use deadline::{Deadline, DeadlineLayer, DeadlineService};
pub use drain::Passthrough;
pub use fair::{FairLayer, FairService, IdleBody, REFUSED, is_streaming};
pub use limit::{MessageSizeLimit, MessageSizeLimitLayer};
pub use rate_limit::TenantBudget;
pub use serve::{ServerError, error_domain, serve, serve_ready, serve_with_health};
pub use shutdown::Shutdown;
pub use tls::{ClientTls, ServerTls, TlsError, secure};
