//! Persistence of tickets, entitlements, engineers, comments, accounts,
//! purchases, retention tasks and the full-text index: the only place SQL
//! lives. Every function runs on the connection it is given (the use
//! case's transaction, or the pool for a read), filters by tenant, and
//! decides nothing.

mod entities;
mod migration;

use std::collections::HashMap;

use crm_store::uow::RequestIdReused;
use sea_orm::sea_query::{Expr, LockBehavior, LockType};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbBackend, DbErr, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, QuerySelect, Statement,
};

use crate::domain::{
    Account, Candidate, Comment, CommentVisibility, ComplaintWindows, Engineer, Entitlement,
    Origin, RetentionTask, Solution, Status, Ticket, TicketError, TicketFilter, TicketsConfig,
    Visibility, resource, search_text,
};
use entities::{account, comment, engineer, entitlement, purchase, retention, skill, ticket};

pub use migration::Migrator;

impl From<DbErr> for TicketError {
    fn from(err: DbErr) -> Self {
        TicketError::Store(Box::new(err))
    }
}

impl From<RequestIdReused> for TicketError {
    fn from(_: RequestIdReused) -> Self {
        TicketError::RequestIdReused
    }
}

impl crm_store::TxError for TicketError {
    fn is_unique_violation(&self) -> bool {
        matches!(self, TicketError::Store(e) if e.downcast_ref::<DbErr>().and_then(crm_store::unique_violation).is_some())
    }
}

fn json_err(e: serde_json::Error) -> TicketError {
    TicketError::Store(Box::new(DbErr::Json(e.to_string())))
}

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, TicketError> {
    serde_json::to_string(v).map_err(json_err)
}

fn from_json<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, TicketError> {
    serde_json::from_str(s).map_err(json_err)
}

// ---- configuration

pub type StoredConfig = crm_store::tenant_config::Stored<TicketsConfig>;

pub async fn config(
    conn: &impl ConnectionTrait,
    tenant: &str,
    defaults: &TicketsConfig,
) -> Result<StoredConfig, TicketError> {
    Ok(crm_store::tenant_config::get(conn, tenant, defaults).await?)
}

// ---- tickets

fn ticket_row(t: &Ticket) -> Result<ticket::ActiveModel, TicketError> {
    Ok(ticket::ActiveModel {
        id: Set(t.id.clone()),
        tenant_id: Set(t.tenant.clone()),
        version: Set(t.version),
        account_id: Set(t.account_id.clone()),
        assignee_id: Set(t.assignee_id.clone().unwrap_or_default()),
        status: Set(t.status.as_str().to_owned()),
        priority: Set(t.priority.rank()),
        category: Set(t.category.clone()),
        vip: Set(t.vip()),
        complaint: Set(t.complaint),
        breached: Set(t.sla.breached()),
        account_manager_id: Set(t.account_manager_id.clone()),
        next_check: Set(t.sla.next_check),
        create_time: Set(t.create_time),
        update_time: Set(t.update_time),
        body: Set(to_json(t)?),
    })
}

fn ticket_of(row: ticket::Model) -> Result<Ticket, TicketError> {
    let mut t: Ticket = from_json(&row.body)?;
    t.version = row.version;
    // The column rules: an account's reassignment moves it alone
    // (`reassign_account_tickets`).
    t.account_manager_id = row.account_manager_id;
    Ok(t)
}

pub async fn insert_ticket(conn: &impl ConnectionTrait, t: &Ticket) -> Result<(), TicketError> {
    ticket::Entity::insert(ticket_row(t)?).exec(conn).await?;
    Ok(())
}

/// Writes `t` if the stored row is still at `read_version`; else
/// [`TicketError::Stale`].
pub async fn save_ticket(
    conn: &impl ConnectionTrait,
    t: &Ticket,
    read_version: i64,
) -> Result<(), TicketError> {
    let done = ticket::Entity::update_many()
        .set(ticket_row(t)?)
        .filter(ticket::Column::TenantId.eq(&t.tenant))
        .filter(ticket::Column::Id.eq(&t.id))
        .filter(ticket::Column::Version.eq(read_version))
        .exec(conn)
        .await?;
    if crm_store::uow::saved(&done) {
        Ok(())
    } else {
        Err(TicketError::Stale)
    }
}

fn by_id(tenant: &str, id: &str) -> sea_orm::Select<ticket::Entity> {
    ticket::Entity::find()
        .filter(ticket::Column::TenantId.eq(tenant))
        .filter(ticket::Column::Id.eq(id))
}

pub async fn load_ticket(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: &str,
) -> Result<Ticket, TicketError> {
    by_id(tenant, id)
        .one(conn)
        .await?
        .map(ticket_of)
        .transpose()?
        .ok_or_else(|| TicketError::not_found(resource::TICKET, id))
}

