//! The alert service: the one task that owns the alert state while `netwarden serve` runs.
//!
//! Scheduler observations and inventory changes go into the [`Engine`]; its transitions, the
//! suppression of every firing alert (topology, inhibition, maintenance windows, silences) and
//! acknowledgements go into the [`Dispatcher`]; what changed is written in one transaction per
//! step: alert rows and history, suppression and acknowledgement events, notification groups and
//! the outbox rows the delivery worker sends. A step the database refuses is kept and written
//! with the next one, so a database outage delays records and pages but loses none of them. On
//! start the service restores active alerts, acknowledgements and groups from the database, so a
//! restart neither re-pages nor forgets to resolve.

use crate::alert::{AlertSnapshot, AlertState, Labels, Notification, Suppression};
use crate::config::Alerting;
use crate::dispatch::{AlertUpdate, Dispatcher};
use crate::engine::{Change, Engine, Instance, SavedAlert, Transition};
use crate::intent::{self, Intent, IntentEngine};
use crate::source::{DeviceMeta, SeriesKey, SourceKind};
use crate::store::{self, StoredAlert};
use crate::suppress::{self, Silence};
use chrono::{DateTime, Utc};
use collector::observe::Observation;
use collector::scheduler::ScheduledDevice;
use collector::topology::Topology;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// What the service listens to.
pub struct Inputs {
    /// One per poll outcome, from the scheduler.
    pub observations: mpsc::Receiver<Observation>,
    /// The devices being polled.
    pub devices: watch::Receiver<Vec<ScheduledDevice>>,
    /// The latest topology graph (for topology-derived suppression).
    pub topology: Arc<RwLock<Arc<Topology>>>,
}

#[derive(Debug, Clone)]
pub struct Options {
    /// How often timers run (`for:`, group waits, escalations, silence and window boundaries).
    pub tick: Duration,
    /// How often silences are re-read from the database (they are also re-read on request).
    pub silence_reload: Duration,
    /// The outbox worker of this process: a step's notifications are handed to it, claimed in the step's
    /// transaction, as soon as that commits (or it is woken to claim them from the table).
    pub outbox_wake: crate::outbox::Wake,
    /// How often configuration changes (detected between backups) are read, for `config` rules.
    pub config_poll: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            tick: Duration::from_secs(1),
            silence_reload: Duration::from_secs(30),
            outbox_wake: crate::outbox::Wake::default(),
            config_poll: Duration::from_secs(2),
        }
    }
}

/// Counters for `/metrics` and `/api/v1/status`.
#[derive(Debug, Default)]
pub struct Stats {
    pub observations: AtomicU64,
    pub transitions: AtomicU64,
    pub notifications: AtomicU64,
    /// Steps the database refused (kept and written with a later step).
    pub write_failures: AtomicU64,
    pub firing: AtomicU64,
    pub pending: AtomicU64,
    pub suppressed: AtomicU64,
}

#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error("no active alert with fingerprint {0}")]
    NotFound(String),
    #[error("the alert change was not recorded: {0}")]
    Database(String),
    #[error("the alert service is not running")]
    Stopped,
}

/// How the API talks to the running service.
#[derive(Clone)]
pub struct Handle {
    commands: mpsc::Sender<Command>,
    pub stats: Arc<Stats>,
    intents: Arc<Vec<Intent>>,
}

/// An acknowledgement: by whom, why, and until when (else until the alert resolves).
#[derive(Debug, Clone, PartialEq)]
pub struct Ack {
    pub by: String,
    pub comment: Option<String>,
    pub until: Option<DateTime<Utc>>,
}

enum Command {
    SetAck { fingerprint: String, ack: Option<Ack>, reply: oneshot::Sender<Result<(), CommandError>> },
    ReloadSilences,
}

impl Handle {
    /// Acknowledges an active alert; returns once it is recorded (and the acknowledgement is queued
    /// for the receivers that were paged).
    pub async fn acknowledge(&self, fingerprint: &str, ack: Ack) -> Result<(), CommandError> {
        self.set_ack(fingerprint, Some(ack)).await
    }

    /// Takes an acknowledgement back: escalation and repeats resume.
    pub async fn unacknowledge(&self, fingerprint: &str) -> Result<(), CommandError> {
        self.set_ack(fingerprint, None).await
    }

    async fn set_ack(&self, fingerprint: &str, ack: Option<Ack>) -> Result<(), CommandError> {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::SetAck { fingerprint: fingerprint.to_string(), ack, reply };
        self.commands.send(cmd).await.map_err(|_| CommandError::Stopped)?;
        rx.await.map_err(|_| CommandError::Stopped)?
    }

