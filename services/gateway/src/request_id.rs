use std::{
    pin::Pin,
    task::{Context, Poll, ready},
};

use http::{HeaderValue, Request, Response};
use tower::{Layer, Service};

/// The header that names a call across the client, the gateway, the
/// upstream and their logs.
pub const X_REQUEST_ID: &str = "x-request-id";

/// Longest client-chosen id kept; anything longer or not plain visible
/// ASCII is replaced, so logs cannot be flooded or forged through it.
const MAX_CLIENT_ID_LEN: usize = 128;

/// Gives every call an `x-request-id`: the client's if it sent a sane one,
/// a fresh UUIDv7 otherwise. It is forwarded upstream, returned on the
/// response and recorded on the RPC span.
#[derive(Debug, Clone, Default)]
pub struct RequestIdLayer;

impl<S> Layer<S> for RequestIdLayer {
    type Service = RequestId<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestId { inner }
    }
}

#[derive(Debug, Clone)]
pub struct RequestId<S> {
    inner: S,
}

fn acceptable(id: &HeaderValue) -> bool {
    let bytes = id.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= MAX_CLIENT_ID_LEN
        && bytes.iter().all(|b| b.is_ascii_graphic())
}

impl<S, B, ResBody> Service<Request<B>> for RequestId<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = RequestIdFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<B>) -> Self::Future {
        let id = match req.headers().get(X_REQUEST_ID) {
            Some(id) if acceptable(id) => id.clone(),
            _ => {
                let id = HeaderValue::from_str(&uuid::Uuid::now_v7().to_string())
                    .unwrap_or(HeaderValue::from_static("invalid"));
                req.headers_mut().insert(X_REQUEST_ID, id.clone());
                id
            }
        };
        if let Ok(text) = id.to_str() {
            tracing::Span::current().record("request_id", text);
        }
        RequestIdFuture {
            inner: self.inner.call(req),
            id: Some(id),
        }
    }
}

pin_project_lite::pin_project! {
    pub struct RequestIdFuture<F> {
        #[pin]
        inner: F,
        id: Option<HeaderValue>,
    }
}

impl<F, ResBody, E> Future for RequestIdFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut result = ready!(this.inner.poll(cx));
        if let (Ok(response), Some(id)) = (&mut result, this.id.take()) {
            response.headers_mut().insert(X_REQUEST_ID, id);
        }
        Poll::Ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_sane_client_ids_are_kept() {
        assert!(acceptable(&HeaderValue::from_static("req-123")));
        assert!(!acceptable(&HeaderValue::from_static("")));
        assert!(!acceptable(&HeaderValue::from_static("two words")));
        let long = "x".repeat(MAX_CLIENT_ID_LEN + 1);
        assert!(!acceptable(
            &HeaderValue::from_str(&long).unwrap_or(HeaderValue::from_static(""))
        ));
    }
}
