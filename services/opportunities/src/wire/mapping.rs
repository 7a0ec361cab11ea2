//! Proto messages to domain values and back: decoding checks the form of
//! what a client sent (required, well-formed) and names each bad field;
//! the rules are the domain's.

use std::collections::BTreeMap;

use crm_proto::crm::{common::v1 as common, opportunities::v1 as pb};
use crm_rpc::{FieldViolation, fields};
use crm_types::{Date, Money, Role, Violation};

use crate::domain::{
    Account, AccountDraft, AccountUpdate, Activity, ActivityDraft, ActivityKind, Approval,
    ApprovalKind, ApprovalStatus, Contact, ContactDraft, Decision, DecisionRole, ForecastLine,
    Grade, LeadSnapshot, Member, Missing, Opportunity, OpportunityConfig, OpportunityDraft,
    OpportunityPatch, Qualification, RequiredAction, Stage, StageGate, StageViolation, Team,
    WorkHours, WorkHoursDraft,
};

/// Maps a proto enum to a domain value in both directions by listing the
/// pairs once.
macro_rules! enum_map {
    ($to_domain:ident, $to_proto:ident, $pb:ty, $domain:ty, $what:literal, { $($p:ident => $d:expr),+ $(,)? }) => {
        /// `None` for UNSPECIFIED; an unknown number is a violation of `field`.
        pub fn $to_domain(value: i32, field: &str) -> Result<Option<$domain>, FieldViolation> {
            let v = <$pb>::try_from(value).map_err(|_| FieldViolation::new(field, concat!("unknown ", $what)))?;
            Ok(match v {
                <$pb>::Unspecified => None,
                $(<$pb>::$p => Some($d),)+
            })
        }

        pub fn $to_proto(value: $domain) -> i32 {
            $(if value == $d { return <$pb>::$p as i32; })+
            0
        }
    };
}

enum_map!(stage, stage_pb, pb::Stage, Stage, "stage", {
    Validate => Stage::Validate, Approved => Stage::Approved, NeedsAnalysis => Stage::NeedsAnalysis,
    ValuePresentation => Stage::ValuePresentation, Proposal => Stage::Proposal, Bidding => Stage::Bidding,
    Negotiation => Stage::Negotiation, Won => Stage::Won, Lost => Stage::Lost,
});
enum_map!(grade, grade_pb, pb::Grade, Grade, "grade", { A => Grade::A, B => Grade::B, C => Grade::C, E => Grade::E });
enum_map!(decision_role, decision_role_pb, pb::DecisionRole, DecisionRole, "decision role", {
    DecisionMaker => DecisionRole::DecisionMaker, Influencer => DecisionRole::Influencer,
    TechnicalEvaluator => DecisionRole::TechnicalEvaluator, User => DecisionRole::User, Coach => DecisionRole::Coach,
});
enum_map!(activity_kind, activity_kind_pb, pb::ActivityKind, ActivityKind, "activity kind", {
    Meeting => ActivityKind::Meeting, Call => ActivityKind::Call, Demo => ActivityKind::Demo, Visit => ActivityKind::Visit, Email => ActivityKind::Email,
});
enum_map!(approval_kind, approval_kind_pb, pb::ApprovalKind, ApprovalKind, "approval kind", {
    ProjectApproval => ApprovalKind::ProjectApproval, PartnerRegistration => ApprovalKind::PartnerRegistration,
    PresalesResource => ApprovalKind::PresalesResource, GradeUpgrade => ApprovalKind::GradeUpgrade,
    BidApproval => ApprovalKind::BidApproval, ScopeReview => ApprovalKind::ScopeReview,
    AccountChange => ApprovalKind::AccountChange, DeliveryReview => ApprovalKind::DeliveryReview,
});
enum_map!(approval_status, approval_status_pb, pb::ApprovalStatus, ApprovalStatus, "approval status", {
    Pending => ApprovalStatus::Pending, Approved => ApprovalStatus::Approved, Rejected => ApprovalStatus::Rejected, Voided => ApprovalStatus::Voided,
});
enum_map!(decision, decision_pb, pb::Decision, Decision, "decision", { Approve => Decision::Approve, Reject => Decision::Reject });
enum_map!(required_action, required_action_pb, pb::RequiredAction, RequiredAction, "required action", {
    DecisionMakerInChain => RequiredAction::DecisionMakerInChain,
    MeetingWithDecisionMaker => RequiredAction::MeetingWithDecisionMaker,
    QualificationAssessed => RequiredAction::QualificationAssessed,
});
enum_map!(role, role_pb, common::Role, Role, "role", {
    Sales => Role::Sales, Solution => Role::Solution, Delivery => Role::Delivery, Service => Role::Service,
    Finance => Role::Finance, Legal => Role::Legal, Manager => Role::Manager, Admin => Role::Admin, Integration => Role::Integration,
    Internal => Role::Internal,
});

