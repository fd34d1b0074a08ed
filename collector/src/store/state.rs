//! Device and interface state (updated in place), written off the poll path in batches: a
//! device's poll hands its result to the [`StateWriter`] and goes on; the writer collects results
//! for up to [`StateWriterOptions::linger`] (or `max_batch` devices) and writes them in one
//! transaction with one statement per table, whatever the number of devices and interfaces. Only
//! then does it hand the batch's sample rows to the sample writer, so a sample in
//! `if_sample`/`poll_sample` always comes after the state of its poll is committed.
//!
//! The writer runs as a few lanes (tasks with a connection each), a device always in the same
//! lane: its results stay in order, and on a busy runtime, where each round trip waits for the
//! task's turn, the lanes' round trips overlap. Interface ids are cached per device; the upsert
//! returns only the ids the cache does not already hold (new interfaces), so a steady poll's
//! batch reads almost nothing back.

use crate::counters::InterfaceRates;
use crate::poll::DevicePoll;
use crate::scheduler::SchedulerStats;
use crate::store::routing::{RoutingInput, record_routing_batch};
use crate::store::{PollSampleRow, WriterHandle};
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::mpsc;

#[derive(Debug, Clone)]
pub struct StateWriterOptions {
    /// Writer tasks (each with its own connection while it writes); a device always uses the same.
    pub lanes: usize,
    /// How long the writer waits for more polls after the first one of a batch.
    pub linger: Duration,
    /// Devices per batch at most.
    pub max_batch: usize,
    /// Poll results waiting for the writer (all lanes together); when full, a device's loop waits (after its poll has
    /// released its in-flight slot), and any tick it misses meanwhile is counted as skipped.
    pub channel_capacity: usize,
    /// Consecutive failed polls before a device is marked down.
    pub down_after_failures: i32,
    /// Longest wait for a database connection before a batch counts as failed.
    pub connect_timeout: Duration,
}

impl Default for StateWriterOptions {
    fn default() -> Self {
        StateWriterOptions {
            lanes: 4,
            linger: Duration::from_millis(100),
            max_batch: 500,
            channel_capacity: 4096,
            down_after_failures: 2,
            connect_timeout: Duration::from_secs(10),
        }
    }
}

/// What one poll of one device left to record.
#[derive(Debug)]
pub enum StateOutcome {
    /// `rates` is parallel to `poll.interfaces`.
    Polled {
        poll: Arc<DevicePoll>,
        rates: Arc<Vec<InterfaceRates>>,
    },
    Failed {
        kind: &'static str,
        error: String,
    },
    /// Ticks skipped because the previous poll overran its interval.
    Skipped {
        count: i64,
    },
}

#[derive(Debug)]
pub struct StateUpdate {
    pub device_id: i64,
    /// The device's name, for logs.
    pub device: String,
    pub at: DateTime<Utc>,
    pub outcome: StateOutcome,
    /// `poll_sample` rows, written after the state.
    pub poll_rows: Vec<PollSampleRow>,
}

enum Msg {
    Update(Box<StateUpdate>),
    /// The device left the schedule: drop its cached interface ids.
    Forget(i64),
}

/// Hands poll results to the state writer.
#[derive(Clone)]
pub struct StateHandle {
    lanes: Arc<[mpsc::Sender<Msg>]>,
}

impl StateHandle {
    fn lane(&self, device_id: i64) -> &mpsc::Sender<Msg> {
        &self.lanes[device_id.rem_euclid(self.lanes.len() as i64) as usize]
    }

    /// Queues a poll's result; waits only while the device's lane is full.
    pub async fn send(&self, update: StateUpdate) {
        if self.lane(update.device_id).send(Msg::Update(Box::new(update))).await.is_err() {
            tracing::warn!("state writer stopped; a poll result was not recorded");
        }
    }

    pub fn forget(&self, device_id: i64) {
        // Only a cache entry: if the queue is full, the entry stays until the next restart.
        let _ = self.lane(device_id).try_send(Msg::Forget(device_id));
    }
}

