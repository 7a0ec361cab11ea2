//! The opportunities service, asked as the caller (their token relayed):
//! what CreateContract needs of the opportunity, its decision chain and
//! its account's contacts. A refusal there is the caller's refusal here.

use std::time::{Duration, Instant};

use crm_auth::BearerToken;
use crm_proto::crm::opportunities::v1::{
    self as opp, opportunity_service_client::OpportunityServiceClient,
};
use tonic::Code;

use super::{Result, UseCases};
use crate::domain::{ContractError, OpportunityFacts, resource};
use crate::wire;

/// The opportunities service as the contracts service calls it.
pub type OpportunitiesClient = OpportunityServiceClient<crm_service::PeerChannel>;

/// The share of the caller's remaining time the remote calls get: the rest
/// is left to store the contract and answer.
const REMOTE_SHARE: (u32, u32) = (8, 10);

/// The most contacts read to name the key contacts.
const CONTACTS_PAGE: i32 = 500;

fn refused(status: &tonic::Status, opportunity_id: &str) -> ContractError {
    match status.code() {
        // Another tenant's, or not the caller's to see: the same to them.
        Code::NotFound | Code::PermissionDenied => {
            ContractError::not_found(resource::OPPORTUNITY, opportunity_id)
        }
        Code::Unavailable | Code::DeadlineExceeded | Code::Unknown | Code::Cancelled => {
            ContractError::Unavailable(format!(
                "the opportunities service did not answer ({}); nothing was stored, retry later",
                status.code()
            ))
        }
        code => ContractError::Remote {
            code: code as i32,
            message: status.message().chars().take(200).collect(),
        },
    }
}

impl UseCases {
    /// How long the remote calls may take: the setting's cap, or less when
    /// the caller's deadline leaves less.
    fn remote_timeout(&self, deadline: Option<Instant>) -> Duration {
        let cap = self.remote_timeout;
        let Some(deadline) = deadline else {
            return cap;
        };
        let (share, of) = REMOTE_SHARE;
        (deadline.saturating_duration_since(Instant::now()) * share / of).min(cap)
    }

    /// The opportunity as the caller sees it, with its key contacts.
    pub(super) async fn opportunity(
        &self,
        id: &str,
        token: Option<&BearerToken>,
        deadline: Option<Instant>,
    ) -> Result<OpportunityFacts> {
        let Some(mut client) = self.opportunities.clone() else {
            return Err(ContractError::Unavailable(
                "no opportunities service is configured (contracts.opportunities_url or peers.opportunities)"
                    .into(),
            ));
        };
        let timeout = self.remote_timeout(deadline);
        let o = client
            .get_opportunity(crm_service::outbound(
                opp::GetOpportunityRequest { id: id.to_owned() },
                token,
                timeout,
            ))
            .await
            .map_err(|s| refused(&s, id))?
            .into_inner()
            .opportunity
            .ok_or_else(|| ContractError::not_found(resource::OPPORTUNITY, id))?;
        if o.stage != opp::Stage::Won as i32 {
            // The domain refuses it; no need to read more.
            return Ok(wire::opportunity_facts(&o, &[], &[]));
        }
        let chain = client
            .list_decision_chain(crm_service::outbound(
                opp::ListDecisionChainRequest {
                    opportunity_id: id.to_owned(),
                },
                token,
                timeout,
            ))
            .await
            .map_err(|s| refused(&s, id))?
            .into_inner()
            .members;
        let contacts = client
            .list_contacts(crm_service::outbound(
                opp::ListContactsRequest {
                    account_id: o.account_id.clone(),
                    page_size: CONTACTS_PAGE,
                    page_token: String::new(),
                },
                token,
                timeout,
            ))
            .await
            .map_err(|s| refused(&s, id))?
            .into_inner()
            .contacts;
        Ok(wire::opportunity_facts(&o, &chain, &contacts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_opportunity_the_caller_may_not_see_is_not_found_and_an_outage_unavailable() {
        for code in [Code::NotFound, Code::PermissionDenied] {
            assert!(matches!(
                refused(&tonic::Status::new(code, "x"), "o1"),
                ContractError::NotFound { id, .. } if id == "o1"
            ));
        }
        for code in [Code::Unavailable, Code::DeadlineExceeded, Code::Cancelled] {
            assert!(matches!(
                refused(&tonic::Status::new(code, "x"), "o1"),
                ContractError::Unavailable(_)
            ));
        }
        assert!(matches!(
            refused(&tonic::Status::invalid_argument("bad id"), "o1"),
            ContractError::Remote { code, .. } if code == Code::InvalidArgument as i32
        ));
    }
}
