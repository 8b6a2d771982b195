//! The `slack` sink: a group as one Block Kit message to an incoming webhook (the URL is
//! the credential).

use chrono::{DateTime, Utc};
use vigie_domain::alert::Notification;

use super::{AlertSink, HttpEndpoint, SendFuture};
use crate::format;

/// POSTs [`format::slack::message`].
pub struct SlackSink {
    http: HttpEndpoint,
}

impl SlackSink {
    /// A Slack incoming webhook at `http`.
    pub fn new(http: HttpEndpoint) -> SlackSink {
        SlackSink { http }
    }
}

impl AlertSink for SlackSink {
    fn send<'a>(
        &'a self,
        notifications: &'a [&'a Notification],
        now: DateTime<Utc>,
    ) -> SendFuture<'a> {
        let body = format::slack::message(notifications).to_string();
        Box::pin(
            self.http
                .send(self.http.post(self.http.url()).body(body), now),
        )
    }
}
