//! Kafka-path benchmark (issue 9): the posts of a JSONL(.gz) file ×4 (new ids, event times
//! shifted past the previous copy) produced into a 4-partition topic of a real broker
//! (Tansu, `scripts/test-broker.sh install`), then consumed by `vigie run` through analysis,
//! index and detection, with the defaults a user starts from.
//!
//! Three measurements, in one run on the same broker:
//! 1. **Broker read rate**: a plain rdkafka consumer reads the whole topic and does nothing
//!    else, the ceiling any consumer on this machine and broker has.
//! 2. **Backlog**: the topic is full before `vigie run` starts; posts/s from its first post
//!    consumed to its last post searchable and handed to detection (the rate it catches up
//!    at). Latencies here are queueing behind the backlog, printed for completeness.
//! 3. **Paced**: `vigie run` is already consuming a fresh topic while posts are produced at
//!    a fixed rate (each rate given, default: 80% of the backlog rate and the 50,000/s
//!    target) for `--paced-secs`; p50/p99 from produce time (the Kafka message timestamp) to
//!    searchable (`vigie_index_produce_to_searchable_seconds`) and to detection
//!    (`vigie_detect_produce_to_detection_seconds`), read from `/metrics`, and whether the
//!    rate was sustained (the pipeline kept up: the last post was searchable within 5 s of
//!    its production).
//!
//! ```sh
//! cargo build --release -p vigie-daemon --bin vigie
//! cargo run --release -p vigie-benches --bin kafka -- ../shared/data/ira-troll-tweets/posts.jsonl.gz
//! # options: --copies N (4)  --rates R1,R2 (posts/s; `none`: backlog only)  --paced-secs S (60)
//! #          --commit-secs S (index commit interval of the paced runs; 1)
//! #          --property KEY=VALUE (a librdkafka property of Vigie's consumer; repeatable)
//! ```
//!
//! The paced runs commit the index every second (`[index] commit_interval_secs = 1`, what
//! a user who wants posts searchable within 2 s sets; the default, 5 s, bounds freshness
//! by itself), the backlog run uses the defaults.

use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use chrono::{DateTime, Utc};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};
use serde_json::json;
use vigie_benches::{open_jsonl, Process};
use vigie_tests::{free_port, metric_sum, TestBroker, VigieProcess};

const PARTITIONS: i32 = 4;

