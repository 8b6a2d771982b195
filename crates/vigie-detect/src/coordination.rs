//! Coordination evidence per narrative, the tell of campaigns (issue 3, point 3).
//!
//! Three signals, each a share of the narrative's posts that have a known author (a post
//! without an author cannot be attributed, so it is left out rather than assumed
//! organic or coordinated):
//! - near-duplicate text from distinct accounts within a short window: MinHash over word
//!   bigrams (Broder 1997) with LSH banding to find candidates, Jaccard ≥ 0.8 to confirm;
//! - the same link posted by several distinct accounts within the coordination interval
//!   (CooRnet: Giglietto et al., "It takes a village to manipulate the media", 2020);
//! - posts by accounts that act together with the same partner account in several of
//!   those groups or links (a small set of accounts bursting together repeatedly, the
//!   edges of CooRnet's coordinated network). Merely posting often is not evidence:
//!   newsrooms live-tweeting a siege do it too.
//!
//! The score is their noisy-OR, 1 − Π(1 − share), shrunk towards 0 by n / (n + n₀) so
//! that a handful of posts cannot look coordinated. Members are bounded per narrative:
//! the evidence covers its most recent known-author posts (between half the bound and
//! the bound), so a narrative that drifts onto another story is judged on what it is
//! now rather than on its first posts.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use vigie_domain::{CoordinationEvidence, NearDuplicateGroup, SharedLinkGroup};

use crate::hashing::{band_keys, estimated_jaccard, MINHASH_LEN};

/// Most known-author posts examined per narrative.
pub(crate) const MAX_COORDINATION_MEMBERS: usize = 1000;
/// Most candidates compared per LSH bucket, the most recent ones.
const MAX_BUCKET_CANDIDATES: usize = 32;
/// Most posts kept per link.
const MAX_POSTS_PER_LINK: usize = 200;
/// Accounts per group whose pairs are counted.
const MAX_PAIR_AUTHORS: usize = 30;
/// Characters of text kept per post for the evidence sample.
const SAMPLE_CHARS: usize = 100;
/// Groups, links and accounts listed in evidence.
const EVIDENCE_ITEMS: usize = 5;
/// Ids and accounts listed per group.
const GROUP_ITEMS: usize = 10;

/// The settings coordination uses, copied from the detector's configuration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CoordinationParams {
    pub jaccard: f64,
    pub near_duplicate_window_secs: i64,
    pub interval_secs: i64,
    pub min_accounts: u32,
    pub synchronized_min_groups: u32,
    pub prior_posts: f64,
    /// The detector's window, which bounds the evidence to the cited posts.
    pub window_secs: i64,
    /// Windows in one slow window (`slow`), for reports that cite the slow window.
    pub windows_per_slow_window: u32,
}

impl CoordinationParams {
    /// Copies the coordination settings out of the detector's configuration.
    pub fn new(config: &crate::DetectorConfig) -> CoordinationParams {
        CoordinationParams {
            jaccard: config.near_duplicate_jaccard,
            near_duplicate_window_secs: i64::from(config.near_duplicate_window_secs),
            interval_secs: i64::from(config.coordination_interval_secs),
            min_accounts: config.coordination_min_accounts,
            synchronized_min_groups: config.synchronized_min_groups,
            prior_posts: config.coordination_prior_posts,
            window_secs: i64::from(config.window_secs),
            windows_per_slow_window: config.slow.window_secs / config.window_secs.max(1),
        }
    }
}

/// One known-author member post.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct CoordinationMember {
    pub id: String,
    pub author: String,
    pub at: i64,
    pub signature: Option<[u32; MINHASH_LEN]>,
    pub links: Vec<String>,
    pub sample: String,
}

/// A narrative's coordination bookkeeping.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(crate) struct CoordinationState {
    members: Vec<CoordinationMember>,
    /// Union-find parents over `members`: near-duplicate groups.
    parent: Vec<u32>,
    /// LSH band key → members in that bucket.
    buckets: HashMap<u64, Vec<u32>>,
    /// Link → members that posted it.
    links: BTreeMap<String, Vec<u32>>,
    /// Author → member posts.
    posts_by_author: BTreeMap<String, u32>,
}

