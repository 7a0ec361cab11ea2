use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, PublicKeyUse, ThumbprintHash};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::files::{self, Owner};
use crate::lru::Lru;
use crate::{Acting, AuthConfig, AuthError, Principal, Role};

/// Tokens longer than this are refused before any parsing or crypto work.
const MAX_TOKEN_LEN: usize = 8 * 1024;
/// RFC 7518 §3.3: RSA keys of 2048 bits or more.
const MIN_RSA_BITS: usize = 2048;
/// Skew beyond this is a misconfiguration, not clock drift.
const MAX_LEEWAY_SECONDS: u64 = 600;
/// Length of a key id made by [`key_id`].
const KEY_ID_LEN: usize = 16;

/// Verifies bearer JWTs after RFC 8725 and turns them into [`Principal`]s.
///
/// Build it once at start-up and share it (`Arc<Verifier>`): keys are read
/// and checked here, so a bad key stops start-up instead of failing calls.
/// Key files are re-read at most every `auth.key_reload_interval_seconds`
/// and reloaded when they changed, so keys rotate without a restart.
pub struct Verifier {
    keys: RwLock<Arc<Vec<VerifyingKey>>>,
    source: KeySource,
    allowed: Vec<Algorithm>,
    issuer: String,
    audience: String,
    service_audience: String,
    leeway: u64,
    max_lifetime: u64,
    /// Tokens already verified, until they expire: a signature check costs
    /// far more than the call it guards, and a client sends the same token
    /// on every call. Bounded: the least recently used goes first.
    verified: Mutex<Lru<Verified>>,
    /// Bumped (under the cache's lock) whenever the keys change, so that a
    /// verification made with the keys before cannot enter the cache after.
    generation: AtomicU64,
    /// Full verifications made, for tests of the cache.
    #[cfg(test)]
    full_checks: std::sync::atomic::AtomicUsize,
}

/// Where the keys come from, and what was read last time.
struct KeySource {
    files: Vec<PathBuf>,
    jwks: Option<PathBuf>,
    /// Keys given in memory (the development key): never reloaded.
    extra: Vec<Vec<u8>>,
    /// Fingerprints of the service keys: what they sign is a service token
    /// or nothing, and service tokens need one of them. Empty (development):
    /// any key may sign either.
    service_kids: Vec<String>,
    allowed: Vec<Algorithm>,
    base: Validation,
    reload_every: u64,
    /// Unix second from which the files may be read again.
    next_check: AtomicU64,
    /// The files' content the current keys were made from (PEM files in
    /// order, then the JWKS document).
    loaded: Mutex<Vec<Vec<u8>>>,
}

/// A verified token's principal and the last second it is valid.
struct Verified {
    principal: Principal,
    acting: Option<Acting>,
    valid_until: u64,
}

/// Verified tokens kept at most.
const VERIFIED_CAPACITY: usize = 10_000;

struct VerifyingKey {
    /// From the JWKS document, or the fingerprint of a PEM key.
    kid: Option<String>,
    /// JWKS keys are used only when the token names them by `kid`, or names
    /// no key at all; PEM keys are also tried for an unknown `kid`.
    from_jwks: bool,
    alg: Algorithm,
    key: DecodingKey,
    /// One of the service keys: it signs service tokens only.
    service: bool,
    /// Allows exactly `alg`: a token can never pick another algorithm for
    /// this key (RFC 8725 §2.1, the HS256-with-a-public-key confusion).
    validation: Validation,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field("keys", &self.current_keys().len())
            .field("allowed", &self.allowed)
            .field("issuer", &self.issuer)
            .finish()
    }
}

/// Only what is needed to choose the key; jsonwebtoken parses the rest.
#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    kid: Option<String>,
    typ: Option<String>,
    crit: Option<Value>,
}

impl Verifier {
    /// Loads the keys of `cfg` (PEM files and the JWKS document) and
    /// `extra_public_keys_pem` (e.g. the development key of `crm serve`).
    /// Fails if any configured key is unreadable or not acceptable, or if
    /// there is no key at all.
    pub fn new(cfg: &AuthConfig, extra_public_keys_pem: &[Vec<u8>]) -> Result<Self, AuthError> {
        Self::with_service_keys(cfg, extra_public_keys_pem, &[])
    }

    /// [`Verifier::new`], also trusting `service_public_keys_pem` (the
    /// services' own identity, `auth.service_key_file`) for service tokens
    /// and for nothing else: a token they sign for a user's audience is
    /// refused, and so is a service token signed by any other key.
    pub fn with_service_keys(
        cfg: &AuthConfig,
        extra_public_keys_pem: &[Vec<u8>],
        service_public_keys_pem: &[Vec<u8>],
    ) -> Result<Self, AuthError> {
        cfg.validate()?;
        if cfg.leeway_seconds > MAX_LEEWAY_SECONDS {
            return Err(AuthError::Config(format!(
                "auth.leeway_seconds is {}; at most {MAX_LEEWAY_SECONDS} is allowed",
                cfg.leeway_seconds
            )));
        }
        let mut allowed = Vec::new();
        for name in &cfg.algorithms {
            let alg = Algorithm::from_str(name)
                .map_err(|_| AuthError::Config(format!("unknown algorithm {name:?}")))?;
            if !allowed.contains(&alg) {
                allowed.push(alg);
            }
        }

        let mut base = Validation::new(Algorithm::EdDSA);
        base.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        base.set_issuer(&[&cfg.issuer]);
        // Either audience; `principal_from` tells which rules then apply.
        base.set_audience(&[&cfg.audience, &cfg.service_audience]);
        base.leeway = cfg.leeway_seconds;
        base.validate_nbf = true;

        let service_kids = service_public_keys_pem
            .iter()
            .map(|pem| key_from_pem(pem).and_then(|(_, key)| key_id(&key)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|reason| AuthError::Key(format!("the service key {reason}")))?;
        let source = KeySource {
            files: cfg.public_key_files.clone(),
            jwks: cfg.jwks_file.clone(),
            extra: extra_public_keys_pem
                .iter()
                .chain(service_public_keys_pem)
                .cloned()
                .collect(),
            service_kids,
            allowed: allowed.clone(),
            base,
            reload_every: cfg.key_reload_interval_seconds,
            next_check: AtomicU64::new(0),
            loaded: Mutex::new(Vec::new()),
        };
        let contents = source.read()?;
        let keys = source.parse(&contents)?;
        *source.loaded.lock().unwrap_or_else(PoisonError::into_inner) = contents;
        Ok(Verifier {
            keys: RwLock::new(Arc::new(keys)),
            source,
            allowed,
            issuer: cfg.issuer.clone(),
            audience: cfg.audience.clone(),
            service_audience: cfg.service_audience.clone(),
            leeway: cfg.leeway_seconds,
            max_lifetime: cfg.max_token_lifetime_seconds,
            verified: Mutex::new(Lru::new(VERIFIED_CAPACITY)),
            generation: AtomicU64::new(0),
            #[cfg(test)]
            full_checks: std::sync::atomic::AtomicUsize::new(0),
        })
    }

    /// Verifies `token` (without the `Bearer ` prefix) and returns its
    /// principal. Unknown role names are dropped: fewer rights is safe.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        Ok(self.verify_acting(token)?.0)
    }

