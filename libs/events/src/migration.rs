//! The tables of the event machinery, for every service's migrator.

use sea_orm_migration::{prelude::*, schema::*};

/// Migrations of the outbox (for a service that publishes events) and of
/// the consumer cursors (for one that consumes them): put them into the
/// service's migrator after `crm_store::shared_migrations()`. A service that
/// only publishes has an empty `event_cursors` table, which costs nothing.
pub fn migrations() -> Vec<Box<dyn MigrationTrait>> {
    vec![
        Box::new(CreateOutbox),
        Box::new(CreateCursors),
        Box::new(NumberedOnlyIndexes),
        Box::new(LocalFailures),
        Box::new(EventsTenantFirstKeys),
    ]
}

use crm_store::index;

struct CreateOutbox;

impl MigrationName for CreateOutbox {
    fn name(&self) -> &str {
        "m0100_events_outbox"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for CreateOutbox {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("outbox_events")
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(big_integer_null("sequence"))
                    .col(string("tenant_id"))
                    .col(string("type"))
                    .col(string("subject_id"))
                    .col(big_integer("time"))
                    .col(text("traceparent"))
                    .col(text("tracestate"))
                    .col(blob("payload"))
                    .col(big_integer("create_time"))
                    .to_owned(),
            )
            .await?;
        // The sequencer's work list: small, since rows leave it within
        // milliseconds. Partial indexes are the same SQL on both backends;
        // sea-query cannot express them.
        manager
            .get_connection()
            .execute_unprepared(
                r#"CREATE INDEX IF NOT EXISTS outbox_events_unsequenced
                   ON outbox_events (create_time, id) WHERE "sequence" IS NULL"#,
            )
            .await?;
        // Unique: a second sequencer that somehow ran at the same time
        // fails instead of handing out a number twice. Also serves pruning
        // and retention checks (sequence order).
        manager
            .create_index(
                index("outbox_events_sequence", "outbox_events", &["sequence"])
                    .unique()
                    .to_owned(),
            )
            .await?;
        // A subscriber reads its tenant's events in sequence order.
        manager
            .create_index(index(
                "outbox_events_tenant_sequence",
                "outbox_events",
                &["tenant_id", "sequence"],
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("outbox_head")
                    .if_not_exists()
                    .col(integer("id").primary_key())
                    .col(big_integer("last_sequence"))
                    .col(big_integer("oldest_retained"))
                    .to_owned(),
            )
            .await?;
        let head = Query::insert()
            .into_table("outbox_head")
            .columns(["id", "last_sequence", "oldest_retained"])
            .values([1.into(), 0i64.into(), 1i64.into()])
            .map_err(|e| DbErr::Migration(e.to_string()))?
            .on_conflict(OnConflict::column("id").do_nothing().to_owned())
            .to_owned();
        manager.exec_stmt(head).await
    }
}

struct CreateCursors;

impl MigrationName for CreateCursors {
    fn name(&self) -> &str {
        "m0101_events_cursors"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for CreateCursors {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("event_cursors")
                    .if_not_exists()
                    .col(string("consumer"))
                    .col(string("source"))
                    .col(string("tenant_id"))
                    .col(big_integer("sequence"))
                    .col(big_integer("update_time"))
                    .primary_key(
                        Index::create()
                            .col("consumer")
                            .col("source")
                            .col("tenant_id"),
                    )
                    .to_owned(),
            )
            .await
    }
}

/// The sequence indexes hold numbered rows only. Every event is inserted
/// unnumbered and numbered by an update, so on PostgreSQL each one leaves a
/// dead `sequence IS NULL` entry behind in an index over all rows until
/// vacuum; the sequencer's look for unnumbered rows went through those
/// instead of the small `outbox_events_unsequenced` index and read the
/// whole history each time. Every read by sequence compares it, which
/// implies IS NOT NULL, so both backends still use these for them.
struct NumberedOnlyIndexes;

impl MigrationName for NumberedOnlyIndexes {
    fn name(&self) -> &str {
        "m0102_events_numbered_only_indexes"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for NumberedOnlyIndexes {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // IF (NOT) EXISTS throughout: replicas starting together may both
        // run this before either has recorded it.
        let db = manager.get_connection();
        for sql in [
            "DROP INDEX IF EXISTS outbox_events_sequence",
            r#"CREATE UNIQUE INDEX IF NOT EXISTS outbox_events_sequence
               ON outbox_events ("sequence") WHERE "sequence" IS NOT NULL"#,
            "DROP INDEX IF EXISTS outbox_events_tenant_sequence",
            r#"CREATE INDEX IF NOT EXISTS outbox_events_tenant_sequence
               ON outbox_events (tenant_id, "sequence") WHERE "sequence" IS NOT NULL"#,
        ] {
            db.execute_unprepared(sql).await?;
        }
        Ok(())
    }
}

/// Where local consumers park the events they failed to apply (retried on
/// their own schedule, so one bad event holds up nobody else) and where
/// they put those they gave up on.
struct LocalFailures;

impl MigrationName for LocalFailures {
    fn name(&self) -> &str {
        "m0103_events_local_failures"
    }
}

fn failed_event(table: &'static str, extra: &[ColumnDef]) -> TableCreateStatement {
    let mut t = Table::create();
    t.table(table)
        .if_not_exists()
        .col(string("consumer"))
        .col(string("event_id"))
        .col(big_integer("sequence"))
        .col(string("tenant_id"))
        .col(string("type"))
        .col(string("subject_id"))
        .col(big_integer("time"))
        .col(text("traceparent"))
        .col(text("tracestate"))
        .col(blob("payload"))
        .col(integer("attempts"))
        .col(text("last_error"))
        .col(big_integer("first_failure_time"));
    for col in extra {
        t.col(col.clone());
    }
    t.primary_key(Index::create().col("consumer").col("event_id"))
        .to_owned()
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for LocalFailures {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(failed_event(
                "event_retries",
                &[big_integer("next_attempt_time")],
            ))
            .await?;
        // The retry pass reads the due ones.
        manager
            .create_index(index(
                "event_retries_due",
                "event_retries",
                &["consumer", "next_attempt_time"],
            ))
            .await?;
        manager
            .create_table(failed_event(
                "event_dead_letters",
                &[big_integer("dead_time")],
            ))
            .await
    }
}

/// Every primary key leads with the tenant, so that the schema can be
/// distributed by tenant (docs/scaling.md). The cursors' key keeps its
/// columns (the tenant `*` is an all-tenants consumer's one cursor); a
/// parked event's key is its consumer and event as before, under the
/// event's tenant. The dead letters are read by consumer in sequence
/// order, which the old key's prefix served: an index of their own now.
/// The outbox and its head stay as they are: one sequence across tenants
/// (docs/scaling.md says what that means on Citus).
struct EventsTenantFirstKeys;

impl MigrationName for EventsTenantFirstKeys {
    fn name(&self) -> &str {
        "m0104_events_tenant_first_keys"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for EventsTenantFirstKeys {
    /// In a transaction on every backend, as `crm_store::tenant_first_keys`
    /// needs.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crm_store::tenant_first_keys(
            manager,
            &[
                ("event_cursors", &["tenant_id", "consumer", "source"]),
                ("event_retries", &["tenant_id", "consumer", "event_id"]),
                ("event_dead_letters", &["tenant_id", "consumer", "event_id"]),
            ],
        )
        .await?;
        manager
            .create_index(index(
                "event_dead_letters_consumer",
                "event_dead_letters",
                &["consumer", "sequence"],
            ))
            .await
    }
}