/// The ticket locked for this transaction (PostgreSQL `FOR UPDATE`; on
/// SQLite the write transaction already excludes other writers).
pub async fn load_ticket_for_update(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: &str,
) -> Result<Ticket, TicketError> {
    by_id(tenant, id)
        .lock(LockType::Update)
        .one(conn)
        .await?
        .map(ticket_of)
        .transpose()?
        .ok_or_else(|| TicketError::not_found(resource::TICKET, id))
}

/// The ticket locked, or `None` if gone or held by another transaction
/// (PostgreSQL `FOR UPDATE SKIP LOCKED`: the sweeper passes over it).
pub async fn lock_ticket_unless_busy(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: &str,
) -> Result<Option<Ticket>, TicketError> {
    by_id(tenant, id)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .one(conn)
        .await?
        .map(ticket_of)
        .transpose()
}

pub async fn list_tickets(
    conn: &impl ConnectionTrait,
    tenant: &str,
    visibility: &Visibility,
    filter: &TicketFilter,
    after: Option<&String>,
    limit: u64,
) -> Result<Vec<Ticket>, TicketError> {
    use ticket::Column as C;
    let mut q = ticket::Entity::find().filter(C::TenantId.eq(tenant));
    match visibility {
        Visibility::Tenant => {}
        Visibility::Engineer(me) => {
            q = q.filter(
                Condition::any()
                    .add(C::AssigneeId.eq(me.as_str()))
                    .add(C::Status.eq(Status::New.as_str())),
            );
        }
        Visibility::AccountManager(me) => q = q.filter(C::AccountManagerId.eq(me.as_str())),
    }
    if let Some(s) = filter.status {
        q = q.filter(C::Status.eq(s.as_str()));
    }
    if let Some(a) = &filter.assignee_id {
        q = q.filter(C::AssigneeId.eq(a.as_str()));
    }
    if let Some(a) = &filter.account_id {
        q = q.filter(C::AccountId.eq(a.as_str()));
    }
    if let Some(p) = filter.priority {
        q = q.filter(C::Priority.eq(p.rank()));
    }
    if filter.breached {
        q = q.filter(C::Breached.eq(true));
    }
    if let Some(after) = after {
        q = q.filter(C::Id.lt(after.as_str()));
    }
    q.order_by_desc(C::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(ticket_of)
        .collect()
}

/// A ticket the sweeper has to look at.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DueRef {
    pub tenant_id: String,
    pub id: String,
}

/// Up to `batch` tickets of any tenant whose next SLA check is due at
/// `now`, after `after` in (tenant, id) order.
pub async fn due_tickets(
    conn: &impl ConnectionTrait,
    now: i64,
    after: Option<&DueRef>,
    batch: u64,
) -> Result<Vec<DueRef>, TicketError> {
    use ticket::Column as C;
    let after = after.map(|a| (a.tenant_id.as_str(), a.id.as_str()));
    let keys =
        due_keys::<ticket::Entity>(conn, C::NextCheck, [C::TenantId, C::Id], now, after, batch);
    Ok(keys
        .await?
        .into_iter()
        .map(|(tenant_id, id)| DueRef { tenant_id, id })
        .collect())
}

/// Up to `batch` (tenant, key) pairs of any tenant whose `due` time has
/// come at `now`, after `after` in that order: a sweeper's next batch, by
/// the index on `due`.
async fn due_keys<E: EntityTrait>(
    conn: &impl ConnectionTrait,
    due: E::Column,
    [tenant, key]: [E::Column; 2],
    now: i64,
    after: Option<(&str, &str)>,
    batch: u64,
) -> Result<Vec<(String, String)>, TicketError> {
    let mut q = E::find()
        .select_only()
        .column(tenant)
        .column(key)
        .filter(due.lte(now));
    if let Some((after_tenant, after_key)) = after {
        q = q.filter(
            Condition::any().add(tenant.gt(after_tenant)).add(
                Condition::all()
                    .add(tenant.eq(after_tenant))
                    .add(key.gt(after_key)),
            ),
        );
    }
    Ok(q.order_by_asc(tenant)
        .order_by_asc(key)
        .limit(batch)
        .into_tuple::<(String, String)>()
        .all(conn)
        .await?)
}

/// Queued (new) tickets of these categories, VIP accounts first, then by
/// priority and age; at most `limit`.
pub async fn queued(
    conn: &impl ConnectionTrait,
    tenant: &str,
    categories: &[String],
    limit: u64,
) -> Result<Vec<Ticket>, TicketError> {
    use ticket::Column as C;
    if categories.is_empty() {
        return Ok(Vec::new());
    }
    ticket::Entity::find()
        .filter(C::TenantId.eq(tenant))
        .filter(C::Status.eq(Status::New.as_str()))
        .filter(C::Category.is_in(categories.iter().map(String::as_str)))
        .order_by_desc(C::Vip)
        .order_by_asc(C::Priority)
        .order_by_asc(C::Id)
        .limit(limit)
        .lock(LockType::Update)
        .all(conn)
        .await?
        .into_iter()
        .map(ticket_of)
        .collect()
}

