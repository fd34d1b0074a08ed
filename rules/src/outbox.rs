//! The durable notification outbox: [`enqueue`] inside the engine's transaction, a delivery worker ([`spawn`])
//! that claims due rows under a lease and sends them at least once, and queries for the API.
//!
//! Guarantees: a notification whose transaction commits is delivered or ends `failed` with its attempts on
//! record; a rolled-back one is never sent. A worker that dies mid-send leaves the row `delivering` with a lease
//! (`claimed_until`); once the lease expires any worker claims it again, so a crash costs a duplicate, never a
//! loss. Several workers (processes) can share the table: claims use `FOR UPDATE SKIP LOCKED`.
//!
//! The fast path: the alert service inserts a step's notifications already claimed for the local worker (state
//! `delivering`, its lease) in the step's own transaction, and after the commit hands them over in memory
//! ([`Wake`]), so the first attempt costs no claim round trip. Rows the worker cannot take (no worker attached,
//! hand-off queue full) are inserted `pending` and claimed from the table in batches. Attempts are recorded in
//! batches by one recorder task (one statement per batch); a row stays `delivering` under its lease until its
//! attempt is recorded, so a crash in between costs a duplicate after the lease, never a loss.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::{JoinHandle, JoinSet};
use tokio_postgres::GenericClient;
use tokio_util::sync::CancellationToken;

use crate::alert::Notification;
use crate::notify::{Notifier, SendError};

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error("outbox: {what}: {}", collector::db::error_text(.source))]
    Db { what: &'static str, source: tokio_postgres::Error },
    #[error("outbox: getting a database connection: {0}")]
    Pool(String),
    #[error("outbox: encoding the notification for receiver {receiver}: {source}")]
    Encode { receiver: String, source: serde_json::Error },
    #[error("outbox: unknown {what} {value:?} in the database")]
    Corrupt { what: &'static str, value: String },
}

impl OutboxError {
    /// Database and pool trouble may pass; the rest will not.
    pub fn is_transient(&self) -> bool {
        matches!(self, OutboxError::Db { .. } | OutboxError::Pool(_))
    }
}

fn db_error(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> OutboxError {
    move |source| OutboxError::Db { what, source }
}

/// Where an outbox row is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutboxState {
    Pending,
    Delivering,
    Delivered,
    Failed,
}

impl OutboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::Delivering => "delivering",
            OutboxState::Delivered => "delivered",
            OutboxState::Failed => "failed",
        }
    }
}

impl std::str::FromStr for OutboxState {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "pending" => Ok(OutboxState::Pending),
            "delivering" => Ok(OutboxState::Delivering),
            "delivered" => Ok(OutboxState::Delivered),
            "failed" => Ok(OutboxState::Failed),
            other => Err(format!("unknown outbox state {other:?} (expected pending, delivering, delivered or failed)")),
        }
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AttemptOutcome {
    Ok,
    Transient,
    Permanent,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Ok => "ok",
            AttemptOutcome::Transient => "transient",
            AttemptOutcome::Permanent => "permanent",
        }
    }
}

impl std::str::FromStr for AttemptOutcome {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ok" => Ok(AttemptOutcome::Ok),
            "transient" => Ok(AttemptOutcome::Transient),
            "permanent" => Ok(AttemptOutcome::Permanent),
            other => Err(format!("unknown attempt outcome {other:?}")),
        }
    }
}

/// Adds `n` to the outbox and returns its id. Call it inside the transaction that records the state change the
/// notification announces: it is delivered only if that transaction commits. Wake the worker after the commit
/// (`WorkerOptions::wake.notify_one()`); otherwise it finds the row at its next poll.
pub async fn enqueue(db: &impl GenericClient, n: &Notification) -> Result<i64, OutboxError> {
    let json =
        serde_json::to_value(n).map_err(|source| OutboxError::Encode { receiver: n.receiver.clone(), source })?;
    let kind = json["kind"].as_str().unwrap_or_default().to_string();
    let row = db
        .query_one(
            "INSERT INTO notification_outbox (receiver, group_key, kind, notification, created_at, due_at)
             VALUES ($1, $2, $3, $4, $5, now()) RETURNING id",
            &[&n.receiver, &n.group_key, &kind, &json, &n.created_at],
        )
        .await
        .map_err(db_error("inserting a notification"))?;
    Ok(row.get(0))
}

