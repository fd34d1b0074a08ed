//! The alert engine's pure core: series in, alert transitions out. It keeps the latest value and
//! a short history of every series, evaluates the rules whose source, scope and matchers fit a
//! series when it changes, and runs each alert's lifecycle: pending for `for:`, firing, cleared
//! by `resolve_when` (hysteresis) or by the condition turning false, held by `keep_firing_for`,
//! resolved; flapping when it changes state too often. Time is passed in (milliseconds since the
//! epoch), so tests and `netwarden rules test` drive it deterministically. No I/O.

use crate::alert::{AlertState, Labels, Severity, fingerprint};
use crate::matcher::all_match;
use crate::rule::Rule;
use crate::rule::expr::Evaluator;
use crate::source::{self, DeviceMeta, Interner, Reading, Series, SeriesKey, SourceKind};
use chrono::{DateTime, TimeZone, Utc};
use collector::observe::{Observation, Outcome};
use rhai::Dynamic;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// What happened to an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// The condition became true; waiting for `for:`.
    Pending,
    /// Pending ended before `for:` elapsed; nothing was notified.
    PendingCancelled,
    Firing,
    Resolved,
    /// Too many state changes in the flap window: one notification until it settles.
    FlappingStarted,
    /// Settled: the alert's current state is notified again.
    FlappingStopped,
}

/// One alert transition, with everything the store and the notification router need.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub fingerprint: String,
    pub rule: String,
    pub severity: Severity,
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub change: Change,
    /// The alert's state after the change.
    pub state: AlertState,
    pub at: DateTime<Utc>,
    /// When the alert became active (pending) and when it started firing.
    pub active_since: DateTime<Utc>,
    pub firing_since: Option<DateTime<Utc>>,
    pub flapping: bool,
    /// The device the alert is about.
    pub device_id: i64,
    /// The series it is evaluated on (stored so a restart can put the alert back on it).
    pub series: SeriesKey,
}

/// An alert that is pending or firing.
#[derive(Debug, Clone, PartialEq)]
pub struct Instance {
    pub fingerprint: String,
    pub rule: usize,
    pub series: SeriesKey,
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub state: AlertState,
    pub active_since: i64,
    pub firing_since: Option<i64>,
    /// When the clearing condition first held while firing (for `keep_firing_for`).
    pub clear_since: Option<i64>,
    /// Latest evaluation results, reused by ticks when the series did not change.
    pub cond: bool,
    pub clear: bool,
}

#[derive(Debug, Clone, Default)]
struct FlapState {
    changes: VecDeque<i64>,
    flapping: bool,
}

/// An alert as saved before a restart, for [`Engine::restore`].
#[derive(Debug, Clone, PartialEq)]
pub struct SavedAlert {
    pub rule: String,
    pub series: SeriesKey,
    pub state: AlertState,
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub active_since: DateTime<Utc>,
    pub firing_since: Option<DateTime<Utc>>,
    pub fingerprint: String,
}

/// Engine counters for `/metrics` and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineStats {
    pub evaluations: u64,
    pub eval_errors: u64,
}

pub struct Engine {
    rules: Vec<Rule>,
    by_kind: HashMap<SourceKind, Vec<usize>>,
    /// Fields whose history is kept, per kind, with the longest window asked for.
    history_needs: HashMap<SourceKind, Vec<(usize, Duration)>>,
    devices: HashMap<i64, DeviceMeta>,
    series: BTreeMap<SeriesKey, Series>,
    /// Devices whose device series says `status == "down"`, kept as series change so that
    /// [`down_devices`](Self::down_devices) costs the down devices, not a scan of every series.
    down: std::collections::BTreeSet<i64>,
    alerts: HashMap<(usize, SeriesKey), Instance>,
    flaps: HashMap<String, FlapState>,
    flap_windows: HashMap<String, Duration>,
    /// The last resolved transition of alerts that resolved while flapping, notified when they settle.
    settled_resolved: HashMap<String, Transition>,
    last_uptime: HashMap<i64, u32>,
    evaluator: Evaluator,
    interner: Interner,
    templates: minijinja::Environment<'static>,
    pub stats: EngineStats,
    /// How long an LLDP link that lost its neighbour is kept (and alerting) before it is forgotten.
    pub lost_link_retention: Duration,
}

