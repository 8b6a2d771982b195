//! Claims that are one: centroid merges when a claim has just doubled, merges forced by
//! shared identity evidence, and forgetting idle clusters.

use super::*;
use vigie_domain::Severity;

impl Claims {
    /// Merges the cluster that has just doubled into its most similar other cluster when
    /// their centroids are close enough; returns the surviving key.
    pub(super) fn try_merge(
        &mut self,
        key: u64,
        ctx: &mut ClaimContext<'_>,
        events: &mut Vec<NarrativeEvent>,
    ) -> u64 {
        let centroid = self.clusters[&key].centroid.clone();
        let Some((other, similarity)) = self.nearest(&centroid, Some(key)) else {
            return key;
        };
        if f64::from(similarity) < ctx.claims().merge_similarity {
            return key;
        }
        // The reported claim keeps its id (the older of two reported ones); between two
        // unreported clusters, the older.
        let rank = |k: u64| {
            let claim = self.clusters[&k].claim.as_ref().map(|c| c.id);
            (claim.is_none(), claim, k)
        };
        let (survivor, absorbed) = if rank(key) <= rank(other) {
            (key, other)
        } else {
            (other, key)
        };
        let size = self.clusters[&key].size;
        let reason = format!(
            "their centroids are {:.0}% similar (≥ {:.0}%) when one reached {size} posts",
            f64::from(similarity) * 100.0,
            ctx.claims().merge_similarity * 100.0
        );
        self.merge_because(survivor, absorbed, reason, ctx, events);
        survivor
    }

    /// Merges cluster `absorbed` into `survivor`, for `reason`.
    pub(super) fn merge_because(
        &mut self,
        survivor: u64,
        absorbed: u64,
        reason: String,
        ctx: &ClaimContext<'_>,
        events: &mut Vec<NarrativeEvent>,
    ) {
        let gone = self.forget(absorbed).expect("merged clusters exist");
        let centroid_terms = ctx.claims().centroid_terms.max(1);
        let cap = pending_cap(ctx.claims());
        let cluster = self.clusters.get_mut(&survivor).expect("survivors exist");
        add_sparse(&mut cluster.sum, &gone.sum, 1.0);
        truncate_heaviest(&mut cluster.sum, SUM_TERMS_FACTOR * centroid_terms);
        cluster.size += gone.size;
        cluster.last_post = cluster.last_post.max(gone.last_post);
        for candidate in &gone.candidates {
            keep_candidate(cluster, &candidate.id, &candidate.text, &candidate.vector);
        }
        for (storyline, votes) in gone.votes {
            if let Some(mine) = cluster.votes.get_mut(&storyline) {
                *mine += votes;
            } else if cluster.votes.len() < MAX_VOTES {
                cluster.votes.insert(storyline, votes);
            }
        }
        let mut merged = None;
        match (&mut cluster.claim, gone.claim) {
            (Some(claim), Some(other)) => {
                let absorbed_id = other.id;
                claim.absorb(other, ctx.config, ctx.coordination);
                merged = Some(NarrativeEventKind::Merged {
                    absorbed: absorbed_id,
                    reason,
                });
            }
            (Some(claim), None) => {
                for post in &gone.pending {
                    add_member_post(
                        claim,
                        post,
                        ctx.config,
                        ctx.coordination,
                        CoordinationRefresh::Sparse,
                    );
                }
                claim.refresh_coordination(ctx.coordination);
            }
            (None, _) => {
                cluster.pending.extend(gone.pending);
                cluster
                    .pending
                    .sort_by(|a, b| a.at.cmp(&b.at).then(a.id.cmp(&b.id)));
                let excess = cluster.pending.len().saturating_sub(cap);
                cluster.pending.drain(..excess);
                for author in gone.pending_authors {
                    if cluster.pending_authors.len() < MAX_PENDING_AUTHORS {
                        cluster.pending_authors.insert(author);
                    }
                }
                cluster.pending_anonymous += gone.pending_anonymous;
            }
        }
        self.refresh_centroid(survivor, centroid_terms);
        self.register(survivor, &gone.identities);
        if let Some(kind) = merged {
            events.extend(ctx.event(kind, &self.clusters[&survivor]));
        }
        self.elect(survivor, ctx, events);
    }

    /// Folds a reported claim that is about to alert into the most similar claim of the
    /// same storyline that already alerts, when their centroids are `merge_similarity`
    /// alike: one claim told in other words, whose alert would only repeat the other's.
    /// (Claims otherwise merge only when one has just doubled; a storyline's claims alert
    /// together when it alerts, so fragments of one claim would each page.) Returns
    /// whether it was folded.
    pub(super) fn fold_into_alerting_sibling(
        &mut self,
        key: u64,
        parent: NarrativeId,
        ctx: &ClaimContext<'_>,
        events: &mut Vec<NarrativeEvent>,
    ) -> bool {
        let threshold = ctx.claims().merge_similarity;
        let Some(cluster) = self.clusters.get(&key) else {
            return false;
        };
        let best = self
            .clusters
            .iter()
            .filter(|(other, c)| {
                **other != key
                    && c.parent == Some(parent)
                    && c.claim
                        .as_ref()
                        .is_some_and(|claim| claim.severity >= Severity::Medium)
            })
            .map(|(other, c)| (dot(&cluster.centroid, &c.centroid), *other))
            .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)));
        let Some((similarity, sibling)) = best else {
            return false;
        };
        if f64::from(similarity) < threshold {
            return false;
        }
        let sibling_id = self.clusters[&sibling].claim.as_ref().map(|c| c.id);
        let reason = format!(
            "told like {}, which already alerts: their centroids are {:.0}% similar (≥ {:.0}%)",
            sibling_id.map(|id| id.to_string()).unwrap_or_default(),
            f64::from(similarity) * 100.0,
            threshold * 100.0
        );
        self.merge_because(sibling, key, reason, ctx, events);
        true
    }

    /// Removes a cluster and its postings; returns it.
    pub(super) fn forget(&mut self, key: u64) -> Option<Cluster> {
        let cluster = self.clusters.remove(&key)?;
        for (hash, _) in &cluster.centroid {
            unpost(&mut self.postings, *hash, key);
        }
        for hash in &cluster.identities {
            if self.identities.get(hash) == Some(&key) {
                self.identities.remove(hash);
            }
        }
        Some(cluster)
    }

    /// Forgets clusters idle for `idle_posts` posts; a reported one retires.
    pub(super) fn sweep(&mut self, ctx: &mut ClaimContext<'_>, events: &mut Vec<NarrativeEvent>) {
        let idle = u64::from(ctx.claims().idle_posts);
        let posts = self.posts;
        let stale: Vec<u64> = self
            .clusters
            .iter()
            .filter(|(_, c)| posts.saturating_sub(c.last_post) > idle)
            .map(|(key, _)| *key)
            .collect();
        for key in stale {
            if let Some(cluster) = self.forget(key) {
                events.extend(ctx.event(NarrativeEventKind::Retired, &cluster));
            }
        }
    }
}
