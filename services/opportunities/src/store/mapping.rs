//! Rows to domain values and back.

use crm_types::{Date, Money};
use sea_orm::{ActiveValue::Set, DbErr};

use super::entities::{
    account, activity, approval, contact, member, opportunity, team_member, violation, work_hours,
};
use crate::domain::{
    Account, Activity, ActivityKind, Approval, ApprovalDetail, ApprovalKind, ApprovalStatus,
    Contact, DecisionRole, Grade, Member, Opportunity, OpportunityError, ReviewState, Stage,
    StageViolation, Team, WorkHours, awaiting_role, name_key,
};

fn corrupt(what: &str, id: &str) -> OpportunityError {
    OpportunityError::Store(Box::new(DbErr::Custom(format!(
        "stored {what} of {id} cannot be read"
    ))))
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, OpportunityError> {
    serde_json::to_string(value).map_err(|e| OpportunityError::Store(Box::new(e)))
}

fn parse<T: serde::de::DeserializeOwned>(
    text: &str,
    what: &str,
    id: &str,
) -> Result<T, OpportunityError> {
    serde_json::from_str(text).map_err(|_| corrupt(what, id))
}

pub fn account_from_row(r: account::Model) -> Account {
    Account {
        id: r.id,
        tenant: r.tenant_id,
        version: r.version,
        name: r.name,
        registration_number: r.registration_number,
        industry: r.industry,
        region: r.region,
        owner_id: r.owner_id,
        pending_approval_id: r.pending_approval_id,
        create_time: r.create_time,
        update_time: r.update_time,
        creator: r.creator,
        updater: r.updater,
    }
}

pub fn account_to_row(a: &Account) -> account::ActiveModel {
    account::ActiveModel {
        id: Set(a.id.clone()),
        tenant_id: Set(a.tenant.clone()),
        version: Set(a.version),
        name: Set(a.name.clone()),
        name_key: Set(name_key(&a.name)),
        registration_number: Set(a.registration_number.clone()),
        industry: Set(a.industry.clone()),
        region: Set(a.region.clone()),
        owner_id: Set(a.owner_id.clone()),
        pending_approval_id: Set(a.pending_approval_id.clone()),
        create_time: Set(a.create_time),
        update_time: Set(a.update_time),
        creator: Set(a.creator.clone()),
        updater: Set(a.updater.clone()),
    }
}

pub fn contact_from_row(r: contact::Model) -> Contact {
    Contact {
        id: r.id,
        account_id: r.account_id,
        name: r.name,
        title: r.title,
        phone: r.phone,
        email: r.email,
        create_time: r.create_time,
        creator: r.creator,
    }
}

pub fn contact_to_row(tenant: &str, c: &Contact) -> contact::ActiveModel {
    contact::ActiveModel {
        id: Set(c.id.clone()),
        tenant_id: Set(tenant.to_owned()),
        account_id: Set(c.account_id.clone()),
        name: Set(c.name.clone()),
        name_key: Set(name_key(&c.name)),
        title: Set(c.title.clone()),
        phone: Set(c.phone.clone()),
        email: Set(c.email.clone()),
        create_time: Set(c.create_time),
        creator: Set(c.creator.clone()),
    }
}

pub fn opportunity_from_row(r: opportunity::Model) -> Result<Opportunity, OpportunityError> {
    let id = r.id.clone();
    let amount = match (r.amount_currency, r.amount_units, r.amount_nanos) {
        (Some(c), Some(u), Some(n)) => Some(Money::new(c, u, n)),
        _ => None,
    };
    let delivery_review = match (r.review_approval_id, r.review_status) {
        (Some(approval_id), Some(status)) => Some(ReviewState {
            approval_id,
            status: ApprovalStatus::parse(&status).ok_or_else(|| corrupt("review status", &id))?,
        }),
        _ => None,
    };
    Ok(Opportunity {
        tenant: r.tenant_id,
        version: r.version,
        account_id: r.account_id,
        name: r.name,
        amount,
        expected_close_date: match r.expected_close_date {
            Some(d) => Some(Date::parse_iso(&d).ok_or_else(|| corrupt("close date", &id))?),
            None => None,
        },
        grade: match r.grade {
            Some(g) => Some(Grade::parse(&g).ok_or_else(|| corrupt("grade", &id))?),
            None => None,
        },
        team: Team {
            account_manager_id: r.account_manager_id,
            solution_manager_id: r.solution_manager_id,
            delivery_manager_id: r.delivery_manager_id,
            other_member_ids: parse(&r.other_members, "team", &id)?,
        },
        competitors: parse(&r.competitors, "competitors", &id)?,
        stage: Stage::parse(&r.stage).ok_or_else(|| corrupt("stage", &id))?,
        win_loss_reason: r.win_loss_reason,
        qualification: match r.qualification {
            Some(q) => Some(parse(&q, "qualification", &id)?),
            None => None,
        },
        solution_summary: r.solution_summary,
        workload_person_days: r.workload_person_days,
        quote: match r.quote {
            Some(q) => Some(parse(&q, "quote", &id)?),
            None => None,
        },
        delivery_review,
        lead_id: r.lead_id,
        create_time: r.create_time,
        update_time: r.update_time,
        creator: r.creator,
        updater: r.updater,
        id,
    })
}

pub fn opportunity_to_row(o: &Opportunity) -> Result<opportunity::ActiveModel, OpportunityError> {
    Ok(opportunity::ActiveModel {
        id: Set(o.id.clone()),
        tenant_id: Set(o.tenant.clone()),
        version: Set(o.version),
        account_id: Set(o.account_id.clone()),
        name: Set(o.name.clone()),
        amount_currency: Set(o.amount.as_ref().map(|m| m.currency.clone())),
        amount_units: Set(o.amount.as_ref().map(|m| m.units)),
        amount_nanos: Set(o.amount.as_ref().map(|m| m.nanos)),
        expected_close_date: Set(o.expected_close_date.map(|d| d.iso())),
        grade: Set(o.grade.map(|g| g.as_str().to_owned())),
        account_manager_id: Set(o.team.account_manager_id.clone()),
        solution_manager_id: Set(o.team.solution_manager_id.clone()),
        delivery_manager_id: Set(o.team.delivery_manager_id.clone()),
        other_members: Set(json(&o.team.other_member_ids)?),
        competitors: Set(json(&o.competitors)?),
        stage: Set(o.stage.as_str().to_owned()),
        win_loss_reason: Set(o.win_loss_reason.clone()),
        qualification: Set(o.qualification.as_ref().map(json).transpose()?),
        solution_summary: Set(o.solution_summary.clone()),
        workload_person_days: Set(o.workload_person_days),
        quote: Set(o.quote.as_ref().map(json).transpose()?),
        review_approval_id: Set(o.delivery_review.as_ref().map(|r| r.approval_id.clone())),
        review_status: Set(o
            .delivery_review
            .as_ref()
            .map(|r| r.status.as_str().to_owned())),
        lead_id: Set(o.lead_id.clone()),
        create_time: Set(o.create_time),
        update_time: Set(o.update_time),
        creator: Set(o.creator.clone()),
        updater: Set(o.updater.clone()),
    })
}

pub fn member_from_row(r: member::Model) -> Result<Member, OpportunityError> {
    let rating = |v: i32| u8::try_from(v).unwrap_or(0);
    Ok(Member {
        role: DecisionRole::parse(&r.role)
            .ok_or_else(|| corrupt("decision role", &r.contact_id))?,
        relationship: rating(r.relationship),
        solution_acceptance: rating(r.solution_acceptance),
        price_acceptance: rating(r.price_acceptance),
        contact_id: r.contact_id,
    })
}

pub fn member_to_row(
    tenant: &str,
    opportunity_id: &str,
    m: &Member,
    now: i64,
) -> member::ActiveModel {
    member::ActiveModel {
        opportunity_id: Set(opportunity_id.to_owned()),
        contact_id: Set(m.contact_id.clone()),
        tenant_id: Set(tenant.to_owned()),
        role: Set(m.role.as_str().to_owned()),
        relationship: Set(i32::from(m.relationship)),
        solution_acceptance: Set(i32::from(m.solution_acceptance)),
        price_acceptance: Set(i32::from(m.price_acceptance)),
        update_time: Set(now),
    }
}

pub fn activity_from_row(r: activity::Model) -> Result<Activity, OpportunityError> {
    Ok(Activity {
        kind: ActivityKind::parse(&r.kind).ok_or_else(|| corrupt("activity kind", &r.id))?,
        contact_ids: parse(&r.contact_ids, "contacts", &r.id)?,
        id: r.id,
        opportunity_id: r.opportunity_id,
        occur_time: r.occur_time,
        notes: r.notes,
        creator: r.creator,
    })
}

pub fn activity_to_row(
    tenant: &str,
    a: &Activity,
    now: i64,
) -> Result<activity::ActiveModel, OpportunityError> {
    Ok(activity::ActiveModel {
        id: Set(a.id.clone()),
        tenant_id: Set(tenant.to_owned()),
        opportunity_id: Set(a.opportunity_id.clone()),
        kind: Set(a.kind.as_str().to_owned()),
        contact_ids: Set(json(&a.contact_ids)?),
        occur_time: Set(a.occur_time),
        notes: Set(a.notes.clone()),
        creator: Set(a.creator.clone()),
        create_time: Set(now),
    })
}

pub fn approval_from_row(r: approval::Model) -> Result<Approval, OpportunityError> {
    Ok(Approval {
        kind: ApprovalKind::parse(&r.kind).ok_or_else(|| corrupt("approval kind", &r.id))?,
        status: ApprovalStatus::parse(&r.status)
            .ok_or_else(|| corrupt("approval status", &r.id))?,
        steps: parse(&r.steps, "steps", &r.id)?,
        detail: ApprovalDetail {
            proposed: parse(&r.proposed, "proposed changes", &r.id)?,
            snapshot: r.snapshot,
        },
        current_step: usize::try_from(r.current_step).unwrap_or(0),
        id: r.id,
        tenant: r.tenant_id,
        version: r.version,
        subject_id: r.subject_id,
        requester_id: r.requester_id,
        reason: r.reason,
        create_time: r.create_time,
        update_time: r.update_time,
    })
}

pub fn approval_to_row(a: &Approval) -> Result<approval::ActiveModel, OpportunityError> {
    Ok(approval::ActiveModel {
        id: Set(a.id.clone()),
        tenant_id: Set(a.tenant.clone()),
        version: Set(a.version),
        kind: Set(a.kind.as_str().to_owned()),
        subject_id: Set(a.subject_id.clone()),
        requester_id: Set(a.requester_id.clone()),
        status: Set(a.status.as_str().to_owned()),
        steps: Set(json(&a.steps)?),
        current_step: Set(i32::try_from(a.current_step).unwrap_or(i32::MAX)),
        reason: Set(a.reason.clone()),
        proposed: Set(json(&a.detail.proposed)?),
        snapshot: Set(a.detail.snapshot.clone()),
        awaiting_role: Set(awaiting_role(a).map(|r| r.as_str().to_owned())),
        create_time: Set(a.create_time),
        update_time: Set(a.update_time),
    })
}

pub fn work_hours_from_row(r: work_hours::Model) -> Result<WorkHours, OpportunityError> {
    Ok(WorkHours {
        work_date: Date::parse_iso(&r.work_date).ok_or_else(|| corrupt("work date", &r.id))?,
        id: r.id,
        opportunity_id: r.opportunity_id,
        person_id: r.person_id,
        minutes: r.minutes,
        notes: r.notes,
    })
}

pub fn work_hours_to_row(tenant: &str, w: &WorkHours, now: i64) -> work_hours::ActiveModel {
    work_hours::ActiveModel {
        id: Set(w.id.clone()),
        tenant_id: Set(tenant.to_owned()),
        opportunity_id: Set(w.opportunity_id.clone()),
        person_id: Set(w.person_id.clone()),
        work_date: Set(w.work_date.iso()),
        minutes: Set(w.minutes),
        notes: Set(w.notes.clone()),
        create_time: Set(now),
    }
}

pub fn violation_from_row(r: violation::Model) -> Result<StageViolation, OpportunityError> {
    Ok(StageViolation {
        from: Stage::parse(&r.from_stage).ok_or_else(|| corrupt("stage", &r.id))?,
        to: Stage::parse(&r.to_stage).ok_or_else(|| corrupt("stage", &r.id))?,
        missing: parse(&r.missing, "missing requirements", &r.id)?,
        id: r.id,
        opportunity_id: r.opportunity_id,
        manager_id: r.manager_id,
        reason: r.reason,
        time: r.time,
    })
}

pub fn violation_to_row(
    tenant: &str,
    v: &StageViolation,
) -> Result<violation::ActiveModel, OpportunityError> {
    Ok(violation::ActiveModel {
        id: Set(v.id.clone()),
        tenant_id: Set(tenant.to_owned()),
        opportunity_id: Set(v.opportunity_id.clone()),
        from_stage: Set(v.from.as_str().to_owned()),
        to_stage: Set(v.to.as_str().to_owned()),
        missing: Set(json(&v.missing)?),
        manager_id: Set(v.manager_id.clone()),
        reason: Set(v.reason.clone()),
        time: Set(v.time),
    })
}

/// The membership rows of an opportunity's team.
pub fn team_rows(o: &Opportunity) -> Vec<team_member::ActiveModel> {
    o.team
        .members()
        .into_iter()
        .map(|person| team_member::ActiveModel {
            opportunity_id: Set(o.id.clone()),
            person_id: Set(person.to_owned()),
            tenant_id: Set(o.tenant.clone()),
        })
        .collect()
}
