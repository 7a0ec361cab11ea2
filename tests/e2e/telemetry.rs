//! Telemetry as an operator's collector sees it: the suite, configured only
//! by the standard `OTEL_*` environment variables, exports by OTLP to a
//! receiver in this test; each component under its own `service.name`, a
//! conversion through the gateway one trace of SERVER and CLIENT spans
//! (gateway → leads → opportunities), RED metrics per method, and nothing
//! for health probes.
//!
//! The OpenTelemetry pipeline is process-wide (the global subscriber is set
//! once), so the suite runs in a child process: this same test binary, run
//! for this one test with the receiver's address in its environment.

use std::{
    collections::BTreeMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use crm_auth::Role;
use crm_e2e::{Clients as _, cny, created_lead, lead, start_with};
use crm_proto::crm::leads::v1 as pb;
use opentelemetry_proto::tonic::{
    collector::{
        metrics::v1::{
            ExportMetricsServiceRequest, ExportMetricsServiceResponse,
            metrics_service_server::{MetricsService, MetricsServiceServer},
        },
        trace::v1::{
            ExportTraceServiceRequest, ExportTraceServiceResponse,
            trace_service_server::{TraceService, TraceServiceServer},
        },
    },
    common::v1::{AnyValue, KeyValue, any_value::Value},
    metrics::v1::{metric::Data, number_data_point::Value as NumberValue},
    resource::v1::Resource,
    trace::v1::span::SpanKind,
};
use tonic::{Request, Response, Status};
use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};

/// Set in the child process: run the scenario and export, don't receive.
const CHILD: &str = "CRM_E2E_TELEMETRY_CHILD";

/// What the receiver got.
#[derive(Clone, Default)]
struct Received {
    traces: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
    metrics: Arc<Mutex<Vec<ExportMetricsServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for Received {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        self.traces.lock().unwrap().push(request.into_inner());
        Ok(Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Received {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        self.metrics.lock().unwrap().push(request.into_inner());
        Ok(Response::new(ExportMetricsServiceResponse::default()))
    }
}

async fn receiver() -> (SocketAddr, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Received::default();
    let server = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(received.clone()))
        .add_service(MetricsServiceServer::new(received.clone()))
        .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener));
    tokio::spawn(server);
    (addr, received)
}

fn text(value: Option<&AnyValue>) -> Option<String> {
    match value?.value.as_ref()? {
        Value::StringValue(s) => Some(s.clone()),
        Value::IntValue(i) => Some(i.to_string()),
        _ => None,
    }
}

fn attr(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| text(kv.value.as_ref()))
}

fn resource_attr(resource: Option<&Resource>, key: &str) -> Option<String> {
    attr(&resource?.attributes, key)
}

/// A span as the assertions need it.
#[derive(Debug, Clone)]
struct Seen {
    service: String,
    trace_id: Vec<u8>,
    span_id: Vec<u8>,
    parent: Vec<u8>,
    kind: i32,
    name: String,
    code: Option<String>,
}

fn spans(received: &Received) -> Vec<Seen> {
    let traces = received.traces.lock().unwrap();
    let mut seen = Vec::new();
    for request in traces.iter() {
        for rs in &request.resource_spans {
            let service = resource_attr(rs.resource.as_ref(), "service.name").unwrap_or_default();
            for ss in &rs.scope_spans {
                for s in &ss.spans {
                    seen.push(Seen {
                        service: service.clone(),
                        trace_id: s.trace_id.clone(),
                        span_id: s.span_id.clone(),
                        parent: s.parent_span_id.clone(),
                        kind: s.kind,
                        name: s.name.clone(),
                        code: attr(&s.attributes, "rpc.grpc.status_code"),
                    });
                }
            }
        }
    }
    seen
}

