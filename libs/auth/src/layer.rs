use std::collections::HashMap;
use std::future::{Ready, ready};
use std::str::FromStr;
use std::sync::{Arc, LazyLock};
use std::task::{Context, Poll};

use futures_util::future::Either;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};
use tower::{Layer, Service};

use crate::{Acting, BearerToken, ERROR_DOMAIN, Principal, Role, Verifier};

/// Paths under these prefixes are served without a token: probes and
/// tooling must work before anyone has a token.
const PUBLIC_PREFIXES: [&str; 2] = ["/grpc.health.v1.Health/", "/grpc.reflection."];

/// Who may call a method, from the contracts.
struct Policy {
    roles: Vec<Role>,
    public: bool,
}

/// Built once per process from the table that crm-proto generates from the
/// `(crm.common.v1.policy)` options.
static POLICIES: LazyLock<HashMap<&'static str, Policy>> = LazyLock::new(|| {
    crm_proto::METHOD_POLICIES
        .iter()
        .map(|p| {
            let policy = Policy {
                // A name this build does not know grants nothing.
                roles: p
                    .roles
                    .iter()
                    .filter_map(|r| Role::from_str(r).ok())
                    .collect(),
                public: p.public,
            };
            (p.path, policy)
        })
        .collect()
});

/// The tower layer that authenticates every call and enforces the method
/// policy, deny by default. Use it in a tonic server
/// (`Server::builder().layer(AuthLayer::new(v))`) or around a
/// `tonic::service::Routes` / axum router (`AuthLayer::new(v).layer(routes)`).
///
/// Per request: public paths pass; a path without a policy is UNIMPLEMENTED;
/// a missing or invalid token is UNAUTHENTICATED; a caller holding none of
/// the method's roles is PERMISSION_DENIED. Otherwise the [`Principal`] and
/// the [`BearerToken`] go into the request extensions.
#[derive(Clone)]
pub struct AuthLayer {
    verifier: Arc<Verifier>,
}

impl AuthLayer {
    /// A layer verifying tokens with `verifier`.
    pub fn new(verifier: Arc<Verifier>) -> Self {
        AuthLayer { verifier }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            verifier: Arc::clone(&self.verifier),
        }
    }
}

/// The service of [`AuthLayer`].
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    verifier: Arc<Verifier>,
}

impl<S, B, ResBody> Service<http::Request<B>> for AuthService<S>
where
    S: Service<http::Request<B>, Response = http::Response<ResBody>>,
    ResBody: Default,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = Either<Ready<Result<Self::Response, Self::Error>>, S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        match authorize(&self.verifier, &mut req) {
            Ok(()) => Either::Right(self.inner.call(req)),
            // A gRPC error is an HTTP 200 with the status in the headers.
            Err(status) => Either::Left(ready(Ok(status.into_http()))),
        }
    }
}

fn authorize<B>(verifier: &Verifier, req: &mut http::Request<B>) -> Result<(), Status> {
    let path = req.uri().path();
    if PUBLIC_PREFIXES.iter().any(|p| path.starts_with(p)) {
        return Ok(());
    }
    let Some(policy) = POLICIES.get(path) else {
        tracing::debug!(rpc.path = %path, "refused: method has no policy");
        return Err(refusal(
            Code::Unimplemented,
            "METHOD_UNKNOWN",
            "unknown method",
            Some(path),
        ));
    };
    if policy.public {
        return Ok(());
    }

    let token = bearer(req.headers())?;
    let (principal, acting) = verifier.verify_acting(&token).map_err(|err| {
        tracing::debug!(rpc.path = %path, error = %err, "refused: bearer token");
        let message = match err.reason() {
            "TOKEN_EXPIRED" => "the bearer token has expired",
            _ => "the bearer token is not valid",
        };
        refusal(Code::Unauthenticated, err.reason(), message, None)
    })?;
    if !principal.has_any(&policy.roles) {
        tracing::debug!(
            rpc.path = %path,
            subject = %principal.subject,
            tenant = %principal.tenant,
            "refused: no role allowed to call this method"
        );
        return Err(refusal(
            Code::PermissionDenied,
            "ROLE_NOT_ALLOWED",
            "the caller's roles do not allow this method",
            Some(path),
        ));
    }
    let extensions = req.extensions_mut();
    extensions.insert(principal);
    if let Some(acting) = acting {
        extensions.insert(acting);
    }
    extensions.insert(BearerToken(token));
    Ok(())
}

