//! Proto messages to domain values and back, and the events a change
//! publishes ([`events`]). Field paths in violations are the request's
//! (`lead.email`), so a client can point at the field. Depends on `domain`
//! and the contracts only.

pub mod events;

use crm_proto::crm::{common::v1 as common, leads::v1 as pb, opportunities::v1 as opportunities};
use crm_rpc::{FieldViolation, fields};

use crate::domain::{
    Amount, Budget, BudgetFloor, ChannelStats, CompanySize, Draft, Interaction, InteractionKind,
    Lead, LeadConfig, LeadScope, LeadStatus, OnDuplicate, Patch, Profile, RowOutcome,
    ScoreBreakdown, ScoringModel, Violation,
};

pub fn violations(vs: Vec<Violation>, parent: &str) -> Vec<FieldViolation> {
    vs.into_iter()
        .map(|v| FieldViolation::new(format!("{parent}.{}", v.field), v.description))
        .collect()
}

pub fn status_to_proto(s: LeadStatus) -> pb::LeadStatus {
    match s {
        LeadStatus::New => pb::LeadStatus::New,
        LeadStatus::Working => pb::LeadStatus::Working,
        LeadStatus::Nurturing => pb::LeadStatus::Nurturing,
        LeadStatus::Qualified => pb::LeadStatus::Qualified,
        LeadStatus::Converted => pb::LeadStatus::Converted,
        LeadStatus::Disqualified => pb::LeadStatus::Disqualified,
    }
}

/// A status filter or update; `None` for UNSPECIFIED.
pub fn status_from_proto(value: i32, field: &str) -> Result<Option<LeadStatus>, FieldViolation> {
    let status = pb::LeadStatus::try_from(value)
        .map_err(|_| FieldViolation::new(field, "unknown status"))?;
    Ok(match status {
        pb::LeadStatus::Unspecified => None,
        pb::LeadStatus::New => Some(LeadStatus::New),
        pb::LeadStatus::Working => Some(LeadStatus::Working),
        pb::LeadStatus::Nurturing => Some(LeadStatus::Nurturing),
        pb::LeadStatus::Qualified => Some(LeadStatus::Qualified),
        pb::LeadStatus::Converted => Some(LeadStatus::Converted),
        pb::LeadStatus::Disqualified => Some(LeadStatus::Disqualified),
    })
}

fn size_from_proto(value: i32, field: &str) -> Result<CompanySize, FieldViolation> {
    let size = pb::CompanySize::try_from(value)
        .map_err(|_| FieldViolation::new(field, "unknown company size"))?;
    Ok(match size {
        pb::CompanySize::Unspecified => CompanySize::Unknown,
        pb::CompanySize::Small => CompanySize::Small,
        pb::CompanySize::Medium => CompanySize::Medium,
        pb::CompanySize::Large => CompanySize::Large,
        pb::CompanySize::Enterprise => CompanySize::Enterprise,
    })
}

fn size_to_proto(size: CompanySize) -> pb::CompanySize {
    match size {
        CompanySize::Unknown => pb::CompanySize::Unspecified,
        CompanySize::Small => pb::CompanySize::Small,
        CompanySize::Medium => pb::CompanySize::Medium,
        CompanySize::Large => pb::CompanySize::Large,
        CompanySize::Enterprise => pb::CompanySize::Enterprise,
    }
}

pub fn kind_from_proto(value: i32, field: &str) -> Result<InteractionKind, FieldViolation> {
    use pb::InteractionKind as K;
    let kind =
        K::try_from(value).map_err(|_| FieldViolation::new(field, "unknown interaction kind"))?;
    Ok(match kind {
        K::Unspecified => return Err(FieldViolation::new(field, "required")),
        K::CallConnected => InteractionKind::CallConnected,
        K::CallNotConnected => InteractionKind::CallNotConnected,
        K::EmailOpened => InteractionKind::EmailOpened,
        K::EmailReplied => InteractionKind::EmailReplied,
        K::Visit => InteractionKind::Visit,
        K::DemoAttended => InteractionKind::DemoAttended,
        K::ContractTemplateViewed => InteractionKind::ContractTemplateViewed,
        K::Meeting => InteractionKind::Meeting,
        K::FormFilled => InteractionKind::FormFilled,
    })
}

