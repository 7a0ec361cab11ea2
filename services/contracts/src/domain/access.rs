//! Who sees a contract (checked on every id a caller sends): its owner and
//! its team; managers, admins and integrations see the tenant's; approvers
//! (finance, legal, delivery...) see what awaits a role they hold and what
//! they decided. Anyone else gets NOT_FOUND, as for another tenant's.

use crm_types::{Actor, Role};

use super::error::{ContractError, resource};
use super::model::Contract;

pub fn can_see(c: &Contract, actor: &Actor) -> bool {
    if actor.supervisor() || c.members().contains(&actor.id.as_str()) {
        return true;
    }
    let awaits_me = c.pending_step().is_some_and(|(role, info)| {
        actor.has(role) && (info.assignee.is_empty() || info.assignee == actor.id)
    });
    awaits_me || c.approval.as_ref().is_some_and(|a| a.decided_by(&actor.id))
}

/// Whether `actor` may try a decision on `c`: whoever sees it, and the
/// holders of a role its chain asks (so a finance user naming the legal
/// step learns PERMISSION_DENIED, not NOT_FOUND).
pub fn can_decide(c: &Contract, actor: &Actor) -> bool {
    can_see(c, actor)
        || c.approval
            .as_ref()
            .is_some_and(|a| a.steps.iter().any(|s| actor.has(s.role)))
}

/// The contract, if `actor` may see it; NOT_FOUND otherwise.
pub fn check_visible(c: &Contract, actor: &Actor) -> Result<(), ContractError> {
    if can_see(c, actor) {
        Ok(())
    } else {
        Err(ContractError::not_found(resource::CONTRACT, &c.id))
    }
}

/// Which contracts a list shows a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    /// Every contract of the tenant.
    Tenant,
    /// Those the person owns or is on the team of.
    Member(String),
}

impl Visibility {
    pub fn of(actor: &Actor) -> Visibility {
        if actor.supervisor() {
            Visibility::Tenant
        } else {
            Visibility::Member(actor.id.clone())
        }
    }
}

/// Whose inbox: the roles whose pending steps the caller decides, or
/// every pending step (an integration: the OA system).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbox {
    All,
    Roles { person: String, roles: Vec<Role> },
}

impl Inbox {
    pub fn of(actor: &Actor) -> Inbox {
        if actor.has(Role::Integration) {
            Inbox::All
        } else {
            Inbox::Roles {
                person: actor.id.clone(),
                roles: actor
                    .roles
                    .iter()
                    .copied()
                    .filter(|r| super::config::DECIDING_ROLES.contains(r))
                    .collect(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::domain::testing::*;

    #[test]
    fn owners_team_and_supervisors_see_a_contract_others_do_not() {
        let c = ready();
        assert!(can_see(&c, &sales()));
        assert!(can_see(&c, &Actor::new("dora", vec![Role::Delivery])));
        assert!(can_see(&c, &manager()));
        assert!(!can_see(&c, &other_sales()));
        assert!(!can_see(&c, &finance()), "nothing awaits finance yet");
    }

    #[test]
    fn approvers_see_what_awaits_their_role_and_what_they_decided() {
        let config = crate::domain::ContractsConfig::default();
        let mut c = ready();
        crate::domain::submit(&mut c, &sales(), &config, "a1".into(), 0).unwrap();
        assert!(!can_see(&c, &finance()));
        crate::domain::decide(
            &mut c,
            &manager(),
            crate::domain::StepDecision {
                number: 1,
                approval_id: "",
                decision: crm_approvals::Decision::Approve,
                comment: "",
                on_behalf_of: "",
            },
            &config,
            1,
        )
        .unwrap();
        assert!(can_see(&c, &finance()));
        assert!(!can_see(&c, &legal()));
        assert!(matches!(
            check_visible(&c, &legal()),
            Err(ContractError::NotFound { .. })
        ));
    }
}
