//! `crm.events.v1.EventService/Subscribe` over one service's outbox.

use crm_proto::crm::events::v1::{
    Event, Heartbeat, SubscribeRequest, SubscribeResponse, event_service_server::EventService,
    subscribe_response::Kind,
};
use crm_rpc::{FieldViolation, PreconditionViolation, RpcError};
use crm_server::Shutdown;
use prost::Message as _;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use tokio::{
    sync::{mpsc, watch},
    time::Instant,
};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};
use tracing::Instrument as _;

use crate::{ERROR_DOMAIN, EventsConfig, entity::outbox_event, sequencer::read_head};

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
}

impl EventStream {
    pub(crate) fn new(
        db: DatabaseConnection,
        head: watch::Receiver<i64>,
        cfg: EventsConfig,
        shutdown: Shutdown,
    ) -> Self {
        Self {
            db,
            head,
            cfg,
            shutdown,
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

#[tonic::async_trait]
impl EventService for EventStream {
    type SubscribeStream = ReceiverStream<Result<SubscribeResponse, Status>>;

    async fn subscribe(
        &self,
        request: Request<SubscribeRequest>,
    ) -> Result<Response<Self::SubscribeStream>, Status> {
        let tenant = crm_auth::principal(&request)?.tenant.clone();
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
        let pump = Pump {
            db: self.db.clone(),
            head: self.head.clone(),
            shutdown: self.shutdown.clone(),
            page_size: self.cfg.page_size.max(1),
            heartbeat: self.cfg.heartbeat_interval,
            tenant,
            types: request.types,
            tx,
        };
        tokio::spawn(
            pump.run(after.max(earliest))
                .instrument(tracing::Span::current()),
        );
        Ok(Response::new(ReceiverStream::new(rx)))
    }
}

/// Feeds one subscriber's channel. The channel is bounded: when the client
/// reads slowly, `send` waits, and so does the reading from the database.
struct Pump {
    db: DatabaseConnection,
    head: watch::Receiver<i64>,
    shutdown: Shutdown,
    page_size: u64,
    heartbeat: std::time::Duration,
    tenant: String,
    types: Vec<String>,
    tx: mpsc::Sender<Result<SubscribeResponse, Status>>,
}

impl Pump {
    /// Serves everything after `position` (the last sequence considered),
    /// then follows the head until the client leaves or the server stops.
    async fn run(mut self, mut position: i64) {
        let mut quiet_until = Instant::now() + self.heartbeat;
        loop {
            let through = *self.head.borrow_and_update();
            while position < through {
                if self.shutdown.is_triggered() {
                    return self.end(shutting_down()).await;
                }
                let rows = match self.page(position, through).await {
                    Ok(rows) => rows,
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
                // A short page means nothing more of ours up to `through`.
                let next = if rows.len() as u64 == self.page_size {
                    rows.last().and_then(|r| r.sequence).unwrap_or(through)
                } else {
                    through
                };
                for row in rows {
                    let event = match to_event(row) {
                        Ok(event) => event,
                        Err(err) => return self.end(internal(err)).await,
                    };
                    if !self.send(Kind::Event(event)).await {
                        return;
                    }
                }
                position = next;
                quiet_until = Instant::now() + self.heartbeat;
            }
            tokio::select! {
                biased;
                () = self.shutdown.triggered() => return self.end(shutting_down()).await,
                () = self.tx.closed() => return,
                changed = self.head.changed() => {
                    // The sender lives as long as the service's `Events`.
                    if changed.is_err() {
                        return self.end(shutting_down()).await;
                    }
                }
                () = tokio::time::sleep_until(quiet_until) => {
                    let heartbeat = Heartbeat {
                        time: Some(crm_rpc::fields::timestamp(crm_store::now_micros())),
                        head_sequence: position,
                    };
                    if !self.send(Kind::Heartbeat(heartbeat)).await {
                        return;
                    }
                    quiet_until = Instant::now() + self.heartbeat;
                }
            }
        }
    }

    /// The tenant's next events after `after`, up to `through`.
    async fn page(&self, after: i64, through: i64) -> Result<Vec<outbox_event::Model>, DbErr> {
        use outbox_event::Column;
        let mut query = outbox_event::Entity::find()
            .filter(Column::TenantId.eq(self.tenant.as_str()))
            .filter(Column::Sequence.gt(after))
            .filter(Column::Sequence.lte(through));
        if !self.types.is_empty() {
            query = query.filter(Column::EventType.is_in(self.types.iter().map(String::as_str)));
        }
        query
            .order_by_asc(Column::Sequence)
            .limit(self.page_size)
            .all(&self.db)
            .await
    }

    /// False once the client is gone.
    async fn send(&self, kind: Kind) -> bool {
        let message = SubscribeResponse { kind: Some(kind) };
        self.tx.send(Ok(message)).await.is_ok()
    }

    /// Ends the stream with `status` (waits for room in the channel; a
    /// client that is gone or a server that cuts the call ends the wait).
    async fn end(self, status: Status) {
        let _ = self.tx.send(Err(status)).await;
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
