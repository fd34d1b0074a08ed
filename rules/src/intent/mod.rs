//! The intent engine: declarative assertions about how the network should be ("every leaf has at
//! least two Established BGP sessions", "every leaf is cabled to every spine of its site"),
//! checked against what each poll just observed.
//!
//! An intent file (YAML) lists intents; each names a scope (sites, roles, tags, devices, as rules
//! do) and the checks it requires. Each poll of a device in scope gives one [`IntentResult`] per
//! intent: `pass`, `fail` (with what failed, what was observed and what was expected) or `unknown`
//! (the device did not answer, or the data a check needs has not been polled yet). Results become
//! readings of the `intent` source, so alert rules fire on violations (the built-in
//! `IntentViolated`), and changed results are written to the database (`store`) for the API and,
//! later, for remediation to propose fixes. Nothing here does I/O except `store`.

pub mod file;
pub mod store;

pub use file::{Check, CountFact, Intent, IntentError, load, parse_intents};

use crate::source::{DeviceMeta, Reading, SeriesKey, SourceKind};
use chrono::{DateTime, Utc};
use collector::observe::{Observation, Outcome};
use rhai::{Dynamic, ImmutableString};
use serde::Serialize;
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

/// The verdict of one intent on one device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Pass,
    Fail,
    Unknown,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "pass",
            Verdict::Fail => "fail",
            Verdict::Unknown => "unknown",
        }
    }

    pub fn parse(s: &str) -> Option<Verdict> {
        [Verdict::Pass, Verdict::Fail, Verdict::Unknown].into_iter().find(|v| v.as_str() == s)
    }
}

/// One check of an intent on one device: what was observed against what was expected.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct CheckOutcome {
    /// The check as written (`bgp_established`, `lldp_neighbors role=spine`, `expr`).
    pub check: String,
    pub verdict: Verdict,
    pub observed: String,
    pub expected: String,
    /// Which items are missing or wrong (absent spines, down interfaces), or why unknown.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IntentResult {
    pub intent: String,
    pub device_id: i64,
    pub device: String,
    pub verdict: Verdict,
    /// The failed (or unknown) checks in one line; empty when the intent passes.
    pub message: String,
    pub checks: Vec<CheckOutcome>,
    /// When this verdict began.
    pub since: DateTime<Utc>,
}

/// What one device's latest polls showed, as the intent checks need it.
#[derive(Debug, Clone, Default)]
pub struct DeviceFacts {
    pub reachable: bool,
    /// Why the last poll failed, when it did.
    pub failure: Option<String>,
    /// Interfaces of the last successful poll: name, admin up, oper up.
    pub interfaces: Option<Vec<(String, bool, bool)>>,
    /// BGP, OSPF and LLDP of the last poll that asked for routing state.
    pub routing: Option<RoutingFacts>,
}

#[derive(Debug, Clone, Default)]
pub struct RoutingFacts {
    /// One per session: peer address, Established.
    pub bgp: Vec<(String, bool)>,
    /// Neighbour router id, Full.
    pub ospf: Vec<(String, bool)>,
    /// LLDP/CDP neighbours: local port, remote system name (or chassis id).
    pub lldp: Vec<(String, String)>,
}

impl DeviceFacts {
    /// Updates the facts with one poll outcome (an overrun changes nothing).
    pub fn update(&mut self, obs: &Observation) {
        match &obs.outcome {
            Outcome::Polled { poll, .. } => {
                self.reachable = true;
                self.failure = None;
                let names = collector::ifmib::tracking_keys(&poll.interfaces);
                self.interfaces = Some(
                    poll.interfaces
                        .iter()
                        .zip(names)
                        .map(|(row, name)| (name, row.admin_status == Some(1), row.oper_status == Some(1)))
                        .collect(),
                );
                if let Some(r) = &poll.routing {
                    let mut bgp: Vec<(String, bool)> = Vec::new();
                    for p in &r.bgp {
                        let peer = p.peer_addr.to_string();
                        if !bgp.iter().any(|(a, _)| *a == peer) {
                            bgp.push((peer, p.state == collector::routing::BgpState::Established));
                        }
                    }
                    let ospf = r
                        .ospf_neighbors
                        .iter()
                        .map(|n| (n.router_id.to_string(), format!("{:?}", n.state).eq_ignore_ascii_case("full")))
                        .collect();
                    let lldp = r
                        .neighbors
                        .iter()
                        .map(|n| {
                            let port = n.local_if_name.clone().unwrap_or_else(|| format!("port {}", n.local_port_num));
                            (port, n.sys_name.clone().unwrap_or_else(|| n.chassis_id.clone()))
                        })
                        .collect();
                    self.routing = Some(RoutingFacts { bgp, ospf, lldp });
                }
            }
            Outcome::Failed { error, .. } => {
                self.reachable = false;
                self.failure = Some(error.clone());
            }
            Outcome::Overrun { .. } => {}
        }
    }
}

