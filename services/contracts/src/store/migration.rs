//! The contracts schema. Every list filter, the inbox and every timer the
//! sweeper looks for have an index that serves them.

use crm_store::index;
use sea_orm_migration::{prelude::*, schema::*};

pub struct Migrator;

#[sea_orm_migration::async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut all = crm_store::shared_migrations();
        all.push(Box::new(CreateContracts));
        all.extend(crm_events::migrations());
        all.push(Box::new(ContractsTenantFirstKeys));
        all
    }
}

struct CreateContracts;

impl MigrationName for CreateContracts {
    fn name(&self) -> &str {
        "m0002_contracts"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for CreateContracts {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("contracts")
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(string("tenant_id"))
                    .col(big_integer("version"))
                    .col(string("opportunity_id"))
                    .col(string("family_id"))
                    .col(integer("contract_version"))
                    .col(string("account_id"))
                    .col(string("owner_id"))
                    .col(string("status"))
                    .col(string_null("start_date"))
                    .col(string_null("end_date"))
                    .col(string_null("renewal_due"))
                    .col(string_null("pending_role"))
                    .col(string("pending_assignee"))
                    .col(big_integer_null("pending_since"))
                    .col(big_integer_null("pending_expected"))
                    .col(boolean("pending_overdue"))
                    .col(string_null("receivable_due"))
                    .col(big_integer("create_time"))
                    .col(big_integer("update_time"))
                    .col(text("body"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("contract_members")
                    .if_not_exists()
                    .col(string("tenant_id"))
                    .col(string("member_id"))
                    .col(string("contract_id"))
                    .primary_key(
                        Index::create()
                            .col("tenant_id")
                            .col("member_id")
                            .col("contract_id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("payment_milestones")
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(string("tenant_id"))
                    .col(string("contract_id"))
                    .col(string("account_id"))
                    .col(string("status"))
                    .col(string("due_date"))
                    .col(text("body"))
                    .to_owned(),
            )
            .await?;
        // One first version per opportunity, and one row per version
        // number: CreateContract's and AmendContract's races end here.
        manager
            .create_index(
                index(
                    "contracts_opportunity_version",
                    "contracts",
                    &["tenant_id", "opportunity_id", "contract_version"],
                )
                .unique()
                .to_owned(),
            )
            .await?;
        for (name, table, cols) in [
            // ListContracts: newest first, per filter.
            (
                "contracts_status",
                "contracts",
                &["tenant_id", "status", "id"][..],
            ),
            (
                "contracts_account",
                "contracts",
                &["tenant_id", "account_id", "id"],
            ),
            (
                "contracts_owner",
                "contracts",
                &["tenant_id", "owner_id", "id"],
            ),
            (
                "contracts_end",
                "contracts",
                &["tenant_id", "end_date", "id"],
            ),
            // ListContractVersions.
            (
                "contracts_family",
                "contracts",
                &["tenant_id", "family_id", "contract_version"],
            ),
            // ListApprovalInbox: oldest pending first, per role.
            (
                "contracts_inbox",
                "contracts",
                &["tenant_id", "pending_role", "pending_since", "id"],
            ),
            // The sweeper's timers, across tenants.
            (
                "contracts_start_timer",
                "contracts",
                &["status", "start_date"],
            ),
            ("contracts_end_timer", "contracts", &["status", "end_date"]),
            ("contracts_renewal_timer", "contracts", &["renewal_due"]),
            ("contracts_step_timer", "contracts", &["pending_expected"]),
            (
                "contracts_receivable_timer",
                "contracts",
                &["receivable_due"],
            ),
            (
                "contract_members_contract",
                "contract_members",
                &["contract_id"],
            ),
            // ListPaymentMilestones: earliest due first, per filter.
            (
                "milestones_due",
                "payment_milestones",
                &["tenant_id", "due_date", "id"],
            ),
            (
                "milestones_status",
                "payment_milestones",
                &["tenant_id", "status", "due_date", "id"],
            ),
            (
                "milestones_account",
                "payment_milestones",
                &["tenant_id", "account_id", "due_date", "id"],
            ),
            (
                "milestones_contract",
                "payment_milestones",
                &["contract_id"],
            ),
        ] {
            manager.create_index(index(name, table, cols)).await?;
        }
        Ok(())
    }
}

/// Every primary key leads with the tenant, so that the schema can be
/// distributed by tenant (docs/scaling.md): contracts and payment
/// milestones were keyed by their id alone. Queries name the tenant with
/// every id already.
struct ContractsTenantFirstKeys;

impl MigrationName for ContractsTenantFirstKeys {
    fn name(&self) -> &str {
        "m0003_contracts_tenant_first_keys"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for ContractsTenantFirstKeys {
    /// In a transaction on every backend, as `crm_store::tenant_first_keys`
    /// needs.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crm_store::tenant_first_keys(
            manager,
            &[
                ("contracts", &["tenant_id", "id"]),
                ("payment_milestones", &["tenant_id", "id"]),
            ],
        )
        .await?;
        Ok(())
    }
}
