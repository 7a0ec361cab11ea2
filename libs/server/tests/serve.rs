//! `serve` end to end on 127.0.0.1:0: health, reflection, the shared
//! stack's limits, and the shutdown sequence.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use crm_server::{Deadline, ServerConfig, ServerError, Shutdown, serve};
use http::uri::PathAndQuery;
use tokio::{
    net::TcpListener,
    sync::{Semaphore, mpsc},
    task::JoinHandle,
};
use tonic::{
    Code, Status,
    body::Body,
    server::NamedService,
    service::Routes,
    transport::{Channel, Endpoint},
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};
use tonic_prost::ProstCodec;
use tonic_types::StatusExt as _;

/// Generous bound on anything a test waits for; never a pause.
const DEADLINE: Duration = Duration::from_secs(10);

async fn within<F: Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(DEADLINE, f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen within {DEADLINE:?}"))
}

/// `test.v1.Slow/Call`: announces each call with the time left of its
/// deadline, then answers once the test hands it a permit.
#[derive(Clone)]
struct Slow {
    started: mpsc::UnboundedSender<Option<Duration>>,
    release: Arc<Semaphore>,
}

impl NamedService for Slow {
    const NAME: &'static str = "test.v1.Slow";
}

impl tower::Service<http::Request<Body>> for Slow {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let this = self.clone();
        let handler = tower::service_fn(move |req: tonic::Request<()>| {
            let this = this.clone();
            let remaining = req.extensions().get::<Deadline>().map(Deadline::remaining);
            async move {
                let _ = this.started.send(remaining);
                let _permit = this
                    .release
                    .acquire()
                    .await
                    .map_err(|_| Status::internal("closed"))?;
                Ok::<_, Status>(tonic::Response::new(()))
            }
        });
        Box::pin(async move {
            let mut grpc = tonic::server::Grpc::new(ProstCodec::<(), ()>::default());
            Ok(grpc.unary(handler, req).await)
        })
    }
}

struct Running {
    addr: SocketAddr,
    shutdown: Shutdown,
    server: JoinHandle<Result<(), ServerError>>,
    started: mpsc::UnboundedReceiver<Option<Duration>>,
    release: Arc<Semaphore>,
}

async fn start(cfg: ServerConfig) -> Running {
    let (started_tx, started) = mpsc::unbounded_channel();
    let release = Arc::new(Semaphore::new(0));
    let slow = Slow {
        started: started_tx,
        release: Arc::clone(&release),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    let server = tokio::spawn({
        let shutdown = shutdown.clone();
        async move { serve("test", Routes::new(slow), listener, &cfg, shutdown).await }
    });
    Running {
        addr,
        shutdown,
        server,
        started,
        release,
    }
}

async fn channel(addr: SocketAddr) -> Channel {
    // Lazy: the first call connects, so a server still starting is no race.
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy()
}

async fn call_slow(channel: Channel, timeout: Option<Duration>) -> Result<(), Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let mut request = tonic::Request::new(());
    if let Some(timeout) = timeout {
        request.set_timeout(timeout);
    }
    grpc.unary(
        request,
        PathAndQuery::from_static("/test.v1.Slow/Call"),
        ProstCodec::<(), ()>::default(),
    )
    .await
    .map(|_| ())
}

async fn check(channel: Channel, service: &str) -> Result<ServingStatus, Status> {
    let response = HealthClient::new(channel)
        .check(HealthCheckRequest {
            service: service.to_owned(),
        })
        .await?;
    Ok(response.into_inner().status())
}

fn reason(status: &Status) -> Option<(String, String)> {
    status
        .get_details_error_info()
        .map(|info| (info.reason, info.domain))
}

#[tokio::test]
async fn health_serves_and_in_flight_calls_finish_after_shutdown() {
    let mut server = start(ServerConfig::default()).await;
    let channel = channel(server.addr).await;

    assert_eq!(
        check(channel.clone(), "").await.unwrap(),
        ServingStatus::Serving
    );
    assert_eq!(
        check(channel.clone(), "test").await.unwrap(),
        ServingStatus::Serving
    );

    let in_flight = tokio::spawn(call_slow(channel.clone(), None));
    within("the call to start", server.started.recv()).await;
    server.shutdown.trigger();
    // Let the call finish only after the server has begun to drain: a new
    // connection is refused once it stops accepting.
    within("the listener to close", async {
        while tokio::net::TcpStream::connect(server.addr).await.is_ok() {
            tokio::task::yield_now().await;
        }
    })
    .await;
    assert!(!server.server.is_finished());
    server.release.add_permits(1);

    let outcome = within("the in-flight call", in_flight).await.unwrap();
    assert!(outcome.is_ok(), "{outcome:?}");
    let stopped = within("serve to return", server.server).await.unwrap();
    assert!(stopped.is_ok(), "{stopped:?}");
}

