//! What can be checked here of the deployment files, with no Docker engine and no cluster:
//! - every PromQL expression of `dashboards/` and `deploy/prometheus/rules.yml` is evaluated
//!   by a real Prometheus (Debian package) scraping a running Vigie with the shipped
//!   settings, and returns data or is listed below as legitimately empty, with the reason;
//! - dashboards parse as Grafana JSON with unique uids and a datasource variable;
//! - `amtool check-config` accepts the shipped Alertmanager configuration;
//! - docker-compose.yml parses, every file it mounts exists, every image is pinned, every
//!   port is bound to 127.0.0.1 and every long-running service has a health check;
//! - the kustomize manifests parse, every workload has probes, resources and a security
//!   context, the PrometheusRule equals rules.yml, and the configs pass `vigie check-config`;
//! - the systemd unit passes `systemd-analyze verify`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_yaml::Value as Yaml;
use vigie_tests::{
    free_port, prometheus_query, repo_root, vigie_binary, KillOnDrop, TestPrometheus,
};

fn read_yaml(path: &Path) -> Yaml {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    serde_yaml::from_str(&text)
        .unwrap_or_else(|err| panic!("{} is not YAML: {err}", path.display()))
}

fn dashboards() -> Vec<(String, serde_json::Value)> {
    let dir = repo_root().join("dashboards");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).unwrap();
            let json = serde_json::from_str(&text)
                .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
            found.push((
                path.file_name().unwrap().to_string_lossy().into_owned(),
                json,
            ));
        }
    }
    found.sort_by(|a, b| a.0.cmp(&b.0));
    found
}

/// Every PromQL expression: (where, expression).
fn expressions() -> Vec<(String, String)> {
    let mut all = Vec::new();
    for (name, dashboard) in dashboards() {
        for panel in dashboard["panels"].as_array().unwrap() {
            for target in panel["targets"].as_array().unwrap() {
                let title = panel["title"].as_str().unwrap();
                all.push((
                    format!("{name} / {title}"),
                    target["expr"].as_str().unwrap().to_owned(),
                ));
            }
        }
        for annotation in dashboard["annotations"]["list"].as_array().unwrap() {
            if let Some(expr) = annotation["expr"].as_str() {
                all.push((
                    format!("{name} / annotation {}", annotation["name"]),
                    expr.to_owned(),
                ));
            }
        }
    }
    let rules = read_yaml(&repo_root().join("deploy/prometheus/rules.yml"));
    for group in rules["groups"].as_sequence().unwrap() {
        for rule in group["rules"].as_sequence().unwrap() {
            let name = rule["alert"].as_str().unwrap();
            all.push((
                format!("rules.yml / {name}"),
                rule["expr"].as_str().unwrap().to_owned(),
            ));
        }
    }
    all
}

/// Expressions that legitimately return nothing in this test, with the reason. Each entry
/// is a substring of the place (dashboard panel or rule) it excuses.
const LEGITIMATELY_EMPTY: &[(&str, &str)] = &[
    (
        "Consumer lag per partition",
        "the test replays a file: lag exists only with Kafka",
    ),
    (
        "Alert delivery failures",
        "the file sink never fails, so no retried or dead-lettered delivery",
    ),
    (
        "annotation \"Narrative alerts\"",
        "marks minutes with new notifications; the sample's were sent before the first scrape",
    ),
    (
        "rules.yml / VigieDown",
        "alert condition: false while Vigie is up",
    ),
    (
        "rules.yml / VigieNoPosts",
        "alert condition: false once posts are read",
    ),
    (
        "rules.yml / VigieConsumerLagHigh",
        "alert condition; and no lag series without Kafka",
    ),
    (
        "rules.yml / VigieRejectedRatioHigh",
        "alert condition: the sample has no reject (0/x is 0, below 5%)",
    ),
    (
        "rules.yml / VigieAlertDeliveryFailing",
        "alert condition: no dead-lettered delivery",
    ),
    (
        "rules.yml / VigieOutboxGrowing",
        "alert condition: the outbox is empty",
    ),
    (
        "rules.yml / VigieHighSeverityNarrative",
        "alert condition: depends on the sample's narratives' severity",
    ),
];

