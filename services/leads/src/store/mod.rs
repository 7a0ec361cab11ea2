//! Persistence of leads: every use case runs in one write transaction that
//! loads what the domain needs, lets the domain decide, and stores the
//! result, its audit entries and its idempotency record together.

mod entities;
mod mapping;
mod migration;

use std::collections::HashMap;

use crm_store::{
    audit::{self, AuditEntry, FieldChange},
    idempotency::{self, Prior, RequestKey},
};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, DbErr, EntityTrait, FromQueryResult, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, sea_query::UnionType,
};
use serde::{Deserialize, Serialize};

use crate::domain::{
    self, Actor, Change, DuplicateKeys, Interaction, InteractionKind, Lead, LeadConfig, LeadError,
    LeadStatus, OnDuplicate, Patch, Profile, Tally,
};
use entities::{interaction, lead, lead_claim};
use mapping::{interaction_from_row, interaction_to_row, lead_from_row, lead_to_row};

pub use migration::Migrator;

const DAY_MICROS: i64 = 86_400_000_000;
/// Keys per IN (...) list when looking for duplicates of an import.
const KEY_CHUNK: usize = 300;
/// Rows per INSERT of an import (well under SQLite's bind limit).
const INSERT_CHUNK: usize = 200;

/// A tenant's lead configuration as stored; version 0 is the operator's defaults.
pub type StoredConfig = crm_store::tenant_config::Stored<LeadConfig>;

/// Which leads a list returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Sales users: only their own leads and the pool.
    pub visible_to: Option<String>,
    /// Only this owner's leads.
    pub owner: Option<String>,
    /// Only pool leads.
    pub pool: bool,
    pub status: Option<LeadStatus>,
    pub channel: Option<String>,
}

/// A new lead as asked for.
#[derive(Debug, Clone)]
pub struct Draft {
    pub profile: Profile,
    pub owner_id: Option<String>,
    pub next_follow_up_time: Option<i64>,
}

/// Why an import row was not stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub reason: String,
    pub field: String,
    pub description: String,
    pub existing_lead_id: String,
}

/// What became of one import row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowOutcome {
    pub index: usize,
    pub lead_id: Option<String>,
    pub merged: bool,
    pub rejection: Option<Rejection>,
}

/// One channel's leads by status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelCount {
    pub channel: String,
    pub status: LeadStatus,
    pub leads: i64,
}

#[derive(Serialize, Deserialize)]
struct Created {
    lead_id: String,
    merged: bool,
}

#[derive(Serialize, Deserialize)]
struct Logged {
    interaction_id: String,
}

#[derive(Clone)]
pub struct LeadStore {
    db: DatabaseConnection,
    defaults: LeadConfig,
    outbox: crm_events::Outbox,
}

fn db(err: DbErr) -> LeadError {
    LeadError::store(err)
}

impl From<DbErr> for LeadError {
    fn from(err: DbErr) -> Self {
        LeadError::store(err)
    }
}

impl crm_store::TxError for LeadError {
    fn is_unique_violation(&self) -> bool {
        matches!(self, LeadError::Store(e) if e.downcast_ref::<DbErr>().and_then(crm_store::unique_violation).is_some())
    }
}

fn audit_changes(changes: Vec<Change>) -> Vec<FieldChange> {
    changes
        .into_iter()
        .map(|c| FieldChange {
            field: c.field.to_owned(),
            old: c.old,
            new: c.new,
        })
        .collect()
}

impl LeadStore {
    pub fn new(db: DatabaseConnection, defaults: LeadConfig, outbox: crm_events::Outbox) -> Self {
        LeadStore {
            db,
            defaults,
            outbox,
        }
    }

    // ---- configuration

    pub async fn config(&self, tenant: &str) -> Result<StoredConfig, LeadError> {
        crm_store::tenant_config::get(&self.db, tenant, &self.defaults)
            .await
            .map_err(db)
    }

    pub async fn replace_config(
        &self,
        tenant: &str,
        config: LeadConfig,
        etag: &str,
        actor: &str,
        now: i64,
    ) -> Result<StoredConfig, LeadError> {
        use crm_store::tenant_config::{self, ConfigError};
        crm_store::write_tx!(&self.db, |tx| async {
            let subject = format!("lead-config/{tenant}");
            tenant_config::replace(
                tx,
                tenant,
                &subject,
                &config,
                &self.defaults,
                etag,
                actor,
                now,
            )
            .await
            .map_err(|e| match e {
                ConfigError::Stale(etag) => LeadError::StaleConfig(etag),
                ConfigError::Db(e) => db(e),
            })
        })
    }

    // ---- reading

