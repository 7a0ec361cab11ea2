//! The Prometheus scrape endpoint (`telemetry.prometheus_addr`): `GET
//! /metrics` answers with every component's metrics in the Prometheus text
//! format (0.0.4), read from the SDK at scrape time, named as
//! OpenTelemetry's Prometheus compatibility rules say
//! (`rpc.server.call.duration` in `s` → `rpc_server_call_duration_seconds`,
//! counters `_total`), each sample labelled with its `service_name`.

use std::{
    collections::BTreeMap,
    fmt::Write as _,
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError, Weak},
    time::Duration,
};

use opentelemetry::KeyValue;
use opentelemetry_sdk::{
    error::OTelSdkResult,
    metrics::{
        InstrumentKind, ManualReader, Pipeline, Temporality,
        data::{AggregatedMetrics, Metric, MetricData, ResourceMetrics},
        reader::MetricReader,
    },
};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

/// A reader the meter provider owns and the endpoint reads.
#[derive(Debug, Clone)]
pub(crate) struct SharedReader(Arc<ManualReader>);

impl MetricReader for SharedReader {
    fn register_pipeline(&self, pipeline: Weak<Pipeline>) {
        self.0.register_pipeline(pipeline);
    }

    fn collect(&self, rm: &mut ResourceMetrics) -> OTelSdkResult {
        self.0.collect(rm)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.0.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.0.shutdown_with_timeout(timeout)
    }

    fn temporality(&self, kind: InstrumentKind) -> Temporality {
        self.0.temporality(kind)
    }
}

/// The readers of the components, by `service.name`.
static READERS: Mutex<Vec<(String, SharedReader)>> = Mutex::new(Vec::new());

/// A new reader for the component exported as `service_name`.
pub(crate) fn reader(service_name: &str) -> SharedReader {
    let reader = SharedReader(Arc::new(ManualReader::builder().build()));
    READERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push((service_name.to_owned(), reader.clone()));
    reader
}

/// A metric or label name as Prometheus allows it.
fn sanitize(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// The unit suffix of OpenTelemetry's Prometheus compatibility rules, for
/// the units the suite uses (annotations in braces add nothing).
fn unit_suffix(unit: &str) -> &'static str {
    match unit {
        "s" => "_seconds",
        "ms" => "_milliseconds",
        "By" => "_bytes",
        _ => "",
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn labels<'a>(
    service: &str,
    attributes: impl Iterator<Item = &'a KeyValue>,
    extra: Option<(&str, String)>,
) -> String {
    let mut out = format!("service_name=\"{}\"", escape(service));
    for kv in attributes {
        let _ = write!(
            out,
            ",{}=\"{}\"",
            sanitize(kv.key.as_str()),
            escape(&kv.value.as_str())
        );
    }
    if let Some((key, value)) = extra {
        let _ = write!(out, ",{key}=\"{value}\"");
    }
    out
}

/// One metric family: its type, help, and sample lines.
#[derive(Default)]
struct Family {
    kind: &'static str,
    help: String,
    samples: Vec<String>,
}

fn number(value: impl Into<f64>) -> String {
    let v: f64 = value.into();
    if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_owned()
    } else {
        v.to_string()
    }
}

trait AsF64: Copy {
    fn as_f64(self) -> f64;
}
impl AsF64 for u64 {
    #[allow(clippy::cast_precision_loss)]
    fn as_f64(self) -> f64 {
        self as f64
    }
}
impl AsF64 for i64 {
    #[allow(clippy::cast_precision_loss)]
    fn as_f64(self) -> f64 {
        self as f64
    }
}
impl AsF64 for f64 {
    fn as_f64(self) -> f64 {
        self
    }
}

