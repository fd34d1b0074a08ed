//! Link-layer neighbours: LLDP-MIB (IEEE 802.1AB) and CISCO-CDP-MIB, with LLDP's local port numbers tied to
//! ifIndex.
//!
//! lldpLocPortNum is only an ifIndex on agents that choose so (lldpd, Arista); others number ports 1..N or use
//! their own scheme. So a port is matched by what lldpLocPortTable says about it (its port ID by subtype, then
//! its description) against the interface rows, and `portNum == ifIndex` is only the last resort.

use super::{Varbinds, arcs_to_bytes, ip_from_bytes, issue, want_int, want_u32};
use crate::ifmib::{DecodeIssue, InterfaceRow};
use crate::snmp::Value;
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;

/// lldpLocChassisIdSubtype and lldpLocChassisId (scalars, walked to their `.0` instance).
const LOC_CHASSIS_ID_SUBTYPE: &str = "1.0.8802.1.1.2.1.3.1";
const LOC_CHASSIS_ID: &str = "1.0.8802.1.1.2.1.3.2";
const LOC_PORT_ID_SUBTYPE: &str = "1.0.8802.1.1.2.1.3.7.1.2";
const LOC_PORT_ID: &str = "1.0.8802.1.1.2.1.3.7.1.3";
const LOC_PORT_DESC: &str = "1.0.8802.1.1.2.1.3.7.1.4";
const REM_CHASSIS_ID_SUBTYPE: &str = "1.0.8802.1.1.2.1.4.1.1.4";
const REM_CHASSIS_ID: &str = "1.0.8802.1.1.2.1.4.1.1.5";
const REM_PORT_ID_SUBTYPE: &str = "1.0.8802.1.1.2.1.4.1.1.6";
const REM_PORT_ID: &str = "1.0.8802.1.1.2.1.4.1.1.7";
const REM_PORT_DESC: &str = "1.0.8802.1.1.2.1.4.1.1.8";
const REM_SYS_NAME: &str = "1.0.8802.1.1.2.1.4.1.1.9";
/// lldpRemManAddrIfSubtype: walked only for its index, which holds the management address.
const REM_MAN_ADDR_IF_SUBTYPE: &str = "1.0.8802.1.1.2.1.4.2.1.3";
/// ifPhysAddress, for local ports whose LLDP port ID is a MAC address.
const IF_PHYS_ADDRESS: &str = "1.3.6.1.2.1.2.2.1.6";
const CDP_ADDRESS_TYPE: &str = "1.3.6.1.4.1.9.9.23.1.2.1.1.3";
const CDP_ADDRESS: &str = "1.3.6.1.4.1.9.9.23.1.2.1.1.4";
const CDP_DEVICE_ID: &str = "1.3.6.1.4.1.9.9.23.1.2.1.1.6";
const CDP_DEVICE_PORT: &str = "1.3.6.1.4.1.9.9.23.1.2.1.1.7";

const LOC_PORT_COLUMNS: [&str; 3] = [LOC_PORT_ID_SUBTYPE, LOC_PORT_ID, LOC_PORT_DESC];
const REM_COLUMNS: [&str; 6] =
    [REM_CHASSIS_ID_SUBTYPE, REM_CHASSIS_ID, REM_PORT_ID_SUBTYPE, REM_PORT_ID, REM_PORT_DESC, REM_SYS_NAME];
const CDP_COLUMNS: [&str; 4] = [CDP_ADDRESS_TYPE, CDP_ADDRESS, CDP_DEVICE_ID, CDP_DEVICE_PORT];

