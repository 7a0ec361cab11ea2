//! A service applying its own events, of every tenant, exactly once: the
//! leads service converting the leads it qualified, say. It reads its own
//! outbox (no gRPC, no tenant scope) after a cursor kept in `event_cursors`
//! beside it, and moves the cursor in the transaction of each effect.
//!
//! One tenant's bad event must not hold up everybody's: an event whose
//! handler fails is parked in `event_retries` (a copy, with its own retry
//! schedule) in the transaction that moves the cursor past it, and the
//! stream goes on. A parked event the handler refuses for good
//! `max_attempts` times moves to `event_dead_letters`, logged and counted.
//! Pruning never deletes past a local consumer's cursor; should events
//! after it be gone anyway, the consumer stops with CURSOR_EXPIRED rather
//! than skip them.

use std::{
    fmt::Display,
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
};

use crm_server::Shutdown;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, sea_query::Expr,
};
use tokio::time::Instant;
use tracing::Instrument;

use crate::{
    Backoff, Event, Events,
    consumer::{CursorRef, event_span},
    entity::{event_dead_letter, event_retry, outbox_event},
    sequencer::read_head,
    stream::to_event,
};

/// The cursor's `source` and `tenant` for local consumers.
pub(crate) const LOCAL: &str = "local";
const ALL_TENANTS: &str = "*";
/// Events read per query.
const PAGE: u64 = 100;

/// What a local consumer does with an event, in two steps.
pub trait LocalHandler: Send + Sync {
    /// What `prepare` learned for `apply`.
    type Plan: Send;
    type Error: Display + Send;

    /// Work outside any transaction, e.g. a call to another service, so no
    /// write lock is held across the network. It must be safe to repeat: a
    /// crash before `apply` commits repeats it.
    fn prepare(
        &self,
        event: &Event,
    ) -> impl Future<Output = Result<Self::Plan, Self::Error>> + Send;

    /// The effect, in the transaction that also moves the cursor.
    fn apply(
        &self,
        txn: &DatabaseTransaction,
        event: &Event,
        plan: Self::Plan,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Whether `error` comes back however often the event is retried (a
    /// refusal, not an outage): such an event is dead-lettered after
    /// `max_attempts`. Others are retried until they succeed.
    fn is_permanent(&self, _error: &Self::Error) -> bool {
        false
    }
}

/// What a local consumer did, since start (metrics).
#[derive(Debug, Default)]
pub struct LocalStats {
    parked: AtomicU64,
    dead_lettered: AtomicU64,
    cursor_expired: AtomicU64,
}

impl LocalStats {
    /// Events whose first attempt failed and that were parked for retries.
    pub fn parked(&self) -> u64 {
        self.parked.load(Ordering::Relaxed)
    }

    /// Events moved to the dead letters.
    pub fn dead_lettered(&self) -> u64 {
        self.dead_lettered.load(Ordering::Relaxed)
    }

    /// Times the consumer found events after its cursor pruned.
    pub fn cursor_expired(&self) -> u64 {
        self.cursor_expired.load(Ordering::Relaxed)
    }
}

/// Applies a service's own events of the given types, exactly once each;
/// an event that fails is retried on its own schedule while the others go
/// on.
#[derive(Debug, Clone)]
pub struct LocalConsumer {
    name: String,
    types: Vec<String>,
    backoff: Backoff,
    /// `None`: the service's `events.local_max_attempts`.
    max_attempts: Option<u32>,
    stats: Arc<LocalStats>,
}

/// How an attempt failed.
enum Failure {
    Shutdown,
    /// The database: nothing can be recorded either; the whole consumer
    /// pauses.
    Db(DbErr),
    Handler {
        message: String,
        permanent: bool,
    },
}

impl From<DbErr> for Failure {
    fn from(err: DbErr) -> Self {
        Failure::Db(err)
    }
}

/// Why the consumer stops or pauses.
enum Stop {
    Shutdown,
    Expired,
    Db(DbErr),
}

/// Which claim an attempt makes in its transaction, so that each event
/// takes effect once even with replicas: moving the cursor past it, or
/// deleting its parked copy.
#[derive(Clone, Copy)]
enum Claim {
    Cursor,
    Retry,
}

impl LocalConsumer {
    pub fn new(name: impl Into<String>) -> Self {
        LocalConsumer {
            name: name.into(),
            types: Vec::new(),
            backoff: Backoff::default(),
            max_attempts: None,
            stats: Arc::default(),
        }
    }

    /// Only events of these types; the others are passed over.
    pub fn with_types(mut self, types: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.types = types.into_iter().map(Into::into).collect();
        self
    }

    /// The delays between attempts of a parked event.
    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Attempts of an event its handler refuses for good before it is
    /// dead-lettered (at least 1); by default the service's
    /// `events.local_max_attempts`.
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = Some(attempts.max(1));
        self
    }

    /// The consumer's counters, shared with the running task.
    pub fn stats(&self) -> Arc<LocalStats> {
        Arc::clone(&self.stats)
    }

    /// The events this consumer gave up on, oldest first.
    pub async fn dead_letters(
        &self,
        conn: &impl ConnectionTrait,
    ) -> Result<Vec<event_dead_letter::Model>, DbErr> {
        event_dead_letter::Entity::find()
            .filter(event_dead_letter::Column::Consumer.eq(self.name.as_str()))
            .order_by_asc(event_dead_letter::Column::Sequence)
            .all(conn)
            .await
    }

    /// Runs until `shutdown`, stopping between events (or cutting an
    /// attempt short: it is repeated after a restart).
    pub fn spawn<H: LocalHandler + 'static>(
        mut self,
        events: &Events,
        handler: H,
        shutdown: Shutdown,
    ) -> tokio::task::JoinHandle<()> {
        let (db, head) = (events.db.clone(), events.head.subscribe());
        let allowed = self.max_attempts.unwrap_or(events.cfg.local_max_attempts);
        self.max_attempts = Some(allowed.max(1));
        tokio::spawn(async move { self.run(db, head, handler, shutdown).await })
    }

