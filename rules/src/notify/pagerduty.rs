//! PagerDuty Events API v2: one event per alert, deduplicated on the alert's fingerprint.

use chrono::SecondsFormat;
use serde_json::{Value, json};

use super::{alert_summary, truncate_chars};
use crate::alert::{AlertSnapshot, AlertState, Notification, NotificationKind, Severity};

/// PagerDuty's limit on `payload.summary`.
pub const MAX_SUMMARY_CHARS: usize = 1024;
/// PagerDuty's limit on `dedup_key`.
pub const MAX_DEDUP_KEY_CHARS: usize = 255;

/// netwarden's severities onto PagerDuty's four.
pub fn severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "critical",
        Severity::Major => "error",
        Severity::Minor | Severity::Warning => "warning",
        Severity::Info => "info",
    }
}

/// What PagerDuty is told about one alert of a notification. A resolved alert is resolved whatever the
/// notification's kind, so a group that mixes firing and resolved alerts never re-triggers the resolved ones.
pub fn event_action(kind: NotificationKind, a: &AlertSnapshot) -> &'static str {
    if a.state == AlertState::Resolved {
        return "resolve";
    }
    match kind {
        NotificationKind::Firing | NotificationKind::Flapping => "trigger",
        NotificationKind::Acknowledged => "acknowledge",
        NotificationKind::Resolved => "resolve",
    }
}

/// The events for `n`, one per alert, in the notification's order.
pub fn events(n: &Notification, routing_key: &str) -> Vec<Value> {
    n.alerts.iter().map(|a| event(n, a, routing_key)).collect()
}

