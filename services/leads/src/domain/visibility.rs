//! Who sees which leads (DOMAIN 1, OWASP API1): sales users see their own
//! leads and the public pool; managers, admins and integrations see every
//! lead of the tenant. Get, List, the due list and every change decide it
//! here.

use super::{Actor, Lead, LeadError, LeadStatus, Role, Violation};

/// What a caller may see of a tenant's leads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    /// Every lead of the tenant.
    All,
    /// The leads this user owns and the pool's.
    OwnAndPool(String),
}

/// The one decision of what `actor` may see.
pub fn visibility(actor: &Actor) -> Visibility {
    if actor.supervisor() {
        Visibility::All
    } else {
        Visibility::OwnAndPool(actor.id.clone())
    }
}

impl Visibility {
    pub fn allows(&self, lead: &Lead) -> bool {
        match self {
            Visibility::All => true,
            Visibility::OwnAndPool(me) => lead.owner_id.as_ref().is_none_or(|owner| owner == me),
        }
    }

    /// Refuses a lead the caller may not see.
    pub fn check(&self, lead: &Lead) -> Result<(), LeadError> {
        if self.allows(lead) {
            Ok(())
        } else {
            Err(LeadError::NotOwner(lead.id.clone()))
        }
    }

    /// Whether the caller may look at `owner`'s leads.
    pub fn allows_owner(&self, owner: &str) -> bool {
        match self {
            Visibility::All => true,
            Visibility::OwnAndPool(me) => owner == me,
        }
    }

    /// The user the view is limited to; `None` when it is not.
    pub fn restricted_to(&self) -> Option<&str> {
        match self {
            Visibility::All => None,
            Visibility::OwnAndPool(me) => Some(me),
        }
    }
}

/// Refuses a lead `actor` may not see.
pub fn check_visible(lead: &Lead, actor: &Actor) -> Result<(), LeadError> {
    visibility(actor).check(lead)
}

/// Which part of the leads a list asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LeadScope {
    /// Every lead the caller may see.
    #[default]
    All,
    /// The caller's own leads.
    Mine,
    /// Leads without an owner.
    Pool,
}

/// Which leads a list returns: always within the caller's visibility.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListFilter {
    pub visibility: Visibility,
    /// Only this owner's leads.
    pub owner: Option<String>,
    /// Only pool leads.
    pub pool: bool,
    pub status: Option<LeadStatus>,
    pub channel: Option<String>,
}

impl ListFilter {
    /// The filter of `actor`'s list; naming another user's leads is refused
    /// unless the actor sees every lead.
    pub fn new(
        actor: &Actor,
        scope: LeadScope,
        owner: Option<String>,
        status: Option<LeadStatus>,
        channel: Option<String>,
    ) -> Result<ListFilter, Violation> {
        let visibility = visibility(actor);
        if let Some(owner) = &owner
            && !visibility.allows_owner(owner)
        {
            return Err(Violation::new(
                "owner_id",
                "only managers may list another user's leads",
            ));
        }
        let owner = match scope {
            LeadScope::Mine => Some(actor.id.clone()),
            LeadScope::All | LeadScope::Pool => owner,
        };
        Ok(ListFilter {
            visibility,
            owner,
            pool: scope == LeadScope::Pool,
            status,
            channel,
        })
    }

    /// Whether `lead` belongs in the list: what the store's query selects.
    pub fn matches(&self, lead: &Lead) -> bool {
        self.visibility.allows(lead)
            && self
                .owner
                .as_ref()
                .is_none_or(|o| lead.owner_id.as_ref() == Some(o))
            && (!self.pool || lead.owner_id.is_none())
            && self.status.is_none_or(|s| lead.status == s)
            && self
                .channel
                .as_ref()
                .is_none_or(|c| &lead.profile.source_channel == c)
    }
}

/// Whose due follow-ups `actor` lists: their own by default; another
/// user's only as that user's manager.
pub fn due_list_owner(actor: &Actor, requested: &str) -> Result<String, LeadError> {
    if requested.is_empty() || requested == actor.id {
        Ok(actor.id.clone())
    } else if actor.has(Role::Manager) {
        Ok(requested.to_owned())
    } else {
        Err(LeadError::NotManager)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::domain::testing::{lead, manager, sales};

    #[test]
    fn sales_see_their_own_and_the_pool_only() {
        let amys = lead("a", Some("amy"));
        assert!(check_visible(&amys, &sales("amy")).is_ok());
        assert!(matches!(
            check_visible(&amys, &sales("bob")),
            Err(LeadError::NotOwner(_))
        ));
        assert!(check_visible(&amys, &manager()).is_ok());
        let integration = Actor::new("erp", vec![Role::Integration]);
        assert!(check_visible(&amys, &integration).is_ok());
        assert!(check_visible(&lead("p", None), &sales("bob")).is_ok());
    }

    #[test]
    fn a_list_shows_what_get_shows() {
        let leads = [
            lead("a", Some("amy")),
            lead("b", Some("bob")),
            lead("p", None),
        ];
        for actor in [sales("amy"), sales("bob"), manager()] {
            let filter = ListFilter::new(&actor, LeadScope::All, None, None, None).unwrap();
            for l in &leads {
                assert_eq!(
                    filter.matches(l),
                    check_visible(l, &actor).is_ok(),
                    "{} listing {}",
                    actor.id,
                    l.id
                );
            }
        }
    }

    #[test]
    fn only_supervisors_list_another_owners_leads() {
        let refused = ListFilter::new(
            &sales("amy"),
            LeadScope::All,
            Some("bob".into()),
            None,
            None,
        );
        assert_eq!(refused.unwrap_err().field, "owner_id");
        let own = ListFilter::new(
            &sales("amy"),
            LeadScope::All,
            Some("amy".into()),
            None,
            None,
        );
        assert!(own.is_ok());
        let bobs =
            ListFilter::new(&manager(), LeadScope::All, Some("bob".into()), None, None).unwrap();
        assert!(bobs.matches(&lead("b", Some("bob"))));
        assert!(!bobs.matches(&lead("a", Some("amy"))));
        let mine = ListFilter::new(&sales("amy"), LeadScope::Mine, None, None, None).unwrap();
        assert!(!mine.matches(&lead("p", None)));
        let pool = ListFilter::new(&sales("amy"), LeadScope::Pool, None, None, None).unwrap();
        assert!(pool.matches(&lead("p", None)) && !pool.matches(&lead("a", Some("amy"))));
    }

    #[test]
    fn only_managers_list_another_users_due_follow_ups() {
        assert_eq!(due_list_owner(&sales("amy"), "").unwrap(), "amy");
        assert_eq!(due_list_owner(&sales("amy"), "amy").unwrap(), "amy");
        assert!(matches!(
            due_list_owner(&sales("amy"), "bob"),
            Err(LeadError::NotManager)
        ));
        assert_eq!(due_list_owner(&manager(), "bob").unwrap(), "bob");
    }
}
