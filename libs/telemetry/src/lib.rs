//! Tracing and OpenTelemetry: log output, OTLP export, one span per RPC with
//! rpc.* attributes, W3C trace context propagation, per-method metrics.
//!
//! - [`init`] installs the global subscriber once per process: readable or
//!   JSON logs filtered by [`TelemetryConfig::log_filter`], and an
//!   OpenTelemetry layer that always assigns real trace ids (so error messages
//!   and forwarded calls carry them) but exports only when an OTLP endpoint is
//!   configured.
//! - [`RpcTraceLayer`] makes the span of each RPC, continuing the caller's
//!   W3C trace context, and counts and times each method.
//! - [`inject_trace_context`] and [`current_trace_id`] carry the context on.

mod config;
mod init;
mod propagation;
mod rpc;

pub use config::{LogFormat, TelemetryConfig};
pub use init::{TelemetryError, TelemetryGuard, init};
pub use propagation::{
    current_trace_context, current_trace_id, extract_trace_context, inject_trace_context,
};
pub use rpc::{RpcTrace, RpcTraceFuture, RpcTraceLayer, TracedBody};
