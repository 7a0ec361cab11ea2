//! Who sees what, and who may create or change what (DOMAIN 2): supervisors
//! (managers, admins, integrations) act on every record of the tenant;
//! everyone else on the opportunities whose team they are on, the accounts
//! (and their contacts) they own or whose opportunities they work on, and
//! the approvals of those, plus the approvals awaiting their role's step.

use crm_types::{Actor, Role};

use super::{
    Account, AccountDraft, Approval, ApprovalKind, Opportunity, OpportunityDraft, OpportunityError,
    Stage, Team,
};

fn not_on_team(what: String) -> OpportunityError {
    OpportunityError::Forbidden("NOT_ON_TEAM", what)
}

/// Which opportunities a caller sees: the one rule behind Get, List's
/// filter and every command on an opportunity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    /// Every opportunity of the tenant.
    All,
    /// Only those whose team includes this person.
    TeamOf(String),
}

impl Visibility {
    pub fn of(actor: &Actor) -> Self {
        if actor.supervisor() {
            Visibility::All
        } else {
            Visibility::TeamOf(actor.id.clone())
        }
    }

    pub fn admits(&self, team: &Team) -> bool {
        match self {
            Visibility::All => true,
            Visibility::TeamOf(person) => team.includes(person),
        }
    }

    /// The team member a list is narrowed to, if any.
    pub fn team_member(&self) -> Option<&str> {
        match self {
            Visibility::All => None,
            Visibility::TeamOf(person) => Some(person),
        }
    }
}

/// Whether `actor` sees `account` and its contacts: its owner, a member of
/// the team of one of its opportunities (`on_team`, which the caller looks
/// up), or a supervisor.
pub fn check_account_visible(
    account: &Account,
    actor: &Actor,
    on_team: bool,
) -> Result<(), OpportunityError> {
    if actor.supervisor() || account.owner_id == actor.id || on_team {
        Ok(())
    } else {
        Err(not_on_team(format!(
            "{} neither owns account {} nor works on its opportunities",
            actor.id, account.id
        )))
    }
}

/// The role whose holders may read a pending approval beside those who see
/// its subject: the open step's. A delivery review awaits the team's
/// delivery manager only, who is on the team anyway.
pub fn awaiting_role(approval: &Approval) -> Option<Role> {
    match approval.kind {
        ApprovalKind::DeliveryReview => None,
        _ => approval.awaiting(),
    }
}

/// Whether `actor` may read `approval`: whoever sees its subject
/// (`subject_visible`, the opportunity's or the account's rule), and the
/// holders of the role its open step awaits.
pub fn check_approval_visible(
    approval: &Approval,
    actor: &Actor,
    subject_visible: bool,
) -> Result<(), OpportunityError> {
    let decides = awaiting_role(approval).is_some_and(|role| actor.has(role));
    if actor.supervisor() || subject_visible || decides {
        Ok(())
    } else {
        Err(not_on_team(format!(
            "{} neither sees the subject of approval {} nor decides its open step",
            actor.id, approval.id
        )))
    }
}

/// Whether `actor` may change an opportunity's team from `before` to
/// `after`: its account manager or a manager changes the team, and only a
/// manager names another account manager.
pub fn check_team_change(
    before: &Team,
    after: &Team,
    actor: &Actor,
) -> Result<(), OpportunityError> {
    if before == after || actor.has(Role::Manager) {
        return Ok(());
    }
    if before.account_manager_id != actor.id {
        return Err(OpportunityError::Forbidden(
            "NOT_ACCOUNT_MANAGER",
            "only the account manager or a manager changes the team".into(),
        ));
    }
    if after.account_manager_id != before.account_manager_id {
        return Err(OpportunityError::Forbidden(
            "NOT_MANAGER",
            "only managers name another account manager".into(),
        ));
    }
    Ok(())
}

