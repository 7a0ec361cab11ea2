//! The events a change publishes, written to the outbox in the change's
//! transaction. Each carries the contract as it was right after the change;
//! the subject is the contract (the milestone for milestone events).

use crm_events::NewEvent;
use crm_proto::crm::contracts::v1 as pb;
use crm_types::AuditEntry;

use super::mapping::{contract_pb, date_pb, handover_pb, milestone_pb, step_pb};
use crate::domain::{Contract, Date, Milestone};

fn event<M: prost::Name>(c: &Contract, time: i64, payload: &M) -> NewEvent {
    NewEvent::new(&c.tenant, &c.id, time, payload)
}

fn snapshot(c: &Contract) -> Option<pb::Contract> {
    Some(contract_pb(c))
}

pub fn created(c: &Contract, time: i64) -> NewEvent {
    event(
        c,
        time,
        &pb::ContractCreated {
            contract: snapshot(c),
        },
    )
}

pub fn updated(c: &Contract, entry: &AuditEntry, time: i64) -> NewEvent {
    event(
        c,
        time,
        &pb::ContractUpdated {
            contract: snapshot(c),
            entry: Some(crm_rpc::audit_entry(entry.clone())),
        },
    )
}

pub fn submitted(c: &Contract, time: i64) -> NewEvent {
    event(
        c,
        time,
        &pb::ContractSubmitted {
            contract: snapshot(c),
        },
    )
}

/// The pending step, for the OA system to answer.
pub fn approval_requested(c: &Contract, time: i64) -> Option<NewEvent> {
    let approval = c.approval.as_ref()?;
    let (i, _, _) = approval.pending()?;
    Some(event(
        c,
        time,
        &pb::ContractApprovalRequested {
            contract_id: c.id.clone(),
            approval_id: approval.id.clone(),
            step: Some(step_pb(approval, i)),
            contract: snapshot(c),
        },
    ))
}

pub fn approval_decided(c: &Contract, step: usize, time: i64) -> Option<NewEvent> {
    let approval = c.approval.as_ref()?;
    Some(event(
        c,
        time,
        &pb::ContractApprovalDecided {
            contract: snapshot(c),
            step: Some(step_pb(approval, step)),
        },
    ))
}

pub fn approval_overdue(c: &Contract, step: usize, time: i64) -> Option<NewEvent> {
    let approval = c.approval.as_ref()?;
    Some(event(
        c,
        time,
        &pb::ContractApprovalOverdue {
            contract: snapshot(c),
            step: Some(step_pb(approval, step)),
        },
    ))
}

pub fn approved(c: &Contract, time: i64) -> NewEvent {
    event(
        c,
        time,
        &pb::ContractApproved {
            contract: snapshot(c),
        },
    )
}

pub fn returned_to_draft(c: &Contract, step: usize, time: i64) -> NewEvent {
    event(
        c,
        time,
        &pb::ContractReturnedToDraft {
            contract: snapshot(c),
            step: c.approval.as_ref().map(|a| step_pb(a, step)),
        },
    )
}

pub fn sent_for_signature(c: &Contract, time: i64) -> NewEvent {
    event(
        c,
        time,
        &pb::ContractSentForSignature {
            contract: snapshot(c),
        },
    )
}

pub fn signature_declined(c: &Contract, reason: &str, time: i64) -> NewEvent {
    event(
        c,
        time,
        &pb::ContractSignatureDeclined {
            contract: snapshot(c),
            reason: reason.to_owned(),
        },
    )
}

/// The handover to delivery.
pub fn signed(c: &Contract, superseded: Option<&str>, time: i64) -> NewEvent {
    event(
        c,
        time,
        &pb::ContractSigned {
            contract: snapshot(c),
            handover: Some(handover_pb(c)),
            superseded_contract_id: superseded.unwrap_or_default().to_owned(),
        },
    )
}

pub fn activated(c: &Contract, time: i64) -> NewEvent {
    event(
        c,
        time,
        &pb::ContractActivated {
            contract: snapshot(c),
        },
    )
}

pub fn expired(c: &Contract, time: i64) -> NewEvent {
    event(
        c,
        time,
        &pb::ContractExpired {
            contract: snapshot(c),
        },
    )
}

pub fn terminated(c: &Contract, time: i64) -> NewEvent {
    event(
        c,
        time,
        &pb::ContractTerminated {
            contract: snapshot(c),
        },
    )
}

pub fn renewal_due(c: &Contract, end: Date, days_left: i64, time: i64) -> NewEvent {
    event(
        c,
        time,
        &pb::ContractRenewalDue {
            contract: snapshot(c),
            end_date: Some(date_pb(end)),
            days_left: i32::try_from(days_left).unwrap_or(i32::MAX),
        },
    )
}

pub fn amended(c: &Contract, reason: &str, time: i64) -> NewEvent {
    event(
        c,
        time,
        &pb::ContractAmended {
            contract: snapshot(c),
            previous_version_id: c.previous_version_id.clone(),
            reason: reason.to_owned(),
        },
    )
}

pub fn milestone_overdue(c: &Contract, m: &Milestone, time: i64) -> NewEvent {
    NewEvent::new(
        &c.tenant,
        &m.id,
        time,
        &pb::PaymentMilestoneOverdue {
            milestone: Some(milestone_pb(m, &c.id, &c.account_id)),
        },
    )
}

pub fn payment_recorded(c: &Contract, m: &Milestone, time: i64) -> NewEvent {
    NewEvent::new(
        &c.tenant,
        &m.id,
        time,
        &pb::PaymentRecorded {
            milestone: Some(milestone_pb(m, &c.id, &c.account_id)),
        },
    )
}
