//! `[alert]`: one table in the file, read by two crates. The policy's keys (rules,
//! timings, content) are `vigie_alert::AlertConfig`; `[[alert.sinks]]` and
//! `[alert.delivery]` are `vigie-alert-delivery`'s. Both structs refuse unknown keys, so
//! serde's `flatten` cannot join them; [`AlertSection`] reads the table itself, handing
//! `sinks` and `delivery` to their types and every other key to `AlertConfig`, in the
//! order of the file. Errors keep their key paths (`alert.foo`, `alert.sinks[0].kind`,
//! `alert.delivery.max_age_secs`), since every value is read through the deserializer the
//! daemon tracks paths with.

use std::fmt;

use serde::de::{self, DeserializeSeed, IntoDeserializer, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use vigie_alert::AlertConfig;
use vigie_alert_delivery::{DeliveryConfig, SinkConfig};
use vigie_domain::Secret;

/// `[alert]`: when narratives become alerts, what alerts say and where they go.
#[derive(Debug, Clone, Default)]
pub struct AlertSection {
    /// The policy's keys: rules, timings, content, silences.
    pub policy: AlertConfig,
    /// `[[alert.sinks]]`: where notifications go; several at once, each with its own
    /// routing.
    pub sinks: Vec<SinkConfig>,
    /// `[alert.delivery]`: retries and limits of delivery.
    pub delivery: DeliveryConfig,
}

impl AlertSection {
    /// Returns every secret of the section (salt, sink URLs, signing keys, credentials),
    /// for scrubbing text that may quote them.
    pub fn secrets(&self) -> Vec<&Secret> {
        let mut secrets = self.policy.secrets();
        for sink in &self.sinks {
            secrets.extend(sink.secrets());
        }
        secrets
    }

    /// Checks the policy's keys, then the sinks and delivery; returns the message of the
    /// first rule broken, which starts with the dotted key it is about.
    pub fn validate(&self) -> Result<(), String> {
        self.policy.validate().map_err(|err| match err {
            vigie_alert::AlertError::InvalidConfig(message) => message,
            other => other.to_string(),
        })?;
        vigie_alert_delivery::config::validate(&self.sinks, &self.delivery).map_err(|err| match err
        {
            vigie_alert_delivery::DeliveryError::InvalidConfig(message) => message,
            other => other.to_string(),
        })
    }
}

/// The section as one table: the policy's keys, then `sinks` and `delivery`.
#[derive(Serialize)]
struct AlertSectionRef<'a> {
    #[serde(flatten)]
    policy: &'a AlertConfig,
    sinks: &'a [SinkConfig],
    delivery: &'a DeliveryConfig,
}

impl Serialize for AlertSection {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        AlertSectionRef {
            policy: &self.policy,
            sinks: &self.sinks,
            delivery: &self.delivery,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for AlertSection {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(SectionVisitor)
    }
}

struct SectionVisitor;

impl<'de> Visitor<'de> for SectionVisitor {
    type Value = AlertSection;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the [alert] table")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<AlertSection, A::Error> {
        let mut sinks = None;
        let mut delivery = None;
        let policy = AlertConfig::deserialize(de::value::MapAccessDeserializer::new(PolicyKeys {
            map: &mut map,
            sinks: &mut sinks,
            delivery: &mut delivery,
        }))?;
        Ok(AlertSection {
            policy,
            sinks: sinks.unwrap_or_default(),
            delivery: delivery.unwrap_or_default(),
        })
    }
}

/// The `[alert]` table as `AlertConfig` sees it: `sinks` and `delivery` are taken out on
/// the way (read into their own types, from the same map, so with their paths).
struct PolicyKeys<'m, A> {
    map: &'m mut A,
    sinks: &'m mut Option<Vec<SinkConfig>>,
    delivery: &'m mut Option<DeliveryConfig>,
}

