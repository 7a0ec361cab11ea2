//! The use cases of the service. Each command loads what the domain needs
//! through `store` (locked for the transaction), lets `domain` decide, and
//! commits the change with its audit entries, its events (built by `wire`)
//! and, for creating calls, its idempotency record in one unit of work.
//! Queries read through `store` and apply the same visibility rules.

use crm_events::{NewEvent, Outbox};
use crm_store::{
    DatabaseConnection,
    uow::{Effect, UnitOfWork},
};
use crm_types::AuditEntry;

use crate::domain::{TicketError, TicketsConfig};
use crate::store::{self, StoredConfig};

mod accounts;
mod engineers;
mod project;
mod sweep;
mod tickets;

pub use crate::domain::ProjectCompleted;
pub use accounts::{OWNER_ACTOR, PurchaseInput};
pub use engineers::EngineerInput;
pub use project::CONSUMER;
pub use sweep::Swept;
pub use tickets::{Move, SimilarQuery};

type Result<T> = std::result::Result<T, TicketError>;

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

    fn event(&mut self, event: NewEvent) {
        self.events.push(event);
    }

    fn done<T>(self, value: T) -> Result<Effect<T, NewEvent>> {
        Ok(Effect::new(value).audits(self.audit).events(self.events))
    }
}

/// A page of a list: where to start after, and how many.
#[derive(Debug)]
pub struct Page<'a, K> {
    pub after: Option<&'a K>,
    pub limit: u64,
}

// By hand: a page is a reference and a number, whatever its key.
impl<K> Clone for Page<'_, K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K> Copy for Page<'_, K> {}

/// The most matching documents a similar-solutions query ranks unless
/// the operator says otherwise.
pub const DEFAULT_SEARCH_CANDIDATES: u64 = 200;

/// The service's use cases over its database and outbox.
#[derive(Clone)]
pub struct UseCases {
    uow: UnitOfWork<Outbox>,
    outbox: Outbox,
    defaults: TicketsConfig,
    /// The most matching documents a similar-solutions query ranks.
    search_candidates: u64,
}

impl UseCases {
    pub fn new(db: DatabaseConnection, defaults: TicketsConfig, outbox: Outbox) -> Self {
        UseCases {
            uow: UnitOfWork::new(db, outbox.clone()),
            outbox,
            defaults,
            search_candidates: DEFAULT_SEARCH_CANDIDATES,
        }
    }

    /// Ranks at most `n` matching documents per similar-solutions query
    /// (the operator's `tickets.search_candidates`).
    pub fn with_search_candidates(mut self, n: u64) -> Self {
        self.search_candidates = n.max(1);
        self
    }

    /// The connection, for the handlers every service shares.
    pub fn db(&self) -> &DatabaseConnection {
        self.uow.db()
    }

    /// The configuration of tenants that have not set their own.
    pub fn defaults(&self) -> &TicketsConfig {
        &self.defaults
    }

    pub async fn config(&self, tenant: &str) -> Result<StoredConfig> {
        store::config(self.db(), tenant, &self.defaults).await
    }

    async fn rules(&self, tenant: &str) -> Result<TicketsConfig> {
        Ok(self.config(tenant).await?.config)
    }
}
