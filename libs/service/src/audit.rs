//! The audit trail as every service's `ListAuditEntries` serves it: the
//! tenant's entries newest first, optionally about one record, in pages.

use crm_proto::crm::common::v1 as common;
use crm_rpc::{RequestContext, RpcError, paging::PageLimits};
use crm_store::DatabaseConnection;

/// A service's audit trail.
#[derive(Clone)]
pub struct AuditTrail {
    db: DatabaseConnection,
    pages: PageLimits,
}

impl AuditTrail {
    pub fn new(db: DatabaseConnection, pages: PageLimits) -> Self {
        AuditTrail { db, pages }
    }

    /// A page of the caller's tenant's entries and the token of the next
    /// (empty on the last). `subject` is the name the token binds the
    /// record filter under and the record's id (empty: every record).
    pub async fn list(
        &self,
        ctx: &RequestContext,
        subject: (&str, &str),
        page_size: i32,
        page_token: &str,
    ) -> Result<(Vec<common::AuditEntry>, String), RpcError> {
        let (field, subject) = subject;
        let binding = ctx.binding().with(field, subject);
        let page = self.pages.page::<String>(page_size, page_token, binding)?;
        let subject = (!subject.is_empty()).then_some(subject);
        let entries = crm_store::audit::list(
            &self.db,
            &ctx.tenant,
            subject,
            page.after.as_deref(),
            page.limit,
        )
        .await
        .map_err(RpcError::internal)?;
        let next_page_token = page.next_token(&entries, |e| e.id.clone());
        let entries = entries.into_iter().map(crm_rpc::audit_entry).collect();
        Ok((entries, next_page_token))
    }
}
