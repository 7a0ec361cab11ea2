//! Persistence of projects, hour logs, alerts and capacities: the only
//! place SQL lives. Every function runs on the connection it is given (the
//! use case's transaction, or the pool for a read), filters by tenant, and
//! decides nothing.

mod entities;
mod migration;

use std::collections::HashMap;

use crm_store::uow::RequestIdReused;
use sea_orm::sea_query::{Expr, ExprTrait, LockBehavior, LockType};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait,
};

use crate::domain::{
    Date, DeliveryConfig, DeliveryError, Logged, Project, ProjectStatus, RiskAlert, RiskStatus,
    Visibility, WorkLog, resource, risk,
};
use entities::{alert, assignment, capacity, item, member, person_day, project, work_log};

pub use migration::Migrator;

type Result<T> = std::result::Result<T, DeliveryError>;

impl From<DbErr> for DeliveryError {
    fn from(err: DbErr) -> Self {
        DeliveryError::Store(Box::new(err))
    }
}

impl From<RequestIdReused> for DeliveryError {
    fn from(_: RequestIdReused) -> Self {
        DeliveryError::RequestIdReused
    }
}

impl crm_store::TxError for DeliveryError {
    fn is_unique_violation(&self) -> bool {
        matches!(self, DeliveryError::Store(e) if e.downcast_ref::<DbErr>().and_then(crm_store::unique_violation).is_some())
    }
}

fn json_err(e: serde_json::Error) -> DeliveryError {
    DeliveryError::Store(Box::new(DbErr::Json(e.to_string())))
}

// ---- configuration

/// A tenant's configuration as stored; version 0 is the operator's defaults.
pub type StoredConfig = crm_store::tenant_config::Stored<DeliveryConfig>;

pub async fn config(
    conn: &impl ConnectionTrait,
    tenant: &str,
    defaults: &DeliveryConfig,
) -> Result<StoredConfig> {
    Ok(crm_store::tenant_config::get(conn, tenant, defaults).await?)
}

// ---- projects

/// A project as stored: the document and the handover package as received.
#[derive(Debug, Clone)]
pub struct Stored {
    pub project: Project,
    pub handover: Vec<u8>,
}

fn from_row(row: project::Model) -> Result<Stored> {
    let mut p: Project = serde_json::from_str(&row.body).map_err(json_err)?;
    p.version = row.version;
    Ok(Stored {
        project: p,
        handover: row.handover,
    })
}

fn body(p: &Project) -> Result<String> {
    serde_json::to_string(p).map_err(json_err)
}

/// Inserts a new project (version 1) with its index rows. A second
/// project of the same contract family is a unique violation.
pub async fn insert_project(
    conn: &impl ConnectionTrait,
    p: &Project,
    handover: Vec<u8>,
) -> Result<()> {
    project::Entity::insert(project::ActiveModel {
        id: Set(p.id.clone()),
        tenant_id: Set(p.tenant.clone()),
        version: Set(1),
        contract_family_id: Set(p.handover.contract_family_id.clone()),
        account_id: Set(p.handover.account_id.clone()),
        project_manager_id: Set(p.project_manager_id.clone()),
        status: Set(p.status.as_str().to_owned()),
        create_time: Set(p.stamp.create_time),
        update_time: Set(p.stamp.update_time),
        body: Set(body(p)?),
        handover: Set(handover),
    })
    .exec_without_returning(conn)
    .await?;
    write_index(conn, p).await
}

