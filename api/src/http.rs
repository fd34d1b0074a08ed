//! The HTTP API. Errors leave in one shape: `{"error": {"code", "message"}}`. Device secrets
//! never leave: responses carry `DeviceView`, which has none.

use crate::runtime::AppState;
use axum::Json;
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use collector::inventory::{self, DeviceView};
use collector::store::query;
use serde::{Deserialize, Serialize};
use std::sync::atomic::Ordering;

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics))
        .route("/api/v1/status", get(status))
        .route("/api/v1/cluster", get(cluster))
        .route("/api/v1/devices", get(list_devices).post(create_device))
        .route("/api/v1/devices/{name}", get(get_device).put(update_device).delete(delete_device))
        .route("/api/v1/devices/{name}/interfaces", get(device_interfaces))
        .route("/api/v1/devices/{name}/interfaces/{ifname}/samples", get(interface_samples))
        .route("/api/v1/inventory/import", axum::routing::post(import_inventory))
        .route("/api/v1/bgp/peers", get(bgp_peers))
        .route("/api/v1/ospf/neighbors", get(ospf_neighbors))
        .route("/api/v1/ospf/interfaces", get(ospf_interfaces))
        .route("/api/v1/neighbors", get(link_neighbors))
        .route("/api/v1/changes", get(changes))
        .route("/api/v1/devices/{name}/state", get(device_state_as_of))
        .route("/api/v1/devices/{name}/outages", get(device_outages))
        .route("/api/v1/devices/{name}/configs", get(config_history))
        .route("/api/v1/devices/{name}/configs/diff", get(config_diff))
        .route("/api/v1/devices/{name}/configs/backup", axum::routing::post(config_backup))
        .route("/api/v1/config-events", get(config_events))
        .route("/api/v1/traps", get(traps))
        .route("/api/v1/topology", get(topology_graph))
        .route("/api/v1/topology/full", get(topology_full))
        .route("/api/v1/topology/diff", get(topology_diff))
        .route("/api/v1/topology/path", get(topology_path))
        .route("/api/v1/topology/impact", get(topology_impact))
        .route("/api/v1/topology/spof", get(topology_spof))
        .route("/api/v1/topology/discovered/{chassis_id}/adopt", axum::routing::post(adopt_discovered))
        .merge(crate::http_alerts::routes())
        .merge(crate::http_intents::routes())
        .merge(crate::http_remediation::routes())
        .merge(crate::noc::routes())
        .with_state(state)
}

/// An API error with a stable code.
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError { status, code, message: message.into() }
    }
    pub(crate) fn not_found(what: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", what)
    }
    pub(crate) fn internal(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "API internal error");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string())
    }
    pub(crate) fn unavailable(e: impl std::fmt::Display) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "database_unavailable", e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(serde_json::json!({"error": {"code": self.code, "message": self.message}}))).into_response()
    }
}

pub(crate) type ApiResult<T> = Result<T, ApiError>;

pub(crate) async fn db(state: &AppState) -> ApiResult<deadpool_postgres::Object> {
    state.pool.get().await.map_err(ApiError::unavailable)
}

async fn health(State(s): State<AppState>) -> Response {
    let ok = match s.pool.get().await {
        Ok(c) => c.query_one("SELECT 1", &[]).await.is_ok(),
        Err(_) => false,
    };
    let body =
        serde_json::json!({"status": if ok {"ok"} else {"degraded"}, "database": ok, "storage_backend": s.backend});
    (if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, Json(body)).into_response()
}

async fn metrics(State(s): State<AppState>) -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.metrics.render())
}

async fn status(State(s): State<AppState>) -> Json<serde_json::Value> {
    let st = &s.scheduler_stats;
    let w = s.writer.stats();
    Json(serde_json::json!({
        "polls": {
            "ok": st.polls_ok.load(Ordering::Relaxed),
            "failed": st.polls_failed.load(Ordering::Relaxed),
            "skipped": st.polls_skipped.load(Ordering::Relaxed),
            "state_write_errors": st.db_errors.load(Ordering::Relaxed),
        },
        "samples": {
            "written": w.rows_written.load(Ordering::Relaxed),
            "dropped": w.rows_dropped.load(Ordering::Relaxed),
            "copies": w.copies.load(Ordering::Relaxed),
            "copy_errors": w.copy_errors.load(Ordering::Relaxed),
        },
        "storage_backend": s.backend,
    }))
}

