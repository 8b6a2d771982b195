//! `[kafka]` configuration: what to read, where rejects go, and the librdkafka properties
//! passed through to the clients.
//!
//! This module checks the rules that concern Kafka alone and builds the librdkafka client
//! configurations; reading the file and env overrides is the daemon's job.
//!
//! Properties whose name says they hold a credential (`sasl.password`,
//! `ssl.key.password`, `sasl.oauthbearer.client.secret`, …, see [`is_secret_property`])
//! are kept as [`Secret`]s: `Debug`, `Serialize` (what `check-config` prints) and client
//! errors show `[redacted]`; only librdkafka gets the value.

use std::collections::BTreeMap;
use std::fmt;

use rdkafka::error::KafkaError;
use rdkafka::ClientConfig;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use vigie_domain::{Secret, REDACTED};

use crate::KafkaSourceError;

/// Most messages in one batch (`batch_max_messages`).
pub const MAX_BATCH_MESSAGES: usize = 1_000_000;
/// Most partitions of a topic created at start (`create_partitions`).
pub const MAX_CREATE_PARTITIONS: i32 = 10_000;

/// Tells whether a librdkafka property holds a credential: its name contains `password`
/// or `secret`, or it is a private key or the OAUTHBEARER configuration.
pub fn is_secret_property(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("password")
        || key.contains("secret")
        || key == "ssl.key.pem"
        || key == "sasl.oauthbearer.config"
}

#[derive(Clone)]
enum PropertyValue {
    Plain(String),
    Secret(Secret),
}

impl PropertyValue {
    fn new(key: &str, value: String) -> PropertyValue {
        if is_secret_property(key) {
            PropertyValue::Secret(Secret::new(value))
        } else {
            PropertyValue::Plain(value)
        }
    }

    fn expose(&self) -> &str {
        match self {
            PropertyValue::Plain(value) => value,
            PropertyValue::Secret(secret) => secret.expose(),
        }
    }

    fn shown(&self) -> &str {
        match self {
            PropertyValue::Plain(value) => value,
            PropertyValue::Secret(secret) if secret.is_empty() => "",
            PropertyValue::Secret(_) => REDACTED,
        }
    }
}

/// librdkafka properties (`[kafka.properties]`): names to string values, the
/// credential-bearing ones ([`is_secret_property`]) held as [`Secret`]s. Integers and
/// booleans written without quotes are taken as their text.
#[derive(Clone, Default)]
pub struct KafkaProperties(BTreeMap<String, PropertyValue>);

impl KafkaProperties {
    /// Returns a property's value (the real value, secret or not).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(PropertyValue::expose)
    }

    /// Sets a property; a credential-bearing name makes the value a secret.
    pub fn insert(&mut self, key: String, value: String) {
        let value = PropertyValue::new(&key, value);
        self.0.insert(key, value);
    }

    /// Tells whether a property is set.
    pub fn contains_key(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// Tells whether no property is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Returns the properties with their real values, for librdkafka only.
    pub fn exposed(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.expose()))
    }

    /// Returns the secret values, for scrubbing text that may quote them.
    pub fn secrets(&self) -> impl Iterator<Item = &Secret> {
        self.0.values().filter_map(|v| match v {
            PropertyValue::Secret(secret) => Some(secret),
            PropertyValue::Plain(_) => None,
        })
    }
}

impl PartialEq for KafkaProperties {
    fn eq(&self, other: &Self) -> bool {
        self.0.len() == other.0.len() && self.exposed().eq(other.exposed())
    }
}

impl Eq for KafkaProperties {}

impl fmt::Debug for KafkaProperties {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(k, v)| (k, v.shown())))
            .finish()
    }
}

impl Serialize for KafkaProperties {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter().map(|(k, v)| (k, v.shown())))
    }
}

