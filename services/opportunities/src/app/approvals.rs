//! Approvals: asking for one, and deciding with its effect on the subject.

use crm_store::idempotency::RequestKey;
use crm_types::{Actor, AuditEntry, FieldChange, new_id, now_micros};

use super::{Page, Result, Trail, UseCases, approval_requested};
use crate::domain::{self, Approval, ApprovalFilter, ApprovalKind, ApprovalStatus, Decision, Step};
use crate::store;
use crate::wire::events;

impl UseCases {
    // ---- approvals

    pub async fn request_approval(
        &self,
        actor: &Actor,
        tenant: &str,
        request: Option<RequestKey<'_>>,
        kind: ApprovalKind,
        opportunity_id: &str,
        reason: &str,
    ) -> Result<Approval> {
        let now = now_micros();
        let config = self.rules(tenant).await?;
        let rules = &config;
        let id: String = self
            .uow
            .run_once(tenant, request, |tx| async move {
                let mut opp = store::load_opportunity(&*tx, tenant, opportunity_id).await?;
                let version = opp.version;
                let approval =
                    domain::request_approval(&mut opp, kind, reason, actor, rules, new_id(), now)?;
                store::save_opportunity(&*tx, &opp, version).await?;
                store::insert_approval(&*tx, &approval).await?;
                let mut trail = Trail::default();
                trail.audit(approval_requested(&approval, &actor.id, now));
                trail.event(events::approval_requested(&approval, now));
                trail.done(approval.id)
            })
            .await?;
        store::load_approval(self.db(), tenant, &id).await
    }

    /// The approval `id`, if `actor` sees its subject or decides its open
    /// step.
    pub async fn get_approval(&self, actor: &Actor, tenant: &str, id: &str) -> Result<Approval> {
        let approval = store::load_approval(self.db(), tenant, id).await?;
        let subject_visible = match approval.kind {
            ApprovalKind::AccountChange => self
                .visible_account(self.db(), actor, tenant, &approval.subject_id)
                .await
                .is_ok(),
            _ => store::load_opportunity(self.db(), tenant, &approval.subject_id)
                .await?
                .check_access(actor)
                .is_ok(),
        };
        domain::check_approval_visible(&approval, actor, subject_visible)?;
        Ok(approval)
    }

    /// The approvals the filters name among those `actor` may read.
    pub async fn list_approvals(
        &self,
        actor: &Actor,
        tenant: &str,
        subject: Option<&str>,
        status: Option<ApprovalStatus>,
        page: Page<'_>,
    ) -> Result<Vec<Approval>> {
        let filter = ApprovalFilter::for_actor(actor, subject.map(str::to_owned), status);
        store::list_approvals(self.db(), tenant, &filter, page.after, page.limit).await
    }

    /// Decides the current step; a decision that ends the chain takes
    /// effect on its subject in the same unit of work (an account change
    /// applied, a delivery review recorded).
    pub async fn decide(
        &self,
        actor: &Actor,
        tenant: &str,
        id: &str,
        etag: &str,
        decision: Decision,
        comment: &str,
        on_behalf_of: &str,
    ) -> Result<Approval> {
        let now = now_micros();
        let config = self.rules(tenant).await?;
        let rules = &config;
        self.uow
            .run(tenant, |tx| async move {
                let mut approval = store::load_approval(&*tx, tenant, id).await?;
                domain::check_etag(etag, approval.version)?;
                let version = approval.version;
                let reviewed = match approval.kind {
                    ApprovalKind::DeliveryReview => {
                        Some(store::load_opportunity(&*tx, tenant, &approval.subject_id).await?)
                    }
                    _ => None,
                };
                let delivery_manager = reviewed
                    .as_ref()
                    .map(|o| o.team.delivery_manager_id.as_str());
                let decided = domain::decide(
                    &mut approval,
                    actor,
                    decision,
                    comment,
                    on_behalf_of,
                    delivery_manager,
                    rules,
                    now,
                )?;
                store::save_approval(&*tx, &approval, version).await?;
                let mut trail = Trail::default();
                match (domain::effect(&approval, decided), reviewed) {
                    (domain::Effect::DeliveryReview { status }, Some(mut opp)) => {
                        let version = opp.version;
                        let before = opp.delivery_review.as_ref().map(|r| r.status);
                        domain::record_review(&mut opp, &approval.id, status, actor, now);
                        store::save_opportunity(&*tx, &opp, version).await?;
                        trail.opportunity_changed(
                            &opp,
                            rules,
                            AuditEntry::new(
                                &opp.id,
                                "opportunity.delivery_review_recorded",
                                &actor.id,
                                now,
                            )
                            .with_changes(vec![FieldChange {
                                field: "delivery_review.status".into(),
                                old: before.map(ApprovalStatus::as_str).unwrap_or("").into(),
                                new: status.as_str().into(),
                            }])
                            .with_reason(format!("approval {id} {decided:?}")),
                        );
                    }
                    (domain::Effect::AccountChange { approved }, _) => {
                        let mut account =
                            store::load_account(&*tx, tenant, &approval.subject_id).await?;
                        let version = account.version;
                        let changes = domain::settle_account_change(
                            &mut account,
                            &approval.detail.proposed,
                            approved,
                            actor,
                            now,
                        );
                        store::save_account(&*tx, &account, version).await?;
                        trail.account_changed(
                            &account,
                            AuditEntry::new(
                                &account.id,
                                "account.core_fields_changed",
                                &actor.id,
                                now,
                            )
                            .with_field_changes(changes)
                            .with_reason(format!("approval {id} {decided:?}")),
                        );
                    }
                    _ => {}
                }
                let who = approval
                    .last_decided()
                    .map(Step::decided_by)
                    .unwrap_or_default();
                trail.audit(
                    AuditEntry::new(id, "approval.decided", &actor.id, now)
                        .with_reason(format!("{decision} by {who}: {}", comment.trim())),
                );
                trail.event(events::approval_decided(&approval, now));
                trail.done(approval)
            })
            .await
    }
}
