//! Read side of the collector's tables, for the API and the other crates.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::GenericClient;

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DeviceState {
    pub device_id: i64,
    pub status: String,
    pub status_since: DateTime<Utc>,
    pub last_poll: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    pub last_error_kind: Option<String>,
    pub last_error: Option<String>,
    pub consecutive_failures: i32,
    pub polls_total: i64,
    pub polls_failed: i64,
    pub polls_skipped: i64,
    pub sys_name: Option<String>,
    pub sys_descr: Option<String>,
    pub sys_object_id: Option<String>,
    pub sys_uptime_ticks: Option<i64>,
    pub last_poll_duration_ms: Option<f32>,
}

const STATE_COLS: &str = "device_id, status, status_since, last_poll, last_success, last_error_kind, last_error,
    consecutive_failures, polls_total, polls_failed, polls_skipped, sys_name, sys_descr, sys_object_id,
    sys_uptime_ticks, last_poll_duration_ms";

fn state_from(r: &tokio_postgres::Row) -> DeviceState {
    DeviceState {
        device_id: r.get(0),
        status: r.get(1),
        status_since: r.get(2),
        last_poll: r.get(3),
        last_success: r.get(4),
        last_error_kind: r.get(5),
        last_error: r.get(6),
        consecutive_failures: r.get(7),
        polls_total: r.get(8),
        polls_failed: r.get(9),
        polls_skipped: r.get(10),
        sys_name: r.get(11),
        sys_descr: r.get(12),
        sys_object_id: r.get(13),
        sys_uptime_ticks: r.get(14),
        last_poll_duration_ms: r.get(15),
    }
}

pub async fn device_states(db: &impl GenericClient) -> Result<Vec<DeviceState>, tokio_postgres::Error> {
    let rows = db.query(&format!("SELECT {STATE_COLS} FROM device_state ORDER BY device_id"), &[]).await?;
    Ok(rows.iter().map(state_from).collect())
}

pub async fn device_state(db: &impl GenericClient, device_id: i64) -> Result<Option<DeviceState>, tokio_postgres::Error> {
    let row = db.query_opt(&format!("SELECT {STATE_COLS} FROM device_state WHERE device_id = $1"), &[&device_id]).await?;
    Ok(row.as_ref().map(state_from))
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct InterfaceState {
    pub id: i64,
    pub name: String,
    pub if_index: i32,
    pub descr: Option<String>,
    pub alias: Option<String>,
    pub if_type: Option<i32>,
    pub mtu: Option<i32>,
    pub speed_bps: Option<i64>,
    pub admin_status: Option<i16>,
    pub oper_status: Option<i16>,
    pub last_seen: DateTime<Utc>,
}

pub async fn interfaces(db: &impl GenericClient, device_id: i64) -> Result<Vec<InterfaceState>, tokio_postgres::Error> {
    let rows = db
        .query(
            "SELECT id, name, if_index, descr, alias, if_type, mtu, speed_bps, admin_status, oper_status, last_seen
               FROM interface WHERE device_id = $1 ORDER BY if_index",
            &[&device_id],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| InterfaceState {
            id: r.get(0),
            name: r.get(1),
            if_index: r.get(2),
            descr: r.get(3),
            alias: r.get(4),
            if_type: r.get(5),
            mtu: r.get(6),
            speed_bps: r.get(7),
            admin_status: r.get(8),
            oper_status: r.get(9),
            last_seen: r.get(10),
        })
        .collect())
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct InterfaceSample {
    pub time: DateTime<Utc>,
    pub oper_status: Option<i16>,
    pub in_bps: Option<f64>,
    pub out_bps: Option<f64>,
    pub in_pps: Option<f64>,
    pub out_pps: Option<f64>,
    pub in_errors: Option<f64>,
    pub out_errors: Option<f64>,
    pub in_discards: Option<f64>,
    pub out_discards: Option<f64>,
}

pub async fn interface_samples(
    db: &impl GenericClient,
    interface_id: i64,
    since: DateTime<Utc>,
) -> Result<Vec<InterfaceSample>, tokio_postgres::Error> {
    let rows = db
        .query(
            "SELECT time, oper_status, in_bps, out_bps, in_pps, out_pps, in_errors, out_errors, in_discards, out_discards
               FROM if_sample WHERE interface_id = $1 AND time >= $2 ORDER BY time",
            &[&interface_id, &since],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| InterfaceSample {
            time: r.get(0),
            oper_status: r.get(1),
            in_bps: r.get(2),
            out_bps: r.get(3),
            in_pps: r.get(4),
            out_pps: r.get(5),
            in_errors: r.get(6),
            out_errors: r.get(7),
            in_discards: r.get(8),
            out_discards: r.get(9),
        })
        .collect())
}
