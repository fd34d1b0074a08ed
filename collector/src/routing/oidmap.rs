//! BGP OID maps: which table, which index layout and which column means what, as data (`maps/*.toml`).
//!
//! Supporting another vendor's BGP MIB is adding a map file and its line in [`BUILTIN`], not code. A map lists
//! tables; each has an entry OID, an index layout made of [`IndexPart`]s and column numbers mapped to [`Field`]s.
//! Every row is tied to a peer by the address (and routing instance) in its index, so a map can add IPv6
//! sessions, or only prefix counts, to what an earlier map found. Maps are applied in [`BUILTIN`] order and an
//! earlier map's value wins: BGP4-MIB first, then vendor MIBs fill what it is silent about.

use super::bgp::{FamilyKey, PeerDraft, Peers};
use super::{Row, Varbinds, arcs_to_bytes, ip_from_bytes, issue, want_int, want_ip, want_u32, want_u64};
use crate::ifmib::DecodeIssue;
use crate::snmp::Oid;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::OnceLock;

/// The maps compiled into netwarden, in precedence order.
const BUILTIN: &[(&str, &str)] = &[
    ("bgp4-mib.toml", include_str!("maps/bgp4-mib.toml")),
    ("arista-bgp4v2.toml", include_str!("maps/arista-bgp4v2.toml")),
    ("cisco-bgp4.toml", include_str!("maps/cisco-bgp4.toml")),
    ("frr-bgp4v2.toml", include_str!("maps/frr-bgp4v2.toml")),
];

/// One component of a table index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndexPart {
    /// One arc: routing instance (the BGP4V2 drafts' bgp4V2PeerInstance); rows without one are instance 1.
    Instance,
    /// Four arcs: an IPv4 peer address (BGP4-MIB).
    Ipv4,
    /// One arc: InetAddressType (1 ipv4, 2 ipv6, 3 ipv4z, 4 ipv6z) of the address that follows.
    AddrType,
    /// InetAddress as SMI encodes it in an index: a length arc, then one arc per byte.
    InetAddress,
    /// InetAddress without the length arc, its size implied by the preceding `addr_type` (FRR's encoding).
    InetAddressByType,
    /// One arc: address family identifier (1 IPv4, 2 IPv6, 25 L2VPN).
    Afi,
    /// One arc: subsequent address family identifier (1 unicast, 2 multicast, 128 VPN ...).
    Safi,
}

/// What a column means for the peer (or, in a table indexed by afi/safi, for one address family of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    State,
    AdminStatus,
    RemoteAs,
    LocalAs,
    LocalAddr,
    /// Seconds in (or since leaving) Established.
    EstablishedTime,
    EstablishedTransitions,
    InUpdates,
    OutUpdates,
    /// OCTET STRING (SIZE(2)): error code, subcode.
    LastError,
    LastErrorReceivedCode,
    LastErrorReceivedSubcode,
    LastErrorSentCode,
    LastErrorSentSubcode,
    /// Per address family only.
    PrefixesReceived,
    /// Per address family only.
    PrefixesAccepted,
}

