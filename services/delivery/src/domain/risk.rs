//! The risk rules (DOMAIN.md §4). Each finding names its cause: at most
//! one alert per cause is open at a time, and an alert whose cause is no
//! longer found is resolved.
//!
//! - **overdue**: a milestone not accepted after its due date;
//! - **behind pace**: the team's pace is what it logged on the project in
//!   the last `pace_window_days`, per day. For each open milestone due
//!   today or later, the remaining estimate (tasks not done) of every
//!   open milestone due on or before it must fit in the days left
//!   (today included) at that pace: remaining x window > logged x days
//!   left is a risk. With nothing logged in the window there is no pace to
//!   judge by and the rule is silent (the overdue rule still watches);
//! - **unassigned**: a task not done without an assignee while its
//!   milestone is due within `unassigned_task_window_days` (or overdue);
//! - **over budget**: hours logged on a milestone over its estimate by
//!   more than `over_budget_threshold_percent`, or on the project over its
//!   reviewed workload by more than that;
//! - **resource shortage**: a person's planned load (the estimate of their
//!   open tasks due within `load_window_days`) over their capacity in that
//!   window.

use crm_types::Date;

use super::config::DeliveryConfig;
use super::model::*;
use super::rules::reviewed_minutes;

/// A risk the rules found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub cause: String,
    pub kind: RiskKind,
    pub milestone_id: String,
    pub task_id: String,
    pub person_id: String,
    pub detail: String,
    pub responsible: Vec<String>,
}

fn hours(minutes: i64) -> String {
    if minutes % MINUTES_PER_HOUR == 0 {
        format!("{}h", minutes / MINUTES_PER_HOUR)
    } else {
        format!(
            "{}h{:02}m",
            minutes / MINUTES_PER_HOUR,
            minutes % MINUTES_PER_HOUR
        )
    }
}

fn responsible(p: &Project, extra: &[&str]) -> Vec<String> {
    let mut people = vec![p.project_manager_id.clone()];
    people.extend(extra.iter().map(|s| (*s).to_owned()));
    people.retain(|s| !s.is_empty());
    people.sort();
    people.dedup();
    people
}

fn remaining(p: &Project, m: &Milestone) -> i64 {
    p.tasks_of(&m.id)
        .filter(|t| t.status != TaskStatus::Done)
        .map(|t| t.estimate_minutes)
        .sum()
}

/// Whether `remaining` minutes fit in `days_left` days at the pace of
/// `recent` minutes per `window` days.
pub fn fits_at_pace(remaining: i64, recent: i64, window: i32, days_left: i64) -> bool {
    i128::from(remaining) * i128::from(window) <= i128::from(recent) * i128::from(days_left)
}

