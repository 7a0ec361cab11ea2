//! What operators rely on while the suite runs: a service that can no
//! longer do part of its job says so on health instead of running on
//! silently degraded.

use std::time::Duration;

use crm_e2e::*;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

async fn status(suite: &TestSuite, service: &str, name: &str) -> Option<i32> {
    let request = HealthCheckRequest {
        service: name.into(),
    };
    let reply = HealthClient::new(suite.direct(service, None))
        .check(request)
        .await
        .ok()?;
    Some(reply.into_inner().status)
}

/// Issue 15: a background worker that dies (here the leads sweeper, whose
/// timer panics on an interval of zero: loaded settings refuse that value,
/// the harness sets it directly) turns the leads service's health to
/// NOT_SERVING, by name and as a process; the other services serve on.
#[tokio::test]
async fn a_worker_that_dies_turns_its_service_not_serving() {
    let suite = TestSuite::start_with(|s| s.leads.sweep_interval = Duration::ZERO).await;
    let not_serving = Some(ServingStatus::NotServing as i32);
    eventually(Duration::from_secs(10), "leads NOT_SERVING", || async {
        let named = status(&suite, "leads", "crm.leads.v1.LeadService").await;
        let process = status(&suite, "leads", "").await;
        (named == not_serving && process == not_serving).then_some(())
    })
    .await;
    assert_eq!(
        status(&suite, "opportunities", "").await,
        Some(ServingStatus::Serving as i32)
    );
}
