//! From alert changes to notifications: the routing tree (matchers → receiver, `group_by`,
//! group wait / interval / repeat, `continue`), aggregation groups, escalation policies (not
//! acknowledged within N minutes → notify the next receiver), acknowledgements, and the rule
//! that a resolved notification always follows a firing one, whatever was silenced meanwhile.
//! Pure state with time passed in; the service persists groups and enqueues what `tick` returns.

use crate::alert::{AlertSnapshot, AlertState, Labels, Notification, NotificationKind, Suppression};
use crate::matcher::{Matcher, all_match};
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

/// A route as written in the alerting file; unset fields are inherited from the parent.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    pub receiver: Option<String>,
    #[serde(default, rename = "match")]
    pub matchers: Vec<String>,
    pub group_by: Option<Vec<String>>,
    pub group_wait: Option<String>,
    pub group_interval: Option<String>,
    pub repeat_interval: Option<String>,
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
    pub escalation: Option<String>,
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationConfig {
    pub name: String,
    pub steps: Vec<EscalationStepConfig>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EscalationStepConfig {
    pub after: String,
    pub receiver: String,
}

/// A compiled route (flattened: `children` index into the route list).
#[derive(Debug, Clone)]
pub struct Route {
    pub id: usize,
    pub path: String,
    pub receiver: String,
    pub matchers: Vec<Matcher>,
    pub group_by: Vec<String>,
    pub group_wait: Duration,
    pub group_interval: Duration,
    pub repeat_interval: Duration,
    pub continue_matching: bool,
    pub escalation: Option<usize>,
    pub children: Vec<usize>,
}

#[derive(Debug, Clone)]
pub struct Escalation {
    pub name: String,
    pub steps: Vec<(Duration, String)>,
}

/// The compiled routing tree.
#[derive(Debug, Clone)]
pub struct RoutingTree {
    pub routes: Vec<Route>,
    pub escalations: Vec<Escalation>,
}

impl RoutingTree {
    /// Compiles the tree; `receivers` are the names that exist. Every problem is reported.
    pub fn compile(
        root: &RouteConfig,
        escalations: &[EscalationConfig],
        receivers: &BTreeSet<String>,
    ) -> Result<RoutingTree, Vec<String>> {
        let mut errors = Vec::new();
        let mut compiled_esc = Vec::new();
        for e in escalations {
            let mut steps = Vec::new();
            let mut last = Duration::ZERO;
            for s in &e.steps {
                match humantime::parse_duration(&s.after) {
                    Ok(d) if d > last => {
                        last = d;
                        steps.push((d, s.receiver.clone()));
                    }
                    Ok(_) => {
                        errors.push(format!("escalation {:?}: steps must come later and later ({})", e.name, s.after))
                    }
                    Err(err) => errors.push(format!("escalation {:?}: after {:?}: {err}", e.name, s.after)),
                }
                if !receivers.contains(&s.receiver) {
                    errors.push(format!("escalation {:?}: unknown receiver {:?}", e.name, s.receiver));
                }
            }
            compiled_esc.push(Escalation { name: e.name.clone(), steps });
        }
        let defaults = Route {
            id: 0,
            path: "route".into(),
            receiver: String::new(),
            matchers: Vec::new(),
            group_by: vec!["alertname".into(), "device".into()],
            group_wait: Duration::from_secs(10),
            group_interval: Duration::from_secs(60),
            repeat_interval: Duration::from_secs(4 * 3600),
            continue_matching: false,
            escalation: None,
            children: Vec::new(),
        };
        let mut routes = Vec::new();
        fn add(
            cfg: &RouteConfig,
            parent: &Route,
            path: String,
            routes: &mut Vec<Route>,
            esc: &[Escalation],
            receivers: &BTreeSet<String>,
            errors: &mut Vec<String>,
        ) -> usize {
            let dur = |v: &Option<String>, inherited: Duration, what: &str, errors: &mut Vec<String>| match v {
                None => inherited,
                Some(s) => humantime::parse_duration(s).unwrap_or_else(|e| {
                    errors.push(format!("{path}: {what} {s:?}: {e}"));
                    inherited
                }),
            };
            let mut r = Route {
                id: routes.len(),
                path: path.clone(),
                receiver: cfg.receiver.clone().unwrap_or_else(|| parent.receiver.clone()),
                matchers: Vec::new(),
                group_by: cfg.group_by.clone().unwrap_or_else(|| parent.group_by.clone()),
                group_wait: dur(&cfg.group_wait, parent.group_wait, "group_wait", errors),
                group_interval: dur(&cfg.group_interval, parent.group_interval, "group_interval", errors),
                repeat_interval: dur(&cfg.repeat_interval, parent.repeat_interval, "repeat_interval", errors),
                continue_matching: cfg.continue_matching,
                escalation: parent.escalation,
                children: Vec::new(),
            };
            for m in &cfg.matchers {
                match Matcher::parse(m) {
                    Ok(m) => r.matchers.push(m),
                    Err(e) => errors.push(format!("{path}: {e}")),
                }
            }
            if let Some(name) = &cfg.escalation {
                match esc.iter().position(|e| &e.name == name) {
                    Some(i) => r.escalation = Some(i),
                    None => errors.push(format!("{path}: unknown escalation {name:?}")),
                }
            }
            if r.receiver.is_empty() {
                errors.push(format!("{path}: no receiver (the root route must name one)"));
            } else if !receivers.contains(&r.receiver) {
                errors.push(format!("{path}: unknown receiver {:?}", r.receiver));
            }
            let id = r.id;
            routes.push(r);
            let me = routes[id].clone();
            for (i, child) in cfg.routes.iter().enumerate() {
                let c = add(child, &me, format!("{path}.routes[{i}]"), routes, esc, receivers, errors);
                routes[id].children.push(c);
            }
            id
        }
        add(root, &defaults, "route".into(), &mut routes, &compiled_esc, receivers, &mut errors);
        if errors.is_empty() { Ok(RoutingTree { routes, escalations: compiled_esc }) } else { Err(errors) }
    }

    /// The routes an alert with `labels` goes to (Alertmanager semantics: depth first, the first
    /// matching child unless it says `continue`; a node no child matched takes it itself).
    pub fn matching(&self, labels: &Labels) -> Vec<usize> {
        let mut out = Vec::new();
        self.walk(0, labels, &mut out);
        out
    }

    fn walk(&self, id: usize, labels: &Labels, out: &mut Vec<usize>) -> bool {
        let r = &self.routes[id];
        if id != 0 && !all_match(&r.matchers, labels) {
            return false;
        }
        let mut matched_child = false;
        for &c in &r.children {
            if self.walk(c, labels, out) {
                matched_child = true;
                if !self.routes[c].continue_matching {
                    break;
                }
            }
        }
        if !matched_child {
            out.push(id);
        }
        true
    }
}

/// An alert inside a group, with what has been notified about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupAlert {
    pub alert: AlertSnapshot,
    pub suppressed: Option<Suppression>,
    pub acknowledged: bool,
    pub flapping: bool,
    /// A firing notification went out for it (so a resolved one must follow).
    pub notified_firing: bool,
}

