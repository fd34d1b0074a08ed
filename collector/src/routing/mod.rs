//! Routing and topology over SNMP: a device's BGP sessions, OSPF adjacencies and LLDP/CDP neighbours.
//!
//! Same shape as [`crate::ifmib`]: [`poll_routing`] walks the columns listed by the decoders (standard MIBs, then
//! every BGP OID map in `maps/`) and hands the varbinds to pure functions that return typed records plus the cells
//! that did not decode. A table the agent does not have is simply empty; a bad cell is an issue, never a failed
//! poll.

mod bgp;
#[cfg(test)]
mod fixture;
mod lldp;
mod oidmap;
mod ospf;

pub use bgp::{BgpAdminStatus, BgpPeer, BgpState, decode_bgp};
pub use lldp::{
    LinkNeighbor, LinkProtocol, LocalPort, PortMatch, decode_link_neighbors, decode_local_chassis_id, map_lldp_ports,
};
pub use oidmap::{Field, IndexPart, MapTable, OidMap, builtin_maps, compile_map};
pub use ospf::{OspfIfState, OspfInterface, OspfNbrState, OspfNeighbor, decode_ospf};

use crate::ifmib::{DecodeIssue, InterfaceRow};
use crate::snmp::{Oid, SnmpClient, SnmpError, Value, WalkStats};
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Bound;
use std::time::{Duration, Instant};

/// Everything one routing poll of a device collected.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RoutingPoll {
    /// One record per BGP session, or per session and address family where a vendor MIB gives per-family
    /// prefix counts (`afi_safi` set; the session fields repeat).
    pub bgp: Vec<BgpPeer>,
    /// bgpLocalAs (absent or 0 when BGP is not running).
    pub local_as: Option<u32>,
    /// ospfRouterId, else bgpIdentifier (0.0.0.0 counts as absent).
    pub router_id: Option<Ipv4Addr>,
    pub ospf_neighbors: Vec<OspfNeighbor>,
    pub ospf_interfaces: Vec<OspfInterface>,
    /// LLDP and CDP neighbours, LLDP first.
    pub neighbors: Vec<LinkNeighbor>,
    /// This device's own LLDP chassis ID (lldpLocChassisId), formatted like a neighbour's `chassis_id`, so the
    /// other ends' reports can be matched to it.
    pub local_chassis_id: Option<String>,
    /// Cells that did not decode; the rest of the poll is kept.
    #[serde(serialize_with = "issues_as_text")]
    pub issues: Vec<DecodeIssue>,
    /// Requests and varbinds this poll cost (not the client's running total).
    #[serde(skip)]
    pub stats: WalkStats,
    pub duration: Duration,
}

fn issues_as_text<S: serde::Serializer>(v: &[DecodeIssue], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(v.iter().map(ToString::to_string))
}

/// Columns per GETBULK walk. Agents with small PDU limits (IOS: `snmp-server packetsize`, 1500 bytes by default)
/// would answer tooBig to one request carrying all ~80 routing columns even at one repetition; in chunks the
/// client can always shrink a request until it fits.
const COLUMNS_PER_WALK: usize = 24;

/// Every column (and scalar object, walked to its `.0` instance) the routing decoders read: standard MIBs first,
/// then the OID maps in their precedence order.
pub fn routing_columns() -> &'static [Oid] {
    static COLUMNS: std::sync::LazyLock<Vec<Oid>> = std::sync::LazyLock::new(build_routing_columns);
    &COLUMNS
}

fn build_routing_columns() -> Vec<Oid> {
    let mut out: Vec<Oid> = Vec::new();
    let standard = bgp::SCALARS.iter().chain(ospf::COLUMNS.iter()).chain(lldp::COLUMNS.iter());
    out.extend(standard.map(|s| oid(s)));
    for map in builtin_maps() {
        out.extend(map.columns());
    }
    out
}

/// Polls BGP, OSPF, LLDP and CDP state. `interfaces` are the device's IF-MIB rows from the same poll (for
/// tying LLDP ports to ifIndex and naming local ports); with none, local ports stay unmapped.
pub async fn poll_routing(client: &mut SnmpClient, interfaces: &[InterfaceRow]) -> Result<RoutingPoll, SnmpError> {
    let started = Instant::now();
    let before = client.stats();
    client.cache_v3_engine().await?;
    let columns = routing_columns();
    let mut vbs = Varbinds::default();
    for chunk in columns.chunks(COLUMNS_PER_WALK) {
        let walked = client.walk_columns(chunk).await?;
        vbs.extend_walked(chunk, walked);
    }
    client.close();
    let after = client.stats();
    let mut poll = decode_routing(&vbs, interfaces);
    poll.stats = WalkStats {
        requests: after.requests.saturating_sub(before.requests),
        varbinds: after.varbinds.saturating_sub(before.varbinds),
        retries: after.retries.saturating_sub(before.retries),
    };
    poll.duration = started.elapsed();
    Ok(poll)
}

