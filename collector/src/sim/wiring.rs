//! Fills each fabric device's MIB from the [`FabricModel`]: system group, IF-MIB, IP-MIB
//! ipAddrTable, BGP4-MIB, OSPF-MIB and LLDP-MIB, so that both ends of every cable agree.
//!
//! Everything a cable contributes to one device goes through [`apply_link_end`], at build time
//! and again whenever the cable's state changes (a fault injected or cleared, a port shut or a
//! BGP neighbor shut from a device's CLI): ifAdminStatus, ifOperStatus and ifLastChange, ifAlias,
//! the port's counter rates, the LLDP neighbour row, the OSPF neighbour and interface state, and
//! the BGP peer row with its FSM bookkeeping (established transitions and time). The state comes
//! from a [`NetState`] (the running fabric's faults and CLI settings), and what changed comes back
//! as [`EndChanges`] for the notifications. The columns served are the ones the lab's FRR + lldpd + net-snmp agents serve
//! (collector/testdata/routing/frr-spine1.walk), with the same types.

use super::device::{self, PortSpec, SystemInfo};
use super::fabric::{FabricDevice, FabricLink, FabricModel, LinkEnd, PortUse, Role};
use super::mib::{Mib, MibValue};
use crate::snmp::{Oid, Value};
use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::time::Duration;

const BGP_VERSION: &str = "1.3.6.1.2.1.15.1.0";
const BGP_LOCAL_AS: &str = "1.3.6.1.2.1.15.2.0";
const BGP_IDENTIFIER: &str = "1.3.6.1.2.1.15.4.0";
const BGP_PEER_ENTRY: &str = "1.3.6.1.2.1.15.3.1";
const OSPF_ROUTER_ID: &str = "1.3.6.1.2.1.14.1.1.0";
const OSPF_ADMIN_STAT: &str = "1.3.6.1.2.1.14.1.2.0";
const OSPF_IF_ENTRY: &str = "1.3.6.1.2.1.14.7.1";
const OSPF_NBR_ENTRY: &str = "1.3.6.1.2.1.14.10.1";
const IP_AD_ENT: &str = "1.3.6.1.2.1.4.20.1";
const LLDP_LOC: &str = "1.0.8802.1.1.2.1.3";
const LLDP_LOC_PORT_ENTRY: &str = "1.0.8802.1.1.2.1.3.7.1";
const LLDP_REM_ENTRY: &str = "1.0.8802.1.1.2.1.4.1.1";
const LLDP_REM_MAN_ADDR_ENTRY: &str = "1.0.8802.1.1.2.1.4.2.1";
/// ifCounterDiscontinuityTime (ifXTable column 19).
const IF_COUNTER_DISCONTINUITY: &str = "1.3.6.1.2.1.31.1.1.1.19";

/// BGP FSM states as BGP4-MIB numbers them.
pub const BGP_IDLE: i64 = 1;
pub const BGP_ACTIVE: i64 = 3;
pub const BGP_ESTABLISHED: i64 = 6;
/// ospfNbrState full(8); ospfIfState down(1) and pointToPoint(4).
pub const OSPF_NBR_FULL: i64 = 8;
pub const OSPF_IF_DOWN: i64 = 1;
pub const OSPF_IF_POINT_TO_POINT: i64 = 4;
/// BGP timers, as in the lab (keepalive 3 s, hold 9 s).
const KEEPALIVE_S: i64 = 3;
const HOLD_S: i64 = 9;
/// NOTIFICATION cease / administrative shutdown (RFC 4486).
const CEASE_ADMIN_SHUTDOWN: [u8; 2] = [6, 2];

fn oid(s: &str) -> Oid {
    s.parse().expect("static OID")
}

fn ip_arcs(ip: Ipv4Addr) -> [u32; 4] {
    ip.octets().map(u32::from)
}

fn text(s: &str) -> Value {
    Value::OctetString(s.as_bytes().to_vec())
}

/// A port's settings from the device's CLI; `None` keeps the model's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortConfig {
    /// ifAlias (and the LLDP port description).
    pub description: Option<String>,
    /// Administratively down (`shutdown`); by default fabric and host ports are up, unused
    /// ports down.
    pub shutdown: Option<bool>,
}