/// A money field: currency checked; negative amounts and amounts over the
/// domain's maximum refused.
pub fn money(m: Option<&common::Money>, field: &str, v: &mut Vec<FieldViolation>) -> Option<Money> {
    let m = m?;
    if let Err(e) = fields::money(m, field) {
        v.push(e);
        return None;
    }
    let value = Some(Money::new(m.currency_code.clone(), m.units, m.nanos));
    if let Some(bad) = crate::domain::money_violation(field, &value) {
        v.push(field_violation(bad));
        return None;
    }
    value
}

pub fn money_pb(m: &Money) -> common::Money {
    common::Money {
        currency_code: m.currency.clone(),
        units: m.units,
        nanos: m.nanos,
    }
}

pub fn date(d: Option<&common::Date>, field: &str, v: &mut Vec<FieldViolation>) -> Option<Date> {
    let d = d?;
    let parsed = Date::new(d.year, d.month, d.day);
    if parsed.is_none() {
        v.push(FieldViolation::new(field, "not a valid calendar date"));
    }
    parsed
}

pub fn date_pb(d: Date) -> common::Date {
    common::Date {
        year: d.year,
        month: i32::from(d.month),
        day: i32::from(d.day),
    }
}

pub fn account_pb(a: &Account) -> pb::Account {
    pb::Account {
        id: a.id.clone(),
        etag: crm_rpc::etag(a.version),
        name: a.name.clone(),
        registration_number: a.registration_number.clone(),
        industry: a.industry.clone(),
        region: a.region.clone(),
        owner_id: a.owner_id.clone(),
        pending_approval_id: a.pending_approval_id.clone().unwrap_or_default(),
        create_time: Some(fields::timestamp(a.create_time)),
        update_time: Some(fields::timestamp(a.update_time)),
        creator: a.creator.clone(),
        updater: a.updater.clone(),
    }
}

pub fn contact_pb(c: &Contact) -> pb::Contact {
    pb::Contact {
        id: c.id.clone(),
        // Contacts are never changed: always their first version.
        etag: crm_rpc::etag(1),
        account_id: c.account_id.clone(),
        name: c.name.clone(),
        title: c.title.clone(),
        phone: c.phone.clone(),
        email: c.email.clone(),
        create_time: Some(fields::timestamp(c.create_time)),
        creator: c.creator.clone(),
    }
}

fn team(t: Option<&pb::Team>) -> Team {
    t.map(|t| Team {
        account_manager_id: t.account_manager_id.clone(),
        solution_manager_id: t.solution_manager_id.clone(),
        delivery_manager_id: t.delivery_manager_id.clone(),
        // Checked by `team_text`; here only deduplicated.
        other_member_ids: fields::ids(&t.other_member_ids, "", usize::MAX).unwrap_or_default(),
    })
    .unwrap_or_default()
}

fn qualification(q: Option<&pb::Qualification>) -> Option<Qualification> {
    q.map(|q| Qualification {
        is_real: q.is_real,
        can_compete: q.can_compete,
        can_win: q.can_win,
        worth_it: q.worth_it,
        notes: q.notes.clone(),
    })
}

/// Pushes a failed field check onto `v`.
pub fn check(v: &mut Vec<FieldViolation>, result: Result<(), FieldViolation>) {
    if let Err(e) = result {
        v.push(e);
    }
}

/// A name (account, contact, opportunity, company): one line, bounded.
pub fn name(value: &str, field: &str) -> Result<(), FieldViolation> {
    fields::text(value, field, fields::MAX_NAME_CHARS, fields::Lines::Single)
}

/// A short label (region, industry, phone, title): one line, bounded.
pub fn short_text(value: &str, field: &str) -> Result<(), FieldViolation> {
    fields::text(value, field, fields::MAX_SHORT_CHARS, fields::Lines::Single)
}

/// Free text (notes, reasons, comments): lines allowed, bounded.
pub fn notes(value: &str, field: &str) -> Result<(), FieldViolation> {
    fields::text(value, field, fields::MAX_NOTES_CHARS, fields::Lines::Multi)
}

/// A repeated id field: bounded, each a clean id, deduplicated.
fn id_list(values: &[String], field: &str, v: &mut Vec<FieldViolation>) -> Vec<String> {
    fields::ids(values, field, fields::MAX_LIST_ITEMS).unwrap_or_else(|e| {
        v.push(e);
        Vec::new()
    })
}

/// An account's text fields within their bounds, named under `parent`.
fn account_text(a: &pb::Account, parent: &str, v: &mut Vec<FieldViolation>) {
    check(v, name(&a.name, &format!("{parent}.name")));
    for (field, value) in [
        ("registration_number", &a.registration_number),
        ("industry", &a.industry),
        ("region", &a.region),
    ] {
        check(v, short_text(value, &format!("{parent}.{field}")));
    }
    check(v, fields::id(&a.owner_id, &format!("{parent}.owner_id")));
}

