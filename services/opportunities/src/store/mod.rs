//! Persistence of accounts, opportunities and approvals. Each use case runs
//! in one write transaction: load what the domain needs, let it decide,
//! store the result with its audit entry and idempotency record.

mod entities;
mod mapping;
mod migration;

use std::collections::{BTreeMap, BTreeSet};

use crm_store::{
    audit::{self, AuditEntry, FieldChange},
    idempotency::{self, Prior, RequestKey},
};
use crm_types::Money;
use sea_orm::sea_query::{Expr, Func};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    FromQueryResult, QueryFilter, QueryOrder, QuerySelect,
};

use crate::domain::{
    self, Account, Activity, ActivityKind, Actor, Approval, ApprovalKind, ApprovalStatus, Change,
    Contact, Decided, Decision, DecisionRole, GateFacts, Member, OppConfig, OppError, OppPatch,
    Opportunity, ReviewState, Stage, StageViolation, Team, WorkHours, name_key,
};
use entities::{account, activity, approval, contact, member, opportunity, violation, work_hours};
use mapping::*;

pub use migration::Migrator;

pub const ACCOUNT: &str = "crm.opportunities.v1.Account";
pub const CONTACT: &str = "crm.opportunities.v1.Contact";
pub const OPPORTUNITY: &str = "crm.opportunities.v1.Opportunity";
pub const APPROVAL: &str = "crm.opportunities.v1.Approval";

impl From<DbErr> for OppError {
    fn from(err: DbErr) -> Self {
        OppError::Store(Box::new(err))
    }
}

impl crm_store::TxError for OppError {
    fn is_unique_violation(&self) -> bool {
        matches!(self, OppError::Store(e) if e.downcast_ref::<DbErr>().and_then(crm_store::unique_violation).is_some())
    }
}

/// A tenant's opportunity configuration as stored; version 0 is the operator's defaults.
pub type StoredConfig = crm_store::tenant_config::Stored<OppConfig>;

/// Which opportunities a list returns.
#[derive(Debug, Clone, Default)]
pub struct OppFilter {
    /// Sales people: only opportunities whose team they are on.
    pub team_member: Option<String>,
    pub stage: Option<Stage>,
    pub account_id: Option<String>,
    pub owner_id: Option<String>,
}

/// A lead as the conversion sees it.
#[derive(Debug, Clone)]
pub struct LeadSnapshot {
    pub lead_id: String,
    pub company: String,
    pub contact_name: String,
    pub phone: String,
    pub email: String,
    pub industry: String,
    pub region: String,
    pub owner_id: String,
    pub opportunity_name: String,
    pub amount: Option<Money>,
}

/// One stage's pipeline in one currency.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForecastLine {
    pub stage: Stage,
    pub count: i64,
    pub amount: Money,
    pub weighted: Money,
}

fn changes(list: Vec<Change>) -> Vec<FieldChange> {
    list.into_iter()
        .map(|c| FieldChange {
            field: c.field.to_owned(),
            old: c.old,
            new: c.new,
        })
        .collect()
}

/// Appends an audit entry and the event it publishes, in the change's
/// transaction.
async fn record(
    conn: &impl ConnectionTrait,
    tenant: &str,
    entry: AuditEntry,
) -> Result<(), OppError> {
    if let Some(event) = crate::events::of_entry(tenant, &entry) {
        crm_events::append(conn, event).await?;
    }
    Ok(audit::append(conn, tenant, vec![entry]).await?)
}

/// Appends milestone events, in the change's transaction.
async fn publish(
    conn: &impl ConnectionTrait,
    events: Vec<crm_events::NewEvent>,
) -> Result<(), OppError> {
    Ok(crm_events::append_many(conn, events).await?)
}

/// The id an earlier call with the same request id created, if any.
async fn replayed(
    conn: &impl ConnectionTrait,
    key: Option<RequestKey<'_>>,
) -> Result<Option<String>, OppError> {
    let Some(key) = key else { return Ok(None) };
    match idempotency::prior(conn, key).await? {
        Prior::Same(id) => Ok(Some(
            serde_json::from_str(&id).map_err(|e| OppError::Store(Box::new(e)))?,
        )),
        Prior::Conflict => Err(OppError::RequestIdReused),
        Prior::None => Ok(None),
    }
}

async fn remember(
    conn: &impl ConnectionTrait,
    key: Option<RequestKey<'_>>,
    id: &str,
    now: i64,
) -> Result<(), OppError> {
    if let Some(key) = key {
        let outcome = serde_json::to_string(id).map_err(|e| OppError::Store(Box::new(e)))?;
        idempotency::record(conn, key, outcome, now).await?;
    }
    Ok(())
}

async fn load_account(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: &str,
) -> Result<Account, OppError> {
    let row = account::Entity::find()
        .filter(account::Column::TenantId.eq(tenant))
        .filter(account::Column::Id.eq(id))
        .one(conn)
        .await?;
    row.map(account_from_row)
        .ok_or_else(|| OppError::not_found(ACCOUNT, id))
}

async fn load_contact(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: &str,
) -> Result<Contact, OppError> {
    let row = contact::Entity::find()
        .filter(contact::Column::TenantId.eq(tenant))
        .filter(contact::Column::Id.eq(id))
        .one(conn)
        .await?;
    row.map(contact_from_row)
        .ok_or_else(|| OppError::not_found(CONTACT, id))
}

