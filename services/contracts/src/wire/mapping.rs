//! Proto messages to domain values and back: decoding checks the form of
//! what a client sent (bounds, well-formed values) and names each bad
//! field; the rules are the domain's.

use std::collections::BTreeMap;

use crm_proto::crm::{common::v1 as common, contracts::v1 as pb, opportunities::v1 as opp};
use crm_rpc::{
    FieldViolation,
    fields::{self, Lines},
};
use crm_types::Violation;

use crate::domain::{
    self, Contract, ContractApproval, ContractsConfig, Date, DraftPatch, KeyContact, LineInput,
    Milestone, MilestoneInput, MilestoneStatus, Money, OpportunityFacts, ReviewedScope, Role,
    Share, Signature, SignatureOutcome, SpecialRequirement, Status, StepInfo, StepState, Team,
    Term,
};

/// A domain violation as a field violation.
pub fn field_violation(v: Violation) -> FieldViolation {
    FieldViolation::new(v.field, v.description)
}

// ---- enums

pub fn status_pb(s: Status) -> i32 {
    use pb::ContractStatus as P;
    (match s {
        Status::Draft => P::Draft,
        Status::InApproval => P::InApproval,
        Status::Approved => P::Approved,
        Status::SentForSignature => P::SentForSignature,
        Status::Signed => P::Signed,
        Status::Active => P::Active,
        Status::Expired => P::Expired,
        Status::Terminated => P::Terminated,
        Status::Superseded => P::Superseded,
    }) as i32
}

/// `None` for UNSPECIFIED (any).
pub fn status(value: i32, field: &str) -> Result<Option<Status>, FieldViolation> {
    let p = pb::ContractStatus::try_from(value)
        .map_err(|_| FieldViolation::new(field, "unknown contract status"))?;
    Ok(Status::ALL.into_iter().find(|s| status_pb(*s) == p as i32))
}

pub fn milestone_status_pb(s: MilestoneStatus) -> i32 {
    use pb::MilestoneStatus as P;
    (match s {
        MilestoneStatus::Planned => P::Planned,
        MilestoneStatus::Due => P::Due,
        MilestoneStatus::Invoiced => P::Invoiced,
        MilestoneStatus::Overdue => P::Overdue,
        MilestoneStatus::Paid => P::Paid,
        MilestoneStatus::Cancelled => P::Cancelled,
    }) as i32
}

/// `None` for UNSPECIFIED (any).
pub fn milestone_status(
    value: i32,
    field: &str,
) -> Result<Option<MilestoneStatus>, FieldViolation> {
    let p = pb::MilestoneStatus::try_from(value)
        .map_err(|_| FieldViolation::new(field, "unknown milestone status"))?;
    Ok(MilestoneStatus::ALL
        .into_iter()
        .find(|s| milestone_status_pb(*s) == p as i32))
}

pub fn role_pb(r: Role) -> i32 {
    use common::Role as P;
    (match r {
        Role::Sales => P::Sales,
        Role::Solution => P::Solution,
        Role::Delivery => P::Delivery,
        Role::Service => P::Service,
        Role::Finance => P::Finance,
        Role::Legal => P::Legal,
        Role::Manager => P::Manager,
        Role::Admin => P::Admin,
        Role::Integration => P::Integration,
        Role::Internal => P::Internal,
    }) as i32
}

pub fn role(value: i32, field: &str) -> Result<Role, FieldViolation> {
    Role::ALL
        .into_iter()
        .find(|r| role_pb(*r) == value)
        .ok_or_else(|| FieldViolation::new(field, "a known role is required"))
}

pub fn decision(value: i32) -> Result<domain::Decision, FieldViolation> {
    match common::ApprovalDecision::try_from(value) {
        Ok(common::ApprovalDecision::Approve) => Ok(domain::Decision::Approve),
        Ok(common::ApprovalDecision::Reject) => Ok(domain::Decision::Reject),
        _ => Err(FieldViolation::new(
            "decision",
            "required: APPROVAL_DECISION_APPROVE or APPROVAL_DECISION_REJECT",
        )),
    }
}

pub fn outcome(value: i32) -> Result<SignatureOutcome, FieldViolation> {
    match pb::SignatureOutcome::try_from(value) {
        Ok(pb::SignatureOutcome::Signed) => Ok(SignatureOutcome::Signed),
        Ok(pb::SignatureOutcome::Declined) => Ok(SignatureOutcome::Declined),
        _ => Err(FieldViolation::new(
            "outcome",
            "required: SIGNATURE_OUTCOME_SIGNED or SIGNATURE_OUTCOME_DECLINED",
        )),
    }
}

