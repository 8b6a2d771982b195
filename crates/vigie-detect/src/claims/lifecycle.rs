//! How claims follow their storylines: severity, window closes, storyline merges and
//! retirements.

use vigie_domain::{NarrativeEvent, NarrativeEventKind, NarrativeId, Severity};

use super::{ClaimContext, Claims, Cluster};

impl Claims {
    /// Sets a reported claim's severity from its storyline's and its own signals;
    /// severity only rises during a claim's life, as a storyline's does.
    pub(super) fn reassess(
        &mut self,
        key: u64,
        ctx: &ClaimContext<'_>,
        events: &mut Vec<NarrativeEvent>,
    ) {
        let Some(cluster) = self.clusters.get_mut(&key) else {
            return;
        };
        let (Some(parent), Some(claim)) = (cluster.parent, cluster.claim.as_mut()) else {
            return;
        };
        let config = ctx.config;
        let parent_severity = ctx
            .storylines
            .get(&parent)
            .map_or(Severity::Low, |s| s.severity);
        let mut reasons = vec![format!(
            "claim of storyline {parent} ({}): {} posts from {} authors whose texts are at least {:.0}% similar to its centroid",
            parent_severity.as_str(),
            claim.posts_total,
            claim.distinct_authors(),
            config.claims.join_similarity * 100.0
        )];
        let mut severity = if parent_severity >= Severity::Medium {
            Severity::Medium
        } else {
            reasons.push("below alert: its storyline has not alerted".to_owned());
            Severity::Low
        };
        if severity >= Severity::Medium && claim.coordination_score >= config.coordination_high {
            severity = severity.raised();
            reasons.push(format!(
                "coordination {:.2} ≥ {}",
                claim.coordination_score, config.coordination_high
            ));
        }
        if severity >= Severity::Medium && !claim.watch_matches.is_empty() {
            severity = severity.raised();
            let matches: Vec<String> = claim
                .watch_matches
                .iter()
                .map(|(name, posts)| format!("{name:?} ({posts} posts)"))
                .collect();
            reasons.push(format!("watchlist matched: {}", matches.join(", ")));
        }
        claim.severity_reasons = reasons;
        let severity = severity.max(claim.severity);
        if claim.severity < Severity::Medium
            && severity >= Severity::Medium
            && self.fold_into_alerting_sibling(key, parent, ctx, events)
        {
            return;
        }
        let Some(claim) = self.clusters.get_mut(&key).and_then(|c| c.claim.as_mut()) else {
            return;
        };
        if severity != claim.severity {
            let from = claim.severity;
            claim.severity = severity;
            events.extend(ctx.event(
                NarrativeEventKind::SeverityChanged { from },
                &self.clusters[&key],
            ));
        }
    }

    /// Re-judges the claims of a storyline whose severity changed, in id order.
    pub fn reassess_children(
        &mut self,
        parent: NarrativeId,
        ctx: &ClaimContext<'_>,
        events: &mut Vec<NarrativeEvent>,
    ) {
        // A storyline that alerts now may take over claims its members share with
        // another one.
        let voters: Vec<u64> = self
            .clusters
            .iter()
            .filter(|(_, c)| c.votes.contains_key(&parent) && c.parent != Some(parent))
            .map(|(key, _)| *key)
            .collect();
        for key in voters {
            self.elect(key, ctx, events);
        }
        for key in self.children(parent) {
            self.reassess(key, ctx, events);
        }
    }

    /// Returns the keys of a storyline's reported claims, in claim id order.
    fn children(&self, parent: NarrativeId) -> Vec<u64> {
        let mut children: Vec<(NarrativeId, u64)> = self
            .clusters
            .iter()
            .filter(|(_, c)| c.parent == Some(parent))
            .filter_map(|(key, c)| c.claim.as_ref().map(|claim| (claim.id, *key)))
            .collect();
        children.sort();
        children.into_iter().map(|(_, key)| key).collect()
    }

