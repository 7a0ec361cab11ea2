//! Authentication and authorisation shared by the gateway and every service.
//!
//! - [`Verifier`]: bearer JWT verification after RFC 8725 (algorithm
//!   allow-list, keys from configuration reloaded when they change, required
//!   `iss`/`aud`/`exp`/`iat`/`sub`, a bounded lifetime, access-token `typ`)
//!   into a [`Principal`].
//! - [`AuthLayer`]: the tower layer that enforces the role policy declared in
//!   the contracts (`crm_proto::METHOD_POLICIES`) on every call, deny by
//!   default. The same layer runs in the gateway and in each service, so a
//!   service reached without the gateway is no softer.
//! - [`DevKeys`] and [`TokenMinter`]: the development signing key that
//!   `crm serve` keeps in its data directory, and tokens minted with it.

mod config;
mod error;
mod files;
mod layer;
mod lru;
mod mint;
mod principal;
mod verify;

pub use config::AuthConfig;
pub use error::AuthError;
pub use layer::{AuthLayer, AuthService, acting_for, bearer_token, principal};
pub use mint::{DevKeys, TokenMinter, public_key_of};
pub use principal::{Acting, BearerToken, ParseRoleError, Principal, Role};
pub use verify::Verifier;

/// The `ErrorInfo.domain` of every status this crate produces.
pub const ERROR_DOMAIN: &str = "crm.auth";
