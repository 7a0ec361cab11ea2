//! TLS wherever the suite talks over a network (issue 15 part 4): to
//! PostgreSQL (`sslmode=verify-full`), on every component's port, and
//! between the components (mutual TLS).

use std::{path::Path, time::Duration};

use crm::testing::Authorized;
use crm_auth::Role;
use crm_e2e::{
    certs::{Ca, Leaf},
    pg::{Cluster, ServerCert},
    *,
};
use crm_proto::crm::leads::v1::{self as pb, lead_service_client::LeadServiceClient};
use crm_server::{ClientTls, ServerTls};
use crm_testkit::Bearer;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tonic::{
    service::interceptor::InterceptedService,
    transport::{Certificate, ClientTlsConfig, Endpoint, Identity},
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

fn temp_dir(what: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("crm-tls-{what}-"))
        .tempdir()
        .unwrap()
}

/// `url` with TLS required and the server's certificate checked against
/// `ca` and the host name (`verify-full`).
fn verify_full(url: &str, ca: &Path) -> String {
    format!("{url}?sslmode=verify-full&sslrootcert={}", ca.display())
}

/// Issue 15 part 4: `sslmode=require` failed (no TLS compiled into sqlx).
/// On a cluster with `ssl = on` and a certificate of a CA made here, the
/// suite runs with `sslmode=verify-full`, a call writes, and the server
/// says every connection of the suite is TLS; with another CA the
/// suite does not start and says why.
#[tokio::test]
async fn postgresql_over_tls_with_verify_full() {
    let certs = temp_dir("pg");
    let ca = Ca::new(certs.path(), "crm-test-ca");
    let server = ca.leaf("postgres", &["127.0.0.1", "localhost"]);
    let Some(cluster) = Cluster::create_with(Some(ServerCert {
        cert_file: server.cert_file,
        key_file: server.key_file,
    })) else {
        eprintln!("skipped: PostgreSQL's initdb is not installed under /usr/lib/postgresql");
        return;
    };
    let url = verify_full(&cluster.url(), &ca.cert_file);

    let suite = start_with(|s| s.store.database_url = Some(url.clone())).await;
    let mut leads = suite.leads_client(Some(&suite.token("acme", "ann", &[Role::Sales])));
    let created = leads
        .create_lead(create_lead_request("Secure Ltd"))
        .await
        .unwrap()
        .into_inner();
    let id = created.lead.map(|l| l.id).unwrap_or_default();
    assert!(!id.is_empty());
    // Seen by the server (over its Unix socket, which is never TLS): the
    // row is there, and every client connection over TCP is TLS.
    let stored = cluster.psql(&format!(
        "SELECT count(*) FROM leads.leads WHERE id = '{id}'"
    ));
    assert_eq!(stored, "1");
    let sessions = cluster.psql(
        "SELECT count(*) FILTER (WHERE s.ssl), count(*) FROM pg_stat_ssl s \
         JOIN pg_stat_activity a USING (pid) \
         WHERE a.backend_type = 'client backend' AND a.client_addr IS NOT NULL",
    );
    let (tls, all) = sessions.split_once('|').unwrap();
    assert!(all.parse::<u32>().unwrap() > 0, "{sessions}");
    assert_eq!(tls, all, "TLS sessions | all TCP sessions: {sessions}");
    eprintln!("pg_stat_ssl: {tls} of {all} TCP client sessions are TLS");
    leads.get_lead(pb::GetLeadRequest { id }).await.unwrap();
    drop(suite);

    // A server certificate of a CA not trusted: start-up fails, saying so.
    let other = Ca::new(&certs.path().join("other"), "another-ca");
    let wrong = verify_full(&cluster.url(), &other.cert_file);
    let data = temp_dir("pg-data");
    let mut settings = Settings {
        data_dir: data.path().to_path_buf(),
        ..Settings::default()
    };
    settings.auth.development = Some(true);
    settings.store.database_url = Some(wrong);
    settings.serve.gateway_addr = "127.0.0.1:0".into();
    for addr in settings.serve.services.values_mut() {
        *addr = "127.0.0.1:0".into();
    }
    let shutdown = crm_server::Shutdown::new();
    shutdown.trigger();
    let err = crm::serve_on(settings, Component::All, Default::default(), shutdown)
        .await
        .map(|()| "started".to_owned())
        .unwrap_or_else(|e| e.to_string());
    eprintln!("verify-full with another CA: {err}");
    assert!(
        err.starts_with("database") && err.to_lowercase().contains("certificate"),
        "{err}"
    );
}