fn kind_to_proto(kind: InteractionKind) -> pb::InteractionKind {
    use pb::InteractionKind as K;
    match kind {
        InteractionKind::CallConnected => K::CallConnected,
        InteractionKind::CallNotConnected => K::CallNotConnected,
        InteractionKind::EmailOpened => K::EmailOpened,
        InteractionKind::EmailReplied => K::EmailReplied,
        InteractionKind::Visit => K::Visit,
        InteractionKind::DemoAttended => K::DemoAttended,
        InteractionKind::ContractTemplateViewed => K::ContractTemplateViewed,
        InteractionKind::Meeting => K::Meeting,
        InteractionKind::FormFilled => K::FormFilled,
    }
}

fn amount(
    m: Option<&common::Money>,
    field: &str,
    v: &mut Vec<FieldViolation>,
) -> Option<(Amount, String)> {
    let m = m?;
    if let Err(e) = fields::money(m, field) {
        v.push(e);
        return None;
    }
    Some((
        Amount {
            units: m.units,
            nanos: m.nanos,
        },
        m.currency_code.clone(),
    ))
}

fn money(a: Amount, currency: &str) -> common::Money {
    common::Money {
        currency_code: currency.to_owned(),
        units: a.units,
        nanos: a.nanos,
    }
}

/// Pushes a failed field check onto `v`.
pub fn check(v: &mut Vec<FieldViolation>, result: Result<(), FieldViolation>) {
    if let Err(e) = result {
        v.push(e);
    }
}

/// A free-text field (notes, reasons): lines allowed, bounded.
pub fn notes(value: &str, field: &str) -> Result<(), FieldViolation> {
    fields::text(value, field, fields::MAX_NOTES_CHARS, fields::Lines::Multi)
}

/// A name (company, opportunity): one line, bounded.
pub fn name(value: &str, field: &str) -> Result<(), FieldViolation> {
    fields::text(value, field, fields::MAX_NAME_CHARS, fields::Lines::Single)
}

/// A short label (channel, region): one line, bounded.
pub fn short_text(value: &str, field: &str) -> Result<(), FieldViolation> {
    fields::text(value, field, fields::MAX_SHORT_CHARS, fields::Lines::Single)
}

/// The lead's text fields within the contract's bounds and free of control
/// characters; checked before any normalising, so a huge value costs
/// nothing. Returns whether they all are.
fn profile_text(lead: &pb::Lead, v: &mut Vec<FieldViolation>) -> bool {
    use fields::{Lines, MAX_EMAIL_CHARS, MAX_NAME_CHARS, MAX_NOTES_CHARS, MAX_SHORT_CHARS};
    let before = v.len();
    let single = [
        ("lead.company", &lead.company, MAX_NAME_CHARS),
        ("lead.contact_name", &lead.contact_name, MAX_SHORT_CHARS),
        ("lead.phone", &lead.phone, MAX_SHORT_CHARS),
        ("lead.email", &lead.email, MAX_EMAIL_CHARS),
        ("lead.industry", &lead.industry, MAX_SHORT_CHARS),
        ("lead.region", &lead.region, MAX_SHORT_CHARS),
        ("lead.source_channel", &lead.source_channel, MAX_SHORT_CHARS),
    ];
    for (field, value, max) in single {
        check(v, fields::text(value, field, max, Lines::Single));
    }
    check(
        v,
        fields::text(&lead.notes, "lead.notes", MAX_NOTES_CHARS, Lines::Multi),
    );
    check(v, fields::id(&lead.owner_id, "lead.owner_id"));
    v.len() == before
}

/// The profile fields of a lead message, checked for form (money, enums);
/// the tenant's rules are checked by the domain.
fn profile(lead: &pb::Lead, v: &mut Vec<FieldViolation>) -> Profile {
    let min = amount(lead.budget_min.as_ref(), "lead.budget_min", v);
    let max = amount(lead.budget_max.as_ref(), "lead.budget_max", v);
    let budget = match (min, max) {
        (None, None) => None,
        (Some((a, c1)), Some((b, c2))) if c1 != c2 => {
            v.push(FieldViolation::new(
                "lead.budget_max.currency_code",
                "must be the currency of budget_min",
            ));
            let _ = b;
            Some(Budget {
                currency: c1,
                min: Some(a),
                max: None,
            })
        }
        (min, max) => {
            let currency = min
                .as_ref()
                .or(max.as_ref())
                .map(|(_, c)| c.clone())
                .unwrap_or_default();
            Some(Budget {
                currency,
                min: min.map(|(a, _)| a),
                max: max.map(|(a, _)| a),
            })
        }
    };
    let company_size =
        size_from_proto(lead.company_size, "lead.company_size").unwrap_or_else(|e| {
            v.push(e);
            CompanySize::Unknown
        });
    Profile {
        company: lead.company.clone(),
        contact_name: lead.contact_name.clone(),
        phone: lead.phone.clone(),
        email: lead.email.clone(),
        industry: lead.industry.clone(),
        region: lead.region.clone(),
        company_size,
        budget,
        source_channel: lead.source_channel.clone(),
        notes: lead.notes.clone(),
    }
}