async fn load_opportunity(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: &str,
) -> Result<Opportunity, OppError> {
    let row = opportunity::Entity::find()
        .filter(opportunity::Column::TenantId.eq(tenant))
        .filter(opportunity::Column::Id.eq(id))
        .one(conn)
        .await?;
    opportunity_from_row(row.ok_or_else(|| OppError::not_found(OPPORTUNITY, id))?)
}

async fn load_approval(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: &str,
) -> Result<Approval, OppError> {
    let row = approval::Entity::find()
        .filter(approval::Column::TenantId.eq(tenant))
        .filter(approval::Column::Id.eq(id))
        .one(conn)
        .await?;
    approval_from_row(row.ok_or_else(|| OppError::not_found(APPROVAL, id))?)
}

fn check_etag(etag: &str, version: i64) -> Result<(), OppError> {
    if etag.is_empty() || etag == version.to_string() {
        Ok(())
    } else {
        Err(OppError::Stale)
    }
}

/// Stores a changed opportunity if it is still at `version`: of two
/// concurrent changes from the same version exactly one wins.
async fn save_opportunity(
    conn: &impl ConnectionTrait,
    opp: &Opportunity,
    version: i64,
) -> Result<(), OppError> {
    if opp.version == version {
        return Ok(());
    }
    let done = opportunity::Entity::update_many()
        .set(opportunity_to_row(opp)?)
        .filter(opportunity::Column::TenantId.eq(opp.tenant.as_str()))
        .filter(opportunity::Column::Id.eq(opp.id.as_str()))
        .filter(opportunity::Column::Version.eq(version))
        .exec(conn)
        .await?;
    if done.rows_affected == 0 {
        Err(OppError::Stale)
    } else {
        Ok(())
    }
}

async fn save_account(
    conn: &impl ConnectionTrait,
    a: &Account,
    version: i64,
) -> Result<(), OppError> {
    let done = account::Entity::update_many()
        .set(account_to_row(a))
        .filter(account::Column::TenantId.eq(a.tenant.as_str()))
        .filter(account::Column::Id.eq(a.id.as_str()))
        .filter(account::Column::Version.eq(version))
        .exec(conn)
        .await?;
    if done.rows_affected == 0 {
        Err(OppError::Stale)
    } else {
        Ok(())
    }
}

async fn save_approval(
    conn: &impl ConnectionTrait,
    a: &Approval,
    version: i64,
) -> Result<(), OppError> {
    let done = approval::Entity::update_many()
        .set(approval_to_row(a)?)
        .filter(approval::Column::TenantId.eq(a.tenant.as_str()))
        .filter(approval::Column::Id.eq(a.id.as_str()))
        .filter(approval::Column::Version.eq(version))
        .exec(conn)
        .await?;
    if done.rows_affected == 0 {
        Err(OppError::Stale)
    } else {
        Ok(())
    }
}

/// Voids the approval `id` (a delivery review whose subject changed).
async fn void_approval(
    conn: &impl ConnectionTrait,
    tenant: &str,
    id: &str,
    now: i64,
) -> Result<(), OppError> {
    let mut a = load_approval(conn, tenant, id).await?;
    let version = a.version;
    a.status = ApprovalStatus::Voided;
    a.version += 1;
    a.update_time = now;
    save_approval(conn, &a, version).await
}

async fn gate_facts(
    conn: &impl ConnectionTrait,
    tenant: &str,
    opp_id: &str,
) -> Result<GateFacts, OppError> {
    let members = member::Entity::find()
        .filter(member::Column::TenantId.eq(tenant))
        .filter(member::Column::OpportunityId.eq(opp_id))
        .all(conn)
        .await?;
    let deciders: BTreeSet<String> = members
        .into_iter()
        .filter(|m| m.role == DecisionRole::DecisionMaker.as_str())
        .map(|m| m.contact_id)
        .collect();
    let meetings = activity::Entity::find()
        .filter(activity::Column::TenantId.eq(tenant))
        .filter(activity::Column::OpportunityId.eq(opp_id))
        .filter(activity::Column::Kind.eq(ActivityKind::Meeting.as_str()))
        .all(conn)
        .await?;
    let mut met = false;
    for row in meetings {
        let a = activity_from_row(row)?;
        met |= a.contact_ids.iter().any(|c| deciders.contains(c));
    }
    let approved = approval::Entity::find()
        .select_only()
        .column(approval::Column::Kind)
        .filter(approval::Column::TenantId.eq(tenant))
        .filter(approval::Column::SubjectId.eq(opp_id))
        .filter(approval::Column::Status.eq(ApprovalStatus::Approved.as_str()))
        .into_tuple::<String>()
        .all(conn)
        .await?;
    Ok(GateFacts {
        decision_maker_in_chain: !deciders.is_empty(),
        met_decision_maker: met,
        approved: approved
            .iter()
            .filter_map(|k| ApprovalKind::parse(k))
            .collect(),
    })
}

#[derive(Clone)]
pub struct OppStore {
    db: DatabaseConnection,
    defaults: OppConfig,
    outbox: crm_events::Outbox,
}

impl OppStore {
    pub fn new(db: DatabaseConnection, defaults: OppConfig, outbox: crm_events::Outbox) -> Self {
        OppStore {
            db,
            defaults,
            outbox,
        }
    }

    // ---- configuration