fn outcome_pb(o: Option<SignatureOutcome>) -> i32 {
    (match o {
        None => pb::SignatureOutcome::Unspecified,
        Some(SignatureOutcome::Signed) => pb::SignatureOutcome::Signed,
        Some(SignatureOutcome::Declined) => pb::SignatureOutcome::Declined,
    }) as i32
}

// ---- values

fn check(v: &mut Vec<FieldViolation>, r: Result<(), FieldViolation>) {
    if let Err(e) = r {
        v.push(e);
    }
}

/// A money value's form (currency, nanos); its bounds are the domain's.
pub fn money(m: &common::Money, field: &str, v: &mut Vec<FieldViolation>) -> Option<Money> {
    match fields::money(m, field) {
        Ok(()) => Some(Money::new(m.currency_code.clone(), m.units, m.nanos)),
        Err(e) => {
            v.push(e);
            None
        }
    }
}

pub fn money_pb(m: &Money) -> common::Money {
    common::Money {
        currency_code: m.currency.clone(),
        units: m.units,
        nanos: m.nanos,
    }
}

pub fn date(d: &common::Date, field: &str) -> Result<Date, FieldViolation> {
    Date::new(d.year, d.month, d.day)
        .ok_or_else(|| FieldViolation::new(field, "not a valid calendar date"))
}

pub fn date_pb(d: Date) -> common::Date {
    common::Date {
        year: d.year,
        month: i32::from(d.month),
        day: i32::from(d.day),
    }
}

fn required_text(value: &str, field: &str, max: usize, v: &mut Vec<FieldViolation>) {
    if value.trim().is_empty() {
        v.push(FieldViolation::new(field, "required"));
    } else {
        check(v, fields::text(value, field, max, Lines::Single));
    }
}

// ---- drafts

fn line(l: &pb::LineItem, i: usize, v: &mut Vec<FieldViolation>) -> Option<LineInput> {
    let field = format!("contract.lines[{i}]");
    required_text(&l.item, &format!("{field}.item"), fields::MAX_NAME_CHARS, v);
    let price = match &l.unit_price {
        Some(p) => money(p, &format!("{field}.unit_price"), v),
        None => {
            v.push(FieldViolation::new(
                format!("{field}.unit_price"),
                "required",
            ));
            None
        }
    };
    let discount = match u8::try_from(l.discount_percent).ok().filter(|d| *d <= 100) {
        Some(d) => Some(d),
        None => {
            v.push(FieldViolation::new(
                format!("{field}.discount_percent"),
                "must be 0 to 100",
            ));
            None
        }
    };
    Some(LineInput {
        item: l.item.trim().to_owned(),
        quantity: l.quantity,
        unit_price: price?,
        discount_percent: discount?,
    })
}

fn milestone(
    m: &pb::PaymentMilestone,
    i: usize,
    v: &mut Vec<FieldViolation>,
) -> Option<MilestoneInput> {
    let field = format!("contract.milestones[{i}]");
    required_text(&m.name, &format!("{field}.name"), fields::MAX_NAME_CHARS, v);
    let due = match &m.due_date {
        Some(d) => date(d, &format!("{field}.due_date"))
            .map_err(|e| v.push(e))
            .ok(),
        None => {
            v.push(FieldViolation::new(format!("{field}.due_date"), "required"));
            None
        }
    };
    let share = match &m.share {
        Some(pb::payment_milestone::Share::FixedAmount(a)) => {
            money(a, &format!("{field}.fixed_amount"), v).map(Share::Amount)
        }
        Some(pb::payment_milestone::Share::Percent(p)) => {
            match u8::try_from(*p).ok().filter(|p| (1..=100).contains(p)) {
                Some(p) => Some(Share::Percent(p)),
                None => {
                    v.push(FieldViolation::new(
                        format!("{field}.percent"),
                        "must be 1 to 100",
                    ));
                    None
                }
            }
        }
        None => {
            v.push(FieldViolation::new(
                format!("{field}.share"),
                "required: fixed_amount or percent",
            ));
            None
        }
    };
    Some(MilestoneInput {
        name: m.name.trim().to_owned(),
        due_date: due?,
        share: share?,
    })
}