    /// The intents being checked (their results are in the `intent_result` table).
    pub fn intents(&self) -> Arc<Vec<Intent>> {
        self.intents.clone()
    }

    /// Silences changed in the database: apply them now rather than at the next reload.
    pub async fn reload_silences(&self) {
        let _ = self.commands.send(Command::ReloadSilences).await;
    }
}

/// Starts the service. It restores what the database holds, then runs until `cancel`, writing
/// what is still unwritten before it returns.
pub fn spawn(
    pool: deadpool_postgres::Pool,
    alerting: Alerting,
    inputs: Inputs,
    opts: Options,
    cancel: CancellationToken,
) -> (Handle, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(64);
    let stats = Arc::new(Stats::default());
    let (intent_tx, intent_rx) = mpsc::unbounded_channel();
    let writer = intent::store::spawn_writer(pool.clone(), intent_rx, cancel.clone());
    let mut alerting = alerting;
    let (metric_tx, metric_rx) = mpsc::channel(16);
    let metric_queries = std::mem::take(&mut alerting.metrics);
    let _metric_tasks = crate::metric::spawn(pool.clone(), metric_queries, metric_tx, cancel.clone());
    let mut service = Service::new(pool, alerting, inputs.topology, opts, stats.clone(), intent_tx);
    let handle = Handle { commands: tx, stats, intents: service.intents.intents() };
    let task = tokio::spawn(async move {
        service.run(inputs.observations, inputs.devices, rx, metric_rx, cancel).await;
        // The writer drains what the service sent before it stopped.
        drop(service);
        let _ = writer.await;
    });
    (handle, task)
}

/// What a step changed and the database has not yet recorded.
#[derive(Default)]
struct Unwritten {
    transitions: Vec<Transition>,
    suppressions: Vec<(String, Option<Suppression>, DateTime<Utc>)>,
    acks: Vec<(String, Option<Ack>, DateTime<Utc>)>,
    notifications: Vec<Notification>,
    /// Groups changed (or ended) since they were last saved.
    groups: BTreeSet<String>,
}

impl Unwritten {
    fn is_empty(&self) -> bool {
        self.transitions.is_empty()
            && self.suppressions.is_empty()
            && self.acks.is_empty()
            && self.notifications.is_empty()
            && self.groups.is_empty()
    }
}

/// The devices cut off by down devices, cached for one topology graph and one set of down devices.
#[derive(Default)]
struct CutOff {
    topology: Option<Arc<Topology>>,
    down: Vec<String>,
    map: BTreeMap<String, String>,
}

struct Service {
    pool: deadpool_postgres::Pool,
    /// The connection steps are written on (kept while it works).
    conn: Option<deadpool_postgres::Object>,
    engine: Engine,
    dispatcher: Option<Dispatcher>,
    alerting: Alerting,
    topology: Arc<RwLock<Arc<Topology>>>,
    opts: Options,
    stats: Arc<Stats>,
    silences: Vec<Silence>,
    acks: HashMap<String, Ack>,
    /// Firing alerts and the reason each is suppressed, as last decided.
    suppressed: HashMap<String, Option<Suppression>>,
    /// An input of every alert's suppression changed (silences, devices, restored state): decide all again.
    suppression_stale: bool,
    /// The next time a silence or maintenance window starts or ends (then all is decided again).
    suppression_boundary: Option<DateTime<Utc>>,
    cut_off: CutOff,
    unwritten: Unwritten,
    /// Groups this service saved (only those are ever deleted).
    saved_groups: HashSet<String>,
    failing_since: Option<DateTime<Utc>>,
    /// The last configuration event turned into readings (`None` until read at start).
    config_cursor: Option<i64>,
    intents: IntentEngine,
    /// Changed intent results, to the writer task.
    intent_writes: mpsc::UnboundedSender<Vec<intent::store::Write>>,
}

/// The longest diff carried into an alert's annotations (notifications cut further as each
/// receiver needs).
const MAX_DIFF_CHARS: usize = 2500;

fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn device_metas(list: &[ScheduledDevice]) -> Vec<DeviceMeta> {
    list.iter().map(|d| DeviceMeta::from_device(d.id, &d.device)).collect()
}

impl Service {
    fn new(
        pool: deadpool_postgres::Pool,
        mut alerting: Alerting,
        topology: Arc<RwLock<Arc<Topology>>>,
        opts: Options,
        stats: Arc<Stats>,
        intent_writes: mpsc::UnboundedSender<Vec<intent::store::Write>>,
    ) -> Service {
        let engine = Engine::new(std::mem::take(&mut alerting.rules));
        let intents = IntentEngine::new(std::mem::take(&mut alerting.intents));
        let dispatcher = alerting.routing.take().map(|t| Dispatcher::new(t, alerting.external_url.clone()));
        Service {
            pool,
            conn: None,
            engine,
            dispatcher,
            alerting,
            topology,
            opts,
            stats,
            silences: Vec::new(),
            acks: HashMap::new(),
            suppressed: HashMap::new(),
            suppression_stale: true,
            suppression_boundary: None,
            cut_off: CutOff::default(),
            unwritten: Unwritten::default(),
            saved_groups: HashSet::new(),
            failing_since: None,
            config_cursor: None,
            intents,
            intent_writes,
        }
    }

