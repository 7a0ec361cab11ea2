//! `std::time::Duration` settings written as human strings: `"250ms"`,
//! `"30s"`, `"5m"`, `"48h"`, `"7d"` (also `"ns"` and `"us"`). A bare number is
//! refused: "30" could mean seconds or milliseconds, and guessing wrong is a
//! 1000x mistake in a timeout.
//!
//! ```
//! # use serde::{Deserialize, Serialize};
//! # use std::time::Duration;
//! #[derive(Serialize, Deserialize)]
//! struct Lifecycle {
//!     #[serde(with = "crm_config::duration")]
//!     grace_period: Duration,
//!     #[serde(with = "crm_config::duration::option")]
//!     idle_timeout: Option<Duration>,
//! }
//! ```

use std::fmt;
use std::time::Duration;

use serde::{Deserializer, Serializer, de};

/// Units from the largest: [`format`] picks the first that divides exactly.
const UNITS: &[(&str, u128)] = &[
    ("d", 86_400_000_000_000),
    ("h", 3_600_000_000_000),
    ("m", 60_000_000_000),
    ("s", 1_000_000_000),
    ("ms", 1_000_000),
    ("us", 1_000),
    ("ns", 1),
];

/// Why a duration string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseDurationError {
    /// Nothing, or no digits before the unit.
    #[error("{0:?} is not a duration: expected a whole number and a unit, e.g. \"30s\"")]
    Malformed(String),
    /// A number without a unit.
    #[error("{0:?} has no unit: write it with one of ns, us, ms, s, m, h, d (e.g. \"30s\")")]
    MissingUnit(String),
    /// A unit that is not one of ours.
    #[error("{0:?} has an unknown unit: use one of ns, us, ms, s, m, h, d")]
    UnknownUnit(String),
    /// Larger than `Duration` can hold.
    #[error("{0:?} is too long")]
    Overflow(String),
}

/// Parses `"250ms"`, `"30s"`, `"5m"`, `"48h"`, `"7d"` (surrounding blanks and
/// a blank between number and unit are allowed).
pub fn parse(text: &str) -> Result<Duration, ParseDurationError> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(trimmed.len());
    let (digits, unit) = trimmed.split_at(split);
    let unit = unit.trim_start();
    if digits.is_empty() {
        return Err(ParseDurationError::Malformed(text.to_owned()));
    }
    if unit.is_empty() {
        return Err(ParseDurationError::MissingUnit(text.to_owned()));
    }
    let nanos_per = UNITS
        .iter()
        .find(|(name, _)| *name == unit)
        .map(|(_, n)| *n)
        .ok_or_else(|| ParseDurationError::UnknownUnit(text.to_owned()))?;
    let overflow = || ParseDurationError::Overflow(text.to_owned());
    let count: u128 = digits.parse().map_err(|_| overflow())?;
    let nanos = count.checked_mul(nanos_per).ok_or_else(overflow)?;
    let secs = u64::try_from(nanos / 1_000_000_000).map_err(|_| overflow())?;
    // The remainder is below 1e9 and so fits a u32.
    let sub = u32::try_from(nanos % 1_000_000_000).map_err(|_| overflow())?;
    Ok(Duration::new(secs, sub))
}

/// Writes `d` in the largest unit that keeps it exact: 90 s is `"90s"`,
/// 300 s is `"5m"`, zero is `"0s"`.
pub fn format(d: Duration) -> String {
    let nanos = d.as_nanos();
    if nanos == 0 {
        return "0s".to_owned();
    }
    for (name, per) in UNITS {
        if nanos.is_multiple_of(*per) {
            return format!("{}{name}", nanos / per);
        }
    }
    format!("{nanos}ns")
}

/// `serialize_with` for `Duration`.
pub fn serialize<S: Serializer>(d: &Duration, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&format(*d))
}

/// `deserialize_with` for `Duration`.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    deserializer.deserialize_str(DurationVisitor)
}

struct DurationVisitor;

impl de::Visitor<'_> for DurationVisitor {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration such as \"250ms\", \"30s\", \"5m\", \"48h\" or \"7d\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Duration, E> {
        parse(v).map_err(E::custom)
    }

    // A bare number in a file: refuse with the same advice as a string.
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Duration, E> {
        Err(E::custom(ParseDurationError::MissingUnit(v.to_string())))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Duration, E> {
        Err(E::custom(ParseDurationError::MissingUnit(v.to_string())))
    }
}

