//! Planning: a failing intent on a device, the device's current state, and the playbooks give the
//! proposed fixes. Pure: no I/O, so every decision is unit-tested here.

use crate::playbook::{ItemKind, Playbook, Playbooks, Risk, template_name};
use rules::intent::{CheckOutcome, Verdict};
use rules::source::DeviceMeta;
use serde::Serialize;
use std::collections::BTreeMap;

/// One item of a device as playbooks see it: field → value (text; absent values are empty).
pub type Item = BTreeMap<&'static str, String>;

/// A failing intent on one device.
#[derive(Debug, Clone)]
pub struct Violation {
    pub intent: String,
    pub device: DeviceMeta,
    pub platform: Option<String>,
    pub message: String,
    pub checks: Vec<CheckOutcome>,
}

impl Violation {
    /// The kinds of the failing checks (`lldp_neighbors role=spine` → `lldp_neighbors`).
    pub fn failing_kinds(&self) -> impl Iterator<Item = &str> {
        self.checks
            .iter()
            .filter(|c| c.verdict == Verdict::Fail)
            .map(|c| c.check.split_whitespace().next().unwrap_or(""))
    }

    fn device_item(&self) -> Item {
        let d = &self.device;
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        BTreeMap::from([
            ("name", d.name.clone()),
            ("role", text(&d.role)),
            ("site", text(&d.site)),
            ("vendor", text(&d.vendor)),
            ("platform", text(&self.platform)),
        ])
    }
}

/// What the planner knows of a device now: its BGP sessions and its interfaces (with the LLDP
/// neighbour each port has, or last had).
#[derive(Debug, Clone, Default)]
pub struct DeviceState {
    pub bgp_peers: Vec<Item>,
    pub interfaces: Vec<Item>,
}

/// A proposed fix, ready to store.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Proposal {
    pub device_id: i64,
    pub device: String,
    pub intent: String,
    pub playbook: String,
    /// What on the device it fixes (`bgp_peer 10.0.0.1`, `interface eth1`, `device`): with the
    /// device and the playbook, the identity of an open proposal.
    pub target: String,
    pub title: String,
    pub diagnosis: String,
    pub risk: Risk,
    pub approval_required: bool,
    pub commands: Vec<String>,
    pub rollback: Vec<String>,
    pub verify_within_s: i32,
    /// The failing checks and the item's facts, as the planner saw them.
    pub evidence: serde_json::Value,
}

/// Which risks may be applied without a person's approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// Proposals of this risk or lower need no approval; `None`: every proposal needs one.
    pub auto_apply_up_to: Option<Risk>,
}

impl Policy {
    pub fn approval_required(&self, risk: Risk) -> bool {
        self.auto_apply_up_to.is_none_or(|max| risk > max)
    }
}

fn applies(p: &Playbook, v: &Violation) -> bool {
    let w = &p.when;
    (w.intents.is_empty() || w.intents.contains(&v.intent))
        && (w.vendors.is_empty() || v.device.vendor.as_ref().is_some_and(|x| w.vendors.contains(x)))
        && w.scope.includes(&v.device)
        && (w.checks.is_empty() || v.failing_kinds().any(|k| w.checks.iter().any(|c| c == k)))
}

fn target(kind: ItemKind, item: &Item) -> String {
    match kind {
        ItemKind::BgpPeer => format!("bgp_peer {}", item.get("peer").map_or("", String::as_str)),
        ItemKind::Interface => format!("interface {}", item.get("name").map_or("", String::as_str)),
        ItemKind::Device => "device".to_string(),
    }
}

/// CLI lines of a rendered template: trimmed, empty lines dropped.
fn lines(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_string).collect()
}