/// Inserts a batch of notifications (column arrays $1–$5, in order), either `pending` or, with `$6` true,
/// already claimed for the local worker for `$7` seconds (its first attempt counted). Returns `id` and
/// `claimed_until` per row; ids follow the input order (`ORDER BY ord` makes the serial assign them in that
/// order), so the caller sorts by id to pair them with its notifications.
pub const INSERT_BATCH: &str = "INSERT INTO notification_outbox
        (receiver, group_key, kind, notification, created_at, due_at, state, attempts, claimed_until)
     SELECT receiver, group_key, kind, notification, created_at, now(),
            CASE WHEN $6::bool THEN 'delivering' ELSE 'pending' END, CASE WHEN $6::bool THEN 1 ELSE 0 END,
            CASE WHEN $6::bool THEN now() + make_interval(secs => $7::float8) END
     FROM unnest($1::text[], $2::text[], $3::text[], $4::jsonb[], $5::timestamptz[])
          WITH ORDINALITY AS u(receiver, group_key, kind, notification, created_at, ord)
     ORDER BY ord
     RETURNING id, claimed_until";

/// The column arrays of [`INSERT_BATCH`] for `ns` (the notifications are serialized straight into the
/// statement's parameters, without an intermediate `serde_json::Value`).
pub struct InsertBatch<'a> {
    receivers: Vec<&'a str>,
    group_keys: Vec<&'a str>,
    kinds: Vec<&'static str>,
    notifications: Vec<tokio_postgres::types::Json<&'a Notification>>,
    created: Vec<DateTime<Utc>>,
    claim: bool,
    lease_secs: f64,
}

/// The stored name of a notification's kind (as serialized, and as the table's CHECK allows).
fn kind_name(k: crate::alert::NotificationKind) -> &'static str {
    use crate::alert::NotificationKind as K;
    match k {
        K::Firing => "firing",
        K::Resolved => "resolved",
        K::Acknowledged => "acknowledged",
        K::Flapping => "flapping",
    }
}

impl<'a> InsertBatch<'a> {
    /// The rows of `ns`; with `claim_for`, claimed for that long by the local worker.
    pub fn new(ns: &'a [Notification], claim_for: Option<Duration>) -> InsertBatch<'a> {
        let mut b = InsertBatch {
            receivers: Vec::with_capacity(ns.len()),
            group_keys: Vec::with_capacity(ns.len()),
            kinds: Vec::with_capacity(ns.len()),
            notifications: Vec::with_capacity(ns.len()),
            created: Vec::with_capacity(ns.len()),
            claim: claim_for.is_some(),
            lease_secs: claim_for.unwrap_or_default().as_secs_f64(),
        };
        for n in ns {
            b.receivers.push(&n.receiver);
            b.group_keys.push(&n.group_key);
            b.kinds.push(kind_name(n.kind));
            b.notifications.push(tokio_postgres::types::Json(n));
            b.created.push(n.created_at);
        }
        b
    }

    pub fn is_empty(&self) -> bool {
        self.receivers.is_empty()
    }

    /// The parameters of [`INSERT_BATCH`].
    pub fn params(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 7] {
        [
            &self.receivers,
            &self.group_keys,
            &self.kinds,
            &self.notifications,
            &self.created,
            &self.claim,
            &self.lease_secs,
        ]
    }
}

/// The rows [`INSERT_BATCH`] returned, in input order: `(id, claimed_until)`.
pub fn inserted(rows: &[tokio_postgres::Row]) -> Vec<(i64, Option<DateTime<Utc>>)> {
    let mut out: Vec<(i64, Option<DateTime<Utc>>)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    out.sort_unstable_by_key(|(id, _)| *id);
    out
}

/// Notifications the hand-off queue holds at most (about 1–2 kB each); beyond that, steps insert their rows
/// `pending` and the worker claims them from the table.
pub const HANDOFF_CAPACITY: usize = 10_000;

/// The link between the alert service and the delivery worker of one process: a wake-up for rows committed
/// `pending`, and a bounded queue of rows the service committed already claimed for this worker.
///
/// When the queue is full (or no worker is attached) the service does not claim: its rows go in `pending`
/// (counted in `netwarden_outbox_handoff_overflow_total`), so nothing is dropped, only slower.
#[derive(Clone, Default)]
pub struct Wake(Arc<WakeShared>);

#[derive(Default)]
struct WakeShared {
    notify: Notify,
    /// Rows were committed `pending`: the worker should look in the table.
    look: AtomicBool,
    queue: Mutex<VecDeque<Claimed>>,
    /// The attached worker's lease in milliseconds; 0 while no worker takes hand-offs.
    lease_ms: AtomicU64,
}

impl std::fmt::Debug for Wake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Wake")
            .field("queued", &self.queued())
            .field("lease_ms", &self.0.lease_ms.load(Ordering::Relaxed))
            .finish()
    }
}

impl Wake {
    /// Rows were committed `pending`: have the worker look in the table now.
    pub fn notify_one(&self) {
        self.0.look.store(true, Ordering::Release);
        self.0.notify.notify_one();
    }

    /// The lease to claim `n` rows for, if a worker is attached and the queue has room for them.
    pub fn claim_lease(&self, n: usize) -> Option<Duration> {
        let ms = self.0.lease_ms.load(Ordering::Acquire);
        if ms == 0 {
            return None;
        }
        if self.queued() + n > HANDOFF_CAPACITY {
            metrics::counter!("netwarden_outbox_handoff_overflow_total").increment(n as u64);
            return None;
        }
        Some(Duration::from_millis(ms))
    }