    pub async fn config(&self, tenant: &str) -> Result<StoredConfig, OppError> {
        Ok(crm_store::tenant_config::get(&self.db, tenant, &self.defaults).await?)
    }

    pub async fn replace_config(
        &self,
        tenant: &str,
        config: OppConfig,
        etag: &str,
        actor: &str,
        now: i64,
    ) -> Result<StoredConfig, OppError> {
        use crm_store::tenant_config::{self, ConfigError};
        crm_store::write_tx!(&self.db, |tx| async {
            let subject = format!("opportunity-config/{tenant}");
            tenant_config::replace(
                tx,
                tenant,
                &subject,
                &config,
                &self.defaults,
                etag,
                actor,
                now,
            )
            .await
            .map_err(|e| match e {
                ConfigError::Stale(_) => OppError::Stale,
                ConfigError::Db(e) => e.into(),
            })
        })
    }

    // ---- accounts and contacts

    pub async fn create_account(
        &self,
        key: Option<RequestKey<'_>>,
        account: &Account,
        now: i64,
    ) -> Result<Account, OppError> {
        let result = crm_store::write_tx!(&self.db, |tx| async {
            if let Some(id) = replayed(tx, key).await? {
                return load_account(tx, &account.tenant, &id).await;
            }
            let existing = account::Entity::find()
                .filter(account::Column::TenantId.eq(account.tenant.as_str()))
                .filter(account::Column::NameKey.eq(name_key(&account.name)))
                .one(tx)
                .await?;
            if let Some(existing) = existing {
                return Err(OppError::Precondition("DUPLICATE_ACCOUNT", existing.id));
            }
            account::Entity::insert(account_to_row(account))
                .exec_without_returning(tx)
                .await?;
            let entry = AuditEntry::new(&account.id, "account.created", &account.creator, now)
                .with_changes(changes(vec![Change {
                    field: "name",
                    old: String::new(),
                    new: account.name.clone(),
                }]));
            record(tx, &account.tenant, entry).await?;
            publish(tx, vec![crate::events::account_created(account, now)]).await?;
            remember(tx, key, &account.id, now).await?;
            Ok(account.clone())
        });
        self.outbox.notify();
        result
    }

    pub async fn get_account(&self, tenant: &str, id: &str) -> Result<Account, OppError> {
        load_account(&self.db, tenant, id).await
    }