    fn attempts_allowed(&self) -> u32 {
        self.max_attempts.unwrap_or(1)
    }

    fn cursor(&self) -> CursorRef<'_> {
        CursorRef {
            consumer: &self.name,
            source: LOCAL,
            tenant: ALL_TENANTS,
        }
    }

    async fn run<H: LocalHandler>(
        &self,
        db: DatabaseConnection,
        mut head: tokio::sync::watch::Receiver<i64>,
        handler: H,
        shutdown: Shutdown,
    ) {
        let mut failures = 0;
        loop {
            if shutdown.is_triggered() {
                return;
            }
            let seen = *head.borrow_and_update();
            let work = async {
                match self.step(&db, seen, &handler, &shutdown).await {
                    Ok(progressed) => (progressed, self.retry_due(&db, &handler, &shutdown).await),
                    Err(stop) => (false, Err(stop)),
                }
            };
            // Shutdown cuts the work short wherever it waits (a write turn,
            // the handler): an open transaction rolls back, and an event
            // not committed is attempted again after the restart.
            let (progressed, retried) = tokio::select! {
                biased;
                () = shutdown.triggered() => return,
                done = work => done,
            };
            let next_retry = match (progressed, retried) {
                (_, Err(Stop::Shutdown | Stop::Expired)) => return,
                (_, Err(Stop::Db(err))) => {
                    failures += 1;
                    let delay = self.backoff.delay(failures);
                    tracing::warn!(consumer = %self.name, error = %err, retry_in = ?delay, "event consumer paused: database error");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = shutdown.triggered() => return,
                    }
                    continue;
                }
                (true, Ok(_)) => {
                    failures = 0;
                    continue;
                }
                (_, Ok(next)) => {
                    failures = 0;
                    next
                }
            };
            // Caught up: wait for the next numbered commit or the next
            // parked event's turn.
            let retry_at = next_retry.unwrap_or_else(|| Instant::now() + self.backoff.max);
            tokio::select! {
                changed = head.changed() => if changed.is_err() { return },
                () = tokio::time::sleep_until(retry_at) => {}
                () = shutdown.triggered() => return,
            }
        }
    }

    /// Applies (or parks) the events up to `head`; false when there was
    /// nothing to do.
    async fn step<H: LocalHandler>(
        &self,
        db: &DatabaseConnection,
        head: i64,
        handler: &H,
        shutdown: &Shutdown,
    ) -> Result<bool, Stop> {
        let cursor = self.cursor();
        cursor.ensure(db).await.map_err(Stop::Db)?;
        let position = cursor.get(db).await.map_err(Stop::Db)?;
        let kept = read_head(db).await.map_err(Stop::Db)?;
        // 0 means from the oldest kept, as for Subscribe.
        if position != 0 && kept.oldest_retained - 1 > position {
            self.stats.cursor_expired.fetch_add(1, Ordering::Relaxed);
            tracing::error!(
                consumer = %self.name,
                reason = "CURSOR_EXPIRED",
                cursor = position,
                oldest_retained = kept.oldest_retained,
                "events after the local consumer's cursor were deleted: it stops rather than \
                 skip them; resynchronise, then set its cursor"
            );
            return Err(Stop::Expired);
        }
        if position >= head {
            return Ok(false);
        }
        let mut query = outbox_event::Entity::find()
            .filter(outbox_event::Column::Sequence.gt(position))
            .filter(outbox_event::Column::Sequence.lte(head));
        if !self.types.is_empty() {
            query = query.filter(
                outbox_event::Column::EventType.is_in(self.types.iter().map(String::as_str)),
            );
        }
        let rows = query
            .order_by_asc(outbox_event::Column::Sequence)
            .limit(PAGE)
            .all(db)
            .await
            .map_err(Stop::Db)?;
        if rows.is_empty() {
            // Nothing of interest up to the head.
            cursor.advance(db, head).await.map_err(Stop::Db)?;
            return Ok(true);
        }
        for row in rows {
            if shutdown.is_triggered() {
                return Err(Stop::Shutdown);
            }
            let attempt = match to_event(row.clone()) {
                Ok(event) => {
                    let span = event_span(&self.name, LOCAL, &event);
                    self.attempt(db, &event, handler, shutdown, Claim::Cursor)
                        .instrument(span)
                        .await
                }
                Err(err) => Err(Failure::Handler {
                    message: format!("undecodable event: {err}"),
                    permanent: true,
                }),
            };
            match attempt {
                Ok(()) => {}
                Err(Failure::Shutdown) => return Err(Stop::Shutdown),
                Err(Failure::Db(err)) => return Err(Stop::Db(err)),
                Err(Failure::Handler { message, permanent }) => {
                    self.park(db, row, message, permanent)
                        .await
                        .map_err(Stop::Db)?;
                }
            }
        }
        Ok(true)
    }

    /// One attempt: prepare, then claim and apply in one transaction.
    async fn attempt<H: LocalHandler>(
        &self,
        db: &DatabaseConnection,
        event: &Event,
        handler: &H,
        shutdown: &Shutdown,
        claim: Claim,
    ) -> Result<(), Failure> {
        let failed = |err: H::Error, step: &str| Failure::Handler {
            permanent: handler.is_permanent(&err),
            message: format!("{step}: {err}"),
        };
        let plan = tokio::select! {
            biased;
            () = shutdown.triggered() => return Err(Failure::Shutdown),
            plan = handler.prepare(event) => plan.map_err(|e| failed(e, "prepare"))?,
        };
        let txn = crm_store::begin_write(db).await?;
        let claimed = match claim {
            Claim::Cursor => self.cursor().advance(&*txn, event.sequence).await?,
            Claim::Retry => {
                event_retry::Entity::delete_many()
                    .filter(event_retry::Column::Consumer.eq(self.name.as_str()))
                    .filter(event_retry::Column::EventId.eq(event.id.as_str()))
                    .exec(&*txn)
                    .await?
                    .rows_affected
                    > 0
            }
        };
        if !claimed {
            // Applied already (another replica, or before a crash).
            return Ok(());
        }
        handler
            .apply(&txn, event, plan)
            .await
            .map_err(|e| failed(e, "apply"))?;
        txn.commit().await?;
        Ok(())
    }

    /// Moves the cursor past an event that failed and keeps a copy of it
    /// to retry on its own schedule (or, refused for good with a single
    /// attempt allowed, as a dead letter).
    async fn park(
        &self,
        db: &DatabaseConnection,
        row: outbox_event::Model,
        message: String,
        permanent: bool,
    ) -> Result<(), DbErr> {
        let now = crm_store::now_micros();
        let txn = crm_store::begin_write(db).await?;
        if !self
            .cursor()
            .advance(&*txn, row.sequence.unwrap_or_default())
            .await?
        {
            return txn.rollback().await;
        }
        let dead = permanent && self.attempts_allowed() <= 1;
        let failed = FailedEvent {
            row,
            attempts: 1,
            message,
            first_failure_time: now,
        };
        if dead {
            failed.insert_dead(&*txn, &self.name, now).await?;
        } else {
            failed
                .insert_retry(&*txn, &self.name, now + micros(self.backoff.delay(0)))
                .await?;
        }
        txn.commit().await?;
        self.stats.parked.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            consumer = %self.name, event_id = %failed.row.id, tenant = %failed.row.tenant_id,
            sequence = failed.row.sequence, error = %failed.message,
            "event not applied; parked for retries, the others go on"
        );
        if dead {
            self.dead_lettered(&failed);
        }
        Ok(())
    }

    /// Retries the parked events that are due; returns when the next one
    /// is.
    async fn retry_due<H: LocalHandler>(
        &self,
        db: &DatabaseConnection,
        handler: &H,
        shutdown: &Shutdown,
    ) -> Result<Option<Instant>, Stop> {
        use event_retry::Column;
        let now = crm_store::now_micros();
        let due = event_retry::Entity::find()
            .filter(Column::Consumer.eq(self.name.as_str()))
            .filter(Column::NextAttemptTime.lte(now))
            .order_by_asc(Column::NextAttemptTime)
            .limit(PAGE)
            .all(db)
            .await
            .map_err(Stop::Db)?;
        for parked in due {
            if shutdown.is_triggered() {
                return Err(Stop::Shutdown);
            }
            let row = parked.as_outbox_row();
            let attempt = match to_event(row) {
                Ok(event) => {
                    let span = event_span(&self.name, LOCAL, &event);
                    self.attempt(db, &event, handler, shutdown, Claim::Retry)
                        .instrument(span)
                        .await
                }
                Err(err) => Err(Failure::Handler {
                    message: format!("undecodable event: {err}"),
                    permanent: true,
                }),
            };
            match attempt {
                Ok(()) => {}
                Err(Failure::Shutdown) => return Err(Stop::Shutdown),
                Err(Failure::Db(err)) => return Err(Stop::Db(err)),
                Err(Failure::Handler { message, permanent }) => {
                    self.failed_again(db, parked, message, permanent)
                        .await
                        .map_err(Stop::Db)?;
                }
            }
        }
        let next = event_retry::Entity::find()
            .select_only()
            .column_as(Column::NextAttemptTime.min(), "next")
            .filter(Column::Consumer.eq(self.name.as_str()))
            .into_tuple::<Option<i64>>()
            .one(db)
            .await
            .map_err(Stop::Db)?
            .flatten();
        Ok(next.map(|at| {
            let wait = u64::try_from(at.saturating_sub(crm_store::now_micros())).unwrap_or(0);
            Instant::now() + std::time::Duration::from_micros(wait)
        }))
    }

    /// Records another failed attempt of a parked event: a later retry, or
    /// the dead letters once refused for good `max_attempts` times.
    async fn failed_again(
        &self,
        db: &DatabaseConnection,
        parked: event_retry::Model,
        message: String,
        permanent: bool,
    ) -> Result<(), DbErr> {
        use event_retry::Column;
        let now = crm_store::now_micros();
        let attempts = parked.attempts.saturating_add(1);
        let key = |q: sea_orm::DeleteMany<event_retry::Entity>| {
            q.filter(Column::Consumer.eq(self.name.as_str()))
                .filter(Column::EventId.eq(parked.event_id.as_str()))
        };
        if permanent && u32::try_from(attempts).unwrap_or(u32::MAX) >= self.attempts_allowed() {
            let txn = crm_store::begin_write(db).await?;
            if key(event_retry::Entity::delete_many())
                .exec(&*txn)
                .await?
                .rows_affected
                == 0
            {
                return txn.rollback().await;
            }
            let failed = FailedEvent {
                row: parked.as_outbox_row(),
                attempts,
                message,
                first_failure_time: parked.first_failure_time,
            };
            failed.insert_dead(&*txn, &self.name, now).await?;
            txn.commit().await?;
            self.dead_lettered(&failed);
            return Ok(());
        }
        let delay = self
            .backoff
            .delay(u32::try_from(attempts - 1).unwrap_or(u32::MAX));
        event_retry::Entity::update_many()
            .col_expr(Column::Attempts, Expr::value(attempts))
            .col_expr(Column::NextAttemptTime, Expr::value(now + micros(delay)))
            .col_expr(Column::LastError, Expr::value(message.clone()))
            .filter(Column::Consumer.eq(self.name.as_str()))
            .filter(Column::EventId.eq(parked.event_id.as_str()))
            .exec(db)
            .await?;
        tracing::warn!(
            consumer = %self.name, event_id = %parked.event_id, tenant = %parked.tenant_id,
            attempts, error = %message, retry_in = ?delay, "parked event failed again"
        );
        Ok(())
    }

    fn dead_lettered(&self, failed: &FailedEvent) {
        self.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            consumer = %self.name, event_id = %failed.row.id, tenant = %failed.row.tenant_id,
            sequence = failed.row.sequence, event_type = %failed.row.event_type,
            attempts = failed.attempts, error = %failed.message,
            "event dead-lettered: its handler refused it for good; see event_dead_letters"
        );
    }
}

