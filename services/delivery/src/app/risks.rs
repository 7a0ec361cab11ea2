//! The risk rules applied: after every change of a project, from the
//! consumer and from the sweeper. New findings raise alerts (one per
//! cause: the unique key on the open cause), alerts whose cause is gone
//! are resolved; each with its event naming the responsible people.

use std::collections::BTreeSet;

use crm_store::ConnectionTrait;
use crm_types::{AuditEntry, new_id};

use super::{Result, Trail, UseCases};
use crate::domain::{Date, DeliveryConfig, Logged, Project, RiskAlert, RiskStatus, risk};
use crate::store;
use crate::wire;

/// Who raises and resolves alerts, in the audit trail.
pub const RISK_ACTOR: &str = "system:delivery-risks";

/// What a sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Projects and people checked.
    pub checked: u64,
    /// Alerts raised or resolved.
    pub changed: u64,
    /// Projects or people passed over (busy or broken).
    pub skipped: u64,
}

/// The first day of the pace window that ends today.
pub(super) fn pace_from(today: Date, cfg: &DeliveryConfig) -> Date {
    today.plus_days(1 - i64::from(cfg.pace_window_days.max(1)))
}

fn alert_of(tenant: &str, project_id: &str, f: risk::Finding, now: i64) -> RiskAlert {
    RiskAlert {
        id: new_id(),
        tenant: tenant.to_owned(),
        version: 1,
        project_id: project_id.to_owned(),
        kind: f.kind,
        status: RiskStatus::Open,
        cause: f.cause,
        milestone_id: f.milestone_id,
        task_id: f.task_id,
        person_id: f.person_id,
        detail: f.detail,
        responsible_ids: f.responsible,
        raise_time: now,
        acknowledged_by: String::new(),
        acknowledge_time: None,
        resolve_time: None,
    }
}

async fn raise(
    conn: &impl ConnectionTrait,
    alert: RiskAlert,
    trail: &mut Trail,
    now: i64,
) -> Result<()> {
    store::insert_alert(conn, &alert).await?;
    trail.audit(
        AuditEntry::new(&alert.id, "risk.raised", RISK_ACTOR, now)
            .with_reason(alert.detail.clone()),
    );
    trail.event(wire::risk_raised(&alert, now));
    Ok(())
}

async fn resolve(
    conn: &impl ConnectionTrait,
    mut alert: RiskAlert,
    trail: &mut Trail,
    now: i64,
) -> Result<()> {
    let read = alert.version;
    alert.status = RiskStatus::Resolved;
    alert.resolve_time = Some(now);
    store::save_alert(conn, &alert, read).await?;
    alert.version = read + 1;
    trail.audit(AuditEntry::new(&alert.id, "risk.resolved", RISK_ACTOR, now));
    trail.event(wire::risk_resolved(&alert, now));
    Ok(())
}

/// Applies the project rules to `p` (as just saved) and the shortage rule
/// to the people assigned in it; returns the hours logged on it and how
/// many alerts changed.
pub(super) async fn reassess(
    conn: &impl ConnectionTrait,
    p: &Project,
    cfg: &DeliveryConfig,
    now: i64,
    trail: &mut Trail,
) -> Result<(Logged, u64)> {
    let today = Date::of_micros(now);
    let logged = store::logged(conn, &p.tenant, &p.id, pace_from(today, cfg)).await?;
    let findings = risk::project_risks(p, &logged, cfg, today);
    let open = store::open_alerts_of_project(conn, &p.tenant, &p.id).await?;
    let mut changed = 0;
    let known: BTreeSet<String> = open.iter().map(|a| a.cause.clone()).collect();
    for alert in open {
        match findings.iter().find(|f| f.cause == alert.cause) {
            None => {
                resolve(conn, alert, trail, now).await?;
                changed += 1;
            }
            // Still there: it names who is responsible now (an owner set
            // since) and the cause as it stands.
            Some(f) if f.responsible != alert.responsible_ids || f.detail != alert.detail => {
                let mut alert = alert;
                let read = alert.version;
                alert.responsible_ids.clone_from(&f.responsible);
                alert.detail.clone_from(&f.detail);
                store::save_alert(conn, &alert, read).await?;
            }
            Some(_) => {}
        }
    }
    for f in findings {
        if !known.contains(&f.cause) {
            raise(conn, alert_of(&p.tenant, &p.id, f, now), trail, now).await?;
            changed += 1;
        }
    }
    let people: BTreeSet<&str> = p
        .tasks
        .iter()
        .map(|t| t.assignee_id.as_str())
        .filter(|a| !a.is_empty())
        .collect();
    for person in people {
        changed += reassess_person(conn, &p.tenant, person, cfg, now, trail).await?;
    }
    Ok((logged, changed))
}

/// The shortage rule for one person; how many alerts changed.
pub(super) async fn reassess_person(
    conn: &impl ConnectionTrait,
    tenant: &str,
    person: &str,
    cfg: &DeliveryConfig,
    now: i64,
    trail: &mut Trail,
) -> Result<u64> {
    let today = Date::of_micros(now);
    let until = today.plus_days(i64::from(cfg.load_window_days));
    let planned = store::planned_minutes(conn, tenant, person, until).await?;
    let per_week = store::capacity(conn, tenant, person)
        .await?
        .map_or(cfg.default_capacity_minutes_per_week, |c| c.1);
    let finding = risk::shortage(person, planned, per_week, cfg);
    let cause = format!("shortage:{person}");
    let open = store::open_alert_of_cause(conn, tenant, &cause).await?;
    match (finding, open) {
        (Some(f), None) => {
            raise(conn, alert_of(tenant, "", f, now), trail, now).await?;
            Ok(1)
        }
        (None, Some(alert)) => {
            resolve(conn, alert, trail, now).await?;
            Ok(1)
        }
        _ => Ok(0),
    }
}

impl UseCases {
    /// The sweeper's work on one project: the rules again at `now` (time
    /// alone makes a milestone overdue). A project another transaction
    /// holds is passed over (`Ok(None)`).
    pub async fn sweep_project(&self, tenant: &str, id: &str, now: i64) -> Result<Option<u64>> {
        self.uow
            .run(tenant, |tx| async move {
                let Some(stored) = store::lock_unless_busy(&*tx, tenant, id).await? else {
                    return Trail::default().done(None);
                };
                let cfg = store::config(&*tx, tenant, &self.defaults).await?.config;
                let mut trail = Trail::default();
                let (_, changed) = reassess(&*tx, &stored.project, &cfg, now, &mut trail).await?;
                trail.done(Some(changed))
            })
            .await
    }

    /// The sweeper's work on one person: the shortage rule again.
    pub async fn sweep_person(&self, tenant: &str, person: &str, now: i64) -> Result<u64> {
        self.uow
            .run(tenant, |tx| async move {
                let cfg = store::config(&*tx, tenant, &self.defaults).await?.config;
                let mut trail = Trail::default();
                let changed = reassess_person(&*tx, tenant, person, &cfg, now, &mut trail).await?;
                trail.done(changed)
            })
            .await
    }

    /// Active projects of every tenant after `after`, for the sweeper.
    pub async fn active_projects(
        &self,
        after: Option<&(String, String)>,
        limit: u64,
    ) -> Result<Vec<(String, String)>> {
        store::active_projects(self.db(), after, limit).await
    }

    /// People to check for a shortage, for the sweeper.
    pub async fn people_to_check(
        &self,
        after: Option<&(String, String)>,
        limit: u64,
    ) -> Result<Vec<(String, String)>> {
        store::people_to_check(self.db(), after, limit).await
    }
}
