//! The tickets schema. Every list filter, dispatch's lookups, the
//! complaint windows and the sweeper's timer have an index that serves
//! them; the full-text index of resolved tickets is FTS5 on SQLite and a
//! tsvector with a GIN index on PostgreSQL.

use crm_store::index;
use sea_orm::DbBackend;
use sea_orm_migration::{prelude::*, schema::*};

pub struct Migrator;

#[sea_orm_migration::async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut all = crm_store::shared_migrations();
        all.push(Box::new(CreateTickets));
        all.extend(crm_events::migrations());
        all.push(Box::new(SearchRows));
        all.push(Box::new(TicketsTenantFirstKeys));
        all.push(Box::new(TierReview));
        all.push(Box::new(SearchWithoutPendingList));
        all
    }
}

struct CreateTickets;

impl MigrationName for CreateTickets {
    fn name(&self) -> &str {
        "m0002_tickets"
    }
}

fn pk(cols: &[&'static str]) -> IndexCreateStatement {
    let mut i = Index::create();
    for c in cols {
        i.col(*c);
    }
    i.to_owned()
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for CreateTickets {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let tables = [
            Table::create()
                .table("tickets")
                .if_not_exists()
                .col(string("id").primary_key())
                .col(string("tenant_id"))
                .col(big_integer("version"))
                .col(string("account_id"))
                .col(string("assignee_id"))
                .col(string("status"))
                .col(integer("priority"))
                .col(string("category"))
                .col(boolean("vip"))
                .col(boolean("complaint"))
                .col(boolean("breached"))
                .col(string("account_manager_id"))
                .col(big_integer_null("next_check"))
                .col(big_integer("create_time"))
                .col(big_integer("update_time"))
                .col(text("body"))
                .to_owned(),
            Table::create()
                .table("entitlements")
                .if_not_exists()
                .col(string("id").primary_key())
                .col(string("tenant_id"))
                .col(string("account_id"))
                .col(string("source_key"))
                .col(big_integer("create_time"))
                .col(text("body"))
                .to_owned(),
            Table::create()
                .table("engineers")
                .if_not_exists()
                .col(string("tenant_id"))
                .col(string("id"))
                .col(big_integer("version"))
                .col(boolean("on_duty"))
                .col(big_integer_null("last_assigned_time"))
                .col(text("body"))
                .primary_key(&mut pk(&["tenant_id", "id"]))
                .to_owned(),
            Table::create()
                .table("engineer_skills")
                .if_not_exists()
                .col(string("tenant_id"))
                .col(string("skill"))
                .col(string("engineer_id"))
                .primary_key(&mut pk(&["tenant_id", "skill", "engineer_id"]))
                .to_owned(),
            Table::create()
                .table("ticket_comments")
                .if_not_exists()
                .col(string("id").primary_key())
                .col(string("tenant_id"))
                .col(string("ticket_id"))
                .col(boolean("public"))
                .col(text("body"))
                .to_owned(),
            Table::create()
                .table("accounts")
                .if_not_exists()
                .col(string("tenant_id"))
                .col(string("account_id"))
                .col(string("account_manager_id"))
                .col(string("industry"))
                .col(string("tier"))
                .col(integer("score"))
                .col(boolean("at_risk"))
                .col(boolean("health_known"))
                .col(big_integer("purchases"))
                .col(string("currency"))
                .col(string("total_nanos"))
                .col(big_integer_null("last_purchase_time"))
                .col(big_integer("update_time"))
                .col(text("body"))
                .primary_key(&mut pk(&["tenant_id", "account_id"]))
                .to_owned(),
            Table::create()
                .table("purchases")
                .if_not_exists()
                .col(string("id").primary_key())
                .col(string("tenant_id"))
                .col(string("account_id"))
                .col(big_integer("purchase_time"))
                .col(string("currency"))
                .col(big_integer("units"))
                .col(integer("nanos"))
                .to_owned(),
            Table::create()
                .table("retention_tasks")
                .if_not_exists()
                .col(string("id").primary_key())
                .col(string("tenant_id"))
                .col(string("account_id"))
                .col(string("assignee_id"))
                .col(string("status"))
                .col(text("body"))
                .to_owned(),
        ];
        for t in tables {
            manager.create_table(t).await?;
        }
        // One entitlement per completed project: a replayed
        // DeliveryProjectCompleted ends here.
        manager
            .create_index(
                index(
                    "entitlements_source",
                    "entitlements",
                    &["tenant_id", "source_key"],
                )
                .unique()
                .to_owned(),
            )
            .await?;
        for (name, table, cols) in [
            // ListTickets: newest first, per filter.
            ("tickets_tenant", "tickets", &["tenant_id", "id"][..]),
            ("tickets_status", "tickets", &["tenant_id", "status", "id"]),
            (
                "tickets_assignee",
                "tickets",
                &["tenant_id", "assignee_id", "status", "id"],
            ),
            (
                "tickets_account",
                "tickets",
                &["tenant_id", "account_id", "id"],
            ),
            (
                "tickets_priority",
                "tickets",
                &["tenant_id", "priority", "id"],
            ),
            (
                "tickets_breached",
                "tickets",
                &["tenant_id", "breached", "id"],
            ),
            (
                "tickets_manager",
                "tickets",
                &["tenant_id", "account_manager_id", "id"],
            ),
            // The queue an engineer coming on duty takes from.
            (
                "tickets_queue",
                "tickets",
                &["tenant_id", "status", "category", "vip", "priority", "id"],
            ),
            // The complaint windows of an account.
            (
                "tickets_account_time",
                "tickets",
                &["tenant_id", "account_id", "create_time"],
            ),
            // The sweeper, across tenants.
            ("tickets_next_check", "tickets", &["next_check"]),
            (
                "entitlements_account",
                "entitlements",
                &["tenant_id", "account_id", "id"],
            ),
            ("entitlements_tenant", "entitlements", &["tenant_id", "id"]),
            (
                "engineers_duty",
                "engineers",
                &["tenant_id", "on_duty", "id"],
            ),
            (
                "comments_ticket",
                "ticket_comments",
                &["tenant_id", "ticket_id", "id"],
            ),
            (
                "accounts_risk",
                "accounts",
                &["tenant_id", "at_risk", "score", "account_id"],
            ),
            (
                "accounts_manager_risk",
                "accounts",
                &[
                    "tenant_id",
                    "account_manager_id",
                    "at_risk",
                    "score",
                    "account_id",
                ],
            ),
            (
                "purchases_account_time",
                "purchases",
                &["tenant_id", "account_id", "purchase_time"],
            ),
            ("retention_tenant", "retention_tasks", &["tenant_id", "id"]),
            (
                "retention_account",
                "retention_tasks",
                &["tenant_id", "account_id", "id"],
            ),
            (
                "retention_assignee",
                "retention_tasks",
                &["tenant_id", "assignee_id", "id"],
            ),
        ] {
            manager.create_index(index(name, table, cols)).await?;
        }
        let db = manager.get_connection();
        match manager.get_database_backend() {
            DbBackend::Postgres => {
                db.execute_unprepared(
                    "CREATE TABLE IF NOT EXISTS ticket_search (
                        ticket_id VARCHAR PRIMARY KEY,
                        tenant_id VARCHAR NOT NULL,
                        doc TSVECTOR NOT NULL)",
                )
                .await?;
                db.execute_unprepared(
                    "CREATE INDEX IF NOT EXISTS ticket_search_doc ON ticket_search USING GIN (doc)",
                )
                .await?;
            }
            _ => {
                // The tenant is an indexed column matched in the query, so
                // a tenant's search never ranks another's documents.
                db.execute_unprepared(
                    "CREATE VIRTUAL TABLE IF NOT EXISTS ticket_search USING fts5(
                        tenant_key, doc, ticket_id UNINDEXED, tokenize = 'unicode61')",
                )
                .await?;
            }
        }
        Ok(())
    }
}

