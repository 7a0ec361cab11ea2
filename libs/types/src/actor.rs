//! Who acts: the caller of a request or the service itself, with the roles
//! the domain's rules look at.

use crate::Role;

/// The person or system a change is made by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// A user's subject, a service account, or `system:<worker>` for work a
    /// service does by itself.
    pub id: String,
    pub roles: Vec<Role>,
}

impl Actor {
    pub fn new(id: impl Into<String>, roles: Vec<Role>) -> Self {
        Actor {
            id: id.into(),
            roles,
        }
    }

    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Managers, admins and integrations act on any record of the tenant;
    /// everyone else only on records they own or are on the team of.
    pub fn supervisor(&self) -> bool {
        self.has(Role::Manager) || self.has(Role::Admin) || self.has(Role::Integration)
    }
}

/// One invalid field of a request, as the domain finds it: the field's path
/// (`lead.email`) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub description: String,
}

impl Violation {
    pub fn new(field: impl Into<String>, description: impl Into<String>) -> Self {
        Violation {
            field: field.into(),
            description: description.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_managers_admins_and_integrations_supervise() {
        for role in Role::ALL {
            let expected = matches!(role, Role::Manager | Role::Admin | Role::Integration);
            assert_eq!(Actor::new("x", vec![role]).supervisor(), expected, "{role}");
        }
        assert!(!Actor::new("x", vec![]).supervisor());
    }
}
