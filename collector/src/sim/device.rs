//! Builders that fill a simulated device's [`Mib`]: the system group and IF-MIB (ifTable,
//! ifXTable) with N ports. Routing and neighbour tables are further builders of the same kind.

use super::mib::{Mib, MibValue};
use crate::snmp::{Oid, Value};

const SYSTEM: &str = "1.3.6.1.2.1.1";
const IF_NUMBER: &str = "1.3.6.1.2.1.2.1.0";
const IF_ENTRY: &str = "1.3.6.1.2.1.2.2.1";
const IFX_ENTRY: &str = "1.3.6.1.2.1.31.1.1.1";
/// ethernetCsmacd (IANAifType).
const IF_TYPE_ETHERNET: i64 = 6;

fn oid(s: &str) -> Oid {
    s.parse().expect("static OID")
}

/// The system group's fixed values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SystemInfo {
    pub name: String,
    pub descr: String,
    pub object_id: Oid,
    pub contact: String,
    pub location: String,
}

impl SystemInfo {
    pub fn new(name: impl Into<String>) -> SystemInfo {
        SystemInfo {
            name: name.into(),
            descr: "netwarden simulated switch".to_string(),
            // enterprises.99999 is unassigned: no collision with a real vendor's sysObjectID.
            object_id: oid("1.3.6.1.4.1.99999.1.1"),
            contact: "noc@example.invalid".to_string(),
            location: "sim".to_string(),
        }
    }
}

/// sysDescr, sysObjectID, sysUpTime (from the MIB's start), sysContact, sysName, sysLocation,
/// sysServices.
pub fn add_system(mib: &mut Mib, sys: &SystemInfo) {
    let base = oid(SYSTEM);
    let s = |arc: u32| base.child(&[arc, 0]);
    mib.insert(s(1), Value::OctetString(sys.descr.clone().into_bytes()));
    mib.insert(s(2), Value::ObjectIdentifier(sys.object_id.clone()));
    mib.insert(s(3), MibValue::UpTime);
    mib.insert(s(4), Value::OctetString(sys.contact.clone().into_bytes()));
    mib.insert(s(5), Value::OctetString(sys.name.clone().into_bytes()));
    mib.insert(s(6), Value::OctetString(sys.location.clone().into_bytes()));
    // Layers 2 and 3 (bridge + router).
    mib.insert(s(7), Value::Integer(6));
}

/// One simulated port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    pub if_index: u32,
    pub name: String,
    pub alias: String,
    pub speed_mbps: u32,
    pub mtu: i64,
    pub admin_up: bool,
    pub oper_up: bool,
    /// Octets per second each way while up; packets follow at `octets / avg_packet_size`.
    pub in_octets_per_s: u64,
    pub out_octets_per_s: u64,
    /// Counter values at start-up (e.g. near 2^32 to exercise Counter32 wrap).
    pub counter_base: u64,
    /// ifPhysAddress.
    pub mac: [u8; 6],
}

/// Average packet size of the traffic model, in octets.
const AVG_PACKET: u64 = 800;

/// `count` ports named eth1..ethN at `speed_mbps` (see [`ethernet_port`]).
pub fn ethernet_ports(count: u32, speed_mbps: u32) -> Vec<PortSpec> {
    (1..=count).map(|i| ethernet_port(i, speed_mbps)).collect()
}

/// Port `i` (eth`i`) at `speed_mbps`, up, carrying a different but deterministic share (1–30 %)
/// of its speed each way.
pub fn ethernet_port(i: u32, speed_mbps: u32) -> PortSpec {
    let bytes_per_s = u64::from(speed_mbps) * 1_000_000 / 8;
    let pct_in = 1 + u64::from(i * 7 % 30);
    let pct_out = 1 + u64::from(i * 13 % 30);
    PortSpec {
        if_index: i,
        name: format!("eth{i}"),
        alias: format!("port {i}"),
        speed_mbps,
        mtu: 9000,
        admin_up: true,
        oper_up: true,
        in_octets_per_s: bytes_per_s * pct_in / 100,
        out_octets_per_s: bytes_per_s * pct_out / 100,
        counter_base: u64::from(i) * 1_000_000,
        mac: mac(0, i),
    }
}

/// A port's MAC: `02` (locally administered: never a real vendor's, and never printable text,
/// so net-snmp shows it as Hex-STRING like a real MAC), three bytes of device number, two of
/// port number. Port 0 is the device's own (chassis) MAC.
pub fn mac(device: u32, port: u32) -> [u8; 6] {
    let d = device.to_be_bytes();
    let p = port.to_be_bytes();
    [0x02, d[1], d[2], d[3], p[2], p[3]]
}

/// A MAC as netwarden prints it (`02:00:00:01:00:00`), e.g. a decoded LLDP chassis ID.
pub fn mac_text(mac: [u8; 6]) -> String {
    mac.iter().map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(":")
}

