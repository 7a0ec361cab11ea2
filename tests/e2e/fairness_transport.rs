//! No tenant can starve another at the transport and at the gateway: each
//! test names the finding it guards, floods boundedly over real sockets and
//! waits on conditions with deadlines.

use std::{future::Future, net::SocketAddr, time::Duration};

use crm::testing::Authorized;
use crm_auth::Role;
use crm_e2e::*;
use crm_proto::crm::{
    events::v1::{self as ev, event_service_client::EventServiceClient},
    leads::v1 as pb,
};
use crm_testkit::Bearer;
use prost::bytes::{Buf as _, BufMut as _};
use tokio::io::AsyncReadExt as _;
use tonic::{
    Code, Status,
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    service::interceptor::InterceptedService,
    transport::Endpoint,
};
use tonic_types::StatusExt as _;

/// Generous bound on anything a test waits for; never a pause.
const DEADLINE: Duration = Duration::from_secs(15);

async fn within<F: Future>(what: &str, f: F) -> F::Output {
    tokio::time::timeout(DEADLINE, f)
        .await
        .unwrap_or_else(|_| panic!("{what} did not happen within {DEADLINE:?}"))
}

fn reason(status: &Status) -> String {
    status
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default()
}

fn request(source: &str) -> ev::SubscribeRequest {
    ev::SubscribeRequest {
        source: source.into(),
        ..Default::default()
    }
}

/// An event client on a connection of its own whose receive windows are
/// the protocol's smallest: a consumer that reads slowly (here: not at all)
/// leaves the rest of its stream in the gateway's windows.
fn slow_consumer(suite: &TestSuite, token: &str) -> EventsClient {
    let channel = Endpoint::from_shared(format!("http://{}", suite.gateway))
        .unwrap()
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect_lazy();
    EventServiceClient::new(InterceptedService::new(
        channel,
        Bearer::new(Some(token)).with_source("leads"),
    ))
}

/// Raw message bytes: lets a test drive a call whose request body it
/// controls (here: one that never ends).
#[derive(Debug, Clone, Default)]
struct Raw;

impl Codec for Raw {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = Raw;
    type Decoder = Raw;

    fn encoder(&mut self) -> Raw {
        Raw
    }

    fn decoder(&mut self) -> Raw {
        Raw
    }
}

impl Encoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Decoder for Raw {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

/// A unary call (CreateLead) whose request body starts and never ends.
async fn endless_create_lead(channel: Authorized) -> Result<Vec<u8>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|e| Status::unavailable(e.to_string()))?;
    let path = "/crm.leads.v1.LeadService/CreateLead".parse().unwrap();
    let body = tonic::codegen::tokio_stream::pending::<Vec<u8>>();
    grpc.client_streaming(tonic::Request::new(body), path, Raw)
        .await
        .map(tonic::Response::into_inner)
}

async fn quiet_lead_is_served(quiet: &mut LeadsClient, id: &str) {
    let reply = tokio::time::timeout(
        Duration::from_secs(5),
        quiet.get_lead(pb::GetLeadRequest { id: id.into() }),
    )
    .await;
    assert!(
        matches!(reply, Ok(Ok(_))),
        "the quiet tenant is served: {reply:?}"
    );
}

