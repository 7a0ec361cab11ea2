//! Persistence of accounts, contacts, opportunities and approvals: the only
//! place SQL lives. Every function runs on the connection it is given (the
//! use case's transaction, or the pool for a read), filters by tenant, and
//! decides nothing: the rules are the domain's, the transaction the use
//! case's.

mod entities;
mod mapping;
mod migration;

use std::collections::BTreeSet;

use crm_store::uow::RequestIdReused;
use sea_orm::sea_query::{Expr, ExprTrait, Func, SelectStatement};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, FromQueryResult, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait,
};

use crate::domain::{
    Account, AccountFilter, Activity, ActivityKind, Approval, ApprovalFilter, ApprovalKind,
    ApprovalStatus, Contact, DecisionRole, GateFacts, Member, Opportunity, OpportunityConfig,
    OpportunityError, OpportunityFilter, Stage, StageTotal, StageViolation, WorkHours, name_key,
    resource::{ACCOUNT, APPROVAL, CONTACT, OPPORTUNITY},
};
use entities::{
    account, activity, approval, contact, member, opportunity, team_member, violation, work_hours,
};
use mapping::*;

pub use migration::Migrator;

impl From<DbErr> for OpportunityError {
    fn from(err: DbErr) -> Self {
        OpportunityError::Store(Box::new(err))
    }
}

impl From<RequestIdReused> for OpportunityError {
    fn from(_: RequestIdReused) -> Self {
        OpportunityError::RequestIdReused
    }
}

impl crm_store::TxError for OpportunityError {
    fn is_unique_violation(&self) -> bool {
        matches!(self, OpportunityError::Store(e) if e.downcast_ref::<DbErr>().and_then(crm_store::unique_violation).is_some())
    }
}

/// Fails with [`OpportunityError::Stale`] when an optimistic-lock update
/// found no row at the version it read.
fn saved(done: &sea_orm::UpdateResult) -> Result<(), OpportunityError> {
    if crm_store::uow::saved(done) {
        Ok(())
    } else {
        Err(OpportunityError::Stale)
    }
}

// ---- configuration

/// A tenant's opportunity configuration as stored; version 0 is the operator's defaults.
pub type StoredConfig = crm_store::tenant_config::Stored<OpportunityConfig>;

pub async fn config(
    conn: &impl ConnectionTrait,
    tenant: &str,
    defaults: &OpportunityConfig,
) -> Result<StoredConfig, OpportunityError> {
    Ok(crm_store::tenant_config::get(conn, tenant, defaults).await?)
}

// ---- accounts and contacts

pub async fn load_account(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: &str,
) -> Result<Account, OpportunityError> {
    let row = account::Entity::find()
        .filter(account::Column::TenantId.eq(tenant))
        .filter(account::Column::Id.eq(id))
        .one(conn)
        .await?;
    row.map(account_from_row)
        .ok_or_else(|| OpportunityError::not_found(ACCOUNT, id))
}

/// The account whose name matches `name` (case and punctuation folded).
pub async fn account_named(
    conn: &impl ConnectionTrait,
    tenant: &str,
    name: &str,
) -> Result<Option<Account>, OpportunityError> {
    let row = account::Entity::find()
        .filter(account::Column::TenantId.eq(tenant))
        .filter(account::Column::NameKey.eq(name_key(name)))
        .one(conn)
        .await?;
    Ok(row.map(account_from_row))
}

