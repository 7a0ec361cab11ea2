//! Consumers of another service's events across every tenant, reading as
//! this service's own identity (the internal role, which alone may read
//! every tenant's stream).

use std::{sync::Arc, time::Duration};

use crm_auth::{Role, TokenMinter};
use tonic::transport::Channel;

/// A consumer's service token: minted afresh for each connection, so a
/// short life costs nothing.
const TOKEN_TTL: Duration = Duration::from_secs(600);

/// Who a consumer is and what it reads.
pub struct InternalConsumer<'a> {
    /// The cursor's name: stable across releases.
    pub name: &'a str,
    /// The producing service, as its events name it.
    pub source: &'a str,
    /// The event types it handles; the others are never sent.
    pub types: &'a [&'a str],
    /// This service's identity in the audit trail (`system:<service>`).
    pub subject: &'static str,
}

impl InternalConsumer<'_> {
    /// The consumer over `channel`, with its retries backing off from
    /// 100 ms to `backoff_max`.
    pub fn build(
        &self,
        channel: Channel,
        identity: Arc<TokenMinter>,
        backoff_max: Duration,
    ) -> crm_events::Consumer {
        let subject = self.subject;
        crm_events::Consumer::all_tenants(self.name, self.source, channel, move || {
            identity.mint(subject, "suite", &[Role::Internal], TOKEN_TTL)
        })
        .with_types(self.types.iter().copied())
        .with_backoff(crm_events::Backoff {
            initial: Duration::from_millis(100),
            max: backoff_max,
        })
    }
}