/// The keys of `[alert]`, named by an unknown key's error ("expected one of"): the
/// policy's (checked against `AlertConfig` by a test) and the two taken out.
const KEYS: &[&str] = &[
    "external_url",
    "runbook_url",
    "rules",
    "tiers",
    "for_secs",
    "keep_firing_for_secs",
    "resolve_after_secs",
    "cooldown_secs",
    "renotify_interval_secs",
    "growth_change_factor",
    "group_wait_secs",
    "resolved_retention_secs",
    "pseudonymize_accounts",
    "account_salt",
    "max_terms",
    "max_accounts",
    "max_representative_posts",
    "sinks",
    "delivery",
    "silences",
];

/// A key of the `[alert]` table: one of the two taken out, or one for the policy.
enum Key<K> {
    Sinks,
    Delivery,
    Policy(K),
}

/// Reads a key as a string and hands it to the policy's key seed unless it is `sinks` or
/// `delivery`; called through the tracked map, so an unknown key's error names its path.
struct KeySeed<'s, K> {
    seed: &'s mut Option<K>,
}

impl<'de, K: DeserializeSeed<'de>> DeserializeSeed<'de> for KeySeed<'_, K> {
    type Value = Key<K::Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        let key = String::deserialize(deserializer)?;
        match key.as_str() {
            "sinks" => Ok(Key::Sinks),
            "delivery" => Ok(Key::Delivery),
            known if KEYS.contains(&known) => {
                let seed = self.seed.take().expect("one seed per key");
                seed.deserialize(key.into_deserializer()).map(Key::Policy)
            }
            unknown => Err(de::Error::unknown_field(unknown, KEYS)),
        }
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for PolicyKeys<'_, A> {
    type Error = A::Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, A::Error> {
        let mut seed = Some(seed);
        loop {
            match self.map.next_key_seed(KeySeed { seed: &mut seed })? {
                None => return Ok(None),
                Some(Key::Policy(key)) => return Ok(Some(key)),
                Some(Key::Sinks) => *self.sinks = Some(self.map.next_value()?),
                Some(Key::Delivery) => *self.delivery = Some(self.map.next_value()?),
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, A::Error> {
        self.map.next_value_seed(seed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_section_round_trips_through_one_table() {
        let text = r#"
            for_secs = 60
            [[sinks]]
            name = "ops"
            kind = "stdout"
            [delivery]
            max_age_secs = 600
            [tiers]
            info = "low"
        "#;
        let section: AlertSection = toml::from_str(text).unwrap();
        assert_eq!(section.policy.for_secs, 60);
        assert_eq!(section.sinks[0].name, "ops");
        assert_eq!(section.delivery.max_age_secs, 600);
        let printed = toml::to_string(&section).unwrap();
        let again: AlertSection = toml::from_str(&printed).unwrap();
        assert_eq!(again.sinks[0].name, "ops");
        assert_eq!(again.delivery, section.delivery);
        assert_eq!(again.policy.tiers, section.policy.tiers);
    }

    #[test]
    fn the_keys_are_the_policy_s_and_the_two_taken_out() {
        let policy = toml::Value::try_from(AlertConfig::default()).unwrap();
        let mut expected: Vec<&str> = policy
            .as_table()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        expected.extend(["sinks", "delivery"]);
        expected.sort_unstable();
        let mut keys = KEYS.to_vec();
        keys.sort_unstable();
        assert_eq!(keys, expected);
    }

    #[test]
    fn unknown_keys_are_refused_with_their_path() {
        let path = |text: &str| {
            let table: toml::Table = text.parse().unwrap();
            let err =
                serde_path_to_error::deserialize::<_, AlertSection>(toml::Value::Table(table))
                    .unwrap_err();
            (err.path().to_string(), err.into_inner().to_string())
        };
        let (key, reason) = path("for_sec = 3");
        assert_eq!(key, "for_sec");
        assert!(reason.contains("unknown field `for_sec`"), "{reason}");
        assert!(reason.contains("`sinks`, `delivery`"), "{reason}");
        let (key, _) = path("[[sinks]]\nname = \"a\"\nkind = \"pager\"");
        assert_eq!(key, "sinks[0].kind");
        let (key, _) = path("[delivery]\nmax_age = 3");
        assert_eq!(key, "delivery.max_age");
        let (key, _) = path("for_secs = \"soon\"");
        assert_eq!(key, "for_secs");
    }
}
