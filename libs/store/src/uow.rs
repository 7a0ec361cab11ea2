//! The unit of work: how every command of every service writes.
//!
//! One command is one write transaction that holds, together, the change
//! itself, its audit entries, its outbox events and (for creating calls)
//! its idempotency record. The service's use case only says what to write;
//! this module owns the rest:
//!
//! - begin a write transaction (`BEGIN IMMEDIATE` on SQLite, after a turn
//!   that goes round the tenants waiting);
//! - with a request id (AIP-155): return the first call's recorded outcome
//!   instead of acting twice, refuse the id reused for another request;
//! - run the work, append its audit entries and events, record the outcome;
//! - commit, and only then wake the outbox's sequencer;
//! - run the work once more if a concurrent writer won a unique index
//!   (the same request id, a duplicate key): the second run sees its row.
//!
//! ```text
//! let created = uow
//!     .run_once(tenant, request, |tx| async move {
//!         let lead = decide(...)?;
//!         store::insert(&tx, &lead).await?;
//!         Ok(Effect::new(lead.id.clone())
//!             .audit(AuditEntry::new(&lead.id, "lead.created", actor, now))
//!             .events(wire::events_of(&lead)))
//!     })
//!     .await?;
//! ```
//!
//! The work takes an owned [`Tx`] rather than `&DatabaseTransaction`, so an
//! `async move` block can borrow from the caller without higher-ranked
//! lifetimes; it must not keep the `Tx` past its own end.

use std::{future::Future, ops::Deref, pin::Pin, sync::Arc};

use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr};
use serde::{Serialize, de::DeserializeOwned};

use crate::{
    TxError, WriteTx, audit,
    audit::AuditEntry,
    idempotency::{self, Prior, RequestKey},
};

/// A boxed, sendable future borrowing for `'a`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Where a service's events go: appended in the transaction, and a wake-up
/// after the commit. `crm-events` implements it for its outbox.
pub trait Outbox: Send + Sync {
    type Event: Send;

    fn append<'a>(
        &'a self,
        tx: &'a DatabaseTransaction,
        events: Vec<Self::Event>,
    ) -> BoxFuture<'a, Result<(), DbErr>>;

    /// Called after a commit that appended events.
    fn notify(&self);
}

/// The open transaction of one unit of work, handed to the work by value.
#[derive(Clone)]
pub struct Tx(Arc<WriteTx>);

impl Deref for Tx {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.0
    }
}

/// What a command's work produced: its result, and what to write with it.
#[derive(Debug)]
pub struct Effect<T, E> {
    value: T,
    audit: Vec<AuditEntry>,
    events: Vec<E>,
}

impl<T, E> Effect<T, E> {
    /// A result that writes no audit entry and no event (yet).
    pub fn new(value: T) -> Self {
        Effect {
            value,
            audit: Vec::new(),
            events: Vec::new(),
        }
    }

    pub fn audit(mut self, entry: AuditEntry) -> Self {
        self.audit.push(entry);
        self
    }

    pub fn audits(mut self, entries: impl IntoIterator<Item = AuditEntry>) -> Self {
        self.audit.extend(entries);
        self
    }

    pub fn event(mut self, event: E) -> Self {
        self.events.push(event);
        self
    }

    pub fn events(mut self, events: impl IntoIterator<Item = E>) -> Self {
        self.events.extend(events);
        self
    }
}

/// A request id used before for a different request (method or content).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("request_id was already used for a different request")]
pub struct RequestIdReused;

/// A service's database and outbox: every command runs through it.
#[derive(Clone)]
pub struct UnitOfWork<O> {
    db: DatabaseConnection,
    outbox: O,
}

impl<O: Outbox> UnitOfWork<O> {
    pub fn new(db: DatabaseConnection, outbox: O) -> Self {
        UnitOfWork { db, outbox }
    }