/// The same for `Option<Duration>`: absent or null is `None`.
pub mod option {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    /// `serialize_with` for `Option<Duration>`.
    pub fn serialize<S: Serializer>(
        d: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => serializer.serialize_some(&super::format(*d)),
            None => serializer.serialize_none(),
        }
    }

    /// `deserialize_with` for `Option<Duration>`.
    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        #[derive(Deserialize)]
        struct Wrapper(#[serde(deserialize_with = "super::deserialize")] Duration);
        Ok(Option::<Wrapper>::deserialize(deserializer)?.map(|Wrapper(d)| d))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use serde::{Deserialize, Serialize};

    use super::*;

    #[test]
    fn parses_every_unit() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse("48h"), Ok(Duration::from_secs(48 * 3600)));
        assert_eq!(parse("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse("15us"), Ok(Duration::from_micros(15)));
        assert_eq!(parse("3ns"), Ok(Duration::from_nanos(3)));
        assert_eq!(parse(" 10 s "), Ok(Duration::from_secs(10)));
        assert_eq!(parse("0s"), Ok(Duration::ZERO));
    }

    #[test]
    fn refuses_what_it_cannot_read_exactly() {
        assert!(matches!(
            parse("30"),
            Err(ParseDurationError::MissingUnit(_))
        ));
        assert!(matches!(
            parse("30 parsecs"),
            Err(ParseDurationError::UnknownUnit(_))
        ));
        assert!(matches!(
            parse("30S"),
            Err(ParseDurationError::UnknownUnit(_))
        ));
        assert!(matches!(
            parse("1.5s"),
            Err(ParseDurationError::UnknownUnit(_))
        ));
        assert!(matches!(
            parse("-1s"),
            Err(ParseDurationError::Malformed(_))
        ));
        assert!(matches!(parse("s"), Err(ParseDurationError::Malformed(_))));
        assert!(matches!(parse(""), Err(ParseDurationError::Malformed(_))));
        assert!(matches!(
            parse("99999999999999999999999d"),
            Err(ParseDurationError::Overflow(_))
        ));
    }

    #[test]
    fn formats_in_the_largest_exact_unit() {
        assert_eq!(format(Duration::from_millis(250)), "250ms");
        assert_eq!(format(Duration::from_secs(90)), "90s");
        assert_eq!(format(Duration::from_secs(300)), "5m");
        assert_eq!(format(Duration::from_secs(48 * 3600)), "2d");
        assert_eq!(format(Duration::from_secs(36 * 3600)), "36h");
        assert_eq!(format(Duration::from_nanos(1_500)), "1500ns");
        assert_eq!(format(Duration::ZERO), "0s");
    }

    #[test]
    fn round_trips() {
        for d in [
            Duration::from_millis(1),
            Duration::from_millis(1_001),
            Duration::from_secs(7 * 86_400),
            Duration::new(3, 7),
        ] {
            assert_eq!(parse(&format(d)), Ok(d));
        }
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Settings {
        #[serde(with = "crate::duration")]
        grace: Duration,
        #[serde(with = "crate::duration::option", default)]
        idle: Option<Duration>,
    }

    #[test]
    fn serde_with_helpers_through_config() {
        let value = Settings {
            grace: Duration::from_secs(30),
            idle: Some(Duration::from_millis(250)),
        };
        let cfg = config::Config::try_from(&value).unwrap();
        assert_eq!(cfg.get_string("grace").unwrap(), "30s");
        assert_eq!(cfg.get_string("idle").unwrap(), "250ms");
        assert_eq!(cfg.try_deserialize::<Settings>().unwrap(), value);

        let none = Settings {
            grace: Duration::from_secs(1),
            idle: None,
        };
        let cfg = config::Config::try_from(&none).unwrap();
        assert_eq!(cfg.try_deserialize::<Settings>().unwrap(), none);
    }

    #[test]
    fn a_bare_number_in_a_file_is_refused() {
        let cfg = config::Config::builder()
            .add_source(config::File::from_str(
                "grace = 30",
                config::FileFormat::Toml,
            ))
            .build()
            .unwrap();
        let err = cfg.try_deserialize::<Settings>().unwrap_err();
        assert!(err.to_string().contains("no unit"), "{err}");
    }
}
