//! Silences: label matchers with a validity in wall-clock time that mute notifications of
//! matching alerts, the way Alertmanager's do. The policy keeps tracking a silenced alert;
//! it only holds back its notifications (see [`crate::AlertPolicy`]). The daemon persists
//! the store (it is serde) and exposes it over HTTP.
//!
//! A silence is about the people on call, so it is judged by the wall clock, never by
//! event time: one set "for the next hour" mutes the next hour of real time, however old
//! the posts replayed or lagging in Kafka during it. This module reads no clock: `now` is
//! passed in by the daemon. An ended silence stops applying at once, stays listed as
//! `expired` for `expired_retention_secs`, then is forgotten. The store is bounded:
//! `max_count` silences, `max_matchers` matchers each, and bounded matcher sizes and
//! compiled regex sizes, so no request can grow memory or CPU without limit.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Duration, Utc};
use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

use crate::error::AlertError;
use crate::fingerprint::sha256_hex;

/// Longest `created_by`, in bytes.
const MAX_CREATED_BY_BYTES: usize = 256;
/// Longest `comment`, in bytes.
const MAX_COMMENT_BYTES: usize = 4096;
/// Longest caller-chosen silence id, in bytes.
const MAX_ID_BYTES: usize = 64;

/// `[alert.silences]`: how long silences may last and how many the daemon keeps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SilenceConfig {
    /// Most silences kept, expired ones still listed included (Alertmanager's
    /// `--silences.max-silences`). When full, the oldest expired silence makes room;
    /// with none expired, a new silence is refused.
    pub max_count: usize,
    /// Longest a silence may last, in seconds (90 days by default); also how far ahead a
    /// silence may start.
    pub max_duration_secs: u64,
    /// Length of a silence that gives neither `ends_at` nor `duration_secs`; 0 (the
    /// default) requires one of them.
    pub default_duration_secs: u64,
    /// Seconds an ended silence stays listed as `expired` before it is forgotten
    /// (5 days, as Alertmanager's `--data.retention`).
    pub expired_retention_secs: u64,
    /// Most matchers in one silence.
    pub max_matchers: usize,
    /// Longest matcher name or value, in bytes.
    pub max_matcher_bytes: usize,
    /// Largest compiled regex matcher, in bytes (`regex::RegexBuilder::size_limit`).
    pub max_regex_bytes: usize,
}

impl Default for SilenceConfig {
    fn default() -> Self {
        SilenceConfig {
            max_count: 1000,
            max_duration_secs: 90 * 86_400,
            default_duration_secs: 0,
            expired_retention_secs: 5 * 86_400,
            max_matchers: 32,
            max_matcher_bytes: 1024,
            max_regex_bytes: 256 * 1024,
        }
    }
}

impl SilenceConfig {
    /// Checks the bounds; the error names the key.
    pub fn validate(&self) -> Result<(), AlertError> {
        // Ten years: far beyond any use, small enough for chrono arithmetic.
        const MAX_SECS: u64 = 10 * 365 * 86_400;
        let invalid = |message: String| Err(AlertError::InvalidConfig(message));
        for (key, value) in [
            ("max_duration_secs", self.max_duration_secs),
            ("default_duration_secs", self.default_duration_secs),
            ("expired_retention_secs", self.expired_retention_secs),
        ] {
            if value > MAX_SECS {
                return invalid(format!(
                    "alert.silences.{key} must be at most {MAX_SECS} (10 years), got {value}"
                ));
            }
        }
        if self.max_duration_secs == 0 {
            return invalid("alert.silences.max_duration_secs must be at least 1".into());
        }
        if self.default_duration_secs > self.max_duration_secs {
            return invalid(format!(
                "alert.silences.default_duration_secs ({}) must not exceed max_duration_secs ({})",
                self.default_duration_secs, self.max_duration_secs
            ));
        }
        for (key, value, max) in [
            ("max_count", self.max_count, 1_000_000),
            ("max_matchers", self.max_matchers, 1000),
            ("max_matcher_bytes", self.max_matcher_bytes, 1 << 20),
            ("max_regex_bytes", self.max_regex_bytes, 64 << 20),
        ] {
            if value == 0 || value > max {
                return invalid(format!(
                    "alert.silences.{key} must be between 1 and {max}, got {value}"
                ));
            }
        }
        Ok(())
    }
}

