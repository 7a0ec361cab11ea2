//! From a lead to a won opportunity, from the won opportunity to a signed
//! contract handed over to delivery, and from the delivery project to
//! go-live, against a running `crm serve`:
//!
//! ```sh
//! cargo run -p crm -- serve &
//! cargo run -p crm --example walkthrough
//! ```
//!
//! It signs its tokens with the development key in `./data` (as `crm token`
//! does) and talks to the gateway on 127.0.0.1:50051 with the clients
//! generated from `proto/`, as any client team would. The contract's legal
//! step is decided by an OA system: a task that follows the contracts
//! service's event stream and answers each legal step it is asked for on
//! behalf of the approver the tenant configured. The delivery project is
//! made by the delivery service from the contract's `ContractSigned` event;
//! the walkthrough follows the delivery stream for it, for a risk alert
//! raised and resolved on the way, the accepted milestones and go-live.
//! Go-live makes the account's entitlement in the tickets service; a
//! ticket from the customer portal is dispatched, waits on the customer
//! (the SLA clock paused), breaches its one-minute target and is escalated
//! by the tenant's rule, is resolved and rated, and the account's health
//! shows it. The sweeper checks SLA clocks every 30 s by default: start
//! the suite with `CRM__TICKETS__SWEEP_INTERVAL=1s` to see the breach
//! right after its minute.

use std::{error::Error, time::Duration};

use crm_auth::{DevKeys, Role};
use crm_proto::crm::{
    common::v1::{self as common, Date, Money},
    contracts::v1::{self as contracts, contract_service_client::ContractServiceClient},
    delivery::v1::{self as delivery, delivery_service_client::DeliveryServiceClient},
    events::v1::{self as events, event_service_client::EventServiceClient},
    leads::v1::{self as leads, lead_service_client::LeadServiceClient},
    opportunities::v1::{self as opps, opportunity_service_client::OpportunityServiceClient},
    tickets::v1::{self as tickets, ticket_service_client::TicketServiceClient},
};
use prost_types::FieldMask;
use tonic::{Request, transport::Channel};

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

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

fn show(money: Option<&Money>) -> String {
    match money {
        Some(m) if m.nanos == 0 => format!("{} {}", m.units, m.currency_code),
        Some(m) => format!("{}.{:09} {}", m.units, m.nanos, m.currency_code),
        None => "-".into(),
    }
}

fn day(date: Option<&Date>) -> String {
    date.map_or_else(
        || "-".into(),
        |d| format!("{}-{:02}-{:02}", d.year, d.month, d.day),
    )
}

fn line(item: &str, quantity: i64, units: i64, discount_percent: i32) -> contracts::LineItem {
    contracts::LineItem {
        item: item.into(),
        quantity,
        unit_price: cny(units),
        discount_percent,
        ..Default::default()
    }
}

fn milestone(name: &str, due_date: Date, percent: i32) -> contracts::PaymentMilestone {
    contracts::PaymentMilestone {
        name: name.into(),
        due_date: Some(due_date),
        share: Some(contracts::payment_milestone::Share::Percent(percent)),
        ..Default::default()
    }
}

/// The events of service `source` of the caller's tenant from the start,
/// only those of `event_types`, through the gateway (`source` routes it).
async fn subscribe(
    channel: Channel,
    caller: &Caller,
    source: &str,
    event_types: &[&str],
) -> Result<tonic::Streaming<events::SubscribeResponse>> {
    let request = caller.call(events::SubscribeRequest {
        after_sequence: 0,
        types: event_types.iter().map(|t| (*t).to_owned()).collect(),
        source: source.into(),
        ..Default::default()
    })?;
    Ok(EventServiceClient::new(channel)
        .subscribe(request)
        .await?
        .into_inner())
}

