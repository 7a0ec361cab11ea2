//! Accounts and contacts.

use crm_store::idempotency::RequestKey;
use crm_types::{Actor, AuditEntry, new_id, now_micros};

use super::{Page, Result, Trail, UseCases, approval_requested, created};
use crate::domain::{
    self, Account, AccountDraft, AccountFilter, AccountUpdate, Approval, Contact, ContactDraft,
    OpportunityError, Visibility,
};
use crate::store;
use crate::wire::events;

impl UseCases {
    // ---- accounts and contacts

    pub async fn create_account(
        &self,
        actor: &Actor,
        tenant: &str,
        request: Option<RequestKey<'_>>,
        draft: AccountDraft,
    ) -> Result<Account> {
        let now = now_micros();
        let account = domain::new_account(draft, actor, tenant, new_id(), now)?;
        let new = &account;
        let id: String = self
            .uow
            .run_once(tenant, request, |tx| async move {
                if let Some(existing) = store::account_named(&*tx, tenant, &new.name).await? {
                    return Err(OpportunityError::DuplicateAccount(existing.id));
                }
                store::insert_account(&*tx, new).await?;
                let mut trail = Trail::default();
                trail.event(events::account_created(new, now));
                trail.audit(created(
                    &new.id,
                    "account.created",
                    &actor.id,
                    &new.name,
                    now,
                ));
                trail.done(new.id.clone())
            })
            .await?;
        if id == account.id {
            Ok(account)
        } else {
            store::load_account(self.db(), tenant, &id).await
        }
    }

    /// The account `id`, if `actor` may see it (and its contacts).
    pub(super) async fn visible_account(
        &self,
        conn: &impl crm_store::ConnectionTrait,
        actor: &Actor,
        tenant: &str,
        id: &str,
    ) -> Result<Account> {
        let account = store::load_account(conn, tenant, id).await?;
        let on_team = match Visibility::of(actor).team_member() {
            Some(person) if account.owner_id != person => {
                store::on_team_of_account(conn, tenant, id, person).await?
            }
            _ => false,
        };
        domain::check_account_visible(&account, actor, on_team)?;
        Ok(account)
    }

    pub async fn get_account(&self, actor: &Actor, tenant: &str, id: &str) -> Result<Account> {
        self.visible_account(self.db(), actor, tenant, id).await
    }

    /// The accounts `owner` names among those `actor` may see.
    pub async fn list_accounts(
        &self,
        actor: &Actor,
        tenant: &str,
        owner: Option<&str>,
        page: Page<'_>,
    ) -> Result<Vec<Account>> {
        let filter = AccountFilter {
            visible_to: Visibility::of(actor).team_member().map(str::to_owned),
            owner_id: owner.map(str::to_owned),
        };
        store::list_accounts(self.db(), tenant, &filter, page.after, page.limit).await
    }

    /// Applies region and owner at once; core fields become an
    /// ACCOUNT_CHANGE approval.
    pub async fn update_account(
        &self,
        actor: &Actor,
        tenant: &str,
        id: &str,
        etag: &str,
        update: AccountUpdate,
    ) -> Result<(Account, Option<Approval>)> {
        let now = now_micros();
        let config = self.rules(tenant).await?;
        let (config, update) = (&config, &update);
        self.uow
            .run(tenant, |tx| async move {
                let mut account = store::load_account(&*tx, tenant, id).await?;
                domain::check_etag(etag, account.version)?;
                let (version, before) = (account.version, account.clone());
                let core = domain::update_account(&mut account, update, actor)?;
                let mut trail = Trail::default();
                let approval = if core.is_empty() {
                    None
                } else {
                    let approval = domain::request_account_change(
                        &account,
                        core,
                        &update.reason,
                        actor,
                        config,
                        new_id(),
                        now,
                    );
                    store::insert_approval(&*tx, &approval).await?;
                    account.pending_approval_id = Some(approval.id.clone());
                    trail.audit(approval_requested(&approval, &actor.id, now));
                    trail.event(events::approval_requested(&approval, now));
                    Some(approval)
                };
                let changes = domain::finish_account_update(&before, &mut account, actor, now);
                if !changes.is_empty() {
                    store::save_account(&*tx, &account, version).await?;
                    trail.account_changed(
                        &account,
                        AuditEntry::new(id, "account.updated", &actor.id, now)
                            .with_field_changes(changes)
                            .with_reason(&update.reason),
                    );
                }
                trail.done((account, approval))
            })
            .await
    }

    pub async fn create_contact(
        &self,
        actor: &Actor,
        tenant: &str,
        request: Option<RequestKey<'_>>,
        draft: ContactDraft,
    ) -> Result<Contact> {
        let now = now_micros();
        let contact = draft.contact(actor, new_id(), now);
        let new = &contact;
        let id: String = self
            .uow
            .run_once(tenant, request, |tx| async move {
                // Contacts are added by those who may change the account.
                let account = store::load_account(&*tx, tenant, &new.account_id).await?;
                domain::check_account_owner(&account, actor)?;
                store::insert_contact(&*tx, tenant, new).await?;
                let mut trail = Trail::default();
                trail.account_changed(
                    &account,
                    created(&new.id, "contact.created", &actor.id, &new.name, now),
                );
                trail.done(new.id.clone())
            })
            .await?;
        if id == contact.id {
            Ok(contact)
        } else {
            store::load_contact(self.db(), tenant, &id).await
        }
    }

    pub async fn list_contacts(
        &self,
        actor: &Actor,
        tenant: &str,
        account_id: &str,
        page: Page<'_>,
    ) -> Result<Vec<Contact>> {
        self.visible_account(self.db(), actor, tenant, account_id)
            .await?;
        store::list_contacts(self.db(), tenant, account_id, page.after, page.limit).await
    }
}
