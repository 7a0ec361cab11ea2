//! The contracts service (in progress).

pub mod domain;
