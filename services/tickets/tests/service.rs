//! The tickets service over a real database (SQLite, or PostgreSQL when
//! `CRM_TEST_DATABASE_URL` is set): the go-live consumer, the SLA sweeper,
//! dispatch, similar solutions and churn risk, through the use cases.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crm_events::Handler;
use crm_proto::crm::delivery::v1 as delivery;
use crm_tickets::app::{EngineerInput, Move, SimilarQuery, UseCases};
use crm_tickets::domain::{
    Actor, Channel, NewTicket, Priority, Role, Status, TicketError, TicketFilter,
};
use crm_tickets::workers::{
    AccountOwnerHandler, ProjectHandler, SWEEPER, spawn_sweeper, sweep, sweep_tiers,
};
use crm_tickets::{Tickets, TicketsSettings, store};
use prost::Message;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, TransactionTrait};

const DAY: i64 = 86_400_000_000;

async fn open() -> (Tickets, DatabaseConnection, String, std::path::PathBuf) {
    open_with(TicketsSettings::default()).await
}

async fn open_with(
    settings: TicketsSettings,
) -> (Tickets, DatabaseConnection, String, std::path::PathBuf) {
    let name = format!("tickets_test_{}", crm_store::new_id().replace('-', "_"));
    let dir = std::env::temp_dir().join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    let url = std::env::var("CRM_TEST_DATABASE_URL").ok();
    let location = crm_store::Location::for_service(&name, url.as_deref(), &dir);
    let db = crm_store::connect(&location, 4).await.unwrap();
    let context = crm_service::Context {
        db: db.clone(),
        identity: None,
        peers: crm_service::Peers::default(),
    };
    let service = <Tickets as crm_service::Service>::open(context, settings)
        .await
        .unwrap();
    (service, db, name, dir)
}

