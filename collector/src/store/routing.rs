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

/// One device's routing poll, as the state writer hands it over.
pub struct RoutingInput<'a> {
    pub device_id: i64,
    pub at: DateTime<Utc>,
    pub poll: &'a RoutingPoll,
}

/// What the tables held for one device before this batch, keyed like the history rows.
#[derive(Default)]
struct Current {
    bgp: HashMap<String, String>,
    ospf: HashMap<String, String>,
    links: HashMap<String, String>,
    ospf_interfaces: bool,
}

/// Column arrays of one multi-row statement, pushed row by row.
#[derive(Default)]
struct BgpRows {
    device: Vec<i64>,
    peer: Vec<String>,
    remote_as: Vec<i64>,
    local_addr: Vec<Option<String>>,
    local_as: Vec<Option<i64>>,
    admin: Vec<Option<String>>,
    state: Vec<String>,
    established: Vec<Option<i64>>,
    transitions: Vec<Option<i64>>,
    in_updates: Vec<Option<i64>>,
    out_updates: Vec<Option<i64>>,
    last_error: Vec<Option<String>>,
    afi: Vec<String>,
    received: Vec<Option<i64>>,
    accepted: Vec<Option<i64>>,
    source: Vec<String>,
    at: Vec<DateTime<Utc>>,
}

#[derive(Default)]
struct OspfRows {
    device: Vec<i64>,
    addr: Vec<String>,
    idx: Vec<i32>,
    router_id: Vec<String>,
    state: Vec<String>,
    events: Vec<Option<i64>>,
    priority: Vec<Option<i32>>,
    at: Vec<DateTime<Utc>>,
}

#[derive(Default)]
struct OspfIfRows {
    device: Vec<i64>,
    ip: Vec<String>,
    addressless: Vec<i32>,
    area: Vec<String>,
    state: Vec<Option<String>>,
    if_index: Vec<Option<i32>>,
    at: Vec<DateTime<Utc>>,
}

#[derive(Default)]
struct LinkRows {
    device: Vec<i64>,
    proto: Vec<String>,
    port: Vec<i32>,
    if_index: Vec<Option<i32>>,
    if_name: Vec<Option<String>>,
    chassis: Vec<String>,
    chassis_subtype: Vec<Option<i32>>,
    sys_name: Vec<Option<String>>,
    port_id: Vec<String>,
    port_subtype: Vec<Option<i32>>,
    port_descr: Vec<Option<String>>,
    mgmt: Vec<Option<String>>,
    at: Vec<DateTime<Utc>>,
}

#[derive(Default)]
struct ChangeRows {
    at: Vec<DateTime<Utc>>,
    device: Vec<i64>,
    kind: Vec<&'static str>,
    key: Vec<String>,
    old: Vec<Option<String>>,
    new: Vec<Option<String>>,
    detail: Vec<Option<String>>,
}

