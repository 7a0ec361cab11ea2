//! `crm.events.v1.EventService/Subscribe` over one service's outbox.

use crm_proto::crm::events::v1::{
    Event, Heartbeat, SubscribeRequest, SubscribeResponse, event_service_server::EventService,
    subscribe_response::Kind,
};
use crm_rpc::{FieldViolation, PreconditionViolation, RpcError};
use crm_server::{Shutdown, TenantBudget};
use prost::Message as _;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use std::{
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
};

use sea_orm::sea_query::Expr;
use tokio::{
    sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot, watch},
    time::Instant,
};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};
use tracing::Instrument as _;

use crate::{
    ERROR_DOMAIN, EventsConfig, entity::outbox_event, reads::ReadTurns, sequencer::read_head,
};

/// Types one subscription may filter on: bounds the query it makes.
const MAX_TYPES: usize = 100;
const MAX_TYPE_LEN: usize = 256;

/// The EventService of one service's database: replays a tenant's events
/// after a cursor, then follows new ones as the sequencer numbers them.
#[derive(Clone)]
pub struct EventStream {
    db: DatabaseConnection,
    head: watch::Receiver<i64>,
    cfg: EventsConfig,
    shutdown: Shutdown,
    stalled: Arc<AtomicU64>,
    reads: Arc<ReadTurns>,
    pace: Arc<Option<TenantBudget>>,
}

impl EventStream {
    pub(crate) fn new(
        db: DatabaseConnection,
        head: watch::Receiver<i64>,
        cfg: EventsConfig,
        shutdown: Shutdown,
        stalled: Arc<AtomicU64>,
        reads: Arc<ReadTurns>,
        pace: Arc<Option<TenantBudget>>,
    ) -> Self {
        Self {
            db,
            head,
            cfg,
            shutdown,
            stalled,
            reads,
            pace,
        }
    }
}

fn internal(err: impl std::error::Error + Send + Sync + 'static) -> Status {
    RpcError::internal(err).into_status(ERROR_DOMAIN)
}

fn shutting_down() -> Status {
    RpcError::Unavailable {
        reason: "SHUTTING_DOWN",
        message:
            "the server is shutting down; reconnect and resume after the last sequence handled"
                .into(),
    }
    .into_status(ERROR_DOMAIN)
}

fn cursor_expired(after: i64, oldest_retained: i64) -> Status {
    let description = format!(
        "events after sequence {after} are no longer kept (the oldest kept is {oldest_retained})"
    );
    RpcError::FailedPrecondition {
        reason: "CURSOR_EXPIRED",
        message: format!(
            "{description}: resynchronise from the service's current state, then subscribe again \
             with after_sequence 0"
        ),
        violations: vec![PreconditionViolation {
            kind: "CURSOR_EXPIRED".into(),
            subject: "after_sequence".into(),
            description,
        }],
    }
    .into_status(ERROR_DOMAIN)
}

fn validate(request: &SubscribeRequest) -> Result<(), RpcError> {
    let mut violations = Vec::new();
    if request.after_sequence < 0 {
        violations.push(FieldViolation::new(
            "after_sequence",
            "must not be negative",
        ));
    }
    if request.types.len() > MAX_TYPES {
        violations.push(FieldViolation::new(
            "types",
            format!("at most {MAX_TYPES} types"),
        ));
    }
    for (i, t) in request.types.iter().enumerate() {
        if t.is_empty() || t.len() > MAX_TYPE_LEN {
            violations.push(FieldViolation::new(
                format!("types[{i}]"),
                format!("a type name of 1 to {MAX_TYPE_LEN} characters"),
            ));
        }
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(RpcError::InvalidArgument(violations))
    }
}

fn stalled_status(budget: u32, stall: std::time::Duration) -> Status {
    RpcError::ResourceExhausted {
        reason: "SUBSCRIBER_STALLED",
        message: format!(
            "the subscriber took nothing from its full buffer ({budget} bytes) for {}: \
             the stream is dropped; read faster, then resume after the last sequence handled",
            crm_config::duration::format(stall)
        ),
    }
    .into_status(ERROR_DOMAIN)
}

#[tonic::async_trait]
impl EventService for EventStream {
    type SubscribeStream = Outgoing;

    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let principal = crm_auth::principal(&request)?;
        // Every tenant's events go only to the suite's own services: a
        // service token is the internal role alone, from the service key
        // and audience, so no user or integration can hold it.
        let tenant = if request.get_ref().all_tenants {
            if !principal.has_role(crm_auth::Role::Internal) {
                return Err(RpcError::PermissionDenied {
                    reason: "ALL_TENANTS_INTERNAL_ONLY",
                    message: "only the suite's services may read every tenant's events".into(),
                }
                .into_status(ERROR_DOMAIN));
            }
            None
        } else {
            Some(principal.tenant.clone())
        };
        let request = request.into_inner();
        validate(&request).map_err(|e| e.into_status(ERROR_DOMAIN))?;
        let after = request.after_sequence;

