//! The lifecycle timers the sweeper runs (DOMAIN.md §3): a signed contract
//! becomes active on its start date and expires after its end date; the
//! renewal notice is raised once, N days before the end; an approval step
//! pending past its expected time is overdue, once; a payment milestone
//! owed past its due date is overdue, once.

use crm_types::Date;

use super::model::*;

/// One thing a timer did to a contract.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fired {
    Activated,
    Expired,
    RenewalDue { end: Date, days_left: i64 },
    StepOverdue(usize),
    MilestoneOverdue(String),
}

/// Every timer due on `c` at `now`, applied, in order. Empty when nothing
/// was due (the contract changed since it was picked).
pub fn fire(c: &mut Contract, actor: &str, now: i64) -> Vec<Fired> {
    let today = Date::of_micros(now);
    let mut fired = Vec::new();
    if let Some(term) = c.term {
        if c.status == Status::Signed && term.start <= today {
            c.status = Status::Active;
            fired.push(Fired::Activated);
        }
        if c.status.in_force() && c.renewal_due.is_some_and(|d| d <= today) && term.end >= today {
            c.renewal_due = None;
            let days_left = term.end.days() - today.days();
            fired.push(Fired::RenewalDue {
                end: term.end,
                days_left,
            });
        }
        if c.status == Status::Active && term.end < today {
            c.status = Status::Expired;
            c.renewal_due = None;
            fired.push(Fired::Expired);
        }
    }
    if c.status == Status::InApproval
        && let Some(a) = c.approval.as_mut()
        && a.status == crm_approvals::Status::Pending
    {
        let i = a.current_step;
        if let Some(info) = a.info.get_mut(i)
            && !info.overdue
            && info.expected_time.is_some_and(|t| t < now)
        {
            info.overdue = true;
            fired.push(Fired::StepOverdue(i));
        }
    }
    for m in &mut c.milestones {
        if m.status.open() && m.overdue_time.is_none() && m.due_date < today {
            m.status = MilestoneStatus::Overdue;
            m.overdue_time = Some(now);
            m.version += 1;
            fired.push(Fired::MilestoneOverdue(m.id.clone()));
        }
    }
    if !fired.is_empty() {
        c.version += 1;
        c.update_time = now;
        c.updater = actor.to_owned();
    }
    fired
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::domain::testing::*;

    const DAY: i64 = 86_400_000_000;

    fn at(date: Date) -> i64 {
        date.days() * DAY + 9 * 3_600_000_000
    }

    fn signed() -> Contract {
        let mut c = ready();
        c.status = Status::Signed;
        for m in &mut c.milestones {
            m.status = MilestoneStatus::Due;
        }
        c.renewal_due = Some(Date::new(2027, 11, 1).unwrap());
        c
    }

    #[test]
    fn a_signed_contract_activates_on_its_start_date_and_expires_after_its_end() {
        let mut c = signed();
        assert!(fire(&mut c, "sweeper", at(Date::new(2026, 12, 31).unwrap())).is_empty());
        assert_eq!(
            fire(&mut c, "sweeper", at(Date::new(2027, 1, 1).unwrap())),
            [Fired::Activated]
        );
        assert_eq!(c.status, Status::Active);
        assert!(
            fire(&mut c, "sweeper", at(Date::new(2027, 1, 1).unwrap())).is_empty(),
            "once"
        );
        let fired = fire(&mut c, "sweeper", at(Date::new(2028, 1, 1).unwrap()));
        assert!(fired.contains(&Fired::Expired), "{fired:?}");
        assert_eq!(c.status, Status::Expired);
    }

    #[test]
    fn the_renewal_notice_is_raised_once() {
        let mut c = signed();
        c.status = Status::Active;
        assert!(
            fire(&mut c, "s", at(Date::new(2027, 10, 31).unwrap()))
                .iter()
                .all(|f| !matches!(f, Fired::RenewalDue { .. }))
        );
        let fired = fire(&mut c, "s", at(Date::new(2027, 11, 1).unwrap()));
        assert!(
            fired.contains(&Fired::RenewalDue {
                end: Date::new(2027, 12, 31).unwrap(),
                days_left: 60
            }),
            "{fired:?}"
        );
        assert!(
            fire(&mut c, "s", at(Date::new(2027, 11, 2).unwrap()))
                .iter()
                .all(|f| !matches!(f, Fired::RenewalDue { .. }))
        );
    }

    #[test]
    fn an_unpaid_milestone_past_due_is_overdue_once() {
        let mut c = signed();
        c.status = Status::Active;
        c.milestones[0].due_date = Date::new(2027, 2, 1).unwrap();
        assert!(fire(&mut c, "s", at(Date::new(2027, 2, 1).unwrap())).is_empty());
        let fired = fire(&mut c, "s", at(Date::new(2027, 2, 2).unwrap()));
        assert_eq!(fired, [Fired::MilestoneOverdue(c.milestones[0].id.clone())]);
        assert_eq!(c.milestones[0].status, MilestoneStatus::Overdue);
        assert!(fire(&mut c, "s", at(Date::new(2027, 2, 3).unwrap())).is_empty());
    }

    #[test]
    fn a_step_past_its_expected_time_is_overdue_once() {
        let config = crate::domain::ContractsConfig::default();
        let mut c = ready();
        crate::domain::submit(&mut c, &sales(), &config, "a1".into(), MONDAY_9).unwrap();
        assert!(fire(&mut c, "s", MONDAY_9 + DAY).is_empty());
        assert_eq!(
            fire(&mut c, "s", MONDAY_9 + DAY + 1),
            [Fired::StepOverdue(0)]
        );
        assert!(fire(&mut c, "s", MONDAY_9 + 2 * DAY).is_empty());
    }
}
