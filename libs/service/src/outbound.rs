//! Calls to other services: each carries the current trace context (so the
//! callee's spans join the caller's trace) and a bearer token: the caller's
//! own, relayed, for work done on a user's behalf, or the service identity's
//! for work a service does by itself.

use std::time::Duration;

use crm_auth::BearerToken;
use crm_telemetry::{RpcClient, RpcClientLayer};
use tonic::{Request, metadata::MetadataMap, transport::Channel};
use tower::Layer as _;

/// A channel to another service whose every call makes a CLIENT span (the
/// edge caller → callee in a trace) and client metrics.
pub type PeerChannel = RpcClient<Channel>;

/// `channel` to `peer` (its name or URL), traced as calls made by
/// `caller` (e.g. `"leads"`).
pub fn traced(caller: &str, peer: &str, channel: Channel) -> PeerChannel {
    RpcClientLayer::new(caller, peer).layer(channel)
}

/// `message` as a request to another service, on behalf of `token`'s
/// holder, within the current trace, given at most `timeout`. Send it on a
/// [`PeerChannel`] so that the call gets its own CLIENT span.
pub fn outbound<T>(message: T, token: Option<&BearerToken>, timeout: Duration) -> Request<T> {
    let mut headers = http::HeaderMap::new();
    crm_telemetry::inject_trace_context(&mut headers);
    let mut request = Request::from_parts(
        MetadataMap::from_headers(headers),
        Default::default(),
        message,
    );
    if let Some(value) = token.and_then(|t| t.header_value().parse().ok()) {
        request.metadata_mut().insert("authorization", value);
    }
    request.set_timeout(timeout);
    request
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_outbound_call_carries_the_token_and_its_deadline() {
        let token = BearerToken("abc.def.ghi".into());
        let request = outbound((), Some(&token), Duration::from_secs(3));
        let metadata = request.metadata();
        assert_eq!(
            metadata.get("authorization").and_then(|v| v.to_str().ok()),
            Some("Bearer abc.def.ghi")
        );
        assert_eq!(
            metadata.get("grpc-timeout").and_then(|v| v.to_str().ok()),
            Some("3000000u")
        );
        let anonymous = outbound((), None, Duration::from_secs(1));
        assert!(anonymous.metadata().get("authorization").is_none());
    }
}
