//! Approvals (seed 003 TAS+, DOMAIN 2): ordered steps by role, decided by a
//! holder of the step's role or by an integration acting for the OA system;
//! nobody decides their own request, and a decided approval never changes.

use std::collections::BTreeMap;

use crm_auth::Role;
use serde::{Deserialize, Serialize};

use super::{Actor, OppError, model::string_enum};

string_enum!(ApprovalKind {
    ProjectApproval = "project_approval",
    PartnerRegistration = "partner_registration",
    PresalesResource = "presales_resource",
    GradeUpgrade = "grade_upgrade",
    BidApproval = "bid_approval",
    ScopeReview = "scope_review",
    AccountChange = "account_change",
    DeliveryReview = "delivery_review",
});

string_enum!(ApprovalStatus { Pending = "pending", Approved = "approved", Rejected = "rejected", Voided = "voided" });

string_enum!(Decision { Approve = "approve", Reject = "reject" });

/// One step of the chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    pub role: Role,
    pub decision: Option<Decision>,
    pub decider_id: String,
    pub on_behalf_of: String,
    pub decide_time: Option<i64>,
    pub comment: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Approval {
    pub id: String,
    pub tenant: String,
    pub version: i64,
    pub kind: ApprovalKind,
    pub subject_id: String,
    pub requester_id: String,
    pub status: ApprovalStatus,
    pub steps: Vec<Step>,
    pub current_step: usize,
    pub reason: String,
    /// ACCOUNT_CHANGE: the proposed core field values.
    pub proposed: BTreeMap<String, String>,
    /// DELIVERY_REVIEW: what was reviewed.
    pub snapshot: String,
    pub create_time: i64,
    pub update_time: i64,
}

impl Approval {
    pub fn etag(&self) -> String {
        self.version.to_string()
    }
}

/// A new pending approval with one step per role of `chain`.
pub fn new_approval(
    id: String,
    tenant: &str,
    kind: ApprovalKind,
    subject_id: &str,
    requester: &Actor,
    chain: &[Role],
    reason: &str,
    now: i64,
) -> Approval {
    Approval {
        id,
        tenant: tenant.to_owned(),
        version: 1,
        kind,
        subject_id: subject_id.to_owned(),
        requester_id: requester.id.clone(),
        status: ApprovalStatus::Pending,
        steps: chain
            .iter()
            .map(|role| Step {
                role: *role,
                decision: None,
                decider_id: String::new(),
                on_behalf_of: String::new(),
                decide_time: None,
                comment: String::new(),
            })
            .collect(),
        current_step: 0,
        reason: reason.trim().to_owned(),
        proposed: BTreeMap::new(),
        snapshot: String::new(),
        create_time: now,
        update_time: now,
    }
}

/// What a decision did to the approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decided {
    /// The next step now awaits its decision.
    Advanced,
    /// The last step approved: the approval is approved.
    Approved,
    Rejected,
}