/// Scale-out: the instances sharing this database, their heartbeats and how many devices each
/// holds (empty when no instance runs with `[cluster] enabled`).
async fn cluster(State(s): State<AppState>) -> ApiResult<Json<collector::store::lease::ClusterView>> {
    let c = db(&s).await?;
    let view = collector::store::lease::cluster_view(&**c)
        .await
        .map_err(|e| ApiError::internal(format!("reading the cluster tables: {}", collector::db::error_text(&e))))?;
    Ok(Json(view))
}

#[derive(Serialize)]
struct DeviceWithState {
    #[serde(flatten)]
    device: DeviceView,
    state: Option<query::DeviceState>,
}

async fn list_devices(State(s): State<AppState>) -> ApiResult<Json<Vec<DeviceWithState>>> {
    let c = db(&s).await?;
    let devices = inventory::store::list_views(&**c).await.map_err(ApiError::internal)?;
    let states = query::device_states(&**c).await.map_err(ApiError::internal)?;
    Ok(Json(
        devices
            .iter()
            .map(|d| DeviceWithState {
                state: states.iter().find(|st| Some(st.device_id) == d.id).cloned(),
                device: d.clone(),
            })
            .collect(),
    ))
}

async fn find(s: &AppState, c: &deadpool_postgres::Object, name: &str) -> ApiResult<inventory::Device> {
    inventory::store::get_by_name(&***c, &s.secrets, name)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no device named {name:?}")))
}

async fn get_device(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<Json<DeviceWithState>> {
    let c = db(&s).await?;
    let d = find(&s, &c, &name).await?;
    let state = query::device_state(&**c, d.id.unwrap_or_default()).await.map_err(ApiError::internal)?;
    Ok(Json(DeviceWithState { device: DeviceView::from(&d), state }))
}

/// Parses one device given as JSON with the inventory file's schema and validation.
fn parse_device(body: &serde_json::Value) -> ApiResult<inventory::Device> {
    let doc = serde_json::json!({ "devices": [body] }).to_string();
    let mut devices = inventory::parse_inventory("request body", &doc, Some(inventory::Format::Yaml))
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_device", e.to_string()))?;
    devices.pop().ok_or_else(|| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_device", "empty device"))
}

async fn create_device(
    State(s): State<AppState>,
    Json(body): Json<serde_json::Value>,
) -> ApiResult<(StatusCode, Json<DeviceView>)> {
    let d = parse_device(&body)?;
    let c = db(&s).await?;
    if inventory::store::get_by_name(&**c, &s.secrets, &d.name).await.map_err(ApiError::internal)?.is_some() {
        return Err(ApiError::new(StatusCode::CONFLICT, "exists", format!("device {:?} already exists", d.name)));
    }
    let stored = inventory::store::upsert_one(&**c, &s.secrets, &d).await.map_err(ApiError::internal)?;
    s.inventory_changed.notify_one();
    Ok((StatusCode::CREATED, Json(DeviceView::from(&stored))))
}

async fn update_device(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Json(body): Json<serde_json::Value>,
) -> ApiResult<Json<DeviceView>> {
    let d = parse_device(&body)?;
    if d.name != name {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "name_mismatch",
            "the body's name differs from the path",
        ));
    }
    let c = db(&s).await?;
    find(&s, &c, &name).await?;
    let stored = inventory::store::upsert_one(&**c, &s.secrets, &d).await.map_err(ApiError::internal)?;
    s.inventory_changed.notify_one();
    Ok(Json(DeviceView::from(&stored)))
}

async fn delete_device(State(s): State<AppState>, Path(name): Path<String>) -> ApiResult<StatusCode> {
    let c = db(&s).await?;
    if inventory::store::delete_by_name(&**c, &name).await.map_err(ApiError::internal)? {
        s.inventory_changed.notify_one();
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("no device named {name:?}")))
    }
}

