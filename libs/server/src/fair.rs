//! Fair shares of a process: per tenant and per subject rate limits and
//! caps on calls and streams, checked after auth, the same in the gateway
//! and in every service.

use std::{
    collections::{HashMap, HashSet},
    pin::Pin,
    sync::{Arc, LazyLock, Mutex, PoisonError},
    task::{Context, Poll, ready},
    time::Duration,
};

use bytes::Bytes;
use crm_auth::Principal;
use crm_telemetry::{Counter, KeyValue};
use http::{Request, Response};
use http_body::Frame;
use tokio::time::{Instant, Sleep};
use tonic::{Code, Status, body::Body, codegen::StdError};
use tonic_types::{ErrorDetails, StatusExt as _};
use tower::{Layer, Service};

use crate::{
    CallLimits, RateLimitConfig,
    grpc::{error_response, error_status, status_trailers},
    rate_limit::{RateLimiter, Scope},
};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// The counter of refused calls, by `reason` (the `ErrorInfo` reason) and
/// `scope` (`server`, `tenant`, `subject`).
pub const REFUSED: &str = "crm.server.refused";

/// Paths of the contracts' streaming methods (server, client or both).
static STREAMING: LazyLock<HashSet<String>> = LazyLock::new(|| {
    use prost::Message as _;
    let Ok(set) = prost_types::FileDescriptorSet::decode(crm_proto::FILE_DESCRIPTOR_SET) else {
        return HashSet::new();
    };
    let mut paths = HashSet::new();
    for file in &set.file {
        for service in &file.service {
            for method in &service.method {
                if method.server_streaming() || method.client_streaming() {
                    paths.insert(format!(
                        "/{}.{}/{}",
                        file.package(),
                        service.name(),
                        method.name()
                    ));
                }
            }
        }
    }
    paths
});

/// Whether `path` (`/crm.events.v1.EventService/Subscribe`) is a streaming
/// method of the contracts: such calls are budgeted as streams.
pub fn is_streaming(path: &str) -> bool {
    STREAMING.contains(path)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Call,
    Stream,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    All(Kind),
    Tenant(Kind, String),
    Subject(Kind, String, String),
}

struct Fair {
    domain: Arc<str>,
    /// `crm.server.refused`: calls shed (OVERLOADED) or refused for a fair
    /// share (TOO_MANY_CALLS, TOO_MANY_STREAMS) or a rate (RATE_LIMITED).
    refused: Counter<u64>,
    rate: Option<RateLimiter>,
    refusal_delay_max: Duration,
    max_in_flight: usize,
    limits: CallLimits,
    open: Mutex<HashMap<Key, usize>>,
}

impl Fair {
    fn keys(kind: Kind, tenant: &str, subject: &str) -> [Key; 3] {
        [
            Key::All(kind),
            Key::Tenant(kind, tenant.to_owned()),
            Key::Subject(kind, tenant.to_owned(), subject.to_owned()),
        ]
    }

    fn caps(&self, kind: Kind) -> [usize; 3] {
        let l = &self.limits;
        match kind {
            Kind::Call => [self.max_in_flight, l.tenant_calls, l.subject_calls],
            Kind::Stream => [l.max_streams, l.tenant_streams, l.subject_streams],
        }
    }

    /// A slot for one more call of `kind`, or the status refusing it.
    fn admit(self: &Arc<Self>, kind: Kind, tenant: &str, subject: &str) -> Result<Slot, Status> {
        let keys = Self::keys(kind, tenant, subject);
        let caps = self.caps(kind);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        for (i, (key, cap)) in keys.iter().zip(caps).enumerate() {
            if open.get(key).copied().unwrap_or(0) >= cap {
                return Err(self.refusal(kind, i, cap));
            }
        }
        for key in &keys {
            *open.entry(key.clone()).or_insert(0) += 1;
        }
        Ok(Slot {
            fair: Arc::clone(self),
            keys,
        })
    }

    fn refusal(&self, kind: Kind, scope: usize, cap: usize) -> Status {
        let what = match kind {
            Kind::Call => "calls in progress",
            Kind::Stream => "open streams",
        };
        if scope == 0 {
            tracing::debug!(?kind, "refused: at capacity");
            self.count_refusal("OVERLOADED", "server");
            return error_status(
                Code::Unavailable,
                format!("the server is at capacity ({cap} {what}); retry with backoff"),
                "OVERLOADED",
                &self.domain,
            );
        }
        let (who, reason) = match (scope, kind) {
            (1, Kind::Call) => ("tenant", "TOO_MANY_CALLS"),
            (1, Kind::Stream) => ("tenant", "TOO_MANY_STREAMS"),
            (_, Kind::Call) => ("subject", "TOO_MANY_CALLS"),
            (_, Kind::Stream) => ("subject", "TOO_MANY_STREAMS"),
        };
        tracing::debug!(?kind, who, "refused: fair share used up");
        self.count_refusal(reason, who);
        let details = ErrorDetails::with_error_info(
            reason,
            self.domain.to_string(),
            HashMap::from([
                ("scope".to_owned(), who.to_owned()),
                ("limit".to_owned(), cap.to_string()),
            ]),
        );
        Status::with_error_details(
            Code::ResourceExhausted,
            format!("the {who} already has {cap} {what}; end one, then retry"),
            details,
        )
    }

