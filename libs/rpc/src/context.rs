//! What every handler reads from a request before anything else: who calls
//! for which tenant, when, which method, and (for a creating call) what
//! identifies the call for replay.

use crm_types::Actor;
use tonic::{GrpcMethod, Request, Status};

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
    pub method: String,
    /// Set by [`RequestContext::replayable`] when a creating call carries
    /// a request id.
    pub request: Option<RequestId>,
}

impl RequestContext {
    /// The context of a request the shared auth layer let through.
    pub fn of<T>(req: &Request<T>) -> Result<Self, Status> {
        let principal = crm_auth::principal(req)?;
        // Inserted by the generated server code of every method.
        let method = req
            .extensions()
            .get::<GrpcMethod<'static>>()
            .map(|m| m.method().to_owned())
            .ok_or_else(|| Status::internal("the request names no gRPC method"))?;
        Ok(RequestContext {
            caller: Actor::new(principal.subject.clone(), principal.roles.clone()),
            tenant: principal.tenant.clone(),
            now: crm_types::now_micros(),
            method,
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
        Binding::new(&self.tenant, &self.method)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crm_auth::Principal;
    use crm_types::Role;
    use tonic::Code;

    use super::*;

    fn request(method: Option<&'static str>) -> Request<crm_proto::crm::common::v1::Money> {
        let mut req = Request::new(crm_proto::crm::common::v1::Money {
            currency_code: "CNY".into(),
            units: 1,
            nanos: 0,
        });
        req.extensions_mut().insert(Principal {
            subject: "amy".into(),
            tenant: "acme".into(),
            roles: vec![Role::Sales],
        });
        if let Some(method) = method {
            req.extensions_mut()
                .insert(GrpcMethod::new("crm.leads.v1.LeadService", method));
        }
        req
    }

    #[test]
    fn names_the_caller_tenant_method_and_time() {
        let before = crm_types::now_micros();
        let ctx = RequestContext::of(&request(Some("CreateLead"))).unwrap();
        assert_eq!(ctx.caller, Actor::new("amy", vec![Role::Sales]));
        assert_eq!(ctx.tenant, "acme");
        assert_eq!(ctx.method, "CreateLead");
        assert!(ctx.now >= before);
        assert_eq!(ctx.request, None);
        assert_eq!(
            ctx.binding(),
            Binding::new("acme", "CreateLead"),
            "page tokens are bound to tenant and method"
        );
    }

    #[test]
    fn refuses_a_request_without_a_caller_or_method() {
        let mut anonymous = request(Some("CreateLead"));
        anonymous.extensions_mut().remove::<Principal>();
        let err = RequestContext::of(&anonymous).unwrap_err();
        assert_eq!(err.code(), Code::Unauthenticated);
        let err = RequestContext::of(&request(None)).unwrap_err();
        assert_eq!(err.code(), Code::Internal);
    }

    #[test]
    fn a_request_id_is_checked_and_bound_to_the_content() {
        let req = request(Some("CreateLead"));
        let mut ctx = RequestContext::of(&req).unwrap();
        ctx.replayable("", req.get_ref()).unwrap();
        assert_eq!(ctx.request, None, "empty: no replay protection");

        ctx.replayable("r-1", req.get_ref()).unwrap();
        let first = ctx.request.clone().unwrap();
        assert_eq!(first.id, "r-1");
        let mut other = req.get_ref().clone();
        other.units = 2;
        ctx.replayable("r-1", &other).unwrap();
        assert_ne!(ctx.request.unwrap().digest, first.digest);

        let err = RequestContext::of(&req)
            .unwrap()
            .replayable("with space", req.get_ref())
            .unwrap_err();
        assert_eq!(err.field, "request_id");
    }
}
