use std::{
    io::IsTerminal as _,
    sync::{Arc, Mutex, OnceLock, PoisonError},
    time::Duration,
};

use opentelemetry::{Key, KeyValue, global, trace::TracerProvider as _};
use opentelemetry_otlp::{
    ExporterBuildError, MetricExporter, SpanExporter, WithExportConfig as _, WithTonicConfig as _,
};
use opentelemetry_sdk::{
    Resource, metrics::SdkMeterProvider, propagation::TraceContextPropagator,
    trace::SdkTracerProvider,
};
use tracing_subscriber::{
    EnvFilter, Layer as _, Registry, filter::LevelFilter, layer::SubscriberExt as _,
};

use crate::{
    LogFormat, TelemetryConfig,
    component::{
        ComponentTagger, Exporters, RoutingExporter, add_meter_provider, component_of,
        has_meter_provider, service_name, take_meter_providers,
    },
    prometheus, tls,
};

const SERVICE_NAME: &str = "service.name";
const SERVICE_NAMESPACE: &str = "service.namespace";
const SERVICE_VERSION: &str = "service.version";
const SERVICE_INSTANCE_ID: &str = "service.instance.id";

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("telemetry.log_filter {filter:?} is not a valid filter: {source}")]
    Filter {
        filter: String,
        #[source]
        source: tracing_subscriber::filter::ParseError,
    },
    #[error("OTLP export to {endpoint} needs a Tokio runtime: call telemetry init inside one")]
    NoRuntime { endpoint: String },
    #[error("cannot build the OTLP exporter for {endpoint}: {source}")]
    Exporter {
        endpoint: String,
        #[source]
        source: ExporterBuildError,
    },
    #[error("telemetry.prometheus_addr {addr:?}: cannot listen: {source}")]
    Prometheus {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot read {variable} ({path}): {source}")]
    Certificate {
        variable: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("another global tracing subscriber is already installed")]
    SubscriberAlreadySet(#[source] tracing::subscriber::SetGlobalDefaultError),
}

/// Keeps the exporters running; dropping it flushes what is buffered and
/// stops export. Hold it for the life of the process.
#[must_use = "dropping the guard stops telemetry export"]
pub struct TelemetryGuard {
    tracer: Option<SdkTracerProvider>,
    /// Whether this guard shuts the components' meter providers down.
    meters: bool,
}

impl std::fmt::Debug for TelemetryGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryGuard")
            .field("exporting", &(self.tracer.is_some() || self.meters))
            .finish()
    }
}

/// Upper bound on the final flush, so a dead collector cannot hold up exit.
const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(tracer) = self.tracer.take()
            && let Err(e) = tracer.shutdown_with_timeout(SHUTDOWN_TIMEOUT)
        {
            tracing::warn!(error = %e, "flushing traces failed");
        }
        if std::mem::take(&mut self.meters) {
            for meter in take_meter_providers() {
                if let Err(e) = meter.shutdown_with_timeout(SHUTDOWN_TIMEOUT) {
                    tracing::warn!(error = %e, "flushing metrics failed");
                }
            }
        }
    }
}

fn log_filter(cfg: &TelemetryConfig) -> Result<EnvFilter, TelemetryError> {
    EnvFilter::try_new(&cfg.log_filter).map_err(|source| TelemetryError::Filter {
        filter: cfg.log_filter.clone(),
        source,
    })
}

static INITIALISED: Mutex<bool> = Mutex::new(false);

/// What [`register_component`] needs to give a component its exporters.
struct Export {
    /// Attributes every component's resource gets unless the environment
    /// (`OTEL_RESOURCE_ATTRIBUTES`) already sets them.
    defaults: Vec<KeyValue>,
    /// `service.name` prefix (`telemetry.service_name`).
    prefix: String,
    /// `OTEL_SERVICE_NAME` (or `service.name` in `OTEL_RESOURCE_ATTRIBUTES`).
    env_name: Option<String>,
    /// The endpoint the settings give, overriding the environment's.
    endpoint: Option<String>,
    traces: Option<Exporters>,
    metrics: bool,
    /// Whether the components' metrics are also read by the scrape endpoint.
    prometheus: bool,
    /// The runtime of [`init`]: every exporter's connection lives there,
    /// not on the runtime of whoever registers a component (a test suite's
    /// runtime ends before the final flush).
    runtime: Option<tokio::runtime::Handle>,
}

static EXPORT: OnceLock<Export> = OnceLock::new();

/// Whether `OTEL_<signal>_EXPORTER` turns the signal off.
fn turned_off(signal: &str) -> bool {
    std::env::var(format!("OTEL_{signal}_EXPORTER")).is_ok_and(|v| v.trim() == "none")
}

fn env_set(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.trim().is_empty())
}

/// Where a signal goes: the setting, else the OTLP environment variables
/// (which the exporter then reads itself, with their headers and timeouts).
fn exports(cfg_endpoint: Option<&str>, signal: &str) -> bool {
    !turned_off(signal)
        && (cfg_endpoint.is_some()
            || env_set("OTEL_EXPORTER_OTLP_ENDPOINT")
            || env_set(&format!("OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")))
}

