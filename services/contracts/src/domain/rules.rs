//! The contract's status machine and its edits: creation from a won
//! opportunity, draft edits, sending for signature and its outcome,
//! termination, amendments and payments. Approvals are in `approval.rs`,
//! the timers in `timers.rs`.

use crm_types::{Actor, Change, Money, Role, Violation};

use super::error::{ContractError, resource};
use super::model::*;
use super::pricing;

type Result<T> = std::result::Result<T, ContractError>;

/// The last day of `term`, for the audit trail.
fn term_text(term: Option<&Term>) -> String {
    term.map(|t| format!("{}..{}", t.start.iso(), t.end.iso()))
        .unwrap_or_default()
}

pub fn check_etag(sent: &str, version: i64) -> Result<()> {
    if crm_types::Etag::matches(sent, u64::try_from(version).unwrap_or_default()) {
        Ok(())
    } else {
        Err(ContractError::Stale)
    }
}

/// Violations of the contract a request carries, named as its fields
/// (`contract.lines[0].quantity`).
fn under_contract(bad: Vec<Violation>) -> ContractError {
    ContractError::Invalid(
        bad.into_iter()
            .map(|v| Violation::new(format!("contract.{}", v.field), v.description))
            .collect(),
    )
}

fn check_term(term: Option<&Term>) -> Option<Violation> {
    term.filter(|t| t.end < t.start)
        .map(|_| Violation::new("term.end_date", "must not be before term.start_date"))
}

/// Prices the lines and milestones of `c` again after an edit.
fn reprice(
    c: &mut Contract,
    lines: &[LineInput],
    milestones: Option<&[MilestoneInput]>,
    ids: &mut impl FnMut() -> String,
) -> std::result::Result<(), Vec<Violation>> {
    let (priced, total) = pricing::price(&c.currency, lines)?;
    c.lines = priced;
    c.total = total;
    let inputs: Vec<MilestoneInput> = match milestones {
        Some(m) => m.to_vec(),
        None => c
            .milestones
            .iter()
            .map(|m| MilestoneInput {
                name: m.name.clone(),
                due_date: m.due_date,
                share: m.share.clone(),
            })
            .collect(),
    };
    c.milestones = pricing::milestones(&c.total, &inputs, ids)?;
    Ok(())
}

fn lines_input(c: &Contract) -> Vec<LineInput> {
    c.lines
        .iter()
        .map(|l| LineInput {
            item: l.item.clone(),
            quantity: l.quantity,
            unit_price: l.unit_price.clone(),
            discount_percent: l.discount_percent,
        })
        .collect()
}

/// A new draft contract made from a won opportunity by `actor`. Without
/// lines, one line is prefilled from the reviewed quote (or else the
/// amount); an empty scope and workload take the reviewed ones.
pub fn new_contract(
    facts: OpportunityFacts,
    patch: DraftPatch,
    actor: &Actor,
    tenant: &str,
    id: String,
    mut ids: impl FnMut() -> String,
    now: i64,
) -> Result<Contract> {
    if !facts.won {
        return Err(ContractError::precondition(
            "OPPORTUNITY_NOT_WON",
            format!("opportunity {} is not won", facts.id),
        ));
    }
    let basis = facts.reviewed.quote.clone().or(facts.amount.clone());
    let currency = patch
        .currency
        .clone()
        .filter(|c| !c.is_empty())
        .or_else(|| basis.as_ref().map(|m| m.currency.clone()))
        .ok_or_else(|| {
            ContractError::invalid(
                "contract.currency_code",
                "required: the opportunity has no quote or amount to take it from",
            )
        })?;
    let lines = match patch.lines.clone().filter(|l| !l.is_empty()) {
        Some(lines) => lines,
        None => match basis.filter(|b| b.currency == currency) {
            Some(quote) => vec![LineInput {
                item: "quote".into(),
                quantity: 1,
                unit_price: quote,
                discount_percent: 0,
            }],
            None => {
                return Err(ContractError::precondition(
                    "NO_QUOTE",
                    "the request has no lines and the opportunity no quote in the contract's currency to prefill them from",
                ));
            }
        },
    };
    // Sales own what they create; a manager creates for the account manager.
    let owner = if actor.has(Role::Sales) || facts.team.account_manager_id.is_empty() {
        actor.id.clone()
    } else {
        facts.team.account_manager_id.clone()
    };
    let title = patch
        .title
        .clone()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| facts.name.clone());
    let mut c = Contract {
        family_id: id.clone(),
        id,
        tenant: tenant.to_owned(),
        version: 1,
        opportunity_id: facts.id,
        account_id: facts.account_id,
        owner_id: owner,
        title,
        currency: currency.clone(),
        lines: Vec::new(),
        total: Money::new(currency, 0, 0),
        term: patch.term.flatten(),
        milestones: Vec::new(),
        scope_of_work: patch
            .scope_of_work
            .clone()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| facts.reviewed.solution_summary.clone()),
        workload_person_days: patch
            .workload_person_days
            .filter(|w| *w != 0)
            .unwrap_or(facts.reviewed.workload_person_days),
        special_requirements: patch.special_requirements.clone().unwrap_or_default(),
        status: Status::Draft,
        contract_version: 1,
        previous_version_id: String::new(),
        approval: None,
        signature: None,
        team: facts.team,
        key_contacts: facts.key_contacts,
        reviewed_scope: facts.reviewed,
        termination_reason: String::new(),
        renewal_due: None,
        create_time: now,
        update_time: now,
        creator: actor.id.clone(),
        updater: actor.id.clone(),
    };
    let mut bad: Vec<Violation> = check_term(c.term.as_ref()).into_iter().collect();
    if let Err(vs) = reprice(&mut c, &lines, patch.milestones.as_deref(), &mut ids) {
        bad.extend(vs);
    }
    if bad.is_empty() {
        Ok(c)
    } else {
        Err(under_contract(bad))
    }
}

