//! The shared handlers over a real (SQLite) database: the tenant's
//! configuration against opaque etags, and the audit trail in pages.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use crm_auth::Principal;
use crm_rpc::{DomainError, FieldViolation, RequestContext, RpcError, paging::PageLimits};
use crm_service::{AuditQuery, AuditTrail, TenantConfigs};
use crm_types::{Etag, Role};
use sea_orm_migration::SchemaManager;
use tonic::{Code, GrpcMethod, Request};
use tonic_types::StatusExt;

type Config = BTreeMap<String, u32>;

#[derive(Debug)]
struct TestError;

impl DomainError for TestError {
    const DOMAIN: &'static str = "crm.test";

    fn into_rpc(self) -> RpcError {
        RpcError::invalid("x", "never")
    }
}

async fn database() -> (tempfile::TempDir, crm_store::DatabaseConnection) {
    let dir = tempfile::tempdir().unwrap();
    let location = crm_store::Location::for_service("handlers", None, dir.path());
    let db = crm_store::connect(&location, 2).await.unwrap();
    let manager = SchemaManager::new(&db);
    for migration in crm_store::shared_migrations() {
        migration.up(&manager).await.unwrap();
    }
    (dir, db)
}

/// A request of `tenant` to `method`, as the auth layer and the generated
/// server code leave it.
fn request<M>(tenant: &str, method: &'static str, body: M) -> Request<M> {
    let mut req = Request::new(body);
    req.extensions_mut().insert(Principal {
        subject: "boss".into(),
        tenant: tenant.into(),
        roles: vec![Role::Admin],
    });
    req.extensions_mut()
        .insert(GrpcMethod::new("crm.test.v1.TestService", method));
    req
}

fn config(limit: u32) -> Config {
    BTreeMap::from([("limit".to_owned(), limit)])
}

/// An UpdateConfig request carrying `limit` and the etag it was read at.
fn update(limit: u32, etag: &str) -> Request<(Config, String)> {
    request("acme", "UpdateTestConfig", (config(limit), etag.to_owned()))
}

fn decode(body: (Config, String)) -> Result<(Config, String), RpcError> {
    Ok(body)
}

#[tokio::test]
async fn configurations_are_replaced_against_opaque_etags_and_audited() {
    let (_dir, db) = database().await;
    let configs = TenantConfigs::<Config, TestError>::new(db.clone(), config(5), "test-config");

    let defaults = configs
        .get(&request("acme", "GetTestConfig", ()))
        .await
        .unwrap();
    assert_eq!((defaults.config.clone(), defaults.version), (config(5), 0));

    let first = configs.replace(update(6, ""), decode).await.unwrap();
    assert_eq!((first.config.clone(), first.version), (config(6), 1));
    let sent = crm_rpc::etag(first.version);
    let second = configs.replace(update(7, &sent), decode).await.unwrap();
    assert_eq!(
        second.version, 2,
        "the etag the server sent names the version"
    );
    let legacy = configs.replace(update(8, "2"), decode).await.unwrap();
    assert_eq!(legacy.version, 3, "a bare number from an earlier release");

    let stale = configs.replace(update(9, &sent), decode).await.unwrap_err();
    assert_eq!(stale.code(), Code::Aborted);
    let info = stale.get_error_details().error_info().cloned().unwrap();
    assert_eq!(
        (info.reason.as_str(), info.domain.as_str()),
        ("ETAG_MISMATCH", "crm.test")
    );
    assert!(!Etag::matches(&sent, 3));

    let refused = configs
        .replace(update(9, ""), |_| {
            Err(FieldViolation::new("config", "required").into())
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);

    let other = configs
        .get(&request("globex", "GetTestConfig", ()))
        .await
        .unwrap();
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
    let configs = TenantConfigs::<Config, TestError>::new(db.clone(), config(5), "test-config");
    for limit in 1..=3 {
        configs.replace(update(limit, ""), decode).await.unwrap();
    }
    let trail = AuditTrail::<TestError>::new(db, PageLimits::default());
    let ctx = RequestContext::of(&request("acme", "ListAuditEntries", ())).unwrap();
    let query = |subject, page_token| AuditQuery {
        subject: ("subject", subject),
        page_size: 2,
        page_token,
    };

    let first = trail
        .list(&ctx, query("test-config/acme", ""))
        .await
        .unwrap();
    assert_eq!(first.entries.len(), 2);
    assert!(!first.next_page_token.is_empty());
    let second = trail
        .list(&ctx, query("test-config/acme", &first.next_page_token))
        .await
        .unwrap();
    assert_eq!(second.entries.len(), 1);
    assert!(
        second.next_page_token.is_empty(),
        "a short page is the last"
    );
    assert!(second.entries[0].id < first.entries[1].id, "newest first");

    let everything = trail.list(&ctx, query("", "")).await.unwrap();
    assert_eq!(everything.entries.len(), 2);

    let replayed = trail
        .list(&ctx, query("other", &first.next_page_token))
        .await
        .unwrap_err();
    assert_eq!(replayed.code(), Code::InvalidArgument);
    let globex = RequestContext::of(&request("globex", "ListAuditEntries", ())).unwrap();
    let foreign = trail
        .list(&globex, query("test-config/acme", &first.next_page_token))
        .await
        .unwrap_err();
    assert_eq!(foreign.code(), Code::InvalidArgument);
}
