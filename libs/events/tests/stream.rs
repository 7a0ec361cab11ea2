//! The event stream over real gRPC: order without gaps under concurrent
//! writers, resuming, retention, tenant isolation and type filters,
//! heartbeats, shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::{collections::HashSet, sync::Arc, time::Duration};

use crm_auth::Role;
use crm_events::{EventsConfig, NewEvent};
use support::{Next, Producer, event, next, next_event, next_heartbeat, reason, within};
use tonic::Code;

/// The sequencer runs only when woken, so a test that passes shows events
/// pushed by the commit, not found by a poll.
fn pushed_only() -> EventsConfig {
    EventsConfig {
        sequencer_tick: Duration::from_secs(3600),
        heartbeat_interval: Duration::from_millis(200),
        ..EventsConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_reach_a_subscriber_once_each_in_order_without_gaps() {
    const WRITERS: usize = 8;
    const PER_WRITER: usize = 250;
    let producer = Arc::new(
        Producer::start(EventsConfig {
            // Small pages: the replay path is crossed many times too.
            page_size: 50,
            ..pushed_only()
        })
        .await,
    );
    let mut stream = producer.subscribe("acme", 0, &[]).await.unwrap();
    // A subscriber that never reads must hold up no one but itself.
    let _stalled = producer.subscribe("acme", 0, &[]).await.unwrap();

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let producer = Arc::clone(&producer);
            tokio::spawn(async move {
                for i in 0..PER_WRITER {
                    producer
                        .write(vec![event("acme", "test.Written", &format!("{w}-{i}"))])
                        .await;
                }
            })
        })
        .collect();

    let total = WRITERS * PER_WRITER;
    let mut subjects = HashSet::new();
    let mut ids = HashSet::new();
    let mut last = 0;
    while subjects.len() < total {
        let event = next_event(&mut stream).await;
        assert_eq!(event.sequence, last + 1, "no gap and no repeat");
        last = event.sequence;
        assert!(ids.insert(event.id.clone()), "event id {} twice", event.id);
        assert!(
            subjects.insert(event.subject_id.clone()),
            "{} twice",
            event.subject_id
        );
        assert_eq!(event.tenant_id, "acme");
        assert_eq!(event.r#type, "test.Written");
        let payload = event.payload.unwrap();
        assert_eq!(payload.value, event.subject_id.as_bytes());
    }
    for writer in writers {
        writer.await.unwrap();
    }
    assert_eq!(subjects.len(), total);
    assert_eq!(last, total as i64);
    // Nothing more: the next message is a heartbeat at the head.
    assert_eq!(next_heartbeat(&mut stream).await, total as i64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequencers_of_two_processes_on_one_database_take_turns() {
    const WRITERS: usize = 4;
    const PER_WRITER: usize = 100;
    let cfg = EventsConfig {
        // Each process learns of the other's numbering by its tick.
        sequencer_tick: Duration::from_millis(50),
        heartbeat_interval: Duration::from_millis(200),
        ..EventsConfig::default()
    };
    let producer = Arc::new(Producer::start(cfg.clone()).await);
    // A second process: its own pool, its own sequencer.
    let other_db = producer.testdb.connect("producer", 4).await;
    let other = crm_events::Events::open(other_db.clone(), cfg)
        .await
        .unwrap();
    other.spawn_sequencer(producer.shutdown.clone());
    let mut stream = producer.subscribe("acme", 0, &[]).await.unwrap();

    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let (producer, other, other_db) =
                (Arc::clone(&producer), other.clone(), other_db.clone());
            tokio::spawn(async move {
                for i in 0..PER_WRITER {
                    let subject = format!("{w}-{i}");
                    if w % 2 == 0 {
                        producer
                            .write(vec![event("acme", "test.Written", &subject)])
                            .await;
                    } else {
                        let txn = crm_store::begin_write(&other_db).await.unwrap();
                        crm_events::append(&txn, event("acme", "test.Written", &subject))
                            .await
                            .unwrap();
                        txn.commit().await.unwrap();
                        other.outbox().notify();
                    }
                }
            })
        })
        .collect();
    let mut subjects = HashSet::new();
    for expected in 1..=(WRITERS * PER_WRITER) as i64 {
        let event = next_event(&mut stream).await;
        assert_eq!(event.sequence, expected, "no gap and no repeat");
        assert!(subjects.insert(event.subject_id));
    }
    for writer in writers {
        writer.await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_resuming_from_its_cursor_misses_nothing_and_gets_nothing_twice() {
    let producer = Arc::new(Producer::start(pushed_only()).await);
    for batch in 0..10 {
        producer
            .write(
                (0..10)
                    .map(|i| event("acme", "test.Written", &format!("a{batch}-{i}")))
                    .collect(),
            )
            .await;
    }
    let mut stream = producer.subscribe("acme", 0, &[]).await.unwrap();
    let mut cursor = 0;
    for _ in 0..40 {
        let event = next_event(&mut stream).await;
        assert_eq!(event.sequence, cursor + 1);
        cursor = event.sequence;
    }
    drop(stream);

    // More commits while the subscriber is away and as it comes back.
    let writer = tokio::spawn({
        let producer = Arc::clone(&producer);
        async move {
            for i in 0..60 {
                producer
                    .write(vec![event("acme", "test.Written", &format!("b{i}"))])
                    .await;
            }
        }
    });
    let mut stream = producer.subscribe("acme", cursor, &[]).await.unwrap();
    while cursor < 160 {
        let event = next_event(&mut stream).await;
        assert_eq!(event.sequence, cursor + 1, "resumed right after the cursor");
        cursor = event.sequence;
    }
    writer.await.unwrap();
    assert_eq!(next_heartbeat(&mut stream).await, 160);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_events_are_pruned_and_a_too_old_cursor_is_refused() {
    let producer = Producer::start(pushed_only()).await;
    let retention = EventsConfig::default().retention;
    let retention_micros = i64::try_from(retention.as_micros()).unwrap();
    producer
        .write(
            (1..=5)
                .map(|i| event("acme", "test.Old", &format!("old{i}")))
                .collect(),
        )
        .await;
    producer.events.sequence().await.unwrap();
    let boundary = crm_store::now_micros();
    // The next events must be created strictly after the boundary.
    while crm_store::now_micros() <= boundary {
        tokio::task::yield_now().await;
    }
    producer
        .write(
            (6..=10)
                .map(|i| event("acme", "test.New", &format!("new{i}")))
                .collect(),
        )
        .await;
    assert_eq!(producer.events.sequence().await.unwrap(), 10);

    // The boundary is now `retention` ago: the first five are expired.
    let deleted = producer
        .events
        .prune(boundary + retention_micros)
        .await
        .unwrap();
    assert_eq!(deleted, 5);
    // Pruning again finds nothing more.
    assert_eq!(
        producer
            .events
            .prune(boundary + retention_micros)
            .await
            .unwrap(),
        0
    );

    let status = producer.subscribe("acme", 3, &[]).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    assert_eq!(
        reason(&status),
        Some(("CURSOR_EXPIRED".into(), "crm.events".into()))
    );
    assert!(status.message().contains("resynchronise"), "{status:?}");

    // A cursor at the edge lost nothing: it goes on.
    let mut stream = producer.subscribe("acme", 5, &[]).await.unwrap();
    assert_eq!(next_event(&mut stream).await.subject_id, "new6");
    // 0 means the oldest kept.
    let mut stream = producer.subscribe("acme", 0, &[]).await.unwrap();
    assert_eq!(next_event(&mut stream).await.sequence, 6);

    // Beyond the head is a mistake, not an expiry.
    let status = producer.subscribe("acme", 11, &[]).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    let status = producer.subscribe("acme", -1, &[]).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");

    // Everything expired: a caught-up cursor still works, an older one not.
    let later = crm_store::now_micros() + retention_micros + 1;
    assert_eq!(producer.events.prune(later).await.unwrap(), 5);
    let mut stream = producer.subscribe("acme", 10, &[]).await.unwrap();
    assert_eq!(next_heartbeat(&mut stream).await, 10);
    let mut stream = producer.subscribe("acme", 0, &[]).await.unwrap();
    assert_eq!(next_heartbeat(&mut stream).await, 10);
    let status = producer.subscribe("acme", 9, &[]).await.unwrap_err();
    assert_eq!(status.code(), Code::FailedPrecondition, "{status:?}");
    // And new events go on from the head.
    producer
        .write(vec![event("acme", "test.New", "after")])
        .await;
    let event = next_event(&mut stream).await;
    assert_eq!((event.sequence, event.subject_id.as_str()), (11, "after"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_see_only_their_tenants_events_of_the_types_asked_for() {
    let producer = Producer::start(pushed_only()).await;
    producer
        .write(vec![
            event("acme", "test.Created", "a1"),
            event("globex", "test.Created", "g1"),
            event("acme", "test.Updated", "a2"),
            event("globex", "test.Updated", "g2"),
            event("acme", "test.Created", "a3"),
            event("globex", "test.Created", "g3"),
        ])
        .await;

    let subjects = |events: Vec<crm_events::Event>| -> Vec<String> {
        events.into_iter().map(|e| e.subject_id).collect()
    };
    // Every matching event up to the heartbeat's head came before it; the
    // head is the tenant's own newest event (acme's is 5, globex's 6).
    async fn until_caught_up(
        stream: &mut tonic::Streaming<crm_proto::crm::events::v1::SubscribeResponse>,
        own_head: i64,
    ) -> Vec<crm_events::Event> {
        let mut events = Vec::new();
        loop {
            match next(stream).await {
                Next::Event(event) => events.push(*event),
                Next::Heartbeat(head) => {
                    assert_eq!(head, own_head);
                    return events;
                }
            }
        }
    }

    let mut acme = producer.subscribe("acme", 0, &[]).await.unwrap();
    let events = until_caught_up(&mut acme, 5).await;
    assert!(events.iter().all(|e| e.tenant_id == "acme"));
    assert_eq!(subjects(events), ["a1", "a2", "a3"]);

    let mut globex = producer.subscribe("globex", 0, &[]).await.unwrap();
    assert_eq!(
        subjects(until_caught_up(&mut globex, 6).await),
        ["g1", "g2", "g3"]
    );

    let mut created = producer
        .subscribe("acme", 0, &["test.Created"])
        .await
        .unwrap();
    assert_eq!(
        subjects(until_caught_up(&mut created, 5).await),
        ["a1", "a3"]
    );

    // Followed live too: globex's and other types' events do not leak.
    producer
        .write(vec![
            event("globex", "test.Created", "g4"),
            event("acme", "test.Updated", "a5"),
            event("acme", "test.Created", "a6"),
        ])
        .await;
    assert_eq!(next_event(&mut created).await.subject_id, "a6");
    assert_eq!(next_event(&mut acme).await.subject_id, "a5");
    assert_eq!(next_event(&mut acme).await.subject_id, "a6");
    assert_eq!(next_event(&mut globex).await.subject_id, "g4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quiet_stream_gets_heartbeats_with_the_head() {
    let producer = Producer::start(pushed_only()).await;
    let mut stream = producer.subscribe("acme", 0, &[]).await.unwrap();
    assert_eq!(next_heartbeat(&mut stream).await, 0);
    producer
        .write(vec![event("acme", "test.Written", "x")])
        .await;
    assert_eq!(next_event(&mut stream).await.sequence, 1);
    assert_eq!(next_heartbeat(&mut stream).await, 1);
    assert_eq!(next_heartbeat(&mut stream).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_carry_their_type_payload_and_the_writers_trace() {
    use tracing::Instrument as _;
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;

    let producer = Producer::start(pushed_only()).await;
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let span = tracing::info_span!("change");
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "traceparent",
        format!("00-{trace_id}-00f067aa0ba902b7-01")
            .parse()
            .unwrap(),
    );
    span.set_parent(crm_telemetry::extract_trace_context(&headers))
        .unwrap();
    let message = prost_types::Duration {
        seconds: 42,
        nanos: 0,
    };
    let time = crm_store::now_micros();
    producer
        .write(vec![NewEvent::new("acme", "subject-1", time, &message)])
        .instrument(span)
        .await;

    let mut stream = producer.subscribe("acme", 0, &[]).await.unwrap();
    let event = next_event(&mut stream).await;
    assert_eq!(event.r#type, "google.protobuf.Duration");
    assert_eq!(event.subject_id, "subject-1");
    assert_eq!(
        event
            .payload
            .unwrap()
            .to_msg::<prost_types::Duration>()
            .unwrap(),
        message
    );
    assert_eq!(
        crm_rpc::fields::micros(&event.time.unwrap(), "time").unwrap(),
        time
    );
    assert!(
        event.traceparent.starts_with(&format!("00-{trace_id}-")),
        "{}",
        event.traceparent
    );
    assert!(uuid::Uuid::parse_str(&event.id).is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_open_streams_with_unavailable() {
    let producer = Producer::start(pushed_only()).await;
    let mut stream = producer.subscribe("acme", 0, &[]).await.unwrap();
    assert_eq!(next_heartbeat(&mut stream).await, 0);
    producer.shutdown.trigger();
    let status = loop {
        match within("the stream to end", stream.message()).await {
            Ok(Some(_)) => continue,
            Ok(None) => panic!("the stream ended without a status"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(
        reason(&status).map(|(reason, _)| reason).as_deref(),
        Some("SHUTTING_DOWN")
    );
    within("the server to stop", producer.server)
        .await
        .unwrap()
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_integrations_may_subscribe() {
    let producer = Producer::start(pushed_only()).await;
    let token = producer.keys.token("acme", &[Role::Sales, Role::Manager]);
    let status = support::subscribe(producer.addr, &token, 0, &[])
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied, "{status:?}");
    let status = producer.subscribe("acme", 0, &[""]).await.unwrap_err();
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
}

/// Finding 9: a type-filtered subscriber gets its heartbeats while other
/// tenants keep the service busy (the quiet timer is this subscriber's,
/// not the service's), and the heartbeat's head is the tenant's own
/// position: other tenants' writes do not move it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding_9_heartbeats_come_on_a_busy_service_and_show_only_the_tenants_position() {
    let producer = Arc::new(Producer::start(pushed_only()).await);
    producer
        .write(vec![
            event("acme", "test.Wanted", "a1"),
            event("acme", "test.Other", "a2"),
        ])
        .await;
    let mut stream = producer
        .subscribe("acme", 0, &["test.Wanted"])
        .await
        .unwrap();
    assert_eq!(next_event(&mut stream).await.subject_id, "a1");

    // Another tenant writes without pause (bounded in count) while acme's
    // subscriber waits for its heartbeat.
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = tokio::spawn({
        let (producer, stop) = (Arc::clone(&producer), Arc::clone(&stop));
        async move {
            for i in 0..5000 {
                if stop.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                producer
                    .write(vec![event("globex", "test.Wanted", &format!("g{i}"))])
                    .await;
            }
        }
    });
    support::eventually(Duration::from_secs(10), "the other tenant's writes", || {
        let head = producer.events.head();
        async move { (head > 20).then_some(()) }
    })
    .await;
    let mut heads = Vec::new();
    while heads.len() < 2 {
        let message = tokio::time::timeout(Duration::from_secs(3), next(&mut stream))
            .await
            .expect("a heartbeat within 3s (the interval is 200ms) on a busy service");
        match message {
            Next::Heartbeat(head) => heads.push(head),
            Next::Event(event) => panic!("acme has no new event, got {event:?}"),
        }
    }
    let busy = !writer.is_finished();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    writer.await.unwrap();
    assert!(
        busy,
        "the heartbeats came while the other tenant was writing"
    );
    assert!(producer.events.head() > 20);
    assert_eq!(
        heads,
        [2, 2],
        "acme's own newest event, not the service's head"
    );
}

/// Finding 3: a subscriber that reads nothing holds a bounded number of
/// bytes on the server (not hundreds of large events), and once it has
/// taken nothing for the stall timeout it is dropped with
/// RESOURCE_EXHAUSTED (SUBSCRIBER_STALLED).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finding_3_a_stalled_subscriber_is_bounded_in_bytes_and_dropped_with_a_status() {
    const EVENTS: usize = 200;
    let producer = Producer::start(EventsConfig {
        subscriber_buffer_bytes: 64 * 1024,
        subscriber_stall_timeout: Duration::from_millis(300),
        ..pushed_only()
    })
    .await;
    let big = |i: usize| {
        let mut e = event("acme", "test.Big", &format!("b{i}"));
        e.payload.value = vec![b'x'; 32 * 1024];
        e
    };
    for batch in 0..EVENTS / 20 {
        producer
            .write((0..20).map(|i| big(batch * 20 + i)).collect())
            .await;
    }
    let mut stalled = producer.subscribe("acme", 0, &[]).await.unwrap();
    // A reading subscriber is not dropped: it gets everything.
    let mut reader = producer.subscribe("acme", 0, &[]).await.unwrap();
    for _ in 0..EVENTS {
        next_event(&mut reader).await;
    }
    support::eventually(
        Duration::from_secs(10),
        "the stalled subscriber's drop",
        || {
            let dropped = producer.events.stalled_subscribers_dropped();
            async move { (dropped == 1).then_some(()) }
        },
    )
    .await;
    let mut received = 0;
    let status = loop {
        match within("the stalled stream's end", stalled.message()).await {
            Ok(Some(_)) => received += 1,
            Ok(None) => panic!("ended without a status after {received} events"),
            Err(status) => break status,
        }
    };
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert_eq!(
        reason(&status),
        Some(("SUBSCRIBER_STALLED".into(), "crm.events".into()))
    );
    // What was in flight (the transport's windows) at most; the server's
    // queue was dropped.
    assert!(
        received < EVENTS / 2,
        "{received} events reached a stalled client"
    );
}

/// The noisy-neighbour goal: one tenant's streams together
/// are sent at most `tenant_bytes_per_second` (a second's worth at once),
/// so many of them replaying a big backlog cannot take the processor;
/// another tenant's stream is not held up behind them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_streams_share_its_byte_rate_and_other_tenants_are_not_held_up() {
    const RATE: usize = 256 * 1024;
    const SIZE: usize = 16 * 1024;
    const EVENTS: usize = 24;
    let producer = Producer::start(EventsConfig {
        tenant_bytes_per_second: RATE as u32,
        ..pushed_only()
    })
    .await;
    let big = |i: usize| {
        let mut e = event("acme", "test.Big", &format!("b{i}"));
        e.payload.value = vec![b'x'; SIZE];
        e
    };
    producer.write((0..EVENTS).map(big).collect()).await;
    producer
        .write(vec![event("globex", "test.Small", "g1")])
        .await;

    let started = tokio::time::Instant::now();
    // Each reader notes when each of its events came and how big it was.
    let read = |mut stream: tonic::Streaming<_>, count: usize| {
        tokio::spawn(async move {
            let mut arrivals = Vec::new();
            while arrivals.len() < count {
                let event = next_event(&mut stream).await;
                let size = event.payload.map_or(0, |p| p.value.len());
                arrivals.push((tokio::time::Instant::now(), size));
            }
            arrivals
        })
    };
    let acme = [
        read(producer.subscribe("acme", 0, &[]).await.unwrap(), EVENTS),
        read(producer.subscribe("acme", 0, &[]).await.unwrap(), EVENTS),
    ];
    let globex = read(producer.subscribe("globex", 0, &[]).await.unwrap(), 1);
    let globex_at = within("globex's event", globex).await.unwrap()[0].0;
    let mut arrivals = Vec::new();
    for reader in acme {
        arrivals.extend(within("acme's events", reader).await.unwrap());
    }
    arrivals.sort();

    let mut sent = 0;
    for (at, size) in &arrivals {
        sent += size;
        let allowed = RATE + (RATE as f64 * (*at - started).as_secs_f64()) as usize;
        assert!(
            sent <= allowed,
            "{sent} bytes reached acme's streams {:?} in; its budget allows {allowed}",
            *at - started
        );
    }
    assert_eq!(sent, 2 * EVENTS * SIZE, "both streams got everything");
    let last = arrivals.last().map(|(at, _)| *at).unwrap();
    assert!(
        globex_at < last,
        "globex's event waited {:?} behind acme's paced streams",
        globex_at - started
    );
}