async fn quiet_tenant(suite: &TestSuite) -> (LeadsClient, String) {
    let mut quiet = suite.leads_client(Some(&suite.token("quiet", "quinn", &[Role::Sales])));
    let id = quiet
        .create_lead(pb::CreateLeadRequest {
            lead: Some(lead("Quiet Co", "+86 139 0000 0001")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .lead
        .unwrap()
        .id;
    (quiet, id)
}

/// Finding 1: one tenant's streams and never-ending request bodies fill a
/// share of their own, not the gateway's whole in-flight pool.
#[tokio::test]
async fn finding_1_a_tenants_streams_and_endless_bodies_leave_other_tenants_served() {
    let suite = start_with(|s| {
        s.gateway.max_in_flight = 16;
        s.gateway.limits.tenant_streams = 8;
        s.gateway.limits.subject_streams = 4;
        s.gateway.limits.tenant_calls = 4;
        s.gateway.limits.subject_calls = 4;
        s.gateway.limits.request_idle_timeout = Duration::from_millis(500);
    })
    .await;
    let (mut quiet, id) = quiet_tenant(&suite).await;

    // Twenty streams from two integration accounts of one tenant.
    let mut open = Vec::new();
    let mut refused = Vec::new();
    for i in 0..20 {
        let token = suite.token("noisy", &format!("erp-{}", i % 2), &[Role::Integration]);
        let mut client = suite.events_client(&token, "leads");
        match within("a stream to open", client.subscribe(request("leads"))).await {
            Ok(stream) => open.push(stream.into_inner()),
            Err(status) => refused.push(status),
        }
    }
    assert_eq!(open.len(), 8, "the tenant's share of streams: {refused:?}");
    assert!(
        refused
            .iter()
            .all(|s| s.code() == Code::ResourceExhausted && reason(s) == "TOO_MANY_STREAMS"),
        "{refused:?}"
    );
    quiet_lead_is_served(&mut quiet, &id).await;
    let mut quiet_events =
        suite.events_client(&suite.token("quiet", "oa", &[Role::Integration]), "leads");
    within(
        "the quiet tenant's stream",
        quiet_events.subscribe(request("leads")),
    )
    .await
    .unwrap();

    // Twenty unary calls whose bodies never end, from one sales user.
    let noisy = suite.token("noisy", "spammer", &[Role::Sales]);
    let mut endless = tokio::task::JoinSet::new();
    for _ in 0..20 {
        endless.spawn(endless_create_lead(suite.through_gateway(Some(&noisy))));
    }
    let (ended, ()) = tokio::join!(
        within("every endless call to end", endless.join_all()),
        quiet_lead_is_served(&mut quiet, &id),
    );
    // Over the share: refused at once; within it: failed once idle.
    let codes: Vec<_> = ended
        .iter()
        .map(|r| r.as_ref().err().map(|s| (s.code(), reason(s))))
        .collect();
    let over = (
        Some((Code::ResourceExhausted, "TOO_MANY_CALLS".to_owned())),
        16,
    );
    let idle = (
        Some((Code::DeadlineExceeded, "REQUEST_BODY_IDLE".to_owned())),
        4,
    );
    for (code, count) in [over, idle] {
        assert_eq!(
            codes.iter().filter(|c| **c == code).count(),
            count,
            "{codes:?}"
        );
    }
    quiet_lead_is_served(&mut quiet, &id).await;
}

/// Finding 1 (lifetime): a stream ends after its maximum lifetime with
/// UNAVAILABLE and a reconnect hint, through the gateway and directly.
#[tokio::test]
async fn finding_1_streams_end_at_their_lifetime_with_a_reconnect_hint() {
    let suite = start_with(|s| {
        s.gateway.limits.stream_lifetime = Duration::from_millis(400);
        s.server.limits.stream_lifetime = Duration::from_millis(400);
    })
    .await;
    let token = suite.token("acme", "oa", &[Role::Integration]);
    let through = suite.events_client(&token, "leads");
    let direct = EventServiceClient::new(suite.direct("leads", Some(&token)));
    for (what, mut client) in [("gateway", through), ("direct", direct)] {
        let mut stream = client
            .subscribe(request("leads"))
            .await
            .unwrap()
            .into_inner();
        let end = within(&format!("the {what} stream to end"), async {
            loop {
                match stream.message().await {
                    Ok(Some(_)) => {}
                    Ok(None) => return None,
                    Err(status) => return Some(status),
                }
            }
        })
        .await
        .unwrap_or_else(|| panic!("{what}: the stream ended without a status"));
        assert_eq!(end.code(), Code::Unavailable, "{what}: {end:?}");
        assert_eq!(reason(&end), "STREAM_LIFETIME", "{what}");
        assert!(end.get_details_retry_info().is_some(), "{what}: {end:?}");
    }
}

/// Finding 2: consumers that read slowly through the gateway stall only
/// their own streams: another tenant's unary calls and streams to the same
/// service go on.
#[tokio::test]
async fn finding_2_slow_event_consumers_do_not_block_other_tenants() {
    let suite = start().await;
    let (mut quiet, id) = quiet_tenant(&suite).await;
    // A backlog of large events (a LeadCreated per row, each ~9 KB).
    let mut boss = suite.leads_client(Some(&suite.token("noisy", "boss", &[Role::Manager])));
    let rows: Vec<_> = (0..200)
        .map(|i| pb::Lead {
            notes: "n".repeat(9_000),
            ..lead(&format!("Backlog {i}"), &format!("+86 137 {i:08}"))
        })
        .collect();
    let imported = boss
        .batch_create_leads(pb::BatchCreateLeadsRequest {
            leads: rows,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(imported.accepted_count, 200);

    // Four consumers that read one message and then nothing.
    let token = suite.token("noisy", "erp", &[Role::Integration]);
    let mut stalled = Vec::new();
    for _ in 0..4 {
        let mut client = slow_consumer(&suite, &token);
        let mut stream = within(
            "a slow consumer's stream",
            client.subscribe(request("leads")),
        )
        .await
        .unwrap()
        .into_inner();
        within("its first event", stream.message())
            .await
            .unwrap()
            .unwrap();
        stalled.push((client, stream));
    }

    for _ in 0..5 {
        quiet_lead_is_served(&mut quiet, &id).await;
    }
    let mut quiet_events =
        suite.events_client(&suite.token("quiet", "oa", &[Role::Integration]), "leads");
    let mut stream = within(
        "the quiet tenant's stream",
        quiet_events.subscribe(request("leads")),
    )
    .await
    .unwrap()
    .into_inner();
    within("the quiet tenant's first message", stream.message())
        .await
        .unwrap()
        .unwrap();
    drop(stalled);
}

/// A raw TCP connection that sends nothing: reads the server's first
/// frame (its SETTINGS) and returns the advertised
/// SETTINGS_MAX_CONCURRENT_STREAMS, then whether the server closes it
/// within the deadline.
async fn silent_socket(addr: SocketAddr) -> (tokio::net::TcpStream, Option<u32>) {
    let mut socket = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut header = [0_u8; 9];
    within("the server's SETTINGS", socket.read_exact(&mut header))
        .await
        .unwrap();
    assert_eq!(header[3], 0x4, "the first frame is SETTINGS");
    let len = usize::from(header[0]) << 16 | usize::from(header[1]) << 8 | usize::from(header[2]);
    let mut payload = vec![0_u8; len];
    socket.read_exact(&mut payload).await.unwrap();
    let max_streams = payload.chunks_exact(6).find_map(|s| {
        (u16::from_be_bytes([s[0], s[1]]) == 0x3)
            .then(|| u32::from_be_bytes([s[2], s[3], s[4], s[5]]))
    });
    (socket, max_streams)
}

/// Finding 10: a connection that sends nothing is closed after the
/// handshake timeout, and one connection may open only so many streams,
/// on the gateway and on a service port alike.
#[tokio::test]
async fn finding_10_silent_connections_are_closed_and_streams_per_connection_capped() {
    let suite = start_with(|s| {
        s.server.handshake_timeout = Duration::from_millis(300);
        s.server.http2_max_concurrent_streams = 8;
    })
    .await;
    let targets = [suite.gateway, suite.services["leads"]];
    let mut sockets = Vec::new();
    for addr in targets {
        for _ in 0..50 {
            let (socket, max_streams) = silent_socket(addr).await;
            assert_eq!(
                max_streams,
                Some(8),
                "{addr}: advertised max concurrent streams"
            );
            sockets.push(socket);
        }
    }
    for mut socket in sockets {
        let mut rest = Vec::new();
        // EOF or a reset: either way the server let go of it.
        let _ = within(
            "a silent connection to be closed",
            socket.read_to_end(&mut rest),
        )
        .await;
    }
    let (mut quiet, id) = quiet_tenant(&suite).await;
    quiet_lead_is_served(&mut quiet, &id).await;
}

/// Finding 11: a service reached directly applies the same fair limits:
/// one tenant's streams and call rate are capped, another's calls go on.
#[tokio::test]
async fn finding_11_a_service_port_caps_a_tenants_streams_and_rate() {
    let suite = start_with(|s| {
        s.server.limits.tenant_streams = 4;
        s.server.rate_limit.subject_requests_per_second = 1;
        s.server.rate_limit.subject_burst = 10;
    })
    .await;
    let noisy = suite.token("noisy", "erp", &[Role::Integration]);
    let mut opened = 0;
    let mut refused = Vec::new();
    let mut held = Vec::new();
    for _ in 0..8 {
        let mut client = EventServiceClient::new(suite.direct("leads", Some(&noisy)));
        match within("a direct stream", client.subscribe(request(""))).await {
            Ok(stream) => {
                opened += 1;
                held.push(stream.into_inner());
            }
            Err(status) => refused.push((status.code(), reason(&status))),
        }
    }
    assert_eq!(opened, 4, "{refused:?}");
    assert!(
        refused
            .iter()
            .all(|r| *r == (Code::ResourceExhausted, "TOO_MANY_STREAMS".to_owned())),
        "{refused:?}"
    );

    let mut spammer = suite.leads_direct(Some(&suite.token("noisy", "amy", &[Role::Sales])));
    let mut limited = 0;
    for _ in 0..20 {
        if let Err(status) = spammer.get_lead_config(pb::GetLeadConfigRequest {}).await {
            assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
            assert_eq!(reason(&status), "RATE_LIMITED");
            limited += 1;
        }
    }
    assert!(
        limited >= 5,
        "the subject's direct calls are limited: {limited}"
    );

    let mut quiet = suite.leads_direct(Some(&suite.token("quiet", "quinn", &[Role::Sales])));
    quiet
        .create_lead(pb::CreateLeadRequest {
            lead: Some(lead("Quiet Co", "+86 139 0000 0002")),
            ..Default::default()
        })
        .await
        .unwrap();
}

/// Finding 12: one user cannot spend the whole tenant's rate budget.
#[tokio::test]
async fn finding_12_one_user_spends_only_their_share_of_the_tenants_rate() {
    let suite = start_with(|s| {
        s.gateway.rate_limit.requests_per_second = 1000;
        s.gateway.rate_limit.burst = 1000;
        s.gateway.rate_limit.subject_requests_per_second = 1;
        s.gateway.rate_limit.subject_burst = 5;
        // Refusals answered almost at once, so that amy's ten calls come
        // before her bucket refills; that a refusal waits for the next
        // token is crm-server's `a_refusal_waits_for_the_next_token_...`.
        s.gateway.rate_limit.refusal_delay_max = Duration::from_millis(1);
    })
    .await;
    let mut amy = suite.leads_client(Some(&suite.token("acme", "amy", &[Role::Sales])));
    let mut limited = Vec::new();
    for _ in 0..10 {
        if let Err(status) = amy.get_lead_config(pb::GetLeadConfigRequest {}).await {
            limited.push(status);
        }
    }
    assert!(limited.len() >= 4, "amy is limited: {}", limited.len());
    for status in &limited {
        assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
        assert_eq!(reason(status), "RATE_LIMITED");
        let scope = status
            .get_details_error_info()
            .and_then(|i| i.metadata.get("scope").cloned());
        assert_eq!(scope.as_deref(), Some("subject"));
    }
    let mut bob = suite.leads_client(Some(&suite.token("acme", "bob", &[Role::Sales])));
    bob.get_lead_config(pb::GetLeadConfigRequest {})
        .await
        .expect("bob has his own share");
}

/// Finding 13: a huge bad value is INVALID_ARGUMENT with a small reply,
/// and it breaks nothing another tenant shares with it.
#[tokio::test]
async fn finding_13_a_huge_bad_value_is_a_small_invalid_argument_and_breaks_no_stream() {
    let suite = start().await;
    let mut other =
        suite.events_client(&suite.token("globex", "oa", &[Role::Integration]), "leads");
    let mut stream = other
        .subscribe(request("leads"))
        .await
        .unwrap()
        .into_inner();
    within("the other tenant's first message", stream.message())
        .await
        .unwrap()
        .unwrap();

    let mut amy = suite.leads_client(Some(&suite.token("acme", "amy", &[Role::Sales])));
    for size in [6_000, 200_000] {
        let bad = pb::Lead {
            source_channel: "x".repeat(size),
            ..lead("Huge Co", "+86 139 0000 0003")
        };
        let status = amy
            .create_lead(pb::CreateLeadRequest {
                lead: Some(bad),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{size}: {status:?}");
        let sent = status.message().len() + status.details().len().div_ceil(3) * 4;
        assert!(sent < 8 * 1024, "{size}: a status of {sent} bytes");
    }
    // The other tenant's stream is still open and flowing.
    for _ in 0..2 {
        within("the other tenant's next message", stream.message())
            .await
            .expect("the stream survives")
            .expect("the stream is not ended");
    }
}