/// A team's member ids: clean, bounded, the others deduplicated.
fn team_text(t: Option<&pb::Team>, v: &mut Vec<FieldViolation>) {
    let Some(t) = t else { return };
    for (field, value) in [
        ("account_manager_id", &t.account_manager_id),
        ("solution_manager_id", &t.solution_manager_id),
        ("delivery_manager_id", &t.delivery_manager_id),
    ] {
        check(v, fields::id(value, &format!("opportunity.team.{field}")));
    }
    id_list(&t.other_member_ids, "opportunity.team.other_member_ids", v);
}

/// An opportunity's text fields within their bounds.
fn opportunity_text(o: &pb::Opportunity, v: &mut Vec<FieldViolation>) {
    check(v, fields::id(&o.account_id, "opportunity.account_id"));
    check(v, name(&o.name, "opportunity.name"));
    team_text(o.team.as_ref(), v);
    check(
        v,
        fields::texts(
            &o.competitors,
            "opportunity.competitors",
            fields::MAX_LIST_ITEMS,
            fields::MAX_NAME_CHARS,
        ),
    );
    check(v, notes(&o.win_loss_reason, "opportunity.win_loss_reason"));
    check(
        v,
        notes(&o.solution_summary, "opportunity.solution_summary"),
    );
    if let Some(q) = &o.qualification {
        check(v, notes(&q.notes, "opportunity.qualification.notes"));
    }
}

/// A domain violation as the contract reports it.
pub fn field_violation(v: Violation) -> FieldViolation {
    FieldViolation::new(v.field, v.description)
}

/// A new account's fields: a name is required.
pub fn account_draft(a: pb::Account) -> Result<AccountDraft, Vec<FieldViolation>> {
    let mut v = Vec::new();
    account_text(&a, "account", &mut v);
    if a.name.trim().is_empty() {
        v.push(FieldViolation::new("account.name", "required"));
    }
    if !v.is_empty() {
        return Err(v);
    }
    Ok(AccountDraft {
        name: a.name.trim().to_owned(),
        registration_number: a.registration_number.trim().to_owned(),
        industry: a.industry.trim().to_owned(),
        region: a.region.trim().to_owned(),
        owner_id: a.owner_id,
    })
}

/// The fields an account update may name.
pub const ACCOUNT_UPDATABLE: &[&str] = &[
    "name",
    "registration_number",
    "industry",
    "region",
    "owner_id",
];

/// What an account update asks for, from the fields its mask names.
pub fn account_update(
    a: &pb::Account,
    paths: &[String],
    reason: String,
) -> Result<AccountUpdate, Vec<FieldViolation>> {
    if paths.is_empty() {
        return Err(vec![FieldViolation::new(
            "update_mask",
            "names no field to change",
        )]);
    }
    let mut v = Vec::new();
    account_text(a, "account", &mut v);
    check(&mut v, notes(&reason, "reason"));
    if !v.is_empty() {
        return Err(v);
    }
    let has = |f: &str| paths.iter().any(|x| x == f);
    let core = [
        ("name", &a.name),
        ("registration_number", &a.registration_number),
        ("industry", &a.industry),
    ]
    .into_iter()
    .filter(|(field, _)| has(field))
    .map(|(field, value)| (field.to_owned(), value.trim().to_owned()))
    .collect();
    Ok(AccountUpdate {
        region: has("region").then(|| a.region.trim().to_owned()),
        owner_id: has("owner_id").then(|| a.owner_id.clone()),
        core,
        reason,
    })
}

/// A new contact's fields: its account and a name are required.
pub fn contact_draft(c: pb::Contact) -> Result<ContactDraft, Vec<FieldViolation>> {
    let mut v = Vec::new();
    check(
        &mut v,
        crm_rpc::required_id(&c.account_id, "contact.account_id"),
    );
    check(&mut v, name(&c.name, "contact.name"));
    for (field, value) in [("title", &c.title), ("phone", &c.phone)] {
        check(&mut v, short_text(value, &format!("contact.{field}")));
    }
    check(
        &mut v,
        fields::text(
            &c.email,
            "contact.email",
            fields::MAX_EMAIL_CHARS,
            fields::Lines::Single,
        ),
    );
    if c.name.trim().is_empty() {
        v.push(FieldViolation::new("contact.name", "required"));
    }
    if !v.is_empty() {
        return Err(v);
    }
    Ok(ContactDraft {
        account_id: c.account_id,
        name: c.name.trim().to_owned(),
        title: c.title,
        phone: c.phone,
        email: c.email,
    })
}

