//! OSPF-MIB (RFC 4750): neighbours, OSPF interfaces and the router ID, tied to ifIndex through IP-MIB's
//! ipAddrTable.

use super::{Row, Varbinds, ipv4_from_arcs, issue, want_int, want_ipv4, want_u32};
use crate::ifmib::DecodeIssue;
use std::collections::BTreeMap;
use std::net::Ipv4Addr;

pub const OSPF_ROUTER_ID: &str = "1.3.6.1.2.1.14.1.1";
const IF_AREA_ID: &str = "1.3.6.1.2.1.14.7.1.3";
const IF_STATE: &str = "1.3.6.1.2.1.14.7.1.12";
const NBR_RTR_ID: &str = "1.3.6.1.2.1.14.10.1.3";
const NBR_PRIORITY: &str = "1.3.6.1.2.1.14.10.1.5";
const NBR_STATE: &str = "1.3.6.1.2.1.14.10.1.6";
const NBR_EVENTS: &str = "1.3.6.1.2.1.14.10.1.7";
/// ipAdEntIfIndex and ipAdEntNetMask (IP-MIB ipAddrTable, indexed by the IPv4 address).
const IP_AD_ENT_IF_INDEX: &str = "1.3.6.1.2.1.4.20.1.2";
const IP_AD_ENT_NET_MASK: &str = "1.3.6.1.2.1.4.20.1.3";

pub(crate) const COLUMNS: [&str; 9] = [
    OSPF_ROUTER_ID,
    IF_AREA_ID,
    IF_STATE,
    NBR_RTR_ID,
    NBR_PRIORITY,
    NBR_STATE,
    NBR_EVENTS,
    IP_AD_ENT_IF_INDEX,
    IP_AD_ENT_NET_MASK,
];

/// ospfNbrState.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum OspfNbrState {
    Down,
    Attempt,
    Init,
    TwoWay,
    ExchangeStart,
    Exchange,
    Loading,
    Full,
    /// A value outside 1..8 (reported as an issue too).
    Unknown(i64),
}

impl OspfNbrState {
    pub fn from_mib(v: i64) -> OspfNbrState {
        use OspfNbrState as S;
        match v {
            1 => S::Down,
            2 => S::Attempt,
            3 => S::Init,
            4 => S::TwoWay,
            5 => S::ExchangeStart,
            6 => S::Exchange,
            7 => S::Loading,
            8 => S::Full,
            other => S::Unknown(other),
        }
    }
}

/// ospfIfState.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub enum OspfIfState {
    Down,
    Loopback,
    Waiting,
    PointToPoint,
    DesignatedRouter,
    BackupDesignatedRouter,
    OtherDesignatedRouter,
    /// A value outside 1..7 (reported as an issue too).
    Unknown(i64),
}

impl OspfIfState {
    pub fn from_mib(v: i64) -> OspfIfState {
        use OspfIfState as S;
        match v {
            1 => S::Down,
            2 => S::Loopback,
            3 => S::Waiting,
            4 => S::PointToPoint,
            5 => S::DesignatedRouter,
            6 => S::BackupDesignatedRouter,
            7 => S::OtherDesignatedRouter,
            other => S::Unknown(other),
        }
    }
}

/// One row of ospfNbrTable. There is no "down" row: agents remove a neighbour that went away.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OspfNeighbor {
    pub addr: Ipv4Addr,
    pub addressless_index: u32,
    pub router_id: Ipv4Addr,
    pub state: OspfNbrState,
    pub events: Option<u32>,
    pub priority: Option<i32>,
    /// The OSPF interface the neighbour is on (same subnet, or same addressless ifIndex), when found.
    pub if_index: Option<u32>,
    pub area_id: Option<Ipv4Addr>,
}

/// One row of ospfIfTable.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OspfInterface {
    pub ip: Ipv4Addr,
    pub addressless_if: u32,
    pub area_id: Ipv4Addr,
    pub state: OspfIfState,
    /// The addressless ifIndex, else ipAdEntIfIndex of `ip`.
    pub if_index: Option<u32>,
}

/// (IPv4 address, addressless index) from a 5-arc OSPF index.
fn ospf_index(index: &[u32]) -> Option<(Ipv4Addr, u32)> {
    match index {
        [a, b, c, d, n] => Some((ipv4_from_arcs(&[*a, *b, *c, *d])?, *n)),
        _ => None,
    }
}

