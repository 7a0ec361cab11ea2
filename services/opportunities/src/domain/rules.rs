//! What may happen to an opportunity or an account, and what it changes.

use std::collections::BTreeMap;

use crm_types::{Actor, Change, Date, Etag, Money, Role, Violation};

use super::{
    Account, AccountUpdate, ApprovalStatus, Contact, GateFacts, Grade, Missing, Opportunity,
    OpportunityConfig, OpportunityError, Qualification, Stage, Team, access::check_team_change,
    check_account_owner, check_advance,
};

/// Field changes an update asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpportunityPatch {
    Name(String),
    Amount(Option<Money>),
    ExpectedCloseDate(Option<Date>),
    Grade(Option<Grade>),
    Team(Team),
    Competitors(Vec<String>),
    WinLossReason(String),
    Qualification(Option<Qualification>),
    SolutionSummary(String),
    WorkloadPersonDays(Option<i32>),
    Quote(Option<Money>),
}

/// A manager's override of a gate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageViolation {
    pub id: String,
    pub opportunity_id: String,
    pub from: Stage,
    pub to: Stage,
    pub missing: Vec<Missing>,
    pub manager_id: String,
    pub reason: String,
    pub time: i64,
}

fn money_text(m: &Option<Money>) -> String {
    m.as_ref().map(Money::to_string).unwrap_or_default()
}

