//! End-to-end tests of the `vigie` binary on files: replay, search, rejects, idempotence,
//! configuration errors, and the built-in default run.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use vigie_tests::{free_port, http_get, KillOnDrop};

fn vigie() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vigie"));
    // Keep the caller's VIGIE_* variables from changing what the tests check.
    for (name, _) in std::env::vars() {
        if name.starts_with("VIGIE_") {
            command.env_remove(name);
        }
    }
    command.env("VIGIE_LOG", "warn");
    command
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures")
        .join(name)
}

fn sample() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/sample.jsonl.gz")
}

fn run_ok(command: &mut Command) -> String {
    let output = command.output().expect("vigie runs");
    assert_success(&output);
    String::from_utf8(output.stdout).unwrap()
}

fn assert_success(output: &Output) {
    assert!(
        output.status.success(),
        "vigie failed ({}):\nstdout:\n{}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Returns the number after `label` in the replay summary.
fn summary_number(summary: &str, label: &str) -> u64 {
    let line = summary
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no {label:?} in:\n{summary}"));
    line[label.len()..]
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn search_json(data_dir: &Path, query: &str, extra: &[&str]) -> serde_json::Value {
    let out = run_ok(
        vigie()
            .args(["search", "--json", "--limit", "1000", "--data-dir"])
            .arg(data_dir)
            .arg(query)
            .args(extra),
    );
    serde_json::from_str(&out).unwrap()
}

#[test]
fn replay_indexes_every_post_once_and_search_finds_them() {
    let data = tempfile::tempdir().unwrap();
    let replay = || {
        run_ok(
            vigie()
                .arg("replay")
                .arg(fixture("pheme-sample.jsonl"))
                .arg("--data-dir")
                .arg(data.path()),
        )
    };
    let first = replay();
    assert_eq!(summary_number(&first, "posts read"), 446, "{first}");
    assert_eq!(summary_number(&first, "indexed"), 446, "{first}");
    assert_eq!(summary_number(&first, "rejected"), 0, "{first}");
    assert!(first.contains("posts/s"), "{first}");

    let hebdo = search_json(data.path(), "hebdo", &[]);
    let hits = hebdo["hits"].as_array().unwrap();
    // 67 posts of the fixture contain "hebdo": as a word, in #CharlieHebdo (found through
    // its parts), or in a handle like @Charlie_Hebdo_ (which is a mention, not a word).
    let total = hebdo["total_hits"].as_u64().unwrap();
    assert!((60..=67).contains(&total), "{total} hits for hebdo");
    for hit in hits {
        assert!(
            hit["text"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains("hebdo"),
            "{hit}"
        );
    }
    // Newest first.
    let times: Vec<&str> = hits
        .iter()
        .map(|h| h["created_at"].as_str().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "not newest-first: {times:?}"
    );

    // Replaying the same file again changes nothing: posts are upserted by id.
    let second = replay();
    assert!(second.contains("the index holds 446 documents"), "{second}");
    let all = search_json(data.path(), "*", &[]);
    assert_eq!(all["total_hits"], 446);
}

#[test]
fn malformed_lines_are_rejected_with_line_numbers_and_the_rest_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let good: Vec<String> = std::fs::read_to_string(fixture("pheme-sample.jsonl"))
        .unwrap()
        .lines()
        .take(40)
        .map(str::to_owned)
        .collect();
    let bad = [
        (3, "this is not json".to_owned(), "not_json"),
        (10, "[1, 2, 3]".to_owned(), "not_object"),
        (
            17,
            r#"{"id": "x1", "text": "no time"}"#.to_owned(),
            "missing_field",
        ),
        (
            25,
            r#"{"id": "x2", "text": "bad time", "created_at": "yesterday"}"#.to_owned(),
            "bad_time",
        ),
        (
            33,
            r#"{"id": "x3", "text": "   ", "created_at": 1420628800}"#.to_owned(),
            "empty_text",
        ),
    ];
    let mut lines = good.clone();
    for (line_number, text, _) in &bad {
        lines.insert(line_number - 1, text.clone());
    }
    let input = dir.path().join("mixed.jsonl");
    std::fs::write(&input, lines.join("\n") + "\n").unwrap();
    let data = dir.path().join("data");
    let out = run_ok(
        vigie()
            .arg("replay")
            .arg(&input)
            .arg("--data-dir")
            .arg(&data),
    );
    assert_eq!(summary_number(&out, "indexed"), 40, "{out}");
    assert_eq!(summary_number(&out, "rejected"), 5, "{out}");

    let rejected: Vec<serde_json::Value> = std::fs::read_to_string(data.join("rejected.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rejected.len(), 5);
    for (record, (line_number, text, reason)) in rejected.iter().zip(&bad) {
        assert_eq!(record["line"], *line_number as u64, "{record}");
        assert_eq!(record["reason"], *reason, "{record}");
        assert_eq!(record["raw"], text.as_str(), "{record}");
        assert!(record["path"].as_str().unwrap().ends_with("mixed.jsonl"));
    }
    assert_eq!(search_json(&data, "*", &[])["total_hits"], 40);
}

#[test]
fn russian_search_finds_inflected_forms_in_ira_posts() {
    let data = tempfile::tempdir().unwrap();
    let out = run_ok(
        vigie()
            .arg("replay")
            .arg(sample())
            .arg("--data-dir")
            .arg(data.path()),
    );
    assert_eq!(summary_number(&out, "indexed"), 5271, "{out}");
    // The sample has турция, турции, турцию and турцией (Turkey in four cases).
    let results = search_json(data.path(), "турция", &[]);
    let texts: Vec<String> = results["hits"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["text"].as_str().unwrap().to_lowercase())
        .collect();
    for form in ["турция", "турции", "турцию", "турцией"] {
        assert!(
            texts.iter().any(|t| t.contains(form)),
            "no post with {form:?} among {} hits",
            texts.len()
        );
    }
    // And the snippet marks the match.
    assert!(
        results["hits"][0]["snippet"]
            .as_str()
            .unwrap()
            .contains("<b>"),
        "{}",
        results["hits"][0]
    );
    // Language and time filters narrow the result.
    let ru = search_json(data.path(), "турция", &["--lang", "ru"]);
    assert!(ru["total_hits"].as_u64().unwrap() <= results["total_hits"].as_u64().unwrap());
    assert!(ru["hits"]
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["lang"] == "ru"));
    let late = search_json(data.path(), "турция", &["--since", "2015-11-26T18:00:00Z"]);
    assert!(late["hits"]
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["created_at"].as_str().unwrap() >= "2015-11-26T18:00:00"));
    assert!(late["total_hits"].as_u64().unwrap() < results["total_hits"].as_u64().unwrap());
}

#[test]
fn search_explains_bad_input() {
    let data = tempfile::tempdir().unwrap();
    let output = vigie()
        .args(["search", "--data-dir"])
        .arg(data.path())
        .arg("x")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("no index"),
        "{output:?}"
    );
    let output = vigie()
        .args(["search", "--since", "last week", "--data-dir"])
        .arg(data.path())
        .arg("x")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("RFC 3339"),
        "{output:?}"
    );
}

#[test]
fn check_config_names_the_bad_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[index]\ncommit_every_posts = -4\n").unwrap();
    let output = vigie().arg("check-config").arg(&file).output().unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("index.commit_every_posts"), "{stderr}");

    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/vigie.example.toml");
    let out = run_ok(vigie().arg("check-config").arg(&example));
    assert!(out.contains("is valid"), "{out}");
}

