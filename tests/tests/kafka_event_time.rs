//! Issue 8 item 5, robust event time, end to end: one post dated weeks ahead does not hide a
//! narrative, and the same posts read from a 4-partition topic (twice, once with a SIGKILL
//! and restart in the middle) give the same narratives as a replay of the file.
//!
//! Both tests run the `vigie` binary (`cargo build -p vigie-daemon` first when running this
//! file alone). `TEST_VIGIE_BINARY` replaces it (see `vigie_tests::vigie_binary`), to check
//! that the tests fail on a build without the event-time orderer.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use vigie_tests::{
    free_port, metric_sum, repo_root, vigie_binary, Record, TestBroker, VigieProcess,
};

/// The built-in sample (5,271 IRA posts of 2015-11-26, ending with the #KochFarms hoax).
fn sample_lines() -> anyhow::Result<Vec<String>> {
    let path = repo_root().join("crates/vigie-daemon/data/sample.jsonl.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(std::fs::File::open(&path)?).read_to_string(&mut text)?;
    Ok(text.lines().map(str::to_owned).collect())
}

/// Issue 8, acceptance row "the built-in sample with one post dated three weeks ahead
/// still alerts on #KochFarms": before, event time jumped to that post, every later post
/// counted as late at its time, and the hoax only ever reached `info`, on 2015-12-17.
#[test]
fn issue_8_a_post_three_weeks_ahead_does_not_hide_kochfarms() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let mut lines = sample_lines()?;
    let model: serde_json::Value = serde_json::from_str(&lines[99])?;
    let outlier = serde_json::json!({
        "id": "outlier-three-weeks-ahead",
        "created_at": "2015-12-17T12:34:00Z",
        "author": "u_outlier",
        "lang": model["lang"],
        "text": model["text"],
    });
    lines.insert(100, outlier.to_string());
    let input = dir.path().join("sample-ahead.jsonl");
    std::fs::write(&input, lines.join("\n") + "\n")?;
    let alerts = dir.path().join("alerts.jsonl");
    let output = Command::new(vigie_binary())
        .arg("replay")
        .arg(&input)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--alerts-to")
        .arg(&alerts)
        .arg("--no-progress")
        .env("VIGIE_LOG", "warn")
        .output()?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let notifications: Vec<serde_json::Value> = std::fs::read_to_string(&alerts)?
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let koch_firing = notifications.iter().find(|n| {
        n["kind"] == "firing"
            && n["alert"]["narrative_label"]
                .as_str()
                .is_some_and(|label| label.to_lowercase().contains("kochfarms"))
            && matches!(
                n["alert"]["severity"].as_str(),
                Some("warning" | "critical")
            )
    });
    let koch_firing = koch_firing.with_context(|| {
        format!("no warning or critical #KochFarms alert; replay printed:\n{stdout}")
    })?;
    assert!(
        koch_firing["at"]
            .as_str()
            .unwrap()
            .starts_with("2015-11-26"),
        "{koch_firing}"
    );
    // Event time never jumped to the outlier: no notification is dated after the sample.
    let late: Vec<&serde_json::Value> = notifications
        .iter()
        .filter(|n| n["at"].as_str().is_some_and(|at| at >= "2015-11-27"))
        .collect();
    assert!(
        late.is_empty(),
        "notifications dated after the sample: {late:?}"
    );
    Ok(())
}

