//! Write transactions, and the queue SQLite writers wait in.
//!
//! SQLite has one writer at a time per file. Left to SQLite, writers on
//! separate connections collide on `BEGIN IMMEDIATE` and its busy handler
//! sleeps and polls: a waiter that wakes just after the lock was taken again
//! sleeps longer, so under a steady writer others starve (seconds), and
//! every wait is rounded up to the next poll. Here the writers of one file
//! in this process queue for their turn and begin only when it comes; the
//! busy timeout is left for other processes. The queue is fair between
//! tenants: the waiting tenant served least recently goes next, first come
//! first served within each, so one tenant's burst (three big imports)
//! delays another's write by about one of its transactions. PostgreSQL
//! locks rows, not the database: no queue there.

use std::{
    collections::{HashMap, VecDeque},
    ops::Deref,
    path::PathBuf,
    sync::{Arc, LazyLock, Mutex, MutexGuard, Weak},
    time::Duration,
};

use sea_orm::{
    ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, DbErr, ExecResult,
    QueryResult, Statement, TransactionOptions, TransactionTrait,
};
use tokio::sync::oneshot;

/// The longest a writer waits for its turn, as long as SQLite's own busy
/// timeout: past it the database is treated as unavailable.
const TURN_TIMEOUT: Duration = Duration::from_secs(10);

/// The tenant of the service's own writes (sequencer, consumers).
const SERVICE: &str = "";

/// The queue of each SQLite file written by this process.
static QUEUES: LazyLock<Mutex<HashMap<PathBuf, Weak<Queue>>>> =
    LazyLock::new(|| Mutex::new(HashMap::new()));

/// Nothing panics while these locks are held: a poisoned one is still
/// consistent.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn queue_of(db: &DatabaseConnection) -> Option<Arc<Queue>> {
    if db.get_database_backend() != DbBackend::Sqlite {
        return None;
    }
    let file = db
        .get_sqlite_connection_pool()
        .connect_options()
        .get_filename()
        .to_path_buf();
    let mut queues = lock(&QUEUES);
    if let Some(queue) = queues.get(&file).and_then(Weak::upgrade) {
        return Some(queue);
    }
    queues.retain(|_, queue| queue.strong_count() > 0);
    let queue = Arc::new(Queue::default());
    queues.insert(file, Arc::downgrade(&queue));
    Some(queue)
}

/// Turns to write one file: the waiting tenant served least recently goes
/// next, first come first served within a tenant.
#[derive(Default)]
struct Queue {
    state: Mutex<QueueState>,
}

/// Tenants remembered when they last wrote; past this, those not waiting
/// are forgotten (they count as never served, which only helps them).
const REMEMBERED_TENANTS: usize = 10_000;

#[derive(Default)]
struct QueueState {
    busy: bool,
    /// Tenants with writers waiting, in arrival order.
    waiting: Vec<(String, VecDeque<oneshot::Sender<()>>)>,
    /// The turn number each tenant was last given.
    served: HashMap<String, u64>,
    turns: u64,
}

impl QueueState {
    fn served(&mut self, tenant: &str) {
        self.turns += 1;
        if self.served.len() >= REMEMBERED_TENANTS {
            let waiting: Vec<&String> = self.waiting.iter().map(|(t, _)| t).collect();
            self.served.retain(|t, _| waiting.contains(&t));
        }
        self.served.insert(tenant.to_owned(), self.turns);
    }
}

impl Queue {
    /// Waits for a turn of `tenant`'s.
    async fn turn(self: &Arc<Self>, tenant: &str) -> Turn {
        let rx = {
            let mut state = lock(&self.state);
            if !state.busy {
                state.busy = true;
                state.served(tenant);
                return Turn(Arc::clone(self));
            }
            let (tx, rx) = oneshot::channel();
            match state.waiting.iter_mut().find(|(t, _)| t == tenant) {
                Some((_, writers)) => writers.push_back(tx),
                None => state
                    .waiting
                    .push((tenant.to_owned(), VecDeque::from([tx]))),
            }
            rx
        };
        let mut waiting = Waiting {
            rx,
            queue: Arc::clone(self),
            taken: false,
        };
        // The sender is dropped only after sending: an error cannot come
        // while the queue is alive, and the queue outlives its waiters.
        let _ = (&mut waiting.rx).await;
        // Taken: the drop below must not pass it on.
        waiting.taken = true;
        Turn(Arc::clone(self))
    }

