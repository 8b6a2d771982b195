//! The crate's one error type.

/// What can fail in the alert policy: configuration, silences.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// The `[alert]` configuration breaks a rule; the message names the key.
    #[error("invalid alert configuration: {0}")]
    InvalidConfig(String),
    /// A record could not be encoded as JSON.
    #[error("cannot encode a record")]
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
}
