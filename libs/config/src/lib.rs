//! Layered configuration: built-in defaults, an optional TOML file, then CRM__SECTION__KEY environment variables; unknown keys and bad values stop start-up naming the key.
