//! Consuming another service's event stream, each event exactly once.
//!
//! The cursor lives in the consumer's own database and moves in the same
//! transaction as the handler's effect: a crash before the commit leaves
//! neither (the event comes again after reconnecting), a crash after it
//! leaves both (the stream resumes after it).

use std::{
    future::Future,
    sync::{
        Arc,
        atomic::{AtomicI64, AtomicU64, Ordering},
    },
    time::Duration,
};

use crm_proto::crm::events::v1::{
    Event, SubscribeRequest, SubscribeResponse, event_service_client::EventServiceClient,
    subscribe_response::Kind,
};
use crm_server::Shutdown;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr,
    EntityTrait, QueryFilter, sea_query::Expr,
};
use tonic::{Code, Status, metadata::MetadataValue, transport::Channel};
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

use crate::entity::{event_cursor, event_dead_letter};

/// The cursor's tenant of a consumer of every tenant's events.
const ALL_TENANTS: &str = "*";

/// The metadata that names the producing service of a Subscribe through
/// the gateway (`leads` routes to the `crm.leads.v1` upstream).
pub const SOURCE_METADATA: &str = "x-crm-source";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What a consumer does with each event, inside the transaction that also
/// moves its cursor. An error rolls both back; the event is retried.
pub trait Handler: Send + Sync {
    type Error: std::fmt::Display + Send;

    fn handle(
        &self,
        txn: &DatabaseTransaction,
        event: &Event,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send;

    /// Whether `error` comes back however often the event is retried (a
    /// payload that does not decode, a record the handler refuses): such
    /// an event is parked in `event_dead_letters` and the stream goes on.
    /// Others (the database away) are retried until they succeed.
    fn is_permanent(&self, _error: &Self::Error) -> bool {
        false
    }
}

/// Gives the bearer token of the consumer's service identity, asked anew
/// for each connection so that short-lived tokens work.
pub trait TokenProvider: Send + Sync + 'static {
    fn token(&self) -> Result<String, BoxError>;
}

impl<F, E> TokenProvider for F
where
    F: Fn() -> Result<String, E> + Send + Sync + 'static,
    E: Into<BoxError>,
{
    fn token(&self) -> Result<String, BoxError> {
        self().map_err(Into::into)
    }
}

/// Reconnection delays: doubling from `initial` up to `max`, each drawn at
/// random from its upper half so that consumers do not come back in step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
        }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (0 is the first).
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self
            .initial
            .saturating_mul(1 << attempt.min(20))
            .min(self.max);
        let half = ceiling / 2;
        let span = u64::try_from(half.as_micros()).unwrap_or(u64::MAX);
        // No randomness at hand: the full delay is still a valid backoff.
        let jitter = getrandom::u64().map_or(span, |r| r % span.saturating_add(1));
        half + Duration::from_micros(jitter)
    }
}

/// Why a consumer stopped other than by shutdown: it cannot go on by
/// itself, an operator or the service must act.
#[derive(Debug, thiserror::Error)]
pub enum ConsumerError {
    /// The producer no longer keeps the events after the cursor: resync from
    /// the producer's current state, then [`Consumer::set_cursor`].
    #[error(
        "consumer {consumer}: the cursor {cursor} on {producer} (tenant {tenant}) has expired: {message}"
    )]
    CursorExpired {
        consumer: String,
        producer: String,
        tenant: String,
        cursor: i64,
        message: String,
    },
    /// The producer refused the subscription as invalid, e.g. a cursor
    /// beyond its newest event (its database was replaced).
    #[error("consumer {consumer}: {producer} refused the subscription: {status}")]
    Refused {
        consumer: String,
        producer: String,
        status: Box<Status>,
    },
    /// A name that cannot be sent as metadata.
    #[error("consumer {consumer}: {message}")]
    Setting { consumer: String, message: String },
}

