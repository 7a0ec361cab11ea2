//! From a lead to a won opportunity, against a running `crm serve`:
//!
//! ```sh
//! cargo run -p crm -- serve &
//! cargo run -p crm --example walkthrough
//! ```
//!
//! It signs its tokens with the development key in `./data` (as `crm token`
//! does) and talks to the gateway on 127.0.0.1:50051 with the clients
//! generated from `proto/`, as any client team would.

use std::{error::Error, time::Duration};

use crm_auth::{DevKeys, Role};
use crm_proto::crm::{
    common::v1::{Date, Money},
    leads::v1::{self as leads, lead_service_client::LeadServiceClient},
    opportunities::v1::{self as opps, opportunity_service_client::OpportunityServiceClient},
};
use prost_types::FieldMask;
use tonic::{Request, transport::Channel};

type Result<T> = std::result::Result<T, Box<dyn Error>>;

struct Caller {
    token: String,
}

impl Caller {
    fn call<T>(&self, message: T) -> Result<Request<T>> {
        let mut request = Request::new(message);
        request
            .metadata_mut()
            .insert("authorization", format!("Bearer {}", self.token).parse()?);
        Ok(request)
    }
}

fn cny(units: i64) -> Option<Money> {
    Some(Money {
        currency_code: "CNY".into(),
        units,
        nanos: 0,
    })
}