    /// The connection, for reads outside a command.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Runs a command of `tenant` that has no request id (an update, a
    /// transition): `work` decides and writes; its audit entries and events
    /// commit with it.
    pub async fn run<T, E, F, Fut>(&self, tenant: &str, mut work: F) -> Result<T, E>
    where
        E: TxError,
        F: FnMut(Tx) -> Fut,
        Fut: Future<Output = Result<Effect<T, O::Event>, E>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let tx = Tx(Arc::new(crate::begin_write_for(&self.db, tenant).await?));
            let result = match work(tx.clone()).await {
                Ok(effect) => self.finish(tx, tenant, effect, |_| Ok(None)).await,
                Err(err) => Err(err),
            };
            match result {
                Err(err) if attempt == 1 && err.is_unique_violation() => continue,
                other => return other,
            }
        }
    }

    /// Runs a creating command that may carry a request id: a retry with
    /// the same id returns the first call's result (recorded as JSON in the
    /// same transaction) without running `work` again; the same id with
    /// another request is [`RequestIdReused`]. Keep `T` small (ids and
    /// flags): the caller reloads what it shows.
    pub async fn run_once<T, E, F, Fut>(
        &self,
        tenant: &str,
        request: Option<RequestKey<'_>>,
        mut work: F,
    ) -> Result<T, E>
    where
        T: Serialize + DeserializeOwned,
        E: TxError + From<RequestIdReused>,
        F: FnMut(Tx) -> Fut,
        Fut: Future<Output = Result<Effect<T, O::Event>, E>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let tx = Tx(Arc::new(crate::begin_write_for(&self.db, tenant).await?));
            if let Some(key) = request {
                match idempotency::prior(&*tx, key).await? {
                    Prior::Same(outcome) => return decode(&outcome),
                    Prior::Conflict => return Err(RequestIdReused.into()),
                    Prior::None => {}
                }
            }
            let result = match work(tx.clone()).await {
                Ok(effect) => {
                    self.finish(tx, tenant, effect, |value| match request {
                        Some(key) => encode(value).map(|json| Some((key, json))),
                        None => Ok(None),
                    })
                    .await
                }
                Err(err) => Err(err),
            };
            match result {
                Err(err) if attempt == 1 && err.is_unique_violation() => continue,
                Err(err) => {
                    // The same request, sent twice at once, may have been
                    // done by the other copy after this one looked for it:
                    // on PostgreSQL each statement sees what committed
                    // before it, so this attempt's own checks could see
                    // that request's effect (a contract that now exists)
                    // and refuse it. Its recorded outcome is the answer.
                    if let Some(key) = request
                        && let Ok(Prior::Same(outcome)) = idempotency::prior(&self.db, key).await
                    {
                        return decode(&outcome);
                    }
                    return Err(err);
                }
                other => return other,
            }
        }
    }

    /// Writes what `effect` carries beside the change, commits, and wakes
    /// the outbox.
    async fn finish<'k, T, E>(
        &self,
        tx: Tx,
        tenant: &str,
        effect: Effect<T, O::Event>,
        record: impl FnOnce(&T) -> Result<Option<(RequestKey<'k>, String)>, DbErr>,
    ) -> Result<T, E>
    where
        E: From<DbErr>,
    {
        let Effect {
            value,
            audit,
            events,
        } = effect;
        let has_events = !events.is_empty();
        if !audit.is_empty() {
            audit::append(&*tx, tenant, audit).await?;
        }
        if has_events {
            self.outbox.append(&tx, events).await?;
        }
        if let Some((key, outcome)) = record(&value)? {
            idempotency::record(&*tx, key, outcome, crate::now_micros()).await?;
        }
        let tx = Arc::try_unwrap(tx.0).map_err(|_| {
            DbErr::Custom("a unit of work kept its transaction past its end".into())
        })?;
        tx.commit().await?;
        if has_events {
            self.outbox.notify();
        }
        Ok(value)
    }
}

