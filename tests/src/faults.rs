//! Fault-soak helpers (issue 12, "What to build" item 6), used by `tests/tests/soak.rs`:
//! - [`PersistentBroker`]: Tansu whose storage outlives it (S3 on a local moto server), so
//!   it can be stopped and restarted on the same port with the same topics, offsets and
//!   committed group offsets (the in-memory [`TestBroker`] forgets everything on exit, and
//!   this Tansu build has neither its PostgreSQL nor its SQLite engine);
//! - [`sample_posts_repeated`]: the built-in sample of real posts repeated with new ids
//!   and shifted event time, so its narratives recur and alert;
//! - [`all_document_ids`]: every id in a daemon's index, exactly, through its search API;
//! - [`verify_signed_request`]: Standard Webhooks verification of a received request.

use std::io::BufRead;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use crate::{
    free_port, http_get, http_request, repo_root, KillOnDrop, ReceivedRequest, TestBroker,
};

/// The bucket Tansu stores its data in on the moto server.
const BUCKET: &str = "tansu";

/// Credentials and endpoint of the moto server, as Tansu's S3 client reads them.
fn s3_environment(moto_port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ACCESS_KEY_ID", "soak".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "soak".to_owned()),
        ("AWS_DEFAULT_REGION", "us-east-1".to_owned()),
        ("AWS_ENDPOINT", format!("http://127.0.0.1:{moto_port}")),
        ("AWS_ALLOW_HTTP", "true".to_owned()),
    ]
}

/// A Tansu broker storing its data in S3 (a moto server on a free loopback port, started
/// with it), so that [`PersistentBroker::stop`] and [`PersistentBroker::restart`] keep
/// topics, records and committed offsets. Dereferences to [`TestBroker`] for its helpers.
pub struct PersistentBroker {
    broker: TestBroker,
    port: u16,
    moto_port: u16,
    running: bool,
    // Dropped after `broker` (fields drop in order), so Tansu never outlives its storage
    // by more than a moment.
    _storage: KillOnDrop,
}

impl PersistentBroker {
    /// Starts moto (`python3 -m moto.server`, PyPI package `moto[server]`), creates the
    /// bucket, then starts Tansu on a free port with `s3://tansu/` storage.
    pub fn start() -> anyhow::Result<PersistentBroker> {
        let moto_port = free_port()?;
        let log_dir = tempfile::tempdir()?;
        let moto_log = std::fs::File::create(log_dir.path().join("moto.log"))?;
        let moto = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p"])
            .arg(moto_port.to_string())
            .stdin(Stdio::null())
            .stdout(moto_log.try_clone()?)
            .stderr(moto_log)
            .spawn()
            .context("failed to start python3 -m moto.server (pip install 'moto[server]')")?;
        let storage = KillOnDrop(moto);
        let deadline = Instant::now() + Duration::from_secs(30);
        // CreateBucket; moto answers once it is up.
        loop {
            match http_request(moto_port, "PUT", &format!("/{BUCKET}"), None) {
                Some((200, _)) => break,
                answer if Instant::now() > deadline => {
                    bail!("moto did not create the bucket within 30 s: {answer:?}")
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
        let port = free_port()?;
        let broker = TestBroker::spawn(
            port,
            &format!("s3://{BUCKET}/"),
            &s3_environment(moto_port),
            log_dir,
        )?;
        Ok(PersistentBroker {
            broker,
            port,
            moto_port,
            running: true,
            _storage: storage,
        })
    }

    /// Stops Tansu (SIGTERM, then SIGKILL after 10 s) and waits for it to exit.
    pub fn stop(&mut self) -> anyhow::Result<()> {
        terminate(&mut self.broker.child, Duration::from_secs(10))?;
        self.running = false;
        Ok(())
    }

    /// Starts Tansu again on the same port with the same storage.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        if self.running {
            bail!("the broker is still running");
        }
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.broker.log_path)?;
        self.broker.child = tansu_command(self.port, &format!("s3://{BUCKET}/"))?
            .envs(s3_environment(self.moto_port))
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("failed to restart tansu")?;
        self.running = true;
        self.broker.wait_until_listening(self.port)
    }
}

impl std::ops::Deref for PersistentBroker {
    type Target = TestBroker;

    fn deref(&self) -> &TestBroker {
        &self.broker
    }
}

/// Returns `tansu broker` listening and advertised on `127.0.0.1:port` with `storage`,
/// standard input closed.
pub(crate) fn tansu_command(port: u16, storage: &str) -> anyhow::Result<Command> {
    let binary = crate::broker::tansu_binary()?;
    let url = format!("tcp://127.0.0.1:{port}");
    let mut command = Command::new(binary);
    command
        .args(["broker", "--listener-url", &url])
        .args(["--advertised-listener-url", &url])
        .args(["--storage-engine", storage])
        .stdin(Stdio::null());
    Ok(command)
}

