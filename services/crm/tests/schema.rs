//! Issue 15 part 11: every table's primary key and every unique index
//! leads with `tenant_id`, so that each service's schema can be
//! distributed by tenant (Citus) as it is (docs/scaling.md). Checked on
//! the catalog of every registered service's migrated schema, on SQLite and
//! on PostgreSQL (when `CRM_TEST_DATABASE_URL` is set); and the migrations
//! that re-key the tables of an existing database keep its rows.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::marker::PhantomData;

use crm::{SERVICES, Settings};
use crm_store::{
    ConnectionTrait, DatabaseConnection, Location,
    keys::{TableKeys, TableKind, unique_keys},
};
use sea_orm_migration::{
    MigrationTrait, MigratorTrait,
    sea_orm::{DbBackend, Statement},
};

/// Tables that are not per tenant, and why. Each is handled on Citus as
/// docs/scaling.md says.
const EXEMPT: &[(&str, &str)] = &[
    (
        "seaql_migrations",
        "the migrator's record of applied migrations: one per schema, no tenant",
    ),
    (
        "outbox_head",
        "the event stream's head (last sequence, oldest retained): one row per service",
    ),
    (
        "outbox_events",
        "the event stream in one order across tenants: `sequence` is unique per service, \
         handed out by one sequencer; on Citus the outbox stays a table of the coordinator",
    ),
];

/// The migrations that re-key existing tables end with this.
const TENANT_FIRST: &str = "_tenant_first_keys";

/// Every primary key or unique index of `tables` that does not start with
/// `tenant_id` (and every table without a primary key), named; SQLite's
/// virtual tables (FTS5 `ticket_search`) and their shadow tables are kept
/// by their module and have no keys of ours.
fn violations(service: &str, tables: &[TableKeys]) -> Vec<String> {
    let mut found = Vec::new();
    for table in tables {
        if table.kind == TableKind::Virtual || EXEMPT.iter().any(|(t, _)| *t == table.table) {
            continue;
        }
        if table.primary().is_none() {
            found.push(format!("{service}.{}: no primary key", table.table));
        }
        for key in &table.keys {
            if key.columns.first().map(String::as_str) != Some("tenant_id") {
                let what = if key.primary {
                    "primary key".to_owned()
                } else {
                    format!("unique index {}", key.name)
                };
                found.push(format!(
                    "{service}.{}: {what} ({})",
                    table.table,
                    key.columns.join(", ")
                ));
            }
        }
    }
    found
}

/// The PostgreSQL server of `CRM_TEST_DATABASE_URL`: a fresh database on
/// it (dropped with the guard) and its URL; `None` on SQLite only.
async fn fresh_postgres(test: &str) -> Option<(crm_testkit::TestDatabase, String)> {
    let Some(server) = crm_testkit::test_database_url() else {
        eprintln!("{test}: CRM_TEST_DATABASE_URL is unset, SQLite only");
        return None;
    };
    Some(crm_testkit::TestDatabase::create(&server).await.unwrap())
}

/// Migrates every registered service as `crm migrate` does and returns the
/// violations found in their schemas.
async fn migrated_violations(database_url: Option<String>) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings {
        data_dir: dir.path().to_owned(),
        ..Default::default()
    };
    settings.store.database_url = database_url.clone();
    settings.store.max_connections = 2;
    crm::migrate(&settings).await.unwrap();
    let mut found = Vec::new();
    for entry in SERVICES.iter() {
        let location = Location::for_service(entry.name, database_url.as_deref(), dir.path());
        let db = crm_store::connect(&location, 1).await.unwrap();
        let tables = unique_keys(&db).await.unwrap();
        assert!(
            tables.iter().any(|t| t.table == "audit_entries"),
            "{}: the catalog read the service's schema: {tables:?}",
            entry.name
        );
        found.extend(violations(entry.name, &tables));
        db.close().await.unwrap();
    }
    found
}

#[tokio::test]
async fn every_key_leads_with_the_tenant_on_sqlite() {
    let found = migrated_violations(None).await;
    assert!(
        found.is_empty(),
        "keys not led by tenant_id:\n{}",
        found.join("\n")
    );
}

#[tokio::test]
async fn every_key_leads_with_the_tenant_on_postgres() {
    let Some((_guard, url)) = fresh_postgres("every_key_leads_with_the_tenant_on_postgres").await
    else {
        return;
    };
    let found = migrated_violations(Some(url)).await;
    assert!(
        found.is_empty(),
        "keys not led by tenant_id:\n{}",
        found.join("\n")
    );
}

/// `M` as it was before the re-keying migrations: the schema an existing
/// database has.
struct Before<M>(PhantomData<M>);

#[sea_orm_migration::async_trait::async_trait]
impl<M: MigratorTrait + Sync> MigratorTrait for Before<M> {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        M::migrations()
            .into_iter()
            .filter(|m| !m.name().ends_with(TENANT_FIRST))
            .collect()
    }
}

