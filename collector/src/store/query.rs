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

pub async fn device_state(
    db: &impl GenericClient,
    device_id: i64,
) -> Result<Option<DeviceState>, tokio_postgres::Error> {
    let row =
        db.query_opt(&format!("SELECT {STATE_COLS} FROM device_state WHERE device_id = $1"), &[&device_id]).await?;
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

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct StateChange {
    pub time: DateTime<Utc>,
    pub device_id: Option<i64>,
    pub kind: String,
    pub key: String,
    pub old_state: Option<String>,
    pub new_state: Option<String>,
    pub detail: Option<serde_json::Value>,
}

fn change_from(r: &tokio_postgres::Row) -> StateChange {
    StateChange {
        time: r.get(0),
        device_id: r.get(1),
        kind: r.get(2),
        key: r.get(3),
        old_state: r.get(4),
        new_state: r.get(5),
        detail: r.get(6),
    }
}

/// Changes in `[from, to)`, oldest first, optionally for one device and/or one kind.
pub async fn state_changes(
    db: &impl GenericClient,
    device_id: Option<i64>,
    kind: Option<&str>,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<StateChange>, tokio_postgres::Error> {
    let rows = db
        .query(
            "SELECT time, device_id, kind, key, old_state, new_state, detail FROM state_change
              WHERE time >= $1 AND time < $2 AND ($3::bigint IS NULL OR device_id = $3)
                AND ($4::text IS NULL OR kind = $4)
              ORDER BY time, id LIMIT $5",
            &[&from, &to, &device_id, &kind, &limit],
        )
        .await?;
    Ok(rows.iter().map(change_from).collect())
}

/// The latest changes since `from`, newest first, optionally only of some devices (the NOC page's
/// "recent changes": what happened last matters, so a busy hour is cut at its oldest end).
pub async fn recent_state_changes(
    db: &impl GenericClient,
    device_ids: Option<&[i64]>,
    from: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<StateChange>, tokio_postgres::Error> {
    let rows = db
        .query(
            "SELECT time, device_id, kind, key, old_state, new_state, detail FROM state_change
              WHERE time >= $1 AND ($2::bigint[] IS NULL OR device_id = ANY($2))
              ORDER BY time DESC, id DESC LIMIT $3",
            &[&from, &device_ids, &limit],
        )
        .await?;
    Ok(rows.iter().map(change_from).collect())
}

/// An interface administratively up whose operational status is not up (the intents'
/// `interfaces_down`), with when its state last changed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DownInterface {
    pub device_id: i64,
    pub name: String,
    pub alias: Option<String>,
    pub oper_status: Option<i16>,
    /// The latest `interface` state change of this interface, if any is kept.
    pub since: Option<DateTime<Utc>>,
}

/// Interfaces admin up and oper not up across devices (optionally only some), most recently
/// changed first.
pub async fn interfaces_down(
    db: &impl GenericClient,
    device_ids: Option<&[i64]>,
    limit: i64,
) -> Result<Vec<DownInterface>, tokio_postgres::Error> {
    let rows = db
        .query(
            "SELECT i.device_id, i.name, i.alias, i.oper_status,
                    (SELECT max(c.time) FROM state_change c
                      WHERE c.device_id = i.device_id AND c.kind = 'interface' AND c.key = i.name)
               FROM interface i
              WHERE i.admin_status = 1 AND i.oper_status <> 1 AND ($1::bigint[] IS NULL OR i.device_id = ANY($1))
              ORDER BY 5 DESC NULLS LAST, i.device_id, i.name LIMIT $2",
            &[&device_ids, &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| DownInterface {
            device_id: r.get(0),
            name: r.get(1),
            alias: r.get(2),
            oper_status: r.get(3),
            since: r.get(4),
        })
        .collect())
}

/// The state of every tracked object of a device as it was at `at` (objects that had vanished by
/// then are left out), each with the time it entered that state.
pub async fn state_as_of(
    db: &impl GenericClient,
    device_id: i64,
    kind: Option<&str>,
    at: DateTime<Utc>,
) -> Result<Vec<StateChange>, tokio_postgres::Error> {
    let rows = db
        .query(
            "SELECT * FROM (
                 SELECT DISTINCT ON (kind, key) time, device_id, kind, key, old_state, new_state, detail
                   FROM state_change
                  WHERE device_id = $1 AND time <= $2 AND ($3::text IS NULL OR kind = $3)
                  ORDER BY kind, key, time DESC, id DESC) latest
              WHERE new_state IS NOT NULL ORDER BY kind, key",
            &[&device_id, &at, &kind],
        )
        .await?;
    Ok(rows.iter().map(change_from).collect())
}

/// One period an object spent outside its healthy state.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Outage {
    pub kind: String,
    pub key: String,
    pub state: Option<String>,
    pub start: DateTime<Utc>,
    /// None: still ongoing.
    pub end: Option<DateTime<Utc>>,
    pub seconds: Option<f64>,
}

