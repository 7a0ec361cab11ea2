//! The rules of service tickets: plain Rust, no tonic and no SQL.

mod access;
mod calendar;
mod config;
mod dispatch;
mod error;
mod health;
mod loyalty;
mod model;
mod rules;
mod search;

pub use access::{Visibility, can_see, can_work, check_visible};
pub use calendar::{Basis, Calendar, DAY, MINUTE};
pub use config::*;
pub use dispatch::{Candidate, choose};
pub use error::{TicketError, resource};
pub use health::*;
pub use loyalty::*;
pub use model::*;
pub use rules::*;
pub use search::{MAX_QUERY_TOKENS, search_terms, search_text};

pub use crm_types::{Actor, Date, Money, Role};