fn term(t: &pb::Term, v: &mut Vec<FieldViolation>) -> Option<Term> {
    let start = match &t.start_date {
        Some(d) => date(d, "contract.term.start_date")
            .map_err(|e| v.push(e))
            .ok(),
        None => {
            v.push(FieldViolation::new("contract.term.start_date", "required"));
            None
        }
    };
    let end = match &t.end_date {
        Some(d) => date(d, "contract.term.end_date")
            .map_err(|e| v.push(e))
            .ok(),
        None => {
            v.push(FieldViolation::new("contract.term.end_date", "required"));
            None
        }
    };
    Some(Term {
        start: start?,
        end: end?,
    })
}

/// The most special requirements a contract has.
pub const MAX_REQUIREMENTS: usize = 50;

/// The paths UpdateContract changes.
pub const UPDATE_PATHS: &[&str] = &[
    "title",
    "currency_code",
    "lines",
    "term",
    "milestones",
    "scope_of_work",
    "workload_person_days",
    "special_requirements",
];

/// The draft fields a client sent: on creation every field given, on an
/// update the `paths` of the mask (empty mask: every field that is set).
pub fn draft_patch(
    c: &pb::Contract,
    paths: Option<&[String]>,
) -> Result<DraftPatch, Vec<FieldViolation>> {
    let mut v = Vec::new();
    let wanted = |path: &str, set: bool| match paths {
        Some(paths) if !paths.is_empty() => paths.iter().any(|p| p == path),
        _ => set,
    };
    let mut patch = DraftPatch::default();
    if wanted("title", !c.title.is_empty()) {
        check(
            &mut v,
            fields::text(
                &c.title,
                "contract.title",
                fields::MAX_NAME_CHARS,
                Lines::Single,
            ),
        );
        patch.title = Some(c.title.trim().to_owned());
    }
    if wanted("currency_code", !c.currency_code.is_empty()) {
        if fields::is_currency(&c.currency_code) {
            patch.currency = Some(c.currency_code.clone());
        } else {
            v.push(FieldViolation::new(
                "contract.currency_code",
                "an ISO 4217 currency code is required",
            ));
        }
    }
    if wanted("lines", !c.lines.is_empty()) {
        if c.lines.len() > domain::MAX_LINES {
            v.push(FieldViolation::new(
                "contract.lines",
                format!("at most {} lines", domain::MAX_LINES),
            ));
        } else {
            let lines: Vec<Option<LineInput>> = c
                .lines
                .iter()
                .enumerate()
                .map(|(i, l)| line(l, i, &mut v))
                .collect();
            patch.lines = lines.into_iter().collect();
        }
    }
    if wanted("term", c.term.is_some()) {
        patch.term = Some(c.term.as_ref().and_then(|t| term(t, &mut v)));
    }
    if wanted("milestones", !c.milestones.is_empty()) {
        if c.milestones.len() > domain::MAX_MILESTONES {
            v.push(FieldViolation::new(
                "contract.milestones",
                format!("at most {} milestones", domain::MAX_MILESTONES),
            ));
        } else {
            let ms: Vec<Option<MilestoneInput>> = c
                .milestones
                .iter()
                .enumerate()
                .map(|(i, m)| milestone(m, i, &mut v))
                .collect();
            patch.milestones = ms.into_iter().collect();
        }
    }
    if wanted("scope_of_work", !c.scope_of_work.is_empty()) {
        check(
            &mut v,
            fields::text(
                &c.scope_of_work,
                "contract.scope_of_work",
                fields::MAX_NOTES_CHARS,
                Lines::Multi,
            ),
        );
        patch.scope_of_work = Some(c.scope_of_work.trim().to_owned());
    }
    if wanted("workload_person_days", c.workload_person_days != 0) {
        if (0..=1_000_000).contains(&c.workload_person_days) {
            patch.workload_person_days = Some(c.workload_person_days);
        } else {
            v.push(FieldViolation::new(
                "contract.workload_person_days",
                "must be 0 to 1,000,000",
            ));
        }
    }
    if wanted("special_requirements", !c.special_requirements.is_empty()) {
        if c.special_requirements.len() > MAX_REQUIREMENTS {
            v.push(FieldViolation::new(
                "contract.special_requirements",
                format!("at most {MAX_REQUIREMENTS} requirements"),
            ));
        } else {
            let mut reqs = Vec::new();
            for (i, r) in c.special_requirements.iter().enumerate() {
                let field = format!("contract.special_requirements[{i}]");
                if r.description.trim().is_empty() {
                    v.push(FieldViolation::new(
                        format!("{field}.description"),
                        "required",
                    ));
                }
                check(
                    &mut v,
                    fields::text(
                        &r.description,
                        &format!("{field}.description"),
                        2000,
                        Lines::Multi,
                    ),
                );
                match u32::try_from(r.due_within_days).ok().filter(|d| *d <= 3650) {
                    Some(days) => reqs.push(SpecialRequirement {
                        description: r.description.trim().to_owned(),
                        due_within_days: days,
                    }),
                    None => v.push(FieldViolation::new(
                        format!("{field}.due_within_days"),
                        "must be 0 to 3650",
                    )),
                }
            }
            patch.special_requirements = Some(reqs);
        }
    }
    if v.is_empty() { Ok(patch) } else { Err(v) }
}

