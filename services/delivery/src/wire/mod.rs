//! Proto messages to domain values and back, and the event payloads.

mod events;
mod mapping;

pub use events::*;
pub use mapping::*;