    /// Hands committed, claimed rows to the worker: `rows` pairs each notification with its `(id,
    /// claimed_until)` as [`inserted`] returned them.
    pub fn hand_over(&self, ns: Vec<Notification>, rows: &[(i64, Option<DateTime<Utc>>)]) {
        let mut q = self.0.queue.lock().expect("hand-off queue lock");
        for (n, &(id, until)) in ns.into_iter().zip(rows) {
            let Some(claimed_until) = until else { continue };
            q.push_back(Claimed {
                id,
                receiver: n.receiver.clone(),
                attempts: 1,
                created_at: n.created_at,
                claimed_until,
                notification: Ok(n),
            });
        }
        drop(q);
        self.0.notify.notify_one();
    }

    fn queued(&self) -> usize {
        self.0.queue.lock().expect("hand-off queue lock").len()
    }

    fn take(&self, max: usize) -> Vec<Claimed> {
        let mut q = self.0.queue.lock().expect("hand-off queue lock");
        let n = max.min(q.len());
        q.drain(..n).collect()
    }

    fn take_look(&self) -> bool {
        self.0.look.swap(false, Ordering::AcqRel)
    }

    fn attach(&self, lease: Duration) {
        self.0.lease_ms.store((lease.as_millis() as u64).max(1), Ordering::Release);
    }

    fn detach(&self) {
        self.0.lease_ms.store(0, Ordering::Release);
    }
}

/// Tuning of the delivery worker.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Sends in flight at once, all receivers together.
    pub concurrency: usize,
    /// Look for due rows at least this often (also woken by `wake` and by the next due time it knows of).
    pub poll_interval: Duration,
    /// How long a claimed row belongs to this worker; must exceed `send_timeout`, or a slow send may be
    /// duplicated by another worker.
    pub lease: Duration,
    /// Longest a send may take before it counts as a transient failure.
    pub send_timeout: Duration,
    /// First retry delay; doubles per attempt up to `backoff_cap`, with jitter, never less than `Retry-After`.
    pub backoff_base: Duration,
    pub backoff_cap: Duration,
    /// Attempts (claims) before a transiently failing notification is given up.
    pub max_attempts: u32,
    /// Age (since the notification was created) after which it is no longer retried.
    pub max_age: Duration,
    /// On cancellation, how long in-flight sends may finish; after that they are abandoned (their rows are
    /// retried after the lease).
    pub shutdown_grace: Duration,
    /// Notify after committing an enqueue to have the worker look at once; also carries the rows the alert
    /// service hands over already claimed.
    pub wake: Wake,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            concurrency: 16,
            poll_interval: Duration::from_secs(5),
            lease: Duration::from_secs(120),
            send_timeout: Duration::from_secs(60),
            backoff_base: Duration::from_secs(1),
            backoff_cap: Duration::from_secs(300),
            max_attempts: 25,
            max_age: Duration::from_secs(24 * 3600),
            shutdown_grace: Duration::from_secs(10),
            wake: Wake::default(),
        }
    }
}

/// What to do with a row after an attempt.
#[derive(Debug, Clone, PartialEq)]
pub enum Next {
    Delivered,
    Retry { after: Duration },
    Fail { reason: String },
}

/// The backoff before retry number `attempts` (1 = after the first failure): `base·2^(attempts-1)` capped at
/// `cap`, scaled by `jitter` in [0.5, 1], never shorter than the peer's `Retry-After`.
pub fn backoff(attempts: u32, base: Duration, cap: Duration, jitter: f64, retry_after: Option<Duration>) -> Duration {
    let exp = base.saturating_mul(1u32.checked_shl(attempts.saturating_sub(1).min(31)).unwrap_or(u32::MAX));
    let delay = exp.min(cap).mul_f64(jitter.clamp(0.5, 1.0));
    delay.max(retry_after.unwrap_or(Duration::ZERO))
}

/// The decision after an attempt: delivered, retried later, or failed for good.
pub fn decide(result: &Result<(), SendError>, attempts: u32, age: Duration, opts: &WorkerOptions, jitter: f64) -> Next {
    let e = match result {
        Ok(()) => return Next::Delivered,
        Err(e) => e,
    };
    if !e.is_transient() {
        return Next::Fail { reason: e.to_string() };
    }
    if attempts >= opts.max_attempts {
        return Next::Fail { reason: format!("gave up after {attempts} attempts: {e}") };
    }
    let after = backoff(attempts, opts.backoff_base, opts.backoff_cap, jitter, e.retry_after());
    if age + after > opts.max_age {
        return Next::Fail { reason: format!("gave up after {}s: {e}", age.as_secs()) };
    }
    Next::Retry { after }
}

