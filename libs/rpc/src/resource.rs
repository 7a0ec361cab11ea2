//! Conventions of resources on the wire: ids, etags, audit entries.

use crm_proto::crm::common::v1 as common;
use crm_types::Etag;

use crate::{FieldViolation, fields};

/// Checks an id a request names a record by: required, and as
/// [`fields::id`] allows (at most 64 characters, no control characters).
pub fn required_id(id: &str, field: &str) -> Result<(), FieldViolation> {
    if id.is_empty() {
        return Err(FieldViolation::new(
            field,
            "required: an id of at most 64 characters",
        ));
    }
    fields::id(id, field)
}

/// The opaque etag of a record at `version`, as every resource carries it.
pub fn etag(version: i64) -> String {
    Etag::of_version(u64::try_from(version).unwrap_or_default()).to_string()
}

/// An audit trail entry as every service's `ListAuditEntries` returns it.
pub fn audit_entry(e: crm_types::AuditEntry) -> common::AuditEntry {
    common::AuditEntry {
        id: e.id,
        subject_id: e.subject_id,
        action: e.action,
        actor: e.actor,
        time: Some(fields::timestamp(e.time)),
        changes: e
            .changes
            .into_iter()
            .map(|c| common::FieldChange {
                field: c.field,
                old_value: c.old,
                new_value: c.new,
            })
            .collect(),
        reason: e.reason,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_are_opaque_and_match_their_version() {
        let tag = etag(3);
        assert_ne!(tag, "3", "never a bare number");
        assert!(Etag::matches(&tag, 3));
        assert!(!Etag::matches(&tag, 4));
    }

    #[test]
    fn ids_are_required_and_bounded() {
        assert!(required_id("0190abc", "id").is_ok());
        assert_eq!(
            required_id("", "lead.id").map_err(|v| v.field),
            Err("lead.id".into())
        );
        assert!(required_id(&"x".repeat(65), "id").is_err());
    }
}
