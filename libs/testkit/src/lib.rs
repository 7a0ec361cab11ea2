//! Generic helpers for tests of any service: a fresh PostgreSQL database
//! per test, clients that send a bearer token, waiting on a condition with
//! a deadline, reading the google.rpc details of an error, and signing
//! arbitrary claims. Nothing here knows a service; the suite harness is
//! `crm::testing`.

use std::{
    future::Future,
    time::{Duration, Instant},
};

use tonic::metadata::{Ascii, MetadataValue};
use tonic_types::StatusExt;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The PostgreSQL server tests run against, from `CRM_TEST_DATABASE_URL`;
/// `None` means SQLite.
pub fn test_database_url() -> Option<String> {
    std::env::var("CRM_TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty())
}

/// Adds `authorization: Bearer <token>` (and, for event streams, the
/// `x-crm-source` of the stream) to each request.
#[derive(Clone, Default)]
pub struct Bearer {
    token: Option<MetadataValue<Ascii>>,
    source: Option<MetadataValue<Ascii>>,
}

impl Bearer {
    pub fn new(token: Option<&str>) -> Self {
        Bearer {
            token: token.and_then(|t| format!("Bearer {t}").parse().ok()),
            source: None,
        }
    }

    /// The same, reading the event stream of `source`.
    pub fn with_source(mut self, source: &str) -> Self {
        self.source = source.parse().ok();
        self
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.token {
            req.metadata_mut().insert("authorization", value.clone());
        }
        if let Some(source) = &self.source {
            req.metadata_mut().insert("x-crm-source", source.clone());
        }
        Ok(req)
    }
}

/// The `ErrorInfo` reason of an error, or empty.
pub fn reason(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .error_info()
        .map(|i| i.reason.clone())
        .unwrap_or_default()
}

/// The fields a `BadRequest` names, in order.
pub fn violated_fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_error_details()
        .bad_request()
        .map(|b| b.field_violations.iter().map(|v| v.field.clone()).collect())
        .unwrap_or_default()
}

/// The subjects a `PreconditionFailure` lists, in order.
pub fn unmet_preconditions(status: &tonic::Status) -> Vec<String> {
    status
        .get_error_details()
        .precondition_failure()
        .map(|p| p.violations.iter().map(|v| v.subject.clone()).collect())
        .unwrap_or_default()
}

/// A PostgreSQL database made for one test and dropped after it.
pub struct TestDatabase {
    admin_url: String,
    name: String,
}

impl TestDatabase {
    /// A fresh database on the server at `admin_url`, and its URL.
    pub async fn create(admin_url: &str) -> Result<(Self, String), BoxError> {
        let name = format!("crm_test_{}", uuid::Uuid::now_v7().simple());
        let admin = crm_store::connect(
            &crm_store::Location {
                url: admin_url.to_owned(),
                schema: None,
            },
            1,
        )
        .await?;
        use crm_store::ConnectionTrait;
        admin
            .execute_unprepared(&format!("CREATE DATABASE {name}"))
            .await?;
        admin.close().await?;
        let (base, query) = admin_url
            .split_once('?')
            .map_or((admin_url, ""), |(b, q)| (b, q));
        let root = base.rsplit_once('/').map_or(base, |(root, _)| root);
        let url = if query.is_empty() {
            format!("{root}/{name}")
        } else {
            format!("{root}/{name}?{query}")
        };
        Ok((
            TestDatabase {
                admin_url: admin_url.to_owned(),
                name,
            },
            url,
        ))
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let (url, name) = (self.admin_url.clone(), self.name.clone());
        // Drop runs outside async code; a small runtime of its own does the work.
        let done = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                use crm_store::ConnectionTrait;
                if let Ok(admin) =
                    crm_store::connect(&crm_store::Location { url, schema: None }, 1).await
                {
                    let _ = admin
                        .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                    let _ = admin.close().await;
                }
            });
        });
        let _ = done.join();
    }
}

/// Waits until `check` yields `Some`, polling every 20 ms, failing after
/// `timeout`: a condition with a deadline, never a fixed sleep.
pub async fn eventually<T, F, Fut>(timeout: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    let mut poll = tokio::time::interval(Duration::from_millis(20));
    loop {
        poll.tick().await;
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
    }
}

/// Signs arbitrary claims with an Ed25519 PEM key: for tests of tokens the
/// minter would never make (expired, wrong audience, missing tenant).
#[allow(clippy::expect_used)]
pub fn sign_claims(pem: &[u8], claims: &serde_json::Value) -> String {
    let key = jsonwebtoken::EncodingKey::from_ed_pem(pem).expect("Ed25519 PEM key");
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA),
        claims,
        &key,
    )
    .expect("sign claims")
}

/// Seconds since the epoch, for claims.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(0))
}
