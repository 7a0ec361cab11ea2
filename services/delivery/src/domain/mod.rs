//! The delivery rules: plain Rust, no tonic and no SQL.

pub mod access;
mod config;
mod error;
mod model;
pub mod risk;
mod rules;
#[cfg(test)]
mod rules_tests;
#[cfg(test)]
pub(crate) mod testing;

pub use access::Visibility;
pub use config::DeliveryConfig;
pub use crm_types::Date;
pub use error::{DeliveryError, Missing, resource};
pub use model::*;
pub use rules::*;
