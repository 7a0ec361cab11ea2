//! Intake: one lead, or an import of many in one unit of work.

use serde::{Deserialize, Serialize};

use super::{App, Effect, RequestKey, entry, recorded};
use crate::{
    domain::{
        Admission, AuditEntry, Draft, DuplicateIndex, Intake, Lead, LeadError, Merge, RowOutcome,
        Violation, check_visible, named_leads, shown_to, visibility,
    },
    store, wire,
};

/// Ids per look-up of an import's leads: well under either database's
/// bind-parameter limit.
const LOAD_CHUNK: usize = 500;

/// What a CreateLead call recorded for its replay.
#[derive(Serialize, Deserialize)]
struct Created {
    lead_id: String,
    merged: bool,
}

/// The audit entry of an admitted lead; `context` prefixes the reason
/// (the import row) when there is one.
fn admission_entry(admission: &Admission, actor: &str, now: i64, context: &str) -> AuditEntry {
    let reason = |why: String| match (context.is_empty(), why.is_empty()) {
        (true, _) => why,
        (false, true) => context.to_owned(),
        (false, false) => format!("{context}, {why}"),
    };
    match admission {
        Admission::Created(lead) => {
            entry(lead, "lead.created", actor, now, lead.creation_changes())
                .with_reason(reason(String::new()))
        }
        Admission::Merged(Merge {
            lead, changes, key, ..
        }) => entry(lead, "lead.merged", actor, now, changes.clone())
            .with_reason(reason(format!("duplicate by {key}"))),
    }
}

/// An import decided against the leads its rows' keys found: what to
/// write, ready before the write turn.
struct ImportWork {
    /// The leads it was decided against, as (id, version), sorted.
    against: Vec<(String, i64)>,
    outcomes: Vec<RowOutcome>,
    created: Vec<Lead>,
    merged: Vec<Merge>,
    audit: Vec<AuditEntry>,
    events: Vec<crm_events::NewEvent>,
}

impl ImportWork {
    fn plan(
        intake: &Intake<'_>,
        rows: &[Result<Draft, Vec<Violation>>],
        existing: Vec<Lead>,
    ) -> Self {
        let against = versions(&existing);
        let plan = intake.plan_import(rows, DuplicateIndex::new(existing), crm_store::new_id);
        let mut work = ImportWork {
            against,
            outcomes: plan.outcomes,
            created: Vec::new(),
            merged: Vec::new(),
            audit: Vec::with_capacity(plan.admitted.len()),
            events: Vec::with_capacity(plan.admitted.len()),
        };
        for (index, admission) in plan.admitted {
            let context = format!("import row {index}");
            let audit = admission_entry(&admission, &intake.actor.id, intake.now, &context);
            match admission {
                Admission::Created(lead) => {
                    work.events
                        .extend(wire::events::of_change(&lead, None, &audit));
                    work.created.push(lead);
                }
                Admission::Merged(merge) => {
                    let lead = &merge.lead;
                    work.events
                        .extend(wire::events::of_change(lead, Some(lead.status), &audit));
                    work.merged.push(merge);
                }
            }
            work.audit.push(audit);
        }
        work
    }

    /// Whether `existing` are the leads, at the versions, it was decided
    /// against: then deciding again would decide the same.
    fn made_against(&self, existing: &[Lead]) -> bool {
        versions(existing) == self.against
    }
}

fn versions(leads: &[Lead]) -> Vec<(String, i64)> {
    let mut versions: Vec<_> = leads.iter().map(|l| (l.id.clone(), l.version)).collect();
    versions.sort_unstable();
    versions.dedup();
    versions
}

impl App {
    /// Creates a lead, or finds its duplicate and refuses or merges; a
    /// retry with the same request id returns the first outcome.
    pub async fn create(
        &self,
        intake: Intake<'_>,
        request: Option<RequestKey<'_>>,
        draft: &Draft,
    ) -> Result<(Lead, bool), LeadError> {
        let Intake {
            tenant, actor, now, ..
        } = intake;
        let created = self
            .uow
            .run_once(tenant, request, |tx| async move {
                let keys = draft.profile.duplicate_keys();
                let existing = store::leads_sharing_keys(&*tx, tenant, &[&keys]).await?;
                let existing = DuplicateIndex::new(existing);
                let admission = intake.admit(crm_store::new_id(), draft, &existing)?;
                let audit = admission_entry(&admission, &actor.id, now, "");
                match admission {
                    Admission::Created(lead) => {
                        store::insert(&*tx, &lead).await?;
                        let created = Created {
                            lead_id: lead.id.clone(),
                            merged: false,
                        };
                        Ok::<_, LeadError>(recorded(created, &lead, None, audit))
                    }
                    Admission::Merged(merge) => {
                        store::save(&*tx, &merge.lead, merge.read_version).await?;
                        let created = Created {
                            lead_id: merge.lead.id.clone(),
                            merged: true,
                        };
                        Ok(recorded(
                            created,
                            &merge.lead,
                            Some(merge.lead.status),
                            audit,
                        ))
                    }
                }
            })
            .await?;
        let lead = store::load(self.db(), tenant, &created.lead_id).await?;
        // A replay returns the recorded lead: only to who may see it now.
        check_visible(&lead, actor)?;
        Ok((lead, created.merged))
    }