/// Starts the delivery worker. It runs until `cancel`, then lets in-flight sends finish for
/// `opts.shutdown_grace` and abandons the rest (their leases expire and any worker retries them).
pub fn spawn(
    pool: deadpool_postgres::Pool,
    notifier: Arc<Notifier>,
    opts: WorkerOptions,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(run(pool, notifier, opts, cancel))
}

/// A row this worker has claimed.
struct Claimed {
    id: i64,
    receiver: String,
    /// The notification, or why the stored one cannot be read.
    notification: Result<Notification, String>,
    attempts: u32,
    created_at: DateTime<Utc>,
    claimed_until: DateTime<Utc>,
}

/// An attempt, waiting to be recorded.
struct Attempt {
    id: i64,
    receiver: String,
    claimed_until: DateTime<Utc>,
    outcome: AttemptOutcome,
    status: Option<u16>,
    error: Option<String>,
    duration: Duration,
    next: Next,
}

/// Attempts waiting for the recorder at most; when full, finished sends wait (holding their permit), which
/// slows sending down to what the database takes.
const RECORD_QUEUE: usize = 4096;
/// Attempts recorded per statement at most.
const RECORD_BATCH: usize = 1024;
/// Rows claimed from the table per query at most (also bounded by free permits).
const CLAIM_BATCH: usize = 1024;

async fn run(pool: deadpool_postgres::Pool, notifier: Arc<Notifier>, opts: WorkerOptions, cancel: CancellationToken) {
    let wake = opts.wake.clone();
    wake.attach(opts.lease);
    let permits = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let (recorded_tx, recorded_rx) = mpsc::channel(RECORD_QUEUE);
    let recorder = tokio::spawn(record_loop(pool.clone(), recorded_rx));
    let mut in_flight = JoinSet::new();
    // Rows from before the start (another process's expired leases, retries) are looked for at once.
    let mut look = true;
    let mut next_look = tokio::time::Instant::now();
    tracing::info!(concurrency = opts.concurrency, "notification outbox worker started");
    loop {
        while in_flight.try_join_next().is_some() {}
        look |= wake.take_look();
        let mut free = permits.available_permits();
        let mut rows = wake.take(free);
        free -= rows.len();
        if rows.iter().any(|r| lease_left(r) < opts.send_timeout + Duration::from_secs(1)) {
            rows = renew_leases(&pool, rows, opts.lease).await;
        }
        if free > 0 && (look || tokio::time::Instant::now() >= next_look) {
            match claim_and_peek(&pool, free.min(CLAIM_BATCH), opts.lease).await {
                Ok((claimed, due)) => {
                    // A full batch may have left more behind: look again as soon as permits free up.
                    look = claimed.len() == free.min(CLAIM_BATCH);
                    let wait =
                        due.map_or(opts.poll_interval, |d| d.clamp(Duration::from_millis(10), opts.poll_interval));
                    next_look = tokio::time::Instant::now() + wait;
                    rows.extend(claimed);
                }
                Err(e) => {
                    look = false;
                    next_look = tokio::time::Instant::now() + opts.poll_interval.min(Duration::from_secs(1));
                    tracing::warn!(error = %e, "notification outbox: claiming due notifications failed");
                }
            }
        }
        for row in rows {
            let permit = permits.clone().acquire_owned().await.expect("the semaphore is never closed");
            let (notifier, opts, recorded) = (notifier.clone(), opts.clone(), recorded_tx.clone());
            in_flight.spawn(async move {
                let attempt = deliver(&notifier, row, &opts).await;
                let _ = recorded.send(attempt).await;
                drop(permit);
            });
        }
        if cancel.is_cancelled() {
            break;
        }
        if (look && permits.available_permits() > 0) || (wake.queued() > 0 && permits.available_permits() > 0) {
            continue;
        }
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = wake.0.notify.notified() => {}
            _ = tokio::time::sleep_until(next_look) => {}
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
        }
    }
    wake.detach();
    let draining = async { while in_flight.join_next().await.is_some() {} };
    if tokio::time::timeout(opts.shutdown_grace, draining).await.is_err() {
        tracing::warn!(
            abandoned = in_flight.len(),
            "notification outbox worker stopping: sends still in flight are abandoned and retried after their lease"
        );
        in_flight.abort_all();
        while in_flight.join_next().await.is_some() {}
    }
    drop(recorded_tx);
    let _ = recorder.await;
    // Rows handed over but never started go back to `pending`, so the next start sends them at once instead of
    // after their lease.
    let unsent = wake.take(usize::MAX);
    if !unsent.is_empty() {
        match release(&pool, &unsent).await {
            Ok(n) => tracing::info!(released = n, "notification outbox: unsent hand-offs returned to pending"),
            Err(e) => tracing::warn!(
                error = %e,
                unsent = unsent.len(),
                "notification outbox: returning unsent hand-offs failed; they are sent after their lease"
            ),
        }
    }
    tracing::info!("notification outbox worker stopped");
}

