use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::{
    Context,
    propagation::{Extractor, Injector, TextMapPropagator as _},
    trace::TraceContextExt as _,
};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

/// Writes the current span's W3C trace context (`traceparent`,
/// `tracestate`) into `headers`, replacing what was there. Without a current
/// span nothing is written, so a context the headers already carry survives.
pub fn inject_trace_context(headers: &mut HeaderMap) {
    let cx = tracing::Span::current().context();
    // W3C is the suite's one format; using it directly (rather than the
    // global propagator) keeps propagation working before or without `init`.
    TraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(headers));
}

/// The W3C trace context carried by `headers` (empty when there is none).
pub fn extract_trace_context(headers: &HeaderMap) -> Context {
    TraceContextPropagator::new().extract(&HeaderExtractor(headers))
}

/// The hex trace id of the current span, to quote in INTERNAL errors so an
/// operator can find the trace and its logs.
pub fn current_trace_id() -> Option<String> {
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let span_context = span.span_context();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}