/// A new lead from a create or import row, fully validated.
pub fn draft(lead: &pb::Lead, config: &LeadConfig) -> Result<Draft, Vec<FieldViolation>> {
    let mut v = Vec::new();
    let clean = profile_text(lead, &mut v);
    let profile = profile(lead, &mut v);
    let next_follow_up_time = match &lead.next_follow_up_time {
        Some(ts) => fields::micros(ts, "lead.next_follow_up_time")
            .map_err(|e| v.push(e))
            .ok(),
        None => None,
    };
    let profile = match profile.validated(config) {
        _ if !clean => None,
        Ok(p) => Some(p),
        Err(vs) => {
            v.extend(violations(vs, "lead"));
            None
        }
    };
    match profile {
        Some(profile) if v.is_empty() => Ok(Draft {
            profile,
            owner_id: (!lead.owner_id.is_empty()).then(|| lead.owner_id.clone()),
            next_follow_up_time,
        }),
        _ => Err(v),
    }
}

/// An import row as a draft; its violations are named relative to the
/// lead (`email`), as the row's rejection reports them.
pub fn import_row(lead: &pb::Lead, config: &LeadConfig) -> Result<Draft, Vec<Violation>> {
    draft(lead, config).map_err(|vs| {
        vs.into_iter()
            .map(|v| Violation::new(v.field.trim_start_matches("lead."), v.description))
            .collect()
    })
}

pub fn on_duplicate(value: i32) -> Result<OnDuplicate, FieldViolation> {
    match pb::DuplicatePolicy::try_from(value) {
        Ok(pb::DuplicatePolicy::Merge) => Ok(OnDuplicate::Merge),
        Ok(_) => Ok(OnDuplicate::Reject),
        Err(_) => Err(FieldViolation::new(
            "on_duplicate",
            "unknown duplicate policy",
        )),
    }
}

pub fn scope_from_proto(value: i32) -> Result<LeadScope, FieldViolation> {
    match pb::LeadScope::try_from(value) {
        Ok(pb::LeadScope::Mine) => Ok(LeadScope::Mine),
        Ok(pb::LeadScope::Pool) => Ok(LeadScope::Pool),
        Ok(_) => Ok(LeadScope::All),
        Err(_) => Err(FieldViolation::new("scope", "unknown scope")),
    }
}

/// Fields `UpdateLead` may change.
pub const UPDATABLE: &[&str] = &[
    "company",
    "contact_name",
    "phone",
    "email",
    "industry",
    "region",
    "company_size",
    "budget_min",
    "budget_max",
    "source_channel",
    "notes",
    "next_follow_up_time",
    "status",
];

