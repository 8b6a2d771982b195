//! What an alert says: built from a [`Narrative`] so that whoever receives it can act
//! without opening anything else — why it fired, who pushes it, in which languages, a few
//! posts and the links to dig further.
//!
//! Accounts are pseudonymized by default. The title leads with the narrative's headline
//! (the text of its most central post) when the detector gave one, else its label.
//! Representative posts are the narrative's diverse representatives (one per group of
//! near-identical posts, with its language and "×N" copies); a narrative without them
//! (older snapshots) cites its representative post ids. The narrative holds no URL, so
//! the daemon passes a [`PostLookup`] that reads them from its recent posts (see
//! [`crate::AlertPolicy::set_post_lookup`]).
//!
//! A claim's alert (a narrative with a parent storyline) says so: [`Alert::level`],
//! [`Alert::parent`] and the labels `level`, `storyline` and `parent`, so receivers group
//! a storyline with its claims.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use vigie_domain::alert::{
    truncate_chars, AccountRef, Alert, AlertLinks, AlertSeverity, AlertStatus, CoordinationSummary,
    FiringReasons, NarrativeLevel, PostRef, TermEvidence, ALERT_NAME,
};
use vigie_domain::{Narrative, NarrativeId, TokenKind};

use crate::config::{AlertConfig, AlertRule};
use crate::fingerprint::pseudonymize;

/// Finds a post by id (in the daemon: the search index). Called from the thread that
/// runs the policy, once per cited post and notification, so it should be quick.
pub type PostLookup = Arc<dyn Fn(&str) -> Option<PostRef> + Send + Sync>;

/// Returns what a narrative is called in titles: its headline when it has one, else its
/// label.
pub fn narrative_title(narrative: &Narrative) -> &str {
    let headline = narrative.headline.trim();
    if headline.is_empty() {
        &narrative.label
    } else {
        headline
    }
}

/// Characters of a headline kept in a title (Slack headers take 150 in all).
pub const TITLE_CHARS: usize = 120;

/// Returns the labels of an alert before content is built (used for silences and routing).
pub(crate) fn alert_labels(
    rule: &AlertRule,
    narrative_id: NarrativeId,
    parent: Option<NarrativeId>,
    severity: AlertSeverity,
    status: AlertStatus,
) -> BTreeMap<String, String> {
    let mut labels = rule.labels.clone();
    labels.insert("alertname".into(), ALERT_NAME.into());
    labels.insert("severity".into(), severity.as_str().into());
    labels.insert("narrative_id".into(), narrative_id.to_string());
    // One `storyline` label on a storyline and all its claims: grouping by it (Alertmanager
    // `group_by`, silences) keeps a story in one conversation.
    labels.insert(
        "storyline".into(),
        parent.unwrap_or(narrative_id).to_string(),
    );
    let level = if parent.is_some() {
        NarrativeLevel::Claim
    } else {
        NarrativeLevel::Storyline
    };
    labels.insert("level".into(), level.as_str().into());
    if let Some(parent) = parent {
        labels.insert("parent".into(), parent.to_string());
    }
    labels.insert("rule".into(), rule.name.clone());
    labels.insert("status".into(), status.as_str().into());
    labels
}

/// Everything [`build_alert`] needs besides the narrative.
pub(crate) struct AlertFrame<'a> {
    pub config: &'a AlertConfig,
    pub rule: &'a AlertRule,
    pub fingerprint: &'a str,
    pub severity: AlertSeverity,
    pub status: AlertStatus,
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
    pub resolve_reason: Option<String>,
    pub lookup: Option<&'a PostLookup>,
    /// For a claim: its storyline's title, when known.
    pub parent_title: Option<String>,
}

