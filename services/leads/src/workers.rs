//! The service's own work: the sweeper that returns overdue leads to the
//! pool, and automatic conversion (DOMAIN 1): a lead whose score reached
//! the tenant's threshold is converted into an opportunity exactly once,
//! driven by its own `LeadQualified` event. While the opportunities service
//! is down the event stays unapplied and is retried with backoff, so the
//! lead converts when it comes back.

use std::{future::Future, sync::Arc, time::Duration};

use crm_auth::{BearerToken, TokenMinter};
use crm_events::{Event, LocalHandler};
use crm_proto::crm::leads::v1 as pb;
use prost::Message;
use sea_orm::DatabaseTransaction;

use crate::{
    app::{App, Converted},
    domain::{Actor, LeadError, LeadStatus, Role},
};

/// Who converts, in the audit trail and towards the opportunities service.
pub const CONVERTER: &str = "system:leads-converter";

/// Returns overdue leads to the pool every `interval` until `shutdown`
/// completes, `batch` leads per unit of work, acting as `sweeper`.
pub fn spawn_sweeper(
    app: App,
    sweeper: &'static str,
    interval: Duration,
    batch: u64,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::pin!(shutdown);
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = ticks.tick() => {}
            }
            loop {
                match app
                    .sweep_overdue(sweeper, crm_store::now_micros(), batch)
                    .await
                {
                    Ok(n) if n as u64 == batch => continue,
                    Ok(n) => {
                        if n > 0 {
                            tracing::info!(returned = n, "returned overdue leads to the pool");
                        }
                        break;
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "lead sweep failed; retrying next interval");
                        break;
                    }
                }
            }
        }
    })
}

pub struct AutoConvert {
    pub(crate) app: App,
    pub(crate) identity: Arc<TokenMinter>,
}

fn system() -> Actor {
    Actor::new(CONVERTER, vec![Role::Integration])
}

impl LocalHandler for AutoConvert {
    /// What the remote step produced, or nothing to do (the lead changed
    /// since it qualified).
    type Plan = Option<Converted>;
    type Error = String;

    async fn prepare(&self, event: &Event) -> Result<Option<Converted>, String> {
        let payload = event.payload.as_ref().ok_or("event without payload")?;
        let qualified =
            pb::LeadQualified::decode(payload.value.as_slice()).map_err(|e| e.to_string())?;
        let id = qualified.lead.map(|l| l.id).unwrap_or_default();
        let lead = match self.app.get(&event.tenant_id, &id, &system()).await {
            Ok(lead) => lead,
            Err(LeadError::NotFound(_)) => return Ok(None),
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
            .app
            .convert_remotely(&lead, Some(BearerToken(token)), String::new(), None)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Some(converted))
    }

    async fn apply(
        &self,
        txn: &DatabaseTransaction,
        event: &Event,
        plan: Option<Converted>,
    ) -> Result<(), String> {
        let Some(converted) = plan else {
            return Ok(());
        };
        self.app
            .mark_converted_in(
                txn,
                &event.tenant_id,
                &event.subject_id,
                &converted,
                &system(),
                crm_store::now_micros(),
            )
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}
