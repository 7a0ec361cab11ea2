use std::path::PathBuf;

use serde::{Deserialize, Deserializer, Serialize};

use crate::AuthError;

/// The only algorithms that may ever be configured (RFC 8725 §3.1: an
/// allow-list of asymmetric algorithms; no `none`, no shared secrets).
pub(crate) const PERMITTED_ALGORITHMS: [&str; 3] = ["EdDSA", "ES256", "RS256"];

/// How tokens are verified: the `[auth]` section of a process's settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// The required `iss`.
    pub issuer: String,
    /// The audience that `aud` must contain.
    pub audience: String,
    /// The audience of service tokens, which the suite's services mint for
    /// each other (`aud` exactly this, role `internal` only, signed with
    /// the service key): never a user's audience.
    pub service_audience: String,
    /// Accepted `alg` values: a subset of EdDSA, ES256, RS256.
    #[serde(deserialize_with = "permitted_algorithms")]
    pub algorithms: Vec<String>,
    /// PEM public keys (Ed25519, P-256 or RSA), tried for tokens whose `kid`
    /// matches no key.
    pub public_key_files: Vec<PathBuf>,
    /// A JWKS document; its keys are matched by `kid`.
    pub jwks_file: Option<PathBuf>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway_seconds: u64,
    /// The services' own identity: an Ed25519 private key (PKCS#8 PEM) they
    /// sign tokens with for work they do by themselves (sweepers, event
    /// consumers, conversion). Its public half is trusted for service tokens
    /// only: a token signed with it for a user's audience is refused.
    /// Unset in development: the development key serves.
    pub service_key_file: Option<PathBuf>,
    /// Development mode: trust (and sign service tokens with) the key the
    /// process keeps in its data directory. Unset: on only for everything in
    /// one process listening on loopback with no keys configured (the binary
    /// decides); `false` makes a missing key a start-up error.
    pub development: Option<bool>,
    /// The longest lifetime (`exp - iat`) a token may have.
    pub max_token_lifetime_seconds: u64,
    /// Key files are re-read at most this often and reloaded when their
    /// content changed (rotation without a restart); 0 checks on every call.
    pub key_reload_interval_seconds: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            issuer: "crm".into(),
            audience: "crm".into(),
            service_audience: "crm-internal".into(),
            algorithms: PERMITTED_ALGORITHMS
                .iter()
                .map(|a| (*a).to_owned())
                .collect(),
            public_key_files: Vec::new(),
            jwks_file: None,
            leeway_seconds: 30,
            service_key_file: None,
            development: None,
            max_token_lifetime_seconds: 24 * 3600,
            key_reload_interval_seconds: 30,
        }
    }
}

impl AuthConfig {
    /// Checks what deserialisation cannot: a config built in code, too.
    pub(crate) fn validate(&self) -> Result<(), AuthError> {
        check_algorithms(&self.algorithms).map_err(AuthError::Config)?;
        if self.issuer.is_empty() {
            return Err(AuthError::Config("auth.issuer is empty".into()));
        }
        if self.audience.is_empty() {
            return Err(AuthError::Config("auth.audience is empty".into()));
        }
        if self.service_audience.is_empty() || self.service_audience == self.audience {
            return Err(AuthError::Config(
                "auth.service_audience must be set and differ from auth.audience".into(),
            ));
        }
        if self.max_token_lifetime_seconds == 0 {
            return Err(AuthError::Config(
                "auth.max_token_lifetime_seconds is 0: no token could be accepted".into(),
            ));
        }
        Ok(())
    }
}

fn check_algorithms(algorithms: &[String]) -> Result<(), String> {
    if algorithms.is_empty() {
        return Err("auth.algorithms is empty: no token could be accepted".into());
    }
    for alg in algorithms {
        if !PERMITTED_ALGORITHMS.contains(&alg.as_str()) {
            return Err(format!(
                "algorithm {alg:?} is not permitted: use one or more of EdDSA, ES256, RS256"
            ));
        }
    }
    Ok(())
}

// Refused while the configuration is read, so that start-up stops with the
// key's name (`auth.algorithms`).
fn permitted_algorithms<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let algorithms = Vec::<String>::deserialize(d)?;
    check_algorithms(&algorithms).map_err(serde::de::Error::custom)?;
    Ok(algorithms)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn defaults_allow_only_asymmetric_algorithms() {
        let cfg = AuthConfig::default();
        assert_eq!(cfg.algorithms, ["EdDSA", "ES256", "RS256"]);
        assert_eq!(cfg.leeway_seconds, 30);
        assert_eq!(cfg.max_token_lifetime_seconds, 86_400);
        assert_eq!(cfg.development, None, "decided by the binary unless set");
        assert!(cfg.validate().is_ok());
    }

    #[test]
    fn symmetric_or_none_algorithms_are_refused_when_read() {
        for alg in ["HS256", "none", "RS384", "eddsa"] {
            let json = format!(r#"{{"algorithms": ["EdDSA", "{alg}"]}}"#);
            let err = serde_json::from_str::<AuthConfig>(&json).unwrap_err();
            assert!(err.to_string().contains("not permitted"), "{alg}: {err}");
        }
        assert!(serde_json::from_str::<AuthConfig>(r#"{"algorithms": []}"#).is_err());
    }

    #[test]
    fn symmetric_algorithms_are_refused_in_code_built_config() {
        let cfg = AuthConfig {
            algorithms: vec!["HS256".into()],
            ..AuthConfig::default()
        };
        assert!(matches!(cfg.validate(), Err(AuthError::Config(_))));
    }

    #[derive(Debug, Default, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Settings {
        auth: AuthConfig,
    }

    fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn loads_through_crm_config() {
        let s: Settings = crm_config::load_from(
            None,
            vars(&[
                ("CRM__AUTH__ALGORITHMS", "EdDSA,ES256"),
                ("CRM__AUTH__PUBLIC_KEY_FILES", "/keys/a.pem, /keys/b.pem"),
                ("CRM__AUTH__JWKS_FILE", "/keys/jwks.json"),
                ("CRM__AUTH__LEEWAY_SECONDS", "10"),
                ("CRM__AUTH__DEVELOPMENT", "false"),
            ]),
        )
        .unwrap();
        assert_eq!(s.auth.algorithms, ["EdDSA", "ES256"]);
        assert_eq!(s.auth.public_key_files.len(), 2);
        assert_eq!(s.auth.jwks_file, Some(PathBuf::from("/keys/jwks.json")));
        assert_eq!(s.auth.leeway_seconds, 10);
        assert_eq!(s.auth.development, Some(false));
        assert_eq!(s.auth.issuer, "crm");
    }

    #[test]
    fn a_forbidden_algorithm_stops_loading_naming_the_key() {
        let err = crm_config::load_from::<Settings>(
            None,
            vars(&[("CRM__AUTH__ALGORITHMS", "EdDSA,HS256")]),
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(message.contains("auth.algorithms"), "{message}");
        assert!(message.contains("HS256"), "{message}");
    }

    #[test]
    fn unknown_keys_are_refused() {
        assert!(serde_json::from_str::<AuthConfig>(r#"{"isuer": "x"}"#).is_err());
    }
}
