//! The intent API: the intents being checked, each one's verdict per device (pass, fail, unknown,
//! with what was observed against what was expected), and the history of verdict changes. The
//! alert service evaluates intents on every poll; this module only reads what it recorded.

use crate::http::{ApiError, ApiResult, db};
use crate::runtime::AppState;
use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use rules::intent::store::{self, Event, ResultFilter, StoredResult};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/intents", get(list_intents))
        .route("/api/v1/intents/results", get(list_results))
        .route("/api/v1/intents/history", get(history))
        .route("/api/v1/intents/{name}", get(get_intent))
}

fn db_error(e: tokio_postgres::Error) -> ApiError {
    ApiError::internal(collector::db::error_text(&e))
}

#[derive(Serialize)]
struct IntentView {
    name: String,
    description: String,
    scope: rules::rule::Scope,
    /// The checks as written (`bgp_established >= 2`).
    require: Vec<String>,
    /// Where it is defined (`builtin:7`, `/etc/netwarden/intents.yaml:3`).
    defined_at: String,
    /// Devices per verdict.
    devices: BTreeMap<String, usize>,
}

fn views(s: &AppState, results: &[StoredResult]) -> Vec<IntentView> {
    s.alerts
        .intents()
        .iter()
        .map(|i| {
            let mut devices: BTreeMap<String, usize> =
                ["pass", "fail", "unknown"].into_iter().map(|v| (v.to_string(), 0)).collect();
            for r in results.iter().filter(|r| r.intent == i.name) {
                *devices.entry(r.verdict.clone()).or_default() += 1;
            }
            IntentView {
                name: i.name.clone(),
                description: i.description.clone(),
                scope: i.scope.clone(),
                require: i.requirements(),
                defined_at: format!("{}:{}", i.file, i.line),
                devices,
            }
        })
        .collect()
}

/// Every intent with how many devices pass, fail or are unknown.
async fn list_intents(State(s): State<AppState>) -> ApiResult<Json<Vec<IntentView>>> {
    let c = db(&s).await?;
    let results = store::results(&**c, &ResultFilter::default()).await.map_err(db_error)?;
    Ok(Json(views(&s, &results)))
}

#[derive(Serialize)]
struct IntentDetail {
    #[serde(flatten)]
    intent: IntentView,
    results: Vec<StoredResult>,
}

/// One intent and its verdict on every device it scopes, failing devices first.
async fn get_intent(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<IntentDetail>> {
    if !s.alerts.intents().iter().any(|i| i.name == name) {
        return Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no intent named {name:?}")));
    }
    let c = db(&s).await?;
    let filter = ResultFilter { intent: Some(name.clone()), ..Default::default() };
    let mut results = store::results(&**c, &filter).await.map_err(db_error)?;
    let intent = views(&s, &results).into_iter().find(|v| v.name == name).expect("checked above");
    results.sort_by_key(|r| (r.verdict != "fail", r.verdict != "unknown", r.device.clone()));
    Ok(Json(IntentDetail { intent, results }))
}

#[derive(Deserialize)]
struct ResultsQuery {
    intent: Option<String>,
    device: Option<String>,
    /// pass, fail or unknown.
    verdict: Option<String>,
}

/// Verdicts per intent and device, filtered.
async fn list_results(State(s): State<AppState>, Query(q): Query<ResultsQuery>) -> ApiResult<Json<Vec<StoredResult>>> {
    if let Some(v) = &q.verdict
        && rules::intent::Verdict::parse(v).is_none()
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_verdict",
            format!("verdict {v:?}: expected pass, fail or unknown"),
        ));
    }
    let c = db(&s).await?;
    let filter = ResultFilter { intent: q.intent, device: q.device, verdict: q.verdict };
    Ok(Json(store::results(&**c, &filter).await.map_err(db_error)?))
}

#[derive(Deserialize)]
struct HistoryQuery {
    intent: Option<String>,
    device: Option<String>,
    limit: Option<i64>,
}

/// Verdict changes, newest first (default 200, at most 5,000).
async fn history(State(s): State<AppState>, Query(q): Query<HistoryQuery>) -> ApiResult<Json<Vec<Event>>> {
    let c = db(&s).await?;
    let limit = q.limit.unwrap_or(200).clamp(1, 5_000);
    let events = store::history(&**c, q.intent.as_deref(), q.device.as_deref(), limit).await.map_err(db_error)?;
    Ok(Json(events))
}