/// Builds an alert's content from its narrative.
pub(crate) fn build_alert(frame: AlertFrame<'_>, narrative: &Narrative) -> Alert {
    let config = frame.config;
    let languages = narrative.languages.clone();
    let level = NarrativeLevel::of(narrative);
    let word = match level {
        NarrativeLevel::Storyline => "narrative",
        NarrativeLevel::Claim => "claim",
    };
    let summary = format!(
        "{word} '{}' growing {:.1}× baseline, {} posts, {} authors, {} language{}",
        narrative.label,
        narrative.growth_ratio,
        narrative.posts_total,
        narrative.distinct_authors,
        languages.len(),
        if languages.len() == 1 { "" } else { "s" },
    );
    let lead = truncate_chars(&narrative_title(narrative).replace('\n', " "), TITLE_CHARS);
    let title = match (frame.status, level) {
        (AlertStatus::Firing, NarrativeLevel::Storyline) => format!("Narrative spreading: {lead}"),
        (AlertStatus::Firing, NarrativeLevel::Claim) => format!("Claim spreading: {lead}"),
        (AlertStatus::Resolved, _) => format!("Resolved: {lead}"),
    };
    let base = config.external_url.trim_end_matches('/');
    let links = AlertLinks {
        runbook_url: (!config.runbook_url.is_empty()).then(|| config.runbook_url.clone()),
        narrative_url: format!("{base}/api/v1/narratives/{}", narrative.id),
        search_url: format!(
            "{base}/api/v1/search?q={}&since={}",
            url_encode(&narrative_search_query(narrative)),
            narrative.first_seen.timestamp()
        ),
    };
    let reasons = FiringReasons {
        terms: narrative
            .terms
            .iter()
            .take(config.max_terms)
            .map(|t| TermEvidence {
                term: display_term(&t.term, t.kind),
                z: t.z,
                posts_in_window: t.posts_in_window,
                baseline_mean: t.baseline_mean,
            })
            .collect(),
        posts_in_window: narrative.posts_in_window,
        baseline_posts_per_window: narrative.baseline_posts_per_window,
        growth_ratio: narrative.growth_ratio,
        growth_z: narrative.growth_z,
        severity_reasons: narrative.severity_reasons.clone(),
        watch_matches: narrative
            .watch_matches
            .iter()
            .map(|m| (m.watch.clone(), m.posts))
            .collect(),
    };
    let evidence = &narrative.coordination;
    let coordination = CoordinationSummary {
        score: evidence.score,
        near_duplicate_share: evidence.near_duplicate_share,
        shared_link_share: evidence.shared_link_share,
        synchronized_account_share: evidence.synchronized_account_share,
        near_duplicate_groups: evidence.near_duplicate_groups.len(),
        shared_links: evidence
            .shared_links
            .iter()
            .take(3)
            .map(|l| (l.link.clone(), l.distinct_authors))
            .collect(),
        text: format!(
            "coordination {:.2}: {:.0}% near-duplicate posts across accounts, {:.0}% shared \
             links, {:.0}% synchronized accounts ({} of {} posts with a known author)",
            evidence.score,
            evidence.near_duplicate_share * 100.0,
            evidence.shared_link_share * 100.0,
            evidence.synchronized_account_share * 100.0,
            evidence.known_author_posts,
            narrative.posts_total,
        ),
    };
    let top_accounts = evidence
        .top_accounts
        .iter()
        .take(config.max_accounts)
        .map(|(account, posts)| AccountRef {
            account: if config.pseudonymize_accounts {
                pseudonymize(config.account_salt.expose(), account)
            } else {
                account.clone()
            },
            posts: *posts,
        })
        .collect();
    let looked_up = |id: &str| {
        frame
            .lookup
            .and_then(|lookup| lookup(id))
            .unwrap_or_else(|| PostRef::id_only(id))
    };
    let representative_posts = if narrative.representatives.is_empty() {
        narrative
            .representative_post_ids
            .iter()
            .take(config.max_representative_posts)
            .map(|id| looked_up(id))
            .collect()
    } else {
        narrative
            .representatives
            .iter()
            .take(config.max_representative_posts)
            .map(|rep| {
                let found = looked_up(&rep.post_id);
                PostRef {
                    // The detector's sample is the text the narrative was judged on.
                    text: if rep.text.is_empty() {
                        found.text
                    } else {
                        Some(rep.text.clone())
                    },
                    lang: Some(rep.lang.clone()).filter(|l| !l.is_empty()),
                    copies: Some(rep.copies.max(1)),
                    ..found
                }
            })
            .collect()
    };
    Alert {
        fingerprint: frame.fingerprint.to_owned(),
        title,
        severity: frame.severity,
        status: frame.status,
        summary,
        rule: frame.rule.name.clone(),
        narrative_id: narrative.id,
        level,
        parent: narrative.parent,
        parent_title: frame.parent_title.filter(|_| narrative.parent.is_some()),
        narrative_label: narrative.label.clone(),
        headline: narrative.headline.trim().to_owned(),
        narrative_status: narrative.status,
        posts_total: narrative.posts_total,
        distinct_authors: narrative.distinct_authors,
        languages,
        reasons,
        coordination,
        top_accounts,
        representative_posts,
        resolve_reason: frame.resolve_reason,
        links,
        starts_at: frame.starts_at,
        ends_at: frame.ends_at,
        labels: alert_labels(
            frame.rule,
            narrative.id,
            narrative.parent,
            frame.severity,
            frame.status,
        ),
    }
}