#[test]
fn help_is_available_for_every_command() {
    for command in [
        &["--help"][..],
        &["run", "--help"],
        &["replay", "--help"],
        &["search", "--help"],
        &["check-config", "--help"],
        &["eval", "--help"],
        &["produce", "--help"],
    ] {
        let out = run_ok(vigie().args(command));
        assert!(out.contains("Usage:"), "{command:?}: {out}");
    }
}

/// Sends a request with a JSON body and returns the status and body.
fn http_request(port: u16, method: &str, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split_whitespace().nth(1).unwrap().parse().unwrap();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[test]
fn default_run_replays_the_sample_serves_http_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().unwrap();
    let child = vigie()
        .arg("run")
        .current_dir(dir.path())
        .env("VIGIE_HTTP__LISTEN", format!("127.0.0.1:{port}"))
        .env("VIGIE_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut running = KillOnDrop(child);
    let stderr = running.0.stderr.take().unwrap();
    let (log_tx, log_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = log_tx.send(line);
        }
    });
    // Wait until the sample is fully indexed.
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut log = Vec::new();
    while !log.iter().any(|l: &String| l.contains("input replayed")) {
        assert!(
            Instant::now() < deadline,
            "sample not replayed in time; log:\n{}",
            log.join("\n")
        );
        if let Ok(line) = log_rx.recv_timeout(Duration::from_millis(200)) {
            log.push(line);
        }
    }
    assert!(
        log.iter()
            .any(|l| l.contains(&format!("http://127.0.0.1:{port}/"))),
        "the user is not told what to open:\n{}",
        log.join("\n")
    );
    assert_eq!(http_get(port, "/healthz").unwrap().0, 200);
    let (status, ready) = http_get(port, "/readyz").unwrap();
    assert_eq!(status, 200, "{ready}");
    let (_, metrics) = http_get(port, "/metrics").unwrap();
    assert!(
        metrics.contains("vigie_index_posts_indexed_total 5271"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vigie_posts_rejected_total{reason=\"not_json\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("vigie_index_commit_duration_seconds_count"),
        "{metrics}"
    );
    let (status, body) = http_get(port, "/api/v1/search?q=%23kochfarms&limit=3").unwrap();
    assert_eq!(status, 200, "{body}");
    let results: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert!(results["total_hits"].as_u64().unwrap() > 1000, "{results}");
    assert_eq!(results["hits"].as_array().unwrap().len(), 3);
    let (status, body) = http_get(port, "/api/v1/search?q=%22unclosed&since=2015-11-26").unwrap();
    assert_eq!(status, 400, "{body}");
    let (status, _) = http_get(port, "/api/v1/search?q=x&since=never").unwrap();
    assert_eq!(status, 400);
    let (status, home) = http_get(port, "/").unwrap();
    assert_eq!(status, 200);
    assert!(home.contains("/api/v1/search"));
    assert!(home.contains("/api/v1/narratives") && home.contains("/api/v1/alerts"));

    // The sample ends with the first two hours of the #KochFarms hoax: detection reports it
    // as a narrative worth an alert, with its evidence.
    let (status, body) = http_get(port, "/api/v1/narratives?min_severity=medium").unwrap();
    assert_eq!(status, 200, "{body}");
    let narratives: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(narratives["posts_observed"], 5271);
    let koch = narratives["narratives"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| {
            // The storyline (claims inside it have a parent).
            n["parent"].is_null()
                && n["label"]
                    .as_str()
                    .unwrap()
                    .to_lowercase()
                    .contains("kochfarms")
        })
        .unwrap_or_else(|| panic!("no KochFarms narrative: {narratives}"));
    // Issue 8: readable evidence, the posts' spelling, a headline and one representative
    // per near-duplicate group with its size and language.
    assert!(
        koch["label"].as_str().unwrap().contains("#KochFarms"),
        "{koch}"
    );
    assert!(!koch["headline"].as_str().unwrap().is_empty(), "{koch}");
    let shown = koch["representatives"].as_array().unwrap();
    assert!(!shown.is_empty(), "{koch}");
    assert!(
        shown
            .iter()
            .all(|r| r["copies"].as_u64().unwrap() >= 1 && !r["lang"].as_str().unwrap().is_empty()),
        "{koch}"
    );
    let shown_ids: Vec<&serde_json::Value> = shown.iter().map(|r| &r["post_id"]).collect();
    let cited_ids: Vec<&serde_json::Value> = koch["representative_post_ids"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(shown_ids, cited_ids);
    assert!(koch["distinct_authors"].as_u64().unwrap() >= 5, "{koch}");
    assert!(!koch["terms"].as_array().unwrap().is_empty(), "{koch}");
    assert!(
        !koch["representative_post_ids"]
            .as_array()
            .unwrap()
            .is_empty(),
        "{koch}"
    );
    let id = koch["id"].as_u64().unwrap();
    let (status, body) = http_get(port, &format!("/api/v1/narratives/n{id}")).unwrap();
    assert_eq!(status, 200, "{body}");
    let detail: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(detail["narrative"]["id"], id);
    assert!(
        !detail["timeline"].as_array().unwrap().is_empty(),
        "{detail}"
    );
    assert!(
        detail["search"]
            .as_str()
            .unwrap()
            .starts_with("/api/v1/search?q="),
        "{detail}"
    );
    assert_eq!(http_get(port, "/api/v1/narratives/n999999").unwrap().0, 404);
    assert_eq!(http_get(port, "/api/v1/narratives/banana").unwrap().0, 400);
    let (status, metrics) = http_get(port, "/metrics").unwrap();
    assert_eq!(status, 200);
    assert!(
        metrics.contains("vigie_detector_posts_observed_total 5271"),
        "{metrics}"
    );
    assert!(metrics.contains("vigie_detector_memory_bytes"), "{metrics}");

    // Watchlists: add, list, reject a bad query, remove.
    let (status, body) = http_request(
        port,
        "POST",
        "/api/v1/watchlists",
        r##"{"name":"koch","query":"#kochfarms OR (turkey AND poisoning)","domains":["example.com"]}"##,
    );
    assert_eq!(status, 201, "{body}");
    let (_, body) = http_get(port, "/api/v1/watchlists").unwrap();
    assert!(body.contains("\"koch\""), "{body}");
    let (status, body) = http_request(
        port,
        "POST",
        "/api/v1/watchlists",
        r#"{"name":"bad","query":"(unclosed"}"#,
    );
    assert_eq!(status, 400, "{body}");
    let (status, _) = http_request(port, "DELETE", "/api/v1/watchlists/koch", "");
    assert_eq!(status, 204);
    let (status, _) = http_request(port, "DELETE", "/api/v1/watchlists/koch", "");
    assert_eq!(status, 404);

    // SIGTERM: exits 0 well within 10 s.
    let stopped = Instant::now();
    Command::new("kill")
        .args(["-TERM", &running.0.id().to_string()])
        .status()
        .unwrap();
    let status = loop {
        if let Some(status) = running.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(10),
            "vigie did not stop within 10 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status after SIGTERM: {status}");
    assert!(dir.path().join("vigie-data/index").is_dir());
}
