//! Shared harness for Vigie's end-to-end tests.
//!
//! [`TestBroker`] runs a real Kafka-protocol broker (Tansu, installed by
//! `scripts/test-broker.sh`) on a free loopback port for the lifetime of one test, with
//! in-memory storage, so Kafka tests need neither Docker nor a shared broker. The helpers
//! create topics, produce messages and read a topic back (e.g. the dead-letter topic) with
//! plain rdkafka clients, independent of the code under test.
//!
//! What Tansu 0.6 (memory storage) does with librdkafka 2.12 (rdkafka 0.39), found while
//! writing these tests:
//! - Supported: CreateTopics through the AdminClient (several partitions; replication
//!   factor `1` or `-1` for "broker default"; a second create gives `TopicAlreadyExists`),
//!   keys, record headers, messages without payload, the idempotent producer (its first
//!   send takes ~0.5 s for InitProducerId), consumer groups (subscribe, rejoin after a member
//!   left), synchronous offset commits and committed-offset lookups.
//! - Auto-creates a missing topic on first produce (with 4 partitions), so tests create
//!   their topics explicitly first.
//! - High-water marks (seen through ListOffsets) are the base offset of the partition's last
//!   record batch plus one, which is wrong when that batch holds several records; see
//!   [`TestBroker::high_watermarks`]. Consumer lag, computed by librdkafka from the
//!   high-water mark, is then -1 (unknown) instead of 0, and Vigie reports no lag.
//! - A consumer-group join waits for the group's rebalance delay: ~24 s with librdkafka's
//!   default `session.timeout.ms` (45 s), ~3.5 s with `session.timeout.ms=6000`, so tests
//!   pass [`TestBroker::consumer_properties`]. The broker starts in ~50 ms.
#![warn(missing_docs)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};

use anyhow::Context as _;

#[path = "src/broker.rs"]
mod broker;
#[path = "src/http.rs"]
mod http;
#[path = "src/process.rs"]
mod process;
#[path = "src/prometheus.rs"]
mod prometheus;
#[path = "src/streams.rs"]
mod streams;

pub use broker::{ConsumedMessage, Record, TestBroker};
pub use http::{http_get, http_request, ReceivedRequest, WebhookReceiver};
pub use process::{vigie_binary, KillOnDrop, VigieProcess};
pub use prometheus::{
    metric_sum, prometheus_query, prometheus_scalar, TestAlertmanager, TestPrometheus,
};
pub use streams::{rfc3339, synthetic_hoax_stream, Lcg, HOAX_TEXT, SYNTHETIC_START_UNIX};

/// Returns the repository root (the parent of this crate's directory).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// Returns a loopback port that was free a moment ago (the OS picks it).
pub fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("failed to bind a loopback port")?;
    Ok(listener.local_addr()?.port())
}

// ---------------------------------------------------------------------------------------
// Fault soak (issue 12): a broker that survives a restart, the repeated sample, exact
// index listing, webhook verification. In tests/src/faults.rs.

#[path = "src/faults.rs"]
pub mod faults;
