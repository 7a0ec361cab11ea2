//! The delivery service through the gateway (issue 13): one project per
//! signed contract from its handover, exactly once through replays, crashes
//! and a contracts outage; amendments; milestones, tasks and computed
//! progress; the customer-facing progress line; work hours; acceptance and
//! go-live into the service stage; risk alerts and resource shortages; who
//! sees and changes what; and the all-tenants subscription kept to the
//! suite's own services.

use std::time::Duration;

use crm_auth::Role;
use crm_e2e::{
    golive::{delivery_as, project_of},
    scenario::*,
    streams::*,
    *,
};
use crm_proto::crm::{
    common::v1 as common, contracts::v1 as cpb, delivery::v1 as pb, events::v1 as ev,
};
use prost::Name;
use prost_types::FieldMask;
use tonic::Code;
use tonic_types::StatusExt;

const ACME: &str = "acme";
const GLOBEX: &str = "globex";
/// The longest a handover, an alert or a resolution may take to show.
const WAIT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------
// The suite, people and calls.
// ---------------------------------------------------------------------------

/// The suite with a fast delivery sweeper and quick heartbeats.
async fn start_delivery() -> TestSuite {
    start_delivery_with(|_| {}).await
}

async fn start_delivery_with(tweak: impl FnOnce(&mut Settings)) -> TestSuite {
    start_with(|s| {
        s.delivery.sweep_interval = Duration::from_millis(50);
        s.delivery.events.heartbeat_interval = Duration::from_millis(200);
        s.contracts.events.heartbeat_interval = Duration::from_millis(200);
        tweak(s);
    })
    .await
}

/// The people of one tenant on the delivery API (the names of
/// [`scenario`]: dora is the deals' delivery manager, amy their owner).
struct People {
    /// Delivery, the deals' delivery manager: the project manager.
    dora: DeliveryClient,
    /// Delivery, made a member of the project by dora.
    dan: DeliveryClient,
    /// Delivery, on no project.
    dean: DeliveryClient,
    /// Sales, the account manager of amy's deals.
    amy: DeliveryClient,
    /// Sales, the account manager of bob's deals.
    bob: DeliveryClient,
    /// A manager.
    boss: DeliveryClient,
    /// The tenant's admin.
    root: DeliveryClient,
    /// The integration relaying e-signed acceptances.
    esign: DeliveryClient,
    /// The integration that tells the accounts' contacts.
    notifier: DeliveryClient,
}

fn people(suite: &TestSuite, tenant: &str) -> People {
    let c = |who: &str, roles: &[Role]| delivery_as(suite, tenant, who, roles);
    People {
        dora: c("dora", &[Role::Delivery]),
        dan: c("dan", &[Role::Delivery]),
        dean: c("dean", &[Role::Delivery]),
        amy: c("amy", &[Role::Sales]),
        bob: c("bob", &[Role::Sales]),
        boss: c("boss", &[Role::Manager]),
        root: c("root", &[Role::Admin]),
        esign: c("esign", &[Role::Integration]),
        notifier: c("notifier", &[Role::Integration]),
    }
}

/// Every project `c` sees with the filters of `request`, page by page.
async fn all_projects(
    c: &mut DeliveryClient,
    mut request: pb::ListProjectsRequest,
) -> Result<Vec<pb::Project>, tonic::Status> {
    let mut out = Vec::new();
    loop {
        let page = c.list_projects(request.clone()).await?.into_inner();
        out.extend(page.projects);
        if page.next_page_token.is_empty() {
            return Ok(out);
        }
        request.page_token = page.next_page_token;
    }
}

/// The projects of the contract family `family` that `c` sees.
async fn projects_of(c: &mut DeliveryClient, family: &str) -> Vec<pb::Project> {
    all_projects(c, pb::ListProjectsRequest::default())
        .await
        .unwrap()
        .into_iter()
        .filter(|p| p.contract_family_id == family)
        .collect()
}

fn ids(projects: &[pb::Project]) -> Vec<String> {
    projects.iter().map(|p| p.id.clone()).collect()
}

/// A signed contract of `tenant` owned by `owner` and its project.
async fn delivered(
    suite: &TestSuite,
    tenant: &str,
    owner: &str,
    name: &str,
) -> (Deal, cpb::Contract, pb::Project) {
    let (deal, contract) = signed_contract(suite, tenant, owner, name).await;
    let project = project_of(suite, tenant, &contract).await;
    (deal, contract, project)
}

async fn get_project(c: &mut DeliveryClient, id: &str) -> Result<pb::Project, tonic::Status> {
    c.get_project(pb::GetProjectRequest { id: id.into() })
        .await
        .map(|r| r.into_inner().project.unwrap())
}

async fn update_project(
    c: &mut DeliveryClient,
    project: pb::Project,
    paths: &[&str],
) -> Result<pb::Project, tonic::Status> {
    c.update_project(pb::UpdateProjectRequest {
        project: Some(project),
        update_mask: Some(FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        }),
    })
    .await
    .map(|r| r.into_inner().project.unwrap())
}

/// dora makes `members` members of the project.
async fn add_members(p: &mut People, project: &pb::Project, members: &[&str]) -> pb::Project {
    update_project(
        &mut p.dora,
        pb::Project {
            id: project.id.clone(),
            member_ids: members.iter().map(|m| (*m).to_owned()).collect(),
            ..Default::default()
        },
        &["member_ids"],
    )
    .await
    .unwrap()
}

/// A project's milestones (by due date) and tasks.
async fn plan(
    c: &mut DeliveryClient,
    project_id: &str,
) -> Result<(Vec<pb::Milestone>, Vec<pb::Task>), tonic::Status> {
    c.list_milestones(pb::ListMilestonesRequest {
        project_id: project_id.into(),
    })
    .await
    .map(|r| {
        let r = r.into_inner();
        (r.milestones, r.tasks)
    })
}

fn named<'a>(milestones: &'a [pb::Milestone], name: &str) -> &'a pb::Milestone {
    milestones
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("a milestone {name:?} in {milestones:?}"))
}

async fn add_milestone(
    c: &mut DeliveryClient,
    project_id: &str,
    name: &str,
    due: common::Date,
) -> Result<pb::Milestone, tonic::Status> {
    add_owned_milestone(c, project_id, name, due, "").await
}

/// A milestone owned by `owner` (the project manager when empty).
async fn add_owned_milestone(
    c: &mut DeliveryClient,
    project_id: &str,
    name: &str,
    due: common::Date,
    owner: &str,
) -> Result<pb::Milestone, tonic::Status> {
    c.create_milestone(pb::CreateMilestoneRequest {
        request_id: request_id("ms", &[project_id, name]),
        milestone: Some(pb::Milestone {
            project_id: project_id.into(),
            name: name.into(),
            due_date: Some(due),
            owner_id: owner.into(),
            acceptance_criteria: format!("{name} signed off by the customer"),
            ..Default::default()
        }),
    })
    .await
    .map(|r| r.into_inner().milestone.unwrap())
}

async fn add_task(
    c: &mut DeliveryClient,
    project_id: &str,
    milestone_id: &str,
    title: &str,
    assignee: &str,
    estimate_hours: f64,
) -> Result<pb::Task, tonic::Status> {
    c.create_task(pb::CreateTaskRequest {
        request_id: request_id("task", &[project_id, milestone_id, title]),
        project_id: project_id.into(),
        task: Some(pb::Task {
            milestone_id: milestone_id.into(),
            title: title.into(),
            assignee_id: assignee.into(),
            estimate_hours,
            ..Default::default()
        }),
    })
    .await
    .map(|r| r.into_inner().task.unwrap())
}

async fn update_task(
    c: &mut DeliveryClient,
    task: pb::Task,
    paths: &[&str],
) -> Result<pb::Task, tonic::Status> {
    c.update_task(pb::UpdateTaskRequest {
        task: Some(task),
        update_mask: Some(FieldMask {
            paths: paths.iter().map(|p| (*p).to_owned()).collect(),
        }),
    })
    .await
    .map(|r| r.into_inner().task.unwrap())
}

async fn set_task_status(
    c: &mut DeliveryClient,
    task_id: &str,
    status: pb::TaskStatus,
) -> Result<pb::Task, tonic::Status> {
    let task = pb::Task {
        id: task_id.into(),
        status: status as i32,
        ..Default::default()
    };
    update_task(c, task, &["status"]).await
}

async fn assign(
    c: &mut DeliveryClient,
    task_id: &str,
    who: &str,
) -> Result<pb::Task, tonic::Status> {
    let task = pb::Task {
        id: task_id.into(),
        assignee_id: who.into(),
        ..Default::default()
    };
    update_task(c, task, &["assignee_id"]).await
}