/// The fields of a narrative that must not depend on how the posts were read (authors are
/// pseudonymised with a salt of each data directory, so they are left out).
fn narrative_key(narrative: &serde_json::Value) -> serde_json::Value {
    let fields = [
        "id",
        "parent",
        "label",
        "status",
        "severity",
        "first_seen",
        "last_seen",
        "posts_total",
        "posts_in_window",
        "distinct_authors",
        "hashtags",
        "member_post_ids",
        "window_post_ids",
    ];
    fields
        .iter()
        .map(|field| (field.to_string(), narrative[*field].clone()))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// Waits until the daemon's detector has observed `posts`, then returns every narrative.
fn narratives_after(
    vigie: &mut VigieProcess,
    posts: u64,
    timeout: Duration,
) -> anyhow::Result<Vec<serde_json::Value>> {
    let answer = vigie.wait_for(&format!("{posts} posts observed"), timeout, |v| {
        v.get_json("/api/v1/narratives?limit=100000")
            .filter(|answer| answer["posts_observed"] == posts)
    })?;
    Ok(answer["narratives"]
        .as_array()
        .context("narratives")?
        .iter()
        .map(narrative_key)
        .collect())
}

fn kafka_config(dir: &Path, broker: &TestBroker, group: &str, http_port: u16) -> PathBuf {
    let config = format!(
        r#"
data_dir = "{data}"
[source]
kind = "kafka"
[kafka]
brokers = "{brokers}"
group_id = "{group}"
topics = ["{TOPIC}"]
dead_letter_topic = "{TOPIC}-dead-letter"
create_topics = false
batch_max_messages = 200
batch_max_wait_ms = 100
[kafka.properties]
"session.timeout.ms" = "6000"
"heartbeat.interval.ms" = "1000"
[index]
commit_every_posts = 500
commit_interval_secs = 1
[snapshot]
interval_secs = 1
{DETECT}
[http]
listen = "127.0.0.1:{http_port}"
"#,
        data = dir.join("data").display(),
        brokers = broker.bootstrap,
    );
    let path = dir.join(format!("vigie-{group}.toml"));
    std::fs::write(&path, config).expect("the temp dir is writable");
    path
}

const TOPIC: &str = "event-time";

/// Smaller sketches than the defaults, the same in every run: a snapshot every second
/// then takes a fraction of the time in a debug build.
const DETECT: &str = "[detect]\nterm_sketch_cells = 16384\npair_sketch_cells = 65536";

/// Compares two runs' narratives, naming the first difference; on a difference the error
/// carries the consumer's rebalance and restore lines from `log`, since how partitions were
/// handed out is what an intermittent difference would come from.
fn same_narratives(
    what: &str,
    expected: &[serde_json::Value],
    found: &[serde_json::Value],
    log: &str,
) -> anyhow::Result<()> {
    let ids = |narratives: &[serde_json::Value]| -> BTreeSet<String> {
        narratives.iter().map(|n| n["id"].to_string()).collect()
    };
    let context = || -> String {
        log.lines()
            .filter(|line| {
                ["partitions", "restored", "rebalance", "late", "snapshot"]
                    .iter()
                    .any(|word| line.contains(word))
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (expected_ids, found_ids) = (ids(expected), ids(found));
    if expected_ids != found_ids {
        bail!(
            "{what}: narrative ids differ from the replay's\n  only in the replay: {:?}\n  only here: {:?}\nlog:\n{}",
            expected_ids.difference(&found_ids).collect::<Vec<_>>(),
            found_ids.difference(&expected_ids).collect::<Vec<_>>(),
            context()
        );
    }
    for narrative in expected {
        let twin = found.iter().find(|n| n["id"] == narrative["id"]).unwrap();
        if twin != narrative {
            bail!(
                "{what}: narrative {} differs\n  replay: {narrative}\n  here:   {twin}\nlog:\n{}",
                narrative["id"],
                context()
            );
        }
    }
    Ok(())
}

/// Issue 8, acceptance row "against the real broker: the same posts produced to a
/// 4-partition topic and consumed twice, once with a SIGKILL and restart in the middle,
/// give the same narratives as `vigie replay` of the same file". Before, a partition read
/// ahead dragged event time and the others' posts counted as late, so each consumption
/// gave other narratives.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn issue_8_four_partitions_consumed_twice_give_the_same_narratives_as_replay(
) -> anyhow::Result<()> {
    let started = Instant::now();
    let lines = sample_lines()?;
    let total = lines.len() as u64;
    let dir = tempfile::tempdir()?;

    // The reference: the file through the replay pipeline (`vigie run` with
    // `source.kind = "files"` is `vigie replay` that keeps serving the API).
    let file = dir.path().join("sample.jsonl");
    std::fs::write(&file, lines.join("\n") + "\n")?;
    let replay_dir = dir.path().join("replay");
    std::fs::create_dir_all(&replay_dir)?;
    let port = free_port()?;
    let config = replay_dir.join("vigie.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{}\"\n[source]\nkind = \"files\"\nfiles = [\"{}\"]\n{DETECT}\n[http]\nlisten = \"127.0.0.1:{port}\"\n",
            replay_dir.join("data").display(),
            file.display()
        ),
    )?;
    let mut replay = VigieProcess::run(&config, port, &replay_dir.join("vigie.log"))?;
    let expected = narratives_after(&mut replay, total, Duration::from_secs(120))?;
    drop(replay);
    eprintln!("replay: {:?}", started.elapsed());
    assert!(
        expected.len() >= 10,
        "the sample gives narratives: {expected:?}"
    );

    let broker = TestBroker::start()?;
    broker.create_topic(TOPIC, 4).await?;
    broker
        .create_topic(&format!("{TOPIC}-dead-letter"), 1)
        .await?;
    // Round-robin over the partitions, so each one spans the whole half-day.
    let records: Vec<Record> = lines
        .iter()
        .enumerate()
        .map(|(i, line)| Record::new(line.as_bytes().to_vec()).to_partition(i as i32 % 4))
        .collect();
    broker.produce_many(TOPIC, records).await?;

    // First consumption: a fresh group, no fault.
    let first_dir = dir.path().join("first");
    std::fs::create_dir_all(&first_dir)?;
    let port = free_port()?;
    let mut first = VigieProcess::run(
        &kafka_config(&first_dir, &broker, "event-time-first", port),
        port,
        &first_dir.join("vigie.log"),
    )?;
    let found = narratives_after(&mut first, total, Duration::from_secs(120))?;
    let (_, metrics) = first.get("/metrics").context("metrics")?;
    let first_log = first.log();
    drop(first);
    eprintln!("first consumption: {:?}", started.elapsed());
    same_narratives("first consumption", &expected, &found, &first_log)?;
    assert_eq!(
        metric_sum(&metrics, "vigie_detector_reorder_forced_total", &[]),
        0.0
    );

    // Second consumption: another fresh group, SIGKILL once a snapshot holds part of the
    // stream, then a restart on the same data directory.
    let second_dir = dir.path().join("second");
    std::fs::create_dir_all(&second_dir)?;
    let port = free_port()?;
    let config = kafka_config(&second_dir, &broker, "event-time-second", port);
    let mut second = VigieProcess::run(&config, port, &second_dir.join("vigie.log"))?;
    let snapshot = second_dir.join("data/detector.snapshot");
    let observed_at_kill = second.wait_for(
        "a snapshot and some posts observed",
        Duration::from_secs(120),
        |v| {
            let observed = v.get_json("/api/v1/narratives?limit=1")?["posts_observed"].as_u64()?;
            (snapshot.exists() && observed >= total / 4).then_some(observed)
        },
    )?;
    second.kill_hard();
    eprintln!("killed: {:?}", started.elapsed());
    if observed_at_kill >= total {
        bail!("the stream was fully observed before the kill ({observed_at_kill} posts)");
    }
    let port = free_port()?;
    let config = kafka_config(&second_dir, &broker, "event-time-second", port);
    let mut restarted = VigieProcess::run(&config, port, &second_dir.join("vigie.log"))?;
    let found = narratives_after(&mut restarted, total, Duration::from_secs(120))?;
    assert!(
        restarted.log().contains("detector state restored"),
        "{}",
        restarted.log()
    );
    same_narratives(
        &format!("second consumption, killed after {observed_at_kill} posts"),
        &expected,
        &found,
        &restarted.log(),
    )?;
    eprintln!(
        "{} narratives alike in the replay and both consumptions (killed after {observed_at_kill} of {total} posts), {:?}",
        expected.len(),
        started.elapsed()
    );
    Ok(())
}
