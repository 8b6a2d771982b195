//! `[http]`: where the server listens, who may use it, and what one request may cost.
//!
//! The raw form ([`HttpConfig`]) is what the file says; [`HttpConfig::check`] turns it into
//! [`HttpSettings`], refusing what would be unsafe: a listen address beyond loopback with no
//! token (anyone who reaches the port could read every post and silence every alert), weak
//! or duplicate tokens, limits out of their bounds.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use vigie_domain::Secret;
use vigie_index::SearchLimits;

use crate::config::ConfigError;

/// Shortest accepted API token: 16 bytes, e.g. `openssl rand -hex 16` gives 32.
pub const MIN_TOKEN_BYTES: usize = 16;

/// Largest accepted `http.tokens_file`.
const MAX_TOKENS_FILE_BYTES: u64 = 64 * 1024;

/// What a token may do. `write` implies `read`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Search, narratives, alerts, silences and watchlists (listing), `/metrics`, the page.
    Read,
    /// Also add and remove watchlists and silences, and acknowledge alerts.
    Write,
}

impl Role {
    /// Returns the role's name as written in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Write => "write",
        }
    }
}

/// `[[http.tokens]]`: one API token.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenConfig {
    /// Who holds it (`grafana`, `analysts`), shown in logs; not a secret.
    pub name: String,
    /// `read` or `write` (write implies read).
    pub role: Role,
    /// The token, sent as `Authorization: Bearer TOKEN`; at least 16 bytes. Prefer
    /// `token_file = "/run/secrets/…"` or `token_env = "NAME"` to writing it here.
    pub token: Secret,
    /// Lets this token see raw author ids; everyone else sees pseudonyms.
    #[serde(default)]
    pub raw_authors: bool,
}

/// `[http]`: the HTTP server.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Address to listen on. Loopback by default; any other address (`0.0.0.0`, `::`, a
    /// LAN address) needs at least one token.
    pub listen: String,
    /// API tokens. With none, the API is open to whoever reaches the listen address, which
    /// must then be loopback (and the Host and Origin checks below apply).
    pub tokens: Vec<TokenConfig>,
    /// A file of more tokens, one `ROLE NAME TOKEN` per line (`#` starts a comment), e.g.
    /// a Kubernetes Secret mounted as a file; at most 64 KiB.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens_path: Option<PathBuf>,
    /// Host names (or `host:port`) the server answers to besides `localhost`, `127.0.0.1`,
    /// `[::1]` and the listen address; other `Host:` headers get 421 (DNS rebinding).
    /// Checked when no token is set or the listen address is loopback; with tokens on
    /// another address, only when this list is not empty.
    pub allowed_hosts: Vec<String>,
    /// Serves `/metrics` without a token even when tokens are set (for a Prometheus that
    /// cannot send one); the metrics hold counts, never posts or account ids.
    pub metrics_public: bool,
    /// Seconds a request may take before it is answered 408 (1 to 600).
    pub request_timeout_secs: u64,
    /// Largest accepted request body, in bytes (1 KiB to 16 MiB); larger get 413.
    pub max_body_bytes: usize,
    /// Requests served at once; more wait (1 to 10,000).
    pub max_concurrent_requests: usize,
    /// Searches run at once; more are answered 503 with `Retry-After` (1 to 256).
    pub max_concurrent_searches: usize,
    /// Most hits one search returns (1 to 1000).
    pub search_max_hits: usize,
    /// Longest accepted search query, in bytes (16 to 16384).
    pub search_max_query_bytes: usize,
    /// Snippet length of each hit, in bytes (16 to 4096).
    pub search_snippet_max_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        let search = SearchLimits::default();
        HttpConfig {
            listen: "127.0.0.1:9464".into(),
            tokens: Vec::new(),
            tokens_path: None,
            allowed_hosts: Vec::new(),
            metrics_public: false,
            request_timeout_secs: 30,
            max_body_bytes: 1024 * 1024,
            max_concurrent_requests: 256,
            max_concurrent_searches: 4,
            search_max_hits: search.max_hits,
            search_max_query_bytes: search.max_query_bytes,
            search_snippet_max_bytes: search.snippet_max_bytes,
        }
    }
}

