//! Slack incoming-webhook messages: Block Kit blocks, a `text` fallback and a colour bar, within Slack's limits.

use serde_json::{Value, json};

use super::{alert_summary, truncate_chars};
use crate::alert::{AlertSnapshot, AlertState, Notification, NotificationKind, Severity};

/// Slack's documented limits (Block Kit reference).
pub const MAX_BLOCKS: usize = 50;
pub const MAX_HEADER_CHARS: usize = 150;
pub const MAX_SECTION_CHARS: usize = 3000;
pub const MAX_CONTEXT_CHARS: usize = 2000;

/// The colour of the attachment bar: red for critical/major, amber for minor/warning, green for info and for
/// anything resolved.
pub fn color(n: &Notification) -> &'static str {
    if n.kind == NotificationKind::Resolved {
        return "good";
    }
    match n.severity() {
        Severity::Critical | Severity::Major => "danger",
        Severity::Minor | Severity::Warning => "warning",
        Severity::Info => "good",
    }
}

/// Slack's mrkdwn needs only these three escaped.
pub fn escape_mrkdwn(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

fn alert_section(a: &AlertSnapshot) -> Value {
    let mut text = format!("*{}*", escape_mrkdwn(&alert_summary(a)));
    let mut line = Vec::new();
    if let Some(d) = a.labels.get("device") {
        line.push(format!("*Device:* {}", escape_mrkdwn(d)));
    }
    if let Some(i) = a.labels.get("interface") {
        line.push(format!("*Interface:* {}", escape_mrkdwn(i)));
    }
    line.push(format!("*Severity:* {}", a.severity.as_str()));
    line.push(format!("*Since:* {}", a.starts_at.format("%Y-%m-%d %H:%M:%SZ")));
    if a.state == AlertState::Resolved {
        match a.ends_at {
            Some(t) => line.push(format!("*Resolved:* {}", t.format("%Y-%m-%d %H:%M:%SZ"))),
            None => line.push("*Resolved*".to_string()),
        }
    }
    if let Some(by) = &a.acknowledged_by {
        line.push(format!("*Acknowledged by:* {}", escape_mrkdwn(by)));
    }
    text.push('\n');
    text.push_str(&line.join("   "));
    if !a.url.is_empty() {
        text.push_str(&format!("\n<{}|details>", a.url));
    }
    json!({"type": "section", "text": {"type": "mrkdwn", "text": truncate_chars(&text, MAX_SECTION_CHARS)}})
}

/// The webhook body for `n`. `channel` is sent when configured (only legacy webhooks honour it).
pub fn payload(n: &Notification, channel: Option<&str>) -> Value {
    let title = n.title();
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": truncate_chars(&title, MAX_HEADER_CHARS)}}),
    ];
    // Header and context take two blocks; a full message keeps one section for "…and N more".
    let room = MAX_BLOCKS - 2;
    let shown = if n.alerts.len() > room { room - 1 } else { n.alerts.len() };
    blocks.extend(n.alerts[..shown].iter().map(alert_section));
    if shown < n.alerts.len() {
        let more = format!("…and {} more", n.alerts.len() - shown);
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": more}}));
    }
    let link =
        if n.external_url.is_empty() { "netwarden".to_string() } else { format!("<{}|netwarden>", n.external_url) };
    let context = format!("{link} · receiver {} · group {}", escape_mrkdwn(&n.receiver), escape_mrkdwn(&n.group_key));
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": truncate_chars(&context, MAX_CONTEXT_CHARS)}]}));
    let status = match n.kind {
        NotificationKind::Resolved => format!("{} resolved", n.alerts.len()),
        _ => format!("{} · {} firing, {} resolved", n.severity().as_str(), n.firing().count(), n.resolved().count()),
    };
    let mut body = json!({
        "text": format!("[{}] {title}", n.severity().as_str().to_uppercase()),
        "blocks": blocks,
        "attachments": [{"color": color(n), "fallback": title, "text": status}],
    });
    if let Some(c) = channel {
        body["channel"] = Value::String(c.to_string());
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::testing::{alert, notification};

    #[test]
    fn message_has_header_sections_context_fallback_and_colour() {
        let n = notification(NotificationKind::Firing, vec![alert("leaf1", "eth1", Severity::Critical)]);
        let p = payload(&n, Some("#noc"));
        assert_eq!(p["text"], "[CRITICAL] [FIRING:1] InterfaceDown leaf1");
        assert_eq!(p["channel"], "#noc");
        let blocks = p["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 3);
        assert_eq!(blocks[0]["type"], "header");
        assert_eq!(blocks[0]["text"]["text"], "[FIRING:1] InterfaceDown leaf1");
        let section = blocks[1]["text"]["text"].as_str().unwrap();
        for part in ["*Device:* leaf1", "*Interface:* eth1", "*Severity:* critical", "*Since:* 2026-11-22 03:11:36Z"] {
            assert!(section.contains(part), "{part} missing in {section}");
        }
        assert_eq!(blocks[2]["type"], "context");
        assert!(blocks[2]["elements"][0]["text"].as_str().unwrap().starts_with("<https://nw.example.net|netwarden>"));
        assert_eq!(p["attachments"][0]["color"], "danger");
    }

    #[test]
    fn colour_follows_severity_and_resolution() {
        let with = |kind, sev| color(&notification(kind, vec![alert("d", "i", sev)]));
        assert_eq!(with(NotificationKind::Firing, Severity::Major), "danger");
        assert_eq!(with(NotificationKind::Firing, Severity::Minor), "warning");
        assert_eq!(with(NotificationKind::Firing, Severity::Warning), "warning");
        assert_eq!(with(NotificationKind::Firing, Severity::Info), "good");
        assert_eq!(with(NotificationKind::Resolved, Severity::Critical), "good");
    }

    #[test]
    fn long_messages_are_cut_to_slacks_limits() {
        let mut a = alert("leaf1", "eth1", Severity::Minor);
        a.annotations.insert("summary".into(), "x".repeat(5000));
        let mut n = notification(NotificationKind::Firing, vec![a; 120]);
        n.group_labels.insert("alertname".into(), "y".repeat(300));
        let p = payload(&n, None);
        let blocks = p["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), MAX_BLOCKS);
        assert_eq!(blocks[0]["text"]["text"].as_str().unwrap().chars().count(), MAX_HEADER_CHARS);
        for b in &blocks[1..blocks.len() - 1] {
            assert!(b["text"]["text"].as_str().unwrap().chars().count() <= MAX_SECTION_CHARS);
        }
        assert_eq!(blocks[blocks.len() - 2]["text"]["text"], "…and 73 more");
        assert!(p.get("channel").is_none());
    }

    #[test]
    fn markup_in_labels_is_escaped() {
        let mut a = alert("<leaf&1>", "eth1", Severity::Info);
        a.annotations.insert("summary".into(), "<!channel> down".into());
        let p = payload(&notification(NotificationKind::Firing, vec![a]), None);
        let section = p["blocks"][1]["text"]["text"].as_str().unwrap();
        assert!(section.contains("&lt;!channel&gt; down") && section.contains("&lt;leaf&amp;1&gt;"), "{section}");
    }
}