// ---- the opportunity, as the opportunities service answered

/// The most key contacts kept on a contract.
pub const MAX_KEY_CONTACTS: usize = 50;

fn decision_role_name(value: i32) -> String {
    opp::DecisionRole::try_from(value)
        .map(|r| r.as_str_name().to_owned())
        .unwrap_or_default()
}

/// What the contract keeps of the opportunity: its decision chain's
/// contacts (or, without a chain, the account's) as key contacts.
pub fn opportunity_facts(
    o: &opp::Opportunity,
    chain: &[opp::DecisionChainMember],
    contacts: &[opp::Contact],
) -> OpportunityFacts {
    let team = o.team.clone().unwrap_or_default();
    let amount = |m: &Option<common::Money>| {
        m.as_ref()
            .map(|m| Money::new(m.currency_code.clone(), m.units, m.nanos))
    };
    let reviewed = o
        .delivery_review
        .as_ref()
        .is_some_and(|r| r.status == opp::ApprovalStatus::Approved as i32);
    let by_id: BTreeMap<&str, &opp::Contact> =
        contacts.iter().map(|c| (c.id.as_str(), c)).collect();
    let contact = |id: &str, role: String| {
        let c = by_id.get(id);
        KeyContact {
            contact_id: id.to_owned(),
            name: c.map(|c| c.name.clone()).unwrap_or_default(),
            title: c.map(|c| c.title.clone()).unwrap_or_default(),
            phone: c.map(|c| c.phone.clone()).unwrap_or_default(),
            email: c.map(|c| c.email.clone()).unwrap_or_default(),
            decision_role: role,
        }
    };
    let key_contacts = if chain.is_empty() {
        contacts
            .iter()
            .map(|c| contact(&c.id, String::new()))
            .take(MAX_KEY_CONTACTS)
            .collect()
    } else {
        chain
            .iter()
            .map(|m| contact(&m.contact_id, decision_role_name(m.role)))
            .take(MAX_KEY_CONTACTS)
            .collect()
    };
    OpportunityFacts {
        id: o.id.clone(),
        account_id: o.account_id.clone(),
        name: o.name.clone(),
        won: o.stage == opp::Stage::Won as i32,
        team: Team {
            account_manager_id: team.account_manager_id,
            solution_manager_id: team.solution_manager_id,
            delivery_manager_id: team.delivery_manager_id,
            other_member_ids: team.other_member_ids,
        },
        amount: amount(&o.amount),
        reviewed: ReviewedScope {
            reviewed,
            quote: amount(&o.quote),
            workload_person_days: o.workload_person_days,
            solution_summary: o.solution_summary.clone(),
        },
        key_contacts,
    }
}

// ---- contracts out

fn line_pb(l: &domain::LineItem) -> pb::LineItem {
    pb::LineItem {
        item: l.item.clone(),
        quantity: l.quantity,
        unit_price: Some(money_pb(&l.unit_price)),
        discount_percent: i32::from(l.discount_percent),
        line_total: Some(money_pb(&l.line_total)),
    }
}

fn term_pb(t: &Term) -> pb::Term {
    pb::Term {
        start_date: Some(date_pb(t.start)),
        end_date: Some(date_pb(t.end)),
    }
}

