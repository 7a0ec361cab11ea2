//! The opportunities service (DOMAIN.md section 2).

pub mod domain;