/// An aggregation group: one route, one set of group label values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Group {
    pub key: String,
    pub route: usize,
    pub receiver: String,
    pub labels: Labels,
    pub alerts: BTreeMap<String, GroupAlert>,
    pub next_flush: Option<DateTime<Utc>>,
    pub last_flush: Option<DateTime<Utc>>,
    /// Receivers that were sent firing alerts of this group (route and escalation), for resolves.
    pub notified: BTreeSet<String>,
    /// When the first firing notification went out and how many escalation steps were taken.
    pub escalation_since: Option<DateTime<Utc>>,
    pub escalation_level: usize,
}

/// An alert change as the dispatcher sees it.
#[derive(Debug, Clone)]
pub struct AlertUpdate {
    pub alert: AlertSnapshot,
    pub suppressed: Option<Suppression>,
    pub acknowledged: bool,
    pub flapping: bool,
    /// The alert just started flapping: notify that once, now.
    pub flapping_started: bool,
}

pub struct Dispatcher {
    tree: RoutingTree,
    pub groups: BTreeMap<String, Group>,
    external_url: String,
    /// Groups changed or removed since [`Dispatcher::take_changed`], so the service saves only those.
    changed: BTreeSet<String>,
}

fn group_key(route: &Route, labels: &Labels) -> (String, Labels) {
    let group_labels: Labels =
        route.group_by.iter().filter_map(|k| labels.get(k).map(|v| (k.clone(), v.clone()))).collect();
    let mut h = Sha256::new();
    h.update(route.path.as_bytes());
    for (k, v) in &group_labels {
        h.update([0xff]);
        h.update(k.as_bytes());
        h.update([0xfe]);
        h.update(v.as_bytes());
    }
    let d = h.finalize();
    let hex: String = d[..8].iter().map(|b| format!("{b:02x}")).collect();
    (format!("{}:{hex}", route.path), group_labels)
}

