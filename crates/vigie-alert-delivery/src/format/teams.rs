//! Microsoft Teams workflow webhook messages: one Adaptive Card 1.4 per group, in the
//! envelope Teams workflows ("Post to a channel when a webhook request is received")
//! expect. See <https://adaptivecards.io/explorer/>.
//!
//! The card is laid out by storyline ([`super::group`]): each storyline's alert in full,
//! its claims as a list under it (up to [`MAX_CLAIMS_LISTED`] by name, the rest counted).

use serde_json::{json, Value};

use super::group::{claim_text, families, Family, MAX_CLAIMS_LISTED};
use super::{accounts_text, languages_text, why_lines};
use vigie_domain::alert::Notification;
use vigie_domain::alert::{truncate_chars, AlertSeverity, AlertStatus};

/// Alerts rendered in full in one card (Teams refuses messages above about 28 KB); claims
/// are listed more briefly.
pub const MAX_ALERTS_PER_CARD: usize = 5;

/// Returns the message for one group of notifications.
pub fn message(notifications: &[&Notification]) -> Value {
    let mut body: Vec<Value> = Vec::new();
    let families = families(notifications);
    let own_total: usize = families.iter().map(|f| f.own.len()).sum();
    let claims_total: usize = families.iter().map(|f| f.claims.len()).sum();
    if notifications.len() > 1 {
        let text = if claims_total == 0 {
            format!("{own_total} narrative alerts")
        } else {
            format!(
                "{own_total} storyline alert{} and {claims_total} claim{}",
                if own_total == 1 { "" } else { "s" },
                if claims_total == 1 { "" } else { "s" }
            )
        };
        body.push(json!({
            "type": "TextBlock",
            "text": text,
            "weight": "Bolder",
            "size": "Medium",
        }));
    }
    let mut full_left = MAX_ALERTS_PER_CARD;
    let mut claims_left = MAX_CLAIMS_LISTED;
    let mut first = true;
    for family in &families {
        for notification in &family.own {
            if full_left == 0 {
                break;
            }
            full_left -= 1;
            body.push(container(notification, !first));
            first = false;
        }
        if !family.claims.is_empty() {
            body.push(claims_container(family, &mut claims_left, !first));
            first = false;
        }
    }
    json!({
        "type": "message",
        "attachments": [{
            "contentType": "application/vnd.microsoft.card.adaptive",
            "contentUrl": null,
            "content": {
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "msteams": {"width": "Full"},
                "body": body,
            },
        }],
    })
}

/// Returns a family's claims: a heading, one line each (linked to the claim in Vigie) and
/// how many more there are.
fn claims_container(family: &Family<'_>, budget: &mut usize, separator: bool) -> Value {
    let (listed, more) = family.listed_claims(*budget);
    *budget -= listed.len();
    let mut items = vec![json!({
        "type": "TextBlock",
        "text": truncate_chars(&family.claims_heading(), 300),
        "weight": "Bolder",
        "wrap": true,
    })];
    for notification in listed {
        let (line, post) = claim_text(notification);
        let id = notification.alert.narrative_id.to_string();
        let line = line.replacen(
            &id,
            &format!("[{id}]({})", notification.alert.links.narrative_url),
            1,
        );
        let mut text = format!("- {line}");
        if let Some(post) = post {
            text.push_str(&format!("\n\n  {post}"));
        }
        items.push(text_block(&text));
    }
    if more > 0 {
        items.push(text_block(&format!(
            "… and {more} more claim{} in Vigie's alert list",
            if more == 1 { "" } else { "s" }
        )));
    }
    json!({
        "type": "Container",
        "separator": separator,
        "items": items,
    })
}

