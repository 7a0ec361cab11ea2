//! Event streams through the gateway: an integration (OA, ERP) subscribes
//! to a service's events, in commit order, and resumes from its cursor.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crm_auth::Role;
use crm_proto::crm::{
    events::v1::{self as ev, subscribe_response::Kind},
    leads::v1 as leads,
};
use crm_testkit::{EventsClient, TestSuite};
use prost::Name;
use tonic::Code;

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

async fn subscribe(
    client: &mut EventsClient,
    after: i64,
    types: &[&str],
) -> tonic::Streaming<ev::SubscribeResponse> {
    client
        .subscribe(ev::SubscribeRequest {
            after_sequence: after,
            types: types.iter().map(|t| (*t).to_owned()).collect(),
        })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn an_integration_follows_lead_events_in_order_and_resumes() {
    let suite = TestSuite::start().await;
    let mut amy = suite.leads_client(Some(&suite.token("acme", "amy", &[Role::Sales])));
    let oa_token = suite.token("acme", "oa-system", &[Role::Integration]);
    let mut oa = suite.events_client(&oa_token, "leads");
    // Subscribe first, then change: new commits are pushed, not polled.
    let mut live = subscribe(&mut oa, 0, &[]).await;

    let lead = amy
        .create_lead(leads::CreateLeadRequest {
            lead: Some(leads::Lead {
                company: "ACME".into(),
                contact_name: "Li".into(),
                source_channel: "referral".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .lead
        .unwrap();
    for kind in [
        leads::InteractionKind::DemoAttended,
        leads::InteractionKind::ContractTemplateViewed,
        leads::InteractionKind::Meeting,
        leads::InteractionKind::Visit,
        leads::InteractionKind::CallConnected,
    ] {
        amy.log_interaction(leads::LogInteractionRequest {
            lead_id: lead.id.clone(),
            interaction: Some(leads::Interaction {
                kind: kind as i32,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let events = take(&mut live, 7).await;
    let types: Vec<&str> = events.iter().map(|e| e.r#type.as_str()).collect();
    assert_eq!(
        types,
        [
            leads::LeadCreated::full_name(),
            leads::LeadChanged::full_name(),
            leads::LeadChanged::full_name(),
            leads::LeadChanged::full_name(),
            leads::LeadChanged::full_name(),
            leads::LeadChanged::full_name(),
            leads::LeadQualified::full_name(),
        ]
    );
    let sequences: Vec<i64> = events.iter().map(|e| e.sequence).collect();
    assert!(
        sequences.windows(2).all(|w| w[1] == w[0] + 1),
        "gap-free, in order: {sequences:?}"
    );
    assert!(
        events
            .iter()
            .all(|e| e.subject_id == lead.id && e.tenant_id == "acme")
    );
    let qualified: leads::LeadQualified = events[6].payload.as_ref().unwrap().to_msg().unwrap();
    assert_eq!(
        qualified.lead.unwrap().status,
        leads::LeadStatus::Qualified as i32
    );

    // Resuming after the third event replays exactly the rest; a type filter keeps only milestones.
    let mut resumed = subscribe(&mut oa, sequences[2], &[]).await;
    let rest = take(&mut resumed, 4).await;
    assert_eq!(
        rest.iter().map(|e| e.sequence).collect::<Vec<_>>(),
        sequences[3..]
    );
    let mut milestones = subscribe(&mut oa, 0, &[&leads::LeadQualified::full_name()]).await;
    assert_eq!(take(&mut milestones, 1).await[0].sequence, sequences[6]);

    // Another tenant sees none of it; a sales user may not subscribe; the source must be named.
    let mut globex = suite.events_client(
        &suite.token("globex", "oa-system", &[Role::Integration]),
        "leads",
    );
    let head = subscribe(&mut globex, 0, &[])
        .await
        .message()
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(head.kind, Some(Kind::Heartbeat(_))),
        "no events of acme for globex: {head:?}"
    );
    let mut sales = suite.events_client(&suite.token("acme", "amy", &[Role::Sales]), "leads");
    let err = sales
        .subscribe(ev::SubscribeRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let mut nowhere = suite.events_client(&oa_token, "payroll");
    let err = nowhere
        .subscribe(ev::SubscribeRequest::default())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}
