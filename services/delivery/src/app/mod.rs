//! The use cases of the service. Each command loads the project through
//! `store` (locked for the transaction), lets `domain` decide, re-runs the
//! risk rules on the result, and commits the change with its audit
//! entries, its events (built by `wire`) and, for creating calls, its
//! idempotency record in one unit of work. Queries read through `store`
//! and apply the same visibility rules.

use crm_events::{NewEvent, Outbox};
use crm_store::{
    DatabaseConnection,
    uow::{Effect, UnitOfWork},
};
use crm_types::AuditEntry;

use crate::domain::{DeliveryConfig, DeliveryError, Logged, Project};
use crate::store::{self, StoredConfig};

mod commands;
mod handover;
mod queries;
mod risks;

pub use commands::{AcceptInput, GoLiveInput, LogInput, ProjectPatch};
pub use handover::CONTRACT_SIGNED;
pub use risks::Swept;

type Result<T> = std::result::Result<T, DeliveryError>;

/// What a command writes beside its change.
#[derive(Default)]
struct Trail {
    audit: Vec<AuditEntry>,
    events: Vec<NewEvent>,
}

impl Trail {
    fn audit(&mut self, entry: AuditEntry) {
        self.audit.push(entry);
    }

    fn event(&mut self, event: impl Into<Option<NewEvent>>) {
        self.events.extend(event.into());
    }

    fn done<T>(self, value: T) -> Result<Effect<T, NewEvent>> {
        Ok(Effect::new(value).audits(self.audit).events(self.events))
    }
}

/// A project as a reply shows it: the document, its handover package, the
/// hours logged on it and the tenant's configuration.
#[derive(Debug, Clone)]
pub struct View {
    pub project: Project,
    pub handover: Vec<u8>,
    pub logged: Logged,
    pub config: DeliveryConfig,
}

/// The service's use cases over its database and outbox.
#[derive(Clone)]
pub struct UseCases {
    uow: UnitOfWork<Outbox>,
    outbox: Outbox,
    defaults: DeliveryConfig,
}

impl UseCases {
    pub fn new(db: DatabaseConnection, defaults: DeliveryConfig, outbox: Outbox) -> Self {
        UseCases {
            uow: UnitOfWork::new(db, outbox.clone()),
            outbox,
            defaults,
        }
    }

    /// The connection, for the handlers every service shares.
    pub fn db(&self) -> &DatabaseConnection {
        self.uow.db()
    }

    /// The configuration of tenants that have not set their own.
    pub fn defaults(&self) -> &DeliveryConfig {
        &self.defaults
    }

    pub async fn config(&self, tenant: &str) -> Result<StoredConfig> {
        store::config(self.db(), tenant, &self.defaults).await
    }
}
