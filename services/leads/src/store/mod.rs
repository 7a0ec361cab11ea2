//! Persistence of leads: sea-orm entities, migrations, queries and row
//! mapping. The only place SQL lives, and no rules: every function loads or
//! writes what `app` asks for, on the connection or transaction it is given.
//! Filters and windows come from `domain` values ([`ListFilter`],
//! [`ClaimWindow`]); this module only turns them into queries.

mod entities;
mod mapping;
mod migration;

use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, FromQueryResult,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, QueryTrait, sea_query::UnionType,
};

use crate::domain::{
    AuditEntry, ChannelCount, ClaimWindow, DuplicateKey, DuplicateKeys, Interaction,
    InteractionKind, Lead, LeadConfig, LeadError, LeadStatus, ListFilter, StoredConfig, Tally,
    Visibility,
};
use entities::{interaction, lead, lead_claim};
use mapping::{interaction_from_row, interaction_to_row, lead_from_row, lead_to_row};

pub use migration::Migrator;

/// Keys per IN (...) list when looking for duplicates of an import.
const KEY_CHUNK: usize = 300;
/// Rows per INSERT of an import (well under SQLite's bind limit).
const INSERT_CHUNK: usize = 200;

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

// ---- configuration

/// The tenant's lead configuration, or `defaults` at version 0.
pub async fn config(
    conn: &impl ConnectionTrait,
    tenant: &str,
    defaults: &LeadConfig,
) -> Result<StoredConfig, LeadError> {
    crm_store::tenant_config::get(conn, tenant, defaults)
        .await
        .map(stored_config)
        .map_err(db)
}

/// Replaces the tenant's configuration if it is still at `etag`; the
/// replacement is audited by the tenant-config table's own entry.
pub async fn replace_config(
    conn: &impl ConnectionTrait,
    tenant: &str,
    config: &LeadConfig,
    defaults: &LeadConfig,
    etag: &str,
    actor: &str,
    now: i64,
) -> Result<StoredConfig, LeadError> {
    use crm_store::tenant_config::{self, ConfigError};
    let subject = format!("lead-config/{tenant}");
    tenant_config::replace(conn, tenant, &subject, config, defaults, etag, actor, now)
        .await
        .map(stored_config)
        .map_err(|e| match e {
            ConfigError::Stale(etag) => LeadError::StaleConfig(etag),
            ConfigError::Db(e) => db(e),
        })
}

fn stored_config(s: crm_store::tenant_config::Stored<LeadConfig>) -> StoredConfig {
    StoredConfig {
        config: s.config,
        version: s.version,
        update_time: s.update_time,
        updater: s.updater,
    }
}

// ---- leads

pub async fn load(conn: &impl ConnectionTrait, tenant: &str, id: &str) -> Result<Lead, LeadError> {
    let row = lead::Entity::find()
        .filter(lead::Column::TenantId.eq(tenant))
        .filter(lead::Column::Id.eq(id))
        .one(conn)
        .await
        .map_err(db)?;
    lead_from_row(row.ok_or_else(|| LeadError::NotFound(id.to_owned()))?)
}

/// The leads of `tenant` among `ids` (missing ones are left out).
pub async fn load_many(
    conn: &impl ConnectionTrait,
    tenant: &str,
    ids: &[String],
) -> Result<Vec<Lead>, LeadError> {
    let rows = lead::Entity::find()
        .filter(lead::Column::TenantId.eq(tenant))
        .filter(lead::Column::Id.is_in(ids.iter().map(String::as_str)))
        .all(conn)
        .await
        .map_err(db)?;
    rows.into_iter().map(lead_from_row).collect()
}

pub async fn insert(conn: &impl ConnectionTrait, lead: &Lead) -> Result<(), LeadError> {
    lead::Entity::insert(lead_to_row(lead)?)
        .exec_without_returning(conn)
        .await
        .map_err(db)?;
    Ok(())
}

