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
//! - [`delivery`]: [`Outbox`] and [`AlertDelivery`].
//! - [`format`](mod@format): the request bodies of each sink kind (pure).
//! - [`signing`]: Standard Webhooks signatures.
//!
//! Delivery reads the wall clock, and only for retry delays, `webhook-timestamp` and
//! Alertmanager's `endsAt`; the policy that decides what to send reads none.
#![warn(missing_docs)]

pub mod config;
pub mod delivery;
mod error;
pub mod format;
pub mod signing;

#[cfg(test)]
mod issue_12_tests;
#[cfg(test)]
mod issue_8_tests;

pub use config::{DeliveryConfig, SinkConfig, SinkKind};
pub use delivery::{
    parse_journal, routes_to, AlertDelivery, DeliveryObserver, DeliveryOutcome, DeliveryStats,
    JournalRecord, Outbox, ParsedJournal, PendingDelivery, SinkStats,
};
pub use error::DeliveryError;
pub use signing::{verify_standard_webhook, WebhookSecret};
