//! The contract's approval chain on the shared engine (crm-approvals):
//! built at submission (scope control's delivery review first, then the
//! tenant's chain, then the steps its rules add), decided step by step by
//! a holder of the step's role or by the OA system for a named approver.

use crm_approvals::{
    Approval, ApprovalError, Decide, Decided, Decision, Status as ApprovalStatus, Step,
};
use crm_types::{Actor, Role};

use super::config::ContractsConfig;
use super::error::{ContractError, Missing};
use super::model::*;
use super::rules::{check_owner, scope_changes};

type Result<T> = std::result::Result<T, ContractError>;

const DAY_MICROS: i64 = 86_400_000_000;

/// `start` plus `days` working days (Monday to Friday, UTC), keeping the
/// time of day: a step started on Friday afternoon with one working day is
/// expected on Monday afternoon.
pub fn add_working_days(start: i64, days: u8) -> i64 {
    let weekday = |t: i64| (t.div_euclid(DAY_MICROS) + 3).rem_euclid(7); // Monday = 0
    let mut t = start;
    for _ in 0..days {
        t += DAY_MICROS;
        while weekday(t) >= 5 {
            t += DAY_MICROS;
        }
    }
    t
}

fn step_name(role: Role) -> &'static str {
    match role {
        Role::Manager => "sales_manager",
        Role::Finance => "finance",
        Role::Legal => "legal",
        Role::Delivery => "delivery",
        Role::Admin => "admin",
        _ => "review",
    }
}

/// The chain of a submission: (name, role, assignee) of each step.
pub fn chain(c: &Contract, config: &ContractsConfig) -> Result<Vec<(String, Role, String)>> {
    let mut steps = Vec::new();
    if !scope_changes(c).is_empty() {
        if c.team.delivery_manager_id.is_empty() {
            return Err(ContractError::precondition(
                "NO_DELIVERY_MANAGER",
                "the contract differs from what delivery reviewed, and the team has no delivery manager to review it again",
            ));
        }
        steps.push((
            "delivery_review".to_owned(),
            Role::Delivery,
            c.team.delivery_manager_id.clone(),
        ));
    }
    for role in &config.approval_chain {
        steps.push((step_name(*role).to_owned(), *role, String::new()));
    }
    if config
        .threshold(&c.currency)
        .is_some_and(|t| c.total.total_nanos() >= t.total_nanos())
    {
        steps.push((
            "large_total_manager".to_owned(),
            Role::Manager,
            String::new(),
        ));
    }
    let deep = config.deep_discount_percent;
    if (1..100).contains(&deep) && c.lines.iter().any(|l| l.discount_percent > deep) {
        steps.push((
            "deep_discount_finance".to_owned(),
            Role::Finance,
            String::new(),
        ));
    }
    Ok(steps)
}

/// draft -> in_approval: everything a submission needs, then its chain
/// with the first step pending.
pub fn submit(
    c: &mut Contract,
    actor: &Actor,
    config: &ContractsConfig,
    approval_id: String,
    now: i64,
) -> Result<()> {
    check_owner(c, actor)?;
    if c.status != Status::Draft {
        return Err(ContractError::precondition(
            "NOT_DRAFT",
            format!("contract {} is {}", c.id, c.status),
        ));
    }
    let mut missing = Vec::new();
    if c.lines.is_empty() {
        missing.push(Missing::new("lines", "at least one line"));
    }
    if c.term.is_none() {
        missing.push(Missing::new("term", "the term's start and end dates"));
    }
    if c.milestones.is_empty() {
        missing.push(Missing::new(
            "milestones",
            "payment milestones adding up to the total",
        ));
    }
    if !missing.is_empty() {
        return Err(ContractError::Incomplete {
            reason: "INCOMPLETE",
            missing,
        });
    }
    let steps = chain(c, config)?;
    let days = config.step_expected_working_days.max(1);
    let info = steps
        .iter()
        .enumerate()
        .map(|(i, (name, _, assignee))| StepInfo {
            name: name.clone(),
            assignee: assignee.clone(),
            start_time: (i == 0).then_some(now),
            expected_time: (i == 0).then(|| add_working_days(now, days)),
            overdue: false,
        })
        .collect();
    let steps = steps
        .iter()
        .map(|(_, role, _)| Step {
            role: *role,
            decision: None,
            decider_id: String::new(),
            on_behalf_of: String::new(),
            decide_time: None,
            comment: String::new(),
        })
        .collect();
    c.approval = Some(ContractApproval {
        id: approval_id,
        requester_id: actor.id.clone(),
        status: ApprovalStatus::Pending,
        steps,
        info,
        current_step: 0,
        submit_time: now,
    });
    c.status = Status::InApproval;
    c.version += 1;
    c.update_time = now;
    c.updater = actor.id.clone();
    Ok(())
}

