//! Detection core: weak-signal bursts, emerging narratives, coordination evidence,
//! watchlists and severity, over the analyzed posts of the pipeline.
//!
//! The [`Detector`] sees every [`vigie_domain::AnalyzedPost`] once, in event-time order,
//! and reports [`vigie_domain::NarrativeEvent`]s: a narrative appeared, grew, changed
//! severity, merged or went quiet. It is a pure function of the stream (no clock, no I/O,
//! no randomness), so the same input gives the same narratives at any replay speed, and
//! its state can be snapshotted next to the source offsets it covers.
//!
//! It leaves the rest to others: the analyzer (`vigie-tokenize`) has already chosen the
//! terms, and compiles watch queries through [`vigie_domain::QueryAnalyzer`]; the daemon
//! feeds posts and ticks and stores snapshots, and alerting (cooldowns,
//! webhooks) turns severity crossings into notifications.
//!
//! # Layout
//!
//! - `sketch`: SigniTrend's hashed significance tables (fixed memory).
//! - `features`: the terms, pairs, MinHash signature and links taken from a post.
//! - `narrative`: one narrative's statistics, status, severity and report (storylines and
//!   claims alike).
//! - `claims`: the claims inside storylines (leader clustering of post vectors, identity
//!   joins, attachment to storylines by member votes).
//! - `evidence`: readable labels (original spellings) and diverse representative posts.
//! - `coordination`: near-duplicates, shared links, repeat accounts.
//! - `watchlist`: standing queries and watched domains or accounts.
//! - `slow`: the daily time scale, for stories that trickle over days.
//! - `detector`: puts them together.
//! - `watermark`: orders posts by event time behind per-partition watermarks.
//!
//! # Memory
//!
//! The sketches take `sketch_hashes × (term_sketch_cells + pair_sketch_cells) × 20` bytes
//! (26.2 MB with the defaults: 4 × (65,536 + 262,144) × 20), whatever the vocabulary.
//! Everything else is bounded by configuration: `max_recent_posts` recent posts,
//! `max_active_narratives` narratives of at most `max_member_ids` ids and 1,000
//! coordination members each, and 64 retired narratives; claims by `[detect.claims]
//! max_claims` clusters (≈ 16 KB each at worst: 2 × `min_posts` waiting members, 8
//! headline candidates, a centroid and its running sum) plus 262,144 decayed document
//! frequencies and term texts (≈ 20 MB at worst); the reorder buffer by
//! `[detect.event_time] max_buffered_posts` analyzed posts.
#![warn(missing_docs)]

mod claims;
mod config;
mod coordination;
mod detector;
mod error;
mod evidence;
mod features;
mod hashing;
mod narrative;
mod sketch;
mod slow;
mod watchlist;
mod watermark;

pub use config::{ClaimConfig, DetectorConfig, EventTimeConfig, SlowScaleConfig};
pub use detector::{Detector, DetectorCounters, DetectorSnapshot, DetectorSnapshotRef};
pub use error::DetectError;
pub use watchlist::{WatchEntry, Watchlists};
pub use watermark::{
    tie_of, EventTimeOrderer, OrdererCounters, OrdererSnapshot, PartitionKey, Released,
};
