//! IF-MIB and the system group: which columns we walk and how varbinds become typed rows.
//!
//! Pure functions from walked columns to [`InterfaceRow`]s; a bad cell is reported and the rest
//! of the table still decodes (partial success, never a failed poll for one odd value).

use crate::snmp::{Oid, Value};
use std::collections::BTreeMap;

pub const SYS_DESCR: &str = "1.3.6.1.2.1.1.1.0";
pub const SYS_OBJECT_ID: &str = "1.3.6.1.2.1.1.2.0";
pub const SYS_UPTIME: &str = "1.3.6.1.2.1.1.3.0";
pub const SYS_NAME: &str = "1.3.6.1.2.1.1.5.0";

/// The system group scalars, fetched with one GET (parsed once, asked for every poll).
pub fn system_oids() -> &'static [Oid] {
    static OIDS: std::sync::LazyLock<Vec<Oid>> = std::sync::LazyLock::new(|| {
        [SYS_DESCR, SYS_OBJECT_ID, SYS_UPTIME, SYS_NAME].iter().map(|s| s.parse().expect("static")).collect()
    });
    &OIDS
}

#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct SystemInfo {
    pub sys_descr: Option<String>,
    pub sys_object_id: Option<String>,
    /// Agent uptime in hundredths of a second: the time base for rates.
    pub sys_uptime_ticks: Option<u32>,
    pub sys_name: Option<String>,
}

pub fn decode_system(vbs: &[(Oid, Value)]) -> SystemInfo {
    let mut s = SystemInfo::default();
    for (oid, v) in vbs {
        match oid.to_string().as_str() {
            SYS_DESCR => s.sys_descr = v.as_text(),
            SYS_OBJECT_ID => {
                if let Value::ObjectIdentifier(o) = v {
                    s.sys_object_id = Some(o.to_string());
                }
            }
            SYS_UPTIME => {
                if let Value::TimeTicks(t) = v {
                    s.sys_uptime_ticks = Some(*t);
                }
            }
            SYS_NAME => s.sys_name = v.as_text(),
            _ => {}
        }
    }
    s
}

/// Columns walked, in the order of [`IfColumn`]. Columns we never store (ifPhysAddress,
/// ifOutQLen, ifSpecific, ...) are not asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum IfColumn {
    Descr,
    Type,
    Mtu,
    Speed,
    AdminStatus,
    OperStatus,
    LastChange,
    InOctets,
    InUcastPkts,
    InDiscards,
    InErrors,
    OutOctets,
    OutUcastPkts,
    OutDiscards,
    OutErrors,
    // ifXTable
    Name,
    InMulticastPkts,
    InBroadcastPkts,
    OutMulticastPkts,
    OutBroadcastPkts,
    HcInOctets,
    HcInUcastPkts,
    HcInMulticastPkts,
    HcInBroadcastPkts,
    HcOutOctets,
    HcOutUcastPkts,
    HcOutMulticastPkts,
    HcOutBroadcastPkts,
    HighSpeed,
    Alias,
    CounterDiscontinuityTime,
}

pub const IF_COLUMNS: [(IfColumn, &str); 31] = [
    (IfColumn::Descr, "1.3.6.1.2.1.2.2.1.2"),
    (IfColumn::Type, "1.3.6.1.2.1.2.2.1.3"),
    (IfColumn::Mtu, "1.3.6.1.2.1.2.2.1.4"),
    (IfColumn::Speed, "1.3.6.1.2.1.2.2.1.5"),
    (IfColumn::AdminStatus, "1.3.6.1.2.1.2.2.1.7"),
    (IfColumn::OperStatus, "1.3.6.1.2.1.2.2.1.8"),
    (IfColumn::LastChange, "1.3.6.1.2.1.2.2.1.9"),
    (IfColumn::InOctets, "1.3.6.1.2.1.2.2.1.10"),
    (IfColumn::InUcastPkts, "1.3.6.1.2.1.2.2.1.11"),
    (IfColumn::InDiscards, "1.3.6.1.2.1.2.2.1.13"),
    (IfColumn::InErrors, "1.3.6.1.2.1.2.2.1.14"),
    (IfColumn::OutOctets, "1.3.6.1.2.1.2.2.1.16"),
    (IfColumn::OutUcastPkts, "1.3.6.1.2.1.2.2.1.17"),
    (IfColumn::OutDiscards, "1.3.6.1.2.1.2.2.1.19"),
    (IfColumn::OutErrors, "1.3.6.1.2.1.2.2.1.20"),
    (IfColumn::Name, "1.3.6.1.2.1.31.1.1.1.1"),
    (IfColumn::InMulticastPkts, "1.3.6.1.2.1.31.1.1.1.2"),
    (IfColumn::InBroadcastPkts, "1.3.6.1.2.1.31.1.1.1.3"),
    (IfColumn::OutMulticastPkts, "1.3.6.1.2.1.31.1.1.1.4"),
    (IfColumn::OutBroadcastPkts, "1.3.6.1.2.1.31.1.1.1.5"),
    (IfColumn::HcInOctets, "1.3.6.1.2.1.31.1.1.1.6"),
    (IfColumn::HcInUcastPkts, "1.3.6.1.2.1.31.1.1.1.7"),
    (IfColumn::HcInMulticastPkts, "1.3.6.1.2.1.31.1.1.1.8"),
    (IfColumn::HcInBroadcastPkts, "1.3.6.1.2.1.31.1.1.1.9"),
    (IfColumn::HcOutOctets, "1.3.6.1.2.1.31.1.1.1.10"),
    (IfColumn::HcOutUcastPkts, "1.3.6.1.2.1.31.1.1.1.11"),
    (IfColumn::HcOutMulticastPkts, "1.3.6.1.2.1.31.1.1.1.12"),
    (IfColumn::HcOutBroadcastPkts, "1.3.6.1.2.1.31.1.1.1.13"),
    (IfColumn::HighSpeed, "1.3.6.1.2.1.31.1.1.1.15"),
    (IfColumn::Alias, "1.3.6.1.2.1.31.1.1.1.18"),
    (IfColumn::CounterDiscontinuityTime, "1.3.6.1.2.1.31.1.1.1.19"),
];