/// The lead a conversion is asked for: its id and company are required.
pub fn lead_snapshot(body: pb::ConvertLeadRequest) -> Result<LeadSnapshot, Vec<FieldViolation>> {
    let mut v = Vec::new();
    check(&mut v, crm_rpc::required_id(&body.lead_id, "lead_id"));
    check(&mut v, name(&body.company, "company"));
    check(&mut v, name(&body.opportunity_name, "opportunity_name"));
    for (field, value) in [
        ("contact_name", &body.contact_name),
        ("phone", &body.phone),
        ("industry", &body.industry),
        ("region", &body.region),
    ] {
        check(&mut v, short_text(value, field));
    }
    check(
        &mut v,
        fields::text(
            &body.email,
            "email",
            fields::MAX_EMAIL_CHARS,
            fields::Lines::Single,
        ),
    );
    check(&mut v, fields::id(&body.owner_id, "owner_id"));
    if body.company.trim().is_empty() {
        v.push(FieldViolation::new("company", "required"));
    }
    let amount = money(body.amount.as_ref(), "amount", &mut v);
    if !v.is_empty() {
        return Err(v);
    }
    Ok(LeadSnapshot {
        lead_id: body.lead_id,
        company: body.company,
        contact_name: body.contact_name,
        phone: body.phone,
        email: body.email,
        industry: body.industry,
        region: body.region,
        owner_id: body.owner_id,
        opportunity_name: body.opportunity_name,
        amount,
    })
}

/// A new opportunity's fields, checked for form.
pub fn draft(o: &pb::Opportunity) -> Result<OpportunityDraft, Vec<FieldViolation>> {
    let mut v = Vec::new();
    opportunity_text(o, &mut v);
    if o.account_id.is_empty() {
        v.push(FieldViolation::new("opportunity.account_id", "required"));
    }
    if o.name.trim().is_empty() {
        v.push(FieldViolation::new("opportunity.name", "required"));
    }
    let amount = money(o.amount.as_ref(), "opportunity.amount", &mut v);
    let expected_close_date = date(
        o.expected_close_date.as_ref(),
        "opportunity.expected_close_date",
        &mut v,
    );
    let grade = grade(o.grade, "opportunity.grade").unwrap_or_else(|e| {
        v.push(e);
        None
    });
    if v.is_empty() {
        Ok(OpportunityDraft {
            account_id: o.account_id.clone(),
            name: o.name.trim().to_owned(),
            amount,
            expected_close_date,
            grade,
            team: team(o.team.as_ref()),
            competitors: o.competitors.clone(),
            qualification: qualification(o.qualification.as_ref()),
        })
    } else {
        Err(v)
    }
}

pub const UPDATABLE: &[&str] = &[
    "name",
    "amount",
    "expected_close_date",
    "grade",
    "team",
    "competitors",
    "win_loss_reason",
    "qualification",
    "solution_summary",
    "workload_person_days",
    "quote",
];

/// The changes an update asks for; an empty mask means every updatable
/// field set in the message.
pub fn patches(
    o: &pb::Opportunity,
    paths: &[String],
) -> Result<Vec<OpportunityPatch>, Vec<FieldViolation>> {
    let mut v = Vec::new();
    opportunity_text(o, &mut v);
    if !v.is_empty() {
        return Err(v);
    }
    let set = |p: &str| -> bool {
        if !paths.is_empty() {
            return paths.iter().any(|x| x == p);
        }
        match p {
            "name" => !o.name.is_empty(),
            "amount" => o.amount.is_some(),
            "expected_close_date" => o.expected_close_date.is_some(),
            "grade" => o.grade != 0,
            "team" => o.team.is_some(),
            "competitors" => !o.competitors.is_empty(),
            "win_loss_reason" => !o.win_loss_reason.is_empty(),
            "qualification" => o.qualification.is_some(),
            "solution_summary" => !o.solution_summary.is_empty(),
            "workload_person_days" => o.workload_person_days != 0,
            "quote" => o.quote.is_some(),
            _ => false,
        }
    };
    let mut out = Vec::new();
    for path in UPDATABLE.iter().copied().filter(|p| set(p)) {
        out.push(match path {
            "name" => OpportunityPatch::Name(o.name.clone()),
            "amount" => {
                OpportunityPatch::Amount(money(o.amount.as_ref(), "opportunity.amount", &mut v))
            }
            "expected_close_date" => OpportunityPatch::ExpectedCloseDate(date(
                o.expected_close_date.as_ref(),
                "opportunity.expected_close_date",
                &mut v,
            )),
            "grade" => {
                OpportunityPatch::Grade(grade(o.grade, "opportunity.grade").unwrap_or_else(|e| {
                    v.push(e);
                    None
                }))
            }
            "team" => OpportunityPatch::Team(team(o.team.as_ref())),
            "competitors" => OpportunityPatch::Competitors(o.competitors.clone()),
            "win_loss_reason" => OpportunityPatch::WinLossReason(o.win_loss_reason.clone()),
            "qualification" => {
                OpportunityPatch::Qualification(qualification(o.qualification.as_ref()))
            }
            "solution_summary" => OpportunityPatch::SolutionSummary(o.solution_summary.clone()),
            "workload_person_days" => OpportunityPatch::WorkloadPersonDays(
                (o.workload_person_days != 0).then_some(o.workload_person_days),
            ),
            _ => OpportunityPatch::Quote(money(o.quote.as_ref(), "opportunity.quote", &mut v)),
        });
    }
    if out.is_empty() && v.is_empty() {
        v.push(FieldViolation::new(
            "update_mask",
            "names no field to change",
        ));
    }
    if v.is_empty() { Ok(out) } else { Err(v) }
}

