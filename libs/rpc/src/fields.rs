//! Mapping helpers for request fields: masks, times, money, request ids,
//! and the one set of text rules every string, id and list a request
//! carries is checked by ([`text`], [`id`], [`ids`]).

use prost_types::{FieldMask, Timestamp};
use sha2::{Digest, Sha256};

use crate::FieldViolation;

/// The paths of an update mask, each checked against the fields the method
/// lets a caller change. An unknown path is a violation of `update_mask`.
pub fn mask_paths(
    mask: Option<&FieldMask>,
    allowed: &[&str],
) -> Result<Vec<String>, FieldViolation> {
    let Some(mask) = mask else {
        return Ok(Vec::new());
    };
    let mut paths = Vec::with_capacity(mask.paths.len());
    for path in &mask.paths {
        if !allowed.contains(&path.as_str()) {
            return Err(FieldViolation::new(
                "update_mask",
                format!(
                    "unknown or read-only field {path:?}; updatable: {}",
                    allowed.join(", ")
                ),
            ));
        }
        if !paths.contains(path) {
            paths.push(path.clone());
        }
    }
    Ok(paths)
}

/// The most characters an id may have (ids are UUIDv7s; a longer one is
/// never a record's and would only be echoed back).
pub const MAX_ID_CHARS: usize = 64;
/// A name: company, account or opportunity name.
pub const MAX_NAME_CHARS: usize = 200;
/// A short label: contact name, phone, industry, region, channel, title.
pub const MAX_SHORT_CHARS: usize = 100;
/// An email address (RFC 5321's path limit).
pub const MAX_EMAIL_CHARS: usize = 254;
/// Free text a person writes: notes, reasons, summaries.
pub const MAX_NOTES_CHARS: usize = 10_000;
/// The most ids one list field may name (contacts of an activity, team
/// members, competitors).
pub const MAX_LIST_ITEMS: usize = 100;

/// Whether a string field may hold line breaks (free text) or not (names,
/// labels, ids).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    Single,
    Multi,
}