/// The ifTable entry and ifXTable entry roots (for plain subtree walks and benchmarks).
/// The IF-MIB name of an ifAdminStatus / ifOperStatus value (`None` for a value it does not define).
pub fn status_name(s: i16) -> Option<&'static str> {
    Some(match s {
        1 => "up",
        2 => "down",
        3 => "testing",
        4 => "unknown",
        5 => "dormant",
        6 => "notPresent",
        7 => "lowerLayerDown",
        _ => return None,
    })
}

pub const IF_TABLE: &str = "1.3.6.1.2.1.2.2";
pub const IF_X_TABLE: &str = "1.3.6.1.2.1.31.1.1";

pub fn if_column_oids() -> &'static [Oid] {
    static OIDS: std::sync::LazyLock<Vec<Oid>> =
        std::sync::LazyLock::new(|| IF_COLUMNS.iter().map(|(_, s)| s.parse().expect("static")).collect());
    &OIDS
}

/// A counter as the agent reported it, with its width (wrap arithmetic depends on it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Counter {
    pub value: u64,
    pub bits: u8,
}

/// Counters tracked per interface, index into [`InterfaceRow::counters`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum CounterKind {
    InOctets,
    OutOctets,
    InUcast,
    OutUcast,
    InMulticast,
    OutMulticast,
    InBroadcast,
    OutBroadcast,
    InErrors,
    OutErrors,
    InDiscards,
    OutDiscards,
}
pub const COUNTER_KINDS: usize = 12;

#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct InterfaceRow {
    pub if_index: u32,
    pub name: Option<String>,
    pub descr: Option<String>,
    pub alias: Option<String>,
    pub if_type: Option<i32>,
    pub mtu: Option<i32>,
    /// Bits per second: ifHighSpeed × 10⁶ where the agent has it (and it is non-zero), else ifSpeed.
    pub speed_bps: Option<u64>,
    pub admin_status: Option<i16>,
    pub oper_status: Option<i16>,
    pub last_change_ticks: Option<u32>,
    pub discontinuity_ticks: Option<u32>,
    pub counters: [Option<Counter>; COUNTER_KINDS],
}

impl InterfaceRow {
    /// The identity that survives ifIndex renumbering: ifName, else ifDescr, else the index.
    pub fn key(&self) -> String {
        self.name
            .clone()
            .filter(|s| !s.is_empty())
            .or_else(|| self.descr.clone().filter(|s| !s.is_empty()))
            .unwrap_or_else(|| format!("ifIndex.{}", self.if_index))
    }

    pub fn counter(&self, k: CounterKind) -> Option<Counter> {
        self.counters[k as usize]
    }
}

/// Tracking keys for a poll's rows, unique within the device: a name seen twice (agents do
/// that) keeps its first owner and the other row falls back to its index.
pub fn tracking_keys(rows: &[InterfaceRow]) -> Vec<String> {
    let mut seen = std::collections::HashSet::with_capacity(rows.len());
    rows.iter()
        .map(|r| {
            let k = r.key();
            if seen.insert(k.clone()) { k } else { format!("ifIndex.{}", r.if_index) }
        })
        .collect()
}

/// A cell that could not be decoded; the row keeps its other values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeIssue {
    pub column: &'static str,
    pub index: Vec<u32>,
    pub detail: String,
}

impl std::fmt::Display for DecodeIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let idx: Vec<String> = self.index.iter().map(u32::to_string).collect();
        write!(f, "{}.{}: {}", self.column, idx.join("."), self.detail)
    }
}

