//! Alert delivery: takes the policy's notifications (`vigie_domain::alert::Notification`)
//! into a durable outbox and sends them, at least once, to the people on call.
//!
//! # Layout
//!
//! ```text
//!  Notification ──► AlertDelivery::deliver ──► Outbox (fsync'd journal on disk)
//!                   routes_to: severity,          │
//!                   labels, renotify              ▼
//!                         per-sink-endpoint workers: order per alert, groups, rate limit,
//!                         retries with backoff, dead letters
//!                                                 │  AlertSink::send
//!                                                 ▼
//!                         webhook (signed) · slack · teams · alertmanager · file · stdout
//! ```
//!
//! - [`config`]: [`SinkConfig`], [`SinkKind`], [`DeliveryConfig`] (`[[alert.sinks]]`,
//!   `[alert.delivery]`) and their [`validate`](config::validate).
//! - [`delivery`]: [`AlertDelivery`], routing ([`routes_to`]) and the workers.
//! - [`outbox`]: [`Outbox`], the journal on disk and `dead-letter.jsonl`.
//! - [`sink`]: the [`AlertSink`] contract, one module per sink kind.
//! - [`format`](mod@format): the request bodies of each sink kind (pure).
//! - [`stats`]: [`DeliveryStats`] and the [`DeliveryObserver`] for metrics.
//! - [`signing`]: Standard Webhooks signatures.
//!
//! Delivery reads the wall clock, and only for retry delays, `webhook-timestamp` and
//! Alertmanager's `endsAt`; the policy that decides what to send reads none.
#![warn(missing_docs)]

pub mod config;
pub mod delivery;
mod error;
pub mod format;
pub mod outbox;
pub mod signing;
pub mod sink;
pub mod stats;

#[cfg(test)]
mod issue_12_tests;
#[cfg(test)]
mod issue_8_tests;

pub use config::{DeliveryConfig, SinkConfig, SinkKind};
pub use delivery::{routes_to, AlertDelivery};
pub use error::DeliveryError;
pub use outbox::{
    parse_journal, DeliveryOutcome, JournalRecord, Outbox, ParsedJournal, PendingDelivery,
};
pub use signing::{verify_standard_webhook, WebhookSecret};
pub use sink::{AlertSink, SendFailure};
pub use stats::{DeliveryObserver, DeliveryStats, SinkStats};
