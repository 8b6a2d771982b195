//! The post index: a Tantivy index of analyzed posts, with the commit policy that makes
//! source offsets durable and the search behind `/search` and `vigie search`.
//!
//! [`PostIndex`] owns the only `IndexWriter` of a data dir. The pipeline calls
//! [`PostIndex::add`] for each [`AnalyzedPost`](vigie_domain::AnalyzedPost), asks
//! [`PostIndex::commit_due`] after each batch or tick, and calls [`PostIndex::commit`] with
//! the batch's [`Checkpoint`](vigie_domain::Checkpoint). The checkpoint is written into
//! Tantivy's commit payload in the same atomic step as the posts, so after a crash the
//! stored offsets never run ahead of the indexed posts (at-least-once). Re-delivered posts
//! replace their earlier copy because every add is an upsert by `id`.
//!
//! Posts are tokenized once, by `vigie-tokenize`: the index stores the analyzer's tokens
//! as a pre-tokenized string and never re-analyzes post text. Queries and snippets go
//! through a Tantivy tokenizer that wraps [`QueryAnalyzer::analyze_query`] (the analyzer,
//! seen through its `vigie-domain` trait), so a query for
//! `войны` matches a post containing `войну`.
//!
//! [`PostSearcher`] is a cheap, shareable handle for concurrent searches. It comes either
//! from a [`PostIndex`] (it sees each commit at once) or from
//! [`PostSearcher::open_read_only`] (it follows another process's commits).
//!
//! This crate is the only one that knows about Tantivy. It reads no wall clock: retention
//! is measured against the newest `created_at` indexed so far (event time).
//!
//! [`QueryAnalyzer::analyze_query`]: vigie_domain::QueryAnalyzer::analyze_query
#![warn(missing_docs)]

mod config;
mod error;
mod limits;
mod payload;
mod post_index;
mod schema;
mod search;
mod tokenizer;

pub use config::IndexConfig;
pub use error::IndexError;
pub use limits::{
    SearchLimits, MAX_DEPTH_CEILING, MAX_HITS_CEILING, MAX_QUERY_BYTES_CEILING,
    SNIPPET_MAX_BYTES_CEILING,
};
pub use payload::CommitPayload;
pub use post_index::{CommitStats, PostIndex};
pub use search::{PostSearcher, SearchHit, SearchOrder, SearchRequest, SearchResults};
#[cfg(test)]
mod testing;
