use chrono::{Duration, TimeZone};
use vigie_domain::{Post, Severity};
use vigie_tokenize::AnalyzerConfig;

use super::*;

/// A deterministic generator for synthetic streams (a 64-bit LCG).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % bound as u64) as usize
    }
}

fn analyzer() -> Arc<Analyzer> {
    Arc::new(Analyzer::new(AnalyzerConfig::default()))
}

fn small_config() -> DetectorConfig {
    DetectorConfig {
        term_sketch_cells: 4096,
        pair_sketch_cells: 16_384,
        ..DetectorConfig::default()
    }
}

fn post(
    analyzer: &Analyzer,
    id: usize,
    text: &str,
    author: &str,
    at: DateTime<Utc>,
) -> AnalyzedPost {
    let mut post = Post::for_test(&id.to_string(), text, at);
    post.author = Some(author.to_owned());
    post.lang = Some("en".into());
    AnalyzedPost {
        analysis: analyzer.analyze_post(&post),
        post,
    }
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 3, 1, 0, 0, 0).unwrap()
}

/// Three days of one post a minute drawn from a fixed vocabulary by 50 accounts.
fn flat_stream(analyzer: &Analyzer, days: i64) -> Vec<AnalyzedPost> {
    let vocabulary: Vec<String> = (0..300).map(|i| format!("topic{i}")).collect();
    let mut rng = Lcg(7);
    (0..days * 24 * 60)
        .map(|minute| {
            let words: Vec<&str> = (0..6)
                .map(|_| vocabulary[rng.next(vocabulary.len())].as_str())
                .collect();
            let author = format!("u{}", rng.next(50));
            post(
                analyzer,
                minute as usize,
                &words.join(" "),
                &author,
                start() + Duration::minutes(minute),
            )
        })
        .collect()
}

/// The flat stream, then 60 posts in 40 minutes about a new event, interleaved.
fn stream_with_burst(analyzer: &Analyzer, copies: bool) -> Vec<AnalyzedPost> {
    let mut posts = flat_stream(analyzer, 3);
    let burst_start = start() + Duration::days(3);
    // Organic posts tell the story in their own words.
    let words = [
        "explosion",
        "chemical",
        "plant",
        "residents",
        "inside",
        "smoke",
        "black",
        "city",
        "schools",
        "closed",
        "toxic",
        "cloud",
        "firefighters",
        "night",
        "prefecture",
        "windows",
        "warning",
        "river",
        "factory",
        "flames",
        "sirens",
        "roads",
        "wind",
        "masks",
        "asbestos",
        "roof",
        "evacuation",
        "hospital",
        "mayor",
        "photos",
    ];
    let mut rng = Lcg(11);
    for i in 0..60 {
        let at = burst_start + Duration::seconds(i * 40);
        let text = if copies {
            "SHARE NOW the rouen chemical plant fire was set on purpose #rouenfire".to_owned()
        } else {
            let story: Vec<&str> = (0..6).map(|_| words[rng.next(words.len())]).collect();
            format!("rouen {} #rouenfire", story.join(" "))
        };
        posts.push(post(
            analyzer,
            1_000_000 + i as usize,
            &text,
            &format!("b{i}"),
            at,
        ));
        let background = format!(
            "topic{} topic{} topic{}",
            rng.next(300),
            rng.next(300),
            rng.next(300)
        );
        posts.push(post(
            analyzer,
            2_000_000 + i as usize,
            &background,
            &format!("u{}", rng.next(50)),
            at,
        ));
    }
    posts
}

/// Returns the alerting storylines (their claims alert with them).
fn alerting(narratives: &[Narrative]) -> Vec<&Narrative> {
    narratives
        .iter()
        .filter(|n| n.is_storyline() && n.severity >= Severity::Medium)
        .collect()
}