/// Builds interface rows from the columns walked in [`IF_COLUMNS`] order.
pub fn decode_interfaces<I: AsRef<[u32]>>(columns: &[Vec<(I, Value)>]) -> (Vec<InterfaceRow>, Vec<DecodeIssue>) {
    let mut rows: BTreeMap<u32, InterfaceRow> = BTreeMap::new();
    let mut issues = Vec::new();
    let mut hc_seen = [false; 2];
    for (ci, (col, oid)) in IF_COLUMNS.iter().enumerate() {
        let Some(cells) = columns.get(ci) else { continue };
        for (index, value) in cells {
            let [if_index] = index.as_ref() else {
                issues.push(DecodeIssue {
                    column: oid,
                    index: index.as_ref().to_vec(),
                    detail: "index is not a single ifIndex".into(),
                });
                continue;
            };
            if value.is_exception() {
                continue;
            }
            let row =
                rows.entry(*if_index).or_insert_with(|| InterfaceRow { if_index: *if_index, ..Default::default() });
            if let Err(detail) = apply(row, *col, value, &mut hc_seen) {
                issues.push(DecodeIssue { column: oid, index: vec![*if_index], detail });
            }
        }
    }
    (rows.into_values().collect(), issues)
}

fn want_int(v: &Value) -> Result<i64, String> {
    match v {
        Value::Integer(i) => Ok(*i),
        other => Err(format!("expected INTEGER, got {other:?}")),
    }
}

fn want_text(v: &Value) -> Result<String, String> {
    v.as_text().ok_or_else(|| format!("expected OCTET STRING, got {v:?}"))
}

fn want_c32(v: &Value) -> Result<Counter, String> {
    match v {
        Value::Counter32(c) => Ok(Counter { value: u64::from(*c), bits: 32 }),
        other => Err(format!("expected Counter32, got {other:?}")),
    }
}

fn want_c64(v: &Value) -> Result<Counter, String> {
    match v {
        Value::Counter64(c) => Ok(Counter { value: *c, bits: 64 }),
        // Some agents send HC columns as Counter32; keep the value and its real width.
        Value::Counter32(c) => Ok(Counter { value: u64::from(*c), bits: 32 }),
        other => Err(format!("expected Counter64, got {other:?}")),
    }
}

fn want_gauge(v: &Value) -> Result<u32, String> {
    match v {
        Value::Gauge32(g) => Ok(*g),
        Value::Integer(i) if *i >= 0 => u32::try_from(*i).map_err(|_| format!("value {i} out of range")),
        other => Err(format!("expected Gauge32, got {other:?}")),
    }
}

fn want_ticks(v: &Value) -> Result<u32, String> {
    match v {
        Value::TimeTicks(t) => Ok(*t),
        other => Err(format!("expected TimeTicks, got {other:?}")),
    }
}

fn status(v: &Value) -> Result<i16, String> {
    let i = want_int(v)?;
    if (1..=7).contains(&i) { Ok(i as i16) } else { Err(format!("status {i} outside 1..7")) }
}

