//! The queries: each reads through `store` and applies the visibility
//! rules of `domain::access`.

use crm_store::ConnectionTrait;
use crm_types::{Actor, Date};

use super::{Result, UseCases, View, risks};
use crate::domain::{
    Capacity, DeliveryError, RiskAlert, Visibility, WorkLog, access, resource, risk,
};
use crate::store::{self, AlertFilter, ProjectFilter};

impl UseCases {
    /// A project the actor sees, with its hours (NOT_FOUND otherwise).
    pub async fn view(&self, actor: &Actor, tenant: &str, id: &str) -> Result<View> {
        let stored = store::load_project(self.db(), tenant, id).await?;
        access::check_visible(&stored.project, actor)?;
        let config = self.config(tenant).await?.config;
        let today = Date::of_micros(crm_types::now_micros());
        let logged = store::logged(self.db(), tenant, id, risks::pace_from(today, &config)).await?;
        Ok(View {
            project: stored.project,
            handover: stored.handover,
            logged,
            config,
        })
    }

    /// A page of the projects the actor sees, newest first, each with its
    /// total hours (one query for the page).
    pub async fn list_projects(
        &self,
        actor: &Actor,
        tenant: &str,
        filter: &ProjectFilter,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<View>> {
        let visibility = access::visibility(actor);
        self.list_views(tenant, filter, &visibility, after, limit)
            .await
    }

    async fn list_views(
        &self,
        tenant: &str,
        filter: &ProjectFilter,
        visibility: &Visibility,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<View>> {
        let rows =
            store::list_projects(self.db(), tenant, filter, visibility, after, limit).await?;
        let ids: Vec<String> = rows.iter().map(|s| s.project.id.clone()).collect();
        let totals = store::logged_totals(self.db(), tenant, &ids).await?;
        let config = self.config(tenant).await?.config;
        Ok(rows
            .into_iter()
            .map(|s| {
                let logged = crate::domain::Logged {
                    total: totals.get(&s.project.id).copied().unwrap_or(0),
                    ..crate::domain::Logged::default()
                };
                View {
                    project: s.project,
                    handover: s.handover,
                    logged,
                    config: config.clone(),
                }
            })
            .collect())
    }

    /// The progress lines of an account's projects (for an integration or a
    /// manager: the whole tenant's).
    pub async fn progress_lines(
        &self,
        tenant: &str,
        account: &str,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<View>> {
        let filter = ProjectFilter {
            account_id: Some(account.to_owned()),
            ..ProjectFilter::default()
        };
        self.list_views(tenant, &filter, &Visibility::Tenant, after, limit)
            .await
    }

    pub async fn list_logs(
        &self,
        actor: &Actor,
        tenant: &str,
        project_id: &str,
        person: Option<&str>,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<WorkLog>> {
        let stored = store::load_project(self.db(), tenant, project_id).await?;
        access::check_visible(&stored.project, actor)?;
        store::list_logs(self.db(), tenant, project_id, person, after, limit).await
    }

    /// NOT_FOUND unless the actor sees the alert: a project's through the
    /// project, a shortage as its person or a supervisor.
    pub(super) async fn check_alert_visible(
        &self,
        conn: &impl ConnectionTrait,
        actor: &Actor,
        tenant: &str,
        alert: &RiskAlert,
    ) -> Result<()> {
        let visible = if actor.supervisor() {
            true
        } else if alert.project_id.is_empty() {
            alert.person_id == actor.id
        } else {
            let stored = store::load_project(conn, tenant, &alert.project_id).await?;
            access::can_see(&stored.project, actor)
        };
        if visible {
            Ok(())
        } else {
            Err(DeliveryError::not_found(resource::RISK_ALERT, &alert.id))
        }
    }

    pub async fn list_alerts(
        &self,
        actor: &Actor,
        tenant: &str,
        filter: &AlertFilter,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<RiskAlert>> {
        if let Some(project) = &filter.project_id {
            let stored = store::load_project(self.db(), tenant, project).await?;
            access::check_visible(&stored.project, actor)?;
        }
        let visibility = access::visibility(actor);
        store::list_alerts(self.db(), tenant, filter, &visibility, after, limit).await
    }

    /// A person's capacity (set, or the tenant default) and planned load.
    pub async fn capacity_of(&self, tenant: &str, person: &str) -> Result<Capacity> {
        let cfg = self.config(tenant).await?.config;
        let stored = store::capacity(self.db(), tenant, person).await?;
        let mut c = match stored {
            Some((version, minutes, time, updater)) => Capacity {
                person_id: person.to_owned(),
                version,
                minutes_per_week: minutes,
                is_default: false,
                update_time: Some(time),
                updater,
                planned_minutes: 0,
                window_minutes: 0,
            },
            None => Capacity {
                person_id: person.to_owned(),
                version: 0,
                minutes_per_week: cfg.default_capacity_minutes_per_week,
                is_default: true,
                update_time: None,
                updater: String::new(),
                planned_minutes: 0,
                window_minutes: 0,
            },
        };
        self.fill_load(tenant, &mut c, &cfg).await?;
        Ok(c)
    }

    async fn fill_load(
        &self,
        tenant: &str,
        c: &mut Capacity,
        cfg: &crate::domain::DeliveryConfig,
    ) -> Result<()> {
        let today = Date::of_micros(crm_types::now_micros());
        let until = today.plus_days(i64::from(cfg.load_window_days));
        c.planned_minutes = store::planned_minutes(self.db(), tenant, &c.person_id, until).await?;
        c.window_minutes = risk::window_capacity(c.minutes_per_week, cfg.load_window_days);
        Ok(())
    }

    /// A page of the capacities that were set, by person, with each
    /// person's planned load (one grouped sum for the page).
    pub async fn list_capacities(
        &self,
        tenant: &str,
        after: Option<&str>,
        limit: u64,
    ) -> Result<Vec<Capacity>> {
        let cfg = self.config(tenant).await?.config;
        let rows = store::list_capacities(self.db(), tenant, after, limit).await?;
        let people: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
        let today = Date::of_micros(crm_types::now_micros());
        let until = today.plus_days(i64::from(cfg.load_window_days));
        let planned = store::planned_minutes_of(self.db(), tenant, &people, until).await?;
        Ok(rows
            .into_iter()
            .map(|(person, version, minutes, time, updater)| Capacity {
                planned_minutes: planned.get(&person).copied().unwrap_or(0),
                window_minutes: risk::window_capacity(minutes, cfg.load_window_days),
                person_id: person,
                version,
                minutes_per_week: minutes,
                is_default: false,
                update_time: Some(time),
                updater,
            })
            .collect())
    }
}