/// Sends SIGTERM to `child`, waits up to `grace` for it to exit, then kills it.
pub fn terminate(child: &mut Child, grace: Duration) -> anyhow::Result<std::process::ExitStatus> {
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()?;
    let deadline = Instant::now() + grace;
    loop {
        if let Some(status) = child.try_wait()? {
            return Ok(status);
        }
        if Instant::now() > deadline {
            child.kill()?;
            return Ok(child.wait()?);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// One post of [`sample_posts_repeated`].
#[derive(Debug, Clone)]
pub struct SoakPost {
    /// Its id (unique over the whole stream).
    pub id: String,
    /// Its `created_at`, Unix seconds.
    pub at: i64,
    /// Its JSON line, without the newline.
    pub json: String,
}

/// Parses `YYYY-MM-DDTHH:MM:SSZ` (UTC, as the sample writes it) into Unix seconds.
pub fn parse_utc(text: &str) -> Option<i64> {
    let number = |range: std::ops::Range<usize>| text.get(range)?.parse::<i64>().ok();
    if text.len() != 20 || !text.ends_with('Z') {
        return None;
    }
    let (year, month, day) = (number(0..4)?, number(5..7)?, number(8..10)?);
    let (hour, minute, second) = (number(11..13)?, number(14..16)?, number(17..19)?);
    // Days-from-civil (Howard Hinnant's algorithm), the inverse of `rfc3339`.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + minute * 60 + second)
}

/// Returns `count` posts: the built-in sample (`crates/vigie-daemon/data/sample.jsonl.gz`,
/// 5,271 real posts over 12 hours) repeated as often as needed, repetition `r` with ids
/// `ID/rR` and `created_at` shifted by `r` spans (the span is last minus first post time,
/// plus the minute of the last post), so event time keeps moving forward and the sample's
/// narratives recur.
pub fn sample_posts_repeated(count: usize) -> anyhow::Result<Vec<SoakPost>> {
    let path = repo_root().join("crates/vigie-daemon/data/sample.jsonl.gz");
    let file = std::fs::File::open(&path).with_context(|| path.display().to_string())?;
    let mut sample = Vec::new();
    for line in std::io::BufReader::new(flate2::read::GzDecoder::new(file)).lines() {
        let post: serde_json::Value = serde_json::from_str(&line?)?;
        let at = post["created_at"]
            .as_str()
            .and_then(parse_utc)
            .with_context(|| format!("created_at of {post}"))?;
        sample.push((at, post));
    }
    let first = sample
        .iter()
        .map(|(at, _)| *at)
        .min()
        .context("empty sample")?;
    let last = sample
        .iter()
        .map(|(at, _)| *at)
        .max()
        .context("empty sample")?;
    let span = last - first + 60;
    let mut posts = Vec::with_capacity(count);
    for repetition in 0.. {
        for (at, post) in &sample {
            if posts.len() == count {
                return Ok(posts);
            }
            let mut post = post.clone();
            let id = format!("{}/r{repetition}", post["id"].as_str().context("id")?);
            post["id"] = id.clone().into();
            let at = at + repetition * span;
            post["created_at"] = crate::rfc3339(at).into();
            posts.push(SoakPost {
                id,
                at,
                json: post.to_string(),
            });
        }
    }
    unreachable!("the loop returns")
}

/// Most hits the search API returns for one request.
const SEARCH_PAGE: u64 = 1000;

/// Returns the id of every document in the index of the daemon on `port`, one entry per
/// document (so a duplicated post shows twice), by asking `GET /api/v1/search` for
/// `created_at` windows of at most 1,000 posts within `[since, until)` (Unix seconds).
pub fn all_document_ids(port: u16, since: i64, until: i64) -> anyhow::Result<Vec<String>> {
    let mut ids = Vec::new();
    let mut windows = vec![(since, until)];
    while let Some((from, to)) = windows.pop() {
        let path = format!("/api/v1/search?q=*&since={from}&until={to}&limit={SEARCH_PAGE}");
        let (status, body) = http_get(port, &path).with_context(|| format!("no answer: {path}"))?;
        if status != 200 {
            bail!("{path}: {status} {body}");
        }
        let answer: serde_json::Value = serde_json::from_str(&body)?;
        let total = answer["total_hits"].as_u64().context("total_hits")?;
        if total > SEARCH_PAGE {
            if to - from <= 1 {
                bail!("more than {SEARCH_PAGE} posts at second {from}");
            }
            let middle = from + (to - from) / 2;
            windows.push((from, middle));
            windows.push((middle, to));
            continue;
        }
        let hits = answer["hits"].as_array().context("hits")?;
        if hits.len() as u64 != total {
            bail!("{path}: {} hits for total_hits {total}", hits.len());
        }
        for hit in hits {
            ids.push(hit["id"].as_str().context("hit id")?.to_owned());
        }
    }
    Ok(ids)
}

/// Verifies a received request's Standard Webhooks signature (`webhook-id`,
/// `webhook-timestamp`, `webhook-signature`) with `secret`.
pub fn verify_signed_request(secret: &str, request: &ReceivedRequest) -> Result<(), String> {
    let mut headers = reqwest::header::HeaderMap::new();
    for (name, value) in &request.headers {
        let name =
            reqwest::header::HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?;
        let value = reqwest::header::HeaderValue::from_str(value).map_err(|e| e.to_string())?;
        headers.insert(name, value);
    }
    vigie_alert_delivery::verify_standard_webhook(secret, &headers, &request.body)
        .map_err(|e| e.to_string())
}

/// Returns the file's lines parsed as JSON, skipping none (a torn line is an error).
pub fn read_jsonl(path: &Path) -> anyhow::Result<Vec<serde_json::Value>> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    text.lines()
        .map(|line| serde_json::from_str(line).with_context(|| format!("line {line:?}")))
        .collect()
}
