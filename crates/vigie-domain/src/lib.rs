//! The nouns passed between Vigie's stages.
//!
//! A [`Post`] is what a source decodes from one Kafka message or one line of a file
//! ([`decode`]); a rejected input becomes a [`Rejection`] with a closed-set
//! [`RejectReason`]. The analyzer turns a post into an [`AnalyzedPost`] (its terms,
//! computed once and shared by the index and by detection). A [`Checkpoint`] records how
//! far each source partition has been read, so that offsets are committed only once the
//! posts before them are durable. An [`alert::Notification`] carries an [`alert::Alert`]
//! from the alert policy to delivery.
//!
//! This crate does no I/O and reads no clock.
#![warn(missing_docs)]

pub mod alert;
mod analysis;
mod checkpoint;
pub mod decode;
mod narrative;
mod post;
mod secret;

pub use analysis::{Analysis, AnalyzedPost, LangSource, QueryAnalyzer, Token, TokenKind};
pub use checkpoint::{Checkpoint, PartitionEventKind};
pub use decode::{decode_post, DecodeLimits, RejectReason, Rejection};
pub use narrative::{
    CoordinationEvidence, Narrative, NarrativeEvent, NarrativeEventKind, NarrativeId,
    NarrativeStatus, NearDuplicateGroup, RepresentativePost, Severity, SharedLinkGroup, TermSignal,
    WatchMatch,
};
pub use post::{EngagementMetrics, Origin, Post};
pub use secret::{scrub, Secret, REDACTED};
