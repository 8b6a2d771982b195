//! Slack incoming webhook messages in Block Kit, within Slack's limits: at most 50 blocks
//! a message, 150 characters in a header, 3000 in a section text, 10 fields of 2000.
//! See <https://api.slack.com/reference/block-kit/blocks>.
//!
//! One message per group, laid out by storyline ([`super::group`]): each storyline's alert
//! in full, its claims as a list under it (up to [`MAX_CLAIMS_LISTED`] by name, the rest
//! counted).

use serde_json::{json, Value};

use super::group::{self, claim_text, families, icon, MAX_CLAIMS_LISTED};
use super::{accounts_text, languages_text, why_lines};
use vigie_domain::alert::truncate_chars;
use vigie_domain::alert::{Notification, NotificationKind};

/// Alerts rendered in full in one message (7 blocks each, plus a group heading: ≤ 50
/// blocks); claims are listed more briefly.
pub const MAX_ALERTS_PER_MESSAGE: usize = 6;
/// Slack's block count limit per message.
pub const MAX_BLOCKS: usize = 50;
/// Slack's header text limit.
pub const MAX_HEADER_CHARS: usize = 150;
/// Slack's section text limit.
pub const MAX_SECTION_CHARS: usize = 3000;
/// Slack's section field text limit.
pub const MAX_FIELD_CHARS: usize = 2000;
/// Claims per section of a claim list (a claim takes at most about 550 characters).
const CLAIMS_PER_SECTION: usize = 5;

/// Returns the message for one group of notifications.
pub fn message(notifications: &[&Notification]) -> Value {
    let mut blocks: Vec<Value> = Vec::new();
    let families = families(notifications);
    let own_total: usize = families.iter().map(|f| f.own.len()).sum();
    let claims_total: usize = families.iter().map(|f| f.claims.len()).sum();
    let shown = own_total.min(MAX_ALERTS_PER_MESSAGE);
    if notifications.len() > 1 {
        let what = match (own_total, claims_total) {
            (_, 0) => format!("{own_total} narrative alerts"),
            (0, _) => format!(
                "{claims_total} claim alert{}",
                if claims_total == 1 { "" } else { "s" }
            ),
            _ => format!(
                "{own_total} storyline alert{} and {claims_total} claim{}",
                if own_total == 1 { "" } else { "s" },
                if claims_total == 1 { "" } else { "s" }
            ),
        };
        blocks.push(section(&format!(
            "*{what}*{}",
            if shown < own_total {
                format!(" ({shown} shown; the rest in Vigie's alert list)")
            } else {
                String::new()
            }
        )));
    }
    // Claim blocks are kept for: each family's list fits in what the full alerts leave.
    let mut full_left = shown;
    let mut claims_left = MAX_CLAIMS_LISTED;
    let mut first = true;
    for family in &families {
        for notification in &family.own {
            if full_left == 0 {
                break;
            }
            full_left -= 1;
            if !first {
                blocks.push(json!({"type": "divider"}));
            }
            first = false;
            blocks.extend(alert_blocks(notification));
        }
        if !family.claims.is_empty() {
            if family.own.is_empty() && !first {
                blocks.push(json!({"type": "divider"}));
            }
            first = false;
            blocks.extend(claim_blocks(family, &mut claims_left));
        }
    }
    if blocks.len() > MAX_BLOCKS {
        blocks.truncate(MAX_BLOCKS - 1);
        blocks.push(json!({
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": "More in Vigie's alert list."}],
        }));
    }
    let fallback = notifications
        .iter()
        .map(|n| format!("[{}] {}", label(n), n.alert.summary))
        .collect::<Vec<_>>()
        .join("\n");
    json!({
        "text": truncate_chars(&fallback, MAX_SECTION_CHARS),
        "blocks": blocks,
    })
}

/// Returns a family's claims as a heading and sections of short lines.
fn claim_blocks(family: &group::Family<'_>, budget: &mut usize) -> Vec<Value> {
    let (listed, more) = family.listed_claims(*budget);
    *budget -= listed.len();
    let mut blocks = vec![section(&format!("*{}*", escape(&family.claims_heading())))];
    for chunk in listed.chunks(CLAIMS_PER_SECTION) {
        let mut text = String::new();
        for notification in chunk {
            let (line, post) = claim_text(notification);
            let link_text = format!(
                "<{}|{}>",
                link(&notification.alert.links.narrative_url),
                notification.alert.narrative_id
            );
            let line =
                escape(&line).replacen(&notification.alert.narrative_id.to_string(), &link_text, 1);
            text.push_str(&format!("{} {line}\n", icon(&notification.alert)));
            if let Some(post) = post {
                text.push_str(&format!("      {}\n", escape(&post)));
            }
        }
        blocks.push(section(&text));
    }
    if more > 0 {
        blocks.push(json!({
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": format!("… and {more} more claim{} in Vigie's alert list", if more == 1 { "" } else { "s" })}],
        }));
    }
    blocks
}

fn label(notification: &Notification) -> String {
    match notification.kind {
        NotificationKind::Resolved => "RESOLVED".into(),
        NotificationKind::Updated => format!("UPDATED {}", notification.alert.severity),
        _ => notification.alert.severity.as_str().to_uppercase(),
    }
}