/// One checked token.
#[derive(Debug, Clone)]
pub struct ApiToken {
    /// Who holds it.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// The value.
    pub token: Secret,
    /// Whether it sees raw author ids.
    pub raw_authors: bool,
}

/// The checked `[http]` settings the server runs on.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    /// The listen address.
    pub listen: SocketAddr,
    /// Tokens from `tokens` and `tokens_path`; empty means no authentication.
    pub tokens: Vec<ApiToken>,
    /// Lowercased `Host:` values accepted, when the Host check is on.
    pub allowed_hosts: Option<Vec<String>>,
    /// `/metrics` needs no token.
    pub metrics_public: bool,
    /// Per-request timeout.
    pub request_timeout: Duration,
    /// Largest body.
    pub max_body_bytes: usize,
    /// Requests at once.
    pub max_concurrent_requests: usize,
    /// Searches at once.
    pub max_concurrent_searches: usize,
    /// What one search may cost.
    pub search: SearchLimits,
}

fn invalid(key: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        reason: reason.into(),
    }
}

fn bounded<T: PartialOrd + std::fmt::Display + Copy>(
    key: &str,
    value: T,
    low: T,
    high: T,
) -> Result<T, ConfigError> {
    if value < low || value > high {
        return Err(invalid(
            key,
            format!("{value} is out of range: must be from {low} to {high}"),
        ));
    }
    Ok(value)
}

impl HttpConfig {
    /// Checks the section; every error names its key.
    pub fn check(&self) -> Result<HttpSettings, ConfigError> {
        let listen: SocketAddr = self.listen.trim().parse().map_err(|err| {
            invalid(
                "http.listen",
                format!(
                    "{:?} is not an address like 127.0.0.1:9464 ({err})",
                    self.listen
                ),
            )
        })?;
        let mut tokens = Vec::new();
        for (i, token) in self.tokens.iter().enumerate() {
            tokens.push(check_token(
                &format!("http.tokens[{i}]"),
                &token.name,
                token.role,
                token.token.clone(),
                token.raw_authors,
            )?);
        }
        if let Some(path) = &self.tokens_path {
            tokens.extend(read_tokens_file(path)?);
        }
        for (i, token) in tokens.iter().enumerate() {
            if tokens[..i].iter().any(|t| t.name == token.name) {
                return Err(invalid(
                    "http.tokens",
                    format!("two tokens are named {:?}", token.name),
                ));
            }
            if tokens[..i]
                .iter()
                .any(|t| t.token.ct_eq(token.token.expose().as_bytes()))
            {
                return Err(invalid(
                    "http.tokens",
                    format!("tokens {:?} and another have the same value", token.name),
                ));
            }
        }
        if tokens.is_empty() && !listen.ip().is_loopback() {
            return Err(invalid(
                "http.tokens",
                format!(
                    "http.listen = {listen} is reachable beyond this machine and no token is \
                     set: add [[http.tokens]] (or http.tokens_path), or listen on 127.0.0.1"
                ),
            ));
        }
        let mut hosts = Vec::new();
        for (i, host) in self.allowed_hosts.iter().enumerate() {
            let host = host.trim().to_ascii_lowercase();
            if host.is_empty() || host.contains(['/', ' ', '@']) {
                return Err(invalid(
                    &format!("http.allowed_hosts[{i}]"),
                    "must be a host name or host:port, like vigie.example.org",
                ));
            }
            hosts.push(host);
        }
        let check_host =
            tokens.is_empty() || listen.ip().is_loopback() || !self.allowed_hosts.is_empty();
        let allowed_hosts = check_host.then(|| {
            let mut all = vec![
                "localhost".to_owned(),
                "127.0.0.1".to_owned(),
                "[::1]".to_owned(),
            ];
            if !listen.ip().is_unspecified() {
                all.push(match listen {
                    SocketAddr::V4(v4) => v4.ip().to_string(),
                    SocketAddr::V6(v6) => format!("[{}]", v6.ip()),
                });
            }
            all.extend(hosts);
            all
        });
        let search = SearchLimits {
            max_hits: bounded("http.search_max_hits", self.search_max_hits, 1, 1000)?,
            max_query_bytes: bounded(
                "http.search_max_query_bytes",
                self.search_max_query_bytes,
                16,
                vigie_index::MAX_QUERY_BYTES_CEILING,
            )?,
            snippet_max_bytes: bounded(
                "http.search_snippet_max_bytes",
                self.search_snippet_max_bytes,
                16,
                vigie_index::SNIPPET_MAX_BYTES_CEILING,
            )?,
            ..SearchLimits::default()
        };
        Ok(HttpSettings {
            listen,
            tokens,
            allowed_hosts,
            metrics_public: self.metrics_public,
            request_timeout: Duration::from_secs(bounded(
                "http.request_timeout_secs",
                self.request_timeout_secs,
                1,
                600,
            )?),
            max_body_bytes: bounded(
                "http.max_body_bytes",
                self.max_body_bytes,
                1024,
                16 * 1024 * 1024,
            )?,
            max_concurrent_requests: bounded(
                "http.max_concurrent_requests",
                self.max_concurrent_requests,
                1,
                10_000,
            )?,
            max_concurrent_searches: bounded(
                "http.max_concurrent_searches",
                self.max_concurrent_searches,
                1,
                256,
            )?,
            search,
        })
    }
}