async fn close(db: DatabaseConnection, schema: &str, dir: std::path::PathBuf) {
    if db.get_database_backend() == DbBackend::Postgres {
        let _ = db
            .execute_unprepared(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .await;
    }
    db.close().await.unwrap();
    let _ = std::fs::remove_dir_all(dir);
}

fn manager() -> Actor {
    Actor::new("mgr", vec![Role::Manager])
}

fn integration() -> Actor {
    Actor::new("erp", vec![Role::Integration])
}

fn new_ticket(account: &str, category: &str, priority: Priority, subject: &str) -> NewTicket {
    NewTicket {
        account_id: account.into(),
        contact_id: String::new(),
        channel: Channel::Email,
        category: category.into(),
        priority,
        subject: subject.into(),
        description: String::new(),
    }
}

async fn engineer(app: &UseCases, tenant: &str, id: &str, skills: &[&str], on_duty: bool) {
    app.upsert_engineer(
        &manager(),
        tenant,
        EngineerInput {
            id: id.into(),
            etag: String::new(),
            display_name: id.into(),
            skills: skills.iter().map(|s| (*s).to_owned()).collect(),
            on_duty: Some(on_duty),
        },
    )
    .await
    .unwrap();
}

async fn event_types(db: &DatabaseConnection) -> Vec<String> {
    db.query_all_raw(sea_orm::Statement::from_string(
        db.get_database_backend(),
        r#"SELECT "type" AS event_type FROM outbox_events ORDER BY create_time"#,
    ))
    .await
    .unwrap()
    .iter()
    .filter_map(|r| r.try_get::<String>("", "event_type").ok())
    .collect()
}

fn count(types: &[String], name: &str) -> usize {
    types.iter().filter(|t| t.ends_with(name)).count()
}

fn go_live(tenant: &str, project: &str, account: &str) -> crm_events::Event {
    let payload = delivery::DeliveryProjectCompleted {
        project: Some(delivery::Project {
            id: project.into(),
            account_id: account.into(),
            ..Default::default()
        }),
        account_id: account.into(),
        contract_id: "c-1".into(),
        contract_term: None,
        service_level: "gold".into(),
        service_team: Some(delivery::ServiceTeam {
            account_manager_id: "amy".into(),
            ..Default::default()
        }),
    };
    crm_events::Event {
        id: crm_store::new_id(),
        sequence: 1,
        r#type: "crm.delivery.v1.DeliveryProjectCompleted".into(),
        tenant_id: tenant.into(),
        payload: Some(prost_types::Any {
            type_url: "type.googleapis.com/crm.delivery.v1.DeliveryProjectCompleted".into(),
            value: payload.encode_to_vec(),
        }),
        ..Default::default()
    }
}

/// A replayed go-live makes one entitlement, in the event's tenant; its
/// account then gets that SLA on new tickets, and sales see the account's
/// tickets as its manager; an event that does not decode is permanent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_go_live_makes_one_entitlement() {
    let (service, db, schema, dir) = open().await;
    let app = service.app().clone();
    let handler = ProjectHandler { app: app.clone() };
    for _ in 0..2 {
        let txn = db.begin().await.unwrap();
        handler
            .handle(&txn, &go_live("acme", "p-1", "acc-1"))
            .await
            .unwrap();
        txn.commit().await.unwrap();
    }
    let page = crm_tickets::app::Page {
        after: None,
        limit: 10,
    };
    let all = app.list_entitlements("acme", None, page).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].project_id, "p-1");
    assert!(
        app.list_entitlements("other", None, page)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(count(&event_types(&db).await, "EntitlementCreated"), 1);

    let (t, _) = app
        .create_ticket(
            &integration(),
            "acme",
            None,
            new_ticket("acc-1", "network", Priority::P2, "VPN down"),
        )
        .await
        .unwrap();
    assert_eq!(t.sla.entitlement_id.as_deref(), Some(all[0].id.as_str()));
    let amy = Actor::new("amy", vec![Role::Sales]);
    assert!(app.get_ticket(&amy, "acme", &t.id).await.is_ok());
    let bob = Actor::new("bob", vec![Role::Sales]);
    assert!(matches!(
        app.get_ticket(&bob, "acme", &t.id).await,
        Err(TicketError::NotFound { .. })
    ));
    assert!(matches!(
        app.get_ticket(&manager(), "other", &t.id).await,
        Err(TicketError::NotFound { .. })
    ));

    let mut bad = go_live("acme", "p-2", "acc-2");
    if let Some(p) = bad.payload.as_mut() {
        p.value = vec![0xff, 0xff];
    }
    let txn = db.begin().await.unwrap();
    let err = handler.handle(&txn, &bad).await.unwrap_err();
    assert!(handler.is_permanent(&err));
    txn.rollback().await.unwrap();
    close(db, &schema, dir).await;
}

/// Dispatch: the skilled engineer on duty with the lightest load; nobody
/// with the skill leaves the ticket queued with a reason; an engineer
/// coming on duty takes the queue, VIP-free here, higher priority first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dispatch_by_skill_duty_and_load() {
    let (service, db, schema, dir) = open().await;
    let app = service.app().clone();
    engineer(&app, "acme", "busy", &["network"], true).await;
    engineer(&app, "acme", "idle", &["network"], true).await;
    engineer(&app, "acme", "off", &["network"], false).await;
    engineer(&app, "acme", "billing", &["billing"], true).await;
    let create = |p: Priority, cat: &'static str| {
        let app = app.clone();
        async move {
            app.create_ticket(
                &integration(),
                "acme",
                None,
                new_ticket("acc", cat, p, "it broke"),
            )
            .await
            .unwrap()
            .0
        }
    };
    let first = create(Priority::P3, "network").await;
    let second = create(Priority::P3, "network").await;
    let third = create(Priority::P3, "network").await;
    let mut assignees = [&first, &second, &third]
        .iter()
        .map(|t| t.assignee_id.clone().unwrap())
        .collect::<Vec<_>>();
    assignees.sort();
    // Two on duty with the skill: the load spreads, "off" gets none.
    assert!(assignees.contains(&"busy".to_owned()) && assignees.contains(&"idle".to_owned()));
    assert!(!assignees.contains(&"off".to_owned()));

    let low = create(Priority::P4, "hardware").await;
    let high = create(Priority::P1, "hardware").await;
    assert_eq!(high.status, Status::New);
    assert!(
        high.queue_reason.contains("hardware"),
        "{}",
        high.queue_reason
    );
    engineer(&app, "acme", "hw", &["hardware"], false).await;
    let (_, taken) = app
        .set_duty(&manager(), "acme", "hw", "", true)
        .await
        .unwrap();
    assert_eq!(taken, vec![high.id.clone(), low.id.clone()]);
    let high = app.get_ticket(&manager(), "acme", &high.id).await.unwrap();
    assert_eq!(
        (high.status, high.assignee_id.as_deref()),
        (Status::Assigned, Some("hw"))
    );
    close(db, &schema, dir).await;
}