pub(crate) const COLUMNS: [&str; 17] = [
    LOC_CHASSIS_ID_SUBTYPE,
    LOC_CHASSIS_ID,
    LOC_PORT_ID_SUBTYPE,
    LOC_PORT_ID,
    LOC_PORT_DESC,
    REM_CHASSIS_ID_SUBTYPE,
    REM_CHASSIS_ID,
    REM_PORT_ID_SUBTYPE,
    REM_PORT_ID,
    REM_PORT_DESC,
    REM_SYS_NAME,
    REM_MAN_ADDR_IF_SUBTYPE,
    IF_PHYS_ADDRESS,
    CDP_ADDRESS_TYPE,
    CDP_ADDRESS,
    CDP_DEVICE_ID,
    CDP_DEVICE_PORT,
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkProtocol {
    Lldp,
    Cdp,
}

/// A neighbour seen on a local port.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LinkNeighbor {
    pub protocol: LinkProtocol,
    /// lldpRemLocalPortNum, or cdpCacheIfIndex.
    pub local_port_num: u32,
    pub local_if_index: Option<u32>,
    /// How `local_if_index` was found; [`PortMatch::SameNumber`] is a guess.
    pub local_port_match: Option<PortMatch>,
    /// ifName (else ifDescr) of `local_if_index`.
    pub local_if_name: Option<String>,
    /// MAC as `aa:bb:cc:dd:ee:ff` (subtype 4), an IP address (subtype 5), else text, else hex. CDP: device ID.
    pub chassis_id: String,
    pub chassis_id_subtype: Option<i64>,
    pub sys_name: Option<String>,
    /// Formatted like `chassis_id` (MAC for subtype 3, address for 4). CDP: device port.
    pub port_id: String,
    pub port_id_subtype: Option<i64>,
    pub port_descr: Option<String>,
    pub mgmt_addr: Option<IpAddr>,
    /// lldpRemIndex, or cdpCacheDeviceIndex.
    pub remote_index: u32,
}

/// How an lldpLocPortNum was tied to an ifIndex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PortMatch {
    /// lldpLocPortId (interface name, alias, MAC address or local ifIndex text, by its subtype).
    PortId,
    /// lldpLocPortDesc against ifDescr, ifName or ifAlias.
    PortDesc,
    /// Nothing matched and an interface has ifIndex == lldpLocPortNum.
    SameNumber,
    /// The MIB indexes by ifIndex (CDP).
    IfIndex,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct LocalPort {
    pub if_index: u32,
    pub matched_by: PortMatch,
}

/// Interface rows looked up by the values LLDP may name a port by.
struct IfLookup<'a> {
    rows: &'a [InterfaceRow],
    by_name: HashMap<&'a str, Vec<u32>>,
    by_descr: HashMap<&'a str, Vec<u32>>,
    by_alias: HashMap<&'a str, Vec<u32>>,
    by_mac: HashMap<[u8; 6], Vec<u32>>,
}

impl<'a> IfLookup<'a> {
    fn new(rows: &'a [InterfaceRow], vbs: &Varbinds) -> IfLookup<'a> {
        let mut l = IfLookup {
            rows,
            by_name: HashMap::new(),
            by_descr: HashMap::new(),
            by_alias: HashMap::new(),
            by_mac: HashMap::new(),
        };
        for r in rows {
            for (map, v) in [(&mut l.by_name, &r.name), (&mut l.by_descr, &r.descr), (&mut l.by_alias, &r.alias)] {
                if let Some(s) = v.as_deref().filter(|s| !s.is_empty()) {
                    map.entry(s).or_default().push(r.if_index);
                }
            }
        }
        let phys = super::oid(IF_PHYS_ADDRESS);
        for (index, v) in vbs.column(&phys) {
            if let ([if_index], Value::OctetString(b)) = (index, v)
                && let Some(mac) = mac_from(b)
                && mac != [0; 6]
            {
                l.by_mac.entry(mac).or_default().push(*if_index);
            }
        }
        l
    }

    fn exists(&self, if_index: u32) -> bool {
        self.rows.iter().any(|r| r.if_index == if_index)
    }

    fn row(&self, if_index: u32) -> Option<&'a InterfaceRow> {
        self.rows.iter().find(|r| r.if_index == if_index)
    }
}

