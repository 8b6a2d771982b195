//! Helpers shared by this crate's tests.

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use tempfile::TempDir;
use vigie_domain::{AnalyzedPost, Post};
use vigie_tokenize::{Analyzer, AnalyzerConfig};

use crate::{IndexConfig, PostIndex};

/// Returns the real analyzer with its default settings, built once: loading its
/// dictionaries is the slowest part of a test.
pub(crate) fn analyzer() -> Arc<Analyzer> {
    static ANALYZER: OnceLock<Arc<Analyzer>> = OnceLock::new();
    ANALYZER
        .get_or_init(|| Arc::new(Analyzer::new(AnalyzerConfig::default())))
        .clone()
}

/// Parses an RFC 3339 time.
pub(crate) fn at(rfc3339: &str) -> DateTime<Utc> {
    rfc3339.parse().expect("valid RFC 3339 time")
}

/// Analyzes a post built by `Post::for_test`.
pub(crate) fn analyzed(id: &str, text: &str, created_at: DateTime<Utc>) -> AnalyzedPost {
    analyze(Post::for_test(id, text, created_at))
}

/// Analyzes any post.
pub(crate) fn analyze(post: Post) -> AnalyzedPost {
    let analysis = analyzer().analyze_post(&post);
    AnalyzedPost { post, analysis }
}

/// Returns a config small enough for tests: one writer thread, little memory.
pub(crate) fn test_config() -> IndexConfig {
    IndexConfig {
        writer_memory_mb: 20,
        writer_threads: Some(1),
        ..IndexConfig::default()
    }
}

/// Opens a fresh index in a temporary directory.
pub(crate) fn test_index(config: IndexConfig) -> (TempDir, PostIndex) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let index = PostIndex::open(dir.path(), analyzer(), config).expect("open a fresh index");
    (dir, index)
}
