//! Mapping helpers for request fields: masks, times, money, request ids.

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
    fn currencies() {
        assert!(is_currency("CNY"));
        assert!(!is_currency("XXX"));
        assert!(!is_currency("CN"));
    }
}
