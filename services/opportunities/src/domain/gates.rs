//! Stage gates (seed 003 §7, TAS+): fill what must be filled, do what must
//! be done, pass the prescribed process. A refused move lists every missing
//! requirement, not just the first.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{
    ApprovalKind, ApprovalStatus, Missing, OppConfig, OppError, Opportunity, Stage,
    model::string_enum,
};

string_enum!(RequiredAction {
    DecisionMakerInChain = "decision_maker_in_chain",
    MeetingWithDecisionMaker = "meeting_with_decision_maker",
    QualificationAssessed = "qualification_assessed",
});

/// What the store knows about an opportunity beyond its own row.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GateFacts {
    pub decision_maker_in_chain: bool,
    pub met_decision_maker: bool,
    pub approved: BTreeSet<ApprovalKind>,
}

fn filled(opp: &Opportunity, field: &str) -> bool {
    match field {
        "amount" => opp.amount.is_some(),
        "expected_close_date" => opp.expected_close_date.is_some(),
        "grade" => opp.grade.is_some(),
        "competitors" => !opp.competitors.is_empty(),
        "solution_summary" => !opp.solution_summary.trim().is_empty(),
        "workload_person_days" => opp.workload_person_days.is_some_and(|d| d > 0),
        "quote" => opp.quote.is_some(),
        "win_loss_reason" => !opp.win_loss_reason.trim().is_empty(),
        "team.solution_manager_id" => !opp.team.solution_manager_id.is_empty(),
        "team.delivery_manager_id" => !opp.team.delivery_manager_id.is_empty(),
        _ => false,
    }
}

/// Whether `opp` may move to `target`: the stage order first (not
/// overridable), then every requirement of the target's gate.
pub fn check_advance(
    opp: &Opportunity,
    target: Stage,
    facts: &GateFacts,
    config: &OppConfig,
) -> Result<Vec<Missing>, OppError> {
    if opp.stage.is_final() {
        return Err(OppError::Precondition(
            "OPPORTUNITY_CLOSED",
            format!(
                "the opportunity is {} and its stage can no longer change",
                opp.stage
            ),
        ));
    }
    if target == opp.stage {
        return Err(OppError::Precondition(
            "SAME_STAGE",
            format!("the opportunity is already in {target}"),
        ));
    }
    let (from, to) = (opp.stage.rank(), target.rank());
    // Lost is reachable from any open stage.
    if target != Stage::Lost {
        if to < from && !config.allow_moving_back {
            return Err(OppError::Precondition(
                "STAGE_ORDER",
                format!(
                    "moving back from {} to {target} is not allowed by the tenant's configuration",
                    opp.stage
                ),
            ));
        }
        if to > from + 1 && !config.allow_skipping_stages {
            return Err(OppError::Precondition(
                "STAGE_ORDER",
                format!(
                    "{} cannot skip to {target}: stages are taken in order",
                    opp.stage
                ),
            ));
        }
    }
    let mut missing = Vec::new();
    if let Some(gate) = config.gate(target) {
        for field in &gate.required_fields {
            if !filled(opp, field) {
                missing.push(Missing {
                    kind: "FIELD".into(),
                    subject: field.clone(),
                    description: format!("{field} must be filled"),
                });
            }
        }
        for action in &gate.required_actions {
            let done = match action {
                super::RequiredAction::DecisionMakerInChain => facts.decision_maker_in_chain,
                super::RequiredAction::MeetingWithDecisionMaker => facts.met_decision_maker,
                super::RequiredAction::QualificationAssessed => opp
                    .qualification
                    .as_ref()
                    .is_some_and(|q| q.is_real && q.can_compete),
            };
            if !done {
                missing.push(Missing {
                    kind: "ACTION".into(),
                    subject: action.as_str().into(),
                    description: action_text(*action).into(),
                });
            }
        }
        for kind in &gate.required_approvals {
            if !facts.approved.contains(kind) {
                missing.push(Missing {
                    kind: "APPROVAL".into(),
                    subject: kind.as_str().into(),
                    description: format!("an approved {kind} approval"),
                });
            }
        }
    }
    // Seed 003 §5: never into proposal without the delivery manager's review
    // of what is being proposed; not a setting.
    if target == Stage::Proposal
        && opp
            .delivery_review
            .as_ref()
            .is_none_or(|r| r.status != ApprovalStatus::Approved)
    {
        missing.push(Missing {
            kind: "APPROVAL".into(),
            subject: ApprovalKind::DeliveryReview.as_str().into(),
            description: "the team's delivery manager must approve solution, workload and quote"
                .into(),
        });
    }
    Ok(missing)
}

fn action_text(action: RequiredAction) -> &'static str {
    match action {
        RequiredAction::DecisionMakerInChain => "a decision maker must be in the decision chain",
        RequiredAction::MeetingWithDecisionMaker => {
            "a meeting with a decision maker must be logged"
        }
        RequiredAction::QualificationAssessed => {
            "the qualification must say the opportunity is real and we can compete"
        }
    }
}
