//! The durable notification outbox: [`enqueue`] inside the engine's transaction, a delivery worker ([`spawn`])
//! that claims due rows under a lease and sends them at least once, and queries for the API.
//!
//! Guarantees: a notification whose transaction commits is delivered or ends `failed` with its attempts on
//! record; a rolled-back one is never sent. A worker that dies mid-send leaves the row `delivering` with a lease
//! (`claimed_until`); once the lease expires any worker claims it again, so a crash costs a duplicate, never a
//! loss. Several workers (processes) can share the table: claims use `FOR UPDATE SKIP LOCKED`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, Semaphore};
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
    /// Notify after committing an enqueue to have the worker look at once.
    pub wake: Arc<Notify>,
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
            wake: Arc::new(Notify::new()),
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
    notification: serde_json::Value,
    attempts: u32,
    created_at: DateTime<Utc>,
    claimed_until: DateTime<Utc>,
}

async fn run(pool: deadpool_postgres::Pool, notifier: Arc<Notifier>, opts: WorkerOptions, cancel: CancellationToken) {
    let permits = Arc::new(Semaphore::new(opts.concurrency.max(1)));
    let mut in_flight = JoinSet::new();
    tracing::info!(concurrency = opts.concurrency, "notification outbox worker started");
    loop {
        while in_flight.try_join_next().is_some() {}
        let free = permits.available_permits();
        let mut full_batch = false;
        let mut next_due = None;
        if free > 0 {
            match claim_and_peek(&pool, free, opts.lease).await {
                Ok((rows, due)) => {
                    full_batch = rows.len() == free;
                    next_due = due;
                    for row in rows {
                        let permit = permits.clone().acquire_owned().await.expect("the semaphore is never closed");
                        let (pool, notifier, opts) = (pool.clone(), notifier.clone(), opts.clone());
                        in_flight.spawn(async move {
                            deliver(&pool, &notifier, row, &opts).await;
                            drop(permit);
                        });
                    }
                }
                Err(e) => tracing::warn!(error = %e, "notification outbox: claiming due notifications failed"),
            }
        }
        if full_batch && !cancel.is_cancelled() {
            continue;
        }
        let sleep =
            next_due.map_or(opts.poll_interval, |d: Duration| d.clamp(Duration::from_millis(10), opts.poll_interval));
        tokio::select! {
            _ = cancel.cancelled() => break,
            _ = opts.wake.notified() => {}
            _ = tokio::time::sleep(sleep) => {}
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
        }
    }
    let draining = async { while in_flight.join_next().await.is_some() {} };
    if tokio::time::timeout(opts.shutdown_grace, draining).await.is_err() {
        tracing::warn!(
            abandoned = in_flight.len(),
            "notification outbox worker stopping: sends still in flight are abandoned and retried after their lease"
        );
        in_flight.abort_all();
        while in_flight.join_next().await.is_some() {}
    }
    tracing::info!("notification outbox worker stopped");
}

/// Claims up to `limit` due rows (pending and due, or delivering with an expired lease), and says when the next
/// row will be due.
async fn claim_and_peek(
    pool: &deadpool_postgres::Pool,
    limit: usize,
    lease: Duration,
) -> Result<(Vec<Claimed>, Option<Duration>), OutboxError> {
    let client = pool.get().await.map_err(|e| OutboxError::Pool(e.to_string()))?;
    let rows = client
        .query(
            "UPDATE notification_outbox o
             SET state = 'delivering', attempts = o.attempts + 1, claimed_until = now() + make_interval(secs => $2)
             FROM (SELECT id FROM notification_outbox
                   WHERE (state = 'pending' AND due_at <= now()) OR (state = 'delivering' AND claimed_until <= now())
                   ORDER BY due_at, id
                   LIMIT $1
                   FOR UPDATE SKIP LOCKED) due
             WHERE o.id = due.id
             RETURNING o.id, o.receiver, o.notification, o.attempts, o.created_at, o.claimed_until",
            &[&(limit as i64), &lease.as_secs_f64()],
        )
        .await
        .map_err(db_error("claiming due notifications"))?;
    let claimed = rows
        .into_iter()
        .map(|r| Claimed {
            id: r.get(0),
            receiver: r.get(1),
            notification: r.get(2),
            attempts: r.get::<_, i32>(3).max(0) as u32,
            created_at: r.get(4),
            claimed_until: r.get(5),
        })
        .collect();
    let next: Option<f64> = client
        .query_one(
            "SELECT EXTRACT(EPOCH FROM LEAST(
                 (SELECT min(due_at) FROM notification_outbox WHERE state = 'pending'),
                 (SELECT min(claimed_until) FROM notification_outbox WHERE state = 'delivering')) - now())::float8",
            &[],
        )
        .await
        .map_err(db_error("finding the next due notification"))?
        .get(0);
    Ok((claimed, next.map(|s| Duration::from_secs_f64(s.max(0.0)))))
}