impl<'de> Deserialize<'de> for KafkaProperties {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// A property value as written: text, or a bare integer or boolean.
        struct Text(String);
        impl<'de> Deserialize<'de> for Text {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl serde::de::Visitor<'_> for Visitor {
                    type Value = Text;
                    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                        f.write_str("a string, an integer or a boolean")
                    }
                    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Text, E> {
                        Ok(Text(v.to_owned()))
                    }
                    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Text, E> {
                        Ok(Text(v.to_string()))
                    }
                    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Text, E> {
                        Ok(Text(v.to_string()))
                    }
                    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Text, E> {
                        Ok(Text(v.to_string()))
                    }
                }
                deserializer.deserialize_any(Visitor)
            }
        }
        let raw = BTreeMap::<String, Text>::deserialize(deserializer)?;
        Ok(raw.into_iter().map(|(k, Text(v))| (k, v)).collect())
    }
}

impl FromIterator<(String, String)> for KafkaProperties {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        let mut properties = KafkaProperties::default();
        for (key, value) in iter {
            properties.insert(key, value);
        }
        properties
    }
}

impl From<BTreeMap<String, String>> for KafkaProperties {
    fn from(map: BTreeMap<String, String>) -> Self {
        map.into_iter().collect()
    }
}

/// Properties that have a dedicated field, or that Vigie must control for at-least-once
/// delivery, and so may not appear in [`KafkaConfig::properties`]; with the reason.
const RESERVED_PROPERTIES: [(&str, &str); 6] = [
    ("bootstrap.servers", "set `brokers` instead"),
    ("metadata.broker.list", "set `brokers` instead"),
    ("group.id", "set `group_id` instead"),
    (
        "enable.auto.commit",
        "Vigie commits offsets itself, only once posts are durable in the index",
    ),
    (
        "enable.auto.offset.store",
        "Vigie commits explicit offsets, only once posts are durable in the index",
    ),
    (
        "enable.partition.eof",
        "event time needs to know when a partition is read to its end",
    ),
];

/// Kafka input settings (`[kafka]` in the daemon's config file).
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct KafkaConfig {
    /// Bootstrap brokers, comma-separated `host:port` (librdkafka `bootstrap.servers`),
    /// e.g. `"kafka-1:9092,kafka-2:9092"`.
    pub brokers: String,
    /// Consumer group. Instances sharing a group split the partitions between them;
    /// committed offsets belong to the group.
    pub group_id: String,
    /// Topics to read posts from (one JSON post per message).
    pub topics: Vec<String>,
    /// Topic that receives every rejected message: the original key and bytes, plus
    /// headers `vigie.reason`, `vigie.detail`, `vigie.source.topic`,
    /// `vigie.source.partition` and `vigie.source.offset`. Must not be an input topic.
    pub dead_letter_topic: String,
    /// Creates missing input and dead-letter topics at start (needs the broker's
    /// CreateTopics permission); when false, missing topics are only logged.
    pub create_topics: bool,
    /// Number of partitions of topics created at start (replication is the broker's default).
    pub create_partitions: i32,
    /// Largest number of messages handed on in one batch.
    pub batch_max_messages: usize,
    /// Longest time, in milliseconds, spent filling a batch; what arrived by then is handed
    /// on (possibly nothing), so offsets and metrics keep moving when input is quiet.
    pub batch_max_wait_ms: u64,
    /// librdkafka properties passed verbatim to the consumer and the dead-letter producer,
    /// overriding Vigie's defaults: e.g. `security.protocol`, `sasl.mechanism`,
    /// `sasl.username`, `ssl.ca.location`, `session.timeout.ms`,
    /// `statistics.interval.ms` (0 disables lag reporting). `bootstrap.servers`,
    /// `group.id`, `enable.auto.commit` and `enable.auto.offset.store` are refused.
    /// Credentials (`sasl.password`, `ssl.key.password`, …) are secrets: give them with
    /// `"sasl.password_file" = "/run/secrets/kafka-password"` or `"sasl.password_env"`,
    /// and they are never printed.
    pub properties: KafkaProperties,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            brokers: "127.0.0.1:9092".to_owned(),
            group_id: "vigie".to_owned(),
            topics: vec!["posts".to_owned()],
            dead_letter_topic: "vigie-dead-letter".to_owned(),
            create_topics: true,
            create_partitions: 3,
            batch_max_messages: 1000,
            batch_max_wait_ms: 200,
            properties: KafkaProperties::default(),
        }
    }
}

