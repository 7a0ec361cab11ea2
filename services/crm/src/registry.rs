//! The services of the suite, one line each: the settings section and
//! service type, and the port it listens on by default. `crm serve`,
//! `crm migrate`, the settings, the gateway's routes and the test suite are
//! all generic over this list.

crate::suite! {
    leads: crm_leads::Leads = 50061,
    opportunities: crm_opportunities::Opportunities = 50062,
    contracts: crm_contracts::Contracts = 50063,
    delivery: crm_delivery::Delivery = 50064,
    tickets: crm_tickets::Tickets = 50065,
}
