//! The similar-solutions scenario: FindSimilarSolutions over a tenant's
//! resolved tickets (FTS5 on SQLite, tsvector/GIN on PostgreSQL). The
//! resolved tickets are seeded straight into the tickets service's
//! database (`--data-dir` or `--database-url`, as the service finds it),
//! through the service's own store, so their search text is the one the
//! service derives; the calls go through `--target`.
//!
//! ```sh
//! # SQLite: the service and the seeding share the data directory.
//! (cd /tmp/sim && CRM__TICKETS__CONSUME_GO_LIVES=false crm serve tickets &)
//! crm-bench --data-dir /tmp/sim/data --target http://127.0.0.1:50065 \
//!   --scenario similar-solutions --seed-tickets 100000 --concurrency 1 --connections 1
//! # PostgreSQL: both given the suite's URL.
//! CRM__STORE__DATABASE_URL=postgres://.../crm_sim crm serve tickets &
//! crm-bench ... --database-url postgres://.../crm_sim
//! ```
//!
//! One tenant drives all the load: lift its fair shares on the service
//! (`CRM__SERVER__RATE_LIMIT__REQUESTS_PER_SECOND=0`,
//! `CRM__SERVER__LIMITS__TENANT_CALLS` and `..._SUBJECT_CALLS`) to measure
//! the search, not the limits.

use crm_tickets::domain::{
    self, Actor, Applied, Channel, NewTicket, Priority, Role, TicketsConfig, Tier,
};
use sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::{Args, BoxError};

// The seeded history reads like a support desk's: subjects made of a
// thing, a problem and sometimes a context ("vpn client keeps
// disconnecting after upgrade"), a fifth of them in Chinese, and
// descriptions of 8-24 words drawn from a vocabulary of about 3,600 words:
// a head of common support English and Chinese phrases and a long tail of
// the rare tokens real tickets carry (error codes, host names, order and
// invoice numbers, product models). Every choice is Zipf-like (rank r with
// a weight of about 1/r), so a few words are in most tickets and most
// words in few, as in real text; the queries are new subjects made the
// same way.

/// Things tickets are about, commonest first.
const THINGS: &[&str] = &[
    "login",
    "password",
    "printer",
    "email",
    "vpn",
    "report",
    "invoice",
    "dashboard",
    "laptop",
    "wifi",
    "network",
    "mobile app",
    "export",
    "sync",
    "database",
    "server",
    "backup",
    "license",
    "certificate",
    "mailbox",
    "calendar",
    "monitor",
    "keyboard",
    "excel import",
    "csv file",
    "pdf",
    "api",
    "webhook",
    "access token",
    "sso",
    "ldap",
    "erp integration",
    "oa approval",
    "e-signature",
    "contract",
    "quote",
    "order",
    "shipment",
    "warehouse",
    "inventory",
    "barcode scanner",
    "label printer",
    "template",
    "workflow",
    "notification",
    "sms",
    "attachment",
    "upload",
    "search",
    "filter",
    "chart",
    "role",
    "permission",
    "user account",
    "session",
    "cache",
    "disk",
    "memory",
    "firewall",
    "proxy",
    "dns",
    "load balancer",
    "cron job",
    "scheduler",
    "payroll",
    "timesheet",
    "expense claim",
    "purchase order",
    "tax code",
    "currency",
    "price list",
    "discount",
    "customer portal",
    "knowledge base",
    "chat widget",
    "phone line",
    "headset",
    "meeting room",
    "projector",
    "video call",
    "screen share",
    "browser",
    "plugin",
    "driver",
    "firmware",
    "patch",
    "installer",
    "agent",
    "antivirus",
    "remote desktop",
    "file share",
    "print queue",
    "badge reader",
    "door access",
    "camera",
    "storage quota",
    "archive",
    "retention policy",
    "audit log",
    "kpi widget",
    "forecast",
    "pipeline",
    "lead import",
    "duplicate check",
    "field mapping",
    "custom field",
    "picklist",
    "page layout",
    "translation",
    "time zone",
    "holiday calendar",
];

/// What goes wrong, commonest first.
const PROBLEMS: &[&str] = &[
    "not working",
    "fails",
    "slow",
    "error",
    "crashes",
    "times out",
    "cannot connect",
    "keeps disconnecting",
    "missing",
    "wrong total",
    "duplicated",
    "stuck",
    "not syncing",
    "blank page",
    "access denied",
    "expired",
    "locked",
    "not loading",
    "freezes",
    "wrong date",
    "cannot save",
    "cannot open",
    "rejected",
    "bounced",
    "out of memory",
    "full",
    "corrupted",
    "not printing",
    "paper jam",
    "garbled text",
    "encoding broken",
    "permission denied",
    "500 error",
    "404 not found",
    "invalid certificate",
    "login loop",
    "reset mail not received",
    "two factor code invalid",
    "high latency",
    "intermittent",
    "stopped working",
    "charged twice",
    "refund missing",
    "not received",
    "delayed",
    "incorrect",
    "mismatch",
    "cannot delete",
    "truncated",
    "misaligned",
    "no sound",
    "flickering",
    "battery drain",
    "overheating",
    "seat limit reached",
    "quota exceeded",
    "rate limited",
];

