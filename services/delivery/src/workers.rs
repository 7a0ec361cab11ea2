//! The service's own work: the handover consumer (every tenant's
//! `ContractSigned` from the contracts service, each applied exactly once
//! in its tenant) and the risk sweeper (bounded batches of keys across
//! tenants; each project or person in its own transaction, so a busy or
//! broken one holds up nobody; shutdown cuts a sweep short between them).

use std::{future::Future, time::Duration};

use crm_events::{Event, Handler};
use sea_orm::DatabaseTransaction;

use crate::app::{Swept, UseCases};
use crate::domain::DeliveryError;

/// The consumer's name: the key of its cursor (stable across releases).
pub const HANDOVER_CONSUMER: &str = "delivery.handover";

/// Applies ContractSigned events: a project per contract family.
pub struct HandoverHandler {
    pub app: UseCases,
}

impl Handler for HandoverHandler {
    type Error = DeliveryError;

    async fn handle(&self, txn: &DatabaseTransaction, event: &Event) -> Result<(), DeliveryError> {
        self.app.apply_handover(txn, event).await
    }

    /// A handover that can never make a project is parked; anything else
    /// (the database away, a concurrent replica's insert) is retried.
    fn is_permanent(&self, error: &DeliveryError) -> bool {
        matches!(
            error,
            DeliveryError::BadHandover(_) | DeliveryError::Invalid(_)
        )
    }
}

/// Runs the risk rules every `interval` until `shutdown` completes.
pub fn spawn_sweeper(
    app: UseCases,
    interval: Duration,
    batch: u64,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::pin!(shutdown);
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = ticks.tick() => {}
            }
            let swept = tokio::select! {
                () = &mut shutdown => return,
                swept = sweep(&app, crm_types::now_micros(), batch) => swept,
            };
            crm_service::sweeper_ran("delivery", "risks", swept.skipped);
            if swept.changed > 0 || swept.skipped > 0 {
                tracing::info!(
                    checked = swept.checked,
                    changed = swept.changed,
                    skipped = swept.skipped,
                    "swept delivery risks"
                );
            }
        }
    })
}

