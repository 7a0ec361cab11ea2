//! Turns at the database for subscribers' reads.
//!
//! Every open stream reads its own pages of the outbox whenever the head
//! moves. Left alone, one tenant's many streams over a busy outbox (its own
//! big imports, say) would queue dozens of reads at the pool at once, and
//! another tenant's call would wait behind them for a connection. So the
//! subscribers of one service read through a few turns in all, and one
//! tenant's subscribers through fewer: a tenant with many streams gets its
//! events later, never another tenant's calls.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex, PoisonError, Weak},
};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The read turns of one service's subscribers.
#[derive(Debug)]
pub(crate) struct ReadTurns {
    total: Arc<Semaphore>,
    per_tenant: usize,
    /// Each tenant's turns, shared by its open streams while any is open;
    /// `None` holds the every-tenant subscribers' (the suite's services).
    tenants: Mutex<HashMap<Option<String>, Weak<Semaphore>>>,
}

/// A turn: held while one page is read.
#[derive(Debug)]
pub(crate) struct Turn {
    _tenant: OwnedSemaphorePermit,
    _total: OwnedSemaphorePermit,
}

impl ReadTurns {
    pub(crate) fn new(total: usize, per_tenant: usize) -> Self {
        Self {
            total: Arc::new(Semaphore::new(total.clamp(1, Semaphore::MAX_PERMITS))),
            per_tenant: per_tenant.clamp(1, Semaphore::MAX_PERMITS),
            tenants: Mutex::new(HashMap::new()),
        }
    }

    /// The turns `tenant`'s streams share (`None`: the every-tenant
    /// subscribers), for a stream to hold while it is open.
    pub(crate) fn of(&self, tenant: Option<&str>) -> Arc<Semaphore> {
        let key = tenant.map(str::to_owned);
        let mut tenants = self.tenants.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(turns) = tenants.get(&key).and_then(Weak::upgrade) {
            return turns;
        }
        tenants.retain(|_, turns| turns.strong_count() > 0);
        let turns = Arc::new(Semaphore::new(self.per_tenant));
        tenants.insert(key, Arc::downgrade(&turns));
        turns
    }

    /// Waits for a turn of the tenant's, then for one of the service's: a
    /// tenant's queued streams wait in its own line, holding nothing that
    /// others need.
    pub(crate) async fn take(&self, tenant: &Arc<Semaphore>) -> Turn {
        // Neither semaphore is ever closed.
        let own = Arc::clone(tenant).acquire_owned().await;
        let total = Arc::clone(&self.total).acquire_owned().await;
        match (own, total) {
            (Ok(own), Ok(total)) => Turn {
                _tenant: own,
                _total: total,
            },
            _ => unreachable!("read turn semaphores are never closed"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use super::*;

    /// Whether a turn of `tenant`'s comes within a moment (it is taken and
    /// given back at once).
    async fn turn_comes(turns: &ReadTurns, tenant: &Arc<Semaphore>) -> bool {
        tokio::time::timeout(Duration::from_millis(50), turns.take(tenant))
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn a_tenant_holding_its_turns_waits_while_another_tenant_reads() {
        let turns = ReadTurns::new(3, 2);
        let noisy = turns.of(Some("noisy"));
        let quiet = turns.of(Some("quiet"));
        let _a = turns.take(&noisy).await;
        let _b = turns.take(&noisy).await;
        assert!(!turn_comes(&turns, &noisy).await, "a third read of noisy's");
        assert!(turn_comes(&turns, &quiet).await, "quiet reads beside it");
        // Another stream of the same tenant shares its turns.
        assert!(!turn_comes(&turns, &turns.of(Some("noisy"))).await);
    }

    #[tokio::test]
    async fn the_service_total_bounds_every_tenant_together() {
        let turns = ReadTurns::new(2, 2);
        let (a, b, c) = (turns.of(Some("a")), turns.of(Some("b")), turns.of(None));
        let _one = turns.take(&a).await;
        let _two = turns.take(&b).await;
        assert!(!turn_comes(&turns, &c).await, "the pool share is taken");
        drop(_one);
        assert!(turn_comes(&turns, &c).await);
    }

    #[tokio::test]
    async fn every_tenant_subscribers_have_turns_apart_from_any_tenant() {
        let turns = ReadTurns::new(4, 1);
        let named = turns.of(Some(""));
        let _held = turns.take(&named).await;
        assert!(turn_comes(&turns, &turns.of(None)).await);
    }

    #[test]
    fn turns_of_tenants_without_open_streams_are_forgotten() {
        let turns = ReadTurns::new(4, 1);
        for i in 0..100 {
            drop(turns.of(Some(&format!("t{i}"))));
        }
        let _kept = turns.of(Some("kept"));
        assert_eq!(turns.tenants.lock().unwrap().len(), 1);
    }
}