impl KafkaConfig {
    /// Checks the settings, naming the first offending key.
    pub fn validate(&self) -> Result<(), KafkaSourceError> {
        let invalid = |key: &str, reason: &str| {
            Err(KafkaSourceError::Config {
                key: key.to_owned(),
                reason: reason.to_owned(),
            })
        };
        if self
            .brokers
            .split(',')
            .all(|broker| broker.trim().is_empty())
        {
            return invalid("brokers", "must list at least one host:port");
        }
        if self.group_id.trim().is_empty() {
            return invalid("group_id", "must not be empty");
        }
        if self.topics.is_empty() {
            return invalid("topics", "must list at least one topic");
        }
        if self.topics.iter().any(|topic| topic.trim().is_empty()) {
            return invalid("topics", "must not contain an empty topic name");
        }
        if self.dead_letter_topic.trim().is_empty() {
            return invalid("dead_letter_topic", "must not be empty");
        }
        if self.topics.contains(&self.dead_letter_topic) {
            // Rejects would be read back, rejected again and kept again, forever.
            return invalid("dead_letter_topic", "must differ from the input topics");
        }
        if self.create_topics && !(1..=MAX_CREATE_PARTITIONS).contains(&self.create_partitions) {
            return invalid("create_partitions", "must be between 1 and 10000");
        }
        if !(1..=MAX_BATCH_MESSAGES).contains(&self.batch_max_messages) {
            return invalid("batch_max_messages", "must be between 1 and 1000000");
        }
        if !(1..=60_000).contains(&self.batch_max_wait_ms) {
            // Longer waits would delay time-based index commits and shutdown.
            return invalid("batch_max_wait_ms", "must be between 1 and 60000");
        }
        for (key, reason) in RESERVED_PROPERTIES {
            if self.properties.contains_key(key) {
                return invalid(&format!("properties.{key}"), reason);
            }
        }
        Ok(())
    }

