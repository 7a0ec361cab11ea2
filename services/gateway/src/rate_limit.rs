use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError},
    task::{Context, Poll},
    time::{Duration, Instant},
};

use crm_auth::Principal;
use crm_server::grpc::error_response;
use http::{Request, Response};
use tonic::{Code, Status, body::Body};
use tonic_types::{ErrorDetails, StatusExt as _};
use tower::{Layer, Service};

use crate::{BoxFuture, ERROR_DOMAIN, RateLimitConfig};

/// Buckets kept before full (idle) ones are forgotten: a full bucket is the
/// same as no bucket.
const PRUNE_AT: usize = 10_000;

struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets keyed by tenant.
struct Buckets {
    rate: f64,
    burst: f64,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl Buckets {
    fn refill(&self, bucket: &mut Bucket, now: Instant) {
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.rate).min(self.burst);
        bucket.updated = now;
    }

    /// Takes a token for `tenant`, or says how long until one is there.
    fn take(&self, tenant: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if buckets.len() >= PRUNE_AT {
            buckets.retain(|_, bucket| {
                self.refill(bucket, now);
                bucket.tokens < self.burst
            });
        }
        let bucket = buckets.entry(tenant.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        self.refill(bucket, now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - bucket.tokens) / self.rate))
        }
    }
}

/// Limits each tenant (the verified [`Principal`]'s) to a token bucket of
/// `burst` calls refilled at `requests_per_second`; beyond it the call is
/// RESOURCE_EXHAUSTED with `ErrorInfo` RATE_LIMITED and a `RetryInfo`
/// saying when a call would pass. Calls without a principal (public
/// methods) share one bucket.
#[derive(Clone)]
pub struct RateLimitLayer {
    buckets: Option<Arc<Buckets>>,
}

impl RateLimitLayer {
    pub fn new(cfg: &RateLimitConfig) -> Self {
        let buckets = (cfg.requests_per_second > 0).then(|| {
            Arc::new(Buckets {
                rate: f64::from(cfg.requests_per_second),
                // A bucket that holds less than one call would refuse all.
                burst: f64::from(cfg.burst.max(1)),
                buckets: Mutex::new(HashMap::new()),
            })
        });
        Self { buckets }
    }
}

impl<S> Layer<S> for RateLimitLayer {
    type Service = RateLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RateLimit {
            inner,
            buckets: self.buckets.clone(),
        }
    }
}

#[derive(Clone)]
pub struct RateLimit<S> {
    inner: S,
    buckets: Option<Arc<Buckets>>,
}

fn rate_limited(retry_after: Duration) -> Status {
    let mut details = ErrorDetails::with_error_info("RATE_LIMITED", ERROR_DOMAIN, HashMap::new());
    details.set_retry_info(Some(retry_after));
    Status::with_error_details(
        Code::ResourceExhausted,
        format!("the tenant's rate limit is exceeded; retry in {retry_after:?}"),
        details,
    )
}

impl<S, B> Service<Request<B>> for RateLimit<S>
where
    S: Service<Request<B>, Response = Response<Body>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Response<Body>, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if let Some(buckets) = &self.buckets {
            let tenant = req
                .extensions()
                .get::<Principal>()
                .map_or("", |p| p.tenant.as_str());
            if let Err(retry_after) = buckets.take(tenant, Instant::now()) {
                tracing::debug!(tenant, "refused: rate limit");
                return Box::pin(std::future::ready(Ok(error_response(rate_limited(
                    retry_after,
                )))));
            }
        }
        Box::pin(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn buckets(rate: f64, burst: f64) -> Buckets {
        Buckets {
            rate,
            burst,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    #[test]
    fn a_tenant_gets_its_burst_then_the_rate() {
        let b = buckets(2.0, 3.0);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert_eq!(b.take("a", t0), Ok(()));
        }
        assert_eq!(b.take("a", t0), Err(Duration::from_millis(500)));
        // Half a second later one token has come back, and only one.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!(b.take("a", t1), Ok(()));
        assert!(b.take("a", t1).is_err());
    }

    #[test]
    fn tenants_do_not_share_a_bucket() {
        let b = buckets(1.0, 1.0);
        let now = Instant::now();
        assert_eq!(b.take("a", now), Ok(()));
        assert!(b.take("a", now).is_err());
        assert_eq!(b.take("b", now), Ok(()));
    }

    #[test]
    fn idle_tenants_are_forgotten_not_reset_early() {
        let b = buckets(1.0, 2.0);
        let now = Instant::now();
        for i in 0..PRUNE_AT {
            assert_eq!(b.take(&format!("t{i}"), now), Ok(()));
        }
        // Every bucket is below full: pruning must keep them all.
        assert_eq!(b.take("t0", now), Ok(()));
        assert!(b.take("t0", now).is_err());
        // Once they have refilled, they go.
        let later = now + Duration::from_secs(10);
        assert_eq!(b.take("new", later), Ok(()));
        let kept = b.buckets.lock().map(|m| m.len()).unwrap_or_default();
        assert_eq!(kept, 1);
    }
}