/// Consumes one producer's stream for one tenant: `x-crm-source: <source>`
/// over `channel` (the gateway or the producer itself).
#[derive(Clone)]
pub struct Consumer {
    name: String,
    source: String,
    /// The tenant whose events are read, or [`ALL_TENANTS`].
    tenant: String,
    all_tenants: bool,
    dead_lettered: Arc<AtomicU64>,
    progress: Arc<Progress>,
    types: Vec<String>,
    channel: Channel,
    token: Arc<dyn TokenProvider>,
    backoff: Backoff,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("name", &self.name)
            .field("source", &self.source)
            .field("tenant", &self.tenant)
            .field("types", &self.types)
            .finish_non_exhaustive()
    }
}

/// Where a consumer stands, for its lag metric.
#[derive(Debug, Default)]
struct Progress {
    /// The newest sequence the producer has shown.
    seen: AtomicI64,
    /// The consumer's cursor.
    applied: AtomicI64,
}

impl Progress {
    fn seen(&self, sequence: i64) {
        self.seen.fetch_max(sequence, Ordering::Relaxed);
    }

    fn applied(&self, cursor: i64) {
        self.applied.store(cursor, Ordering::Relaxed);
        self.seen(cursor);
    }

    fn lag(&self) -> i64 {
        let applied = self.applied.load(Ordering::Relaxed);
        (self.seen.load(Ordering::Relaxed) - applied).max(0)
    }
}

/// How one connection ended.
enum Ended {
    Shutdown,
    /// Worth another try after a pause.
    Retry(String),
}

impl Consumer {
    /// A consumer named `name` (its cursor's key, stable across releases)
    /// of `source`'s events of `tenant`.
    pub fn new(
        name: impl Into<String>,
        source: impl Into<String>,
        tenant: impl Into<String>,
        channel: Channel,
        token: impl TokenProvider,
    ) -> Self {
        Self {
            name: name.into(),
            source: source.into(),
            tenant: tenant.into(),
            all_tenants: false,
            dead_lettered: Arc::default(),
            progress: Arc::default(),
            types: Vec::new(),
            channel,
            token: Arc::new(token),
            backoff: Backoff::default(),
        }
    }

    /// A consumer of `source`'s events of every tenant, for a service
    /// acting on each event in the event's own tenant (`Event.tenant_id`).
    /// The token must be a service identity's (role `internal`): the
    /// producer refuses anyone else PERMISSION_DENIED. One cursor serves
    /// every tenant.
    pub fn all_tenants(
        name: impl Into<String>,
        source: impl Into<String>,
        channel: Channel,
        token: impl TokenProvider,
    ) -> Self {
        let mut consumer = Self::new(name, source, ALL_TENANTS, channel, token);
        consumer.all_tenants = true;
        consumer
    }

    /// Events parked in the dead letters since start (a metric).
    pub fn dead_lettered(&self) -> u64 {
        self.dead_lettered.load(Ordering::Relaxed)
    }

    /// How far the consumer is behind: the newest sequence the producer
    /// has shown it (an event, or a heartbeat's head) minus its cursor.
    /// Known as of the last heartbeat: while a backlog streams in, the
    /// producer sends none, and the lag shown is the last one known.
    pub fn lag(&self) -> i64 {
        self.progress.lag()
    }

    /// Exports the consumer's lag (`crm.events.consumer.lag`) and its dead
    /// letters (`crm.events.dead_lettered`) under its service's name, the
    /// first part of the consumer's (`delivery.handover` -> `delivery`).
    fn observe(&self) {
        use crm_telemetry::KeyValue;
        let service = self.name.split('.').next().unwrap_or(&self.name);
        let meter = crm_telemetry::meter(service);
        let attributes = [
            KeyValue::new("consumer", self.name.clone()),
            KeyValue::new("source", self.source.clone()),
        ];
        let (progress, on) = (Arc::clone(&self.progress), attributes.clone());
        meter
            .i64_observable_gauge("crm.events.consumer.lag")
            .with_description("Events of the producer the consumer has not applied yet")
            .with_unit("{event}")
            .with_callback(move |gauge| gauge.observe(progress.lag(), &on))
            .build();
        let dead = Arc::clone(&self.dead_lettered);
        meter
            .u64_observable_counter("crm.events.dead_lettered")
            .with_description("Events a consumer refused for good and parked in its dead letters")
            .with_unit("{event}")
            .with_callback(move |counter| {
                counter.observe(dead.load(Ordering::Relaxed), &attributes)
            })
            .build();
    }

