//! Issue 8, row 3 ("alerts follow the hierarchy") and row 4 ("readable and honest
//! evidence"), what receivers get: a storyline and its claims go out as one conversation
//! per sink, chat sinks take only a claim's news, and messages lead with headlines and
//! diverse representatives. The notifications come from the real policy (`vigie-alert`, a
//! dev-dependency).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use vigie_alert::fixtures::{at, claim, created, event, short_timings as config, storyline};
use vigie_alert::{backtest, AlertConfig, AlertPolicy};
use vigie_domain::alert::{NarrativeLevel, Notification, NotificationKind};
use vigie_domain::{NarrativeEvent, NarrativeId, NarrativeStatus, Secret, Severity};

use crate::config::{DeliveryConfig, SinkConfig, SinkKind};
use crate::delivery::{routes_to, AlertDelivery};
use crate::format;
use crate::outbox::Outbox;

use NarrativeStatus::{Fading, Growing};
use NotificationKind::{Firing, Resolved};

fn groups(sent: &[Notification]) -> BTreeSet<&str> {
    sent.iter().map(|n| n.group_key.as_str()).collect()
}

/// A storyline and 40 claims: it fires, its claims are created within the group wait,
/// then the storyline fades.
fn forty_claims_story() -> Vec<NarrativeEvent> {
    let mut events = vec![created(0, storyline(1, Severity::High, Growing))];
    events.extend((0..40).map(|i| created(5 + i / 4, claim(100 + i as u64, 1))));
    events.push(event(60, storyline(1, Severity::High, Fading)));
    events
}

