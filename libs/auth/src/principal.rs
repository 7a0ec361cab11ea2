use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The roles of `DOMAIN.md`, as `crm.common.v1.Role` declares them. A token
/// carries them in its `roles` claim in lower case ("sales", "manager").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Account manager: owns leads, accounts and opportunities.
    Sales,
    /// Solution manager: designs the solution.
    Solution,
    /// Delivery manager: reviews before the quote, delivers after signing.
    Delivery,
    /// Service manager or engineer: works tickets.
    Service,
    /// Reviewer in approval chains.
    Finance,
    /// Reviewer in approval chains.
    Legal,
    /// Sales or service management: sees the team, reassigns, approves.
    Manager,
    /// Tenant administrator: configuration.
    Admin,
    /// Service accounts of OA, ERP, e-signature and marketing systems.
    Integration,
}

impl Role {
    /// Every role, in the order of the contract's enum.
    pub const ALL: [Role; 9] = [
        Role::Sales,
        Role::Solution,
        Role::Delivery,
        Role::Service,
        Role::Finance,
        Role::Legal,
        Role::Manager,
        Role::Admin,
        Role::Integration,
    ];

    /// The name used in tokens and in the method policy.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Sales => "sales",
            Role::Solution => "solution",
            Role::Delivery => "delivery",
            Role::Service => "service",
            Role::Finance => "finance",
            Role::Legal => "legal",
            Role::Manager => "manager",
            Role::Admin => "admin",
            Role::Integration => "integration",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of [`Role`]'s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown role {0:?}: expected one of sales, solution, delivery, service, finance, legal, manager, admin, integration"
)]
pub struct ParseRoleError(pub String);

impl FromStr for Role {
    type Err = ParseRoleError;

    /// Case-insensitive, so that `crm token --roles Sales` works; tokens and
    /// the policy use lower case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| ParseRoleError(s.to_owned()))
    }
}

/// The verified caller of a request: who, for which tenant, with which roles.
/// The auth layer puts it in the request extensions; read it with
/// [`crate::principal`].
#[derive(Debug, Clone)]
pub struct Principal {
    /// The token's `sub`: a user or a service account.
    pub subject: String,
    /// The tenant every object-level check is made against.
    pub tenant: String,
    /// Known roles from the token; unknown names were dropped.
    pub roles: Vec<Role>,
}

impl Principal {
    /// Whether the caller holds `role`.
    pub fn has_role(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether the caller holds at least one of `roles`.
    pub fn has_any(&self, roles: &[Role]) -> bool {
        roles.iter().any(|r| self.has_role(*r))
    }
}

/// The caller's raw bearer token, kept in the request extensions so that a
/// service can forward it on calls it makes on the caller's behalf.
#[derive(Clone)]
pub struct BearerToken(pub String);

impl BearerToken {
    /// The token itself.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The `authorization` header value that carries it: `Bearer <token>`.
    pub fn header_value(&self) -> String {
        format!("Bearer {}", self.0)
    }
}

// A token is a credential: keep it out of logs and panics.
impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
        }
        assert_eq!("Manager".parse::<Role>(), Ok(Role::Manager));
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn has_any_needs_one_shared_role() {
        let p = Principal {
            subject: "u1".into(),
            tenant: "t1".into(),
            roles: vec![Role::Sales],
        };
        assert!(p.has_role(Role::Sales));
        assert!(p.has_any(&[Role::Manager, Role::Sales]));
        assert!(!p.has_any(&[Role::Manager, Role::Admin]));
        assert!(!p.has_any(&[]));
    }

    #[test]
    fn bearer_token_debug_hides_the_token() {
        let t = BearerToken("secret.token.value".into());
        assert!(!format!("{t:?}").contains("secret"));
    }
}
