use std::{
    pin::Pin,
    sync::{Arc, OnceLock},
    task::{Context, Poll, ready},
};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Frame;
use tonic::{Code, Status, body::Body, codegen::StdError};
use tower::{Layer, Service};

use crate::grpc::{error_response, error_status, status_trailers};

/// Refuses gRPC request messages longer than `max` bytes with
/// RESOURCE_EXHAUSTED, reading each message's 5-byte length prefix as the
/// body streams by, so nothing is buffered and the oversize message is
/// never passed on whole.
///
/// When the prefix arrives before the response has started (any unary
/// call), the answer is a plain RESOURCE_EXHAUSTED; later in a client
/// stream, the request stream is broken off and the response ends with it.
#[derive(Debug, Clone)]
pub struct MessageSizeLimitLayer {
    max: usize,
    domain: Arc<str>,
}

impl MessageSizeLimitLayer {
    /// `domain` is the `ErrorInfo` domain of the RESOURCE_EXHAUSTED it makes.
    pub fn new(max: usize, domain: impl Into<Arc<str>>) -> Self {
        Self {
            max,
            domain: domain.into(),
        }
    }
}

impl<S> Layer<S> for MessageSizeLimitLayer {
    type Service = MessageSizeLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        MessageSizeLimit {
            inner,
            max: self.max,
            domain: Arc::clone(&self.domain),
        }
    }
}

/// The service made by [`MessageSizeLimitLayer`].
#[derive(Debug, Clone)]
pub struct MessageSizeLimit<S> {
    inner: S,
    max: usize,
    domain: Arc<str>,
}

/// Set once by the request body when a message is too long; read by the
/// response side to answer with the reason instead of a broken stream.
type Violation = Arc<OnceLock<Status>>;

impl<S, B, ResBody> Service<Request<B>> for MessageSizeLimit<S>
where
    S: Service<Request<LimitedBody<B>>, Response = Response<ResBody>>,
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<StdError>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<StdError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = LimitFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let violation = Violation::default();
        let req = req.map(|inner| LimitedBody {
            inner,
            parser: PrefixParser::default(),
            max: self.max,
            domain: Arc::clone(&self.domain),
            violation: Arc::clone(&violation),
        });
        LimitFuture {
            inner: self.inner.call(req),
            violation,
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`MessageSizeLimit`].
    pub struct LimitFuture<F> {
        #[pin]
        inner: F,
        violation: Violation,
    }
}

impl<F, ResBody, E> Future for LimitFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    ResBody: http_body::Body<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<StdError>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let result = ready!(this.inner.poll(cx));
        // Whatever the inner service made of the broken request stream, the
        // client is told why it broke.
        if let Some(status) = this.violation.get() {
            return Poll::Ready(Ok(error_response(status.clone())));
        }
        Poll::Ready(result.map(|response| {
            response.map(|inner| {
                Body::new(ViolationAwareBody {
                    inner,
                    violation: Arc::clone(this.violation),
                    done: false,
                })
            })
        }))
    }
}

/// Finds each message's length prefix in a stream of gRPC frames.
#[derive(Debug, Default)]
struct PrefixParser {
    prefix: [u8; 5],
    prefix_len: usize,
    /// Payload bytes of the current message still to skip.
    payload_left: u64,
}

impl PrefixParser {
    /// Feeds the next chunk; returns the first message length over `max`.
    fn feed(&mut self, mut chunk: &[u8], max: usize) -> Result<(), u64> {
        while !chunk.is_empty() {
            if self.payload_left > 0 {
                let skip = usize::try_from(self.payload_left)
                    .map_or(chunk.len(), |left| left.min(chunk.len()));
                chunk = &chunk[skip..];
                self.payload_left -= skip as u64;
                continue;
            }
            let take = (5 - self.prefix_len).min(chunk.len());
            self.prefix[self.prefix_len..self.prefix_len + take].copy_from_slice(&chunk[..take]);
            self.prefix_len += take;
            chunk = &chunk[take..];
            if self.prefix_len == 5 {
                let len = u64::from(u32::from_be_bytes([
                    self.prefix[1],
                    self.prefix[2],
                    self.prefix[3],
                    self.prefix[4],
                ]));
                if len > max as u64 {
                    return Err(len);
                }
                self.prefix_len = 0;
                self.payload_left = len;
            }
        }
        Ok(())
    }
}

pin_project_lite::pin_project! {
    /// A request body that fails at the first oversize message.
    pub struct LimitedBody<B> {
        #[pin]
        inner: B,
        parser: PrefixParser,
        max: usize,
        domain: Arc<str>,
        violation: Violation,
    }
}

impl<B> http_body::Body for LimitedBody<B>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<StdError>,
{
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        if let Some(status) = this.violation.get() {
            return Poll::Ready(Some(Err(status.clone())));
        }
        let frame = match ready!(this.inner.poll_frame(cx)) {
            None => return Poll::Ready(None),
            Some(Err(e)) => return Poll::Ready(Some(Err(Status::from_error(e.into())))),
            Some(Ok(frame)) => frame,
        };
        if let Some(data) = frame.data_ref()
            && let Err(len) = this.parser.feed(data, *this.max)
        {
            let status = error_status(
                Code::ResourceExhausted,
                format!(
                    "request message of {len} bytes is larger than the limit of {} bytes",
                    this.max
                ),
                "MESSAGE_TOO_LARGE",
                this.domain,
            );
            let status = this.violation.get_or_init(|| status).clone();
            return Poll::Ready(Some(Err(status)));
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

pin_project_lite::pin_project! {
    /// A response body that, once the request broke the limit, ends with
    /// that status instead of whatever the broken stream led to.
    struct ViolationAwareBody<B> {
        #[pin]
        inner: B,
        violation: Violation,
        done: bool,
    }
}

impl<B> http_body::Body for ViolationAwareBody<B>
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
        let polled = ready!(this.inner.poll_frame(cx));
        let ends = match &polled {
            None | Some(Err(_)) => true,
            Some(Ok(frame)) => frame.is_trailers(),
        };
        if ends && let Some(status) = this.violation.get() {
            *this.done = true;
            return Poll::Ready(Some(Ok(Frame::trailers(status_trailers(status)))));
        }
        Poll::Ready(polled.map(|r| r.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.done || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(len: u32) -> Vec<u8> {
        let mut m = vec![0];
        m.extend_from_slice(&len.to_be_bytes());
        m.extend(std::iter::repeat_n(7, len as usize));
        m
    }

    #[test]
    fn finds_prefixes_split_across_chunks() {
        let mut stream = message(10);
        stream.extend(message(3));
        stream.extend(message(11));
        for chunk_size in 1..stream.len() {
            let mut parser = PrefixParser::default();
            let outcome = stream
                .chunks(chunk_size)
                .try_for_each(|c| parser.feed(c, 10));
            assert_eq!(outcome, Err(11), "chunks of {chunk_size}");
        }
    }

    #[test]
    fn messages_at_the_limit_pass() {
        let mut stream = message(10);
        stream.extend(message(0));
        stream.extend(message(10));
        let mut parser = PrefixParser::default();
        assert_eq!(parser.feed(&stream, 10), Ok(()));
    }
}