pub fn opportunity_pb(o: &Opportunity, config: &OpportunityConfig) -> pb::Opportunity {
    pb::Opportunity {
        id: o.id.clone(),
        etag: o.etag(),
        account_id: o.account_id.clone(),
        name: o.name.clone(),
        amount: o.amount.as_ref().map(money_pb),
        expected_close_date: o.expected_close_date.map(date_pb),
        grade: o.grade.map_or(0, grade_pb),
        team: Some(pb::Team {
            account_manager_id: o.team.account_manager_id.clone(),
            solution_manager_id: o.team.solution_manager_id.clone(),
            delivery_manager_id: o.team.delivery_manager_id.clone(),
            other_member_ids: o.team.other_member_ids.clone(),
        }),
        competitors: o.competitors.clone(),
        stage: stage_pb(o.stage),
        win_probability: i32::from(config.probability(o.stage)),
        win_loss_reason: o.win_loss_reason.clone(),
        qualification: o.qualification.as_ref().map(|q| pb::Qualification {
            is_real: q.is_real,
            can_compete: q.can_compete,
            can_win: q.can_win,
            worth_it: q.worth_it,
            notes: q.notes.clone(),
        }),
        solution_summary: o.solution_summary.clone(),
        workload_person_days: o.workload_person_days.unwrap_or(0),
        quote: o.quote.as_ref().map(money_pb),
        delivery_review: o.delivery_review.as_ref().map(|r| pb::DeliveryReview {
            approval_id: r.approval_id.clone(),
            status: approval_status_pb(r.status),
        }),
        lead_id: o.lead_id.clone().unwrap_or_default(),
        create_time: Some(fields::timestamp(o.create_time)),
        update_time: Some(fields::timestamp(o.update_time)),
        creator: o.creator.clone(),
        updater: o.updater.clone(),
    }
}

pub fn member(m: Option<&pb::DecisionChainMember>) -> Result<Member, Vec<FieldViolation>> {
    let Some(m) = m else {
        return Err(vec![FieldViolation::new("member", "required")]);
    };
    let mut v = Vec::new();
    check(
        &mut v,
        crm_rpc::required_id(&m.contact_id, "member.contact_id"),
    );
    let role = match decision_role(m.role, "member.role") {
        Ok(Some(r)) => Some(r),
        Ok(None) => {
            v.push(FieldViolation::new("member.role", "required"));
            None
        }
        Err(e) => {
            v.push(e);
            None
        }
    };
    let rating = |x: i32| u8::try_from(x).unwrap_or(0);
    let member = Member {
        contact_id: m.contact_id.clone(),
        role: role.unwrap_or(DecisionRole::User),
        relationship: rating(m.relationship),
        solution_acceptance: rating(m.solution_acceptance),
        price_acceptance: rating(m.price_acceptance),
    };
    v.extend(member.validate().into_iter().map(field_violation));
    if v.is_empty() { Ok(member) } else { Err(v) }
}

pub fn member_pb(m: &Member) -> pb::DecisionChainMember {
    pb::DecisionChainMember {
        contact_id: m.contact_id.clone(),
        role: decision_role_pb(m.role),
        relationship: i32::from(m.relationship),
        solution_acceptance: i32::from(m.solution_acceptance),
        price_acceptance: i32::from(m.price_acceptance),
    }
}

pub fn activity_pb(a: &Activity) -> pb::Activity {
    pb::Activity {
        id: a.id.clone(),
        opportunity_id: a.opportunity_id.clone(),
        kind: activity_kind_pb(a.kind),
        contact_ids: a.contact_ids.clone(),
        occur_time: Some(fields::timestamp(a.occur_time)),
        notes: a.notes.clone(),
        creator: a.creator.clone(),
    }
}

