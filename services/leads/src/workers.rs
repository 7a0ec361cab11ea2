//! The service's own work: the sweeper that returns overdue leads to the
//! pool, and automatic conversion (DOMAIN 1): a lead whose score reached
//! the tenant's threshold is converted into an opportunity exactly once,
//! driven by its own `LeadQualified` event. While the opportunities service
//! is down the event stays unapplied and is retried with backoff, so the
//! lead converts when it comes back.

use std::{future::Future, time::Duration};

use crm_events::{Event, LocalHandler};
use crm_proto::crm::leads::v1 as pb;
use prost::Message;
use sea_orm::DatabaseTransaction;

use crate::{
    app::{App, ConvertError, Converted},
    domain::{Actor, LeadError, LeadStatus, Role},
};

/// Who converts, in the audit trail and towards the opportunities service
/// (the subject of the service's conversion tokens).
pub const CONVERTER: &str = "system:leads-converter";

/// Returns overdue leads to the pool every `interval` until `shutdown`
/// completes, acting as `sweeper`. Each lead is its own unit of work, so
/// stopping between (or during) them loses nothing and repeats nothing.
pub fn spawn_sweeper(
    app: App,
    sweeper: &'static str,
    interval: Duration,
    batch: u64,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        tokio::pin!(shutdown);
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut shutdown => return,
                _ = ticks.tick() => {}
            }
            // Shutdown cuts a sweep short at once; an open unit of work is
            // rolled back.
            let swept = tokio::select! {
                () = &mut shutdown => return,
                swept = sweep(&app, sweeper, crm_store::now_micros(), batch) => swept,
            };
            crm_service::sweeper_ran("leads", "pool", swept.skipped);
            if swept.returned > 0 || swept.skipped > 0 {
                tracing::info!(
                    returned = swept.returned,
                    skipped = swept.skipped,
                    "returned overdue leads to the pool"
                );
            }
        }
    })
}

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Swept {
    pub returned: usize,
    /// Leads that failed (unreadable, or a write that failed): tried again
    /// at the next sweep.
    pub skipped: usize,
}

/// One pass over every lead overdue at `now`, of every tenant, `batch`
/// keys per query: each lead in a unit of work of its own, so a lead being
/// changed, changed meanwhile or unreadable holds up nobody else.
pub async fn sweep(app: &App, sweeper: &str, now: i64, batch: u64) -> Swept {
    let mut swept = Swept::default();
    let mut after = None;
    loop {
        let page = match app.overdue_leads(now, after.as_ref(), batch).await {
            Ok(page) => page,
            Err(err) => {
                tracing::warn!(error = %err, "lead sweep failed; retrying next interval");
                return swept;
            }
        };
        let more = page.len() as u64 == batch;
        for lead in page {
            match app
                .return_overdue(&lead.tenant_id, &lead.id, sweeper, now)
                .await
            {
                Ok(true) => swept.returned += 1,
                Ok(false) => {}
                Err(err) => {
                    swept.skipped += 1;
                    tracing::warn!(
                        tenant = %lead.tenant_id, lead = %lead.id, error = %err,
                        "returning an overdue lead failed; passing over it"
                    );
                }
            }
            after = Some(lead);
        }
        if !more {
            return swept;
        }
    }
}

pub struct AutoConvert {
    pub(crate) app: App,
}

fn system() -> Actor {
    Actor::new(CONVERTER, vec![Role::Integration])
}

/// Why an automatic conversion did not happen, and whether trying again
/// can change that.
#[derive(Debug)]
pub struct ConvertFailure {
    message: String,
    /// A refusal (the request is invalid, too large, the lead is closed),
    /// not an outage: the event is dead-lettered after a few attempts.
    permanent: bool,
}

impl std::fmt::Display for ConvertFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl ConvertFailure {
    fn permanent(message: impl ToString) -> Self {
        ConvertFailure {
            message: message.to_string(),
            permanent: true,
        }
    }

    fn transient(message: impl ToString) -> Self {
        ConvertFailure {
            message: message.to_string(),
            permanent: false,
        }
    }
}

impl From<LeadError> for ConvertFailure {
    fn from(err: LeadError) -> Self {
        match err {
            // The database: it comes back.
            LeadError::Store(_) => ConvertFailure::transient(err),
            _ => ConvertFailure::permanent(err),
        }
    }
}

