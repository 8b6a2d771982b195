//! The `file` sink: one JSON line per notification appended to a file, a group with one
//! write and one fsync (off the async runtime).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;

use chrono::{DateTime, Utc};
use vigie_domain::alert::Notification;

use super::{AlertSink, SendFailure, SendFuture};
use crate::format;

/// Appends [`format::json_line`]s to `path`, fsync'd.
pub struct FileSink {
    path: PathBuf,
}

impl FileSink {
    /// A sink appending to `path` (created when missing).
    pub fn new(path: &str) -> FileSink {
        FileSink {
            path: PathBuf::from(path),
        }
    }
}

impl AlertSink for FileSink {
    fn send<'a>(
        &'a self,
        notifications: &'a [&'a Notification],
        _now: DateTime<Utc>,
    ) -> SendFuture<'a> {
        let path = self.path.clone();
        write_lines(notifications, move |lines| {
            let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
            file.write_all(lines)?;
            file.sync_data()
        })
    }
}

/// Writes the notifications as JSON lines, each ending with a line break, with one call
/// of `write` on the blocking pool; a failure is retried.
pub(super) fn write_lines(
    notifications: &[&Notification],
    write: impl FnOnce(&[u8]) -> std::io::Result<()> + Send + 'static,
) -> SendFuture<'static> {
    let mut lines = String::new();
    for notification in notifications {
        lines.push_str(&format::json_line(notification));
        lines.push('\n');
    }
    Box::pin(async move {
        match tokio::task::spawn_blocking(move || write(lines.as_bytes())).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(err)) => Err(SendFailure::retry(format!("write failed: {err}"))),
            Err(err) => Err(SendFailure::retry(format!("writer task failed: {err}"))),
        }
    })
}
