//! `KafkaSource`: reads JSON posts from Kafka topics as a member of a consumer group, and
//! is Vigie's only librdkafka user.
//!
//! ```text
//!   topics ──► StreamConsumer ──► decode_post ──► SourceBatch { posts, rejections, checkpoint }
//!                                    │ reject
//!                                    ▼
//!                 dead-letter topic: original key + bytes + headers
//!                 vigie.reason / vigie.detail / vigie.source.{topic,partition,offset}
//! ```
//!
//! Delivery is at-least-once. Auto-commit is off; [`vigie_pipeline::Source::commit`]
//! commits a checkpoint only when the runner says the posts before it are durable in the
//! index. Whatever was read but not committed (a crash, a shutdown, a partition moved to
//! another instance by a rebalance) is read again, and the index's upsert by post id makes
//! that harmless. Rejects are kept, never dropped: a batch is handed on only after the
//! dead-letter topic has acknowledged all of its rejects, so a commit never skips one.
//!
//! Each batch also reports, among its posts, the partitions assigned and revoked by
//! rebalances and those read to their end (`enable.partition.eof`), in
//! [`vigie_pipeline::SourceBatch::partition_events`]: event time leaves a partition at its
//! end out of the watermark and waits for one assigned that has delivered nothing yet.
//!
//! Left to others: counting posts and rejects by reason and exporting lag (the daemon,
//! from [`vigie_pipeline::SourceBatch::consumed`] and [`vigie_pipeline::SourceStatus`]),
//! deduplication (the index), and cross-section config rules (the daemon).
#![warn(missing_docs)]

mod config;
mod context;
mod dead_letter;
mod error;
mod producer;
mod source;

pub use config::{is_secret_property, KafkaConfig, KafkaProperties};
pub use dead_letter::{
    HEADER_DETAIL, HEADER_REASON, HEADER_SOURCE_OFFSET, HEADER_SOURCE_PARTITION,
    HEADER_SOURCE_TOPIC,
};
pub use error::KafkaSourceError;
pub use producer::PostProducer;
pub use source::KafkaSource;