fn alert_blocks(notification: &Notification) -> Vec<Value> {
    let alert = &notification.alert;
    let icon = icon(alert);
    let header = format!("{icon} [{}] {}", label(notification), alert.title);
    let mut summary = escape(&alert.summary);
    if let Some(reason) = &alert.resolve_reason {
        summary.push_str(&format!("\n*Resolved:* {}", escape(reason)));
    }
    if let Some(previous) = notification.previous_severity {
        summary.push_str(&format!(
            "\n*Severity changed:* {previous} → {}",
            alert.severity
        ));
    }
    let fields = [
        ("Severity", alert.severity.as_str().to_owned()),
        (
            "Narrative",
            format!(
                "{} ({})",
                alert.narrative_id,
                alert.narrative_status.as_str()
            ),
        ),
        (
            "Posts / authors",
            format!("{} / {}", alert.posts_total, alert.distinct_authors),
        ),
        (
            "Growth",
            format!("{:.1}× baseline", alert.reasons.growth_ratio),
        ),
        ("Languages", languages_text(alert)),
        ("Coordination", format!("{:.2}", alert.coordination.score)),
        ("Top accounts", accounts_text(alert)),
        ("Rule", alert.rule.clone()),
    ];
    let fields: Vec<Value> = fields
        .iter()
        .map(|(name, value)| {
            json!({
                "type": "mrkdwn",
                "text": truncate_chars(&format!("*{name}*\n{}", escape(value)), MAX_FIELD_CHARS),
            })
        })
        .collect();
    let mut why = String::from("*Why it fired*\n");
    for line in why_lines(alert) {
        why.push_str(&format!("• {}\n", escape(&line)));
    }
    why.push_str(&format!("• {}", escape(&alert.coordination.text)));
    let mut posts = String::from("*Representative posts*\n");
    for post in &alert.representative_posts {
        let text = post
            .text
            .as_deref()
            .map(|t| format!(" — {}", escape(&truncate_chars(&t.replace('\n', " "), 200))))
            .unwrap_or_default();
        let provenance = post.provenance();
        let provenance = if provenance.is_empty() {
            String::new()
        } else {
            format!(" _({})_", escape(&provenance))
        };
        match &post.url {
            Some(url) => posts.push_str(&format!(
                "• <{}|{}>{provenance}{text}\n",
                link(url),
                escape(&post.id)
            )),
            // Its text says more than a bare id would.
            None if post.text.is_some() => {
                posts.push_str(&format!("•{provenance}{text}\n"));
            }
            None => posts.push_str(&format!("• {}{provenance}\n", escape(&post.id))),
        }
    }
    let mut links = vec![
        format!("<{}|narrative>", link(&alert.links.narrative_url)),
        format!("<{}|search its posts>", link(&alert.links.search_url)),
    ];
    if let Some(runbook) = &alert.links.runbook_url {
        links.insert(0, format!("<{}|runbook>", link(runbook)));
    }
    links.push(format!("fingerprint `{}`", alert.fingerprint));
    vec![
        json!({
            "type": "header",
            "text": {"type": "plain_text", "text": truncate_chars(&header, MAX_HEADER_CHARS), "emoji": true},
        }),
        section(&summary),
        json!({"type": "section", "fields": fields}),
        section(&why),
        section(&posts),
        json!({
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": truncate_chars(&links.join(" · "), MAX_SECTION_CHARS)}],
        }),
    ]
}

fn section(text: &str) -> Value {
    json!({
        "type": "section",
        "text": {"type": "mrkdwn", "text": truncate_chars(text, MAX_SECTION_CHARS)},
    })
}

/// Escapes the three characters Slack's mrkdwn treats as control characters.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Makes a URL safe inside `<url|label>`.
fn link(url: &str) -> String {
    url.replace('|', "%7C")
        .replace('>', "%3E")
        .replace('<', "%3C")
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie_alert::fixtures::notification;

    #[test]
    fn stays_within_slack_limits() {
        let mut long = notification(1, NotificationKind::Firing);
        long.alert.title = "é".repeat(400);
        long.alert.summary = "<b>".repeat(2000);
        long.alert.reasons.severity_reasons = vec!["x".repeat(5000)];
        let group: Vec<Notification> = (0..20).map(|_| long.clone()).collect();
        let refs: Vec<&Notification> = group.iter().collect();
        let body = message(&refs);
        let blocks = body["blocks"].as_array().unwrap();
        assert!(blocks.len() <= MAX_BLOCKS, "{} blocks", blocks.len());
        for block in blocks {
            match block["type"].as_str().unwrap() {
                "header" => {
                    let text = block["text"]["text"].as_str().unwrap();
                    assert!(text.chars().count() <= MAX_HEADER_CHARS);
                    assert_eq!(block["text"]["type"], "plain_text");
                }
                "section" => {
                    if let Some(text) = block["text"]["text"].as_str() {
                        assert!(text.chars().count() <= MAX_SECTION_CHARS);
                        assert!(!text.contains("<b>"), "mrkdwn is escaped");
                    }
                    if let Some(fields) = block["fields"].as_array() {
                        assert!(fields.len() <= 10);
                        for field in fields {
                            let text = field["text"].as_str().unwrap();
                            assert!(text.chars().count() <= MAX_FIELD_CHARS);
                        }
                    }
                }
                "context" | "divider" => {}
                other => panic!("unexpected block {other}"),
            }
        }
        assert!(body["text"].as_str().unwrap().chars().count() <= MAX_SECTION_CHARS);
    }

    #[test]
    fn one_alert_reads_well() {
        let mut n = notification(7, NotificationKind::Resolved);
        n.alert.representative_posts[0].url = Some("https://x.example/a|b".into());
        let body = message(&[&n]);
        let blocks = body["blocks"].as_array().unwrap();
        assert_eq!(blocks[0]["type"], "header");
        assert!(blocks[0]["text"]["text"]
            .as_str()
            .unwrap()
            .starts_with("✅ [RESOLVED]"));
        let text = body.to_string();
        assert!(text.contains("<https://x.example/a%7Cb|p1>"), "{text}");
        assert!(text.contains("/api/v1/narratives/n7|narrative>"));
    }
}
