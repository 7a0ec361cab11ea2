//! The shared handlers over a real (SQLite) database: the tenant's
//! configuration against opaque etags, and the audit trail in pages.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use crm_auth::Principal;
use crm_proto::crm::leads::v1::{ListAuditEntriesRequest, UpdateLeadConfigRequest};
use crm_rpc::{FieldViolation, RequestContext, RpcError, paging::PageLimits};
use crm_service::{AuditTrail, ConfigWire, TenantConfigs};
use crm_types::{Etag, Role};
use sea_orm::TransactionTrait as _;
use sea_orm_migration::SchemaManager;
use tonic::Request;

type Config = BTreeMap<String, u32>;

async fn database() -> (tempfile::TempDir, crm_store::DatabaseConnection) {
    let dir = tempfile::tempdir().unwrap();
    let location = crm_store::Location::for_service("handlers", None, dir.path());
    let db = crm_store::connect(&location, 2).await.unwrap();
    // In one transaction, as `crm_store::migrate` runs them: a table
    // rebuilt to re-key it must be seen by one connection of the pool.
    let txn = db.begin().await.unwrap();
    let manager = SchemaManager::new(&txn);
    for migration in crm_store::shared_migrations() {
        migration.up(&manager).await.unwrap();
    }
    txn.commit().await.unwrap();
    (dir, db)
}

/// The context of a call of `tenant` with the message `M`, as the auth
/// layer leaves the request.
fn context<M: prost::Name + Default>(tenant: &str) -> RequestContext {
    let mut req = Request::new(M::default());
    req.extensions_mut().insert(Principal {
        subject: "boss".into(),
        tenant: tenant.into(),
        roles: vec![Role::Admin],
    });
    RequestContext::of(&req).unwrap()
}

fn config(limit: u32) -> Config {
    BTreeMap::from([("limit".to_owned(), limit)])
}

/// A configuration message as a service's wire maps it.
#[derive(Debug, Clone, PartialEq)]
struct Message {
    config: Config,
    etag: String,
    version: i64,
    updater: String,
}

fn sent(limit: u32, etag: &str) -> Option<Message> {
    Some(Message {
        config: config(limit),
        etag: etag.to_owned(),
        version: -1,
        updater: String::new(),
    })
}

fn configs(db: &crm_store::DatabaseConnection) -> TenantConfigs<Config, Message> {
    let wire = ConfigWire {
        to_message: |config: &Config, version, _, updater: &str| Message {
            config: config.clone(),
            etag: crm_rpc::etag(version),
            version,
            updater: updater.to_owned(),
        },
        from_message: |m: &Message| match m.config.get("limit") {
            Some(0) => Err(vec![FieldViolation::new(
                "config.limit",
                "must be positive",
            )]),
            _ => Ok(m.config.clone()),
        },
        etag: |m: &Message| &m.etag,
    };
    TenantConfigs::new(db.clone(), config(5), "test-config", wire)
}

#[tokio::test]
async fn configurations_are_replaced_against_opaque_etags_and_audited() {
    let (_dir, db) = database().await;
    let configs = configs(&db);
    let acme = context::<UpdateLeadConfigRequest>("acme");

    let defaults = configs.get(&acme).await.unwrap();
    assert_eq!((defaults.config, defaults.version), (config(5), 0));

    let first = configs.replace(&acme, sent(6, "")).await.unwrap();
    assert_eq!((first.config, first.version), (config(6), 1));
    assert_eq!(first.updater, "boss");
    assert_ne!(first.etag, "1", "opaque, never a bare number");
    let second = configs.replace(&acme, sent(7, &first.etag)).await.unwrap();
    assert_eq!(
        second.version, 2,
        "the etag the server sent names the version"
    );
    let legacy = configs.replace(&acme, sent(8, "2")).await.unwrap();
    assert_eq!(legacy.version, 3, "a bare number from an earlier release");

    let stale = configs
        .replace(&acme, sent(9, &first.etag))
        .await
        .unwrap_err();
    assert!(
        matches!(
            stale,
            RpcError::Aborted {
                reason: "ETAG_MISMATCH",
                ..
            }
        ),
        "{stale:?}"
    );
    assert!(!Etag::matches(&first.etag, 3));
    assert_eq!(configs.get(&acme).await.unwrap().config, config(8));

    for (refused, field) in [(None, "config"), (sent(0, ""), "config.limit")] {
        match configs.replace(&acme, refused).await {
            Err(RpcError::InvalidArgument(vs)) => assert_eq!(vs[0].field, field),
            other => panic!("{other:?}"),
        }
    }

    let globex = context::<UpdateLeadConfigRequest>("globex");
    let other = configs.get(&globex).await.unwrap();
    assert_eq!(other.version, 0, "another tenant keeps the defaults");

    let trail = crm_store::audit::list(&db, "acme", Some("test-config/acme"), None, 10)
        .await
        .unwrap();
    assert_eq!(trail.len(), 3);
    assert!(
        trail
            .iter()
            .all(|e| e.action == "config.replaced" && e.actor == "boss")
    );
}

#[tokio::test]
async fn the_audit_trail_pages_newest_first_with_bound_tokens() {
    let (_dir, db) = database().await;
    let configs = configs(&db);
    let acme = context::<UpdateLeadConfigRequest>("acme");
    for limit in 1..=3 {
        configs.replace(&acme, sent(limit, "")).await.unwrap();
    }
    let trail = AuditTrail::new(db, PageLimits::default());
    let ctx = context::<ListAuditEntriesRequest>("acme");
    let subject = |id| ("subject", id);

    let (first, token) = trail
        .list(&ctx, subject("test-config/acme"), 2, "")
        .await
        .unwrap();
    assert_eq!(first.len(), 2);
    assert!(!token.is_empty());
    let (second, last) = trail
        .list(&ctx, subject("test-config/acme"), 2, &token)
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    assert!(last.is_empty(), "a short page is the last");
    assert!(second[0].id < first[1].id, "newest first");

    let (everything, _) = trail.list(&ctx, subject(""), 2, "").await.unwrap();
    assert_eq!(everything.len(), 2);

    let replayed = trail
        .list(&ctx, subject("other"), 2, &token)
        .await
        .unwrap_err();
    assert!(matches!(replayed, RpcError::InvalidArgument(_)));
    let globex = context::<ListAuditEntriesRequest>("globex");
    let foreign = trail
        .list(&globex, subject("test-config/acme"), 2, &token)
        .await
        .unwrap_err();
    assert!(matches!(foreign, RpcError::InvalidArgument(_)));
}