    pub async fn get(&self, tenant: &str, id: &str) -> Result<Lead, LeadError> {
        load(&self.db, tenant, id).await
    }

    /// A page of leads, newest first, after the lead id `after`.
    pub async fn list(
        &self,
        tenant: &str,
        filter: &ListFilter,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Lead>, LeadError> {
        use lead::Column;
        let mut query = lead::Entity::find().filter(Column::TenantId.eq(tenant));
        if let Some(me) = &filter.visible_to {
            query = query.filter(
                Condition::any()
                    .add(Column::OwnerId.eq(me.as_str()))
                    .add(Column::OwnerId.is_null()),
            );
        }
        if let Some(owner) = &filter.owner {
            query = query.filter(Column::OwnerId.eq(owner.as_str()));
        }
        if filter.pool {
            query = query.filter(Column::OwnerId.is_null());
        }
        if let Some(status) = filter.status {
            query = query.filter(Column::Status.eq(status.as_str()));
        }
        if let Some(channel) = &filter.channel {
            query = query.filter(Column::SourceChannel.eq(channel.as_str()));
        }
        if let Some(after) = after {
            query = query.filter(Column::Id.lt(after));
        }
        let rows = query
            .order_by_desc(Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(db)?;
        rows.into_iter().map(lead_from_row).collect()
    }

    /// An owner's leads needing attention by `before`, soonest first, after
    /// the key `(attention_time, id)` of the previous page.
    pub async fn due(
        &self,
        tenant: &str,
        owner: &str,
        before: i64,
        after: Option<(i64, String)>,
        limit: u64,
    ) -> Result<Vec<Lead>, LeadError> {
        use lead::Column;
        let mut query = lead::Entity::find()
            .filter(Column::TenantId.eq(tenant))
            .filter(Column::OwnerId.eq(owner))
            .filter(Column::AttentionTime.lte(before));
        if let Some((time, id)) = after {
            query = query.filter(
                Condition::any().add(Column::AttentionTime.gt(time)).add(
                    Condition::all()
                        .add(Column::AttentionTime.eq(time))
                        .add(Column::Id.gt(id)),
                ),
            );
        }
        let rows = query
            .order_by_asc(Column::AttentionTime)
            .order_by_asc(Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(db)?;
        rows.into_iter().map(lead_from_row).collect()
    }

    pub async fn list_interactions(
        &self,
        tenant: &str,
        lead_id: &str,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Interaction>, LeadError> {
        use interaction::Column;
        let mut query = interaction::Entity::find()
            .filter(Column::TenantId.eq(tenant))
            .filter(Column::LeadId.eq(lead_id));
        if let Some(after) = after {
            query = query.filter(Column::Id.lt(after));
        }
        let rows = query
            .order_by_desc(Column::Id)
            .limit(limit)
            .all(&self.db)
            .await
            .map_err(db)?;
        rows.into_iter().map(interaction_from_row).collect()
    }

    pub async fn channel_counts(&self, tenant: &str) -> Result<Vec<ChannelCount>, LeadError> {
        #[derive(FromQueryResult)]
        struct Row {
            source_channel: String,
            status: String,
            leads: i64,
        }
        use lead::Column;
        let rows = lead::Entity::find()
            .select_only()
            .column(Column::SourceChannel)
            .column(Column::Status)
            .column_as(Column::Id.count(), "leads")
            .filter(Column::TenantId.eq(tenant))
            .group_by(Column::SourceChannel)
            .group_by(Column::Status)
            .into_model::<Row>()
            .all(&self.db)
            .await
            .map_err(db)?;
        rows.into_iter()
            .map(|r| {
                let status = LeadStatus::parse(&r.status).ok_or_else(|| {
                    LeadError::store(DbErr::Custom(format!("unknown status {}", r.status)))
                })?;
                Ok(ChannelCount {
                    channel: r.source_channel,
                    status,
                    leads: r.leads,
                })
            })
            .collect()
    }

    pub async fn audit_entries(
        &self,
        tenant: &str,
        lead_id: Option<&str>,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<AuditEntry>, LeadError> {
        audit::list(&self.db, tenant, lead_id, after, limit)
            .await
            .map_err(db)
    }

    // ---- intake

    /// Creates a lead, or finds its duplicate and refuses or merges.
    pub async fn create(
        &self,
        tenant: &str,
        request: Option<RequestKey<'_>>,
        draft: &Draft,
        on_duplicate: OnDuplicate,
        actor: &Actor,
        config: &LeadConfig,
        now: i64,
    ) -> Result<(Lead, bool), LeadError> {
        let result = crm_store::write_tx!(&self.db, |tx| async {
            if let Some(key) = request {
                match idempotency::prior(tx, key).await.map_err(db)? {
                    Prior::Same(outcome) => {
                        let created: Created =
                            serde_json::from_str(&outcome).map_err(LeadError::store)?;
                        return Ok((load(tx, tenant, &created.lead_id).await?, created.merged));
                    }
                    Prior::Conflict => return Err(LeadError::RequestIdReused),
                    Prior::None => {}
                }
            }
            let keys = draft.profile.duplicate_keys();
            let (lead, merged, entry) = match find_duplicate(tx, tenant, &keys).await? {
                Some(mut existing) => {
                    let key = keys
                        .shared_with(&existing.profile.duplicate_keys())
                        .unwrap_or("phone");
                    if on_duplicate == OnDuplicate::Reject {
                        return Err(LeadError::Duplicate {
                            key,
                            existing_id: existing.id,
                        });
                    }
                    let version = existing.version;
                    let changes = domain::merge_into(&mut existing, &draft.profile, actor, now)?;
                    save(tx, &existing, version).await?;
                    let entry = AuditEntry::new(&existing.id, "lead.merged", &actor.id, now)
                        .with_changes(audit_changes(changes))
                        .with_reason(format!("duplicate by {key}"));
                    (existing, true, entry)
                }
                None => {
                    let lead = domain::new_lead(
                        crm_store::new_id(),
                        tenant,
                        draft.profile.clone(),
                        draft.owner_id.clone(),
                        draft.next_follow_up_time,
                        actor,
                        config,
                        now,
                    )?;
                    lead::Entity::insert(lead_to_row(&lead)?)
                        .exec_without_returning(tx)
                        .await
                        .map_err(db)?;
                    let entry = AuditEntry::new(&lead.id, "lead.created", &actor.id, now)
                        .with_changes(creation_changes(&lead));
                    (lead, false, entry)
                }
            };
            record(tx, &lead, Some(lead.status), entry).await?;
            if let Some(key) = request {
                let outcome = Created {
                    lead_id: lead.id.clone(),
                    merged,
                };
                let outcome = serde_json::to_string(&outcome).map_err(LeadError::store)?;
                idempotency::record(tx, key, outcome, now)
                    .await
                    .map_err(db)?;
            }
            Ok((lead, merged))
        });
        self.outbox.notify();
        result
    }

    /// Imports rows in one transaction: every valid, non-duplicate row is
    /// stored, every other row reported with its reason; an interrupted
    /// import stored nothing, and its retry with the same request id does
    /// the work once.
    pub async fn import(
        &self,
        tenant: &str,
        request: Option<RequestKey<'_>>,
        rows: Vec<Result<Draft, Vec<domain::Violation>>>,
        on_duplicate: OnDuplicate,
        actor: &Actor,
        config: &LeadConfig,
        now: i64,
    ) -> Result<Vec<RowOutcome>, LeadError> {
        let result = crm_store::write_tx!(&self.db, |tx| async {
            if let Some(key) = request {
                match idempotency::prior(tx, key).await.map_err(db)? {
                    Prior::Same(outcome) => {
                        return serde_json::from_str(&outcome).map_err(LeadError::store);
                    }
                    Prior::Conflict => return Err(LeadError::RequestIdReused),
                    Prior::None => {}
                }
            }
            let outcomes = import_rows(tx, tenant, &rows, on_duplicate, actor, config, now).await?;
            if let Some(key) = request {
                let outcome = serde_json::to_string(&outcomes).map_err(LeadError::store)?;
                idempotency::record(tx, key, outcome, now)
                    .await
                    .map_err(db)?;
            }
            Ok(outcomes)
        });
        self.outbox.notify();
        result
    }

    // ---- changes

    /// Loads a lead for change, checks the etag, lets `decide` change it,
    /// and stores it with its audit entry.
    async fn change(
        &self,
        tx: &DatabaseTransaction,
        tenant: &str,
        id: &str,
        etag: &str,
        action: &str,
        actor: &str,
        now: i64,
        decide: impl FnOnce(&mut Lead) -> Result<(Vec<Change>, String), LeadError>,
    ) -> Result<Lead, LeadError> {
        let mut lead = load(tx, tenant, id).await?;
        lead.check_etag(etag)?;
        let (version, before) = (lead.version, lead.status);
        let (changes, reason) = decide(&mut lead)?;
        if !changes.is_empty() {
            save(tx, &lead, version).await?;
            let entry = AuditEntry::new(id, action, actor, now)
                .with_changes(audit_changes(changes))
                .with_reason(reason);
            record(tx, &lead, Some(before), entry).await?;
        }
        Ok(lead)
    }

    pub async fn update(
        &self,
        tenant: &str,
        id: &str,
        etag: &str,
        patches: Vec<Patch>,
        actor: &Actor,
        config: &LeadConfig,
        now: i64,
    ) -> Result<Lead, LeadError> {
        let result = crm_store::write_tx!(&self.db, |tx| async {
            let tally = tally(tx, tenant, id, &config.scoring, now).await?;
            self.change(
                tx,
                tenant,
                id,
                etag,
                "lead.updated",
                &actor.id,
                now,
                |lead| {
                    domain::check_visible(lead, actor)?;
                    Ok((
                        domain::update(lead, patches.clone(), actor, &tally, config, now)?,
                        String::new(),
                    ))
                },
            )
            .await
        });
        self.outbox.notify();
        result
    }

    pub async fn delete(
        &self,
        tenant: &str,
        id: &str,
        etag: &str,
        actor: &Actor,
        now: i64,
    ) -> Result<(), LeadError> {
        let result = crm_store::write_tx!(&self.db, |tx| async {
            let lead = load(tx, tenant, id).await?;
            lead.check_etag(etag)?;
            interaction::Entity::delete_many()
                .filter(interaction::Column::TenantId.eq(tenant))
                .filter(interaction::Column::LeadId.eq(id))
                .exec(tx)
                .await
                .map_err(db)?;
            lead::Entity::delete_many()
                .filter(lead::Column::TenantId.eq(tenant))
                .filter(lead::Column::Id.eq(id))
                .filter(lead::Column::Version.eq(lead.version))
                .exec(tx)
                .await
                .map_err(db)?;
            let entry = AuditEntry::new(id, "lead.deleted", &actor.id, now)
                .with_changes(creation_changes(&lead));
            record(tx, &lead, Some(lead.status), entry).await
        });
        self.outbox.notify();
        result
    }

    pub async fn log_interaction(
        &self,
        tenant: &str,
        request: Option<RequestKey<'_>>,
        lead_id: &str,
        kind: InteractionKind,
        occur_time: i64,
        notes: &str,
        actor: &Actor,
        config: &LeadConfig,
        now: i64,
    ) -> Result<(Interaction, Lead), LeadError> {
        let result = crm_store::write_tx!(&self.db, |tx| async {
            if let Some(key) = request {
                match idempotency::prior(tx, key).await.map_err(db)? {
                    Prior::Same(outcome) => {
                        let logged: Logged =
                            serde_json::from_str(&outcome).map_err(LeadError::store)?;
                        let row = interaction::Entity::find_by_id(logged.interaction_id.clone())
                            .one(tx)
                            .await
                            .map_err(db)?;
                        let row = row.ok_or_else(|| LeadError::NotFound(lead_id.to_owned()))?;
                        return Ok((interaction_from_row(row)?, load(tx, tenant, lead_id).await?));
                    }
                    Prior::Conflict => return Err(LeadError::RequestIdReused),
                    Prior::None => {}
                }
            }
            let mut lead = load(tx, tenant, lead_id).await?;
            domain::check_visible(&lead, actor)?;
            let logged = Interaction {
                id: crm_store::new_id(),
                lead_id: lead_id.to_owned(),
                kind,
                occur_time,
                notes: notes.to_owned(),
                creator: actor.id.clone(),
                create_time: now,
            };
            // Rescoring counts the new interaction too.
            let mut tally = tally(tx, tenant, lead_id, &config.scoring, now).await?;
            *tally.per_kind.entry(kind).or_default() += 1;
            if occur_time >= now - window_micros(&config.scoring) {
                tally.in_window += 1;
            }
            let (version, before) = (lead.version, lead.status);
            let changes = domain::log_interaction(&mut lead, actor, &tally, config, now)?;
            interaction::Entity::insert(interaction_to_row(tenant, &logged))
                .exec_without_returning(tx)
                .await
                .map_err(db)?;
            save(tx, &lead, version).await?;
            let entry = AuditEntry::new(lead_id, "lead.interaction_logged", &actor.id, now)
                .with_changes(audit_changes(changes))
                .with_reason(kind.as_str());
            record(tx, &lead, Some(before), entry).await?;
            if let Some(key) = request {
                let outcome = serde_json::to_string(&Logged {
                    interaction_id: logged.id.clone(),
                })
                .map_err(LeadError::store)?;
                idempotency::record(tx, key, outcome, now)
                    .await
                    .map_err(db)?;
            }
            Ok((logged, lead))
        });
        self.outbox.notify();
        result
    }

    pub async fn assign(
        &self,
        tenant: &str,
        id: &str,
        etag: &str,
        owner: &str,
        actor: &Actor,
        config: &LeadConfig,
        now: i64,
    ) -> Result<Lead, LeadError> {
        let result = crm_store::write_tx!(&self.db, |tx| async {
            self.change(
                tx,
                tenant,
                id,
                etag,
                "lead.assigned",
                &actor.id,
                now,
                |lead| {
                    Ok((
                        domain::assign(lead, owner, actor, config, now)?,
                        String::new(),
                    ))
                },
            )
            .await
        });
        self.outbox.notify();
        result
    }

    pub async fn claim(
        &self,
        tenant: &str,
        id: &str,
        etag: &str,
        actor: &Actor,
        config: &LeadConfig,
        now: i64,
    ) -> Result<Lead, LeadError> {
        let result = crm_store::write_tx!(&self.db, |tx| async {
            let claims = lead_claim::Entity::find()
                .filter(lead_claim::Column::TenantId.eq(tenant))
                .filter(lead_claim::Column::Claimer.eq(actor.id.as_str()))
                .filter(lead_claim::Column::ClaimTime.gt(now - DAY_MICROS))
                .count(tx)
                .await
                .map_err(db)?;
            let claims = u32::try_from(claims).unwrap_or(u32::MAX);
            let lead = self
                .change(
                    tx,
                    tenant,
                    id,
                    etag,
                    "lead.claimed",
                    &actor.id,
                    now,
                    |lead| {
                        Ok((
                            domain::claim(lead, actor, claims, config, now)?,
                            String::new(),
                        ))
                    },
                )
                .await?;
            lead_claim::Entity::insert(lead_claim::ActiveModel {
                id: Set(crm_store::new_id()),
                tenant_id: Set(tenant.to_owned()),
                claimer: Set(actor.id.clone()),
                lead_id: Set(id.to_owned()),
                claim_time: Set(now),
            })
            .exec_without_returning(tx)
            .await
            .map_err(db)?;
            Ok(lead)
        });
        self.outbox.notify();
        result
    }

    pub async fn release(
        &self,
        tenant: &str,
        id: &str,
        etag: &str,
        reason: &str,
        actor: &Actor,
        now: i64,
    ) -> Result<Lead, LeadError> {
        let result = crm_store::write_tx!(&self.db, |tx| async {
            self.change(
                tx,
                tenant,
                id,
                etag,
                "lead.released",
                &actor.id,
                now,
                |lead| Ok((domain::release(lead, actor, now)?, reason.to_owned())),
            )
            .await
        });
        self.outbox.notify();
        result
    }

    pub async fn disqualify(
        &self,
        tenant: &str,
        id: &str,
        etag: &str,
        reason: &str,
        actor: &Actor,
        now: i64,
    ) -> Result<Lead, LeadError> {
        let result = crm_store::write_tx!(&self.db, |tx| async {
            self.change(
                tx,
                tenant,
                id,
                etag,
                "lead.disqualified",
                &actor.id,
                now,
                |lead| {
                    Ok((
                        domain::disqualify(lead, reason, actor, now)?,
                        reason.trim().to_owned(),
                    ))
                },
            )
            .await
        });
        self.outbox.notify();
        result
    }

    /// Records a conversion the opportunities service made. Converting an
    /// already converted lead changes nothing, so a retry after a crash
    /// between the two services' steps ends in the same state.
    pub async fn mark_converted(
        &self,
        tenant: &str,
        id: &str,
        opportunity_id: &str,
        account_id: &str,
        actor: &Actor,
        now: i64,
    ) -> Result<Lead, LeadError> {
        let result = crm_store::write_tx!(&self.db, |tx| async {
            self.mark_converted_in(tx, tenant, id, opportunity_id, account_id, actor, now)
                .await
        });
        self.outbox.notify();
        result
    }

    /// Records a conversion the opportunities service made, in `tx`.
    /// Converting an already converted lead changes nothing, so a retry
    /// after a crash between the two services' steps ends in the same state.
    pub async fn mark_converted_in(
        &self,
        tx: &DatabaseTransaction,
        tenant: &str,
        id: &str,
        opportunity_id: &str,
        account_id: &str,
        actor: &Actor,
        now: i64,
    ) -> Result<Lead, LeadError> {
        self.change(
            tx,
            tenant,
            id,
            "",
            "lead.converted",
            &actor.id,
            now,
            |lead| {
                Ok((
                    domain::convert(lead, opportunity_id, account_id, actor, now)?,
                    String::new(),
                ))
            },
        )
        .await
    }

    // ---- the sweeper

    /// Returns to the pool up to `batch` leads, of any tenant, whose owner
    /// missed the follow-up deadline; each return is audited. Returns how
    /// many it returned.
    pub async fn sweep_overdue(
        &self,
        actor: &str,
        now: i64,
        batch: u64,
    ) -> Result<usize, LeadError> {
        let result = crm_store::write_tx!(&self.db, |tx| async {
            let rows = lead::Entity::find()
                .filter(lead::Column::FollowUpDeadline.lt(now))
                .order_by_asc(lead::Column::FollowUpDeadline)
                .limit(batch)
                .all(tx)
                .await
                .map_err(db)?;
            let mut returned = 0;
            for row in rows {
                let mut lead = lead_from_row(row)?;
                let Some(reason) = domain::overdue(&lead, now) else {
                    continue;
                };
                let version = lead.version;
                let changes = domain::return_to_pool(&mut lead, actor, now);
                save(tx, &lead, version).await?;
                let entry = AuditEntry::new(&lead.id, "lead.returned_to_pool", actor, now)
                    .with_changes(audit_changes(changes))
                    .with_reason(reason.to_string());
                record(tx, &lead, Some(lead.status), entry).await?;
                returned += 1;
            }
            Ok(returned)
        });
        self.outbox.notify();
        result
    }
}

/// Appends the audit entry of a change of `lead`, and the events the change
/// publishes, in the change's transaction. `before` is the lead's status
/// before the change.
async fn record(
    conn: &impl ConnectionTrait,
    lead: &Lead,
    before: Option<LeadStatus>,
    entry: AuditEntry,
) -> Result<(), LeadError> {
    crm_events::append_many(conn, crate::events::of_change(lead, before, &entry))
        .await
        .map_err(db)?;
    audit::append(conn, &lead.tenant, vec![entry])
        .await
        .map_err(db)
}

async fn load(conn: &impl ConnectionTrait, tenant: &str, id: &str) -> Result<Lead, LeadError> {
    let row = lead::Entity::find()
        .filter(lead::Column::TenantId.eq(tenant))
        .filter(lead::Column::Id.eq(id))
        .one(conn)
        .await
        .map_err(db)?;
    lead_from_row(row.ok_or_else(|| LeadError::NotFound(id.to_owned()))?)
}

/// Stores a changed lead if it is still at `version`: a concurrent change
/// in between makes this one fail as stale.
async fn save(conn: &impl ConnectionTrait, lead: &Lead, version: i64) -> Result<(), LeadError> {
    if lead.version == version {
        return Ok(());
    }
    let done = lead::Entity::update_many()
        .set(lead_to_row(lead)?)
        .filter(lead::Column::TenantId.eq(lead.tenant.as_str()))
        .filter(lead::Column::Id.eq(lead.id.as_str()))
        .filter(lead::Column::Version.eq(version))
        .exec(conn)
        .await
        .map_err(db)?;
    if done.rows_affected == 0 {
        return Err(LeadError::StaleEtag {
            given: version.to_string(),
            current: "newer".into(),
        });
    }
    Ok(())
}

fn window_micros(model: &domain::ScoringModel) -> i64 {
    i64::try_from(model.frequency_window.as_micros()).unwrap_or(i64::MAX)
}

/// A lead's interactions counted by kind, and those inside the frequency
/// window: one aggregate query.
async fn tally(
    conn: &impl ConnectionTrait,
    tenant: &str,
    lead_id: &str,
    model: &domain::ScoringModel,
    now: i64,
) -> Result<Tally, LeadError> {
    #[derive(FromQueryResult)]
    struct Row {
        kind: String,
        total: i64,
        recent: i64,
    }
    use interaction::Column;
    use sea_orm::sea_query::{Expr, ExprTrait};
    let window_start = now.saturating_sub(window_micros(model));
    let recent = Expr::case(Expr::col(Column::OccurTime).gte(window_start), 1).finally(0);
    let rows = interaction::Entity::find()
        .select_only()
        .column(Column::Kind)
        .column_as(Column::Id.count(), "total")
        .column_as(Expr::expr(recent).sum(), "recent")
        .filter(Column::TenantId.eq(tenant))
        .filter(Column::LeadId.eq(lead_id))
        .group_by(Column::Kind)
        .into_model::<Row>()
        .all(conn)
        .await
        .map_err(db)?;
    let mut tally = Tally::default();
    for row in rows {
        if let Some(kind) = InteractionKind::parse(&row.kind) {
            tally
                .per_kind
                .insert(kind, u32::try_from(row.total).unwrap_or(u32::MAX));
            tally.in_window += u32::try_from(row.recent).unwrap_or(u32::MAX);
        }
    }
    Ok(tally)
}

/// The lead sharing a key with `keys`, if any; a phone match is preferred
/// to an email match, and that to a company+contact match.
async fn find_duplicate(
    conn: &impl ConnectionTrait,
    tenant: &str,
    keys: &DuplicateKeys,
) -> Result<Option<Lead>, LeadError> {
    let mut existing = existing_by_key(conn, tenant, &[keys]).await?;
    Ok(tagged_keys(keys).find_map(|(_, key)| existing.remove(&key)))
}

/// The columns of a lead's duplicate keys, in the order of [`key_values`].
const KEY_COLUMNS: [lead::Column; 3] = [
    lead::Column::PhoneKey,
    lead::Column::EmailKey,
    lead::Column::NameKey,
];

fn key_values(k: &DuplicateKeys) -> [Option<&str>; 3] {
    [
        k.phone.as_deref(),
        k.email.as_deref(),
        k.company_contact.as_deref(),
    ]
}

/// The leads of `tenant` whose key in [`KEY_COLUMNS`]`[i]` is one of
/// `values[i]`: one UNION ALL of lookups, each answered by that column's
/// unique index. An OR over the three columns leaves the index to the
/// planner, and PostgreSQL without statistics on a growing table (a generic
/// plan made while it was empty) scanned the whole tenant instead.
async fn leads_by_keys(
    conn: &impl ConnectionTrait,
    tenant: &str,
    values: &[Vec<&str>; 3],
) -> Result<Vec<lead::Model>, LeadError> {
    let mut arms = KEY_COLUMNS
        .iter()
        .zip(values)
        .filter(|(_, values)| !values.is_empty())
        .map(|(column, values)| {
            lead::Entity::find()
                .filter(lead::Column::TenantId.eq(tenant))
                .filter(column.is_in(values.iter().copied()))
                .into_query()
        });
    let Some(mut query) = arms.next() else {
        return Ok(Vec::new());
    };
    for arm in arms {
        query.union(UnionType::All, arm);
    }
    let statement = conn.get_database_backend().build(&query);
    lead::Model::find_by_statement(statement)
        .all(conn)
        .await
        .map_err(db)
}

/// The audit changes of a created (or deleted) lead: every field set.
fn creation_changes(lead: &Lead) -> Vec<FieldChange> {
    let p = &lead.profile;
    [
        ("company", p.company.clone()),
        ("contact_name", p.contact_name.clone()),
        ("phone", p.phone.clone()),
        ("email", p.email.clone()),
        ("source_channel", p.source_channel.clone()),
        ("owner_id", lead.owner_id.clone().unwrap_or_default()),
        ("status", lead.status.to_string()),
        ("score", lead.score.total.to_string()),
    ]
    .into_iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(field, value)| FieldChange {
        field: field.to_owned(),
        old: String::new(),
        new: value,
    })
    .collect()
}

/// Every existing lead sharing a key with any of `keys`, by tagged key
/// (see [`tagged_keys`]).
async fn existing_by_key(
    conn: &impl ConnectionTrait,
    tenant: &str,
    keys: &[&DuplicateKeys],
) -> Result<HashMap<String, Lead>, LeadError> {
    let mut found = HashMap::new();
    // (column slot, key) pairs, looked up KEY_CHUNK at a time.
    let all: Vec<(usize, &str)> = keys
        .iter()
        .flat_map(|k| key_values(k).into_iter().enumerate())
        .filter_map(|(slot, key)| key.map(|key| (slot, key)))
        .collect();
    for chunk in all.chunks(KEY_CHUNK) {
        let mut values: [Vec<&str>; 3] = Default::default();
        for &(slot, key) in chunk {
            values[slot].push(key);
        }
        for row in leads_by_keys(conn, tenant, &values).await? {
            let lead = lead_from_row(row)?;
            for (_, key) in tagged_keys(&lead.profile.duplicate_keys()) {
                found.insert(key, lead.clone());
            }
        }
    }
    Ok(found)
}

fn tagged_keys(k: &DuplicateKeys) -> impl Iterator<Item = (&'static str, String)> + '_ {
    [
        ("phone", k.phone.as_ref().map(|v| format!("p:{v}"))),
        ("email", k.email.as_ref().map(|v| format!("e:{v}"))),
        (
            "company_contact",
            k.company_contact.as_ref().map(|v| format!("n:{v}")),
        ),
    ]
    .into_iter()
    .filter_map(|(name, v)| v.map(|v| (name, v)))
}

async fn import_rows(
    tx: &DatabaseTransaction,
    tenant: &str,
    rows: &[Result<Draft, Vec<domain::Violation>>],
    on_duplicate: OnDuplicate,
    actor: &Actor,
    config: &LeadConfig,
    now: i64,
) -> Result<Vec<RowOutcome>, LeadError> {
    let keys: Vec<Option<DuplicateKeys>> = rows
        .iter()
        .map(|r| r.as_ref().ok().map(|d| d.profile.duplicate_keys()))
        .collect();
    let mut existing =
        existing_by_key(tx, tenant, &keys.iter().flatten().collect::<Vec<_>>()).await?;
    // Keys taken by rows earlier in this import, with the row's lead id.
    let mut in_batch: HashMap<String, String> = HashMap::new();
    let mut outcomes = Vec::with_capacity(rows.len());
    let mut inserts = Vec::new();
    let mut entries = Vec::new();
    let mut events = Vec::new();
    let reject =
        |index, reason: &str, field: &str, description: String, existing: &str| RowOutcome {
            index,
            lead_id: None,
            merged: false,
            rejection: Some(Rejection {
                reason: reason.to_owned(),
                field: field.to_owned(),
                description,
                existing_lead_id: existing.to_owned(),
            }),
        };
    for (index, row) in rows.iter().enumerate() {
        let draft = match row {
            Ok(draft) => draft,
            Err(violations) => {
                let first = violations
                    .first()
                    .cloned()
                    .unwrap_or_else(|| domain::Violation::new("", "invalid"));
                let all = violations
                    .iter()
                    .map(|v| format!("{}: {}", v.field, v.description))
                    .collect::<Vec<_>>()
                    .join("; ");
                outcomes.push(reject(index, "INVALID_FIELD", &first.field, all, ""));
                continue;
            }
        };
        let keys = draft.profile.duplicate_keys();
        if let Some((name, id)) =
            tagged_keys(&keys).find_map(|(name, k)| in_batch.get(&k).map(|id| (name, id.clone())))
        {
            outcomes.push(reject(
                index,
                "DUPLICATE_IN_BATCH",
                name,
                format!("same {name} as an earlier row"),
                &id,
            ));
            continue;
        }
        if let Some((name, key)) = tagged_keys(&keys).find(|(_, k)| existing.contains_key(k)) {
            let Some(mut lead) = existing.get(&key).cloned() else {
                continue;
            };
            if on_duplicate == OnDuplicate::Reject {
                outcomes.push(reject(
                    index,
                    "DUPLICATE_LEAD",
                    name,
                    format!("a lead with the same {name} exists"),
                    &lead.id,
                ));
                continue;
            }
            let version = lead.version;
            match domain::merge_into(&mut lead, &draft.profile, actor, now) {
                Ok(changes) => {
                    save(tx, &lead, version).await?;
                    let entry = AuditEntry::new(&lead.id, "lead.merged", &actor.id, now)
                        .with_changes(audit_changes(changes))
                        .with_reason(format!("import row {index}, duplicate by {name}"));
                    events.extend(crate::events::of_change(&lead, Some(lead.status), &entry));
                    entries.push(entry);
                    for (_, k) in tagged_keys(&lead.profile.duplicate_keys()) {
                        existing.insert(k, lead.clone());
                    }
                    outcomes.push(RowOutcome {
                        index,
                        lead_id: Some(lead.id.clone()),
                        merged: true,
                        rejection: None,
                    });
                }
                Err(err) => outcomes.push(reject(
                    index,
                    "DUPLICATE_LEAD",
                    name,
                    err.to_string(),
                    &lead.id,
                )),
            }
            continue;
        }
        let lead = match domain::new_lead(
            crm_store::new_id(),
            tenant,
            draft.profile.clone(),
            draft.owner_id.clone(),
            draft.next_follow_up_time,
            actor,
            config,
            now,
        ) {
            Ok(lead) => lead,
            Err(err) => {
                outcomes.push(reject(
                    index,
                    "NOT_ALLOWED",
                    "owner_id",
                    err.to_string(),
                    "",
                ));
                continue;
            }
        };
        for (_, k) in tagged_keys(&keys) {
            in_batch.insert(k, lead.id.clone());
        }
        let entry = AuditEntry::new(&lead.id, "lead.created", &actor.id, now)
            .with_changes(creation_changes(&lead))
            .with_reason(format!("import row {index}"));
        events.extend(crate::events::of_change(&lead, None, &entry));
        entries.push(entry);
        outcomes.push(RowOutcome {
            index,
            lead_id: Some(lead.id.clone()),
            merged: false,
            rejection: None,
        });
        inserts.push(lead_to_row(&lead)?);
        if inserts.len() == INSERT_CHUNK {
            lead::Entity::insert_many(std::mem::take(&mut inserts))
                .exec_without_returning(tx)
                .await
                .map_err(db)?;
        }
    }
    if !inserts.is_empty() {
        lead::Entity::insert_many(inserts)
            .exec_without_returning(tx)
            .await
            .map_err(db)?;
    }
    audit::append(tx, tenant, entries).await.map_err(db)?;
    crm_events::append_many(tx, events).await.map_err(db)?;
    Ok(outcomes)
}
