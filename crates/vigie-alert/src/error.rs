//! The crate's one error type.

use std::path::PathBuf;

/// What can fail in alerting: configuration, the outbox on disk, signatures.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// The `[alert]` configuration breaks a rule; the message names the key.
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
    /// A silence's regular expression does not compile.
    #[error("invalid silence matcher regex {pattern:?}")]
    SilenceRegex {
        /// The pattern as given.
        pattern: String,
        /// The compiler's complaint.
        #[source]
        source: regex::Error,
    },
    /// A silence is malformed (no matcher, ends before it starts, …).
    #[error("invalid silence: {0}")]
    InvalidSilence(String),
    /// A new silence would exceed `[alert.silences] max_count` and none has expired.
    #[error("too many silences: at most {max} are kept (alert.silences.max_count); remove one or wait for one to expire")]
    TooManySilences {
        /// The configured maximum.
        max: usize,
    },
    /// A webhook signature is missing, malformed or does not match.
    #[error("webhook signature rejected: {0}")]
    BadSignature(&'static str),
}