/// When, where or since what, commonest first.
const CONTEXTS: &[&str] = &[
    "after upgrade",
    "since monday",
    "for all users",
    "on mobile",
    "in chrome",
    "on windows 11",
    "on macos",
    "in the branch office",
    "at month end",
    "during backup",
    "when exporting",
    "with large files",
    "over vpn",
    "since the migration",
    "after password change",
    "on floor 3",
    "in firefox",
    "for new hires",
    "at night",
    "in the shanghai office",
    "on the tablet",
    "for the finance team",
];

/// The head of the description vocabulary, commonest first.
const COMMON: &[&str] = &[
    "please",
    "help",
    "user",
    "users",
    "issue",
    "again",
    "today",
    "since",
    "system",
    "error",
    "customer",
    "team",
    "urgent",
    "attached",
    "screenshot",
    "log",
    "logs",
    "tried",
    "restart",
    "restarted",
    "reinstall",
    "cleared",
    "cache",
    "still",
    "same",
    "problem",
    "yesterday",
    "morning",
    "office",
    "message",
    "shows",
    "click",
    "button",
    "page",
    "open",
    "opens",
    "file",
    "files",
    "version",
    "latest",
    "update",
    "updated",
    "upgrade",
    "account",
    "manager",
    "finance",
    "sales",
    "warehouse",
    "branch",
    "colleague",
    "everyone",
    "some",
    "only",
    "sometimes",
    "always",
    "never",
    "every",
    "hour",
    "minutes",
    "seconds",
    "week",
    "month",
    "end",
    "close",
    "deadline",
    "blocked",
    "blocking",
    "work",
    "working",
    "works",
    "worked",
    "before",
    "now",
    "new",
    "old",
    "server",
    "client",
    "phone",
    "called",
    "email",
    "emails",
    "sent",
    "send",
    "received",
    "receive",
    "report",
    "reports",
    "data",
    "number",
    "numbers",
    "total",
    "amount",
    "wrong",
    "correct",
    "missing",
    "lost",
    "found",
    "check",
    "checked",
    "checking",
    "setting",
    "settings",
    "config",
    "changed",
    "change",
    "password",
    "reset",
    "login",
    "logged",
    "logout",
    "network",
    "internet",
    "connection",
    "connect",
    "connected",
    "slow",
    "fast",
    "quick",
    "long",
    "takes",
    "took",
    "wait",
    "waiting",
    "timeout",
    "retry",
    "retried",
    "failed",
    "fails",
    "failing",
    "success",
    "successful",
    "print",
    "printed",
    "printing",
    "scan",
    "scanned",
    "export",
    "exported",
    "import",
    "imported",
    "download",
    "downloaded",
    "upload",
    "uploaded",
    "sync",
    "synced",
    "delete",
    "deleted",
    "create",
    "created",
    "edit",
    "edited",
    "save",
    "saved",
    "approve",
    "approved",
    "approval",
    "reject",
    "rejected",
    "sign",
    "signed",
    "contract",
    "invoice",
    "invoices",
    "order",
    "orders",
    "payment",
    "payments",
    "refund",
    "price",
    "prices",
    "quote",
    "quotes",
    "stock",
    "inventory",
    "label",
    "labels",
    "barcode",
    "template",
    "templates",
    "field",
    "fields",
    "column",
    "columns",
    "row",
    "rows",
    "sheet",
    "excel",
    "csv",
    "pdf",
    "word",
    "document",
    "documents",
    "folder",
    "share",
    "shared",
    "drive",
    "disk",
    "space",
    "memory",
    "cpu",
    "usage",
    "high",
    "low",
    "full",
    "empty",
    "blank",
    "white",
    "screen",
    "window",
    "windows",
    "mac",
    "browser",
    "chrome",
    "edge",
    "firefox",
    "mobile",
    "android",
    "iphone",
    "tablet",
    "app",
    "installed",
    "install",
    "driver",
    "drivers",
    "printer",
    "printers",
    "vpn",
    "wifi",
    "router",
    "cable",
    "port",
    "firewall",
    "proxy",
    "certificate",
    "expired",
    "license",
    "licenses",
    "seat",
    "seats",
    "role",
    "roles",
    "permission",
    "permissions",
    "access",
    "denied",
    "admin",
    "administrator",
    "group",
    "groups",
    "department",
    "regional",
    "headquarters",
    "warehouse",
    "shipment",
    "delivery",
    "courier",
    "tracking",
    "customer's",
    "supplier",
    "vendor",
    "erp",
    "oa",
    "crm",
    "portal",
    "dashboard",
    "widget",
    "chart",
    "kpi",
    "forecast",
    "pipeline",
    "lead",
    "leads",
    "opportunity",
    "duplicate",
    "duplicates",
    "merge",
    "merged",
    "mapping",
    "mapped",
    "timezone",
    "date",
    "dates",
    "format",
    "encoding",
    "chinese",
    "english",
    "characters",
    "garbled",
    "font",
    "fonts",
    "报表",
    "导出",
    "登录",
    "密码",
    "打印机",
    "网络",
    "发票",
    "合同",
    "审批",
    "客户",
    "系统",
    "升级",
    "同步",
    "邮件",
    "库存",
    "订单",
    "退款",
    "证书",
    "许可证",
    "数据库",
];

