//! The daemon's pipeline stages, each driven on its own thread by
//! [`vigie_pipeline::spawn_stage`] (the data-flow diagram is in `vigie_pipeline`'s docs):
//! analysis ([`AnalyzeStage`]), the index ([`IndexStage`]) and, beside it on the same
//! analyzed batches, detection with the alert policy ([`DetectStage`]).
//!
//! They live here rather than in the crates whose work they call because they carry the
//! daemon's operational duties: metrics, storage outages held and retried, snapshots.
//! The algorithm crates stay free of those and of each other.

mod analyze;
mod detect;
mod index;

pub use analyze::AnalyzeStage;
pub use detect::{DetectOutcome, DetectStage};
pub use index::{IndexOutcome, IndexStage};
