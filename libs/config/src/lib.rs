//! Layered configuration for every `crm` process.
//!
//! Sources, later ones winning: the built-in defaults (`T::default()`), an
//! optional TOML file, then environment variables `CRM__SECTION__KEY`.
//! Settings structs are meant to carry `#[serde(deny_unknown_fields, default)]`
//! so that a typo (`CRM__SERVER__PROT=1`) or a bad value (`port = "abc"`)
//! stops start-up with a message that names the key (`server.prot`), instead
//! of being silently ignored.
//!
//! ```no_run
//! # use serde::{Deserialize, Serialize};
//! #[derive(Debug, Default, Serialize, Deserialize)]
//! #[serde(deny_unknown_fields, default)]
//! struct Settings { server: Server }
//!
//! #[derive(Debug, Default, Serialize, Deserialize)]
//! #[serde(deny_unknown_fields, default)]
//! struct Server { port: u16 }
//!
//! let settings: Settings = crm_config::load(None)?;
//! # Ok::<(), crm_config::ConfigError>(())
//! ```

pub mod duration;

use std::path::{Path, PathBuf};

use config::{Config, FileFormat, Source, Value, ValueKind};
use serde::{Serialize, de::DeserializeOwned};

/// The prefix of the environment variables read, separator included.
/// `CRM_TEST_DATABASE_URL` (one underscore) is not configuration.
const ENV_PREFIX: &str = "crm__";
/// Separates the segments of a key path in a variable name.
const ENV_SEPARATOR: &str = "__";
/// Separates the items of a list given in one variable.
const ENV_LIST_SEPARATOR: char = ',';

