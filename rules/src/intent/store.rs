//! The intent tables (migration 0011): current verdicts and their history. A writer task takes the
//! results the engine reports as changed and writes them in order, one transaction per batch; a
//! batch the database refuses is kept and retried, so an outage delays the records and loses none.

use super::{CheckOutcome, IntentResult, Verdict};
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_postgres::GenericClient;
use tokio_util::sync::CancellationToken;

pub type DbResult<T> = Result<T, tokio_postgres::Error>;

/// One change for the store.
#[derive(Debug, Clone)]
pub enum Write {
    /// A new or changed result.
    Result(IntentResult),
    /// The intent no longer applies to the device (scope changed, device left, intent removed).
    Removed { intent: String, device_id: i64 },
}

/// Writes a result and, for a new verdict or message, a history event.
pub async fn upsert(db: &impl GenericClient, r: &IntentResult, at: DateTime<Utc>) -> DbResult<()> {
    let checks = serde_json::to_value(&r.checks).unwrap_or_default();
    db.execute(
        "INSERT INTO intent_event (at, intent, device_id, device, verdict, previous, message, checks)
         SELECT $1, $2, $3, $4, $5, (SELECT verdict FROM intent_result WHERE intent = $2 AND device_id = $3), $6, $7
         WHERE NOT EXISTS (SELECT 1 FROM intent_result
                           WHERE intent = $2 AND device_id = $3 AND verdict = $5 AND message = $6)",
        &[&at, &r.intent, &r.device_id, &r.device, &r.verdict.as_str(), &r.message, &checks],
    )
    .await?;
    db.execute(
        "INSERT INTO intent_result (intent, device_id, verdict, message, checks, since, updated_at)
         SELECT $1, $2, $3, $4, $5, $6, $7 WHERE EXISTS (SELECT 1 FROM device WHERE id = $2)
         ON CONFLICT (intent, device_id) DO UPDATE SET verdict = EXCLUDED.verdict, message = EXCLUDED.message,
            checks = EXCLUDED.checks, since = EXCLUDED.since, updated_at = EXCLUDED.updated_at",
        &[&r.intent, &r.device_id, &r.verdict.as_str(), &r.message, &checks, &r.since, &at],
    )
    .await?;
    Ok(())
}

pub async fn remove(db: &impl GenericClient, intent: &str, device_id: i64, at: DateTime<Utc>) -> DbResult<()> {
    db.execute(
        "WITH gone AS (DELETE FROM intent_result r WHERE intent = $1 AND device_id = $2 RETURNING verdict)
         INSERT INTO intent_event (at, intent, device_id, device, verdict, previous)
         SELECT $3, $1, $2, coalesce((SELECT name FROM device WHERE id = $2), ''), 'removed', verdict FROM gone",
        &[&intent, &device_id, &at],
    )
    .await?;
    Ok(())
}

/// Deletes the results of intents that are no longer defined (called at start).
pub async fn forget_undefined(db: &impl GenericClient, defined: &[String], at: DateTime<Utc>) -> DbResult<u64> {
    db.execute(
        "WITH gone AS (DELETE FROM intent_result WHERE NOT (intent = ANY($1)) RETURNING intent, device_id, verdict)
         INSERT INTO intent_event (at, intent, device_id, device, verdict, previous)
         SELECT $2, g.intent, g.device_id, coalesce(d.name, ''), 'removed', g.verdict
         FROM gone g LEFT JOIN device d ON d.id = g.device_id",
        &[&defined, &at],
    )
    .await
}

/// A stored result, as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct StoredResult {
    pub intent: String,
    pub device: String,
    pub device_id: i64,
    pub verdict: String,
    pub message: String,
    pub checks: Vec<CheckOutcome>,
    pub since: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl StoredResult {
    pub fn into_result(self) -> Option<IntentResult> {
        Some(IntentResult {
            verdict: Verdict::parse(&self.verdict)?,
            intent: self.intent,
            device_id: self.device_id,
            device: self.device,
            message: self.message,
            checks: self.checks,
            since: self.since,
        })
    }
}

/// Filters for [`results`]; unset fields do not filter.
#[derive(Debug, Default, Clone)]
pub struct ResultFilter {
    pub intent: Option<String>,
    pub device: Option<String>,
    pub verdict: Option<String>,
}

