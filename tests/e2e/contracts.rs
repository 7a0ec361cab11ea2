//! The contracts service through the gateway (issue 12): a contract from a
//! won opportunity, its approval chain decided by role holders and by the
//! OA system over the event stream, the e-signature callbacks and the
//! handover to delivery, amendments, the lifecycle timers, the receivables
//! ERP works from, and every refusal with its code and the field or reason
//! it names.

use std::time::Duration;

use crm_auth::Role;
use crm_e2e::{scenario::*, *};
use crm_proto::crm::{
    common::v1 as common, contracts::v1 as pb, events::v1 as ev, opportunities::v1 as opps,
};
use prost::Name;
use prost_types::FieldMask;
use tonic::Code;
use tonic_types::StatusExt;

const ACME: &str = "acme";

// ---------------------------------------------------------------------------
// People and a won opportunity (money, dates, `won_deal` and `draft` are
// the shared `crm_e2e::scenario`).
// ---------------------------------------------------------------------------

fn as_(suite: &TestSuite, tenant: &str, who: &str, roles: &[Role]) -> ContractsClient {
    suite.contracts_client(Some(&suite.token(tenant, who, roles)))
}

/// The people of one tenant, each with their contracts client.
struct People {
    /// Sales, on the deals' teams: owns the contracts.
    amy: ContractsClient,
    /// Sales, a colleague of amy's.
    bob: ContractsClient,
    /// A manager.
    boss: ContractsClient,
    /// Another manager.
    max: ContractsClient,
    /// Finance.
    fay: ContractsClient,
    /// Legal.
    lee: ContractsClient,
    /// Delivery, the deals' delivery manager.
    dora: ContractsClient,
    /// The tenant's admin.
    root: ContractsClient,
    /// The integration relaying the e-signature provider's callbacks.
    esign: ContractsClient,
    /// The integration of the OA system.
    oa: ContractsClient,
    /// The integration of ERP.
    erp: ContractsClient,
}

fn people(suite: &TestSuite, tenant: &str) -> People {
    let c = |who: &str, roles: &[Role]| as_(suite, tenant, who, roles);
    People {
        amy: c("amy", &[Role::Sales]),
        bob: c("bob", &[Role::Sales]),
        boss: c("boss", &[Role::Manager]),
        max: c("max", &[Role::Manager]),
        fay: c("fay", &[Role::Finance]),
        lee: c("lee", &[Role::Legal]),
        dora: c("dora", &[Role::Delivery]),
        root: c("root", &[Role::Admin]),
        esign: c("esign", &[Role::Integration]),
        oa: c("oa-system", &[Role::Integration]),
        erp: c("erp", &[Role::Integration]),
    }
}

/// A won deal of acme whose reviewed quote is the total of `lines`, so
/// that a contract with these lines has no scope change.
async fn deal_for(suite: &TestSuite, owner: &str, name: &str, lines: &[pb::LineItem]) -> Deal {
    won_deal(suite, ACME, owner, name, &money_of("CNY", total_of(lines))).await
}

// ---------------------------------------------------------------------------
// Calls.
// ---------------------------------------------------------------------------

async fn create(
    c: &mut ContractsClient,
    request_id: &str,
    contract: pb::Contract,
) -> Result<pb::Contract, tonic::Status> {
    c.create_contract(pb::CreateContractRequest {
        request_id: request_id.into(),
        contract: Some(contract),
    })
    .await
    .map(|r| r.into_inner().contract.unwrap())
}

async fn get(c: &mut ContractsClient, id: &str) -> Result<pb::Contract, tonic::Status> {
    c.get_contract(pb::GetContractRequest { id: id.into() })
        .await
        .map(|r| r.into_inner().contract.unwrap())
}

async fn update(
    c: &mut ContractsClient,
    contract: pb::Contract,
    paths: &[&str],
) -> Result<pb::Contract, tonic::Status> {
    c.update_contract(pb::UpdateContractRequest {
        contract: Some(contract),
        update_mask: Some(FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        }),
    })
    .await
    .map(|r| r.into_inner().contract.unwrap())
}

async fn submit(
    c: &mut ContractsClient,
    id: &str,
    etag: &str,
) -> Result<pb::Contract, tonic::Status> {
    c.submit_contract(pb::SubmitContractRequest {
        id: id.into(),
        etag: etag.into(),
    })
    .await
    .map(|r| r.into_inner().contract.unwrap())
}

fn approval_id(contract: &pb::Contract) -> String {
    contract
        .approval
        .as_ref()
        .map(|a| a.id.clone())
        .unwrap_or_default()
}

fn progress(contract: &pb::Contract) -> common::ApprovalProgress {
    contract
        .approval
        .as_ref()
        .and_then(|a| a.progress.clone())
        .expect("an approval with its progress")
}

fn steps(contract: &pb::Contract) -> Vec<common::ApprovalStep> {
    contract
        .approval
        .as_ref()
        .map(|a| a.steps.clone())
        .unwrap_or_default()
}