/// ifNumber, every ifTable column and every ifXTable column for `ports`. Counters are live:
/// the HC counters advance at the port's rates (zero while oper down), the 32-bit ones are
/// their low 32 bits, as on a real agent.
pub fn add_interfaces(mib: &mut Mib, ports: &[PortSpec]) {
    mib.insert(oid(IF_NUMBER), Value::Integer(ports.len() as i64));
    let entry = oid(IF_ENTRY);
    let xentry = oid(IFX_ENTRY);
    for p in ports {
        let i = p.if_index;
        let e = |col: u32| entry.child(&[col, i]);
        let x = |col: u32| xentry.child(&[col, i]);
        let up = |rate: u64| if p.oper_up { rate } else { 0 };
        let base = p.counter_base;
        let status = |on: bool| Value::Integer(if on { 1 } else { 2 });

        mib.insert(e(1), Value::Integer(i64::from(i)));
        mib.insert(e(2), Value::OctetString(p.name.clone().into_bytes()));
        mib.insert(e(3), Value::Integer(IF_TYPE_ETHERNET));
        mib.insert(e(4), Value::Integer(p.mtu));
        let bps = u64::from(p.speed_mbps) * 1_000_000;
        mib.insert(e(5), Value::Gauge32(u32::try_from(bps).unwrap_or(u32::MAX)));
        mib.insert(e(6), Value::OctetString(p.mac.to_vec()));
        mib.insert(e(7), status(p.admin_up));
        mib.insert(e(8), status(p.oper_up));
        mib.insert(e(9), Value::TimeTicks(0));
        mib.insert(e(13), MibValue::counter32(0, 0));
        mib.insert(e(14), MibValue::counter32(0, 0));
        mib.insert(e(15), MibValue::counter32(0, 0));
        mib.insert(e(19), MibValue::counter32(0, 0));
        mib.insert(e(20), MibValue::counter32(0, 0));
        mib.insert(e(21), Value::Gauge32(0));
        mib.insert(e(22), Value::ObjectIdentifier(Oid(vec![0, 0])));

        mib.insert(x(1), Value::OctetString(p.name.clone().into_bytes()));
        mib.insert(x(14), Value::Integer(1));
        mib.insert(x(15), Value::Gauge32(p.speed_mbps));
        mib.insert(x(16), Value::Integer(2));
        mib.insert(x(17), Value::Integer(1));
        mib.insert(x(18), Value::OctetString(p.alias.clone().into_bytes()));
        mib.insert(x(19), Value::TimeTicks(0));
        for (counter, rate, bits) in port_counter_rates(i, up(p.in_octets_per_s), up(p.out_octets_per_s)) {
            mib.insert(counter, MibValue::Counter { base, rate_per_s: rate, bits });
        }
    }
}

/// The counters of one port in IF-MIB (ifTable and ifXTable), with the rate each one advances
/// at while the port carries `in_octets_per_s` and `out_octets_per_s`: what a link going down or
/// coming up changes. Returns (counter, rate per second, width in bits); the error and discard
/// counters are not in it (they stay at 0).
pub fn port_counter_rates(if_index: u32, in_octets_per_s: u64, out_octets_per_s: u64) -> Vec<(Oid, u64, u8)> {
    let entry = oid(IF_ENTRY);
    let xentry = oid(IFX_ENTRY);
    let (in_pkts, out_pkts) = (in_octets_per_s / AVG_PACKET, out_octets_per_s / AVG_PACKET);
    let (in_mc, in_bc, out_mc, out_bc) = (in_pkts / 50, in_pkts / 200, out_pkts / 50, out_pkts / 200);
    let e = |col: u32, rate: u64| (entry.child(&[col, if_index]), rate, 32);
    let x = |col: u32, rate: u64, bits: u8| (xentry.child(&[col, if_index]), rate, bits);
    vec![
        e(10, in_octets_per_s),
        e(11, in_pkts - in_mc - in_bc),
        e(12, in_mc + in_bc),
        e(16, out_octets_per_s),
        e(17, out_pkts - out_mc - out_bc),
        e(18, out_mc + out_bc),
        x(2, in_mc, 32),
        x(3, in_bc, 32),
        x(4, out_mc, 32),
        x(5, out_bc, 32),
        x(6, in_octets_per_s, 64),
        x(7, in_pkts - in_mc - in_bc, 64),
        x(8, in_mc, 64),
        x(9, in_bc, 64),
        x(10, out_octets_per_s, 64),
        x(11, out_pkts - out_mc - out_bc, 64),
        x(12, out_mc, 64),
        x(13, out_bc, 64),
    ]
}

/// ifAdminStatus of a port.
pub fn if_admin_status(if_index: u32) -> Oid {
    oid(IF_ENTRY).child(&[7, if_index])
}

/// ifAlias of a port.
pub fn if_alias(if_index: u32) -> Oid {
    oid(IFX_ENTRY).child(&[18, if_index])
}

/// ifOperStatus of a port.
pub fn if_oper_status(if_index: u32) -> Oid {
    oid(IF_ENTRY).child(&[8, if_index])
}