    async fn run(
        &mut self,
        mut observations: mpsc::Receiver<Observation>,
        mut devices: watch::Receiver<Vec<ScheduledDevice>>,
        mut commands: mpsc::Receiver<Command>,
        mut metrics: mpsc::Receiver<crate::metric::MetricBatch>,
        cancel: CancellationToken,
    ) {
        self.restore_until_done(&devices, &cancel).await;
        let initial = device_metas(&devices.borrow_and_update());
        self.set_intent_devices(initial.clone());
        let t = self.engine.set_devices(initial, now_ms());
        self.step(t, Utc::now());
        let _ = self.write().await;
        tracing::info!(
            rules = self.engine.rules().len(),
            active = self.engine.active().count(),
            routing = self.dispatcher.is_some(),
            "alert service started"
        );
        let mut next_silence_reload = tokio::time::Instant::now() + self.opts.silence_reload;
        let mut next_config_poll = tokio::time::Instant::now();
        let mut next_tick = tokio::time::Instant::now() + self.opts.tick;
        let mut buf = Vec::with_capacity(256);
        // Inputs that closed (their producer stopped) are no longer watched; only `cancel` stops the
        // service, so acknowledgements and timers keep working until then.
        let (mut observing, mut following) = (true, true);
        loop {
            // The tick's deadline is kept across iterations: a steady stream of observations must not
            // postpone timers (for:, group waits, escalations, silence ends) indefinitely.
            let wake_at = self.next_wake(next_tick);
            tokio::select! {
                _ = cancel.cancelled() => break,
                n = observations.recv_many(&mut buf, 1024), if observing => {
                    if n == 0 {
                        observing = false;
                        continue;
                    }
                    self.observe(&mut buf);
                }
                r = devices.changed(), if following => {
                    if r.is_err() {
                        following = false;
                        continue;
                    }
                    let list = device_metas(&devices.borrow_and_update());
                    self.set_intent_devices(list.clone());
                    let t = self.engine.set_devices(list, now_ms());
                    // Maintenance windows are scoped by device metadata.
                    self.suppression_stale = true;
                    self.step(t, Utc::now());
                }
                Some(cmd) = commands.recv() => {
                    self.command(cmd).await;
                    continue;
                }
                Some(batch) = metrics.recv() => self.metric_batch(batch),
                _ = tokio::time::sleep_until(wake_at) => {
                    let now = tokio::time::Instant::now();
                    if now >= next_tick {
                        next_tick = now + self.opts.tick;
                    }
                    if tokio::time::Instant::now() >= next_silence_reload {
                        self.reload_silences().await;
                        next_silence_reload = tokio::time::Instant::now() + self.opts.silence_reload;
                    }
                    if tokio::time::Instant::now() >= next_config_poll {
                        self.read_config_changes().await;
                        next_config_poll = tokio::time::Instant::now() + self.opts.config_poll;
                    }
                    self.tick();
                }
            }
            let _ = self.write().await;
        }
        let _ = self.write().await;
        if !self.unwritten.is_empty() {
            tracing::error!(
                transitions = self.unwritten.transitions.len(),
                notifications = self.unwritten.notifications.len(),
                "alert service stopped with changes the database did not take; they are re-derived after restart"
            );
        }
    }

    /// The next timer: the next tick, or earlier when a group is due sooner.
    fn next_wake(&self, next_tick: tokio::time::Instant) -> tokio::time::Instant {
        match self.dispatcher.as_ref().and_then(Dispatcher::next_due) {
            Some(at) => {
                let wait = (at - Utc::now()).to_std().unwrap_or(Duration::ZERO);
                next_tick.min(tokio::time::Instant::now() + wait)
            }
            None => next_tick,
        }
    }

