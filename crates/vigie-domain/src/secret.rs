//! The one type for secret-bearing values: passwords, webhook signing keys, Slack and Teams
//! URLs (the URL *is* the credential), basic-auth credentials, API tokens, the account salt.
//!
//! A [`Secret`] never shows its value by accident: `Debug` and `Serialize` (what
//! `check-config` prints) give `[redacted]` (or `""` when unset, so a reader can still see
//! whether it is set), and there is no `Display`. The value is read only through
//! [`Secret::expose`], which makes every use greppable. The memory is zeroed on drop
//! (`secrecy`).
//!
//! Where a secret comes from (`KEY_file`, `KEY_env`, the environment) is the config loader's
//! business; this type only holds it. [`scrub`] removes secret values from text that came
//! from elsewhere (a library's error message that quotes a URL).

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use subtle::ConstantTimeEq;

/// What a set secret shows in `Debug`, `Serialize`, logs and errors.
pub const REDACTED: &str = "[redacted]";

/// A secret string that is redacted wherever it could be shown.
#[derive(Clone, Default)]
pub struct Secret(Option<SecretString>);

impl Secret {
    /// Wraps a value; the empty string is an unset secret.
    pub fn new(value: impl Into<String>) -> Self {
        let value: String = value.into();
        if value.is_empty() {
            Secret(None)
        } else {
            Secret(Some(SecretString::from(value)))
        }
    }

    /// Returns the value (empty when unset). Call it only where the value is used, never to
    /// log or format it.
    pub fn expose(&self) -> &str {
        self.0.as_ref().map(|s| s.expose_secret()).unwrap_or("")
    }

    /// Tells whether no value is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Compares with `candidate` in time independent of where they differ (API tokens).
    /// An unset secret equals nothing.
    pub fn ct_eq(&self, candidate: &[u8]) -> bool {
        match &self.0 {
            None => false,
            Some(s) => s.expose_secret().as_bytes().ct_eq(candidate).into(),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            f.write_str("\"\"")
        } else {
            f.write_str(REDACTED)
        }
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(if self.is_empty() { "" } else { REDACTED })
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct SecretVisitor;
        impl serde::de::Visitor<'_> for SecretVisitor {
            type Value = Secret;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Secret, E> {
                Ok(Secret::new(v))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Secret, E> {
                Ok(Secret::new(v))
            }
            // A password of digits written without quotes (or arriving through a typed
            // override) is still a password; the value is never echoed in the error path.
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Secret, E> {
                Ok(Secret::new(v.to_string()))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Secret, E> {
                Ok(Secret::new(v.to_string()))
            }
        }
        deserializer.deserialize_any(SecretVisitor)
    }
}

/// Replaces every occurrence of a set secret's value in `text` by `[redacted]`.
///
/// Use it on text Vigie did not write (a library's error message that quotes a URL) before
/// it reaches a log, a metric, an API answer or a dead letter. Secrets shorter than 4 bytes
/// are not searched for: they would redact ordinary words, and no real credential is that
/// short.
pub fn scrub<'a>(text: &str, secrets: impl IntoIterator<Item = &'a Secret>) -> String {
    let mut out = text.to_owned();
    for secret in secrets {
        let value = secret.expose();
        if value.len() >= 4 && out.contains(value) {
            out = out.replace(value, REDACTED);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_serialize_never_show_the_value() {
        let s = Secret::new("hunter2-very-secret");
        assert_eq!(format!("{s:?}"), REDACTED);
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"[redacted]\"");
        assert_eq!(s.expose(), "hunter2-very-secret");
        let unset = Secret::default();
        assert!(unset.is_empty());
        assert_eq!(serde_json::to_string(&unset).unwrap(), "\"\"");
    }

    #[test]
    fn digits_stay_a_string() {
        let s: Secret = serde_json::from_str("20240101").unwrap();
        assert_eq!(s.expose(), "20240101");
    }

    #[test]
    fn constant_time_compare() {
        let s = Secret::new("tok-123");
        assert!(s.ct_eq(b"tok-123"));
        assert!(!s.ct_eq(b"tok-124"));
        assert!(!s.ct_eq(b"tok-12"));
        assert!(!Secret::default().ct_eq(b""));
    }

    #[test]
    fn scrub_removes_values() {
        let url = Secret::new("https://hooks.slack.com/services/T0/B0/XYZ");
        let msg = "error sending request for url (https://hooks.slack.com/services/T0/B0/XYZ)";
        assert_eq!(
            scrub(msg, [&url]),
            "error sending request for url ([redacted])"
        );
    }
}