        let head = read_head(&self.db).await.map_err(internal)?;
        // The watch may be ahead of a row read a moment ago, never behind
        // what this process numbered.
        let newest = head.last_sequence.max(*self.head.borrow());
        if after > newest {
            return Err(RpcError::invalid(
                "after_sequence",
                format!("is beyond the newest event, {newest}: a cursor from another service or database?"),
            )
            .into_status(ERROR_DOMAIN));
        }
        // A cursor here still sees every event that is kept.
        let earliest = head.oldest_retained - 1;
        if after != 0 && after < earliest {
            return Err(cursor_expired(after, head.oldest_retained));
        }

        let (tx, rx) = mpsc::channel(self.cfg.subscriber_buffer.max(1));
        let (stall_tx, stall_rx) = oneshot::channel();
        // Validated to fit a u32 and be at least 1 KiB.
        let budget = u32::try_from(self.cfg.subscriber_buffer_bytes).unwrap_or(u32::MAX);
        let start = after.max(earliest);
        let pump = Pump {
            db: self.db.clone(),
            head: self.head.clone(),
            shutdown: self.shutdown.clone(),
            page_size: self.cfg.page_size.max(1),
            heartbeat: self.cfg.heartbeat_interval,
            stall: self.cfg.subscriber_stall_timeout,
            budget,
            bytes: Arc::new(Semaphore::new(budget as usize)),
            tenant_reads: self.reads.of(tenant.as_deref()),
            reads: Arc::clone(&self.reads),
            pace: Arc::clone(&self.pace),
            tenant,
            types: request.types,
            floor: start,
            tx,
            stalled: Some(stall_tx),
            dropped: Arc::clone(&self.stalled),
        };
        tokio::spawn(pump.run(start).instrument(tracing::Span::current()));
        Ok(Response::new(Outgoing {
            rx,
            stalled: stall_rx,
            done: false,
        }))
    }
}

type Queued = (
    Result<SubscribeResponse, Status>,
    Option<OwnedSemaphorePermit>,
);

/// One subscriber's response stream: the queued messages, each holding its
/// share of the byte budget until tonic takes it, and the stall status that
/// ends the stream ahead of whatever is still queued.
pub struct Outgoing {
    rx: mpsc::Receiver<Queued>,
    stalled: oneshot::Receiver<Status>,
    done: bool,
}