/// Issue 8, row 3: a story with 40 claims is one conversation, not 40 pages: the
/// storyline's firing and its 40 new claims share one group (one Slack message, one Teams
/// card, one Alertmanager request), so do their resolves; webhooks get each one with its
/// `parent`.
#[tokio::test]
async fn issue_8_row_3_a_storyline_with_40_claims_is_one_conversation_not_40_pages() {
    let sent = backtest(forty_claims_story(), config());
    let firing: Vec<&Notification> = sent.iter().filter(|n| n.kind == Firing).collect();
    let resolved: Vec<&Notification> = sent.iter().filter(|n| n.kind == Resolved).collect();
    assert_eq!((firing.len(), resolved.len(), sent.len()), (41, 41, 82));
    let firing_groups: BTreeSet<&str> = firing.iter().map(|n| n.group_key.as_str()).collect();
    let resolved_groups: BTreeSet<&str> = resolved.iter().map(|n| n.group_key.as_str()).collect();
    assert_eq!(firing_groups.len(), 1, "{firing_groups:?}");
    assert_eq!(resolved_groups.len(), 1, "{resolved_groups:?}");
    for n in &sent {
        assert_eq!(n.alert.storyline(), NarrativeId(1));
        assert_eq!(n.alert.labels["storyline"], "n1");
        if n.alert.narrative_id == NarrativeId(1) {
            assert_eq!(n.level(), NarrativeLevel::Storyline);
            assert_eq!(n.alert.labels["level"], "storyline");
            assert!(!n.alert.labels.contains_key("parent"));
        } else {
            assert_eq!(n.level(), NarrativeLevel::Claim);
            assert_eq!(n.alert.parent, Some(NarrativeId(1)));
            assert_eq!(n.alert.labels["parent"], "n1");
            assert_eq!(n.alert.labels["level"], "claim");
            assert_eq!(
                n.alert.parent_title.as_deref(),
                Some("Hurricane Sandy hits New Jersey (story 1)")
            );
            // Resolved with the storyline, at the same time.
            if n.kind == Resolved {
                assert!(n.with_parent);
                assert_eq!(n.at, resolved[0].at);
            }
        }
    }

    let (url, log) = serve().await;
    let dir = tempfile::tempdir().unwrap();
    let mut alertmanager = sink("am", SinkKind::Alertmanager, &url, "/am");
    alertmanager.urls = vec![Secret::new(format!("{url}/am"))];
    alertmanager.url = Secret::default();
    let delivery = AlertDelivery::start(
        &[
            sink("slack", SinkKind::Slack, &url, "/slack"),
            sink("teams", SinkKind::Teams, &url, "/teams"),
            sink("hook", SinkKind::Webhook, &url, "/hook"),
            alertmanager,
        ],
        &DeliveryConfig {
            initial_backoff_ms: 20,
            max_backoff_ms: 100,
            max_age_secs: 60,
        },
        config().renotify_interval_secs,
        Outbox::open(dir.path()).unwrap(),
        None,
    )
    .unwrap();
    // The daemon hands each step's notifications to the outbox as they come.
    delivery.deliver(&sent[..41]).unwrap();
    delivery.deliver(&sent[41..]).unwrap();
    assert!(delivery.drain(Duration::from_secs(20)).await, "delivered");
    let log = log.lock().unwrap();
    let bodies = |path: &str| -> Vec<serde_json::Value> {
        log.iter()
            .filter(|(p, _)| p.starts_with(path))
            .map(|(_, body)| serde_json::from_slice(body).unwrap())
            .collect()
    };
    let slack = bodies("/slack");
    assert_eq!(
        slack.len(),
        2,
        "one Slack message for the firing, one for the resolve"
    );
    let text = slack[0].to_string();
    assert!(text.contains("40 new claims"), "{text}");
    assert!(text.contains("… and 10 more claims"), "{text}");
    assert!(text.contains("×14"), "{text}");
    let blocks = slack[0]["blocks"].as_array().unwrap();
    assert!(blocks.len() <= format::slack::MAX_BLOCKS);
    assert!(slack[1]
        .to_string()
        .contains("40 claims resolved with the storyline"));
    let teams = bodies("/teams");
    assert_eq!(
        teams.len(),
        2,
        "one Teams card for the firing, one for the resolve"
    );
    assert!(teams[0].to_string().contains("40 new claims"));
    let am = bodies("/am");
    assert_eq!(am.len(), 2, "one Alertmanager request per group");
    assert_eq!(am[0].as_array().unwrap().len(), 41);
    let hooks = bodies("/hook");
    assert_eq!(
        hooks.len(),
        82,
        "webhooks take every notification, one each"
    );
    let claims = hooks
        .iter()
        .filter(|h| h["data"]["alert"]["level"] == "claim")
        .inspect(|h| assert_eq!(h["data"]["alert"]["parent"], 1))
        .count();
    assert_eq!(claims, 80);
}

/// Issue 8, row 3: claims that appear later, while their storyline fires, are batched:
/// one group per storyline for those released together, not one each.
#[test]
fn issue_8_row_3_later_claims_are_batched_into_one_group_per_storyline() {
    let mut policy = AlertPolicy::new(config());
    let mut sent = Vec::new();
    for e in [
        created(0, storyline(1, Severity::High, Growing)),
        created(0, storyline(2, Severity::High, Growing)),
    ] {
        sent.extend(policy.on_event(&e));
    }
    sent.extend(policy.on_tick(at(40)));
    assert_eq!(sent.len(), 2);
    assert_eq!(groups(&sent).len(), 2, "one group per storyline");

    let mut later = Vec::new();
    for i in 0..5 {
        later.extend(policy.on_event(&created(100 + i, claim(10 + i as u64, 1))));
    }
    for i in 0..3 {
        later.extend(policy.on_event(&created(110 + i, claim(20 + i as u64, 2))));
    }
    later.extend(policy.on_tick(at(140)));
    assert_eq!(later.len(), 8);
    let mut by_group: BTreeMap<&str, Vec<NarrativeId>> = BTreeMap::new();
    for n in &later {
        assert_eq!(n.kind, Firing);
        by_group
            .entry(&n.group_key)
            .or_default()
            .push(n.alert.storyline());
    }
    let sizes: Vec<(NarrativeId, usize)> =
        by_group.values().map(|ids| (ids[0], ids.len())).collect();
    assert_eq!(sizes, vec![(NarrativeId(1), 5), (NarrativeId(2), 3)]);
    assert!(by_group
        .values()
        .all(|ids| ids.iter().all(|id| *id == ids[0])));

    // Each group is one chat message naming its storyline.
    let refs: Vec<&Notification> = later
        .iter()
        .filter(|n| n.alert.storyline() == NarrativeId(1))
        .collect();
    let body = format::slack::message(&refs).to_string();
    assert!(
        body.contains("5 new claims in storyline n1: Hurricane Sandy hits New Jersey (story 1)"),
        "{body}"
    );
}

