//! Persistence of contracts and their milestones: the only place SQL
//! lives. Every function runs on the connection it is given (the use
//! case's transaction, or the pool for a read), filters by tenant, and
//! decides nothing.

mod entities;
mod migration;

use crm_store::uow::RequestIdReused;
use sea_orm::sea_query::{LockBehavior, LockType};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, FromQueryResult,
    QueryFilter, QueryOrder, QuerySelect, QueryTrait,
};

use crate::domain::{
    Contract, ContractError, ContractFilter, ContractsConfig, Date, Inbox, MilestoneFilter,
    Receivable, Status, Visibility, resource,
};
use entities::{contract, member, milestone};

pub use migration::Migrator;

impl From<DbErr> for ContractError {
    fn from(err: DbErr) -> Self {
        ContractError::Store(Box::new(err))
    }
}

impl From<RequestIdReused> for ContractError {
    fn from(_: RequestIdReused) -> Self {
        ContractError::RequestIdReused
    }
}

impl crm_store::TxError for ContractError {
    fn is_unique_violation(&self) -> bool {
        matches!(self, ContractError::Store(e) if e.downcast_ref::<DbErr>().and_then(crm_store::unique_violation).is_some())
    }
}

fn json_err(e: serde_json::Error) -> ContractError {
    ContractError::Store(Box::new(DbErr::Json(e.to_string())))
}

// ---- configuration

/// A tenant's contract configuration as stored; version 0 is the
/// operator's defaults.
pub type StoredConfig = crm_store::tenant_config::Stored<ContractsConfig>;

pub async fn config(
    conn: &impl ConnectionTrait,
    tenant: &str,
    defaults: &ContractsConfig,
) -> Result<StoredConfig, ContractError> {
    Ok(crm_store::tenant_config::get(conn, tenant, defaults).await?)
}

// ---- contracts

fn row(c: &Contract) -> Result<contract::ActiveModel, ContractError> {
    let pending = c.pending_step();
    Ok(contract::ActiveModel {
        id: Set(c.id.clone()),
        tenant_id: Set(c.tenant.clone()),
        version: Set(c.version),
        opportunity_id: Set(c.opportunity_id.clone()),
        family_id: Set(c.family_id.clone()),
        contract_version: Set(c.contract_version),
        account_id: Set(c.account_id.clone()),
        owner_id: Set(c.owner_id.clone()),
        status: Set(c.status.as_str().to_owned()),
        start_date: Set(c.term.map(|t| t.start.iso())),
        end_date: Set(c.term.map(|t| t.end.iso())),
        renewal_due: Set(c.renewal_due.map(|d| d.iso())),
        pending_role: Set(pending.map(|(role, _)| role.as_str().to_owned())),
        pending_assignee: Set(pending
            .map(|(_, info)| info.assignee.clone())
            .unwrap_or_default()),
        pending_since: Set(pending.and_then(|(_, info)| info.start_time)),
        pending_expected: Set(pending.and_then(|(_, info)| info.expected_time)),
        pending_overdue: Set(pending.is_some_and(|(_, info)| info.overdue)),
        receivable_due: Set(c.next_receivable_due().map(|d| d.iso())),
        create_time: Set(c.create_time),
        update_time: Set(c.update_time),
        body: Set(serde_json::to_string(c).map_err(json_err)?),
    })
}

fn from_row(row: contract::Model) -> Result<Contract, ContractError> {
    let mut c: Contract = serde_json::from_str(&row.body).map_err(json_err)?;
    c.version = row.version;
    Ok(c)
}

/// The owner/team rows and the milestone rows of `c`, written anew.
async fn write_children(conn: &impl ConnectionTrait, c: &Contract) -> Result<(), ContractError> {
    member::Entity::delete_many()
        .filter(member::Column::ContractId.eq(&c.id))
        .exec(conn)
        .await?;
    let members: Vec<member::ActiveModel> = c
        .members()
        .into_iter()
        .map(|m| member::ActiveModel {
            tenant_id: Set(c.tenant.clone()),
            member_id: Set(m.to_owned()),
            contract_id: Set(c.id.clone()),
        })
        .collect();
    if !members.is_empty() {
        member::Entity::insert_many(members).exec(conn).await?;
    }
    milestone::Entity::delete_many()
        .filter(milestone::Column::ContractId.eq(&c.id))
        .exec(conn)
        .await?;
    let mut rows = Vec::with_capacity(c.milestones.len());
    for m in &c.milestones {
        rows.push(milestone::ActiveModel {
            id: Set(m.id.clone()),
            tenant_id: Set(c.tenant.clone()),
            contract_id: Set(c.id.clone()),
            account_id: Set(c.account_id.clone()),
            status: Set(m.status.as_str().to_owned()),
            due_date: Set(m.due_date.iso()),
            body: Set(serde_json::to_string(m).map_err(json_err)?),
        });
    }
    if !rows.is_empty() {
        milestone::Entity::insert_many(rows).exec(conn).await?;
    }
    Ok(())
}