/// One pass at `now` over every active project and every person with
/// planned work (or an open shortage), of every tenant, `batch` keys per
/// query.
pub async fn sweep(app: &UseCases, now: i64, batch: u64) -> Swept {
    let mut swept = Swept::default();
    let mut after = None;
    loop {
        let page = match app.active_projects(after.as_ref(), batch).await {
            Ok(page) => page,
            Err(err) => {
                tracing::warn!(error = %err, "delivery sweep failed; retrying next interval");
                return swept;
            }
        };
        let more = page.len() as u64 == batch;
        for (tenant, id) in page {
            match app.sweep_project(&tenant, &id, now).await {
                Ok(Some(changed)) => {
                    swept.checked += 1;
                    swept.changed += changed;
                }
                Ok(None) => swept.skipped += 1,
                Err(err) => {
                    swept.skipped += 1;
                    tracing::warn!(
                        tenant = %tenant, project = %id, error = %err,
                        "a project's risks failed; passing over it"
                    );
                }
            }
            after = Some((tenant, id));
        }
        if !more {
            break;
        }
    }
    let mut after = None;
    loop {
        let page = match app.people_to_check(after.as_ref(), batch).await {
            Ok(page) => page,
            Err(err) => {
                tracing::warn!(error = %err, "delivery sweep failed; retrying next interval");
                return swept;
            }
        };
        let more = page.len() as u64 == batch;
        for (tenant, person) in page {
            match app.sweep_person(&tenant, &person, now).await {
                Ok(changed) => {
                    swept.checked += 1;
                    swept.changed += changed;
                }
                Err(err) => {
                    swept.skipped += 1;
                    tracing::warn!(
                        tenant = %tenant, person = %person, error = %err,
                        "a person's load failed; passing over it"
                    );
                }
            }
            after = Some((tenant, person));
        }
        if !more {
            return swept;
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use crm_proto::crm::common::v1 as common;
    use crm_proto::crm::contracts::v1 as contracts;
    use prost::Message as _;
    use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement, TransactionTrait};

    use super::*;
    use crate::domain::{Date, RiskKind, RiskStatus};
    use crate::store::{self, AlertFilter};
    use crate::{Delivery, DeliverySettings};

    /// The delivery database of one test: a schema of its own on the
    /// PostgreSQL server of `CRM_TEST_DATABASE_URL`, else a SQLite file.
    async fn open() -> (Delivery, DatabaseConnection, String, std::path::PathBuf) {
        let name = format!("delivery_test_{}", crm_store::new_id().replace('-', "_"));
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
        let service =
            <Delivery as crm_service::Service>::open(context, DeliverySettings::default())
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

    fn date_pb(d: Date) -> common::Date {
        common::Date {
            year: d.year,
            month: i32::from(d.month),
            day: i32::from(d.day),
        }
    }

    /// A ContractSigned of `tenant` for contract `family` at `version`,
    /// with one payment milestone due `due`.
    fn signed(tenant: &str, family: &str, version: i32, due: Date, sequence: i64) -> Event {
        let contract_id = if version == 1 {
            family.to_owned()
        } else {
            format!("{family}-v{version}")
        };
        let message = contracts::ContractSigned {
            contract: Some(contracts::Contract {
                id: contract_id.clone(),
                title: format!("project {family}"),
                ..Default::default()
            }),
            handover: Some(contracts::HandoverPackage {
                contract_id,
                contract_version: version,
                contract_family_id: family.to_owned(),
                opportunity_id: "o1".into(),
                account_id: "acct".into(),
                milestones: vec![contracts::PaymentMilestone {
                    id: format!("pm-{version}"),
                    name: "go-live".into(),
                    due_date: Some(date_pb(due)),
                    ..Default::default()
                }],
                team: Some(contracts::DealTeam {
                    account_manager_id: "am".into(),
                    delivery_manager_id: "dm".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            superseded_contract_id: String::new(),
        };
        Event {
            id: crm_store::new_id(),
            sequence,
            r#type: crate::app::CONTRACT_SIGNED.into(),
            tenant_id: tenant.into(),
            subject_id: family.into(),
            payload: Some(prost_types::Any {
                type_url: format!("type.googleapis.com/{}", crate::app::CONTRACT_SIGNED),
                value: message.encode_to_vec(),
            }),
            ..Default::default()
        }
    }

    async fn hand_over(
        app: &UseCases,
        db: &DatabaseConnection,
        event: &Event,
    ) -> Result<(), DeliveryError> {
        let txn = db.begin().await.unwrap();
        let result = app.apply_handover(&txn, event).await;
        match result {
            Ok(()) => txn.commit().await.unwrap(),
            Err(_) => txn.rollback().await.unwrap(),
        }
        result
    }

    async fn count(db: &DatabaseConnection, sql: &str) -> i64 {
        let row = db
            .query_one_raw(Statement::from_string(db.get_database_backend(), sql))
            .await
            .unwrap()
            .unwrap();
        row.try_get("", "n").unwrap()
    }

    fn day(n: i64) -> Date {
        Date::of_micros(crm_types::now_micros()).plus_days(n)
    }

    /// One project per contract family, in the event's tenant: a replay
    /// changes nothing, an amendment updates it, a poison event is refused
    /// for good (the consumer parks it) and writes nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_signed_contract_makes_one_project_in_its_tenant_whatever_is_replayed() {
        let (service, db, schema, dir) = open().await;
        let app = service.app().clone();
        let first = signed("acme", "c1", 1, day(30), 1);
        hand_over(&app, &db, &first).await.unwrap();
        hand_over(&app, &db, &first).await.unwrap();
        hand_over(&app, &db, &signed("globex", "c1", 1, day(30), 2))
            .await
            .unwrap();
        assert_eq!(
            count(
                &db,
                "SELECT COUNT(*) AS n FROM projects WHERE tenant_id = 'acme'"
            )
            .await,
            1
        );
        assert_eq!(count(&db, "SELECT COUNT(*) AS n FROM projects").await, 2);
        hand_over(&app, &db, &signed("acme", "c1", 2, day(40), 3))
            .await
            .unwrap();
        assert_eq!(
            count(
                &db,
                "SELECT COUNT(*) AS n FROM projects WHERE tenant_id = 'acme'"
            )
            .await,
            1
        );
        let stored = store::project_of_family(&db, "acme", "c1")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.project.handover.contract_version, 2);
        assert_eq!(stored.project.milestones[0].due, day(40));
        assert_eq!(stored.project.project_manager_id, "dm");
        let mut poison = first.clone();
        poison.payload = Some(prost_types::Any {
            type_url: String::new(),
            value: vec![0xff, 0xff, 0xff],
        });
        assert!(matches!(
            hand_over(&app, &db, &poison).await,
            Err(DeliveryError::BadHandover(_))
        ));
        assert!(
            HandoverHandler { app: app.clone() }
                .is_permanent(&DeliveryError::BadHandover("x".into()))
        );
        let events = count(
            &db,
            r#"SELECT COUNT(*) AS n FROM outbox_events WHERE "type" = 'crm.delivery.v1.DeliveryProjectCreated'"#,
        )
        .await;
        assert_eq!(events, 2, "one creation event per project");
        close(db, &schema, dir).await;
    }

    async fn open_alerts(app: &UseCases, tenant: &str) -> Vec<(RiskKind, String)> {
        let filter = AlertFilter {
            project_id: None,
            status: Some(RiskStatus::Open),
        };
        let boss = crm_types::Actor::new("boss", vec![crm_types::Role::Manager]);
        app.list_alerts(&boss, tenant, &filter, None, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|a| (a.kind, a.cause))
            .collect()
    }

    /// Time alone makes a milestone overdue: the sweeper raises it once,
    /// however often it runs; a broken project and (on PostgreSQL) one
    /// another transaction holds are passed over while every other
    /// project, of every tenant, is still swept.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_sweeper_raises_an_overdue_alert_once_and_passes_over_a_busy_or_broken_project() {
        let (service, db, schema, dir) = open().await;
        let app = service.app().clone();
        for (tenant, family, seq) in [("bad", "b1", 1), ("bad", "b2", 2), ("good", "g1", 3)] {
            hand_over(&app, &db, &signed(tenant, family, 1, day(5), seq))
                .await
                .unwrap();
        }
        assert!(open_alerts(&app, "good").await.is_empty(), "not due yet");
        db.execute_unprepared(
            "UPDATE projects SET body = 'not a project' WHERE contract_family_id = 'b1'",
        )
        .await
        .unwrap();
        let postgres = db.get_database_backend() == DbBackend::Postgres;
        let blocker = if postgres {
            let txn = db.begin().await.unwrap();
            txn.execute_unprepared(
                "UPDATE projects SET update_time = 7 WHERE contract_family_id = 'b2'",
            )
            .await
            .unwrap();
            Some(txn)
        } else {
            None
        };
        let later = crm_types::now_micros() + 10 * 86_400_000_000;
        let swept = sweep(&app, later, 1).await;
        assert_eq!(swept.skipped, if postgres { 2 } else { 1 }, "{swept:?}");
        let good = open_alerts(&app, "good").await;
        assert_eq!(good.len(), 1, "{good:?}");
        assert_eq!(good[0].0, RiskKind::MilestoneOverdue);
        if let Some(blocker) = blocker {
            blocker.commit().await.unwrap();
        }
        // Again: nothing new for the good tenant; the busy one's turn came.
        sweep(&app, later, 1).await;
        assert_eq!(open_alerts(&app, "good").await, good);
        assert_eq!(
            open_alerts(&app, "bad").await.len(),
            1,
            "b2 swept once free"
        );
        close(db, &schema, dir).await;
    }
}