/// A channel to `addr` over TLS trusting `ca`, presenting `client` (or no
/// certificate), with `token` on every call.
fn tls_channel(
    addr: std::net::SocketAddr,
    ca: &Path,
    client: Option<&Leaf>,
    token: Option<&str>,
) -> Authorized {
    let mut tls =
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(std::fs::read(ca).unwrap()));
    if let Some(client) = client {
        tls = tls.identity(Identity::from_pem(
            std::fs::read(&client.cert_file).unwrap(),
            std::fs::read(&client.key_file).unwrap(),
        ));
    }
    let channel = Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_lazy();
    InterceptedService::new(channel, Bearer::new(token))
}

/// Whether `status` is the client's own, for a connection that failed.
fn is_transport_error(status: &tonic::Status) -> bool {
    std::error::Error::source(status)
        .is_some_and(|e| e.downcast_ref::<tonic::transport::Error>().is_some())
}

/// Issue 15 part 4: no component could serve or call over TLS. Every
/// listener serves `server.tls` and asks for a client certificate of
/// `server.tls.client_ca_file`; the gateway and the services call each
/// other at `https://` with `client.tls` (mutual TLS). A call through the
/// gateway works; a client without a certificate, or in plaintext, is
/// refused at a service's port; and a TLS handshake that stalls half way
/// is cut off at `server.handshake_timeout`.
#[tokio::test]
async fn the_suite_serves_and_calls_itself_over_mutual_tls() {
    let certs = temp_dir("mtls");
    let ca = Ca::new(certs.path(), "crm-internal-ca");
    let component = ca.leaf("component", &["127.0.0.1", "localhost"]);
    let client = ca.leaf("client", &["client.example"]);
    let suite = start_with(|s| {
        s.server.tls = ServerTls {
            cert_file: Some(component.cert_file.clone()),
            key_file: Some(component.key_file.clone()),
            client_ca_file: Some(ca.cert_file.clone()),
        };
        s.client.tls = ClientTls {
            ca_file: Some(ca.cert_file.clone()),
            cert_file: Some(component.cert_file.clone()),
            key_file: Some(component.key_file.clone()),
        };
        s.server.handshake_timeout = Duration::from_millis(500);
        s.server.connection_idle_timeout = Duration::from_secs(600);
    })
    .await;
    let token = suite.token("acme", "ann", &[Role::Sales]);

    // Through the gateway: client -> gateway and gateway -> leads, both
    // mutual TLS.
    let mut gateway = LeadServiceClient::new(tls_channel(
        suite.gateway,
        &ca.cert_file,
        Some(&client),
        Some(&token),
    ));
    let lead = gateway
        .create_lead(create_lead_request("Mutual Ltd"))
        .await
        .unwrap()
        .into_inner()
        .lead
        .unwrap();
    // The gateway follows each upstream's health over the same TLS.
    let health = HealthClient::new(tls_channel(
        suite.gateway,
        &ca.cert_file,
        Some(&client),
        None,
    ));
    eventually(
        Duration::from_secs(10),
        "leads SERVING at the gateway",
        || {
            let mut health = health.clone();
            async move {
                let request = HealthCheckRequest {
                    service: "crm.leads.v1.LeadService".into(),
                };
                let status = health.check(request).await.ok()?.into_inner().status;
                (status == ServingStatus::Serving as i32).then_some(())
            }
        },
    )
    .await;

    // At a service's port: with a certificate, served; without one, or
    // without TLS, refused.
    let leads_addr = suite.services["leads"];
    let get = || pb::GetLeadRequest {
        id: lead.id.clone(),
    };
    let mut direct = LeadServiceClient::new(tls_channel(
        leads_addr,
        &ca.cert_file,
        Some(&client),
        Some(&token),
    ));
    direct.get_lead(get()).await.unwrap();
    let mut anonymous =
        LeadServiceClient::new(tls_channel(leads_addr, &ca.cert_file, None, Some(&token)));
    // Refused in the handshake (TLS 1.3: the server checks the client's
    // certificate after the client's side is done, then closes: the
    // client sees the connection fail in one of several ways), never
    // reaching the service: a transport error, no status of the server's.
    let refused = anonymous.get_lead(get()).await.unwrap_err();
    assert!(is_transport_error(&refused), "{refused:?}");
    let mut plaintext = suite.leads_direct(Some(&token));
    let refused = plaintext.get_lead(get()).await.unwrap_err();
    assert!(is_transport_error(&refused), "{refused:?}");

    // The first bytes of a TLS record that never completes (more than an
    // HTTP/2 preface's worth, so only the TLS handshake's timeout can
    // end it): closed after the handshake timeout, well before the idle
    // timeout.
    let mut stalled = tokio::net::TcpStream::connect(leads_addr).await.unwrap();
    let mut record = vec![0x16, 0x03, 0x01, 0x02, 0x00];
    record.extend_from_slice(&[0x01; 40]);
    stalled.write_all(&record).await.unwrap();
    let mut rest = Vec::new();
    let closed =
        tokio::time::timeout(Duration::from_secs(10), stalled.read_to_end(&mut rest)).await;
    assert!(closed.is_ok(), "a stalled TLS handshake is still open");
}
