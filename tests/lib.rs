//! End-to-end tests of the suite: `auth.rs` (tokens, roles, tenants),
//! `leads.rs` (the leads API and its rules), `resilience.rs` (limits,
//! deadlines, restarts). Each test starts its own suite with crm-testkit.
