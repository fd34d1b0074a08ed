//! The alert API: active alerts, their history, acknowledgements, silences and the notification
//! outbox (every delivery attempt). Changes to alerts go through the running alert service, which
//! records them and tells the receivers; silences are written here and the service is told.

use crate::http::{ApiError, ApiResult, db, parse_time};
use crate::runtime::AppState;
use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use rules::outbox::{OutboxEntry, OutboxQuery, OutboxState};
use rules::service::{Ack, CommandError};
use rules::store::{self, AlertEvent, SilenceRow, StoredAlert};
use serde::Deserialize;
use std::sync::atomic::Ordering;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/alerts", get(list_alerts))
        .route("/api/v1/alerts/summary", get(summary))
        .route("/api/v1/alerts/history", get(all_history))
        .route("/api/v1/alerts/{fingerprint}", get(get_alert))
        .route("/api/v1/alerts/{fingerprint}/history", get(alert_history))
        .route("/api/v1/alerts/{fingerprint}/ack", post(acknowledge).delete(unacknowledge))
        .route("/api/v1/silences", get(list_silences).post(create_silence))
        .route("/api/v1/silences/{id}", get(get_silence).delete(expire_silence))
        .route("/api/v1/notifications", get(list_notifications))
        .route("/api/v1/notifications/{id}", get(get_notification))
}

fn db_error(e: tokio_postgres::Error) -> ApiError {
    ApiError::internal(collector::db::error_text(&e))
}

fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

#[derive(Deserialize)]
struct AlertsQuery {
    state: Option<String>,
    severity: Option<String>,
    device: Option<String>,
    /// `true`: only suppressed alerts; `false`: only alerts that page.
    suppressed: Option<bool>,
    acknowledged: Option<bool>,
}

impl AlertsQuery {
    fn keeps(&self, a: &StoredAlert) -> bool {
        self.state.as_deref().is_none_or(|s| a.state == s)
            && self.severity.as_deref().is_none_or(|s| a.severity == s)
            && self.device.as_deref().is_none_or(|d| a.labels.get("device").is_some_and(|v| v == d))
            && self.suppressed.is_none_or(|s| a.suppressed_by.is_some() == s)
            && self.acknowledged.is_none_or(|k| a.acknowledged_by.is_some() == k)
    }
}

/// Active (pending and firing) alerts, newest firing first.
async fn list_alerts(State(s): State<AppState>, Query(q): Query<AlertsQuery>) -> ApiResult<Json<Vec<StoredAlert>>> {
    let c = db(&s).await?;
    let all = store::active_alerts(&**c).await.map_err(db_error)?;
    Ok(Json(all.into_iter().filter(|a| q.keeps(a)).collect()))
}

/// Counts for a NOC header: firing by severity, pending, suppressed, acknowledged.
async fn summary(State(s): State<AppState>) -> ApiResult<Json<serde_json::Value>> {
    let c = db(&s).await?;
    let all = store::active_alerts(&**c).await.map_err(db_error)?;
    let mut by_severity = std::collections::BTreeMap::<String, u64>::new();
    for a in all.iter().filter(|a| a.state == "firing") {
        *by_severity.entry(a.severity.clone()).or_default() += 1;
    }
    let count = |f: &dyn Fn(&StoredAlert) -> bool| all.iter().filter(|a| f(a)).count();
    let st = &s.alerts.stats;
    Ok(Json(serde_json::json!({
        "firing": count(&|a| a.state == "firing"),
        "pending": count(&|a| a.state == "pending"),
        "suppressed": count(&|a| a.suppressed_by.is_some()),
        "acknowledged": count(&|a| a.acknowledged_by.is_some()),
        "firing_by_severity": by_severity,
        "service": {
            "observations": st.observations.load(Ordering::Relaxed),
            "transitions": st.transitions.load(Ordering::Relaxed),
            "notifications_enqueued": st.notifications.load(Ordering::Relaxed),
            "write_failures": st.write_failures.load(Ordering::Relaxed),
        },
    })))
}