/// The numbers behind the score, cheap to compute after every post.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct CoordinationShares {
    pub known: u32,
    pub near_duplicate: f64,
    pub shared_link: f64,
    pub synchronized_account: f64,
    pub score: f64,
}

impl CoordinationState {
    /// Adds a known-author member; ignored once the narrative has the maximum.
    pub fn add(&mut self, member: CoordinationMember, params: &CoordinationParams) {
        if self.members.len() >= MAX_COORDINATION_MEMBERS {
            self.keep_latest(MAX_COORDINATION_MEMBERS / 2, params);
        }
        let index = self.members.len() as u32;
        *self
            .posts_by_author
            .entry(member.author.clone())
            .or_insert(0) += 1;
        for link in &member.links {
            let posts = self.links.entry(link.clone()).or_default();
            if posts.len() < MAX_POSTS_PER_LINK {
                posts.push(index);
            }
        }
        self.parent.push(index);
        if let Some(signature) = member.signature {
            let mut matches = Vec::new();
            for key in band_keys(&signature) {
                let bucket = self.buckets.entry(key).or_default();
                for &other in bucket.iter().rev().take(MAX_BUCKET_CANDIDATES) {
                    let candidate = &self.members[other as usize];
                    let close_in_time =
                        (candidate.at - member.at).abs() <= params.near_duplicate_window_secs;
                    if close_in_time
                        && candidate
                            .signature
                            .is_some_and(|s| estimated_jaccard(&s, &signature) >= params.jaccard)
                    {
                        matches.push(other);
                    }
                }
                bucket.push(index);
            }
            self.members.push(member);
            for other in matches {
                self.union(index, other);
            }
        } else {
            self.members.push(member);
        }
    }

    /// Rebuilds the state from its latest `keep` members, dropping older ones; amortised
    /// over the `MAX_COORDINATION_MEMBERS − keep` additions between two rebuilds.
    fn keep_latest(&mut self, keep: usize, params: &CoordinationParams) {
        let members = std::mem::take(&mut self.members);
        let skip = members.len().saturating_sub(keep);
        *self = CoordinationState::default();
        for member in members.into_iter().skip(skip) {
            self.add(member, params);
        }
    }

    /// Returns the number of members examined.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Adds another narrative's members, for a merge.
    pub fn absorb(&mut self, other: CoordinationState, params: &CoordinationParams) {
        for member in other.members {
            self.add(member, params);
        }
    }

    fn find(&mut self, mut index: u32) -> u32 {
        while self.parent[index as usize] != index {
            let grandparent = self.parent[self.parent[index as usize] as usize];
            self.parent[index as usize] = grandparent;
            index = grandparent;
        }
        index
    }

    fn root(&self, mut index: u32) -> u32 {
        while self.parent[index as usize] != index {
            index = self.parent[index as usize];
        }
        index
    }

    fn union(&mut self, a: u32, b: u32) {
        let (root_a, root_b) = (self.find(a), self.find(b));
        if root_a != root_b {
            // The older member stays the root, so a group's sample is its first post.
            let (keep, child) = if root_a < root_b {
                (root_a, root_b)
            } else {
                (root_b, root_a)
            };
            self.parent[child as usize] = keep;
        }
    }

    /// Returns the near-duplicate groups that span enough accounts: root → members.
    fn groups(&self, params: &CoordinationParams, since: i64) -> BTreeMap<u32, Vec<u32>> {
        let mut groups: BTreeMap<u32, Vec<u32>> = BTreeMap::new();
        for index in 0..self.members.len() as u32 {
            if self.members[index as usize].at >= since {
                groups.entry(self.root(index)).or_default().push(index);
            }
        }
        groups.retain(|_, members| {
            let mut authors: Vec<&str> = members
                .iter()
                .map(|&m| self.members[m as usize].author.as_str())
                .collect();
            authors.sort_unstable();
            authors.dedup();
            authors.len() as u32 >= params.min_accounts
        });
        groups
    }

