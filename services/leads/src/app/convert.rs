//! Conversion (DOMAIN 1): the opportunities service makes the account and
//! the opportunity, then the lead is marked converted. The remote step
//! creates at most one opportunity per lead, so the whole may be repeated
//! after any failure.

use std::time::{Duration, Instant};

use crm_auth::{Acting, BearerToken};
use crm_proto::crm::{
    common::v1 as common, opportunities::v1::opportunity_service_client::OpportunityServiceClient,
};

use super::{
    App,
    changes::{Action, Applied, apply},
};
use crate::{
    domain::{self, Actor, Lead, LeadError, Role, check_convertible},
    store, wire,
    workers::CONVERTER,
};

/// The opportunities service as the leads service calls it.
pub type OpportunitiesClient = OpportunityServiceClient<crm_service::PeerChannel>;

/// What the opportunities service made of a lead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Converted {
    pub opportunity_id: String,
    pub account_id: String,
}

/// Why a conversion did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ConvertError {
    #[error(transparent)]
    Lead(#[from] LeadError),
    /// The opportunities service is not configured or did not answer; the
    /// lead is unchanged and the call may be retried.
    #[error("{0}")]
    Unavailable(String),
    /// The opportunities service refused the conversion.
    #[error("{}: {}", .0.code(), .0.message())]
    Refused(tonic::Status),
}

/// Attempts of a conversion without an etag that lost a race to a
/// concurrent change: each reads the lead again, as it is then.
const RACE_ATTEMPTS: u32 = 5;

/// How long a conversion's service token is valid: past any remote call.
const SERVICE_TOKEN_TTL: Duration = Duration::from_secs(300);

/// The share of the caller's remaining time the remote call gets: the rest
/// is left to answer the caller before its deadline.
const REMOTE_SHARE: (u32, u32) = (9, 10);

impl ConvertError {
    /// A concurrent change won an optimistic race, here or in the
    /// opportunities service: trying again reads what it left.
    fn lost_a_race(&self) -> bool {
        match self {
            ConvertError::Lead(LeadError::StaleEtag { .. }) => true,
            ConvertError::Refused(status) => status.code() == tonic::Code::Aborted,
            _ => false,
        }
    }
}

