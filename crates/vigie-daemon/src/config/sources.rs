//! Where configuration values come from besides the file itself: `VIGIE_…` environment
//! overrides, and the `KEY_file` / `KEY_env` indirections that read one value from a file
//! (a mounted Kubernetes Secret) or from an environment variable.
//!
//! Both work on the TOML table before serde sees it, so they apply to every key at any
//! depth, array elements (`[[alert.sinks]] url_file = …`) and `kafka.properties`
//! (`"sasl.password_file" = …`) included. The values read this way, and every override,
//! are remembered in [`Sensitive`] so that no error message quotes them.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use vigie_domain::REDACTED;

use super::{invalid, ConfigError, ENV_PREFIX};

/// Largest file a `KEY_file` may name: secrets are small, and a wrong path (a log file, a
/// device) must not be read whole into memory.
pub const MAX_VALUE_FILE_BYTES: u64 = 64 * 1024;

/// Suffix of a key whose value is read from the file it names.
const FILE_SUFFIX: &str = "_file";
/// Suffix of a key whose value is read from the environment variable it names.
const ENV_SUFFIX: &str = "_env";

/// Values no error message may quote: secrets (searched for anywhere in the text) and
/// override values (searched for where serde and our checks quote values).
#[derive(Debug, Default)]
pub(super) struct Sensitive {
    secrets: Vec<String>,
    overrides: Vec<String>,
}

impl Sensitive {
    fn secret(&mut self, value: &str) {
        if !value.is_empty() {
            self.secrets.push(value.to_owned());
        }
    }

    /// Returns `text` with every sensitive value replaced by `[redacted]`.
    pub(super) fn redact(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for value in self.overrides.iter().chain(&self.secrets) {
            // The forms in which serde (`string "x"`, ``integer `5` ``) and our own
            // checks (`{value:?}`) quote a value.
            for quoted in [format!("{value:?}"), format!("`{value}`")] {
                out = out.replace(&quoted, REDACTED);
            }
        }
        // Anywhere else only secrets, and only long enough ones, so that ordinary words
        // of the message survive.
        for value in &self.secrets {
            if value.len() >= 4 {
                out = out.replace(value.as_str(), REDACTED);
            }
        }
        out
    }
}

/// Tells whether a config key names a secret by its own name (`password`, `secret`,
/// `token`, `salt`) or is a sink URL (which for Slack and Teams is the credential).
pub(super) fn is_secret_key(path: &str, key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    ["password", "secret", "token", "salt"]
        .iter()
        .any(|word| key.contains(word))
        || (path.starts_with("alert.sinks[") && (key == "url" || key == "urls"))
}

