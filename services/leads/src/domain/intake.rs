//! Intake (DOMAIN 1): a new lead, alone or as a row of an import, is
//! created, merged into the lead it duplicates, or refused, and an import
//! says per row why a row was not taken.

use serde::{Deserialize, Serialize};

use super::{
    Actor, Change, DuplicateIndex, Lead, LeadConfig, LeadError, Profile, Violation, merge_into,
    new_lead, visibility,
};

/// What to do when a new lead matches an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnDuplicate {
    Reject,
    Merge,
}

/// A new lead as asked for, its profile validated.
#[derive(Debug, Clone)]
pub struct Draft {
    pub profile: Profile,
    pub owner_id: Option<String>,
    pub next_follow_up_time: Option<i64>,
}

/// Why an import row was not stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    pub reason: String,
    pub field: String,
    pub description: String,
    pub existing_lead_id: String,
}

/// What became of one import row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowOutcome {
    pub index: usize,
    pub lead_id: Option<String>,
    pub merged: bool,
    pub rejection: Option<Rejection>,
}

/// An existing lead with a newcomer merged in.
#[derive(Debug, Clone)]
pub struct Merge {
    pub lead: Lead,
    /// The version the lead was read at: it is stored only if still there.
    pub read_version: i64,
    pub changes: Vec<Change>,
    /// The key the newcomer shares with it.
    pub key: &'static str,
}

/// What a newcomer becomes.
#[derive(Debug, Clone)]
pub enum Admission {
    Created(Lead),
    Merged(Merge),
}

/// Why a newcomer was refused, and the lead it duplicates, if any.
struct Refusal {
    duplicate_of: Option<(&'static str, String)>,
    error: LeadError,
}

/// Who brings new leads in, when, under which rules, and what to do with
/// duplicates: the context of a create or an import.
#[derive(Debug, Clone, Copy)]
pub struct Intake<'a> {
    pub tenant: &'a str,
    pub on_duplicate: OnDuplicate,
    pub actor: &'a Actor,
    pub config: &'a LeadConfig,
    pub now: i64,
}

