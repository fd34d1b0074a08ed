//! The remediation API: the fixes the planner proposed for failing intents (what, where, why, the
//! CLI and its rollback, the risk and whether the policy needs an approval) and each one's audit
//! trail. The planner writes them; this module only reads.

use crate::http::{ApiError, ApiResult, db};
use crate::runtime::AppState;
use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::get;
use remediation::store::{self, Event, Filter, StoredProposal};
use serde::{Deserialize, Serialize};

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/v1/remediations", get(list)).route("/api/v1/remediations/{id}", get(get_one))
}

fn db_error(e: tokio_postgres::Error) -> ApiError {
    ApiError::internal(collector::db::error_text(&e))
}

#[derive(Deserialize)]
struct ListQuery {
    /// Comma-separated statuses; `open` = proposed, approved, applying, applied.
    status: Option<String>,
    device: Option<String>,
    intent: Option<String>,
    limit: Option<i64>,
}

/// Proposals, newest first (default 100, at most 5,000).
async fn list(State(s): State<AppState>, Query(q): Query<ListQuery>) -> ApiResult<Json<Vec<StoredProposal>>> {
    let statuses: Vec<String> =
        q.status.iter().flat_map(|s| s.split(',')).map(str::trim).filter(|s| !s.is_empty()).map(String::from).collect();
    if let Some(bad) = statuses.iter().find(|s| *s != "open" && !store::STATUSES.contains(&s.as_str())) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_status",
            format!("status {bad:?}: expected open or one of {}", store::STATUSES.join(", ")),
        ));
    }
    let c = db(&s).await?;
    let filter = Filter { statuses, device: q.device, intent: q.intent, limit: q.limit.unwrap_or(100).clamp(1, 5_000) };
    Ok(Json(store::list(&**c, &filter).await.map_err(db_error)?))
}

#[derive(Serialize)]
struct Detail {
    #[serde(flatten)]
    proposal: StoredProposal,
    events: Vec<Event>,
}

/// One proposal with its audit trail.
async fn get_one(State(s): State<AppState>, Path(id): Path<String>) -> ApiResult<Json<Detail>> {
    let Ok(id) = id.parse::<i64>() else {
        return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_id", format!("{id:?} is not a proposal id")));
    };
    let c = db(&s).await?;
    match store::get(&**c, id).await.map_err(db_error)? {
        Some((proposal, events)) => Ok(Json(Detail { proposal, events })),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no remediation proposal {id}"))),
    }
}