/// Decodes neighbours, interfaces and the router ID (0.0.0.0 = none).
pub fn decode_ospf(vbs: &Varbinds) -> (Vec<OspfNeighbor>, Vec<OspfInterface>, Option<Ipv4Addr>, Vec<DecodeIssue>) {
    let mut issues = Vec::new();
    let router_id = match vbs.scalar(OSPF_ROUTER_ID).map(want_ipv4) {
        Some(Ok(id)) => Some(id).filter(|id| !id.is_unspecified()),
        Some(Err(e)) => {
            issues.push(issue(OSPF_ROUTER_ID, &[0], e));
            None
        }
        None => None,
    };

    // ipAddrTable: address → (ifIndex, mask).
    let mut addrs: BTreeMap<Ipv4Addr, (Option<u32>, Option<Ipv4Addr>)> = BTreeMap::new();
    for (index, row) in vbs.rows(&[IP_AD_ENT_IF_INDEX, IP_AD_ENT_NET_MASK]) {
        let Some(ip) = ipv4_from_arcs(&index) else { continue };
        let e = addrs.entry(ip).or_default();
        e.0 = row.get(IP_AD_ENT_IF_INDEX).and_then(|v| want_u32(v).ok());
        e.1 = row.get(IP_AD_ENT_NET_MASK).and_then(|v| want_ipv4(v).ok());
    }

    let mut interfaces = Vec::new();
    for (index, row) in vbs.rows(&[IF_AREA_ID, IF_STATE]) {
        let first = first_column(&row, IF_AREA_ID);
        let Some((ip, addressless_if)) = ospf_index(&index) else {
            issues.push(issue(first, &index, "index is not ospfIfIpAddress.ospfAddressLessIf"));
            continue;
        };
        let area_id = match row.get(IF_AREA_ID).map(|v| want_ipv4(v)) {
            Some(Ok(a)) => a,
            Some(Err(e)) => {
                issues.push(issue(IF_AREA_ID, &index, e));
                continue;
            }
            None => {
                issues.push(issue(first, &index, "interface without ospfIfAreaId"));
                continue;
            }
        };
        let state = match row.get(IF_STATE).map(|v| want_int(v)) {
            Some(Ok(s)) => {
                if !(1..=7).contains(&s) {
                    issues.push(issue(IF_STATE, &index, format!("interface state {s} outside 1..7")));
                }
                OspfIfState::from_mib(s)
            }
            Some(Err(e)) => {
                issues.push(issue(IF_STATE, &index, e));
                continue;
            }
            None => {
                issues.push(issue(first, &index, "interface without ospfIfState"));
                continue;
            }
        };
        let if_index = if addressless_if != 0 { Some(addressless_if) } else { addrs.get(&ip).and_then(|a| a.0) };
        interfaces.push(OspfInterface { ip, addressless_if, area_id, state, if_index });
    }

    let mut neighbors = Vec::new();
    for (index, row) in vbs.rows(&[NBR_RTR_ID, NBR_PRIORITY, NBR_STATE, NBR_EVENTS]) {
        let first = first_column(&row, NBR_STATE);
        let Some((addr, addressless_index)) = ospf_index(&index) else {
            issues.push(issue(first, &index, "index is not ospfNbrIpAddr.ospfNbrAddressLessIndex"));
            continue;
        };
        let router_id = match row.get(NBR_RTR_ID).map(|v| want_ipv4(v)) {
            Some(Ok(id)) => id,
            Some(Err(e)) => {
                issues.push(issue(NBR_RTR_ID, &index, e));
                continue;
            }
            None => {
                issues.push(issue(first, &index, "neighbour without ospfNbrRtrId"));
                continue;
            }
        };
        let state = match row.get(NBR_STATE).map(|v| want_int(v)) {
            Some(Ok(s)) => {
                if !(1..=8).contains(&s) {
                    issues.push(issue(NBR_STATE, &index, format!("neighbour state {s} outside 1..8")));
                }
                OspfNbrState::from_mib(s)
            }
            Some(Err(e)) => {
                issues.push(issue(NBR_STATE, &index, e));
                continue;
            }
            None => {
                issues.push(issue(first, &index, "neighbour without ospfNbrState"));
                continue;
            }
        };
        let mut cell = |col: &'static str| -> Option<i64> {
            let v = row.get(col)?;
            match v.as_i64() {
                Some(n) => Some(n),
                None => {
                    issues.push(issue(col, &index, format!("expected a number, got {v:?}")));
                    None
                }
            }
        };
        let priority = cell(NBR_PRIORITY).and_then(|p| i32::try_from(p).ok());
        let events = cell(NBR_EVENTS).and_then(|e| u32::try_from(e).ok());
        let on = interface_of(&interfaces, &addrs, addr, addressless_index);
        neighbors.push(OspfNeighbor {
            addr,
            addressless_index,
            router_id,
            state,
            events,
            priority,
            if_index: on.and_then(|i| i.if_index),
            area_id: on.map(|i| i.area_id),
        });
    }
    (neighbors, interfaces, router_id, issues)
}

