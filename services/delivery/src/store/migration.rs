//! The delivery schema. Every list filter, every sum and every sweep has
//! an index that serves it; two unique keys carry the service's promises:
//! one project per contract family, one open alert per cause.

use crm_store::index;
use sea_orm_migration::{prelude::*, schema::*};

pub struct Migrator;

#[sea_orm_migration::async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut all = crm_store::shared_migrations();
        all.push(Box::new(CreateDelivery));
        all.extend(crm_events::migrations());
        all.push(Box::new(DeliveryTenantFirstKeys));
        all
    }
}

struct CreateDelivery;

impl MigrationName for CreateDelivery {
    fn name(&self) -> &str {
        "m0002_delivery"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for CreateDelivery {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("projects")
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(string("tenant_id"))
                    .col(big_integer("version"))
                    .col(string("contract_family_id"))
                    .col(string("account_id"))
                    .col(string("project_manager_id"))
                    .col(string("status"))
                    .col(big_integer("create_time"))
                    .col(big_integer("update_time"))
                    .col(text("body"))
                    .col(blob("handover"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("project_members")
                    .if_not_exists()
                    .col(string("tenant_id"))
                    .col(string("member_id"))
                    .col(string("project_id"))
                    .primary_key(
                        Index::create()
                            .col("tenant_id")
                            .col("member_id")
                            .col("project_id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("project_items")
                    .if_not_exists()
                    .col(string("tenant_id"))
                    .col(string("item_id"))
                    .col(string("project_id"))
                    .primary_key(Index::create().col("tenant_id").col("item_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("work_logs")
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(string("tenant_id"))
                    .col(string("project_id"))
                    .col(string("milestone_id"))
                    .col(string("task_id"))
                    .col(string("person_id"))
                    .col(string("work_date"))
                    .col(big_integer("minutes"))
                    .col(text("note"))
                    .col(big_integer("create_time"))
                    .col(string("creator"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("person_days")
                    .if_not_exists()
                    .col(string("tenant_id"))
                    .col(string("person_id"))
                    .col(string("work_date"))
                    .col(big_integer("minutes"))
                    .primary_key(
                        Index::create()
                            .col("tenant_id")
                            .col("person_id")
                            .col("work_date"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("assignments")
                    .if_not_exists()
                    .col(string("tenant_id"))
                    .col(string("task_id"))
                    .col(string("person_id"))
                    .col(string("project_id"))
                    .col(big_integer("minutes"))
                    .col(string("due_date"))
                    .primary_key(Index::create().col("tenant_id").col("task_id"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("risk_alerts")
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(string("tenant_id"))
                    .col(big_integer("version"))
                    .col(string("project_id"))
                    .col(string("person_id"))
                    .col(string("status"))
                    .col(string("cause"))
                    .col(string_null("open_cause"))
                    .col(text("body"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("capacities")
                    .if_not_exists()
                    .col(string("tenant_id"))
                    .col(string("person_id"))
                    .col(big_integer("version"))
                    .col(big_integer("minutes_per_week"))
                    .col(big_integer("update_time"))
                    .col(string("updater"))
                    .primary_key(Index::create().col("tenant_id").col("person_id"))
                    .to_owned(),
            )
            .await?;
        // One project per contract family: a replayed or concurrent
        // handover ends here.
        manager
            .create_index(
                index(
                    "projects_contract_family",
                    "projects",
                    &["tenant_id", "contract_family_id"],
                )
                .unique()
                .to_owned(),
            )
            .await?;
        // One open (or acknowledged) alert per cause; resolved ones keep
        // NULL, which never collides.
        manager
            .create_index(
                index(
                    "risk_alerts_open_cause",
                    "risk_alerts",
                    &["tenant_id", "open_cause"],
                )
                .unique()
                .to_owned(),
            )
            .await?;
        for (name, table, cols) in [
            // ListProjects, newest first, per filter.
            ("projects_tenant", "projects", &["tenant_id", "id"][..]),
            (
                "projects_status",
                "projects",
                &["tenant_id", "status", "id"],
            ),
            (
                "projects_account",
                "projects",
                &["tenant_id", "account_id", "id"],
            ),
            (
                "projects_manager",
                "projects",
                &["tenant_id", "project_manager_id", "id"],
            ),
            // The sweeper: active projects of every tenant.
            ("projects_sweep", "projects", &["status", "tenant_id", "id"]),
            (
                "project_members_project",
                "project_members",
                &["project_id"],
            ),
            ("project_items_project", "project_items", &["project_id"]),
            // ListWorkHours (per person too), the sums of a project, the pace.
            (
                "work_logs_project",
                "work_logs",
                &["tenant_id", "project_id", "id"],
            ),
            (
                "work_logs_person",
                "work_logs",
                &["tenant_id", "project_id", "person_id", "id"],
            ),
            (
                "work_logs_date",
                "work_logs",
                &["tenant_id", "project_id", "work_date"],
            ),
            // A person's planned load within the window; the sweep's people.
            (
                "assignments_person",
                "assignments",
                &["tenant_id", "person_id", "due_date"],
            ),
            ("assignments_project", "assignments", &["project_id"]),
            // ListRiskAlerts, newest first, per filter; a project's alerts.
            ("risk_alerts_tenant", "risk_alerts", &["tenant_id", "id"]),
            (
                "risk_alerts_status",
                "risk_alerts",
                &["tenant_id", "status", "id"],
            ),
            (
                "risk_alerts_project",
                "risk_alerts",
                &["tenant_id", "project_id", "status", "id"],
            ),
            (
                "risk_alerts_person",
                "risk_alerts",
                &["tenant_id", "person_id", "status", "id"],
            ),
        ] {
            manager.create_index(index(name, table, cols)).await?;
        }
        Ok(())
    }
}

/// Every primary key leads with the tenant, so that the schema can be
/// distributed by tenant (docs/scaling.md): projects, work logs and risk
/// alerts were keyed by their id alone. The indexes on (tenant, id) are
/// the new keys' own indexes now, so they go. Queries name the tenant with
/// every id already.
struct DeliveryTenantFirstKeys;

impl MigrationName for DeliveryTenantFirstKeys {
    fn name(&self) -> &str {
        "m0003_delivery_tenant_first_keys"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for DeliveryTenantFirstKeys {
    /// In a transaction on every backend, as `crm_store::tenant_first_keys`
    /// needs.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crm_store::tenant_first_keys(
            manager,
            &[
                ("projects", &["tenant_id", "id"]),
                ("work_logs", &["tenant_id", "id"]),
                ("risk_alerts", &["tenant_id", "id"]),
            ],
        )
        .await?;
        for index in ["projects_tenant", "risk_alerts_tenant"] {
            manager
                .get_connection()
                .execute_unprepared(&format!("DROP INDEX IF EXISTS {index}"))
                .await?;
        }
        Ok(())
    }
}
