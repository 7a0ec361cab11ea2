//! The use cases of the service. Each command loads what the domain needs
//! through `store` (locked for the transaction), lets `domain` decide, and
//! commits the change with its audit entries, its events (built by `wire`)
//! and, for creating calls, its idempotency record in one unit of work.
//! Queries read through `store` and apply the same visibility rule.

use std::time::Duration;

use crm_events::{NewEvent, Outbox};
use crm_store::{
    DatabaseConnection,
    uow::{Effect, UnitOfWork},
};
use crm_types::AuditEntry;

use crate::domain::{ContractError, ContractsConfig};
use crate::store::{self, StoredConfig};

mod commands;
mod queries;
mod remote;
mod timers;

pub use commands::{DecisionInput, SignatureInput};
pub use remote::OpportunitiesClient;
pub use timers::Swept;

type Result<T> = std::result::Result<T, ContractError>;

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

/// A page of a list: where to start after, and how many.
#[derive(Debug, Clone, Copy)]
pub struct Page<'a, K> {
    pub after: Option<&'a K>,
    pub limit: u64,
}

/// How long CreateContract waits for the opportunities service at most,
/// unless the caller's deadline leaves less.
pub const DEFAULT_REMOTE_TIMEOUT: Duration = Duration::from_secs(10);

/// The service's use cases over its database, outbox and the
/// opportunities service.
#[derive(Clone)]
pub struct UseCases {
    uow: UnitOfWork<Outbox>,
    defaults: ContractsConfig,
    opportunities: Option<OpportunitiesClient>,
    remote_timeout: Duration,
}

impl UseCases {
    pub fn new(
        db: DatabaseConnection,
        defaults: ContractsConfig,
        outbox: Outbox,
        opportunities: Option<OpportunitiesClient>,
        remote_timeout: Duration,
    ) -> Self {
        UseCases {
            uow: UnitOfWork::new(db, outbox),
            defaults,
            opportunities,
            remote_timeout,
        }
    }

    /// The connection, for the handlers every service shares.
    pub fn db(&self) -> &DatabaseConnection {
        self.uow.db()
    }

    /// The configuration of tenants that have not set their own.
    pub fn defaults(&self) -> &ContractsConfig {
        &self.defaults
    }

    pub async fn config(&self, tenant: &str) -> Result<StoredConfig> {
        store::config(self.db(), tenant, &self.defaults).await
    }

    async fn rules(&self, tenant: &str) -> Result<ContractsConfig> {
        Ok(self.config(tenant).await?.config)
    }
}
