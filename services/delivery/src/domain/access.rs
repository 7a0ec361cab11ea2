//! Who sees and who changes a project (object-level checks, on every id
//! a caller sends). Seeing: the project manager and members, the deal
//! team's account manager, the service manager after go-live; managers,
//! admins and integrations the whole tenant. Anyone else gets NOT_FOUND,
//! exactly as for another tenant's project.

use crm_types::{Actor, Role};

use super::error::{DeliveryError, resource};
use super::model::Project;

/// Whether `actor` may see `p`.
pub fn can_see(p: &Project, actor: &Actor) -> bool {
    actor.supervisor() || p.people().contains(&actor.id)
}

/// NOT_FOUND unless `actor` may see `p`.
pub fn check_visible(p: &Project, actor: &Actor) -> Result<(), DeliveryError> {
    if can_see(p, actor) {
        Ok(())
    } else {
        Err(DeliveryError::not_found(resource::PROJECT, &p.id))
    }
}

/// The project manager, or a manager of the tenant.
pub fn is_manager_of(p: &Project, actor: &Actor) -> bool {
    actor.has(Role::Manager) || (actor.id == p.project_manager_id && actor.has(Role::Delivery))
}

/// Whether `actor` works on `p`: its project manager or a delivery
/// member; managers too.
pub fn is_member(p: &Project, actor: &Actor) -> bool {
    is_manager_of(p, actor) || (actor.has(Role::Delivery) && p.member_ids.contains(&actor.id))
}

/// NOT_FOUND when invisible, PERMISSION_DENIED when visible but not on
/// the project's team.
pub fn check_member(p: &Project, actor: &Actor) -> Result<(), DeliveryError> {
    check_visible(p, actor)?;
    if is_member(p, actor) {
        Ok(())
    } else {
        Err(DeliveryError::forbidden(
            "NOT_PROJECT_MEMBER",
            "only the project's manager and members change it",
        ))
    }
}

/// NOT_FOUND when invisible, PERMISSION_DENIED unless the project manager
/// (or a manager).
pub fn check_manager(p: &Project, actor: &Actor) -> Result<(), DeliveryError> {
    check_visible(p, actor)?;
    if is_manager_of(p, actor) {
        Ok(())
    } else {
        Err(DeliveryError::forbidden(
            "NOT_PROJECT_MANAGER",
            "only the project manager may do this",
        ))
    }
}

/// Acceptance is recorded by the project manager, or by an integration
/// for an e-signed acceptance.
pub fn check_acceptor(p: &Project, actor: &Actor) -> Result<(), DeliveryError> {
    check_visible(p, actor)?;
    if actor.has(Role::Integration)
        || (actor.id == p.project_manager_id && actor.has(Role::Delivery))
    {
        Ok(())
    } else {
        Err(DeliveryError::forbidden(
            "NOT_PROJECT_MANAGER",
            "only the project manager (or an integration, for an e-signed acceptance) records acceptance",
        ))
    }
}

/// How a list is narrowed to what the caller sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    /// Every record of the tenant.
    Tenant,
    /// The projects this person is on (and, for alerts, their own).
    Person(String),
}

pub fn visibility(actor: &Actor) -> Visibility {
    if actor.supervisor() {
        Visibility::Tenant
    } else {
        Visibility::Person(actor.id.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::project;

    fn actor(id: &str, roles: &[Role]) -> Actor {
        Actor::new(id, roles.to_vec())
    }

    #[test]
    fn the_team_sees_sales_their_accounts_managers_the_tenant_others_nothing() {
        let p = project();
        assert!(can_see(&p, &actor("dm", &[Role::Delivery])));
        assert!(can_see(&p, &actor("am", &[Role::Sales])));
        assert!(can_see(&p, &actor("boss", &[Role::Manager])));
        assert!(can_see(&p, &actor("erp", &[Role::Integration])));
        assert!(!can_see(&p, &actor("other-dm", &[Role::Delivery])));
        assert!(!can_see(&p, &actor("other-sales", &[Role::Sales])));
        assert!(matches!(
            check_visible(&p, &actor("other-sales", &[Role::Sales])),
            Err(DeliveryError::NotFound { .. })
        ));
    }

    #[test]
    fn the_pm_and_members_change_it_sales_only_read() {
        let mut p = project();
        p.member_ids.push("dev".into());
        assert!(check_member(&p, &actor("dev", &[Role::Delivery])).is_ok());
        assert!(check_member(&p, &actor("dm", &[Role::Delivery])).is_ok());
        assert!(matches!(
            check_member(&p, &actor("am", &[Role::Sales])),
            Err(DeliveryError::Forbidden("NOT_PROJECT_MEMBER", _))
        ));
        assert!(matches!(
            check_manager(&p, &actor("dev", &[Role::Delivery])),
            Err(DeliveryError::Forbidden("NOT_PROJECT_MANAGER", _))
        ));
        assert!(check_acceptor(&p, &actor("esign", &[Role::Integration])).is_ok());
        assert!(check_acceptor(&p, &actor("dev", &[Role::Delivery])).is_err());
    }
}