/// Every risk of one project today.
pub fn project_risks(
    p: &Project,
    logged: &Logged,
    cfg: &DeliveryConfig,
    today: Date,
) -> Vec<Finding> {
    let mut out = Vec::new();
    if p.status == ProjectStatus::Completed {
        return out;
    }
    let open: Vec<&Milestone> = p
        .milestones
        .iter()
        .filter(|m| m.status != MilestoneStatus::Accepted)
        .collect();
    for m in &open {
        if m.due < today {
            out.push(Finding {
                cause: format!("overdue:{}", m.id),
                kind: RiskKind::MilestoneOverdue,
                milestone_id: m.id.clone(),
                task_id: String::new(),
                person_id: String::new(),
                detail: format!(
                    "milestone {:?} was due {} and is {}",
                    m.name,
                    m.due.iso(),
                    m.status.as_str()
                ),
                responsible: responsible(p, &[&m.owner_id]),
            });
        }
    }
    if logged.recent > 0 {
        for m in open.iter().filter(|m| m.due >= today) {
            let work: i64 = open
                .iter()
                .filter(|n| n.due <= m.due)
                .map(|n| remaining(p, n))
                .sum();
            let days_left = m.due.days() - today.days() + 1;
            if work > 0 && !fits_at_pace(work, logged.recent, cfg.pace_window_days, days_left) {
                let fit = i128::from(logged.recent) * i128::from(days_left)
                    / i128::from(cfg.pace_window_days.max(1));
                out.push(Finding {
                    cause: format!("pace:{}", m.id),
                    kind: RiskKind::BehindPace,
                    milestone_id: m.id.clone(),
                    task_id: String::new(),
                    person_id: String::new(),
                    detail: format!(
                        "{} of work left by {}, {} fits at the team's pace",
                        hours(work),
                        m.due.iso(),
                        hours(i64::try_from(fit).unwrap_or(i64::MAX)),
                    ),
                    responsible: responsible(p, &[&m.owner_id]),
                });
            }
        }
    }
    for t in &p.tasks {
        if t.status == TaskStatus::Done || !t.assignee_id.is_empty() {
            continue;
        }
        let Some(m) = p.milestone(&t.milestone_id) else {
            continue;
        };
        if m.status == MilestoneStatus::Accepted {
            continue;
        }
        if m.due.days() - today.days() <= i64::from(cfg.unassigned_task_window_days) {
            out.push(Finding {
                cause: format!("unassigned:{}", t.id),
                kind: RiskKind::UnassignedTask,
                milestone_id: m.id.clone(),
                task_id: t.id.clone(),
                person_id: String::new(),
                detail: format!(
                    "task {:?} has no assignee; its milestone is due {}",
                    t.title,
                    m.due.iso()
                ),
                responsible: responsible(p, &[&m.owner_id]),
            });
        }
    }
    let threshold = i128::from(100 + cfg.over_budget_threshold_percent);
    let over = |logged: i64, budget: i64| {
        budget > 0 && i128::from(logged) * 100 > i128::from(budget) * threshold
    };
    for m in &open {
        let budget: i64 = p.tasks_of(&m.id).map(|t| t.estimate_minutes).sum();
        let spent = logged.milestone(&m.id);
        if over(spent, budget) {
            out.push(Finding {
                cause: format!("over_budget:{}", m.id),
                kind: RiskKind::OverBudget,
                milestone_id: m.id.clone(),
                task_id: String::new(),
                person_id: String::new(),
                detail: format!(
                    "{} logged on milestone {:?} against {} estimated",
                    hours(spent),
                    m.name,
                    hours(budget)
                ),
                responsible: responsible(p, &[&m.owner_id]),
            });
        }
    }
    let reviewed = reviewed_minutes(p, cfg.hours_per_person_day);
    if over(logged.total, reviewed) {
        out.push(Finding {
            cause: format!("over_budget:{}", p.id),
            kind: RiskKind::OverBudget,
            milestone_id: String::new(),
            task_id: String::new(),
            person_id: String::new(),
            detail: format!(
                "{} logged on the project against {} reviewed",
                hours(logged.total),
                hours(reviewed)
            ),
            responsible: responsible(p, &[]),
        });
    }
    out
}

/// A person's capacity over the load window, in minutes.
pub fn window_capacity(minutes_per_week: i64, window_days: i32) -> i64 {
    minutes_per_week.saturating_mul(i64::from(window_days)) / 7
}

/// The resource-shortage risk of one person, if their planned load
/// exceeds their capacity over the window.
pub fn shortage(
    person: &str,
    planned: i64,
    minutes_per_week: i64,
    cfg: &DeliveryConfig,
) -> Option<Finding> {
    let capacity = window_capacity(minutes_per_week, cfg.load_window_days);
    (planned > capacity).then(|| Finding {
        cause: format!("shortage:{person}"),
        kind: RiskKind::ResourceShortage,
        milestone_id: String::new(),
        task_id: String::new(),
        person_id: person.to_owned(),
        detail: format!(
            "{} planned in the next {} days against a capacity of {}",
            hours(planned),
            cfg.load_window_days,
            hours(capacity)
        ),
        responsible: vec![person.to_owned()],
    })
}