fn apply(row: &mut InterfaceRow, col: IfColumn, v: &Value, hc_seen: &mut [bool; 2]) -> Result<(), String> {
    use CounterKind as K;
    use IfColumn as C;
    let set32 = |row: &mut InterfaceRow, k: K, v: &Value| -> Result<(), String> {
        let c = want_c32(v)?;
        // An HC counter already read for this slot wins over its 32-bit twin.
        if row.counters[k as usize].is_none_or(|old| old.bits == 32) {
            row.counters[k as usize] = Some(c);
        }
        Ok(())
    };
    let set64 = |row: &mut InterfaceRow, k: K, v: &Value| -> Result<(), String> {
        row.counters[k as usize] = Some(want_c64(v)?);
        Ok(())
    };
    match col {
        C::Descr => row.descr = Some(want_text(v)?),
        C::Type => row.if_type = Some(want_int(v)? as i32),
        C::Mtu => row.mtu = Some(want_int(v)? as i32),
        C::Speed => {
            let s = u64::from(want_gauge(v)?);
            // ifSpeed saturates at 2^32-1; ifHighSpeed (read later) replaces it when present.
            if row.speed_bps.is_none() {
                row.speed_bps = Some(s);
            }
        }
        C::HighSpeed => {
            let mbps = u64::from(want_gauge(v)?);
            if mbps > 0 {
                row.speed_bps = Some(mbps * 1_000_000);
            }
        }
        C::AdminStatus => row.admin_status = Some(status(v)?),
        C::OperStatus => row.oper_status = Some(status(v)?),
        C::LastChange => row.last_change_ticks = Some(want_ticks(v)?),
        C::CounterDiscontinuityTime => row.discontinuity_ticks = Some(want_ticks(v)?),
        C::Name => row.name = Some(want_text(v)?),
        C::Alias => row.alias = Some(want_text(v)?),
        C::InOctets => set32(row, K::InOctets, v)?,
        C::OutOctets => set32(row, K::OutOctets, v)?,
        C::InUcastPkts => set32(row, K::InUcast, v)?,
        C::OutUcastPkts => set32(row, K::OutUcast, v)?,
        C::InDiscards => set32(row, K::InDiscards, v)?,
        C::OutDiscards => set32(row, K::OutDiscards, v)?,
        C::InErrors => set32(row, K::InErrors, v)?,
        C::OutErrors => set32(row, K::OutErrors, v)?,
        C::InMulticastPkts => set32(row, K::InMulticast, v)?,
        C::InBroadcastPkts => set32(row, K::InBroadcast, v)?,
        C::OutMulticastPkts => set32(row, K::OutMulticast, v)?,
        C::OutBroadcastPkts => set32(row, K::OutBroadcast, v)?,
        C::HcInOctets => {
            hc_seen[0] = true;
            set64(row, K::InOctets, v)?
        }
        C::HcOutOctets => {
            hc_seen[1] = true;
            set64(row, K::OutOctets, v)?
        }
        C::HcInUcastPkts => set64(row, K::InUcast, v)?,
        C::HcOutUcastPkts => set64(row, K::OutUcast, v)?,
        C::HcInMulticastPkts => set64(row, K::InMulticast, v)?,
        C::HcOutMulticastPkts => set64(row, K::OutMulticast, v)?,
        C::HcInBroadcastPkts => set64(row, K::InBroadcast, v)?,
        C::HcOutBroadcastPkts => set64(row, K::OutBroadcast, v)?,
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(cells: &[(u32, Value)]) -> Vec<(Vec<u32>, Value)> {
        cells.iter().map(|(i, v)| (vec![*i], v.clone())).collect()
    }

    fn empty_columns() -> Vec<Vec<(Vec<u32>, Value)>> {
        vec![Vec::new(); IF_COLUMNS.len()]
    }

    #[test]
    fn hc_counters_win_and_32_bit_is_the_fallback() {
        let mut cols = empty_columns();
        cols[IfColumn::InOctets as usize] = col(&[(1, Value::Counter32(10)), (2, Value::Counter32(20))]);
        cols[IfColumn::HcInOctets as usize] = col(&[(1, Value::Counter64(5_000_000_000))]);
        cols[IfColumn::Name as usize] =
            col(&[(1, Value::OctetString(b"eth0".to_vec())), (2, Value::OctetString(b"eth1".to_vec()))]);
        let (rows, issues) = decode_interfaces(&cols);
        assert!(issues.is_empty());
        assert_eq!(rows[0].counter(CounterKind::InOctets), Some(Counter { value: 5_000_000_000, bits: 64 }));
        assert_eq!(rows[1].counter(CounterKind::InOctets), Some(Counter { value: 20, bits: 32 }));
        assert_eq!(rows[1].key(), "eth1");
    }

    #[test]
    fn high_speed_replaces_saturated_if_speed() {
        let mut cols = empty_columns();
        cols[IfColumn::Speed as usize] = col(&[(1, Value::Gauge32(u32::MAX)), (2, Value::Gauge32(100_000_000))]);
        cols[IfColumn::HighSpeed as usize] = col(&[(1, Value::Gauge32(10_000)), (2, Value::Gauge32(0))]);
        let (rows, _) = decode_interfaces(&cols);
        assert_eq!(rows[0].speed_bps, Some(10_000_000_000));
        assert_eq!(rows[1].speed_bps, Some(100_000_000));
    }

    #[test]
    fn a_bad_cell_is_reported_and_the_row_survives() {
        let mut cols = empty_columns();
        cols[IfColumn::OperStatus as usize] = col(&[(3, Value::OctetString(b"up".to_vec()))]);
        cols[IfColumn::Descr as usize] = col(&[(3, Value::OctetString(b"Gi0/3".to_vec()))]);
        let (rows, issues) = decode_interfaces(&cols);
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].descr.as_deref(), Some("Gi0/3"));
        assert_eq!(rows[0].oper_status, None);
        assert_eq!(issues.len(), 1);
        assert!(issues[0].to_string().contains("1.3.6.1.2.1.2.2.1.8.3: expected INTEGER"), "{}", issues[0]);
    }

    #[test]
    fn key_falls_back_to_descr_then_index() {
        let r = InterfaceRow { if_index: 7, descr: Some("Gi0/7".into()), ..Default::default() };
        assert_eq!(r.key(), "Gi0/7");
        let r = InterfaceRow { if_index: 7, name: Some(String::new()), ..Default::default() };
        assert_eq!(r.key(), "ifIndex.7");
    }
}