/// The open load (assigned, not resolved) of each of `ids`.
pub async fn open_loads(
    conn: &impl ConnectionTrait,
    tenant: &str,
    ids: &[String],
) -> Result<HashMap<String, u64>, TicketError> {
    use ticket::Column as C;
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    #[derive(FromQueryResult)]
    struct Row {
        assignee_id: String,
        open: i64,
    }
    let rows = ticket::Entity::find()
        .select_only()
        .column(C::AssigneeId)
        .column_as(C::Id.count(), "open")
        .filter(C::TenantId.eq(tenant))
        .filter(C::AssigneeId.is_in(ids.iter().map(String::as_str)))
        .filter(C::Status.is_in(Status::OPEN_LOAD.iter().map(|s| s.as_str())))
        .group_by(C::AssigneeId)
        .into_model::<Row>()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(|r| (r.assignee_id, u64::try_from(r.open).unwrap_or_default()))
        .collect())
}

/// The complaint windows of an account at `now`, `window` micros each.
pub async fn complaint_windows(
    conn: &impl ConnectionTrait,
    tenant: &str,
    account_id: &str,
    now: i64,
    window: i64,
) -> Result<ComplaintWindows, TicketError> {
    use ticket::Column as C;
    async fn count(
        conn: &impl ConnectionTrait,
        tenant: &str,
        account_id: &str,
        from: i64,
        to: i64,
        complaints: bool,
    ) -> Result<u64, TicketError> {
        use sea_orm::PaginatorTrait;
        let mut q = ticket::Entity::find()
            .filter(C::TenantId.eq(tenant))
            .filter(C::AccountId.eq(account_id))
            .filter(C::CreateTime.gt(from))
            .filter(C::CreateTime.lte(to));
        if complaints {
            q = q.filter(C::Complaint.eq(true));
        }
        Ok(q.count(conn).await?)
    }
    let (mid, start) = (now - window, now - 2 * window);
    Ok(ComplaintWindows {
        current_tickets: count(conn, tenant, account_id, mid, now, false).await?,
        current_complaints: count(conn, tenant, account_id, mid, now, true).await?,
        previous_tickets: count(conn, tenant, account_id, start, mid, false).await?,
        previous_complaints: count(conn, tenant, account_id, start, mid, true).await?,
    })
}

// ---- the full-text index

/// The FTS5 key of a tenant: one token, whatever the tenant id holds.
fn tenant_key(tenant: &str) -> String {
    let hex: String = tenant.bytes().map(|b| format!("{b:02x}")).collect();
    format!("t{hex}")
}

/// Indexes a resolved ticket's subject and description. A ticket is
/// indexed once per resolution: reopening withdraws it first
/// ([`unindex_ticket`]), so no delete is needed here. On SQLite the FTS5
/// rowid it got is kept by the ticket's key, for that withdrawal.
pub async fn index_ticket(conn: &impl ConnectionTrait, t: &Ticket) -> Result<(), TicketError> {
    let doc = search_text(&t.subject, &t.description);
    let backend = conn.get_database_backend();
    match backend {
        DbBackend::Postgres => {
            conn.execute_raw(Statement::from_sql_and_values(
                backend,
                "INSERT INTO ticket_search (ticket_id, tenant_id, doc) VALUES ($1, $2, to_tsvector('simple', $3))",
                [t.id.clone().into(), t.tenant.clone().into(), doc.into()],
            ))
            .await?;
        }
        _ => {
            conn.execute_raw(Statement::from_sql_and_values(
                backend,
                "INSERT INTO ticket_search (tenant_key, doc, ticket_id) VALUES (?, ?, ?)",
                [
                    tenant_key(&t.tenant).into(),
                    doc.into(),
                    t.id.clone().into(),
                ],
            ))
            .await?;
            // The same connection (the use case's transaction): the rowid
            // the insert above was given.
            conn.execute_raw(Statement::from_sql_and_values(
                backend,
                "INSERT OR REPLACE INTO ticket_search_rows (tenant_id, ticket_id, search_rowid)
                 VALUES (?, ?, last_insert_rowid())",
                [t.tenant.clone().into(), t.id.clone().into()],
            ))
            .await?;
        }
    }
    Ok(())
}

