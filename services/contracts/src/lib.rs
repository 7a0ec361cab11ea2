//! The contracts service (in progress).

pub mod domain;
pub mod store;
pub mod wire;