/// A new account: owned by its creator unless a supervisor names another
/// owner.
pub fn new_account(
    draft: AccountDraft,
    actor: &Actor,
    tenant: &str,
    id: String,
    now: i64,
) -> Result<Account, OpportunityError> {
    let owner_id = if draft.owner_id.is_empty() {
        actor.id.clone()
    } else {
        draft.owner_id
    };
    if owner_id != actor.id && !actor.supervisor() {
        return Err(OpportunityError::Forbidden(
            "NOT_MANAGER",
            "only managers create accounts for someone else".into(),
        ));
    }
    Ok(Account {
        id,
        tenant: tenant.to_owned(),
        version: 1,
        name: draft.name,
        registration_number: draft.registration_number,
        industry: draft.industry,
        region: draft.region,
        owner_id,
        pending_approval_id: None,
        create_time: now,
        update_time: now,
        creator: actor.id.clone(),
        updater: actor.id.clone(),
    })
}

/// A new opportunity in the first stage. Its account manager is the creator
/// unless named; sales create only opportunities whose team they are on.
pub fn new_opportunity(
    draft: OpportunityDraft,
    actor: &Actor,
    tenant: &str,
    id: String,
    now: i64,
) -> Result<Opportunity, OpportunityError> {
    let mut team = draft.team;
    if team.account_manager_id.is_empty() {
        team.account_manager_id = actor.id.clone();
    }
    if !Visibility::of(actor).admits(&team) {
        return Err(not_on_team(
            "sales create opportunities they are on the team of".into(),
        ));
    }
    let violations = super::rules::money_violations(&draft.amount, &None);
    if !violations.is_empty() {
        return Err(OpportunityError::Invalid(violations));
    }
    Ok(Opportunity {
        id,
        tenant: tenant.to_owned(),
        version: 1,
        account_id: draft.account_id,
        name: draft.name,
        amount: draft.amount,
        expected_close_date: draft.expected_close_date,
        grade: draft.grade,
        team,
        competitors: draft.competitors,
        stage: Stage::Validate,
        win_loss_reason: String::new(),
        qualification: draft.qualification,
        solution_summary: String::new(),
        workload_person_days: None,
        quote: None,
        delivery_review: None,
        lead_id: None,
        create_time: now,
        update_time: now,
        creator: actor.id.clone(),
        updater: actor.id.clone(),
    })
}

/// Whether `actor` may change `account`: its owner or a supervisor.
pub fn check_account_owner(account: &Account, actor: &Actor) -> Result<(), OpportunityError> {
    if actor.supervisor() || account.owner_id == actor.id {
        Ok(())
    } else {
        Err(OpportunityError::Forbidden(
            "NOT_ACCOUNT_OWNER",
            format!("{} does not own account {}", actor.id, account.id),
        ))
    }
}