    /// [`Verifier::verify`], with the user a service token acts for.
    pub fn verify_acting(&self, token: &str) -> Result<(Principal, Option<Acting>), AuthError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_err(|_| AuthError::Clock)?
            .as_secs();
        self.verify_at(token, now)
    }

    /// [`Verifier::verify`] at `now` (Unix seconds): from the cache while the
    /// token is still valid (its `exp` plus the leeway, as on first sight),
    /// otherwise checked in full.
    fn verify_at(&self, token: &str, now: u64) -> Result<(Principal, Option<Acting>), AuthError> {
        self.reload_if_changed(now);
        if let Ok(mut cache) = self.verified.lock() {
            let hit = cache
                .get(token)
                .map(|hit| (hit.valid_until, (hit.principal.clone(), hit.acting.clone())));
            match hit {
                Some((valid_until, verified)) if now <= valid_until => return Ok(verified),
                Some(_) => cache.remove(token),
                None => {}
            }
        }
        let generation = self.generation.load(Ordering::Acquire);
        let (principal, acting, exp) = self.verify_uncached(token, now)?;
        if let Ok(mut cache) = self.verified.lock()
            && self.generation.load(Ordering::Acquire) == generation
        {
            let valid_until = exp.saturating_add(self.leeway);
            cache.insert(
                token,
                Verified {
                    principal: principal.clone(),
                    acting: acting.clone(),
                    valid_until,
                },
            );
        }
        Ok((principal, acting))
    }

    fn current_keys(&self) -> Arc<Vec<VerifyingKey>> {
        self.keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Re-reads the key files when due (one caller at a time) and swaps in
    /// their keys if they changed. Keys that do not load are logged and the
    /// previous ones kept: a half-written file must not lock everyone out.
    fn reload_if_changed(&self, now: u64) {
        let source = &self.source;
        if source.files.is_empty() && source.jwks.is_none() {
            return;
        }
        let due = source.next_check.load(Ordering::Acquire);
        if now < due
            || source
                .next_check
                .compare_exchange(
                    due,
                    now.saturating_add(source.reload_every),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_err()
        {
            return;
        }
        let contents = match source.read() {
            Ok(contents) => contents,
            Err(error) => {
                tracing::error!(%error, "cannot re-read the token verification keys; keeping the loaded ones");
                return;
            }
        };
        let mut loaded = source.loaded.lock().unwrap_or_else(PoisonError::into_inner);
        if *loaded == contents {
            return;
        }
        match source.parse(&contents) {
            Ok(keys) => {
                let count = keys.len();
                // A token verified with a key that is gone must not stay
                // accepted: the cache empties as the keys change.
                let mut cache = self.verified.lock().unwrap_or_else(PoisonError::into_inner);
                *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
                self.generation.fetch_add(1, Ordering::AcqRel);
                cache.clear();
                drop(cache);
                *loaded = contents;
                tracing::info!(keys = count, "token verification keys reloaded");
            }
            Err(error) => {
                tracing::error!(%error, "the token verification keys changed but do not load; keeping the previous ones");
            }
        }
    }

    fn verify_uncached(
        &self,
        token: &str,
        now: u64,
    ) -> Result<(Principal, Option<Acting>, u64), AuthError> {
        #[cfg(test)]
        self.full_checks
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::Malformed);
        }
        let header = raw_header(token)?;
        // RFC 7515 §4.1.11: an extension we do not understand must not be
        // ignored. We understand none.
        if header.crit.is_some() {
            return Err(AuthError::Malformed);
        }
        // RFC 8725 §3.11: an ID token or any other JWT is not an access token.
        if let Some(typ) = &header.typ
            && !is_access_token_type(typ)
        {
            return Err(AuthError::WrongType);
        }
        let alg = Algorithm::from_str(&header.alg)
            .ok()
            .filter(|a| self.allowed.contains(a))
            .ok_or_else(|| AuthError::AlgorithmNotAllowed(header.alg.chars().take(16).collect()))?;

        let keys = self.current_keys();
        let candidates = candidates(&keys, alg, header.kid.as_deref())?;
        let mut refused = AuthError::UnknownKey;
        for key in candidates {
            match jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, &key.validation) {
                Ok(data) => {
                    // `exp` is required and was checked by the validation.
                    let exp = data
                        .claims
                        .get("exp")
                        .and_then(Value::as_u64)
                        .ok_or_else(|| AuthError::MissingClaim("exp".into()))?;
                    self.check_lifetime(&data.claims, exp, now)?;
                    let (principal, acting) = self.principal_from(data.claims, key.service)?;
                    return Ok((principal, acting, exp));
                }
                // The signature does not match this key: try the next one.
                Err(e) if is_key_mismatch(e.kind()) => refused = AuthError::BadSignature,
                // The signature matched; the claims are what is wrong.
                Err(e) => return Err(map_error(e.kind())),
            }
        }
        Err(refused)
    }

    /// `iat` is required, not in the future, and at most the configured
    /// lifetime before `exp`: a stolen long-lived token is a standing key.
    fn check_lifetime(
        &self,
        claims: &Map<String, Value>,
        exp: u64,
        now: u64,
    ) -> Result<(), AuthError> {
        let iat = match claims.get("iat") {
            None => return Err(AuthError::MissingClaim("iat".into())),
            Some(v) => v
                .as_u64()
                .ok_or_else(|| AuthError::InvalidClaim("iat".into()))?,
        };
        if iat > now.saturating_add(self.leeway) {
            return Err(AuthError::InvalidClaim("iat".into()));
        }
        if exp.saturating_sub(iat) > self.max_lifetime {
            return Err(AuthError::LifetimeTooLong);
        }
        Ok(())
    }

    /// The token's principal, and for a service token the user it acts
    /// for. `service_key`: the token was signed by a service key.
    fn principal_from(
        &self,
        claims: Map<String, Value>,
        service_key: bool,
    ) -> Result<(Principal, Option<Acting>), AuthError> {
        // jsonwebtoken also accepts an array `iss` holding ours; the issuer
        // must be exactly ours.
        if claims.get("iss").and_then(Value::as_str) != Some(self.issuer.as_str()) {
            return Err(AuthError::WrongIssuer);
        }
        let service = self.is_service_token(&claims)?;
        // With service keys configured, they and service tokens go together.
        if !self.source.service_kids.is_empty() && service != service_key {
            return Err(AuthError::WrongAudience);
        }
        let subject = non_empty_string(&claims, "sub")?;
        let tenant = non_empty_string(&claims, "tenant")?;
        let roles = roles_of(&claims)?;
        let acting = match (service, claims.get("act")) {
            // A service token is the internal role and nothing else.
            (true, _) if roles != [Role::Internal] => {
                return Err(AuthError::InvalidClaim("roles".into()));
            }
            (true, None) => None,
            (true, Some(Value::Object(act))) => Some(Acting {
                subject: non_empty_string(act, "sub")
                    .map_err(|_| AuthError::InvalidClaim("act".into()))?,
                roles: roles_of(act)
                    .ok()
                    .filter(|r| !r.contains(&Role::Internal))
                    .ok_or_else(|| AuthError::InvalidClaim("act".into()))?,
            }),
            (true, Some(_)) => return Err(AuthError::InvalidClaim("act".into())),
            // A user never holds the internal role nor acts for another.
            (false, _) if roles.contains(&Role::Internal) => {
                return Err(AuthError::InvalidClaim("roles".into()));
            }
            (false, Some(_)) => return Err(AuthError::InvalidClaim("act".into())),
            (false, None) => None,
        };
        Ok((
            Principal {
                subject,
                tenant,
                roles,
            },
            acting,
        ))
    }

    /// Whether `aud` names the service audience (a service token) rather
    /// than the users' one; naming both is refused.
    fn is_service_token(&self, claims: &Map<String, Value>) -> Result<bool, AuthError> {
        let names: Vec<&str> = match claims.get("aud") {
            Some(Value::String(one)) => vec![one.as_str()],
            Some(Value::Array(many)) => many.iter().filter_map(Value::as_str).collect(),
            _ => return Err(AuthError::InvalidClaim("aud".into())),
        };
        let user = names.contains(&self.audience.as_str());
        let service = names.contains(&self.service_audience.as_str());
        match (user, service) {
            (true, false) => Ok(false),
            (false, true) => Ok(true),
            _ => Err(AuthError::WrongAudience),
        }
    }
}

