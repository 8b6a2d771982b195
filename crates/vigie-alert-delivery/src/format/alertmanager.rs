//! Alertmanager API v2 (`POST {url}/api/v2/alerts`): a JSON array of alerts with labels,
//! annotations, `startsAt`, `endsAt` and `generatorURL`.
//!
//! Every alert carries a `storyline` label (a claim's is its parent's), so `group_by:
//! [alertname, storyline]` puts a storyline and its claims in one Alertmanager group;
//! claims also carry `level="claim"` and `parent`.
//!
//! Alertmanager identifies an alert by its label set, so the `status` label is left out
//! (firing and resolved must be the same alert), and an update that changed the severity
//! also resolves the alert under its old `severity` label. A firing alert gets
//! `endsAt = now + 3 × resend interval`: re-sent in time, it stays firing; if Vigie goes
//! away, it expires by itself. A resolve sets `endsAt` to when it resolved.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};

use super::why_lines;
use vigie_domain::alert::Notification;
use vigie_domain::alert::{truncate_chars, AlertStatus};

/// Returns the `POST /api/v2/alerts` body for these notifications; `now` is the wall
/// clock at sending, `resend_secs` the policy's renotify interval (0: no `endsAt` while
/// firing, Alertmanager's `resolve_timeout` applies).
pub fn alerts(notifications: &[&Notification], now: DateTime<Utc>, resend_secs: u64) -> Value {
    let mut out = Vec::new();
    for notification in notifications {
        let alert = &notification.alert;
        let mut labels: Map<String, Value> = alert
            .labels
            .iter()
            .filter(|(name, _)| name.as_str() != "status")
            .map(|(name, value)| (name.clone(), Value::String(value.clone())))
            .collect();
        let mut annotations = Map::new();
        annotations.insert("summary".into(), alert.summary.clone().into());
        annotations.insert("title".into(), alert.title.clone().into());
        // What the narrative says, for templates: one line per representative post.
        let posts: Vec<String> = alert
            .representative_posts
            .iter()
            .filter_map(|post| {
                let text = post.text.as_deref()?.trim().replace('\n', " ");
                let provenance = post.provenance();
                Some(if provenance.is_empty() {
                    format!("“{}”", truncate_chars(&text, 200))
                } else {
                    format!("“{}” ({provenance})", truncate_chars(&text, 200))
                })
            })
            .collect();
        if !posts.is_empty() {
            annotations.insert("representative_posts".into(), posts.join("\n").into());
        }
        if let Some(parent) = &alert.parent_title {
            // Group templates show the story a claim belongs to without a lookup.
            annotations.insert("storyline_title".into(), parent.clone().into());
        }
        let mut description = why_lines(alert);
        description.push(alert.coordination.text.clone());
        if let Some(reason) = &alert.resolve_reason {
            description.push(format!("resolved: {reason}"));
        }
        annotations.insert("description".into(), description.join("\n").into());
        if let Some(runbook) = &alert.links.runbook_url {
            annotations.insert("runbook_url".into(), runbook.clone().into());
        }
        annotations.insert(
            "narrative_url".into(),
            alert.links.narrative_url.clone().into(),
        );
        annotations.insert("search_url".into(), alert.links.search_url.clone().into());
        let mut entry = json!({
            "labels": labels.clone(),
            "annotations": annotations,
            "startsAt": alert.starts_at,
            "generatorURL": alert.links.narrative_url,
        });
        match alert.status {
            AlertStatus::Resolved => {
                // Never in the future, or Alertmanager would keep it firing until then.
                let ends_at = alert.ends_at.unwrap_or(now).min(now);
                entry["endsAt"] = json!(ends_at.max(alert.starts_at));
            }
            AlertStatus::Firing if resend_secs > 0 => {
                let resend =
                    Duration::seconds(i64::try_from(resend_secs).unwrap_or(i64::MAX / 4000));
                entry["endsAt"] = json!(now + resend * 3);
            }
            AlertStatus::Firing => {}
        }
        if let Some(previous) = notification.previous_severity {
            labels.insert("severity".into(), previous.as_str().into());
            let mut old = entry.clone();
            old["labels"] = Value::Object(labels);
            old["endsAt"] = json!(now.max(alert.starts_at));
            out.push(old);
        }
        out.push(entry);
    }
    Value::Array(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie_alert::fixtures::notification;
    use vigie_domain::alert::AlertSeverity;
    use vigie_domain::alert::NotificationKind;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    #[test]
    fn firing_alerts_expire_unless_re_sent() {
        let firing = notification(3, NotificationKind::Firing);
        let body = alerts(&[&firing], now(), 900);
        let alert = &body[0];
        assert_eq!(alert["labels"]["alertname"], "VigieNarrative");
        assert_eq!(alert["labels"]["severity"], "warning");
        assert_eq!(alert["labels"]["narrative_id"], "n3");
        assert_eq!(alert["labels"]["rule"], "default");
        assert!(alert["labels"].get("status").is_none());
        assert_eq!(alert["startsAt"], json!(firing.alert.starts_at));
        assert_eq!(alert["endsAt"], json!(now() + Duration::seconds(2700)));
        assert_eq!(alert["generatorURL"], firing.alert.links.narrative_url);
        for key in [
            "summary",
            "description",
            "runbook_url",
            "narrative_url",
            "search_url",
        ] {
            assert!(alert["annotations"][key].is_string(), "annotation {key}");
        }
        assert!(alerts(&[&firing], now(), 0)[0].get("endsAt").is_none());
    }

    #[test]
    fn resolve_sets_ends_at_with_the_same_labels() {
        let firing = notification(3, NotificationKind::Firing);
        let resolved = notification(3, NotificationKind::Resolved);
        let body = alerts(&[&resolved], now(), 900);
        assert_eq!(body[0]["endsAt"], json!(resolved.alert.ends_at.unwrap()));
        assert_eq!(
            body[0]["labels"],
            alerts(&[&firing], now(), 900)[0]["labels"]
        );
    }

    #[test]
    fn severity_change_resolves_the_old_label_set() {
        let mut updated = notification(3, NotificationKind::Updated);
        updated.previous_severity = Some(AlertSeverity::Info);
        let body = alerts(&[&updated], now(), 900);
        assert_eq!(body.as_array().unwrap().len(), 2);
        assert_eq!(body[0]["labels"]["severity"], "info");
        assert_eq!(body[0]["endsAt"], json!(now()));
        assert_eq!(body[1]["labels"]["severity"], "warning");
    }
}
