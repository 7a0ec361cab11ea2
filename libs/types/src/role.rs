//! The roles people and systems hold in a tenant.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The roles of the suite's users, as `crm.common.v1.Role` declares them. A token
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
    /// The suite's own services calling each other (the leads service's
    /// conversion): only in service tokens (audience `auth.service_audience`),
    /// never in a user's, and allowed only on internal methods.
    Internal,
}

impl Role {
    /// Every role, in the order of the contract's enum.
    pub const ALL: [Role; 10] = [
        Role::Sales,
        Role::Solution,
        Role::Delivery,
        Role::Service,
        Role::Finance,
        Role::Legal,
        Role::Manager,
        Role::Admin,
        Role::Integration,
        Role::Internal,
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
            Role::Internal => "internal",
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
    "unknown role {0:?}: expected one of sales, solution, delivery, service, finance, legal, manager, admin, integration, internal"
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