/// On SQLite, where each resolved ticket sits in the FTS5 table: a
/// ticket's FTS5 rowid by its key, so that withdrawing it on reopen is a
/// delete by rowid rather than a scan of the unindexed `ticket_id` column.
/// PostgreSQL's `ticket_search` is keyed by the ticket already.
struct SearchRows;

impl MigrationName for SearchRows {
    fn name(&self) -> &str {
        "m0003_ticket_search_rows"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for SearchRows {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared(
            "CREATE TABLE IF NOT EXISTS ticket_search_rows (
                tenant_id TEXT NOT NULL,
                ticket_id TEXT NOT NULL,
                search_rowid INTEGER NOT NULL,
                PRIMARY KEY (tenant_id, ticket_id))",
        )
        .await?;
        // The tickets indexed before this migration.
        db.execute_unprepared(
            "INSERT OR IGNORE INTO ticket_search_rows (tenant_id, ticket_id, search_rowid)
             SELECT t.tenant_id, s.ticket_id, s.rowid
             FROM ticket_search AS s JOIN tickets AS t ON t.id = s.ticket_id",
        )
        .await?;
        Ok(())
    }
}

/// Every primary key leads with the tenant, so that the schema can be
/// distributed by tenant (docs/scaling.md): tickets, entitlements,
/// comments, purchases and retention tasks were keyed by their id alone,
/// and PostgreSQL's `ticket_search` by its ticket (SQLite's is an FTS5
/// table, with no key of ours). The indexes on (tenant, id) are the new
/// keys' own indexes now, so they go. Queries name the tenant with every
/// id already.
struct TicketsTenantFirstKeys;

