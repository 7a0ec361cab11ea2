use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Instant,
};

use http::{HeaderMap, Request, Response};
use opentelemetry::{
    KeyValue, global,
    metrics::{Counter, Histogram},
    trace::TraceContextExt as _,
};
use tower::{Layer, Service};
use tracing::{Span, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::extract_trace_context;

const CANCELLED: i32 = 1;
const UNKNOWN: i32 = 2;
const UNIMPLEMENTED: i32 = 12;

/// Latency buckets in seconds, from a cache hit to the longest allowed call.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

struct RpcMetrics {
    requests: Counter<u64>,
    duration: Histogram<f64>,
}

/// One span per RPC, named `{service}/{method}`, with OpenTelemetry's rpc.*
/// attributes and the gRPC status of the outcome, continuing the trace of
/// the incoming `traceparent`; and a request count and latency histogram
/// per method.
///
/// Build it after [`crate::init`]: the metric instruments bind to the meter
/// provider installed at construction.
#[derive(Clone)]
pub struct RpcTraceLayer {
    metrics: Arc<RpcMetrics>,
}

impl RpcTraceLayer {
    pub fn new() -> Self {
        let meter = global::meter("crm");
        let requests = meter
            .u64_counter("rpc.server.requests")
            .with_description("RPCs handled, by method and gRPC status")
            .with_unit("{request}")
            .build();
        let duration = meter
            .f64_histogram("rpc.server.call.duration")
            .with_description("Time from request headers to the final status")
            .with_unit("s")
            .with_boundaries(DURATION_BUCKETS.to_vec())
            .build();
        Self {
            metrics: Arc::new(RpcMetrics { requests, duration }),
        }
    }
}

impl Default for RpcTraceLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl std::fmt::Debug for RpcTraceLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcTraceLayer").finish_non_exhaustive()
    }
}

impl<S> Layer<S> for RpcTraceLayer {
    type Service = RpcTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcTrace {
            inner,
            metrics: Arc::clone(&self.metrics),
        }
    }
}

/// The service made by [`RpcTraceLayer`].
#[derive(Clone)]
pub struct RpcTrace<S> {
    inner: S,
    metrics: Arc<RpcMetrics>,
}

/// `/pkg.Service/Method` → (`pkg.Service`, `Method`).
fn split_path(path: &str) -> (&str, &str) {
    let path = path.strip_prefix('/').unwrap_or(path);
    path.split_once('/').unwrap_or((path, ""))
}

fn grpc_status(headers: &HeaderMap) -> Option<i32> {
    headers.get("grpc-status")?.to_str().ok()?.parse().ok()
}

impl<S, B, ResBody> Service<Request<B>> for RpcTrace<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Response = Response<TracedBody<ResBody>>;
    type Error = S::Error;
    type Future = RpcTraceFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let (service, method) = split_path(req.uri().path());
        let span = tracing::info_span!(
            "rpc",
            otel.name = %format_args!("{service}/{method}"),
            otel.kind = "server",
            otel.status_code = Empty,
            rpc.system = "grpc",
            rpc.service = service,
            rpc.method = method,
            rpc.grpc.status_code = Empty,
            trace_id = Empty,
            request_id = Empty,
        );
        let parent = extract_trace_context(req.headers());
        if parent.span().span_context().is_valid() {
            // Fails only when the span is disabled or no OpenTelemetry layer
            // is installed; then there is no trace to continue.
            let _ = span.set_parent(parent);
        }
        let otel = span.context();
        let span_context = otel.span().span_context().clone();
        if span_context.is_valid() {
            span.record("trace_id", tracing::field::display(span_context.trace_id()));
        }
        let call = CallInfo {
            service: service.to_owned(),
            method: method.to_owned(),
            start: Instant::now(),
            metrics: Arc::clone(&self.metrics),
            done: false,
            span,
        };
        let inner = {
            let _entered = call.span.enter();
            self.inner.call(req)
        };
        RpcTraceFuture {
            inner,
            call: Some(call),
        }
    }
}

/// What is needed to finish the RPC's span and metrics once its status is
/// known; dropped unfinished, the call was cancelled.
struct CallInfo {
    service: String,
    method: String,
    start: Instant,
    metrics: Arc<RpcMetrics>,
    done: bool,
    span: Span,
}