    pub async fn list_accounts(
        &self,
        tenant: &str,
        owner: Option<&str>,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Account>, OppError> {
        let mut q = account::Entity::find().filter(account::Column::TenantId.eq(tenant));
        if let Some(owner) = owner {
            q = q.filter(account::Column::OwnerId.eq(owner));
        }
        if let Some(after) = after {
            q = q.filter(account::Column::Id.lt(after));
        }
        let rows = q
            .order_by_desc(account::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(account_from_row).collect())
    }

    /// Applies region and owner at once; core fields become an
    /// ACCOUNT_CHANGE approval.
    pub async fn update_account(
        &self,
        tenant: &str,
        id: &str,
        etag: &str,
        immediate: (Option<String>, Option<String>),
        core: BTreeMap<String, String>,
        reason: &str,
        actor: &Actor,
        config: &OppConfig,
        now: i64,
    ) -> Result<(Account, Option<Approval>), OppError> {
        let result = crm_store::write_tx!(&self.db, |tx| async {
            let mut a = load_account(tx, tenant, id).await?;
            check_etag(etag, a.version)?;
            if !actor.supervisor() && a.owner_id != actor.id {
                return Err(OppError::Forbidden(
                    "NOT_ACCOUNT_OWNER",
                    format!("{} does not own account {id}", actor.id),
                ));
            }
            let version = a.version;
            let before = a.clone();
            let (region, owner) = immediate.clone();
            if let Some(region) = region {
                a.region = region;
            }
            if let Some(owner) = owner {
                if !actor.supervisor() {
                    return Err(OppError::Forbidden(
                        "NOT_MANAGER",
                        "only managers reassign accounts".into(),
                    ));
                }
                a.owner_id = owner;
            }
            let core = domain::account_core_change(&a, &core)?;
            let approval = if core.is_empty() {
                None
            } else {
                let mut ap = domain::new_approval(
                    crm_store::new_id(),
                    tenant,
                    ApprovalKind::AccountChange,
                    id,
                    actor,
                    &config.chain(ApprovalKind::AccountChange),
                    reason,
                    now,
                );
                ap.proposed = core;
                approval::Entity::insert(approval_to_row(&ap)?)
                    .exec_without_returning(tx)
                    .await?;
                a.pending_approval_id = Some(ap.id.clone());
                publish(tx, vec![crate::events::approval_requested(&ap, now)]).await?;
                Some(ap)
            };
            let list: Vec<Change> = [
                Change::of("region", &before.region, &a.region),
                Change::of("owner_id", &before.owner_id, &a.owner_id),
                Change::of(
                    "pending_approval_id",
                    before.pending_approval_id.clone().unwrap_or_default(),
                    a.pending_approval_id.clone().unwrap_or_default(),
                ),
            ]
            .into_iter()
            .flatten()
            .collect();
            if !list.is_empty() {
                a.version += 1;
                a.update_time = now;
                a.updater = actor.id.clone();
                save_account(tx, &a, version).await?;
                record(
                    tx,
                    tenant,
                    AuditEntry::new(id, "account.updated", &actor.id, now)
                        .with_changes(changes(list))
                        .with_reason(reason),
                )
                .await?;
            }
            Ok((a, approval))
        });
        self.outbox.notify();
        result
    }

    pub async fn create_contact(
        &self,
        tenant: &str,
        key: Option<RequestKey<'_>>,
        c: &Contact,
        now: i64,
    ) -> Result<Contact, OppError> {
        let result = crm_store::write_tx!(&self.db, |tx| async {
            if let Some(id) = replayed(tx, key).await? {
                return load_contact(tx, tenant, &id).await;
            }
            load_account(tx, tenant, &c.account_id).await?;
            contact::Entity::insert(contact_to_row(tenant, c))
                .exec_without_returning(tx)
                .await?;
            let entry = AuditEntry::new(&c.id, "contact.created", &c.creator, now).with_changes(
                changes(vec![Change {
                    field: "name",
                    old: String::new(),
                    new: c.name.clone(),
                }]),
            );
            record(tx, tenant, entry).await?;
            remember(tx, key, &c.id, now).await?;
            Ok(c.clone())
        });
        self.outbox.notify();
        result
    }

    pub async fn list_contacts(
        &self,
        tenant: &str,
        account_id: &str,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Contact>, OppError> {
        load_account(&self.db, tenant, account_id).await?;
        let mut q = contact::Entity::find()
            .filter(contact::Column::TenantId.eq(tenant))
            .filter(contact::Column::AccountId.eq(account_id));
        if let Some(after) = after {
            q = q.filter(contact::Column::Id.lt(after));
        }
        let rows = q
            .order_by_desc(contact::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?;
        Ok(rows.into_iter().map(contact_from_row).collect())
    }

    // ---- opportunities

    pub async fn create_opportunity(
        &self,
        key: Option<RequestKey<'_>>,
        opp: &Opportunity,
        config: &OppConfig,
        now: i64,
    ) -> Result<Opportunity, OppError> {
        let result = crm_store::write_tx!(&self.db, |tx| async {
            if let Some(id) = replayed(tx, key).await? {
                return load_opportunity(tx, &opp.tenant, &id).await;
            }
            load_account(tx, &opp.tenant, &opp.account_id).await?;
            opportunity::Entity::insert(opportunity_to_row(opp)?)
                .exec_without_returning(tx)
                .await?;
            let entry = AuditEntry::new(&opp.id, "opportunity.created", &opp.creator, now)
                .with_changes(changes(vec![Change {
                    field: "name",
                    old: String::new(),
                    new: opp.name.clone(),
                }]));
            record(tx, &opp.tenant, entry).await?;
            publish(
                tx,
                vec![crate::events::opportunity_created(opp, config, now)],
            )
            .await?;
            remember(tx, key, &opp.id, now).await?;
            Ok(opp.clone())
        });
        self.outbox.notify();
        result
    }

    /// Converts a lead: finds or creates its account (by name) and contact
    /// (by name within the account) and creates its opportunity, unless the
    /// lead already has one: one opportunity per lead however often called.
    pub async fn convert_lead(
        &self,
        tenant: &str,
        lead: &LeadSnapshot,
        actor: &Actor,
        config: &OppConfig,
        now: i64,
    ) -> Result<(Opportunity, Account, Option<String>), OppError> {
        let result = crm_store::write_tx!(&self.db, |tx| async {
            let existing = opportunity::Entity::find()
                .filter(opportunity::Column::TenantId.eq(tenant))
                .filter(opportunity::Column::LeadId.eq(lead.lead_id.as_str()))
                .one(tx)
                .await?;
            if let Some(row) = existing {
                let opp = opportunity_from_row(row)?;
                let account = load_account(tx, tenant, &opp.account_id).await?;
                let contact = find_contact(tx, tenant, &account.id, &lead.contact_name).await?;
                return Ok((opp, account, contact.map(|c| c.id)));
            }
            let owner = if lead.owner_id.is_empty() {
                actor.id.clone()
            } else {
                lead.owner_id.clone()
            };
            let found = account::Entity::find()
                .filter(account::Column::TenantId.eq(tenant))
                .filter(account::Column::NameKey.eq(name_key(&lead.company)))
                .one(tx)
                .await?;
            let account = match found {
                Some(row) => account_from_row(row),
                None => {
                    let a = Account {
                        id: crm_store::new_id(),
                        tenant: tenant.to_owned(),
                        version: 1,
                        name: lead.company.trim().to_owned(),
                        registration_number: String::new(),
                        industry: lead.industry.clone(),
                        region: lead.region.clone(),
                        owner_id: owner.clone(),
                        pending_approval_id: None,
                        create_time: now,
                        update_time: now,
                        creator: actor.id.clone(),
                        updater: actor.id.clone(),
                    };
                    account::Entity::insert(account_to_row(&a))
                        .exec_without_returning(tx)
                        .await?;
                    record(
                        tx,
                        tenant,
                        AuditEntry::new(&a.id, "account.created", &actor.id, now)
                            .with_reason(format!("lead {}", lead.lead_id)),
                    )
                    .await?;
                    publish(tx, vec![crate::events::account_created(&a, now)]).await?;
                    a
                }
            };
            let contact = match find_contact(tx, tenant, &account.id, &lead.contact_name).await? {
                Some(c) => Some(c.id),
                None if lead.contact_name.trim().is_empty() => None,
                None => {
                    let c = Contact {
                        id: crm_store::new_id(),
                        account_id: account.id.clone(),
                        name: lead.contact_name.trim().to_owned(),
                        title: String::new(),
                        phone: lead.phone.clone(),
                        email: lead.email.clone(),
                        create_time: now,
                        creator: actor.id.clone(),
                    };
                    contact::Entity::insert(contact_to_row(tenant, &c))
                        .exec_without_returning(tx)
                        .await?;
                    Some(c.id)
                }
            };
            let name = if lead.opportunity_name.trim().is_empty() {
                account.name.clone()
            } else {
                lead.opportunity_name.trim().to_owned()
            };
            let opp = Opportunity {
                id: crm_store::new_id(),
                tenant: tenant.to_owned(),
                version: 1,
                account_id: account.id.clone(),
                name,
                amount: lead.amount.clone(),
                expected_close_date: None,
                grade: None,
                team: Team {
                    account_manager_id: owner,
                    ..Team::default()
                },
                competitors: vec![],
                stage: Stage::Validate,
                win_loss_reason: String::new(),
                qualification: None,
                solution_summary: String::new(),
                workload_person_days: None,
                quote: None,
                delivery_review: None,
                lead_id: Some(lead.lead_id.clone()),
                create_time: now,
                update_time: now,
                creator: actor.id.clone(),
                updater: actor.id.clone(),
            };
            opportunity::Entity::insert(opportunity_to_row(&opp)?)
                .exec_without_returning(tx)
                .await?;
            record(
                tx,
                tenant,
                AuditEntry::new(&opp.id, "opportunity.created", &actor.id, now)
                    .with_reason(format!("converted from lead {}", lead.lead_id)),
            )
            .await?;
            publish(
                tx,
                vec![crate::events::opportunity_created(&opp, config, now)],
            )
            .await?;
            Ok((opp, account, contact))
        });
        self.outbox.notify();
        result
    }

    pub async fn get_opportunity(&self, tenant: &str, id: &str) -> Result<Opportunity, OppError> {
        load_opportunity(&self.db, tenant, id).await
    }

    pub async fn list_opportunities(
        &self,
        tenant: &str,
        f: &OppFilter,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Opportunity>, OppError> {
        use opportunity::Column;
        let mut q = opportunity::Entity::find().filter(Column::TenantId.eq(tenant));
        if let Some(me) = &f.team_member {
            q = q.filter(
                Condition::any()
                    .add(Column::AccountManagerId.eq(me.as_str()))
                    .add(Column::SolutionManagerId.eq(me.as_str()))
                    .add(Column::DeliveryManagerId.eq(me.as_str()))
                    .add(Column::OtherMembers.contains(format!("{me:?}"))),
            );
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
        let rows = q
            .order_by_desc(Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?;
        rows.into_iter().map(opportunity_from_row).collect()
    }

    pub async fn update_opportunity(
        &self,
        tenant: &str,
        id: &str,
        etag: &str,
        patches: Vec<OppPatch>,
        actor: &Actor,
        now: i64,
    ) -> Result<Opportunity, OppError> {
        let result = crm_store::write_tx!(&self.db, |tx| async {
            let mut opp = load_opportunity(tx, tenant, id).await?;
            check_etag(etag, opp.version)?;
            let version = opp.version;
            let live_review = opp.delivery_review.clone();
            let list = domain::update(&mut opp, patches.clone(), actor, now)?;
            if let (Some(before), Some(after)) = (&live_review, &opp.delivery_review)
                && before.status != after.status
                && after.status == ApprovalStatus::Voided
            {
                void_approval(tx, tenant, &after.approval_id, now).await?;
            }
            if !list.is_empty() {
                save_opportunity(tx, &opp, version).await?;
                record(
                    tx,
                    tenant,
                    AuditEntry::new(id, "opportunity.updated", &actor.id, now)
                        .with_changes(changes(list)),
                )
                .await?;
            }
            Ok(opp)
        });
        self.outbox.notify();
        result
    }

    pub async fn advance(
        &self,
        tenant: &str,
        id: &str,
        etag: &str,
        target: Stage,
        override_reason: &str,
        actor: &Actor,
        config: &OppConfig,
        now: i64,
    ) -> Result<(Opportunity, Option<StageViolation>), OppError> {
        let result = crm_store::write_tx!(&self.db, |tx| async {
            let mut opp = load_opportunity(tx, tenant, id).await?;
            check_etag(etag, opp.version)?;
            let (version, from) = (opp.version, opp.stage);
            let facts = gate_facts(tx, tenant, id).await?;
            let (list, violation) = domain::advance(
                &mut opp,
                target,
                actor,
                override_reason,
                &facts,
                config,
                crm_store::new_id(),
                now,
            )?;
            save_opportunity(tx, &opp, version).await?;
            if let Some(v) = &violation {
                violation::Entity::insert(violation_to_row(tenant, v)?)
                    .exec_without_returning(tx)
                    .await?;
            }
            let reason = violation
                .as_ref()
                .map(|v| format!("gate overridden: {}", v.reason))
                .unwrap_or_default();
            record(
                tx,
                tenant,
                AuditEntry::new(id, "opportunity.stage_changed", &actor.id, now)
                    .with_changes(changes(list))
                    .with_reason(reason),
            )
            .await?;
            publish(
                tx,
                crate::events::stage_changed(&opp, from, violation.as_ref(), config, now),
            )
            .await?;
            Ok((opp, violation))
        });
        self.outbox.notify();
        result
    }

    // ---- decision chain, activities, hours

    pub async fn set_member(
        &self,
        tenant: &str,
        opp_id: &str,
        m: &Member,
        actor: &Actor,
        now: i64,
    ) -> Result<Member, OppError> {
        let result = crm_store::write_tx!(&self.db, |tx| async {
            let opp = load_opportunity(tx, tenant, opp_id).await?;
            opp.check_access(actor)?;
            let contact = load_contact(tx, tenant, &m.contact_id).await?;
            if contact.account_id != opp.account_id {
                return Err(OppError::invalid(
                    "member.contact_id",
                    "a contact of the opportunity's account",
                ));
            }
            member::Entity::delete_many()
                .filter(member::Column::TenantId.eq(tenant))
                .filter(member::Column::OpportunityId.eq(opp_id))
                .filter(member::Column::ContactId.eq(m.contact_id.as_str()))
                .exec(tx)
                .await?;
            member::Entity::insert(member_to_row(tenant, opp_id, m, now))
                .exec_without_returning(tx)
                .await?;
            let text = format!(
                "{} {}/{}/{}",
                m.role, m.relationship, m.solution_acceptance, m.price_acceptance
            );
            record(
                tx,
                tenant,
                AuditEntry::new(opp_id, "opportunity.decision_chain_set", &actor.id, now)
                    .with_changes(vec![FieldChange {
                        field: format!("decision_chain.{}", m.contact_id),
                        old: String::new(),
                        new: text,
                    }]),
            )
            .await?;
            Ok(m.clone())
        });
        self.outbox.notify();
        result
    }

    pub async fn decision_chain(
        &self,
        tenant: &str,
        opp_id: &str,
    ) -> Result<Vec<Member>, OppError> {
        let rows = member::Entity::find()
            .filter(member::Column::TenantId.eq(tenant))
            .filter(member::Column::OpportunityId.eq(opp_id))
            .order_by_asc(member::Column::ContactId)
            .all(&self.db)
            .await?;
        rows.into_iter().map(member_from_row).collect()
    }

    pub async fn log_activity(
        &self,
        tenant: &str,
        key: Option<RequestKey<'_>>,
        a: &Activity,
        actor: &Actor,
        now: i64,
    ) -> Result<Activity, OppError> {
        let result = crm_store::write_tx!(&self.db, |tx| async {
            if let Some(id) = replayed(tx, key).await? {
                let row = activity::Entity::find_by_id(id.clone()).one(tx).await?;
                return activity_from_row(
                    row.ok_or_else(|| OppError::not_found(OPPORTUNITY, &a.opportunity_id))?,
                );
            }
            let opp = load_opportunity(tx, tenant, &a.opportunity_id).await?;
            opp.check_access(actor)?;
            for (i, contact_id) in a.contact_ids.iter().enumerate() {
                let c = load_contact(tx, tenant, contact_id).await?;
                if c.account_id != opp.account_id {
                    return Err(OppError::invalid(
                        format!("activity.contact_ids[{i}]"),
                        "a contact of the opportunity's account",
                    ));
                }
            }
            activity::Entity::insert(activity_to_row(tenant, a, now)?)
                .exec_without_returning(tx)
                .await?;
            record(
                tx,
                tenant,
                AuditEntry::new(
                    &a.opportunity_id,
                    "opportunity.activity_logged",
                    &actor.id,
                    now,
                )
                .with_reason(a.kind.as_str()),
            )
            .await?;
            remember(tx, key, &a.id, now).await?;
            Ok(a.clone())
        });
        self.outbox.notify();
        result
    }

    pub async fn activities(
        &self,
        tenant: &str,
        opp_id: &str,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Activity>, OppError> {
        let mut q = activity::Entity::find()
            .filter(activity::Column::TenantId.eq(tenant))
            .filter(activity::Column::OpportunityId.eq(opp_id));
        if let Some(after) = after {
            q = q.filter(activity::Column::Id.lt(after));
        }
        let rows = q
            .order_by_desc(activity::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?;
        rows.into_iter().map(activity_from_row).collect()
    }

    pub async fn log_work_hours(
        &self,
        tenant: &str,
        key: Option<RequestKey<'_>>,
        w: &WorkHours,
        actor: &Actor,
        now: i64,
    ) -> Result<WorkHours, OppError> {
        let result = crm_store::write_tx!(&self.db, |tx| async {
            if let Some(id) = replayed(tx, key).await? {
                let row = work_hours::Entity::find_by_id(id.clone()).one(tx).await?;
                return work_hours_from_row(
                    row.ok_or_else(|| OppError::not_found(OPPORTUNITY, &w.opportunity_id))?,
                );
            }
            let opp = load_opportunity(tx, tenant, &w.opportunity_id).await?;
            opp.check_access(actor)?;
            work_hours::Entity::insert(work_hours_to_row(tenant, w, now))
                .exec_without_returning(tx)
                .await?;
            record(
                tx,
                tenant,
                AuditEntry::new(
                    &w.opportunity_id,
                    "opportunity.work_hours_logged",
                    &actor.id,
                    now,
                )
                .with_reason(format!(
                    "{} minutes on {}",
                    w.minutes,
                    w.work_date.iso()
                )),
            )
            .await?;
            remember(tx, key, &w.id, now).await?;
            Ok(w.clone())
        });
        self.outbox.notify();
        result
    }

    pub async fn work_hours(
        &self,
        tenant: &str,
        opp_id: &str,
        after: Option<&str>,
        limit: u64,
    ) -> Result<(Vec<WorkHours>, i64), OppError> {
        let mut q = work_hours::Entity::find()
            .filter(work_hours::Column::TenantId.eq(tenant))
            .filter(work_hours::Column::OpportunityId.eq(opp_id));
        if let Some(after) = after {
            q = q.filter(work_hours::Column::Id.lt(after));
        }
        let rows = q
            .order_by_desc(work_hours::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?;
        let total: Option<i64> = work_hours::Entity::find()
            .select_only()
            .column_as(work_hours::Column::Minutes.sum(), "total")
            .filter(work_hours::Column::TenantId.eq(tenant))
            .filter(work_hours::Column::OpportunityId.eq(opp_id))
            .into_tuple::<Option<i64>>()
            .one(&self.db)
            .await?
            .flatten();
        Ok((
            rows.into_iter()
                .map(work_hours_from_row)
                .collect::<Result<_, _>>()?,
            total.unwrap_or(0),
        ))
    }

    pub async fn violations(
        &self,
        tenant: &str,
        opp_id: Option<&str>,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<StageViolation>, OppError> {
        let mut q = violation::Entity::find().filter(violation::Column::TenantId.eq(tenant));
        if let Some(opp) = opp_id {
            q = q.filter(violation::Column::OpportunityId.eq(opp));
        }
        if let Some(after) = after {
            q = q.filter(violation::Column::Id.lt(after));
        }
        let rows = q
            .order_by_desc(violation::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?;
        rows.into_iter().map(violation_from_row).collect()
    }

    // ---- approvals

    pub async fn request_approval(
        &self,
        tenant: &str,
        key: Option<RequestKey<'_>>,
        kind: ApprovalKind,
        opp_id: &str,
        reason: &str,
        actor: &Actor,
        config: &OppConfig,
        now: i64,
    ) -> Result<Approval, OppError> {
        let result = crm_store::write_tx!(&self.db, |tx| async {
            if let Some(id) = replayed(tx, key).await? {
                return load_approval(tx, tenant, &id).await;
            }
            let mut opp = load_opportunity(tx, tenant, opp_id).await?;
            opp.check_access(actor)?;
            if opp.stage.is_final() {
                return Err(OppError::Precondition(
                    "OPPORTUNITY_CLOSED",
                    format!("the opportunity is {}", opp.stage),
                ));
            }
            let mut ap = domain::new_approval(
                crm_store::new_id(),
                tenant,
                kind,
                opp_id,
                actor,
                &config.chain(kind),
                reason,
                now,
            );
            if kind == ApprovalKind::DeliveryReview {
                let mut missing = Vec::new();
                if opp.team.delivery_manager_id.is_empty() {
                    missing.push("team.delivery_manager_id");
                }
                if opp.solution_summary.trim().is_empty() {
                    missing.push("solution_summary");
                }
                if opp.workload_person_days.is_none() {
                    missing.push("workload_person_days");
                }
                if opp.quote.is_none() {
                    missing.push("quote");
                }
                if !missing.is_empty() {
                    return Err(OppError::GateNotMet(
                        missing
                            .into_iter()
                            .map(|f| domain::Missing {
                                kind: "FIELD".into(),
                                subject: f.into(),
                                description: format!("{f} must be filled before the review"),
                            })
                            .collect(),
                    ));
                }
                if let Some(live) = opp.delivery_review.as_ref().filter(|r| {
                    matches!(r.status, ApprovalStatus::Pending | ApprovalStatus::Approved)
                }) {
                    return Err(OppError::Precondition(
                        "REVIEW_EXISTS",
                        format!("delivery review {} is {}", live.approval_id, live.status),
                    ));
                }
                ap.snapshot = opp.review_snapshot();
                let version = opp.version;
                opp.delivery_review = Some(ReviewState {
                    approval_id: ap.id.clone(),
                    status: ApprovalStatus::Pending,
                });
                opp.version += 1;
                opp.update_time = now;
                opp.updater = actor.id.clone();
                save_opportunity(tx, &opp, version).await?;
            }
            approval::Entity::insert(approval_to_row(&ap)?)
                .exec_without_returning(tx)
                .await?;
            record(
                tx,
                tenant,
                AuditEntry::new(&ap.id, "approval.requested", &actor.id, now)
                    .with_reason(format!("{kind} for {opp_id}: {reason}")),
            )
            .await?;
            publish(tx, vec![crate::events::approval_requested(&ap, now)]).await?;
            remember(tx, key, &ap.id, now).await?;
            Ok(ap)
        });
        self.outbox.notify();
        result
    }

    pub async fn get_approval(&self, tenant: &str, id: &str) -> Result<Approval, OppError> {
        load_approval(&self.db, tenant, id).await
    }

    pub async fn list_approvals(
        &self,
        tenant: &str,
        subject: Option<&str>,
        status: Option<ApprovalStatus>,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Approval>, OppError> {
        let mut q = approval::Entity::find().filter(approval::Column::TenantId.eq(tenant));
        if let Some(subject) = subject {
            q = q.filter(approval::Column::SubjectId.eq(subject));
        }
        if let Some(status) = status {
            q = q.filter(approval::Column::Status.eq(status.as_str()));
        }
        if let Some(after) = after {
            q = q.filter(approval::Column::Id.lt(after));
        }
        let rows = q
            .order_by_desc(approval::Column::Id)
            .limit(limit)
            .all(&self.db)
            .await?;
        rows.into_iter().map(approval_from_row).collect()
    }

    /// Decides the current step; a final decision takes effect in the same
    /// transaction (an account change applied, a delivery review recorded).
    pub async fn decide(
        &self,
        tenant: &str,
        id: &str,
        etag: &str,
        decision: Decision,
        comment: &str,
        on_behalf_of: &str,
        actor: &Actor,
        now: i64,
    ) -> Result<Approval, OppError> {
        let result = crm_store::write_tx!(&self.db, |tx| async {
            let mut ap = load_approval(tx, tenant, id).await?;
            check_etag(etag, ap.version)?;
            let version = ap.version;
            let mut review_of = None;
            if ap.kind == ApprovalKind::DeliveryReview {
                review_of = Some(load_opportunity(tx, tenant, &ap.subject_id).await?);
            }
            let delivery_manager = review_of
                .as_ref()
                .map(|o| o.team.delivery_manager_id.clone());
            let decided = domain::decide(
                &mut ap,
                actor,
                decision,
                comment,
                on_behalf_of,
                delivery_manager.as_deref(),
                now,
            )?;
            save_approval(tx, &ap, version).await?;
            let final_status = match decided {
                Decided::Approved => Some(ApprovalStatus::Approved),
                Decided::Rejected => Some(ApprovalStatus::Rejected),
                Decided::Advanced => None,
            };
            if let (Some(status), Some(mut opp)) = (final_status, review_of) {
                let v = opp.version;
                opp.delivery_review = Some(ReviewState {
                    approval_id: ap.id.clone(),
                    status,
                });
                opp.version += 1;
                opp.update_time = now;
                opp.updater = actor.id.clone();
                save_opportunity(tx, &opp, v).await?;
            }
            if ap.kind == ApprovalKind::AccountChange && final_status.is_some() {
                let mut account = load_account(tx, tenant, &ap.subject_id).await?;
                let v = account.version;
                let list = if final_status == Some(ApprovalStatus::Approved) {
                    domain::apply_account_change(&mut account, &ap.proposed, &actor.id, now)
                } else {
                    account.pending_approval_id = None;
                    account.version += 1;
                    account.update_time = now;
                    Vec::new()
                };
                save_account(tx, &account, v).await?;
                record(
                    tx,
                    tenant,
                    AuditEntry::new(&account.id, "account.core_fields_changed", &actor.id, now)
                        .with_changes(changes(list))
                        .with_reason(format!("approval {id} {decided:?}")),
                )
                .await?;
            }
            let step = ap.steps.iter().rev().find(|s| s.decision.is_some());
            let who = step
                .map(|s| {
                    if s.on_behalf_of.is_empty() {
                        s.decider_id.clone()
                    } else {
                        format!("{} for {}", s.decider_id, s.on_behalf_of)
                    }
                })
                .unwrap_or_default();
            record(
                tx,
                tenant,
                AuditEntry::new(id, "approval.decided", &actor.id, now)
                    .with_reason(format!("{decision} by {who}: {}", comment.trim())),
            )
            .await?;
            publish(tx, vec![crate::events::approval_decided(&ap, now)]).await?;
            Ok(ap)
        });
        self.outbox.notify();
        result
    }

    // ---- pipeline

    /// The open pipeline per stage and currency, weighted by the stage
    /// probabilities: one aggregate query.
    pub async fn forecast(
        &self,
        tenant: &str,
        owner: Option<&str>,
        config: &OppConfig,
    ) -> Result<Vec<ForecastLine>, OppError> {
        #[derive(FromQueryResult)]
        struct Row {
            stage: String,
            amount_currency: String,
            count: i64,
            units: i64,
            nanos: i64,
        }
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
                Expr::from(Func::cast_as(Column::AmountUnits.sum(), "BIGINT")),
                "units",
            )
            .column_as(
                Expr::from(Func::cast_as(Column::AmountNanos.sum(), "BIGINT")),
                "nanos",
            )
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
            .all(&self.db)
            .await?;
        let mut lines: Vec<ForecastLine> = rows
            .into_iter()
            .filter_map(|r| {
                let stage = Stage::parse(&r.stage)?;
                let total = i128::from(r.units) * 1_000_000_000 + i128::from(r.nanos);
                let amount = Money::from_total_nanos(&r.amount_currency, total)?;
                let weighted = amount.percent(config.probability(stage));
                Some(ForecastLine {
                    stage,
                    count: r.count,
                    amount,
                    weighted,
                })
            })
            .collect();
        lines.sort_by(|a, b| (a.stage, &a.amount.currency).cmp(&(b.stage, &b.amount.currency)));
        Ok(lines)
    }

    pub async fn audit_entries(
        &self,
        tenant: &str,
        subject: Option<&str>,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<AuditEntry>, OppError> {
        Ok(audit::list(&self.db, tenant, subject, after, limit).await?)
    }
}

async fn find_contact(
    conn: &impl ConnectionTrait,
    tenant: &str,
    account_id: &str,
    name: &str,
) -> Result<Option<Contact>, OppError> {
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
