//! The `config_snapshot`, `config_backup` and `config_event` tables
//! (migrations/0005_ssh_and_configs.sql): the only code that reads or writes them.

use super::schedule::LastBackups;
use super::{BackupTrigger, ConfigDiff, sha256_hex, unified_diff};
use crate::ssh::Profile;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::HashMap;
use std::time::Duration;
use tokio_postgres::{GenericClient, Row};

/// Backups of one device are recorded one at a time (transaction-scoped advisory lock).
const CONFIG_LOCK: i64 = 0x6e77_6366_0000_0000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    pub id: i64,
    pub device_id: i64,
    pub sha256: String,
    /// Normalised configuration, secrets included: mask before showing.
    #[serde(skip)]
    pub content: String,
    pub lines: i32,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub approved_at: Option<DateTime<Utc>>,
    pub approved_by: Option<String>,
}

const SNAPSHOT_COLUMNS: &str = "id, device_id, sha256, content, lines, first_seen, last_seen, approved_at, approved_by";

fn snapshot_from_row(r: &Row) -> Snapshot {
    Snapshot {
        id: r.get(0),
        device_id: r.get(1),
        sha256: r.get(2),
        content: r.get(3),
        lines: r.get(4),
        first_seen: r.get(5),
        last_seen: r.get(6),
        approved_at: r.get(7),
        approved_by: r.get(8),
    }
}

/// A recorded change between two snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigEvent {
    pub id: i64,
    pub device_id: i64,
    pub device: String,
    pub detected_at: DateTime<Utc>,
    pub trigger: String,
    pub from_snapshot_id: i64,
    pub to_snapshot_id: i64,
    pub lines_added: i32,
    pub lines_removed: i32,
    /// Unified diff, secrets masked.
    pub diff: String,
}

/// What recording one successful backup did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recorded {
    pub backup_id: i64,
    pub snapshot_id: i64,
    pub sha256: String,
    /// The device's first successful backup.
    pub first: bool,
    /// The configuration differs from the previous successful backup's.
    pub changed: bool,
    pub event: Option<ConfigEvent>,
}

/// Records a successful backup of `normalized` (see [`super::normalize`]): the snapshot is
/// stored once per distinct content, the backup row always, and a change from the previous
/// successful backup becomes a `config_event` with the masked diff.
pub async fn record_backup(
    client: &mut tokio_postgres::Client,
    device_id: i64,
    profile: &Profile,
    normalized: &str,
    trigger: BackupTrigger,
    duration: Duration,
) -> Result<Recorded, tokio_postgres::Error> {
    let sha = sha256_hex(normalized);
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&(CONFIG_LOCK ^ device_id)]).await?;
    let previous = tx
        .query_opt(
            "SELECT s.id, s.sha256, s.content FROM config_backup b JOIN config_snapshot s ON s.id = b.snapshot_id \
             WHERE b.device_id = $1 AND b.status = 'ok' ORDER BY b.taken_at DESC, b.id DESC LIMIT 1",
            &[&device_id],
        )
        .await?
        .map(|r| (r.get::<_, i64>(0), r.get::<_, String>(1), r.get::<_, String>(2)));
    let lines = normalized.lines().count() as i32;
    let snapshot_id: i64 = tx
        .query_one(
            "INSERT INTO config_snapshot (device_id, sha256, content, lines) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (device_id, sha256) DO UPDATE SET last_seen = now() RETURNING id",
            &[&device_id, &sha, &normalized, &lines],
        )
        .await?
        .get(0);
    let changed = previous.as_ref().is_some_and(|(_, prev_sha, _)| *prev_sha != sha);
    let duration_ms = duration.as_millis().min(i32::MAX as u128) as i32;
    let backup_id: i64 = tx
        .query_one(
            "INSERT INTO config_backup (device_id, trigger, status, snapshot_id, changed, duration_ms) \
             VALUES ($1, $2, 'ok', $3, $4, $5) RETURNING id",
            &[&device_id, &trigger.as_str(), &snapshot_id, &changed, &duration_ms],
        )
        .await?
        .get(0);
    let event = match (&previous, changed) {
        (Some((from_id, _, old)), true) => {
            let d = unified_diff(
                profile,
                old,
                normalized,
                &format!("snapshot {from_id}"),
                &format!("snapshot {snapshot_id}"),
                false,
            );
            let row = tx
                .query_one(
                    "WITH e AS (INSERT INTO config_event (device_id, trigger, from_snapshot_id, to_snapshot_id, \
                     lines_added, lines_removed, diff) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING *) \
                     SELECT e.id, e.device_id, d.name, e.detected_at, e.trigger, e.from_snapshot_id, e.to_snapshot_id, \
                     e.lines_added, e.lines_removed, e.diff FROM e JOIN device d ON d.id = e.device_id",
                    &[
                        &device_id,
                        &trigger.as_str(),
                        from_id,
                        &snapshot_id,
                        &(d.lines_added as i32),
                        &(d.lines_removed as i32),
                        &d.diff,
                    ],
                )
                .await?;
            Some(event_from_row(&row))
        }
        _ => None,
    };
    tx.commit().await?;
    if let Some(e) = &event {
        tracing::info!(device = %e.device, added = e.lines_added, removed = e.lines_removed, "configuration change detected");
    }
    Ok(Recorded { backup_id, snapshot_id, sha256: sha, first: previous.is_none(), changed, event })
}

