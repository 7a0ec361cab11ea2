//! Reads, with the same visibility rule as the commands.

use crm_types::Actor;

use super::{Page, Result, UseCases};
use crate::domain::{self, Contract, ContractFilter, Inbox, MilestoneFilter, Receivable};
use crate::store;

impl UseCases {
    /// The contract `id`, if `actor` sees it.
    pub async fn get(&self, actor: &Actor, tenant: &str, id: &str) -> Result<Contract> {
        let c = store::load_contract(self.db(), tenant, id).await?;
        domain::check_visible(&c, actor)?;
        Ok(c)
    }

    pub async fn list(
        &self,
        tenant: &str,
        filter: &ContractFilter,
        page: Page<'_, String>,
    ) -> Result<Vec<Contract>> {
        store::list_contracts(
            self.db(),
            tenant,
            filter,
            page.after.map(String::as_str),
            page.limit,
        )
        .await
    }

    /// Every version of the family of a contract `actor` sees.
    pub async fn versions(&self, actor: &Actor, tenant: &str, id: &str) -> Result<Vec<Contract>> {
        let c = self.get(actor, tenant, id).await?;
        store::versions(self.db(), tenant, &c.family_id).await
    }

    /// The contracts awaiting a decision by `actor`.
    pub async fn inbox(
        &self,
        actor: &Actor,
        tenant: &str,
        page: Page<'_, (i64, String)>,
    ) -> Result<Vec<Contract>> {
        store::inbox(self.db(), tenant, &Inbox::of(actor), page.after, page.limit).await
    }

    pub async fn milestones(
        &self,
        tenant: &str,
        filter: &MilestoneFilter,
        page: Page<'_, (String, String)>,
    ) -> Result<Vec<Receivable>> {
        store::list_milestones(self.db(), tenant, filter, page.after, page.limit).await
    }
}
