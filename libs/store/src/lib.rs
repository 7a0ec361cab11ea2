//! Storage plumbing shared by the services: connecting to SQLite or PostgreSQL durably, migrations, idempotency records, audit entries, page tokens.
