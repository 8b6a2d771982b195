//! Issue 8, row 3 ("alerts follow the hierarchy"), the policy's side: a storyline alerts
//! once, its claims are child notifications grouped with it. What sinks make of them
//! (and row 4, the content they show) is tested in `vigie-alert-delivery`.

use std::collections::BTreeSet;

use vigie_domain::{NarrativeEvent, NarrativeEventKind, NarrativeId, NarrativeStatus, Severity};

use crate::config::AlertConfig;
use crate::fixtures::{at, claim, created, event, short_timings as config, storyline};
use crate::policy::{backtest, AlertPolicy, AlertState};
use crate::silence::{Matcher, SilenceRequest};
use vigie_domain::alert::{AlertStatus, NarrativeLevel, Notification, NotificationKind};

use NarrativeStatus::{Fading, Growing};
use NotificationKind::{Firing, Resolved};

/// A policy that sends at once (no group wait), fed `events`; returns what it sent.
fn without_group_wait(events: &[NarrativeEvent]) -> (AlertPolicy, Vec<Notification>) {
    let mut policy = AlertPolicy::new(AlertConfig {
        group_wait_secs: 0,
        ..config()
    });
    let sent = events.iter().flat_map(|e| policy.on_event(e)).collect();
    (policy, sent)
}

/// Storyline `into` (high, growing) absorbs storyline `absorbed` at `secs`.
fn merged(secs: i64, into: u64, absorbed: u64) -> NarrativeEvent {
    NarrativeEvent {
        kind: NarrativeEventKind::Merged {
            absorbed: NarrativeId(absorbed),
            reason: "shared terms".into(),
        },
        ..event(secs, storyline(into, Severity::High, Growing))
    }
}

fn groups(sent: &[Notification]) -> BTreeSet<&str> {
    sent.iter().map(|n| n.group_key.as_str()).collect()
}

/// Issue 8, row 3: a claim that matches before its storyline alerts waits (pending) and
/// goes out with the storyline, in its group; while the storyline is silenced, its claims
/// wait for the silence to end too.
#[test]
fn issue_8_row_3_claims_wait_for_their_storyline_and_go_out_with_it() {
    let mut policy = AlertPolicy::new(AlertConfig {
        group_wait_secs: 0,
        ..config()
    });
    // The storyline is below the rule's threshold; its claim is above.
    assert!(policy
        .on_event(&created(0, storyline(1, Severity::Low, Growing)))
        .is_empty());
    assert!(policy.on_event(&created(10, claim(7, 1))).is_empty());
    assert!(policy.on_tick(at(100)).is_empty());
    let pending = policy.alerts();
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (pending[0].state, pending[0].level),
        (AlertState::Pending, NarrativeLevel::Claim)
    );
    assert_eq!(pending[0].parent, Some(NarrativeId(1)));

    let sent = policy.on_event(&event(200, storyline(1, Severity::High, Growing)));
    let order: Vec<(NarrativeId, NotificationKind)> = sent
        .iter()
        .map(|n| (n.alert.narrative_id, n.kind))
        .collect();
    assert_eq!(
        order,
        vec![(NarrativeId(1), Firing), (NarrativeId(7), Firing)]
    );
    assert_eq!(groups(&sent).len(), 1);
    assert_eq!(sent[1].at, at(200), "not before its storyline");

    // A silenced storyline holds its new claims back until the silence ends.
    let mut policy = AlertPolicy::new(AlertConfig {
        group_wait_secs: 0,
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
                starts_at: Some(at(0)),
                ends_at: Some(at(1000)),
                ..SilenceRequest::default()
            },
            at(0),
        )
        .unwrap();
    assert!(policy
        .on_event(&created(0, storyline(1, Severity::High, Growing)))
        .is_empty());
    assert!(policy.on_event(&created(10, claim(7, 1))).is_empty());
    policy.set_wall_clock(at(1200));
    let sent = policy.on_tick(at(1200));
    let ids: Vec<NarrativeId> = sent.iter().map(|n| n.alert.narrative_id).collect();
    assert_eq!(ids, vec![NarrativeId(1), NarrativeId(7)]);
    assert_eq!(groups(&sent).len(), 1);
}

