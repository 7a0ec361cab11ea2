//! The audit trail as every service's `ListAuditEntries` serves it: the
//! tenant's entries newest first, optionally about one record, in pages.

use std::marker::PhantomData;

use crm_proto::crm::common::v1 as common;
use crm_rpc::{DomainError, RequestContext, RpcError, paging::PageLimits};
use crm_store::DatabaseConnection;
use tonic::Status;

/// A service's audit trail, reporting errors in the domain of `E`.
pub struct AuditTrail<E> {
    db: DatabaseConnection,
    pages: PageLimits,
    domain: PhantomData<fn() -> E>,
}

impl<E> Clone for AuditTrail<E> {
    fn clone(&self) -> Self {
        AuditTrail {
            db: self.db.clone(),
            pages: self.pages,
            domain: PhantomData,
        }
    }
}

/// One page of entries and the token of the next (empty on the last).
#[derive(Debug)]
pub struct AuditPage {
    pub entries: Vec<common::AuditEntry>,
    pub next_page_token: String,
}

/// What a `ListAuditEntries` request asks for.
#[derive(Debug, Clone, Copy)]
pub struct AuditQuery<'a> {
    /// The name the page token binds the record filter under, and the
    /// record's id (empty: every record of the tenant).
    pub subject: (&'static str, &'a str),
    pub page_size: i32,
    pub page_token: &'a str,
}

impl<E: DomainError> AuditTrail<E> {
    pub fn new(db: DatabaseConnection, pages: PageLimits) -> Self {
        AuditTrail {
            db,
            pages,
            domain: PhantomData,
        }
    }

    /// A page of the caller's tenant's entries; its token is bound to the
    /// tenant and the subject asked for.
    pub async fn list(
        &self,
        ctx: &RequestContext,
        query: AuditQuery<'_>,
    ) -> Result<AuditPage, Status> {
        let (field, subject) = query.subject;
        let binding = ctx.binding().with(field, subject);
        let page = self
            .pages
            .page::<String>(query.page_size, query.page_token, binding)
            .map_err(E::refuse)?;
        let subject = (!subject.is_empty()).then_some(subject);
        let entries = crm_store::audit::list(
            &self.db,
            &ctx.tenant,
            subject,
            page.after.as_deref(),
            page.limit,
        )
        .await
        .map_err(|e| E::refuse(RpcError::internal(e)))?;
        Ok(AuditPage {
            next_page_token: page.next_token(&entries, |e| e.id.clone()),
            entries: entries.into_iter().map(crm_rpc::audit_entry).collect(),
        })
    }
}
