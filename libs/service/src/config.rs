//! The tenant's configuration of a service as its `Get<..>Config` and
//! `Update<..>Config` methods serve it: read with the operator's defaults
//! behind it, replaced whole against an opaque etag, every replacement in
//! the audit trail (`crm_store::tenant_config`). Each service maps its own
//! message to and from its configuration type; the rest is here.

use std::marker::PhantomData;

use crm_rpc::{DomainError, RequestContext, RpcError};
use crm_store::{
    DatabaseConnection, DbErr,
    tenant_config::{self, ConfigError, Stored},
};
use crm_types::Etag;
use sea_orm::DatabaseTransaction;
use serde::{Serialize, de::DeserializeOwned};
use tonic::{Request, Status};

/// One service's tenant configurations of type `T`, reporting errors in the
/// domain of `E`.
pub struct TenantConfigs<T, E> {
    db: DatabaseConnection,
    defaults: T,
    /// The audit trail's name for the document: entries are about
    /// `<subject>/<tenant>`.
    subject: &'static str,
    domain: PhantomData<fn() -> E>,
}

impl<T: Clone, E> Clone for TenantConfigs<T, E> {
    fn clone(&self) -> Self {
        TenantConfigs {
            db: self.db.clone(),
            defaults: self.defaults.clone(),
            subject: self.subject,
            domain: PhantomData,
        }
    }
}

impl<T, E> TenantConfigs<T, E>
where
    T: Serialize + DeserializeOwned + Clone + Send + Sync,
    E: DomainError,
{
    /// `defaults` serve tenants that never set their own, at version 0.
    pub fn new(db: DatabaseConnection, defaults: T, subject: &'static str) -> Self {
        TenantConfigs {
            db,
            defaults,
            subject,
            domain: PhantomData,
        }
    }

    /// The configuration of the caller's tenant.
    pub async fn get<M>(&self, req: &Request<M>) -> Result<Stored<T>, Status> {
        let ctx = RequestContext::of(req)?;
        tenant_config::get(&self.db, &ctx.tenant, &self.defaults)
            .await
            .map_err(|e| E::refuse(RpcError::internal(e)))
    }

    /// Replaces the configuration of the caller's tenant with what `decode`
    /// reads from the request (the configuration and the etag sent with
    /// it), unless the etag names an older version.
    pub async fn replace<M>(
        &self,
        req: Request<M>,
        decode: impl FnOnce(M) -> Result<(T, String), RpcError>,
    ) -> Result<Stored<T>, Status> {
        let ctx = RequestContext::of(&req)?;
        let (config, etag) = decode(req.into_inner()).map_err(E::refuse)?;
        self.write(&ctx, &config, &etag)
            .await
            .map_err(|e| E::refuse(e.into_rpc()))
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
