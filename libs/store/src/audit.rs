//! The audit trail: who changed which record, when, and which fields from
//! what to what. Entries are appended in the transaction of the change.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect,
};
use serde::{Deserialize, Serialize};

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

/// One field's value before and after, in display form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub old: String,
    pub new: String,
}

/// An entry to append or one read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: String,
    pub subject_id: String,
    pub action: String,
    pub actor: String,
    pub time: i64,
    pub changes: Vec<FieldChange>,
    pub reason: String,
}

impl AuditEntry {
    /// A new entry with a fresh id.
    pub fn new(subject_id: &str, action: &str, actor: &str, time: i64) -> Self {
        AuditEntry {
            id: crate::new_id(),
            subject_id: subject_id.to_owned(),
            action: action.to_owned(),
            actor: actor.to_owned(),
            time,
            changes: Vec::new(),
            reason: String::new(),
        }
    }

    pub fn with_changes(mut self, changes: Vec<FieldChange>) -> Self {
        self.changes = changes;
        self
    }

    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }

    fn into_active(self, tenant: &str) -> Result<entity::ActiveModel, DbErr> {
        let changes =
            serde_json::to_string(&self.changes).map_err(|e| DbErr::Json(e.to_string()))?;
        Ok(entity::ActiveModel {
            id: sea_orm::Set(self.id),
            tenant_id: sea_orm::Set(tenant.to_owned()),
            subject_id: sea_orm::Set(self.subject_id),
            action: sea_orm::Set(self.action),
            actor: sea_orm::Set(self.actor),
            time: sea_orm::Set(self.time),
            changes: sea_orm::Set(changes),
            reason: sea_orm::Set(self.reason),
        })
    }
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
        rows.push(entry.into_active(tenant)?);
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