/// One match attempt: a unique candidate wins; several are settled by `port_num` being one of them, else the
/// attempt is inconclusive.
fn pick(candidates: Option<&Vec<u32>>, port_num: u32) -> Option<u32> {
    match candidates?.as_slice() {
        [one] => Some(*one),
        many => many.iter().copied().find(|&i| i == port_num),
    }
}

/// MAC address from 6 raw bytes or its text form (`8c:60:4f:19:16:21`, `8c60.4f19.1621`, `8C-60-...`), as
/// NX-OS puts in lldpLocPortId.
fn mac_from(b: &[u8]) -> Option<[u8; 6]> {
    if let Ok(raw) = <[u8; 6]>::try_from(b) {
        return Some(raw);
    }
    let hex: Vec<u8> = b.iter().copied().filter(|c| !matches!(c, b':' | b'-' | b'.' | b' ')).collect();
    if hex.len() != 12 {
        return None;
    }
    let text = std::str::from_utf8(&hex).ok()?;
    let mut mac = [0u8; 6];
    for (i, m) in mac.iter_mut().enumerate() {
        *m = u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(mac)
}

/// Ties each lldpLocPortNum of lldpLocPortTable to an ifIndex of `interfaces`.
pub fn map_lldp_ports(vbs: &Varbinds, interfaces: &[InterfaceRow]) -> BTreeMap<u32, LocalPort> {
    let lookup = IfLookup::new(interfaces, vbs);
    let mut out = BTreeMap::new();
    for (index, row) in vbs.rows(&LOC_PORT_COLUMNS) {
        let [port_num] = index.as_slice() else { continue };
        let subtype = row.get(LOC_PORT_ID_SUBTYPE).and_then(|v| v.as_i64());
        let id = match row.get(LOC_PORT_ID) {
            Some(Value::OctetString(b)) => b.as_slice(),
            _ => &[],
        };
        let desc = row.get(LOC_PORT_DESC).and_then(|v| v.as_text()).filter(|s| !s.is_empty());
        if let Some(p) = match_port(&lookup, *port_num, subtype, id, desc.as_deref()) {
            out.insert(*port_num, p);
        }
    }
    out
}

fn match_port(
    l: &IfLookup<'_>,
    port_num: u32,
    subtype: Option<i64>,
    id: &[u8],
    desc: Option<&str>,
) -> Option<LocalPort> {
    let by_id = |if_index| LocalPort { if_index, matched_by: PortMatch::PortId };
    match subtype {
        // macAddress
        Some(3) => {
            if let Some(i) = mac_from(id).and_then(|m| pick(l.by_mac.get(&m), port_num)) {
                return Some(by_id(i));
            }
        }
        // networkAddress: addresses are not tied to ports here.
        Some(4) => {}
        _ => {
            let text = display_bytes(id);
            if !text.is_empty() {
                // interfaceAlias names ifAlias first; the rest (interfaceName, local, ...) name ifName/ifDescr.
                let order = if subtype == Some(1) {
                    [&l.by_alias, &l.by_name, &l.by_descr]
                } else {
                    [&l.by_name, &l.by_descr, &l.by_alias]
                };
                if let Some(i) = order.iter().find_map(|m| pick(m.get(text.as_str()), port_num)) {
                    return Some(by_id(i));
                }
                // local(7): Junos puts the ifIndex there as text.
                if subtype == Some(7)
                    && let Ok(n) = text.parse::<u32>()
                    && l.exists(n)
                {
                    return Some(by_id(n));
                }
            }
        }
    }
    if let Some(d) = desc
        && let Some(i) = [&l.by_descr, &l.by_name, &l.by_alias].iter().find_map(|m| pick(m.get(d), port_num))
    {
        return Some(LocalPort { if_index: i, matched_by: PortMatch::PortDesc });
    }
    l.exists(port_num).then_some(LocalPort { if_index: port_num, matched_by: PortMatch::SameNumber })
}

/// Bytes as text when they are printable UTF-8 (trailing NULs dropped, as NX-OS pads), else `aa:bb:..` hex.
fn display_bytes(b: &[u8]) -> String {
    let end = b.iter().rposition(|&c| c != 0).map_or(0, |p| p + 1);
    match std::str::from_utf8(&b[..end]) {
        Ok(s) if !s.chars().any(char::is_control) => s.to_string(),
        _ => hex_colon(b),
    }
}

fn hex_colon(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(":")
}

/// A chassis or port ID by its subtype: `mac_subtype` is 4 for chassis IDs and 3 for port IDs,
/// `addr_subtype` 5 and 4. A network address is an IANA address family byte, then the address.
fn format_id(b: &[u8], subtype: Option<i64>, mac_subtype: i64, addr_subtype: i64) -> String {
    // NX-OS's own lldpLocChassisId is the MAC as text; normalised, it compares equal to what neighbours report.
    if subtype == Some(mac_subtype)
        && let Some(mac) = mac_from(b)
    {
        return hex_colon(&mac);
    }
    if subtype == Some(addr_subtype)
        && let Some((&family, addr)) = b.split_first()
        && let Some(ip) =
            ip_from_bytes(addr).filter(|ip| matches!((family, ip), (1, IpAddr::V4(_)) | (2, IpAddr::V6(_))))
    {
        return ip.to_string();
    }
    display_bytes(b)
}

/// The device's own chassis ID (lldpLocChassisId), formatted like a neighbour's.
pub fn decode_local_chassis_id(vbs: &Varbinds) -> Option<String> {
    let Some(Value::OctetString(b)) = vbs.scalar(LOC_CHASSIS_ID) else { return None };
    let subtype = vbs.scalar(LOC_CHASSIS_ID_SUBTYPE).and_then(Value::as_i64);
    Some(format_id(b, subtype, 4, 5)).filter(|s| !s.is_empty())
}

fn text_cell(v: Option<&&Value>) -> Option<String> {
    match v {
        Some(Value::OctetString(b)) => Some(display_bytes(b)).filter(|s| !s.is_empty()),
        _ => None,
    }
}

/// LLDP neighbours (with their management address and local interface) and CDP neighbours.
pub fn decode_link_neighbors(vbs: &Varbinds, interfaces: &[InterfaceRow]) -> (Vec<LinkNeighbor>, Vec<DecodeIssue>) {
    let mut issues = Vec::new();
    let lookup = IfLookup::new(interfaces, vbs);
    let ports = map_lldp_ports(vbs, interfaces);
    let local = |port_num: u32| -> Option<LocalPort> {
        match ports.get(&port_num) {
            Some(p) => Some(*p),
            // A port lldpLocPortTable does not list.
            None => {
                lookup.exists(port_num).then_some(LocalPort { if_index: port_num, matched_by: PortMatch::SameNumber })
            }
        }
    };
    let if_name = |if_index: Option<u32>| {
        let r = lookup.row(if_index?)?;
        r.name.clone().filter(|s| !s.is_empty()).or_else(|| r.descr.clone())
    };

    // lldpRemManAddrTable: (timeMark, localPortNum, remIndex) → first usable address, IPv4 preferred.
    let mut mgmt: BTreeMap<Vec<u32>, IpAddr> = BTreeMap::new();
    let man = super::oid(REM_MAN_ADDR_IF_SUBTYPE);
    for (index, _) in vbs.column(&man) {
        let Some((rem, rest)) = index.split_at_checked(3) else { continue };
        let ip = match man_addr(rest) {
            Ok(Some(ip)) => ip,
            Ok(None) => continue,
            Err(()) => {
                issues.push(issue(
                    REM_MAN_ADDR_IF_SUBTYPE,
                    index,
                    "management address index is not subtype.length.address",
                ));
                continue;
            }
        };
        let slot = mgmt.entry(rem.to_vec()).or_insert(ip);
        if slot.is_ipv6() && ip.is_ipv4() {
            *slot = ip;
        }
    }

    let mut out = Vec::new();
    for (index, row) in vbs.rows(&REM_COLUMNS) {
        let &[_time_mark, port_num, remote_index] = index.as_slice() else {
            let first = row.keys().next().copied().unwrap_or(REM_CHASSIS_ID);
            issues.push(issue(first, &index, "index is not timeMark.localPortNum.index"));
            continue;
        };
        let mut subtype = |col: &'static str| match row.get(col).map(|v| want_int(v)) {
            Some(Ok(s)) => Some(s),
            Some(Err(e)) => {
                issues.push(issue(col, &index, e));
                None
            }
            None => None,
        };
        let chassis_id_subtype = subtype(REM_CHASSIS_ID_SUBTYPE);
        let port_id_subtype = subtype(REM_PORT_ID_SUBTYPE);
        let mut bytes = |col: &'static str| match row.get(col) {
            Some(Value::OctetString(b)) => Some(b.as_slice()),
            Some(other) => {
                issues.push(issue(col, &index, format!("expected OCTET STRING, got {other:?}")));
                None
            }
            None => None,
        };
        let Some(chassis) = bytes(REM_CHASSIS_ID) else {
            issues.push(issue(REM_CHASSIS_ID, &index, "neighbour without lldpRemChassisId"));
            continue;
        };
        let port = bytes(REM_PORT_ID).unwrap_or_default();
        let local_port = local(port_num);
        let local_if_index = local_port.map(|p| p.if_index);
        out.push(LinkNeighbor {
            protocol: LinkProtocol::Lldp,
            local_port_num: port_num,
            local_if_index,
            local_port_match: local_port.map(|p| p.matched_by),
            local_if_name: if_name(local_if_index),
            chassis_id: format_id(chassis, chassis_id_subtype, 4, 5),
            chassis_id_subtype,
            sys_name: text_cell(row.get(REM_SYS_NAME)),
            port_id: format_id(port, port_id_subtype, 3, 4),
            port_id_subtype,
            port_descr: text_cell(row.get(REM_PORT_DESC)),
            mgmt_addr: mgmt.get(&index).copied(),
            remote_index,
        });
    }

    for (index, row) in vbs.rows(&CDP_COLUMNS) {
        let &[if_index, device_index] = index.as_slice() else {
            let first = row.keys().next().copied().unwrap_or(CDP_DEVICE_ID);
            issues.push(issue(first, &index, "index is not cdpCacheIfIndex.cdpCacheDeviceIndex"));
            continue;
        };
        let Some(Value::OctetString(device)) = row.get(CDP_DEVICE_ID) else {
            issues.push(issue(CDP_DEVICE_ID, &index, "neighbour without cdpCacheDeviceId"));
            continue;
        };
        // cdpCacheAddressType ip(1) with a 4-byte address, ipv6(20) with 16; others (65535 = none) are skipped.
        let addr_type = row.get(CDP_ADDRESS_TYPE).and_then(|v| want_u32(v).ok());
        let mgmt_addr = match (addr_type, row.get(CDP_ADDRESS)) {
            (Some(1 | 20), Some(Value::OctetString(b))) => ip_from_bytes(b),
            _ => None,
        };
        let chassis_id = if device.len() == 6 && std::str::from_utf8(device).is_err() {
            hex_colon(device)
        } else {
            display_bytes(device)
        };
        let local_if_index = lookup.exists(if_index).then_some(if_index);
        out.push(LinkNeighbor {
            protocol: LinkProtocol::Cdp,
            local_port_num: if_index,
            local_if_index,
            local_port_match: local_if_index.map(|_| PortMatch::IfIndex),
            local_if_name: if_name(local_if_index),
            sys_name: Some(chassis_id.clone()).filter(|s| !s.is_empty()),
            chassis_id,
            chassis_id_subtype: None,
            port_id: text_cell(row.get(CDP_DEVICE_PORT)).unwrap_or_default(),
            port_id_subtype: None,
            port_descr: None,
            mgmt_addr,
            remote_index: device_index,
        });
    }
    (out, issues)
}

