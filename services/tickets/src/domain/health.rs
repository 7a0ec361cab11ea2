//! Satisfaction and account health (004 §4.3): the account's running
//! figures, the weighted health score, and the churn-risk rules.

use serde::{Deserialize, Serialize};

use super::config::{ChurnRules, HealthWeights};

/// Why an account is a churn risk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChurnReason {
    GuideUnopened,
    ComplaintsRising,
    LowRatings,
}

/// The running figures of an account, updated on each relevant event.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccountStats {
    pub tickets: u32,
    pub resolved: u32,
    pub complaints: u32,
    pub breaches: u32,
    pub responded: u32,
    pub responded_on_time: u32,
    pub response_minutes_total: i64,
    pub nps_answers: u32,
    pub promoters: u32,
    pub detractors: u32,
    pub csat_count: u32,
    pub csat_total: u32,
    pub low_ratings_in_a_row: u32,
    pub unopened_guides_in_a_row: u32,
}

/// Complaint counts of the last window and the one before.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ComplaintWindows {
    pub current_tickets: u64,
    pub current_complaints: u64,
    pub previous_tickets: u64,
    pub previous_complaints: u64,
}

impl AccountStats {
    /// NPS in percent points: promoters minus detractors.
    pub fn nps(&self) -> i32 {
        if self.nps_answers == 0 {
            return 0;
        }
        let n = i64::from(self.nps_answers);
        let diff = i64::from(self.promoters) - i64::from(self.detractors);
        i32::try_from(diff * 100 / n).unwrap_or(0)
    }

    pub fn record_nps(&mut self, score: u8) {
        self.nps_answers += 1;
        if score >= 9 {
            self.promoters += 1;
        } else if score <= 6 {
            self.detractors += 1;
        }
    }

    /// A ticket's rating replaced by a new one: the mean counts the new
    /// one only; a low one stays in the streak, a good one ends it.
    pub fn replace_csat(&mut self, previous: u8, score: u8, rules: &ChurnRules) {
        self.csat_total = self.csat_total.saturating_sub(u32::from(previous)) + u32::from(score);
        let (was_low, low) = (
            previous <= rules.low_rating_max,
            score <= rules.low_rating_max,
        );
        if !low {
            self.low_ratings_in_a_row = 0;
        } else if !was_low {
            self.low_ratings_in_a_row += 1;
        }
    }

    pub fn record_csat(&mut self, score: u8, rules: &ChurnRules) {
        self.csat_count += 1;
        self.csat_total += u32::from(score);
        if score <= rules.low_rating_max {
            self.low_ratings_in_a_row += 1;
        } else {
            self.low_ratings_in_a_row = 0;
        }
    }

    pub fn mean_first_response_minutes(&self) -> i64 {
        if self.responded == 0 {
            0
        } else {
            self.response_minutes_total / i64::from(self.responded)
        }
    }

    fn percent(part: u32, whole: u32) -> Option<i64> {
        (whole > 0).then(|| i64::from(part.min(whole)) * 100 / i64::from(whole))
    }

    pub fn resolution_rate(&self) -> u32 {
        Self::percent(self.resolved, self.tickets).map_or(0, |p| u32::try_from(p).unwrap_or(0))
    }

    pub fn complaint_share(&self) -> u32 {
        Self::percent(self.complaints, self.tickets).map_or(0, |p| u32::try_from(p).unwrap_or(0))
    }

