//! The events a change publishes, written to the outbox in the change's
//! transaction. The subject is the project (the milestone's for milestone
//! events, the alert's for risk events).

use crm_events::NewEvent;
use crm_proto::crm::contracts::v1 as contracts;
use crm_proto::crm::delivery::v1 as pb;
use prost::Message as _;

use super::mapping::{alert_pb, milestone_pb, project_pb};
use crate::domain::{DeliveryConfig, Logged, MilestoneStatus, Project, RiskAlert};

fn snapshot(
    p: &Project,
    handover: &[u8],
    logged: &Logged,
    cfg: &DeliveryConfig,
) -> Option<pb::Project> {
    Some(project_pb(p, handover, logged, cfg))
}

pub fn project_created(p: &Project, handover: &[u8], cfg: &DeliveryConfig, time: i64) -> NewEvent {
    let logged = Logged::default();
    NewEvent::new(
        &p.tenant,
        &p.id,
        time,
        &pb::DeliveryProjectCreated {
            project: snapshot(p, handover, &logged, cfg),
            milestones: p
                .milestones
                .iter()
                .take(100)
                .map(|m| milestone_pb(p, m, &logged))
                .collect(),
        },
    )
}

pub fn project_updated(
    p: &Project,
    handover: &[u8],
    logged: &Logged,
    cfg: &DeliveryConfig,
    changed: &[String],
    time: i64,
) -> NewEvent {
    NewEvent::new(
        &p.tenant,
        &p.id,
        time,
        &pb::DeliveryProjectUpdated {
            project: snapshot(p, handover, logged, cfg),
            changed_milestones: changed
                .iter()
                .take(100)
                .filter_map(|id| p.milestone(id))
                .map(|m| milestone_pb(p, m, logged))
                .collect(),
        },
    )
}

pub fn milestone_status_changed(
    p: &Project,
    milestone_id: &str,
    previous: MilestoneStatus,
    logged: &Logged,
    time: i64,
) -> Option<NewEvent> {
    let m = p.milestone(milestone_id)?;
    Some(NewEvent::new(
        &p.tenant,
        &m.id,
        time,
        &pb::MilestoneStatusChanged {
            milestone: Some(milestone_pb(p, m, logged)),
            previous_status: super::mapping::milestone_status_pb(previous),
        },
    ))
}

pub fn milestone_accepted(
    p: &Project,
    milestone_id: &str,
    logged: &Logged,
    time: i64,
) -> Option<NewEvent> {
    let m = p.milestone(milestone_id)?;
    Some(NewEvent::new(
        &p.tenant,
        &m.id,
        time,
        &pb::MilestoneAccepted {
            milestone: Some(milestone_pb(p, m, logged)),
            contract_id: p.handover.contract_id.clone(),
            account_id: p.handover.account_id.clone(),
            payment_milestone_id: m.payment_milestone_id.clone(),
        },
    ))
}

pub fn risk_raised(a: &RiskAlert, time: i64) -> NewEvent {
    NewEvent::new(
        &a.tenant,
        &a.id,
        time,
        &pb::DeliveryRiskRaised {
            alert: Some(alert_pb(a)),
        },
    )
}

pub fn risk_acknowledged(a: &RiskAlert, time: i64) -> NewEvent {
    NewEvent::new(
        &a.tenant,
        &a.id,
        time,
        &pb::DeliveryRiskAcknowledged {
            alert: Some(alert_pb(a)),
        },
    )
}

pub fn risk_resolved(a: &RiskAlert, time: i64) -> NewEvent {
    NewEvent::new(
        &a.tenant,
        &a.id,
        time,
        &pb::DeliveryRiskResolved {
            alert: Some(alert_pb(a)),
        },
    )
}

pub fn project_completed(
    p: &Project,
    handover: &[u8],
    logged: &Logged,
    cfg: &DeliveryConfig,
    time: i64,
) -> NewEvent {
    let term = contracts::HandoverPackage::decode(handover)
        .ok()
        .and_then(|h| h.term);
    NewEvent::new(
        &p.tenant,
        &p.id,
        time,
        &pb::DeliveryProjectCompleted {
            project: snapshot(p, handover, logged, cfg),
            account_id: p.handover.account_id.clone(),
            contract_id: p.handover.contract_id.clone(),
            contract_term: term,
            service_level: p.service_level.clone(),
            service_team: p.service_team.as_ref().map(|t| pb::ServiceTeam {
                service_manager_id: t.service_manager_id.clone(),
                delivery_manager_id: t.delivery_manager_id.clone(),
                account_manager_id: t.account_manager_id.clone(),
            }),
        },
    )
}
