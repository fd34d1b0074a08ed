//! `netwarden rules test`: unit tests for rules, like `promtool test rules`. A test file names
//! rule files, devices, input series with values at given times, and the alerts expected to be
//! firing (and pending) at given times. The runner drives the engine core with those inputs on a
//! simulated clock; nothing touches the network or the database.

use crate::alert::{AlertState, Labels};
use crate::engine::Engine;
use crate::rule::file::RuleError;
use crate::source::{DeviceMeta, Reading, SeriesKey, SourceKind};
use collector::inventory::node::{self, Node, NodeKind};
use rhai::Dynamic;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTestFile {
    rule_files: Vec<String>,
    evaluation_interval: Option<String>,
    #[serde(default)]
    devices: Vec<RawDevice>,
    tests: Vec<RawTest>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    name: String,
    site: Option<String>,
    role: Option<String>,
    vendor: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTest {
    name: String,
    #[serde(default)]
    series: Vec<RawSeries>,
    #[serde(default)]
    alerts: Vec<RawExpect>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSeries {
    source: String,
    device: String,
    #[serde(default)]
    item: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    values: Vec<BTreeMap<String, String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpect {
    at: String,
    #[serde(default)]
    firing: Vec<BTreeMap<String, String>>,
    #[serde(default)]
    pending: Vec<BTreeMap<String, String>>,
}

/// The outcome of one test case.
#[derive(Debug, Clone, PartialEq)]
pub struct CaseResult {
    pub name: String,
    pub failures: Vec<String>,
}

/// Runs a test file. `Err` for a file that cannot be read or is invalid (every error with its
/// line); `Ok` with one result per test case otherwise.
pub fn run_file(path: &Path) -> Result<Vec<CaseResult>, Vec<RuleError>> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path)
        .map_err(|e| vec![RuleError { file: file.clone(), line: 0, message: format!("cannot read: {e}") }])?;
    let base = path.parent().unwrap_or(Path::new("."));
    run_text(&file, &text, base)
}

pub fn run_text(file: &str, text: &str, base: &Path) -> Result<Vec<CaseResult>, Vec<RuleError>> {
    let fail = |line: u64, message: String| vec![RuleError { file: file.to_string(), line, message }];
    let root = node::parse(text).map_err(|e| fail(e.line.unwrap_or(1), format!("invalid YAML: {}", e.message)))?;
    if matches!(root.kind, NodeKind::Null) {
        return Err(fail(1, "empty test file".into()));
    }
    let (raw, errs) = node::from_node_collecting::<RawTestFile>(&root);
    if !errs.is_empty() {
        return Err(errs
            .iter()
            .map(|e| RuleError {
                file: file.to_string(),
                line: e.line.unwrap_or(1),
                message: match e.display_path().as_str() {
                    "" => e.message.clone(),
                    p => format!("{p}: {}", e.message),
                },
            })
            .collect());
    }
    let raw = raw.expect("no errors");
    let paths: Vec<String> = raw
        .rule_files
        .iter()
        .map(|p| if p == "builtin" { p.clone() } else { base.join(p).display().to_string() })
        .collect();
    let rules = crate::rule::load(&paths)?;
    let step = match &raw.evaluation_interval {
        Some(s) => humantime::parse_duration(s)
            .map_err(|e| fail(root.line_of("evaluation_interval"), format!("evaluation_interval: {e}")))?,
        None => Duration::from_secs(15),
    };
    if step.is_zero() {
        return Err(fail(root.line_of("evaluation_interval"), "evaluation_interval must be longer than zero".into()));
    }
    let devices: Vec<DeviceMeta> = raw
        .devices
        .iter()
        .enumerate()
        .map(|(i, d)| DeviceMeta {
            id: i as i64 + 1,
            name: d.name.clone(),
            site: d.site.clone(),
            role: d.role.clone(),
            vendor: d.vendor.clone(),
            tags: d.tags.clone(),
        })
        .collect();
    let tests_node = root.entry("tests").map(|(_, v)| v);
    let mut results = Vec::new();
    for (ti, test) in raw.tests.iter().enumerate() {
        let test_node = match tests_node.map(|n| &n.kind) {
            Some(NodeKind::Seq(items)) => items.get(ti),
            _ => None,
        };
        let line = test_node.map_or(1, |n| n.line);
        let case = run_case(file, line, test, test_node, &rules, &devices, step)?;
        results.push(case);
    }
    Ok(results)
}

fn parse_at(s: &str) -> Result<i64, String> {
    humantime::parse_duration(s).map(|d| d.as_millis() as i64).map_err(|e| format!("at: {s:?}: {e}"))
}

fn run_case(
    file: &str,
    line: u64,
    test: &RawTest,
    node: Option<&Node>,
    rules: &[crate::rule::Rule],
    devices: &[DeviceMeta],
    step: Duration,
) -> Result<CaseResult, Vec<RuleError>> {
    let fail = |message: String| {
        vec![RuleError { file: file.to_string(), line, message: format!("test {:?}: {message}", test.name) }]
    };
    let mut engine = Engine::new(rules.to_vec());
    let mut devices = devices.to_vec();
    // Devices a series names but the file does not declare get bare metadata.
    for s in &test.series {
        if !devices.iter().any(|d| d.name == s.device) {
            devices.push(DeviceMeta { id: devices.len() as i64 + 1, name: s.device.clone(), ..Default::default() });
        }
    }
    engine.set_devices(devices.clone(), 0);
    // Inputs: (time, reading) with fields carried over between points of the same series.
    let mut inputs: Vec<(i64, Reading)> = Vec::new();
    for s in &test.series {
        let kind: SourceKind = s.source.parse().map_err(|e: String| fail(format!("series: {e}")))?;
        let dev = devices.iter().find(|d| d.name == s.device).expect("added above");
        let mut labels: Labels = s.labels.clone();
        labels.insert("device".into(), dev.name.clone());
        for (k, v) in [("site", &dev.site), ("role", &dev.role), ("vendor", &dev.vendor)] {
            if let Some(v) = v {
                labels.insert(k.into(), v.clone());
            }
        }
        let item_label = match kind {
            SourceKind::Device | SourceKind::Config => None,
            SourceKind::Interface | SourceKind::LldpLink => Some("interface"),
            SourceKind::BgpPeer => Some("peer"),
            SourceKind::OspfNeighbor => Some("neighbor"),
            SourceKind::Intent => Some("intent"),
            SourceKind::Metric => Some("metric"),
        };
        if let Some(l) = item_label {
            if s.item.is_empty() {
                return Err(fail(format!("series of {}: `item` names the {l}", kind.as_str())));
            }
            labels.insert(l.into(), s.item.clone());
        }
        let mut fields = vec![Dynamic::UNIT; kind.fields().len()];
        for point in &s.values {
            let at = parse_at(point.get("at").ok_or_else(|| fail("every value needs `at`".into()))?).map_err(fail)?;
            for (name, value) in point.iter().filter(|(k, _)| k.as_str() != "at") {
                let i = kind.field_index(name).ok_or_else(|| {
                    fail(format!("{} has no field {name:?} (fields: {})", kind.as_str(), kind.fields().join(", ")))
                })?;
                fields[i] = kind.field_types()[i].parse(value).map_err(|e| fail(format!("{name}: {e}")))?;
            }
            let key = SeriesKey { kind, device_id: dev.id, item: Arc::from(s.item.as_str()) };
            inputs.push((at, Reading { key, labels: labels.clone(), fields: fields.clone() }));
        }
    }
    let mut expects = Vec::new();
    for (i, e) in test.alerts.iter().enumerate() {
        let at = parse_at(&e.at).map_err(fail)?;
        let line = node
            .and_then(|n| n.entry("alerts"))
            .and_then(|(_, v)| match &v.kind {
                NodeKind::Seq(items) => items.get(i).map(|n| n.line),
                _ => None,
            })
            .unwrap_or(line);
        expects.push((at, line, e));
    }
    let end = inputs.iter().map(|(t, _)| *t).chain(expects.iter().map(|(t, _, _)| *t)).max().unwrap_or(0);
    let mut times: Vec<i64> = inputs.iter().map(|(t, _)| *t).chain(expects.iter().map(|(t, _, _)| *t)).collect();
    let step_ms = step.as_millis() as i64;
    times.extend((0..=end / step_ms).map(|i| i * step_ms));
    times.sort_unstable();
    times.dedup();
    let mut failures = Vec::new();
    for t in times {
        let batch: Vec<Reading> = inputs.iter().filter(|(at, _)| *at == t).map(|(_, r)| r.clone()).collect();
        if !batch.is_empty() {
            engine.ingest(batch, None, false, t);
        }
        engine.tick(t);
        for (_, eline, e) in expects.iter().filter(|(at, _, _)| *at == t) {
            for (state, wanted) in [(AlertState::Firing, &e.firing), (AlertState::Pending, &e.pending)] {
                let actual: Vec<&Labels> = engine.active().filter(|a| a.state == state).map(|a| &a.labels).collect();
                let show = |ls: &[&Labels]| {
                    ls.iter()
                        .map(|l| {
                            format!("{{{}}}", l.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", "))
                        })
                        .collect::<Vec<_>>()
                        .join("; ")
                };
                let mut unmatched: Vec<&Labels> = actual.clone();
                let mut missing = Vec::new();
                for w in wanted {
                    match unmatched.iter().position(|a| w.iter().all(|(k, v)| a.get(k) == Some(v))) {
                        Some(i) => {
                            unmatched.remove(i);
                        }
                        None => missing.push(format!("{w:?}")),
                    }
                }
                if !missing.is_empty() || !unmatched.is_empty() {
                    failures.push(format!(
                        "{file}:{eline}: at {}: {} alerts differ: expected but not {}: [{}]; {} but not expected: [{}]",
                        e.at,
                        state.as_str(),
                        state.as_str(),
                        missing.join("; "),
                        state.as_str(),
                        show(&unmatched)
                    ));
                }
            }
        }
    }
    Ok(CaseResult { name: test.name.clone(), failures })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = r#"
rule_files: [builtin]
evaluation_interval: 10s
devices:
  - {name: leaf1, role: leaf, site: par1}
tests:
  - name: interface down fires at once and resolves
    series:
      - source: interface
        device: leaf1
        item: eth1
        values:
          - {at: 0s, admin_status: up, oper_status: up}
          - {at: 1m, oper_status: down}
          - {at: 3m, oper_status: up}
    alerts:
      - at: 30s
      - at: 1m
        firing: [{alertname: InterfaceDown, device: leaf1, interface: eth1, severity: major}]
      - at: 3m
  - name: bgp needs 30 s
    series:
      - source: bgp_peer
        device: leaf1
        item: 10.0.0.1
        values:
          - {at: 0s, state: established, established: true, admin_status: start}
          - {at: 20s, state: active, established: false}
    alerts:
      - at: 40s
        pending: [{alertname: BgpSessionDown, peer: 10.0.0.1}]
      - at: 50s
        firing: [{alertname: BgpSessionDown, peer: 10.0.0.1}]
"#;

    #[test]
    fn a_test_file_passes_and_a_wrong_expectation_fails_with_its_line() {
        let r = run_text("t.yaml", FILE, Path::new(".")).unwrap();
        assert_eq!(r.len(), 2);
        assert!(r.iter().all(|c| c.failures.is_empty()), "{r:#?}");
        let wrong = FILE.replace("- at: 50s", "- at: 45s");
        let r = run_text("t.yaml", &wrong, Path::new(".")).unwrap();
        assert_eq!(r[1].failures.len(), 2, "{r:#?}");
        assert!(r[1].failures[0].starts_with("t.yaml:32: at 45s: firing alerts differ"), "{}", r[1].failures[0]);
    }

    #[test]
    fn the_builtin_pack_passes_its_tests() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("builtin/rules.test.yaml");
        let r = run_file(&path).unwrap_or_else(|e| panic!("{e:#?}"));
        assert!(r.len() >= 6);
        let failed: Vec<_> = r.iter().filter(|c| !c.failures.is_empty()).collect();
        assert!(failed.is_empty(), "{failed:#?}");
    }

    #[test]
    fn invalid_test_files_say_where() {
        let e = run_text("t.yaml", "rule_files: [builtin]\ntests: []\nwat: 1\n", Path::new(".")).unwrap_err();
        assert!(e[0].to_string().starts_with("t.yaml:3:"), "{e:?}");
        let e = run_text("t.yaml", "rule_files: [nope.yaml]\ntests: []\n", Path::new("/nonexistent")).unwrap_err();
        assert!(e[0].to_string().contains("cannot read"), "{e:?}");
    }
}