/// The pure part of [`poll_routing`]: varbinds (from a poll or a fixture) to records.
pub fn decode_routing(vbs: &Varbinds, interfaces: &[InterfaceRow]) -> RoutingPoll {
    let mut issues = Vec::new();
    let (bgp, local_as, bgp_id, mut i) = decode_bgp(vbs, builtin_maps());
    issues.append(&mut i);
    let (ospf_neighbors, ospf_interfaces, ospf_id, mut i) = decode_ospf(vbs);
    issues.append(&mut i);
    let (neighbors, mut i) = decode_link_neighbors(vbs, interfaces);
    issues.append(&mut i);
    RoutingPoll {
        bgp,
        local_as,
        router_id: ospf_id.or(bgp_id),
        ospf_neighbors,
        ospf_interfaces,
        neighbors,
        local_chassis_id: decode_local_chassis_id(vbs),
        issues,
        stats: WalkStats::default(),
        duration: Duration::ZERO,
    }
}

/// Varbinds of one poll ordered by OID, exceptions dropped: what the decoders read.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Varbinds(BTreeMap<Oid, Value>);

/// One table row: column OID (as listed by the decoder) → value.
pub(crate) type Row<'a> = BTreeMap<&'static str, &'a Value>;

impl Varbinds {
    pub fn insert(&mut self, oid: Oid, value: Value) {
        if !value.is_exception() {
            self.0.insert(oid, value);
        }
    }

