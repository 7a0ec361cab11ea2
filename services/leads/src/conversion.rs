//! Automatic conversion (DOMAIN 1): a lead whose score reached the tenant's
//! threshold is converted into an opportunity exactly once, driven by its
//! own `LeadQualified` event. While the opportunities service is down the
//! event stays unapplied and is retried with backoff, so the lead converts
//! when it comes back.

use std::{sync::Arc, time::Duration};

use crm_auth::{BearerToken, Role, TokenMinter};
use crm_events::{Event, LocalHandler};
use crm_proto::crm::leads::v1 as pb;
use prost::Message;
use sea_orm::DatabaseTransaction;

use crate::{
    LeadsApi,
    domain::{Actor, LeadStatus},
    store::LeadStore,
};

/// Who converts, in the audit trail and towards the opportunities service.
pub const CONVERTER: &str = "system:leads-converter";

pub struct AutoConvert {
    pub(crate) store: LeadStore,
    pub(crate) api: LeadsApi,
    pub(crate) identity: Arc<TokenMinter>,
}

/// What the remote step produced: the opportunity and account, or nothing
/// to do (the lead changed since it qualified).
type Plan = Option<(String, String)>;

fn system() -> Actor {
    Actor {
        id: CONVERTER.to_owned(),
        supervisor: true,
        sales: false,
    }
}

impl LocalHandler for AutoConvert {
    type Plan = Plan;
    type Error = String;

    async fn prepare(&self, event: &Event) -> Result<Plan, String> {
        let payload = event.payload.as_ref().ok_or("event without payload")?;
        let qualified =
            pb::LeadQualified::decode(payload.value.as_slice()).map_err(|e| e.to_string())?;
        let id = qualified.lead.map(|l| l.id).unwrap_or_default();
        let lead = match self.store.get(&event.tenant_id, &id).await {
            Ok(lead) => lead,
            Err(crate::domain::LeadError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        if lead.status != LeadStatus::Qualified {
            return Ok(None);
        }
        // The service acts for itself, within the lead's tenant.
        let token = self
            .identity
            .mint(
                CONVERTER,
                &event.tenant_id,
                &[Role::Integration],
                Duration::from_secs(300),
            )
            .map_err(|e| e.to_string())?;
        let converted = self
            .api
            .convert_remotely(&lead, Some(BearerToken(token)), String::new(), None)
            .await
            .map_err(|s| format!("{:?}: {}", s.code(), s.message()))?;
        Ok(Some((
            converted.opportunity.map(|o| o.id).unwrap_or_default(),
            converted.account.map(|a| a.id).unwrap_or_default(),
        )))
    }

    async fn apply(
        &self,
        txn: &DatabaseTransaction,
        event: &Event,
        plan: Plan,
    ) -> Result<(), String> {
        let Some((opportunity_id, account_id)) = plan else {
            return Ok(());
        };
        let id = event.subject_id.as_str();
        self.store
            .mark_converted_in(
                txn,
                &event.tenant_id,
                id,
                &opportunity_id,
                &account_id,
                &system(),
                crm_store::now_micros(),
            )
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
