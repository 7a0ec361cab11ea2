//! Who sees what, and who may create what (DOMAIN 2): supervisors (managers,
//! admins, integrations) act on every record of the tenant; sales people on
//! the opportunities whose team they are on and the accounts they own.

use crm_types::Actor;

use super::{Account, AccountDraft, Opportunity, OpportunityDraft, OpportunityError, Stage, Team};

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
        return Err(OpportunityError::Forbidden(
            "NOT_ON_TEAM",
            "sales create opportunities they are on the team of".into(),
        ));
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
