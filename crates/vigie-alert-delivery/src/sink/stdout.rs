//! The `stdout` sink: one JSON line per notification on standard output, a group with
//! one write (off the async runtime), so lines never interleave.

use std::io::Write;

use chrono::{DateTime, Utc};
use vigie_domain::alert::Notification;

use super::file::write_lines;
use super::{AlertSink, SendFuture};

/// Writes [`crate::format::json_line`]s to standard output.
pub struct StdoutSink;

impl AlertSink for StdoutSink {
    fn send<'a>(
        &'a self,
        notifications: &'a [&'a Notification],
        _now: DateTime<Utc>,
    ) -> SendFuture<'a> {
        write_lines(notifications, |lines| {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(lines)?;
            stdout.flush()
        })
    }
}