fn event(n: &Notification, a: &AlertSnapshot, routing_key: &str) -> Value {
    let action = event_action(n.kind, a);
    let dedup_key = truncate_chars(&a.fingerprint, MAX_DEDUP_KEY_CHARS);
    if action != "trigger" {
        return json!({"routing_key": routing_key, "event_action": action, "dedup_key": dedup_key});
    }
    let mut summary = alert_summary(a);
    if n.kind == NotificationKind::Flapping || a.flapping {
        summary = format!("[FLAPPING] {summary}");
    }
    let mut payload = json!({
        "summary": truncate_chars(&summary, MAX_SUMMARY_CHARS),
        "source": a.labels.get("device").map(String::as_str).unwrap_or("netwarden"),
        "severity": severity(a.severity),
        "timestamp": a.starts_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        "class": a.rule,
        "custom_details": {
            "labels": a.labels,
            "annotations": a.annotations,
            "value": a.value,
            "flapping": a.flapping,
        },
    });
    if let Some(i) = a.labels.get("interface") {
        payload["component"] = json!(i);
    }
    if let Some(s) = a.labels.get("site") {
        payload["group"] = json!(s);
    }
    let mut links = Vec::new();
    if !a.url.is_empty() {
        links.push(json!({"href": a.url, "text": "alert in netwarden"}));
    }
    for key in ["runbook_url", "dashboard_url"] {
        if let Some(href) = a.annotations.get(key) {
            links.push(json!({"href": href, "text": key.trim_end_matches("_url")}));
        }
    }
    let client_url = if a.url.is_empty() { &n.external_url } else { &a.url };
    let mut e = json!({
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": dedup_key,
        "payload": payload,
        "client": "netwarden",
        "links": links,
    });
    if !client_url.is_empty() {
        e["client_url"] = json!(client_url);
    }
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::notify::testing::{alert, notification};

    fn validator() -> jsonschema::Validator {
        let doc: Value =
            serde_json::from_str(include_str!("../../testdata/pagerduty-events-v2.json")).expect("schema is JSON");
        let mut schema =
            doc["paths"]["/enqueue"]["post"]["requestBody"]["content"]["application/json"]["schema"].clone();
        // The request schema's $refs point into the document's components.
        schema["components"] = doc["components"].clone();
        jsonschema::draft4::new(&schema).expect("PagerDuty's schema compiles")
    }

    fn assert_valid(v: &jsonschema::Validator, event: &Value) {
        let errors: Vec<String> = v.iter_errors(event).map(|e| format!("{e} at {}", e.instance_path())).collect();
        assert!(errors.is_empty(), "{event:#} does not match PagerDuty's schema: {errors:?}");
    }

    #[test]
    fn every_kind_produces_events_that_match_pagerdutys_schema() {
        let v = validator();
        let mut resolved = alert("leaf2", "eth2", Severity::Major);
        resolved.state = AlertState::Resolved;
        for kind in [
            NotificationKind::Firing,
            NotificationKind::Resolved,
            NotificationKind::Acknowledged,
            NotificationKind::Flapping,
        ] {
            let n = notification(kind, vec![alert("leaf1", "eth1", Severity::Critical), resolved.clone()]);
            let events = events(&n, "R0123456789abcdef0123456789abcde");
            assert_eq!(events.len(), 2);
            for e in &events {
                assert_valid(&v, e);
            }
            assert_eq!(events[1]["event_action"], "resolve", "resolved alerts are resolved in a {kind:?} notification");
        }
        // The schema itself rejects what PagerDuty rejects.
        assert!(!v.is_valid(&json!({"routing_key": "k", "event_action": "explode"})));
        assert!(!v.is_valid(&json!({"routing_key": "k", "event_action": "trigger", "payload": {"summary": "s", "source": "x", "severity": "error!"}})));
    }

    #[test]
    fn a_trigger_carries_the_alert() {
        let mut a = alert("leaf1", "eth1", Severity::Critical);
        a.annotations.insert("runbook_url".into(), "https://wiki.example.net/ifdown".into());
        a.value = Some(0.0);
        let n = notification(NotificationKind::Firing, vec![a.clone()]);
        let e = &events(&n, "key")[0];
        assert_eq!(e["event_action"], "trigger");
        assert_eq!(e["dedup_key"], a.fingerprint);
        assert_eq!(e["client"], "netwarden");
        assert_eq!(e["client_url"], a.url);
        let p = &e["payload"];
        assert_eq!(p["summary"], "eth1 down on leaf1");
        assert_eq!(p["source"], "leaf1");
        assert_eq!(p["severity"], "critical");
        assert_eq!(p["timestamp"], "2026-11-22T03:11:36Z");
        assert_eq!(p["component"], "eth1");
        assert_eq!(p["group"], "ams1");
        assert_eq!(p["class"], "InterfaceDown");
        assert_eq!(p["custom_details"]["labels"]["device"], "leaf1");
        assert_eq!(p["custom_details"]["annotations"]["summary"], "eth1 down on leaf1");
        assert_eq!(p["custom_details"]["value"], 0.0);
        assert_eq!(e["links"][1], json!({"href": "https://wiki.example.net/ifdown", "text": "runbook"}));
    }

    #[test]
    fn acknowledge_and_resolve_carry_only_the_key() {
        let a = alert("leaf1", "eth1", Severity::Warning);
        let ack = &events(&notification(NotificationKind::Acknowledged, vec![a.clone()]), "key")[0];
        assert_eq!(ack, &json!({"routing_key": "key", "event_action": "acknowledge", "dedup_key": a.fingerprint}));
        let res = &events(&notification(NotificationKind::Resolved, vec![a.clone()]), "key")[0];
        assert_eq!(res["event_action"], "resolve");
    }

    #[test]
    fn severities_map_onto_pagerdutys() {
        let got: Vec<&str> = [Severity::Critical, Severity::Major, Severity::Minor, Severity::Warning, Severity::Info]
            .map(severity)
            .into();
        assert_eq!(got, ["critical", "error", "warning", "warning", "info"]);
    }

    #[test]
    fn summary_and_source_have_limits_and_defaults() {
        let mut a = alert("leaf1", "eth1", Severity::Info);
        a.annotations.insert("summary".into(), "é".repeat(3000));
        a.labels.remove("device");
        let e = &events(&notification(NotificationKind::Flapping, vec![a]), "key")[0];
        let summary = e["payload"]["summary"].as_str().unwrap();
        assert_eq!(summary.chars().count(), MAX_SUMMARY_CHARS);
        assert!(summary.starts_with("[FLAPPING] éé"));
        assert_eq!(e["payload"]["source"], "netwarden");
    }
}
