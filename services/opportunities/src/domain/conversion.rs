//! A lead's conversion (DOMAIN 1 -> 2): the account found by the company's
//! name or made from the lead, its contact, and one opportunity per lead.

use crm_types::{Actor, Role};

use super::{Account, Contact, LeadSnapshot, Opportunity, OpportunityError, Stage, Team};

/// The opportunity a lead already has goes back only to whom may see it:
/// the user the leads service converts for (`actor`, named in its service
/// token), or the leads service converting by itself (role `internal`,
/// e.g. retrying an automatic conversion).
pub fn check_existing_conversion(
    existing: &Opportunity,
    actor: &Actor,
) -> Result<(), OpportunityError> {
    if actor.roles == [Role::Internal] {
        return Ok(());
    }
    existing.check_access(actor)
}

/// Who owns what a conversion makes: the lead's owner, else the caller.
fn owner(lead: &LeadSnapshot, actor: &Actor) -> String {
    if lead.owner_id.is_empty() {
        actor.id.clone()
    } else {
        lead.owner_id.clone()
    }
}

/// A new account for the lead's company.
pub fn account_from_lead(
    lead: &LeadSnapshot,
    actor: &Actor,
    tenant: &str,
    id: String,
    now: i64,
) -> Account {
    Account {
        id,
        tenant: tenant.to_owned(),
        version: 1,
        name: lead.company.trim().to_owned(),
        registration_number: String::new(),
        industry: lead.industry.clone(),
        region: lead.region.clone(),
        owner_id: owner(lead, actor),
        pending_approval_id: None,
        create_time: now,
        update_time: now,
        creator: actor.id.clone(),
        updater: actor.id.clone(),
    }
}

/// A new contact for the lead's contact person, if the lead names one.
pub fn contact_from_lead(
    lead: &LeadSnapshot,
    account_id: &str,
    actor: &Actor,
    id: String,
    now: i64,
) -> Option<Contact> {
    let name = lead.contact_name.trim();
    (!name.is_empty()).then(|| Contact {
        id,
        account_id: account_id.to_owned(),
        name: name.to_owned(),
        title: String::new(),
        phone: lead.phone.clone(),
        email: lead.email.clone(),
        create_time: now,
        creator: actor.id.clone(),
    })
}

/// The lead's opportunity on `account`, named after the account unless the
/// lead names it.
pub fn opportunity_from_lead(
    lead: &LeadSnapshot,
    account: &Account,
    actor: &Actor,
    id: String,
    now: i64,
) -> Opportunity {
    let name = match lead.opportunity_name.trim() {
        "" => account.name.clone(),
        named => named.to_owned(),
    };
    Opportunity {
        id,
        tenant: account.tenant.clone(),
        version: 1,
        account_id: account.id.clone(),
        name,
        amount: lead.amount.clone(),
        expected_close_date: None,
        grade: None,
        team: Team {
            account_manager_id: owner(lead, actor),
            ..Team::default()
        },
        competitors: vec![],
        stage: Stage::Validate,
        win_loss_reason: String::new(),
        qualification: None,
        solution_summary: String::new(),
        workload_person_days: None,
        quote: None,
        delivery_review: None,
        lead_id: Some(lead.lead_id.clone()),
        create_time: now,
        update_time: now,
        creator: actor.id.clone(),
        updater: actor.id.clone(),
    }
}

#[cfg(test)]
mod tests {
    use crm_types::Role;

    use super::*;

    #[test]
    fn a_conversion_gives_the_leads_owner_what_it_makes() {
        let integration = Actor::new("leads-service", vec![Role::Integration]);
        let lead = LeadSnapshot {
            lead_id: "l1".into(),
            company: " ACME ".into(),
            contact_name: " ".into(),
            owner_id: "amy".into(),
            ..LeadSnapshot::default()
        };
        let account = account_from_lead(&lead, &integration, "t", "a1".into(), 1);
        assert_eq!(
            (account.name.as_str(), account.owner_id.as_str()),
            ("ACME", "amy")
        );
        assert_eq!(
            contact_from_lead(&lead, "a1", &integration, "c1".into(), 1),
            None
        );
        let opp = opportunity_from_lead(&lead, &account, &integration, "o1".into(), 1);
        assert_eq!(
            (
                opp.name.as_str(),
                opp.team.account_manager_id.as_str(),
                opp.lead_id.as_deref()
            ),
            ("ACME", "amy", Some("l1"))
        );
        let unowned = LeadSnapshot {
            owner_id: String::new(),
            opportunity_name: "MES".into(),
            ..lead
        };
        let opp = opportunity_from_lead(&unowned, &account, &integration, "o2".into(), 1);
        assert_eq!(
            (opp.name.as_str(), opp.team.account_manager_id.as_str()),
            ("MES", "leads-service")
        );
    }
}
