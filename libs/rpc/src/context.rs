//! What every handler reads from a request before anything else: who calls
//! for which tenant, when, which method, and (for a creating call) what
//! identifies the call for replay.

use crm_types::Actor;
use tonic::{Request, Status};

use crate::{FieldViolation, fields, paging::Binding};

/// A creating call's `request_id` (AIP-155) and a digest of its request:
/// the same id with other content is told from a retry by the digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId {
    pub id: String,
    pub digest: String,
}

/// The caller and circumstances of one request.
#[derive(Debug, Clone)]
pub struct RequestContext {
    /// The token's subject and roles.
    pub caller: Actor,
    /// The caller's tenant: every record is read and written in it.
    pub tenant: String,
    /// When the call is handled, Unix microseconds.
    pub now: i64,
    /// The RPC's name (`CreateLead`): idempotency records and page tokens
    /// are bound to it.
    pub method: &'static str,
    /// Set by [`RequestContext::replayable`] when a creating call carries
    /// a request id.
    pub request: Option<RequestId>,
}

impl RequestContext {
    /// The context of a request the shared auth layer let through.
    pub fn of<T: prost::Name>(req: &Request<T>) -> Result<Self, Status> {
        let principal = crm_auth::principal(req)?;
        Ok(RequestContext {
            caller: Actor::new(principal.subject.clone(), principal.roles.clone()),
            tenant: principal.tenant.clone(),
            now: crm_types::now_micros(),
            method: method_of::<T>(),
            request: None,
        })
    }

    /// Makes a creating call replayable: checks its `request_id` (empty
    /// means no replay protection) and digests `request` (the whole
    /// message, request id included).
    pub fn replayable<M: prost::Message>(
        &mut self,
        request_id: &str,
        request: &M,
    ) -> Result<(), FieldViolation> {
        self.request = fields::request_id(request_id)?.map(|id| RequestId {
            id: id.to_owned(),
            digest: fields::request_hash(request),
        });
        Ok(())
    }

    /// What this method's page tokens are bound to before any filter.
    pub fn binding(&self) -> Binding {
        Binding::new(&self.tenant, self.method)
    }
}

/// The RPC a request message is for: every RPC has its own
/// `<Rpc>Request` message (docs/contracts.md).
fn method_of<T: prost::Name>() -> &'static str {
    T::NAME.strip_suffix("Request").unwrap_or(T::NAME)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crm_auth::Principal;
    use crm_proto::crm::leads::v1::{CreateLeadRequest, ListLeadsRequest};
    use crm_types::Role;
    use tonic::Code;

    use super::*;

    fn request<T>(body: T) -> Request<T> {
        let mut req = Request::new(body);
        req.extensions_mut().insert(Principal {
            subject: "amy".into(),
            tenant: "acme".into(),
            roles: vec![Role::Sales],
        });
        req
    }

    #[test]
    fn names_the_caller_tenant_method_and_time() {
        let before = crm_types::now_micros();
        let ctx = RequestContext::of(&request(CreateLeadRequest::default())).unwrap();
        assert_eq!(ctx.caller, Actor::new("amy", vec![Role::Sales]));
        assert_eq!(ctx.tenant, "acme");
        assert_eq!(ctx.method, "CreateLead");
        assert!(ctx.now >= before);
        assert_eq!(ctx.request, None);
        let ctx = RequestContext::of(&request(ListLeadsRequest::default())).unwrap();
        assert_eq!(
            ctx.binding(),
            Binding::new("acme", "ListLeads"),
            "page tokens are bound to tenant and method"
        );
    }

    #[test]
    fn refuses_a_request_without_a_caller() {
        let mut anonymous = request(CreateLeadRequest::default());
        anonymous.extensions_mut().remove::<Principal>();
        let err = RequestContext::of(&anonymous).unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
    }

    #[test]
    fn a_request_id_is_checked_and_bound_to_the_content() {
        let req = request(CreateLeadRequest {
            request_id: "r-1".into(),
            ..CreateLeadRequest::default()
        });
        let mut ctx = RequestContext::of(&req).unwrap();
        ctx.replayable("", req.get_ref()).unwrap();
        assert_eq!(ctx.request, None, "empty: no replay protection");

        ctx.replayable("r-1", req.get_ref()).unwrap();
        let first = ctx.request.clone().unwrap();
        assert_eq!(first.id, "r-1");
        let mut other = req.get_ref().clone();
        other.on_duplicate = 2;
        ctx.replayable("r-1", &other).unwrap();
        assert_ne!(ctx.request.unwrap().digest, first.digest);

        let err = RequestContext::of(&req)
            .unwrap()
            .replayable("with space", req.get_ref())
            .unwrap_err();
        assert_eq!(err.field, "request_id");
    }
}
