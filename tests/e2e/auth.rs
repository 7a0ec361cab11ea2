//! Tokens, roles and tenant isolation, through the gateway and directly.

use crm_auth::Role;
use crm_e2e::*;
use crm_proto::crm::leads::v1 as pb;
use serde_json::json;
use tonic::Code;

async fn list_code(suite: &TestSuite, token: Option<&str>) -> Code {
    match suite
        .leads_client(token)
        .list_leads(pb::ListLeadsRequest::default())
        .await
    {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

fn claims(aud: &str, exp: i64) -> serde_json::Value {
    json!({ "sub": "amy", "tenant": "acme", "roles": ["sales"], "iss": "crm", "aud": aud, "iat": unix_now(), "exp": exp })
}

#[tokio::test]
async fn bad_tokens_are_unauthenticated() {
    let suite = start().await;
    let pem = suite.signing_key_pem().to_vec();
    let good = sign_claims(&pem, &claims("crm", unix_now() + 600));
    assert_eq!(
        list_code(&suite, Some(&good)).await,
        Code::Ok,
        "the control token works"
    );

    let other_key = tempfile_key();
    let b64 = |v: &serde_json::Value| base64url(v.to_string().as_bytes());
    let payload = b64(&claims("crm", unix_now() + 600));
    let cases = [
        ("no token", None),
        ("malformed", Some("not-a-jwt".to_owned())),
        (
            "wrong signature",
            Some(sign_claims(&other_key, &claims("crm", unix_now() + 600))),
        ),
        (
            "expired",
            Some(sign_claims(&pem, &claims("crm", unix_now() - 3600))),
        ),
        (
            "wrong audience",
            Some(sign_claims(&pem, &claims("someone-else", unix_now() + 600))),
        ),
        (
            "alg none",
            Some(format!(
                "{}.{payload}.",
                b64(&json!({"alg": "none", "typ": "JWT"}))
            )),
        ),
        (
            "alg HS256",
            Some(format!(
                "{}.{payload}.{}",
                b64(&json!({"alg": "HS256", "typ": "JWT"})),
                base64url(b"forged")
            )),
        ),
        (
            "no tenant",
            Some(sign_claims(
                &pem,
                &json!({ "sub": "amy", "roles": ["sales"], "iss": "crm", "aud": "crm", "iat": unix_now(), "exp": unix_now() + 600 }),
            )),
        ),
    ];
    assert_all_unauthenticated(&suite, cases).await;
}

/// Through the gateway and directly, each token is refused.
async fn assert_all_unauthenticated(
    suite: &TestSuite,
    cases: impl IntoIterator<Item = (&str, Option<String>)>,
) {
    for (what, token) in cases {
        assert_eq!(
            list_code(suite, token.as_deref()).await,
            Code::Unauthenticated,
            "{what}"
        );
        // A service reached without the gateway is no softer.
        assert_eq!(
            direct_code(suite, token.as_deref()).await,
            Code::Unauthenticated,
            "{what}, direct"
        );
    }
}

async fn direct_code(suite: &TestSuite, token: Option<&str>) -> Code {
    match suite
        .leads_direct(token)
        .list_leads(pb::ListLeadsRequest::default())
        .await
    {
        Ok(_) => Code::Ok,
        Err(status) => status.code(),
    }
}

/// Finding 18: a token without `iat`, or living longer than
/// `auth.max_token_lifetime_seconds` (24 h by default), is refused.
#[tokio::test]
async fn finding_18_tokens_without_iat_or_too_long_lived_are_unauthenticated() {
    let suite = start().await;
    let pem = suite.signing_key_pem().to_vec();
    let day = 24 * 3600;
    let mut no_iat = claims("crm", unix_now() + 600);
    no_iat.as_object_mut().unwrap().remove("iat");
    assert_eq!(
        list_code(
            &suite,
            Some(&sign_claims(&pem, &claims("crm", unix_now() + day)))
        )
        .await,
        Code::Ok,
        "a day exactly is allowed"
    );
    assert_all_unauthenticated(
        &suite,
        [
            ("no iat", Some(sign_claims(&pem, &no_iat))),
            (
                "a day and a minute",
                Some(sign_claims(&pem, &claims("crm", unix_now() + day + 60))),
            ),
        ],
    )
    .await;

    let shorter = start_with(|s| s.auth.max_token_lifetime_seconds = 3600).await;
    let pem = shorter.signing_key_pem().to_vec();
    let two_hours = sign_claims(&pem, &claims("crm", unix_now() + 7200));
    assert_all_unauthenticated(&shorter, [("two hours, 1 h allowed", Some(two_hours))]).await;
}

/// Finding 18: a rotated key file is used without a restart (re-read on
/// every call here: `key_reload_interval_seconds = 0`), and the key it
/// replaced is no longer trusted, through the gateway and directly.
#[tokio::test]
async fn finding_18_rotated_key_files_are_reloaded_without_a_restart() {
    let dir = std::env::temp_dir().join(format!("crm-e2e-rotation-{}", std::process::id()));
    let (old_signing, old_public) = key_pair(&dir.join("old"));
    let (new_signing, new_public) = key_pair(&dir.join("new"));
    let trusted = dir.join("public.pem");
    std::fs::write(&trusted, &old_public).unwrap();
    let suite = start_with(|s| {
        s.auth.public_key_files = vec![trusted.clone()];
        s.auth.key_reload_interval_seconds = 0;
    })
    .await;
    let old_token = sign_claims(&old_signing, &claims("crm", unix_now() + 600));
    let new_token = sign_claims(&new_signing, &claims("crm", unix_now() + 600));
    assert_eq!(list_code(&suite, Some(&old_token)).await, Code::Ok);
    assert_all_unauthenticated(&suite, [("not yet rotated", Some(new_token.clone()))]).await;

    // As a secret volume does it: a new file renamed into place.
    let next = dir.join("public.pem.next");
    std::fs::write(&next, &new_public).unwrap();
    std::fs::rename(&next, &trusted).unwrap();
    assert_eq!(list_code(&suite, Some(&new_token)).await, Code::Ok);
    assert_eq!(direct_code(&suite, Some(&new_token)).await, Code::Ok);
    assert_all_unauthenticated(&suite, [("rotated out", Some(old_token))]).await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// A fresh Ed25519 pair in `dir`: (private PEM, public PEM).
fn key_pair(dir: &std::path::Path) -> (Vec<u8>, Vec<u8>) {
    let keys = crm_auth::DevKeys::load_or_create(dir).unwrap();
    let signing = std::fs::read(keys.signing_key_path()).unwrap();
    (signing, keys.public_key_pem())
}

fn base64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A second, unrelated Ed25519 key.
fn tempfile_key() -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("crm-other-key-{}", std::process::id()));
    let keys = crm_auth::DevKeys::load_or_create(&dir).unwrap();
    let pem = std::fs::read(dir.join("keys/dev-signing-key.pem")).unwrap();
    drop(keys);
    let _ = std::fs::remove_dir_all(&dir);
    pem
}

#[tokio::test]
async fn a_role_the_method_does_not_allow_is_permission_denied() {
    let suite = start().await;
    let sales = suite.token("acme", "amy", &[Role::Sales]);
    let err = suite
        .leads_client(Some(&sales))
        .delete_lead(pb::DeleteLeadRequest {
            id: "x".into(),
            etag: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    let service = suite.token("acme", "sam", &[Role::Service]);
    assert_eq!(
        list_code(&suite, Some(&service)).await,
        Code::PermissionDenied
    );
}

#[tokio::test]
async fn another_tenants_lead_is_not_found_everywhere() {
    let suite = start().await;
    let acme = suite.token("acme", "boss", &[Role::Manager, Role::Admin]);
    let globex = suite.token("globex", "boss", &[Role::Manager, Role::Admin, Role::Sales]);
    let created = suite
        .leads_client(Some(&acme))
        .create_lead(pb::CreateLeadRequest {
            lead: Some(lead("ACME", "+86 138 0000 0001")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .lead
        .unwrap();
    let id = created.id.clone();
    let mut other = suite.leads_client(Some(&globex));
    let codes = [
        (
            "get",
            other
                .get_lead(pb::GetLeadRequest { id: id.clone() })
                .await
                .err(),
        ),
        (
            "update",
            other
                .update_lead(pb::UpdateLeadRequest {
                    lead: Some(pb::Lead {
                        id: id.clone(),
                        notes: "x".into(),
                        ..Default::default()
                    }),
                    update_mask: None,
                })
                .await
                .err(),
        ),
        (
            "delete",
            other
                .delete_lead(pb::DeleteLeadRequest {
                    id: id.clone(),
                    etag: String::new(),
                })
                .await
                .err(),
        ),
        (
            "log interaction",
            other
                .log_interaction(pb::LogInteractionRequest {
                    lead_id: id.clone(),
                    interaction: Some(pb::Interaction {
                        kind: pb::InteractionKind::Meeting as i32,
                        ..Default::default()
                    }),
                    ..Default::default()
                })
                .await
                .err(),
        ),
        (
            "list interactions",
            other
                .list_interactions(pb::ListInteractionsRequest {
                    lead_id: id.clone(),
                    ..Default::default()
                })
                .await
                .err(),
        ),
        (
            "assign",
            other
                .assign_lead(pb::AssignLeadRequest {
                    id: id.clone(),
                    owner_id: "x".into(),
                    ..Default::default()
                })
                .await
                .err(),
        ),
        (
            "claim",
            other
                .claim_lead(pb::ClaimLeadRequest {
                    id: id.clone(),
                    ..Default::default()
                })
                .await
                .err(),
        ),
        (
            "release",
            other
                .release_lead(pb::ReleaseLeadRequest {
                    id: id.clone(),
                    ..Default::default()
                })
                .await
                .err(),
        ),
        (
            "disqualify",
            other
                .disqualify_lead(pb::DisqualifyLeadRequest {
                    id: id.clone(),
                    reason: "r".into(),
                    ..Default::default()
                })
                .await
                .err(),
        ),
    ];
    let missing = other
        .get_lead(pb::GetLeadRequest {
            id: "0190a000-0000-7000-8000-000000000000".into(),
        })
        .await
        .unwrap_err();
    for (what, err) in codes {
        let err = err.unwrap_or_else(|| panic!("{what} of another tenant's lead succeeded"));
        assert_eq!(err.code(), Code::NotFound, "{what}: {err:?}");
        assert_eq!(
            err.code(),
            missing.code(),
            "{what}: the same as a missing lead"
        );
    }
    let listed = other
        .list_leads(pb::ListLeadsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(listed.leads.is_empty());
    // And the lead is untouched.
    let still = suite
        .leads_client(Some(&acme))
        .get_lead(pb::GetLeadRequest { id })
        .await
        .unwrap()
        .into_inner()
        .lead
        .unwrap();
    assert_eq!(still.etag, created.etag);
}

#[tokio::test]
async fn health_is_public_and_serving() {
    let suite = start().await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(suite.gateway_channel());
    let reply = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        reply.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
}

/// A service token signed with `pem`, as the leads service makes for a
/// conversion: role `internal`, the service audience, naming in `act` the
/// user it converts for, if any.
pub(crate) fn service_token_signed(
    pem: &[u8],
    tenant: &str,
    acting: Option<(&str, &[&str])>,
) -> String {
    let mut claims = json!({
        "sub": "system:leads-converter", "tenant": tenant, "roles": ["internal"],
        "iss": "crm", "aud": "crm-internal", "iat": unix_now(), "exp": unix_now() + 600,
    });
    if let Some((user, roles)) = acting {
        claims["act"] = json!({ "sub": user, "roles": roles });
    }
    sign_claims(pem, &claims)
}

/// [`service_token_signed`] with the suite's development key, which is the
/// service key in development.
pub(crate) fn service_token(
    suite: &TestSuite,
    tenant: &str,
    acting: Option<(&str, &[&str])>,
) -> String {
    service_token_signed(suite.signing_key_pem(), tenant, acting)
}

/// The opportunities service reached directly, as `token`.
fn opportunities_direct(suite: &TestSuite, token: &str) -> OpportunitiesClient {
    OpportunitiesClient::new(suite.direct("opportunities", Some(token)))
}

/// Finding 4: the service key signs service tokens and nothing else, a
/// service token is the internal role alone and is refused by every
/// method but the internal ones, and no user token carries that role.
/// Before the fix the service key (among the verification keys, as the
/// README asked) signed an admin token for any tenant.
#[tokio::test]
async fn finding_4_the_service_identity_is_not_an_unrestricted_issuer() {
    let dir = std::env::temp_dir().join(format!("crm-service-key-{}", std::process::id()));
    let (service_pem, public_pem) = key_pair(&dir);
    let public_path = dir.join("service-public.pem");
    std::fs::write(&public_path, &public_pem).unwrap();
    let signing_path = crm_auth::DevKeys::load_or_create(&dir)
        .unwrap()
        .signing_key_path();
    let suite = start_with(|settings| {
        settings.auth.service_key_file = Some(signing_path);
        settings.auth.public_key_files = vec![public_path];
    })
    .await;
    let pem = suite.signing_key_pem().to_vec();

    // The service key cannot sign for a user's audience, whatever the role.
    let admin = json!({ "sub": "x", "tenant": "globex", "roles": ["admin"], "iss": "crm", "aud": "crm", "iat": unix_now(), "exp": unix_now() + 600 });
    let forged = sign_claims(&service_pem, &admin);
    assert_eq!(
        list_code(&suite, Some(&forged)).await,
        Code::Unauthenticated
    );
    assert_eq!(
        direct_code(&suite, Some(&forged)).await,
        Code::Unauthenticated
    );

    // A service token with another role, or signed by another key, is refused.
    let mut admin_service = admin.clone();
    admin_service["aud"] = json!("crm-internal");
    admin_service["roles"] = json!(["internal", "admin"]);
    let both = sign_claims(&service_pem, &admin_service);
    let by_a_user_key = service_token_signed(&pem, "acme", None);
    for token in [&both, &by_a_user_key] {
        assert_eq!(list_code(&suite, Some(token)).await, Code::Unauthenticated);
        assert_eq!(
            direct_code(&suite, Some(token)).await,
            Code::Unauthenticated
        );
    }

    // A real service token only reaches the internal method.
    let service = service_token_signed(&service_pem, "acme", None);
    assert_eq!(
        list_code(&suite, Some(&service)).await,
        Code::PermissionDenied
    );
    assert_eq!(
        direct_code(&suite, Some(&service)).await,
        Code::PermissionDenied
    );

    // A user token never carries the internal role.
    let mut internal_user = claims("crm", unix_now() + 600);
    internal_user["roles"] = json!(["sales", "internal"]);
    let internal_user = sign_claims(&pem, &internal_user);
    assert_eq!(
        list_code(&suite, Some(&internal_user)).await,
        Code::Unauthenticated
    );
    assert_eq!(
        direct_code(&suite, Some(&internal_user)).await,
        Code::Unauthenticated
    );

    // With the service key apart, a user's conversion still goes through.
    let amy = suite.token("acme", "amy", &[Role::Sales]);
    let mut leads = suite.leads_client(Some(&amy));
    let created = created_lead(&mut leads, lead("Umbrella", "+86 138 0000 0004")).await;
    let converted = leads
        .convert_lead(pb::ConvertLeadRequest {
            id: created.id,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .lead
        .unwrap();
    assert!(!converted.opportunity_id.is_empty());
    drop(suite);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Finding 2: only the leads service calls `opportunities.ConvertLead`.
/// Before the fix bob converted amy's lead into his own opportunity, and a
/// third rep got the existing opportunity back without an access check.
#[tokio::test]
async fn finding_2_only_the_leads_service_converts_a_lead() {
    use crm_proto::crm::opportunities::v1 as opp;
    let suite = start().await;
    let amy = suite.token("acme", "amy", &[Role::Sales]);
    let bob = suite.token("acme", "bob", &[Role::Sales]);
    let created = suite
        .leads_client(Some(&amy))
        .create_lead(pb::CreateLeadRequest {
            lead: Some(lead("Initech", "+86 138 0000 0003")),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .lead
        .unwrap();
    let hijack = opp::ConvertLeadRequest {
        lead_id: created.id.clone(),
        company: "Initech".into(),
        owner_id: "bob".into(),
        ..Default::default()
    };
    // No user calls it, through the gateway or directly.
    for mut client in [
        suite.opportunities_client(Some(&bob)),
        opportunities_direct(&suite, &bob),
    ] {
        let err = client.convert_lead(hijack.clone()).await.unwrap_err();
        assert_eq!(err.code(), Code::PermissionDenied);
        assert_eq!(reason(&err), "ROLE_NOT_ALLOWED");
    }

    // Amy's conversion makes her opportunity, which she opens.
    let converted = suite
        .leads_client(Some(&amy))
        .convert_lead(pb::ConvertLeadRequest {
            id: created.id.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .lead
        .unwrap();
    let opportunity = suite
        .opportunities_client(Some(&amy))
        .get_opportunity(opp::GetOpportunityRequest {
            id: converted.opportunity_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .opportunity
        .unwrap();
    assert_eq!(opportunity.team.unwrap().account_manager_id, "amy");

    // The existing opportunity goes back only to whom may see it.
    let carl = suite.token("acme", "carl", &[Role::Sales]);
    let by_carl = suite
        .leads_client(Some(&carl))
        .convert_lead(pb::ConvertLeadRequest {
            id: created.id.clone(),
            ..Default::default()
        })
        .await;
    assert!(by_carl.is_err(), "not carl's lead");
    let for_carl = service_token(&suite, "acme", Some(("carl", &["sales"])));
    let err = opportunities_direct(&suite, &for_carl)
        .convert_lead(hijack.clone())
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied);
    assert_eq!(reason(&err), "NOT_ON_TEAM");
    let for_amy = service_token(&suite, "acme", Some(("amy", &["sales"])));
    let again = opportunities_direct(&suite, &for_amy)
        .convert_lead(hijack)
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.opportunity.unwrap().id, converted.opportunity_id);
}