/// The fixes the playbooks propose for one violation. A playbook whose condition or template fails
/// on an item is reported in the errors (with the playbook, device and item) and proposes nothing
/// for that item; the others still do.
pub fn plan(
    playbooks: &Playbooks,
    policy: &Policy,
    v: &Violation,
    state: &DeviceState,
) -> (Vec<Proposal>, Vec<String>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let device = v.device_item();
    for p in playbooks.list.iter().filter(|p| applies(p, v)) {
        let items: Vec<&Item> = match p.for_each {
            ItemKind::BgpPeer => state.bgp_peers.iter().collect(),
            ItemKind::Interface => state.interfaces.iter().collect(),
            ItemKind::Device => vec![&device],
        };
        for item in items {
            let target = target(p.for_each, item);
            if let Some((src, ast)) = &p.condition {
                let mut scope = rhai::Scope::new();
                for f in p.for_each.fields() {
                    scope.push(*f, item.get(f).cloned().unwrap_or_default());
                }
                match playbooks.rhai.eval_ast_with_scope::<bool>(&mut scope, ast) {
                    Ok(true) => {}
                    Ok(false) => continue,
                    Err(e) => {
                        errors.push(format!("playbook {:?} on {} {target}: where {src:?}: {e}", p.name, v.device.name));
                        continue;
                    }
                }
            }
            let ctx = minijinja::context! { device => &device, item => item, intent => &v.intent };
            let render = |part: &str| {
                playbooks
                    .templates
                    .get_template(&template_name(&p.name, part))
                    .and_then(|t| t.render(&ctx))
                    .map_err(|e| format!("playbook {:?} on {} {target}: {part}: {e}", p.name, v.device.name))
            };
            let rendered = (render("title"), render("diagnosis"), render("commands"), render("rollback"));
            let (title, diagnosis, commands, rollback) = match rendered {
                (Ok(t), Ok(d), Ok(c), Ok(r)) => (t, d, c, r),
                (t, d, c, r) => {
                    errors.extend([t.err(), d.err(), c.err(), r.err()].into_iter().flatten());
                    continue;
                }
            };
            let failing: Vec<&CheckOutcome> = v.checks.iter().filter(|c| c.verdict == Verdict::Fail).collect();
            out.push(Proposal {
                device_id: v.device.id,
                device: v.device.name.clone(),
                intent: v.intent.clone(),
                playbook: p.name.clone(),
                target,
                title: title.trim().to_string(),
                diagnosis: diagnosis.split_whitespace().collect::<Vec<_>>().join(" "),
                risk: p.risk,
                approval_required: policy.approval_required(p.risk),
                commands: lines(&commands),
                rollback: lines(&rollback),
                verify_within_s: p.verify_within.as_secs().min(i32::MAX as u64) as i32,
                evidence: serde_json::json!({
                    "intent": v.intent,
                    "message": v.message,
                    "failing_checks": failing,
                    p.for_each.as_str(): item,
                }),
            });
        }
    }
    (out, errors)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::playbook::{load, parse_playbooks};

    fn leaf() -> DeviceMeta {
        DeviceMeta {
            id: 7,
            name: "leaf001".into(),
            site: Some("dc1".into()),
            role: Some("leaf".into()),
            vendor: Some("netwarden-sim".into()),
            tags: vec![],
        }
    }

    fn check(check: &str, verdict: Verdict) -> CheckOutcome {
        CheckOutcome {
            check: check.into(),
            verdict,
            observed: "1".into(),
            expected: "at least 2".into(),
            detail: String::new(),
        }
    }

    fn violation(checks: Vec<CheckOutcome>) -> Violation {
        Violation {
            intent: "leaf-bgp-redundancy".into(),
            device: leaf(),
            platform: None,
            message: "bgp_established: 1, expected at least 2".into(),
            checks,
        }
    }

    fn item(fields: &[(&'static str, &str)]) -> Item {
        fields.iter().map(|(k, v)| (*k, v.to_string())).collect()
    }

    fn peer(addr: &str, admin: &str, state: &str) -> Item {
        item(&[
            ("peer", addr),
            ("remote_as", "65000"),
            ("local_as", "65101"),
            ("local_addr", ""),
            ("admin_status", admin),
            ("state", state),
            ("last_error", "6/2"),
            ("since", "2026-11-22T16:00:00Z"),
        ])
    }

    fn port(name: &str, admin: &str, oper: &str, lost: &str) -> Item {
        item(&[
            ("name", name),
            ("if_index", "1"),
            ("descr", name),
            ("alias", ""),
            ("admin", admin),
            ("oper", oper),
            ("neighbor", ""),
            ("lost_neighbor", lost),
            ("lost_port", if lost.is_empty() { "" } else { "eth1" }),
            ("lost_at", if lost.is_empty() { "" } else { "2026-11-22T16:00:00Z" }),
            ("far_admin", if lost.is_empty() { "" } else { "up" }),
        ])
    }

    const NO_AUTO: Policy = Policy { auto_apply_up_to: None };

    #[test]
    fn admin_shut_bgp_neighbor_gets_no_neighbor_shutdown() {
        let pbs = load(&["builtin".into()]).unwrap();
        let state = DeviceState {
            bgp_peers: vec![peer("10.1.0.0", "start", "established"), peer("10.1.0.2", "stop", "idle")],
            interfaces: vec![port("eth1", "up", "up", ""), port("eth2", "up", "up", "")],
        };
        let v = violation(vec![check("bgp_established", Verdict::Fail), check("reachable", Verdict::Pass)]);
        let (proposals, errors) = plan(&pbs, &NO_AUTO, &v, &state);
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(proposals.len(), 1, "{proposals:#?}");
        let p = &proposals[0];
        assert_eq!((p.playbook.as_str(), p.target.as_str()), ("bgp-neighbor-admin-shutdown", "bgp_peer 10.1.0.2"));
        assert_eq!(p.title, "Re-enable BGP neighbor 10.1.0.2 (AS 65000) on leaf001");
        assert_eq!(p.commands, ["configure terminal", "router bgp 65101", "no neighbor 10.1.0.2 shutdown", "end"]);
        assert_eq!(p.rollback, ["configure terminal", "router bgp 65101", "neighbor 10.1.0.2 shutdown", "end"]);
        assert!(
            p.diagnosis.contains("administratively shut down: state idle since 2026-11-22T16:00:00Z, last error 6/2")
        );
        assert_eq!((p.risk, p.approval_required, p.verify_within_s), (Risk::Medium, true, 60));
        assert_eq!(p.evidence["bgp_peer"]["peer"], "10.1.0.2");
        assert_eq!(p.evidence["failing_checks"][0]["check"], "bgp_established");
    }

    #[test]
    fn ports_split_by_admin_state_and_only_ports_that_had_a_neighbour() {
        let pbs = load(&["builtin".into()]).unwrap();
        let state = DeviceState {
            bgp_peers: vec![peer("10.1.0.0", "start", "active")],
            interfaces: vec![
                port("eth1", "down", "down", "spine1"),
                port("eth2", "up", "down", "spine2"),
                // Never cabled (no LLDP neighbour ever): not a fabric link, left alone.
                port("eth3", "down", "down", ""),
                port("eth4", "up", "down", ""),
                // The far end shut its port: the fix is there, not a bounce here.
                {
                    let mut p = port("eth5", "up", "down", "spine3");
                    p.insert("far_admin", "down".into());
                    p
                },
            ],
        };
        let v = violation(vec![check("lldp_neighbors role=spine", Verdict::Fail)]);
        let (proposals, errors) = plan(&pbs, &NO_AUTO, &v, &state);
        assert!(errors.is_empty(), "{errors:?}");
        let got: Vec<(&str, &str, Risk)> =
            proposals.iter().map(|p| (p.playbook.as_str(), p.target.as_str(), p.risk)).collect();
        assert_eq!(
            got,
            [
                ("interface-admin-down", "interface eth1", Risk::Medium),
                ("link-down-bounce", "interface eth2", Risk::Low)
            ]
        );
        assert_eq!(proposals[0].commands, ["configure terminal", "interface eth1", "no shutdown", "end"]);
        assert_eq!(proposals[1].commands, ["configure terminal", "interface eth2", "shutdown", "no shutdown", "end"]);
        assert!(proposals[1].diagnosis.contains("spine2 eth1"), "{}", proposals[1].diagnosis);
    }

    #[test]
    fn playbooks_answer_only_their_checks_vendors_and_scope() {
        let pbs = load(&["builtin".into()]).unwrap();
        let state = DeviceState { bgp_peers: vec![peer("10.1.0.2", "stop", "idle")], interfaces: vec![] };
        // A passing bgp check, a failing one of another kind: the BGP playbook stays out.
        let v = violation(vec![check("bgp_established", Verdict::Pass), check("ospf_full", Verdict::Fail)]);
        assert!(plan(&pbs, &NO_AUTO, &v, &state).0.is_empty());
        // A vendor whose CLI the playbook does not speak.
        let mut v = violation(vec![check("bgp_established", Verdict::Fail)]);
        v.device.vendor = Some("junos".into());
        assert!(plan(&pbs, &NO_AUTO, &v, &state).0.is_empty());
        // Scope and intent names.
        let text = "playbooks:
  - name: spine-only
    when: {intents: [leaf-bgp-redundancy], scope: {roles: [spine]}}
    for_each: device
    risk: high
    title: '{{ device.name }}'
    commands: reload
    rollback: ''
    verify: {within: 5m}
";
        let (only_spines, errors) = parse_playbooks("t", text);
        assert!(errors.is_empty(), "{errors:?}");
        let v = violation(vec![check("bgp_established", Verdict::Fail)]);
        assert!(plan(&only_spines, &NO_AUTO, &v, &state).0.is_empty());
        let mut v = v;
        v.device.role = Some("spine".into());
        let (p, _) = plan(&only_spines, &NO_AUTO, &v, &state);
        assert_eq!((p.len(), p[0].target.as_str(), p[0].verify_within_s), (1, "device", 300));
    }

    #[test]
    fn policy_decides_approval_by_risk() {
        let up_to_low = Policy { auto_apply_up_to: Some(Risk::Low) };
        assert!(!up_to_low.approval_required(Risk::Low));
        assert!(up_to_low.approval_required(Risk::Medium));
        assert!(NO_AUTO.approval_required(Risk::Low));
        let pbs = load(&["builtin".into()]).unwrap();
        let state = DeviceState { bgp_peers: vec![], interfaces: vec![port("eth2", "up", "down", "spine2")] };
        let v = violation(vec![check("lldp_neighbors role=spine", Verdict::Fail)]);
        let (p, _) = plan(&pbs, &up_to_low, &v, &state);
        assert_eq!((p[0].risk, p[0].approval_required), (Risk::Low, false));
    }

    #[test]
    fn a_condition_that_fails_at_run_time_is_reported_and_skips_only_its_item() {
        let text = "playbooks:
  - name: numeric
    for_each: interface
    where: parse_int(if_index) > 1
    risk: low
    title: '{{ item.name }}'
    commands: 'interface {{ item.name }}'
    rollback: ''
    verify: {within: 1m}
";
        let (pbs, errors) = parse_playbooks("t", text);
        assert!(errors.is_empty(), "{errors:?}");
        let mut bad = port("eth9", "up", "down", "");
        bad.insert("if_index", "nine".into());
        let mut two = port("eth2", "up", "down", "");
        two.insert("if_index", "2".into());
        let state = DeviceState { bgp_peers: vec![], interfaces: vec![bad, two] };
        let (p, errors) = plan(&pbs, &NO_AUTO, &violation(vec![check("expr", Verdict::Fail)]), &state);
        assert_eq!(p.iter().map(|p| p.target.as_str()).collect::<Vec<_>>(), ["interface eth2"]);
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].starts_with("playbook \"numeric\" on leaf001 interface eth9: where"), "{errors:?}");
    }
}