fn add(t: DateTime<Utc>, d: Duration) -> DateTime<Utc> {
    t + chrono::Duration::from_std(d).unwrap_or(chrono::Duration::MAX)
}

impl Dispatcher {
    pub fn new(tree: RoutingTree, external_url: impl Into<String>) -> Dispatcher {
        Dispatcher { tree, groups: BTreeMap::new(), external_url: external_url.into(), changed: BTreeSet::new() }
    }

    /// The keys of the groups changed or removed since the last call.
    pub fn take_changed(&mut self) -> BTreeSet<String> {
        std::mem::take(&mut self.changed)
    }

    pub fn tree(&self) -> &RoutingTree {
        &self.tree
    }

    /// Restores groups saved by the service (after a restart). Groups of routes that no longer
    /// exist are dropped.
    pub fn restore(&mut self, groups: Vec<Group>) {
        for g in groups {
            if g.route < self.tree.routes.len() {
                self.groups.insert(g.key.clone(), g);
            }
        }
    }

    /// Records an alert change (firing, resolved, suppression or acknowledgement changed) and
    /// returns immediate notifications (flapping, acknowledged); the rest comes from `tick`.
    pub fn update(&mut self, u: AlertUpdate, now: DateTime<Utc>) -> Vec<Notification> {
        let mut out = Vec::new();
        let routes = self.tree.matching(&u.alert.labels);
        for rid in routes {
            let route = &self.tree.routes[rid];
            let (key, labels) = group_key(route, &u.alert.labels);
            let fp = u.alert.fingerprint.clone();
            let firing = u.alert.state == AlertState::Firing;
            if !firing && !self.groups.get(&key).is_some_and(|g| g.alerts.contains_key(&fp)) {
                continue; // resolved before anything knew of it
            }
            self.changed.insert(key.clone());
            let group = self.groups.entry(key.clone()).or_insert_with(|| Group {
                key: key.clone(),
                route: rid,
                receiver: route.receiver.clone(),
                labels,
                alerts: BTreeMap::new(),
                next_flush: None,
                last_flush: None,
                notified: BTreeSet::new(),
                escalation_since: None,
                escalation_level: 0,
            });
            let previous = group.alerts.get(&fp).cloned();
            let was_acked = previous.as_ref().is_some_and(|p| p.acknowledged);
            let notified_firing = previous.as_ref().is_some_and(|p| p.notified_firing);
            let entry = GroupAlert {
                alert: u.alert.clone(),
                suppressed: u.suppressed.clone(),
                acknowledged: u.acknowledged,
                flapping: u.flapping,
                notified_firing,
            };
            let pages_now = firing && entry.suppressed.is_none() && !entry.flapping && !entry.notified_firing;
            // A flapping alert's resolve waits until it settles (then its state is notified once).
            let resolve_due = !firing && notified_firing && !entry.flapping;
            group.alerts.insert(fp.clone(), entry);
            if u.flapping_started {
                out.push(Notification {
                    receiver: group.receiver.clone(),
                    group_key: key.clone(),
                    group_labels: group.labels.clone(),
                    kind: NotificationKind::Flapping,
                    escalation_level: 0,
                    alerts: vec![u.alert.clone()],
                    external_url: self.external_url.clone(),
                    created_at: now,
                });
            }
            if u.acknowledged && !was_acked && notified_firing {
                for receiver in &group.notified {
                    out.push(Notification {
                        receiver: receiver.clone(),
                        group_key: key.clone(),
                        group_labels: group.labels.clone(),
                        kind: NotificationKind::Acknowledged,
                        escalation_level: 0,
                        alerts: vec![u.alert.clone()],
                        external_url: self.external_url.clone(),
                        created_at: now,
                    });
                }
            }
            if firing && was_acked && !u.acknowledged && notified_firing {
                // An acknowledgement taken back (or expired): escalation resumes, counted from now.
                group.escalation_since.get_or_insert(now);
            }
            if pages_now || resolve_due {
                let at = match group.last_flush {
                    None => add(now, route.group_wait),
                    Some(last) => add(last, route.group_interval).max(now),
                };
                group.next_flush = Some(group.next_flush.map_or(at, |n| n.min(at)));
            }
            if !firing && !notified_firing {
                group.alerts.remove(&fp);
            }
            if group.alerts.is_empty() {
                self.groups.remove(&key);
            }
        }
        out
    }