impl Intake<'_> {
    /// Creates the lead `id` of `draft`, or merges it into (or refuses it
    /// as a duplicate of) the lead in `existing` it shares the strongest
    /// key with.
    pub fn admit(
        &self,
        id: String,
        draft: &Draft,
        existing: &DuplicateIndex,
    ) -> Result<Admission, LeadError> {
        self.try_admit(id, draft, existing).map_err(|r| r.error)
    }

    fn try_admit(
        &self,
        id: String,
        draft: &Draft,
        existing: &DuplicateIndex,
    ) -> Result<Admission, Refusal> {
        let Some((key, found)) = existing.find(&draft.profile.duplicate_keys()) else {
            return new_lead(
                id,
                self.tenant,
                draft.profile.clone(),
                draft.owner_id.clone(),
                draft.next_follow_up_time,
                self.actor,
                self.config,
                self.now,
            )
            .map(Admission::Created)
            .map_err(|error| Refusal {
                duplicate_of: None,
                error,
            });
        };
        // The duplicate is named only to a caller who may see it, lest a
        // refusal tell who else has a customer.
        let shown = |lead: &Lead| {
            if visibility(self.actor).allows(lead) {
                lead.id.clone()
            } else {
                String::new()
            }
        };
        let refuse = |error| Refusal {
            duplicate_of: Some((key, shown(found))),
            error,
        };
        let duplicate = || {
            refuse(LeadError::Duplicate {
                key,
                existing_id: shown(found),
            })
        };
        if self.on_duplicate == OnDuplicate::Reject {
            return Err(duplicate());
        }
        let mut lead = found.clone();
        let changes = match merge_into(&mut lead, &draft.profile, self.actor, self.now) {
            Ok(changes) => changes,
            // Not the caller's to change: refused as a duplicate, nothing
            // of the lead shown.
            Err(LeadError::NotOwner(_)) => return Err(duplicate()),
            Err(error) => return Err(refuse(error)),
        };
        // A filled-in phone or email another lead has would make two
        // leads one customer (and break the store's unique keys).
        if let Some((taken, other)) = lead
            .profile
            .duplicate_keys()
            .in_precedence()
            .find_map(|k| existing.get(&k).filter(|o| o.id != lead.id).map(|o| (k, o)))
        {
            let existing_id = shown(other);
            return Err(Refusal {
                duplicate_of: Some((taken.name(), existing_id.clone())),
                error: LeadError::MergeConflict {
                    key: taken.name(),
                    existing_id,
                },
            });
        }
        Ok(Admission::Merged(Merge {
            read_version: found.version,
            lead,
            changes,
            key,
        }))
    }

    /// Decides every row of an import against the leads in `existing` and
    /// the rows before it: an invalid row, a row sharing a key with a lead
    /// created earlier in the batch, a refused duplicate and a row the
    /// actor may not create are rejected with their reason; every other row
    /// is created or merged. `new_id` names each created lead.
    pub fn plan_import(
        &self,
        rows: &[Result<Draft, Vec<Violation>>],
        mut existing: DuplicateIndex,
        mut new_id: impl FnMut() -> String,
    ) -> ImportPlan {
        let mut plan = ImportPlan::default();
        // Leads created by earlier rows of this import, by their keys.
        let mut in_batch = DuplicateIndex::default();
        for (index, row) in rows.iter().enumerate() {
            let draft = match row {
                Ok(draft) => draft,
                Err(violations) => {
                    plan.outcomes.push(rejected(index, invalid_row(violations)));
                    continue;
                }
            };
            if let Some((key, earlier)) = in_batch.find(&draft.profile.duplicate_keys()) {
                let rejection = Rejection {
                    reason: "DUPLICATE_IN_BATCH".into(),
                    field: key.into(),
                    description: format!("same {key} as an earlier row"),
                    existing_lead_id: earlier.id.clone(),
                };
                plan.outcomes.push(rejected(index, rejection));
                continue;
            }
            match self.try_admit(new_id(), draft, &existing) {
                Ok(admission) => {
                    let (lead, merged) = match &admission {
                        Admission::Created(lead) => {
                            in_batch.insert(lead.clone());
                            (lead, false)
                        }
                        Admission::Merged(merge) => {
                            existing.insert(merge.lead.clone());
                            (&merge.lead, true)
                        }
                    };
                    plan.outcomes.push(RowOutcome {
                        index,
                        lead_id: Some(lead.id.clone()),
                        merged,
                        rejection: None,
                    });
                    plan.admitted.push((index, admission));
                }
                Err(refusal) => plan.outcomes.push(rejected(index, refused_row(refusal))),
            }
        }
        plan
    }
}

/// The leads `outcomes` name, as `actor` may be told of them now: an id
/// of a lead the actor may not see (another's, or gone) is left out, while
/// the row still says what became of it. An import's replay returns the
/// first call's outcomes, perhaps to another caller of the tenant or after
/// a lead changed hands, so they are filtered as a replayed create is.
/// `named` are the leads among the outcomes' ids that still exist.
pub fn shown_to(outcomes: &mut [RowOutcome], actor: &Actor, named: &[Lead]) {
    let view = visibility(actor);
    let seen: std::collections::HashSet<&str> = named
        .iter()
        .filter(|l| view.allows(l))
        .map(|l| l.id.as_str())
        .collect();
    let visible = |id: &str| seen.contains(id);
    for outcome in outcomes {
        if outcome.lead_id.as_deref().is_some_and(|id| !visible(id)) {
            outcome.lead_id = Some(String::new());
        }
        if let Some(rejection) = outcome.rejection.as_mut()
            && !rejection.existing_lead_id.is_empty()
            && !visible(&rejection.existing_lead_id)
        {
            rejection.existing_lead_id.clear();
        }
    }
}