/// The token of the single `authorization: Bearer <token>` header.
fn bearer(headers: &http::HeaderMap) -> Result<String, Status> {
    let mut values = headers.get_all(http::header::AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Err(refusal(
            Code::Unauthenticated,
            "TOKEN_MISSING",
            "a bearer token is required",
            None,
        ));
    };
    let invalid = || {
        refusal(
            Code::Unauthenticated,
            "TOKEN_INVALID",
            "the authorization header is not a single bearer token",
            None,
        )
    };
    // Two headers could be read differently by the gateway and a service.
    if values.next().is_some() {
        return Err(invalid());
    }
    let value = value.to_str().map_err(|_| invalid())?;
    let (scheme, token) = value.split_once(' ').ok_or_else(invalid)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(invalid());
    }
    Ok(token.to_owned())
}

/// A status with `ErrorInfo` in the `crm.auth` domain. Messages are fixed
/// strings: nothing from the token goes back to the caller.
fn refusal(code: Code, reason: &str, message: &str, method: Option<&str>) -> Status {
    let metadata: HashMap<String, String> = method
        .map(|m| HashMap::from([("method".to_owned(), m.to_owned())]))
        .unwrap_or_default();
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata),
    )
}

/// The caller of a request that passed the [`AuthLayer`]. UNAUTHENTICATED
/// if there is none: the layer is not installed, or the method is public.
pub fn principal<T>(req: &tonic::Request<T>) -> Result<&Principal, Status> {
    req.extensions().get::<Principal>().ok_or_else(|| {
        tracing::warn!("no principal in the request: is the auth layer installed?");
        refusal(
            Code::Unauthenticated,
            "TOKEN_MISSING",
            "the caller is not authenticated",
            None,
        )
    })
}

/// The user a service token acts for, if the caller is a service acting
/// for one (see [`Acting`]).
pub fn acting_for<T>(req: &tonic::Request<T>) -> Option<&Acting> {
    req.extensions().get::<Acting>()
}

