//! Issue 12: secrets from files and the environment, env overrides that stay strings,
//! errors that quote no secret, sources that must be said, and bounds on every duration.

use super::*;

fn load(text: &str, env: &[(&str, &str)]) -> Result<CheckedConfig, ConfigError> {
    Config::from_toml(
        text,
        "test.toml",
        env.iter().map(|(k, v)| (k.to_string(), v.to_string())),
    )
}

fn key_of(err: &ConfigError) -> &str {
    match err {
        ConfigError::Invalid { key, .. } => key,
        other => panic!("expected an invalid key, got {other}"),
    }
}

const KAFKA: &str = "[source]\nkind = \"kafka\"\n[kafka]\nbrokers = \"k:9092\"\n";

/// Row 8: a digits-only password given by the environment stays the string it was.
#[test]
fn issue_12_row_8_env_password_of_digits_stays_a_string() {
    let config = load(
        KAFKA,
        &[
            ("VIGIE_KAFKA__PROPERTIES__SASL.PASSWORD", "20240101"),
            ("VIGIE_KAFKA__PROPERTIES__SESSION.TIMEOUT.MS", "45000"),
            ("VIGIE_ALERT__ACCOUNT_SALT", "12345678"),
        ],
    )
    .unwrap();
    let kafka = config.raw.kafka.as_ref().unwrap();
    assert_eq!(kafka.properties.get("sasl.password"), Some("20240101"));
    assert_eq!(kafka.properties.get("session.timeout.ms"), Some("45000"));
    assert_eq!(config.raw.alert.policy.account_salt.expose(), "12345678");
    let printed = toml::to_string_pretty(&config.raw).unwrap();
    assert!(!printed.contains("20240101"), "{printed}");
    assert!(!printed.contains("12345678"), "{printed}");
    assert!(printed.contains("45000"), "{printed}");
}

/// Row 8: no error quotes an override's value or a secret.
#[test]
fn issue_12_row_8_errors_quote_no_override_or_secret() {
    let err = load(
        "",
        &[("VIGIE_INDEX__COMMIT_EVERY_POSTS", "hunter2-override")],
    )
    .unwrap_err();
    assert_eq!(key_of(&err), "index.commit_every_posts");
    assert!(!err.to_string().contains("hunter2-override"), "{err}");
    let err = load("", &[("VIGIE_SOURCE__KIND", "hunter2-kind")]).unwrap_err();
    assert_eq!(key_of(&err), "source.kind");
    assert!(!err.to_string().contains("hunter2-kind"), "{err}");
    let err = load(
        "[http]\nlisten = \"x\"\n",
        &[("VIGIE_HTTP__LISTEN", "hunter2-listen")],
    )
    .unwrap_err();
    assert!(!err.to_string().contains("hunter2-listen"), "{err}");
    // A sink URL (the credential of Slack) that is not http(s) is named, not quoted.
    let err = load(
        "[[alert.sinks]]\nname = \"s\"\nkind = \"slack\"\nurl = \"hooks.slack.com/services/T0/B0/hunter2\"\n",
        &[],
    )
    .unwrap_err();
    assert_eq!(key_of(&err), "alert.sinks.s.url");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    // A syntax error does not quote the offending line.
    let err = load(
        "[kafka.properties]\n\"sasl.password\" = \"hunter2-unterminated\n",
        &[],
    )
    .unwrap_err();
    assert!(matches!(err, ConfigError::Syntax { .. }), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
    assert!(err.to_string().contains("line 2"), "{err}");
}

/// Row 8 and item 3: `KEY_file` and `KEY_env` at any depth, array elements and Kafka
/// properties included; trailing line breaks trimmed.
#[test]
fn issue_12_secrets_come_from_files_and_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, content: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path.display().to_string()
    };
    let password = write("kafka-password", "s3cret-from-file\n");
    let slack = write(
        "slack-url",
        "https://hooks.slack.com/services/T0/B0/FILE\r\n",
    );
    let text = format!(
        "{KAFKA}[kafka.properties]\n\"sasl.password_file\" = \"{password}\"\n\"ssl.key.password_env\" = \"KEY_PASSWORD\"\n\
         [alert]\naccount_salt_env = \"SALT\"\n\
         [[alert.sinks]]\nname = \"slack\"\nkind = \"slack\"\nurl_file = \"{slack}\"\n\
         [[alert.sinks]]\nname = \"hook\"\nkind = \"webhook\"\nurl = \"https://h.example/x\"\nsecret_env = \"HOOK_SECRET\"\n"
    );
    let env = [
        ("KEY_PASSWORD", "key-pass-env"),
        ("SALT", "salt-from-env"),
        ("HOOK_SECRET", "hook-secret-env"),
    ];
    let config = load(&text, &env).unwrap();
    let kafka = config.raw.kafka.as_ref().unwrap();
    assert_eq!(
        kafka.properties.get("sasl.password"),
        Some("s3cret-from-file")
    );
    assert_eq!(
        kafka.properties.get("ssl.key.password"),
        Some("key-pass-env")
    );
    assert!(!kafka.properties.contains_key("sasl.password_file"));
    let alert = &config.raw.alert;
    assert_eq!(alert.policy.account_salt.expose(), "salt-from-env");
    assert_eq!(
        alert.sinks[0].url.expose(),
        "https://hooks.slack.com/services/T0/B0/FILE"
    );
    assert_eq!(alert.sinks[1].secret.expose(), "hook-secret-env");
    let printed = format!(
        "{:?}\n{}",
        config.raw,
        toml::to_string_pretty(&config.raw).unwrap()
    );
    for value in [
        "s3cret-from-file",
        "key-pass-env",
        "salt-from-env",
        "B0/FILE",
        "hook-secret-env",
    ] {
        assert!(!printed.contains(value), "{value} in {printed}");
    }
    // The env form works for overrides too.
    let config = load("", &[("VIGIE_ALERT__ACCOUNT_SALT_FILE", password.as_str())]).unwrap();
    assert_eq!(
        config.raw.alert.policy.account_salt.expose(),
        "s3cret-from-file"
    );
}

