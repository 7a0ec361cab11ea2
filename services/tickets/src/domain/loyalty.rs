//! Loyalty tiers (004 §4.2) by purchase frequency, average order value and
//! industry: new, existing, loyal (VIP).

use super::calendar::DAY;
use super::config::TierThresholds;
use super::model::Tier;

/// What the tier is judged by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PurchaseFigures {
    pub purchases: u64,
    /// Purchases within the thresholds' frequency window.
    pub recent_purchases: u64,
    /// The mean order value in nanos of the currency.
    pub average_nanos: i128,
    pub last_purchase_time: Option<i64>,
    /// The oldest purchase within the frequency window, if any.
    pub oldest_recent_purchase_time: Option<i64>,
}

pub fn tier(f: &PurchaseFigures, t: &TierThresholds, now: i64) -> Tier {
    if f.purchases < u64::from(t.existing_min_purchases) {
        return Tier::New;
    }
    let recent = f
        .last_purchase_time
        .is_some_and(|last| now - last <= i64::from(t.recent_days) * DAY);
    let frequent = f.recent_purchases >= u64::from(t.frequent_purchases);
    let valuable = f.average_nanos >= i128::from(t.valuable_order_units) * 1_000_000_000;
    if recent && frequent && valuable {
        Tier::Loyal
    } else {
        Tier::Existing
    }
}

/// When the tier judged at `now` must be judged again if no purchase comes
/// first: the earliest time at which [`tier`] can answer differently with
/// the same purchases. Time alone only takes a loyal account down (its
/// last purchase stops being recent, or its purchases in the frequency
/// window fall below the threshold); a new account (too few purchases) and
/// an existing one stay as they are until a purchase arrives: `None`.
///
/// The frequency count is reviewed when the oldest purchase in the window
/// leaves it. With more purchases in the window than the threshold, that
/// review keeps the tier and schedules the next one: early, never late.
pub fn next_review(f: &PurchaseFigures, t: &TierThresholds, now: i64) -> Option<i64> {
    if tier(f, t, now) != Tier::Loyal {
        return None;
    }
    // Recent while `now - last <= recent_days`: stale one microsecond
    // after.
    let stale = f.last_purchase_time.map(|last| {
        last.saturating_add(i64::from(t.recent_days) * DAY)
            .saturating_add(1)
    });
    // Counted while `time > now - window`: gone at `time + window`.
    let leaves = f
        .oldest_recent_purchase_time
        .map(|oldest| oldest.saturating_add(i64::from(t.frequency_window_days) * DAY));
    match (stale, leaves) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
    .map(|at| at.max(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(purchases: u64, recent: u64, units: i128, days_ago: i64) -> PurchaseFigures {
        PurchaseFigures {
            purchases,
            recent_purchases: recent,
            average_nanos: units * 1_000_000_000,
            last_purchase_time: Some(100 * DAY - days_ago * DAY),
            oldest_recent_purchase_time: Some(100 * DAY - days_ago * DAY),
        }
    }

    #[test]
    fn the_seed_defaults_decide_the_tier() {
        let t = TierThresholds::default();
        let now = 100 * DAY;
        assert_eq!(tier(&figures(1, 1, 90_000, 1), &t, now), Tier::New);
        assert_eq!(tier(&figures(2, 2, 50_000, 3), &t, now), Tier::Loyal);
        // Not valuable enough.
        assert_eq!(tier(&figures(2, 2, 49_999, 3), &t, now), Tier::Existing);
        // Not frequent: one purchase this month.
        assert_eq!(tier(&figures(5, 1, 90_000, 3), &t, now), Tier::Existing);
        // Not recent.
        assert_eq!(tier(&figures(5, 2, 90_000, 31), &t, now), Tier::Existing);
    }

    #[test]
    fn an_industry_may_set_its_own_value() {
        let t = TierThresholds {
            industry: "retail".into(),
            valuable_order_units: 10_000,
            ..TierThresholds::default()
        };
        assert_eq!(tier(&figures(2, 2, 12_000, 1), &t, 100 * DAY), Tier::Loyal);
    }

    /// A loyal account with no purchase after `now`, judged along the way.
    fn loyal(last_days_ago: i64, oldest_days_ago: i64) -> PurchaseFigures {
        PurchaseFigures {
            purchases: 3,
            recent_purchases: 2,
            average_nanos: 90_000 * 1_000_000_000,
            last_purchase_time: Some(100 * DAY - last_days_ago * DAY),
            oldest_recent_purchase_time: Some(100 * DAY - oldest_days_ago * DAY),
        }
    }

    #[test]
    fn a_loyal_account_is_reviewed_when_its_last_purchase_stops_being_recent() {
        let t = TierThresholds {
            frequency_window_days: 60,
            ..TierThresholds::default()
        };
        let now = 100 * DAY;
        let f = loyal(3, 10);
        assert_eq!(tier(&f, &t, now), Tier::Loyal);
        let at = 97 * DAY + 30 * DAY + 1;
        assert_eq!(next_review(&f, &t, now), Some(at));
        // Loyal until then, existing from then on.
        assert_eq!(tier(&f, &t, at - 1), Tier::Loyal);
        assert_eq!(tier(&f, &t, at), Tier::Existing);
    }

    #[test]
    fn a_loyal_account_is_reviewed_when_its_oldest_recent_purchase_leaves_the_window() {
        let t = TierThresholds::default();
        let now = 100 * DAY;
        // Two purchases in the 30-day window, the older 20 days ago.
        let f = loyal(3, 20);
        assert_eq!(
            next_review(&f, &t, now),
            Some(80 * DAY + 30 * DAY),
            "before the last purchase's 127th day"
        );
    }

    #[test]
    fn an_account_that_cannot_change_without_a_purchase_is_never_reviewed() {
        let t = TierThresholds::default();
        let now = 100 * DAY;
        // New: too few purchases, however recent.
        assert_eq!(next_review(&figures(1, 1, 90_000, 1), &t, now), None);
        // Existing for each reason: time only takes an account down.
        assert_eq!(next_review(&figures(2, 2, 49_999, 3), &t, now), None);
        assert_eq!(next_review(&figures(5, 1, 90_000, 3), &t, now), None);
        assert_eq!(next_review(&figures(5, 2, 90_000, 31), &t, now), None);
        // No purchase at all.
        assert_eq!(next_review(&PurchaseFigures::default(), &t, now), None);
    }

    #[test]
    fn a_review_is_never_before_the_judgement() {
        let t = TierThresholds::default();
        // A purchase dated in the future counts as recent; the review is
        // not in the past.
        let f = loyal(-5, -5);
        let now = 100 * DAY;
        let at = next_review(&f, &t, now);
        assert!(at.is_some_and(|at| at >= now));
        assert_eq!(at, Some(105 * DAY + 30 * DAY));
    }
}