/// The caller's token, to forward on calls made on the caller's behalf.
pub fn bearer_token<T>(req: &tonic::Request<T>) -> Option<&BearerToken> {
    req.extensions().get::<BearerToken>()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::convert::Infallible;
    use std::time::Duration;

    use tonic::body::Body;
    use tower::ServiceExt as _;

    use super::*;
    use crate::mint::generate_ed25519;
    use crate::{AuthConfig, TokenMinter};

    /// Every role a user may hold: all but `internal`.
    const USER_ROLES: [Role; 9] = [
        Role::Sales,
        Role::Solution,
        Role::Delivery,
        Role::Service,
        Role::Finance,
        Role::Legal,
        Role::Manager,
        Role::Admin,
        Role::Integration,
    ];

    struct Fixture {
        layer: AuthLayer,
        minter: TokenMinter,
        private_pem: String,
    }

    fn fixture() -> Fixture {
        let (private_pem, public_pem) = generate_ed25519().unwrap();
        let verifier = Verifier::new(&AuthConfig::default(), &[public_pem.into_bytes()]).unwrap();
        Fixture {
            layer: AuthLayer::new(Arc::new(verifier)),
            minter: TokenMinter::from_ed25519_pem(private_pem.as_bytes(), "crm", "crm").unwrap(),
            private_pem,
        }
    }

    /// A protected method and a role that may call it and one that may not,
    /// read from the generated policy so the test follows the contracts.
    fn protected_method() -> (&'static str, Role, Role) {
        crm_proto::METHOD_POLICIES
            .iter()
            .filter(|p| !p.public)
            .find_map(|p| {
                let allowed: Vec<Role> = p.roles.iter().filter_map(|r| r.parse().ok()).collect();
                let refused = Role::ALL.into_iter().find(|r| !allowed.contains(r))?;
                Some((p.path, *allowed.first()?, refused))
            })
            .expect("a method that not every role may call")
    }

    /// Answers 200 with the principal's subject, or fails the test if the
    /// layer let a request through without one.
    async fn inner(req: http::Request<Body>) -> Result<http::Response<Body>, Infallible> {
        let mut resp = http::Response::new(Body::default());
        if let Some(p) = req.extensions().get::<Principal>() {
            resp.headers_mut()
                .insert("x-subject", p.subject.parse().unwrap());
            resp.headers_mut()
                .insert("x-tenant", p.tenant.parse().unwrap());
        }
        if req.extensions().get::<BearerToken>().is_some() {
            resp.headers_mut()
                .insert("x-token-kept", "1".parse().unwrap());
        }
        Ok(resp)
    }

    async fn call(layer: &AuthLayer, path: &str, auth: Option<&str>) -> http::Response<Body> {
        let mut req = http::Request::builder()
            .method("POST")
            .uri(format!("http://localhost{path}"))
            .header("content-type", "application/grpc");
        if let Some(auth) = auth {
            req = req.header("authorization", auth);
        }
        let svc = layer.layer(tower::service_fn(inner));
        svc.oneshot(req.body(Body::default()).unwrap())
            .await
            .unwrap()
    }

    /// The gRPC status of a refused call, with its ErrorInfo reason.
    fn refused(resp: &http::Response<Body>) -> (Code, String) {
        assert_eq!(
            resp.status(),
            http::StatusCode::OK,
            "gRPC errors are HTTP 200"
        );
        let status = Status::from_header_map(resp.headers()).expect("a grpc-status header");
        let info = status
            .get_error_details()
            .error_info()
            .cloned()
            .expect("ErrorInfo");
        assert_eq!(info.domain, "crm.auth");
        (status.code(), info.reason)
    }

    #[tokio::test]
    async fn missing_token_is_unauthenticated() {
        let f = fixture();
        let (path, _, _) = protected_method();
        let resp = call(&f.layer, path, None).await;
        assert_eq!(
            refused(&resp),
            (Code::Unauthenticated, "TOKEN_MISSING".into())
        );
    }

    #[tokio::test]
    async fn invalid_token_is_unauthenticated_and_not_echoed() {
        let f = fixture();
        let (path, _, _) = protected_method();
        for auth in ["Bearer not.a.jwt", "Basic dXNlcjpwYXNz", "Bearer "] {
            let resp = call(&f.layer, path, Some(auth)).await;
            assert_eq!(
                refused(&resp),
                (Code::Unauthenticated, "TOKEN_INVALID".into()),
                "{auth}"
            );
            let message = Status::from_header_map(resp.headers()).unwrap();
            assert!(!message.message().contains("not.a.jwt"));
        }
    }

    #[tokio::test]
    async fn expired_token_says_so() {
        let f = fixture();
        let (path, allowed, _) = protected_method();
        let now = jsonwebtoken::get_current_timestamp();
        let claims = serde_json::json!({
            "sub": "u1", "tenant": "t1", "roles": [allowed.as_str()],
            "iss": "crm", "aud": "crm", "exp": now - 3600,
        });
        let key = jsonwebtoken::EncodingKey::from_ed_pem(f.private_pem.as_bytes()).unwrap();
        let header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        let token = jsonwebtoken::encode(&header, &claims, &key).unwrap();
        let resp = call(&f.layer, path, Some(&format!("Bearer {token}"))).await;
        assert_eq!(
            refused(&resp),
            (Code::Unauthenticated, "TOKEN_EXPIRED".into())
        );
    }

    #[tokio::test]
    async fn role_not_allowed_is_permission_denied() {
        let f = fixture();
        let (path, _, refused_role) = protected_method();
        let token = f
            .minter
            .mint("u1", "t1", &[refused_role], Duration::from_secs(60))
            .unwrap();
        let resp = call(&f.layer, path, Some(&format!("Bearer {token}"))).await;
        assert_eq!(
            refused(&resp),
            (Code::PermissionDenied, "ROLE_NOT_ALLOWED".into())
        );
        assert!(resp.headers().get("x-subject").is_none());
    }

    #[tokio::test]
    async fn unknown_method_is_unimplemented_even_with_a_token() {
        let f = fixture();
        let token = f
            .minter
            .mint("u1", "t1", &USER_ROLES, Duration::from_secs(60))
            .unwrap();
        for path in [
            "/crm.leads.v1.LeadService/DropAllTables",
            "/other.Service/Call",
            "/",
        ] {
            let resp = call(&f.layer, path, Some(&format!("Bearer {token}"))).await;
            assert_eq!(
                refused(&resp),
                (Code::Unimplemented, "METHOD_UNKNOWN".into()),
                "{path}"
            );
        }
    }

    #[tokio::test]
    async fn health_and_reflection_are_public() {
        let f = fixture();
        for path in [
            "/grpc.health.v1.Health/Check",
            "/grpc.health.v1.Health/Watch",
            "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        ] {
            let resp = call(&f.layer, path, None).await;
            assert!(
                resp.headers().get("grpc-status").is_none(),
                "{path} was refused"
            );
        }
    }

    #[tokio::test]
    async fn allowed_call_reaches_the_service_with_the_principal() {
        let f = fixture();
        let (path, allowed, _) = protected_method();
        let token = f
            .minter
            .mint("user-7", "acme", &[allowed], Duration::from_secs(60))
            .unwrap();
        let resp = call(&f.layer, path, Some(&format!("bearer {token}"))).await;
        assert!(resp.headers().get("grpc-status").is_none());
        assert_eq!(resp.headers().get("x-subject").unwrap(), "user-7");
        assert_eq!(resp.headers().get("x-tenant").unwrap(), "acme");
        assert_eq!(resp.headers().get("x-token-kept").unwrap(), "1");
    }

    #[tokio::test]
    async fn two_authorization_headers_are_refused() {
        let f = fixture();
        let (path, allowed, _) = protected_method();
        let token = f
            .minter
            .mint("u1", "t1", &[allowed], Duration::from_secs(60))
            .unwrap();
        let req = http::Request::builder()
            .uri(format!("http://localhost{path}"))
            .header("authorization", format!("Bearer {token}"))
            .header("authorization", "Bearer other")
            .body(Body::default())
            .unwrap();
        let resp = f
            .layer
            .layer(tower::service_fn(inner))
            .oneshot(req)
            .await
            .unwrap();
        assert_eq!(
            refused(&resp),
            (Code::Unauthenticated, "TOKEN_INVALID".into())
        );
    }

    #[test]
    fn principal_helpers_read_the_extensions() {
        let mut req = tonic::Request::new(());
        let status = principal(&req).unwrap_err();
        assert_eq!(status.code(), Code::Unauthenticated);
        assert!(bearer_token(&req).is_none());

        req.extensions_mut().insert(Principal {
            subject: "u".into(),
            tenant: "t".into(),
            roles: vec![Role::Sales],
        });
        req.extensions_mut().insert(BearerToken("tok".into()));
        assert_eq!(principal(&req).unwrap().tenant, "t");
        assert_eq!(bearer_token(&req).unwrap().as_str(), "tok");
    }

    #[test]
    fn every_policy_role_is_a_known_role() {
        // A role in the contracts that this enum lacks would grant nothing.
        for p in crm_proto::METHOD_POLICIES {
            for r in p.roles {
                assert!(r.parse::<Role>().is_ok(), "{}: {r}", p.path);
            }
        }
    }

    #[test]
    fn the_layer_fits_a_tonic_server_and_routes() {
        fn tonic_server_service<S>(_: &S)
        where
            S: Service<http::Request<Body>, Response = http::Response<Body>>
                + Clone
                + Send
                + 'static,
            S::Future: Send,
            S::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send,
        {
        }
        let f = fixture();
        tonic_server_service(&f.layer.layer(tonic::service::Routes::default()));
        let _server = tonic::transport::Server::builder()
            .layer(f.layer.clone())
            .add_routes(tonic::service::Routes::default());
    }
}
