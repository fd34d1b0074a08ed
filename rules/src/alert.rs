//! The alert as every part of the engine sees it: severity, state, labels, fingerprint, and the
//! notification handed to receivers. Plain data; no I/O.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

/// Labels of an alert: sorted, so fingerprints and group keys are stable.
pub type Labels = BTreeMap<String, String>;

/// How bad it is, in increasing order (so `>=` compares severities).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Minor,
    Major,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Minor => "minor",
            Severity::Major => "major",
            Severity::Critical => "critical",
        }
    }
}

impl std::str::FromStr for Severity {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "info" => Ok(Severity::Info),
            "warning" => Ok(Severity::Warning),
            "minor" => Ok(Severity::Minor),
            "major" => Ok(Severity::Major),
            "critical" => Ok(Severity::Critical),
            other => Err(format!("unknown severity {other:?} (expected info, warning, minor, major or critical)")),
        }
    }
}

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    Pending,
    Firing,
    Resolved,
}

impl AlertState {
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
            AlertState::Resolved => "resolved",
        }
    }
}

/// Stable identity of an alert: rule name plus its labels, hashed (SHA-256, first 16 hex digits).
/// The same across restarts and versions; used as the PagerDuty `dedup_key`.
pub fn fingerprint(rule: &str, labels: &Labels) -> String {
    let mut h = Sha256::new();
    h.update(rule.as_bytes());
    for (k, v) in labels {
        h.update([0xff]);
        h.update(k.as_bytes());
        h.update([0xfe]);
        h.update(v.as_bytes());
    }
    let d = h.finalize();
    d[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Why an alert is not paging although it fires.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Suppression {
    /// Matched an active silence.
    Silenced { silence_id: i64 },
    /// Inside a recurring maintenance window.
    Maintenance { window: String },
    /// A declarative inhibition rule matched another firing alert.
    Inhibited { rule: String, by_fingerprint: String },
    /// The device is reachable only through a device that is down (from the discovered topology).
    Topology { device: String },
}

impl std::fmt::Display for Suppression {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Suppression::Silenced { silence_id } => write!(f, "silenced by silence {silence_id}"),
            Suppression::Maintenance { window } => write!(f, "in maintenance window {window}"),
            Suppression::Inhibited { rule, by_fingerprint } => write!(f, "inhibited by {by_fingerprint} (rule {rule})"),
            Suppression::Topology { device } => write!(f, "suppressed by {device}"),
        }
    }
}

/// An alert as handed to a receiver: what a notification says about one alert.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertSnapshot {
    pub fingerprint: String,
    pub rule: String,
    pub severity: Severity,
    /// Firing or resolved (pending alerts are never notified).
    pub state: AlertState,
    /// All labels, including `alertname` (the rule name) and `severity`.
    pub labels: Labels,
    /// Rendered annotations: `summary`, `description` and whatever the rule defines.
    pub annotations: BTreeMap<String, String>,
    /// When the alert started firing.
    pub starts_at: DateTime<Utc>,
    /// When it resolved.
    pub ends_at: Option<DateTime<Utc>>,
    /// The condition's value when last evaluated, if numeric.
    pub value: Option<f64>,
    pub flapping: bool,
    /// Who acknowledged it and until when, if acknowledged.
    pub acknowledged_by: Option<String>,
    /// Link to the alert in netwarden.
    pub url: String,
}

/// What a notification announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotificationKind {
    /// New or still-firing alerts (initial, group interval or repeat).
    Firing,
    /// Every alert in the notification has resolved.
    Resolved,
    /// An operator acknowledged the alerts (PagerDuty: `acknowledge`).
    Acknowledged,
    /// The alert changes state too often; one notification until it settles.
    Flapping,
}

/// One notification for one receiver: a group of alerts that share the route's `group_by` labels.
/// This is what the outbox stores (no secrets: receivers resolve their keys at send time).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notification {
    /// Receiver name from the alerting configuration.
    pub receiver: String,
    /// Stable key of the group (route + group labels); Alertmanager's `groupKey`.
    pub group_key: String,
    pub group_labels: Labels,
    pub kind: NotificationKind,
    /// Escalation step that produced this notification (0 = the route's own receiver).
    pub escalation_level: u32,
    pub alerts: Vec<AlertSnapshot>,
    /// netwarden's external URL, for links back.
    pub external_url: String,
    pub created_at: DateTime<Utc>,
}

impl Notification {
    pub fn firing(&self) -> impl Iterator<Item = &AlertSnapshot> {
        self.alerts.iter().filter(|a| a.state == AlertState::Firing)
    }
    pub fn resolved(&self) -> impl Iterator<Item = &AlertSnapshot> {
        self.alerts.iter().filter(|a| a.state == AlertState::Resolved)
    }
    /// Highest severity among the alerts (info when empty).
    pub fn severity(&self) -> Severity {
        self.alerts.iter().map(|a| a.severity).max().unwrap_or(Severity::Info)
    }
    /// A one-line title, e.g. `[FIRING:2] InterfaceDown leaf1`.
    pub fn title(&self) -> String {
        let status = match self.kind {
            NotificationKind::Firing => format!("FIRING:{}", self.firing().count()),
            NotificationKind::Resolved => "RESOLVED".to_string(),
            NotificationKind::Acknowledged => "ACKNOWLEDGED".to_string(),
            NotificationKind::Flapping => "FLAPPING".to_string(),
        };
        let labels: Vec<&str> = self.group_labels.values().map(String::as_str).collect();
        format!("[{status}] {}", labels.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_stable_and_label_sensitive() {
        let mut l = Labels::new();
        l.insert("device".into(), "leaf1".into());
        let a = fingerprint("InterfaceDown", &l);
        assert_eq!(a.len(), 16);
        assert_eq!(a, fingerprint("InterfaceDown", &l));
        l.insert("interface".into(), "eth1".into());
        assert_ne!(a, fingerprint("InterfaceDown", &l));
        assert_ne!(fingerprint("a", &Labels::new()), fingerprint("b", &Labels::new()));
    }

    #[test]
    fn severities_order() {
        assert!(Severity::Critical > Severity::Major && Severity::Warning > Severity::Info);
        assert_eq!("minor".parse::<Severity>().unwrap(), Severity::Minor);
        assert!("fatal".parse::<Severity>().is_err());
    }
}