    fn observe(&mut self, buf: &mut Vec<Observation>) {
        let now = now_ms();
        self.stats.observations.fetch_add(buf.len() as u64, Ordering::Relaxed);
        let mut transitions = Vec::new();
        for obs in buf.drain(..) {
            transitions.extend(self.engine.observe(&obs, now));
            if let Some(ev) = self.intents.observe(&obs) {
                // Every intent in scope is reported: intent series of this device not among them resolve.
                let complete: &[SourceKind] = &[SourceKind::Intent];
                transitions.extend(self.engine.ingest(ev.readings, Some((ev.device_id, complete)), false, now));
                let mut writes: Vec<intent::store::Write> =
                    ev.changed.into_iter().map(intent::store::Write::Result).collect();
                writes.extend(
                    ev.removed
                        .into_iter()
                        .map(|(intent, device_id)| intent::store::Write::Removed { intent, device_id }),
                );
                if !writes.is_empty() {
                    let _ = self.intent_writes.send(writes);
                }
            }
        }
        self.step(transitions, Utc::now());
    }

    /// One complete run of a metric query: its rows replace the metric's series.
    fn metric_batch(&mut self, batch: crate::metric::MetricBatch) {
        let by_name: HashMap<&str, &DeviceMeta> = self.engine.devices().map(|d| (d.name.as_str(), d)).collect();
        let (readings, unknown) = crate::metric::readings(&batch, |n| by_name.get(n).copied());
        drop(by_name);
        if !unknown.is_empty() {
            tracing::debug!(metric = %batch.metric, rows = unknown.len(), first = %unknown[0], "metric rows name devices not in the inventory");
        }
        let prefix = crate::metric::item_prefix(&batch.metric);
        let t = self.engine.ingest_set(SourceKind::Metric, &prefix, readings, now_ms());
        self.step(t, Utc::now());
    }

    fn set_intent_devices(&mut self, devices: Vec<DeviceMeta>) {
        let removed = self.intents.set_devices(devices);
        if !removed.is_empty() {
            let writes = removed
                .into_iter()
                .map(|(intent, device_id)| intent::store::Write::Removed { intent, device_id })
                .collect();
            let _ = self.intent_writes.send(writes);
        }
    }

    fn tick(&mut self) {
        let now = Utc::now();
        let transitions = self.engine.tick(now.timestamp_millis());
        // Acknowledgements that ran out.
        let expired: Vec<String> =
            self.acks.iter().filter(|(_, a)| a.until.is_some_and(|u| u <= now)).map(|(fp, _)| fp.clone()).collect();
        for fp in expired {
            self.set_ack_now(&fp, None, now);
        }
        self.step(transitions, now);
    }

    async fn command(&mut self, cmd: Command) {
        match cmd {
            Command::ReloadSilences => {
                self.reload_silences().await;
                self.step(Vec::new(), Utc::now());
                let _ = self.write().await;
            }
            Command::SetAck { fingerprint, ack, reply } => {
                if !self.engine.active().any(|i| i.fingerprint == fingerprint) {
                    let _ = reply.send(Err(CommandError::NotFound(fingerprint)));
                    return;
                }
                let now = Utc::now();
                self.set_ack_now(&fingerprint, ack, now);
                self.step(Vec::new(), now);
                let r = self.write().await.map_err(CommandError::Database);
                let _ = reply.send(r);
            }
        }
    }

    /// Applies an acknowledgement change to the state and the dispatcher (recorded by the next write).
    fn set_ack_now(&mut self, fingerprint: &str, ack: Option<Ack>, now: DateTime<Utc>) {
        match &ack {
            Some(a) => self.acks.insert(fingerprint.to_string(), a.clone()),
            None => self.acks.remove(fingerprint),
        };
        self.unwritten.acks.push((fingerprint.to_string(), ack, now));
        let Some(inst) = self.engine.active().find(|i| i.fingerprint == fingerprint).cloned() else { return };
        if inst.state == AlertState::Firing {
            let update = self.update_for_instance(&inst);
            self.dispatch(update, now);
        }
    }

    /// One step: transitions and suppression changes go to the dispatcher, then due groups flush.
    fn step(&mut self, transitions: Vec<Transition>, now: DateTime<Utc>) {
        let changed = self.update_suppression(&transitions, now);
        let mut touched = HashSet::new();
        for t in &transitions {
            touched.insert(t.fingerprint.as_str());
            if t.state == AlertState::Resolved {
                self.acks.remove(&t.fingerprint);
            }
            let suppressed = self.suppressed.get(&t.fingerprint).cloned().flatten();
            if let Some(u) = self.update_for_transition(t, suppressed) {
                self.dispatch(u, now);
            }
        }
        let mut others = Vec::new();
        for (fp, sup) in changed {
            if !touched.contains(fp.as_str()) {
                others.push((fp.clone(), sup.clone()));
            }
            self.unwritten.suppressions.push((fp, sup, now));
        }
        if !others.is_empty() {
            let index: HashMap<&str, &Instance> = self.engine.active().map(|i| (i.fingerprint.as_str(), i)).collect();
            let updates: Vec<AlertUpdate> = others
                .into_iter()
                .filter_map(|(fp, sup)| {
                    let mut u = self.update_for_instance(index.get(fp.as_str())?);
                    u.suppressed = sup;
                    Some(u)
                })
                .collect();
            for u in updates {
                self.dispatch(u, now);
            }
        }
        if let Some(d) = self.dispatcher.as_mut() {
            let due = d.tick(now);
            self.unwritten.notifications.extend(due);
            self.unwritten.groups.extend(d.take_changed());
        }
        self.stats.transitions.fetch_add(transitions.len() as u64, Ordering::Relaxed);
        self.unwritten.transitions.extend(transitions);
        self.count_active();
    }