fn check_token(
    key: &str,
    name: &str,
    role: Role,
    token: Secret,
    raw_authors: bool,
) -> Result<ApiToken, ConfigError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 64 || name.contains(char::is_whitespace) {
        return Err(invalid(
            &format!("{key}.name"),
            "must be 1 to 64 characters without spaces",
        ));
    }
    let value = token.expose();
    if value.len() < MIN_TOKEN_BYTES {
        return Err(invalid(
            &format!("{key}.token"),
            format!(
                "token {name:?} is {} bytes; at least {MIN_TOKEN_BYTES} are needed \
                 (e.g. `openssl rand -hex 32`)",
                value.len()
            ),
        ));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(invalid(
            &format!("{key}.token"),
            format!("token {name:?} contains spaces or control characters"),
        ));
    }
    Ok(ApiToken {
        name: name.to_owned(),
        role,
        token,
        raw_authors,
    })
}

/// Reads `ROLE NAME TOKEN` lines; `ROLE` may be `read`, `write`, `read+raw_authors` or
/// `write+raw_authors`. Errors never quote a token.
fn read_tokens_file(path: &std::path::Path) -> Result<Vec<ApiToken>, ConfigError> {
    let key = "http.tokens_path";
    let cannot =
        |err: std::io::Error| invalid(key, format!("cannot read {}: {err}", path.display()));
    let size = std::fs::metadata(path).map_err(cannot)?.len();
    if size > MAX_TOKENS_FILE_BYTES {
        return Err(invalid(
            key,
            format!("{} is {size} bytes; at most 64 KiB", path.display()),
        ));
    }
    let text = std::fs::read_to_string(path).map_err(cannot)?;
    let mut tokens = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let at = format!("{key} ({}:{})", path.display(), number + 1);
        let fields: Vec<&str> = line.split_whitespace().collect();
        let &[role, name, token] = fields.as_slice() else {
            return Err(invalid(
                &at,
                "each line must be `ROLE NAME TOKEN` (role read or write)",
            ));
        };
        let (role, raw_authors) = match role {
            "read" => (Role::Read, false),
            "write" => (Role::Write, false),
            "read+raw_authors" => (Role::Read, true),
            "write+raw_authors" => (Role::Write, true),
            other => {
                return Err(invalid(
                    &at,
                    format!(
                    "unknown role {other:?}: read, write, read+raw_authors or write+raw_authors"
                ),
                ))
            }
        };
        tokens.push(check_token(
            &at,
            name,
            role,
            Secret::new(token),
            raw_authors,
        )?);
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Result<HttpSettings, ConfigError> {
        let config: HttpConfig =
            toml::from_str(text).map_err(|err| invalid("toml", err.to_string()))?;
        config.check()
    }

    const TOKEN: &str = "0123456789abcdef0123";

    /// Issue 12, row 3: Docker and Kubernetes bound 0.0.0.0 with no authentication.
    #[test]
    fn issue_12_listening_beyond_loopback_needs_a_token() {
        for listen in ["0.0.0.0:9464", "[::]:9464", "192.168.1.10:9464"] {
            let err = config(&format!("listen = \"{listen}\""))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("http.tokens") && err.contains("http.listen"),
                "{err}"
            );
        }
        let open = config("").unwrap();
        assert!(open.tokens.is_empty());
        assert!(open
            .allowed_hosts
            .as_ref()
            .unwrap()
            .contains(&"localhost".to_owned()));
        let tokened = config(&format!(
            "listen = \"0.0.0.0:9464\"\n[[tokens]]\nname = \"a\"\nrole = \"read\"\ntoken = \"{TOKEN}\"\n"
        ))
        .unwrap();
        assert_eq!(tokened.tokens[0].role, Role::Read);
        assert!(
            tokened.allowed_hosts.is_none(),
            "no Host check without a list"
        );
    }

    #[test]
    fn weak_duplicate_and_malformed_tokens_are_refused() {
        let token = |name: &str, value: &str| {
            format!("[[tokens]]\nname = \"{name}\"\nrole = \"write\"\ntoken = \"{value}\"\n")
        };
        let err = config(&token("a", "short")).unwrap_err().to_string();
        assert!(
            err.contains("http.tokens[0].token") && !err.contains("short"),
            "{err}"
        );
        let err = config(&format!(
            "{}{}",
            token("a", TOKEN),
            token("a", &TOKEN.repeat(2))
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("two tokens are named"), "{err}");
        let err = config(&format!("{}{}", token("a", TOKEN), token("b", TOKEN)))
            .unwrap_err()
            .to_string();
        assert!(err.contains("same value") && !err.contains(TOKEN), "{err}");
    }

    #[test]
    fn tokens_path_reads_roles_names_and_tokens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens");
        std::fs::write(
            &path,
            format!(
                "# role name token\nread grafana {TOKEN}\n\nwrite+raw_authors ops {TOKEN}xyz\n"
            ),
        )
        .unwrap();
        let settings = config(&format!("tokens_path = \"{}\"", path.display())).unwrap();
        assert_eq!(settings.tokens.len(), 2);
        assert_eq!(settings.tokens[1].role, Role::Write);
        assert!(settings.tokens[1].raw_authors);
        std::fs::write(&path, format!("admin root {TOKEN}\n")).unwrap();
        let err = config(&format!("tokens_path = \"{}\"", path.display()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(":1") && err.contains("unknown role") && !err.contains(TOKEN),
            "{err}"
        );
        std::fs::write(&path, "x".repeat(70_000)).unwrap();
        let err = config(&format!("tokens_path = \"{}\"", path.display()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("64 KiB"), "{err}");
    }

    #[test]
    fn limits_are_bounded() {
        for (key, value) in [
            ("request_timeout_secs", "0"),
            ("max_body_bytes", "1"),
            ("max_concurrent_requests", "0"),
            ("max_concurrent_searches", "100000"),
            ("search_max_hits", "1000000"),
            ("search_max_query_bytes", "1"),
            ("search_snippet_max_bytes", "99999999"),
        ] {
            let err = config(&format!("{key} = {value}")).unwrap_err().to_string();
            assert!(err.contains(&format!("http.{key}")), "{err}");
        }
        let hosts = config("allowed_hosts = [\"Vigie.Example.org\"]").unwrap();
        assert!(hosts
            .allowed_hosts
            .unwrap()
            .contains(&"vigie.example.org".to_owned()));
        assert!(config("allowed_hosts = [\"http://x/\"]").is_err());
    }
}
