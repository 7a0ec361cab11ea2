//! What may happen to a lead, and what it changes. Each operation takes the
//! lead as stored, checks who is acting and in which state the lead is,
//! mutates it, and returns the field changes for the audit trail.

use super::{
    Actor, Change, InteractionKind, Lead, LeadConfig, LeadError, LeadStatus, Patch, Profile, Role,
    Tally,
    lead::{budget_text, opt_time},
    score,
};

/// An interaction as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interaction {
    pub id: String,
    pub lead_id: String,
    pub kind: InteractionKind,
    pub occur_time: i64,
    pub notes: String,
    pub creator: String,
    pub create_time: i64,
}

/// Only the owner or a supervisor changes a lead; a pool lead must be
/// claimed first.
fn check_may_change(lead: &Lead, actor: &Actor) -> Result<(), LeadError> {
    if actor.supervisor() || lead.owner_id.as_deref() == Some(&actor.id) {
        Ok(())
    } else {
        Err(LeadError::NotOwner(lead.id.clone()))
    }
}

fn check_open(lead: &Lead) -> Result<(), LeadError> {
    if lead.status.is_final() {
        Err(LeadError::Closed {
            id: lead.id.clone(),
            status: lead.status,
        })
    } else {
        Ok(())
    }
}

fn after(now: i64, window: std::time::Duration) -> i64 {
    now.saturating_add(i64::try_from(window.as_micros()).unwrap_or(i64::MAX))
}

/// A new lead from a validated profile. A sales caller who names no owner
/// owns it; anyone else's lead without an owner goes to the public pool.
pub fn new_lead(
    id: String,
    tenant: &str,
    profile: Profile,
    owner_id: Option<String>,
    next_follow_up_time: Option<i64>,
    actor: &Actor,
    config: &LeadConfig,
    now: i64,
) -> Result<Lead, LeadError> {
    let owner_id = match owner_id {
        Some(owner) if owner != actor.id && !actor.supervisor() => {
            return Err(LeadError::NotManager);
        }
        Some(owner) => Some(owner),
        None if actor.has(Role::Sales) && !actor.supervisor() => Some(actor.id.clone()),
        None => None,
    };
    let score = score(&profile, &Tally::default(), &config.scoring);
    Ok(Lead {
        id,
        tenant: tenant.to_owned(),
        version: 1,
        follow_up_deadline: owner_id
            .as_ref()
            .map(|_| after(now, config.follow_up_window)),
        profile,
        owner_id,
        status: LeadStatus::New,
        score,
        last_follow_up_time: None,
        next_follow_up_time,
        disqualify_reason: None,
        opportunity_id: None,
        account_id: None,
        create_time: now,
        update_time: now,
        creator: actor.id.clone(),
        updater: actor.id.clone(),
    })
}

/// Merges a duplicate into the lead it duplicates: empty fields are filled
/// from the newcomer, its notes are appended; nothing is overwritten. Only
/// who may change the lead merges into it (its owner or a supervisor).
pub fn merge_into(
    existing: &mut Lead,
    incoming: &Profile,
    actor: &Actor,
    now: i64,
) -> Result<Vec<Change>, LeadError> {
    check_may_change(existing, actor)?;
    check_open(existing)?;
    let before = existing.clone();
    let p = &mut existing.profile;
    for (mine, theirs) in [
        (&mut p.contact_name, &incoming.contact_name),
        (&mut p.phone, &incoming.phone),
        (&mut p.email, &incoming.email),
        (&mut p.industry, &incoming.industry),
        (&mut p.region, &incoming.region),
    ] {
        if mine.is_empty() {
            mine.clone_from(theirs);
        }
    }
    if p.company_size == super::CompanySize::Unknown {
        p.company_size = incoming.company_size;
    }
    if p.budget.is_none() {
        p.budget.clone_from(&incoming.budget);
    }
    if !incoming.notes.is_empty() && !p.notes.contains(&incoming.notes) {
        p.notes = if p.notes.is_empty() {
            incoming.notes.clone()
        } else {
            format!("{}\n{}", p.notes, incoming.notes)
        };
    }
    Ok(finish(&before, existing, actor, now))
}