/// Applies `VIGIE_SECTION__KEY=value` overrides from `env`.
///
/// Where the key holds a string (per `schema`, the defaults serialized, or the file's own
/// value), in `kafka.properties`, or for a secret or `_file`/`_env` key, the value is taken
/// verbatim, so `VIGIE_KAFKA__PROPERTIES__SASL.PASSWORD=20240101` stays the string
/// `"20240101"`. Elsewhere it is read as a TOML value when it parses as one (numbers,
/// booleans, arrays) and as a plain string otherwise.
pub(super) fn apply_env_overrides(
    table: &mut toml::Table,
    env: &[(String, String)],
    schema: &toml::Value,
    sensitive: &mut Sensitive,
) -> Result<(), ConfigError> {
    let mut overrides: BTreeMap<String, &str> = BTreeMap::new();
    for (name, value) in env {
        if let Some(rest) = name.strip_prefix(ENV_PREFIX) {
            // Variables the CLI reads itself are not config keys.
            if matches!(rest, "LOG" | "LOG_FORMAT" | "CONFIG") {
                continue;
            }
            overrides.insert(rest.to_ascii_lowercase(), value);
        }
    }
    for (path, value) in overrides {
        let keys: Vec<&str> = path.split("__").collect();
        let dotted = keys.join(".");
        if keys.iter().any(|k| k.is_empty()) {
            return Err(invalid(
                &dotted,
                format!(
                    "malformed environment variable {ENV_PREFIX}{}",
                    path.to_uppercase()
                ),
            ));
        }
        // A variable that merely shares the prefix (a wrapper script's `VIGIE_BIN`, say)
        // would otherwise fail as an unknown key that no file mentions.
        let known_top = |key: &str| {
            table.contains_key(key) || schema.as_table().is_some_and(|t| t.contains_key(key))
        };
        if !known_top(keys[0]) {
            let sections: Vec<&str> = schema
                .as_table()
                .map_or(Vec::new(), |t| t.keys().map(String::as_str).collect());
            return Err(invalid(
                &dotted,
                format!(
                    "environment variable {ENV_PREFIX}{} is not a configuration override: `{}` is no key of the configuration (they are {}); unset or rename the variable",
                    path.to_uppercase(),
                    keys[0],
                    sections.join(", ")
                ),
            ));
        }
        sensitive.overrides.push(value.to_owned());
        let last = keys[keys.len() - 1];
        let property = keys.starts_with(&["kafka", "properties"]);
        let secret = property || is_secret_key(&dotted, last);
        // The defaults know each key's type; keys they do not show (options unset by
        // default) are strings when the file says so or when they name a secret.
        let string_target = property
            || last.ends_with(FILE_SUFFIX)
            || last.ends_with(ENV_SUFFIX)
            || match lookup(schema, &keys) {
                Some(default) => default.is_str(),
                None => secret || lookup_table(table, &keys).is_some_and(toml::Value::is_str),
            };
        if secret {
            sensitive.secret(value);
        }
        let parsed = if string_target {
            toml::Value::String(value.to_owned())
        } else {
            parse_env_value(value)
        };
        let mut node = &mut *table;
        for key in &keys[..keys.len() - 1] {
            let entry = node
                .entry((*key).to_owned())
                .or_insert_with(|| toml::Value::Table(toml::Table::new()));
            node = entry.as_table_mut().ok_or_else(|| {
                invalid(
                    &dotted,
                    format!("`{key}` is not a section, cannot override below it"),
                )
            })?;
        }
        node.insert(last.to_owned(), parsed);
    }
    Ok(())
}

fn lookup<'a>(value: &'a toml::Value, keys: &[&str]) -> Option<&'a toml::Value> {
    keys.iter()
        .try_fold(value, |node, key| node.as_table()?.get(*key))
}

fn lookup_table<'a>(table: &'a toml::Table, keys: &[&str]) -> Option<&'a toml::Value> {
    let (first, rest) = keys.split_first()?;
    lookup(table.get(*first)?, rest)
}