#[test]
fn every_dashboard_and_rule_expression_evaluates_against_a_real_prometheus() -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let vigie_port = free_port()?;
    // The built-in sample, with a file sink so alert delivery metrics exist.
    let config = format!(
        "data_dir = \"{}\"\n[source]\nkind = \"sample\"\n[alert]\ngroup_wait_secs = 0\n[[alert.sinks]]\nname = \"archive\"\nkind = \"file\"\npath = \"{}\"\n[http]\nlisten = \"127.0.0.1:{vigie_port}\"\n",
        dir.path().join("data").display(),
        dir.path().join("alerts.jsonl").display()
    );
    std::fs::write(dir.path().join("vigie.toml"), config)?;
    let _vigie = KillOnDrop(
        Command::new(vigie_binary())
            .args(["run", "--config"])
            .arg(dir.path().join("vigie.toml"))
            .env("VIGIE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let prometheus = TestPrometheus::start(vigie_port)?;
    let port = prometheus.port;
    // Wait until the whole sample is indexed and a few scrapes exist for rate().
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let indexed = prometheus_query(port, "vigie_index_posts_indexed_total").ok();
        let samples =
            prometheus_query(port, "count_over_time(vigie_index_posts_indexed_total[1m])").ok();
        let value = |v: &Option<serde_json::Value>| -> Option<f64> {
            v.as_ref()?["data"]["result"].get(0)?["value"][1]
                .as_str()?
                .parse()
                .ok()
        };
        if value(&indexed) == Some(5271.0) && value(&samples).unwrap_or(0.0) >= 5.0 {
            break;
        }
        if Instant::now() > deadline {
            bail!("prometheus never saw the sample indexed: {indexed:?}");
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let mut empty_without_reason = Vec::new();
    let mut excused_but_returning = Vec::new();
    for (place, expr) in expressions() {
        let concrete = expr
            .replace("$__rate_interval", "1m")
            .replace("$__interval", "1m")
            .replace("instance=~\"$instance\"", "instance=~\".+\"");
        let result = prometheus_query(port, &concrete).with_context(|| place.clone())?;
        let has_data = !result["data"]["result"]
            .as_array()
            .is_none_or(|r| r.is_empty());
        let excuse = LEGITIMATELY_EMPTY
            .iter()
            .find(|(key, _)| place.contains(key));
        match (has_data, excuse) {
            (false, None) => empty_without_reason.push(format!("{place}: {expr}")),
            // Alert conditions and the annotation may hold data or not, depending on timing.
            (true, Some((key, _)))
                if !key.starts_with("rules.yml") && !key.starts_with("annotation") =>
            {
                excused_but_returning.push(place)
            }
            _ => {}
        }
    }
    assert!(
        empty_without_reason.is_empty(),
        "expressions with no data and no reason:\n{}",
        empty_without_reason.join("\n")
    );
    assert!(
        excused_but_returning.is_empty(),
        "listed as empty but return data (update the list): {excused_but_returning:?}"
    );
    Ok(())
}

#[test]
fn dashboards_are_grafana_json_with_unique_uids_and_a_datasource_variable() {
    let all = dashboards();
    assert_eq!(all.len(), 2);
    let mut uids = BTreeSet::new();
    for (name, dashboard) in &all {
        let uid = dashboard["uid"]
            .as_str()
            .unwrap_or_else(|| panic!("{name} has no uid"));
        assert!(uids.insert(uid.to_owned()), "duplicate uid {uid}");
        assert!(
            dashboard["title"].as_str().unwrap().starts_with("Vigie / "),
            "{name}"
        );
        let variables = dashboard["templating"]["list"].as_array().unwrap();
        assert!(
            variables
                .iter()
                .any(|v| v["type"] == "datasource" && v["query"] == "prometheus"),
            "{name}"
        );
        let mut ids = BTreeSet::new();
        for panel in dashboard["panels"].as_array().unwrap() {
            assert!(
                ids.insert(panel["id"].as_u64().unwrap()),
                "{name}: duplicate panel id"
            );
            assert_eq!(
                panel["datasource"]["uid"], "${datasource}",
                "{name}: {}",
                panel["title"]
            );
            assert!(
                !panel["targets"].as_array().unwrap().is_empty(),
                "{name}: {}",
                panel["title"]
            );
        }
        assert!(
            dashboard["annotations"]["list"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["expr"].is_string()),
            "{name}: no alert annotation"
        );
    }
    assert_eq!(
        uids,
        BTreeSet::from(["vigie-narratives".to_owned(), "vigie-pipeline".to_owned()])
    );
}

#[test]
fn alertmanager_and_prometheus_configs_pass_their_checkers() {
    let output = Command::new("/usr/bin/amtool")
        .args(["check-config"])
        .arg(repo_root().join("deploy/alertmanager/alertmanager.yml"))
        .output()
        .expect("amtool (apt-get install prometheus-alertmanager)");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
    let output = Command::new("/usr/bin/promtool")
        .args(["check", "config"])
        .arg(repo_root().join("deploy/prometheus/prometheus.yml"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stdout)
    );
}

#[test]
fn compose_file_is_valid_pinned_bound_to_loopback_and_mounts_existing_files() {
    let root = repo_root();
    let compose = read_yaml(&root.join("docker-compose.yml"));
    let services = compose["services"].as_mapping().unwrap();
    let names: BTreeSet<&str> = services.keys().filter_map(Yaml::as_str).collect();
    for needed in [
        "kafka",
        "vigie",
        "demo-producer",
        "prometheus",
        "alertmanager",
        "grafana",
        "webhook-echo",
    ] {
        assert!(names.contains(needed), "service {needed} missing");
    }
    let named_volumes: BTreeSet<&str> = compose["volumes"]
        .as_mapping()
        .unwrap()
        .keys()
        .filter_map(Yaml::as_str)
        .collect();
    for (name, service) in services {
        let name = name.as_str().unwrap();
        let image = service["image"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: no image"));
        let tag = image.rsplit_once(':').map(|(_, tag)| tag).unwrap_or("");
        assert!(
            !tag.is_empty() && tag != "latest",
            "{name}: image {image} is not pinned to a version tag"
        );
        for port in service["ports"].as_sequence().into_iter().flatten() {
            assert!(
                port.as_str().unwrap().starts_with("127.0.0.1:"),
                "{name}: port {port:?} not bound to loopback"
            );
        }
        for volume in service["volumes"].as_sequence().into_iter().flatten() {
            let source = volume.as_str().unwrap().split(':').next().unwrap();
            if source.starts_with('.') {
                assert!(
                    root.join(source).exists(),
                    "{name}: mounts {source}, which does not exist"
                );
            } else {
                assert!(
                    named_volumes.contains(source),
                    "{name}: volume {source} is not declared"
                );
            }
        }
        if name != "demo-producer" && name != "webhook-echo" {
            assert!(
                service["healthcheck"]["test"].is_sequence(),
                "{name}: no health check"
            );
        }
    }
    // The build the vigie service uses exists, and the configuration it mounts is valid.
    assert!(root.join("deploy/Dockerfile").exists());
    let check = check_config_with_secrets(&root.join("deploy/compose/vigie.toml"));
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
    // The demo producer's command is a real vigie subcommand (exercised against a broker
    // in kafka_daemon.rs); its flags parse.
    let producer: Vec<&str> = services[&Yaml::from("demo-producer")]["command"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(producer[0], "produce");
    let help = Command::new(vigie_binary())
        .args(["produce", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for flag in producer.iter().filter(|a| a.starts_with("--")) {
        assert!(help.contains(flag), "vigie produce has no {flag}");
    }
    // The Dockerfile runs as non-root, has a health check and keeps the index on a volume.
    let dockerfile = std::fs::read_to_string(root.join("deploy/Dockerfile")).unwrap();
    for needed in [
        "USER 10001",
        "HEALTHCHECK",
        "VOLUME [\"/var/lib/vigie\"]",
        "AS build",
    ] {
        assert!(dockerfile.contains(needed), "Dockerfile lacks {needed}");
    }
}

/// Runs `vigie check-config` on a copy of `config` whose `/run/secrets/…` files (mounted
/// by Compose or Kubernetes) exist in a temporary directory, each holding a token.
fn check_config_with_secrets(config: &Path) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    let text = std::fs::read_to_string(config)
        .unwrap()
        .replace("\"/run/secrets/", &format!("\"{}/", secrets.display()));
    for line in text.lines() {
        let Some((_, path)) = line.split_once(&format!("\"{}/", secrets.display())) else {
            continue;
        };
        let path = secrets.join(path.trim_end_matches('"'));
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        // Distinct per file: Vigie refuses two tokens with the same value.
        let name = path.file_name().unwrap().to_string_lossy();
        std::fs::write(&path, format!("ci-{name}-0123456789abcdef")).unwrap();
    }
    let copy = dir.path().join("vigie.toml");
    std::fs::write(&copy, text).unwrap();
    Command::new(vigie_binary())
        .arg("check-config")
        .arg(&copy)
        .output()
        .unwrap()
}

fn documents(dir: &Path) -> Vec<(String, Yaml)> {
    let mut docs = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "yaml") {
            let text = std::fs::read_to_string(&path).unwrap();
            for document in serde_yaml::Deserializer::from_str(&text) {
                let value = Yaml::deserialize(document)
                    .unwrap_or_else(|err| panic!("{}: {err}", path.display()));
                docs.push((
                    path.file_name().unwrap().to_string_lossy().into_owned(),
                    value,
                ));
            }
        }
    }
    docs
}

use serde::Deserialize;

#[test]
fn kustomize_manifests_parse_and_workloads_are_probed_limited_and_locked_down() {
    let base = repo_root().join("deploy/kubernetes/base");
    let kustomization = read_yaml(&base.join("kustomization.yaml"));
    let resources: Vec<&str> = kustomization["resources"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    for resource in &resources {
        assert!(
            base.join(resource).exists(),
            "kustomization lists {resource}, which does not exist"
        );
    }
    let docs = documents(&base);
    let kinds: BTreeMap<String, usize> =
        docs.iter().fold(BTreeMap::new(), |mut kinds, (_, doc)| {
            if let Some(kind) = doc["kind"].as_str() {
                *kinds.entry(kind.to_owned()).or_default() += 1;
            }
            kinds
        });
    for kind in [
        "StatefulSet",
        "Service",
        "ServiceMonitor",
        "PrometheusRule",
        "PodDisruptionBudget",
        "ServiceAccount",
    ] {
        assert!(kinds.contains_key(kind), "no {kind} in the base: {kinds:?}");
    }
    let mut workloads = 0;
    for (file, doc) in &docs {
        let Some(pod) = doc["spec"]["template"]["spec"].as_mapping() else {
            continue;
        };
        workloads += 1;
        let pod = Yaml::Mapping(pod.clone());
        assert!(
            pod["securityContext"]["runAsNonRoot"] == Yaml::Bool(true),
            "{file}: pod not runAsNonRoot"
        );
        for container in pod["containers"].as_sequence().unwrap() {
            let name = container["name"].as_str().unwrap();
            for probe in ["readinessProbe", "livenessProbe"] {
                assert!(
                    container[probe]["httpGet"]["path"].is_string(),
                    "{file}/{name}: no {probe}"
                );
            }
            assert_eq!(
                container["readinessProbe"]["httpGet"]["path"], "/readyz",
                "{file}/{name}"
            );
            assert_eq!(
                container["livenessProbe"]["httpGet"]["path"], "/healthz",
                "{file}/{name}"
            );
            for kind in ["requests", "limits"] {
                for resource in ["cpu", "memory"] {
                    assert!(
                        !container["resources"][kind][resource].is_null(),
                        "{file}/{name}: no {kind}.{resource}"
                    );
                }
            }
            let security = &container["securityContext"];
            assert_eq!(
                security["readOnlyRootFilesystem"],
                Yaml::Bool(true),
                "{file}/{name}"
            );
            assert_eq!(
                security["allowPrivilegeEscalation"],
                Yaml::Bool(false),
                "{file}/{name}"
            );
            assert_eq!(security["runAsNonRoot"], Yaml::Bool(true), "{file}/{name}");
        }
    }
    assert!(workloads >= 1);
    // The PrometheusRule carries exactly the rules Prometheus users get.
    let rule = docs
        .iter()
        .find(|(_, d)| d["kind"] == "PrometheusRule")
        .unwrap();
    let rules = read_yaml(&repo_root().join("deploy/prometheus/rules.yml"));
    assert_eq!(
        rule.1["spec"]["groups"], rules["groups"],
        "prometheusrule.yaml differs from rules.yml"
    );
    // The overlay parses and points at the base; the config map's file is a valid config.
    let overlay =
        read_yaml(&repo_root().join("deploy/kubernetes/overlays/example/kustomization.yaml"));
    assert!(overlay["resources"]
        .as_sequence()
        .unwrap()
        .iter()
        .any(|r| r.as_str() == Some("../../base")));
    for (_, doc) in documents(&repo_root().join("deploy/kubernetes/overlays/example")) {
        assert!(doc["kind"].is_string() || doc["resources"].is_sequence());
    }
    let check = check_config_with_secrets(&base.join("vigie.toml"));
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );
}

#[test]
fn systemd_unit_passes_systemd_analyze() {
    let analyze = Path::new("/usr/bin/systemd-analyze");
    if !analyze.exists() {
        // Not every image has systemd; the unit's content is still checked below.
        eprintln!("systemd-analyze not installed; checking the unit's text only");
    }
    let unit = std::fs::read_to_string(repo_root().join("deploy/systemd/vigie.service")).unwrap();
    for needed in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "DynamicUser=yes",
        "StateDirectory=vigie",
        "SystemCallFilter=@system-service",
        "KillSignal=SIGTERM",
    ] {
        assert!(unit.contains(needed), "vigie.service lacks {needed}");
    }
    if analyze.exists() {
        let dir = tempfile::tempdir().unwrap();
        let local = unit.replace(
            "/usr/local/bin/vigie",
            &vigie_binary().display().to_string(),
        );
        let path = dir.path().join("vigie.service");
        std::fs::write(&path, local).unwrap();
        let output = Command::new(analyze)
            .arg("verify")
            .arg(&path)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        // Only complaints about this unit count (the host's other units are not ours).
        let ours: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("vigie.service"))
            .collect();
        assert!(
            output.status.success() && ours.is_empty(),
            "systemd-analyze verify:\n{text}"
        );
    }
}
