//! Hardening of issues 10 and 11 that spans services: what a client sends
//! in headers reaches other parties only checked and bounded.

use std::time::Duration;

use crm_auth::Role;
use crm_e2e::*;
use crm_proto::crm::{
    events::v1::{self as ev, subscribe_response::Kind},
    leads::v1 as leads,
};
use prost::Name;

/// The next `n` events of a stream, skipping heartbeats, with a deadline.
async fn take(stream: &mut tonic::Streaming<ev::SubscribeResponse>, n: usize) -> Vec<ev::Event> {
    let mut events = Vec::new();
    while events.len() < n {
        let next = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("an event within 10s");
        match next.unwrap().expect("stream open").kind {
            Some(Kind::Event(e)) => events.push(e),
            Some(Kind::Heartbeat(_)) | None => {}
        }
    }
    events
}

/// `00-<32 hex>-<16 hex>-<2 hex>`, split into trace id and span id.
fn parse_traceparent(value: &str) -> Option<(&str, &str)> {
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let parts: Vec<&str> = value.split('-').collect();
    match parts.as_slice() {
        ["00", trace, span, flags] if hex(trace, 32) && hex(span, 16) && hex(flags, 2) => {
            Some((trace, span))
        }
        _ => None,
    }
}

#[tokio::test]
async fn issue11_finding19_client_trace_headers_reach_events_checked_bounded_under_the_servers_span()
 {
    // Trace as in production, so that spans carry W3C contexts; quiet logs.
    let _telemetry = crm_telemetry::init(&crm_telemetry::TelemetryConfig {
        log_filter: "off".into(),
        ..Default::default()
    })
    .unwrap();
    let suite = start().await;
    let mut amy = suite.leads_client(Some(&suite.token("acme", "amy", &[Role::Sales])));
    let oa_token = suite.token("acme", "oa-system", &[Role::Integration]);
    let mut oa = suite.events_client(&oa_token, "leads");
    let mut live = oa
        .subscribe(ev::SubscribeRequest {
            types: vec![leads::LeadCreated::full_name()],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();

    let client_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let client_span = "00f067aa0ba902b7";
    // 32 well-formed members, but far over W3C's 512 characters.
    let huge_state = (0..32)
        .map(|i| format!("k{i}={}", "v".repeat(200)))
        .collect::<Vec<_>>()
        .join(",");
    let cases = [
        // A sane parent with an unbounded tracestate and request id.
        (
            format!("00-{client_trace}-{client_span}-01"),
            huge_state,
            format!("id\t{}", "x".repeat(4000)),
        ),
        // A sloppy parent (short ids) that a lax parser reads as trace 1.
        ("00-1-1-01".to_owned(), "a=b".to_owned(), "id-2".to_owned()),
        // A well-formed context passes as it is, under the server's span.
        (
            format!("00-{client_trace}-{client_span}-00"),
            "vendor=opaque,t@sys=1".to_owned(),
            "id-3".to_owned(),
        ),
    ];
    let mut request_ids = Vec::new();
    for (i, (traceparent, tracestate, request_id)) in cases.iter().enumerate() {
        let mut request = tonic::Request::new(leads::CreateLeadRequest {
            lead: Some(lead(
                &format!("Traced {i}"),
                &format!("+86 138 0000 100{i}"),
            )),
            ..Default::default()
        });
        let metadata = request.metadata_mut();
        metadata.insert("traceparent", traceparent.parse().unwrap());
        metadata.insert("tracestate", tracestate.parse().unwrap());
        metadata.insert("x-request-id", request_id.parse().unwrap());
        let response = amy.create_lead(request).await.unwrap();
        request_ids.push(
            response
                .metadata()
                .get("x-request-id")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
        );
    }

    let events = take(&mut live, 3).await;
    for event in &events {
        assert!(event.traceparent.len() == 55, "{event:?}");
        assert!(event.tracestate.len() <= 512, "{}", event.tracestate.len());
    }
    // The parent's trace goes on, but under the server's own span.
    let (trace, span) = parse_traceparent(&events[0].traceparent).expect("W3C traceparent");
    assert_eq!(trace, client_trace);
    assert_ne!(span, client_span);
    assert_eq!(
        events[0].tracestate, "",
        "an unbounded tracestate is dropped"
    );
    // A sloppy parent is not continued: the server starts its own trace.
    let (trace, _) = parse_traceparent(&events[1].traceparent).expect("W3C traceparent");
    assert_ne!(trace, format!("{:032x}", 1));
    assert_eq!(events[1].tracestate, "");
    let (trace, span) = parse_traceparent(&events[2].traceparent).expect("W3C traceparent");
    assert_eq!(
        (trace, events[2].tracestate.as_str()),
        (client_trace, "vendor=opaque,t@sys=1")
    );
    assert_ne!(span, client_span);

    // A request id that is not a short printable token is replaced.
    assert!(
        request_ids[0].len() <= 128
            && request_ids[0].bytes().all(|b| b.is_ascii_graphic())
            && !request_ids[0].starts_with("id"),
        "{}",
        request_ids[0]
    );
    assert_eq!(request_ids[1], "id-2");
}

#[tokio::test]
async fn issue11_finding15_an_import_replay_names_only_leads_the_caller_sees() {
    let suite = start().await;
    let mut amy = suite.leads_client(Some(&suite.token("acme", "amy", &[Role::Sales])));
    let mut bob = suite.leads_client(Some(&suite.token("acme", "bob", &[Role::Sales])));
    let import = leads::BatchCreateLeadsRequest {
        request_id: "f15-import".into(),
        leads: vec![
            lead("ACME Robotics", "+86 138 0000 2001"),
            lead("Bolt Motors", "+86 138 0000 2002"),
        ],
        ..Default::default()
    };
    let ids = |r: leads::BatchCreateLeadsResponse| -> Vec<String> {
        r.results.into_iter().map(|r| r.lead_id).collect()
    };
    let amys = ids(amy
        .batch_create_leads(import.clone())
        .await
        .unwrap()
        .into_inner());
    assert!(amys.iter().all(|id| !id.is_empty()), "{amys:?}");

    // Bob replays amy's import: it is not done again, and her leads are
    // not named to him.
    let replay = bob
        .batch_create_leads(import.clone())
        .await
        .unwrap()
        .into_inner();
    assert_eq!((replay.accepted_count, replay.rejected_count), (2, 0));
    assert_eq!(ids(replay), ["", ""]);
    let get = bob.get_lead(leads::GetLeadRequest {
        id: amys[0].clone(),
    });
    assert_eq!(get.await.unwrap_err().code(), tonic::Code::PermissionDenied);

    // Amy's own replay names them, as the first call did.
    let again = ids(amy.batch_create_leads(import).await.unwrap().into_inner());
    assert_eq!(again, amys);
}
