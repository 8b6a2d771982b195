//! Configuration: one TOML file, overridable by `VIGIE_…` environment variables, loaded in
//! two steps — the raw form (what serde reads, every key documented) and the checked form
//! that the rest of the daemon uses.
//!
//! Each component keeps its own config struct next to its code (`KafkaConfig`,
//! `IndexConfig`, `AnalyzerConfig`); this module composes them and checks the rules that
//! span components. Every error names the key it is about, and none quotes a secret or
//! an override's value.
//!
//! Any key `KEY` may instead be given as `KEY_file = "/path"` (the file's content, at most
//! 64 KiB, trailing line break removed) or `KEY_env = "NAME"` (an environment variable),
//! at any depth: see [`sources`]. Every value that reaches a duration or a capacity has
//! an upper bound, so no value can make the daemon panic or allocate without limit.

mod alert;
mod checks;
mod salt;
mod sources;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use vigie_detect::{DetectError, DetectorConfig};
use vigie_domain::DecodeLimits;
use vigie_index::IndexConfig;
use vigie_pipeline::InputLimits;
use vigie_source_kafka::KafkaConfig;
use vigie_tokenize::AnalyzerConfig;

use crate::detection::SnapshotConfig;

pub use alert::AlertSection;
pub use checks::{
    MAX_BATCH, MAX_DURATION_SECS, MAX_INTERVAL_SECS, MAX_MESSAGE_BYTES, MAX_RETENTION_DAYS,
    MAX_WRITER_MEMORY_MB, MAX_WRITER_THREADS,
};
pub use salt::{ensure_account_salt, ACCOUNT_SALT_FILE};
pub use sources::MAX_VALUE_FILE_BYTES;

/// The prefix of environment overrides. `VIGIE_INDEX__COMMIT_EVERY_POSTS=500` sets
/// `[index] commit_every_posts`; sections and keys are separated by a double underscore
/// because keys contain single ones.
pub const ENV_PREFIX: &str = "VIGIE_";

/// The whole configuration file.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Directory holding the index, `rejected.jsonl` and other state.
    pub data_dir: PathBuf,
    /// Where the posts come from.
    pub source: SourceConfig,
    /// Validation limits for incoming posts.
    pub input: InputConfig,
    /// Kafka consumer settings (used when `source.kind = "kafka"`).
    pub kafka: Option<KafkaConfig>,
    /// Language identification and analysis.
    pub analyzer: AnalyzerConfig,
    /// Index commit policy and retention.
    pub index: IndexConfig,
    /// Narrative detection: bursts, narratives, coordination, watchlists, severity.
    pub detect: DetectorConfig,
    /// How often detector state is saved.
    pub snapshot: SnapshotConfig,
    /// Alerts: rules, content, sinks and delivery.
    pub alert: AlertSection,
    /// The HTTP server (health, metrics, search API).
    pub http: HttpConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("vigie-data"),
            source: SourceConfig::default(),
            input: InputConfig::default(),
            kafka: None,
            analyzer: AnalyzerConfig::default(),
            index: IndexConfig::default(),
            detect: DetectorConfig::default(),
            snapshot: SnapshotConfig::default(),
            alert: AlertSection::default(),
            http: HttpConfig::default(),
        }
    }
}

/// Which source feeds the pipeline.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SourceKind {
    /// The sample of real posts built into the binary (no Kafka needed).
    Sample,
    /// JSONL files listed in `source.files`.
    Files,
    /// Kafka topics, see `[kafka]`.
    Kafka,
}

/// `[source]`: where posts come from.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceConfig {
    /// `sample`, `files` or `kafka`.
    pub kind: SourceKind,
    /// Files to replay when `kind = "files"` (JSONL, `.jsonl.gz`, or `-` for stdin).
    pub files: Vec<PathBuf>,
    /// Replay speed for `sample` and `files`: `"max"` or a multiple of event time (`60`
    /// replays an hour of posts per minute).
    pub speed: Speed,
    /// Largest batch handed from the source to the analyzer.
    pub batch_size: usize,
}