/// What the wiring renders besides the model: the faults in force and what the devices' CLIs
/// changed. Implemented by the running fabric's state; [`Pristine`] is a fresh fabric.
pub trait NetState {
    /// False while a link-down fault cuts the cable.
    fn cable_ok(&self, link: usize) -> bool;
    /// The CLI settings of `device`'s port `if_index`.
    fn port(&self, device: usize, if_index: u32) -> PortConfig;
    /// Whether `device` administratively shut its BGP session on `link`.
    fn bgp_shut(&self, link: usize, device: usize) -> bool;
}

/// A fresh fabric: every cable up, no CLI changes.
pub struct Pristine;

impl NetState for Pristine {
    fn cable_ok(&self, _: usize) -> bool {
        true
    }
    fn port(&self, _: usize, _: u32) -> PortConfig {
        PortConfig::default()
    }
    fn bgp_shut(&self, _: usize, _: usize) -> bool {
        false
    }
}

/// The state of one cable: carrier and its BGP session's administrative shutdowns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkState {
    /// Frames pass: no link-down fault and neither port administratively down.
    pub up: bool,
    /// Whether the `a` and the `b` end shut the BGP session.
    pub bgp_shut: [bool; 2],
}

impl LinkState {
    pub fn of(model: &FabricModel, net: &dyn NetState, link: usize) -> LinkState {
        let l = &model.links[link];
        let admin_up = |e: LinkEnd| !net.port(e.device, e.if_index).shutdown.unwrap_or(false);
        LinkState {
            up: net.cable_ok(link) && admin_up(l.a) && admin_up(l.b),
            bgp_shut: [net.bgp_shut(link, l.a.device), net.bgp_shut(link, l.b.device)],
        }
    }

    /// Up, and the BGP session not shut at either end.
    pub fn established(&self) -> bool {
        self.up && self.bgp_shut == [false, false]
    }
}

/// What rewriting one port or one link end changed, for the notifications a device sends.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EndChanges {
    /// The port's new ifOperStatus (true: up), if it changed.
    pub oper: Option<bool>,
    /// The BGP session on the link left Established (a backward transition).
    pub bgp_left: bool,
    /// The BGP session on the link entered Established.
    pub bgp_entered: bool,
}

/// sysDescr of a fabric device (also its neighbours' lldpRemSysDesc).
pub fn sys_descr(d: &FabricDevice) -> String {
    format!("netwarden simulated {} {} (AS {})", d.role, d.name, d.asn)
}

/// ifName of port `if_index` on every simulated device.
pub fn port_name(if_index: u32) -> String {
    format!("eth{if_index}")
}

/// ifAlias (and LLDP port description) of a fabric port: where the cable goes.
fn fabric_alias(model: &FabricModel, far: LinkEnd) -> String {
    format!("to {} {}", model.devices[far.device].name, port_name(far.if_index))
}

/// Templates by port count: the OIDs every device of that size has (system group, IF-MIB,
/// LLDP local tables, BGP and OSPF scalars), built once and shared by every clone.
#[derive(Debug, Default)]
pub struct Templates {
    by_ports: HashMap<(u32, u32), Mib>,
}

impl Templates {
    fn get(&mut self, ports: u32, speed_mbps: u32) -> &Mib {
        self.by_ports.entry((ports, speed_mbps)).or_insert_with(|| {
            let mut m = Mib::new();
            device::add_system(&mut m, &SystemInfo::new("template"));
            device::add_interfaces(&mut m, &device::ethernet_ports(ports, speed_mbps));
            add_lldp_local(&mut m, "template", "template", [0; 6], &device::ethernet_ports(ports, speed_mbps));
            for (o, v) in [
                (BGP_VERSION, Value::OctetString(vec![0x10])),
                (BGP_LOCAL_AS, Value::Integer(0)),
                (BGP_IDENTIFIER, Value::IpAddress([0; 4])),
                (OSPF_ROUTER_ID, Value::IpAddress([0; 4])),
                (OSPF_ADMIN_STAT, Value::Integer(1)),
            ] {
                m.insert(oid(o), v);
            }
            m.freeze();
            m
        })
    }
}

/// lldpLocChassisIdSubtype macAddress(4), lldpLocChassisId, lldpLocSysName, lldpLocSysDesc and
/// lldpLocPortTable (port ID subtype interfaceName(5) = ifName, description = ifAlias), as lldpd.
fn add_lldp_local(mib: &mut Mib, name: &str, descr: &str, chassis: [u8; 6], ports: &[PortSpec]) {
    let loc = oid(LLDP_LOC);
    mib.insert(loc.child(&[1, 0]), Value::Integer(4));
    mib.insert(loc.child(&[2, 0]), Value::OctetString(chassis.to_vec()));
    mib.insert(loc.child(&[3, 0]), text(name));
    mib.insert(loc.child(&[4, 0]), text(descr));
    let entry = oid(LLDP_LOC_PORT_ENTRY);
    for p in ports {
        mib.insert(entry.child(&[2, p.if_index]), Value::Integer(5));
        mib.insert(entry.child(&[3, p.if_index]), text(&p.name));
        mib.insert(entry.child(&[4, p.if_index]), text(&p.alias));
    }
}

