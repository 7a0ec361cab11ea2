//! The lifecycle timers as the sweeper runs them: each contract in a unit
//! of work of its own, so one that is busy or broken holds up nobody else.

use crm_types::AuditEntry;

use super::{Result, Trail, UseCases};
use crate::domain::{self, Date, Fired};
use crate::store::{self, TimerRef};
use crate::wire::events;

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    /// Timers fired (a contract may fire several).
    pub fired: usize,
    /// Contracts that failed (unreadable, or a write that failed): tried
    /// again at the next sweep.
    pub skipped: usize,
}

impl UseCases {
    /// Up to `batch` contracts of any tenant with a timer due at `now`,
    /// after `after` in the sweeper's order.
    pub async fn due_timers(
        &self,
        now: i64,
        after: Option<&TimerRef>,
        batch: u64,
    ) -> Result<Vec<TimerRef>> {
        store::due_timers(self.db(), now, Date::of_micros(now), after, batch).await
    }

    /// Fires the timers due on one contract as `sweeper`, in a unit of work
    /// of its own; a contract another transaction holds is passed over
    /// until the next sweep. Returns how many fired.
    pub async fn fire_timers(
        &self,
        tenant: &str,
        id: &str,
        sweeper: &str,
        now: i64,
    ) -> Result<usize> {
        self.uow
            .run(tenant, |tx| async move {
                let Some(mut c) = store::lock_unless_busy(&*tx, tenant, id).await? else {
                    return Trail::default().done(0);
                };
                let read = c.version;
                let fired = domain::fire(&mut c, sweeper, now);
                if fired.is_empty() {
                    return Trail::default().done(0);
                }
                store::save_contract(&*tx, &c, read).await?;
                let mut trail = Trail::default();
                for f in &fired {
                    let (action, reason) = match f {
                        Fired::Activated => {
                            trail.event(events::activated(&c, now));
                            ("contract.activated", String::new())
                        }
                        Fired::Expired => {
                            trail.event(events::expired(&c, now));
                            ("contract.expired", String::new())
                        }
                        Fired::RenewalDue { end, days_left } => {
                            trail.event(events::renewal_due(&c, *end, *days_left, now));
                            (
                                "contract.renewal_due",
                                format!("ends {} in {days_left} days", end.iso()),
                            )
                        }
                        Fired::StepOverdue(step) => {
                            trail.event(events::approval_overdue(&c, *step, now));
                            ("contract.approval_overdue", format!("step {}", step + 1))
                        }
                        Fired::MilestoneOverdue(m) => {
                            if let Some(m) = c.milestones.iter().find(|x| &x.id == m) {
                                trail.event(events::milestone_overdue(&c, m, now));
                            }
                            ("milestone.overdue", format!("milestone {m}"))
                        }
                    };
                    trail.audit(AuditEntry::new(&c.id, action, sweeper, now).with_reason(reason));
                }
                trail.done(fired.len())
            })
            .await
    }
}
