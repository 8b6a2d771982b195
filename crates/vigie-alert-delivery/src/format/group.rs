//! How chat sinks lay out one group of notifications: by storyline, each storyline's own
//! alert in full and its claims as a short list under it, so a story with forty claims is
//! one message that reads as one story.

use vigie_domain::NarrativeId;

use super::languages_text;
use vigie_domain::alert::{truncate_chars, Alert, AlertSeverity, AlertStatus, NarrativeLevel};
use vigie_domain::alert::{Notification, NotificationKind};

/// Notifications a chat sink puts in one message (a storyline with up to 99 claims).
pub const MAX_NOTIFICATIONS_PER_MESSAGE: usize = 100;
/// Claims listed by name in one message; the rest are counted.
pub const MAX_CLAIMS_LISTED: usize = 30;

/// A storyline and its claims, as they appear in one group.
#[derive(Debug)]
pub struct Family<'a> {
    /// The storyline's id.
    pub storyline: NarrativeId,
    /// Notifications about the storyline itself (one per rule; often one, or none when
    /// only new claims are sent).
    pub own: Vec<&'a Notification>,
    /// Notifications about its claims, in the order the policy released them.
    pub claims: Vec<&'a Notification>,
}

impl Family<'_> {
    /// Returns the storyline's title for a heading: from its own notification, else from
    /// what its claims know of it, else its id.
    pub fn title(&self) -> String {
        if let Some(own) = self.own.first() {
            return lead(&own.alert).to_owned();
        }
        self.claims
            .iter()
            .find_map(|n| n.alert.parent_title.clone())
            .unwrap_or_else(|| format!("storyline {}", self.storyline))
    }

    /// Returns the heading of its claim list: "3 new claims", "40 claims resolved with the
    /// storyline", or for claims sent without their storyline "2 new claims in storyline
    /// n12: …".
    pub fn claims_heading(&self) -> String {
        let firing = self
            .claims
            .iter()
            .filter(|n| n.alert.status == AlertStatus::Firing)
            .count();
        let resolved = self.claims.len() - firing;
        let mut parts = Vec::new();
        if firing > 0 {
            parts.push(format!(
                "{firing} new claim{}",
                if firing == 1 { "" } else { "s" }
            ));
        }
        if resolved > 0 {
            parts.push(format!(
                "{resolved} claim{} resolved with the storyline",
                if resolved == 1 { "" } else { "s" }
            ));
        }
        let counts = parts.join(", ");
        if self.own.is_empty() {
            format!(
                "{counts} in storyline {}: {}",
                self.storyline,
                truncate_chars(&self.title(), 120)
            )
        } else {
            counts
        }
    }

    /// Returns the claims listed by name and how many more there are.
    pub fn listed_claims(&self, budget: usize) -> (&[&Notification], usize) {
        let shown = self.claims.len().min(budget);
        (&self.claims[..shown], self.claims.len() - shown)
    }
}

/// Splits a group into families, in order of first appearance.
pub fn families<'a>(notifications: &[&'a Notification]) -> Vec<Family<'a>> {
    let mut out: Vec<Family<'a>> = Vec::new();
    for &notification in notifications {
        let storyline = notification.alert.storyline();
        let index = match out.iter().position(|f| f.storyline == storyline) {
            Some(index) => index,
            None => {
                out.push(Family {
                    storyline,
                    own: Vec::new(),
                    claims: Vec::new(),
                });
                out.len() - 1
            }
        };
        match notification.alert.level {
            NarrativeLevel::Storyline => out[index].own.push(notification),
            NarrativeLevel::Claim => out[index].claims.push(notification),
        }
    }
    out
}

/// Returns what an alert is called: its headline, else its label.
pub fn lead(alert: &Alert) -> &str {
    if alert.headline.is_empty() {
        &alert.narrative_label
    } else {
        &alert.headline
    }
}

/// Returns the icon of an alert's state.
pub fn icon(alert: &Alert) -> &'static str {
    match (alert.status, alert.severity) {
        (AlertStatus::Resolved, _) => "✅",
        (_, AlertSeverity::Critical) => "🔴",
        (_, AlertSeverity::Warning) => "🟠",
        (_, AlertSeverity::Info) => "🔵",
    }
}

/// Returns one claim as plain text (the formatter escapes and links it): what it says,
/// its numbers, and its most copied representative post.
pub fn claim_text(notification: &Notification) -> (String, Option<String>) {
    let alert = &notification.alert;
    let state = match notification.kind {
        NotificationKind::Resolved => "resolved".to_owned(),
        _ => alert.severity.as_str().to_owned(),
    };
    let line = format!(
        "{} {} ({state}) — {} posts, {} authors, {}",
        alert.narrative_id,
        truncate_chars(lead(alert), 140),
        alert.posts_total,
        alert.distinct_authors,
        languages_text(alert),
    );
    // The most copied representative, unless it says what the headline already does.
    let post = alert
        .representative_posts
        .iter()
        .filter_map(|p| Some((p, p.text.as_deref()?.trim())))
        .find(|(_, text)| !text.is_empty() && *text != alert.headline)
        .map(|(post, text)| {
            let text = truncate_chars(&text.replace('\n', " "), 160);
            let provenance = post.provenance();
            if provenance.is_empty() {
                format!("“{text}”")
            } else {
                format!("“{text}” ({provenance})")
            }
        });
    (line, post)
}
