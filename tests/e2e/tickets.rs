//! The tickets service through the gateway (issue 14): entitlements by hand
//! and from go-live (exactly once), tickets on every channel through their
//! status machine, comments and their visibility, SLA due times from the
//! entitlement or the tenant's default, the clock paused while waiting on
//! the customer, warnings and breaches escalating by the tenant's rule,
//! dispatch by skill, duty, load and idle time, similar solutions (English
//! and Chinese, one tenant's only), CSAT, NPS, account health, churn risk
//! with its retention task, loyalty tiers and VIP treatment, bad input,
//! refused transitions, who sees and works what, and retries.

use std::{collections::BTreeMap, time::Duration};

use crm_auth::Role;
use crm_e2e::{golive::*, scenario::*, streams::*, *};
use crm_proto::crm::tickets::v1 as pb;
use prost::Name;
use tonic::Code;

const ACME: &str = "acme";
const GLOBEX: &str = "globex";
/// The longest an entitlement, a dispatch or a health change may take to
/// show.
const WAIT: Duration = Duration::from_secs(30);
/// The longest an SLA event may take: the smallest target is one minute.
const SLA_WAIT: Duration = Duration::from_secs(150);
const MINUTE_MICROS: i64 = 60_000_000;

// ---------------------------------------------------------------------------
// The suite, people and calls.
// ---------------------------------------------------------------------------

/// The suite with quick tickets heartbeats and sweeps (SLA clocks are
/// checked every 50 ms).
async fn start_tickets() -> TestSuite {
    start_tickets_with(|_| {}).await
}

async fn start_tickets_with(tweak: impl FnOnce(&mut Settings)) -> TestSuite {
    start_with(|s| {
        s.tickets.sweep_interval = Duration::from_millis(50);
        s.tickets.events.heartbeat_interval = Duration::from_millis(200);
        s.delivery.events.heartbeat_interval = Duration::from_millis(200);
        s.contracts.events.heartbeat_interval = Duration::from_millis(200);
        tweak(s);
    })
    .await
}

fn as_(suite: &TestSuite, tenant: &str, who: &str, roles: &[Role]) -> TicketsClient {
    suite.tickets_client(Some(&suite.token(tenant, who, roles)))
}

/// The people of one tenant on the tickets API.
struct People {
    /// The service manager: assigns and reassigns.
    boss: TicketsClient,
    /// The tenant's admin: entitlements and configuration.
    root: TicketsClient,
    /// Sales, the account manager of the accounts made with `amy`.
    amy: TicketsClient,
    /// Sales, the account manager of the accounts made with `bob`.
    bob: TicketsClient,
    /// The customer portal and survey system.
    portal: TicketsClient,
}

fn people(suite: &TestSuite, tenant: &str) -> People {
    let c = |who: &str, roles: &[Role]| as_(suite, tenant, who, roles);
    People {
        boss: c("boss", &[Role::Manager]),
        root: c("root", &[Role::Admin]),
        amy: c("amy", &[Role::Sales]),
        bob: c("bob", &[Role::Sales]),
        portal: c("portal", &[Role::Integration]),
    }
}

/// Engineer `id` of `tenant` on the tickets API.
fn engineer(suite: &TestSuite, tenant: &str, id: &str) -> TicketsClient {
    as_(suite, tenant, id, &[Role::Service])
}

fn micros(ts: Option<&prost_types::Timestamp>) -> i64 {
    let ts = ts.expect("a time");
    ts.seconds * 1_000_000 + i64::from(ts.nanos) / 1_000
}

fn sla(t: &pb::Ticket) -> &pb::Sla {
    t.sla.as_ref().expect("the ticket's SLA")
}

fn target(t: &pb::Ticket) -> &pb::SlaTarget {
    sla(t).target.as_ref().expect("the SLA's target")
}

/// A target of `priority` in calendar hours.
fn calendar_target(priority: pb::Priority, first_response: i32, resolution: i32) -> pb::SlaTarget {
    pb::SlaTarget {
        priority: priority as i32,
        first_response_minutes: first_response,
        resolution_minutes: resolution,
        basis: pb::HoursBasis::Calendar as i32,
    }
}

/// A plan named `name` in calendar hours: P1 `base` minutes to respond and
/// twice that to resolve, each lower priority twice the one above.
fn calendar_plan(name: &str, base: i32) -> pb::SlaPlan {
    let ps = [
        pb::Priority::P1,
        pb::Priority::P2,
        pb::Priority::P3,
        pb::Priority::P4,
    ];
    pb::SlaPlan {
        service_level: name.into(),
        targets: ps
            .iter()
            .zip(0..)
            .map(|(p, i)| calendar_target(*p, base << i, (base << i) * 2))
            .collect(),
    }
}

fn plan_target(plan: &pb::SlaPlan, priority: pb::Priority) -> pb::SlaTarget {
    plan.targets
        .iter()
        .find(|t| t.priority == priority as i32)
        .cloned()
        .expect("a target of the priority")
}

/// The tenant's configuration changed by `change`, as its admin.
async fn configure(
    p: &mut People,
    change: impl FnOnce(&mut pb::TicketsConfig),
) -> pb::TicketsConfig {
    let mut config = p
        .root
        .get_tickets_config(pb::GetTicketsConfigRequest {})
        .await
        .unwrap()
        .into_inner()
        .config
        .unwrap();
    change(&mut config);
    p.root
        .update_tickets_config(pb::UpdateTicketsConfigRequest {
            config: Some(config),
        })
        .await
        .unwrap()
        .into_inner()
        .config
        .unwrap()
}

/// An entitlement of `account` managed by `manager` with `plan`, valid
/// from yesterday for a year, as the admin.
async fn entitle(
    p: &mut People,
    account: &str,
    manager: &str,
    plan: pb::SlaPlan,
) -> Result<pb::Entitlement, tonic::Status> {
    p.root
        .create_entitlement(pb::CreateEntitlementRequest {
            request_id: format!("ent-{account}"),
            entitlement: Some(pb::Entitlement {
                account_id: account.into(),
                plan: Some(plan),
                valid_from: Some(today_plus(-1)),
                valid_to: Some(today_plus(365)),
                account_manager_id: manager.into(),
                ..Default::default()
            }),
        })
        .await
        .map(|r| r.into_inner().entitlement.unwrap())
}