/// The changes an update asks for. An empty mask means every updatable
/// field that is set in the message.
pub fn patches(lead: &pb::Lead, paths: &[String]) -> Result<Vec<Patch>, Vec<FieldViolation>> {
    let mut v = Vec::new();
    if !profile_text(lead, &mut v) {
        return Err(v);
    }
    let profile = profile(lead, &mut v);
    let set = |path: &str| -> bool {
        if !paths.is_empty() {
            return paths.iter().any(|p| p == path);
        }
        match path {
            "company" => !lead.company.is_empty(),
            "contact_name" => !lead.contact_name.is_empty(),
            "phone" => !lead.phone.is_empty(),
            "email" => !lead.email.is_empty(),
            "industry" => !lead.industry.is_empty(),
            "region" => !lead.region.is_empty(),
            "company_size" => lead.company_size != 0,
            "budget_min" => lead.budget_min.is_some(),
            "budget_max" => lead.budget_max.is_some(),
            "source_channel" => !lead.source_channel.is_empty(),
            "notes" => !lead.notes.is_empty(),
            "next_follow_up_time" => lead.next_follow_up_time.is_some(),
            "status" => lead.status != 0,
            _ => false,
        }
    };
    let currency = profile
        .budget
        .as_ref()
        .map(|b| b.currency.clone())
        .unwrap_or_default();
    let mut out = Vec::new();
    for path in UPDATABLE {
        if !set(path) {
            continue;
        }
        out.push(match *path {
            "company" => Patch::Company(profile.company.clone()),
            "contact_name" => Patch::ContactName(profile.contact_name.clone()),
            "phone" => Patch::Phone(profile.phone.clone()),
            "email" => Patch::Email(profile.email.clone()),
            "industry" => Patch::Industry(profile.industry.clone()),
            "region" => Patch::Region(profile.region.clone()),
            "company_size" => Patch::CompanySize(profile.company_size),
            "budget_min" => Patch::BudgetMin(
                profile.budget.as_ref().and_then(|b| b.min),
                currency.clone(),
            ),
            "budget_max" => Patch::BudgetMax(
                profile.budget.as_ref().and_then(|b| b.max),
                currency.clone(),
            ),
            "source_channel" => Patch::SourceChannel(profile.source_channel.clone()),
            "notes" => Patch::Notes(profile.notes.clone()),
            "next_follow_up_time" => Patch::NextFollowUpTime(match &lead.next_follow_up_time {
                Some(ts) => fields::micros(ts, "lead.next_follow_up_time")
                    .map_err(|e| v.push(e))
                    .ok(),
                None => None,
            }),
            _ => match status_from_proto(lead.status, "lead.status") {
                Ok(Some(s)) => Patch::Status(s),
                Ok(None) => {
                    v.push(FieldViolation::new(
                        "lead.status",
                        "required when in the mask",
                    ));
                    continue;
                }
                Err(e) => {
                    v.push(e);
                    continue;
                }
            },
        });
    }
    if out.is_empty() && v.is_empty() {
        v.push(FieldViolation::new(
            "update_mask",
            "names no field to change",
        ));
    }
    if v.is_empty() { Ok(out) } else { Err(v) }
}

fn breakdown(s: &ScoreBreakdown) -> pb::ScoreBreakdown {
    pb::ScoreBreakdown {
        frequency: s.frequency,
        behaviour: s.behaviour,
        profile_fit: s.profile_fit,
        total: s.total,
        items: s
            .items
            .iter()
            .map(|i| pb::ScoreItem {
                component: i.component.clone(),
                reason: i.reason.clone(),
                points: i.points,
            })
            .collect(),
    }
}

pub fn lead(l: &Lead) -> pb::Lead {
    let p = &l.profile;
    let currency = p
        .budget
        .as_ref()
        .map(|b| b.currency.as_str())
        .unwrap_or_default();
    pb::Lead {
        id: l.id.clone(),
        etag: l.etag(),
        company: p.company.clone(),
        contact_name: p.contact_name.clone(),
        phone: p.phone.clone(),
        email: p.email.clone(),
        industry: p.industry.clone(),
        region: p.region.clone(),
        company_size: size_to_proto(p.company_size) as i32,
        budget_min: p
            .budget
            .as_ref()
            .and_then(|b| b.min)
            .map(|a| money(a, currency)),
        budget_max: p
            .budget
            .as_ref()
            .and_then(|b| b.max)
            .map(|a| money(a, currency)),
        source_channel: p.source_channel.clone(),
        owner_id: l.owner_id.clone().unwrap_or_default(),
        status: status_to_proto(l.status) as i32,
        score: l.score.total,
        score_breakdown: Some(breakdown(&l.score)),
        last_follow_up_time: fields::opt_timestamp(l.last_follow_up_time),
        next_follow_up_time: fields::opt_timestamp(l.next_follow_up_time),
        follow_up_deadline: fields::opt_timestamp(l.follow_up_deadline),
        notes: p.notes.clone(),
        disqualify_reason: l.disqualify_reason.clone().unwrap_or_default(),
        create_time: Some(fields::timestamp(l.create_time)),
        update_time: Some(fields::timestamp(l.update_time)),
        creator: l.creator.clone(),
        updater: l.updater.clone(),
        opportunity_id: l.opportunity_id.clone().unwrap_or_default(),
        account_id: l.account_id.clone().unwrap_or_default(),
    }
}

pub fn interaction(i: &Interaction) -> pb::Interaction {
    pb::Interaction {
        id: i.id.clone(),
        lead_id: i.lead_id.clone(),
        kind: kind_to_proto(i.kind) as i32,
        occur_time: Some(fields::timestamp(i.occur_time)),
        notes: i.notes.clone(),
        creator: i.creator.clone(),
        create_time: Some(fields::timestamp(i.create_time)),
    }
}

