//! The opportunity service's approvals (seed 003 TAS+, DOMAIN 2) on the
//! shared engine (`crm-approvals`): which kinds there are, what asking for
//! one requires, who decides a delivery review, and what a decided approval
//! does to its opportunity or account.

use std::collections::BTreeMap;

use crm_approvals::{ApprovalError, Decide};
use crm_types::{Actor, Change};

use super::{
    Account, Opportunity, OpportunityConfig, OpportunityError, ReviewState, gates::missing_fields,
    model::string_enum,
};

pub use crm_approvals::{Decided, Decision, Status as ApprovalStatus, Step};

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

/// What an opportunity approval keeps beside its chain.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApprovalDetail {
    /// ACCOUNT_CHANGE: the proposed core field values.
    pub proposed: BTreeMap<String, String>,
    /// DELIVERY_REVIEW: what was reviewed.
    pub snapshot: String,
}

/// An approval of an opportunity (or, for ACCOUNT_CHANGE, of an account).
pub type Approval = crm_approvals::Approval<ApprovalKind, ApprovalDetail>;

/// What the team's delivery manager reviews before the quote goes out, and
/// the manager themselves: asking for the review needs them all, and the
/// default proposal gate asks for the same list.
pub const DELIVERY_REVIEW_FIELDS: &[&str] = &[
    "solution_summary",
    "workload_person_days",
    "quote",
    "team.delivery_manager_id",
];

/// A new approval of `kind` for `opp`. A delivery review also needs what it
/// reviews filled in and no live review; it marks `opp` as under review
/// (the caller stores `opp` when its version moved).
pub fn request_approval(
    opp: &mut Opportunity,
    kind: ApprovalKind,
    reason: &str,
    actor: &Actor,
    config: &OpportunityConfig,
    id: String,
    now: i64,
) -> Result<Approval, OpportunityError> {
    opp.check_access(actor)?;
    if opp.stage.is_final() {
        return Err(OpportunityError::Precondition(
            "OPPORTUNITY_CLOSED",
            format!("the opportunity is {}", opp.stage),
        ));
    }
    let chain = config.chain(kind);
    let mut approval = Approval::new(
        crm_approvals::Request {
            id,
            tenant: &opp.tenant,
            kind,
            subject_id: &opp.id,
            requester: actor,
            chain: &chain,
            reason,
        },
        now,
    );
    if kind == ApprovalKind::DeliveryReview {
        let missing = missing_fields(opp, DELIVERY_REVIEW_FIELDS, |f| {
            format!("{f} must be filled before the review")
        });
        if !missing.is_empty() {
            return Err(OpportunityError::GateNotMet(missing));
        }
        if let Some(live) = opp.delivery_review.as_ref().filter(|r| r.status.is_live()) {
            return Err(OpportunityError::Precondition(
                "REVIEW_EXISTS",
                format!("delivery review {} is {}", live.approval_id, live.status),
            ));
        }
        approval.detail.snapshot = opp.review_snapshot();
        opp.delivery_review = Some(ReviewState {
            approval_id: approval.id.clone(),
            status: ApprovalStatus::Pending,
        });
        touch(opp, actor, now);
    }
    Ok(approval)
}

/// A new ACCOUNT_CHANGE approval proposing `core` for `account`.
pub fn request_account_change(
    account: &Account,
    core: BTreeMap<String, String>,
    reason: &str,
    actor: &Actor,
    config: &OpportunityConfig,
    id: String,
    now: i64,
) -> Approval {
    let chain = config.chain(ApprovalKind::AccountChange);
    let mut approval = Approval::new(
        crm_approvals::Request {
            id,
            tenant: &account.tenant,
            kind: ApprovalKind::AccountChange,
            subject_id: &account.id,
            requester: actor,
            chain: &chain,
            reason,
        },
        now,
    );
    approval.detail.proposed = core;
    approval
}

