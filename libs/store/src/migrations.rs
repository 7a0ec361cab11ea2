//! Running a service's migrations one migrator at a time, and the tables
//! every service has: its audit trail and its idempotency records.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend};
use sea_orm_migration::{prelude::*, schema::*};

use crate::write::begin_write;

/// The PostgreSQL advisory lock every migrator of the suite takes (and the
/// creation of a service's schema): any fixed number, the same in every
/// process. Advisory locks are per database, so suites on other databases
/// of the server do not wait for each other.
pub(crate) const MIGRATION_LOCK: i64 = 0x0063_726d_6d69_6772; // "crmmigr"

/// Applies `M`'s pending migrations, one migrator at a time across
/// processes: replicas starting together and `crm migrate` Jobs run at
/// once would otherwise each see the same migrations pending and collide
/// creating the same tables (on PostgreSQL a duplicate key in `pg_type`).
///
/// Everything runs in one transaction that first takes the lock: on
/// PostgreSQL `pg_advisory_xact_lock`, held by that transaction's own
/// connection and released when it ends, whatever way it ends; on SQLite
/// `BEGIN IMMEDIATE`, the file's write lock. The next migrator then finds
/// nothing pending. A failed run leaves nothing behind (DDL is
/// transactional on both).
pub async fn migrate<M: MigratorTrait>(db: &DatabaseConnection) -> Result<(), DbErr> {
    let tx = begin_write(db).await?;
    if db.get_database_backend() == DbBackend::Postgres {
        tx.execute_unprepared(&format!("SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
            .await?;
    }
    M::up(&*tx, None).await?;
    tx.commit().await
}

/// An index named `name` on `cols` of `table`, created if missing.
pub fn index(name: &str, table: &'static str, cols: &[&'static str]) -> IndexCreateStatement {
    let mut stmt = Index::create();
    stmt.name(name).table(table).if_not_exists();
    for col in cols {
        stmt.col(*col);
    }
    stmt.to_owned()
}

/// Migrations of the shared tables, to run first in every service's migrator.
pub fn shared_migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![
        Box::new(CreateAuditAndIdempotency),
        Box::new(SharedTenantFirstKeys),
    ]
}

/// Makes each `(table, key)` the table's primary key (the tenant first),
/// keeping its rows and indexes; a key already in place is left alone.
/// For a service's own migration that re-keys its tables (docs/scaling.md).
///
/// The migration must run in a transaction on every backend
/// (`use_transaction` returning `Some(true)`; sea-orm runs SQLite
/// migrations without one by default): a table rebuilt on SQLite must see
/// one connection throughout (another connection of the pool may still
/// know the old table by its name), and a failure part way must leave the
/// table as it was. Under `crate::migrate` it is a savepoint of the
/// migrator's transaction.
pub async fn tenant_first_keys(
    manager: &SchemaManager<'_>,
    keys: &[(&str, &[&str])],
) -> Result<(), DbErr> {
    for (table, key) in keys {
        if key.first() != Some(&"tenant_id") {
            return Err(DbErr::Migration(format!(
                "{table}: a key must lead with tenant_id, not {key:?}"
            )));
        }
        crate::keys::set_primary_key(manager.get_connection(), table, key).await?;
    }
    Ok(())
}

struct CreateAuditAndIdempotency;

impl MigrationName for CreateAuditAndIdempotency {
    fn name(&self) -> &str {
        "m0001_shared_audit_idempotency_config"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for CreateAuditAndIdempotency {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("audit_entries")
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(string("tenant_id"))
                    .col(string("subject_id"))
                    .col(string("action"))
                    .col(string("actor"))
                    .col(big_integer("time"))
                    .col(text("changes"))
                    .col(text("reason"))
                    .to_owned(),
            )
            .await?;
        // Audit trails are read per record and per tenant, newest first.
        manager
            .create_index(
                Index::create()
                    .name("audit_entries_subject")
                    .table("audit_entries")
                    .col("tenant_id")
                    .col("subject_id")
                    .col("id")
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("audit_entries_tenant")
                    .table("audit_entries")
                    .col("tenant_id")
                    .col("id")
                    .if_not_exists()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("idempotency_keys")
                    .if_not_exists()
                    .col(string("tenant_id"))
                    .col(string("request_id"))
                    .col(string("method"))
                    .col(string("request_hash"))
                    .col(text("outcome"))
                    .col(big_integer("create_time"))
                    .primary_key(Index::create().col("tenant_id").col("request_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("tenant_configs")
                    .if_not_exists()
                    .col(string("tenant_id").primary_key())
                    .col(text("config"))
                    .col(big_integer("version"))
                    .col(big_integer("update_time"))
                    .col(string("updater"))
                    .to_owned(),
            )
            .await?;
        // Retention sweeps delete old keys by age.
        manager
            .create_index(
                Index::create()
                    .name("idempotency_keys_age")
                    .table("idempotency_keys")
                    .col("create_time")
                    .if_not_exists()
                    .to_owned(),
            )
            .await
    }
}

/// Every primary key leads with the tenant, so that the schema can be
/// distributed by tenant (docs/scaling.md): the audit trail was keyed by
/// its id alone. Idempotency records and tenant configurations are keyed
/// by the tenant already. `audit_entries_tenant` (tenant, id) is the new
/// key's own index now, so it goes.
struct SharedTenantFirstKeys;

impl MigrationName for SharedTenantFirstKeys {
    fn name(&self) -> &str {
        "m0001_shared_tenant_first_keys"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for SharedTenantFirstKeys {
    /// See [`tenant_first_keys`].
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        tenant_first_keys(manager, &[("audit_entries", &["tenant_id", "id"])]).await?;
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS audit_entries_tenant")
            .await?;
        Ok(())
    }
}
