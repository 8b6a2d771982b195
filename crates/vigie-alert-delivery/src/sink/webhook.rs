//! The `webhook` sink: one JSON POST per notification, signed per Standard Webhooks
//! (`webhook-id` is the notification id, the same on every retry, so receivers
//! de-duplicate on it).

use chrono::{DateTime, Utc};
use vigie_domain::alert::Notification;

use super::{AlertSink, HttpEndpoint, SendFuture};
use crate::format;
use crate::signing::WebhookSecret;

/// POSTs [`format::webhook_body`] with `webhook-id`, `webhook-timestamp` and, with a
/// secret, `webhook-signature`.
pub struct WebhookSink {
    http: HttpEndpoint,
    secret: Option<WebhookSecret>,
}

impl WebhookSink {
    /// A webhook to `http`, signed with `secret` when there is one.
    pub fn new(http: HttpEndpoint, secret: Option<WebhookSecret>) -> WebhookSink {
        WebhookSink { http, secret }
    }
}

impl AlertSink for WebhookSink {
    fn send<'a>(
        &'a self,
        notifications: &'a [&'a Notification],
        now: DateTime<Utc>,
    ) -> SendFuture<'a> {
        Box::pin(async move {
            debug_assert_eq!(
                notifications.len(),
                1,
                "webhooks send one notification each"
            );
            let notification = notifications[0];
            let body = serde_json::to_vec(&format::webhook_body(notification))
                .expect("a notification always serializes");
            let timestamp = now.timestamp();
            let mut request = self
                .http
                .post(self.http.url())
                .header("webhook-id", &notification.id)
                .header("webhook-timestamp", timestamp.to_string());
            if let Some(secret) = &self.secret {
                request = request.header(
                    "webhook-signature",
                    secret.sign(&notification.id, timestamp, &body),
                );
            }
            self.http.send(request.body(body), now).await
        })
    }
}
