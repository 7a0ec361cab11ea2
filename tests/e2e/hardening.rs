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

/// Asserts `result` is INVALID_ARGUMENT naming each of `fields`.
fn assert_names<T: std::fmt::Debug>(result: Result<T, tonic::Status>, fields: &[&str]) {
    let err = result.expect_err("bad configuration must be refused");
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    let named = violated_fields(&err);
    for field in fields {
        assert!(named.iter().any(|f| f == field), "{field} not in {named:?}");
    }
    assert!(err.message().len() < 2_000, "the refusal echoes the input");
}

#[tokio::test]
async fn issue10_tenant_config_lists_and_strings_are_bounded() {
    use crm_proto::crm::{common::v1 as common, opportunities::v1 as opps};
    let suite = start().await;
    let token = suite.token("acme", "ada", &[Role::Admin]);
    let mut ld = suite.leads_client(Some(&token));
    let mut op = suite.opportunities_client(Some(&token));

    let leads_config = ld
        .get_lead_config(leads::GetLeadConfigRequest {})
        .await
        .unwrap()
        .into_inner()
        .config
        .unwrap();
    let mut too_many = leads_config.clone();
    too_many.channels = (0..101).map(|i| format!("channel-{i}")).collect();
    let scoring = too_many.scoring.as_mut().unwrap();
    scoring.target_industries = vec!["Retail".into(), "RETAIL".into(), "a\u{0}b".into()];
    let update = ld.update_lead_config(leads::UpdateLeadConfigRequest {
        config: Some(too_many),
    });
    assert_names(
        update.await,
        &[
            "config.channels",
            "config.scoring.target_industries[1]",
            "config.scoring.target_industries[2]",
        ],
    );
    let mut industries = leads_config.clone();
    industries.scoring.as_mut().unwrap().target_industries = vec!["x".into(); 101];
    let update = ld.update_lead_config(leads::UpdateLeadConfigRequest {
        config: Some(industries),
    });
    assert_names(update.await, &["config.scoring.target_industries"]);
    let mut weights = leads_config.clone();
    let scoring = weights.scoring.as_mut().unwrap();
    scoring
        .interaction_weights
        .push(scoring.interaction_weights[0]);
    let update = ld.update_lead_config(leads::UpdateLeadConfigRequest {
        config: Some(weights),
    });
    let index = leads_config
        .scoring
        .as_ref()
        .unwrap()
        .interaction_weights
        .len();
    assert_names(
        update.await,
        &[&format!("config.scoring.interaction_weights[{index}].kind")],
    );
    // Within the bounds, the configuration is taken.
    let mut fine = leads_config;
    fine.channels = (0..100).map(|i| format!("channel-{i}")).collect();
    fine.scoring.as_mut().unwrap().target_industries = vec!["製造業".into(), "Retail".into()];
    ld.update_lead_config(leads::UpdateLeadConfigRequest { config: Some(fine) })
        .await
        .unwrap();

    let opp_config = op
        .get_opportunity_config(opps::GetOpportunityConfigRequest {})
        .await
        .unwrap()
        .into_inner()
        .config
        .unwrap();
    let mut bad = opp_config.clone();
    bad.oa_subjects = (0..21).map(|i| format!("oa-{i}")).collect();
    bad.approvers = vec![opps::Approver {
        person_id: "p".repeat(65),
        roles: vec![common::Role::Finance as i32, common::Role::Finance as i32],
    }];
    let first = bad.gates[0].required_fields[0].clone();
    bad.gates[0].required_fields.push(first);
    let update =
        op.update_opportunity_config(opps::UpdateOpportunityConfigRequest { config: Some(bad) });
    assert_names(
        update.await,
        &[
            "config.oa_subjects",
            "config.approvers[0].person_id",
            "config.approvers[0].roles[1]",
        ],
    );
    let mut twice = opp_config.clone();
    twice.oa_subjects = vec!["oa".into(), "oa".into()];
    let update = op.update_opportunity_config(opps::UpdateOpportunityConfigRequest {
        config: Some(twice),
    });
    assert_names(update.await, &["config.oa_subjects[1]"]);
    let mut fine = opp_config;
    fine.oa_subjects = (0..20).map(|i| format!("oa-{i}")).collect();
    op.update_opportunity_config(opps::UpdateOpportunityConfigRequest { config: Some(fine) })
        .await
        .unwrap();
}

#[tokio::test]
async fn issue11_an_approval_step_of_a_role_that_never_decides_is_refused() {
    use crm_proto::crm::{common::v1 as common, opportunities::v1 as opps};
    let suite = start().await;
    let mut op = suite.opportunities_client(Some(&suite.token("acme", "ada", &[Role::Admin])));
    let config = op
        .get_opportunity_config(opps::GetOpportunityConfigRequest {})
        .await
        .unwrap()
        .into_inner()
        .config
        .unwrap();
    for role in [common::Role::Internal, common::Role::Integration] {
        let mut bad = config.clone();
        bad.approval_chains = vec![opps::ApprovalChain {
            kind: opps::ApprovalKind::ProjectApproval as i32,
            roles: vec![common::Role::Manager as i32, role as i32],
        }];
        bad.approvers = vec![opps::Approver {
            person_id: "li".into(),
            roles: vec![role as i32],
        }];
        let update = op
            .update_opportunity_config(opps::UpdateOpportunityConfigRequest { config: Some(bad) });
        assert_names(
            update.await,
            &[
                "config.approval_chains[project_approval].roles[1]",
                "config.approvers[0].roles[0]",
            ],
        );
    }
}