    /// The weighted score 0-100: each component 0-100, the components
    /// without data left out of the weighting; 100 with no data at all.
    pub fn score(&self, w: &HealthWeights) -> u32 {
        let nps = (self.nps_answers > 0).then(|| (i64::from(self.nps()) + 100) / 2);
        let response = Self::percent(self.responded_on_time, self.responded);
        let resolution = Self::percent(self.resolved, self.tickets);
        let complaints = Self::percent(self.complaints, self.tickets).map(|p| 100 - p);
        let breaches =
            Self::percent(self.breaches.min(self.tickets), self.tickets).map(|p| 100 - p);
        // The mean of 1-5 as 0-100: 1 is 0, 5 is 100.
        let csat = (self.csat_count > 0).then(|| {
            let count = i64::from(self.csat_count);
            (i64::from(self.csat_total) - count).max(0) * 25 / count
        });
        let parts = [
            (nps, w.nps),
            (csat, w.csat),
            (response, w.response_time),
            (resolution, w.resolution_rate),
            (complaints, w.complaints),
            (breaches, w.breaches),
        ];
        let (mut sum, mut weight) = (0i64, 0i64);
        for (value, wt) in parts {
            if let Some(v) = value {
                sum += v * i64::from(wt);
                weight += i64::from(wt);
            }
        }
        if weight == 0 {
            return 100;
        }
        u32::try_from(sum / weight).unwrap_or(0)
    }

    /// The churn reasons that hold now, in a fixed order.
    pub fn risk_reasons(&self, rules: &ChurnRules, windows: ComplaintWindows) -> Vec<ChurnReason> {
        let mut out = Vec::new();
        if self.unopened_guides_in_a_row >= rules.unopened_guides_in_a_row {
            out.push(ChurnReason::GuideUnopened);
        }
        if complaints_rising(windows, rules) {
            out.push(ChurnReason::ComplaintsRising);
        }
        if rules.low_ratings_in_a_row > 0 && self.low_ratings_in_a_row >= rules.low_ratings_in_a_row
        {
            out.push(ChurnReason::LowRatings);
        }
        out
    }
}