/// Interface ids by tracking key, per device.
type InterfaceIds = HashMap<String, i64>;

pub struct StateWriter {
    pool: Pool,
    samples: WriterHandle,
    stats: Arc<SchedulerStats>,
    opts: StateWriterOptions,
    /// The ids of each device's interfaces as last stored: samples still get them when a batch
    /// cannot be written.
    ids: HashMap<i64, InterfaceIds>,
}

/// Why a batch was not written, and whether a smaller batch could be (the server refused a row,
/// rather than the connection failing).
struct BatchError {
    message: String,
    per_device_may_help: bool,
}

impl BatchError {
    fn db(step: &str, e: &tokio_postgres::Error) -> BatchError {
        BatchError {
            message: format!("{step}: {}", crate::db::error_text(e)),
            per_device_may_help: e.as_db_error().is_some(),
        }
    }
}

impl StateWriter {
    /// Starts the writer; it ends, after writing what it holds, when every handle is dropped.
    pub fn spawn(
        pool: Pool,
        samples: WriterHandle,
        stats: Arc<SchedulerStats>,
        opts: StateWriterOptions,
    ) -> (StateHandle, tokio::task::JoinHandle<()>) {
        let lanes = opts.lanes.max(1);
        let capacity = (opts.channel_capacity / lanes).max(1);
        let (mut txs, mut tasks) = (Vec::with_capacity(lanes), Vec::with_capacity(lanes));
        for _ in 0..lanes {
            let (tx, rx) = mpsc::channel(capacity);
            let w = StateWriter {
                pool: pool.clone(),
                samples: samples.clone(),
                stats: stats.clone(),
                opts: opts.clone(),
                ids: HashMap::new(),
            };
            txs.push(tx);
            tasks.push(tokio::spawn(w.run(rx)));
        }
        let all = tokio::spawn(async move {
            for t in tasks {
                let _ = t.await;
            }
        });
        (StateHandle { lanes: txs.into() }, all)
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Msg>) {
        let mut carry: Option<StateUpdate> = None;
        let mut forgotten: Vec<i64> = Vec::new();
        loop {
            let first = match carry.take() {
                Some(u) => u,
                None => match rx.recv().await {
                    Some(Msg::Update(u)) => *u,
                    Some(Msg::Forget(id)) => {
                        self.ids.remove(&id);
                        continue;
                    }
                    None => return,
                },
            };
            let deadline = tokio::time::Instant::now() + self.opts.linger;
            let mut in_batch: HashSet<i64> = HashSet::from([first.device_id]);
            let mut batch = vec![first];
            while batch.len() < self.opts.max_batch.max(1) {
                let msg = tokio::select! {
                    m = rx.recv() => m,
                    () = tokio::time::sleep_until(deadline) => break,
                };
                match msg {
                    Some(Msg::Update(u)) => {
                        // A device's state is written once per statement: its second result goes
                        // into the next batch.
                        if in_batch.insert(u.device_id) {
                            batch.push(*u);
                        } else {
                            carry = Some(*u);
                            break;
                        }
                    }
                    Some(Msg::Forget(id)) => forgotten.push(id),
                    None => break,
                }
            }
            self.write(batch).await;
            for id in forgotten.drain(..) {
                self.ids.remove(&id);
            }
        }
    }

