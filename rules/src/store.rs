//! The alert tables (migration 0007): active alerts, their history, silences, acknowledgements and
//! notification groups. The engine's state changes, the groups and the outbox rows of one step are
//! written in one transaction, so a crash never leaves a page without its record or the reverse.

use crate::alert::{AlertState, Labels, Notification, Severity, Suppression};
use crate::dispatch::Group;
use crate::engine::{Change, Transition};
use crate::matcher::Matcher;
use crate::suppress::Silence;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use tokio_postgres::GenericClient;

pub type DbResult<T> = Result<T, tokio_postgres::Error>;

fn change_name(c: Change) -> &'static str {
    match c {
        Change::Pending => "pending",
        Change::PendingCancelled => "pending_cancelled",
        Change::Firing => "firing",
        Change::Resolved => "resolved",
        Change::FlappingStarted => "flapping_started",
        Change::FlappingStopped => "flapping_stopped",
    }
}

/// Writes one transition: the alert row (inserted, updated or deleted) and a history event.
pub async fn record_transition(db: &impl GenericClient, t: &Transition) -> DbResult<()> {
    let (kind, item) = (t.series.kind.as_str(), &*t.series.item);
    let labels = serde_json::to_value(&t.labels).unwrap_or_default();
    let annotations = serde_json::to_value(&t.annotations).unwrap_or_default();
    match t.state {
        AlertState::Resolved => {
            db.execute("DELETE FROM alert WHERE fingerprint = $1", &[&t.fingerprint]).await?;
        }
        state => {
            db.execute(
                "INSERT INTO alert (fingerprint, rule, severity, state, labels, annotations, device_id, series_kind,
                                    series_item, active_since, firing_since, flapping, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
                 ON CONFLICT (fingerprint) DO UPDATE SET
                    state = EXCLUDED.state, labels = EXCLUDED.labels, annotations = EXCLUDED.annotations,
                    firing_since = EXCLUDED.firing_since, flapping = EXCLUDED.flapping, updated_at = EXCLUDED.updated_at",
                &[
                    &t.fingerprint,
                    &t.rule,
                    &t.severity.as_str(),
                    &state.as_str(),
                    &labels,
                    &annotations,
                    &t.device_id,
                    &kind,
                    &item,
                    &t.active_since,
                    &t.firing_since,
                    &t.flapping,
                    &t.at,
                ],
            )
            .await?;
        }
    }
    db.execute(
        "INSERT INTO alert_event (at, fingerprint, rule, change, state, severity, labels, annotations)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        &[
            &t.at,
            &t.fingerprint,
            &t.rule,
            &change_name(t.change),
            &t.state.as_str(),
            &t.severity.as_str(),
            &labels,
            &annotations,
        ],
    )
    .await?;
    Ok(())
}

/// Records a change of the reason an alert is suppressed (history + current row).
pub async fn record_suppression(
    db: &impl GenericClient,
    fingerprint: &str,
    suppression: Option<&Suppression>,
    at: DateTime<Utc>,
) -> DbResult<()> {
    let value = suppression.map(|s| serde_json::to_value(s).unwrap_or_default());
    let n = db
        .execute(
            "UPDATE alert SET suppressed_by = $2, updated_at = $3 WHERE fingerprint = $1",
            &[&fingerprint, &value, &at],
        )
        .await?;
    if n > 0 {
        let (change, detail) = match suppression {
            Some(s) => ("suppressed", Some(s.to_string())),
            None => ("unsuppressed", None),
        };
        db.execute(
            "INSERT INTO alert_event (at, fingerprint, rule, change, state, severity, labels, annotations, detail)
             SELECT $2, fingerprint, rule, $3, state, severity, labels, annotations, $4 FROM alert WHERE fingerprint = $1",
            &[&fingerprint, &at, &change, &detail],
        )
        .await?;
    }
    Ok(())
}

pub async fn save_group(db: &impl GenericClient, g: &Group) -> DbResult<()> {
    save_group_json(db, &g.key, &serde_json::to_value(g).unwrap_or_default()).await
}

