//! Decoding and validation of one input message (a Kafka message or a line of a file).
//!
//! Every input ends as either a [`Post`] or a [`Rejection`] naming one reason from a closed
//! set, so rejections can be counted by reason and kept with their original bytes by the
//! source (dead-letter topic, `rejected.jsonl`). Unknown fields are ignored, which is what
//! keeps evaluation labels (`label_*`) out of the pipeline.

use std::fmt;

use chrono::{DateTime, TimeZone, Utc};
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;

use crate::{EngagementMetrics, Origin, Post};

/// Size limits applied while decoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeLimits {
    /// Largest accepted `text`, in bytes of UTF-8.
    pub max_text_bytes: usize,
    /// Largest accepted message, in bytes; larger ones are rejected before parsing.
    pub max_message_bytes: usize,
    /// Latest accepted `created_at`. Sources set it from the wall clock plus a tolerance,
    /// because one post dated years ahead would otherwise become the event-time "now" of
    /// retention and detection. `None` accepts any time (this crate reads no clock).
    pub not_after: Option<DateTime<Utc>>,
}

impl Default for DecodeLimits {
    fn default() -> Self {
        DecodeLimits {
            max_text_bytes: 64 * 1024,
            max_message_bytes: 1024 * 1024,
            not_after: None,
        }
    }
}

/// Why an input was rejected. The set is closed so it can be a metric label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectReason {
    /// The bytes are not valid UTF-8.
    InvalidUtf8,
    /// The bytes are not JSON.
    NotJson,
    /// Valid JSON, but not an object.
    NotObject,
    /// A required field (`id`, `text`, `created_at`) is absent or null.
    MissingField,
    /// A field has the wrong type (e.g. `hashtags` is a number).
    BadField,
    /// `created_at` is neither RFC 3339 nor plausible epoch seconds/milliseconds.
    BadTime,
    /// The message or its text exceeds the configured limit.
    TooLarge,
    /// `text` is empty or only white space.
    EmptyText,
}

impl RejectReason {
    /// Every reason, for pre-registering metric series.
    pub const ALL: [RejectReason; 8] = [
        RejectReason::InvalidUtf8,
        RejectReason::NotJson,
        RejectReason::NotObject,
        RejectReason::MissingField,
        RejectReason::BadField,
        RejectReason::BadTime,
        RejectReason::TooLarge,
        RejectReason::EmptyText,
    ];

    /// Returns the snake_case name used in metrics, headers and `rejected.jsonl`.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectReason::InvalidUtf8 => "invalid_utf8",
            RejectReason::NotJson => "not_json",
            RejectReason::NotObject => "not_object",
            RejectReason::MissingField => "missing_field",
            RejectReason::BadField => "bad_field",
            RejectReason::BadTime => "bad_time",
            RejectReason::TooLarge => "too_large",
            RejectReason::EmptyText => "empty_text",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A rejected input: the reason and a human-readable detail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The reason, from a closed set.
    pub reason: RejectReason,
    /// What exactly was wrong, e.g. `missing field "created_at"`.
    pub detail: String,
}

impl Rejection {
    fn new(reason: RejectReason, detail: impl Into<String>) -> Rejection {
        Rejection {
            reason,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.detail)
    }
}

impl std::error::Error for Rejection {}

