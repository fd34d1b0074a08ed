//! Loads the topology's inputs from the collector's tables: inventory devices with their state
//! and LLDP chassis id, and one adjacency per neighbour row with the local port's oper status.

use crate::topology::{Adjacency, DeviceStatus, Protocol, TopoDevice};
use tokio_postgres::GenericClient;

pub async fn topology_inputs(
    db: &impl GenericClient,
) -> Result<(Vec<TopoDevice>, Vec<Adjacency>), tokio_postgres::Error> {
    let devices = db
        .query(
            "SELECT d.id, d.name, d.role, d.site, d.host, s.lldp_chassis_id, s.sys_name, coalesce(s.status, 'unknown')
               FROM device d LEFT JOIN device_state s ON s.device_id = d.id ORDER BY d.name",
            &[],
        )
        .await?
        .iter()
        .map(|r| TopoDevice {
            id: r.get(0),
            name: r.get(1),
            role: r.get(2),
            site: r.get(3),
            mgmt_addr: r.get(4),
            chassis_ids: r.get::<_, Option<String>>(5).into_iter().collect(),
            sys_name: r.get(6),
            status: match r.get::<_, String>(7).as_str() {
                "up" => DeviceStatus::Up,
                "down" => DeviceStatus::Down,
                _ => DeviceStatus::Unknown,
            },
        })
        .collect();
    // A neighbour no longer advertised still stands for its cable while the local port is not
    // up: the link is shown down, not forgotten. Once the port is up again without it, it is gone.
    let adjacencies = db
        .query(
            "SELECT l.device_id, coalesce(l.local_if_name, i.name, 'port ' || l.local_port_num), i.oper_status,
                    l.chassis_id, l.sys_name, l.port_id, l.port_descr, host(l.mgmt_addr), l.protocol
               FROM link_neighbor l
               LEFT JOIN interface i ON i.device_id = l.device_id
                    AND (i.name = l.local_if_name OR (l.local_if_name IS NULL AND i.if_index = l.local_if_index))
              WHERE l.lost_at IS NULL OR i.oper_status IS DISTINCT FROM 1",
            &[],
        )
        .await?
        .iter()
        .map(|r| Adjacency {
            device_id: r.get(0),
            local_if_name: r.get(1),
            local_if_oper_up: match r.get::<_, Option<i16>>(2) {
                Some(1) => Some(true),
                Some(2) | Some(7) => Some(false),
                _ => None,
            },
            remote_chassis_id: r.get(3),
            remote_sys_name: r.get(4),
            remote_port_id: r.get(5),
            remote_port_descr: r.get(6),
            remote_mgmt_addr: r.get(7),
            protocol: if r.get::<_, String>(8) == "cdp" { Protocol::Cdp } else { Protocol::Lldp },
        })
        .collect();
    Ok((devices, adjacencies))
}

use crate::topology::{Topology, TopologyChange, diff};
use chrono::{DateTime, Utc};

/// The stored topology as of `at` (the latest snapshot not after it).
pub async fn snapshot_at(
    db: &impl GenericClient,
    at: DateTime<Utc>,
) -> Result<Option<Topology>, tokio_postgres::Error> {
    let row = db
        .query_opt(
            "SELECT topology FROM topology_snapshot WHERE time <= $1 ORDER BY time DESC, id DESC LIMIT 1",
            &[&at],
        )
        .await?;
    Ok(row.and_then(|r| serde_json::from_value(r.get::<_, serde_json::Value>(0)).ok()))
}

/// Builds the topology from the current tables; when it differs from `previous` (or the last
/// stored snapshot), stores it and appends each change to `state_change` (kind `topology`).
pub async fn refresh(
    db: &impl GenericClient,
    previous: Option<&Topology>,
    at: DateTime<Utc>,
) -> Result<(Topology, Vec<TopologyChange>), tokio_postgres::Error> {
    let (devices, adjacencies) = topology_inputs(db).await?;
    let topo = Topology::build(&devices, &adjacencies);
    let stored;
    let previous = match previous {
        Some(p) => Some(p),
        None => {
            stored = snapshot_at(db, at).await?;
            stored.as_ref()
        }
    };
    let changes = match previous {
        Some(p) => diff(p, &topo),
        None => diff(&Topology::build(&[], &[]), &topo),
    };
    if !changes.is_empty() || previous.is_none() {
        let json = serde_json::to_value(&topo).unwrap_or(serde_json::Value::Null);
        db.execute("INSERT INTO topology_snapshot (time, topology) VALUES ($1, $2)", &[&at, &json]).await?;
        for c in &changes {
            let v = serde_json::to_value(c).unwrap_or(serde_json::Value::Null);
            let kind = v.get("change").and_then(|k| k.as_str()).unwrap_or("change").to_string();
            let key = match c {
                TopologyChange::NodeAdded { node, .. } | TopologyChange::NodeRemoved { node, .. } => node.clone(),
                TopologyChange::LinkAdded { link, .. }
                | TopologyChange::LinkRemoved { link, .. }
                | TopologyChange::LinkChanged { link, .. } => link.to_string(),
            };
            let (old, new) = change_states(&v);
            db.execute(
                "INSERT INTO state_change (time, device_id, kind, key, old_state, new_state, detail) VALUES ($1, NULL, $2, $3, $4, $5, $6)",
                &[&at, &format!("topology_{kind}"), &key, &old, &new, &v],
            )
            .await?;
        }
    }
    Ok((topo, changes))
}

/// Short before/after words for a history row.
fn change_states(v: &serde_json::Value) -> (Option<String>, Option<String>) {
    let word =
        |s: Option<&serde_json::Value>| s.and_then(|s| s.get("status")).and_then(|x| x.as_str()).map(str::to_string);
    match v.get("change").and_then(|c| c.as_str()) {
        Some("link_added") => (None, word(v.get("state")).or(Some("present".into()))),
        Some("link_removed") => (word(v.get("state")).or(Some("present".into())), None),
        Some("link_changed") => (word(v.get("from")), word(v.get("to"))),
        Some("node_added") => (None, Some("present".into())),
        Some("node_removed") => (Some("present".into()), None),
        _ => (None, None),
    }
}
