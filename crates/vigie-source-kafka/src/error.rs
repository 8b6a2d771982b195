//! Errors of [`crate::KafkaSource::connect`]. Errors while running are
//! [`vigie_pipeline::SourceError`]s, so the runner handles every source alike.

use std::time::Duration;

use rdkafka::error::KafkaError;

/// Why the Kafka source could not start.
#[derive(thiserror::Error, Debug)]
pub enum KafkaSourceError {
    /// A setting is invalid; `key` is its name in the `[kafka]` table.
    #[error("invalid Kafka setting `{key}`: {reason}")]
    Config {
        /// The offending key, e.g. `topics` or `properties.group.id`.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
    /// librdkafka refused the client configuration (e.g. an unknown property).
    #[error("failed to create a Kafka client")]
    CreateClient(#[source] KafkaError),
    /// No broker answered a metadata request in time.
    #[error("failed to reach Kafka brokers {brokers} within {timeout:?}")]
    Connect {
        /// The bootstrap brokers tried.
        brokers: String,
        /// How long we waited.
        timeout: Duration,
        /// The cause.
        #[source]
        source: KafkaError,
    },
    /// A missing topic could not be created.
    #[error("failed to create Kafka topic {topic}")]
    CreateTopics {
        /// The topic.
        topic: String,
        /// The cause.
        #[source]
        source: KafkaError,
    },
    /// A message could not be produced (`vigie produce`).
    #[error("failed to produce to Kafka topic {topic}")]
    Produce {
        /// The topic.
        topic: String,
        /// The cause.
        #[source]
        source: KafkaError,
    },
    /// Subscribing to the input topics failed.
    #[error("failed to subscribe to Kafka topics {topics:?}")]
    Subscribe {
        /// The input topics.
        topics: Vec<String>,
        /// The cause.
        #[source]
        source: KafkaError,
    },
}
