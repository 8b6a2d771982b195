//! What each index commit records besides the posts.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use vigie_domain::Checkpoint;

use crate::IndexError;

/// The JSON stored in Tantivy's commit payload, written atomically with the posts.
///
/// Fields added after version 1 carry `#[serde(default)]`, so an index committed by an
/// older build still opens; unknown fields are ignored on read, but [`PostIndex`] refuses
/// a payload whose `version` is newer than [`CommitPayload::CURRENT_VERSION`], because its
/// next commit would drop what it does not understand.
///
/// [`PostIndex`]: crate::PostIndex
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CommitPayload {
    /// Layout version of this payload.
    pub version: u32,
    /// The source offsets whose posts are all in the index.
    pub checkpoint: Checkpoint,
    /// The newest `created_at` indexed so far; retention counts back from it.
    #[serde(default)]
    pub newest_created_at: Option<DateTime<Utc>>,
}

impl Default for CommitPayload {
    fn default() -> Self {
        CommitPayload {
            version: CommitPayload::CURRENT_VERSION,
            checkpoint: Checkpoint::new(),
            newest_created_at: None,
        }
    }
}

impl CommitPayload {
    /// The version this build writes.
    pub const CURRENT_VERSION: u32 = 1;

    /// Decodes the payload of the last commit; a fresh index has none.
    pub(crate) fn decode(payload: Option<&str>) -> Result<CommitPayload, IndexError> {
        let Some(json) = payload else {
            return Ok(CommitPayload::default());
        };
        let decoded: CommitPayload =
            serde_json::from_str(json).map_err(|source| IndexError::CorruptPayload { source })?;
        if decoded.version > CommitPayload::CURRENT_VERSION {
            return Err(IndexError::PayloadVersion {
                found: decoded.version,
                supported: CommitPayload::CURRENT_VERSION,
            });
        }
        Ok(decoded)
    }

    /// Encodes the payload as JSON.
    pub(crate) fn encode(&self) -> String {
        serde_json::to_string(self)
            .expect("a payload of maps, integers and dates always serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reads_older_and_refuses_newer_payloads() {
        let mut payload = CommitPayload::default();
        payload.checkpoint.advance("posts", 3, 42);
        payload.newest_created_at = Some("2024-05-01T12:00:00Z".parse().unwrap());
        let json = payload.encode();
        assert_eq!(CommitPayload::decode(Some(&json)).unwrap(), payload);

        let v1_without_newest = r#"{"version":1,"checkpoint":{"posts":{"0":7}}}"#;
        let old = CommitPayload::decode(Some(v1_without_newest)).unwrap();
        assert_eq!(old.checkpoint.next_offset("posts", 0), Some(7));
        assert_eq!(old.newest_created_at, None);

        let newer = r#"{"version":2,"checkpoint":{},"detector":{}}"#;
        assert!(matches!(
            CommitPayload::decode(Some(newer)),
            Err(IndexError::PayloadVersion {
                found: 2,
                supported: 1
            })
        ));
        assert!(matches!(
            CommitPayload::decode(Some("{")),
            Err(IndexError::CorruptPayload { .. })
        ));
        assert_eq!(
            CommitPayload::decode(None).unwrap(),
            CommitPayload::default()
        );
    }
}
