//! The use cases of the leads service: each loads what it needs through
//! `store`, lets `domain` decide, and commits the change with its audit
//! entry, its events (built by `wire`) and, for creating calls, its
//! idempotency record in one unit of work (`crm_store::uow`).

mod changes;
mod convert;
mod intake;
mod queries;

use crm_events::NewEvent;
use crm_store::uow::{self, RequestIdReused, UnitOfWork};

use crate::{
    domain::{AuditEntry, Change, Lead, LeadConfig, LeadError, LeadStatus},
    wire,
};

pub use convert::{ConvertError, Converted, OpportunitiesClient};
pub use crm_store::idempotency::RequestKey;

/// What a command writes besides its change: audit entries and events.
type Effect<T> = uow::Effect<T, NewEvent>;

impl From<RequestIdReused> for LeadError {
    fn from(_: RequestIdReused) -> Self {
        LeadError::RequestIdReused
    }
}

/// The longest a conversion's remote call takes unless configured.
pub const DEFAULT_CONVERT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The leads service's use cases over its database and outbox.
#[derive(Clone)]
pub struct App {
    uow: UnitOfWork<crm_events::Outbox>,
    /// The lead configuration of tenants that have not set their own.
    defaults: LeadConfig,
    opportunities: Option<OpportunitiesClient>,
    /// The longest a conversion's remote call may take.
    convert_timeout: std::time::Duration,
    /// The service's own identity: conversion calls the opportunities
    /// service with a service token (role `internal`) naming the user.
    identity: Option<std::sync::Arc<crm_auth::TokenMinter>>,
    /// Imports are planned one at a time, as they were when planning was
    /// part of the write turn: several big plans at once would take every
    /// core from the process's other calls.
    planning: std::sync::Arc<tokio::sync::Semaphore>,
}

impl App {
    pub fn new(
        uow: UnitOfWork<crm_events::Outbox>,
        defaults: LeadConfig,
        opportunities: Option<OpportunitiesClient>,
    ) -> Self {
        App {
            uow,
            defaults,
            opportunities,
            convert_timeout: DEFAULT_CONVERT_TIMEOUT,
            identity: None,
            planning: std::sync::Arc::new(tokio::sync::Semaphore::new(1)),
        }
    }

    /// Signs conversion calls with the service's `identity`; without one,
    /// nothing can be converted.
    pub fn with_identity(
        mut self,
        identity: Option<std::sync::Arc<crm_auth::TokenMinter>>,
    ) -> Self {
        self.identity = identity;
        self
    }

    /// Caps a conversion's remote call at `timeout` (the caller's
    /// remaining time may cut it shorter).
    pub fn with_convert_timeout(mut self, timeout: std::time::Duration) -> Self {
        self.convert_timeout = timeout;
        self
    }

    /// The connection, for the handlers every service shares (the
    /// tenant's configuration, the audit trail).
    pub fn db(&self) -> &sea_orm::DatabaseConnection {
        self.uow.db()
    }

    /// The lead configuration of tenants that have not set their own.
    pub fn defaults(&self) -> &LeadConfig {
        &self.defaults
    }
}

/// The audit entry of a change of `lead` and the events it publishes.
/// `before` is the lead's status before the change (none for a new lead).
fn recorded<T>(value: T, lead: &Lead, before: Option<LeadStatus>, entry: AuditEntry) -> Effect<T> {
    Effect::new(value)
        .events(wire::events::of_change(lead, before, &entry))
        .audit(entry)
}

/// The entry of `action` on `lead` by `actor`, listing `changes`.
fn entry(lead: &Lead, action: &str, actor: &str, now: i64, changes: Vec<Change>) -> AuditEntry {
    AuditEntry::new(&lead.id, action, actor, now).with_field_changes(changes)
}
