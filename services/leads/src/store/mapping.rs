//! Rows to domain values and back.

use sea_orm::{ActiveValue::Set, DbErr};

use super::entities::{interaction, lead};
use crate::domain::{
    CompanySize, Interaction, InteractionKind, Lead, LeadError, LeadStatus, Profile,
};

fn corrupt(what: &str, id: &str) -> LeadError {
    LeadError::store(DbErr::Custom(format!(
        "stored {what} of {id} cannot be read"
    )))
}

pub fn lead_from_row(row: lead::Model) -> Result<Lead, LeadError> {
    let budget = match &row.budget {
        Some(json) => Some(serde_json::from_str(json).map_err(|_| corrupt("budget", &row.id))?),
        None => None,
    };
    let score =
        serde_json::from_str(&row.score_breakdown).map_err(|_| corrupt("score", &row.id))?;
    let status = LeadStatus::parse(&row.status).ok_or_else(|| corrupt("status", &row.id))?;
    let company_size =
        CompanySize::from_code(row.company_size).ok_or_else(|| corrupt("company size", &row.id))?;
    Ok(Lead {
        id: row.id,
        tenant: row.tenant_id,
        version: row.version,
        profile: Profile {
            company: row.company,
            contact_name: row.contact_name,
            phone: row.phone,
            email: row.email,
            industry: row.industry,
            region: row.region,
            company_size,
            budget,
            source_channel: row.source_channel,
            notes: row.notes,
        },
        owner_id: row.owner_id,
        status,
        score,
        last_follow_up_time: row.last_follow_up_time,
        next_follow_up_time: row.next_follow_up_time,
        follow_up_deadline: row.follow_up_deadline,
        disqualify_reason: row.disqualify_reason,
        opportunity_id: row.opportunity_id,
        account_id: row.account_id,
        create_time: row.create_time,
        update_time: row.update_time,
        creator: row.creator,
        updater: row.updater,
    })
}

pub fn lead_to_row(lead: &Lead) -> Result<lead::ActiveModel, LeadError> {
    let keys = lead.profile.duplicate_keys();
    let budget = match &lead.profile.budget {
        Some(b) => Some(serde_json::to_string(b).map_err(LeadError::store)?),
        None => None,
    };
    let p = &lead.profile;
    Ok(lead::ActiveModel {
        id: Set(lead.id.clone()),
        tenant_id: Set(lead.tenant.clone()),
        version: Set(lead.version),
        company: Set(p.company.clone()),
        contact_name: Set(p.contact_name.clone()),
        phone: Set(p.phone.clone()),
        phone_key: Set(keys.phone),
        email: Set(p.email.clone()),
        email_key: Set(keys.email),
        name_key: Set(keys.company_contact),
        industry: Set(p.industry.clone()),
        region: Set(p.region.clone()),
        company_size: Set(p.company_size.code()),
        budget: Set(budget),
        source_channel: Set(p.source_channel.clone()),
        owner_id: Set(lead.owner_id.clone()),
        status: Set(lead.status.as_str().to_owned()),
        score: Set(lead.score.total),
        score_breakdown: Set(serde_json::to_string(&lead.score).map_err(LeadError::store)?),
        last_follow_up_time: Set(lead.last_follow_up_time),
        next_follow_up_time: Set(lead.next_follow_up_time),
        follow_up_deadline: Set(lead.follow_up_deadline),
        attention_time: Set(lead.attention_time()),
        notes: Set(p.notes.clone()),
        disqualify_reason: Set(lead.disqualify_reason.clone()),
        opportunity_id: Set(lead.opportunity_id.clone()),
        account_id: Set(lead.account_id.clone()),
        create_time: Set(lead.create_time),
        update_time: Set(lead.update_time),
        creator: Set(lead.creator.clone()),
        updater: Set(lead.updater.clone()),
    })
}

pub fn interaction_from_row(row: interaction::Model) -> Result<Interaction, LeadError> {
    let kind =
        InteractionKind::parse(&row.kind).ok_or_else(|| corrupt("interaction kind", &row.id))?;
    Ok(Interaction {
        id: row.id,
        lead_id: row.lead_id,
        kind,
        occur_time: row.occur_time,
        notes: row.notes,
        creator: row.creator,
        create_time: row.create_time,
    })
}

pub fn interaction_to_row(tenant: &str, i: &Interaction) -> interaction::ActiveModel {
    interaction::ActiveModel {
        id: Set(i.id.clone()),
        tenant_id: Set(tenant.to_owned()),
        lead_id: Set(i.lead_id.clone()),
        kind: Set(i.kind.as_str().to_owned()),
        occur_time: Set(i.occur_time),
        notes: Set(i.notes.clone()),
        creator: Set(i.creator.clone()),
        create_time: Set(i.create_time),
    }
}
