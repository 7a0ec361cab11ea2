//! How a service's own errors reach the wire: each service says, once, how
//! its error enum maps into [`RpcError`] and which error domain it speaks
//! for; the status is built here, the same way for all of them.

use std::future::Future;

use tonic::{Request, Response, Status};

use crate::{FieldViolation, Refusal, RequestContext, RpcError, handler};

/// A service's error, as its api layer reports it.
pub trait DomainError: Sized {
    /// The `ErrorInfo` domain of the service: `crm.<service>`.
    const DOMAIN: &'static str;

    /// The failure this error is, in the API's vocabulary.
    fn into_rpc(self) -> RpcError;

    /// The status the caller receives.
    fn into_status(self) -> Status {
        self.into_rpc().into_status(Self::DOMAIN)
    }

    /// A refusal the api layer makes itself (a bad field, an unavailable
    /// dependency), in this service's error domain.
    fn refuse(err: impl Into<RpcError>) -> Status {
        err.into().into_status(Self::DOMAIN)
    }

    /// Handles one call of this service: `body` gets the request's context
    /// and message and returns the response message; `?` turns this error,
    /// bad fields and passed-on statuses into the caller's status.
    fn handle<M, R, F, Fut>(
        req: Request<M>,
        body: F,
    ) -> impl Future<Output = Result<Response<R>, Status>> + Send
    where
        Self: Send,
        M: prost::Name + Send,
        F: FnOnce(RequestContext, M) -> Fut + Send,
        Fut: Future<Output = Result<R, Refusal<Self>>> + Send,
    {
        handler::handle(req, body)
    }
}

impl From<FieldViolation> for RpcError {
    fn from(v: FieldViolation) -> Self {
        RpcError::InvalidArgument(vec![v])
    }
}

impl From<Vec<FieldViolation>> for RpcError {
    fn from(vs: Vec<FieldViolation>) -> Self {
        RpcError::InvalidArgument(vs)
    }
}

#[cfg(test)]
mod tests {
    use tonic::Code;
    use tonic_types::StatusExt;

    use super::*;

    #[derive(Debug)]
    struct Gone;

    impl DomainError for Gone {
        const DOMAIN: &'static str = "crm.test";

        fn into_rpc(self) -> RpcError {
            RpcError::NotFound {
                resource: "crm.test.v1.Thing",
                id: "t1".into(),
            }
        }
    }

    fn domain(status: &Status) -> Option<String> {
        status
            .get_error_details()
            .error_info()
            .map(|i| i.domain.clone())
    }

    #[test]
    fn errors_and_refusals_speak_for_the_service() {
        let status = Gone.into_status();
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(domain(&status).as_deref(), Some("crm.test"));

        let status = Gone::refuse(FieldViolation::new("id", "required"));
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(domain(&status).as_deref(), Some("crm.test"));
        let fields: Vec<_> = status
            .get_error_details()
            .bad_request()
            .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
            .unwrap_or_default();
        assert_eq!(fields, ["id"]);
    }
}