/// Why the configuration could not be loaded. Each message names the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A key that no setting has: a typo or a setting of another version.
    #[error("unknown configuration key `{key}`{origin}; {expected}")]
    UnknownKey {
        /// Dotted path of the key, e.g. `server.prot`.
        key: String,
        /// Where it was set, as `" (from ...)"`, or empty.
        origin: String,
        /// The keys accepted at that level, as serde words it.
        expected: String,
    },
    /// The configuration file could not be read or is not valid TOML.
    #[error("configuration file {}: {source}", path.display())]
    File {
        /// The file given.
        path: PathBuf,
        /// What went wrong.
        #[source]
        source: config::ConfigError,
    },
    /// An environment variable whose value is not valid Unicode.
    #[error("environment variable {name} is not valid Unicode")]
    NotUnicode {
        /// The variable's name.
        name: String,
    },
    /// An environment variable whose name is not a valid key path.
    #[error("environment variable {name} does not name a configuration key: {reason}")]
    BadVariable {
        /// The variable's name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The defaults could not be represented (a bug in the settings type).
    #[error("built-in configuration defaults: {0}")]
    Defaults(String),
    /// A value of the wrong type or out of range; the message names the key.
    #[error("invalid configuration: {0}")]
    Invalid(#[source] config::ConfigError),
    /// A value of the right type whose meaning is wrong, e.g. an interval
    /// of zero.
    #[error("invalid configuration: {key}: {reason}")]
    Meaning {
        /// Dotted path of the key, e.g. `leads.sweep_interval`.
        key: String,
        /// What is wrong with its value.
        reason: String,
    },
}

/// Loads `T` from its defaults, then `file` (TOML) if given, then the
/// process environment (`CRM__SECTION__KEY`).
pub fn load<T>(file: Option<&Path>) -> Result<T, ConfigError>
where
    T: Serialize + DeserializeOwned + Default,
{
    let mut vars = Vec::new();
    for (name, value) in std::env::vars_os() {
        // A variable that is not ours may hold anything; one of ours must be
        // readable, or a setting would silently fall back to its default.
        let Ok(name) = name.into_string() else {
            continue;
        };
        if !is_ours(&name) {
            continue;
        }
        let value = value
            .into_string()
            .map_err(|_| ConfigError::NotUnicode { name: name.clone() })?;
        vars.push((name, value));
    }
    load_from(file, vars)
}

/// [`load`] with the environment given explicitly, so that callers and tests
/// need not change the process environment. Variables without the `CRM__`
/// prefix are ignored.
pub fn load_from<T>(
    file: Option<&Path>,
    env_vars: impl IntoIterator<Item = (String, String)>,
) -> Result<T, ConfigError>
where
    T: Serialize + DeserializeOwned + Default,
{
    let default = T::default();
    let defaults = Config::try_from(&default).map_err(|e| ConfigError::Defaults(e.to_string()))?;
    // The config crate drops empty lists from its tree; JSON keeps them, so
    // `CRM__AUTH__PUBLIC_KEY_FILES` is known to be a list even when empty.
    let shape = serde_json::to_value(&default).map_err(|e| ConfigError::Defaults(e.to_string()))?;

    let mut builder = Config::builder().add_source(defaults);
    if let Some(path) = file {
        let source = config::File::from(path)
            .format(FileFormat::Toml)
            .required(true);
        // Read the file on its own first so that its errors name the file.
        source.collect().map_err(|source| ConfigError::File {
            path: path.to_path_buf(),
            source,
        })?;
        builder = builder.add_source(source);
    }

    let mut from_env = Vec::new();
    for (name, raw) in env_vars {
        let lower = name.to_ascii_lowercase();
        let Some(rest) = lower.strip_prefix(ENV_PREFIX) else {
            continue;
        };
        let segments: Vec<&str> = rest.split(ENV_SEPARATOR).collect();
        if segments.iter().any(|s| s.is_empty()) {
            return Err(ConfigError::BadVariable {
                name,
                reason: "empty key segment (expected CRM__SECTION__KEY)".into(),
            });
        }
        let key = segments.join(".");
        let origin = format!("environment variable {name}");
        let value = Value::new(Some(&origin), env_value(&shape, &key, raw, &origin));
        builder = builder
            .set_override(&key, value)
            .map_err(|source| ConfigError::BadVariable {
                name: name.clone(),
                reason: source.to_string(),
            })?;
        from_env.push((key, name));
    }

    let merged = builder.build().map_err(ConfigError::Invalid)?;
    let settings: T = merged
        .try_deserialize()
        .map_err(|err| describe(err, file, &from_env))?;
    let loaded =
        serde_json::to_value(&settings).map_err(|e| ConfigError::Defaults(e.to_string()))?;
    if let Some(key) = zero_duration(&loaded, "") {
        return Err(ConfigError::Meaning {
            key,
            reason: "must be greater than 0".into(),
        });
    }
    Ok(settings)
}

/// The key of the first duration of zero in `value`. Every duration
/// setting is an interval, a timeout, a window or a period, where zero is
/// a busy loop, an instant failure or a panic in a timer: a setting that
/// can be off is an option (unset) instead.
fn zero_duration(value: &serde_json::Value, key: &str) -> Option<String> {
    let child = |name: &str| {
        if key.is_empty() {
            name.to_owned()
        } else {
            format!("{key}.{name}")
        }
    };
    match value {
        serde_json::Value::String(text) => duration::parse(text)
            .is_ok_and(|d| d.is_zero())
            .then(|| key.to_owned()),
        serde_json::Value::Object(fields) => fields
            .iter()
            .find_map(|(name, v)| zero_duration(v, &child(name))),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, v)| zero_duration(v, &format!("{key}[{i}]"))),
        _ => None,
    }
}

fn is_ours(name: &str) -> bool {
    name.get(..ENV_PREFIX.len())
        .is_some_and(|p| p.eq_ignore_ascii_case(ENV_PREFIX))
}

/// Types a variable's text by the default value at the same key: a string
/// setting keeps its text exactly (a password "0123" stays "0123"), a list
/// setting takes comma-separated items, and anything else (numbers, bools,
/// options without a default) is parsed as a bool or number where it parses.
fn env_value(shape: &serde_json::Value, key: &str, raw: String, origin: &String) -> ValueKind {
    match key.split('.').try_fold(shape, |v, segment| v.get(segment)) {
        Some(serde_json::Value::String(_)) => ValueKind::String(raw),
        Some(serde_json::Value::Array(_)) => {
            let items = raw
                .split(ENV_LIST_SEPARATOR)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| Value::new(Some(origin), ValueKind::String(s.to_owned())))
                .collect();
            ValueKind::Array(items)
        }
        _ => {
            if let Ok(b) = raw.to_ascii_lowercase().parse::<bool>() {
                ValueKind::Boolean(b)
            } else if let Ok(i) = raw.parse::<i64>() {
                ValueKind::I64(i)
            } else if let Ok(u) = raw.parse::<u64>() {
                ValueKind::U64(u)
            } else if let Some(f) = raw.parse::<f64>().ok().filter(|f| f.is_finite()) {
                // "nan" and "inf" parse as floats; keep them as text.
                ValueKind::Float(f)
            } else {
                ValueKind::String(raw)
            }
        }
    }
}