#[tokio::test]
async fn shutdown_ends_calls_still_running_at_the_grace_period() {
    let cfg = ServerConfig {
        grace_period: Duration::from_millis(300),
        ..ServerConfig::default()
    };
    let mut server = start(cfg).await;
    let in_flight = tokio::spawn(call_slow(channel(server.addr).await, None));
    within("the call to start", server.started.recv()).await;

    server.shutdown.trigger();

    let stopped = within("serve to return", server.server).await.unwrap();
    assert!(stopped.is_ok(), "{stopped:?}");
    let status = within("the cut-off call", in_flight)
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(
        reason(&status),
        Some(("SHUTTING_DOWN".into(), "crm.test".into()))
    );
}

#[tokio::test]
async fn open_streams_see_not_serving_then_end_with_unavailable() {
    // A grace period far beyond the test's deadline: only ending the idle
    // stream lets serve return in time.
    let cfg = ServerConfig {
        grace_period: Duration::from_secs(120),
        ..ServerConfig::default()
    };
    let server = start(cfg).await;
    let mut watch = HealthClient::new(channel(server.addr).await)
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = within("the first health update", watch.message())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.status(), ServingStatus::Serving);

    server.shutdown.trigger();

    let update = within("NOT_SERVING", watch.message())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(update.status(), ServingStatus::NotServing);
    let end = within("the stream to end", watch.message())
        .await
        .unwrap_err();
    assert_eq!(end.code(), Code::Unavailable, "{end:?}");
    let stopped = within("serve to return", server.server).await.unwrap();
    assert!(stopped.is_ok(), "{stopped:?}");
}

#[tokio::test]
async fn calls_are_cut_at_the_request_timeout() {
    let cfg = ServerConfig {
        request_timeout: Duration::from_millis(200),
        ..ServerConfig::default()
    };
    let server = start(cfg).await;
    let status = within(
        "the capped call",
        call_slow(channel(server.addr).await, None),
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(
        reason(&status),
        Some(("DEADLINE_EXCEEDED".into(), "crm.test".into()))
    );
}

#[tokio::test]
async fn handlers_see_the_shorter_of_the_clients_deadline_and_the_cap() {
    let mut server = start(ServerConfig::default()).await;
    let channel = channel(server.addr).await;

    let call = tokio::spawn(call_slow(channel.clone(), Some(Duration::from_secs(5))));
    let remaining = within("the call", server.started.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        remaining <= Duration::from_secs(5) && remaining > Duration::ZERO,
        "{remaining:?}"
    );
    server.release.add_permits(1);
    assert!(within("the answer", call).await.unwrap().is_ok());

    let call = tokio::spawn(call_slow(channel, Some(Duration::from_secs(3600))));
    let remaining = within("the call", server.started.recv())
        .await
        .unwrap()
        .unwrap();
    let cap = ServerConfig::default().request_timeout;
    assert!(remaining <= cap && remaining > cap / 2, "{remaining:?}");
    server.release.add_permits(1);
    assert!(within("the answer", call).await.unwrap().is_ok());
}

#[tokio::test]
async fn oversize_request_messages_are_refused() {
    let cfg = ServerConfig {
        max_request_bytes: 64,
        ..ServerConfig::default()
    };
    let server = start(cfg).await;
    let channel = channel(server.addr).await;

    let status = check(channel.clone(), &"x".repeat(100)).await.unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(
        reason(&status),
        Some(("MESSAGE_TOO_LARGE".into(), "crm.test".into()))
    );
    // Under the limit the health service answers itself: unknown service.
    let status = check(channel, &"x".repeat(40)).await.unwrap_err();
    assert_eq!(status.code(), Code::NotFound, "{status:?}");
}

#[tokio::test]
async fn reflection_lists_the_contracts() {
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };

    let server = start(ServerConfig::default()).await;
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut responses = ServerReflectionClient::new(channel(server.addr).await)
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let response = within("the reflection answer", responses.message())
        .await
        .unwrap()
        .unwrap();
    let Some(MessageResponse::ListServicesResponse(list)) = response.message_response else {
        panic!("unexpected answer {response:?}");
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.iter().any(|n| n == "crm.leads.v1.LeadService"),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n == "grpc.health.v1.Health"),
        "{names:?}"
    );
}

#[test]
fn error_domains_name_the_service() {
    assert_eq!(crm_server::error_domain("leads"), "crm.leads");
    assert_eq!(
        crm_server::error_domain("crm.leads.v1.LeadService"),
        "crm.leads"
    );
    assert_eq!(crm_server::error_domain("gateway"), "crm.gateway");
}
