//! Watching a service's own database, so that an outage is reported
//! (health NOT_SERVING) and calls fail at once with UNAVAILABLE
//! `DATABASE_UNAVAILABLE` instead of each waiting out the pool.
//!
//! One watch per served service instance: a process serving several
//! services (or several suites, in tests) watches each database apart.

use std::{
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use crm_server::{
    Shutdown,
    grpc::{error_response, error_status},
};
use crm_store::DatabaseConnection;
use http::{Request, Response};
use tokio::{
    sync::{Notify, watch},
    task::JoinHandle,
};
use tonic::{Code, Status, body::Body};
use tower::{Layer, Service};

type StdError = Box<dyn std::error::Error + Send + Sync>;
type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// The longest a probe may take before the database counts as down: well
/// under the pool's acquire timeout, so an outage is noticed quickly.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// What is known of one database: up or down, and a way to have it
/// checked again now.
pub(crate) struct DatabaseWatch {
    up: watch::Sender<bool>,
    recheck: Notify,
}

impl DatabaseWatch {
    /// Starts probing `db` every `interval` (and whenever a call fails
    /// with UNAVAILABLE) until `shutdown`; the database counts as up until
    /// a probe says otherwise.
    pub(crate) fn spawn(
        service: &'static str,
        db: DatabaseConnection,
        interval: Duration,
        shutdown: Shutdown,
    ) -> (Arc<Self>, JoinHandle<()>) {
        let watch = Arc::new(DatabaseWatch {
            up: watch::Sender::new(true),
            recheck: Notify::new(),
        });
        let probing = Arc::clone(&watch);
        let task = tokio::spawn(async move {
            loop {
                let up = matches!(
                    tokio::time::timeout(PROBE_TIMEOUT, db.ping()).await,
                    Ok(Ok(()))
                );
                probing.up.send_if_modified(|known| {
                    if *known == up {
                        return false;
                    }
                    if up {
                        tracing::info!(service, "database reachable again: serving");
                    } else {
                        tracing::warn!(service, "database unreachable: not serving");
                    }
                    *known = up;
                    true
                });
                tokio::select! {
                    () = shutdown.triggered() => break,
                    () = tokio::time::sleep(interval) => {}
                    () = probing.recheck.notified() => {}
                }
            }
        });
        (watch, task)
    }

    /// Follows the database's state: `true` while it is up.
    pub(crate) fn subscribe(&self) -> watch::Receiver<bool> {
        self.up.subscribe()
    }

    fn is_up(&self) -> bool {
        *self.up.borrow()
    }
}

/// Refuses calls at once with UNAVAILABLE `DATABASE_UNAVAILABLE` while the
/// watched database is down, and has it checked again when a call fails
/// with UNAVAILABLE (what a lost connection or a pool timeout becomes).
#[derive(Clone)]
pub(crate) struct DatabaseGateLayer {
    watch: Arc<DatabaseWatch>,
    domain: Arc<str>,
}

impl DatabaseGateLayer {
    pub(crate) fn new(watch: Arc<DatabaseWatch>, domain: String) -> Self {
        DatabaseGateLayer {
            watch,
            domain: domain.into(),
        }
    }
}

impl<S> Layer<S> for DatabaseGateLayer {
    type Service = DatabaseGate<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DatabaseGate {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service made by [`DatabaseGateLayer`].
#[derive(Clone)]
pub(crate) struct DatabaseGate<S> {
    inner: S,
    layer: DatabaseGateLayer,
}

impl<S, B, ResBody> Service<Request<B>> for DatabaseGate<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    ResBody::Error: Into<StdError>,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if !self.layer.watch.is_up() {
            let status = error_status(
                Code::Unavailable,
                "the database cannot be reached; retry with backoff",
                "DATABASE_UNAVAILABLE",
                &self.layer.domain,
            );
            return Box::pin(std::future::ready(Ok(error_response(status))));
        }
        let watch = Arc::clone(&self.layer.watch);
        let call = self.inner.call(req);
        Box::pin(async move {
            let res = call.await?;
            // Cheap: only the header of a trailers-only error is looked at;
            // a spurious recheck costs one probe.
            if res
                .headers()
                .get(Status::GRPC_STATUS)
                .is_some_and(|code| code.as_bytes() == b"14")
            {
                watch.recheck.notify_one();
            }
            Ok(res.map(Body::new))
        })
    }
}