/// The next event of the stream, heartbeats skipped.
async fn next_event(
    stream: &mut tonic::Streaming<events::SubscribeResponse>,
) -> Result<events::Event> {
    loop {
        let message = stream.message().await?.ok_or("the stream ended")?;
        if let Some(events::subscribe_response::Kind::Event(event)) = message.kind {
            return Ok(event);
        }
    }
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
    let (root, oa, esign) = (
        as_("root", &[Role::Admin])?,
        as_("oa-system", &[Role::Integration])?,
        as_("esign", &[Role::Integration])?,
    );
    let channel = Channel::from_shared(gateway)?.connect().await?;
    let mut leads_api = LeadServiceClient::new(channel.clone());
    let mut api = OpportunityServiceClient::new(channel.clone());

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

    // From the won opportunity to a signed contract.
    let mut contracts_api = ContractServiceClient::new(channel.clone());

    // The tenant's admin binds its OA system: it may decide legal steps for wang.legal.
    let mut config = contracts_api
        .get_contracts_config(root.call(contracts::GetContractsConfigRequest {})?)
        .await?
        .into_inner()
        .config
        .ok_or("no config")?;
    config.oa_subjects = vec!["oa-system".into()];
    config.approvers = vec![common::Approver {
        person_id: "wang.legal".into(),
        roles: vec![common::Role::Legal as i32],
    }];
    contracts_api
        .update_contracts_config(root.call(contracts::UpdateContractsConfigRequest {
            config: Some(config),
        })?)
        .await?;
    println!("13. contracts config: the OA system oa-system decides legal steps for wang.legal");

    // The OA system follows the contracts stream and answers the legal step when it is asked.
    let mut requests = subscribe(
        channel.clone(),
        &oa,
        "contracts",
        &["crm.contracts.v1.ContractApprovalRequested"],
    )
    .await?;
    let mut oa_api = ContractServiceClient::new(channel.clone());
    let oa_system = tokio::spawn(async move {
        loop {
            let event = next_event(&mut requests).await?;
            let requested: contracts::ContractApprovalRequested =
                event.payload.ok_or("no payload")?.to_msg()?;
            let step = requested.step.ok_or("no step")?;
            if step.role != common::Role::Legal as i32 {
                continue; // not ours: decided in the CRM by its role holders
            }
            let decided = oa_api
                .decide_contract_approval(oa.call(contracts::DecideContractApprovalRequest {
                    id: requested.contract_id.clone(),
                    step: step.number,
                    decision: common::ApprovalDecision::Approve as i32,
                    comment: "approved in OA workflow 4711".into(),
                    on_behalf_of: "wang.legal".into(),
                    approval_id: requested.approval_id.clone(),
                    ..Default::default()
                })?)
                .await?
                .into_inner()
                .contract
                .ok_or("no contract")?;
            return Result::Ok(format!(
                "OA system saw ContractApprovalRequested for step {} ({}) of {} and approved it on behalf of wang.legal: contract {:?}",
                step.number,
                step.name,
                requested.contract_id,
                decided.status()
            ));
        }
    });

    let year = 2027;
    let draft = contracts::Contract {
        opportunity_id: id.clone(),
        currency_code: "CNY".into(),
        lines: vec![
            line("MES licence", 3, 200_000, 10),
            line("Implementation", 1, 410_000, 0),
        ],
        term: Some(contracts::Term {
            start_date: Some(Date {
                year,
                month: 4,
                day: 1,
            }),
            end_date: Some(Date {
                year: year + 1,
                month: 3,
                day: 31,
            }),
        }),
        milestones: vec![
            milestone(
                "signing",
                Date {
                    year,
                    month: 4,
                    day: 15,
                },
                30,
            ),
            milestone(
                "acceptance",
                Date {
                    year,
                    month: 9,
                    day: 30,
                },
                70,
            ),
        ],
        special_requirements: vec![contracts::SpecialRequirement {
            description: "deploy within 15 days".into(),
            due_within_days: 15,
        }],
        ..Default::default()
    };
    let contract = contracts_api
        .create_contract(amy.call(contracts::CreateContractRequest {
            request_id: "walkthrough-contract".into(),
            contract: Some(draft),
        })?)
        .await?
        .into_inner()
        .contract
        .ok_or("no contract")?;
    println!(
        "14. contract {} drafted by {}: {:?}, total {} (the service prices the lines)",
        contract.id,
        contract.owner_id,
        contract.status(),
        show(contract.total.as_ref())
    );
    for l in &contract.lines {
        println!(
            "    {} x{} at {} less {}% = {}",
            l.item,
            l.quantity,
            show(l.unit_price.as_ref()),
            l.discount_percent,
            show(l.line_total.as_ref())
        );
    }

    let mut contract = contracts_api
        .submit_contract(amy.call(contracts::SubmitContractRequest {
            id: contract.id.clone(),
            etag: contract.etag.clone(),
        })?)
        .await?
        .into_inner()
        .contract
        .ok_or("no contract")?;
    let summary = |c: &contracts::Contract| {
        c.approval
            .as_ref()
            .and_then(|a| a.progress.as_ref())
            .map(|p| p.summary.clone())
            .unwrap_or_default()
    };
    println!(
        "15. submitted: {:?}, {}",
        contract.status(),
        summary(&contract)
    );

    for (who, caller, step) in [("boss", &boss, 1), ("fay", &fay, 2)] {
        contract = contracts_api
            .decide_contract_approval(
                caller.call(contracts::DecideContractApprovalRequest {
                    id: contract.id.clone(),
                    step,
                    decision: common::ApprovalDecision::Approve as i32,
                    approval_id: contract
                        .approval
                        .as_ref()
                        .map(|a| a.id.clone())
                        .unwrap_or_default(),
                    ..Default::default()
                })?,
            )
            .await?
            .into_inner()
            .contract
            .ok_or("no contract")?;
        println!("16. step {step} approved by {who}: {}", summary(&contract));
    }
    println!("17. {}", oa_system.await??);

    let contract = contracts_api
        .send_for_signature(amy.call(contracts::SendForSignatureRequest {
            id: contract.id.clone(),
            provider: "esign-cn".into(),
            envelope_id: "envelope-8842".into(),
            ..Default::default()
        })?)
        .await?
        .into_inner()
        .contract
        .ok_or("no contract")?;
    println!(
        "18. sent to esign-cn, envelope envelope-8842: {:?}",
        contract.status()
    );
    let signed = contracts_api
        .record_signature(esign.call(contracts::RecordSignatureRequest {
            id: contract.id.clone(),
            envelope_id: "envelope-8842".into(),
            outcome: contracts::SignatureOutcome::Signed as i32,
            signer: "Li Lei".into(),
            ..Default::default()
        })?)
        .await?
        .into_inner()
        .contract
        .ok_or("no contract")?;
    println!(
        "19. the provider's callback: signed by Li Lei, {:?}, in force: {}",
        signed.status(),
        signed.in_force
    );

    // Delivery learns of the signed contract from ContractSigned and its handover package.
    let mut handovers = subscribe(
        channel.clone(),
        &esign,
        "contracts",
        &["crm.contracts.v1.ContractSigned"],
    )
    .await?;
    let event = next_event(&mut handovers).await?;
    let signed_event: contracts::ContractSigned = event.payload.ok_or("no payload")?.to_msg()?;
    let h = signed_event.handover.ok_or("no handover")?;
    let team = h.team.unwrap_or_default();
    println!(
        "20. ContractSigned (sequence {}): handover of contract {} v{} for opportunity {}",
        event.sequence, h.contract_id, h.contract_version, h.opportunity_id
    );
    println!(
        "    total {}, term {} to {}",
        show(h.total.as_ref()),
        day(h.term.as_ref().and_then(|t| t.start_date.as_ref())),
        day(h.term.as_ref().and_then(|t| t.end_date.as_ref()))
    );
    println!(
        "    scope: {} ({} person-days)",
        h.scope_of_work, h.workload_person_days
    );
    for l in &h.lines {
        println!(
            "    line: {} x{} = {}",
            l.item,
            l.quantity,
            show(l.line_total.as_ref())
        );
    }
    for r in &h.special_requirements {
        println!(
            "    special requirement: {} (within {} days)",
            r.description, r.due_within_days
        );
    }
    for m in &h.milestones {
        println!(
            "    milestone: {} {} due {} ({:?})",
            m.name,
            show(m.amount.as_ref()),
            day(m.due_date.as_ref()),
            m.status()
        );
    }
    for c in &h.key_contacts {
        println!(
            "    key contact: {}, {} ({})",
            c.name, c.phone, c.decision_role
        );
    }
    println!(
        "    team: account manager {}, solution manager {}, delivery manager {}",
        team.account_manager_id, team.solution_manager_id, team.delivery_manager_id
    );

    // Delivery made the project from that event; a PMO board follows the
    // delivery stream.
    let (dan, pmo) = (
        as_("dan", &[Role::Delivery])?,
        as_("pmo-board", &[Role::Integration])?,
    );
    let mut board = subscribe(
        channel.clone(),
        &pmo,
        "delivery",
        &[
            "crm.delivery.v1.DeliveryProjectCreated",
            "crm.delivery.v1.DeliveryRiskRaised",
            "crm.delivery.v1.DeliveryRiskResolved",
            "crm.delivery.v1.MilestoneAccepted",
            "crm.delivery.v1.DeliveryProjectCompleted",
        ],
    )
    .await?;
    let mut delivery_api = DeliveryServiceClient::new(channel);
    let created: delivery::DeliveryProjectCreated = wait_for(
        &mut board,
        "crm.delivery.v1.DeliveryProjectCreated",
        |payload| {
            let e: delivery::DeliveryProjectCreated = payload.to_msg()?;
            let wanted = e
                .project
                .as_ref()
                .is_some_and(|p| p.contract_family_id == signed.id);
            Ok(wanted.then_some(e))
        },
    )
    .await?;
    let project = created.project.ok_or("no project")?;
    println!(
        "21. DeliveryProjectCreated: project {} \"{}\", project manager {}, opportunity {}",
        project.id, project.name, project.project_manager_id, project.opportunity_id
    );
    for m in &created.milestones {
        println!(
            "    milestone: {} due {} ({:?}{})",
            m.name,
            day(m.due_date.as_ref()),
            m.origin(),
            if m.payment_milestone_id.is_empty() {
                String::new()
            } else {
                format!(", invoices payment milestone {}", m.payment_milestone_id)
            }
        );
    }

    // The tenant watches unassigned work three weeks ahead; dora adds dan
    // and a task nobody is assigned to on the 15-day commitment.
    let mut config = delivery_api
        .get_delivery_config(root.call(delivery::GetDeliveryConfigRequest {})?)
        .await?
        .into_inner()
        .config
        .ok_or("no config")?;
    config.unassigned_task_window_days = 21;
    delivery_api
        .update_delivery_config(root.call(delivery::UpdateDeliveryConfigRequest {
            config: Some(config),
        })?)
        .await?;
    println!("22. delivery config: unassigned work is a risk 21 days before its milestone is due");
    delivery_api
        .update_project(dora.call(delivery::UpdateProjectRequest {
            project: Some(delivery::Project {
                id: project.id.clone(),
                member_ids: vec!["dan".into()],
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["member_ids".into()],
            }),
        })?)
        .await?;
    let commitment = created
        .milestones
        .iter()
        .find(|m| m.origin() == delivery::MilestoneOrigin::Commitment)
        .ok_or("no commitment milestone")?;
    let task = delivery_api
        .create_task(dora.call(delivery::CreateTaskRequest {
            request_id: "walkthrough-task".into(),
            project_id: project.id.clone(),
            task: Some(delivery::Task {
                milestone_id: commitment.id.clone(),
                title: "Install the line controllers".into(),
                estimate_hours: 8.0,
                ..Default::default()
            }),
        })?)
        .await?
        .into_inner()
        .task
        .ok_or("no task")?;
    println!(
        "23. dora adds member dan and task \"{}\" ({}h) on \"{}\", unassigned",
        task.title, task.estimate_hours, commitment.name
    );
    let raised: delivery::DeliveryRiskRaised = wait_for(
        &mut board,
        "crm.delivery.v1.DeliveryRiskRaised",
        |payload| {
            let e: delivery::DeliveryRiskRaised = payload.to_msg()?;
            let wanted = e.alert.as_ref().is_some_and(|a| a.task_id == task.id);
            Ok(wanted.then_some(e))
        },
    )
    .await?;
    let alert = raised.alert.ok_or("no alert")?;
    println!(
        "24. DeliveryRiskRaised: {:?} \"{}\", for {}",
        alert.kind(),
        alert.detail,
        alert.responsible_ids.join(", ")
    );
    delivery_api
        .update_task(dora.call(delivery::UpdateTaskRequest {
            task: Some(delivery::Task {
                id: task.id.clone(),
                assignee_id: "dan".into(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["assignee_id".into()],
            }),
        })?)
        .await?;
    let resolved: delivery::DeliveryRiskResolved = wait_for(
        &mut board,
        "crm.delivery.v1.DeliveryRiskResolved",
        |payload| {
            let e: delivery::DeliveryRiskResolved = payload.to_msg()?;
            let wanted = e.alert.as_ref().is_some_and(|a| a.id == alert.id);
            Ok(wanted.then_some(e))
        },
    )
    .await?;
    println!(
        "25. task assigned to dan -> DeliveryRiskResolved: {:?}",
        resolved.alert.ok_or("no alert")?.status()
    );

    // dan does the work and logs it; dora tells the customer where it is.
    delivery_api
        .log_work_hours(dan.call(delivery::LogWorkHoursRequest {
            request_id: "walkthrough-hours".into(),
            log: Some(delivery::WorkHourLog {
                project_id: project.id.clone(),
                task_id: task.id.clone(),
                work_date: Some(today()),
                hours: 6.5,
                note: "controllers installed and wired".into(),
                ..Default::default()
            }),
        })?)
        .await?;
    delivery_api
        .update_task(dan.call(delivery::UpdateTaskRequest {
            task: Some(delivery::Task {
                id: task.id.clone(),
                status: delivery::TaskStatus::Done as i32,
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["status".into()],
            }),
        })?)
        .await?;
    let hours = delivery_api
        .get_hours_summary(dora.call(delivery::GetHoursSummaryRequest {
            project_id: project.id.clone(),
        })?)
        .await?
        .into_inner();
    let total = hours.project.unwrap_or_default();
    println!(
        "26. dan logs 6.5h and finishes the task: planned {}h, actual {}h",
        total.planned_hours, total.actual_hours
    );
    let project = delivery_api
        .update_project(dora.call(delivery::UpdateProjectRequest {
            project: Some(delivery::Project {
                id: project.id.clone(),
                progress_line: "controllers installed, acceptance tests next week".into(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["progress_line".into()],
            }),
        })?)
        .await?
        .into_inner()
        .project
        .ok_or("no project")?;
    println!(
        "27. progress {}% (computed), progress line: \"{}\"",
        project.progress.as_ref().map_or(0, |p| p.percent),
        project.progress_line
    );

    // The customer accepts each milestone; ERP learns what to invoice.
    let milestones = delivery_api
        .list_milestones(dora.call(delivery::ListMilestonesRequest {
            project_id: project.id.clone(),
        })?)
        .await?
        .into_inner()
        .milestones;
    for m in &milestones {
        delivery_api
            .start_milestone(dora.call(delivery::StartMilestoneRequest {
                id: m.id.clone(),
                ..Default::default()
            })?)
            .await?;
        delivery_api
            .mark_milestone_ready(dora.call(delivery::MarkMilestoneReadyRequest {
                id: m.id.clone(),
                ..Default::default()
            })?)
            .await?;
        delivery_api
            .accept_milestone(dora.call(delivery::AcceptMilestoneRequest {
                id: m.id.clone(),
                accepted_by: "Li Lei".into(),
                ..Default::default()
            })?)
            .await?;
        let accepted: delivery::MilestoneAccepted =
            wait_for(&mut board, "crm.delivery.v1.MilestoneAccepted", |payload| {
                let e: delivery::MilestoneAccepted = payload.to_msg()?;
                let wanted = e.milestone.as_ref().is_some_and(|a| a.id == m.id);
                Ok(wanted.then_some(e))
            })
            .await?;
        println!(
            "28. MilestoneAccepted: {}{}",
            m.name,
            if accepted.payment_milestone_id.is_empty() {
                String::new()
            } else {
                format!(
                    " -> ERP invoices payment milestone {}",
                    accepted.payment_milestone_id
                )
            }
        );
    }

    // Go-live: the project completes and the service stage starts.
    let live = delivery_api
        .go_live(dora.call(delivery::GoLiveRequest {
            id: project.id.clone(),
            service_manager_id: "sam".into(),
            service_level: "gold".into(),
            ..Default::default()
        })?)
        .await?
        .into_inner()
        .project
        .ok_or("no project")?;
    let completed: delivery::DeliveryProjectCompleted = wait_for(
        &mut board,
        "crm.delivery.v1.DeliveryProjectCompleted",
        |payload| {
            let e: delivery::DeliveryProjectCompleted = payload.to_msg()?;
            let wanted = e.project.as_ref().is_some_and(|p| p.id == live.id);
            Ok(wanted.then_some(e))
        },
    )
    .await?;
    let team = completed.service_team.unwrap_or_default();
    println!(
        "29. go-live {}: {:?}, progress {}%; DeliveryProjectCompleted: service level {}, service team: service manager {}, delivery manager {}, account manager {}",
        day(live.go_live_date.as_ref()),
        live.status(),
        live.progress.as_ref().map_or(0, |p| p.percent),
        completed.service_level,
        team.service_manager_id,
        team.delivery_manager_id,
        team.account_manager_id
    );
    service_stage(&as_, &completed.account_id).await?;
    Ok(())
}

/// Today in UTC, as a civil date.
fn today() -> Date {
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400);
    // Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's
    // civil_from_days).
    let z = i64::try_from(days).unwrap_or(0) + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    Date {
        year: i32::try_from(year).unwrap_or(1970),
        month: i32::try_from(month).unwrap_or(1),
        day: i32::try_from(day).unwrap_or(1),
    }
}

/// The first payload that `pick` takes among the next events of type
/// `event_type` on the stream, within 30 seconds; the others are passed
/// over.
async fn wait_for<T>(
    stream: &mut tonic::Streaming<events::SubscribeResponse>,
    event_type: &str,
    mut pick: impl FnMut(&prost_types::Any) -> Result<Option<T>>,
) -> Result<T> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let event = tokio::time::timeout_at(deadline, next_event(stream))
            .await
            .map_err(|_| format!("no {event_type} within 30 s"))??;
        if event.r#type != event_type {
            continue;
        }
        if let Some(found) = pick(&event.payload.ok_or("no payload")?)? {
            return Ok(found);
        }
    }
}

