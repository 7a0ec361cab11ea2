//! The gateway's health names each service behind it: `crm.leads.v1` and
//! `crm.leads.v1.LeadService` (the name the service itself reports) are
//! SERVING while the leads upstream says SERVING, and NOT_SERVING while it
//! says otherwise (its database is down, it drains) or cannot be reached.
//! `""` and `gateway` stay the gateway's own: it runs and routes calls to
//! the services that are up, so one service down does not take the whole
//! gateway out of a load balancer.

use std::{collections::BTreeMap, time::Duration};

use crm_server::Shutdown;
use tokio::task::JoinHandle;
use tonic::transport::{Channel, ClientTlsConfig, Endpoint};
use tonic_health::{
    ServingStatus,
    pb::{
        HealthCheckRequest, health_check_response::ServingStatus as Reported,
        health_client::HealthClient,
    },
    server::HealthReporter,
};

use crate::GatewayError;

/// The names reported for the upstream of `package`: the package and
/// every service of it in the contracts.
fn names(package: &str) -> Vec<String> {
    let mut names: Vec<String> = crm_proto::METHOD_POLICIES
        .iter()
        .filter_map(|policy| {
            let service = policy.path.strip_prefix('/')?.split('/').next()?;
            let (of, _) = service.rsplit_once('.')?;
            (of == package).then(|| service.to_owned())
        })
        .collect();
    names.push(package.to_owned());
    names.sort_unstable();
    names.dedup();
    names
}

/// Follows the health of every upstream until `shutdown`, then reports
/// them NOT_SERVING. `interval` is how soon an unreachable upstream is
/// tried again and how often a quiet connection to it is probed.
pub(crate) fn follow_upstreams(
    upstreams: &BTreeMap<String, String>,
    tls: &ClientTlsConfig,
    reporter: &HealthReporter,
    interval: Duration,
    shutdown: &Shutdown,
) -> Result<Vec<JoinHandle<()>>, GatewayError> {
    let mut tasks = Vec::new();
    for (package, url) in upstreams {
        let endpoint =
            Endpoint::from_shared(url.clone()).map_err(|source| GatewayError::Upstream {
                package: package.clone(),
                url: url.clone(),
                source,
            })?;
        let key = format!("gateway.upstreams.\"{package}\"");
        let channel = crm_server::secure(endpoint, url, tls, &key)?
            .connect_timeout(interval)
            .http2_keep_alive_interval(interval)
            .keep_alive_timeout(interval)
            .keep_alive_while_idle(true)
            .connect_lazy();
        let upstream = Upstream {
            names: names(package),
            channel,
            reporter: reporter.clone(),
        };
        tasks.push(tokio::spawn(upstream.follow(interval, shutdown.clone())));
    }
    Ok(tasks)
}

struct Upstream {
    names: Vec<String>,
    channel: Channel,
    reporter: HealthReporter,
}

impl Upstream {
    async fn report(&self, status: ServingStatus) {
        for name in &self.names {
            self.reporter.set_service_status(name, status).await;
        }
    }

    /// Watches the upstream's own health (`""`) and mirrors it; a broken
    /// or refused watch is NOT_SERVING until the next try succeeds.
    async fn watch(&self) -> Result<(), tonic::Status> {
        let mut client = HealthClient::new(self.channel.clone());
        let request = HealthCheckRequest {
            service: String::new(),
        };
        let mut updates = client.watch(request).await?.into_inner();
        while let Some(update) = updates.message().await? {
            let status = if update.status() == Reported::Serving {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            };
            self.report(status).await;
        }
        Ok(())
    }

    async fn follow(self, interval: Duration, shutdown: Shutdown) {
        // Unknown until the upstream says otherwise.
        self.report(ServingStatus::NotServing).await;
        loop {
            tokio::select! {
                () = shutdown.triggered() => break,
                watched = self.watch() => {
                    if let Err(status) = watched {
                        tracing::debug!(upstream = ?self.names, %status, "upstream health unknown");
                    }
                }
            }
            self.report(ServingStatus::NotServing).await;
            tokio::select! {
                () = shutdown.triggered() => break,
                () = tokio::time::sleep(interval) => {}
            }
        }
        self.report(ServingStatus::NotServing).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_upstream_is_named_by_its_package_and_services() {
        assert_eq!(
            names("crm.leads.v1"),
            ["crm.leads.v1", "crm.leads.v1.LeadService"]
        );
        assert_eq!(names("crm.nothing.v1"), ["crm.nothing.v1"]);
    }
}