impl Default for SourceConfig {
    fn default() -> Self {
        SourceConfig {
            kind: SourceKind::Sample,
            files: Vec::new(),
            speed: Speed::Max,
            batch_size: 1000,
        }
    }
}

/// A replay speed: `max` or a positive multiple of event time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Speed {
    /// As fast as possible.
    Max,
    /// This many event seconds per wall second.
    Times(f64),
}

impl std::str::FromStr for Speed {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("max") {
            return Ok(Speed::Max);
        }
        let factor: f64 = s.trim_end_matches(['x', 'X']).parse().map_err(|_| {
            format!("speed must be \"max\" or a positive number (e.g. 60), not {s:?}")
        })?;
        // Below 0.001× a replay of one post per hour would wait six weeks; it is a typo.
        if factor.is_finite() && factor >= 0.001 {
            Ok(Speed::Times(factor))
        } else {
            Err(format!(
                "speed must be \"max\" or a number from 0.001 up, not {s:?}"
            ))
        }
    }
}

impl Serialize for Speed {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Speed::Max => serializer.serialize_str("max"),
            Speed::Times(f) => serializer.serialize_f64(*f),
        }
    }
}

impl<'de> Deserialize<'de> for Speed {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Number(f64),
            Text(String),
        }
        match Raw::deserialize(deserializer)? {
            Raw::Number(f) => f.to_string().parse(),
            Raw::Text(s) => s.parse(),
        }
        .map_err(serde::de::Error::custom)
    }
}

impl From<Speed> for vigie_pipeline::Pace {
    fn from(speed: Speed) -> Self {
        match speed {
            Speed::Max => vigie_pipeline::Pace::Max,
            Speed::Times(f) => vigie_pipeline::Pace::Speed(f),
        }
    }
}

/// `[input]`: limits applied to every incoming post.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct InputConfig {
    /// Largest accepted post text, in bytes (UTF-8). Longer posts are rejected as `too_large`.
    pub max_text_bytes: usize,
    /// Largest accepted message or line, in bytes, checked before parsing.
    pub max_message_bytes: usize,
    /// How far ahead of the wall clock a post's `created_at` may be, in seconds; later posts
    /// are rejected as `bad_time`, since one post dated years ahead would become the
    /// event-time "now" of retention and detection.
    pub max_future_secs: u64,
}

impl Default for InputConfig {
    fn default() -> Self {
        let limits = DecodeLimits::default();
        InputConfig {
            max_text_bytes: limits.max_text_bytes,
            max_message_bytes: limits.max_message_bytes,
            max_future_secs: 86_400,
        }
    }
}

impl InputConfig {
    /// Returns the limits every source applies.
    pub fn limits(&self) -> InputLimits {
        InputLimits {
            decode: DecodeLimits {
                max_text_bytes: self.max_text_bytes,
                max_message_bytes: self.max_message_bytes,
                not_after: None,
            },
            max_future: Some(std::time::Duration::from_secs(self.max_future_secs)),
        }
    }
}

/// `[http]` lives with the server (`http/config.rs`).
pub use crate::http::config::HttpConfig;

/// A configuration error that names the key and the reason.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML.
    #[error("{path} is not valid TOML: {message}")]
    Syntax {
        /// The file.
        path: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// A key has a bad value, or is unknown.
    #[error("invalid config key `{key}`: {reason}")]
    Invalid {
        /// The dotted key, e.g. `index.commit_every_posts`.
        key: String,
        /// Why it is wrong.
        reason: String,
    },
}

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

/// The checked configuration the daemon runs on.
#[derive(Debug, Clone)]
pub struct CheckedConfig {
    /// The raw form, for printing (secrets print as `[redacted]`).
    pub raw: Config,
    /// Whether the file or the environment said `source.kind` (see
    /// [`CheckedConfig::require_source`]).
    pub source_given: bool,
    /// The HTTP listen address, parsed.
    pub http_listen: SocketAddr,
    /// The checked `[http]` section: tokens, host allowlist, limits.
    pub http: crate::http::HttpSettings,
}

