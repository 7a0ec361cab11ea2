//! Tables every service has: its audit trail and its idempotency records.

use sea_orm_migration::{prelude::*, schema::*};

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
    vec![Box::new(CreateAuditAndIdempotency)]
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