/// Withdraws a ticket from the index (on reopen): on PostgreSQL by its
/// key, on SQLite by the FTS5 rowid kept for it, an indexed delete either
/// way.
pub async fn unindex_ticket(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: &str,
) -> Result<(), TicketError> {
    let backend = conn.get_database_backend();
    let statements: &[&str] = match backend {
        DbBackend::Postgres => &["DELETE FROM ticket_search WHERE tenant_id = $1 AND ticket_id = $2"],
        _ => &[
            "DELETE FROM ticket_search WHERE rowid =
                (SELECT search_rowid FROM ticket_search_rows WHERE tenant_id = ? AND ticket_id = ?)",
            "DELETE FROM ticket_search_rows WHERE tenant_id = ? AND ticket_id = ?",
        ],
    };
    for sql in statements {
        conn.execute_raw(Statement::from_sql_and_values(
            backend,
            *sql,
            [tenant.into(), id.into()],
        ))
        .await?;
    }
    Ok(())
}

/// The ids of the resolved tickets of `tenant` most similar to `terms`,
/// best first, leaving out `exclude`. Documents holding every term are
/// matched first; only when there is none, those holding any of them.
/// Either way at most `candidates` matching documents are ranked (on
/// SQLite the newest; on PostgreSQL those the index yields first), so a
/// query of common words costs a bounded ranking, not one of the whole
/// history.
pub async fn search(
    conn: &impl ConnectionTrait,
    tenant: &str,
    terms: &[String],
    exclude: &str,
    limit: u64,
    candidates: u64,
) -> Result<Vec<String>, TicketError> {
    if terms.is_empty() {
        return Ok(Vec::new());
    }
    let all = ranked(conn, tenant, terms, true, exclude, limit, candidates).await?;
    if !all.is_empty() || terms.len() == 1 {
        return Ok(all);
    }
    ranked(conn, tenant, terms, false, exclude, limit, candidates).await
}

/// One full-text query: every term (`every`) or any of them.
async fn ranked(
    conn: &impl ConnectionTrait,
    tenant: &str,
    terms: &[String],
    every: bool,
    exclude: &str,
    limit: u64,
    candidates: u64,
) -> Result<Vec<String>, TicketError> {
    let backend = conn.get_database_backend();
    let limit = i64::try_from(limit).unwrap_or(20);
    let candidates = i64::try_from(candidates.max(1)).unwrap_or(i64::MAX);
    let stmt = match backend {
        DbBackend::Postgres => {
            // Terms hold letters and digits only (search_terms).
            let query = terms.join(if every { " & " } else { " | " });
            // The matches are a materialized CTE: PostgreSQL plans it for
            // all its rows (the GIN index unless most rows match) and runs
            // it only as far as the candidate limit pulls. A plain subquery
            // with the limit inside let the planner hope a sequential scan
            // would meet enough matches early, and for an AND of common
            // words it read a third of the table.
            Statement::from_sql_and_values(
                backend,
                "WITH matched AS MATERIALIZED (
                     SELECT ticket_id, doc FROM ticket_search
                     WHERE tenant_id = $1 AND doc @@ to_tsquery('simple', $2) AND ticket_id <> $3)
                 SELECT c.ticket_id FROM (SELECT ticket_id, doc FROM matched LIMIT $5) AS c
                 ORDER BY ts_rank(c.doc, to_tsquery('simple', $2)) DESC, c.ticket_id DESC LIMIT $4",
                [
                    tenant.into(),
                    query.into(),
                    exclude.into(),
                    limit.into(),
                    candidates.into(),
                ],
            )
        }
        _ => {
            // Terms hold letters and digits only; quoted all the same.
            let terms = terms
                .iter()
                .map(|t| format!("\"{}\"", t.replace('"', "")))
                .collect::<Vec<_>>()
                .join(if every { " AND " } else { " OR " });
            let query = format!("tenant_key : {} AND doc : ({terms})", tenant_key(tenant));
            // The candidates: the matches from the newest down to the
            // `candidates`-th, a rowid range FTS5 walks without ranking.
            Statement::from_sql_and_values(
                backend,
                "SELECT ticket_id FROM ticket_search
                 WHERE ticket_search MATCH ? AND ticket_id <> ?
                   AND rowid >= coalesce((SELECT rowid FROM ticket_search WHERE ticket_search MATCH ?
                                          ORDER BY rowid DESC LIMIT 1 OFFSET ?), 0)
                 ORDER BY bm25(ticket_search, 0.0, 1.0), ticket_id DESC LIMIT ?",
                [
                    query.clone().into(),
                    exclude.into(),
                    query.into(),
                    (candidates - 1).into(),
                    limit.into(),
                ],
            )
        }
    };
    let rows = conn.query_all_raw(stmt).await?;
    rows.into_iter()
        .map(|r| {
            r.try_get::<String>("", "ticket_id")
                .map_err(TicketError::from)
        })
        .collect()
}

