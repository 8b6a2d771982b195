//! The crate's one error type.

use std::path::PathBuf;

/// What can fail in delivery: configuration, the outbox on disk, signatures.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// `[[alert.sinks]]` or `[alert.delivery]` breaks a rule; the message names the key.
    #[error("invalid alert configuration: {0}")]
    InvalidConfig(String),
    /// The outbox directory or one of its files could not be read or written.
    #[error("outbox I/O failed on {path}")]
    OutboxIo {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A record could not be encoded as JSON.
    #[error("cannot encode a notification")]
    Encode(#[source] serde_json::Error),
    /// A webhook signature is missing, malformed or does not match.
    #[error("webhook signature rejected: {0}")]
    BadSignature(&'static str),
}
