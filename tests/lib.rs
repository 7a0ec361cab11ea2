//! Shared helpers of the end-to-end tests: the suite started with test
//! timings, typed clients through the gateway, and small builders the
//! scenarios share. The tests themselves are in `e2e/`, one module per
//! area: `auth` (tokens, roles, tenants), `leads`, `opportunities`, `contracts`,
//! `events`, `resilience` (limits, deadlines, restarts).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

pub use crm::{Component, Settings, testing::TestSuite};
pub use crm_testkit::{
    eventually, reason, sign_claims, unix_now, unmet_preconditions, violated_fields,
};

use crm::testing::Authorized;
use crm_proto::crm::{
    common::v1 as common, contracts::v1::contract_service_client::ContractServiceClient,
    events::v1::event_service_client::EventServiceClient, leads::v1 as leads,
    leads::v1::lead_service_client::LeadServiceClient,
    opportunities::v1::opportunity_service_client::OpportunityServiceClient,
};

/// The leads API, with the caller's token on every call.
pub type LeadsClient = LeadServiceClient<Authorized>;
/// The opportunities API, with the caller's token on every call.
pub type OpportunitiesClient = OpportunityServiceClient<Authorized>;
/// The contracts API, with the caller's token on every call.
pub type ContractsClient = ContractServiceClient<Authorized>;
/// A service's event stream through the gateway.
pub type EventsClient = EventServiceClient<Authorized>;

/// The suite with the tests' timings: a fast sweeper and quick heartbeats,
/// so that conditions are reached in milliseconds.
pub async fn start() -> TestSuite {
    start_with(|_| {}).await
}

/// [`start`], with settings adjusted by `tweak` after the tests' timings.
pub async fn start_with(tweak: impl FnOnce(&mut Settings)) -> TestSuite {
    TestSuite::start_with(|settings| {
        settings.leads.sweep_interval = Duration::from_millis(50);
        // Quiet streams show they are alive quickly.
        settings.leads.events.heartbeat_interval = Duration::from_millis(200);
        settings.opportunities.events.heartbeat_interval = Duration::from_millis(200);
        tweak(settings);
    })
    .await
}

/// Typed clients of the suite's services.
pub trait Clients {
    /// The leads API through the gateway, as `token` (or without one).
    fn leads_client(&self, token: Option<&str>) -> LeadsClient;
    /// The leads API reached directly, bypassing the gateway.
    fn leads_direct(&self, token: Option<&str>) -> LeadsClient;
    /// The opportunities API through the gateway, as `token`.
    fn opportunities_client(&self, token: Option<&str>) -> OpportunitiesClient;
    /// The event stream of `source` (e.g. "leads") through the gateway.
    fn events_client(&self, token: &str, source: &str) -> EventsClient;
    /// The contracts API through the gateway, as `token`.
    fn contracts_client(&self, token: Option<&str>) -> ContractsClient;
}

impl Clients for TestSuite {
    fn leads_client(&self, token: Option<&str>) -> LeadsClient {
        LeadServiceClient::new(self.through_gateway(token))
    }

    fn leads_direct(&self, token: Option<&str>) -> LeadsClient {
        LeadServiceClient::new(self.direct("leads", token))
    }

    fn opportunities_client(&self, token: Option<&str>) -> OpportunitiesClient {
        OpportunityServiceClient::new(self.through_gateway(token))
    }

    fn events_client(&self, token: &str, source: &str) -> EventsClient {
        EventServiceClient::new(self.events_through_gateway(token, source))
    }

    fn contracts_client(&self, token: Option<&str>) -> ContractsClient {
        ContractServiceClient::new(self.through_gateway(token))
    }
}

/// A lead with the given company and phone, from a referral.
pub fn lead(company: &str, phone: &str) -> leads::Lead {
    leads::Lead {
        company: company.into(),
        contact_name: format!("Contact of {company}"),
        phone: phone.into(),
        source_channel: "referral".into(),
        ..Default::default()
    }
}

/// An amount in CNY.
pub fn cny(units: i64) -> Option<common::Money> {
    Some(common::Money {
        currency_code: "CNY".into(),
        units,
        nanos: 0,
    })
}
