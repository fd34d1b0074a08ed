//! What a notification means: snmpTrapOID.0 and its varbinds become a [`TrapKind`], and an SNMPv1
//! Trap-PDU is put into SNMPv2 notification form first (RFC 3584 §3.1). Pure functions.

use crate::routing::OspfNbrState;
use crate::snmp::{Oid, Value};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// sysUpTime.0, the first varbind of every SNMPv2 notification.
pub const SYS_UP_TIME_0: &[u32] = &[1, 3, 6, 1, 2, 1, 1, 3, 0];
/// snmpTrapOID.0, the second varbind: which notification this is.
pub const SNMP_TRAP_OID_0: &[u32] = &[1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0];
/// snmpTraps (SNMPv2-MIB): coldStart .1, warmStart .2, linkDown .3, linkUp .4, authenticationFailure .5,
/// egpNeighborLoss .6; an SNMPv1 generic-trap g maps to snmpTraps.(g+1).
const SNMP_TRAPS: &[u32] = &[1, 3, 6, 1, 6, 3, 1, 1, 5];
/// snmpTrapAddress.0 and snmpTrapEnterprise.0, appended to a translated v1 trap (RFC 3584 §3.1 (3)).
/// snmpTrapCommunity.0 is deliberately not: a community is a secret and never leaves the receiver.
const SNMP_TRAP_ADDRESS_0: &[u32] = &[1, 3, 6, 1, 6, 3, 18, 1, 3, 0];
const SNMP_TRAP_ENTERPRISE_0: &[u32] = &[1, 3, 6, 1, 6, 3, 1, 1, 4, 3, 0];

/// ifEntry and ifXEntry: a linkDown/linkUp carries ifIndex, ifAdminStatus, ifOperStatus (and often ifName) of
/// the interface, all indexed by ifIndex.
const IF_ENTRY: &[u32] = &[1, 3, 6, 1, 2, 1, 2, 2, 1];
const IF_X_ENTRY: &[u32] = &[1, 3, 6, 1, 2, 1, 31, 1, 1, 1];

/// BGP4-MIB (RFC 4273): bgpEstablishedNotification / bgpBackwardTransNotification under bgpNotification
/// (bgp.0, also what an RFC 1269 v1 trap maps to), and RFC 1657's bgpEstablished / bgpBackwardTransition under
/// bgpTraps (bgp.7), plus the v1 form of the latter (bgpTraps.0.n).
const BGP_ESTABLISHED: [&[u32]; 3] =
    [&[1, 3, 6, 1, 2, 1, 15, 0, 1], &[1, 3, 6, 1, 2, 1, 15, 7, 1], &[1, 3, 6, 1, 2, 1, 15, 7, 0, 1]];
const BGP_BACKWARD: [&[u32]; 3] =
    [&[1, 3, 6, 1, 2, 1, 15, 0, 2], &[1, 3, 6, 1, 2, 1, 15, 7, 2], &[1, 3, 6, 1, 2, 1, 15, 7, 0, 2]];
/// bgpPeerEntry, indexed by the peer's IPv4 address; column 7 is bgpPeerRemoteAddr.
const BGP_PEER_ENTRY: &[u32] = &[1, 3, 6, 1, 2, 1, 15, 3, 1];
/// BGP4V2-MIB (draft-ietf-idr-bgp4-mibv2) at both roots FRRouting has served it from: experimental
/// 1.3.6.1.3.5.1 and 1.3.6.1.4.1.7336.4.2.1. Notifications are root.0.1 (established) and root.0.2
/// (backward transition); the peer tables are root.1.2/.3/.4, entry .1, column 5 bgp4V2PeerRemoteAddr.
const BGP4V2_ROOTS: [&[u32]; 2] = [&[1, 3, 6, 1, 3, 5, 1], &[1, 3, 6, 1, 4, 1, 7336, 4, 2, 1]];

/// ospfNbrStateChange (OSPF-TRAP-MIB, RFC 4750) and the neighbour table's ospfNbrRtrId / ospfNbrState.
const OSPF_NBR_STATE_CHANGE: &[u32] = &[1, 3, 6, 1, 2, 1, 14, 16, 2, 2];
const OSPF_NBR_RTR_ID: &[u32] = &[1, 3, 6, 1, 2, 1, 14, 10, 1, 3];
const OSPF_NBR_STATE: &[u32] = &[1, 3, 6, 1, 2, 1, 14, 10, 1, 6];