pub async fn insert_contract(
    conn: &impl ConnectionTrait,
    c: &Contract,
) -> Result<(), ContractError> {
    contract::Entity::insert(row(c)?).exec(conn).await?;
    write_children(conn, c).await
}

/// Writes `c` if the stored row is still at `read_version`; else
/// [`ContractError::Stale`].
pub async fn save_contract(
    conn: &impl ConnectionTrait,
    c: &Contract,
    read_version: i64,
) -> Result<(), ContractError> {
    let done = contract::Entity::update_many()
        .set(row(c)?)
        .filter(contract::Column::TenantId.eq(&c.tenant))
        .filter(contract::Column::Id.eq(&c.id))
        .filter(contract::Column::Version.eq(read_version))
        .exec(conn)
        .await?;
    if !crm_store::uow::saved(&done) {
        return Err(ContractError::Stale);
    }
    write_children(conn, c).await
}

pub async fn load_contract(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: &str,
) -> Result<Contract, ContractError> {
    contract::Entity::find()
        .filter(contract::Column::TenantId.eq(tenant))
        .filter(contract::Column::Id.eq(id))
        .one(conn)
        .await?
        .map(from_row)
        .transpose()?
        .ok_or_else(|| ContractError::not_found(resource::CONTRACT, id))
}

/// The contract, locked for this transaction (PostgreSQL `FOR UPDATE`: a
/// concurrent command waits and then sees this one's change; on SQLite the
/// write transaction already excludes other writers).
pub async fn load_for_update(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: &str,
) -> Result<Contract, ContractError> {
    contract::Entity::find()
        .filter(contract::Column::TenantId.eq(tenant))
        .filter(contract::Column::Id.eq(id))
        .lock(LockType::Update)
        .one(conn)
        .await?
        .map(from_row)
        .transpose()?
        .ok_or_else(|| ContractError::not_found(resource::CONTRACT, id))
}

/// The contract, locked for this transaction, or `None` if it is gone or
/// another transaction holds it (PostgreSQL `FOR UPDATE SKIP LOCKED`: the
/// sweeper passes over a contract being changed; on SQLite the write
/// transaction already excludes other writers).
pub async fn lock_unless_busy(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: &str,
) -> Result<Option<Contract>, ContractError> {
    contract::Entity::find()
        .filter(contract::Column::TenantId.eq(tenant))
        .filter(contract::Column::Id.eq(id))
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked)
        .one(conn)
        .await?
        .map(from_row)
        .transpose()
}

/// The first version of the opportunity's contract, if it has one.
pub async fn first_version(
    conn: &impl ConnectionTrait,
    tenant: &str,
    opportunity_id: &str,
) -> Result<Option<Contract>, ContractError> {
    contract::Entity::find()
        .filter(contract::Column::TenantId.eq(tenant))
        .filter(contract::Column::OpportunityId.eq(opportunity_id))
        .filter(contract::Column::ContractVersion.eq(1))
        .one(conn)
        .await?
        .map(from_row)
        .transpose()
}

/// The most versions ListContractVersions returns.
pub const MAX_VERSIONS: u64 = 1000;

/// Every version of a family, oldest first.
pub async fn versions(
    conn: &impl ConnectionTrait,
    tenant: &str,
    family_id: &str,
) -> Result<Vec<Contract>, ContractError> {
    contract::Entity::find()
        .filter(contract::Column::TenantId.eq(tenant))
        .filter(contract::Column::FamilyId.eq(family_id))
        .order_by_asc(contract::Column::ContractVersion)
        .limit(MAX_VERSIONS)
        .all(conn)
        .await?
        .into_iter()
        .map(from_row)
        .collect()
}

