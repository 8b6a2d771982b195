//! The alert lifecycle, event by event: firing, updates, re-notifications, resolves,
//! cooldowns, grouping, silences, snapshots, and invariants on random streams.

use super::*;
use crate::fixtures::{at, narrative, short_timings};
use crate::silence::{Matcher, SilenceRequest};
use vigie_domain::Severity;

/// Short timings, sent at once (no group wait).
fn config() -> AlertConfig {
    AlertConfig {
        group_wait_secs: 0,
        ..short_timings()
    }
}

fn event(secs: i64, id: u64, severity: Severity, status: NarrativeStatus) -> NarrativeEvent {
    let mut narrative = narrative(id, severity, 5.0);
    narrative.status = status;
    NarrativeEvent {
        at: at(secs),
        kind: NarrativeEventKind::Updated,
        narrative,
    }
}

fn kinds(notifications: &[Notification]) -> Vec<(i64, NotificationKind)> {
    notifications
        .iter()
        .map(|n| (n.at.timestamp() - 1_700_000_000, n.kind))
        .collect()
}

use NarrativeStatus::{Fading, Growing, Peaking};
use NotificationKind::{Firing, Renotify, Resolved, Updated};

/// Feeds events then ticks; returns (time, kind) of everything sent.
fn run(policy: &mut AlertPolicy, events: &[NarrativeEvent], ticks: &[i64]) -> Vec<Notification> {
    let mut out = Vec::new();
    for e in events {
        out.extend(policy.on_event(e));
    }
    for t in ticks {
        out.extend(policy.on_tick(at(*t)));
    }
    out
}

#[test]
fn rise_and_fade_gives_one_firing_and_one_resolved() {
    let mut events = Vec::new();
    for minute in 0..30 {
        let status = if minute < 10 {
            Growing
        } else if minute < 15 {
            Peaking
        } else {
            Fading
        };
        events.push(event(minute * 60, 1, Severity::High, status));
    }
    let sent = backtest(events, config());
    assert_eq!(kinds(&sent), vec![(0, Firing), (900 + 600, Resolved)]);
    assert_eq!(sent[1].alert.ends_at, Some(at(1500)));
    assert_eq!(
        sent[1].alert.resolve_reason.as_deref(),
        Some("narrative faded")
    );
    assert_eq!(sent[0].fingerprint(), sent[1].fingerprint());
    assert_ne!(sent[0].id, sent[1].id);
}

#[test]
fn below_threshold_narratives_do_not_alert() {
    let sent = backtest(vec![event(0, 1, Severity::Low, Growing)], config());
    assert!(sent.is_empty());
}

#[test]
fn for_secs_needs_the_narrative_to_stay_above_threshold() {
    let mut policy = AlertPolicy::new(AlertConfig {
        for_secs: 300,
        ..config()
    });
    // Above for 200 s, then below: nothing.
    let sent = run(
        &mut policy,
        &[
            event(0, 1, Severity::High, Growing),
            event(200, 1, Severity::Low, Growing),
        ],
        &[1000],
    );
    assert!(sent.is_empty());
    // Above again from 1000: fires exactly at 1300, found by a tick at 1400.
    let sent = run(
        &mut policy,
        &[event(1000, 1, Severity::High, Growing)],
        &[1299],
    );
    assert!(sent.is_empty());
    let sent = run(&mut policy, &[], &[1400]);
    assert_eq!(kinds(&sent), vec![(1300, Firing)]);
    assert_eq!(sent[0].alert.starts_at, at(1300));
}

#[test]
fn keep_firing_for_holds_a_short_spike() {
    let mut policy = AlertPolicy::new(AlertConfig {
        keep_firing_for_secs: 3600,
        resolve_after_secs: 60,
        ..config()
    });
    let sent = run(
        &mut policy,
        &[
            event(0, 1, Severity::High, Growing),
            event(120, 1, Severity::High, Fading),
        ],
        &[600, 3599],
    );
    assert_eq!(kinds(&sent), vec![(0, Firing)]);
    let sent = run(&mut policy, &[], &[4000]);
    assert_eq!(kinds(&sent), vec![(3600, Resolved)]);
}