fn diff(a: &Opportunity, b: &Opportunity) -> Vec<Change> {
    [
        Change::of("name", &a.name, &b.name),
        Change::of("amount", money_text(&a.amount), money_text(&b.amount)),
        Change::of(
            "expected_close_date",
            a.expected_close_date.map(|d| d.iso()).unwrap_or_default(),
            b.expected_close_date.map(|d| d.iso()).unwrap_or_default(),
        ),
        Change::of(
            "grade",
            a.grade.map(|g| g.as_str()).unwrap_or_default(),
            b.grade.map(|g| g.as_str()).unwrap_or_default(),
        ),
        Change::of("team", format!("{:?}", a.team), format!("{:?}", b.team)),
        Change::of(
            "competitors",
            a.competitors.join(", "),
            b.competitors.join(", "),
        ),
        Change::of("stage", a.stage, b.stage),
        Change::of("win_loss_reason", &a.win_loss_reason, &b.win_loss_reason),
        Change::of(
            "qualification",
            format!("{:?}", a.qualification),
            format!("{:?}", b.qualification),
        ),
        Change::of("solution_summary", &a.solution_summary, &b.solution_summary),
        Change::of(
            "workload_person_days",
            a.workload_person_days
                .map(|d| d.to_string())
                .unwrap_or_default(),
            b.workload_person_days
                .map(|d| d.to_string())
                .unwrap_or_default(),
        ),
        Change::of("quote", money_text(&a.quote), money_text(&b.quote)),
        Change::of(
            "delivery_review",
            a.delivery_review
                .as_ref()
                .map(|r| r.status.as_str())
                .unwrap_or_default(),
            b.delivery_review
                .as_ref()
                .map(|r| r.status.as_str())
                .unwrap_or_default(),
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}

fn finish(before: &Opportunity, after: &mut Opportunity, actor: &Actor, now: i64) -> Vec<Change> {
    let changes = diff(before, after);
    if !changes.is_empty() {
        after.version += 1;
        after.update_time = now;
        after.updater = actor.id.clone();
    }
    changes
}

/// Whether the etag a client sent (empty: whatever is current) names the
/// record at `version`.
pub fn check_etag(etag: &str, version: i64) -> Result<(), OpportunityError> {
    if Etag::matches(etag, u64::try_from(version).unwrap_or_default()) {
        Ok(())
    } else {
        Err(OpportunityError::Stale)
    }
}

/// The largest amount or quote, in whole units of its currency (one
/// trillion): far above any deal, and low enough that sums of millions of
/// them stay exact in the forecast's 64-bit units.
pub const MAX_MONEY_UNITS: i64 = 1_000_000_000_000;

/// What is wrong with a money field: negative, or over [`MAX_MONEY_UNITS`].
pub fn money_violation(field: &str, m: &Option<Money>) -> Option<Violation> {
    let m = m.as_ref()?;
    if m.is_negative() {
        Some(Violation::new(field, "must not be negative"))
    } else if m.total_nanos() > i128::from(MAX_MONEY_UNITS) * 1_000_000_000 {
        Some(Violation::new(
            field,
            format!("at most {MAX_MONEY_UNITS} units"),
        ))
    } else {
        None
    }
}

/// The bad money fields of an opportunity: its amount and quote.
pub fn money_violations(amount: &Option<Money>, quote: &Option<Money>) -> Vec<Violation> {
    [
        money_violation("opportunity.amount", amount),
        money_violation("opportunity.quote", quote),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// Checks the fields every write shares.
pub fn validate(opp: &Opportunity) -> Vec<Violation> {
    let mut v = money_violations(&opp.amount, &opp.quote);
    if opp.name.trim().is_empty() {
        v.push(Violation::new("opportunity.name", "required"));
    }
    if opp.name.chars().count() > 200 {
        v.push(Violation::new("opportunity.name", "at most 200 characters"));
    }
    if opp.team.account_manager_id.trim().is_empty() {
        v.push(Violation::new(
            "opportunity.team.account_manager_id",
            "required",
        ));
    }
    if opp.workload_person_days.is_some_and(|d| d < 0) {
        v.push(Violation::new(
            "opportunity.workload_person_days",
            "must not be negative",
        ));
    }
    v
}

/// What an update did: the fields it changed, and the delivery review it
/// voided (whose approval the caller voids too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Updated {
    pub changes: Vec<Change>,
    pub voided_review: Option<String>,
}

/// Applies an update. Only the account manager or a manager changes the
/// team (only a manager its account manager); changing what the delivery
/// manager reviewed, or the delivery manager, voids the review.
pub fn update(
    opp: &mut Opportunity,
    patches: Vec<OpportunityPatch>,
    actor: &Actor,
    now: i64,
) -> Result<Updated, OpportunityError> {
    opp.check_access(actor)?;
    if opp.stage.is_final() {
        return Err(OpportunityError::Precondition(
            "OPPORTUNITY_CLOSED",
            format!("the opportunity is {}", opp.stage),
        ));
    }
    let before = opp.clone();
    for patch in patches {
        match patch {
            OpportunityPatch::Name(v) => opp.name = v.trim().to_owned(),
            OpportunityPatch::Amount(v) => opp.amount = v,
            OpportunityPatch::ExpectedCloseDate(v) => opp.expected_close_date = v,
            OpportunityPatch::Grade(v) => opp.grade = v,
            OpportunityPatch::Team(v) => opp.team = v,
            OpportunityPatch::Competitors(v) => opp.competitors = v,
            OpportunityPatch::WinLossReason(v) => opp.win_loss_reason = v,
            OpportunityPatch::Qualification(v) => opp.qualification = v,
            OpportunityPatch::SolutionSummary(v) => opp.solution_summary = v,
            OpportunityPatch::WorkloadPersonDays(v) => opp.workload_person_days = v,
            OpportunityPatch::Quote(v) => opp.quote = v,
        }
    }
    if let Err(refused) = check_team_change(&before.team, &opp.team, actor) {
        *opp = before;
        return Err(refused);
    }
    let violations = validate(opp);
    if !violations.is_empty() {
        *opp = before;
        return Err(OpportunityError::Invalid(violations));
    }
    let voided_review = void_review_if_changed(&before, opp);
    Ok(Updated {
        changes: finish(&before, opp, actor, now),
        voided_review,
    })
}

/// Voids a pending or approved delivery review when solution, workload or
/// quote changed since `before`. Returns the voided approval's id.
pub fn void_review_if_changed(before: &Opportunity, after: &mut Opportunity) -> Option<String> {
    let changed = before.review_snapshot() != after.review_snapshot();
    let review = after.delivery_review.as_mut()?;
    if review.status.is_live() && changed {
        review.status = ApprovalStatus::Voided;
        return Some(review.approval_id.clone());
    }
    None
}

/// Moves to `target` if its gate is met. A manager passing an unmet gate
/// with a reason gets a recorded violation; anyone else gets every missing
/// requirement.
pub fn advance(
    opp: &mut Opportunity,
    target: Stage,
    actor: &Actor,
    override_reason: &str,
    facts: &GateFacts,
    config: &OpportunityConfig,
    violation_id: String,
    now: i64,
) -> Result<(Vec<Change>, Option<StageViolation>), OpportunityError> {
    opp.check_access(actor)?;
    let missing = check_advance(opp, target, facts, config)?;
    let reason = override_reason.trim();
    let violation = match (missing.is_empty(), reason.is_empty()) {
        (true, _) => None,
        (false, true) => return Err(OpportunityError::GateNotMet(missing)),
        (false, false) if !actor.has(Role::Manager) => {
            return Err(OpportunityError::Forbidden(
                "OVERRIDE_NOT_ALLOWED",
                "only a manager may pass an unmet stage gate".into(),
            ));
        }
        (false, false) => Some(StageViolation {
            id: violation_id,
            opportunity_id: opp.id.clone(),
            from: opp.stage,
            to: target,
            missing,
            manager_id: actor.id.clone(),
            reason: reason.to_owned(),
            time: now,
        }),
    };
    let before = opp.clone();
    opp.stage = target;
    Ok((finish(&before, opp, actor, now), violation))
}

/// The core fields (name, registration number, industry) an account update
/// asks to change, which go through an approval; refused while another
/// change is pending.
pub fn account_core_change(
    account: &Account,
    proposed: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, OpportunityError> {
    let current = |f: &str| match f {
        "name" => account.name.clone(),
        "registration_number" => account.registration_number.clone(),
        _ => account.industry.clone(),
    };
    let changed: BTreeMap<String, String> = proposed
        .iter()
        .filter(|(f, v)| current(f) != **v)
        .map(|(f, v)| (f.clone(), v.clone()))
        .collect();
    if !changed.is_empty() && account.pending_approval_id.is_some() {
        return Err(OpportunityError::Precondition(
            "ACCOUNT_CHANGE_PENDING",
            "a core-field change of this account awaits approval".into(),
        ));
    }
    if changed.get("name").is_some_and(|n| n.trim().is_empty()) {
        return Err(OpportunityError::invalid("account.name", "required"));
    }
    Ok(changed)
}

/// Applies region and owner to `account` at once (the owner only by a
/// supervisor) and returns the core fields that change only through an
/// approval.
pub fn update_account(
    account: &mut Account,
    update: &AccountUpdate,
    actor: &Actor,
) -> Result<BTreeMap<String, String>, OpportunityError> {
    check_account_owner(account, actor)?;
    if let Some(region) = &update.region {
        account.region.clone_from(region);
    }
    if let Some(owner) = &update.owner_id {
        if !actor.supervisor() {
            return Err(OpportunityError::Forbidden(
                "NOT_MANAGER",
                "only managers reassign accounts".into(),
            ));
        }
        account.owner_id.clone_from(owner);
    }
    account_core_change(account, &update.core)
}

/// What changed on `account` since `before`; moves its version when
/// anything did.
pub fn finish_account_update(
    before: &Account,
    account: &mut Account,
    actor: &Actor,
    now: i64,
) -> Vec<Change> {
    let changes: Vec<Change> = [
        Change::of("region", &before.region, &account.region),
        Change::of("owner_id", &before.owner_id, &account.owner_id),
        Change::of(
            "pending_approval_id",
            before.pending_approval_id.clone().unwrap_or_default(),
            account.pending_approval_id.clone().unwrap_or_default(),
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !changes.is_empty() {
        account.version += 1;
        account.update_time = now;
        account.updater = actor.id.clone();
    }
    changes
}

/// Contacts named on an opportunity (decision chain, activities) belong to
/// its account.
pub fn check_contact_of(
    opp: &Opportunity,
    contact: &Contact,
    field: impl Into<String>,
) -> Result<(), OpportunityError> {
    if contact.account_id == opp.account_id {
        Ok(())
    } else {
        Err(OpportunityError::invalid(
            field,
            "a contact of the opportunity's account",
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::domain::{ApprovalKind, ReviewState};

    fn actor(id: &str, roles: &[Role]) -> Actor {
        Actor::new(id, roles.to_vec())
    }

    fn opp(stage: Stage) -> Opportunity {
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
                ..Team::default()
            },
            competitors: vec![],
            stage,
            win_loss_reason: String::new(),
            qualification: None,
            solution_summary: String::new(),
            workload_person_days: None,
            quote: None,
            delivery_review: None,
            lead_id: None,
            create_time: 0,
            update_time: 0,
            creator: "amy".into(),
            updater: "amy".into(),
        }
    }

    #[test]
    fn a_stale_etag_is_refused() {
        assert!(check_etag("", 3).is_ok());
        assert!(check_etag("3", 3).is_ok());
        assert!(matches!(check_etag("2", 3), Err(OpportunityError::Stale)));
        assert!(matches!(check_etag("x", 3), Err(OpportunityError::Stale)));
    }

    #[test]
    fn a_refused_move_lists_everything_missing() {
        let mut o = opp(Stage::Validate);
        let err = advance(
            &mut o,
            Stage::Approved,
            &actor("amy", &[Role::Sales]),
            "",
            &GateFacts::default(),
            &OpportunityConfig::default(),
            "v".into(),
            1,
        );
        let Err(OpportunityError::GateNotMet(missing)) = err else {
            panic!("{err:?}")
        };
        let subjects: Vec<_> = missing.iter().map(|m| m.subject.as_str()).collect();
        assert_eq!(
            subjects,
            [
                "amount",
                "expected_close_date",
                "grade",
                "qualification_assessed",
                "project_approval"
            ]
        );
        assert_eq!(o.stage, Stage::Validate);
    }

    #[test]
    fn a_manager_override_is_a_recorded_violation() {
        let mut o = opp(Stage::Validate);
        let sales_try = advance(
            &mut o,
            Stage::Approved,
            &actor("amy", &[Role::Sales]),
            "please",
            &GateFacts::default(),
            &OpportunityConfig::default(),
            "v".into(),
            1,
        );
        assert!(matches!(
            sales_try,
            Err(OpportunityError::Forbidden("OVERRIDE_NOT_ALLOWED", _))
        ));
        let (_, violation) = advance(
            &mut o,
            Stage::Approved,
            &actor("boss", &[Role::Manager]),
            "strategic customer",
            &GateFacts::default(),
            &OpportunityConfig::default(),
            "v".into(),
            1,
        )
        .unwrap();
        let violation = violation.unwrap();
        assert_eq!(
            (violation.from, violation.to, violation.missing.len()),
            (Stage::Validate, Stage::Approved, 5)
        );
        assert_eq!(o.stage, Stage::Approved);
    }

    #[test]
    fn stages_are_taken_in_order_unless_configured() {
        let mut o = opp(Stage::Validate);
        let config = OpportunityConfig::default();
        let boss = actor("boss", &[Role::Manager]);
        assert!(matches!(
            advance(
                &mut o,
                Stage::Proposal,
                &boss,
                "x",
                &GateFacts::default(),
                &config,
                "v".into(),
                1
            ),
            Err(OpportunityError::Precondition("STAGE_ORDER", _))
        ));
        let mut later = opp(Stage::Bidding);
        assert!(matches!(
            advance(
                &mut later,
                Stage::Approved,
                &boss,
                "x",
                &GateFacts::default(),
                &config,
                "v".into(),
                1
            ),
            Err(OpportunityError::Precondition("STAGE_ORDER", _))
        ));
        let lenient = OpportunityConfig {
            allow_moving_back: true,
            ..OpportunityConfig::default()
        };
        assert!(
            advance(
                &mut later,
                Stage::Approved,
                &boss,
                "x",
                &GateFacts::default(),
                &lenient,
                "v".into(),
                1
            )
            .is_ok()
        );
        let mut lost = opp(Stage::Validate);
        lost.win_loss_reason = "no budget".into();
        advance(
            &mut lost,
            Stage::Lost,
            &actor("amy", &[Role::Sales]),
            "",
            &GateFacts::default(),
            &config,
            "v".into(),
            1,
        )
        .unwrap();
        assert!(matches!(
            advance(
                &mut lost,
                Stage::Validate,
                &boss,
                "x",
                &GateFacts::default(),
                &lenient,
                "v".into(),
                1
            ),
            Err(OpportunityError::Precondition("OPPORTUNITY_CLOSED", _))
        ));
    }

    #[test]
    fn proposal_needs_an_approved_delivery_review() {
        let mut o = opp(Stage::ValuePresentation);
        o.team.delivery_manager_id = "dora".into();
        o.solution_summary = "MES + ERP".into();
        o.workload_person_days = Some(120);
        o.quote = Some(Money::new("CNY", 900_000, 0));
        let amy = actor("amy", &[Role::Sales]);
        let config = OpportunityConfig::default();
        let Err(OpportunityError::GateNotMet(missing)) = advance(
            &mut o.clone(),
            Stage::Proposal,
            &amy,
            "",
            &GateFacts::default(),
            &config,
            "v".into(),
            1,
        ) else {
            panic!()
        };
        assert_eq!(
            missing
                .iter()
                .map(|m| m.subject.as_str())
                .collect::<Vec<_>>(),
            [ApprovalKind::DeliveryReview.as_str()]
        );
        o.delivery_review = Some(ReviewState {
            approval_id: "r1".into(),
            status: ApprovalStatus::Approved,
        });
        assert!(
            advance(
                &mut o.clone(),
                Stage::Proposal,
                &amy,
                "",
                &GateFacts::default(),
                &config,
                "v".into(),
                1
            )
            .is_ok()
        );

        // Changing the quote afterwards voids the review.
        update(
            &mut o,
            vec![OpportunityPatch::Quote(Some(Money::new("CNY", 800_000, 0)))],
            &amy,
            2,
        )
        .unwrap();
        assert_eq!(
            o.delivery_review.as_ref().map(|r| r.status),
            Some(ApprovalStatus::Voided)
        );
        // Changing something else does not.
        let mut o2 = o.clone();
        o2.delivery_review = Some(ReviewState {
            approval_id: "r2".into(),
            status: ApprovalStatus::Approved,
        });
        update(
            &mut o2,
            vec![OpportunityPatch::Name("New name".into())],
            &amy,
            3,
        )
        .unwrap();
        assert_eq!(
            o2.delivery_review.as_ref().map(|r| r.status),
            Some(ApprovalStatus::Approved)
        );
        // Another delivery manager has not reviewed it: the review is void.
        let mut team = o2.team.clone();
        team.delivery_manager_id = "dan".into();
        let updated = update(&mut o2, vec![OpportunityPatch::Team(team)], &amy, 4).unwrap();
        assert_eq!(updated.voided_review.as_deref(), Some("r2"));
    }

    #[test]
    fn amounts_are_bounded_and_the_team_keeps_an_account_manager() {
        let amy = actor("amy", &[Role::Sales]);
        let mut o = opp(Stage::Validate);
        let at_most = Money::new("CNY", MAX_MONEY_UNITS, 0);
        assert!(
            update(
                &mut o,
                vec![OpportunityPatch::Amount(Some(at_most))],
                &amy,
                1
            )
            .is_ok()
        );
        let over = Money::new("CNY", MAX_MONEY_UNITS, 1);
        let err = update(&mut o, vec![OpportunityPatch::Quote(Some(over))], &amy, 2);
        assert!(
            matches!(err, Err(OpportunityError::Invalid(v)) if v[0].field == "opportunity.quote")
        );
        let five_e18 = Money::new("CNY", 5_000_000_000_000_000_000, 0);
        assert!(money_violation("amount", &Some(five_e18)).is_some());
        let boss = actor("boss", &[Role::Manager]);
        let err = update(
            &mut o,
            vec![OpportunityPatch::Team(Team::default())],
            &boss,
            3,
        );
        assert!(
            matches!(err, Err(OpportunityError::Invalid(v)) if v[0].field == "opportunity.team.account_manager_id")
        );
    }

    #[test]
    fn a_team_member_does_not_rewrite_the_team() {
        let mut o = opp(Stage::Validate);
        o.team.solution_manager_id = "sol".into();
        let takeover = Team {
            account_manager_id: "sol".into(),
            solution_manager_id: "sol".into(),
            ..Team::default()
        };
        let err = update(
            &mut o,
            vec![OpportunityPatch::Team(takeover.clone())],
            &actor("sol", &[Role::Solution]),
            1,
        );
        assert!(matches!(
            err,
            Err(OpportunityError::Forbidden("NOT_ACCOUNT_MANAGER", _))
        ));
        assert_eq!(
            o.team.account_manager_id, "amy",
            "a refused update changes nothing"
        );
        assert!(
            update(
                &mut o,
                vec![OpportunityPatch::Team(takeover)],
                &actor("boss", &[Role::Manager]),
                2
            )
            .is_ok()
        );
    }

    #[test]
    fn only_the_team_changes_an_opportunity() {
        let mut o = opp(Stage::Validate);
        let err = update(
            &mut o,
            vec![OpportunityPatch::Name("x".into())],
            &actor("bob", &[Role::Sales]),
            1,
        );
        assert!(matches!(
            err,
            Err(OpportunityError::Forbidden("NOT_ON_TEAM", _))
        ));
        let err = update(
            &mut o,
            vec![OpportunityPatch::Amount(Some(Money::new("CNY", -1, 0)))],
            &actor("amy", &[Role::Sales]),
            1,
        );
        assert!(
            matches!(err, Err(OpportunityError::Invalid(v)) if v[0].field == "opportunity.amount")
        );
    }

    #[test]
    fn core_account_fields_wait_for_approval() {
        let account = Account {
            id: "a1".into(),
            tenant: "t".into(),
            version: 1,
            name: "ACME".into(),
            registration_number: "91110000X".into(),
            industry: "manufacturing".into(),
            region: String::new(),
            owner_id: "amy".into(),
            pending_approval_id: None,
            create_time: 0,
            update_time: 0,
            creator: "amy".into(),
            updater: "amy".into(),
        };
        let proposed: BTreeMap<_, _> = [
            ("name".to_owned(), "ACME Group".to_owned()),
            ("industry".to_owned(), "manufacturing".to_owned()),
        ]
        .into();
        let changed = account_core_change(&account, &proposed).unwrap();
        assert_eq!(changed.keys().collect::<Vec<_>>(), ["name"]);
        let pending = Account {
            pending_approval_id: Some("ap".into()),
            ..account.clone()
        };
        assert!(matches!(
            account_core_change(&pending, &proposed),
            Err(OpportunityError::Precondition("ACCOUNT_CHANGE_PENDING", _))
        ));
    }

    #[test]
    fn region_applies_at_once_and_only_supervisors_reassign() {
        let account = Account {
            id: "a1".into(),
            tenant: "t".into(),
            version: 1,
            name: "ACME".into(),
            registration_number: String::new(),
            industry: String::new(),
            region: "north".into(),
            owner_id: "amy".into(),
            pending_approval_id: None,
            create_time: 0,
            update_time: 0,
            creator: "amy".into(),
            updater: "amy".into(),
        };
        let amy = actor("amy", &[Role::Sales]);
        let moved = AccountUpdate {
            region: Some("east".into()),
            ..AccountUpdate::default()
        };
        let mut a = account.clone();
        assert!(update_account(&mut a, &moved, &amy).unwrap().is_empty());
        let changes = finish_account_update(&account, &mut a, &amy, 7);
        assert_eq!(
            (changes.len(), a.region.as_str(), a.version),
            (1, "east", 2)
        );
        let reassigned = AccountUpdate {
            owner_id: Some("bob".into()),
            ..AccountUpdate::default()
        };
        assert!(matches!(
            update_account(&mut account.clone(), &reassigned, &amy),
            Err(OpportunityError::Forbidden("NOT_MANAGER", _))
        ));
        assert!(matches!(
            update_account(&mut account.clone(), &moved, &actor("bob", &[Role::Sales])),
            Err(OpportunityError::Forbidden("NOT_ACCOUNT_OWNER", _))
        ));
        let mut by_boss = account.clone();
        update_account(&mut by_boss, &reassigned, &actor("boss", &[Role::Manager])).unwrap();
        assert_eq!(by_boss.owner_id, "bob");
    }
}