/// What a decision did to the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The next step (its index) is pending.
    Advanced(usize),
    /// Every step approved: the contract is approved.
    Approved,
    /// A step rejected: the contract is a draft again.
    Rejected,
}

/// A decision on step `number` (1-based) of the current approval.
#[derive(Debug, Clone, Copy)]
pub struct StepDecision<'a> {
    pub number: i32,
    pub approval_id: &'a str,
    pub decision: Decision,
    pub comment: &'a str,
    pub on_behalf_of: &'a str,
}

fn engine_error(err: ApprovalError) -> ContractError {
    use ApprovalError::*;
    let text = err.to_string();
    match err {
        Closed { .. } | NoOpenStep => ContractError::precondition("STEP_NOT_CURRENT", text),
        OnBehalfOfRequired => ContractError::invalid("on_behalf_of", text),
        RoleRequired { .. } => ContractError::forbidden("APPROVER_ROLE_REQUIRED", text),
        SelfApproval => ContractError::forbidden("SELF_APPROVAL", text),
        NotTheNamedDecider(_) => ContractError::forbidden("NOT_ASSIGNEE", text),
        RepeatDecider(_) => ContractError::forbidden("REPEAT_DECIDER", text),
        IntegrationNotAllowed(_) => ContractError::forbidden("INTEGRATION_NOT_ALLOWED", text),
        NotAnApprover { .. } => ContractError::forbidden("ON_BEHALF_OF_NOT_APPROVER", text),
    }
}