/// A notification as netwarden understands it. Fields are `None` when the sender left out the varbind that
/// carries them (the MIBs require them; not every agent sends them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TrapKind {
    LinkDown {
        if_index: Option<u32>,
    },
    LinkUp {
        if_index: Option<u32>,
    },
    ColdStart,
    WarmStart,
    /// A BGP session left Established (or went from a higher to a lower state).
    BgpBackwardTransition {
        peer: Option<IpAddr>,
    },
    BgpEstablished {
        peer: Option<IpAddr>,
    },
    /// An OSPF neighbour changed state; `router_id` is the neighbour's router id.
    OspfNbrStateChange {
        router_id: Option<Ipv4Addr>,
        state: Option<OspfNbrState>,
    },
    AuthenticationFailure,
    /// A notification netwarden does not interpret (counted and kept, not dropped).
    Other {
        trap_oid: Oid,
    },
}

impl TrapKind {
    /// A short, stable word for metrics, logs, the table and the API.
    pub fn label(&self) -> &'static str {
        match self {
            TrapKind::LinkDown { .. } => "link_down",
            TrapKind::LinkUp { .. } => "link_up",
            TrapKind::ColdStart => "cold_start",
            TrapKind::WarmStart => "warm_start",
            TrapKind::BgpBackwardTransition { .. } => "bgp_backward_transition",
            TrapKind::BgpEstablished { .. } => "bgp_established",
            TrapKind::OspfNbrStateChange { .. } => "ospf_nbr_state_change",
            TrapKind::AuthenticationFailure => "authentication_failure",
            TrapKind::Other { .. } => "other",
        }
    }

    /// What the kind carries, as JSON for the table and the API (`{}` when nothing).
    pub fn details(&self) -> serde_json::Value {
        use serde_json::json;
        match self {
            TrapKind::LinkDown { if_index } | TrapKind::LinkUp { if_index } => json!({ "if_index": if_index }),
            TrapKind::BgpBackwardTransition { peer } | TrapKind::BgpEstablished { peer } => {
                json!({ "peer": peer.map(|p| p.to_string()) })
            }
            TrapKind::OspfNbrStateChange { router_id, state } => {
                json!({ "router_id": router_id.map(|r| r.to_string()), "state": state })
            }
            TrapKind::ColdStart | TrapKind::WarmStart | TrapKind::AuthenticationFailure | TrapKind::Other { .. } => {
                json!({})
            }
        }
    }
}

/// Classifies a notification in SNMPv2 form by its snmpTrapOID.0 value.
pub fn classify(trap_oid: &Oid, varbinds: &[(Oid, Value)]) -> TrapKind {
    let arcs = trap_oid.arcs();
    if let Some(generic) = arcs.strip_prefix(SNMP_TRAPS) {
        match generic {
            [1] => return TrapKind::ColdStart,
            [2] => return TrapKind::WarmStart,
            [3] => return TrapKind::LinkDown { if_index: if_index(varbinds) },
            [4] => return TrapKind::LinkUp { if_index: if_index(varbinds) },
            [5] => return TrapKind::AuthenticationFailure,
            _ => {}
        }
    }
    if BGP_ESTABLISHED.contains(&arcs) || is_bgp4v2_notification(arcs, 1) {
        return TrapKind::BgpEstablished { peer: bgp_peer(varbinds) };
    }
    if BGP_BACKWARD.contains(&arcs) || is_bgp4v2_notification(arcs, 2) {
        return TrapKind::BgpBackwardTransition { peer: bgp_peer(varbinds) };
    }
    if arcs == OSPF_NBR_STATE_CHANGE {
        let mut router_id = None;
        let mut state = None;
        for (oid, v) in varbinds {
            if oid.arcs().starts_with(OSPF_NBR_RTR_ID)
                && let Value::IpAddress(a) = v
            {
                router_id = Some(Ipv4Addr::from(*a));
            } else if oid.arcs().starts_with(OSPF_NBR_STATE)
                && let Some(s) = v.as_i64()
            {
                state = Some(OspfNbrState::from_mib(s));
            }
        }
        return TrapKind::OspfNbrStateChange { router_id, state };
    }
    TrapKind::Other { trap_oid: trap_oid.clone() }
}

