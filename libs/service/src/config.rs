//! The tenant's configuration of a service as its `Get<..>Config` and
//! `Update<..>Config` methods serve it: read with the operator's defaults
//! behind it, replaced whole against an opaque etag, every replacement in
//! the audit trail (`crm_store::tenant_config`). Each service gives its
//! wire functions for its message ([`ConfigWire`]); the rest is here.

use crm_rpc::{FieldViolation, RequestContext, RpcError};
use crm_store::{
    DatabaseConnection, DbErr,
    tenant_config::{self, ConfigError, Stored},
};
use crm_types::Etag;
use sea_orm::DatabaseTransaction;
use serde::{Serialize, de::DeserializeOwned};

/// How a service's configuration message `P` carries its configuration
/// `T`: the service's wire functions.
#[derive(Debug, Clone, Copy)]
pub struct ConfigWire<T, P> {
    /// The message of the configuration at a version (0: the operator's
    /// defaults), last changed at a time by an updater.
    pub to_message: fn(&T, i64, Option<i64>, &str) -> P,
    /// The configuration a client sent, every bad field reported.
    pub from_message: fn(&P) -> Result<T, Vec<FieldViolation>>,
    /// The etag a client sent with it.
    pub etag: fn(&P) -> &str,
}

/// One service's tenant configurations of type `T`, served as messages `P`.
#[derive(Clone)]
pub struct TenantConfigs<T, P> {
    db: DatabaseConnection,
    defaults: T,
    /// The audit trail's name for the document: entries are about
    /// `<subject>/<tenant>`.
    subject: &'static str,
    wire: ConfigWire<T, P>,
}

impl<T, P> TenantConfigs<T, P>
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync,
{
    /// `defaults` serve tenants that never set their own, at version 0.
    pub fn new(
        db: DatabaseConnection,
        defaults: T,
        subject: &'static str,
        wire: ConfigWire<T, P>,
    ) -> Self {
        TenantConfigs {
            db,
            defaults,
            subject,
            wire,
        }
    }

    /// The configuration of the caller's tenant (`Get<..>Config`).
    pub async fn get(&self, ctx: &RequestContext) -> Result<P, RpcError> {
        let stored = tenant_config::get(&self.db, &ctx.tenant, &self.defaults)
            .await
            .map_err(RpcError::internal)?;
        Ok(self.message(&stored))
    }

    /// Replaces the configuration of the caller's tenant with the one
    /// `sent` (the request's required `config`), unless the etag sent with
    /// it (empty: whatever is current) names another version
    /// (`Update<..>Config`).
    pub async fn replace(&self, ctx: &RequestContext, sent: Option<P>) -> Result<P, RpcError> {
        let sent = sent.ok_or_else(|| FieldViolation::new("config", "required"))?;
        let config = (self.wire.from_message)(&sent)?;
        let stored = self
            .write(ctx, &config, (self.wire.etag)(&sent))
            .await
            .map_err(ReplaceError::into_rpc)?;
        Ok(self.message(&stored))
    }

    fn message(&self, s: &Stored<T>) -> P {
        (self.wire.to_message)(&s.config, s.version, s.update_time, &s.updater)
    }

    /// One write transaction, run once more if a concurrent first
    /// replacement won the insert (the second run sees its version).
    async fn write(
        &self,
        ctx: &RequestContext,
        config: &T,
        etag: &str,
    ) -> Result<Stored<T>, ReplaceError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let tx = crm_store::begin_write(&self.db).await?;
            let result = match self.write_in(&tx, ctx, config, etag).await {
                Ok(stored) => tx.commit().await.map(|()| stored).map_err(Into::into),
                Err(err) => Err(err),
            };
            match result {
                Err(err) if attempt == 1 && err.is_unique_violation() => continue,
                other => return other,
            }
        }
    }

    async fn write_in(
        &self,
        tx: &DatabaseTransaction,
        ctx: &RequestContext,
        config: &T,
        etag: &str,
    ) -> Result<Stored<T>, ReplaceError> {
        let current = tenant_config::get(tx, &ctx.tenant, &self.defaults).await?;
        let version = u64::try_from(current.version).unwrap_or_default();
        if !Etag::matches(etag, version) {
            return Err(ReplaceError::Stale(etag.to_owned()));
        }
        // The store checks its own form of the version read above; a
        // concurrent replacement still fails its versioned update.
        let subject = format!("{}/{}", self.subject, ctx.tenant);
        tenant_config::replace(
            tx,
            &ctx.tenant,
            &subject,
            config,
            &self.defaults,
            &current.etag(),
            &ctx.caller.id,
            ctx.now,
        )
        .await
        .map_err(|e| match e {
            ConfigError::Stale(_) => ReplaceError::Stale(etag.to_owned()),
            ConfigError::Db(e) => ReplaceError::Db(e),
        })
    }
}

#[derive(Debug)]
enum ReplaceError {
    /// The etag sent, which names another version.
    Stale(String),
    Db(DbErr),
}

impl From<DbErr> for ReplaceError {
    fn from(e: DbErr) -> Self {
        ReplaceError::Db(e)
    }
}

impl ReplaceError {
    fn is_unique_violation(&self) -> bool {
        matches!(self, ReplaceError::Db(e) if crm_store::unique_violation(e).is_some())
    }

    fn into_rpc(self) -> RpcError {
        match self {
            ReplaceError::Stale(etag) => RpcError::Aborted {
                reason: "ETAG_MISMATCH",
                message: format!("the configuration was changed since etag {etag:?} was read"),
            },
            ReplaceError::Db(e) => RpcError::internal(e),
        }
    }
}
