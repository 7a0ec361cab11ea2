//! The gateway: a generic gRPC reverse proxy routing by package, with trace, deadline, load shedding, auth and per-tenant rate limiting.