    /// Returns, per link, the members whose posting of it had enough distinct accounts
    /// within ± the coordination interval.
    fn coordinated_links(
        &self,
        params: &CoordinationParams,
        since: i64,
    ) -> BTreeMap<&str, Vec<u32>> {
        let mut result = BTreeMap::new();
        for (link, posts) in &self.links {
            let posts: Vec<u32> = posts
                .iter()
                .copied()
                .filter(|&m| self.members[m as usize].at >= since)
                .collect();
            if posts.len() < params.min_accounts as usize {
                continue;
            }
            let mut authors: Vec<&str> = Vec::with_capacity(posts.len());
            let coordinated: Vec<u32> = posts
                .iter()
                .copied()
                .filter(|&m| {
                    let at = self.members[m as usize].at;
                    authors.clear();
                    authors.extend(
                        posts
                            .iter()
                            .map(|&o| &self.members[o as usize])
                            .filter(|o| (o.at - at).abs() <= params.interval_secs)
                            .map(|o| o.author.as_str()),
                    );
                    authors.sort_unstable();
                    authors.dedup();
                    authors.len() as u32 >= params.min_accounts
                })
                .collect();
            if !coordinated.is_empty() {
                result.insert(link.as_str(), coordinated);
            }
        }
        result
    }

    /// Returns the accounts that share at least `synchronized_min_groups` near-duplicate
    /// groups or coordinated links with the same partner account.
    fn synchronized_authors(
        &self,
        groups: &BTreeMap<u32, Vec<u32>>,
        links: &BTreeMap<&str, Vec<u32>>,
        params: &CoordinationParams,
    ) -> BTreeSet<&str> {
        // Looked up and filtered only, never iterated in order: a fast hash map.
        let mut pairs: FxHashMap<(&str, &str), u32> = FxHashMap::default();
        for members in groups.values().chain(links.values()) {
            let mut authors: Vec<&str> = members
                .iter()
                .map(|&m| self.members[m as usize].author.as_str())
                .collect();
            authors.sort_unstable();
            authors.dedup();
            // Pairs grow quadratically; the first accounts of a large group suffice to
            // see who keeps acting together.
            authors.truncate(MAX_PAIR_AUTHORS);
            for (i, a) in authors.iter().enumerate() {
                for b in &authors[i + 1..] {
                    *pairs.entry((a, b)).or_insert(0) += 1;
                }
            }
        }
        pairs
            .into_iter()
            .filter(|(_, together)| *together >= params.synchronized_min_groups)
            .flat_map(|((a, b), _)| [a, b])
            .collect()
    }

    /// Returns, per author, the members posted at or after `since`.
    fn posts_by_author_since(&self, since: i64) -> FxHashMap<&str, u32> {
        let mut posts: FxHashMap<&str, u32> = FxHashMap::default();
        for member in self.members.iter().filter(|m| m.at >= since) {
            *posts.entry(member.author.as_str()).or_insert(0) += 1;
        }
        posts
    }

    /// Returns the shares and the score of the members posted at or after `since` (Unix
    /// seconds): the narrative passes the start of the window its alert cites, so that
    /// its score is judged on the posts it shows rather than on older members (when the
    /// cited posts have no author, older known-author posts would otherwise speak for
    /// them).
    pub fn shares(&self, params: &CoordinationParams, since: i64) -> CoordinationShares {
        let by_author = self.posts_by_author_since(since);
        let known = by_author.values().sum::<u32>() as usize;
        if known == 0 {
            return CoordinationShares::default();
        }
        let groups = self.groups(params, since);
        let links = self.coordinated_links(params, since);
        let in_groups: usize = groups.values().map(Vec::len).sum();
        let mut linked: Vec<u32> = links.values().flatten().copied().collect();
        linked.sort_unstable();
        linked.dedup();
        let synchronized: u32 = self
            .synchronized_authors(&groups, &links, params)
            .iter()
            .map(|author| by_author.get(*author).copied().unwrap_or(0))
            .sum();
        let share = |count: usize| count as f64 / known as f64;
        let near_duplicate = share(in_groups);
        let shared_link = share(linked.len());
        let synchronized_account = share(synchronized as usize);
        let noisy_or =
            1.0 - (1.0 - near_duplicate) * (1.0 - shared_link) * (1.0 - synchronized_account);
        let shrink = known as f64 / (known as f64 + params.prior_posts);
        CoordinationShares {
            known: known as u32,
            near_duplicate,
            shared_link,
            synchronized_account,
            score: noisy_or * shrink,
        }
    }

