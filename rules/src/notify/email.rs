//! E-mail notifications: subject, plain-text and HTML bodies (HTML-escaped), and the multipart/alternative message.

use std::fmt::Write;

use lettre::Message;
use lettre::message::{Mailbox, MultiPart};

use super::alert_summary;
use crate::alert::{AlertSnapshot, AlertState, Notification};

/// `[CRITICAL] [FIRING:2] InterfaceDown leaf1`.
pub fn subject(n: &Notification) -> String {
    format!("[{}] {}", n.severity().as_str().to_uppercase(), n.title())
}

fn since(a: &AlertSnapshot) -> String {
    let mut s = format!("since {}", a.starts_at.format("%Y-%m-%d %H:%M:%S UTC"));
    if a.state == AlertState::Resolved {
        match a.ends_at {
            Some(t) => write!(s, ", resolved {}", t.format("%Y-%m-%d %H:%M:%S UTC")).unwrap(),
            None => s.push_str(", resolved"),
        }
    }
    s
}

/// The plain-text part.
pub fn text_body(n: &Notification) -> String {
    let mut out = format!("{}\n\n", n.title());
    for a in &n.alerts {
        writeln!(out, "* {} [{} {}]", alert_summary(a), a.severity.as_str(), a.state.as_str()).unwrap();
        writeln!(out, "  {}", since(a)).unwrap();
        for (k, v) in &a.labels {
            writeln!(out, "  {k} = {v}").unwrap();
        }
        if let Some(by) = &a.acknowledged_by {
            writeln!(out, "  acknowledged by {by}").unwrap();
        }
        if !a.url.is_empty() {
            writeln!(out, "  {}", a.url).unwrap();
        }
        out.push('\n');
    }
    if !n.external_url.is_empty() {
        writeln!(out, "netwarden: {}", n.external_url).unwrap();
    }
    out
}

/// Escapes text for HTML element content and double-quoted attributes.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The HTML part; every value from an alert is escaped.
pub fn html_body(n: &Notification) -> String {
    let e = escape_html;
    let mut out = String::from("<!DOCTYPE html>\n<html><body style=\"font-family: sans-serif\">\n");
    writeln!(out, "<h2>{}</h2>", e(&n.title())).unwrap();
    for a in &n.alerts {
        out.push_str("<div style=\"margin-bottom: 1em\">\n");
        writeln!(
            out,
            "<p><b>{}</b> [{} {}]<br>{}</p>",
            e(&alert_summary(a)),
            a.severity.as_str(),
            a.state.as_str(),
            e(&since(a))
        )
        .unwrap();
        out.push_str("<table>\n");
        for (k, v) in &a.labels {
            writeln!(out, "<tr><td>{}</td><td>{}</td></tr>", e(k), e(v)).unwrap();
        }
        out.push_str("</table>\n");
        if let Some(by) = &a.acknowledged_by {
            writeln!(out, "<p>acknowledged by {}</p>", e(by)).unwrap();
        }
        if !a.url.is_empty() {
            writeln!(out, "<p><a href=\"{}\">details</a></p>", e(&a.url)).unwrap();
        }
        out.push_str("</div>\n");
    }
    if !n.external_url.is_empty() {
        writeln!(out, "<p><a href=\"{}\">netwarden</a></p>", e(&n.external_url)).unwrap();
    }
    out.push_str("</body></html>\n");
    out
}

/// The whole message: multipart/alternative with the plain-text and HTML parts.
pub fn message(n: &Notification, from: &Mailbox, to: &[Mailbox]) -> Result<Message, lettre::error::Error> {
    let mut b = Message::builder().from(from.clone()).subject(subject(n));
    for t in to {
        b = b.to(t.clone());
    }
    b.multipart(MultiPart::alternative_plain_html(text_body(n), html_body(n)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{NotificationKind, Severity};
    use crate::notify::testing::{alert, notification};

    #[test]
    fn subject_names_severity_status_and_group() {
        let n = notification(
            NotificationKind::Firing,
            vec![alert("leaf1", "eth1", Severity::Critical), alert("leaf1", "eth2", Severity::Minor)],
        );
        assert_eq!(subject(&n), "[CRITICAL] [FIRING:2] InterfaceDown leaf1");
    }

    #[test]
    fn html_part_escapes_everything_from_the_alert() {
        let mut a = alert("leaf<1>", "eth1", Severity::Major);
        a.annotations.insert("summary".into(), "<script>alert('x')</script> & more".into());
        let n = notification(NotificationKind::Firing, vec![a]);
        let html = html_body(&n);
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; more"), "{html}");
        assert!(html.contains("<td>leaf&lt;1&gt;</td>"), "{html}");
        let text = text_body(&n);
        assert!(text.contains("<script>alert('x')</script> & more"), "plain text stays plain: {text}");
        assert!(text.contains("device = leaf<1>"), "{text}");
    }

    #[test]
    fn message_is_multipart_alternative() {
        let n = notification(NotificationKind::Resolved, vec![alert("leaf1", "eth1", Severity::Info)]);
        let from: Mailbox = "netwarden <nw@example.net>".parse().unwrap();
        let m = message(&n, &from, &["noc@example.net".parse().unwrap()]).unwrap();
        let raw = String::from_utf8(m.formatted()).unwrap();
        assert!(raw.contains("Subject: [INFO] [RESOLVED] InterfaceDown leaf1"), "{raw}");
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(raw.contains("text/plain") && raw.contains("text/html"), "{raw}");
    }
}
