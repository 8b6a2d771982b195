//! The pipeline's contracts: how sources hand posts to the rest of Vigie, how stages run
//! on their own threads ([`Stage`], [`spawn_stage`]), and when offsets may be committed
//! ([`CheckpointTracker`]).
//!
//! ```text
//!   Kafka topics ──► KafkaSource ─┐  decode + validate (vigie-domain::decode_post);
//!   files/stdin ──► FileSource  ──┤  rejects → dead-letter topic / rejected.jsonl
//!                                 ▼
//!   source loop (async task): SourceBatch → Batch<Post>; commits offsets ◄───────────┐
//!                                 │ bounded channel                                  │
//!                                 ▼                                                  │
//!   vigie-analyze thread: language + terms once per post, on every core (rayon)      │
//!                                 │ the same Batch<Arc<AnalyzedPost>>, to both:       │
//!                 ┌───────────────┴────────────────┐ bounded channels                │
//!                 ▼                                ▼                                 │
//!   vigie-index thread:                  vigie-detect thread:                         │
//!   PostIndex upsert (Tantivy's own      EventTimeOrderer → Detector → AlertPolicy    │
//!   writer threads), commit every        → vigie-alert-delivery's outbox, workers;    │
//!   N posts / T s, checkpoint in the     HTTP commands (acks, silences, watchlists)   │
//!   commit payload                       on its own control channel; snapshot every T │
//!                 │ durable(checkpoint)            │ durable(checkpoint)             │
//!                 └───────────────► CheckpointTracker ─ per-partition minimum ───────┘
//! ```
//!
//! Offsets flow back only once every stateful stage has made the posts before them
//! durable, so a crash at any point re-delivers posts rather than losing them: the index's
//! upsert-by-id and detection's snapshot offsets make re-delivery harmless. Nothing flows
//! back up the stream except those durable checkpoints.
#![warn(missing_docs)]

pub mod durable;
mod file;
mod stage;
mod tracker;

use std::future::Future;

use vigie_domain::{Checkpoint, DecodeLimits, Origin, Post, Rejection};

pub use durable::{durable_write, durable_write_with};
pub use file::{FileSource, FileSourceConfig, Pace, RejectedFileWriter};
pub use stage::{spawn_stage, Batch, Outlet, Stage, StageOptions, StreamEnd};
pub use tracker::{CheckpointTracker, DurableReport, StageId};
pub use vigie_domain::PartitionEventKind;

/// Validation limits shared by every source: the decode limits plus how far ahead of the
/// wall clock a post may be dated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct InputLimits {
    /// Size limits (its `not_after` is recomputed by [`InputLimits::decode_limits_now`]).
    pub decode: DecodeLimits,
    /// Largest tolerated lead of `created_at` over the wall clock; `None` accepts any time.
    pub max_future: Option<std::time::Duration>,
}

impl InputLimits {
    /// Returns the decode limits with `not_after` set from the wall clock.
    ///
    /// The wall clock only bounds how far in the future a post may claim to be; one post
    /// dated years ahead would otherwise become the event-time "now" of retention and
    /// detection. It never feeds event time itself.
    #[allow(clippy::disallowed_methods)]
    pub fn decode_limits_now(&self) -> DecodeLimits {
        let not_after = self
            .max_future
            .and_then(|lead| chrono::Duration::from_std(lead).ok())
            .map(|lead| chrono::Utc::now() + lead);
        DecodeLimits {
            not_after,
            ..self.decode
        }
    }
}

/// A rejected input, with where it came from. The raw bytes stay with the source, which
/// keeps them (dead-letter topic or `rejected.jsonl`) before the batch is handed on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedInput {
    /// Why it was rejected.
    pub rejection: Rejection,
    /// Where it came from.
    pub origin: Origin,
}

/// Posts read by a source, with the position they bring the source to.
#[derive(Debug, Default)]
pub struct SourceBatch {
    /// Valid posts, in source order.
    pub posts: Vec<Post>,
    /// Inputs that failed validation; already kept by the source.
    pub rejections: Vec<RejectedInput>,
    /// Position after this batch (next offsets). Empty for sources without offsets.
    pub checkpoint: Checkpoint,
    /// Messages consumed per topic (or path) in this batch, for metrics.
    pub consumed: Vec<(String, u64)>,
    /// Changes of the partitions read (assigned, revoked, at their end), in the order
    /// they happened among the posts; empty for sources without partitions. Event time
    /// needs them: a partition at its end or revoked no longer holds the watermark.
    pub partition_events: Vec<PartitionEvent>,
    /// When its posts were produced, by the wall clock (Kafka message timestamps, ms since
    /// the epoch), for each post whose message carried one; empty for files. Only the
    /// freshness metrics read them: event time is the post's own `created_at`.
    pub produced_at_ms: Vec<i64>,
}

/// A change of one partition a source reads, placed among the posts of its batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionEvent {
    /// How many of the batch's posts were read before it.
    pub after_posts: usize,
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// What happened.
    pub kind: PartitionEventKind,
}

impl SourceBatch {
    /// Returns true when the batch carries neither posts nor rejections.
    pub fn is_empty(&self) -> bool {
        self.posts.is_empty() && self.rejections.is_empty()
    }

    /// Returns true when the batch carries nothing at all: no post, reject, offset or
    /// partition event.
    pub fn is_idle(&self) -> bool {
        self.is_empty() && self.checkpoint.is_empty() && self.partition_events.is_empty()
    }
}

/// A point-in-time view of a source, for `/readyz` and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceStatus {
    /// True once the source can deliver (broker reachable, file opened).
    pub connected: bool,
    /// Consumer lag per (topic, partition), when the source knows it.
    pub lag: Vec<(String, i32, i64)>,
}

/// Errors a source reports. A source error stops the pipeline cleanly.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// Reading input failed (file I/O, broker error).
    #[error("failed to read from {source_name}")]
    Read {
        /// The topic or path.
        source_name: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Keeping a rejected input failed; its offset must not be committed.
    #[error("failed to keep rejected input from {origin}")]
    DeadLetter {
        /// Where the input came from.
        origin: String,
        /// The cause.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Committing offsets failed.
    #[error("failed to commit offsets")]
    CommitOffsets(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A stream of posts with offsets.
///
/// Contract: the runner calls [`Source::next_batch`] and [`Source::commit`] from one task,
/// never concurrently. `next_batch` must be cancel-safe (the runner drops it on shutdown);
/// a batch dropped that way is simply read again after a restart, because its offsets
/// were never committed. `commit` is called with a checkpoint only once every post before
/// it is durable in every stateful stage (see [`CheckpointTracker`]); the source may then
/// commit it upstream.
pub trait Source: Send {
    /// Returns the next batch, `Ok(None)` once a finite input is exhausted. A source with
    /// no data for a while returns an empty batch so the runner can commit on time.
    fn next_batch(
        &mut self,
    ) -> impl Future<Output = Result<Option<SourceBatch>, SourceError>> + Send;

    /// Commits `checkpoint` upstream: everything before it is durable.
    fn commit(
        &mut self,
        checkpoint: &Checkpoint,
    ) -> impl Future<Output = Result<(), SourceError>> + Send;

    /// Returns the current status.
    fn status(&self) -> SourceStatus;

    /// Stops reading `partitions` (topic, partition) for now and resumes every partition
    /// paused before that is not among them. Event time asks for it when a partition is
    /// read far ahead of the others. Sources without partitions ignore it; a partition
    /// this source does not own is skipped.
    fn pause_only(&mut self, partitions: &[(String, i32)]) {
        let _ = partitions;
    }
}
