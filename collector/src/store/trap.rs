//! The `snmp_trap` table: every notification the trap receiver accepted, appended by one writer task that
//! also deletes rows past their retention; and the read side for the API.

use crate::trap::TrapEvent;
use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use serde::Serialize;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_postgres::GenericClient;
use tokio_util::sync::CancellationToken;

/// How long stored traps are kept.
pub const RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
/// Events written in one transaction at most.
const BATCH: usize = 256;

/// A stored notification, as the API shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TrapRow {
    pub id: i64,
    pub time: DateTime<Utc>,
    pub device_id: i64,
    pub device: String,
    pub source: String,
    pub version: String,
    pub inform: bool,
    pub kind: String,
    pub trap_oid: String,
    pub details: serde_json::Value,
    pub varbinds: serde_json::Value,
}

/// Appends events (one statement each, in the caller's transaction if it has one).
pub async fn insert(db: &impl GenericClient, events: &[TrapEvent]) -> Result<(), tokio_postgres::Error> {
    let stmt = db
        .prepare(
            "INSERT INTO snmp_trap (time, device_id, source, version, inform, kind, trap_oid, details, varbinds)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .await?;
    for e in events {
        let varbinds = serde_json::Value::from(e.varbinds.clone());
        db.execute(
            &stmt,
            &[
                &e.at,
                &e.device_id,
                &e.source.to_string(),
                &e.version.as_str(),
                &e.inform,
                &e.kind.label(),
                &e.trap_oid.to_string(),
                &e.kind.details(),
                &varbinds,
            ],
        )
        .await?;
    }
    Ok(())
}

/// Notifications since `since`, newest first, optionally of one device.
pub async fn list(
    db: &impl GenericClient,
    device_id: Option<i64>,
    since: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<TrapRow>, tokio_postgres::Error> {
    let rows = db
        .query(
            "SELECT t.id, t.time, t.device_id, d.name, t.source, t.version, t.inform, t.kind, t.trap_oid, t.details,
                    t.varbinds
             FROM snmp_trap t JOIN device d ON d.id = t.device_id
             WHERE t.time >= $1 AND ($2::bigint IS NULL OR t.device_id = $2)
             ORDER BY t.time DESC, t.id DESC
             LIMIT $3",
            &[&since, &device_id, &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| TrapRow {
            id: r.get(0),
            time: r.get(1),
            device_id: r.get(2),
            device: r.get(3),
            source: r.get(4),
            version: r.get(5),
            inform: r.get(6),
            kind: r.get(7),
            trap_oid: r.get(8),
            details: r.get(9),
            varbinds: r.get(10),
        })
        .collect())
}

/// Deletes notifications older than `retention`; returns how many.
pub async fn delete_expired(db: &impl GenericClient, retention: Duration) -> Result<u64, tokio_postgres::Error> {
    let before = Utc::now() - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::days(30));
    db.execute("DELETE FROM snmp_trap WHERE time < $1", &[&before]).await
}

/// Writes the receiver's events until `cancel` (then what is already queued), in batches. A batch the
/// database refuses is logged and counted (`netwarden_traps_store_errors_total`), not retried: the
/// re-poll the trap asked for has happened either way, and the receiver never waits for this task.
pub async fn run_writer(pool: Pool, mut events: mpsc::Receiver<TrapEvent>, cancel: CancellationToken) {
    let mut expiry = tokio::time::interval(Duration::from_secs(3600));
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            n = events.recv_many(&mut batch, BATCH) => {
                if n == 0 {
                    return; // every sender is gone
                }
                write(&pool, &batch).await;
                batch.clear();
            }
            _ = expiry.tick() => match pool.get().await {
                Ok(c) => match delete_expired(&**c, RETENTION).await {
                    Ok(n) if n > 0 => tracing::debug!(deleted = n, "expired SNMP traps deleted"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %crate::db::error_text(&e), "cannot delete expired SNMP traps"),
                },
                Err(e) => tracing::warn!(error = %e, "cannot delete expired SNMP traps: no database connection"),
            },
        }
    }
    while let Ok(e) = events.try_recv() {
        batch.push(e);
        if batch.len() == BATCH {
            break;
        }
    }
    if !batch.is_empty() {
        write(&pool, &batch).await;
    }
}

async fn write(pool: &Pool, batch: &[TrapEvent]) {
    let result = async {
        let mut conn = pool.get().await.map_err(|e| e.to_string())?;
        let client: &mut tokio_postgres::Client = &mut conn;
        let tx = client.transaction().await.map_err(|e| crate::db::error_text(&e))?;
        insert(&tx, batch).await.map_err(|e| crate::db::error_text(&e))?;
        tx.commit().await.map_err(|e| crate::db::error_text(&e))
    }
    .await;
    if let Err(e) = result {
        metrics::counter!("netwarden_traps_store_errors_total").increment(batch.len() as u64);
        tracing::warn!(error = %e, traps = batch.len(), "cannot store SNMP traps");
    }
}
