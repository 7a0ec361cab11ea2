//! Tracing and OpenTelemetry: log output, OTLP export, one span per RPC with rpc.* attributes, W3C trace context propagation, per-method metrics.
