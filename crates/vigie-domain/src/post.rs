//! The decoded post.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Counts of engagement reported by the platform, when the producer knows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EngagementMetrics {
    /// Likes, favourites or reactions.
    pub likes: Option<u64>,
    /// Shares, reposts or retweets.
    pub shares: Option<u64>,
    /// Views or impressions.
    pub views: Option<u64>,
    /// Replies or comments.
    pub replies: Option<u64>,
}

impl EngagementMetrics {
    /// Returns true when no count is known.
    pub fn is_empty(&self) -> bool {
        self.likes.is_none()
            && self.shares.is_none()
            && self.views.is_none()
            && self.replies.is_none()
    }
}

/// Where a post (or a rejected input) came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Origin {
    /// A Kafka message.
    Kafka {
        /// Topic name.
        topic: String,
        /// Partition number.
        partition: i32,
        /// Offset of the message in its partition.
        offset: i64,
    },
    /// A line of a file (or of standard input, with path `-`).
    File {
        /// Path as given by the user.
        path: String,
        /// 1-based line number.
        line: u64,
    },
}

impl Origin {
    /// Returns a short human-readable form: `topic/partition@offset` or `path:line`.
    pub fn describe(&self) -> String {
        match self {
            Origin::Kafka {
                topic,
                partition,
                offset,
            } => format!("{topic}/{partition}@{offset}"),
            Origin::File { path, line } => format!("{path}:{line}"),
        }
    }

    /// Returns the source name used as the index's `source` field: the topic or the path.
    pub fn source_name(&self) -> &str {
        match self {
            Origin::Kafka { topic, .. } => topic,
            Origin::File { path, .. } => path,
        }
    }
}

/// One social-media post, validated.
///
/// Invariants (upheld by [`crate::decode_post`]): `id` and `text` are non-empty, `text` is
/// within the configured size limit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Post {
    /// Platform id; integers are kept in their decimal form.
    pub id: String,
    /// The post's text.
    pub text: String,
    /// Event time: when the post was published, not when Vigie saw it.
    pub created_at: DateTime<Utc>,
    /// Author id or handle, as the producer sent it.
    pub author: Option<String>,
    /// ISO 639-1 language code given by the producer; trusted by the analyzer.
    pub lang: Option<String>,
    /// Platform name (`twitter`, `telegram`, …).
    pub platform: Option<String>,
    /// Link to the post itself.
    pub url: Option<String>,
    /// Id of the post this one replies to.
    pub reply_to: Option<String>,
    /// Id of the post this one reposts.
    pub repost_of: Option<String>,
    /// Hashtags given by the producer (without `#`); the analyzer adds those in the text.
    pub hashtags: Vec<String>,
    /// Links given by the producer; the analyzer adds those in the text.
    pub urls: Vec<String>,
    /// Mentioned accounts given by the producer (without `@`).
    pub mentions: Vec<String>,
    /// Engagement counts, when known.
    pub metrics: EngagementMetrics,
    /// Where the post was read from.
    pub origin: Origin,
}

impl Post {
    /// Returns a minimal post, for tests and benchmarks.
    pub fn for_test(id: &str, text: &str, created_at: DateTime<Utc>) -> Post {
        Post {
            id: id.to_owned(),
            text: text.to_owned(),
            created_at,
            author: None,
            lang: None,
            platform: None,
            url: None,
            reply_to: None,
            repost_of: None,
            hashtags: Vec::new(),
            urls: Vec::new(),
            mentions: Vec::new(),
            metrics: EngagementMetrics::default(),
            origin: Origin::File {
                path: "test".into(),
                line: 0,
            },
        }
    }
}
