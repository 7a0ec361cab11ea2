use std::{
    io::IsTerminal as _,
    sync::{Mutex, PoisonError},
    time::Duration,
};

use opentelemetry::{global, trace::TracerProvider as _};
use opentelemetry_otlp::{ExporterBuildError, MetricExporter, SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::{
    Resource, metrics::SdkMeterProvider, propagation::TraceContextPropagator,
    trace::SdkTracerProvider,
};
use tracing_subscriber::{
    EnvFilter, Layer as _, Registry, filter::LevelFilter, layer::SubscriberExt as _,
};

use crate::{LogFormat, TelemetryConfig};

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
    #[error("another global tracing subscriber is already installed")]
    SubscriberAlreadySet(#[source] tracing::subscriber::SetGlobalDefaultError),
}

/// Keeps the exporters running; dropping it flushes what is buffered and
/// stops export. Hold it for the life of the process.
#[must_use = "dropping the guard stops telemetry export"]
pub struct TelemetryGuard {
    tracer: Option<SdkTracerProvider>,
    meter: Option<SdkMeterProvider>,
}

impl std::fmt::Debug for TelemetryGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryGuard")
            .field("exporting", &self.tracer.is_some())
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
        if let Some(meter) = self.meter.take()
            && let Err(e) = meter.shutdown_with_timeout(SHUTDOWN_TIMEOUT)
        {
            tracing::warn!(error = %e, "flushing metrics failed");
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

/// Installs logging, tracing and metrics for the process.
///
/// Only the first successful call does anything; later calls (several tests
/// in one process, several services in `crm serve`) return a guard that owns
/// nothing. With an OTLP endpoint it must run inside a Tokio runtime (the
/// exporters use tonic).
pub fn init(cfg: &TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    let mut initialised = INITIALISED.lock().unwrap_or_else(PoisonError::into_inner);
    if *initialised {
        return Ok(TelemetryGuard {
            tracer: None,
            meter: None,
        });
    }

    let filter = log_filter(cfg)?;
    let resource = Resource::builder()
        .with_service_name(cfg.service_name.clone())
        .build();

    // Without an endpoint the provider still makes real span contexts (trace
    // ids for errors and forwarded calls); it just has nowhere to send them.
    let mut tracer_builder = SdkTracerProvider::builder().with_resource(resource.clone());
    let mut meter_provider = None;
    let endpoint = cfg.otlp_endpoint.as_deref().filter(|e| !e.is_empty());
    if let Some(endpoint) = endpoint {
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(TelemetryError::NoRuntime {
                endpoint: endpoint.to_owned(),
            });
        }
        let exporter_error = |source| TelemetryError::Exporter {
            endpoint: endpoint.to_owned(),
            source,
        };
        let spans = SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .map_err(exporter_error)?;
        let metrics = MetricExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .map_err(exporter_error)?;
        tracer_builder = tracer_builder.with_batch_exporter(spans);
        meter_provider = Some(
            SdkMeterProvider::builder()
                .with_resource(resource)
                .with_periodic_exporter(metrics)
                .build(),
        );
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
    if let Some(meter) = &meter_provider {
        global::set_meter_provider(meter.clone());
    }
    *initialised = true;

    Ok(TelemetryGuard {
        tracer: endpoint.map(|_| tracer_provider),
        meter: meter_provider,
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