/// Whether `actor` may change `c` (edit, submit, send, amend): its owner
/// (a sales user) or a manager.
pub fn check_owner(c: &Contract, actor: &Actor) -> Result<()> {
    if actor.has(Role::Manager) || (actor.has(Role::Sales) && c.owner_id == actor.id) {
        Ok(())
    } else {
        Err(ContractError::forbidden(
            "NOT_OWNER",
            "only the contract's owner or a manager changes it",
        ))
    }
}

fn require(c: &Contract, status: Status, reason: &'static str) -> Result<()> {
    if c.status == status {
        Ok(())
    } else {
        Err(ContractError::precondition(
            reason,
            format!("contract {} is {}, not {status}", c.id, c.status),
        ))
    }
}

fn touch(c: &mut Contract, actor: &str, now: i64) {
    c.version += 1;
    c.update_time = now;
    c.updater = actor.to_owned();
}

/// Applies a draft edit; returns what changed.
pub fn update_draft(
    c: &mut Contract,
    patch: DraftPatch,
    actor: &Actor,
    mut ids: impl FnMut() -> String,
    now: i64,
) -> Result<Vec<Change>> {
    check_owner(c, actor)?;
    require(c, Status::Draft, "NOT_DRAFT")?;
    let before = c.clone();
    if let Some(title) = patch.title {
        if title.is_empty() {
            return Err(ContractError::invalid(
                "contract.title",
                "must not be empty",
            ));
        }
        c.title = title;
    }
    if let Some(currency) = patch.currency {
        c.currency = currency;
    }
    if let Some(term) = patch.term {
        c.term = term;
    }
    if let Some(scope) = patch.scope_of_work {
        c.scope_of_work = scope;
    }
    if let Some(workload) = patch.workload_person_days {
        c.workload_person_days = workload;
    }
    if let Some(special) = patch.special_requirements {
        c.special_requirements = special;
    }
    let lines = patch.lines.unwrap_or_else(|| lines_input(c));
    let mut bad: Vec<Violation> = check_term(c.term.as_ref()).into_iter().collect();
    let currency_changed = before.currency != c.currency;
    let milestones = patch.milestones;
    // New milestone ids only when the milestones are replaced.
    if (milestones.is_some() || currency_changed || lines != lines_input(&before))
        && let Err(vs) = reprice(c, &lines, milestones.as_deref(), &mut ids)
    {
        bad.extend(vs);
    }
    if !bad.is_empty() {
        *c = before;
        return Err(under_contract(bad));
    }
    let changes: Vec<Change> = [
        Change::of("title", &before.title, &c.title),
        Change::of("currency_code", &before.currency, &c.currency),
        Change::of("total", &before.total, &c.total),
        Change::of("lines", before.lines.len(), c.lines.len()),
        Change::of(
            "term",
            term_text(before.term.as_ref()),
            term_text(c.term.as_ref()),
        ),
        Change::of("milestones", before.milestones.len(), c.milestones.len()),
        Change::of("scope_of_work", &before.scope_of_work, &c.scope_of_work),
        Change::of(
            "workload_person_days",
            before.workload_person_days,
            c.workload_person_days,
        ),
        Change::of(
            "special_requirements",
            before.special_requirements.len(),
            c.special_requirements.len(),
        ),
    ]
    .into_iter()
    .flatten()
    .collect();
    // Lines or milestones may change without their counts or the total.
    let changed = !changes.is_empty()
        || before.lines != c.lines
        || before.milestones != c.milestones
        || before.special_requirements != c.special_requirements;
    if changed {
        touch(c, &actor.id, now);
    }
    Ok(changes)
}