async fn device_interfaces(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<query::InterfaceState>>> {
    let c = db(&s).await?;
    let d = find(&s, &c, &name).await?;
    Ok(Json(query::interfaces(&**c, d.id.unwrap_or_default()).await.map_err(ApiError::internal)?))
}

#[derive(Deserialize)]
struct SamplesQuery {
    /// Look-back window, e.g. 15m, 1h (default 1h).
    since: Option<String>,
}

async fn interface_samples(
    State(s): State<AppState>,
    Path((name, ifname)): Path<(String, String)>,
    Query(q): Query<SamplesQuery>,
) -> ApiResult<Json<Vec<query::InterfaceSample>>> {
    let window = match q.since.as_deref() {
        None => std::time::Duration::from_secs(3600),
        Some(w) => humantime::parse_duration(w)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "bad_since", format!("since={w:?}: {e}")))?,
    };
    let c = db(&s).await?;
    let d = find(&s, &c, &name).await?;
    let ifs = query::interfaces(&**c, d.id.unwrap_or_default()).await.map_err(ApiError::internal)?;
    let iface = ifs
        .iter()
        .find(|i| i.name == ifname)
        .ok_or_else(|| ApiError::not_found(format!("device {name:?} has no interface {ifname:?}")))?;
    let since = chrono::Utc::now() - chrono::Duration::from_std(window).unwrap_or(chrono::Duration::hours(1));
    Ok(Json(query::interface_samples(&**c, iface.id, since).await.map_err(ApiError::internal)?))
}

#[derive(Deserialize)]
struct ImportQuery {
    format: Option<String>,
    #[serde(default)]
    replace: bool,
}

async fn import_inventory(
    State(s): State<AppState>,
    Query(q): Query<ImportQuery>,
    body: String,
) -> ApiResult<Json<serde_json::Value>> {
    let format = match q.format.as_deref() {
        None | Some("yaml") | Some("yml") => inventory::Format::Yaml,
        Some("csv") => inventory::Format::Csv,
        Some(other) => {
            return Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "bad_format",
                format!("format {other:?}: use yaml or csv"),
            ));
        }
    };
    let devices = inventory::parse_inventory("request body", &body, Some(format))
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_inventory", e.to_string()))?;
    let mut c = db(&s).await?;
    let mode = if q.replace { inventory::store::ImportMode::Replace } else { inventory::store::ImportMode::Merge };
    let report = inventory::store::import(&mut **c, &s.secrets, &devices, mode).await.map_err(ApiError::internal)?;
    s.inventory_changed.notify_one();
    Ok(Json(serde_json::json!({"result": report.to_string()})))
}

#[derive(Deserialize)]
struct DeviceFilter {
    device: Option<String>,
}

async fn device_id_of(s: &AppState, c: &deadpool_postgres::Object, name: &str) -> ApiResult<i64> {
    let v = inventory::store::get_view_by_name(&***c, name)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| ApiError::not_found(format!("no device named {name:?}")))?;
    let _ = s;
    Ok(v.id.unwrap_or_default())
}

async fn routing(s: AppState, f: DeviceFilter, table: query::RoutingTable) -> ApiResult<Json<Vec<serde_json::Value>>> {
    let c = db(&s).await?;
    let id = match f.device.as_deref() {
        Some(name) => Some(device_id_of(&s, &c, name).await?),
        None => None,
    };
    Ok(Json(query::routing_rows(&**c, table, id).await.map_err(ApiError::internal)?))
}

async fn bgp_peers(
    State(s): State<AppState>,
    Query(f): Query<DeviceFilter>,
) -> ApiResult<Json<Vec<serde_json::Value>>> {
    routing(s, f, query::RoutingTable::BgpPeers).await
}
async fn ospf_neighbors(
    State(s): State<AppState>,
    Query(f): Query<DeviceFilter>,
) -> ApiResult<Json<Vec<serde_json::Value>>> {
    routing(s, f, query::RoutingTable::OspfNeighbors).await
}
async fn ospf_interfaces(
    State(s): State<AppState>,
    Query(f): Query<DeviceFilter>,
) -> ApiResult<Json<Vec<serde_json::Value>>> {
    routing(s, f, query::RoutingTable::OspfInterfaces).await
}
async fn link_neighbors(
    State(s): State<AppState>,
    Query(f): Query<DeviceFilter>,
) -> ApiResult<Json<Vec<serde_json::Value>>> {
    routing(s, f, query::RoutingTable::LinkNeighbors).await
}

/// A point in time: RFC 3339, or a duration meaning "that long ago" (e.g. 15m).
pub(crate) fn parse_time(field: &'static str, v: &str) -> ApiResult<chrono::DateTime<chrono::Utc>> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(v) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    let d = humantime::parse_duration(v).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_time",
            format!("{field}={v:?}: use RFC 3339 (2026-11-22T10:00:00Z) or a duration ago (15m)"),
        )
    })?;
    Ok(chrono::Utc::now() - chrono::Duration::from_std(d).unwrap_or_default())
}