    /// Notifications due at `now`: group flushes, repeats and escalation steps.
    pub fn tick(&mut self, now: DateTime<Utc>) -> Vec<Notification> {
        let mut out = Vec::new();
        let mut empty = Vec::new();
        for (key, g) in self.groups.iter_mut() {
            let route = &self.tree.routes[g.route];
            // Cheap time checks first: most groups have nothing due at most ticks.
            let next_due = g.next_flush.is_some_and(|n| n <= now);
            let repeat_window = g.last_flush.is_some_and(|l| add(l, route.repeat_interval) <= now);
            let paging: Vec<&GroupAlert> = if next_due || repeat_window {
                g.alerts
                    .values()
                    .filter(|a| a.alert.state == AlertState::Firing && a.suppressed.is_none() && !a.flapping)
                    .collect()
            } else {
                Vec::new()
            };
            let repeat_due = repeat_window && paging.iter().any(|a| a.notified_firing && !a.acknowledged);
            let flush_due = next_due || repeat_due;
            if flush_due {
                self.changed.insert(key.clone());
                let firing: Vec<AlertSnapshot> = paging.iter().map(|a| a.alert.clone()).collect();
                let resolved: Vec<AlertSnapshot> = g
                    .alerts
                    .values()
                    .filter(|a| a.alert.state == AlertState::Resolved && a.notified_firing && !a.flapping)
                    .map(|a| a.alert.clone())
                    .collect();
                g.next_flush = None;
                if !firing.is_empty() || !resolved.is_empty() {
                    let kind = if firing.is_empty() { NotificationKind::Resolved } else { NotificationKind::Firing };
                    // Receivers the group already escalated to own it now: alerts joining the group
                    // (firing, not yet paged, unacknowledged) reach them too, at their step's level.
                    let joined: Vec<AlertSnapshot> = paging
                        .iter()
                        .filter(|a| !a.notified_firing && !a.acknowledged)
                        .map(|a| a.alert.clone())
                        .collect();
                    let engaged: Vec<(String, u32)> = match route.escalation {
                        Some(ei) if !joined.is_empty() => self.tree.escalations[ei].steps[..g.escalation_level]
                            .iter()
                            .enumerate()
                            .map(|(i, (_, r))| (r.clone(), i as u32 + 1))
                            .collect(),
                        _ => Vec::new(),
                    };
                    let mut receivers: BTreeSet<String> = [g.receiver.clone()].into();
                    if !resolved.is_empty() {
                        receivers.extend(g.notified.iter().cloned());
                    }
                    receivers.extend(engaged.iter().map(|(r, _)| r.clone()));
                    for receiver in receivers {
                        // Escalation receivers hear about resolves and alerts joining the group, not
                        // about the route's repeats.
                        let level = engaged.iter().find(|(r, _)| *r == receiver).map(|(_, l)| *l);
                        let alerts: Vec<AlertSnapshot> = if receiver == g.receiver {
                            firing.iter().chain(&resolved).cloned().collect()
                        } else {
                            let told = g.notified.contains(&receiver);
                            let new = if level.is_some() { joined.as_slice() } else { &[] };
                            new.iter().chain(if told { resolved.as_slice() } else { &[] }).cloned().collect()
                        };
                        if alerts.is_empty() {
                            continue;
                        }
                        let escalation_level = if receiver == g.receiver { 0 } else { level.unwrap_or(0) };
                        let kind = if receiver == g.receiver {
                            kind
                        } else if level.is_some() {
                            NotificationKind::Firing
                        } else {
                            NotificationKind::Resolved
                        };
                        out.push(Notification {
                            receiver,
                            group_key: key.clone(),
                            group_labels: g.labels.clone(),
                            kind,
                            escalation_level,
                            alerts,
                            external_url: self.external_url.clone(),
                            created_at: now,
                        });
                    }
                    g.last_flush = Some(now);
                    if !firing.is_empty() {
                        g.notified.insert(g.receiver.clone());
                        g.escalation_since.get_or_insert(now);
                    }
                    for a in g.alerts.values_mut() {
                        if a.alert.state == AlertState::Firing && a.suppressed.is_none() && !a.flapping {
                            a.notified_firing = true;
                        }
                    }
                    // Resolved alerts leave once notified; flapping ones stay until they settle.
                    g.alerts.retain(|_, a| a.alert.state == AlertState::Firing || (a.flapping && a.notified_firing));
                }
            }
            // Escalation: firing alerts nobody acknowledged, past the next step's delay.
            if let (Some(ei), Some(since)) = (route.escalation, g.escalation_since) {
                let unacked: Vec<AlertSnapshot> = g
                    .alerts
                    .values()
                    .filter(|a| a.alert.state == AlertState::Firing && a.notified_firing && !a.acknowledged)
                    .map(|a| a.alert.clone())
                    .collect();
                let steps = &self.tree.escalations[ei].steps;
                while !unacked.is_empty()
                    && g.escalation_level < steps.len()
                    && add(since, steps[g.escalation_level].0) <= now
                {
                    let receiver = steps[g.escalation_level].1.clone();
                    self.changed.insert(key.clone());
                    g.escalation_level += 1;
                    g.notified.insert(receiver.clone());
                    out.push(Notification {
                        receiver,
                        group_key: key.clone(),
                        group_labels: g.labels.clone(),
                        kind: NotificationKind::Firing,
                        escalation_level: g.escalation_level as u32,
                        alerts: unacked.clone(),
                        external_url: self.external_url.clone(),
                        created_at: now,
                    });
                }
            }
            if g.alerts.is_empty() {
                empty.push(key.clone());
            } else if (g.escalation_since.is_some() || g.escalation_level != 0)
                && !g
                    .alerts
                    .values()
                    .any(|a| a.alert.state == AlertState::Firing && a.notified_firing && !a.acknowledged)
            {
                // Nothing paged is firing unacknowledged any more: the next page (or an acknowledgement
                // taken back) starts escalation afresh, so an alert joining the group later gets the
                // whole delay instead of inheriting the group's first page time.
                g.escalation_since = None;
                g.escalation_level = 0;
                self.changed.insert(key.clone());
            }
        }
        for k in empty {
            self.groups.remove(&k);
            self.changed.insert(k);
        }
        out
    }

