//! Shared helpers of the end-to-end tests: the suite started with test
//! timings, typed clients through the gateway, and small builders the
//! scenarios share. The tests themselves are in `e2e/`, one module per
//! area: `auth` (tokens, roles, tenants), `leads`, `opportunities`, `contracts`,
//! `delivery`, `events`, `resilience` (limits, deadlines, restarts).
//! [`scenario`] gets a deal to won and its contract to signed, for the
//! contracts and delivery tests alike.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

pub use crm::{Component, Settings, testing::TestSuite};
pub use crm_testkit::{
    eventually, reason, sign_claims, unix_now, unmet_preconditions, violated_fields,
};

use crm::testing::Authorized;
use crm_proto::crm::{
    common::v1 as common, contracts::v1::contract_service_client::ContractServiceClient,
    delivery::v1::delivery_service_client::DeliveryServiceClient,
    events::v1::event_service_client::EventServiceClient, leads::v1 as leads,
    leads::v1::lead_service_client::LeadServiceClient,
    opportunities::v1::opportunity_service_client::OpportunityServiceClient,
    tickets::v1::ticket_service_client::TicketServiceClient,
};

/// The leads API, with the caller's token on every call.
pub type LeadsClient = LeadServiceClient<Authorized>;
/// The opportunities API, with the caller's token on every call.
pub type OpportunitiesClient = OpportunityServiceClient<Authorized>;
/// The contracts API, with the caller's token on every call.
pub type ContractsClient = ContractServiceClient<Authorized>;
/// The delivery API, with the caller's token on every call.
pub type DeliveryClient = DeliveryServiceClient<Authorized>;
/// The tickets API, with the caller's token on every call.
pub type TicketsClient = TicketServiceClient<Authorized>;
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
    /// The delivery API through the gateway, as `token`.
    fn delivery_client(&self, token: Option<&str>) -> DeliveryClient;
    /// The tickets API through the gateway, as `token`.
    fn tickets_client(&self, token: Option<&str>) -> TicketsClient;
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

    fn delivery_client(&self, token: Option<&str>) -> DeliveryClient {
        DeliveryServiceClient::new(self.through_gateway(token))
    }

    fn tickets_client(&self, token: Option<&str>) -> TicketsClient {
        TicketServiceClient::new(self.through_gateway(token))
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

/// A CreateLead of a lead with only its company and a search-ads source.
pub fn create_lead_request(company: &str) -> leads::CreateLeadRequest {
    leads::CreateLeadRequest {
        lead: Some(leads::Lead {
            company: company.into(),
            source_channel: "sem".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Creates `lead` and returns it as stored (panics on a refusal: a test's
/// set-up step).
pub async fn created_lead(client: &mut LeadsClient, lead: leads::Lead) -> leads::Lead {
    client
        .create_lead(leads::CreateLeadRequest {
            lead: Some(lead),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .lead
        .unwrap()
}

/// A request id of at most 64 characters without spaces, the same for
/// the same parts (subjects and bodies may hold spaces).
pub fn request_id(prefix: &str, parts: &[&str]) -> String {
    use std::hash::{DefaultHasher, Hash, Hasher};
    let mut h = DefaultHasher::new();
    parts.hash(&mut h);
    format!("{prefix}-{:016x}", h.finish())
}

/// A refused call's code and `ErrorInfo` reason.
pub fn refused<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> (tonic::Code, String) {
    let err = result.unwrap_err();
    (err.code(), reason(&err))
}

/// A refused call's code and the fields its `BadRequest` names.
pub fn invalid<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> (tonic::Code, Vec<String>) {
    let err = result.unwrap_err();
    (err.code(), violated_fields(&err))
}

/// A refused call's code.
pub fn code<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> tonic::Code {
    result.unwrap_err().code()
}

/// `v` in order.
pub fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// An amount in CNY.
pub fn cny(units: i64) -> Option<common::Money> {
    Some(common::Money {
        currency_code: "CNY".into(),
        units,
        nanos: 0,
    })
}

/// A deal taken to won and its contract to signed, through the gateway as
/// the tenant's people would: the steps the contracts and delivery tests
/// share. Amounts and dates are derived here, never typed in as results.
///
/// The people: `amy` (sales, the deals' owner and account manager), `boss`
/// and `max` (managers), `fay` and `fiona` (finance), `lee` (legal), `dora`
/// (delivery, the deals' delivery manager), `root` (admin) and `esign`
/// (the integration relaying the e-signature provider's callbacks).
pub mod scenario {
    use crm::testing::TestSuite;
    use crm_auth::Role;
    use crm_proto::crm::{common::v1 as common, contracts::v1 as pb, opportunities::v1 as opps};
    use prost_types::FieldMask;

    use crate::{Clients, ContractsClient, unix_now};

    /// Nanos in a unit of money.
    pub const NANOS: i128 = 1_000_000_000;

    /// An amount of `currency`.
    pub fn money(currency: &str, units: i64, nanos: i32) -> common::Money {
        common::Money {
            currency_code: currency.into(),
            units,
            nanos,
        }
    }

    /// An amount in nanos.
    pub fn nanos_of(m: Option<&common::Money>) -> i128 {
        let m = m.expect("an amount");
        i128::from(m.units) * NANOS + i128::from(m.nanos)
    }

    /// `nanos` as an amount of `currency`.
    pub fn money_of(currency: &str, nanos: i128) -> common::Money {
        money(
            currency,
            i64::try_from(nanos / NANOS).unwrap(),
            i32::try_from(nanos % NANOS).unwrap(),
        )
    }

    /// A line's total as the contract documents it: quantity x unit price x
    /// (100 - discount) / 100, rounded half away from zero to the nano, in
    /// integers.
    pub fn line_total(line: &pb::LineItem) -> i128 {
        let gross = i128::from(line.quantity)
            * nanos_of(line.unit_price.as_ref())
            * i128::from(100 - line.discount_percent);
        (gross + 50).div_euclid(100)
    }

    /// The sum of the lines' totals.
    pub fn total_of(lines: &[pb::LineItem]) -> i128 {
        lines.iter().map(line_total).sum()
    }

    /// A contract line.
    pub fn line(
        item: &str,
        quantity: i64,
        unit_price: common::Money,
        discount: i32,
    ) -> pb::LineItem {
        pb::LineItem {
            item: item.into(),
            quantity,
            unit_price: Some(unit_price),
            discount_percent: discount,
            ..Default::default()
        }
    }

    /// Three lines: a discounted licence, a service whose discount leaves
    /// half a nano (rounded up), and an undiscounted one.
    pub fn standard_lines() -> Vec<pb::LineItem> {
        vec![
            line("MES licence", 3, money("CNY", 100_000, 0), 10),
            line("Implementation", 1, money("CNY", 680_000, 5), 10),
            line("Support, first year", 7, money("CNY", 1_000, 0), 0),
        ]
    }

    /// The civil date `days` after 1970-01-01 (proleptic Gregorian).
    pub fn civil(days: i64) -> common::Date {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        common::Date {
            year: i32::try_from(year).unwrap(),
            month: i32::try_from(month).unwrap(),
            day: i32::try_from(day).unwrap(),
        }
    }

    /// Today (UTC) plus `days`.
    pub fn today_plus(days: i64) -> common::Date {
        civil(unix_now().div_euclid(86_400) + days)
    }

    /// A date.
    pub fn date(year: i32, month: i32, day: i32) -> common::Date {
        common::Date { year, month, day }
    }

    /// A contract term.
    pub fn term(start: common::Date, end: common::Date) -> pb::Term {
        pb::Term {
            start_date: Some(start),
            end_date: Some(end),
        }
    }

    /// Next calendar year.
    pub fn next_year() -> pb::Term {
        let year = today_plus(0).year + 1;
        term(date(year, 1, 1), date(year, 12, 31))
    }

    /// A payment milestone of `share` percent of the total.
    pub fn percent(name: &str, due: common::Date, share: i32) -> pb::PaymentMilestone {
        pb::PaymentMilestone {
            name: name.into(),
            due_date: Some(due),
            share: Some(pb::payment_milestone::Share::Percent(share)),
            ..Default::default()
        }
    }

    /// A payment milestone of a fixed amount.
    pub fn fixed(name: &str, due: common::Date, amount: common::Money) -> pb::PaymentMilestone {
        pb::PaymentMilestone {
            name: name.into(),
            due_date: Some(due),
            share: Some(pb::payment_milestone::Share::FixedAmount(amount)),
            ..Default::default()
        }
    }

    /// 30% at signing and 70% at acceptance, next year.
    pub fn standard_milestones() -> Vec<pb::PaymentMilestone> {
        let year = today_plus(0).year + 1;
        vec![
            percent("signing", date(year, 1, 15), 30),
            percent("acceptance", date(year, 6, 30), 70),
        ]
    }

    /// A dated commitment: "deploy within 15 days".
    pub fn deploy_within_15_days() -> pb::SpecialRequirement {
        pb::SpecialRequirement {
            description: "deploy within 15 days".into(),
            due_within_days: 15,
        }
    }

    /// A won opportunity and what the contract takes from it.
    pub struct Deal {
        /// The won opportunity.
        pub opportunity: opps::Opportunity,
        /// Its decision maker, Li Lei.
        pub contact: opps::Contact,
    }

    /// The solution the delivery manager reviewed.
    pub const SOLUTION: &str = "MES rollout in 3 plants";
    /// The workload the delivery manager reviewed, in person-days.
    pub const WORKLOAD: i32 = 120;

    /// Makes a won opportunity of `tenant` owned by sales user `owner`, with
    /// a team of `owner`, solution manager "sol" and delivery manager
    /// "dora", Li Lei as the decision maker, and the delivery manager's
    /// approved review of `quote`, the solution and the workload; a manager
    /// takes it to won.
    pub async fn won_deal(
        suite: &TestSuite,
        tenant: &str,
        owner: &str,
        name: &str,
        quote: &common::Money,
    ) -> Deal {
        let opps_as = |who: &str, roles: &[Role]| {
            suite.opportunities_client(Some(&suite.token(tenant, who, roles)))
        };
        let mut sales = opps_as(owner, &[Role::Sales]);
        let mut boss = opps_as("boss", &[Role::Manager]);
        let mut dora = opps_as("dora", &[Role::Delivery]);
        let account = sales
            .create_account(opps::CreateAccountRequest {
                account: Some(opps::Account {
                    name: name.into(),
                    industry: "manufacturing".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .account
            .unwrap();
        let contact = sales
            .create_contact(opps::CreateContactRequest {
                contact: Some(opps::Contact {
                    account_id: account.id.clone(),
                    name: "Li Lei".into(),
                    title: "CTO".into(),
                    phone: "+86 138 0013 8000".into(),
                    email: "li.lei@example.com".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .contact
            .unwrap();
        let opp = sales
            .create_opportunity(opps::CreateOpportunityRequest {
                opportunity: Some(opps::Opportunity {
                    account_id: account.id.clone(),
                    name: format!("{name} MES"),
                    amount: Some(quote.clone()),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .opportunity
            .unwrap();
        sales
            .update_opportunity(opps::UpdateOpportunityRequest {
                opportunity: Some(opps::Opportunity {
                    id: opp.id.clone(),
                    team: Some(opps::Team {
                        account_manager_id: owner.into(),
                        solution_manager_id: "sol".into(),
                        delivery_manager_id: "dora".into(),
                        ..Default::default()
                    }),
                    solution_summary: SOLUTION.into(),
                    workload_person_days: WORKLOAD,
                    quote: Some(quote.clone()),
                    win_loss_reason: "best delivery plan".into(),
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: [
                        "team",
                        "solution_summary",
                        "workload_person_days",
                        "quote",
                        "win_loss_reason",
                    ]
                    .map(String::from)
                    .to_vec(),
                }),
            })
            .await
            .unwrap();
        sales
            .set_decision_chain_member(opps::SetDecisionChainMemberRequest {
                opportunity_id: opp.id.clone(),
                member: Some(opps::DecisionChainMember {
                    contact_id: contact.id.clone(),
                    role: opps::DecisionRole::DecisionMaker as i32,
                    relationship: 4,
                    solution_acceptance: 4,
                    price_acceptance: 3,
                }),
            })
            .await
            .unwrap();
        let review = sales
            .request_delivery_review(opps::RequestDeliveryReviewRequest {
                opportunity_id: opp.id.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .approval
            .unwrap();
        dora.decide_approval(opps::DecideApprovalRequest {
            id: review.id,
            decision: opps::Decision::Approve as i32,
            ..Default::default()
        })
        .await
        .unwrap();
        for stage in [
            opps::Stage::Approved,
            opps::Stage::NeedsAnalysis,
            opps::Stage::ValuePresentation,
            opps::Stage::Proposal,
            opps::Stage::Bidding,
            opps::Stage::Negotiation,
            opps::Stage::Won,
        ] {
            boss.advance_stage(opps::AdvanceStageRequest {
                id: opp.id.clone(),
                target_stage: stage as i32,
                override_reason: "e2e: the sales process is tested elsewhere".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        }
        let opportunity = sales
            .get_opportunity(opps::GetOpportunityRequest { id: opp.id })
            .await
            .unwrap()
            .into_inner()
            .opportunity
            .unwrap();
        assert_eq!(opportunity.stage, opps::Stage::Won as i32);
        Deal {
            opportunity,
            contact,
        }
    }

    /// A contract draft of `deal` with `lines`, next year's term, the
    /// standard payment milestones and "deploy within 15 days".
    pub fn draft(deal: &Deal, lines: Vec<pb::LineItem>) -> pb::Contract {
        pb::Contract {
            opportunity_id: deal.opportunity.id.clone(),
            title: format!("{} contract", deal.opportunity.name),
            currency_code: "CNY".into(),
            lines,
            term: Some(next_year()),
            milestones: standard_milestones(),
            special_requirements: vec![deploy_within_15_days()],
            ..Default::default()
        }
    }

    /// `who` of `tenant` with `roles`, on the contracts API.
    pub fn contracts_as(
        suite: &TestSuite,
        tenant: &str,
        who: &str,
        roles: &[Role],
    ) -> ContractsClient {
        suite.contracts_client(Some(&suite.token(tenant, who, roles)))
    }

    /// Submits a draft as `owner` and has each step decided by a holder of
    /// its role who has decided none before (the assignee where the step
    /// names one): the contract approved.
    pub async fn approve_all(
        suite: &TestSuite,
        tenant: &str,
        owner: &str,
        contract: &pb::Contract,
    ) -> pb::Contract {
        let mut c = contracts_as(suite, tenant, owner, &[Role::Sales])
            .submit_contract(pb::SubmitContractRequest {
                id: contract.id.clone(),
                etag: contract.etag.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .contract
            .unwrap();
        let mut decided: Vec<String> = Vec::new();
        while c.status == pb::ContractStatus::InApproval as i32 {
            let approval = c.approval.clone().expect("an approval");
            let current = approval.progress.expect("progress").current_step;
            let step = approval
                .steps
                .iter()
                .find(|s| s.number == current)
                .expect("the current step")
                .clone();
            let (role, people): (Role, &[&str]) = match common::Role::try_from(step.role) {
                Ok(common::Role::Manager) => (Role::Manager, &["boss", "max"]),
                Ok(common::Role::Finance) => (Role::Finance, &["fay", "fiona"]),
                Ok(common::Role::Legal) => (Role::Legal, &["lee"]),
                Ok(common::Role::Delivery) => (Role::Delivery, &["dora"]),
                Ok(common::Role::Admin) => (Role::Admin, &["root"]),
                other => panic!("no decider for a step of role {other:?}"),
            };
            let who = if step.assignee_id.is_empty() {
                (*people
                    .iter()
                    .find(|p| !decided.iter().any(|d| d == *p))
                    .expect("a decider left"))
                .to_owned()
            } else {
                step.assignee_id.clone()
            };
            c = contracts_as(suite, tenant, &who, &[role])
                .decide_contract_approval(pb::DecideContractApprovalRequest {
                    id: c.id.clone(),
                    step: current,
                    decision: common::ApprovalDecision::Approve as i32,
                    comment: "ok".into(),
                    approval_id: approval.id.clone(),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner()
                .contract
                .unwrap();
            decided.push(who);
        }
        assert_eq!(c.status, pb::ContractStatus::Approved as i32);
        c
    }

    /// Sent for signature by `owner` with `envelope`, and signed by the
    /// customer (the callback relayed by the `esign` integration).
    pub async fn sign(
        suite: &TestSuite,
        tenant: &str,
        owner: &str,
        contract: &pb::Contract,
        envelope: &str,
    ) -> pb::Contract {
        contracts_as(suite, tenant, owner, &[Role::Sales])
            .send_for_signature(pb::SendForSignatureRequest {
                id: contract.id.clone(),
                provider: "esign-cn".into(),
                envelope_id: envelope.into(),
                ..Default::default()
            })
            .await
            .unwrap();
        contracts_as(suite, tenant, "esign", &[Role::Integration])
            .record_signature(pb::RecordSignatureRequest {
                id: contract.id.clone(),
                envelope_id: envelope.into(),
                outcome: pb::SignatureOutcome::Signed as i32,
                signer: "Li Lei".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .contract
            .unwrap()
    }

    /// A deal of `tenant` owned by `owner`, whose reviewed quote is the
    /// standard lines' total, and its contract ([`draft`], then `change`)
    /// approved and signed: the deal and the signed contract.
    pub async fn signed_contract_with(
        suite: &TestSuite,
        tenant: &str,
        owner: &str,
        name: &str,
        change: impl FnOnce(&mut pb::Contract),
    ) -> (Deal, pb::Contract) {
        let lines = standard_lines();
        let deal = won_deal(
            suite,
            tenant,
            owner,
            name,
            &money_of("CNY", total_of(&lines)),
        )
        .await;
        let mut contract = draft(&deal, lines);
        change(&mut contract);
        let key = name.replace(' ', "-");
        let contract = contracts_as(suite, tenant, owner, &[Role::Sales])
            .create_contract(pb::CreateContractRequest {
                request_id: format!("create-{key}"),
                contract: Some(contract),
            })
            .await
            .unwrap()
            .into_inner()
            .contract
            .unwrap();
        let approved = approve_all(suite, tenant, owner, &contract).await;
        let signed = sign(suite, tenant, owner, &approved, &format!("env-{key}")).await;
        assert_eq!(signed.status, pb::ContractStatus::Signed as i32);
        (deal, signed)
    }

    /// [`signed_contract_with`] the draft unchanged.
    pub async fn signed_contract(
        suite: &TestSuite,
        tenant: &str,
        owner: &str,
        name: &str,
    ) -> (Deal, pb::Contract) {
        signed_contract_with(suite, tenant, owner, name, |_| {}).await
    }

    /// Amends the signed `contract` as `owner` (`change` applied to the new
    /// draft's lines, milestones and special requirements), gets the
    /// amendment approved and signs it: the new version in force.
    pub async fn amend_and_sign(
        suite: &TestSuite,
        tenant: &str,
        owner: &str,
        contract: &pb::Contract,
        change: impl FnOnce(&mut pb::Contract),
    ) -> pb::Contract {
        let mut sales = contracts_as(suite, tenant, owner, &[Role::Sales]);
        let draft = sales
            .amend_contract(pb::AmendContractRequest {
                request_id: format!("amend-{}", contract.id),
                id: contract.id.clone(),
                etag: contract.etag.clone(),
                reason: "the customer asked for more".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .contract
            .unwrap();
        let mut changed = draft.clone();
        change(&mut changed);
        let draft = sales
            .update_contract(pb::UpdateContractRequest {
                contract: Some(pb::Contract {
                    id: draft.id.clone(),
                    etag: draft.etag.clone(),
                    lines: changed.lines,
                    milestones: changed.milestones,
                    special_requirements: changed.special_requirements,
                    ..Default::default()
                }),
                update_mask: Some(FieldMask {
                    paths: ["lines", "milestones", "special_requirements"]
                        .map(String::from)
                        .to_vec(),
                }),
            })
            .await
            .unwrap()
            .into_inner()
            .contract
            .unwrap();
        let approved = approve_all(suite, tenant, owner, &draft).await;
        let envelope = format!("env-v{}-{}", approved.version, contract.id);
        let signed = sign(suite, tenant, owner, &approved, &envelope).await;
        assert!(signed.in_force);
        signed
    }
}

/// Rewinds `service`'s cursors of the `source` stream to its start, in
/// `service`'s own database (stop the suite first), as a restored backup
/// would: every event of the stream is delivered again once the suite is
/// back. The rows changed.
pub async fn rewind_cursor(suite: &TestSuite, service: &str, source: &str) -> u64 {
    use crm_store::ConnectionTrait;
    assert!(
        source.chars().all(|c| c.is_ascii_lowercase()),
        "a service name: {source:?}"
    );
    let location = crm_store::Location::for_service(
        service,
        suite.settings.store.database_url.as_deref(),
        &suite.settings.data_dir,
    );
    let db = crm_store::connect(&location, 1).await.unwrap();
    let done = db
        .execute_unprepared(&format!(
            "UPDATE event_cursors SET sequence = 0 WHERE source = '{source}'"
        ))
        .await
        .unwrap();
    db.close().await.unwrap();
    done.rows_affected()
}

/// A loopback port that is free now (nothing serves it until a test says
/// so).
pub fn free_port() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Serves one more instance of the suite's `service` (same data) at `addr`,
/// e.g. a port another service was told to reach it at.
pub fn serve_service_at(suite: &TestSuite, service: &'static str, addr: std::net::SocketAddr) {
    let listener = std::net::TcpListener::bind(addr).expect("the reserved port is free again");
    suite.spawn_component(Component::Service(service), listener);
}

/// A signed contract's delivery project taken live, through the gateway as
/// the delivery manager would: the step the tickets tests start from
/// (go-live is what makes an account's entitlement).
pub mod golive {
    use std::time::Duration;

    use crm::testing::TestSuite;
    use crm_auth::Role;
    use crm_proto::crm::{contracts::v1 as cpb, delivery::v1 as pb};

    use crate::{
        Clients, DeliveryClient, eventually,
        scenario::{Deal, signed_contract},
    };

    /// The longest the handover of a signed contract may take to show.
    pub const HANDOVER_WAIT: Duration = Duration::from_secs(30);

    /// `who` of `tenant` with `roles`, on the delivery API.
    pub fn delivery_as(
        suite: &TestSuite,
        tenant: &str,
        who: &str,
        roles: &[Role],
    ) -> DeliveryClient {
        suite.delivery_client(Some(&suite.token(tenant, who, roles)))
    }

    /// Awaits the project handed over from the signed `contract` (seen by a
    /// manager of `tenant`).
    pub async fn project_of(
        suite: &TestSuite,
        tenant: &str,
        contract: &cpb::Contract,
    ) -> pb::Project {
        let boss = delivery_as(suite, tenant, "boss", &[Role::Manager]);
        let contract_id = contract.id.clone();
        eventually(HANDOVER_WAIT, "the project handed over", || {
            let (mut boss, contract_id) = (boss.clone(), contract_id.clone());
            async move {
                let page = boss
                    .list_projects(pb::ListProjectsRequest {
                        page_size: 500,
                        ..Default::default()
                    })
                    .await
                    .ok()?
                    .into_inner();
                page.projects
                    .into_iter()
                    .find(|p| p.contract_id == contract_id)
            }
        })
        .await
    }

    /// Every milestone of the project started, made ready and accepted by
    /// its project manager "dora", then taken live with service manager
    /// `service_manager` and `service_level`: the completed project.
    pub async fn go_live(
        suite: &TestSuite,
        tenant: &str,
        project: &pb::Project,
        service_manager: &str,
        service_level: &str,
    ) -> pb::Project {
        let mut dora = delivery_as(suite, tenant, "dora", &[Role::Delivery]);
        let milestones = dora
            .list_milestones(pb::ListMilestonesRequest {
                project_id: project.id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .milestones;
        for m in milestones {
            dora.start_milestone(pb::StartMilestoneRequest {
                id: m.id.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
            dora.mark_milestone_ready(pb::MarkMilestoneReadyRequest {
                id: m.id.clone(),
                ..Default::default()
            })
            .await
            .unwrap();
            dora.accept_milestone(pb::AcceptMilestoneRequest {
                id: m.id.clone(),
                accepted_by: "Li Lei".into(),
                comment: "as agreed".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        }
        let live = dora
            .go_live(pb::GoLiveRequest {
                id: project.id.clone(),
                service_manager_id: service_manager.into(),
                service_level: service_level.into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .project
            .unwrap();
        assert_eq!(live.status, pb::ProjectStatus::Completed as i32);
        live
    }

    /// A deal of `tenant` owned by `owner` won, its contract signed and its
    /// project taken live with `service_level` (service manager "sam"): the
    /// deal, the contract and the completed project.
    pub async fn live_account(
        suite: &TestSuite,
        tenant: &str,
        owner: &str,
        name: &str,
        service_level: &str,
    ) -> (Deal, cpb::Contract, pb::Project) {
        let (deal, contract) = signed_contract(suite, tenant, owner, name).await;
        let project = project_of(suite, tenant, &contract).await;
        let live = go_live(suite, tenant, &project, "sam", service_level).await;
        (deal, contract, live)
    }
}

/// Reading a service's event stream through the gateway, with a bounded
/// wait for each event.
pub mod streams {
    use std::time::Duration;

    use crm::testing::TestSuite;
    use crm_auth::Role;
    use crm_proto::crm::events::v1 as ev;
    use prost::Name;

    use crate::Clients;

    /// A subscription's messages.
    pub type Stream = tonic::Streaming<ev::SubscribeResponse>;

    /// The event stream of `source` of `tenant` from its start, as the
    /// integration `who`, with only `types` (all when empty).
    pub async fn subscribe(
        suite: &TestSuite,
        tenant: &str,
        who: &str,
        source: &str,
        types: &[String],
    ) -> Stream {
        suite
            .events_client(&suite.token(tenant, who, &[Role::Integration]), source)
            .subscribe(ev::SubscribeRequest {
                after_sequence: 0,
                types: types.to_vec(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
    }

    /// The next event of the stream, skipping heartbeats; fails after 30 s.
    pub async fn next_event(stream: &mut Stream) -> ev::Event {
        loop {
            let next = tokio::time::timeout(Duration::from_secs(30), stream.message())
                .await
                .expect("an event within 30s")
                .unwrap()
                .expect("the stream stays open");
            if let Some(ev::subscribe_response::Kind::Event(e)) = next.kind {
                return e;
            }
        }
    }

    /// The payload of `event`, as `M`.
    pub fn payload<M: prost::Message + Name + Default>(event: &ev::Event) -> M {
        assert_eq!(event.r#type, M::full_name());
        event.payload.as_ref().expect("a payload").to_msg().unwrap()
    }

    /// The first event of type `M` that `wanted` accepts: from `seen` if it
    /// was read already, else read from the stream (everything read is kept
    /// in `seen`).
    pub async fn find<M: prost::Message + Name + Default>(
        stream: &mut Stream,
        seen: &mut Vec<ev::Event>,
        wanted: impl Fn(&M) -> bool,
    ) -> M {
        let matches = |e: &ev::Event| e.r#type == M::full_name() && wanted(&payload::<M>(e));
        if let Some(e) = seen.iter().find(|e| matches(e)) {
            return payload(e);
        }
        loop {
            let e = next_event(stream).await;
            seen.push(e.clone());
            if matches(&e) {
                return payload(&e);
            }
        }
    }

    /// The payloads of type `M` in `seen` that `wanted` accepts.
    pub fn all_of<M: prost::Message + Name + Default>(
        seen: &[ev::Event],
        wanted: impl Fn(&M) -> bool,
    ) -> Vec<M> {
        seen.iter()
            .filter(|e| e.r#type == M::full_name())
            .map(payload::<M>)
            .filter(|m| wanted(m))
            .collect()
    }
}

/// Throwaway PostgreSQL clusters for the tests that need a server of their
/// own (an outage, TLS): under the temporary directory, on a port of their
/// own, trust auth, removed on drop.
pub mod pg {
    use std::{
        path::{Path, PathBuf},
        process::Command,
    };

    /// The server certificate a cluster serves TLS with.
    #[derive(Debug, Clone)]
    pub struct ServerCert {
        pub cert_file: PathBuf,
        pub key_file: PathBuf,
    }

    /// A throwaway PostgreSQL cluster; removed on drop.
    pub struct Cluster {
        bin: PathBuf,
        dir: PathBuf,
        port: u16,
        tls: Option<ServerCert>,
    }

    impl Cluster {
        /// `None` (the test skips) when PostgreSQL's server binaries are
        /// not installed under /usr/lib/postgresql.
        pub fn create() -> Option<Cluster> {
            Self::create_with(None)
        }

        /// A cluster with `ssl = on` serving `tls` (the files are copied
        /// into the cluster's directory, owned by the server's user).
        pub fn create_with(tls: Option<ServerCert>) -> Option<Cluster> {
            let bin = std::fs::read_dir("/usr/lib/postgresql")
                .ok()?
                .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
                .filter(|bin| bin.join("initdb").is_file())
                .max()?;
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .unwrap()
                .port();
            let dir = std::env::temp_dir().join(format!("crm-pg-{}-{port}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let tls = tls.map(|given| {
                let copy = ServerCert {
                    cert_file: dir.join("server.crt"),
                    key_file: dir.join("server.key"),
                };
                std::fs::copy(&given.cert_file, &copy.cert_file).unwrap();
                std::fs::copy(&given.key_file, &copy.key_file).unwrap();
                set_mode(&copy.key_file, 0o600);
                copy
            });
            let cluster = Cluster {
                bin,
                dir,
                port,
                tls,
            };
            // PostgreSQL refuses to run as root: as root, it runs as `postgres`.
            if Self::as_root() {
                cluster.run(
                    Command::new("chown")
                        .args(["-R", "postgres"])
                        .arg(&cluster.dir),
                );
            }
            let data = cluster.data();
            cluster.run(
                cluster
                    .tool("initdb")
                    .args(["-A", "trust", "-U", "postgres", "-D"])
                    .arg(&data),
            );
            cluster.start();
            Some(cluster)
        }

        fn as_root() -> bool {
            Command::new("id")
                .arg("-u")
                .output()
                .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
        }

        fn data(&self) -> PathBuf {
            self.dir.join("data")
        }

        /// The URL of the cluster's `postgres` database over TCP.
        pub fn url(&self) -> String {
            format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
        }

        /// Runs `sql` with psql over the cluster's Unix socket (never TLS)
        /// and returns what it printed, unaligned and without headers.
        pub fn psql(&self, sql: &str) -> String {
            let out = self
                .tool("psql")
                .arg("-h")
                .arg(&self.dir)
                .args([
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    "postgres",
                    "-d",
                    "postgres",
                ])
                .args(["-X", "-A", "-t", "-c", sql])
                .output()
                .unwrap();
            assert!(out.status.success(), "psql {sql}: {out:?}");
            String::from_utf8_lossy(&out.stdout).trim().to_owned()
        }

        fn tool(&self, name: &str) -> Command {
            let path = self.bin.join(name);
            if Self::as_root() {
                let mut command = Command::new("runuser");
                command.args(["-u", "postgres", "--"]).arg(path);
                command
            } else {
                Command::new(path)
            }
        }

        fn run(&self, command: &mut Command) {
            let out = command.output().unwrap();
            assert!(out.status.success(), "{command:?}: {out:?}");
        }

        fn pg_ctl(&self, args: &[&str]) {
            let mut options = format!(
                "-p {} -k {} -c listen_addresses=127.0.0.1",
                self.port,
                self.dir.display()
            );
            if let Some(tls) = &self.tls {
                options.push_str(&format!(
                    " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                    tls.cert_file.display(),
                    tls.key_file.display()
                ));
            }
            let log = self.dir.join("log");
            self.run(
                self.tool("pg_ctl")
                    .arg("-D")
                    .arg(self.data())
                    .args(["-o", &options, "-l"])
                    .arg(&log)
                    .args(["-w"])
                    .args(args),
            );
        }

        pub fn start(&self) {
            self.pg_ctl(&["start"]);
        }

        pub fn stop(&self) {
            self.pg_ctl(&["-m", "fast", "stop"]);
        }
    }

    impl Drop for Cluster {
        fn drop(&mut self) {
            let _ = self
                .tool("pg_ctl")
                .arg("-D")
                .arg(self.data())
                .args(["-m", "immediate", "-w", "stop"])
                .output();
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }

    fn set_mode(path: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
}

/// Certificates made for a test with the `openssl` command: a CA of its
/// own and leaf certificates it signs (P-256 keys, PKCS#8 PEM), valid for
/// a day.
pub mod certs {
    use std::{
        path::{Path, PathBuf},
        process::Command,
    };

    /// A leaf certificate and its key.
    #[derive(Debug, Clone)]
    pub struct Leaf {
        pub cert_file: PathBuf,
        pub key_file: PathBuf,
    }

    /// A test CA in `dir`.
    #[derive(Debug)]
    pub struct Ca {
        dir: PathBuf,
        pub cert_file: PathBuf,
        key_file: PathBuf,
    }

    fn openssl(dir: &Path, args: &[&str]) {
        let out = Command::new("openssl")
            .current_dir(dir)
            .args(args)
            .output()
            .expect("the openssl command (the TLS tests make their certificates with it)");
        assert!(out.status.success(), "openssl {args:?}: {out:?}");
    }

    impl Ca {
        /// A self-signed CA named `name`, its files in `dir`.
        pub fn new(dir: &Path, name: &str) -> Ca {
            std::fs::create_dir_all(dir).unwrap();
            let (cert, key) = (format!("{name}.crt"), format!("{name}.key"));
            openssl(
                dir,
                &[
                    "req",
                    "-x509",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-days",
                    "1",
                    "-subj",
                    &format!("/CN={name}"),
                    "-addext",
                    "basicConstraints=critical,CA:TRUE",
                    "-addext",
                    "keyUsage=critical,keyCertSign,cRLSign",
                    "-keyout",
                    &key,
                    "-out",
                    &cert,
                ],
            );
            Ca {
                dir: dir.to_path_buf(),
                cert_file: dir.join(cert),
                key_file: dir.join(key),
            }
        }

        /// A certificate for `names` (DNS names or IP addresses), for
        /// servers and clients alike.
        pub fn leaf(&self, file: &str, names: &[&str]) -> Leaf {
            let sans: Vec<String> = names
                .iter()
                .map(|n| match n.parse::<std::net::IpAddr>() {
                    Ok(_) => format!("IP:{n}"),
                    Err(_) => format!("DNS:{n}"),
                })
                .collect();
            let ext = self.dir.join(format!("{file}.ext"));
            std::fs::write(
                &ext,
                format!(
                    "subjectAltName={}\nbasicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth,clientAuth\n",
                    sans.join(",")
                ),
            )
            .unwrap();
            let (cert, key, csr) = (
                format!("{file}.crt"),
                format!("{file}.key"),
                format!("{file}.csr"),
            );
            openssl(
                &self.dir,
                &[
                    "req",
                    "-new",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-subj",
                    &format!("/CN={file}"),
                    "-keyout",
                    &key,
                    "-out",
                    &csr,
                ],
            );
            let ca_cert = self.cert_file.display().to_string();
            let ca_key = self.key_file.display().to_string();
            let ext = ext.display().to_string();
            openssl(
                &self.dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    &ca_cert,
                    "-CAkey",
                    &ca_key,
                    "-CAcreateserial",
                    "-days",
                    "1",
                    "-extfile",
                    &ext,
                    "-out",
                    &cert,
                ],
            );
            Leaf {
                cert_file: self.dir.join(cert),
                key_file: self.dir.join(key),
            }
        }
    }
}
