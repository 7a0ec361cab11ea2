use std::fs;
use std::io::{ErrorKind as IoErrorKind, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, EncodePublicKey};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde::Serialize;

use crate::files::{self, Owner};
use crate::verify::key_id;
use crate::{Acting, AuthError, Role};

const KEYS_DIR: &str = "keys";
const SIGNING_KEY_FILE: &str = "dev-signing-key.pem";
const PUBLIC_KEY_FILE: &str = "dev-public-key.pem";

/// Signs tokens with an Ed25519 key (`alg` EdDSA, `kid` the key's
/// fingerprint). Used for development tokens and service identities.
pub struct TokenMinter {
    key: EncodingKey,
    kid: String,
    issuer: String,
    audience: String,
}

impl std::fmt::Debug for TokenMinter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenMinter")
            .field("kid", &self.kid)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    sub: &'a str,
    tenant: &'a str,
    roles: Vec<&'static str>,
    iss: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    act: Option<ActClaim<'a>>,
}

/// RFC 8693 §4.1: the party a service token acts for.
#[derive(Serialize)]
struct ActClaim<'a> {
    sub: &'a str,
    roles: Vec<&'static str>,
}

impl TokenMinter {
    /// A minter for an Ed25519 private key in PKCS#8 PEM
    /// (`-----BEGIN PRIVATE KEY-----`).
    pub fn from_ed25519_pem(
        private_pem: &[u8],
        issuer: &str,
        audience: &str,
    ) -> Result<Self, AuthError> {
        let signing = signing_key_from_pem(private_pem).map_err(AuthError::Key)?;
        let public = DecodingKey::from_ed_der(signing.verifying_key().as_bytes());
        let kid = key_id(&public).map_err(AuthError::Key)?;
        let key = EncodingKey::from_ed_pem(private_pem)
            .map_err(|e| AuthError::Key(format!("not an Ed25519 private key: {e}")))?;
        Ok(TokenMinter {
            key,
            kid,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
        })
    }

    /// The `kid` of the tokens this minter signs.
    pub fn key_id(&self) -> &str {
        &self.kid
    }

    /// Signs a token for `subject` in `tenant` with `roles`, valid for `ttl`.
    pub fn mint(
        &self,
        subject: &str,
        tenant: &str,
        roles: &[Role],
        ttl: Duration,
    ) -> Result<String, AuthError> {
        self.mint_acting(subject, tenant, roles, None, ttl)
    }

    /// [`TokenMinter::mint`], naming in `act` the user the token acts for.
    pub fn mint_acting(
        &self,
        subject: &str,
        tenant: &str,
        roles: &[Role],
        acting: Option<&Acting>,
        ttl: Duration,
    ) -> Result<String, AuthError> {
        // The verifier would refuse these; say so where the mistake is made.
        if subject.trim().is_empty() {
            return Err(AuthError::InvalidClaim("sub".into()));
        }
        if tenant.trim().is_empty() {
            return Err(AuthError::InvalidClaim("tenant".into()));
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_err(|_| AuthError::Clock)?
            .as_secs();
        // Round a sub-second remainder up: a ttl of 1.5 s is not 1 s.
        let ttl_secs = ttl
            .as_secs()
            .saturating_add(u64::from(ttl.subsec_nanos() > 0));
        let claims = Claims {
            sub: subject,
            tenant,
            roles: roles.iter().map(|r| r.as_str()).collect(),
            iss: &self.issuer,
            aud: &self.audience,
            iat: now,
            exp: now.saturating_add(ttl_secs),
            act: acting.map(|a| ActClaim {
                sub: &a.subject,
                roles: a.roles.iter().map(|r| r.as_str()).collect(),
            }),
        };
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| AuthError::Signing(e.to_string()))
    }
}

/// The development signing key of a data directory: made on first use,
/// reused after, never in the code. `crm serve` trusts its public half and
/// `crm token` mints with it.
pub struct DevKeys {
    private_pem: String,
    public_pem: String,
    dir: PathBuf,
}