pub fn milestone_pb(m: &Milestone, contract_id: &str, account_id: &str) -> pb::PaymentMilestone {
    pb::PaymentMilestone {
        id: m.id.clone(),
        etag: crm_rpc::etag(m.version),
        contract_id: contract_id.to_owned(),
        account_id: account_id.to_owned(),
        name: m.name.clone(),
        due_date: Some(date_pb(m.due_date)),
        share: Some(match &m.share {
            Share::Amount(a) => pb::payment_milestone::Share::FixedAmount(money_pb(a)),
            Share::Percent(p) => pb::payment_milestone::Share::Percent(i32::from(*p)),
        }),
        amount: Some(money_pb(&m.amount)),
        status: milestone_status_pb(m.status),
        erp_reference: m.erp_reference.clone(),
        invoice_time: fields::opt_timestamp(m.invoice_time),
        paid_time: fields::opt_timestamp(m.paid_time),
        overdue_time: fields::opt_timestamp(m.overdue_time),
    }
}

fn requirement_pb(r: &SpecialRequirement) -> pb::SpecialRequirement {
    pb::SpecialRequirement {
        description: r.description.clone(),
        due_within_days: i32::try_from(r.due_within_days).unwrap_or(i32::MAX),
    }
}

fn team_pb(t: &Team) -> pb::DealTeam {
    pb::DealTeam {
        account_manager_id: t.account_manager_id.clone(),
        solution_manager_id: t.solution_manager_id.clone(),
        delivery_manager_id: t.delivery_manager_id.clone(),
        other_member_ids: t.other_member_ids.clone(),
    }
}

fn contact_pb(k: &KeyContact) -> pb::KeyContact {
    pb::KeyContact {
        contact_id: k.contact_id.clone(),
        name: k.name.clone(),
        title: k.title.clone(),
        phone: k.phone.clone(),
        email: k.email.clone(),
        decision_role: k.decision_role.clone(),
    }
}

fn step_state_pb(s: StepState) -> i32 {
    use common::ApprovalStepState as P;
    (match s {
        StepState::Waiting => P::Waiting,
        StepState::Pending => P::Pending,
        StepState::Approved => P::Approved,
        StepState::Rejected => P::Rejected,
        StepState::Skipped => P::Skipped,
    }) as i32
}

/// Step `i` of an approval.
pub fn step_pb(a: &ContractApproval, i: usize) -> common::ApprovalStep {
    let step = a.steps.get(i);
    let info = a.info.get(i);
    let text =
        |f: fn(&crm_approvals::Step) -> &String| step.map(|s| f(s).clone()).unwrap_or_default();
    common::ApprovalStep {
        number: i32::try_from(i + 1).unwrap_or(i32::MAX),
        name: info.map(|i| i.name.clone()).unwrap_or_default(),
        role: step.map(|s| role_pb(s.role)).unwrap_or_default(),
        assignee_id: info.map(|i| i.assignee.clone()).unwrap_or_default(),
        state: step_state_pb(domain::step_state(a, i)),
        decision: match step.and_then(|s| s.decision) {
            Some(domain::Decision::Approve) => common::ApprovalDecision::Approve as i32,
            Some(domain::Decision::Reject) => common::ApprovalDecision::Reject as i32,
            None => 0,
        },
        decider_id: text(|s| &s.decider_id),
        on_behalf_of: text(|s| &s.on_behalf_of),
        comment: text(|s| &s.comment),
        start_time: fields::opt_timestamp(info.and_then(|i| i.start_time)),
        expected_time: fields::opt_timestamp(info.and_then(|i: &StepInfo| i.expected_time)),
        decide_time: fields::opt_timestamp(step.and_then(|s| s.decide_time)),
        overdue: info.is_some_and(|i| i.overdue),
    }
}