/// Issue 8, row 3: chat sinks take a claim's news only (new, or resolved with its
/// storyline); its updates, re-notifications and lone resolves go to machines.
#[test]
fn issue_8_row_3_chat_sinks_take_only_the_news_of_a_claim() {
    let mut policy = AlertPolicy::new(AlertConfig {
        group_wait_secs: 0,
        renotify_interval_secs: 300,
        ..config()
    });
    let mut critical = claim(7, 1);
    critical.severity = Severity::Critical;
    let mut faded = claim(7, 1);
    faded.status = Fading;
    let mut sent = Vec::new();
    for e in [
        created(0, storyline(1, Severity::High, Growing)),
        created(10, claim(7, 1)),
        event(20, critical),
        event(400, faded),
    ] {
        sent.extend(policy.on_event(&e));
    }
    sent.extend(policy.on_tick(at(1100)));
    let claim_kinds: Vec<NotificationKind> = sent
        .iter()
        .filter(|n| n.level() == NarrativeLevel::Claim)
        .map(|n| n.kind)
        .collect();
    use NotificationKind::{Renotify, Updated};
    assert_eq!(claim_kinds, vec![Firing, Updated, Renotify, Resolved]);
    let slack = sink("s", SinkKind::Slack, "http://127.0.0.1:1", "");
    let mut am = sink("am", SinkKind::Alertmanager, "http://127.0.0.1:1", "");
    am.renotify = Some(true);
    let to_chat: Vec<NotificationKind> = sent
        .iter()
        .filter(|n| n.level() == NarrativeLevel::Claim && routes_to(&slack, n))
        .map(|n| n.kind)
        .collect();
    assert_eq!(to_chat, vec![Firing]);
    assert!(sent
        .iter()
        .filter(|n| n.level() == NarrativeLevel::Claim)
        .all(|n| routes_to(&am, n)));
}

