//! The gateway end to end on 127.0.0.1:0, in front of a fake leads service.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::BTreeMap,
    convert::Infallible,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use crm_auth::{AuthConfig, DevKeys, Role, TokenMinter, Verifier};
use crm_gateway::{GatewayConfig, GatewayError, RateLimitConfig};
use crm_proto::crm::{
    events::v1::{
        Heartbeat, SubscribeRequest, SubscribeResponse,
        event_service_client::EventServiceClient,
        event_service_server::{EventService, EventServiceServer},
        subscribe_response,
    },
    leads::v1::{GetLeadRequest, GetLeadResponse, Lead, lead_service_client::LeadServiceClient},
};
use crm_server::{ServerConfig, Shutdown, grpc::parse_grpc_timeout};
use http::HeaderMap;
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
    transport::{Channel, Endpoint, Server, server::TcpIncoming},
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

/// What the fake upstream saw of one call.
#[derive(Debug)]
struct Seen {
    path: String,
    headers: HeaderMap,
}

/// A leads service whose GetLead answers with the id it was asked for,
/// except `hold`, which waits for a permit from the test.
#[derive(Clone)]
struct FakeLeads {
    seen: mpsc::UnboundedSender<Seen>,
    release: Arc<Semaphore>,
}

impl NamedService for FakeLeads {
    const NAME: &'static str = "crm.leads.v1.LeadService";
}

impl tower::Service<http::Request<Body>> for FakeLeads {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<Body>) -> Self::Future {
        let _ = self.seen.send(Seen {
            path: req.uri().path().to_owned(),
            headers: req.headers().clone(),
        });
        let release = Arc::clone(&self.release);
        let handler = tower::service_fn(move |req: tonic::Request<GetLeadRequest>| {
            let release = Arc::clone(&release);
            async move {
                let id = req.into_inner().id;
                if let Some(size) = id.strip_prefix("huge:") {
                    // An error far over any header limit, as a careless
                    // service might make one.
                    let size = size.parse().unwrap_or(0);
                    return Err(Status::with_error_details(
                        Code::InvalidArgument,
                        "x".repeat(size),
                        tonic_types::ErrorDetails::with_error_info(
                            "BAD_VALUE",
                            "crm.leads",
                            std::collections::HashMap::from([(
                                "value".to_owned(),
                                "y".repeat(size),
                            )]),
                        ),
                    ));
                }
                if id == "hold" {
                    let _permit = release
                        .acquire()
                        .await
                        .map_err(|_| Status::internal("closed"))?;
                }
                Ok::<_, Status>(tonic::Response::new(GetLeadResponse {
                    lead: Some(Lead {
                        id,
                        ..Lead::default()
                    }),
                }))
            }
        });
        Box::pin(async move {
            let mut grpc =
                tonic::server::Grpc::new(ProstCodec::<GetLeadResponse, GetLeadRequest>::default());
            Ok(grpc.unary(handler, req).await)
        })
    }
}

struct Upstream {
    url: String,
    seen: mpsc::UnboundedReceiver<Seen>,
    release: Arc<Semaphore>,
}