/// One label condition of a silence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matcher {
    /// Label name (`severity`, `narrative_id`, `rule`, …).
    pub name: String,
    /// Exact value, or a regular expression anchored at both ends when `is_regex`.
    pub value: String,
    /// Treats `value` as a regular expression.
    #[serde(default)]
    pub is_regex: bool,
}

/// A silence: while in force (wall clock), alerts whose labels match every matcher send
/// nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Silence {
    /// Identifier, assigned by [`Silences::add`] unless the request names one to replace.
    pub id: String,
    /// All must match.
    pub matchers: Vec<Matcher>,
    /// From when it applies (wall clock).
    pub starts_at: DateTime<Utc>,
    /// Until when it applies (wall clock, exclusive).
    pub ends_at: DateTime<Utc>,
    /// Who created it.
    #[serde(default)]
    pub created_by: String,
    /// Why.
    #[serde(default)]
    pub comment: String,
}

/// A silence as a client creates it: when it ends is given as `ends_at` or as
/// `duration_secs` from its start.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SilenceRequest {
    /// The silence to replace; empty (the default) creates a new one.
    #[serde(default)]
    pub id: String,
    /// All must match.
    pub matchers: Vec<Matcher>,
    /// From when it applies (RFC 3339, wall clock); now when absent or in the past.
    #[serde(default)]
    pub starts_at: Option<DateTime<Utc>>,
    /// Until when it applies (RFC 3339, wall clock, exclusive).
    #[serde(default)]
    pub ends_at: Option<DateTime<Utc>>,
    /// How long it applies from its start, in seconds (instead of `ends_at`).
    #[serde(default)]
    pub duration_secs: Option<u64>,
    /// Who created it.
    #[serde(default)]
    pub created_by: String,
    /// Why.
    #[serde(default)]
    pub comment: String,
}

/// Where a silence is in its life, at some wall-clock time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SilenceState {
    /// Not started yet.
    Pending,
    /// In force.
    Active,
    /// Ended; listed until `expired_retention_secs` after its end.
    Expired,
}

/// A silence with its state, as the HTTP API lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SilenceView {
    /// The silence.
    #[serde(flatten)]
    pub silence: Silence,
    /// Its state when listed.
    pub state: SilenceState,
}

impl Silence {
    /// Returns the silence's state at `now` (wall clock).
    pub fn state(&self, now: DateTime<Utc>) -> SilenceState {
        if now < self.starts_at {
            SilenceState::Pending
        } else if now < self.ends_at {
            SilenceState::Active
        } else {
            SilenceState::Expired
        }
    }
}

/// The silences in force, scheduled or recently expired.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Silences {
    silences: BTreeMap<String, Silence>,
    /// Compiled regexes by pattern, rebuilt after deserialization and pruned with the
    /// silences that use them.
    #[serde(skip)]
    compiled: BTreeMap<String, Regex>,
}

fn invalid(message: impl Into<String>) -> AlertError {
    AlertError::InvalidSilence(message.into())
}

fn secs(value: u64) -> Duration {
    Duration::seconds(i64::try_from(value).unwrap_or(i64::MAX / 1000))
}

