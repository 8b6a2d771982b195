//! Prometheus and Alertmanager: real servers for the deployment tests, an instant-query
//! helper and a text-exposition reader.

use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

use crate::broker::START_TIMEOUT;
use crate::{free_port, http_get, repo_root};

/// Returns the sum of the samples of `name` in a Prometheus text exposition whose labels
/// include every `name="value"` pair of `labels`.
pub fn metric_sum(exposition: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    exposition
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((metric, rest)) => (metric, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            labels
                .iter()
                .all(|(key, wanted)| label_text.contains(&format!("{key}=\"{wanted}\"")))
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

/// Runs an instant PromQL query against a Prometheus on `127.0.0.1:port` and returns the
/// JSON answer; an HTTP error or a non-success status is an error naming the query.
pub fn prometheus_query(port: u16, promql: &str) -> anyhow::Result<serde_json::Value> {
    let encoded: String = promql
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();
    let (status, body) = http_get(port, &format!("/api/v1/query?query={encoded}"))
        .context("prometheus does not answer")?;
    let value: serde_json::Value = serde_json::from_str(&body).with_context(|| body.clone())?;
    if status != 200 || value["status"] != "success" {
        bail!("query {promql} failed: {status} {body}");
    }
    Ok(value)
}

/// Returns the first sample's value of an instant-query answer.
pub fn prometheus_scalar(answer: &serde_json::Value) -> Option<f64> {
    answer["data"]["result"].get(0)?["value"][1]
        .as_str()?
        .parse()
        .ok()
}

/// A real Prometheus (Debian's `prometheus`) started with the shipped
/// `deploy/prometheus/prometheus.yml` and `rules.yml`, its scrape target pointed at a Vigie
/// on `127.0.0.1:vigie_port` and its intervals shortened to one second; killed on drop.
pub struct TestPrometheus {
    /// Its port.
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

impl TestPrometheus {
    /// Starts Prometheus scraping the Vigie on `vigie_port`.
    pub fn start(vigie_port: u16) -> anyhow::Result<TestPrometheus> {
        let binary = Path::new("/usr/bin/prometheus");
        if !binary.exists() {
            bail!(
                "{} is missing: apt-get install prometheus (.ci/run does)",
                binary.display()
            );
        }
        let shipped =
            std::fs::read_to_string(repo_root().join("deploy/prometheus/prometheus.yml"))?;
        if !(shipped.contains("job_name: vigie") && shipped.contains("vigie:9464")) {
            bail!("deploy/prometheus/prometheus.yml no longer scrapes vigie:9464 as job vigie");
        }
        let rules = repo_root().join("deploy/prometheus/rules.yml");
        let config = shipped
            .replace("vigie:9464", &format!("127.0.0.1:{vigie_port}"))
            .replace("scrape_interval: 15s", "scrape_interval: 1s")
            .replace("evaluation_interval: 15s", "evaluation_interval: 1s")
            .replace("  - rules.yml", &format!("  - {}", rules.display()));
        let dir = tempfile::tempdir()?;
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config)?;
        let port = free_port()?;
        let log = std::fs::File::create(dir.path().join("prometheus.log"))?;
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("failed to start prometheus")?;
        Ok(TestPrometheus { port, child, dir })
    }

    /// Returns Prometheus' log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for TestPrometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real Alertmanager (Debian's `prometheus-alertmanager`) on a free loopback port, routing
/// every alert to one webhook receiver with short group timings, killed on drop.
pub struct TestAlertmanager {
    /// Its port.
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

impl TestAlertmanager {
    /// Starts Alertmanager with a configuration routing everything to `webhook_url`.
    pub fn start(webhook_url: &str) -> anyhow::Result<TestAlertmanager> {
        let binary = Path::new("/usr/bin/prometheus-alertmanager");
        if !binary.exists() {
            bail!(
                "{} is missing: apt-get install prometheus-alertmanager (.ci/run does)",
                binary.display()
            );
        }
        let dir = tempfile::tempdir()?;
        let config = format!(
            "route:\n  receiver: test\n  group_by: [alertname, storyline]\n  group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: test\n    webhook_configs:\n      - url: {webhook_url}\n        send_resolved: true\n"
        );
        let config_path = dir.path().join("alertmanager.yml");
        std::fs::write(&config_path, config)?;
        let port = free_port()?;
        let log = std::fs::File::create(dir.path().join("alertmanager.log"))?;
        let child = Command::new(binary)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()?;
        let manager = TestAlertmanager {
            port,
            child,
            _dir: dir,
        };
        let deadline = Instant::now() + START_TIMEOUT;
        while http_get(port, "/-/ready").map(|(s, _)| s) != Some(200) {
            if Instant::now() > deadline {
                bail!("alertmanager not ready on {port}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(manager)
    }

    /// Returns `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for TestAlertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
