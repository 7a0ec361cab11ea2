//! Server bootstrap: the shared tower stack, health, reflection, graceful shutdown for a tonic service or the gateway.