/// Tables the upgrade test fills: every ordinary table but the migrator's
/// record and the head row, which exist already.
fn fillable(tables: &[TableKeys]) -> Vec<String> {
    tables
        .iter()
        .filter(|t| t.kind == TableKind::Table)
        .filter(|t| t.table != "seaql_migrations" && t.table != "outbox_head")
        .map(|t| t.table.clone())
        .collect()
}

/// The columns of `table` in order, with whether each is a number or a
/// flag (which needs a value of its kind).
async fn columns(db: &DatabaseConnection, table: &str) -> Vec<(String, String)> {
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => format!(
            "SELECT column_name::text, data_type::text FROM information_schema.columns \
             WHERE table_schema = current_schema() AND table_name = '{table}' \
             ORDER BY ordinal_position"
        ),
        _ => format!("SELECT name, type FROM pragma_table_info('{table}') ORDER BY cid"),
    };
    db.query_all_raw(Statement::from_string(backend, sql))
        .await
        .unwrap()
        .iter()
        .map(|r| {
            (
                r.try_get_by_index::<String>(0).unwrap(),
                r.try_get_by_index::<String>(1)
                    .unwrap()
                    .to_ascii_lowercase(),
            )
        })
        .collect()
}

/// Every row of `table`, each column as text.
async fn rows(db: &DatabaseConnection, table: &str) -> Vec<Vec<Option<String>>> {
    let cols = columns(db, table).await;
    let list = cols
        .iter()
        .map(|(c, _)| format!("CAST(\"{c}\" AS TEXT)"))
        .collect::<Vec<_>>()
        .join(", ");
    let backend = db.get_database_backend();
    db.query_all_raw(Statement::from_string(
        backend,
        format!("SELECT {list} FROM \"{table}\" ORDER BY 1"),
    ))
    .await
    .unwrap()
    .iter()
    .map(|r| {
        (0..cols.len())
            .map(|i| r.try_get_by_index::<Option<String>>(i).unwrap())
            .collect()
    })
    .collect()
}

/// Applies `M` without its re-keying migrations, puts a row into every
/// table (each column its own value), applies the rest, and reads every row
/// back unchanged, under keys that lead with the tenant.
async fn upgrade_keeps_rows<M: MigratorTrait + Sync>(service: &str, location: Location) {
    let db = crm_store::connect(&location, 1).await.unwrap();
    crm_store::migrate::<Before<M>>(&db).await.unwrap();
    let old = unique_keys(&db).await.unwrap();
    // The check tells the schema before the re-keying from the one after.
    let old_violations = violations(service, &old);
    assert!(
        !old_violations.is_empty(),
        "{service}: nothing to re-key before the tenant-first migrations?"
    );
    eprintln!(
        "{service} before the upgrade:\n{}",
        old_violations.join("\n")
    );
    let tables = fillable(&old);
    let mut before = Vec::new();
    for table in &tables {
        let cols = columns(&db, table).await;
        let values = cols
            .iter()
            .enumerate()
            .map(|(i, (_, kind))| {
                if kind.contains("bool") {
                    "true".to_owned()
                } else if kind.contains("int") {
                    (i + 1).to_string()
                } else {
                    format!("'{service}-{table}-{i}'")
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        db.execute_unprepared(&format!("INSERT INTO \"{table}\" VALUES ({values})"))
            .await
            .unwrap_or_else(|e| panic!("{service}.{table}: {e}"));
        before.push((table.clone(), rows(&db, table).await));
    }
    crm_store::migrate::<M>(&db).await.unwrap();
    for (table, expected) in before {
        assert_eq!(rows(&db, &table).await, expected, "{service}.{table}");
        assert_eq!(expected.len(), 1, "{service}.{table}");
    }
    let found = violations(service, &unique_keys(&db).await.unwrap());
    assert!(found.is_empty(), "{}", found.join("\n"));
    db.close().await.unwrap();
}

/// The upgrade of every registered service, on `database_url` (PostgreSQL)
/// or under `dir` (SQLite).
async fn upgrade_every_service(database_url: Option<&str>, dir: &std::path::Path) {
    let mut done = Vec::new();
    macro_rules! upgrade {
        ($($name:literal => $migrator:ty),* $(,)?) => {$(
            upgrade_keeps_rows::<$migrator>(
                $name,
                Location::for_service($name, database_url, dir),
            )
            .await;
            done.push($name);
        )*};
    }
    upgrade! {
        "leads" => crm_leads::store::Migrator,
        "opportunities" => crm_opportunities::store::Migrator,
        "contracts" => crm_contracts::store::Migrator,
        "delivery" => crm_delivery::store::Migrator,
        "tickets" => crm_tickets::store::Migrator,
    }
    let registered: Vec<&str> = SERVICES.iter().map(|e| e.name).collect();
    assert_eq!(done, registered, "a migrator per registered service");
}

#[tokio::test]
async fn the_upgrade_keeps_existing_rows_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    upgrade_every_service(None, dir.path()).await;
}

#[tokio::test]
async fn the_upgrade_keeps_existing_rows_on_postgres() {
    let Some((_guard, url)) = fresh_postgres("the_upgrade_keeps_existing_rows_on_postgres").await
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    upgrade_every_service(Some(&url), dir.path()).await;
}