async fn start_milestone(c: &mut DeliveryClient, id: &str) -> Result<pb::Milestone, tonic::Status> {
    c.start_milestone(pb::StartMilestoneRequest {
        id: id.into(),
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner().milestone.unwrap())
}

async fn mark_ready(c: &mut DeliveryClient, id: &str) -> Result<pb::Milestone, tonic::Status> {
    c.mark_milestone_ready(pb::MarkMilestoneReadyRequest {
        id: id.into(),
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner().milestone.unwrap())
}

/// The project manager records the customer's acceptance.
async fn accept(c: &mut DeliveryClient, id: &str) -> Result<pb::Milestone, tonic::Status> {
    c.accept_milestone(pb::AcceptMilestoneRequest {
        id: id.into(),
        accepted_by: "Li Lei".into(),
        comment: "as agreed".into(),
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner().milestone.unwrap())
}

/// Started, ready and accepted by the project manager.
async fn complete_milestone(pm: &mut DeliveryClient, id: &str) -> pb::Milestone {
    start_milestone(pm, id).await.unwrap();
    mark_ready(pm, id).await.unwrap();
    let accepted = accept(pm, id).await.unwrap();
    assert_eq!(accepted.status, pb::MilestoneStatus::Accepted as i32);
    accepted
}

async fn go_live(c: &mut DeliveryClient, id: &str) -> Result<pb::Project, tonic::Status> {
    c.go_live(pb::GoLiveRequest {
        id: id.into(),
        service_manager_id: "sam".into(),
        service_level: "gold".into(),
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner().project.unwrap())
}

fn hours_log(
    project_id: &str,
    milestone_id: &str,
    task_id: &str,
    person: &str,
    day: common::Date,
    hours: f64,
) -> pb::WorkHourLog {
    pb::WorkHourLog {
        project_id: project_id.into(),
        milestone_id: milestone_id.into(),
        task_id: task_id.into(),
        person_id: person.into(),
        work_date: Some(day),
        hours,
        note: "worked".into(),
        ..Default::default()
    }
}

async fn log_hours(
    c: &mut DeliveryClient,
    request_id: &str,
    log: pb::WorkHourLog,
) -> Result<pb::WorkHourLog, tonic::Status> {
    c.log_work_hours(pb::LogWorkHoursRequest {
        request_id: request_id.into(),
        log: Some(log),
    })
    .await
    .map(|r| r.into_inner().log.unwrap())
}

async fn hours_summary(
    c: &mut DeliveryClient,
    project_id: &str,
) -> Result<pb::GetHoursSummaryResponse, tonic::Status> {
    c.get_hours_summary(pb::GetHoursSummaryRequest {
        project_id: project_id.into(),
    })
    .await
    .map(|r| r.into_inner())
}

/// Every risk alert `c` sees with the filters of `request`, page by page.
async fn all_alerts(
    c: &mut DeliveryClient,
    mut request: pb::ListRiskAlertsRequest,
) -> Result<Vec<pb::RiskAlert>, tonic::Status> {
    let mut out = Vec::new();
    loop {
        let page = c.list_risk_alerts(request.clone()).await?.into_inner();
        out.extend(page.alerts);
        if page.next_page_token.is_empty() {
            return Ok(out);
        }
        request.page_token = page.next_page_token;
    }
}

/// The alerts of `kind` on `project_id` (any project when empty) that are
/// about `about` (a milestone, task or person id).
async fn alerts_about(
    c: &mut DeliveryClient,
    project_id: &str,
    kind: pb::RiskKind,
    about: &str,
) -> Vec<pb::RiskAlert> {
    let request = pb::ListRiskAlertsRequest {
        project_id: project_id.into(),
        ..Default::default()
    };
    all_alerts(c, request)
        .await
        .unwrap()
        .into_iter()
        .filter(|a| a.kind == kind as i32 && is_about(a, about))
        .collect()
}

fn is_about(alert: &pb::RiskAlert, about: &str) -> bool {
    [&alert.milestone_id, &alert.task_id, &alert.person_id]
        .into_iter()
        .any(|id| id == about)
}

async fn acknowledge(c: &mut DeliveryClient, id: &str) -> Result<pb::RiskAlert, tonic::Status> {
    c.acknowledge_risk_alert(pb::AcknowledgeRiskAlertRequest {
        id: id.into(),
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner().alert.unwrap())
}

async fn delivery_config(c: &mut DeliveryClient) -> pb::DeliveryConfig {
    c.get_delivery_config(pb::GetDeliveryConfigRequest {})
        .await
        .unwrap()
        .into_inner()
        .config
        .unwrap()
}

/// The admin replaces the tenant's delivery configuration after `change`.
async fn configure(p: &mut People, change: impl FnOnce(&mut pb::DeliveryConfig)) {
    let mut config = delivery_config(&mut p.root).await;
    change(&mut config);
    p.root
        .update_delivery_config(pb::UpdateDeliveryConfigRequest {
            config: Some(config),
        })
        .await
        .unwrap();
}

/// A refused transition: its code, reason and the (type, subject) of each
/// violation of its PreconditionFailure.
fn unmet<T: std::fmt::Debug>(
    result: Result<T, tonic::Status>,
) -> (Code, String, Vec<(String, String)>) {
    let err = result.unwrap_err();
    let violations = err
        .get_error_details()
        .precondition_failure()
        .map(|p| {
            p.violations
                .iter()
                .map(|v| (v.r#type.clone(), v.subject.clone()))
                .collect()
        })
        .unwrap_or_default();
    (err.code(), reason(&err), violations)
}

/// The delivery stream of `tenant` from its start, as an integration.
async fn delivery_events(suite: &TestSuite, tenant: &str, types: &[String]) -> Stream {
    subscribe(suite, tenant, "pmo-board", "delivery", types).await
}

/// The progress as the contract documents it: each milestone counts
/// equally; an accepted one is complete, any other as complete as the
/// estimate share of its done tasks (0 without tasks); rounded down.
fn documented_percent(milestones: &[pb::Milestone], tasks: &[pb::Task]) -> i32 {
    let accepted = pb::MilestoneStatus::Accepted as i32;
    let done = pb::TaskStatus::Done as i32;
    let complete: f64 = milestones
        .iter()
        .map(|m| {
            if m.status == accepted {
                return 1.0;
            }
            let own = tasks.iter().filter(|t| t.milestone_id == m.id);
            let total: f64 = own.clone().map(|t| t.estimate_hours).sum();
            let finished: f64 = own
                .filter(|t| t.status == done)
                .map(|t| t.estimate_hours)
                .sum();
            if total > 0.0 { finished / total } else { 0.0 }
        })
        .sum();
    let share = 100.0 * complete / milestones.len() as f64;
    share.floor() as i32
}

// ---------------------------------------------------------------------------
// The handover, exactly once.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn signing_a_contract_creates_exactly_one_project_with_the_handover_package() {
    let suite = start_delivery().await;
    let mut p = people(&suite, ACME);
    let mut stream =
        delivery_events(&suite, ACME, &[pb::DeliveryProjectCreated::full_name()]).await;
    let (deal, contract) = signed_contract(&suite, ACME, "amy", "Handover").await;

    let mut seen = Vec::new();
    let created = find(&mut stream, &mut seen, |e: &pb::DeliveryProjectCreated| {
        e.project
            .as_ref()
            .is_some_and(|p| p.contract_family_id == contract.id)
    })
    .await;
    let project = get_project(&mut p.boss, &created.project.unwrap().id)
        .await
        .unwrap();
    assert_eq!(
        (
            project.contract_family_id.as_str(),
            project.contract_id.as_str(),
            project.account_id.as_str(),
            project.opportunity_id.as_str(),
            project.name.as_str(),
            project.status,
            project.project_manager_id.as_str(),
        ),
        (
            contract.id.as_str(),
            contract.id.as_str(),
            deal.opportunity.account_id.as_str(),
            deal.opportunity.id.as_str(),
            contract.title.as_str(),
            pb::ProjectStatus::Active as i32,
            "dora",
        )
    );

    // The package: lines, scope, special requirements, payment milestones,
    // key contacts and the team with its delivery manager.
    let handover = project.handover.clone().expect("the handover package");
    assert_eq!(handover.contract_id, contract.id);
    assert_eq!(handover.opportunity_id, deal.opportunity.id);
    assert_eq!(handover.lines, contract.lines);
    assert_eq!(handover.total, contract.total);
    assert_eq!(handover.scope_of_work, contract.scope_of_work);
    assert_eq!(handover.workload_person_days, WORKLOAD);
    assert_eq!(
        handover.special_requirements,
        [deploy_within_15_days()].to_vec()
    );
    let plan_ids = |ms: &[cpb::PaymentMilestone]| -> Vec<(String, String)> {
        ms.iter().map(|m| (m.id.clone(), m.name.clone())).collect()
    };
    assert_eq!(
        plan_ids(&handover.milestones),
        plan_ids(&contract.milestones)
    );
    let contact = &handover.key_contacts[..];
    assert_eq!(contact.len(), 1, "{contact:?}");
    assert_eq!(
        (
            contact[0].contact_id.as_str(),
            contact[0].name.as_str(),
            contact[0].phone.as_str(),
            contact[0].email.as_str(),
        ),
        (
            deal.contact.id.as_str(),
            deal.contact.name.as_str(),
            deal.contact.phone.as_str(),
            deal.contact.email.as_str(),
        )
    );
    let team = handover.team.clone().expect("the deal team");
    assert_eq!(
        (
            team.account_manager_id.as_str(),
            team.delivery_manager_id.as_str()
        ),
        ("amy", "dora")
    );

    // Milestones: one per payment milestone, and the dated commitment due
    // 15 days after the signing day.
    let (milestones, tasks) = plan(&mut p.dora, &project.id).await.unwrap();
    assert!(tasks.is_empty());
    let due: Vec<(i32, i32, i32)> = milestones
        .iter()
        .map(|m| m.due_date.map(|d| (d.year, d.month, d.day)).unwrap())
        .collect();
    assert_eq!(due, sorted(due.clone()), "listed by due date");
    assert_eq!(milestones.len(), contract.milestones.len() + 1);
    for paid in &contract.milestones {
        let m = named(&milestones, &paid.name);
        assert_eq!(
            (
                m.origin,
                m.payment_milestone_id.as_str(),
                m.due_date,
                m.status
            ),
            (
                pb::MilestoneOrigin::PaymentPlan as i32,
                paid.id.as_str(),
                paid.due_date,
                pb::MilestoneStatus::Planned as i32
            )
        );
    }
    let signed_day = handover
        .sign_time
        .expect("the signing time")
        .seconds
        .div_euclid(86_400);
    let commitment = milestones
        .iter()
        .find(|m| m.origin == pb::MilestoneOrigin::Commitment as i32)
        .expect("the dated commitment");
    assert_eq!(commitment.commitment, "deploy within 15 days");
    assert_eq!(commitment.due_date, Some(civil(signed_day + 15)));
    assert_eq!(
        sorted(created.milestones.iter().map(|m| m.id.clone()).collect()),
        sorted(milestones.iter().map(|m| m.id.clone()).collect())
    );

    // Nothing done yet; the reviewed workload in hours.
    let progress = project.progress.unwrap();
    assert_eq!(
        (
            progress.percent,
            progress.accepted_milestones,
            progress.total_milestones
        ),
        (0, 0, i32::try_from(milestones.len()).unwrap())
    );
    let per_day = delivery_config(&mut p.boss).await.hours_per_person_day;
    let profitability = project.profitability.unwrap();
    assert_eq!(
        profitability.reviewed_hours,
        f64::from(WORKLOAD * per_day),
        "{profitability:?}"
    );
    assert_eq!(profitability.actual_hours, 0.0);

    // Exactly one, for the manager, the project manager and the account
    // manager alike.
    for c in [&mut p.boss, &mut p.dora, &mut p.amy] {
        assert_eq!(
            ids(&projects_of(c, &contract.id).await),
            [project.id.as_str()]
        );
    }
}

#[tokio::test]
async fn a_replayed_or_duplicated_contract_signed_leaves_one_project_per_contract() {
    let mut suite = start_delivery().await;
    let (_, first) = signed_contract(&suite, ACME, "amy", "Replay One").await;
    project_of(&suite, ACME, &first).await;

    // A graceful restart and a crash: each time the consumer resumes from
    // its stored cursor.
    suite.stop().await;
    suite.restart().await;
    let (_, second) = signed_contract(&suite, ACME, "amy", "Replay Two").await;
    project_of(&suite, ACME, &second).await;
    suite.kill().await;
    suite.restart().await;
    let (_, third) = signed_contract(&suite, ACME, "amy", "Replay Three").await;
    project_of(&suite, ACME, &third).await;

    // Every ContractSigned delivered again: the consumer's cursor rewound
    // to the start while the suite is down, as a restored backup would.
    suite.stop().await;
    let rewound = rewind_cursor(&suite, "delivery", "contracts").await;
    assert!(rewound > 0, "a cursor of the contracts stream was stored");
    suite.restart().await;
    // A fourth contract: once its project shows, the three before it were
    // read again (the stream is read in order).
    let (_, fourth) = signed_contract(&suite, ACME, "amy", "Replay Four").await;
    let last = project_of(&suite, ACME, &fourth).await;

    let mut boss = delivery_as(&suite, ACME, "boss", &[Role::Manager]);
    let all = all_projects(&mut boss, pb::ListProjectsRequest::default())
        .await
        .unwrap();
    let signed = sorted(vec![first.id, second.id, third.id, fourth.id]);
    let families: Vec<String> = all.iter().map(|p| p.contract_family_id.clone()).collect();
    assert_eq!(sorted(families), signed, "one project per contract");
    // The event stream says so too: one DeliveryProjectCreated per
    // contract, read up to the fourth's.
    let mut stream =
        delivery_events(&suite, ACME, &[pb::DeliveryProjectCreated::full_name()]).await;
    let mut seen = Vec::new();
    find(&mut stream, &mut seen, |e: &pb::DeliveryProjectCreated| {
        e.project.as_ref().is_some_and(|p| p.id == last.id)
    })
    .await;
    let created: Vec<String> = all_of(&seen, |_: &pb::DeliveryProjectCreated| true)
        .into_iter()
        .map(|e| e.project.unwrap().contract_family_id)
        .collect();
    assert_eq!(sorted(created), signed, "one creation event per contract");
}

/// Delivery reads the contracts stream at `addr` (a port nothing serves
/// until the test says so).
fn contracts_at(settings: &mut Settings, addr: std::net::SocketAddr) {
    settings.delivery.contracts_url = Some(format!("http://{addr}"));
}

#[tokio::test]
async fn a_crash_during_the_handover_leaves_exactly_one_project_per_signed_contract() {
    const CONTRACTS: usize = 5;
    // Delivery cannot reach contracts while the contracts are signed, so
    // that their hand-offs come in one burst once it can.
    let unreachable = free_port();
    let mut suite = start_delivery_with(|s| contracts_at(s, unreachable)).await;
    let mut signed = Vec::new();
    for i in 0..CONTRACTS {
        let (_, c) = signed_contract(&suite, ACME, "amy", &format!("Crash {i}")).await;
        signed.push(c.id);
    }
    let mut boss = delivery_as(&suite, ACME, "boss", &[Role::Manager]);
    assert!(
        all_projects(&mut boss, pb::ListProjectsRequest::default())
            .await
            .unwrap()
            .is_empty()
    );

    // Contracts reachable: kill the suite as soon as the first project
    // shows, while the others are being handed over.
    serve_service_at(&suite, "contracts", unreachable);
    let at_kill = eventually(WAIT, "the first project", || {
        let mut boss = boss.clone();
        async move {
            let n = all_projects(&mut boss, pb::ListProjectsRequest::default())
                .await
                .ok()?
                .len();
            (n > 0).then_some(n)
        }
    })
    .await;
    suite.kill().await;
    eprintln!("projects when the suite was killed: {at_kill} of {CONTRACTS}");

    // Back, with delivery reading contracts where it runs: every contract
    // handed over, each once.
    suite.settings.delivery.contracts_url = None;
    suite.restart().await;
    let boss = delivery_as(&suite, ACME, "boss", &[Role::Manager]);
    let all = eventually(WAIT, "every contract handed over", || {
        let mut boss = boss.clone();
        async move {
            let all = all_projects(&mut boss, pb::ListProjectsRequest::default())
                .await
                .ok()?;
            (all.len() >= CONTRACTS).then_some(all)
        }
    })
    .await;
    let families: Vec<String> = all.iter().map(|p| p.contract_family_id.clone()).collect();
    assert_eq!(sorted(families), sorted(signed.clone()));
    // A later contract is handed over too, and still nothing twice.
    let (_, later) = signed_contract(&suite, ACME, "amy", "After the crash").await;
    project_of(&suite, ACME, &later).await;
    let mut boss = boss.clone();
    let all = all_projects(&mut boss, pb::ListProjectsRequest::default())
        .await
        .unwrap();
    let mut expected = signed;
    expected.push(later.id);
    assert_eq!(
        sorted(all.iter().map(|p| p.contract_family_id.clone()).collect()),
        sorted(expected)
    );
}

#[tokio::test]
async fn while_contracts_is_down_delivery_serves_and_catches_up_when_it_is_back() {
    let unreachable = free_port();
    let suite = start_delivery_with(|s| contracts_at(s, unreachable)).await;
    let mut p = people(&suite, ACME);
    let (deal, contract) = signed_contract(&suite, ACME, "amy", "Outage").await;

    // Delivery answers meanwhile: its reads, its configuration, and the
    // changes that need no contract.
    assert!(
        all_projects(&mut p.boss, pb::ListProjectsRequest::default())
            .await
            .unwrap()
            .is_empty()
    );
    delivery_config(&mut p.boss).await;
    configure(&mut p, |c| c.unassigned_task_window_days = 3).await;
    p.boss
        .set_capacity(pb::SetCapacityRequest {
            capacity: Some(pb::Capacity {
                person_id: "dan".into(),
                hours_per_week: 30.0,
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let missing = p
        .notifier
        .list_progress_lines(pb::ListProgressLinesRequest {
            account_id: deal.opportunity.account_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(missing.lines.is_empty());

    // Contracts back where delivery looks for it: the handover arrives,
    // once.
    serve_service_at(&suite, "contracts", unreachable);
    let project = project_of(&suite, ACME, &contract).await;
    assert_eq!(project.opportunity_id, deal.opportunity.id);
    assert_eq!(
        ids(&projects_of(&mut p.boss, &contract.id).await),
        [project.id]
    );
}

#[tokio::test]
async fn an_amendments_signature_updates_the_projects_scope_and_milestones_without_a_second_project()
 {
    let suite = start_delivery().await;
    let mut p = people(&suite, ACME);
    let mut stream =
        delivery_events(&suite, ACME, &[pb::DeliveryProjectUpdated::full_name()]).await;
    let (_, v1, project) = delivered(&suite, ACME, "amy", "Amended").await;
    let (before, _) = plan(&mut p.dora, &project.id).await.unwrap();

    // Version 2: a fourth plant; "signing" re-dated, "acceptance" smaller,
    // a new "go-live" payment.
    let year = today_plus(0).year + 1;
    let v2 = amend_and_sign(&suite, ACME, "amy", &v1, |c| {
        c.lines
            .push(line("Fourth plant", 1, money("CNY", 250_000, 0), 0));
        c.milestones = vec![
            percent("signing", date(year, 2, 1), 30),
            percent("acceptance", date(year, 6, 30), 50),
            percent("go-live", date(year, 9, 30), 20),
        ];
    })
    .await;
    assert_eq!(v2.contract_family_id, v1.id);

    let mut seen = Vec::new();
    let updated = find(&mut stream, &mut seen, |e: &pb::DeliveryProjectUpdated| {
        e.project
            .as_ref()
            .is_some_and(|p| p.id == project.id && p.contract_id == v2.id)
    })
    .await;
    let now = get_project(&mut p.boss, &project.id).await.unwrap();
    assert_eq!(
        (now.contract_family_id.as_str(), now.contract_id.as_str()),
        (v1.id.as_str(), v2.id.as_str())
    );
    let handover = now.handover.clone().unwrap();
    assert_eq!(handover.contract_version, 2);
    assert_eq!(handover.lines, v2.lines);
    assert_eq!(handover.total, v2.total);

    let (after, _) = plan(&mut p.dora, &project.id).await.unwrap();
    assert_eq!(after.len(), before.len() + 1, "{after:?}");
    for paid in &v2.milestones {
        let m = named(&after, &paid.name);
        assert_eq!(
            (m.payment_milestone_id.as_str(), m.due_date),
            (paid.id.as_str(), paid.due_date),
            "{} follows version 2",
            paid.name
        );
    }
    // "signing" kept its id (re-dated, not replaced).
    assert_eq!(named(&after, "signing").id, named(&before, "signing").id);
    let changed = sorted(
        updated
            .changed_milestones
            .iter()
            .map(|m| m.name.clone())
            .collect(),
    );
    assert_eq!(changed, ["go-live", "signing"]);
    // Still one project for the family.
    assert_eq!(ids(&projects_of(&mut p.boss, &v1.id).await), [project.id]);
}

// ---------------------------------------------------------------------------
// Milestones, tasks, progress and the progress line.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn progress_is_computed_from_accepted_milestones_and_done_tasks_and_the_progress_line_reaches_the_contacts()
 {
    let suite = start_delivery().await;
    let mut p = people(&suite, ACME);
    let (deal, _, project) = delivered(&suite, ACME, "amy", "Progress").await;
    let (milestones, _) = plan(&mut p.dora, &project.id).await.unwrap();
    let commitment = milestones
        .iter()
        .find(|m| m.origin == pb::MilestoneOrigin::Commitment as i32)
        .unwrap()
        .clone();
    let build = add_task(
        &mut p.dora,
        &project.id,
        &commitment.id,
        "Build",
        "dora",
        6.0,
    )
    .await
    .unwrap();
    let install = add_task(
        &mut p.dora,
        &project.id,
        &commitment.id,
        "Install",
        "dora",
        3.5,
    )
    .await
    .unwrap();
    assert_eq!(
        (install.status, install.project_id.as_str()),
        (pb::TaskStatus::Todo as i32, project.id.as_str())
    );
    set_task_status(&mut p.dora, &install.id, pb::TaskStatus::Done)
        .await
        .unwrap();
    complete_milestone(&mut p.dora, &named(&milestones, "signing").id).await;

    let (milestones, tasks) = plan(&mut p.dora, &project.id).await.unwrap();
    let now = get_project(&mut p.dora, &project.id).await.unwrap();
    let progress = now.progress.unwrap();
    assert_eq!(progress.percent, documented_percent(&milestones, &tasks));
    assert_eq!(
        (
            progress.accepted_milestones,
            progress.total_milestones,
            progress.done_estimate_hours,
            progress.total_estimate_hours
        ),
        (
            1,
            i32::try_from(milestones.len()).unwrap(),
            install.estimate_hours,
            build.estimate_hours + install.estimate_hours
        )
    );
    let m = milestones.iter().find(|m| m.id == commitment.id).unwrap();
    assert_eq!(
        (m.estimate_hours, m.done_estimate_hours),
        (9.5, install.estimate_hours)
    );

    // Progress is never typed in: it is not a path UpdateProject takes.
    let typed = update_project(
        &mut p.dora,
        pb::Project {
            id: project.id.clone(),
            progress: Some(pb::Progress {
                percent: 99,
                ..Default::default()
            }),
            ..Default::default()
        },
        &["progress"],
    )
    .await;
    assert_eq!(
        invalid(typed),
        (Code::InvalidArgument, vec!["update_mask".into()])
    );
    assert_eq!(
        get_project(&mut p.dora, &project.id)
            .await
            .unwrap()
            .progress
            .unwrap()
            .percent,
        progress.percent
    );

    // The project manager sets the customer-facing line...
    let line_text = "environment ready, go-live expected in 3 days";
    let set = update_project(
        &mut p.dora,
        pb::Project {
            id: project.id.clone(),
            progress_line: line_text.into(),
            ..Default::default()
        },
        &["progress_line"],
    )
    .await
    .unwrap();
    assert_eq!(set.progress_line, line_text);
    assert!(set.progress_line_time.is_some());
    let too_long = update_project(
        &mut p.dora,
        pb::Project {
            id: project.id.clone(),
            progress_line: "x".repeat(501),
            ..Default::default()
        },
        &["progress_line"],
    )
    .await;
    assert_eq!(
        invalid(too_long),
        (Code::InvalidArgument, vec!["project.progress_line".into()])
    );
    // ... a member may not (sales change nothing: see the roles test).
    add_members(&mut p, &project, &["dan"]).await;
    let by_member = update_project(
        &mut p.dan,
        pb::Project {
            id: project.id.clone(),
            progress_line: "done!".into(),
            ..Default::default()
        },
        &["progress_line"],
    )
    .await;
    assert_eq!(
        refused(by_member),
        (Code::PermissionDenied, "NOT_PROJECT_MANAGER".into())
    );

    // ... and the integration lists it for the account's contacts.
    let lines = p
        .notifier
        .list_progress_lines(pb::ListProgressLinesRequest {
            account_id: deal.opportunity.account_id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .lines;
    assert_eq!(lines.len(), 1, "{lines:?}");
    let l = &lines[0];
    assert_eq!(
        (
            l.project_id.as_str(),
            l.project_name.as_str(),
            l.account_id.as_str(),
            l.progress_line.as_str(),
            l.progress_percent,
            l.status
        ),
        (
            project.id.as_str(),
            project.name.as_str(),
            deal.opportunity.account_id.as_str(),
            line_text,
            progress.percent,
            pb::ProjectStatus::Active as i32
        )
    );
    let contacts: Vec<(&str, &str)> = l
        .contacts
        .iter()
        .map(|c| (c.name.as_str(), c.phone.as_str()))
        .collect();
    assert_eq!(
        contacts,
        [(deal.contact.name.as_str(), deal.contact.phone.as_str())]
    );
    // Sales do not read the contacts' feed.
    let by_sales = p
        .amy
        .list_progress_lines(pb::ListProgressLinesRequest {
            account_id: deal.opportunity.account_id.clone(),
            ..Default::default()
        })
        .await;
    assert_eq!(code(by_sales), Code::PermissionDenied);
}

// ---------------------------------------------------------------------------
// Work hours.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn work_hours_total_per_project_person_and_milestone_planned_against_actual() {
    let suite = start_delivery().await;
    let mut p = people(&suite, ACME);
    let (_, _, project) = delivered(&suite, ACME, "amy", "Hours").await;
    add_members(&mut p, &project, &["dan"]).await;
    let (milestones, _) = plan(&mut p.dora, &project.id).await.unwrap();
    let signing = named(&milestones, "signing").id.clone();
    let acceptance = named(&milestones, "acceptance").id.clone();
    let pid = project.id.as_str();
    let design = add_task(&mut p.dora, pid, &signing, "Design", "dan", 8.0)
        .await
        .unwrap();
    let review = add_task(&mut p.dora, pid, &signing, "Review", "dora", 4.0)
        .await
        .unwrap();
    let train = add_task(&mut p.dora, pid, &acceptance, "Train", "dan", 2.5)
        .await
        .unwrap();

    let yesterday = today_plus(-1);
    let logs = [
        // (who logs, request id, log)
        (
            "dan",
            "h1",
            hours_log(pid, "", &design.id, "", yesterday, 3.0),
        ),
        (
            "dan",
            "h2",
            hours_log(pid, "", &train.id, "", yesterday, 2.0),
        ),
        (
            "dora",
            "h3",
            hours_log(pid, &signing, "", "", today_plus(0), 1.5),
        ),
        // The project manager logs for a member.
        (
            "dora",
            "h4",
            hours_log(pid, "", &design.id, "dan", today_plus(0), 1.25),
        ),
    ];
    for (who, request_id, log) in logs.clone() {
        let c = if who == "dan" {
            &mut p.dan
        } else {
            &mut p.dora
        };
        let stored = log_hours(c, request_id, log.clone()).await.unwrap();
        let person = if log.person_id.is_empty() {
            who
        } else {
            &log.person_id
        };
        assert_eq!(stored.person_id, person);
        assert_eq!(stored.creator, who);
    }
    // A retried log is stored once.
    let (_, request_id, log) = logs[0].clone();
    log_hours(&mut p.dan, request_id, log).await.unwrap();

    // The totals, derived from what was planned and logged above.
    let planned = |ts: &[&pb::Task]| ts.iter().map(|t| t.estimate_hours).sum::<f64>();
    let actual = |pred: &dyn Fn(&pb::WorkHourLog, &str) -> bool| {
        logs.iter()
            .filter(|(who, _, l)| pred(l, who))
            .map(|(_, _, l)| l.hours)
            .sum::<f64>()
    };
    let person_of = |l: &pb::WorkHourLog, who: &str| -> String {
        if l.person_id.is_empty() {
            who.into()
        } else {
            l.person_id.clone()
        }
    };
    let milestone_of = |l: &pb::WorkHourLog| -> String {
        if !l.milestone_id.is_empty() {
            return l.milestone_id.clone();
        }
        [&design, &review, &train]
            .into_iter()
            .find(|t| t.id == l.task_id)
            .map(|t| t.milestone_id.clone())
            .unwrap()
    };
    let summary = hours_summary(&mut p.boss, pid).await.unwrap();
    let total = summary.project.clone().unwrap();
    assert_eq!(
        (total.key.as_str(), total.planned_hours, total.actual_hours),
        (
            pid,
            planned(&[&design, &review, &train]),
            actual(&|_, _| true)
        )
    );
    let of = |totals: &[pb::HoursTotal], key: &str| -> (f64, f64) {
        totals
            .iter()
            .find(|t| t.key == key)
            .map(|t| (t.planned_hours, t.actual_hours))
            .unwrap_or_else(|| panic!("a total for {key} in {totals:?}"))
    };
    assert_eq!(
        of(&summary.people, "dan"),
        (
            planned(&[&design, &train]),
            actual(&|l, who| person_of(l, who) == "dan")
        )
    );
    assert_eq!(
        of(&summary.people, "dora"),
        (
            planned(&[&review]),
            actual(&|l, who| person_of(l, who) == "dora")
        )
    );
    assert_eq!(
        of(&summary.milestones, &signing),
        (
            planned(&[&design, &review]),
            actual(&|l, _| milestone_of(l) == signing)
        )
    );
    assert_eq!(
        of(&summary.milestones, &acceptance),
        (
            planned(&[&train]),
            actual(&|l, _| milestone_of(l) == acceptance)
        )
    );
    // The project shows actual hours against the reviewed workload.
    let profitability = get_project(&mut p.boss, pid)
        .await
        .unwrap()
        .profitability
        .unwrap();
    assert_eq!(
        (profitability.planned_hours, profitability.actual_hours),
        (total.planned_hours, total.actual_hours)
    );
    // The logs, newest first, and one person's.
    let dans = p
        .dora
        .list_work_hours(pb::ListWorkHoursRequest {
            project_id: pid.into(),
            person_id: "dan".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .logs;
    let hours: Vec<f64> = dans.iter().map(|l| l.hours).collect();
    assert_eq!(hours, [1.25, 2.0, 3.0]);
}

#[tokio::test]
async fn bad_work_hours_are_refused_naming_the_field_and_nothing_is_logged() {
    let suite = start_delivery().await;
    let mut p = people(&suite, ACME);
    let (_, _, project) = delivered(&suite, ACME, "amy", "Bad Hours").await;
    let (_, _, other) = delivered(&suite, ACME, "amy", "Other Project").await;
    add_members(&mut p, &project, &["dan"]).await;
    let (milestones, _) = plan(&mut p.dora, &project.id).await.unwrap();
    let signing = named(&milestones, "signing").id.clone();
    let (theirs, _) = plan(&mut p.dora, &other.id).await.unwrap();
    let their_signing = named(&theirs, "signing").id.clone();
    let their_task = add_task(
        &mut p.dora,
        &other.id,
        &their_signing,
        "Theirs",
        "dora",
        1.0,
    )
    .await
    .unwrap();
    let pid = project.id.as_str();
    let day = today_plus(-2);

    // 20 hours, then 5 more on the same day across another log: over 24.
    log_hours(
        &mut p.dan,
        "day-1",
        hours_log(pid, &signing, "", "", day, 20.0),
    )
    .await
    .unwrap();
    let over = log_hours(
        &mut p.dan,
        "day-2",
        hours_log(pid, &signing, "", "", day, 5.0),
    )
    .await;
    let err = over.unwrap_err();
    assert_eq!(
        (err.code(), violated_fields(&err), reason(&err)),
        (
            Code::InvalidArgument,
            vec!["log.hours".to_owned()],
            "DAY_OVER_24_HOURS".to_owned()
        ),
        "{err:?}"
    );
    // 4 more fit exactly.
    log_hours(
        &mut p.dan,
        "day-3",
        hours_log(pid, &signing, "", "", day, 4.0),
    )
    .await
    .unwrap();

    let bad = [
        (
            "neg",
            hours_log(pid, &signing, "", "", today_plus(-1), -1.0),
            "log.hours",
        ),
        (
            "zero",
            hours_log(pid, &signing, "", "", today_plus(-1), 0.0),
            "log.hours",
        ),
        (
            "25h",
            hours_log(pid, &signing, "", "", today_plus(-3), 25.0),
            "log.hours",
        ),
        (
            "future",
            hours_log(pid, &signing, "", "", today_plus(1), 1.0),
            "log.work_date",
        ),
        (
            "their-task",
            hours_log(pid, "", &their_task.id, "", today_plus(-1), 1.0),
            "log.task_id",
        ),
        (
            "their-milestone",
            hours_log(pid, &their_signing, "", "", today_plus(-1), 1.0),
            "log.milestone_id",
        ),
    ];
    for (request_id, log, field) in bad {
        let result = log_hours(&mut p.dan, request_id, log).await;
        assert_eq!(
            invalid(result),
            (Code::InvalidArgument, vec![field.to_owned()]),
            "{request_id}"
        );
    }
    let logged = hours_summary(&mut p.dora, pid)
        .await
        .unwrap()
        .project
        .unwrap()
        .actual_hours;
    assert_eq!(logged, 24.0, "only the two good logs");

    // No hours on an accepted milestone.
    let done = add_milestone(&mut p.dora, pid, "Kick-off", today_plus(3))
        .await
        .unwrap();
    complete_milestone(&mut p.dora, &done.id).await;
    let late = log_hours(
        &mut p.dan,
        "late",
        hours_log(pid, &done.id, "", "", today_plus(0), 1.0),
    )
    .await;
    assert_eq!(
        refused(late),
        (Code::FailedPrecondition, "MILESTONE_ACCEPTED".into())
    );
    // A member logs only for themselves.
    let for_other = log_hours(
        &mut p.dan,
        "for-dora",
        hours_log(pid, &signing, "", "dora", today_plus(0), 1.0),
    )
    .await;
    assert_eq!(code(for_other), Code::PermissionDenied);
}

// ---------------------------------------------------------------------------
// Acceptance and go-live.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn acceptance_needs_every_task_done_is_final_and_a_payment_milestones_names_what_to_invoice()
{
    let suite = start_delivery().await;
    let mut p = people(&suite, ACME);
    let mut stream = delivery_events(&suite, ACME, &[pb::MilestoneAccepted::full_name()]).await;
    let (deal, contract, project) = delivered(&suite, ACME, "amy", "Acceptance").await;
    add_members(&mut p, &project, &["dan"]).await;
    let pid = project.id.as_str();
    let (milestones, _) = plan(&mut p.dora, pid).await.unwrap();
    let signing = named(&milestones, "signing").clone();
    let done = add_task(&mut p.dora, pid, &signing.id, "Done", "dan", 2.0)
        .await
        .unwrap();
    let todo = add_task(&mut p.dora, pid, &signing.id, "Todo", "dan", 2.0)
        .await
        .unwrap();
    let doing = add_task(&mut p.dora, pid, &signing.id, "Doing", "dan", 2.0)
        .await
        .unwrap();
    set_task_status(&mut p.dan, &done.id, pb::TaskStatus::Done)
        .await
        .unwrap();
    set_task_status(&mut p.dan, &doing.id, pb::TaskStatus::InProgress)
        .await
        .unwrap();

    // Not ready for acceptance yet: the status is named, with the open tasks.
    let (c, r, violations) = unmet(accept(&mut p.dora, &signing.id).await);
    assert_eq!(
        (c, r.as_str()),
        (Code::FailedPrecondition, "MILESTONE_NOT_ACCEPTABLE")
    );
    assert!(
        violations.iter().any(|(t, _)| t == "STATUS"),
        "{violations:?}"
    );
    start_milestone(&mut p.dora, &signing.id).await.unwrap();
    mark_ready(&mut p.dora, &signing.id).await.unwrap();
    // Ready, but two tasks are open: each is listed, the done one is not.
    let (c, r, violations) = unmet(accept(&mut p.dora, &signing.id).await);
    assert_eq!(
        (c, r.as_str()),
        (Code::FailedPrecondition, "MILESTONE_NOT_ACCEPTABLE")
    );
    assert_eq!(
        sorted(violations),
        sorted(vec![
            ("TASK_NOT_DONE".to_owned(), todo.id.clone()),
            ("TASK_NOT_DONE".to_owned(), doing.id.clone()),
        ])
    );
    for t in [&todo, &doing] {
        set_task_status(&mut p.dan, &t.id, pb::TaskStatus::Done)
            .await
            .unwrap();
    }
    // Only the project manager records an acceptance; an integration only
    // an e-signed one.
    assert_eq!(
        refused(accept(&mut p.dan, &signing.id).await),
        (Code::PermissionDenied, "NOT_PROJECT_MANAGER".into())
    );
    assert_eq!(
        invalid(accept(&mut p.esign, &signing.id).await),
        (Code::InvalidArgument, vec!["signature_reference".into()])
    );
    let accepted = p
        .esign
        .accept_milestone(pb::AcceptMilestoneRequest {
            id: signing.id.clone(),
            accepted_by: "Li Lei".into(),
            signature_reference: "esign-acceptance-1".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .milestone
        .unwrap();
    let acceptance = accepted.acceptance.clone().unwrap();
    assert_eq!(
        (
            accepted.status,
            acceptance.recorded_by.as_str(),
            acceptance.channel,
            acceptance.signature_reference.as_str(),
            acceptance.accepted_by.as_str()
        ),
        (
            pb::MilestoneStatus::Accepted as i32,
            "esign",
            pb::AcceptanceChannel::ESignature as i32,
            "esign-acceptance-1",
            "Li Lei"
        )
    );

    // ERP learns which payment milestone to invoice.
    let paid = contract
        .milestones
        .iter()
        .find(|m| m.name == "signing")
        .unwrap();
    let mut seen = Vec::new();
    let event = find(&mut stream, &mut seen, |e: &pb::MilestoneAccepted| {
        e.milestone.as_ref().is_some_and(|m| m.id == signing.id)
    })
    .await;
    assert_eq!(
        (
            event.payment_milestone_id.as_str(),
            event.contract_id.as_str(),
            event.account_id.as_str()
        ),
        (
            paid.id.as_str(),
            contract.id.as_str(),
            deal.opportunity.account_id.as_str()
        )
    );

    // Accepted is final: not accepted again, not reopened, not edited.
    let (c, r, violations) = unmet(accept(&mut p.dora, &signing.id).await);
    assert_eq!(
        (c, r.as_str()),
        (Code::FailedPrecondition, "MILESTONE_NOT_ACCEPTABLE")
    );
    assert!(
        violations.iter().any(|(t, _)| t == "ACCEPTED"),
        "{violations:?}"
    );
    assert_eq!(
        refused(start_milestone(&mut p.dora, &signing.id).await),
        (Code::FailedPrecondition, "MILESTONE_ACCEPTED".into())
    );
    assert_eq!(
        refused(mark_ready(&mut p.dora, &signing.id).await),
        (Code::FailedPrecondition, "MILESTONE_ACCEPTED".into())
    );
    let redate = p
        .dora
        .update_milestone(pb::UpdateMilestoneRequest {
            milestone: Some(pb::Milestone {
                id: signing.id.clone(),
                due_date: Some(today_plus(30)),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["due_date".into()],
            }),
        })
        .await;
    assert_eq!(
        refused(redate),
        (Code::FailedPrecondition, "MILESTONE_ACCEPTED".into())
    );
    assert_eq!(
        refused(add_task(&mut p.dora, pid, &signing.id, "More", "dan", 1.0).await),
        (Code::FailedPrecondition, "MILESTONE_ACCEPTED".into())
    );
    assert_eq!(
        refused(set_task_status(&mut p.dan, &done.id, pb::TaskStatus::Todo).await),
        (Code::FailedPrecondition, "MILESTONE_ACCEPTED".into())
    );

    // A milestone of the team's own names no payment milestone.
    let extra = add_milestone(&mut p.dora, pid, "Training", today_plus(10))
        .await
        .unwrap();
    complete_milestone(&mut p.dora, &extra.id).await;
    let event = find(&mut stream, &mut seen, |e: &pb::MilestoneAccepted| {
        e.milestone.as_ref().is_some_and(|m| m.id == extra.id)
    })
    .await;
    assert_eq!(event.payment_milestone_id, "");
}

#[tokio::test]
async fn go_live_needs_every_milestone_accepted_and_completes_the_project_into_the_service_stage() {
    let suite = start_delivery().await;
    let mut p = people(&suite, ACME);
    let mut stream =
        delivery_events(&suite, ACME, &[pb::DeliveryProjectCompleted::full_name()]).await;
    let (deal, contract, project) = delivered(&suite, ACME, "amy", "Go Live").await;
    let pid = project.id.as_str();
    let (milestones, _) = plan(&mut p.dora, pid).await.unwrap();
    let open = |ms: &[pb::Milestone]| -> Vec<(String, String)> {
        sorted(
            ms.iter()
                .map(|m| ("MILESTONE_NOT_ACCEPTED".to_owned(), m.id.clone()))
                .collect(),
        )
    };

    // Every open milestone is listed, down to the last.
    let (c, r, violations) = unmet(go_live(&mut p.dora, pid).await);
    assert_eq!(
        (c, r.as_str()),
        (Code::FailedPrecondition, "OPEN_MILESTONES")
    );
    assert_eq!(sorted(violations), open(&milestones));
    let (last, rest) = milestones.split_last().unwrap();
    for m in rest {
        complete_milestone(&mut p.dora, &m.id).await;
    }
    let (_, _, violations) = unmet(go_live(&mut p.dora, pid).await);
    assert_eq!(sorted(violations), open(std::slice::from_ref(last)));
    // Sales cannot take a project live.
    assert_eq!(code(go_live(&mut p.amy, pid).await), Code::PermissionDenied);

    // The last one accepted: go-live completes the project.
    complete_milestone(&mut p.dora, &last.id).await;
    let live = go_live(&mut p.dora, pid).await.unwrap();
    let team = pb::ServiceTeam {
        service_manager_id: "sam".into(),
        delivery_manager_id: "dora".into(),
        account_manager_id: "amy".into(),
    };
    assert_eq!(
        (
            live.status,
            live.service_team.clone(),
            live.service_level.as_str(),
            live.go_live_date
        ),
        (
            pb::ProjectStatus::Completed as i32,
            Some(team.clone()),
            "gold",
            Some(today_plus(0))
        )
    );
    assert_eq!(live.progress.unwrap().percent, 100);
    let mut seen = Vec::new();
    let completed = find(
        &mut stream,
        &mut seen,
        |e: &pb::DeliveryProjectCompleted| e.project.as_ref().is_some_and(|p| p.id == project.id),
    )
    .await;
    assert_eq!(
        (
            completed.account_id.as_str(),
            completed.contract_id.as_str(),
            completed.contract_term,
            completed.service_level.as_str(),
            completed.service_team.clone()
        ),
        (
            deal.opportunity.account_id.as_str(),
            contract.id.as_str(),
            contract.term,
            "gold",
            Some(team)
        )
    );
    // Complete is final.
    assert_eq!(
        refused(go_live(&mut p.dora, pid).await),
        (Code::FailedPrecondition, "PROJECT_COMPLETED".into())
    );
    assert_eq!(
        refused(add_milestone(&mut p.dora, pid, "After", today_plus(5)).await),
        (Code::FailedPrecondition, "PROJECT_COMPLETED".into())
    );
}

// ---------------------------------------------------------------------------
// Risk alerts.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn an_unassigned_task_near_its_due_date_raises_one_alert_resolved_once_it_is_assigned() {
    let suite = start_delivery().await;
    let mut p = people(&suite, ACME);
    let mut stream = delivery_events(
        &suite,
        ACME,
        &[
            pb::DeliveryRiskRaised::full_name(),
            pb::DeliveryRiskResolved::full_name(),
        ],
    )
    .await;
    let (_, _, project) = delivered(&suite, ACME, "amy", "Unassigned").await;
    let pid = project.id.as_str();
    add_members(&mut p, &project, &["dan"]).await;
    let window = i64::from(
        delivery_config(&mut p.boss)
            .await
            .unassigned_task_window_days,
    );
    // Due within the window, and one beyond it.
    let near = add_milestone(&mut p.dora, pid, "Pilot", today_plus(window - 1))
        .await
        .unwrap();
    let far = add_milestone(&mut p.dora, pid, "Rollout", today_plus(window + 30))
        .await
        .unwrap();
    let later = add_task(&mut p.dora, pid, &far.id, "Later", "", 4.0)
        .await
        .unwrap();
    let task = add_task(&mut p.dora, pid, &near.id, "Configure", "", 4.0)
        .await
        .unwrap();

    let mut seen = Vec::new();
    let raised = find(&mut stream, &mut seen, |e: &pb::DeliveryRiskRaised| {
        e.alert.as_ref().is_some_and(|a| a.task_id == task.id)
    })
    .await
    .alert
    .unwrap();
    assert_eq!(
        (
            raised.kind,
            raised.status,
            raised.project_id.as_str(),
            raised.milestone_id.as_str()
        ),
        (
            pb::RiskKind::UnassignedTask as i32,
            pb::RiskStatus::Open as i32,
            pid,
            near.id.as_str()
        )
    );
    assert!(
        raised.responsible_ids.contains(&"dora".to_owned()),
        "the project manager is told: {raised:?}"
    );

    // Further sweeps and changes keep that one alert: a change of the task
    // and the overdue alert of a milestone due yesterday, raised after it.
    let renamed = pb::Task {
        id: task.id.clone(),
        title: "Configure the line".into(),
        ..Default::default()
    };
    update_task(&mut p.dora, renamed, &["title"]).await.unwrap();
    let overdue = add_milestone(&mut p.dora, pid, "Late", today_plus(-1))
        .await
        .unwrap();
    find(&mut stream, &mut seen, |e: &pb::DeliveryRiskRaised| {
        e.alert
            .as_ref()
            .is_some_and(|a| a.milestone_id == overdue.id)
    })
    .await;
    let about_task = alerts_about(&mut p.dora, pid, pb::RiskKind::UnassignedTask, &task.id).await;
    assert_eq!(about_task.len(), 1, "{about_task:?}");
    assert_eq!(about_task[0].id, raised.id);
    assert_eq!(
        all_of(&seen, |e: &pb::DeliveryRiskRaised| {
            e.alert.as_ref().is_some_and(|a| a.task_id == task.id)
        })
        .len(),
        1
    );
    // The task whose milestone is far off raises nothing.
    assert!(
        alerts_about(&mut p.dora, pid, pb::RiskKind::UnassignedTask, &later.id)
            .await
            .is_empty()
    );

    // Assigned: the cause is gone, the alert resolved.
    assign(&mut p.dora, &task.id, "dan").await.unwrap();
    let resolved = find(&mut stream, &mut seen, |e: &pb::DeliveryRiskResolved| {
        e.alert.as_ref().is_some_and(|a| a.id == raised.id)
    })
    .await
    .alert
    .unwrap();
    assert_eq!(resolved.status, pb::RiskStatus::Resolved as i32);
    assert!(resolved.resolve_time.is_some());
    assert!(resolved.responsible_ids.contains(&"dora".to_owned()));
    let about_task = alerts_about(&mut p.dora, pid, pb::RiskKind::UnassignedTask, &task.id).await;
    assert_eq!(
        about_task
            .iter()
            .map(|a| (a.id.clone(), a.status))
            .collect::<Vec<_>>(),
        [(raised.id.clone(), pb::RiskStatus::Resolved as i32)]
    );
}

#[tokio::test]
async fn an_overdue_milestone_raises_an_alert_acknowledged_by_the_responsible_and_resolved_on_acceptance()
 {
    let suite = start_delivery().await;
    let mut p = people(&suite, ACME);
    let mut stream = delivery_events(
        &suite,
        ACME,
        &[
            pb::DeliveryRiskRaised::full_name(),
            pb::DeliveryRiskAcknowledged::full_name(),
            pb::DeliveryRiskResolved::full_name(),
        ],
    )
    .await;
    let (_, _, project) = delivered(&suite, ACME, "amy", "Overdue").await;
    let pid = project.id.as_str();
    add_members(&mut p, &project, &["dan"]).await;
    // Owned by dan: he is told too.
    let late = add_owned_milestone(&mut p.dora, pid, "Data migration", today_plus(-2), "dan")
        .await
        .unwrap();
    assert_eq!(late.owner_id, "dan");

    let mut seen = Vec::new();
    let raised = eventually(WAIT, "the overdue alert naming dan", || {
        let mut dora = p.dora.clone();
        let id = late.id.clone();
        async move {
            alerts_about(&mut dora, "", pb::RiskKind::MilestoneOverdue, &id)
                .await
                .into_iter()
                .find(|a| a.responsible_ids.contains(&"dan".to_owned()))
        }
    })
    .await;
    assert_eq!(raised.status, pb::RiskStatus::Open as i32);
    assert!(
        raised.responsible_ids.contains(&"dora".to_owned()),
        "{raised:?}"
    );
    let event = find(&mut stream, &mut seen, |e: &pb::DeliveryRiskRaised| {
        e.alert.as_ref().is_some_and(|a| a.milestone_id == late.id)
    })
    .await;
    assert_eq!(
        event.alert.unwrap().kind,
        pb::RiskKind::MilestoneOverdue as i32
    );

    // Only the responsible (and managers) acknowledge it.
    assert_eq!(
        refused(acknowledge(&mut p.dean, &raised.id).await).0,
        Code::NotFound,
        "dean does not see the project"
    );
    let acked = acknowledge(&mut p.dan, &raised.id).await.unwrap();
    assert_eq!(
        (acked.status, acked.acknowledged_by.as_str()),
        (pb::RiskStatus::Acknowledged as i32, "dan")
    );
    assert!(acked.acknowledge_time.is_some());
    find(
        &mut stream,
        &mut seen,
        |e: &pb::DeliveryRiskAcknowledged| e.alert.as_ref().is_some_and(|a| a.id == raised.id),
    )
    .await;
    assert_eq!(
        refused(acknowledge(&mut p.dora, &raised.id).await),
        (Code::FailedPrecondition, "NOT_OPEN".into())
    );
    // Sweeps go on: still this one alert, acknowledged.
    let barrier = add_milestone(&mut p.dora, pid, "Barrier", today_plus(-1))
        .await
        .unwrap();
    find(&mut stream, &mut seen, |e: &pb::DeliveryRiskRaised| {
        e.alert
            .as_ref()
            .is_some_and(|a| a.milestone_id == barrier.id)
    })
    .await;
    let about = alerts_about(&mut p.dora, pid, pb::RiskKind::MilestoneOverdue, &late.id).await;
    assert_eq!(
        about
            .iter()
            .map(|a| (a.id.clone(), a.status))
            .collect::<Vec<_>>(),
        [(raised.id.clone(), pb::RiskStatus::Acknowledged as i32)]
    );

    // Accepted: no longer overdue, resolved.
    complete_milestone(&mut p.dora, &late.id).await;
    let resolved = find(&mut stream, &mut seen, |e: &pb::DeliveryRiskResolved| {
        e.alert.as_ref().is_some_and(|a| a.id == raised.id)
    })
    .await
    .alert
    .unwrap();
    assert_eq!(resolved.status, pb::RiskStatus::Resolved as i32);
}

#[tokio::test]
async fn hours_over_budget_beyond_the_tenant_threshold_raise_one_alert() {
    let suite = start_delivery().await;
    let mut p = people(&suite, ACME);
    let mut stream = delivery_events(&suite, ACME, &[pb::DeliveryRiskRaised::full_name()]).await;
    const THRESHOLD: i32 = 50;
    configure(&mut p, |c| c.over_budget_threshold_percent = THRESHOLD).await;
    let (_, _, project) = delivered(&suite, ACME, "amy", "Budget").await;
    let pid = project.id.as_str();
    let pilot = add_milestone(&mut p.dora, pid, "Pilot", today_plus(40))
        .await
        .unwrap();
    const ESTIMATE: f64 = 10.0;
    add_task(&mut p.dora, pid, &pilot.id, "Pilot line", "dora", ESTIMATE)
        .await
        .unwrap();
    let budget = ESTIMATE * f64::from(100 + THRESHOLD) / 100.0;

    // Up to the threshold: no alert, after the change nor after a check.
    let within = budget - 1.0;
    log_hours(
        &mut p.dora,
        "within",
        hours_log(pid, &pilot.id, "", "", today_plus(-1), within),
    )
    .await
    .unwrap();
    // A sweep after that change: an overdue milestone's alert shows it ran.
    let mut seen = Vec::new();
    let first_barrier = add_milestone(&mut p.dora, pid, "First barrier", today_plus(-1))
        .await
        .unwrap();
    find(&mut stream, &mut seen, |e: &pb::DeliveryRiskRaised| {
        e.alert
            .as_ref()
            .is_some_and(|a| a.milestone_id == first_barrier.id)
    })
    .await;
    assert!(
        alerts_about(&mut p.dora, pid, pb::RiskKind::OverBudget, &pilot.id)
            .await
            .is_empty()
    );
    // Beyond it: one alert naming the project manager.
    log_hours(
        &mut p.dora,
        "beyond",
        hours_log(pid, &pilot.id, "", "", today_plus(-2), 2.0),
    )
    .await
    .unwrap();
    let raised = find(&mut stream, &mut seen, |e: &pb::DeliveryRiskRaised| {
        e.alert.as_ref().is_some_and(|a| {
            a.kind == pb::RiskKind::OverBudget as i32 && a.milestone_id == pilot.id
        })
    })
    .await
    .alert
    .unwrap();
    assert!(raised.responsible_ids.contains(&"dora".to_owned()));
    // More hours, more sweeps: still that one.
    log_hours(
        &mut p.dora,
        "more",
        hours_log(pid, &pilot.id, "", "", today_plus(-3), 1.0),
    )
    .await
    .unwrap();
    let barrier = add_milestone(&mut p.dora, pid, "Barrier", today_plus(-1))
        .await
        .unwrap();
    find(&mut stream, &mut seen, |e: &pb::DeliveryRiskRaised| {
        e.alert
            .as_ref()
            .is_some_and(|a| a.milestone_id == barrier.id)
    })
    .await;
    let about = alerts_about(&mut p.dora, pid, pb::RiskKind::OverBudget, &pilot.id).await;
    assert_eq!(
        about.iter().map(|a| a.id.clone()).collect::<Vec<_>>(),
        [raised.id]
    );
}

#[tokio::test]
async fn a_persons_planned_load_over_their_capacity_raises_a_resource_shortage_until_it_fits() {
    let suite = start_delivery().await;
    let mut p = people(&suite, ACME);
    let mut stream = delivery_events(
        &suite,
        ACME,
        &[
            pb::DeliveryRiskRaised::full_name(),
            pb::DeliveryRiskResolved::full_name(),
        ],
    )
    .await;
    // A one-week window: the window's capacity is the weekly capacity.
    configure(&mut p, |c| c.load_window_days = 7).await;
    let set_capacity = |hours: f64| pb::SetCapacityRequest {
        capacity: Some(pb::Capacity {
            person_id: "dan".into(),
            hours_per_week: hours,
            ..Default::default()
        }),
    };
    p.boss.set_capacity(set_capacity(10.0)).await.unwrap();
    // Sales do not set capacities; a bad one names the field.
    assert_eq!(
        code(p.amy.set_capacity(set_capacity(20.0)).await),
        Code::PermissionDenied
    );
    assert_eq!(
        invalid(p.boss.set_capacity(set_capacity(169.0)).await),
        (
            Code::InvalidArgument,
            vec!["capacity.hours_per_week".into()]
        )
    );

    // dan gets 6 + 7 hours due within the week on two projects.
    let (_, _, one) = delivered(&suite, ACME, "amy", "Load One").await;
    let (_, _, two) = delivered(&suite, ACME, "amy", "Load Two").await;
    let mut planned = 0.0;
    for (project, hours) in [(&one, 6.0), (&two, 7.0)] {
        add_members(&mut p, project, &["dan"]).await;
        let soon = add_milestone(&mut p.dora, &project.id, "Soon", today_plus(3))
            .await
            .unwrap();
        add_task(&mut p.dora, &project.id, &soon.id, "Work", "dan", hours)
            .await
            .unwrap();
        planned += hours;
    }
    let mut seen = Vec::new();
    let raised = find(&mut stream, &mut seen, |e: &pb::DeliveryRiskRaised| {
        e.alert.as_ref().is_some_and(|a| {
            a.kind == pb::RiskKind::ResourceShortage as i32 && a.person_id == "dan"
        })
    })
    .await
    .alert
    .unwrap();
    assert_eq!(raised.project_id, "", "a shortage spans projects");
    assert!(
        raised.responsible_ids.contains(&"dan".to_owned()),
        "{raised:?}"
    );
    let capacities = p
        .boss
        .list_capacities(pb::ListCapacitiesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .capacities;
    let dan = capacities.iter().find(|c| c.person_id == "dan").unwrap();
    assert_eq!(
        (
            dan.hours_per_week,
            dan.planned_hours,
            dan.window_capacity_hours,
            dan.is_default
        ),
        (10.0, planned, 10.0, false)
    );

    // Enough capacity: resolved.
    p.boss.set_capacity(set_capacity(planned)).await.unwrap();
    let resolved = find(&mut stream, &mut seen, |e: &pb::DeliveryRiskResolved| {
        e.alert.as_ref().is_some_and(|a| a.id == raised.id)
    })
    .await
    .alert
    .unwrap();
    assert_eq!(resolved.status, pb::RiskStatus::Resolved as i32);
    assert_eq!(
        all_of(&seen, |e: &pb::DeliveryRiskRaised| {
            e.alert.as_ref().is_some_and(|a| a.person_id == "dan")
        })
        .len(),
        1,
        "one alert for the cause"
    );
}

// ---------------------------------------------------------------------------
// Who sees and changes what.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn another_tenants_project_is_not_found_on_every_call_and_absent_from_lists_and_streams() {
    let suite = start_delivery().await;
    let mut acme = people(&suite, ACME);
    let (deal, _, project) = delivered(&suite, ACME, "amy", "Tenant A").await;
    let pid = project.id.as_str();
    let (milestones, _) = plan(&mut acme.dora, pid).await.unwrap();
    let m = milestones[0].id.clone();
    let near = add_milestone(&mut acme.dora, pid, "Near", today_plus(1))
        .await
        .unwrap();
    let task = add_task(&mut acme.dora, pid, &near.id, "Nobody's", "", 2.0)
        .await
        .unwrap();
    let alert = eventually(WAIT, "acme's alert", || {
        let mut dora = acme.dora.clone();
        let id = task.id.clone();
        async move {
            alerts_about(&mut dora, pid, pb::RiskKind::UnassignedTask, &id)
                .await
                .into_iter()
                .next()
        }
    })
    .await;

    // Globex's own project, the last event its stream will show.
    let (_, _, theirs) = delivered(&suite, GLOBEX, "gus", "Tenant B").await;
    let mut g = people(&suite, GLOBEX);
    for c in [&mut g.boss, &mut g.dora, &mut g.root] {
        assert_eq!(code(get_project(c, pid).await), Code::NotFound);
    }
    let all = all_projects(&mut g.boss, pb::ListProjectsRequest::default())
        .await
        .unwrap();
    assert_eq!(ids(&all), [theirs.id.as_str()]);
    let by_account = all_projects(
        &mut g.boss,
        pb::ListProjectsRequest {
            account_id: deal.opportunity.account_id.clone(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    assert!(by_account.is_empty());

    let nf = |r: Result<(), tonic::Status>, what: &str| {
        assert_eq!(r.unwrap_err().code(), Code::NotFound, "{what}");
    };
    let gd = &mut g.dora;
    nf(plan(gd, pid).await.map(drop), "ListMilestones");
    nf(
        update_project(
            &mut g.boss,
            pb::Project {
                id: pid.into(),
                name: "Taken".into(),
                ..Default::default()
            },
            &["name"],
        )
        .await
        .map(drop),
        "UpdateProject",
    );
    nf(
        add_milestone(gd, pid, "Theirs", today_plus(9))
            .await
            .map(drop),
        "CreateMilestone",
    );
    nf(
        gd.update_milestone(pb::UpdateMilestoneRequest {
            milestone: Some(pb::Milestone {
                id: m.clone(),
                name: "Taken".into(),
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["name".into()],
            }),
        })
        .await
        .map(drop),
        "UpdateMilestone",
    );
    nf(start_milestone(gd, &m).await.map(drop), "StartMilestone");
    nf(mark_ready(gd, &m).await.map(drop), "MarkMilestoneReady");
    nf(accept(gd, &m).await.map(drop), "AcceptMilestone");
    nf(go_live(gd, pid).await.map(drop), "GoLive");
    nf(
        add_task(gd, pid, &m, "Theirs", "", 1.0).await.map(drop),
        "CreateTask",
    );
    nf(assign(gd, &task.id, "gus").await.map(drop), "UpdateTask");
    nf(
        log_hours(gd, "theirs", hours_log(pid, &m, "", "", today_plus(0), 1.0))
            .await
            .map(drop),
        "LogWorkHours",
    );
    nf(
        gd.list_work_hours(pb::ListWorkHoursRequest {
            project_id: pid.into(),
            ..Default::default()
        })
        .await
        .map(drop),
        "ListWorkHours",
    );
    nf(hours_summary(gd, pid).await.map(drop), "GetHoursSummary");
    nf(
        acknowledge(&mut g.boss, &alert.id).await.map(drop),
        "AcknowledgeRiskAlert",
    );
    // Nor in their audit trail or capacities.
    let trail = g
        .boss
        .list_audit_entries(pb::ListAuditEntriesRequest {
            subject_id: pid.into(),
            ..Default::default()
        })
        .await;
    match trail {
        Ok(r) => assert!(r.get_ref().entries.is_empty(), "{r:?}"),
        Err(err) => assert_eq!(err.code(), Code::NotFound, "{err:?}"),
    }
    acme.boss
        .set_capacity(pb::SetCapacityRequest {
            capacity: Some(pb::Capacity {
                person_id: "acme-only".into(),
                hours_per_week: 12.0,
                ..Default::default()
            }),
        })
        .await
        .unwrap();
    let capacities = g
        .boss
        .list_capacities(pb::ListCapacitiesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .capacities;
    assert!(
        capacities.iter().all(|c| c.person_id != "acme-only"),
        "{capacities:?}"
    );
    // Filters naming acme's records find nothing of theirs.
    let alerts = all_alerts(&mut g.boss, pb::ListRiskAlertsRequest::default())
        .await
        .unwrap();
    assert!(alerts.iter().all(|a| a.project_id != pid), "{alerts:?}");
    match all_alerts(
        &mut g.boss,
        pb::ListRiskAlertsRequest {
            project_id: pid.into(),
            ..Default::default()
        },
    )
    .await
    {
        Ok(alerts) => assert!(alerts.is_empty(), "{alerts:?}"),
        Err(err) => assert_eq!(err.code(), Code::NotFound, "{err:?}"),
    }
    match g
        .notifier
        .list_progress_lines(pb::ListProgressLinesRequest {
            account_id: deal.opportunity.account_id.clone(),
            ..Default::default()
        })
        .await
    {
        Ok(r) => assert!(r.get_ref().lines.is_empty(), "{r:?}"),
        Err(err) => assert_eq!(err.code(), Code::NotFound, "{err:?}"),
    }

    // Globex's delivery stream, read up to its own project, holds none of
    // acme's events.
    let mut stream = delivery_events(&suite, GLOBEX, &[]).await;
    let mut seen = Vec::new();
    find(&mut stream, &mut seen, |e: &pb::DeliveryProjectCreated| {
        e.project.as_ref().is_some_and(|p| p.id == theirs.id)
    })
    .await;
    let foreign: Vec<&ev::Event> = seen.iter().filter(|e| e.tenant_id != GLOBEX).collect();
    assert!(foreign.is_empty(), "{foreign:?}");
    assert!(seen.iter().all(|e| e.subject_id != pid));
    // Acme's does hold them: the project exists.
    assert_eq!(get_project(&mut acme.boss, pid).await.unwrap().id, pid);
}

#[tokio::test]
async fn sales_see_their_accounts_projects_and_change_none_while_managers_see_the_tenant() {
    let suite = start_delivery().await;
    let mut p = people(&suite, ACME);
    let (_, _, amys) = delivered(&suite, ACME, "amy", "Amy Account").await;
    let (_, _, bobs) = delivered(&suite, ACME, "bob", "Bob Account").await;

    // Sales: their accounts' projects only.
    let listed = all_projects(&mut p.amy, pb::ListProjectsRequest::default())
        .await
        .unwrap();
    assert_eq!(ids(&listed), [amys.id.as_str()]);
    let listed = all_projects(&mut p.bob, pb::ListProjectsRequest::default())
        .await
        .unwrap();
    assert_eq!(ids(&listed), [bobs.id.as_str()]);
    assert_eq!(
        code(get_project(&mut p.amy, &bobs.id).await),
        Code::NotFound
    );
    assert_eq!(code(plan(&mut p.amy, &bobs.id).await), Code::NotFound);
    assert_eq!(get_project(&mut p.amy, &amys.id).await.unwrap().id, amys.id);
    plan(&mut p.amy, &amys.id).await.unwrap();
    hours_summary(&mut p.amy, &amys.id).await.unwrap();

    // ... and change none of them.
    let rename = pb::Project {
        id: amys.id.clone(),
        name: "Renamed by sales".into(),
        ..Default::default()
    };
    assert_eq!(
        code(update_project(&mut p.amy, rename, &["name"]).await),
        Code::PermissionDenied
    );
    assert_eq!(
        code(add_milestone(&mut p.amy, &amys.id, "Sales", today_plus(9)).await),
        Code::PermissionDenied
    );
    let (milestones, _) = plan(&mut p.dora, &amys.id).await.unwrap();
    assert_eq!(
        code(add_task(&mut p.amy, &amys.id, &milestones[0].id, "Sales", "", 1.0).await),
        Code::PermissionDenied
    );
    assert_eq!(
        code(start_milestone(&mut p.amy, &milestones[0].id).await),
        Code::PermissionDenied
    );
    assert_eq!(
        code(
            log_hours(
                &mut p.amy,
                "sales-hours",
                hours_log(&amys.id, &milestones[0].id, "", "", today_plus(0), 1.0)
            )
            .await
        ),
        Code::PermissionDenied
    );
    assert_eq!(
        get_project(&mut p.boss, &amys.id).await.unwrap().name,
        amys.name
    );

    // Delivery: the projects they manage or work on; nobody else's.
    assert!(
        all_projects(&mut p.dean, pb::ListProjectsRequest::default())
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        code(get_project(&mut p.dean, &amys.id).await),
        Code::NotFound
    );
    assert_eq!(
        sorted(ids(&all_projects(
            &mut p.dora,
            pb::ListProjectsRequest::default()
        )
        .await
        .unwrap())),
        sorted(vec![amys.id.clone(), bobs.id.clone()])
    );
    add_members(&mut p, &amys, &["dan"]).await;
    assert_eq!(
        ids(
            &all_projects(&mut p.dan, pb::ListProjectsRequest::default())
                .await
                .unwrap()
        ),
        [amys.id.as_str()]
    );
    // A member changes the work, not the project.
    add_task(
        &mut p.dan,
        &amys.id,
        &milestones[0].id,
        "Member's",
        "dan",
        1.0,
    )
    .await
    .unwrap();
    let by_member = pb::Project {
        id: amys.id.clone(),
        name: "Renamed by a member".into(),
        ..Default::default()
    };
    assert_eq!(
        refused(update_project(&mut p.dan, by_member, &["name"]).await),
        (Code::PermissionDenied, "NOT_PROJECT_MANAGER".into())
    );

    // Managers, admins and integrations: the whole tenant.
    for c in [&mut p.boss, &mut p.root, &mut p.notifier] {
        let all = all_projects(c, pb::ListProjectsRequest::default())
            .await
            .unwrap();
        assert_eq!(
            sorted(ids(&all)),
            sorted(vec![amys.id.clone(), bobs.id.clone()])
        );
    }
    // Only a manager hands a project to another delivery manager.
    let handed = pb::Project {
        id: bobs.id.clone(),
        project_manager_id: "dean".into(),
        ..Default::default()
    };
    assert_eq!(
        refused(update_project(&mut p.dora, handed.clone(), &["project_manager_id"]).await),
        (Code::PermissionDenied, "NOT_PROJECT_MANAGER".into())
    );
    let now = update_project(&mut p.boss, handed, &["project_manager_id"])
        .await
        .unwrap();
    assert_eq!(now.project_manager_id, "dean");
    assert_eq!(
        get_project(&mut p.dean, &bobs.id).await.unwrap().id,
        bobs.id
    );
}

/// The status a Subscribe ends with, whether at the call or on the stream.
async fn subscribe_refusal(suite: &TestSuite, token: &str, source: &str) -> Option<tonic::Status> {
    let request = ev::SubscribeRequest {
        source: source.into(),
        all_tenants: true,
        ..Default::default()
    };
    match suite.events_client(token, source).subscribe(request).await {
        Err(status) => Some(status),
        Ok(stream) => {
            let mut stream = stream.into_inner();
            match tokio::time::timeout(Duration::from_secs(5), stream.message()).await {
                Ok(Err(status)) => Some(status),
                _ => None,
            }
        }
    }
}

#[tokio::test]
async fn the_all_tenants_subscription_is_refused_to_every_user_token_through_the_gateway() {
    let suite = start_delivery().await;
    // Something on each stream to leak, were it not refused.
    delivered(&suite, GLOBEX, "gus", "Leak").await;
    for source in ["contracts", "delivery", "leads"] {
        for (who, role) in [
            ("oa-system", Role::Integration),
            ("root", Role::Admin),
            ("boss", Role::Manager),
            ("dora", Role::Delivery),
            ("amy", Role::Sales),
        ] {
            let token = suite.token(ACME, who, &[role]);
            let status = subscribe_refusal(&suite, &token, source)
                .await
                .unwrap_or_else(|| panic!("{who} read every tenant's {source} events"));
            assert_eq!(
                status.code(),
                Code::PermissionDenied,
                "{who} on {source}: {status:?}"
            );
            if role == Role::Integration {
                assert_eq!(reason(&status), "ALL_TENANTS_INTERNAL_ONLY", "{status:?}");
            }
        }
    }
    // A user token claiming the services' role is no token at all.
    let claims = serde_json::json!({
        "sub": "mallory", "tenant": ACME, "roles": ["internal"], "iss": "crm", "aud": "crm",
        "iat": unix_now(), "exp": unix_now() + 600,
    });
    let forged = sign_claims(suite.signing_key_pem(), &claims);
    let status = subscribe_refusal(&suite, &forged, "contracts")
        .await
        .expect("a user token with the internal role reads nothing");
    assert_eq!(status.code(), Code::Unauthenticated, "{status:?}");
    // The same integration reads its own tenant's stream.
    let mut own = subscribe(&suite, GLOBEX, "oa-system", "delivery", &[]).await;
    let mut seen = Vec::new();
    find(&mut own, &mut seen, |_: &pb::DeliveryProjectCreated| true).await;
}
