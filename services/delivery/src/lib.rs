//! The delivery service (DOMAIN.md §4).

pub mod app;
pub mod domain;
pub mod store;
pub mod wire;
