//! The polling scheduler: every device on its own interval, spread by a stable offset, under a
//! global cap on polls in flight. An overrunning poll makes the scheduler skip (and count) the
//! ticks it covered, never stack them; a failing device backs off and is marked down.
//!
//! A poll holds its in-flight slot only while it talks to the device. Its result goes to the
//! alert service (in memory) and to the [`StateWriter`], which records device and interface state
//! for many devices at once and then hands the sample rows to the sample writer: no device waits
//! for the database between its polls.

use crate::counters::{CounterState, InterfaceRates};
use crate::ifmib::{self, InterfaceRow};
use crate::inventory::Device;
use crate::observe::{Observation, Outcome, SchedulerHooks};
use crate::poll::poll_device;
use crate::snmp::{ClientOptions, SnmpClient};
use crate::store::{
    IfSampleRow, PollSampleRow, StateHandle, StateOutcome, StateUpdate, StateWriter, StateWriterOptions, WriterHandle,
};
use chrono::Utc;
use deadpool_postgres::Pool;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{Semaphore, watch};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    pub default_interval: Duration,
    pub max_in_flight: usize,
    pub client: ClientOptions,
    /// Consecutive failed polls before a device is marked down.
    pub down_after_failures: i32,
    /// Longest pause between polls of a failing device.
    pub max_backoff: Duration,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        SchedulerOptions {
            default_interval: Duration::from_secs(60),
            max_in_flight: 256,
            client: ClientOptions::default(),
            down_after_failures: 2,
            max_backoff: Duration::from_secs(600),
        }
    }
}

/// Totals since start, for the API, `/metrics` and benchmarks.
#[derive(Debug, Default)]
pub struct SchedulerStats {
    pub polls_ok: AtomicU64,
    pub polls_failed: AtomicU64,
    pub polls_skipped: AtomicU64,
    pub db_errors: AtomicU64,
}

/// A device as the scheduler needs it: stored (has an id) and validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledDevice {
    pub id: i64,
    pub device: Device,
}

struct Shared {
    state: StateHandle,
    permits: Semaphore,
    opts: SchedulerOptions,
    stats: Arc<SchedulerStats>,
    hooks: SchedulerHooks,
}

impl Shared {
    /// Tells the alert service what a poll found (never waits) and queues its state for the state
    /// writer (waits only while that queue is full).
    async fn report(
        &self,
        d: &ScheduledDevice,
        at: chrono::DateTime<chrono::Utc>,
        outcome: Outcome,
        state: StateOutcome,
        poll_rows: Vec<PollSampleRow>,
    ) {
        self.hooks.observe(Observation { device_id: d.id, device: d.device.name.clone(), at, outcome });
        let update = StateUpdate { device_id: d.id, device: d.device.name.clone(), at, outcome: state, poll_rows };
        self.state.send(update).await;
    }
}

/// Runs until `cancel`; follows the device list published on `devices` (add, change, remove).
pub async fn run(
    pool: Pool,
    writer: WriterHandle,
    opts: SchedulerOptions,
    stats: Arc<SchedulerStats>,
    hooks: SchedulerHooks,
    mut devices: watch::Receiver<Vec<ScheduledDevice>>,
    cancel: CancellationToken,
) {
    let permits = Semaphore::new(opts.max_in_flight.max(1));
    let state_opts = StateWriterOptions { down_after_failures: opts.down_after_failures, ..Default::default() };
    let (state, state_task) = StateWriter::spawn(pool, writer, stats.clone(), state_opts);
    let shared = Arc::new(Shared { state, permits, opts, stats, hooks });
    let mut running: HashMap<i64, (ScheduledDevice, CancellationToken, tokio::task::JoinHandle<()>)> = HashMap::new();
    loop {
        let wanted: Vec<ScheduledDevice> = devices.borrow_and_update().clone();
        let wanted_ids: std::collections::HashSet<i64> = wanted.iter().map(|d| d.id).collect();
        running.retain(|id, (_, tok, _)| {
            let keep = wanted_ids.contains(id);
            if !keep {
                tok.cancel();
            }
            keep
        });
        for d in wanted {
            if let Some((old, tok, _)) = running.get(&d.id) {
                if *old == d {
                    continue;
                }
                tok.cancel();
            }
            let tok = cancel.child_token();
            let task = tokio::spawn(device_loop(shared.clone(), d.clone(), tok.clone()));
            running.insert(d.id, (d, tok, task));
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            changed = devices.changed() => if changed.is_err() { break },
        }
    }
    for (_, (_, tok, task)) in running {
        tok.cancel();
        let _ = task.await;
    }
    // The last handle goes: the state writer records what it holds, hands the samples on and ends.
    drop(shared);
    let _ = state_task.await;
}