/// Decides a step: the caller's authority over the step they name first
/// (a finance user naming the legal step is PERMISSION_DENIED), then its
/// order (a step decided already, or not reached yet, is
/// FAILED_PRECONDITION), then the engine's separation of duties.
pub fn decide(
    c: &mut Contract,
    actor: &Actor,
    d: StepDecision<'_>,
    config: &ContractsConfig,
    now: i64,
) -> Result<Outcome> {
    if c.status != Status::InApproval {
        return Err(ContractError::precondition(
            "NOT_IN_APPROVAL",
            format!("contract {} is {}", c.id, c.status),
        ));
    }
    let Some(approval) = c.approval.as_mut() else {
        return Err(ContractError::precondition(
            "NOT_IN_APPROVAL",
            "no approval",
        ));
    };
    if !d.approval_id.is_empty() && d.approval_id != approval.id {
        return Err(ContractError::precondition(
            "STALE_APPROVAL",
            format!("approval {} is no longer current", d.approval_id),
        ));
    }
    let total = approval.steps.len();
    let index = usize::try_from(d.number)
        .ok()
        .and_then(|n| n.checked_sub(1))
        .filter(|i| *i < total)
        .ok_or_else(|| ContractError::invalid("step", format!("must be 1 to {total}")))?;
    let named_role = approval.steps[index].role;
    if !actor.has(Role::Integration) && !actor.has(named_role) {
        return Err(ContractError::forbidden(
            "APPROVER_ROLE_REQUIRED",
            format!(
                "step {} of {total} is decided by the {named_role} role",
                index + 1
            ),
        ));
    }
    if index != approval.current_step {
        let state = if index < approval.current_step {
            "was decided already"
        } else {
            "is not reached yet"
        };
        return Err(ContractError::precondition(
            "STEP_NOT_CURRENT",
            format!(
                "step {} of {total} {state}; step {} is pending",
                index + 1,
                approval.current_step + 1
            ),
        ));
    }
    let assignee = approval
        .info
        .get(index)
        .map(|i| i.assignee.clone())
        .unwrap_or_default();
    let mut engine: Approval<(), ()> = Approval {
        id: approval.id.clone(),
        tenant: c.tenant.clone(),
        version: c.version,
        kind: (),
        subject_id: c.id.clone(),
        requester_id: approval.requester_id.clone(),
        status: approval.status,
        steps: approval.steps.clone(),
        current_step: approval.current_step,
        reason: String::new(),
        detail: (),
        create_time: approval.submit_time,
        update_time: c.update_time,
    };
    let decided = engine
        .decide(
            Decide {
                actor,
                decision: d.decision,
                comment: d.comment,
                on_behalf_of: d.on_behalf_of,
                only: (!assignee.is_empty()).then_some(assignee.as_str()),
                policy: &config.approval_policy,
            },
            now,
        )
        .map_err(engine_error)?;
    approval.steps = engine.steps;
    approval.status = engine.status;
    approval.current_step = engine.current_step;
    let outcome = match decided {
        Decided::Advanced => {
            let next = approval.current_step;
            if let Some(info) = approval.info.get_mut(next) {
                info.start_time = Some(now);
                info.expected_time = Some(add_working_days(
                    now,
                    config.step_expected_working_days.max(1),
                ));
            }
            Outcome::Advanced(next)
        }
        Decided::Approved => {
            c.status = Status::Approved;
            Outcome::Approved
        }
        Decided::Rejected => {
            c.status = Status::Draft;
            Outcome::Rejected
        }
    };
    c.version += 1;
    c.update_time = now;
    c.updater = actor.id.clone();
    Ok(outcome)
}

/// The state of step `i` of an approval, for display.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepState {
    Waiting,
    Pending,
    Approved,
    Rejected,
    Skipped,
}

pub fn step_state(a: &ContractApproval, i: usize) -> StepState {
    match a.steps.get(i).and_then(|s| s.decision) {
        Some(Decision::Approve) => StepState::Approved,
        Some(Decision::Reject) => StepState::Rejected,
        None if a.status == ApprovalStatus::Pending && i == a.current_step => StepState::Pending,
        None if a.status == ApprovalStatus::Pending => StepState::Waiting,
        None => StepState::Skipped,
    }
}