    /// The earliest time `tick` has something to do, for the service's sleep.
    pub fn next_due(&self) -> Option<DateTime<Utc>> {
        self.groups.values().filter_map(|g| g.next_flush).min()
    }
}

/// Milliseconds → time, for callers that keep engine time in ms.
pub fn time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(yaml: &str) -> RoutingTree {
        #[derive(Deserialize)]
        struct F {
            route: RouteConfig,
            #[serde(default)]
            escalations: Vec<EscalationConfig>,
        }
        let f: F = serde_saphyr::from_str(yaml).unwrap();
        let receivers: BTreeSet<String> = ["noc", "pager", "oncall2", "mail"].map(String::from).into();
        RoutingTree::compile(&f.route, &f.escalations, &receivers).unwrap()
    }

    fn alert(name: &str, device: &str, severity: &str, state: AlertState) -> AlertSnapshot {
        let labels: Labels = [("alertname", name), ("device", device), ("severity", severity)]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        AlertSnapshot {
            fingerprint: crate::alert::fingerprint(name, &labels),
            rule: name.into(),
            severity: severity.parse().unwrap(),
            state,
            labels,
            annotations: BTreeMap::new(),
            starts_at: time(0),
            ends_at: None,
            value: None,
            flapping: false,
            acknowledged_by: None,
            url: String::new(),
        }
    }

    fn up(a: AlertSnapshot) -> AlertUpdate {
        AlertUpdate { alert: a, suppressed: None, acknowledged: false, flapping: false, flapping_started: false }
    }

    const S: i64 = 1000;

    fn sent(n: &[Notification]) -> Vec<(String, NotificationKind, usize)> {
        n.iter().map(|n| (n.receiver.clone(), n.kind, n.alerts.len())).collect()
    }

    const TREE: &str = r#"
