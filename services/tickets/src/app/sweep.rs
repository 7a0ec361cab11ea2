//! The SLA clocks as the sweeper drives them: each ticket in a unit of
//! work of its own, so one that is busy or broken holds up nobody else.

use crm_types::AuditEntry;

use super::accounts::touch_account;
use super::{Result, Trail, UseCases};
use crate::domain::{self, ClockKind, Fired};
use crate::store::{self, DueRef};
use crate::wire::events;

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Warnings and breaches raised.
    pub fired: usize,
    /// Tickets that failed (unreadable, or a write that failed): tried
    /// again at the next sweep.
    pub skipped: usize,
}

fn clock_name(c: ClockKind) -> &'static str {
    match c {
        ClockKind::FirstResponse => "first response",
        ClockKind::Resolution => "resolution",
    }
}

impl UseCases {
    /// Up to `batch` tickets of any tenant with an SLA check due at `now`.
    pub async fn due_tickets(
        &self,
        now: i64,
        after: Option<&DueRef>,
        batch: u64,
    ) -> Result<Vec<DueRef>> {
        store::due_tickets(self.db(), now, after, batch).await
    }

    /// Raises the warnings and breaches due on one ticket as `sweeper`; a
    /// ticket another transaction holds is passed over until the next
    /// sweep. Returns how many fired.
    pub async fn sweep_ticket(
        &self,
        tenant: &str,
        id: &str,
        sweeper: &str,
        now: i64,
    ) -> Result<usize> {
        let config = self.rules(tenant).await?;
        let config = &config;
        self.uow
            .run(tenant, |tx| async move {
                let Some(mut t) = store::lock_ticket_unless_busy(&*tx, tenant, id).await? else {
                    return Trail::default().done(0);
                };
                let read = t.version;
                let fired = domain::sweep(&mut t, sweeper, config, now);
                if fired.is_empty() && t.version == read {
                    // Nothing due after all (e.g. the calendar changed):
                    // the next check moved; save it so it is not asked again.
                    store::save_ticket(&*tx, &t, read).await?;
                    return Trail::default().done(0);
                }
                store::save_ticket(&*tx, &t, read).await?;
                let mut trail = Trail::default();
                let mut breaches = 0;
                for f in &fired {
                    match f {
                        Fired::Warning(clock) => {
                            trail.event(events::warning(&t, *clock, now));
                            trail.audit(
                                AuditEntry::new(&t.id, "ticket.sla_warning", sweeper, now)
                                    .with_reason(clock_name(*clock)),
                            );
                        }
                        Fired::Breach {
                            clock,
                            level,
                            next_assignee,
                            previous_assignee,
                        } => {
                            breaches += 1;
                            trail.event(events::breached(
                                &t,
                                *clock,
                                *level,
                                next_assignee.as_deref(),
                                now,
                            ));
                            trail.audit(
                                AuditEntry::new(&t.id, "ticket.sla_breached", sweeper, now)
                                    .with_reason(format!(
                                        "{}, escalation level {level}",
                                        clock_name(*clock)
                                    )),
                            );
                            if next_assignee != previous_assignee {
                                if let Some(next) = next_assignee {
                                    store::mark_assigned(&*tx, tenant, next, now).await?;
                                }
                                trail.event(events::assigned(
                                    &t,
                                    previous_assignee.as_deref(),
                                    now,
                                ));
                            }
                        }
                    }
                }
                if breaches > 0 {
                    touch_account(
                        &*tx,
                        tenant,
                        &t.account_id,
                        config,
                        sweeper,
                        now,
                        &mut trail,
                        |a| a.stats.breaches += breaches,
                    )
                    .await?;
                }
                trail.done(fired.len())
            })
            .await
    }
}