/// Saves a changed project if it is still at `read` (else Stale), with a
/// new handover package when given.
pub async fn save_project(
    conn: &impl ConnectionTrait,
    p: &Project,
    read: i64,
    handover: Option<Vec<u8>>,
) -> Result<()> {
    let mut update = project::Entity::update_many()
        .col_expr(project::Column::Version, Expr::value(read + 1))
        .col_expr(
            project::Column::ProjectManagerId,
            Expr::value(p.project_manager_id.clone()),
        )
        .col_expr(project::Column::Status, Expr::value(p.status.as_str()))
        .col_expr(
            project::Column::UpdateTime,
            Expr::value(p.stamp.update_time),
        )
        .col_expr(project::Column::Body, Expr::value(body(p)?));
    if let Some(handover) = handover {
        update = update.col_expr(project::Column::Handover, Expr::value(handover));
    }
    let done = update
        .filter(project::Column::TenantId.eq(p.tenant.as_str()))
        .filter(project::Column::Id.eq(p.id.as_str()))
        .filter(project::Column::Version.eq(read))
        .exec(conn)
        .await?;
    if done.rows_affected == 0 {
        return Err(DeliveryError::Stale);
    }
    write_index(conn, p).await
}

/// The members, item and assignment rows of `p`, written anew.
async fn write_index(conn: &impl ConnectionTrait, p: &Project) -> Result<()> {
    member::Entity::delete_many()
        .filter(member::Column::ProjectId.eq(p.id.as_str()))
        .exec(conn)
        .await?;
    let members: Vec<_> = p
        .people()
        .into_iter()
        .map(|m| member::ActiveModel {
            tenant_id: Set(p.tenant.clone()),
            member_id: Set(m),
            project_id: Set(p.id.clone()),
        })
        .collect();
    if !members.is_empty() {
        member::Entity::insert_many(members)
            .exec_without_returning(conn)
            .await?;
    }
    item::Entity::delete_many()
        .filter(item::Column::ProjectId.eq(p.id.as_str()))
        .exec(conn)
        .await?;
    let items: Vec<_> = p
        .milestones
        .iter()
        .map(|m| m.id.clone())
        .chain(p.tasks.iter().map(|t| t.id.clone()))
        .map(|id| item::ActiveModel {
            tenant_id: Set(p.tenant.clone()),
            item_id: Set(id),
            project_id: Set(p.id.clone()),
        })
        .collect();
    for chunk in items.chunks(500) {
        item::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(conn)
            .await?;
    }
    assignment::Entity::delete_many()
        .filter(assignment::Column::ProjectId.eq(p.id.as_str()))
        .exec(conn)
        .await?;
    let load: Vec<_> = risk::planned_load(p)
        .into_iter()
        .map(|(t, due)| assignment::ActiveModel {
            tenant_id: Set(p.tenant.clone()),
            task_id: Set(t.id.clone()),
            person_id: Set(t.assignee_id.clone()),
            project_id: Set(p.id.clone()),
            minutes: Set(t.estimate_minutes),
            due_date: Set(due.iso()),
        })
        .collect();
    for chunk in load.chunks(500) {
        assignment::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

fn by_id(tenant: &str, id: &str) -> sea_orm::Select<project::Entity> {
    project::Entity::find()
        .filter(project::Column::TenantId.eq(tenant))
        .filter(project::Column::Id.eq(id))
}

pub async fn load_project(conn: &impl ConnectionTrait, tenant: &str, id: &str) -> Result<Stored> {
    by_id(tenant, id)
        .one(conn)
        .await?
        .map(from_row)
        .transpose()?
        .ok_or_else(|| DeliveryError::not_found(resource::PROJECT, id))
}

/// The project, locked for this transaction (PostgreSQL `FOR UPDATE`; on
/// SQLite the write transaction excludes other writers).
pub async fn load_for_update(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: &str,
) -> Result<Stored> {
    by_id(tenant, id)
        .lock(LockType::Update)
        .one(conn)
        .await?
        .map(from_row)
        .transpose()?
        .ok_or_else(|| DeliveryError::not_found(resource::PROJECT, id))
}

/// The project locked, or `None` when gone or another transaction holds it
/// (`FOR UPDATE SKIP LOCKED`: the sweeper passes over a busy project).
pub async fn lock_unless_busy(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: &str,
) -> Result<Option<Stored>> {
    by_id(tenant, id)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .one(conn)
        .await?
        .map(from_row)
        .transpose()
}

/// The project of a contract family, locked.
pub async fn project_of_family(
    conn: &impl ConnectionTrait,
    tenant: &str,
    family: &str,
) -> Result<Option<Stored>> {
    project::Entity::find()
        .filter(project::Column::TenantId.eq(tenant))
        .filter(project::Column::ContractFamilyId.eq(family))
        .lock(LockType::Update)
        .one(conn)
        .await?
        .map(from_row)
        .transpose()
}

/// The project a milestone or task id belongs to.
pub async fn project_of_item(
    conn: &impl ConnectionTrait,
    tenant: &str,
    item_id: &str,
) -> Result<Option<String>> {
    Ok(item::Entity::find()
        .filter(item::Column::TenantId.eq(tenant))
        .filter(item::Column::ItemId.eq(item_id))
        .one(conn)
        .await?
        .map(|row| row.project_id))
}

/// ListProjects' filters.
#[derive(Debug, Clone, Default)]
pub struct ProjectFilter {
    pub status: Option<ProjectStatus>,
    pub account_id: Option<String>,
    pub project_manager_id: Option<String>,
}

/// A page of projects, newest first.
pub async fn list_projects(
    conn: &impl ConnectionTrait,
    tenant: &str,
    filter: &ProjectFilter,
    visibility: &Visibility,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<Stored>> {
    use project::Column;
    let mut query = project::Entity::find().filter(Column::TenantId.eq(tenant));
    if let Some(status) = filter.status {
        query = query.filter(Column::Status.eq(status.as_str()));
    }
    if let Some(account) = &filter.account_id {
        query = query.filter(Column::AccountId.eq(account.as_str()));
    }
    if let Some(pm) = &filter.project_manager_id {
        query = query.filter(Column::ProjectManagerId.eq(pm.as_str()));
    }
    if let Visibility::Person(person) = visibility {
        let mine = member::Entity::find()
            .select_only()
            .column(member::Column::ProjectId)
            .filter(member::Column::TenantId.eq(tenant))
            .filter(member::Column::MemberId.eq(person.as_str()))
            .into_query();
        query = query.filter(Column::Id.in_subquery(mine));
    }
    if let Some(after) = after {
        query = query.filter(Column::Id.lt(after));
    }
    query
        .order_by_desc(Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(from_row)
        .collect()
}

/// Active projects of every tenant after `after` (tenant, id), for the
/// sweeper.
pub async fn active_projects(
    conn: &impl ConnectionTrait,
    after: Option<&(String, String)>,
    limit: u64,
) -> Result<Vec<(String, String)>> {
    use project::Column;
    let mut query = project::Entity::find()
        .select_only()
        .column(Column::TenantId)
        .column(Column::Id)
        .filter(Column::Status.eq(ProjectStatus::Active.as_str()));
    if let Some((tenant, id)) = after {
        query = query.filter(
            Condition::any()
                .add(Column::TenantId.gt(tenant.as_str()))
                .add(
                    Condition::all()
                        .add(Column::TenantId.eq(tenant.as_str()))
                        .add(Column::Id.gt(id.as_str())),
                ),
        );
    }
    Ok(query
        .order_by_asc(Column::TenantId)
        .order_by_asc(Column::Id)
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await?)
}

// ---- hours

/// The hours logged on a project: totals per milestone, task and person,
/// and those logged from `pace_from` on. Three grouped queries, whatever
/// the number of logs.
pub async fn logged(
    conn: &impl ConnectionTrait,
    tenant: &str,
    project_id: &str,
    pace_from: Date,
) -> Result<Logged> {
    use work_log::Column;
    let base = || {
        work_log::Entity::find()
            .filter(Column::TenantId.eq(tenant))
            .filter(Column::ProjectId.eq(project_id))
    };
    let sums = |column: Column| {
        base()
            .select_only()
            .column(column)
            .column_as(Expr::cust("CAST(SUM(minutes) AS BIGINT)"), "minutes")
            .group_by(column)
            .into_tuple::<(String, Option<i64>)>()
    };
    let collect = |rows: Vec<(String, Option<i64>)>| -> HashMap<String, i64> {
        rows.into_iter()
            .filter(|(k, _)| !k.is_empty())
            .map(|(k, v)| (k, v.unwrap_or(0)))
            .collect()
    };
    let by_milestone = collect(sums(Column::MilestoneId).all(conn).await?);
    let by_task = collect(sums(Column::TaskId).all(conn).await?);
    let by_person = collect(sums(Column::PersonId).all(conn).await?);
    let recent: Option<Option<i64>> = base()
        .select_only()
        .column_as(Expr::cust("CAST(SUM(minutes) AS BIGINT)"), "minutes")
        .filter(Column::WorkDate.gte(pace_from.iso()))
        .into_tuple()
        .one(conn)
        .await?;
    Ok(Logged {
        total: by_person.values().sum(),
        by_milestone,
        by_task,
        by_person,
        recent: recent.flatten().unwrap_or(0),
    })
}

/// The total minutes logged on each of `projects`, in one query.
pub async fn logged_totals(
    conn: &impl ConnectionTrait,
    tenant: &str,
    projects: &[String],
) -> Result<HashMap<String, i64>> {
    use work_log::Column;
    if projects.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, Option<i64>)> = work_log::Entity::find()
        .select_only()
        .column(Column::ProjectId)
        .column_as(Expr::cust("CAST(SUM(minutes) AS BIGINT)"), "minutes")
        .filter(Column::TenantId.eq(tenant))
        .filter(Column::ProjectId.is_in(projects.iter().map(String::as_str)))
        .group_by(Column::ProjectId)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows.into_iter().map(|(k, v)| (k, v.unwrap_or(0))).collect())
}

/// Adds `minutes` to a person's day unless it would pass `max`: one
/// conditional update, so concurrent logs cannot pass it together.
pub async fn add_to_day(
    conn: &impl ConnectionTrait,
    tenant: &str,
    person: &str,
    date: Date,
    minutes: i64,
    max: i64,
) -> Result<bool> {
    use person_day::Column;
    person_day::Entity::insert(person_day::ActiveModel {
        tenant_id: Set(tenant.to_owned()),
        person_id: Set(person.to_owned()),
        work_date: Set(date.iso()),
        minutes: Set(0),
    })
    .on_conflict_do_nothing()
    .exec_without_returning(conn)
    .await?;
    let done = person_day::Entity::update_many()
        .col_expr(Column::Minutes, Expr::col(Column::Minutes).add(minutes))
        .filter(Column::TenantId.eq(tenant))
        .filter(Column::PersonId.eq(person))
        .filter(Column::WorkDate.eq(date.iso()))
        .filter(Expr::col(Column::Minutes).add(minutes).lte(max))
        .exec(conn)
        .await?;
    Ok(done.rows_affected > 0)
}

pub async fn insert_log(conn: &impl ConnectionTrait, log: &WorkLog) -> Result<()> {
    work_log::Entity::insert(work_log::ActiveModel {
        id: Set(log.id.clone()),
        tenant_id: Set(log.tenant.clone()),
        project_id: Set(log.project_id.clone()),
        milestone_id: Set(log.milestone_id.clone()),
        task_id: Set(log.task_id.clone()),
        person_id: Set(log.person_id.clone()),
        work_date: Set(log.date.iso()),
        minutes: Set(log.minutes),
        note: Set(log.note.clone()),
        create_time: Set(log.create_time),
        creator: Set(log.creator.clone()),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

fn log_of(row: work_log::Model) -> WorkLog {
    WorkLog {
        date: Date::parse_iso(&row.work_date).unwrap_or(Date {
            year: 1970,
            month: 1,
            day: 1,
        }),
        id: row.id,
        tenant: row.tenant_id,
        project_id: row.project_id,
        milestone_id: row.milestone_id,
        task_id: row.task_id,
        person_id: row.person_id,
        minutes: row.minutes,
        note: row.note,
        create_time: row.create_time,
        creator: row.creator,
    }
}

pub async fn load_log(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: &str,
) -> Result<Option<WorkLog>> {
    Ok(work_log::Entity::find()
        .filter(work_log::Column::TenantId.eq(tenant))
        .filter(work_log::Column::Id.eq(id))
        .one(conn)
        .await?
        .map(log_of))
}

/// A page of a project's logs, newest first.
pub async fn list_logs(
    conn: &impl ConnectionTrait,
    tenant: &str,
    project_id: &str,
    person: Option<&str>,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<WorkLog>> {
    use work_log::Column;
    let mut query = work_log::Entity::find()
        .filter(Column::TenantId.eq(tenant))
        .filter(Column::ProjectId.eq(project_id));
    if let Some(person) = person {
        query = query.filter(Column::PersonId.eq(person));
    }
    if let Some(after) = after {
        query = query.filter(Column::Id.lt(after));
    }
    Ok(query
        .order_by_desc(Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(log_of)
        .collect())
}

// ---- capacity and load

/// A person's planned minutes with a milestone due on or before `until`.
pub async fn planned_minutes(
    conn: &impl ConnectionTrait,
    tenant: &str,
    person: &str,
    until: Date,
) -> Result<i64> {
    use assignment::Column;
    let sum: Option<Option<i64>> = assignment::Entity::find()
        .select_only()
        .column_as(Expr::cust("CAST(SUM(minutes) AS BIGINT)"), "minutes")
        .filter(Column::TenantId.eq(tenant))
        .filter(Column::PersonId.eq(person))
        .filter(Column::DueDate.lte(until.iso()))
        .into_tuple()
        .one(conn)
        .await?;
    Ok(sum.flatten().unwrap_or(0))
}

/// The planned minutes of each of `people` due on or before `until`, in
/// one grouped query.
pub async fn planned_minutes_of(
    conn: &impl ConnectionTrait,
    tenant: &str,
    people: &[String],
    until: Date,
) -> Result<HashMap<String, i64>> {
    use assignment::Column;
    if people.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, Option<i64>)> = assignment::Entity::find()
        .select_only()
        .column(Column::PersonId)
        .column_as(Expr::cust("CAST(SUM(minutes) AS BIGINT)"), "minutes")
        .filter(Column::TenantId.eq(tenant))
        .filter(Column::PersonId.is_in(people.iter().map(String::as_str)))
        .filter(Column::DueDate.lte(until.iso()))
        .group_by(Column::PersonId)
        .into_tuple()
        .all(conn)
        .await?;
    Ok(rows.into_iter().map(|(k, v)| (k, v.unwrap_or(0))).collect())
}

/// The people with assigned open work, or an open shortage alert, of every
/// tenant after `after` (tenant, person), for the sweeper.
pub async fn people_to_check(
    conn: &impl ConnectionTrait,
    after: Option<&(String, String)>,
    limit: u64,
) -> Result<Vec<(String, String)>> {
    let key = |tenant: Expr, person: Expr| {
        after.map(|(t, p)| {
            Condition::any()
                .add(ExprTrait::gt(tenant.clone(), t.as_str()))
                .add(
                    Condition::all()
                        .add(ExprTrait::eq(tenant, t.as_str()))
                        .add(ExprTrait::gt(person, p.as_str())),
                )
        })
    };
    let mut assigned = assignment::Entity::find()
        .select_only()
        .column(assignment::Column::TenantId)
        .column(assignment::Column::PersonId)
        .distinct();
    if let Some(cond) = key(
        Expr::col(assignment::Column::TenantId),
        Expr::col(assignment::Column::PersonId),
    ) {
        assigned = assigned.filter(cond);
    }
    let mut people: Vec<(String, String)> = assigned
        .order_by_asc(assignment::Column::TenantId)
        .order_by_asc(assignment::Column::PersonId)
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await?;
    let mut alerted = alert::Entity::find()
        .select_only()
        .column(alert::Column::TenantId)
        .column(alert::Column::PersonId)
        .filter(alert::Column::OpenCause.is_not_null())
        .filter(alert::Column::PersonId.ne(""))
        .distinct();
    if let Some(cond) = key(
        Expr::col(alert::Column::TenantId),
        Expr::col(alert::Column::PersonId),
    ) {
        alerted = alerted.filter(cond);
    }
    let more: Vec<(String, String)> = alerted
        .order_by_asc(alert::Column::TenantId)
        .order_by_asc(alert::Column::PersonId)
        .limit(limit)
        .into_tuple()
        .all(conn)
        .await?;
    people.extend(more);
    people.sort();
    people.dedup();
    people.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(people)
}

/// A person's stored capacity: (version, minutes a week, update time, updater).
pub async fn capacity(
    conn: &impl ConnectionTrait,
    tenant: &str,
    person: &str,
) -> Result<Option<(i64, i64, i64, String)>> {
    Ok(capacity::Entity::find()
        .filter(capacity::Column::TenantId.eq(tenant))
        .filter(capacity::Column::PersonId.eq(person))
        .one(conn)
        .await?
        .map(|c| (c.version, c.minutes_per_week, c.update_time, c.updater)))
}

/// Sets a person's capacity if it is still at `read` (0: never set).
pub async fn set_capacity(
    conn: &impl ConnectionTrait,
    tenant: &str,
    person: &str,
    minutes_per_week: i64,
    read: i64,
    actor: &str,
    now: i64,
) -> Result<()> {
    use capacity::Column;
    if read == 0 {
        capacity::Entity::insert(capacity::ActiveModel {
            tenant_id: Set(tenant.to_owned()),
            person_id: Set(person.to_owned()),
            version: Set(1),
            minutes_per_week: Set(minutes_per_week),
            update_time: Set(now),
            updater: Set(actor.to_owned()),
        })
        .exec_without_returning(conn)
        .await?;
        return Ok(());
    }
    let done = capacity::Entity::update_many()
        .col_expr(Column::Version, Expr::value(read + 1))
        .col_expr(Column::MinutesPerWeek, Expr::value(minutes_per_week))
        .col_expr(Column::UpdateTime, Expr::value(now))
        .col_expr(Column::Updater, Expr::value(actor))
        .filter(Column::TenantId.eq(tenant))
        .filter(Column::PersonId.eq(person))
        .filter(Column::Version.eq(read))
        .exec(conn)
        .await?;
    if done.rows_affected == 0 {
        return Err(DeliveryError::Stale);
    }
    Ok(())
}

/// A page of set capacities by person: (person, version, minutes, time, updater).
pub async fn list_capacities(
    conn: &impl ConnectionTrait,
    tenant: &str,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<(String, i64, i64, i64, String)>> {
    use capacity::Column;
    let mut query = capacity::Entity::find().filter(Column::TenantId.eq(tenant));
    if let Some(after) = after {
        query = query.filter(Column::PersonId.gt(after));
    }
    Ok(query
        .order_by_asc(Column::PersonId)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(|c| {
            (
                c.person_id,
                c.version,
                c.minutes_per_week,
                c.update_time,
                c.updater,
            )
        })
        .collect())
}

// ---- alerts

fn alert_of(row: alert::Model) -> Result<RiskAlert> {
    let mut a: RiskAlert = serde_json::from_str(&row.body).map_err(json_err)?;
    a.version = row.version;
    Ok(a)
}

fn open_cause(a: &RiskAlert) -> Option<String> {
    (a.status != RiskStatus::Resolved).then(|| a.cause.clone())
}

/// Inserts a new alert; a second open alert of its cause is a unique
/// violation.
pub async fn insert_alert(conn: &impl ConnectionTrait, a: &RiskAlert) -> Result<()> {
    alert::Entity::insert(alert::ActiveModel {
        id: Set(a.id.clone()),
        tenant_id: Set(a.tenant.clone()),
        version: Set(1),
        project_id: Set(a.project_id.clone()),
        person_id: Set(a.person_id.clone()),
        status: Set(a.status.as_str().to_owned()),
        cause: Set(a.cause.clone()),
        open_cause: Set(open_cause(a)),
        body: Set(serde_json::to_string(a).map_err(json_err)?),
    })
    .exec_without_returning(conn)
    .await?;
    Ok(())
}

pub async fn save_alert(conn: &impl ConnectionTrait, a: &RiskAlert, read: i64) -> Result<()> {
    use alert::Column;
    let done = alert::Entity::update_many()
        .col_expr(Column::Version, Expr::value(read + 1))
        .col_expr(Column::Status, Expr::value(a.status.as_str()))
        .col_expr(Column::OpenCause, Expr::value(open_cause(a)))
        .col_expr(
            Column::Body,
            Expr::value(serde_json::to_string(a).map_err(json_err)?),
        )
        .filter(Column::TenantId.eq(a.tenant.as_str()))
        .filter(Column::Id.eq(a.id.as_str()))
        .filter(Column::Version.eq(read))
        .exec(conn)
        .await?;
    if done.rows_affected == 0 {
        return Err(DeliveryError::Stale);
    }
    Ok(())
}

pub async fn load_alert(conn: &impl ConnectionTrait, tenant: &str, id: &str) -> Result<RiskAlert> {
    alert::Entity::find()
        .filter(alert::Column::TenantId.eq(tenant))
        .filter(alert::Column::Id.eq(id))
        .one(conn)
        .await?
        .map(alert_of)
        .transpose()?
        .ok_or_else(|| DeliveryError::not_found(resource::RISK_ALERT, id))
}

/// The open (or acknowledged) alerts of a project.
pub async fn open_alerts_of_project(
    conn: &impl ConnectionTrait,
    tenant: &str,
    project_id: &str,
) -> Result<Vec<RiskAlert>> {
    alert::Entity::find()
        .filter(alert::Column::TenantId.eq(tenant))
        .filter(alert::Column::ProjectId.eq(project_id))
        .filter(alert::Column::Status.ne(RiskStatus::Resolved.as_str()))
        .all(conn)
        .await?
        .into_iter()
        .map(alert_of)
        .collect()
}

/// The open (or acknowledged) alert of a person's shortage, if any.
pub async fn open_alert_of_cause(
    conn: &impl ConnectionTrait,
    tenant: &str,
    cause: &str,
) -> Result<Option<RiskAlert>> {
    alert::Entity::find()
        .filter(alert::Column::TenantId.eq(tenant))
        .filter(alert::Column::OpenCause.eq(cause))
        .one(conn)
        .await?
        .map(alert_of)
        .transpose()
}

/// ListRiskAlerts' filters.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    pub project_id: Option<String>,
    pub status: Option<RiskStatus>,
}

/// A page of alerts, newest first. A person sees the alerts of their
/// projects and their own shortages.
pub async fn list_alerts(
    conn: &impl ConnectionTrait,
    tenant: &str,
    filter: &AlertFilter,
    visibility: &Visibility,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<RiskAlert>> {
    use alert::Column;
    let mut query = alert::Entity::find().filter(Column::TenantId.eq(tenant));
    if let Some(project) = &filter.project_id {
        query = query.filter(Column::ProjectId.eq(project.as_str()));
    }
    if let Some(status) = filter.status {
        query = query.filter(Column::Status.eq(status.as_str()));
    }
    if let Visibility::Person(person) = visibility {
        let mine = member::Entity::find()
            .select_only()
            .column(member::Column::ProjectId)
            .filter(member::Column::TenantId.eq(tenant))
            .filter(member::Column::MemberId.eq(person.as_str()))
            .into_query();
        query = query.filter(
            Condition::any()
                .add(Column::ProjectId.in_subquery(mine))
                .add(Column::PersonId.eq(person.as_str())),
        );
    }
    if let Some(after) = after {
        query = query.filter(Column::Id.lt(after));
    }
    query
        .order_by_desc(Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(alert_of)
        .collect()
}
