//! The `[index]` section of the configuration.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::IndexError;

/// Tantivy refuses a writer with less than this much memory per indexing thread.
const MIN_WRITER_MEMORY_MB_PER_THREAD: usize = 15;

/// Caps the default number of indexing threads: indexing shares the machine with analysis
/// and detection, and two threads keep up with the analyzer on our corpora.
const DEFAULT_MAX_WRITER_THREADS: usize = 2;

/// Settings of the post index: commit policy, retention and writer resources.
#[derive(Deserialize, Serialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct IndexConfig {
    /// Commits once this many posts were added since the last commit. A commit makes the
    /// posts searchable and lets the source commit its offsets. Must be at least 1.
    pub commit_every_posts: usize,
    /// Commits once the oldest uncommitted post has waited this many seconds, whichever of
    /// the two limits is reached first. Must be at least 1.
    pub commit_interval_secs: u64,
    /// Deletes posts older than this many days, counted back from the newest `created_at`
    /// indexed so far (event time, so that replaying old data does not wipe it). Unset
    /// keeps posts forever.
    pub retention_days: Option<u32>,
    /// Memory for the Tantivy writer, in megabytes, shared by its indexing threads; each
    /// thread needs at least 15.
    pub writer_memory_mb: usize,
    /// Number of indexing threads. Unset lets Tantivy choose from the number of CPUs and
    /// the memory, capped at 2.
    pub writer_threads: Option<usize>,
}

impl Default for IndexConfig {
    fn default() -> Self {
        IndexConfig {
            commit_every_posts: 10_000,
            commit_interval_secs: 5,
            retention_days: None,
            writer_memory_mb: 128,
            writer_threads: None,
        }
    }
}

impl IndexConfig {
    /// Returns the commit interval as a `Duration`.
    pub fn commit_interval(&self) -> Duration {
        Duration::from_secs(self.commit_interval_secs)
    }

    /// Checks the values against each other and returns the number of writer threads to use.
    pub(crate) fn writer_threads_checked(&self) -> Result<usize, IndexError> {
        let invalid = |message: String| Err(IndexError::Config { message });
        if self.commit_every_posts == 0 {
            return invalid("commit_every_posts must be at least 1".into());
        }
        if self.commit_interval_secs == 0 {
            return invalid("commit_interval_secs must be at least 1".into());
        }
        if self.retention_days == Some(0) {
            return invalid(
                "retention_days must be at least 1 (leave it unset to keep posts forever)".into(),
            );
        }
        let memory_threads = (self.writer_memory_mb / MIN_WRITER_MEMORY_MB_PER_THREAD).max(1);
        let threads = match self.writer_threads {
            Some(0) => return invalid("writer_threads must be at least 1".into()),
            Some(threads) => threads,
            None => std::thread::available_parallelism()
                .map_or(1, |n| n.get())
                .min(DEFAULT_MAX_WRITER_THREADS)
                .min(memory_threads),
        };
        if self.writer_memory_mb < threads * MIN_WRITER_MEMORY_MB_PER_THREAD {
            return invalid(format!(
                "writer_memory_mb is {} but {threads} writer thread(s) need at least {}",
                self.writer_memory_mb,
                threads * MIN_WRITER_MEMORY_MB_PER_THREAD
            ));
        }
        Ok(threads)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_threads_fit_the_memory_and_bad_values_are_rejected() {
        let small = IndexConfig {
            writer_memory_mb: 20,
            ..IndexConfig::default()
        };
        assert_eq!(small.writer_threads_checked().unwrap(), 1);
        let default_threads = IndexConfig::default().writer_threads_checked().unwrap();
        assert!((1..=2).contains(&default_threads));
        let starved = IndexConfig {
            writer_memory_mb: 20,
            writer_threads: Some(2),
            ..IndexConfig::default()
        };
        assert!(matches!(
            starved.writer_threads_checked(),
            Err(IndexError::Config { .. })
        ));
        let never = IndexConfig {
            commit_every_posts: 0,
            ..IndexConfig::default()
        };
        assert!(matches!(
            never.writer_threads_checked(),
            Err(IndexError::Config { .. })
        ));
    }

    #[test]
    fn parses_a_partial_section_and_rejects_unknown_keys() {
        let config: IndexConfig = serde_json::from_str(r#"{"retention_days": 30}"#).unwrap();
        assert_eq!(config.retention_days, Some(30));
        assert_eq!(config.commit_every_posts, 10_000);
        assert!(serde_json::from_str::<IndexConfig>(r#"{"retention": 30}"#).is_err());
    }
}