/// The wire form. Every field is optional here so that a missing field is reported as
/// [`RejectReason::MissingField`] rather than as a serde error; `label_*` and other
/// unknown fields are skipped without being materialised.
#[derive(Deserialize)]
struct WirePost {
    id: Option<WireId>,
    text: Option<String>,
    created_at: Option<WireTime>,
    author: Option<WireId>,
    lang: Option<String>,
    platform: Option<String>,
    url: Option<String>,
    reply_to: Option<WireId>,
    repost_of: Option<WireId>,
    #[serde(default)]
    hashtags: Option<Vec<String>>,
    #[serde(default)]
    urls: Option<Vec<String>>,
    #[serde(default)]
    mentions: Option<Vec<String>>,
    #[serde(default)]
    metrics: Option<WireMetrics>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WireId {
    Text(String),
    Unsigned(u64),
    Signed(i64),
}

impl WireId {
    fn into_string(self) -> String {
        match self {
            WireId::Text(s) => s,
            WireId::Unsigned(n) => n.to_string(),
            WireId::Signed(n) => n.to_string(),
        }
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WireTime {
    Text(String),
    Integer(i64),
    Float(f64),
    // Anything else (bool, object…) is caught here so the error says "bad time".
    Other(IgnoredAny),
}

#[derive(Deserialize)]
struct WireMetrics {
    likes: Option<u64>,
    shares: Option<u64>,
    views: Option<u64>,
    replies: Option<u64>,
}

/// Decodes and validates one message.
///
/// `origin` is stored in the post; it does not influence validation.
pub fn decode_post(bytes: &[u8], limits: &DecodeLimits, origin: Origin) -> Result<Post, Rejection> {
    if bytes.len() > limits.max_message_bytes {
        return Err(Rejection::new(
            RejectReason::TooLarge,
            format!(
                "message is {} bytes, limit is {}",
                bytes.len(),
                limits.max_message_bytes
            ),
        ));
    }
    let text = std::str::from_utf8(bytes).map_err(|err| {
        Rejection::new(
            RejectReason::InvalidUtf8,
            format!("invalid UTF-8 at byte {}", err.valid_up_to()),
        )
    })?;
    let trimmed = text.trim_start();
    if !trimmed.starts_with('{') {
        return Err(match serde_json::from_str::<IgnoredAny>(text) {
            Ok(_) => Rejection::new(RejectReason::NotObject, "JSON value is not an object"),
            Err(err) => Rejection::new(RejectReason::NotJson, err.to_string()),
        });
    }
    let wire: WirePost = serde_json::from_str(text).map_err(|err| {
        if err.is_data() {
            // A well-formed object with a field of the wrong type; say which one.
            Rejection::new(
                RejectReason::BadField,
                field_type_error(text).unwrap_or_else(|| err.to_string()),
            )
        } else {
            Rejection::new(RejectReason::NotJson, err.to_string())
        }
    })?;
    validate(wire, limits, origin)
}

/// The JSON shape a known field must have.
#[derive(Clone, Copy)]
enum Expected {
    Id,
    Text,
    TextList,
    Counts,
}

impl Expected {
    fn fits(self, value: &Value) -> bool {
        match (self, value) {
            (_, Value::Null) => true,
            (Expected::Id, v) => v.is_string() || v.is_number(),
            (Expected::Text, v) => v.is_string(),
            (Expected::TextList, Value::Array(items)) => items.iter().all(Value::is_string),
            (Expected::TextList, _) => false,
            (Expected::Counts, Value::Object(counts)) => {
                counts.values().all(|c| c.is_u64() || c.is_null())
            }
            (Expected::Counts, _) => false,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Expected::Id => "a string or an integer",
            Expected::Text => "a string",
            Expected::TextList => "a list of strings",
            Expected::Counts => "an object of non-negative integers",
        }
    }
}

/// Finds the first field whose JSON type does not fit, for a precise error message.
fn field_type_error(text: &str) -> Option<String> {
    let Value::Object(map) = serde_json::from_str::<Value>(text).ok()? else {
        return None;
    };
    use Expected::*;
    let fields = [
        ("id", Id),
        ("text", Text),
        ("author", Id),
        ("lang", Text),
        ("platform", Text),
        ("url", Text),
        ("reply_to", Id),
        ("repost_of", Id),
        ("hashtags", TextList),
        ("urls", TextList),
        ("mentions", TextList),
        ("metrics", Counts),
    ];
    for (name, expected) in fields {
        if let Some(value) = map.get(name) {
            if !expected.fits(value) {
                return Some(format!("field \"{name}\" must be {}", expected.describe()));
            }
        }
    }
    None
}

fn validate(wire: WirePost, limits: &DecodeLimits, origin: Origin) -> Result<Post, Rejection> {
    let id = wire
        .id
        .map(WireId::into_string)
        .filter(|id| !id.trim().is_empty());
    let id =
        id.ok_or_else(|| Rejection::new(RejectReason::MissingField, "missing field \"id\""))?;
    let text = wire
        .text
        .ok_or_else(|| Rejection::new(RejectReason::MissingField, "missing field \"text\""))?;
    let created_at = wire.created_at.ok_or_else(|| {
        Rejection::new(RejectReason::MissingField, "missing field \"created_at\"")
    })?;
    if text.len() > limits.max_text_bytes {
        return Err(Rejection::new(
            RejectReason::TooLarge,
            format!(
                "text is {} bytes, limit is {}",
                text.len(),
                limits.max_text_bytes
            ),
        ));
    }
    if text.trim().is_empty() {
        return Err(Rejection::new(RejectReason::EmptyText, "text is empty"));
    }
    let created_at = parse_time(created_at)?;
    if let Some(not_after) = limits.not_after {
        if created_at > not_after {
            return Err(Rejection::new(
                RejectReason::BadTime,
                format!(
                    "created_at {} is in the future (latest accepted: {})",
                    created_at.to_rfc3339(),
                    not_after.to_rfc3339()
                ),
            ));
        }
    }
    let metrics = wire
        .metrics
        .map(|m| EngagementMetrics {
            likes: m.likes,
            shares: m.shares,
            views: m.views,
            replies: m.replies,
        })
        .unwrap_or_default();
    let non_empty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
    Ok(Post {
        id,
        text,
        created_at,
        author: non_empty(wire.author.map(WireId::into_string)),
        lang: non_empty(wire.lang).map(|l| l.trim().to_ascii_lowercase()),
        platform: non_empty(wire.platform),
        url: non_empty(wire.url),
        reply_to: non_empty(wire.reply_to.map(WireId::into_string)),
        repost_of: non_empty(wire.repost_of.map(WireId::into_string)),
        hashtags: wire.hashtags.unwrap_or_default(),
        urls: wire.urls.unwrap_or_default(),
        mentions: wire.mentions.unwrap_or_default(),
        metrics,
        origin,
    })
}

/// Epoch values at or above this are read as milliseconds (1e11 s is the year 5138).
const EPOCH_MILLIS_THRESHOLD: i64 = 100_000_000_000;

fn parse_time(value: WireTime) -> Result<DateTime<Utc>, Rejection> {
    let bad = |detail: String| Rejection::new(RejectReason::BadTime, detail);
    let from_epoch = |n: i64| {
        // `unsigned_abs`: `i64::MIN.abs()` overflows, and hostile input can send it.
        let parsed = if n.unsigned_abs() >= EPOCH_MILLIS_THRESHOLD.unsigned_abs() {
            Utc.timestamp_millis_opt(n).single()
        } else {
            Utc.timestamp_opt(n, 0).single()
        };
        parsed.ok_or_else(|| bad(format!("epoch value {n} is out of range")))
    };
    match value {
        WireTime::Text(s) => DateTime::parse_from_rfc3339(s.trim())
            .map(|t| t.with_timezone(&Utc))
            .map_err(|err| bad(format!("created_at {s:?} is not RFC 3339: {err}"))),
        WireTime::Integer(n) => from_epoch(n),
        WireTime::Float(f) if f.is_finite() => {
            if f.abs() >= EPOCH_MILLIS_THRESHOLD as f64 {
                from_epoch(f as i64)
            } else {
                let secs = f.floor();
                let nanos = ((f - secs) * 1e9).round() as u32;
                Utc.timestamp_opt(secs as i64, nanos.min(999_999_999))
                    .single()
                    .ok_or_else(|| bad(format!("epoch value {f} is out of range")))
            }
        }
        WireTime::Float(f) => Err(bad(format!("epoch value {f} is not finite"))),
        WireTime::Other(_) => Err(bad(
            "created_at must be an RFC 3339 string or epoch seconds/milliseconds".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin() -> Origin {
        Origin::File {
            path: "t.jsonl".into(),
            line: 1,
        }
    }

    fn decode(s: &[u8]) -> Result<Post, Rejection> {
        decode_post(s, &DecodeLimits::default(), origin())
    }

    fn reason(s: &[u8]) -> RejectReason {
        decode(s).unwrap_err().reason
    }

    #[test]
    fn decodes_a_full_post_and_ignores_labels() {
        let post = decode(
            br##"{"id": 42, "text": "Hello #World", "created_at": "2015-11-26T10:00:00+01:00",
                "author": "u_1", "lang": "EN", "hashtags": ["World"], "metrics": {"likes": 3},
                "label_event": "x", "label_narrative": {"nested": [1,2]}}"##,
        )
        .unwrap();
        assert_eq!(post.id, "42");
        assert_eq!(post.created_at.to_rfc3339(), "2015-11-26T09:00:00+00:00");
        assert_eq!(post.lang.as_deref(), Some("en"));
        assert_eq!(post.hashtags, vec!["World"]);
        assert_eq!(post.metrics.likes, Some(3));
    }

    #[test]
    fn reads_epoch_seconds_and_milliseconds() {
        let s = decode(br#"{"id":"a","text":"t","created_at":1448532000}"#).unwrap();
        let ms = decode(br#"{"id":"a","text":"t","created_at":1448532000000}"#).unwrap();
        let f = decode(br#"{"id":"a","text":"t","created_at":1448532000.5}"#).unwrap();
        assert_eq!(s.created_at, ms.created_at);
        assert_eq!(s.created_at.to_rfc3339(), "2015-11-26T10:00:00+00:00");
        assert_eq!(f.created_at.timestamp_millis(), 1448532000500);
    }

    #[test]
    fn names_every_rejection_reason() {
        assert_eq!(reason(b"\xff\xfe{}"), RejectReason::InvalidUtf8);
        assert_eq!(reason(b"{not json"), RejectReason::NotJson);
        assert_eq!(reason(b"hello"), RejectReason::NotJson);
        assert_eq!(reason(b"[1, 2]"), RejectReason::NotObject);
        assert_eq!(reason(b"\"text\""), RejectReason::NotObject);
        assert_eq!(
            reason(br#"{"text":"t","created_at":1}"#),
            RejectReason::MissingField
        );
        assert_eq!(
            reason(br#"{"id":"a","created_at":1}"#),
            RejectReason::MissingField
        );
        assert_eq!(
            reason(br#"{"id":"a","text":"t"}"#),
            RejectReason::MissingField
        );
        assert_eq!(
            reason(br#"{"id":null,"text":"t","created_at":1}"#),
            RejectReason::MissingField
        );
        assert_eq!(
            reason(br#"{"id":"a","text":"t","created_at":"yesterday"}"#),
            RejectReason::BadTime
        );
        assert_eq!(
            reason(br#"{"id":"a","text":"t","created_at":true}"#),
            RejectReason::BadTime
        );
        assert_eq!(
            reason(br#"{"id":"a","text":"  ","created_at":1}"#),
            RejectReason::EmptyText
        );
        assert_eq!(
            reason(br#"{"id":true,"text":"t","created_at":1}"#),
            RejectReason::BadField
        );
        let err = decode(br#"{"id":"a","text":"t","created_at":1,"hashtags":5}"#).unwrap_err();
        assert_eq!(err.reason, RejectReason::BadField);
        assert!(err.detail.contains("hashtags"), "{err}");
    }

    #[test]
    fn enforces_size_limits() {
        let limits = DecodeLimits {
            max_text_bytes: 10,
            max_message_bytes: 200,
            not_after: None,
        };
        let long_text = br#"{"id":"a","text":"0123456789ab","created_at":1}"#;
        let err = decode_post(long_text, &limits, origin()).unwrap_err();
        assert_eq!(err.reason, RejectReason::TooLarge);
        let huge = vec![b' '; 201];
        assert_eq!(
            decode_post(&huge, &limits, origin()).unwrap_err().reason,
            RejectReason::TooLarge
        );
    }

    #[test]
    fn rejects_posts_dated_after_the_limit() {
        let not_after = Utc.timestamp_opt(1_448_532_000, 0).single();
        let limits = DecodeLimits {
            not_after,
            ..DecodeLimits::default()
        };
        let on_time = br#"{"id":"a","text":"t","created_at":1448532000}"#;
        assert!(decode_post(on_time, &limits, origin()).is_ok());
        let future = br#"{"id":"a","text":"t","created_at":"2099-01-01T00:00:00Z"}"#;
        let err = decode_post(future, &limits, origin()).unwrap_err();
        assert_eq!(err.reason, RejectReason::BadTime);
        assert!(err.detail.contains("future"), "{err}");
    }

    #[test]
    fn extreme_epoch_values_are_bad_times_not_panics() {
        for value in [i64::MIN.to_string(), i64::MAX.to_string(), "-1e300".into()] {
            let line = format!(r#"{{"id":"a","text":"t","created_at":{value}}}"#);
            assert_eq!(reason(line.as_bytes()), RejectReason::BadTime, "{value}");
        }
    }

    #[test]
    fn missing_field_detail_names_the_field() {
        let err = decode(br#"{"id":"a","text":"t"}"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "missing_field: missing field \"created_at\""
        );
    }
}