/// The inventory as intents see it: each device's metadata, and the devices of each role per site
/// (for `min: all`).
#[derive(Debug, Default)]
struct Directory {
    devices: HashMap<i64, DeviceMeta>,
    by_name: HashMap<String, i64>,
    /// (site, role) → device names, sorted.
    by_role: HashMap<(Option<String>, String), BTreeSet<String>>,
}

impl Directory {
    fn new(devices: Vec<DeviceMeta>) -> Directory {
        let mut d = Directory::default();
        for m in devices {
            if let Some(role) = &m.role {
                d.by_role.entry((m.site.clone(), role.clone())).or_default().insert(m.name.clone());
            }
            d.by_name.insert(m.name.to_ascii_lowercase(), m.id);
            d.devices.insert(m.id, m);
        }
        d
    }

    /// The inventory device an LLDP system name denotes: the same name, or its host part
    /// (`spine1.dc1.example.net` → `spine1`), case-insensitive.
    fn resolve(&self, sys_name: &str) -> Option<&DeviceMeta> {
        let lower = sys_name.to_ascii_lowercase();
        let id = self.by_name.get(&lower).or_else(|| lower.split('.').next().and_then(|h| self.by_name.get(h)))?;
        self.devices.get(id)
    }
}

/// Evaluates intents on every observation of the devices they scope.
pub struct IntentEngine {
    intents: Arc<Vec<Intent>>,
    rhai: rhai::Engine,
    directory: Directory,
    facts: HashMap<i64, DeviceFacts>,
    /// The current result per (intent index, device id).
    results: HashMap<(usize, i64), IntentResult>,
}

/// What evaluating one device gave: readings for the alert engine (every intent in scope, so the
/// engine can drop series of intents that left the scope) and the results that changed.
#[derive(Debug, Default)]
pub struct Evaluated {
    pub device_id: i64,
    pub readings: Vec<Reading>,
    pub changed: Vec<IntentResult>,
    /// Intents that no longer apply to the device (their results are deleted).
    pub removed: Vec<(String, i64)>,
}

impl IntentEngine {
    pub fn new(intents: Vec<Intent>) -> IntentEngine {
        IntentEngine {
            intents: Arc::new(intents),
            rhai: crate::rule::expr::engine(),
            directory: Directory::default(),
            facts: HashMap::new(),
            results: HashMap::new(),
        }
    }

    pub fn intents(&self) -> Arc<Vec<Intent>> {
        self.intents.clone()
    }

    /// Takes results saved before a restart, so a verdict that did not change keeps its `since`.
    pub fn restore(&mut self, saved: Vec<IntentResult>) {
        for r in saved {
            if let Some(i) = self.intents.iter().position(|x| x.name == r.intent) {
                self.results.insert((i, r.device_id), r);
            }
        }
    }

    /// Replaces the device directory. Devices that left lose their facts and results (returned,
    /// to delete them from the store).
    pub fn set_devices(&mut self, devices: Vec<DeviceMeta>) -> Vec<(String, i64)> {
        self.directory = Directory::new(devices);
        self.facts.retain(|id, _| self.directory.devices.contains_key(id));
        let mut removed = Vec::new();
        let intents = self.intents.clone();
        self.results.retain(|(i, id), _| {
            let keep = self.directory.devices.get(id).is_some_and(|m| intents[*i].scope.includes(m));
            if !keep {
                removed.push((intents[*i].name.clone(), *id));
            }
            keep
        });
        removed
    }

    /// Applies one observation and evaluates the intents that scope its device.
    pub fn observe(&mut self, obs: &Observation) -> Option<Evaluated> {
        if matches!(obs.outcome, Outcome::Overrun { .. }) || self.intents.is_empty() {
            return None;
        }
        let meta = self.directory.devices.get(&obs.device_id)?.clone();
        self.facts.entry(obs.device_id).or_default().update(obs);
        Some(self.evaluate_device(&meta, obs.at))
    }