/// One port of a fabric device as the model and the CLI make it: a cabled one named after the
/// far end and carrying the link's traffic (none while down), a host port with the default
/// traffic model, an unused port shut; then the CLI's description and shutdown on top.
fn port_spec(
    model: &FabricModel,
    d: &FabricDevice,
    if_index: u32,
    link: Option<&FabricLink>,
    net: &dyn NetState,
) -> PortSpec {
    let mut p = device::ethernet_port(if_index, model.spec.speed_mbps);
    p.mac = device::mac(d.number(), if_index);
    let host = matches!(d.role, Role::Leaf | Role::Border);
    let mut carrier = host;
    match link {
        Some(l) => {
            let (_, far) = l.ends_from(d.index).expect("a device's own link");
            (p.in_octets_per_s, p.out_octets_per_s) = l.rates_at(d.index);
            p.alias = fabric_alias(model, far);
            p.admin_up = true;
            carrier = LinkState::of(model, net, l.index).up;
        }
        None if host => p.alias = format!("host port {if_index}"),
        None => {
            p.alias = "unused".to_string();
            p.admin_up = false;
        }
    }
    let cfg = net.port(d.index, if_index);
    if let Some(shut) = cfg.shutdown {
        p.admin_up = !shut;
    }
    if let Some(text) = cfg.description {
        p.alias = text;
    }
    p.oper_up = p.admin_up && carrier;
    if !p.oper_up {
        (p.in_octets_per_s, p.out_octets_per_s) = (0, 0);
    }
    p
}

/// Every port of a fabric device (see [`port_spec`]).
fn ports_of(model: &FabricModel, d: &FabricDevice, net: &dyn NetState) -> Vec<PortSpec> {
    let mut links: Vec<Option<&FabricLink>> = vec![None; d.ports as usize];
    for l in model.links_of(d.index) {
        let (me, _) = l.ends_from(d.index).expect("a device's own link");
        links[me.if_index as usize - 1] = Some(l);
    }
    (1..=d.ports).map(|i| port_spec(model, d, i, links[i as usize - 1], net)).collect()
}

/// Rewrites what port `if_index` of device `d` shows in IF-MIB and LLDP's local port table for
/// the current state, as of `uptime`: admin and oper status (ifLastChange when oper changes),
/// alias and the counters' rates. Returns the new oper status if it changed.
pub fn apply_port(
    mib: &mut Mib,
    model: &FabricModel,
    d: usize,
    if_index: u32,
    net: &dyn NetState,
    uptime: Duration,
) -> Option<bool> {
    let p = port_view(model, d, if_index, net);
    let status = |on: bool| Value::Integer(if on { 1 } else { 2 });
    mib.insert(device::if_admin_status(if_index), status(p.admin_up));
    let oper = device::if_oper_status(if_index);
    let changed = int_of(mib, &oper) != Some(if p.oper_up { 1 } else { 2 });
    if changed {
        mib.insert(oper, status(p.oper_up));
        mib.insert(device::if_last_change(if_index), Value::TimeTicks((uptime.as_millis() / 10) as u32));
    }
    mib.insert(device::if_alias(if_index), text(&p.alias));
    mib.insert(oid(LLDP_LOC_PORT_ENTRY).child(&[4, if_index]), text(&p.alias));
    for (counter, rate, _) in device::port_counter_rates(if_index, p.in_octets_per_s, p.out_octets_per_s) {
        if let Some(v) = mib.entry_mut(&counter) {
            v.set_rate(rate, uptime);
        }
    }
    changed.then_some(p.oper_up)
}

/// Port `if_index` of device `d` as the model and the CLI make it (name, alias, status, rates).
pub fn port_view(model: &FabricModel, d: usize, if_index: u32, net: &dyn NetState) -> PortSpec {
    let link = match model.port_use(d, if_index) {
        PortUse::Fabric(l) => Some(&model.links[l]),
        PortUse::Host | PortUse::Unused => None,
    };
    port_spec(model, &model.devices[d], if_index, link, net)
}

