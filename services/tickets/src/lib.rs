//! The tickets service (DOMAIN.md §5).

pub mod domain;