fn encode<T: Serialize>(value: &T) -> Result<String, DbErr> {
    serde_json::to_string(value).map_err(|e| DbErr::Json(e.to_string()))
}

fn decode<T: DeserializeOwned, E: From<DbErr>>(json: &str) -> Result<T, E> {
    serde_json::from_str(json).map_err(|e| DbErr::Json(e.to_string()).into())
}

/// Whether an `UPDATE ... WHERE id = ? AND version = ?` (an optimistic-lock
/// save) found its row: `false` means a concurrent writer changed it first,
/// which the caller reports as a stale etag.
pub fn saved(result: &sea_orm::UpdateResult) -> bool {
    result.rows_affected > 0
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::{
        Mutex,
        atomic::{AtomicUsize, Ordering},
    };

    use sea_orm::{ConnectionTrait, EntityTrait, PaginatorTrait, Statement};

    use super::*;
    use crate::{Location, connect};

    /// An outbox that keeps events in a table of the test database, so that
    /// the test can see whether they committed with the change.
    #[derive(Default)]
    struct TableOutbox {
        notified: AtomicUsize,
        seen: Mutex<Vec<String>>,
    }

    impl Outbox for Arc<TableOutbox> {
        type Event = String;

        fn append<'a>(
            &'a self,
            tx: &'a DatabaseTransaction,
            events: Vec<String>,
        ) -> BoxFuture<'a, Result<(), DbErr>> {
            Box::pin(async move {
                for event in events {
                    tx.execute_raw(Statement::from_sql_and_values(
                        tx.get_database_backend(),
                        "INSERT INTO events (name) VALUES (?)",
                        [event.clone().into()],
                    ))
                    .await?;
                    self.seen.lock().unwrap().push(event);
                }
                Ok(())
            })
        }

        fn notify(&self) {
            self.notified.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[derive(Debug, thiserror::Error)]
    enum TestError {
        #[error(transparent)]
        Db(#[from] DbErr),
        #[error(transparent)]
        Reused(#[from] RequestIdReused),
        #[error("refused")]
        Refused,
    }

    impl TxError for TestError {
        fn is_unique_violation(&self) -> bool {
            matches!(self, TestError::Db(e) if crate::unique_violation(e).is_some())
        }
    }

    async fn setup() -> (
        tempfile::TempDir,
        UnitOfWork<Arc<TableOutbox>>,
        Arc<TableOutbox>,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let db = connect(&Location::for_service("uow", None, dir.path()), 2)
            .await
            .unwrap();
        for sql in [
            "CREATE TABLE things (id TEXT PRIMARY KEY)",
            "CREATE TABLE events (name TEXT NOT NULL)",
            "CREATE TABLE idempotency_keys (tenant_id TEXT, request_id TEXT, method TEXT, \
             request_hash TEXT, outcome TEXT, create_time BIGINT, PRIMARY KEY (tenant_id, request_id))",
            "CREATE TABLE audit_entries (id TEXT PRIMARY KEY, tenant_id TEXT, subject_id TEXT, \
             action TEXT, actor TEXT, time BIGINT, changes TEXT, reason TEXT)",
        ] {
            db.execute_unprepared(sql).await.unwrap();
        }
        let outbox = Arc::new(TableOutbox::default());
        (dir, UnitOfWork::new(db, outbox.clone()), outbox)
    }

    async fn count(uow: &UnitOfWork<Arc<TableOutbox>>, table: &str) -> i64 {
        let row = uow
            .db()
            .query_one_raw(Statement::from_string(
                uow.db().get_database_backend(),
                format!("SELECT COUNT(*) FROM {table}"),
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get_by_index(0).unwrap()
    }

    async fn insert_thing(tx: &Tx, id: &str) -> Result<(), DbErr> {
        tx.execute_raw(Statement::from_sql_and_values(
            tx.get_database_backend(),
            "INSERT INTO things (id) VALUES (?)",
            [id.into()],
        ))
        .await
        .map(|_| ())
    }

    fn key<'a>(request_id: &'a str, hash: &'a str) -> RequestKey<'a> {
        RequestKey {
            tenant: "t1",
            request_id,
            method: "CreateThing",
            request_hash: hash,
        }
    }

    #[tokio::test]
    async fn the_change_its_audit_entry_and_its_events_commit_together() {
        let (_dir, uow, outbox) = setup().await;
        let id: String = uow
            .run("t1", |tx| async move {
                insert_thing(&tx, "a").await?;
                Ok::<_, TestError>(
                    Effect::new("a".to_owned())
                        .audit(AuditEntry::new("a", "thing.created", "amy", 1))
                        .event("ThingCreated".to_owned()),
                )
            })
            .await
            .unwrap();
        assert_eq!(id, "a");
        assert_eq!(count(&uow, "things").await, 1);
        assert_eq!(count(&uow, "events").await, 1);
        let trail = audit::list(uow.db(), "t1", Some("a"), None, 10)
            .await
            .unwrap();
        assert_eq!(trail.len(), 1);
        assert_eq!(trail[0].action, "thing.created");
        assert_eq!(outbox.notified.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_refused_command_writes_nothing_and_wakes_nobody() {
        let (_dir, uow, outbox) = setup().await;
        let refused = uow
            .run("t1", |tx| async move {
                insert_thing(&tx, "a").await?;
                Err::<Effect<(), String>, _>(TestError::Refused)
            })
            .await;
        assert!(matches!(refused, Err(TestError::Refused)));
        assert_eq!(count(&uow, "things").await, 0);
        assert_eq!(outbox.notified.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn a_retried_request_returns_the_first_outcome_without_acting_twice() {
        let (_dir, uow, outbox) = setup().await;
        let runs = AtomicUsize::new(0);
        for _ in 0..2 {
            let id: String = uow
                .run_once("t1", Some(key("r1", "h")), |tx| {
                    let runs = &runs;
                    async move {
                        let n = runs.fetch_add(1, Ordering::SeqCst);
                        let id = format!("thing-{n}");
                        insert_thing(&tx, &id).await?;
                        Ok::<_, TestError>(Effect::new(id.clone()).event(id))
                    }
                })
                .await
                .unwrap();
            assert_eq!(id, "thing-0");
        }
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(count(&uow, "things").await, 1);
        assert_eq!(*outbox.seen.lock().unwrap(), vec!["thing-0".to_owned()]);

        let reused = uow
            .run_once("t1", Some(key("r1", "other")), |_tx| async move {
                Ok::<_, TestError>(Effect::<String, String>::new("never".into()))
            })
            .await;
        assert!(matches!(reused, Err(TestError::Reused(_))));
    }

    #[tokio::test]
    async fn a_unique_violation_runs_the_work_once_more_to_see_the_winner() {
        let (_dir, uow, _outbox) = setup().await;
        // A concurrent writer stored "a" first: the first run collides, the
        // second sees it and answers from it.
        uow.db()
            .execute_unprepared("INSERT INTO things (id) VALUES ('a')")
            .await
            .unwrap();
        let runs = AtomicUsize::new(0);
        let outcome: &str = uow
            .run("t1", |tx| {
                let runs = &runs;
                async move {
                    if runs.fetch_add(1, Ordering::SeqCst) == 0 {
                        insert_thing(&tx, "a").await?;
                        return Ok::<_, TestError>(Effect::<_, String>::new("inserted"));
                    }
                    Ok(Effect::new("found"))
                }
            })
            .await
            .unwrap();
        assert_eq!(outcome, "found");
        assert_eq!(runs.load(Ordering::SeqCst), 2);
        let rows = crate::idempotency::entity::Entity::find()
            .count(uow.db())
            .await
            .unwrap();
        assert_eq!(rows, 0, "no request id, nothing recorded");
    }
}