impl Silences {
    /// Checks a request and adds its silence at wall-clock time `now`; returns its id.
    /// A request naming an existing id replaces that silence. Refuses (with a message
    /// saying why) bad matchers, bad times, and a new silence beyond `max_count`
    /// ([`AlertError::TooManySilences`]) once no expired silence is left to make room.
    pub fn add(
        &mut self,
        request: SilenceRequest,
        now: DateTime<Utc>,
        config: &SilenceConfig,
    ) -> Result<String, AlertError> {
        let SilenceRequest {
            id,
            matchers,
            starts_at,
            ends_at,
            duration_secs,
            created_by,
            comment,
        } = request;
        if matchers.is_empty() {
            return Err(invalid("needs at least one matcher"));
        }
        if matchers.len() > config.max_matchers {
            return Err(invalid(format!(
                "has {} matchers, at most {} are allowed",
                matchers.len(),
                config.max_matchers
            )));
        }
        for matcher in &matchers {
            if matcher.name.is_empty() {
                return Err(invalid("a matcher needs a name"));
            }
            if matcher.name.len() > config.max_matcher_bytes
                || matcher.value.len() > config.max_matcher_bytes
            {
                return Err(invalid(format!(
                    "a matcher name or value is longer than {} bytes",
                    config.max_matcher_bytes
                )));
            }
        }
        if created_by.len() > MAX_CREATED_BY_BYTES {
            return Err(invalid(format!(
                "created_by is longer than {MAX_CREATED_BY_BYTES} bytes"
            )));
        }
        if comment.len() > MAX_COMMENT_BYTES {
            return Err(invalid(format!(
                "comment is longer than {MAX_COMMENT_BYTES} bytes"
            )));
        }
        if id.len() > MAX_ID_BYTES
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(invalid(format!(
                "id must be at most {MAX_ID_BYTES} letters, digits, '-' or '_'"
            )));
        }

        let max_duration = secs(config.max_duration_secs);
        // A start in the past means "from now", as in Alertmanager.
        let starts_at = starts_at.map_or(now, |at| at.max(now));
        if starts_at - now > max_duration {
            return Err(invalid(format!(
                "starts_at is more than max_duration_secs ({}) ahead",
                config.max_duration_secs
            )));
        }
        let ends_at = match (ends_at, duration_secs) {
            (Some(_), Some(_)) => return Err(invalid("give ends_at or duration_secs, not both")),
            (Some(ends_at), None) => ends_at,
            (None, Some(duration)) => {
                if duration == 0 || duration > config.max_duration_secs {
                    return Err(invalid(format!(
                        "duration_secs must be between 1 and {}, got {duration}",
                        config.max_duration_secs
                    )));
                }
                starts_at + secs(duration)
            }
            (None, None) if config.default_duration_secs > 0 => {
                starts_at + secs(config.default_duration_secs)
            }
            (None, None) => return Err(invalid("needs ends_at or duration_secs")),
        };
        if ends_at <= starts_at {
            return Err(invalid("ends_at must be after starts_at (and after now)"));
        }
        if ends_at - starts_at > max_duration {
            return Err(invalid(format!(
                "lasts longer than max_duration_secs ({})",
                config.max_duration_secs
            )));
        }
        let mut compiled = Vec::new();
        for matcher in matchers.iter().filter(|m| m.is_regex) {
            if !self.compiled.contains_key(&matcher.value) {
                let regex = anchored(&matcher.value, config.max_regex_bytes).map_err(|source| {
                    AlertError::SilenceRegex {
                        pattern: vigie_domain::alert::truncate_chars(&matcher.value, 100),
                        source,
                    }
                })?;
                compiled.push((matcher.value.clone(), regex));
            }
        }