impl std::fmt::Debug for DevKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DevKeys")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl DevKeys {
    /// Loads `<data_dir>/keys/dev-signing-key.pem`, creating it (mode 0600)
    /// with a fresh Ed25519 key if absent, and writes the public key beside
    /// it as `dev-public-key.pem`. The directory and the key must be this
    /// user's and writable by nobody else: whoever can put a key there
    /// mints tokens for any tenant.
    pub fn load_or_create(data_dir: &Path) -> Result<DevKeys, AuthError> {
        let dir = data_dir.join(KEYS_DIR);
        create_private_dir(&dir)?;
        files::check(&dir, Owner::Us)?;
        let private_path = dir.join(SIGNING_KEY_FILE);
        let private_pem = match read_private(&private_path)? {
            Some(pem) => pem,
            None => create_private(&dir, &private_path)?,
        };
        let signing =
            signing_key_from_pem(private_pem.as_bytes()).map_err(|reason| AuthError::KeyFile {
                path: private_path.clone(),
                reason,
            })?;
        let public_pem = public_pem(&signing)?;
        write_public(&dir.join(PUBLIC_KEY_FILE), &public_pem)?;
        Ok(DevKeys {
            private_pem,
            public_pem,
            dir,
        })
    }

    /// The public key, PEM (SubjectPublicKeyInfo), for [`crate::Verifier::new`].
    pub fn public_key_pem(&self) -> Vec<u8> {
        self.public_pem.clone().into_bytes()
    }

    /// A minter signing with the development key.
    pub fn minter(&self, issuer: &str, audience: &str) -> Result<TokenMinter, AuthError> {
        TokenMinter::from_ed25519_pem(self.private_pem.as_bytes(), issuer, audience)
    }

    /// Where the signing key is kept.
    pub fn signing_key_path(&self) -> PathBuf {
        self.dir.join(SIGNING_KEY_FILE)
    }

    /// Where the public key is written.
    pub fn public_key_path(&self) -> PathBuf {
        self.dir.join(PUBLIC_KEY_FILE)
    }
}

/// The public half (SPKI PEM) of an Ed25519 private key in PKCS#8 PEM: the
/// service key's, for [`crate::Verifier::with_service_keys`].
pub fn public_key_of(private_pem: &[u8]) -> Result<Vec<u8>, AuthError> {
    let signing = signing_key_from_pem(private_pem).map_err(AuthError::Key)?;
    Ok(public_pem(&signing)?.into_bytes())
}

/// A fresh Ed25519 key pair as (PKCS#8 private PEM, SPKI public PEM).
pub(crate) fn generate_ed25519() -> Result<(String, String), AuthError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed)
        .map_err(|e| AuthError::Signing(format!("no randomness for a new key: {e}")))?;
    let signing = SigningKey::from_bytes(&seed);
    seed.fill(0);
    let private = signing
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| AuthError::Signing(format!("encoding the new key: {e}")))?;
    Ok((private.to_string(), public_pem(&signing)?))
}

fn public_pem(signing: &SigningKey) -> Result<String, AuthError> {
    signing
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| AuthError::Signing(format!("encoding the public key: {e}")))
}

fn signing_key_from_pem(pem: &[u8]) -> Result<SigningKey, String> {
    let text = std::str::from_utf8(pem).map_err(|_| "is not PEM text".to_owned())?;
    SigningKey::from_pkcs8_pem(text)
        .map_err(|e| format!("is not an Ed25519 PKCS#8 private key: {e}"))
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> AuthError + '_ {
    move |source| AuthError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn create_private_dir(dir: &Path) -> Result<(), AuthError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(io_error(dir))
}