#[test]
fn issue_12_secret_sources_fail_by_key_never_by_content() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("salt");
    std::fs::write(&path, "hunter2-content").unwrap();
    let path = path.display().to_string();
    // Both the value and its file.
    let err = load(
        &format!("[alert]\naccount_salt = \"x\"\naccount_salt_file = \"{path}\"\n"),
        &[],
    )
    .unwrap_err();
    assert_eq!(key_of(&err), "alert.account_salt");
    assert!(err.to_string().contains("alert.account_salt_file"), "{err}");
    // A file and an env var for the same key.
    let err = load(
        &format!("[alert]\naccount_salt_env = \"S\"\naccount_salt_file = \"{path}\"\n"),
        &[("S", "v")],
    )
    .unwrap_err();
    assert!(err.to_string().contains("account_salt_env"), "{err}");
    // A missing file: the key and the path, not a value.
    let missing = dir.path().join("nope");
    let err = load(
        &format!(
            "[[alert.sinks]]\nname = \"a\"\nkind = \"slack\"\nurl_file = \"{}\"\n",
            missing.display()
        ),
        &[],
    )
    .unwrap_err();
    assert_eq!(key_of(&err), "alert.sinks[0].url_file");
    assert!(err.to_string().contains("nope"), "{err}");
    // Too large a file.
    let big = dir.path().join("big");
    std::fs::write(&big, vec![b'a'; MAX_VALUE_FILE_BYTES as usize + 1]).unwrap();
    let err = load(
        &format!("[alert]\naccount_salt_file = \"{}\"\n", big.display()),
        &[],
    )
    .unwrap_err();
    assert!(err.to_string().contains("larger than"), "{err}");
    // An unset variable.
    let err = load("[alert]\naccount_salt_env = \"NO_SUCH_VAR\"\n", &[]).unwrap_err();
    assert_eq!(key_of(&err), "alert.account_salt_env");
    assert!(err.to_string().contains("NO_SUCH_VAR"), "{err}");
    // A value read from a file is not quoted when it does not fit its key.
    let err = load(
        &format!("[index]\ncommit_every_posts_file = \"{path}\"\n"),
        &[],
    )
    .unwrap_err();
    assert_eq!(key_of(&err), "index.commit_every_posts");
    assert!(!err.to_string().contains("hunter2-content"), "{err}");
    // Labels are the user's own names: a `_file` suffix there is just a label.
    let config = load(
        "[[alert.rules]]\nname = \"r\"\n[alert.rules.labels]\nconfig_file = \"x\"\n",
        &[],
    )
    .unwrap();
    assert_eq!(config.raw.alert.policy.rules[0].labels["config_file"], "x");
}