#[derive(Deserialize)]
struct ChangesQuery {
    device: Option<String>,
    kind: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<i64>,
}

async fn changes(State(s): State<AppState>, Query(q): Query<ChangesQuery>) -> ApiResult<Json<Vec<query::StateChange>>> {
    let c = db(&s).await?;
    let id = match q.device.as_deref() {
        Some(name) => Some(device_id_of(&s, &c, name).await?),
        None => None,
    };
    let from = parse_time("from", q.from.as_deref().unwrap_or("1h"))?;
    let to = match q.to.as_deref() {
        Some(t) => parse_time("to", t)?,
        None => chrono::Utc::now() + chrono::Duration::seconds(1),
    };
    let limit = q.limit.unwrap_or(1000).clamp(1, 100_000);
    Ok(Json(query::state_changes(&**c, id, q.kind.as_deref(), from, to, limit).await.map_err(ApiError::internal)?))
}

#[derive(Deserialize)]
struct AsOfQuery {
    at: Option<String>,
    kind: Option<String>,
}

async fn device_state_as_of(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<AsOfQuery>,
) -> ApiResult<Json<Vec<query::StateChange>>> {
    let c = db(&s).await?;
    let id = device_id_of(&s, &c, &name).await?;
    let at = match q.at.as_deref() {
        Some(t) => parse_time("at", t)?,
        None => chrono::Utc::now(),
    };
    Ok(Json(query::state_as_of(&**c, id, q.kind.as_deref(), at).await.map_err(ApiError::internal)?))
}

#[derive(Deserialize)]
struct OutageQuery {
    kind: Option<String>,
    healthy: Option<String>,
    since: Option<String>,
}

async fn device_outages(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<OutageQuery>,
) -> ApiResult<Json<Vec<query::Outage>>> {
    let kind = q.kind.as_deref().unwrap_or("bgp_peer");
    let healthy = q.healthy.as_deref().unwrap_or(match kind {
        "bgp_peer" => "established",
        "ospf_neighbor" => "full",
        "interface" => "up/up",
        _ => "up",
    });
    let c = db(&s).await?;
    let id = device_id_of(&s, &c, &name).await?;
    let from = parse_time("since", q.since.as_deref().unwrap_or("24h"))?;
    let to = chrono::Utc::now() + chrono::Duration::seconds(1);
    Ok(Json(query::outages(&**c, id, kind, healthy, from, to).await.map_err(ApiError::internal)?))
}

fn current_topology(s: &AppState) -> std::sync::Arc<collector::topology::Topology> {
    s.topology.read().expect("topology lock").clone()
}

/// Nodes and edges in the shape Grafana's Node Graph panel reads.
async fn topology_graph(State(s): State<AppState>) -> Json<collector::topology::NodeGraph> {
    Json(current_topology(&s).node_graph())
}

async fn topology_full(State(s): State<AppState>) -> Json<collector::topology::Topology> {
    Json((*current_topology(&s)).clone())
}

#[derive(Deserialize)]
struct DiffQuery {
    from: Option<String>,
    to: Option<String>,
}

/// Links and nodes added, removed or changed between the graphs as of `from` and `to`.
async fn topology_diff(State(s): State<AppState>, Query(q): Query<DiffQuery>) -> ApiResult<Json<serde_json::Value>> {
    let from = parse_time("from", q.from.as_deref().unwrap_or("1h"))?;
    let to = match q.to.as_deref() {
        Some(t) => parse_time("to", t)?,
        None => chrono::Utc::now(),
    };
    let c = db(&s).await?;
    let empty = collector::topology::Topology::build(&[], &[]);
    let old = collector::store::topology::snapshot_at(&**c, from)
        .await
        .map_err(ApiError::internal)?
        .unwrap_or_else(|| empty.clone());
    let new = collector::store::topology::snapshot_at(&**c, to).await.map_err(ApiError::internal)?.unwrap_or(empty);
    Ok(Json(serde_json::json!({"from": from, "to": to, "changes": collector::topology::diff(&old, &new)})))
}

#[derive(Deserialize)]
struct PathQuery {
    from: String,
    to: String,
    #[serde(default)]
    include_down: bool,
}

