//! Money and calendar dates: exact amounts, never floats.

use serde::{Deserialize, Serialize};

const NANOS: i128 = 1_000_000_000;

/// An amount in one currency, as whole units and billionths: never a float.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    pub currency: String,
    pub units: i64,
    pub nanos: i32,
}

impl Money {
    pub fn new(currency: impl Into<String>, units: i64, nanos: i32) -> Self {
        Money {
            currency: currency.into(),
            units,
            nanos,
        }
    }

    /// The amount in billionths of a unit.
    pub fn total_nanos(&self) -> i128 {
        i128::from(self.units) * NANOS + i128::from(self.nanos)
    }

    /// An amount of `currency` from billionths; `None` if it does not fit.
    pub fn from_total_nanos(currency: &str, total: i128) -> Option<Money> {
        let units = i64::try_from(total / NANOS).ok()?;
        let nanos = i32::try_from(total % NANOS).ok()?;
        Some(Money::new(currency, units, nanos))
    }

    pub fn is_negative(&self) -> bool {
        self.total_nanos() < 0
    }

    /// `percent` of the amount, rounded towards zero to the billionth.
    pub fn percent(&self, percent: u8) -> Money {
        let total = self.total_nanos() * i128::from(percent) / 100;
        Money::from_total_nanos(&self.currency, total).unwrap_or_else(|| self.clone())
    }
}

impl std::fmt::Display for Money {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.is_negative() { "-" } else { "" };
        write!(
            f,
            "{sign}{}.{:09} {}",
            self.units.unsigned_abs(),
            self.nanos.unsigned_abs(),
            self.currency
        )
    }
}

/// A calendar date without a time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Date {
    pub year: i32,
    pub month: u8,
    pub day: u8,
}

impl Date {
    /// A valid Gregorian date between years 1 and 9999, or `None`.
    pub fn new(year: i32, month: i32, day: i32) -> Option<Date> {
        let month = u8::try_from(month).ok().filter(|m| (1..=12).contains(m))?;
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        let days = match month {
            2 if leap => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let day = u8::try_from(day).ok().filter(|d| (1..=days).contains(d))?;
        (1..=9999)
            .contains(&year)
            .then_some(Date { year, month, day })
    }

    /// `YYYY-MM-DD`, which sorts like the dates it names.
    pub fn iso(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }

    pub fn parse_iso(s: &str) -> Option<Date> {
        let mut parts = s.splitn(3, '-').map(|p| p.parse::<i32>().ok());
        Date::new(parts.next()??, parts.next()??, parts.next()??)
    }

    /// Days since 1970-01-01 (proleptic Gregorian), after H. Hinnant's
    /// `days_from_civil`.
    pub fn days(&self) -> i64 {
        let (y, m, day) = (
            i64::from(self.year),
            i64::from(self.month),
            i64::from(self.day),
        );
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        era * 146_097 + doe - 719_468
    }

    /// The date `days` after 1970-01-01, clamped to years 1-9999.
    pub fn from_days(days: i64) -> Date {
        let days = days.clamp(FIRST_DAY, LAST_DAY);
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        let small = |v: i64| i32::try_from(v).unwrap_or(1);
        Date::new(small(year), small(month), small(day)).unwrap_or(Date {
            year: 1,
            month: 1,
            day: 1,
        })
    }

    /// The UTC date of a time in Unix microseconds.
    pub fn of_micros(micros: i64) -> Date {
        Date::from_days(micros.div_euclid(86_400_000_000))
    }

    /// This date `days` later (earlier when negative), within years 1-9999.
    pub fn plus_days(&self, days: i64) -> Date {
        Date::from_days(self.days().saturating_add(days))
    }
}

/// 0001-01-01 and 9999-12-31 in days since 1970-01-01.
const FIRST_DAY: i64 = -719_162;
const LAST_DAY: i64 = 2_932_896;

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn percent_of_money_is_exact() {
        let m = Money::new("CNY", 1_000_000, 500_000_000);
        assert_eq!(m.percent(30), Money::new("CNY", 300_000, 150_000_000));
        assert_eq!(
            Money::new("CNY", -10, -500_000_000).percent(50),
            Money::new("CNY", -5, -250_000_000)
        );
    }

    #[test]
    fn dates() {
        assert!(Date::new(2024, 2, 29).is_some());
        assert!(Date::new(2023, 2, 29).is_none());
        assert!(Date::new(2024, 13, 1).is_none());
        assert!(Date::new(0, 1, 1).is_none());
        let d = Date::new(2026, 3, 9);
        assert_eq!(d.map(|d| d.iso()).as_deref(), Some("2026-03-09"));
        assert_eq!(Date::parse_iso("2026-03-09"), d);
    }

    #[test]
    fn civil_days_round_trip_and_clamp() {
        for (y, m, d, days) in [(1970, 1, 1, 0), (2000, 3, 1, 11_017), (2024, 2, 29, 19_782)] {
            let date = Date::new(y, m, d).unwrap();
            assert_eq!(date.days(), days);
            assert_eq!(Date::from_days(days), date);
        }
        assert_eq!(Date::new(1, 1, 1).unwrap().days(), FIRST_DAY);
        assert_eq!(Date::new(9999, 12, 31).unwrap().days(), LAST_DAY);
        assert_eq!(Date::from_days(i64::MAX), Date::new(9999, 12, 31).unwrap());
        let d = Date::new(2026, 12, 20).unwrap();
        assert_eq!(d.plus_days(15), Date::new(2027, 1, 4).unwrap());
        assert_eq!(
            Date::of_micros(86_400_000_000 + 5),
            Date::new(1970, 1, 2).unwrap()
        );
    }
}
