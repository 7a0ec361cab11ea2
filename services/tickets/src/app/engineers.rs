//! Engineers' skills and duty, and the queue an engineer coming on duty
//! takes from.

use std::collections::HashMap;

use crm_types::{Actor, AuditEntry, Change, Role, now_micros};
use sea_orm::ConnectionTrait;

use super::{Page, Result, Trail, UseCases};
use crate::domain::{self, Candidate, Engineer, TicketError, TicketsConfig, choose, resource};
use crate::store;
use crate::wire::events;

/// The most queued tickets one engineer's coming on duty dispatches.
pub const MAX_TAKEN: u64 = 50;

/// An engineer as a manager sets it.
#[derive(Debug, Clone)]
pub struct EngineerInput {
    pub id: String,
    pub etag: String,
    pub display_name: String,
    pub skills: Vec<String>,
    pub on_duty: Option<bool>,
}

/// Dispatches the queued tickets of `engineer`'s skills again, VIP accounts
/// and higher priorities first, each to the best candidate of its category
/// (the engineer now among them). Returns the ids assigned to `engineer`.
async fn take_queue(
    conn: &impl ConnectionTrait,
    e: &Engineer,
    config: &TicketsConfig,
    actor: &str,
    now: i64,
    trail: &mut Trail,
) -> Result<Vec<String>> {
    if !e.on_duty || e.skills.is_empty() {
        return Ok(Vec::new());
    }
    let queued = store::queued(conn, &e.tenant, &e.skills, MAX_TAKEN).await?;
    let mut pools: HashMap<String, Vec<Candidate>> = HashMap::new();
    let mut taken = Vec::new();
    for mut t in queued {
        if !pools.contains_key(&t.category) {
            let c = store::candidates(conn, &e.tenant, &t.category).await?;
            pools.insert(t.category.clone(), c);
        }
        let Some(pool) = pools.get_mut(&t.category) else {
            continue;
        };
        let Some(chosen) = choose(pool).map(|c| c.id.clone()) else {
            continue;
        };
        let read = t.version;
        domain::assign(&mut t, &chosen, actor, config, now)?;
        store::save_ticket(conn, &t, read).await?;
        store::mark_assigned(conn, &e.tenant, &chosen, now).await?;
        // The same engineer may be a candidate of several categories.
        for c in pools.values_mut().flatten().filter(|c| c.id == chosen) {
            c.open += 1;
            c.last_assigned_time = Some(now);
        }
        trail.audit(
            AuditEntry::new(&t.id, "ticket.assigned", actor, now)
                .with_reason(format!("dispatched to {chosen} from the queue")),
        );
        trail.event(events::assigned(&t, None, now));
        if chosen == e.id {
            taken.push(t.id.clone());
        }
    }
    Ok(taken)
}

impl UseCases {
    /// Creates or replaces an engineer; one on duty takes from the queue.
    pub async fn upsert_engineer(
        &self,
        actor: &Actor,
        tenant: &str,
        input: EngineerInput,
    ) -> Result<(Engineer, Vec<String>)> {
        let config = self.rules(tenant).await?;
        let (config, input) = (&config, &input);
        self.uow
            .run(tenant, |tx| async move {
                let now = now_micros();
                let existing = store::load_engineer(&*tx, tenant, &input.id).await?;
                let read = existing.as_ref().map(|e| e.version);
                if let Some(v) = read {
                    domain::check_etag(&input.etag, v)?;
                }
                let mut e = existing.clone().unwrap_or(Engineer {
                    id: input.id.clone(),
                    tenant: tenant.to_owned(),
                    version: 0,
                    display_name: String::new(),
                    skills: Vec::new(),
                    on_duty: false,
                    last_assigned_time: None,
                    update_time: now,
                    updater: actor.id.clone(),
                });
                let mut changes = Vec::new();
                changes.extend(Change::of(
                    "display_name",
                    &e.display_name,
                    &input.display_name,
                ));
                changes.extend(Change::of(
                    "skills",
                    e.skills.join(","),
                    input.skills.join(","),
                ));
                e.display_name = input.display_name.clone();
                e.skills = input.skills.clone();
                if let Some(on) = input.on_duty {
                    changes.extend(Change::of("on_duty", e.on_duty, on));
                    e.on_duty = on;
                }
                e.version += 1;
                e.update_time = now;
                e.updater = actor.id.clone();
                store::save_engineer(&*tx, &e, read).await?;
                let mut trail = Trail::default();
                trail.audit(
                    AuditEntry::new(&e.id, "engineer.upserted", &actor.id, now)
                        .with_field_changes(changes),
                );
                let taken = take_queue(&*tx, &e, config, &actor.id, now, &mut trail).await?;
                trail.done((e, taken))
            })
            .await
    }

    /// Puts an engineer on or off duty (managers and admins; an engineer
    /// for themselves).
    pub async fn set_duty(
        &self,
        actor: &Actor,
        tenant: &str,
        id: &str,
        etag: &str,
        on_duty: bool,
    ) -> Result<(Engineer, Vec<String>)> {
        let current = self.engineer(actor, tenant, id).await?;
        self.upsert_engineer(
            actor,
            tenant,
            EngineerInput {
                id: id.to_owned(),
                etag: if etag.is_empty() {
                    crm_types::Etag::of_version(u64::try_from(current.version).unwrap_or_default())
                        .to_string()
                } else {
                    etag.to_owned()
                },
                display_name: current.display_name,
                skills: current.skills,
                on_duty: Some(on_duty),
            },
        )
        .await
    }

    /// One engineer: managers and admins see all, an engineer only
    /// themselves (NOT_FOUND otherwise, as for another tenant's).
    pub async fn engineer(&self, actor: &Actor, tenant: &str, id: &str) -> Result<Engineer> {
        let supervisor = actor.has(Role::Manager) || actor.has(Role::Admin);
        if !supervisor && actor.id != id {
            return Err(TicketError::not_found(resource::ENGINEER, id));
        }
        store::load_engineer(self.db(), tenant, id)
            .await?
            .ok_or_else(|| TicketError::not_found(resource::ENGINEER, id))
    }

    pub async fn open_load(&self, tenant: &str, ids: &[String]) -> Result<HashMap<String, u64>> {
        store::open_loads(self.db(), tenant, ids).await
    }

    pub async fn list_engineers(
        &self,
        tenant: &str,
        on_duty_only: bool,
        page: Page<'_, String>,
    ) -> Result<Vec<Engineer>> {
        store::list_engineers(self.db(), tenant, on_duty_only, page.after, page.limit).await
    }
}