    /// Brings the suppression of every firing alert up to date; returns the alerts whose suppression changed,
    /// with the new reason. Everything is decided again only when an input that other alerts' suppression
    /// depends on changed: silences, devices, the devices cut off by down devices, a silence or window starting
    /// or ending, or (with inhibition rules) the set of firing alerts. Otherwise only the alerts that started
    /// or stopped firing in `transitions` are looked at, so a step costs its own alerts, not all active ones.
    fn update_suppression(
        &mut self,
        transitions: &[Transition],
        now: DateTime<Utc>,
    ) -> Vec<(String, Option<Suppression>)> {
        // Finding the down devices scans the engine's series: only worth it while something fires.
        let any_firing = !self.suppressed.is_empty() || transitions.iter().any(|t| t.state == AlertState::Firing);
        let cut_off_changed = any_firing && self.refresh_cut_off();
        let firing_changed =
            transitions.iter().any(|t| (t.state == AlertState::Firing) != self.suppressed.contains_key(&t.fingerprint));
        let full = self.suppression_stale
            || cut_off_changed
            || self.suppression_boundary.is_some_and(|b| now >= b)
            || (firing_changed && !self.alerting.inhibit.is_empty());
        let mut changed = Vec::new();
        if full {
            let decided = self.decide_suppression(now);
            for (fp, sup) in &decided {
                let differs = match self.suppressed.get(fp) {
                    Some(before) => before != sup,
                    None => sup.is_some(),
                };
                if differs {
                    changed.push((fp.clone(), sup.clone()));
                }
            }
            self.suppressed = decided;
            self.suppression_stale = false;
            self.suppression_boundary = suppress::next_boundary(&self.silences, &self.alerting.windows, now);
        } else if firing_changed {
            // Without inhibition rules an alert's suppression does not depend on the other firing alerts.
            let mut last: HashMap<&str, &Transition> = HashMap::new();
            for t in transitions {
                last.insert(&t.fingerprint, t);
            }
            let ctx = suppress::Context::new(
                &self.silences,
                &self.alerting.windows,
                &self.alerting.inhibit,
                &[],
                &self.cut_off.map,
                now,
            );
            for (fp, t) in last {
                if t.state != AlertState::Firing {
                    self.suppressed.remove(fp);
                } else if !self.suppressed.contains_key(fp) {
                    let sup = suppress::suppression(fp, &t.labels, self.engine.device(t.device_id), &ctx);
                    if sup.is_some() {
                        changed.push((fp.to_string(), sup.clone()));
                    }
                    self.suppressed.insert(fp.to_string(), sup);
                }
            }
        }
        changed
    }

    fn dispatch(&mut self, u: AlertUpdate, now: DateTime<Utc>) {
        if let Some(d) = self.dispatcher.as_mut() {
            let out = d.update(u, now);
            self.unwritten.notifications.extend(out);
            self.unwritten.groups.extend(d.take_changed());
        }
    }

    fn count_active(&self) {
        let (mut firing, mut pending) = (0u64, 0u64);
        for i in self.engine.active() {
            match i.state {
                AlertState::Firing => firing += 1,
                AlertState::Pending => pending += 1,
                AlertState::Resolved => {}
            }
        }
        let suppressed = self.suppressed.values().filter(|s| s.is_some()).count() as u64;
        self.stats.firing.store(firing, Ordering::Relaxed);
        self.stats.pending.store(pending, Ordering::Relaxed);
        self.stats.suppressed.store(suppressed, Ordering::Relaxed);
        metrics::gauge!("netwarden_alerts_firing").set(firing as f64);
        metrics::gauge!("netwarden_alerts_pending").set(pending as f64);
        metrics::gauge!("netwarden_alerts_suppressed").set(suppressed as f64);
    }