/// Where in the interval a device polls: a hash of its name, so the phase is the same across
/// restarts and the devices spread evenly.
pub fn stable_offset(name: &str, interval: Duration) -> Duration {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    let ms = interval.as_millis().max(1) as u64;
    Duration::from_millis(h % ms)
}

/// Delay until the next instant that is `offset` past a multiple of `interval` (wall clock).
fn delay_to_phase(interval: Duration, offset: Duration) -> Duration {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    let iv = interval.as_millis().max(1);
    let pos = (now.as_millis() + iv - offset.as_millis() % iv) % iv;
    Duration::from_millis(((iv - pos) % iv) as u64)
}

async fn device_loop(shared: Arc<Shared>, d: ScheduledDevice, cancel: CancellationToken) {
    let interval = d.device.poll_interval.unwrap_or(shared.opts.default_interval);
    let start = Instant::now() + delay_to_phase(interval, stable_offset(&d.device.name, interval));
    let mut ticker = tokio::time::interval_at(start, interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Skip);
    let mut client = SnmpClient::new(d.device.snmp_target(), d.device.snmp.clone(), shared.opts.client.clone());
    let mut counters = CounterState::default();
    let _forget = Forget(shared.state.clone(), d.id);
    let mut last_poll: Option<Instant> = None;
    let mut failures: u32 = 0;
    let mut resume_at: Option<Instant> = None;
    let poll_now = shared.hooks.poll_now.as_ref().map(|p| (p.clone(), p.register(d.id)));
    let _unregister = Unregister(poll_now.as_ref().map(|(p, _)| (p.clone(), d.id)));
    loop {
        let scheduled = tokio::select! {
            _ = cancel.cancelled() => return,
            t = ticker.tick() => t,
            // notify_one keeps a permit when nobody waits, so a request between polls is not lost.
            () = requested(poll_now.as_ref().map(|(_, n)| n.clone())) => {
                // This poll runs even while backing off: a trap says the device is talking again.
                resume_at = None;
                metrics::counter!("netwarden_polls_requested_total").increment(1);
                Instant::now()
            }
        };
        if resume_at.is_some_and(|r| scheduled < r) {
            continue; // backing off a failing device: not an overrun
        }
        let Ok(_permit) = shared.permits.acquire().await else { return };
        let lag = scheduled.elapsed();
        metrics::histogram!("netwarden_poll_lag_seconds").record(lag.as_secs_f64());
        let at = Utc::now();
        let result = tokio::select! {
            _ = cancel.cancelled() => return,
            r = poll_device(&mut client) => r,
        };
        drop(_permit);
        match result {
            Ok(poll) => {
                failures = 0;
                resume_at = None;
                shared.stats.polls_ok.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("netwarden_polls_total", "status" => "ok").increment(1);
                let wall = last_poll.map(|t| t.elapsed().as_secs_f64()).unwrap_or(0.0);
                last_poll = Some(Instant::now());
                let rates = match poll.system.sys_uptime_ticks {
                    Some(up) => counters.update(up, wall, &poll.interfaces).0,
                    None => vec![InterfaceRates::default(); poll.interfaces.len()],
                };
                let poll_row = PollSampleRow {
                    time: at,
                    device_id: d.id,
                    status: "ok",
                    duration_ms: Some(poll.duration.as_secs_f32() * 1000.0),
                    requests: Some(poll.stats.requests as i32),
                    varbinds: Some(poll.stats.varbinds as i32),
                    error_kind: None,
                    error: poll_notes(&poll),
                };
                let (poll, rates) = (Arc::new(poll), Arc::new(rates));
                shared
                    .report(
                        &d,
                        at,
                        Outcome::Polled { poll: poll.clone(), rates: rates.clone() },
                        StateOutcome::Polled { poll, rates },
                        vec![poll_row],
                    )
                    .await;
            }
            Err(e) => {
                failures += 1;
                client.close();
                shared.stats.polls_failed.fetch_add(1, Ordering::Relaxed);
                metrics::counter!("netwarden_polls_total", "status" => "failed").increment(1);
                tracing::warn!(device = %d.device.name, kind = e.kind(), error = %e, failures, "poll failed");
                let row = PollSampleRow {
                    time: at,
                    device_id: d.id,
                    status: "failed",
                    duration_ms: Some(scheduled.elapsed().saturating_sub(lag).as_secs_f32() * 1000.0),
                    requests: Some(client.stats().requests as i32),
                    varbinds: Some(client.stats().varbinds as i32),
                    error_kind: Some(e.kind().to_string()),
                    error: Some(e.to_string()),
                };
                shared
                    .report(
                        &d,
                        at,
                        Outcome::Failed {
                            kind: e.kind().to_string(),
                            error: e.to_string(),
                            consecutive_failures: failures,
                            down: failures as i64 >= i64::from(shared.opts.down_after_failures),
                        },
                        StateOutcome::Failed { kind: e.kind(), error: e.to_string() },
                        vec![row],
                    )
                    .await;
                // Back off: 1, 2, 4 ... intervals between attempts, capped.
                let factor = 1u32 << (failures - 1).min(16);
                let pause = interval.saturating_mul(factor).min(shared.opts.max_backoff.max(interval));
                resume_at = Some(scheduled + pause);
            }
        }
        let took = scheduled.elapsed();
        if took > interval {
            let skipped = (took.as_millis() / interval.as_millis().max(1)) as i64;
            shared.stats.polls_skipped.fetch_add(skipped as u64, Ordering::Relaxed);
            metrics::counter!("netwarden_polls_total", "status" => "skipped").increment(skipped as u64);
            tracing::warn!(device = %d.device.name, took = ?took, skipped, "poll overran its interval; ticks skipped");
            let rows = (0..skipped)
                .map(|_| PollSampleRow {
                    time: Utc::now(),
                    device_id: d.id,
                    status: "skipped",
                    duration_ms: None,
                    requests: None,
                    varbinds: None,
                    error_kind: Some("overrun".into()),
                    error: Some(format!("previous poll took {took:?}, interval {interval:?}")),
                })
                .collect();
            let now = Utc::now();
            shared.report(&d, now, Outcome::Overrun { skipped }, StateOutcome::Skipped { count: skipped }, rows).await;
        }
    }
}