    /// Hands the turn to the first writer of the waiting tenant served
    /// least recently, or frees it.
    fn pass(&self) {
        let mut state = lock(&self.state);
        loop {
            let next = state
                .waiting
                .iter()
                .enumerate()
                .min_by_key(|(i, (tenant, _))| (state.served.get(tenant).copied().unwrap_or(0), *i))
                .map(|(i, _)| i);
            let Some(i) = next else {
                state.busy = false;
                return;
            };
            let (tenant, writer) = {
                let (tenant, writers) = &mut state.waiting[i];
                (tenant.clone(), writers.pop_front())
            };
            if state.waiting[i].1.is_empty() {
                state.waiting.remove(i);
            }
            // A writer that gave up waiting is skipped.
            if writer.is_some_and(|w| w.send(()).is_ok()) {
                state.served(&tenant);
                return;
            }
        }
    }

    #[cfg(test)]
    fn waiting(&self) -> usize {
        lock(&self.state)
            .waiting
            .iter()
            .map(|(_, writers)| writers.len())
            .sum()
    }
}

/// A writer waiting for its turn. Dropped after the turn was handed to it
/// but before it took it (its wait was cut short), it passes the turn on.
struct Waiting {
    rx: oneshot::Receiver<()>,
    queue: Arc<Queue>,
    taken: bool,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if self.taken {
            return;
        }
        // No grant can come after `close`; one that came before is kept.
        self.rx.close();
        if self.rx.try_recv().is_ok() {
            self.queue.pass();
        }
    }
}

/// This process's turn to write a file; passed on when dropped.
struct Turn(Arc<Queue>);

impl Drop for Turn {
    fn drop(&mut self) {
        self.0.pass();
    }
}

/// A write transaction: a [`DatabaseTransaction`] (it derefs to one) that
/// on SQLite also holds this process's turn to write the file until it
/// commits, rolls back or is dropped.
pub struct WriteTx {
    // Declared first, so dropped first: the rollback is under way before
    // the next writer begins.
    txn: DatabaseTransaction,
    _turn: Option<Turn>,
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

/// Begins a transaction that will write, for the service's own work. On
/// SQLite it waits for this process's turn on the file, then takes the
/// write lock at BEGIN (`BEGIN IMMEDIATE`): a deferred transaction that
/// reads first and writes later can fail with SQLITE_BUSY when another
/// writer got in between.
pub async fn begin_write(db: &DatabaseConnection) -> Result<WriteTx, DbErr> {
    begin_write_for(db, SERVICE).await
}

/// [`begin_write`] for a command of `tenant`: on SQLite the waiting tenant
/// served least recently goes next, so no tenant's writes hold up
/// another's for long.
pub async fn begin_write_for(db: &DatabaseConnection, tenant: &str) -> Result<WriteTx, DbErr> {
    let turn = match queue_of(db) {
        Some(queue) => Some(
            tokio::time::timeout(TURN_TIMEOUT, queue.turn(tenant))
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
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// Finding 7: turns go round the tenants waiting, so a tenant with
    /// three big writes queued delays another tenant's write by one of
    /// them, not all three.
    #[tokio::test]
    async fn finding_7_turns_go_round_the_tenants_waiting() {
        let queue = Arc::new(Queue::default());
        let first = queue.turn("bulk").await;
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut writers = Vec::new();
        for (i, tenant) in ["bulk", "bulk", "bulk", "acme"].into_iter().enumerate() {
            let (mine, order) = (Arc::clone(&queue), Arc::clone(&order));
            writers.push(tokio::spawn(async move {
                let _turn = mine.turn(tenant).await;
                lock(&order).push(format!("{tenant}{i}"));
            }));
            while queue.waiting() < i + 1 {
                tokio::task::yield_now().await;
            }
        }
        drop(first);
        for writer in writers {
            writer.await.unwrap();
        }
        // bulk was writing: acme goes first, then the round goes on.
        assert_eq!(*lock(&order), ["acme3", "bulk0", "bulk1", "bulk2"]);
    }

    /// A writer that stops waiting (its call was cancelled) does not take
    /// the turn with it.
    #[tokio::test]
    async fn a_writer_that_stops_waiting_passes_its_turn_on() {
        let queue = Arc::new(Queue::default());
        let first = queue.turn("a").await;
        let gone = tokio::spawn({
            let queue = Arc::clone(&queue);
            async move {
                let _turn = queue.turn("b").await;
            }
        });
        while queue.waiting() < 1 {
            tokio::task::yield_now().await;
        }
        let next = tokio::spawn({
            let queue = Arc::clone(&queue);
            async move {
                let _turn = queue.turn("c").await;
            }
        });
        while queue.waiting() < 2 {
            tokio::task::yield_now().await;
        }
        gone.abort();
        let _ = gone.await;
        drop(first);
        tokio::time::timeout(Duration::from_secs(5), next)
            .await
            .expect("the turn reached the next writer")
            .unwrap();
        assert!(!lock(&queue.state).busy);
    }
}
