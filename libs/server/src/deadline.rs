use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http::{Request, Response};
use tokio::time::{Instant, Sleep};
use tonic::{Code, body::Body};
use tower::{Layer, Service};

use crate::grpc::{GRPC_TIMEOUT, error_response, error_status, parse_grpc_timeout};

/// When the current call must be answered by, in the request's extensions
/// (and so in a tonic `Request`'s): calls made on its behalf should not
/// outlive it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Deadline(pub Instant);

impl Deadline {
    /// What is left of the budget (zero once it has passed).
    pub fn remaining(&self) -> Duration {
        self.0.saturating_duration_since(Instant::now())
    }
}

/// Bounds each call by the client's `grpc-timeout`, capped at `max`, and
/// answers DEADLINE_EXCEEDED when the response has not started by then.
///
/// Only the wait for the response headers is bounded: a stream that has
/// started may run on (the handler itself sees the [`Deadline`]), or every
/// event subscription would be cut at `max`.
#[derive(Debug, Clone)]
pub struct DeadlineLayer {
    max: Duration,
    domain: Arc<str>,
}

impl DeadlineLayer {
    /// `domain` is the `ErrorInfo` domain of the DEADLINE_EXCEEDED it makes.
    pub fn new(max: Duration, domain: impl Into<Arc<str>>) -> Self {
        Self {
            max,
            domain: domain.into(),
        }
    }
}

impl<S> Layer<S> for DeadlineLayer {
    type Service = DeadlineService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DeadlineService {
            inner,
            max: self.max,
            domain: Arc::clone(&self.domain),
        }
    }
}

/// The service made by [`DeadlineLayer`].
#[derive(Debug, Clone)]
pub struct DeadlineService<S> {
    inner: S,
    max: Duration,
    domain: Arc<str>,
}

impl<S, B, ResBody> Service<Request<B>> for DeadlineService<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<tonic::codegen::StdError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = DeadlineFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let now = Instant::now();
        let budget = req
            .headers()
            .get(GRPC_TIMEOUT)
            .and_then(parse_grpc_timeout)
            .map_or(self.max, |asked| asked.min(self.max));
        // A budget past the end of time is no budget: a year is plenty.
        let mut deadline = now
            .checked_add(budget)
            .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600));
        // An outer layer may already have set a tighter one.
        if let Some(Deadline(earlier)) = req.extensions().get::<Deadline>().copied() {
            deadline = deadline.min(earlier);
        }
        req.extensions_mut().insert(Deadline(deadline));
        DeadlineFuture {
            inner: self.inner.call(req),
            sleep: tokio::time::sleep_until(deadline),
            budget: deadline.saturating_duration_since(now),
            domain: Arc::clone(&self.domain),
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`DeadlineService`].
    pub struct DeadlineFuture<F> {
        #[pin]
        inner: F,
        #[pin]
        sleep: Sleep,
        budget: Duration,
        domain: Arc<str>,
    }
}

impl<F, ResBody, E> Future for DeadlineFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<tonic::codegen::StdError>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(result) = this.inner.poll(cx) {
            return Poll::Ready(result.map(|response| response.map(Body::new)));
        }
        if this.sleep.poll(cx).is_ready() {
            let status = error_status(
                Code::DeadlineExceeded,
                format!(
                    "no response within the call's deadline of {:?}",
                    this.budget
                ),
                "DEADLINE_EXCEEDED",
                this.domain,
            );
            return Poll::Ready(Ok(error_response(status)));
        }
        Poll::Pending
    }
}
