//! The dead-letter topic: every rejected message is produced there with its original key
//! and bytes, its original headers, and `vigie.*` headers saying why and where from.
//!
//! Deliveries are awaited before the batch that rejected them is handed on, so an offset
//! committed later never skips a reject that was not kept. Reading and counting rejects is
//! the caller's job; this module only keeps them.

use std::collections::VecDeque;
use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::message::{BorrowedMessage, Header, Message, OwnedHeaders};
use rdkafka::producer::{DeliveryFuture, FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use vigie_domain::{Origin, Rejection};
use vigie_pipeline::SourceError;

use crate::context::LogContext;

/// Header carrying the reject reason, e.g. `not_json` ([`vigie_domain::RejectReason::as_str`]).
pub const HEADER_REASON: &str = "vigie.reason";
/// Header carrying the human-readable detail of the rejection.
pub const HEADER_DETAIL: &str = "vigie.detail";
/// Header carrying the topic the message was read from.
pub const HEADER_SOURCE_TOPIC: &str = "vigie.source.topic";
/// Header carrying the partition the message was read from, in decimal.
pub const HEADER_SOURCE_PARTITION: &str = "vigie.source.partition";
/// Header carrying the offset of the message in its partition, in decimal.
pub const HEADER_SOURCE_OFFSET: &str = "vigie.source.offset";

/// How long to wait before retrying when librdkafka's local queue is full.
const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(10);

/// One rejected message waiting to be kept.
struct DeadLetter {
    key: Option<Vec<u8>>,
    payload: Option<Vec<u8>>,
    headers: OwnedHeaders,
    origin: Origin,
    /// Set once librdkafka has taken the message; awaited until acknowledged.
    delivery: Option<DeliveryFuture>,
}

/// Rejected messages of the batch being collected, in read order.
#[derive(Default)]
pub(crate) struct DeadLetters {
    letters: VecDeque<DeadLetter>,
}

impl DeadLetters {
    /// Copies a rejected message and its reason; nothing is sent until [`Self::deliver`].
    pub(crate) fn push(
        &mut self,
        message: &BorrowedMessage<'_>,
        rejection: &Rejection,
        origin: Origin,
    ) {
        let headers =
            dead_letter_headers(message.headers().map(|h| h.detach()), rejection, &origin);
        self.letters.push_back(DeadLetter {
            key: message.key().map(<[u8]>::to_vec),
            payload: message.payload().map(<[u8]>::to_vec),
            headers,
            origin,
            delivery: None,
        });
    }

    /// Produces every pending reject to `topic` and waits until all are acknowledged.
    ///
    /// Cancel-safe: a reject leaves the queue only once acknowledged, and one handed to
    /// librdkafka is never handed over twice by this queue.
    pub(crate) async fn deliver(
        &mut self,
        producer: &FutureProducer<LogContext>,
        topic: &str,
    ) -> Result<(), SourceError> {
        loop {
            self.enqueue(producer, topic)?;
            let Some(front) = self.letters.front_mut() else {
                return Ok(());
            };
            let Some(delivery) = front.delivery.as_mut() else {
                // librdkafka's queue is full of messages that are not ours to await.
                tokio::time::sleep(QUEUE_FULL_BACKOFF).await;
                continue;
            };
            let result = delivery.await;
            let failure = match result {
                Ok(Ok(_delivered)) => None,
                Ok(Err((err, _message))) => Some(err),
                // The producer dropped the message without a report: only on shutdown.
                Err(_canceled) => Some(KafkaError::Canceled),
            };
            match failure {
                None => {
                    self.letters.pop_front();
                }
                Some(err) => {
                    // Sent again if the caller retries; the error normally stops the pipeline.
                    front.delivery = None;
                    return Err(SourceError::DeadLetter {
                        origin: front.origin.describe(),
                        source: Box::new(err),
                    });
                }
            }
        }
    }

    /// Hands librdkafka the rejects it has not taken yet, in order, until its queue is full.
    fn enqueue(
        &mut self,
        producer: &FutureProducer<LogContext>,
        topic: &str,
    ) -> Result<(), SourceError> {
        for letter in self
            .letters
            .iter_mut()
            .filter(|letter| letter.delivery.is_none())
        {
            let mut record = FutureRecord::<[u8], [u8]>::to(topic).headers(letter.headers.clone());
            if let Some(key) = &letter.key {
                record = record.key(key);
            }
            if let Some(payload) = &letter.payload {
                record = record.payload(payload);
            }
            match producer.send_result(record) {
                Ok(delivery) => letter.delivery = Some(delivery),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _record)) => break,
                Err((err, _record)) => {
                    return Err(SourceError::DeadLetter {
                        origin: letter.origin.describe(),
                        source: Box::new(err),
                    });
                }
            }
        }
        Ok(())
    }
}

/// Returns the original headers (if any) followed by the `vigie.*` headers.
fn dead_letter_headers(
    original: Option<OwnedHeaders>,
    rejection: &Rejection,
    origin: &Origin,
) -> OwnedHeaders {
    let (topic, partition, offset) = match origin {
        Origin::Kafka {
            topic,
            partition,
            offset,
        } => (topic.as_str(), partition.to_string(), offset.to_string()),
        // Only Kafka messages reach the dead-letter topic.
        Origin::File { path, line } => (path.as_str(), "-1".to_owned(), line.to_string()),
    };
    let ours = [
        (HEADER_REASON, rejection.reason.as_str()),
        (HEADER_DETAIL, rejection.detail.as_str()),
        (HEADER_SOURCE_TOPIC, topic),
        (HEADER_SOURCE_PARTITION, partition.as_str()),
        (HEADER_SOURCE_OFFSET, offset.as_str()),
    ];
    let mut headers = original.unwrap_or_else(|| OwnedHeaders::new_with_capacity(ours.len()));
    for (key, value) in ours {
        headers = headers.insert(Header {
            key,
            value: Some(value.as_bytes()),
        });
    }
    headers
}

#[cfg(test)]
mod tests {
    use super::*;
    use rdkafka::message::Headers;
    use vigie_domain::RejectReason;

    fn header_pairs(headers: &OwnedHeaders) -> Vec<(String, String)> {
        headers
            .iter()
            .map(|h| {
                (
                    h.key.to_owned(),
                    String::from_utf8(h.value.unwrap_or_default().to_vec()).unwrap(),
                )
            })
            .collect()
    }

    #[test]
    fn headers_keep_the_originals_and_say_why_and_where_from() {
        let original = OwnedHeaders::new().insert(Header {
            key: "trace",
            value: Some("abc"),
        });
        let rejection = Rejection {
            reason: RejectReason::MissingField,
            detail: "missing field \"id\"".into(),
        };
        let origin = Origin::Kafka {
            topic: "posts".into(),
            partition: 2,
            offset: 41,
        };
        let headers = dead_letter_headers(Some(original), &rejection, &origin);
        let expected = [
            ("trace", "abc"),
            ("vigie.reason", "missing_field"),
            ("vigie.detail", "missing field \"id\""),
            ("vigie.source.topic", "posts"),
            ("vigie.source.partition", "2"),
            ("vigie.source.offset", "41"),
        ];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(header_pairs(&headers), expected);
    }
}