impl CallInfo {
    fn finish(&mut self, code: i32) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let elapsed = self.start.elapsed();
        self.span.record("rpc.grpc.status_code", code);
        // OpenTelemetry's rpc conventions: these codes are the server's fault.
        let server_error = matches!(code, 2 | 4 | 12 | 13 | 14 | 15);
        if server_error {
            self.span.record("otel.status_code", "ERROR");
        }
        // Unknown paths are unbounded input; don't let them mint metric series.
        let (service, method) = if code == UNIMPLEMENTED {
            ("unknown".to_owned(), "unknown".to_owned())
        } else {
            (self.service.clone(), self.method.clone())
        };
        let attributes = [
            KeyValue::new("rpc.system", "grpc"),
            KeyValue::new("rpc.service", service),
            KeyValue::new("rpc.method", method),
            KeyValue::new("rpc.grpc.status_code", i64::from(code)),
        ];
        self.metrics.requests.add(1, &attributes);
        self.metrics
            .duration
            .record(elapsed.as_secs_f64(), &attributes);
        let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
        self.span.in_scope(|| {
            if server_error {
                tracing::warn!(grpc.status_code = code, elapsed_ms, "rpc failed");
            } else {
                tracing::info!(grpc.status_code = code, elapsed_ms, "rpc finished");
            }
        });
    }
}

impl Drop for CallInfo {
    fn drop(&mut self) {
        self.finish(CANCELLED);
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`RpcTrace`].
    pub struct RpcTraceFuture<F> {
        #[pin]
        inner: F,
        call: Option<CallInfo>,
    }
}

impl<F, ResBody, E> Future for RpcTraceFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = Result<Response<TracedBody<ResBody>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = {
            let _entered = this.call.as_ref().map(|c| c.span.enter());
            ready!(this.inner.poll(cx))
        };
        let mut call = this.call.take();
        Poll::Ready(match result {
            Ok(response) => {
                // Trailers-only response (an error, usually): the status is
                // already known. Otherwise it arrives in the trailers.
                if let Some(code) = grpc_status(response.headers())
                    && let Some(mut call) = call.take()
                {
                    call.finish(code);
                }
                Ok(response.map(|inner| TracedBody { inner, call }))
            }
            Err(e) => {
                if let Some(mut call) = call {
                    call.finish(UNKNOWN);
                }
                Err(e)
            }
        })
    }
}

pin_project_lite::pin_project! {
    /// A response body that records the gRPC status of its trailers on the
    /// RPC's span and metrics.
    pub struct TracedBody<B> {
        #[pin]
        inner: B,
        call: Option<CallInfo>,
    }
}