/// Applies an update. Profile fields are validated as on creation; status
/// may only move between new, working and nurturing by hand. The score is
/// recomputed since profile fit may have changed.
pub fn update(
    lead: &mut Lead,
    patches: Vec<Patch>,
    actor: &Actor,
    tally: &Tally,
    config: &LeadConfig,
    now: i64,
) -> Result<Vec<Change>, LeadError> {
    check_may_change(lead, actor)?;
    check_open(lead)?;
    let before = lead.clone();
    let mut profile = lead.profile.clone();
    let mut status = lead.status;
    for patch in patches {
        match patch {
            Patch::Company(v) => profile.company = v,
            Patch::ContactName(v) => profile.contact_name = v,
            Patch::Phone(v) => profile.phone = v,
            Patch::Email(v) => profile.email = v,
            Patch::Industry(v) => profile.industry = v,
            Patch::Region(v) => profile.region = v,
            Patch::CompanySize(v) => profile.company_size = v,
            Patch::BudgetMin(amount, currency) => set_budget(&mut profile, amount, currency, true),
            Patch::BudgetMax(amount, currency) => set_budget(&mut profile, amount, currency, false),
            Patch::SourceChannel(v) => profile.source_channel = v,
            Patch::Notes(v) => profile.notes = v,
            Patch::NextFollowUpTime(t) => lead.next_follow_up_time = t,
            Patch::Status(to) => {
                let manual = [LeadStatus::New, LeadStatus::Working, LeadStatus::Nurturing];
                if !manual.contains(&to) || !manual.contains(&status) {
                    return Err(LeadError::invalid(
                        "status",
                        format!(
                            "{status} cannot be set to {to} by hand; only between new, working and nurturing"
                        ),
                    ));
                }
                status = to;
            }
        }
    }
    lead.profile = profile.validated(config).map_err(LeadError::Invalid)?;
    lead.status = status;
    lead.score = score(&lead.profile, tally, &config.scoring);
    Ok(finish(&before, lead, actor, now))
}

fn set_budget(profile: &mut Profile, amount: Option<super::Amount>, currency: String, min: bool) {
    let budget = profile.budget.get_or_insert_with(|| super::Budget {
        currency: currency.clone(),
        min: None,
        max: None,
    });
    if amount.is_some() {
        budget.currency = currency;
    }
    if min {
        budget.min = amount;
    } else {
        budget.max = amount;
    }
    if budget.min.is_none() && budget.max.is_none() {
        profile.budget = None;
    }
}

/// Logs an interaction and rescores from `tally`, which already counts it.
/// The owner's own interaction is a follow-up: it clears the deadline. A
/// lead that turns hot must be followed up within the hot window; one that
/// reaches the qualify threshold is qualified.
pub fn log_interaction(
    lead: &mut Lead,
    actor: &Actor,
    tally: &Tally,
    config: &LeadConfig,
    now: i64,
) -> Result<Vec<Change>, LeadError> {
    check_may_change(lead, actor)?;
    check_open(lead)?;
    let before = lead.clone();
    let by_owner = lead.owner_id.as_deref() == Some(&actor.id);
    if by_owner {
        lead.last_follow_up_time = Some(now);
        lead.follow_up_deadline = None;
        if lead.status == LeadStatus::New {
            lead.status = LeadStatus::Working;
        }
    }
    lead.score = score(&lead.profile, tally, &config.scoring);
    let turned_hot =
        before.score.total < config.hot_threshold && lead.score.total >= config.hot_threshold;
    if turned_hot && !by_owner && lead.owner_id.is_some() {
        let hot_deadline = after(now, config.hot_follow_up_window);
        lead.follow_up_deadline = Some(
            lead.follow_up_deadline
                .map_or(hot_deadline, |d| d.min(hot_deadline)),
        );
    }
    if lead.score.total >= config.qualify_threshold
        && matches!(
            lead.status,
            LeadStatus::New | LeadStatus::Working | LeadStatus::Nurturing
        )
    {
        lead.status = LeadStatus::Qualified;
    }
    Ok(finish(&before, lead, actor, now))
}