/// Decides the current step. `delivery_manager` is the team's delivery
/// manager when the approval is a delivery review: only they may decide it.
pub fn decide(
    approval: &mut Approval,
    actor: &Actor,
    decision: Decision,
    comment: &str,
    on_behalf_of: &str,
    delivery_manager: Option<&str>,
    now: i64,
) -> Result<Decided, OppError> {
    if approval.status != ApprovalStatus::Pending {
        return Err(OppError::Precondition(
            "APPROVAL_DECIDED",
            format!(
                "approval {} is {} and can no longer change",
                approval.id, approval.status
            ),
        ));
    }
    let index = approval.current_step;
    let Some(step) = approval.steps.get(index) else {
        return Err(OppError::Precondition(
            "APPROVAL_DECIDED",
            "the approval has no open step".into(),
        ));
    };
    // The person deciding: an integration (the OA system) names them.
    let person = if actor.has(Role::Integration) {
        if on_behalf_of.trim().is_empty() {
            return Err(OppError::invalid(
                "on_behalf_of",
                "required when an integration decides: the person in the OA system",
            ));
        }
        on_behalf_of.trim()
    } else {
        if !actor.has(step.role) {
            return Err(OppError::Forbidden(
                "APPROVER_ROLE_REQUIRED",
                format!(
                    "step {} of {} is decided by the {} role",
                    index + 1,
                    approval.steps.len(),
                    step.role.as_str()
                ),
            ));
        }
        actor.id.as_str()
    };
    if person == approval.requester_id {
        return Err(OppError::Forbidden(
            "SELF_APPROVAL",
            "nobody decides their own request".into(),
        ));
    }
    if approval.kind == ApprovalKind::DeliveryReview && delivery_manager != Some(person) {
        return Err(OppError::Forbidden(
            "NOT_DELIVERY_MANAGER",
            "only the team's delivery manager reviews solution, workload and quote".into(),
        ));
    }
    let step = &mut approval.steps[index];
    step.decision = Some(decision);
    step.decider_id = actor.id.clone();
    step.on_behalf_of = if person == actor.id {
        String::new()
    } else {
        person.to_owned()
    };
    step.decide_time = Some(now);
    step.comment = comment.trim().to_owned();
    approval.version += 1;
    approval.update_time = now;
    Ok(match decision {
        Decision::Reject => {
            approval.status = ApprovalStatus::Rejected;
            Decided::Rejected
        }
        Decision::Approve if index + 1 == approval.steps.len() => {
            approval.status = ApprovalStatus::Approved;
            Decided::Approved
        }
        Decision::Approve => {
            approval.current_step += 1;
            Decided::Advanced
        }
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn actor(id: &str, roles: &[Role]) -> Actor {
        Actor {
            id: id.into(),
            roles: roles.to_vec(),
        }
    }

    fn bid() -> Approval {
        new_approval(
            "a1".into(),
            "t",
            ApprovalKind::BidApproval,
            "o1",
            &actor("amy", &[Role::Sales]),
            &[Role::Manager, Role::Finance],
            "bid",
            0,
        )
    }

    #[test]
    fn steps_are_decided_in_order_by_their_roles() {
        let mut a = bid();
        let finance = actor("fay", &[Role::Finance]);
        assert!(matches!(
            decide(&mut a, &finance, Decision::Approve, "", "", None, 1),
            Err(OppError::Forbidden("APPROVER_ROLE_REQUIRED", _))
        ));
        assert_eq!(
            decide(
                &mut a,
                &actor("boss", &[Role::Manager]),
                Decision::Approve,
                "ok",
                "",
                None,
                1
            )
            .unwrap(),
            Decided::Advanced
        );
        assert_eq!(
            decide(&mut a, &finance, Decision::Approve, "", "", None, 2).unwrap(),
            Decided::Approved
        );
        assert_eq!(a.status, ApprovalStatus::Approved);
        assert!(matches!(
            decide(&mut a, &finance, Decision::Reject, "", "", None, 3),
            Err(OppError::Precondition("APPROVAL_DECIDED", _))
        ));
    }

    #[test]
    fn nobody_decides_their_own_request() {
        let mut a = bid();
        let amy_as_manager = actor("amy", &[Role::Manager]);
        assert!(matches!(
            decide(&mut a, &amy_as_manager, Decision::Approve, "", "", None, 1),
            Err(OppError::Forbidden("SELF_APPROVAL", _))
        ));
        let oa = actor("oa-system", &[Role::Integration]);
        assert!(matches!(
            decide(&mut a, &oa, Decision::Approve, "", "amy", None, 1),
            Err(OppError::Forbidden("SELF_APPROVAL", _))
        ));
    }

    #[test]
    fn an_integration_decides_for_a_named_person() {
        let mut a = bid();
        let oa = actor("oa-system", &[Role::Integration]);
        assert!(matches!(
            decide(&mut a, &oa, Decision::Approve, "", " ", None, 1),
            Err(OppError::Invalid(_))
        ));
        decide(
            &mut a,
            &oa,
            Decision::Reject,
            "budget",
            "wang.manager",
            None,
            1,
        )
        .unwrap();
        assert_eq!(a.status, ApprovalStatus::Rejected);
        assert_eq!(
            (
                a.steps[0].decider_id.as_str(),
                a.steps[0].on_behalf_of.as_str()
            ),
            ("oa-system", "wang.manager")
        );
    }

    #[test]
    fn only_the_teams_delivery_manager_reviews() {
        let mut a = new_approval(
            "r".into(),
            "t",
            ApprovalKind::DeliveryReview,
            "o1",
            &actor("amy", &[Role::Sales]),
            &[Role::Delivery],
            "",
            0,
        );
        let other = actor("dan", &[Role::Delivery]);
        assert!(matches!(
            decide(&mut a, &other, Decision::Approve, "", "", Some("dora"), 1),
            Err(OppError::Forbidden("NOT_DELIVERY_MANAGER", _))
        ));
        let dora = actor("dora", &[Role::Delivery]);
        assert_eq!(
            decide(&mut a, &dora, Decision::Approve, "", "", Some("dora"), 1).unwrap(),
            Decided::Approved
        );
    }
}
