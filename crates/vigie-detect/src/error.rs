//! The detector's one error type.

/// What can go wrong when configuring the detector or its watchlists.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum DetectError {
    /// A configuration value is out of its allowed range.
    #[error("invalid detector setting `{field}`: {reason}")]
    InvalidConfig {
        /// The setting's name.
        field: &'static str,
        /// Why it is rejected.
        reason: String,
    },
    /// A watch query does not parse.
    #[error("invalid watch query {query:?}: {reason}")]
    InvalidWatchQuery {
        /// The query as written.
        query: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A watchlist entry with this name already exists.
    #[error("a watchlist entry named {name:?} already exists")]
    DuplicateWatch {
        /// The entry's name.
        name: String,
    },
    /// A snapshot was taken with sketch dimensions other than the configured ones.
    #[error("snapshot sketch has {found} cells but the configuration asks for {expected}")]
    SnapshotMismatch {
        /// Cells the configuration asks for.
        expected: usize,
        /// Cells in the snapshot.
        found: usize,
    },
}
