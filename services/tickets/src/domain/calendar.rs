//! SLA clock arithmetic on the tenant's business calendar: how much counted
//! time lies between two instants, and when a given amount of counted time
//! will have passed. Time zones are a fixed offset from UTC (no tz database
//! in the tree; a tenant with daylight saving adjusts its offset).

use crm_types::Date;
use serde::{Deserialize, Serialize};

pub const MINUTE: i64 = 60_000_000;
pub const DAY: i64 = 24 * 60 * MINUTE;
/// The most days a clock walks before it gives up on finding working time
/// (a calendar always has some: at least one working day, at most 400
/// holidays); a bound, never reached by a valid calendar.
const MAX_DAYS_WALKED: i64 = 20_000;

/// Which hours a target counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Basis {
    Business,
    Calendar,
}

/// The tenant's business calendar.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Calendar {
    pub utc_offset_minutes: i32,
    /// ISO weekdays, 1 (Monday) to 7 (Sunday).
    pub working_days: Vec<u8>,
    pub day_start_minute: u32,
    pub day_end_minute: u32,
    pub holidays: Vec<Date>,
}

impl Default for Calendar {
    fn default() -> Self {
        Calendar {
            utc_offset_minutes: 0,
            working_days: vec![1, 2, 3, 4, 5],
            day_start_minute: 9 * 60,
            day_end_minute: 18 * 60,
            holidays: Vec::new(),
        }
    }
}

/// The ISO weekday (1 Monday .. 7 Sunday) of a day number since
/// 1970-01-01 (a Thursday).
fn weekday(day: i64) -> u8 {
    u8::try_from((day + 3).rem_euclid(7) + 1).unwrap_or(1)
}

impl Calendar {
    fn offset(&self) -> i64 {
        i64::from(self.utc_offset_minutes) * MINUTE
    }

    /// The working interval of local day `day`, in local micros, if any.
    fn window(&self, day: i64) -> Option<(i64, i64)> {
        if !self.working_days.contains(&weekday(day)) {
            return None;
        }
        if self.holidays.iter().any(|h| h.days() == day) {
            return None;
        }
        let start = day * DAY + i64::from(self.day_start_minute) * MINUTE;
        let end = day * DAY + i64::from(self.day_end_minute) * MINUTE;
        (end > start).then_some((start, end))
    }

    /// Counted time between `from` and `to` (UTC micros); 0 when `to` is
    /// not after `from`.
    pub fn elapsed(&self, basis: Basis, from: i64, to: i64) -> i64 {
        if to <= from {
            return 0;
        }
        if basis == Basis::Calendar {
            return to - from;
        }
        let (from, to) = (from + self.offset(), to + self.offset());
        let mut total = 0;
        let first = from.div_euclid(DAY);
        let last = to.div_euclid(DAY);
        let mut day = first;
        while day <= last {
            if let Some((s, e)) = self.window(day) {
                let (s, e) = (s.max(from), e.min(to));
                if e > s {
                    total += e - s;
                }
            }
            day += 1;
            if day - first > MAX_DAYS_WALKED {
                break;
            }
        }
        total
    }

