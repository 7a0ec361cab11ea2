//! Conversion (DOMAIN 1): the opportunities service makes the account and
//! the opportunity, then the lead is marked converted. The remote step
//! creates at most one opportunity per lead, so the whole may be repeated
//! after any failure.

use crm_auth::BearerToken;
use crm_proto::crm::{
    common::v1 as common, opportunities::v1::opportunity_service_client::OpportunityServiceClient,
};

use super::{
    App,
    changes::{Action, Applied, apply},
};
use crate::{
    domain::{self, Actor, Lead, LeadError, check_convertible},
    store, wire,
};

/// The opportunities service as the leads service calls it.
pub type OpportunitiesClient = OpportunityServiceClient<tonic::transport::Channel>;

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

impl App {
    /// Converts a lead the actor may see and change: asks the
    /// opportunities service as the caller (`token`), then marks the lead
    /// converted. A lead already converted is returned as it is.
    pub async fn convert(
        &self,
        tenant: &str,
        id: &str,
        etag: &str,
        actor: &Actor,
        token: Option<BearerToken>,
        opportunity_name: String,
        amount: Option<common::Money>,
        now: i64,
    ) -> Result<Lead, ConvertError> {
        let lead = self.get(tenant, id, actor).await?;
        lead.check_etag(etag)?;
        if !check_convertible(&lead, actor)? {
            return Ok(lead);
        }
        let converted = self
            .convert_remotely(&lead, token, opportunity_name, amount)
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

    /// Asks the opportunities service to convert `lead`, with `token`
    /// and within the current trace.
    pub async fn convert_remotely(
        &self,
        lead: &Lead,
        token: Option<BearerToken>,
        opportunity_name: String,
        amount: Option<common::Money>,
    ) -> Result<Converted, ConvertError> {
        let Some(mut client) = self.opportunities.clone() else {
            return Err(ConvertError::Unavailable(
                "no opportunities service is configured (leads.opportunities_url)".into(),
            ));
        };
        let call = crm_service::outbound(
            wire::convert_request(lead, opportunity_name, amount),
            token.as_ref(),
            std::time::Duration::from_secs(10),
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