/// The sweeper raises each warning and breach once, escalates by the
/// tenant's rule, and counts the breach in the account's health; a ticket
/// waiting on the customer is not breached however long it waits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_warns_breaches_and_escalates_once() {
    let (service, db, schema, dir) = open().await;
    let app = service.app().clone();
    engineer(&app, "acme", "eng", &["network"], true).await;
    let (t, _) = app
        .create_ticket(
            &integration(),
            "acme",
            None,
            new_ticket("acc", "network", Priority::P1, "down"),
        )
        .await
        .unwrap();
    let (paused, _) = app
        .create_ticket(
            &integration(),
            "acme",
            None,
            new_ticket("acc2", "network", Priority::P4, "slow"),
        )
        .await
        .unwrap();
    let eng = Actor::new("eng", vec![Role::Service]);
    app.transition(&eng, "acme", &paused.id, "", Move::Start, "")
        .await
        .unwrap();
    app.transition(&eng, "acme", &paused.id, "", Move::Wait, "")
        .await
        .unwrap();

    let later = crm_store::now_micros() + 60 * DAY;
    let swept = sweep(&app, later, 1).await;
    // Both clocks of the P1 ticket: a warning and a breach each.
    assert_eq!((swept.fired, swept.skipped), (4, 0), "{swept:?}");
    let t = app.get_ticket(&manager(), "acme", &t.id).await.unwrap();
    assert_eq!(t.sla.escalation_level, 2);
    assert!(t.sla.first_response.breached && t.sla.resolution.breached);
    let again = sweep(&app, later + DAY, 10).await;
    assert_eq!(again.fired, 0, "once");
    let types = event_types(&db).await;
    assert_eq!(count(&types, "TicketSlaWarning"), 2);
    assert_eq!(count(&types, "TicketSlaBreached"), 2);
    let paused = app
        .get_ticket(&manager(), "acme", &paused.id)
        .await
        .unwrap();
    assert!(!paused.sla.resolution.breached);
    let health = app.health(&manager(), "acme", "acc").await.unwrap();
    assert_eq!(health.stats.breaches, 2);
    let breached = app
        .list_tickets(
            &manager(),
            "acme",
            &TicketFilter {
                breached: true,
                ..TicketFilter::default()
            },
            crm_tickets::app::Page {
                after: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(breached.len(), 1);
    close(db, &schema, dir).await;
}

/// An unreadable ticket, and (on PostgreSQL) one another transaction
/// holds, are passed over; the others are swept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_or_broken_ticket_does_not_stop_the_sweep() {
    let (service, db, schema, dir) = open().await;
    let app = service.app().clone();
    let mut ids = Vec::new();
    for tenant in ["a", "a", "a", "b"] {
        let (t, _) = app
            .create_ticket(
                &integration(),
                tenant,
                None,
                new_ticket("acc", "x", Priority::P1, "down"),
            )
            .await
            .unwrap();
        ids.push(t.id);
    }
    ids.sort();
    let broken = &ids[0];
    db.execute_unprepared(&format!(
        "UPDATE tickets SET body = 'not a ticket' WHERE id = '{broken}'"
    ))
    .await
    .unwrap();
    let postgres = db.get_database_backend() == DbBackend::Postgres;
    let busy = ids[1].clone();
    let blocker = if postgres {
        let txn = db.begin().await.unwrap();
        txn.execute_unprepared(&format!(
            "UPDATE tickets SET update_time = 7 WHERE id = '{busy}'"
        ))
        .await
        .unwrap();
        Some(txn)
    } else {
        None
    };
    let later = crm_store::now_micros() + 60 * DAY;
    let swept = sweep(&app, later, 1).await;
    assert_eq!(swept.skipped, 1, "{swept:?}");
    let expected = if postgres { 2 } else { 3 };
    assert_eq!(swept.fired, expected * 4);
    if let Some(blocker) = blocker {
        blocker.commit().await.unwrap();
        assert_eq!(
            sweep(&app, later, 1).await.fired,
            4,
            "its turn at the next sweep"
        );
    }
    close(db, &schema, dir).await;
}