/// The chain gateway SERVER → gateway CLIENT → leads SERVER → leads CLIENT
/// → opportunities SERVER of one conversion, each span the parent of the
/// next, all in one trace.
fn conversion_chain(spans: &[Seen]) -> Option<Vec<Seen>> {
    const CONVERT: &str = "crm.leads.v1.LeadService/ConvertLead";
    const REMOTE: &str = "crm.opportunities.v1.OpportunityService/ConvertLead";
    let steps = [
        ("crm-gateway", SpanKind::Server, CONVERT),
        ("crm-gateway", SpanKind::Client, CONVERT),
        ("crm-leads", SpanKind::Server, CONVERT),
        ("crm-leads", SpanKind::Client, REMOTE),
        ("crm-opportunities", SpanKind::Server, REMOTE),
    ];
    let root = spans
        .iter()
        .find(|s| s.service == steps[0].0 && s.kind == steps[0].1 as i32 && s.name == steps[0].2)?;
    let mut chain = vec![root.clone()];
    for (service, kind, name) in &steps[1..] {
        let parent = chain.last()?;
        let next = spans.iter().find(|s| {
            s.trace_id == parent.trace_id
                && s.parent == parent.span_id
                && s.service == *service
                && s.kind == *kind as i32
                && s.name == *name
        })?;
        chain.push(next.clone());
    }
    Some(chain)
}

/// Data points of `metric` by service name, as (rpc.method, status code).
fn metric_points(received: &Received, metric: &str) -> BTreeMap<String, Vec<(String, String)>> {
    let metrics = received.metrics.lock().unwrap();
    let mut points: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for request in metrics.iter() {
        for rm in &request.resource_metrics {
            let service = resource_attr(rm.resource.as_ref(), "service.name").unwrap_or_default();
            for sm in &rm.scope_metrics {
                for m in sm.metrics.iter().filter(|m| m.name == metric) {
                    if let Some(Data::Histogram(h)) = &m.data {
                        for p in h.data_points.iter().filter(|p| p.count > 0) {
                            points.entry(service.clone()).or_default().push((
                                attr(&p.attributes, "rpc.method").unwrap_or_default(),
                                attr(&p.attributes, "rpc.grpc.status_code").unwrap_or_default(),
                            ));
                        }
                    }
                }
            }
        }
    }
    points
}

/// The values of `key` on the points of the gauge or sum `metric`, by
/// service name.
fn attribute_values(received: &Received, metric: &str, key: &str) -> BTreeMap<String, Vec<String>> {
    let metrics = received.metrics.lock().unwrap();
    let mut values: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for request in metrics.iter() {
        for rm in &request.resource_metrics {
            let service = resource_attr(rm.resource.as_ref(), "service.name").unwrap_or_default();
            for sm in &rm.scope_metrics {
                for m in sm.metrics.iter().filter(|m| m.name == metric) {
                    let points = match &m.data {
                        Some(Data::Gauge(g)) => &g.data_points,
                        Some(Data::Sum(s)) => &s.data_points,
                        _ => continue,
                    };
                    for p in points {
                        if let Some(value) = attr(&p.attributes, key) {
                            values.entry(service.clone()).or_default().push(value);
                        }
                    }
                }
            }
        }
    }
    values
}

/// Every (service name, metric name) exported.
fn metric_names(received: &Received) -> std::collections::BTreeSet<(String, String)> {
    let metrics = received.metrics.lock().unwrap();
    let mut names = std::collections::BTreeSet::new();
    for rm in metrics.iter().flat_map(|r| &r.resource_metrics) {
        let service = resource_attr(rm.resource.as_ref(), "service.name").unwrap_or_default();
        for m in rm.scope_metrics.iter().flat_map(|sm| &sm.metrics) {
            names.insert((service.clone(), m.name.clone()));
        }
    }
    names
}

/// The sum of the counter `metric` by service name and `reason`.
fn counter_sums(received: &Received, metric: &str) -> BTreeMap<(String, String), f64> {
    let metrics = received.metrics.lock().unwrap();
    let mut sums = BTreeMap::new();
    for request in metrics.iter() {
        for rm in &request.resource_metrics {
            let service = resource_attr(rm.resource.as_ref(), "service.name").unwrap_or_default();
            for sm in &rm.scope_metrics {
                for m in sm.metrics.iter().filter(|m| m.name == metric) {
                    if let Some(Data::Sum(sum)) = &m.data {
                        for p in &sum.data_points {
                            let value = match p.value {
                                Some(NumberValue::AsInt(i)) => i as f64,
                                Some(NumberValue::AsDouble(d)) => d,
                                None => 0.0,
                            };
                            let reason = attr(&p.attributes, "reason").unwrap_or_default();
                            // Cumulative: the latest point is the total.
                            sums.insert((service.clone(), reason), value);
                        }
                    }
                }
            }
        }
    }
    sums
}

/// `GET /metrics` of the scrape endpoint at `addr`: the whole response.
async fn scrape(addr: SocketAddr) -> String {
    tokio::task::spawn_blocking(move || {
        use std::io::{Read as _, Write as _};
        let mut stream = std::net::TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"GET /metrics HTTP/1.1\r\nhost: crm\r\n\r\n")
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    })
    .await
    .unwrap()
}

