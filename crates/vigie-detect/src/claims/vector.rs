//! The vector side of claims: sparse unit vectors, their arithmetic, document
//! frequencies that decay in event time, and the conversation anchor of a post.

use rustc_hash::FxHashMap;

use serde::{Deserialize, Serialize};
use vigie_domain::Post;

use crate::hashing::hash_bytes;

/// Seed of conversation-anchor hashes.
const ANCHOR_SEED: u64 = 12;

/// A sparse vector: (term hash, weight), sorted by hash.
pub(crate) type Sparse = Vec<(u64, f32)>;

/// What a post answers or repeats: the post it reposts or replies to (`root`, identity
/// evidence: every post with it is about the same thing), or, when the producer gave
/// neither, the account of a leading `RT @user:` or `@user` (a weaker hint: one account
/// says many things).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Anchor {
    pub hash: u64,
    pub root: bool,
}

/// Returns the conversation anchor of a post, if it has one.
pub(crate) fn anchor(post: &Post) -> Option<Anchor> {
    if let Some(root) = post.repost_of.as_deref().or(post.reply_to.as_deref()) {
        return Some(Anchor {
            hash: hash_bytes(ANCHOR_SEED, root.as_bytes()),
            root: true,
        });
    }
    let text = post.text.trim_start();
    let rest = text
        .strip_prefix("RT @")
        .or_else(|| text.strip_prefix("rt @"))
        .or_else(|| text.strip_prefix('@'))?;
    let user: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .take(64)
        .flat_map(char::to_lowercase)
        .collect();
    (!user.is_empty()).then(|| Anchor {
        hash: hash_bytes(ANCHOR_SEED + 1, user.as_bytes()),
        root: false,
    })
}

/// Counts that halve every `half_life` seconds of event time, kept scaled so that an
/// update touches one entry: stored = count × 2^((t − origin) / half_life).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct DecayedCounts {
    pub counts: FxHashMap<u64, f64>,
    total: f64,
    origin: i64,
}

impl DecayedCounts {
    pub fn new() -> DecayedCounts {
        DecayedCounts {
            counts: FxHashMap::default(),
            total: 0.0,
            origin: 0,
        }
    }

    fn scale(&self, now: i64, half_life: f64) -> f64 {
        ((now - self.origin) as f64 / half_life).exp2()
    }

    /// Counts one post carrying `hashes` at `now`; returns the decayed count of each
    /// (this post included) and the decayed number of posts.
    pub fn add(
        &mut self,
        hashes: &[u64],
        now: i64,
        half_life: f64,
        max_terms: usize,
    ) -> (Vec<f64>, f64) {
        if self.counts.is_empty() && self.total == 0.0 {
            self.origin = now;
        }
        // Rescale before the factors grow past what an f64 holds exactly enough.
        let periods = (now - self.origin) as f64 / half_life;
        if periods > 32.0 {
            let factor = (-periods).exp2();
            for count in self.counts.values_mut() {
                *count *= factor;
            }
            self.total *= factor;
            self.origin = now;
            self.counts.retain(|_, count| *count >= 0.01);
        }
        if self.counts.len() + hashes.len() > max_terms {
            self.prune(now, half_life, max_terms);
        }
        let scale = self.scale(now, half_life);
        self.total += scale;
        let counts = hashes
            .iter()
            .map(|hash| {
                let count = self.counts.entry(*hash).or_insert(0.0);
                *count += scale;
                *count / scale
            })
            .collect();
        (counts, self.total / scale)
    }

    /// Forgets the terms whose decayed count is smallest, deterministically (by value).
    fn prune(&mut self, now: i64, half_life: f64, max_terms: usize) {
        let scale = self.scale(now, half_life);
        let mut floor = 0.5;
        while self.counts.len() > max_terms / 2 {
            self.counts.retain(|_, count| *count / scale >= floor);
            floor *= 2.0;
        }
    }
}

/// Scales a sparse vector to unit length (unchanged when zero).
pub(crate) fn normalise(vector: &mut Sparse) {
    let norm = vector.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
    if norm > 0.0 {
        for (_, w) in vector.iter_mut() {
            *w /= norm;
        }
    }
}

/// Adds `factor × other` to `sum`; both sorted by hash.
pub(crate) fn add_sparse(sum: &mut Sparse, other: &Sparse, factor: f32) {
    let mut merged = Vec::with_capacity(sum.len() + other.len());
    let (mut i, mut j) = (0, 0);
    while i < sum.len() || j < other.len() {
        match (sum.get(i), other.get(j)) {
            (Some(a), Some(b)) if a.0 == b.0 => {
                merged.push((a.0, a.1 + factor * b.1));
                i += 1;
                j += 1;
            }
            (Some(a), Some(b)) if a.0 < b.0 => {
                merged.push(*a);
                i += 1;
            }
            (Some(_), Some(b)) | (None, Some(b)) => {
                merged.push((b.0, factor * b.1));
                j += 1;
            }
            (Some(a), None) => {
                merged.push(*a);
                i += 1;
            }
            (None, None) => break,
        }
    }
    *sum = merged;
}

/// Keeps the `max` heaviest entries (ties by hash), still sorted by hash.
pub(crate) fn truncate_heaviest(vector: &mut Sparse, max: usize) {
    if vector.len() <= max {
        return;
    }
    vector.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    vector.truncate(max);
    vector.sort_by_key(|(hash, _)| *hash);
}

/// Returns the dot product of two sparse vectors sorted by hash.
pub(crate) fn dot(a: &Sparse, b: &Sparse) -> f32 {
    let (mut i, mut j, mut sum) = (0, 0, 0.0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Equal => {
                sum += a[i].1 * b[j].1;
                i += 1;
                j += 1;
            }
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
        }
    }
    sum
}
