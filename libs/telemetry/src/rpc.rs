use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll, ready},
    time::Instant,
};

use http::{HeaderMap, Request, Response};
use opentelemetry::{KeyValue, metrics::Histogram, trace::TraceContextExt as _};
use tower::{Layer, Service};
use tracing::{Span, field::Empty};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::{
    component::{component_of, meter, with_component},
    extract_trace_context, inject_trace_context, register_component,
};

const CANCELLED: i32 = 1;
const UNKNOWN: i32 = 2;
const UNIMPLEMENTED: i32 = 12;
const UNAVAILABLE: i32 = 14;

/// Latency buckets in seconds, from a cache hit to the longest allowed call.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The server metric: OpenTelemetry's RPC semantic conventions (v1.37+),
/// seconds. Its count per `rpc.grpc.status_code` is the rate and the
/// errors, its buckets the duration: RED from one instrument.
pub const SERVER_DURATION: &str = "rpc.server.call.duration";
/// The client metric, likewise.
pub const CLIENT_DURATION: &str = "rpc.client.call.duration";

/// Health probes and reflection make no spans and no metrics: a probe every
/// few seconds per pod would bury the traces that matter.
fn is_infrastructure(service: &str) -> bool {
    service.starts_with("grpc.health.") || service.starts_with("grpc.reflection.")
}

fn duration(component: &str, name: &'static str, description: &'static str) -> Histogram<f64> {
    meter(component)
        .f64_histogram(name)
        .with_description(description)
        .with_unit("s")
        .with_boundaries(DURATION_BUCKETS.to_vec())
        .build()
}

/// One SERVER span per RPC, named `{service}/{method}`, with OpenTelemetry's
/// rpc.* attributes and the gRPC status of the outcome, continuing the
/// trace of the incoming `traceparent`; and `rpc.server.call.duration` per
/// method and status, under the component's own `service.name`.
///
/// Build it after [`crate::init`]: the metric instruments bind to the meter
/// provider installed at construction.
#[derive(Clone)]
pub struct RpcTraceLayer {
    component: Arc<str>,
    duration: Histogram<f64>,
}

impl RpcTraceLayer {
    /// The layer of the component serving `name` (`gateway`, or a gRPC
    /// service name such as `crm.leads.v1.LeadService`).
    pub fn new(name: &str) -> Self {
        let component = component_of(name);
        register_component(component);
        Self {
            component: component.into(),
            duration: duration(
                component,
                SERVER_DURATION,
                "Time from request headers to the final status, by method and gRPC status",
            ),
        }
    }
}

impl std::fmt::Debug for RpcTraceLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcTraceLayer")
            .field("component", &self.component)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for RpcTraceLayer {
    type Service = RpcTrace<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcTrace {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`RpcTraceLayer`].
#[derive(Clone)]
pub struct RpcTrace<S> {
    inner: S,
    layer: RpcTraceLayer,
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
        if is_infrastructure(service) {
            return RpcTraceFuture {
                inner: self.inner.call(req),
                call: None,
                error_code: UNKNOWN,
            };
        }
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
        // The caller's context if it sent a valid one, else a new trace (not
        // whatever span happens to be current here); marked as this
        // component's so its spans export under its name.
        let parent = extract_trace_context(req.headers());
        let parent = if parent.span().span_context().is_valid() {
            parent
        } else {
            opentelemetry::Context::new()
        };
        // Fails only when the span is disabled or no OpenTelemetry layer
        // is installed; then there is no trace to continue.
        let _ = span.set_parent(with_component(parent, &self.layer.component));
        let otel = span.context();
        let span_context = otel.span().span_context().clone();
        if span_context.is_valid() {
            span.record("trace_id", tracing::field::display(span_context.trace_id()));
        }
        let call = CallInfo::new(service, method, self.layer.duration.clone(), span, None);
        let inner = {
            let _entered = call.span.enter();
            self.inner.call(req)
        };
        RpcTraceFuture {
            inner,
            call: Some(call),
            error_code: UNKNOWN,
        }
    }
}

/// One CLIENT span per outbound RPC, the child of the current span, whose
/// context is the one sent on (`traceparent`), so that a trace shows the
/// edge caller → callee; and `rpc.client.call.duration` per method and
/// status. Wrap the channel to a peer in it.
#[derive(Clone)]
pub struct RpcClientLayer {
    component: Arc<str>,
    /// `server.address` and `server.port` of the peer.
    server: Arc<(String, Option<i64>)>,
    duration: Histogram<f64>,
}

impl RpcClientLayer {
    /// Calls made by `component` to the peer at `url`.
    pub fn new(component: &str, url: &str) -> Self {
        let component = component_of(component);
        register_component(component);
        let server = url
            .parse::<http::Uri>()
            .ok()
            .map(|uri| {
                (
                    uri.host().unwrap_or_default().to_owned(),
                    uri.port_u16().map(i64::from),
                )
            })
            .unwrap_or_default();
        Self {
            component: component.into(),
            server: Arc::new(server),
            duration: duration(
                component,
                CLIENT_DURATION,
                "Time from sending the request to the final status, by method and gRPC status",
            ),
        }
    }
}