    /// Imports rows in one unit of work: every valid, non-duplicate row is
    /// stored, every other row reported with its reason; an interrupted
    /// import stored nothing, and its retry with the same request id does
    /// the work once.
    ///
    /// On SQLite writers take turns, so the turn does little more than
    /// write: the import is planned (duplicates found, leads scored, audit
    /// entries and events made) before it, against the leads its rows'
    /// keys find then. In the turn those leads are read again; only if
    /// one of them changed meanwhile is the import planned again there.
    /// Either way the rows are decided against what the transaction sees.
    /// Whether `request` was already done: its retry is answered from the
    /// record without drawing on the tenant's import budget again.
    pub async fn already_done(&self, request: Option<RequestKey<'_>>) -> Result<bool, LeadError> {
        let Some(key) = request else {
            return Ok(false);
        };
        let prior = crm_store::idempotency::prior(self.db(), key)
            .await
            .map_err(LeadError::store)?;
        Ok(matches!(prior, crm_store::idempotency::Prior::Same(_)))
    }

    pub async fn import(
        &self,
        intake: Intake<'_>,
        request: Option<RequestKey<'_>>,
        rows: &[Result<Draft, Vec<Violation>>],
    ) -> Result<Vec<RowOutcome>, LeadError> {
        let Intake { tenant, actor, .. } = intake;
        let keys: Vec<_> = rows
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .map(|d| d.profile.duplicate_keys())
            .collect();
        let keys: Vec<_> = keys.iter().collect();
        let seen = store::leads_sharing_keys(self.db(), tenant, &keys).await?;
        let planned = {
            // A big import's plan is CPU work: off the async workers, so
            // several imports at once cannot stall other calls (or the
            // database probe) of this process.
            let (tenant, actor, config) = (tenant.to_owned(), actor.clone(), intake.config.clone());
            let (on_duplicate, now, rows) = (intake.on_duplicate, intake.now, rows.to_vec());
            let permit = std::sync::Arc::clone(&self.planning)
                .acquire_owned()
                .await
                .map_err(|e| LeadError::Store(Box::new(e)))?;
            tokio::task::spawn_blocking(move || {
                let _permit = permit;
                let intake = Intake {
                    tenant: &tenant,
                    on_duplicate,
                    actor: &actor,
                    config: &config,
                    now,
                };
                ImportWork::plan(&intake, &rows, seen)
            })
            .await
            .map_err(|e| LeadError::Store(Box::new(e)))?
        };
        let (planned, keys) = (&planned, &keys);
        let mut outcomes = self
            .uow
            .run_once(tenant, request, |tx| async move {
                let existing = store::leads_sharing_keys(&*tx, tenant, keys).await?;
                let replanned;
                let work = if planned.made_against(&existing) {
                    planned
                } else {
                    replanned = ImportWork::plan(&intake, rows, existing);
                    &replanned
                };
                for merge in &work.merged {
                    store::save(&*tx, &merge.lead, merge.read_version).await?;
                }
                store::insert_many(&*tx, &work.created).await?;
                Ok::<_, LeadError>(
                    Effect::new(work.outcomes.clone())
                        .events(work.events.iter().cloned())
                        .audits(work.audit.iter().cloned()),
                )
            })
            .await?;
        // A replay names only the leads the caller may see now, as a
        // replayed create does; who sees every lead needs no look.
        if visibility(actor).restricted_to().is_some() {
            let mut named = Vec::new();
            for ids in named_leads(&outcomes).chunks(LOAD_CHUNK) {
                named.extend(store::load_many(self.db(), tenant, ids).await?);
            }
            shown_to(&mut outcomes, actor, &named);
        }
        Ok(outcomes)
    }
}