pub fn import_result(o: RowOutcome) -> pb::BatchCreateLeadsResult {
    pb::BatchCreateLeadsResult {
        index: i32::try_from(o.index).unwrap_or(i32::MAX),
        lead_id: o.lead_id.unwrap_or_default(),
        merged: o.merged,
        rejection: o.rejection.map(|r| pb::LeadRejection {
            reason: r.reason,
            field: r.field,
            description: r.description,
            existing_lead_id: r.existing_lead_id,
        }),
    }
}

pub fn channel_stats(s: ChannelStats) -> pb::ChannelStats {
    pb::ChannelStats {
        channel: s.channel,
        leads: s.leads,
        qualified: s.qualified,
        converted: s.converted,
        disqualified: s.disqualified,
        conversion_rate: s.conversion_rate,
    }
}

/// What the opportunities service is asked to convert `lead` into.
pub fn convert_request(
    lead: &Lead,
    opportunity_name: String,
    amount: Option<common::Money>,
) -> opportunities::ConvertLeadRequest {
    let p = &lead.profile;
    opportunities::ConvertLeadRequest {
        lead_id: lead.id.clone(),
        company: p.company.clone(),
        contact_name: p.contact_name.clone(),
        phone: p.phone.clone(),
        email: p.email.clone(),
        industry: p.industry.clone(),
        region: p.region.clone(),
        owner_id: lead.owner_id.clone().unwrap_or_default(),
        opportunity_name,
        amount,
    }
}

/// A tenant's configuration at `version` (0: the operator's defaults), last
/// changed at `update_time` by `updater`.
pub fn config_to_proto(
    c: &LeadConfig,
    version: i64,
    update_time: Option<i64>,
    updater: &str,
) -> pb::LeadConfig {
    let s = &c.scoring;
    pb::LeadConfig {
        etag: crm_rpc::etag(version),
        channels: c.channels.clone(),
        scoring: Some(pb::ScoringModel {
            interaction_weights: s
                .interaction_weights
                .iter()
                .map(|(k, p)| pb::InteractionWeight {
                    kind: kind_to_proto(*k) as i32,
                    points: *p,
                })
                .collect(),
            behaviour_cap: s.behaviour_cap,
            frequency_points: s.frequency_points,
            frequency_window: Some(fields::duration(s.frequency_window.as_secs())),
            frequency_cap: s.frequency_cap,
            target_industries: s.target_industries.clone(),
            industry_points: s.industry_points,
            min_budget: s.min_budget.as_ref().map(|b| common::Money {
                currency_code: b.currency.clone(),
                units: b.units,
                nanos: 0,
            }),
            budget_points: s.budget_points,
            target_company_sizes: s
                .target_company_sizes
                .iter()
                .map(|z| size_to_proto(*z) as i32)
                .collect(),
            company_size_points: s.company_size_points,
        }),
        qualify_threshold: c.qualify_threshold,
        hot_threshold: c.hot_threshold,
        daily_claim_limit: i32::try_from(c.daily_claim_limit).unwrap_or(i32::MAX),
        follow_up_window: Some(fields::duration(c.follow_up_window.as_secs())),
        hot_follow_up_window: Some(fields::duration(c.hot_follow_up_window.as_secs())),
        update_time: fields::opt_timestamp(update_time),
        updater: updater.to_owned(),
    }
}