impl std::fmt::Debug for RpcClientLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcClientLayer")
            .field("component", &self.component)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for RpcClientLayer {
    type Service = RpcClient<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RpcClient {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`RpcClientLayer`].
#[derive(Clone)]
pub struct RpcClient<S> {
    inner: S,
    layer: RpcClientLayer,
}

impl<S: std::fmt::Debug> std::fmt::Debug for RpcClient<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcClient")
            .field("inner", &self.inner)
            .field("layer", &self.layer)
            .finish()
    }
}

impl<S, B, ResBody> Service<Request<B>> for RpcClient<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Response = Response<TracedBody<ResBody>>;
    type Error = S::Error;
    type Future = RpcTraceFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let path = req.uri().path().to_owned();
        let (service, method) = split_path(&path);
        let (address, port) = &*self.layer.server;
        let span = tracing::info_span!(
            "rpc",
            otel.name = %format_args!("{service}/{method}"),
            otel.kind = "client",
            otel.status_code = Empty,
            rpc.system = "grpc",
            rpc.service = service,
            rpc.method = method,
            rpc.grpc.status_code = Empty,
            server.address = address.as_str(),
            server.port = port,
        );
        let parent = Span::current().context();
        let _ = span.set_parent(with_component(parent, &self.layer.component));
        // The callee continues this span, not the caller's.
        span.in_scope(|| inject_trace_context(req.headers_mut()));
        let call = CallInfo::new(
            service,
            method,
            self.layer.duration.clone(),
            span,
            Some(address.clone()),
        );
        let inner = {
            let _entered = call.span.enter();
            self.inner.call(req)
        };
        RpcTraceFuture {
            inner,
            call: Some(call),
            // The call never got an answer: the peer is out of reach.
            error_code: UNAVAILABLE,
        }
    }
}

/// What is needed to finish the RPC's span and metrics once its status is
/// known; dropped unfinished, the call was cancelled.
struct CallInfo {
    service: String,
    method: String,
    start: Instant,
    duration: Histogram<f64>,
    done: bool,
    span: Span,
    /// The peer of a client call; `None` for a served one.
    peer: Option<String>,
}

impl CallInfo {
    fn new(
        service: &str,
        method: &str,
        duration: Histogram<f64>,
        span: Span,
        peer: Option<String>,
    ) -> Self {
        CallInfo {
            service: service.to_owned(),
            method: method.to_owned(),
            start: Instant::now(),
            duration,
            done: false,
            span,
            peer,
        }
    }

    fn finish(&mut self, code: i32) {
        if std::mem::replace(&mut self.done, true) {
            return;
        }
        let elapsed = self.start.elapsed();
        self.span.record("rpc.grpc.status_code", code);
        // OpenTelemetry's rpc conventions: these codes are the server's
        // fault; a client counts every non-OK status as an error.
        let error = if self.peer.is_some() {
            code != 0
        } else {
            matches!(code, 2 | 4 | 12 | 13 | 14 | 15)
        };
        if error {
            self.span.record("otel.status_code", "ERROR");
        }
        // Unknown paths are unbounded input; don't let them mint metric series.
        let (service, method) = if code == UNIMPLEMENTED {
            ("unknown".to_owned(), "unknown".to_owned())
        } else {
            (self.service.clone(), self.method.clone())
        };
        let mut attributes = vec![
            KeyValue::new("rpc.system", "grpc"),
            KeyValue::new("rpc.service", service),
            KeyValue::new("rpc.method", method),
            KeyValue::new("rpc.grpc.status_code", i64::from(code)),
        ];
        if let Some(peer) = &self.peer {
            attributes.push(KeyValue::new("server.address", peer.clone()));
        }
        self.duration.record(elapsed.as_secs_f64(), &attributes);
        let elapsed_ms = elapsed.as_secs_f64() * 1000.0;
        self.span.in_scope(|| {
            if self.peer.is_some() {
                tracing::debug!(grpc.status_code = code, elapsed_ms, "call finished");
            } else if error {
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
    /// The response future of [`RpcTrace`] and [`RpcClient`].
    pub struct RpcTraceFuture<F> {
        #[pin]
        inner: F,
        call: Option<CallInfo>,
        // The status of a call that failed without a response.
        error_code: i32,
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
                    call.finish(*this.error_code);
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
        let svc = RpcTraceLayer::new("leads").layer(service_fn(handler));
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
        let svc = RpcTraceLayer::new("leads").layer(service_fn(handler));
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
                let svc =
                    RpcTraceLayer::new("leads").layer(service_fn(|_req: Request<()>| async {
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
                let svc =
                    RpcTraceLayer::new("leads").layer(service_fn(|_req: Request<()>| async {
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
