use std::fmt;

pub use crm_types::{ParseRoleError, Role};

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

/// The user a service token acts for (its `act` claim, RFC 8693 §4.1):
/// the leads service converting a lead for the user who asked. Only
/// service tokens carry it; the auth layer puts it in the request
/// extensions beside the service's [`Principal`]; read it with
/// [`crate::acting_for`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Acting {
    /// The user's id (`act.sub`).
    pub subject: String,
    /// The user's roles (`act.roles`); never `internal`.
    pub roles: Vec<Role>,
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