async fn entitlements_of(c: &mut TicketsClient, account: &str) -> Vec<pb::Entitlement> {
    c.list_entitlements(pb::ListEntitlementsRequest {
        account_id: account.into(),
        page_size: 500,
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .entitlements
}

/// An engineer with `skills`, on duty or not, as the manager.
async fn hire(p: &mut People, id: &str, skills: &[&str], on_duty: bool) -> pb::Engineer {
    p.boss
        .upsert_engineer(pb::UpsertEngineerRequest {
            engineer: Some(pb::Engineer {
                id: id.into(),
                display_name: format!("Engineer {id}"),
                skills: skills.iter().map(|s| (*s).to_owned()).collect(),
                on_duty,
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .engineer
        .unwrap()
}

async fn get_engineer(c: &mut TicketsClient, id: &str) -> Result<pb::Engineer, tonic::Status> {
    c.get_engineer(pb::GetEngineerRequest { id: id.into() })
        .await
        .map(|r| r.into_inner().engineer.unwrap())
}

/// A ticket as a caller describes it.
fn ticket(
    account: &str,
    channel: pb::Channel,
    category: &str,
    priority: pb::Priority,
    subject: &str,
) -> pb::Ticket {
    pb::Ticket {
        account_id: account.into(),
        contact_id: "li-lei".into(),
        channel: channel as i32,
        category: category.into(),
        priority: priority as i32,
        subject: subject.into(),
        description: format!("{subject}: reported by the customer"),
        ..Default::default()
    }
}

async fn create(
    c: &mut TicketsClient,
    request_id: &str,
    ticket: pb::Ticket,
) -> Result<pb::CreateTicketResponse, tonic::Status> {
    c.create_ticket(pb::CreateTicketRequest {
        request_id: request_id.into(),
        ticket: Some(ticket),
    })
    .await
    .map(|r| r.into_inner())
}

/// A P3 ticket of `account` in `category` by phone, created by the manager.
async fn open(p: &mut People, account: &str, category: &str, subject: &str) -> pb::Ticket {
    let t = ticket(
        account,
        pb::Channel::Phone,
        category,
        pb::Priority::P3,
        subject,
    );
    create(&mut p.boss, &request_id("ticket", &[account, subject]), t)
        .await
        .unwrap()
        .ticket
        .unwrap()
}

async fn get(c: &mut TicketsClient, id: &str) -> Result<pb::Ticket, tonic::Status> {
    c.get_ticket(pb::GetTicketRequest { id: id.into() })
        .await
        .map(|r| r.into_inner().ticket.unwrap())
}

async fn list(c: &mut TicketsClient, request: pb::ListTicketsRequest) -> Vec<pb::Ticket> {
    let mut request = pb::ListTicketsRequest {
        page_size: 500,
        ..request
    };
    let mut out = Vec::new();
    loop {
        let page = c.list_tickets(request.clone()).await.unwrap().into_inner();
        out.extend(page.tickets);
        if page.next_page_token.is_empty() {
            return out;
        }
        request.page_token = page.next_page_token;
    }
}

fn ids(tickets: &[pb::Ticket]) -> Vec<String> {
    sorted(tickets.iter().map(|t| t.id.clone()).collect())
}

async fn assign(c: &mut TicketsClient, id: &str, to: &str) -> Result<pb::Ticket, tonic::Status> {
    c.assign_ticket(pb::AssignTicketRequest {
        id: id.into(),
        assignee_id: to.into(),
        reason: "workload".into(),
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner().ticket.unwrap())
}

async fn start(c: &mut TicketsClient, id: &str) -> Result<pb::Ticket, tonic::Status> {
    c.start_ticket(pb::StartTicketRequest {
        id: id.into(),
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner().ticket.unwrap())
}

async fn wait_on_customer(c: &mut TicketsClient, id: &str) -> Result<pb::Ticket, tonic::Status> {
    c.wait_on_customer(pb::WaitOnCustomerRequest {
        id: id.into(),
        reason: "which VPN client version?".into(),
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner().ticket.unwrap())
}

async fn resume(c: &mut TicketsClient, id: &str) -> Result<pb::Ticket, tonic::Status> {
    c.resume_ticket(pb::ResumeTicketRequest {
        id: id.into(),
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner().ticket.unwrap())
}

async fn resolve(
    c: &mut TicketsClient,
    id: &str,
    resolution: &str,
) -> Result<pb::Ticket, tonic::Status> {
    c.resolve_ticket(pb::ResolveTicketRequest {
        id: id.into(),
        resolution: resolution.into(),
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner().ticket.unwrap())
}

async fn close(c: &mut TicketsClient, id: &str) -> Result<pb::Ticket, tonic::Status> {
    c.close_ticket(pb::CloseTicketRequest {
        id: id.into(),
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner().ticket.unwrap())
}

async fn reopen(c: &mut TicketsClient, id: &str) -> Result<pb::Ticket, tonic::Status> {
    c.reopen_ticket(pb::ReopenTicketRequest {
        id: id.into(),
        reason: "it happened again".into(),
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner().ticket.unwrap())
}

async fn comment(
    c: &mut TicketsClient,
    ticket_id: &str,
    body: &str,
    visibility: pb::CommentVisibility,
) -> Result<pb::AddCommentResponse, tonic::Status> {
    c.add_comment(pb::AddCommentRequest {
        request_id: request_id("comment", &[ticket_id, body]),
        comment: Some(pb::Comment {
            ticket_id: ticket_id.into(),
            body: body.into(),
            visibility: visibility as i32,
            ..Default::default()
        }),
    })
    .await
    .map(|r| r.into_inner())
}

async fn comments(c: &mut TicketsClient, ticket_id: &str) -> Result<Vec<String>, tonic::Status> {
    c.list_comments(pb::ListCommentsRequest {
        ticket_id: ticket_id.into(),
        page_size: 500,
        ..Default::default()
    })
    .await
    .map(|r| {
        r.into_inner()
            .comments
            .into_iter()
            .map(|c| c.body)
            .collect()
    })
}

async fn csat(
    c: &mut TicketsClient,
    ticket_id: &str,
    score: i32,
) -> Result<pb::Ticket, tonic::Status> {
    c.record_csat(pb::RecordCsatRequest {
        request_id: format!("csat-{ticket_id}-{score}"),
        ticket_id: ticket_id.into(),
        score,
        comment: "rated in the portal".into(),
    })
    .await
    .map(|r| r.into_inner().ticket.unwrap())
}

async fn nps(
    c: &mut TicketsClient,
    account: &str,
    contact: &str,
    score: i32,
) -> Result<pb::AccountHealth, tonic::Status> {
    c.record_nps(pb::RecordNpsRequest {
        request_id: format!("nps-{account}-{contact}-{score}"),
        account_id: account.into(),
        contact_id: contact.into(),
        score,
        comment: String::new(),
    })
    .await
    .map(|r| r.into_inner().health.unwrap())
}

async fn signal(
    c: &mut TicketsClient,
    request_id: &str,
    account: &str,
    kind: pb::UsageSignalKind,
) -> Result<pb::AccountHealth, tonic::Status> {
    c.record_usage_signal(pb::RecordUsageSignalRequest {
        request_id: request_id.into(),
        account_id: account.into(),
        kind: kind as i32,
    })
    .await
    .map(|r| r.into_inner().health.unwrap())
}

async fn health(c: &mut TicketsClient, account: &str) -> Result<pb::AccountHealth, tonic::Status> {
    c.get_account_health(pb::GetAccountHealthRequest {
        account_id: account.into(),
    })
    .await
    .map(|r| r.into_inner().health.unwrap())
}

async fn purchase(
    c: &mut TicketsClient,
    request_id: &str,
    account: &str,
    units: i64,
) -> Result<pb::AccountTier, tonic::Status> {
    c.record_purchase(pb::RecordPurchaseRequest {
        request_id: request_id.into(),
        account_id: account.into(),
        amount: cny(units),
        industry: "manufacturing".into(),
        account_manager_id: "amy".into(),
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner().tier.unwrap())
}

async fn similar(c: &mut TicketsClient, text: &str) -> Vec<pb::SimilarSolution> {
    c.find_similar_solutions(pb::FindSimilarSolutionsRequest {
        text: text.into(),
        limit: 20,
        ..Default::default()
    })
    .await
    .unwrap()
    .into_inner()
    .solutions
}

/// The tickets stream of `tenant` from its start, as an integration.
async fn ticket_events(suite: &TestSuite, tenant: &str, types: &[String]) -> Stream {
    subscribe(suite, tenant, "noc-board", "tickets", types).await
}

/// A ticket taken by its assignee `who` through assigned -> in_progress ->
/// resolved with `resolution`.
async fn worked_and_resolved(
    suite: &TestSuite,
    tenant: &str,
    who: &str,
    t: &pb::Ticket,
    resolution: &str,
) -> pb::Ticket {
    let mut e = engineer(suite, tenant, who);
    start(&mut e, &t.id).await.unwrap();
    resolve(&mut e, &t.id, resolution).await.unwrap()
}

// ---------------------------------------------------------------------------
// Entitlements.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn an_admin_creates_an_entitlement_by_hand_and_bad_plans_are_refused_naming_the_field() {
    let suite = start_tickets().await;
    let mut p = people(&suite, ACME);
    let plan = calendar_plan("gold", 30);
    let made = entitle(&mut p, "acct-manual", "amy", plan.clone())
        .await
        .unwrap();
    assert_eq!(
        (
            made.account_id.as_str(),
            made.origin,
            made.plan.clone(),
            made.account_manager_id.as_str(),
            made.creator.as_str(),
            made.project_id.as_str(),
        ),
        (
            "acct-manual",
            pb::EntitlementOrigin::Manual as i32,
            Some(plan),
            "amy",
            "root",
            ""
        )
    );
    let got = p
        .boss
        .get_entitlement(pb::GetEntitlementRequest {
            id: made.id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .entitlement
        .unwrap();
    assert_eq!(got, made);
    let listed = entitlements_of(&mut p.boss, "acct-manual").await;
    assert_eq!(listed, vec![made.clone()]);

    // A plan without one target per priority, an inverted term: each named.
    let mut three = calendar_plan("silver", 30);
    three.targets.pop();
    let (c, fields) = invalid(entitle(&mut p, "acct-bad", "amy", three).await);
    assert_eq!(c, Code::InvalidArgument);
    assert!(
        fields.contains(&"entitlement.plan.targets".to_owned()),
        "{fields:?}"
    );
    let inverted = p
        .root
        .create_entitlement(pb::CreateEntitlementRequest {
            request_id: "ent-inverted".into(),
            entitlement: Some(pb::Entitlement {
                account_id: "acct-bad".into(),
                plan: Some(calendar_plan("silver", 30)),
                valid_from: Some(today_plus(10)),
                valid_to: Some(today_plus(9)),
                ..Default::default()
            }),
        })
        .await;
    let (c, fields) = invalid(inverted);
    assert_eq!(
        (c, fields),
        (
            Code::InvalidArgument,
            vec!["entitlement.valid_to".to_owned()]
        )
    );
    assert!(entitlements_of(&mut p.boss, "acct-bad").await.is_empty());
    // Only an admin creates one by hand.
    let by_manager = p
        .boss
        .create_entitlement(pb::CreateEntitlementRequest {
            request_id: "ent-by-boss".into(),
            entitlement: Some(pb::Entitlement {
                account_id: "acct-bad".into(),
                plan: Some(calendar_plan("silver", 30)),
                valid_from: Some(today_plus(0)),
                valid_to: Some(today_plus(9)),
                ..Default::default()
            }),
        })
        .await;
    assert_eq!(code(by_manager), Code::PermissionDenied);
}

/// Awaits the entitlements made from go-live for `account`.
async fn awaited_entitlement(suite: &TestSuite, tenant: &str, account: &str) -> pb::Entitlement {
    let boss = as_(suite, tenant, "boss", &[Role::Manager]);
    eventually(WAIT, "the entitlement from go-live", || {
        let (mut boss, account) = (boss.clone(), account.to_owned());
        async move {
            entitlements_of(&mut boss, &account)
                .await
                .into_iter()
                .next()
        }
    })
    .await
}

#[tokio::test]
async fn a_completed_delivery_project_creates_exactly_one_entitlement_for_its_account() {
    let suite = start_tickets().await;
    let mut p = people(&suite, ACME);
    let gold = calendar_plan("gold", 15);
    let config = configure(&mut p, |c| c.service_levels = vec![gold.clone()]).await;
    let (deal, contract, project) = live_account(&suite, ACME, "amy", "Go Live Gold", "gold").await;
    let account = deal.opportunity.account_id.clone();

    let made = awaited_entitlement(&suite, ACME, &account).await;
    let term = contract.term.unwrap();
    assert_eq!(
        (
            made.origin,
            made.project_id.as_str(),
            made.contract_id.as_str(),
            made.plan.clone(),
            made.valid_from,
            made.valid_to,
            made.account_manager_id.as_str(),
        ),
        (
            pb::EntitlementOrigin::ProjectCompleted as i32,
            project.id.as_str(),
            contract.id.as_str(),
            config.service_levels.first().cloned(),
            term.start_date,
            term.end_date,
            "amy",
        )
    );
    // Exactly one, and one EntitlementCreated.
    assert_eq!(
        entitlements_of(&mut p.boss, &account).await,
        vec![made.clone()]
    );
    let mut stream = ticket_events(&suite, ACME, &[pb::EntitlementCreated::full_name()]).await;
    let mut seen = Vec::new();
    find(&mut stream, &mut seen, |e: &pb::EntitlementCreated| {
        e.entitlement.as_ref().is_some_and(|x| x.id == made.id)
    })
    .await;
    assert_eq!(
        all_of(&seen, |e: &pb::EntitlementCreated| e
            .entitlement
            .as_ref()
            .is_some_and(|x| x.account_id == account))
        .len(),
        1
    );
}

#[tokio::test]
async fn a_replayed_project_completed_event_after_restarts_still_leaves_one_entitlement() {
    let mut suite = start_tickets().await;
    let (first, _, _) = live_account(&suite, ACME, "amy", "Replay One", "").await;
    let first = first.opportunity.account_id;
    let one = awaited_entitlement(&suite, ACME, &first).await;

    // A graceful restart and a crash: the consumer resumes from its stored
    // cursor; later go-lives still make their entitlement.
    suite.stop().await;
    suite.restart().await;
    let (second, _, _) = live_account(&suite, ACME, "amy", "Replay Two", "").await;
    let second = second.opportunity.account_id;
    awaited_entitlement(&suite, ACME, &second).await;
    suite.kill().await;
    suite.restart().await;
    let (third, _, _) = live_account(&suite, ACME, "amy", "Replay Three", "").await;
    let third = third.opportunity.account_id;
    awaited_entitlement(&suite, ACME, &third).await;

    // Every DeliveryProjectCompleted delivered again: the tickets
    // consumer's cursor of the delivery stream rewound while the suite is
    // down. A fourth go-live after it: once its entitlement shows, the
    // three before it were read again (the stream is read in order).
    suite.stop().await;
    let rewound = rewind_cursor(&suite, "tickets", "delivery").await;
    assert!(rewound > 0, "a cursor of the delivery stream was stored");
    suite.restart().await;
    let (fourth, _, _) = live_account(&suite, ACME, "amy", "Replay Four", "").await;
    let fourth = fourth.opportunity.account_id;
    let last = awaited_entitlement(&suite, ACME, &fourth).await;

    let mut p = people(&suite, ACME);
    assert_eq!(entitlements_of(&mut p.boss, &first).await, vec![one]);
    for account in [&second, &third, &fourth] {
        assert_eq!(entitlements_of(&mut p.boss, account).await.len(), 1);
    }
    // The tenant's whole list: one per go-live.
    let accounts = sorted(vec![first, second, third, fourth]);
    let all = entitlements_of(&mut p.boss, "").await;
    assert_eq!(
        sorted(all.iter().map(|e| e.account_id.clone()).collect()),
        accounts
    );
    // The stream says so too: one EntitlementCreated per go-live, read up
    // to the fourth's.
    let mut stream = ticket_events(&suite, ACME, &[pb::EntitlementCreated::full_name()]).await;
    let mut seen = Vec::new();
    find(&mut stream, &mut seen, |e: &pb::EntitlementCreated| {
        e.entitlement.as_ref().is_some_and(|x| x.id == last.id)
    })
    .await;
    let created: Vec<String> = all_of(&seen, |_: &pb::EntitlementCreated| true)
        .into_iter()
        .map(|e| e.entitlement.unwrap().account_id)
        .collect();
    assert_eq!(sorted(created), accounts, "one creation event per go-live");
}

#[tokio::test]
async fn while_delivery_is_down_tickets_serves_and_makes_the_entitlement_once_it_is_back() {
    // The tickets consumer reads the delivery stream at a port nothing
    // serves until the test says so.
    let unreachable = free_port();
    let suite = start_tickets_with(|s| {
        s.tickets.delivery_url = Some(format!("http://{unreachable}"));
        // Reconnection attempts stay frequent while it is down.
        s.tickets.consumer_backoff_max = Duration::from_millis(500);
    })
    .await;
    let (deal, _, project) = live_account(&suite, ACME, "amy", "Outage", "").await;
    let account = deal.opportunity.account_id;

    // Tickets answers meanwhile: a ticket of the account gets the tenant's
    // default SLA, as there is no entitlement yet.
    let mut p = people(&suite, ACME);
    let t = open(&mut p, &account, "network", "VPN drops").await;
    assert_eq!(sla(&t).entitlement_id, "");
    assert!(entitlements_of(&mut p.boss, &account).await.is_empty());

    // Delivery reachable: the go-live is read and makes its entitlement,
    // once.
    serve_service_at(&suite, "delivery", unreachable);
    let made = awaited_entitlement(&suite, ACME, &account).await;
    assert_eq!(made.project_id, project.id);
    assert_eq!(entitlements_of(&mut p.boss, &account).await, vec![made]);
}

// ---------------------------------------------------------------------------
// Tickets: channels, the status machine, comments, due times.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_ticket_is_created_from_every_channel_and_dispatched() {
    let suite = start_tickets().await;
    let mut p = people(&suite, ACME);
    hire(&mut p, "eve", &["network"], true).await;
    let channels = [
        (pb::Channel::Phone, "boss"),
        (pb::Channel::Email, "boss"),
        (pb::Channel::Portal, "portal"),
        (pb::Channel::Chat, "boss"),
        (pb::Channel::Integration, "portal"),
    ];
    for (channel, by) in channels {
        let c = if by == "portal" {
            &mut p.portal
        } else {
            &mut p.boss
        };
        let subject = format!("VPN down via {}", channel.as_str_name());
        let made = create(
            c,
            &format!("ch-{}", channel as i32),
            ticket("acct-ch", channel, "network", pb::Priority::P2, &subject),
        )
        .await
        .unwrap()
        .ticket
        .unwrap();
        assert_eq!(
            (
                made.channel,
                made.subject.as_str(),
                made.status,
                made.assignee_id.as_str(),
                made.creator.as_str(),
            ),
            (
                channel as i32,
                subject.as_str(),
                pb::TicketStatus::Assigned as i32,
                "eve",
                by
            )
        );
        assert!(sla(&made).first_response_due_time.is_some());
    }
    let all = list(&mut p.boss, pb::ListTicketsRequest::default()).await;
    assert_eq!(all.len(), channels.len());
}

#[tokio::test]
async fn a_ticket_moves_new_assigned_in_progress_waiting_in_progress_resolved_closed() {
    let suite = start_tickets().await;
    let mut p = people(&suite, ACME);
    hire(&mut p, "eve", &["network"], false).await;
    let mut eve = engineer(&suite, ACME, "eve");
    let mut stream = ticket_events(&suite, ACME, &[pb::TicketStatusChanged::full_name()]).await;

    // Nobody on duty: new, queued.
    let t = open(&mut p, "acct-sm", "network", "VPN drops").await;
    assert_eq!(t.status, pb::TicketStatus::New as i32);
    let t = assign(&mut p.boss, &t.id, "eve").await.unwrap();
    assert_eq!(
        (t.status, t.assignee_id.as_str()),
        (pb::TicketStatus::Assigned as i32, "eve")
    );
    let t = start(&mut eve, &t.id).await.unwrap();
    assert_eq!(t.status, pb::TicketStatus::InProgress as i32);
    assert!(sla(&t).first_response_time.is_some());
    let t = wait_on_customer(&mut eve, &t.id).await.unwrap();
    assert_eq!(t.status, pb::TicketStatus::WaitingOnCustomer as i32);
    let t = resume(&mut eve, &t.id).await.unwrap();
    assert_eq!(t.status, pb::TicketStatus::InProgress as i32);
    let t = resolve(&mut eve, &t.id, "renewed the VPN certificate")
        .await
        .unwrap();
    assert_eq!(
        (t.status, t.resolution.as_str()),
        (
            pb::TicketStatus::Resolved as i32,
            "renewed the VPN certificate"
        )
    );
    assert!(t.resolve_time.is_some());
    let t = close(&mut eve, &t.id).await.unwrap();
    assert_eq!(t.status, pb::TicketStatus::Closed as i32);
    assert!(t.close_time.is_some());
    // Closed is final.
    assert_eq!(
        code(reopen(&mut eve, &t.id).await),
        Code::FailedPrecondition
    );
    assert_eq!(code(start(&mut eve, &t.id).await), Code::FailedPrecondition);

    // The stream tells each step with the status before it.
    let mut seen = Vec::new();
    find(&mut stream, &mut seen, |e: &pb::TicketStatusChanged| {
        e.ticket
            .as_ref()
            .is_some_and(|x| x.status == pb::TicketStatus::Closed as i32)
    })
    .await;
    let steps: Vec<(i32, i32)> = all_of(&seen, |e: &pb::TicketStatusChanged| {
        e.ticket.as_ref().is_some_and(|x| x.id == t.id)
    })
    .into_iter()
    .map(|e| (e.previous_status, e.ticket.unwrap().status))
    .collect();
    use pb::TicketStatus as S;
    for step in [
        (S::Assigned, S::InProgress),
        (S::InProgress, S::WaitingOnCustomer),
        (S::WaitingOnCustomer, S::InProgress),
        (S::Resolved, S::Closed),
    ] {
        assert!(
            steps.contains(&(step.0 as i32, step.1 as i32)),
            "{step:?} in {steps:?}"
        );
    }
}

#[tokio::test]
async fn a_resolved_ticket_reopens_within_the_window_back_to_in_progress() {
    let suite = start_tickets().await;
    let mut p = people(&suite, ACME);
    let config = configure(&mut p, |c| c.reopen_window_days = 7).await;
    assert_eq!(config.reopen_window_days, 7);
    hire(&mut p, "eve", &["network"], true).await;
    let t = open(&mut p, "acct-re", "network", "VPN drops").await;
    let resolved = worked_and_resolved(&suite, ACME, "eve", &t, "renewed the certificate").await;
    assert!(sla(&resolved).resolution_due_time.is_none());
    let mut stream = ticket_events(&suite, ACME, &[pb::TicketReopened::full_name()]).await;

    // The customer comes back the same day, through the portal.
    let again = reopen(&mut p.portal, &t.id).await.unwrap();
    assert_eq!(
        (again.status, again.reopen_count, again.assignee_id.as_str()),
        (pb::TicketStatus::InProgress as i32, 1, "eve")
    );
    assert!(sla(&again).resolution_due_time.is_some());
    let event = find(&mut stream, &mut Vec::new(), |e: &pb::TicketReopened| {
        e.ticket.as_ref().is_some_and(|x| x.id == t.id)
    })
    .await;
    assert_eq!(event.reason, "it happened again");
}

#[tokio::test]
async fn public_comments_reach_sales_and_integrations_internal_ones_stay_with_staff() {
    let suite = start_tickets().await;
    let mut p = people(&suite, ACME);
    entitle(&mut p, "acct-cm", "amy", calendar_plan("gold", 30))
        .await
        .unwrap();
    hire(&mut p, "eve", &["network"], true).await;
    let mut eve = engineer(&suite, ACME, "eve");
    let t = open(&mut p, "acct-cm", "network", "VPN drops").await;
    assert_eq!(t.assignee_id, "eve");
    assert!(sla(&t).first_response_time.is_none());

    // An internal note is not a response; the first public comment is.
    let note = comment(
        &mut eve,
        &t.id,
        "suspect the cert",
        pb::CommentVisibility::Internal,
    )
    .await
    .unwrap();
    assert!(
        sla(note.ticket.as_ref().unwrap())
            .first_response_time
            .is_none()
    );
    let reply = comment(
        &mut eve,
        &t.id,
        "We are on it; please send the VPN log.",
        pb::CommentVisibility::Public,
    )
    .await
    .unwrap();
    let replied = reply.ticket.unwrap();
    assert!(sla(&replied).first_response_time.is_some());
    assert!(sla(&replied).first_response_due_time.is_none());
    assert_eq!(reply.comment.unwrap().author, "eve");
    // The customer's reply comes in through the portal, public.
    comment(
        &mut p.portal,
        &t.id,
        "Log attached.",
        pb::CommentVisibility::Public,
    )
    .await
    .unwrap();
    // ...and an integration cannot write an internal note.
    assert!(
        comment(
            &mut p.portal,
            &t.id,
            "not for staff",
            pb::CommentVisibility::Internal
        )
        .await
        .is_err()
    );

    let everything = vec![
        "suspect the cert".to_owned(),
        "We are on it; please send the VPN log.".to_owned(),
        "Log attached.".to_owned(),
    ];
    let public = everything[1..].to_vec();
    assert_eq!(comments(&mut p.boss, &t.id).await.unwrap(), everything);
    assert_eq!(comments(&mut eve, &t.id).await.unwrap(), everything);
    assert_eq!(comments(&mut p.amy, &t.id).await.unwrap(), public);
    assert_eq!(comments(&mut p.portal, &t.id).await.unwrap(), public);
}

#[tokio::test]
async fn a_ticket_carries_due_times_from_the_accounts_entitlement() {
    let suite = start_tickets().await;
    let mut p = people(&suite, ACME);
    let gold = calendar_plan("gold", 20);
    let ent = entitle(&mut p, "acct-due", "amy", gold.clone())
        .await
        .unwrap();
    let t = create(
        &mut p.boss,
        "due-1",
        ticket(
            "acct-due",
            pb::Channel::Email,
            "network",
            pb::Priority::P2,
            "Slow VPN",
        ),
    )
    .await
    .unwrap()
    .ticket
    .unwrap();
    let want = plan_target(&gold, pb::Priority::P2);
    assert_eq!(
        (
            sla(&t).service_level.as_str(),
            sla(&t).entitlement_id.as_str(),
            *target(&t)
        ),
        ("gold", ent.id.as_str(), want)
    );
    // Calendar hours: due the target's minutes after creation.
    let created = micros(t.create_time.as_ref());
    assert_eq!(
        micros(sla(&t).first_response_due_time.as_ref()),
        created + i64::from(want.first_response_minutes) * MINUTE_MICROS
    );
    assert_eq!(
        micros(sla(&t).resolution_due_time.as_ref()),
        created + i64::from(want.resolution_minutes) * MINUTE_MICROS
    );
}

#[tokio::test]
async fn an_account_without_an_entitlement_gets_the_tenants_default_sla() {
    let suite = start_tickets().await;
    let mut p = people(&suite, ACME);
    let config = configure(&mut p, |c| {
        c.default_plan = Some(calendar_plan("basic", 45))
    })
    .await;
    let plan = config.default_plan.unwrap();
    let t = open(&mut p, "acct-none", "network", "VPN drops").await;
    let want = plan_target(&plan, pb::Priority::P3);
    assert_eq!(
        (
            sla(&t).service_level.as_str(),
            sla(&t).entitlement_id.as_str(),
            *target(&t)
        ),
        ("basic", "", want)
    );
    assert_eq!(
        micros(sla(&t).resolution_due_time.as_ref()),
        micros(t.create_time.as_ref()) + i64::from(want.resolution_minutes) * MINUTE_MICROS
    );
}

// ---------------------------------------------------------------------------
// SLA clocks, warnings, breaches and escalation.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn while_waiting_on_the_customer_the_clock_pauses_and_the_due_time_moves_by_the_pause() {
    let suite = start_tickets().await;
    let mut p = people(&suite, ACME);
    configure(&mut p, |c| {
        c.default_plan = Some(calendar_plan("basic", 60))
    })
    .await;
    hire(&mut p, "eve", &["network"], true).await;
    let mut eve = engineer(&suite, ACME, "eve");
    let t = open(&mut p, "acct-pause", "network", "VPN drops").await;
    let started = start(&mut eve, &t.id).await.unwrap();
    let due = micros(sla(&started).resolution_due_time.as_ref());
    assert!(!sla(&started).paused);

    let waiting = wait_on_customer(&mut eve, &t.id).await.unwrap();
    assert!(sla(&waiting).paused);
    assert!(sla(&waiting).resolution_due_time.is_none());
    // Still paused when read again.
    let read = get(&mut eve, &t.id).await.unwrap();
    assert!(sla(&read).paused && sla(&read).resolution_due_time.is_none());

    let resumed = resume(&mut eve, &t.id).await.unwrap();
    assert!(!sla(&resumed).paused);
    let pause = micros(resumed.update_time.as_ref()) - micros(waiting.update_time.as_ref());
    assert!(pause > 0);
    assert_eq!(
        micros(sla(&resumed).resolution_due_time.as_ref()),
        due + pause,
        "the resolution is due later by exactly the pause"
    );
}

/// The contract: an integration's public comment is the customer's reply.
#[tokio::test]
async fn the_customers_reply_resumes_a_ticket_waiting_on_them_and_its_clock() {
    let suite = start_tickets().await;
    let mut p = people(&suite, ACME);
    configure(&mut p, |c| {
        c.default_plan = Some(calendar_plan("basic", 60))
    })
    .await;
    hire(&mut p, "eve", &["network"], true).await;
    let mut eve = engineer(&suite, ACME, "eve");
    let t = open(&mut p, "acct-reply", "network", "VPN drops").await;
    let started = start(&mut eve, &t.id).await.unwrap();
    let due = micros(sla(&started).resolution_due_time.as_ref());
    let waiting = wait_on_customer(&mut eve, &t.id).await.unwrap();
    assert!(sla(&waiting).paused);
    // The engineer's own comment and a manager's leave it waiting.
    comment(&mut eve, &t.id, "any news?", pb::CommentVisibility::Public)
        .await
        .unwrap();
    comment(&mut p.boss, &t.id, "chasing", pb::CommentVisibility::Public)
        .await
        .unwrap();
    let still = get(&mut eve, &t.id).await.unwrap();
    assert_eq!(still.status, pb::TicketStatus::WaitingOnCustomer as i32);

    let mut stream = ticket_events(&suite, ACME, &[pb::TicketStatusChanged::full_name()]).await;
    let replied = comment(
        &mut p.portal,
        &t.id,
        "it happens again at 9:00",
        pb::CommentVisibility::Public,
    )
    .await
    .unwrap()
    .ticket
    .unwrap();
    assert_eq!(replied.status, pb::TicketStatus::InProgress as i32);
    assert!(!sla(&replied).paused);
    let pause = micros(replied.update_time.as_ref()) - micros(waiting.update_time.as_ref());
    assert_eq!(
        micros(sla(&replied).resolution_due_time.as_ref()),
        due + pause,
        "the clock ran again from the reply"
    );
    assert_eq!(get(&mut eve, &t.id).await.unwrap(), replied);
    // The change is on the stream like any other resumption.
    let mut seen = Vec::new();
    find(&mut stream, &mut seen, |e: &pb::TicketStatusChanged| {
        e.ticket
            .as_ref()
            .is_some_and(|x| x.id == t.id && x.status == pb::TicketStatus::InProgress as i32)
            && e.previous_status == pb::TicketStatus::WaitingOnCustomer as i32
    })
    .await;
    assert_eq!(replied.updater, "portal");
    // Another reply to a ticket in progress changes nothing.
    let again = comment(
        &mut p.portal,
        &t.id,
        "and at 10:00",
        pb::CommentVisibility::Public,
    )
    .await
    .unwrap()
    .ticket
    .unwrap();
    assert_eq!(again.etag, replied.etag);
}

#[tokio::test]
async fn a_warning_then_a_breach_escalate_by_the_tenants_rule_while_a_paused_clock_stands_still() {
    let suite = start_tickets().await;
    let mut p = people(&suite, ACME);
    // P1: one minute to respond and to resolve; warn at half of it; the
    // first escalation goes to the senior engineer, the second to the lead.
    let mut plan = calendar_plan("tiny", 60);
    plan.targets[0] = calendar_target(pb::Priority::P1, 1, 1);
    configure(&mut p, |c| {
        c.default_plan = Some(plan.clone());
        c.warning_percent = 50;
        c.escalation = Some(pb::EscalationRule {
            assignee_ids: vec!["senior".into(), "lead".into()],
        });
    })
    .await;
    hire(&mut p, "eve", &["network"], true).await;
    hire(&mut p, "senior", &["network"], false).await;
    let mut eve = engineer(&suite, ACME, "eve");
    let mut stream = ticket_events(
        &suite,
        ACME,
        &[
            pb::TicketSlaWarning::full_name(),
            pb::TicketSlaBreached::full_name(),
        ],
    )
    .await;
    let p1 = |subject: &str| {
        ticket(
            "acct-sla",
            pb::Channel::Phone,
            "network",
            pb::Priority::P1,
            subject,
        )
    };
    let late = create(&mut p.boss, "late", p1("Production line down"))
        .await
        .unwrap()
        .ticket
        .unwrap();
    let paused = create(&mut p.boss, "paused", p1("Production line slow"))
        .await
        .unwrap()
        .ticket
        .unwrap();
    assert_eq!(
        (late.assignee_id.as_str(), paused.assignee_id.as_str()),
        ("eve", "eve")
    );
    start(&mut eve, &paused.id).await.unwrap();
    wait_on_customer(&mut eve, &paused.id).await.unwrap();

    let mut seen = Vec::new();
    let of_late = |t: &Option<pb::Ticket>| t.as_ref().is_some_and(|x| x.id == late.id);
    let warning = tokio::time::timeout(
        SLA_WAIT,
        find(&mut stream, &mut seen, |e: &pb::TicketSlaWarning| {
            of_late(&e.ticket) && e.clock == pb::SlaClock::FirstResponse as i32
        }),
    )
    .await
    .expect("a first-response warning");
    assert!(sla(warning.ticket.as_ref().unwrap()).first_response_warned);
    let first = tokio::time::timeout(
        SLA_WAIT,
        find(&mut stream, &mut seen, |e: &pb::TicketSlaBreached| {
            of_late(&e.ticket) && e.clock == pb::SlaClock::FirstResponse as i32
        }),
    )
    .await
    .expect("a first-response breach");
    let second = tokio::time::timeout(
        SLA_WAIT,
        find(&mut stream, &mut seen, |e: &pb::TicketSlaBreached| {
            of_late(&e.ticket) && e.clock == pb::SlaClock::Resolution as i32
        }),
    )
    .await
    .expect("a resolution breach");
    // Each breach escalates one level, to that level's assignee.
    let mut levels = [
        (first.escalation_level, first.next_assignee_id.clone()),
        (second.escalation_level, second.next_assignee_id.clone()),
    ];
    levels.sort();
    assert_eq!(levels, [(1, "senior".to_owned()), (2, "lead".to_owned())]);

    let now_late = get(&mut p.boss, &late.id).await.unwrap();
    let s = sla(&now_late);
    assert_eq!(
        (
            s.escalation_level,
            s.first_response_breached,
            s.resolution_breached,
            now_late.assignee_id.as_str()
        ),
        (2, true, true, "lead")
    );
    let breached = list(
        &mut p.boss,
        pb::ListTicketsRequest {
            breached: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(ids(&breached), vec![late.id.clone()]);

    // The paused ticket used the same minute of wall time standing still:
    // no warning, no breach, not escalated.
    let still = get(&mut p.boss, &paused.id).await.unwrap();
    let s = sla(&still);
    assert_eq!(
        (
            s.paused,
            s.resolution_warned,
            s.resolution_breached,
            s.escalation_level,
            still.assignee_id.as_str()
        ),
        (true, false, false, 0, "eve")
    );
    assert!(
        all_of(&seen, |e: &pb::TicketSlaBreached| e
            .ticket
            .as_ref()
            .is_some_and(|x| x.id == paused.id))
        .is_empty()
    );
}

// ---------------------------------------------------------------------------
// Dispatch.
// ---------------------------------------------------------------------------

/// The documented choice: the lightest open load, then the longest idle
/// (never assigned first: `None` orders before any assignment), then the
/// smaller id.
fn documented_pick(load: &BTreeMap<String, (u32, Option<usize>)>) -> String {
    load.iter()
        .min_by_key(|(id, (open, last))| (*open, *last, (*id).clone()))
        .map(|(id, _)| id.clone())
        .unwrap()
}

#[tokio::test]
async fn a_new_ticket_goes_to_the_on_duty_engineer_with_the_skill_and_the_lightest_load() {
    let suite = start_tickets().await;
    let mut p = people(&suite, ACME);
    hire(&mut p, "nia", &["network"], true).await;
    hire(&mut p, "ned", &["network", "billing"], true).await;
    hire(&mut p, "oscar", &["network"], false).await;
    hire(&mut p, "bill", &["billing"], true).await;

    // The test keeps the documented model of the candidates with the skill
    // on duty: open load and the order of their last assignment.
    let mut model: BTreeMap<String, (u32, Option<usize>)> =
        ["nia", "ned"].map(|e| (e.to_owned(), (0, None))).into();
    let mut mine: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for i in 0..5 {
        let want = documented_pick(&model);
        let t = open(&mut p, "acct-disp", "network", &format!("VPN issue {i}")).await;
        assert_eq!(
            (t.status, t.assignee_id.as_str(), t.queue_reason.as_str()),
            (pb::TicketStatus::Assigned as i32, want.as_str(), ""),
            "ticket {i}"
        );
        let entry = model.get_mut(&want).unwrap();
        *entry = (entry.0 + 1, Some(i));
        mine.entry(want).or_default().push(t.id);
        // After the third, one of nia's is resolved: her load drops.
        if i == 2 {
            let first = mine["nia"][0].clone();
            let mut nia = engineer(&suite, ACME, "nia");
            start(&mut nia, &first).await.unwrap();
            resolve(&mut nia, &first, "done").await.unwrap();
            model.get_mut("nia").unwrap().0 -= 1;
        }
    }
    for (id, (open, _)) in &model {
        let e = get_engineer(&mut p.boss, id).await.unwrap();
        assert_eq!(e.open_tickets, i32::try_from(*open).unwrap(), "{id}");
    }
    // Off duty or without the skill: nothing.
    for id in ["oscar", "bill"] {
        assert_eq!(get_engineer(&mut p.boss, id).await.unwrap().open_tickets, 0);
    }
    // A billing ticket: ned and bill have the skill; ned carries network
    // tickets, bill none, so the load decides for bill.
    assert!(model["ned"].0 > 0);
    let b = open(&mut p, "acct-disp", "billing", "Invoice wrong").await;
    assert_eq!(b.assignee_id, "bill");
}

#[tokio::test]
async fn with_nobody_on_duty_with_the_skill_a_ticket_waits_in_the_queue_with_a_reason() {
    let suite = start_tickets().await;
    let mut p = people(&suite, ACME);
    hire(&mut p, "dba", &["database"], false).await;
    hire(&mut p, "eve", &["network"], true).await;
    let t = open(&mut p, "acct-q", "database", "Replication lag").await;
    assert_eq!(
        (t.status, t.assignee_id.as_str()),
        (pb::TicketStatus::New as i32, "")
    );
    assert!(t.queue_reason.contains("database"), "{:?}", t.queue_reason);
    let queued = list(
        &mut p.boss,
        pb::ListTicketsRequest {
            status: pb::TicketStatus::New as i32,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(ids(&queued), vec![t.id.clone()]);

    // The engineer with the skill comes on duty and takes it.
    let mut dba = engineer(&suite, ACME, "dba");
    let duty = dba
        .set_engineer_duty(pb::SetEngineerDutyRequest {
            id: "dba".into(),
            on_duty: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(duty.assigned_ticket_ids, vec![t.id.clone()]);
    let taken = get(&mut dba, &t.id).await.unwrap();
    assert_eq!(
        (
            taken.status,
            taken.assignee_id.as_str(),
            taken.queue_reason.as_str()
        ),
        (pb::TicketStatus::Assigned as i32, "dba", "")
    );
}

#[tokio::test]
async fn a_manager_reassigns_a_ticket_and_an_engineer_cannot() {
    let suite = start_tickets().await;
    let mut p = people(&suite, ACME);
    hire(&mut p, "eve", &["network"], true).await;
    hire(&mut p, "ned", &["network"], false).await;
    let mut stream = ticket_events(&suite, ACME, &[pb::TicketAssigned::full_name()]).await;
    let t = open(&mut p, "acct-re", "network", "VPN drops").await;
    assert_eq!(t.assignee_id, "eve");

    let mut eve = engineer(&suite, ACME, "eve");
    assert_eq!(
        code(assign(&mut eve, &t.id, "ned").await),
        Code::PermissionDenied
    );
    assert_eq!(get(&mut p.boss, &t.id).await.unwrap().assignee_id, "eve");

    let moved = assign(&mut p.boss, &t.id, "ned").await.unwrap();
    assert_eq!(
        (moved.assignee_id.as_str(), moved.status),
        ("ned", pb::TicketStatus::Assigned as i32)
    );
    let event = find(&mut stream, &mut Vec::new(), |e: &pb::TicketAssigned| {
        e.ticket
            .as_ref()
            .is_some_and(|x| x.id == t.id && x.assignee_id == "ned")
    })
    .await;
    assert_eq!(event.previous_assignee_id, "eve");
    // The loads follow.
    assert_eq!(
        get_engineer(&mut p.boss, "ned").await.unwrap().open_tickets,
        1
    );
    assert_eq!(
        get_engineer(&mut p.boss, "eve").await.unwrap().open_tickets,
        0
    );
    // Nobody the tenant knows.
    assert_eq!(
        code(assign(&mut p.boss, &t.id, "nobody").await),
        Code::NotFound
    );
    // A resolved ticket is not reassigned.
    let mut ned = engineer(&suite, ACME, "ned");
    start(&mut ned, &t.id).await.unwrap();
    resolve(&mut ned, &t.id, "done").await.unwrap();
    assert_eq!(
        refused(assign(&mut p.boss, &t.id, "eve").await),
        (Code::FailedPrecondition, "INVALID_TRANSITION".into())
    );
}

// ---------------------------------------------------------------------------
// Similar solutions.
// ---------------------------------------------------------------------------

/// Resolved tickets of `tenant` with the given (subject, resolution), all
/// worked by "eve": their ids.
async fn resolved_history(
    suite: &TestSuite,
    tenant: &str,
    history: &[(&str, &str)],
) -> Vec<String> {
    let mut p = people(suite, tenant);
    hire(&mut p, "eve", &["support"], true).await;
    let mut out = Vec::new();
    for (subject, resolution) in history {
        let t = open(&mut p, "acct-kb", "support", subject).await;
        worked_and_resolved(suite, tenant, "eve", &t, resolution).await;
        out.push(t.id);
    }
    out
}

#[tokio::test]
async fn resolved_tickets_with_related_text_are_offered_ranked_in_english_and_chinese() {
    let suite = start_tickets().await;
    let history = [
        (
            "VPN connection drops every hour",
            "Renewed the expired VPN certificate",
        ),
        ("Printer paper jam on floor 3", "Cleared the paper tray"),
        ("打印机卡纸", "清理进纸器并更换搓纸轮"),
        ("无法登录系统，提示密码错误", "重置密码并解锁账号"),
    ];
    let ids = resolved_history(&suite, ACME, &history).await;
    let mut p = people(&suite, ACME);

    // A new English ticket about the VPN: the VPN resolution first.
    let made = create(
        &mut p.boss,
        "new-vpn",
        ticket(
            "acct-new",
            pb::Channel::Email,
            "support",
            pb::Priority::P3,
            "VPN connection drops after the update",
        ),
    )
    .await
    .unwrap();
    let offered = made.similar_solutions;
    assert!(!offered.is_empty());
    assert_eq!(
        (
            offered[0].ticket_id.as_str(),
            offered[0].rank,
            offered[0].resolution.as_str()
        ),
        (ids[0].as_str(), 1, history[0].1)
    );
    let ranks: Vec<i32> = offered.iter().map(|s| s.rank).collect();
    assert_eq!(
        ranks,
        (1..=i32::try_from(offered.len()).unwrap()).collect::<Vec<_>>()
    );
    // Chinese text finds the Chinese resolutions.
    let login = similar(&mut p.boss, "系统登录失败，密码错误").await;
    assert_eq!(
        login.first().map(|s| s.ticket_id.as_str()),
        Some(ids[3].as_str())
    );
    let jam = similar(&mut p.boss, "打印机又卡纸了").await;
    assert_eq!(
        jam.first().map(|s| s.ticket_id.as_str()),
        Some(ids[2].as_str())
    );
    // By ticket: its own subject and description are the query.
    let by_ticket = p
        .boss
        .find_similar_solutions(pb::FindSimilarSolutionsRequest {
            ticket_id: made.ticket.unwrap().id,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .solutions;
    assert_eq!(
        by_ticket.first().map(|s| s.ticket_id.as_str()),
        Some(ids[0].as_str())
    );
    // Neither or both of ticket and text.
    let neither = p
        .boss
        .find_similar_solutions(pb::FindSimilarSolutionsRequest::default())
        .await;
    assert_eq!(code(neither), Code::InvalidArgument);
}

#[tokio::test]
async fn another_tenants_resolutions_are_never_offered() {
    let suite = start_tickets().await;
    let theirs = resolved_history(
        &suite,
        GLOBEX,
        &[("VPN connection drops every hour", "Globex's own VPN fix")],
    )
    .await;
    let ours = resolved_history(&suite, ACME, &[("Printer paper jam", "Cleared the tray")]).await;
    let mut p = people(&suite, ACME);
    let made = create(
        &mut p.boss,
        "new-vpn",
        ticket(
            "acct-new",
            pb::Channel::Email,
            "support",
            pb::Priority::P3,
            "VPN connection drops every hour",
        ),
    )
    .await
    .unwrap();
    let mut offered: Vec<String> = made
        .similar_solutions
        .iter()
        .map(|s| s.ticket_id.clone())
        .collect();
    offered.extend(
        similar(&mut p.boss, "VPN connection drops every hour")
            .await
            .into_iter()
            .map(|s| s.ticket_id),
    );
    assert!(!offered.contains(&theirs[0]), "{offered:?}");
    assert!(offered.iter().all(|id| ours.contains(id)), "{offered:?}");
    // Globex's own engineers find it.
    let mut g = people(&suite, GLOBEX);
    let found = similar(&mut g.boss, "VPN connection drops").await;
    assert_eq!(
        found.first().map(|s| s.ticket_id.as_str()),
        Some(theirs[0].as_str())
    );
}

// ---------------------------------------------------------------------------
// Satisfaction, health, churn risk, loyalty tiers.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn csat_on_resolution_and_nps_answers_are_reflected_in_the_account_health() {
    let suite = start_tickets().await;
    let mut p = people(&suite, ACME);
    entitle(&mut p, "acct-h", "amy", calendar_plan("gold", 30))
        .await
        .unwrap();
    hire(&mut p, "eve", &["network"], true).await;
    // No report before anything happened.
    assert_eq!(code(health(&mut p.boss, "acct-h").await), Code::NotFound);

    let solved = open(&mut p, "acct-h", "network", "VPN drops").await;
    let pending = open(&mut p, "acct-h", "network", "Wi-Fi slow").await;
    // A rating needs a resolution.
    assert_eq!(
        refused(csat(&mut p.portal, &pending.id, 5).await),
        (Code::FailedPrecondition, "NOT_RESOLVED".into())
    );
    worked_and_resolved(&suite, ACME, "eve", &solved, "renewed the certificate").await;
    let rated = csat(&mut p.portal, &solved.id, 4).await.unwrap();
    assert_eq!(rated.csat, 4);
    let h = health(&mut p.boss, "acct-h").await.unwrap();
    assert_eq!(
        (h.tickets, h.resolution_rate_percent, h.mean_csat_hundredths),
        (2, 50, 400)
    );
    // A second rating replaces the first.
    let rerated = csat(&mut p.portal, &solved.id, 2).await.unwrap();
    assert_eq!(rerated.csat, 2);
    assert_eq!(
        health(&mut p.boss, "acct-h")
            .await
            .unwrap()
            .mean_csat_hundredths,
        200
    );

    // NPS: promoters minus detractors in percent of the answers.
    let answers = [10, 9];
    let mut last = None;
    for (i, score) in answers.iter().enumerate() {
        last = Some(
            nps(&mut p.portal, "acct-h", &format!("c{i}"), *score)
                .await
                .unwrap(),
        );
    }
    let promoters_only = last.unwrap();
    assert_eq!((promoters_only.nps, promoters_only.nps_answers), (100, 2));
    let with_detractor = nps(&mut p.portal, "acct-h", "c9", 0).await.unwrap();
    let (promoters, detractors, n) = (2, 1, 3);
    assert_eq!(
        (with_detractor.nps, with_detractor.nps_answers),
        ((promoters - detractors) * 100 / n, n)
    );
    // Nothing else changed: a detractor lowers the score.
    assert!(
        with_detractor.score < promoters_only.score,
        "{} then {}",
        promoters_only.score,
        with_detractor.score
    );
    assert_eq!(health(&mut p.amy, "acct-h").await.unwrap(), with_detractor);
}

/// The CSAT is a component of the score with the tenant's own weight:
/// a rating alone moves it, and a weight of 0 leaves ratings out.
#[tokio::test]
async fn a_csat_alone_moves_the_account_health_score_by_the_tenants_weight() {
    let suite = start_tickets().await;
    let mut p = people(&suite, ACME);
    let config = configure(&mut p, |_| {}).await;
    let csat_weight = config.health_weights.unwrap().csat;
    assert_eq!(csat_weight, Some(20), "the default weight");
    entitle(&mut p, "acct-csat", "amy", calendar_plan("gold", 30))
        .await
        .unwrap();
    hire(&mut p, "eve", &["network"], true).await;
    let t = open(&mut p, "acct-csat", "network", "VPN drops").await;
    worked_and_resolved(&suite, ACME, "eve", &t, "renewed the certificate").await;
    let before = health(&mut p.boss, "acct-csat").await.unwrap();

    // Nothing but the rating changes: a poor one lowers the score.
    csat(&mut p.portal, &t.id, 1).await.unwrap();
    let poor = health(&mut p.boss, "acct-csat").await.unwrap();
    assert_eq!(
        (poor.tickets, poor.resolution_rate_percent, poor.breaches),
        (
            before.tickets,
            before.resolution_rate_percent,
            before.breaches
        )
    );
    assert!(
        poor.score < before.score,
        "{} then {}",
        before.score,
        poor.score
    );
    // A better one raises it again.
    csat(&mut p.portal, &t.id, 5).await.unwrap();
    let good = health(&mut p.boss, "acct-csat").await.unwrap();
    assert!(
        good.score > poor.score,
        "{} then {}",
        poor.score,
        good.score
    );

    // Weighed 0 by the tenant, a rating no longer moves it.
    configure(&mut p, |c| {
        if let Some(w) = c.health_weights.as_mut() {
            w.csat = Some(0);
        }
    })
    .await;
    let t2 = open(&mut p, "acct-csat", "network", "VPN drops again").await;
    worked_and_resolved(&suite, ACME, "eve", &t2, "renewed it again").await;
    let unrated = health(&mut p.boss, "acct-csat").await.unwrap();
    csat(&mut p.portal, &t2.id, 1).await.unwrap();
    let rated = health(&mut p.boss, "acct-csat").await.unwrap();
    assert_eq!(rated.mean_csat_hundredths, 300);
    assert_eq!(rated.score, unrated.score);
}

#[tokio::test]
async fn a_usage_guide_unopened_three_times_in_a_row_raises_churn_risk_and_a_retention_task() {
    let suite = start_tickets().await;
    let mut p = people(&suite, ACME);
    let config = configure(&mut p, |_| {}).await;
    let in_a_row = config.churn_rules.unwrap().unopened_guides_in_a_row;
    assert_eq!(in_a_row, 3, "the seed's rule");
    entitle(&mut p, "acct-churn", "amy", calendar_plan("gold", 30))
        .await
        .unwrap();
    entitle(&mut p, "acct-fine", "bob", calendar_plan("gold", 30))
        .await
        .unwrap();
    let mut stream = ticket_events(
        &suite,
        ACME,
        &[
            pb::AccountChurnRiskRaised::full_name(),
            pb::RetentionTaskCreated::full_name(),
        ],
    )
    .await;
    use pb::UsageSignalKind::{GuideOpened, GuideSent};

    // Two unopened, then opened: the streak ends.
    let mut n = 0;
    let mut send = |kind| {
        n += 1;
        (format!("sig-{n}"), kind)
    };
    let mut h = None;
    for (rid, kind) in [send(GuideSent), send(GuideSent), send(GuideOpened)] {
        h = Some(
            signal(&mut p.portal, &rid, "acct-churn", kind)
                .await
                .unwrap(),
        );
    }
    let h = h.unwrap();
    assert_eq!((h.unopened_guides_in_a_row, h.at_risk), (0, false));
    // Then unopened up to the rule: at risk on the last, not before.
    for i in 1..=in_a_row {
        let (rid, kind) = send(GuideSent);
        let h = signal(&mut p.portal, &rid, "acct-churn", kind)
            .await
            .unwrap();
        assert_eq!(
            (h.unopened_guides_in_a_row, h.at_risk),
            (i, i == in_a_row),
            "after {i} unopened"
        );
    }
    let raised = find(
        &mut stream,
        &mut Vec::new(),
        |e: &pb::AccountChurnRiskRaised| {
            e.health
                .as_ref()
                .is_some_and(|h| h.account_id == "acct-churn")
        },
    )
    .await
    .health
    .unwrap();
    assert_eq!(
        (
            raised.risk_reasons.clone(),
            raised.account_manager_id.as_str()
        ),
        (vec![pb::ChurnReason::GuideUnopened as i32], "amy")
    );
    let task = find(
        &mut stream,
        &mut Vec::new(),
        |e: &pb::RetentionTaskCreated| {
            e.task
                .as_ref()
                .is_some_and(|t| t.account_id == "acct-churn")
        },
    )
    .await
    .task
    .unwrap();
    assert_eq!(
        (task.assignee_id.as_str(), task.status, task.reasons.clone()),
        (
            "amy",
            pb::RetentionTaskStatus::Open as i32,
            vec![pb::ChurnReason::GuideUnopened as i32]
        )
    );
    // One more unopened guide: still one task.
    let (rid, kind) = send(GuideSent);
    signal(&mut p.portal, &rid, "acct-churn", kind)
        .await
        .unwrap();

    // The account manager sees the task and the account at risk; another
    // sales user sees neither; the manager sees both.
    let tasks = |c: &mut TicketsClient| {
        let mut c = c.clone();
        async move {
            c.list_retention_tasks(pb::ListRetentionTasksRequest::default())
                .await
                .unwrap()
                .into_inner()
                .tasks
                .into_iter()
                .map(|t| t.id)
                .collect::<Vec<_>>()
        }
    };
    let at_risk = |c: &mut TicketsClient| {
        let mut c = c.clone();
        async move {
            c.list_at_risk_accounts(pb::ListAtRiskAccountsRequest::default())
                .await
                .unwrap()
                .into_inner()
                .accounts
                .into_iter()
                .map(|h| h.account_id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(tasks(&mut p.amy).await, vec![task.id.clone()]);
    assert_eq!(tasks(&mut p.boss).await, vec![task.id.clone()]);
    assert!(tasks(&mut p.bob).await.is_empty());
    assert_eq!(at_risk(&mut p.amy).await, vec!["acct-churn".to_owned()]);
    assert_eq!(at_risk(&mut p.boss).await, vec!["acct-churn".to_owned()]);
    assert!(at_risk(&mut p.bob).await.is_empty());
}

/// Seed-like thresholds the test owns: recent within 30 days, frequent at
/// 2 a month, valuable from 50,000, existing from 2 purchases.
fn thresholds() -> pb::TierThresholds {
    pb::TierThresholds {
        industry: String::new(),
        recent_days: 30,
        frequency_window_days: 30,
        frequent_purchases: 2,
        valuable_order_units: 50_000,
        existing_min_purchases: 2,
    }
}

#[tokio::test]
async fn an_accounts_loyalty_tier_follows_its_purchases_and_each_change_is_an_event() {
    let suite = start_tickets().await;
    let mut p = people(&suite, ACME);
    let t = thresholds();
    configure(&mut p, |c| c.tier_thresholds = vec![thresholds()]).await;
    let mut stream = ticket_events(&suite, ACME, &[pb::LoyaltyTierChanged::full_name()]).await;
    assert_eq!(
        code(
            p.boss
                .get_loyalty_tier(pb::GetLoyaltyTierRequest {
                    account_id: "acct-vip".into()
                })
                .await
        ),
        Code::NotFound
    );
    let valuable = t.valuable_order_units + 10_000;

    // Fewer purchases than an existing customer's: new.
    let first = purchase(&mut p.portal, "buy-1", "acct-vip", valuable)
        .await
        .unwrap();
    assert_eq!(
        (first.tier, first.purchases),
        (pb::LoyaltyTier::New as i32, 1)
    );
    // Recent, frequent and valuable: loyal.
    let second = purchase(&mut p.portal, "buy-2", "acct-vip", valuable)
        .await
        .unwrap();
    assert_eq!(
        (
            second.tier,
            second.purchases,
            second.recent_purchases,
            second.average_order_value
        ),
        (pb::LoyaltyTier::Loyal as i32, 2, 2, cny(valuable))
    );
    let change = find(
        &mut stream,
        &mut Vec::new(),
        |e: &pb::LoyaltyTierChanged| {
            e.tier.as_ref().is_some_and(|x| {
                x.account_id == "acct-vip" && x.tier == pb::LoyaltyTier::Loyal as i32
            })
        },
    )
    .await;
    assert_eq!(change.previous_tier, pb::LoyaltyTier::New as i32);
    let got = p
        .amy
        .get_loyalty_tier(pb::GetLoyaltyTierRequest {
            account_id: "acct-vip".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .tier
        .unwrap();
    assert_eq!(got.tier, pb::LoyaltyTier::Loyal as i32);

    // Buys again but small orders: existing, not loyal.
    let small = t.valuable_order_units / 10;
    purchase(&mut p.portal, "buy-3", "acct-small", small)
        .await
        .unwrap();
    let again = purchase(&mut p.portal, "buy-4", "acct-small", small)
        .await
        .unwrap();
    assert_eq!(again.tier, pb::LoyaltyTier::Existing as i32);
}

#[tokio::test]
async fn a_vip_account_gets_the_vip_service_level_and_is_dispatched_first() {
    let suite = start_tickets().await;
    let mut p = people(&suite, ACME);
    let config = configure(&mut p, |c| {
        c.tier_thresholds = vec![thresholds()];
        c.default_plan = Some(calendar_plan("standard", 120));
        c.vip_plan = Some(calendar_plan("vip", 30));
    })
    .await;
    let valuable = thresholds().valuable_order_units;
    for rid in ["vip-1", "vip-2"] {
        purchase(&mut p.portal, rid, "acct-vip", valuable)
            .await
            .unwrap();
    }
    hire(&mut p, "eve", &["network"], false).await;

    // Both queued (nobody on duty); the ordinary one first.
    let plain = open(&mut p, "acct-plain", "network", "VPN drops").await;
    let vip = open(&mut p, "acct-vip", "network", "VPN drops too").await;
    assert_eq!(
        (vip.account_tier, plain.account_tier),
        (pb::LoyaltyTier::Loyal as i32, pb::LoyaltyTier::New as i32)
    );
    let vip_plan = config.vip_plan.unwrap();
    let standard = config.default_plan.unwrap();
    assert_eq!(
        (sla(&vip).service_level.as_str(), *target(&vip)),
        ("vip", plan_target(&vip_plan, pb::Priority::P3))
    );
    assert_eq!(
        (sla(&plain).service_level.as_str(), *target(&plain)),
        ("standard", plan_target(&standard, pb::Priority::P3))
    );

    // The engineer comes on duty: the VIP ticket is taken first.
    let duty = engineer(&suite, ACME, "eve")
        .set_engineer_duty(pb::SetEngineerDutyRequest {
            id: "eve".into(),
            on_duty: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        duty.assigned_ticket_ids,
        vec![vip.id.clone(), plain.id.clone()]
    );
}

// ---------------------------------------------------------------------------
// Bad input and refused transitions.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_bad_priority_channel_subject_csat_or_nps_is_invalid_argument_naming_the_field() {
    let suite = start_tickets().await;
    let mut p = people(&suite, ACME);
    let good = || {
        ticket(
            "acct-bad",
            pb::Channel::Email,
            "network",
            pb::Priority::P2,
            "VPN",
        )
    };
    let cases: Vec<(&str, pb::Ticket)> = vec![
        (
            "ticket.priority",
            pb::Ticket {
                priority: 0,
                ..good()
            },
        ),
        (
            "ticket.priority",
            pb::Ticket {
                priority: 9,
                ..good()
            },
        ),
        (
            "ticket.channel",
            pb::Ticket {
                channel: 0,
                ..good()
            },
        ),
        (
            "ticket.channel",
            pb::Ticket {
                channel: 99,
                ..good()
            },
        ),
        (
            "ticket.subject",
            pb::Ticket {
                subject: String::new(),
                ..good()
            },
        ),
        (
            "ticket.subject",
            pb::Ticket {
                subject: "   ".into(),
                ..good()
            },
        ),
    ];
    for (i, (field, t)) in cases.into_iter().enumerate() {
        let (c, fields) = invalid(create(&mut p.boss, &format!("bad-{i}"), t).await);
        assert_eq!(
            (c, fields),
            (Code::InvalidArgument, vec![field.to_owned()]),
            "case {i}"
        );
    }
    assert!(
        list(&mut p.boss, pb::ListTicketsRequest::default())
            .await
            .is_empty()
    );

    hire(&mut p, "eve", &["network"], true).await;
    let t = open(&mut p, "acct-bad", "network", "VPN drops").await;
    worked_and_resolved(&suite, ACME, "eve", &t, "fixed").await;
    for score in [0, 6, -1] {
        let (c, fields) = invalid(csat(&mut p.portal, &t.id, score).await);
        assert_eq!(
            (c, fields),
            (Code::InvalidArgument, vec!["score".to_owned()]),
            "CSAT {score}"
        );
    }
    assert_eq!(get(&mut p.boss, &t.id).await.unwrap().csat, 0);
    for score in [-1, 11] {
        let (c, fields) = invalid(nps(&mut p.portal, "acct-bad", "c1", score).await);
        assert_eq!(
            (c, fields),
            (Code::InvalidArgument, vec!["score".to_owned()]),
            "NPS {score}"
        );
    }
    // The bounds themselves are accepted.
    csat(&mut p.portal, &t.id, 1).await.unwrap();
    csat(&mut p.portal, &t.id, 5).await.unwrap();
    nps(&mut p.portal, "acct-bad", "c1", 0).await.unwrap();
    nps(&mut p.portal, "acct-bad", "c2", 10).await.unwrap();
}

#[tokio::test]
async fn closing_a_new_ticket_and_reopening_after_the_window_are_failed_precondition() {
    let suite = start_tickets().await;
    let mut p = people(&suite, ACME);
    // A window of no days: any reopening comes after it.
    configure(&mut p, |c| c.reopen_window_days = 0).await;
    let queued = open(&mut p, "acct-fp", "network", "VPN drops").await;
    assert_eq!(queued.status, pb::TicketStatus::New as i32);
    assert_eq!(
        refused(close(&mut p.boss, &queued.id).await),
        (Code::FailedPrecondition, "INVALID_TRANSITION".into())
    );
    assert_eq!(
        refused(resolve(&mut p.boss, &queued.id, "nothing").await),
        (Code::FailedPrecondition, "INVALID_TRANSITION".into())
    );
    assert_eq!(
        get(&mut p.boss, &queued.id).await.unwrap().status,
        pb::TicketStatus::New as i32
    );

    hire(&mut p, "eve", &["network"], true).await;
    let t = open(&mut p, "acct-fp", "network", "Wi-Fi slow").await;
    let resolved = worked_and_resolved(&suite, ACME, "eve", &t, "moved the access point").await;
    assert_eq!(
        refused(reopen(&mut p.boss, &t.id).await),
        (Code::FailedPrecondition, "REOPEN_WINDOW_PASSED".into())
    );
    let after = get(&mut p.boss, &t.id).await.unwrap();
    assert_eq!((after.status, after.reopen_count), (resolved.status, 0));
}

// ---------------------------------------------------------------------------
// Roles and tenants.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn another_tenants_ticket_account_health_and_engineer_are_not_found() {
    let suite = start_tickets().await;
    let mut acme = people(&suite, ACME);
    hire(&mut acme, "eve", &["network"], true).await;
    let t = open(&mut acme, "acct-x", "network", "VPN drops").await;
    health(&mut acme.boss, "acct-x").await.unwrap();

    let mut globex = people(&suite, GLOBEX);
    hire(&mut globex, "gus", &["network"], true).await;
    let theirs = open(&mut globex, "acct-g", "network", "Their VPN").await;
    let nf = |r: Result<pb::Ticket, tonic::Status>, what: &str| {
        assert_eq!(code(r), Code::NotFound, "{what}");
    };
    nf(get(&mut globex.boss, &t.id).await, "GetTicket");
    nf(assign(&mut globex.boss, &t.id, "gus").await, "AssignTicket");
    nf(close(&mut globex.portal, &t.id).await, "CloseTicket");
    nf(reopen(&mut globex.portal, &t.id).await, "ReopenTicket");
    nf(csat(&mut globex.portal, &t.id, 5).await, "RecordCsat");
    assert_eq!(
        code(comments(&mut globex.boss, &t.id).await),
        Code::NotFound
    );
    assert_eq!(
        code(health(&mut globex.boss, "acct-x").await),
        Code::NotFound
    );
    assert_eq!(
        code(get_engineer(&mut globex.boss, "eve").await),
        Code::NotFound
    );
    // Acme's engineer is unknown to Globex: NOT_FOUND, not assigned.
    nf(
        assign(&mut globex.boss, &theirs.id, "eve").await,
        "AssignTicket to acme's engineer",
    );
    assert_eq!(
        ids(&list(&mut globex.boss, Default::default()).await),
        vec![theirs.id]
    );
    // Acme's ticket is untouched.
    let ours = get(&mut acme.boss, &t.id).await.unwrap();
    assert_eq!(
        (ours.assignee_id.as_str(), ours.etag.as_str()),
        ("eve", t.etag.as_str())
    );
}

#[tokio::test]
async fn engineers_see_and_work_their_own_tickets_and_the_queue() {
    let suite = start_tickets().await;
    let mut p = people(&suite, ACME);
    hire(&mut p, "eve", &["network"], true).await;
    hire(&mut p, "ned", &["printers"], true).await;
    let evs = open(&mut p, "acct-e", "network", "VPN drops").await;
    let neds = open(&mut p, "acct-e", "printers", "Paper jam").await;
    let queued = open(&mut p, "acct-e", "database", "Replication lag").await;
    let (mut eve, mut ned) = (engineer(&suite, ACME, "eve"), engineer(&suite, ACME, "ned"));

    assert_eq!(
        ids(&list(&mut eve, Default::default()).await),
        sorted(vec![evs.id.clone(), queued.id.clone()])
    );
    get(&mut eve, &evs.id).await.unwrap();
    get(&mut eve, &queued.id).await.unwrap();
    assert_eq!(code(get(&mut eve, &neds.id).await), Code::NotFound);
    // Someone else's ticket is not eve's to work.
    assert_eq!(code(start(&mut eve, &neds.id).await), Code::NotFound);
    assert_eq!(
        refused(
            comment(
                &mut ned,
                &queued.id,
                "mine?",
                pb::CommentVisibility::Internal
            )
            .await
        ),
        (Code::PermissionDenied, "NOT_ASSIGNEE".into())
    );
    // Her own, she works.
    let started = start(&mut eve, &evs.id).await.unwrap();
    assert_eq!(started.status, pb::TicketStatus::InProgress as i32);
    // She reads her own engineer record, not another's.
    assert_eq!(get_engineer(&mut eve, "eve").await.unwrap().open_tickets, 1);
    assert!(get_engineer(&mut eve, "ned").await.is_err());
}

#[tokio::test]
async fn sales_see_their_accounts_tickets_and_health_only() {
    let suite = start_tickets().await;
    let mut p = people(&suite, ACME);
    entitle(&mut p, "acct-amy", "amy", calendar_plan("gold", 30))
        .await
        .unwrap();
    entitle(&mut p, "acct-bob", "bob", calendar_plan("gold", 30))
        .await
        .unwrap();
    let amys = open(&mut p, "acct-amy", "network", "VPN drops").await;
    let bobs = open(&mut p, "acct-bob", "network", "Wi-Fi slow").await;

    assert_eq!(
        ids(&list(&mut p.amy, Default::default()).await),
        vec![amys.id.clone()]
    );
    assert_eq!(
        ids(&list(&mut p.bob, Default::default()).await),
        vec![bobs.id.clone()]
    );
    get(&mut p.amy, &amys.id).await.unwrap();
    assert_eq!(code(get(&mut p.amy, &bobs.id).await), Code::NotFound);
    health(&mut p.amy, "acct-amy").await.unwrap();
    assert_eq!(code(health(&mut p.amy, "acct-bob").await), Code::NotFound);
    // Sales read, they do not work tickets.
    assert_eq!(
        code(
            p.amy
                .update_ticket(pb::UpdateTicketRequest {
                    ticket: Some(pb::Ticket {
                        id: amys.id.clone(),
                        subject: "changed".into(),
                        ..Default::default()
                    }),
                    update_mask: None,
                })
                .await
        ),
        Code::PermissionDenied
    );
    // They open tickets for their customers.
    let raised = create(
        &mut p.amy,
        "amy-raised",
        ticket(
            "acct-amy",
            pb::Channel::Phone,
            "network",
            pb::Priority::P2,
            "Customer called",
        ),
    )
    .await
    .unwrap()
    .ticket
    .unwrap();
    assert_eq!(raised.creator, "amy");
}

/// Whether `c` sees the ticket `id` of `account`: GetTicket, ListTickets
/// and the account's health, each OK (true) or NOT_FOUND (false).
async fn sees(c: &mut TicketsClient, id: &str, account: &str) -> (bool, bool, bool) {
    let got = match get(c, id).await {
        Ok(_) => true,
        Err(s) if s.code() == Code::NotFound => false,
        Err(s) => panic!("GetTicket: {s:?}"),
    };
    let listed = list(c, Default::default()).await.iter().any(|t| t.id == id);
    let health = match health(c, account).await {
        Ok(_) => true,
        Err(s) if s.code() == Code::NotFound => false,
        Err(s) => panic!("GetAccountHealth: {s:?}"),
    };
    (got, listed, health)
}

/// Sales see the tickets and health of the accounts they manage now: an
/// account reassigned in the opportunities service (UpdateAccount owner_id
/// by a manager) moves to its new account manager here, and the former one
/// gets NOT_FOUND.
#[tokio::test]
async fn a_reassigned_account_moves_its_tickets_and_health_to_the_new_account_manager() {
    use crm_proto::crm::opportunities::v1 as opps;
    let suite = start_tickets().await;
    let mut p = people(&suite, ACME);
    let opportunities = |who: &str, roles: &[Role]| {
        suite.opportunities_client(Some(&suite.token(ACME, who, roles)))
    };
    let account = opportunities("amy", &[Role::Sales])
        .create_account(opps::CreateAccountRequest {
            account: Some(opps::Account {
                name: "Initech".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    assert_eq!(account.owner_id, "amy");
    let t = open(&mut p, &account.id, "network", "TPS reports lost").await;
    // Amy owns the account: its AccountCreated makes her its manager here.
    // The ticket, the list and the health move in one transaction: the
    // poll reads one of them (under the gateway's rate limit), then all.
    eventually(WAIT, "amy sees her account's ticket", || {
        let (mut amy, id) = (p.amy.clone(), t.id.clone());
        async move { get(&mut amy, &id).await.ok().map(|_| ()) }
    })
    .await;
    assert_eq!(
        sees(&mut p.amy, &t.id, &account.id).await,
        (true, true, true)
    );
    assert_eq!(
        sees(&mut p.bob, &t.id, &account.id).await,
        (false, false, false)
    );

    let moved = opportunities("boss", &[Role::Manager])
        .update_account(opps::UpdateAccountRequest {
            account: Some(opps::Account {
                id: account.id.clone(),
                owner_id: "bob".into(),
                ..Default::default()
            }),
            update_mask: Some(prost_types::FieldMask {
                paths: vec!["owner_id".into()],
            }),
            reason: "territory change".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    assert_eq!(moved.owner_id, "bob");
    eventually(WAIT, "bob sees the reassigned account's ticket", || {
        let (mut bob, id) = (p.bob.clone(), t.id.clone());
        async move { get(&mut bob, &id).await.ok().map(|_| ()) }
    })
    .await;
    assert_eq!(
        sees(&mut p.bob, &t.id, &account.id).await,
        (true, true, true)
    );
    assert_eq!(
        sees(&mut p.amy, &t.id, &account.id).await,
        (false, false, false),
        "the former account manager sees none of it"
    );
    assert_eq!(code(get(&mut p.amy, &t.id).await), Code::NotFound);
    assert_eq!(code(health(&mut p.amy, &account.id).await), Code::NotFound);
}

#[tokio::test]
async fn integrations_create_tickets_and_record_surveys_and_usage_signals_others_cannot() {
    let suite = start_tickets().await;
    let mut p = people(&suite, ACME);
    let t = create(
        &mut p.portal,
        "monitoring-1",
        ticket(
            "acct-i",
            pb::Channel::Integration,
            "network",
            pb::Priority::P1,
            "Link down",
        ),
    )
    .await
    .unwrap()
    .ticket
    .unwrap();
    assert_eq!(
        (t.creator.as_str(), t.channel),
        ("portal", pb::Channel::Integration as i32)
    );
    let h = nps(&mut p.portal, "acct-i", "c1", 9).await.unwrap();
    assert_eq!(h.nps_answers, 1);
    let h = signal(
        &mut p.portal,
        "sig-i",
        "acct-i",
        pb::UsageSignalKind::GuideSent,
    )
    .await
    .unwrap();
    assert_eq!(h.unopened_guides_in_a_row, 1);

    // Surveys, usage signals and purchases are the integrations' only.
    let mut eve = engineer(&suite, ACME, "eve");
    for c in [&mut p.amy, &mut p.boss, &mut eve] {
        assert_eq!(
            code(nps(c, "acct-i", "c2", 9).await),
            Code::PermissionDenied
        );
        assert_eq!(
            code(signal(c, "sig-x", "acct-i", pb::UsageSignalKind::GuideSent).await),
            Code::PermissionDenied
        );
        assert_eq!(
            code(purchase(c, "buy-x", "acct-i", 10).await),
            Code::PermissionDenied
        );
    }
    let h = health(&mut p.boss, "acct-i").await.unwrap();
    assert_eq!((h.nps_answers, h.unopened_guides_in_a_row), (1, 1));
}

// ---------------------------------------------------------------------------
// Retries.
// ---------------------------------------------------------------------------

#[tokio::test]
async fn a_create_ticket_retried_with_the_same_request_id_makes_one_ticket() {
    let suite = start_tickets().await;
    let mut p = people(&suite, ACME);
    let t = || {
        ticket(
            "acct-r",
            pb::Channel::Chat,
            "network",
            pb::Priority::P2,
            "VPN drops",
        )
    };
    let first = create(&mut p.portal, "retry-1", t())
        .await
        .unwrap()
        .ticket
        .unwrap();
    let again = create(&mut p.portal, "retry-1", t())
        .await
        .unwrap()
        .ticket
        .unwrap();
    assert_eq!(again.id, first.id);
    assert_eq!(
        ids(&list(&mut p.boss, Default::default()).await),
        vec![first.id.clone()]
    );
    // The same id with another request is refused, naming the id.
    let other = pb::Ticket {
        subject: "Something else".into(),
        ..t()
    };
    let (c, fields) = invalid(create(&mut p.portal, "retry-1", other).await);
    assert_eq!(
        (c, fields),
        (Code::InvalidArgument, vec!["request_id".to_owned()])
    );
    assert_eq!(list(&mut p.boss, Default::default()).await.len(), 1);
}