/// lldpRemManAddrSubtype (IANA address family: 1 IPv4, 2 IPv6, 6 IEEE 802 MAC ...) and lldpRemManAddr from the
/// index tail. The address is length-prefixed as SMI says; a few agents leave the length out, so a bare 4 or 16
/// bytes is accepted too. `Err` when the tail is no address at all; `Ok(None)` for a family that is not IP.
fn man_addr(rest: &[u32]) -> Result<Option<IpAddr>, ()> {
    let (&family, tail) = rest.split_first().ok_or(())?;
    let bytes = match tail.split_first() {
        Some((&len, addr)) if len as usize == addr.len() => addr,
        _ if family == 1 && tail.len() == 4 || family == 2 && tail.len() == 16 => tail,
        _ => return Err(()),
    };
    let bytes = arcs_to_bytes(bytes).ok_or(())?;
    Ok(match (family, ip_from_bytes(&bytes)) {
        (1, Some(ip @ IpAddr::V4(_))) | (2, Some(ip @ IpAddr::V6(_))) => Some(ip),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::fixture;

    #[test]
    fn frr_spine_neighbours_from_the_lab() {
        let vbs = fixture::load("frr-spine1.walk");
        let ifs = fixture::interfaces(&vbs);
        let (nbrs, issues) = decode_link_neighbors(&vbs, &ifs);
        assert!(issues.is_empty(), "{issues:?}");
        let got: Vec<(Option<&str>, Option<&str>, &str)> =
            nbrs.iter().map(|n| (n.local_if_name.as_deref(), n.sys_name.as_deref(), n.port_id.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (Some("nwlab-eth1"), Some("leaf1"), "nwlab-eth1"),
                (Some("nwlab-eth2"), Some("leaf2"), "nwlab-eth1"),
                (Some("nwlab-eth3"), Some("leaf3"), "nwlab-eth1"),
            ]
        );
        let n = &nbrs[0];
        assert_eq!(n.chassis_id, "02:6e:77:01:01:02");
        assert_eq!(decode_local_chassis_id(&vbs).as_deref(), Some("02:6e:77:01:01:01"));
        assert_eq!((n.chassis_id_subtype, n.port_id_subtype), (Some(4), Some(5)));
        assert_eq!(n.mgmt_addr, Some("10.255.0.21".parse().unwrap()));
        assert_eq!(n.port_descr.as_deref(), Some("to spine1 nwlab-eth1"));
        assert_eq!(n.local_if_index, Some(3));
        let ports = map_lldp_ports(&vbs, &ifs);
        assert!(ports.values().all(|p| p.matched_by == PortMatch::PortId), "{ports:?}");
    }

    /// An agent numbering LLDP ports 1..N while ifIndex runs from 1001, with ports named four different ways.
    #[test]
    fn ports_numbered_apart_from_if_index() {
        let vbs = fixture::load("lldp-renumbered.walk");
        let ifs = fixture::interfaces(&vbs);
        let ports = map_lldp_ports(&vbs, &ifs);
        let want = [
            (1, 1001, PortMatch::PortId),   // interfaceName "Gi1/0/1"
            (2, 1002, PortMatch::PortId),   // macAddress, raw bytes
            (3, 1003, PortMatch::PortId),   // macAddress as text, the way NX-OS sends it
            (4, 1004, PortMatch::PortDesc), // local "port-4": only the description names it
            (5, 1005, PortMatch::PortId),   // local, the ifIndex as text (Junos)
            (6, 6, PortMatch::SameNumber),  // nothing matches, but ifIndex 6 exists
        ];
        for (port, if_index, how) in want {
            assert_eq!(ports.get(&port), Some(&LocalPort { if_index, matched_by: how }), "port {port}");
        }
        assert_eq!(ports.get(&7), None, "no match and no ifIndex 7");
        let (nbrs, issues) = decode_link_neighbors(&vbs, &ifs);
        assert!(issues.is_empty(), "{issues:?}");
        let by_port: BTreeMap<u32, &LinkNeighbor> = nbrs.iter().map(|n| (n.local_port_num, n)).collect();
        assert_eq!(by_port[&1].local_if_index, Some(1001));
        assert_eq!(by_port[&1].local_if_name.as_deref(), Some("Gi1/0/1"));
        assert_eq!(by_port[&2].local_if_name.as_deref(), Some("Gi1/0/2"));
        assert_eq!(by_port[&7].local_if_index, None);
        assert_eq!(by_port[&7].local_port_match, None);
        assert_eq!(by_port[&3].local_port_match, Some(PortMatch::PortId));
        // Remote IDs by subtype: network address, text padded with NULs, binary local ID.
        assert_eq!(by_port[&1].chassis_id, "192.0.2.7");
        assert_eq!(by_port[&2].port_id, "Ethernet1/21");
        assert_eq!(by_port[&3].chassis_id, "de:ad:be:ef:00:01:02");
        assert_eq!(by_port[&3].mgmt_addr, Some("2001:db8::3".parse().unwrap()), "IPv6 when that is all there is");
    }

    /// The same agent, with ports numbered as their ifIndex: the port ID still decides.
    #[test]
    fn ports_numbered_as_if_index() {
        let vbs = fixture::load("frr-leaf1.walk");
        let ifs = fixture::interfaces(&vbs);
        let ports = map_lldp_ports(&vbs, &ifs);
        assert_eq!(ports.get(&3), Some(&LocalPort { if_index: 3, matched_by: PortMatch::PortId }));
        assert_eq!(ports.get(&4), Some(&LocalPort { if_index: 4, matched_by: PortMatch::PortId }));
    }

    #[test]
    fn id_formats() {
        assert_eq!(format_id(&[0x02, 0x6e, 0x77, 1, 1, 2], Some(4), 4, 5), "02:6e:77:01:01:02");
        assert_eq!(format_id(&[1, 10, 0, 0, 1], Some(5), 4, 5), "10.0.0.1");
        assert_eq!(format_id(b"8c:60:4f:19:16:7c", Some(4), 4, 5), "8c:60:4f:19:16:7c");
        assert_eq!(format_id(b"8C60.4F19.167C", Some(4), 4, 5), "8c:60:4f:19:16:7c");
        assert_eq!(format_id(b"Eth1/1\0\0", Some(5), 3, 4), "Eth1/1");
        assert_eq!(format_id(&[0xff, 0x01], Some(7), 3, 4), "ff:01");
        assert_eq!(mac_from(b"8c60.4f19.1621"), Some([0x8c, 0x60, 0x4f, 0x19, 0x16, 0x21]));
        assert_eq!(mac_from(b"Gi1/0/1"), None);
        assert_eq!(man_addr(&[1, 4, 10, 0, 0, 1]), Ok(Some("10.0.0.1".parse().unwrap())));
        assert_eq!(man_addr(&[1, 10, 0, 0, 1]), Ok(Some("10.0.0.1".parse().unwrap())), "without the length arc");
        // NX-OS advertises its MAC (IANA family 6, all802) as a management address.
        assert_eq!(man_addr(&[6, 6, 172, 22, 45, 146, 125, 33]), Ok(None));
        assert_eq!(man_addr(&[1, 9, 10, 0, 0, 1]), Err(()));
    }
}