    /// The suppression of every firing alert now.
    fn decide_suppression(&mut self, now: DateTime<Utc>) -> HashMap<String, Option<Suppression>> {
        let engine = &self.engine;
        let firing: Vec<(&str, &Labels)> = engine
            .active()
            .filter(|i| i.state == AlertState::Firing)
            .map(|i| (i.fingerprint.as_str(), &i.labels))
            .collect();
        if firing.is_empty() {
            return HashMap::new();
        }
        let ctx = suppress::Context::new(
            &self.silences,
            &self.alerting.windows,
            &self.alerting.inhibit,
            &firing,
            &self.cut_off.map,
            now,
        );
        let device_of: HashMap<&str, i64> =
            engine.active().map(|i| (i.fingerprint.as_str(), i.series.device_id)).collect();
        firing
            .iter()
            .map(|(fp, labels)| {
                let device = device_of.get(fp).and_then(|id| engine.device(*id));
                (fp.to_string(), suppress::suppression(fp, labels, device, &ctx))
            })
            .collect()
    }

    /// Updates the devices cut off by down devices; returns whether they changed.
    fn refresh_cut_off(&mut self) -> bool {
        if !self.alerting.topology.enabled {
            return false;
        }
        let topology = self.topology.read().expect("topology lock").clone();
        let down = self.engine.down_devices();
        let same_graph = self.cut_off.topology.as_ref().is_some_and(|t| Arc::ptr_eq(t, &topology));
        if same_graph && self.cut_off.down == down {
            return false;
        }
        let map = if down.is_empty() {
            BTreeMap::new()
        } else {
            let refs: Vec<&str> = down.iter().map(String::as_str).collect();
            topology.cut_off_by(&refs, &self.alerting.topology.root_role)
        };
        let changed = map != self.cut_off.map;
        if changed {
            tracing::info!(down = ?down, cut_off = map.len(), "devices cut off by down devices changed");
        }
        self.cut_off = CutOff { topology: Some(topology), down, map };
        changed
    }

    fn snapshot(&self, t: &Transition, state: AlertState) -> AlertSnapshot {
        AlertSnapshot {
            fingerprint: t.fingerprint.clone(),
            rule: t.rule.clone(),
            severity: t.severity,
            state,
            labels: t.labels.clone(),
            annotations: t.annotations.clone(),
            starts_at: t.firing_since.unwrap_or(t.at),
            ends_at: (state == AlertState::Resolved).then_some(t.at),
            value: None,
            flapping: t.flapping,
            acknowledged_by: self.acks.get(&t.fingerprint).map(|a| a.by.clone()),
            url: format!("{}/alerts/{}", self.alerting.external_url.trim_end_matches('/'), t.fingerprint),
        }
    }

    /// The dispatcher's view of a transition; `None` for changes nobody is notified of.
    fn update_for_transition(&self, t: &Transition, suppressed: Option<Suppression>) -> Option<AlertUpdate> {
        let state = match (t.change, t.state) {
            (Change::Pending | Change::PendingCancelled, _) => return None,
            (_, AlertState::Pending) => return None,
            (_, s) => s,
        };
        let firing = state == AlertState::Firing;
        Some(AlertUpdate {
            alert: self.snapshot(t, state),
            suppressed: if firing { suppressed } else { None },
            acknowledged: firing && self.acks.contains_key(&t.fingerprint),
            flapping: t.flapping,
            flapping_started: t.change == Change::FlappingStarted,
        })
    }

    /// The dispatcher's view of an active alert whose suppression or acknowledgement changed.
    fn update_for_instance(&self, inst: &Instance) -> AlertUpdate {
        let rule = &self.engine.rules()[inst.rule];
        let t = Transition {
            fingerprint: inst.fingerprint.clone(),
            rule: rule.name.clone(),
            severity: rule.severity,
            labels: inst.labels.clone(),
            annotations: inst.annotations.clone(),
            change: Change::Firing,
            state: inst.state,
            at: Utc::now(),
            active_since: crate::dispatch::time(inst.active_since),
            firing_since: inst.firing_since.map(crate::dispatch::time),
            flapping: self.engine.is_flapping(&inst.fingerprint),
            device_id: inst.series.device_id,
            series: inst.series.clone(),
        };
        AlertUpdate {
            alert: self.snapshot(&t, inst.state),
            suppressed: self.suppressed.get(&inst.fingerprint).cloned().flatten(),
            acknowledged: self.acks.contains_key(&inst.fingerprint),
            flapping: t.flapping,
            flapping_started: false,
        }
    }