/// Issue 8, row 3 (decided and documented in `policy::hierarchy`): the claims of a
/// storyline that never alerts send nothing.
#[test]
fn issue_8_row_3_claims_of_a_storyline_that_never_alerts_send_nothing() {
    let mut events = vec![created(0, storyline(1, Severity::Low, Growing))];
    events.extend((0..5).map(|i| created(10 + i, claim(10 + i as u64, 1))));
    events.push(event(4000, storyline(1, Severity::Low, Fading)));
    assert!(backtest(events, config()).is_empty());
}

/// Issue 8, row 3: when the storyline resolves, its firing claims resolve with it (no page
/// of their own) and come back with it, without a cooldown of their own.
#[test]
fn issue_8_row_3_claims_resolve_with_their_storyline_and_come_back_with_it() {
    let mut policy = AlertPolicy::new(AlertConfig {
        group_wait_secs: 0,
        ..config()
    });
    let mut sent = Vec::new();
    for e in [
        created(0, storyline(1, Severity::High, Growing)),
        created(10, claim(7, 1)),
        created(10, claim(8, 1)),
        event(20, storyline(1, Severity::High, Fading)),
        // Claims keep matching.
        event(30, claim(7, 1)),
    ] {
        sent.extend(policy.on_event(&e));
    }
    sent.extend(policy.on_tick(at(700)));
    let resolved: Vec<&Notification> = sent.iter().filter(|n| n.kind == Resolved).collect();
    assert_eq!(resolved.len(), 3);
    assert_eq!(resolved[0].alert.narrative_id, NarrativeId(1));
    assert!(resolved[1..].iter().all(|n| n.with_parent
        && n.at == at(620)
        && n.alert.resolve_reason.as_deref() == Some("storyline n1 resolved (narrative faded)")));
    assert_eq!(
        resolved
            .iter()
            .map(|n| &n.group_key)
            .collect::<BTreeSet<_>>()
            .len(),
        1
    );
    // Claims wait for the storyline's cooldown only.
    let sent = policy.on_event(&event(1000, storyline(1, Severity::High, Growing)));
    assert!(sent.is_empty(), "storyline in its cooldown");
    let sent = policy.on_tick(at(620 + 3600));
    let back: Vec<NarrativeId> = sent.iter().map(|n| n.alert.narrative_id).collect();
    assert_eq!(back, vec![NarrativeId(1), NarrativeId(7), NarrativeId(8)]);
    assert!(sent.iter().all(|n| n.kind == Firing));
}

/// Issue 8, row 3: a firing claim whose storyline is merged into another resolves under
/// its old storyline (labels receivers know it by) and fires again under the new one.
#[test]
fn issue_8_row_3_a_claim_moved_to_another_storyline_resolves_under_the_old_one() {
    let (mut policy, sent) = without_group_wait(&[
        created(0, storyline(1, Severity::High, Growing)),
        created(0, storyline(2, Severity::High, Growing)),
        created(10, claim(7, 1)),
    ]);
    assert_eq!(sent.len(), 3);
    let mut sent = policy.on_event(&merged(100, 2, 1));
    sent.extend(policy.on_event(&event(100, claim(7, 2))));
    let brief: Vec<(NarrativeId, NotificationKind, String)> = sent
        .iter()
        .map(|n| {
            (
                n.alert.narrative_id,
                n.kind,
                n.alert.labels["storyline"].clone(),
            )
        })
        .collect();
    assert_eq!(
        brief,
        vec![
            (NarrativeId(1), Resolved, "n1".into()),
            (NarrativeId(7), Resolved, "n1".into()),
            (NarrativeId(7), Firing, "n2".into()),
        ]
    );
}