fn lease_left(row: &Claimed) -> Duration {
    (row.claimed_until - Utc::now()).to_std().unwrap_or(Duration::ZERO)
}

async fn client(pool: &deadpool_postgres::Pool) -> Result<deadpool_postgres::Object, OutboxError> {
    pool.get().await.map_err(|e| OutboxError::Pool(e.to_string()))
}

/// Claims up to `limit` due rows (pending and due, or delivering with an expired lease), and says when the next
/// row will be due.
async fn claim_and_peek(
    pool: &deadpool_postgres::Pool,
    limit: usize,
    lease: Duration,
) -> Result<(Vec<Claimed>, Option<Duration>), OutboxError> {
    const CLAIM: &str = "UPDATE notification_outbox o
         SET state = 'delivering', attempts = o.attempts + 1, claimed_until = now() + make_interval(secs => $2)
         FROM (SELECT id FROM notification_outbox
               WHERE (state = 'pending' AND due_at <= now()) OR (state = 'delivering' AND claimed_until <= now())
               ORDER BY due_at, id
               LIMIT $1
               FOR UPDATE SKIP LOCKED) due
         WHERE o.id = due.id
         RETURNING o.id, o.receiver, o.notification, o.attempts, o.created_at, o.claimed_until";
    const PEEK: &str = "SELECT EXTRACT(EPOCH FROM LEAST(
             (SELECT min(due_at) FROM notification_outbox WHERE state = 'pending'),
             (SELECT min(claimed_until) FROM notification_outbox WHERE state = 'delivering')) - now())::float8";
    let client = client(pool).await?;
    let (claim, peek) = futures_util::try_join!(client.prepare_cached(CLAIM), client.prepare_cached(PEEK))
        .map_err(db_error("preparing the claim"))?;
    // Both in one round trip: the peek runs after the claim, on the rows it left.
    let (limit, lease) = (limit as i64, lease.as_secs_f64());
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&limit, &lease];
    let (rows, next) = futures_util::try_join!(client.query(&claim, &params), client.query_one(&peek, &[]),)
        .map_err(db_error("claiming due notifications"))?;
    let claimed = rows
        .into_iter()
        .map(|r| {
            let id: i64 = r.get(0);
            let json: serde_json::Value = r.get(2);
            Claimed {
                id,
                receiver: r.get(1),
                notification: serde_json::from_value(json)
                    .map_err(|e| format!("the stored notification (outbox row {id}) is unreadable: {e}")),
                attempts: r.get::<_, i32>(3).max(0) as u32,
                created_at: r.get(4),
                claimed_until: r.get(5),
            }
        })
        .collect();
    let next: Option<f64> = next.get(0);
    Ok((claimed, next.map(|s| Duration::from_secs_f64(s.max(0.0)))))
}

/// Extends the lease of handed-over rows that waited long enough to be at risk of expiring during their send.
/// Rows whose lease is no longer this worker's (it expired and another claimed them) are dropped.
async fn renew_leases(pool: &deadpool_postgres::Pool, rows: Vec<Claimed>, lease: Duration) -> Vec<Claimed> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let leases: Vec<DateTime<Utc>> = rows.iter().map(|r| r.claimed_until).collect();
    let renewed = async {
        client(pool)
            .await?
            .query(
                "UPDATE notification_outbox o SET claimed_until = now() + make_interval(secs => $3)
                 FROM unnest($1::bigint[], $2::timestamptz[]) AS u(id, lease)
                 WHERE o.id = u.id AND o.state = 'delivering' AND o.claimed_until = u.lease
                 RETURNING o.id, o.claimed_until",
                &[&ids, &leases, &lease.as_secs_f64()],
            )
            .await
            .map_err(db_error("renewing leases"))
    };
    match renewed.await {
        Ok(got) => {
            let until: std::collections::HashMap<i64, DateTime<Utc>> =
                got.iter().map(|r| (r.get(0), r.get(1))).collect();
            rows.into_iter()
                .filter_map(|mut r| {
                    r.claimed_until = *until.get(&r.id)?;
                    Some(r)
                })
                .collect()
        }
        Err(e) => {
            // Sending on the old lease risks a duplicate if it runs out mid-send; at least once still holds.
            tracing::warn!(error = %e, "notification outbox: renewing leases failed; sending on the old ones");
            rows
        }
    }
}

