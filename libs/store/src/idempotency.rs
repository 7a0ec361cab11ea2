//! Request ids (AIP-155): a creating call made again with the same
//! `request_id` returns the first result instead of acting twice.
//!
//! The service looks the id up and records it inside the transaction that
//! does the work, so the record and the effect commit together: a crash in
//! between leaves neither, and the retry does the work once.

use sea_orm::{ConnectionTrait, DbErr, EntityTrait};

pub mod entity {
    use sea_orm::entity::prelude::*;

    #[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
    #[sea_orm(table_name = "idempotency_keys")]
    pub struct Model {
        #[sea_orm(primary_key, auto_increment = false)]
        pub tenant_id: String,
        #[sea_orm(primary_key, auto_increment = false)]
        pub request_id: String,
        pub method: String,
        pub request_hash: String,
        /// What the first call produced, as JSON chosen by the service.
        pub outcome: String,
        pub create_time: i64,
    }

    #[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
    pub enum Relation {}

    impl ActiveModelBehavior for ActiveModel {}
}

/// Identifies one call for replay.
#[derive(Debug, Clone, Copy)]
pub struct RequestKey<'a> {
    pub tenant: &'a str,
    pub request_id: &'a str,
    pub method: &'a str,
    /// A digest of the request's content: the same id with other content is refused.
    pub request_hash: &'a str,
}

/// What an earlier call with the same request id left.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prior {
    /// No call with this id: do the work.
    None,
    /// The same call was made: return its outcome.
    Same(String),
    /// The id was used for a different request.
    Conflict,
}

/// Looks `key` up; call inside the transaction that will do the work.
pub async fn prior(conn: &impl ConnectionTrait, key: RequestKey<'_>) -> Result<Prior, DbErr> {
    let found = entity::Entity::find_by_id((key.tenant.to_owned(), key.request_id.to_owned()))
        .one(conn)
        .await?;
    Ok(match found {
        None => Prior::None,
        Some(row) if row.method == key.method && row.request_hash == key.request_hash => {
            Prior::Same(row.outcome)
        }
        Some(_) => Prior::Conflict,
    })
}

/// Records the outcome of `key`'s work, in the same transaction as the work.
/// A concurrent call with the same id fails here with a unique violation and
/// its transaction rolls back; the caller retries and finds [`Prior::Same`].
pub async fn record(
    conn: &impl ConnectionTrait,
    key: RequestKey<'_>,
    outcome: String,
    now: i64,
) -> Result<(), DbErr> {
    use sea_orm::Set;
    entity::Entity::insert(entity::ActiveModel {
        tenant_id: Set(key.tenant.to_owned()),
        request_id: Set(key.request_id.to_owned()),
        method: Set(key.method.to_owned()),
        request_hash: Set(key.request_hash.to_owned()),
        outcome: Set(outcome),
        create_time: Set(now),
    })
    .exec_without_returning(conn)
    .await
    .map(|_| ())
}