/// Checks a string field: at most `max` characters, and no NUL or other
/// control character except newlines and tabs where `lines` allows them.
/// Empty is fine (required-ness is the caller's). A bad value is a
/// violation of `field`, which never quotes the value.
pub fn text(value: &str, field: &str, max: usize, lines: Lines) -> Result<(), FieldViolation> {
    // Counting stops one past the limit, so a huge value costs no more
    // than a legal one.
    if value.chars().take(max + 1).count() > max {
        return Err(FieldViolation::new(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    let allowed = |c: char| lines == Lines::Multi && matches!(c, '\n' | '\r' | '\t');
    if value.chars().any(|c| c.is_control() && !allowed(c)) {
        return Err(FieldViolation::new(
            field,
            "must not contain NUL or other control characters",
        ));
    }
    Ok(())
}

/// Checks a field that holds an id, which may be empty: at most
/// [`MAX_ID_CHARS`] characters and no control or whitespace characters.
pub fn id(value: &str, field: &str) -> Result<(), FieldViolation> {
    if value.chars().take(MAX_ID_CHARS + 1).count() > MAX_ID_CHARS
        || value.chars().any(|c| c.is_control() || c.is_whitespace())
    {
        return Err(FieldViolation::new(
            field,
            format!(
                "must be an id of at most {MAX_ID_CHARS} characters, without spaces or control characters"
            ),
        ));
    }
    Ok(())
}

/// Checks a repeated id field: at most `max` items, each a non-empty
/// [`id`]; returns them deduplicated, first occurrence kept, so a caller
/// repeating one id costs no more than naming it once.
pub fn ids(values: &[String], field: &str, max: usize) -> Result<Vec<String>, FieldViolation> {
    if values.len() > max {
        return Err(FieldViolation::new(
            field,
            format!("must name at most {max} ids"),
        ));
    }
    let mut out: Vec<String> = Vec::with_capacity(values.len());
    for (i, value) in values.iter().enumerate() {
        if value.is_empty() {
            return Err(FieldViolation::new(
                format!("{field}[{i}]"),
                "must not be empty",
            ));
        }
        id(value, &format!("{field}[{i}]"))?;
        if !out.contains(value) {
            out.push(value.clone());
        }
    }
    Ok(out)
}

/// Checks a repeated string field: at most `max_items` items, each a
/// single-line [`text`] of at most `max_chars` characters.
pub fn texts(
    values: &[String],
    field: &str,
    max_items: usize,
    max_chars: usize,
) -> Result<(), FieldViolation> {
    if values.len() > max_items {
        return Err(FieldViolation::new(
            field,
            format!("must have at most {max_items} items"),
        ));
    }
    for (i, value) in values.iter().enumerate() {
        text(value, &format!("{field}[{i}]"), max_chars, Lines::Single)?;
    }
    Ok(())
}

/// Unix microseconds as a protobuf timestamp.
pub fn timestamp(micros: i64) -> Timestamp {
    Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: i32::try_from(micros.rem_euclid(1_000_000) * 1_000).unwrap_or(0),
    }
}

/// An optional time as an optional timestamp.
pub fn opt_timestamp(micros: Option<i64>) -> Option<Timestamp> {
    micros.map(timestamp)
}

/// A protobuf timestamp as Unix microseconds; out-of-range values are a
/// violation of `field`.
pub fn micros(ts: &Timestamp, field: &str) -> Result<i64, FieldViolation> {
    // 0001-01-01 .. 9999-12-31, as google.protobuf.Timestamp allows.
    const MIN: i64 = -62_135_596_800;
    const MAX: i64 = 253_402_300_799;
    if !(MIN..=MAX).contains(&ts.seconds) || !(0..1_000_000_000).contains(&ts.nanos) {
        return Err(FieldViolation::new(field, "not a valid timestamp"));
    }
    Ok(ts.seconds * 1_000_000 + i64::from(ts.nanos / 1_000))
}

/// A protobuf duration as whole seconds, which must be positive.
pub fn positive_seconds(
    d: Option<&prost_types::Duration>,
    field: &str,
) -> Result<u64, FieldViolation> {
    match d {
        Some(d) if d.seconds > 0 && d.nanos >= 0 => Ok(d.seconds.unsigned_abs()),
        _ => Err(FieldViolation::new(
            field,
            "must be a positive duration of at least one second",
        )),
    }
}

/// Seconds as a protobuf duration.
pub fn duration(seconds: u64) -> prost_types::Duration {
    prost_types::Duration {
        seconds: i64::try_from(seconds).unwrap_or(i64::MAX),
        nanos: 0,
    }
}

/// Checks a `request_id` (AIP-155): empty means the caller wants no replay
/// protection; otherwise at most 128 visible ASCII characters (a UUID is usual).
pub fn request_id(id: &str) -> Result<Option<&str>, FieldViolation> {
    if id.is_empty() {
        return Ok(None);
    }
    if id.len() > 128 || !id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(FieldViolation::new(
            "request_id",
            "must be at most 128 visible ASCII characters, e.g. a UUID",
        ));
    }
    Ok(Some(id))
}

/// A digest of a request's content, so a reused request id with different
/// content can be told from a retry.
pub fn request_hash<M: prost::Message>(request: &M) -> String {
    let digest = Sha256::digest(request.encode_to_vec());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `code` is an active ISO 4217 currency code.
pub fn is_currency(code: &str) -> bool {
    code.len() == 3 && ISO_4217.split(' ').any(|c| c == code)
}

/// Checks a money value's currency and its units/nanos agreement.
pub fn money(m: &crm_proto::crm::common::v1::Money, field: &str) -> Result<(), FieldViolation> {
    if !is_currency(&m.currency_code) {
        return Err(FieldViolation::new(
            format!("{field}.currency_code"),
            format!("{:?} is not an ISO 4217 currency code", m.currency_code),
        ));
    }
    let sign_mismatch = (m.units > 0 && m.nanos < 0) || (m.units < 0 && m.nanos > 0);
    if !(-999_999_999..=999_999_999).contains(&m.nanos) || sign_mismatch {
        return Err(FieldViolation::new(
            format!("{field}.nanos"),
            "must be within +-999,999,999 and have the sign of units",
        ));
    }
    Ok(())
}

const ISO_4217: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES VND VUV WST XAF XCD XOF XPF YER ZAR ZMW ZWG";

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn mask_refuses_unknown_paths() {
        let mask = FieldMask {
            paths: vec!["company".into(), "score".into()],
        };
        let err = mask_paths(Some(&mask), &["company", "email"]).unwrap_err();
        assert_eq!(err.field, "update_mask");
        assert!(err.description.contains("score"));
    }

    #[test]
    fn timestamps_round_trip() {
        for micros_in in [0_i64, 1_700_000_000_123_456, -1] {
            assert_eq!(micros(&timestamp(micros_in), "t").unwrap(), micros_in);
        }
        assert!(
            micros(
                &Timestamp {
                    seconds: 0,
                    nanos: -1
                },
                "t"
            )
            .is_err()
        );
    }

    #[test]
    fn text_refuses_nul_controls_and_long_values() {
        assert!(text("East", "region", 10, Lines::Single).is_ok());
        assert!(text("a\nb", "notes", 10, Lines::Multi).is_ok());
        assert_eq!(
            text("East\0", "region", 10, Lines::Single)
                .unwrap_err()
                .field,
            "region"
        );
        assert!(text("a\nb", "company", 10, Lines::Single).is_err());
        assert!(text("a\0b", "notes", 10, Lines::Multi).is_err());
        assert!(text(&"字".repeat(10), "company", 10, Lines::Single).is_ok());
        assert!(text(&"字".repeat(11), "company", 10, Lines::Single).is_err());
    }

    #[test]
    fn ids_are_bounded_and_deduplicated() {
        assert!(id("abc\0", "id").is_err());
        assert!(id(&"x".repeat(MAX_ID_CHARS + 1), "id").is_err());
        let repeated = vec!["c1".to_owned(); 50];
        assert_eq!(ids(&repeated, "contact_ids", 100).unwrap(), vec!["c1"]);
        assert!(ids(&vec!["c1".to_owned(); 101], "contact_ids", 100).is_err());
        assert_eq!(
            ids(&["c1".into(), String::new()], "contact_ids", 100)
                .unwrap_err()
                .field,
            "contact_ids[1]"
        );
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

        /// Whatever a caller sends, the checks answer with a verdict that
        /// names the field, and what they accept is clean and bounded.
        #[test]
        fn text_rules_hold_for_any_string(value in "(?s).{0,300}", max in 0usize..200) {
            match text(&value, "f", max, Lines::Single) {
                Ok(()) => {
                    proptest::prop_assert!(value.chars().count() <= max);
                    proptest::prop_assert!(!value.contains('\0'));
                }
                Err(v) => proptest::prop_assert_eq!(v.field, "f"),
            }
            match id(&value, "id") {
                Ok(()) => proptest::prop_assert!(value.chars().count() <= MAX_ID_CHARS && !value.contains('\0')),
                Err(v) => proptest::prop_assert_eq!(v.field, "id"),
            }
        }
    }

    #[test]
    fn currencies() {
        assert!(is_currency("CNY"));
        assert!(!is_currency("XXX"));
        assert!(!is_currency("CN"));
    }
}