    /// Only events of these types (all when empty).
    pub fn with_types(mut self, types: impl IntoIterator<Item = impl Into<String>>) -> Self {
        self.types = types.into_iter().map(Into::into).collect();
        self
    }

    pub fn with_backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    fn cursor_ref(&self) -> CursorRef<'_> {
        CursorRef {
            consumer: &self.name,
            source: &self.source,
            tenant: &self.tenant,
        }
    }

    /// The last sequence applied (0 before the first).
    pub async fn cursor(&self, conn: &impl ConnectionTrait) -> Result<i64, DbErr> {
        self.cursor_ref().get(conn).await
    }

    /// Sets the cursor, e.g. to 0 or a heartbeat's `head_sequence` after a
    /// resync that followed [`ConsumerError::CursorExpired`].
    pub async fn set_cursor(
        &self,
        conn: &impl ConnectionTrait,
        sequence: i64,
    ) -> Result<(), DbErr> {
        self.cursor_ref().set(conn, sequence).await
    }

    async fn ensure_cursor(&self, conn: &impl ConnectionTrait) -> Result<(), DbErr> {
        self.cursor_ref().ensure(conn).await
    }

    async fn advance(&self, conn: &impl ConnectionTrait, sequence: i64) -> Result<bool, DbErr> {
        self.cursor_ref().advance(conn, sequence).await
    }

    /// Spawns [`Consumer::run`] on the current runtime.
    pub fn spawn<H: Handler + 'static>(
        self,
        db: DatabaseConnection,
        handler: H,
        shutdown: Shutdown,
    ) -> tokio::task::JoinHandle<Result<(), ConsumerError>> {
        self.observe();
        tokio::spawn(async move { self.run(&db, &handler, &shutdown).await })
    }

    /// Applies the stream's events with `handler` until `shutdown`,
    /// reconnecting with backoff while the producer cannot be reached.
    /// Returns `Ok` on shutdown, between two events.
    pub async fn run<H: Handler>(
        &self,
        db: &DatabaseConnection,
        handler: &H,
        shutdown: &Shutdown,
    ) -> Result<(), ConsumerError> {
        let source = MetadataValue::try_from(self.source.as_str()).map_err(|e| self.setting(e))?;
        let mut attempt = 0u32;
        loop {
            match self
                .connection(db, handler, shutdown, &source, &mut attempt)
                .await?
            {
                Ended::Shutdown => return Ok(()),
                Ended::Retry(why) => {
                    let delay = self.backoff.delay(attempt);
                    attempt = attempt.saturating_add(1);
                    // A producer restarting is routine; one that stays away
                    // (or refuses the token) is worth an operator's look.
                    if attempt > 5 {
                        tracing::warn!(
                            consumer = %self.name, source = %self.source, tenant = %self.tenant,
                            retry_in = ?delay, "event stream still interrupted: {why}"
                        );
                    } else {
                        tracing::info!(
                            consumer = %self.name, source = %self.source, tenant = %self.tenant,
                            retry_in = ?delay, "event stream interrupted: {why}"
                        );
                    }
                    tokio::select! {
                        biased;
                        () = shutdown.triggered() => return Ok(()),
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    fn setting(&self, err: impl std::fmt::Display) -> ConsumerError {
        ConsumerError::Setting {
            consumer: self.name.clone(),
            message: format!("source {:?}: {err}", self.source),
        }
    }

    /// One subscription, from the stored cursor until it breaks.
    async fn connection<H: Handler>(
        &self,
        db: &DatabaseConnection,
        handler: &H,
        shutdown: &Shutdown,
        source: &MetadataValue<tonic::metadata::Ascii>,
        attempt: &mut u32,
    ) -> Result<Ended, ConsumerError> {
        if let Err(err) = self.ensure_cursor(db).await {
            return Ok(Ended::Retry(format!("cannot store the cursor: {err}")));
        }
        let mut cursor = match self.cursor(db).await {
            Ok(cursor) => cursor,
            Err(err) => return Ok(Ended::Retry(format!("cannot read the cursor: {err}"))),
        };
        self.progress.applied(cursor);
        let token = match self.token.token() {
            Ok(token) => token,
            Err(err) => return Ok(Ended::Retry(format!("no token: {err}"))),
        };
        let Ok(bearer) = MetadataValue::try_from(format!("Bearer {token}")) else {
            return Ok(Ended::Retry("the token is not a valid header value".into()));
        };
        let mut request = tonic::Request::new(SubscribeRequest {
            after_sequence: cursor,
            types: self.types.clone(),
            source: self.source.clone(),
            all_tenants: self.all_tenants,
        });
        request.metadata_mut().insert("authorization", bearer);
        request
            .metadata_mut()
            .insert(SOURCE_METADATA, source.clone());
        let mut client = EventServiceClient::new(self.channel.clone());
        let subscribed = tokio::select! {
            biased;
            () = shutdown.triggered() => return Ok(Ended::Shutdown),
            subscribed = client.subscribe(request) => subscribed,
        };
        let mut stream = match subscribed {
            Ok(response) => response.into_inner(),
            Err(status) => return self.refused(status, cursor),
        };
        loop {
            let message = tokio::select! {
                biased;
                () = shutdown.triggered() => return Ok(Ended::Shutdown),
                message = stream.message() => message,
            };
            match message {
                Ok(Some(SubscribeResponse {
                    kind: Some(Kind::Event(event)),
                })) => {
                    *attempt = 0;
                    self.progress.seen(event.sequence);
                    if !self.apply_until_done(db, handler, &event, shutdown).await {
                        return Ok(Ended::Shutdown);
                    }
                    cursor = cursor.max(event.sequence);
                    self.progress.applied(cursor);
                }
                Ok(Some(SubscribeResponse {
                    kind: Some(Kind::Heartbeat(heartbeat)),
                })) => {
                    *attempt = 0;
                    self.progress.seen(heartbeat.head_sequence);
                    // Every event of ours up to the head was applied above:
                    // moving the cursor keeps it from expiring while the
                    // stream has nothing for this consumer.
                    if heartbeat.head_sequence > cursor {
                        match self.advance(db, heartbeat.head_sequence).await {
                            Ok(_) => {
                                cursor = heartbeat.head_sequence;
                                self.progress.applied(cursor);
                            }
                            Err(err) => tracing::warn!(
                                consumer = %self.name, error = %err,
                                "cannot store the heartbeat's cursor; will try at the next"
                            ),
                        }
                    }
                }
                // A kind from a newer contract: nothing to do with it.
                Ok(Some(_)) => {}
                Ok(None) => return Ok(Ended::Retry("the stream ended".into())),
                Err(status) => return self.refused(status, cursor),
            }
        }
    }

    /// Whether a refusal is for the operator (an error) or for a retry.
    fn refused(&self, status: Status, cursor: i64) -> Result<Ended, ConsumerError> {
        let reason = tonic_types::StatusExt::get_details_error_info(&status).map(|i| i.reason);
        match (status.code(), reason.as_deref()) {
            (Code::FailedPrecondition, Some("CURSOR_EXPIRED")) => {
                Err(ConsumerError::CursorExpired {
                    consumer: self.name.clone(),
                    producer: self.source.clone(),
                    tenant: self.tenant.clone(),
                    cursor,
                    message: status.message().to_owned(),
                })
            }
            (Code::InvalidArgument, _) => Err(ConsumerError::Refused {
                consumer: self.name.clone(),
                producer: self.source.clone(),
                status: Box::new(status),
            }),
            _ => Ok(Ended::Retry(format!(
                "{:?}: {}",
                status.code(),
                status.message()
            ))),
        }
    }

    /// Applies `event`, retrying with backoff while the handler or the
    /// database fails. False if shutdown came first (nothing was applied).
    async fn apply_until_done<H: Handler>(
        &self,
        db: &DatabaseConnection,
        handler: &H,
        event: &Event,
        shutdown: &Shutdown,
    ) -> bool {
        let span = self.span(event);
        let mut attempt = 0u32;
        loop {
            match self
                .apply(db, handler, event)
                .instrument(span.clone())
                .await
            {
                Ok(()) => return true,
                Err(err) => {
                    let delay = self.backoff.delay(attempt);
                    attempt = attempt.saturating_add(1);
                    span.in_scope(|| {
                        tracing::warn!(
                            consumer = %self.name,
                            error = %err,
                            retry_in = ?delay,
                            "applying an event failed; retrying it"
                        );
                    });
                    tokio::select! {
                        biased;
                        () = shutdown.triggered() => return false,
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// One transaction: claim the event by moving the cursor past it, let
    /// the handler act, commit both.
    async fn apply<H: Handler>(
        &self,
        db: &DatabaseConnection,
        handler: &H,
        event: &Event,
    ) -> Result<(), String> {
        let txn = crm_store::begin_write(db)
            .await
            .map_err(|e| e.to_string())?;
        // Only forward: an event already applied (by an earlier run whose
        // commit went through unseen, or by another replica) is skipped. On
        // PostgreSQL the row lock also makes replicas take turns.
        let claimed = self
            .advance(&txn, event.sequence)
            .await
            .map_err(|e| e.to_string())?;
        if !claimed {
            tracing::debug!(sequence = event.sequence, "event already applied");
            return txn.rollback().await.map_err(|e| e.to_string());
        }
        match handler.handle(&txn, event).await {
            Ok(()) => txn.commit().await.map_err(|e| e.to_string()),
            Err(err) if handler.is_permanent(&err) => {
                let message = err.to_string();
                txn.rollback().await.map_err(|e| e.to_string())?;
                self.dead_letter(db, event, &message)
                    .await
                    .map_err(|e| e.to_string())
            }
            Err(err) => Err(format!("handler: {err}")),
        }
    }

    /// Parks an event the handler refuses for good and moves the cursor
    /// past it, in one transaction: one poison event never stops the
    /// others (of every tenant).
    async fn dead_letter(
        &self,
        db: &DatabaseConnection,
        event: &Event,
        message: &str,
    ) -> Result<(), DbErr> {
        let txn = crm_store::begin_write(db).await?;
        if !self.advance(&txn, event.sequence).await? {
            return txn.rollback().await;
        }
        let now = crm_store::now_micros();
        let time = event.time.as_ref().map_or(now, |t| {
            t.seconds
                .saturating_mul(1_000_000)
                .saturating_add(i64::from(t.nanos / 1_000))
        });
        let payload = event
            .payload
            .as_ref()
            .map(prost::Message::encode_to_vec)
            .unwrap_or_default();
        event_dead_letter::Entity::insert(event_dead_letter::ActiveModel {
            consumer: Set(self.name.clone()),
            event_id: Set(event.id.clone()),
            sequence: Set(event.sequence),
            tenant_id: Set(event.tenant_id.clone()),
            event_type: Set(event.r#type.clone()),
            subject_id: Set(event.subject_id.clone()),
            time: Set(time),
            traceparent: Set(event.traceparent.clone()),
            tracestate: Set(event.tracestate.clone()),
            payload: Set(payload),
            attempts: Set(1),
            last_error: Set(message.chars().take(2_000).collect()),
            first_failure_time: Set(now),
            dead_time: Set(now),
        })
        .on_conflict_do_nothing()
        .exec_without_returning(&txn)
        .await?;
        txn.commit().await?;
        self.dead_lettered.fetch_add(1, Ordering::Relaxed);
        tracing::error!(
            consumer = %self.name, source = %self.source, event_id = %event.id,
            tenant = %event.tenant_id, sequence = event.sequence, event_type = %event.r#type,
            error = %message,
            "event refused for good; parked in the dead letters, the others go on"
        );
        Ok(())
    }

    /// The span of one event's work, a child of the change that caused it.
    fn span(&self, event: &Event) -> tracing::Span {
        event_span(&self.name, &self.source, event)
    }
}

/// The span of a consumer's work on one event, a child of the change that
/// caused the event (its W3C trace context).
pub(crate) fn event_span(consumer: &str, source: &str, event: &Event) -> tracing::Span {
    let span = tracing::info_span!(
        "event",
        otel.name = %format_args!("{} process", event.r#type),
        otel.kind = "consumer",
        messaging.system = "crm",
        messaging.operation = "process",
        messaging.message.id = %event.id,
        consumer = %consumer,
        source = %source,
        event_type = %event.r#type,
        event.sequence = event.sequence,
    );
    let mut headers = http::HeaderMap::new();
    for (name, value) in [
        ("traceparent", &event.traceparent),
        ("tracestate", &event.tracestate),
    ] {
        if let Ok(value) = http::HeaderValue::from_str(value)
            && !value.is_empty()
        {
            headers.insert(name, value);
        }
    }
    let parent = crm_telemetry::extract_trace_context(&headers);
    // Fails only without an OpenTelemetry layer: then there is no trace.
    let _ = span.set_parent(parent);
    span
}

/// Where a consumer's cursor is kept: one row of `event_cursors` in the
/// consumer's own database, moved in the transaction of each effect.
pub(crate) struct CursorRef<'a> {
    pub(crate) consumer: &'a str,
    pub(crate) source: &'a str,
    pub(crate) tenant: &'a str,
}

impl CursorRef<'_> {
    fn key(&self) -> sea_orm::Condition {
        use event_cursor::Column;
        sea_orm::Condition::all()
            .add(Column::Consumer.eq(self.consumer))
            .add(Column::Source.eq(self.source))
            .add(Column::TenantId.eq(self.tenant))
    }

    /// The last sequence applied (0 before the first).
    pub(crate) async fn get(&self, conn: &impl ConnectionTrait) -> Result<i64, DbErr> {
        Ok(event_cursor::Entity::find()
            .filter(self.key())
            .one(conn)
            .await?
            .map_or(0, |row| row.sequence))
    }

    pub(crate) async fn set(
        &self,
        conn: &impl ConnectionTrait,
        sequence: i64,
    ) -> Result<(), DbErr> {
        self.ensure(conn).await?;
        event_cursor::Entity::update_many()
            .col_expr(event_cursor::Column::Sequence, Expr::value(sequence))
            .col_expr(
                event_cursor::Column::UpdateTime,
                Expr::value(crm_store::now_micros()),
            )
            .filter(self.key())
            .exec(conn)
            .await
            .map(|_| ())
    }

    pub(crate) async fn ensure(&self, conn: &impl ConnectionTrait) -> Result<(), DbErr> {
        event_cursor::Entity::insert(event_cursor::ActiveModel {
            consumer: Set(self.consumer.to_owned()),
            source: Set(self.source.to_owned()),
            tenant_id: Set(self.tenant.to_owned()),
            sequence: Set(0),
            update_time: Set(crm_store::now_micros()),
        })
        .on_conflict_do_nothing()
        .exec_without_returning(conn)
        .await
        .map(|_| ())
    }

    /// Moves the cursor to `sequence` if it is behind; false if it was not
    /// (the event was applied already).
    pub(crate) async fn advance(
        &self,
        conn: &impl ConnectionTrait,
        sequence: i64,
    ) -> Result<bool, DbErr> {
        let moved = event_cursor::Entity::update_many()
            .col_expr(event_cursor::Column::Sequence, Expr::value(sequence))
            .col_expr(
                event_cursor::Column::UpdateTime,
                Expr::value(crm_store::now_micros()),
            )
            .filter(self.key())
            .filter(event_cursor::Column::Sequence.lt(sequence))
            .exec(conn)
            .await?
            .rows_affected;
        Ok(moved > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lag_is_what_the_producer_showed_past_the_cursor() {
        let p = Progress::default();
        p.applied(10);
        assert_eq!(p.lag(), 0);
        p.seen(25);
        assert_eq!(p.lag(), 15, "a heartbeat's head ahead of the cursor");
        p.seen(20);
        assert_eq!(
            p.lag(),
            15,
            "an older sequence does not lower what was seen"
        );
        p.applied(25);
        assert_eq!(p.lag(), 0);
    }
}