/// Whose pipeline a forecast covers: a supervisor sees everyone's (or the
/// person asked for), anyone else only their own.
pub fn forecast_owner(actor: &Actor, asked: &str) -> Result<Option<String>, OpportunityError> {
    match (asked.is_empty(), actor.supervisor()) {
        (true, true) => Ok(None),
        (true, false) => Ok(Some(actor.id.clone())),
        (false, _) if asked == actor.id || actor.supervisor() => Ok(Some(asked.to_owned())),
        (false, _) => Err(OpportunityError::Forbidden(
            "NOT_MANAGER",
            "only managers see another person's pipeline".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crm_types::Role;

    use super::*;

    fn actor(id: &str, roles: &[Role]) -> Actor {
        Actor::new(id, roles.to_vec())
    }

    fn team_of(manager: &str, others: &[&str]) -> Team {
        Team {
            account_manager_id: manager.into(),
            other_member_ids: others.iter().map(|s| (*s).to_owned()).collect(),
            ..Team::default()
        }
    }

    #[test]
    fn sales_see_the_opportunities_of_their_teams_and_supervisors_all() {
        let amy = Visibility::of(&actor("amy", &[Role::Sales]));
        assert!(amy.admits(&team_of("amy", &[])));
        assert!(amy.admits(&team_of("bob", &["amy"])));
        assert!(!amy.admits(&team_of("bob", &[])));
        assert_eq!(
            amy.team_member(),
            Some("amy"),
            "a list is narrowed the same way"
        );
        for role in [Role::Manager, Role::Admin, Role::Integration] {
            let boss = Visibility::of(&actor("boss", &[role]));
            assert!(boss.admits(&team_of("bob", &[])));
            assert_eq!(boss.team_member(), None);
        }
    }

    fn draft(owner: &str) -> AccountDraft {
        AccountDraft {
            name: "ACME".into(),
            owner_id: owner.into(),
            ..AccountDraft::default()
        }
    }

    #[test]
    fn sales_create_accounts_for_themselves_and_managers_for_anyone() {
        let amy = actor("amy", &[Role::Sales]);
        let own = new_account(draft(""), &amy, "t", "a1".into(), 1).unwrap();
        assert_eq!(
            (own.owner_id.as_str(), own.creator.as_str()),
            ("amy", "amy")
        );
        assert!(new_account(draft("amy"), &amy, "t", "a1".into(), 1).is_ok());
        assert!(matches!(
            new_account(draft("bob"), &amy, "t", "a1".into(), 1),
            Err(OpportunityError::Forbidden("NOT_MANAGER", _))
        ));
        let boss = actor("boss", &[Role::Manager]);
        let for_bob = new_account(draft("bob"), &boss, "t", "a1".into(), 1).unwrap();
        assert_eq!(for_bob.owner_id, "bob");
    }

    #[test]
    fn sales_create_opportunities_only_on_their_own_team() {
        let amy = actor("amy", &[Role::Sales]);
        let mine = new_opportunity(OpportunityDraft::default(), &amy, "t", "o1".into(), 1).unwrap();
        assert_eq!(
            (mine.team.account_manager_id.as_str(), mine.stage),
            ("amy", Stage::Validate)
        );
        let bobs = OpportunityDraft {
            team: team_of("bob", &[]),
            ..OpportunityDraft::default()
        };
        assert!(matches!(
            new_opportunity(bobs.clone(), &amy, "t", "o1".into(), 1),
            Err(OpportunityError::Forbidden("NOT_ON_TEAM", _))
        ));
        let with_amy = OpportunityDraft {
            team: team_of("bob", &["amy"]),
            ..OpportunityDraft::default()
        };
        assert!(new_opportunity(with_amy, &amy, "t", "o1".into(), 1).is_ok());
        let boss = actor("boss", &[Role::Manager]);
        assert!(new_opportunity(bobs, &boss, "t", "o1".into(), 1).is_ok());
    }

    #[test]
    fn only_the_owner_or_a_supervisor_changes_an_account() {
        let account = new_account(
            draft(""),
            &actor("amy", &[Role::Sales]),
            "t",
            "a1".into(),
            1,
        )
        .unwrap();
        assert!(check_account_owner(&account, &actor("amy", &[Role::Sales])).is_ok());
        assert!(check_account_owner(&account, &actor("boss", &[Role::Manager])).is_ok());
        assert!(matches!(
            check_account_owner(&account, &actor("bob", &[Role::Sales])),
            Err(OpportunityError::Forbidden("NOT_ACCOUNT_OWNER", _))
        ));
    }

    #[test]
    fn an_account_is_seen_by_its_owner_its_teams_and_supervisors() {
        let account = new_account(
            draft("amy"),
            &actor("amy", &[Role::Sales]),
            "t",
            "a1".into(),
            1,
        )
        .unwrap();
        let see = |who: &Actor, on_team| check_account_visible(&account, who, on_team).is_ok();
        assert!(see(&actor("amy", &[Role::Sales]), false), "the owner");
        assert!(see(&actor("sol", &[Role::Solution]), true), "a team member");
        assert!(see(&actor("boss", &[Role::Manager]), false), "a supervisor");
        for stranger in [Role::Sales, Role::Solution, Role::Delivery] {
            assert!(matches!(
                check_account_visible(&account, &actor("eve", &[stranger]), false),
                Err(OpportunityError::Forbidden("NOT_ON_TEAM", _))
            ));
        }
    }

    fn approval(kind: ApprovalKind, chain: &[Role]) -> Approval {
        Approval::new(
            crm_approvals::Request {
                id: "ap".into(),
                tenant: "t",
                kind,
                subject_id: "o1",
                requester: &actor("amy", &[Role::Sales]),
                chain,
                reason: "why",
            },
            1,
        )
    }

    #[test]
    fn an_approval_is_seen_with_its_subject_and_by_its_open_steps_deciders() {
        let bid = approval(ApprovalKind::BidApproval, &[Role::Finance, Role::Legal]);
        let see = |who: &Actor, subject| check_approval_visible(&bid, who, subject).is_ok();
        assert!(see(&actor("amy", &[Role::Sales]), true));
        assert!(!see(&actor("eve", &[Role::Sales]), false), "another team");
        assert!(
            see(&actor("fay", &[Role::Finance]), false),
            "decides step 1"
        );
        assert!(
            !see(&actor("lee", &[Role::Legal]), false),
            "step 2 is not open"
        );
        assert!(see(&actor("oa", &[Role::Integration]), false));
        let mut decided = bid.clone();
        decided.status = crm_approvals::Status::Rejected;
        assert_eq!(awaiting_role(&decided), None);
        let review = approval(ApprovalKind::DeliveryReview, &[Role::Delivery]);
        assert!(
            check_approval_visible(&review, &actor("dan", &[Role::Delivery]), false).is_err(),
            "a review awaits the team's delivery manager, not every delivery user"
        );
    }

    #[test]
    fn the_account_manager_or_a_manager_changes_the_team() {
        let before = team_of("amy", &[]);
        let with_sol = Team {
            solution_manager_id: "sol".into(),
            ..before.clone()
        };
        let sol_as_am = Team {
            account_manager_id: "sol".into(),
            ..with_sol.clone()
        };
        let amy = actor("amy", &[Role::Sales]);
        let sol = actor("sol", &[Role::Solution]);
        let boss = actor("boss", &[Role::Manager]);
        assert!(check_team_change(&before, &with_sol, &amy).is_ok());
        assert!(
            check_team_change(&with_sol, &with_sol, &sol).is_ok(),
            "no change"
        );
        assert!(matches!(
            check_team_change(&with_sol, &sol_as_am, &sol),
            Err(OpportunityError::Forbidden("NOT_ACCOUNT_MANAGER", _))
        ));
        assert!(matches!(
            check_team_change(&with_sol, &sol_as_am, &amy),
            Err(OpportunityError::Forbidden("NOT_MANAGER", _))
        ));
        assert!(check_team_change(&with_sol, &sol_as_am, &boss).is_ok());
    }

    #[test]
    fn sales_forecast_only_their_own_pipeline() {
        let amy = actor("amy", &[Role::Sales]);
        assert_eq!(forecast_owner(&amy, "").unwrap().as_deref(), Some("amy"));
        assert_eq!(forecast_owner(&amy, "amy").unwrap().as_deref(), Some("amy"));
        assert!(matches!(
            forecast_owner(&amy, "bob"),
            Err(OpportunityError::Forbidden("NOT_MANAGER", _))
        ));
        let boss = actor("boss", &[Role::Manager]);
        assert_eq!(forecast_owner(&boss, "").unwrap(), None);
        assert_eq!(
            forecast_owner(&boss, "bob").unwrap().as_deref(),
            Some("bob")
        );
    }
}