    /// Configuration changes since the cursor become `config` readings (at start the cursor is set
    /// to the newest change, so changes from before the start are not alerted on again).
    async fn read_config_changes(&mut self) {
        let conn = match self.pool.get().await {
            Ok(c) => c,
            Err(e) => return tracing::debug!(error = %e, "configuration changes: no database connection"),
        };
        let Some(after) = self.config_cursor else {
            match collector::configs::store::latest_event_id(&**conn).await {
                Ok(id) => self.config_cursor = Some(id),
                Err(e) => tracing::warn!(error = %collector::db::error_text(&e), "cannot read configuration changes"),
            }
            return;
        };
        let events = match collector::configs::store::events_after(&**conn, after, None, 1000).await {
            Ok(ev) => ev,
            Err(e) => {
                return tracing::warn!(error = %collector::db::error_text(&e), "cannot read configuration changes");
            }
        };
        drop(conn);
        let mut transitions = Vec::new();
        for ev in &events {
            self.config_cursor = Some(ev.id);
            let Some(meta) = self.engine.device(ev.device_id).cloned() else { continue };
            let readings = crate::source::config_change_readings(
                ev.device_id,
                &meta,
                i64::from(ev.lines_added),
                i64::from(ev.lines_removed),
                &ev.trigger,
                &ev.diff,
                MAX_DIFF_CHARS,
            );
            // The change and its end go in one after the other, so the change is evaluated on its own.
            for r in readings {
                transitions.extend(self.engine.ingest(vec![r], None, false, now_ms()));
            }
        }
        if !transitions.is_empty() {
            self.step(transitions, Utc::now());
        }
    }

