//! The opportunities service through the gateway: conversion from a lead,
//! stage gates, approvals, the delivery review, the decision chain, hours,
//! the forecast, and bad input.

use std::time::Duration;

use crm_auth::Role;
use crm_e2e::*;
use crm_proto::crm::{
    common::v1 as common, events::v1 as ev, leads::v1 as leads, opportunities::v1 as pb,
};
use prost::Name;
use prost_types::FieldMask;
use tonic::Code;

struct Team {
    amy: OpportunitiesClient,
    boss: OpportunitiesClient,
    dora: OpportunitiesClient,
    dan: OpportunitiesClient,
    fay: OpportunitiesClient,
    lee: OpportunitiesClient,
    oa: OpportunitiesClient,
}

fn team(suite: &TestSuite) -> Team {
    let client = |who: &str, roles: &[Role]| {
        suite.opportunities_client(Some(&suite.token("acme", who, roles)))
    };
    Team {
        amy: client("amy", &[Role::Sales]),
        boss: client("boss", &[Role::Manager]),
        dora: client("dora", &[Role::Delivery]),
        dan: client("dan", &[Role::Delivery]),
        fay: client("fay", &[Role::Finance]),
        lee: client("lee", &[Role::Legal]),
        oa: client("oa-system", &[Role::Integration]),
    }
}

