//! The use cases of the service. Each command loads what the domain needs
//! through `store`, lets `domain` decide, and commits the change with its
//! audit entries, its events (built by `wire`) and, for creating calls, its
//! idempotency record in one unit of work. Queries read through `store` and
//! apply the same visibility rule as the commands.

use crm_events::{NewEvent, Outbox};
use crm_store::{
    DatabaseConnection,
    uow::{Effect, UnitOfWork},
};
use crm_types::{AuditEntry, Change};

use crate::domain::{Account, Opportunity, OpportunityConfig, OpportunityError};
use crate::store::{self, StoredConfig};
use crate::wire::events;

mod accounts;
mod approvals;
mod opportunities;

type Result<T> = std::result::Result<T, OpportunityError>;

/// What a command writes beside its change: its audit entries, the event
/// each change of an account or opportunity publishes, and its milestone
/// events, in the order they happened.
#[derive(Default)]
struct Trail {
    audit: Vec<AuditEntry>,
    events: Vec<NewEvent>,
}

impl Trail {
    /// An entry whose record is published otherwise: a creation by its
    /// `...Created` event, an approval by its own milestones.
    fn audit(&mut self, entry: AuditEntry) {
        self.audit.push(entry);
    }

    /// A change of `account` or of one of its contacts: AccountChanged
    /// with the account as it is now.
    fn account_changed(&mut self, account: &Account, entry: AuditEntry) {
        self.events.push(events::account_changed(account, &entry));
        self.audit.push(entry);
    }

    /// A change of `opportunity` or of what hangs on it (decision chain,
    /// activities, hours): OpportunityChanged with the opportunity as it
    /// is now.
    fn opportunity_changed(
        &mut self,
        opportunity: &Opportunity,
        config: &OpportunityConfig,
        entry: AuditEntry,
    ) {
        self.events
            .push(events::opportunity_changed(opportunity, config, &entry));
        self.audit.push(entry);
    }

    fn event(&mut self, event: NewEvent) {
        self.events.push(event);
    }

    /// The command's result with everything it writes beside it.
    fn done<T>(self, value: T) -> Result<Effect<T, NewEvent>> {
        Ok(Effect::new(value).audits(self.audit).events(self.events))
    }
}

/// The audit entry of a created record, naming it.
fn created(id: &str, action: &str, actor: &str, name: &str, now: i64) -> AuditEntry {
    AuditEntry::new(id, action, actor, now).with_field_changes(vec![Change {
        field: "name",
        old: String::new(),
        new: name.to_owned(),
    }])
}

/// The audit entry of a requested approval, on the approval.
fn approval_requested(approval: &crate::domain::Approval, actor: &str, now: i64) -> AuditEntry {
    AuditEntry::new(&approval.id, "approval.requested", actor, now).with_reason(format!(
        "{} for {}: {}",
        approval.kind, approval.subject_id, approval.reason
    ))
}

/// A page of a list: where to start after, and how many.
#[derive(Debug, Clone, Copy)]
pub struct Page<'a> {
    pub after: Option<&'a str>,
    pub limit: u64,
}

/// The service's use cases over its database and outbox.
#[derive(Clone)]
pub struct UseCases {
    uow: UnitOfWork<Outbox>,
    /// The configuration of tenants that have not set their own.
    defaults: OpportunityConfig,
}

impl UseCases {
    pub fn new(db: DatabaseConnection, defaults: OpportunityConfig, outbox: Outbox) -> Self {
        UseCases {
            uow: UnitOfWork::new(db, outbox),
            defaults,
        }
    }

    /// The connection, for the handlers every service shares (the
    /// tenant's configuration, the audit trail).
    pub fn db(&self) -> &DatabaseConnection {
        self.uow.db()
    }

    /// The configuration of tenants that have not set their own.
    pub fn defaults(&self) -> &OpportunityConfig {
        &self.defaults
    }

    // ---- configuration

    pub async fn config(&self, tenant: &str) -> Result<StoredConfig> {
        store::config(self.db(), tenant, &self.defaults).await
    }

    async fn rules(&self, tenant: &str) -> Result<OpportunityConfig> {
        Ok(self.config(tenant).await?.config)
    }
}