fn is_bgp4v2_notification(arcs: &[u32], n: u32) -> bool {
    BGP4V2_ROOTS.iter().any(|root| arcs.strip_prefix(*root) == Some(&[0, n][..]))
}

/// The interface of a linkDown/linkUp: ifIndex's value, else the index of any ifEntry/ifXEntry column.
fn if_index(varbinds: &[(Oid, Value)]) -> Option<u32> {
    let mut from_index = None;
    for (oid, v) in varbinds {
        let Some(rest) = oid.arcs().strip_prefix(IF_ENTRY).or_else(|| oid.arcs().strip_prefix(IF_X_ENTRY)) else {
            continue;
        };
        if let [column, index] = rest {
            if *column == 1
                && oid.arcs().starts_with(IF_ENTRY)
                && let Some(i) = v.as_i64().and_then(|i| u32::try_from(i).ok())
            {
                return Some(i);
            }
            from_index.get_or_insert(*index);
        }
    }
    from_index
}

/// The peer of a BGP notification: bgpPeerRemoteAddr's value, else the peer table index (BGP4-MIB's IPv4
/// address, or BGP4V2's InetAddressType + InetAddress in either layout FRRouting has used).
fn bgp_peer(varbinds: &[(Oid, Value)]) -> Option<IpAddr> {
    let mut from_index = None;
    for (oid, v) in varbinds {
        let arcs = oid.arcs();
        if let Some([column, a, b, c, d]) = arcs.strip_prefix(BGP_PEER_ENTRY) {
            if *column == 7
                && let Value::IpAddress(ip) = v
            {
                return Some(IpAddr::from(*ip));
            }
            if [a, b, c, d].iter().all(|x| **x <= 255) {
                from_index.get_or_insert(IpAddr::from([*a as u8, *b as u8, *c as u8, *d as u8]));
            }
            continue;
        }
        for root in BGP4V2_ROOTS {
            // root.1.{2,3,4}.1.column.index...
            let Some([1, table, 1, column, index @ ..]) = arcs.strip_prefix(root) else { continue };
            if !(2..=4).contains(table) {
                continue;
            }
            if *table == 2
                && *column == 5
                && let Value::OctetString(b) = v
            {
                match b.len() {
                    4 => return Some(IpAddr::from(<[u8; 4]>::try_from(&b[..]).ok()?)),
                    16 => return Some(IpAddr::from(<[u8; 16]>::try_from(&b[..]).ok()?)),
                    _ => {}
                }
            }
            if from_index.is_none() {
                from_index = inet_address_at_end(index);
            }
        }
    }
    from_index
}

/// An InetAddress at the end of a table index, preceded by its InetAddressType (ipv4(1), ipv6(2)) and
/// optionally by its length: `… type a b c d` or `… type 4 a b c d` (and the IPv6 forms with 16 octets).
fn inet_address_at_end(index: &[u32]) -> Option<IpAddr> {
    let octets = |s: &[u32]| -> Option<Vec<u8>> { s.iter().map(|&x| u8::try_from(x).ok()).collect() };
    let typed = |len: usize, ty: u32| -> Option<Vec<u8>> {
        let n = index.len();
        if n < len + 1 {
            return None;
        }
        let addr = &index[n - len..];
        let before = &index[..n - len];
        let ok = before.last() == Some(&ty)
            || (before.len() >= 2 && before[before.len() - 1] == len as u32 && before[before.len() - 2] == ty);
        if ok { octets(addr) } else { None }
    };
    if let Some(b) = typed(16, 2) {
        return <[u8; 16]>::try_from(b).ok().map(|a| IpAddr::V6(Ipv6Addr::from(a)));
    }
    typed(4, 1).and_then(|b| <[u8; 4]>::try_from(b).ok()).map(IpAddr::from)
}

/// snmpTrapOID.0 for an SNMPv1 trap (RFC 3584 §3.1 (2)): snmpTraps.(generic+1) for the generic traps, else
/// `enterprise.0.specific`. `None` for a generic-trap outside 0..=6 or a negative specific-trap.
pub fn v1_trap_oid(enterprise: &Oid, generic: i64, specific: i64) -> Option<Oid> {
    match generic {
        0..=5 => Some(Oid(SNMP_TRAPS.to_vec()).child(&[generic as u32 + 1])),
        6 => Some(enterprise.child(&[0, u32::try_from(specific).ok()?])),
        _ => None,
    }
}