fn candidates<'k>(
    keys: &'k [VerifyingKey],
    alg: Algorithm,
    kid: Option<&str>,
) -> Result<Vec<&'k VerifyingKey>, AuthError> {
    let Some(kid) = kid else {
        return Ok(keys.iter().filter(|k| k.alg == alg).collect());
    };
    let named: Vec<_> = keys
        .iter()
        .filter(|k| k.kid.as_deref() == Some(kid))
        .collect();
    if !named.is_empty() {
        // The token names a key of another type: the header's alg would
        // make us use it the wrong way (RFC 8725 §3.1).
        let matching: Vec<_> = named.into_iter().filter(|k| k.alg == alg).collect();
        if matching.is_empty() {
            return Err(AuthError::AlgorithmNotAllowed(format!(
                "{alg:?} for this key"
            )));
        }
        return Ok(matching);
    }
    Ok(keys
        .iter()
        .filter(|k| k.alg == alg && !k.from_jwks)
        .collect())
}

/// `JWT` or `at+jwt` (RFC 9068), compared as media types: without case and
/// with or without `application/`.
fn is_access_token_type(typ: &str) -> bool {
    let lower = typ.to_ascii_lowercase();
    let name = lower.strip_prefix("application/").unwrap_or(&lower);
    name == "jwt" || name == "at+jwt"
}

impl KeySource {
    /// The content of every key file, refusing files others may write.
    fn read(&self) -> Result<Vec<Vec<u8>>, AuthError> {
        self.files
            .iter()
            .chain(&self.jwks)
            .map(|path| {
                files::check(path, Owner::Anyone)?;
                std::fs::read(path).map_err(|e| AuthError::KeyFile {
                    path: path.clone(),
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    /// The keys of `contents` (as [`KeySource::read`] returned them) and of
    /// the in-memory keys. Fails on any unacceptable key, or if none is left.
    fn parse(&self, contents: &[Vec<u8>]) -> Result<Vec<VerifyingKey>, AuthError> {
        let validation_for = |alg: Algorithm| {
            let mut v = self.base.clone();
            v.algorithms = vec![alg];
            v
        };
        let mut keys = Vec::new();
        let mut add_pem = |pem: &[u8]| -> Result<(), String> {
            let (alg, key) = key_from_pem(pem)?;
            if !self.allowed.contains(&alg) {
                return Err(format!(
                    "is a key for {alg:?}, which is not in auth.algorithms"
                ));
            }
            let kid = key_id(&key)?;
            keys.push(VerifyingKey {
                service: self.service_kids.contains(&kid),
                kid: Some(kid),
                from_jwks: false,
                alg,
                validation: validation_for(alg),
                key,
            });
            Ok(())
        };
        for (path, pem) in self.files.iter().zip(contents) {
            add_pem(pem).map_err(|reason| AuthError::KeyFile {
                path: path.clone(),
                reason,
            })?;
        }
        for pem in &self.extra {
            add_pem(pem).map_err(AuthError::Key)?;
        }
        if let (Some(path), Some(document)) = (&self.jwks, contents.get(self.files.len())) {
            for (kid, alg, key) in keys_from_jwks(path, document, &self.allowed)? {
                let service = key_id(&key).is_ok_and(|id| self.service_kids.contains(&id));
                keys.push(VerifyingKey {
                    service,
                    kid,
                    from_jwks: true,
                    alg,
                    validation: validation_for(alg),
                    key,
                });
            }
        }
        if keys.is_empty() {
            return Err(AuthError::NoKeys);
        }
        Ok(keys)
    }
}

fn raw_header(token: &str) -> Result<RawHeader, AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed);
    };
    let json = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| AuthError::Malformed)?;
    serde_json::from_slice(&json).map_err(|_| AuthError::Malformed)
}

/// The known roles of the `roles` claim, each once; unknown names are
/// dropped (fewer rights is safe).
fn roles_of(claims: &Map<String, Value>) -> Result<Vec<Role>, AuthError> {
    let names = match claims.get("roles") {
        None => return Err(AuthError::MissingClaim("roles".into())),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(AuthError::InvalidClaim("roles".into())),
    };
    let mut roles = Vec::with_capacity(names.len());
    for name in names {
        let name = name
            .as_str()
            .ok_or_else(|| AuthError::InvalidClaim("roles".into()))?;
        if let Ok(role) = Role::from_str(name)
            && !roles.contains(&role)
        {
            roles.push(role);
        }
    }
    Ok(roles)
}

fn non_empty_string(claims: &Map<String, Value>, name: &str) -> Result<String, AuthError> {
    match claims.get(name) {
        None => Err(AuthError::MissingClaim(name.into())),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(_) => Err(AuthError::InvalidClaim(name.into())),
    }
}

fn is_key_mismatch(kind: &ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::InvalidSignature
            | ErrorKind::InvalidAlgorithm
            | ErrorKind::InvalidEcdsaKey
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidKeyFormat
    )
}