/// ifLastChange of a port.
pub fn if_last_change(if_index: u32) -> Oid {
    oid(IF_ENTRY).child(&[9, if_index])
}

/// A switch: the system group plus `ports` Ethernet ports at `speed_mbps`. Its OIDs are the
/// template layer, so clones share them.
pub fn switch(name: &str, ports: u32, speed_mbps: u32) -> Mib {
    let mut mib = Mib::new();
    add_system(&mut mib, &SystemInfo::new(name));
    add_interfaces(&mut mib, &ethernet_ports(ports, speed_mbps));
    mib.freeze();
    mib
}

/// `count` identical switches named `name(i)`: built once and cloned, so they share one OID
/// list (the memory that matters at 10,000 devices) and differ in sysName. Each one's clock
/// starts when it is made.
pub fn switches(
    count: usize,
    ports: u32,
    speed_mbps: u32,
    name: impl Fn(usize) -> String,
) -> impl Iterator<Item = Mib> {
    let template = switch("template", ports, speed_mbps);
    let sys_name = oid(SYSTEM).child(&[5, 0]);
    (0..count).map(move |i| {
        let mut m = template.clone();
        m.insert(sys_name.clone(), Value::OctetString(name(i).into_bytes()));
        m.restart();
        m
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ifmib;
    use std::time::Duration;

    #[test]
    fn the_pollers_decoder_reads_a_simulated_switch() {
        let mib = switch("leaf1", 48, 10_000);
        let t0 = mib.started();
        // 7 system + ifNumber + 48 × (22 + 19).
        assert_eq!(mib.len(), 8 + 48 * 41);
        let sys =
            ifmib::decode_system(&ifmib::system_oids().iter().map(|o| (o.clone(), mib.get(o, t0))).collect::<Vec<_>>());
        assert_eq!(sys.sys_name.as_deref(), Some("leaf1"));
        assert_eq!(sys.sys_uptime_ticks, Some(0));
        let columns: Vec<Vec<(Vec<u32>, Value)>> = ifmib::if_column_oids()
            .iter()
            .map(|c| {
                mib.subtree(c, t0 + Duration::from_secs(10))
                    .into_iter()
                    .map(|(o, v)| (o.suffix(c).expect("under").to_vec(), v))
                    .collect()
            })
            .collect();
        let (rows, issues) = ifmib::decode_interfaces(&columns);
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(rows.len(), 48);
        assert_eq!(rows[0].name.as_deref(), Some("eth1"));
        assert_eq!(rows[47].name.as_deref(), Some("eth48"));
        assert_eq!(rows[0].speed_bps, Some(10_000_000_000));
        assert_eq!((rows[0].admin_status, rows[0].oper_status), (Some(1), Some(1)));
        let hc_in = rows[0].counter(ifmib::CounterKind::InOctets).expect("in octets");
        // eth1 carries 8 % of 10 Gbit/s in: 100 MB/s, for 10 s, from a base of 1,000,000.
        assert_eq!((hc_in.value, hc_in.bits), (1_000_000 + 10 * 100_000_000, 64));
    }

    #[test]
    fn switches_from_one_template_share_their_oids() {
        let fabric: Vec<Mib> = switches(3, 8, 1_000, |i| format!("leaf{i}")).collect();
        assert!(fabric[0].shares_oids_with(&fabric[2]));
        let name = |m: &Mib| m.get(&oid(ifmib::SYS_NAME), m.started());
        assert_eq!(name(&fabric[1]), Value::OctetString(b"leaf1".to_vec()));
        assert_eq!(fabric[1].snapshot(fabric[1].started()).len(), 8 + 8 * 41);
        // A device that grows an OID keeps it in its own layer and still shares the template.
        let mut changed = fabric[0].clone();
        changed.insert(oid("1.3.6.1.4.1.99999.9.0"), Value::Integer(1));
        changed.insert(oid("1.3.6.1.2.1.2.2.1.2.4"), Value::OctetString(b"renamed".to_vec()));
        assert!(changed.shares_oids_with(&fabric[1]) && fabric[0].shares_oids_with(&fabric[1]));
        assert_eq!((changed.len(), changed.own_len(), fabric[0].len()), (fabric[0].len() + 1, 1, 8 + 8 * 41));
        let last = changed.snapshot(changed.started()).pop().expect("entries");
        assert_eq!(last, (oid("1.3.6.1.4.1.99999.9.0"), Value::Integer(1)), "own entries merge in order");
        assert!(changed.remove(&oid("1.3.6.1.4.1.99999.9.0")).is_some());
        changed.insert(oid("1.3.6.1.2.1.2.2.1.2.4"), Value::OctetString(b"eth4".to_vec()));
        assert_eq!(changed.snapshot(changed.started()), fabric[0].snapshot(fabric[0].started()));
        // Removing a template OID copies the list for that device only.
        assert!(changed.remove(&oid("1.3.6.1.2.1.1.5.0")).is_some());
        assert!(!changed.shares_oids_with(&fabric[1]) && fabric[0].shares_oids_with(&fabric[1]));
    }
}
