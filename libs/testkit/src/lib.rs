//! Test kit: spawn the suite on 127.0.0.1:0 with its own database and keys, mint tokens, make clients.