/// Chinese subjects: things and problems, commonest first.
const THINGS_ZH: &[&str] = &[
    "系统登录",
    "打印机",
    "报表导出",
    "邮箱",
    "网络",
    "发票",
    "审批流程",
    "合同签署",
    "移动端",
    "数据库备份",
    "库存盘点",
    "条码扫描",
    "客户门户",
    "许可证",
    "证书",
    "订单",
    "退款",
    "工资单",
    "报销单",
    "考勤",
    "视频会议",
    "共享文件夹",
    "杀毒软件",
    "远程桌面",
    "门禁",
    "摄像头",
    "知识库",
    "价格表",
];
const PROBLEMS_ZH: &[&str] = &[
    "失败",
    "异常",
    "很慢",
    "卡纸",
    "无法连接",
    "闪退",
    "报错",
    "数据丢失",
    "重复",
    "过期",
    "无法打开",
    "无法保存",
    "乱码",
    "超时",
    "同步失败",
    "金额错误",
    "被拒绝",
    "没有收到",
    "页面空白",
    "权限不足",
];

/// Chooses from `n` ranked choices, rank r with a weight of about 1/r.
fn zipf(rng: &mut u64, n: usize) -> usize {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    // Log-uniform over 1..=n: P(r) ~ 1/r.
    let u = (*rng >> 11) as f64 / (1u64 << 53) as f64;
    let r = ((n as f64 + 1.0).ln() * u).exp() as usize;
    r.clamp(1, n) - 1
}

fn one<'a>(rng: &mut u64, list: &[&'a str]) -> &'a str {
    list[zipf(rng, list.len())]
}

/// The rare tokens of the tail: 3,200 of them (codes, hosts, models,
/// numbers), the `i`-th.
fn rare(i: usize) -> String {
    match i % 4 {
        0 => format!("err{}", 1000 + i / 4),
        1 => format!("srv{:03}", i / 4),
        2 => format!("model{}x", 100 + i / 4),
        _ => format!("inv{}", 200_000 + i * 37),
    }
}

const RARE: usize = 3_200;

/// One description word: the common head, else a rare token.
fn word(rng: &mut u64) -> String {
    let i = zipf(rng, COMMON.len() + RARE);
    match COMMON.get(i) {
        Some(w) => (*w).to_owned(),
        None => rare(i - COMMON.len()),
    }
}

fn chinese(rng: &mut u64) -> bool {
    *rng ^= *rng << 13;
    *rng ^= *rng >> 7;
    *rng ^= *rng << 17;
    (*rng).is_multiple_of(5)
}

/// A subject: a thing and a problem, sometimes a context (one in five in
/// Chinese). With `n` of 5 or more words asked for, always a context.
pub fn text(rng: &mut u64, n: usize) -> String {
    if chinese(rng) {
        return format!("{}{}", one(rng, THINGS_ZH), one(rng, PROBLEMS_ZH));
    }
    let mut s = format!("{} {}", one(rng, THINGS), one(rng, PROBLEMS));
    if n >= 5 || (*rng).is_multiple_of(3) {
        s.push(' ');
        s.push_str(one(rng, CONTEXTS));
    }
    s
}

/// A description of 8-24 words.
fn description(rng: &mut u64) -> String {
    let n = 8 + (*rng % 17) as usize;
    (0..n).map(|_| word(rng)).collect::<Vec<_>>().join(" ")
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
                    description: description(&mut rng),
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
            let resolution = format!("fixed: {}", description(&mut rng));
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