#[test]
fn recovering_before_resolve_after_does_not_flap() {
    let mut policy = AlertPolicy::new(config());
    let mut events = Vec::new();
    // Oscillates between fading and growing every 5 minutes for 2 hours.
    for step in 0..24 {
        let status = if step % 2 == 0 { Growing } else { Fading };
        events.push(event(step * 300, 1, Severity::High, status));
    }
    let sent = run(&mut policy, &events, &[]);
    assert_eq!(kinds(&sent), vec![(0, Firing)]);
}

#[test]
fn cooldown_delays_a_second_firing() {
    let mut policy = AlertPolicy::new(config());
    let sent = run(
        &mut policy,
        &[
            event(0, 1, Severity::High, Growing),
            event(60, 1, Severity::High, Fading),
            // Resolved at 660; back above threshold at 1000, inside the cooldown.
            event(1000, 1, Severity::High, Growing),
        ],
        &[700, 4259],
    );
    assert_eq!(kinds(&sent), vec![(0, Firing), (660, Resolved)]);
    let sent = run(&mut policy, &[], &[4300]);
    assert_eq!(kinds(&sent), vec![(660 + 3600, Firing)]);
    assert_eq!(sent[0].sequence, 0);
}

#[test]
fn renotify_cadence_and_ack() {
    let mut policy = AlertPolicy::new(AlertConfig {
        renotify_interval_secs: 300,
        ..config()
    });
    let mut sent = run(&mut policy, &[event(0, 1, Severity::High, Growing)], &[]);
    for t in (60..=1000).step_by(60) {
        sent.extend(policy.on_tick(at(t)));
    }
    assert_eq!(
        kinds(&sent),
        vec![
            (0, Firing),
            (300, Renotify),
            (600, Renotify),
            (900, Renotify)
        ]
    );
    // A long gap gives one re-notification, on the cadence.
    let sent = policy.on_tick(at(2000));
    assert_eq!(kinds(&sent), vec![(1800, Renotify)]);
    assert!(!sent[0].acked);

    let fingerprint = sent[0].fingerprint().to_owned();
    assert!(policy.ack(&fingerprint));
    assert!(!policy.ack("nope"));
    let sent = policy.on_tick(at(2100));
    assert_eq!(kinds(&sent), vec![(2100, Renotify)]);
    assert!(
        sent[0].acked,
        "acked re-notifications are marked for sinks to drop"
    );
    // Growth alone is no news once acked; a severity change is, and clears the ack.
    let mut grown = event(2200, 1, Severity::High, Growing);
    grown.narrative.growth_ratio = 50.0;
    assert!(policy.on_event(&grown).is_empty());
    let sent = policy.on_event(&event(2250, 1, Severity::Critical, Growing));
    assert_eq!(kinds(&sent), vec![(2250, Updated)]);
    assert_eq!(sent[0].alert.severity, AlertSeverity::Critical);
    assert!(!policy.alerts()[0].acked);
}

#[test]
fn material_growth_and_severity_changes_update() {
    let mut policy = AlertPolicy::new(config());
    let mut e1 = event(0, 1, Severity::High, Growing);
    e1.narrative.growth_ratio = 4.0;
    let mut e2 = e1.clone();
    e2.at = at(60);
    e2.narrative.growth_ratio = 7.0;
    let mut e3 = e1.clone();
    e3.at = at(120);
    e3.narrative.growth_ratio = 8.5;
    let e4 = event(180, 1, Severity::Medium, Growing);
    let sent = run(&mut policy, &[e1, e2, e3, e4], &[]);
    assert_eq!(
        kinds(&sent),
        vec![(0, Firing), (120, Updated), (180, Updated)]
    );
    assert_eq!(sent[2].alert.severity, AlertSeverity::Info);
}

