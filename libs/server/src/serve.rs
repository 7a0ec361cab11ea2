use std::{sync::Arc, time::Duration};

use crm_telemetry::RpcTraceLayer;
use tokio::{net::TcpListener, sync::watch};
use tonic::{
    service::Routes,
    transport::{Server, server::TcpIncoming},
};
use tonic_health::{
    ServingStatus,
    pb::health_server::{Health, HealthServer},
    server::HealthReporter,
};
use tower::ServiceBuilder;

use crate::{
    DeadlineLayer, MessageSizeLimitLayer, ServerConfig, Shutdown,
    drain::DrainLayer,
    transport::{ConnLimits, Incoming},
};

/// Why a server stopped other than by shutdown.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot build the reflection service: {0}")]
    Reflection(#[from] tonic_reflection::server::Error),
    #[error("serving gRPC failed: {0}")]
    Serve(#[from] tonic::transport::Error),
    #[error(transparent)]
    Tls(#[from] crate::TlsError),
}

/// The `ErrorInfo` domain of the errors the shared stack makes for the
/// service `name`: `crm.<service>` whether `name` is `leads` or
/// `crm.leads.v1.LeadService`.
pub fn error_domain(name: &str) -> String {
    let short = name
        .strip_prefix("crm.")
        .and_then(|rest| rest.split('.').next())
        .unwrap_or(name);
    format!("crm.{short}")
}

/// Serves `routes` on `listener` until `shutdown` fires, then drains.
///
/// Adds the standard health service (`""` and `name` SERVING) and
/// reflection (v1 and v1alpha) of every contract, then wraps all routes in:
/// trace → drain → deadline (`request_timeout`) → message size limit
/// (`max_request_bytes`). Auth is the caller's: apply it to `routes` before
/// passing them, so health and reflection stay public.
///
/// Every connection is bounded (see [`ServerConfig`]): at most
/// `http2_max_concurrent_streams` streams, the preface within
/// `handshake_timeout`, closed after `connection_idle_timeout` without a
/// byte read or an unanswered keepalive PING, and no more than
/// `max_connections` of them. Fair shares per tenant are the caller's
/// ([`FairLayer`](crate::FairLayer), after auth).
///
/// On shutdown: health turns NOT_SERVING, the listener closes, in-flight
/// calls run on, streams waiting for their next message end with
/// UNAVAILABLE (clients reconnect elsewhere), and whatever still runs a
/// moment before `grace_period` is over ends with UNAVAILABLE too; `serve`
/// returns within `grace_period`.
pub async fn serve(
    name: &str,
    routes: Routes,
    listener: TcpListener,
    cfg: &ServerConfig,
    shutdown: Shutdown,
) -> Result<(), ServerError> {
    let (_ready, ready) = watch::channel(true);
    serve_ready(name, routes, listener, cfg, shutdown, ready).await
}

/// [`serve`], with health (`""` and `name`) following `ready`: SERVING
/// while it is `true`, NOT_SERVING while it is `false` (e.g. the
/// component's database is down), and NOT_SERVING for good on shutdown.
pub async fn serve_ready(
    name: &str,
    routes: Routes,
    listener: TcpListener,
    cfg: &ServerConfig,
    shutdown: Shutdown,
    ready: watch::Receiver<bool>,
) -> Result<(), ServerError> {
    let health = tonic_health::server::health_reporter();
    serve_with_health(name, routes, listener, cfg, shutdown, ready, health).await
}

/// [`serve_ready`] on a health service the caller made, so that it may
/// report more names on it (the gateway reports each service behind it);
/// `""` and `name` stay this function's.
pub async fn serve_with_health<H: Health>(
    name: &str,
    routes: Routes,
    listener: TcpListener,
    cfg: &ServerConfig,
    shutdown: Shutdown,
    mut ready: watch::Receiver<bool>,
    (health, health_service): (HealthReporter, HealthServer<H>),
) -> Result<(), ServerError> {
    let domain: Arc<str> = error_domain(name).into();
    // Checked before anything is reported or served.
    let tls = cfg.tls.load(cfg.handshake_timeout)?;
    let up = *ready.borrow_and_update();
    set_status(&health, name, up).await;
    // Follows `ready` until shutdown; the shutdown signal waits for it to
    // end, so it cannot turn health back to SERVING after that.
    let follower = {
        let (shutdown, health, name) = (shutdown.clone(), health.clone(), name.to_owned());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = shutdown.triggered() => break,
                    changed = ready.changed() => {
                        if changed.is_err() {
                            break;
                        }
                        let up = *ready.borrow_and_update();
                        set_status(&health, &name, up).await;
                    }
                }
            }
        })
    };
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(crm_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let routes = routes
        .add_service(health_service)
        .add_service(reflection().build_v1()?)
        .add_service(reflection().build_v1alpha()?);

    // Streams are ended only after health says NOT_SERVING, so a client
    // watching health sees that first.
    let drain = Shutdown::new();
    let abort = Shutdown::new();
    let stack = ServiceBuilder::new()
        .layer(RpcTraceLayer::new(name))
        .layer(DrainLayer::new(
            drain.clone(),
            abort.clone(),
            Arc::clone(&domain),
        ))
        .layer(DeadlineLayer::new(cfg.request_timeout, Arc::clone(&domain)))
        .layer(MessageSizeLimitLayer::new(
            cfg.max_request_bytes,
            Arc::clone(&domain),
        ))
        .into_inner();

    let local_addr = listener
        .local_addr()
        .map_or_else(|e| e.to_string(), |a| a.to_string());
    let incoming = Incoming::new(
        TcpIncoming::from(listener).with_nodelay(Some(true)),
        cfg.max_connections,
        ConnLimits {
            handshake_timeout: cfg.handshake_timeout,
            idle_timeout: cfg.connection_idle_timeout,
        },
    );
    let signal = {
        let (shutdown, health, name) = (shutdown.clone(), health.clone(), name.to_owned());
        async move {
            shutdown.triggered().await;
            let _ = follower.await;
            set_status(&health, &name, false).await;
            drain.trigger();
            tracing::info!(service = %name, "draining");
        }
    };
    let mut builder = Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls)?;
    }
    // Graceful only: no `max_connection_age_grace`, with which tonic (0.14)
    // skips the GOAWAY and closes the connection, calls and all, once
    // age + grace is over. Streams end by their own lifetime.
    if let Some(age) = cfg.max_connection_age {
        builder = builder.max_connection_age(jittered(age));
    }
    let server = builder
        .http2_keepalive_interval(Some(cfg.http2_keepalive_interval))
        .http2_keepalive_timeout(Some(cfg.http2_keepalive_timeout))
        .max_concurrent_streams(cfg.http2_max_concurrent_streams)
        .http2_max_header_list_size(cfg.http2_max_header_list_size)
        .layer(stack)
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, signal);
    tokio::pin!(server);
    tracing::info!(service = %name, addr = %local_addr, "serving");

    tokio::select! {
        result = &mut server => return result.map_err(ServerError::from),
        () = shutdown.triggered() => {}
    }
    // The last moment of the grace period is kept for the cut-off calls'
    // statuses to reach their clients.
    let flush = (cfg.grace_period / 10).min(Duration::from_secs(1));
    if let Ok(result) = tokio::time::timeout(cfg.grace_period - flush, &mut server).await {
        tracing::info!(service = %name, "stopped");
        return result.map_err(ServerError::from);
    }
    tracing::warn!(service = %name, grace_period = ?cfg.grace_period, "grace period over; ending the remaining calls");
    abort.trigger();
    match tokio::time::timeout(flush, &mut server).await {
        Ok(result) => result.map_err(ServerError::from),
        // Connections that still linger are left to the process exit.
        Err(_) => Ok(()),
    }
}