/// The key if present. Like ssh, refuse a key that other users can read:
/// whoever reads it can mint tokens for any tenant.
fn read_private(path: &Path) -> Result<Option<String>, AuthError> {
    let pem = match fs::read_to_string(path) {
        Ok(pem) => pem,
        Err(e) if e.kind() == IoErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_error(path)(e)),
    };
    files::check(path, Owner::Us)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = fs::metadata(path)
            .map_err(io_error(path))?
            .permissions()
            .mode();
        if mode & 0o077 != 0 {
            return Err(AuthError::KeyFile {
                path: path.to_path_buf(),
                reason: format!(
                    "is accessible by other users (mode {:o}); run chmod 600 on it",
                    mode & 0o777
                ),
            });
        }
    }
    Ok(Some(pem))
}

/// Writes a new key under a temporary name and links it into place, so a
/// reader never sees half a key and two processes starting together end up
/// with the same one.
fn create_private(dir: &Path, path: &Path) -> Result<String, AuthError> {
    let (private_pem, _) = generate_ed25519()?;
    let tmp = dir.join(format!(".{SIGNING_KEY_FILE}.{}.tmp", std::process::id()));
    let written = write_new_private(&tmp, &private_pem).and_then(|()| fs::hard_link(&tmp, path));
    // The temporary name has served its purpose either way.
    let _ = fs::remove_file(&tmp);
    match written {
        Ok(()) => Ok(private_pem),
        Err(e) if e.kind() == IoErrorKind::AlreadyExists => {
            read_private(path)?.ok_or_else(|| AuthError::KeyFile {
                path: path.to_path_buf(),
                reason: "vanished while being created".into(),
            })
        }
        Err(e) => Err(io_error(path)(e)),
    }
}

fn write_new_private(path: &Path, pem: &str) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(pem.as_bytes())?;
    file.sync_all()
}

