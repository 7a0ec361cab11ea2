//! Numbering committed events, and deleting expired ones.
//!
//! Why number after commit: sequence numbers handed out inside writers'
//! transactions become visible in commit order, not number order, so a
//! subscriber reading `sequence > cursor` could pass number 7 before the
//! transaction holding number 6 commits, and never see it. Here one
//! sequencer per database numbers rows that are already committed, in one
//! short transaction that also moves the head: every number up to the head
//! is visible the moment the head is.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::Duration,
};

use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection,
    DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Statement,
};

use crate::{
    entity::{event_cursor, outbox_event, outbox_head},
    local::LOCAL,
};

/// Rows numbered per transaction: keeps the write lock short under a burst.
const NUMBER_BATCH: u64 = 1000;
/// Rows deleted per transaction when pruning.
const PRUNE_BATCH: i64 = 5000;
const HEAD_ID: i32 = 1;

/// The head row as it is now.
pub(crate) async fn read_head(conn: &impl ConnectionTrait) -> Result<outbox_head::Model, DbErr> {
    outbox_head::Entity::find_by_id(HEAD_ID)
        .one(conn)
        .await?
        .ok_or_else(|| {
            DbErr::RecordNotFound(
                "outbox_head has no row: were crm_events::migrations() applied?".into(),
            )
        })
}

/// The head row, locked until the transaction ends. On PostgreSQL the row
/// lock makes sequencers of several processes take turns; on SQLite the
/// write transaction (`BEGIN IMMEDIATE`) already does.
async fn lock_head(conn: &impl ConnectionTrait) -> Result<outbox_head::Model, DbErr> {
    outbox_head::Entity::find_by_id(HEAD_ID)
        .lock_exclusive()
        .one(conn)
        .await?
        .ok_or_else(|| DbErr::RecordNotFound("outbox_head has no row".into()))
}

/// Most unnumbered events counted for the outbox lag: the count stays one
/// bounded read however far numbering falls behind.
const LAG_COUNT_CAP: u64 = 10_000;

/// Numbers every committed, unnumbered event in creation order and returns
/// the head sequence afterwards. `unnumbered` is set to the events found
/// waiting before numbering (at most [`LAG_COUNT_CAP`]): the outbox lag.
pub(crate) async fn number(db: &DatabaseConnection, unnumbered: &AtomicU64) -> Result<i64, DbErr> {
    // Most ticks find nothing: look before taking the write lock.
    let backend = db.get_database_backend();
    let waiting = db
        .query_one_raw(Statement::from_string(
            backend,
            format!(
                r#"SELECT COUNT(*) AS waiting FROM (SELECT 1 FROM outbox_events
                   WHERE "sequence" IS NULL LIMIT {LAG_COUNT_CAP}) AS w"#
            ),
        ))
        .await?
        .map(|row| row.try_get::<i64>("", "waiting"))
        .transpose()?
        .unwrap_or(0);
    unnumbered.store(u64::try_from(waiting).unwrap_or(0), Ordering::Relaxed);
    if waiting == 0 {
        return Ok(read_head(db).await?.last_sequence);
    }
    loop {
        let txn = crm_store::begin_write(db).await?;
        let head = lock_head(&*txn).await?;
        // One statement numbers a batch: ROW_NUMBER over the creation order,
        // offset by the head, bound as a parameter so that the text (and
        // with it the prepared statement) is the same every time.
        let backend = txn.get_database_backend();
        let offset = match backend {
            DbBackend::Postgres => "$1",
            _ => "?",
        };
        let sql = format!(
            r#"UPDATE outbox_events AS o SET "sequence" = n.seq
               FROM (SELECT id, {offset} + ROW_NUMBER() OVER (ORDER BY create_time, id) AS seq
                     FROM outbox_events WHERE "sequence" IS NULL
                     ORDER BY create_time, id LIMIT {NUMBER_BATCH}) AS n
               WHERE o.id = n.id"#
        );
        let numbered = txn
            .execute_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [head.last_sequence.into()],
            ))
            .await?
            .rows_affected();
        let last = head.last_sequence + i64::try_from(numbered).unwrap_or(i64::MAX);
        if numbered > 0 {
            let mut row: outbox_head::ActiveModel = head.into();
            row.last_sequence = Set(last);
            row.update(&*txn).await?;
        }
        txn.commit().await?;
        if numbered < NUMBER_BATCH {
            return Ok(last);
        }
    }
}

/// Deletes numbered events created before `now - retention` and raises
/// `oldest_retained` past them; returns how many were deleted.
///
/// Only a prefix of the sequence is ever deleted: the stream must never
/// have a hole that a cursor could step over unnoticed. The prefix ends
/// before the first event that is still young, so an event may outlive the
/// retention a little (when one created later was numbered before it),
/// never the other way round.
pub(crate) async fn prune(
    db: &DatabaseConnection,
    retention: Duration,
    now: i64,
) -> Result<u64, DbErr> {
    let retention = i64::try_from(retention.as_micros()).unwrap_or(i64::MAX);
    let cutoff = now.saturating_sub(retention);
    let mut deleted = 0;
    loop {
        let txn = crm_store::begin_write(db).await?;
        let head = lock_head(&*txn).await?;
        // Walks the sequence index from the oldest kept event: the cost is
        // that of the rows about to be deleted.
        let first_young = outbox_event::Entity::find()
            .select_only()
            .column(outbox_event::Column::Sequence)
            .filter(outbox_event::Column::Sequence.gte(head.oldest_retained))
            .filter(outbox_event::Column::CreateTime.gte(cutoff))
            .order_by_asc(outbox_event::Column::Sequence)
            .limit(1)
            .into_tuple::<Option<i64>>()
            .one(&*txn)
            .await?
            .flatten();
        let expired = first_young.map_or(head.last_sequence, |s| s - 1);
        // A local consumer reads this outbox itself: what it has not passed
        // yet stays, however old (it parks failing events, so it is not
        // held up for long by any one of them).
        let held = event_cursor::Entity::find()
            .select_only()
            .column_as(event_cursor::Column::Sequence.min(), "sequence")
            .filter(event_cursor::Column::Source.eq(LOCAL))
            .into_tuple::<Option<i64>>()
            .one(&*txn)
            .await?
            .flatten();
        if let Some(held) = held
            && held < expired
            && held >= head.oldest_retained
        {
            tracing::warn!(
                local_cursor = held,
                expired_through = expired,
                "a local event consumer's cursor holds expired events back from pruning"
            );
        }
        let through = expired
            .min(held.unwrap_or(i64::MAX))
            .min(head.oldest_retained - 1 + PRUNE_BATCH);
        if through < head.oldest_retained {
            txn.commit().await?;
            return Ok(deleted);
        }
        let done = outbox_event::Entity::delete_many()
            .filter(outbox_event::Column::Sequence.lte(through))
            .exec(&*txn)
            .await?
            .rows_affected;
        let mut row: outbox_head::ActiveModel = head.into();
        row.oldest_retained = Set(through + 1);
        row.update(&*txn).await?;
        txn.commit().await?;
        deleted += done;
    }
}
