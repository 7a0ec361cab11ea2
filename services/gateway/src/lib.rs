//! The gateway: a generic gRPC reverse proxy routing by package, with
//! trace, deadline, load shedding, auth and per-tenant rate limiting.
//!
//! A call's way through, outermost first (the first four come from
//! [`crm_server::serve`], which also serves the gateway's own health and
//! reflection, both public):
//!
//! trace → drain on shutdown → deadline (`server.request_timeout`) → size
//! (`server.max_request_bytes`) → **request id → deadline (`max_timeout`,
//! the remaining budget forwarded) → auth → fair shares
//! ([`crm_server::FairLayer`]: rate limits per tenant and per subject, caps
//! on unary calls and, apart, on streams, per process, tenant and subject,
//! idle request bodies, stream lifetime) → size (`max_request_bytes`) →
//! route by package**.
//!
//! Unary calls and streams reach a service over separate HTTP/2
//! connections ([`UpstreamConfig`]), and what comes back is bounded: no
//! stalled stream or oversized reply can hold up or break other calls.
//!
//! There is no per-method code: a new service or method needs only an
//! `upstreams` entry for its package and its policy in the contract. A
//! package that every service serves for itself (`crm.events.v1`) is
//! `multiplexed`: routed by the service the call names instead of by its
//! own name, with a metadata key (`x-crm-source: leads` → the
//! `crm.leads.v1` upstream) or a field of the first request message
//! (`multiplexed_fields`: `SubscribeRequest.source`), read without
//! consuming the body, which is forwarded byte for byte.

mod config;
mod first_message;
mod health;
mod proxy;
mod request_id;

use std::{pin::Pin, sync::Arc};

use crm_server::{DeadlineLayer, FairLayer, MessageSizeLimitLayer, ServerConfig, Shutdown};
use tokio::net::TcpListener;
use tonic::service::Routes;
use tower::ServiceBuilder;

pub use config::{GatewayConfig, UpstreamConfig};
pub use crm_server::{CallLimits, RateLimitConfig};
pub use proxy::Proxy;
pub use request_id::{RequestIdLayer, X_REQUEST_ID};

/// The `ErrorInfo` domain of the errors the gateway itself makes.
pub const ERROR_DOMAIN: &str = "crm.gateway";

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// Why the gateway could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("gateway.upstreams.\"{package}\": {url:?} is not a valid URL: {source}")]
    Upstream {
        package: String,
        url: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("gateway.multiplexed.\"{package}\": {key:?} is not a valid metadata key")]
    MultiplexKey { package: String, key: String },
    #[error("gateway.multiplexed_fields.\"{package}\": {field:?}: {reason}")]
    MultiplexField {
        package: String,
        field: String,
        reason: String,
    },
    #[error(transparent)]
    Server(#[from] crm_server::ServerError),
    #[error(transparent)]
    Tls(#[from] crm_server::TlsError),
}

/// The gateway's proxy stack as routes whose fallback takes every path the
/// routes do not otherwise serve; [`serve`] adds health and reflection.
pub fn routes(
    cfg: &GatewayConfig,
    verifier: Arc<crm_auth::Verifier>,
) -> Result<Routes, GatewayError> {
    let proxy = ServiceBuilder::new()
        .layer(RequestIdLayer)
        .layer(DeadlineLayer::new(cfg.max_timeout, ERROR_DOMAIN))
        .layer(crm_auth::AuthLayer::new(verifier))
        .layer(FairLayer::new(
            cfg.max_in_flight,
            &cfg.rate_limit,
            &cfg.limits,
            ERROR_DOMAIN,
        ))
        .layer(MessageSizeLimitLayer::new(
            cfg.max_request_bytes,
            ERROR_DOMAIN,
        ))
        .service(
            Proxy::secured(&cfg.upstreams, &cfg.upstream, &cfg.client_tls.load()?)?
                .multiplexed(&cfg.multiplexed)?
                .routing_fields(&cfg.multiplexed_fields, cfg.max_request_bytes)?,
        );
    let router = Routes::default().into_axum_router().fallback_service(proxy);
    Ok(Routes::from(router))
}

/// Serves the gateway on `listener` until `shutdown`, draining as
/// [`crm_server::serve`] does.
pub async fn serve(
    cfg: &GatewayConfig,
    server: &ServerConfig,
    verifier: Arc<crm_auth::Verifier>,
    listener: TcpListener,
    shutdown: Shutdown,
) -> Result<(), GatewayError> {
    let routes = routes(cfg, verifier)?;
    let health = tonic_health::server::health_reporter();
    let followers = health::follow_upstreams(
        &cfg.upstreams,
        &cfg.client_tls.load()?,
        &health.0,
        cfg.upstream_health_interval,
        &shutdown,
    )?;
    tracing::info!(
        upstreams = ?cfg.upstreams,
        multiplexed = ?cfg.multiplexed,
        multiplexed_fields = ?cfg.multiplexed_fields,
        "gateway routes"
    );
    // The gateway itself is ready as long as it runs.
    let (_ready, ready) = tokio::sync::watch::channel(true);
    let served =
        crm_server::serve_with_health("gateway", routes, listener, server, shutdown, ready, health)
            .await;
    for follower in followers {
        follower.abort();
    }
    served?;
    Ok(())
}
