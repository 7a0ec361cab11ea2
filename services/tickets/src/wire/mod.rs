//! The tickets service's side of the wire: proto messages to domain values
//! and back, and the events a change publishes. Depends on the domain and
//! the generated proto only.

pub mod events;
pub mod mapping;

pub use mapping::*;
