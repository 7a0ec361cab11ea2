//! The handover: a signed contract becomes exactly one delivery project.
//! Runs in the consumer's transaction, which also moves its cursor: the
//! project, its audit entry, its events and the cursor commit together,
//! and the unique (tenant, contract family) key stops a second project
//! whatever happens (a replayed event, a second replica).

use crm_events::Event;
use crm_proto::crm::contracts::v1 as contracts;
use crm_types::{AuditEntry, new_id};
use prost::Message as _;
use sea_orm::DatabaseTransaction;

use super::{Result, Trail, UseCases, risks};
use crate::domain::{self, DeliveryError};
use crate::store;
use crate::wire;

/// Who creates projects from handovers, in the audit trail.
pub const HANDOVER_ACTOR: &str = "system:delivery-handover";

/// The event type the service consumes.
pub const CONTRACT_SIGNED: &str = "crm.contracts.v1.ContractSigned";

impl UseCases {
    /// Applies one ContractSigned event of any tenant in that tenant: a new
    /// project, or an amendment's changes to the existing one; a replay
    /// changes nothing. [`DeliveryError::BadHandover`] when the event can
    /// never make a project (the consumer parks it).
    pub async fn apply_handover(&self, txn: &DatabaseTransaction, event: &Event) -> Result<()> {
        if event.r#type != CONTRACT_SIGNED {
            return Ok(());
        }
        let tenant = event.tenant_id.as_str();
        if tenant.is_empty() {
            return Err(DeliveryError::BadHandover(
                "the event names no tenant".into(),
            ));
        }
        let payload = event
            .payload
            .as_ref()
            .ok_or_else(|| DeliveryError::BadHandover("no payload".into()))?;
        let signed = contracts::ContractSigned::decode(payload.value.as_slice())
            .map_err(|e| DeliveryError::BadHandover(format!("payload does not decode: {e}")))?;
        let time = event.time.as_ref().map_or_else(crm_types::now_micros, |t| {
            t.seconds.saturating_mul(1_000_000)
        });
        let (handover, package) =
            wire::handover(&signed, time).map_err(DeliveryError::BadHandover)?;
        let now = crm_types::now_micros();
        let cfg = store::config(txn, tenant, &self.defaults).await?.config;
        let mut trail = Trail::default();
        let project = match store::project_of_family(txn, tenant, &handover.contract_family_id)
            .await?
        {
            None => {
                let p = domain::project_from_handover(
                    tenant,
                    new_id(),
                    handover,
                    new_id,
                    HANDOVER_ACTOR,
                    now,
                );
                store::insert_project(txn, &p, package.clone()).await?;
                trail.audit(
                    AuditEntry::new(&p.id, "project.created", HANDOVER_ACTOR, now)
                        .with_reason(format!("contract {} signed", p.handover.contract_id)),
                );
                trail.event(wire::project_created(&p, &package, &cfg, now));
                let mut p = p;
                p.version = 1;
                p
            }
            Some(stored) => {
                let mut p = stored.project;
                let read = p.version;
                let Some(amended) = domain::amend(&mut p, handover, new_id, HANDOVER_ACTOR, now)
                else {
                    tracing::debug!(tenant, project = %p.id, "a handover already applied");
                    return Ok(());
                };
                store::save_project(txn, &p, read, Some(package.clone())).await?;
                p.version = read + 1;
                trail.audit(
                    AuditEntry::new(&p.id, "project.amended", HANDOVER_ACTOR, now).with_reason(
                        format!("contract version {} signed", p.handover.contract_version),
                    ),
                );
                let logged = store::logged(
                    txn,
                    tenant,
                    &p.id,
                    risks::pace_from(domain::Date::of_micros(now), &cfg),
                )
                .await?;
                trail.event(wire::project_updated(
                    &p,
                    &package,
                    &logged,
                    &cfg,
                    &amended.changed,
                    now,
                ));
                p
            }
        };
        risks::reassess(txn, &project, &cfg, now, &mut trail).await?;
        crm_store::audit::append(txn, tenant, trail.audit).await?;
        crm_events::append_many(txn, trail.events).await?;
        // The consumer commits; the sequencer's tick also finds the events
        // if this early wake-up comes before the commit.
        self.outbox.notify();
        Ok(())
    }
}
