//! Storage plumbing shared by the services.
//!
//! Each service owns its schema: on SQLite one file per service, on
//! PostgreSQL one schema per service. Whatever the backend, a write commits
//! durably before the caller is told it succeeded (SQLite WAL with
//! `synchronous=FULL`, PostgreSQL with `synchronous_commit=on`).
//!
//! Times are stored as Unix microseconds (UTC) in BIGINT columns: one
//! representation on both backends, cheap to index and to page by.

pub mod audit;
mod availability;
pub mod idempotency;
pub mod keys;
mod migrations;
pub mod tenant_config;
pub mod uow;
mod write;

use std::{path::Path, time::Duration};

use sea_orm::{
    ConnectOptions, Database, SqlErr, TransactionTrait,
    sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous},
};

pub use availability::is_unavailable;
pub use migrations::{index, migrate, shared_migrations, tenant_first_keys};
pub use sea_orm::{ConnAcquireErr, ConnectionTrait, DatabaseConnection, DbErr};
pub use write::{WriteTx, begin_write, begin_write_for};

/// Where one service keeps its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub url: String,
    /// PostgreSQL schema of the service; `None` on SQLite (a file per service).
    pub schema: Option<String>,
}

impl Location {
    /// The location of `service`: its own schema in the PostgreSQL database
    /// at `database_url`, or its own SQLite file under `data_dir` when no URL
    /// (or a SQLite directory URL) is configured.
    pub fn for_service(service: &str, database_url: Option<&str>, data_dir: &Path) -> Self {
        match database_url {
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                Location {
                    url: url.to_owned(),
                    schema: Some(service.to_owned()),
                }
            }
            _ => Location {
                url: format!(
                    "sqlite://{}?mode=rwc",
                    data_dir.join(format!("{service}.db")).display()
                ),
                schema: None,
            },
        }
    }
}

/// Opens a pool on `location` with durable commit settings, creating the
/// service's PostgreSQL schema if it does not exist yet.
pub async fn connect(
    location: &Location,
    max_connections: u32,
) -> Result<DatabaseConnection, DbErr> {
    let mut options = ConnectOptions::new(location.url.clone());
    options
        .max_connections(max_connections.max(1))
        .connect_timeout(Duration::from_secs(10))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(|opts| {
            opts.journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .busy_timeout(Duration::from_secs(10))
                .foreign_keys(true)
        })
        .map_sqlx_postgres_opts(|opts| opts.options([("synchronous_commit", "on")]));
    if location.schema.is_none() {
        // A SQLite connection is a file handle in this process: it cannot
        // go stale the way a network connection can, so the ping before
        // every acquire is pure cost.
        options.test_before_acquire(false);
    }
    if let Some(schema) = &location.schema {
        create_schema(&location.url, schema).await?;
        options.set_schema_search_path(schema.clone());
    }
    Database::connect(options).await
}

async fn create_schema(url: &str, schema: &str) -> Result<(), DbErr> {
    if !schema
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        return Err(DbErr::Custom(format!("invalid schema name {schema:?}")));
    }
    let db = Database::connect(
        ConnectOptions::new(url.to_owned())
            .max_connections(1)
            .sqlx_logging(false)
            .to_owned(),
    )
    .await?;
    // Processes starting together would race on `pg_namespace` otherwise:
    // the same lock as the migrators', held until this transaction ends.
    let tx = db.begin().await?;
    tx.execute_unprepared(&format!(
        "SELECT pg_advisory_xact_lock({})",
        migrations::MIGRATION_LOCK
    ))
    .await?;
    tx.execute_unprepared(&format!("CREATE SCHEMA IF NOT EXISTS {schema}"))
        .await?;
    tx.commit().await?;
    db.close().await
}

/// Whether `err` is a unique-constraint violation, and on which constraint
/// (as much as the backend says).
pub fn unique_violation(err: &DbErr) -> Option<String> {
    match err.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(detail)) => Some(detail),
        _ => None,
    }
}

pub use crm_types::{new_id, now_micros};

/// An error a write transaction may end with, telling a unique violation
/// (a concurrent writer got there first) from anything else.
pub trait TxError: From<DbErr> {
    fn is_unique_violation(&self) -> bool;
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use sea_orm::{ConnectionTrait, Statement};

    use super::*;

    /// The bundled SQLite must be built with the planner stability
    /// guarantee (`.cargo/config.toml`): without it every `LIMIT ?`
    /// statement is re-planned on each run.
    #[tokio::test]
    async fn sqlite_is_built_with_the_planner_stability_guarantee() {
        let dir = tempfile::tempdir().unwrap();
        let db = connect(&Location::for_service("t", None, dir.path()), 1)
            .await
            .unwrap();
        let rows = db
            .query_all_raw(Statement::from_string(
                db.get_database_backend(),
                "PRAGMA compile_options",
            ))
            .await
            .unwrap();
        let options: Vec<String> = rows
            .iter()
            .map(|row| row.try_get_by_index(0).unwrap())
            .collect();
        assert!(
            options.iter().any(|o| o == "ENABLE_QPSG"),
            "compile options: {options:?}"
        );
    }
}
