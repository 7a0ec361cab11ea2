use std::{
    collections::{BTreeMap, HashMap},
    convert::Infallible,
    pin::Pin,
    sync::{
        Arc, Mutex, OnceLock, PoisonError,
        atomic::{AtomicUsize, Ordering},
    },
    task::{Context, Poll, ready},
    time::Duration,
};

use bytes::Bytes;
use crm_server::{
    Deadline, Passthrough,
    grpc::{GRPC_TIMEOUT, encode_grpc_timeout, error_response, error_status},
};
use crm_telemetry::RpcClientLayer;
use http::{HeaderMap, HeaderName, Request, Response, header};
use tonic::{
    Code, Status,
    body::Body,
    codegen::StdError,
    transport::{Channel, ClientTlsConfig, Endpoint},
};
use tonic_types::{ErrorDetails, StatusExt as _};
use tower::{Layer as _, Service, ServiceExt as _};

use crate::{
    BoxFuture, ERROR_DOMAIN, GatewayError, UpstreamConfig,
    first_message::{self, FirstMessage, Replay},
};

/// How long connecting to an upstream may take before the call fails
/// UNAVAILABLE (the call's deadline may cut it shorter).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connection-level headers of HTTP/1 that must not be relayed (RFC 9113
/// §8.2.2); `te: trailers` is the one gRPC needs and is kept.
const HOP_BY_HOP: [header::HeaderName; 5] = [
    header::CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// The last service of the stack: picks the upstream by the package of the
/// method path (or, for a multiplexed package, by the service the call
/// names) and relays the call, bodies streamed through untouched.
#[derive(Clone)]
pub struct Proxy {
    upstreams: Arc<BTreeMap<String, Upstream>>,
    /// The largest status relayed as is.
    max_status_bytes: usize,
    /// Package -> how a call names the service to route to.
    multiplexed: Arc<BTreeMap<String, RoutingKey>>,
    /// The largest first message read to find a routing field.
    max_message_bytes: usize,
}

/// How a call to a multiplexed package names its service.
#[derive(Debug, Clone)]
struct RoutingKey {
    /// The metadata key, e.g. `x-crm-source`.
    header: HeaderName,
    /// The request field, e.g. `source`, if the package's requests have one.
    field: Option<RoutingField>,
}

#[derive(Debug, Clone)]
struct RoutingField {
    name: String,
    /// Its number in each method's request message, by method path.
    numbers: BTreeMap<String, u32>,
}

/// One service's connections: one for unary calls, and a pool for
/// streams, so that stalled streams never share a flow-control window with
/// unary calls.
struct Upstream {
    unary: Channel,
    streams: StreamPool,
    /// A CLIENT span and metrics per call relayed.
    traced: RpcClientLayer,
}

/// Connections for streams, each carrying at most `per_connection` of them.
struct StreamPool {
    endpoint: Endpoint,
    per_connection: usize,
    connections: Mutex<Vec<(Channel, Arc<AtomicUsize>)>>,
}

/// A stream's place on its connection, given back when its response ends.
struct Lease(Arc<AtomicUsize>);

impl Drop for Lease {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

impl StreamPool {
    /// A connection with room for one more stream, opened if none has.
    fn checkout(&self) -> (Channel, Lease) {
        let mut connections = self
            .connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Counts only rise under this lock: an idle connection seen here
        // stays idle, and all idle ones but one are closed.
        let mut idle_kept = false;
        connections.retain(|(_, open)| {
            let keep = open.load(Ordering::Relaxed) > 0 || !idle_kept;
            idle_kept |= open.load(Ordering::Relaxed) == 0;
            keep
        });
        let free = connections
            .iter()
            .find(|(_, open)| open.load(Ordering::Relaxed) < self.per_connection)
            .map(|(channel, open)| (channel.clone(), Arc::clone(open)));
        let (channel, open) = free.unwrap_or_else(|| {
            let opened = (self.endpoint.connect_lazy(), Arc::new(AtomicUsize::new(0)));
            connections.push(opened.clone());
            opened
        });
        open.fetch_add(1, Ordering::Relaxed);
        (channel, Lease(open))
    }
}

impl Proxy {
    /// Lazily connected channels per upstream (see [`UpstreamConfig`]): a
    /// service that is not up yet makes its calls UNAVAILABLE, not the
    /// gateway's start fail.
    pub fn new(
        upstreams: &BTreeMap<String, String>,
        cfg: &UpstreamConfig,
    ) -> Result<Self, GatewayError> {
        Self::secured(upstreams, cfg, &ClientTlsConfig::new().with_webpki_roots())
    }

    /// [`Proxy::new`], reaching `https://` upstreams with `tls`
    /// (`client.tls`: the CA to trust, the certificate for mutual TLS).
    pub fn secured(
        upstreams: &BTreeMap<String, String>,
        cfg: &UpstreamConfig,
        tls: &ClientTlsConfig,
    ) -> Result<Self, GatewayError> {
        // The largest window HTTP/2 allows.
        const MAX_WINDOW: u32 = (1 << 31) - 1;
        let per_connection = cfg.streams_per_connection.max(1);
        let stream_connection_window = u32::try_from(per_connection)
            .unwrap_or(u32::MAX)
            .saturating_mul(cfg.stream_window_bytes)
            .min(MAX_WINDOW);
        let mut channels = BTreeMap::new();
        for (package, url) in upstreams {
            let endpoint =
                Endpoint::from_shared(url.clone()).map_err(|source| GatewayError::Upstream {
                    package: package.clone(),
                    url: url.clone(),
                    source,
                })?;
            let key = format!("gateway.upstreams.\"{package}\"");
            let endpoint = crm_server::secure(endpoint, url, tls, &key)?
                .connect_timeout(CONNECT_TIMEOUT)
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(20))
                .keep_alive_while_idle(true)
                .http2_max_header_list_size(cfg.max_header_list_bytes);
            let unary = endpoint
                .clone()
                .initial_stream_window_size(cfg.unary_stream_window_bytes.min(MAX_WINDOW))
                .initial_connection_window_size(cfg.unary_connection_window_bytes.min(MAX_WINDOW))
                .connect_lazy();
            let streams = StreamPool {
                endpoint: endpoint
                    .initial_stream_window_size(cfg.stream_window_bytes.min(MAX_WINDOW))
                    .initial_connection_window_size(stream_connection_window),
                per_connection,
                connections: Mutex::new(Vec::new()),
            };
            let traced = RpcClientLayer::new("gateway", url);
            channels.insert(
                package.clone(),
                Upstream {
                    unary,
                    streams,
                    traced,
                },
            );
        }
        Ok(Self {
            upstreams: Arc::new(channels),
            max_status_bytes: cfg.max_status_bytes,
            multiplexed: Arc::new(BTreeMap::new()),
            max_message_bytes: usize::MAX,
        })
    }

    /// Routes calls to each package of `multiplexed` by its metadata key:
    /// `x-crm-source: leads` goes to the `crm.leads.v1` upstream.
    pub fn multiplexed(
        mut self,
        multiplexed: &BTreeMap<String, String>,
    ) -> Result<Self, GatewayError> {
        let mut keys = BTreeMap::new();
        for (package, key) in multiplexed {
            let header =
                HeaderName::from_bytes(key.as_bytes()).map_err(|_| GatewayError::MultiplexKey {
                    package: package.clone(),
                    key: key.clone(),
                })?;
            keys.insert(
                package.clone(),
                RoutingKey {
                    header,
                    field: None,
                },
            );
        }
        self.multiplexed = Arc::new(keys);
        Ok(self)
    }

    /// Lets calls to each package of `fields` (one of the `multiplexed`
    /// ones) name their service in the request as well: the named `string`
    /// field of the first request message (`SubscribeRequest.source`),
    /// read from at most `max_message_bytes` of it.
    pub fn routing_fields(
        mut self,
        fields: &BTreeMap<String, String>,
        max_message_bytes: usize,
    ) -> Result<Self, GatewayError> {
        let mut keys = (*self.multiplexed).clone();
        for (package, name) in fields {
            let invalid = |reason: String| GatewayError::MultiplexField {
                package: package.clone(),
                field: name.clone(),
                reason,
            };
            let key = keys
                .get_mut(package)
                .ok_or_else(|| invalid("the package has no gateway.multiplexed key".into()))?;
            let numbers = crm_proto::request_string_fields(package, name).map_err(invalid)?;
            key.field = Some(RoutingField {
                name: name.clone(),
                numbers,
            });
        }
        self.multiplexed = Arc::new(keys);
        self.max_message_bytes = max_message_bytes;
        Ok(self)
    }

    /// The upstream package of a call to `package`: itself, or for a
    /// multiplexed package the service the call names. Reads the first
    /// request message when the package's requests name it too; the body
    /// that comes back replays whatever was read.
    async fn target<B>(
        &self,
        path: &str,
        package: &str,
        headers: &HeaderMap,
        body: B,
    ) -> Result<(String, Replay<B>), Status>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<StdError>,
    {
        let Some(key) = self.multiplexed.get(package) else {
            return Ok((package.to_owned(), Replay::untouched(body)));
        };
        let header = headers
            .get(&key.header)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let field = key
            .field
            .as_ref()
            .and_then(|f| Some((f.name.as_str(), *f.numbers.get(path)?)));
        let Some((field, number)) = field else {
            let routed = Named {
                header: (&key.header, header),
                field: None,
                compressed: false,
            };
            return Ok((self.resolve(package, &routed)?, Replay::untouched(body)));
        };
        let (first, body) = first_message::read(body, self.max_message_bytes).await?;
        let value = match &first {
            FirstMessage::Plain(message) => first_message::string_field(message, number)
                .map_err(|_| {
                    error_status(
                        Code::InvalidArgument,
                        "the request message is not valid protobuf",
                        "MALFORMED_REQUEST",
                        ERROR_DOMAIN,
                    )
                })?
                .unwrap_or(""),
            // Not readable here: the metadata alone decides.
            FirstMessage::Compressed | FirstMessage::Absent => "",
        };
        let routed = Named {
            header: (&key.header, header),
            field: Some((field, value)),
            compressed: first == FirstMessage::Compressed,
        };
        Ok((self.resolve(package, &routed)?, body))
    }

    /// The upstream package the call names, or why it names none.
    fn resolve(&self, package: &str, named: &Named<'_>) -> Result<String, Status> {
        let (key, header) = named.header;
        let (field, body) = named.field.unwrap_or(("", ""));
        let what = if field.is_empty() {
            format!("metadata {key}")
        } else {
            format!("the request's `{field}` field (or metadata {key})")
        };
        let known: Vec<&str> = self
            .upstreams
            .keys()
            .filter(|p| !self.multiplexed.contains_key(*p))
            .filter_map(|p| p.strip_prefix("crm.")?.strip_suffix(".v1"))
            .collect();
        let refusal = |reason: &str, message: String| {
            let mut details = ErrorDetails::with_error_info(
                reason,
                ERROR_DOMAIN,
                HashMap::from([
                    ("key".to_owned(), key.to_string()),
                    ("field".to_owned(), field.to_owned()),
                ]),
            );
            if !field.is_empty() {
                details.add_bad_request_violation(field, message.clone());
            }
            Status::with_error_details(Code::InvalidArgument, message, details)
        };
        if !body.is_empty() && !header.is_empty() && body != header {
            return Err(refusal(
                "ROUTING_KEY_CONFLICT",
                format!(
                    "the request's `{field}` ({}) and metadata {key} ({}) name different services: \
                     send one of them, or both alike",
                    shown(body),
                    shown(header)
                ),
            ));
        }
        let value = if body.is_empty() { header } else { body };
        // One plain name: the value must not reach into another package.
        let plain = !value.is_empty()
            && value
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        let target = format!("crm.{value}.v1");
        if plain && !self.multiplexed.contains_key(&target) && self.upstreams.contains_key(&target)
        {
            return Ok(target);
        }
        let (reason, verdict) = if value.is_empty() && named.compressed {
            (
                "ROUTING_KEY_MISSING",
                "is required: the gateway does not decompress a request to read the field, \
                 so a compressed one needs the metadata",
            )
        } else if value.is_empty() {
            ("ROUTING_KEY_MISSING", "is required")
        } else {
            ("ROUTING_KEY_UNKNOWN", "names no service")
        };
        Err(refusal(
            reason,
            format!(
                "{what} {verdict}: a call to {package} goes to the service it names, one of: {}",
                known.join(", ")
            ),
        ))
    }
}

/// What a call to a multiplexed package says about its service.
struct Named<'a> {
    /// The metadata key and its value ("" when absent).
    header: (&'a HeaderName, &'a str),
    /// The request field's name and value ("" when absent), if the
    /// package's requests have one.
    field: Option<(&'a str, &'a str)>,
    /// The first message was compressed, so the field could not be read.
    compressed: bool,
}

