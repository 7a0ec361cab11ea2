use serde::{Deserialize, Serialize};

use super::{Change, DuplicateKeys, LeadConfig, ScoreBreakdown, Violation, normalize};

/// Where a lead is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeadStatus {
    New,
    Working,
    Nurturing,
    Qualified,
    Converted,
    Disqualified,
}

impl LeadStatus {
    pub const ALL: [LeadStatus; 6] = [
        LeadStatus::New,
        LeadStatus::Working,
        LeadStatus::Nurturing,
        LeadStatus::Qualified,
        LeadStatus::Converted,
        LeadStatus::Disqualified,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            LeadStatus::New => "new",
            LeadStatus::Working => "working",
            LeadStatus::Nurturing => "nurturing",
            LeadStatus::Qualified => "qualified",
            LeadStatus::Converted => "converted",
            LeadStatus::Disqualified => "disqualified",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|st| st.as_str() == s)
    }

    /// Converted and disqualified leads are final: nothing changes them.
    pub fn is_final(self) -> bool {
        matches!(self, LeadStatus::Converted | LeadStatus::Disqualified)
    }
}

impl std::fmt::Display for LeadStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Head-count band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompanySize {
    #[default]
    Unknown,
    Small,
    Medium,
    Large,
    Enterprise,
}

impl CompanySize {
    pub fn as_str(self) -> &'static str {
        match self {
            CompanySize::Unknown => "unknown",
            CompanySize::Small => "small",
            CompanySize::Medium => "medium",
            CompanySize::Large => "large",
            CompanySize::Enterprise => "enterprise",
        }
    }

    pub fn code(self) -> i32 {
        self as i32
    }

    pub fn from_code(code: i32) -> Option<Self> {
        [
            CompanySize::Unknown,
            CompanySize::Small,
            CompanySize::Medium,
            CompanySize::Large,
            CompanySize::Enterprise,
        ]
        .into_iter()
        .find(|s| s.code() == code)
    }
}

/// An amount of money without its currency: whole units and billionths.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Amount {
    pub units: i64,
    pub nanos: i32,
}

impl Amount {
    /// In billionths, for comparing without floats.
    pub fn nanos_total(self) -> i128 {
        i128::from(self.units) * 1_000_000_000 + i128::from(self.nanos)
    }
}

/// The budget range a customer named, in one currency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    pub currency: String,
    pub min: Option<Amount>,
    pub max: Option<Amount>,
}

impl Budget {
    /// The most the customer said they could spend.
    pub fn ceiling(&self) -> Option<Amount> {
        self.max.or(self.min)
    }

    fn display(&self) -> String {
        let show = |a: Option<Amount>| {
            a.map(|a| format!("{}.{:09}", a.units, a.nanos.unsigned_abs()))
                .unwrap_or_else(|| "-".into())
        };
        format!("{} {}..{}", self.currency, show(self.min), show(self.max))
    }
}

/// What a person tells us about a lead.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Profile {
    pub company: String,
    pub contact_name: String,
    pub phone: String,
    pub email: String,
    pub industry: String,
    pub region: String,
    pub company_size: CompanySize,
    pub budget: Option<Budget>,
    pub source_channel: String,
    pub notes: String,
}

impl Profile {
    /// Trims free text and checks every field against the tenant's
    /// configuration, reporting every violation, not just the first.
    pub fn validated(mut self, config: &LeadConfig) -> Result<Profile, Vec<Violation>> {
        for text in [
            &mut self.company,
            &mut self.contact_name,
            &mut self.phone,
            &mut self.email,
            &mut self.industry,
            &mut self.region,
            &mut self.source_channel,
        ] {
            *text = text.trim().to_owned();
        }
        let mut violations = Vec::new();
        let mut max_len = |field: &str, value: &str, max: usize| {
            if value.chars().count() > max {
                violations.push(Violation::new(field, format!("at most {max} characters")));
            }
        };
        max_len("company", &self.company, 200);
        max_len("contact_name", &self.contact_name, 100);
        max_len("industry", &self.industry, 100);
        max_len("region", &self.region, 100);
        max_len("notes", &self.notes, 10_000);
        if self.company.is_empty() {
            violations.push(Violation::new("company", "required"));
        } else if normalize::fold(&self.company).is_empty() {
            // It would fold to the same (empty) key as every such name.
            violations.push(Violation::new("company", "needs a letter or digit"));
        }
        if !self.contact_name.is_empty() && normalize::fold(&self.contact_name).is_empty() {
            violations.push(Violation::new("contact_name", "needs a letter or digit"));
        }
        if !self.phone.is_empty() && normalize::phone(&self.phone).is_none() {
            violations.push(Violation::new(
                "phone",
                "not a phone number: 6 to 15 digits, an optional leading +, spaces, dashes, dots or parentheses",
            ));
        }
        if !self.email.is_empty() && normalize::email(&self.email).is_none() {
            violations.push(Violation::new("email", "not an email address"));
        }
        if !config.channels.contains(&self.source_channel) {
            violations.push(Violation::new(
                "source_channel",
                format!(
                    "{:?} is not one of the tenant's channels: {}",
                    self.source_channel,
                    config.channels.join(", ")
                ),
            ));
        }
        if let Some(budget) = &self.budget {
            for (field, amount) in [("budget_min", budget.min), ("budget_max", budget.max)] {
                if amount.is_some_and(|a| a.nanos_total() < 0) {
                    violations.push(Violation::new(field, "must not be negative"));
                }
            }
            if let (Some(min), Some(max)) = (budget.min, budget.max)
                && min.nanos_total() > max.nanos_total()
            {
                violations.push(Violation::new("budget_max", "must not be below budget_min"));
            }
        }
        if violations.is_empty() {
            Ok(self)
        } else {
            Err(violations)
        }
    }