impl<B: http_body::Body> http_body::Body for TracedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        // Streams run their code while the body is polled: log inside the span.
        let polled = {
            let _entered = this.call.as_ref().map(|c| c.span.enter());
            this.inner.poll_frame(cx)
        };
        let outcome = match &polled {
            Poll::Ready(Some(Ok(frame))) => frame
                .trailers_ref()
                .map(|trailers| grpc_status(trailers).unwrap_or(UNKNOWN)),
            Poll::Ready(Some(Err(_))) => Some(UNKNOWN),
            // A gRPC response always ends with a status; without one the
            // peer broke the protocol.
            Poll::Ready(None) => Some(UNKNOWN),
            Poll::Pending => None,
        };
        if let Some(code) = outcome
            && let Some(call) = this.call.as_mut()
        {
            call.finish(code);
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::convert::Infallible;

    use tower::{ServiceExt as _, service_fn};

    use super::*;
    use crate::{TelemetryConfig, current_trace_id, init, inject_trace_context};

    const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
    const CALLER_SPAN_ID: &str = "00f067aa0ba902b7";

    /// Answers with what the handler saw: its trace id and the traceparent
    /// it would forward.
    async fn handler(_req: Request<()>) -> Result<Response<()>, Infallible> {
        let mut headers = HeaderMap::new();
        inject_trace_context(&mut headers);
        let mut response = Response::new(());
        if let Some(id) = current_trace_id() {
            response
                .headers_mut()
                .insert("x-trace-id", id.parse().unwrap());
        }
        if let Some(tp) = headers.get("traceparent") {
            response
                .headers_mut()
                .insert("x-forwarded-traceparent", tp.clone());
        }
        Ok(response)
    }

    fn header(response: &Response<TracedBody<()>>, name: &str) -> Option<String> {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    }

    #[tokio::test]
    async fn continues_the_incoming_trace() {
        let _guard = init(&TelemetryConfig::default()).unwrap();
        let svc = RpcTraceLayer::new().layer(service_fn(handler));
        let request = Request::builder()
            .uri("/crm.leads.v1.LeadService/GetLead")
            .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN_ID}-01"))
            .body(())
            .unwrap();

        let response = svc.oneshot(request).await.unwrap();

        assert_eq!(header(&response, "x-trace-id").as_deref(), Some(TRACE_ID));
        // Forwarded with the same trace but this RPC's span as the parent.
        let forwarded = header(&response, "x-forwarded-traceparent").unwrap();
        assert!(
            forwarded.starts_with(&format!("00-{TRACE_ID}-")),
            "{forwarded}"
        );
        assert!(!forwarded.contains(CALLER_SPAN_ID), "{forwarded}");
    }

    #[tokio::test]
    async fn starts_a_trace_when_none_comes_in() {
        let _guard = init(&TelemetryConfig::default()).unwrap();
        let svc = RpcTraceLayer::new().layer(service_fn(handler));
        let request = Request::builder()
            .uri("/crm.leads.v1.LeadService/GetLead")
            .body(())
            .unwrap();

        let response = svc.oneshot(request).await.unwrap();

        let id = header(&response, "x-trace-id").unwrap();
        assert_eq!(id.len(), 32);
        assert_ne!(id, TRACE_ID);
    }

    /// A response body that is only trailers.
    struct Trailers(Option<HeaderMap>);

    impl http_body::Body for Trailers {
        type Data = std::io::Cursor<Vec<u8>>;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
            Poll::Ready(self.0.take().map(|t| Ok(http_body::Frame::trailers(t))))
        }
    }

    /// Collects every `rpc.grpc.status_code` recorded on a span.
    #[derive(Clone, Default)]
    struct Codes(Arc<std::sync::Mutex<Vec<i64>>>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Codes {
        fn on_record(
            &self,
            _span: &tracing::span::Id,
            values: &tracing::span::Record<'_>,
            _ctx: tracing_subscriber::layer::Context<'_, S>,
        ) {
            struct Visit<'a>(&'a std::sync::Mutex<Vec<i64>>);
            impl tracing::field::Visit for Visit<'_> {
                fn record_i64(&mut self, field: &tracing::field::Field, value: i64) {
                    if field.name() == "rpc.grpc.status_code" {
                        self.0.lock().unwrap().push(value);
                    }
                }
                fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
            }
            values.record(&mut Visit(&self.0));
        }
    }

    #[test]
    fn records_the_status_from_trailers_or_headers() {
        use tracing_subscriber::layer::SubscriberExt as _;

        let codes = Codes::default();
        let subscriber = tracing_subscriber::registry().with(codes.clone());
        tracing::subscriber::with_default(subscriber, || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            rt.block_on(async {
                // Status in the trailers, after the body.
                let svc = RpcTraceLayer::new().layer(service_fn(|_req: Request<()>| async {
                    let mut trailers = HeaderMap::new();
                    trailers.insert("grpc-status", "5".parse().unwrap());
                    Ok::<_, Infallible>(Response::new(Trailers(Some(trailers))))
                }));
                let response = svc.oneshot(Request::new(())).await.unwrap();
                let mut body = response.into_body();
                let frame =
                    std::future::poll_fn(|cx| http_body::Body::poll_frame(Pin::new(&mut body), cx))
                        .await;
                assert!(frame.is_some());

                // Trailers-only: the status is in the headers.
                let svc = RpcTraceLayer::new().layer(service_fn(|_req: Request<()>| async {
                    let mut response = Response::new(Trailers(None));
                    response
                        .headers_mut()
                        .insert("grpc-status", "7".parse().unwrap());
                    Ok::<_, Infallible>(response)
                }));
                drop(svc.oneshot(Request::new(())).await.unwrap());
            });
        });

        assert_eq!(*codes.0.lock().unwrap(), vec![5, 7]);
    }

    #[test]
    fn splits_grpc_paths() {
        assert_eq!(
            split_path("/crm.leads.v1.LeadService/GetLead"),
            ("crm.leads.v1.LeadService", "GetLead")
        );
        assert_eq!(split_path("/nonsense"), ("nonsense", ""));
    }
}