fn container(notification: &Notification, separator: bool) -> Value {
    let alert = &notification.alert;
    let color = match (alert.status, alert.severity) {
        (AlertStatus::Resolved, _) => "Good",
        (_, AlertSeverity::Critical) => "Attention",
        (_, AlertSeverity::Warning) => "Warning",
        (_, AlertSeverity::Info) => "Accent",
    };
    let mut items = vec![
        json!({
            "type": "TextBlock",
            "text": truncate_chars(
                &format!("[{}] {}", notification.kind.as_str().to_uppercase(), alert.title),
                200,
            ),
            "size": "Large",
            "weight": "Bolder",
            "color": color,
            "wrap": true,
        }),
        text_block(&alert.summary),
    ];
    if let Some(reason) = &alert.resolve_reason {
        items.push(text_block(&format!("Resolved: {reason}")));
    }
    items.push(json!({
        "type": "FactSet",
        "facts": [
            {"title": "Severity", "value": alert.severity.as_str()},
            {"title": "Narrative", "value": format!("{} ({})", alert.narrative_id, alert.narrative_status.as_str())},
            {"title": "Posts / authors", "value": format!("{} / {}", alert.posts_total, alert.distinct_authors)},
            {"title": "Growth", "value": format!("{:.1}× baseline", alert.reasons.growth_ratio)},
            {"title": "Languages", "value": languages_text(alert)},
            {"title": "Coordination", "value": truncate_chars(&alert.coordination.text, 400)},
            {"title": "Top accounts", "value": accounts_text(alert)},
            {"title": "Rule", "value": alert.rule},
        ],
    }));
    let why: Vec<String> = why_lines(alert)
        .into_iter()
        .map(|line| format!("- {}", truncate_chars(&line, 300)))
        .collect();
    items.push(text_block(&format!(
        "**Why it fired**\n\n{}",
        why.join("\n")
    )));
    let posts: Vec<String> = alert
        .representative_posts
        .iter()
        .map(|post| {
            // Its text says more than a bare id would.
            let handle = match &post.url {
                Some(url) => format!("[{}]({})", post.id, url),
                None if post.text.is_some() => String::new(),
                None => post.id.clone(),
            };
            let provenance = post.provenance();
            let provenance = if provenance.is_empty() {
                String::new()
            } else {
                format!(" *({provenance})*")
            };
            let text = post
                .text
                .as_deref()
                .map(|t| format!(" — {}", truncate_chars(&t.replace('\n', " "), 200)))
                .unwrap_or_default();
            format!("- {handle}{provenance}{text}").replacen("-  ", "- ", 1)
        })
        .collect();
    if !posts.is_empty() {
        items.push(text_block(&format!(
            "**Representative posts**\n\n{}",
            posts.join("\n")
        )));
    }
    let mut actions = Vec::new();
    if let Some(runbook) = &alert.links.runbook_url {
        actions.push(open_url("Runbook", runbook));
    }
    actions.push(open_url("Narrative", &alert.links.narrative_url));
    actions.push(open_url("Search its posts", &alert.links.search_url));
    items.push(json!({"type": "ActionSet", "actions": actions}));
    json!({
        "type": "Container",
        "separator": separator,
        "style": if alert.status == AlertStatus::Resolved { "good" } else { "emphasis" },
        "items": items,
    })
}

fn text_block(text: &str) -> Value {
    json!({"type": "TextBlock", "text": truncate_chars(text, 2000), "wrap": true})
}

fn open_url(title: &str, url: &str) -> Value {
    json!({"type": "Action.OpenUrl", "title": title, "url": url})
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie_alert::fixtures::notification;
    use vigie_domain::alert::NotificationKind;

    #[test]
    fn card_has_the_workflow_envelope_and_adaptive_card_shape() {
        let firing = notification(1, NotificationKind::Firing);
        let resolved = notification(2, NotificationKind::Resolved);
        let body = message(&[&firing, &resolved]);
        assert_eq!(body["type"], "message");
        let attachment = &body["attachments"][0];
        assert_eq!(
            attachment["contentType"],
            "application/vnd.microsoft.card.adaptive"
        );
        let card = &attachment["content"];
        assert_eq!(card["type"], "AdaptiveCard");
        assert_eq!(card["version"], "1.4");
        let containers: Vec<&Value> = card["body"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|b| b["type"] == "Container")
            .collect();
        assert_eq!(containers.len(), 2);
        let items = containers[0]["items"].as_array().unwrap();
        assert_eq!(items[0]["color"], "Warning");
        assert!(items.iter().any(|i| i["type"] == "FactSet"));
        let actions = items.last().unwrap()["actions"].as_array().unwrap();
        assert_eq!(actions[0]["type"], "Action.OpenUrl");
        assert_eq!(actions[0]["url"], "https://wiki.example/runbook");
        assert_eq!(
            containers[1]["items"][0]["color"], "Good",
            "resolved alerts are green"
        );
        assert!(body.to_string().contains("[p1](https://x.example/p1)"));
    }
}
