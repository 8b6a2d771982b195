//! Claims spreading outside every storyline (`claims.seed_posts`).
//!
//! A claim whose members never joined a storyline cannot be reported: it has no story to
//! belong to. Most such clusters are chatter, but one that reaches `seed_posts` members
//! from `alert_min_authors` authors within `seed_span_secs` is a claim spreading on its
//! own, too slowly for any of its words to burst within an hour ("the underwater bedroom",
//! #BringBackOurGirls' first days: 3–15 posts an hour). The detector makes it a storyline
//! of its own (`detector::claim_seeds`); design note §12 measures the rule.

use super::*;

/// A claim spreading on its own: what the storyline it seeds starts from.
#[derive(Debug, Clone, PartialEq)]
pub struct OrphanClaim {
    /// Its defining terms: the storyline's seed terms (their significance is the
    /// detector's to fill in).
    pub terms: Vec<NarrativeTerm>,
    /// Its waiting members within the span, oldest first.
    pub members: Vec<RecentPost>,
    /// Distinct authors of `members` (posts without an author count as their own).
    pub authors: u32,
    /// Seconds between its oldest and newest member.
    pub span_secs: i64,
}

impl Claims {
    /// Returns cluster `key` as a claim spreading on its own, when it is one now: not
    /// reported, none of its members in a tracked storyline, `seed_posts` members within
    /// `seed_span_secs` from `alert_min_authors` authors, and words to name it by.
    pub fn orphan(&self, key: u64, config: &DetectorConfig) -> Option<OrphanClaim> {
        let claims = &config.claims;
        let needed = claims.seed_posts as usize;
        let cluster = self.clusters.get(&key)?;
        if needed == 0
            || cluster.claim.is_some()
            || !cluster.votes.is_empty()
            || cluster.pending.len() < needed
        {
            return None;
        }
        let newest = cluster.pending.iter().map(|p| p.at).max()?;
        let since = newest - i64::from(claims.seed_span_secs);
        let members: Vec<&RecentPost> = cluster.pending.iter().filter(|p| p.at >= since).collect();
        if members.len() < needed {
            return None;
        }
        let mut named: BTreeSet<&str> = BTreeSet::new();
        let mut anonymous = 0u32;
        for post in &members {
            match &post.author {
                Some(author) => {
                    named.insert(author);
                }
                None => anonymous += 1,
            }
        }
        let authors = named.len() as u32 + anonymous;
        if authors < config.alert_min_authors {
            return None;
        }
        let terms = defining_terms(&self.texts, &cluster.centroid);
        if terms.is_empty() {
            return None;
        }
        let oldest = members.iter().map(|p| p.at).min()?;
        let mut members: Vec<RecentPost> = members.into_iter().cloned().collect();
        members.sort_by_key(|p| p.at);
        Some(OrphanClaim {
            terms,
            members,
            authors,
            span_secs: newest - oldest,
        })
    }
}
