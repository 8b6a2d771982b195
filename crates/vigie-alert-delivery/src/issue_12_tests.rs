//! Issue 12, row 5: a failing Slack, Teams or webhook sink must not leak its URL (which for
//! Slack and Teams *is* the credential) into logs, `dead-letter.jsonl` or the journal.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vigie_domain::Secret;

use crate::config::{DeliveryConfig, SinkConfig, SinkKind};
use crate::delivery::AlertDelivery;
use crate::outbox::{Outbox, DEAD_LETTER_FILE, JOURNAL_FILE};
use vigie_alert::fixtures::notification;
use vigie_domain::alert::NotificationKind;

/// A recognisable path token: what a Slack webhook's secret part looks like.
const TOKEN: &str = "T0VIGIE/B0VIGIE/xoxb-issue12-leaktoken";

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Returns a loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn issue_12_row_5_failing_sinks_do_not_leak_their_url() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // The test runtime has one thread, so the delivery workers log through this too.
    let _guard = tracing::subscriber::set_default(subscriber);

    let port = closed_port();
    let url = format!("http://127.0.0.1:{port}/services/{TOKEN}");
    let sink = |name: &str, kind: SinkKind| SinkConfig {
        name: name.into(),
        kind,
        url: Secret::new(url.clone()),
        timeout_secs: 2,
        ..SinkConfig::default()
    };
    let sinks = [
        sink("slack", SinkKind::Slack),
        sink("teams", SinkKind::Teams),
        sink("hook", SinkKind::Webhook),
    ];
    let retries = DeliveryConfig {
        initial_backoff_ms: 20,
        max_backoff_ms: 100,
        max_age_secs: 1,
    };
    let dir = tempfile::tempdir().unwrap();
    let delivery = AlertDelivery::start(
        &sinks,
        &retries,
        900,
        Outbox::open(dir.path()).unwrap(),
        None,
    )
    .unwrap();
    assert_eq!(
        delivery
            .deliver(&[notification(1, NotificationKind::Firing)])
            .unwrap(),
        3
    );
    let stats = delivery.stats();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while ["slack", "teams", "hook"]
        .iter()
        .any(|name| stats.sink(name).dead_lettered == 0)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the sinks were never given up on"
        );
        // Other tests running alongside register the workers' log callsites on threads with
        // no subscriber; tracing's interest cache can then keep them disabled for this
        // thread's subscriber too (the "will retry" warning went missing when the delivery
        // tests ran at the same time). Recomputing the cache while waiting undoes that.
        tracing::callsite::rebuild_interest_cache();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(delivery);

    let letters = std::fs::read_to_string(dir.path().join(DEAD_LETTER_FILE)).unwrap();
    assert_eq!(letters.lines().count(), 3, "{letters}");
    assert!(letters.contains("connection failed"), "{letters}");
    let journal = std::fs::read_to_string(dir.path().join(JOURNAL_FILE)).unwrap_or_default();
    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("dead-lettered"),
        "logs were not captured:\n{logs}"
    );
    assert!(logs.contains("will retry"), "{logs}");
    for (what, text) in [
        ("dead letters", &letters),
        ("journal", &journal),
        ("logs", &logs),
    ] {
        assert!(
            !text.contains("xoxb-issue12-leaktoken"),
            "{what} leak the URL:\n{text}"
        );
        assert!(!text.contains("/services/"), "{what} leak the URL:\n{text}");
    }
}