    /// Moves the votes of a storyline merged into another to the survivor; its claims
    /// now belong to the survivor (reported again).
    pub fn storyline_merged(
        &mut self,
        absorbed: NarrativeId,
        survivor: NarrativeId,
        ctx: &ClaimContext<'_>,
        events: &mut Vec<NarrativeEvent>,
    ) {
        let keys: Vec<u64> = self
            .clusters
            .iter()
            .filter(|(_, c)| c.votes.contains_key(&absorbed))
            .map(|(key, _)| *key)
            .collect();
        for key in keys {
            let cluster = self.clusters.get_mut(&key).expect("keys were just listed");
            let votes = cluster.votes.remove(&absorbed).unwrap_or(0);
            *cluster.votes.entry(survivor).or_insert(0) += votes;
            if cluster.parent == Some(absorbed) {
                cluster.parent = None;
            }
            self.elect(key, ctx, events);
        }
    }

    /// Handles a storyline that retired: its claims move to another storyline most of
    /// their other members joined, or retire with it.
    pub fn storyline_retired(
        &mut self,
        storyline: NarrativeId,
        ctx: &ClaimContext<'_>,
        events: &mut Vec<NarrativeEvent>,
    ) {
        let keys: Vec<u64> = self
            .clusters
            .iter()
            .filter(|(_, c)| c.votes.contains_key(&storyline))
            .map(|(key, _)| *key)
            .collect();
        let mut retired = Vec::new();
        for key in keys {
            let cluster = self.clusters.get_mut(&key).expect("keys were just listed");
            cluster.votes.remove(&storyline);
            if cluster.parent != Some(storyline) {
                continue;
            }
            match cluster.elected(ctx.storylines) {
                Some(_) => self.elect(key, ctx, events),
                None if cluster.claim.is_some() => retired.push(key),
                None => cluster.parent = None,
            }
        }
        let mut gone: Vec<Cluster> = retired.into_iter().filter_map(|k| self.forget(k)).collect();
        gone.sort_by_key(|c| c.claim.as_ref().map(|claim| claim.id));
        for cluster in &gone {
            events.extend(ctx.event(NarrativeEventKind::Retired, cluster));
        }
    }

    /// Closes a window for every reported claim: counts, statuses, updates.
    pub fn close_window(
        &mut self,
        next: u32,
        ctx: &ClaimContext<'_>,
        events: &mut Vec<NarrativeEvent>,
    ) {
        let mut changed: Vec<(NarrativeId, u64, Vec<NarrativeEventKind>)> = Vec::new();
        for (key, cluster) in self.clusters.iter_mut() {
            let Some(claim) = &mut cluster.claim else {
                continue;
            };
            let Some(closed_posts) = claim.roll_to(next) else {
                continue;
            };
            let mut kinds = Vec::new();
            if let Some(from) = claim.close_window(closed_posts, next) {
                kinds.push(NarrativeEventKind::StatusChanged { from });
            }
            if closed_posts > 0.0 {
                kinds.push(NarrativeEventKind::Updated);
            }
            // A claim below alert changes quietly: its window closes are no events (the
            // API lists it as it is all the same), only its report, severity changes,
            // merges and retirement are. Most claims never alert, and building their view
            // at every window close was a tenth of the detector's time.
            if !kinds.is_empty() && cluster.parent.is_some() && claim.severity >= Severity::Medium {
                changed.push((claim.id, *key, kinds));
            }
        }
        changed.sort_by_key(|(id, _, _)| *id);
        for (_, key, kinds) in changed {
            let Some(view) = self.clusters[&key].view(0.0, ctx.config, ctx.coordination) else {
                continue;
            };
            for kind in kinds {
                events.push(NarrativeEvent {
                    at: ctx.at(),
                    kind,
                    narrative: view.clone(),
                });
            }
        }
    }
}
