//! How a storage failure reaches a caller: a database that cannot be
//! reached is UNAVAILABLE (retryable), anything else INTERNAL.

use crm_rpc::RpcError;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The status of a failed store call: UNAVAILABLE `DATABASE_UNAVAILABLE`
/// when the database could not be reached (pool timeout, broken or
/// refused connection, a server shutting down), else INTERNAL.
pub fn storage_error(err: BoxError) -> RpcError {
    match err.downcast_ref::<crm_store::DbErr>() {
        Some(db) if crm_store::is_unavailable(db) => RpcError::Unavailable {
            reason: "DATABASE_UNAVAILABLE",
            message: "the database cannot be reached; retry with backoff".into(),
        },
        _ => RpcError::Internal(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_database_is_unavailable_and_anything_else_internal() {
        let timeout = crm_store::DbErr::ConnectionAcquire(crm_store::ConnAcquireErr::Timeout);
        assert!(matches!(
            storage_error(Box::new(timeout)),
            RpcError::Unavailable {
                reason: "DATABASE_UNAVAILABLE",
                ..
            }
        ));
        let other = crm_store::DbErr::Custom("constraint".into());
        assert!(matches!(
            storage_error(Box::new(other)),
            RpcError::Internal(_)
        ));
    }
}