async fn topology_path(State(s): State<AppState>, Query(q): Query<PathQuery>) -> ApiResult<Json<serde_json::Value>> {
    let topo = current_topology(&s);
    for n in [&q.from, &q.to] {
        if topo.node(n).is_none() {
            return Err(ApiError::not_found(format!("no device {n:?} in the topology")));
        }
    }
    let scope = if q.include_down { collector::topology::LinkScope::All } else { collector::topology::LinkScope::Up };
    match topo.shortest_path_over(&q.from, &q.to, scope) {
        Some(hops) => Ok(Json(serde_json::json!({"from": q.from, "to": q.to, "hops": hops.len(), "path": hops}))),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_path",
            format!("no path from {:?} to {:?} over {} links", q.from, q.to, if q.include_down { "all" } else { "up" }),
        )),
    }
}

#[derive(Deserialize)]
struct ImpactQuery {
    device: Option<String>,
    link: Option<String>,
    role: String,
}

/// Which devices lose every path to `role` if a device or a link fails.
async fn topology_impact(
    State(s): State<AppState>,
    Query(q): Query<ImpactQuery>,
) -> ApiResult<Json<collector::topology::Impact>> {
    let failure = match (q.device, q.link) {
        (Some(d), None) => collector::topology::Failure::Device(d),
        (None, Some(l)) => collector::topology::Failure::Link(
            l.parse().map_err(|e: String| ApiError::new(StatusCode::BAD_REQUEST, "bad_link", e))?,
        ),
        _ => return Err(ApiError::new(StatusCode::BAD_REQUEST, "bad_failure", "give exactly one of device= or link=")),
    };
    let topo = current_topology(&s);
    topo.failure_impact(&failure, &q.role).map(Json).map_err(|e| ApiError::not_found(e.to_string()))
}

async fn topology_spof(State(s): State<AppState>) -> Json<collector::topology::Spof> {
    Json(current_topology(&s).single_points_of_failure())
}

#[derive(Deserialize, Default)]
struct AdoptBody {
    name: Option<String>,
    address: Option<String>,
    role: Option<String>,
    site: Option<String>,
    /// Credentials as in the inventory file; default: those of the device that saw the neighbour.
    snmp: Option<serde_json::Value>,
}

/// Adds a discovered neighbour to the inventory in one call.
async fn adopt_discovered(
    State(s): State<AppState>,
    Path(chassis_id): Path<String>,
    body: Option<Json<AdoptBody>>,
) -> ApiResult<(StatusCode, Json<DeviceView>)> {
    let body = body.map(|b| b.0).unwrap_or_default();
    let topo = current_topology(&s);
    let node = topo
        .nodes()
        .iter()
        .find(|n| matches!(&n.origin, collector::topology::NodeOrigin::Discovered { chassis_id: c, .. } if *c == chassis_id))
        .ok_or_else(|| ApiError::not_found(format!("no discovered neighbour with chassis id {chassis_id:?}")))?;
    let seen_by = match &node.origin {
        collector::topology::NodeOrigin::Discovered { seen_by, .. } => seen_by.first().cloned(),
        _ => None,
    };
    let address = body.address.or(node.mgmt_addr.clone()).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_address",
            "the neighbour advertised no management address; give \"address\"",
        )
    })?;
    let name = body.name.or(node.sys_name.clone()).unwrap_or_else(|| node.name.clone());
    let c = db(&s).await?;
    let snmp = match body.snmp {
        Some(v) => v,
        None => {
            let reporter = seen_by.ok_or_else(|| {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "no_credentials", "give \"snmp\" credentials")
            })?;
            let d = find(&s, &c, &reporter).await?;
            let exported = inventory::export_yaml(std::slice::from_ref(&d), true);
            let doc: serde_json::Value = serde_saphyr_to_json(&exported)?;
            doc["devices"][0]["snmp"].clone()
        }
    };
    let mut dev = serde_json::json!({"name": name, "address": address, "snmp": snmp, "tags": ["discovered"]});
    if let Some(r) = body.role.or(node.role.clone()) {
        dev["role"] = r.into();
    }
    if let Some(site) = body.site.or(node.site.clone()) {
        dev["site"] = site.into();
    }
    let d = parse_device(&dev)?;
    if inventory::store::get_by_name(&**c, &s.secrets, &d.name).await.map_err(ApiError::internal)?.is_some() {
        return Err(ApiError::new(StatusCode::CONFLICT, "exists", format!("device {:?} already exists", d.name)));
    }
    let stored = inventory::store::upsert_one(&**c, &s.secrets, &d).await.map_err(ApiError::internal)?;
    s.inventory_changed.notify_one();
    Ok((StatusCode::CREATED, Json(DeviceView::from(&stored))))
}

