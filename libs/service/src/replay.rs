//! The idempotency key of a creating call, from its request context.

use crm_rpc::RequestContext;
use crm_store::idempotency::RequestKey;

/// What a use case that may replay a creating call is given.
pub trait Replay {
    /// The key a creating call is recorded under; `None` without a
    /// request id (see [`RequestContext::replayable`]).
    fn request_key(&self) -> Option<RequestKey<'_>>;
}

impl Replay for RequestContext {
    fn request_key(&self) -> Option<RequestKey<'_>> {
        self.request.as_ref().map(|r| RequestKey {
            tenant: &self.tenant,
            request_id: &r.id,
            method: self.method,
            request_hash: &r.digest,
        })
    }
}