#[test]
fn notification_ids_survive_snapshot_and_restore() {
    let events: Vec<NarrativeEvent> = (0..40)
        .map(|minute| {
            let status = if minute < 20 { Growing } else { Fading };
            event(minute * 60, 1, Severity::High, status)
        })
        .collect();
    let config = AlertConfig {
        renotify_interval_secs: 300,
        group_wait_secs: 120,
        ..config()
    };
    let straight = backtest(events.clone(), config.clone());

    let mut first = AlertPolicy::new(config.clone());
    let mut sent = Vec::new();
    for e in &events[..13] {
        sent.extend(first.on_event(e));
    }
    let json = serde_json::to_string(&first.snapshot()).unwrap();
    let mut second = AlertPolicy::restore(config, serde_json::from_str(&json).unwrap());
    for e in &events[13..] {
        sent.extend(second.on_event(e));
    }
    sent.extend(second.on_tick(at(39 * 60 + 600)));
    sent.extend(second.flush());
    assert!(straight.len() >= 4, "{:?}", kinds(&straight));
    assert_eq!(sent, straight);
    let ids: std::collections::BTreeSet<&str> = sent.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids.len(), sent.len(), "ids are unique per state change");
}

#[test]
fn grouping_holds_simultaneous_alerts_together() {
    let mut policy = AlertPolicy::new(AlertConfig {
        group_wait_secs: 30,
        ..config()
    });
    assert!(policy
        .on_event(&event(0, 1, Severity::High, Growing))
        .is_empty());
    assert!(policy
        .on_event(&event(20, 2, Severity::Critical, Growing))
        .is_empty());
    let sent = policy.on_event(&event(31, 3, Severity::High, Growing));
    assert_eq!(sent.len(), 2);
    // Released together; one group key per storyline, so each story is one message.
    let keys: Vec<&str> = sent.iter().map(|n| n.group_key.as_str()).collect();
    assert_eq!(keys, vec!["g1700000000-n1", "g1700000000-n2"]);
    let sent = policy.on_tick(at(61));
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].group_key, "g1700000031-n3");
}

#[test]
fn merged_narrative_resolves_and_the_absorbing_one_keeps_alerting() {
    let mut policy = AlertPolicy::new(AlertConfig {
        for_secs: 600,
        ..config()
    });
    let sent = run(
        &mut policy,
        &[
            event(0, 1, Severity::High, Growing),
            event(300, 2, Severity::High, Growing),
        ],
        &[700],
    );
    assert_eq!(kinds(&sent), vec![(600, Firing)]);
    let mut merged = event(800, 2, Severity::High, Growing);
    merged.kind = NarrativeEventKind::Merged {
        absorbed: NarrativeId(1),
        reason: String::new(),
    };
    let sent = policy.on_event(&merged);
    // n1 resolves; n2 inherits n1's start, so it does not wait out `for_secs` again.
    assert_eq!(kinds(&sent), vec![(800, Resolved), (800, Firing)]);
    assert_eq!(sent[0].alert.narrative_id, NarrativeId(1));
    assert_eq!(
        sent[0].alert.resolve_reason.as_deref(),
        Some("merged into n2")
    );
    assert_eq!(sent[1].alert.narrative_id, NarrativeId(2));
}

#[test]
fn retired_narrative_resolves_at_once() {
    let mut policy = AlertPolicy::new(config());
    let mut retired = event(100, 1, Severity::High, Peaking);
    retired.kind = NarrativeEventKind::Retired;
    let sent = run(
        &mut policy,
        &[event(0, 1, Severity::High, Growing), retired],
        &[],
    );
    assert_eq!(kinds(&sent), vec![(0, Firing), (100, Resolved)]);
    assert_eq!(policy.alerts()[0].state, AlertState::Resolved);
    // Forgotten after the retention.
    policy.on_tick(at(100 + 86_400));
    assert!(policy.alerts().is_empty());
}