fn map_error(kind: &ErrorKind) -> AuthError {
    match kind {
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::ImmatureSignature => AuthError::NotYetValid,
        ErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        ErrorKind::InvalidAudience => AuthError::WrongAudience,
        ErrorKind::MissingRequiredClaim(c) => AuthError::MissingClaim(c.clone()),
        ErrorKind::InvalidClaimFormat(c) => AuthError::InvalidClaim(c.clone()),
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        _ => AuthError::Malformed,
    }
}

/// Reads a PEM public key and tells which algorithm it is for.
fn key_from_pem(pem: &[u8]) -> Result<(Algorithm, DecodingKey), String> {
    // A private key here would be a leak waiting to happen (it gets copied
    // to every service); refuse it rather than derive the public half.
    if pem.windows(11).any(|w| w == b"PRIVATE KEY") {
        return Err("is a private key; configure the public key only".into());
    }
    let (alg, key) = if let Ok(key) = DecodingKey::from_ed_pem(pem) {
        (Algorithm::EdDSA, key)
    } else if let Ok(key) = DecodingKey::from_ec_pem(pem) {
        (Algorithm::ES256, key)
    } else if let Ok(key) = DecodingKey::from_rsa_pem(pem) {
        (Algorithm::RS256, key)
    } else {
        return Err("is not a PEM public key (Ed25519, P-256 or RSA)".into());
    };
    check_key(alg, &key)?;
    Ok((alg, key))
}

/// Refuses keys that are too weak or of the wrong size. Also keeps
/// jsonwebtoken's verifiers from slicing a short key.
fn check_key(alg: Algorithm, key: &DecodingKey) -> Result<(), String> {
    match alg {
        Algorithm::EdDSA => match key.try_get_as_bytes() {
            Ok(bytes) if bytes.len() == 32 => Ok(()),
            _ => Err("is not an Ed25519 public key".into()),
        },
        Algorithm::ES256 => match key.try_get_as_bytes() {
            // An uncompressed P-256 point: 0x04, x, y.
            Ok(bytes) if bytes.len() == 65 && bytes[0] == 4 => Ok(()),
            _ => Err("is not a P-256 public key (ES256 needs P-256)".into()),
        },
        Algorithm::RS256 => {
            let jwk = Jwk::from_decoding_key(key, None).map_err(|e| e.to_string())?;
            let AlgorithmParameters::RSA(rsa) = &jwk.algorithm else {
                return Err("is not an RSA public key".into());
            };
            let n = URL_SAFE_NO_PAD.decode(&rsa.n).map_err(|e| e.to_string())?;
            let significant = n.iter().skip_while(|b| **b == 0).count();
            if significant * 8 < MIN_RSA_BITS {
                return Err(format!("RSA key is shorter than {MIN_RSA_BITS} bits"));
            }
            Ok(())
        }
        other => Err(format!("{other:?} keys are not accepted")),
    }
}

/// A short, stable id of a public key: the first characters of its RFC 7638
/// JWK thumbprint, so it can also be published in a JWKS document.
pub(crate) fn key_id(key: &DecodingKey) -> Result<String, String> {
    let thumbprint = Jwk::from_decoding_key(key, None)
        .and_then(|jwk| jwk.thumbprint(ThumbprintHash::SHA256))
        .map_err(|e| format!("cannot fingerprint the key: {e}"))?;
    Ok(thumbprint.chars().take(KEY_ID_LEN).collect())
}

/// The usable keys of a JWKS document. Keys for encryption, for algorithms
/// that are not allowed, or of unsupported types are skipped: an identity
/// provider's set often holds such keys beside the signing keys we need.
fn keys_from_jwks(
    path: &std::path::Path,
    bytes: &[u8],
    allowed: &[Algorithm],
) -> Result<Vec<(Option<String>, Algorithm, DecodingKey)>, AuthError> {
    let fail = |reason: String| AuthError::KeyFile {
        path: path.to_path_buf(),
        reason,
    };
    let doc: Value = serde_json::from_slice(bytes).map_err(|e| fail(format!("not JSON: {e}")))?;
    let entries = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| fail("not a JWKS document: no \"keys\" array".into()))?;
    let mut keys = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        match jwks_key(entry, allowed) {
            Ok(key) => keys.push(key),
            Err(reason) => {
                tracing::warn!(jwks = %path.display(), index = i, %reason, "skipping JWKS key");
            }
        }
    }
    if keys.is_empty() {
        return Err(fail(
            "no usable key (Ed25519 for EdDSA, P-256 for ES256, RSA for RS256, as allowed by auth.algorithms)"
                .into(),
        ));
    }
    Ok(keys)
}