/// Row 9: a file must say where posts come from, and may not contradict itself.
#[test]
fn issue_12_row_9_source_kind_must_be_said_and_consistent() {
    // `[kafka]` without `source.kind`: refused, naming source.kind.
    let err = load("[kafka]\nbrokers = \"k:9092\"\n", &[]).unwrap_err();
    assert_eq!(key_of(&err), "source.kind");
    let err = load(
        "[source]\nkind = \"files\"\nfiles = [\"a\"]\n[kafka]\n",
        &[],
    )
    .unwrap_err();
    assert_eq!(key_of(&err), "source.kind");
    let err = load("[source]\nfiles = [\"a.jsonl\"]\n", &[]).unwrap_err();
    assert_eq!(key_of(&err), "source.files");
    let err = load("", &[("VIGIE_KAFKA__BROKERS", "k:9092")]).unwrap_err();
    assert_eq!(key_of(&err), "source.kind");
    // A file without [source] loads (replay, search and eval read no source) but is not
    // a run configuration.
    let config = load("[index]\ncommit_every_posts = 10\n", &[]).unwrap();
    let err = config.require_source(Path::new("vigie.toml")).unwrap_err();
    assert_eq!(key_of(&err), "source.kind");
    assert!(err.to_string().contains("vigie.toml"), "{err}");
    for text in [
        "[source]\nkind = \"sample\"\n",
        "[source]\nkind = \"files\"\nfiles = [\"a.jsonl\"]\n",
        KAFKA,
    ] {
        load(text, &[])
            .unwrap()
            .require_source(Path::new("f"))
            .unwrap();
    }
    load("", &[("VIGIE_SOURCE__KIND", "sample")])
        .unwrap()
        .require_source(Path::new("f"))
        .unwrap();
}

