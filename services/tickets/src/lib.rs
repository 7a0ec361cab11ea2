//! The tickets service (DOMAIN.md §5).

pub mod domain;
pub mod store;
pub mod wire;