/// Records a failed backup attempt (so "when did backups of X start failing" has an answer).
pub async fn record_failure(
    client: &impl GenericClient,
    device_id: i64,
    trigger: BackupTrigger,
    error: &str,
    duration: Duration,
) -> Result<i64, tokio_postgres::Error> {
    let duration_ms = duration.as_millis().min(i32::MAX as u128) as i32;
    Ok(client
        .query_one(
            "INSERT INTO config_backup (device_id, trigger, status, error, duration_ms) VALUES ($1, $2, 'failed', $3, $4) RETURNING id",
            &[&device_id, &trigger.as_str(), &error, &duration_ms],
        )
        .await?
        .get(0))
}

pub async fn snapshot(
    client: &impl GenericClient,
    device_id: i64,
    id: i64,
) -> Result<Option<Snapshot>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            &format!("SELECT {SNAPSHOT_COLUMNS} FROM config_snapshot WHERE id = $1 AND device_id = $2"),
            &[&id, &device_id],
        )
        .await?;
    Ok(row.as_ref().map(snapshot_from_row))
}

/// The snapshot of the device's latest successful backup.
pub async fn latest_snapshot(
    client: &impl GenericClient,
    device_id: i64,
) -> Result<Option<Snapshot>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            &format!(
                "SELECT {SNAPSHOT_COLUMNS} FROM config_snapshot WHERE id = (SELECT snapshot_id FROM config_backup \
                 WHERE device_id = $1 AND status = 'ok' ORDER BY taken_at DESC, id DESC LIMIT 1)"
            ),
            &[&device_id],
        )
        .await?;
    Ok(row.as_ref().map(snapshot_from_row))
}

/// The most recently approved snapshot: the drift baseline.
pub async fn approved_snapshot(
    client: &impl GenericClient,
    device_id: i64,
) -> Result<Option<Snapshot>, tokio_postgres::Error> {
    let row = client
        .query_opt(
            &format!(
                "SELECT {SNAPSHOT_COLUMNS} FROM config_snapshot WHERE device_id = $1 AND approved_at IS NOT NULL \
                 ORDER BY approved_at DESC, id DESC LIMIT 1"
            ),
            &[&device_id],
        )
        .await?;
    Ok(row.as_ref().map(snapshot_from_row))
}

/// Marks a snapshot as approved (the intended state of the device); false if there is no such
/// snapshot for the device.
pub async fn approve(
    client: &impl GenericClient,
    device_id: i64,
    snapshot_id: i64,
    by: &str,
) -> Result<bool, tokio_postgres::Error> {
    Ok(client
        .execute(
            "UPDATE config_snapshot SET approved_at = now(), approved_by = $3 WHERE id = $1 AND device_id = $2",
            &[&snapshot_id, &device_id, &by],
        )
        .await?
        > 0)
}

