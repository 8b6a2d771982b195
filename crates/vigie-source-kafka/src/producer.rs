//! `PostProducer`: writes raw post messages to a topic. Used by `vigie produce` (the demo
//! producer of the docker-compose stack and a tool for replaying files into Kafka); the
//! pipeline itself never produces posts.

use std::time::Duration;

use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::{KafkaConfig, KafkaSourceError};

/// How long one message may wait for its acknowledgement.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Produces messages with the brokers and librdkafka properties of a [`KafkaConfig`].
#[derive(Clone)]
pub struct PostProducer {
    producer: FutureProducer,
}

impl PostProducer {
    /// Creates the producer (acks=all, idempotent); fails on an invalid property.
    pub fn new(config: &KafkaConfig) -> Result<PostProducer, KafkaSourceError> {
        let mut client = config.producer_config();
        client
            .set("client.id", "vigie-produce")
            .set("linger.ms", "20");
        let producer = client.create().map_err(|err| config.client_error(err))?;
        Ok(PostProducer { producer })
    }

    /// Sends one message and waits for its acknowledgement; returns (partition, offset).
    pub async fn send(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        payload: &[u8],
    ) -> Result<(i32, i64), KafkaSourceError> {
        let mut record = FutureRecord::<[u8], [u8]>::to(topic).payload(payload);
        if let Some(key) = key {
            record = record.key(key);
        }
        self.producer
            .send(record, SEND_TIMEOUT)
            .await
            .map(|delivery| (delivery.partition, delivery.offset))
            .map_err(|(err, _)| KafkaSourceError::Produce {
                topic: topic.to_owned(),
                source: err,
            })
    }
}
