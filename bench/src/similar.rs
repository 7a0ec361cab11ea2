//! The similar-solutions scenario: FindSimilarSolutions over a tenant's
//! resolved tickets (FTS5 on SQLite, tsvector/GIN on PostgreSQL). The
//! resolved tickets are seeded straight into the tickets service's
//! database (`--data-dir` or `--database-url`, as the service finds it),
//! through the service's own store, so their search text is the one the
//! service derives; the calls go through `--target`.

use crm_tickets::domain::{
    self, Actor, Applied, Channel, NewTicket, Priority, Role, TicketsConfig, Tier,
};
use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::{Args, BoxError};

/// Words the seeded tickets and the queries are made of: English and
/// Chinese, so both the word tokens and the CJK bigrams are exercised.
const WORDS: &[&str] = &[
    "report",
    "export",
    "login",
    "password",
    "invoice",
    "printer",
    "network",
    "vpn",
    "timeout",
    "database",
    "backup",
    "restore",
    "upgrade",
    "license",
    "email",
    "sync",
    "mobile",
    "app",
    "crash",
    "slow",
    "error",
    "certificate",
    "dashboard",
    "chart",
    "filter",
    "import",
    "csv",
    "excel",
    "pdf",
    "permission",
    "role",
    "user",
    "session",
    "cache",
    "server",
    "disk",
    "memory",
    "cpu",
    "latency",
    "api",
    "token",
    "webhook",
    "integration",
    "erp",
    "oa",
    "signature",
    "contract",
    "payment",
    "refund",
    "order",
    "shipment",
    "warehouse",
    "inventory",
    "barcode",
    "scanner",
    "label",
    "template",
    "workflow",
    "approval",
    "notification",
    "sms",
    "calendar",
    "meeting",
    "attachment",
    "upload",
    "download",
    "search",
    "index",
    "query",
    "field",
    "form",
    "报表导出",
    "登录失败",
    "密码重置",
    "发票打印",
    "网络中断",
    "数据库备份",
    "系统升级",
    "许可证过期",
    "邮件同步",
    "移动端闪退",
    "审批流程",
    "合同签署",
    "库存盘点",
    "条码扫描",
];

fn pick(rng: &mut u64) -> &'static str {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    WORDS[(*rng % WORDS.len() as u64) as usize]
}

/// A text of `n` words.
pub fn text(rng: &mut u64, n: usize) -> String {
    (0..n).map(|_| pick(rng)).collect::<Vec<_>>().join(" ")
}

/// Makes sure `tenant` has at least `want` resolved tickets.
pub async fn seed(args: &Args, want: u64) -> Result<(), BoxError> {
    let location =
        crm_store::Location::for_service("tickets", args.database_url.as_deref(), &args.data_dir);
    let db = crm_store::connect(&location, 2).await?;
    let backend = db.get_database_backend();
    let sql = match backend {
        DbBackend::Postgres => "SELECT COUNT(*) AS n FROM tickets WHERE tenant_id = $1",
        _ => "SELECT COUNT(*) AS n FROM tickets WHERE tenant_id = ?",
    };
    let have = db
        .query_one_raw(Statement::from_sql_and_values(
            backend,
            sql,
            [args.tenant.clone().into()],
        ))
        .await?
        .map(|r| r.try_get::<i64>("", "n"))
        .transpose()?
        .unwrap_or_default();
    let mut left = want.saturating_sub(u64::try_from(have).unwrap_or_default());
    let config = TicketsConfig::default();
    let actor = Actor::new("bench", vec![Role::Service]);
    let applied = Applied {
        plan: config.default_plan.clone(),
        entitlement_id: None,
    };
    let mut rng = 0x2545_F491_4F6C_DD1D_u64 ^ u64::try_from(have).unwrap_or_default();
    while left > 0 {
        let batch = left.min(1_000);
        let txn = crm_store::begin_write(&db).await?;
        for _ in 0..batch {
            let now = crm_store::now_micros();
            let mut t = domain::new_ticket(
                NewTicket {
                    account_id: format!("acc-{}", rng % 1000),
                    contact_id: String::new(),
                    channel: Channel::Portal,
                    category: "support".into(),
                    priority: Priority::P3,
                    subject: text(&mut rng, 4),
                    description: text(&mut rng, 12),
                },
                crm_store::new_id(),
                &args.tenant,
                &actor,
                &applied,
                Tier::Existing,
                "",
                &config,
                now,
            );
            domain::assign(&mut t, "bench", "bench", &config, now)?;
            domain::start(&mut t, "bench", &config, now)?;
            let resolution = format!("fixed: {}", text(&mut rng, 8));
            domain::resolve(&mut t, &resolution, "bench", &config, now)?;
            crm_tickets::store::insert_ticket(&*txn, &t).await?;
            crm_tickets::store::index_ticket(&*txn, &t).await?;
        }
        txn.commit().await?;
        left -= batch;
    }
    if backend == DbBackend::Postgres {
        db.execute_unprepared("ANALYZE").await?;
    }
    db.close().await?;
    Ok(())
}
