//! The crate's error type.

use std::path::PathBuf;

use tantivy::TantivyError;

/// What went wrong in the post index, named for the operation that failed.
#[derive(thiserror::Error, Debug)]
pub enum IndexError {
    /// The index configuration is inconsistent.
    #[error("invalid index configuration: {message}")]
    Config {
        /// Which setting is wrong and why.
        message: String,
    },
    /// The data dir could not be created.
    #[error("failed to create index directory {}", dir.display())]
    CreateDir {
        /// The data dir.
        dir: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The index could not be opened or created.
    #[error("failed to open the index in {}", dir.display())]
    OpenIndex {
        /// The data dir.
        dir: PathBuf,
        /// Tantivy's error.
        #[source]
        source: TantivyError,
    },
    /// A read-only open found no index.
    #[error("no index in {} (start the daemon with this data dir first)", dir.display())]
    NoIndex {
        /// The data dir.
        dir: PathBuf,
    },
    /// The index on disk was built with another schema than this version writes.
    #[error(
        "the index in {} has an incompatible schema ({difference}); \
         use a new data dir and replay the posts",
        dir.display()
    )]
    SchemaMismatch {
        /// The data dir.
        dir: PathBuf,
        /// Which fields differ.
        difference: String,
    },
    /// The index writer could not be created, typically because another process holds it.
    #[error("failed to open the index writer in {} (is another vigie daemon using it?)", dir.display())]
    OpenWriter {
        /// The data dir.
        dir: PathBuf,
        /// Tantivy's error.
        #[source]
        source: TantivyError,
    },
    /// The payload of the last commit is not valid JSON of the expected shape.
    #[error("the commit payload of the index is unreadable")]
    CorruptPayload {
        /// The decoding error.
        #[source]
        source: serde_json::Error,
    },
    /// The last commit was written by a newer version, whose payload this one would lose.
    #[error(
        "the index was committed with payload version {found}, this build reads up to {supported}"
    )]
    PayloadVersion {
        /// The version found in the index.
        found: u32,
        /// The newest version this build understands.
        supported: u32,
    },
    /// A post could not be handed to the writer (the writer's threads have failed).
    #[error("failed to add post {id} to the index")]
    Write {
        /// The post's id.
        id: String,
        /// Tantivy's error.
        #[source]
        source: TantivyError,
    },
    /// The retention delete could not be prepared.
    #[error("failed to apply index retention")]
    Retention {
        /// Tantivy's error.
        #[source]
        source: TantivyError,
    },
    /// The commit failed; the posts since the previous commit are not durable.
    #[error("failed to commit the index")]
    Commit {
        /// Tantivy's error.
        #[source]
        source: TantivyError,
    },
    /// The searcher could not be refreshed after a commit.
    #[error("failed to reload the index reader")]
    Reload {
        /// Tantivy's error.
        #[source]
        source: TantivyError,
    },
    /// The query is not valid; the message is meant for the user.
    #[error("{message}")]
    Query {
        /// What is wrong with the query.
        message: String,
    },
    /// Executing a search or reading its hits failed.
    #[error("search failed")]
    Search {
        /// Tantivy's error.
        #[source]
        source: TantivyError,
    },
    /// A stored document lacks a field every indexed post has.
    #[error("stored post is missing its {field} field")]
    CorruptDocument {
        /// The missing field.
        field: &'static str,
    },
}
