//! List paging after AIP-158: `page_size` 0 means the default, above the
//! maximum is capped, negative is invalid; `page_token` is opaque and bound
//! to the query and tenant it came from, so it cannot be replayed against
//! another filter or another tenant. Services page by keyset, never OFFSET:
//! the token carries the last key of the previous page.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize, de::DeserializeOwned};
use sha2::{Digest, Sha256};

use crate::FieldViolation;

/// How many rows a page holds when the caller does not say, and at most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PageLimits {
    pub default_size: u32,
    pub max_size: u32,
}

impl Default for PageLimits {
    fn default() -> Self {
        PageLimits {
            default_size: 50,
            max_size: 500,
        }
    }
}

impl PageLimits {
    /// The page size to use for a request's `page_size`.
    pub fn size(&self, requested: i32) -> Result<u64, FieldViolation> {
        match requested {
            n if n < 0 => Err(FieldViolation::new("page_size", "must not be negative")),
            0 => Ok(u64::from(self.default_size.max(1))),
            n => Ok(u64::from(n.unsigned_abs().min(self.max_size.max(1)))),
        }
    }

    /// The page a list request asks for: its `page_size` checked against
    /// these limits, its `page_token` against `binding` (the tenant, the
    /// method and every filter); every bad field is reported.
    pub fn page<K: DeserializeOwned>(
        &self,
        page_size: i32,
        page_token: &str,
        binding: Binding,
    ) -> Result<Page<K>, Vec<FieldViolation>> {
        let mut violations = Vec::new();
        let limit = self
            .size(page_size)
            .map_err(|v| violations.push(v))
            .unwrap_or(1);
        let after = decode(page_token, &binding)
            .map_err(|v| violations.push(v))
            .ok()
            .flatten();
        if violations.is_empty() {
            Ok(Page {
                limit,
                after,
                binding,
            })
        } else {
            Err(violations)
        }
    }
}

/// One page of a list: how many rows at most, the key of the row to resume
/// after (none for the first page), and what its next token is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<K> {
    pub limit: u64,
    pub after: Option<K>,
    binding: Binding,
}

impl<K: Serialize> Page<K> {
    /// The `next_page_token` after `rows` (this page), keyed by `key` of
    /// the last row: empty when the page came back short, as the last one.
    pub fn next_token<T>(&self, rows: &[T], key: impl FnOnce(&T) -> K) -> String {
        match rows.last() {
            Some(last) if rows.len() as u64 >= self.limit => encode(&key(last), &self.binding),
            _ => String::new(),
        }
    }
}

/// What a token is bound to: the tenant, the method and every filter of the
/// query, reduced to a digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding(String);

impl Binding {
    pub fn new(tenant: &str, method: &str) -> Self {
        Binding(format!("{tenant}\u{0}{method}"))
    }

    /// Adds one filter of the query (its name and value).
    #[must_use]
    pub fn with(mut self, name: &str, value: impl std::fmt::Display) -> Self {
        self.0.push('\u{0}');
        self.0.push_str(name);
        self.0.push('=');
        self.0.push_str(&value.to_string());
        self
    }

    fn digest(&self) -> String {
        let hash = Sha256::digest(self.0.as_bytes());
        URL_SAFE_NO_PAD.encode(&hash[..12])
    }
}

#[derive(Serialize, Deserialize)]
struct Token<K> {
    b: String,
    k: K,
}

/// The token for the page after the row whose key is `key`.
pub fn encode<K: Serialize>(key: &K, binding: &Binding) -> String {
    let token = Token {
        b: binding.digest(),
        k: key,
    };
    // Serializing plain keys (strings, numbers) to JSON cannot fail.
    let json = serde_json::to_vec(&token).unwrap_or_default();
    URL_SAFE_NO_PAD.encode(json)
}

/// The key a `page_token` resumes after; `None` for the first page.
pub fn decode<K: DeserializeOwned>(
    token: &str,
    binding: &Binding,
) -> Result<Option<K>, FieldViolation> {
    if token.is_empty() {
        return Ok(None);
    }
    let invalid = || FieldViolation::new("page_token", "not a page token of this query");
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let token: Token<K> = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    if token.b != binding.digest() {
        return Err(invalid());
    }
    Ok(Some(token.k))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sizes() {
        let limits = PageLimits::default();
        assert_eq!(limits.size(0).unwrap(), 50);
        assert_eq!(limits.size(10).unwrap(), 10);
        assert_eq!(limits.size(100_000).unwrap(), 500);
        assert_eq!(limits.size(-1).unwrap_err().field, "page_size");
    }

    #[test]
    fn token_round_trips_for_the_same_query_only() {
        let query = Binding::new("acme", "ListLeads").with("status", "new");
        let token = encode(&("k1".to_owned(), 7_i64), &query);
        let key: Option<(String, i64)> = decode(&token, &query).unwrap();
        assert_eq!(key, Some(("k1".to_owned(), 7)));

        let other_filter = Binding::new("acme", "ListLeads").with("status", "working");
        assert!(decode::<(String, i64)>(&token, &other_filter).is_err());
        let other_tenant = Binding::new("globex", "ListLeads").with("status", "new");
        assert!(decode::<(String, i64)>(&token, &other_tenant).is_err());
        assert!(decode::<(String, i64)>("garbage!", &query).is_err());
        assert_eq!(decode::<(String, i64)>("", &query).unwrap(), None);
    }

    #[test]
    fn a_page_reports_both_bad_fields_and_resumes_after_a_full_page() {
        let limits = PageLimits::default();
        let query = || Binding::new("acme", "ListThings").with("owner", "amy");
        let bad = limits
            .page::<String>(-1, "garbage!", query())
            .unwrap_err()
            .into_iter()
            .map(|v| v.field)
            .collect::<Vec<_>>();
        assert_eq!(bad, ["page_size", "page_token"]);

        let first = limits.page::<String>(2, "", query()).unwrap();
        assert_eq!((first.limit, first.after.clone()), (2, None));
        let rows = ["b", "a"];
        let token = first.next_token(&rows, |r| (*r).to_owned());
        let second = limits.page::<String>(2, &token, query()).unwrap();
        assert_eq!(second.after.as_deref(), Some("a"));
        assert_eq!(second.next_token(&rows[..1], |r| (*r).to_owned()), "");
        let other = Binding::new("acme", "ListThings").with("owner", "bob");
        assert!(limits.page::<String>(2, &token, other).is_err());
    }
}