fn micros(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

/// An event that failed, on its way to the retries or the dead letters.
struct FailedEvent {
    row: outbox_event::Model,
    attempts: i32,
    message: String,
    first_failure_time: i64,
}

impl FailedEvent {
    async fn insert_retry(
        &self,
        conn: &impl ConnectionTrait,
        consumer: &str,
        next_attempt_time: i64,
    ) -> Result<(), DbErr> {
        let row = &self.row;
        event_retry::Entity::insert(event_retry::ActiveModel {
            consumer: Set(consumer.to_owned()),
            event_id: Set(row.id.clone()),
            sequence: Set(row.sequence.unwrap_or_default()),
            tenant_id: Set(row.tenant_id.clone()),
            event_type: Set(row.event_type.clone()),
            subject_id: Set(row.subject_id.clone()),
            time: Set(row.time),
            traceparent: Set(row.traceparent.clone()),
            tracestate: Set(row.tracestate.clone()),
            payload: Set(row.payload.clone()),
            attempts: Set(self.attempts),
            next_attempt_time: Set(next_attempt_time),
            last_error: Set(self.message.clone()),
            first_failure_time: Set(self.first_failure_time),
        })
        .on_conflict_do_nothing()
        .exec_without_returning(conn)
        .await
        .map(|_| ())
    }

    async fn insert_dead(
        &self,
        conn: &impl ConnectionTrait,
        consumer: &str,
        now: i64,
    ) -> Result<(), DbErr> {
        let row = &self.row;
        event_dead_letter::Entity::insert(event_dead_letter::ActiveModel {
            consumer: Set(consumer.to_owned()),
            event_id: Set(row.id.clone()),
            sequence: Set(row.sequence.unwrap_or_default()),
            tenant_id: Set(row.tenant_id.clone()),
            event_type: Set(row.event_type.clone()),
            subject_id: Set(row.subject_id.clone()),
            time: Set(row.time),
            traceparent: Set(row.traceparent.clone()),
            tracestate: Set(row.tracestate.clone()),
            payload: Set(row.payload.clone()),
            attempts: Set(self.attempts),
            last_error: Set(self.message.clone()),
            first_failure_time: Set(self.first_failure_time),
            dead_time: Set(now),
        })
        .on_conflict_do_nothing()
        .exec_without_returning(conn)
        .await
        .map(|_| ())
    }
}

impl event_retry::Model {
    fn as_outbox_row(&self) -> outbox_event::Model {
        outbox_event::Model {
            id: self.event_id.clone(),
            sequence: Some(self.sequence),
            tenant_id: self.tenant_id.clone(),
            event_type: self.event_type.clone(),
            subject_id: self.subject_id.clone(),
            time: self.time,
            traceparent: self.traceparent.clone(),
            tracestate: self.tracestate.clone(),
            payload: self.payload.clone(),
            create_time: self.first_failure_time,
        }
    }
}
