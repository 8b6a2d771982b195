//! Silences: label matchers with an expiry that mute notifications of matching alerts,
//! the way Alertmanager's do. The policy keeps tracking a silenced alert; it only holds
//! back its notifications (see [`crate::AlertPolicy`]). The daemon persists the store
//! (it is serde) and exposes it over HTTP.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use regex::Regex;
use serde::{Deserialize, Serialize};

use crate::error::AlertError;
use crate::signing::sha256_hex;

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

/// A silence: while in force, alerts whose labels match every matcher send nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Silence {
    /// Identifier; left empty on creation, [`Silences::add`] assigns one.
    #[serde(default)]
    pub id: String,
    /// All must match.
    pub matchers: Vec<Matcher>,
    /// From when it applies.
    pub starts_at: DateTime<Utc>,
    /// Until when it applies (exclusive).
    pub ends_at: DateTime<Utc>,
    /// Who created it.
    #[serde(default)]
    pub created_by: String,
    /// Why.
    #[serde(default)]
    pub comment: String,
}

/// The silences in force or scheduled.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Silences {
    silences: BTreeMap<String, Silence>,
    /// Compiled regexes by pattern, rebuilt after deserialization.
    #[serde(skip)]
    compiled: BTreeMap<String, Regex>,
}

impl Silences {
    /// Adds a silence after checking it, assigning an id when it has none; returns the id.
    /// A silence with an existing id replaces it.
    pub fn add(&mut self, mut silence: Silence) -> Result<String, AlertError> {
        if silence.matchers.is_empty() {
            return Err(AlertError::InvalidSilence(
                "needs at least one matcher".into(),
            ));
        }
        if silence.ends_at <= silence.starts_at {
            return Err(AlertError::InvalidSilence(
                "ends_at must be after starts_at".into(),
            ));
        }
        for matcher in &silence.matchers {
            if matcher.name.is_empty() {
                return Err(AlertError::InvalidSilence("a matcher needs a name".into()));
            }
            if matcher.is_regex {
                self.compile(&matcher.value)?;
            }
        }
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
        let id = silence.id.clone();
        self.silences.insert(id.clone(), silence);
        Ok(id)
    }

    /// Returns all silences, expired ones included, ordered by id.
    pub fn list(&self) -> Vec<Silence> {
        self.silences.values().cloned().collect()
    }

    /// Removes a silence; returns whether it existed.
    pub fn remove(&mut self, id: &str) -> bool {
        self.silences.remove(id).is_some()
    }

    /// Removes silences that ended before `now`; returns how many.
    pub fn remove_expired(&mut self, now: DateTime<Utc>) -> usize {
        let before = self.silences.len();
        self.silences.retain(|_, s| s.ends_at > now);
        before - self.silences.len()
    }

    /// Returns whether a silence in force at `now` matches these labels.
    pub fn is_silenced(&self, labels: &BTreeMap<String, String>, now: DateTime<Utc>) -> bool {
        self.matching(labels, now).is_some()
    }

    /// Returns the id of a silence in force at `now` that matches these labels.
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
                    match self.compiled.get(&matcher.value) {
                        Some(regex) => regex.is_match(value),
                        // Not compiled yet (a store just deserialized): compile here; a
                        // pattern was checked when added, so failing means "no match".
                        None => anchored(&matcher.value).is_ok_and(|r| r.is_match(value)),
                    }
                })
            })
            .map(|silence| silence.id.as_str())
    }

    /// Compiles every regex matcher once, after deserialization.
    pub fn prepare(&mut self) {
        let patterns: Vec<String> = self
            .silences
            .values()
            .flat_map(|s| s.matchers.iter())
            .filter(|m| m.is_regex)
            .map(|m| m.value.clone())
            .collect();
        for pattern in patterns {
            let _ = self.compile(&pattern);
        }
    }

    fn compile(&mut self, pattern: &str) -> Result<(), AlertError> {
        if !self.compiled.contains_key(pattern) {
            let regex = anchored(pattern).map_err(|source| AlertError::SilenceRegex {
                pattern: pattern.to_owned(),
                source,
            })?;
            self.compiled.insert(pattern.to_owned(), regex);
        }
        Ok(())
    }
}

/// Compiles a matcher anchored like Alertmanager's: `n1` must not match `n12`.
fn anchored(pattern: &str) -> Result<Regex, regex::Error> {
    Regex::new(&format!("^(?:{pattern})$"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).unwrap()
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn silence(matchers: Vec<Matcher>, from: i64, to: i64) -> Silence {
        Silence {
            id: String::new(),
            matchers,
            starts_at: at(from),
            ends_at: at(to),
            created_by: "analyst".into(),
            comment: "known story".into(),
        }
    }

    fn matcher(name: &str, value: &str, is_regex: bool) -> Matcher {
        Matcher {
            name: name.into(),
            value: value.into(),
            is_regex,
        }
    }

    #[test]
    fn matches_all_matchers_within_its_time() {
        let mut silences = Silences::default();
        let id = silences
            .add(silence(
                vec![
                    matcher("narrative_id", "n1", false),
                    matcher("severity", "info|warning", true),
                ],
                100,
                200,
            ))
            .unwrap();
        let warning = labels(&[("narrative_id", "n1"), ("severity", "warning")]);
        assert!(!silences.is_silenced(&warning, at(99)));
        assert_eq!(silences.matching(&warning, at(150)), Some(id.as_str()));
        assert!(!silences.is_silenced(&warning, at(200)));
        let critical = labels(&[("narrative_id", "n1"), ("severity", "critical")]);
        assert!(!silences.is_silenced(&critical, at(150)));
        let other = labels(&[("narrative_id", "n12"), ("severity", "warning")]);
        assert!(!silences.is_silenced(&other, at(150)));

        assert_eq!(silences.remove_expired(at(150)), 0);
        assert_eq!(silences.remove_expired(at(200)), 1);
        assert!(silences.list().is_empty());
        assert!(!silences.remove(&id));
    }

    #[test]
    fn refuses_bad_silences_and_survives_serde() {
        let mut silences = Silences::default();
        assert!(silences.add(silence(vec![], 0, 10)).is_err());
        assert!(silences
            .add(silence(vec![matcher("a", "b", false)], 10, 10))
            .is_err());
        assert!(silences
            .add(silence(vec![matcher("a", "(", true)], 0, 10))
            .is_err());
        let id = silences
            .add(silence(vec![matcher("rule", "de.*", true)], 0, 10))
            .unwrap();
        let json = serde_json::to_string(&silences).unwrap();
        let mut restored: Silences = serde_json::from_str(&json).unwrap();
        assert!(restored.is_silenced(&labels(&[("rule", "default")]), at(5)));
        assert!(restored.remove(&id));
    }
}