    /// Returns the consumer's librdkafka configuration: Vigie's defaults, then `properties`.
    pub(crate) fn consumer_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("group.id", &self.group_id)
            .set("client.id", "vigie")
            // Offsets are committed explicitly by `Source::commit`, once the index has made
            // the posts before them durable; nothing is stored or committed behind our back.
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            // Event time leaves a partition at its end out of the watermark (issue 8).
            .set("enable.partition.eof", "true")
            // Consumer lag is only known from librdkafka's statistics.
            .set("statistics.interval.ms", "5000");
        self.apply_properties(&mut config);
        config
    }

    /// Returns the dead-letter producer's librdkafka configuration.
    pub(crate) fn producer_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", "vigie-dead-letter")
            // A reject's offset is committed once its delivery is acknowledged, so the
            // acknowledgement must mean "replicated", and retries must not duplicate.
            .set("acks", "all")
            .set("enable.idempotence", "true");
        self.apply_properties(&mut config);
        config
    }

    /// Returns the admin client's configuration (topic creation at start).
    pub(crate) fn admin_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.brokers)
            .set("client.id", "vigie-admin");
        self.apply_properties(&mut config);
        config
    }

    fn apply_properties(&self, config: &mut ClientConfig) {
        for (key, value) in self.properties.exposed() {
            config.set(key, value);
        }
    }

    /// Wraps a client-creation failure, with secret property values removed: librdkafka's
    /// message quotes the value of a property it refuses (a misspelt `sasl.pasword`).
    pub(crate) fn client_error(&self, err: KafkaError) -> KafkaSourceError {
        let scrub = |text: &str| vigie_domain::scrub(text, self.properties.secrets());
        let err = match err {
            KafkaError::ClientConfig(code, desc, key, value) => {
                let value = if is_secret_property(&key) {
                    REDACTED.to_owned()
                } else {
                    scrub(&value)
                };
                KafkaError::ClientConfig(code, scrub(&desc), key, value)
            }
            KafkaError::ClientCreation(text) => KafkaError::ClientCreation(scrub(&text)),
            other => other,
        };
        KafkaSourceError::CreateClient(err)
    }

    /// Returns every topic this source touches: the inputs, then the dead-letter topic.
    pub(crate) fn all_topics(&self) -> impl Iterator<Item = &str> {
        self.topics
            .iter()
            .map(String::as_str)
            .chain(std::iter::once(self.dead_letter_topic.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error_key(config: &KafkaConfig) -> String {
        match config.validate() {
            Err(KafkaSourceError::Config { key, .. }) => key,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn defaults_are_valid() {
        KafkaConfig::default().validate().unwrap();
    }

    #[test]
    fn validation_names_the_offending_key() {
        let base = KafkaConfig::default();
        let cases = [
            (
                KafkaConfig {
                    brokers: " , ".into(),
                    ..base.clone()
                },
                "brokers",
            ),
            (
                KafkaConfig {
                    group_id: "".into(),
                    ..base.clone()
                },
                "group_id",
            ),
            (
                KafkaConfig {
                    topics: vec![],
                    ..base.clone()
                },
                "topics",
            ),
            (
                KafkaConfig {
                    topics: vec!["a".into(), " ".into()],
                    ..base.clone()
                },
                "topics",
            ),
            (
                KafkaConfig {
                    dead_letter_topic: "posts".into(),
                    ..base.clone()
                },
                "dead_letter_topic",
            ),
            (
                KafkaConfig {
                    create_partitions: 0,
                    ..base.clone()
                },
                "create_partitions",
            ),
            (
                KafkaConfig {
                    batch_max_messages: 0,
                    ..base.clone()
                },
                "batch_max_messages",
            ),
            (
                KafkaConfig {
                    batch_max_wait_ms: 0,
                    ..base.clone()
                },
                "batch_max_wait_ms",
            ),
            (
                KafkaConfig {
                    batch_max_wait_ms: u64::MAX,
                    ..base.clone()
                },
                "batch_max_wait_ms",
            ),
        ];
        for (config, key) in cases {
            assert_eq!(error_key(&config), key);
        }
        let mut config = base.clone();
        config
            .properties
            .insert("enable.auto.commit".into(), "true".into());
        assert_eq!(error_key(&config), "properties.enable.auto.commit");
        let message = config.validate().unwrap_err().to_string();
        assert!(
            message.contains("`properties.enable.auto.commit`"),
            "{message}"
        );
    }

    #[test]
    fn properties_override_defaults_in_every_client() {
        let mut config = KafkaConfig::default();
        config
            .properties
            .insert("security.protocol".into(), "SASL_SSL".into());
        config
            .properties
            .insert("auto.offset.reset".into(), "latest".into());
        config.properties.insert("acks".into(), "1".into());
        let consumer = config.consumer_config();
        assert_eq!(consumer.get("auto.offset.reset"), Some("latest"));
        assert_eq!(consumer.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(consumer.get("enable.auto.commit"), Some("false"));
        assert_eq!(consumer.get("group.id"), Some("vigie"));
        let producer = config.producer_config();
        assert_eq!(producer.get("acks"), Some("1"));
        assert_eq!(producer.get("security.protocol"), Some("SASL_SSL"));
        assert_eq!(
            config.admin_config().get("security.protocol"),
            Some("SASL_SSL")
        );
    }

    #[test]
    fn reads_a_partial_table_and_refuses_unknown_keys() {
        let config: KafkaConfig = toml::from_str(
            "brokers = \"k:9092\"\ntopics = [\"a\", \"b\"]\n[properties]\n\"sasl.mechanism\" = \"PLAIN\"\n",
        )
        .unwrap();
        assert_eq!(config.brokers, "k:9092");
        assert_eq!(config.group_id, "vigie");
        assert_eq!(config.topics, ["a", "b"]);
        assert_eq!(config.properties.get("sasl.mechanism"), Some("PLAIN"));
        let err = toml::from_str::<KafkaConfig>("brokrs = \"k:9092\"\n").unwrap_err();
        assert!(err.to_string().contains("brokrs"), "{err}");
    }

    /// Issue 12, row 4: credentials among the properties are never shown.
    #[test]
    fn issue_12_secret_properties_are_redacted_but_reach_librdkafka() {
        let config: KafkaConfig = toml::from_str(
            "[properties]\n\"sasl.password\" = \"hunter2-kafka\"\n\"ssl.key.password\" = 20240101\n\"sasl.username\" = \"vigie\"\n\"session.timeout.ms\" = 45000\n",
        )
        .unwrap();
        let shown = format!(
            "{config:?}\n{}\n{}",
            toml::to_string(&config).unwrap(),
            serde_json::to_string(&config).unwrap()
        );
        assert!(!shown.contains("hunter2-kafka"), "{shown}");
        assert!(!shown.contains("20240101"), "{shown}");
        assert!(
            shown.contains("vigie") && shown.contains("45000"),
            "{shown}"
        );
        let consumer = config.consumer_config();
        assert_eq!(consumer.get("sasl.password"), Some("hunter2-kafka"));
        assert_eq!(consumer.get("ssl.key.password"), Some("20240101"));
        assert_eq!(
            config.producer_config().get("sasl.password"),
            Some("hunter2-kafka")
        );
        assert_eq!(
            config.admin_config().get("sasl.password"),
            Some("hunter2-kafka")
        );
        assert!(is_secret_property("sasl.oauthbearer.client.secret"));
        assert!(is_secret_property("ssl.keystore.password"));
        assert!(!is_secret_property("sasl.mechanism"));
    }

    /// Issue 12, row 4: librdkafka quotes the value of a property it refuses (a misspelt
    /// name); a secret one is not quoted.
    #[test]
    fn issue_12_client_errors_do_not_quote_secret_values() {
        let mut config = KafkaConfig::default();
        config
            .properties
            .insert("sasl.password.typo".into(), "hunter2-kafka".into());
        let err = config
            .consumer_config()
            .create::<rdkafka::consumer::BaseConsumer>();
        let err = config.client_error(err.err().expect("an unknown property is refused"));
        let text = format!("{err:?} {}", std::error::Error::source(&err).unwrap());
        assert!(!text.contains("hunter2-kafka"), "{text}");
        assert!(text.contains("sasl.password.typo"), "{text}");
    }

    #[test]
    fn defaults_round_trip_through_toml() {
        let mut config = KafkaConfig::default();
        config
            .properties
            .insert("security.protocol".into(), "SSL".into());
        let text = toml::to_string(&config).unwrap();
        assert_eq!(toml::from_str::<KafkaConfig>(&text).unwrap(), config);
    }
}

#[cfg(test)]
mod security_tests {
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::BaseConsumer;

    /// Regression guard for the build: librdkafka must be compiled with TLS (the `ssl`
    /// feature), or every `security.protocol = "SSL"/"SASL_SSL"` deployment fails at start.
    #[test]
    fn tls_and_sasl_scram_properties_are_accepted_by_librdkafka() {
        for (protocol, mechanism) in [
            ("SSL", None),
            ("SASL_SSL", Some("SCRAM-SHA-512")),
            ("SASL_PLAINTEXT", Some("PLAIN")),
        ] {
            let mut config = ClientConfig::new();
            config
                .set("bootstrap.servers", "127.0.0.1:1")
                .set("group.id", "t")
                .set("security.protocol", protocol);
            if let Some(mechanism) = mechanism {
                config
                    .set("sasl.mechanisms", mechanism)
                    .set("sasl.username", "u")
                    .set("sasl.password", "p");
            }
            let created: Result<BaseConsumer, _> = config.create();
            assert!(created.is_ok(), "{protocol}: {:?}", created.err());
        }
    }
}
