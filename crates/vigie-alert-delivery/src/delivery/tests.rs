//! Delivery end to end, against test receivers on loopback ports: retries, order,
//! groups, rate limits, crashes and full disks.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::*;
use crate::outbox::{parse_journal, DEAD_LETTER_FILE, JOURNAL_FILE};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use vigie_alert::fixtures::notification;

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// What a test receiver answers to its n-th request (from 0).
enum Reply {
    Status(u16),
    RetryAfter(u16, &'static str),
    Hang,
}

struct Received {
    at: std::time::Instant,
    path: String,
    headers: HeaderMap,
    body: Vec<u8>,
    status: u16,
}

type Log = Arc<Mutex<Vec<Received>>>;

#[derive(Clone)]
struct Receiver {
    log: Log,
    reply: Arc<dyn Fn(usize) -> Reply + Send + Sync>,
}

async fn handle(
    State(receiver): State<Receiver>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let n = receiver.log.lock().unwrap().len();
    let (status, retry_after) = match (receiver.reply)(n) {
        Reply::Hang => std::future::pending().await,
        Reply::Status(status) => (status, None),
        Reply::RetryAfter(status, after) => (status, Some(after)),
    };
    receiver.log.lock().unwrap().push(Received {
        at: std::time::Instant::now(),
        path: uri.path().to_owned(),
        headers,
        body: body.to_vec(),
        status,
    });
    let status = StatusCode::from_u16(status).unwrap();
    match retry_after {
        Some(after) => (status, [("retry-after", after)]).into_response(),
        None => status.into_response(),
    }
}

/// Starts a receiver on a loopback port; returns its base URL and request log.
async fn serve(reply: impl Fn(usize) -> Reply + Send + Sync + 'static) -> (String, Log) {
    let log: Log = Arc::default();
    let app = axum::Router::new().fallback(handle).with_state(Receiver {
        log: log.clone(),
        reply: Arc::new(reply),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, log)
}

fn sink(name: &str, kind: SinkKind, url: &str) -> SinkConfig {
    SinkConfig {
        name: name.into(),
        kind,
        url: Secret::new(url),
        secret: if kind == SinkKind::Webhook {
            Secret::new(SECRET)
        } else {
            Secret::default()
        },
        timeout_secs: 5,
        ..SinkConfig::default()
    }
}

/// What [`AlertDelivery::start`] takes besides the outbox.
struct Setup {
    sinks: Vec<SinkConfig>,
    delivery: DeliveryConfig,
}

fn config(sinks: Vec<SinkConfig>, max_age_secs: u64) -> Setup {
    Setup {
        sinks,
        delivery: DeliveryConfig {
            initial_backoff_ms: 20,
            max_backoff_ms: 100,
            max_age_secs,
        },
    }
}

/// Starts delivery with the policy's default re-notify interval (900 s).
fn start(
    setup: &Setup,
    outbox: Outbox,
    observer: Option<Arc<dyn DeliveryObserver>>,
) -> Result<AlertDelivery, DeliveryError> {
    AlertDelivery::start(&setup.sinks, &setup.delivery, 900, outbox, observer)
}

fn notifications(count: u64) -> Vec<Notification> {
    (1..=count)
        .map(|id| notification(id, NotificationKind::Firing))
        .collect()
}

/// Polls `condition` every 10 ms for up to 4 s.
async fn wait_for(what: &str, condition: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(4);
    while !condition() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn header<'a>(received: &'a Received, name: &str) -> &'a str {
    received.headers[name].to_str().unwrap()
}

#[tokio::test]
async fn receiver_down_then_up_gets_everything_once_signed() {
    let (url, log) = serve(|n| Reply::Status(if n < 4 { 503 } else { 200 })).await;
    let dir = tempfile::tempdir().unwrap();
    let delivery = start(
        &config(vec![sink("hook", SinkKind::Webhook, &url)], 60),
        Outbox::open(dir.path()).unwrap(),
        None,
    )
    .unwrap();
    let sent = notifications(5);
    assert_eq!(delivery.deliver(&sent).unwrap(), 5);
    let stats = delivery.stats();
    wait_for("5 deliveries", || stats.sink("hook").delivered == 5).await;

    let log = log.lock().unwrap();
    let ids: BTreeSet<&str> = sent.iter().map(|n| n.id.as_str()).collect();
    let mut accepted = Vec::new();
    for received in log.iter() {
        crate::signing::verify_standard_webhook(SECRET, &received.headers, &received.body)
            .expect("every request is signed");
        let id = header(received, "webhook-id");
        assert!(ids.contains(id), "duplicates carry a known id");
        let body: serde_json::Value = serde_json::from_slice(&received.body).unwrap();
        assert_eq!(body["data"]["id"], id);
        assert_eq!(body["type"], "vigie.alert.firing");
        if received.status == 200 {
            accepted.push(id);
        }
    }
    accepted.sort_unstable();
    assert_eq!(
        accepted,
        ids.into_iter().collect::<Vec<_>>(),
        "each delivered once"
    );
    assert!(stats.sink("hook").retried >= 4);
    assert_eq!(stats.sink("hook").depth, 0);
    assert_eq!(delivery.depth(), 0);
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let (url, log) = serve(|n| {
        if n == 0 {
            Reply::RetryAfter(429, "1")
        } else {
            Reply::Status(200)
        }
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let delivery = start(
        &config(vec![sink("hook", SinkKind::Webhook, &url)], 60),
        Outbox::open(dir.path()).unwrap(),
        None,
    )
    .unwrap();
    delivery.deliver(&notifications(1)).unwrap();
    let stats = delivery.stats();
    wait_for("the delivery", || stats.sink("hook").delivered == 1).await;
    let log = log.lock().unwrap();
    assert_eq!(log.len(), 2);
    let gap = log[1].at - log[0].at;
    assert!(gap >= Duration::from_millis(950), "retried after {gap:?}");
    assert_eq!(header(&log[0], "webhook-id"), header(&log[1], "webhook-id"));
}

#[test]
fn backoff_grows_to_its_cap_with_jitter() {
    let config = DeliveryConfig {
        initial_backoff_ms: 100,
        max_backoff_ms: 1000,
        max_age_secs: 60,
    };
    for _ in 0..200 {
        assert!(backoff(&config, 1) <= Duration::from_millis(100));
        assert!(backoff(&config, 3) <= Duration::from_millis(400));
        assert!(backoff(&config, 60) <= Duration::from_millis(1000));
    }
    let spread: BTreeSet<Duration> = (0..50).map(|_| backoff(&config, 10)).collect();
    assert!(spread.len() > 10, "delays are jittered");
}

#[tokio::test]
async fn past_max_age_a_notification_is_dead_lettered() {
    let (down, _) = serve(|_| Reply::Status(503)).await;
    let (refusing, _) = serve(|_| Reply::Status(400)).await;
    let dir = tempfile::tempdir().unwrap();
    let delivery = start(
        &config(
            vec![
                sink("down", SinkKind::Webhook, &down),
                sink("refusing", SinkKind::Webhook, &refusing),
            ],
            1,
        ),
        Outbox::open(dir.path()).unwrap(),
        None,
    )
    .unwrap();
    let sent = notifications(1);
    assert_eq!(delivery.deliver(&sent).unwrap(), 2);
    let stats = delivery.stats();
    // A 400 is not retried.
    wait_for("the refusal", || stats.sink("refusing").dead_lettered == 1).await;
    assert_eq!(stats.sink("refusing").retried, 0);
    wait_for("the dead letter", || stats.sink("down").dead_lettered == 1).await;
    assert!(stats.sink("down").retried >= 2);
    assert_eq!(delivery.depth(), 0);
    let letters = std::fs::read_to_string(dir.path().join(DEAD_LETTER_FILE)).unwrap();
    let letters: Vec<serde_json::Value> = letters
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(letters.len(), 2);
    let down = letters.iter().find(|l| l["target"] == "down").unwrap();
    assert_eq!(down["notification"]["id"], sent[0].id.as_str());
    assert!(
        down["reason"].as_str().unwrap().contains("max age"),
        "{down}"
    );
    // Dead letters are not re-sent after a restart.
    drop(delivery);
    assert_eq!(Outbox::open(dir.path()).unwrap().depth(), 0);
}

#[tokio::test]
async fn a_hanging_sink_does_not_delay_another() {
    let (hanging, hanging_log) = serve(|_| Reply::Hang).await;
    let (healthy, healthy_log) = serve(|_| Reply::Status(200)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut slow = sink("slow", SinkKind::Webhook, &hanging);
    slow.timeout_secs = 30;
    slow.max_concurrency = 1;
    let delivery = start(
        &config(vec![slow, sink("fast", SinkKind::Webhook, &healthy)], 60),
        Outbox::open(dir.path()).unwrap(),
        None,
    )
    .unwrap();
    let started = std::time::Instant::now();
    delivery.deliver(&notifications(3)).unwrap();
    let stats = delivery.stats();
    wait_for("the healthy sink", || stats.sink("fast").delivered == 3).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(healthy_log.lock().unwrap().len(), 3);
    assert_eq!(stats.sink("slow").delivered, 0);
    assert!(hanging_log.lock().unwrap().is_empty());
    assert_eq!(stats.sink("slow").depth, 3);
}

#[tokio::test]
async fn pending_deliveries_survive_a_crash() {
    let (down, down_log) = serve(|_| Reply::Status(503)).await;
    let dir = tempfile::tempdir().unwrap();
    let sent = notifications(2);
    {
        let delivery = start(
            &config(vec![sink("hook", SinkKind::Webhook, &down)], 60),
            Outbox::open(dir.path()).unwrap(),
            None,
        )
        .unwrap();
        delivery.deliver(&sent).unwrap();
        wait_for("attempts", || down_log.lock().unwrap().len() >= 2).await;
        // Dropped with deliveries in flight and no flush: a crash, as far as the
        // outbox can tell.
    }
    // A crash in the middle of writing leaves a torn line.
    let journal = dir.path().join(JOURNAL_FILE);
    let mut file = OpenOptions::new().append(true).open(&journal).unwrap();
    file.write_all(br#"{"op":"accept","seq":99,"accep"#)
        .unwrap();
    drop(file);

    let outbox = Outbox::open(dir.path()).unwrap();
    assert_eq!(outbox.depth(), 2);
    let (up, up_log) = serve(|_| Reply::Status(200)).await;
    let delivery = start(
        &config(vec![sink("hook", SinkKind::Webhook, &up)], 60),
        outbox,
        None,
    )
    .unwrap();
    let stats = delivery.stats();
    wait_for("re-sent deliveries", || stats.sink("hook").delivered == 2).await;
    let resent: BTreeSet<String> = up_log
        .lock()
        .unwrap()
        .iter()
        .map(|r| header(r, "webhook-id").to_owned())
        .collect();
    let original: BTreeSet<String> = sent.iter().map(|n| n.id.clone()).collect();
    assert_eq!(resent, original, "same ids after the restart");
    drop(delivery);
    assert_eq!(Outbox::open(dir.path()).unwrap().depth(), 0);
}

/// Issue 12, row 7: a crash leaves a torn multi-byte UTF-8 tail in `journal.jsonl`;
/// the daemon refused to start (`stream did not contain valid UTF-8`). Now the torn
/// line is skipped and counted and every pending delivery is still delivered.
#[tokio::test]
async fn issue_12_row_7_a_journal_torn_inside_a_utf8_character_still_opens_and_delivers() {
    let (down, down_log) = serve(|_| Reply::Status(503)).await;
    let dir = tempfile::tempdir().unwrap();
    // Non-ASCII text, as alert content in French, Russian or Arabic has.
    let sent: Vec<Notification> = notifications(3)
        .into_iter()
        .map(|n| Notification {
            group_key: "récit-été-наратив".into(),
            ..n
        })
        .collect();
    {
        let delivery = start(
            &config(vec![sink("hook", SinkKind::Webhook, &down)], 60),
            Outbox::open(dir.path()).unwrap(),
            None,
        )
        .unwrap();
        delivery.deliver(&sent[..2]).unwrap();
        delivery.deliver(&sent[2..]).unwrap();
        wait_for("attempts", || down_log.lock().unwrap().len() >= 2).await;
    }
    // The crash: the last record is cut in the middle of a two-byte character.
    let journal = dir.path().join(JOURNAL_FILE);
    let bytes = std::fs::read(&journal).unwrap();
    let last_line = bytes[..bytes.len() - 1]
        .iter()
        .rposition(|&b| b == b'\n')
        .unwrap()
        + 1;
    let cut = last_line
        + bytes[last_line..]
            .iter()
            .position(|&b| b == 0xC3)
            .expect("a multi-byte character in the last record")
        + 1;
    std::fs::write(&journal, &bytes[..cut]).unwrap();
    assert!(
        std::str::from_utf8(&bytes[..cut]).is_err(),
        "torn inside a character"
    );

    let outbox = Outbox::open(dir.path()).expect("the outbox opens despite the torn tail");
    assert_eq!(outbox.corrupt_records(), 1);
    assert_eq!(outbox.depth(), 2, "the two complete records are kept");
    let (up, up_log) = serve(|_| Reply::Status(200)).await;
    let delivery = start(
        &config(vec![sink("hook", SinkKind::Webhook, &up)], 60),
        outbox,
        None,
    )
    .unwrap();
    let stats = delivery.stats();
    wait_for("re-sent deliveries", || stats.sink("hook").delivered == 2).await;
    let resent: BTreeSet<String> = up_log
        .lock()
        .unwrap()
        .iter()
        .map(|r| header(r, "webhook-id").to_owned())
        .collect();
    let kept: BTreeSet<String> = sent[..2].iter().map(|n| n.id.clone()).collect();
    assert_eq!(resent, kept);
    drop(delivery);
    // Compaction at open rewrote the journal without the torn line.
    let reopened = Outbox::open(dir.path()).unwrap();
    assert_eq!((reopened.corrupt_records(), reopened.depth()), (0, 0));
}

/// A small tmpfs mounted for one test (needs root); unmounted on drop.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts a tmpfs of `size` (e.g. `"256k"`); `None` when mounting is not allowed
    /// here (not root), after saying so.
    fn mount(size: &str) -> Option<SmallDisk> {
        let dir = tempfile::tempdir().unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .stderr(std::process::Stdio::null())
            .status();
        match status {
            Ok(status) if status.success() => Some(SmallDisk { dir }),
            _ => {
                eprintln!("skipped: cannot mount a tmpfs here (needs root)");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fills the file system; returns the filler, to delete when space should return.
    fn fill(&self) -> PathBuf {
        let filler = self.path().join("filler");
        let mut file = File::create(&filler).unwrap();
        let chunk = vec![0u8; 4096];
        while file.write_all(&chunk).is_ok() {}
        while file.write_all(&chunk[..1]).is_ok() {}
        filler
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazy: files the test's runtime still holds open must not keep it mounted.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Issue 12 (review finding: a notification the outbox refuses is lost): on a full
/// disk the outbox refuses with an error naming the journal and the cause, takes
/// nothing, leaves the journal readable, and accepts again once space returns.
#[tokio::test]
async fn issue_12_a_full_disk_refuses_notifications_cleanly_and_recovers() {
    let Some(disk) = SmallDisk::mount("256k") else {
        return;
    };
    let dir = disk.path().join("outbox");
    let delivery = start(
        &config(
            vec![sink("hook", SinkKind::Webhook, "http://127.0.0.1:9")],
            60,
        ),
        Outbox::open(&dir).unwrap(),
        None,
    )
    .unwrap();
    // Records of several KB: appending them needs new pages, so a full tmpfs refuses.
    let sent = notifications(6);
    delivery.deliver(&sent[..1]).unwrap();
    let filler = disk.fill();
    let err = delivery.deliver(&sent[1..]).unwrap_err();
    let DeliveryError::OutboxIo { path, source } = &err else {
        panic!("{err:?}");
    };
    assert_eq!(path, &dir.join(JOURNAL_FILE));
    assert_eq!(source.kind(), std::io::ErrorKind::StorageFull);
    assert!(source.to_string().contains("No space left"), "{source}");
    assert_eq!(delivery.depth(), 1, "nothing refused is counted as taken");

    std::fs::remove_file(filler).unwrap();
    assert_eq!(delivery.deliver(&sent[1..]).unwrap(), 5);
    assert_eq!(delivery.depth(), 6);
    drop(delivery);
    let parsed = parse_journal(&std::fs::read(dir.join(JOURNAL_FILE)).unwrap());
    assert!(
        parsed.corrupt_lines.is_empty(),
        "{:?}",
        parsed.corrupt_lines
    );
    assert_eq!(Outbox::open(&dir).unwrap().depth(), 6);
}

#[tokio::test]
async fn group_capable_sinks_send_one_request_per_group() {
    let (am1, am1_log) = serve(|_| Reply::Status(200)).await;
    let (am2, am2_log) = serve(|_| Reply::Status(200)).await;
    let (slack, slack_log) = serve(|_| Reply::Status(200)).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("alerts.jsonl");
    let mut alertmanager = sink("am", SinkKind::Alertmanager, "");
    alertmanager.urls = vec![Secret::new(am1), Secret::new(format!("{am2}/"))];
    let mut file_sink = sink("file", SinkKind::File, "");
    file_sink.path = file.display().to_string();
    let delivery = start(
        &config(
            vec![
                alertmanager,
                sink("slack", SinkKind::Slack, &slack),
                file_sink,
            ],
            60,
        ),
        Outbox::open(dir.path().join("outbox")).unwrap(),
        None,
    )
    .unwrap();
    let sent = notifications(3);
    assert_eq!(delivery.deliver(&sent).unwrap(), 12);
    let stats = delivery.stats();
    wait_for("all sinks", || {
        stats.sink("am").delivered == 6
            && stats.sink("slack").delivered == 3
            && stats.sink("file").delivered == 3
    })
    .await;
    for log in [&am1_log, &am2_log] {
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 1, "one request for the group");
        assert_eq!(log[0].path, "/api/v2/alerts");
        let body: serde_json::Value = serde_json::from_slice(&log[0].body).unwrap();
        assert_eq!(body.as_array().unwrap().len(), 3);
        assert_eq!(body[0]["labels"]["alertname"], "VigieNarrative");
    }
    let slack_log = slack_log.lock().unwrap();
    assert_eq!(slack_log.len(), 1);
    let body: serde_json::Value = serde_json::from_slice(&slack_log[0].body).unwrap();
    assert!(body["blocks"][0]["text"]["text"]
        .as_str()
        .unwrap()
        .starts_with("*3 narrative alerts*"));
    let lines: Vec<Notification> = std::fs::read_to_string(&file)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, sent);
}

#[tokio::test]
async fn rate_limit_spaces_requests() {
    let (url, log) = serve(|_| Reply::Status(200)).await;
    let dir = tempfile::tempdir().unwrap();
    let mut limited = sink("hook", SinkKind::Webhook, &url);
    limited.rate_limit_per_minute = 600; // one per 100 ms
    let delivery = start(
        &config(vec![limited], 60),
        Outbox::open(dir.path()).unwrap(),
        None,
    )
    .unwrap();
    delivery.deliver(&notifications(3)).unwrap();
    let stats = delivery.stats();
    wait_for("all three", || stats.sink("hook").delivered == 3).await;
    let log = log.lock().unwrap();
    assert!(log[2].at - log[0].at >= Duration::from_millis(180));
}

#[tokio::test]
async fn a_resolve_never_overtakes_its_firing() {
    // The firing fails once; the resolve, queued behind it, must wait for it.
    let (url, log) = serve(|n| Reply::Status(if n == 0 { 503 } else { 200 })).await;
    let dir = tempfile::tempdir().unwrap();
    let delivery = start(
        &config(vec![sink("hook", SinkKind::Webhook, &url)], 60),
        Outbox::open(dir.path()).unwrap(),
        None,
    )
    .unwrap();
    let firing = notification(1, NotificationKind::Firing);
    let resolved = notification(1, NotificationKind::Resolved);
    let other = notification(2, NotificationKind::Firing);
    delivery
        .deliver(&[firing.clone(), resolved.clone(), other.clone()])
        .unwrap();
    let stats = delivery.stats();
    wait_for("all three", || stats.sink("hook").delivered == 3).await;
    let log = log.lock().unwrap();
    let order: Vec<&str> = log.iter().map(|r| header(r, "webhook-id")).collect();
    let position = |id: &str| order.iter().rposition(|x| *x == id).unwrap();
    assert_eq!(order[0], firing.id);
    assert!(position(&firing.id) < position(&resolved.id), "{order:?}");
}

#[test]
fn delivery_is_shareable_with_the_indexer_thread() {
    fn shareable<T: Send + Sync>() {}
    shareable::<AlertDelivery>();
    shareable::<vigie_alert::AlertPolicy>();
}

#[test]
fn routing_by_severity_labels_and_renotify() {
    let mut n = notification(1, NotificationKind::Firing);
    let mut slack = sink("s", SinkKind::Slack, "http://127.0.0.1:1");
    assert!(routes_to(&slack, &n));
    slack.min_severity = AlertSeverity::Critical;
    assert!(!routes_to(&slack, &n), "warning below critical");
    slack.min_severity = AlertSeverity::Info;
    slack.match_labels.insert("rule".into(), "default".into());
    assert!(routes_to(&slack, &n));
    slack.match_labels.insert("team".into(), "fr".into());
    assert!(!routes_to(&slack, &n));
    slack.match_labels.clear();

    n.kind = NotificationKind::Renotify;
    let am = sink("am", SinkKind::Alertmanager, "http://127.0.0.1:1");
    assert!(
        !routes_to(&slack, &n),
        "chat sinks skip re-notifications by default"
    );
    assert!(routes_to(&am, &n));
    slack.renotify = Some(true);
    assert!(routes_to(&slack, &n));
    n.acked = true;
    assert!(
        !routes_to(&slack, &n),
        "acked: no re-notification to people"
    );
    assert!(routes_to(&am, &n), "Alertmanager keeps the alert alive");
}