fn write_public(path: &Path, pem: &str) -> Result<(), AuthError> {
    if fs::read_to_string(path).is_ok_and(|existing| existing == pem) {
        return Ok(());
    }
    let tmp = path.with_extension(format!("pem.{}.tmp", std::process::id()));
    fs::write(&tmp, pem)
        .and_then(|()| fs::rename(&tmp, path))
        .map_err(io_error(path))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::{AuthConfig, Verifier};

    #[test]
    fn second_load_returns_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let first = DevKeys::load_or_create(dir.path()).unwrap();
        let second = DevKeys::load_or_create(dir.path()).unwrap();
        assert_eq!(first.public_key_pem(), second.public_key_pem());
        assert_eq!(
            first.minter("crm", "crm").unwrap().key_id(),
            second.minter("crm", "crm").unwrap().key_id()
        );
        let other = DevKeys::load_or_create(tempfile::tempdir().unwrap().path()).unwrap();
        assert_ne!(
            first.public_key_pem(),
            other.public_key_pem(),
            "keys are random"
        );
    }

    #[test]
    fn public_key_file_matches_the_signing_key() {
        let dir = tempfile::tempdir().unwrap();
        let keys = DevKeys::load_or_create(dir.path()).unwrap();
        let on_disk = fs::read(dir.path().join("keys/dev-public-key.pem")).unwrap();
        assert_eq!(on_disk, keys.public_key_pem());
        assert!(
            keys.signing_key_path()
                .ends_with("keys/dev-signing-key.pem")
        );

        let verifier = Verifier::new(&AuthConfig::default(), &[on_disk]).unwrap();
        let token = keys
            .minter("crm", "crm")
            .unwrap()
            .mint("dev", "t1", &[Role::Admin], Duration::from_secs(60))
            .unwrap();
        assert!(verifier.verify(&token).unwrap().has_role(Role::Admin));
    }

    #[cfg(unix)]
    #[test]
    fn signing_key_is_private_to_its_owner() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let keys = DevKeys::load_or_create(dir.path()).unwrap();
        let mode = fs::metadata(keys.signing_key_path())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let dir_mode = fs::metadata(dir.path().join("keys"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
    }

    #[cfg(unix)]
    #[test]
    fn a_signing_key_readable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let keys = DevKeys::load_or_create(dir.path()).unwrap();
        fs::set_permissions(keys.signing_key_path(), fs::Permissions::from_mode(0o644)).unwrap();
        let err = DevKeys::load_or_create(dir.path()).unwrap_err();
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }

    /// Finding 3: a development key directory that group or others may
    /// write is refused, so nobody else can plant a key there.
    #[cfg(unix)]
    #[test]
    fn finding_3_a_key_directory_writable_by_others_is_refused() {
        use std::os::unix::fs::PermissionsExt as _;
        for mode in [0o777, 0o770, 0o702] {
            let dir = tempfile::tempdir().unwrap();
            let keys_dir = dir.path().join("keys");
            fs::create_dir(&keys_dir).unwrap();
            fs::set_permissions(&keys_dir, fs::Permissions::from_mode(mode)).unwrap();
            let err = DevKeys::load_or_create(dir.path()).unwrap_err();
            assert!(err.to_string().contains("chmod go-w"), "{mode:o}: {err}");
        }
    }

    /// Finding 3: a development key (or its directory) owned by another
    /// user is refused. Changing a file's owner needs root: skipped
    /// otherwise (the rule itself is tested in `files`).
    #[cfg(unix)]
    #[test]
    fn finding_3_a_key_owned_by_another_user_is_refused() {
        use std::os::unix::fs::chown;
        if rustix::process::geteuid().as_raw() != 0 {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let keys = DevKeys::load_or_create(dir.path()).unwrap();
        chown(keys.signing_key_path(), Some(4242), None).unwrap();
        let err = DevKeys::load_or_create(dir.path()).unwrap_err();
        assert!(err.to_string().contains("uid 4242"), "{err}");
        chown(keys.signing_key_path(), Some(0), None).unwrap();
        chown(dir.path().join("keys"), Some(4242), None).unwrap();
        let err = DevKeys::load_or_create(dir.path()).unwrap_err();
        assert!(err.to_string().contains("uid 4242"), "{err}");
    }

    #[test]
    fn a_corrupt_signing_key_is_an_error_not_a_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let keys = DevKeys::load_or_create(dir.path()).unwrap();
        fs::write(keys.signing_key_path(), "garbage").unwrap();
        assert!(matches!(
            DevKeys::load_or_create(dir.path()),
            Err(AuthError::KeyFile { .. })
        ));
    }

    #[test]
    fn minter_refuses_what_the_verifier_would() {
        let (private, _) = generate_ed25519().unwrap();
        let minter = TokenMinter::from_ed25519_pem(private.as_bytes(), "crm", "crm").unwrap();
        assert!(minter.mint("", "t", &[], Duration::from_secs(1)).is_err());
        assert!(minter.mint("u", " ", &[], Duration::from_secs(1)).is_err());
        assert!(TokenMinter::from_ed25519_pem(b"nope", "crm", "crm").is_err());
    }

    #[test]
    fn minted_claims_and_header() {
        use base64::Engine as _;
        let (private, _) = generate_ed25519().unwrap();
        let minter = TokenMinter::from_ed25519_pem(private.as_bytes(), "iss-x", "aud-y").unwrap();
        let token = minter
            .mint(
                "u1",
                "t1",
                &[Role::Sales, Role::Legal],
                Duration::from_millis(1500),
            )
            .unwrap();
        let part = |i: usize| -> serde_json::Value {
            let b64 = token.split('.').nth(i).unwrap();
            let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(b64)
                .unwrap();
            serde_json::from_slice(&bytes).unwrap()
        };
        let (header, claims) = (part(0), part(1));
        assert_eq!(header["alg"], "EdDSA");
        assert_eq!(header["kid"], minter.key_id());
        assert_eq!(minter.key_id().len(), 16);
        assert_eq!(claims["sub"], "u1");
        assert_eq!(claims["tenant"], "t1");
        assert_eq!(claims["roles"], serde_json::json!(["sales", "legal"]));
        assert_eq!(claims["iss"], "iss-x");
        assert_eq!(claims["aud"], "aud-y");
        let (iat, exp) = (
            claims["iat"].as_u64().unwrap(),
            claims["exp"].as_u64().unwrap(),
        );
        assert_eq!(exp - iat, 2, "a partial second rounds up");
    }
}