    fn count_refusal(&self, reason: &'static str, scope: &'static str) {
        self.refused.add(
            1,
            &[
                KeyValue::new("reason", reason),
                KeyValue::new("scope", scope),
            ],
        );
    }

    fn rate_limited(&self, scope: Scope, retry_after: Duration) -> Status {
        self.count_refusal("RATE_LIMITED", scope.as_str());
        let mut details = ErrorDetails::with_error_info(
            "RATE_LIMITED",
            self.domain.to_string(),
            HashMap::from([("scope".to_owned(), scope.as_str().to_owned())]),
        );
        details.set_retry_info(Some(retry_after));
        Status::with_error_details(
            Code::ResourceExhausted,
            format!(
                "the {}'s rate limit is exceeded; retry in {retry_after:?}",
                scope.as_str()
            ),
            details,
        )
    }
}

/// One admitted call's place in the counts, given back when dropped.
struct Slot {
    fair: Arc<Fair>,
    keys: [Key; 3],
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self
            .fair
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for key in &self.keys {
            if let Some(n) = open.get_mut(key) {
                *n -= 1;
                if *n == 0 {
                    open.remove(key);
                }
            }
        }
    }
}

/// Fair limits for every call, after auth (the verified [`Principal`]
/// names the tenant and subject; calls without one share the empty
/// names):
///
/// - token buckets per tenant and per subject (RESOURCE_EXHAUSTED,
///   RATE_LIMITED, with a `RetryInfo`);
/// - caps on unary calls in progress and, apart from them, on open
///   streams: per process (UNAVAILABLE, OVERLOADED: try another replica),
///   per tenant and per subject (RESOURCE_EXHAUSTED, TOO_MANY_CALLS or
///   TOO_MANY_STREAMS). A call counts until its response body ends;
/// - a request body idle for `request_idle_timeout` fails its call
///   (DEADLINE_EXCEEDED, REQUEST_BODY_IDLE), so a body that never ends
///   does not hold its slot;
/// - a stream ends after `stream_lifetime` with UNAVAILABLE
///   (STREAM_LIFETIME) and a `RetryInfo` of zero: reconnect and resume.
#[derive(Clone)]
pub struct FairLayer {
    fair: Arc<Fair>,
}

impl FairLayer {
    /// `domain` is the `ErrorInfo` domain of the refusals it makes.
    pub fn new(
        max_in_flight: usize,
        rate_limit: &RateLimitConfig,
        limits: &CallLimits,
        domain: impl Into<Arc<str>>,
    ) -> Self {
        let domain: Arc<str> = domain.into();
        let refused = crm_telemetry::meter(&domain)
            .u64_counter(REFUSED)
            .with_description(
                "Calls refused before running: shed at capacity, over a fair share, or rate-limited",
            )
            .with_unit("{call}")
            .build();
        Self {
            fair: Arc::new(Fair {
                refused,
                domain,
                rate: RateLimiter::new(rate_limit),
                refusal_delay_max: rate_limit.refusal_delay_max,
                max_in_flight,
                limits: limits.clone(),
                open: Mutex::new(HashMap::new()),
            }),
        }
    }
}

impl<S> Layer<S> for FairLayer {
    type Service = FairService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        FairService {
            inner,
            fair: Arc::clone(&self.fair),
        }
    }
}

/// The service made by [`FairLayer`].
#[derive(Clone)]
pub struct FairService<S> {
    inner: S,
    fair: Arc<Fair>,
}

