//! Event streams through the gateway: an integration (OA, ERP) subscribes
//! to a service's events, in commit order, and resumes from its cursor.

use std::time::Duration;

use crm_auth::Role;
use crm_e2e::*;
use crm_proto::crm::{
    events::v1::{self as ev, subscribe_response::Kind},
    leads::v1 as leads,
    opportunities::v1 as opps,
};
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
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn an_integration_follows_lead_events_in_order_and_resumes() {
    let suite = start().await;
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

#[tokio::test]
async fn an_erp_follows_opportunity_milestones() {
    let suite = start().await;
    let mut boss = suite.opportunities_client(Some(&suite.token("acme", "boss", &[Role::Manager])));
    let mut erp = suite.events_client(
        &suite.token("acme", "erp", &[Role::Integration]),
        "opportunities",
    );
    let wanted = [
        opps::OpportunityCreated::full_name(),
        opps::OpportunityLost::full_name(),
    ];
    let mut stream = subscribe(&mut erp, 0, &[&wanted[0], &wanted[1]]).await;

    let account = boss
        .create_account(opps::CreateAccountRequest {
            account: Some(opps::Account {
                name: "Globex".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    let opp = boss
        .create_opportunity(opps::CreateOpportunityRequest {
            opportunity: Some(opps::Opportunity {
                account_id: account.id,
                name: "Globex ERP".into(),
                win_loss_reason: String::new(),
                team: Some(opps::Team {
                    account_manager_id: "amy".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .opportunity
        .unwrap();
    boss.update_opportunity(opps::UpdateOpportunityRequest {
        opportunity: Some(opps::Opportunity {
            id: opp.id.clone(),
            win_loss_reason: "budget moved to next year".into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["win_loss_reason".into()],
        }),
    })
    .await
    .unwrap();
    boss.advance_stage(opps::AdvanceStageRequest {
        id: opp.id.clone(),
        target_stage: opps::Stage::Lost as i32,
        ..Default::default()
    })
    .await
    .unwrap();

    let events = take(&mut stream, 2).await;
    assert_eq!(
        events.iter().map(|e| e.r#type.clone()).collect::<Vec<_>>(),
        wanted
    );
    let lost: opps::OpportunityLost = events[1].payload.as_ref().unwrap().to_msg().unwrap();
    let lost = lost.opportunity.unwrap();
    assert_eq!(
        (lost.id, lost.win_loss_reason.as_str()),
        (opp.id, "budget moved to next year")
    );
}

#[tokio::test]
async fn a_qualified_lead_converts_once_when_opportunities_is_back() {
    // An address where the opportunities service will listen, but not yet.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let suite = start_with(|s| {
        s.leads.opportunities_url = Some(format!("http://{addr}"));
        s.leads.conversion_retry_max = Duration::from_millis(200);
    })
    .await;
    let mut amy = suite.leads_client(Some(&suite.token("acme", "amy", &[Role::Sales])));
    let lead = amy
        .create_lead(leads::CreateLeadRequest {
            lead: Some(leads::Lead {
                company: "Qualified Co".into(),
                contact_name: "Wu".into(),
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
    let mut last = lead.clone();
    for kind in [
        leads::InteractionKind::DemoAttended,
        leads::InteractionKind::ContractTemplateViewed,
        leads::InteractionKind::Meeting,
        leads::InteractionKind::Visit,
        leads::InteractionKind::CallConnected,
    ] {
        last = amy
            .log_interaction(leads::LogInteractionRequest {
                lead_id: lead.id.clone(),
                interaction: Some(leads::Interaction {
                    kind: kind as i32,
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .lead
            .unwrap();
    }
    assert_eq!(last.status, leads::LeadStatus::Qualified as i32);
    // Opportunities is down: the conversion waits, the lead stays qualified.
    let now = amy
        .get_lead(leads::GetLeadRequest {
            id: lead.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .lead
        .unwrap();
    assert_eq!(
        (now.status, now.opportunity_id.as_str()),
        (leads::LeadStatus::Qualified as i32, "")
    );

    // It comes back on its address: the lead converts, once.
    suite.spawn_component(
        Component::Service("opportunities"),
        std::net::TcpListener::bind(addr).unwrap(),
    );
    let converted = eventually(Duration::from_secs(20), "the automatic conversion", || {
        let mut amy = amy.clone();
        let id = lead.id.clone();
        async move {
            let l = amy
                .get_lead(leads::GetLeadRequest { id })
                .await
                .ok()?
                .into_inner()
                .lead?;
            (l.status == leads::LeadStatus::Converted as i32).then_some(l)
        }
    })
    .await;
    assert!(!converted.opportunity_id.is_empty());
    assert_eq!(converted.updater, "system:leads-converter");
    let mut boss = suite.opportunities_client(Some(&suite.token("acme", "boss", &[Role::Manager])));
    let all = boss
        .list_opportunities(opps::ListOpportunitiesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .opportunities;
    assert_eq!(all.len(), 1, "exactly one opportunity");
    assert_eq!(
        (all[0].id.as_str(), all[0].lead_id.as_str()),
        (converted.opportunity_id.as_str(), lead.id.as_str())
    );
    assert_eq!(
        all[0].team.as_ref().unwrap().account_manager_id,
        "amy",
        "the lead's owner manages the account"
    );
}
