//! Appending events in the transaction of the change that caused them.

use std::sync::Arc;

use sea_orm::{ActiveValue::Set, ConnectionTrait, DbErr, EntityTrait};
use tokio::sync::Notify;

use crate::entity::outbox_event;

/// An event to append: what happened, to which record of which tenant.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    pub tenant_id: String,
    /// The payload's full message name, e.g. `crm.leads.v1.LeadCreated`.
    pub event_type: String,
    /// The record the event is about.
    pub subject_id: String,
    /// When it happened, Unix microseconds (the time of the change).
    pub time: i64,
    pub payload: prost_types::Any,
}

impl NewEvent {
    /// An event carrying `message`, its type named after the message.
    pub fn new<M: prost::Name>(
        tenant_id: impl Into<String>,
        subject_id: impl Into<String>,
        time: i64,
        message: &M,
    ) -> Self {
        NewEvent {
            tenant_id: tenant_id.into(),
            event_type: M::full_name(),
            subject_id: subject_id.into(),
            time,
            // Encoding into a Vec cannot fail, unlike `Any::from_msg`'s
            // general signature suggests.
            payload: prost_types::Any {
                type_url: M::type_url(),
                value: message.encode_to_vec(),
            },
        }
    }
}

/// Appends `event` to the outbox. Call it inside the transaction that makes
/// the change, so that both commit or neither does; the current span's W3C
/// trace context goes with the event. The event is numbered after commit:
/// call [`Outbox::notify`] then, so subscribers see it within milliseconds.
pub async fn append(conn: &impl ConnectionTrait, event: NewEvent) -> Result<(), DbErr> {
    let (traceparent, tracestate) = current_trace_context();
    outbox_event::Entity::insert(outbox_event::ActiveModel {
        id: Set(crm_store::new_id()),
        sequence: Set(None),
        tenant_id: Set(event.tenant_id),
        event_type: Set(event.event_type),
        subject_id: Set(event.subject_id),
        time: Set(event.time),
        traceparent: Set(traceparent),
        tracestate: Set(tracestate),
        payload: Set(prost::Message::encode_to_vec(&event.payload)),
        create_time: Set(crm_store::now_micros()),
    })
    .exec_without_returning(conn)
    .await
    .map(|_| ())
}

/// Appends many events (an import's) in few statements; otherwise as
/// [`append`].
pub async fn append_many(conn: &impl ConnectionTrait, events: Vec<NewEvent>) -> Result<(), DbErr> {
    // Bounded statements: well under SQLite's bind-parameter limit.
    const CHUNK: usize = 500;
    let (traceparent, tracestate) = current_trace_context();
    let now = crm_store::now_micros();
    let mut rows = Vec::with_capacity(events.len().min(CHUNK));
    let mut events = events.into_iter().peekable();
    while let Some(event) = events.next() {
        rows.push(outbox_event::ActiveModel {
            id: Set(crm_store::new_id()),
            sequence: Set(None),
            tenant_id: Set(event.tenant_id),
            event_type: Set(event.event_type),
            subject_id: Set(event.subject_id),
            time: Set(event.time),
            traceparent: Set(traceparent.clone()),
            tracestate: Set(tracestate.clone()),
            payload: Set(prost::Message::encode_to_vec(&event.payload)),
            create_time: Set(now),
        });
        if rows.len() == CHUNK || events.peek().is_none() {
            outbox_event::Entity::insert_many(std::mem::take(&mut rows))
                .exec_without_returning(conn)
                .await?;
        }
    }
    Ok(())
}

/// The current span's `traceparent` and `tracestate`: the RPC's own server
/// span (a child of the caller's context, so the trace link is kept), never
/// the caller's header text, and within W3C's bounds.
fn current_trace_context() -> (String, String) {
    crm_telemetry::current_trace_context()
}

/// A service's handle on its outbox: append in the transaction, notify
/// after the commit.
#[derive(Debug, Clone)]
pub struct Outbox {
    pub(crate) wake: Arc<Notify>,
}

impl Outbox {
    /// [`append`], as a method for those who hold an `Outbox`.
    pub async fn append(&self, conn: &impl ConnectionTrait, event: NewEvent) -> Result<(), DbErr> {
        append(conn, event).await
    }

    /// [`append_many`], as a method.
    pub async fn append_many(
        &self,
        conn: &impl ConnectionTrait,
        events: Vec<NewEvent>,
    ) -> Result<(), DbErr> {
        append_many(conn, events).await
    }

    /// Wakes the sequencer: call after committing a transaction that
    /// appended events. Without it they are numbered at the next tick.
    pub fn notify(&self) {
        // One stored permit is enough: a sequencer pass numbers every
        // committed row, however many commits woke it.
        self.wake.notify_one();
    }
}

/// The unit of work appends a command's events here and wakes the
/// sequencer after its commit.
impl crm_store::uow::Outbox for Outbox {
    type Event = NewEvent;

    fn append<'a>(
        &'a self,
        tx: &'a sea_orm::DatabaseTransaction,
        events: Vec<NewEvent>,
    ) -> crm_store::uow::BoxFuture<'a, Result<(), DbErr>> {
        Box::pin(append_many(tx, events))
    }

    fn notify(&self) {
        Outbox::notify(self);
    }
}
