//! The leads service (DOMAIN.md section 1).

pub mod domain;
pub mod store;
