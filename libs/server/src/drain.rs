use std::{
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Frame;
use tonic::{Code, Status, body::Body, codegen::StdError};
use tower::{Layer, Service};

use crate::{
    Shutdown,
    grpc::{error_response, error_status, status_trailers},
};

/// Marks a response whose body is relayed from elsewhere (the gateway's
/// proxied calls): an idle moment in it may be the upstream's unary answer
/// on its way, so draining must not end it. It ends when its upstream does,
/// or at the end of the grace period.
#[derive(Debug, Clone, Copy, Default)]
pub struct Passthrough;

/// Ends calls during shutdown with UNAVAILABLE, the status that tells a
/// client to reconnect (to another replica) and retry:
///
/// - once `drain` fires, a response stream that is waiting for its next
///   message ends (a tonic unary body never waits, so unary calls finish);
/// - once `abort` fires (the grace period is over), everything still running
///   ends, calls that have not answered yet included.
#[derive(Debug, Clone)]
pub(crate) struct DrainLayer {
    drain: Shutdown,
    abort: Shutdown,
    domain: Arc<str>,
}

impl DrainLayer {
    pub(crate) fn new(drain: Shutdown, abort: Shutdown, domain: Arc<str>) -> Self {
        Self {
            drain,
            abort,
            domain,
        }
    }
}

impl<S> Layer<S> for DrainLayer {
    type Service = DrainService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DrainService {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct DrainService<S> {
    inner: S,
    layer: DrainLayer,
}

type Wait = Pin<Box<dyn Future<Output = ()> + Send>>;

fn shutting_down(domain: &str) -> Status {
    error_status(
        Code::Unavailable,
        "the server is shutting down; reconnect and retry",
        "SHUTTING_DOWN",
        domain,
    )
}

impl<S, B, ResBody> Service<Request<B>> for DrainService<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<StdError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let call = self.inner.call(req);
        let layer = self.layer.clone();
        Box::pin(async move {
            let response = tokio::select! {
                biased;
                response = call => response?,
                () = layer.abort.clone().into_triggered() => {
                    return Ok(error_response(shutting_down(&layer.domain)));
                }
            };
            let passthrough = response.extensions().get::<Passthrough>().is_some();
            Ok(response.map(|inner| {
                Body::new(DrainBody {
                    inner,
                    wait: None,
                    passthrough,
                    layer,
                    done: false,
                })
            }))
        })
    }
}

pin_project_lite::pin_project! {
    struct DrainBody<B> {
        #[pin]
        inner: B,
        // Created on the first idle poll: most bodies never wait.
        wait: Option<Wait>,
        passthrough: bool,
        layer: DrainLayer,
        done: bool,
    }
}

impl<B> http_body::Body for DrainBody<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<StdError>,
{
    type Data = Bytes;
    type Error = StdError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        if *this.done {
            return Poll::Ready(None);
        }
        let end_now = this.layer.abort.is_triggered();
        if !end_now && let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            return Poll::Ready(frame.map(|r| r.map_err(Into::into)));
        }
        let draining = !*this.passthrough && this.layer.drain.is_triggered();
        if !end_now && !draining {
            let wait = this.wait.get_or_insert_with(|| {
                let (drain, abort) = (this.layer.drain.clone(), this.layer.abort.clone());
                if *this.passthrough {
                    Box::pin(abort.into_triggered())
                } else {
                    Box::pin(async move {
                        tokio::select! {
                            () = drain.triggered() => {}
                            () = abort.triggered() => {}
                        }
                    })
                }
            });
            if wait.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
        }
        *this.done = true;
        let trailers = status_trailers(&shutting_down(&this.layer.domain));
        Poll::Ready(Some(Ok(Frame::trailers(trailers))))
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