/// The endpoint the exporter will use for `signal`, as the exporter itself
/// resolves it: the setting, the signal's variable, the generic one.
fn effective_endpoint(cfg_endpoint: Option<&str>, signal: &str) -> String {
    cfg_endpoint
        .map(str::to_owned)
        .or_else(|| std::env::var(format!("OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")).ok())
        .or_else(|| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok())
        .unwrap_or_default()
}

fn resource(export: &Export, component: Option<&str>) -> Resource {
    let name = match component {
        Some(c) => service_name(&export.prefix, export.env_name.as_deref(), c).into_owned(),
        None => export
            .env_name
            .clone()
            .unwrap_or_else(|| export.prefix.clone()),
    };
    Resource::builder()
        .with_attributes(export.defaults.iter().cloned())
        .with_service_name(name)
        .build()
}

fn span_exporter(export: &Export, component: Option<&str>) -> Result<SpanExporter, TelemetryError> {
    let endpoint = effective_endpoint(export.endpoint.as_deref(), "TRACES");
    let mut builder = SpanExporter::builder().with_tonic();
    if let Some(e) = &export.endpoint {
        builder = builder.with_endpoint(e);
    }
    if let Some(tls) = tls::client_config(&endpoint)? {
        builder = builder.with_tls_config(tls);
    }
    let mut exporter = builder
        .build()
        .map_err(|source| TelemetryError::Exporter { endpoint, source })?;
    opentelemetry_sdk::trace::SpanExporter::set_resource(
        &mut exporter,
        &resource(export, component),
    );
    Ok(exporter)
}

fn meter_provider(export: &Export, component: &str) -> Result<SdkMeterProvider, TelemetryError> {
    let resource = resource(export, Some(component));
    let mut provider = SdkMeterProvider::builder();
    if export.metrics {
        let endpoint = effective_endpoint(export.endpoint.as_deref(), "METRICS");
        let mut builder = MetricExporter::builder().with_tonic();
        if let Some(e) = &export.endpoint {
            builder = builder.with_endpoint(e);
        }
        if let Some(tls) = tls::client_config(&endpoint)? {
            builder = builder.with_tls_config(tls);
        }
        let exporter = builder
            .build()
            .map_err(|source| TelemetryError::Exporter { endpoint, source })?;
        provider = provider.with_periodic_exporter(exporter);
    }
    if export.prometheus {
        let name = resource
            .get(&Key::new(SERVICE_NAME))
            .map(|v| v.as_str().into_owned())
            .unwrap_or_default();
        provider = provider.with_reader(prometheus::reader(&name));
    }
    Ok(provider.with_resource(resource).build())
}

/// Where the Prometheus endpoint listens, once [`init`] started it.
static PROMETHEUS_ADDR: OnceLock<std::net::SocketAddr> = OnceLock::new();

/// The address of the Prometheus scrape endpoint (`telemetry.prometheus_addr`),
/// if it runs.
pub fn prometheus_addr() -> Option<std::net::SocketAddr> {
    PROMETHEUS_ADDR.get().copied()
}

/// Gives `component` (`leads`, or a served name such as
/// `crm.leads.v1.LeadService`) its own exporters, so that its spans and
/// metrics carry `service.name` `crm-<component>` (or `OTEL_SERVICE_NAME`).
/// Idempotent; a no-op when nothing is exported. Call it inside a Tokio
/// runtime, after [`init`]: [`crate::RpcTraceLayer`] and
/// [`crate::RpcClientLayer`] do.
pub fn register_component(component: &str) {
    let component = component_of(component);
    let Some(export) = EXPORT.get() else {
        return;
    };
    let _runtime = export.runtime.as_ref().map(tokio::runtime::Handle::enter);
    if let Some(exporters) = &export.traces {
        let known = exporters
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .contains_key(component);
        if !known {
            match span_exporter(export, Some(component)) {
                Ok(exporter) => {
                    exporters
                        .write()
                        .unwrap_or_else(PoisonError::into_inner)
                        .entry(component.to_owned())
                        .or_insert_with(|| Arc::new(exporter));
                }
                Err(e) => {
                    tracing::warn!(component, error = %e, "no trace export for this component")
                }
            }
        }
    }
    if (export.metrics || export.prometheus) && !has_meter_provider(component) {
        match meter_provider(export, component) {
            Ok(provider) => add_meter_provider(component, provider),
            Err(e) => tracing::warn!(component, error = %e, "no metric export for this component"),
        }
    }
}