pub fn work_hours_pb(w: &WorkHours) -> pb::WorkHours {
    pb::WorkHours {
        id: w.id.clone(),
        opportunity_id: w.opportunity_id.clone(),
        person_id: w.person_id.clone(),
        work_date: Some(date_pb(w.work_date)),
        minutes: w.minutes,
        notes: w.notes.clone(),
    }
}

pub fn approval_pb(a: &Approval) -> pb::Approval {
    pb::Approval {
        id: a.id.clone(),
        etag: crm_rpc::etag(a.version),
        kind: approval_kind_pb(a.kind),
        subject_id: a.subject_id.clone(),
        requester_id: a.requester_id.clone(),
        status: approval_status_pb(a.status),
        steps: a
            .steps
            .iter()
            .map(|s| pb::ApprovalStep {
                role: role_pb(s.role),
                decision: s.decision.map_or(0, decision_pb),
                decider_id: s.decider_id.clone(),
                on_behalf_of: s.on_behalf_of.clone(),
                decide_time: fields::opt_timestamp(s.decide_time),
                comment: s.comment.clone(),
            })
            .collect(),
        current_step: i32::try_from(a.current_step).unwrap_or(0),
        reason: a.reason.clone(),
        proposed_changes: a.detail.proposed.clone().into_iter().collect(),
        create_time: Some(fields::timestamp(a.create_time)),
        update_time: Some(fields::timestamp(a.update_time)),
    }
}

fn missing_pb(m: &Missing) -> pb::MissingRequirement {
    pb::MissingRequirement {
        kind: m.kind.clone(),
        subject: m.subject.clone(),
        description: m.description.clone(),
    }
}

pub fn violation_pb(v: &StageViolation) -> pb::StageViolation {
    pb::StageViolation {
        id: v.id.clone(),
        opportunity_id: v.opportunity_id.clone(),
        from_stage: stage_pb(v.from),
        to_stage: stage_pb(v.to),
        missing: v.missing.iter().map(missing_pb).collect(),
        manager_id: v.manager_id.clone(),
        reason: v.reason.clone(),
        time: Some(fields::timestamp(v.time)),
    }
}

pub fn forecast_pb(l: &ForecastLine) -> pb::ForecastLine {
    pb::ForecastLine {
        stage: stage_pb(l.stage),
        currency_code: l.amount.currency.clone(),
        count: l.count,
        amount: Some(money_pb(&l.amount)),
        weighted_amount: Some(money_pb(&l.weighted)),
    }
}

/// A tenant's configuration at `version` (0: the operator's defaults), last
/// changed at `update_time` by `updater`.
pub fn config_pb(
    c: &OpportunityConfig,
    version: i64,
    update_time: Option<i64>,
    updater: &str,
) -> pb::OpportunityConfig {
    pb::OpportunityConfig {
        etag: crm_rpc::etag(version),
        stage_probabilities: c
            .stage_probabilities
            .iter()
            .map(|(stage, p)| pb::StageProbability {
                stage: stage_pb(*stage),
                percent: i32::from(*p),
            })
            .collect(),
        gates: c
            .gates
            .iter()
            .map(|g| pb::StageGate {
                stage: stage_pb(g.stage),
                required_fields: g.required_fields.clone(),
                required_actions: g
                    .required_actions
                    .iter()
                    .map(|a| required_action_pb(*a))
                    .collect(),
                required_approvals: g
                    .required_approvals
                    .iter()
                    .map(|k| approval_kind_pb(*k))
                    .collect(),
            })
            .collect(),
        allow_skipping_stages: c.allow_skipping_stages,
        allow_moving_back: c.allow_moving_back,
        approval_chains: c
            .approval_chains
            .iter()
            .map(|(kind, roles)| pb::ApprovalChain {
                kind: approval_kind_pb(*kind),
                roles: roles.iter().map(|r| role_pb(*r)).collect(),
            })
            .collect(),
        update_time: fields::opt_timestamp(update_time),
        updater: updater.to_owned(),
        allow_repeat_deciders: c.approval_policy.allow_repeat_deciders,
        oa_subjects: c.approval_policy.integration_subjects.clone(),
        approvers: c
            .approval_policy
            .approvers
            .iter()
            .map(|(person, roles)| pb::Approver {
                person_id: person.clone(),
                roles: roles.iter().map(|r| role_pb(*r)).collect(),
            })
            .collect(),
    }
}

fn required<T>(
    value: Result<Option<T>, FieldViolation>,
    field: &str,
    v: &mut Vec<FieldViolation>,
) -> Option<T> {
    match value {
        Ok(Some(x)) => Some(x),
        Ok(None) => {
            v.push(FieldViolation::new(field, "required"));
            None
        }
        Err(e) => {
            v.push(e);
            None
        }
    }
}

