//! A service applying its own events, of every tenant, exactly once: the
//! leads service converting the leads it qualified, say. It reads its own
//! outbox (no gRPC, no tenant scope) after a cursor kept in `event_cursors`
//! beside it, and moves the cursor in the transaction of each effect.

use std::{fmt::Display, future::Future};

use crm_server::Shutdown;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DatabaseTransaction, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect,
};
use tracing::Instrument;

use crate::{
    Backoff, Event, Events,
    consumer::{CursorRef, event_span},
    entity::outbox_event,
    stream::to_event,
};

/// The cursor's `source` and `tenant` for local consumers.
const LOCAL: &str = "local";
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
}

/// Applies a service's own events of the given types, exactly once each,
/// retrying an event with backoff until its handler succeeds.
#[derive(Debug, Clone)]
pub struct LocalConsumer {
    name: String,
    types: Vec<String>,
    backoff: Backoff,
}

impl LocalConsumer {
    pub fn new(name: impl Into<String>) -> Self {
        LocalConsumer {
            name: name.into(),
            types: Vec::new(),
            backoff: Backoff::default(),
        }
    }

    /// Only events of these types; the others are passed over.
    pub fn with_types(mut self, types: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.types = types.into_iter().map(Into::into).collect();
        self
    }

    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Runs until `shutdown`, stopping between events.
    pub fn spawn<H: LocalHandler + 'static>(
        self,
        events: &Events,
        handler: H,
        shutdown: Shutdown,
    ) -> tokio::task::JoinHandle<()> {
        let (db, head) = (events.db.clone(), events.head.subscribe());
        tokio::spawn(async move { self.run(db, head, handler, shutdown).await })
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
            match self.step(&db, seen, &handler, &shutdown).await {
                Ok(true) => failures = 0,
                Ok(false) => {
                    failures = 0;
                    // Caught up: wait for the next numbered commit.
                    tokio::select! {
                        changed = head.changed() => if changed.is_err() { return },
                        () = shutdown.triggered() => return,
                    }
                }
                Err(err) => {
                    failures += 1;
                    let delay = self.backoff.delay(failures);
                    tracing::warn!(consumer = %self.name, error = %err, retry_in = ?delay, "event not applied; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = shutdown.triggered() => return,
                    }
                }
            }
        }
    }

    /// Applies the events up to `head`; false when there was nothing to do.
    async fn step<H: LocalHandler>(
        &self,
        db: &DatabaseConnection,
        head: i64,
        handler: &H,
        shutdown: &Shutdown,
    ) -> Result<bool, String> {
        let cursor = self.cursor();
        cursor.ensure(db).await.map_err(|e| e.to_string())?;
        let position = cursor.get(db).await.map_err(|e| e.to_string())?;
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
            .map_err(|e| e.to_string())?;
        if rows.is_empty() {
            // Nothing of interest up to the head.
            cursor.advance(db, head).await.map_err(|e| e.to_string())?;
            return Ok(true);
        }
        for row in rows {
            if shutdown.is_triggered() {
                return Ok(true);
            }
            let event = to_event(row).map_err(|e| format!("undecodable event: {e}"))?;
            self.apply(db, &event, handler)
                .instrument(event_span(&self.name, LOCAL, &event))
                .await?;
        }
        Ok(true)
    }

    async fn apply<H: LocalHandler>(
        &self,
        db: &DatabaseConnection,
        event: &Event,
        handler: &H,
    ) -> Result<(), String> {
        let plan = handler
            .prepare(event)
            .await
            .map_err(|e| format!("prepare: {e}"))?;
        let txn = crm_store::begin_write(db)
            .await
            .map_err(|e| e.to_string())?;
        if !self
            .cursor()
            .advance(&txn, event.sequence)
            .await
            .map_err(|e| e.to_string())?
        {
            // Applied already (another replica, or before a crash).
            return Ok(());
        }
        handler
            .apply(&txn, event, plan)
            .await
            .map_err(|e| format!("apply: {e}"))?;
        txn.commit().await.map_err(|e| e.to_string())
    }
}
