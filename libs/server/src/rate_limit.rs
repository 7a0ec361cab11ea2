use std::{
    collections::HashMap,
    sync::{Mutex, PoisonError},
    time::{Duration, Instant},
};

use crate::RateLimitConfig;

/// Buckets kept before full (idle) ones are forgotten: a full bucket is the
/// same as no bucket.
const PRUNE_AT: usize = 10_000;

struct Bucket {
    tokens: f64,
    updated: Instant,
    rate: f64,
    burst: f64,
}

impl Bucket {
    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        self.updated = now;
    }
}

#[derive(Debug, Clone, Copy)]
struct Rate {
    per_second: f64,
    burst: f64,
}

impl Rate {
    fn of(per_second: u32, burst: u32) -> Option<Self> {
        (per_second > 0).then(|| Rate {
            per_second: f64::from(per_second),
            // A bucket that holds less than one call would refuse all.
            burst: f64::from(burst.max(1)),
        })
    }
}

/// Which bucket refused a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scope {
    Tenant,
    Subject,
}

impl Scope {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Scope::Tenant => "tenant",
            Scope::Subject => "subject",
        }
    }
}

/// Token buckets per tenant and per subject within it: a call takes a
/// token from both, or from neither.
pub(crate) struct RateLimiter {
    tenant: Option<Rate>,
    subject: Option<Rate>,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// `None` when the limits are off.
    pub(crate) fn new(cfg: &RateLimitConfig) -> Option<Self> {
        let tenant = Rate::of(cfg.requests_per_second, cfg.burst)?;
        Some(RateLimiter {
            tenant: Some(tenant),
            subject: Rate::of(cfg.subject_requests_per_second, cfg.subject_burst),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a token for `tenant` and its `subject`, or says which bucket
    /// is empty and how long until it has one.
    pub(crate) fn take(
        &self,
        tenant: &str,
        subject: &str,
        now: Instant,
    ) -> Result<(), (Scope, Duration)> {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= PRUNE_AT {
            buckets.retain(|_, bucket| {
                bucket.refill(now);
                bucket.tokens < bucket.burst
            });
        }
        // Keys cannot collide: a tenant's starts with 't', a subject's with 's'.
        let keys = [
            (Scope::Tenant, self.tenant, format!("t{tenant}")),
            (
                Scope::Subject,
                self.subject,
                format!("s{tenant}\0{subject}"),
            ),
        ];
        for (scope, rate, key) in &keys {
            let Some(rate) = rate else { continue };
            let bucket = buckets.entry(key.clone()).or_insert(Bucket {
                tokens: rate.burst,
                updated: now,
                rate: rate.per_second,
                burst: rate.burst,
            });
            bucket.refill(now);
            if bucket.tokens < 1.0 {
                let wait = (1.0 - bucket.tokens) / bucket.rate;
                return Err((*scope, Duration::from_secs_f64(wait)));
            }
        }
        for (_, rate, key) in &keys {
            if rate.is_some()
                && let Some(bucket) = buckets.get_mut(key)
            {
                bucket.tokens -= 1.0;
            }
        }
        Ok(())
    }
}

/// A per-tenant budget of work in units (rows imported, say) per second,
/// for calls whose cost is not one: a token bucket per tenant that holds
/// `capacity` units, so one call of up to `capacity` units always fits a
/// full bucket, and a tenant calling faster waits for its own refill.
pub struct TenantBudget {
    per_second: u32,
    capacity: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl std::fmt::Debug for TenantBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TenantBudget")
            .field("per_second", &self.per_second)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl TenantBudget {
    /// `None` when `per_second` is 0 (no budget).
    pub fn new(per_second: u32, capacity: usize) -> Option<Self> {
        (per_second > 0).then(|| TenantBudget {
            per_second,
            capacity: (capacity.max(1)) as f64,
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// The units the budget refills per second.
    pub fn per_second(&self) -> u32 {
        self.per_second
    }

    /// Takes `units` from `tenant`'s budget, or says how long until they
    /// are there (nothing is taken then).
    pub fn take(&self, tenant: &str, units: usize, now: Instant) -> Result<(), Duration> {
        let units = (units as f64).min(self.capacity);
        self.with_bucket(tenant, now, |bucket| {
            if bucket.tokens < units {
                return Err(Duration::from_secs_f64(
                    (units - bucket.tokens) / bucket.rate,
                ));
            }
            bucket.tokens -= units;
            Ok(())
        })
    }

    /// Takes `units` from `tenant`'s budget at once, into debt if need be,
    /// and says how long the caller waits before using them: the time the
    /// refill takes to pay the debt. Callers of one tenant are served in
    /// the order they reserved, each waiting once, rather than all polling
    /// for the next refill.
    pub fn reserve(&self, tenant: &str, units: usize, now: Instant) -> Duration {
        self.with_bucket(tenant, now, |bucket| {
            bucket.tokens -= units as f64;
            if bucket.tokens >= 0.0 {
                Duration::ZERO
            } else {
                Duration::from_secs_f64(-bucket.tokens / bucket.rate)
            }
        })
    }

    fn with_bucket<T>(&self, tenant: &str, now: Instant, f: impl FnOnce(&mut Bucket) -> T) -> T {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= PRUNE_AT {
            buckets.retain(|_, bucket| {
                bucket.refill(now);
                bucket.tokens < bucket.burst
            });
        }
        let bucket = buckets.entry(tenant.to_owned()).or_insert(Bucket {
            tokens: self.capacity,
            updated: now,
            rate: f64::from(self.per_second),
            burst: self.capacity,
        });
        bucket.refill(now);
        f(bucket)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(rate: u32, burst: u32, subject_rate: u32, subject_burst: u32) -> RateLimiter {
        RateLimiter::new(&RateLimitConfig {
            requests_per_second: rate,
            burst,
            subject_requests_per_second: subject_rate,
            subject_burst,
            ..RateLimitConfig::default()
        })
        .unwrap_or_else(|| unreachable!("a rate above zero"))
    }

    #[test]
    fn a_tenant_gets_its_burst_then_the_rate() {
        let b = limiter(2, 3, 0, 0);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(b.take("a", "u", t0), Ok(()));
        }
        assert_eq!(
            b.take("a", "u", t0),
            Err((Scope::Tenant, Duration::from_millis(500)))
        );
        // Half a second later one token has come back, and only one.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(b.take("a", "v", t1), Ok(()));
        assert!(b.take("a", "w", t1).is_err());
    }

    #[test]
    fn tenants_do_not_share_a_bucket() {
        let b = limiter(1, 1, 0, 0);
        let now = Instant::now();
        assert_eq!(b.take("a", "u", now), Ok(()));
        assert!(b.take("a", "u", now).is_err());
        assert_eq!(b.take("b", "u", now), Ok(()));
    }

    /// Finding 12: one user must not spend the whole tenant's budget.
    #[test]
    fn finding_12_one_subject_cannot_spend_its_tenants_budget() {
        let b = limiter(100, 10, 1, 3);
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(b.take("acme", "amy", now), Ok(()));
        }
        assert_eq!(
            b.take("acme", "amy", now),
            Err((Scope::Subject, Duration::from_secs(1)))
        );
        // Amy's refused call took nothing from the tenant: the others share
        // what is left of it (10 - 3), each within their own burst.
        for who in ["bob", "carl"] {
            for _ in 0..3 {
                assert_eq!(b.take("acme", who, now).map_err(|(s, _)| s), Ok(()));
            }
        }
        assert_eq!(b.take("acme", "dave", now).map_err(|(s, _)| s), Ok(()));
        assert_eq!(
            b.take("acme", "dave", now).map_err(|(s, _)| s),
            Err(Scope::Tenant)
        );
    }

    #[test]
    fn idle_buckets_are_forgotten_not_reset_early() {
        let b = limiter(1, 2, 0, 0);
        let now = Instant::now();
        for i in 0..PRUNE_AT {
            assert_eq!(b.take(&format!("t{i}"), "u", now), Ok(()));
        }
        // Every bucket is below full: pruning must keep them all.
        assert_eq!(b.take("t0", "u", now), Ok(()));
        assert!(b.take("t0", "u", now).is_err());
        // Once they have refilled, they go.
        let later = now + Duration::from_secs(10);
        assert_eq!(b.take("new", "u", later), Ok(()));
        let kept = b.buckets.lock().map(|m| m.len()).unwrap_or_default();
        assert_eq!(kept, 1);
    }

    #[test]
    fn a_tenant_budget_fits_one_full_call_then_refills_at_its_rate() {
        let budget = TenantBudget::new(100, 1_000).unwrap_or_else(|| unreachable!());
        let now = Instant::now();
        assert!(budget.take("noisy", 1_000, now).is_ok());
        let wait = budget.take("noisy", 500, now).err();
        assert_eq!(
            wait,
            Some(Duration::from_secs(5)),
            "500 units at 100 a second"
        );
        assert!(
            budget.take("quiet", 1_000, now).is_ok(),
            "another tenant's own"
        );
        assert!(
            budget
                .take("noisy", 500, now + Duration::from_secs(5))
                .is_ok()
        );
        // More than the capacity costs the capacity: it can still pass.
        let later = now + Duration::from_secs(60);
        assert!(budget.take("noisy", 5_000, later).is_ok());
        assert!(TenantBudget::new(0, 10).is_none());
    }

    #[test]
    fn reservations_go_into_debt_and_wait_in_turn() {
        let budget = TenantBudget::new(1_000, 1_000).unwrap_or_else(|| unreachable!());
        let now = Instant::now();
        assert_eq!(budget.reserve("noisy", 1_000, now), Duration::ZERO);
        // Each later reservation waits behind the debt before it.
        assert_eq!(
            budget.reserve("noisy", 500, now),
            Duration::from_millis(500)
        );
        assert_eq!(budget.reserve("noisy", 500, now), Duration::from_secs(1));
        assert_eq!(
            budget.reserve("quiet", 1_000, now),
            Duration::ZERO,
            "another tenant's own"
        );
        // The refill pays the debt: after a second only 500 units are owed.
        let later = now + Duration::from_secs(1);
        assert_eq!(
            budget.reserve("noisy", 0, later),
            Duration::ZERO,
            "the debt is paid by then"
        );
        assert_eq!(
            budget.reserve("noisy", 500, later),
            Duration::from_millis(500)
        );
    }
}