fn first_column(row: &Row<'_>, fallback: &'static str) -> &'static str {
    row.keys().next().copied().unwrap_or(fallback)
}

/// The OSPF interface a neighbour was heard on: the addressless one with its index, else the numbered one whose
/// subnet (ipAdEntNetMask) holds the neighbour's address.
fn interface_of<'a>(
    interfaces: &'a [OspfInterface],
    addrs: &BTreeMap<Ipv4Addr, (Option<u32>, Option<Ipv4Addr>)>,
    nbr: Ipv4Addr,
    addressless_index: u32,
) -> Option<&'a OspfInterface> {
    if addressless_index != 0 {
        return interfaces.iter().find(|i| i.addressless_if == addressless_index);
    }
    interfaces.iter().find(|i| {
        let Some(mask) = addrs.get(&i.ip).and_then(|a| a.1) else { return false };
        let m = u32::from(mask);
        mask != Ipv4Addr::BROADCAST && u32::from(i.ip) & m == u32::from(nbr) & m
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::fixture;

    #[test]
    fn frr_spine_from_the_lab() {
        let (nbrs, ifs, rid, issues) = decode_ospf(&fixture::load("frr-spine1.walk"));
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(rid, Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(ifs.len(), 4, "three fabric links and the passive loopback");
        let lo = ifs.iter().find(|i| i.ip == Ipv4Addr::new(10, 0, 0, 1)).unwrap();
        assert_eq!((lo.state, lo.if_index), (OspfIfState::Loopback, Some(1)));
        let eth1 = ifs.iter().find(|i| i.ip == Ipv4Addr::new(10, 0, 11, 0)).unwrap();
        assert_eq!(
            (eth1.state, eth1.if_index, eth1.area_id),
            (OspfIfState::PointToPoint, Some(3), Ipv4Addr::UNSPECIFIED)
        );
        assert_eq!(nbrs.len(), 3);
        for (n, (addr, rid, if_index)) in nbrs.iter().zip([
            ("10.0.11.1", "10.0.0.11", 3),
            ("10.0.12.1", "10.0.0.12", 4),
            ("10.0.13.1", "10.0.0.13", 5),
        ]) {
            assert_eq!(n.addr, addr.parse::<Ipv4Addr>().unwrap());
            assert_eq!(n.router_id, rid.parse::<Ipv4Addr>().unwrap());
            assert_eq!(n.state, OspfNbrState::Full);
            assert_eq!(n.if_index, Some(if_index), "{n:?}");
            assert_eq!(n.area_id, Some(Ipv4Addr::UNSPECIFIED));
            assert!(n.events.is_some() && n.priority.is_some());
        }
    }

    #[test]
    fn odd_cells_are_issues() {
        let mut vbs = fixture::load("frr-leaf1.walk");
        vbs.insert(crate::routing::oid("1.3.6.1.2.1.14.10.1.6.10.0.11.0.0"), crate::snmp::Value::Integer(0));
        vbs.insert(
            crate::routing::oid("1.3.6.1.2.1.14.10.1.3.10.0.21.0.0"),
            crate::snmp::Value::OctetString(b"x".to_vec()),
        );
        let (nbrs, _, _, issues) = decode_ospf(&vbs);
        assert_eq!(nbrs.len(), 1, "the neighbour without a router ID is dropped");
        assert_eq!(nbrs[0].state, OspfNbrState::Unknown(0));
        assert_eq!(issues.len(), 2, "{issues:?}");
    }
}
