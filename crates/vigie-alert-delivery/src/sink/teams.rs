//! The `teams` sink: a group as one Adaptive Card to a Microsoft Teams workflow webhook
//! (the URL is the credential).

use chrono::{DateTime, Utc};
use vigie_domain::alert::Notification;

use super::{AlertSink, HttpEndpoint, SendFuture};
use crate::format;

/// POSTs [`format::teams::message`].
pub struct TeamsSink {
    http: HttpEndpoint,
}

impl TeamsSink {
    /// A Teams workflow webhook at `http`.
    pub fn new(http: HttpEndpoint) -> TeamsSink {
        TeamsSink { http }
    }
}

impl AlertSink for TeamsSink {
    fn send<'a>(
        &'a self,
        notifications: &'a [&'a Notification],
        now: DateTime<Utc>,
    ) -> SendFuture<'a> {
        let body = format::teams::message(notifications).to_string();
        Box::pin(
            self.http
                .send(self.http.post(self.http.url()).body(body), now),
        )
    }
}
