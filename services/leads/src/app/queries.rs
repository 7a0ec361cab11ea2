//! Reads, and the tenant's configuration.

use super::App;
use crate::{
    domain::{
        Actor, ChannelStats, Interaction, Lead, LeadConfig, LeadError, ListFilter, StoredConfig,
        channel_stats, check_visible, due_list_owner,
    },
    store,
};

impl App {
    /// The tenant's lead configuration with its version.
    pub async fn stored_config(&self, tenant: &str) -> Result<StoredConfig, LeadError> {
        store::config(self.db(), tenant, &self.defaults).await
    }

    /// The rules the tenant's leads are checked and scored by.
    pub async fn config(&self, tenant: &str) -> Result<LeadConfig, LeadError> {
        Ok(self.stored_config(tenant).await?.config)
    }

    /// A lead the actor may see.
    pub async fn get(&self, tenant: &str, id: &str, actor: &Actor) -> Result<Lead, LeadError> {
        let lead = store::load(self.db(), tenant, id).await?;
        check_visible(&lead, actor)?;
        Ok(lead)
    }

    /// A page of leads, newest first, after the lead id `after`.
    pub async fn list(
        &self,
        tenant: &str,
        filter: &ListFilter,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Lead>, LeadError> {
        store::list(self.db(), tenant, filter, after, limit).await
    }

    /// The due follow-ups of `owner` (the actor's own when empty) by
    /// `before`, after the page key `after`.
    pub async fn due(
        &self,
        tenant: &str,
        actor: &Actor,
        owner: &str,
        before: i64,
        after: Option<(i64, String)>,
        limit: u64,
    ) -> Result<Vec<Lead>, LeadError> {
        let owner = due_list_owner(actor, owner)?;
        store::due(self.db(), tenant, &owner, before, after, limit).await
    }

    /// The owner whose due follow-ups `actor` asks for (see [`Self::due`]),
    /// for binding a page token before the list is read.
    pub fn due_owner(&self, actor: &Actor, owner: &str) -> Result<String, LeadError> {
        due_list_owner(actor, owner)
    }

    /// A page of the interactions of a lead the actor may see.
    pub async fn interactions(
        &self,
        tenant: &str,
        lead_id: &str,
        actor: &Actor,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Interaction>, LeadError> {
        self.get(tenant, lead_id, actor).await?;
        store::list_interactions(self.db(), tenant, lead_id, after, limit).await
    }

    pub async fn channel_stats(&self, tenant: &str) -> Result<Vec<ChannelStats>, LeadError> {
        Ok(channel_stats(
            store::channel_counts(self.db(), tenant).await?,
        ))
    }
}
