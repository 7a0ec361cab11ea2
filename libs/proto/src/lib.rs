//! Generated code for every contract in `proto/`, the encoded descriptor set
//! (for gRPC reflection) and the per-method role policy declared in the
//! contracts with the `(crm.common.v1.policy)` option.

#[allow(clippy::all, clippy::pedantic, missing_docs, unreachable_pub)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/_includes.rs"));
}

pub use generated::crm;

/// The encoded `FileDescriptorSet` of all contracts, imports included.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/crm_descriptor.bin"));

/// Who may call one gRPC method, as declared in its contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MethodPolicy {
    /// `/package.Service/Method`.
    pub path: &'static str,
    /// Role names as they appear in a token's `roles` claim.
    pub roles: &'static [&'static str],
    /// Callable without a token.
    pub public: bool,
}

/// The policy of every method of every `crm.*` service.
pub const METHOD_POLICIES: &[MethodPolicy] = include!(concat!(env!("OUT_DIR"), "/policy.rs"));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_lead_method_has_a_policy() {
        let create = METHOD_POLICIES
            .iter()
            .find(|p| p.path == "/crm.leads.v1.LeadService/CreateLead");
        assert!(create.is_some_and(|p| p.roles.contains(&"sales") && !p.public));
        let claim = METHOD_POLICIES
            .iter()
            .find(|p| p.path == "/crm.leads.v1.LeadService/ClaimLead");
        assert_eq!(claim.map(|p| p.roles), Some(&["sales"][..]));
    }
}