/// Review finding: huge durations and capacities panicked in chrono arithmetic or
/// allocation; each is refused with its key named.
#[test]
fn issue_12_huge_values_are_refused_by_key() {
    const HUGE: i64 = i64::MAX;
    let cases: &[(&str, &str, &str)] = &[
        ("input", "max_future_secs", "input.max_future_secs"),
        ("input", "max_message_bytes", "input.max_message_bytes"),
        ("source", "batch_size", "source.batch_size"),
        ("index", "commit_every_posts", "index.commit_every_posts"),
        (
            "index",
            "commit_interval_secs",
            "index.commit_interval_secs",
        ),
        ("index", "retention_days", "index.retention_days"),
        ("index", "writer_memory_mb", "index.writer_memory_mb"),
        ("index", "writer_threads", "index.writer_threads"),
        ("snapshot", "interval_secs", "snapshot.interval_secs"),
        ("alert", "for_secs", "alert.for_secs"),
        (
            "alert",
            "keep_firing_for_secs",
            "alert.keep_firing_for_secs",
        ),
        ("alert", "resolve_after_secs", "alert.resolve_after_secs"),
        ("alert", "cooldown_secs", "alert.cooldown_secs"),
        (
            "alert",
            "renotify_interval_secs",
            "alert.renotify_interval_secs",
        ),
        ("alert", "group_wait_secs", "alert.group_wait_secs"),
        (
            "alert",
            "resolved_retention_secs",
            "alert.resolved_retention_secs",
        ),
        ("alert", "max_terms", "alert.max_terms"),
        (
            "alert.delivery",
            "max_age_secs",
            "alert.delivery.max_age_secs",
        ),
        (
            "alert.delivery",
            "max_backoff_ms",
            "alert.delivery.max_backoff_ms",
        ),
        ("detect", "window_secs", "detect.window_secs"),
        (
            "detect",
            "baseline_half_life_secs",
            "detect.baseline_half_life_secs",
        ),
        (
            "detect",
            "narrative_idle_secs",
            "detect.narrative_idle_secs",
        ),
        ("detect", "warmup_secs", "detect.warmup_secs"),
        ("detect", "term_sketch_cells", "detect.term_sketch_cells"),
        ("detect", "max_recent_posts", "detect.max_recent_posts"),
        (
            "detect",
            "max_pair_terms_per_post",
            "detect.max_pair_terms_per_post",
        ),
    ];
    for (section, key, named) in cases {
        for value in [HUGE, 4_294_967_295, 400_000_000] {
            let text = format!("[{section}]\n{key} = {value}\n");
            let Err(err) = load(&text, &[]) else {
                // A value within a key's bound (400 million posts is not) is fine.
                continue;
            };
            assert_eq!(key_of(&err), *named, "{section}.{key} = {value}: {err}");
        }
        // The largest value is always refused.
        let err = load(&format!("[{section}]\n{key} = {HUGE}\n"), &[]).unwrap_err();
        assert_eq!(key_of(&err), *named, "{err}");
    }
    // Kafka and sink keys.
    let err = load(&format!("{KAFKA}batch_max_wait_ms = {HUGE}\n"), &[]).unwrap_err();
    assert_eq!(key_of(&err), "kafka.batch_max_wait_ms");
    let err = load(&format!("{KAFKA}batch_max_messages = {HUGE}\n"), &[]).unwrap_err();
    assert_eq!(key_of(&err), "kafka.batch_max_messages");
    for key in ["timeout_secs", "max_concurrency"] {
        let err = load(
            &format!(
                "[[alert.sinks]]\nname = \"f\"\nkind = \"file\"\npath = \"a\"\n{key} = {HUGE}\n"
            ),
            &[],
        )
        .unwrap_err();
        assert_eq!(key_of(&err), format!("alert.sinks.f.{key}"), "{err}");
    }
    let err = load("[alert]\ngrowth_change_factor = inf\n", &[]).unwrap_err();
    assert_eq!(key_of(&err), "alert.growth_change_factor");
    let err = load("[detect]\nburst_z = nan\n", &[]).unwrap_err();
    assert_eq!(key_of(&err), "detect.burst_z");
}

/// Sinks may authenticate; the credentials are secrets and combinations are checked.
#[test]
fn issue_12_sink_authentication_is_checked() {
    let base =
        "[[alert.sinks]]\nname = \"am\"\nkind = \"alertmanager\"\nurls = [\"http://am:9093\"]\n";
    let config = load(
        &format!("{base}basic_auth_user = \"vigie\"\nbasic_auth_password = \"hunter2-basic\"\n"),
        &[],
    )
    .unwrap();
    assert!(!format!("{:?}", config.raw).contains("hunter2-basic"));
    let err = load(&format!("{base}basic_auth_user = \"vigie\"\n"), &[]).unwrap_err();
    assert_eq!(key_of(&err), "alert.sinks.am.basic_auth_password");
    let err = load(
        &format!(
            "{base}basic_auth_user = \"u\"\nbasic_auth_password = \"p\"\nbearer_token = \"t\"\n"
        ),
        &[],
    )
    .unwrap_err();
    assert_eq!(key_of(&err), "alert.sinks.am.bearer_token");
    let err = load(
        "[[alert.sinks]]\nname = \"s\"\nkind = \"slack\"\nurl = \"https://hooks.slack.com/x\"\nbearer_token = \"t\"\n",
        &[],
    )
    .unwrap_err();
    assert_eq!(key_of(&err), "alert.sinks.s.bearer_token");
}
