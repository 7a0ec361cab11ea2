//! Entity tags for optimistic concurrency (AIP-154).

use std::fmt;

/// The opaque version tag of a resource. Clients send back what they read;
/// the text is `v<version>` so that nobody mistakes it for a counter to do
/// arithmetic on. A bare number (what earlier releases sent) still parses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Etag(u64);

impl Etag {
    /// The tag of a record at `version`.
    pub fn of_version(version: u64) -> Self {
        Etag(version)
    }

    /// The tag a client sent: `None` when it names no version at all (so it
    /// can match nothing).
    pub fn parse(text: &str) -> Option<Etag> {
        let digits = text.strip_prefix('v').unwrap_or(text);
        digits.parse().ok().map(Etag)
    }

    /// Whether `sent` (as a client sent it) names the record at `version`.
    /// An empty tag means "whatever is current".
    pub fn matches(sent: &str, version: u64) -> bool {
        sent.is_empty() || Etag::parse(sent) == Some(Etag(version))
    }
}

impl fmt::Display for Etag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "v{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_etag_names_one_version_and_reads_back() {
        let tag = Etag::of_version(7).to_string();
        assert_eq!(tag, "v7");
        assert!(Etag::matches(&tag, 7));
        assert!(!Etag::matches(&tag, 8));
        assert!(Etag::matches("", 8), "empty means whatever is current");
        assert!(
            Etag::matches("7", 7),
            "a bare number from an earlier release"
        );
        assert!(!Etag::matches("v7x", 7));
        assert!(!Etag::matches("garbage", 7));
    }
}
