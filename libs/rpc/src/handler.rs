//! One shape for every handler: read the request's context, run the body,
//! wrap its answer; whatever the body fails with becomes a status in the
//! service's error domain through `?`.

use std::future::Future;

use tonic::{Request, Response, Status};

use crate::{DomainError, FieldViolation, RequestContext, RpcError};

/// What a handler body of a service whose errors are `E` fails with.
#[derive(Debug)]
pub enum Refusal<E> {
    /// The service's own error.
    Domain(E),
    /// A refusal of the request itself (bad fields, a dependency down).
    Rpc(RpcError),
    /// A status made elsewhere and passed on as it is (another service's
    /// answer, the auth layer's refusal).
    Status(Status),
}

impl<E: DomainError> From<E> for Refusal<E> {
    fn from(err: E) -> Self {
        Refusal::Domain(err)
    }
}

impl<E> From<RpcError> for Refusal<E> {
    fn from(err: RpcError) -> Self {
        Refusal::Rpc(err)
    }
}

impl<E> From<FieldViolation> for Refusal<E> {
    fn from(v: FieldViolation) -> Self {
        Refusal::Rpc(v.into())
    }
}

impl<E> From<Vec<FieldViolation>> for Refusal<E> {
    fn from(vs: Vec<FieldViolation>) -> Self {
        Refusal::Rpc(vs.into())
    }
}

impl<E> From<Status> for Refusal<E> {
    fn from(status: Status) -> Self {
        Refusal::Status(status)
    }
}

impl<E: DomainError> From<Refusal<E>> for Status {
    fn from(refusal: Refusal<E>) -> Self {
        match refusal {
            Refusal::Domain(err) => err.into_status(),
            Refusal::Rpc(err) => E::refuse(err),
            Refusal::Status(status) => status,
        }
    }
}

/// See [`DomainError::handle`].
pub(crate) async fn handle<E, M, R, F, Fut>(req: Request<M>, body: F) -> Result<Response<R>, Status>
where
    E: DomainError,
    M: prost::Name,
    F: FnOnce(RequestContext, M) -> Fut,
    Fut: Future<Output = Result<R, Refusal<E>>>,
{
    let ctx = RequestContext::of(&req)?;
    match body(ctx, req.into_inner()).await {
        Ok(answer) => Ok(Response::new(answer)),
        Err(refusal) => Err(refusal.into()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use crm_auth::Principal;
    use crm_proto::crm::leads::v1::GetLeadRequest;
    use tonic::Code;
    use tonic_types::StatusExt;

    use super::*;

    #[derive(Debug)]
    struct Missing;

    impl DomainError for Missing {
        const DOMAIN: &'static str = "crm.test";

        fn into_rpc(self) -> RpcError {
            RpcError::NotFound {
                resource: "crm.test.v1.Thing",
                id: "t1".into(),
            }
        }
    }

    fn request(id: &str) -> Request<GetLeadRequest> {
        let mut req = Request::new(GetLeadRequest { id: id.to_owned() });
        req.extensions_mut().insert(Principal {
            subject: "amy".into(),
            tenant: "acme".into(),
            roles: vec![],
        });
        req
    }

    async fn get_thing(req: Request<GetLeadRequest>) -> Result<Response<String>, Status> {
        Missing::handle(req, |ctx, body| async move {
            crate::required_id(&body.id, "id")?;
            if body.id == "t1" {
                return Err(Missing.into());
            }
            if body.id == "t2" {
                Err(Status::unavailable("passed on"))?;
            }
            Ok(format!("{}/{}/{}", ctx.tenant, ctx.method, body.id))
        })
        .await
    }

    fn domain(status: &Status) -> Option<String> {
        status
            .get_error_details()
            .error_info()
            .map(|i| i.domain.clone())
    }

    #[tokio::test]
    async fn every_refusal_speaks_for_the_service() {
        let answer = get_thing(request("t9")).await.unwrap();
        assert_eq!(answer.into_inner(), "acme/GetLead/t9");

        let bad = get_thing(request("")).await.unwrap_err();
        assert_eq!(bad.code(), Code::InvalidArgument);
        assert_eq!(domain(&bad).as_deref(), Some("crm.test"));
        let missing = get_thing(request("t1")).await.unwrap_err();
        assert_eq!(missing.code(), Code::NotFound);
        assert_eq!(domain(&missing).as_deref(), Some("crm.test"));
        let passed = get_thing(request("t2")).await.unwrap_err();
        assert_eq!(passed.code(), Code::Unavailable);
        assert_eq!(passed.message(), "passed on");

        let mut anonymous = request("t9");
        anonymous.extensions_mut().remove::<Principal>();
        let refused = get_thing(anonymous).await.unwrap_err();
        assert_eq!(refused.code(), Code::Unauthenticated);
    }
}