/// Installs logging, tracing and metrics for the process.
///
/// Only the first successful call does anything; later calls (several tests
/// in one process) return a guard that owns nothing. Traces and metrics are
/// exported by OTLP/gRPC when `telemetry.otlp_endpoint` or the standard
/// `OTEL_EXPORTER_OTLP_ENDPOINT` (`_TRACES_ENDPOINT`, `_METRICS_ENDPOINT`)
/// is set; the exporter reads `OTEL_EXPORTER_OTLP_*` (headers, timeout,
/// compression) itself, the SDK `OTEL_TRACES_SAMPLER(_ARG)`,
/// `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_SERVICE_NAME`, `OTEL_BSP_*` and
/// `OTEL_METRIC_EXPORT_INTERVAL`. With export it must run inside a Tokio
/// runtime (the exporters use tonic).
pub fn init(cfg: &TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    let mut initialised = INITIALISED.lock().unwrap_or_else(PoisonError::into_inner);
    if *initialised {
        return Ok(TelemetryGuard {
            tracer: None,
            meters: false,
        });
    }

    let filter = log_filter(cfg)?;
    let cfg_endpoint = cfg.otlp_endpoint.as_deref().filter(|e| !e.is_empty());
    let traces = exports(cfg_endpoint, "TRACES");
    let metrics = exports(cfg_endpoint, "METRICS");
    let scrape = cfg.prometheus_addr.as_deref().filter(|a| !a.is_empty());
    if (traces || metrics || scrape.is_some()) && tokio::runtime::Handle::try_current().is_err() {
        return Err(TelemetryError::NoRuntime {
            endpoint: effective_endpoint(cfg_endpoint, "TRACES"),
        });
    }

    // The SDK's detectors read OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES;
    // without either, service.name is `unknown_service:…`.
    let detected = Resource::builder().build();
    let env_name = detected
        .get(&Key::new(SERVICE_NAME))
        .map(|v| v.as_str().into_owned())
        .filter(|n| !n.starts_with("unknown_service"));
    let defaults = [
        KeyValue::new(SERVICE_NAMESPACE, cfg.service_name.clone()),
        KeyValue::new(SERVICE_VERSION, env!("CARGO_PKG_VERSION")),
        KeyValue::new(
            SERVICE_INSTANCE_ID,
            uuid::Uuid::now_v7().hyphenated().to_string(),
        ),
    ]
    .into_iter()
    .filter(|kv| detected.get(&kv.key).is_none())
    .collect();
    let export = Export {
        defaults,
        prefix: cfg.service_name.clone(),
        env_name,
        endpoint: cfg_endpoint.map(str::to_owned),
        traces: traces.then(Exporters::default),
        metrics,
        prometheus: scrape.is_some(),
        runtime: tokio::runtime::Handle::try_current().ok(),
    };
    if let Some(addr) = scrape {
        let bound = std::net::TcpListener::bind(addr)
            .and_then(prometheus::spawn)
            .map_err(|source| TelemetryError::Prometheus {
                addr: addr.to_owned(),
                source,
            })?;
        let _ = PROMETHEUS_ADDR.set(bound);
        tracing::info!(addr = %bound, "metrics endpoint listening (GET /metrics)");
    }

    // Without export the provider still makes real span contexts (trace
    // ids for errors and forwarded calls); it just has nowhere to send them.
    let mut tracer_builder = SdkTracerProvider::builder().with_resource(resource(&export, None));
    if let Some(exporters) = &export.traces {
        let routing = RoutingExporter {
            exporters: Arc::clone(exporters),
            fallback: Arc::new(span_exporter(&export, None)?),
        };
        tracer_builder = tracer_builder
            .with_span_processor(ComponentTagger)
            .with_batch_exporter(routing);
    }
    let tracer_provider = tracer_builder.build();
    let tracer = tracer_provider.tracer("crm");

    let json = match cfg.log_format {
        LogFormat::Auto => !std::io::stdout().is_terminal(),
        LogFormat::Json => true,
        LogFormat::Text => false,
    };
    let fmt_layer: Box<dyn tracing_subscriber::Layer<Registry> + Send + Sync> = if json {
        Box::new(
            tracing_subscriber::fmt::layer()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false),
        )
    } else {
        Box::new(tracing_subscriber::fmt::layer())
    };
    // The log filter must not decide which spans exist: a quiet log level
    // would otherwise drop the RPC spans and with them trace propagation.
    let subscriber = Registry::default()
        .with(fmt_layer.with_filter(filter))
        .with(
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(LevelFilter::INFO),
        );
    tracing::subscriber::set_global_default(subscriber)
        .map_err(TelemetryError::SubscriberAlreadySet)?;

    global::set_text_map_propagator(TraceContextPropagator::new());
    global::set_tracer_provider(tracer_provider.clone());
    let exporting = export.traces.is_some();
    let metered = export.metrics || export.prometheus;
    // Only the first call gets here, so the cell is empty.
    let _ = EXPORT.set(export);
    *initialised = true;

    Ok(TelemetryGuard {
        tracer: exporting.then_some(tracer_provider),
        meters: metered,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_filter_is_refused_naming_the_key() {
        let cfg = TelemetryConfig {
            log_filter: "info,crm=loud".to_owned(),
            ..TelemetryConfig::default()
        };
        let err = log_filter(&cfg)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("telemetry.log_filter"), "{err}");
    }

    #[test]
    fn init_twice_is_harmless() {
        let first = init(&TelemetryConfig::default());
        let second = init(&TelemetryConfig::default());
        assert!(first.is_ok() && second.is_ok());
    }
}