#[test]
fn silences_mute_until_they_end() {
    let mut policy = AlertPolicy::new(AlertConfig {
        renotify_interval_secs: 300,
        ..config()
    });
    // Wall clock and event time coincide here; the issue-12 tests below pull them apart.
    policy
        .add_silence(
            SilenceRequest {
                matchers: vec![Matcher {
                    name: "narrative_id".into(),
                    value: "n1".into(),
                    is_regex: false,
                }],
                starts_at: Some(at(0)),
                ends_at: Some(at(1000)),
                created_by: "a".into(),
                comment: "known".into(),
                ..SilenceRequest::default()
            },
            at(0),
        )
        .unwrap();
    let sent = run(
        &mut policy,
        &[
            event(0, 1, Severity::High, Growing),
            event(0, 2, Severity::High, Growing),
        ],
        &[350, 700],
    );
    assert_eq!(sent.len(), 3, "{:?}", kinds(&sent));
    assert!(sent.iter().all(|n| n.alert.narrative_id == NarrativeId(2)));
    let views = policy.alerts();
    let muted = views
        .iter()
        .find(|v| v.narrative_id == NarrativeId(1))
        .unwrap();
    assert_eq!(muted.state, AlertState::Firing);
    assert!(muted.silenced && muted.silenced_by.is_some());
    // The silence ends: the muted alert is announced as firing.
    policy.set_wall_clock(at(1200));
    let sent: Vec<_> = policy
        .on_tick(at(1200))
        .into_iter()
        .filter(|n| n.alert.narrative_id == NarrativeId(1))
        .collect();
    assert_eq!(kinds(&sent), vec![(1200, Firing)]);
}

#[test]
fn silenced_firing_resolves_silently() {
    let mut policy = AlertPolicy::new(config());
    policy
        .add_silence(
            SilenceRequest {
                matchers: vec![Matcher {
                    name: "severity".into(),
                    value: "warning".into(),
                    is_regex: false,
                }],
                starts_at: Some(at(0)),
                ends_at: Some(at(100_000)),
                ..SilenceRequest::default()
            },
            at(0),
        )
        .unwrap();
    let sent = run(
        &mut policy,
        &[
            event(0, 1, Severity::High, Growing),
            event(60, 1, Severity::High, Fading),
        ],
        &[5000],
    );
    assert!(sent.is_empty(), "{:?}", kinds(&sent));
}

/// Issue 12 (review finding: silences judged in event time): a silence set "for the
/// next hour" of wall-clock time holds during a fast replay of posts from years ago,
/// and stops applying once that hour is over.
#[test]
fn issue_12_a_silence_for_the_next_hour_holds_during_a_replay_of_old_posts() {
    let wall = |secs: i64| DateTime::from_timestamp(1_900_000_000 + secs, 0).unwrap();
    let mut policy = AlertPolicy::new(AlertConfig {
        renotify_interval_secs: 300,
        ..config()
    });
    policy
        .add_silence(
            SilenceRequest {
                matchers: vec![Matcher {
                    name: "narrative_id".into(),
                    value: "n1".into(),
                    is_regex: false,
                }],
                duration_secs: Some(3600),
                ..SilenceRequest::default()
            },
            wall(0),
        )
        .unwrap();
    // Event time runs days ahead within a minute of wall time (a replay at full speed):
    // judged in event time, the silence would have ended after its first hour.
    let mut sent = Vec::new();
    for (step, secs) in (0..50_000).step_by(5000).enumerate() {
        policy.set_wall_clock(wall(step as i64));
        sent.extend(policy.on_event(&event(secs, 1, Severity::High, Growing)));
        sent.extend(policy.on_tick(at(secs + 1)));
    }
    assert!(sent.is_empty(), "{:?}", kinds(&sent));
    let view = &policy.alerts()[0];
    assert_eq!(view.state, AlertState::Firing);
    assert!(view.silenced);

    // The hour is over: the silence stops applying and the alert is announced.
    policy.set_wall_clock(wall(3600));
    let sent = policy.on_tick(at(50_000));
    assert_eq!(kinds(&sent), vec![(50_000, Firing)]);
    assert!(!policy.alerts()[0].silenced);
    let listed = policy.silences().list(wall(3600));
    assert_eq!(listed[0].state, crate::silence::SilenceState::Expired);
    // Listed as expired for the retention, then forgotten from memory.
    let retention = i64::try_from(policy.config().silences.expired_retention_secs).unwrap();
    policy.set_wall_clock(wall(3600 + retention));
    assert!(policy.silences().is_empty());
}