/// A busy stream from its first post: 2 posts a minute by 300 accounts, every post
/// saying "today … near …" with words from a small vocabulary. On a cold start every
/// one of those terms bursts against empty baselines; none of it is news.
#[test]
fn a_cold_start_on_a_busy_stream_raises_no_alert() {
    let analyzer = analyzer();
    let mut detector = Detector::new(small_config(), analyzer.clone()).unwrap();
    let vocabulary = [
        "city", "council", "meeting", "traffic", "weather", "football", "market", "school",
        "concert", "rain", "train", "museum", "park", "festival", "bakery", "library", "election",
        "budget", "hospital", "bridge",
    ];
    let mut rng = Lcg(11);
    let mut events = Vec::new();
    for i in 0..8 * 60 * 2 {
        let words: Vec<&str> = (0..4)
            .map(|_| vocabulary[rng.next(vocabulary.len())])
            .collect();
        let text = format!(
            "Today the {} and the {} near the {} {} {}",
            words[0],
            words[1],
            words[2],
            words[3],
            rng.next(1_000_000)
        );
        let author = format!("user{}", rng.next(300));
        let at = start() + Duration::seconds(30 * i as i64);
        events.extend(detector.observe(&post(&analyzer, i, &text, &author, at)));
    }
    let raised: Vec<String> = events
        .iter()
        .filter(|e| e.narrative.severity > Severity::Low)
        .map(|e| format!("{} {} {:?}", e.at, e.narrative.label, e.narrative.severity))
        .collect();
    assert!(raised.is_empty(), "cold-start alerts: {raised:?}");
}

#[test]
fn a_flat_stream_raises_no_alert() {
    let analyzer = analyzer();
    let mut detector = Detector::new(small_config(), analyzer.clone()).unwrap();
    let mut events = Vec::new();
    for post in flat_stream(&analyzer, 3) {
        events.extend(detector.observe(&post));
    }
    assert!(alerting(&detector.narratives()).is_empty());
    assert!(events.iter().all(|e| e.narrative.severity == Severity::Low));
}

#[test]
fn a_burst_after_a_flat_stream_is_one_narrative_and_none_before() {
    let analyzer = analyzer();
    let mut detector = Detector::new(small_config(), analyzer.clone()).unwrap();
    let posts = stream_with_burst(&analyzer, false);
    let burst_start = start() + Duration::days(3);
    let mut first_alert = None;
    for post in &posts {
        for event in detector.observe(post) {
            if event.narrative.severity >= Severity::Medium && first_alert.is_none() {
                first_alert = Some(event);
            }
        }
    }
    let alert = first_alert.expect("the burst alerts");
    assert!(alert.at >= burst_start && alert.at < burst_start + Duration::minutes(20));
    let alerting = alerting(&detector.narratives())
        .into_iter()
        .cloned()
        .collect::<Vec<_>>();
    assert_eq!(alerting.len(), 1, "{alerting:#?}");
    let narrative = &alerting[0];
    assert!(
        narrative.hashtags.contains(&"rouenfire".to_owned()),
        "{narrative:#?}"
    );
    assert!(narrative.label.contains("rouen"));
    assert!(narrative.posts_total >= 50);
    assert!(narrative.growth_z >= 5.0 && narrative.distinct_authors >= 50);
    let members_from_burst = narrative
        .member_post_ids
        .iter()
        .filter(|id| {
            id.parse::<usize>().unwrap() >= 1_000_000 && id.parse::<usize>().unwrap() < 2_000_000
        })
        .count();
    assert!(members_from_burst as f64 >= 0.9 * narrative.member_post_ids.len() as f64);
    assert!(
        narrative.coordination.score < 0.3,
        "{:?}",
        narrative.coordination
    );
    assert!(!narrative.severity_reasons.is_empty());
}

#[test]
fn near_duplicates_from_many_accounts_score_high_coordination() {
    let analyzer = analyzer();
    let mut detector = Detector::new(small_config(), analyzer.clone()).unwrap();
    for post in stream_with_burst(&analyzer, true) {
        detector.observe(&post);
    }
    let narratives = detector.narratives();
    let narrative = alerting(&narratives)[0];
    let evidence = &narrative.coordination;
    assert!(evidence.score > 0.6, "{evidence:#?}");
    assert!(evidence.near_duplicate_groups[0].distinct_authors >= 40);
    assert!(narrative.severity >= Severity::High);
}

fn final_narratives(posts: &[AnalyzedPost], tick_every: Option<Duration>) -> Vec<Narrative> {
    let mut detector = Detector::new(small_config(), analyzer()).unwrap();
    let mut next_tick = posts[0].post.created_at;
    for post in posts {
        if let Some(step) = tick_every {
            while next_tick < post.post.created_at {
                detector.on_tick(next_tick);
                next_tick += step;
            }
        }
        detector.observe(post);
    }
    detector.on_tick(posts.last().unwrap().post.created_at + Duration::hours(3));
    detector.narratives()
}