/// A claim carried through two storyline merges in the same second fires three times
/// with one `starts_at`: each firing (and its resolve) still gets its own id, which a
/// receiver deduplicates by (found by the fault soak: one `webhook-id`, two bodies).
#[test]
fn a_claim_refired_within_one_second_gets_a_new_id_each_time() {
    let (mut policy, mut sent) = without_group_wait(&[
        created(0, storyline(1, Severity::High, Growing)),
        created(0, storyline(2, Severity::High, Growing)),
        created(0, storyline(3, Severity::High, Growing)),
        created(10, claim(7, 1)),
    ]);
    for (absorbed, into) in [(1, 2), (2, 3)] {
        sent.extend(policy.on_event(&merged(100, into, absorbed)));
        sent.extend(policy.on_event(&event(100, claim(7, into))));
    }
    let claim_changes: Vec<(NotificationKind, String)> = sent
        .iter()
        .filter(|n| n.alert.narrative_id == NarrativeId(7))
        .map(|n| (n.kind, n.alert.labels["storyline"].clone()))
        .collect();
    assert_eq!(
        claim_changes,
        vec![
            (Firing, "n1".into()),
            (Resolved, "n1".into()),
            (Firing, "n2".into()),
            (Resolved, "n2".into()),
            (Firing, "n3".into()),
        ]
    );
    let ids: BTreeSet<&str> = sent.iter().map(|n| n.id.as_str()).collect();
    assert_eq!(ids.len(), sent.len(), "one id per notification: {sent:#?}");
    // The count survives a snapshot: a restored policy does not reuse an id either.
    let json = serde_json::to_string(&policy.snapshot()).unwrap();
    let mut restored = AlertPolicy::restore(config(), serde_json::from_str(&json).unwrap());
    let mut more = restored.on_event(&created(100, storyline(4, Severity::High, Growing)));
    more.extend(restored.on_event(&merged(100, 4, 3)));
    more.extend(restored.on_event(&event(100, claim(7, 4))));
    more.extend(restored.flush());
    assert!(more
        .iter()
        .any(|n| n.alert.narrative_id == NarrativeId(7) && n.kind == Firing));
    for n in &more {
        assert!(!ids.contains(n.id.as_str()), "{} reused", n.id);
    }
}

/// Issue 8, row 3: on random streams of storylines and claims, a claim only ever fires
/// while its storyline is firing, its resolves come no later than its storyline's, ids
/// are unique, and a snapshot/restore anywhere changes nothing.
#[test]
fn issue_8_row_3_hierarchy_invariants_hold_on_random_streams() {
    let config = AlertConfig {
        for_secs: 120,
        keep_firing_for_secs: 300,
        resolve_after_secs: 600,
        cooldown_secs: 1800,
        renotify_interval_secs: 900,
        group_wait_secs: 30,
        ..AlertConfig::default()
    };
    for seed in 0..30 {
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut events = Vec::new();
        let mut t = 0;
        for _ in 0..300 {
            t += rng.i64(0..240);
            let parent = rng.u64(1..3);
            let mut n = if rng.bool() {
                storyline(
                    parent,
                    [Severity::Low, Severity::High, Severity::Critical][rng.usize(0..3)],
                    [Growing, Fading][rng.usize(0..2)],
                )
            } else {
                // Claims 10..13 belong to n1, 20..23 to n2; sometimes one moves.
                let mut c = claim(parent * 10 + rng.u64(0..3), parent);
                if rng.u8(0..20) == 0 {
                    c.parent = Some(NarrativeId(3 - parent));
                }
                c.status = [Growing, Fading][rng.usize(0..2)];
                c
            };
            n.growth_ratio = rng.f64() * 20.0;
            let mut e = event(t, n);
            if rng.u8(0..50) == 0 {
                e.kind = NarrativeEventKind::Retired;
            }
            events.push(e);
        }
        let sent = backtest(events.clone(), config.clone());
        let ids: BTreeSet<&str> = sent.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids.len(), sent.len(), "seed {seed}: unique ids");
        // Replay the notifications: which storylines are firing as receivers see it.
        let mut firing: BTreeSet<NarrativeId> = BTreeSet::new();
        for n in &sent {
            match (n.level(), n.alert.status) {
                (NarrativeLevel::Storyline, AlertStatus::Firing) => {
                    firing.insert(n.alert.narrative_id);
                }
                (NarrativeLevel::Storyline, AlertStatus::Resolved) => {
                    firing.remove(&n.alert.narrative_id);
                }
                (NarrativeLevel::Claim, AlertStatus::Firing) => assert!(
                    firing.contains(&n.alert.storyline()),
                    "seed {seed}: {} fired while its storyline was not firing",
                    n.alert.narrative_id
                ),
                (NarrativeLevel::Claim, AlertStatus::Resolved) => {}
            }
        }
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
        again.extend(second.on_tick(events.last().unwrap().at + chrono::Duration::seconds(600)));
        again.extend(second.flush());
        let brief = |ns: &[Notification]| -> Vec<String> {
            ns.iter()
                .map(|n| {
                    format!(
                        "{} {} {} {}",
                        n.at,
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
            "seed {seed}: restore (cut {cut})"
        );
    }
}