    fn evaluate_device(&mut self, meta: &DeviceMeta, at: DateTime<Utc>) -> Evaluated {
        let none = DeviceFacts::default();
        let facts = self.facts.get(&meta.id).unwrap_or(&none);
        let mut out = Evaluated { device_id: meta.id, ..Default::default() };
        let intents = self.intents.clone();
        for (i, intent) in intents.iter().enumerate() {
            if !intent.scope.includes(meta) {
                if self.results.remove(&(i, meta.id)).is_some() {
                    out.removed.push((intent.name.clone(), meta.id));
                }
                continue;
            }
            let checks: Vec<CheckOutcome> =
                intent.checks.iter().map(|c| evaluate_check(c, meta, facts, &self.directory, &self.rhai)).collect();
            let verdict = if checks.iter().any(|c| c.verdict == Verdict::Fail) {
                Verdict::Fail
            } else if checks.iter().any(|c| c.verdict == Verdict::Unknown) {
                Verdict::Unknown
            } else {
                Verdict::Pass
            };
            let message = checks
                .iter()
                .filter(|c| c.verdict != Verdict::Pass && (verdict == Verdict::Unknown || c.verdict == Verdict::Fail))
                .map(describe)
                .collect::<Vec<_>>()
                .join("; ");
            let previous = self.results.get(&(i, meta.id));
            let since = match previous {
                Some(p) if p.verdict == verdict => p.since,
                _ => at,
            };
            let result = IntentResult {
                intent: intent.name.clone(),
                device_id: meta.id,
                device: meta.name.clone(),
                verdict,
                message,
                checks,
                since,
            };
            if previous != Some(&result) {
                out.changed.push(result.clone());
            }
            out.readings.push(reading(meta, intent, &result));
            self.results.insert((i, meta.id), result);
        }
        out
    }

    /// Current results, for tests and diagnostics.
    pub fn results(&self) -> impl Iterator<Item = &IntentResult> {
        self.results.values()
    }
}

fn describe(c: &CheckOutcome) -> String {
    let mut s = format!("{}: {}", c.check, c.observed);
    if !c.expected.is_empty() {
        s.push_str(&format!(", expected {}", c.expected));
    }
    if !c.detail.is_empty() {
        s.push_str(&format!(" ({})", c.detail));
    }
    s
}

fn text(s: &str) -> Dynamic {
    Dynamic::from(ImmutableString::from(s))
}

fn reading(meta: &DeviceMeta, intent: &Intent, r: &IntentResult) -> Reading {
    let mut labels = meta.labels();
    labels.insert("intent".into(), intent.name.clone());
    let failed = r.checks.iter().filter(|c| c.verdict == Verdict::Fail).count() as i64;
    Reading {
        key: SeriesKey { kind: SourceKind::Intent, device_id: meta.id, item: Arc::from(intent.name.as_str()) },
        labels,
        fields: vec![
            text(r.verdict.as_str()),
            Dynamic::from_bool(r.verdict == Verdict::Pass),
            Dynamic::from_int(failed),
            text(&r.message),
            text(&intent.description),
        ],
    }
}

fn outcome(check: String, pass: bool, observed: String, expected: String, detail: String) -> CheckOutcome {
    CheckOutcome { check, verdict: if pass { Verdict::Pass } else { Verdict::Fail }, observed, expected, detail }
}

fn unknown(check: String, why: &str) -> CheckOutcome {
    CheckOutcome {
        check,
        verdict: Verdict::Unknown,
        observed: "unknown".into(),
        expected: String::new(),
        detail: why.into(),
    }
}

/// The values an `expr` check sees, by name (see [`file::EXPR_FACTS`]); `None` when not polled yet.
fn fact_values(facts: &DeviceFacts) -> Vec<(&'static str, Option<i64>)> {
    let ifs = facts.interfaces.as_ref();
    let r = facts.routing.as_ref();
    let count = |v: Option<usize>| v.map(|n| n as i64);
    vec![
        ("interfaces", count(ifs.map(Vec::len))),
        ("interfaces_up", count(ifs.map(|v| v.iter().filter(|(_, _, o)| *o).count()))),
        ("interfaces_down", count(ifs.map(|v| v.iter().filter(|(_, a, o)| *a && !*o).count()))),
        ("bgp_peers", count(r.map(|r| r.bgp.len()))),
        ("bgp_established", count(r.map(|r| r.bgp.iter().filter(|(_, e)| *e).count()))),
        ("ospf_neighbors", count(r.map(|r| r.ospf.len()))),
        ("ospf_full", count(r.map(|r| r.ospf.iter().filter(|(_, f)| *f).count()))),
        ("lldp_neighbors", count(r.map(|r| r.lldp.iter().map(|(_, d)| d).collect::<BTreeSet<_>>().len()))),
    ]
}