fn jwks_key(
    entry: &Value,
    allowed: &[Algorithm],
) -> Result<(Option<String>, Algorithm, DecodingKey), String> {
    let jwk: Jwk = serde_json::from_value(entry.clone()).map_err(|e| e.to_string())?;
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return Err("an encryption key".into());
    }
    let inferred = match &jwk.algorithm {
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
            Algorithm::EdDSA
        }
        AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => Algorithm::ES256,
        AlgorithmParameters::RSA(_) => Algorithm::RS256,
        AlgorithmParameters::OctetKey(_) => return Err("a shared secret: never accepted".into()),
        _ => return Err("an unsupported key type or curve".into()),
    };
    // An `alg` on the key must agree with its type; RSA keys marked for
    // RS384, PS256, ... are not ours to use.
    if let Some(declared) = jwk.common.key_algorithm {
        let declared = format!("{declared:?}");
        if declared != format!("{inferred:?}") {
            return Err(format!("a key for {declared}"));
        }
    }
    if !allowed.contains(&inferred) {
        return Err(format!("a key for {inferred:?}, not in auth.algorithms"));
    }
    let key = DecodingKey::from_jwk(&jwk).map_err(|e| e.to_string())?;
    check_key(inferred, &key)?;
    Ok((jwk.common.key_id.clone(), inferred, key))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use jsonwebtoken::{EncodingKey, Header};
    use serde_json::json;

    use super::*;
    use crate::mint::{TokenMinter, generate_ed25519};

    struct Fixture {
        private_pem: String,
        public_pem: String,
        verifier: Verifier,
        minter: TokenMinter,
    }

    fn fixture() -> Fixture {
        let (private_pem, public_pem) = generate_ed25519().unwrap();
        let verifier =
            Verifier::new(&AuthConfig::default(), &[public_pem.clone().into_bytes()]).unwrap();
        let minter = TokenMinter::from_ed25519_pem(private_pem.as_bytes(), "crm", "crm").unwrap();
        Fixture {
            private_pem: private_pem.to_string(),
            public_pem,
            verifier,
            minter,
        }
    }

    fn now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    fn valid_claims() -> Value {
        json!({
            "sub": "user-1",
            "tenant": "acme",
            "roles": ["sales", "manager"],
            "iss": "crm",
            "aud": "crm",
            "iat": now(),
            "exp": now() + 600,
        })
    }

    /// Signs `claims` with the fixture's key, changing only what a test names.
    fn sign(f: &Fixture, claims: &Value) -> String {
        let key = EncodingKey::from_ed_pem(f.private_pem.as_bytes()).unwrap();
        jsonwebtoken::encode(&Header::new(Algorithm::EdDSA), claims, &key).unwrap()
    }

    fn with(mut claims: Value, name: &str, value: Value) -> Value {
        claims[name] = value;
        claims
    }

    fn without(mut claims: Value, name: &str) -> Value {
        claims.as_object_mut().unwrap().remove(name);
        claims
    }

    #[test]
    fn minted_token_gives_the_principal() {
        let f = fixture();
        let token = f
            .minter
            .mint(
                "user-1",
                "acme",
                &[Role::Sales, Role::Admin],
                Duration::from_secs(60),
            )
            .unwrap();
        let p = f.verifier.verify(&token).unwrap();
        assert_eq!(p.subject, "user-1");
        assert_eq!(p.tenant, "acme");
        assert_eq!(p.roles, [Role::Sales, Role::Admin]);
    }

    #[test]
    fn token_without_kid_is_tried_against_keys_of_its_algorithm() {
        let f = fixture();
        let p = f.verifier.verify(&sign(&f, &valid_claims())).unwrap();
        assert_eq!(p.roles, [Role::Sales, Role::Manager]);
    }

    #[test]
    fn unknown_role_names_are_dropped() {
        let f = fixture();
        let claims = with(valid_claims(), "roles", json!(["sales", "superuser"]));
        let p = f.verifier.verify(&sign(&f, &claims)).unwrap();
        assert_eq!(p.roles, [Role::Sales]);
    }

    #[test]
    fn expired_token_is_refused() {
        let f = fixture();
        let claims = with(valid_claims(), "exp", json!(now() - 120));
        let err = f.verifier.verify(&sign(&f, &claims)).unwrap_err();
        assert!(matches!(err, AuthError::Expired), "{err:?}");
        assert_eq!(err.reason(), "TOKEN_EXPIRED");
    }

    #[test]
    fn expiry_within_the_leeway_is_accepted() {
        let f = fixture();
        let claims = with(valid_claims(), "exp", json!(now() - 5));
        assert!(f.verifier.verify(&sign(&f, &claims)).is_ok());
    }

    #[test]
    fn a_verified_token_is_served_from_the_cache_until_it_expires() {
        use std::sync::atomic::Ordering::SeqCst;
        let f = fixture();
        let exp = now() + 60;
        let token = sign(&f, &with(valid_claims(), "exp", json!(exp)));
        let first = f.verifier.verify_at(&token, now()).unwrap().0;
        let again = f.verifier.verify_at(&token, now()).unwrap().0;
        assert_eq!(
            (first.subject, again.tenant),
            (again.subject.clone(), first.tenant.clone())
        );
        assert_eq!(
            f.verifier.full_checks.load(SeqCst),
            1,
            "the second call came from the cache"
        );
        // Past exp + leeway the cached entry is not used: the token is checked in full again.
        let _ = f.verifier.verify_at(&token, exp + 30 + 1);
        assert_eq!(f.verifier.full_checks.load(SeqCst), 2);
        // A refused token is never cached.
        let bad = format!("{token}x");
        assert!(f.verifier.verify(&bad).is_err());
        assert!(f.verifier.verify(&bad).is_err());
        assert_eq!(f.verifier.full_checks.load(SeqCst), 4);
    }

    /// Finding 18: a token without `iat` is refused; so is one issued in
    /// the future or of a type other than `iat` integer.
    #[test]
    fn finding_18_iat_is_required_and_not_in_the_future() {
        let f = fixture();
        let err = f
            .verifier
            .verify(&sign(&f, &without(valid_claims(), "iat")))
            .unwrap_err();
        assert!(
            matches!(&err, AuthError::MissingClaim(c) if c == "iat"),
            "{err:?}"
        );
        for iat in [json!(now() + 3600), json!("yesterday"), json!(-1)] {
            let claims = with(valid_claims(), "iat", iat.clone());
            let err = f.verifier.verify(&sign(&f, &claims)).unwrap_err();
            assert!(
                matches!(&err, AuthError::InvalidClaim(c) if c == "iat"),
                "{iat}: {err:?}"
            );
        }
    }

    /// Finding 18: `exp - iat` is bounded, 24 hours by default.
    #[test]
    fn finding_18_token_lifetime_is_bounded() {
        let f = fixture();
        let day = 24 * 3600;
        let claims = with(valid_claims(), "exp", json!(now() + day + 60));
        let err = f.verifier.verify(&sign(&f, &claims)).unwrap_err();
        assert!(matches!(err, AuthError::LifetimeTooLong), "{err:?}");
        assert_eq!(err.reason(), "TOKEN_INVALID");
        let claims = with(valid_claims(), "exp", json!(now() + day));
        assert!(
            f.verifier.verify(&sign(&f, &claims)).is_ok(),
            "24 h exactly"
        );

        let cfg = AuthConfig {
            max_token_lifetime_seconds: 3600,
            ..AuthConfig::default()
        };
        let verifier = Verifier::new(&cfg, &[f.public_pem.clone().into_bytes()]).unwrap();
        let claims = with(valid_claims(), "exp", json!(now() + 3601));
        assert!(matches!(
            verifier.verify(&sign(&f, &claims)),
            Err(AuthError::LifetimeTooLong)
        ));
        let zero = AuthConfig {
            max_token_lifetime_seconds: 0,
            ..AuthConfig::default()
        };
        assert!(matches!(
            Verifier::new(&zero, &[f.public_pem.clone().into_bytes()]),
            Err(AuthError::Config(_))
        ));
    }

    /// Finding 18: a `typ` other than `JWT` or `at+jwt` (an ID token, a
    /// logout token...) is refused; no `typ` is accepted.
    #[test]
    fn finding_18_typ_must_name_an_access_token() {
        let f = fixture();
        let key = EncodingKey::from_ed_pem(f.private_pem.as_bytes()).unwrap();
        let with_typ = |typ: Option<&str>| {
            let mut header = Header::new(Algorithm::EdDSA);
            header.typ = typ.map(str::to_owned);
            jsonwebtoken::encode(&header, &valid_claims(), &key).unwrap()
        };
        for typ in [
            None,
            Some("JWT"),
            Some("jwt"),
            Some("at+jwt"),
            Some("application/at+JWT"),
        ] {
            assert!(f.verifier.verify(&with_typ(typ)).is_ok(), "{typ:?}");
        }
        for typ in [
            "id_token+jwt",
            "logout+jwt",
            "secevent+jwt",
            "JOSE",
            "",
            "at+jwt2",
        ] {
            let err = f.verifier.verify(&with_typ(Some(typ))).unwrap_err();
            assert!(matches!(err, AuthError::WrongType), "{typ}: {err:?}");
        }
    }

    /// Finding 18: a full cache evicts its least recently used token, not
    /// every token at once (a flood of new tokens used to empty it).
    #[test]
    fn finding_18_a_full_cache_evicts_only_the_least_recently_used() {
        use std::sync::atomic::Ordering::SeqCst;
        let f = fixture();
        let mint = |i: usize| {
            f.minter
                .mint(
                    &format!("user-{i}"),
                    "acme",
                    &[Role::Sales],
                    Duration::from_secs(600),
                )
                .unwrap()
        };
        let hot = mint(0);
        f.verifier.verify(&hot).unwrap();
        let first_cold = mint(1);
        f.verifier.verify(&first_cold).unwrap();
        for i in 2..VERIFIED_CAPACITY {
            f.verifier.verify(&mint(i)).unwrap();
        }
        // Full now; the hot token is used again, then one more comes in.
        f.verifier.verify(&hot).unwrap();
        f.verifier.verify(&mint(VERIFIED_CAPACITY)).unwrap();
        let checks = f.verifier.full_checks.load(SeqCst);
        f.verifier.verify(&hot).unwrap();
        assert_eq!(
            f.verifier.full_checks.load(SeqCst),
            checks,
            "the hot token stayed"
        );
        f.verifier.verify(&first_cold).unwrap();
        assert_eq!(
            f.verifier.full_checks.load(SeqCst),
            checks + 1,
            "the least recently used went"
        );
    }

    /// Finding 18: key files are re-read (at most every
    /// `key_reload_interval_seconds`) and a rotated key is used without a
    /// restart; a key file that does not load keeps the previous keys.
    #[test]
    fn finding_18_rotated_key_files_are_reloaded() {
        let old = fixture();
        let new = fixture();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("public.pem");
        std::fs::write(&file, &old.public_pem).unwrap();
        let cfg = AuthConfig {
            public_key_files: vec![file.clone()],
            ..AuthConfig::default()
        };
        let verifier = Verifier::new(&cfg, &[]).unwrap();
        let token = |f: &Fixture| {
            f.minter
                .mint("user-1", "acme", &[Role::Sales], Duration::from_secs(600))
                .unwrap()
        };
        let (old_token, new_token) = (token(&old), token(&new));
        let t0 = now();
        assert!(verifier.verify_at(&old_token, t0).is_ok());
        assert!(verifier.verify_at(&new_token, t0).is_err());

        std::fs::write(&file, &new.public_pem).unwrap();
        assert!(
            verifier.verify_at(&new_token, t0 + 1).is_err(),
            "not re-read before the interval"
        );
        assert!(verifier.verify_at(&new_token, t0 + 31).is_ok(), "rotated");
        assert!(
            verifier.verify_at(&old_token, t0 + 31).is_err(),
            "the removed key's token is not served from the cache"
        );

        std::fs::write(&file, "half a key").unwrap();
        assert!(
            verifier.verify_at(&new_token, t0 + 62).is_ok(),
            "a broken file keeps the previous keys"
        );
    }

    /// A configured key file that others may change is refused.
    #[cfg(unix)]
    #[test]
    fn a_key_file_writable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let f = fixture();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("public.pem");
        std::fs::write(&file, &f.public_pem).unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        let cfg = AuthConfig {
            public_key_files: vec![file],
            ..AuthConfig::default()
        };
        let err = Verifier::new(&cfg, &[]).unwrap_err();
        assert!(err.to_string().contains("chmod go-w"), "{err}");
    }

    #[test]
    fn future_nbf_is_refused() {
        let f = fixture();
        let claims = with(valid_claims(), "nbf", json!(now() + 3600));
        let err = f.verifier.verify(&sign(&f, &claims)).unwrap_err();
        assert!(matches!(err, AuthError::NotYetValid), "{err:?}");
    }

    #[test]
    fn wrong_audience_is_refused() {
        let f = fixture();
        let claims = with(valid_claims(), "aud", json!("billing"));
        let err = f.verifier.verify(&sign(&f, &claims)).unwrap_err();
        assert!(matches!(err, AuthError::WrongAudience), "{err:?}");
        let claims = with(valid_claims(), "aud", json!(["billing", "crm"]));
        assert!(
            f.verifier.verify(&sign(&f, &claims)).is_ok(),
            "aud must contain ours"
        );
    }

    #[test]
    fn wrong_issuer_is_refused() {
        let f = fixture();
        let claims = with(valid_claims(), "iss", json!("someone-else"));
        let err = f.verifier.verify(&sign(&f, &claims)).unwrap_err();
        assert!(matches!(err, AuthError::WrongIssuer), "{err:?}");
        let claims = with(valid_claims(), "iss", json!(["crm", "other"]));
        let err = f.verifier.verify(&sign(&f, &claims)).unwrap_err();
        assert!(matches!(err, AuthError::WrongIssuer), "{err:?}");
    }

    #[test]
    fn required_claims_must_be_present() {
        let f = fixture();
        for claim in ["exp", "iat", "iss", "aud", "sub", "tenant", "roles"] {
            let claims = without(valid_claims(), claim);
            let err = f.verifier.verify(&sign(&f, &claims)).unwrap_err();
            assert!(
                matches!(&err, AuthError::MissingClaim(c) if c == claim),
                "{claim}: {err:?}"
            );
        }
    }

    #[test]
    fn tenant_and_roles_must_be_well_formed() {
        let f = fixture();
        for (claim, value) in [
            ("tenant", json!("")),
            ("tenant", json!(42)),
            ("roles", json!("sales")),
            ("roles", json!(["sales", 1])),
            ("sub", json!(" ")),
        ] {
            let claims = with(valid_claims(), claim, value);
            let err = f.verifier.verify(&sign(&f, &claims)).unwrap_err();
            assert!(
                matches!(&err, AuthError::InvalidClaim(c) if c == claim),
                "{claim}: {err:?}"
            );
        }
    }

    #[test]
    fn token_from_another_key_is_refused() {
        let f = fixture();
        let other = fixture();
        let token = other
            .minter
            .mint("user-1", "acme", &[Role::Sales], Duration::from_secs(60))
            .unwrap();
        let err = f.verifier.verify(&token).unwrap_err();
        // Its kid is unknown here, so the configured PEM keys are tried.
        assert!(matches!(err, AuthError::BadSignature), "{err:?}");
        let err = f
            .verifier
            .verify(&sign(&other, &valid_claims()))
            .unwrap_err();
        assert!(matches!(err, AuthError::BadSignature), "{err:?}");
    }

    #[test]
    fn tampered_claims_are_refused() {
        let f = fixture();
        let token = sign(&f, &valid_claims());
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged =
            URL_SAFE_NO_PAD.encode(with(valid_claims(), "roles", json!(["admin"])).to_string());
        parts[1] = &forged;
        let err = f.verifier.verify(&parts.join(".")).unwrap_err();
        assert!(matches!(err, AuthError::BadSignature), "{err:?}");
    }

    #[test]
    fn alg_none_is_refused() {
        let f = fixture();
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(valid_claims().to_string());
        for token in [
            format!("{header}.{payload}."),
            format!("{header}.{payload}.c2ln"),
        ] {
            let err = f.verifier.verify(&token).unwrap_err();
            assert!(
                matches!(&err, AuthError::AlgorithmNotAllowed(a) if a == "none"),
                "{err:?}"
            );
        }
    }

    #[test]
    fn hs256_signed_with_the_public_key_is_refused() {
        // The classic confusion: an attacker who knows the public key signs
        // with HMAC, hoping the verifier uses the key bytes as the secret.
        let f = fixture();
        let key = EncodingKey::from_secret(f.public_pem.as_bytes());
        let token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &valid_claims(), &key).unwrap();
        let err = f.verifier.verify(&token).unwrap_err();
        assert!(
            matches!(&err, AuthError::AlgorithmNotAllowed(a) if a == "HS256"),
            "{err:?}"
        );
    }

    #[test]
    fn algorithm_not_configured_is_refused() {
        let (_, public_pem) = generate_ed25519().unwrap();
        let f = fixture();
        let cfg = AuthConfig {
            algorithms: vec!["RS256".into()],
            ..AuthConfig::default()
        };
        // An EdDSA key cannot even be configured without EdDSA allowed...
        assert!(matches!(
            Verifier::new(&cfg, &[public_pem.into_bytes()]),
            Err(AuthError::Key(_))
        ));
        // ...and an EdDSA token is refused by a verifier that allows ES256 only.
        let jwks = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(jwks.path(), P256_JWKS).unwrap();
        let cfg = AuthConfig {
            algorithms: vec!["ES256".into()],
            jwks_file: Some(jwks.path().to_path_buf()),
            ..AuthConfig::default()
        };
        let verifier = Verifier::new(&cfg, &[]).unwrap();
        let err = verifier.verify(&sign(&f, &valid_claims())).unwrap_err();
        assert!(matches!(err, AuthError::AlgorithmNotAllowed(_)), "{err:?}");
    }

    #[test]
    fn alg_that_does_not_match_the_named_key_is_refused() {
        let f = fixture();
        let token = f
            .minter
            .mint("user-1", "acme", &[Role::Sales], Duration::from_secs(60))
            .unwrap();
        let header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        let forged_header =
            URL_SAFE_NO_PAD.encode(json!({"alg": "ES256", "kid": header["kid"]}).to_string());
        let rest = token.split_once('.').unwrap().1;
        let err = f
            .verifier
            .verify(&format!("{forged_header}.{rest}"))
            .unwrap_err();
        assert!(matches!(err, AuthError::AlgorithmNotAllowed(_)), "{err:?}");
    }

    #[test]
    fn malformed_tokens_are_refused() {
        let f = fixture();
        for token in ["", "abc", "a.b", "a.b.c.d.e", "!!!.e30.e30", "e30.e30.e30"] {
            let err = f.verifier.verify(token).unwrap_err();
            assert!(
                matches!(
                    err,
                    AuthError::Malformed | AuthError::AlgorithmNotAllowed(_)
                ),
                "{token}: {err:?}"
            );
        }
        let long = "a".repeat(MAX_TOKEN_LEN + 1);
        assert!(matches!(
            f.verifier.verify(&long),
            Err(AuthError::Malformed)
        ));
    }

    #[test]
    fn critical_header_extensions_are_refused() {
        let f = fixture();
        let mut header = Header::new(Algorithm::EdDSA);
        header.crit = Some(vec!["exp".into()]);
        let key = EncodingKey::from_ed_pem(f.private_pem.as_bytes()).unwrap();
        let token = jsonwebtoken::encode(&header, &valid_claims(), &key).unwrap();
        assert!(matches!(
            f.verifier.verify(&token),
            Err(AuthError::Malformed)
        ));
    }

    #[test]
    fn no_keys_is_a_start_up_error() {
        assert!(matches!(
            Verifier::new(&AuthConfig::default(), &[]),
            Err(AuthError::NoKeys)
        ));
    }

    #[test]
    fn private_key_files_are_refused() {
        let f = fixture();
        let err = Verifier::new(
            &AuthConfig::default(),
            &[f.private_pem.clone().into_bytes()],
        )
        .unwrap_err();
        assert!(err.to_string().contains("private key"), "{err}");
    }

    #[test]
    fn pem_files_of_each_key_type_load() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        for (name, pem) in [("p256.pem", P256_PUBLIC_PEM), ("rsa.pem", RSA_PUBLIC_PEM)] {
            let path = dir.path().join(name);
            std::fs::write(&path, pem).unwrap();
            files.push(path);
        }
        let cfg = AuthConfig {
            public_key_files: files.clone(),
            ..AuthConfig::default()
        };
        let verifier = Verifier::new(&cfg, &[]).unwrap();
        let algs: Vec<_> = verifier.current_keys().iter().map(|k| k.alg).collect();
        assert_eq!(algs, [Algorithm::ES256, Algorithm::RS256]);

        std::fs::write(&files[1], "not a key").unwrap();
        let err = Verifier::new(&cfg, &[]).unwrap_err();
        assert!(matches!(err, AuthError::KeyFile { .. }), "{err}");
    }

    #[test]
    fn jwks_keys_are_matched_by_kid_and_unusable_keys_skipped() {
        let f = fixture();
        let token = f
            .minter
            .mint("user-1", "acme", &[Role::Sales], Duration::from_secs(60))
            .unwrap();
        let header: Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(token.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        let kid = header["kid"].as_str().unwrap().to_owned();

        let public = DecodingKey::from_ed_pem(f.public_pem.as_bytes()).unwrap();
        let x = URL_SAFE_NO_PAD.encode(public.try_get_as_bytes().unwrap());
        let jwks = json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB", "alg": "RS384", "kid": "rs384"},
            {"kty": "OKP", "crv": "Ed25519", "x": "AAAA", "kid": "short"},
            {"kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "use": "sig"},
        ]});
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), jwks.to_string()).unwrap();
        let cfg = AuthConfig {
            jwks_file: Some(file.path().to_path_buf()),
            ..AuthConfig::default()
        };
        let verifier = Verifier::new(&cfg, &[]).unwrap();
        assert_eq!(
            verifier.current_keys().len(),
            1,
            "only the Ed25519 signing key is usable"
        );
        assert_eq!(verifier.verify(&token).unwrap().tenant, "acme");

        // A kid the set does not hold: JWKS keys are not tried.
        let other = fixture();
        let token = other
            .minter
            .mint("user-1", "acme", &[Role::Sales], Duration::from_secs(60))
            .unwrap();
        assert!(matches!(
            verifier.verify(&token),
            Err(AuthError::UnknownKey)
        ));
    }

    #[test]
    fn kid_is_the_start_of_the_rfc7638_thumbprint() {
        // RFC 8037 appendix A.3: the thumbprint of its example Ed25519 key.
        let key =
            DecodingKey::from_ed_components("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo").unwrap();
        assert_eq!(key_id(&key).unwrap(), "kPrK_qmxVWaYVA9w");
    }

    #[test]
    fn excessive_leeway_is_refused() {
        let (_, public_pem) = generate_ed25519().unwrap();
        let cfg = AuthConfig {
            leeway_seconds: u64::MAX,
            ..AuthConfig::default()
        };
        assert!(matches!(
            Verifier::new(&cfg, &[public_pem.into_bytes()]),
            Err(AuthError::Config(_))
        ));
    }

    // Public keys only, made with `openssl genpkey` for these tests.
    const P256_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE2DIBRgIqHkMm5j8V8XJKXvR80BZJ