/// Shutdown stops the sweeper within the grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sweeper_stops_at_shutdown() {
    let (service, db, schema, dir) = open().await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let sweeper = spawn_sweeper(
        service.app().clone(),
        Duration::from_millis(20),
        5,
        async move {
            let _ = stopped.await;
        },
    );
    let _ = stop.send(());
    tokio::time::timeout(Duration::from_secs(10), sweeper)
        .await
        .expect("the sweeper stops at shutdown")
        .unwrap();
    close(db, &schema, dir).await;
}

/// Resolved tickets are offered by full-text similarity, Chinese by
/// character bigrams, only the tenant's own; a reopened one is withdrawn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn similar_solutions_come_from_the_tenants_resolved_tickets() {
    let (service, db, schema, dir) = open().await;
    let app = service.app().clone();
    engineer(&app, "acme", "eng", &["reports"], true).await;
    engineer(&app, "rival", "eng", &["reports"], true).await;
    let eng = Actor::new("eng", vec![Role::Service]);
    let resolve = |tenant: &'static str, subject: &'static str, resolution: &'static str| {
        let (app, eng) = (app.clone(), eng.clone());
        async move {
            let (t, _) = app
                .create_ticket(
                    &integration(),
                    tenant,
                    None,
                    new_ticket("acc", "reports", Priority::P3, subject),
                )
                .await
                .unwrap();
            app.transition(&eng, tenant, &t.id, "", Move::Start, "")
                .await
                .unwrap();
            app.resolve_ticket(&eng, tenant, &t.id, "", resolution)
                .await
                .unwrap();
            t.id
        }
    };
    let export = resolve("acme", "报表导出异常", "升级到 2.3 版本").await;
    let _login = resolve("acme", "login page slow", "cleared the session cache").await;
    let _rival = resolve("rival", "报表导出异常", "rival's fix").await;
    let (new, similar) = app
        .create_ticket(
            &integration(),
            "acme",
            None,
            new_ticket("acc", "reports", Priority::P3, "导出报表时异常"),
        )
        .await
        .unwrap();
    assert_eq!(similar.len(), 1, "{similar:?}");
    assert_eq!(similar[0].ticket_id, export);
    assert_eq!(similar[0].resolution, "升级到 2.3 版本");
    let by_text = app
        .find_similar(
            &manager(),
            "acme",
            SimilarQuery::Text("login slow".into()),
            5,
        )
        .await
        .unwrap();
    assert_eq!(by_text.len(), 1);
    assert_eq!(by_text[0].resolution, "cleared the session cache");
    let by_ticket = app
        .find_similar(&manager(), "acme", SimilarQuery::Ticket(new.id.clone()), 5)
        .await
        .unwrap();
    assert_eq!(by_ticket.len(), 1);
    app.reopen_ticket(&manager(), "acme", &export, "", "back again")
        .await
        .unwrap();
    let after = app
        .find_similar(&manager(), "acme", SimilarQuery::Ticket(new.id), 5)
        .await
        .unwrap();
    assert!(after.is_empty(), "{after:?}");
    close(db, &schema, dir).await;
}

