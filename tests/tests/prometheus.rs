//! Vigie under a real Prometheus (Debian's `prometheus` package, installed by `.ci/run`):
//! the shipped rules pass `promtool check rules` and `promtool test rules`, the shipped
//! configuration passes `promtool check config`, and a Prometheus started with the shipped
//! scrape settings scrapes a running Vigie.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use vigie_tests::{
    free_port, http_get, prometheus_query, prometheus_scalar, repo_root, vigie_binary, KillOnDrop,
    TestPrometheus,
};

fn tool(name: &str) -> PathBuf {
    let path = Path::new("/usr/bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: install Debian's prometheus package (`apt-get install prometheus`; .ci/run does)",
        path.display()
    );
    path
}

fn run_promtool(args: &[&str], dir: &Path) -> String {
    let output = Command::new(tool("promtool"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?} failed:\n{text}");
    text
}

#[test]
fn shipped_rules_and_config_pass_promtool() {
    let dir = repo_root().join("deploy/prometheus");
    let checked = run_promtool(&["check", "rules", "rules.yml"], &dir);
    assert!(checked.contains("SUCCESS: 7 rules found"), "{checked}");
    let tested = run_promtool(&["test", "rules", "rules_test.yml"], &dir);
    assert!(tested.contains("SUCCESS"), "{tested}");
    run_promtool(&["check", "config", "prometheus.yml"], &dir);
    // Every rule explains itself and links to a runbook section that exists.
    let rules = std::fs::read_to_string(dir.join("rules.yml")).unwrap();
    let runbook = std::fs::read_to_string(repo_root().join("docs/runbook.md")).unwrap();
    let alerts: Vec<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .collect();
    assert_eq!(alerts.len(), 7);
    for alert in alerts {
        assert!(
            rules.contains(&format!("runbook.md#{}", alert.to_lowercase())),
            "{alert} has no runbook_url"
        );
        assert!(
            runbook.contains(&format!("## {alert}")),
            "docs/runbook.md has no section for {alert}"
        );
    }
}

#[test]
fn prometheus_scrapes_vigie_with_the_shipped_settings() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let vigie_port = free_port()?;
    let _vigie = KillOnDrop(
        Command::new(vigie_binary())
            .arg("run")
            .current_dir(dir.path())
            .env("VIGIE_HTTP__LISTEN", format!("127.0.0.1:{vigie_port}"))
            .env("VIGIE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    // The shipped configuration, pointed at this Vigie and scraping every second.
    let prometheus = TestPrometheus::start(vigie_port)?;
    let prometheus_port = prometheus.port;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let up = prometheus_query(prometheus_port, "up{job=\"vigie\"}")
            .ok()
            .and_then(|r| prometheus_scalar(&r));
        let indexed = prometheus_query(prometheus_port, "vigie_index_posts_indexed_total")
            .ok()
            .and_then(|r| prometheus_scalar(&r));
        if up == Some(1.0) && indexed == Some(5271.0) {
            break;
        }
        if Instant::now() > deadline {
            let log = prometheus.log();
            bail!("prometheus saw up={up:?} indexed={indexed:?}; log:\n{log}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    // The rules are loaded and evaluated against Vigie's series.
    let (_, rules) = http_get(prometheus_port, "/api/v1/rules").context("rules")?;
    let rules: serde_json::Value = serde_json::from_str(&rules)?;
    let loaded: usize = rules["data"]["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["rules"].as_array().unwrap().len())
        .sum();
    assert_eq!(loaded, 7);
    let rejected = prometheus_query(prometheus_port, "sum(vigie_posts_rejected_total)")?;
    assert_eq!(prometheus_scalar(&rejected), Some(0.0));
    Ok(())
}
