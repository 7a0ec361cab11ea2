//! Per-component identity: each component of the suite (gateway, leads,
//! opportunities, …) exports its spans and metrics under its own
//! `service.name`, also when several run in one process (`crm serve`).
//!
//! How: the OpenTelemetry context of every RPC span (server and client)
//! carries a [`Component`] value, which child spans inherit with the rest
//! of the context. A span processor copies it onto each span as the
//! attribute `crm.component` when the span starts; the exporter takes that
//! attribute off again and sends each component's spans with that
//! component's resource. Metrics are simpler: each component has a meter
//! provider of its own (see [`meter`]).

use std::{
    borrow::Cow,
    collections::BTreeMap,
    sync::{Arc, Mutex, PoisonError, RwLock},
    time::Duration,
};

use opentelemetry::{Context, KeyValue, Value, global, metrics::Meter, trace::Span as _};
use opentelemetry_sdk::{
    Resource,
    error::OTelSdkResult,
    metrics::SdkMeterProvider,
    trace::{Span, SpanData, SpanExporter, SpanProcessor},
};

/// The attribute that carries a span's component from start to export; it
/// never leaves the process.
const COMPONENT_KEY: &str = "crm.component";

/// The component an OpenTelemetry context belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component(pub Arc<str>);

/// The component of a served gRPC name: `crm.leads.v1.LeadService` and
/// `leads` are both `leads`.
pub fn component_of(name: &str) -> &str {
    name.strip_prefix("crm.")
        .and_then(|rest| rest.split('.').next())
        .unwrap_or(name)
}

/// `cx` marked as belonging to `component`.
pub(crate) fn with_component(cx: Context, component: &Arc<str>) -> Context {
    cx.with_value(Component(Arc::clone(component)))
}

/// Copies the context's [`Component`] onto each span as it starts.
#[derive(Debug)]
pub(crate) struct ComponentTagger;

impl SpanProcessor for ComponentTagger {
    fn on_start(&self, span: &mut Span, cx: &Context) {
        if let Some(component) = cx.get::<Component>() {
            span.set_attribute(KeyValue::new(
                COMPONENT_KEY,
                Value::String(component.0.to_string().into()),
            ));
        }
    }

    fn on_end(&self, _span: SpanData) {}

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn shutdown_with_timeout(&self, _timeout: Duration) -> OTelSdkResult {
        Ok(())
    }
}

/// An exporter per component, each with its component's resource, and one
/// for spans of no component (the process's own name).
pub(crate) type Exporters = Arc<RwLock<BTreeMap<String, Arc<opentelemetry_otlp::SpanExporter>>>>;

/// The span exporter of the process: sends each span to the exporter of its
/// component.
#[derive(Debug)]
pub(crate) struct RoutingExporter {
    pub(crate) exporters: Exporters,
    /// The exporter for spans without a (known) component.
    pub(crate) fallback: Arc<opentelemetry_otlp::SpanExporter>,
}

fn take_component(span: &mut SpanData) -> Option<String> {
    let at = span
        .attributes
        .iter()
        .position(|kv| kv.key.as_str() == COMPONENT_KEY)?;
    let kv = span.attributes.swap_remove(at);
    Some(kv.value.as_str().into_owned())
}

impl SpanExporter for RoutingExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let mut groups: BTreeMap<Option<String>, Vec<SpanData>> = BTreeMap::new();
        for mut span in batch {
            let component = take_component(&mut span);
            groups.entry(component).or_default().push(span);
        }
        let mut failure = None;
        for (component, spans) in groups {
            let exporter = component
                .and_then(|c| {
                    self.exporters
                        .read()
                        .unwrap_or_else(PoisonError::into_inner)
                        .get(&c)
                        .cloned()
                })
                .unwrap_or_else(|| Arc::clone(&self.fallback));
            // One component's failure does not keep the others' spans back.
            if let Err(e) = exporter.export(spans).await {
                failure = Some(e);
            }
        }
        failure.map_or(Ok(()), Err)
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        let exporters: Vec<_> = self
            .exporters
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect();
        let mut failure = None;
        for exporter in exporters.iter().chain([&self.fallback]) {
            if let Err(e) = exporter.shutdown_with_timeout(timeout) {
                failure = Some(e);
            }
        }
        failure.map_or(Ok(()), Err)
    }

    fn force_flush(&self) -> OTelSdkResult {
        Ok(())
    }

    fn set_resource(&mut self, _resource: &Resource) {
        // Each inner exporter has its component's resource already.
    }
}

/// Meter providers by component; empty when metrics are not exported.
static METERS: Mutex<BTreeMap<String, SdkMeterProvider>> = Mutex::new(BTreeMap::new());

pub(crate) fn add_meter_provider(component: &str, provider: SdkMeterProvider) {
    METERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .entry(component.to_owned())
        .or_insert(provider);
}

pub(crate) fn has_meter_provider(component: &str) -> bool {
    METERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .contains_key(component)
}

pub(crate) fn take_meter_providers() -> Vec<SdkMeterProvider> {
    std::mem::take(&mut *METERS.lock().unwrap_or_else(PoisonError::into_inner))
        .into_values()
        .collect()
}

/// The meter of `component` (`leads`, `crm.leads`, `crm.leads.v1.LeadService`),
/// registering it (see [`crate::register_component`]), so that its
/// instruments are exported under its own `service.name`; the global meter
/// (a no-op unless someone installed one) when nothing is exported.
pub fn meter(component: &str) -> Meter {
    let component = component_of(component);
    crate::register_component(component);
    METERS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .get(component)
        .map_or_else(
            || global::meter("crm"),
            |provider| opentelemetry::metrics::MeterProvider::meter(provider, "crm"),
        )
}

/// The `service.name` a component's telemetry carries.
pub(crate) fn service_name<'a>(
    prefix: &str,
    env_name: Option<&'a str>,
    component: &str,
) -> Cow<'a, str> {
    match env_name {
        Some(name) => Cow::Borrowed(name),
        None => Cow::Owned(format!("{prefix}-{component}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_of_served_names() {
        assert_eq!(component_of("crm.leads.v1.LeadService"), "leads");
        assert_eq!(component_of("gateway"), "gateway");
        assert_eq!(component_of("leads"), "leads");
    }

    #[test]
    fn the_environment_name_wins_over_the_component_name() {
        assert_eq!(service_name("crm", None, "leads"), "crm-leads");
        assert_eq!(service_name("crm", Some("mine"), "leads"), "mine");
    }
}