/// Builds device `d`'s whole MIB, its clock starting now, for the state `net` gives (all up
/// for a fresh fabric; the current faults and CLI settings after a reboot).
pub fn build_device(model: &FabricModel, templates: &mut Templates, d: usize, net: &dyn NetState) -> Mib {
    let dev = &model.devices[d];
    let mut mib = templates.get(dev.ports, model.spec.speed_mbps).clone();
    mib.restart();
    let descr = sys_descr(dev);
    let sys = SystemInfo { descr: descr.clone(), location: format!("sim {}", dev.role), ..SystemInfo::new(&dev.name) };
    device::add_system(&mut mib, &sys);
    let ports = ports_of(model, dev, net);
    device::add_interfaces(&mut mib, &ports);
    add_lldp_local(&mut mib, &dev.name, &descr, dev.chassis_mac(), &ports);
    mib.insert(oid(BGP_LOCAL_AS), as_integer(dev.asn));
    mib.insert(oid(BGP_IDENTIFIER), Value::IpAddress(dev.loopback.octets()));
    mib.insert(oid(OSPF_ROUTER_ID), Value::IpAddress(dev.loopback.octets()));
    for l in model.links_of(d) {
        let (me, _) = l.ends_from(d).expect("a device's own link");
        add_link_addresses(&mut mib, me);
        apply_link_end(&mut mib, model, l, d, net, Duration::ZERO, false);
    }
    mib
}

/// BGP4-MIB's AS columns are Integer32: 4-byte AS numbers above 2^31 go out negative, as real
/// agents send them (the poller reads them back as unsigned).
fn as_integer(asn: u32) -> Value {
    Value::Integer(i64::from(asn as i32))
}

/// ipAddrTable and ospfIfTable's fixed columns for one end's /31 (present whatever the state).
fn add_link_addresses(mib: &mut Mib, me: LinkEnd) {
    let a = ip_arcs(me.addr);
    let ip = oid(IP_AD_ENT);
    let row = |col: u32| ip.child(&[col]).child(&a);
    mib.insert(row(1), Value::IpAddress(me.addr.octets()));
    mib.insert(row(2), Value::Integer(i64::from(me.if_index)));
    mib.insert(row(3), Value::IpAddress([255, 255, 255, 254]));
    mib.insert(row(4), Value::Integer(1));
    mib.insert(row(5), Value::Integer(65_535));
    let ospf_if = oid(OSPF_IF_ENTRY);
    let row = |col: u32| ospf_if.child(&[col]).child(&a).child(&[0]);
    mib.insert(row(1), Value::IpAddress(me.addr.octets()));
    mib.insert(row(2), Value::Integer(0));
    mib.insert(row(3), Value::IpAddress([0; 4]));
    // pointToPoint(3), enabled(1), priority 1, transit delay 1, retransmit 1 s, hello 1 s,
    // dead 4 s, poll 60 s: the lab's OSPF timers.
    for (col, v) in [(4, 3), (5, 1), (6, 1), (7, 1), (8, 1), (9, 1), (10, 4), (11, 60)] {
        mib.insert(row(col), Value::Integer(v));
    }
    mib.insert(row(13), Value::IpAddress([0; 4]));
    mib.insert(row(14), Value::IpAddress([0; 4]));
}

fn int_of(mib: &Mib, o: &Oid) -> Option<i64> {
    match mib.entry(o)? {
        MibValue::Static(Value::Integer(i)) => Some(*i),
        _ => None,
    }
}

fn counter_of(mib: &Mib, o: &Oid) -> u32 {
    match mib.entry(o) {
        Some(MibValue::Static(Value::Counter32(c))) => *c,
        _ => 0,
    }
}

