//! Small gRPC-over-HTTP/2 helpers shared by the server stack and the gateway.

use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use tonic::{Code, Status, body::Body};
use tonic_types::{ErrorDetails, StatusExt as _};

/// The `grpc-timeout` request header.
pub const GRPC_TIMEOUT: &str = "grpc-timeout";

/// A status carrying the `ErrorInfo` that every error of the suite has.
pub fn error_status(code: Code, message: impl Into<String>, reason: &str, domain: &str) -> Status {
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(reason, domain, std::collections::HashMap::new()),
    )
}

/// A trailers-only gRPC response for `status`.
pub fn error_response(status: Status) -> http::Response<Body> {
    status.into_http()
}

/// The trailers that end a response whose headers were already sent.
pub fn status_trailers(status: &Status) -> HeaderMap {
    let mut trailers = HeaderMap::new();
    if status.add_header(&mut trailers).is_err() {
        // Only a message that cannot be a header value gets here.
        trailers.insert(Status::GRPC_STATUS, HeaderValue::from(status.code() as i32));
    }
    trailers
}

/// Parses a `grpc-timeout` value: up to 8 digits and a unit (H, M, S, m, u, n).
pub fn parse_grpc_timeout(value: &HeaderValue) -> Option<Duration> {
    let text = value.to_str().ok()?;
    if text.len() < 2 || text.len() > 9 {
        return None;
    }
    let (digits, unit) = text.split_at(text.len() - 1);
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    Some(match unit {
        "H" => Duration::from_secs(n.checked_mul(3600)?),
        "M" => Duration::from_secs(n.checked_mul(60)?),
        "S" => Duration::from_secs(n),
        "m" => Duration::from_millis(n),
        "u" => Duration::from_micros(n),
        "n" => Duration::from_nanos(n),
        _ => return None,
    })
}

/// Encodes `d` as a `grpc-timeout` value, rounding up to the finest unit
/// that fits in the 8 digits the protocol allows (never shorter than `d`,
/// so a budget is not cut by encoding; at most one unit longer).
pub fn encode_grpc_timeout(d: Duration) -> HeaderValue {
    const MAX: u128 = 99_999_999;
    let nanos = d.as_nanos();
    let units: [(u128, &str); 6] = [
        (1, "n"),
        (1_000, "u"),
        (1_000_000, "m"),
        (1_000_000_000, "S"),
        (60_000_000_000, "M"),
        (3_600_000_000_000, "H"),
    ];
    for (per, unit) in units {
        let n = nanos.div_ceil(per);
        if n <= MAX {
            return HeaderValue::from_str(&format!("{n}{unit}"))
                .unwrap_or(HeaderValue::from_static("99999999H"));
        }
    }
    HeaderValue::from_static("99999999H")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn parses_every_unit() {
        let p = |s: &'static str| parse_grpc_timeout(&HeaderValue::from_static(s));
        assert_eq!(p("2H"), Some(Duration::from_secs(7200)));
        assert_eq!(p("3M"), Some(Duration::from_secs(180)));
        assert_eq!(p("10S"), Some(Duration::from_secs(10)));
        assert_eq!(p("250m"), Some(Duration::from_millis(250)));
        assert_eq!(p("7u"), Some(Duration::from_micros(7)));
        assert_eq!(p("9n"), Some(Duration::from_nanos(9)));
        assert_eq!(p("123456789m"), None, "more than 8 digits");
        assert_eq!(p("10"), None);
        assert_eq!(p("-1S"), None);
        assert_eq!(p("1x"), None);
    }

    #[test]
    fn encoding_never_shortens_the_budget() {
        for d in [
            Duration::from_nanos(1),
            Duration::from_millis(1500),
            Duration::from_secs(30),
            Duration::new(12, 345_678_901),
            Duration::from_secs(400 * 24 * 3600),
        ] {
            let encoded = encode_grpc_timeout(d);
            let back = parse_grpc_timeout(&encoded).unwrap();
            assert!(back >= d, "{d:?} encoded as {encoded:?}");
        }
        assert_eq!(encode_grpc_timeout(Duration::from_millis(1500)), "1500000u");
    }
}