async fn advance(
    c: &mut OpportunitiesClient,
    id: &str,
    to: pb::Stage,
) -> Result<pb::Opportunity, tonic::Status> {
    c.advance_stage(pb::AdvanceStageRequest {
        id: id.into(),
        target_stage: to as i32,
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner().opportunity.unwrap())
}

async fn approve(c: &mut OpportunitiesClient, id: &str, on_behalf_of: &str) -> pb::Approval {
    c.decide_approval(pb::DecideApprovalRequest {
        id: id.into(),
        decision: pb::Decision::Approve as i32,
        on_behalf_of: on_behalf_of.into(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .approval
    .unwrap()
}

async fn update(
    c: &mut OpportunitiesClient,
    o: pb::Opportunity,
    paths: &[&str],
) -> Result<pb::Opportunity, tonic::Status> {
    c.update_opportunity(pb::UpdateOpportunityRequest {
        opportunity: Some(o),
        update_mask: Some(FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        }),
    })
    .await
    .map(|r| r.into_inner().opportunity.unwrap())
}

#[tokio::test]
async fn from_a_lead_to_a_won_opportunity() {
    let suite = start().await;
    let Team {
        mut amy,
        mut boss,
        mut dora,
        mut dan,
        mut fay,
        mut lee,
        mut oa,
    } = team(&suite);
    let mut leads = suite.leads_client(Some(&suite.token("acme", "amy", &[Role::Sales])));

    // A lead converts into an account, a contact and an opportunity, once.
    let lead = leads
        .create_lead(leads::CreateLeadRequest {
            lead: Some(leads::Lead {
                company: "ACME Robotics".into(),
                contact_name: "Li Lei".into(),
                phone: "+86 138 0013 8000".into(),
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
    let convert = leads::ConvertLeadRequest {
        id: lead.id.clone(),
        amount: cny(1_000_000),
        ..Default::default()
    };
    let converted = leads
        .convert_lead(convert.clone())
        .await
        .unwrap()
        .into_inner()
        .lead
        .unwrap();
    assert_eq!(converted.status, leads::LeadStatus::Converted as i32);
    let again = leads
        .convert_lead(convert)
        .await
        .unwrap()
        .into_inner()
        .lead
        .unwrap();
    assert_eq!(
        again.opportunity_id, converted.opportunity_id,
        "a retried conversion yields the same opportunity"
    );
    let all = boss
        .list_opportunities(pb::ListOpportunitiesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.opportunities.len(), 1);
    let opp = all.opportunities[0].clone();
    assert_eq!(
        (opp.lead_id.as_str(), opp.account_id.as_str()),
        (lead.id.as_str(), converted.account_id.as_str())
    );
    assert_eq!(opp.team.as_ref().unwrap().account_manager_id, "amy");
    let contacts = amy
        .list_contacts(pb::ListContactsRequest {
            account_id: opp.account_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let li_lei = contacts.contacts[0].id.clone();

    // Validate -> approved: the gate lists everything missing at once.
    let err = advance(&mut amy, &opp.id, pb::Stage::Approved)
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "STAGE_GATE_NOT_MET")
    );
    assert_eq!(
        unmet_preconditions(&err),
        [
            "expected_close_date",
            "grade",
            "qualification_assessed",
            "project_approval"
        ]
    );
    let opp = update(
        &mut amy,
        pb::Opportunity {
            id: opp.id.clone(),
            expected_close_date: Some(common::Date {
                year: 2027,
                month: 3,
                day: 31,
            }),
            grade: pb::Grade::A as i32,
            team: Some(pb::Team {
                account_manager_id: "amy".into(),
                solution_manager_id: "sol".into(),
                delivery_manager_id: "dora".into(),
                ..Default::default()
            }),
            qualification: Some(pb::Qualification {
                is_real: true,
                can_compete: true,
                can_win: true,
                worth_it: true,
                notes: String::new(),
            }),
            competitors: vec!["Globex".into()],
            ..Default::default()
        },
        &[
            "expected_close_date",
            "grade",
            "team",
            "qualification",
            "competitors",
        ],
    )
    .await
    .unwrap();
    let project = amy
        .request_approval(pb::RequestApprovalRequest {
            kind: pb::ApprovalKind::ProjectApproval as i32,
            opportunity_id: opp.id.clone(),
            reason: "real and winnable".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .approval
        .unwrap();
    // The OA system decides for a named manager; the person is recorded.
    bind_oa(&suite, &[("wang.manager", &[common::Role::Manager])]).await;
    let decided = approve(&mut oa, &project.id, "wang.manager").await;
    assert_eq!(decided.status, pb::ApprovalStatus::Approved as i32);
    assert_eq!(
        (
            decided.steps[0].decider_id.as_str(),
            decided.steps[0].on_behalf_of.as_str()
        ),
        ("oa-system", "wang.manager")
    );
    let opp = advance(&mut amy, &opp.id, pb::Stage::Approved)
        .await
        .unwrap();
    assert_eq!(opp.win_probability, 20);

    // Needs analysis wants a decision maker in the chain; value presentation a meeting with them.
    amy.set_decision_chain_member(pb::SetDecisionChainMemberRequest {
        opportunity_id: opp.id.clone(),
        member: Some(pb::DecisionChainMember {
            contact_id: li_lei.clone(),
            role: pb::DecisionRole::DecisionMaker as i32,
            relationship: 4,
            solution_acceptance: 3,
            price_acceptance: 2,
        }),
    })
    .await
    .unwrap();
    advance(&mut amy, &opp.id, pb::Stage::NeedsAnalysis)
        .await
        .unwrap();
    let err = advance(&mut amy, &opp.id, pb::Stage::ValuePresentation)
        .await
        .unwrap_err();
    assert_eq!(unmet_preconditions(&err), ["meeting_with_decision_maker"]);
    amy.log_activity(pb::LogActivityRequest {
        opportunity_id: opp.id.clone(),
        activity: Some(pb::Activity {
            kind: pb::ActivityKind::Meeting as i32,
            contact_ids: vec![li_lei.clone()],
            notes: "kick-off".into(),
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    let opp = advance(&mut amy, &opp.id, pb::Stage::ValuePresentation)
        .await
        .unwrap();

    // Proposal needs the delivery manager's approved review of solution, workload and quote.
    let opp = update(
        &mut amy,
        pb::Opportunity {
            id: opp.id.clone(),
            solution_summary: "MES rollout in 3 plants".into(),
            workload_person_days: 120,
            quote: cny(950_000),
            ..Default::default()
        },
        &["solution_summary", "workload_person_days", "quote"],
    )
    .await
    .unwrap();
    let err = advance(&mut amy, &opp.id, pb::Stage::Proposal)
        .await
        .unwrap_err();
    assert_eq!(unmet_preconditions(&err), ["delivery_review"]);
    let review = amy
        .request_delivery_review(pb::RequestDeliveryReviewRequest {
            opportunity_id: opp.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .approval
        .unwrap();
    let err = dan
        .decide_approval(pb::DecideApprovalRequest {
            id: review.id.clone(),
            decision: pb::Decision::Approve as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::PermissionDenied, "NOT_DELIVERY_MANAGER")
    );
    approve(&mut dora, &review.id, "").await;
    // The review's outcome is on the opportunity's own audit trail.
    let trail = boss
        .list_audit_entries(pb::ListAuditEntriesRequest {
            subject_id: opp.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let recorded: Vec<_> = trail
        .iter()
        .filter(|e| e.action == "opportunity.delivery_review_recorded")
        .flat_map(|e| {
            e.changes
                .iter()
                .map(|c| (c.field.as_str(), c.new_value.as_str()))
        })
        .collect();
    assert_eq!(recorded, [("delivery_review.status", "approved")]);
    // Changing the quote afterwards voids the review, and proposal is blocked again.
    let opp = amy
        .get_opportunity(pb::GetOpportunityRequest { id: opp.id.clone() })
        .await
        .unwrap()
        .into_inner()
        .opportunity
        .unwrap();
    assert_eq!(
        opp.delivery_review.as_ref().unwrap().status,
        pb::ApprovalStatus::Approved as i32
    );
    let opp = update(
        &mut amy,
        pb::Opportunity {
            id: opp.id.clone(),
            quote: cny(900_000),
            ..Default::default()
        },
        &["quote"],
    )
    .await
    .unwrap();
    assert_eq!(
        opp.delivery_review.as_ref().unwrap().status,
        pb::ApprovalStatus::Voided as i32
    );
    let voided = amy
        .get_approval(pb::GetApprovalRequest {
            id: review.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .approval
        .unwrap();
    assert_eq!(voided.status, pb::ApprovalStatus::Voided as i32);
    assert_eq!(
        unmet_preconditions(
            &advance(&mut amy, &opp.id, pb::Stage::Proposal)
                .await
                .unwrap_err()
        ),
        ["delivery_review"]
    );
    let review = amy
        .request_delivery_review(pb::RequestDeliveryReviewRequest {
            opportunity_id: opp.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .approval
        .unwrap();
    approve(&mut dora, &review.id, "").await;
    advance(&mut amy, &opp.id, pb::Stage::Proposal)
        .await
        .unwrap();

    // Bidding: manager, finance and legal approve in order.
    let bid = amy
        .request_approval(pb::RequestApprovalRequest {
            kind: pb::ApprovalKind::BidApproval as i32,
            opportunity_id: opp.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .approval
        .unwrap();
    let err = fay
        .decide_approval(pb::DecideApprovalRequest {
            id: bid.id.clone(),
            decision: pb::Decision::Approve as i32,
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        reason(&err),
        "APPROVER_ROLE_REQUIRED",
        "finance decides step 2, not step 1"
    );
    approve(&mut boss, &bid.id, "").await;
    approve(&mut fay, &bid.id, "").await;
    let final_step = approve(&mut lee, &bid.id, "").await;
    assert_eq!(final_step.status, pb::ApprovalStatus::Approved as i32);
    let err = approve_err(&mut lee, &bid.id).await;
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "APPROVAL_DECIDED"),
        "decided approvals are immutable"
    );
    advance(&mut amy, &opp.id, pb::Stage::Bidding)
        .await
        .unwrap();
    advance(&mut amy, &opp.id, pb::Stage::Negotiation)
        .await
        .unwrap();

    // The weighted pipeline: negotiation at 80%.
    let forecast = boss
        .get_forecast(pb::GetForecastRequest::default())
        .await
        .unwrap()
        .into_inner();
    let line = &forecast.lines[0];
    assert_eq!((line.stage, line.count), (pb::Stage::Negotiation as i32, 1));
    assert_eq!(line.weighted_amount.as_ref().unwrap().units, 800_000);

    let err = advance(&mut amy, &opp.id, pb::Stage::Won)
        .await
        .unwrap_err();
    assert_eq!(unmet_preconditions(&err), ["win_loss_reason"]);
    let opp = amy
        .get_opportunity(pb::GetOpportunityRequest { id: opp.id.clone() })
        .await
        .unwrap()
        .into_inner()
        .opportunity
        .unwrap();
    update(
        &mut amy,
        pb::Opportunity {
            id: opp.id.clone(),
            win_loss_reason: "best delivery plan".into(),
            ..Default::default()
        },
        &["win_loss_reason"],
    )
    .await
    .unwrap();
    let won = advance(&mut amy, &opp.id, pb::Stage::Won).await.unwrap();
    assert_eq!(
        (won.stage, won.win_probability),
        (pb::Stage::Won as i32, 100)
    );
    let err = advance(&mut amy, &opp.id, pb::Stage::Lost)
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "OPPORTUNITY_CLOSED")
    );
}

async fn approve_err(c: &mut OpportunitiesClient, id: &str) -> tonic::Status {
    c.decide_approval(pb::DecideApprovalRequest {
        id: id.into(),
        decision: pb::Decision::Approve as i32,
        ..Default::default()
    })
    .await
    .unwrap_err()
}

async fn account_and_opportunity(
    amy: &mut OpportunitiesClient,
    name: &str,
) -> (pb::Account, pb::Opportunity) {
    let account = amy
        .create_account(pb::CreateAccountRequest {
            account: Some(pb::Account {
                name: name.into(),
                industry: "manufacturing".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    let opp = amy
        .create_opportunity(pb::CreateOpportunityRequest {
            opportunity: Some(pb::Opportunity {
                account_id: account.id.clone(),
                name: format!("{name} deal"),
                amount: cny(500_000),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .opportunity
        .unwrap();
    (account, opp)
}

#[tokio::test]
async fn overrides_order_and_concurrency() {
    let suite = start().await;
    let Team {
        mut amy, mut boss, ..
    } = team(&suite);
    let (_, opp) = account_and_opportunity(&mut amy, "Initech").await;

    let err = advance(&mut amy, &opp.id, pb::Stage::Proposal)
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::FailedPrecondition, "STAGE_ORDER")
    );

    // Only a manager overrides, and the override is a listed violation.
    let request = |by_reason: &str| pb::AdvanceStageRequest {
        id: opp.id.clone(),
        target_stage: pb::Stage::Approved as i32,
        override_reason: by_reason.into(),
        ..Default::default()
    };
    let err = amy.advance_stage(request("please")).await.unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::PermissionDenied, "OVERRIDE_NOT_ALLOWED")
    );
    let overridden = boss
        .advance_stage(request("strategic account"))
        .await
        .unwrap()
        .into_inner();
    assert!(overridden.violation.is_some());
    let violations = boss
        .list_stage_violations(pb::ListStageViolationsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .violations;
    assert_eq!(violations.len(), 1);
    assert_eq!(
        (
            violations[0].manager_id.as_str(),
            violations[0].reason.as_str()
        ),
        ("boss", "strategic account")
    );
    assert_eq!(
        violations[0].missing.len(),
        4,
        "{:?}",
        violations[0].missing
    );

    // Two concurrent moves with the same etag: exactly one wins.
    let current = overridden.opportunity.unwrap();
    let mut c1 = boss.clone();
    let mut c2 = boss.clone();
    let move_with = |etag: String| pb::AdvanceStageRequest {
        id: current.id.clone(),
        etag,
        target_stage: pb::Stage::NeedsAnalysis as i32,
        override_reason: "race".into(),
    };
    let (a, b) = tokio::join!(
        c1.advance_stage(move_with(current.etag.clone())),
        c2.advance_stage(move_with(current.etag.clone()))
    );
    let codes: Vec<Code> = [a.map(|_| Code::Ok), b.map(|_| Code::Ok)]
        .into_iter()
        .map(|r| r.unwrap_or_else(|s| s.code()))
        .collect();
    assert_eq!(
        codes.iter().filter(|c| **c == Code::Ok).count(),
        1,
        "{codes:?}"
    );
    assert!(codes.contains(&Code::Aborted), "{codes:?}");
}

#[tokio::test]
async fn bad_input_names_the_field() {
    let suite = start().await;
    let Team { mut amy, .. } = team(&suite);
    let (account, opp) = account_and_opportunity(&mut amy, "Hooli").await;
    let (other_account, _) = account_and_opportunity(&mut amy, "Pied Piper").await;

    let err = amy
        .create_opportunity(pb::CreateOpportunityRequest {
            opportunity: Some(pb::Opportunity {
                account_id: account.id.clone(),
                name: "x".into(),
                amount: cny(-5),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), violated_fields(&err)),
        (Code::InvalidArgument, vec!["opportunity.amount".to_owned()])
    );
    let err = update(
        &mut amy,
        pb::Opportunity {
            id: opp.id.clone(),
            amount: Some(common::Money {
                currency_code: "ABC".into(),
                units: 1,
                nanos: 0,
            }),
            ..Default::default()
        },
        &["amount"],
    )
    .await
    .unwrap_err();
    assert_eq!(violated_fields(&err), ["opportunity.amount.currency_code"]);

    let stranger = amy
        .create_contact(pb::CreateContactRequest {
            contact: Some(pb::Contact {
                account_id: other_account.id.clone(),
                name: "Richard".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .contact
        .unwrap();
    let member = |contact_id: &str, rating: i32| pb::SetDecisionChainMemberRequest {
        opportunity_id: opp.id.clone(),
        member: Some(pb::DecisionChainMember {
            contact_id: contact_id.into(),
            role: pb::DecisionRole::Influencer as i32,
            relationship: rating,
            solution_acceptance: 3,
            price_acceptance: 3,
        }),
    };
    let err = amy
        .set_decision_chain_member(member(&stranger.id, 3))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), violated_fields(&err)),
        (Code::InvalidArgument, vec!["member.contact_id".to_owned()])
    );
    let err = amy
        .set_decision_chain_member(member(&stranger.id, 6))
        .await
        .unwrap_err();
    assert_eq!(violated_fields(&err), ["member.relationship"]);

    // Sales on another team cannot touch the opportunity; approving one's own request is refused.
    let mut bob = suite.opportunities_client(Some(&suite.token(
        "acme",
        "bob",
        &[Role::Sales, Role::Manager],
    )));
    let request = amy
        .request_approval(pb::RequestApprovalRequest {
            kind: pb::ApprovalKind::GradeUpgrade as i32,
            opportunity_id: opp.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .approval
        .unwrap();
    let mut amy_manager = suite.opportunities_client(Some(&suite.token(
        "acme",
        "amy",
        &[Role::Sales, Role::Manager],
    )));
    let err = approve_err(&mut amy_manager, &request.id).await;
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::PermissionDenied, "SELF_APPROVAL")
    );
    assert_eq!(
        approve(&mut bob, &request.id, "").await.status,
        pb::ApprovalStatus::Approved as i32
    );
}

#[tokio::test]
async fn account_core_fields_change_only_when_approved() {
    let suite = start().await;
    let Team {
        mut amy, mut boss, ..
    } = team(&suite);
    let (account, _) = account_and_opportunity(&mut amy, "Umbrella").await;
    let reply = amy
        .update_account(pb::UpdateAccountRequest {
            account: Some(pb::Account {
                id: account.id.clone(),
                name: "Umbrella Group".into(),
                region: "East".into(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["name".into(), "region".into()],
            }),
            reason: "renamed after merger".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let pending = reply.account.unwrap();
    assert_eq!(
        (pending.name.as_str(), pending.region.as_str()),
        ("Umbrella", "East"),
        "region at once, name after approval"
    );
    let approval = reply.approval.unwrap();
    assert_eq!(
        approval.proposed_changes.get("name").map(String::as_str),
        Some("Umbrella Group")
    );
    approve(&mut boss, &approval.id, "").await;
    let after = amy
        .get_account(pb::GetAccountRequest { id: account.id })
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    assert_eq!(
        (after.name.as_str(), after.pending_approval_id.as_str()),
        ("Umbrella Group", "")
    );

    // One owning account manager, reassigned by managers only.
    let reassign = |owner: &str| pb::UpdateAccountRequest {
        account: Some(pb::Account {
            id: after.id.clone(),
            owner_id: owner.into(),
            ..Default::default()
        }),
        update_mask: Some(FieldMask {
            paths: vec!["owner_id".into()],
        }),
        reason: String::new(),
    };
    let err = amy
        .update_account(reassign("amy-friend"))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::PermissionDenied, "NOT_MANAGER")
    );
    let moved = boss
        .update_account(reassign("bob"))
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    assert_eq!(moved.owner_id, "bob");
}

#[tokio::test]
async fn another_tenants_records_are_not_found() {
    let suite = start().await;
    let Team { mut amy, .. } = team(&suite);
    let (account, opp) = account_and_opportunity(&mut amy, "Soylent").await;
    let contact = amy
        .create_contact(pb::CreateContactRequest {
            contact: Some(pb::Contact {
                account_id: account.id.clone(),
                name: "Sol".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .contact
        .unwrap();
    let approval = amy
        .request_approval(pb::RequestApprovalRequest {
            kind: pb::ApprovalKind::ProjectApproval as i32,
            opportunity_id: opp.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .approval
        .unwrap();
    let mut other = suite.opportunities_client(Some(&suite.token(
        "globex",
        "boss",
        &[Role::Manager, Role::Sales, Role::Admin],
    )));
    let errs = [
        (
            "account",
            other
                .get_account(pb::GetAccountRequest {
                    id: account.id.clone(),
                })
                .await
                .err(),
        ),
        (
            "contacts",
            other
                .list_contacts(pb::ListContactsRequest {
                    account_id: account.id.clone(),
                    ..Default::default()
                })
                .await
                .err(),
        ),
        (
            "opportunity",
            other
                .get_opportunity(pb::GetOpportunityRequest { id: opp.id.clone() })
                .await
                .err(),
        ),
        (
            "advance",
            other
                .advance_stage(pb::AdvanceStageRequest {
                    id: opp.id.clone(),
                    target_stage: pb::Stage::Lost as i32,
                    ..Default::default()
                })
                .await
                .err(),
        ),
        (
            "approval",
            other
                .get_approval(pb::GetApprovalRequest {
                    id: approval.id.clone(),
                })
                .await
                .err(),
        ),
        (
            "decide",
            other
                .decide_approval(pb::DecideApprovalRequest {
                    id: approval.id.clone(),
                    decision: pb::Decision::Approve as i32,
                    ..Default::default()
                })
                .await
                .err(),
        ),
        (
            "chain",
            other
                .set_decision_chain_member(pb::SetDecisionChainMemberRequest {
                    opportunity_id: opp.id.clone(),
                    member: Some(pb::DecisionChainMember {
                        contact_id: contact.id.clone(),
                        role: 1,
                        relationship: 1,
                        solution_acceptance: 1,
                        price_acceptance: 1,
                    }),
                })
                .await
                .err(),
        ),
    ];
    for (what, err) in errs {
        assert_eq!(err.map(|e| e.code()), Some(Code::NotFound), "{what}");
    }
}

#[tokio::test]
async fn conversion_while_opportunities_is_down_leaves_the_lead_unconverted() {
    // Point leads at a port where nothing listens.
    let suite = start_with(|s| s.leads.opportunities_url = Some("http://127.0.0.1:9".into())).await;
    let mut leads = suite.leads_client(Some(&suite.token("acme", "amy", &[Role::Sales])));
    let lead = leads
        .create_lead(leads::CreateLeadRequest {
            lead: Some(leads::Lead {
                company: "Down Co".into(),
                source_channel: "sem".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .lead
        .unwrap();
    let err = leads
        .convert_lead(leads::ConvertLeadRequest {
            id: lead.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::Unavailable, "{err:?}");
    let after = leads
        .get_lead(leads::GetLeadRequest { id: lead.id })
        .await
        .unwrap()
        .into_inner()
        .lead
        .unwrap();
    assert_eq!(
        (after.status, after.opportunity_id.as_str()),
        (leads::LeadStatus::New as i32, "")
    );
}

#[tokio::test]
async fn conversion_interrupted_between_the_services_completes_once() {
    let suite = start().await;
    let token = suite.token("acme", "amy", &[Role::Sales]);
    let mut leads = suite.leads_client(Some(&token));
    // The leads service's own call, made for amy.
    let for_amy = crate::auth::service_token(&suite, "acme", Some(("amy", &["sales"])));
    let mut opportunities = suite.opportunities_client(Some(&for_amy));
    let lead = leads
        .create_lead(leads::CreateLeadRequest {
            lead: Some(leads::Lead {
                company: "Halfway Ltd".into(),
                contact_name: "Han".into(),
                source_channel: "sem".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .lead
        .unwrap();
    // The first step happened (as if the leads service died right after it)...
    let first = opportunities
        .convert_lead(pb::ConvertLeadRequest {
            lead_id: lead.id.clone(),
            company: "Halfway Ltd".into(),
            contact_name: "Han".into(),
            owner_id: "amy".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    // ...and the retried conversion completes with that same opportunity.
    let converted = leads
        .convert_lead(leads::ConvertLeadRequest {
            id: lead.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .lead
        .unwrap();
    assert_eq!(converted.opportunity_id, first.opportunity.unwrap().id);
    let mut boss = suite.opportunities_client(Some(&suite.token("acme", "boss", &[Role::Manager])));
    let all = boss
        .list_opportunities(pb::ListOpportunitiesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.opportunities.len(), 1, "exactly one opportunity");
}

#[tokio::test]
async fn presales_hours_and_the_pipeline_per_owner() {
    let suite = start().await;
    let Team {
        mut amy, mut boss, ..
    } = team(&suite);
    let (_, opp) = account_and_opportunity(&mut amy, "Wonka").await;
    let mut bob = suite.opportunities_client(Some(&suite.token("acme", "bob", &[Role::Sales])));
    let (_, bobs) = account_and_opportunity(&mut bob, "Gringotts").await;

    let log = |minutes: i32, day: i32| pb::LogWorkHoursRequest {
        opportunity_id: opp.id.clone(),
        work_hours: Some(pb::WorkHours {
            work_date: Some(common::Date {
                year: 2026,
                month: 11,
                day,
            }),
            minutes,
            notes: "solution workshop".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    amy.log_work_hours(log(90, 20)).await.unwrap();
    amy.log_work_hours(log(240, 21)).await.unwrap();
    let err = amy.log_work_hours(log(0, 22)).await.unwrap_err();
    assert_eq!(violated_fields(&err), ["work_hours.minutes"]);
    let err = amy.log_work_hours(log(60, 31)).await.unwrap_err();
    assert_eq!(
        violated_fields(&err),
        ["work_hours.work_date"],
        "November has 30 days"
    );
    let err = bob.log_work_hours(log(60, 20)).await.unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::PermissionDenied, "NOT_ON_TEAM")
    );
    let hours = amy
        .list_work_hours(pb::ListWorkHoursRequest {
            opportunity_id: opp.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((hours.work_hours.len(), hours.total_minutes), (2, 330));
    assert_eq!(hours.work_hours[0].person_id, "amy");

    // Each sales person sees their own pipeline; the manager sees the tenant's.
    let units = |lines: &[pb::ForecastLine]| {
        lines
            .iter()
            .map(|l| {
                (
                    l.count,
                    l.weighted_amount
                        .as_ref()
                        .map(|m| m.units)
                        .unwrap_or_default(),
                )
            })
            .collect::<Vec<_>>()
    };
    let mine = amy
        .get_forecast(pb::GetForecastRequest::default())
        .await
        .unwrap()
        .into_inner()
        .lines;
    assert_eq!(
        units(&mine),
        [(1, 50_000)],
        "validate weighs 10% of 500,000"
    );
    let all = boss
        .get_forecast(pb::GetForecastRequest::default())
        .await
        .unwrap()
        .into_inner()
        .lines;
    assert_eq!(units(&all), [(2, 100_000)]);
    let err = amy
        .get_forecast(pb::GetForecastRequest {
            owner_id: "bob".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert!(!bobs.id.is_empty());
}

/// The tenant's admin binds the OA system ("oa-system") as the integration
/// that decides approvals, for the people of `approvers` with their roles.
async fn bind_oa(suite: &TestSuite, approvers: &[(&str, &[common::Role])]) {
    let mut admin = suite.opportunities_client(Some(&suite.token("acme", "root", &[Role::Admin])));
    let mut config = admin
        .get_opportunity_config(pb::GetOpportunityConfigRequest {})
        .await
        .unwrap()
        .into_inner()
        .config
        .unwrap();
    config.oa_subjects = vec!["oa-system".into()];
    config.approvers = approvers
        .iter()
        .map(|(person, roles)| pb::Approver {
            person_id: (*person).into(),
            roles: roles.iter().map(|r| *r as i32).collect(),
        })
        .collect();
    admin
        .update_opportunity_config(pb::UpdateOpportunityConfigRequest {
            config: Some(config),
        })
        .await
        .unwrap();
}

fn client_of(suite: &TestSuite, who: &str, roles: &[Role]) -> OpportunitiesClient {
    suite.opportunities_client(Some(&suite.token("acme", who, roles)))
}

async fn create_opportunity(
    c: &mut OpportunitiesClient,
    opportunity: pb::Opportunity,
) -> Result<pb::Opportunity, tonic::Status> {
    c.create_opportunity(pb::CreateOpportunityRequest {
        opportunity: Some(opportunity),
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner().opportunity.unwrap())
}

async fn request_bid(c: &mut OpportunitiesClient, opportunity_id: &str) -> pb::Approval {
    c.request_approval(pb::RequestApprovalRequest {
        kind: pb::ApprovalKind::BidApproval as i32,
        opportunity_id: opportunity_id.into(),
        reason: "margin 3%, below the floor".into(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .approval
    .unwrap()
}

async fn decide_as(
    c: &mut OpportunitiesClient,
    id: &str,
    on_behalf_of: &str,
) -> Result<pb::Approval, tonic::Status> {
    c.decide_approval(pb::DecideApprovalRequest {
        id: id.into(),
        decision: pb::Decision::Approve as i32,
        on_behalf_of: on_behalf_of.into(),
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner().approval.unwrap())
}

fn refused<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> (Code, String) {
    let err = result.unwrap_err();
    (err.code(), reason(&err))
}

fn denied(why: &str) -> (Code, String) {
    (Code::PermissionDenied, why.to_owned())
}

#[tokio::test]
async fn finding_6_amounts_are_bounded_and_the_forecast_sums_them() {
    let suite = start().await;
    let Team {
        mut amy, mut boss, ..
    } = team(&suite);
    let (account, opp) = account_and_opportunity(&mut amy, "Cyberdyne").await;
    let huge = pb::Opportunity {
        account_id: account.id.clone(),
        name: "too big".into(),
        amount: cny(5_000_000_000_000_000_000),
        ..Default::default()
    };
    let err = create_opportunity(&mut amy, huge.clone())
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), violated_fields(&err)),
        (Code::InvalidArgument, vec!["opportunity.amount".to_owned()])
    );
    let huge = pb::Opportunity {
        id: opp.id.clone(),
        ..huge
    };
    let err = update(&mut amy, huge, &["amount"]).await.unwrap_err();
    assert_eq!(violated_fields(&err), ["opportunity.amount"]);
    // Two at the maximum sum exactly.
    let max = 1_000_000_000_000;
    update(
        &mut amy,
        pb::Opportunity {
            id: opp.id.clone(),
            amount: cny(max),
            ..Default::default()
        },
        &["amount"],
    )
    .await
    .unwrap();
    create_opportunity(
        &mut amy,
        pb::Opportunity {
            account_id: account.id.clone(),
            name: "as big as allowed".into(),
            amount: cny(max),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let lines = boss
        .get_forecast(pb::GetForecastRequest::default())
        .await
        .unwrap()
        .into_inner()
        .lines;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0].amount.as_ref().unwrap().units, 2 * max);
    assert_eq!(
        lines[0].weighted_amount.as_ref().unwrap().units,
        2 * max / 10
    );
}

#[tokio::test]
async fn finding_7_team_filter_matches_subjects_exactly() {
    let suite = start().await;
    let Team { mut boss, .. } = team(&suite);
    let (account, _) = account_and_opportunity(&mut boss, "Tyrell").await;
    let with_alice = create_opportunity(
        &mut boss,
        pb::Opportunity {
            account_id: account.id.clone(),
            name: "Replicants".into(),
            team: Some(pb::Team {
                account_manager_id: "amy".into(),
                other_member_ids: vec!["alice".into()],
                ..Default::default()
            }),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let list = |c: &mut OpportunitiesClient| {
        let mut c = c.clone();
        async move {
            c.list_opportunities(pb::ListOpportunitiesRequest::default())
                .await
                .unwrap()
                .into_inner()
                .opportunities
                .into_iter()
                .map(|o| o.id)
                .collect::<Vec<_>>()
        }
    };
    for pattern in ["%", "al_ce", "_%", "alice%"] {
        let mut eve = client_of(&suite, pattern, &[Role::Sales]);
        assert_eq!(list(&mut eve).await, Vec::<String>::new(), "{pattern}");
        let err = eve
            .get_opportunity(pb::GetOpportunityRequest {
                id: with_alice.id.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!((err.code(), reason(&err)), denied("NOT_ON_TEAM"));
    }
    let mut alice = client_of(&suite, "alice", &[Role::Solution]);
    assert_eq!(list(&mut alice).await, [with_alice.id.as_str()]);
    let mut amy = client_of(&suite, "amy", &[Role::Sales]);
    assert_eq!(list(&mut amy).await, [with_alice.id.as_str()]);
    // Membership follows the team as it changes.
    update(
        &mut amy,
        pb::Opportunity {
            id: with_alice.id.clone(),
            team: Some(pb::Team {
                account_manager_id: "amy".into(),
                other_member_ids: vec!["bob".into()],
                ..Default::default()
            }),
            ..Default::default()
        },
        &["team"],
    )
    .await
    .unwrap();
    assert_eq!(list(&mut alice).await, Vec::<String>::new());
    let mut bob = client_of(&suite, "bob", &[Role::Delivery]);
    assert_eq!(list(&mut bob).await, [with_alice.id]);
}

#[tokio::test]
async fn finding_8_approvals_are_read_by_those_who_see_their_subject_and_their_deciders() {
    let suite = start().await;
    let Team {
        mut amy,
        mut boss,
        mut fay,
        mut lee,
        ..
    } = team(&suite);
    let (_, opp) = account_and_opportunity(&mut amy, "Weyland").await;
    let bid = request_bid(&mut amy, &opp.id).await;
    let mut eve = client_of(&suite, "eve", &[Role::Sales]);
    let get = |c: &OpportunitiesClient| {
        let (mut c, id) = (c.clone(), bid.id.clone());
        async move { c.get_approval(pb::GetApprovalRequest { id }).await }
    };
    let listed = |c: &OpportunitiesClient| {
        let mut c = c.clone();
        async move {
            c.list_approvals(pb::ListApprovalsRequest::default())
                .await
                .unwrap()
                .into_inner()
                .approvals
                .into_iter()
                .map(|a| a.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(refused(get(&eve).await), denied("NOT_ON_TEAM"));
    assert_eq!(listed(&eve).await, Vec::<String>::new());
    let filtered = eve
        .list_approvals(pb::ListApprovalsRequest {
            subject_id: opp.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(filtered.approvals.is_empty(), "nor by naming the subject");
    // The team and supervisors read it; finance not before its step is open.
    assert!(get(&amy).await.is_ok());
    assert_eq!(listed(&amy).await, [bid.id.as_str()]);
    assert_eq!(listed(&boss).await, [bid.id.as_str()]);
    assert_eq!(refused(get(&fay).await), denied("NOT_ON_TEAM"));
    assert_eq!(listed(&fay).await, Vec::<String>::new());
    approve(&mut boss, &bid.id, "").await;
    assert!(get(&fay).await.is_ok(), "finance decides the open step");
    assert_eq!(listed(&fay).await, [bid.id.as_str()]);
    assert_eq!(refused(get(&lee).await), denied("NOT_ON_TEAM"));
    approve(&mut fay, &bid.id, "").await;
    assert_eq!(listed(&lee).await, [bid.id.as_str()]);
    approve(&mut lee, &bid.id, "").await;
    assert_eq!(
        refused(get(&lee).await),
        denied("NOT_ON_TEAM"),
        "decided: nothing awaits legal any more"
    );
}

#[tokio::test]
async fn finding_9_only_the_account_manager_or_a_manager_changes_the_team() {
    let suite = start().await;
    let Team {
        mut amy,
        mut boss,
        mut dora,
        ..
    } = team(&suite);
    let (_, opp) = account_and_opportunity(&mut amy, "Oscorp").await;
    let team_of = |am: &str, dm: &str| pb::Team {
        account_manager_id: am.into(),
        solution_manager_id: "sol".into(),
        delivery_manager_id: dm.into(),
        ..Default::default()
    };
    let with_team = |t: pb::Team| pb::Opportunity {
        id: opp.id.clone(),
        team: Some(t),
        ..Default::default()
    };
    let opp = update(&mut amy, with_team(team_of("amy", "dora")), &["team"])
        .await
        .unwrap();
    // The solution manager cannot make himself account manager.
    let mut sol = client_of(&suite, "sol", &[Role::Solution]);
    assert_eq!(
        refused(update(&mut sol, with_team(team_of("sol", "dora")), &["team"]).await),
        denied("NOT_ACCOUNT_MANAGER")
    );
    assert_eq!(
        refused(update(&mut sol, with_team(team_of("amy", "sol")), &["team"]).await),
        denied("NOT_ACCOUNT_MANAGER")
    );
    // The account manager changes the team, but names no other account manager.
    assert_eq!(
        refused(update(&mut amy, with_team(team_of("bob", "dora")), &["team"]).await),
        denied("NOT_MANAGER")
    );
    let still = amy
        .get_opportunity(pb::GetOpportunityRequest { id: opp.id.clone() })
        .await
        .unwrap()
        .into_inner()
        .opportunity
        .unwrap();
    assert_eq!(still.team, opp.team, "the refused changes changed nothing");

    // A new delivery manager voids the review of the old one.
    let opp = update(
        &mut amy,
        pb::Opportunity {
            id: opp.id.clone(),
            solution_summary: "MES".into(),
            workload_person_days: 80,
            quote: cny(400_000),
            ..Default::default()
        },
        &["solution_summary", "workload_person_days", "quote"],
    )
    .await
    .unwrap();
    let review = amy
        .request_delivery_review(pb::RequestDeliveryReviewRequest {
            opportunity_id: opp.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .approval
        .unwrap();
    approve(&mut dora, &review.id, "").await;
    let opp = update(&mut amy, with_team(team_of("amy", "dan")), &["team"])
        .await
        .unwrap();
    assert_eq!(
        opp.delivery_review.as_ref().unwrap().status,
        pb::ApprovalStatus::Voided as i32
    );
    let voided = boss
        .get_approval(pb::GetApprovalRequest { id: review.id })
        .await
        .unwrap()
        .into_inner()
        .approval
        .unwrap();
    assert_eq!(voided.status, pb::ApprovalStatus::Voided as i32);
    // A manager names another account manager.
    let moved = update(&mut boss, with_team(team_of("bob", "dan")), &["team"])
        .await
        .unwrap();
    assert_eq!(moved.team.unwrap().account_manager_id, "bob");
}

#[tokio::test]
async fn finding_10_distinct_deciders_and_bound_integrations() {
    let suite = start().await;
    let Team {
        mut amy,
        mut oa,
        mut lee,
        ..
    } = team(&suite);
    let (_, opp) = account_and_opportunity(&mut amy, "Massive Dynamic").await;
    let bid = request_bid(&mut amy, &opp.id).await;
    // One person holding manager, finance and legal decides one step only.
    let mut max = client_of(&suite, "max", &[Role::Manager, Role::Finance, Role::Legal]);
    decide_as(&mut max, &bid.id, "").await.unwrap();
    assert_eq!(
        refused(decide_as(&mut max, &bid.id, "").await),
        denied("REPEAT_DECIDER")
    );
    // An integration the tenant has not bound decides nothing.
    let mut rogue = client_of(&suite, "crm-sync", &[Role::Integration]);
    assert_eq!(
        refused(decide_as(&mut rogue, &bid.id, "fei").await),
        denied("INTEGRATION_NOT_ALLOWED")
    );
    assert_eq!(
        refused(decide_as(&mut oa, &bid.id, "fei").await),
        denied("INTEGRATION_NOT_ALLOWED"),
        "nor does the OA system before it is bound"
    );
    bind_oa(
        &suite,
        &[
            ("fei", &[common::Role::Finance]),
            ("wang", &[common::Role::Manager]),
            ("max", &[common::Role::Finance]),
        ],
    )
    .await;
    assert_eq!(
        refused(decide_as(&mut rogue, &bid.id, "fei").await),
        denied("INTEGRATION_NOT_ALLOWED")
    );
    // The bound OA system decides for people of the directory holding the step's role.
    assert_eq!(
        refused(decide_as(&mut oa, &bid.id, "invented").await),
        denied("ON_BEHALF_OF_NOT_APPROVER")
    );
    assert_eq!(
        refused(decide_as(&mut oa, &bid.id, "wang").await),
        denied("ON_BEHALF_OF_NOT_APPROVER"),
        "wang is a manager; the open step is finance's"
    );
    assert_eq!(
        refused(decide_as(&mut oa, &bid.id, "max").await),
        denied("REPEAT_DECIDER"),
        "max through the OA system is still max"
    );
    let decided = decide_as(&mut oa, &bid.id, "fei").await.unwrap();
    assert_eq!(decided.steps[1].on_behalf_of, "fei");
    let done = decide_as(&mut lee, &bid.id, "").await.unwrap();
    assert_eq!(done.status, pb::ApprovalStatus::Approved as i32);
}

#[tokio::test]
async fn finding_17_accounts_and_contacts_are_seen_by_their_owner_and_teams() {
    let suite = start().await;
    let Team {
        mut amy, mut boss, ..
    } = team(&suite);
    let (account, opp) = account_and_opportunity(&mut amy, "Stark").await;
    let contact = |name: &str| pb::CreateContactRequest {
        contact: Some(pb::Contact {
            account_id: account.id.clone(),
            name: name.into(),
            phone: "+86 139 0000 0000".into(),
            email: "pepper@stark.example".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    amy.create_contact(contact("Pepper")).await.unwrap();
    let get = |c: &OpportunitiesClient| {
        let (mut c, id) = (c.clone(), account.id.clone());
        async move { c.get_account(pb::GetAccountRequest { id }).await }
    };
    let contacts = |c: &OpportunitiesClient| {
        let (mut c, account_id) = (c.clone(), account.id.clone());
        async move {
            c.list_contacts(pb::ListContactsRequest {
                account_id,
                ..Default::default()
            })
            .await
        }
    };
    let accounts = |c: &OpportunitiesClient| {
        let mut c = c.clone();
        async move {
            c.list_accounts(pb::ListAccountsRequest::default())
                .await
                .unwrap()
                .into_inner()
                .accounts
                .into_iter()
                .map(|a| a.id)
                .collect::<Vec<_>>()
        }
    };
    let mut sol = client_of(&suite, "sol", &[Role::Solution]);
    for (who, role) in [
        ("eve", Role::Sales),
        ("sol", Role::Solution),
        ("dan", Role::Delivery),
    ] {
        let mut stranger = client_of(&suite, who, &[role]);
        assert_eq!(
            refused(get(&stranger).await),
            denied("NOT_ON_TEAM"),
            "{who}"
        );
        assert_eq!(
            refused(contacts(&stranger).await),
            denied("NOT_ON_TEAM"),
            "{who}"
        );
        assert_eq!(accounts(&stranger).await, Vec::<String>::new(), "{who}");
        assert_eq!(
            refused(stranger.create_contact(contact("Happy")).await),
            denied("NOT_ACCOUNT_OWNER"),
            "{who}"
        );
    }
    let mut eve = client_of(&suite, "eve", &[Role::Sales]);
    let err = create_opportunity(
        &mut eve,
        pb::Opportunity {
            account_id: account.id.clone(),
            name: "side door".into(),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(refused(err), denied("NOT_ON_TEAM"), "nor opens a way in");
    // On the team of one of its opportunities: the account and contacts are visible.
    update(
        &mut amy,
        pb::Opportunity {
            id: opp.id.clone(),
            team: Some(pb::Team {
                account_manager_id: "amy".into(),
                solution_manager_id: "sol".into(),
                ..Default::default()
            }),
            ..Default::default()
        },
        &["team"],
    )
    .await
    .unwrap();
    assert!(get(&sol).await.is_ok());
    let seen = contacts(&sol).await.unwrap().into_inner().contacts;
    assert_eq!(seen[0].phone, "+86 139 0000 0000");
    assert_eq!(accounts(&sol).await, [account.id.as_str()]);
    assert_eq!(
        refused(sol.create_contact(contact("Happy")).await),
        denied("NOT_ACCOUNT_OWNER"),
        "contacts are added by those who may change the account"
    );
    assert_eq!(accounts(&amy).await, [account.id.as_str()]);
    assert_eq!(accounts(&boss).await, [account.id.as_str()]);
    boss.create_contact(contact("Happy")).await.unwrap();
}

#[tokio::test]
async fn finding_21_conversion_contacts_and_account_changes_are_audited() {
    let suite = start().await;
    let Team {
        mut amy, mut boss, ..
    } = team(&suite);
    // The leads service's call, made for amy.
    let for_amy = crate::auth::service_token(&suite, "acme", Some(("amy", &["sales"])));
    let converted = suite
        .opportunities_client(Some(&for_amy))
        .convert_lead(pb::ConvertLeadRequest {
            lead_id: "lead-1".into(),
            company: "Aperture".into(),
            contact_name: "Cave".into(),
            owner_id: "amy".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let auditor = boss.clone();
    let audit = |subject: &str| {
        let (mut auditor, subject_id) = (auditor.clone(), subject.to_owned());
        async move {
            auditor
                .list_audit_entries(pb::ListAuditEntriesRequest {
                    subject_id,
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .entries
                .into_iter()
                .map(|e| e.action)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(audit(&converted.contact_id).await, ["contact.created"]);
    let account = converted.account.unwrap();
    let change = amy
        .update_account(pb::UpdateAccountRequest {
            account: Some(pb::Account {
                id: account.id.clone(),
                name: "Aperture Science".into(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["name".into()],
            }),
            reason: "legal name".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .approval
        .unwrap();
    assert_eq!(audit(&change.id).await, ["approval.requested"]);
    approve(&mut boss, &change.id, "").await;
    let mut trail = audit(&change.id).await;
    trail.sort();
    assert_eq!(trail, ["approval.decided", "approval.requested"]);
}

#[tokio::test]
async fn finding_22_a_creation_is_one_created_event_first_and_a_change_carries_its_record() {
    let suite = start().await;
    let Team { mut amy, .. } = team(&suite);
    let oa_token = suite.token("acme", "oa-system", &[Role::Integration]);
    let mut events = suite.events_client(&oa_token, "opportunities");
    let mut stream = events
        .subscribe(ev::SubscribeRequest {
            after_sequence: 0,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let (account, opp) = account_and_opportunity(&mut amy, "Black Mesa").await;
    amy.create_contact(pb::CreateContactRequest {
        contact: Some(pb::Contact {
            account_id: account.id.clone(),
            name: "Gordon".into(),
            ..Default::default()
        }),
        ..Default::default()
    })
    .await
    .unwrap();
    // The contact's change comes last: everything before it is the creations.
    let mut seen = Vec::new();
    let mut changed = None;
    while seen
        .last()
        .is_none_or(|(t, _): &(String, String)| t != &pb::AccountChanged::full_name())
    {
        let next = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("an event within 10s")
            .unwrap()
            .expect("stream open");
        if let Some(ev::subscribe_response::Kind::Event(e)) = next.kind {
            if e.r#type == pb::AccountChanged::full_name() {
                let payload = e.payload.clone().unwrap_or_default();
                changed = Some(
                    <pb::AccountChanged as prost::Message>::decode(payload.value.as_slice())
                        .unwrap(),
                );
            }
            seen.push((e.r#type, e.subject_id));
        }
    }
    let types: Vec<&str> = seen.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        types,
        [
            pb::AccountCreated::full_name(),
            pb::OpportunityCreated::full_name(),
            pb::AccountChanged::full_name(),
        ]
    );
    let subjects: Vec<&str> = seen.iter().take(2).map(|(_, s)| s.as_str()).collect();
    assert_eq!(subjects, [account.id.as_str(), opp.id.as_str()]);
    // A change carries its record as it is after the change, as the
    // contract says, beside the audit entry.
    let changed = changed.unwrap();
    assert_eq!(
        changed.account.map(|a| (a.id, a.name)),
        Some((account.id.clone(), "Black Mesa".to_owned())),
        "AccountChanged carries the account"
    );
    assert_eq!(
        changed.entry.map(|e| e.action),
        Some("contact.created".to_owned())
    );

    // An opportunity's change carries the opportunity after it.
    let renamed = pb::Opportunity {
        name: "Black Mesa, phase 2".into(),
        ..opp.clone()
    };
    let renamed = update(&mut amy, renamed, &["name"]).await.unwrap();
    let changed = loop {
        let next = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("an event within 10s")
            .unwrap()
            .expect("stream open");
        if let Some(ev::subscribe_response::Kind::Event(e)) = next.kind
            && e.r#type == pb::OpportunityChanged::full_name()
        {
            let payload = e.payload.unwrap_or_default();
            break <pb::OpportunityChanged as prost::Message>::decode(payload.value.as_slice())
                .unwrap();
        }
    };
    let after = changed
        .opportunity
        .expect("OpportunityChanged carries the opportunity");
    assert_eq!(
        (after.id, after.name, after.etag),
        (opp.id.clone(), renamed.name, renamed.etag),
        "as it is after the change"
    );
}
