use std::{
    collections::{BTreeMap, HashMap},
    convert::Infallible,
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll, ready},
    time::Duration,
};

use bytes::Bytes;
use crm_server::{
    Deadline, Passthrough,
    grpc::{GRPC_TIMEOUT, encode_grpc_timeout, error_response, error_status},
};
use http::{HeaderMap, HeaderName, Request, Response, header};
use tonic::{
    Code, Status,
    body::Body,
    codegen::StdError,
    transport::{Channel, Endpoint},
};
use tonic_types::{ErrorDetails, StatusExt as _};
use tower::{Service, ServiceExt as _};

use crate::{BoxFuture, ERROR_DOMAIN, GatewayError};

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
/// method path (or, for a multiplexed package, by a metadata key) and
/// relays the call, bodies streamed through untouched.
#[derive(Clone)]
pub struct Proxy {
    upstreams: Arc<BTreeMap<String, Channel>>,
    /// Package -> the metadata key naming the service to route to.
    multiplexed: Arc<BTreeMap<String, HeaderName>>,
}

impl Proxy {
    /// One lazily connected channel per upstream: a service that is not up
    /// yet makes its calls UNAVAILABLE, not the gateway's start fail.
    pub fn new(upstreams: &BTreeMap<String, String>) -> Result<Self, GatewayError> {
        let mut channels = BTreeMap::new();
        for (package, url) in upstreams {
            let endpoint =
                Endpoint::from_shared(url.clone()).map_err(|source| GatewayError::Upstream {
                    package: package.clone(),
                    url: url.clone(),
                    source,
                })?;
            let channel = endpoint
                .connect_timeout(CONNECT_TIMEOUT)
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(20))
                .keep_alive_while_idle(true)
                .connect_lazy();
            channels.insert(package.clone(), channel);
        }
        Ok(Self {
            upstreams: Arc::new(channels),
            multiplexed: Arc::new(BTreeMap::new()),
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
            let name =
                HeaderName::from_bytes(key.as_bytes()).map_err(|_| GatewayError::MultiplexKey {
                    package: package.clone(),
                    key: key.clone(),
                })?;
            keys.insert(package.clone(), name);
        }
        self.multiplexed = Arc::new(keys);
        Ok(self)
    }

    /// The upstream package of a call to `package`: itself, or for a
    /// multiplexed package the service its metadata names.
    fn target(&self, package: &str, headers: &HeaderMap) -> Result<String, Status> {
        let Some(key) = self.multiplexed.get(package) else {
            return Ok(package.to_owned());
        };
        let value = headers.get(key).and_then(|v| v.to_str().ok()).unwrap_or("");
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
        let known: Vec<&str> = self
            .upstreams
            .keys()
            .filter(|p| !self.multiplexed.contains_key(*p))
            .filter_map(|p| p.strip_prefix("crm.")?.strip_suffix(".v1"))
            .collect();
        let (reason, what) = if value.is_empty() {
            ("ROUTING_KEY_MISSING", "is required")
        } else {
            ("ROUTING_KEY_UNKNOWN", "names no service")
        };
        let message = format!(
            "metadata {key} {what}: a call to {package} goes to the service it names, one of: {}",
            known.join(", ")
        );
        Err(Status::with_error_details(
            Code::InvalidArgument,
            message,
            ErrorDetails::with_error_info(
                reason,
                ERROR_DOMAIN,
                HashMap::from([("key".to_owned(), key.to_string())]),
            ),
        ))
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
        let path = req.uri().path();
        let package = match self.target(package_of(path).unwrap_or_default(), req.headers()) {
            Ok(package) => package,
            Err(status) => return Box::pin(std::future::ready(Ok(error_response(status)))),
        };
        let Some(channel) = self.upstreams.get(&package).cloned() else {
            let status = error_status(
                Code::Unimplemented,
                format!("no service behind the gateway serves {path}"),
                "UNKNOWN_PACKAGE",
                ERROR_DOMAIN,
            );
            return Box::pin(std::future::ready(Ok(error_response(status))));
        };

        let (parts, body) = req.into_parts();
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
        crm_telemetry::inject_trace_context(headers);

        Box::pin(async move {
            match channel.oneshot(upstream).await {
                Ok(mut response) => {
                    response.extensions_mut().insert(Passthrough);
                    Ok(response)
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
                            format!(
                                "the service for {package} cannot be reached; retry with backoff"
                            ),
                            "UPSTREAM_UNAVAILABLE",
                            ERROR_DOMAIN,
                        )
                    };
                    Ok(error_response(status))
                }
            }
        })
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
        let proxy = || Proxy::new(&BTreeMap::new()).map_err(|e| e.to_string());
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
}
