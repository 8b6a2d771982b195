//! Request bodies for each sink kind, built from notifications. Pure functions: the
//! delivery workers add headers, signatures and the network.

pub mod alertmanager;
pub mod group;
pub mod slack;
pub mod teams;

use serde_json::{json, Value};

use vigie_domain::alert::Alert;
use vigie_domain::alert::Notification;

/// Returns the generic webhook body, in the Standard Webhooks payload shape:
/// `{"type": "vigie.alert.<kind>", "timestamp": <event time>, "data": <notification>}`.
/// A claim's notification says where it belongs in `data.alert`: `level` (`storyline` or
/// `claim`), `parent` (its storyline's id) and `parent_title`; `data.with_parent` marks a
/// claim resolved together with its storyline.
pub fn webhook_body(notification: &Notification) -> Value {
    json!({
        "type": format!("vigie.alert.{}", notification.kind.as_str()),
        "timestamp": notification.at,
        "data": notification,
    })
}

/// Returns the notification as one JSON line (file and stdout sinks), without newline.
pub fn json_line(notification: &Notification) -> String {
    serde_json::to_string(notification).expect("a notification always serializes")
}

/// Returns "why it fired" as short lines: top terms with z and counts vs baseline, growth.
pub(crate) fn why_lines(alert: &Alert) -> Vec<String> {
    let reasons = &alert.reasons;
    let mut lines = vec![format!(
        "growth {:.1}× baseline (z {:.1}): {:.0} posts in window vs {:.1} usual",
        reasons.growth_ratio,
        reasons.growth_z,
        reasons.posts_in_window,
        reasons.baseline_posts_per_window
    )];
    lines.extend(reasons.terms.iter().map(|t| {
        format!(
            "{} — z {:.1}, {:.0} posts in window vs {:.1} usual",
            t.term, t.z, t.posts_in_window, t.baseline_mean
        )
    }));
    lines.extend(reasons.severity_reasons.iter().cloned());
    lines.extend(
        reasons
            .watch_matches
            .iter()
            .map(|(watch, posts)| format!("watchlist {watch}: {posts} posts")),
    );
    lines
}

/// Returns languages as `en 300, fr 10`.
pub(crate) fn languages_text(alert: &Alert) -> String {
    if alert.languages.is_empty() {
        return "unknown".into();
    }
    alert
        .languages
        .iter()
        .take(5)
        .map(|(lang, posts)| format!("{lang} {posts}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Returns top accounts as `3f9a… (40), …`.
pub(crate) fn accounts_text(alert: &Alert) -> String {
    if alert.top_accounts.is_empty() {
        return "none known".into();
    }
    alert
        .top_accounts
        .iter()
        .map(|a| format!("{} ({})", a.account, a.posts))
        .collect::<Vec<_>>()
        .join(", ")
}
