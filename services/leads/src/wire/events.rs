//! The events a change publishes: each audit entry of a lead becomes a
//! `LeadChanged`, plus the milestone other parties act on (qualified,
//! disqualified, converted, returned to the pool). Written to the outbox in
//! the change's transaction, with its audit entry.

use crm_events::NewEvent;
use crm_proto::crm::leads::v1 as pb;

use crate::domain::{AuditEntry, Lead, LeadStatus};

/// The events of one change of `lead`, whose status was `before` (none for
/// a new lead).
pub fn of_change(lead: &Lead, before: Option<LeadStatus>, entry: &AuditEntry) -> Vec<NewEvent> {
    let (tenant, id, time) = (lead.tenant.as_str(), lead.id.as_str(), entry.time);
    let proto = || Some(super::lead(lead));
    if entry.action == "lead.created" {
        return vec![NewEvent::new(
            tenant,
            id,
            time,
            &pb::LeadCreated { lead: proto() },
        )];
    }
    if entry.action == "lead.deleted" {
        return vec![NewEvent::new(
            tenant,
            id,
            time,
            &pb::LeadDeleted {
                lead_id: id.to_owned(),
            },
        )];
    }
    let mut events = vec![NewEvent::new(
        tenant,
        id,
        time,
        &pb::LeadChanged {
            lead: proto(),
            entry: Some(crm_rpc::audit_entry(entry.clone())),
        },
    )];
    if before != Some(lead.status) {
        match lead.status {
            LeadStatus::Qualified => events.push(NewEvent::new(
                tenant,
                id,
                time,
                &pb::LeadQualified { lead: proto() },
            )),
            LeadStatus::Disqualified => events.push(NewEvent::new(
                tenant,
                id,
                time,
                &pb::LeadDisqualified { lead: proto() },
            )),
            LeadStatus::Converted => events.push(NewEvent::new(
                tenant,
                id,
                time,
                &pb::LeadConverted { lead: proto() },
            )),
            _ => {}
        }
    }
    if entry.action == "lead.returned_to_pool" {
        let previous_owner_id = entry
            .changes
            .iter()
            .find(|c| c.field == "owner_id")
            .map(|c| c.old.clone())
            .unwrap_or_default();
        events.push(NewEvent::new(
            tenant,
            id,
            time,
            &pb::LeadReturnedToPool {
                lead: proto(),
                previous_owner_id,
            },
        ));
    }
    events
}
