//! Alertmanager's formats: the webhook payload version "4" (what Alertmanager sends to webhook receivers, so any
//! consumer of Alertmanager accepts netwarden) and the alerts pushed to Alertmanager's `POST /api/v2/alerts`.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::alert::{AlertSnapshot, AlertState, Labels, Notification};

/// Go's zero time, which Alertmanager writes as `endsAt` of an alert that has not ended.
pub const GO_ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// Alertmanager's webhook body, version 4, with its field order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookMessage {
    pub receiver: String,
    pub status: String,
    pub alerts: Vec<WebhookAlert>,
    pub group_labels: Labels,
    pub common_labels: Labels,
    pub common_annotations: BTreeMap<String, String>,
    #[serde(rename = "externalURL")]
    pub external_url: String,
    pub version: String,
    pub group_key: String,
    pub truncated_alerts: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WebhookAlert {
    pub status: String,
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: String,
    pub ends_at: String,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
    pub fingerprint: String,
}

/// Timestamps as Go's RFC 3339 with nanoseconds writes them (UTC, `Z`, no trailing zero fraction).
pub fn go_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn status(a: &AlertSnapshot) -> &'static str {
    match a.state {
        AlertState::Resolved => "resolved",
        AlertState::Firing | AlertState::Pending => "firing",
    }
}

/// Labels (or annotations) that every alert has with the same value.
fn common<'a>(maps: impl IntoIterator<Item = &'a BTreeMap<String, String>>) -> BTreeMap<String, String> {
    let mut iter = maps.into_iter();
    let Some(first) = iter.next() else { return BTreeMap::new() };
    let mut common = first.clone();
    for m in iter {
        common.retain(|k, v| m.get(k) == Some(v));
    }
    common
}

/// The webhook payload for `n` as receiver `receiver`; `max_alerts` 0 sends all, else the first `max_alerts`
/// (the rest counted in `truncatedAlerts`), as Alertmanager does.
pub fn webhook_message(n: &Notification, receiver: &str, max_alerts: usize) -> WebhookMessage {
    let keep = if max_alerts == 0 { n.alerts.len() } else { max_alerts.min(n.alerts.len()) };
    let alerts = n.alerts[..keep]
        .iter()
        .map(|a| WebhookAlert {
            status: status(a).to_string(),
            labels: a.labels.clone(),
            annotations: a.annotations.clone(),
            starts_at: go_time(a.starts_at),
            ends_at: a.ends_at.map(go_time).unwrap_or_else(|| GO_ZERO_TIME.to_string()),
            generator_url: a.url.clone(),
            fingerprint: a.fingerprint.clone(),
        })
        .collect();
    // Common labels and the status are computed over all alerts, truncated or not, as in Alertmanager.
    let any_firing = n.alerts.iter().any(|a| a.state != AlertState::Resolved);
    WebhookMessage {
        receiver: receiver.to_string(),
        status: if any_firing { "firing" } else { "resolved" }.to_string(),
        alerts,
        group_labels: n.group_labels.clone(),
        common_labels: common(n.alerts.iter().map(|a| &a.labels)),
        common_annotations: common(n.alerts.iter().map(|a| &a.annotations)),
        external_url: n.external_url.clone(),
        version: "4".to_string(),
        group_key: n.group_key.clone(),
        truncated_alerts: (n.alerts.len() - keep) as u64,
    }
}

/// One alert as Alertmanager's v2 API takes it (`postableAlert`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PostableAlert {
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub starts_at: String,
    /// Set for resolved alerts; absent for firing ones (Alertmanager then applies its `resolve_timeout`, so the
    /// engine re-sends active alerts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<String>,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
}