    /// Returns the evidence an analyst reads: the score, its shares, the largest groups,
    /// the most shared links and the most active accounts.
    pub fn evidence(&self, params: &CoordinationParams, since: i64) -> CoordinationEvidence {
        let shares = self.shares(params, since);
        let time = |at: i64| DateTime::<Utc>::from_timestamp(at, 0).unwrap_or_default();
        let mut groups: Vec<NearDuplicateGroup> = self
            .groups(params, since)
            .into_values()
            .map(|members| {
                let mut authors: Vec<String> = members
                    .iter()
                    .map(|&m| self.members[m as usize].author.clone())
                    .collect();
                authors.sort_unstable();
                authors.dedup();
                let times = members.iter().map(|&m| self.members[m as usize].at);
                let first = times.clone().min().unwrap_or_default();
                let last = times.max().unwrap_or_default();
                NearDuplicateGroup {
                    posts: members.len() as u32,
                    distinct_authors: authors.len() as u32,
                    authors: authors.into_iter().take(GROUP_ITEMS).collect(),
                    post_ids: members
                        .iter()
                        .take(GROUP_ITEMS)
                        .map(|&m| self.members[m as usize].id.clone())
                        .collect(),
                    first: time(first),
                    last: time(last),
                    sample_text: self.members[members[0] as usize].sample.clone(),
                }
            })
            .collect();
        groups.sort_by(|a, b| b.posts.cmp(&a.posts).then(a.first.cmp(&b.first)));
        groups.truncate(EVIDENCE_ITEMS);
        let mut shared_links: Vec<SharedLinkGroup> = self
            .coordinated_links(params, since)
            .into_iter()
            .map(|(link, members)| {
                let mut authors: Vec<String> = members
                    .iter()
                    .map(|&m| self.members[m as usize].author.clone())
                    .collect();
                authors.sort_unstable();
                authors.dedup();
                let times = members.iter().map(|&m| self.members[m as usize].at);
                let spread = times.clone().max().unwrap_or(0) - times.min().unwrap_or(0);
                SharedLinkGroup {
                    link: link.to_owned(),
                    posts: members.len() as u32,
                    distinct_authors: authors.len() as u32,
                    authors: authors.into_iter().take(GROUP_ITEMS).collect(),
                    spread_secs: spread,
                }
            })
            .collect();
        shared_links.sort_by_key(|group| std::cmp::Reverse(group.distinct_authors));
        shared_links.truncate(EVIDENCE_ITEMS);
        let mut top_accounts: Vec<(String, u32)> = self
            .posts_by_author_since(since)
            .into_iter()
            .map(|(author, posts)| (author.to_owned(), posts))
            .collect();
        top_accounts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        top_accounts.truncate(EVIDENCE_ITEMS);
        CoordinationEvidence {
            score: shares.score,
            known_author_posts: shares.known,
            near_duplicate_share: shares.near_duplicate,
            shared_link_share: shares.shared_link,
            synchronized_account_share: shares.synchronized_account,
            near_duplicate_groups: groups,
            shared_links,
            top_accounts,
        }
    }

    /// Returns the bytes held, roughly, for the memory estimate.
    pub fn memory_bytes(&self) -> usize {
        self.members.len() * (std::mem::size_of::<CoordinationMember>() + 2 * SAMPLE_CHARS)
            + self.buckets.len() * 48
            + self.links.len() * 96
    }
}