fn main() -> anyhow::Result<()> {
    let options = Options::parse()?;
    // The `vigie` binary beside this one (target/release), unless the caller names another.
    if std::env::var_os("TEST_VIGIE_BINARY").is_none() {
        let exe = std::env::current_exe()?;
        std::env::set_var("TEST_VIGIE_BINARY", exe.with_file_name("vigie"));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?;
    let posts = load_copies(&options.file, options.copies)?;
    let total = posts.len() as u64;
    eprintln!(
        "{total} posts ({} copies of {})",
        options.copies,
        options.file.display()
    );
    let broker =
        TestBroker::start().context("start the broker (scripts/test-broker.sh install)")?;
    let work = tempfile::tempdir()?;

    runtime.block_on(broker.create_topic("backlog", PARTITIONS))?;
    runtime.block_on(broker.create_topic("bench-dead-letter", 1))?;
    let produced = produce(&broker, "backlog", &posts, None)?;
    eprintln!("produced: {produced}");
    let read = broker_read_rate(&broker, "backlog", total)?;
    eprintln!("broker read: {read}");
    let setup = Setup {
        broker: &broker,
        dir: work.path(),
        properties: &options.properties,
    };
    let backlog = backlog_run(&setup, total)?;
    eprintln!("backlog: {backlog}");

    let backlog_rate = backlog["posts_per_sec"].as_f64().unwrap_or(1000.0);
    let rates = options
        .rates
        .clone()
        .unwrap_or_else(|| vec![(backlog_rate * 0.8).round() as u64, 50_000]);
    let mut paced = Vec::new();
    let mut offset = 0usize;
    for rate in rates {
        let count = ((rate as f64 * options.paced_secs) as usize).min(posts.len());
        // Each paced run reads posts that follow the previous run's in event time, so the
        // detector sees one continuous stream.
        if offset + count > posts.len() {
            offset = 0;
        }
        let slice = &posts[offset..offset + count];
        offset += count;
        let result = paced_run(&runtime, &setup, rate, slice, options.commit_secs)?;
        eprintln!("paced: {result}");
        paced.push(result);
    }
    let report = json!({
        "input": options.file.display().to_string(),
        "posts": total,
        "partitions": PARTITIONS,
        "produce": produced,
        "broker_read": read,
        "vigie_backlog": backlog,
        "vigie_paced": paced,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}

struct Options {
    file: PathBuf,
    copies: usize,
    rates: Option<Vec<u64>>,
    paced_secs: f64,
    commit_secs: u64,
    /// Extra `[kafka.properties]` lines of Vigie's configuration.
    properties: Vec<(String, String)>,
}

impl Options {
    fn parse() -> anyhow::Result<Options> {
        let mut options = Options {
            file: Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../shared/data/ira-troll-tweets/posts.jsonl.gz"),
            copies: 4,
            rates: None,
            paced_secs: 60.0,
            commit_secs: 1,
            properties: Vec::new(),
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--copies" => options.copies = value()?.parse().context("--copies")?,
                "--property" => {
                    let property = value()?;
                    let (key, value) = property.split_once('=').context("--property KEY=VALUE")?;
                    options.properties.push((key.to_owned(), value.to_owned()));
                }
                "--commit-secs" => {
                    options.commit_secs = value()?.parse().context("--commit-secs")?
                }
                "--paced-secs" => options.paced_secs = value()?.parse().context("--paced-secs")?,
                "--rates" => {
                    let rates = value()?;
                    if rates == "none" {
                        options.rates = Some(Vec::new());
                        continue;
                    }
                    let rates = rates
                        .split(',')
                        .map(|r| r.trim().parse::<u64>())
                        .collect::<Result<Vec<u64>, _>>()
                        .context("--rates R1,R2,…")?;
                    if rates.contains(&0) {
                        bail!("--rates: every rate must be positive");
                    }
                    options.rates = Some(rates);
                }
                flag if flag.starts_with("--") => bail!("unknown option {flag}"),
                file => options.file = PathBuf::from(file),
            }
        }
        if options.copies == 0 || options.paced_secs <= 0.0 || options.commit_secs == 0 {
            bail!("--copies, --paced-secs and --commit-secs must be positive");
        }
        if !options.file.exists() {
            bail!("{} not found (pass a JSONL file)", options.file.display());
        }
        Ok(options)
    }
}

/// Reads the posts and returns `copies` copies of them, serialized, each with new ids
/// (`-kN`) and its event times shifted past the previous copy's.
fn load_copies(file: &Path, copies: usize) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut posts: Vec<(serde_json::Value, DateTime<Utc>)> = Vec::new();
    for line in open_jsonl(file)?.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let post: serde_json::Value = serde_json::from_str(&line)?;
        let at = post["created_at"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .with_context(|| format!("no created_at in {line:.200}"))?;
        posts.push((post, at.with_timezone(&Utc)));
    }
    let first = posts.iter().map(|(_, at)| *at).min().context("no posts")?;
    let last = posts.iter().map(|(_, at)| *at).max().context("no posts")?;
    let span = last - first + chrono::Duration::days(1);
    let mut out = Vec::with_capacity(posts.len() * copies);
    for copy in 0..copies {
        for (post, at) in &posts {
            let mut shifted = post.clone();
            let id = post["id"].as_str().unwrap_or_default();
            shifted["id"] = json!(format!("{id}-k{copy}"));
            shifted["created_at"] = json!((*at + span * copy as i32)
                .format("%Y-%m-%dT%H:%M:%SZ")
                .to_string());
            out.push(serde_json::to_vec(&shifted)?);
        }
    }
    Ok(out)
}

/// Counts failed deliveries of the bench producer.
struct DeliveryCounter {
    failed: Arc<AtomicU64>,
}

impl ClientContext for DeliveryCounter {}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if result.is_err() {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Produces `posts` round-robin over the partitions, as fast as the broker takes them or
/// at `rate` posts/s; returns the produce rate and failed deliveries.
fn produce(
    broker: &TestBroker,
    topic: &str,
    posts: &[Vec<u8>],
    rate: Option<u64>,
) -> anyhow::Result<serde_json::Value> {
    let failed = Arc::new(AtomicU64::new(0));
    let producer: ThreadedProducer<DeliveryCounter> = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .set("acks", "all")
        .set("linger.ms", "5")
        .set("batch.num.messages", "10000")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .create_with_context(DeliveryCounter {
            failed: failed.clone(),
        })
        .context("bench producer")?;
    let started = Instant::now();
    for (n, payload) in posts.iter().enumerate() {
        if let Some(rate) = rate {
            let due = started + Duration::from_secs_f64(n as f64 / rate as f64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        let mut record = BaseRecord::<(), [u8]>::to(topic)
            .payload(payload.as_slice())
            .partition(n as i32 % PARTITIONS);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err((err, _)) => return Err(err).context("produce"),
            }
        }
    }
    producer.flush(Duration::from_secs(120)).context("flush")?;
    let secs = started.elapsed().as_secs_f64();
    let failed = failed.load(Ordering::Relaxed);
    if failed > 0 {
        bail!("{failed} posts were not delivered to the broker");
    }
    Ok(json!({
        "posts": posts.len(),
        "secs": round(secs),
        "posts_per_sec": (posts.len() as f64 / secs).round(),
    }))
}

/// Reads the whole topic with a plain consumer (no group, no processing): the broker's
/// read ceiling on this machine.
fn broker_read_rate(
    broker: &TestBroker,
    topic: &str,
    total: u64,
) -> anyhow::Result<serde_json::Value> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &broker.bootstrap)
        .set("group.id", "bench-read")
        .set("enable.auto.commit", "false")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        assignment.add_partition_offset(topic, partition, Offset::Beginning)?;
    }
    consumer.assign(&assignment)?;
    let started = Instant::now();
    let (mut read, mut bytes) = (0u64, 0u64);
    // How unevenly the partitions arrive: the largest lead, in messages, of the partition
    // read furthest over the one read least. Round-robin production puts the same event
    // times at the same offsets, so this is what an event-time orderer has to buffer.
    let mut per_partition = [0u64; PARTITIONS as usize];
    let mut max_skew = 0u64;
    while read < total {
        if started.elapsed() > Duration::from_secs(600) {
            bail!("read only {read} of {total} messages in 600 s");
        }
        if let Some(message) = consumer.poll(Duration::from_millis(500)) {
            let message = message?;
            bytes += message.payload_len() as u64;
            read += 1;
            per_partition[message.partition() as usize % per_partition.len()] += 1;
            let most = per_partition.iter().max().copied().unwrap_or(0);
            let least = per_partition.iter().min().copied().unwrap_or(0);
            // Partitions that are fully read no longer lag.
            let open_least = if least * PARTITIONS as u64 >= total {
                most
            } else {
                least
            };
            max_skew = max_skew.max(most - open_least);
        }
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(json!({
        "posts_per_sec": (read as f64 / secs).round(),
        "mean_bytes_per_post": bytes / read.max(1),
        "max_partition_skew_posts": max_skew,
    }))
}

