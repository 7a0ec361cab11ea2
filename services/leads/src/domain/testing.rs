//! Values the domain's unit tests build leads and actors from.

use super::{Actor, Lead, LeadConfig, Profile, Role, new_lead};

pub fn sales(id: &str) -> Actor {
    Actor::new(id, vec![Role::Sales])
}

pub fn manager() -> Actor {
    Actor::new("boss", vec![Role::Manager])
}

pub fn profile() -> Profile {
    Profile {
        company: "ACME".into(),
        source_channel: "referral".into(),
        ..Profile::default()
    }
}

/// A new lead `id` at time 0, owned by the sales user `owner` or in the pool.
pub fn lead(id: &str, owner: Option<&str>) -> Lead {
    let actor = owner.map(sales).unwrap_or_else(manager);
    let created = new_lead(
        id.into(),
        "t",
        profile(),
        None,
        None,
        &actor,
        &LeadConfig::default(),
        0,
    );
    match created {
        Ok(lead) => lead,
        Err(err) => panic!("a test lead: {err}"),
    }
}
