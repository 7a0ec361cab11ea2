//! The audit trail: who changed which record, when, and which fields from
//! what to what. Entries are appended in the transaction of the change.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};

pub mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "audit_entries")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub id: String,
        pub tenant_id: String,
        pub subject_id: String,
        pub action: String,
        pub actor: String,
        pub time: i64,
        /// JSON array of [`super::FieldChange`].
        pub changes: String,
        pub reason: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

pub use crm_types::{AuditEntry, FieldChange};

fn into_active(entry: AuditEntry, tenant: &str) -> Result<entity::ActiveModel, DbErr> {
    let changes = serde_json::to_string(&entry.changes).map_err(|e| DbErr::Json(e.to_string()))?;
    Ok(entity::ActiveModel {
        id: sea_orm::Set(entry.id),
        tenant_id: sea_orm::Set(tenant.to_owned()),
        subject_id: sea_orm::Set(entry.subject_id),
        action: sea_orm::Set(entry.action),
        actor: sea_orm::Set(entry.actor),
        time: sea_orm::Set(entry.time),
        changes: sea_orm::Set(changes),
        reason: sea_orm::Set(entry.reason),
    })
}

/// Appends entries for `tenant`, in as few statements as the backend allows.
pub async fn append(
    conn: &impl ConnectionTrait,
    tenant: &str,
    entries: Vec<AuditEntry>,
) -> Result<(), DbErr> {
    // Bounded statement size: a 10,000-row import must not become one
    // statement with 80,000 bind parameters (SQLite allows 32,766).
    const CHUNK: usize = 500;
    let mut rows = Vec::with_capacity(entries.len().min(CHUNK));
    for entry in entries {
        rows.push(into_active(entry, tenant)?);
        if rows.len() == CHUNK {
            entity::Entity::insert_many(std::mem::take(&mut rows))
                .exec(conn)
                .await?;
        }
    }
    if !rows.is_empty() {
        entity::Entity::insert_many(rows).exec(conn).await?;
    }
    Ok(())
}

/// A page of `tenant`'s entries, newest first, optionally about one subject,
/// starting after the entry id `after` of the previous page.
pub async fn list(
    conn: &impl ConnectionTrait,
    tenant: &str,
    subject_id: Option<&str>,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<AuditEntry>, DbErr> {
    use entity::Column;
    let mut query = entity::Entity::find().filter(Column::TenantId.eq(tenant));
    if let Some(subject) = subject_id {
        query = query.filter(Column::SubjectId.eq(subject));
    }
    if let Some(after) = after {
        query = query.filter(Column::Id.lt(after));
    }
    let rows = query
        .order_by_desc(Column::Id)
        .limit(limit)
        .all(conn)
        .await?;
    rows.into_iter()
        .map(|row| {
            let changes =
                serde_json::from_str(&row.changes).map_err(|e| DbErr::Json(e.to_string()))?;
            Ok(AuditEntry {
                id: row.id,
                subject_id: row.subject_id,
                action: row.action,
                actor: row.actor,
                time: row.time,
                changes,
                reason: row.reason,
            })
        })
        .collect()
}
