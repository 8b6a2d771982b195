//! The `alertmanager` sink: a group as one `POST /api/v2/alerts` to one Alertmanager
//! (a sink with several has one endpoint, and one worker, each).

use chrono::{DateTime, Utc};
use vigie_domain::alert::Notification;

use super::{AlertSink, HttpEndpoint, SendFuture};
use crate::format;

/// POSTs [`format::alertmanager::alerts`] to `<base URL>/api/v2/alerts`.
pub struct AlertmanagerSink {
    http: HttpEndpoint,
    resend_secs: u64,
}

impl AlertmanagerSink {
    /// The Alertmanager at base URL `http`; `resend_secs` is the policy's re-notify
    /// interval, which sets how long Alertmanager keeps a firing alert not re-sent.
    pub fn new(http: HttpEndpoint, resend_secs: u64) -> AlertmanagerSink {
        AlertmanagerSink { http, resend_secs }
    }
}

impl AlertSink for AlertmanagerSink {
    fn send<'a>(
        &'a self,
        notifications: &'a [&'a Notification],
        now: DateTime<Utc>,
    ) -> SendFuture<'a> {
        let url = format!("{}/api/v2/alerts", self.http.url().trim_end_matches('/'));
        let body = format::alertmanager::alerts(notifications, now, self.resend_secs).to_string();
        Box::pin(self.http.send(self.http.post(&url).body(body), now))
    }
}