/// Saves a group already serialized (the service hashes the JSON to skip unchanged groups).
pub async fn save_group_json(db: &impl GenericClient, key: &str, state: &serde_json::Value) -> DbResult<()> {
    db.execute(
        "INSERT INTO alert_group (key, state, updated_at) VALUES ($1, $2, now())
         ON CONFLICT (key) DO UPDATE SET state = EXCLUDED.state, updated_at = now()",
        &[&key, state],
    )
    .await?;
    Ok(())
}

pub async fn delete_groups(db: &impl GenericClient, keys: &[String]) -> DbResult<()> {
    if !keys.is_empty() {
        db.execute("DELETE FROM alert_group WHERE key = ANY($1)", &[&keys]).await?;
    }
    Ok(())
}

pub async fn load_groups(db: &impl GenericClient) -> DbResult<Vec<Group>> {
    let rows = db.query("SELECT state FROM alert_group", &[]).await?;
    Ok(rows.iter().filter_map(|r| serde_json::from_value(r.get::<_, serde_json::Value>(0)).ok()).collect())
}

/// An alert as stored: what the API lists and what a restart restores.
#[derive(Debug, Clone, Serialize)]
pub struct StoredAlert {
    pub fingerprint: String,
    pub rule: String,
    pub severity: String,
    pub state: String,
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub device_id: Option<i64>,
    pub series_kind: String,
    pub series_item: String,
    pub active_since: DateTime<Utc>,
    pub firing_since: Option<DateTime<Utc>>,
    pub flapping: bool,
    pub suppressed_by: Option<Suppression>,
    /// Shown as "suppressed by spine1" etc.
    pub suppressed_reason: Option<String>,
    pub acknowledged_by: Option<String>,
    pub ack_comment: Option<String>,
    pub ack_at: Option<DateTime<Utc>>,
    pub ack_until: Option<DateTime<Utc>>,
}

/// A JSON column this module wrote (labels, annotations); unreadable reads as empty.
fn json_column<T: serde::de::DeserializeOwned + Default>(r: &tokio_postgres::Row, i: usize) -> T {
    serde_json::from_value(r.get(i)).unwrap_or_default()
}

pub async fn active_alerts(db: &impl GenericClient) -> DbResult<Vec<StoredAlert>> {
    let rows = db
        .query(
            "SELECT fingerprint, rule, severity, state, labels, annotations, device_id, series_kind, series_item,
                    active_since, firing_since, flapping, suppressed_by, ack_by, ack_comment, ack_at, ack_until
             FROM alert ORDER BY firing_since DESC NULLS LAST, active_since DESC",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let suppressed_by: Option<Suppression> =
                r.get::<_, Option<serde_json::Value>>(12).and_then(|v| serde_json::from_value(v).ok());
            StoredAlert {
                fingerprint: r.get(0),
                rule: r.get(1),
                severity: r.get(2),
                state: r.get(3),
                labels: json_column(r, 4),
                annotations: json_column(r, 5),
                device_id: r.get(6),
                series_kind: r.get(7),
                series_item: r.get(8),
                active_since: r.get(9),
                firing_since: r.get(10),
                flapping: r.get(11),
                suppressed_reason: suppressed_by.as_ref().map(ToString::to_string),
                suppressed_by,
                acknowledged_by: r.get(13),
                ack_comment: r.get(14),
                ack_at: r.get(15),
                ack_until: r.get(16),
            }
        })
        .collect())
}

/// One history event.
#[derive(Debug, Clone, Serialize)]
pub struct AlertEvent {
    pub at: DateTime<Utc>,
    pub fingerprint: String,
    pub rule: String,
    pub change: String,
    pub state: String,
    pub severity: String,
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub detail: Option<String>,
}

/// History, newest first: of one alert, or of all since a time.
pub async fn history(
    db: &impl GenericClient,
    fingerprint: Option<&str>,
    since: DateTime<Utc>,
    limit: i64,
) -> DbResult<Vec<AlertEvent>> {
    let rows = db
        .query(
            "SELECT at, fingerprint, rule, change, state, severity, labels, annotations, detail FROM alert_event
             WHERE ($1::text IS NULL OR fingerprint = $1) AND at >= $2 ORDER BY at DESC, id DESC LIMIT $3",
            &[&fingerprint, &since, &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| AlertEvent {
            at: r.get(0),
            fingerprint: r.get(1),
            rule: r.get(2),
            change: r.get(3),
            state: r.get(4),
            severity: r.get(5),
            labels: json_column(r, 6),
            annotations: json_column(r, 7),
            detail: r.get(8),
        })
        .collect())
}