/// The tickets named, in the order given (missing ones left out).
pub async fn tickets_by_ids(
    conn: &impl ConnectionTrait,
    tenant: &str,
    ids: &[String],
) -> Result<Vec<Ticket>, TicketError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut found: HashMap<String, Ticket> = ticket::Entity::find()
        .filter(ticket::Column::TenantId.eq(tenant))
        .filter(ticket::Column::Id.is_in(ids.iter().map(String::as_str)))
        .all(conn)
        .await?
        .into_iter()
        .map(|r| ticket_of(r).map(|t| (t.id.clone(), t)))
        .collect::<Result<_, _>>()?;
    Ok(ids.iter().filter_map(|id| found.remove(id)).collect())
}

pub fn solution(t: &Ticket) -> Solution {
    Solution {
        ticket_id: t.id.clone(),
        subject: t.subject.clone(),
        category: t.category.clone(),
        resolution: t.resolution.clone(),
        resolve_time: t.resolve_time,
    }
}

// ---- entitlements

fn entitlement_of(row: entitlement::Model) -> Result<Entitlement, TicketError> {
    from_json(&row.body)
}

pub async fn insert_entitlement(
    conn: &impl ConnectionTrait,
    e: &Entitlement,
) -> Result<(), TicketError> {
    let source_key = match e.origin {
        Origin::ProjectCompleted => format!("project:{}", e.project_id),
        Origin::Manual => e.id.clone(),
    };
    entitlement::Entity::insert(entitlement::ActiveModel {
        id: Set(e.id.clone()),
        tenant_id: Set(e.tenant.clone()),
        account_id: Set(e.account_id.clone()),
        source_key: Set(source_key),
        create_time: Set(e.create_time),
        body: Set(to_json(e)?),
    })
    .exec(conn)
    .await?;
    Ok(())
}

pub async fn entitlement_of_project(
    conn: &impl ConnectionTrait,
    tenant: &str,
    project_id: &str,
) -> Result<Option<Entitlement>, TicketError> {
    entitlement::Entity::find()
        .filter(entitlement::Column::TenantId.eq(tenant))
        .filter(entitlement::Column::SourceKey.eq(format!("project:{project_id}")))
        .one(conn)
        .await?
        .map(entitlement_of)
        .transpose()
}

pub async fn load_entitlement(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: &str,
) -> Result<Entitlement, TicketError> {
    entitlement::Entity::find()
        .filter(entitlement::Column::TenantId.eq(tenant))
        .filter(entitlement::Column::Id.eq(id))
        .one(conn)
        .await?
        .map(entitlement_of)
        .transpose()?
        .ok_or_else(|| TicketError::not_found(resource::ENTITLEMENT, id))
}

/// The most entitlements of one account considered for a ticket.
pub const MAX_ACCOUNT_ENTITLEMENTS: u64 = 100;

