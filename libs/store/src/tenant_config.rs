//! A tenant's own configuration of a service (scoring weights, stage gates,
//! ...): one versioned JSON document per tenant, replaced whole with an
//! etag, every replacement in the audit trail. Tenants that never set one
//! get the operator's defaults, at version 0.

use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter};
use serde::{Serialize, de::DeserializeOwned};

use crate::audit::{self, AuditEntry, FieldChange};

pub mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "tenant_configs")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        pub config: String,
        pub version: i64,
        pub update_time: i64,
        pub updater: String,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// A configuration as stored; version 0 is the operator's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Stored<T> {
    pub config: T,
    pub version: i64,
    pub update_time: Option<i64>,
    pub updater: String,
}

impl<T> Stored<T> {
    pub fn etag(&self) -> String {
        self.version.to_string()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the configuration was changed since etag {0} was read")]
    Stale(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

fn json_err(e: serde_json::Error) -> DbErr {
    DbErr::Json(e.to_string())
}

/// The tenant's configuration, or `defaults` at version 0.
pub async fn get<T: DeserializeOwned + Clone>(
    conn: &impl ConnectionTrait,
    tenant: &str,
    defaults: &T,
) -> Result<Stored<T>, DbErr> {
    let row = entity::Entity::find_by_id(tenant.to_owned())
        .one(conn)
        .await?;
    Ok(match row {
        Some(row) => Stored {
            config: serde_json::from_str(&row.config).map_err(json_err)?,
            version: row.version,
            update_time: Some(row.update_time),
            updater: row.updater,
        },
        None => Stored {
            config: defaults.clone(),
            version: 0,
            update_time: None,
            updater: String::new(),
        },
    })
}

/// Replaces the tenant's configuration if `etag` (when given) is current,
/// recording the old and new documents as `subject` in the audit trail.
#[allow(clippy::too_many_arguments)]
pub async fn replace<T: Serialize + DeserializeOwned + Clone>(
    conn: &impl ConnectionTrait,
    tenant: &str,
    subject: &str,
    config: &T,
    defaults: &T,
    etag: &str,
    actor: &str,
    now: i64,
) -> Result<Stored<T>, ConfigError> {
    let current = get(conn, tenant, defaults).await?;
    if !etag.is_empty() && etag != current.etag() {
        return Err(ConfigError::Stale(etag.to_owned()));
    }
    let json = serde_json::to_string(config).map_err(json_err)?;
    let row = entity::ActiveModel {
        tenant_id: Set(tenant.to_owned()),
        config: Set(json.clone()),
        version: Set(current.version + 1),
        update_time: Set(now),
        updater: Set(actor.to_owned()),
    };
    if current.version == 0 {
        entity::Entity::insert(row)
            .exec_without_returning(conn)
            .await?;
    } else {
        let done = entity::Entity::update_many()
            .set(row)
            .filter(entity::Column::TenantId.eq(tenant))
            .filter(entity::Column::Version.eq(current.version))
            .exec(conn)
            .await?;
        if done.rows_affected == 0 {
            return Err(ConfigError::Stale(etag.to_owned()));
        }
    }
    let old = serde_json::to_string(&current.config).map_err(json_err)?;
    let entry =
        AuditEntry::new(subject, "config.replaced", actor, now).with_changes(vec![FieldChange {
            field: "config".into(),
            old,
            new: json,
        }]);
    audit::append(conn, tenant, vec![entry]).await?;
    Ok(Stored {
        config: config.clone(),
        version: current.version + 1,
        update_time: Some(now),
        updater: actor.to_owned(),
    })
}