/// The lead ids `outcomes` name, once each: what [`shown_to`] needs loaded.
pub fn named_leads(outcomes: &[RowOutcome]) -> Vec<String> {
    let mut ids: Vec<String> = outcomes
        .iter()
        .flat_map(|o| {
            let existing = o.rejection.as_ref().map(|r| r.existing_lead_id.as_str());
            o.lead_id.as_deref().into_iter().chain(existing)
        })
        .filter(|id| !id.is_empty())
        .map(str::to_owned)
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids
}

/// What an import does: the outcome of every row, and the creations and
/// merges to store, in row order with their row's index.
#[derive(Debug, Default)]
pub struct ImportPlan {
    pub outcomes: Vec<RowOutcome>,
    pub admitted: Vec<(usize, Admission)>,
}

fn rejected(index: usize, rejection: Rejection) -> RowOutcome {
    RowOutcome {
        index,
        lead_id: None,
        merged: false,
        rejection: Some(rejection),
    }
}

/// An invalid row: its first field, and every violation in the description.
fn invalid_row(violations: &[Violation]) -> Rejection {
    let all = violations
        .iter()
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ");
    Rejection {
        reason: "INVALID_FIELD".into(),
        field: violations
            .first()
            .map(|v| v.field.clone())
            .unwrap_or_default(),
        description: if all.is_empty() {
            "invalid".into()
        } else {
            all
        },
        existing_lead_id: String::new(),
    }
}