/// Periods overlapping `[from, to)` during which objects of `kind` on a device were out of
/// `healthy_state` (e.g. BGP peers not "established"): when each left it, when it came back and
/// how long that took. The number of periods is the flap count.
pub async fn outages(
    db: &impl GenericClient,
    device_id: i64,
    kind: &str,
    healthy_state: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<Outage>, tokio_postgres::Error> {
    let rows = db
        .query(
            "SELECT time, device_id, kind, key, old_state, new_state, detail FROM state_change
              WHERE device_id = $1 AND kind = $2 AND time < $3 ORDER BY key, time, id",
            &[&device_id, &kind, &to],
        )
        .await?;
    let changes: Vec<StateChange> = rows.iter().map(change_from).collect();
    Ok(outage_periods(&changes, healthy_state, from))
}

/// Folds a time-ordered change list (grouped by key) into outage periods ending after `from`.
pub fn outage_periods(changes: &[StateChange], healthy_state: &str, from: DateTime<Utc>) -> Vec<Outage> {
    let mut out: Vec<Outage> = Vec::new();
    let mut open: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
    for c in changes {
        let healthy = c.new_state.as_deref() == Some(healthy_state);
        match (open.get(c.key.as_str()).copied(), healthy) {
            (Some(i), true) => {
                out[i].end = Some(c.time);
                out[i].seconds = Some((c.time - out[i].start).num_milliseconds() as f64 / 1000.0);
                open.remove(c.key.as_str());
            }
            (None, false) if c.old_state.is_some() || c.new_state.is_some() => {
                // Appearing in a bad state counts too; vanishing from a healthy one is an outage.
                open.insert(&c.key, out.len());
                out.push(Outage {
                    kind: c.kind.clone(),
                    key: c.key.clone(),
                    state: c.new_state.clone(),
                    start: c.time,
                    end: None,
                    seconds: None,
                });
            }
            _ => {}
        }
    }
    out.retain(|o| o.end.is_none_or(|e| e >= from));
    out.sort_by_key(|o| o.start);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(sec: i64, key: &str, old: Option<&str>, new: Option<&str>) -> StateChange {
        StateChange {
            time: DateTime::from_timestamp(1_700_000_000 + sec, 0).unwrap(),
            device_id: Some(1),
            kind: "bgp_peer".into(),
            key: key.into(),
            old_state: old.map(Into::into),
            new_state: new.map(Into::into),
            detail: None,
        }
    }

    #[test]
    fn outages_span_from_leaving_healthy_to_returning() {
        let e = Some("established");
        let changes = vec![
            ch(0, "10.0.0.1", None, e),
            ch(100, "10.0.0.1", e, Some("idle")),
            ch(105, "10.0.0.1", Some("idle"), Some("active")),
            ch(130, "10.0.0.1", Some("active"), e),
            ch(200, "10.0.0.1", e, Some("idle")),
            ch(50, "10.0.0.2", None, Some("active")),
        ];
        let mut sorted = changes.clone();
        sorted.sort_by(|a, b| a.key.cmp(&b.key).then(a.time.cmp(&b.time)));
        let o = outage_periods(&sorted, "established", DateTime::from_timestamp(1_700_000_000, 0).unwrap());
        assert_eq!(o.len(), 3, "{o:?}");
        assert_eq!((o[0].key.as_str(), o[0].seconds), ("10.0.0.2", None), "never came up: still out");
        assert_eq!(o[1].seconds, Some(30.0), "idle then active is one outage");
        assert_eq!(o[2].end, None, "the second flap is ongoing");
    }
}

/// Current rows of a routing table for one device (or all), as JSON objects: the API passes
/// them through, and adding a column needs no change here.
pub async fn routing_rows(
    db: &impl GenericClient,
    table: RoutingTable,
    device_id: Option<i64>,
) -> Result<Vec<serde_json::Value>, tokio_postgres::Error> {
    let (name, order) = match table {
        RoutingTable::BgpPeers => ("bgp_peer", "peer_addr, afi_safi"),
        RoutingTable::OspfNeighbors => ("ospf_neighbor", "neighbor_addr"),
        RoutingTable::OspfInterfaces => ("ospf_interface", "ip"),
        RoutingTable::LinkNeighbors => ("link_neighbor", "local_port_num, chassis_id"),
        RoutingTable::LostLinkNeighbors => ("link_neighbor", "local_port_num, chassis_id"),
    };
    let extra = match table {
        RoutingTable::LinkNeighbors => "AND t.lost_at IS NULL",
        RoutingTable::LostLinkNeighbors => "AND t.lost_at IS NOT NULL",
        _ => "",
    };
    let sql = format!(
        "SELECT to_jsonb(t) || jsonb_build_object('device', d.name) FROM {name} t JOIN device d ON d.id = t.device_id
          WHERE ($1::bigint IS NULL OR t.device_id = $1) {extra} ORDER BY d.name, {order}"
    );
    Ok(db.query(&sql, &[&device_id]).await?.iter().map(|r| r.get(0)).collect())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoutingTable {
    BgpPeers,
    OspfNeighbors,
    OspfInterfaces,
    /// Neighbours advertised now.
    LinkNeighbors,
    /// Neighbours no longer advertised (kept so a failed cable stays visible).
    LostLinkNeighbors,
}