/// The body of `POST /api/v2/alerts` for `n`.
pub fn postable_alerts(n: &Notification) -> Vec<PostableAlert> {
    n.alerts
        .iter()
        .map(|a| PostableAlert {
            labels: a.labels.clone(),
            annotations: a.annotations.clone(),
            starts_at: go_time(a.starts_at),
            ends_at: match a.state {
                AlertState::Resolved => Some(go_time(a.ends_at.unwrap_or(n.created_at))),
                _ => None,
            },
            generator_url: a.url.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{NotificationKind, Severity};
    use crate::notify::testing::{alert, notification};
    use chrono::TimeZone;

    #[test]
    fn webhook_payload_is_alertmanagers_version_4() {
        let mut resolved = alert("leaf1", "eth2", Severity::Critical);
        resolved.state = AlertState::Resolved;
        resolved.ends_at = Some(Utc.with_ymd_and_hms(2026, 11, 22, 4, 0, 0).unwrap());
        resolved.annotations.insert("summary".into(), "eth2 down on leaf1".into());
        let n = notification(NotificationKind::Firing, vec![alert("leaf1", "eth1", Severity::Critical), resolved]);
        let v = serde_json::to_value(webhook_message(&n, "hook", 0)).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected = [
            "receiver",
            "status",
            "alerts",
            "groupLabels",
            "commonLabels",
            "commonAnnotations",
            "externalURL",
            "version",
            "groupKey",
            "truncatedAlerts",
        ];
        expected.sort();
        assert_eq!(keys, expected);
        assert_eq!(v["version"], "4");
        assert_eq!(v["status"], "firing");
        assert_eq!(v["receiver"], "hook");
        assert_eq!(v["truncatedAlerts"], 0);
        assert_eq!(v["alerts"][0]["endsAt"], GO_ZERO_TIME);
        assert_eq!(v["alerts"][0]["startsAt"], "2026-11-22T03:11:36Z");
        assert_eq!(v["alerts"][1]["status"], "resolved");
        assert_eq!(v["alerts"][1]["endsAt"], "2026-11-22T04:00:00Z");
        assert_eq!(v["alerts"][0]["generatorURL"], n.alerts[0].url);
        assert_eq!(v["alerts"][0]["fingerprint"], n.alerts[0].fingerprint);
        assert_eq!(v["commonLabels"]["device"], "leaf1");
        assert!(v["commonLabels"].get("interface").is_none());
        assert!(v["commonAnnotations"].get("summary").is_none());
        assert_eq!(v["externalURL"], "https://nw.example.net");
        // Field order on the wire is Alertmanager's.
        let text = serde_json::to_string(&webhook_message(&n, "hook", 0)).unwrap();
        assert!(
            text.starts_with(r#"{"receiver":"hook","status":"firing","alerts":[{"status":"firing","labels":"#),
            "{text}"
        );
    }

    #[test]
    fn max_alerts_truncates_and_counts() {
        let n = notification(NotificationKind::Firing, vec![alert("a", "1", Severity::Info); 5]);
        let m = webhook_message(&n, "hook", 2);
        assert_eq!((m.alerts.len(), m.truncated_alerts), (2, 3));
        let mut all_resolved = n.clone();
        all_resolved.alerts.iter_mut().for_each(|a| a.state = AlertState::Resolved);
        assert_eq!(webhook_message(&all_resolved, "hook", 0).status, "resolved");
    }

    #[test]
    fn pushed_alerts_end_only_when_resolved() {
        let mut resolved = alert("leaf1", "eth2", Severity::Critical);
        resolved.state = AlertState::Resolved;
        let n = notification(NotificationKind::Firing, vec![alert("leaf1", "eth1", Severity::Critical), resolved]);
        let v = serde_json::to_value(postable_alerts(&n)).unwrap();
        assert!(v[0].get("endsAt").is_none());
        // No ends_at on the snapshot: the notification's time stands in.
        assert_eq!(v[1]["endsAt"], go_time(n.created_at));
        assert_eq!(v[0]["labels"]["alertname"], "InterfaceDown");
        assert_eq!(v[0]["generatorURL"], n.alerts[0].url);
    }
}
