//! The architecture's import rules, checked over the workspace itself:
//! shared crates never depend on services, and inside a service the layers
//! only import downwards (`api -> app -> {domain, store, wire}`,
//! `wire -> domain`, `store -> domain`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{path::Path, process::Command};

fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

#[test]
fn no_shared_crate_depends_on_a_service() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
        ])
        .current_dir(workspace_root())
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let root = workspace_root().canonicalize().unwrap();
    let packages = metadata["packages"].as_array().unwrap();
    let dir_of = |p: &serde_json::Value| {
        let manifest = Path::new(p["manifest_path"].as_str().unwrap());
        manifest
            .parent()
            .unwrap()
            .strip_prefix(&root)
            .unwrap()
            .to_path_buf()
    };
    let services: Vec<&str> = packages
        .iter()
        .filter(|p| dir_of(p).starts_with("services"))
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(services.contains(&"crm-leads"), "{services:?}");
    let mut wrong = Vec::new();
    for lib in packages.iter().filter(|p| dir_of(p).starts_with("libs")) {
        for dep in lib["dependencies"].as_array().unwrap() {
            let name = dep["name"].as_str().unwrap();
            if services.contains(&name) {
                wrong.push(format!("{} -> {name}", lib["name"].as_str().unwrap()));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "libs/ crates depending on services: {wrong:?}"
    );
}

/// The only modules of its own crate each layer of a service may import:
/// `domain` nothing but itself, `store` and `wire` only the domain.
const ALLOWED: &[(&str, &[&str])] = &[
    ("domain", &["domain"]),
    ("store", &["store", "domain"]),
    ("wire", &["wire", "domain"]),
];

/// Every `crate::<module>` path in `text`.
fn crate_paths(text: &str) -> impl Iterator<Item = &str> {
    text.match_indices("crate::").map(move |(at, needle)| {
        let rest = &text[at + needle.len()..];
        let end = rest
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        &rest[..end]
    })
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn layers_of_a_service_import_only_downwards() {
    let mut wrong = Vec::new();
    let services = std::fs::read_dir(workspace_root().join("services")).unwrap();
    for service in services {
        let src = service.unwrap().path().join("src");
        for (layer, allowed) in ALLOWED {
            let mut files = Vec::new();
            rust_files(&src.join(layer), &mut files);
            files.push(src.join(format!("{layer}.rs")));
            for file in files {
                let Ok(text) = std::fs::read_to_string(&file) else {
                    continue;
                };
                for module in crate_paths(&text) {
                    // A grouped `crate::{..}` import shows as an empty
                    // name and is refused too: name modules one by one.
                    if !allowed.contains(&module) {
                        wrong.push(format!("{} imports crate::{module}", file.display()));
                    }
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