async fn requested(n: Option<Arc<tokio::sync::Notify>>) {
    match n {
        Some(n) => n.notified().await,
        None => std::future::pending().await,
    }
}

/// Drops the state writer's cache of a device's interface ids when its loop ends.
struct Forget(StateHandle, i64);

impl Drop for Forget {
    fn drop(&mut self) {
        self.0.forget(self.1);
    }
}

/// Removes a device's poll-now registration when its loop ends.
struct Unregister(Option<(Arc<crate::observe::PollNow>, i64)>);

impl Drop for Unregister {
    fn drop(&mut self) {
        if let Some((p, id)) = &self.0 {
            p.unregister(*id);
        }
    }
}

/// Partial failures of a successful poll, for its poll_sample row.
fn poll_notes(poll: &crate::poll::DevicePoll) -> Option<String> {
    let mut notes = Vec::new();
    let routing_issues = poll.routing.as_ref().map(|r| r.issues.as_slice()).unwrap_or_default();
    let issues: Vec<String> = poll.issues.iter().chain(routing_issues).map(ToString::to_string).collect();
    if !issues.is_empty() {
        notes.push(format!(
            "{} undecodable cell(s): {}",
            issues.len(),
            issues.iter().take(5).cloned().collect::<Vec<_>>().join("; ")
        ));
    }
    if let Some(e) = &poll.routing_error {
        notes.push(format!("routing tables: {e}"));
    }
    (!notes.is_empty()).then(|| notes.join("; "))
}

/// One sample row per interface with a known id.
pub fn sample_rows(
    device_id: i64,
    at: chrono::DateTime<Utc>,
    rows: &[InterfaceRow],
    rates: &[InterfaceRates],
    ids: &HashMap<String, i64>,
) -> Vec<IfSampleRow> {
    rows.iter()
        .zip(rates)
        .zip(ifmib::tracking_keys(rows))
        .filter_map(|((r, q), key)| {
            Some(IfSampleRow {
                time: at,
                device_id,
                interface_id: *ids.get(&key)?,
                admin_status: r.admin_status,
                oper_status: r.oper_status,
                speed_bps: r.speed_bps.map(|s| s.min(i64::MAX as u64) as i64),
                in_bps: q.in_bps,
                out_bps: q.out_bps,
                in_pps: q.in_pps,
                out_pps: q.out_pps,
                in_errors: q.in_errors,
                out_errors: q.out_errors,
                in_discards: q.in_discards,
                out_discards: q.out_discards,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_stable_and_inside_the_interval() {
        let iv = Duration::from_secs(60);
        let a = stable_offset("leaf1", iv);
        assert_eq!(a, stable_offset("leaf1", iv));
        assert!(a < iv);
        // 1000 devices spread over the minute: no second holds more than 3x its share.
        let mut buckets = [0u32; 60];
        for i in 0..1000 {
            buckets[stable_offset(&format!("dev{i}"), iv).as_secs() as usize] += 1;
        }
        assert!(buckets.iter().all(|&n| n < 50), "{buckets:?}");
    }

    #[test]
    fn phase_delay_is_within_one_interval() {
        let iv = Duration::from_secs(10);
        let d = delay_to_phase(iv, Duration::from_secs(3));
        assert!(d < iv);
    }
}
