//! Bearer JWT verification (RFC 8725), the Principal, the auth tower layer enforcing the contracts' role policy, and development keys and tokens.