impl<S, B, ResBody> Service<Request<B>> for FairService<S>
where
    S: Service<Request<IdleBody<B>>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<StdError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let fair = &self.fair;
        let (tenant, subject) = req
            .extensions()
            .get::<Principal>()
            .map_or(("", ""), |p| (p.tenant.as_str(), p.subject.as_str()));
        let kind = if is_streaming(req.uri().path()) {
            Kind::Stream
        } else {
            Kind::Call
        };
        if let Some(rate) = &fair.rate
            && let Err((scope, wait)) = rate.take(tenant, subject, std::time::Instant::now())
        {
            tracing::debug!(tenant, subject, "refused: rate limit");
            let status = fair.rate_limited(scope, wait);
            // Answered when the next call could pass, holding a call slot
            // of the caller's meanwhile (so a caller holds at most its
            // share of these too); once its slots are taken, at once.
            let delay = wait.min(fair.refusal_delay_max);
            return match fair.admit(Kind::Call, tenant, subject) {
                Ok(slot) if !delay.is_zero() => Box::pin(async move {
                    tokio::time::sleep(delay).await;
                    drop(slot);
                    Ok(error_response(status))
                }),
                _ => Box::pin(std::future::ready(Ok(error_response(status)))),
            };
        }
        let slot = match fair.admit(kind, tenant, subject) {
            Ok(slot) => slot,
            Err(status) => return Box::pin(std::future::ready(Ok(error_response(status)))),
        };
        let lifetime = (kind == Kind::Stream)
            .then(|| Box::pin(tokio::time::sleep(fair.limits.stream_lifetime)));
        let idle = fair.limits.request_idle_timeout;
        let domain = Arc::clone(&fair.domain);
        let req = req.map(|body| IdleBody::new(body, idle, Arc::clone(&domain)));
        let call = self.inner.call(req);
        Box::pin(async move {
            let response = call.await?;
            Ok(response.map(|inner| {
                Body::new(Held {
                    inner,
                    _slot: slot,
                    lifetime,
                    domain,
                    done: false,
                })
            }))
        })
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its call's slot until it is done with,
    /// and ends a stream at the end of its lifetime.
    struct Held<B> {
        #[pin]
        inner: B,
        _slot: Slot,
        lifetime: Option<Pin<Box<Sleep>>>,
        domain: Arc<str>,
        done: bool,
    }
}