pub fn config(c: &pb::OpportunityConfig) -> Result<OpportunityConfig, Vec<FieldViolation>> {
    let mut v = Vec::new();
    let mut probabilities = BTreeMap::new();
    for (i, p) in c.stage_probabilities.iter().enumerate() {
        if let Some(s) = required(
            stage(p.stage, &format!("config.stage_probabilities[{i}].stage")),
            &format!("config.stage_probabilities[{i}].stage"),
            &mut v,
        ) {
            match u8::try_from(p.percent).ok().filter(|x| *x <= 100) {
                Some(x) => {
                    if probabilities.insert(s, x).is_some() {
                        v.push(FieldViolation::new(
                            format!("config.stage_probabilities[{i}].stage"),
                            "one probability per stage",
                        ));
                    }
                }
                None => v.push(FieldViolation::new(
                    format!("config.stage_probabilities[{i}].percent"),
                    "0-100",
                )),
            }
        }
    }
    let mut gates = Vec::new();
    for (i, g) in c.gates.iter().enumerate() {
        let field = format!("config.gates[{i}]");
        let s = required(
            stage(g.stage, &format!("{field}.stage")),
            &format!("{field}.stage"),
            &mut v,
        );
        let actions = g
            .required_actions
            .iter()
            .enumerate()
            .filter_map(|(j, a)| {
                required(
                    required_action(*a, &format!("{field}.required_actions[{j}]")),
                    &format!("{field}.required_actions[{j}]"),
                    &mut v,
                )
            })
            .collect();
        let approvals = g
            .required_approvals
            .iter()
            .enumerate()
            .filter_map(|(j, a)| {
                required(
                    approval_kind(*a, &format!("{field}.required_approvals[{j}]")),
                    &format!("{field}.required_approvals[{j}]"),
                    &mut v,
                )
            })
            .collect();
        if let Some(s) = s {
            gates.push(StageGate {
                stage: s,
                required_fields: g.required_fields.clone(),
                required_actions: actions,
                required_approvals: approvals,
            });
        }
    }
    let mut chains = BTreeMap::new();
    for (i, ch) in c.approval_chains.iter().enumerate() {
        let field = format!("config.approval_chains[{i}]");
        let kind = required(
            approval_kind(ch.kind, &format!("{field}.kind")),
            &format!("{field}.kind"),
            &mut v,
        );
        let roles: Vec<Role> = ch
            .roles
            .iter()
            .enumerate()
            .filter_map(|(j, r)| {
                required(
                    role(*r, &format!("{field}.roles[{j}]")),
                    &format!("{field}.roles[{j}]"),
                    &mut v,
                )
            })
            .collect();
        if let Some(kind) = kind
            && chains.insert(kind, roles).is_some()
        {
            v.push(FieldViolation::new(
                format!("{field}.kind"),
                "one chain per kind",
            ));
        }
    }
    let mut approvers = BTreeMap::new();
    for (i, a) in c.approvers.iter().enumerate() {
        let field = format!("config.approvers[{i}]");
        let roles: Vec<Role> = a
            .roles
            .iter()
            .enumerate()
            .filter_map(|(j, r)| {
                required(
                    role(*r, &format!("{field}.roles[{j}]")),
                    &format!("{field}.roles[{j}]"),
                    &mut v,
                )
            })
            .collect();
        if approvers.insert(a.person_id.clone(), roles).is_some() {
            v.push(FieldViolation::new(
                format!("{field}.person_id"),
                "one entry per person",
            ));
        }
    }
    let config = OpportunityConfig {
        stage_probabilities: probabilities,
        gates,
        allow_skipping_stages: c.allow_skipping_stages,
        allow_moving_back: c.allow_moving_back,
        approval_chains: chains,
        approval_policy: crm_approvals::Policy {
            allow_repeat_deciders: c.allow_repeat_deciders,
            integration_subjects: c.oa_subjects.clone(),
            approvers,
        },
    };
    v.extend(config.validate().into_iter().map(field_violation));
    if v.is_empty() { Ok(config) } else { Err(v) }
}

/// An activity's fields: a known kind, a time not in the future (`now`
/// when none is given).
pub fn activity(a: pb::Activity, now: i64) -> Result<ActivityDraft, Vec<FieldViolation>> {
    let mut v = Vec::new();
    let contact_ids = id_list(&a.contact_ids, "activity.contact_ids", &mut v);
    check(&mut v, notes(&a.notes, "activity.notes"));
    let kind = required(
        activity_kind(a.kind, "activity.kind"),
        "activity.kind",
        &mut v,
    );
    let occur_time = match &a.occur_time {
        Some(ts) => fields::micros(ts, "activity.occur_time")
            .map_err(|e| v.push(e))
            .unwrap_or(now),
        None => now,
    };
    if occur_time > now + 60_000_000 {
        v.push(FieldViolation::new(
            "activity.occur_time",
            "must not be in the future",
        ));
    }
    match kind.filter(|_| v.is_empty()) {
        Some(kind) => Ok(ActivityDraft {
            kind,
            contact_ids,
            occur_time,
            notes: a.notes,
        }),
        None => Err(v),
    }
}