/// A caller's value quoted in an error, cut short: replies stay bounded.
fn shown(value: &str) -> String {
    const MAX: usize = 64;
    match value.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{:?}...", &value[..cut]),
        None => format!("{value:?}"),
    }
}

/// `/crm.leads.v1.LeadService/GetLead` → `crm.leads.v1`.
fn package_of(path: &str) -> Option<&str> {
    let service = path.strip_prefix('/')?.split('/').next()?;
    service.rsplit_once('.').map(|(package, _)| package)
}

impl<B> Service<Request<B>> for Proxy
where
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<StdError>,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let proxy = self.clone();
        Box::pin(async move { Ok(proxy.relay(req).await) })
    }
}

impl Proxy {
    async fn relay<B>(self, req: Request<B>) -> Response<Body>
    where
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Into<StdError>,
    {
        let (parts, body) = req.into_parts();
        let path = parts.uri.path();
        let package = package_of(path).unwrap_or_default();
        let (package, body) = match self.target(path, package, &parts.headers, body).await {
            Ok(routed) => routed,
            Err(status) => return error_response(status),
        };
        let Some(upstream) = self.upstreams.get(&package) else {
            let status = error_status(
                Code::Unimplemented,
                format!("no service behind the gateway serves {path}"),
                "UNKNOWN_PACKAGE",
                ERROR_DOMAIN,
            );
            return error_response(status);
        };
        let traced = upstream.traced.clone();
        let (channel, lease) = if crm_server::is_streaming(path) {
            let (channel, lease) = upstream.streams.checkout();
            (channel, Some(lease))
        } else {
            (upstream.unary.clone(), None)
        };

        let failed = Arc::new(OnceLock::new());
        let body = Tracked {
            inner: body,
            failed: Arc::clone(&failed),
        };
        let deadline = parts.extensions.get::<Deadline>().copied();
        // Only the head goes on: extensions are this process's business.
        let mut upstream = Request::new(Body::new(body));
        *upstream.method_mut() = parts.method;
        *upstream.uri_mut() = parts.uri;
        *upstream.version_mut() = parts.version;
        let headers = upstream.headers_mut();
        *headers = parts.headers;
        for name in HOP_BY_HOP {
            headers.remove(name);
        }
        // The upstream gets what is left of the budget, not the client's
        // original figure: time spent here is already gone.
        if let Some(deadline) = deadline {
            headers.insert(GRPC_TIMEOUT, encode_grpc_timeout(deadline.remaining()));
        }

        // The CLIENT span's context goes on with the call.
        match traced.layer(channel).oneshot(upstream).await {
            Ok(response) => {
                let max = self.max_status_bytes;
                let (mut parts, body) = response.into_parts();
                // A trailers-only reply has its status in the headers.
                bound_status(&mut parts.headers, max);
                parts.extensions.insert(Passthrough);
                let body = Relayed {
                    inner: body,
                    max_status_bytes: max,
                    _lease: lease,
                };
                Response::from_parts(parts, Body::new(body))
            }
            Err(e) => {
                let expired = deadline.is_some_and(|d| d.remaining().is_zero());
                let status = if let Some(status) = failed.get() {
                    // The call failed because its request stream did
                    // (a message over the size limit, a client reset):
                    // not the upstream's fault.
                    tracing::debug!(package, %status, "request stream failed");
                    status.clone()
                } else if expired {
                    error_status(
                        Code::DeadlineExceeded,
                        "the call's deadline passed before the upstream answered",
                        "DEADLINE_EXCEEDED",
                        ERROR_DOMAIN,
                    )
                } else {
                    tracing::warn!(package, error = %ErrorChain(&e), "upstream unreachable");
                    error_status(
                        Code::Unavailable,
                        format!("the service for {package} cannot be reached; retry with backoff"),
                        "UPSTREAM_UNAVAILABLE",
                        ERROR_DOMAIN,
                    )
                };
                error_response(status)
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// The request body on its way upstream, remembering why it failed.
    struct Tracked<B> {
        #[pin]
        inner: B,
        failed: Arc<OnceLock<Status>>,
    }
}

impl<B> http_body::Body for Tracked<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<StdError>,
{
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, Status>>> {
        let this = self.project();
        let frame = ready!(this.inner.poll_frame(cx));
        let failed = this.failed;
        Poll::Ready(
            frame.map(|r| {
                r.map_err(|e| failed.get_or_init(|| Status::from_error(e.into())).clone())
            }),
        )
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// An upstream's response body on its way to the client: its status
    /// bounded, its stream's place on the upstream connection kept.
    struct Relayed<B> {
        #[pin]
        inner: B,
        max_status_bytes: usize,
        _lease: Option<Lease>,
    }
}

impl<B> http_body::Body for Relayed<B>
where
    B: http_body::Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Bytes>, B::Error>>> {
        let this = self.project();
        let mut frame = ready!(this.inner.poll_frame(cx));
        if let Some(Ok(frame)) = &mut frame
            && let Some(trailers) = frame.trailers_mut()
        {
            bound_status(trailers, *this.max_status_bytes);
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

/// Cuts a status over `max` bytes (message and details as sent) down to
/// its code, the start of its message and its `ErrorInfo` reason and
/// domain, marked `truncated`: relayed whole, it could exceed what the
/// client accepts as metadata.
fn bound_status(headers: &mut HeaderMap, max: usize) {
    const MESSAGE: &str = "grpc-message";
    const DETAILS: &str = "grpc-status-details-bin";
    let size: usize = [MESSAGE, DETAILS]
        .iter()
        .filter_map(|name| headers.get(*name))
        .map(|value| value.len())
        .sum();
    if size <= max {
        return;
    }
    let Some(status) = Status::from_header_map(headers) else {
        return;
    };
    let mut details = ErrorDetails::new();
    if let Some(info) = status.get_details_error_info() {
        details.set_error_info(
            clip(&info.reason, 64),
            clip(&info.domain, 64),
            HashMap::from([("truncated".to_owned(), "true".to_owned())]),
        );
    }
    let bounded = Status::with_error_details(status.code(), clip(status.message(), 512), details);
    tracing::warn!(
        size,
        max,
        code = ?status.code(),
        "an upstream's status is over gateway.upstream.max_status_bytes; relayed cut down"
    );
    headers.remove(MESSAGE);
    headers.remove(DETAILS);
    if bounded.add_header(headers).is_err() {
        headers.remove(MESSAGE);
    }
}

/// `text` cut to at most `max` bytes on a character boundary.
fn clip(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut cut = max.saturating_sub(3);
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}...", &text[..cut])
}

/// Displays an error with its sources: tonic's own says only "transport error".
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(err) = source {
            write!(f, ": {err}")?;
            source = err.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_by_the_package_of_the_service() {
        assert_eq!(
            package_of("/crm.leads.v1.LeadService/GetLead"),
            Some("crm.leads.v1")
        );
        assert_eq!(
            package_of("/grpc.health.v1.Health/Watch"),
            Some("grpc.health.v1")
        );
        assert_eq!(package_of("/Unpackaged/Call"), None);
        assert_eq!(package_of("no-slash"), None);
    }

    #[test]
    fn a_multiplex_key_must_be_a_metadata_name() {
        let proxy =
            || Proxy::new(&BTreeMap::new(), &UpstreamConfig::default()).map_err(|e| e.to_string());
        let bad = BTreeMap::from([("crm.events.v1".to_owned(), "x crm source".to_owned())]);
        let err = proxy()
            .and_then(|p| p.multiplexed(&bad).map_err(|e| e.to_string()))
            .err()
            .unwrap_or_default();
        assert!(err.contains("gateway.multiplexed"), "{err}");
        let good = BTreeMap::from([("crm.events.v1".to_owned(), "x-crm-source".to_owned())]);
        assert!(
            proxy()
                .and_then(|p| p.multiplexed(&good).map_err(|e| e.to_string()))
                .is_ok()
        );
    }

    /// A proxy for the events package with a leads upstream (never
    /// connected to), and a call's first message framed as gRPC.
    fn events_proxy() -> Proxy {
        let upstreams =
            BTreeMap::from([("crm.leads.v1".to_owned(), "http://127.0.0.1:9".to_owned())]);
        let keys = BTreeMap::from([("crm.events.v1".to_owned(), "x-crm-source".to_owned())]);
        let fields = BTreeMap::from([("crm.events.v1".to_owned(), "source".to_owned())]);
        Proxy::new(&upstreams, &UpstreamConfig::default())
            .and_then(|p| p.multiplexed(&keys))
            .and_then(|p| p.routing_fields(&fields, 1024))
            .map_err(|e| e.to_string())
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn framed(flag: u8, message: &[u8]) -> String {
        let mut bytes = vec![flag, 0, 0, 0, u8::try_from(message.len()).unwrap_or(0)];
        bytes.extend(message);
        String::from_utf8(bytes).unwrap_or_default()
    }

    async fn route(header: Option<&str>, body: String) -> Result<String, Status> {
        let mut headers = HeaderMap::new();
        if let Some(value) = header.and_then(|v| v.parse().ok()) {
            headers.insert("x-crm-source", value);
        }
        let path = "/crm.events.v1.EventService/Subscribe";
        events_proxy()
            .target(path, "crm.events.v1", &headers, body)
            .await
            .map(|(target, _)| target)
    }

    #[tokio::test]
    async fn a_compressed_or_malformed_first_message_is_not_guessed_at() {
        // Compressed: the field cannot be read, the metadata decides.
        let compressed = framed(1, b"zzz");
        assert_eq!(
            route(Some("leads"), compressed.clone())
                .await
                .ok()
                .as_deref(),
            Some("crm.leads.v1")
        );
        let status = route(None, compressed)
            .await
            .err()
            .unwrap_or_else(|| Status::ok(""));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(status.message().contains("compressed"), "{status:?}");

        // Not protobuf: refused as such, whatever the metadata says.
        let status = route(Some("leads"), framed(0, &[0x1a, 9, b'x']))
            .await
            .err()
            .unwrap_or_else(|| Status::ok(""));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(
            status.get_details_error_info().map(|i| i.reason),
            Some("MALFORMED_REQUEST".to_owned())
        );

        // The field read from a plain message.
        assert_eq!(
            route(None, framed(0, &[0x1a, 5, b'l', b'e', b'a', b'd', b's']))
                .await
                .ok()
                .as_deref(),
            Some("crm.leads.v1")
        );
    }

    #[test]
    fn a_routing_field_must_be_a_string_of_every_request_of_a_multiplexed_package() {
        let keys = BTreeMap::from([("crm.events.v1".to_owned(), "x-crm-source".to_owned())]);
        let configure = |package: &str, field: &str| {
            Proxy::new(&BTreeMap::new(), &UpstreamConfig::default())
                .and_then(|p| p.multiplexed(&keys))
                .and_then(|p| {
                    p.routing_fields(
                        &BTreeMap::from([(package.to_owned(), field.to_owned())]),
                        1024,
                    )
                })
                .err()
                .map(|e| e.to_string())
        };
        assert_eq!(configure("crm.events.v1", "source"), None);
        let err = configure("crm.events.v1", "types").unwrap_or_default();
        assert!(
            err.starts_with("gateway.multiplexed_fields.\"crm.events.v1\""),
            "{err}"
        );
        assert!(
            err.contains("SubscribeRequest has no string field"),
            "{err}"
        );
        let err = configure("crm.leads.v1", "source").unwrap_or_default();
        assert!(err.contains("no gateway.multiplexed key"), "{err}");
    }
}