/// A supervisor gives the lead to a sales user, who must follow it up
/// within the follow-up window.
pub fn assign(
    lead: &mut Lead,
    owner: &str,
    actor: &Actor,
    config: &LeadConfig,
    now: i64,
) -> Result<Vec<Change>, LeadError> {
    if !actor.supervisor() {
        return Err(LeadError::NotManager);
    }
    check_open(lead)?;
    if owner.is_empty() {
        return Err(LeadError::invalid("owner_id", "required"));
    }
    let before = lead.clone();
    lead.owner_id = Some(owner.to_owned());
    lead.follow_up_deadline = Some(after(now, config.follow_up_window));
    Ok(finish(&before, lead, actor, now))
}

/// The claims that count against a person's daily claim limit: theirs, made
/// in the last 24 hours rather than the calendar day, so that midnight does
/// not hand out a fresh allowance (a claim exactly 24 hours old no longer
/// counts).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimWindow {
    pub claimer: String,
    /// Claims made after this time count.
    pub after: i64,
}

impl ClaimWindow {
    const LENGTH_MICROS: i64 = 24 * 3_600_000_000;

    /// The window of `actor`'s claims at `now`.
    pub fn of(actor: &Actor, now: i64) -> Self {
        ClaimWindow {
            claimer: actor.id.clone(),
            after: now.saturating_sub(Self::LENGTH_MICROS),
        }
    }

    /// Whether a claim by `claimer` at `time` counts.
    pub fn counts(&self, claimer: &str, time: i64) -> bool {
        claimer == self.claimer && time > self.after
    }
}

/// A sales user takes a lead from the pool, within the daily claim limit:
/// `recent_claims` is how many of their claims count (see [`ClaimWindow`]).
pub fn claim(
    lead: &mut Lead,
    actor: &Actor,
    recent_claims: u32,
    config: &LeadConfig,
    now: i64,
) -> Result<Vec<Change>, LeadError> {
    check_open(lead)?;
    if lead.owner_id.is_some() {
        return Err(LeadError::AlreadyOwned(lead.id.clone()));
    }
    if recent_claims >= config.daily_claim_limit {
        return Err(LeadError::ClaimLimit {
            limit: config.daily_claim_limit,
        });
    }
    let before = lead.clone();
    lead.owner_id = Some(actor.id.clone());
    lead.follow_up_deadline = Some(after(now, config.follow_up_window));
    Ok(finish(&before, lead, actor, now))
}

/// The owner (or a supervisor) puts the lead back in the pool.
pub fn release(lead: &mut Lead, actor: &Actor, now: i64) -> Result<Vec<Change>, LeadError> {
    check_open(lead)?;
    if lead.owner_id.is_none() {
        return Err(LeadError::InPool(lead.id.clone()));
    }
    check_may_change(lead, actor)?;
    let before = lead.clone();
    lead.owner_id = None;
    lead.follow_up_deadline = None;
    Ok(finish(&before, lead, actor, now))
}

pub fn disqualify(
    lead: &mut Lead,
    reason: &str,
    actor: &Actor,
    now: i64,
) -> Result<Vec<Change>, LeadError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(LeadError::invalid(
            "reason",
            "required: why the lead is not a possible customer",
        ));
    }
    check_may_change(lead, actor)?;
    check_open(lead)?;
    let before = lead.clone();
    lead.status = LeadStatus::Disqualified;
    lead.disqualify_reason = Some(reason.to_owned());
    lead.follow_up_deadline = None;
    Ok(finish(&before, lead, actor, now))
}

/// Whether `actor` may convert the lead: the owner or a supervisor, of a
/// lead still open. `false` for a lead already converted (a retry).
pub fn check_convertible(lead: &Lead, actor: &Actor) -> Result<bool, LeadError> {
    if lead.status == LeadStatus::Converted {
        return Ok(false);
    }
    check_may_change(lead, actor)?;
    check_open(lead)?;
    Ok(true)
}

