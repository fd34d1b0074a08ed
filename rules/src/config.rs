//! The alerting file (YAML): which rule files to load, receivers, the routing tree, escalation
//! policies, inhibition rules, maintenance windows and topology suppression. Compiled once at
//! start; every problem is reported, with the line where the YAML parser knows it.

use crate::dispatch::{EscalationConfig, RouteConfig, RoutingTree};
use crate::notify::ReceiverConfig;
use crate::rule::Rule;
use crate::suppress::{InhibitRule, MaintenanceWindow, RawInhibit, RawWindow};
use serde::Deserialize;
use std::collections::BTreeSet;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertingFile {
    #[serde(default = "default_rule_files")]
    pub rule_files: Vec<String>,
    /// Intent files (declarative assertions, see `intent`); `builtin` names the shipped ones.
    #[serde(default = "default_rule_files")]
    pub intent_files: Vec<String>,
    /// Metric series: SQL queries whose rows are series of the `metric` rule source.
    #[serde(default)]
    pub metrics: Vec<crate::metric::MetricQuery>,
    #[serde(default)]
    pub external_url: Option<String>,
    #[serde(default)]
    pub receivers: Vec<ReceiverConfig>,
    pub route: Option<RouteConfig>,
    #[serde(default)]
    pub escalations: Vec<EscalationConfig>,
    #[serde(default)]
    pub inhibit_rules: Vec<RawInhibit>,
    #[serde(default)]
    pub maintenance_windows: Vec<RawWindow>,
    #[serde(default)]
    pub topology: TopologySuppression,
}

fn default_rule_files() -> Vec<String> {
    vec!["builtin".into()]
}

/// Topology-derived suppression: alerts of devices that sit only behind a down device (toward
/// devices of `root_role`) are suppressed and marked "suppressed by <device>".
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopologySuppression {
    #[serde(default = "yes")]
    pub enabled: bool,
    #[serde(default = "spine")]
    pub root_role: String,
}

fn yes() -> bool {
    true
}

fn spine() -> String {
    "spine".into()
}

impl Default for TopologySuppression {
    fn default() -> Self {
        TopologySuppression { enabled: true, root_role: spine() }
    }
}

impl Default for AlertingFile {
    fn default() -> Self {
        AlertingFile {
            rule_files: default_rule_files(),
            intent_files: default_rule_files(),
            metrics: Vec::new(),
            external_url: None,
            receivers: Vec::new(),
            route: None,
            escalations: Vec::new(),
            inhibit_rules: Vec::new(),
            maintenance_windows: Vec::new(),
            topology: TopologySuppression::default(),
        }
    }
}

/// The compiled alerting configuration.
pub struct Alerting {
    pub rules: Vec<Rule>,
    pub intents: Vec<crate::intent::Intent>,
    pub metrics: Vec<crate::metric::MetricQuery>,
    pub receivers: Vec<ReceiverConfig>,
    /// `None` when no route is configured: alerts are kept and shown, nothing is sent.
    pub routing: Option<RoutingTree>,
    pub inhibit: Vec<InhibitRule>,
    pub windows: Vec<MaintenanceWindow>,
    pub topology: TopologySuppression,
    pub external_url: String,
}

impl Alerting {
    /// Reads and compiles an alerting file; relative rule file paths are relative to it.
    pub fn load(path: Option<&std::path::Path>, default_url: &str) -> Result<Alerting, Vec<String>> {
        let (file, base, name) = match path {
            None => (AlertingFile::default(), std::path::PathBuf::from("."), "(default)".to_string()),
            Some(p) => {
                let text =
                    std::fs::read_to_string(p).map_err(|e| vec![format!("{}: cannot read: {e}", p.display())])?;
                let f: AlertingFile =
                    serde_saphyr::from_str(&text).map_err(|e| vec![format!("{}: {e}", p.display())])?;
                (f, p.parent().unwrap_or(std::path::Path::new(".")).to_path_buf(), p.display().to_string())
            }
        };
        file.compile(&base, default_url).map_err(|es| es.into_iter().map(|e| format!("{name}: {e}")).collect())
    }