fn to_time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

impl Engine {
    pub fn new(rules: Vec<Rule>) -> Engine {
        let mut by_kind: HashMap<SourceKind, Vec<usize>> = HashMap::new();
        let mut history_needs: HashMap<SourceKind, Vec<(usize, Duration)>> = HashMap::new();
        for (i, r) in rules.iter().enumerate() {
            by_kind.entry(r.source).or_default().push(i);
            let needs = history_needs.entry(r.source).or_default();
            for (field, window) in r.history_needs() {
                match needs.iter_mut().find(|(f, _)| *f == field) {
                    Some((_, w)) => *w = (*w).max(window),
                    None => needs.push((field, window)),
                }
            }
        }
        let mut templates = minijinja::Environment::new();
        templates.set_undefined_behavior(minijinja::UndefinedBehavior::Lenient);
        Engine {
            rules,
            by_kind,
            history_needs,
            devices: HashMap::new(),
            series: BTreeMap::new(),
            down: std::collections::BTreeSet::new(),
            alerts: HashMap::new(),
            flaps: HashMap::new(),
            flap_windows: HashMap::new(),
            settled_resolved: HashMap::new(),
            last_uptime: HashMap::new(),
            evaluator: Evaluator::default(),
            interner: Interner::default(),
            templates,
            stats: EngineStats::default(),
            lost_link_retention: Duration::from_secs(24 * 3600),
        }
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    pub fn active(&self) -> impl Iterator<Item = &Instance> {
        self.alerts.values()
    }

    pub fn is_flapping(&self, fingerprint: &str) -> bool {
        self.flaps.get(fingerprint).is_some_and(|f| f.flapping)
    }

    pub fn device(&self, id: i64) -> Option<&DeviceMeta> {
        self.devices.get(&id)
    }

    pub fn devices(&self) -> impl Iterator<Item = &DeviceMeta> {
        self.devices.values()
    }

    /// Names of devices whose last poll outcome left them down.
    pub fn down_devices(&self) -> Vec<String> {
        let mut out: Vec<String> =
            self.down.iter().filter_map(|id| self.devices.get(id).map(|d| d.name.clone())).collect();
        out.sort();
        out
    }

    /// Whether a device series' fields say the device is down (`status == "down"`).
    fn says_down(fields: &[Dynamic]) -> bool {
        fields
            .first()
            .and_then(|v| v.read_lock::<rhai::ImmutableString>().map(|s| s.as_str() == "down"))
            .unwrap_or(false)
    }

    /// Removes a series (and its device from the down set when it is a device series).
    fn remove_series(&mut self, k: &SeriesKey) {
        if self.series.remove(k).is_some() && k.kind == SourceKind::Device {
            self.down.remove(&k.device_id);
        }
    }

    /// Puts back an alert saved before a restart. Returns false when its rule no longer exists (the
    /// caller resolves it). The condition is taken as still true until the series is seen again.
    pub fn restore(&mut self, saved: SavedAlert) -> bool {
        let Some(ri) = self.rules.iter().position(|r| r.name == saved.rule) else { return false };
        let inst = Instance {
            fingerprint: saved.fingerprint,
            rule: ri,
            series: saved.series.clone(),
            labels: saved.labels,
            annotations: saved.annotations,
            state: saved.state,
            active_since: saved.active_since.timestamp_millis(),
            firing_since: saved.firing_since.map(|t| t.timestamp_millis()),
            clear_since: None,
            cond: true,
            clear: false,
        };
        self.alerts.insert((ri, saved.series), inst);
        true
    }

    /// Replaces the device directory. Series and alerts of devices that left are dropped; their
    /// firing alerts resolve.
    pub fn set_devices(&mut self, devices: Vec<DeviceMeta>, now_ms: i64) -> Vec<Transition> {
        self.devices = devices.into_iter().map(|d| (d.id, d)).collect();
        // Series of devices that left, and alerts restored for them (which may have no series yet).
        let gone: std::collections::BTreeSet<SeriesKey> = self
            .series
            .keys()
            .chain(self.alerts.keys().map(|(_, k)| k))
            .filter(|k| !self.devices.contains_key(&k.device_id))
            .cloned()
            .collect();
        let mut out = Vec::new();
        for k in gone {
            self.remove_series(&k);
            self.resolve_series(&k, now_ms, &mut out);
        }
        out
    }

    /// Applies one scheduler observation.
    pub fn observe(&mut self, obs: &Observation, now_ms: i64) -> Vec<Transition> {
        let Some(meta) = self.devices.get(&obs.device_id).cloned() else { return Vec::new() };
        let previous = self.last_uptime.get(&obs.device_id).copied();
        let readings = source::readings(obs, &meta, previous);
        if let Outcome::Polled { poll, .. } = &obs.outcome
            && let Some(up) = poll.system.sys_uptime_ticks
        {
            self.last_uptime.insert(obs.device_id, up);
        }
        let merge_only = matches!(obs.outcome, Outcome::Overrun { .. });
        self.ingest(readings, Some((obs.device_id, source::complete_kinds(obs))), merge_only, now_ms)
    }

    /// Applies readings. `complete` names a device and the kinds this batch reports in full:
    /// series of those kinds the batch does not contain are gone (LLDP links: lost). With
    /// `merge_only`, unset (`()`) fields keep their previous values.
    pub fn ingest(
        &mut self,
        readings: Vec<Reading>,
        complete: Option<(i64, &[SourceKind])>,
        merge_only: bool,
        now_ms: i64,
    ) -> Vec<Transition> {
        let mut out = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for r in readings {
            seen.insert(r.key.clone());
            self.upsert(r, merge_only, now_ms);
        }
        if let Some((device_id, kinds)) = complete {
            for &kind in kinds {
                let from = SeriesKey { kind, device_id, item: Arc::from("") };
                let missing: Vec<SeriesKey> = self
                    .series
                    .range(from..)
                    .take_while(|(k, _)| k.kind == kind && k.device_id == device_id)
                    .map(|(k, _)| k.clone())
                    .filter(|k| !seen.contains(k))
                    .collect();
                for k in missing {
                    if kind == SourceKind::LldpLink {
                        self.mark_lost(&k, now_ms);
                        seen.insert(k);
                    } else {
                        self.remove_series(&k);
                        self.resolve_series(&k, now_ms, &mut out);
                    }
                }
            }
        }
        for k in seen {
            self.evaluate_series(&k, now_ms, &mut out);
        }
        out
    }

    /// Applies a complete set of series of one kind whose items start with `prefix` (one run of a
    /// metric query): series of that kind and prefix not in `readings` are gone and resolve.
    pub fn ingest_set(
        &mut self,
        kind: SourceKind,
        prefix: &str,
        readings: Vec<Reading>,
        now_ms: i64,
    ) -> Vec<Transition> {
        let from = SeriesKey { kind, device_id: i64::MIN, item: Arc::from("") };
        let keep: std::collections::HashSet<&SeriesKey> = readings.iter().map(|r| &r.key).collect();
        let gone: Vec<SeriesKey> = self
            .series
            .range(from..)
            .take_while(|(k, _)| k.kind == kind)
            .filter(|(k, _)| k.item.starts_with(prefix) && !keep.contains(k))
            .map(|(k, _)| k.clone())
            .collect();
        let mut out = Vec::new();
        for k in gone {
            self.remove_series(&k);
            self.resolve_series(&k, now_ms, &mut out);
        }
        out.extend(self.ingest(readings, None, false, now_ms));
        out
    }

    fn upsert(&mut self, r: Reading, merge_only: bool, now_ms: i64) {
        let needs: &[(usize, Duration)] = self.history_needs.get(&r.key.kind).map_or(&[], Vec::as_slice);
        let series = self.series.entry(r.key.clone()).or_insert_with(|| Series {
            labels: Arc::new(r.labels.clone()),
            fields: vec![Dynamic::UNIT; r.key.kind.fields().len()],
            updated_ms: now_ms,
            history: Arc::new(needs.iter().map(|(f, _)| (*f, VecDeque::new())).collect()),
        });
        if *series.labels != r.labels && !merge_only {
            series.labels = Arc::new(r.labels);
        }
        for (i, v) in r.fields.into_iter().enumerate() {
            if merge_only && v.is_unit() {
                continue;
            }
            if let Some(slot) = series.fields.get_mut(i) {
                *slot = v;
            }
        }
        series.updated_ms = now_ms;
        for (field, points) in Arc::make_mut(&mut series.history).iter_mut() {
            let window = needs.iter().find(|(f, _)| f == field).map_or(Duration::ZERO, |(_, w)| *w);
            let v = source::point_value(&series.fields[*field], &mut self.interner);
            points.push_back((now_ms, v));
            // Keep one point older than the window so "changed within" sees the change into it.
            let from = now_ms - window.as_millis() as i64;
            while points.len() > 2 && points[1].0 < from {
                points.pop_front();
            }
        }
        if r.key.kind == SourceKind::Device {
            if Self::says_down(&series.fields) {
                self.down.insert(r.key.device_id);
            } else {
                self.down.remove(&r.key.device_id);
            }
        }
    }

    fn mark_lost(&mut self, k: &SeriesKey, now_ms: i64) {
        let retention = self.lost_link_retention.as_millis() as i64;
        let Some(s) = self.series.get_mut(k) else { return };
        let present = s.fields.first().and_then(|v| v.as_bool().ok()).unwrap_or(false);
        if present {
            s.fields[0] = Dynamic::from_bool(false);
            s.updated_ms = now_ms;
            for (field, points) in Arc::make_mut(&mut s.history).iter_mut() {
                let v = source::point_value(&s.fields[*field], &mut self.interner);
                points.push_back((now_ms, v));
            }
        } else if now_ms - s.updated_ms > retention {
            self.remove_series(k);
        }
    }

    fn resolve_series(&mut self, k: &SeriesKey, now_ms: i64, out: &mut Vec<Transition>) {
        let keys: Vec<(usize, SeriesKey)> = self.alerts.keys().filter(|(_, s)| s == k).cloned().collect();
        for key in keys {
            if let Some(inst) = self.alerts.remove(&key) {
                let change = if inst.state == AlertState::Firing { Change::Resolved } else { Change::PendingCancelled };
                self.emit(&inst, change, AlertState::Resolved, now_ms, out);
            }
        }
    }

    fn evaluate_series(&mut self, k: &SeriesKey, now_ms: i64, out: &mut Vec<Transition>) {
        let Some(rule_ids) = self.by_kind.get(&k.kind) else { return };
        let Some(meta) = self.devices.get(&k.device_id) else { return };
        let Some(series) = self.series.get(k) else { return };
        let history = series.history.clone();
        let mut results = Vec::new();
        let mut bound = false;
        for &ri in rule_ids {
            let rule = &self.rules[ri];
            if !rule.scope.includes(meta) || !all_match(&rule.matchers, &series.labels) {
                continue;
            }
            self.stats.evaluations += 1;
            // The series' fields go into the scope once for all its rules.
            if !bound {
                self.evaluator.bind(k.kind, &series.fields);
                bound = true;
            }
            let cond = self.evaluator.eval_bound(&rule.when, k.kind, &history, now_ms);
            let clear = match &rule.resolve_when {
                Some(c) => Some(self.evaluator.eval_bound(c, k.kind, &history, now_ms)),
                None => None,
            };
            match (cond, clear.transpose()) {
                (Ok(c), Ok(clear)) => results.push((ri, c, clear.unwrap_or(!c))),
                (Err(e), _) | (_, Err(e)) => {
                    self.stats.eval_errors += 1;
                    metrics::counter!("netwarden_rule_eval_errors_total", "rule" => rule.name.clone()).increment(1);
                    tracing::debug!(rule = %rule.name, series = %k.item, error = %e, "rule evaluation failed; state kept");
                }
            }
        }
        for (ri, cond, clear) in results {
            self.step(ri, k, cond, clear, now_ms, out);
        }
    }

    /// Advances one alert's lifecycle with the latest evaluation.
    fn step(&mut self, ri: usize, k: &SeriesKey, cond: bool, clear: bool, now_ms: i64, out: &mut Vec<Transition>) {
        let key = (ri, k.clone());
        let rule = &self.rules[ri];
        let pending_for = rule.pending_for.as_millis() as i64;
        let keep = rule.keep_firing_for.as_millis() as i64;
        match self.alerts.get_mut(&key) {
            None => {
                if !cond {
                    return;
                }
                let labels = self.alert_labels(ri, k);
                let fp = fingerprint(&self.rules[ri].name, &labels);
                let mut inst = Instance {
                    fingerprint: fp,
                    rule: ri,
                    series: k.clone(),
                    labels,
                    annotations: BTreeMap::new(),
                    state: AlertState::Pending,
                    active_since: now_ms,
                    firing_since: None,
                    clear_since: None,
                    cond,
                    clear,
                };
                inst.annotations = self.render(ri, &inst.labels, k);
                if pending_for == 0 {
                    inst.state = AlertState::Firing;
                    inst.firing_since = Some(now_ms);
                    self.emit(&inst, Change::Firing, AlertState::Firing, now_ms, out);
                } else {
                    self.emit(&inst, Change::Pending, AlertState::Pending, now_ms, out);
                }
                self.alerts.insert(key, inst);
            }
            Some(inst) => {
                inst.cond = cond;
                inst.clear = clear;
                match inst.state {
                    AlertState::Pending if !cond => {
                        let inst = self.alerts.remove(&key).expect("present");
                        self.emit(&inst, Change::PendingCancelled, AlertState::Resolved, now_ms, out);
                    }
                    AlertState::Pending if now_ms - inst.active_since >= pending_for => {
                        inst.state = AlertState::Firing;
                        inst.firing_since = Some(now_ms);
                        let inst = inst.clone();
                        let annotations = self.render(ri, &inst.labels, k);
                        let mut inst = inst;
                        inst.annotations = annotations;
                        self.alerts.insert(key, inst.clone());
                        self.emit(&inst, Change::Firing, AlertState::Firing, now_ms, out);
                    }
                    AlertState::Pending => {}
                    AlertState::Firing if clear => {
                        let since = *inst.clear_since.get_or_insert(now_ms);
                        if now_ms - since >= keep {
                            let inst = self.alerts.remove(&key).expect("present");
                            self.emit(&inst, Change::Resolved, AlertState::Resolved, now_ms, out);
                        }
                    }
                    AlertState::Firing => inst.clear_since = None,
                    AlertState::Resolved => {}
                }
            }
        }
    }

    /// Advances timers (`for:`, `keep_firing_for`, flap settling) and re-evaluates active alerts
    /// whose conditions look at history (their truth moves with time).
    pub fn tick(&mut self, now_ms: i64) -> Vec<Transition> {
        let mut out = Vec::new();
        let mut keys: Vec<(usize, SeriesKey)> = self.alerts.keys().cloned().collect();
        keys.sort();
        let mut reevaluated = std::collections::HashSet::new();
        for (ri, k) in keys {
            let rule = &self.rules[ri];
            let timed = rule.history_needs().next().is_some();
            if timed {
                if reevaluated.insert(k.clone()) {
                    self.evaluate_series(&k, now_ms, &mut out);
                }
            } else if let Some(inst) = self.alerts.get(&(ri, k.clone())) {
                let (c, cl) = (inst.cond, inst.clear);
                self.step(ri, &k, c, cl, now_ms, &mut out);
            }
        }
        // Flapping alerts that stayed quiet for their window have settled.
        let settled: Vec<String> = self
            .flaps
            .iter()
            .filter(|(fp, f)| {
                f.flapping && f.changes.back().is_none_or(|t| now_ms - t >= self.flap_window_of(fp).as_millis() as i64)
            })
            .map(|(fp, _)| fp.clone())
            .collect();
        for fp in settled {
            if let Some(f) = self.flaps.get_mut(&fp) {
                f.flapping = false;
                f.changes.clear();
            }
            if let Some(inst) = self.alerts.values().find(|i| i.fingerprint == fp).cloned() {
                let t = self.transition(&inst, Change::FlappingStopped, inst.state, now_ms, false);
                out.push(t);
            } else if let Some(t) = self.settled_resolved.remove(&fp) {
                out.push(Transition { change: Change::FlappingStopped, at: to_time(now_ms), flapping: false, ..t });
            }
        }
        self.flaps.retain(|_, f| f.flapping || !f.changes.is_empty());
        out
    }

    fn flap_window_of(&self, fp: &str) -> Duration {
        self.flap_windows.get(fp).copied().unwrap_or(Duration::from_secs(600))
    }

    fn alert_labels(&self, ri: usize, k: &SeriesKey) -> Labels {
        let rule = &self.rules[ri];
        let mut labels: Labels = self.series.get(k).map(|s| (*s.labels).clone()).unwrap_or_default();
        labels.extend(rule.labels.clone());
        labels.insert("alertname".into(), rule.name.clone());
        labels.insert("severity".into(), rule.severity.as_str().into());
        labels
    }

    fn render(&self, ri: usize, labels: &Labels, k: &SeriesKey) -> BTreeMap<String, String> {
        let rule = &self.rules[ri];
        if rule.annotations.is_empty() {
            return BTreeMap::new();
        }
        let mut ctx: BTreeMap<String, minijinja::Value> =
            labels.iter().map(|(k, v)| (k.clone(), minijinja::Value::from(v.as_str()))).collect();
        if let Some(s) = self.series.get(k) {
            for (name, v) in k.kind.fields().iter().zip(&s.fields) {
                let v = if v.is_unit() {
                    minijinja::Value::from(())
                } else if let Ok(f) = v.as_float() {
                    minijinja::Value::from(format_number(f))
                } else {
                    minijinja::Value::from(v.to_string())
                };
                ctx.insert((*name).to_string(), v);
            }
        }
        rule.annotations
            .iter()
            .map(|(name, t)| {
                let text = self.templates.render_str(t, &ctx).unwrap_or_else(|e| format!("(template error: {e})"));
                (name.clone(), text)
            })
            .collect()
    }

    fn transition(
        &self,
        inst: &Instance,
        change: Change,
        state: AlertState,
        now_ms: i64,
        flapping: bool,
    ) -> Transition {
        let rule = &self.rules[inst.rule];
        Transition {
            fingerprint: inst.fingerprint.clone(),
            rule: rule.name.clone(),
            severity: rule.severity,
            labels: inst.labels.clone(),
            annotations: inst.annotations.clone(),
            change,
            state,
            at: to_time(now_ms),
            active_since: to_time(inst.active_since),
            firing_since: inst.firing_since.map(to_time),
            flapping,
            device_id: inst.series.device_id,
            series: inst.series.clone(),
        }
    }

    fn emit(&mut self, inst: &Instance, change: Change, state: AlertState, now_ms: i64, out: &mut Vec<Transition>) {
        let mut flapping = false;
        if matches!(change, Change::Firing | Change::Resolved) {
            let policy = self.rules[inst.rule].flap;
            self.flap_windows.insert(inst.fingerprint.clone(), policy.window);
            let f = self.flaps.entry(inst.fingerprint.clone()).or_default();
            f.changes.push_back(now_ms);
            let from = now_ms - policy.window.as_millis() as i64;
            while f.changes.front().is_some_and(|t| *t < from) {
                f.changes.pop_front();
            }
            if f.flapping {
                flapping = true;
            } else if f.changes.len() > policy.changes as usize {
                f.flapping = true;
                let t = self.transition(inst, Change::FlappingStarted, state, now_ms, true);
                out.push(t);
                flapping = true;
            }
        }
        let t = self.transition(inst, change, state, now_ms, flapping);
        if flapping && change == Change::Resolved {
            self.settled_resolved.insert(inst.fingerprint.clone(), t.clone());
        } else if change == Change::Firing {
            self.settled_resolved.remove(&inst.fingerprint);
        }
        out.push(t);
    }
}

/// Numbers in annotations: integers without a fraction, others with up to 2 decimals.
fn format_number(f: f64) -> String {
    if f.fract() == 0.0 && f.abs() < 1e15 { format!("{}", f as i64) } else { format!("{f:.2}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rule::parse_rules;
    use rhai::ImmutableString;

    const S: i64 = 1000;

    fn engine(yaml: &str) -> Engine {
        let (rules, errors) = parse_rules("t.yaml", yaml);
        assert!(errors.is_empty(), "{errors:?}");
        let mut e = Engine::new(rules);
        let meta = DeviceMeta { id: 1, name: "leaf1".into(), role: Some("leaf".into()), ..Default::default() };
        e.set_devices(vec![meta], 0);
        e
    }

    fn iface(name: &str, oper: &str, util: Option<f64>) -> Reading {
        let kind = SourceKind::Interface;
        let mut fields = vec![Dynamic::UNIT; kind.fields().len()];
        fields[0] = Dynamic::from(ImmutableString::from("up"));
        fields[1] = Dynamic::from(ImmutableString::from(oper));
        if let Some(u) = util {
            fields[kind.field_index("utilisation").unwrap()] = Dynamic::from_float(u);
        }
        let mut labels = Labels::new();
        labels.insert("device".into(), "leaf1".into());
        labels.insert("interface".into(), name.into());
        Reading { key: SeriesKey { kind, device_id: 1, item: Arc::from(name) }, labels, fields }
    }

    fn changes(t: &[Transition]) -> Vec<(Change, String)> {
        t.iter().map(|t| (t.change, t.labels.get("interface").cloned().unwrap_or_default())).collect()
    }

    const DOWN: &str = r#"rules:
  - name: InterfaceDown
    source: interface
    when: oper_status == "down"
    for: 30s
    severity: major
    annotations: {summary: "{{ device }} {{ interface }} is {{ oper_status }}"}
"#;

    #[test]
    fn pending_then_firing_after_for_then_resolved() {
        let mut e = engine(DOWN);
        assert!(e.ingest(vec![iface("eth1", "up", None)], None, false, 0).is_empty());
        let t = e.ingest(vec![iface("eth1", "down", None)], None, false, 10 * S);
        assert_eq!(changes(&t), vec![(Change::Pending, "eth1".into())]);
        assert!(e.tick(30 * S).is_empty(), "20 s pending, for is 30 s");
        let t = e.tick(40 * S);
        assert_eq!(changes(&t), vec![(Change::Firing, "eth1".into())]);
        assert_eq!(t[0].annotations["summary"], "leaf1 eth1 is down");
        assert_eq!(t[0].labels["alertname"], "InterfaceDown");
        assert_eq!(t[0].labels["severity"], "major");
        let fp = t[0].fingerprint.clone();
        let t = e.ingest(vec![iface("eth1", "up", None)], None, false, 50 * S);
        assert_eq!(changes(&t), vec![(Change::Resolved, "eth1".into())]);
        assert_eq!(t[0].fingerprint, fp, "same alert, same fingerprint");
        assert_eq!(e.active().count(), 0);
    }

    #[test]
    fn a_blip_shorter_than_for_never_fires() {
        let mut e = engine(DOWN);
        e.ingest(vec![iface("eth1", "down", None)], None, false, 0);
        let t = e.ingest(vec![iface("eth1", "up", None)], None, false, 10 * S);
        assert_eq!(changes(&t), vec![(Change::PendingCancelled, "eth1".into())]);
        assert!(e.tick(60 * S).is_empty());
    }

    #[test]
    fn hysteresis_and_keep_firing_for() {
        let mut e = engine(
            r#"rules:
  - name: Hot
    source: interface
    when: utilisation > 90
    resolve_when: utilisation < 80
    keep_firing_for: 1m
    severity: warning
"#,
        );
        let t = e.ingest(vec![iface("eth1", "up", Some(95.0))], None, false, 0);
        assert_eq!(changes(&t), vec![(Change::Firing, "eth1".into())]);
        // Between the thresholds: still firing.
        assert!(e.ingest(vec![iface("eth1", "up", Some(85.0))], None, false, 10 * S).is_empty());
        // Below 80: clearing starts, held for a minute.
        assert!(e.ingest(vec![iface("eth1", "up", Some(70.0))], None, false, 20 * S).is_empty());
        assert!(e.tick(60 * S).is_empty());
        // Back above the lower threshold resets the hold.
        assert!(e.ingest(vec![iface("eth1", "up", Some(85.0))], None, false, 70 * S).is_empty());
        assert!(e.ingest(vec![iface("eth1", "up", Some(70.0))], None, false, 90 * S).is_empty());
        assert!(e.tick(140 * S).is_empty());
        assert_eq!(changes(&e.tick(150 * S)), vec![(Change::Resolved, "eth1".into())]);
    }

    #[test]
    fn a_flapping_alert_notifies_once_and_again_when_it_settles() {
        let mut e = engine(
            r#"rules:
  - name: InterfaceDown
    source: interface
    when: oper_status == "down"
    severity: major
    flap: {changes: 4, window: 5m}
"#,
        );
        let mut all = Vec::new();
        for i in 0..8 {
            let oper = if i % 2 == 0 { "down" } else { "up" };
            all.extend(e.ingest(vec![iface("eth1", oper, None)], None, false, i * 10 * S));
        }
        let started: Vec<_> = all.iter().filter(|t| t.change == Change::FlappingStarted).collect();
        assert_eq!(started.len(), 1, "{:?}", changes(&all));
        // Changes after flapping started are marked, so the router does not notify them.
        let after = all.iter().position(|t| t.change == Change::FlappingStarted).unwrap();
        assert!(all[after + 1..].iter().all(|t| t.flapping));
        assert!(all[..after].iter().all(|t| !t.flapping));
        // Last change at 70 s (up → resolved); quiet for the window: settled, resolved notified.
        assert!(e.tick(300 * S).is_empty());
        let t = e.tick(371 * S);
        assert_eq!(t.len(), 1, "{:?}", changes(&t));
        assert_eq!((t[0].change, t[0].state, t[0].flapping), (Change::FlappingStopped, AlertState::Resolved, false));
        assert!(!e.is_flapping(&t[0].fingerprint));
    }

    #[test]
    fn series_that_disappear_resolve_and_lost_lldp_links_alert() {
        let mut e = engine(
            r#"rules:
  - name: InterfaceDown
    source: interface
    when: oper_status == "down"
    severity: major
  - name: LldpNeighborLost
    source: lldp_link
    when: "!present"
    severity: warning
"#,
        );
        let kinds: &[SourceKind] = &[SourceKind::Interface, SourceKind::LldpLink];
        let lldp = |present: bool| {
            let kind = SourceKind::LldpLink;
            let mut fields = vec![Dynamic::UNIT; kind.fields().len()];
            fields[0] = Dynamic::from_bool(present);
            Reading {
                key: SeriesKey { kind, device_id: 1, item: Arc::from("eth1") },
                labels: [("device".to_string(), "leaf1".to_string()), ("interface".into(), "eth1".into())].into(),
                fields,
            }
        };
        e.ingest(vec![iface("eth1", "down", None), lldp(true)], Some((1, kinds)), false, 0);
        assert_eq!(e.active().count(), 1);
        // Next complete poll: eth1 is gone from IF-MIB and from LLDP.
        let t = e.ingest(vec![], Some((1, kinds)), false, 10 * S);
        let mut got = changes(&t);
        got.sort_by_key(|(c, _)| format!("{c:?}"));
        assert_eq!(got, vec![(Change::Firing, "eth1".into()), (Change::Resolved, "eth1".into())]);
        assert!(t.iter().any(|t| t.rule == "LldpNeighborLost" && t.change == Change::Firing));
    }

    #[test]
    fn down_devices_follow_the_device_series() {
        let mut e = engine(DOWN);
        let device = |status: Option<&str>| {
            let kind = SourceKind::Device;
            let mut fields = vec![Dynamic::UNIT; kind.fields().len()];
            if let Some(s) = status {
                fields[0] = Dynamic::from(ImmutableString::from(s));
            }
            fields[6] = Dynamic::from_int(1);
            Reading { key: SeriesKey { kind, device_id: 1, item: Arc::from("") }, labels: Labels::new(), fields }
        };
        assert!(e.down_devices().is_empty());
        e.ingest(vec![device(Some("down"))], None, false, 0);
        assert_eq!(e.down_devices(), vec!["leaf1".to_string()]);
        // An overrun merges only the skipped count: still down.
        e.ingest(vec![device(None)], None, true, S);
        assert_eq!(e.down_devices(), vec!["leaf1".to_string()]);
        e.ingest(vec![device(Some("unreachable"))], None, false, 2 * S);
        assert!(e.down_devices().is_empty());
        e.ingest(vec![device(Some("down"))], None, false, 3 * S);
        e.set_devices(Vec::new(), 4 * S);
        assert!(e.down_devices().is_empty(), "a device that left the inventory is not down");
    }

    #[test]
    fn scope_limits_rules_to_devices() {
        let mut e = engine(
            r#"rules:
  - name: SpineDown
    source: interface
    scope: {roles: [spine]}
    when: oper_status == "down"
    severity: major
"#,
        );
        assert!(e.ingest(vec![iface("eth1", "down", None)], None, false, 0).is_empty());
    }
}