        let replaces = !id.is_empty() && self.silences.contains_key(&id);
        if !replaces && self.silences.len() >= config.max_count {
            self.evict_oldest_expired(now);
            if self.silences.len() >= config.max_count {
                return Err(AlertError::TooManySilences {
                    max: config.max_count,
                });
            }
        }
        let mut silence = Silence {
            id,
            matchers,
            starts_at,
            ends_at,
            created_by,
            comment,
        };
        if silence.id.is_empty() {
            // Derived from content and a counter, so no random source is needed and ids
            // never collide within a store.
            let serial = (self.silences.len() as u64).to_string();
            let content = serde_json::to_string(&silence).map_err(AlertError::Encode)?;
            let mut id = format!("s{}", sha256_hex(&[&content, &serial], 12));
            while self.silences.contains_key(&id) {
                id.push('0');
            }
            silence.id = id;
        }
        self.compiled.extend(compiled);
        let id = silence.id.clone();
        self.silences.insert(id.clone(), silence);
        self.prune_compiled();
        Ok(id)
    }

    /// Returns every silence kept (expired ones still listed included) with its state at
    /// `now`, ordered by id.
    pub fn list(&self, now: DateTime<Utc>) -> Vec<SilenceView> {
        self.silences
            .values()
            .map(|silence| SilenceView {
                state: silence.state(now),
                silence: silence.clone(),
            })
            .collect()
    }

    /// Returns the number of silences kept.
    pub fn len(&self) -> usize {
        self.silences.len()
    }

    /// Returns true when no silence is kept.
    pub fn is_empty(&self) -> bool {
        self.silences.is_empty()
    }

    /// Removes a silence; returns whether it existed.
    pub fn remove(&mut self, id: &str) -> bool {
        let removed = self.silences.remove(id).is_some();
        self.prune_compiled();
        removed
    }

    /// Forgets silences that ended at least `retention` before `now` (wall clock);
    /// returns how many.
    pub fn forget_expired(&mut self, now: DateTime<Utc>, retention: std::time::Duration) -> usize {
        let retention = Duration::from_std(retention).unwrap_or(Duration::MAX);
        let before = self.silences.len();
        self.silences.retain(|_, s| {
            s.ends_at
                .checked_add_signed(retention)
                .is_none_or(|end| end > now)
        });
        let forgotten = before - self.silences.len();
        if forgotten > 0 {
            self.prune_compiled();
        }
        forgotten
    }

    /// Returns whether a silence in force at `now` (wall clock) matches these labels.
    pub fn is_silenced(&self, labels: &BTreeMap<String, String>, now: DateTime<Utc>) -> bool {
        self.matching(labels, now).is_some()
    }

    /// Returns the id of a silence in force at `now` (wall clock) that matches these
    /// labels.
    pub fn matching(&self, labels: &BTreeMap<String, String>, now: DateTime<Utc>) -> Option<&str> {
        self.silences
            .values()
            .filter(|s| s.starts_at <= now && now < s.ends_at)
            .find(|silence| {
                silence.matchers.iter().all(|matcher| {
                    let value = labels.get(&matcher.name).map(String::as_str).unwrap_or("");
                    if !matcher.is_regex {
                        return value == matcher.value;
                    }
                    // Every kept pattern compiled when added (or in `prepare`); one that
                    // no longer compiles matches nothing.
                    self.compiled
                        .get(&matcher.value)
                        .is_some_and(|regex| regex.is_match(value))
                })
            })
            .map(|silence| silence.id.as_str())
    }

    /// Compiles every regex matcher once, after deserialization, within `max_regex_bytes`.
    pub fn prepare(&mut self, config: &SilenceConfig) {
        let patterns: BTreeSet<String> = self
            .silences
            .values()
            .flat_map(|s| s.matchers.iter())
            .filter(|m| m.is_regex)
            .map(|m| m.value.clone())
            .collect();
        for pattern in patterns {
            if let Ok(regex) = anchored(&pattern, config.max_regex_bytes) {
                self.compiled.insert(pattern, regex);
            }
        }
    }

    fn evict_oldest_expired(&mut self, now: DateTime<Utc>) {
        let oldest = self
            .silences
            .values()
            .filter(|s| s.ends_at <= now)
            .min_by_key(|s| s.ends_at)
            .map(|s| s.id.clone());
        if let Some(id) = oldest {
            self.silences.remove(&id);
        }
    }

    /// Drops compiled patterns no kept silence uses.
    fn prune_compiled(&mut self) {
        let used: BTreeSet<&str> = self
            .silences
            .values()
            .flat_map(|s| s.matchers.iter())
            .filter(|m| m.is_regex)
            .map(|m| m.value.as_str())
            .collect();
        self.compiled
            .retain(|pattern, _| used.contains(pattern.as_str()));
    }
}

/// Compiles a matcher anchored like Alertmanager's (`n1` must not match `n12`), within
/// `size_limit` bytes of compiled program.
fn anchored(pattern: &str, size_limit: usize) -> Result<Regex, regex::Error> {
    RegexBuilder::new(&format!("^(?:{pattern})$"))
        .size_limit(size_limit)
        .dfa_size_limit(size_limit)
        .build()
}

#[cfg(test)]
mod tests;