/// A page of contracts, newest first.
pub async fn list_contracts(
    conn: &impl ConnectionTrait,
    tenant: &str,
    filter: &ContractFilter,
    after: Option<&str>,
    limit: u64,
) -> Result<Vec<Contract>, ContractError> {
    use contract::Column;
    let mut query = contract::Entity::find().filter(Column::TenantId.eq(tenant));
    if let Visibility::Member(person) = &filter.visibility {
        let mine = member::Entity::find()
            .select_only()
            .column(member::Column::ContractId)
            .filter(member::Column::TenantId.eq(tenant))
            .filter(member::Column::MemberId.eq(person.as_str()))
            .into_query();
        query = query.filter(Column::Id.in_subquery(mine));
    }
    if let Some(status) = filter.status {
        query = query.filter(Column::Status.eq(status.as_str()));
    }
    if let Some(account) = &filter.account_id {
        query = query.filter(Column::AccountId.eq(account.as_str()));
    }
    if let Some(owner) = &filter.owner_id {
        query = query.filter(Column::OwnerId.eq(owner.as_str()));
    }
    if let Some(before) = filter.ending_before {
        query = query.filter(Column::EndDate.lt(before.iso()));
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

/// A page of contracts awaiting a decision in `inbox`, oldest pending
/// first; the key is (pending since, id).
pub async fn inbox(
    conn: &impl ConnectionTrait,
    tenant: &str,
    inbox: &Inbox,
    after: Option<&(i64, String)>,
    limit: u64,
) -> Result<Vec<Contract>, ContractError> {
    use contract::Column;
    let mut query = contract::Entity::find()
        .filter(Column::TenantId.eq(tenant))
        .filter(Column::Status.eq(Status::InApproval.as_str()))
        .filter(Column::PendingRole.is_not_null());
    if let Inbox::Roles { person, roles } = inbox {
        let roles: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
        query = query.filter(Column::PendingRole.is_in(roles)).filter(
            Condition::any()
                .add(Column::PendingAssignee.eq(""))
                .add(Column::PendingAssignee.eq(person.as_str())),
        );
    }
    if let Some((since, id)) = after {
        query = query.filter(
            Condition::any().add(Column::PendingSince.gt(*since)).add(
                Condition::all()
                    .add(Column::PendingSince.eq(*since))
                    .add(Column::Id.gt(id.as_str())),
            ),
        );
    }
    query
        .order_by_asc(Column::PendingSince)
        .order_by_asc(Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(from_row)
        .collect()
}

// ---- payment milestones

/// The contract a milestone belongs to.
pub async fn milestone_contract(
    conn: &impl ConnectionTrait,
    tenant: &str,
    milestone_id: &str,
) -> Result<String, ContractError> {
    milestone::Entity::find()
        .filter(milestone::Column::TenantId.eq(tenant))
        .filter(milestone::Column::Id.eq(milestone_id))
        .one(conn)
        .await?
        .map(|m| m.contract_id)
        .ok_or_else(|| ContractError::not_found(resource::MILESTONE, milestone_id))
}

/// A page of milestones, earliest due first; the key is (due date, id).
pub async fn list_milestones(
    conn: &impl ConnectionTrait,
    tenant: &str,
    filter: &MilestoneFilter,
    after: Option<&(String, String)>,
    limit: u64,
) -> Result<Vec<Receivable>, ContractError> {
    use milestone::Column;
    let mut query = milestone::Entity::find().filter(Column::TenantId.eq(tenant));
    if let Some(status) = filter.status {
        query = query.filter(Column::Status.eq(status.as_str()));
    }
    if let Some(before) = filter.due_before {
        query = query.filter(Column::DueDate.lt(before.iso()));
    }
    if let Some(account) = &filter.account_id {
        query = query.filter(Column::AccountId.eq(account.as_str()));
    }
    if let Some((due, id)) = after {
        query = query.filter(
            Condition::any().add(Column::DueDate.gt(due.as_str())).add(
                Condition::all()
                    .add(Column::DueDate.eq(due.as_str()))
                    .add(Column::Id.gt(id.as_str())),
            ),
        );
    }
    query
        .order_by_asc(Column::DueDate)
        .order_by_asc(Column::Id)
        .limit(limit)
        .all(conn)
        .await?
        .into_iter()
        .map(|row| {
            Ok(Receivable {
                milestone: serde_json::from_str(&row.body).map_err(json_err)?,
                contract_id: row.contract_id,
                account_id: row.account_id,
            })
        })
        .collect()
}

// ---- timers

/// A contract with a timer due, in the sweeper's order (tenant, id).
#[derive(Debug, Clone, PartialEq, Eq, FromQueryResult)]
pub struct TimerRef {
    pub tenant_id: String,
    pub id: String,
}

/// Up to `limit` contracts of any tenant with a timer due at `now`
/// (`today` is its UTC date), after `after`: a start date reached, an end
/// date passed, a renewal notice due, a step past its expected time, a
/// milestone past its due date. Only their keys: one that cannot be read
/// is the sweeper's to skip.
pub async fn due_timers(
    conn: &impl ConnectionTrait,
    now: i64,
    today: Date,
    after: Option<&TimerRef>,
    limit: u64,
) -> Result<Vec<TimerRef>, ContractError> {
    use contract::Column;
    let today = today.iso();
    let due = Condition::any()
        .add(
            Condition::all()
                .add(Column::Status.eq(Status::Signed.as_str()))
                .add(Column::StartDate.lte(today.as_str())),
        )
        .add(
            Condition::all()
                .add(Column::Status.eq(Status::Active.as_str()))
                .add(Column::EndDate.lt(today.as_str())),
        )
        .add(Column::RenewalDue.lte(today.as_str()))
        .add(
            Condition::all()
                .add(Column::PendingExpected.lt(now))
                .add(Column::PendingOverdue.eq(false)),
        )
        .add(Column::ReceivableDue.lt(today.as_str()));
    let mut query = contract::Entity::find()
        .select_only()
        .column(Column::TenantId)
        .column(Column::Id)
        .filter(due);
    if let Some(after) = after {
        query = query.filter(
            Condition::any()
                .add(Column::TenantId.gt(after.tenant_id.as_str()))
                .add(
                    Condition::all()
                        .add(Column::TenantId.eq(after.tenant_id.as_str()))
                        .add(Column::Id.gt(after.id.as_str())),
                ),
        );
    }
    Ok(query
        .order_by_asc(Column::TenantId)
        .order_by_asc(Column::Id)
        .limit(limit)
        .into_model::<TimerRef>()
        .all(conn)
        .await?)
}
