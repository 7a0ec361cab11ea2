//! Tracing and OpenTelemetry: log output, OTLP export, one span per RPC with
//! rpc.* attributes, W3C trace context propagation, per-method metrics.
//!
//! - [`init`] installs the global subscriber once per process: readable or
//!   JSON logs filtered by [`TelemetryConfig::log_filter`], and an
//!   OpenTelemetry layer that always assigns real trace ids (so error messages
//!   and forwarded calls carry them) but exports only when an OTLP endpoint is
//!   configured.
//! - [`RpcTraceLayer`] makes the SERVER span of each RPC, continuing the
//!   caller's W3C trace context, and times each method by status;
//!   [`RpcClientLayer`] does the same for outbound calls (CLIENT spans).
//! - Each component exports under its own `service.name` (`crm-leads`),
//!   also when several share a process: see [`register_component`].
//! - [`inject_trace_context`] and [`current_trace_id`] carry the context on.

mod component;
mod config;
mod init;
mod prometheus;
mod propagation;
mod rpc;
mod tls;

pub use component::{Component, component_of, meter};
pub use config::{LogFormat, TelemetryConfig};
pub use init::{TelemetryError, TelemetryGuard, init, prometheus_addr, register_component};
/// The instrument types, for crates that make their own metrics with
/// [`meter`].
pub use opentelemetry::{
    KeyValue,
    metrics::{Counter, Meter, ObservableGauge},
};
pub use propagation::{
    current_trace_context, current_trace_id, extract_trace_context, inject_trace_context,
};
pub use rpc::{
    CLIENT_DURATION, RpcClient, RpcClientLayer, RpcTrace, RpcTraceFuture, RpcTraceLayer,
    SERVER_DURATION, TracedBody,
};