async fn decide(
    c: &mut ContractsClient,
    contract: &pb::Contract,
    step: i32,
    decision: common::ApprovalDecision,
    comment: &str,
) -> Result<pb::Contract, tonic::Status> {
    c.decide_contract_approval(pb::DecideContractApprovalRequest {
        id: contract.id.clone(),
        step,
        decision: decision as i32,
        comment: comment.into(),
        approval_id: approval_id(contract),
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner().contract.unwrap())
}

async fn approve(
    c: &mut ContractsClient,
    contract: &pb::Contract,
    step: i32,
) -> Result<pb::Contract, tonic::Status> {
    decide(c, contract, step, common::ApprovalDecision::Approve, "ok").await
}

async fn send(c: &mut ContractsClient, id: &str, envelope: &str) -> pb::Contract {
    c.send_for_signature(pb::SendForSignatureRequest {
        id: id.into(),
        provider: "esign-cn".into(),
        envelope_id: envelope.into(),
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .contract
    .unwrap()
}

fn signed_callback(id: &str, envelope: &str) -> pb::RecordSignatureRequest {
    pb::RecordSignatureRequest {
        id: id.into(),
        envelope_id: envelope.into(),
        outcome: pb::SignatureOutcome::Signed as i32,
        signer: "Li Lei".into(),
        ..Default::default()
    }
}

async fn record_signature(
    c: &mut ContractsClient,
    request: pb::RecordSignatureRequest,
) -> Result<pb::Contract, tonic::Status> {
    c.record_signature(request)
        .await
        .map(|r| r.into_inner().contract.unwrap())
}

/// Creates (as amy) and submits a contract with `lines` on a new deal.
async fn submitted(
    suite: &TestSuite,
    p: &mut People,
    name: &str,
    lines: Vec<pb::LineItem>,
) -> pb::Contract {
    let deal = deal_for(suite, "amy", name, &lines).await;
    let contract = create(
        &mut p.amy,
        &format!("create-{}", name.replace(' ', "-")),
        draft(&deal, lines),
    )
    .await
    .unwrap();
    submit(&mut p.amy, &contract.id, &contract.etag)
        .await
        .unwrap()
}

/// The default chain decided by boss, fay and lee: the contract approved.
async fn approved(suite: &TestSuite, p: &mut People, name: &str) -> pb::Contract {
    approved_with(suite, p, name, |_| {}).await
}

/// [`approved`], with the draft changed by `change` before it is created.
async fn approved_with(
    suite: &TestSuite,
    p: &mut People,
    name: &str,
    change: impl FnOnce(&mut pb::Contract),
) -> pb::Contract {
    let lines = standard_lines();
    let deal = deal_for(suite, "amy", name, &lines).await;
    let mut contract = draft(&deal, lines);
    change(&mut contract);
    let contract = create(
        &mut p.amy,
        &format!("create-{}", name.replace(' ', "-")),
        contract,
    )
    .await
    .unwrap();
    let mut c = submit(&mut p.amy, &contract.id, &contract.etag)
        .await
        .unwrap();
    for (step, who) in [&mut p.boss, &mut p.fay, &mut p.lee]
        .into_iter()
        .enumerate()
    {
        c = approve(who, &c, i32::try_from(step).unwrap() + 1)
            .await
            .unwrap();
    }
    assert_eq!(c.status, pb::ContractStatus::Approved as i32);
    c
}

/// Sent for signature by amy and signed by the customer.
async fn sign(p: &mut People, contract: &pb::Contract, envelope: &str) -> pb::Contract {
    send(&mut p.amy, &contract.id, envelope).await;
    record_signature(&mut p.esign, signed_callback(&contract.id, envelope))
        .await
        .unwrap()
}

/// The admin replaces the tenant's contracts configuration after `change`.
async fn configure(p: &mut People, change: impl FnOnce(&mut pb::ContractsConfig)) {
    let mut config = p
        .root
        .get_contracts_config(pb::GetContractsConfigRequest {})
        .await
        .unwrap()
        .into_inner()
        .config
        .unwrap();
    change(&mut config);
    p.root
        .update_contracts_config(pb::UpdateContractsConfigRequest {
            config: Some(config),
        })
        .await
        .unwrap();
}

async fn list(
    c: &mut ContractsClient,
    request: pb::ListContractsRequest,
) -> Result<pb::ListContractsResponse, tonic::Status> {
    c.list_contracts(request).await.map(|r| r.into_inner())
}

fn ids(contracts: &[pb::Contract]) -> Vec<String> {
    contracts.iter().map(|c| c.id.clone()).collect()
}

async fn inbox(c: &mut ContractsClient) -> Vec<(String, i32)> {
    c.list_approval_inbox(pb::ListApprovalInboxRequest::default())
        .await
        .unwrap()
        .into_inner()
        .items
        .into_iter()
        .map(|item| (item.contract.unwrap().id, item.step.unwrap().number))
        .collect()
}

// ---------------------------------------------------------------------------
// Events.
// ---------------------------------------------------------------------------

type Stream = tonic::Streaming<ev::SubscribeResponse>;

/// The contracts event stream of `tenant` from its start, as an
/// integration.
async fn subscribe(suite: &TestSuite, tenant: &str, who: &str, types: &[String]) -> Stream {
    suite
        .events_client(&suite.token(tenant, who, &[Role::Integration]), "contracts")
        .subscribe(ev::SubscribeRequest {
            after_sequence: 0,
            types: types.to_vec(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

/// The next event of the stream, skipping heartbeats; fails after 30 s.
async fn next_event(stream: &mut Stream) -> ev::Event {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(30), stream.message())
            .await
            .expect("an event within 30s")
            .unwrap()
            .expect("the stream stays open");
        if let Some(ev::subscribe_response::Kind::Event(e)) = next.kind {
            return e;
        }
    }
}

/// The event of type `M` about `subject`: from `seen` if it was read
/// already, else read from the stream (keeping everything read in `seen`).
async fn seen_or_next<M: prost::Message + Name + Default>(
    stream: &mut Stream,
    seen: &mut Vec<ev::Event>,
    subject: &str,
) -> M {
    let wanted = |e: &ev::Event| e.r#type == M::full_name() && e.subject_id == subject;
    let event = match seen.iter().find(|e| wanted(e)) {
        Some(e) => e.clone(),
        None => loop {
            let e = next_event(stream).await;
            seen.push(e.clone());
            if wanted(&e) {
                break e;
            }
        },
    };
    event.payload.as_ref().expect("a payload").to_msg().unwrap()
}

/// How many events of type `M` about `subject` are in `seen`.
fn count<M: Name>(seen: &[ev::Event], subject: &str) -> usize {
    seen.iter()
        .filter(|e| e.r#type == M::full_name() && e.subject_id == subject)
        .count()
}

/// Reads the stream up to the first event of type `M` about `subject`,
/// and returns it with every event read before it.
async fn until<M: prost::Message + Name + Default>(
    stream: &mut Stream,
    subject: &str,
) -> (M, Vec<ev::Event>) {
    let mut before = Vec::new();
    loop {
        let e = next_event(stream).await;
        if e.r#type == M::full_name() && e.subject_id == subject {
            let payload = e.payload.as_ref().expect("a payload").to_msg().unwrap();
            return (payload, before);
        }
        before.push(e);
    }
}

// ---------------------------------------------------------------------------
// The happy path.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_won_opportunity_becomes_a_signed_contract_with_a_handover_package() {
    let suite = start().await;
    let mut p = people(&suite, ACME);
    let mut stream = subscribe(&suite, ACME, "delivery-system", &[]).await;
    let lines = standard_lines();
    let deal = deal_for(&suite, "amy", "ACME Robotics", &lines).await;

    // The service prices the lines itself; what the client sends is ignored.
    let mut sent = lines.clone();
    sent[0].line_total = Some(money("CNY", 1, 0));
    let created = create(&mut p.amy, "happy-1", draft(&deal, sent))
        .await
        .unwrap();
    assert_eq!(created.status, pb::ContractStatus::Draft as i32);
    assert_eq!((created.version, created.owner_id.as_str()), (1, "amy"));
    assert_eq!(created.contract_family_id, created.id);
    for (got, want) in created.lines.iter().zip(&lines) {
        assert_eq!(
            nanos_of(got.line_total.as_ref()),
            line_total(want),
            "{}",
            want.item
        );
    }
    // The discounted implementation line leaves half a nano: rounded up.
    assert_eq!(
        created.lines[1].line_total,
        Some(money("CNY", 612_000, 5)),
        "680,000.000000005 x 90% = 612,000.0000000045, rounded half away from zero"
    );
    let total = total_of(&lines);
    assert_eq!(nanos_of(created.total.as_ref()), total);
    assert_eq!(created.total.as_ref().unwrap().currency_code, "CNY");
    // Milestones: 30% rounded down to the nano, the last one the remainder.
    let amounts: Vec<i128> = created
        .milestones
        .iter()
        .map(|m| nanos_of(m.amount.as_ref()))
        .collect();
    assert_eq!(amounts, [total * 30 / 100, total - total * 30 / 100]);
    assert!(
        created
            .milestones
            .iter()
            .all(|m| m.status == pb::MilestoneStatus::Planned as i32)
    );
    // What delivery will need was taken from the opportunity.
    assert_eq!(created.account_id, deal.opportunity.account_id);
    assert_eq!(
        (created.scope_of_work.as_str(), created.workload_person_days),
        (SOLUTION, WORKLOAD)
    );
    let team = created.team.clone().unwrap();
    assert_eq!(
        (
            team.account_manager_id.as_str(),
            team.solution_manager_id.as_str(),
            team.delivery_manager_id.as_str()
        ),
        ("amy", "sol", "dora")
    );
    assert_eq!(created.key_contacts.len(), 1);
    assert_eq!(
        (
            created.key_contacts[0].contact_id.as_str(),
            created.key_contacts[0].name.as_str(),
            created.key_contacts[0].decision_role.as_str()
        ),
        (
            deal.contact.id.as_str(),
            "Li Lei",
            "DECISION_ROLE_DECISION_MAKER"
        )
    );
    assert!(created.reviewed_scope.as_ref().unwrap().reviewed);
    assert!(
        created.scope_changes.is_empty(),
        "{:?}",
        created.scope_changes
    );

    // Submitted: manager, finance and legal, in order.
    let mut c = submit(&mut p.amy, &created.id, &created.etag)
        .await
        .unwrap();
    assert_eq!(c.status, pb::ContractStatus::InApproval as i32);
    let chain: Vec<(String, i32)> = steps(&c).into_iter().map(|s| (s.name, s.role)).collect();
    assert_eq!(
        chain,
        [
            ("sales_manager".to_owned(), common::Role::Manager as i32),
            ("finance".to_owned(), common::Role::Finance as i32),
            ("legal".to_owned(), common::Role::Legal as i32),
        ]
    );
    assert_eq!(c.approval.as_ref().unwrap().requester_id, "amy");
    for (step, who, name) in [
        (1, &mut p.boss, "boss"),
        (2, &mut p.fay, "fay"),
        (3, &mut p.lee, "lee"),
    ] {
        c = approve(who, &c, step).await.unwrap();
        let decided = &steps(&c)[usize::try_from(step - 1).unwrap()];
        assert_eq!(
            (decided.state, decided.decider_id.as_str()),
            (common::ApprovalStepState::Approved as i32, name)
        );
    }
    assert_eq!(c.status, pb::ContractStatus::Approved as i32);

    // Sent for signature, signed by the customer through the provider's callback.
    let sent = send(&mut p.amy, &c.id, "env-1").await;
    assert_eq!(sent.status, pb::ContractStatus::SentForSignature as i32);
    let signature = sent.signature.clone().unwrap();
    assert_eq!(
        (
            signature.provider.as_str(),
            signature.envelope_id.as_str(),
            signature.sender_id.as_str()
        ),
        ("esign-cn", "env-1", "amy")
    );
    let signed = record_signature(&mut p.esign, signed_callback(&c.id, "env-1"))
        .await
        .unwrap();
    assert_eq!(signed.status, pb::ContractStatus::Signed as i32);
    assert!(signed.in_force);
    assert_eq!(
        signed.signature.as_ref().unwrap().outcome,
        pb::SignatureOutcome::Signed as i32
    );
    assert!(
        signed
            .milestones
            .iter()
            .all(|m| m.status == pb::MilestoneStatus::Due as i32),
        "signing makes the milestones due"
    );
    // The provider retries its callback: the contract is returned unchanged.
    let again = record_signature(&mut p.esign, signed_callback(&c.id, "env-1"))
        .await
        .unwrap();
    assert_eq!(again.etag, signed.etag);

    // ContractSigned hands the contract over to delivery.
    let (event, _) = until::<pb::ContractSigned>(&mut stream, &c.id).await;
    let handover = event.handover.unwrap();
    assert_eq!(
        (
            handover.contract_id.as_str(),
            handover.contract_version,
            handover.contract_family_id.as_str(),
            handover.opportunity_id.as_str(),
            handover.account_id.as_str()
        ),
        (
            c.id.as_str(),
            1,
            c.id.as_str(),
            deal.opportunity.id.as_str(),
            deal.opportunity.account_id.as_str()
        )
    );
    assert_eq!(handover.lines, signed.lines);
    assert_eq!(nanos_of(handover.total.as_ref()), total);
    assert_eq!(handover.term, signed.term);
    assert_eq!(
        (
            handover.scope_of_work.as_str(),
            handover.workload_person_days
        ),
        (SOLUTION, WORKLOAD)
    );
    assert_eq!(handover.special_requirements, [deploy_within_15_days()]);
    assert_eq!(handover.milestones, signed.milestones);
    assert_eq!(handover.key_contacts, signed.key_contacts);
    assert_eq!(handover.team.as_ref().unwrap().delivery_manager_id, "dora");
    assert!(handover.sign_time.is_some());
    assert!(event.superseded_contract_id.is_empty());

    // Every transition is in the audit trail, newest first.
    let entries = p
        .boss
        .list_audit_entries(pb::ListAuditEntriesRequest {
            subject_id: c.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let mut trail: Vec<(String, String)> =
        entries.into_iter().map(|e| (e.action, e.actor)).collect();
    trail.reverse();
    let trail: Vec<(&str, &str)> = trail
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    assert_eq!(
        trail,
        [
            ("contract.created", "amy"),
            ("contract.submitted", "amy"),
            ("contract.approval_decided", "boss"),
            ("contract.approval_decided", "fay"),
            ("contract.approval_decided", "lee"),
            ("contract.approved", "lee"),
            ("contract.sent_for_signature", "amy"),
            ("contract.signed", "esign"),
        ]
    );
}

// ---------------------------------------------------------------------------
// The OA system, progress and the inbox, tenant rules.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_oa_system_decides_a_step_it_learns_of_on_the_event_stream() {
    let suite = start().await;
    let mut p = people(&suite, ACME);
    configure(&mut p, |config| {
        config.oa_subjects = vec!["oa-system".into()];
        config.approvers = vec![common::Approver {
            person_id: "wang.legal".into(),
            roles: vec![common::Role::Legal as i32],
        }];
    })
    .await;
    let requested = pb::ContractApprovalRequested::full_name();
    let mut oa_stream = subscribe(&suite, ACME, "oa-system", &[requested]).await;
    let c = submitted(&suite, &mut p, "Initech", standard_lines()).await;

    // The OA system hears of each pending step; the manager and finance decide theirs themselves.
    let (first, _) = until::<pb::ContractApprovalRequested>(&mut oa_stream, &c.id).await;
    let step = first.step.unwrap();
    assert_eq!(
        (
            first.contract_id.as_str(),
            first.approval_id.as_str(),
            step.number,
            step.name.as_str(),
            step.role
        ),
        (
            c.id.as_str(),
            approval_id(&c).as_str(),
            1,
            "sales_manager",
            common::Role::Manager as i32
        )
    );
    assert!(step.expected_time.is_some());
    let c = approve(&mut p.boss, &c, 1).await.unwrap();
    approve(&mut p.fay, &c, 2).await.unwrap();

    // Legal's step: the OA system answers for wang.legal, a person the tenant lists with legal.
    let legal = loop {
        let (event, _) = until::<pb::ContractApprovalRequested>(&mut oa_stream, &c.id).await;
        if event.step.as_ref().unwrap().role == common::Role::Legal as i32 {
            break event;
        }
    };
    let step = legal.step.unwrap();
    assert_eq!((step.number, step.name.as_str()), (3, "legal"));
    let request = |on_behalf_of: &str| pb::DecideContractApprovalRequest {
        id: legal.contract_id.clone(),
        step: step.number,
        decision: common::ApprovalDecision::Approve as i32,
        comment: "approved in OA workflow 4711".into(),
        on_behalf_of: on_behalf_of.into(),
        approval_id: legal.approval_id.clone(),
        ..Default::default()
    };
    // Not for someone the tenant does not list with the step's role, nor without naming anyone.
    assert_eq!(
        refused(p.oa.decide_contract_approval(request("fay")).await),
        (Code::PermissionDenied, "ON_BEHALF_OF_NOT_APPROVER".into())
    );
    assert_eq!(
        invalid(p.oa.decide_contract_approval(request("")).await),
        (Code::InvalidArgument, vec!["on_behalf_of".to_owned()])
    );
    // Another integration is not the tenant's OA system.
    assert_eq!(
        refused(p.erp.decide_contract_approval(request("wang.legal")).await),
        (Code::PermissionDenied, "INTEGRATION_NOT_ALLOWED".into())
    );
    let decided =
        p.oa.decide_contract_approval(request("wang.legal"))
            .await
            .unwrap()
            .into_inner()
            .contract
            .unwrap();
    assert_eq!(decided.status, pb::ContractStatus::Approved as i32);
    let last = &steps(&decided)[2];
    assert_eq!(
        (
            last.decider_id.as_str(),
            last.on_behalf_of.as_str(),
            last.comment.as_str()
        ),
        ("oa-system", "wang.legal", "approved in OA workflow 4711")
    );
}

#[tokio::test]
async fn progress_shows_the_step_and_the_inbox_lists_what_awaits_the_callers_roles() {
    let suite = start().await;
    let mut p = people(&suite, ACME);
    let c = submitted(&suite, &mut p, "Umbrella", standard_lines()).await;

    let first = progress(&c);
    assert_eq!(
        (
            first.current_step,
            first.total_steps,
            first.current_role,
            first.current_step_name.as_str()
        ),
        (1, 3, common::Role::Manager as i32, "sales_manager")
    );
    assert!(
        first.summary.contains("step 1 of 3") && first.summary.contains("expected by"),
        "summary: {}",
        first.summary
    );
    let steps_now = steps(&c);
    let submit_time = c.approval.as_ref().unwrap().submit_time.unwrap();
    let expected = first.expected_time.expect("an expected time");
    assert!(expected.seconds > submit_time.seconds, "{expected:?}");
    assert_eq!(steps_now[0].expected_time, Some(expected));
    assert_eq!(
        steps_now.iter().map(|s| s.state).collect::<Vec<_>>(),
        [
            common::ApprovalStepState::Pending as i32,
            common::ApprovalStepState::Waiting as i32,
            common::ApprovalStepState::Waiting as i32,
        ]
    );
    assert!(steps_now[1].start_time.is_none() && steps_now[1].expected_time.is_none());
    // The progress is what anyone who sees the contract reads.
    assert_eq!(progress(&get(&mut p.amy, &c.id).await.unwrap()), first);

    // Manager step pending: the managers' inbox has it, finance's and legal's not.
    assert_eq!(inbox(&mut p.boss).await, [(c.id.clone(), 1)]);
    assert!(inbox(&mut p.fay).await.is_empty());
    assert!(inbox(&mut p.lee).await.is_empty());
    assert_eq!(
        inbox(&mut p.oa).await,
        [(c.id.clone(), 1)],
        "integrations see every pending step"
    );

    let c = approve(&mut p.boss, &c, 1).await.unwrap();
    let second = progress(&c);
    assert_eq!(
        (second.current_step, second.total_steps, second.current_role),
        (2, 3, common::Role::Finance as i32)
    );
    assert!(second.summary.contains("step 2 of 3"), "{}", second.summary);
    assert!(inbox(&mut p.boss).await.is_empty());
    assert_eq!(inbox(&mut p.fay).await, [(c.id.clone(), 2)]);
    assert!(inbox(&mut p.lee).await.is_empty());
    // Finance now sees the contract its step awaits; legal not yet.
    assert_eq!(get(&mut p.fay, &c.id).await.unwrap().id, c.id);
    assert_eq!(code(get(&mut p.lee, &c.id).await), Code::NotFound);
    let c = approve(&mut p.fay, &c, 2).await.unwrap();
    assert_eq!(inbox(&mut p.lee).await, [(c.id.clone(), 3)]);
    assert_eq!(get(&mut p.lee, &c.id).await.unwrap().id, c.id);
    // fay decided a step and still sees it; another finance user does not.
    assert_eq!(get(&mut p.fay, &c.id).await.unwrap().id, c.id);
    let mut fiona = as_(&suite, ACME, "fiona", &[Role::Finance]);
    assert_eq!(code(get(&mut fiona, &c.id).await), Code::NotFound);
    assert!(inbox(&mut fiona).await.is_empty());
}

#[tokio::test]
async fn tenant_rules_add_a_manager_step_for_a_large_total_and_a_finance_step_for_a_deep_discount()
{
    let suite = start().await;
    let mut p = people(&suite, ACME);
    // Only an admin sets the rules, and a bad rule is refused naming its field.
    let mut config = p
        .root
        .get_contracts_config(pb::GetContractsConfigRequest {})
        .await
        .unwrap()
        .into_inner()
        .config
        .unwrap();
    config.large_total_thresholds = vec![money("CNY", 1_000_000, 0)];
    config.deep_discount_percent = 20;
    let update = |config: pb::ContractsConfig| pb::UpdateContractsConfigRequest {
        config: Some(config),
    };
    assert_eq!(
        code(p.boss.update_contracts_config(update(config.clone())).await),
        Code::PermissionDenied
    );
    let mut bad = config.clone();
    bad.approval_chain = vec![common::Role::Sales as i32];
    bad.step_expected_working_days = 31;
    assert_eq!(
        invalid(p.root.update_contracts_config(update(bad)).await),
        (
            Code::InvalidArgument,
            vec![
                "config.approval_chain[0]".to_owned(),
                "config.step_expected_working_days".to_owned()
            ]
        )
    );
    p.root
        .update_contracts_config(update(config))
        .await
        .unwrap();
    let chain = |c: &pb::Contract| -> Vec<(String, i32)> {
        steps(c).into_iter().map(|s| (s.name, s.role)).collect()
    };
    let default_chain = || {
        vec![
            ("sales_manager".to_owned(), common::Role::Manager as i32),
            ("finance".to_owned(), common::Role::Finance as i32),
            ("legal".to_owned(), common::Role::Legal as i32),
        ]
    };

    // Under the threshold, discounts at most 20%: the default chain.
    let small = vec![line("Licence", 1, money("CNY", 500_000, 0), 20)];
    let plain = submitted(&suite, &mut p, "Plain", small).await;
    assert_eq!(chain(&plain), default_chain());

    // The threshold reached: a second manager step.
    let large = vec![line("Licence", 2, money("CNY", 500_000, 0), 0)];
    assert_eq!(total_of(&large), 1_000_000 * NANOS);
    let big = submitted(&suite, &mut p, "Big", large).await;
    let mut want = default_chain();
    want.push(("large_total_manager".into(), common::Role::Manager as i32));
    assert_eq!(chain(&big), want);
    assert_eq!(progress(&big).total_steps, 4);

    // A line discounted by more than 20%: another finance step.
    let deep = vec![
        line("Licence", 1, money("CNY", 100_000, 0), 0),
        line("Services", 1, money("CNY", 100_000, 0), 21),
    ];
    let discounted = submitted(&suite, &mut p, "Discounted", deep).await;
    let mut want = default_chain();
    want.push(("deep_discount_finance".into(), common::Role::Finance as i32));
    assert_eq!(chain(&discounted), want);

    // The second manager step is decided by another manager than the first.
    let mut c = big;
    c = approve(&mut p.boss, &c, 1).await.unwrap();
    c = approve(&mut p.fay, &c, 2).await.unwrap();
    c = approve(&mut p.lee, &c, 3).await.unwrap();
    assert_eq!(
        refused(approve(&mut p.boss, &c, 4).await),
        (Code::PermissionDenied, "REPEAT_DECIDER".into())
    );
    let c = approve(&mut p.max, &c, 4).await.unwrap();
    assert_eq!(c.status, pb::ContractStatus::Approved as i32);
}

// ---------------------------------------------------------------------------
// Bad input.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn bad_input_is_refused_naming_the_field_and_nothing_is_stored() {
    let suite = start().await;
    let mut p = people(&suite, ACME);
    let lines = standard_lines();
    let deal = deal_for(&suite, "amy", "Hooli", &lines).await;
    let with = |change: &dyn Fn(&mut pb::Contract)| {
        let mut c = draft(&deal, lines.clone());
        change(&mut c);
        c
    };

    // Milestones that do not add up to the total.
    let err = create(
        &mut p.amy,
        "bad-1",
        with(&|c| {
            c.milestones = vec![
                percent("signing", today_plus(30), 30),
                percent("acceptance", today_plus(90), 60),
            ];
        }),
    )
    .await
    .unwrap_err();
    assert_eq!(
        (err.code(), violated_fields(&err)),
        (
            Code::InvalidArgument,
            vec!["contract.milestones".to_owned()]
        )
    );
    let err = create(
        &mut p.amy,
        "bad-2",
        with(&|c| {
            c.milestones = vec![fixed("all", today_plus(30), money("CNY", 1, 0))];
        }),
    )
    .await
    .unwrap_err();
    assert_eq!(violated_fields(&err), ["contract.milestones"]);

    // Negative quantity, zero quantity, negative price, a discount outside 0-100.
    let bad_line = |change: &dyn Fn(&mut pb::LineItem)| {
        with(&|c| {
            change(&mut c.lines[0]);
            c.milestones.clear();
        })
    };
    for (i, (contract, field)) in [
        (bad_line(&|l| l.quantity = -3), "contract.lines[0].quantity"),
        (bad_line(&|l| l.quantity = 0), "contract.lines[0].quantity"),
        (
            bad_line(&|l| l.unit_price = Some(money("CNY", -5, 0))),
            "contract.lines[0].unit_price",
        ),
        (
            bad_line(&|l| l.discount_percent = 101),
            "contract.lines[0].discount_percent",
        ),
        (
            bad_line(&|l| l.discount_percent = -1),
            "contract.lines[0].discount_percent",
        ),
    ]
    .into_iter()
    .enumerate()
    {
        assert_eq!(
            invalid(create(&mut p.amy, &format!("bad-line-{i}"), contract).await),
            (Code::InvalidArgument, vec![field.to_owned()]),
            "{field}"
        );
    }

    // A line in another currency than the contract's.
    let mixed = with(&|c| {
        c.lines[1].unit_price = Some(money("USD", 95_000, 0));
        c.milestones.clear();
    });
    assert_eq!(
        invalid(create(&mut p.amy, "bad-currency", mixed).await),
        (
            Code::InvalidArgument,
            vec!["contract.lines[1].unit_price.currency_code".to_owned()]
        )
    );

    // A term that ends before it starts.
    let backwards = with(&|c| c.term = Some(term(today_plus(30), today_plus(10))));
    assert_eq!(
        invalid(create(&mut p.amy, "bad-term", backwards).await),
        (
            Code::InvalidArgument,
            vec!["contract.term.end_date".to_owned()]
        )
    );

    // Nothing of it was stored.
    let all = list(&mut p.boss, pb::ListContractsRequest::default())
        .await
        .unwrap();
    assert!(all.contracts.is_empty(), "{:?}", ids(&all.contracts));
    // The same draft, valid, is accepted; an edit is checked as a creation is.
    let good = create(&mut p.amy, "good", draft(&deal, lines))
        .await
        .unwrap();
    let mut bad_lines = good.lines.clone();
    bad_lines[0].quantity = -1;
    let edit = pb::Contract {
        id: good.id.clone(),
        lines: bad_lines,
        ..Default::default()
    };
    assert_eq!(
        invalid(update(&mut p.amy, edit, &["lines"]).await),
        (
            Code::InvalidArgument,
            vec!["contract.lines[0].quantity".to_owned()]
        )
    );
    // Output-only fields are not in the update mask's reach.
    let edit = pb::Contract {
        id: good.id.clone(),
        status: pb::ContractStatus::Signed as i32,
        ..Default::default()
    };
    assert_eq!(
        invalid(update(&mut p.amy, edit, &["status"]).await),
        (Code::InvalidArgument, vec!["update_mask".to_owned()])
    );
    let now = get(&mut p.amy, &good.id).await.unwrap();
    assert_eq!(
        (now.etag, now.status),
        (good.etag, pb::ContractStatus::Draft as i32)
    );
}

#[tokio::test]
async fn a_contract_needs_a_won_opportunity_of_the_callers_tenant() {
    let suite = start().await;
    let mut p = people(&suite, ACME);
    // An opportunity still in validation.
    let mut sales = suite.opportunities_client(Some(&suite.token(ACME, "amy", &[Role::Sales])));
    let account = sales
        .create_account(opps::CreateAccountRequest {
            account: Some(opps::Account {
                name: "Open Deal Ltd".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    let open = sales
        .create_opportunity(opps::CreateOpportunityRequest {
            opportunity: Some(opps::Opportunity {
                account_id: account.id,
                name: "Open deal".into(),
                amount: cny(100_000),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .opportunity
        .unwrap();
    let lines = vec![line("Licence", 1, money("CNY", 100_000, 0), 0)];
    let contract = pb::Contract {
        opportunity_id: open.id.clone(),
        currency_code: "CNY".into(),
        lines: lines.clone(),
        ..Default::default()
    };
    assert_eq!(
        refused(create(&mut p.amy, "not-won", contract).await),
        (Code::FailedPrecondition, "OPPORTUNITY_NOT_WON".into())
    );

    // Another tenant's won opportunity is not found, for its sales and its managers alike.
    let globex = won_deal(
        &suite,
        "globex",
        "gina",
        "Globex",
        &money("CNY", 100_000, 0),
    )
    .await;
    let theirs = pb::Contract {
        opportunity_id: globex.opportunity.id.clone(),
        currency_code: "CNY".into(),
        lines,
        ..Default::default()
    };
    assert_eq!(
        code(create(&mut p.amy, "theirs-1", theirs.clone()).await),
        Code::NotFound
    );
    assert_eq!(
        code(create(&mut p.boss, "theirs-2", theirs.clone()).await),
        Code::NotFound
    );
    assert!(
        list(&mut p.boss, pb::ListContractsRequest::default())
            .await
            .unwrap()
            .contracts
            .is_empty()
    );
    // Its own tenant's sales makes it.
    let mut gina = as_(&suite, "globex", "gina", &[Role::Sales]);
    create(&mut gina, "theirs-1", theirs).await.unwrap();
}

// ---------------------------------------------------------------------------
// Approval rules.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_contract_in_approval_is_not_edited() {
    let suite = start().await;
    let mut p = people(&suite, ACME);
    let c = submitted(&suite, &mut p, "Frozen", standard_lines()).await;
    let edit = pb::Contract {
        id: c.id.clone(),
        title: "A better title".into(),
        ..Default::default()
    };
    assert_eq!(
        refused(update(&mut p.amy, edit.clone(), &["title"]).await),
        (Code::FailedPrecondition, "NOT_DRAFT".into())
    );
    assert_eq!(
        refused(update(&mut p.boss, edit, &["title"]).await),
        (Code::FailedPrecondition, "NOT_DRAFT".into())
    );
    assert_eq!(
        refused(submit(&mut p.amy, &c.id, "").await),
        (Code::FailedPrecondition, "NOT_DRAFT".into())
    );
    assert_eq!(get(&mut p.amy, &c.id).await.unwrap().title, c.title);
}

#[tokio::test]
async fn steps_are_decided_in_order_and_once() {
    let suite = start().await;
    let mut p = people(&suite, ACME);
    let c = submitted(&suite, &mut p, "Ordered", standard_lines()).await;
    let before_step_1 = c.etag.clone();
    // Finance cannot decide step 2 before the manager's step 1.
    assert_eq!(
        refused(approve(&mut p.fay, &c, 2).await),
        (Code::FailedPrecondition, "STEP_NOT_CURRENT".into())
    );
    let c = approve(&mut p.boss, &c, 1).await.unwrap();
    // Step 1 is decided: deciding it again is refused, whoever asks.
    assert_eq!(
        refused(approve(&mut p.max, &c, 1).await),
        (Code::FailedPrecondition, "STEP_NOT_CURRENT".into())
    );
    assert_eq!(
        refused(
            decide(
                &mut p.boss,
                &c,
                1,
                common::ApprovalDecision::Reject,
                "changed my mind"
            )
            .await
        ),
        (Code::FailedPrecondition, "STEP_NOT_CURRENT".into())
    );
    let now = get(&mut p.boss, &c.id).await.unwrap();
    assert_eq!(
        steps(&now)[0].decision,
        common::ApprovalDecision::Approve as i32
    );
    assert_eq!(progress(&now).current_step, 2);
    // A decision on a stale etag is refused.
    let stale = p
        .fay
        .decide_contract_approval(pb::DecideContractApprovalRequest {
            id: c.id.clone(),
            etag: before_step_1,
            step: 2,
            decision: common::ApprovalDecision::Approve as i32,
            ..Default::default()
        })
        .await;
    assert_eq!(refused(stale), (Code::Aborted, "ETAG_MISMATCH".into()));
    assert_eq!(
        progress(&get(&mut p.boss, &c.id).await.unwrap()).current_step,
        2
    );
    // Without a decision, and with a step out of range: INVALID_ARGUMENT.
    assert_eq!(
        invalid(
            p.fay
                .decide_contract_approval(pb::DecideContractApprovalRequest {
                    id: c.id.clone(),
                    step: 2,
                    ..Default::default()
                })
                .await
        ),
        (Code::InvalidArgument, vec!["decision".to_owned()])
    );
}

#[tokio::test]
async fn nobody_decides_a_step_of_their_own_submission() {
    let suite = start().await;
    let mut p = people(&suite, ACME);
    let lines = standard_lines();
    let deal = deal_for(&suite, "amy", "Self Service", &lines).await;
    let c = create(&mut p.amy, "own", draft(&deal, lines))
        .await
        .unwrap();
    // A manager submits amy's contract: the manager is the requester.
    let c = submit(&mut p.boss, &c.id, "").await.unwrap();
    assert_eq!(c.approval.as_ref().unwrap().requester_id, "boss");
    assert_eq!(
        refused(approve(&mut p.boss, &c, 1).await),
        (Code::PermissionDenied, "SELF_APPROVAL".into())
    );
    // Nor through the OA system on their behalf.
    configure(&mut p, |config| {
        config.oa_subjects = vec!["oa-system".into()];
        config.approvers = vec![common::Approver {
            person_id: "boss".into(),
            roles: vec![common::Role::Manager as i32],
        }];
    })
    .await;
    let on_behalf =
        p.oa.decide_contract_approval(pb::DecideContractApprovalRequest {
            id: c.id.clone(),
            step: 1,
            decision: common::ApprovalDecision::Approve as i32,
            on_behalf_of: "boss".into(),
            ..Default::default()
        })
        .await;
    assert_eq!(
        refused(on_behalf),
        (Code::PermissionDenied, "SELF_APPROVAL".into())
    );
    // Another manager may.
    let c = approve(&mut p.max, &c, 1).await.unwrap();
    assert_eq!(steps(&c)[0].decider_id, "max");
}

#[tokio::test]
async fn a_finance_user_cannot_decide_the_legal_step() {
    let suite = start().await;
    let mut p = people(&suite, ACME);
    let c = submitted(&suite, &mut p, "Roles", standard_lines()).await;
    let c = approve(&mut p.boss, &c, 1).await.unwrap();
    let c = approve(&mut p.fay, &c, 2).await.unwrap();
    let mut fiona = as_(&suite, ACME, "fiona", &[Role::Finance]);
    assert_eq!(
        refused(approve(&mut fiona, &c, 3).await),
        (Code::PermissionDenied, "APPROVER_ROLE_REQUIRED".into())
    );
    // Sales may not call the method at all.
    assert_eq!(
        code(approve(&mut p.amy, &c, 3).await),
        Code::PermissionDenied
    );
    let now = get(&mut p.boss, &c.id).await.unwrap();
    assert_eq!(
        (now.status, steps(&now)[2].state),
        (
            pb::ContractStatus::InApproval as i32,
            common::ApprovalStepState::Pending as i32
        )
    );
    approve(&mut p.lee, &c, 3).await.unwrap();
}

#[tokio::test]
async fn a_rejection_returns_the_contract_to_draft_to_be_revised_and_resubmitted() {
    let suite = start().await;
    let mut p = people(&suite, ACME);
    let mut stream = subscribe(
        &suite,
        ACME,
        "oa-system",
        &[pb::ContractReturnedToDraft::full_name()],
    )
    .await;
    let c = submitted(&suite, &mut p, "Rejected", standard_lines()).await;
    let c = approve(&mut p.boss, &c, 1).await.unwrap();
    let first_round = approval_id(&c);
    let c = decide(
        &mut p.fay,
        &c,
        2,
        common::ApprovalDecision::Reject,
        "payment terms too long",
    )
    .await
    .unwrap();
    assert_eq!(c.status, pb::ContractStatus::Draft as i32);
    let states: Vec<i32> = steps(&c).iter().map(|s| s.state).collect();
    assert_eq!(
        states,
        [
            common::ApprovalStepState::Approved as i32,
            common::ApprovalStepState::Rejected as i32,
            common::ApprovalStepState::Skipped as i32,
        ]
    );
    let (event, _) = until::<pb::ContractReturnedToDraft>(&mut stream, &c.id).await;
    assert_eq!(event.step.unwrap().comment, "payment terms too long");
    // Legal's step was never reached; nothing is pending.
    assert!(inbox(&mut p.lee).await.is_empty());
    assert_eq!(
        refused(approve(&mut p.lee, &c, 3).await),
        (Code::FailedPrecondition, "NOT_IN_APPROVAL".into())
    );

    // The owner revises the draft and submits it again: a new round from step 1.
    let revised = update(
        &mut p.amy,
        pb::Contract {
            id: c.id.clone(),
            etag: c.etag.clone(),
            milestones: vec![
                percent("signing", today_plus(30), 50),
                percent("acceptance", today_plus(60), 50),
            ],
            ..Default::default()
        },
        &["milestones"],
    )
    .await
    .unwrap();
    assert_eq!(revised.status, pb::ContractStatus::Draft as i32);
    let again = submit(&mut p.amy, &c.id, &revised.etag).await.unwrap();
    assert_ne!(approval_id(&again), first_round);
    assert_eq!(progress(&again).current_step, 1);
    // A decision meant for the first round does not land on the second.
    assert_eq!(
        refused(approve(&mut p.boss, &c, 1).await),
        (Code::FailedPrecondition, "STALE_APPROVAL".into())
    );
    approve(&mut p.boss, &again, 1).await.unwrap();
}

#[tokio::test]
async fn two_concurrent_decisions_on_one_step_decide_it_once() {
    let suite = start().await;
    let mut p = people(&suite, ACME);
    let mut stream = subscribe(
        &suite,
        ACME,
        "oa-system",
        &[pb::ContractApprovalDecided::full_name()],
    )
    .await;
    let c = submitted(&suite, &mut p, "Race", standard_lines()).await;
    let request = pb::DecideContractApprovalRequest {
        id: c.id.clone(),
        etag: c.etag.clone(),
        step: 1,
        decision: common::ApprovalDecision::Approve as i32,
        ..Default::default()
    };
    let (a, b) = tokio::join!(
        p.boss.decide_contract_approval(request.clone()),
        p.max.decide_contract_approval(request)
    );
    let outcomes: Vec<Code> = [a.map(|_| Code::Ok), b.map(|_| Code::Ok)]
        .into_iter()
        .map(|r| r.unwrap_or_else(|s| s.code()))
        .collect();
    assert_eq!(
        outcomes.iter().filter(|c| **c == Code::Ok).count(),
        1,
        "{outcomes:?}"
    );
    assert!(
        outcomes
            .iter()
            .any(|c| matches!(c, Code::Aborted | Code::FailedPrecondition)),
        "{outcomes:?}"
    );
    let now = get(&mut p.boss, &c.id).await.unwrap();
    let winner = if outcomes[0] == Code::Ok {
        "boss"
    } else {
        "max"
    };
    assert_eq!(steps(&now)[0].decider_id, winner);
    assert_eq!(progress(&now).current_step, 2);

    // The stream holds one decision of step 1 before finance's of step 2.
    approve(&mut p.fay, &now, 2).await.unwrap();
    let mut decided_steps = Vec::new();
    loop {
        let (event, _) = until::<pb::ContractApprovalDecided>(&mut stream, &c.id).await;
        let number = event.step.unwrap().number;
        decided_steps.push(number);
        if number == 2 {
            break;
        }
    }
    assert_eq!(decided_steps, [1, 2]);
}

#[tokio::test]
async fn a_stale_etag_is_aborted_on_update_and_submit() {
    let suite = start().await;
    let mut p = people(&suite, ACME);
    let lines = standard_lines();
    let deal = deal_for(&suite, "amy", "Stale", &lines).await;
    let c = create(&mut p.amy, "stale", draft(&deal, lines))
        .await
        .unwrap();
    let changed = update(
        &mut p.amy,
        pb::Contract {
            id: c.id.clone(),
            etag: c.etag.clone(),
            title: "First edit".into(),
            ..Default::default()
        },
        &["title"],
    )
    .await
    .unwrap();
    assert_ne!(changed.etag, c.etag);
    let stale = pb::Contract {
        id: c.id.clone(),
        etag: c.etag.clone(),
        title: "Lost edit".into(),
        ..Default::default()
    };
    assert_eq!(
        refused(update(&mut p.amy, stale, &["title"]).await),
        (Code::Aborted, "ETAG_MISMATCH".into())
    );
    assert_eq!(
        refused(submit(&mut p.amy, &c.id, &c.etag).await),
        (Code::Aborted, "ETAG_MISMATCH".into())
    );
    let now = get(&mut p.amy, &c.id).await.unwrap();
    assert_eq!(
        (now.title.as_str(), now.status),
        ("First edit", pb::ContractStatus::Draft as i32)
    );
    // With the current etag it goes through.
    submit(&mut p.amy, &c.id, &now.etag).await.unwrap();
}

#[tokio::test]
async fn scope_control_puts_the_delivery_managers_review_first_when_the_total_differs() {
    let suite = start().await;
    let mut p = people(&suite, ACME);
    let lines = standard_lines();
    // The delivery manager reviewed a lower quote than the contract's total.
    let reviewed = total_of(&lines) - 1_000 * NANOS;
    let deal = won_deal(
        &suite,
        ACME,
        "amy",
        "Scope Creep",
        &money_of("CNY", reviewed),
    )
    .await;
    let c = create(&mut p.amy, "scope", draft(&deal, lines))
        .await
        .unwrap();
    assert_eq!(c.scope_changes, ["total"]);
    assert_eq!(
        nanos_of(c.reviewed_scope.as_ref().unwrap().quote.as_ref()),
        reviewed
    );
    let c = submit(&mut p.amy, &c.id, "").await.unwrap();
    let chain: Vec<(String, i32, String)> = steps(&c)
        .into_iter()
        .map(|s| (s.name, s.role, s.assignee_id))
        .collect();
    assert_eq!(
        chain,
        [
            (
                "delivery_review".to_owned(),
                common::Role::Delivery as i32,
                "dora".to_owned()
            ),
            (
                "sales_manager".to_owned(),
                common::Role::Manager as i32,
                String::new()
            ),
            (
                "finance".to_owned(),
                common::Role::Finance as i32,
                String::new()
            ),
            (
                "legal".to_owned(),
                common::Role::Legal as i32,
                String::new()
            ),
        ]
    );
    // Only the team's delivery manager reviews, not any delivery user.
    let mut dan = as_(&suite, ACME, "dan", &[Role::Delivery]);
    assert_eq!(
        refused(approve(&mut dan, &c, 1).await),
        (Code::PermissionDenied, "NOT_ASSIGNEE".into())
    );
    assert!(inbox(&mut dan).await.is_empty());
    assert_eq!(inbox(&mut p.dora).await, [(c.id.clone(), 1)]);
    let c = approve(&mut p.dora, &c, 1).await.unwrap();
    assert_eq!(progress(&c).current_role, common::Role::Manager as i32);
}

// ---------------------------------------------------------------------------
// Signature.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_declined_signature_returns_the_contract_to_approved_with_the_reason() {
    let suite = start().await;
    let mut p = people(&suite, ACME);
    let mut stream = subscribe(
        &suite,
        ACME,
        "oa-system",
        &[pb::ContractSignatureDeclined::full_name()],
    )
    .await;
    let c = approved(&suite, &mut p, "Declined").await;
    send(&mut p.amy, &c.id, "env-d1").await;
    let declined = record_signature(
        &mut p.esign,
        pb::RecordSignatureRequest {
            outcome: pb::SignatureOutcome::Declined as i32,
            decline_reason: "liability cap missing".into(),
            ..signed_callback(&c.id, "env-d1")
        },
    )
    .await
    .unwrap();
    assert_eq!(declined.status, pb::ContractStatus::Approved as i32);
    let signature = declined.signature.unwrap();
    assert_eq!(
        (signature.outcome, signature.decline_reason.as_str()),
        (
            pb::SignatureOutcome::Declined as i32,
            "liability cap missing"
        )
    );
    let (event, _) = until::<pb::ContractSignatureDeclined>(&mut stream, &c.id).await;
    assert_eq!(event.reason, "liability cap missing");
    // A decline needs its reason.
    send(&mut p.amy, &c.id, "env-d2").await;
    let no_reason = pb::RecordSignatureRequest {
        outcome: pb::SignatureOutcome::Declined as i32,
        ..signed_callback(&c.id, "env-d2")
    };
    assert_eq!(
        invalid(record_signature(&mut p.esign, no_reason).await),
        (Code::InvalidArgument, vec!["decline_reason".to_owned()])
    );
    // A callback about another envelope is refused.
    assert_eq!(
        refused(record_signature(&mut p.esign, signed_callback(&c.id, "env-d1")).await),
        (Code::FailedPrecondition, "ENVELOPE_MISMATCH".into())
    );
    let signed = record_signature(&mut p.esign, signed_callback(&c.id, "env-d2"))
        .await
        .unwrap();
    assert_eq!(signed.status, pb::ContractStatus::Signed as i32);
}

#[tokio::test]
async fn only_an_integration_records_a_signature() {
    let suite = start().await;
    let mut p = people(&suite, ACME);
    let c = approved(&suite, &mut p, "Callback").await;
    send(&mut p.amy, &c.id, "env-1").await;
    for who in [&mut p.amy, &mut p.boss, &mut p.lee] {
        let err = record_signature(who, signed_callback(&c.id, "env-1"))
            .await
            .unwrap_err();
        assert_eq!(
            (err.code(), reason(&err).as_str()),
            (Code::PermissionDenied, "ROLE_NOT_ALLOWED")
        );
    }
    assert_eq!(
        get(&mut p.amy, &c.id).await.unwrap().status,
        pb::ContractStatus::SentForSignature as i32
    );
}

#[tokio::test]
async fn a_manager_terminates_a_contract_in_force_with_a_reason() {
    let suite = start().await;
    let mut p = people(&suite, ACME);
    let c = approved(&suite, &mut p, "Terminated").await;
    let terminate = |reason: &str| pb::TerminateContractRequest {
        id: c.id.clone(),
        reason: reason.into(),
        ..Default::default()
    };
    // Not before it is in force.
    assert_eq!(
        refused(p.boss.terminate_contract(terminate("too early")).await),
        (Code::FailedPrecondition, "NOT_IN_FORCE".into())
    );
    sign(&mut p, &c, "env-t").await;
    assert_eq!(
        code(p.amy.terminate_contract(terminate("sales may not")).await),
        Code::PermissionDenied
    );
    assert_eq!(
        invalid(p.boss.terminate_contract(terminate("")).await),
        (Code::InvalidArgument, vec!["reason".to_owned()])
    );
    let ended = p
        .boss
        .terminate_contract(terminate("customer insolvent"))
        .await
        .unwrap()
        .into_inner()
        .contract
        .unwrap();
    assert_eq!(
        (
            ended.status,
            ended.termination_reason.as_str(),
            ended.in_force
        ),
        (
            pb::ContractStatus::Terminated as i32,
            "customer insolvent",
            false
        )
    );
    assert_eq!(
        refused(p.boss.terminate_contract(terminate("again")).await),
        (Code::FailedPrecondition, "NOT_IN_FORCE".into())
    );
}

// ---------------------------------------------------------------------------
// Retries, outages, one contract per opportunity.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_retried_create_makes_one_contract_and_an_opportunity_has_one_contract() {
    let suite = start().await;
    let mut p = people(&suite, ACME);
    let lines = standard_lines();
    let deal = deal_for(&suite, "amy", "Once", &lines).await;
    let first = create(&mut p.amy, "once-1", draft(&deal, lines.clone()))
        .await
        .unwrap();
    let retried = create(&mut p.amy, "once-1", draft(&deal, lines.clone()))
        .await
        .unwrap();
    assert_eq!(retried.id, first.id);
    // The same id for another request is refused.
    let mut other = draft(&deal, lines.clone());
    other.title = "Something else".into();
    assert_eq!(
        invalid(create(&mut p.amy, "once-1", other).await),
        (Code::InvalidArgument, vec!["request_id".to_owned()])
    );
    // A second contract for the same opportunity is refused, naming the first.
    let err = create(&mut p.amy, "once-2", draft(&deal, lines))
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::AlreadyExists, "CONTRACT_EXISTS")
    );
    assert_eq!(
        err.get_error_details()
            .resource_info()
            .map(|r| r.resource_name.clone()),
        Some(first.id.clone())
    );
    let all = list(&mut p.boss, pb::ListContractsRequest::default())
        .await
        .unwrap();
    assert_eq!(ids(&all.contracts), [first.id]);

    // Racing creations for one opportunity: the same request id yields one
    // contract; different ids, one contract and one refusal.
    let lines = standard_lines();
    let race = deal_for(&suite, "amy", "Race", &lines).await;
    let (mut a, mut b) = (p.amy.clone(), p.amy.clone());
    let (x, y) = tokio::join!(
        create(&mut a, "race-same", draft(&race, lines.clone())),
        create(&mut b, "race-same", draft(&race, lines.clone()))
    );
    let (x, y) = (x.unwrap(), y.unwrap());
    assert_eq!(x.id, y.id);
    let other = deal_for(&suite, "amy", "Other Race", &lines).await;
    let (x, y) = tokio::join!(
        create(&mut a, "race-1", draft(&other, lines.clone())),
        create(&mut b, "race-2", draft(&other, lines))
    );
    let outcomes: Vec<Code> = [x.map(|_| Code::Ok), y.map(|_| Code::Ok)]
        .into_iter()
        .map(|r| r.unwrap_or_else(|s| s.code()))
        .collect();
    let mut sorted = outcomes.clone();
    sorted.sort_by_key(|c| *c as i32);
    assert_eq!(sorted, [Code::Ok, Code::AlreadyExists], "{outcomes:?}");
    let of_other = list(
        &mut p.boss,
        pb::ListContractsRequest {
            account_id: other.opportunity.account_id.clone(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(of_other.contracts.len(), 1);
}

#[tokio::test]
async fn while_opportunities_is_down_create_is_unavailable_and_a_retry_afterwards_makes_one_contract()
 {
    let mut suite = start().await;
    let lines = standard_lines();
    let deal = deal_for(&suite, "amy", "Outage", &lines).await;
    let request = draft(&deal, lines);

    // The opportunities service unreachable from contracts: a closed port.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    suite.stop().await;
    suite.settings.contracts.opportunities_url = Some(format!("http://{closed}"));
    suite.restart().await;
    let mut p = people(&suite, ACME);
    let err = create(&mut p.amy, "outage-1", request.clone())
        .await
        .unwrap_err();
    assert_eq!(
        (err.code(), reason(&err).as_str()),
        (Code::Unavailable, "OPPORTUNITIES_UNAVAILABLE"),
        "{err:?}"
    );
    assert!(
        list(&mut p.boss, pb::ListContractsRequest::default())
            .await
            .unwrap()
            .contracts
            .is_empty(),
        "nothing stored"
    );

    // Back: the same request id makes the contract, once.
    suite.stop().await;
    suite.settings.contracts.opportunities_url = None;
    suite.restart().await;
    let mut p = people(&suite, ACME);
    let made = create(&mut p.amy, "outage-1", request.clone())
        .await
        .unwrap();
    let again = create(&mut p.amy, "outage-1", request).await.unwrap();
    assert_eq!(again.id, made.id);
    let all = list(&mut p.boss, pb::ListContractsRequest::default())
        .await
        .unwrap();
    assert_eq!(ids(&all.contracts), [made.id]);
}

// ---------------------------------------------------------------------------
// Who sees what.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn another_tenants_contract_is_not_found_not_listed_and_not_on_its_stream() {
    let suite = start().await;
    let mut p = people(&suite, ACME);
    let c = approved(&suite, &mut p, "Isolated").await;
    let signed = sign(&mut p, &c, "env-iso").await;
    let milestone = signed.milestones[0].id.clone();
    let mut g = people(&suite, "globex");

    assert_eq!(code(get(&mut g.boss, &c.id).await), Code::NotFound);
    assert_eq!(code(get(&mut g.oa, &c.id).await), Code::NotFound);
    let edit = pb::Contract {
        id: c.id.clone(),
        title: "theirs now".into(),
        ..Default::default()
    };
    assert_eq!(
        code(update(&mut g.boss, edit, &["title"]).await),
        Code::NotFound
    );
    assert_eq!(code(submit(&mut g.boss, &c.id, "").await), Code::NotFound);
    assert_eq!(code(approve(&mut g.boss, &c, 1).await), Code::NotFound);
    assert_eq!(
        code(
            g.boss
                .send_for_signature(pb::SendForSignatureRequest {
                    id: c.id.clone(),
                    provider: "esign-cn".into(),
                    envelope_id: "env-x".into(),
                    ..Default::default()
                })
                .await
        ),
        Code::NotFound
    );
    assert_eq!(
        code(record_signature(&mut g.esign, signed_callback(&c.id, "env-iso")).await),
        Code::NotFound
    );
    assert_eq!(
        code(
            g.boss
                .amend_contract(pb::AmendContractRequest {
                    request_id: "steal".into(),
                    id: c.id.clone(),
                    ..Default::default()
                })
                .await
        ),
        Code::NotFound
    );
    assert_eq!(
        code(
            g.boss
                .terminate_contract(pb::TerminateContractRequest {
                    id: c.id.clone(),
                    reason: "not ours".into(),
                    ..Default::default()
                })
                .await
        ),
        Code::NotFound
    );
    assert_eq!(
        code(
            g.boss
                .list_contract_versions(pb::ListContractVersionsRequest { id: c.id.clone() })
                .await
        ),
        Code::NotFound
    );
    assert_eq!(
        code(
            g.erp
                .record_payment(pb::RecordPaymentRequest {
                    milestone_id: milestone,
                    status: pb::MilestoneStatus::Paid as i32,
                    erp_reference: "PAY-1".into(),
                    ..Default::default()
                })
                .await
        ),
        Code::NotFound
    );
    assert!(
        list(&mut g.boss, pb::ListContractsRequest::default())
            .await
            .unwrap()
            .contracts
            .is_empty()
    );
    assert!(inbox(&mut g.oa).await.is_empty());
    assert!(
        g.erp
            .list_payment_milestones(pb::ListPaymentMilestonesRequest::default())
            .await
            .unwrap()
            .into_inner()
            .milestones
            .is_empty()
    );
    assert!(
        g.boss
            .list_audit_entries(pb::ListAuditEntriesRequest {
                subject_id: c.id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .entries
            .is_empty()
    );

    // Globex's stream carries its own contract's events and none of acme's.
    let mut stream = subscribe(&suite, "globex", "oa-system", &[]).await;
    let theirs = won_deal(&suite, "globex", "gina", "Globex", &money("CNY", 50_000, 0)).await;
    let mut gina = as_(&suite, "globex", "gina", &[Role::Sales]);
    let own = create(
        &mut gina,
        "globex-1",
        pb::Contract {
            opportunity_id: theirs.opportunity.id.clone(),
            currency_code: "CNY".into(),
            lines: vec![line("Licence", 1, money("CNY", 50_000, 0), 0)],
            ..Default::default()
        },
    )
    .await
    .unwrap();
    let (created, before) = until::<pb::ContractCreated>(&mut stream, &own.id).await;
    assert_eq!(created.contract.unwrap().id, own.id);
    assert!(before.iter().all(|e| e.tenant_id == "globex"), "{before:?}");
    assert!(
        before.is_empty(),
        "globex had no contract events before: {before:?}"
    );
}

#[tokio::test]
async fn sales_see_their_own_contracts_and_managers_the_tenants() {
    let suite = start().await;
    let mut p = people(&suite, ACME);
    let lines = standard_lines();
    let amys_deal = deal_for(&suite, "amy", "Amy Corp", &lines).await;
    let bobs_deal = deal_for(&suite, "bob", "Bob Corp", &lines).await;
    let amys = create(&mut p.amy, "amy-1", draft(&amys_deal, lines.clone()))
        .await
        .unwrap();
    let bobs = create(&mut p.bob, "bob-1", draft(&bobs_deal, lines.clone()))
        .await
        .unwrap();
    assert_eq!(bobs.owner_id, "bob");

    // A colleague's contract is not found, not even to change; sales cannot make one on a deal not theirs.
    assert_eq!(code(get(&mut p.bob, &amys.id).await), Code::NotFound);
    assert_eq!(code(get(&mut p.amy, &bobs.id).await), Code::NotFound);
    let edit = pb::Contract {
        id: amys.id.clone(),
        title: "bob was here".into(),
        ..Default::default()
    };
    assert_eq!(
        code(update(&mut p.bob, edit, &["title"]).await),
        Code::NotFound
    );
    assert_eq!(code(submit(&mut p.bob, &amys.id, "").await), Code::NotFound);
    let listed = |r: pb::ListContractsResponse| ids(&r.contracts);
    assert_eq!(
        listed(list(&mut p.amy, Default::default()).await.unwrap()),
        vec![amys.id.clone()]
    );
    assert_eq!(
        listed(list(&mut p.bob, Default::default()).await.unwrap()),
        vec![bobs.id.clone()]
    );
    // Finance sees neither until a step awaits it; the team's delivery manager sees both.
    assert_eq!(code(get(&mut p.fay, &amys.id).await), Code::NotFound);
    assert_eq!(get(&mut p.dora, &amys.id).await.unwrap().id, amys.id);

    // A manager sees the tenant's, newest first, and may change any draft.
    assert_eq!(
        listed(list(&mut p.boss, Default::default()).await.unwrap()),
        [bobs.id.clone(), amys.id.clone()]
    );
    let edited = update(
        &mut p.boss,
        pb::Contract {
            id: amys.id.clone(),
            title: "Amy Corp, reviewed".into(),
            ..Default::default()
        },
        &["title"],
    )
    .await
    .unwrap();
    assert_eq!(
        (edited.title.as_str(), edited.updater.as_str()),
        ("Amy Corp, reviewed", "boss")
    );
}

// ---------------------------------------------------------------------------
// Amendments.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn an_amendment_is_a_new_version_approved_and_signed_again_and_the_newest_signed_is_in_force()
{
    let suite = start().await;
    let mut p = people(&suite, ACME);
    let mut stream = subscribe(
        &suite,
        ACME,
        "delivery-system",
        &[pb::ContractSigned::full_name()],
    )
    .await;
    let c = approved(&suite, &mut p, "Amended").await;
    let v1 = sign(&mut p, &c, "env-v1").await;
    until::<pb::ContractSigned>(&mut stream, &v1.id).await;

    let amend = pb::AmendContractRequest {
        request_id: "amend-1".into(),
        id: v1.id.clone(),
        etag: v1.etag.clone(),
        reason: "a fourth plant".into(),
    };
    let v2 = p
        .amy
        .amend_contract(amend.clone())
        .await
        .unwrap()
        .into_inner()
        .contract
        .unwrap();
    assert_eq!(
        (
            v2.version,
            v2.status,
            v2.contract_family_id.as_str(),
            v2.previous_version_id.as_str()
        ),
        (
            2,
            pb::ContractStatus::Draft as i32,
            v1.id.as_str(),
            v1.id.as_str()
        )
    );
    assert_ne!(v2.id, v1.id);
    // A retry returns the same draft; a second open amendment is refused.
    let retried = p.amy.amend_contract(amend).await.unwrap().into_inner();
    assert_eq!(retried.contract.unwrap().id, v2.id);
    let second = p
        .amy
        .amend_contract(pb::AmendContractRequest {
            request_id: "amend-2".into(),
            id: v1.id.clone(),
            ..Default::default()
        })
        .await;
    assert_eq!(
        refused(second),
        (Code::FailedPrecondition, "AMENDMENT_IN_PROGRESS".into())
    );
    // The signed version stays in force while the amendment is worked on.
    assert!(get(&mut p.amy, &v1.id).await.unwrap().in_force);

    // More lines: the total differs from the reviewed quote, so the delivery manager reviews first.
    let mut lines = standard_lines();
    lines.push(line("Fourth plant", 1, money("CNY", 250_000, 0), 0));
    let total = total_of(&lines);
    let v2 = update(
        &mut p.amy,
        pb::Contract {
            id: v2.id.clone(),
            lines,
            ..Default::default()
        },
        &["lines"],
    )
    .await
    .unwrap();
    assert_eq!(nanos_of(v2.total.as_ref()), total);
    assert!(
        v2.scope_changes.contains(&"total".to_owned()),
        "{:?}",
        v2.scope_changes
    );
    let mut v2 = submit(&mut p.amy, &v2.id, &v2.etag).await.unwrap();
    let first = &steps(&v2)[0];
    assert_eq!(
        (first.name.as_str(), first.role, first.assignee_id.as_str()),
        ("delivery_review", common::Role::Delivery as i32, "dora")
    );
    for (step, who) in [&mut p.dora, &mut p.boss, &mut p.fay, &mut p.lee]
        .into_iter()
        .enumerate()
    {
        v2 = approve(who, &v2, i32::try_from(step).unwrap() + 1)
            .await
            .unwrap();
    }
    assert_eq!(v2.status, pb::ContractStatus::Approved as i32);
    let v2 = sign(&mut p, &v2, "env-v2").await;
    assert!(v2.in_force);

    let (signed, _) = until::<pb::ContractSigned>(&mut stream, &v2.id).await;
    assert_eq!(signed.superseded_contract_id, v1.id);
    assert_eq!(signed.handover.unwrap().contract_family_id, v1.id);
    let versions = p
        .boss
        .list_contract_versions(pb::ListContractVersionsRequest { id: v2.id.clone() })
        .await
        .unwrap()
        .into_inner()
        .contracts;
    let seen: Vec<(i32, i32, bool)> = versions
        .iter()
        .map(|v| (v.version, v.status, v.in_force))
        .collect();
    assert_eq!(
        seen,
        [
            (1, pb::ContractStatus::Superseded as i32, false),
            (2, pb::ContractStatus::Signed as i32, true),
        ]
    );
    assert_eq!(ids(&versions), [v1.id.clone(), v2.id.clone()]);
}

// ---------------------------------------------------------------------------
// Lifecycle timers.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn the_sweeper_activates_expires_gives_renewal_notice_once_and_marks_milestones_overdue() {
    let suite = start_with(|s| s.contracts.sweep_interval = Duration::from_millis(50)).await;
    let mut p = people(&suite, ACME);
    const NOTICE_DAYS: i64 = 20;
    configure(&mut p, |config| {
        config.renewal_notice_days = i32::try_from(NOTICE_DAYS).unwrap();
    })
    .await;
    let mut stream = subscribe(&suite, ACME, "oa-system", &[]).await;
    let mut seen = Vec::new();

    // Running: started ten days ago, ends within the notice; its first milestone was due yesterday.
    let ends_in = NOTICE_DAYS - 5;
    let running = approved_with(&suite, &mut p, "Running", |c| {
        c.term = Some(term(today_plus(-10), today_plus(ends_in)));
        c.milestones = vec![
            percent("signing", today_plus(-1), 50),
            percent("go-live", today_plus(ends_in), 50),
        ];
    })
    .await;
    let running = sign(&mut p, &running, "env-running").await;
    // Ended: its whole term is in the past.
    let ended = approved_with(&suite, &mut p, "Ended", |c| {
        c.term = Some(term(today_plus(-40), today_plus(-1)));
        c.milestones = vec![percent("all", today_plus(5), 100)];
    })
    .await;
    let ended = sign(&mut p, &ended, "env-ended").await;

    seen_or_next::<pb::ContractActivated>(&mut stream, &mut seen, &running.id).await;
    let renewal: pb::ContractRenewalDue = seen_or_next(&mut stream, &mut seen, &running.id).await;
    assert_eq!(renewal.end_date, running.term.as_ref().unwrap().end_date);
    // Days from the sweeper's today to the end: the test's today, unless
    // midnight (UTC) passed since the term was set.
    let end = renewal.end_date.unwrap();
    let days_left = i64::from(renewal.days_left);
    assert!(
        days_left == ends_in || (today_plus(ends_in) != end && days_left == ends_in - 1),
        "{days_left} days left to {end:?}"
    );
    let overdue_id = running.milestones[0].id.clone();
    let overdue: pb::PaymentMilestoneOverdue =
        seen_or_next(&mut stream, &mut seen, &overdue_id).await;
    let milestone = overdue.milestone.unwrap();
    assert_eq!(
        (milestone.contract_id.as_str(), milestone.status),
        (running.id.as_str(), pb::MilestoneStatus::Overdue as i32)
    );
    assert!(milestone.overdue_time.is_some());
    seen_or_next::<pb::ContractExpired>(&mut stream, &mut seen, &ended.id).await;

    let now_running = get(&mut p.amy, &running.id).await.unwrap();
    assert_eq!(now_running.status, pb::ContractStatus::Active as i32);
    assert!(now_running.in_force);
    assert_eq!(
        now_running
            .milestones
            .iter()
            .map(|m| m.status)
            .collect::<Vec<_>>(),
        [
            pb::MilestoneStatus::Overdue as i32,
            pb::MilestoneStatus::Due as i32
        ]
    );
    let now_ended = get(&mut p.amy, &ended.id).await.unwrap();
    assert_eq!(now_ended.status, pb::ContractStatus::Expired as i32);
    assert!(!now_ended.in_force);
    let overdue_list = p
        .fay
        .list_payment_milestones(pb::ListPaymentMilestonesRequest {
            status: pb::MilestoneStatus::Overdue as i32,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .milestones;
    assert_eq!(
        overdue_list
            .iter()
            .map(|m| m.id.clone())
            .collect::<Vec<_>>(),
        vec![overdue_id.clone()]
    );

    // A later sweep (it marks a contract signed only now) repeats none of it.
    let later = approved_with(&suite, &mut p, "Later", |c| {
        c.milestones = vec![percent("all", today_plus(-1), 100)];
    })
    .await;
    let later = sign(&mut p, &later, "env-later").await;
    seen_or_next::<pb::PaymentMilestoneOverdue>(&mut stream, &mut seen, &later.milestones[0].id)
        .await;
    assert_eq!(count::<pb::ContractActivated>(&seen, &running.id), 1);
    assert_eq!(count::<pb::ContractRenewalDue>(&seen, &running.id), 1);
    assert_eq!(count::<pb::PaymentMilestoneOverdue>(&seen, &overdue_id), 1);
    assert_eq!(count::<pb::ContractExpired>(&seen, &ended.id), 1);
    assert_eq!(
        count::<pb::ContractRenewalDue>(&seen, &ended.id),
        0,
        "no notice for a term already over"
    );
}

// ---------------------------------------------------------------------------
// Receivables.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn erp_reads_the_receivables_and_records_invoices_and_payments() {
    let suite = start().await;
    let mut p = people(&suite, ACME);
    let mut erp_stream = subscribe(&suite, ACME, "erp", &[pb::PaymentRecorded::full_name()]).await;
    let one = approved(&suite, &mut p, "Receivable One").await;
    let one = sign(&mut p, &one, "env-r1").await;
    let two = approved(&suite, &mut p, "Receivable Two").await;
    // Not signed yet: its milestones are planned, nothing is owed.
    let planned = &two.milestones[0];
    assert_eq!(planned.status, pb::MilestoneStatus::Planned as i32);
    assert_eq!(
        refused(
            p.erp
                .record_payment(pb::RecordPaymentRequest {
                    milestone_id: planned.id.clone(),
                    status: pb::MilestoneStatus::Invoiced as i32,
                    erp_reference: "INV-0".into(),
                    ..Default::default()
                })
                .await
        ),
        (Code::FailedPrecondition, "NOT_RECEIVABLE".into())
    );
    let two = sign(&mut p, &two, "env-r2").await;

    let milestones = |request: pb::ListPaymentMilestonesRequest| {
        let mut fay = p.fay.clone();
        async move {
            fay.list_payment_milestones(request)
                .await
                .unwrap()
                .into_inner()
                .milestones
        }
    };
    let all = milestones(Default::default()).await;
    assert_eq!(all.len(), 4);
    let due: Vec<_> = all
        .iter()
        .map(|m| m.due_date.as_ref().map(|d| (d.year, d.month, d.day)))
        .collect();
    assert!(
        due.windows(2).all(|w| w[0] <= w[1]),
        "earliest first: {due:?}"
    );
    // By account.
    let of_one = milestones(pb::ListPaymentMilestonesRequest {
        account_id: one.account_id.clone(),
        ..Default::default()
    })
    .await;
    assert_eq!(
        of_one.iter().map(|m| m.id.clone()).collect::<Vec<_>>(),
        one.milestones
            .iter()
            .map(|m| m.id.clone())
            .collect::<Vec<_>>()
    );
    // Due before the second milestone's date: the first of each contract.
    let second_due = one.milestones[1].due_date;
    let early = milestones(pb::ListPaymentMilestonesRequest {
        due_before: second_due,
        ..Default::default()
    })
    .await;
    let mut early_ids: Vec<String> = early.iter().map(|m| m.id.clone()).collect();
    early_ids.sort();
    let mut want = vec![one.milestones[0].id.clone(), two.milestones[0].id.clone()];
    want.sort();
    assert_eq!(early_ids, want);

    // ERP invoices, then records the payment.
    let target = one.milestones[0].clone();
    let invoiced = p
        .erp
        .record_payment(pb::RecordPaymentRequest {
            milestone_id: target.id.clone(),
            etag: target.etag.clone(),
            status: pb::MilestoneStatus::Invoiced as i32,
            erp_reference: "INV-2027-001".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .milestone
        .unwrap();
    assert_eq!(
        (
            invoiced.status,
            invoiced.erp_reference.as_str(),
            invoiced.invoice_time.is_some()
        ),
        (pb::MilestoneStatus::Invoiced as i32, "INV-2027-001", true)
    );
    // A stale etag is refused.
    assert_eq!(
        refused(
            p.erp
                .record_payment(pb::RecordPaymentRequest {
                    milestone_id: target.id.clone(),
                    etag: target.etag.clone(),
                    status: pb::MilestoneStatus::Paid as i32,
                    erp_reference: "PAY-1".into(),
                    ..Default::default()
                })
                .await
        ),
        (Code::Aborted, "ETAG_MISMATCH".into())
    );
    let paid = p
        .erp
        .record_payment(pb::RecordPaymentRequest {
            milestone_id: target.id.clone(),
            etag: invoiced.etag.clone(),
            status: pb::MilestoneStatus::Paid as i32,
            erp_reference: "PAY-2027-001".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .milestone
        .unwrap();
    assert_eq!(paid.status, pb::MilestoneStatus::Paid as i32);
    assert!(paid.paid_time.is_some());
    // ERP's own stream has both: the invoice, then the payment.
    let recorded: Vec<i32> = [
        until::<pb::PaymentRecorded>(&mut erp_stream, &target.id).await,
        until::<pb::PaymentRecorded>(&mut erp_stream, &target.id).await,
    ]
    .into_iter()
    .map(|(e, _)| e.milestone.unwrap().status)
    .collect();
    assert_eq!(
        recorded,
        [
            pb::MilestoneStatus::Invoiced as i32,
            pb::MilestoneStatus::Paid as i32
        ]
    );
    assert_eq!(
        refused(
            p.erp
                .record_payment(pb::RecordPaymentRequest {
                    milestone_id: target.id.clone(),
                    status: pb::MilestoneStatus::Paid as i32,
                    erp_reference: "PAY-again".into(),
                    ..Default::default()
                })
                .await
        ),
        (Code::FailedPrecondition, "ALREADY_PAID".into())
    );
    // Only invoiced or paid may be recorded.
    assert_eq!(
        invalid(
            p.erp
                .record_payment(pb::RecordPaymentRequest {
                    milestone_id: one.milestones[1].id.clone(),
                    status: pb::MilestoneStatus::Overdue as i32,
                    erp_reference: "X".into(),
                    ..Default::default()
                })
                .await
        ),
        (Code::InvalidArgument, vec!["status".to_owned()])
    );

    // Filter by status.
    let paid_list = milestones(pb::ListPaymentMilestonesRequest {
        status: pb::MilestoneStatus::Paid as i32,
        ..Default::default()
    })
    .await;
    assert_eq!(
        paid_list.iter().map(|m| m.id.clone()).collect::<Vec<_>>(),
        vec![target.id.clone()]
    );
    let due_list = milestones(pb::ListPaymentMilestonesRequest {
        status: pb::MilestoneStatus::Due as i32,
        ..Default::default()
    })
    .await;
    assert_eq!(due_list.len(), 3);

    // Sales may neither record payments nor read the receivables.
    let err = p
        .amy
        .record_payment(pb::RecordPaymentRequest {
            milestone_id: one.milestones[1].id.clone(),
            status: pb::MilestoneStatus::Paid as i32,
            erp_reference: "PAY-x".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(
        code(
            p.amy
                .list_payment_milestones(pb::ListPaymentMilestonesRequest::default())
                .await
        ),
        Code::PermissionDenied
    );
    let _ = two;
}

// ---------------------------------------------------------------------------
// Lists.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn contracts_are_listed_by_status_account_owner_and_end_date_page_by_page() {
    let suite = start().await;
    let mut p = people(&suite, ACME);
    let lines = standard_lines();
    let year = today_plus(0).year + 1;
    let mk = |deal: &Deal, end: common::Date| {
        let mut c = draft(deal, lines.clone());
        c.term = Some(term(date(year, 1, 1), end));
        c
    };
    let d1 = deal_for(&suite, "amy", "List One", &lines).await;
    let d2 = deal_for(&suite, "amy", "List Two", &lines).await;
    let d3 = deal_for(&suite, "bob", "List Three", &lines).await;
    let c1 = create(&mut p.amy, "l1", mk(&d1, date(year, 3, 31)))
        .await
        .unwrap();
    let c2 = create(&mut p.amy, "l2", mk(&d2, date(year, 12, 31)))
        .await
        .unwrap();
    let c3 = create(&mut p.bob, "l3", mk(&d3, date(year, 6, 30)))
        .await
        .unwrap();
    let c2 = submit(&mut p.amy, &c2.id, "").await.unwrap();

    let by = |request: pb::ListContractsRequest| {
        let mut boss = p.boss.clone();
        async move { ids(&list(&mut boss, request).await.unwrap().contracts) }
    };
    assert_eq!(
        by(pb::ListContractsRequest {
            status: pb::ContractStatus::InApproval as i32,
            ..Default::default()
        })
        .await,
        vec![c2.id.clone()]
    );
    assert_eq!(
        by(pb::ListContractsRequest {
            status: pb::ContractStatus::Draft as i32,
            ..Default::default()
        })
        .await,
        [c3.id.clone(), c1.id.clone()]
    );
    assert_eq!(
        by(pb::ListContractsRequest {
            account_id: d2.opportunity.account_id.clone(),
            ..Default::default()
        })
        .await,
        vec![c2.id.clone()]
    );
    assert_eq!(
        by(pb::ListContractsRequest {
            owner_id: "bob".into(),
            ..Default::default()
        })
        .await,
        vec![c3.id.clone()]
    );
    assert_eq!(
        by(pb::ListContractsRequest {
            ending_before: Some(date(year, 7, 1)),
            ..Default::default()
        })
        .await,
        [c3.id.clone(), c1.id.clone()]
    );
    assert_eq!(
        by(pb::ListContractsRequest {
            owner_id: "amy".into(),
            ending_before: Some(date(year, 7, 1)),
            ..Default::default()
        })
        .await,
        vec![c1.id.clone()]
    );

    // Page by page: every contract once, newest first, then an empty token.
    let mut pages = Vec::new();
    let mut token = String::new();
    loop {
        let page = list(
            &mut p.boss,
            pb::ListContractsRequest {
                page_size: 1,
                page_token: token.clone(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
        assert!(page.contracts.len() <= 1);
        pages.extend(ids(&page.contracts));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(pages, [c3.id.clone(), c2.id.clone(), c1.id.clone()]);
    // A token is bound to its query; a negative page size is refused.
    let first = list(
        &mut p.boss,
        pb::ListContractsRequest {
            page_size: 1,
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        invalid(
            list(
                &mut p.boss,
                pb::ListContractsRequest {
                    page_size: 1,
                    page_token: first.next_page_token,
                    owner_id: "bob".into(),
                    ..Default::default()
                },
            )
            .await
        ),
        (Code::InvalidArgument, vec!["page_token".to_owned()])
    );
    assert_eq!(
        invalid(
            list(
                &mut p.boss,
                pb::ListContractsRequest {
                    page_size: -1,
                    ..Default::default()
                },
            )
            .await
        ),
        (Code::InvalidArgument, vec!["page_size".to_owned()])
    );
}