/// Writes everything link `l` contributes to device `d`'s MIB for the state `net` gives, as of
/// `uptime` (the device's clock). `session_reset`: the far end rebooted, so an established BGP
/// session went down and came back (one more transition, established time from now).
pub fn apply_link_end(
    mib: &mut Mib,
    model: &FabricModel,
    l: &FabricLink,
    d: usize,
    net: &dyn NetState,
    uptime: Duration,
    session_reset: bool,
) -> EndChanges {
    let (me, far) = l.ends_from(d).expect("apply_link_end on a device of the link");
    let far_dev = &model.devices[far.device];
    let state = LinkState::of(model, net, l.index);

    // IF-MIB: status, last change, alias, traffic.
    let oper = apply_port(mib, model, d, me.if_index, net, uptime);

    // LLDP: the neighbour is known while the cable carries frames.
    let rem = oid(LLDP_REM_ENTRY);
    let rem_index = [0, me.if_index, 1];
    let man_index: Vec<u32> = rem_index.iter().copied().chain([1, 4]).chain(ip_arcs(far_dev.loopback)).collect();
    let man = oid(LLDP_REM_MAN_ADDR_ENTRY);
    let rem_cells = [
        (4, Value::Integer(4)),
        (5, Value::OctetString(far_dev.chassis_mac().to_vec())),
        (6, Value::Integer(5)),
        (7, text(&port_name(far.if_index))),
        (8, text(&port_view(model, far.device, far.if_index, net).alias)),
        (9, text(&far_dev.name)),
        (10, text(&sys_descr(far_dev))),
        // bridge(2) and router(4) supported and enabled, as BITS.
        (11, Value::OctetString(vec![0x28])),
        (12, Value::OctetString(vec![0x28])),
    ];
    let man_cells = [(3, Value::Integer(2)), (4, Value::Integer(0)), (5, Value::ObjectIdentifier(Oid(vec![0, 0])))];
    for (col, v) in rem_cells {
        let o = rem.child(&[col]).child(&rem_index);
        set_present(mib, o, v, state.up);
    }
    for (col, v) in man_cells {
        let o = man.child(&[col]).child(&man_index);
        set_present(mib, o, v, state.up);
    }

    // OSPF: the interface is point-to-point while up; a neighbour that is gone has no row.
    let if_state = oid(OSPF_IF_ENTRY).child(&[12]).child(&ip_arcs(me.addr)).child(&[0]);
    let if_events = oid(OSPF_IF_ENTRY).child(&[15]).child(&ip_arcs(me.addr)).child(&[0]);
    let was = int_of(mib, &if_state);
    let now_state = if state.up { OSPF_IF_POINT_TO_POINT } else { OSPF_IF_DOWN };
    if was != Some(now_state) {
        let events = counter_of(mib, &if_events) + 1;
        mib.insert(if_state, Value::Integer(now_state));
        mib.insert(if_events, Value::Counter32(events));
    }
    let nbr = oid(OSPF_NBR_ENTRY);
    let nbr_index: Vec<u32> = ip_arcs(far.addr).into_iter().chain([0]).collect();
    let nbr_events = nbr.child(&[7]).child(&nbr_index);
    let events = counter_of(mib, &nbr_events).max(5) + u32::from(session_reset);
    let nbr_cells = [
        (1, Value::IpAddress(far.addr.octets())),
        (2, Value::Integer(0)),
        (3, Value::IpAddress(far_dev.loopback.octets())),
        (4, Value::Integer(2)),
        (5, Value::Integer(1)),
        (6, Value::Integer(OSPF_NBR_FULL)),
        (7, Value::Counter32(events)),
        (8, Value::Gauge32(0)),
        (9, Value::Integer(1)),
        (10, Value::Integer(2)),
        (11, Value::Integer(2)),
    ];
    for (col, v) in nbr_cells {
        let o = nbr.child(&[col]).child(&nbr_index);
        set_present(mib, o, v, state.up);
    }

    let (bgp_left, bgp_entered) = apply_bgp_peer(mib, l, d, state, uptime, session_reset, far_dev);
    EndChanges { oper, bgp_left, bgp_entered }
}

/// Inserts `o` when `present`, else removes it (a table row that exists only in some states).
fn set_present(mib: &mut Mib, o: Oid, v: Value, present: bool) {
    if present {
        mib.insert(o, v);
    } else {
        mib.remove(&o);
    }
}