/// Decides the current step under the tenant's separation of duties
/// (`config.approval_policy`). `delivery_manager` is the team's delivery
/// manager when the approval is a delivery review: only they decide it.
#[allow(clippy::too_many_arguments)]
pub fn decide(
    approval: &mut Approval,
    actor: &Actor,
    decision: Decision,
    comment: &str,
    on_behalf_of: &str,
    delivery_manager: Option<&str>,
    config: &OpportunityConfig,
    now: i64,
) -> Result<Decided, OpportunityError> {
    let only = match approval.kind {
        // An opportunity without a delivery manager has nobody to review.
        ApprovalKind::DeliveryReview => Some(delivery_manager.unwrap_or_default()),
        _ => None,
    };
    let decide = Decide {
        actor,
        decision,
        comment,
        on_behalf_of,
        only,
        policy: &config.approval_policy,
    };
    approval.decide(decide, now).map_err(|err| {
        let message = err.to_string();
        match err {
            ApprovalError::Closed { .. } | ApprovalError::NoOpenStep => {
                OpportunityError::Precondition("APPROVAL_DECIDED", message)
            }
            ApprovalError::OnBehalfOfRequired => OpportunityError::invalid("on_behalf_of", message),
            ApprovalError::RoleRequired { .. } => {
                OpportunityError::Forbidden("APPROVER_ROLE_REQUIRED", message)
            }
            ApprovalError::SelfApproval => OpportunityError::Forbidden("SELF_APPROVAL", message),
            ApprovalError::NotTheNamedDecider(_) => OpportunityError::Forbidden(
                "NOT_DELIVERY_MANAGER",
                "only the team's delivery manager reviews solution, workload and quote".into(),
            ),
            ApprovalError::RepeatDecider(_) => {
                OpportunityError::Forbidden("REPEAT_DECIDER", message)
            }
            ApprovalError::IntegrationNotAllowed(_) => {
                OpportunityError::Forbidden("INTEGRATION_NOT_ALLOWED", message)
            }
            ApprovalError::NotAnApprover { .. } => {
                OpportunityError::Forbidden("ON_BEHALF_OF_NOT_APPROVER", message)
            }
        }
    })
}

/// What a decision does beyond the approval itself, once it ends the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Nothing more: a stage gate finds the approval approved.
    None,
    /// The opportunity's delivery review takes the approval's final status.
    DeliveryReview { status: ApprovalStatus },
    /// The account's proposed core-field change is applied (approved) or
    /// dropped (rejected); either way the account is free for the next one.
    AccountChange { approved: bool },
}

/// The effect of `decided` on the approval's subject.
pub fn effect(approval: &Approval, decided: Decided) -> Effect {
    let Some(status) = decided.final_status() else {
        return Effect::None;
    };
    match approval.kind {
        ApprovalKind::DeliveryReview => Effect::DeliveryReview { status },
        ApprovalKind::AccountChange => Effect::AccountChange {
            approved: status == ApprovalStatus::Approved,
        },
        _ => Effect::None,
    }
}

/// Records a decided delivery review on its opportunity.
pub fn record_review(
    opp: &mut Opportunity,
    approval_id: &str,
    status: ApprovalStatus,
    actor: &Actor,
    now: i64,
) {
    opp.delivery_review = Some(ReviewState {
        approval_id: approval_id.to_owned(),
        status,
    });
    touch(opp, actor, now);
}

/// Settles a decided core-field change on its account: applies the
/// proposed values when approved. Returns the fields that changed.
pub fn settle_account_change(
    account: &mut Account,
    proposed: &BTreeMap<String, String>,
    approved: bool,
    actor: &Actor,
    now: i64,
) -> Vec<Change> {
    let mut changes = Vec::new();
    if approved {
        for (field, value) in proposed {
            let (name, slot): (&'static str, &mut String) = match field.as_str() {
                "name" => ("name", &mut account.name),
                "registration_number" => ("registration_number", &mut account.registration_number),
                "industry" => ("industry", &mut account.industry),
                _ => continue,
            };
            changes.extend(Change::of(name, &*slot, value));
            slot.clone_from(value);
        }
        account.updater = actor.id.clone();
    }
    account.pending_approval_id = None;
    account.version += 1;
    account.update_time = now;
    changes
}