NOJNnJXYxVbCom5tLefI3pv0BG7lYnMCcZE1fz2p4wRM9VOVveF1ZwDvOQ==
-----END PUBLIC KEY-----
";
    const RSA_PUBLIC_PEM: &str = "-----BEGIN PUBLIC KEY-----
MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAugbGjzHON3rfOda4GHFc
aDtVvMgV7c1Tg9pjdRcvKOzeFoxnBUxKiTZJBBbNDMiiB6EaqjN6yq+4bXQKrDmS
jNe8sXXMd9iS/D6Nw7b4yQM2DFs2VPspe0jVcPVOVJ7LdMHEKsnWw+v4cLLZtqsu
JISbtUyapm2F7n0NeSU+ncdP5XTsrkChn6zv78riFjk9wjqeKM9J4/YQ6kxVNO/d
wSqynXWUgDSCOuk2QK2jUhsE6Kk2ufOvjcYF2ULeRErIa6GKjeG46U/vcGa+/SQa
7+b/CJAJg+xa7sf135aUHUE8s68GURALjj1pala3w7XHzi2t77aa8WkFLNcigq+O
QwIDAQAB
-----END PUBLIC KEY-----
";
    const P256_JWKS: &str = r#"{"keys": [{"kty": "EC", "crv": "P-256", "x": "2DIBRgIqHkMm5j8V8XJKXvR80BZJNOJNnJXYxVbCom4", "y": "bS3nyN6b9ARu5WJzAnGRNX89qeMETPVTlb3hdWcA7zk", "kid": "p256"}]}"#;

    /// A verifier trusting a user key and a service key, with a minter of
    /// each, and the service key signing for the users' audience.
    fn with_service_key() -> (Verifier, TokenMinter, TokenMinter, TokenMinter) {
        let (user_private, user_public) = generate_ed25519().unwrap();
        let (service_private, service_public) = generate_ed25519().unwrap();
        let cfg = AuthConfig::default();
        let verifier = Verifier::with_service_keys(
            &cfg,
            &[user_public.into_bytes()],
            &[service_public.into_bytes()],
        )
        .unwrap();
        let user = TokenMinter::from_ed25519_pem(user_private.as_bytes(), "crm", "crm").unwrap();
        let service =
            TokenMinter::from_ed25519_pem(service_private.as_bytes(), "crm", "crm-internal")
                .unwrap();
        let misused =
            TokenMinter::from_ed25519_pem(service_private.as_bytes(), "crm", "crm").unwrap();
        (verifier, user, service, misused)
    }

    /// Finding 4: a service token is the internal role alone, may name the
    /// user it acts for, and comes from the service key only.
    #[test]
    fn finding_4_service_tokens_are_internal_only_and_from_the_service_key() {
        let (verifier, user, service, misused) = with_service_key();
        let ttl = Duration::from_secs(60);
        let amy = Acting {
            subject: "amy".into(),
            roles: vec![Role::Sales],
        };
        let token = service
            .mint_acting("leads", "t1", &[Role::Internal], Some(&amy), ttl)
            .unwrap();
        let (principal, acting) = verifier.verify_acting(&token).unwrap();
        assert_eq!(principal.roles, [Role::Internal]);
        assert_eq!(acting, Some(amy.clone()));

        // The service key cannot sign for users, nor other roles.
        let admin = service.mint("x", "t1", &[Role::Admin], ttl).unwrap();
        assert!(verifier.verify(&admin).is_err());
        let both = service
            .mint("x", "t1", &[Role::Internal, Role::Admin], ttl)
            .unwrap();
        assert!(verifier.verify(&both).is_err());
        let admin_for_users = misused.mint("x", "t1", &[Role::Admin], ttl).unwrap();
        assert!(matches!(
            verifier.verify(&admin_for_users),
            Err(AuthError::WrongAudience)
        ));

        // A user token never carries the internal role nor `act`, and a
        // user key cannot sign a service token.
        let internal_user = user.mint("bob", "t1", &[Role::Internal], ttl).unwrap();
        assert!(verifier.verify(&internal_user).is_err());
        let user_act = user
            .mint_acting("bob", "t1", &[Role::Sales], Some(&amy), ttl)
            .unwrap();
        assert!(verifier.verify(&user_act).is_err());
        let forged = TokenMinter::from_ed25519_pem(
            generate_ed25519().unwrap().0.as_bytes(),
            "crm",
            "crm-internal",
        )
        .unwrap()
        .mint("x", "t1", &[Role::Internal], ttl)
        .unwrap();
        assert!(verifier.verify(&forged).is_err());
        assert!(
            verifier
                .verify(&user.mint("bob", "t1", &[Role::Sales], ttl).unwrap())
                .is_ok()
        );
    }

    /// Finding 4: without service keys (development), the audience alone
    /// tells a service token, and its rules hold all the same.
    #[test]
    fn finding_4_the_internal_role_needs_the_service_audience() {
        let f = fixture();
        let ttl = Duration::from_secs(60);
        let internal_user = f.minter.mint("bob", "t1", &[Role::Internal], ttl).unwrap();
        assert!(matches!(
            f.verifier.verify(&internal_user),
            Err(AuthError::InvalidClaim(c)) if c == "roles"
        ));
        let service =
            TokenMinter::from_ed25519_pem(f.private_pem.as_bytes(), "crm", "crm-internal").unwrap();
        let admin = service.mint("x", "t1", &[Role::Admin], ttl).unwrap();
        assert!(f.verifier.verify(&admin).is_err());
        let internal = service.mint("x", "t1", &[Role::Internal], ttl).unwrap();
        assert_eq!(
            f.verifier.verify(&internal).unwrap().roles,
            [Role::Internal]
        );
    }
}