/// Hours to log: a date and 1 to 1440 minutes.
pub fn work_hours(w: pb::WorkHours) -> Result<WorkHoursDraft, Vec<FieldViolation>> {
    let mut v = Vec::new();
    check(&mut v, notes(&w.notes, "work_hours.notes"));
    let parsed = date(w.work_date.as_ref(), "work_hours.work_date", &mut v);
    if w.work_date.is_none() {
        v.push(FieldViolation::new("work_hours.work_date", "required"));
    }
    if !(1..=1440).contains(&w.minutes) {
        v.push(FieldViolation::new(
            "work_hours.minutes",
            "1 to 1440 minutes",
        ));
    }
    match parsed.filter(|_| v.is_empty()) {
        Some(work_date) => Ok(WorkHoursDraft {
            work_date,
            minutes: w.minutes,
            notes: w.notes,
        }),
        None => Err(v),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    /// Any text a caller could send: anything, control characters, CJK,
    /// emoji and combining marks, or huge.
    fn any_text() -> impl Strategy<Value = String> {
        prop_oneof![
            "(?s).{0,300}",
            "[\\x00-\\x1f\\u{4e00}-\\u{9fff}\\u{1F600}-\\u{1F64F}\\u{0300}-\\u{036F}a-z]{0,300}",
            (0usize..20_000).prop_map(|n| "x".repeat(n)),
        ]
    }

    fn bounded(s: &str, max: usize) -> bool {
        !s.contains('\0') && s.chars().count() <= max
    }

    #[test]
    fn finding_13_long_company_in_convert_lead_is_refused_naming_it() {
        let body = pb::ConvertLeadRequest {
            lead_id: "lead-1".into(),
            company: "x".repeat(3_005),
            ..Default::default()
        };
        let fields: Vec<_> = lead_snapshot(body)
            .unwrap_err()
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(fields, ["company"]);
    }

    #[test]
    fn finding_10_repeated_contact_ids_are_deduplicated_and_bounded() {
        let log = |ids: Vec<String>| pb::Activity {
            kind: pb::ActivityKind::Meeting as i32,
            contact_ids: ids,
            ..Default::default()
        };
        let once = activity(log(vec!["c1".into(); 100]), 0).unwrap();
        assert_eq!(once.contact_ids, ["c1"]);
        let refused = activity(log(vec!["c1".into(); 100_000]), 0).unwrap_err();
        assert_eq!(refused[0].field, "activity.contact_ids");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever the strings and numbers, a decoder either refuses
        /// naming fields (INVALID_ARGUMENT) or yields bounded, clean values.
        #[test]
        fn decoders_refuse_or_yield_bounded_clean_values(
            a in any_text(),
            b in any_text(),
            ids in proptest::collection::vec(any_text(), 0..120),
            units in any::<i64>(),
            nanos in any::<i32>(),
        ) {
            let account = pb::Account {
                name: a.clone(),
                region: b.clone(),
                industry: a.clone(),
                owner_id: b.clone(),
                ..Default::default()
            };
            match account_draft(account) {
                Ok(d) => prop_assert!(bounded(&d.name, fields::MAX_NAME_CHARS)
                    && bounded(&d.region, fields::MAX_SHORT_CHARS)
                    && bounded(&d.owner_id, fields::MAX_ID_CHARS)),
                Err(v) => prop_assert!(!v.is_empty()),
            }
            let convert = pb::ConvertLeadRequest {
                lead_id: b.clone(),
                company: a.clone(),
                email: b.clone(),
                amount: Some(common::Money { currency_code: "CNY".into(), units, nanos }),
                ..Default::default()
            };
            match lead_snapshot(convert) {
                Ok(s) => prop_assert!(bounded(&s.company, fields::MAX_NAME_CHARS)
                    && bounded(&s.lead_id, fields::MAX_ID_CHARS)),
                Err(v) => prop_assert!(!v.is_empty()),
            }
            let logged = pb::Activity {
                kind: pb::ActivityKind::Meeting as i32,
                contact_ids: ids,
                notes: a,
                ..Default::default()
            };
            match activity(logged, 0) {
                Ok(d) => {
                    prop_assert!(d.contact_ids.len() <= fields::MAX_LIST_ITEMS);
                    let mut unique = d.contact_ids.clone();
                    unique.sort();
                    unique.dedup();
                    prop_assert_eq!(unique.len(), d.contact_ids.len());
                    prop_assert!(bounded(&d.notes, fields::MAX_NOTES_CHARS));
                }
                Err(v) => prop_assert!(!v.is_empty()),
            }
        }
    }
}
