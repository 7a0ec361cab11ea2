use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::{
    Context,
    propagation::{Extractor, Injector, TextMapPropagator as _},
    trace::TraceContextExt as _,
};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

const TRACEPARENT: &str = "traceparent";
const TRACESTATE: &str = "tracestate";

/// W3C Trace Context: at most 32 list members in a `tracestate`...
const MAX_TRACESTATE_MEMBERS: usize = 32;
/// ...and the 512 characters every vendor must pass on; anything longer is
/// dropped whole rather than cut, so no half member is ever forwarded.
const MAX_TRACESTATE_LEN: usize = 512;
/// A `traceparent` of a future version may carry more fields after the four
/// of version 00; beyond this it is not a trace context but a payload.
const MAX_TRACEPARENT_LEN: usize = 512;
/// `00-` + 32 + `-` + 16 + `-` + 2.
const TRACEPARENT_V00_LEN: usize = 55;

struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(name, value);
        }
    }
}

/// The two W3C headers, already checked.
struct Checked<'a> {
    traceparent: Option<&'a str>,
    tracestate: Option<&'a str>,
}

impl Extractor for Checked<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        match key {
            TRACEPARENT => self.traceparent,
            TRACESTATE => self.tracestate,
            _ => None,
        }
    }

    fn keys(&self) -> Vec<&str> {
        vec![TRACEPARENT, TRACESTATE]
    }
}

/// Writes the current span's W3C trace context (`traceparent`,
/// `tracestate`) into `headers`, replacing what was there. Without a current
/// span nothing is written, so a context the headers already carry survives.
pub fn inject_trace_context(headers: &mut HeaderMap) {
    let cx = tracing::Span::current().context();
    // W3C is the suite's one format; using it directly (rather than the
    // global propagator) keeps propagation working before or without `init`.
    TraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(headers));
}

/// The current span's W3C `traceparent` and `tracestate`, each empty when
/// there is none or it fails the checks of [`extract_trace_context`]: what
/// is stored with an event for others to continue.
pub fn current_trace_context() -> (String, String) {
    let mut headers = HeaderMap::new();
    inject_trace_context(&mut headers);
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let traceparent = get(TRACEPARENT)
        .and_then(traceparent_v00)
        .unwrap_or_default();
    let tracestate = if traceparent.is_empty() {
        ""
    } else {
        get(TRACESTATE)
            .filter(|s| valid_tracestate(s))
            .unwrap_or_default()
    };
    (traceparent.to_owned(), tracestate.to_owned())
}

/// The W3C trace context carried by `headers` (empty when there is none).
///
/// Headers come from callers, so they are checked to the letter of W3C
/// Trace Context before anything continues them: a `traceparent` that is not
/// exactly version, 32 and 16 lower-case hex digits and flags is ignored
/// (the call starts a trace of its own); a `tracestate` of more than 32
/// members or 512 characters, with a malformed key or value or a repeated
/// key, is dropped whole while the `traceparent` is kept.
pub fn extract_trace_context(headers: &HeaderMap) -> Context {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let traceparent = get(TRACEPARENT).and_then(traceparent_v00);
    let tracestate = traceparent
        .and(get(TRACESTATE))
        .filter(|s| valid_tracestate(s));
    if traceparent.is_none() {
        return Context::new();
    }
    TraceContextPropagator::new().extract(&Checked {
        traceparent,
        tracestate,
    })
}

