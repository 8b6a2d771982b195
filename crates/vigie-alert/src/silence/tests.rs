//! Silences: matching, limits, expiry, and their ids.

use super::*;

fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap()
}

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn request(matchers: Vec<Matcher>, from: i64, to: i64) -> SilenceRequest {
    SilenceRequest {
        matchers,
        starts_at: Some(at(from)),
        ends_at: Some(at(to)),
        created_by: "analyst".into(),
        comment: "known story".into(),
        ..SilenceRequest::default()
    }
}

fn matcher(name: &str, value: &str, is_regex: bool) -> Matcher {
    Matcher {
        name: name.into(),
        value: value.into(),
        is_regex,
    }
}

fn config() -> SilenceConfig {
    SilenceConfig::default()
}

#[test]
fn matches_all_matchers_within_its_time() {
    let mut silences = Silences::default();
    let id = silences
        .add(
            request(
                vec![
                    matcher("narrative_id", "n1", false),
                    matcher("severity", "info|warning", true),
                ],
                100,
                200,
            ),
            at(0),
            &config(),
        )
        .unwrap();
    let warning = labels(&[("narrative_id", "n1"), ("severity", "warning")]);
    assert!(!silences.is_silenced(&warning, at(99)));
    assert_eq!(silences.matching(&warning, at(150)), Some(id.as_str()));
    assert!(!silences.is_silenced(&warning, at(200)));
    let critical = labels(&[("narrative_id", "n1"), ("severity", "critical")]);
    assert!(!silences.is_silenced(&critical, at(150)));
    let other = labels(&[("narrative_id", "n12"), ("severity", "warning")]);
    assert!(!silences.is_silenced(&other, at(150)));

    let states =
        |now| -> Vec<SilenceState> { silences.list(now).into_iter().map(|v| v.state).collect() };
    assert_eq!(states(at(50)), vec![SilenceState::Pending]);
    assert_eq!(states(at(150)), vec![SilenceState::Active]);
    assert_eq!(states(at(250)), vec![SilenceState::Expired]);
    let hour = std::time::Duration::from_secs(3600);
    assert_eq!(silences.forget_expired(at(200 + 3599), hour), 0);
    assert_eq!(silences.forget_expired(at(200 + 3600), hour), 1);
    assert!(silences.is_empty());
    assert!(
        silences.compiled.is_empty(),
        "compiled patterns go with them"
    );
    assert!(!silences.remove(&id));
}

#[test]
fn refuses_bad_silences_and_survives_serde() {
    let mut silences = Silences::default();
    let now = at(0);
    let refused = |silences: &mut Silences, request: SilenceRequest| {
        silences
            .add(request, now, &config())
            .unwrap_err()
            .to_string()
    };
    assert!(refused(&mut silences, request(vec![], 0, 10)).contains("matcher"));
    let one = || vec![matcher("a", "b", false)];
    assert!(refused(&mut silences, request(one(), 10, 10)).contains("after"));
    assert!(refused(&mut silences, request(one(), -100, -10)).contains("after"));
    assert!(
        refused(&mut silences, request(vec![matcher("a", "(", true)], 0, 10)).contains("regex")
    );
    let no_end = SilenceRequest {
        ends_at: None,
        ..request(one(), 0, 0)
    };
    assert!(refused(&mut silences, no_end.clone()).contains("ends_at or duration_secs"));
    let both = SilenceRequest {
        duration_secs: Some(60),
        ..request(one(), 0, 60)
    };
    assert!(refused(&mut silences, both).contains("not both"));
    assert!(refused(&mut silences, request(one(), 0, 91 * 86_400)).contains("longer"));
    let many = (0..33)
        .map(|i| matcher(&format!("l{i}"), "v", false))
        .collect();
    assert!(refused(&mut silences, request(many, 0, 10)).contains("33 matchers"));
    let long = vec![matcher("a", &"x".repeat(1025), false)];
    assert!(refused(&mut silences, request(long, 0, 10)).contains("1024 bytes"));
    // A regex whose compiled program exceeds the size limit.
    let huge = vec![matcher("a", "(?:\\w{1,100}){1,100}", true)];
    assert!(refused(&mut silences, request(huge, 0, 10)).contains("regex"));
    let bad_id = SilenceRequest {
        id: "../../x".into(),
        ..request(one(), 0, 10)
    };
    assert!(refused(&mut silences, bad_id).contains("id must be"));
    assert!(silences.is_empty());

    // A duration, and a start in the past, which means now.
    let id = silences
        .add(
            SilenceRequest {
                starts_at: Some(at(-500)),
                ends_at: None,
                duration_secs: Some(3600),
                ..request(vec![matcher("rule", "de.*", true)], 0, 0)
            },
            now,
            &config(),
        )
        .unwrap();
    let listed = &silences.list(now)[0].silence;
    assert_eq!((listed.starts_at, listed.ends_at), (now, at(3600)));
    // A default duration when configured.
    let defaulted = SilenceConfig {
        default_duration_secs: 600,
        ..config()
    };
    let other = silences.add(no_end, now, &defaulted).unwrap();
    assert_eq!(
        silences
            .list(now)
            .iter()
            .find(|v| v.silence.id == other)
            .unwrap()
            .silence
            .ends_at,
        at(600)
    );

    let json = serde_json::to_string(&silences).unwrap();
    let mut restored: Silences = serde_json::from_str(&json).unwrap();
    restored.prepare(&config());
    assert!(restored.is_silenced(&labels(&[("rule", "default")]), at(5)));
    assert!(restored.remove(&id));
}

/// Issue 12 (review finding: no count cap): the cap holds; expired silences make room,
/// active ones do not.
#[test]
fn issue_12_the_silence_count_is_capped() {
    let config = SilenceConfig {
        max_count: 3,
        ..config()
    };
    let mut silences = Silences::default();
    let one = |value: &str| vec![matcher("narrative_id", value, false)];
    silences
        .add(request(one("a"), 0, 10), at(0), &config)
        .unwrap();
    silences
        .add(request(one("b"), 0, 1000), at(0), &config)
        .unwrap();
    let c = silences
        .add(request(one("c"), 0, 1000), at(0), &config)
        .unwrap();
    let err = silences
        .add(request(one("d"), 0, 1000), at(0), &config)
        .unwrap_err();
    assert!(
        matches!(err, AlertError::TooManySilences { max: 3 }),
        "{err}"
    );
    assert!(err.to_string().contains("at most 3"), "{err}");
    // Replacing an existing silence is not a new one.
    let replaced = SilenceRequest {
        id: c.clone(),
        ..request(one("c2"), 0, 1000)
    };
    assert_eq!(silences.add(replaced, at(0), &config).unwrap(), c);
    // Once "a" has expired, it makes room (still listed until then).
    let d = silences
        .add(request(one("d"), 20, 1000), at(20), &config)
        .unwrap();
    let ids: Vec<String> = silences
        .list(at(20))
        .into_iter()
        .map(|v| v.silence.id)
        .collect();
    assert_eq!(ids.len(), 3);
    assert!(ids.contains(&d) && ids.contains(&c));
    assert!(silences
        .add(request(one("e"), 20, 1000), at(20), &config)
        .is_err());
}