/// The reporting device's SNMP settings, read back from its own YAML export.
fn serde_saphyr_to_json(yaml: &str) -> ApiResult<serde_json::Value> {
    serde_saphyr::from_str::<serde_json::Value>(yaml).map_err(ApiError::internal)
}

#[derive(Deserialize)]
struct HistoryQuery {
    #[serde(default)]
    all: bool,
    limit: Option<i64>,
}

/// What changed when: backups of a device's running configuration, newest first.
async fn config_history(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<HistoryQuery>,
) -> ApiResult<Json<Vec<collector::configs::store::HistoryEntry>>> {
    let c = db(&s).await?;
    let id = device_id_of(&s, &c, &name).await?;
    let h = collector::configs::store::history(&**c, id, !q.all, q.limit.unwrap_or(50).clamp(1, 10_000))
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(h))
}

#[derive(Deserialize)]
struct ConfigDiffQuery {
    from: Option<i64>,
    to: Option<i64>,
}

/// Unified diff between two snapshots (default: the last two different ones), secrets masked.
async fn config_diff(
    State(s): State<AppState>,
    Path(name): Path<String>,
    Query(q): Query<ConfigDiffQuery>,
) -> ApiResult<Json<collector::configs::ConfigDiff>> {
    let c = db(&s).await?;
    let d = find(&s, &c, &name).await?;
    let profile = s.ssh.profiles().for_device(d.platform.as_deref(), d.vendor.as_deref()).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_profile",
            format!("{name}: no platform profile for platform {:?}", d.platform),
        )
    })?;
    let (_, _, diff) =
        collector::configs::store::diff_snapshots(&**c, d.id.unwrap_or_default(), &profile, q.from, q.to, false)
            .await
            .map_err(|e| ApiError::new(StatusCode::NOT_FOUND, "no_diff", e.to_string()))?;
    Ok(Json(diff))
}

/// Backs the device's running configuration up now, over SSH.
async fn config_backup(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<collector::configs::backup::BackupOutcome>> {
    let d = {
        let c = db(&s).await?;
        find(&s, &c, &name).await?
    };
    collector::configs::backup::backup_device(&s.ssh, &d, collector::configs::BackupTrigger::Api)
        .await
        .map(Json)
        .map_err(|e| ApiError::new(StatusCode::BAD_GATEWAY, "backup_failed", e.to_string()))
}

#[derive(Deserialize)]
struct EventsQuery {
    #[serde(default)]
    after: i64,
    device: Option<String>,
    limit: Option<i64>,
}

/// Configuration changes detected between snapshots (diffs masked), after a cursor.
async fn config_events(
    State(s): State<AppState>,
    Query(q): Query<EventsQuery>,
) -> ApiResult<Json<Vec<collector::configs::store::ConfigEvent>>> {
    let c = db(&s).await?;
    let id = match q.device.as_deref() {
        Some(n) => Some(device_id_of(&s, &c, n).await?),
        None => None,
    };
    let ev = collector::configs::store::events_after(&**c, q.after, id, q.limit.unwrap_or(100).clamp(1, 10_000))
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(ev))
}

#[derive(Deserialize)]
struct TrapsQuery {
    device: Option<String>,
    since: Option<String>,
    limit: Option<i64>,
}

/// SNMP notifications accepted from inventory devices, newest first (default: the last hour).
async fn traps(
    State(s): State<AppState>,
    Query(q): Query<TrapsQuery>,
) -> ApiResult<Json<Vec<collector::store::trap::TrapRow>>> {
    let c = db(&s).await?;
    let id = match q.device.as_deref() {
        Some(name) => Some(device_id_of(&s, &c, name).await?),
        None => None,
    };
    let since = parse_time("since", q.since.as_deref().unwrap_or("1h"))?;
    let limit = q.limit.unwrap_or(1000).clamp(1, 100_000);
    Ok(Json(collector::store::trap::list(&**c, id, since, limit).await.map_err(ApiError::internal)?))
}
