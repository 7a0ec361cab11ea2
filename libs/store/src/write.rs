//! Write transactions, and the queue SQLite writers wait in.
//!
//! SQLite has one writer at a time per file. Left to SQLite, writers on
//! separate connections collide on `BEGIN IMMEDIATE` and its busy handler
//! sleeps and polls: a waiter that wakes just after the lock was taken again
//! sleeps longer, so under a steady writer others starve (seconds), and
//! every wait is rounded up to the next poll. Here the writers of one file
//! in this process queue first-come first-served on an async lock and
//! begin only when it is their turn; the busy timeout is left for other
//! processes. PostgreSQL locks rows, not the database: no queue there.

use std::{
    collections::HashMap,
    ops::Deref,
    path::PathBuf,
    sync::{Arc, LazyLock, Mutex, Weak},
    time::Duration,
};

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult,
    QueryResult, Statement, TransactionOptions, TransactionTrait,
};
use tokio::sync::{Mutex as Turn, OwnedMutexGuard};

/// The longest a writer waits for its turn, as long as SQLite's own busy
/// timeout: past it the database is treated as unavailable.
const TURN_TIMEOUT: Duration = Duration::from_secs(10);

/// The queue of each SQLite file written by this process.
static QUEUES: LazyLock<Mutex<HashMap<PathBuf, Weak<Turn<()>>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

fn queue_of(db: &DatabaseConnection) -> Option<Arc<Turn<()>>> {
    if db.get_database_backend() != DbBackend::Sqlite {
        return None;
    }
    let file = db
        .get_sqlite_connection_pool()
        .connect_options()
        .get_filename()
        .to_path_buf();
    // A poisoned map still holds valid entries: nothing panics while it is held.
    let mut queues = QUEUES
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(turn) = queues.get(&file).and_then(Weak::upgrade) {
        return Some(turn);
    }
    queues.retain(|_, turn| turn.strong_count() > 0);
    let turn = Arc::new(Turn::new(()));
    queues.insert(file, Arc::downgrade(&turn));
    Some(turn)
}

/// A write transaction: a [`DatabaseTransaction`] (it derefs to one) that
/// on SQLite also holds this process's turn to write the file until it
/// commits, rolls back or is dropped.
pub struct WriteTx {
    // Declared first, so dropped first: the rollback is under way before
    // the next writer begins.
    txn: DatabaseTransaction,
    _turn: Option<OwnedMutexGuard<()>>,
}

impl Deref for WriteTx {
    type Target = DatabaseTransaction;

    fn deref(&self) -> &DatabaseTransaction {
        &self.txn
    }
}

// Anything that takes `&impl ConnectionTrait` takes a write transaction.
#[sea_orm_migration::async_trait::async_trait]
impl ConnectionTrait for WriteTx {
    fn get_database_backend(&self) -> DbBackend {
        self.txn.get_database_backend()
    }

    async fn execute_raw(&self, stmt: Statement) -> Result<ExecResult, DbErr> {
        self.txn.execute_raw(stmt).await
    }

    async fn execute_unprepared(&self, sql: &str) -> Result<ExecResult, DbErr> {
        self.txn.execute_unprepared(sql).await
    }

    async fn query_one_raw(&self, stmt: Statement) -> Result<Option<QueryResult>, DbErr> {
        self.txn.query_one_raw(stmt).await
    }

    async fn query_all_raw(&self, stmt: Statement) -> Result<Vec<QueryResult>, DbErr> {
        self.txn.query_all_raw(stmt).await
    }

    fn support_returning(&self) -> bool {
        self.txn.support_returning()
    }
}

impl WriteTx {
    pub async fn commit(self) -> Result<(), DbErr> {
        let WriteTx { txn, _turn } = self;
        txn.commit().await
    }

    pub async fn rollback(self) -> Result<(), DbErr> {
        let WriteTx { txn, _turn } = self;
        txn.rollback().await
    }
}

/// Begins a transaction that will write. On SQLite it waits for this
/// process's turn on the file (first come, first served), then takes the
/// write lock at BEGIN (`BEGIN IMMEDIATE`): a deferred transaction that
/// reads first and writes later can fail with SQLITE_BUSY when another
/// writer got in between.
pub async fn begin_write(db: &DatabaseConnection) -> Result<WriteTx, DbErr> {
    let turn = match queue_of(db) {
        Some(queue) => Some(
            tokio::time::timeout(TURN_TIMEOUT, queue.lock_owned())
                .await
                .map_err(|_| DbErr::ConnectionAcquire(sea_orm::ConnAcquireErr::Timeout))?,
        ),
        None => None,
    };
    let txn = db
        .begin_with_options(TransactionOptions {
            sqlite_transaction_mode: Some(sea_orm::SqliteTransactionMode::Immediate),
            ..Default::default()
        })
        .await?;
    Ok(WriteTx { txn, _turn: turn })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::{AtomicBool, Ordering};

    use super::*;
    use crate::{Location, connect};

    async fn insert_rows(db: &DatabaseConnection, rows: usize) -> Result<(), DbErr> {
        let txn = begin_write(db).await?;
        for _ in 0..rows {
            txn.execute_unprepared("INSERT INTO t (v) VALUES ('x')")
                .await?;
        }
        txn.commit().await
    }

    /// Finding 7: on SQLite a writer on its own connection waits its turn
    /// behind writers that keep the file busy back to back, instead of
    /// polling SQLite's lock and losing to them for seconds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn finding_7_a_sqlite_writer_is_not_starved_by_busy_writers_on_other_connections() {
        let dir = tempfile::tempdir().unwrap();
        let db = connect(&Location::for_service("queue", None, dir.path()), 4)
            .await
            .unwrap();
        db.execute_unprepared("CREATE TABLE t (id INTEGER PRIMARY KEY AUTOINCREMENT, v TEXT)")
            .await
            .unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let (started, mut running) = tokio::sync::mpsc::channel(2);
        // Two writers that keep the write lock busy, back to back (bounded).
        let hogs: Vec<_> = (0..2)
            .map(|_| {
                let (db, stop, started) = (db.clone(), Arc::clone(&stop), started.clone());
                tokio::spawn(async move {
                    for _ in 0..5000 {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        insert_rows(&db, 50).await.unwrap();
                        let _ = started.try_send(());
                    }
                })
            })
            .collect();
        running.recv().await.unwrap();
        let mut slowest = Duration::ZERO;
        for _ in 0..20 {
            let began = tokio::time::Instant::now();
            let wrote = insert_rows(&db, 1).await;
            slowest = slowest.max(began.elapsed());
            assert!(wrote.is_ok(), "a small write failed: {wrote:?}");
        }
        stop.store(true, Ordering::SeqCst);
        for hog in hogs {
            hog.await.unwrap();
        }
        assert!(
            slowest < Duration::from_millis(500),
            "a small write waited {slowest:?} behind two busy writers"
        );
    }
}