/// A resolved ticket of `tenant` about `subject`: its id.
async fn resolved(app: &UseCases, tenant: &str, subject: &str, resolution: &str) -> String {
    let eng = Actor::new("eng", vec![Role::Service]);
    let (t, _) = app
        .create_ticket(
            &integration(),
            tenant,
            None,
            new_ticket("acc", "reports", Priority::P3, subject),
        )
        .await
        .unwrap();
    app.transition(&eng, tenant, &t.id, "", Move::Start, "")
        .await
        .unwrap();
    app.resolve_ticket(&eng, tenant, &t.id, "", resolution)
        .await
        .unwrap();
    t.id
}

async fn similar_ids(app: &UseCases, text: &str) -> Vec<String> {
    let mut ids: Vec<String> = app
        .find_similar(&manager(), "acme", SimilarQuery::Text(text.into()), 10)
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.ticket_id)
        .collect();
    ids.sort();
    ids
}

/// Tickets holding every word of the query are offered instead of those
/// holding some; only when none holds them all, those holding any; and at
/// most `search_candidates` matching tickets are ranked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn similar_solutions_match_every_word_first_and_rank_a_bounded_candidate_set() {
    let (service, db, schema, dir) = open_with(TicketsSettings {
        search_candidates: 2,
        ..TicketsSettings::default()
    })
    .await;
    let app = service.app().clone();
    engineer(&app, "acme", "eng", &["reports"], true).await;
    let cert = resolved(&app, "acme", "vpn certificate expired", "renewed it").await;
    let drops = resolved(&app, "acme", "vpn drops every hour", "new router").await;
    let printer = resolved(&app, "acme", "printer jam", "cleared the tray").await;
    let sorted = |mut v: Vec<String>| {
        v.sort();
        v
    };

    // Both words: only the ticket with both, not the one with "vpn" alone.
    assert_eq!(similar_ids(&app, "vpn drops").await, vec![drops.clone()]);
    // No ticket holds "vpn" and "offline": those with either.
    assert_eq!(
        similar_ids(&app, "vpn offline").await,
        sorted(vec![cert.clone(), drops.clone()])
    );
    // Three tickets hold "vpn" or "printer"; two are ranked.
    let bounded = similar_ids(&app, "vpn printer").await;
    assert_eq!(bounded.len(), 2, "{bounded:?}");
    assert!(
        bounded
            .iter()
            .all(|id| [&cert, &drops, &printer].contains(&id)),
        "{bounded:?}"
    );
    close(db, &schema, dir).await;
}