/// Tasks that count as a person's planned load: not done, assigned, in an
/// active project, its milestone not accepted; with the milestone's due
/// date (the store sums those due within the window).
pub fn planned_load(p: &Project) -> Vec<(&Task, Date)> {
    if p.status == ProjectStatus::Completed {
        return Vec::new();
    }
    p.tasks
        .iter()
        .filter(|t| t.status != TaskStatus::Done && !t.assignee_id.is_empty())
        .filter_map(|t| {
            let m = p.milestone(&t.milestone_id)?;
            (m.status != MilestoneStatus::Accepted).then_some((t, m.due))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::domain::testing::{day, project, task};

    fn kinds(f: &[Finding]) -> Vec<(RiskKind, String)> {
        f.iter().map(|f| (f.kind, f.cause.clone())).collect()
    }

    #[test]
    fn an_unaccepted_milestone_past_its_due_date_is_overdue_until_accepted() {
        let mut p = project();
        let m = p.milestones[0].id.clone();
        let due = p.milestones[0].due;
        let cfg = DeliveryConfig::default();
        assert!(
            project_risks(&p, &Logged::default(), &cfg, due).is_empty(),
            "due today is not late"
        );
        let late = project_risks(&p, &Logged::default(), &cfg, due.plus_days(1));
        assert_eq!(
            kinds(&late),
            [(RiskKind::MilestoneOverdue, format!("overdue:{m}"))]
        );
        assert_eq!(late[0].responsible, ["dm"]);
        p.milestones[0].status = MilestoneStatus::Accepted;
        assert!(project_risks(&p, &Logged::default(), &cfg, due.plus_days(1)).is_empty());
    }

    /// 14 hours logged over the 14-day window: a pace of 1 hour a day.
    #[test]
    fn the_pace_rule_compares_remaining_work_with_the_logged_pace_until_the_due_date() {
        let cfg = DeliveryConfig::default();
        let mut p = project();
        let m = p.milestones[0].id.clone();
        let today = p.milestones[0].due.plus_days(-4); // 5 days left, today included
        p.tasks.push(task("t1", &m, "dev", 5 * 60));
        let logged = Logged {
            recent: 14 * 60,
            ..Logged::default()
        };
        assert!(
            project_risks(&p, &logged, &cfg, today).is_empty(),
            "5h fit in 5 days at 1h/day"
        );
        p.tasks.push(task("t2", &m, "dev", 1));
        let behind = project_risks(&p, &logged, &cfg, today);
        assert_eq!(
            kinds(&behind),
            [(RiskKind::BehindPace, format!("pace:{m}"))]
        );
        assert!(behind[0].detail.contains("5h01m"), "{}", behind[0].detail);
        // Done work no longer counts.
        p.tasks[1].status = TaskStatus::Done;
        assert!(project_risks(&p, &logged, &cfg, today).is_empty());
        // No pace at all: silent.
        p.tasks[1].status = TaskStatus::Todo;
        assert!(project_risks(&p, &Logged::default(), &cfg, today).is_empty());
    }

    #[test]
    fn work_due_earlier_counts_against_a_later_milestone() {
        let cfg = DeliveryConfig {
            pace_window_days: 1,
            ..DeliveryConfig::default()
        };
        let mut p = project();
        let first = p.milestones[0].id.clone();
        let today = p.milestones[0].due;
        let mut later = p.milestones[0].clone();
        later.id = "m2".into();
        later.due = today.plus_days(1);
        p.milestones.push(later);
        // 1h a day: 1h due today fits, 2h more tomorrow do not (3h in 2 days).
        p.tasks.push(task("t1", &first, "dev", 60));
        p.tasks.push(task("t2", "m2", "dev", 120));
        let logged = Logged {
            recent: 60,
            ..Logged::default()
        };
        let found = project_risks(&p, &logged, &cfg, today);
        assert_eq!(
            kinds(&found),
            [(RiskKind::BehindPace, "pace:m2".to_owned())]
        );
    }

    #[test]
    fn a_task_without_assignee_is_a_risk_within_the_window_of_its_due_date() {
        let cfg = DeliveryConfig::default(); // 5 days
        let mut p = project();
        let m = p.milestones[0].id.clone();
        let due = p.milestones[0].due;
        p.tasks.push(task("t1", &m, "", 60));
        assert!(project_risks(&p, &Logged::default(), &cfg, due.plus_days(-6)).is_empty());
        let found = project_risks(&p, &Logged::default(), &cfg, due.plus_days(-5));
        assert_eq!(
            kinds(&found),
            [(RiskKind::UnassignedTask, "unassigned:t1".to_owned())]
        );
        assert_eq!(found[0].task_id, "t1");
        p.tasks[0].assignee_id = "dev".into();
        assert!(project_risks(&p, &Logged::default(), &cfg, due.plus_days(-5)).is_empty());
    }

    #[test]
    fn hours_over_the_budget_by_more_than_the_threshold_are_a_risk() {
        let cfg = DeliveryConfig::default(); // 10 %
        let mut p = project();
        let m = p.milestones[0].id.clone();
        let today = p.milestones[0].due.plus_days(-30);
        p.tasks.push(task("t1", &m, "dev", 600));
        let mut logged = Logged::default();
        logged.by_milestone.insert(m.clone(), 660);
        assert!(
            project_risks(&p, &logged, &cfg, today).is_empty(),
            "exactly 10 % over is within"
        );
        logged.by_milestone.insert(m.clone(), 661);
        let found = project_risks(&p, &logged, &cfg, today);
        assert_eq!(
            kinds(&found),
            [(RiskKind::OverBudget, format!("over_budget:{m}"))]
        );
        // The project against its reviewed workload: 1 person-day is 8h.
        p.handover.reviewed_person_days = 1;
        logged.by_milestone.clear();
        logged.total = 8 * 60 * 110 / 100 + 1;
        let found = project_risks(&p, &logged, &cfg, today);
        assert_eq!(
            kinds(&found),
            [(RiskKind::OverBudget, format!("over_budget:{}", p.id))]
        );
        let tolerant = DeliveryConfig {
            over_budget_threshold_percent: 50,
            ..cfg
        };
        assert!(project_risks(&p, &logged, &tolerant, today).is_empty());
    }

    #[test]
    fn a_person_over_capacity_in_the_window_is_short() {
        let cfg = DeliveryConfig::default(); // 14 days
        // 40h a week is 80h in 14 days.
        assert_eq!(window_capacity(40 * 60, 14), 80 * 60);
        assert!(shortage("dev", 80 * 60, 40 * 60, &cfg).is_none());
        let short = shortage("dev", 80 * 60 + 1, 40 * 60, &cfg).unwrap();
        assert_eq!(
            (short.kind, short.cause.as_str()),
            (RiskKind::ResourceShortage, "shortage:dev")
        );
        assert_eq!(short.responsible, ["dev"]);
        let _ = day(0);
    }

    #[test]
    fn planned_load_is_open_assigned_work_of_active_projects() {
        let mut p = project();
        let m = p.milestones[0].id.clone();
        p.tasks.push(task("a", &m, "dev", 60));
        p.tasks.push(task("b", &m, "", 60));
        let mut done = task("c", &m, "dev", 60);
        done.status = TaskStatus::Done;
        p.tasks.push(done);
        let load: Vec<_> = planned_load(&p)
            .into_iter()
            .map(|(t, _)| t.id.clone())
            .collect();
        assert_eq!(load, ["a"]);
        p.status = ProjectStatus::Completed;
        assert!(planned_load(&p).is_empty());
    }
}