/// Marks the lead converted into `opportunity_id` of `account_id`.
pub fn convert(
    lead: &mut Lead,
    opportunity_id: &str,
    account_id: &str,
    actor: &Actor,
    now: i64,
) -> Result<Vec<Change>, LeadError> {
    if !check_convertible(lead, actor)? {
        return Ok(Vec::new());
    }
    let before = lead.clone();
    lead.status = LeadStatus::Converted;
    lead.opportunity_id = Some(opportunity_id.to_owned());
    lead.account_id = Some(account_id.to_owned());
    lead.follow_up_deadline = None;
    Ok(finish(&before, lead, actor, now))
}

/// Why the sweeper returns a lead to the pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnReason {
    pub owner: String,
    pub deadline: i64,
}

impl std::fmt::Display for ReturnReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} did not follow up before the deadline {}",
            self.owner, self.deadline
        )
    }
}

/// Whether an owned lead missed its follow-up deadline at `now`.
pub fn overdue(lead: &Lead, now: i64) -> Option<ReturnReason> {
    match (&lead.owner_id, lead.follow_up_deadline) {
        (Some(owner), Some(deadline)) if deadline < now && !lead.status.is_final() => {
            Some(ReturnReason {
                owner: owner.clone(),
                deadline,
            })
        }
        _ => None,
    }
}

/// Returns an overdue lead to the pool (the sweeper's work).
pub fn return_to_pool(lead: &mut Lead, actor: &str, now: i64) -> Vec<Change> {
    let before = lead.clone();
    lead.owner_id = None;
    lead.follow_up_deadline = None;
    stamp(&before, lead, actor, now)
}

/// Stamps a changed lead and lists what changed.
fn finish(before: &Lead, after: &mut Lead, actor: &Actor, now: i64) -> Vec<Change> {
    stamp(before, after, &actor.id, now)
}

fn stamp(before: &Lead, after: &mut Lead, actor: &str, now: i64) -> Vec<Change> {
    let changes = diff(before, after);
    if !changes.is_empty() {
        after.touch(actor, now);
    }
    changes
}