/// Scope control (seed 003): what differs from what the team's delivery
/// manager reviewed on the opportunity. Not empty: a delivery review goes
/// first in the chain.
pub fn scope_changes(c: &Contract) -> Vec<&'static str> {
    let r = &c.reviewed_scope;
    if !r.reviewed {
        return vec!["no_review"];
    }
    let mut changes = Vec::new();
    if r.quote.as_ref() != Some(&c.total) {
        changes.push("total");
    }
    if r.workload_person_days != c.workload_person_days {
        changes.push("workload_person_days");
    }
    if r.solution_summary.trim() != c.scope_of_work.trim() {
        changes.push("scope_of_work");
    }
    changes
}

/// approved -> sent_for_signature.
pub fn send_for_signature(
    c: &mut Contract,
    actor: &Actor,
    provider: &str,
    envelope_id: &str,
    now: i64,
) -> Result<()> {
    if !actor.has(Role::Integration) {
        check_owner(c, actor)?;
    }
    require(c, Status::Approved, "NOT_APPROVED")?;
    c.status = Status::SentForSignature;
    c.signature = Some(Signature {
        provider: provider.to_owned(),
        envelope_id: envelope_id.to_owned(),
        sender_id: actor.id.clone(),
        send_time: now,
        outcome: None,
        signer: String::new(),
        outcome_time: None,
        decline_reason: String::new(),
    });
    touch(c, &actor.id, now);
    Ok(())
}

/// What a signature callback did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// The same outcome was recorded before: nothing changed.
    Repeat,
    Signed,
    Declined,
}

/// The provider's callback: signed (-> signed; milestones become due, the
/// renewal notice is scheduled) or declined (-> approved, with the reason).
pub fn record_signature(
    c: &mut Contract,
    actor: &Actor,
    envelope_id: &str,
    outcome: SignatureOutcome,
    signer: &str,
    time: i64,
    decline_reason: &str,
    renewal_notice_days: u16,
    now: i64,
) -> Result<Recorded> {
    let Some(signature) = c.signature.as_mut() else {
        return Err(ContractError::precondition(
            "NOT_SENT_FOR_SIGNATURE",
            format!("contract {} was never sent for signature", c.id),
        ));
    };
    if signature.envelope_id != envelope_id {
        return Err(ContractError::precondition(
            "ENVELOPE_MISMATCH",
            "the envelope is not the one the contract was sent in",
        ));
    }
    // Providers retry callbacks: a repeat of the recorded outcome is a no-op.
    if signature.outcome == Some(outcome)
        && (outcome == SignatureOutcome::Declined || c.status != Status::SentForSignature)
    {
        return Ok(Recorded::Repeat);
    }
    if c.status != Status::SentForSignature {
        return Err(ContractError::precondition(
            "NOT_SENT_FOR_SIGNATURE",
            format!("contract {} is {}", c.id, c.status),
        ));
    }
    if outcome == SignatureOutcome::Declined && decline_reason.trim().is_empty() {
        return Err(ContractError::invalid(
            "decline_reason",
            "required for a decline",
        ));
    }
    signature.outcome = Some(outcome);
    signature.signer = signer.to_owned();
    signature.outcome_time = Some(time);
    signature.decline_reason = decline_reason.trim().to_owned();
    let done = match outcome {
        SignatureOutcome::Signed => {
            c.status = Status::Signed;
            for m in &mut c.milestones {
                m.status = MilestoneStatus::Due;
                m.version += 1;
            }
            c.renewal_due = c
                .term
                .map(|t| t.end.plus_days(-i64::from(renewal_notice_days)));
            Recorded::Signed
        }
        SignatureOutcome::Declined => {
            c.status = Status::Approved;
            Recorded::Declined
        }
    };
    touch(c, &actor.id, now);
    Ok(done)
}

