//! Narratives and notifications for tests: shared by this crate's tests and by
//! `vigie-alert-delivery`'s (a dev-dependency), so both test against what the policy
//! really builds. Not for production use.

use chrono::{DateTime, Utc};
use vigie_domain::alert::{AlertSeverity, AlertStatus, Notification, NotificationKind, PostRef};
use vigie_domain::{
    CoordinationEvidence, Narrative, NarrativeEvent, NarrativeEventKind, NarrativeId,
    NarrativeStatus, RepresentativePost, Severity, TermSignal, TokenKind,
};

use crate::config::AlertConfig;
use crate::content::{build_alert, AlertFrame};
use crate::policy::fingerprint;

/// Returns a narrative for tests: growing, `severity`, `growth_ratio`.
pub fn narrative(id: u64, severity: Severity, growth_ratio: f64) -> Narrative {
    let at = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
    Narrative {
        id: NarrativeId(id),
        parent: None,
        label: format!("kochfarms #hoax{id}"),
        headline: String::new(),
        terms: vec![
            TermSignal {
                term: "kochfarm".into(),
                kind: TokenKind::Word,
                z: 12.5,
                posts_in_window: 80.0,
                baseline_mean: 2.0,
                baseline_std: 1.0,
                narrative_posts: 300,
            },
            TermSignal {
                term: "kochfarms".into(),
                kind: TokenKind::Hashtag,
                z: 9.1,
                posts_in_window: 60.0,
                baseline_mean: 1.0,
                baseline_std: 1.0,
                narrative_posts: 200,
            },
        ],
        hashtags: vec!["kochfarms".into()],
        first_seen: at,
        last_seen: at,
        status: NarrativeStatus::Growing,
        severity,
        severity_reasons: vec!["growth 9.4× baseline".into()],
        posts_total: 312,
        posts_in_window: 94.0,
        baseline_posts_per_window: 10.0,
        growth_ratio,
        growth_z: 8.0,
        distinct_authors: 57,
        anonymous_posts: 0,
        engagement: 0,
        languages: vec![("en".into(), 300), ("fr".into(), 10), ("ru".into(), 2)],
        member_post_ids: vec!["p1".into(), "p2".into()],
        window_post_ids: vec!["p2".into()],
        representative_post_ids: (1..=7).map(|i| format!("p{i}")).collect(),
        representatives: Vec::new(),
        coordination: CoordinationEvidence {
            score: 0.4,
            known_author_posts: 300,
            near_duplicate_share: 0.3,
            top_accounts: vec![("troll_1".into(), 40), ("troll_2".into(), 30)],
            ..CoordinationEvidence::default()
        },
        watch_matches: Vec::new(),
        merged_ids: Vec::new(),
    }
}

/// Returns a notification about narrative `id` as the policy would build it.
pub fn notification(id: u64, kind: NotificationKind) -> Notification {
    let config = AlertConfig {
        runbook_url: "https://wiki.example/runbook".into(),
        ..AlertConfig::default()
    };
    let narrative = narrative(id, Severity::High, 9.4);
    let at = DateTime::<Utc>::from_timestamp(1_700_000_600, 0).unwrap();
    let resolved = kind == NotificationKind::Resolved;
    let status = if resolved {
        AlertStatus::Resolved
    } else {
        AlertStatus::Firing
    };
    let mut alert = build_alert(
        AlertFrame {
            config: &config,
            rule: &config.rules[0],
            fingerprint: &fingerprint(narrative.id, "default"),
            severity: AlertSeverity::Warning,
            status,
            starts_at: narrative.first_seen,
            ends_at: resolved.then_some(at),
            resolve_reason: resolved.then(|| "narrative faded".to_owned()),
            lookup: None,
            parent_title: None,
        },
        &narrative,
    );
    alert.representative_posts[0] = PostRef {
        url: Some("https://x.example/p1".into()),
        text: Some("Koch Farms gives away turkeys… not".into()),
        ..PostRef::id_only("p1")
    };
    Notification {
        id: format!("vigie_test{id}{}", kind.as_str()),
        kind,
        sequence: 0,
        at,
        group_key: "g0".into(),
        acked: false,
        previous_severity: None,
        with_parent: false,
        alert,
    }
}

/// Returns event time `secs` after 2023-11-14 22:13:20 UTC.
pub fn at(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000 + secs, 0).unwrap()
}

/// Returns a config with short timings: no `for`, resolves after 10 minutes of fading,
/// one hour of cooldown, no re-notifications, 30 s group wait.
pub fn short_timings() -> AlertConfig {
    AlertConfig {
        for_secs: 0,
        keep_firing_for_secs: 0,
        resolve_after_secs: 600,
        cooldown_secs: 3600,
        renotify_interval_secs: 0,
        group_wait_secs: 30,
        ..AlertConfig::default()
    }
}

/// Returns storyline `id` (a narrative with no parent) with a headline.
pub fn storyline(id: u64, severity: Severity, status: NarrativeStatus) -> Narrative {
    let mut n = narrative(id, severity, 5.0);
    n.status = status;
    n.headline = format!("Hurricane Sandy hits New Jersey (story {id})");
    n
}

/// A claim of storyline `parent`, as the detector reports it (severity Medium).
pub fn claim(id: u64, parent: u64) -> Narrative {
    let mut n = narrative(id, Severity::Medium, 3.0);
    n.parent = Some(NarrativeId(parent));
    n.label = format!("shark highway {id}");
    n.headline = format!("A shark swimming on a New Jersey highway, photo {id}");
    n.posts_total = 12;
    n.distinct_authors = 9;
    n.representatives = vec![
        RepresentativePost {
            post_id: format!("c{id}a"),
            text: format!("Shark on the highway in NJ!! photo {id}"),
            lang: "en".into(),
            copies: 14,
        },
        RepresentativePost {
            post_id: format!("c{id}b"),
            text: "Un requin sur l'autoroute du New Jersey".into(),
            lang: "fr".into(),
            copies: 1,
        },
    ];
    n
}

/// Returns an update of `narrative` at `secs`.
pub fn event(secs: i64, narrative: Narrative) -> NarrativeEvent {
    NarrativeEvent {
        at: at(secs),
        kind: NarrativeEventKind::Updated,
        narrative,
    }
}

/// Returns the creation of `narrative` at `secs`.
pub fn created(secs: i64, narrative: Narrative) -> NarrativeEvent {
    NarrativeEvent {
        kind: NarrativeEventKind::Created,
        ..event(secs, narrative)
    }
}