    /// The normalised keys duplicates are found by.
    pub fn duplicate_keys(&self) -> DuplicateKeys {
        DuplicateKeys {
            phone: normalize::phone(&self.phone),
            email: normalize::email(&self.email),
            company_contact: normalize::company_contact(&self.company, &self.contact_name),
        }
    }
}

/// A lead as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lead {
    pub id: String,
    pub tenant: String,
    /// Bumped on every change; the etag is its text.
    pub version: i64,
    pub profile: Profile,
    pub owner_id: Option<String>,
    pub status: LeadStatus,
    pub score: ScoreBreakdown,
    pub last_follow_up_time: Option<i64>,
    pub next_follow_up_time: Option<i64>,
    /// Unless the owner follows up before this, the lead returns to the pool.
    pub follow_up_deadline: Option<i64>,
    pub disqualify_reason: Option<String>,
    /// Set by conversion: the opportunity and account it became.
    pub opportunity_id: Option<String>,
    pub account_id: Option<String>,
    pub create_time: i64,
    pub update_time: i64,
    pub creator: String,
    pub updater: String,
}

impl Lead {
    /// The opaque etag of this version, as clients see it.
    pub fn etag(&self) -> String {
        crm_types::Etag::of_version(self.stored_version()).to_string()
    }

    fn stored_version(&self) -> u64 {
        u64::try_from(self.version).unwrap_or_default()
    }

    /// When the owner must look at the lead next: the earlier of the
    /// follow-up deadline and their own reminder. Kept as a column so the
    /// due list is one index range.
    pub fn attention_time(&self) -> Option<i64> {
        match (self.follow_up_deadline, self.next_follow_up_time) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Refuses a change made against a stale etag; an empty etag means the
    /// caller accepts the current version (AIP-154).
    pub fn check_etag(&self, etag: &str) -> Result<(), super::LeadError> {
        if crm_types::Etag::matches(etag, self.stored_version()) {
            Ok(())
        } else {
            Err(super::LeadError::StaleEtag {
                given: etag.to_owned(),
                current: self.etag(),
            })
        }
    }

    /// The audit changes of a created (or deleted) lead: every field set.
    pub fn creation_changes(&self) -> Vec<Change> {
        let p = &self.profile;
        [
            ("company", p.company.clone()),
            ("contact_name", p.contact_name.clone()),
            ("phone", p.phone.clone()),
            ("email", p.email.clone()),
            ("source_channel", p.source_channel.clone()),
            ("owner_id", self.owner_id.clone().unwrap_or_default()),
            ("status", self.status.to_string()),
            ("score", self.score.total.to_string()),
        ]
        .into_iter()
        .filter_map(|(field, value)| Change::of(field, "", value))
        .collect()
    }

    pub(super) fn touch(&mut self, actor: &str, now: i64) {
        self.version += 1;
        self.update_time = now;
        self.updater = actor.to_owned();
    }
}

/// Field changes an update asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Patch {
    Company(String),
    ContactName(String),
    Phone(String),
    Email(String),
    Industry(String),
    Region(String),
    CompanySize(CompanySize),
    BudgetMin(Option<Amount>, String),
    BudgetMax(Option<Amount>, String),
    SourceChannel(String),
    Notes(String),
    NextFollowUpTime(Option<i64>),
    Status(LeadStatus),
}

pub(super) fn opt_time(t: Option<i64>) -> String {
    t.map(|t| t.to_string()).unwrap_or_default()
}

pub(super) fn budget_text(b: &Option<Budget>) -> String {
    b.as_ref().map(Budget::display).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::super::{LeadConfig, LeadError, testing};

    #[test]
    fn a_company_or_contact_without_a_letter_or_digit_is_refused() {
        for (company, contact, field) in [
            ("...", "Li", "company"),
            ("🚀", "Li", "company"),
            ("ACME", "!!", "contact_name"),
        ] {
            let mut profile = testing::profile();
            profile.company = company.into();
            profile.contact_name = contact.into();
            let violations = profile.validated(&LeadConfig::default()).unwrap_err();
            assert_eq!(violations[0].field, field, "{company:?} / {contact:?}");
        }
        let mut wide = testing::profile();
        wide.company = "ＡＣＭＥ".into();
        assert!(wide.validated(&LeadConfig::default()).is_ok());
    }

    #[test]
    fn the_etag_is_opaque_and_names_one_version() {
        let mut lead = testing::lead("l1", Some("amy"));
        lead.version = 3;
        let sent = lead.etag();
        assert_ne!(sent, "3", "never a bare number");
        assert!(lead.check_etag(&sent).is_ok());
        assert!(lead.check_etag("").is_ok(), "empty: whatever is current");
        assert!(
            lead.check_etag("3").is_ok(),
            "a bare number from an earlier release"
        );
        lead.version = 4;
        assert!(matches!(
            lead.check_etag(&sent),
            Err(LeadError::StaleEtag { .. })
        ));
    }
}
