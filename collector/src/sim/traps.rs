//! SNMPv2c notifications from simulated devices: what a state change announces (linkDown and
//! linkUp, coldStart, BGP4-MIB established and backward transition), the varbinds read from the
//! device's MIB as a real agent reads its own objects, and the sender that puts them on the wire
//! from the device's agent address to the configured trap targets (loopback only).
//!
//! Sending is one non-blocking `send_to` per target on a UDP socket bound to the agent's IP
//! (port chosen by the kernel): loopback never makes it wait, and a datagram the kernel does
//! not take is dropped and counted, as a real agent drops notifications it cannot send.

use super::codec::{PDU_TRAP_V2, VarbindEncoder};
use super::mib::Mib;
use super::wiring::EndChanges;
use crate::snmp::{Oid, Value};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicI32, AtomicU64, Ordering};

const SYS_UP_TIME_0: &str = "1.3.6.1.2.1.1.3.0";
const SNMP_TRAP_OID_0: &str = "1.3.6.1.6.3.1.1.4.1.0";
const COLD_START: &str = "1.3.6.1.6.3.1.1.5.1";
const LINK_DOWN: &str = "1.3.6.1.6.3.1.1.5.3";
const LINK_UP: &str = "1.3.6.1.6.3.1.1.5.4";
/// BGP4-MIB (RFC 4273) bgpEstablishedNotification and bgpBackwardTransNotification.
const BGP_ESTABLISHED: &str = "1.3.6.1.2.1.15.0.1";
const BGP_BACKWARD_TRANSITION: &str = "1.3.6.1.2.1.15.0.2";
const IF_ENTRY: &str = "1.3.6.1.2.1.2.2.1";
const BGP_PEER_ENTRY: &str = "1.3.6.1.2.1.15.3.1";
/// Largest notification sent; ours are a few hundred bytes.
const MAX_TRAP_SIZE: usize = 1472;

fn oid(s: &str) -> Oid {
    s.parse().expect("static OID")
}

/// A notification a simulated device sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrapKind {
    /// ifIndex whose ifOperStatus went down.
    LinkDown(u32),
    LinkUp(u32),
    /// The agent (re)started: a reboot, or an agent answering again after a device-down fault.
    ColdStart,
    /// The BGP session with this peer left Established.
    BgpBackwardTransition(Ipv4Addr),
    BgpEstablished(Ipv4Addr),
}

/// One notification due from one device (index in the fabric model).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    pub device: usize,
    pub kind: TrapKind,
}

impl Event {
    pub fn cold_start(device: usize) -> Event {
        Event { device, kind: TrapKind::ColdStart }
    }

    /// What rewriting one port or link end of `device` announces: the port's oper change, then
    /// the BGP session's (with `peer`) leaving and entering Established, in that order.
    pub fn of_link_end(device: usize, if_index: u32, peer: Ipv4Addr, c: EndChanges) -> Vec<Event> {
        let mut out = Vec::new();
        match c.oper {
            Some(false) => out.push(TrapKind::LinkDown(if_index)),
            Some(true) => out.push(TrapKind::LinkUp(if_index)),
            None => {}
        }
        if c.bgp_left {
            out.push(TrapKind::BgpBackwardTransition(peer));
        }
        if c.bgp_entered {
            out.push(TrapKind::BgpEstablished(peer));
        }
        out.into_iter().map(|kind| Event { device, kind }).collect()
    }
}

/// snmpTrapOID.0 and the objects (instances in the device's MIB) the notification carries.
fn definition(kind: &TrapKind) -> (Oid, Vec<Oid>) {
    match *kind {
        TrapKind::LinkDown(i) | TrapKind::LinkUp(i) => {
            let trap = if matches!(kind, TrapKind::LinkDown(_)) { LINK_DOWN } else { LINK_UP };
            // IF-MIB linkDown/linkUp: ifIndex, ifAdminStatus, ifOperStatus.
            (oid(trap), [1, 7, 8].iter().map(|&col| oid(IF_ENTRY).child(&[col, i])).collect())
        }
        TrapKind::ColdStart => (oid(COLD_START), Vec::new()),
        TrapKind::BgpBackwardTransition(peer) | TrapKind::BgpEstablished(peer) => {
            let trap =
                if matches!(kind, TrapKind::BgpEstablished(_)) { BGP_ESTABLISHED } else { BGP_BACKWARD_TRANSITION };
            let index = peer.octets().map(u32::from);
            // bgpPeerRemoteAddr, bgpPeerLastError, bgpPeerState.
            (oid(trap), [7, 14, 2].iter().map(|&col| oid(BGP_PEER_ENTRY).child(&[col]).child(&index)).collect())
        }
    }
}

/// The notification's varbinds as of `now`: sysUpTime.0, snmpTrapOID.0, then its objects with
/// their current values in `mib`.
pub fn varbinds(kind: &TrapKind, mib: &Mib, now: tokio::time::Instant) -> Vec<(Oid, Value)> {
    let (trap_oid, objects) = definition(kind);
    let mut out = vec![
        (oid(SYS_UP_TIME_0), mib.get(&oid(SYS_UP_TIME_0), now)),
        (oid(SNMP_TRAP_OID_0), Value::ObjectIdentifier(trap_oid)),
    ];
    out.extend(objects.into_iter().map(|o| {
        let v = mib.get(&o, now);
        (o, v)
    }));
    out
}

/// An SNMPv2c Trap message.
pub fn encode(community: &str, req_id: i32, varbinds: &[(Oid, Value)]) -> Vec<u8> {
    let mut enc = VarbindEncoder::new(community.as_bytes(), MAX_TRAP_SIZE);
    for (o, v) in varbinds {
        if !enc.push(o, v) {
            break;
        }
    }
    enc.finish_as(PDU_TRAP_V2, req_id)
}