pub async fn insert_account(
    conn: &impl ConnectionTrait,
    a: &Account,
) -> Result<(), OpportunityError> {
    account::Entity::insert(account_to_row(a))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

/// Stores a changed account if it is still at `version`.
pub async fn save_account(
    conn: &impl ConnectionTrait,
    a: &Account,
    version: i64,
) -> Result<(), OpportunityError> {
    let done = account::Entity::update_many()
        .set(account_to_row(a))
        .filter(account::Column::TenantId.eq(a.tenant.as_str()))
        .filter(account::Column::Id.eq(a.id.as_str()))
        .filter(account::Column::Version.eq(version))
        .exec(conn)
        .await?;
    saved(&done)
}

/// The ids of the opportunities whose team includes `person`.
fn teams_of(tenant: &str, person: &str) -> SelectStatement {
    team_member::Entity::find()
        .select_only()
        .column(team_member::Column::OpportunityId)
        .filter(team_member::Column::TenantId.eq(tenant))
        .filter(team_member::Column::PersonId.eq(person))
        .into_query()
}

/// The ids of the accounts `person` owns or works on an opportunity of.
fn accounts_of(tenant: &str, person: &str) -> Condition {
    let worked_on = opportunity::Entity::find()
        .select_only()
        .column(opportunity::Column::AccountId)
        .filter(opportunity::Column::TenantId.eq(tenant))
        .filter(opportunity::Column::Id.in_subquery(teams_of(tenant, person)))
        .into_query();
    Condition::any()
        .add(account::Column::OwnerId.eq(person))
        .add(account::Column::Id.in_subquery(worked_on))
}

/// Whether `person` is on the team of one of the account's opportunities.
pub async fn on_team_of_account(
    conn: &impl ConnectionTrait,
    tenant: &str,
    account_id: &str,
    person: &str,
) -> Result<bool, OpportunityError> {
    let found = opportunity::Entity::find()
        .select_only()
        .column(opportunity::Column::Id)
        .filter(opportunity::Column::TenantId.eq(tenant))
        .filter(opportunity::Column::AccountId.eq(account_id))
        .filter(opportunity::Column::Id.in_subquery(teams_of(tenant, person)))
        .into_tuple::<String>()
        .one(conn)
        .await?;
    Ok(found.is_some())
}

pub async fn list_accounts(
    conn: &impl ConnectionTrait,
    tenant: &str,
    f: &AccountFilter,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<Account>, OpportunityError> {
    let mut q = account::Entity::find().filter(account::Column::TenantId.eq(tenant));
    if let Some(person) = &f.visible_to {
        q = q.filter(accounts_of(tenant, person));
    }
    if let Some(owner) = &f.owner_id {
        q = q.filter(account::Column::OwnerId.eq(owner.as_str()));
    }
    if let Some(after) = after {
        q = q.filter(account::Column::Id.lt(after));
    }
    let rows = q
        .order_by_desc(account::Column::Id)
        .limit(limit)
        .all(conn)
        .await?;
    Ok(rows.into_iter().map(account_from_row).collect())
}

pub async fn load_contact(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: &str,
) -> Result<Contact, OpportunityError> {
    let row = contact::Entity::find()
        .filter(contact::Column::TenantId.eq(tenant))
        .filter(contact::Column::Id.eq(id))
        .one(conn)
        .await?;
    row.map(contact_from_row)
        .ok_or_else(|| OpportunityError::not_found(CONTACT, id))
}

/// The contacts `ids` name, in their order, read with one query; the first
/// id with no contact is NOT_FOUND.
pub async fn load_contacts(
    conn: &impl ConnectionTrait,
    tenant: &str,
    ids: &[String],
) -> Result<Vec<Contact>, OpportunityError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut rows: std::collections::HashMap<String, contact::Model> = contact::Entity::find()
        .filter(contact::Column::TenantId.eq(tenant))
        .filter(contact::Column::Id.is_in(ids.iter().map(String::as_str)))
        .all(conn)
        .await?
        .into_iter()
        .map(|row| (row.id.clone(), row))
        .collect();
    ids.iter()
        .map(|id| {
            rows.remove(id)
                .map(contact_from_row)
                .ok_or_else(|| OpportunityError::not_found(CONTACT, id))
        })
        .collect()
}

/// The contact of `account_id` whose name matches `name`, if any.
pub async fn contact_named(
    conn: &impl ConnectionTrait,
    tenant: &str,
    account_id: &str,
    name: &str,
) -> Result<Option<Contact>, OpportunityError> {
    if name.trim().is_empty() {
        return Ok(None);
    }
    let row = contact::Entity::find()
        .filter(contact::Column::TenantId.eq(tenant))
        .filter(contact::Column::AccountId.eq(account_id))
        .filter(contact::Column::NameKey.eq(name_key(name)))
        .one(conn)
        .await?;
    Ok(row.map(contact_from_row))
}

pub async fn insert_contact(
    conn: &impl ConnectionTrait,
    tenant: &str,
    c: &Contact,
) -> Result<(), OpportunityError> {
    contact::Entity::insert(contact_to_row(tenant, c))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub async fn list_contacts(
    conn: &impl ConnectionTrait,
    tenant: &str,
    account_id: &str,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<Contact>, OpportunityError> {
    let mut q = contact::Entity::find()
        .filter(contact::Column::TenantId.eq(tenant))
        .filter(contact::Column::AccountId.eq(account_id));
    if let Some(after) = after {
        q = q.filter(contact::Column::Id.lt(after));
    }
    let rows = q
        .order_by_desc(contact::Column::Id)
        .limit(limit)
        .all(conn)
        .await?;
    Ok(rows.into_iter().map(contact_from_row).collect())
}

// ---- opportunities

pub async fn load_opportunity(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: &str,
) -> Result<Opportunity, OpportunityError> {
    let row = opportunity::Entity::find()
        .filter(opportunity::Column::TenantId.eq(tenant))
        .filter(opportunity::Column::Id.eq(id))
        .one(conn)
        .await?;
    opportunity_from_row(row.ok_or_else(|| OpportunityError::not_found(OPPORTUNITY, id))?)
}

/// The opportunity converted from `lead_id`, if any.
pub async fn opportunity_of_lead(
    conn: &impl ConnectionTrait,
    tenant: &str,
    lead_id: &str,
) -> Result<Option<Opportunity>, OpportunityError> {
    let row = opportunity::Entity::find()
        .filter(opportunity::Column::TenantId.eq(tenant))
        .filter(opportunity::Column::LeadId.eq(lead_id))
        .one(conn)
        .await?;
    row.map(opportunity_from_row).transpose()
}

pub async fn insert_opportunity(
    conn: &impl ConnectionTrait,
    o: &Opportunity,
) -> Result<(), OpportunityError> {
    opportunity::Entity::insert(opportunity_to_row(o)?)
        .exec_without_returning(conn)
        .await?;
    put_team(conn, o).await
}

/// Replaces the opportunity's membership rows with its team.
async fn put_team(conn: &impl ConnectionTrait, o: &Opportunity) -> Result<(), OpportunityError> {
    team_member::Entity::delete_many()
        .filter(team_member::Column::TenantId.eq(o.tenant.as_str()))
        .filter(team_member::Column::OpportunityId.eq(o.id.as_str()))
        .exec(conn)
        .await?;
    let rows = team_rows(o);
    if !rows.is_empty() {
        team_member::Entity::insert_many(rows)
            .exec_without_returning(conn)
            .await?;
    }
    Ok(())
}

/// Stores `o` if it is still at `version` (of two concurrent changes from
/// the same version exactly one wins); nothing to do when `o` is unchanged.
pub async fn save_opportunity(
    conn: &impl ConnectionTrait,
    o: &Opportunity,
    version: i64,
) -> Result<(), OpportunityError> {
    if o.version == version {
        return Ok(());
    }
    let done = opportunity::Entity::update_many()
        .set(opportunity_to_row(o)?)
        .filter(opportunity::Column::TenantId.eq(o.tenant.as_str()))
        .filter(opportunity::Column::Id.eq(o.id.as_str()))
        .filter(opportunity::Column::Version.eq(version))
        .exec(conn)
        .await?;
    saved(&done)?;
    put_team(conn, o).await
}

pub async fn list_opportunities(
    conn: &impl ConnectionTrait,
    tenant: &str,
    f: &OpportunityFilter,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<Opportunity>, OpportunityError> {
    use opportunity::Column;
    let mut q = opportunity::Entity::find().filter(Column::TenantId.eq(tenant));
    if let Some(me) = &f.team_member {
        q = q.filter(Column::Id.in_subquery(teams_of(tenant, me)));
    }
    if let Some(stage) = f.stage {
        q = q.filter(Column::Stage.eq(stage.as_str()));
    }
    if let Some(account) = &f.account_id {
        q = q.filter(Column::AccountId.eq(account.as_str()));
    }
    if let Some(owner) = &f.owner_id {
        q = q.filter(Column::AccountManagerId.eq(owner.as_str()));
    }
    if let Some(after) = after {
        q = q.filter(Column::Id.lt(after));
    }
    let rows = q.order_by_desc(Column::Id).limit(limit).all(conn).await?;
    rows.into_iter().map(opportunity_from_row).collect()
}

pub async fn insert_violation(
    conn: &impl ConnectionTrait,
    tenant: &str,
    v: &StageViolation,
) -> Result<(), OpportunityError> {
    violation::Entity::insert(violation_to_row(tenant, v)?)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub async fn list_violations(
    conn: &impl ConnectionTrait,
    tenant: &str,
    opportunity_id: Option<&str>,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<StageViolation>, OpportunityError> {
    let mut q = violation::Entity::find().filter(violation::Column::TenantId.eq(tenant));
    if let Some(opp) = opportunity_id {
        q = q.filter(violation::Column::OpportunityId.eq(opp));
    }
    if let Some(after) = after {
        q = q.filter(violation::Column::Id.lt(after));
    }
    let rows = q
        .order_by_desc(violation::Column::Id)
        .limit(limit)
        .all(conn)
        .await?;
    rows.into_iter().map(violation_from_row).collect()
}

/// What the gates look at beyond the opportunity's own row.
pub async fn gate_facts(
    conn: &impl ConnectionTrait,
    tenant: &str,
    opportunity_id: &str,
) -> Result<GateFacts, OpportunityError> {
    let decision_makers: BTreeSet<String> = member::Entity::find()
        .select_only()
        .column(member::Column::ContactId)
        .filter(member::Column::TenantId.eq(tenant))
        .filter(member::Column::OpportunityId.eq(opportunity_id))
        .filter(member::Column::Role.eq(DecisionRole::DecisionMaker.as_str()))
        .into_tuple::<String>()
        .all(conn)
        .await?
        .into_iter()
        .collect();
    let meetings = activity::Entity::find()
        .filter(activity::Column::TenantId.eq(tenant))
        .filter(activity::Column::OpportunityId.eq(opportunity_id))
        .filter(activity::Column::Kind.eq(ActivityKind::Meeting.as_str()))
        .all(conn)
        .await?
        .into_iter()
        .map(|row| activity_from_row(row).map(|a| a.contact_ids))
        .collect::<Result<Vec<_>, _>>()?;
    let approved = approval::Entity::find()
        .select_only()
        .column(approval::Column::Kind)
        .filter(approval::Column::TenantId.eq(tenant))
        .filter(approval::Column::SubjectId.eq(opportunity_id))
        .filter(approval::Column::Status.eq(ApprovalStatus::Approved.as_str()))
        .into_tuple::<String>()
        .all(conn)
        .await?
        .iter()
        .filter_map(|k| ApprovalKind::parse(k))
        .collect();
    Ok(GateFacts::new(&decision_makers, &meetings, approved))
}

/// The open pipeline per stage and currency: one aggregate query.
pub async fn open_pipeline(
    conn: &impl ConnectionTrait,
    tenant: &str,
    owner: Option<&str>,
) -> Result<Vec<StageTotal>, OpportunityError> {
    #[derive(FromQueryResult)]
    struct Row {
        stage: String,
        amount_currency: String,
        count: i64,
        millions: i64,
        units: i64,
        nanos: i64,
    }
    // Summed in parts that cannot overflow a BIGINT (whole millions, the
    // units below a million, nanos) and put together exactly in i128.
    const PART: i64 = 1_000_000;
    let part_sum = |e: Expr| Expr::from(Func::cast_as(Func::sum(e), "BIGINT"));
    use opportunity::Column;
    let open: Vec<&str> = Stage::ALL
        .iter()
        .filter(|s| !s.is_final())
        .map(|s| s.as_str())
        .collect();
    let mut q = opportunity::Entity::find()
        .select_only()
        .column(Column::Stage)
        .column(Column::AmountCurrency)
        .column_as(Column::Id.count(), "count")
        // SUM of BIGINT is NUMERIC on PostgreSQL: back to BIGINT for both backends.
        .column_as(
            part_sum(Expr::col(Column::AmountUnits).div(PART)),
            "millions",
        )
        .column_as(
            part_sum(Expr::col(Column::AmountUnits).modulo(PART)),
            "units",
        )
        .column_as(part_sum(Expr::col(Column::AmountNanos)), "nanos")
        .filter(Column::TenantId.eq(tenant))
        .filter(Column::Stage.is_in(open))
        .filter(Column::AmountCurrency.is_not_null());
    if let Some(owner) = owner {
        q = q.filter(Column::AccountManagerId.eq(owner));
    }
    let rows = q
        .group_by(Column::Stage)
        .group_by(Column::AmountCurrency)
        .into_model::<Row>()
        .all(conn)
        .await?;
    Ok(rows
        .into_iter()
        .filter_map(|r| {
            let units = i128::from(r.millions) * i128::from(PART) + i128::from(r.units);
            Some(StageTotal {
                stage: Stage::parse(&r.stage)?,
                currency: r.amount_currency,
                count: r.count,
                total_nanos: units * 1_000_000_000 + i128::from(r.nanos),
            })
        })
        .collect())
}

// ---- decision chain, activities, hours

/// Puts `m` in the opportunity's decision chain, replacing the contact's
/// earlier place.
pub async fn put_member(
    conn: &impl ConnectionTrait,
    tenant: &str,
    opportunity_id: &str,
    m: &Member,
    now: i64,
) -> Result<(), OpportunityError> {
    member::Entity::delete_many()
        .filter(member::Column::TenantId.eq(tenant))
        .filter(member::Column::OpportunityId.eq(opportunity_id))
        .filter(member::Column::ContactId.eq(m.contact_id.as_str()))
        .exec(conn)
        .await?;
    member::Entity::insert(member_to_row(tenant, opportunity_id, m, now))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub async fn decision_chain(
    conn: &impl ConnectionTrait,
    tenant: &str,
    opportunity_id: &str,
) -> Result<Vec<Member>, OpportunityError> {
    let rows = member::Entity::find()
        .filter(member::Column::TenantId.eq(tenant))
        .filter(member::Column::OpportunityId.eq(opportunity_id))
        .order_by_asc(member::Column::ContactId)
        .all(conn)
        .await?;
    rows.into_iter().map(member_from_row).collect()
}

pub async fn insert_activity(
    conn: &impl ConnectionTrait,
    tenant: &str,
    a: &Activity,
    now: i64,
) -> Result<(), OpportunityError> {
    activity::Entity::insert(activity_to_row(tenant, a, now)?)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub async fn load_activity(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: &str,
) -> Result<Activity, OpportunityError> {
    let row = activity::Entity::find()
        .filter(activity::Column::TenantId.eq(tenant))
        .filter(activity::Column::Id.eq(id))
        .one(conn)
        .await?;
    activity_from_row(row.ok_or_else(|| OpportunityError::not_found(OPPORTUNITY, id))?)
}

pub async fn list_activities(
    conn: &impl ConnectionTrait,
    tenant: &str,
    opportunity_id: &str,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<Activity>, OpportunityError> {
    let mut q = activity::Entity::find()
        .filter(activity::Column::TenantId.eq(tenant))
        .filter(activity::Column::OpportunityId.eq(opportunity_id));
    if let Some(after) = after {
        q = q.filter(activity::Column::Id.lt(after));
    }
    let rows = q
        .order_by_desc(activity::Column::Id)
        .limit(limit)
        .all(conn)
        .await?;
    rows.into_iter().map(activity_from_row).collect()
}

pub async fn insert_work_hours(
    conn: &impl ConnectionTrait,
    tenant: &str,
    w: &WorkHours,
    now: i64,
) -> Result<(), OpportunityError> {
    work_hours::Entity::insert(work_hours_to_row(tenant, w, now))
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub async fn load_work_hours(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: &str,
) -> Result<WorkHours, OpportunityError> {
    let row = work_hours::Entity::find()
        .filter(work_hours::Column::TenantId.eq(tenant))
        .filter(work_hours::Column::Id.eq(id))
        .one(conn)
        .await?;
    work_hours_from_row(row.ok_or_else(|| OpportunityError::not_found(OPPORTUNITY, id))?)
}

/// A page of the opportunity's hours, and the total minutes of all of them.
pub async fn list_work_hours(
    conn: &impl ConnectionTrait,
    tenant: &str,
    opportunity_id: &str,
    after: Option<&str>,
    limit: u64,
) -> Result<(Vec<WorkHours>, i64), OpportunityError> {
    let mut q = work_hours::Entity::find()
        .filter(work_hours::Column::TenantId.eq(tenant))
        .filter(work_hours::Column::OpportunityId.eq(opportunity_id));
    if let Some(after) = after {
        q = q.filter(work_hours::Column::Id.lt(after));
    }
    let rows = q
        .order_by_desc(work_hours::Column::Id)
        .limit(limit)
        .all(conn)
        .await?;
    let total: Option<i64> = work_hours::Entity::find()
        .select_only()
        .column_as(work_hours::Column::Minutes.sum(), "total")
        .filter(work_hours::Column::TenantId.eq(tenant))
        .filter(work_hours::Column::OpportunityId.eq(opportunity_id))
        .into_tuple::<Option<i64>>()
        .one(conn)
        .await?
        .flatten();
    Ok((
        rows.into_iter()
            .map(work_hours_from_row)
            .collect::<Result<_, _>>()?,
        total.unwrap_or(0),
    ))
}

// ---- approvals

pub async fn insert_approval(
    conn: &impl ConnectionTrait,
    a: &Approval,
) -> Result<(), OpportunityError> {
    approval::Entity::insert(approval_to_row(a)?)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

pub async fn load_approval(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: &str,
) -> Result<Approval, OpportunityError> {
    let row = approval::Entity::find()
        .filter(approval::Column::TenantId.eq(tenant))
        .filter(approval::Column::Id.eq(id))
        .one(conn)
        .await?;
    approval_from_row(row.ok_or_else(|| OpportunityError::not_found(APPROVAL, id))?)
}

/// Stores a changed approval if it is still at `version`.
pub async fn save_approval(
    conn: &impl ConnectionTrait,
    a: &Approval,
    version: i64,
) -> Result<(), OpportunityError> {
    let done = approval::Entity::update_many()
        .set(approval_to_row(a)?)
        .filter(approval::Column::TenantId.eq(a.tenant.as_str()))
        .filter(approval::Column::Id.eq(a.id.as_str()))
        .filter(approval::Column::Version.eq(version))
        .exec(conn)
        .await?;
    saved(&done)
}

pub async fn list_approvals(
    conn: &impl ConnectionTrait,
    tenant: &str,
    f: &ApprovalFilter,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<Approval>, OpportunityError> {
    let mut q = approval::Entity::find().filter(approval::Column::TenantId.eq(tenant));
    if let Some(reader) = &f.reader {
        let accounts = account::Entity::find()
            .select_only()
            .column(account::Column::Id)
            .filter(account::Column::TenantId.eq(tenant))
            .filter(accounts_of(tenant, &reader.person))
            .into_query();
        let roles: Vec<&str> = reader.roles.iter().map(|r| r.as_str()).collect();
        q = q.filter(
            Condition::any()
                .add(approval::Column::SubjectId.in_subquery(teams_of(tenant, &reader.person)))
                .add(approval::Column::SubjectId.in_subquery(accounts))
                .add(approval::Column::AwaitingRole.is_in(roles)),
        );
    }
    if let Some(subject) = &f.subject_id {
        q = q.filter(approval::Column::SubjectId.eq(subject.as_str()));
    }
    if let Some(status) = f.status {
        q = q.filter(approval::Column::Status.eq(status.as_str()));
    }
    if let Some(after) = after {
        q = q.filter(approval::Column::Id.lt(after));
    }
    let rows = q
        .order_by_desc(approval::Column::Id)
        .limit(limit)
        .all(conn)
        .await?;
    rows.into_iter().map(approval_from_row).collect()
}