/// The seed's rule: the usage guide left unopened three times in a row
/// flags the account once, with a retention task for its manager.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_unopened_guides_raise_the_churn_risk_once() {
    let (service, db, schema, dir) = open().await;
    let app = service.app().clone();
    let erp = integration();
    app.record_purchase(
        &erp,
        "acme",
        None,
        crm_tickets::app::PurchaseInput {
            account_id: "acc".into(),
            amount: crm_tickets::domain::Money::new("CNY", 10_000, 0),
            time: crm_store::now_micros(),
            industry: "retail".into(),
            account_manager_id: "amy".into(),
        },
    )
    .await
    .unwrap();
    app.record_usage_signal(&erp, "acme", None, "acc", false)
        .await
        .unwrap();
    app.record_usage_signal(&erp, "acme", None, "acc", false)
        .await
        .unwrap();
    let a = app
        .record_usage_signal(&erp, "acme", None, "acc", true)
        .await
        .unwrap();
    assert!(!a.at_risk, "an open ends the streak");
    for _ in 0..3 {
        app.record_usage_signal(&erp, "acme", None, "acc", false)
            .await
            .unwrap();
    }
    let a = app
        .record_usage_signal(&erp, "acme", None, "acc", false)
        .await
        .unwrap();
    assert!(a.at_risk);
    let page = crm_tickets::app::Page {
        after: None,
        limit: 10,
    };
    let amy = Actor::new("amy", vec![Role::Sales]);
    let tasks = app.retention_tasks(&amy, "acme", None, page).await.unwrap();
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].assignee_id, "amy");
    let at_risk = app
        .at_risk(
            &amy,
            "acme",
            crm_tickets::app::Page {
                after: None,
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(at_risk.len(), 1);
    let bob = Actor::new("bob", vec![Role::Sales]);
    assert!(matches!(
        app.health(&bob, "acme", "acc").await,
        Err(TicketError::NotFound { .. })
    ));
    assert!(
        app.retention_tasks(&bob, "acme", None, page)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(count(&event_types(&db).await, "AccountChurnRiskRaised"), 1);
    let _ = store::Migrator;
    close(db, &schema, dir).await;
}

async fn purchase(app: &UseCases, tenant: &str, account: &str, units: i64, time: i64) -> String {
    let (a, _) = app
        .record_purchase(
            &integration(),
            tenant,
            None,
            crm_tickets::app::PurchaseInput {
                account_id: account.into(),
                amount: crm_tickets::domain::Money::new("CNY", units, 0),
                time,
                industry: String::new(),
                account_manager_id: "amy".into(),
            },
        )
        .await
        .unwrap();
    a.tier.as_str().to_owned()
}

/// The tier as stored (GetLoyaltyTier judges it at the clock's now).
async fn tier_of(db: &DatabaseConnection, tenant: &str, account: &str) -> String {
    let a = store::load_account(db, tenant, account)
        .await
        .unwrap()
        .unwrap();
    a.tier.as_str().to_owned()
}

async fn sweeper_tier_audits(db: &DatabaseConnection) -> usize {
    db.query_all_raw(sea_orm::Statement::from_string(
        db.get_database_backend(),
        format!(
            "SELECT id FROM audit_entries WHERE action = 'account.tier_changed' \
             AND actor = '{SWEEPER}'"
        ),
    ))
    .await
    .unwrap()
    .len()
}

/// A loyal account whose purchases stop is re-judged by the sweeper once
/// its last purchase stops being recent: existing from then on, told once
/// (the event and the audit entry a purchase's change makes); an account
/// that only a purchase can change is never due.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_loyal_account_without_purchases_decays_at_a_sweep() {
    let (service, db, schema, dir) = open().await;
    let app = service.app().clone();
    let now = crm_store::now_micros();
    assert_eq!(
        purchase(&app, "acme", "vip", 60_000, now - 2 * DAY).await,
        "new"
    );
    assert_eq!(
        purchase(&app, "acme", "vip", 60_000, now - DAY).await,
        "loyal"
    );
    // Existing (too little per order): nothing for the sweeper.
    purchase(&app, "acme", "small", 10, now - 2 * DAY).await;
    assert_eq!(
        purchase(&app, "acme", "small", 10, now - DAY).await,
        "existing"
    );
    let types = event_types(&db).await;
    assert_eq!(count(&types, "LoyaltyTierChanged"), 2);

    // Within the window nothing is due.
    assert_eq!(sweep_tiers(&app, now + DAY, 10).await.changed, 0);
    assert_eq!(count(&event_types(&db).await, "LoyaltyTierChanged"), 2);

    let later = now + 31 * DAY;
    let swept = sweep_tiers(&app, later, 1).await;
    assert_eq!((swept.changed, swept.skipped), (1, 0), "{swept:?}");
    let types = event_types(&db).await;
    assert_eq!(count(&types, "LoyaltyTierChanged"), 3, "exactly one more");
    assert_eq!(sweeper_tier_audits(&db).await, 1);
    assert_eq!(tier_of(&db, "acme", "vip").await, "existing");
    assert_eq!(tier_of(&db, "acme", "small").await, "existing");

    // Nothing more is due: an existing account changes only by a purchase.
    let again = sweep_tiers(&app, later + 365 * DAY, 10).await;
    assert_eq!((again.changed, again.skipped), (0, 0), "{again:?}");
    assert_eq!(count(&event_types(&db).await, "LoyaltyTierChanged"), 3);
    close(db, &schema, dir).await;
}

/// An unreadable account due for review is passed over and counted; the
/// others of every tenant are reviewed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_account_does_not_stop_the_tier_review() {
    let (service, db, schema, dir) = open().await;
    let app = service.app().clone();
    let now = crm_store::now_micros();
    for (tenant, account) in [("a", "acc1"), ("a", "acc2"), ("b", "acc1")] {
        purchase(&app, tenant, account, 60_000, now - 2 * DAY).await;
        assert_eq!(
            purchase(&app, tenant, account, 60_000, now - DAY).await,
            "loyal"
        );
    }
    db.execute_unprepared(
        "UPDATE accounts SET body = 'not an account' WHERE tenant_id = 'a' AND account_id = 'acc1'",
    )
    .await
    .unwrap();
    let swept = sweep_tiers(&app, now + 31 * DAY, 1).await;
    assert_eq!((swept.changed, swept.skipped), (2, 1), "{swept:?}");
    assert_eq!(tier_of(&db, "b", "acc1").await, "existing");
    close(db, &schema, dir).await;
}

