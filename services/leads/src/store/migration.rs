//! The leads schema. Every list filter has an index that serves it.

use crm_store::index;
use sea_orm_migration::{prelude::*, schema::*};

pub struct Migrator;

#[sea_orm_migration::async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        let mut all = crm_store::shared_migrations();
        all.push(Box::new(CreateLeads));
        all.extend(crm_events::migrations());
        all.push(Box::new(LeadsTenantFirstKeys));
        all
    }
}

struct CreateLeads;

impl MigrationName for CreateLeads {
    fn name(&self) -> &str {
        "m0002_leads"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for CreateLeads {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("leads")
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(string("tenant_id"))
                    .col(big_integer("version"))
                    .col(string("company"))
                    .col(string("contact_name"))
                    .col(string("phone"))
                    .col(string_null("phone_key"))
                    .col(string("email"))
                    .col(string_null("email_key"))
                    .col(string_null("name_key"))
                    .col(string("industry"))
                    .col(string("region"))
                    .col(integer("company_size"))
                    .col(text_null("budget"))
                    .col(string("source_channel"))
                    .col(string_null("owner_id"))
                    .col(string("status"))
                    .col(integer("score"))
                    .col(text("score_breakdown"))
                    .col(big_integer_null("last_follow_up_time"))
                    .col(big_integer_null("next_follow_up_time"))
                    .col(big_integer_null("follow_up_deadline"))
                    .col(big_integer_null("attention_time"))
                    .col(text("notes"))
                    .col(text_null("disqualify_reason"))
                    .col(string_null("opportunity_id"))
                    .col(string_null("account_id"))
                    .col(big_integer("create_time"))
                    .col(big_integer("update_time"))
                    .col(string("creator"))
                    .col(string("updater"))
                    .to_owned(),
            )
            .await?;
        // Duplicate detection: NULL keys never collide on either backend.
        for (name, col) in [
            ("leads_phone_key", "phone_key"),
            ("leads_email_key", "email_key"),
            ("leads_name_key", "name_key"),
        ] {
            manager
                .create_index(
                    index(name, "leads", &["tenant_id", col])
                        .unique()
                        .to_owned(),
                )
                .await?;
        }
        // Lists page newest first by id within each filter.
        for (name, cols) in [
            ("leads_tenant_id", &["tenant_id", "id"][..]),
            ("leads_owner", &["tenant_id", "owner_id", "id"]),
            ("leads_status", &["tenant_id", "status", "id"]),
            ("leads_channel", &["tenant_id", "source_channel", "id"]),
            (
                "leads_channel_stats",
                &["tenant_id", "source_channel", "status"],
            ),
            (
                "leads_due",
                &["tenant_id", "owner_id", "attention_time", "id"],
            ),
            ("leads_overdue", &["follow_up_deadline"]),
        ] {
            manager.create_index(index(name, "leads", cols)).await?;
        }

        manager
            .create_table(
                Table::create()
                    .table("interactions")
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(string("tenant_id"))
                    .col(string("lead_id"))
                    .col(string("kind"))
                    .col(big_integer("occur_time"))
                    .col(text("notes"))
                    .col(string("creator"))
                    .col(big_integer("create_time"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "interactions_lead",
                "interactions",
                &["tenant_id", "lead_id", "id"],
            ))
            .await?;
        // Scoring counts a lead's interactions by kind and by recency.
        manager
            .create_index(index(
                "interactions_tally",
                "interactions",
                &["tenant_id", "lead_id", "kind", "occur_time"],
            ))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table("lead_claims")
                    .if_not_exists()
                    .col(string("id").primary_key())
                    .col(string("tenant_id"))
                    .col(string("claimer"))
                    .col(string("lead_id"))
                    .col(big_integer("claim_time"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "lead_claims_claimer",
                "lead_claims",
                &["tenant_id", "claimer", "claim_time"],
            ))
            .await?;

        Ok(())
    }
}

/// Every primary key leads with the tenant, so that the schema can be
/// distributed by tenant (docs/scaling.md): leads, interactions and
/// claims were keyed by their id alone. The index on (tenant, id) is the
/// new key's own index now, so it goes. Queries name the tenant with every
/// id already.
struct LeadsTenantFirstKeys;

impl MigrationName for LeadsTenantFirstKeys {
    fn name(&self) -> &str {
        "m0003_leads_tenant_first_keys"
    }
}

#[sea_orm_migration::async_trait::async_trait]
impl MigrationTrait for LeadsTenantFirstKeys {
    /// In a transaction on every backend, as `crm_store::tenant_first_keys`
    /// needs.
    fn use_transaction(&self) -> Option<bool> {
        Some(true)
    }

    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crm_store::tenant_first_keys(
            manager,
            &[
                ("leads", &["tenant_id", "id"]),
                ("interactions", &["tenant_id", "id"]),
                ("lead_claims", &["tenant_id", "id"]),
            ],
        )
        .await?;
        manager
            .get_connection()
            .execute_unprepared("DROP INDEX IF EXISTS leads_tenant_id")
            .await?;
        Ok(())
    }
}