/// Issue 8, row 4: alerts lead with the narrative's headline and show its diverse
/// representatives with language and copies, not raw ids; without them (older
/// snapshots), the label and the representative ids as before.
#[test]
fn issue_8_row_4_alerts_lead_with_the_headline_and_show_diverse_representatives() {
    let mut story = storyline(1, Severity::High, Growing);
    story.representatives = claim(7, 1).representatives;
    let sent = backtest(
        vec![created(0, story), created(1, claim(7, 1))],
        AlertConfig {
            group_wait_secs: 0,
            ..config()
        },
    );
    let claim_alert = &sent[1].alert;
    assert_eq!(
        claim_alert.title,
        "Claim spreading: A shark swimming on a New Jersey highway, photo 7"
    );
    assert!(claim_alert.summary.starts_with("claim 'shark highway 7'"));
    let posts: Vec<(String, Option<String>, Option<u32>)> = claim_alert
        .representative_posts
        .iter()
        .map(|p| (p.id.clone(), p.lang.clone(), p.copies))
        .collect();
    assert_eq!(
        posts,
        vec![
            ("c7a".into(), Some("en".into()), Some(14)),
            ("c7b".into(), Some("fr".into()), Some(1)),
        ]
    );
    assert_eq!(claim_alert.representative_posts[0].provenance(), "en ×14");
    assert_eq!(
        claim_alert.representative_posts[1].text.as_deref(),
        Some("Un requin sur l'autoroute du New Jersey")
    );
    // A storyline in full: its representatives with language and copies.
    let refs = [&sent[0]];
    let slack = format::slack::message(&refs).to_string();
    assert!(
        slack.contains("• _(en ×14)_ — Shark on the highway in NJ!! photo 7"),
        "{slack}"
    );
    assert!(!slack.contains("c7a"), "no raw representative ids: {slack}");
    let teams = format::teams::message(&refs).to_string();
    assert!(
        teams.contains("- *(en ×14)* — Shark on the highway in NJ!! photo 7"),
        "{teams}"
    );
    assert!(!teams.contains("c7a"), "no raw representative ids: {teams}");
    // A claim in brief: its headline, and its most copied post when it says more.
    let refs = [&sent[1]];
    for body in [
        format::slack::message(&refs).to_string(),
        format::teams::message(&refs).to_string(),
    ] {
        assert!(
            body.contains("A shark swimming on a New Jersey highway, photo 7"),
            "{body}"
        );
        assert!(
            body.contains("“Shark on the highway in NJ!! photo 7” (en ×14)"),
            "{body}"
        );
        assert!(!body.contains("c7a"), "no raw representative ids: {body}");
    }

    // Without headline and representatives: the label and the ids, as before.
    let mut old = storyline(2, Severity::High, Growing);
    old.headline = String::new();
    let sent = backtest(
        vec![created(0, old)],
        AlertConfig {
            group_wait_secs: 0,
            ..config()
        },
    );
    assert_eq!(sent[0].alert.title, "Narrative spreading: kochfarms #hoax2");
    assert_eq!(sent[0].alert.representative_posts[0].id, "p1");
    assert_eq!(sent[0].alert.representative_posts[0].copies, None);
    // A storyline's headline leads too.
    let sent = backtest(
        vec![created(0, storyline(3, Severity::High, Growing))],
        AlertConfig {
            group_wait_secs: 0,
            ..config()
        },
    );
    assert_eq!(
        sent[0].alert.title,
        "Narrative spreading: Hurricane Sandy hits New Jersey (story 3)"
    );
}

/// Issue 8, row 3: Alertmanager gets the hierarchy as labels on every alert.
#[test]
fn issue_8_row_3_alertmanager_alerts_carry_storyline_level_and_parent_labels() {
    let sent = backtest(
        vec![
            created(0, storyline(1, Severity::High, Growing)),
            created(0, claim(7, 1)),
        ],
        config(),
    );
    let refs: Vec<&Notification> = sent.iter().collect();
    let body = format::alertmanager::alerts(&refs, at(10), 900);
    let labels = |i: usize| body[i]["labels"].clone();
    assert_eq!(labels(0)["storyline"], "n1");
    assert_eq!(labels(0)["level"], "storyline");
    assert!(labels(0).get("parent").is_none());
    assert_eq!(labels(1)["storyline"], "n1");
    assert_eq!(labels(1)["level"], "claim");
    assert_eq!(labels(1)["parent"], "n1");
    assert_eq!(
        body[1]["annotations"]["storyline_title"],
        "Hurricane Sandy hits New Jersey (story 1)"
    );
    assert_eq!(
        body[1]["annotations"]["representative_posts"],
        "“Shark on the highway in NJ!! photo 7” (en ×14)\n“Un requin sur l'autoroute du New \
         Jersey” (fr)"
    );
}

type Log = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// Serves 200 to everything on a loopback port, recording paths and bodies.
async fn serve() -> (String, Log) {
    async fn record(
        axum::extract::State(log): axum::extract::State<Log>,
        uri: axum::http::Uri,
        body: axum::body::Bytes,
    ) -> &'static str {
        log.lock()
            .unwrap()
            .push((uri.path().to_owned(), body.to_vec()));
        "ok"
    }
    let log: Log = Arc::default();
    let app = axum::Router::new().fallback(record).with_state(log.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, log)
}

fn sink(name: &str, kind: SinkKind, base: &str, path: &str) -> SinkConfig {
    SinkConfig {
        name: name.into(),
        kind,
        url: Secret::new(format!("{base}{path}")),
        timeout_secs: 5,
        ..SinkConfig::default()
    }
}
