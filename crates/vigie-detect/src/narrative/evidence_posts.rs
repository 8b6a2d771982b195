//! The member posts a narrative keeps as evidence: candidates for its headline and its
//! representative posts, each standing for its near-duplicates, scored by centrality.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vigie_domain::TokenKind;

use super::{NarrativeTerm, MAX_EVIDENCE};
use crate::evidence;
use crate::hashing::{estimated_jaccard, MINHASH_LEN};

/// A member post kept as evidence: a candidate for the headline and the representatives,
/// standing for the member posts with near-identical text that joined after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct EvidencePost {
    pub id: String,
    /// Bounded sample of its text.
    pub text: String,
    pub lang: String,
    pub at: i64,
    pub signature: Option<[u32; MINHASH_LEN]>,
    /// Its normalised text ([`evidence::normalized`]).
    pub key: String,
    /// Hashes of its counted terms, sorted.
    pub terms: Vec<u64>,
    /// Its hashtags, folded.
    #[serde(default)]
    pub hashtags: Vec<String>,
    /// Member posts it stands for, itself included.
    pub copies: u32,
    /// Its centrality when last scored (see `add_evidence`).
    #[serde(default)]
    pub score: Share,
}

/// A share of a narrative's posts, kept as integers so that it survives a snapshot
/// exactly (a float may come back one unit off, and decide an eviction differently).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Share {
    /// Summed posts (a post carrying two terms counts for each).
    pub posts: u64,
    /// Out of this many posts.
    pub of: u64,
}

impl Share {
    pub(super) fn value(self) -> f64 {
        self.posts as f64 / self.of.max(1) as f64
    }

    /// Compares the two shares' values exactly (`posts / of`).
    pub(super) fn compare(self, other: Share) -> std::cmp::Ordering {
        (u128::from(self.posts) * u128::from(other.of.max(1)))
            .cmp(&(u128::from(other.posts) * u128::from(self.of.max(1))))
    }
}

impl EvidencePost {
    pub(super) fn duplicates(
        &self,
        key: &str,
        signature: Option<&[u32; MINHASH_LEN]>,
        jaccard: f64,
    ) -> bool {
        evidence::same_text(&self.key, key)
            || match (&self.signature, signature) {
                (Some(a), Some(b)) => estimated_jaccard(a, b) >= jaccard,
                _ => false,
            }
    }
}

/// What a post's centrality is measured against: a narrative's terms and hashtags with
/// the number of its posts carrying each.
pub(super) struct Profile<'a> {
    pub(super) terms: &'a [NarrativeTerm],
    pub(super) hashtags: &'a BTreeMap<String, u32>,
    pub(super) posts_total: u64,
}

impl Profile<'_> {
    /// Returns how central a post is: the share of the narrative's posts carrying each
    /// of its terms and hashtags, summed. The post that says what most members say scores
    /// highest, whatever it carried when it joined. Hashtags count through the
    /// narrative's hashtag counts (all its posts), not as terms, so as not to count twice.
    pub(super) fn centrality(&self, post: &EvidencePost) -> Share {
        self.centrality_of(&post.terms, &post.hashtags)
    }

    /// [`Profile::centrality`] of a post with these sorted term hashes and hashtags.
    pub(super) fn centrality_of(&self, post_terms: &[u64], post_hashtags: &[String]) -> Share {
        let terms: u64 = self
            .terms
            .iter()
            .filter(|t| t.kind != TokenKind::Hashtag && post_terms.binary_search(&t.hash).is_ok())
            .map(|t| u64::from(t.narrative_posts))
            .sum();
        let hashtags: u64 = post_hashtags
            .iter()
            .filter_map(|tag| self.hashtags.get(tag))
            .map(|posts| u64::from(*posts))
            .sum();
        Share {
            posts: terms + hashtags,
            of: self.posts_total,
        }
    }
}

/// Posts after which the kept evidence is scored again against the narrative's current
/// counts; in between, a newcomer is compared with the scores they had.
const RESCORE_POSTS: u64 = 64;

/// Adds one piece of evidence to a bounded set: counted as a copy of a near-duplicate
/// already kept (which takes the newcomer's text if it is more central), or kept in
/// place of the least central one when it is more central (ties keep the older). The
/// owned evidence is built only when kept: most members of a big story are copies, and
/// a copy costs a comparison, not a clone. Kept scores are refreshed every
/// `RESCORE_POSTS` posts rather than at every post, which would cost a scoring of every
/// kept post per member.
pub(super) fn add_evidence(
    kept: &mut Vec<EvidencePost>,
    incoming: Incoming<'_>,
    jaccard: f64,
    profile: &Profile<'_>,
) {
    let score = profile.centrality_of(incoming.terms, incoming.hashtags);
    if let Some(same) = kept
        .iter_mut()
        .find(|e| e.duplicates(&incoming.key, incoming.signature, jaccard))
    {
        let copies = same.copies.saturating_add(incoming.copies);
        if score.compare(profile.centrality(same)).is_gt() {
            *same = incoming.into_owned(score);
        }
        same.copies = copies;
        return;
    }
    if kept.len() < MAX_EVIDENCE {
        kept.push(incoming.into_owned(score));
        return;
    }
    if profile.posts_total % RESCORE_POSTS == 0 {
        for post in kept.iter_mut() {
            post.score = profile.centrality(post);
        }
    }
    let weakest = (0..kept.len())
        .min_by(|&a, &b| {
            kept[a]
                .score
                .compare(kept[b].score)
                .then(kept[a].copies.cmp(&kept[b].copies))
                .then(kept[b].at.cmp(&kept[a].at))
        })
        .expect("the evidence is full, so not empty");
    if score.compare(kept[weakest].score).is_gt() {
        kept[weakest] = incoming.into_owned(score);
    }
}

/// A post offered as evidence, borrowed until kept.
pub(super) struct Incoming<'a> {
    pub(super) id: &'a str,
    pub(super) text: &'a str,
    pub(super) lang: &'a str,
    pub(super) at: i64,
    pub(super) signature: Option<&'a [u32; MINHASH_LEN]>,
    pub(super) key: std::borrow::Cow<'a, str>,
    pub(super) terms: &'a [u64],
    pub(super) hashtags: &'a [String],
    pub(super) copies: u32,
}

impl Incoming<'_> {
    pub(super) fn of(post: &EvidencePost) -> Incoming<'_> {
        Incoming {
            id: &post.id,
            text: &post.text,
            lang: &post.lang,
            at: post.at,
            signature: post.signature.as_ref(),
            key: std::borrow::Cow::Borrowed(&post.key),
            terms: &post.terms,
            hashtags: &post.hashtags,
            copies: post.copies,
        }
    }

    pub(super) fn into_owned(self, score: Share) -> EvidencePost {
        EvidencePost {
            id: self.id.to_owned(),
            text: self.text.to_owned(),
            lang: self.lang.to_owned(),
            at: self.at,
            signature: self.signature.copied(),
            key: self.key.into_owned(),
            terms: self.terms.to_vec(),
            hashtags: self.hashtags.to_vec(),
            copies: self.copies,
            score,
        }
    }
}