async fn get_alert(State(s): State<AppState>, Path(fp): Path<String>) -> ApiResult<Json<StoredAlert>> {
    let c = db(&s).await?;
    let all = store::active_alerts(&**c).await.map_err(db_error)?;
    all.into_iter()
        .find(|a| a.fingerprint == fp)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no active alert with fingerprint {fp}")))
}

#[derive(Deserialize)]
struct HistoryQuery {
    since: Option<String>,
    limit: Option<i64>,
}

async fn history(s: &AppState, fp: Option<&str>, q: &HistoryQuery) -> ApiResult<Json<Vec<AlertEvent>>> {
    let c = db(s).await?;
    let since = parse_time("since", q.since.as_deref().unwrap_or("30d"))?;
    let limit = q.limit.unwrap_or(1000).clamp(1, 100_000);
    Ok(Json(store::history(&**c, fp, since, limit).await.map_err(db_error)?))
}

/// Every alert event (newest first; default: the last 30 days).
async fn all_history(State(s): State<AppState>, Query(q): Query<HistoryQuery>) -> ApiResult<Json<Vec<AlertEvent>>> {
    history(&s, None, &q).await
}

/// One alert's events, also after it resolved.
async fn alert_history(
    State(s): State<AppState>,
    Path(fp): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> ApiResult<Json<Vec<AlertEvent>>> {
    history(&s, Some(&fp), &q).await
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AckBody {
    by: String,
    #[serde(default)]
    comment: Option<String>,
    /// RFC 3339 time or a duration from now (`2h`); absent: until the alert resolves.
    #[serde(default)]
    until: Option<String>,
}

fn command_error(e: CommandError) -> ApiError {
    match e {
        CommandError::NotFound(_) => ApiError::not_found(e.to_string()),
        CommandError::Database(_) => ApiError::unavailable(e),
        CommandError::Stopped => ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "alert_service_stopped", e.to_string()),
    }
}

/// A time in the future: RFC 3339 or a duration from now.
fn parse_future(field: &'static str, v: &str) -> ApiResult<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&Utc));
    }
    let d = humantime::parse_duration(v).map_err(|_| {
        bad_request(
            "bad_time",
            format!("{field}={v:?}: use RFC 3339 (2026-11-22T10:00:00Z) or a duration from now (2h)"),
        )
    })?;
    Ok(Utc::now() + chrono::Duration::from_std(d).unwrap_or_default())
}