/// RFC 3339 in UTC, for the progress line.
fn rfc3339(micros: i64) -> String {
    let date = Date::of_micros(micros);
    let secs = micros.div_euclid(1_000_000).rem_euclid(86_400);
    format!(
        "{}T{:02}:{:02}:{:02}Z",
        date.iso(),
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

fn approval_pb(a: &ContractApproval) -> pb::ContractApproval {
    let pending = a.pending();
    let expected = pending.and_then(|(_, _, info)| info.expected_time);
    pb::ContractApproval {
        id: a.id.clone(),
        requester_id: a.requester_id.clone(),
        steps: (0..a.steps.len()).map(|i| step_pb(a, i)).collect(),
        progress: Some(common::ApprovalProgress {
            current_step: pending
                .map(|(i, _, _)| i32::try_from(i + 1).unwrap_or(i32::MAX))
                .unwrap_or_default(),
            total_steps: i32::try_from(a.steps.len()).unwrap_or(i32::MAX),
            current_step_name: pending
                .map(|(_, _, info)| info.name.clone())
                .unwrap_or_default(),
            current_role: pending.map(|(_, s, _)| role_pb(s.role)).unwrap_or_default(),
            expected_time: fields::opt_timestamp(expected),
            summary: domain::progress_summary(a, &expected.map(rfc3339).unwrap_or_default()),
        }),
        submit_time: Some(fields::timestamp(a.submit_time)),
    }
}

fn signature_pb(s: &Signature) -> pb::Signature {
    pb::Signature {
        provider: s.provider.clone(),
        envelope_id: s.envelope_id.clone(),
        sender_id: s.sender_id.clone(),
        send_time: Some(fields::timestamp(s.send_time)),
        outcome: outcome_pb(s.outcome),
        signer: s.signer.clone(),
        outcome_time: fields::opt_timestamp(s.outcome_time),
        decline_reason: s.decline_reason.clone(),
    }
}

pub fn contract_pb(c: &Contract) -> pb::Contract {
    pb::Contract {
        id: c.id.clone(),
        etag: crm_rpc::etag(c.version),
        opportunity_id: c.opportunity_id.clone(),
        account_id: c.account_id.clone(),
        owner_id: c.owner_id.clone(),
        title: c.title.clone(),
        currency_code: c.currency.clone(),
        lines: c.lines.iter().map(line_pb).collect(),
        total: Some(money_pb(&c.total)),
        term: c.term.as_ref().map(term_pb),
        milestones: c
            .milestones
            .iter()
            .map(|m| milestone_pb(m, &c.id, &c.account_id))
            .collect(),
        scope_of_work: c.scope_of_work.clone(),
        workload_person_days: c.workload_person_days,
        special_requirements: c.special_requirements.iter().map(requirement_pb).collect(),
        status: status_pb(c.status),
        version: c.contract_version,
        contract_family_id: c.family_id.clone(),
        previous_version_id: c.previous_version_id.clone(),
        approval: c.approval.as_ref().map(approval_pb),
        signature: c.signature.as_ref().map(signature_pb),
        team: Some(team_pb(&c.team)),
        key_contacts: c.key_contacts.iter().map(contact_pb).collect(),
        reviewed_scope: Some(pb::ReviewedScope {
            reviewed: c.reviewed_scope.reviewed,
            quote: c.reviewed_scope.quote.as_ref().map(money_pb),
            workload_person_days: c.reviewed_scope.workload_person_days,
            solution_summary: c.reviewed_scope.solution_summary.clone(),
        }),
        scope_changes: domain::scope_changes(c)
            .into_iter()
            .map(str::to_owned)
            .collect(),
        termination_reason: c.termination_reason.clone(),
        in_force: c.status.in_force(),
        create_time: Some(fields::timestamp(c.create_time)),
        update_time: Some(fields::timestamp(c.update_time)),
        creator: c.creator.clone(),
        updater: c.updater.clone(),
    }
}

/// What delivery is handed when the contract is signed.
pub fn handover_pb(c: &Contract) -> pb::HandoverPackage {
    pb::HandoverPackage {
        contract_id: c.id.clone(),
        contract_version: c.contract_version,
        contract_family_id: c.family_id.clone(),
        opportunity_id: c.opportunity_id.clone(),
        account_id: c.account_id.clone(),
        lines: c.lines.iter().map(line_pb).collect(),
        total: Some(money_pb(&c.total)),
        term: c.term.as_ref().map(term_pb),
        scope_of_work: c.scope_of_work.clone(),
        workload_person_days: c.workload_person_days,
        special_requirements: c.special_requirements.iter().map(requirement_pb).collect(),
        milestones: c
            .milestones
            .iter()
            .map(|m| milestone_pb(m, &c.id, &c.account_id))
            .collect(),
        key_contacts: c.key_contacts.iter().map(contact_pb).collect(),
        team: Some(team_pb(&c.team)),
        sign_time: fields::opt_timestamp(c.signature.as_ref().and_then(|s| s.outcome_time)),
    }
}

// ---- configuration

pub fn config_pb(
    c: &ContractsConfig,
    version: i64,
    update_time: Option<i64>,
    updater: &str,
) -> pb::ContractsConfig {
    pb::ContractsConfig {
        etag: crm_rpc::etag(version),
        approval_chain: c.approval_chain.iter().map(|r| role_pb(*r)).collect(),
        large_total_thresholds: c.large_total_thresholds.iter().map(money_pb).collect(),
        deep_discount_percent: i32::from(c.deep_discount_percent),
        step_expected_working_days: i32::from(c.step_expected_working_days),
        renewal_notice_days: i32::from(c.renewal_notice_days),
        allow_repeat_deciders: c.approval_policy.allow_repeat_deciders,
        oa_subjects: c.approval_policy.integration_subjects.clone(),
        approvers: c
            .approval_policy
            .approvers
            .iter()
            .map(|(person, roles)| common::Approver {
                person_id: person.clone(),
                roles: roles.iter().map(|r| role_pb(*r)).collect(),
            })
            .collect(),
        update_time: fields::opt_timestamp(update_time),
        updater: updater.to_owned(),
    }
}

/// The most OA integrations and approvers a configuration lists.
const MAX_OA_SUBJECTS: usize = 20;
const MAX_APPROVERS: usize = 1000;

pub fn config(c: &pb::ContractsConfig) -> Result<ContractsConfig, Vec<FieldViolation>> {
    let mut v = Vec::new();
    let chain: Vec<Role> = c
        .approval_chain
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            role(*r, &format!("config.approval_chain[{i}]"))
                .map_err(|e| v.push(e))
                .ok()
        })
        .collect();
    let thresholds: Vec<Money> = c
        .large_total_thresholds
        .iter()
        .enumerate()
        .filter_map(|(i, m)| money(m, &format!("config.large_total_thresholds[{i}]"), &mut v))
        .collect();
    if c.oa_subjects.len() > MAX_OA_SUBJECTS {
        v.push(FieldViolation::new(
            "config.oa_subjects",
            format!("at most {MAX_OA_SUBJECTS}"),
        ));
    }
    for (i, s) in c.oa_subjects.iter().enumerate() {
        check(
            &mut v,
            crm_rpc::required_id(s, &format!("config.oa_subjects[{i}]")),
        );
    }
    if c.approvers.len() > MAX_APPROVERS {
        v.push(FieldViolation::new(
            "config.approvers",
            format!("at most {MAX_APPROVERS}"),
        ));
    }
    let mut approvers = BTreeMap::new();
    for (i, a) in c.approvers.iter().take(MAX_APPROVERS).enumerate() {
        let field = format!("config.approvers[{i}]");
        check(
            &mut v,
            crm_rpc::required_id(&a.person_id, &format!("{field}.person_id")),
        );
        if a.roles.is_empty() || a.roles.len() > 10 {
            v.push(FieldViolation::new(
                format!("{field}.roles"),
                "1 to 10 roles",
            ));
        }
        let roles: Vec<Role> = a
            .roles
            .iter()
            .enumerate()
            .filter_map(|(j, r)| {
                role(*r, &format!("{field}.roles[{j}]"))
                    .map_err(|e| v.push(e))
                    .ok()
            })
            .collect();
        if approvers.insert(a.person_id.clone(), roles).is_some() {
            v.push(FieldViolation::new(
                format!("{field}.person_id"),
                "one entry per person",
            ));
        }
    }
    let small = |value: i32, field: &str, v: &mut Vec<FieldViolation>| -> u16 {
        u16::try_from(value).unwrap_or_else(|_| {
            v.push(FieldViolation::new(field, "out of range"));
            0
        })
    };
    let defaults = ContractsConfig::default();
    let step_days = match c.step_expected_working_days {
        0 => defaults.step_expected_working_days,
        n => u8::try_from(n).unwrap_or(0),
    };
    let renewal = match c.renewal_notice_days {
        0 => defaults.renewal_notice_days,
        n => small(n, "config.renewal_notice_days", &mut v),
    };
    let deep = u8::try_from(c.deep_discount_percent).unwrap_or(u8::MAX);
    let config = ContractsConfig {
        approval_chain: if chain.is_empty() && c.approval_chain.is_empty() {
            defaults.approval_chain
        } else {
            chain
        },
        large_total_thresholds: thresholds,
        deep_discount_percent: deep,
        step_expected_working_days: step_days,
        renewal_notice_days: renewal,
        approval_policy: crm_approvals::Policy {
            allow_repeat_deciders: c.allow_repeat_deciders,
            integration_subjects: c.oa_subjects.clone(),
            approvers,
        },
    };
    if let Err(bad) = config.check() {
        v.extend(bad.into_iter().map(field_violation));
    }
    if v.is_empty() { Ok(config) } else { Err(v) }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn the_configuration_round_trips_and_unset_numbers_take_the_defaults() {
        let defaults = ContractsConfig::default();
        let message = config_pb(&defaults, 0, None, "");
        assert_eq!(config(&message).unwrap(), defaults);
        let sparse = pb::ContractsConfig {
            approval_chain: vec![common::Role::Legal as i32],
            ..Default::default()
        };
        let read = config(&sparse).unwrap();
        assert_eq!(read.approval_chain, [Role::Legal]);
        assert_eq!(
            (read.step_expected_working_days, read.renewal_notice_days),
            (1, 60)
        );
        let bad = pb::ContractsConfig {
            approval_chain: vec![common::Role::Sales as i32],
            approvers: vec![
                common::Approver {
                    person_id: "wang".into(),
                    roles: vec![common::Role::Manager as i32],
                },
                common::Approver {
                    person_id: "wang".into(),
                    roles: vec![common::Role::Finance as i32],
                },
            ],
            ..Default::default()
        };
        let fields: Vec<String> = config(&bad)
            .unwrap_err()
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(
            fields,
            ["config.approvers[1].person_id", "config.approval_chain[0]"]
        );
    }

    #[test]
    fn an_update_mask_names_what_changes_and_can_clear_the_term() {
        let c = pb::Contract {
            title: "New title".into(),
            ..Default::default()
        };
        let masked = draft_patch(&c, Some(&["term".to_owned()])).unwrap();
        assert_eq!(masked.term, Some(None));
        assert_eq!(masked.title, None, "not in the mask");
        let unmasked = draft_patch(&c, Some(&[])).unwrap();
        assert_eq!(
            (unmasked.title.as_deref(), unmasked.term),
            (Some("New title"), None)
        );
    }

    #[test]
    fn bad_lines_and_milestones_are_named_in_the_request() {
        let c = pb::Contract {
            lines: vec![pb::LineItem {
                item: String::new(),
                quantity: 1,
                unit_price: None,
                discount_percent: 101,
                line_total: None,
            }],
            milestones: vec![pb::PaymentMilestone {
                name: "m".into(),
                due_date: Some(common::Date {
                    year: 2027,
                    month: 2,
                    day: 30,
                }),
                share: Some(pb::payment_milestone::Share::Percent(0)),
                ..Default::default()
            }],
            ..Default::default()
        };
        let fields: Vec<String> = draft_patch(&c, None)
            .unwrap_err()
            .into_iter()
            .map(|v| v.field)
            .collect();
        assert_eq!(
            fields,
            [
                "contract.lines[0].item",
                "contract.lines[0].unit_price",
                "contract.lines[0].discount_percent",
                "contract.milestones[0].due_date",
                "contract.milestones[0].percent"
            ]
        );
    }

    #[test]
    fn the_opportunity_gives_the_team_the_reviewed_scope_and_named_key_contacts() {
        let o = opp::Opportunity {
            id: "o1".into(),
            account_id: "a1".into(),
            stage: opp::Stage::Won as i32,
            team: Some(opp::Team {
                account_manager_id: "amy".into(),
                delivery_manager_id: "dora".into(),
                ..Default::default()
            }),
            quote: Some(common::Money {
                currency_code: "CNY".into(),
                units: 10,
                nanos: 0,
            }),
            workload_person_days: 5,
            delivery_review: Some(opp::DeliveryReview {
                approval_id: "r1".into(),
                status: opp::ApprovalStatus::Approved as i32,
            }),
            ..Default::default()
        };
        let chain = [opp::DecisionChainMember {
            contact_id: "k1".into(),
            role: opp::DecisionRole::DecisionMaker as i32,
            ..Default::default()
        }];
        let contacts = [opp::Contact {
            id: "k1".into(),
            name: "Li Lei".into(),
            ..Default::default()
        }];
        let facts = opportunity_facts(&o, &chain, &contacts);
        assert!(facts.won && facts.reviewed.reviewed);
        assert_eq!(facts.team.delivery_manager_id, "dora");
        assert_eq!(facts.reviewed.quote, Some(Money::new("CNY", 10, 0)));
        assert_eq!(
            (
                facts.key_contacts[0].name.as_str(),
                facts.key_contacts[0].decision_role.as_str()
            ),
            ("Li Lei", "DECISION_ROLE_DECISION_MAKER")
        );
    }
}