    /// Writes one batch (or, if the server refuses it, each device's part on its own), then hands
    /// the sample rows on.
    async fn write(&mut self, batch: Vec<StateUpdate>) {
        let started = std::time::Instant::now();
        let conn = match tokio::time::timeout(self.opts.connect_timeout, self.pool.get()).await {
            Ok(Ok(c)) => Some(c),
            Ok(Err(e)) => {
                self.failed(&batch, &format!("no database connection: {e}"));
                None
            }
            Err(_) => {
                self.failed(&batch, &format!("no database connection within {:?}", self.opts.connect_timeout));
                None
            }
        };
        if let Some(mut conn) = conn {
            match store_batch(&mut conn, &batch, &self.ids, self.opts.down_after_failures).await {
                Ok(ids) => self.remember(ids),
                Err(e) if e.per_device_may_help && batch.len() > 1 => {
                    tracing::debug!(devices = batch.len(), error = %e.message, "state batch refused; writing each device alone");
                    for u in &batch {
                        match store_batch(&mut conn, std::slice::from_ref(u), &self.ids, self.opts.down_after_failures)
                            .await
                        {
                            Ok(ids) => self.remember(ids),
                            Err(e) => self.failed(std::slice::from_ref(u), &e.message),
                        }
                    }
                }
                Err(e) => self.failed(&batch, &e.message),
            }
        }
        metrics::histogram!("netwarden_state_batch_seconds").record(started.elapsed().as_secs_f64());
        metrics::histogram!("netwarden_state_batch_devices").record(batch.len() as f64);
        let empty = InterfaceIds::new();
        for u in batch {
            let if_rows = match &u.outcome {
                StateOutcome::Polled { poll, rates } => crate::scheduler::sample_rows(
                    u.device_id,
                    u.at,
                    &poll.interfaces,
                    rates,
                    self.ids.get(&u.device_id).unwrap_or(&empty),
                ),
                StateOutcome::Failed { .. } | StateOutcome::Skipped { .. } => Vec::new(),
            };
            if !if_rows.is_empty() || !u.poll_rows.is_empty() {
                self.samples.submit(if_rows, u.poll_rows);
            }
        }
    }

    /// Adds the ids of interfaces first seen (or re-created) in a committed batch.
    fn remember(&mut self, fresh: Vec<(i64, String, i64)>) {
        for (device_id, key, id) in fresh {
            self.ids.entry(device_id).or_default().insert(key, id);
        }
    }

    fn failed(&self, updates: &[StateUpdate], error: &str) {
        for u in updates {
            self.stats.db_errors.fetch_add(1, Ordering::Relaxed);
            match u.outcome {
                StateOutcome::Polled { .. } => {
                    tracing::warn!(device = %u.device, error, "cannot store device state; samples use known interface ids")
                }
                StateOutcome::Failed { .. } => tracing::warn!(device = %u.device, error, "cannot record failed poll"),
                StateOutcome::Skipped { .. } => {
                    tracing::warn!(device = %u.device, error, "cannot record skipped polls")
                }
            }
        }
    }
}

