//! Alerting: turns narrative events into notifications and delivers them, at least once,
//! to the people on call.
//!
//! # Layout
//!
//! ```text
//!  NarrativeEvent ──► AlertPolicy (pure, event time) ──► Notification ──► AlertDelivery
//!                     rules, for / keep_firing_for,                        │ Outbox (fsync'd
//!                     cooldown, renotify, grouping,                        │ journal on disk)
//!                     silences, acks                                       ▼
//!                                          per-sink workers: webhook (signed) · slack · teams
//!                                          · alertmanager · file · stdout; retries, dead letters
//! ```
//!
//! - [`policy`]: [`AlertPolicy`], the alert lifecycle, and [`backtest`].
//! - [`content`]: what an [`Alert`] says, built from a narrative.
//! - [`format`](mod@format): the request bodies of each sink kind (pure).
//! - [`delivery`]: [`Outbox`] and [`AlertDelivery`], the only part doing I/O.
//! - [`silence`]: [`Silences`]. [`signing`]: Standard Webhooks signatures.
//!
//! The policy reads no clock: event time is passed in. Delivery reads the wall clock for
//! retry delays, `webhook-timestamp` and Alertmanager's `endsAt`.
#![warn(missing_docs)]

pub mod config;
pub mod content;
pub mod delivery;
mod error;
pub mod format;
pub mod policy;
pub mod signing;
pub mod silence;

#[cfg(test)]
mod issue_12_tests;
#[cfg(test)]
mod issue_8_tests;

pub use config::{AlertConfig, AlertRule, DeliveryConfig, SeverityTiers, SinkConfig, SinkKind};
pub use content::{narrative_search_query, narrative_title, PostLookup};
pub use delivery::{
    parse_journal, routes_to, AlertDelivery, DeliveryObserver, DeliveryOutcome, DeliveryStats,
    JournalRecord, Outbox, ParsedJournal, PendingDelivery, SinkStats,
};
pub use error::AlertError;
pub use policy::{backtest, fingerprint, AlertPolicy, AlertState, AlertView, PolicySnapshot};
pub use signing::{pseudonymize, verify_standard_webhook, WebhookSecret};
pub use silence::{
    Matcher, Silence, SilenceConfig, SilenceRequest, SilenceState, SilenceView, Silences,
};
/// The alert nouns, defined in `vigie-domain` since delivery takes them too.
pub use vigie_domain::alert::{
    Alert, AlertSeverity, AlertStatus, NarrativeLevel, Notification, NotificationKind,
    NotificationRecord, PostRef,
};
