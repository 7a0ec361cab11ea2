//! TLS for OTLP export to an `https://` collector: the public web roots,
//! plus the collector's CA from `OTEL_EXPORTER_OTLP_CERTIFICATE` and a client
//! certificate from `OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE` /
//! `OTEL_EXPORTER_OTLP_CLIENT_KEY` (mTLS), as the OTLP exporter
//! specification names them.

use tonic::transport::{Certificate, ClientTlsConfig, Identity};

use crate::TelemetryError;

fn read(var: &str) -> Result<Option<Vec<u8>>, TelemetryError> {
    let Some(path) = std::env::var(var).ok().filter(|p| !p.trim().is_empty()) else {
        return Ok(None);
    };
    std::fs::read(&path)
        .map(Some)
        .map_err(|source| TelemetryError::Certificate {
            variable: var.to_owned(),
            path,
            source,
        })
}

/// The TLS settings for `endpoint`: some for `https://`, none otherwise.
pub(crate) fn client_config(endpoint: &str) -> Result<Option<ClientTlsConfig>, TelemetryError> {
    if !endpoint.trim_start().starts_with("https://") {
        return Ok(None);
    }
    let mut tls = ClientTlsConfig::new().with_enabled_roots();
    if let Some(ca) = read("OTEL_EXPORTER_OTLP_CERTIFICATE")? {
        tls = tls.ca_certificate(Certificate::from_pem(ca));
    }
    if let (Some(cert), Some(key)) = (
        read("OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE")?,
        read("OTEL_EXPORTER_OTLP_CLIENT_KEY")?,
    ) {
        tls = tls.identity(Identity::from_pem(cert, key));
    }
    Ok(Some(tls))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_endpoints_get_tls() {
        assert!(matches!(client_config("http://collector:4317"), Ok(None)));
        assert!(matches!(
            client_config("https://collector:4317"),
            Ok(Some(_))
        ));
    }
}
