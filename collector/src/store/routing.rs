//! Routing and neighbour state: the current tables replaced per poll, and a history row for every
//! state change (a BGP session leaving Established, an OSPF neighbour no longer Full or gone, an
//! LLDP/CDP neighbour appearing, changing or lost on a port).

use crate::routing::{BgpPeer, BgpState, LinkNeighbor, OspfNeighbor, RoutingPoll};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, HashMap};
use tokio_postgres::types::ToSql;

pub fn bgp_state_name(s: BgpState) -> String {
    match s {
        BgpState::Idle => "idle".into(),
        BgpState::Connect => "connect".into(),
        BgpState::Active => "active".into(),
        BgpState::OpenSent => "opensent".into(),
        BgpState::OpenConfirm => "openconfirm".into(),
        BgpState::Established => "established".into(),
        BgpState::Unknown(v) => format!("unknown({v})"),
    }
}

fn ospf_state_name(n: &OspfNeighbor) -> String {
    serde_json::to_value(n.state)
        .ok()
        .and_then(|v| v.as_str().map(str::to_lowercase))
        .unwrap_or_else(|| format!("{:?}", n.state).to_lowercase())
}

fn bgp_key(p: &BgpPeer) -> String {
    match p.afi_safi.as_deref() {
        Some(f) if !f.is_empty() => format!("{} {f}", p.peer_addr),
        _ => p.peer_addr.to_string(),
    }
}

fn ospf_key(n: &OspfNeighbor) -> String {
    if n.addressless_index == 0 { n.addr.to_string() } else { format!("{}%{}", n.addr, n.addressless_index) }
}

/// The local port a neighbour was seen on, as people name it.
fn port_key(n: &LinkNeighbor) -> String {
    n.local_if_name.clone().unwrap_or_else(|| format!("port {}", n.local_port_num))
}

fn neighbor_identity(n: &LinkNeighbor) -> String {
    format!("{}:{}", n.sys_name.clone().filter(|s| !s.is_empty()).unwrap_or_else(|| n.chassis_id.clone()), n.port_id)
}

/// What changed in one poll (for logs and tests).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct RoutingChanges {
    pub recorded: usize,
}

/// Diff of keyed states: (key, old, new) for every key whose state differs.
fn diff(
    old: &HashMap<String, String>,
    new: &BTreeMap<String, String>,
) -> Vec<(String, Option<String>, Option<String>)> {
    let mut out = Vec::new();
    for (k, v) in new {
        if old.get(k) != Some(v) {
            out.push((k.clone(), old.get(k).cloned(), Some(v.clone())));
        }
    }
    for (k, v) in old {
        if !new.contains_key(k) {
            out.push((k.clone(), Some(v.clone()), None));
        }
    }
    out.sort();
    out
}