pub async fn list_entitlements(
    conn: &impl ConnectionTrait,
    tenant: &str,
    account_id: Option<&str>,
    after: Option<&String>,
    limit: u64,
) -> Result<Vec<Entitlement>, TicketError> {
    use entitlement::Column as C;
    let mut q = entitlement::Entity::find().filter(C::TenantId.eq(tenant));
    if let Some(a) = account_id {
        q = q.filter(C::AccountId.eq(a));
    }
    if let Some(after) = after {
        q = q.filter(C::Id.lt(after.as_str()));
    }
    q.order_by_desc(C::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(entitlement_of)
        .collect()
}

// ---- engineers

fn engineer_of(row: engineer::Model) -> Result<Engineer, TicketError> {
    let mut e: Engineer = from_json(&row.body)?;
    e.version = row.version;
    Ok(e)
}

pub async fn load_engineer(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: &str,
) -> Result<Option<Engineer>, TicketError> {
    engineer::Entity::find()
        .filter(engineer::Column::TenantId.eq(tenant))
        .filter(engineer::Column::Id.eq(id))
        .lock(LockType::Update)
        .one(conn)
        .await?
        .map(engineer_of)
        .transpose()
}

/// Writes an engineer (new at version 1, else at `read_version`) and its
/// skills.
pub async fn save_engineer(
    conn: &impl ConnectionTrait,
    e: &Engineer,
    read_version: Option<i64>,
) -> Result<(), TicketError> {
    let row = engineer::ActiveModel {
        tenant_id: Set(e.tenant.clone()),
        id: Set(e.id.clone()),
        version: Set(e.version),
        on_duty: Set(e.on_duty),
        last_assigned_time: Set(e.last_assigned_time),
        body: Set(to_json(e)?),
    };
    match read_version {
        None => {
            engineer::Entity::insert(row).exec(conn).await?;
        }
        Some(v) => {
            let done = engineer::Entity::update_many()
                .set(row)
                .filter(engineer::Column::TenantId.eq(&e.tenant))
                .filter(engineer::Column::Id.eq(&e.id))
                .filter(engineer::Column::Version.eq(v))
                .exec(conn)
                .await?;
            if !crm_store::uow::saved(&done) {
                return Err(TicketError::Stale);
            }
        }
    }
    skill::Entity::delete_many()
        .filter(skill::Column::TenantId.eq(&e.tenant))
        .filter(skill::Column::EngineerId.eq(&e.id))
        .exec(conn)
        .await?;
    let rows: Vec<skill::ActiveModel> = e
        .skills
        .iter()
        .map(|s| skill::ActiveModel {
            tenant_id: Set(e.tenant.clone()),
            skill: Set(s.clone()),
            engineer_id: Set(e.id.clone()),
        })
        .collect();
    if !rows.is_empty() {
        skill::Entity::insert_many(rows).exec(conn).await?;
    }
    Ok(())
}

/// Marks engineers as just assigned (dispatch's idle time).
pub async fn mark_assigned(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: &str,
    now: i64,
) -> Result<(), TicketError> {
    engineer::Entity::update_many()
        .col_expr(engineer::Column::LastAssignedTime, Expr::value(now))
        .filter(engineer::Column::TenantId.eq(tenant))
        .filter(engineer::Column::Id.eq(id))
        .exec(conn)
        .await?;
    Ok(())
}

pub async fn list_engineers(
    conn: &impl ConnectionTrait,
    tenant: &str,
    on_duty_only: bool,
    after: Option<&String>,
    limit: u64,
) -> Result<Vec<Engineer>, TicketError> {
    use engineer::Column as C;
    let mut q = engineer::Entity::find().filter(C::TenantId.eq(tenant));
    if on_duty_only {
        q = q.filter(C::OnDuty.eq(true));
    }
    if let Some(after) = after {
        q = q.filter(C::Id.gt(after.as_str()));
    }
    q.order_by_asc(C::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(engineer_of)
        .collect()
}

/// The engineers on duty with `skill`, with their open load and idle time.
pub async fn candidates(
    conn: &impl ConnectionTrait,
    tenant: &str,
    skill_name: &str,
) -> Result<Vec<Candidate>, TicketError> {
    let ids: Vec<String> = skill::Entity::find()
        .filter(skill::Column::TenantId.eq(tenant))
        .filter(skill::Column::Skill.eq(skill_name))
        .all(conn)
        .await?
        .into_iter()
        .map(|r| r.engineer_id)
        .collect();
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let on_duty = engineer::Entity::find()
        .filter(engineer::Column::TenantId.eq(tenant))
        .filter(engineer::Column::Id.is_in(ids.iter().map(String::as_str)))
        .filter(engineer::Column::OnDuty.eq(true))
        .all(conn)
        .await?;
    let ids: Vec<String> = on_duty.iter().map(|e| e.id.clone()).collect();
    let loads = open_loads(conn, tenant, &ids).await?;
    Ok(on_duty
        .into_iter()
        .map(|e| Candidate {
            open: loads.get(&e.id).copied().unwrap_or_default(),
            id: e.id,
            last_assigned_time: e.last_assigned_time,
        })
        .collect())
}

// ---- comments

pub async fn insert_comment(
    conn: &impl ConnectionTrait,
    tenant: &str,
    c: &Comment,
) -> Result<(), TicketError> {
    comment::Entity::insert(comment::ActiveModel {
        id: Set(c.id.clone()),
        tenant_id: Set(tenant.to_owned()),
        ticket_id: Set(c.ticket_id.clone()),
        public: Set(c.visibility == CommentVisibility::Public),
        body: Set(to_json(c)?),
    })
    .exec(conn)
    .await?;
    Ok(())
}

pub async fn load_comment(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: &str,
) -> Result<Option<Comment>, TicketError> {
    comment::Entity::find()
        .filter(comment::Column::TenantId.eq(tenant))
        .filter(comment::Column::Id.eq(id))
        .one(conn)
        .await?
        .map(|r| from_json(&r.body))
        .transpose()
}

pub async fn list_comments(
    conn: &impl ConnectionTrait,
    tenant: &str,
    ticket_id: &str,
    public_only: bool,
    after: Option<&String>,
    limit: u64,
) -> Result<Vec<Comment>, TicketError> {
    use comment::Column as C;
    let mut q = comment::Entity::find()
        .filter(C::TenantId.eq(tenant))
        .filter(C::TicketId.eq(ticket_id));
    if public_only {
        q = q.filter(C::Public.eq(true));
    }
    if let Some(after) = after {
        q = q.filter(C::Id.gt(after.as_str()));
    }
    q.order_by_asc(C::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(|r| from_json(&r.body))
        .collect()
}

// ---- accounts

pub async fn load_account(
    conn: &impl ConnectionTrait,
    tenant: &str,
    account_id: &str,
) -> Result<Option<Account>, TicketError> {
    account::Entity::find()
        .filter(account::Column::TenantId.eq(tenant))
        .filter(account::Column::AccountId.eq(account_id))
        .lock(LockType::Update)
        .one(conn)
        .await?
        .map(|r| {
            // The column rules: a migration may have set it (loyal
            // accounts judged before reviews existed are due at once).
            let mut a: Account = from_json(&r.body)?;
            a.next_tier_review = r.next_tier_review;
            Ok(a)
        })
        .transpose()
}

/// Inserts or replaces the account's row.
pub async fn save_account(conn: &impl ConnectionTrait, a: &Account) -> Result<(), TicketError> {
    let row = account::ActiveModel {
        tenant_id: Set(a.tenant.clone()),
        account_id: Set(a.account_id.clone()),
        account_manager_id: Set(a.account_manager_id.clone()),
        industry: Set(a.industry.clone()),
        tier: Set(a.tier.as_str().to_owned()),
        score: Set(i32::try_from(a.score).unwrap_or(0)),
        at_risk: Set(a.at_risk),
        health_known: Set(a.health_known),
        purchases: Set(i64::try_from(a.purchases).unwrap_or(i64::MAX)),
        currency: Set(a.currency.clone()),
        total_nanos: Set(a.total_nanos.to_string()),
        last_purchase_time: Set(a.last_purchase_time),
        next_tier_review: Set(a.next_tier_review),
        update_time: Set(a.update_time),
        body: Set(to_json(a)?),
    };
    let exists = account::Entity::find()
        .filter(account::Column::TenantId.eq(&a.tenant))
        .filter(account::Column::AccountId.eq(&a.account_id))
        .one(conn)
        .await?
        .is_some();
    if exists {
        account::Entity::update_many()
            .set(row)
            .filter(account::Column::TenantId.eq(&a.tenant))
            .filter(account::Column::AccountId.eq(&a.account_id))
            .exec(conn)
            .await?;
    } else {
        account::Entity::insert(row).exec(conn).await?;
    }
    Ok(())
}

/// Accounts at risk, lowest score first; `manager` narrows to one account
/// manager's.
pub async fn at_risk(
    conn: &impl ConnectionTrait,
    tenant: &str,
    manager: Option<&str>,
    after: Option<&(i32, String)>,
    limit: u64,
) -> Result<Vec<Account>, TicketError> {
    use account::Column as C;
    let mut q = account::Entity::find()
        .filter(C::TenantId.eq(tenant))
        .filter(C::AtRisk.eq(true));
    if let Some(m) = manager {
        q = q.filter(C::AccountManagerId.eq(m));
    }
    if let Some((score, id)) = after {
        q = q.filter(
            Condition::any().add(C::Score.gt(*score)).add(
                Condition::all()
                    .add(C::Score.eq(*score))
                    .add(C::AccountId.gt(id.as_str())),
            ),
        );
    }
    q.order_by_asc(C::Score)
        .order_by_asc(C::AccountId)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(|r| from_json(&r.body))
        .collect()
}

/// Every ticket of the account to its new account manager, in one
/// statement over the account's index: sales see the tickets of the
/// accounts they manage now. The version moves, so that a write that read
/// the ticket before fails as stale instead of putting the old manager
/// back.
pub async fn reassign_account_tickets(
    conn: &impl ConnectionTrait,
    tenant: &str,
    account_id: &str,
    manager: &str,
) -> Result<u64, TicketError> {
    use sea_orm::sea_query::ExprTrait;
    use ticket::Column as C;
    Ok(ticket::Entity::update_many()
        .col_expr(C::AccountManagerId, Expr::value(manager))
        .col_expr(C::Version, Expr::col(C::Version).add(1))
        .filter(C::TenantId.eq(tenant))
        .filter(C::AccountId.eq(account_id))
        .filter(C::AccountManagerId.ne(manager))
        .exec(conn)
        .await?
        .rows_affected)
}

/// The account's open retention tasks to its new account manager, in one
/// statement over the account's index.
pub async fn reassign_retention_tasks(
    conn: &impl ConnectionTrait,
    tenant: &str,
    account_id: &str,
    manager: &str,
) -> Result<u64, TicketError> {
    use retention::Column as C;
    Ok(retention::Entity::update_many()
        .col_expr(C::AssigneeId, Expr::value(manager))
        .filter(C::TenantId.eq(tenant))
        .filter(C::AccountId.eq(account_id))
        .filter(C::Status.eq("open"))
        .filter(C::AssigneeId.ne(manager))
        .exec(conn)
        .await?
        .rows_affected)
}

/// An account the tier sweeper has to look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountRef {
    pub tenant_id: String,
    pub account_id: String,
}

/// Up to `batch` accounts of any tenant whose tier review is due at
/// `now`, after `after` in (tenant, account) order.
pub async fn due_tier_reviews(
    conn: &impl ConnectionTrait,
    now: i64,
    after: Option<&AccountRef>,
    batch: u64,
) -> Result<Vec<AccountRef>, TicketError> {
    use account::Column as C;
    let after = after.map(|a| (a.tenant_id.as_str(), a.account_id.as_str()));
    let keys = due_keys::<account::Entity>(
        conn,
        C::NextTierReview,
        [C::TenantId, C::AccountId],
        now,
        after,
        batch,
    );
    Ok(keys
        .await?
        .into_iter()
        .map(|(tenant_id, account_id)| AccountRef {
            tenant_id,
            account_id,
        })
        .collect())
}

// ---- purchases

pub struct NewPurchase<'a> {
    pub id: String,
    pub tenant: &'a str,
    pub account_id: &'a str,
    pub time: i64,
    pub currency: &'a str,
    pub units: i64,
    pub nanos: i32,
}

pub async fn insert_purchase(
    conn: &impl ConnectionTrait,
    p: NewPurchase<'_>,
) -> Result<(), TicketError> {
    purchase::Entity::insert(purchase::ActiveModel {
        id: Set(p.id),
        tenant_id: Set(p.tenant.to_owned()),
        account_id: Set(p.account_id.to_owned()),
        purchase_time: Set(p.time),
        currency: Set(p.currency.to_owned()),
        units: Set(p.units),
        nanos: Set(p.nanos),
    })
    .exec(conn)
    .await?;
    Ok(())
}

pub async fn purchases_since(
    conn: &impl ConnectionTrait,
    tenant: &str,
    account_id: &str,
    since: i64,
) -> Result<u64, TicketError> {
    use sea_orm::PaginatorTrait;
    Ok(purchase::Entity::find()
        .filter(purchase::Column::TenantId.eq(tenant))
        .filter(purchase::Column::AccountId.eq(account_id))
        .filter(purchase::Column::PurchaseTime.gt(since))
        .count(conn)
        .await?)
}

/// The oldest purchase of the account after `since`, if any.
pub async fn oldest_purchase_since(
    conn: &impl ConnectionTrait,
    tenant: &str,
    account_id: &str,
    since: i64,
) -> Result<Option<i64>, TicketError> {
    use purchase::Column as C;
    #[derive(FromQueryResult)]
    struct Row {
        purchase_time: i64,
    }
    Ok(purchase::Entity::find()
        .select_only()
        .column(C::PurchaseTime)
        .filter(C::TenantId.eq(tenant))
        .filter(C::AccountId.eq(account_id))
        .filter(C::PurchaseTime.gt(since))
        .order_by_asc(C::PurchaseTime)
        .limit(1)
        .into_model::<Row>()
        .one(conn)
        .await?
        .map(|r| r.purchase_time))
}

// ---- retention tasks

pub async fn insert_retention(
    conn: &impl ConnectionTrait,
    tenant: &str,
    task: &RetentionTask,
) -> Result<(), TicketError> {
    retention::Entity::insert(retention::ActiveModel {
        id: Set(task.id.clone()),
        tenant_id: Set(tenant.to_owned()),
        account_id: Set(task.account_id.clone()),
        assignee_id: Set(task.assignee_id.clone()),
        status: Set("open".into()),
        body: Set(to_json(task)?),
    })
    .exec(conn)
    .await?;
    Ok(())
}

pub async fn list_retention(
    conn: &impl ConnectionTrait,
    tenant: &str,
    assignee: Option<&str>,
    account_id: Option<&str>,
    after: Option<&String>,
    limit: u64,
) -> Result<Vec<RetentionTask>, TicketError> {
    use retention::Column as C;
    let mut q = retention::Entity::find().filter(C::TenantId.eq(tenant));
    if let Some(a) = assignee {
        q = q.filter(C::AssigneeId.eq(a));
    }
    if let Some(a) = account_id {
        q = q.filter(C::AccountId.eq(a));
    }
    if let Some(after) = after {
        q = q.filter(C::Id.lt(after.as_str()));
    }
    q.order_by_desc(C::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(|r| {
            // The column rules: an account's reassignment moves it alone.
            let mut task: RetentionTask = from_json(&r.body)?;
            task.assignee_id = r.assignee_id;
            Ok(task)
        })
        .collect()
}
