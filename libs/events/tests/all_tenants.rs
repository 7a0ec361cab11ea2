//! The all-tenants subscription: the suite's own services (a service
//! identity, role `internal`) read every tenant's events, each naming its
//! tenant; anyone else asking for it is PERMISSION_DENIED. A consumer of
//! every tenant parks a poison event in the dead letters and goes on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{sync::Arc, time::Duration};

use crm_auth::Role;
use crm_events::{Backoff, Consumer, Event, EventsConfig, Handler};
use crm_server::Shutdown;
use crm_store::ConnectionTrait;
use sea_orm::{DatabaseTransaction, DbBackend, Statement};
use support::{Producer, TestDb, event, eventually, next_event, subscribe_with};
use tonic::{Code, transport::Endpoint};

#[tokio::test]
async fn a_service_identity_reads_every_tenants_events_each_naming_its_tenant() {
    let producer = Producer::start(EventsConfig::default()).await;
    producer
        .write(vec![
            event("acme", "test.Signed", "a1"),
            event("globex", "test.Signed", "g1"),
            event("acme", "test.Signed", "a2"),
        ])
        .await;

    let token = producer.keys.service_token("suite");
    let mut stream = subscribe_with(producer.addr, &token, 0, &[], true)
        .await
        .unwrap();
    let mut seen = Vec::new();
    for _ in 0..3 {
        let event = next_event(&mut stream).await;
        seen.push((event.tenant_id, event.subject_id));
    }
    assert_eq!(
        seen,
        [
            ("acme".to_owned(), "a1".to_owned()),
            ("globex".to_owned(), "g1".to_owned()),
            ("acme".to_owned(), "a2".to_owned()),
        ]
    );

    // Without the flag, a service token reads its own tenant's only, as
    // anyone does.
    let mut own = subscribe_with(producer.addr, &token, 0, &[], false)
        .await
        .unwrap();
    producer
        .write(vec![event("suite", "test.Signed", "s1")])
        .await;
    assert_eq!(next_event(&mut own).await.subject_id, "s1");
}

#[tokio::test]
async fn every_tenant_is_refused_to_users_and_integrations() {
    let producer = Producer::start(EventsConfig::default()).await;
    for roles in [
        &[Role::Integration][..],
        &[Role::Integration, Role::Admin, Role::Manager][..],
    ] {
        let token = producer.keys.token("acme", roles);
        let status = subscribe_with(producer.addr, &token, 0, &[], true)
            .await
            .expect_err("a user must not read every tenant's events");
        assert_eq!(
            status.code(),
            Code::PermissionDenied,
            "{roles:?}: {status:?}"
        );
        assert_eq!(
            support::reason(&status)
                .map(|(reason, _)| reason)
                .as_deref(),
            Some("ALL_TENANTS_INTERNAL_ONLY"),
            "{roles:?}"
        );
    }
}

/// Records each event, refusing for good the payload "poison".
struct Recorder;

#[derive(Debug)]
enum RecordError {
    Poison,
    Db(sea_orm::DbErr),
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecordError::Poison => f.write_str("a payload that never decodes"),
            RecordError::Db(err) => write!(f, "{err}"),
        }
    }
}

impl Handler for Recorder {
    type Error = RecordError;

    async fn handle(&self, txn: &DatabaseTransaction, event: &Event) -> Result<(), RecordError> {
        if event.subject_id == "poison" {
            return Err(RecordError::Poison);
        }
        let backend = txn.get_database_backend();
        let sql = match backend {
            DbBackend::Postgres => "INSERT INTO applied (event_id, tenant_id) VALUES ($1, $2)",
            _ => "INSERT INTO applied (event_id, tenant_id) VALUES (?, ?)",
        };
        txn.execute_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [
                event.subject_id.clone().into(),
                event.tenant_id.clone().into(),
            ],
        ))
        .await
        .map_err(RecordError::Db)?;
        Ok(())
    }

    fn is_permanent(&self, error: &RecordError) -> bool {
        matches!(error, RecordError::Poison)
    }
}

#[tokio::test]
async fn an_all_tenants_consumer_applies_every_tenants_events_and_parks_a_poison_one() {
    let producer = Producer::start(EventsConfig {
        heartbeat_interval: Duration::from_millis(200),
        ..EventsConfig::default()
    })
    .await;
    let testdb = TestDb::new().await;
    let db = testdb.connect("consumer", 2).await;
    db.execute_unprepared(
        "CREATE TABLE applied (event_id VARCHAR(64) PRIMARY KEY, tenant_id VARCHAR(64) NOT NULL)",
    )
    .await
    .unwrap();
    producer
        .write(vec![
            event("acme", "test.Signed", "a1"),
            event("globex", "test.Signed", "poison"),
            event("globex", "test.Signed", "g1"),
        ])
        .await;

    let service = Arc::clone(&producer.keys.service);
    let channel = Endpoint::from_shared(format!("http://{}", producer.addr))
        .unwrap()
        .connect_lazy();
    let consumer = Consumer::all_tenants("test.all", "producer", channel, move || {
        service.mint(
            "delivery",
            "suite",
            &[Role::Internal],
            Duration::from_secs(600),
        )
    })
    .with_backoff(Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(200),
    });
    let shutdown = Shutdown::new();
    let running = tokio::spawn({
        let (db, consumer, shutdown) = (db.clone(), consumer.clone(), shutdown.clone());
        async move { consumer.run(&db, &Recorder, &shutdown).await }
    });

    let applied = eventually(Duration::from_secs(30), "both good events", || {
        let db = db.clone();
        async move {
            let rows = db
                .query_all_raw(Statement::from_string(
                    db.get_database_backend(),
                    "SELECT event_id, tenant_id FROM applied ORDER BY event_id",
                ))
                .await
                .unwrap();
            let rows: Vec<(String, String)> = rows
                .iter()
                .map(|r| {
                    (
                        r.try_get("", "event_id").unwrap(),
                        r.try_get("", "tenant_id").unwrap(),
                    )
                })
                .collect();
            (rows.len() == 2).then_some(rows)
        }
    })
    .await;
    assert_eq!(
        applied,
        [
            ("a1".to_owned(), "acme".to_owned()),
            ("g1".to_owned(), "globex".to_owned())
        ]
    );
    let parked = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT subject_id, tenant_id FROM event_dead_letters WHERE consumer = 'test.all'",
        ))
        .await
        .unwrap();
    assert_eq!(parked.len(), 1);
    let subject: String = parked[0].try_get("", "subject_id").unwrap();
    let tenant: String = parked[0].try_get("", "tenant_id").unwrap();
    assert_eq!((subject.as_str(), tenant.as_str()), ("poison", "globex"));
    assert_eq!(consumer.dead_lettered(), 1);
    // One cursor for every tenant, past all three events.
    assert_eq!(consumer.cursor(&db).await.unwrap(), 3);

    shutdown.trigger();
    running.await.unwrap().unwrap();
}