impl App {
    /// Converts a lead the actor may see and change: asks the
    /// opportunities service (as this service, acting for the caller, who
    /// may no longer call it directly), then marks the lead
    /// converted. A lead already converted is returned as it is. Without
    /// an etag ("whatever is current") a concurrent change is not the
    /// caller's conflict: the conversion is tried again on the lead as it
    /// is now. `deadline` is the caller's; the remote call ends before it.
    pub async fn convert(
        &self,
        tenant: &str,
        id: &str,
        etag: &str,
        actor: &Actor,
        opportunity_name: String,
        amount: Option<common::Money>,
        deadline: Option<Instant>,
        now: i64,
    ) -> Result<Lead, ConvertError> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let tried = self
                .convert_once(
                    tenant,
                    id,
                    etag,
                    actor,
                    opportunity_name.clone(),
                    amount.clone(),
                    deadline,
                    now,
                )
                .await;
            match tried {
                Err(err) if etag.is_empty() && attempt < RACE_ATTEMPTS && err.lost_a_race() => {}
                done => return done,
            }
        }
    }

    async fn convert_once(
        &self,
        tenant: &str,
        id: &str,
        etag: &str,
        actor: &Actor,
        opportunity_name: String,
        amount: Option<common::Money>,
        deadline: Option<Instant>,
        now: i64,
    ) -> Result<Lead, ConvertError> {
        let lead = self.get(tenant, id, actor).await?;
        lead.check_etag(etag)?;
        if !check_convertible(&lead, actor)? {
            return Ok(lead);
        }
        let timeout = self.remote_timeout(deadline);
        let converted = self
            .convert_remotely_within(&lead, Some(actor), opportunity_name, amount, timeout)
            .await?;
        let converted = &converted;
        let lead = self
            .uow
            .run(tenant, |tx| async move {
                let applied = mark_converted(&*tx, tenant, id, converted, actor, now).await?;
                Ok::<_, LeadError>(applied.into_effect())
            })
            .await?;
        Ok(lead)
    }

    /// How long the remote call may take: the setting's cap, or less when
    /// the caller's deadline leaves less.
    fn remote_timeout(&self, deadline: Option<Instant>) -> Duration {
        let cap = self.convert_timeout;
        let Some(deadline) = deadline else {
            return cap;
        };
        let (share, of) = REMOTE_SHARE;
        let left = deadline.saturating_duration_since(Instant::now());
        (left * share / of).min(cap)
    }

    /// Asks the opportunities service to convert `lead` for the service
    /// itself (automatic conversion), within the current trace, in the
    /// configured time.
    pub async fn convert_remotely(&self, lead: &Lead) -> Result<Converted, ConvertError> {
        let timeout = self.convert_timeout;
        self.convert_remotely_within(lead, None, String::new(), None, timeout)
            .await
    }

    /// The service token of a conversion in `tenant`: role `internal`,
    /// naming in `act` the user it is made for, if any, whom the
    /// opportunities service then records and checks.
    fn service_token(
        &self,
        tenant: &str,
        acting: Option<&Actor>,
    ) -> Result<BearerToken, ConvertError> {
        let Some(identity) = &self.identity else {
            return Err(ConvertError::Unavailable(
                "the service has no identity to call the opportunities service with \
                 (auth.service_key_file)"
                    .into(),
            ));
        };
        let acting = acting.map(|actor| Acting {
            subject: actor.id.clone(),
            roles: actor
                .roles
                .iter()
                .copied()
                .filter(|r| *r != Role::Internal)
                .collect(),
        });
        identity
            .mint_acting(
                CONVERTER,
                tenant,
                &[Role::Internal],
                acting.as_ref(),
                SERVICE_TOKEN_TTL,
            )
            .map(BearerToken)
            .map_err(|e| ConvertError::Unavailable(format!("signing the service token: {e}")))
    }

    async fn convert_remotely_within(
        &self,
        lead: &Lead,
        acting: Option<&Actor>,
        opportunity_name: String,
        amount: Option<common::Money>,
        timeout: Duration,
    ) -> Result<Converted, ConvertError> {
        let Some(mut client) = self.opportunities.clone() else {
            return Err(ConvertError::Unavailable(
                "no opportunities service is configured (leads.opportunities_url)".into(),
            ));
        };
        let token = self.service_token(&lead.tenant, acting)?;
        let call = crm_service::outbound(
            wire::convert_request(lead, opportunity_name, amount),
            Some(&token),
            timeout,
        );
        match client.convert_lead(call).await {
            Ok(reply) => {
                let reply = reply.into_inner();
                Ok(Converted {
                    opportunity_id: reply.opportunity.map(|o| o.id).unwrap_or_default(),
                    account_id: reply.account.map(|a| a.id).unwrap_or_default(),
                })
            }
            Err(s)
                if matches!(
                    s.code(),
                    tonic::Code::Unavailable
                        | tonic::Code::DeadlineExceeded
                        | tonic::Code::Unknown
                        | tonic::Code::Cancelled
                ) =>
            {
                Err(ConvertError::Unavailable(format!(
                    "the opportunities service did not answer ({}); the lead is unchanged, retry later",
                    s.code()
                )))
            }
            Err(s) => Err(ConvertError::Refused(s)),
        }
    }

    /// Records a conversion in `tx`, a transaction the caller commits with
    /// its own state (an event consumer's cursor): the audit entry and the
    /// events are appended to it directly.
    pub async fn mark_converted_in(
        &self,
        tx: &impl sea_orm::ConnectionTrait,
        tenant: &str,
        id: &str,
        converted: &Converted,
        actor: &Actor,
        now: i64,
    ) -> Result<Lead, LeadError> {
        let applied = mark_converted(tx, tenant, id, converted, actor, now).await?;
        store::append(tx, tenant, applied.audit, applied.events).await?;
        Ok(applied.lead)
    }
}

/// Marks the lead converted. Converting an already converted lead changes
/// nothing, so a retry after a crash between the two services' steps ends
/// in the same state.
async fn mark_converted(
    tx: &impl sea_orm::ConnectionTrait,
    tenant: &str,
    id: &str,
    converted: &Converted,
    actor: &Actor,
    now: i64,
) -> Result<Applied, LeadError> {
    let action = Action {
        tenant,
        id,
        etag: "",
        name: "lead.converted",
        actor: &actor.id,
        now,
    };
    apply(tx, action, |lead| {
        let changes = domain::convert(
            lead,
            &converted.opportunity_id,
            &converted.account_id,
            actor,
            now,
        )?;
        Ok((changes, String::new()))
    })
    .await
}
