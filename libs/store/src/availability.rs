//! Telling "the database cannot be reached" from every other storage error:
//! the first is worth a retry elsewhere or later (UNAVAILABLE), the others
//! are bugs or bad data (INTERNAL).

use sea_orm::{DbErr, RuntimeErr, sqlx};

/// Whether `err` says the database cannot be reached now: no connection
/// could be had from the pool (timed out, closed), the connection broke
/// (I/O, TLS, protocol), or the server refused work because it is shutting
/// down, starting or full (PostgreSQL SQLSTATE class 08, 57P01-57P03,
/// 53300). A caller may retry these; anything else is not about
/// availability.
pub fn is_unavailable(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) => true,
        DbErr::Conn(runtime) | DbErr::Exec(runtime) | DbErr::Query(runtime) => match runtime {
            RuntimeErr::SqlxError(sqlx) => sqlx_unavailable(sqlx),
            _ => matches!(err, DbErr::Conn(_)),
        },
        _ => false,
    }
}

fn sqlx_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use sea_orm::ConnAcquireErr;

    use super::*;

    fn sqlx(err: sqlx::Error) -> RuntimeErr {
        RuntimeErr::SqlxError(Arc::new(err))
    }

    /// Finding 8: pool timeouts and broken connections are told apart
    /// from other errors, so that they become UNAVAILABLE, not INTERNAL.
    #[test]
    fn finding_8_connection_and_pool_failures_are_unavailable_others_are_not() {
        for err in [
            DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
            DbErr::ConnectionAcquire(ConnAcquireErr::ConnectionClosed),
            DbErr::Conn(sqlx(sqlx::Error::PoolTimedOut)),
            DbErr::Query(sqlx(sqlx::Error::Io(std::io::Error::from(
                std::io::ErrorKind::ConnectionRefused,
            )))),
            DbErr::Exec(sqlx(sqlx::Error::PoolClosed)),
        ] {
            assert!(is_unavailable(&err), "{err:?}");
        }
        for err in [
            DbErr::RecordNotFound("lead".into()),
            DbErr::Custom("corrupt".into()),
            DbErr::Query(sqlx(sqlx::Error::RowNotFound)),
            DbErr::Exec(sqlx(sqlx::Error::ColumnNotFound("x".into()))),
        ] {
            assert!(!is_unavailable(&err), "{err:?}");
        }
    }
}
