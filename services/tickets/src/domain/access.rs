//! Who sees and who works a ticket (object checks on every id a caller
//! sends).

use crm_types::{Actor, Role};

use super::error::{TicketError, resource};
use super::model::{Status, Ticket};

/// Which tickets a list shows a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    /// Managers, admins, integrations: the whole tenant.
    Tenant,
    /// An engineer: their tickets and the unassigned queue.
    Engineer(String),
    /// Sales: the tickets of the accounts they manage.
    AccountManager(String),
}

impl Visibility {
    pub fn of(actor: &Actor) -> Visibility {
        if actor.has(Role::Manager) || actor.has(Role::Admin) || actor.has(Role::Integration) {
            Visibility::Tenant
        } else if actor.has(Role::Service) {
            Visibility::Engineer(actor.id.clone())
        } else {
            Visibility::AccountManager(actor.id.clone())
        }
    }
}

pub fn can_see(t: &Ticket, actor: &Actor) -> bool {
    if actor.has(Role::Manager) || actor.has(Role::Admin) || actor.has(Role::Integration) {
        return true;
    }
    if actor.has(Role::Service)
        && (t.assignee_id.as_deref() == Some(actor.id.as_str()) || t.status == Status::New)
    {
        return true;
    }
    actor.has(Role::Sales) && !t.account_manager_id.is_empty() && t.account_manager_id == actor.id
}

/// NOT_FOUND unless the caller sees the ticket, as for another tenant's.
pub fn check_visible(t: &Ticket, actor: &Actor) -> Result<(), TicketError> {
    if can_see(t, actor) {
        Ok(())
    } else {
        Err(TicketError::not_found(resource::TICKET, &t.id))
    }
}

/// Visible, and the caller may work it: its assignee or a manager (an
/// integration where the method lets it act for the customer).
pub fn can_work(t: &Ticket, actor: &Actor, integration: bool) -> Result<(), TicketError> {
    check_visible(t, actor)?;
    let assignee = t.assignee_id.as_deref() == Some(actor.id.as_str());
    if assignee || actor.has(Role::Manager) || (integration && actor.has(Role::Integration)) {
        Ok(())
    } else {
        Err(TicketError::forbidden(
            "NOT_ASSIGNEE",
            "only the ticket's assignee or a manager may do this",
        ))
    }
}
