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
//! in [`grpc`].

mod config;
mod deadline;
mod drain;
pub mod grpc;
mod limit;
mod serve;
mod shutdown;

pub use config::ServerConfig;
pub use deadline::{Deadline, DeadlineLayer, DeadlineService};
pub use drain::Passthrough;
pub use limit::{MessageSizeLimit, MessageSizeLimitLayer};
pub use serve::{ServerError, error_domain, serve};
pub use shutdown::Shutdown;
