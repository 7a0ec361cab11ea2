//! TLS by configuration: a component's listener (`server.tls`, with mutual
//! TLS when a client CA is set) and its calls to other components
//! (`client.tls`, used for every `https://` URL).
//!
//! Files are read and checked once, at start-up: a restart reloads them
//! (with cert-manager, roll the deployments after a renewal).

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject as _};
use serde::{Deserialize, Serialize};
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity, ServerTlsConfig};

/// A TLS setting that cannot be used, naming its key.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{key}: cannot read {path}: {source}")]
    Read {
        key: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{key}: {path} is not a {what} in PEM: {reason}")]
    Parse {
        key: String,
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    #[error("{cert_key} and {key_key} do not make a usable pair: {reason}")]
    Pair {
        cert_key: String,
        key_key: String,
        reason: String,
    },
    #[error("{0}")]
    Incomplete(String),
    #[error("{key}: {reason}")]
    Endpoint { key: String, reason: String },
}

/// The `[server.tls]` section: TLS on this component's listener (the
/// gateway's and every service's). Unset: plaintext (TLS at the edge or
/// in a mesh).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerTls {
    /// The certificate chain (PEM), leaf first.
    pub cert_file: Option<PathBuf>,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
    /// Mutual TLS: clients must present a certificate signed by one of
    /// these CAs (PEM); unset, no client certificate is asked for.
    pub client_ca_file: Option<PathBuf>,
}

impl ServerTls {
    /// The listener's TLS, files read and checked; `None` when off.
    /// `handshake_timeout` bounds the TLS handshake.
    pub fn load(&self, handshake_timeout: Duration) -> Result<Option<ServerTlsConfig>, TlsError> {
        let (cert_file, key_file) = match (&self.cert_file, &self.key_file) {
            (None, None) if self.client_ca_file.is_none() => return Ok(None),
            (Some(cert), Some(key)) => (cert, key),
            _ => {
                return Err(TlsError::Incomplete(
                    "server.tls: cert_file and key_file go together (client_ca_file needs both)"
                        .into(),
                ));
            }
        };
        let identity = identity(
            "server.tls.cert_file",
            cert_file,
            "server.tls.key_file",
            key_file,
        )?;
        let mut config = ServerTlsConfig::new()
            .identity(identity)
            .timeout(handshake_timeout);
        if let Some(ca) = &self.client_ca_file {
            config = config.client_ca_root(ca_certificate("server.tls.client_ca_file", ca)?);
        }
        Ok(Some(config))
    }

    /// Whether the listener serves TLS.
    pub fn enabled(&self) -> bool {
        self.cert_file.is_some()
    }
}

/// The `[client.tls]` section: how this component calls others at
/// `https://` URLs (peers, the gateway's upstreams).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientTls {
    /// The CA(s) (PEM) server certificates must chain to; unset, the
    /// public web roots (webpki-roots) are trusted.
    pub ca_file: Option<PathBuf>,
    /// Mutual TLS: the certificate (PEM) this component presents.
    pub cert_file: Option<PathBuf>,
    /// Its private key (PEM).
    pub key_file: Option<PathBuf>,
}

impl ClientTls {
    /// The TLS of calls to `https://` URLs, files read and checked.
    pub fn load(&self) -> Result<ClientTlsConfig, TlsError> {
        let mut config = match &self.ca_file {
            Some(ca) => {
                ClientTlsConfig::new().ca_certificate(ca_certificate("client.tls.ca_file", ca)?)
            }
            None => ClientTlsConfig::new().with_webpki_roots(),
        };
        match (&self.cert_file, &self.key_file) {
            (None, None) => {}
            (Some(cert), Some(key)) => {
                config = config.identity(identity(
                    "client.tls.cert_file",
                    cert,
                    "client.tls.key_file",
                    key,
                )?);
            }
            _ => {
                return Err(TlsError::Incomplete(
                    "client.tls: cert_file and key_file go together".into(),
                ));
            }
        }
        Ok(config)
    }
}

/// `endpoint` to `url`, with `tls` when the URL is `https://`; `key` names
/// the setting the URL came from in errors.
pub fn secure(
    endpoint: Endpoint,
    url: &str,
    tls: &ClientTlsConfig,
    key: &str,
) -> Result<Endpoint, TlsError> {
    if !url.starts_with("https://") {
        return Ok(endpoint);
    }
    endpoint
        .tls_config(tls.clone())
        .map_err(|e| TlsError::Endpoint {
            key: key.to_owned(),
            reason: e.to_string(),
        })
}

fn read(key: &str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        key: key.to_owned(),
        path: path.to_path_buf(),
        source,
    })
}

fn certificates(
    key: &str,
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let parse = |reason: String| TlsError::Parse {
        key: key.to_owned(),
        path: path.to_path_buf(),
        what: "certificate",
        reason,
    };
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| parse(e.to_string()))?;
    if certs.is_empty() {
        return Err(parse("no CERTIFICATE block".into()));
    }
    Ok(certs)
}

/// The CA certificate(s) in `path`, each usable as a trust anchor.
fn ca_certificate(key: &str, path: &Path) -> Result<Certificate, TlsError> {
    let pem = read(key, path)?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in certificates(key, path, &pem)? {
        roots.add(cert).map_err(|e| TlsError::Parse {
            key: key.to_owned(),
            path: path.to_path_buf(),
            what: "CA certificate",
            reason: e.to_string(),
        })?;
    }
    Ok(Certificate::from_pem(pem))
}

/// A certificate chain and its key, checked to belong together.
fn identity(cert_key: &str, cert: &Path, key_key: &str, key: &Path) -> Result<Identity, TlsError> {
    let cert_pem = read(cert_key, cert)?;
    let key_pem = read(key_key, key)?;
    let chain = certificates(cert_key, cert, &cert_pem)?;
    let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::Parse {
        key: key_key.to_owned(),
        path: key.to_path_buf(),
        what: "private key",
        reason: e.to_string(),
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(chain, private))
        .map_err(|e| TlsError::Pair {
            cert_key: cert_key.to_owned(),
            key_key: key_key.to_owned(),
            reason: e.to_string(),
        })?;
    Ok(Identity::from_pem(cert_pem, key_pem))
}