impl Config {
    /// Loads a file (or the defaults when `path` is `None`), applies `VIGIE_…` overrides
    /// from `env`, and checks the result.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<CheckedConfig, ConfigError> {
        let (text, origin) = match path {
            Some(path) => (
                std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })?,
                path.display().to_string(),
            ),
            None => (String::new(), "defaults".to_owned()),
        };
        Config::from_toml(&text, &origin, env)
    }

    /// Parses TOML text, applies overrides and `_file`/`_env` indirections, checks.
    pub fn from_toml(
        text: &str,
        origin: &str,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<CheckedConfig, ConfigError> {
        let env: Vec<(String, String)> = env.into_iter().collect();
        let mut table: toml::Table =
            text.parse()
                .map_err(|err: toml::de::Error| ConfigError::Syntax {
                    path: origin.to_owned(),
                    message: syntax_message(text, &err),
                })?;
        let mut sensitive = sources::Sensitive::default();
        let schema = toml::Value::try_from(Config {
            kafka: Some(KafkaConfig::default()),
            ..Config::default()
        })
        .expect("the defaults serialize");
        sources::apply_env_overrides(&mut table, &env, &schema, &mut sensitive)
            .map_err(|err| redact(err, &sensitive))?;
        let vars: BTreeMap<&str, &str> = env
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
            .collect();
        sources::resolve_indirections(&mut table, &vars, &mut sensitive)
            .map_err(|err| redact(err, &sensitive))?;
        let source_given = table
            .get("source")
            .and_then(toml::Value::as_table)
            .is_some_and(|source| source.contains_key("kind"));
        let config: Config =
            serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|err| {
                let key = err.path().to_string();
                let reason = err.into_inner().message().to_owned();
                redact(
                    ConfigError::Invalid {
                        key: if key == "." {
                            "(top level)".into()
                        } else {
                            key
                        },
                        reason,
                    },
                    &sensitive,
                )
            })?;
        config
            .check(source_given)
            .map_err(|err| redact(err, &sensitive))
    }

    fn check(self, source_given: bool) -> Result<CheckedConfig, ConfigError> {
        if self.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty"));
        }
        let http = self.http.check()?;
        let http_listen = http.listen;
        if self.input.max_text_bytes == 0 {
            return Err(invalid("input.max_text_bytes", "must be at least 1"));
        }
        if self.input.max_message_bytes < self.input.max_text_bytes {
            return Err(invalid(
                "input.max_message_bytes",
                "must be at least input.max_text_bytes",
            ));
        }
        if self.source.batch_size == 0 {
            return Err(invalid("source.batch_size", "must be at least 1"));
        }
        if self.index.commit_every_posts == 0 {
            return Err(invalid("index.commit_every_posts", "must be at least 1"));
        }
        if self.index.commit_interval_secs == 0 {
            return Err(invalid("index.commit_interval_secs", "must be at least 1"));
        }
        if self.index.writer_memory_mb < 15 {
            return Err(invalid(
                "index.writer_memory_mb",
                "must be at least 15 (Tantivy's minimum per thread)",
            ));
        }
        if self.index.retention_days == Some(0) {
            return Err(invalid(
                "index.retention_days",
                "must be at least 1 (omit it to keep posts forever)",
            ));
        }
        self.analyzer.check().map_err(|err| {
            let key = match err {
                vigie_tokenize::ConfigError::ConfidenceOutOfRange { .. } => {
                    "analyzer.min_detect_confidence"
                }
                _ => "analyzer.languages",
            };
            invalid(key, err.to_string())
        })?;
        if let Err(err) = self.detect.check() {
            return Err(match err {
                DetectError::InvalidConfig { field, reason } => {
                    invalid(&format!("detect.{field}"), reason)
                }
                other => invalid("detect.watchlists", other.to_string()),
            });
        }
        if let Err(message) = self.alert.validate() {
            // The alert crates' messages start with the dotted key they are about.
            let (key, reason) = match message.split_once([' ', ':']) {
                Some((key, reason)) if key.starts_with("alert.") => (
                    key.to_owned(),
                    reason.trim_start_matches(':').trim().to_owned(),
                ),
                _ => ("alert".to_owned(), message),
            };
            return Err(invalid(&key, reason));
        }
        if self.snapshot.interval_secs == 0 || self.snapshot.interval_secs > MAX_INTERVAL_SECS {
            return Err(invalid(
                "snapshot.interval_secs",
                format!("must be between 1 and {MAX_INTERVAL_SECS} (one day)"),
            ));
        }
        self.check_bounds()?;
        self.check_source(source_given)?;
        match self.source.kind {
            SourceKind::Files if self.source.files.is_empty() => {
                return Err(invalid(
                    "source.files",
                    "must list at least one file when source.kind = \"files\"",
                ));
            }
            SourceKind::Kafka => {
                let kafka = self.kafka.as_ref().ok_or_else(|| {
                    invalid(
                        "kafka",
                        "a [kafka] section is required when source.kind = \"kafka\"",
                    )
                })?;
                // One set of rules, kept next to the Kafka source; keys prefixed here.
                if let Err(vigie_source_kafka::KafkaSourceError::Config { key, reason }) =
                    kafka.validate()
                {
                    return Err(invalid(&format!("kafka.{key}"), reason));
                }
            }
            _ => {}
        }
        Ok(CheckedConfig {
            raw: self,
            source_given,
            http_listen,
            http,
        })
    }
}

