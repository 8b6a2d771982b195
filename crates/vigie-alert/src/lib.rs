//! The alert policy: turns narrative events into notifications — when an alert fires,
//! changes, is re-sent and resolves, and what it says. Pure: no I/O, no clock (event time
//! and the wall clock silences are judged by are passed in). Delivery of the
//! notifications is `vigie-alert-delivery`'s.
//!
//! # Layout
//!
//! ```text
//!  NarrativeEvent ──► AlertPolicy (pure, event time) ──► Notification (vigie_domain::alert)
//!                     rules, for / keep_firing_for,        │
//!                     cooldown, renotify, grouping,        ▼
//!                     silences, acks                     vigie-alert-delivery: outbox,
//!                                                         workers, one module per sink
//! ```
//!
//! - [`policy`]: [`AlertPolicy`], the alert lifecycle, and [`backtest`].
//! - [`content`]: what an [`Alert`] says, built from a narrative.
//! - [`config`]: [`AlertConfig`], the policy's keys of `[alert]`; [`tiers`]: how
//!   narrative severities map to alert severities.
//! - [`silence`]: [`Silences`]. [`fingerprint`](mod@fingerprint): account pseudonyms and
//!   the digests behind fingerprints and ids.
//! - `fixtures` (the `fixtures` feature, for tests only): narratives and notifications
//!   built as the policy builds them, for this crate's tests and delivery's.
//!
//! The nouns a notification is made of ([`Notification`], [`Alert`], [`AlertSeverity`], …)
//! live in `vigie_domain::alert`, since delivery takes them too; they are re-exported here.
#![warn(missing_docs)]

pub mod config;
pub mod content;
mod error;
pub mod fingerprint;
#[cfg(any(test, feature = "fixtures"))]
pub mod fixtures;
pub mod policy;
pub mod silence;
pub mod tiers;

#[cfg(test)]
mod issue_8_tests;

pub use config::{AlertConfig, AlertRule};
pub use content::{narrative_search_query, narrative_title, PostLookup};
pub use error::AlertError;
pub use fingerprint::pseudonymize;
pub use policy::{backtest, fingerprint, AlertPolicy, AlertState, AlertView, PolicySnapshot};
pub use silence::{
    Matcher, Silence, SilenceConfig, SilenceRequest, SilenceState, SilenceView, Silences,
};
pub use tiers::SeverityTiers;
/// The alert nouns, defined in `vigie-domain` since delivery takes them too.
pub use vigie_domain::alert::{
    Alert, AlertSeverity, AlertStatus, NarrativeLevel, Notification, NotificationKind,
    NotificationRecord, PostRef,
};