/// A whole configuration from its message; every bad field is reported.
pub fn config_from_proto(c: &pb::LeadConfig) -> Result<LeadConfig, Vec<FieldViolation>> {
    use std::time::Duration;
    let mut v = Vec::new();
    let secs = |d: Option<&prost_types::Duration>, field: &str, v: &mut Vec<FieldViolation>| {
        fields::positive_seconds(d, field)
            .map(Duration::from_secs)
            .unwrap_or_else(|e| {
                v.push(e);
                Duration::ZERO
            })
    };
    let default_scoring = pb::ScoringModel::default();
    let s = c.scoring.as_ref().unwrap_or(&default_scoring);
    let mut weights = std::collections::BTreeMap::new();
    for (i, w) in s.interaction_weights.iter().enumerate() {
        match kind_from_proto(
            w.kind,
            &format!("config.scoring.interaction_weights[{i}].kind"),
        ) {
            Ok(kind) => {
                if weights.insert(kind, w.points).is_some() {
                    v.push(FieldViolation::new(
                        format!("config.scoring.interaction_weights[{i}].kind"),
                        "one weight per kind",
                    ));
                }
            }
            Err(e) => v.push(e),
        }
    }
    let mut sizes = Vec::new();
    for (i, z) in s.target_company_sizes.iter().enumerate() {
        match size_from_proto(*z, &format!("config.scoring.target_company_sizes[{i}]")) {
            Ok(size) => sizes.push(size),
            Err(e) => v.push(e),
        }
    }
    let min_budget = match &s.min_budget {
        Some(m) => match fields::money(m, "config.scoring.min_budget") {
            Ok(()) => Some(BudgetFloor {
                currency: m.currency_code.clone(),
                units: m.units,
            }),
            Err(e) => {
                v.push(e);
                None
            }
        },
        None => None,
    };
    let config = LeadConfig {
        channels: c.channels.clone(),
        scoring: ScoringModel {
            interaction_weights: weights,
            behaviour_cap: s.behaviour_cap,
            frequency_points: s.frequency_points,
            frequency_window: secs(
                s.frequency_window.as_ref(),
                "config.scoring.frequency_window",
                &mut v,
            ),
            frequency_cap: s.frequency_cap,
            target_industries: s.target_industries.clone(),
            industry_points: s.industry_points,
            min_budget,
            budget_points: s.budget_points,
            target_company_sizes: sizes,
            company_size_points: s.company_size_points,
        },
        qualify_threshold: c.qualify_threshold,
        hot_threshold: c.hot_threshold,
        daily_claim_limit: u32::try_from(c.daily_claim_limit).unwrap_or_else(|_| {
            v.push(FieldViolation::new(
                "config.daily_claim_limit",
                "must not be negative",
            ));
            0
        }),
        follow_up_window: secs(
            c.follow_up_window.as_ref(),
            "config.follow_up_window",
            &mut v,
        ),
        hot_follow_up_window: secs(
            c.hot_follow_up_window.as_ref(),
            "config.hot_follow_up_window",
            &mut v,
        ),
    };
    if v.is_empty() {
        let domain = config.validate();
        if domain.is_empty() {
            return Ok(config);
        }
        v.extend(violations(domain, "config"));
    }
    Err(v)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    fn any_text() -> impl Strategy<Value = String> {
        prop_oneof![
            "(?s).{0,300}",
            "[\\x00-\\x1f\\u{4e00}-\\u{9fff}\\u{1F600}-\\u{1F64F}\\u{0300}-\\u{036F}0-9a-z@.+-]{0,300}",
            (0usize..20_000).prop_map(|n| "-".repeat(n)),
        ]
    }

    #[test]
    fn finding_10_a_phone_of_a_million_dashes_is_refused() {
        let lead = pb::Lead {
            company: "ACME".into(),
            phone: format!("{}13800138", "-".repeat(1_000_000)),
            source_channel: "referral".into(),
            ..Default::default()
        };
        let refused = draft(&lead, &LeadConfig::default()).unwrap_err();
        assert_eq!(refused[0].field, "lead.phone");
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Whatever the strings, a create or an update either refuses
        /// naming fields (INVALID_ARGUMENT) or carries no NUL and nothing
        /// over its bound.
        #[test]
        fn lead_decoders_refuse_or_yield_clean_values(
            a in any_text(),
            b in any_text(),
            c in any_text(),
            units in any::<i64>(),
        ) {
            let lead = pb::Lead {
                company: a.clone(),
                contact_name: b.clone(),
                phone: c.clone(),
                email: b.clone(),
                region: c.clone(),
                source_channel: "referral".into(),
                notes: a.clone(),
                owner_id: b.clone(),
                budget_min: Some(common::Money { currency_code: "CNY".into(), units, nanos: 0 }),
                ..Default::default()
            };
            match draft(&lead, &LeadConfig::default()) {
                Ok(d) => {
                    let p = &d.profile;
                    for s in [&p.company, &p.contact_name, &p.phone, &p.email, &p.region, &p.notes] {
                        prop_assert!(!s.contains('\0') && s.chars().count() <= fields::MAX_NOTES_CHARS);
                    }
                    prop_assert!(p.company.chars().count() <= fields::MAX_NAME_CHARS);
                }
                Err(v) => prop_assert!(!v.is_empty()),
            }
            match patches(&lead, &[]) {
                Ok(p) => prop_assert!(!p.is_empty()),
                Err(v) => prop_assert!(!v.is_empty()),
            }
        }
    }
}
