//! The [`AlertSink`] contract and one module per sink kind: [`webhook`] (signed),
//! [`slack`], [`teams`], [`alertmanager`], [`file`](mod@file) and [`stdout`]. A sink turns a group
//! of notifications into one request (or one write) with the body builders of
//! [`format`](crate::format), sends it and says how it went; the workers
//! ([`crate::delivery`]) decide when, retry what failed and record the outcome.

pub mod alertmanager;
pub mod file;
pub mod slack;
pub mod stdout;
pub mod teams;
pub mod webhook;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use chrono::{DateTime, Utc};
use vigie_domain::alert::{truncate_chars, Notification};
use vigie_domain::Secret;

use crate::config::{SinkConfig, SinkKind};
use crate::error::DeliveryError;
use crate::signing::WebhookSecret;

/// What [`AlertSink::send`] returns: a future that owns nothing but borrows.
pub type SendFuture<'a> = Pin<Box<dyn Future<Output = Result<(), SendFailure>> + Send + 'a>>;

/// One sink endpoint: sends a group of notifications and reports the outcome.
///
/// The worker of the endpoint calls [`AlertSink::send`] with at most
/// [`SinkKind::max_group`] notifications, all of one group key, each alert's in order (a
/// resolve never comes before its firing), and with `now`, the wall clock of this attempt
/// (`webhook-timestamp`, Alertmanager's `endsAt`, `Retry-After` dates). A call may run
/// while others are in flight, up to the sink's `max_concurrency`. `Ok` means the receiver
/// took the whole group; an error says whether to retry and, when the receiver said so,
/// after how long. A sink never retries by itself and quotes no secret in its messages.
pub trait AlertSink: Send + Sync {
    /// Sends one group; see the trait docs.
    fn send<'a>(
        &'a self,
        notifications: &'a [&'a Notification],
        now: DateTime<Utc>,
    ) -> SendFuture<'a>;
}

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq)]
pub struct SendFailure {
    /// What happened, for logs and `dead-letter.jsonl` (secrets scrubbed).
    pub message: String,
    /// Whether trying again may work (transport errors, timeouts, 408, 425, 429, 5xx).
    pub retryable: bool,
    /// The delay the receiver asked for (`Retry-After`).
    pub retry_after: Option<Duration>,
}

impl SendFailure {
    /// Returns a retryable failure.
    pub fn retry(message: String) -> SendFailure {
        SendFailure {
            message,
            retryable: true,
            retry_after: None,
        }
    }
}

/// Builds the sink of one endpoint of `sink` (`None` for file and stdout sinks).
/// `resend_secs` is the policy's re-notify interval (Alertmanager's `endsAt`).
pub fn build(
    sink: &SinkConfig,
    endpoint: Option<Secret>,
    resend_secs: u64,
) -> Result<Box<dyn AlertSink>, DeliveryError> {
    let http = |endpoint: Option<Secret>| -> Result<HttpEndpoint, DeliveryError> {
        let url = endpoint.expect("HTTP sinks have an endpoint");
        HttpEndpoint::new(sink, url)
    };
    Ok(match sink.kind {
        SinkKind::Webhook => {
            let secret = if sink.secret.is_empty() {
                None
            } else {
                Some(WebhookSecret::parse(sink.secret.expose())?)
            };
            Box::new(webhook::WebhookSink::new(http(endpoint)?, secret))
        }
        SinkKind::Slack => Box::new(slack::SlackSink::new(http(endpoint)?)),
        SinkKind::Teams => Box::new(teams::TeamsSink::new(http(endpoint)?)),
        SinkKind::Alertmanager => Box::new(alertmanager::AlertmanagerSink::new(
            http(endpoint)?,
            resend_secs,
        )),
        SinkKind::File => Box::new(file::FileSink::new(&sink.path)),
        SinkKind::Stdout => Box::new(stdout::StdoutSink),
    })
}

/// What the HTTP sinks share: the client, the URL and the credentials of one endpoint.
pub struct HttpEndpoint {
    sink: SinkConfig,
    url: Secret,
    client: reqwest::Client,
}

impl HttpEndpoint {
    /// Builds the client of `url`, with the sink's timeout.
    pub fn new(sink: &SinkConfig, url: Secret) -> Result<HttpEndpoint, DeliveryError> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(sink.timeout_secs))
            .user_agent(concat!("vigie/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| {
                DeliveryError::InvalidConfig(format!(
                    "alert.sinks.{}: cannot build an HTTP client: {err}",
                    sink.name
                ))
            })?;
        Ok(HttpEndpoint {
            sink: sink.clone(),
            url,
            client,
        })
    }

    /// Returns the endpoint's URL (a secret: never log it).
    pub fn url(&self) -> &str {
        self.url.expose()
    }

    /// Starts a POST to `url` (the endpoint's, or one derived from it).
    pub fn post(&self, url: &str) -> reqwest::RequestBuilder {
        self.client.post(url)
    }

    /// Sends a request as JSON with the sink's credentials; maps the response: 2xx is
    /// done, transport errors, 408, 425, 429 and 5xx are retried (after `Retry-After`,
    /// read against `now`), other statuses are not.
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
        now: DateTime<Utc>,
    ) -> Result<(), SendFailure> {
        let sink = &self.sink;
        let mut request = request.header(reqwest::header::CONTENT_TYPE, "application/json");
        if !sink.bearer_token.is_empty() {
            request = request.bearer_auth(sink.bearer_token.expose());
        } else if !sink.basic_auth_user.is_empty() {
            request = request.basic_auth(
                &sink.basic_auth_user,
                Some(sink.basic_auth_password.expose()),
            );
        }
        let response = request
            .send()
            .await
            .map_err(|err| SendFailure::retry(describe_request_error(sink, err)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| parse_retry_after(value, now));
        let retryable = status.is_server_error() || matches!(status.as_u16(), 408 | 425 | 429);
        let body = response.text().await.unwrap_or_default();
        Err(SendFailure {
            message: format!(
                "HTTP {status}: {}",
                // Scrubbed before truncation, so that no prefix of a secret survives.
                truncate_chars(&vigie_domain::scrub(body.trim(), sink.secrets()), 200)
            ),
            retryable,
            retry_after,
        })
    }
}

/// Describes a failed request without its URL (for Slack and Teams the URL is the
/// credential, and reqwest's message quotes it), then scrubs the sink's secrets from what
/// is left as a second line of defence. The text goes to logs and `dead-letter.jsonl`.
fn describe_request_error(sink: &SinkConfig, err: reqwest::Error) -> String {
    let what = if err.is_timeout() {
        "timed out"
    } else if err.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let err = err.without_url();
    let mut text = format!("{what}: {err}");
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    vigie_domain::scrub(&text, sink.secrets())
}

/// Parses `Retry-After`: delay seconds or an HTTP date.
fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at: DateTime<Utc> = httpdate::parse_http_date(value).ok()?.into();
    Some((at - now).to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_parses_seconds_and_http_dates() {
        let now = DateTime::from_timestamp(1_445_412_480, 0).unwrap(); // 2015-10-21 07:28:00
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:29:00 GMT", now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