#[tokio::main]
async fn main() -> Result<()> {
    let gateway = std::env::var("CRM_GATEWAY").unwrap_or_else(|_| "http://127.0.0.1:50051".into());
    let keys = DevKeys::load_or_create(std::path::Path::new("./data"))?;
    let minter = keys.minter("crm", "crm")?;
    let tenant = format!("walkthrough-{}", std::process::id());
    let as_ = |who: &str, roles: &[Role]| -> Result<Caller> {
        Ok(Caller {
            token: minter.mint(who, &tenant, roles, Duration::from_secs(3600))?,
        })
    };
    let (amy, boss, dora, fay, lee) = (
        as_("amy", &[Role::Sales])?,
        as_("boss", &[Role::Manager])?,
        as_("dora", &[Role::Delivery])?,
        as_("fay", &[Role::Finance])?,
        as_("lee", &[Role::Legal])?,
    );
    let channel = Channel::from_shared(gateway)?.connect().await?;
    let mut leads_api = LeadServiceClient::new(channel.clone());
    let mut api = OpportunityServiceClient::new(channel);

    println!("tenant {tenant}");
    let lead = leads_api
        .create_lead(amy.call(leads::CreateLeadRequest {
            request_id: "walkthrough-lead".into(),
            lead: Some(leads::Lead {
                company: "ACME Robotics".into(),
                contact_name: "Li Lei".into(),
                phone: "+86 138 0013 8000".into(),
                industry: "manufacturing".into(),
                source_channel: "referral".into(),
                ..Default::default()
            }),
            ..Default::default()
        })?)
        .await?
        .into_inner()
        .lead
        .ok_or("no lead")?;
    println!(
        "1. lead {} created for {}, owner {}, status {:?}",
        lead.id,
        lead.company,
        lead.owner_id,
        lead.status()
    );

    for kind in [
        leads::InteractionKind::CallConnected,
        leads::InteractionKind::DemoAttended,
    ] {
        let scored = leads_api
            .log_interaction(amy.call(leads::LogInteractionRequest {
                lead_id: lead.id.clone(),
                interaction: Some(leads::Interaction {
                    kind: kind as i32,
                    ..Default::default()
                }),
                ..Default::default()
            })?)
            .await?
            .into_inner()
            .lead
            .ok_or("no lead")?;
        println!(
            "2. {:?} logged: score {}, status {:?}",
            kind,
            scored.score,
            scored.status()
        );
    }

    let converted = leads_api
        .convert_lead(amy.call(leads::ConvertLeadRequest {
            id: lead.id.clone(),
            amount: cny(1_000_000),
            ..Default::default()
        })?)
        .await?
        .into_inner()
        .lead
        .ok_or("no lead")?;
    println!(
        "3. lead converted: status {:?}, opportunity {}, account {}",
        converted.status(),
        converted.opportunity_id,
        converted.account_id
    );
    let id = converted.opportunity_id.clone();
    let contact = api
        .list_contacts(amy.call(opps::ListContactsRequest {
            account_id: converted.account_id.clone(),
            ..Default::default()
        })?)
        .await?
        .into_inner()
        .contacts
        .first()
        .map(|c| c.id.clone())
        .ok_or("no contact")?;

    let refused = api
        .advance_stage(amy.call(opps::AdvanceStageRequest {
            id: id.clone(),
            target_stage: opps::Stage::Approved as i32,
            ..Default::default()
        })?)
        .await;
    if let Err(status) = refused {
        println!(
            "4. advance to approved refused: {:?}: {}",
            status.code(),
            status.message()
        );
    }

    api.update_opportunity(
        amy.call(opps::UpdateOpportunityRequest {
            opportunity: Some(opps::Opportunity {
                id: id.clone(),
                expected_close_date: Some(Date {
                    year: 2027,
                    month: 3,
                    day: 31,
                }),
                grade: opps::Grade::A as i32,
                team: Some(opps::Team {
                    account_manager_id: "amy".into(),
                    solution_manager_id: "sol".into(),
                    delivery_manager_id: "dora".into(),
                    ..Default::default()
                }),
                qualification: Some(opps::Qualification {
                    is_real: true,
                    can_compete: true,
                    can_win: true,
                    worth_it: true,
                    notes: String::new(),
                }),
                competitors: vec!["Globex".into()],
                solution_summary: "MES rollout in 3 plants".into(),
                workload_person_days: 120,
                quote: cny(950_000),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: [
                    "expected_close_date",
                    "grade",
                    "team",
                    "qualification",
                    "competitors",
                    "solution_summary",
                    "workload_person_days",
                    "quote",
                ]
                .map(String::from)
                .to_vec(),
            }),
        })?,
    )
    .await?;
    println!(
        "5. filled: close date, grade A, iron triangle amy/sol/dora, qualification, competitors, solution, 120 person-days, quote 950000 CNY"
    );

    let approve = |approval: String| opps::DecideApprovalRequest {
        id: approval,
        decision: opps::Decision::Approve as i32,
        ..Default::default()
    };
    let project = api
        .request_approval(amy.call(opps::RequestApprovalRequest {
            kind: opps::ApprovalKind::ProjectApproval as i32,
            opportunity_id: id.clone(),
            reason: "real, competitive, worth it".into(),
            ..Default::default()
        })?)
        .await?
        .into_inner()
        .approval
        .ok_or("no approval")?;
    api.decide_approval(boss.call(approve(project.id.clone()))?)
        .await?;
    println!("6. project approval {} approved by boss", project.id);

    api.set_decision_chain_member(amy.call(opps::SetDecisionChainMemberRequest {
        opportunity_id: id.clone(),
        member: Some(opps::DecisionChainMember {
            contact_id: contact.clone(),
            role: opps::DecisionRole::DecisionMaker as i32,
            relationship: 4,
            solution_acceptance: 4,
            price_acceptance: 3,
        }),
    })?)
    .await?;
    api.log_activity(amy.call(opps::LogActivityRequest {
        opportunity_id: id.clone(),
        activity: Some(opps::Activity {
            kind: opps::ActivityKind::Meeting as i32,
            contact_ids: vec![contact],
            notes: "kick-off with the decision maker".into(),
            ..Default::default()
        }),
        ..Default::default()
    })?)
    .await?;
    println!("7. Li Lei is the decision maker; a meeting with him is logged");

    let review = api
        .request_delivery_review(amy.call(opps::RequestDeliveryReviewRequest {
            opportunity_id: id.clone(),
            ..Default::default()
        })?)
        .await?
        .into_inner()
        .approval
        .ok_or("no review")?;
    api.decide_approval(dora.call(approve(review.id.clone()))?)
        .await?;
    println!(
        "8. delivery review {} approved by dora, the team's delivery manager",
        review.id
    );

    let bid = api
        .request_approval(amy.call(opps::RequestApprovalRequest {
            kind: opps::ApprovalKind::BidApproval as i32,
            opportunity_id: id.clone(),
            ..Default::default()
        })?)
        .await?
        .into_inner()
        .approval
        .ok_or("no approval")?;
    for (who, caller) in [("boss", &boss), ("fay", &fay), ("lee", &lee)] {
        let step = api
            .decide_approval(caller.call(approve(bid.id.clone()))?)
            .await?
            .into_inner()
            .approval
            .ok_or("no approval")?;
        println!(
            "9. bid approval step decided by {who}: now {:?}",
            step.status()
        );
    }

    for stage in [
        opps::Stage::Approved,
        opps::Stage::NeedsAnalysis,
        opps::Stage::ValuePresentation,
        opps::Stage::Proposal,
        opps::Stage::Bidding,
        opps::Stage::Negotiation,
    ] {
        let moved = api
            .advance_stage(amy.call(opps::AdvanceStageRequest {
                id: id.clone(),
                target_stage: stage as i32,
                ..Default::default()
            })?)
            .await?
            .into_inner()
            .opportunity
            .ok_or("no opportunity")?;
        println!(
            "10. stage {:?}, win probability {}%",
            moved.stage(),
            moved.win_probability
        );
    }
    let forecast = api
        .get_forecast(boss.call(opps::GetForecastRequest::default())?)
        .await?
        .into_inner();
    for line in forecast.lines {
        println!(
            "11. pipeline: {:?} x{} = {} {}, weighted {}",
            line.stage(),
            line.count,
            line.amount.map(|m| m.units).unwrap_or_default(),
            line.currency_code,
            line.weighted_amount.map(|m| m.units).unwrap_or_default()
        );
    }

    api.update_opportunity(amy.call(opps::UpdateOpportunityRequest {
        opportunity: Some(opps::Opportunity {
            id: id.clone(),
            win_loss_reason: "best delivery plan".into(),
            ..Default::default()
        }),
        update_mask: Some(FieldMask {
            paths: vec!["win_loss_reason".into()],
        }),
    })?)
    .await?;
    let won = api
        .advance_stage(amy.call(opps::AdvanceStageRequest {
            id: id.clone(),
            target_stage: opps::Stage::Won as i32,
            ..Default::default()
        })?)
        .await?
        .into_inner()
        .opportunity
        .ok_or("no opportunity")?;
    println!(
        "12. {} is {:?} ({}%): {}",
        won.name,
        won.stage(),
        won.win_probability,
        won.win_loss_reason
    );
    Ok(())
}