/// Where the Vigie runs go: the broker, a work directory, extra consumer properties.
struct Setup<'a> {
    broker: &'a TestBroker,
    dir: &'a Path,
    properties: &'a [(String, String)],
}

/// Writes the `vigie run` configuration: the Kafka source on `topic` (defaults but for a
/// fast group join against Tansu), the index committed every `commit_secs` when given,
/// everything else the defaults.
fn vigie_config(
    setup: &Setup<'_>,
    topic: &str,
    port: u16,
    commit_secs: Option<u64>,
) -> anyhow::Result<PathBuf> {
    let dir = setup.dir;
    let properties: String = setup
        .properties
        .iter()
        .map(|(key, value)| format!("{key:?} = {value:?}\n"))
        .collect();
    let config = format!(
        "data_dir = \"{data}\"\n[source]\nkind = \"kafka\"\n[kafka]\nbrokers = \"{brokers}\"\n\
         group_id = \"bench-{topic}\"\ntopics = [\"{topic}\"]\ndead_letter_topic = \"bench-dead-letter\"\n\
         create_topics = false\n[kafka.properties]\n\"session.timeout.ms\" = \"6000\"\n\
         \"heartbeat.interval.ms\" = \"1000\"\n{properties}[http]\nlisten = \"127.0.0.1:{port}\"\n",
        data = dir.join(format!("data-{topic}")).display(),
        brokers = setup.broker.bootstrap,
    );
    let index = commit_secs.map_or(String::new(), |secs| {
        format!("[index]\ncommit_interval_secs = {secs}\n")
    });
    let path = dir.join(format!("vigie-{topic}.toml"));
    std::fs::write(&path, config + &index)?;
    Ok(path)
}