/// One transaction for the whole batch (each device at most once); returns the interface ids
/// that `known` did not hold, as `(device id, tracking key, id)`.
async fn store_batch(
    conn: &mut deadpool_postgres::Object,
    batch: &[StateUpdate],
    known: &HashMap<i64, InterfaceIds>,
    down_after: i32,
) -> Result<Vec<(i64, String, i64)>, BatchError> {
    let tx = conn.transaction().await.map_err(|e| BatchError::db("begin", &e))?;
    let polled: Vec<(&StateUpdate, &DevicePoll)> = batch
        .iter()
        .filter_map(|u| match &u.outcome {
            StateOutcome::Polled { poll, .. } => Some((u, &**poll)),
            _ => None,
        })
        .collect();
    let mut fresh = Vec::new();
    if !polled.is_empty() {
        fresh = interface_ids(&tx, &polled, known).await.map_err(|e| BatchError::db("interfaces", &e))?;
        record_poll_success(&tx, &polled).await.map_err(|e| BatchError::db("device state", &e))?;
        let routing: Vec<RoutingInput<'_>> = polled
            .iter()
            .filter_map(|(u, p)| p.routing.as_ref().map(|r| RoutingInput { device_id: u.device_id, at: u.at, poll: r }))
            .collect();
        record_routing_batch(&tx, &routing).await.map_err(|e| BatchError::db("routing state", &e))?;
    }
    let failed: Vec<(&StateUpdate, &'static str, &str)> = batch
        .iter()
        .filter_map(|u| match &u.outcome {
            StateOutcome::Failed { kind, error } => Some((u, *kind, error.as_str())),
            _ => None,
        })
        .collect();
    if !failed.is_empty() {
        record_poll_failure(&tx, &failed, down_after).await.map_err(|e| BatchError::db("failed poll", &e))?;
    }
    let skipped: (Vec<i64>, Vec<i64>) = batch
        .iter()
        .filter_map(|u| match u.outcome {
            StateOutcome::Skipped { count } => Some((u.device_id, count)),
            _ => None,
        })
        .unzip();
    if !skipped.0.is_empty() {
        record_skipped(&tx, &skipped.0, &skipped.1).await.map_err(|e| BatchError::db("skipped polls", &e))?;
    }
    tx.commit().await.map_err(|e| BatchError::db("commit", &e))?;
    Ok(fresh)
}

/// Upserts the interfaces seen in the polls, with a history row for every interface whose
/// admin/oper status changed; returns `(device id, tracking key, interface id)` of each interface
/// whose id is not the one in `known` (new, or re-created since).
async fn interface_ids(
    tx: &deadpool_postgres::Transaction<'_>,
    polled: &[(&StateUpdate, &DevicePoll)],
    known: &HashMap<i64, InterfaceIds>,
) -> Result<Vec<(i64, String, i64)>, tokio_postgres::Error> {
    let n: usize = polled.iter().map(|(_, p)| p.interfaces.len()).sum();
    let devices: Vec<i64> = polled.iter().map(|(u, _)| u.device_id).collect();
    let mut device = Vec::with_capacity(n);
    let mut at = Vec::with_capacity(n);
    let mut names = Vec::with_capacity(n);
    let mut idx = Vec::with_capacity(n);
    let mut descr = Vec::with_capacity(n);
    let mut alias = Vec::with_capacity(n);
    let mut typ = Vec::with_capacity(n);
    let mut mtu = Vec::with_capacity(n);
    let mut speed = Vec::with_capacity(n);
    let mut admin = Vec::with_capacity(n);
    let mut oper = Vec::with_capacity(n);
    let mut last_change = Vec::with_capacity(n);
    let mut known_id: Vec<Option<i64>> = Vec::with_capacity(n);
    for (u, poll) in polled {
        let rows = &poll.interfaces;
        let cached = known.get(&u.device_id);
        for (r, key) in rows.iter().zip(crate::ifmib::tracking_keys(rows)) {
            known_id.push(cached.and_then(|c| c.get(&key)).copied());
            device.push(u.device_id);
            at.push(u.at);
            names.push(key);
            idx.push(r.if_index as i32);
            descr.push(r.descr.as_deref());
            alias.push(r.alias.as_deref());
            typ.push(r.if_type);
            mtu.push(r.mtu);
            speed.push(r.speed_bps.map(|s| s.min(i64::MAX as u64) as i64));
            admin.push(r.admin_status);
            oper.push(r.oper_status);
            last_change.push(r.last_change_ticks.map(i64::from));
        }
    }
    let st = tx
        .prepare_cached(
            // One statement: the upsert, and a history row for every interface whose admin/oper
            // status changed (the `old` CTE sees the rows as they were before the upsert).
            "WITH new AS (
                 SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::int[], $5::text[], $6::text[],
                                      $7::int[], $8::int[], $9::bigint[], $10::smallint[], $11::smallint[], $12::bigint[],
                                      $14::bigint[])
                          AS t(device_id, at, name, if_index, descr, alias, if_type, mtu, speed_bps, admin_status,
                               oper_status, last_change_ticks, known_id)
             ),
             old AS (SELECT device_id, name, admin_status, oper_status FROM interface WHERE device_id = ANY($13)),
             history AS (
                 INSERT INTO state_change (time, device_id, kind, key, old_state, new_state, detail)
                 SELECT n.at, n.device_id, 'interface', n.name,
                        netwarden_if_status(o.admin_status) || '/' || netwarden_if_status(o.oper_status),
                        netwarden_if_status(n.admin_status) || '/' || netwarden_if_status(n.oper_status),
                        jsonb_build_object('if_index', n.if_index, 'last_change_ticks', n.last_change_ticks)
                   FROM new n JOIN old o USING (device_id, name)
                  WHERE (o.admin_status, o.oper_status) IS DISTINCT FROM (n.admin_status, n.oper_status)
             ),
             up AS (
             INSERT INTO interface (device_id, name, if_index, descr, alias, if_type, mtu, speed_bps,
                                    admin_status, oper_status, last_change_ticks, first_seen, last_seen)
             SELECT device_id, name, if_index, descr, alias, if_type, mtu, speed_bps,
                    admin_status, oper_status, last_change_ticks, at, at FROM new
             ON CONFLICT (device_id, name) DO UPDATE SET
                 if_index = EXCLUDED.if_index, descr = EXCLUDED.descr, alias = EXCLUDED.alias,
                 if_type = EXCLUDED.if_type, mtu = EXCLUDED.mtu, speed_bps = EXCLUDED.speed_bps,
                 admin_status = EXCLUDED.admin_status, oper_status = EXCLUDED.oper_status,
                 last_change_ticks = EXCLUDED.last_change_ticks, last_seen = EXCLUDED.last_seen
             RETURNING device_id, name, id)
             SELECT up.device_id, up.name, up.id FROM up JOIN new USING (device_id, name)
              WHERE up.id IS DISTINCT FROM new.known_id",
        )
        .await?;
    let rows = tx
        .query(
            &st,
            &[
                &device,
                &at,
                &names,
                &idx,
                &descr,
                &alias,
                &typ,
                &mtu,
                &speed,
                &admin,
                &oper,
                &last_change,
                &devices,
                &known_id,
            ],
        )
        .await?;
    Ok(rows.into_iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
}