/// Random event streams (seeded): whatever happens, each alert alternates firing and
/// resolved, never fires again within its cooldown, never resolves before
/// `keep_firing_for_secs`, ids are unique, and a snapshot/restore anywhere changes
/// nothing.
#[test]
fn lifecycle_invariants_hold_on_random_streams() {
    let config = AlertConfig {
        for_secs: 120,
        keep_firing_for_secs: 300,
        resolve_after_secs: 600,
        cooldown_secs: 1800,
        renotify_interval_secs: 900,
        group_wait_secs: 30,
        ..config()
    };
    for seed in 0..40 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut events = Vec::new();
        let mut t = 0;
        for _ in 0..300 {
            t += rng.i64(0..240);
            let severity = [
                Severity::Low,
                Severity::Medium,
                Severity::High,
                Severity::Critical,
            ][rng.usize(0..4)];
            let status = [Growing, Peaking, Fading][rng.usize(0..3)];
            let mut e = event(t, rng.u64(1..4), severity, status);
            e.narrative.growth_ratio = rng.f64() * 20.0;
            if rng.u8(0..40) == 0 {
                e.kind = NarrativeEventKind::Retired;
            }
            events.push(e);
        }
        let sent = backtest(events.clone(), config.clone());
        let ids: std::collections::BTreeSet<&str> = sent.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids.len(), sent.len(), "seed {seed}: unique ids");
        let mut by_alert: BTreeMap<&str, Vec<&Notification>> = BTreeMap::new();
        for n in &sent {
            by_alert.entry(n.fingerprint()).or_default().push(n);
        }
        for notifications in by_alert.values() {
            let mut firing_since: Option<DateTime<Utc>> = None;
            let mut resolved_at: Option<DateTime<Utc>> = None;
            let mut last = None;
            for n in notifications {
                assert!(last.is_none_or(|l| l <= n.at), "seed {seed}: time order");
                last = Some(n.at);
                match n.kind {
                    Firing if firing_since.is_none() => {
                        if let Some(resolved) = resolved_at {
                            assert!(n.at - resolved >= secs(1800), "seed {seed}: cooldown");
                        }
                        firing_since = Some(n.at);
                    }
                    Updated | Renotify => assert!(firing_since.is_some(), "seed {seed}"),
                    Resolved => {
                        let since = firing_since.take().expect("resolves a firing");
                        assert!(n.at - since >= secs(300), "seed {seed}: keep_firing_for");
                        resolved_at = Some(n.at);
                    }
                    Firing => panic!("seed {seed}: fired twice without a resolve"),
                }
            }
        }
        // Restored halfway, the policy sends the same notifications (compared on ids,
        // kinds and times: JSON may round a float's last bit, which the daemon's
        // binary snapshots do not).
        let cut = rng.usize(1..events.len());
        let mut first = AlertPolicy::new(config.clone());
        let mut again = Vec::new();
        for e in &events[..cut] {
            again.extend(first.on_event(e));
        }
        let json = serde_json::to_string(&first.snapshot()).unwrap();
        let mut second = AlertPolicy::restore(config.clone(), serde_json::from_str(&json).unwrap());
        for e in &events[cut..] {
            again.extend(second.on_event(e));
        }
        again.extend(second.on_tick(events.last().unwrap().at + secs(600)));
        again.extend(second.flush());
        let brief = |ns: &[Notification]| -> Vec<String> {
            ns.iter()
                .map(|n| {
                    format!(
                        "{} {} {} {}",
                        n.at.timestamp() - 1_700_000_000,
                        n.kind.as_str(),
                        n.alert.narrative_id,
                        n.id
                    )
                })
                .collect()
        };
        assert_eq!(
            brief(&again),
            brief(&sent),
            "seed {seed}: restore changes nothing (cut {cut})"
        );
    }
}

#[test]
fn time_never_runs_backwards() {
    let mut policy = AlertPolicy::new(config());
    run(
        &mut policy,
        &[event(100, 1, Severity::High, Growing)],
        &[50],
    );
    assert_eq!(policy.clock(), Some(at(100)));
}