fn evaluate_check(
    check: &Check,
    meta: &DeviceMeta,
    facts: &DeviceFacts,
    dir: &Directory,
    rhai: &rhai::Engine,
) -> CheckOutcome {
    let name = check.to_string();
    match check {
        Check::Reachable => outcome(
            name,
            facts.reachable,
            if facts.reachable { "answers".into() } else { "does not answer".into() },
            "answers".into(),
            facts.failure.clone().unwrap_or_default(),
        ),
        _ if !facts.reachable => unknown(name, "the device did not answer its last poll"),
        Check::Count { fact, role, name: pattern, min, max } => {
            let (items, missing_of): (Option<Vec<String>>, Option<BTreeSet<String>>) = match fact {
                CountFact::InterfacesUp | CountFact::InterfacesDown => {
                    let Some(ifs) = &facts.interfaces else {
                        return unknown(name, "no interface table polled yet");
                    };
                    let want_down = *fact == CountFact::InterfacesDown;
                    let items = ifs
                        .iter()
                        .filter(|(n, _, _)| pattern.as_ref().is_none_or(|p| p.is_match(n)))
                        .filter(|(_, admin, oper)| if want_down { *admin && !*oper } else { *oper })
                        .map(|(n, _, _)| n.clone())
                        .collect();
                    (Some(items), None)
                }
                CountFact::BgpEstablished | CountFact::BgpPeers => {
                    let Some(r) = &facts.routing else { return unknown(name, "no BGP state polled yet") };
                    let only_est = *fact == CountFact::BgpEstablished;
                    let items = r.bgp.iter().filter(|(_, e)| !only_est || *e).map(|(p, _)| p.clone()).collect();
                    (Some(items), None)
                }
                CountFact::OspfFull | CountFact::OspfNeighbors => {
                    let Some(r) = &facts.routing else { return unknown(name, "no OSPF state polled yet") };
                    let only_full = *fact == CountFact::OspfFull;
                    let items = r.ospf.iter().filter(|(_, f)| !only_full || *f).map(|(n, _)| n.clone()).collect();
                    (Some(items), None)
                }
                CountFact::LldpNeighbors => {
                    let Some(r) = &facts.routing else { return unknown(name, "no LLDP neighbours polled yet") };
                    // Distinct neighbouring devices (two links to one spine count once), by
                    // inventory name where the neighbour is in the inventory.
                    let mut seen = BTreeSet::new();
                    for (_, sys) in &r.lldp {
                        let known = dir.resolve(sys);
                        if let Some(role) = role
                            && known.and_then(|k| k.role.as_ref()) != Some(role)
                        {
                            continue;
                        }
                        seen.insert(known.map_or_else(|| sys.clone(), |k| k.name.clone()));
                    }
                    let expected_set = role
                        .as_ref()
                        .map(|role| dir.by_role.get(&(meta.site.clone(), role.clone())).cloned().unwrap_or_default());
                    (Some(seen.into_iter().collect()), expected_set)
                }
            };
            let items = items.unwrap_or_default();
            let n = items.len() as u64;
            let min_n = match min {
                Some(file::Bound::All) => Some(missing_of.as_ref().map_or(0, |s| s.len() as u64)),
                Some(file::Bound::N(v)) => Some(*v),
                None => None,
            };
            let pass = min_n.is_none_or(|m| n >= m) && max.is_none_or(|m| n <= m);
            let expected = match (min_n, max) {
                (Some(a), Some(b)) if a == *b => format!("exactly {a}"),
                (Some(a), Some(b)) => format!("between {a} and {b}"),
                (Some(a), None) => format!("at least {a}"),
                (None, Some(b)) => format!("at most {b}"),
                (None, None) => String::new(),
            };
            let detail = if pass {
                String::new()
            } else if let Some(all) = &missing_of {
                let have: BTreeSet<&String> = items.iter().collect();
                let missing: Vec<&str> = all.iter().filter(|d| !have.contains(d)).map(String::as_str).collect();
                if missing.is_empty() { String::new() } else { format!("missing {}", missing.join(", ")) }
            } else if max.is_some_and(|m| n > m) {
                let mut shown: Vec<&str> = items.iter().map(String::as_str).take(8).collect();
                if items.len() > 8 {
                    shown.push("…");
                }
                shown.join(", ")
            } else {
                String::new()
            };
            outcome(name, pass, n.to_string(), expected, detail)
        }
        Check::Expr { source, ast } => {
            let values = fact_values(facts);
            let missing: Vec<&str> =
                values.iter().filter(|(k, v)| v.is_none() && mentions(source, k)).map(|(k, _)| *k).collect();
            if !missing.is_empty() {
                return unknown(name, &format!("not polled yet: {}", missing.join(", ")));
            }
            let mut scope = rhai::Scope::new();
            scope.push("reachable", facts.reachable);
            for (k, v) in &values {
                scope.push_dynamic(*k, v.map_or(Dynamic::UNIT, Dynamic::from_int));
            }
            match rhai.eval_ast_with_scope::<bool>(&mut scope, ast) {
                Ok(pass) => {
                    let shown = values
                        .iter()
                        .filter(|(k, _)| mentions(source, k))
                        .map(|(k, v)| format!("{k} = {}", v.map_or("unknown".to_string(), |v| v.to_string())))
                        .collect::<Vec<_>>()
                        .join(", ");
                    outcome(name, pass, if pass { "true" } else { "false" }.into(), source.clone(), shown)
                }
                Err(e) => unknown(name, &format!("evaluation failed: {e}")),
            }
        }
    }
}