/// Returns claimed rows that were never attempted to `pending`.
async fn release(pool: &deadpool_postgres::Pool, rows: &[Claimed]) -> Result<u64, OutboxError> {
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let leases: Vec<DateTime<Utc>> = rows.iter().map(|r| r.claimed_until).collect();
    client(pool)
        .await?
        .execute(
            "UPDATE notification_outbox o SET state = 'pending', claimed_until = NULL, attempts = o.attempts - 1
             FROM unnest($1::bigint[], $2::timestamptz[]) AS u(id, lease)
             WHERE o.id = u.id AND o.state = 'delivering' AND o.claimed_until = u.lease",
            &[&ids, &leases],
        )
        .await
        .map_err(db_error("releasing unsent notifications"))
}

async fn deliver(notifier: &Notifier, row: Claimed, opts: &WorkerOptions) -> Attempt {
    let started = Instant::now();
    // The receiver's status of a successful send (HTTP status or SMTP code), recorded with the attempt.
    let mut ok_status = None;
    let result = match &row.notification {
        Err(message) => Err(SendError::Invalid { receiver: row.receiver.clone(), message: message.clone() }),
        Ok(n) => match tokio::time::timeout(opts.send_timeout, notifier.send(n)).await {
            Ok(r) => r.map(|d| ok_status = d.status),
            Err(_) => Err(SendError::Network {
                receiver: row.receiver.clone(),
                what: "send".into(),
                message: format!("no result within {}s", opts.send_timeout.as_secs_f64()),
            }),
        },
    };
    let duration = started.elapsed();
    let age = (Utc::now() - row.created_at).to_std().unwrap_or(Duration::ZERO);
    let next = decide(&result, row.attempts, age, opts, rand::random_range(0.5..=1.0));
    let outcome = match &result {
        Ok(()) => AttemptOutcome::Ok,
        Err(e) if e.is_transient() => AttemptOutcome::Transient,
        Err(_) => AttemptOutcome::Permanent,
    };
    let error = result.as_ref().err().map(ToString::to_string);
    let status = match &result {
        Ok(()) => ok_status,
        Err(e) => e.status(),
    };
    metrics::counter!("netwarden_notifications_total", "receiver" => row.receiver.clone(), "outcome" => outcome.as_str())
        .increment(1);
    metrics::histogram!("netwarden_notification_attempt_seconds", "receiver" => row.receiver.clone())
        .record(duration.as_secs_f64());
    if next == Next::Delivered {
        metrics::histogram!("netwarden_notification_delivery_seconds", "receiver" => row.receiver.clone())
            .record(age.as_secs_f64());
    }
    let next_text = match &next {
        Next::Delivered => "delivered".to_string(),
        Next::Retry { after } => format!("retry in {:.1}s", after.as_secs_f64()),
        Next::Fail { .. } => "failed".to_string(),
    };
    tracing::info!(
        outbox_id = row.id,
        receiver = %row.receiver,
        attempt = row.attempts,
        outcome = outcome.as_str(),
        status,
        duration_ms = duration.as_millis() as u64,
        next = %next_text,
        error = error.as_deref().unwrap_or(""),
        "notification attempt"
    );
    Attempt {
        id: row.id,
        receiver: row.receiver,
        claimed_until: row.claimed_until,
        outcome,
        status,
        error,
        duration,
        next,
    }
}

/// Records attempts in batches until every sender is gone. A batch that cannot be written is retried a few
/// times; after that its rows stay claimed and are sent again once their lease expires (at least once).
async fn record_loop(pool: deadpool_postgres::Pool, mut attempts: mpsc::Receiver<Attempt>) {
    let mut batch = Vec::with_capacity(RECORD_BATCH);
    while attempts.recv_many(&mut batch, RECORD_BATCH).await > 0 {
        let mut delay = Duration::from_millis(100);
        for tries in 1.. {
            let recorded = async { record(&*client(&pool).await?, &batch).await };
            match recorded.await {
                Ok(held) => {
                    for a in batch.iter().filter(|a| !held.contains(&a.id)) {
                        tracing::warn!(
                            outbox_id = a.id,
                            receiver = %a.receiver,
                            "notification outbox: the lease expired during the send; another worker owns the row now"
                        );
                    }
                    break;
                }
                Err(e) if tries < 4 => {
                    tracing::warn!(error = %e, attempts = batch.len(), "notification outbox: recording attempts failed; retrying");
                    tokio::time::sleep(delay).await;
                    delay *= 2;
                }
                Err(e) => {
                    metrics::counter!("netwarden_outbox_unrecorded_attempts_total").increment(batch.len() as u64);
                    tracing::warn!(
                        error = %e,
                        attempts = batch.len(),
                        "notification outbox: recording attempts failed; the rows are sent again after their lease"
                    );
                    break;
                }
            }
        }
        batch.clear();
    }
}

