use std::path::PathBuf;

/// Why keys could not be loaded, a token could not be minted, or a token was
/// refused. The token itself is never part of an error.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    // --- configuration and keys ---
    /// The auth configuration is not acceptable.
    #[error("auth configuration: {0}")]
    Config(String),
    /// A key file could not be read or is not an acceptable key.
    #[error("key file {}: {reason}", path.display())]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A key given in memory is not an acceptable key.
    #[error("key: {0}")]
    Key(String),
    /// No key to verify tokens with: every token would be refused.
    #[error(
        "no token verification key configured: set auth.public_key_files or auth.jwks_file \
         (or auth.development = true to trust the development key of the data directory, \
         on one machine only)"
    )]
    NoKeys,
    /// Reading or writing the development keys failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The failure.
        #[source]
        source: std::io::Error,
    },
    /// A token could not be signed.
    #[error("signing a token: {0}")]
    Signing(String),
    /// The system clock is before 1970.
    #[error("the system clock is before the Unix epoch")]
    Clock,

    // --- token verification ---
    /// Not a compact JWS: wrong shape, bad base64 or JSON.
    #[error("malformed token")]
    Malformed,
    /// `alg` is not in the allow-list (`none`, HS*, or not configured).
    #[error("token algorithm {0:?} is not allowed")]
    AlgorithmNotAllowed(String),
    /// No configured key of the token's algorithm (and `kid`).
    #[error("no key for the token's algorithm and key id")]
    UnknownKey,
    /// The signature does not verify with any matching key.
    #[error("token signature is invalid")]
    BadSignature,
    /// `exp` is past (beyond the leeway).
    #[error("token has expired")]
    Expired,
    /// `nbf` is in the future (beyond the leeway).
    #[error("token is not valid yet")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("token issuer is not accepted")]
    WrongIssuer,
    /// `aud` does not contain the configured audience.
    #[error("token audience is not accepted")]
    WrongAudience,
    /// A required claim is absent.
    #[error("token claim {0:?} is missing")]
    MissingClaim(String),
    /// A claim has the wrong type or an empty value.
    #[error("token claim {0:?} is invalid")]
    InvalidClaim(String),
    /// `exp - iat` is longer than `auth.max_token_lifetime_seconds`.
    #[error("token lifetime is longer than allowed")]
    LifetimeTooLong,
    /// The header's `typ` names something other than an access token (an
    /// ID token, a logout token...).
    #[error("token type is not accepted")]
    WrongType,
}

impl AuthError {
    /// The `ErrorInfo.reason` for a refused token.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Expired => "TOKEN_EXPIRED",
            _ => "TOKEN_INVALID",
        }
    }
}