impl Stream for Outgoing {
    type Item = Result<SubscribeResponse, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if let Ok(status) = self.stalled.try_recv() {
            // Drop what was queued: the subscriber gave up its place.
            self.done = true;
            self.rx.close();
            while self.rx.try_recv().is_ok() {}
            return Poll::Ready(Some(Err(status)));
        }
        match self.rx.poll_recv(cx) {
            Poll::Ready(Some((item, _permit))) => Poll::Ready(Some(item)),
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(self.stalled.try_recv().ok().map(Err))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// How waiting for the tenant's sending budget ended.
enum Paced {
    Go,
    /// The client left.
    Left,
    Stopping,
}

/// How a send ended.
#[derive(PartialEq, Eq)]
enum Sent {
    Queued,
    /// The client left, or was dropped for stalling.
    Over,
}

/// Feeds one subscriber's channel. The channel is bounded in messages and
/// in bytes: when the client reads slowly, `send` waits, and so does the
/// reading from the database; a client that reads nothing for the stall
/// timeout is dropped.
struct Pump {
    db: DatabaseConnection,
    head: watch::Receiver<i64>,
    shutdown: Shutdown,
    page_size: u64,
    heartbeat: std::time::Duration,
    stall: std::time::Duration,
    budget: u32,
    bytes: Arc<Semaphore>,
    /// The database turns this subscriber reads through, and its tenant's
    /// share of them.
    reads: Arc<ReadTurns>,
    tenant_reads: Arc<Semaphore>,
    /// The bytes a second its tenant's streams are sent together.
    pace: Arc<Option<TenantBudget>>,
    /// The subscriber's tenant; `None` for a service reading every tenant's.
    tenant: Option<String>,
    types: Vec<String>,
    /// Where the subscription started: a heartbeat never says less.
    floor: i64,
    tx: mpsc::Sender<Queued>,
    stalled: Option<oneshot::Sender<Status>>,
    /// The service's count of subscribers dropped for stalling.
    dropped: Arc<AtomicU64>,
}

impl Pump {
    /// Serves everything after `position` (the last sequence considered),
    /// then follows the head until the client leaves or the server stops.
    async fn run(mut self, mut position: i64) {
        // A heartbeat is due when this subscriber was sent nothing for the
        // interval, however busy the service is with others' events.
        let mut quiet_until = Instant::now() + self.heartbeat;
        loop {
            let through = *self.head.borrow_and_update();
            while position < through {
                if self.shutdown.is_triggered() {
                    return self.end(shutting_down()).await;
                }
                let turn = self.reads.take(&self.tenant_reads).await;
                let (rows, next) = match self.page(position, through).await {
                    Ok(page) => page,
                    Err(err) => return self.end(internal(err)).await,
                };
                // Pruning may have run since the cursor was checked: if it
                // deleted anything after `position`, this page has a hole.
                match read_head(&self.db).await {
                    Ok(head) if head.oldest_retained - 1 > position => {
                        return self
                            .end(cursor_expired(position, head.oldest_retained))
                            .await;
                    }
                    Ok(_) => {}
                    Err(err) => return self.end(internal(err)).await,
                }
                // Sending may wait on the client: not while holding a turn.
                drop(turn);
                match self
                    .pace(rows.iter().map(|row| row.payload.len()).sum())
                    .await
                {
                    Paced::Go => {}
                    Paced::Left => return,
                    Paced::Stopping => return self.end(shutting_down()).await,
                }
                for row in rows {
                    let event = match to_event(row) {
                        Ok(event) => event,
                        Err(err) => return self.end(internal(err)).await,
                    };
                    if self.send(Kind::Event(event)).await == Sent::Over {
                        return;
                    }
                    quiet_until = Instant::now() + self.heartbeat;
                }
                position = next;
                // A subscriber whose events are rare still hears from the
                // stream while others' events keep it busy.
                if Instant::now() >= quiet_until {
                    if self.heartbeat(position).await == Sent::Over {
                        return;
                    }
                    quiet_until = Instant::now() + self.heartbeat;
                }
            }
            tokio::select! {
                biased;
                () = self.shutdown.triggered() => return self.end(shutting_down()).await,
                () = self.tx.closed() => return,
                () = tokio::time::sleep_until(quiet_until) => {
                    if self.heartbeat(position).await == Sent::Over {
                        return;
                    }
                    quiet_until = Instant::now() + self.heartbeat;
                }
                changed = self.head.changed() => {
                    // The sender lives as long as the service's `Events`.
                    if changed.is_err() {
                        return self.end(shutting_down()).await;
                    }
                }
            }
        }
    }

    /// Waits until the tenant's budget allows sending `bytes` more: one
    /// tenant's streams together are sent at most
    /// `events.tenant_bytes_per_second`, each page in the order it was
    /// read, so a flood of them cannot take the processor that other
    /// tenants' calls need. Every-tenant subscribers are the suite's own.
    async fn pace(&self, bytes: usize) -> Paced {
        let (Some(budget), Some(tenant)) = (self.pace.as_ref(), self.tenant.as_deref()) else {
            return Paced::Go;
        };
        if bytes == 0 {
            return Paced::Go;
        }
        let wait = budget.reserve(tenant, bytes, std::time::Instant::now());
        if wait.is_zero() {
            return Paced::Go;
        }
        tokio::select! {
            biased;
            () = self.shutdown.triggered() => Paced::Stopping,
            () = self.tx.closed() => Paced::Left,
            () = tokio::time::sleep(wait) => Paced::Go,
        }
    }

    /// A heartbeat after every matching event up to `position` was sent.
    /// Its head is the tenant's own: the newest of its events up to there
    /// (of any type), so other tenants' writes do not show through it.
    async fn heartbeat(&mut self, position: i64) -> Sent {
        use outbox_event::Column;
        let Some(tenant) = self.tenant.as_deref() else {
            // Every tenant's subscriber was sent everything up to `position`.
            let heartbeat = Heartbeat {
                time: Some(crm_rpc::fields::timestamp(crm_store::now_micros())),
                head_sequence: position.max(self.floor),
            };
            return self.send(Kind::Heartbeat(heartbeat)).await;
        };
        let turn = self.reads.take(&self.tenant_reads).await;
        let own = outbox_event::Entity::find()
            .select_only()
            .column_as(Column::Sequence.max(), "sequence")
            .filter(Column::TenantId.eq(tenant))
            .filter(Column::Sequence.lte(position))
            .into_tuple::<Option<i64>>()
            .one(&self.db)
            .await;
        drop(turn);
        let own = match own {
            Ok(own) => own.flatten().unwrap_or(0),
            Err(err) => {
                self.end_now(internal(err)).await;
                return Sent::Over;
            }
        };
        let heartbeat = Heartbeat {
            time: Some(crm_rpc::fields::timestamp(crm_store::now_micros())),
            head_sequence: own.max(self.floor),
        };
        self.send(Kind::Heartbeat(heartbeat)).await
    }

    fn filtered(&self, after: i64, through: i64) -> sea_orm::Select<outbox_event::Entity> {
        use outbox_event::Column;
        let mut query = outbox_event::Entity::find();
        if let Some(tenant) = &self.tenant {
            query = query.filter(Column::TenantId.eq(tenant.as_str()));
        }
        let mut query = query
            .filter(Column::Sequence.gt(after))
            .filter(Column::Sequence.lte(through));
        if !self.types.is_empty() {
            query = query.filter(Column::EventType.is_in(self.types.iter().map(String::as_str)));
        }
        query.order_by_asc(Column::Sequence)
    }

    /// The tenant's next events after `after`, up to `through`, no more
    /// than the byte budget holds (at least one), and the position they
    /// take the subscriber to. Sizes are read first, so a page of large
    /// events is never loaded whole.
    async fn page(
        &self,
        after: i64,
        through: i64,
    ) -> Result<(Vec<outbox_event::Model>, i64), DbErr> {
        use outbox_event::Column;
        let sizes: Vec<(Option<i64>, Option<i64>)> = self
            .filtered(after, through)
            .select_only()
            .column(Column::Sequence)
            .column_as(Expr::cust("CAST(LENGTH(payload) AS BIGINT)"), "size")
            .limit(self.page_size)
            .into_tuple()
            .all(&self.db)
            .await?;
        let Some(first) = sizes.first().and_then(|(s, _)| *s) else {
            return Ok((Vec::new(), through));
        };
        let mut last = first;
        let mut bytes = 0i64;
        let mut taken = 0;
        for (sequence, size) in &sizes {
            bytes = bytes.saturating_add(size.unwrap_or(0));
            if taken > 0 && bytes > i64::from(self.budget) {
                break;
            }
            last = sequence.unwrap_or(last);
            taken += 1;
        }
        // A short page taken whole means nothing more of ours up to `through`.
        let next = if taken == sizes.len() && (sizes.len() as u64) < self.page_size {
            through
        } else {
            last
        };
        let rows = self
            .filtered(first - 1, last)
            .limit(self.page_size)
            .all(&self.db)
            .await?;
        Ok((rows, next))
    }

    /// Queues a message, waiting for room in the channel and in the byte
    /// budget; a subscriber that makes no room within the stall timeout is
    /// dropped.
    async fn send(&mut self, kind: Kind) -> Sent {
        let message = SubscribeResponse { kind: Some(kind) };
        let size = message.encoded_len().clamp(1, self.budget as usize);
        let cost = u32::try_from(size).unwrap_or(self.budget);
        let room = async {
            let permit = Arc::clone(&self.bytes)
                .acquire_many_owned(cost)
                .await
                .ok()?;
            let slot = self.tx.reserve().await.ok()?;
            Some((slot, permit))
        };
        let waited = tokio::select! {
            () = self.tx.closed() => return Sent::Over,
            waited = tokio::time::timeout(self.stall, room) => waited,
        };
        match waited {
            Ok(Some((slot, permit))) => {
                slot.send((Ok(message), Some(permit)));
                Sent::Queued
            }
            Ok(None) => Sent::Over,
            Err(_) => {
                tracing::info!(tenant = ?self.tenant, "dropping a stalled subscriber");
                self.dropped.fetch_add(1, Ordering::Relaxed);
                if let Some(stalled) = self.stalled.take() {
                    let _ = stalled.send(stalled_status(self.budget, self.stall));
                }
                Sent::Over
            }
        }
    }

    /// Ends the stream with `status` (waits for room in the channel; a
    /// client that is gone or a server that cuts the call ends the wait).
    async fn end(mut self, status: Status) {
        self.end_now(status).await;
    }

    async fn end_now(&mut self, status: Status) {
        let _ = self.tx.send((Err(status), None)).await;
    }
}

pub(crate) fn to_event(row: outbox_event::Model) -> Result<Event, prost::DecodeError> {
    let payload = prost_types::Any::decode(row.payload.as_slice())?;
    Ok(Event {
        id: row.id,
        sequence: row.sequence.unwrap_or_default(),
        r#type: row.event_type,
        tenant_id: row.tenant_id,
        subject_id: row.subject_id,
        time: Some(crm_rpc::fields::timestamp(row.time)),
        traceparent: row.traceparent,
        tracestate: row.tracestate,
        payload: Some(payload),
    })
}