/// Records a batch of attempts and moves each row on, if this worker still holds its lease, in one statement.
/// Returns the ids of the rows it moved on.
async fn record(
    client: &deadpool_postgres::ClientWrapper,
    batch: &[Attempt],
) -> Result<std::collections::HashSet<i64>, OutboxError> {
    const RECORD: &str = "WITH u AS (
             SELECT * FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::int4[], $5::text[], $6::int4[],
                                  $7::text[], $8::float8[], $9::text[])
                 AS u(id, lease, outcome, http_status, error, duration_ms, next, after_secs, reason)),
         attempt AS (
             INSERT INTO notification_attempt (outbox_id, outcome, http_status, error, duration_ms)
             SELECT id, outcome, http_status, error, duration_ms FROM u)
         UPDATE notification_outbox o SET
             state = CASE u.next WHEN 'delivered' THEN 'delivered' WHEN 'retry' THEN 'pending' ELSE 'failed' END,
             claimed_until = NULL,
             delivered_at = CASE WHEN u.next = 'delivered' THEN now() ELSE o.delivered_at END,
             due_at = CASE WHEN u.next = 'retry' THEN now() + make_interval(secs => u.after_secs) ELSE o.due_at END,
             last_error = CASE u.next WHEN 'delivered' THEN NULL WHEN 'retry' THEN u.error ELSE u.reason END
         FROM u
         WHERE o.id = u.id AND o.state = 'delivering' AND o.claimed_until = u.lease
         RETURNING o.id";
    let mut cols =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for a in batch {
        cols.0.push(a.id);
        cols.1.push(a.claimed_until);
        cols.2.push(a.outcome.as_str());
        cols.3.push(a.status.map(i32::from));
        cols.4.push(a.error.as_deref());
        cols.5.push(a.duration.as_millis().min(i32::MAX as u128) as i32);
        let (next, after, reason) = match &a.next {
            Next::Delivered => ("delivered", 0.0, None),
            Next::Retry { after } => ("retry", after.as_secs_f64(), None),
            Next::Fail { reason } => ("failed", 0.0, Some(reason.as_str())),
        };
        cols.6.push(next);
        cols.7.push(after);
        cols.8.push(reason);
    }
    let stmt = client.prepare_cached(RECORD).await.map_err(db_error("preparing the attempt record"))?;
    let rows = client
        .query(&stmt, &[&cols.0, &cols.1, &cols.2, &cols.3, &cols.4, &cols.5, &cols.6, &cols.7, &cols.8])
        .await
        .map_err(db_error("recording attempts"))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// One attempt as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptRecord {
    pub at: DateTime<Utc>,
    pub outcome: AttemptOutcome,
    pub http_status: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i32,
}

/// One outbox row with its attempts, oldest attempt first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutboxEntry {
    pub id: i64,
    pub receiver: String,
    pub group_key: String,
    pub kind: String,
    pub notification: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub due_at: DateTime<Utc>,
    pub attempts: i32,
    pub state: OutboxState,
    pub claimed_until: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub attempt_log: Vec<AttemptRecord>,
}

/// Filter for [`list`]: newest first, at most `limit` (1..=1000) rows.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct OutboxQuery {
    pub state: Option<OutboxState>,
    pub receiver: Option<String>,
    pub limit: i64,
}

impl Default for OutboxQuery {
    fn default() -> Self {
        OutboxQuery { state: None, receiver: None, limit: 100 }
    }
}

const ENTRY_COLUMNS: &str = "id, receiver, group_key, kind, notification, created_at, due_at, attempts, state, \
                             claimed_until, last_error, delivered_at";

/// Outbox rows matching `q`, newest first, each with its attempts.
pub async fn list(db: &impl GenericClient, q: &OutboxQuery) -> Result<Vec<OutboxEntry>, OutboxError> {
    let state = q.state.map(OutboxState::as_str);
    let rows = db
        .query(
            &format!(
                "SELECT {ENTRY_COLUMNS} FROM notification_outbox
                 WHERE ($1::text IS NULL OR state = $1) AND ($2::text IS NULL OR receiver = $2)
                 ORDER BY id DESC LIMIT $3"
            ),
            &[&state, &q.receiver, &q.limit.clamp(1, 1000)],
        )
        .await
        .map_err(db_error("listing the outbox"))?;
    let mut entries = rows.iter().map(entry).collect::<Result<Vec<_>, _>>()?;
    let ids: Vec<i64> = entries.iter().map(|e| e.id).collect();
    let attempts = db
        .query(
            "SELECT outbox_id, at, outcome, http_status, error, duration_ms FROM notification_attempt
             WHERE outbox_id = ANY($1) ORDER BY outbox_id, at, id",
            &[&ids],
        )
        .await
        .map_err(db_error("listing attempts"))?;
    for r in attempts {
        let id: i64 = r.get(0);
        let outcome: String = r.get(2);
        let record = AttemptRecord {
            at: r.get(1),
            outcome: outcome.parse().map_err(|_| OutboxError::Corrupt { what: "attempt outcome", value: outcome })?,
            http_status: r.get(3),
            error: r.get(4),
            duration_ms: r.get(5),
        };
        if let Some(e) = entries.iter_mut().find(|e| e.id == id) {
            e.attempt_log.push(record);
        }
    }
    Ok(entries)
}