route:
  receiver: noc
  group_by: [device]
  group_wait: 10s
  group_interval: 1m
  repeat_interval: 1h
  routes:
    - match: ['severity=~"critical|major"']
      receiver: pager
      escalation: pager-escalation
      continue: true
    - match: ['severity="critical"']
      receiver: mail
escalations:
  - name: pager-escalation
    steps: [{after: 10m, receiver: oncall2}]
"#;

    #[test]
    fn routes_match_depth_first_with_continue() {
        let t = tree(TREE);
        let paths = |sev: &str| {
            t.matching(&alert("X", "d", sev, AlertState::Firing).labels)
                .iter()
                .map(|&i| t.routes[i].receiver.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(paths("critical"), ["pager", "mail"]);
        assert_eq!(paths("major"), ["pager"]);
        assert_eq!(paths("warning"), ["noc"]);
        let bad: RouteConfig = serde_saphyr::from_str("receiver: nobody\nrepeat_interval: often\n").unwrap();
        let errs = RoutingTree::compile(&bad, &[], &BTreeSet::new()).unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
    }

    #[test]
    fn grouped_firing_then_resolved() {
        let mut d = Dispatcher::new(tree(TREE), "http://nw");
        assert!(d.update(up(alert("InterfaceDown", "leaf1", "warning", AlertState::Firing)), time(0)).is_empty());
        d.update(up(alert("LldpNeighborLost", "leaf1", "warning", AlertState::Firing)), time(5 * S));
        assert!(d.tick(time(9 * S)).is_empty(), "group wait");
        let n = d.tick(time(10 * S));
        assert_eq!(sent(&n), [("noc".into(), NotificationKind::Firing, 2)]);
        assert_eq!(n[0].group_labels.get("device").map(String::as_str), Some("leaf1"));
        assert!(d.tick(time(20 * S)).is_empty());
        d.update(up(alert("InterfaceDown", "leaf1", "warning", AlertState::Resolved)), time(30 * S));
        assert!(d.tick(time(60 * S)).is_empty(), "group interval from the last flush");
        let n = d.tick(time(70 * S));
        assert_eq!(sent(&n), [("noc".into(), NotificationKind::Firing, 2)], "one firing, one resolved");
        assert_eq!(n[0].resolved().count(), 1);
        // Still firing an hour later: repeated.
        assert!(d.tick(time(3600 * S)).is_empty());
        assert_eq!(sent(&d.tick(time(3671 * S))), [("noc".into(), NotificationKind::Firing, 1)]);
    }

    #[test]
    fn only_groups_that_changed_are_reported_for_saving() {
        let mut d = Dispatcher::new(tree(TREE), "http://nw");
        d.update(up(alert("InterfaceDown", "leaf1", "warning", AlertState::Firing)), time(0));
        d.update(up(alert("InterfaceDown", "leaf2", "warning", AlertState::Firing)), time(0));
        let both: BTreeSet<String> = d.groups.keys().cloned().collect();
        assert_eq!(d.take_changed(), both);
        assert!(d.take_changed().is_empty(), "taken");
        assert!(d.tick(time(5 * S)).is_empty());
        assert!(d.take_changed().is_empty(), "nothing due: nothing changed");
        assert_eq!(d.tick(time(10 * S)).len(), 2);
        assert_eq!(d.take_changed(), both, "flushed");
        d.update(up(alert("InterfaceDown", "leaf1", "warning", AlertState::Resolved)), time(20 * S));
        let leaf1 = d.take_changed();
        assert_eq!(leaf1.len(), 1);
        assert_eq!(d.tick(time(70 * S)).len(), 1);
        assert_eq!(d.take_changed(), leaf1, "flushed and removed");
        assert!(!d.groups.contains_key(leaf1.first().unwrap()));
    }

    #[test]
    fn silenced_alerts_do_not_page_but_their_resolve_is_always_sent() {
        let mut d = Dispatcher::new(tree(TREE), "http://nw");
        let a = alert("InterfaceDown", "leaf1", "warning", AlertState::Firing);
        let silenced = Some(Suppression::Silenced { silence_id: 1 });
        d.update(AlertUpdate { suppressed: silenced.clone(), ..up(a.clone()) }, time(0));
        assert!(d.tick(time(60 * S)).is_empty(), "silenced: nothing");
        // The silence ends while it still fires: notified then.
        d.update(up(a.clone()), time(100 * S));
        assert_eq!(sent(&d.tick(time(110 * S))), [("noc".into(), NotificationKind::Firing, 1)]);
        // Silenced again, then resolved: the resolve still goes out.
        d.update(AlertUpdate { suppressed: silenced, ..up(a.clone()) }, time(120 * S));
        d.update(up(alert("InterfaceDown", "leaf1", "warning", AlertState::Resolved)), time(130 * S));
        assert_eq!(sent(&d.tick(time(170 * S))), [("noc".into(), NotificationKind::Resolved, 1)]);
        assert!(d.groups.is_empty());
        // Resolved before anyone was told: nothing at all.
        d.update(
            AlertUpdate { suppressed: Some(Suppression::Topology { device: "spine1".into() }), ..up(a) },
            time(200 * S),
        );
        d.update(up(alert("InterfaceDown", "leaf1", "warning", AlertState::Resolved)), time(210 * S));
        assert!(d.tick(time(400 * S)).is_empty());
    }

    #[test]
    fn escalation_until_acknowledged_and_resolves_reach_everyone_told() {
        let mut d = Dispatcher::new(tree(TREE), "http://nw");
        let a = alert("BgpSessionDown", "leaf1", "major", AlertState::Firing);
        d.update(up(a.clone()), time(0));
        assert_eq!(sent(&d.tick(time(10 * S))), [("pager".into(), NotificationKind::Firing, 1)]);
        assert!(d.tick(time(609 * S)).is_empty());
        let n = d.tick(time(610 * S));
        assert_eq!(sent(&n), [("oncall2".into(), NotificationKind::Firing, 1)]);
        assert_eq!(n[0].escalation_level, 1);
        // Acknowledged: both receivers are told (PagerDuty acknowledge), nothing escalates further.
        let n = d.update(AlertUpdate { acknowledged: true, ..up(a.clone()) }, time(700 * S));
        assert_eq!(
            sent(&n),
            [
                ("oncall2".into(), NotificationKind::Acknowledged, 1),
                ("pager".into(), NotificationKind::Acknowledged, 1)
            ]
        );
        assert!(d.tick(time(7200 * S)).is_empty(), "acknowledged: no repeat");
        d.update(up(alert("BgpSessionDown", "leaf1", "major", AlertState::Resolved)), time(7300 * S));
        let mut n = sent(&d.tick(time(7400 * S)));
        n.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            n,
            [("oncall2".into(), NotificationKind::Resolved, 1), ("pager".into(), NotificationKind::Resolved, 1)]
        );
    }

    #[test]
    fn an_alert_joining_an_escalated_group_reaches_the_receivers_it_escalated_to() {
        let mut d = Dispatcher::new(tree(TREE), "http://nw");
        d.update(up(alert("BgpSessionDown", "leaf1", "major", AlertState::Firing)), time(0));
        d.tick(time(10 * S));
        assert_eq!(sent(&d.tick(time(610 * S))), [("oncall2".into(), NotificationKind::Firing, 1)]);
        // A second alert of the same group (device leaf1) while the first is still unacknowledged:
        // the route's receiver gets the group, oncall2 (who owns it now) the new alert.
        let b = alert("OspfNeighborDown", "leaf1", "major", AlertState::Firing);
        d.update(up(b.clone()), time(700 * S));
        let n = d.tick(time(760 * S));
        assert_eq!(
            sent(&n),
            [("oncall2".into(), NotificationKind::Firing, 1), ("pager".into(), NotificationKind::Firing, 2)]
        );
        assert_eq!(n[0].escalation_level, 1);
        assert_eq!(n[0].alerts[0].rule, "OspfNeighborDown");
        // Its resolve reaches both as well.
        d.update(up(AlertSnapshot { state: AlertState::Resolved, ..b }), time(800 * S));
        let n = sent(&d.tick(time(900 * S)));
        assert!(n.contains(&("oncall2".into(), NotificationKind::Resolved, 1)), "{n:?}");
    }

    #[test]
    fn acknowledging_in_time_stops_escalation() {
        let mut d = Dispatcher::new(tree(TREE), "http://nw");
        let a = alert("BgpSessionDown", "leaf1", "major", AlertState::Firing);
        d.update(up(a.clone()), time(0));
        d.tick(time(10 * S));
        d.update(AlertUpdate { acknowledged: true, ..up(a) }, time(60 * S));
        assert!(d.tick(time(3600 * S)).is_empty());
    }

    #[test]
    fn an_alert_joining_an_acknowledged_group_gets_the_whole_delay() {
        let mut d = Dispatcher::new(tree(TREE), "http://nw");
        let x = alert("BgpSessionDown", "leaf1", "major", AlertState::Firing);
        let y = alert("InterfaceDown", "leaf1", "major", AlertState::Firing); // same group: group_by [device]
        d.update(up(x.clone()), time(0));
        assert_eq!(sent(&d.tick(time(10 * S))), [("pager".into(), NotificationKind::Firing, 1)]);
        d.update(AlertUpdate { acknowledged: true, ..up(x) }, time(60 * S));
        assert!(d.tick(time(61 * S)).is_empty());
        // Long after the group's first page: paged now, escalated ten minutes after this page.
        d.update(up(y.clone()), time(700 * S));
        assert_eq!(sent(&d.tick(time(700 * S))), [("pager".into(), NotificationKind::Firing, 2)]);
        assert!(d.tick(time(1299 * S)).is_empty(), "escalated before its delay");
        let n = d.tick(time(1300 * S));
        assert_eq!(sent(&n), [("oncall2".into(), NotificationKind::Firing, 1)]);
        assert_eq!(n[0].alerts[0].fingerprint, y.fingerprint);
    }

    #[test]
    fn an_acknowledgement_taken_back_resumes_escalation_from_then() {
        let mut d = Dispatcher::new(tree(TREE), "http://nw");
        let x = alert("BgpSessionDown", "leaf1", "major", AlertState::Firing);
        d.update(up(x.clone()), time(0));
        d.tick(time(10 * S));
        d.update(AlertUpdate { acknowledged: true, ..up(x.clone()) }, time(60 * S));
        assert!(d.tick(time(3600 * S)).is_empty());
        d.update(up(x), time(4000 * S));
        assert_eq!(sent(&d.tick(time(4001 * S))), [("pager".into(), NotificationKind::Firing, 1)], "the repeat");
        assert!(d.tick(time(4599 * S)).is_empty(), "escalated before its delay");
        assert_eq!(sent(&d.tick(time(4600 * S))), [("oncall2".into(), NotificationKind::Firing, 1)]);
    }

    #[test]
    fn flapping_is_one_notification() {
        let mut d = Dispatcher::new(tree(TREE), "http://nw");
        let a = alert("InterfaceDown", "leaf1", "warning", AlertState::Firing);
        let n = d.update(AlertUpdate { flapping: true, flapping_started: true, ..up(a.clone()) }, time(0));
        assert_eq!(sent(&n), [("noc".into(), NotificationKind::Flapping, 1)]);
        for i in 1..10 {
            let state = if i % 2 == 0 { AlertState::Firing } else { AlertState::Resolved };
            let mut b = a.clone();
            b.state = state;
            d.update(AlertUpdate { flapping: true, ..up(b) }, time(i * 10 * S));
        }
        assert!(d.tick(time(1000 * S)).is_empty());
    }

    #[test]
    fn a_paged_alert_that_starts_flapping_resolves_once_when_it_settles() {
        let mut d = Dispatcher::new(tree(TREE), "http://nw");
        let a = alert("InterfaceDown", "leaf1", "warning", AlertState::Firing);
        d.update(up(a.clone()), time(0));
        assert_eq!(sent(&d.tick(time(60 * S))), [("noc".into(), NotificationKind::Firing, 1)]);
        let mut resolved = a.clone();
        resolved.state = AlertState::Resolved;
        let n = d.update(AlertUpdate { flapping: true, flapping_started: true, ..up(resolved.clone()) }, time(70 * S));
        assert_eq!(sent(&n), [("noc".into(), NotificationKind::Flapping, 1)]);
        d.update(AlertUpdate { flapping: true, ..up(resolved.clone()) }, time(70 * S));
        assert!(d.tick(time(200 * S)).is_empty(), "no resolve while flapping");
        d.update(up(resolved), time(300 * S));
        assert_eq!(sent(&d.tick(time(400 * S))), [("noc".into(), NotificationKind::Resolved, 1)]);
        assert!(d.groups.is_empty());
    }
}