/// The child's part: a lead converted through the gateway (leads calls
/// opportunities), a health probe, then everything flushed on exit.
async fn convert_and_export() {
    // The export comes from the environment; the scrape endpoint from the
    // settings.
    let guard = crm_telemetry::init(&crm_telemetry::TelemetryConfig {
        prometheus_addr: Some("127.0.0.1:0".to_owned()),
        ..crm_telemetry::TelemetryConfig::default()
    })
    .unwrap();
    // A small burst per subject, so that one caller is soon rate-limited.
    let mut suite = start_with(|s| {
        s.server.rate_limit.subject_requests_per_second = 1;
        s.server.rate_limit.subject_burst = 5;
    })
    .await;
    let token = suite.token("acme", "amy", &[Role::Sales]);
    let mut amy = suite.leads_client(Some(&token));
    let created = created_lead(&mut amy, lead("Traced Robotics", "+86 138 0099 0001")).await;
    let converted = amy
        .convert_lead(pb::ConvertLeadRequest {
            id: created.id,
            amount: cny(1_000),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .lead
        .unwrap();
    assert!(!converted.opportunity_id.is_empty());
    let health = HealthClient::new(suite.gateway_channel())
        .check(HealthCheckRequest::default())
        .await
        .unwrap();
    assert_eq!(health.into_inner().status, 1, "SERVING");
    let mut eve = suite.leads_client(Some(&suite.token("acme", "eve", &[Role::Sales])));
    let mut limited = false;
    for _ in 0..20 {
        let listed = eve.list_leads(pb::ListLeadsRequest::default()).await;
        if listed.is_err_and(|s| s.code() == tonic::Code::ResourceExhausted) {
            limited = true;
            break;
        }
    }
    assert!(limited, "eve's burst is rate-limited");
    let scraped = scrape(crm_telemetry::prometheus_addr().unwrap()).await;
    assert!(scraped.starts_with("HTTP/1.1 200 OK"), "{scraped}");
    for family in [
        "# TYPE rpc_server_call_duration_seconds histogram",
        "# TYPE rpc_client_call_duration_seconds histogram",
        "# TYPE crm_server_refused_total counter",
    ] {
        assert!(scraped.contains(family), "{family} in:\n{scraped}");
    }
    let convert = ["rpc_method=\"ConvertLead\"", "rpc_grpc_status_code=\"0\""];
    for (name, service) in [
        ("rpc_server_call_duration_seconds_count", "crm-leads"),
        (
            "rpc_server_call_duration_seconds_count",
            "crm-opportunities",
        ),
        ("rpc_client_call_duration_seconds_count", "crm-leads"),
        ("rpc_client_call_duration_seconds_count", "crm-gateway"),
    ] {
        let labelled = format!("service_name=\"{service}\"");
        assert!(
            scraped.lines().any(|l| l.starts_with(&format!("{name}{{"))
                && l.contains(&labelled)
                && convert.iter().all(|c| l.contains(c))
                && l.ends_with(" 1")),
            "{name} of {service} in:\n{scraped}"
        );
    }
    suite.stop().await;
    // Flushes the spans and metrics still buffered: a blocking wait on
    // exports that need this runtime's other threads for their I/O.
    tokio::task::block_in_place(|| drop(guard));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_conversion_is_one_trace_across_gateway_leads_and_opportunities() {
    if std::env::var_os(CHILD).is_some() {
        convert_and_export().await;
        return;
    }
    let (addr, received) = receiver().await;
    let exe = std::env::current_exe().unwrap();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(exe)
            .args([
                "telemetry::a_conversion_is_one_trace_across_gateway_leads_and_opportunities",
                "--exact",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", format!("http://{addr}"))
            .env(
                "OTEL_RESOURCE_ATTRIBUTES",
                "deployment.environment.name=e2e",
            )
            .env_remove("OTEL_SERVICE_NAME")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
            .env_remove("OTEL_TRACES_SAMPLER")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "the child suite failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let chain = crm_testkit::eventually(Duration::from_secs(10), "the conversion's spans", || {
        let received = received.clone();
        async move { conversion_chain(&spans(&received)) }
    })
    .await;
    assert!(
        chain.iter().all(|s| s.code.as_deref() == Some("0")),
        "every hop OK: {chain:?}"
    );
    let all = spans(&received);
    assert!(
        !all.iter().any(|s| s.name.starts_with("grpc.health.")),
        "health probes make no spans"
    );

    // Each component's resource: its own name, the suite's namespace, a
    // version, the process's instance, and the environment's attributes.
    {
        let traces = received.traces.lock().unwrap();
        let resources: Vec<_> = traces
            .iter()
            .flat_map(|r| &r.resource_spans)
            .filter_map(|rs| rs.resource.as_ref())
            .collect();
        let leads = resources
            .iter()
            .find(|r| resource_attr(Some(r), "service.name").as_deref() == Some("crm-leads"))
            .expect("a crm-leads resource");
        assert_eq!(
            resource_attr(Some(leads), "service.namespace").as_deref(),
            Some("crm")
        );
        assert!(resource_attr(Some(leads), "service.version").is_some());
        assert!(resource_attr(Some(leads), "service.instance.id").is_some_and(|id| id.len() == 36));
        assert_eq!(
            resource_attr(Some(leads), "deployment.environment.name").as_deref(),
            Some("e2e")
        );
    }

    // RED: per component, per method and status; the conversion counted
    // once by each component that served it, not twice in one series.
    let served = crm_testkit::eventually(Duration::from_secs(10), "the RPC server metrics", || {
        let received = received.clone();
        async move {
            let points = metric_points(&received, "rpc.server.call.duration");
            ["crm-gateway", "crm-leads", "crm-opportunities"]
                .iter()
                .all(|s| points.contains_key(*s))
                .then_some(points)
        }
    })
    .await;
    let convert = ("ConvertLead".to_owned(), "0".to_owned());
    for service in ["crm-gateway", "crm-leads", "crm-opportunities"] {
        assert!(
            served[service].contains(&convert),
            "{service}: {:?}",
            served[service]
        );
    }
    assert!(
        !served.values().flatten().any(|(m, _)| m == "Check"),
        "health probes are not counted"
    );
    let called = metric_points(&received, "rpc.client.call.duration");
    assert!(
        called
            .get("crm-leads")
            .is_some_and(|p| p.contains(&convert)),
        "leads' call to opportunities: {called:?}"
    );
    assert!(
        called
            .get("crm-gateway")
            .is_some_and(|p| p.contains(&convert)),
        "the gateway's call to leads: {called:?}"
    );

    // The suite's own signals: the refused burst, counted by the component
    // that refused it.
    let refused = counter_sums(&received, crm_server::REFUSED);
    assert!(
        refused
            .iter()
            .any(|((service, reason), n)| service.starts_with("crm-")
                && reason == "RATE_LIMITED"
                && *n >= 1.0),
        "{refused:?}"
    );
    // Each service's pool and event head.
    let names = metric_names(&received);
    for service in ["crm-leads", "crm-opportunities"] {
        for metric in [
            "db.client.connection.count",
            "db.client.connection.max",
            "crm.events.head",
            "crm.events.unnumbered",
        ] {
            assert!(
                names.contains(&(service.to_owned(), metric.to_owned())),
                "{service} {metric}: {names:?}"
            );
        }
    }
    // Each sweeper's runs, under its own service (each runs once at start).
    for (service, sweeper) in [
        ("crm-leads", "pool"),
        ("crm-contracts", "deadlines"),
        ("crm-delivery", "risks"),
        ("crm-tickets", "sla"),
        ("crm-tickets", "tiers"),
    ] {
        let runs = attribute_values(&received, "crm.sweeper.runs", "sweeper");
        assert!(
            runs.get(service)
                .is_some_and(|sweepers| sweepers.iter().any(|s| s == sweeper)),
            "{service} {sweeper}: {runs:?}"
        );
    }
    // Each event consumer's lag and dead letters, under its own service.
    for (service, consumer) in [
        ("crm-delivery", "delivery.handover"),
        ("crm-tickets", "tickets.delivery-project-completed"),
        ("crm-tickets", "tickets.opportunities-account-owner"),
    ] {
        for metric in ["crm.events.consumer.lag", "crm.events.dead_lettered"] {
            let points = attribute_values(&received, metric, "consumer");
            assert!(
                points
                    .get(service)
                    .is_some_and(|consumers| consumers.iter().any(|c| c == consumer)),
                "{service} {metric} of {consumer}: {points:?}"
            );
        }
    }
}