fn add<T: AsF64>(
    families: &mut BTreeMap<String, Family>,
    service: &str,
    metric: &Metric,
    data: &MetricData<T>,
) {
    let base = format!("{}{}", sanitize(metric.name()), unit_suffix(metric.unit()));
    let help = metric.description().replace('\n', " ");
    match data {
        MetricData::Gauge(gauge) => {
            let f = families.entry(base.clone()).or_default();
            (f.kind, f.help) = ("gauge", help);
            for p in gauge.data_points() {
                f.samples.push(format!(
                    "{base}{{{}}} {}",
                    labels(service, p.attributes(), None),
                    number(p.value().as_f64())
                ));
            }
        }
        MetricData::Sum(sum) => {
            let (name, kind) = if sum.is_monotonic() {
                (format!("{base}_total"), "counter")
            } else {
                (base, "gauge")
            };
            let f = families.entry(name.clone()).or_default();
            (f.kind, f.help) = (kind, help);
            for p in sum.data_points() {
                f.samples.push(format!(
                    "{name}{{{}}} {}",
                    labels(service, p.attributes(), None),
                    number(p.value().as_f64())
                ));
            }
        }
        MetricData::Histogram(histogram) => {
            let f = families.entry(base.clone()).or_default();
            (f.kind, f.help) = ("histogram", help);
            for p in histogram.data_points() {
                let mut cumulative = 0u64;
                let bounds: Vec<f64> = p.bounds().collect();
                for (i, count) in p.bucket_counts().enumerate() {
                    cumulative += count;
                    let le = bounds
                        .get(i)
                        .map_or_else(|| "+Inf".to_owned(), |b| number(*b));
                    f.samples.push(format!(
                        "{base}_bucket{{{}}} {cumulative}",
                        labels(service, p.attributes(), Some(("le", le)))
                    ));
                }
                let l = labels(service, p.attributes(), None);
                f.samples
                    .push(format!("{base}_sum{{{l}}} {}", number(p.sum().as_f64())));
                f.samples.push(format!("{base}_count{{{l}}} {}", p.count()));
            }
        }
        // The suite makes no exponential histograms.
        MetricData::ExponentialHistogram(_) => {}
    }
}

/// Every component's metrics, now, in the Prometheus text format.
pub(crate) fn render() -> String {
    let readers = READERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let mut families: BTreeMap<String, Family> = BTreeMap::new();
    for (service, reader) in readers {
        let mut rm = ResourceMetrics::default();
        if reader.collect(&mut rm).is_err() {
            continue;
        }
        for metric in rm.scope_metrics().flat_map(|sm| sm.metrics()) {
            match metric.data() {
                AggregatedMetrics::F64(d) => add(&mut families, &service, metric, d),
                AggregatedMetrics::U64(d) => add(&mut families, &service, metric, d),
                AggregatedMetrics::I64(d) => add(&mut families, &service, metric, d),
            }
        }
    }
    let mut out = String::new();
    for (name, family) in families {
        let _ = writeln!(out, "# HELP {name} {}", family.help);
        let _ = writeln!(out, "# TYPE {name} {}", family.kind);
        for sample in family.samples {
            let _ = writeln!(out, "{sample}");
        }
    }
    out
}

/// The longest request head read; a scrape's is a few hundred bytes.
const MAX_REQUEST: usize = 8 * 1024;

async fn answer(mut stream: tokio::net::TcpStream) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < MAX_REQUEST {
        match tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => head.extend_from_slice(&buf[..n]),
            _ => return,
        }
    }
    let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
    let (status, body) = if line.starts_with(b"GET /metrics ") || line.starts_with(b"GET /metrics?")
    {
        ("200 OK", render())
    } else {
        ("404 Not Found", "GET /metrics\n".to_owned())
    };
    let response = format!(
        "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.write_all(response.as_bytes()).await;
    let _ = stream.shutdown().await;
}

/// Serves `/metrics` on `listener` for the life of the runtime.
pub(crate) fn spawn(listener: std::net::TcpListener) -> std::io::Result<SocketAddr> {
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    tokio::spawn(answer(stream));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the metrics endpoint cannot accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    });
    Ok(addr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_prometheus_rules() {
        assert_eq!(
            sanitize("rpc.server.call.duration"),
            "rpc_server_call_duration"
        );
        assert_eq!(sanitize("9lives"), "_9lives");
        assert_eq!(unit_suffix("s"), "_seconds");
        assert_eq!(unit_suffix("{call}"), "");
        assert_eq!(escape("a\"b\\c"), "a\\\"b\\\\c");
    }
}
