//! The events a change publishes, built by the use case and written to the
//! outbox in the change's transaction: every audit entry as an `AccountChanged` or
//! `OpportunityChanged`, and the milestones other parties act on with a
//! snapshot (created, stage changed, won, lost, approvals).

use crm_events::NewEvent;
use crm_proto::crm::opportunities::v1 as pb;
use crm_types::AuditEntry;

use super::mapping;
use crate::domain::{Account, Approval, Opportunity, OpportunityConfig, Stage, StageViolation};

/// The actions whose record is published whole by its own `...Created`
/// event: a creation is that one event, not also a change.
const CREATIONS: &[&str] = &["account.created", "opportunity.created"];

/// The event of an audit entry, if others care about its kind of record.
pub fn of_entry(tenant: &str, entry: &AuditEntry) -> Option<NewEvent> {
    if CREATIONS.contains(&entry.action.as_str()) {
        return None;
    }
    let audit = Some(crm_rpc::audit_entry(entry.clone()));
    let (subject, time) = (entry.subject_id.as_str(), entry.time);
    if entry.action.starts_with("account.") || entry.action.starts_with("contact.") {
        return Some(NewEvent::new(
            tenant,
            subject,
            time,
            &pb::AccountChanged {
                account: None,
                entry: audit,
            },
        ));
    }
    entry.action.starts_with("opportunity.").then(|| {
        NewEvent::new(
            tenant,
            subject,
            time,
            &pb::OpportunityChanged {
                opportunity: None,
                entry: audit,
            },
        )
    })
}

pub fn account_created(a: &Account, time: i64) -> NewEvent {
    NewEvent::new(
        &a.tenant,
        &a.id,
        time,
        &pb::AccountCreated {
            account: Some(mapping::account_pb(a)),
        },
    )
}

pub fn opportunity_created(o: &Opportunity, config: &OpportunityConfig, time: i64) -> NewEvent {
    NewEvent::new(
        &o.tenant,
        &o.id,
        time,
        &pb::OpportunityCreated {
            opportunity: Some(mapping::opportunity_pb(o, config)),
        },
    )
}

/// A stage change, and won or lost when it closed the opportunity.
pub fn stage_changed(
    o: &Opportunity,
    from: Stage,
    violation: Option<&StageViolation>,
    config: &OpportunityConfig,
    time: i64,
) -> Vec<NewEvent> {
    let snapshot = Some(mapping::opportunity_pb(o, config));
    let mut events = vec![NewEvent::new(
        &o.tenant,
        &o.id,
        time,
        &pb::OpportunityStageChanged {
            opportunity: snapshot.clone(),
            from_stage: mapping::stage_pb(from),
            to_stage: mapping::stage_pb(o.stage),
            violation: violation.map(mapping::violation_pb),
        },
    )];
    match o.stage {
        Stage::Won => events.push(NewEvent::new(
            &o.tenant,
            &o.id,
            time,
            &pb::OpportunityWon {
                opportunity: snapshot,
            },
        )),
        Stage::Lost => events.push(NewEvent::new(
            &o.tenant,
            &o.id,
            time,
            &pb::OpportunityLost {
                opportunity: snapshot,
            },
        )),
        _ => {}
    }
    events
}

pub fn approval_requested(a: &Approval, time: i64) -> NewEvent {
    NewEvent::new(
        &a.tenant,
        &a.id,
        time,
        &pb::ApprovalRequested {
            approval: Some(mapping::approval_pb(a)),
        },
    )
}

pub fn approval_decided(a: &Approval, time: i64) -> NewEvent {
    NewEvent::new(
        &a.tenant,
        &a.id,
        time,
        &pb::ApprovalDecided {
            approval: Some(mapping::approval_pb(a)),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_creation_is_published_by_its_created_event_only() {
        for action in ["account.created", "opportunity.created"] {
            let entry = AuditEntry::new("x", action, "amy", 1);
            assert!(of_entry("t", &entry).is_none(), "{action}");
        }
        let changed = AuditEntry::new("x", "opportunity.updated", "amy", 1);
        assert!(of_entry("t", &changed).is_some());
        let contact = AuditEntry::new("c", "contact.created", "amy", 1);
        assert!(
            of_entry("t", &contact).is_some(),
            "a new contact changes its account"
        );
    }
}