fn refused_row(refusal: Refusal) -> Rejection {
    match (refusal.duplicate_of, refusal.error) {
        (Some((key, existing)), LeadError::Duplicate { .. }) => Rejection {
            reason: "DUPLICATE_LEAD".into(),
            field: key.into(),
            description: format!("a lead with the same {key} exists"),
            existing_lead_id: existing,
        },
        (Some((key, existing)), LeadError::MergeConflict { .. }) => Rejection {
            reason: "MERGE_CONFLICT".into(),
            field: key.into(),
            description: format!("merging would give the lead the {key} of another lead"),
            existing_lead_id: existing,
        },
        // The duplicate could not take the merge (it is closed).
        (Some((key, existing)), error) => Rejection {
            reason: "DUPLICATE_LEAD".into(),
            field: key.into(),
            description: error.to_string(),
            existing_lead_id: existing,
        },
        (None, error) => Rejection {
            reason: "NOT_ALLOWED".into(),
            field: "owner_id".into(),
            description: error.to_string(),
            existing_lead_id: String::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::domain::{
        LeadStatus,
        testing::{lead, manager, profile, sales},
    };

    fn draft(phone: &str, email: &str) -> Draft {
        Draft {
            profile: Profile {
                phone: phone.into(),
                email: email.into(),
                ..profile()
            },
            owner_id: None,
            next_follow_up_time: None,
        }
    }

    fn existing(phone: &str, email: &str) -> Lead {
        let mut l = lead("old", Some("amy"));
        l.profile.phone = phone.into();
        l.profile.email = email.into();
        l
    }

    fn plan(
        rows: Vec<Result<Draft, Vec<Violation>>>,
        leads: Vec<Lead>,
        on_duplicate: OnDuplicate,
        actor: &Actor,
    ) -> ImportPlan {
        let mut n = 0;
        let config = LeadConfig::default();
        let intake = Intake {
            tenant: "t",
            on_duplicate,
            actor,
            config: &config,
            now: 0,
        };
        intake.plan_import(&rows, DuplicateIndex::new(leads), || {
            n += 1;
            format!("new-{n}")
        })
    }

    fn reason(o: &RowOutcome) -> (&str, &str, &str) {
        let r = o.rejection.as_ref().unwrap();
        (&r.reason, &r.field, &r.existing_lead_id)
    }

    #[test]
    fn every_rejected_row_says_why() {
        let mut closed = existing("654321", "");
        closed.status = LeadStatus::Disqualified;
        let mut not_mine = draft("", "x@acme.cn");
        not_mine.owner_id = Some("bob".into());
        let rows = vec![
            Err(vec![
                Violation::new("email", "not an email address"),
                Violation::new("company", "required"),
            ]),
            Ok(draft("123456", "")),
            Ok(draft("123-456", "")),
            Ok(draft("", "old@acme.cn")),
            Ok(draft("654321", "")),
            Ok(not_mine),
        ];
        let plan = plan(
            rows,
            vec![existing("", "old@acme.cn"), closed],
            OnDuplicate::Reject,
            &sales("amy"),
        );
        let o = &plan.outcomes;
        assert_eq!(reason(&o[0]), ("INVALID_FIELD", "email", ""));
        assert_eq!(
            o[0].rejection.as_ref().unwrap().description,
            "email: not an email address; company: required"
        );
        assert_eq!(o[1].lead_id.as_deref(), Some("new-1"));
        assert_eq!(reason(&o[2]), ("DUPLICATE_IN_BATCH", "phone", "new-1"));
        assert_eq!(reason(&o[3]), ("DUPLICATE_LEAD", "email", "old"));
        assert_eq!(reason(&o[4]), ("DUPLICATE_LEAD", "phone", "old"));
        assert_eq!(reason(&o[5]), ("NOT_ALLOWED", "owner_id", ""));
        assert_eq!(plan.admitted.len(), 1);
    }

    #[test]
    fn rows_merging_into_one_lead_build_on_each_other() {
        let rows = vec![
            Ok(Draft {
                profile: Profile {
                    email: "old@acme.cn".into(),
                    industry: "robots".into(),
                    ..profile()
                },
                owner_id: None,
                next_follow_up_time: None,
            }),
            Ok(Draft {
                profile: Profile {
                    email: "old@acme.cn".into(),
                    region: "east".into(),
                    ..profile()
                },
                owner_id: None,
                next_follow_up_time: None,
            }),
        ];
        let old = existing("", "old@acme.cn");
        let plan = plan(rows, vec![old], OnDuplicate::Merge, &manager());
        assert!(
            plan.outcomes
                .iter()
                .all(|o| o.merged && o.rejection.is_none())
        );
        let Admission::Merged(second) = &plan.admitted[1].1 else {
            panic!("a merge");
        };
        assert_eq!(
            (
                second.lead.profile.industry.as_str(),
                second.lead.profile.region.as_str()
            ),
            ("robots", "east"),
            "the second row merges into the lead as the first left it"
        );
        assert_eq!(second.read_version, 2);
    }

    fn intake<'a>(actor: &'a Actor, config: &'a LeadConfig, on: OnDuplicate) -> Intake<'a> {
        Intake {
            tenant: "t",
            on_duplicate: on,
            actor,
            config,
            now: 0,
        }
    }

    #[test]
    fn a_merge_needs_the_right_to_change_the_target() {
        let config = LeadConfig::default();
        let amys = existing("123456", "amy@acme.cn");
        let index = DuplicateIndex::new([amys.clone()]);
        let bob = sales("bob");
        let refused = intake(&bob, &config, OnDuplicate::Merge).admit(
            "n".into(),
            &draft("123456", ""),
            &index,
        );
        assert!(
            matches!(refused, Err(LeadError::Duplicate { key: "phone", ref existing_id }) if existing_id.is_empty()),
            "refused, and amy's lead not named to bob"
        );
        let amy = sales("amy");
        let merged = intake(&amy, &config, OnDuplicate::Merge).admit(
            "n".into(),
            &draft("123456", ""),
            &index,
        );
        assert!(matches!(merged, Ok(Admission::Merged(_))));
        let mut pool = amys;
        pool.owner_id = None;
        let refused = intake(&bob, &config, OnDuplicate::Merge).admit(
            "n".into(),
            &draft("123456", ""),
            &DuplicateIndex::new([pool]),
        );
        assert!(
            matches!(refused, Err(LeadError::Duplicate { ref existing_id, .. }) if existing_id == "old"),
            "a pool lead is seen but must be claimed before it changes"
        );
    }

    #[test]
    fn a_duplicate_is_named_only_to_who_may_see_it() {
        let rows = vec![Ok(draft("123456", ""))];
        let leads = vec![existing("123456", "")];
        for (actor, shown) in [
            (sales("bob"), ""),
            (sales("amy"), "old"),
            (manager(), "old"),
        ] {
            let plan = plan(rows.clone(), leads.clone(), OnDuplicate::Reject, &actor);
            assert_eq!(
                reason(&plan.outcomes[0]),
                ("DUPLICATE_LEAD", "phone", shown),
                "{}",
                actor.id
            );
        }
    }

    #[test]
    fn a_merge_filling_another_leads_key_is_rejected() {
        let mut third = existing("", "taken@acme.cn");
        third.id = "third".into();
        let rows = vec![
            Ok(draft("123456", "taken@acme.cn")),
            Ok(draft("654321", "")),
        ];
        let plan = plan(
            rows,
            vec![existing("123456", ""), third],
            OnDuplicate::Merge,
            &manager(),
        );
        assert_eq!(
            reason(&plan.outcomes[0]),
            ("MERGE_CONFLICT", "email", "third")
        );
        assert!(plan.outcomes[1].rejection.is_none());
        assert_eq!(plan.admitted.len(), 1, "the other row is still taken");
    }

    #[test]
    fn a_single_duplicate_is_refused_by_its_strongest_key() {
        let index = DuplicateIndex::new([existing("123456", "old@acme.cn")]);
        let config = LeadConfig::default();
        let intake = Intake {
            tenant: "t",
            on_duplicate: OnDuplicate::Reject,
            actor: &sales("amy"),
            config: &config,
            now: 0,
        };
        let err = intake.admit("n".into(), &draft("123456", "old@acme.cn"), &index);
        assert!(matches!(
            err,
            Err(LeadError::Duplicate { key: "phone", ref existing_id }) if existing_id == "old"
        ));
    }

    #[test]
    fn outcomes_name_only_the_leads_the_caller_sees_now() {
        let row = |index, id: &str, existing: &str| RowOutcome {
            index,
            lead_id: (!id.is_empty()).then(|| id.to_owned()),
            merged: false,
            rejection: (!existing.is_empty()).then(|| Rejection {
                reason: "DUPLICATE_LEAD".into(),
                field: "phone".into(),
                description: String::new(),
                existing_lead_id: existing.into(),
            }),
        };
        let outcomes = vec![row(0, "amys", ""), row(1, "", "pooled"), row(2, "gone", "")];
        assert_eq!(named_leads(&outcomes), ["amys", "gone", "pooled"]);
        let named = [lead("amys", Some("amy")), lead("pooled", None)];

        let mut bobs = outcomes.clone();
        shown_to(&mut bobs, &sales("bob"), &named);
        assert_eq!(bobs[0].lead_id.as_deref(), Some(""), "amy's lead");
        assert_eq!(
            bobs[1].rejection.as_ref().unwrap().existing_lead_id,
            "pooled"
        );
        assert_eq!(bobs[2].lead_id.as_deref(), Some(""), "a lead gone since");

        let mut amys = outcomes.clone();
        shown_to(&mut amys, &sales("amy"), &named);
        assert_eq!(amys[0].lead_id.as_deref(), Some("amys"));
        let mut managers = outcomes;
        shown_to(&mut managers, &manager(), &named);
        assert_eq!(managers[0].lead_id.as_deref(), Some("amys"));
    }
}
