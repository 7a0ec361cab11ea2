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
}

#[cfg(test)]
mod tests {
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
}
