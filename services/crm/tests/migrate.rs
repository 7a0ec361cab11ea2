//! `crm migrate` as a migration Job runs it: the binary, in a container
//! whose root filesystem is read-only, possibly several at once.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    path::{Path, PathBuf},
    process::{Command, Output},
};

use crm_store::{ConnectionTrait, Location};

/// A directory of its own under the system's temporary directory, removed
/// on drop (made writable again first).
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "crm-migrate-{name}-{}-{}",
            std::process::id(),
            crm_store::new_id()
        ));
        std::fs::create_dir_all(&path).unwrap();
        Dir(path)
    }

    /// Read-only, and with a file where the default data directory
    /// (`./data`) would go, so that nothing can be made there even by
    /// root (whom permissions do not stop).
    fn read_only(name: &str) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = Dir::new(name);
        std::fs::write(dir.0.join("data"), b"not a directory").unwrap();
        std::fs::set_permissions(&dir.0, std::fs::Permissions::from_mode(0o555)).unwrap();
        dir
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o755));
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// `crm migrate` started in `cwd` with `env` (and no other `CRM__` setting).
fn migrate(cwd: &Path, env: &[(&str, String)]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_crm"));
    command.arg("migrate").current_dir(cwd);
    for (name, _) in std::env::vars() {
        if name.to_ascii_uppercase().starts_with("CRM__") {
            command.env_remove(name);
        }
    }
    for (name, value) in env {
        command.env(name, value);
    }
    command
}

fn assert_success(output: &Output, what: &str) {
    assert!(
        output.status.success(),
        "{what}: {:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A fresh PostgreSQL database on the test server, dropped on drop; `None`
/// (said on stderr) when `CRM_TEST_DATABASE_URL` is unset.
struct FreshDatabase {
    server: String,
    name: String,
    runtime: tokio::runtime::Runtime,
}

impl FreshDatabase {
    fn create(test: &str) -> Option<Self> {
        let Some(server) = std::env::var("CRM_TEST_DATABASE_URL")
            .ok()
            .filter(|url| !url.is_empty())
        else {
            eprintln!("skipped {test}: CRM_TEST_DATABASE_URL is unset (PostgreSQL only)");
            return None;
        };
        let name = format!("crm_migrate_{}", crm_store::new_id().replace('-', ""));
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let fresh = FreshDatabase {
            server,
            name,
            runtime,
        };
        fresh.execute(&format!("CREATE DATABASE {}", fresh.name));
        Some(fresh)
    }

    fn execute(&self, sql: &str) {
        self.runtime.block_on(async {
            let location = Location {
                url: self.server.clone(),
                schema: None,
            };
            let db = crm_store::connect(&location, 1).await.unwrap();
            db.execute_unprepared(sql).await.unwrap();
            db.close().await.unwrap();
        });
    }

    /// The URL of the fresh database on the same server.
    fn url(&self) -> String {
        let (base, _) = self.server.rsplit_once('/').expect("a URL with a path");
        format!("{base}/{}", self.name)
    }
}

impl Drop for FreshDatabase {
    fn drop(&mut self) {
        self.execute(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

/// Issue 15: migrating needs the database and nothing else. Started where
/// nothing may be written (a read-only working directory, so the default
/// `./data` cannot be made), `crm migrate` succeeds: on SQLite with the
/// data directory elsewhere, on PostgreSQL with only its URL. It made no
/// key anywhere.
#[test]
fn migrate_writes_nothing_but_the_database() {
    let cwd = Dir::read_only("cwd");
    let data = Dir::new("data");
    let sqlite = migrate(&cwd.0, &[("CRM__DATA_DIR", data.0.display().to_string())])
        .output()
        .unwrap();
    assert_success(&sqlite, "crm migrate on SQLite");
    assert!(
        data.0.join("leads.db").exists(),
        "migrated where configured"
    );
    assert!(!data.0.join("keys").exists(), "no key made");

    let Some(database) =
        FreshDatabase::create("migrate_writes_nothing_but_the_database (PostgreSQL)")
    else {
        return;
    };
    let postgres = migrate(&cwd.0, &[("CRM__STORE__DATABASE_URL", database.url())])
        .output()
        .unwrap();
    assert_success(&postgres, "crm migrate on PostgreSQL");
}

/// Issue 15: four `crm migrate` started at once on a fresh PostgreSQL
/// database all succeed: migrators take turns instead of racing to create
/// the same schemas and tables.
#[test]
fn concurrent_migrations_take_turns() {
    let Some(database) = FreshDatabase::create("concurrent_migrations_take_turns") else {
        return;
    };
    let cwd = Dir::new("cwd");
    let children: Vec<_> = (0..4)
        .map(|_| {
            migrate(&cwd.0, &[("CRM__STORE__DATABASE_URL", database.url())])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let output = child.wait_with_output().unwrap();
        assert_success(&output, &format!("crm migrate #{i}"));
    }
}

/// The same on SQLite: four at once on fresh files.
#[test]
fn concurrent_migrations_take_turns_on_sqlite() {
    let cwd = Dir::new("cwd");
    let data = Dir::new("data");
    let children: Vec<_> = (0..4)
        .map(|_| {
            migrate(&cwd.0, &[("CRM__DATA_DIR", data.0.display().to_string())])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for (i, child) in children.into_iter().enumerate() {
        let output = child.wait_with_output().unwrap();
        assert_success(&output, &format!("crm migrate #{i}"));
    }
}