/// Inserts new leads in statements of a bounded size.
pub async fn insert_many<'a>(
    conn: &impl ConnectionTrait,
    leads: impl IntoIterator<Item = &'a Lead>,
) -> Result<(), LeadError> {
    let mut rows = Vec::new();
    for lead in leads {
        rows.push(lead_to_row(lead)?);
        if rows.len() == INSERT_CHUNK {
            lead::Entity::insert_many(std::mem::take(&mut rows))
                .exec_without_returning(conn)
                .await
                .map_err(db)?;
        }
    }
    if !rows.is_empty() {
        lead::Entity::insert_many(rows)
            .exec_without_returning(conn)
            .await
            .map_err(db)?;
    }
    Ok(())
}

/// Stores a changed lead if it is still at `read_version`: a concurrent
/// change in between makes this one fail as stale. An unchanged lead (same
/// version) is not written.
pub async fn save(
    conn: &impl ConnectionTrait,
    lead: &Lead,
    read_version: i64,
) -> Result<(), LeadError> {
    if lead.version == read_version {
        return Ok(());
    }
    let done = lead::Entity::update_many()
        .set(lead_to_row(lead)?)
        .filter(lead::Column::TenantId.eq(lead.tenant.as_str()))
        .filter(lead::Column::Id.eq(lead.id.as_str()))
        .filter(lead::Column::Version.eq(read_version))
        .exec(conn)
        .await
        .map_err(db)?;
    if !crm_store::uow::saved(&done) {
        return Err(LeadError::StaleEtag {
            given: read_version.to_string(),
            current: "newer".into(),
        });
    }
    Ok(())
}

/// Deletes a lead if it is still at its version, then its interactions: a
/// concurrent change in between makes this one fail as stale and leaves
/// both in place.
pub async fn delete(conn: &impl ConnectionTrait, lead: &Lead) -> Result<(), LeadError> {
    let done = lead::Entity::delete_many()
        .filter(lead::Column::TenantId.eq(lead.tenant.as_str()))
        .filter(lead::Column::Id.eq(lead.id.as_str()))
        .filter(lead::Column::Version.eq(lead.version))
        .exec(conn)
        .await
        .map_err(db)?;
    if done.rows_affected == 0 {
        return Err(LeadError::StaleEtag {
            given: lead.version.to_string(),
            current: "newer".into(),
        });
    }
    interaction::Entity::delete_many()
        .filter(interaction::Column::TenantId.eq(lead.tenant.as_str()))
        .filter(interaction::Column::LeadId.eq(lead.id.as_str()))
        .exec(conn)
        .await
        .map_err(db)?;
    Ok(())
}

