//! The opportunities schema. Every list filter has an index that serves it.

use crm_store::index;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, QuerySelect};
use sea_orm_migration::{prelude::*, schema::*};

use super::entities::{approval, opportunity, team_member};
use super::mapping::{approval_from_row, opportunity_from_row, team_rows};

pub struct Migrator;

#[sea_orm_migration::async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut all = crm_store::shared_migrations();
        all.push(Box::new(CreateOpportunities));
        all.push(Box::new(TeamMembersAndApprovalReaders));
        all.extend(crm_events::migrations());
        all.push(Box::new(OpportunitiesTenantFirstKeys));
        all
    }
}

struct CreateOpportunities;

impl MigrationName for CreateOpportunities {
    fn name(&self) -> &str {
        "m0002_opportunities"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for CreateOpportunities {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("accounts")
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(string("tenant_id"))
                    .col(big_integer("version"))
                    .col(string("name"))
                    .col(string("name_key"))
                    .col(string("registration_number"))
                    .col(string("industry"))
                    .col(string("region"))
                    .col(string("owner_id"))
                    .col(string_null("pending_approval_id"))
                    .col(big_integer("create_time"))
                    .col(big_integer("update_time"))
                    .col(string("creator"))
                    .col(string("updater"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("contacts")
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(string("tenant_id"))
                    .col(string("account_id"))
                    .col(string("name"))
                    .col(string("name_key"))
                    .col(string("title"))
                    .col(string("phone"))
                    .col(string("email"))
                    .col(big_integer("create_time"))
                    .col(string("creator"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("opportunities")
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(string("tenant_id"))
                    .col(big_integer("version"))
                    .col(string("account_id"))
                    .col(string("name"))
                    .col(string_null("amount_currency"))
                    .col(big_integer_null("amount_units"))
                    .col(integer_null("amount_nanos"))
                    .col(string_null("expected_close_date"))
                    .col(string_null("grade"))
                    .col(string("account_manager_id"))
                    .col(string("solution_manager_id"))
                    .col(string("delivery_manager_id"))
                    .col(text("other_members"))
                    .col(text("competitors"))
                    .col(string("stage"))
                    .col(text("win_loss_reason"))
                    .col(text_null("qualification"))
                    .col(text("solution_summary"))
                    .col(integer_null("workload_person_days"))
                    .col(text_null("quote"))
                    .col(string_null("review_approval_id"))
                    .col(string_null("review_status"))
                    .col(string_null("lead_id"))
                    .col(big_integer("create_time"))
                    .col(big_integer("update_time"))
                    .col(string("creator"))
                    .col(string("updater"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("decision_chain")
                    .if_not_exists()
                    .col(string("opportunity_id"))
                    .col(string("contact_id"))
                    .col(string("tenant_id"))
                    .col(string("role"))
                    .col(integer("relationship"))
                    .col(integer("solution_acceptance"))
                    .col(integer("price_acceptance"))
                    .col(big_integer("update_time"))
                    .primary_key(Index::create().col("opportunity_id").col("contact_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("activities")
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(string("tenant_id"))
                    .col(string("opportunity_id"))
                    .col(string("kind"))
                    .col(text("contact_ids"))
                    .col(big_integer("occur_time"))
                    .col(text("notes"))
                    .col(string("creator"))
                    .col(big_integer("create_time"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("approvals")
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(string("tenant_id"))
                    .col(big_integer("version"))
                    .col(string("kind"))
                    .col(string("subject_id"))
                    .col(string("requester_id"))
                    .col(string("status"))
                    .col(text("steps"))
                    .col(integer("current_step"))
                    .col(text("reason"))
                    .col(text("proposed"))
                    .col(text("snapshot"))
                    .col(big_integer("create_time"))
                    .col(big_integer("update_time"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("work_hours")
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(string("tenant_id"))
                    .col(string("opportunity_id"))
                    .col(string("person_id"))
                    .col(string("work_date"))
                    .col(integer("minutes"))
                    .col(text("notes"))
                    .col(big_integer("create_time"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("stage_violations")
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(string("tenant_id"))
                    .col(string("opportunity_id"))
                    .col(string("from_stage"))
                    .col(string("to_stage"))
                    .col(text("missing"))
                    .col(string("manager_id"))
                    .col(text("reason"))
                    .col(big_integer("time"))
                    .to_owned(),
            )
            .await?;
        // One opportunity per lead: the conversion's idempotency rests on it.
        manager
            .create_index(index("accounts_tenant", "accounts", &["tenant_id", "id"]))
            .await?;
        manager
            .create_index(index(
                "accounts_owner",
                "accounts",
                &["tenant_id", "owner_id", "id"],
            ))
            .await?;
        manager
            .create_index(
                index("accounts_name_key", "accounts", &["tenant_id", "name_key"])
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "contacts_account",
                "contacts",
                &["tenant_id", "account_id", "id"],
            ))
            .await?;
        manager
            .create_index(index(
                "contacts_account_name",
                "contacts",
                &["tenant_id", "account_id", "name_key"],
            ))
            .await?;
        manager
            .create_index(index(
                "opportunities_tenant",
                "opportunities",
                &["tenant_id", "id"],
            ))
            .await?;
        manager
            .create_index(index(
                "opportunities_stage",
                "opportunities",
                &["tenant_id", "stage", "id"],
            ))
            .await?;
        manager
            .create_index(index(
                "opportunities_account",
                "opportunities",
                &["tenant_id", "account_id", "id"],
            ))
            .await?;
        manager
            .create_index(index(
                "opportunities_owner",
                "opportunities",
                &["tenant_id", "account_manager_id", "id"],
            ))
            .await?;
        manager
            .create_index(index(
                "opportunities_solution",
                "opportunities",
                &["tenant_id", "solution_manager_id", "id"],
            ))
            .await?;
        manager
            .create_index(index(
                "opportunities_delivery",
                "opportunities",
                &["tenant_id", "delivery_manager_id", "id"],
            ))
            .await?;
        manager
            .create_index(
                index(
                    "opportunities_lead",
                    "opportunities",
                    &["tenant_id", "lead_id"],
                )
                .unique()
                .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "decision_chain_tenant",
                "decision_chain",
                &["tenant_id", "opportunity_id"],
            ))
            .await?;
        manager
            .create_index(index(
                "activities_opportunity",
                "activities",
                &["tenant_id", "opportunity_id", "id"],
            ))
            .await?;
        manager
            .create_index(index("approvals_tenant", "approvals", &["tenant_id", "id"]))
            .await?;
        manager
            .create_index(index(
                "approvals_subject",
                "approvals",
                &["tenant_id", "subject_id", "id"],
            ))
            .await?;
        manager
            .create_index(index(
                "approvals_status",
                "approvals",
                &["tenant_id", "status", "id"],
            ))
            .await?;
        manager
            .create_index(index(
                "work_hours_opportunity",
                "work_hours",
                &["tenant_id", "opportunity_id", "id"],
            ))
            .await?;
        manager
            .create_index(index(
                "stage_violations_tenant",
                "stage_violations",
                &["tenant_id", "id"],
            ))
            .await?;
        manager
            .create_index(index(
                "stage_violations_opportunity",
                "stage_violations",
                &["tenant_id", "opportunity_id", "id"],
            ))
            .await?;
        Ok(())
    }
}

/// Team membership as rows, matched exactly by the team filter (it was a
/// LIKE on the JSON of the other members, where `%` and `_` matched
/// anyone); and the role a pending approval awaits, which lets its deciders
/// list it. Both are filled in from the existing rows.
struct TeamMembersAndApprovalReaders;

impl MigrationName for TeamMembersAndApprovalReaders {
    fn name(&self) -> &str {
        "m0003_team_members_and_approval_readers"
    }
}

/// Rows per batch while filling in existing data.
const BATCH: u64 = 500;

fn unreadable(err: crate::domain::OpportunityError) -> DbErr {
    DbErr::Migration(format!("existing row cannot be read: {err}"))
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for TeamMembersAndApprovalReaders {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("opportunity_team_members")
                    .if_not_exists()
                    .col(string("opportunity_id"))
                    .col(string("person_id"))
                    .col(string("tenant_id"))
                    .primary_key(Index::create().col("opportunity_id").col("person_id"))
                    .to_owned(),
            )
            .await?;
        // Serves "the opportunities whose team includes this person".
        manager
            .create_index(index(
                "opportunity_team_members_person",
                "opportunity_team_members",
                &["tenant_id", "person_id", "opportunity_id"],
            ))
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("approvals")
                    .add_column(string_null("awaiting_role"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "approvals_awaiting",
                "approvals",
                &["tenant_id", "awaiting_role", "id"],
            ))
            .await?;
        let db = manager.get_connection();
        let mut after = String::new();
        loop {
            let rows = opportunity::Entity::find()
                .filter(opportunity::Column::Id.gt(after.as_str()))
                .order_by_asc(opportunity::Column::Id)
                .limit(BATCH)
                .all(db)
                .await?;
            let Some(last) = rows.last() else { break };
            after = last.id.clone();
            for row in rows {
                let members = team_rows(&opportunity_from_row(row).map_err(unreadable)?);
                if !members.is_empty() {
                    team_member::Entity::insert_many(members)
                        .exec_without_returning(db)
                        .await?;
                }
            }
        }
        let mut after = String::new();
        loop {
            let rows = approval::Entity::find()
                .filter(approval::Column::Id.gt(after.as_str()))
                .filter(approval::Column::Status.eq("pending"))
                .order_by_asc(approval::Column::Id)
                .limit(BATCH)
                .all(db)
                .await?;
            let Some(last) = rows.last() else { break };
            after = last.id.clone();
            for row in rows {
                let id = row.id.clone();
                let awaiting =
                    crate::domain::awaiting_role(&approval_from_row(row).map_err(unreadable)?);
                approval::Entity::update_many()
                    .col_expr(
                        approval::Column::AwaitingRole,
                        Expr::value(awaiting.map(|r| r.as_str().to_owned())),
                    )
                    .filter(approval::Column::Id.eq(id))
                    .exec(db)
                    .await?;
            }
        }
        Ok(())
    }
}

/// Every primary key leads with the tenant, so that the schema can be
/// distributed by tenant (docs/scaling.md): the tables keyed by their id
/// alone, the decision chain and the team members by their opportunity
/// take the tenant first. The indexes the new keys make redundant go.
/// Queries name the tenant with every id already.
struct OpportunitiesTenantFirstKeys;

impl MigrationName for OpportunitiesTenantFirstKeys {
    fn name(&self) -> &str {
        "m0004_opportunities_tenant_first_keys"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for OpportunitiesTenantFirstKeys {
    /// In a transaction on every backend, as `crm_store::tenant_first_keys`
    /// needs.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crm_store::tenant_first_keys(
            manager,
            &[
                ("accounts", &["tenant_id", "id"]),
                ("contacts", &["tenant_id", "id"]),
                ("opportunities", &["tenant_id", "id"]),
                (
                    "decision_chain",
                    &["tenant_id", "opportunity_id", "contact_id"],
                ),
                ("activities", &["tenant_id", "id"]),
                ("approvals", &["tenant_id", "id"]),
                ("work_hours", &["tenant_id", "id"]),
                ("stage_violations", &["tenant_id", "id"]),
                (
                    "opportunity_team_members",
                    &["tenant_id", "opportunity_id", "person_id"],
                ),
            ],
        )
        .await?;
        for index in [
            "accounts_tenant",
            "opportunities_tenant",
            "approvals_tenant",
            "stage_violations_tenant",
            "decision_chain_tenant",
        ] {
            manager
                .get_connection()
                .execute_unprepared(&format!("DROP INDEX IF EXISTS {index}"))
                .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection};

    use super::*;
    use crate::domain::{Opportunity, Stage, Team};
    use crate::store::mapping::opportunity_to_row;

    /// One in-memory database (one connection, or each would have its own).
    async fn at_m0002() -> DatabaseConnection {
        let mut options = ConnectOptions::new("sqlite::memory:");
        options.max_connections(1).min_connections(1);
        let db = Database::connect(options).await.unwrap();
        let upto = crm_store::shared_migrations().len() as u32 + 1;
        Migrator::up(&db, Some(upto)).await.unwrap();
        db
    }

    fn opportunity(id: &str, team: Team) -> Opportunity {
        Opportunity {
            id: id.into(),
            tenant: "t".into(),
            version: 1,
            account_id: "a1".into(),
            name: id.into(),
            amount: None,
            expected_close_date: None,
            grade: None,
            team,
            competitors: vec![],
            stage: Stage::Validate,
            win_loss_reason: String::new(),
            qualification: None,
            solution_summary: String::new(),
            workload_person_days: None,
            quote: None,
            delivery_review: None,
            lead_id: None,
            create_time: 0,
            update_time: 0,
            creator: "amy".into(),
            updater: "amy".into(),
        }
    }

    #[tokio::test]
    async fn existing_teams_and_pending_approvals_are_filled_in() {
        let db = at_m0002().await;
        let team = Team {
            account_manager_id: "amy".into(),
            solution_manager_id: "sol".into(),
            delivery_manager_id: "amy".into(),
            other_member_ids: vec!["alice".into()],
        };
        opportunity::Entity::insert(opportunity_to_row(&opportunity("o1", team)).unwrap())
            .exec_without_returning(&db)
            .await
            .unwrap();
        let steps = r#"[{"role":"manager","decision":"approve","decider_id":"boss","on_behalf_of":"","decide_time":1,"comment":""},{"role":"finance","decision":null,"decider_id":"","on_behalf_of":"","decide_time":null,"comment":""}]"#;
        for (id, kind, status) in [
            ("p1", "bid_approval", "pending"),
            ("p2", "delivery_review", "pending"),
            ("p3", "bid_approval", "rejected"),
        ] {
            db.execute_unprepared(&format!(
                "INSERT INTO approvals (id, tenant_id, version, kind, subject_id, requester_id, \
                 status, steps, current_step, reason, proposed, snapshot, create_time, update_time) \
                 VALUES ('{id}', 't', 1, '{kind}', 'o1', 'amy', '{status}', '{steps}', 1, '', '{{}}', '', 0, 0)"
            ))
            .await
            .unwrap();
        }

        Migrator::up(&db, Some(1)).await.unwrap();

        let mut members: Vec<String> = team_member::Entity::find()
            .filter(team_member::Column::OpportunityId.eq("o1"))
            .all(&db)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.person_id)
            .collect();
        members.sort();
        assert_eq!(members, ["alice", "amy", "sol"]);
        let mut awaiting: Vec<(String, Option<String>)> = approval::Entity::find()
            .all(&db)
            .await
            .unwrap()
            .into_iter()
            .map(|a| (a.id, a.awaiting_role))
            .collect();
        awaiting.sort();
        assert_eq!(
            awaiting,
            [
                ("p1".to_owned(), Some("finance".to_owned())),
                ("p2".to_owned(), None),
                ("p3".to_owned(), None),
            ]
        );
    }
}
