//! Duplicate detection (DOMAIN 1): two leads sharing a normalised phone,
//! email or company+contact are the same possible customer. When a newcomer
//! matches several leads, the phone match wins over the email match, and
//! that over the company+contact match.

use std::collections::HashMap;

use super::Lead;

/// Normalised phone, email and company+contact: two leads sharing any one of
/// them are the same possible customer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DuplicateKeys {
    pub phone: Option<String>,
    pub email: Option<String>,
    pub company_contact: Option<String>,
}

/// One normalised key, tagged with what it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DuplicateKey {
    Phone(String),
    Email(String),
    CompanyContact(String),
}

impl DuplicateKey {
    /// The key's name, as rejections and audit reasons give it.
    pub fn name(&self) -> &'static str {
        match self {
            DuplicateKey::Phone(_) => "phone",
            DuplicateKey::Email(_) => "email",
            DuplicateKey::CompanyContact(_) => "company_contact",
        }
    }

    pub fn value(&self) -> &str {
        match self {
            DuplicateKey::Phone(v) | DuplicateKey::Email(v) | DuplicateKey::CompanyContact(v) => v,
        }
    }
}

impl DuplicateKeys {
    /// The keys that are set, strongest first: phone, email, company+contact.
    pub fn in_precedence(&self) -> impl Iterator<Item = DuplicateKey> + '_ {
        [
            self.phone.clone().map(DuplicateKey::Phone),
            self.email.clone().map(DuplicateKey::Email),
            self.company_contact
                .clone()
                .map(DuplicateKey::CompanyContact),
        ]
        .into_iter()
        .flatten()
    }
}

/// Existing leads by each of their keys: what a newcomer is checked against.
#[derive(Debug, Clone, Default)]
pub struct DuplicateIndex {
    by_key: HashMap<DuplicateKey, Lead>,
}

impl DuplicateIndex {
    /// The index of `leads` (those sharing a key with the newcomers).
    pub fn new(leads: impl IntoIterator<Item = Lead>) -> Self {
        let mut index = DuplicateIndex::default();
        for lead in leads {
            index.insert(lead);
        }
        index
    }

    /// Adds or replaces `lead` under each of its keys.
    pub fn insert(&mut self, lead: Lead) {
        for key in lead.profile.duplicate_keys().in_precedence() {
            self.by_key.insert(key, lead.clone());
        }
    }

    /// The lead indexed under `key`.
    pub fn get(&self, key: &DuplicateKey) -> Option<&Lead> {
        self.by_key.get(key)
    }

    /// The lead `keys` duplicate and the key they share, by precedence.
    pub fn find(&self, keys: &DuplicateKeys) -> Option<(&'static str, &Lead)> {
        keys.in_precedence()
            .find_map(|key| self.by_key.get(&key).map(|lead| (key.name(), lead)))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::domain::{Profile, testing};

    fn lead(id: &str, phone: &str, email: &str, contact: &str) -> Lead {
        let mut lead = testing::lead(id, None);
        lead.profile = Profile {
            company: "ACME".into(),
            contact_name: contact.into(),
            phone: phone.into(),
            email: email.into(),
            ..lead.profile
        };
        lead
    }

    #[test]
    fn a_phone_match_wins_over_email_and_name_matches() {
        let by_name = lead("by-name", "", "", "Li Lei");
        let by_email = lead("by-email", "", "li@acme.cn", "");
        let by_phone = lead("by-phone", "+86 138 0013 8000", "", "");
        let index = DuplicateIndex::new([by_name, by_email, by_phone]);
        let newcomer = lead("new", "+86 138-0013-8000", "LI@acme.cn", "Li Lei");
        let keys = newcomer.profile.duplicate_keys();
        let (key, found) = index.find(&keys).unwrap();
        assert_eq!((key, found.id.as_str()), ("phone", "by-phone"));

        let without_phone = lead("new", "", "li@acme.cn", "Li Lei");
        let (key, found) = index.find(&without_phone.profile.duplicate_keys()).unwrap();
        assert_eq!((key, found.id.as_str()), ("email", "by-email"));

        let name_only = lead("new", "", "", " li  lei ");
        let (key, found) = index.find(&name_only.profile.duplicate_keys()).unwrap();
        assert_eq!((key, found.id.as_str()), ("company_contact", "by-name"));
        assert!(
            index
                .find(&lead("x", "", "other@acme.cn", "").profile.duplicate_keys())
                .is_none()
        );
    }
}
