//! What a change did to a record's fields, and the audit entry that records it.

use serde::{Deserialize, Serialize};

/// One field's value before and after a change, in display form: what an
/// audit entry records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub field: &'static str,
    pub old: String,
    pub new: String,
}

impl Change {
    /// The change of `field`, or `None` when the value stayed the same.
    pub fn of(field: &'static str, old: impl ToString, new: impl ToString) -> Option<Change> {
        let (old, new) = (old.to_string(), new.to_string());
        (old != new).then_some(Change { field, old, new })
    }
}

/// One field's value before and after, in display form, as the audit trail
/// keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub old: String,
    pub new: String,
}

impl From<Change> for FieldChange {
    fn from(c: Change) -> Self {
        FieldChange {
            field: c.field.to_owned(),
            old: c.old,
            new: c.new,
        }
    }
}

/// An entry of the audit trail: who did what to which record, when, and
/// which fields changed from what to what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    pub id: String,
    pub subject_id: String,
    pub action: String,
    pub actor: String,
    pub time: i64,
    pub changes: Vec<FieldChange>,
    pub reason: String,
}

impl AuditEntry {
    /// A new entry with a fresh id.
    pub fn new(subject_id: &str, action: &str, actor: &str, time: i64) -> Self {
        AuditEntry {
            id: crate::new_id(),
            subject_id: subject_id.to_owned(),
            action: action.to_owned(),
            actor: actor.to_owned(),
            time,
            changes: Vec::new(),
            reason: String::new(),
        }
    }

    pub fn with_changes(mut self, changes: Vec<FieldChange>) -> Self {
        self.changes = changes;
        self
    }

    /// The entry with the domain's `changes` recorded.
    pub fn with_field_changes(self, changes: Vec<Change>) -> Self {
        self.with_changes(changes.into_iter().map(FieldChange::from).collect())
    }

    pub fn with_reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }
}