/// Traps sent and dropped since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrapCounts {
    pub sent: u64,
    pub failed: u64,
}

/// Sends the fabric's notifications: one socket per agent IP, every target gets every trap.
#[derive(Debug)]
pub struct TrapSender {
    /// Per device (model order), its agent's IP.
    sources: Vec<IpAddr>,
    sockets: HashMap<IpAddr, UdpSocket>,
    targets: Vec<SocketAddr>,
    community: String,
    next_id: AtomicI32,
    sent: AtomicU64,
    failed: AtomicU64,
}

impl TrapSender {
    /// `sources`: each device's agent IP. Targets must be loopback addresses.
    pub fn new(sources: &[IpAddr], targets: Vec<SocketAddr>, community: &str) -> io::Result<TrapSender> {
        if let Some(t) = targets.iter().find(|t| !t.ip().is_loopback()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("trap target {t}: loopback addresses only"),
            ));
        }
        let mut sockets = HashMap::new();
        for &ip in sources {
            if sockets.contains_key(&ip) {
                continue;
            }
            let socket = UdpSocket::bind(SocketAddr::new(ip, 0))
                .and_then(|s| s.set_nonblocking(true).map(|()| s))
                .map_err(|e| io::Error::new(e.kind(), format!("binding the trap socket on {ip}: {e}")))?;
            sockets.insert(ip, socket);
        }
        Ok(TrapSender {
            sources: sources.to_vec(),
            sockets,
            targets,
            community: community.to_string(),
            next_id: AtomicI32::new(1),
            sent: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        })
    }

    pub fn targets(&self) -> &[SocketAddr] {
        &self.targets
    }

    pub fn counts(&self) -> TrapCounts {
        TrapCounts { sent: self.sent.load(Ordering::Relaxed), failed: self.failed.load(Ordering::Relaxed) }
    }

    /// Sends `kind` from `device` (whose MIB is `mib`) to every target.
    pub fn send(&self, device: usize, kind: &TrapKind, mib: &Mib) {
        let Some(socket) = self.sources.get(device).and_then(|ip| self.sockets.get(ip)) else { return };
        let req_id = self.next_id.fetch_add(1, Ordering::Relaxed) & i32::MAX;
        let datagram = encode(&self.community, req_id, &varbinds(kind, mib, tokio::time::Instant::now()));
        for target in &self.targets {
            match socket.send_to(&datagram, target) {
                Ok(_) => self.sent.fetch_add(1, Ordering::Relaxed),
                Err(e) => {
                    tracing::debug!(device, %target, error = %e, "sim: trap not sent");
                    self.failed.fetch_add(1, Ordering::Relaxed)
                }
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{Fabric, FabricModel};
    use crate::trap::{self, TrapKind as Classified};

    fn decoded(kind: TrapKind, device: &str) -> (Classified, Vec<(Oid, Value)>) {
        let f = Fabric::build(FabricModel::build(&"spines=1,leaves=2".parse().unwrap()).unwrap());
        let mib = f.mib(device).unwrap().read();
        let datagram = encode("public", 7, &varbinds(&kind, &mib, tokio::time::Instant::now()));
        let msg = trap::decode_community(&datagram).expect("netwarden's trap decoder reads it");
        assert_eq!(msg.community, b"public");
        let n = msg.notification;
        (trap::classify(&n.trap_oid, &n.varbinds), n.varbinds)
    }

    #[test]
    fn link_traps_carry_the_ports_if_mib_objects() {
        let (kind, vbs) = decoded(TrapKind::LinkDown(2), "leaf001");
        assert_eq!(kind, Classified::LinkDown { if_index: Some(2) });
        let text: Vec<String> = vbs.iter().skip(1).map(|(o, v)| format!("{o} = {v:?}")).collect();
        assert_eq!(
            text,
            [
                "1.3.6.1.6.3.1.1.4.1.0 = OID: 1.3.6.1.6.3.1.1.5.3",
                "1.3.6.1.2.1.2.2.1.1.2 = INTEGER: 2",
                "1.3.6.1.2.1.2.2.1.7.2 = INTEGER: 1",
                "1.3.6.1.2.1.2.2.1.8.2 = INTEGER: 1",
            ]
        );
        assert!(matches!(vbs[0].1, Value::TimeTicks(_)), "sysUpTime.0 first");
        assert_eq!(decoded(TrapKind::LinkUp(1), "leaf001").0, Classified::LinkUp { if_index: Some(1) });
    }

    #[test]
    fn cold_start_and_bgp_traps_classify() {
        assert_eq!(decoded(TrapKind::ColdStart, "spine1").0, Classified::ColdStart);
        let peer = Ipv4Addr::new(10, 128, 0, 1);
        let (kind, vbs) = decoded(TrapKind::BgpBackwardTransition(peer), "spine1");
        assert_eq!(kind, Classified::BgpBackwardTransition { peer: Some(IpAddr::V4(peer)) });
        assert_eq!(vbs[2].1, Value::IpAddress(peer.octets()), "bgpPeerRemoteAddr");
        assert_eq!(vbs[4].1, Value::Integer(6), "bgpPeerState as the MIB has it");
        assert_eq!(
            decoded(TrapKind::BgpEstablished(peer), "spine1").0,
            Classified::BgpEstablished { peer: Some(IpAddr::V4(peer)) }
        );
    }

    #[test]
    fn targets_are_loopback_only() {
        let err = TrapSender::new(&[IpAddr::from([127, 0, 0, 1])], vec!["192.0.2.1:162".parse().unwrap()], "public")
            .unwrap_err();
        assert_eq!(err.to_string(), "trap target 192.0.2.1:162: loopback addresses only");
    }
}