    pub fn from_file(file: AlertingFile, base: &std::path::Path, default_url: &str) -> Result<Alerting, Vec<String>> {
        file.compile(base, default_url)
    }
}

impl AlertingFile {
    fn compile(self, base: &std::path::Path, default_url: &str) -> Result<Alerting, Vec<String>> {
        let mut errors = Vec::new();
        let resolve = |files: &[String]| -> Vec<String> {
            files
                .iter()
                .map(|p| {
                    if p == "builtin" || std::path::Path::new(p).is_absolute() {
                        p.clone()
                    } else {
                        base.join(p).display().to_string()
                    }
                })
                .collect()
        };
        let rules = crate::rule::load(&resolve(&self.rule_files)).unwrap_or_else(|es| {
            errors.extend(es.iter().map(ToString::to_string));
            Vec::new()
        });
        let intents = crate::intent::load(&resolve(&self.intent_files)).unwrap_or_else(|es| {
            errors.extend(es.iter().map(ToString::to_string));
            Vec::new()
        });
        let mut metric_names = BTreeSet::new();
        for m in &self.metrics {
            if let Err(e) = m.validate() {
                errors.push(e);
            } else if !metric_names.insert(m.name.clone()) {
                errors.push(format!("metric {:?} is defined twice", m.name));
            }
        }
        errors.extend(crate::notify::validate_receivers(&self.receivers).iter().map(ToString::to_string));
        let names: BTreeSet<String> = self.receivers.iter().map(|r| r.name.clone()).collect();
        let routing = match &self.route {
            None => None,
            Some(r) => match RoutingTree::compile(r, &self.escalations, &names) {
                Ok(t) => Some(t),
                Err(es) => {
                    errors.extend(es);
                    None
                }
            },
        };
        let inhibit = self.inhibit_rules.iter().filter_map(|r| r.compile().map_err(|e| errors.push(e)).ok()).collect();
        let windows =
            self.maintenance_windows.iter().filter_map(|w| w.compile().map_err(|e| errors.push(e)).ok()).collect();
        if !errors.is_empty() {
            return Err(errors);
        }
        Ok(Alerting {
            rules,
            intents,
            metrics: self.metrics,
            receivers: self.receivers,
            routing,
            inhibit,
            windows,
            topology: self.topology,
            external_url: self.external_url.unwrap_or_else(|| default_url.to_string()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_file_compiles_and_mistakes_are_all_reported() {
        let yaml = r#"
rule_files: [builtin]
receivers:
  - name: hook
    webhook: {url: "http://127.0.0.1:9/hook"}
route:
  receiver: hook
  group_wait: 1s
  routes:
    - match: ['severity="critical"']
      receiver: hook
      escalation: later
escalations:
  - name: later
    steps: [{after: 5m, receiver: hook}]
inhibit_rules:
  - name: device-down
    source_match: ['alertname="DeviceDown"']
    target_match: ['alertname!="DeviceDown"']
    equal: [device]
maintenance_windows:
  - name: weekly
    schedule: "0 3 * * 0"
    duration: 2h
topology: {root_role: border}
"#;
        let f: AlertingFile = serde_saphyr::from_str(yaml).unwrap();
        let a = Alerting::from_file(f, std::path::Path::new("."), "http://nw").unwrap();
        assert!(a.rules.len() >= 10);
        assert_eq!(a.routing.as_ref().unwrap().routes.len(), 2);
        assert_eq!((a.inhibit.len(), a.windows.len(), a.topology.root_role.as_str()), (1, 1, "border"));
        let bad = yaml
            .replace("receiver: hook\n  group_wait", "receiver: nobody\n  group_wait")
            .replace("0 3 * * 0", "sometimes");
        let f: AlertingFile = serde_saphyr::from_str(&bad).unwrap();
        let errs = Alerting::from_file(f, std::path::Path::new("."), "http://nw").err().unwrap();
        assert!(errs.iter().any(|e| e.contains("unknown receiver \"nobody\"")), "{errs:?}");
        assert!(errs.iter().any(|e| e.contains("schedule \"sometimes\"")), "{errs:?}");
        assert!(serde_saphyr::from_str::<AlertingFile>("routes: []\n").is_err());
    }
}