#[test]
fn the_same_stream_gives_the_same_narratives_whatever_the_ticks() {
    let analyzer = analyzer();
    let posts = stream_with_burst(&analyzer, false);
    let without_ticks = final_narratives(&posts, None);
    assert!(!without_ticks.is_empty());
    assert_eq!(
        without_ticks,
        final_narratives(&posts, Some(Duration::seconds(17)))
    );
    assert_eq!(
        without_ticks,
        final_narratives(&posts, Some(Duration::minutes(45)))
    );
}

#[test]
fn snapshot_restore_continue_equals_an_uninterrupted_run() {
    let analyzer = analyzer();
    let posts = stream_with_burst(&analyzer, true);
    let split = posts.len() - 70;
    let mut uninterrupted = Detector::new(small_config(), analyzer.clone()).unwrap();
    let mut events_uninterrupted = Vec::new();
    for post in &posts {
        events_uninterrupted.extend(uninterrupted.observe(post));
    }
    let mut first = Detector::new(small_config(), analyzer.clone()).unwrap();
    let mut events_resumed = Vec::new();
    for post in &posts[..split] {
        events_resumed.extend(first.observe(post));
    }
    let bytes = rmp_serde::to_vec_named(&first.snapshot()).unwrap();
    drop(first);
    let snapshot: DetectorSnapshot = rmp_serde::from_slice(&bytes).unwrap();
    let mut resumed = Detector::restore(small_config(), analyzer.clone(), snapshot).unwrap();
    for post in &posts[split..] {
        events_resumed.extend(resumed.observe(post));
    }
    assert_eq!(uninterrupted.narratives(), resumed.narratives());
    assert_eq!(events_uninterrupted, events_resumed);
    assert_eq!(uninterrupted.counters(), resumed.counters());

    let other_size = DetectorConfig {
        term_sketch_cells: 8192,
        ..small_config()
    };
    let snapshot = resumed.snapshot();
    assert!(matches!(
        Detector::restore(other_size, analyzer, snapshot),
        Err(DetectError::SnapshotMismatch { .. })
    ));
}

#[test]
fn sketch_memory_stays_fixed_as_the_vocabulary_grows() {
    let analyzer = analyzer();
    let mut detector = Detector::new(small_config(), analyzer.clone()).unwrap();
    let fixed = detector.sketch_bytes();
    assert_eq!(fixed, 4 * (4096 + 16_384) * crate::sketch::CELL_BYTES);
    for i in 0..5000 {
        let text = format!("word{i} other{i} third{i} fourth{i}");
        detector.observe(&post(
            &analyzer,
            i,
            &text,
            "u",
            start() + Duration::seconds(i as i64),
        ));
    }
    assert_eq!(detector.sketch_bytes(), fixed);
    // Recent posts are bounded by two windows of event time and by count.
    assert!(detector.memory_bytes() < fixed + 5000 * 1024);
}

#[test]
fn a_watchlist_match_raises_severity() {
    let analyzer = analyzer();
    let config = DetectorConfig {
        watchlists: vec![WatchEntry {
            name: "rouen".into(),
            query: Some("#rouenfire AND chemical".into()),
            domains: vec![],
            accounts: vec![],
        }],
        ..small_config()
    };
    let mut detector = Detector::new(config, analyzer.clone()).unwrap();
    for post in stream_with_burst(&analyzer, false) {
        detector.observe(&post);
    }
    let narratives = detector.narratives();
    let narrative = alerting(&narratives)[0];
    assert_eq!(narrative.watch_matches[0].watch, "rouen");
    assert!(narrative.severity >= Severity::High);
    assert!(detector.watchlists_mut().remove("rouen"));
}

#[test]
fn late_posts_are_counted_at_the_latest_time() {
    let analyzer = analyzer();
    let mut detector = Detector::new(small_config(), analyzer.clone()).unwrap();
    detector.observe(&post(
        &analyzer,
        1,
        "one two three",
        "a",
        start() + Duration::hours(1),
    ));
    detector.observe(&post(&analyzer, 2, "one two three", "b", start()));
    assert_eq!(detector.counters().late_posts, 1);
    assert_eq!(detector.now(), Some(start() + Duration::hours(1)));
}
