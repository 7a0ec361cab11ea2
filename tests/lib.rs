//! End-to-end tests live beside this file; shared helpers are in crm-testkit.