/// One backup attempt in a device's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistoryEntry {
    pub backup_id: i64,
    pub taken_at: DateTime<Utc>,
    pub trigger: String,
    pub status: String,
    pub snapshot_id: Option<i64>,
    pub sha256: Option<String>,
    pub changed: bool,
    /// The device's first successful backup.
    pub first: bool,
    pub duration_ms: Option<i32>,
    pub error: Option<String>,
    /// For changed rows: the size of the change.
    pub lines_added: Option<i32>,
    pub lines_removed: Option<i32>,
}

/// The device's backups, newest first. With `changes_only`, the first backup, the changes and
/// the failures: "what changed when".
pub async fn history(
    client: &impl GenericClient,
    device_id: i64,
    changes_only: bool,
    limit: i64,
) -> Result<Vec<HistoryEntry>, tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT b.id, b.taken_at, b.trigger, b.status, b.snapshot_id, s.sha256, b.changed, b.duration_ms, b.error, \
             e.lines_added, e.lines_removed, b.id = f.first_id \
             FROM config_backup b \
             CROSS JOIN (SELECT min(id) AS first_id FROM config_backup WHERE device_id = $1 AND status = 'ok') f LEFT JOIN config_snapshot s ON s.id = b.snapshot_id \
             LEFT JOIN LATERAL (SELECT lines_added, lines_removed FROM config_event ce WHERE ce.device_id = b.device_id \
               AND ce.to_snapshot_id = b.snapshot_id AND b.changed ORDER BY abs(extract(epoch FROM ce.detected_at - b.taken_at)) LIMIT 1) e ON true \
             WHERE b.device_id = $1 AND (NOT $2 OR b.changed OR b.status = 'failed' OR b.id = f.first_id) \
             ORDER BY b.taken_at DESC, b.id DESC LIMIT $3",
            &[&device_id, &changes_only, &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| HistoryEntry {
            backup_id: r.get(0),
            taken_at: r.get(1),
            trigger: r.get(2),
            status: r.get(3),
            snapshot_id: r.get(4),
            sha256: r.get(5),
            changed: r.get(6),
            duration_ms: r.get(7),
            error: r.get(8),
            lines_added: r.get(9),
            lines_removed: r.get(10),
            first: r.get::<_, Option<bool>>(11).unwrap_or(false),
        })
        .collect())
}

/// The columns [`event_from_row`] reads, from `config_event e` joined with its device `d`.
const EVENT_SELECT: &str = "SELECT e.id, e.device_id, d.name, e.detected_at, e.trigger, e.from_snapshot_id, \
     e.to_snapshot_id, e.lines_added, e.lines_removed, e.diff FROM config_event e JOIN device d ON d.id = e.device_id";

fn event_from_row(r: &Row) -> ConfigEvent {
    ConfigEvent {
        id: r.get(0),
        device_id: r.get(1),
        device: r.get(2),
        detected_at: r.get(3),
        trigger: r.get(4),
        from_snapshot_id: r.get(5),
        to_snapshot_id: r.get(6),
        lines_added: r.get(7),
        lines_removed: r.get(8),
        diff: r.get(9),
    }
}

/// Change events after `after_id` (the alert engine's cursor), oldest first; optionally for one
/// device.
/// The newest configuration event's id (0 when there is none): a cursor that starts at "now".
pub async fn latest_event_id(client: &impl GenericClient) -> Result<i64, tokio_postgres::Error> {
    Ok(client.query_one("SELECT coalesce(max(id), 0) FROM config_event", &[]).await?.get(0))
}

pub async fn events_after(
    client: &impl GenericClient,
    after_id: i64,
    device_id: Option<i64>,
    limit: i64,
) -> Result<Vec<ConfigEvent>, tokio_postgres::Error> {
    let rows = client
        .query(
            &format!(
                "{EVENT_SELECT} WHERE e.id > $1 AND ($2::bigint IS NULL OR e.device_id = $2) ORDER BY e.id LIMIT $3"
            ),
            &[&after_id, &device_id, &limit],
        )
        .await?;
    Ok(rows.iter().map(event_from_row).collect())
}