async fn deliver(pool: &deadpool_postgres::Pool, notifier: &Notifier, row: Claimed, opts: &WorkerOptions) {
    let started = Instant::now();
    // The receiver's status of a successful send (HTTP status or SMTP code), recorded with the attempt.
    let mut ok_status = None;
    let result = match serde_json::from_value::<Notification>(row.notification.clone()) {
        Err(e) => Err(SendError::Invalid {
            receiver: row.receiver.clone(),
            message: format!("the stored notification is unreadable: {e}"),
        }),
        Ok(n) => match tokio::time::timeout(opts.send_timeout, notifier.send(&n)).await {
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
    let recorded = record(pool, &row, outcome, status, error.as_deref(), duration, &next).await;
    match recorded {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            outbox_id = row.id,
            receiver = %row.receiver,
            "notification outbox: the lease expired during the send; another worker owns the row now"
        ),
        // The row stays claimed; after the lease it is sent again (at least once).
        Err(e) => tracing::warn!(outbox_id = row.id, error = %e, "notification outbox: recording an attempt failed"),
    }
}

/// Records the attempt and moves the row on, if this worker still holds its lease. Returns whether it did.
async fn record(
    pool: &deadpool_postgres::Pool,
    row: &Claimed,
    outcome: AttemptOutcome,
    status: Option<u16>,
    error: Option<&str>,
    duration: Duration,
    next: &Next,
) -> Result<bool, OutboxError> {
    let mut client = pool.get().await.map_err(|e| OutboxError::Pool(e.to_string()))?;
    let tx = client.transaction().await.map_err(db_error("starting a transaction"))?;
    let status = status.map(i32::from);
    let duration_ms = duration.as_millis().min(i32::MAX as u128) as i32;
    tx.execute(
        "INSERT INTO notification_attempt (outbox_id, outcome, http_status, error, duration_ms)
         VALUES ($1, $2, $3, $4, $5)",
        &[&row.id, &outcome.as_str(), &status, &error, &duration_ms],
    )
    .await
    .map_err(db_error("recording an attempt"))?;
    let held = "WHERE id = $1 AND state = 'delivering' AND claimed_until = $2";
    let updated = match next {
        Next::Delivered => {
            tx.execute(
                &format!(
                    "UPDATE notification_outbox SET state = 'delivered', delivered_at = now(), claimed_until = NULL,
                     last_error = NULL {held}"
                ),
                &[&row.id, &row.claimed_until],
            )
            .await
        }
        Next::Retry { after } => {
            tx.execute(
                &format!(
                    "UPDATE notification_outbox SET state = 'pending', claimed_until = NULL,
                     due_at = now() + make_interval(secs => $3), last_error = $4 {held}"
                ),
                &[&row.id, &row.claimed_until, &after.as_secs_f64(), &error],
            )
            .await
        }
        Next::Fail { reason } => {
            tx.execute(
                &format!(
                    "UPDATE notification_outbox SET state = 'failed', claimed_until = NULL, last_error = $3 {held}"
                ),
                &[&row.id, &row.claimed_until, reason],
            )
            .await
        }
    }
    .map_err(db_error("updating an outbox row"))?;
    tx.commit().await.map_err(db_error("committing an attempt"))?;
    Ok(updated == 1)
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