    /// Adds what [`SnmpClient::walk_columns`] returned for `columns`.
    pub fn extend_walked<I: AsRef<[u32]>>(&mut self, columns: &[Oid], walked: Vec<Vec<(I, Value)>>) {
        for (column, cells) in columns.iter().zip(walked) {
            for (index, value) in cells {
                self.insert(column.child(index.as_ref()), value);
            }
        }
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn get(&self, oid: &Oid) -> Option<&Value> {
        self.0.get(oid)
    }

    /// The instances under `column`: (index arcs, value), in index order.
    pub fn column<'a: 'b, 'b>(&'a self, column: &'b Oid) -> impl Iterator<Item = (&'a [u32], &'a Value)> + 'b {
        self.0
            .range::<Oid, _>((Bound::Excluded(column), Bound::Unbounded))
            .map_while(move |(oid, v)| oid.suffix(column).map(|index| (index, v)))
    }

    /// Rows of a table from some of its columns, keyed by index. A row exists when any listed column has it.
    pub(crate) fn rows<'a>(&'a self, columns: &[&'static str]) -> BTreeMap<Vec<u32>, Row<'a>> {
        let mut rows: BTreeMap<Vec<u32>, Row<'a>> = BTreeMap::new();
        for &col in columns {
            let oid = oid(col);
            for (index, v) in self.column(&oid) {
                rows.entry(index.to_vec()).or_default().insert(col, v);
            }
        }
        rows
    }

    /// The value of a scalar object (`object.0`).
    pub(crate) fn scalar(&self, object: &str) -> Option<&Value> {
        self.get(&oid(object).child(&[0]))
    }
}

impl FromIterator<(Oid, Value)> for Varbinds {
    fn from_iter<I: IntoIterator<Item = (Oid, Value)>>(iter: I) -> Self {
        let mut v = Varbinds::default();
        for (oid, value) in iter {
            v.insert(oid, value);
        }
        v
    }
}

/// A static OID literal.
pub(crate) fn oid(s: &str) -> Oid {
    s.parse().expect("static OID literal")
}

pub(crate) fn issue(column: &'static str, index: &[u32], detail: impl Into<String>) -> DecodeIssue {
    DecodeIssue { column, index: index.to_vec(), detail: detail.into() }
}

/// Unsigned 32-bit values, whatever type the agent chose: Gauge32/Unsigned32, Counter32, or an INTEGER (agents
/// send 4-byte AS numbers above 2^31 as negative Integer32, so those are reinterpreted).
pub(crate) fn want_u32(v: &Value) -> Result<u32, String> {
    match v {
        Value::Gauge32(x) | Value::Counter32(x) | Value::TimeTicks(x) => Ok(*x),
        Value::Integer(i) => u32::try_from(*i)
            .or_else(|_| i32::try_from(*i).map(|s| s as u32))
            .map_err(|_| format!("value {i} out of range")),
        other => Err(format!("expected an unsigned integer, got {other:?}")),
    }
}

pub(crate) fn want_u64(v: &Value) -> Result<u64, String> {
    v.as_u64().ok_or_else(|| format!("expected a counter or gauge, got {v:?}"))
}

pub(crate) fn want_int(v: &Value) -> Result<i64, String> {
    match v {
        Value::Integer(i) => Ok(*i),
        other => Err(format!("expected INTEGER, got {other:?}")),
    }
}

pub(crate) fn want_ipv4(v: &Value) -> Result<Ipv4Addr, String> {
    match v {
        Value::IpAddress(a) => Ok(Ipv4Addr::from(*a)),
        Value::OctetString(b) if b.len() == 4 => Ok(Ipv4Addr::new(b[0], b[1], b[2], b[3])),
        other => Err(format!("expected IpAddress, got {other:?}")),
    }
}

/// An address column: IpAddress, or an InetAddress OCTET STRING of 4 or 16 bytes (20: ipv6z, zone dropped).
/// Empty or all-zero means "none".
pub(crate) fn want_ip(v: &Value) -> Result<Option<IpAddr>, String> {
    let ip = match v {
        Value::IpAddress(a) => IpAddr::V4(Ipv4Addr::from(*a)),
        Value::OctetString(b) => match ip_from_bytes(b) {
            Some(ip) => ip,
            None if b.is_empty() => return Ok(None),
            None => return Err(format!("address of {} bytes", b.len())),
        },
        other => return Err(format!("expected an address, got {other:?}")),
    };
    Ok(Some(ip).filter(|ip| !ip.is_unspecified()))
}

/// 4 bytes (or 8, ipv4z) as IPv4, 16 (or 20, ipv6z) as IPv6; zones are dropped.
pub(crate) fn ip_from_bytes(b: &[u8]) -> Option<IpAddr> {
    match b.len() {
        4 | 8 => Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
        16 | 20 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(&b[..16]);
            Some(IpAddr::V6(Ipv6Addr::from(a)))
        }
        _ => None,
    }
}

/// OID index arcs holding bytes (each arc 0..=255).
pub(crate) fn arcs_to_bytes(arcs: &[u32]) -> Option<Vec<u8>> {
    arcs.iter().map(|&a| u8::try_from(a).ok()).collect()
}

pub(crate) fn ipv4_from_arcs(arcs: &[u32]) -> Option<Ipv4Addr> {
    match arcs_to_bytes(arcs)?.as_slice() {
        &[a, b, c, d] => Some(Ipv4Addr::new(a, b, c, d)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_column_stops_at_its_last_instance() {
        let v: Varbinds = [
            (oid("1.3.6.1.2.1.15.3.1.2.10.0.0.1"), Value::Integer(6)),
            (oid("1.3.6.1.2.1.15.3.1.2.10.0.0.2"), Value::Integer(1)),
            (oid("1.3.6.1.2.1.15.3.1.3.10.0.0.1"), Value::Integer(2)),
            (oid("1.3.6.1.2.1.15.3.1.20.10.0.0.1"), Value::Integer(9)),
        ]
        .into_iter()
        .collect();
        let col = oid("1.3.6.1.2.1.15.3.1.2");
        let cells: Vec<_> = v.column(&col).map(|(i, v)| (i.to_vec(), v.clone())).collect();
        assert_eq!(cells, vec![(vec![10, 0, 0, 1], Value::Integer(6)), (vec![10, 0, 0, 2], Value::Integer(1))]);
        let rows = v.rows(&["1.3.6.1.2.1.15.3.1.2", "1.3.6.1.2.1.15.3.1.3"]);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[&vec![10, 0, 0, 1]].len(), 2);
    }

    #[test]
    fn four_byte_as_numbers_survive_integer32() {
        assert_eq!(want_u32(&Value::Integer(4_200_000_000_i64 - (1 << 32))), Ok(4_200_000_000));
        assert_eq!(want_u32(&Value::Integer(65001)), Ok(65001));
        assert_eq!(want_u32(&Value::Gauge32(7)), Ok(7));
        assert!(want_u32(&Value::OctetString(vec![])).is_err());
    }

    #[test]
    fn addresses_from_ip_and_inet_address() {
        assert_eq!(want_ip(&Value::IpAddress([10, 0, 0, 1])), Ok(Some("10.0.0.1".parse().unwrap())));
        assert_eq!(want_ip(&Value::IpAddress([0, 0, 0, 0])), Ok(None));
        assert_eq!(want_ip(&Value::OctetString(vec![])), Ok(None));
        let mut v6 = vec![0x20, 0x01, 0x0d, 0xb8];
        v6.extend([0; 11]);
        v6.push(1);
        assert_eq!(want_ip(&Value::OctetString(v6)), Ok(Some("2001:db8::1".parse().unwrap())));
        assert!(want_ip(&Value::OctetString(vec![1, 2, 3])).is_err());
    }
}