impl SourceKind {
    /// Returns the kind as its configuration word.
    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::Sample => "sample",
            SourceKind::Files => "files",
            SourceKind::Kafka => "kafka",
        }
    }
}

impl CheckedConfig {
    /// Refuses a configuration file that does not say where posts come from (`vigie run`
    /// and `check-config`): only a run with no file at all replays the built-in sample
    /// unasked. `origin` is the file, for the message.
    pub fn require_source(&self, origin: &Path) -> Result<(), ConfigError> {
        if self.source_given {
            return Ok(());
        }
        Err(invalid(
            "source.kind",
            format!(
                "{} does not say where posts come from: add a [source] section with kind = \"kafka\" (and [kafka]), \"files\" (and files = [...]) or \"sample\" (the built-in sample)",
                origin.display()
            ),
        ))
    }
}

/// Describes a TOML syntax error by line and column, without the parser's quote of the
/// offending line (which may hold a secret).
fn syntax_message(text: &str, err: &toml::de::Error) -> String {
    match err.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {}", err.message())
        }
        None => err.message().to_owned(),
    }
}

fn redact(err: ConfigError, sensitive: &sources::Sensitive) -> ConfigError {
    match err {
        ConfigError::Invalid { key, reason } => ConfigError::Invalid {
            key,
            reason: sensitive.redact(&reason),
        },
        ConfigError::Syntax { path, message } => ConfigError::Syntax {
            path,
            message: sensitive.redact(&message),
        },
        other => other,
    }
}

