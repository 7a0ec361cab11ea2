//! Bounded, clean input everywhere: every string, id and list a request
//! carries is checked before any work, and bad input is INVALID_ARGUMENT
//! naming the field, identically on SQLite and PostgreSQL.

use crm_auth::Role;
use crm_e2e::*;
use crm_proto::crm::{leads::v1 as leads, opportunities::v1 as pb};
use tonic::Code;

/// Asserts `result` is INVALID_ARGUMENT naming `field`, and that the
/// message does not echo a long value back.
fn assert_invalid<T: std::fmt::Debug>(result: Result<T, tonic::Status>, field: &str) {
    let err = result.expect_err("bad input must be refused");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(
        violated_fields(&err).iter().any(|f| f == field),
        "expected a violation of {field}: {err:?}"
    );
    assert!(err.message().len() < 1_000, "message echoes the input");
}

async fn account(
    amy: &mut OpportunitiesClient,
    account: pb::Account,
) -> Result<pb::Account, tonic::Status> {
    amy.create_account(pb::CreateAccountRequest {
        account: Some(account),
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner().account.unwrap_or_default())
}

#[tokio::test]
async fn finding_13_nul_bytes_are_invalid_argument_naming_the_field() {
    let suite = start().await;
    let token = suite.token("acme", "amy", &[Role::Sales]);
    let mut amy = suite.leads_client(Some(&token));
    let mut opp = suite.opportunities_client(Some(&token));

    let get = amy.get_lead(leads::GetLeadRequest { id: "abc\0".into() });
    assert_invalid(get.await, "id");
    let list = amy.list_leads(leads::ListLeadsRequest {
        owner_id: "a\0".into(),
        ..Default::default()
    });
    assert_invalid(list.await, "owner_id");
    let mut bad = lead("ACME Robotics", "+86 138 0013 8000");
    bad.notes = "a\0b".into();
    let create = amy.create_lead(leads::CreateLeadRequest {
        lead: Some(bad.clone()),
        ..Default::default()
    });
    assert_invalid(create.await, "lead.notes");
    let region = pb::Account {
        name: "ACME".into(),
        region: "East\0".into(),
        ..Default::default()
    };
    assert_invalid(account(&mut opp, region).await, "account.region");

    // In an import the bad row alone is rejected, naming its field.
    let good = lead("Globex", "+86 138 0013 8001");
    let import = amy
        .batch_create_leads(leads::BatchCreateLeadsRequest {
            leads: vec![bad, good],
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let rejection = import.results[0].rejection.clone().unwrap();
    assert_eq!(rejection.field, "notes");
    assert!(import.results[1].rejection.is_none());
}

#[tokio::test]
async fn finding_16_ids_are_bounded_to_64_characters() {
    let suite = start().await;
    let token = suite.token("acme", "amy", &[Role::Sales]);
    let mut amy = suite.leads_client(Some(&token));
    let mut opp = suite.opportunities_client(Some(&token));
    let long = "x".repeat(65);

    let get = amy.get_lead(leads::GetLeadRequest { id: long.clone() });
    assert_invalid(get.await, "id");
    let list = amy.list_leads(leads::ListLeadsRequest {
        owner_id: long.clone(),
        ..Default::default()
    });
    assert_invalid(list.await, "owner_id");
    let get = opp.get_opportunity(pb::GetOpportunityRequest { id: long.clone() });
    assert_invalid(get.await, "id");
    let list = opp.list_opportunities(pb::ListOpportunitiesRequest {
        account_id: long,
        ..Default::default()
    });
    assert_invalid(list.await, "account_id");
}

#[tokio::test]
async fn finding_10_4_repeated_fields_and_strings_are_bounded() {
    let suite = start().await;
    let token = suite.token("acme", "amy", &[Role::Sales]);
    let mut amy = suite.opportunities_client(Some(&token));
    let acme = pb::Account {
        name: "ACME".into(),
        ..Default::default()
    };
    let acme = account(&mut amy, acme).await.unwrap();
    let li_lei = amy
        .create_contact(pb::CreateContactRequest {
            contact: Some(pb::Contact {
                account_id: acme.id.clone(),
                name: "Li Lei".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .contact
        .unwrap();
    let opportunity = amy
        .create_opportunity(pb::CreateOpportunityRequest {
            opportunity: Some(pb::Opportunity {
                account_id: acme.id.clone(),
                name: "MES".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .opportunity
        .unwrap();
    let log = |contact_ids: Vec<String>| pb::LogActivityRequest {
        opportunity_id: opportunity.id.clone(),
        activity: Some(pb::Activity {
            kind: pb::ActivityKind::Meeting as i32,
            contact_ids,
            ..Default::default()
        }),
        ..Default::default()
    };

    // One contact named many times is one contact.
    let logged = amy
        .log_activity(log(vec![li_lei.id.clone(); 100]))
        .await
        .unwrap()
        .into_inner()
        .activity
        .unwrap();
    assert_eq!(logged.contact_ids, std::slice::from_ref(&li_lei.id));
    // Past the list's maximum the call is refused before any work.
    let refused = amy.log_activity(log(vec![li_lei.id.clone(); 101]));
    assert_invalid(refused.await, "activity.contact_ids");

    // A phone of a million dashes around 8 digits is refused.
    let mut leads_client = suite.leads_client(Some(&token));
    let phone = format!("{}13800138{}", "-".repeat(500_000), "-".repeat(500_000));
    let create = leads_client.create_lead(leads::CreateLeadRequest {
        lead: Some(lead("ACME Robotics", &phone)),
        ..Default::default()
    });
    assert_invalid(create.await, "lead.phone");
}