impl Field {
    fn per_family(self) -> bool {
        matches!(self, Field::PrefixesReceived | Field::PrefixesAccepted)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MapFile {
    name: String,
    description: String,
    #[serde(rename = "table")]
    tables: Vec<TableFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TableFile {
    entry: String,
    index: Vec<IndexPart>,
    #[serde(default)]
    alt_index: Option<Vec<IndexPart>>,
    columns: BTreeMap<String, Field>,
}

/// A compiled map: the source name of every peer it finds is `name`.
#[derive(Debug, Clone, PartialEq)]
pub struct OidMap {
    pub name: String,
    pub description: String,
    pub tables: Vec<MapTable>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MapTable {
    pub entry: Oid,
    /// Layouts tried in order (the first is `index`, then `alt_index`, for older firmware of the same table).
    pub layouts: Vec<Vec<IndexPart>>,
    /// Column number, its full OID (for issues) and its meaning.
    pub columns: Vec<(u32, &'static str, Field)>,
}

impl OidMap {
    /// The column OIDs to walk.
    pub fn columns(&self) -> Vec<Oid> {
        self.tables.iter().flat_map(|t| t.columns.iter().map(|(n, _, _)| t.entry.child(&[*n]))).collect()
    }
}

/// The built-in maps, compiled once. A broken built-in map is a bug the unit tests catch.
pub fn builtin_maps() -> &'static [OidMap] {
    static MAPS: OnceLock<Vec<OidMap>> = OnceLock::new();
    MAPS.get_or_init(|| {
        BUILTIN
            .iter()
            .map(|(file, text)| {
                compile_map(file, text).unwrap_or_else(|e| panic!("built-in map {file}: {}", e.join("; ")))
            })
            .collect()
    })
}

/// Parses and checks one map file, collecting every error (each naming the file and the table).
pub fn compile_map(file: &str, text: &str) -> Result<OidMap, Vec<String>> {
    let raw: MapFile = toml::from_str(text).map_err(|e| vec![format!("{file}: {e}")])?;
    let mut errors = Vec::new();
    if raw.name.trim().is_empty() {
        errors.push(format!("{file}: name is empty"));
    }
    if raw.tables.is_empty() {
        errors.push(format!("{file}: no [[table]]"));
    }
    let mut tables = Vec::new();
    for (ti, t) in raw.tables.iter().enumerate() {
        let here = format!("{file}: table {} (entry {:?})", ti + 1, t.entry);
        let entry: Option<Oid> = t.entry.parse().ok();
        if entry.is_none() {
            errors.push(format!("{here}: entry is not a dotted OID"));
        }
        let mut layouts = vec![t.index.clone()];
        layouts.extend(t.alt_index.clone());
        let mut per_family = None;
        for layout in &layouts {
            match check_layout(layout) {
                Ok(f) if per_family.is_some_and(|p| p != f) => {
                    errors.push(format!("{here}: index and alt_index disagree on afi/safi"));
                }
                Ok(f) => per_family = Some(f),
                Err(e) => errors.push(format!("{here}: index {layout:?}: {e}")),
            }
        }
        if t.columns.is_empty() {
            errors.push(format!("{here}: no columns"));
        }
        let mut columns = Vec::new();
        for (num, field) in &t.columns {
            let Ok(n) = num.parse::<u32>() else {
                errors.push(format!("{here}: column {num:?} is not a column number"));
                continue;
            };
            if n == 0 {
                errors.push(format!("{here}: column 0 does not exist"));
                continue;
            }
            if field.per_family() != per_family.unwrap_or(false) {
                let want = if field.per_family() { "afi and safi in its index" } else { "no afi/safi in its index" };
                errors.push(format!("{here}: column {n} ({field:?}) belongs in a table with {want}"));
            }
            if let Some(e) = &entry {
                // Leaked once per compiled map (built-in maps compile once per process): issues carry &'static str.
                let name: &'static str = e.child(&[n]).to_string().leak();
                columns.push((n, name, *field));
            }
        }
        if let Some(entry) = entry {
            tables.push(MapTable { entry, layouts, columns });
        }
    }
    if errors.is_empty() { Ok(OidMap { name: raw.name, description: raw.description, tables }) } else { Err(errors) }
}

/// Whether a layout identifies a peer unambiguously; returns whether it is per address family.
fn check_layout(layout: &[IndexPart]) -> Result<bool, String> {
    use IndexPart as P;
    let count = |p: P| layout.iter().filter(|&&x| x == p).count();
    for p in [P::Instance, P::Ipv4, P::AddrType, P::InetAddress, P::InetAddressByType, P::Afi, P::Safi] {
        if count(p) > 1 {
            return Err(format!("{p:?} twice"));
        }
    }
    if count(P::Ipv4) + count(P::InetAddress) + count(P::InetAddressByType) != 1 {
        return Err("needs exactly one peer address part (ipv4, inet_address or inet_address_by_type)".into());
    }
    let pos = |p: P| layout.iter().position(|&x| x == p);
    if let Some(a) = pos(P::InetAddressByType)
        && pos(P::AddrType).is_none_or(|t| t + 1 != a)
    {
        return Err("inet_address_by_type must directly follow addr_type".into());
    }
    if count(P::Afi) != count(P::Safi) {
        return Err("afi and safi come together".into());
    }
    Ok(count(P::Afi) == 1)
}

/// A row's place: the peer (instance, address) and, in per-family tables, the family.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RowKey {
    /// `None` when the layout has no instance part.
    pub instance: Option<u32>,
    pub addr: IpAddr,
    pub family: Option<FamilyKey>,
}

fn inet_len(addr_type: u32) -> Option<usize> {
    match addr_type {
        1 => Some(4),
        2 => Some(16),
        3 => Some(8),
        4 => Some(20),
        _ => None,
    }
}

pub(crate) fn parse_index(layout: &[IndexPart], index: &[u32]) -> Result<RowKey, String> {
    let mut rest = index;
    let mut take = |n: usize| -> Result<&[u32], String> {
        if rest.len() < n {
            return Err("index too short".into());
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    let (mut instance, mut addr, mut addr_type, mut afi, mut safi) = (None, None, None, None, None);
    for part in layout {
        match part {
            IndexPart::Instance => instance = Some(take(1)?[0]),
            IndexPart::Ipv4 => {
                let b = arcs_to_bytes(take(4)?).ok_or("address arc above 255")?;
                addr = Some(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3])));
            }
            IndexPart::AddrType => addr_type = Some(take(1)?[0]),
            IndexPart::InetAddress => {
                let len = take(1)?[0] as usize;
                if let Some(want) = addr_type.and_then(inet_len)
                    && want != len
                {
                    return Err(format!("address type {} with {len} bytes", addr_type.unwrap_or(0)));
                }
                let b = arcs_to_bytes(take(len)?).ok_or("address arc above 255")?;
                addr = Some(ip_from_bytes(&b).ok_or_else(|| format!("address of {len} bytes"))?);
            }
            IndexPart::InetAddressByType => {
                let t = addr_type.unwrap_or(0);
                let len = inet_len(t).ok_or_else(|| format!("address type {t}"))?;
                let b = arcs_to_bytes(take(len)?).ok_or("address arc above 255")?;
                addr = ip_from_bytes(&b);
            }
            IndexPart::Afi => afi = Some(take(1)?[0]),
            IndexPart::Safi => safi = Some(take(1)?[0]),
        }
    }
    if !rest.is_empty() {
        return Err(format!("{} index arcs left over", rest.len()));
    }
    let addr = addr.ok_or("no peer address in index")?;
    let family = match (afi, safi) {
        (Some(afi), Some(safi)) => Some(FamilyKey { afi, safi }),
        _ => None,
    };
    Ok(RowKey { instance, addr, family })
}

/// Reads every table of `map` into the peer drafts.
pub(crate) fn apply_map(map: &OidMap, vbs: &Varbinds, peers: &mut Peers, issues: &mut Vec<DecodeIssue>) {
    for table in &map.tables {
        let names: Vec<&'static str> = table.columns.iter().map(|(_, name, _)| *name).collect();
        for (index, row) in vbs.rows(&names) {
            let first_col = row.keys().next().copied().unwrap_or(names[0]);
            let key = table.layouts.iter().map(|l| parse_index(l, &index)).reduce(|a, b| a.or(b));
            let key = match key {
                Some(Ok(k)) => k,
                Some(Err(e)) => {
                    issues.push(issue(first_col, &index, format!("index does not fit {}: {e}", map.name)));
                    continue;
                }
                None => continue,
            };
            let draft = peers.entry(key.instance, key.addr, &map.name, first_col, &index);
            apply_row(draft, key.family, table, &row, &index, issues);
        }
    }
}

fn apply_row(
    draft: &mut PeerDraft,
    family: Option<FamilyKey>,
    table: &MapTable,
    row: &Row<'_>,
    index: &[u32],
    issues: &mut Vec<DecodeIssue>,
) {
    for (_, col, field) in &table.columns {
        let Some(v) = row.get(col) else { continue };
        if let Err(detail) = apply_field(draft, family, *field, v) {
            issues.push(issue(col, index, detail));
        }
    }
}

fn fill<T>(slot: &mut Option<T>, v: T) {
    if slot.is_none() {
        *slot = Some(v);
    }
}

fn byte(v: &crate::snmp::Value) -> Result<u8, String> {
    let n = want_u32(v)?;
    u8::try_from(n).map_err(|_| format!("error code {n} above 255"))
}

fn apply_field(
    d: &mut PeerDraft,
    family: Option<FamilyKey>,
    field: Field,
    v: &crate::snmp::Value,
) -> Result<(), String> {
    use super::bgp::{BgpAdminStatus, BgpState};
    use crate::snmp::Value;
    match field {
        Field::State => {
            let s = want_int(v)?;
            fill(&mut d.state, BgpState::from_mib(s));
            if !(1..=6).contains(&s) {
                return Err(format!("peer state {s} outside 1..6"));
            }
        }
        Field::AdminStatus => match want_int(v)? {
            1 => fill(&mut d.admin_status, BgpAdminStatus::Stop),
            2 => fill(&mut d.admin_status, BgpAdminStatus::Start),
            s => return Err(format!("admin status {s} outside 1..2")),
        },
        Field::RemoteAs => fill(&mut d.remote_as, want_u32(v)?),
        Field::LocalAs => fill(&mut d.local_as, want_u32(v)?),
        Field::LocalAddr => {
            if let Some(ip) = want_ip(v)? {
                fill(&mut d.local_addr, ip);
            }
        }
        Field::EstablishedTime => fill(&mut d.established_time_s, want_u32(v)?),
        Field::EstablishedTransitions => fill(&mut d.fsm_established_transitions, want_u32(v)?),
        Field::InUpdates => fill(&mut d.in_updates, want_u32(v)?),
        Field::OutUpdates => fill(&mut d.out_updates, want_u32(v)?),
        Field::LastError => match v {
            Value::OctetString(b) if b.len() == 2 => fill(&mut d.last_error, (b[0], b[1])),
            other => return Err(format!("expected a 2-byte OCTET STRING, got {other:?}")),
        },
        Field::LastErrorReceivedCode => fill(&mut d.error_received.0, byte(v)?),
        Field::LastErrorReceivedSubcode => fill(&mut d.error_received.1, byte(v)?),
        Field::LastErrorSentCode => fill(&mut d.error_sent.0, byte(v)?),
        Field::LastErrorSentSubcode => fill(&mut d.error_sent.1, byte(v)?),
        Field::PrefixesReceived | Field::PrefixesAccepted => {
            let n = want_u64(v)?;
            let Some(key) = family else { return Err("prefix count outside a per-family table".into()) };
            let fam = d.families.entry(key).or_default();
            if field == Field::PrefixesReceived {
                fill(&mut fam.received, n);
            } else {
                fill(&mut fam.accepted, n);
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use IndexPart as P;

    #[test]
    fn every_builtin_map_compiles_and_every_file_is_listed() {
        assert_eq!(builtin_maps().len(), BUILTIN.len());
        assert_eq!(builtin_maps()[0].name, "BGP4-MIB", "the standard MIB goes first: its values win");
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/routing/maps");
        for entry in std::fs::read_dir(&dir).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(BUILTIN.iter().any(|(f, _)| *f == name), "{name} in {} is not in BUILTIN", dir.display());
        }
    }

    #[test]
    fn bad_maps_report_every_error() {
        let text = r#"
            name = "X"
            description = "broken on purpose"
            [[table]]
            entry = "1.3.6.1.4.1.99.1"
            index = ["addr_type", "instance", "inet_address_by_type"]
            columns = { 0 = "state", x = "remote_as", 3 = "prefixes_accepted" }
            [[table]]
            entry = "1.3.6.1.4.1.99.2"
            index = ["ipv4", "afi"]
            columns = { 1 = "state" }
        "#;
        let errors = compile_map("x.toml", text).unwrap_err();
        let all = errors.join("\n");
        for want in
            ["directly follow addr_type", "column 0", "\"x\" is not a column number", "afi and safi come together"]
        {
            assert!(all.contains(want), "missing {want:?} in:\n{all}");
        }
        let unknown = compile_map(
            "y.toml",
            "name='Y'\ndescription=''\n[[table]]\nentry='1.3'\nindex=['ipv4']\ncolumns={1='bogus'}\n",
        );
        assert!(unknown.unwrap_err()[0].contains("y.toml"), "toml errors name the file");
    }

    #[test]
    fn index_layouts() {
        let k = parse_index(&[P::Ipv4], &[10, 0, 11, 1]).unwrap();
        assert_eq!((k.instance, k.addr), (None, "10.0.11.1".parse().unwrap()));
        // Arista / the draft: instance, type, length-prefixed address, then afi/safi.
        let k =
            parse_index(&[P::Instance, P::AddrType, P::InetAddress, P::Afi, P::Safi], &[3, 1, 4, 192, 0, 2, 1, 1, 1])
                .unwrap();
        assert_eq!(
            (k.instance, k.addr, k.family),
            (Some(3), "192.0.2.1".parse().unwrap(), Some(FamilyKey { afi: 1, safi: 1 }))
        );
        // FRR: no length arc.
        let mut v6 = vec![1, 2, 0x20, 0x01, 0x0d, 0xb8];
        v6.extend([0; 11]);
        v6.push(7);
        let k = parse_index(&[P::Instance, P::AddrType, P::InetAddressByType], &v6).unwrap();
        assert_eq!(k.addr, "2001:db8::7".parse::<IpAddr>().unwrap());
        assert!(parse_index(&[P::AddrType, P::InetAddress], &[1, 16, 1, 2, 3, 4]).is_err(), "type and length disagree");
        assert!(parse_index(&[P::Ipv4], &[10, 0, 0, 1, 5]).is_err(), "left-over arcs");
        assert!(parse_index(&[P::Ipv4], &[10, 0, 300, 1]).is_err());
    }
}