/// An event of the opportunities service about `account`'s owner.
fn account_event(tenant: &str, account: &str, owner: &str, created: bool) -> crm_events::Event {
    use crm_proto::crm::common::v1 as common;
    use crm_proto::crm::opportunities::v1 as opportunities;
    let (name, value) = if created {
        let e = opportunities::AccountCreated {
            account: Some(opportunities::Account {
                id: account.into(),
                owner_id: owner.into(),
                ..Default::default()
            }),
        };
        ("AccountCreated", e.encode_to_vec())
    } else {
        let e = opportunities::AccountChanged {
            account: None,
            entry: Some(common::AuditEntry {
                subject_id: account.into(),
                action: "account.updated".into(),
                changes: vec![common::FieldChange {
                    field: "owner_id".into(),
                    old_value: "amy".into(),
                    new_value: owner.into(),
                }],
                ..Default::default()
            }),
        };
        ("AccountChanged", e.encode_to_vec())
    };
    crm_events::Event {
        id: crm_store::new_id(),
        sequence: 1,
        r#type: format!("crm.opportunities.v1.{name}"),
        tenant_id: tenant.into(),
        payload: Some(prost_types::Any {
            type_url: format!("type.googleapis.com/crm.opportunities.v1.{name}"),
            value,
        }),
        ..Default::default()
    }
}

async fn manager_changes(db: &DatabaseConnection) -> usize {
    db.query_all_raw(sea_orm::Statement::from_string(
        db.get_database_backend(),
        "SELECT id FROM audit_entries WHERE action = 'account.manager_changed'".to_owned(),
    ))
    .await
    .unwrap()
    .len()
}