/// The version 00 form of a well-formed `traceparent`: a future version's
/// extra fields are left off, as W3C asks of a version 00 reader.
fn traceparent_v00(value: &str) -> Option<&str> {
    let value = value.trim_matches([' ', '\t']);
    if value.len() < TRACEPARENT_V00_LEN || value.len() > MAX_TRACEPARENT_LEN {
        return None;
    }
    let head = value.get(..TRACEPARENT_V00_LEN)?;
    let rest = value.get(TRACEPARENT_V00_LEN..)?;
    let mut parts = head.split('-');
    let (version, trace_id, span_id, flags) =
        (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let zero = |s: &str| s.bytes().all(|b| b == b'0');
    let well_formed = parts.next().is_none()
        && hex(version, 2)
        && version != "ff"
        && hex(trace_id, 32)
        && !zero(trace_id)
        && hex(span_id, 16)
        && !zero(span_id)
        && hex(flags, 2)
        // Version 00 has exactly four fields; a later one may add more.
        && (rest.is_empty() || (version != "00" && rest.starts_with('-')));
    well_formed.then_some(head)
}

/// A `tracestate` within W3C's bounds: at most 32 members, 512 characters,
/// each member `key=value` with a well-formed key used once and a value of
/// printable ASCII without `,` or `=` that does not end in a space.
fn valid_tracestate(value: &str) -> bool {
    if value.len() > MAX_TRACESTATE_LEN {
        return false;
    }
    let mut keys: Vec<&str> = Vec::new();
    for member in value.split(',') {
        let member = member.trim_matches([' ', '\t']);
        if member.is_empty() {
            continue;
        }
        let Some((key, value)) = member.split_once('=') else {
            return false;
        };
        if !valid_key(key) || !valid_value(value) || keys.contains(&key) {
            return false;
        }
        keys.push(key);
        if keys.len() > MAX_TRACESTATE_MEMBERS {
            return false;
        }
    }
    true
}

/// `simple-key` or `tenant-id@system-id` (W3C Trace Context level 2).
fn valid_key(key: &str) -> bool {
    let allowed = |b: u8| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'-' | b'*' | b'/')
    };
    let starts_well = |s: &str| {
        s.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    match key.split_once('@') {
        None => key.len() <= 256 && starts_well(key) && key.bytes().all(allowed),
        Some((tenant, system)) => {
            tenant.len() <= 241
                && system.len() <= 14
                && starts_well(tenant)
                && system
                    .bytes()
                    .next()
                    .is_some_and(|b| b.is_ascii_lowercase())
                && tenant.bytes().all(allowed)
                && system.bytes().all(allowed)
        }
    }
}

fn valid_value(value: &str) -> bool {
    (1..=256).contains(&value.len())
        && value
            .bytes()
            .all(|b| (0x20..=0x7e).contains(&b) && b != b',' && b != b'=')
        && !value.ends_with(' ')
}

/// The hex trace id of the current span, to quote in INTERNAL errors so an
/// operator can find the trace and its logs.
pub fn current_trace_id() -> Option<String> {
    let cx = tracing::Span::current().context();
    let span = cx.span();
    let span_context = span.span_context();
    span_context
        .is_valid()
        .then(|| span_context.trace_id().to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn extracted(traceparent: &str, tracestate: Option<&str>) -> (String, String) {
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(traceparent) {
            headers.insert(TRACEPARENT, v);
        }
        if let Some(v) = tracestate.and_then(|s| HeaderValue::from_str(s).ok()) {
            headers.insert(TRACESTATE, v);
        }
        let cx = extract_trace_context(&headers);
        let mut out = HeaderMap::new();
        TraceContextPropagator::new().inject_context(&cx, &mut HeaderInjector(&mut out));
        let get = |n: &str| {
            out.get(n)
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default()
        };
        (get(TRACEPARENT), get(TRACESTATE))
    }

    #[test]
    fn a_well_formed_context_is_continued() {
        assert_eq!(
            extracted(PARENT, Some("congo=t61rcWkgMzE,rojo=00f067aa0ba902b7")),
            (
                PARENT.to_owned(),
                "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7".to_owned()
            )
        );
        // A later version's extra fields are left off.
        let future = "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-ever";
        assert_eq!(extracted(future, None).0, PARENT);
    }

    #[test]
    fn a_sloppy_traceparent_is_ignored() {
        for bad in [
            "00-1-1-01",
            "00-+bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        ] {
            assert_eq!(
                extracted(bad, Some("a=b")),
                (String::new(), String::new()),
                "{bad}"
            );
        }
        let huge = format!(
            "cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-{}",
            "x".repeat(600)
        );
        assert_eq!(extracted(&huge, None).0, "");
    }

    #[test]
    fn an_unbounded_or_malformed_tracestate_is_dropped_and_the_parent_kept() {
        let many = (0..33)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join(",");
        let long = (0..10)
            .map(|i| format!("k{i}={}", "v".repeat(60)))
            .collect::<Vec<_>>()
            .join(",");
        assert!(long.len() > MAX_TRACESTATE_LEN);
        for bad in [
            many.as_str(),
            long.as_str(),
            "Upper=1",
            "a=1,a=2",
            "a=",
            "a=b,novalue",
            "a@b@c=1",
            "a@Sys=1",
            "a=tab\there",
        ] {
            assert_eq!(
                extracted(PARENT, Some(bad)),
                (PARENT.to_owned(), String::new()),
                "{bad}"
            );
        }
        let most = (0..32)
            .map(|i| format!("k{i}=v"))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(extracted(PARENT, Some(&most)).1, most);
        assert_eq!(extracted(PARENT, Some("t@sys=1, b=2 ,")).1, "t@sys=1,b=2");
    }
}
