//! Limits, deadlines and crashes: a clean error, the suite keeps serving,
//! and nothing is half-written.

use std::time::Duration;

use crm_auth::Role;
use crm_e2e::*;
use crm_proto::crm::leads::v1 as pb;
use tonic::Code;

fn rows(n: usize, prefix: &str, series: usize) -> Vec<pb::Lead> {
    (0..n)
        .map(|i| pb::Lead {
            company: format!("{prefix} {i}"),
            contact_name: "Han Meimei".into(),
            phone: format!("+86 1{series}9 {i:08}"),
            source_channel: "trade-show".into(),
            notes: "imported".into(),
            ..Default::default()
        })
        .collect()
}

async fn lead_count(client: &mut LeadsClient) -> i64 {
    let stats = client
        .get_channel_stats(pb::GetChannelStatsRequest {})
        .await
        .unwrap()
        .into_inner();
    stats.channels.iter().map(|c| c.leads).sum()
}

async fn still_serving(client: &mut LeadsClient) {
    let reply = client
        .create_lead(pb::CreateLeadRequest {
            lead: Some(pb::Lead {
                company: "After".into(),
                source_channel: "sem".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await;
    assert!(reply.is_ok(), "the suite keeps serving: {reply:?}");
}

#[tokio::test]
async fn an_oversized_request_is_refused_cleanly() {
    let suite = start_with(|s| {
        s.server.max_request_bytes = 64 * 1024;
        s.gateway.max_request_bytes = 64 * 1024;
    })
    .await;
    let mut boss = suite.leads_client(Some(&suite.token("acme", "boss", &[Role::Manager])));
    let big = pb::BatchCreateLeadsRequest {
        leads: rows(2_000, "Big", 0),
        ..Default::default()
    };
    let err = boss.batch_create_leads(big.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::ResourceExhausted, "{err:?}");
    // The service itself refuses it too when reached directly.
    let mut direct = suite.leads_direct(Some(&suite.token("acme", "boss", &[Role::Manager])));
    let err = direct.batch_create_leads(big).await.unwrap_err();
    assert!(
        matches!(err.code(), Code::ResourceExhausted | Code::OutOfRange),
        "{err:?}"
    );
    still_serving(&mut boss).await;
    assert_eq!(lead_count(&mut boss).await, 1);
}

#[tokio::test]
async fn an_expired_deadline_is_a_clean_error_and_leaves_nothing_half_written() {
    let suite = start().await;
    let mut boss = suite.leads_client(Some(&suite.token("acme", "boss", &[Role::Manager])));
    let mut request = tonic::Request::new(pb::BatchCreateLeadsRequest {
        leads: rows(3_000, "Slow", 0),
        ..Default::default()
    });
    request.set_timeout(Duration::from_millis(1));
    let err = boss.batch_create_leads(request).await.unwrap_err();
    assert!(
        matches!(err.code(), Code::DeadlineExceeded | Code::Cancelled),
        "{err:?}"
    );
    still_serving(&mut boss).await;
    let count = lead_count(&mut boss).await;
    assert!(
        count == 1 || count == 3_001,
        "all or none of the import: {count}"
    );
}

#[tokio::test]
async fn an_import_interrupted_by_a_crash_is_stored_once_after_the_retry() {
    const ROWS: usize = 3_000;
    let mut suite = start().await;
    let token = suite.token("acme", "boss", &[Role::Manager]);
    let mut total = 0;
    let mut after_crash = Vec::new();
    // Crash at a spread of points: right after sending, and after more and
    // more round trips, so some crashes land before, some during and some
    // after the import's transaction.
    for (round, probes) in [0_usize, 4, 32, 128, 512, 2048].into_iter().enumerate() {
        let request = pb::BatchCreateLeadsRequest {
            request_id: format!("import-crash-{round}"),
            leads: rows(ROWS, &format!("Crash{round}"), round),
            ..Default::default()
        };
        let mut client = suite.leads_client(Some(&token));
        let in_flight = tokio::spawn({
            let request = request.clone();
            async move { client.batch_create_leads(request).await }
        });
        let mut probe = suite.leads_client(Some(&token));
        for _ in 0..probes {
            let _ = probe.get_lead_config(pb::GetLeadConfigRequest {}).await;
        }
        suite.kill().await;
        let _ = in_flight.await;

        suite.restart().await;
        let mut boss = suite.leads_client(Some(&token));
        let stored = lead_count(&mut boss).await - total;
        assert!(
            stored == 0 || stored == ROWS as i64,
            "round {round}: none half-written, found {stored}"
        );
        after_crash.push(stored);

        let retried = boss.batch_create_leads(request).await.unwrap().into_inner();
        assert_eq!(
            retried.accepted_count, ROWS as i32,
            "round {round}: every row stored once"
        );
        assert_eq!(retried.rejected_count, 0);
        total += ROWS as i64;
        assert_eq!(
            lead_count(&mut boss).await,
            total,
            "round {round}: nothing twice"
        );
    }
    eprintln!("rows stored when the crash came, per round: {after_crash:?}");
}