fn diff(a: &Lead, b: &Lead) -> Vec<Change> {
    let (p, q) = (&a.profile, &b.profile);
    [
        Change::of("company", &p.company, &q.company),
        Change::of("contact_name", &p.contact_name, &q.contact_name),
        Change::of("phone", &p.phone, &q.phone),
        Change::of("email", &p.email, &q.email),
        Change::of("industry", &p.industry, &q.industry),
        Change::of("region", &p.region, &q.region),
        Change::of(
            "company_size",
            p.company_size.as_str(),
            q.company_size.as_str(),
        ),
        Change::of("budget", budget_text(&p.budget), budget_text(&q.budget)),
        Change::of("source_channel", &p.source_channel, &q.source_channel),
        Change::of("notes", &p.notes, &q.notes),
        Change::of(
            "owner_id",
            a.owner_id.clone().unwrap_or_default(),
            b.owner_id.clone().unwrap_or_default(),
        ),
        Change::of("status", a.status, b.status),
        Change::of("score", a.score.total, b.score.total),
        Change::of(
            "last_follow_up_time",
            opt_time(a.last_follow_up_time),
            opt_time(b.last_follow_up_time),
        ),
        Change::of(
            "next_follow_up_time",
            opt_time(a.next_follow_up_time),
            opt_time(b.next_follow_up_time),
        ),
        Change::of(
            "follow_up_deadline",
            opt_time(a.follow_up_deadline),
            opt_time(b.follow_up_deadline),
        ),
        Change::of(
            "disqualify_reason",
            a.disqualify_reason.clone().unwrap_or_default(),
            b.disqualify_reason.clone().unwrap_or_default(),
        ),
        Change::of(
            "opportunity_id",
            a.opportunity_id.clone().unwrap_or_default(),
            b.opportunity_id.clone().unwrap_or_default(),
        ),
    ]
    .into_iter()
    .flatten()
    .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const HOUR: i64 = 3_600_000_000;

    use crate::domain::testing::{manager, profile, sales};

    fn lead_of(owner: Option<&str>, now: i64) -> Lead {
        let actor = owner.map(sales).unwrap_or_else(manager);
        new_lead(
            "l1".into(),
            "t",
            profile(),
            None,
            None,
            &actor,
            &LeadConfig::default(),
            now,
        )
        .unwrap()
    }

    fn tally(kind: InteractionKind, n: u32) -> Tally {
        Tally {
            per_kind: [(kind, n)].into_iter().collect(),
            in_window: n,
        }
    }

    #[test]
    fn a_sales_users_new_lead_is_theirs_with_a_deadline() {
        let lead = lead_of(Some("amy"), 0);
        assert_eq!(lead.owner_id.as_deref(), Some("amy"));
        assert_eq!(lead.follow_up_deadline, Some(48 * HOUR));
        let pool = lead_of(None, 0);
        assert_eq!(pool.owner_id, None);
        assert_eq!(pool.follow_up_deadline, None);
    }

    #[test]
    fn sales_cannot_create_for_someone_else() {
        let err = new_lead(
            "x".into(),
            "t",
            profile(),
            Some("bob".into()),
            None,
            &sales("amy"),
            &LeadConfig::default(),
            0,
        );
        assert!(matches!(err, Err(LeadError::NotManager)));
    }

    #[test]
    fn the_owners_interaction_is_a_follow_up() {
        let mut lead = lead_of(Some("amy"), 0);
        log_interaction(
            &mut lead,
            &sales("amy"),
            &tally(InteractionKind::CallConnected, 1),
            &LeadConfig::default(),
            HOUR,
        )
        .unwrap();
        assert_eq!(lead.status, LeadStatus::Working);
        assert_eq!(lead.follow_up_deadline, None);
        assert_eq!(lead.last_follow_up_time, Some(HOUR));
        assert_eq!(lead.version, 2);
    }

    #[test]
    fn reaching_the_threshold_qualifies() {
        let config = LeadConfig::default();
        let mut lead = lead_of(Some("amy"), 0);
        let t = Tally {
            per_kind: [
                (InteractionKind::DemoAttended, 2),
                (InteractionKind::ContractTemplateViewed, 1),
            ]
            .into_iter()
            .collect(),
            in_window: 5,
        };
        log_interaction(&mut lead, &sales("amy"), &t, &config, HOUR).unwrap();
        assert!(
            lead.score.total >= config.qualify_threshold,
            "{:?}",
            lead.score
        );
        assert_eq!(lead.status, LeadStatus::Qualified);
    }

    #[test]
    fn turning_hot_without_the_owner_sets_the_hot_deadline() {
        let config = LeadConfig::default();
        let mut lead = lead_of(Some("amy"), 0);
        let integration = Actor::new("marketing", vec![Role::Integration]);
        let t = tally(InteractionKind::ContractTemplateViewed, 3);
        log_interaction(&mut lead, &integration, &t, &config, 10 * HOUR).unwrap();
        assert!(lead.score.total >= config.hot_threshold);
        assert_eq!(
            lead.follow_up_deadline,
            Some(34 * HOUR),
            "24h after turning hot, before the 48h one"
        );
    }

    #[test]
    fn pool_rules() {
        let config = LeadConfig {
            daily_claim_limit: 2,
            ..LeadConfig::default()
        };
        let mut pool = lead_of(None, 0);
        assert!(matches!(
            claim(&mut pool.clone(), &sales("amy"), 2, &config, 0),
            Err(LeadError::ClaimLimit { limit: 2 })
        ));
        claim(&mut pool, &sales("amy"), 1, &config, HOUR).unwrap();
        assert_eq!(pool.owner_id.as_deref(), Some("amy"));
        assert_eq!(pool.follow_up_deadline, Some(49 * HOUR));
        assert!(matches!(
            claim(&mut pool.clone(), &sales("bob"), 0, &config, HOUR),
            Err(LeadError::AlreadyOwned(_))
        ));
        assert!(matches!(
            release(&mut pool.clone(), &sales("bob"), HOUR),
            Err(LeadError::NotOwner(_))
        ));
        release(&mut pool, &sales("amy"), 2 * HOUR).unwrap();
        assert_eq!(pool.owner_id, None);
        assert!(matches!(
            release(&mut pool, &sales("amy"), 2 * HOUR),
            Err(LeadError::InPool(_))
        ));
    }

    #[test]
    fn claims_count_for_24_hours_per_person() {
        let window = ClaimWindow::of(&sales("amy"), 30 * HOUR);
        assert!(window.counts("amy", 30 * HOUR));
        assert!(window.counts("amy", 6 * HOUR + 1));
        assert!(
            !window.counts("amy", 6 * HOUR),
            "a claim 24 hours old no longer counts"
        );
        assert!(!window.counts("bob", 30 * HOUR), "only the claimer's own");
        assert_eq!(ClaimWindow::of(&sales("amy"), i64::MIN + 1).after, i64::MIN);
    }

    #[test]
    fn disqualified_leads_are_final() {
        let mut lead = lead_of(Some("amy"), 0);
        assert!(matches!(
            disqualify(&mut lead.clone(), " ", &sales("amy"), 0),
            Err(LeadError::Invalid(_))
        ));
        disqualify(&mut lead, "no budget", &sales("amy"), HOUR).unwrap();
        assert_eq!(lead.follow_up_deadline, None);
        let config = LeadConfig::default();
        let t = tally(InteractionKind::Meeting, 1);
        assert!(matches!(
            log_interaction(&mut lead.clone(), &sales("amy"), &t, &config, HOUR),
            Err(LeadError::Closed { .. })
        ));
        assert!(matches!(
            claim(&mut lead.clone(), &sales("bob"), 0, &config, HOUR),
            Err(LeadError::Closed { .. })
        ));
        assert!(matches!(
            update(
                &mut lead,
                vec![Patch::Notes("x".into())],
                &sales("amy"),
                &Tally::default(),
                &config,
                HOUR
            ),
            Err(LeadError::Closed { .. })
        ));
    }

    #[test]
    fn the_sweeper_returns_only_overdue_owned_open_leads() {
        let mut lead = lead_of(Some("amy"), 0);
        assert_eq!(
            overdue(&lead, 48 * HOUR),
            None,
            "the deadline itself is still in time"
        );
        let reason = overdue(&lead, 48 * HOUR + 1).unwrap();
        assert_eq!(reason.owner, "amy");
        let changes = return_to_pool(&mut lead, "crm-leads-sweeper", 49 * HOUR);
        assert_eq!(lead.owner_id, None);
        assert!(
            changes
                .iter()
                .any(|c| c.field == "owner_id" && c.old == "amy")
        );
        assert_eq!(overdue(&lead, 100 * HOUR), None);

        let mut followed = lead_of(Some("amy"), 0);
        log_interaction(
            &mut followed,
            &sales("amy"),
            &tally(InteractionKind::CallConnected, 1),
            &LeadConfig::default(),
            HOUR,
        )
        .unwrap();
        assert_eq!(overdue(&followed, 100 * HOUR), None);
    }

    #[test]
    fn status_moves_by_hand_only_among_open_working_states() {
        let config = LeadConfig::default();
        let mut lead = lead_of(Some("amy"), 0);
        update(
            &mut lead,
            vec![Patch::Status(LeadStatus::Nurturing)],
            &sales("amy"),
            &Tally::default(),
            &config,
            HOUR,
        )
        .unwrap();
        assert_eq!(lead.status, LeadStatus::Nurturing);
        let err = update(
            &mut lead,
            vec![Patch::Status(LeadStatus::Qualified)],
            &sales("amy"),
            &Tally::default(),
            &config,
            HOUR,
        );
        assert!(matches!(err, Err(LeadError::Invalid(v)) if v[0].field == "status"));
    }

    #[test]
    fn merge_fills_gaps_and_keeps_what_is_there() {
        let mut lead = lead_of(Some("amy"), 0);
        lead.profile.phone = "138 0000 0000".into();
        let incoming = Profile {
            phone: "999999".into(),
            email: "a@b.co".into(),
            notes: "met at expo".into(),
            ..profile()
        };
        let changes = merge_into(&mut lead, &incoming, &sales("amy"), HOUR).unwrap();
        assert_eq!(lead.profile.phone, "138 0000 0000");
        assert_eq!(lead.profile.email, "a@b.co");
        assert_eq!(lead.profile.notes, "met at expo");
        assert_eq!(changes.len(), 2);
    }
}
