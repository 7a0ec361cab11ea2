//! No tenant starves another in storage and background work: big imports
//! of one tenant leave room for another's writes, and shutdown under
//! imports stays within the grace period.

use std::{sync::Arc, time::Duration};

use crm_auth::Role;
use crm_e2e::*;
use crm_proto::crm::leads::v1 as pb;
use tokio::time::Instant;
use tonic_types::StatusExt as _;

const IMPORT_ROWS: usize = 10_000;

/// `rows` distinct leads for one import; `batch` keeps imports apart.
fn import(batch: usize, rows: usize) -> pb::BatchCreateLeadsRequest {
    pb::BatchCreateLeadsRequest {
        request_id: format!("import-{batch}"),
        leads: (0..rows)
            .map(|i| {
                lead(
                    &format!("Bulk {batch}-{i}"),
                    &format!("+86 139 {batch:04} {i:05}"),
                )
            })
            .collect(),
        ..Default::default()
    }
}

/// Finding 7: while three big imports of one tenant run at once, another
/// tenant's CreateLead goes through and each import stays whole (one
/// transaction). The wait itself is printed, not asserted: speed is a
/// benchmark's business.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding_7_big_imports_stay_whole_while_another_tenant_writes() {
    // Three imports at once exceed a tenant's import budget, and the other
    // tenant's back-to-back CreateLeads its user's rate: this finding is
    // about the write queue, so the budget and the rate limits are off.
    let suite = start_with(|s| {
        s.leads.import_rows_per_second = 0;
        for limit in [&mut s.gateway.rate_limit, &mut s.server.rate_limit] {
            limit.requests_per_second = 0;
            limit.subject_requests_per_second = 0;
        }
    })
    .await;
    let bulk = suite.leads_client(Some(&suite.token(
        "bulk",
        "boss",
        &[Role::Manager, Role::Admin],
    )));
    let began = Instant::now();
    let imports: Vec<_> = (0..3)
        .map(|batch| {
            let mut bulk = bulk.clone();
            tokio::spawn(async move {
                let reply = bulk.batch_create_leads(import(batch, IMPORT_ROWS)).await;
                (reply.unwrap().into_inner().accepted_count, began.elapsed())
            })
        })
        .collect();
    let mut amy = suite.leads_client(Some(&suite.token("acme", "amy", &[Role::Sales])));
    let mut slowest = Duration::ZERO;
    let mut created = 0;
    // CreateLead of another tenant while the imports run (bounded).
    while created < 500 && !imports.iter().all(|i| i.is_finished()) {
        let call = Instant::now();
        amy.create_lead(pb::CreateLeadRequest {
            lead: Some(lead(
                &format!("Acme {created}"),
                &format!("+86 138 0000 {created:04}"),
            )),
            ..Default::default()
        })
        .await
        .unwrap();
        slowest = slowest.max(call.elapsed());
        created += 1;
    }
    let mut all_imports = Duration::ZERO;
    for import in imports {
        let (accepted, took) = import.await.unwrap();
        assert_eq!(accepted as usize, IMPORT_ROWS, "each import whole");
        all_imports = all_imports.max(took);
    }
    eprintln!(
        "CreateLead during three {IMPORT_ROWS}-row imports ({all_imports:?} in all): \
         {created} calls, slowest {slowest:?}"
    );
    // How long a write waits is a benchmark figure, not an assertion: the
    // rule that turns go round the waiting tenants is proven by
    // crm-store's `finding_7_turns_go_round_the_tenants_waiting`.
    assert!(created > 0, "another tenant wrote while the imports ran");
}

/// Finding 14: a suite stopped while imports run (and the sweeper and the
/// event machinery with them) is done within its grace period.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding_14_shutdown_under_imports_stays_within_the_grace_period() {
    const GRACE: Duration = Duration::from_secs(2);
    let mut suite = start_with(|settings| {
        settings.server.grace_period = GRACE;
        // Imports back to back, past any budget: the shutdown is under load.
        settings.leads.import_rows_per_second = 0;
    })
    .await;
    let bulk = suite.leads_client(Some(&suite.token(
        "bulk",
        "boss",
        &[Role::Manager, Role::Admin],
    )));
    let done = Arc::new(tokio::sync::Notify::new());
    // Imports back to back until the suite is gone (bounded).
    let importer = tokio::spawn({
        let (mut bulk, done) = (bulk.clone(), Arc::clone(&done));
        async move {
            for batch in 0..20 {
                if bulk
                    .batch_create_leads(import(batch, IMPORT_ROWS))
                    .await
                    .is_err()
                {
                    return;
                }
                done.notify_one();
            }
        }
    });
    // One import went through: the next is under way.
    tokio::time::timeout(Duration::from_secs(120), done.notified())
        .await
        .expect("an import within 120s");
    let began = Instant::now();
    suite.stop().await;
    let took = began.elapsed();
    importer.await.unwrap();
    eprintln!("stopped under imports in {took:?} (grace {GRACE:?})");
    assert!(
        took < GRACE + Duration::from_millis(500),
        "the suite took {took:?} to stop with a grace period of {GRACE:?}"
    );
}

/// The noisy-neighbour benchmark: one tenant's back-to-back imports took
/// the machine from the others (the quiet tenant's p99 rose 2.4 times with
/// imports alone). A tenant's imports draw on its own budget of rows per
/// second: past it an import is RESOURCE_EXHAUSTED (IMPORT_RATE_LIMITED)
/// with a RetryInfo, and nothing of it is stored, while another tenant's
/// import goes through. A retried import is not charged twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue10_a_tenants_imports_draw_on_its_own_budget_of_rows() {
    let suite = start_with(|s| {
        s.leads.max_import_rows = 100;
        s.leads.import_rows_per_second = 1;
    })
    .await;
    let mut bulk = suite.leads_client(Some(&suite.token("bulk", "boss", &[Role::Manager])));
    let full = bulk.batch_create_leads(import(0, 100)).await.unwrap();
    assert_eq!(
        full.into_inner().accepted_count,
        100,
        "one full import fits"
    );
    // Its retry (the reply was lost, say) is answered from the record
    // without drawing on the budget again.
    let retried = bulk.batch_create_leads(import(0, 100)).await.unwrap();
    assert_eq!(retried.into_inner().accepted_count, 100, "the same answer");
    let over = bulk.batch_create_leads(import(1, 10)).await.unwrap_err();
    assert_eq!(
        (over.code(), over.get_details_error_info().map(|i| i.reason)),
        (
            tonic::Code::ResourceExhausted,
            Some("IMPORT_RATE_LIMITED".to_owned())
        ),
        "{over:?}"
    );
    let retry = over.get_details_retry_info().and_then(|r| r.retry_delay);
    assert!(retry.is_some_and(|d| d > Duration::ZERO), "{over:?}");
    let listed = bulk
        .list_leads(pb::ListLeadsRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert!(
        listed
            .leads
            .iter()
            .all(|l| l.company.starts_with("Bulk 0-")),
        "nothing of the refused import is stored"
    );
    let mut other = suite.leads_client(Some(&suite.token("acme", "amy", &[Role::Manager])));
    let theirs = other.batch_create_leads(import(2, 100)).await.unwrap();
    assert_eq!(
        theirs.into_inner().accepted_count,
        100,
        "another tenant's own"
    );
}
