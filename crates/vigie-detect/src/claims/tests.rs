//! Claims on hand-made posts: grouping, storyline attachment and severity, identity
//! evidence across languages, snapshots, bounds.

use std::collections::BTreeMap;

use vigie_domain::{NarrativeEventKind, NarrativeId, Severity, TokenKind};

use super::*;
use crate::hashing::term_hash;
use crate::narrative::NarrativeState;

fn params() -> CoordinationParams {
    CoordinationParams::new(&DetectorConfig::default())
}

fn storyline(id: u64, severity: Severity) -> NarrativeState {
    let term = NarrativeTerm {
        hash: 1,
        kind: TokenKind::Word,
        text: "storm".into(),
        best: StoredSignificance {
            z: 5.0,
            posts_in_window: 10.0,
            mean: 0.0,
            std: 0.0,
        },
        narrative_posts: 0,
    };
    let mut state = NarrativeState::new(NarrativeId(id), vec![term], 0, 0);
    state.severity = severity;
    state
}

/// A post of `words` (folded words), with links, by `author`, `at` seconds, in storyline
/// `storyline`.
fn post(
    id: &str,
    words: &str,
    links: &[&str],
    author: &str,
    at: i64,
    storyline: Option<u64>,
) -> RecentPost {
    let mut terms: Vec<(u64, (TokenKind, String))> = words
        .split_whitespace()
        .map(|w| {
            (
                term_hash(TokenKind::Word, w),
                (TokenKind::Word, w.to_owned()),
            )
        })
        .collect();
    terms.sort_by_key(|(hash, _)| *hash);
    terms.dedup_by_key(|(hash, _)| *hash);
    RecentPost {
        id: id.to_owned(),
        at,
        window: 0,
        slow_window: 0,
        author: Some(author.to_owned()),
        lang: "en".into(),
        terms: terms.iter().map(|(hash, _)| *hash).collect(),
        words: terms.iter().map(|(_, word)| word.clone()).collect(),
        surfaces: terms
            .iter()
            .map(|(_, (_, w))| w.as_str())
            .collect::<Vec<_>>()
            .join(" "),
        anchor: None,
        signature: None,
        links: links.iter().map(|l| (*l).to_owned()).collect(),
        hashtags: Vec::new(),
        engagement: 0,
        watches: Vec::new(),
        sample: words.to_owned(),
        narrative: storyline.map(NarrativeId),
        claim: None,
    }
}

/// Claims with the storylines they may attach to, and everything they reported.
struct Bench {
    config: DetectorConfig,
    params: CoordinationParams,
    storylines: BTreeMap<NarrativeId, NarrativeState>,
    claims: Claims,
    next_id: u64,
    events: Vec<NarrativeEvent>,
}

impl Bench {
    fn new(severity: Severity) -> Bench {
        let mut storylines = BTreeMap::new();
        storylines.insert(NarrativeId(1), storyline(1, severity));
        Bench {
            config: DetectorConfig::default(),
            params: params(),
            storylines,
            claims: Claims::default(),
            next_id: 100,
            events: Vec::new(),
        }
    }