    async fn reload_silences(&mut self) {
        let rows = match self.pool.get().await {
            Ok(c) => store::silences(&**c, Utc::now()).await.map_err(|e| collector::db::error_text(&e)),
            Err(e) => Err(e.to_string()),
        };
        match rows {
            Ok(rows) => {
                let silences: Vec<Silence> = rows
                    .iter()
                    .filter_map(|r| {
                        r.compile().map_err(|e| tracing::warn!(silence = r.id, error = %e, "ignoring a silence")).ok()
                    })
                    .collect();
                if silences != self.silences {
                    self.silences = silences;
                    self.suppression_stale = true;
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot read silences; keeping the ones loaded"),
        }
    }

    /// Writes what is unwritten in one transaction, in one round trip, and hands the notifications to the
    /// outbox worker (claimed for it in that transaction) once it commits. On failure it stays unwritten (and
    /// is retried with the next step).
    async fn write(&mut self) -> Result<(), String> {
        if self.unwritten.is_empty() {
            return Ok(());
        }
        let u = &self.unwritten;
        let mut rows = store::StepRows::default();
        rows.transitions(&u.transitions);
        let acks: Vec<store::AckChange<'_>> = u
            .acks
            .iter()
            .map(|(fingerprint, ack, at)| store::AckChange {
                fingerprint,
                by: ack.as_ref().map(|a| a.by.as_str()),
                comment: ack.as_ref().and_then(|a| a.comment.as_deref()),
                until: ack.as_ref().and_then(|a| a.until),
                at: *at,
            })
            .collect();
        rows.acks(&acks);
        rows.suppressions(&u.suppressions);
        let (mut saved, mut deleted) = (Vec::new(), Vec::new());
        if let Some(d) = &self.dispatcher {
            for key in &u.groups {
                match d.groups.get(key) {
                    Some(g) => {
                        rows.save_group(g);
                        saved.push(key.clone());
                    }
                    None if self.saved_groups.contains(key) => {
                        rows.delete_group(key);
                        deleted.push(key.clone());
                    }
                    None => {}
                }
            }
        }
        let sent = u.notifications.len();
        let claim = if sent > 0 { self.opts.outbox_wake.claim_lease(sent) } else { None };
        // The service keeps one connection for its steps, so their statements are prepared once; after an
        // error it is given back to the pool (which checks it) and the next step takes another.
        let kept = self.conn.take().filter(|c| !c.is_closed());
        let result = async {
            let batch = crate::outbox::InsertBatch::new(&u.notifications, claim);
            let conn = match kept {
                Some(c) => c,
                None => self.pool.get().await.map_err(|e| format!("database connection: {e}"))?,
            };
            match store::write_step(&conn, &rows, &batch).await {
                Ok(ids) => Ok((conn, ids)),
                Err(e) => Err(collector::db::error_text(&e)),
            }
        }
        .await;
        match result {
            Ok((conn, outbox_rows)) => {
                self.conn = Some(conn);
                self.saved_groups.extend(saved);
                for k in &deleted {
                    self.saved_groups.remove(k);
                }
                let written = std::mem::take(&mut self.unwritten);
                if sent > 0 {
                    self.stats.notifications.fetch_add(sent as u64, Ordering::Relaxed);
                    metrics::counter!("netwarden_alert_notifications_enqueued_total").increment(sent as u64);
                    if claim.is_some() {
                        self.opts.outbox_wake.hand_over(written.notifications, &outbox_rows);
                    } else {
                        self.opts.outbox_wake.notify_one();
                    }
                }
                if let Some(since) = self.failing_since.take() {
                    tracing::info!(%since, "alert changes are recorded again");
                }
                Ok(())
            }
            Err(e) => {
                self.stats.write_failures.fetch_add(1, Ordering::Relaxed);
                if self.failing_since.is_none() {
                    self.failing_since = Some(Utc::now());
                    tracing::warn!(
                        error = %e,
                        "cannot record alert changes; keeping them in memory and retrying with the next step"
                    );
                }
                Err(e)
            }
        }
    }

    /// Restores the state saved before a restart, retrying while the database is unavailable.
    async fn restore_until_done(
        &mut self,
        devices: &watch::Receiver<Vec<ScheduledDevice>>,
        cancel: &CancellationToken,
    ) {
        let mut delay = Duration::from_secs(1);
        loop {
            match self.restore(devices).await {
                Ok(n) => {
                    if n > 0 {
                        tracing::info!(alerts = n, "restored active alerts");
                    }
                    return;
                }
                Err(e) => tracing::warn!(error = %e, "cannot restore alert state yet; retrying"),
            }
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(Duration::from_secs(30));
        }
    }

    async fn restore(&mut self, devices: &watch::Receiver<Vec<ScheduledDevice>>) -> Result<usize, String> {
        let conn = self.pool.get().await.map_err(|e| format!("database connection: {e}"))?;
        let db = |e: tokio_postgres::Error| collector::db::error_text(&e);
        let stored = store::active_alerts(&**conn).await.map_err(db)?;
        let groups = store::load_groups(&**conn).await.map_err(db)?;
        let defined: Vec<String> = self.intents.intents().iter().map(|i| i.name.clone()).collect();
        intent::store::forget_undefined(&**conn, &defined, Utc::now()).await.map_err(db)?;
        let results = intent::store::results(&**conn, &Default::default()).await.map_err(db)?;
        self.intents.restore(results.into_iter().filter_map(intent::store::StoredResult::into_result).collect());
        drop(conn);
        let metas = device_metas(&devices.borrow());
        self.engine.set_devices(metas, now_ms());
        let n = stored.len();
        let mut gone = Vec::new();
        for a in stored {
            if let Some(ack) = &a.acknowledged_by {
                let ack = Ack { by: ack.clone(), comment: a.ack_comment.clone(), until: a.ack_until };
                self.acks.insert(a.fingerprint.clone(), ack);
            }
            if a.state == "firing" {
                self.suppressed.insert(a.fingerprint.clone(), a.suppressed_by.clone());
            }
            if !self.restore_one(&a) {
                gone.push(a);
            }
        }
        if let Some(d) = self.dispatcher.as_mut() {
            self.saved_groups = groups.iter().map(|g| g.key.clone()).collect();
            d.restore(groups);
        }
        self.suppression_stale = true;
        // Alerts whose rule was removed (or whose series cannot be named any more) resolve now.
        let now = Utc::now();
        let resolved: Vec<Transition> = gone.iter().map(|a| resolved_transition(a, now)).collect();
        self.step(resolved, now);
        Ok(n)
    }

    fn restore_one(&mut self, a: &StoredAlert) -> bool {
        let state = match a.state.as_str() {
            "firing" => AlertState::Firing,
            "pending" => AlertState::Pending,
            _ => return false,
        };
        let (Ok(kind), Some(device_id)) = (a.series_kind.parse(), a.device_id) else { return false };
        let series = SeriesKey { kind, device_id, item: a.series_item.as_str().into() };
        self.engine.restore(SavedAlert {
            rule: a.rule.clone(),
            series,
            state,
            labels: a.labels.clone(),
            annotations: a.annotations.clone(),
            active_since: a.active_since,
            firing_since: a.firing_since,
            fingerprint: a.fingerprint.clone(),
        })
    }
}

/// A resolved transition for a stored alert that cannot be restored.
fn resolved_transition(a: &StoredAlert, now: DateTime<Utc>) -> Transition {
    let kind = a.series_kind.parse().unwrap_or(crate::source::SourceKind::Device);
    let device_id = a.device_id.unwrap_or_default();
    Transition {
        fingerprint: a.fingerprint.clone(),
        rule: a.rule.clone(),
        severity: store::severity(&a.severity),
        labels: a.labels.clone(),
        annotations: a.annotations.clone(),
        change: if a.state == "firing" { Change::Resolved } else { Change::PendingCancelled },
        state: AlertState::Resolved,
        at: now,
        active_since: a.active_since,
        firing_since: a.firing_since,
        flapping: a.flapping,
        device_id,
        series: SeriesKey { kind, device_id, item: a.series_item.as_str().into() },
    }
}