#[cfg(test)]
mod issue_12_tests;

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str, env: &[(&str, &str)]) -> Result<CheckedConfig, ConfigError> {
        Config::from_toml(
            text,
            "test.toml",
            env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
        )
    }

    #[test]
    fn defaults_replay_the_sample_on_loopback() {
        let config = load("", &[]).unwrap();
        assert_eq!(config.raw.source.kind, SourceKind::Sample);
        assert!(config.http_listen.ip().is_loopback());
    }

    #[test]
    fn the_example_config_is_valid_and_documents_every_key() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../deploy/vigie.example.toml"
        );
        let text = std::fs::read_to_string(path).unwrap();
        let config = load(&text, &[]).unwrap();
        assert_eq!(config.raw.source.kind, SourceKind::Kafka);
        // Every key the program knows appears in the example, so the example documents all.
        let defaults = toml::Value::try_from(Config {
            kafka: Some(KafkaConfig::default()),
            ..Config::default()
        })
        .unwrap();
        let example: toml::Value = text.parse::<toml::Table>().unwrap().into();
        let mut missing = Vec::new();
        collect_missing_keys(&defaults, &example, "", &mut missing);
        assert!(
            missing.is_empty(),
            "keys missing from deploy/vigie.example.toml: {missing:?}"
        );
    }

    fn collect_missing_keys(
        defaults: &toml::Value,
        example: &toml::Value,
        prefix: &str,
        missing: &mut Vec<String>,
    ) {
        let (Some(defaults), Some(example)) = (defaults.as_table(), example.as_table()) else {
            return;
        };
        for (key, value) in defaults {
            let path = format!("{prefix}{key}");
            match example.get(key) {
                None => missing.push(path),
                Some(sub) => collect_missing_keys(value, sub, &format!("{path}."), missing),
            }
        }
    }

    #[test]
    fn errors_name_the_key() {
        let err = load("[index]\ncommit_every_posts = \"lots\"\n", &[]).unwrap_err();
        assert!(
            err.to_string().contains("`index.commit_every_posts`"),
            "{err}"
        );
        let err = load("[index]\ncommit_evry_posts = 5\n", &[]).unwrap_err();
        assert!(err.to_string().contains("commit_evry_posts"), "{err}");
        let err = load("[http]\nlisten = \"nowhere\"\n", &[]).unwrap_err();
        assert!(err.to_string().contains("`http.listen`"), "{err}");
        let err = load("[source]\nkind = \"kafka\"\n", &[]).unwrap_err();
        assert!(err.to_string().contains("`kafka`"), "{err}");
        let err = load("[source]\nspeed = -3\n", &[]).unwrap_err();
        assert!(err.to_string().contains("`source.speed`"), "{err}");
        let err = load("[analyzer]\nlanguages = [\"xx\"]\n", &[]).unwrap_err();
        assert!(err.to_string().contains("`analyzer.languages`"), "{err}");
        let err = load("[index\n", &[]).unwrap_err();
        assert!(matches!(err, ConfigError::Syntax { .. }), "{err}");
    }

    #[test]
    fn environment_overrides_file_values() {
        let config = load(
            "[index]\ncommit_every_posts = 10\n[source]\nkind = \"kafka\"\n[kafka]\nbrokers = \"a:1\"\n",
            &[
                ("VIGIE_INDEX__COMMIT_EVERY_POSTS", "500"),
                ("VIGIE_KAFKA__BROKERS", "kafka-1:9092,kafka-2:9092"),
                ("VIGIE_KAFKA__TOPICS", "[\"a\", \"b\"]"),
                ("VIGIE_KAFKA__PROPERTIES__SECURITY.PROTOCOL", "SASL_SSL"),
                ("VIGIE_SOURCE__SPEED", "60"),
                ("VIGIE_LOG_FORMAT", "json"),
                ("HOME", "/root"),
            ],
        )
        .unwrap();
        assert_eq!(config.raw.index.commit_every_posts, 500);
        let kafka = config.raw.kafka.unwrap();
        assert_eq!(kafka.brokers, "kafka-1:9092,kafka-2:9092");
        assert_eq!(kafka.topics, ["a", "b"]);
        assert_eq!(kafka.properties.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(config.raw.source.speed, Speed::Times(60.0));
        let err = load("", &[("VIGIE_INDEX__COMMIT_EVERY_POSTS", "0")]).unwrap_err();
        assert!(
            err.to_string().contains("index.commit_every_posts"),
            "{err}"
        );
    }

    #[test]
    fn a_variable_that_only_shares_the_prefix_is_named_in_the_error() {
        let err = load("", &[("VIGIE_BIN", "/usr/local/bin/vigie")]).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("environment variable VIGIE_BIN is not a configuration override")
                && message.contains("data_dir")
                && !message.contains("/usr/local/bin"),
            "{message}"
        );
        // Sections the defaults leave unset are still overridable.
        let config = load(
            "[source]\nkind = \"kafka\"\n",
            &[("VIGIE_KAFKA__BROKERS", "k:9092")],
        )
        .unwrap();
        assert_eq!(config.raw.kafka.unwrap().brokers, "k:9092");
    }
}