/// The seed's rule "the complaint rate rising": the complaint share of the
/// last window above the one before, with at least the minimum of
/// complaints in the last window.
pub fn complaints_rising(w: ComplaintWindows, rules: &ChurnRules) -> bool {
    if w.current_complaints < u64::from(rules.complaint_min_count) || w.current_tickets == 0 {
        return false;
    }
    if w.previous_tickets == 0 {
        return true;
    }
    // current/ct > previous/pt, without division.
    u128::from(w.current_complaints) * u128::from(w.previous_tickets)
        > u128::from(w.previous_complaints) * u128::from(w.current_tickets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_data_is_full_health() {
        assert_eq!(
            AccountStats::default().score(&HealthWeights::default()),
            100
        );
    }

    #[test]
    fn the_score_weighs_the_components_with_data() {
        let s = AccountStats {
            tickets: 4,
            resolved: 2,
            complaints: 1,
            breaches: 2,
            ..AccountStats::default()
        };
        // resolution 50 (20), complaints 75 (15), breaches 50 (15); no
        // NPS, no responses: (1000 + 1125 + 750) / 50 = 57.
        assert_eq!(s.score(&HealthWeights::default()), 57);
        let only_breaches = HealthWeights {
            nps: 0,
            response_time: 0,
            resolution_rate: 0,
            complaints: 0,
            breaches: 10,
            csat: 0,
        };
        assert_eq!(s.score(&only_breaches), 50);
    }

    #[test]
    fn the_mean_csat_is_a_component_of_its_own() {
        let rules = ChurnRules::default();
        let mut s = AccountStats {
            tickets: 1,
            resolved: 1,
            ..AccountStats::default()
        };
        let w = HealthWeights::default();
        // Resolution, complaints and breaches all 100 (weights 20, 15, 15).
        assert_eq!(s.score(&w), 100);
        // A rating of 2 is 25 of 100: (5000 + 25 * 20) / 70 = 78.
        s.record_csat(2, &rules);
        assert_eq!(s.score(&w), 78);
        // 2 and 5: a mean of 3.5, 62 of 100: (5000 + 62 * 20) / 70 = 89.
        s.record_csat(5, &rules);
        assert_eq!(s.score(&w), 89);
        // Weighed 0 by the tenant, ratings do not count.
        let without = HealthWeights { csat: 0, ..w };
        assert_eq!(s.score(&without), 100);
    }

    #[test]
    fn nps_is_promoters_minus_detractors() {
        let mut s = AccountStats::default();
        for score in [10, 9, 7, 3] {
            s.record_nps(score);
        }
        assert_eq!(s.nps(), 25);
    }

    #[test]
    fn three_unopened_guides_in_a_row_are_a_risk() {
        let rules = ChurnRules::default();
        let mut s = AccountStats {
            unopened_guides_in_a_row: 2,
            ..AccountStats::default()
        };
        assert!(
            s.risk_reasons(&rules, ComplaintWindows::default())
                .is_empty()
        );
        s.unopened_guides_in_a_row = 3;
        assert_eq!(
            s.risk_reasons(&rules, ComplaintWindows::default()),
            vec![ChurnReason::GuideUnopened]
        );
    }

    #[test]
    fn a_rising_complaint_share_is_a_risk() {
        let rules = ChurnRules::default();
        let rising = ComplaintWindows {
            current_tickets: 4,
            current_complaints: 2,
            previous_tickets: 10,
            previous_complaints: 1,
        };
        assert!(complaints_rising(rising, &rules));
        let flat = ComplaintWindows {
            previous_complaints: 5,
            ..rising
        };
        assert!(!complaints_rising(flat, &rules));
        let too_few = ComplaintWindows {
            current_complaints: 1,
            ..rising
        };
        assert!(!complaints_rising(too_few, &rules));
    }

    #[test]
    fn low_ratings_count_only_when_the_tenant_turns_the_rule_on() {
        let mut rules = ChurnRules::default();
        let mut s = AccountStats::default();
        s.record_csat(1, &rules);
        s.record_csat(2, &rules);
        assert!(
            s.risk_reasons(&rules, ComplaintWindows::default())
                .is_empty()
        );
        rules.low_ratings_in_a_row = 2;
        assert_eq!(
            s.risk_reasons(&rules, ComplaintWindows::default()),
            vec![ChurnReason::LowRatings]
        );
        s.record_csat(5, &rules);
        assert!(
            s.risk_reasons(&rules, ComplaintWindows::default())
                .is_empty()
        );
    }
}

/// What re-judging an account's health changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejudged {
    pub previous_score: u32,
    pub score_changed: bool,
    /// The account became a churn risk (it was not before).
    pub risk_raised: bool,
}

/// Recomputes the score and the churn flag of `account` from its figures.
pub fn rejudge(
    account: &mut super::model::Account,
    weights: &HealthWeights,
    rules: &ChurnRules,
    windows: ComplaintWindows,
    now: i64,
) -> Rejudged {
    let previous_score = account.score;
    let was_at_risk = account.at_risk;
    account.score = account.stats.score(weights);
    account.risk_reasons = account.stats.risk_reasons(rules, windows);
    account.at_risk = !account.risk_reasons.is_empty();
    account.health_known = true;
    account.update_time = now;
    Rejudged {
        previous_score,
        score_changed: account.score != previous_score,
        risk_raised: account.at_risk && !was_at_risk,
    }
}

#[cfg(test)]
mod csat_tests {
    use super::*;

    #[test]
    fn a_second_rating_replaces_the_first() {
        let rules = ChurnRules::default();
        let mut s = AccountStats::default();
        s.record_csat(4, &rules);
        s.replace_csat(4, 2, &rules);
        assert_eq!(
            (s.csat_count, s.csat_total, s.low_ratings_in_a_row),
            (1, 2, 1)
        );
        s.replace_csat(2, 1, &rules);
        assert_eq!(
            (s.csat_count, s.csat_total, s.low_ratings_in_a_row),
            (1, 1, 1)
        );
        s.replace_csat(1, 5, &rules);
        assert_eq!((s.csat_total, s.low_ratings_in_a_row), (5, 0));
    }
}