/// Replaces the routing state of every device in `polls` with its poll's and appends the changes to
/// history, in a fixed number of statements whatever the number of devices (one read of the
/// current state, then one statement per table that has anything to change). A device appears at
/// most once in `polls`. Devices with no routing state before or now cost nothing past the read.
pub async fn record_routing_batch(
    tx: &deadpool_postgres::Transaction<'_>,
    polls: &[RoutingInput<'_>],
) -> Result<RoutingChanges, tokio_postgres::Error> {
    if polls.is_empty() {
        return Ok(RoutingChanges::default());
    }
    let devices: Vec<i64> = polls.iter().map(|p| p.device_id).collect();
    // Old states of every device at once, keyed like the history rows. The neighbours of a port are
    // joined in byte order, as the new ones are below.
    let read = tx
        .prepare_cached(
            "SELECT 0, device_id, CASE WHEN afi_safi = '' THEN host(peer_addr) ELSE host(peer_addr) || ' ' || afi_safi END, state
               FROM bgp_peer WHERE device_id = ANY($1)
             UNION ALL
             SELECT 1, device_id, CASE WHEN addressless_index = 0 THEN host(neighbor_addr) ELSE host(neighbor_addr) || '%' || addressless_index END, state
               FROM ospf_neighbor WHERE device_id = ANY($1)
             UNION ALL
             SELECT 2, device_id, k, string_agg(v, ', ' ORDER BY v COLLATE \"C\")
               FROM (SELECT device_id, coalesce(local_if_name, 'port ' || local_port_num) AS k,
                            coalesce(nullif(sys_name, ''), chassis_id) || ':' || port_id AS v
                       FROM link_neighbor WHERE device_id = ANY($1) AND lost_at IS NULL) l
              GROUP BY device_id, k
             UNION ALL
             SELECT DISTINCT 3, device_id, '', '' FROM ospf_interface WHERE device_id = ANY($1)",
        )
        .await?;
    let mut current: HashMap<i64, Current> = HashMap::new();
    for r in tx.query(&read, &[&devices]).await? {
        let c = current.entry(r.get(1)).or_default();
        let (k, v): (String, String) = (r.get(2), r.get(3));
        match r.get::<_, i32>(0) {
            0 => {
                c.bgp.insert(k, v);
            }
            1 => {
                c.ospf.insert(k, v);
            }
            2 => {
                c.links.insert(k, v);
            }
            _ => c.ospf_interfaces = true,
        }
    }

    let (mut bgp, mut ospf, mut ospf_if, mut links, mut changes) =
        (BgpRows::default(), OspfRows::default(), OspfIfRows::default(), LinkRows::default(), ChangeRows::default());
    // Devices whose old rows are not all in the new poll (their leftovers are deleted or marked lost).
    let (mut bgp_prune, mut ospf_prune, mut ospf_if_replace, mut links_prune) =
        (Vec::new(), Vec::new(), Vec::new(), (Vec::new(), Vec::new()));
    for input in polls {
        let (device_id, at, poll) = (input.device_id, input.at, input.poll);
        let empty = Current::default();
        let old = current.get(&device_id).unwrap_or(&empty);
        let new_bgp: BTreeMap<String, String> =
            poll.bgp.iter().map(|p| (bgp_key(p), bgp_state_name(p.state))).collect();
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
        for (kind, diffs) in [
            ("bgp_peer", diff(&old.bgp, &new_bgp)),
            ("ospf_neighbor", diff(&old.ospf, &new_ospf)),
            ("link_neighbor", diff(&old.links, &new_links)),
        ] {
            for (key, old_state, new_state) in diffs {
                let detail = match kind {
                    "bgp_peer" => poll.bgp.iter().find(|p| bgp_key(p) == key).map(|p| {
                        serde_json::json!({"remote_as": p.remote_as, "last_error": p.last_error, "fsm_established_transitions": p.fsm_established_transitions})
                            .to_string()
                    }),
                    _ => None,
                };
                changes.at.push(at);
                changes.device.push(device_id);
                changes.kind.push(kind);
                changes.key.push(key);
                changes.old.push(old_state);
                changes.new.push(new_state);
                changes.detail.push(detail);
            }
        }
        if old.bgp.keys().any(|k| !new_bgp.contains_key(k)) {
            bgp_prune.push(device_id);
        }
        if old.ospf.keys().any(|k| !new_ospf.contains_key(k)) {
            ospf_prune.push(device_id);
        }
        if old.ospf_interfaces || !poll.ospf_interfaces.is_empty() {
            ospf_if_replace.push(device_id);
        }
        if !old.links.is_empty() {
            links_prune.0.push(device_id);
            links_prune.1.push(at);
        }

        // Within one statement a row can be upserted once: the last of duplicate keys wins, as
        // it did when each row was its own statement.
        let mut seen = std::collections::HashSet::new();
        for p in poll.bgp.iter().rev() {
            let afi = p.afi_safi.clone().unwrap_or_default();
            if !seen.insert((p.peer_addr, afi.clone())) {
                continue;
            }
            bgp.device.push(device_id);
            bgp.peer.push(p.peer_addr.to_string());
            bgp.remote_as.push(i64::from(p.remote_as));
            bgp.local_addr.push(p.local_addr.map(|a| a.to_string()));
            bgp.local_as.push(p.local_as.map(i64::from));
            bgp.admin.push(p.admin_status.map(|a| format!("{a:?}").to_lowercase()));
            bgp.state.push(bgp_state_name(p.state));
            bgp.established.push(p.established_time_s.map(i64::from));
            bgp.transitions.push(p.fsm_established_transitions.map(i64::from));
            bgp.in_updates.push(p.in_updates.map(i64::from));
            bgp.out_updates.push(p.out_updates.map(i64::from));
            bgp.last_error.push(p.last_error.map(|(c, s)| format!("{c}/{s}")));
            bgp.afi.push(afi);
            bgp.received.push(p.prefixes_received.map(|v| v.min(i64::MAX as u64) as i64));
            bgp.accepted.push(p.prefixes_accepted.map(|v| v.min(i64::MAX as u64) as i64));
            bgp.source.push(p.source.clone());
            bgp.at.push(at);
        }
        let mut seen = std::collections::HashSet::new();
        for n in poll.ospf_neighbors.iter().rev() {
            if !seen.insert((n.addr, n.addressless_index)) {
                continue;
            }
            ospf.device.push(device_id);
            ospf.addr.push(n.addr.to_string());
            ospf.idx.push(n.addressless_index as i32);
            ospf.router_id.push(n.router_id.to_string());
            ospf.state.push(ospf_state_name(n));
            ospf.events.push(n.events.map(i64::from));
            ospf.priority.push(n.priority);
            ospf.at.push(at);
        }
        for i in &poll.ospf_interfaces {
            ospf_if.device.push(device_id);
            ospf_if.ip.push(i.ip.to_string());
            ospf_if.addressless.push(i.addressless_if as i32);
            ospf_if.area.push(i.area_id.to_string());
            ospf_if.state.push(serde_json::to_value(i.state).ok().and_then(|v| v.as_str().map(str::to_string)));
            ospf_if.if_index.push(i.if_index.map(|x| x as i32));
            ospf_if.at.push(at);
        }
        let mut seen = std::collections::HashSet::new();
        for n in poll.neighbors.iter().rev() {
            let proto = format!("{:?}", n.protocol).to_lowercase();
            let port = n.local_port_num as i32;
            if !seen.insert((proto.clone(), port, n.chassis_id.clone(), n.port_id.clone())) {
                continue;
            }
            links.device.push(device_id);
            links.proto.push(proto);
            links.port.push(port);
            links.if_index.push(n.local_if_index.map(|x| x as i32));
            links.if_name.push(n.local_if_name.clone());
            links.chassis.push(n.chassis_id.clone());
            links.chassis_subtype.push(n.chassis_id_subtype.map(|x| x as i32));
            links.sys_name.push(n.sys_name.clone());
            links.port_id.push(n.port_id.clone());
            links.port_subtype.push(n.port_id_subtype.map(|x| x as i32));
            links.port_descr.push(n.port_descr.clone());
            links.mgmt.push(n.mgmt_addr.map(|a| a.to_string()));
            links.at.push(at);
        }
    }

    let recorded = changes.key.len();
    if recorded > 0 {
        let st = tx
            .prepare_cached(
                "INSERT INTO state_change (time, device_id, kind, key, old_state, new_state, detail)
                 SELECT t, d, k, key, o, n, j::jsonb
                   FROM unnest($1::timestamptz[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
                        AS c(t, d, k, key, o, n, j)",
            )
            .await?;
        tx.execute(
            &st,
            &[&changes.at, &changes.device, &changes.kind, &changes.key, &changes.old, &changes.new, &changes.detail],
        )
        .await?;
    }

    // Current state: keep state_since for unchanged states.
    if !bgp.device.is_empty() {
        let st = tx
            .prepare_cached(
                "INSERT INTO bgp_peer (device_id, peer_addr, remote_as, local_addr, local_as, admin_status, state,
                                       established_time_s, fsm_established_transitions, in_updates, out_updates,
                                       last_error, afi_safi, prefixes_received, prefixes_accepted, source, state_since, last_seen)
                 SELECT d, p::inet, ras, la::inet, las, adm, st, est, tr, iu, ou, le, afi, rcv, acc, src, t, t
                   FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::text[], $5::bigint[], $6::text[], $7::text[],
                               $8::bigint[], $9::bigint[], $10::bigint[], $11::bigint[], $12::text[], $13::text[],
                               $14::bigint[], $15::bigint[], $16::text[], $17::timestamptz[])
                        AS b(d, p, ras, la, las, adm, st, est, tr, iu, ou, le, afi, rcv, acc, src, t)
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
        let params: [&(dyn ToSql + Sync); 17] = [
            &bgp.device,
            &bgp.peer,
            &bgp.remote_as,
            &bgp.local_addr,
            &bgp.local_as,
            &bgp.admin,
            &bgp.state,
            &bgp.established,
            &bgp.transitions,
            &bgp.in_updates,
            &bgp.out_updates,
            &bgp.last_error,
            &bgp.afi,
            &bgp.received,
            &bgp.accepted,
            &bgp.source,
            &bgp.at,
        ];
        tx.execute(&st, &params).await?;
    }
    if !bgp_prune.is_empty() {
        let st = tx
            .prepare_cached(
                "DELETE FROM bgp_peer b WHERE device_id = ANY($1)
                    AND NOT EXISTS (SELECT 1 FROM unnest($2::bigint[], $3::text[], $4::text[]) k(d, a, f)
                                     WHERE b.device_id = k.d AND b.peer_addr = k.a::inet AND b.afi_safi = k.f)",
            )
            .await?;
        tx.execute(&st, &[&bgp_prune, &bgp.device, &bgp.peer, &bgp.afi]).await?;
    }

    if !ospf.device.is_empty() {
        let st = tx
            .prepare_cached(
                "INSERT INTO ospf_neighbor (device_id, neighbor_addr, addressless_index, router_id, state, events, priority, state_since, last_seen)
                 SELECT d, a::inet, i, r::inet, st, ev, pr, t, t
                   FROM unnest($1::bigint[], $2::text[], $3::int[], $4::text[], $5::text[], $6::bigint[], $7::int[], $8::timestamptz[])
                        AS o(d, a, i, r, st, ev, pr, t)
                 ON CONFLICT (device_id, neighbor_addr, addressless_index) DO UPDATE SET
                     router_id = EXCLUDED.router_id,
                     state_since = CASE WHEN ospf_neighbor.state = EXCLUDED.state THEN ospf_neighbor.state_since ELSE EXCLUDED.state_since END,
                     state = EXCLUDED.state, events = EXCLUDED.events, priority = EXCLUDED.priority, last_seen = EXCLUDED.last_seen",
            )
            .await?;
        tx.execute(
            &st,
            &[
                &ospf.device,
                &ospf.addr,
                &ospf.idx,
                &ospf.router_id,
                &ospf.state,
                &ospf.events,
                &ospf.priority,
                &ospf.at,
            ],
        )
        .await?;
    }
    if !ospf_prune.is_empty() {
        let st = tx
            .prepare_cached(
                "DELETE FROM ospf_neighbor o WHERE device_id = ANY($1)
                    AND NOT EXISTS (SELECT 1 FROM unnest($2::bigint[], $3::text[], $4::int[]) k(d, a, i)
                                     WHERE o.device_id = k.d AND o.neighbor_addr = k.a::inet AND o.addressless_index = k.i)",
            )
            .await?;
        tx.execute(&st, &[&ospf_prune, &ospf.device, &ospf.addr, &ospf.idx]).await?;
    }

    if !ospf_if_replace.is_empty() {
        let st = tx.prepare_cached("DELETE FROM ospf_interface WHERE device_id = ANY($1)").await?;
        tx.execute(&st, &[&ospf_if_replace]).await?;
    }
    if !ospf_if.device.is_empty() {
        let st = tx
            .prepare_cached(
                "INSERT INTO ospf_interface (device_id, ip, addressless_if, area_id, state, if_index, last_seen)
                 SELECT d, ip::inet, al, ar::inet, st, ix, t
                   FROM unnest($1::bigint[], $2::text[], $3::int[], $4::text[], $5::text[], $6::int[], $7::timestamptz[])
                        AS i(d, ip, al, ar, st, ix, t)
                 ON CONFLICT DO NOTHING",
            )
            .await?;
        tx.execute(
            &st,
            &[
                &ospf_if.device,
                &ospf_if.ip,
                &ospf_if.addressless,
                &ospf_if.area,
                &ospf_if.state,
                &ospf_if.if_index,
                &ospf_if.at,
            ],
        )
        .await?;
    }

    // Neighbours: upsert what is advertised now; mark the others lost (kept for the topology).
    if !links.device.is_empty() {
        let st = tx
            .prepare_cached(
                "INSERT INTO link_neighbor (device_id, protocol, local_port_num, local_if_index, local_if_name, chassis_id,
                                            chassis_id_subtype, sys_name, port_id, port_id_subtype, port_descr, mgmt_addr,
                                            first_seen, last_seen, lost_at)
                 SELECT d, pr, pn, ix, nm, ch, chs, sn, pid, pst, pd, mg::inet, t, t, NULL
                   FROM unnest($1::bigint[], $2::text[], $3::int[], $4::int[], $5::text[], $6::text[], $7::int[], $8::text[],
                               $9::text[], $10::int[], $11::text[], $12::text[], $13::timestamptz[])
                        AS n(d, pr, pn, ix, nm, ch, chs, sn, pid, pst, pd, mg, t)
                 ON CONFLICT (device_id, protocol, local_port_num, chassis_id, port_id) DO UPDATE SET
                     local_if_index = EXCLUDED.local_if_index, local_if_name = EXCLUDED.local_if_name,
                     chassis_id_subtype = EXCLUDED.chassis_id_subtype, sys_name = EXCLUDED.sys_name,
                     port_id_subtype = EXCLUDED.port_id_subtype, port_descr = EXCLUDED.port_descr,
                     mgmt_addr = EXCLUDED.mgmt_addr, last_seen = EXCLUDED.last_seen,
                     first_seen = CASE WHEN link_neighbor.lost_at IS NULL THEN link_neighbor.first_seen ELSE EXCLUDED.first_seen END,
                     lost_at = NULL",
            )
            .await?;
        let params: [&(dyn ToSql + Sync); 13] = [
            &links.device,
            &links.proto,
            &links.port,
            &links.if_index,
            &links.if_name,
            &links.chassis,
            &links.chassis_subtype,
            &links.sys_name,
            &links.port_id,
            &links.port_subtype,
            &links.port_descr,
            &links.mgmt,
            &links.at,
        ];
        tx.execute(&st, &params).await?;
    }
    if !links_prune.0.is_empty() {
        let st = tx
            .prepare_cached(
                "UPDATE link_neighbor l SET lost_at = p.t
                   FROM unnest($1::bigint[], $2::timestamptz[]) AS p(d, t)
                  WHERE l.device_id = p.d AND l.lost_at IS NULL
                    AND NOT EXISTS (SELECT 1 FROM unnest($3::bigint[], $4::text[], $5::int[], $6::text[], $7::text[]) k(d, p, n, c, i)
                                     WHERE k.d = l.device_id AND l.protocol = k.p AND l.local_port_num = k.n
                                       AND l.chassis_id = k.c AND l.port_id = k.i)",
            )
            .await?;
        tx.execute(
            &st,
            &[&links_prune.0, &links_prune.1, &links.device, &links.proto, &links.port, &links.chassis, &links.port_id],
        )
        .await?;
    }

    let chassis: Vec<Option<String>> = polls.iter().map(|p| p.poll.local_chassis_id.clone()).collect();
    let st = tx
        .prepare_cached(
            "UPDATE device_state s SET lldp_chassis_id = c.id
               FROM unnest($1::bigint[], $2::text[]) AS c(d, id)
              WHERE s.device_id = c.d AND s.lldp_chassis_id IS DISTINCT FROM c.id",
        )
        .await?;
    tx.execute(&st, &[&devices, &chassis]).await?;
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