fn parse_env_value(value: &str) -> toml::Value {
    format!("v = {value}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(value.to_owned()))
}

/// Replaces every `KEY_file = "/path"` by `KEY = "<the file's content>"` and every
/// `KEY_env = "NAME"` by `KEY = "<$NAME>"`, at any depth; remembers the values read, and
/// every string held by a secret key, in `sensitive`.
pub(super) fn resolve_indirections(
    table: &mut toml::Table,
    env: &BTreeMap<&str, &str>,
    sensitive: &mut Sensitive,
) -> Result<(), ConfigError> {
    resolve_table(table, "", env, sensitive)
}

fn join(prefix: &str, key: &str) -> String {
    if prefix.is_empty() {
        key.to_owned()
    } else {
        format!("{prefix}.{key}")
    }
}

fn resolve_table(
    table: &mut toml::Table,
    prefix: &str,
    env: &BTreeMap<&str, &str>,
    sensitive: &mut Sensitive,
) -> Result<(), ConfigError> {
    let indirect: Vec<String> = table
        .keys()
        .filter(|key| key.ends_with(FILE_SUFFIX) || key.ends_with(ENV_SUFFIX))
        .cloned()
        .collect();
    for key in indirect {
        let (base, from_file) = match key.strip_suffix(FILE_SUFFIX) {
            Some(base) => (base.to_owned(), true),
            None => (key[..key.len() - ENV_SUFFIX.len()].to_owned(), false),
        };
        let dotted = join(prefix, &key);
        if base.is_empty() {
            return Err(invalid(&dotted, "names no key to set"));
        }
        let base_dotted = join(prefix, &base);
        if table.contains_key(&base) {
            return Err(invalid(
                &base_dotted,
                format!("is set twice: `{base_dotted}` and `{dotted}`; keep one"),
            ));
        }
        let other = format!("{base}{}", if from_file { ENV_SUFFIX } else { FILE_SUFFIX });
        if table.contains_key(&other) {
            return Err(invalid(
                &base_dotted,
                format!(
                    "is set twice: `{}` and `{dotted}`; keep one",
                    join(prefix, &other)
                ),
            ));
        }
        let Some(toml::Value::String(source)) = table.remove(&key) else {
            return Err(invalid(
                &dotted,
                if from_file {
                    "must be a file path (a string)"
                } else {
                    "must be an environment variable name (a string)"
                },
            ));
        };
        let value = if from_file {
            read_value_file(&dotted, Path::new(&source))?
        } else {
            (*env.get(source.as_str()).ok_or_else(|| {
                invalid(&dotted, format!("environment variable {source} is not set"))
            })?)
            .to_owned()
        };
        sensitive.secret(&value);
        table.insert(base, toml::Value::String(value));
    }
    for (key, value) in table.iter_mut() {
        let path = join(prefix, key);
        if is_secret_key(&path, key) {
            remember_strings(value, sensitive);
        }
        // Label maps hold the user's own names, where a `_file` suffix means nothing.
        if key == "labels" || key == "match_labels" {
            continue;
        }
        match value {
            toml::Value::Table(inner) => resolve_table(inner, &path, env, sensitive)?,
            toml::Value::Array(items) => {
                for (index, item) in items.iter_mut().enumerate() {
                    if let toml::Value::Table(inner) = item {
                        resolve_table(inner, &format!("{path}[{index}]"), env, sensitive)?;
                    }
                }
            }
            _ => {}
        }
    }
    // Kafka properties are credentials by name (`sasl.password`), not by our key words.
    if prefix == "kafka" {
        if let Some(toml::Value::Table(properties)) = table.get("properties") {
            for (key, value) in properties {
                if vigie_source_kafka::is_secret_property(key) {
                    remember_strings(value, sensitive);
                }
            }
        }
    }
    Ok(())
}

fn remember_strings(value: &toml::Value, sensitive: &mut Sensitive) {
    match value {
        toml::Value::String(text) => sensitive.secret(text),
        toml::Value::Integer(number) => sensitive.secret(&number.to_string()),
        toml::Value::Array(items) => items.iter().for_each(|v| remember_strings(v, sensitive)),
        _ => {}
    }
}

/// Reads a `KEY_file`: at most [`MAX_VALUE_FILE_BYTES`], UTF-8, trailing line breaks
/// removed (`echo secret > file` adds one). Errors name the key and the path, never the
/// content.
fn read_value_file(key: &str, path: &Path) -> Result<String, ConfigError> {
    let cannot = |reason: String| invalid(key, format!("cannot read {}: {reason}", path.display()));
    let file = std::fs::File::open(path).map_err(|err| cannot(err.to_string()))?;
    let mut bytes = Vec::new();
    file.take(MAX_VALUE_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| cannot(err.to_string()))?;
    if bytes.len() as u64 > MAX_VALUE_FILE_BYTES {
        return Err(cannot(format!("larger than {MAX_VALUE_FILE_BYTES} bytes")));
    }
    let text = String::from_utf8(bytes).map_err(|_| cannot("not UTF-8 text".into()))?;
    Ok(text.trim_end_matches(['\n', '\r']).to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_hides_quoted_overrides_and_secrets_anywhere() {
        let mut sensitive = Sensitive::default();
        sensitive.overrides.push("0".into());
        sensitive.secret("hunter2-long");
        let text =
            sensitive.redact("invalid value: integer `0`, expected 1; got hunter2-long and 10");
        assert_eq!(
            text,
            "invalid value: integer [redacted], expected 1; got [redacted] and 10"
        );
    }

    #[test]
    fn secret_keys_by_name() {
        assert!(is_secret_key("alert.account_salt", "account_salt"));
        assert!(is_secret_key("alert.sinks[0].url", "url"));
        assert!(is_secret_key("http.tokens[0].token", "token"));
        assert!(!is_secret_key("alert.external_url", "external_url"));
        assert!(!is_secret_key("kafka.brokers", "brokers"));
    }
}
