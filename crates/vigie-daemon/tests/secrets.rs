//! Issue 12, rows 4, 8 and 9, end to end on the `vigie` binary: `check-config` prints no
//! secret wherever it came from (the file, a `_file`, a `_env`, an override), and `run`
//! refuses a file that does not say where posts come from.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn vigie() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_vigie"));
    // Keep the caller's VIGIE_* variables from changing what the tests check.
    for (name, _) in std::env::vars() {
        if name.starts_with("VIGIE_") {
            command.env_remove(name);
        }
    }
    command.env("VIGIE_LOG", "debug");
    command
}

/// Every kind of secret, each with a recognisable value.
const SECRETS: &[&str] = &[
    "kafka-sasl-pw-4f1c",
    "kafka-sslkey-pw-9a2e",
    "20240101",
    "oauth-client-secret-77d1",
    "whsec_c2lnbmluZy1rZXktZnJvbS1maWxl",
    "hooks.slack.com/services/T0SLACK/B0SLACK/slacktoken42",
    "teams-workflow-sig-5c3b",
    "am-basic-pw-61aa",
    "hook-bearer-token-0e9f",
    "pseudonym-salt-b7c4",
    "http-read-token-0123456789abcdef",
    "http-write-token-from-file-fedcba9876",
];

fn write(dir: &Path, name: &str, content: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path.display().to_string()
}

/// Row 4: a config holding every kind of secret; `check-config` succeeds and prints none.
#[test]
fn issue_12_row_4_check_config_prints_no_secret() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sslkey = write(d, "sslkey", "kafka-sslkey-pw-9a2e\n");
    let webhook_secret = write(d, "webhook-secret", "whsec_c2lnbmluZy1rZXktZnJvbS1maWxl\n");
    let write_token = write(d, "write-token", "http-write-token-from-file-fedcba9876\n");
    let config = format!(
        r#"data_dir = "{data}"
[source]
kind = "kafka"

[kafka]
brokers = "kafka:9092"

[kafka.properties]
"security.protocol" = "SASL_SSL"
"sasl.mechanism" = "SCRAM-SHA-512"
"sasl.username" = "vigie"
"sasl.password" = "kafka-sasl-pw-4f1c"
"ssl.key.password_file" = "{sslkey}"
"sasl.oauthbearer.client.secret_env" = "OAUTH_SECRET"

[alert]
account_salt = "pseudonym-salt-b7c4"

[[alert.sinks]]
name = "hook"
kind = "webhook"
url = "https://hooks.example.org/vigie"
secret_file = "{webhook_secret}"
bearer_token = "hook-bearer-token-0e9f"

[[alert.sinks]]
name = "slack"
kind = "slack"
url = "https://hooks.slack.com/services/T0SLACK/B0SLACK/slacktoken42"

[[alert.sinks]]
name = "teams"
kind = "teams"
url_env = "TEAMS_URL"

[[alert.sinks]]
name = "am"
kind = "alertmanager"
urls = ["http://alertmanager:9093"]
basic_auth_user = "vigie"
basic_auth_password = "am-basic-pw-61aa"

[http]
listen = "0.0.0.0:9464"

[[http.tokens]]
name = "grafana"
role = "read"
token = "http-read-token-0123456789abcdef"

[[http.tokens]]
name = "analysts"
role = "write"
token_file = "{write_token}"
"#,
        data = d.join("data").display(),
    );
    let file = write(d, "vigie.toml", &config);
    let output = vigie()
        .arg("check-config")
        .arg(&file)
        .env("OAUTH_SECRET", "oauth-client-secret-77d1")
        .env(
            "TEAMS_URL",
            "https://prod.westeurope.logic.azure.com/workflows/x?sig=teams-workflow-sig-5c3b",
        )
        // Row 8: the override that used to become an integer and be echoed.
        .env("VIGIE_KAFKA__PROPERTIES__SSL.KEYSTORE.PASSWORD", "20240101")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "check-config failed:\n{stdout}\n{stderr}"
    );
    assert!(stdout.contains("is valid"), "{stdout}");
    assert!(stdout.contains("[redacted]"), "{stdout}");
    // What is not secret is still shown.
    assert!(
        stdout.contains("SCRAM-SHA-512") && stdout.contains("basic_auth_user"),
        "{stdout}"
    );
    for secret in SECRETS {
        assert!(
            !stdout.contains(secret) && !stderr.contains(secret),
            "{secret} printed:\n{stdout}\n{stderr}"
        );
    }
}

/// Row 8: with the same override on a key that does not take it, the error names the key
/// and does not echo the value.
#[test]
fn issue_12_row_8_errors_do_not_echo_overrides() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "vigie.toml", "[source]\nkind = \"sample\"\n");
    let output = vigie()
        .arg("check-config")
        .arg(&file)
        .env("VIGIE_INDEX__COMMIT_INTERVAL_SECS", "hunter2-value")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("index.commit_interval_secs"), "{stderr}");
    assert!(!stderr.contains("hunter2-value"), "{stderr}");
}

/// Row 9: `vigie run --config F` with `[kafka]` but no `source.kind` is refused, naming
/// `source.kind`, instead of replaying the built-in sample.
#[test]
fn issue_12_row_9_run_refuses_a_config_without_source_kind() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [
        (
            "kafka.toml",
            "[kafka]\nbrokers = \"127.0.0.1:1\"\n".to_owned(),
        ),
        (
            "nothing.toml",
            "[index]\ncommit_interval_secs = 1\n".to_owned(),
        ),
    ] {
        let file = write(
            dir.path(),
            name,
            &format!(
                "data_dir = \"{}\"\n{text}",
                dir.path().join("data").display()
            ),
        );
        let mut child = vigie()
            .args(["run", "--config", &file])
            .env("VIGIE_HTTP__LISTEN", "127.0.0.1:0")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // Before the fix the sample replay ran until killed: give up after a minute.
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() > deadline {
                child.kill().unwrap();
                panic!("{name}: vigie run did not refuse the configuration");
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!status.success(), "{name}: {stderr}");
        assert!(stderr.contains("source.kind"), "{name}: {stderr}");
        assert!(!stderr.contains("built-in sample of"), "{name}: {stderr}");
        // check-config says the same.
        let output = vigie().arg("check-config").arg(&file).output().unwrap();
        assert!(!output.status.success());
        assert!(
            String::from_utf8_lossy(&output.stderr).contains("source.kind"),
            "{name}"
        );
    }
}