/// A page of leads, newest first, after the lead id `after`.
pub async fn list(
    conn: &impl ConnectionTrait,
    tenant: &str,
    filter: &ListFilter,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<Lead>, LeadError> {
    use lead::Column;
    let mut query = lead::Entity::find().filter(Column::TenantId.eq(tenant));
    match &filter.visibility {
        Visibility::All => {}
        Visibility::OwnAndPool(me) => {
            query = query.filter(
                Condition::any()
                    .add(Column::OwnerId.eq(me.as_str()))
                    .add(Column::OwnerId.is_null()),
            );
        }
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
        .all(conn)
        .await
        .map_err(db)?;
    rows.into_iter().map(lead_from_row).collect()
}

/// An owner's leads needing attention by `before`, soonest first, after
/// the key `(attention_time, id)` of the previous page.
pub async fn due(
    conn: &impl ConnectionTrait,
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
        .all(conn)
        .await
        .map_err(db)?;
    rows.into_iter().map(lead_from_row).collect()
}

/// Where an overdue lead sits in the sweeper's order: by deadline, then
/// tenant and id, so a pass can go on after any lead it skipped.
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct OverdueRef {
    pub follow_up_deadline: i64,
    pub tenant_id: String,
    pub id: String,
}

/// Up to `limit` leads of any tenant whose follow-up deadline is before
/// `now`, after `after` in the sweeper's order. Only their keys: a lead
/// that cannot be read is the sweeper's to skip, not a stop for the others.
pub async fn overdue_after(
    conn: &impl ConnectionTrait,
    now: i64,
    after: Option<&OverdueRef>,
    limit: u64,
) -> Result<Vec<OverdueRef>, LeadError> {
    use lead::Column;
    let mut query = lead::Entity::find()
        .select_only()
        .column(Column::FollowUpDeadline)
        .column(Column::TenantId)
        .column(Column::Id)
        .filter(Column::FollowUpDeadline.lt(now));
    if let Some(after) = after {
        let (deadline, tenant) = (after.follow_up_deadline, after.tenant_id.as_str());
        query = query.filter(
            Condition::any()
                .add(Column::FollowUpDeadline.gt(deadline))
                .add(
                    Condition::all()
                        .add(Column::FollowUpDeadline.eq(deadline))
                        .add(
                            Condition::any().add(Column::TenantId.gt(tenant)).add(
                                Condition::all()
                                    .add(Column::TenantId.eq(tenant))
                                    .add(Column::Id.gt(after.id.as_str())),
                            ),
                        ),
                ),
        );
    }
    query
        .order_by_asc(Column::FollowUpDeadline)
        .order_by_asc(Column::TenantId)
        .order_by_asc(Column::Id)
        .limit(limit)
        .into_model::<OverdueRef>()
        .all(conn)
        .await
        .map_err(db)
}

/// The lead, locked for this transaction, or `None` if it is gone or
/// another transaction holds it (PostgreSQL `FOR UPDATE SKIP LOCKED`: the
/// sweeper passes over a lead being changed rather than wait or fail; on
/// SQLite the write transaction already excludes other writers).
pub async fn lock_unless_busy(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: &str,
) -> Result<Option<Lead>, LeadError> {
    use sea_orm::sea_query::{LockBehavior, LockType};
    lead::Entity::find()
        .filter(lead::Column::TenantId.eq(tenant))
        .filter(lead::Column::Id.eq(id))
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .one(conn)
        .await
        .map_err(db)?
        .map(lead_from_row)
        .transpose()
}

/// Leads per channel and status.
pub async fn channel_counts(
    conn: &impl ConnectionTrait,
    tenant: &str,
) -> Result<Vec<ChannelCount>, LeadError> {
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
        .all(conn)
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

// ---- duplicates

/// The columns of the duplicate keys, in the order of [`key_slot`].
const KEY_COLUMNS: [lead::Column; 3] = [
    lead::Column::PhoneKey,
    lead::Column::EmailKey,
    lead::Column::NameKey,
];

fn key_slot(key: &DuplicateKey) -> usize {
    match key {
        DuplicateKey::Phone(_) => 0,
        DuplicateKey::Email(_) => 1,
        DuplicateKey::CompanyContact(_) => 2,
    }
}

/// Every lead of `tenant` sharing a key with any of `keys`, looked up
/// [`KEY_CHUNK`] keys at a time.
pub async fn leads_sharing_keys(
    conn: &impl ConnectionTrait,
    tenant: &str,
    keys: &[&DuplicateKeys],
) -> Result<Vec<Lead>, LeadError> {
    let all: Vec<DuplicateKey> = keys.iter().flat_map(|k| k.in_precedence()).collect();
    let mut found = Vec::new();
    for chunk in all.chunks(KEY_CHUNK) {
        for row in leads_by_keys(conn, tenant, chunk).await? {
            found.push(lead_from_row(row)?);
        }
    }
    Ok(found)
}

/// The leads of `tenant` with one of `keys` in its column: one UNION ALL of
/// lookups, each answered by that column's unique index. An OR over the
/// three columns leaves the index to the planner, and PostgreSQL without
/// statistics on a growing table (a generic plan made while it was empty)
/// scanned the whole tenant instead.
async fn leads_by_keys(
    conn: &impl ConnectionTrait,
    tenant: &str,
    keys: &[DuplicateKey],
) -> Result<Vec<lead::Model>, LeadError> {
    let mut values: [Vec<&str>; 3] = Default::default();
    for key in keys {
        values[key_slot(key)].push(key.value());
    }
    let mut arms = KEY_COLUMNS
        .into_iter()
        .zip(values)
        .filter(|(_, values)| !values.is_empty())
        .map(|(column, values)| {
            lead::Entity::find()
                .filter(lead::Column::TenantId.eq(tenant))
                .filter(column.is_in(values))
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

// ---- interactions

pub async fn insert_interaction(
    conn: &impl ConnectionTrait,
    tenant: &str,
    interaction: &Interaction,
) -> Result<(), LeadError> {
    interaction::Entity::insert(interaction_to_row(tenant, interaction))
        .exec_without_returning(conn)
        .await
        .map_err(db)?;
    Ok(())
}

pub async fn load_interaction(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: &str,
) -> Result<Interaction, LeadError> {
    let row = interaction::Entity::find()
        .filter(interaction::Column::TenantId.eq(tenant))
        .filter(interaction::Column::Id.eq(id))
        .one(conn)
        .await
        .map_err(db)?;
    interaction_from_row(row.ok_or_else(|| LeadError::NotFound(id.to_owned()))?)
}

/// A page of a lead's interactions, newest first, after the id `after`.
pub async fn list_interactions(
    conn: &impl ConnectionTrait,
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
        .all(conn)
        .await
        .map_err(db)?;
    rows.into_iter().map(interaction_from_row).collect()
}

/// A lead's interactions counted by kind, and those at or after
/// `window_start`: one aggregate query.
pub async fn tally(
    conn: &impl ConnectionTrait,
    tenant: &str,
    lead_id: &str,
    window_start: i64,
) -> Result<Tally, LeadError> {
    #[derive(FromQueryResult)]
    struct Row {
        kind: String,
        total: i64,
        recent: i64,
    }
    use interaction::Column;
    use sea_orm::sea_query::{Expr, ExprTrait};
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

// ---- claims

/// How many claims fall in `window`.
pub async fn count_claims(
    conn: &impl ConnectionTrait,
    tenant: &str,
    window: &ClaimWindow,
) -> Result<u32, LeadError> {
    let claims = lead_claim::Entity::find()
        .filter(lead_claim::Column::TenantId.eq(tenant))
        .filter(lead_claim::Column::Claimer.eq(window.claimer.as_str()))
        .filter(lead_claim::Column::ClaimTime.gt(window.after))
        .count(conn)
        .await
        .map_err(db)?;
    Ok(u32::try_from(claims).unwrap_or(u32::MAX))
}

/// Serialises `claimer`'s claims until this transaction ends, so that
/// counting them and adding one is not raced by their other claims. On
/// PostgreSQL a transaction-scoped advisory lock on the claimer (a hash
/// collision only makes two claimers wait for each other); SQLite's write
/// transaction already excludes every other writer.
pub async fn lock_claimer(
    conn: &impl ConnectionTrait,
    tenant: &str,
    claimer: &str,
) -> Result<(), LeadError> {
    if conn.get_database_backend() != sea_orm::DatabaseBackend::Postgres {
        return Ok(());
    }
    let statement = sea_orm::Statement::from_sql_and_values(
        sea_orm::DatabaseBackend::Postgres,
        "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
        [format!("lead-claims/{tenant}/{claimer}").into()],
    );
    conn.execute_raw(statement).await.map_err(db)?;
    Ok(())
}

pub async fn record_claim(
    conn: &impl ConnectionTrait,
    tenant: &str,
    claimer: &str,
    lead_id: &str,
    time: i64,
) -> Result<(), LeadError> {
    lead_claim::Entity::insert(lead_claim::ActiveModel {
        id: Set(crm_store::new_id()),
        tenant_id: Set(tenant.to_owned()),
        claimer: Set(claimer.to_owned()),
        lead_id: Set(lead_id.to_owned()),
        claim_time: Set(time),
    })
    .exec_without_returning(conn)
    .await
    .map_err(db)?;
    Ok(())
}

// ---- the audit trail and the outbox

/// A page of the tenant's audit entries, optionally of one lead.
pub async fn audit_entries(
    conn: &impl ConnectionTrait,
    tenant: &str,
    lead_id: Option<&str>,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<AuditEntry>, LeadError> {
    crm_store::audit::list(conn, tenant, lead_id, after, limit)
        .await
        .map_err(db)
}

/// Appends audit entries and events in a transaction that is not a unit
/// of work's (an event consumer's, which commits its cursor with them).
pub async fn append(
    conn: &impl ConnectionTrait,
    tenant: &str,
    entries: Vec<AuditEntry>,
    events: Vec<crm_events::NewEvent>,
) -> Result<(), LeadError> {
    crm_events::append_many(conn, events).await.map_err(db)?;
    crm_store::audit::append(conn, tenant, entries)
        .await
        .map_err(db)
}