    fn run(
        &mut self,
        now: i64,
        change: impl FnOnce(&mut Claims, &mut ClaimContext<'_>, &mut Vec<NarrativeEvent>),
    ) {
        let mut ctx = ClaimContext {
            config: &self.config,
            coordination: &self.params,
            storylines: &self.storylines,
            now,
            elapsed: 0.0,
            window: 0,
            next_id: &mut self.next_id,
        };
        change(&mut self.claims, &mut ctx, &mut self.events);
    }

    fn add(&mut self, post: RecentPost) -> Option<u64> {
        let mut placed = None;
        let at = post.at;
        self.run(at, |claims, ctx, events| {
            placed = claims.add(&post, ctx, events)
        });
        placed
    }

    fn views(&self) -> Vec<Narrative> {
        self.claims.views(0.0, &self.config, &self.params)
    }
}

const SHARK: [&str; 4] = [
    "shark swimming highway jersey flooded",
    "photo shark swimming flooded highway",
    "shark highway jersey unbelievable photo",
    "real shark swimming jersey highway",
];
const LIBERTY: [&str; 4] = [
    "statue liberty supercell clouds photo",
    "supercell over statue liberty amazing",
    "statue liberty supercell storm picture",
    "amazing supercell statue liberty clouds",
];

/// Two claims told in varied words inside one storyline, with unrelated posts between.
fn two_claims_posts() -> Vec<RecentPost> {
    let mut posts = Vec::new();
    for i in 0..24 {
        let at = 1_000 + 60 * i as i64;
        let author = format!("a{}", i % 7);
        posts.push(post(
            &format!("s{i}"),
            SHARK[i % 4],
            &[],
            &author,
            at,
            Some(1),
        ));
        posts.push(post(
            &format!("l{i}"),
            LIBERTY[i % 4],
            &[],
            &author,
            at + 1,
            Some(1),
        ));
        posts.push(post(
            &format!("x{i}"),
            &format!("unrelated chatter number{i} about lunch{i}"),
            &[],
            &author,
            at + 2,
            None,
        ));
    }
    posts
}

fn two_claims(bench: &mut Bench) {
    for post in two_claims_posts() {
        bench.add(post);
    }
}

#[test]
fn issue_8_posts_telling_the_same_thing_form_one_claim_each_inside_their_storyline() {
    let mut bench = Bench::new(Severity::Medium);
    two_claims(&mut bench);
    let views = bench.views();
    assert_eq!(
        views.len(),
        2,
        "{:#?}",
        views.iter().map(|v| &v.label).collect::<Vec<_>>()
    );
    for view in &views {
        assert_eq!(view.parent, Some(NarrativeId(1)));
        assert_eq!(view.severity, Severity::Medium);
        let prefix = &view.member_post_ids[0][..1];
        assert!(
            view.member_post_ids.iter().all(|id| id.starts_with(prefix)),
            "a claim holds one story: {:?}",
            view.member_post_ids
        );
        // Members are counted from the first post on, not from the report.
        assert!(view.posts_total >= 20, "{}", view.posts_total);
        assert_eq!(view.window_post_ids, view.member_post_ids);
        assert!(!view.headline.is_empty());
    }
    let labels: Vec<&str> = views.iter().map(|v| v.label.as_str()).collect();
    assert!(labels.iter().any(|l| l.contains("shark")), "{labels:?}");
    assert!(labels.iter().any(|l| l.contains("liberty")), "{labels:?}");
    // Created before any other event of the same claim.
    for view in &views {
        let first = bench
            .events
            .iter()
            .find(|e| e.narrative.id == view.id)
            .expect("reported");
        assert_eq!(first.kind, NarrativeEventKind::Created);
    }
}

#[test]
fn issue_8_a_claim_alerts_only_once_its_storyline_does() {
    let mut bench = Bench::new(Severity::Low);
    two_claims(&mut bench);
    assert!(bench.views().iter().all(|v| v.severity == Severity::Low));
    assert!(bench.views()[0]
        .severity_reasons
        .iter()
        .any(|r| r.contains("not alerted")));
    bench.storylines.get_mut(&NarrativeId(1)).unwrap().severity = Severity::High;
    bench.events.clear();
    bench.run(10_000, |claims, ctx, events| {
        claims.reassess_children(NarrativeId(1), ctx, events)
    });
    let raised: Vec<NarrativeId> = bench
        .events
        .iter()
        .filter(|e| {
            matches!(
                e.kind,
                NarrativeEventKind::SeverityChanged {
                    from: Severity::Low
                }
            )
        })
        .map(|e| e.narrative.id)
        .collect();
    assert_eq!(raised.len(), 2);
    assert!(bench.views().iter().all(|v| v.severity == Severity::Medium));
}

#[test]
fn issue_8_a_claim_without_a_storyline_is_not_reported() {
    let mut bench = Bench::new(Severity::Medium);
    for i in 0..30 {
        bench.add(post(
            &format!("s{i}"),
            SHARK[i % 4],
            &[],
            &format!("a{i}"),
            60 * i as i64,
            None,
        ));
    }
    assert!(bench.views().is_empty());
    // One member joining the storyline later (a back-fill) attaches the claim.
    let key = bench
        .add(post("late", SHARK[0], &[], "z", 3_000, None))
        .expect("clustered");
    bench.run(3_000, |claims, ctx, events| {
        claims.vote(key, NarrativeId(1), ctx, events)
    });
    let views = bench.views();
    assert_eq!(views.len(), 1);
    assert_eq!(views[0].parent, Some(NarrativeId(1)));
}

#[test]
fn issue_8_the_same_link_joins_a_claim_across_languages() {
    let mut bench = Bench::new(Severity::Medium);
    let link = "https://example.org/video/42";
    let texts = [
        ("fr", "incroyable vidéo inondation métro"),
        ("en", "incredible video subway flooding"),
        ("ar", "فيديو لا يصدق فيضان المترو"),
        ("ru", "невероятное видео затопление метро"),
    ];
    for i in 0..16 {
        let (lang, text) = texts[i % 4];
        let mut p = post(
            &format!("v{i}"),
            text,
            &[link],
            &format!("a{i}"),
            100 * i as i64,
            Some(1),
        );
        p.lang = lang.into();
        bench.add(p);
    }
    let views = bench.views();
    assert_eq!(views.len(), 1, "{views:#?}");
    assert_eq!(views[0].languages.len(), 4, "{:?}", views[0].languages);
}

#[test]
fn issue_8_claims_resume_identically_from_a_snapshot() {
    let mut whole = Bench::new(Severity::Medium);
    two_claims(&mut whole);
    let mut first = Bench::new(Severity::Medium);
    let posts = two_claims_posts();
    let (before, after) = posts.split_at(31);
    for p in before {
        first.add(p.clone());
    }
    let bytes = rmp_serde::to_vec_named(&first.claims).expect("serialisable");
    let mut resumed = Bench::new(Severity::Medium);
    resumed.claims = rmp_serde::from_slice(&bytes).expect("readable");
    resumed.next_id = first.next_id;
    for p in after {
        resumed.add(p.clone());
    }
    assert_eq!(resumed.views(), whole.views());
}

#[test]
fn issue_8_tracked_claims_are_bounded() {
    let mut bench = Bench::new(Severity::Medium);
    bench.config.claims.max_claims = 50;
    for i in 0..2_000 {
        // Pairs of posts sharing two rare words: each pair opens a cluster.
        let words = format!("word{} other{} filler", i / 2, i / 2);
        bench.add(post(&format!("p{i}"), &words, &[], "a", i as i64, Some(1)));
    }
    assert!(
        bench.claims.clusters.len() <= 50,
        "{}",
        bench.claims.clusters.len()
    );
    assert!(bench.claims.memory_bytes() < 5_000_000);
}

/// A claim below alert changes quietly at window closes (no event; the API still lists
/// it), while an alerting claim reports its window as an update.
#[test]
fn issue_8_only_alerting_claims_report_their_window_closes() {
    for (severity, expect_updates) in [(Severity::Low, false), (Severity::Medium, true)] {
        let mut bench = Bench::new(severity);
        two_claims(&mut bench);
        assert_eq!(
            bench.views().len(),
            2,
            "both claims are listed ({severity:?})"
        );
        bench.events.clear();
        bench.run(1_000 + 3_600, |claims, ctx, events| {
            claims.close_window(1, ctx, events)
        });
        let updates = bench
            .events
            .iter()
            .filter(|e| matches!(e.kind, NarrativeEventKind::Updated))
            .count();
        if expect_updates {
            assert_eq!(updates, 2, "{severity:?}: {:?}", bench.events);
        } else {
            assert!(bench.events.is_empty(), "{severity:?}: {:?}", bench.events);
        }
        assert_eq!(bench.views().len(), 2, "both claims are still listed");
    }
}

/// Issue 8 (duplicates per claim): fragments of one claim told in other words, which
/// drifted together after their last merge check, alert once when their storyline does:
/// each one about to alert folds into the sibling already alerting.
#[test]
fn issue_8_a_claim_told_like_an_alerting_sibling_folds_into_it_instead_of_alerting() {
    let alerts = |fold_similarity: f64| {
        let mut bench = Bench::new(Severity::Low);
        // Every phrasing its own claim, and no merge while they form.
        bench.config.claims.join_similarity = 0.95;
        bench.config.claims.merge_similarity = 0.99;
        two_claims(&mut bench);
        assert_eq!(bench.views().len(), 8, "one claim per phrasing");
        bench.config.claims.merge_similarity = fold_similarity;
        bench.storylines.get_mut(&NarrativeId(1)).unwrap().severity = Severity::Medium;
        bench.events.clear();
        bench.run(10_000, |claims, ctx, events| {
            claims.reassess_children(NarrativeId(1), ctx, events)
        });
        let raised = bench
            .events
            .iter()
            .filter(|e| {
                matches!(e.kind, NarrativeEventKind::SeverityChanged { from } if from < Severity::Medium)
            })
            .count();
        let folds: Vec<String> = bench
            .events
            .iter()
            .filter_map(|e| match &e.kind {
                NarrativeEventKind::Merged { reason, .. } => Some(reason.clone()),
                _ => None,
            })
            .collect();
        (raised, folds, bench.views())
    };
    let (raised, folds, _) = alerts(0.99);
    assert_eq!(raised, 8, "distinct enough: every claim alerts");
    assert!(folds.is_empty(), "{folds:?}");
    let (raised, folds, views) = alerts(0.3);
    assert_eq!(raised, 2, "one alert per claim: {folds:?}");
    assert_eq!(folds.len(), 6, "{folds:?}");
    assert!(
        folds.iter().all(|r| r.starts_with("told like")),
        "{folds:?}"
    );
    assert_eq!(views.len(), 2);
    for view in &views {
        let prefix = &view.member_post_ids[0][..1];
        assert!(
            view.member_post_ids.iter().all(|id| id.starts_with(prefix)),
            "folds keep the claims apart: {:?}",
            view.member_post_ids
        );
        // The four phrasings' posts (a first post sharing no term yet is not placed).
        assert!(view.posts_total >= 20, "{}", view.posts_total);
    }
}