impl<B> http_body::Body for Held<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<StdError>,
{
    type Data = Bytes;
    type Error = StdError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, StdError>>> {
        let this = self.project();
        if *this.done {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
        }
        let expired = this
            .lifetime
            .as_mut()
            .is_some_and(|lifetime| lifetime.as_mut().poll(cx).is_ready());
        if !expired {
            return Poll::Pending;
        }
        *this.done = true;
        let mut details = ErrorDetails::with_error_info(
            "STREAM_LIFETIME",
            this.domain.to_string(),
            HashMap::new(),
        );
        details.set_retry_info(Some(Duration::ZERO));
        let status = Status::with_error_details(
            Code::Unavailable,
            "the stream reached its maximum lifetime; reconnect and resume \
             from the last sequence you processed",
            details,
        );
        Poll::Ready(Some(Ok(Frame::trailers(status_trailers(&status)))))
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// A request body that fails once nothing has come from it for its
    /// idle timeout.
    pub struct IdleBody<B> {
        #[pin]
        inner: B,
        timeout: Duration,
        last: Instant,
        timer: Option<Pin<Box<Sleep>>>,
        domain: Arc<str>,
        failed: bool,
    }
}

impl<B> IdleBody<B> {
    fn new(inner: B, timeout: Duration, domain: Arc<str>) -> Self {
        Self {
            inner,
            timeout,
            last: Instant::now(),
            timer: None,
            domain,
            failed: false,
        }
    }
}

impl<B> http_body::Body for IdleBody<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<StdError>,
{
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = self.project();
        if *this.failed {
            return Poll::Ready(None);
        }
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            // The timer is moved lazily, when it fires: no re-arming per frame.
            *this.last = Instant::now();
            return Poll::Ready(frame.map(|r| r.map_err(|e| Status::from_error(e.into()))));
        }
        let timeout = *this.timeout;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(*this.last + timeout)));
        loop {
            ready!(timer.as_mut().poll(cx));
            let due = *this.last + timeout;
            if Instant::now() >= due {
                *this.failed = true;
                tracing::debug!(?timeout, "request body idle: call failed");
                let status = error_status(
                    Code::DeadlineExceeded,
                    format!("the request body sent nothing for {timeout:?}"),
                    "REQUEST_BODY_IDLE",
                    this.domain,
                );
                return Poll::Ready(Some(Err(status)));
            }
            timer.as_mut().reset(due);
        }
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
    use super::*;

    fn fair(max_in_flight: usize, limits: CallLimits) -> Arc<Fair> {
        Arc::new(Fair {
            domain: "crm.test".into(),
            refused: crm_telemetry::meter("test").u64_counter(REFUSED).build(),
            rate: None,
            refusal_delay_max: Duration::from_secs(1),
            max_in_flight,
            limits,
            open: Mutex::new(HashMap::new()),
        })
    }

    fn reason(status: &Status) -> (Code, String) {
        let reason = status
            .get_details_error_info()
            .map(|i| i.reason)
            .unwrap_or_default();
        (status.code(), reason)
    }

    #[test]
    fn the_contracts_streaming_methods_are_known() {
        assert!(is_streaming("/crm.events.v1.EventService/Subscribe"));
        assert!(!is_streaming("/crm.leads.v1.LeadService/GetLead"));
    }

    /// Finding 1: streams are budgeted apart from unary calls, and one
    /// tenant (or one subject) cannot take every slot.
    #[test]
    fn finding_1_a_tenant_and_a_subject_get_a_share_not_the_pool() {
        let limits = CallLimits {
            max_streams: 10,
            tenant_streams: 3,
            subject_streams: 2,
            tenant_calls: 4,
            subject_calls: 4,
            ..CallLimits::default()
        };
        let f = fair(5, limits);
        let amy: Vec<_> = (0..2)
            .map(|_| f.admit(Kind::Stream, "acme", "amy"))
            .collect();
        assert!(amy.iter().all(Result::is_ok));
        let refused = f
            .admit(Kind::Stream, "acme", "amy")
            .err()
            .map(|s| reason(&s));
        assert_eq!(
            refused,
            Some((Code::ResourceExhausted, "TOO_MANY_STREAMS".into()))
        );
        let bob = f.admit(Kind::Stream, "acme", "bob");
        assert!(bob.is_ok());
        let carl = f
            .admit(Kind::Stream, "acme", "carl")
            .err()
            .map(|s| reason(&s));
        assert_eq!(
            carl,
            Some((Code::ResourceExhausted, "TOO_MANY_STREAMS".into()))
        );
        // Streams do not use up unary calls, nor another tenant's share.
        assert!(f.admit(Kind::Call, "acme", "amy").is_ok());
        assert!(f.admit(Kind::Stream, "globex", "gus").is_ok());
        // A slot given back is free again.
        drop(amy);
        assert!(f.admit(Kind::Stream, "acme", "carl").is_ok());
    }

    #[test]
    fn the_process_cap_is_unavailable_to_try_elsewhere() {
        let f = fair(1, CallLimits::default());
        let _held = f.admit(Kind::Call, "a", "u");
        let refused = f.admit(Kind::Call, "b", "v").err().map(|s| reason(&s));
        assert_eq!(refused, Some((Code::Unavailable, "OVERLOADED".into())));
        let open = f.open.lock().map(|o| o.len()).unwrap_or_default();
        assert_eq!(open, 3, "a refused call holds nothing");
    }

    /// The noisy-neighbour benchmark: a client retrying at once past its
    /// rate limit had the server answer thousands of refusals a second.
    /// A refusal now comes when the next call could pass, and holds one of
    /// the caller's call slots until then.
    #[tokio::test]
    async fn a_refusal_waits_for_the_next_token_holding_a_call_slot() {
        let rate = RateLimitConfig {
            requests_per_second: 1000,
            burst: 1000,
            subject_requests_per_second: 20,
            subject_burst: 1,
            refusal_delay_max: Duration::from_secs(5),
        };
        let limits = CallLimits {
            subject_calls: 1,
            ..CallLimits::default()
        };
        let layer = FairLayer::new(16, &rate, &limits, "crm.test");
        let mut service = layer.layer(tower::service_fn(|_: Request<IdleBody<Body>>| async {
            Ok::<_, std::convert::Infallible>(Response::new(Body::empty()))
        }));
        let call = |service: &mut FairService<_>| {
            let mut request = Request::new(Body::empty());
            request.extensions_mut().insert(Principal {
                subject: "hammer".into(),
                tenant: "acme".into(),
                roles: Vec::new(),
            });
            service.call(request)
        };
        let passed = call(&mut service).await;
        assert!(passed.is_ok_and(|r| r.headers().get("grpc-status").is_none()));
        let mut refused = call(&mut service);
        let answered_at_once = tokio::select! {
            biased;
            _ = &mut refused => true,
            () = std::future::ready(()) => false,
        };
        assert!(!answered_at_once, "a refusal is not answered at once");
        let held = layer
            .fair
            .admit(Kind::Call, "acme", "hammer")
            .err()
            .map(|s| reason(&s));
        assert_eq!(
            held,
            Some((Code::ResourceExhausted, "TOO_MANY_CALLS".into())),
            "the waiting refusal holds the caller's call slot"
        );
        assert!(layer.fair.admit(Kind::Call, "acme", "other").is_ok());
        let status = refused
            .await
            .ok()
            .and_then(|r| Status::from_header_map(r.headers()))
            .map(|s| reason(&s));
        assert_eq!(
            status,
            Some((Code::ResourceExhausted, "RATE_LIMITED".into()))
        );
        assert!(
            layer.fair.admit(Kind::Call, "acme", "hammer").is_ok(),
            "the slot is given back with the answer"
        );
    }
}