/// The service stage of the walkthrough's account: the entitlement from
/// go-live, a ticket dispatched, paused while waiting on the customer,
/// breached and escalated by the tenant's rule, resolved, rated, and the
/// account's health after it. The breach takes the one-minute target of
/// the onboarding entitlement the admin adds (plus the sweep: run the suite
/// with `CRM__TICKETS__SWEEP_INTERVAL=1s` to see it at once).
async fn service_stage(
    as_: &impl Fn(&str, &[Role]) -> Result<Caller>,
    account: &str,
) -> Result<()> {
    let gateway = std::env::var("CRM_GATEWAY").unwrap_or_else(|_| "http://127.0.0.1:50051".into());
    let channel = Channel::from_shared(gateway)?.connect().await?;
    let mut api = TicketServiceClient::new(channel.clone());
    let (root, boss, portal) = (
        as_("root", &[Role::Admin])?,
        as_("boss", &[Role::Manager])?,
        as_("portal", &[Role::Integration])?,
    );
    let (eve, ed, senior) = (
        as_("eve", &[Role::Service])?,
        as_("ed", &[Role::Service])?,
        as_("senior-eng", &[Role::Service])?,
    );
    let account = account.to_owned();
    let mut desk = subscribe(
        channel,
        &as_("noc-board", &[Role::Integration])?,
        "tickets",
        &[
            "crm.tickets.v1.EntitlementCreated",
            "crm.tickets.v1.TicketSlaWarning",
            "crm.tickets.v1.TicketSlaBreached",
        ],
    )
    .await?;

    // Tickets made the entitlement from DeliveryProjectCompleted.
    let made: tickets::EntitlementCreated =
        wait_for(&mut desk, "crm.tickets.v1.EntitlementCreated", |payload| {
            let e: tickets::EntitlementCreated = payload.to_msg()?;
            let wanted = e
                .entitlement
                .as_ref()
                .is_some_and(|x| x.account_id == account);
            Ok(wanted.then_some(e))
        })
        .await?;
    let ent = made.entitlement.ok_or("no entitlement")?;
    let plan = ent.plan.clone().unwrap_or_default();
    println!(
        "30. EntitlementCreated from go-live: service level {} (the tenant's plan of the project's level, else its default), {} to {}, account manager {}, project {}",
        plan.service_level,
        day(ent.valid_from.as_ref()),
        day(ent.valid_to.as_ref()),
        ent.account_manager_id,
        ent.project_id
    );

    // The admin's rules: warn at half a target; a breach escalates to the
    // senior engineer, then to the service manager. Until the contract
    // starts, an onboarding entitlement with a one-minute P1.
    let mut config = api
        .get_tickets_config(root.call(tickets::GetTicketsConfigRequest {})?)
        .await?
        .into_inner()
        .config
        .ok_or("no config")?;
    config.warning_percent = 50;
    config.escalation = Some(tickets::EscalationRule {
        assignee_ids: vec!["senior-eng".into(), "sam".into()],
    });
    api.update_tickets_config(root.call(tickets::UpdateTicketsConfigRequest {
        config: Some(config),
    })?)
    .await?;
    let target = |priority: tickets::Priority, minutes: i32| tickets::SlaTarget {
        priority: priority as i32,
        first_response_minutes: minutes,
        resolution_minutes: minutes,
        basis: tickets::HoursBasis::Calendar as i32,
    };
    let onboarding = api
        .create_entitlement(root.call(tickets::CreateEntitlementRequest {
            request_id: "walkthrough-onboarding".into(),
            entitlement: Some(tickets::Entitlement {
                account_id: account.clone(),
                plan: Some(tickets::SlaPlan {
                    service_level: "onboarding".into(),
                    targets: vec![
                        target(tickets::Priority::P1, 1),
                        target(tickets::Priority::P2, 240),
                        target(tickets::Priority::P3, 480),
                        target(tickets::Priority::P4, 1440),
                    ],
                }),
                valid_from: Some(today()),
                valid_to: Some(until_the_contract(&ent)),
                account_manager_id: ent.account_manager_id.clone(),
                ..Default::default()
            }),
        })?)
        .await?
        .into_inner()
        .entitlement
        .ok_or("no entitlement")?;
    println!(
        "31. config: warn at 50%, escalate to senior-eng then sam; entitlement \"onboarding\" until {}: P1 1 minute to respond and to resolve",
        day(onboarding.valid_to.as_ref())
    );

    // Two engineers on duty with the MES skill; ed already has a question.
    for (id, on_duty) in [("ed", true), ("eve", true), ("senior-eng", false)] {
        api.upsert_engineer(boss.call(tickets::UpsertEngineerRequest {
            engineer: Some(tickets::Engineer {
                id: id.into(),
                skills: vec!["mes".into()],
                on_duty,
                ..Default::default()
            }),
        })?)
        .await?;
    }
    let new_ticket = |rid: &str, priority: tickets::Priority, subject: &str| {
        portal.call(tickets::CreateTicketRequest {
            request_id: rid.into(),
            ticket: Some(tickets::Ticket {
                account_id: account.clone(),
                contact_id: "li-lei".into(),
                channel: tickets::Channel::Portal as i32,
                category: "mes".into(),
                priority: priority as i32,
                subject: subject.into(),
                description: "reported in the customer portal".into(),
                ..Default::default()
            }),
        })
    };
    let question = api
        .create_ticket(new_ticket(
            "walkthrough-q",
            tickets::Priority::P4,
            "How do I export the shift report?",
        )?)
        .await?
        .into_inner()
        .ticket
        .ok_or("no ticket")?;
    let created = api
        .create_ticket(new_ticket(
            "walkthrough-p1",
            tickets::Priority::P1,
            "Line 2 stopped: PLC not responding",
        )?)
        .await?
        .into_inner();
    let t = created.ticket.ok_or("no ticket")?;
    let sla = t.sla.clone().unwrap_or_default();
    println!(
        "32. portal ticket \"{}\" (P1): {:?}, dispatched to {} (the question went to {}: lighter load wins), service level {}, first response due {}, resolution due {}",
        t.subject,
        t.status(),
        t.assignee_id,
        question.assignee_id,
        sla.service_level,
        time(sla.first_response_due_time.as_ref()),
        time(sla.resolution_due_time.as_ref())
    );

    // eve starts (the first response), asks the customer, who answers.
    let assignee = if t.assignee_id == "eve" { &eve } else { &ed };
    api.start_ticket(assignee.call(tickets::StartTicketRequest {
        id: t.id.clone(),
        ..Default::default()
    })?)
    .await?;
    let waiting = api
        .wait_on_customer(assignee.call(tickets::WaitOnCustomerRequest {
            id: t.id.clone(),
            reason: "please send the PLC's error log".into(),
            ..Default::default()
        })?)
        .await?
        .into_inner()
        .ticket
        .ok_or("no ticket")?;
    let paused = waiting.sla.clone().unwrap_or_default();
    println!(
        "33. {} started it and waits on the customer: {:?}, clock paused {}, resolution due {}",
        t.assignee_id,
        waiting.status(),
        paused.paused,
        time(paused.resolution_due_time.as_ref())
    );
    // The customer's reply (the portal's public comment) resumes it.
    let resumed = api
        .add_comment(portal.call(tickets::AddCommentRequest {
            request_id: "walkthrough-reply".into(),
            comment: Some(tickets::Comment {
                ticket_id: t.id.clone(),
                body: "Here is the PLC's error log".into(),
                visibility: tickets::CommentVisibility::Public as i32,
                ..Default::default()
            }),
        })?)
        .await?
        .into_inner()
        .ticket
        .ok_or("no ticket")?;
    let running = resumed.sla.clone().unwrap_or_default();
    println!(
        "34. the customer replies with the log (a portal comment): {:?}, resolution now due {} (later by the pause)",
        resumed.status(),
        time(running.resolution_due_time.as_ref())
    );

    // Nobody resolves it within the minute: warned, then breached and
    // escalated by the tenant's rule.
    let warned: tickets::TicketSlaWarning =
        wait_long(&mut desk, "crm.tickets.v1.TicketSlaWarning", |payload| {
            let e: tickets::TicketSlaWarning = payload.to_msg()?;
            let wanted = e.ticket.as_ref().is_some_and(|x| x.id == t.id);
            Ok(wanted.then_some(e))
        })
        .await?;
    println!("35. TicketSlaWarning: {:?} clock at 50%", warned.clock());
    let breached: tickets::TicketSlaBreached =
        wait_long(&mut desk, "crm.tickets.v1.TicketSlaBreached", |payload| {
            let e: tickets::TicketSlaBreached = payload.to_msg()?;
            let wanted = e.ticket.as_ref().is_some_and(|x| x.id == t.id);
            Ok(wanted.then_some(e))
        })
        .await?;
    println!(
        "36. TicketSlaBreached: {:?} clock, escalation level {}, now with {}",
        breached.clock(),
        breached.escalation_level,
        breached.next_assignee_id
    );

    // The senior engineer resolves it; the customer rates it.
    let resolved = api
        .resolve_ticket(senior.call(tickets::ResolveTicketRequest {
            id: t.id.clone(),
            resolution: "Replaced the PLC's power supply and restarted line 2".into(),
            ..Default::default()
        })?)
        .await?
        .into_inner()
        .ticket
        .ok_or("no ticket")?;
    println!(
        "37. {} resolves it: {:?}, \"{}\"",
        resolved.updater,
        resolved.status(),
        resolved.resolution
    );
    let health = |caller: &Caller| {
        caller.call(tickets::GetAccountHealthRequest {
            account_id: account.clone(),
        })
    };
    let show_health = |h: &tickets::AccountHealth| {
        format!(
            "score {}, mean CSAT {:.2}, NPS {} ({} answers), {} tickets, resolution rate {}%, {} breaches",
            h.score,
            f64::from(h.mean_csat_hundredths) / 100.0,
            h.nps,
            h.nps_answers,
            h.tickets,
            h.resolution_rate_percent,
            h.breaches
        )
    };
    let before = api
        .get_account_health(health(&boss)?)
        .await?
        .into_inner()
        .health
        .ok_or("no health")?;
    println!("38. account health: {}", show_health(&before));
    let rated = api
        .record_csat(portal.call(tickets::RecordCsatRequest {
            request_id: "walkthrough-csat".into(),
            ticket_id: t.id.clone(),
            score: 5,
            comment: "fast and friendly".into(),
        })?)
        .await?
        .into_inner()
        .ticket
        .ok_or("no ticket")?;
    let after_csat = api
        .get_account_health(health(&boss)?)
        .await?
        .into_inner()
        .health
        .ok_or("no health")?;
    println!(
        "39. the customer rates it {}: the score moves from {} to {}: {}",
        rated.csat,
        before.score,
        after_csat.score,
        show_health(&after_csat)
    );
    let after_nps = api
        .record_nps(portal.call(tickets::RecordNpsRequest {
            request_id: "walkthrough-nps".into(),
            account_id: account.clone(),
            contact_id: "li-lei".into(),
            score: 9,
            comment: "good support".into(),
        })?)
        .await?
        .into_inner()
        .health
        .ok_or("no health")?;
    println!(
        "40. Li Lei answers the NPS survey with 9: {}",
        show_health(&after_nps)
    );

    // The next ticket of the kind is offered that resolution.
    let next = api
        .create_ticket(new_ticket(
            "walkthrough-p1b",
            tickets::Priority::P1,
            "Line 3 stopped: PLC not responding",
        )?)
        .await?
        .into_inner();
    for s in &next.similar_solutions {
        println!(
            "41. similar solution #{} for the next ticket: \"{}\" -> \"{}\"",
            s.rank, s.subject, s.resolution
        );
    }
    Ok(())
}

