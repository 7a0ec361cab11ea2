//! End-to-end tests: each test starts the real suite (every service and the
//! gateway) on 127.0.0.1:0 with its own data and database, and talks to it
//! over real sockets, as a client team would. One binary, one module per
//! area; the shared helpers are the `crm-e2e` library (`tests/lib.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod arbitrary_input;
mod auth;
mod contracts;
mod delivery;
mod events;
mod fairness_data;
mod fairness_transport;
mod hardening;
mod leads;
mod operations;
mod opportunities;
mod outage;
mod resilience;
mod telemetry;
mod tickets;
mod tls;
mod validation;