/// Acknowledges (or, with `by = None`, un-acknowledges) an active alert. Returns false when no
/// such alert is active.
pub async fn set_ack(
    db: &impl GenericClient,
    fingerprint: &str,
    by: Option<&str>,
    comment: Option<&str>,
    until: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> DbResult<bool> {
    let n = db
        .execute(
            "UPDATE alert SET ack_by = $2, ack_comment = $3, ack_until = $4,
                              ack_at = CASE WHEN $2::text IS NULL THEN NULL ELSE $5::timestamptz END, updated_at = $5
             WHERE fingerprint = $1",
            &[&fingerprint, &by, &comment, &until, &at],
        )
        .await?;
    if n > 0 {
        let change = if by.is_some() { "acknowledged" } else { "unacknowledged" };
        let detail = by.map(|b| format!("{b}: {}", comment.unwrap_or("")));
        db.execute(
            "INSERT INTO alert_event (at, fingerprint, rule, change, state, severity, labels, annotations, detail)
             SELECT $2, fingerprint, rule, $3, state, severity, labels, annotations, $4 FROM alert WHERE fingerprint = $1",
            &[&fingerprint, &at, &change, &detail],
        )
        .await?;
    }
    Ok(n > 0)
}

/// A silence as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SilenceRow {
    pub id: i64,
    pub matchers: Vec<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub created_by: String,
    pub comment: String,
    pub created_at: DateTime<Utc>,
}

impl SilenceRow {
    pub fn compile(&self) -> Result<Silence, String> {
        let matchers = self.matchers.iter().map(|m| Matcher::parse(m)).collect::<Result<Vec<_>, _>>()?;
        Ok(Silence {
            id: self.id,
            matchers,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            created_by: self.created_by.clone(),
            comment: self.comment.clone(),
        })
    }
}

/// Silences that have not ended by `since`, oldest first.
pub async fn silences(db: &impl GenericClient, since: DateTime<Utc>) -> DbResult<Vec<SilenceRow>> {
    let rows = db
        .query(
            "SELECT id, matchers, starts_at, ends_at, created_by, comment, created_at FROM silence
             WHERE ends_at > $1 ORDER BY id",
            &[&since],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| SilenceRow {
            id: r.get(0),
            matchers: r.get(1),
            starts_at: r.get(2),
            ends_at: r.get(3),
            created_by: r.get(4),
            comment: r.get(5),
            created_at: r.get(6),
        })
        .collect())
}

/// Creates a silence after checking its matchers. Returns its id.
pub async fn create_silence(
    db: &impl GenericClient,
    matchers: &[String],
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    created_by: &str,
    comment: &str,
) -> Result<i64, String> {
    if matchers.is_empty() {
        return Err("a silence needs at least one matcher".into());
    }
    for m in matchers {
        Matcher::parse(m)?;
    }
    if ends_at <= starts_at {
        return Err("a silence must end after it starts".into());
    }
    let row = db
        .query_one(
            "INSERT INTO silence (matchers, starts_at, ends_at, created_by, comment) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[&matchers, &starts_at, &ends_at, &created_by, &comment],
        )
        .await
        .map_err(|e| collector::db::error_text(&e))?;
    Ok(row.get(0))
}

/// Ends a silence now. Returns false when it does not exist or has already ended.
pub async fn expire_silence(db: &impl GenericClient, id: i64, now: DateTime<Utc>) -> DbResult<bool> {
    let n = db
        .execute(
            "UPDATE silence SET ends_at = greatest($2, starts_at + interval '1 microsecond') WHERE id = $1 AND ends_at > $2",
            &[&id, &now],
        )
        .await?;
    Ok(n > 0)
}

/// Enqueues notifications in the caller's transaction.
pub async fn enqueue_all(db: &impl GenericClient, ns: &[Notification]) -> Result<(), String> {
    futures_util::future::try_join_all(ns.iter().map(|n| crate::outbox::enqueue(db, n)))
        .await
        .map_err(|e| e.to_string())?;
    Ok(())
}

/// Severity from its stored name (rows are written by this module, so unknown means info).
pub fn severity(s: &str) -> Severity {
    s.parse().unwrap_or(Severity::Info)
}