/// Whether an expression uses a name (as a whole word: `interfaces` is not in `interfaces_up`).
fn mentions(source: &str, name: &str) -> bool {
    source.match_indices(name).any(|(i, _)| {
        let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
        !source[..i].chars().next_back().is_some_and(word) && !source[i + name.len()..].chars().next().is_some_and(word)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(id: i64, name: &str, role: &str) -> DeviceMeta {
        DeviceMeta { id, name: name.into(), site: Some("dc1".into()), role: Some(role.into()), ..Default::default() }
    }

    fn engine(yaml: &str) -> IntentEngine {
        let (intents, errors) = parse_intents("t.yaml", yaml);
        assert!(errors.is_empty(), "{errors:?}");
        let mut e = IntentEngine::new(intents);
        e.set_devices(vec![
            meta(1, "leaf1", "leaf"),
            meta(2, "spine1", "spine"),
            meta(3, "spine2", "spine"),
            DeviceMeta {
                id: 4,
                name: "spine9".into(),
                site: Some("dc2".into()),
                role: Some("spine".into()),
                ..Default::default()
            },
        ]);
        e
    }

    fn facts(bgp: &[bool], lldp: &[&str], ifs: &[(&str, bool, bool)]) -> DeviceFacts {
        DeviceFacts {
            reachable: true,
            failure: None,
            interfaces: Some(ifs.iter().map(|(n, a, o)| (n.to_string(), *a, *o)).collect()),
            routing: Some(RoutingFacts {
                bgp: bgp.iter().enumerate().map(|(i, e)| (format!("10.0.0.{i}"), *e)).collect(),
                ospf: Vec::new(),
                lldp: lldp.iter().enumerate().map(|(i, d)| (format!("Ethernet{i}"), d.to_string())).collect(),
            }),
        }
    }

    fn eval(e: &mut IntentEngine, id: i64, f: DeviceFacts) -> Evaluated {
        e.facts.insert(id, f);
        let m = e.directory.devices[&id].clone();
        e.evaluate_device(&m, Utc::now())
    }

    const FABRIC: &str = r#"
intents:
  - name: leaf-bgp
    description: every leaf has two Established BGP sessions
    scope: {roles: [leaf]}
    require:
      bgp_established: {min: 2}
  - name: leaf-uplinks
    scope: {roles: [leaf]}
    require:
      lldp_neighbors: {role: spine, min: all}
      interfaces_down: {max: 0, name: "^Ethernet"}
"#;

    #[test]
    fn a_leaf_with_both_sessions_and_both_spines_passes() {
        let mut e = engine(FABRIC);
        let out =
            eval(&mut e, 1, facts(&[true, true], &["spine1", "spine2.dc1.example.net"], &[("Ethernet1", true, true)]));
        assert_eq!(out.readings.len(), 2);
        assert!(out.changed.iter().all(|r| r.verdict == Verdict::Pass), "{:#?}", out.changed);
        // Nothing changed: nothing to write.
        let again = eval(&mut e, 1, facts(&[true, true], &["spine1", "spine2"], &[("Ethernet1", true, true)]));
        assert!(again.changed.is_empty(), "{:#?}", again.changed);
    }

    #[test]
    fn a_lost_session_and_a_lost_spine_fail_with_what_is_missing() {
        let mut e = engine(FABRIC);
        let out =
            eval(&mut e, 1, facts(&[true, false], &["spine1"], &[("Ethernet1", true, false), ("mgmt0", true, false)]));
        let by: HashMap<&str, &IntentResult> = out.changed.iter().map(|r| (r.intent.as_str(), r)).collect();
        assert_eq!(by["leaf-bgp"].verdict, Verdict::Fail);
        assert_eq!(by["leaf-bgp"].message, "bgp_established: 1, expected at least 2");
        let up = by["leaf-uplinks"];
        assert_eq!(up.verdict, Verdict::Fail);
        // spine9 is in another site: not expected of leaf1; mgmt0 does not match the name filter.
        assert_eq!(
            up.message,
            "lldp_neighbors role=spine: 1, expected at least 2 (missing spine2); \
             interfaces_down name=^Ethernet: 1, expected at most 0 (Ethernet1)"
        );
        let r = &out.readings[0];
        assert_eq!(r.labels["intent"], "leaf-bgp");
        assert_eq!(r.fields[0].clone().into_immutable_string().unwrap(), "fail");
    }

    #[test]
    fn an_unreachable_device_is_unknown_unless_reachability_is_asserted() {
        let mut e = engine(
            "intents:\n  - name: up\n    require: {reachable: true}\n  - name: bgp\n    require: {bgp_established: {min: 1}}\n",
        );
        let mut f = facts(&[true], &[], &[]);
        f.reachable = false;
        f.failure = Some("timeout".into());
        let out = eval(&mut e, 2, f);
        let by: HashMap<&str, &IntentResult> = out.changed.iter().map(|r| (r.intent.as_str(), r)).collect();
        assert_eq!(by["up"].verdict, Verdict::Fail);
        assert_eq!(by["up"].message, "reachable: does not answer, expected answers (timeout)");
        assert_eq!(by["bgp"].verdict, Verdict::Unknown);
        // Never polled for routing: unknown, not a violation.
        let out = eval(&mut e, 3, DeviceFacts { reachable: true, ..Default::default() });
        let bgp = out.changed.iter().find(|r| r.intent == "bgp").unwrap();
        assert_eq!(
            (bgp.verdict, bgp.message.as_str()),
            (Verdict::Unknown, "bgp_established: unknown (no BGP state polled yet)")
        );
    }

    #[test]
    fn expressions_see_the_counts() {
        let mut e =
            engine("intents:\n  - name: redundant\n    require:\n      expr: bgp_established >= 2 || ospf_full >= 1\n");
        let out = eval(&mut e, 1, facts(&[true], &[], &[]));
        let r = &out.changed[0];
        assert_eq!(r.verdict, Verdict::Fail);
        assert_eq!(
            r.message,
            "expr: false, expected bgp_established >= 2 || ospf_full >= 1 (bgp_established = 1, ospf_full = 0)"
        );
        let out = eval(&mut e, 1, facts(&[true, true], &[], &[]));
        assert_eq!(out.changed[0].verdict, Verdict::Pass);
        // Routing not polled yet: unknown, not a violation.
        let out = eval(&mut e, 1, DeviceFacts { reachable: true, ..Default::default() });
        assert_eq!(out.changed[0].verdict, Verdict::Unknown);
        assert_eq!(out.changed[0].message, "expr: unknown (not polled yet: bgp_established, ospf_full)");
        assert!(mentions("interfaces_up > 0", "interfaces_up") && !mentions("interfaces_up > 0", "interfaces"));
    }

    #[test]
    fn leaving_the_scope_removes_the_result() {
        let mut e = engine(FABRIC);
        eval(&mut e, 1, facts(&[true, true], &["spine1", "spine2"], &[]));
        assert_eq!(e.results().count(), 2);
        let removed = e.set_devices(vec![meta(1, "leaf1", "border")]);
        assert_eq!(removed.len(), 2);
        assert_eq!(e.results().count(), 0);
    }
}