/// serde reports an unknown field as "unknown field `prot`, expected ..."
/// with the config crate adding the parent key; join the two into the full
/// path that an operator can search for.
fn describe(
    err: config::ConfigError,
    file: Option<&Path>,
    from_env: &[(String, String)],
) -> ConfigError {
    let (parent, message) = match &err {
        config::ConfigError::At {
            error, key: parent, ..
        } => match error.as_ref() {
            config::ConfigError::Message(m) => (parent.clone(), m.as_str()),
            _ => return ConfigError::Invalid(err),
        },
        config::ConfigError::Message(m) => (None, m.as_str()),
        _ => return ConfigError::Invalid(err),
    };
    let Some(rest) = message.strip_prefix("unknown field `") else {
        return ConfigError::Invalid(err);
    };
    let Some((field, expected)) = rest.split_once('`') else {
        return ConfigError::Invalid(err);
    };
    let key = match parent.as_deref() {
        None | Some("") => field.to_owned(),
        Some(p) if field.starts_with('[') => format!("{p}{field}"),
        Some(p) => format!("{p}.{field}"),
    };
    // The defaults never hold an unknown key: it came from the environment
    // or, failing that, from the file.
    let origin = match from_env.iter().find(|(k, _)| *k == key) {
        Some((_, name)) => format!(" (from environment variable {name})"),
        None => file
            .map(|f| format!(" (from {})", f.display()))
            .unwrap_or_default(),
    };
    ConfigError::UnknownKey {
        key,
        origin,
        expected: expected.trim_start_matches(", ").to_owned(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::io::Write as _;
    use std::time::Duration;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Settings {
        server: Server,
        store: Store,
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Server {
        host: String,
        port: u16,
        reflection: bool,
        #[serde(with = "crate::duration")]
        grace: Duration,
        #[serde(with = "crate::duration::option")]
        idle_timeout: Option<Duration>,
        upstreams: Vec<String>,
        tags: Vec<String>,
    }

    impl Default for Server {
        fn default() -> Self {
            Self {
                host: "127.0.0.1".into(),
                port: 50051,
                reflection: false,
                grace: Duration::from_secs(30),
                idle_timeout: None,
                upstreams: vec!["leads".into()],
                tags: Vec::new(),
            }
        }
    }

    #[derive(Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Store {
        password: String,
        max_connections: Option<u32>,
    }

    fn env(vars: &[(&str, &str)]) -> Vec<(String, String)> {
        vars.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn toml_file(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::Builder::new().suffix(".toml").tempfile().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        file
    }

    #[test]
    fn defaults_alone() {
        let s: Settings = load_from(None, env(&[])).unwrap();
        assert_eq!(s, Settings::default());
    }

    #[test]
    fn file_then_environment_win_over_defaults() {
        let file = toml_file(
            "[server]\nport = 6000\nhost = \"0.0.0.0\"\ngrace = \"5m\"\nidle_timeout = \"90s\"\n",
        );
        let s: Settings = load_from(
            Some(file.path()),
            env(&[
                ("CRM__SERVER__PORT", "7000"),
                ("CRM__SERVER__REFLECTION", "true"),
                ("CRM__STORE__MAX_CONNECTIONS", "8"),
                ("OTHER__SERVER__PORT", "1"),
            ]),
        )
        .unwrap();
        assert_eq!(s.server.port, 7000, "environment beats the file");
        assert_eq!(s.server.host, "0.0.0.0", "file beats the default");
        assert!(s.server.reflection);
        assert_eq!(s.server.grace, Duration::from_secs(300));
        assert_eq!(s.server.idle_timeout, Some(Duration::from_secs(90)));
        assert_eq!(s.store.max_connections, Some(8));
    }

    #[test]
    fn string_settings_keep_their_text_and_lists_split_on_commas() {
        let s: Settings = load_from(
            None,
            env(&[
                ("CRM__STORE__PASSWORD", "0123"),
                ("CRM__SERVER__HOST", "true"),
                ("CRM__SERVER__UPSTREAMS", "leads, tickets"),
                ("CRM__SERVER__TAGS", "a,b"),
            ]),
        )
        .unwrap();
        assert_eq!(s.store.password, "0123");
        assert_eq!(s.server.host, "true");
        assert_eq!(s.server.upstreams, ["leads", "tickets"]);
        assert_eq!(s.server.tags, ["a", "b"], "a list that is empty by default");
    }

    #[test]
    fn variables_without_the_double_underscore_prefix_are_not_configuration() {
        let s: Settings = load_from(
            None,
            env(&[("CRM_TEST_DATABASE_URL", "postgres://x"), ("CRMX__A", "1")]),
        )
        .unwrap();
        assert_eq!(s, Settings::default());
    }

    #[test]
    fn unknown_environment_key_names_the_key_path() {
        let err = load_from::<Settings>(None, env(&[("CRM__SERVER__PROT", "1")])).unwrap_err();
        let message = err.to_string();
        assert!(
            matches!(&err, ConfigError::UnknownKey { key, .. } if key == "server.prot"),
            "{message}"
        );
        assert!(message.contains("`server.prot`"), "{message}");
        assert!(message.contains("CRM__SERVER__PROT"), "{message}");
    }

    #[test]
    fn unknown_file_key_names_the_key_path() {
        let file = toml_file("[store]\npasword = \"x\"\n");
        let err = load_from::<Settings>(Some(file.path()), env(&[])).unwrap_err();
        assert!(
            matches!(&err, ConfigError::UnknownKey { key, .. } if key == "store.pasword"),
            "{err}"
        );
    }

    #[test]
    fn unknown_section_names_the_key() {
        let err = load_from::<Settings>(None, env(&[("CRM__SERVR__PORT", "1")])).unwrap_err();
        assert!(
            matches!(&err, ConfigError::UnknownKey { key, .. } if key == "servr"),
            "{err}"
        );
    }

    #[test]
    fn invalid_environment_value_names_the_key_path() {
        let err = load_from::<Settings>(None, env(&[("CRM__SERVER__PORT", "abc")])).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, ConfigError::Invalid(_)), "{message}");
        assert!(message.contains("server.port"), "{message}");
        assert!(message.contains("CRM__SERVER__PORT"), "{message}");
    }

    #[test]
    fn out_of_range_file_value_names_the_key_path() {
        let file = toml_file("[server]\nport = 70000\n");
        let err = load_from::<Settings>(Some(file.path()), env(&[])).unwrap_err();
        assert!(err.to_string().contains("server.port"), "{err}");
    }

    #[test]
    fn bad_duration_names_the_key_path() {
        let err =
            load_from::<Settings>(None, env(&[("CRM__SERVER__GRACE", "30 parsecs")])).unwrap_err();
        assert!(err.to_string().contains("server.grace"), "{err}");
    }

    /// Issue 15: `sweep_interval = "0s"` crashed a timer while the
    /// service kept running; a duration of zero stops start-up naming the
    /// key, from a file or from the environment, optional ones included.
    #[test]
    fn a_duration_of_zero_stops_start_up_naming_the_key() {
        let file = toml_file("[server]\ngrace = \"0s\"\n");
        let err = load_from::<Settings>(Some(file.path()), env(&[])).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Meaning { key, .. } if key == "server.grace"),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("server.grace: must be greater than 0"),
            "{err}"
        );
        for (var, key) in [
            ("CRM__SERVER__GRACE", "server.grace"),
            ("CRM__SERVER__IDLE_TIMEOUT", "server.idle_timeout"),
        ] {
            let err = load_from::<Settings>(None, env(&[(var, "0ms")])).unwrap_err();
            assert!(err.to_string().contains(key), "{var}: {err}");
        }
        let ok: Settings = load_from(None, env(&[("CRM__SERVER__GRACE", "1ns")])).unwrap();
        assert_eq!(ok.server.grace, Duration::from_nanos(1));
        let text: Settings = load_from(None, env(&[("CRM__STORE__PASSWORD", "0")])).unwrap();
        assert_eq!(
            text.store.password, "0",
            "a number without a unit is no duration"
        );
    }

    #[test]
    fn variable_with_an_empty_segment_is_refused() {
        let err = load_from::<Settings>(None, env(&[("CRM__SERVER____PORT", "1")])).unwrap_err();
        assert!(matches!(err, ConfigError::BadVariable { .. }), "{err}");
    }

    #[test]
    fn missing_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("absent.toml");
        let err = load_from::<Settings>(Some(&path), env(&[])).unwrap_err();
        assert!(matches!(err, ConfigError::File { .. }), "{err}");
        assert!(err.to_string().contains("absent.toml"), "{err}");
    }

    #[test]
    fn malformed_file_is_an_error_naming_it() {
        let file = toml_file("[server\nport = 1\n");
        let err = load_from::<Settings>(Some(file.path()), env(&[])).unwrap_err();
        assert!(matches!(err, ConfigError::File { .. }), "{err}");
    }
}