/// Marks the devices up and stores their system groups.
async fn record_poll_success(
    tx: &deadpool_postgres::Transaction<'_>,
    polled: &[(&StateUpdate, &DevicePoll)],
) -> Result<(), tokio_postgres::Error> {
    let device: Vec<i64> = polled.iter().map(|(u, _)| u.device_id).collect();
    let at: Vec<DateTime<Utc>> = polled.iter().map(|(u, _)| u.at).collect();
    let sys_name: Vec<Option<&str>> = polled.iter().map(|(_, p)| p.system.sys_name.as_deref()).collect();
    let sys_descr: Vec<Option<&str>> = polled.iter().map(|(_, p)| p.system.sys_descr.as_deref()).collect();
    let sys_object_id: Vec<Option<&str>> = polled.iter().map(|(_, p)| p.system.sys_object_id.as_deref()).collect();
    let uptime: Vec<Option<i64>> = polled.iter().map(|(_, p)| p.system.sys_uptime_ticks.map(i64::from)).collect();
    let duration_ms: Vec<f32> = polled.iter().map(|(_, p)| p.duration.as_secs_f32() * 1000.0).collect();
    let st = tx
        .prepare_cached(
            "WITH new AS (
                 SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::bigint[], $7::real[])
                          AS t(device_id, at, sys_name, sys_descr, sys_object_id, sys_uptime_ticks, duration_ms)
             ),
             prev AS (SELECT device_id, status FROM device_state WHERE device_id = ANY($1)),
             upd AS (
             INSERT INTO device_state (device_id, status, status_since, last_poll, last_success, consecutive_failures,
                                       polls_total, sys_name, sys_descr, sys_object_id, sys_uptime_ticks,
                                       last_poll_duration_ms)
             SELECT device_id, 'up', at, at, at, 0, 1, sys_name, sys_descr, sys_object_id, sys_uptime_ticks, duration_ms
               FROM new
             ON CONFLICT (device_id) DO UPDATE SET
                 status_since = CASE WHEN device_state.status = 'up' THEN device_state.status_since ELSE EXCLUDED.status_since END,
                 status = 'up', last_poll = EXCLUDED.last_poll, last_success = EXCLUDED.last_success, consecutive_failures = 0,
                 polls_total = device_state.polls_total + 1,
                 sys_name = EXCLUDED.sys_name, sys_descr = EXCLUDED.sys_descr, sys_object_id = EXCLUDED.sys_object_id,
                 sys_uptime_ticks = EXCLUDED.sys_uptime_ticks, last_poll_duration_ms = EXCLUDED.last_poll_duration_ms
             RETURNING device_id, status, last_poll)
             INSERT INTO state_change (time, device_id, kind, key, old_state, new_state)
             SELECT upd.last_poll, upd.device_id, 'device', 'status', prev.status, upd.status
               FROM upd LEFT JOIN prev USING (device_id) WHERE prev.status IS DISTINCT FROM upd.status",
        )
        .await?;
    tx.execute(&st, &[&device, &at, &sys_name, &sys_descr, &sys_object_id, &uptime, &duration_ms]).await?;
    Ok(())
}

