use super::*;
use crate::coordination::CoordinationParams;

fn member(id: &str, window: u32) -> Membership<'_> {
    Membership {
        id,
        at: i64::from(window) * 3600,
        window,
        slow_window: window / 24,
        author: Some(u64::from(window)),
        lang: "en",
        hashtags: &[],
        engagement: 0,
        watches: &[],
        terms: &[],
        surfaces: "",
        sample: id,
        signature: None,
    }
}

#[test]
fn a_narrative_cites_the_posts_of_its_sliding_window() {
    let config = DetectorConfig::default();
    let params = CoordinationParams::new(&config);
    let seed = NarrativeTerm {
        hash: 1,
        kind: TokenKind::Word,
        text: "police".into(),
        best: StoredSignificance {
            z: 3.0,
            posts_in_window: 4.0,
            mean: 0.0,
            std: 0.0,
        },
        narrative_posts: 0,
    };
    let mut narrative = NarrativeState::new(NarrativeId(1), vec![seed], 0, 0);
    for i in 0..20 {
        narrative.add_member(&member(&format!("old{i}"), 0), &config);
    }
    narrative.roll_to(6);
    narrative.add_member(&member("previous", 5), &config);
    for i in 0..3 {
        narrative.add_member(&member(&format!("new{i}"), 6), &config);
    }
    let view = narrative.view(0.5, &config, &params);
    assert_eq!(view.member_post_ids.len(), 24);
    assert_eq!(view.window_post_ids, ["previous", "new0", "new1", "new2"]);
}

fn term(hash: u64, mean: f64, std: f64, z: f64, narrative_posts: u32) -> NarrativeTerm {
    NarrativeTerm {
        hash,
        kind: TokenKind::Word,
        text: format!("t{hash}"),
        best: StoredSignificance {
            z,
            posts_in_window: 10.0,
            mean,
            std,
        },
        narrative_posts,
    }
}

#[test]
fn a_narrative_is_judged_against_its_most_specific_seed() {
    // "putin" is common and bursty, "#putindead" new: the story's usual rate is the
    // new term's, not the name's.
    let seeds = vec![term(1, 0.83, 1.72, 3.1, 0), term(2, 0.0, 0.0, 3.0, 0)];
    let narrative = NarrativeState::new(NarrativeId(1), seeds, 0, 0);
    assert_eq!(
        (narrative.baseline.mean, narrative.baseline.std),
        (0.0, 0.0)
    );
    // Among equally rare seeds, the most significant one.
    let tied = vec![term(1, 0.0, 0.5, 3.0, 0), term(2, 0.0, 0.1, 6.0, 0)];
    assert_eq!(NarrativeState::seed_baseline(&tied).z, 6.0);
}

fn evidence_member<'a>(
    id: &'a str,
    sample: &'a str,
    terms: &'a [u64],
    surfaces: &'a str,
) -> Membership<'a> {
    Membership {
        sample,
        terms,
        surfaces,
        lang: if id.starts_with("fr") { "fr" } else { "en" },
        ..member(id, 0)
    }
}

#[test]
fn issue_8_evidence_is_one_post_per_copy_group_with_spellings_and_a_headline() {
    let config = DetectorConfig::default();
    let params = CoordinationParams::new(&config);
    let seeds = vec![term(1, 0.0, 0.0, 4.0, 0), term(2, 0.0, 0.0, 4.0, 0)];
    let mut a = NarrativeState::new(NarrativeId(1), seeds.clone(), 0, 0);
    let story = "The PLANT exploded in Centerville this morning";
    let ids: Vec<String> = (0..5).map(|i| format!("copy{i}")).collect();
    for id in &ids {
        a.add_member(
            &evidence_member(id, story, &[1, 2], "PLANT exploded"),
            &config,
        );
    }
    // A copy with a word added, and a post that says something else.
    let omg = format!("OMG {story} http://t.co/x");
    a.add_member(
        &evidence_member("omg", &omg, &[1, 2], "plant exploded"),
        &config,
    );
    a.add_member(
        &evidence_member("fr1", "Une usine de Centerville", &[1], "plant"),
        &config,
    );
    let view = a.view(0.0, &config, &params);
    assert_eq!(view.headline, story);
    let shown: Vec<(&str, u32, &str)> = view
        .representatives
        .iter()
        .map(|r| (r.post_id.as_str(), r.copies, r.lang.as_str()))
        .collect();
    assert_eq!(shown, [("copy0", 6, "en"), ("fr1", 1, "fr")]);
    assert_eq!(view.representative_post_ids, ["copy0", "fr1"]);
    assert_eq!(view.label, "PLANT exploded");

    // Absorbing a narrative with more copies of the same text merges the groups and
    // the spellings.
    let mut b = NarrativeState::new(NarrativeId(2), seeds, 0, 0);
    for id in ["b0", "b1", "b2"] {
        b.add_member(
            &evidence_member(id, story, &[1, 2], "plant Exploded"),
            &config,
        );
    }
    a.absorb(b, &config, &params);
    let view = a.view(0.0, &config, &params);
    assert_eq!(view.representatives[0].copies, 9);
    assert_eq!(view.representatives.len(), 2);
    assert_eq!(view.label, "PLANT exploded");
    // Revival forgets the evidence of the past episode, not the spellings.
    a.clear_evidence();
    let view = a.view(0.0, &config, &params);
    assert!(view.representatives.is_empty() && view.headline.is_empty());
    assert_eq!(view.label, "PLANT exploded");
}

#[test]
fn only_characteristic_terms_bridge_narratives() {
    // 100 posts: "ferguson" carried by 80 of them, "michael" by 3.
    let mut narrative = NarrativeState::new(
        NarrativeId(1),
        vec![term(10, 0.0, 0.0, 4.0, 80), term(20, 0.0, 0.0, 4.0, 3)],
        0,
        0,
    );
    narrative.posts_total = 100;
    assert!(!narrative.characteristic_term_in(&[5, 20], 0.2));
    assert!(narrative.characteristic_term_in(&[10, 20], 0.2));
    assert!(!narrative.characteristic_term_in(&[5], 0.0));
}
