//! The storage ceiling on SQLite: the rows a CreateLead commits (the lead,
//! its audit entry, its outbox event) inserted straight into the same
//! schema with the same durability (WAL, synchronous=FULL, BEGIN
//! IMMEDIATE), by the same number of concurrent callers. PostgreSQL's
//! ceiling is measured with pgbench (bench/create_lead.sql).

use std::time::Instant;

use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, Statement};
use sea_orm_migration::MigratorTrait;

use crate::{Args, BoxError, Report, Tally, report};

const LEAD: &str = "INSERT INTO leads (id, tenant_id, version, company, contact_name, phone, phone_key, email, email_key, name_key, industry, region, company_size, budget, source_channel, owner_id, status, score, score_breakdown, last_follow_up_time, next_follow_up_time, follow_up_deadline, attention_time, notes, disqualify_reason, opportunity_id, account_id, create_time, update_time, creator, updater) VALUES (?, 'bench', 1, ?, 'Load Tester', ?, ?, '', NULL, ?, '', '', 0, NULL, 'referral', 'bench', 'new', 0, '{}', NULL, NULL, ?, ?, '', NULL, NULL, NULL, ?, ?, 'bench', 'bench')";
const AUDIT: &str = "INSERT INTO audit_entries (id, tenant_id, subject_id, action, actor, time, changes, reason) VALUES (?, 'bench', ?, 'lead.created', 'bench', ?, '[]', '')";
const OUTBOX: &str = "INSERT INTO outbox_events (id, sequence, tenant_id, type, subject_id, time, traceparent, tracestate, payload, create_time) VALUES (?, NULL, 'bench', 'crm.leads.v1.LeadCreated', ?, ?, '', '', ?, ?)";

async fn insert_one(db: &DatabaseConnection, n: u64) -> Result<(), sea_orm::DbErr> {
    let (id, now) = (crm_store::new_id(), crm_store::now_micros());
    let phone = format!("+8{n:013}");
    let txn = crm_store::begin_write(db).await?;
    let stmt = |sql: &str, values: Vec<sea_orm::Value>| {
        Statement::from_sql_and_values(DbBackend::Sqlite, sql, values)
    };
    txn.execute_raw(stmt(
        LEAD,
        vec![
            id.clone().into(),
            format!("Ceiling {n}").into(),
            phone.clone().into(),
            phone.into(),
            format!("ceiling{n}|loadtester").into(),
            now.into(),
            now.into(),
            now.into(),
            now.into(),
        ],
    ))
    .await?;
    txn.execute_raw(stmt(
        AUDIT,
        vec![crm_store::new_id().into(), id.clone().into(), now.into()],
    ))
    .await?;
    txn.execute_raw(stmt(
        OUTBOX,
        vec![
            crm_store::new_id().into(),
            id.into(),
            now.into(),
            vec![0_u8; 200].into(),
            now.into(),
        ],
    ))
    .await?;
    txn.commit().await
}

pub async fn sqlite(args: &Args) -> Result<Report, BoxError> {
    let location = crm_store::Location {
        url: format!("sqlite://{}?mode=rwc", args.sqlite_file.display()),
        schema: None,
    };
    let db = crm_store::connect(
        &location,
        u32::try_from(args.concurrency).unwrap_or(32).min(64),
    )
    .await?;
    crm_leads::store::Migrator::up(&db, None).await?;
    let started = Instant::now();
    let (measure_from, stop_at) = (started + args.warmup, started + args.warmup + args.duration);
    let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(
        u64::try_from(crm_store::now_micros())? % 1_000_000_000,
    ));
    let mut workers = Vec::new();
    for _ in 0..args.concurrency.max(1) {
        let (db, counter) = (db.clone(), counter.clone());
        workers.push(tokio::spawn(async move {
            let mut tally = Tally::new()?;
            loop {
                let begin = Instant::now();
                if begin >= stop_at {
                    break;
                }
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let result = insert_one(&db, n).await;
                if begin < measure_from {
                    continue;
                }
                tally.requests += 1;
                tally.latency.saturating_record(
                    u64::try_from(begin.elapsed().as_micros())
                        .unwrap_or(u64::MAX)
                        .max(1),
                );
                if let Err(e) = result {
                    *tally.errors.entry(e.to_string()).or_default() += 1;
                }
            }
            Ok::<Tally, BoxError>(tally)
        }));
    }
    let mut total = Tally::new()?;
    for worker in workers {
        total.merge(&worker.await??)?;
    }
    Ok(report(args, total, args.duration.as_secs_f64()))
}