/// Counts failed polls; a device goes down after `down_after` consecutive failures.
async fn record_poll_failure(
    tx: &deadpool_postgres::Transaction<'_>,
    failed: &[(&StateUpdate, &'static str, &str)],
    down_after: i32,
) -> Result<(), tokio_postgres::Error> {
    let device: Vec<i64> = failed.iter().map(|(u, _, _)| u.device_id).collect();
    let at: Vec<DateTime<Utc>> = failed.iter().map(|(u, _, _)| u.at).collect();
    let kind: Vec<&str> = failed.iter().map(|(_, k, _)| *k).collect();
    let error: Vec<&str> = failed.iter().map(|(_, _, e)| *e).collect();
    let st = tx
        .prepare_cached(
            "WITH new AS (
                 SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::text[]) AS t(device_id, at, kind, error)
             ),
             prev AS (SELECT device_id, status FROM device_state WHERE device_id = ANY($1)),
             upd AS (
             INSERT INTO device_state (device_id, status, status_since, last_poll, last_error_kind, last_error,
                                       consecutive_failures, polls_total, polls_failed)
             SELECT device_id, CASE WHEN $5 <= 1 THEN 'down' ELSE 'unknown' END, at, at, kind, error, 1, 1, 1 FROM new
             ON CONFLICT (device_id) DO UPDATE SET
                 status = CASE WHEN device_state.consecutive_failures + 1 >= $5 THEN 'down' ELSE device_state.status END,
                 status_since = CASE WHEN device_state.status <> 'down' AND device_state.consecutive_failures + 1 >= $5
                                     THEN EXCLUDED.status_since ELSE device_state.status_since END,
                 last_poll = EXCLUDED.last_poll, last_error_kind = EXCLUDED.last_error_kind, last_error = EXCLUDED.last_error,
                 consecutive_failures = device_state.consecutive_failures + 1,
                 polls_total = device_state.polls_total + 1, polls_failed = device_state.polls_failed + 1
             RETURNING device_id, status)
             INSERT INTO state_change (time, device_id, kind, key, old_state, new_state, detail)
             SELECT new.at, upd.device_id, 'device', 'status', prev.status, upd.status,
                    jsonb_build_object('error_kind', new.kind, 'error', new.error)
               FROM upd JOIN new USING (device_id) LEFT JOIN prev USING (device_id)
              WHERE prev.status IS DISTINCT FROM upd.status",
        )
        .await?;
    tx.execute(&st, &[&device, &at, &kind, &error, &down_after]).await?;
    Ok(())
}

/// Counts polls skipped because the previous one overran its interval.
async fn record_skipped(
    tx: &deadpool_postgres::Transaction<'_>,
    device: &[i64],
    skipped: &[i64],
) -> Result<(), tokio_postgres::Error> {
    let st = tx
        .prepare_cached(
            "INSERT INTO device_state (device_id, polls_skipped)
             SELECT * FROM unnest($1::bigint[], $2::bigint[])
             ON CONFLICT (device_id) DO UPDATE SET polls_skipped = device_state.polls_skipped + EXCLUDED.polls_skipped",
        )
        .await?;
    tx.execute(&st, &[&device, &skipped]).await?;
    Ok(())
}