/// One scrape of the figures the bench follows.
struct Scrape {
    consumed: f64,
    rejected: f64,
    searchable: f64,
    detected: f64,
    /// The most posts seen waiting in the event-time reorder buffer so far.
    max_reorder_buffered: f64,
    text: String,
}

fn scrape(vigie: &VigieProcess) -> Option<Scrape> {
    let (status, text) = vigie.get("/metrics")?;
    (status == 200).then(|| Scrape {
        consumed: metric_sum(&text, "vigie_source_messages_consumed_total", &[]),
        rejected: metric_sum(&text, "vigie_posts_rejected_total", &[]),
        searchable: metric_sum(
            &text,
            "vigie_index_produce_to_searchable_seconds_count",
            &[],
        ),
        detected: metric_sum(
            &text,
            "vigie_detect_produce_to_detection_seconds_count",
            &[],
        ),
        max_reorder_buffered: metric_sum(&text, "vigie_detector_reorder_buffered_posts", &[]),
        text,
    })
}

/// Follows `vigie` until `total` messages are consumed and every valid post is searchable
/// and handed to detection; returns (first consumed, all done, last scrape).
fn follow(
    vigie: &mut VigieProcess,
    total: u64,
    timeout: Duration,
) -> anyhow::Result<(Instant, Instant, Scrape)> {
    let mut first_consumed = None;
    let mut max_reorder_buffered: f64 = 0.0;
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(mut s) = scrape(vigie) {
            max_reorder_buffered = max_reorder_buffered.max(s.max_reorder_buffered);
            s.max_reorder_buffered = max_reorder_buffered;
            if s.consumed > 0.0 && first_consumed.is_none() {
                first_consumed = Some(Instant::now());
            }
            let valid = total as f64 - s.rejected;
            if s.consumed >= total as f64 && s.searchable >= valid && s.detected >= valid {
                let now = Instant::now();
                return Ok((first_consumed.unwrap_or(now), now, s));
            }
            if Instant::now() > deadline {
                bail!(
                    "after {timeout:?}: consumed {}, searchable {}, detected {} of {total}",
                    s.consumed,
                    s.searchable,
                    s.detected
                );
            }
        }
        vigie.check_alive()?;
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `vigie run` on the full topic: the rate it catches up at.
fn backlog_run(setup: &Setup<'_>, total: u64) -> anyhow::Result<serde_json::Value> {
    let (port, dir) = (free_port()?, setup.dir);
    let config = vigie_config(setup, "backlog", port, None)?;
    let mut vigie = VigieProcess::run(&config, port, &dir.join("vigie-backlog.log"))?;
    let pid = vigie.pid();
    let cpu_before = pid.and_then(|pid| Process::Pid(pid).cpu_secs());
    let (first, done, last) = follow(&mut vigie, total, Duration::from_secs(3600))?;
    let secs = done.duration_since(first).as_secs_f64();
    let cpu = pid
        .and_then(|pid| Process::Pid(pid).cpu_secs())
        .zip(cpu_before)
        .map(|(a, b)| a - b);
    Ok(json!({
        "posts": total,
        "secs": round(secs),
        "posts_per_sec": (total as f64 / secs).round(),
        "cores_busy": cpu.map(|c| round(c / secs)),
        "peak_rss_mib": pid.and_then(peak_rss_mib),
        "max_reorder_buffered_posts": last.max_reorder_buffered,
        "reorder_forced_posts": metric_sum(&last.text, "vigie_detector_reorder_forced_total", &[]),
        "queued_latency_p50_s": quantile(&last.text, "vigie_index_produce_to_searchable_seconds", 0.5),
        "queued_latency_p99_s": quantile(&last.text, "vigie_index_produce_to_searchable_seconds", 0.99),
    }))
}

/// `vigie run` consuming while `posts` are produced at `rate` posts/s.
fn paced_run(
    runtime: &tokio::runtime::Runtime,
    setup: &Setup<'_>,
    rate: u64,
    posts: &[Vec<u8>],
    commit_secs: u64,
) -> anyhow::Result<serde_json::Value> {
    let (broker, dir) = (setup.broker, setup.dir);
    let topic = format!("paced-{rate}");
    runtime.block_on(broker.create_topic(&topic, PARTITIONS))?;
    let port = free_port()?;
    let config = vigie_config(setup, &topic, port, Some(commit_secs))?;
    let mut vigie = VigieProcess::run(&config, port, &dir.join(format!("vigie-{topic}.log")))?;
    // Produce only once the group has its partitions: the join is not the pipeline's time.
    vigie.wait_for("partitions assigned", Duration::from_secs(60), |v| {
        let (_, text) = v.get("/metrics")?;
        (metric_sum(&text, "vigie_source_connected", &[]) >= 1.0
            && v.log().contains("kafka partitions assigned"))
        .then_some(())
    })?;
    let produced = produce(broker, &topic, posts, Some(rate))?;
    let produced_at = Instant::now();
    let (_, done, last) = follow(&mut vigie, posts.len() as u64, Duration::from_secs(3600))?;
    let drain_secs = done.duration_since(produced_at).as_secs_f64();
    let name_s = "vigie_index_produce_to_searchable_seconds";
    let name_d = "vigie_detect_produce_to_detection_seconds";
    Ok(json!({
        "target_posts_per_sec": rate,
        "produced": produced,
        "posts": posts.len(),
        "drain_after_last_produced_s": round(drain_secs),
        "sustained": drain_secs <= 5.0,
        "searchable_p50_s": quantile(&last.text, name_s, 0.5),
        "searchable_p99_s": quantile(&last.text, name_s, 0.99),
        "detection_p50_s": quantile(&last.text, name_d, 0.5),
        "detection_p99_s": quantile(&last.text, name_d, 0.99),
        "index_commit_secs": commit_secs,
        "index_commit_p99_s": quantile(&last.text, "vigie_index_commit_duration_seconds", 0.99),
        "peak_rss_mib": vigie.pid().and_then(peak_rss_mib),
        "max_reorder_buffered_posts": last.max_reorder_buffered,
    }))
}

/// The `q` quantile of histogram `name` in an exposition, interpolated within its bucket
/// as Prometheus' `histogram_quantile` does.
fn quantile(exposition: &str, name: &str, q: f64) -> Option<f64> {
    let bucket = format!("{name}_bucket");
    let mut buckets: Vec<(f64, f64)> = exposition
        .lines()
        .filter(|line| line.starts_with(&bucket))
        .filter_map(|line| {
            let le = line.split("le=\"").nth(1)?.split('"').next()?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            let count: f64 = line.rsplit_once(' ')?.1.parse().ok()?;
            Some((le, count))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last()?.1;
    if total == 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for (le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return Some(lower);
            }
            let share = if count > below {
                (rank - below) / (count - below)
            } else {
                1.0
            };
            return Some(round(lower + (le - lower) * share));
        }
        (lower, below) = (le, count);
    }
    None
}

/// Peak resident memory of process `pid`, in whole MiB.
fn peak_rss_mib(pid: u32) -> Option<u64> {
    Process::Pid(pid).peak_rss_mib().map(|mib| mib as u64)
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}