/// Returns the first characters of a text, for evidence samples.
pub(crate) fn sample(text: &str) -> String {
    text.chars().take(SAMPLE_CHARS).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hashing::minhash;

    fn params() -> CoordinationParams {
        CoordinationParams::new(&crate::DetectorConfig::default())
    }

    fn member(
        id: usize,
        author: &str,
        at: i64,
        shingles: &[u64],
        link: &str,
    ) -> CoordinationMember {
        CoordinationMember {
            id: id.to_string(),
            author: author.into(),
            at,
            signature: minhash(shingles),
            links: vec![link.to_owned()],
            sample: format!("post {id}"),
        }
    }

    #[test]
    fn copies_from_many_accounts_score_high_and_distinct_posts_low() {
        let params = params();
        let mut copied = CoordinationState::default();
        let script: Vec<u64> = (0..20).collect();
        for i in 0..40 {
            copied.add(
                member(i, &format!("a{i}"), i as i64 * 10, &script, "http://x/1"),
                &params,
            );
        }
        let evidence = copied.evidence(&params, i64::MIN);
        assert!(evidence.score > 0.7, "{evidence:?}");
        assert_eq!(evidence.near_duplicate_groups[0].distinct_authors, 40);
        assert_eq!(evidence.shared_links[0].link, "http://x/1");

        let mut organic = CoordinationState::default();
        for i in 0..40 {
            let own: Vec<u64> = (i * 100..i * 100 + 20).collect();
            organic.add(
                member(
                    i as usize,
                    &format!("a{i}"),
                    i as i64 * 3600,
                    &own,
                    &format!("http://x/{i}"),
                ),
                &params,
            );
        }
        assert!(organic.shares(&params, i64::MIN).score < 0.05);
    }

    #[test]
    fn evidence_follows_the_latest_posts_once_the_bound_is_reached() {
        let params = params();
        let mut state = CoordinationState::default();
        let script: Vec<u64> = (0..20).collect();
        for i in 0..MAX_COORDINATION_MEMBERS {
            state.add(
                member(i, &format!("a{}", i % 50), i as i64, &script, "http://x/1"),
                &params,
            );
        }
        assert!(state.shares(&params, i64::MIN).score > 0.9);
        // The narrative drifts onto organic posts: the copies age out of the evidence.
        for i in 0..MAX_COORDINATION_MEMBERS {
            let own: Vec<u64> = (i as u64 * 100..i as u64 * 100 + 20).collect();
            let at = 10_000_000 + i as i64 * 3600;
            state.add(
                member(i, &format!("b{i}"), at, &own, &format!("http://y/{i}")),
                &params,
            );
        }
        assert!(state.len() <= MAX_COORDINATION_MEMBERS);
        assert!(
            state.shares(&params, i64::MIN).score < 0.05,
            "{:?}",
            state.shares(&params, i64::MIN)
        );
    }

    #[test]
    fn coordination_is_judged_on_the_posts_since_the_cited_window() {
        let params = params();
        let mut state = CoordinationState::default();
        let script: Vec<u64> = (0..20).collect();
        // An hour of copies from 40 accounts, then organic posts a day later.
        for i in 0..40 {
            state.add(
                member(i, &format!("a{i}"), i as i64 * 10, &script, "http://x/1"),
                &params,
            );
        }
        let later = 86_400;
        for i in 0..40 {
            let own: Vec<u64> = (i as u64 * 100..i as u64 * 100 + 20).collect();
            state.add(
                member(
                    100 + i,
                    &format!("b{i}"),
                    later + i as i64 * 60,
                    &own,
                    &format!("http://y/{i}"),
                ),
                &params,
            );
        }
        assert!(state.shares(&params, i64::MIN).score > 0.4);
        let recent = state.shares(&params, later);
        assert_eq!(recent.known, 40);
        assert!(recent.score < 0.05, "{recent:?}");
        let evidence = state.evidence(&params, later);
        assert!(evidence.near_duplicate_groups.is_empty());
        assert!(evidence
            .top_accounts
            .iter()
            .all(|(a, _)| a.starts_with('b')));
        // Nothing since: no evidence, not a division by zero.
        assert_eq!(state.shares(&params, later * 2).known, 0);
    }
}