pub async fn results(db: &impl GenericClient, f: &ResultFilter) -> DbResult<Vec<StoredResult>> {
    let rows = db
        .query(
            "SELECT r.intent, d.name, r.device_id, r.verdict, r.message, r.checks, r.since, r.updated_at
             FROM intent_result r JOIN device d ON d.id = r.device_id
             WHERE ($1::text IS NULL OR r.intent = $1) AND ($2::text IS NULL OR d.name = $2)
               AND ($3::text IS NULL OR r.verdict = $3)
             ORDER BY r.intent, d.name",
            &[&f.intent, &f.device, &f.verdict],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| StoredResult {
            intent: r.get(0),
            device: r.get(1),
            device_id: r.get(2),
            verdict: r.get(3),
            message: r.get(4),
            checks: serde_json::from_value(r.get(5)).unwrap_or_default(),
            since: r.get(6),
            updated_at: r.get(7),
        })
        .collect())
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub intent: String,
    pub device: String,
    pub verdict: String,
    pub previous: Option<String>,
    pub message: String,
    pub checks: serde_json::Value,
}

pub async fn history(
    db: &impl GenericClient,
    intent: Option<&str>,
    device: Option<&str>,
    limit: i64,
) -> DbResult<Vec<Event>> {
    let rows = db
        .query(
            "SELECT id, at, intent, device, verdict, previous, message, checks FROM intent_event
             WHERE ($1::text IS NULL OR intent = $1) AND ($2::text IS NULL OR device = $2)
             ORDER BY id DESC LIMIT $3",
            &[&intent, &device, &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Event {
            id: r.get(0),
            at: r.get(1),
            intent: r.get(2),
            device: r.get(3),
            verdict: r.get(4),
            previous: r.get(5),
            message: r.get(6),
            checks: r.get(7),
        })
        .collect())
}

/// The most changes kept in memory while the database is unavailable; beyond it the oldest are
/// dropped (counted and logged): the current verdicts are re-derived at the next polls anyway.
const MAX_PENDING: usize = 200_000;

/// Starts the writer. It stops when `cancel` fires (after one last attempt) or the sender closes.
pub fn spawn_writer(
    pool: deadpool_postgres::Pool,
    mut rx: mpsc::UnboundedReceiver<Vec<Write>>,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut pending: std::collections::VecDeque<(Write, DateTime<Utc>)> = Default::default();
        let mut backoff = Duration::from_millis(500);
        let mut failing = false;
        let mut open = true;
        loop {
            if pending.is_empty() || !open {
                if !open && pending.is_empty() {
                    break;
                }
                if open {
                    tokio::select! {
                        _ = cancel.cancelled() => open = false,
                        batch = rx.recv() => match batch {
                            Some(b) => pending.extend(b.into_iter().map(|w| (w, Utc::now()))),
                            None => open = false,
                        },
                    }
                }
            }
            while let Ok(b) = rx.try_recv() {
                pending.extend(b.into_iter().map(|w| (w, Utc::now())));
            }
            if pending.len() > MAX_PENDING {
                let over = pending.len() - MAX_PENDING;
                pending.drain(..over);
                metrics::counter!("netwarden_intent_writes_dropped_total").increment(over as u64);
                tracing::error!(dropped = over, "intent results dropped: the database has been unavailable too long");
            }
            if pending.is_empty() {
                continue;
            }
            let n = pending.len().min(5_000);
            match write_batch(&pool, pending.range(..n)).await {
                Ok(()) => {
                    pending.drain(..n);
                    if failing {
                        tracing::info!("intent results are written again");
                    }
                    failing = false;
                    backoff = Duration::from_millis(500);
                }
                Err(e) => {
                    if !failing {
                        tracing::error!(error = %e, pending = pending.len(), "writing intent results failed; retrying");
                    }
                    failing = true;
                    if !open {
                        tracing::error!(pending = pending.len(), "stopping with intent results not written");
                        break;
                    }
                    tokio::select! {
                        _ = cancel.cancelled() => open = false,
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(30));
                }
            }
        }
    })
}

async fn write_batch<'a>(
    pool: &deadpool_postgres::Pool,
    batch: impl Iterator<Item = &'a (Write, DateTime<Utc>)>,
) -> Result<(), String> {
    let mut conn = pool.get().await.map_err(|e| e.to_string())?;
    let client: &mut tokio_postgres::Client = &mut conn;
    let tx = client.transaction().await.map_err(|e| collector::db::error_text(&e))?;
    for (w, at) in batch {
        match w {
            Write::Result(r) => upsert(&tx, r, *at).await,
            Write::Removed { intent, device_id } => remove(&tx, intent, *device_id, *at).await,
        }
        .map_err(|e| collector::db::error_text(&e))?;
    }
    tx.commit().await.map_err(|e| collector::db::error_text(&e))
}