    /// The instant (UTC micros) at which `amount` of counted time has
    /// passed since `from`. An amount of 0 or less is `from` itself.
    pub fn add(&self, basis: Basis, from: i64, amount: i64) -> i64 {
        if amount <= 0 {
            return from;
        }
        if basis == Basis::Calendar {
            return from.saturating_add(amount);
        }
        let local = from + self.offset();
        let mut left = amount;
        let mut day = local.div_euclid(DAY);
        let first = day;
        while day - first <= MAX_DAYS_WALKED {
            if let Some((s, e)) = self.window(day) {
                let s = s.max(local);
                if e > s {
                    if e - s >= left {
                        return s + left - self.offset();
                    }
                    left -= e - s;
                }
            }
            day += 1;
        }
        // No working time within the bound: counted as calendar time.
        from.saturating_add(amount)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: i64 = 60 * MINUTE;

    /// UTC micros of a local wall time in a calendar with `offset` minutes.
    fn at(date: (i32, i32, i32), hour: i64, minute: i64, offset: i32) -> i64 {
        let Some(d) = Date::new(date.0, date.1, date.2) else {
            panic!("bad date in test");
        };
        d.days() * DAY + hour * HOUR + minute * MINUTE - i64::from(offset) * MINUTE
    }

    fn china() -> Calendar {
        Calendar {
            utc_offset_minutes: 480,
            ..Calendar::default()
        }
    }

    #[test]
    fn the_epoch_was_a_thursday() {
        assert_eq!(weekday(0), 4);
        // 2026-12-05 is a Saturday.
        assert_eq!(weekday(Date::new(2026, 12, 5).map_or(0, |d| d.days())), 6);
    }

    #[test]
    fn calendar_hours_count_everything() {
        let c = china();
        let from = at((2026, 12, 4), 17, 0, 480);
        assert_eq!(c.add(Basis::Calendar, from, 4 * HOUR), from + 4 * HOUR);
        assert_eq!(c.elapsed(Basis::Calendar, from, from + 4 * HOUR), 4 * HOUR);
    }

    #[test]
    fn business_hours_skip_the_night() {
        let c = china();
        // Wednesday 17:00 + 4 business hours = Thursday 12:00 (local).
        let from = at((2026, 12, 2), 17, 0, 480);
        assert_eq!(
            c.add(Basis::Business, from, 4 * HOUR),
            at((2026, 12, 3), 12, 0, 480)
        );
        assert_eq!(
            c.elapsed(Basis::Business, from, at((2026, 12, 3), 12, 0, 480)),
            4 * HOUR
        );
    }

    #[test]
    fn business_hours_skip_the_weekend() {
        let c = china();
        // Friday 16:00 + 4 business hours = 2 on Friday, 2 on Monday:
        // Monday 11:00.
        let from = at((2026, 12, 4), 16, 0, 480);
        assert_eq!(
            c.add(Basis::Business, from, 4 * HOUR),
            at((2026, 12, 7), 11, 0, 480)
        );
        // Nothing counts over the weekend.
        assert_eq!(
            c.elapsed(
                Basis::Business,
                at((2026, 12, 5), 10, 0, 480),
                at((2026, 12, 6), 20, 0, 480)
            ),
            0
        );
    }

    #[test]
    fn business_hours_skip_holidays() {
        let mut c = china();
        c.holidays = Date::new(2026, 12, 7).into_iter().collect();
        // Friday 16:00 + 4 business hours, Monday a holiday = Tuesday 11:00.
        let from = at((2026, 12, 4), 16, 0, 480);
        assert_eq!(
            c.add(Basis::Business, from, 4 * HOUR),
            at((2026, 12, 8), 11, 0, 480)
        );
    }

    #[test]
    fn a_start_before_opening_waits_for_the_opening() {
        let c = china();
        let from = at((2026, 12, 2), 6, 0, 480);
        assert_eq!(
            c.add(Basis::Business, from, HOUR),
            at((2026, 12, 2), 10, 0, 480)
        );
    }

    #[test]
    fn the_offset_decides_the_local_day() {
        // 23:00 UTC on Friday is 07:00 Saturday in UTC+8: nothing counts
        // until Monday 09:00 local.
        let c = china();
        let from = at((2026, 12, 4), 23, 0, 0);
        assert_eq!(
            c.add(Basis::Business, from, HOUR),
            at((2026, 12, 7), 10, 0, 480)
        );
        // The same instant in UTC is Friday 23:00: Monday 10:00 UTC.
        let utc = Calendar::default();
        assert_eq!(
            utc.add(Basis::Business, from, HOUR),
            at((2026, 12, 7), 10, 0, 0)
        );
    }

    #[test]
    fn add_and_elapsed_agree() {
        let mut c = china();
        c.holidays = Date::new(2026, 12, 25).into_iter().collect();
        let from = at((2026, 12, 20), 13, 17, 480);
        for minutes in [1, 59, 540, 541, 3000, 20_000] {
            let due = c.add(Basis::Business, from, minutes * MINUTE);
            assert_eq!(c.elapsed(Basis::Business, from, due), minutes * MINUTE);
        }
    }

    #[test]
    fn a_calendar_without_working_time_falls_back_to_calendar_time() {
        let c = Calendar {
            working_days: vec![],
            ..Calendar::default()
        };
        assert_eq!(c.add(Basis::Business, 0, HOUR), HOUR);
    }
}
