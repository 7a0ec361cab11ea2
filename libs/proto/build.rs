//! Compiles every contract in `proto/` with protox (no protoc needed),
//! writes the descriptor set for reflection, and turns each method's
//! `(crm.common.v1.policy)` option into a table that crm-auth enforces.

use std::{
    error::Error,
    fmt::Write as _,
    fs,
    path::{Path, PathBuf},
};

use prost_reflect::{DescriptorPool, Value};

fn main() -> Result<(), Box<dyn Error>> {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_root = manifest_dir.join("../../proto");
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    println!("cargo:rerun-if-changed={}", proto_root.display());

    let mut files = Vec::new();
    collect_protos(&proto_root, &proto_root, &mut files)?;
    files.sort();

    let mut compiler = protox::Compiler::new([&proto_root])?;
    compiler.include_imports(true).include_source_info(true);
    compiler.open_files(&files)?;
    fs::write(
        out_dir.join("crm_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    fs::write(
        out_dir.join("policy.rs"),
        policy_table(&compiler.descriptor_pool())?,
    )?;

    // Type names (`prost::Name`) let event payloads travel as `Any`.
    let mut config = tonic_prost_build::Config::new();
    config.enable_type_names();
    // The conventional `Any` type URLs, as other languages' libraries write them.
    config.type_name_domain(["."], "type.googleapis.com");
    tonic_prost_build::configure()
        .build_client(true)
        .build_server(true)
        .include_file("_includes.rs")
        .compile_fds_with_config(compiler.file_descriptor_set(), config)?;
    Ok(())
}

fn collect_protos(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Box<dyn Error>> {
    for entry in fs::read_dir(dir)? {
        let path = entry?.path();
        if path.is_dir() {
            collect_protos(root, &path, out)?;
        } else if path.extension().is_some_and(|e| e == "proto") {
            out.push(path.strip_prefix(root)?.to_path_buf());
        }
    }
    Ok(())
}

/// Every method of every `crm.*` service must carry a policy: a method
/// without one fails the build instead of being open or silently closed.
fn policy_table(pool: &DescriptorPool) -> Result<String, Box<dyn Error>> {
    let ext = pool
        .get_extension_by_name("crm.common.v1.policy")
        .ok_or("crm.common.v1.policy extension not found")?;
    let role_enum = pool
        .get_enum_by_name("crm.common.v1.Role")
        .ok_or("crm.common.v1.Role not found")?;
    let mut out = String::from("&[\n");
    for service in pool
        .services()
        .filter(|s| s.full_name().starts_with("crm."))
    {
        for method in service.methods() {
            let path = format!("/{}/{}", service.full_name(), method.name());
            let options = method.options();
            if !options.has_extension(&ext) {
                return Err(format!("{path} has no (crm.common.v1.policy) option").into());
            }
            let policy = options.get_extension(&ext);
            let policy = policy.as_message().ok_or("policy is not a message")?;
            let public = policy
                .get_field_by_name("public")
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            let mut roles = Vec::new();
            if let Some(list) = policy.get_field_by_name("roles")
                && let Some(values) = list.as_list()
            {
                for value in values {
                    let Value::EnumNumber(n) = value else {
                        continue;
                    };
                    let name = role_enum
                        .get_value(*n)
                        .ok_or("unknown role")?
                        .name()
                        .trim_start_matches("ROLE_")
                        .to_ascii_lowercase();
                    roles.push(format!("{name:?}"));
                }
            }
            if roles.is_empty() && !public {
                return Err(format!("{path}: a policy names roles or is public").into());
            }
            writeln!(
                out,
                "    MethodPolicy {{ path: {path:?}, roles: &[{}], public: {public} }},",
                roles.join(", ")
            )?;
        }
    }
    out.push(']');
    Ok(out)
}