/// [`wait_for`] with room for an SLA of a minute and the sweeper's interval.
async fn wait_long<T>(
    stream: &mut tonic::Streaming<events::SubscribeResponse>,
    event_type: &str,
    mut pick: impl FnMut(&prost_types::Any) -> Result<Option<T>>,
) -> Result<T> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    loop {
        let event = tokio::time::timeout_at(deadline, next_event(stream))
            .await
            .map_err(|_| format!("no {event_type} within 5 minutes"))??;
        if event.r#type != event_type {
            continue;
        }
        if let Some(found) = pick(&event.payload.ok_or("no payload")?)? {
            return Ok(found);
        }
    }
}

/// A time of day in UTC, or "-" when unset.
fn time(t: Option<&prost_types::Timestamp>) -> String {
    t.map_or_else(
        || "-".into(),
        |t| {
            let s = t.seconds.rem_euclid(86_400);
            format!(
                "{:02}:{:02}:{:02}.{:03} UTC",
                s / 3600,
                s / 60 % 60,
                s % 60,
                t.nanos / 1_000_000
            )
        },
    )
}

/// The first day of the go-live entitlement when it starts later (the
/// contract's term), else its last day.
fn until_the_contract(ent: &tickets::Entitlement) -> Date {
    let key = |d: &Date| (d.year, d.month, d.day);
    let now = today();
    match ent.valid_from {
        Some(start) if key(&start) > key(&now) => start,
        _ => ent.valid_to.unwrap_or(now),
    }
}