/// A person's reading of an approval's progress: "legal review, step 3 of
/// 3, expected by 2026-12-02T09:00:00Z".
pub fn progress_summary(a: &ContractApproval, expected: &str) -> String {
    let total = a.steps.len();
    match a.status {
        ApprovalStatus::Pending => {
            let name = a
                .info
                .get(a.current_step)
                .map(|i| i.name.replace('_', " "))
                .unwrap_or_default();
            format!(
                "{name} review, step {} of {total}, expected by {expected}",
                a.current_step + 1
            )
            .replace("review review", "review")
        }
        ApprovalStatus::Approved => format!("approved, {total} of {total} steps"),
        ApprovalStatus::Rejected => {
            let at = a
                .steps
                .iter()
                .position(|s| s.decision == Some(Decision::Reject))
                .unwrap_or_default();
            let name = a
                .info
                .get(at)
                .map(|i| i.name.replace('_', " "))
                .unwrap_or_default();
            format!("rejected at {name}, step {} of {total}", at + 1)
        }
        ApprovalStatus::Voided => "voided".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::domain::testing::*;
    use crm_types::Money;

    fn decision(number: i32, decision: Decision) -> StepDecision<'static> {
        StepDecision {
            number,
            approval_id: "",
            decision,
            comment: "ok",
            on_behalf_of: "",
        }
    }

    fn submitted(config: &ContractsConfig) -> Contract {
        let mut c = ready();
        submit(&mut c, &sales(), config, "a1".into(), MONDAY_9).unwrap();
        c
    }

    #[test]
    fn working_days_skip_the_weekend() {
        let friday = MONDAY_9 + 4 * DAY_MICROS;
        assert_eq!(add_working_days(MONDAY_9, 1), MONDAY_9 + DAY_MICROS);
        assert_eq!(add_working_days(friday, 1), friday + 3 * DAY_MICROS);
        assert_eq!(
            add_working_days(friday + DAY_MICROS, 1),
            friday + 3 * DAY_MICROS
        );
    }

    #[test]
    fn the_default_chain_is_manager_finance_legal_and_rules_add_steps() {
        let config = ContractsConfig::default();
        let c = submitted(&config);
        let a = c.approval.as_ref().unwrap();
        let names: Vec<&str> = a.info.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["sales_manager", "finance", "legal"]);
        assert_eq!(a.info[0].expected_time, Some(MONDAY_9 + DAY_MICROS));
        assert_eq!(c.status, Status::InApproval);

        let ruled = ContractsConfig {
            large_total_thresholds: vec![Money::new("CNY", 100_000, 0)],
            deep_discount_percent: 5,
            ..ContractsConfig::default()
        };
        let mut c = ready();
        c.lines[0].discount_percent = 10;
        let names: Vec<String> = chain(&c, &ruled)
            .unwrap()
            .into_iter()
            .map(|s| s.0)
            .collect();
        assert_eq!(
            names,
            [
                "sales_manager",
                "finance",
                "legal",
                "large_total_manager",
                "deep_discount_finance"
            ]
        );
    }

    #[test]
    fn scope_changes_put_the_delivery_managers_review_first() {
        let mut c = ready();
        c.workload_person_days += 5;
        let steps = chain(&c, &ContractsConfig::default()).unwrap();
        assert_eq!(
            (steps[0].0.as_str(), steps[0].1, steps[0].2.as_str()),
            ("delivery_review", Role::Delivery, "dora")
        );
        c.team.delivery_manager_id.clear();
        let err = chain(&c, &ContractsConfig::default()).unwrap_err();
        assert!(matches!(
            err,
            ContractError::Precondition("NO_DELIVERY_MANAGER", _)
        ));
    }

    #[test]
    fn submitting_needs_term_and_milestones() {
        let mut c = draft();
        let err = submit(
            &mut c,
            &sales(),
            &ContractsConfig::default(),
            "a1".into(),
            0,
        )
        .unwrap_err();
        let ContractError::Incomplete { missing, .. } = err else {
            panic!("{err:?}")
        };
        let subjects: Vec<&str> = missing.iter().map(|m| m.subject.as_str()).collect();
        assert_eq!(subjects, ["term", "milestones"]);
    }

    #[test]
    fn steps_are_decided_in_order_by_their_role_and_the_last_approves() {
        let config = ContractsConfig::default();
        let mut c = submitted(&config);
        let err = decide(
            &mut c,
            &finance(),
            decision(3, Decision::Approve),
            &config,
            1,
        )
        .unwrap_err();
        assert!(
            matches!(err, ContractError::Forbidden("APPROVER_ROLE_REQUIRED", _)),
            "{err:?}"
        );
        let err = decide(
            &mut c,
            &finance(),
            decision(2, Decision::Approve),
            &config,
            1,
        )
        .unwrap_err();
        assert!(
            matches!(err, ContractError::Precondition("STEP_NOT_CURRENT", _)),
            "{err:?}"
        );
        assert_eq!(
            decide(
                &mut c,
                &manager(),
                decision(1, Decision::Approve),
                &config,
                1
            )
            .unwrap(),
            Outcome::Advanced(1)
        );
        let err = decide(
            &mut c,
            &manager(),
            decision(1, Decision::Approve),
            &config,
            2,
        )
        .unwrap_err();
        assert!(matches!(
            err,
            ContractError::Precondition("STEP_NOT_CURRENT", _)
        ));
        assert_eq!(
            decide(
                &mut c,
                &finance(),
                decision(2, Decision::Approve),
                &config,
                2
            )
            .unwrap(),
            Outcome::Advanced(2)
        );
        assert_eq!(
            decide(&mut c, &legal(), decision(3, Decision::Approve), &config, 3).unwrap(),
            Outcome::Approved
        );
        assert_eq!(c.status, Status::Approved);
        let a = c.approval.as_ref().unwrap();
        assert_eq!(progress_summary(a, ""), "approved, 3 of 3 steps");
    }

    #[test]
    fn a_rejection_returns_the_contract_to_draft() {
        let config = ContractsConfig::default();
        let mut c = submitted(&config);
        decide(
            &mut c,
            &manager(),
            decision(1, Decision::Approve),
            &config,
            1,
        )
        .unwrap();
        assert_eq!(
            decide(
                &mut c,
                &finance(),
                decision(2, Decision::Reject),
                &config,
                2
            )
            .unwrap(),
            Outcome::Rejected
        );
        assert_eq!(c.status, Status::Draft);
        let a = c.approval.as_ref().unwrap();
        assert_eq!(step_state(a, 2), StepState::Skipped);
        assert_eq!(progress_summary(a, ""), "rejected at finance, step 2 of 3");
    }

    #[test]
    fn the_requester_never_decides_and_oa_decides_for_listed_approvers() {
        let mut config = ContractsConfig::default();
        let mut c = ready();
        let boss = Actor::new("boss", vec![Role::Manager]);
        submit(&mut c, &boss, &config, "a1".into(), 0).unwrap();
        let err = decide(&mut c, &boss, decision(1, Decision::Approve), &config, 1).unwrap_err();
        assert!(matches!(err, ContractError::Forbidden("SELF_APPROVAL", _)));
        let oa = Actor::new("oa-system", vec![Role::Integration]);
        let mut by_oa = decision(1, Decision::Approve);
        by_oa.on_behalf_of = "wang";
        let err = decide(&mut c, &oa, by_oa, &config, 1).unwrap_err();
        assert!(matches!(
            err,
            ContractError::Forbidden("INTEGRATION_NOT_ALLOWED", _)
        ));
        config.approval_policy.integration_subjects = vec!["oa-system".into()];
        config.approval_policy.approvers = [("wang".to_owned(), vec![Role::Manager])].into();
        assert_eq!(
            decide(&mut c, &oa, by_oa, &config, 1).unwrap(),
            Outcome::Advanced(1)
        );
        let step = &c.approval.as_ref().unwrap().steps[0];
        assert_eq!(
            (step.decider_id.as_str(), step.on_behalf_of.as_str()),
            ("oa-system", "wang")
        );
    }

    #[test]
    fn only_the_team_delivery_manager_decides_the_delivery_review() {
        let config = ContractsConfig::default();
        let mut c = ready();
        c.workload_person_days += 1;
        submit(&mut c, &sales(), &config, "a1".into(), 0).unwrap();
        let other = Actor::new("dan", vec![Role::Delivery]);
        let err = decide(&mut c, &other, decision(1, Decision::Approve), &config, 1).unwrap_err();
        assert!(matches!(err, ContractError::Forbidden("NOT_ASSIGNEE", _)));
        let dora = Actor::new("dora", vec![Role::Delivery]);
        assert_eq!(
            decide(&mut c, &dora, decision(1, Decision::Approve), &config, 1).unwrap(),
            Outcome::Advanced(1)
        );
    }

    #[test]
    fn a_decision_for_another_round_is_refused() {
        let config = ContractsConfig::default();
        let mut c = submitted(&config);
        let mut d = decision(1, Decision::Approve);
        d.approval_id = "old";
        let err = decide(&mut c, &manager(), d, &config, 1).unwrap_err();
        assert!(matches!(
            err,
            ContractError::Precondition("STALE_APPROVAL", _)
        ));
    }
}
