//! `[kafka]` configuration: what to read, where rejects go, and the librdkafka properties
//! passed through to the clients.
//!
//! This module checks the rules that concern Kafka alone and builds the librdkafka client
//! configurations; reading the file and env overrides is the daemon's job.

use std::collections::BTreeMap;

use rdkafka::ClientConfig;
use serde::{Deserialize, Serialize};

use crate::KafkaSourceError;

/// Properties that have a dedicated field, or that Vigie must control for at-least-once
/// delivery, and so may not appear in [`KafkaConfig::properties`]; with the reason.
const RESERVED_PROPERTIES: [(&str, &str); 5] = [
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
    pub properties: BTreeMap<String, String>,
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
            properties: BTreeMap::new(),
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
        if self.create_topics && self.create_partitions < 1 {
            return invalid("create_partitions", "must be at least 1");
        }
        if self.batch_max_messages == 0 {
            return invalid("batch_max_messages", "must be at least 1");
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
            .set("enable.partition.eof", "false")
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
        for (key, value) in &self.properties {
            config.set(key, value);
        }
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
        assert_eq!(config.properties["sasl.mechanism"], "PLAIN");
        let err = toml::from_str::<KafkaConfig>("brokrs = \"k:9092\"\n").unwrap_err();
        assert!(err.to_string().contains("brokrs"), "{err}");
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