async fn current(
    tx: &tokio_postgres::Transaction<'_>,
    sql: &str,
    device_id: i64,
) -> Result<HashMap<String, String>, tokio_postgres::Error> {
    Ok(tx.query(sql, &[&device_id]).await?.into_iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Replaces the device's routing state with this poll's and appends the changes to history.
pub async fn record_routing(
    client: &mut tokio_postgres::Client,
    device_id: i64,
    at: DateTime<Utc>,
    poll: &RoutingPoll,
) -> Result<RoutingChanges, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    // Old states, keyed like the history rows.
    let old_bgp = current(
        &tx,
        "SELECT CASE WHEN afi_safi = '' THEN host(peer_addr) ELSE host(peer_addr) || ' ' || afi_safi END, state
           FROM bgp_peer WHERE device_id = $1",
        device_id,
    )
    .await?;
    let old_ospf = current(
        &tx,
        "SELECT CASE WHEN addressless_index = 0 THEN host(neighbor_addr) ELSE host(neighbor_addr) || '%' || addressless_index END, state
           FROM ospf_neighbor WHERE device_id = $1",
        device_id,
    )
    .await?;
    let old_links = current(
        &tx,
        "SELECT coalesce(local_if_name, 'port ' || local_port_num),
                string_agg(coalesce(nullif(sys_name, ''), chassis_id) || ':' || port_id, ', ' ORDER BY 1)
           FROM link_neighbor WHERE device_id = $1 AND lost_at IS NULL GROUP BY 1",
        device_id,
    )
    .await?;
    let new_bgp: BTreeMap<String, String> = poll.bgp.iter().map(|p| (bgp_key(p), bgp_state_name(p.state))).collect();
    let new_ospf: BTreeMap<String, String> =
        poll.ospf_neighbors.iter().map(|n| (ospf_key(n), ospf_state_name(n))).collect();
    let mut grouped: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for n in &poll.neighbors {
        grouped.entry(port_key(n)).or_default().push(neighbor_identity(n));
    }
    let new_links: BTreeMap<String, String> = grouped
        .into_iter()
        .map(|(k, mut v)| {
            v.sort();
            (k, v.join(", "))
        })
        .collect();

    let mut recorded = 0;
    let insert_change = tx
        .prepare("INSERT INTO state_change (time, device_id, kind, key, old_state, new_state, detail) VALUES ($1, $2, $3, $4, $5, $6, $7)")
        .await?;
    for (kind, changes) in [
        ("bgp_peer", diff(&old_bgp, &new_bgp)),
        ("ospf_neighbor", diff(&old_ospf, &new_ospf)),
        ("link_neighbor", diff(&old_links, &new_links)),
    ] {
        for (key, old, new) in changes {
            let detail: Option<serde_json::Value> = match kind {
                "bgp_peer" => poll
                    .bgp
                    .iter()
                    .find(|p| bgp_key(p) == key)
                    .map(|p| serde_json::json!({"remote_as": p.remote_as, "last_error": p.last_error, "fsm_established_transitions": p.fsm_established_transitions})),
                _ => None,
            };
            tx.execute(&insert_change, &[&at, &device_id, &kind, &key, &old, &new, &detail]).await?;
            recorded += 1;
        }
    }

    // Current state: keep state_since for unchanged states.
    let upsert_bgp = tx
        .prepare(
            "INSERT INTO bgp_peer (device_id, peer_addr, remote_as, local_addr, local_as, admin_status, state,
                                   established_time_s, fsm_established_transitions, in_updates, out_updates,
                                   last_error, afi_safi, prefixes_received, prefixes_accepted, source, state_since, last_seen)
             VALUES ($1, $2::text::inet, $3, $4::text::inet, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17)
             ON CONFLICT (device_id, peer_addr, afi_safi) DO UPDATE SET
                 remote_as = EXCLUDED.remote_as, local_addr = EXCLUDED.local_addr, local_as = EXCLUDED.local_as,
                 admin_status = EXCLUDED.admin_status,
                 state_since = CASE WHEN bgp_peer.state = EXCLUDED.state THEN bgp_peer.state_since ELSE EXCLUDED.state_since END,
                 state = EXCLUDED.state, established_time_s = EXCLUDED.established_time_s,
                 fsm_established_transitions = EXCLUDED.fsm_established_transitions, in_updates = EXCLUDED.in_updates,
                 out_updates = EXCLUDED.out_updates, last_error = EXCLUDED.last_error,
                 prefixes_received = EXCLUDED.prefixes_received, prefixes_accepted = EXCLUDED.prefixes_accepted,
                 source = EXCLUDED.source, last_seen = EXCLUDED.last_seen",
        )
        .await?;
    let mut bgp_keys: Vec<(String, String)> = Vec::new();
    for p in &poll.bgp {
        let afi = p.afi_safi.clone().unwrap_or_default();
        let admin = p.admin_status.map(|a| format!("{a:?}").to_lowercase());
        let last_error = p.last_error.map(|(c, s)| format!("{c}/{s}"));
        let params: [&(dyn ToSql + Sync); 17] = [
            &device_id,
            &p.peer_addr.to_string(),
            &i64::from(p.remote_as),
            &p.local_addr.map(|a| a.to_string()),
            &p.local_as.map(i64::from),
            &admin,
            &bgp_state_name(p.state),
            &p.established_time_s.map(i64::from),
            &p.fsm_established_transitions.map(i64::from),
            &p.in_updates.map(i64::from),
            &p.out_updates.map(i64::from),
            &last_error,
            &afi,
            &p.prefixes_received.map(|v| v.min(i64::MAX as u64) as i64),
            &p.prefixes_accepted.map(|v| v.min(i64::MAX as u64) as i64),
            &p.source,
            &at,
        ];
        tx.execute(&upsert_bgp, &params).await?;
        bgp_keys.push((p.peer_addr.to_string(), afi));
    }
    let (addrs, afis): (Vec<String>, Vec<String>) = bgp_keys.into_iter().unzip();
    tx.execute(
        "DELETE FROM bgp_peer b WHERE device_id = $1
            AND NOT EXISTS (SELECT 1 FROM unnest($2::text[], $3::text[]) k(a, f) WHERE b.peer_addr = k.a::inet AND b.afi_safi = k.f)",
        &[&device_id, &addrs, &afis],
    )
    .await?;

    let upsert_ospf = tx
        .prepare(
            "INSERT INTO ospf_neighbor (device_id, neighbor_addr, addressless_index, router_id, state, events, priority, state_since, last_seen)
             VALUES ($1, $2::text::inet, $3, $4::text::inet, $5, $6, $7, $8, $8)
             ON CONFLICT (device_id, neighbor_addr, addressless_index) DO UPDATE SET
                 router_id = EXCLUDED.router_id,
                 state_since = CASE WHEN ospf_neighbor.state = EXCLUDED.state THEN ospf_neighbor.state_since ELSE EXCLUDED.state_since END,
                 state = EXCLUDED.state, events = EXCLUDED.events, priority = EXCLUDED.priority, last_seen = EXCLUDED.last_seen",
        )
        .await?;
    let mut ospf_keys: (Vec<String>, Vec<i32>) = (Vec::new(), Vec::new());
    for n in &poll.ospf_neighbors {
        let idx = n.addressless_index as i32;
        tx.execute(
            &upsert_ospf,
            &[
                &device_id,
                &n.addr.to_string(),
                &idx,
                &n.router_id.to_string(),
                &ospf_state_name(n),
                &n.events.map(i64::from),
                &n.priority,
                &at,
            ],
        )
        .await?;
        ospf_keys.0.push(n.addr.to_string());
        ospf_keys.1.push(idx);
    }
    tx.execute(
        "DELETE FROM ospf_neighbor o WHERE device_id = $1
            AND NOT EXISTS (SELECT 1 FROM unnest($2::text[], $3::int[]) k(a, i) WHERE o.neighbor_addr = k.a::inet AND o.addressless_index = k.i)",
        &[&device_id, &ospf_keys.0, &ospf_keys.1],
    )
    .await?;

    tx.execute("DELETE FROM ospf_interface WHERE device_id = $1", &[&device_id]).await?;
    for i in &poll.ospf_interfaces {
        tx.execute(
            "INSERT INTO ospf_interface (device_id, ip, addressless_if, area_id, state, if_index, last_seen)
             VALUES ($1, $2::text::inet, $3, $4::text::inet, $5, $6, $7) ON CONFLICT DO NOTHING",
            &[
                &device_id,
                &i.ip.to_string(),
                &(i.addressless_if as i32),
                &i.area_id.to_string(),
                &serde_json::to_value(i.state).ok().and_then(|v| v.as_str().map(str::to_string)),
                &i.if_index.map(|x| x as i32),
                &at,
            ],
        )
        .await?;
    }

    // Neighbours: upsert what is advertised now; mark the others lost (kept for the topology).
    let upsert_nb = tx
        .prepare(
            "INSERT INTO link_neighbor (device_id, protocol, local_port_num, local_if_index, local_if_name, chassis_id,
                                        chassis_id_subtype, sys_name, port_id, port_id_subtype, port_descr, mgmt_addr,
                                        first_seen, last_seen, lost_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12::text::inet, $13, $13, NULL)
             ON CONFLICT (device_id, protocol, local_port_num, chassis_id, port_id) DO UPDATE SET
                 local_if_index = EXCLUDED.local_if_index, local_if_name = EXCLUDED.local_if_name,
                 chassis_id_subtype = EXCLUDED.chassis_id_subtype, sys_name = EXCLUDED.sys_name,
                 port_id_subtype = EXCLUDED.port_id_subtype, port_descr = EXCLUDED.port_descr,
                 mgmt_addr = EXCLUDED.mgmt_addr, last_seen = EXCLUDED.last_seen,
                 first_seen = CASE WHEN link_neighbor.lost_at IS NULL THEN link_neighbor.first_seen ELSE EXCLUDED.first_seen END,
                 lost_at = NULL",
        )
        .await?;
    let (mut protos, mut ports, mut chassis, mut port_ids) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for n in &poll.neighbors {
        let proto = format!("{:?}", n.protocol).to_lowercase();
        let port = n.local_port_num as i32;
        let params: [&(dyn ToSql + Sync); 13] = [
            &device_id,
            &proto,
            &port,
            &n.local_if_index.map(|x| x as i32),
            &n.local_if_name,
            &n.chassis_id,
            &n.chassis_id_subtype.map(|x| x as i32),
            &n.sys_name,
            &n.port_id,
            &n.port_id_subtype.map(|x| x as i32),
            &n.port_descr,
            &n.mgmt_addr.map(|a| a.to_string()),
            &at,
        ];
        tx.execute(&upsert_nb, &params).await?;
        protos.push(proto);
        ports.push(port);
        chassis.push(n.chassis_id.clone());
        port_ids.push(n.port_id.clone());
    }
    tx.execute(
        "UPDATE link_neighbor l SET lost_at = $6 WHERE device_id = $1 AND lost_at IS NULL
            AND NOT EXISTS (SELECT 1 FROM unnest($2::text[], $3::int[], $4::text[], $5::text[]) k(p, n, c, i)
                             WHERE l.protocol = k.p AND l.local_port_num = k.n AND l.chassis_id = k.c AND l.port_id = k.i)",
        &[&device_id, &protos, &ports, &chassis, &port_ids, &at],
    )
    .await?;
    tx.execute(
        "UPDATE device_state SET lldp_chassis_id = $2 WHERE device_id = $1",
        &[&device_id, &poll.local_chassis_id],
    )
    .await?;
    tx.commit().await?;
    Ok(RoutingChanges { recorded })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_reports_changed_appeared_and_vanished() {
        let old: HashMap<String, String> = [("a".into(), "established".into()), ("b".into(), "idle".into())].into();
        let new: BTreeMap<String, String> = [("a".into(), "idle".into()), ("c".into(), "active".into())].into();
        let d = diff(&old, &new);
        assert_eq!(
            d,
            vec![
                ("a".into(), Some("established".into()), Some("idle".into())),
                ("b".into(), Some("idle".into()), None),
                ("c".into(), None, Some("active".into())),
            ]
        );
    }
}