impl From<ConvertError> for ConvertFailure {
    fn from(err: ConvertError) -> Self {
        match err {
            ConvertError::Lead(lead) => lead.into(),
            ConvertError::Unavailable(_) => ConvertFailure::transient(err),
            ConvertError::Refused(ref status) => {
                let permanent = !matches!(
                    status.code(),
                    tonic::Code::Aborted
                        | tonic::Code::Internal
                        | tonic::Code::Unauthenticated
                        | tonic::Code::DataLoss
                );
                ConvertFailure {
                    message: err.to_string(),
                    permanent,
                }
            }
        }
    }
}

impl LocalHandler for AutoConvert {
    /// What the remote step produced, or nothing to do (the lead changed
    /// since it qualified).
    type Plan = Option<Converted>;
    type Error = ConvertFailure;

    async fn prepare(&self, event: &Event) -> Result<Option<Converted>, ConvertFailure> {
        let payload = event
            .payload
            .as_ref()
            .ok_or_else(|| ConvertFailure::permanent("event without payload"))?;
        let qualified = pb::LeadQualified::decode(payload.value.as_slice())
            .map_err(ConvertFailure::permanent)?;
        let id = qualified.lead.map(|l| l.id).unwrap_or_default();
        let lead = match self.app.get(&event.tenant_id, &id, &system()).await {
            Ok(lead) => lead,
            Err(LeadError::NotFound(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if lead.status != LeadStatus::Qualified {
            return Ok(None);
        }
        // The service acts for itself (a service token, role internal).
        let converted = self.app.convert_remotely(&lead).await?;
        Ok(Some(converted))
    }

    async fn apply(
        &self,
        txn: &DatabaseTransaction,
        event: &Event,
        plan: Option<Converted>,
    ) -> Result<(), ConvertFailure> {
        let Some(converted) = plan else {
            return Ok(());
        };
        self.app
            .mark_converted_in(
                txn,
                &event.tenant_id,
                &event.subject_id,
                &converted,
                &system(),
                crm_store::now_micros(),
            )
            .await?;
        Ok(())
    }

    fn is_permanent(&self, error: &ConvertFailure) -> bool {
        error.permanent
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use sea_orm::{ConnectionTrait, DatabaseConnection, DbBackend, TransactionTrait};

    use super::*;
    use crate::{Leads, LeadsSettings, SWEEPER};

    /// The leads database of one test: a schema of its own on the
    /// PostgreSQL server of `CRM_TEST_DATABASE_URL`, else a SQLite file.
    async fn test_db() -> (DatabaseConnection, String, std::path::PathBuf) {
        let name = format!("leads_test_{}", crm_store::new_id().replace('-', "_"));
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).unwrap();
        let url = std::env::var("CRM_TEST_DATABASE_URL").ok();
        let location = crm_store::Location::for_service(&name, url.as_deref(), &dir);
        let db = crm_store::connect(&location, 4).await.unwrap();
        (db, name, dir)
    }

    async fn insert_lead(db: &impl ConnectionTrait, tenant: &str, id: &str, deadline: i64) {
        db.execute_unprepared(&format!(
            "INSERT INTO leads (id, tenant_id, version, company, contact_name, phone, phone_key, \
             email, email_key, name_key, industry, region, company_size, budget, source_channel, \
             owner_id, status, score, score_breakdown, last_follow_up_time, next_follow_up_time, \
             follow_up_deadline, attention_time, notes, disqualify_reason, opportunity_id, \
             account_id, create_time, update_time, creator, updater) VALUES ('{id}', '{tenant}', \
             1, 'Co {id}', 'Contact', '+86{deadline}', '+86{deadline}', '', NULL, 'co{id}|contact', \
             '', '', 0, NULL, 'referral', 'amy', 'new', 0, \
             '{{\"frequency\":0,\"behaviour\":0,\"profile_fit\":0,\"total\":0,\"items\":[]}}', NULL, NULL, {deadline}, 1, '', \
             NULL, NULL, NULL, 1, 1, 'amy', 'amy')"
        ))
        .await
        .unwrap();
    }

    async fn owner(db: &DatabaseConnection, id: &str) -> Option<String> {
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                format!("SELECT owner_id FROM leads WHERE id = '{id}'"),
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get("", "owner_id").unwrap()
    }

    async fn until_returned(db: &DatabaseConnection, ids: &[&str]) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        let mut poll = tokio::time::interval(Duration::from_millis(20));
        loop {
            poll.tick().await;
            let mut all = true;
            for id in ids {
                all &= owner(db, id).await.is_none();
            }
            if all {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{ids:?} were not returned to the pool"
            );
        }
    }

    /// Finding 6: the sweeper handles each overdue lead on its own. A lead
    /// that another transaction is changing (PostgreSQL: skipped with FOR
    /// UPDATE SKIP LOCKED) or that cannot be read is passed over; the other
    /// leads of its tenant and every other tenant's are still returned,
    /// even when the bad ones fill whole batches at the front.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn finding_6_a_busy_or_broken_lead_does_not_stop_the_sweeper_for_anyone() {
        let (db, schema, dir) = test_db().await;
        let settings = LeadsSettings {
            sweep_batch: 2,
            ..LeadsSettings::default()
        };
        let leads = Leads::open_on(db.clone(), settings, None, None)
            .await
            .unwrap();
        insert_lead(&db, "attacker", "a1", 1).await;
        insert_lead(&db, "attacker", "a2", 2).await;
        insert_lead(&db, "attacker", "a3", 3).await;
        insert_lead(&db, "victim", "v1", 4).await;
        // a1 cannot be read any more.
        db.execute_unprepared("UPDATE leads SET status = 'bogus' WHERE id = 'a1'")
            .await
            .unwrap();
        // a2 is being changed by a transaction that stays open.
        let postgres = db.get_database_backend() == DbBackend::Postgres;
        let blocker = if postgres {
            let txn = db.begin().await.unwrap();
            txn.execute_unprepared("UPDATE leads SET notes = 'mine' WHERE id = 'a2'")
                .await
                .unwrap();
            Some(txn)
        } else {
            None
        };
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let sweeper = spawn_sweeper(
            leads.app.clone(),
            SWEEPER,
            Duration::from_millis(50),
            2,
            async move {
                let _ = stopped.await;
            },
        );
        let mut returned = vec!["a3", "v1"];
        if !postgres {
            returned.push("a2");
        }
        until_returned(&db, &returned).await;
        assert_eq!(owner(&db, "a1").await.as_deref(), Some("amy"));
        if let Some(blocker) = blocker {
            assert_eq!(owner(&db, "a2").await.as_deref(), Some("amy"), "skipped");
            blocker.commit().await.unwrap();
            // Its turn comes at a later sweep.
            until_returned(&db, &["a2"]).await;
        }
        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(5), sweeper)
            .await
            .expect("the sweeper stops at shutdown")
            .unwrap();
        if postgres {
            let _ = db
                .execute_unprepared(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .await;
        }
        db.close().await.unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }

    async fn returned(db: &DatabaseConnection) -> i64 {
        let row = db
            .query_one_raw(sea_orm::Statement::from_string(
                db.get_database_backend(),
                "SELECT COUNT(*) AS n FROM leads WHERE owner_id IS NULL",
            ))
            .await
            .unwrap()
            .unwrap();
        row.try_get("", "n").unwrap()
    }

    /// Finding 14: shutdown stops the sweeper in the middle of a long
    /// sweep, not after it: every task stops within the grace period.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn finding_14_shutdown_cuts_a_long_sweep_short() {
        const OVERDUE: i64 = 3000;
        let (db, schema, dir) = test_db().await;
        let leads = Leads::open_on(db.clone(), LeadsSettings::default(), None, None)
            .await
            .unwrap();
        let txn = db.begin().await.unwrap();
        for i in 0..OVERDUE {
            insert_lead(&txn, &format!("t{}", i % 7), &format!("l{i}"), 10 + i).await;
        }
        txn.commit().await.unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let sweeper = spawn_sweeper(
            leads.app.clone(),
            SWEEPER,
            Duration::from_millis(50),
            50,
            async move {
                let _ = stopped.await;
            },
        );
        // The sweep is under way.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while returned(&db).await == 0 {
            assert!(tokio::time::Instant::now() < deadline, "the sweep began");
            tokio::task::yield_now().await;
        }
        let _ = stop.send(());
        tokio::time::timeout(Duration::from_secs(10), sweeper)
            .await
            .unwrap()
            .unwrap();
        let done = returned(&db).await;
        assert!(
            done < OVERDUE,
            "the sweep ran to its end ({done} leads) after shutdown"
        );
        if db.get_database_backend() == DbBackend::Postgres {
            let _ = db
                .execute_unprepared(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .await;
        }
        db.close().await.unwrap();
        let _ = std::fs::remove_dir_all(dir);
    }
}
