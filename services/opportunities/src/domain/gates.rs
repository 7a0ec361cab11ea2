//! Stage gates (seed 003 §7, TAS+): fill what must be filled, do what must
//! be done, pass the prescribed process. A refused move lists every missing
//! requirement, not just the first.

use std::collections::BTreeSet;

use super::{
    ApprovalKind, ApprovalStatus, Missing, Opportunity, OpportunityConfig, OpportunityError, Stage,
    model::string_enum,
};

string_enum!(RequiredAction {
    DecisionMakerInChain = "decision_maker_in_chain",
    MeetingWithDecisionMaker = "meeting_with_decision_maker",
    QualificationAssessed = "qualification_assessed",
});

/// What a gate looks at beyond the opportunity itself.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GateFacts {
    pub decision_maker_in_chain: bool,
    pub met_decision_maker: bool,
    pub approved: BTreeSet<ApprovalKind>,
}

impl GateFacts {
    /// The facts from the opportunity's records: the contacts that are
    /// decision makers in its chain, the contacts of each meeting logged,
    /// and the kinds of its approved approvals.
    pub fn new(
        decision_makers: &BTreeSet<String>,
        meetings: &[Vec<String>],
        approved: BTreeSet<ApprovalKind>,
    ) -> Self {
        GateFacts {
            decision_maker_in_chain: !decision_makers.is_empty(),
            met_decision_maker: meetings
                .iter()
                .flatten()
                .any(|contact| decision_makers.contains(contact)),
            approved,
        }
    }
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

/// The `fields` of `opp` that are not filled in, described by `why`.
pub fn missing_fields(
    opp: &Opportunity,
    fields: &[impl AsRef<str>],
    why: impl Fn(&str) -> String,
) -> Vec<Missing> {
    fields
        .iter()
        .map(AsRef::as_ref)
        .filter(|f| !filled(opp, f))
        .map(|f| Missing::field(f, why(f)))
        .collect()
}

/// Whether `opp` may move to `target`: the stage order first (not
/// overridable), then every requirement of the target's gate.
pub fn check_advance(
    opp: &Opportunity,
    target: Stage,
    facts: &GateFacts,
    config: &OpportunityConfig,
) -> Result<Vec<Missing>, OpportunityError> {
    if opp.stage.is_final() {
        return Err(OpportunityError::Precondition(
            "OPPORTUNITY_CLOSED",
            format!(
                "the opportunity is {} and its stage can no longer change",
                opp.stage
            ),
        ));
    }
    if target == opp.stage {
        return Err(OpportunityError::Precondition(
            "SAME_STAGE",
            format!("the opportunity is already in {target}"),
        ));
    }
    let (from, to) = (opp.stage.rank(), target.rank());
    // Lost is reachable from any open stage.
    if target != Stage::Lost {
        if to < from && !config.allow_moving_back {
            return Err(OpportunityError::Precondition(
                "STAGE_ORDER",
                format!(
                    "moving back from {} to {target} is not allowed by the tenant's configuration",
                    opp.stage
                ),
            ));
        }
        if to > from + 1 && !config.allow_skipping_stages {
            return Err(OpportunityError::Precondition(
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
        missing = missing_fields(opp, &gate.required_fields, |f| {
            format!("{f} must be filled")
        });
        for action in &gate.required_actions {
            let done = match action {
                RequiredAction::DecisionMakerInChain => facts.decision_maker_in_chain,
                RequiredAction::MeetingWithDecisionMaker => facts.met_decision_maker,
                RequiredAction::QualificationAssessed => opp
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_decision_maker_counts_as_met_only_in_a_meeting() {
        let deciders: BTreeSet<String> = ["c1".to_owned()].into();
        let none = GateFacts::new(&BTreeSet::new(), &[vec!["c1".into()]], BTreeSet::new());
        assert!(!none.decision_maker_in_chain && !none.met_decision_maker);
        let not_met = GateFacts::new(&deciders, &[vec!["c2".into()]], BTreeSet::new());
        assert!(not_met.decision_maker_in_chain && !not_met.met_decision_maker);
        let met = GateFacts::new(
            &deciders,
            &[vec!["c2".into(), "c1".into()]],
            BTreeSet::new(),
        );
        assert!(met.met_decision_maker);
    }
}