impl MigrationName for TicketsTenantFirstKeys {
    fn name(&self) -> &str {
        "m0004_tickets_tenant_first_keys"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for TicketsTenantFirstKeys {
    /// In a transaction on every backend, as `crm_store::tenant_first_keys`
    /// needs.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut keys: Vec<(&str, &[&str])> = vec![
            ("tickets", &["tenant_id", "id"]),
            ("entitlements", &["tenant_id", "id"]),
            ("ticket_comments", &["tenant_id", "id"]),
            ("purchases", &["tenant_id", "id"]),
            ("retention_tasks", &["tenant_id", "id"]),
        ];
        if manager.get_database_backend() == DbBackend::Postgres {
            keys.push(("ticket_search", &["tenant_id", "ticket_id"]));
        }
        crm_store::tenant_first_keys(manager, &keys).await?;
        for index in ["tickets_tenant", "entitlements_tenant", "retention_tenant"] {
            manager
                .get_connection()
                .execute_unprepared(&format!("DROP INDEX IF EXISTS {index}"))
                .await?;
        }
        Ok(())
    }
}

/// Loyalty tiers decay: when each account's tier must be judged again
/// without a purchase (`next_tier_review`), and the sweeper's index of it
/// across tenants, as `tickets_next_check` serves the SLA sweeper. Loyal
/// accounts judged before this migration are due at once, so the first
/// sweep gives each its review time.
struct TierReview;

impl MigrationName for TierReview {
    fn name(&self) -> &str {
        "m0005_tickets_tier_review"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for TierReview {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("accounts")
                    .add_column(big_integer_null("next_tier_review"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "accounts_tier_review",
                "accounts",
                &["next_tier_review"],
            ))
            .await?;
        manager
            .get_connection()
            .execute_unprepared("UPDATE accounts SET next_tier_review = 0 WHERE tier = 'loyal'")
            .await?;
        Ok(())
    }
}

/// PostgreSQL's GIN index of resolved tickets without a pending list. With
/// it (the default, `fastupdate`), new entries wait in an unsorted list
/// that every search reads through until a vacuum merges it: over a
/// freshly loaded history a three-word search spent 3.5 ms there instead
/// of 0.5 ms. A ticket is indexed once per resolution and searched far
/// more often, so the insert pays for the merge. The list already there is
/// merged now.
struct SearchWithoutPendingList;

impl MigrationName for SearchWithoutPendingList {
    fn name(&self) -> &str {
        "m0006_ticket_search_without_pending_list"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for SearchWithoutPendingList {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        db.execute_unprepared("ALTER INDEX ticket_search_doc SET (fastupdate = off)")
            .await?;
        db.execute_unprepared("SELECT gin_clean_pending_list('ticket_search_doc'::regclass)")
            .await?;
        Ok(())
    }
}