/// The varbinds of an SNMPv1 trap in SNMPv2 form: sysUpTime.0 and snmpTrapOID.0 first, the trap's own
/// varbinds, then snmpTrapAddress.0 (the agent-addr field) and snmpTrapEnterprise.0.
pub fn v1_to_v2_varbinds(
    trap_oid: &Oid,
    timestamp: u32,
    agent_addr: Option<Ipv4Addr>,
    enterprise: &Oid,
    varbinds: Vec<(Oid, Value)>,
) -> Vec<(Oid, Value)> {
    let mut out = Vec::with_capacity(varbinds.len() + 4);
    out.push((Oid(SYS_UP_TIME_0.to_vec()), Value::TimeTicks(timestamp)));
    out.push((Oid(SNMP_TRAP_OID_0.to_vec()), Value::ObjectIdentifier(trap_oid.clone())));
    out.extend(varbinds);
    if let Some(a) = agent_addr {
        out.push((Oid(SNMP_TRAP_ADDRESS_0.to_vec()), Value::IpAddress(a.octets())));
    }
    out.push((Oid(SNMP_TRAP_ENTERPRISE_0.to_vec()), Value::ObjectIdentifier(enterprise.clone())));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oid(s: &str) -> Oid {
        s.parse().unwrap()
    }

    fn check(trap_oid: &str, varbinds: &[(&str, Value)], expected: TrapKind) {
        let vbs: Vec<(Oid, Value)> = varbinds.iter().map(|(o, v)| (oid(o), v.clone())).collect();
        assert_eq!(classify(&oid(trap_oid), &vbs), expected, "{trap_oid}");
    }

    #[test]
    fn generic_notifications() {
        check("1.3.6.1.6.3.1.1.5.1", &[], TrapKind::ColdStart);
        check("1.3.6.1.6.3.1.1.5.2", &[], TrapKind::WarmStart);
        check("1.3.6.1.6.3.1.1.5.5", &[], TrapKind::AuthenticationFailure);
        check(
            "1.3.6.1.6.3.1.1.5.6",
            &[],
            TrapKind::Other { trap_oid: oid("1.3.6.1.6.3.1.1.5.6") }, // egpNeighborLoss: nothing to do with it
        );
    }

    #[test]
    fn link_traps_find_the_interface() {
        let by_value = [("1.3.6.1.2.1.2.2.1.1.7", Value::Integer(7)), ("1.3.6.1.2.1.2.2.1.8.7", Value::Integer(2))];
        check("1.3.6.1.6.3.1.1.5.3", &by_value, TrapKind::LinkDown { if_index: Some(7) });
        // Only ifOperStatus and ifName: the index of the column instance.
        let by_index = [("1.3.6.1.2.1.2.2.1.8.12", Value::Integer(1)), ("1.3.6.1.2.1.31.1.1.1.1.12", Value::Null)];
        check("1.3.6.1.6.3.1.1.5.4", &by_index, TrapKind::LinkUp { if_index: Some(12) });
        check("1.3.6.1.6.3.1.1.5.3", &[], TrapKind::LinkDown { if_index: None });
    }

    #[test]
    fn bgp_notifications_in_every_form() {
        let peer: IpAddr = "192.0.2.1".parse().unwrap();
        let vbs = [("1.3.6.1.2.1.15.3.1.2.192.0.2.1", Value::Integer(1))];
        for trap in ["1.3.6.1.2.1.15.0.2", "1.3.6.1.2.1.15.7.2", "1.3.6.1.2.1.15.7.0.2"] {
            check(trap, &vbs, TrapKind::BgpBackwardTransition { peer: Some(peer) });
        }
        let vbs = [("1.3.6.1.2.1.15.3.1.7.198.51.100.9", Value::IpAddress([198, 51, 100, 9]))];
        check("1.3.6.1.2.1.15.0.1", &vbs, TrapKind::BgpEstablished { peer: Some("198.51.100.9".parse().unwrap()) });
        // BGP4V2 as FRR 9.1 indexes it (instance.type.address) and as 8.5 did (type.length.address), IPv6 too.
        let v4 = [("1.3.6.1.3.5.1.1.2.1.13.1.1.192.0.2.3", Value::Integer(1))];
        check("1.3.6.1.3.5.1.0.2", &v4, TrapKind::BgpBackwardTransition { peer: Some("192.0.2.3".parse().unwrap()) });
        let v4_len = [("1.3.6.1.4.1.7336.4.2.1.1.2.1.13.1.4.192.0.2.4", Value::Integer(6))];
        check(
            "1.3.6.1.4.1.7336.4.2.1.0.1",
            &v4_len,
            TrapKind::BgpEstablished { peer: Some("192.0.2.4".parse().unwrap()) },
        );
        let v6 = [("1.3.6.1.3.5.1.1.2.1.13.1.2.32.1.13.184.0.0.0.0.0.0.0.0.0.0.0.1", Value::Integer(1))];
        check("1.3.6.1.3.5.1.0.2", &v6, TrapKind::BgpBackwardTransition { peer: Some("2001:db8::1".parse().unwrap()) });
        check("1.3.6.1.2.1.15.0.2", &[], TrapKind::BgpBackwardTransition { peer: None });
    }

    #[test]
    fn details_for_the_table() {
        assert_eq!(TrapKind::LinkDown { if_index: Some(3) }.details().to_string(), r#"{"if_index":3}"#);
        let ospf = TrapKind::OspfNbrStateChange {
            router_id: Some(Ipv4Addr::new(10, 0, 0, 2)),
            state: Some(OspfNbrState::Full),
        };
        assert_eq!(ospf.details().to_string(), r#"{"router_id":"10.0.0.2","state":"full"}"#);
        assert_eq!(TrapKind::ColdStart.details().to_string(), "{}");
    }

    #[test]
    fn ospf_neighbour_state_change() {
        let vbs = [
            ("1.3.6.1.2.1.14.1.1.0", Value::IpAddress([10, 0, 0, 1])),
            ("1.3.6.1.2.1.14.10.1.3.10.1.1.2.0", Value::IpAddress([10, 0, 0, 2])),
            ("1.3.6.1.2.1.14.10.1.6.10.1.1.2.0", Value::Integer(8)),
        ];
        check(
            "1.3.6.1.2.1.14.16.2.2",
            &vbs,
            TrapKind::OspfNbrStateChange {
                router_id: Some(Ipv4Addr::new(10, 0, 0, 2)),
                state: Some(OspfNbrState::Full),
            },
        );
    }

    #[test]
    fn v1_traps_map_to_v2_notification_oids() {
        let ent = oid("1.3.6.1.4.1.8072.2.3.1");
        let cases = [(0, 0, "1.3.6.1.6.3.1.1.5.1"), (2, 0, "1.3.6.1.6.3.1.1.5.3"), (4, 9, "1.3.6.1.6.3.1.1.5.5")];
        for (generic, specific, want) in cases {
            assert_eq!(v1_trap_oid(&ent, generic, specific), Some(oid(want)), "generic {generic}");
        }
        assert_eq!(v1_trap_oid(&oid("1.3.6.1.2.1.15"), 6, 2), Some(oid("1.3.6.1.2.1.15.0.2")));
        assert_eq!(v1_trap_oid(&ent, 7, 0), None);
        assert_eq!(v1_trap_oid(&ent, 6, -1), None);
        let vbs = v1_to_v2_varbinds(
            &oid("1.3.6.1.6.3.1.1.5.3"),
            42,
            Some(Ipv4Addr::new(192, 0, 2, 7)),
            &ent,
            vec![(oid("1.3.6.1.2.1.2.2.1.1.2"), Value::Integer(2))],
        );
        let text: Vec<String> = vbs.iter().map(|(o, v)| format!("{o} = {v:?}")).collect();
        assert_eq!(
            text,
            [
                "1.3.6.1.2.1.1.3.0 = Timeticks: (42)",
                "1.3.6.1.6.3.1.1.4.1.0 = OID: 1.3.6.1.6.3.1.1.5.3",
                "1.3.6.1.2.1.2.2.1.1.2 = INTEGER: 2",
                "1.3.6.1.6.3.18.1.3.0 = IpAddress: 192.0.2.7",
                "1.3.6.1.6.3.1.1.4.3.0 = OID: 1.3.6.1.4.1.8072.2.3.1",
            ]
        );
    }
}