async fn start_upstream() -> Upstream {
    let (seen_tx, seen) = mpsc::unbounded_channel();
    let release = Arc::new(Semaphore::new(0));
    let fake = FakeLeads {
        seen: seen_tx,
        release: Arc::clone(&release),
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        Server::builder()
            .add_service(fake)
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    Upstream { url, seen, release }
}

struct Gateway {
    addr: SocketAddr,
    minter: TokenMinter,
    _shutdown: Shutdown,
    _server: JoinHandle<Result<(), GatewayError>>,
    _keys: tempfile::TempDir,
}

async fn start_gateway(cfg: GatewayConfig) -> Gateway {
    let keys_dir = tempfile::tempdir().unwrap();
    let keys = DevKeys::load_or_create(keys_dir.path()).unwrap();
    let minter = keys.minter("crm", "crm").unwrap();
    let verifier =
        Arc::new(Verifier::new(&AuthConfig::default(), &[keys.public_key_pem()]).unwrap());
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let shutdown = Shutdown::new();
    let server = tokio::spawn({
        let shutdown = shutdown.clone();
        async move {
            crm_gateway::serve(&cfg, &ServerConfig::default(), verifier, listener, shutdown).await
        }
    });
    Gateway {
        addr,
        minter,
        _shutdown: shutdown,
        _server: server,
        _keys: keys_dir,
    }
}

fn with_leads(upstream: &Upstream) -> GatewayConfig {
    GatewayConfig {
        upstreams: BTreeMap::from([("crm.leads.v1".to_owned(), upstream.url.clone())]),
        ..GatewayConfig::default()
    }
}

fn channel(addr: SocketAddr) -> Channel {
    Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect_lazy()
}

impl Gateway {
    fn token(&self, tenant: &str) -> String {
        self.minter
            .mint("alice", tenant, &[Role::Sales], Duration::from_secs(3600))
            .unwrap()
    }

    fn request(&self, tenant: &str, id: &str) -> tonic::Request<GetLeadRequest> {
        let mut request = tonic::Request::new(GetLeadRequest { id: id.to_owned() });
        let bearer = format!("Bearer {}", self.token(tenant));
        request
            .metadata_mut()
            .insert("authorization", bearer.parse().unwrap());
        request
    }

    async fn get_lead(
        &self,
        request: tonic::Request<GetLeadRequest>,
    ) -> Result<tonic::Response<GetLeadResponse>, Status> {
        LeadServiceClient::new(channel(self.addr))
            .get_lead(request)
            .await
    }
}

fn reason(status: &Status) -> Option<(String, String)> {
    status
        .get_details_error_info()
        .map(|info| (info.reason, info.domain))
}

fn gateway_reason(reason: &str) -> Option<(String, String)> {
    Some((reason.to_owned(), "crm.gateway".to_owned()))
}

#[tokio::test]
async fn forwards_by_package_with_request_id_trace_and_remaining_deadline() {
    let _telemetry = crm_telemetry::init(&crm_telemetry::TelemetryConfig::default()).unwrap();
    let mut upstream = start_upstream().await;
    let gateway = start_gateway(GatewayConfig {
        max_timeout: Duration::from_secs(10),
        ..with_leads(&upstream)
    })
    .await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";

    let mut request = gateway.request("acme", "L1");
    request.set_timeout(Duration::from_secs(5));
    request
        .metadata_mut()
        .insert("x-request-id", "req-123".parse().unwrap());
    let traceparent = format!("00-{trace_id}-{client_span}-01");
    request
        .metadata_mut()
        .insert("traceparent", traceparent.parse().unwrap());
    let response = gateway.get_lead(request).await.unwrap();

    assert_eq!(
        response.get_ref().lead.as_ref().map(|l| l.id.as_str()),
        Some("L1")
    );
    assert_eq!(response.metadata().get("x-request-id").unwrap(), "req-123");
    let seen = within("the upstream call", upstream.seen.recv())
        .await
        .unwrap();
    assert_eq!(seen.path, "/crm.leads.v1.LeadService/GetLead");
    assert!(
        seen.headers.get("authorization").is_some(),
        "the user's token goes on"
    );
    assert_eq!(seen.headers.get("x-request-id").unwrap(), "req-123");
    let budget = parse_grpc_timeout(seen.headers.get("grpc-timeout").unwrap()).unwrap();
    // Less than the client asked for: the time spent so far is taken off.
    assert!(
        budget < Duration::from_secs(5) && budget > Duration::ZERO,
        "{budget:?}"
    );
    // Same trace, with the gateway's span as the upstream's parent.
    let forwarded = seen.headers.get("traceparent").unwrap().to_str().unwrap();
    assert!(
        forwarded.starts_with(&format!("00-{trace_id}-")),
        "{forwarded}"
    );
    assert!(!forwarded.contains(client_span), "{forwarded}");

    // No id and a deadline beyond the cap: an id is made, the cap applies.
    let mut request = gateway.request("acme", "L2");
    request.set_timeout(Duration::from_secs(3600));
    let response = gateway.get_lead(request).await.unwrap();
    let made = response
        .metadata()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert!(uuid::Uuid::parse_str(&made).is_ok(), "{made}");
    let seen = within("the upstream call", upstream.seen.recv())
        .await
        .unwrap();
    assert_eq!(seen.headers.get("x-request-id").unwrap(), made.as_str());
    let budget = parse_grpc_timeout(seen.headers.get("grpc-timeout").unwrap()).unwrap();
    assert!(budget <= Duration::from_secs(10), "{budget:?}");
}

#[tokio::test]
async fn a_package_without_an_upstream_is_unimplemented() {
    let gateway = start_gateway(GatewayConfig::default()).await;
    let status = gateway
        .get_lead(gateway.request("acme", "L1"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    assert_eq!(reason(&status), gateway_reason("UNKNOWN_PACKAGE"));
}

#[tokio::test]
async fn calls_need_a_token_but_health_does_not() {
    let upstream = start_upstream().await;
    let gateway = start_gateway(with_leads(&upstream)).await;

    let status = gateway
        .get_lead(tonic::Request::new(GetLeadRequest { id: "L1".into() }))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");

    let health = HealthClient::new(channel(gateway.addr))
        .check(HealthCheckRequest {
            service: "gateway".into(),
        })
        .await
        .unwrap();
    assert_eq!(health.get_ref().status(), ServingStatus::Serving);
}

#[tokio::test]
async fn calls_beyond_max_in_flight_are_shed_at_once() {
    let mut upstream = start_upstream().await;
    let gateway = Arc::new(
        start_gateway(GatewayConfig {
            max_in_flight: 1,
            ..with_leads(&upstream)
        })
        .await,
    );
    let held = tokio::spawn({
        let gateway = Arc::clone(&gateway);
        async move { gateway.get_lead(gateway.request("acme", "hold")).await }
    });
    within("the held call to reach the upstream", upstream.seen.recv()).await;

    let status = gateway
        .get_lead(gateway.request("acme", "L1"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(reason(&status), gateway_reason("OVERLOADED"));

    upstream.release.add_permits(1);
    assert!(within("the held call", held).await.unwrap().is_ok());
    // Its slot is free again once its response is done with.
    within("a call to be admitted again", async {
        while gateway
            .get_lead(gateway.request("acme", "L1"))
            .await
            .is_err()
        {
            tokio::task::yield_now().await;
        }
    })
    .await;
}

/// Finding 13: a service's oversized error fails only its own call, cut
/// down to a size clients accept; the upstream connection that other calls
/// share survives it.
#[tokio::test]
async fn finding_13_an_oversized_error_from_a_service_breaks_no_other_call() {
    let mut upstream = start_upstream().await;
    let gateway = Arc::new(start_gateway(with_leads(&upstream)).await);
    let held = tokio::spawn({
        let gateway = Arc::clone(&gateway);
        async move { gateway.get_lead(gateway.request("globex", "hold")).await }
    });
    within("the held call to reach the upstream", upstream.seen.recv()).await;

    let status = gateway
        .get_lead(gateway.request("acme", "huge:100000"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(
        reason(&status),
        Some(("BAD_VALUE".to_owned(), "crm.leads".to_owned()))
    );
    let sent = status.message().len() + status.details().len().div_ceil(3) * 4;
    assert!(sent < 8 * 1024, "a status of {sent} bytes");

    upstream.release.add_permits(1);
    let held = within("the held call", held).await.unwrap();
    assert!(held.is_ok(), "the other tenant's call survives: {held:?}");
}

#[tokio::test]
async fn each_tenant_has_its_own_rate_limit() {
    let upstream = start_upstream().await;
    let gateway = start_gateway(GatewayConfig {
        rate_limit: RateLimitConfig {
            requests_per_second: 1,
            burst: 2,
            ..RateLimitConfig::default()
        },
        ..with_leads(&upstream)
    })
    .await;

    for _ in 0..2 {
        gateway
            .get_lead(gateway.request("acme", "L1"))
            .await
            .unwrap();
    }
    let status = gateway
        .get_lead(gateway.request("acme", "L1"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(reason(&status), gateway_reason("RATE_LIMITED"));
    let retry = status
        .get_details_retry_info()
        .and_then(|r| r.retry_delay)
        .unwrap();
    assert!(
        retry > Duration::ZERO && retry <= Duration::from_secs(1),
        "{retry:?}"
    );

    // Another tenant is not held back by acme's calls.
    gateway
        .get_lead(gateway.request("globex", "L1"))
        .await
        .unwrap();
}

#[tokio::test]
async fn oversize_messages_are_refused() {
    let upstream = start_upstream().await;
    let gateway = start_gateway(GatewayConfig {
        max_request_bytes: 64,
        ..with_leads(&upstream)
    })
    .await;

    let status = gateway
        .get_lead(gateway.request("acme", &"x".repeat(100)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(reason(&status), gateway_reason("MESSAGE_TOO_LARGE"));
    // At the limit it goes through.
    gateway
        .get_lead(gateway.request("acme", &"x".repeat(40)))
        .await
        .unwrap();
}

#[tokio::test]
async fn an_unreachable_upstream_is_unavailable() {
    // A port that was just free: nothing listens there.
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let gateway = start_gateway(GatewayConfig {
        upstreams: BTreeMap::from([("crm.leads.v1".to_owned(), format!("http://{closed}"))]),
        ..GatewayConfig::default()
    })
    .await;

    let status = gateway
        .get_lead(gateway.request("acme", "L1"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(reason(&status), gateway_reason("UPSTREAM_UNAVAILABLE"));
}

#[tokio::test]
async fn a_slow_upstream_is_cut_at_the_gateways_max_timeout() {
    let upstream = start_upstream().await;
    let gateway = start_gateway(GatewayConfig {
        max_timeout: Duration::from_millis(200),
        ..with_leads(&upstream)
    })
    .await;

    let status = within(
        "the capped call",
        gateway.get_lead(gateway.request("acme", "hold")),
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(reason(&status), gateway_reason("DEADLINE_EXCEEDED"));
}

#[tokio::test]
async fn streams_are_relayed_message_by_message() {
    // The health service is a streaming upstream at hand; the proxy alone
    // is served here, since the gateway answers health itself.
    let (reporter, health) = tonic_health::server::health_reporter();
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_url = format!("http://{}", upstream.local_addr().unwrap());
    tokio::spawn(
        Server::builder()
            .add_service(health)
            .serve_with_incoming(TcpIncoming::from(upstream)),
    );

    let proxy = crm_gateway::Proxy::new(
        &BTreeMap::from([("grpc.health.v1".to_owned(), upstream_url)]),
        &crm_gateway::UpstreamConfig::default(),
    )
    .unwrap();
    let routes = Routes::from(Routes::default().into_axum_router().fallback_service(proxy));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        Server::builder()
            .add_routes(routes)
            .serve_with_incoming(TcpIncoming::from(listener)),
    );

    let mut watch = HealthClient::new(channel(addr))
        .watch(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = within("the first update", watch.message())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.status(), ServingStatus::Serving);
    reporter
        .set_service_status("", tonic_health::ServingStatus::NotServing)
        .await;
    let second = within("the second update", watch.message())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.status(), ServingStatus::NotServing);
}

/// An event stream that says which service it is by its head sequence,
/// and reports each request it was sent.
#[derive(Clone)]
struct FakeEvents {
    head: i64,
    seen: mpsc::UnboundedSender<SubscribeRequest>,
}

#[tonic::async_trait]
impl EventService for FakeEvents {
    type SubscribeStream = Pin<
        Box<
            dyn tonic::codegen::tokio_stream::Stream<Item = Result<SubscribeResponse, Status>>
                + Send,
        >,
    >;

    async fn subscribe(
        &self,
        request: tonic::Request<SubscribeRequest>,
    ) -> Result<tonic::Response<Self::SubscribeStream>, Status> {
        let _ = self.seen.send(request.into_inner());
        let heartbeat = SubscribeResponse {
            kind: Some(subscribe_response::Kind::Heartbeat(Heartbeat {
                time: None,
                head_sequence: self.head,
            })),
        };
        Ok(tonic::Response::new(Box::pin(
            tonic::codegen::tokio_stream::iter([Ok(heartbeat)]),
        )))
    }
}

/// An event service upstream; its URL and the requests it receives.
async fn start_events_upstream(head: i64) -> (String, mpsc::UnboundedReceiver<SubscribeRequest>) {
    let (seen, requests) = mpsc::unbounded_channel();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(
        Server::builder()
            .add_service(EventServiceServer::new(FakeEvents { head, seen }))
            .serve_with_incoming(TcpIncoming::from(listener)),
    );
    (url, requests)
}

impl Gateway {
    /// Subscribes through the gateway with `x-crm-source: source` (none if
    /// `None`); the first message's head tells which upstream answered.
    async fn subscribe(&self, source: Option<&str>) -> Result<i64, Status> {
        self.subscribe_with(source, SubscribeRequest::default())
            .await
    }

    /// Subscribes with `body`, and `x-crm-source: header` unless `None`.
    async fn subscribe_with(
        &self,
        header: Option<&str>,
        body: SubscribeRequest,
    ) -> Result<i64, Status> {
        let token = self
            .minter
            .mint(
                "erp",
                "acme",
                &[Role::Integration],
                Duration::from_secs(3600),
            )
            .unwrap();
        let mut request = tonic::Request::new(body);
        let metadata = request.metadata_mut();
        metadata.insert("authorization", format!("Bearer {token}").parse().unwrap());
        if let Some(source) = header {
            metadata.insert("x-crm-source", source.parse().unwrap());
        }
        let mut stream = EventServiceClient::new(channel(self.addr))
            .subscribe(request)
            .await?
            .into_inner();
        let first = within("the first message", stream.message())
            .await?
            .unwrap();
        match first.kind {
            Some(subscribe_response::Kind::Heartbeat(h)) => Ok(h.head_sequence),
            other => panic!("unexpected {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_multiplexed_package_is_routed_by_its_metadata_key() {
    let (leads, _) = start_events_upstream(1).await;
    let (opportunities, _) = start_events_upstream(2).await;
    let upstreams = BTreeMap::from([
        ("crm.leads.v1".to_owned(), leads),
        ("crm.opportunities.v1".to_owned(), opportunities),
    ]);
    let gateway = start_gateway(GatewayConfig {
        upstreams: upstreams.clone(),
        ..GatewayConfig::default()
    })
    .await;

    assert_eq!(gateway.subscribe(Some("leads")).await.unwrap(), 1);
    assert_eq!(gateway.subscribe(Some("opportunities")).await.unwrap(), 2);

    let status = gateway.subscribe(None).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(reason(&status), gateway_reason("ROUTING_KEY_MISSING"));
    assert!(status.message().contains("x-crm-source"), "{status:?}");
    assert!(
        status.message().contains("leads, opportunities"),
        "{status:?}"
    );

    // Unknown names, and names that would reach into another package.
    for source in [
        "tickets",
        "events",
        "leads.v1",
        "LEADS",
        "leads.v1.LeadService/x",
    ] {
        let status = gateway.subscribe(Some(source)).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{source}: {status:?}");
        assert_eq!(
            reason(&status),
            gateway_reason("ROUTING_KEY_UNKNOWN"),
            "{source}"
        );
        assert!(status.message().contains("x-crm-source"), "{status:?}");
    }

    // The rule is configuration: without it the package is routed by name.
    let plain = start_gateway(GatewayConfig {
        upstreams,
        multiplexed: BTreeMap::new(),
        multiplexed_fields: BTreeMap::new(),
        ..GatewayConfig::default()
    })
    .await;
    let status = plain.subscribe(Some("leads")).await.unwrap_err();
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
    assert_eq!(reason(&status), gateway_reason("UNKNOWN_PACKAGE"));
}

fn request_naming(source: &str) -> SubscribeRequest {
    SubscribeRequest {
        source: source.to_owned(),
        ..SubscribeRequest::default()
    }
}

#[tokio::test]
async fn a_subscription_names_its_service_in_the_request() {
    let (leads, mut leads_seen) = start_events_upstream(1).await;
    let (opportunities, _) = start_events_upstream(2).await;
    let gateway = start_gateway(GatewayConfig {
        upstreams: BTreeMap::from([
            ("crm.leads.v1".to_owned(), leads),
            ("crm.opportunities.v1".to_owned(), opportunities),
        ]),
        ..GatewayConfig::default()
    })
    .await;

    // Only the body names the service: what generated clients send.
    assert_eq!(
        gateway
            .subscribe_with(None, request_naming("opportunities"))
            .await
            .unwrap(),
        2
    );
    // A first message spread over several HTTP/2 frames reaches the
    // upstream exactly as sent.
    let big = SubscribeRequest {
        after_sequence: 0,
        types: (0..100)
            .map(|i| format!("crm.leads.v1.T{i}{}", "x".repeat(200)))
            .collect(),
        source: "leads".to_owned(),
        ..SubscribeRequest::default()
    };
    assert_eq!(gateway.subscribe_with(None, big.clone()).await.unwrap(), 1);
    let seen = within("the upstream call", leads_seen.recv())
        .await
        .unwrap();
    assert_eq!(seen, big);

    // Both, naming the same service.
    assert_eq!(
        gateway
            .subscribe_with(Some("leads"), request_naming("leads"))
            .await
            .unwrap(),
        1
    );

    // Both, naming different services: refused, not guessed.
    let status = gateway
        .subscribe_with(Some("leads"), request_naming("opportunities"))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(reason(&status), gateway_reason("ROUTING_KEY_CONFLICT"));
    assert!(status.message().contains("`source`"), "{status:?}");
    assert!(status.message().contains("x-crm-source"), "{status:?}");

    // An unknown name in the body, and an overlong one (not echoed whole).
    for source in [
        "tickets".to_owned(),
        "leads.v1".to_owned(),
        "y".repeat(10_000),
    ] {
        let status = gateway
            .subscribe_with(None, request_naming(&source))
            .await
            .unwrap_err();
        assert_eq!(reason(&status), gateway_reason("ROUTING_KEY_UNKNOWN"));
        assert!(status.message().len() < 500, "{}", status.message().len());
    }
}

#[tokio::test]
async fn a_subscription_naming_no_service_is_refused_naming_the_field() {
    let (leads, _) = start_events_upstream(1).await;
    let gateway = start_gateway(GatewayConfig {
        upstreams: BTreeMap::from([("crm.leads.v1".to_owned(), leads)]),
        ..GatewayConfig::default()
    })
    .await;

    let status = gateway
        .subscribe_with(None, SubscribeRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(reason(&status), gateway_reason("ROUTING_KEY_MISSING"));
    assert!(
        status
            .message()
            .starts_with("the request's `source` field (or metadata x-crm-source) is required"),
        "{status:?}"
    );
    assert!(status.message().contains("one of: leads"), "{status:?}");
    let violations = status
        .get_details_bad_request()
        .map(|b| b.field_violations)
        .unwrap_or_default();
    assert_eq!(
        violations
            .iter()
            .map(|v| v.field.as_str())
            .collect::<Vec<_>>(),
        ["source"]
    );
}

#[tokio::test]
async fn a_first_message_over_the_limit_is_refused_before_routing() {
    let (leads, _) = start_events_upstream(1).await;
    let gateway = start_gateway(GatewayConfig {
        upstreams: BTreeMap::from([("crm.leads.v1".to_owned(), leads)]),
        max_request_bytes: 64,
        ..GatewayConfig::default()
    })
    .await;
    let status = gateway
        .subscribe_with(None, request_naming(&"l".repeat(100)))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(reason(&status), gateway_reason("MESSAGE_TOO_LARGE"));
    assert_eq!(
        gateway
            .subscribe_with(None, request_naming("leads"))
            .await
            .unwrap(),
        1
    );
}