/// The bgpPeerTable row for the session on link `l`, seen from device `d`. Returns whether the
/// session (left, entered) Established.
fn apply_bgp_peer(
    mib: &mut Mib,
    l: &FabricLink,
    d: usize,
    state: LinkState,
    uptime: Duration,
    session_reset: bool,
    far_dev: &FabricDevice,
) -> (bool, bool) {
    let (me, far) = l.ends_from(d).expect("a device of the link");
    let entry = oid(BGP_PEER_ENTRY);
    let peer = ip_arcs(far.addr);
    let cell = |col: u32| entry.child(&[col]).child(&peer);
    let shut_here = state.bgp_shut[usize::from(l.a.device != d)];
    // The side that shut the session stays Idle; the other keeps trying (Active).
    let new_state = if shut_here {
        BGP_IDLE
    } else if state.established() {
        BGP_ESTABLISHED
    } else {
        BGP_ACTIVE
    };
    let prev_state = int_of(mib, &cell(2));
    let mut transitions = counter_of(mib, &cell(15));
    let mut since = match mib.entry(&cell(16)) {
        Some(MibValue::SecondsSince(t)) => *t,
        _ => uptime,
    };
    let entered = new_state == BGP_ESTABLISHED && (prev_state != Some(BGP_ESTABLISHED) || session_reset);
    let left = new_state != BGP_ESTABLISHED && prev_state != Some(new_state);
    if entered {
        transitions += 1;
        since = uptime;
    } else if left || prev_state.is_none() {
        since = uptime;
    }
    let up = new_state == BGP_ESTABLISHED;
    // The upper tier listens on 179; the lower tier connects from an ephemeral port.
    let ephemeral = 32_768 + (l.index % 28_000) as i64;
    let (local_port, remote_port) = match (up, l.a.device == d) {
        (false, _) => (0, 0),
        (true, true) => (179, ephemeral),
        (true, false) => (ephemeral, 179),
    };
    let last_error = if state.bgp_shut.contains(&true) {
        CEASE_ADMIN_SHUTDOWN.to_vec()
    } else {
        match mib.entry(&cell(14)) {
            Some(MibValue::Static(Value::OctetString(b))) => b.clone(),
            _ => vec![0, 0],
        }
    };
    let ident = if up { far_dev.loopback.octets() } else { [0; 4] };
    let cells = [
        (1, MibValue::Static(Value::IpAddress(ident))),
        (2, Value::Integer(new_state).into()),
        (3, Value::Integer(if shut_here { 1 } else { 2 }).into()),
        (4, Value::Integer(if up { 4 } else { 0 }).into()),
        (5, Value::IpAddress(me.addr.octets()).into()),
        (6, Value::Integer(local_port).into()),
        (7, Value::IpAddress(far.addr.octets()).into()),
        (8, Value::Integer(remote_port).into()),
        (9, as_integer(far_dev.asn).into()),
        (10, Value::Counter32(2 + 4 * transitions).into()),
        (11, Value::Counter32(2 + 4 * transitions).into()),
        (12, Value::Counter32(30 * transitions.max(1)).into()),
        (13, Value::Counter32(30 * transitions.max(1)).into()),
        (14, Value::OctetString(last_error).into()),
        (15, Value::Counter32(transitions).into()),
        (16, MibValue::SecondsSince(since)),
        (17, Value::Integer(1).into()),
        (18, Value::Integer(if up { HOLD_S } else { 0 }).into()),
        (19, Value::Integer(if up { KEEPALIVE_S } else { 0 }).into()),
        (20, Value::Integer(HOLD_S).into()),
        (21, Value::Integer(KEEPALIVE_S).into()),
        (23, Value::Integer(0).into()),
        (24, MibValue::SecondsSince(since)),
    ];
    for (col, v) in cells {
        mib.insert(cell(col), v);
    }
    let was_established = prev_state == Some(BGP_ESTABLISHED);
    (was_established && (!up || session_reset), entered && prev_state.is_some())
}

/// Moves every running counter of `if_index` (of width `bits`) to just below its wrap point so
/// that it wraps in about `secs` seconds, and marks the jump in ifCounterDiscontinuityTime as
/// RFC 2863 asks: a poller sees one discontinuity, then a real wrap. Returns how many counters
/// moved.
pub fn wrap_port_counters(mib: &mut Mib, if_index: u32, bits: u8, secs: u64, uptime: Duration) -> usize {
    let mut moved = 0;
    for (counter, _, width) in device::port_counter_rates(if_index, 0, 0) {
        if width != bits {
            continue;
        }
        if let Some(v @ MibValue::Counter { rate_per_s: 1.., .. }) = mib.entry_mut(&counter) {
            v.wrap_in(secs, uptime);
            moved += 1;
        }
    }
    if moved > 0 {
        let ticks = Value::TimeTicks((uptime.as_millis() / 10) as u32);
        mib.insert(oid(IF_COUNTER_DISCONTINUITY).child(&[if_index]), ticks);
    }
    moved
}

/// Builds every device of `model` (all cables up).
pub fn build_all(model: &FabricModel, templates: &mut Templates) -> Vec<Mib> {
    (0..model.devices.len()).map(|d| build_device(model, templates, d, &Pristine)).collect()
}
