//! Generated code for every contract in `proto/`, the encoded descriptor set
//! (for gRPC reflection) and the per-method role policy declared in the
//! contracts with the `(crm.common.v1.policy)` option.
//!
//! `google.api` holds the vendored annotations the contracts use
//! (`field_behavior`, `resource`); their messages are generated too, so the
//! descriptor set and the code agree, but a service has no use for them.

#[allow(clippy::all, clippy::pedantic, missing_docs, unreachable_pub)]
mod generated {
    include!(concat!(env!("OUT_DIR"), "/_includes.rs"));
}

pub use generated::{crm, google};

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

/// Where the requests of a package name something: for each method of the
/// package's services, by path (`/crm.events.v1.EventService/Subscribe`),
/// the number of the singular `string` field called `field` of its request
/// message. The gateway reads `SubscribeRequest.source` by it.
///
/// An error says which method's request lacks the field (or that no
/// service of the package is known), for a configuration message.
pub fn request_string_fields(
    package: &str,
    field: &str,
) -> Result<std::collections::BTreeMap<String, u32>, String> {
    use prost::Message as _;
    use prost_types::field_descriptor_proto::{Label, Type};

    let set = prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET)
        .map_err(|e| format!("the contracts' descriptor set does not decode: {e}"))?;
    let messages: std::collections::HashMap<String, &prost_types::DescriptorProto> = set
        .file
        .iter()
        .flat_map(|f| {
            f.message_type
                .iter()
                .map(move |m| (format!(".{}.{}", f.package(), m.name()), m))
        })
        .collect();
    let mut numbers = std::collections::BTreeMap::new();
    for file in set.file.iter().filter(|f| f.package() == package) {
        for service in &file.service {
            for method in &service.method {
                let path = format!("/{package}.{}/{}", service.name(), method.name());
                let number = messages
                    .get(method.input_type())
                    .and_then(|m| m.field.iter().find(|f| f.name() == field))
                    .filter(|f| f.r#type() == Type::String && f.label() != Label::Repeated)
                    .and_then(|f| u32::try_from(f.number()).ok())
                    .ok_or_else(|| {
                        format!(
                            "{path}: its request {} has no string field {field:?}",
                            method.input_type().trim_start_matches('.')
                        )
                    })?;
                numbers.insert(path, number);
            }
        }
    }
    if numbers.is_empty() {
        return Err(format!(
            "no service of package {package} is in the contracts"
        ));
    }
    Ok(numbers)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

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

    #[test]
    fn finds_the_field_a_request_names_its_source_by() {
        let numbers = request_string_fields("crm.events.v1", "source").unwrap();
        assert_eq!(
            numbers.get("/crm.events.v1.EventService/Subscribe"),
            Some(&3)
        );
        let err = request_string_fields("crm.events.v1", "after_sequence").unwrap_err();
        assert!(
            err.contains("SubscribeRequest has no string field"),
            "{err}"
        );
        let err = request_string_fields("crm.nothing.v1", "source").unwrap_err();
        assert!(err.contains("crm.nothing.v1"), "{err}");
    }

    fn contracts() -> prost_types::FileDescriptorSet {
        use prost::Message as _;
        prost_types::FileDescriptorSet::decode(FILE_DESCRIPTOR_SET).unwrap()
    }

    /// `crm.work_orders.v1` → `WorkOrders`-style segments.
    fn pascal(segment: &str) -> String {
        segment
            .split('_')
            .map(|word| {
                let mut chars = word.chars();
                chars
                    .next()
                    .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                    .unwrap_or_default()
            })
            .collect()
    }

    /// The per-language options are part of the published contract (client
    /// teams import the generated code by them): every file of a `crm.*`
    /// package carries exactly the scheme of docs/contracts.md. buf's
    /// FILE_SAME_* breaking rules are off (see proto/buf.yaml), so this is
    /// what refuses a change to them.
    #[test]
    fn file_options_follow_the_scheme() {
        let mut checked = 0;
        for file in contracts().file {
            let package = file.package().to_owned();
            if !package.starts_with("crm.") {
                continue;
            }
            let segments: Vec<&str> = package.split('.').collect();
            let go_name: String = segments[1..].concat().replace('_', "");
            let expected = (
                format!(
                    "github.com/crm-suite/crm/gen/go/{};{go_name}",
                    segments.join("/")
                ),
                format!("com.crmsuite.{package}"),
                true,
                format!(
                    "CrmSuite.{}",
                    segments
                        .iter()
                        .map(|s| pascal(s))
                        .collect::<Vec<_>>()
                        .join(".")
                ),
            );
            let options = file.options.clone().unwrap_or_default();
            let actual = (
                options.go_package().to_owned(),
                options.java_package().to_owned(),
                options.java_multiple_files(),
                options.csharp_namespace().to_owned(),
            );
            assert_eq!(actual, expected, "{}", file.name());
            checked += 1;
        }
        assert!(checked >= 10, "only {checked} contract files found");
    }

    /// Every field of every contract message says how it behaves
    /// (`google.api.field_behavior`): the vendored annotations are in the
    /// descriptor set, and no field was forgotten.
    #[test]
    fn every_contract_field_has_a_behaviour() {
        let pool = prost_reflect::DescriptorPool::decode(FILE_DESCRIPTOR_SET).unwrap();
        let behaviour = pool
            .get_extension_by_name("google.api.field_behavior")
            .unwrap();
        let mut missing = Vec::new();
        for message in pool.all_messages() {
            if !message.package_name().starts_with("crm.") || message.is_map_entry() {
                continue;
            }
            for field in message.fields() {
                let options = field.options();
                let set = options.has_extension(&behaviour)
                    && options
                        .get_extension(&behaviour)
                        .as_list()
                        .is_some_and(|l| !l.is_empty());
                if !set {
                    missing.push(field.full_name().to_owned());
                }
            }
        }
        assert_eq!(missing, Vec::<String>::new());

        let company = pool
            .get_message_by_name("crm.leads.v1.Lead")
            .and_then(|m| m.get_field_by_name("company"))
            .unwrap();
        let options = company.options();
        let value = options.get_extension(&behaviour);
        let required = pool
            .get_enum_by_name("google.api.FieldBehavior")
            .and_then(|e| e.get_value_by_name("REQUIRED"))
            .unwrap();
        assert_eq!(
            value
                .as_list()
                .and_then(|l| l.first())
                .and_then(|v| v.as_enum_number()),
            Some(required.number())
        );
    }
}