/// The version `amendment` replaces, once the amendment is signed: its
/// milestones are cancelled, and what ERP recorded on them (an invoice, a
/// payment, an overdue finding) carries over to the amendment's milestone
/// of the same name, due date and amount, so each payment is owed and
/// counted once, under the version in force.
pub fn supersede(old: &mut Contract, amendment: &mut Contract, actor: &str, now: i64) -> bool {
    if !old.status.in_force() {
        return false;
    }
    for m in &mut old.milestones {
        let recorded = matches!(
            m.status,
            MilestoneStatus::Invoiced | MilestoneStatus::Overdue | MilestoneStatus::Paid
        );
        if recorded
            && let Some(next) = amendment.milestones.iter_mut().find(|n| {
                n.status == MilestoneStatus::Due
                    && n.name == m.name
                    && n.due_date == m.due_date
                    && n.amount == m.amount
            })
        {
            next.status = m.status;
            next.erp_reference = m.erp_reference.clone();
            next.invoice_time = m.invoice_time;
            next.paid_time = m.paid_time;
            next.overdue_time = m.overdue_time;
            next.version += 1;
        }
        m.status = MilestoneStatus::Cancelled;
        m.version += 1;
    }
    old.status = Status::Superseded;
    old.renewal_due = None;
    touch(old, actor, now);
    true
}

/// signed | active -> terminated, by a manager with a reason.
pub fn terminate(c: &mut Contract, actor: &Actor, reason: &str, now: i64) -> Result<()> {
    if reason.trim().is_empty() {
        return Err(ContractError::invalid("reason", "required"));
    }
    if !c.status.in_force() {
        return Err(ContractError::precondition(
            "NOT_IN_FORCE",
            format!("contract {} is {}", c.id, c.status),
        ));
    }
    c.status = Status::Terminated;
    c.termination_reason = reason.trim().to_owned();
    c.renewal_due = None;
    touch(c, &actor.id, now);
    Ok(())
}

/// A new draft version amending `c` (signed or active). `open` is the
/// family's open amendment, if any.
pub fn amend(
    c: &Contract,
    actor: &Actor,
    open: Option<&Contract>,
    id: String,
    mut ids: impl FnMut() -> String,
    now: i64,
) -> Result<Contract> {
    check_owner(c, actor)?;
    if !c.status.in_force() {
        return Err(ContractError::precondition(
            "NOT_IN_FORCE",
            format!(
                "only a signed or active contract is amended; {} is {}",
                c.id, c.status
            ),
        ));
    }
    if let Some(open) = open {
        return Err(ContractError::precondition(
            "AMENDMENT_IN_PROGRESS",
            format!("amendment {} is not signed yet", open.id),
        ));
    }
    let mut next = c.clone();
    next.id = id;
    next.version = 1;
    next.contract_version = c.contract_version + 1;
    next.previous_version_id = c.id.clone();
    next.status = Status::Draft;
    next.approval = None;
    next.signature = None;
    next.renewal_due = None;
    next.termination_reason = String::new();
    for m in &mut next.milestones {
        m.id = ids();
        m.version = 1;
        m.status = MilestoneStatus::Planned;
        m.erp_reference = String::new();
        m.invoice_time = None;
        m.paid_time = None;
        m.overdue_time = None;
    }
    next.create_time = now;
    next.update_time = now;
    next.creator = actor.id.clone();
    next.updater = actor.id.clone();
    Ok(next)
}