/// `age` plus up to a tenth more, drawn once per listener, so that
/// replicas started together do not send their clients away all at once.
fn jittered(age: Duration) -> Duration {
    use std::hash::{BuildHasher as _, Hasher as _};
    let random = std::collections::hash_map::RandomState::new()
        .build_hasher()
        .finish();
    age + age.mul_f64((random % 1000) as f64 / 10_000.0)
}

async fn set_status(health: &HealthReporter, name: &str, serving: bool) {
    let status = if serving {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    };
    health.set_service_status("", status).await;
    if !name.is_empty() {
        health.set_service_status(name, status).await;
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    };

    use hyper_util::rt::TokioIo;
    use tokio::time::Instant;
    use tokio_stream::StreamExt as _;
    use tonic::transport::Endpoint;
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };

    use super::*;

    fn request(service: &str) -> HealthCheckRequest {
        HealthCheckRequest {
            service: service.into(),
        }
    }

    /// Issue 15 part 8: long-lived connections never went away, so they
    /// stayed on the replicas that existed when they were opened. After
    /// `max_connection_age` the server sends GOAWAY: the client's next
    /// calls open a new connection, and a call in flight on the old one
    /// (a health watch) runs on.
    #[tokio::test]
    async fn an_old_connection_goes_away_without_cutting_its_calls() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let cfg = ServerConfig {
            max_connection_age: Some(Duration::from_millis(200)),
            ..ServerConfig::default()
        };
        let shutdown = Shutdown::new();
        let (reporter, service) = tonic_health::server::health_reporter();
        let (_ready, ready) = watch::channel(true);
        let server = {
            let (health, shutdown) = ((reporter.clone(), service), shutdown.clone());
            tokio::spawn(async move {
                let routes = Routes::default();
                serve_with_health("test", routes, listener, &cfg, shutdown, ready, health).await
            })
        };
        let connections = Arc::new(AtomicUsize::new(0));
        let channel = {
            let connections = Arc::clone(&connections);
            Endpoint::from_static("http://127.0.0.1").connect_with_connector_lazy(
                tower::service_fn(move |_| {
                    connections.fetch_add(1, Ordering::SeqCst);
                    async move { tokio::net::TcpStream::connect(addr).await.map(TokioIo::new) }
                }),
            )
        };
        let mut health = HealthClient::new(channel);
        let mut watch = health.watch(request("test")).await.unwrap().into_inner();
        let first = watch.next().await.unwrap().unwrap();
        assert_eq!(first.status(), ServingStatus::Serving);

        let deadline = Instant::now() + Duration::from_secs(10);
        let mut failed = 0;
        while connections.load(Ordering::SeqCst) < 2 {
            assert!(
                Instant::now() < deadline,
                "the connection was not sent away after max_connection_age"
            );
            if health.check(request("")).await.is_err() {
                failed += 1;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        // Calls that raced the GOAWAY fail at a tonic client with CANCELLED
        // ("connection closed"): never sent, but not retried by tonic.
        eprintln!("calls failed while the connection went away: {failed}");
        health.check(request("")).await.unwrap();

        // The watch is still on the first connection, and still served.
        reporter
            .set_service_status("test", tonic_health::ServingStatus::NotServing)
            .await;
        let next = watch.next().await.unwrap().unwrap();
        assert_eq!(next.status(), ServingStatus::NotServing);
        drop(watch);
        shutdown.trigger();
        server.await.unwrap().unwrap();
    }
}