fn display_term(term: &str, kind: TokenKind) -> String {
    match kind {
        TokenKind::Hashtag => format!("#{term}"),
        TokenKind::Mention => format!("@{term}"),
        _ => term.to_owned(),
    }
}

/// Returns a search query (the daemon's Tantivy syntax) matching a narrative's posts: its
/// top three terms joined by `OR`, a co-occurring pair as `(a AND b)`.
pub fn narrative_search_query(narrative: &Narrative) -> String {
    let one = |term: &str, kind: TokenKind| -> String {
        match kind {
            TokenKind::Hashtag => format!("#{term}"),
            TokenKind::Mention => format!("mention:{term}"),
            TokenKind::Domain => format!("domain:{term}"),
            // Links and emoji hold characters the query parser treats as syntax.
            TokenKind::Url | TokenKind::Emoji => format!("\"{}\"", term.replace('"', "")),
            TokenKind::Word | TokenKind::Variant | TokenKind::HashtagPart => term.to_owned(),
        }
    };
    narrative
        .terms
        .iter()
        .take(3)
        .map(|t| match t.term.split_once(" + ") {
            // A pair's kind is its first term's; the second is most often a word.
            Some((first, second)) => {
                format!(
                    "({} AND {})",
                    one(first, t.kind),
                    one(second, TokenKind::Word)
                )
            }
            None => one(&t.term, t.kind),
        })
        .collect::<Vec<_>>()
        .join(" OR ")
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub(crate) fn url_encode(text: &str) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            _ => {
                let _ = write!(out, "%{byte:02X}");
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures::narrative;
    use vigie_domain::Severity;

    fn frame<'a>(config: &'a AlertConfig, lookup: Option<&'a PostLookup>) -> AlertFrame<'a> {
        AlertFrame {
            config,
            rule: &config.rules[0],
            fingerprint: "f",
            severity: AlertSeverity::Warning,
            status: AlertStatus::Firing,
            starts_at: DateTime::<Utc>::from_timestamp(0, 0).unwrap(),
            ends_at: None,
            resolve_reason: None,
            lookup,
            parent_title: None,
        }
    }

    #[test]
    fn content_explains_and_links() {
        let config = AlertConfig {
            runbook_url: "https://wiki/runbook".into(),
            external_url: "http://vigie:9464/".into(),
            account_salt: vigie_domain::Secret::new("s"),
            ..AlertConfig::default()
        };
        let lookup: PostLookup = Arc::new(|id: &str| {
            (id == "p1").then(|| PostRef {
                url: Some("https://x.example/p1".into()),
                ..PostRef::id_only(id)
            })
        });
        let alert = build_alert(
            frame(&config, Some(&lookup)),
            &narrative(7, Severity::High, 9.4),
        );
        assert_eq!(
            alert.summary,
            "narrative 'kochfarms #hoax7' growing 9.4× baseline, 312 posts, 57 authors, 3 languages"
        );
        assert_eq!(
            alert.links.narrative_url,
            "http://vigie:9464/api/v1/narratives/n7"
        );
        assert!(
            alert
                .links
                .search_url
                .starts_with("http://vigie:9464/api/v1/search?q=kochfarm%20OR%20%23kochfarms"),
            "{}",
            alert.links.search_url
        );
        assert_eq!(alert.representative_posts.len(), 5);
        assert_eq!(
            alert.representative_posts[0].url.as_deref(),
            Some("https://x.example/p1")
        );
        assert_eq!(alert.reasons.terms[1].term, "#kochfarms");
        assert_eq!(alert.top_accounts[0].account, pseudonymize("s", "troll_1"));
        assert_eq!(alert.labels["alertname"], "VigieNarrative");
        assert_eq!(alert.labels["narrative_id"], "n7");
        assert_eq!(alert.labels["severity"], "warning");
        assert_eq!(alert.labels["status"], "firing");
    }

    #[test]
    fn raw_accounts_when_pseudonymization_is_off() {
        let config = AlertConfig {
            pseudonymize_accounts: false,
            ..AlertConfig::default()
        };
        let alert = build_alert(frame(&config, None), &narrative(1, Severity::High, 3.0));
        assert_eq!(alert.top_accounts[0].account, "troll_1");
        assert_eq!(alert.representative_posts[0], PostRef::id_only("p1"));
    }
}