/// One outbox row with its attempts.
pub async fn get(db: &impl GenericClient, id: i64) -> Result<Option<OutboxEntry>, OutboxError> {
    let Some(row) = db
        .query_opt(&format!("SELECT {ENTRY_COLUMNS} FROM notification_outbox WHERE id = $1"), &[&id])
        .await
        .map_err(db_error("reading an outbox row"))?
    else {
        return Ok(None);
    };
    let mut e = entry(&row)?;
    let attempts = db
        .query(
            "SELECT at, outcome, http_status, error, duration_ms FROM notification_attempt
             WHERE outbox_id = $1 ORDER BY at, id",
            &[&id],
        )
        .await
        .map_err(db_error("reading attempts"))?;
    for r in attempts {
        let outcome: String = r.get(1);
        e.attempt_log.push(AttemptRecord {
            at: r.get(0),
            outcome: outcome.parse().map_err(|_| OutboxError::Corrupt { what: "attempt outcome", value: outcome })?,
            http_status: r.get(2),
            error: r.get(3),
            duration_ms: r.get(4),
        });
    }
    Ok(Some(e))
}

fn entry(r: &tokio_postgres::Row) -> Result<OutboxEntry, OutboxError> {
    let state: String = r.get(8);
    Ok(OutboxEntry {
        id: r.get(0),
        receiver: r.get(1),
        group_key: r.get(2),
        kind: r.get(3),
        notification: r.get(4),
        created_at: r.get(5),
        due_at: r.get(6),
        attempts: r.get(7),
        state: state.parse().map_err(|_| OutboxError::Corrupt { what: "outbox state", value: state })?,
        claimed_until: r.get(9),
        last_error: r.get(10),
        delivered_at: r.get(11),
        attempt_log: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http(status: u16, retry_after: Option<Duration>) -> Result<(), SendError> {
        Err(SendError::Http { receiver: "r".into(), what: "POST".into(), status, body: String::new(), retry_after })
    }

    #[test]
    fn backoff_doubles_caps_jitters_and_honours_retry_after() {
        let (base, cap) = (Duration::from_secs(1), Duration::from_secs(300));
        let b = |n, jitter, ra| backoff(n, base, cap, jitter, ra);
        assert_eq!(b(1, 1.0, None), Duration::from_secs(1));
        assert_eq!(b(2, 1.0, None), Duration::from_secs(2));
        assert_eq!(b(5, 1.0, None), Duration::from_secs(16));
        assert_eq!(b(5, 0.5, None), Duration::from_secs(8));
        assert_eq!(b(5, 0.1, None), Duration::from_secs(8), "jitter is clamped to [0.5, 1]");
        assert_eq!(b(20, 1.0, None), cap);
        assert_eq!(b(200, 1.0, None), cap, "no overflow");
        assert_eq!(b(1, 1.0, Some(Duration::from_secs(30))), Duration::from_secs(30));
        assert_eq!(b(0, 1.0, None), Duration::from_secs(1));
    }

    #[test]
    fn decisions_follow_the_error_class_and_the_limits() {
        let opts = WorkerOptions { max_attempts: 3, max_age: Duration::from_secs(600), ..WorkerOptions::default() };
        let young = Duration::from_secs(1);
        assert_eq!(decide(&Ok(()), 1, young, &opts, 1.0), Next::Delivered);
        assert_eq!(decide(&http(503, None), 1, young, &opts, 1.0), Next::Retry { after: Duration::from_secs(1) });
        assert_eq!(
            decide(&http(429, Some(Duration::from_secs(7))), 2, young, &opts, 1.0),
            Next::Retry { after: Duration::from_secs(7) }
        );
        assert!(
            matches!(decide(&http(400, None), 1, young, &opts, 1.0), Next::Fail { reason } if reason.contains("HTTP 400"))
        );
        assert!(
            matches!(decide(&http(500, None), 3, young, &opts, 1.0), Next::Fail { reason } if reason.starts_with("gave up after 3 attempts"))
        );
        assert!(
            matches!(decide(&http(500, None), 1, Duration::from_secs(600), &opts, 1.0), Next::Fail { reason } if reason.starts_with("gave up after 600s"))
        );
    }

    #[test]
    fn states_round_trip() {
        for s in [OutboxState::Pending, OutboxState::Delivering, OutboxState::Delivered, OutboxState::Failed] {
            assert_eq!(s.as_str().parse::<OutboxState>().unwrap(), s);
        }
        for o in [AttemptOutcome::Ok, AttemptOutcome::Transient, AttemptOutcome::Permanent] {
            assert_eq!(o.as_str().parse::<AttemptOutcome>().unwrap(), o);
        }
        assert!("lost".parse::<OutboxState>().is_err());
    }
}
