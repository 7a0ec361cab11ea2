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

#[cfg(test)]
mod tests {
    use super::*;

    fn figures(purchases: u64, recent: u64, units: i128, days_ago: i64) -> PurchaseFigures {
        PurchaseFigures {
            purchases,
            recent_purchases: recent,
            average_nanos: units * 1_000_000_000,
            last_purchase_time: Some(100 * DAY - days_ago * DAY),
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
}