/// Change events detected since `since`, newest first, optionally only of some devices (the NOC
/// page's recent changes).
pub async fn recent_events(
    client: &impl GenericClient,
    device_ids: Option<&[i64]>,
    since: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<ConfigEvent>, tokio_postgres::Error> {
    let rows = client
        .query(
            &format!(
                "{EVENT_SELECT} WHERE e.detected_at >= $1 AND ($2::bigint[] IS NULL OR e.device_id = ANY($2)) \
             ORDER BY e.detected_at DESC, e.id DESC LIMIT $3"
            ),
            &[&since, &device_ids, &limit],
        )
        .await?;
    Ok(rows.iter().map(event_from_row).collect())
}

/// The two snapshots `config diff` compares when not told: the latest, and the one before it
/// in the backup history (a different content).
pub async fn latest_two(
    client: &impl GenericClient,
    device_id: i64,
) -> Result<(Option<i64>, Option<i64>), tokio_postgres::Error> {
    let rows = client
        .query(
            "SELECT snapshot_id FROM config_backup WHERE device_id = $1 AND status = 'ok' AND snapshot_id IS NOT NULL \
             ORDER BY taken_at DESC, id DESC LIMIT 1000",
            &[&device_id],
        )
        .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    let latest = ids.first().copied();
    let before = ids.iter().copied().find(|id| Some(*id) != latest);
    Ok((before, latest))
}

#[derive(Debug, thiserror::Error)]
pub enum DiffError {
    #[error("device has no snapshot {0}")]
    NoSnapshot(i64),
    #[error("device has fewer than two different snapshots to compare")]
    NothingToCompare,
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
}

/// The diff between two of a device's snapshots (by default the last two different ones),
/// secrets masked unless `reveal`.
pub async fn diff_snapshots(
    client: &impl GenericClient,
    device_id: i64,
    profile: &Profile,
    from: Option<i64>,
    to: Option<i64>,
    reveal: bool,
) -> Result<(Snapshot, Snapshot, ConfigDiff), DiffError> {
    let (default_from, default_to) = latest_two(client, device_id).await?;
    let to = to.or(default_to).ok_or(DiffError::NothingToCompare)?;
    let from = match from {
        Some(f) => f,
        None if Some(to) == default_to => default_from.ok_or(DiffError::NothingToCompare)?,
        // `config diff DEVICE X`: from X to the latest
        None => default_to.ok_or(DiffError::NothingToCompare)?,
    };
    let a = snapshot(client, device_id, from).await?.ok_or(DiffError::NoSnapshot(from))?;
    let b = snapshot(client, device_id, to).await?.ok_or(DiffError::NoSnapshot(to))?;
    let d = unified_diff(
        profile,
        &a.content,
        &b.content,
        &format!("snapshot {} ({})", a.id, a.first_seen.format("%Y-%m-%d %H:%M:%S UTC")),
        &format!("snapshot {} ({})", b.id, b.first_seen.format("%Y-%m-%d %H:%M:%S UTC")),
        reveal,
    );
    Ok((a, b, d))
}

/// The time now (the database's clock, which also stamps `taken_at`) and, for each of
/// `device_ids`, its last successful backup and the last failed attempt after it: what the
/// backup schedule ([`super::schedule`]) needs. Devices without backups are left out.
pub async fn last_backups(
    client: &impl GenericClient,
    device_ids: &[i64],
) -> Result<(DateTime<Utc>, HashMap<i64, LastBackups>), tokio_postgres::Error> {
    let now: DateTime<Utc> = client.query_one("SELECT now()", &[]).await?.get(0);
    let rows = client
        .query(
            "SELECT d.id, ok.taken_at, failed.taken_at FROM unnest($1::bigint[]) AS d(id) \
             LEFT JOIN LATERAL (SELECT b.taken_at FROM config_backup b WHERE b.device_id = d.id AND b.status = 'ok' \
                                ORDER BY b.taken_at DESC LIMIT 1) ok ON true \
             LEFT JOIN LATERAL (SELECT b.taken_at FROM config_backup b WHERE b.device_id = d.id \
                                AND b.status = 'failed' AND b.taken_at > coalesce(ok.taken_at, '-infinity') \
                                ORDER BY b.taken_at DESC LIMIT 1) failed ON true \
             WHERE ok.taken_at IS NOT NULL OR failed.taken_at IS NOT NULL",
            &[&device_ids],
        )
        .await?;
    let last = rows.iter().map(|r| (r.get(0), LastBackups { ok: r.get(1), failed: r.get(2) })).collect();
    Ok((now, last))
}