/// An account reassigned in the opportunities service moves to its new
/// manager here: its tickets (get and list), health, at-risk listing and
/// open retention task; the former manager sees none of them. A replay
/// changes nothing twice; an account not known here gets its manager for
/// its first ticket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reassigned_account_moves_to_its_new_manager_once() {
    let (service, db, schema, dir) = open().await;
    let app = service.app().clone();
    let projects = ProjectHandler { app: app.clone() };
    let owners = AccountOwnerHandler { app: app.clone() };
    let apply = |event: crm_events::Event| {
        let (db, owners) = (db.clone(), &owners);
        async move {
            let txn = db.begin().await.unwrap();
            owners.handle(&txn, &event).await.unwrap();
            txn.commit().await.unwrap();
        }
    };
    let txn = db.begin().await.unwrap();
    projects
        .handle(&txn, &go_live("acme", "p-1", "acc-1"))
        .await
        .unwrap();
    txn.commit().await.unwrap();
    let (t, _) = app
        .create_ticket(
            &integration(),
            "acme",
            None,
            new_ticket("acc-1", "network", Priority::P2, "VPN down"),
        )
        .await
        .unwrap();
    for _ in 0..4 {
        app.record_usage_signal(&integration(), "acme", None, "acc-1", false)
            .await
            .unwrap();
    }
    let (amy, bob) = (
        Actor::new("amy", vec![Role::Sales]),
        Actor::new("bob", vec![Role::Sales]),
    );
    let page = crm_tickets::app::Page {
        after: None,
        limit: 10,
    };
    let visible = |who: Actor| {
        let app = app.clone();
        let id = t.id.clone();
        async move {
            let got = app.get_ticket(&who, "acme", &id).await.is_ok();
            let listed = app
                .list_tickets(&who, "acme", &TicketFilter::default(), page)
                .await
                .unwrap()
                .len();
            let health = app.health(&who, "acme", "acc-1").await.is_ok();
            let risk_page = crm_tickets::app::Page {
                after: None,
                limit: 10,
            };
            let at_risk = app.at_risk(&who, "acme", risk_page).await.unwrap().len();
            let tasks = app.retention_tasks(&who, "acme", None, page).await.unwrap();
            (got, listed, health, at_risk, tasks.len())
        }
    };
    assert_eq!(visible(amy.clone()).await, (true, 1, true, 1, 1));
    assert_eq!(visible(bob.clone()).await, (false, 0, false, 0, 0));

    // Another field's change says nothing of the owner.
    let mut region = account_event("acme", "acc-1", "bob", false);
    if let Some(p) = region.payload.as_mut() {
        use crm_proto::crm::opportunities::v1 as opportunities;
        let mut e = opportunities::AccountChanged::decode(p.value.as_slice()).unwrap();
        if let Some(entry) = e.entry.as_mut() {
            entry.changes[0].field = "region".into();
        }
        p.value = e.encode_to_vec();
    }
    apply(region).await;
    assert_eq!(manager_changes(&db).await, 0);

    for _ in 0..2 {
        apply(account_event("acme", "acc-1", "bob", false)).await;
    }
    assert_eq!(manager_changes(&db).await, 1, "a replay changes nothing");
    assert_eq!(visible(bob).await, (true, 1, true, 1, 1));
    assert_eq!(visible(amy).await, (false, 0, false, 0, 0));
    let moved = app.get_ticket(&manager(), "acme", &t.id).await.unwrap();
    assert_eq!(moved.version, t.version + 1, "moved once");

    // An account first heard of from the opportunities service.
    apply(account_event("acme", "acc-9", "carl", true)).await;
    let (t9, _) = app
        .create_ticket(
            &integration(),
            "acme",
            None,
            new_ticket("acc-9", "network", Priority::P2, "Printer"),
        )
        .await
        .unwrap();
    let carl = Actor::new("carl", vec![Role::Sales]);
    assert!(app.get_ticket(&carl, "acme", &t9.id).await.is_ok());
    // Another tenant's account of the same id is not touched.
    assert!(
        store::load_account(&db, "other", "acc-1")
            .await
            .unwrap()
            .is_none()
    );
    close(db, &schema, dir).await;
}

/// On PostgreSQL the full-text index keeps no pending list, which every
/// search would read through (SQLite's FTS5 has no such list).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgresql_search_index_keeps_no_pending_list() {
    let (_service, db, schema, dir) = open().await;
    if db.get_database_backend() == DbBackend::Postgres {
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                DbBackend::Postgres,
                "SELECT array_to_string(c.reloptions, ',') AS options FROM pg_class c
                 JOIN pg_namespace n ON n.oid = c.relnamespace
                 WHERE c.relname = 'ticket_search_doc' AND n.nspname = current_schema()",
            ))
            .await
            .unwrap()
            .expect("the index exists");
        let options: Option<String> = row.try_get("", "options").unwrap();
        assert_eq!(options.as_deref(), Some("fastupdate=off"));
    }
    close(db, &schema, dir).await;
}