/// Acknowledges an alert: escalation and repeats stop, receivers that were paged are told.
async fn acknowledge(
    State(s): State<AppState>,
    Path(fp): Path<String>,
    Json(body): Json<AckBody>,
) -> ApiResult<StatusCode> {
    if body.by.trim().is_empty() {
        return Err(bad_request("bad_ack", "an acknowledgement needs `by` (who takes it)"));
    }
    let until = body.until.as_deref().map(|u| parse_future("until", u)).transpose()?;
    if until.is_some_and(|u| u <= Utc::now()) {
        return Err(bad_request("bad_ack", "`until` is in the past"));
    }
    let ack = Ack { by: body.by, comment: body.comment, until };
    s.alerts.acknowledge(&fp, ack).await.map_err(command_error)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn unacknowledge(State(s): State<AppState>, Path(fp): Path<String>) -> ApiResult<StatusCode> {
    s.alerts.unacknowledge(&fp).await.map_err(command_error)?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct SilencesQuery {
    /// Include silences that ended after this time (default: only those not ended yet).
    since: Option<String>,
}

async fn list_silences(State(s): State<AppState>, Query(q): Query<SilencesQuery>) -> ApiResult<Json<Vec<SilenceRow>>> {
    let since = match q.since.as_deref() {
        Some(v) => parse_time("since", v)?,
        None => Utc::now(),
    };
    let c = db(&s).await?;
    Ok(Json(store::silences(&**c, since).await.map_err(db_error)?))
}

async fn get_silence(State(s): State<AppState>, Path(id): Path<i64>) -> ApiResult<Json<SilenceRow>> {
    let c = db(&s).await?;
    let all = store::silences(&**c, DateTime::<Utc>::MIN_UTC).await.map_err(db_error)?;
    all.into_iter().find(|r| r.id == id).map(Json).ok_or_else(|| ApiError::not_found(format!("no silence {id}")))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SilenceBody {
    /// Alertmanager-style matchers: `device="leaf1"`, `alertname=~"Bgp.*"`.
    matchers: Vec<String>,
    #[serde(default)]
    starts_at: Option<String>,
    /// RFC 3339 time or a duration from the start (`2h`).
    ends_at: Option<String>,
    #[serde(default)]
    duration: Option<String>,
    created_by: String,
    comment: String,
}

impl SilenceBody {
    fn window(&self) -> ApiResult<(DateTime<Utc>, DateTime<Utc>)> {
        let starts = match self.starts_at.as_deref() {
            Some(v) => DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| bad_request("bad_silence", format!("starts_at={v:?}: {e}")))?,
            None => Utc::now(),
        };
        let ends = match (self.ends_at.as_deref(), self.duration.as_deref()) {
            (Some(v), None) => DateTime::parse_from_rfc3339(v)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| bad_request("bad_silence", format!("ends_at={v:?}: {e}")))?,
            (None, Some(d)) => {
                let d = humantime::parse_duration(d)
                    .map_err(|e| bad_request("bad_silence", format!("duration={d:?}: {e} (use e.g. 2h)")))?;
                starts + chrono::Duration::from_std(d).unwrap_or_default()
            }
            _ => return Err(bad_request("bad_silence", "give exactly one of ends_at and duration")),
        };
        Ok((starts, ends))
    }
}

/// Creates a silence; the alert service applies it at once.
async fn create_silence(
    State(s): State<AppState>,
    Json(body): Json<SilenceBody>,
) -> ApiResult<(StatusCode, Json<serde_json::Value>)> {
    if body.created_by.trim().is_empty() || body.comment.trim().is_empty() {
        return Err(bad_request("bad_silence", "a silence needs created_by and a comment"));
    }
    let (starts, ends) = body.window()?;
    let c = db(&s).await?;
    let id = store::create_silence(&**c, &body.matchers, starts, ends, &body.created_by, &body.comment)
        .await
        .map_err(|e| bad_request("bad_silence", e))?;
    drop(c);
    s.alerts.reload_silences().await;
    Ok((StatusCode::CREATED, Json(serde_json::json!({"id": id}))))
}

/// Ends a silence now; alerts it held that are still firing are notified.
async fn expire_silence(State(s): State<AppState>, Path(id): Path<i64>) -> ApiResult<StatusCode> {
    let c = db(&s).await?;
    if !store::expire_silence(&**c, id, Utc::now()).await.map_err(db_error)? {
        return Err(ApiError::not_found(format!("no active silence {id}")));
    }
    drop(c);
    s.alerts.reload_silences().await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct NotificationsQuery {
    state: Option<String>,
    receiver: Option<String>,
    limit: Option<i64>,
}

/// Outbox rows, newest first, each with every delivery attempt.
async fn list_notifications(
    State(s): State<AppState>,
    Query(q): Query<NotificationsQuery>,
) -> ApiResult<Json<Vec<OutboxEntry>>> {
    let state = match q.state.as_deref() {
        Some(v) => Some(
            v.parse::<OutboxState>()
                .map_err(|_| bad_request("bad_state", format!("state={v:?}: use pending, delivered or failed")))?,
        ),
        None => None,
    };
    let query = OutboxQuery { state, receiver: q.receiver, limit: q.limit.unwrap_or(100) };
    let c = db(&s).await?;
    Ok(Json(rules::outbox::list(&**c, &query).await.map_err(ApiError::internal)?))
}

async fn get_notification(State(s): State<AppState>, Path(id): Path<i64>) -> ApiResult<Json<OutboxEntry>> {
    let c = db(&s).await?;
    rules::outbox::get(&**c, id)
        .await
        .map_err(ApiError::internal)?
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("no notification {id}")))
}
