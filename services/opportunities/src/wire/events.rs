//! The events a change publishes, built by the use case and written to the
//! outbox in the change's transaction: each change of an account or an
//! opportunity as an `AccountChanged` or `OpportunityChanged` with its audit
//! entry and the record after the change, and the milestones other parties
//! act on with a snapshot (created, stage changed, won, lost, approvals).

use crm_events::NewEvent;
use crm_proto::crm::opportunities::v1 as pb;
use crm_types::AuditEntry;

use super::mapping;
use crate::domain::{Account, Approval, Opportunity, OpportunityConfig, Stage, StageViolation};

/// A change of `account` or of one of its contacts, with the audit entry
/// that records it, about the entry's subject; `account` as it is after
/// the change.
pub fn account_changed(account: &Account, entry: &AuditEntry) -> NewEvent {
    NewEvent::new(
        &account.tenant,
        &entry.subject_id,
        entry.time,
        &pb::AccountChanged {
            account: Some(mapping::account_pb(account)),
            entry: Some(crm_rpc::audit_entry(entry.clone())),
        },
    )
}

/// A change of `o` (fields, decision chain, activities, hours, stage), with
/// the audit entry that records it; `o` as it is after the change.
pub fn opportunity_changed(
    o: &Opportunity,
    config: &OpportunityConfig,
    entry: &AuditEntry,
) -> NewEvent {
    NewEvent::new(
        &o.tenant,
        &entry.subject_id,
        entry.time,
        &pb::OpportunityChanged {
            opportunity: Some(mapping::opportunity_pb(o, config)),
            entry: Some(crm_rpc::audit_entry(entry.clone())),
        },
    )
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