fn touch(opp: &mut Opportunity, actor: &Actor, now: i64) {
    opp.version += 1;
    opp.update_time = now;
    opp.updater = actor.id.clone();
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crm_types::{Money, Role};

    use super::*;
    use crate::domain::{Stage, Team};

    fn actor(id: &str, roles: &[Role]) -> Actor {
        Actor::new(id, roles.to_vec())
    }

    fn opp() -> Opportunity {
        Opportunity {
            id: "o1".into(),
            tenant: "t".into(),
            version: 1,
            account_id: "a1".into(),
            name: "ERP rollout".into(),
            amount: None,
            expected_close_date: None,
            grade: None,
            team: Team {
                account_manager_id: "amy".into(),
                delivery_manager_id: "dora".into(),
                ..Team::default()
            },
            competitors: vec![],
            stage: Stage::ValuePresentation,
            win_loss_reason: String::new(),
            qualification: None,
            solution_summary: "MES".into(),
            workload_person_days: Some(120),
            quote: Some(Money::new("CNY", 900_000, 0)),
            delivery_review: None,
            lead_id: None,
            create_time: 0,
            update_time: 0,
            creator: "amy".into(),
            updater: "amy".into(),
        }
    }

    fn account() -> Account {
        Account {
            id: "a1".into(),
            tenant: "t".into(),
            version: 3,
            name: "ACME".into(),
            registration_number: "91110000X".into(),
            industry: "manufacturing".into(),
            region: String::new(),
            owner_id: "amy".into(),
            pending_approval_id: Some("ap".into()),
            create_time: 0,
            update_time: 0,
            creator: "amy".into(),
            updater: "amy".into(),
        }
    }

    fn review(o: &mut Opportunity) -> Result<Approval, OpportunityError> {
        let amy = actor("amy", &[Role::Sales]);
        let config = OpportunityConfig::default();
        request_approval(
            o,
            ApprovalKind::DeliveryReview,
            "",
            &amy,
            &config,
            "r1".into(),
            5,
        )
    }

    #[test]
    fn a_delivery_review_needs_everything_it_reviews() {
        let mut empty = opp();
        empty.team.delivery_manager_id.clear();
        empty.solution_summary.clear();
        empty.workload_person_days = None;
        empty.quote = None;
        let Err(OpportunityError::GateNotMet(missing)) = review(&mut empty) else {
            panic!("a review of nothing was accepted")
        };
        let subjects: Vec<_> = missing.iter().map(|m| m.subject.as_str()).collect();
        assert_eq!(subjects, DELIVERY_REVIEW_FIELDS);
        assert_eq!(empty.version, 1, "a refused request changes nothing");

        let mut o = opp();
        let approval = review(&mut o).unwrap();
        assert_eq!(approval.steps.len(), 1);
        assert_eq!(approval.detail.snapshot, o.review_snapshot());
        assert_eq!(
            o.delivery_review,
            Some(ReviewState {
                approval_id: "r1".into(),
                status: ApprovalStatus::Pending
            })
        );
        assert_eq!(o.version, 2);
        assert!(matches!(
            review(&mut o),
            Err(OpportunityError::Precondition("REVIEW_EXISTS", _))
        ));
    }

    #[test]
    fn the_proposal_gate_asks_for_what_the_review_reviews() {
        let gate = OpportunityConfig::default();
        let fields = &gate.gate(Stage::Proposal).unwrap().required_fields;
        assert_eq!(fields, DELIVERY_REVIEW_FIELDS);
    }

    #[test]
    fn only_the_teams_delivery_manager_reviews() {
        let mut o = opp();
        let mut approval = review(&mut o).unwrap();
        let dan = actor("dan", &[Role::Delivery]);
        assert!(matches!(
            decide(
                &mut approval,
                &dan,
                Decision::Approve,
                "",
                "",
                Some("dora"),
                &OpportunityConfig::default(),
                6
            ),
            Err(OpportunityError::Forbidden("NOT_DELIVERY_MANAGER", _))
        ));
        assert!(matches!(
            decide(
                &mut approval,
                &dan,
                Decision::Approve,
                "",
                "",
                None,
                &OpportunityConfig::default(),
                6
            ),
            Err(OpportunityError::Forbidden("NOT_DELIVERY_MANAGER", _))
        ));
        let dora = actor("dora", &[Role::Delivery]);
        assert_eq!(
            decide(
                &mut approval,
                &dora,
                Decision::Approve,
                "",
                "",
                Some("dora"),
                &OpportunityConfig::default(),
                6
            )
            .unwrap(),
            Decided::Approved
        );
    }

    #[test]
    fn engine_refusals_keep_their_reasons() {
        let amy = actor("amy", &[Role::Sales, Role::Manager]);
        let config = OpportunityConfig::default();
        let mut o = opp();
        let mut bid = request_approval(
            &mut o,
            ApprovalKind::BidApproval,
            "",
            &amy,
            &config,
            "b1".into(),
            5,
        )
        .unwrap();
        let fay = actor("fay", &[Role::Finance]);
        let oa = actor("oa", &[Role::Integration]);
        let refused = |r: Result<Decided, OpportunityError>| match r {
            Err(OpportunityError::Forbidden(reason, _))
            | Err(OpportunityError::Precondition(reason, _)) => reason,
            Err(OpportunityError::Invalid(v)) => {
                assert_eq!(v[0].field, "on_behalf_of");
                "INVALID"
            }
            other => panic!("{other:?}"),
        };
        assert_eq!(
            refused(decide(
                &mut bid,
                &fay,
                Decision::Approve,
                "",
                "",
                None,
                &config,
                6
            )),
            "APPROVER_ROLE_REQUIRED"
        );
        assert_eq!(
            refused(decide(
                &mut bid,
                &amy,
                Decision::Approve,
                "",
                "",
                None,
                &config,
                6
            )),
            "SELF_APPROVAL"
        );
        assert_eq!(
            refused(decide(
                &mut bid,
                &oa,
                Decision::Reject,
                "",
                "wang",
                None,
                &config,
                6
            )),
            "INTEGRATION_NOT_ALLOWED",
            "no integration decides until the tenant binds one"
        );
        let mut bound = config.clone();
        bound.approval_policy.integration_subjects = vec!["oa".into()];
        assert_eq!(
            refused(decide(
                &mut bid,
                &oa,
                Decision::Approve,
                "",
                "",
                None,
                &bound,
                6
            )),
            "INVALID"
        );
        assert_eq!(
            refused(decide(
                &mut bid,
                &oa,
                Decision::Reject,
                "",
                "wang",
                None,
                &bound,
                6
            )),
            "ON_BEHALF_OF_NOT_APPROVER"
        );
        bound.approval_policy.approvers = [("wang".to_owned(), vec![Role::Manager])].into();
        decide(&mut bid, &oa, Decision::Reject, "", "wang", None, &bound, 6).unwrap();
        assert_eq!(
            refused(decide(
                &mut bid,
                &oa,
                Decision::Approve,
                "",
                "wang",
                None,
                &bound,
                7
            )),
            "APPROVAL_DECIDED"
        );
    }

    #[test]
    fn a_decision_that_ends_the_chain_takes_effect_on_its_subject() {
        let mut o = opp();
        let mut approval = review(&mut o).unwrap();
        assert_eq!(effect(&approval, Decided::Advanced), Effect::None);
        let dora = actor("dora", &[Role::Delivery]);
        let decided = decide(
            &mut approval,
            &dora,
            Decision::Reject,
            "",
            "",
            Some("dora"),
            &OpportunityConfig::default(),
            6,
        )
        .unwrap();
        let Effect::DeliveryReview { status } = effect(&approval, decided) else {
            panic!("a decided review records nothing")
        };
        record_review(&mut o, &approval.id, status, &dora, 6);
        assert_eq!(
            o.delivery_review.map(|r| r.status),
            Some(ApprovalStatus::Rejected)
        );
        assert_eq!((o.version, o.updater.as_str()), (3, "dora"));

        let mut bid = approval.clone();
        bid.kind = ApprovalKind::BidApproval;
        assert_eq!(effect(&bid, Decided::Approved), Effect::None);
        let mut change = approval;
        change.kind = ApprovalKind::AccountChange;
        assert_eq!(
            effect(&change, Decided::Approved),
            Effect::AccountChange { approved: true }
        );
        assert_eq!(
            effect(&change, Decided::Rejected),
            Effect::AccountChange { approved: false }
        );
    }

    #[test]
    fn an_approved_account_change_applies_and_a_rejected_one_frees_the_account() {
        let boss = actor("boss", &[Role::Manager]);
        let proposed: BTreeMap<_, _> = [("name".to_owned(), "ACME Group".to_owned())].into();
        let mut applied = account();
        let changes = settle_account_change(&mut applied, &proposed, true, &boss, 9);
        assert_eq!(
            (
                applied.name.as_str(),
                applied.pending_approval_id.as_deref(),
                applied.version,
                changes.len()
            ),
            ("ACME Group", None, 4, 1)
        );
        let mut dropped = account();
        let changes = settle_account_change(&mut dropped, &proposed, false, &boss, 9);
        assert_eq!(
            (
                dropped.name.as_str(),
                dropped.pending_approval_id.as_deref(),
                dropped.version,
                changes.len()
            ),
            ("ACME", None, 4, 0)
        );
    }
}