/// ERP's invoice or payment of milestone `id`.
pub fn record_payment(
    c: &mut Contract,
    milestone_id: &str,
    etag: &str,
    status: MilestoneStatus,
    reference: &str,
    time: i64,
    actor: &Actor,
    now: i64,
) -> Result<Milestone> {
    let contract_id = c.id.clone();
    let m = c
        .milestones
        .iter_mut()
        .find(|m| m.id == milestone_id)
        .ok_or_else(|| ContractError::not_found(resource::MILESTONE, milestone_id))?;
    check_etag(etag, m.version)?;
    if matches!(
        m.status,
        MilestoneStatus::Planned | MilestoneStatus::Cancelled
    ) {
        return Err(ContractError::precondition(
            "NOT_RECEIVABLE",
            format!(
                "contract {contract_id} is not signed, or was superseded: nothing is owed on this milestone"
            ),
        ));
    }
    match (status, m.status) {
        (_, MilestoneStatus::Paid) => {
            return Err(ContractError::precondition(
                "ALREADY_PAID",
                "the milestone is paid",
            ));
        }
        (MilestoneStatus::Invoiced, MilestoneStatus::Invoiced) => {
            return Err(ContractError::precondition(
                "ALREADY_INVOICED",
                "the milestone is invoiced",
            ));
        }
        (MilestoneStatus::Invoiced, _) => {
            // An overdue milestone stays overdue until paid.
            if m.status == MilestoneStatus::Due {
                m.status = MilestoneStatus::Invoiced;
            }
            m.invoice_time = Some(time);
        }
        (MilestoneStatus::Paid, _) => {
            m.status = MilestoneStatus::Paid;
            m.paid_time = Some(time);
        }
        _ => {
            return Err(ContractError::invalid(
                "status",
                "must be MILESTONE_STATUS_INVOICED or MILESTONE_STATUS_PAID",
            ));
        }
    }
    m.erp_reference = reference.to_owned();
    m.version += 1;
    let done = m.clone();
    touch(c, &actor.id, now);
    Ok(done)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::domain::testing::*;
    use crm_types::Date;

    #[test]
    fn a_contract_needs_a_won_opportunity_and_prefills_from_its_quote() {
        let mut facts = facts();
        facts.won = false;
        let err = new_contract(
            facts,
            DraftPatch::default(),
            &sales(),
            "t",
            "c1".into(),
            ids(),
            0,
        )
        .unwrap_err();
        assert!(matches!(
            err,
            ContractError::Precondition("OPPORTUNITY_NOT_WON", _)
        ));
        let c = draft();
        assert_eq!(c.lines.len(), 1);
        assert_eq!(c.total, Money::new("CNY", 100_000, 0));
        assert_eq!((c.owner_id.as_str(), c.status), ("amy", Status::Draft));
        assert_eq!(c.scope_of_work, "ERP rollout");
        assert!(scope_changes(&c).is_empty(), "{:?}", scope_changes(&c));
    }

    #[test]
    fn a_manager_creates_for_the_account_manager() {
        let c = new_contract(
            facts(),
            DraftPatch::default(),
            &manager(),
            "t",
            "c1".into(),
            ids(),
            0,
        )
        .unwrap();
        assert_eq!(c.owner_id, "amy");
    }

    #[test]
    fn only_drafts_are_edited_by_their_owner_and_scope_changes_are_seen() {
        let mut c = draft();
        let patch = DraftPatch {
            workload_person_days: Some(45),
            ..DraftPatch::default()
        };
        let err =
            update_draft(&mut c.clone(), patch.clone(), &other_sales(), ids(), 1).unwrap_err();
        assert!(matches!(err, ContractError::Forbidden("NOT_OWNER", _)));
        let changes = update_draft(&mut c, patch.clone(), &sales(), ids(), 1).unwrap();
        assert_eq!(changes[0].field, "workload_person_days");
        assert_eq!(c.version, 2);
        assert_eq!(scope_changes(&c), ["workload_person_days"]);
        c.status = Status::InApproval;
        let err = update_draft(&mut c, patch, &sales(), ids(), 2).unwrap_err();
        assert!(matches!(err, ContractError::Precondition("NOT_DRAFT", _)));
    }

    #[test]
    fn a_refused_edit_leaves_the_draft_as_it_was() {
        let mut c = draft();
        let before = c.clone();
        let patch = DraftPatch {
            milestones: Some(vec![MilestoneInput {
                name: "all".into(),
                due_date: Date::new(2027, 1, 1).unwrap(),
                share: Share::Percent(50),
            }]),
            ..DraftPatch::default()
        };
        let err = update_draft(&mut c, patch, &sales(), ids(), 1).unwrap_err();
        assert!(
            matches!(err, ContractError::Invalid(ref v) if v[0].field == "contract.milestones")
        );
        assert_eq!(c, before);
    }

    #[test]
    fn signing_makes_milestones_due_and_a_decline_returns_to_approved() {
        let mut c = ready();
        c.status = Status::Approved;
        send_for_signature(&mut c, &sales(), "esign", "env-1", 1).unwrap();
        let oa = Actor::new("esign-bridge", vec![Role::Integration]);
        let declined = record_signature(
            &mut c,
            &oa,
            "env-1",
            SignatureOutcome::Declined,
            "li",
            2,
            "price",
            60,
            2,
        )
        .unwrap();
        assert_eq!((declined, c.status), (Recorded::Declined, Status::Approved));
        send_for_signature(&mut c, &sales(), "esign", "env-2", 3).unwrap();
        let err = record_signature(
            &mut c,
            &oa,
            "env-1",
            SignatureOutcome::Signed,
            "li",
            4,
            "",
            60,
            4,
        )
        .unwrap_err();
        assert!(matches!(
            err,
            ContractError::Precondition("ENVELOPE_MISMATCH", _)
        ));
        let signed = record_signature(
            &mut c,
            &oa,
            "env-2",
            SignatureOutcome::Signed,
            "li",
            4,
            "",
            60,
            4,
        )
        .unwrap();
        assert_eq!((signed, c.status), (Recorded::Signed, Status::Signed));
        assert_eq!(c.milestones[0].status, MilestoneStatus::Due);
        assert_eq!(c.renewal_due, Some(Date::new(2027, 11, 1).unwrap()));
        let again = record_signature(
            &mut c,
            &oa,
            "env-2",
            SignatureOutcome::Signed,
            "li",
            4,
            "",
            60,
            5,
        )
        .unwrap();
        assert_eq!(again, Recorded::Repeat);
    }

    #[test]
    fn payments_move_milestones_forward_only() {
        let mut c = draft();
        c.milestones = pricing::milestones(
            &c.total,
            &[MilestoneInput {
                name: "all".into(),
                due_date: Date::new(2027, 1, 1).unwrap(),
                share: Share::Percent(100),
            }],
            ids(),
        )
        .unwrap();
        let erp = Actor::new("erp", vec![Role::Integration]);
        let id = c.milestones[0].id.clone();
        let err =
            record_payment(&mut c, &id, "", MilestoneStatus::Paid, "r", 1, &erp, 1).unwrap_err();
        assert!(matches!(
            err,
            ContractError::Precondition("NOT_RECEIVABLE", _)
        ));
        c.milestones[0].status = MilestoneStatus::Due;
        let m = record_payment(
            &mut c,
            &id,
            "",
            MilestoneStatus::Invoiced,
            "inv-1",
            1,
            &erp,
            1,
        )
        .unwrap();
        assert_eq!(m.status, MilestoneStatus::Invoiced);
        let m =
            record_payment(&mut c, &id, "", MilestoneStatus::Paid, "pay-1", 2, &erp, 2).unwrap();
        assert_eq!(
            (m.status, m.erp_reference.as_str()),
            (MilestoneStatus::Paid, "pay-1")
        );
        let err =
            record_payment(&mut c, &id, "", MilestoneStatus::Paid, "r", 3, &erp, 3).unwrap_err();
        assert!(matches!(
            err,
            ContractError::Precondition("ALREADY_PAID", _)
        ));
    }

    #[test]
    fn a_signed_amendment_cancels_the_old_milestones_and_keeps_what_erp_recorded() {
        let mut old = ready();
        old.status = Status::Active;
        old.milestones[0].status = MilestoneStatus::Paid;
        old.milestones[0].erp_reference = "pay-1".into();
        let mut next = amend(&old, &sales(), None, "c2".into(), ids(), 1).unwrap();
        for m in &mut next.milestones {
            m.status = MilestoneStatus::Due;
        }
        assert!(supersede(&mut old, &mut next, "esign", 2));
        assert_eq!(old.status, Status::Superseded);
        assert_eq!(old.milestones[0].status, MilestoneStatus::Cancelled);
        assert_eq!(
            (
                next.milestones[0].status,
                next.milestones[0].erp_reference.as_str()
            ),
            (MilestoneStatus::Paid, "pay-1")
        );
        let erp = Actor::new("erp", vec![Role::Integration]);
        let id = old.milestones[0].id.clone();
        let err =
            record_payment(&mut old, &id, "", MilestoneStatus::Paid, "r", 3, &erp, 3).unwrap_err();
        assert!(matches!(
            err,
            ContractError::Precondition("NOT_RECEIVABLE", _)
        ));
    }

    #[test]
    fn an_amendment_is_a_new_draft_version_of_a_contract_in_force() {
        let mut c = draft();
        let err = amend(&c, &sales(), None, "c2".into(), ids(), 1).unwrap_err();
        assert!(matches!(
            err,
            ContractError::Precondition("NOT_IN_FORCE", _)
        ));
        c.status = Status::Active;
        let next = amend(&c, &sales(), None, "c2".into(), ids(), 1).unwrap();
        assert_eq!(
            (
                next.contract_version,
                next.family_id.as_str(),
                next.previous_version_id.as_str(),
                next.status
            ),
            (2, "c1", "c1", Status::Draft)
        );
        let err = amend(&c, &sales(), Some(&next), "c3".into(), ids(), 1).unwrap_err();
        assert!(matches!(
            err,
            ContractError::Precondition("AMENDMENT_IN_PROGRESS", _)
        ));
    }
}
