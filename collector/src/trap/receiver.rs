//! The trap listener: one UDP socket, each datagram judged against the inventory (source address → device,
//! community or USM credentials), informs answered, and for every accepted notification an immediate re-poll
//! of its device and a [`TrapEvent`] on a bounded channel. Nothing a sender does stops the loop: every
//! datagram ends in exactly one counted outcome.

use super::classify::{TrapKind, classify};
use super::decode::{
    DecodeError, Notification, TrapVersion, V3Error, V3Header, decode_community, decode_v3, message_version, v3_header,
};
use crate::inventory::SnmpCredentials;
use crate::observe::PollNow;
use crate::scheduler::ScheduledDevice;
use crate::snmp::Oid;
use chrono::{DateTime, Utc};
use snmp2::v3;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Where the receiver listens unless configured: loopback and an unprivileged port, so a default start
/// needs no root and exposes nothing. Operators set `0.0.0.0:162`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:1162";
/// Localized v3 keys kept (one per sender engineID and device); the cache is emptied when it is full.
const MAX_LOCALIZED_KEYS: usize = 4096;
/// At most this many log lines per category in each [`LOG_WINDOW`]; the rest are counted and summarised.
const LOG_BURST: u64 = 20;
const LOG_WINDOW: Duration = Duration::from_secs(10);

/// An accepted notification from an inventory device.
#[derive(Debug, Clone)]
pub struct TrapEvent {
    pub device_id: i64,
    pub device: String,
    pub source: SocketAddr,
    /// When the datagram was received.
    pub at: DateTime<Utc>,
    pub version: TrapVersion,
    pub inform: bool,
    pub kind: TrapKind,
    /// snmpTrapOID.0 (for a v1 trap, its RFC 3584 translation).
    pub trap_oid: Oid,
    /// Every varbind as `OID = TYPE: value`, net-snmp style, sysUpTime.0 and snmpTrapOID.0 first.
    pub varbinds: Vec<String>,
}

/// Where accepted notifications go.
#[derive(Debug, Clone, Default)]
pub struct TrapHooks {
    /// Events, for storage and the alert engine. When full the event is dropped and counted
    /// (outcome `dropped`); the receiver never waits. The re-poll is requested all the same.
    pub events: Option<mpsc::Sender<TrapEvent>>,
    /// Shared with the scheduler: every accepted notification polls its device at once.
    pub poll_now: Option<Arc<PollNow>>,
}

/// The one outcome of every datagram (the `outcome` label of `netwarden_traps_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TrapOutcome {
    /// From an inventory device, authenticated, published.
    Accepted,
    /// No inventory device has the source address as its host.
    UnknownSource,
    /// Wrong community, unknown v3 user, or v3 keys that do not authenticate or decrypt it.
    AuthFailed,
    /// Not a notification we can decode (counted by reason in `netwarden_trap_datagrams_malformed_total`).
    Malformed,
    /// Accepted, but the event channel was full (or closed): the event is lost, the re-poll was asked for.
    Dropped,
    /// SNMPv3 engine discovery, which `snmpinform -v3` sends first: answering it needs an authoritative
    /// engine, which this receiver does not have, so v3 informs are not supported.
    Unsupported,
}

impl TrapOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            TrapOutcome::Accepted => "accepted",
            TrapOutcome::UnknownSource => "unknown_source",
            TrapOutcome::AuthFailed => "auth_failed",
            TrapOutcome::Malformed => "malformed",
            TrapOutcome::Dropped => "dropped",
            TrapOutcome::Unsupported => "unsupported",
        }
    }
}

/// Totals since start, by outcome (the same numbers as `netwarden_traps_total`), for the API and tests.
#[derive(Debug, Default)]
pub struct TrapStats {
    pub accepted: AtomicU64,
    pub unknown_source: AtomicU64,
    pub auth_failed: AtomicU64,
    pub malformed: AtomicU64,
    pub dropped: AtomicU64,
    pub unsupported: AtomicU64,
    /// Accepted (or dropped) notifications of kind `other`: an OID netwarden does not interpret.
    pub unknown_kind: AtomicU64,
    pub informs_answered: AtomicU64,
    /// Re-polls asked of the scheduler that it took (the device is scheduled).
    pub polls_requested: AtomicU64,
}

/// A copy of [`TrapStats`] at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TrapCounts {
    pub accepted: u64,
    pub unknown_source: u64,
    pub auth_failed: u64,
    pub malformed: u64,
    pub dropped: u64,
    pub unsupported: u64,
    pub unknown_kind: u64,
    pub informs_answered: u64,
    pub polls_requested: u64,
}

impl TrapStats {
    pub fn snapshot(&self) -> TrapCounts {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        TrapCounts {
            accepted: g(&self.accepted),
            unknown_source: g(&self.unknown_source),
            auth_failed: g(&self.auth_failed),
            malformed: g(&self.malformed),
            dropped: g(&self.dropped),
            unsupported: g(&self.unsupported),
            unknown_kind: g(&self.unknown_kind),
            informs_answered: g(&self.informs_answered),
            polls_requested: g(&self.polls_requested),
        }
    }

    fn count(&self, outcome: TrapOutcome) {
        let c = match outcome {
            TrapOutcome::Accepted => &self.accepted,
            TrapOutcome::UnknownSource => &self.unknown_source,
            TrapOutcome::AuthFailed => &self.auth_failed,
            TrapOutcome::Malformed => &self.malformed,
            TrapOutcome::Dropped => &self.dropped,
            TrapOutcome::Unsupported => &self.unsupported,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }
}

#[derive(Debug, thiserror::Error)]
#[error("cannot listen for SNMP traps on udp {listen}: {source}")]
pub struct BindError {
    pub listen: String,
    #[source]
    pub source: std::io::Error,
}

/// Binds the trap socket (a separate step so a bad address fails start-up, and tests can bind port 0).
pub async fn bind(listen: &str) -> Result<UdpSocket, BindError> {
    UdpSocket::bind(listen).await.map_err(|source| BindError { listen: listen.to_string(), source })
}

/// Receives on `socket` until `cancel`, following the inventory published on `devices` (the scheduler's list).
pub async fn run(
    socket: UdpSocket,
    mut devices: watch::Receiver<Vec<ScheduledDevice>>,
    hooks: TrapHooks,
    stats: Arc<TrapStats>,
    cancel: CancellationToken,
) {
    let mut judge = Judge::new(&devices.borrow_and_update());
    let mut logs = LogLimiter::default();
    let mut buf = vec![0u8; 65_535];
    let mut devices_open = true;
    if let Ok(addr) = socket.local_addr() {
        tracing::info!(listen = %addr, "SNMP trap receiver listening");
    }
    loop {
        tokio::select! {
            _ = cancel.cancelled() => break,
            changed = devices.changed(), if devices_open => match changed {
                Ok(()) => judge.set_devices(&devices.borrow_and_update()),
                // The inventory publisher is gone: keep the last list.
                Err(_) => devices_open = false,
            },
            r = socket.recv_from(&mut buf) => match r {
                Ok((n, source)) => {
                    let verdict = judge.judge(&buf[..n], source.ip().to_canonical());
                    deliver(verdict, &socket, source, &hooks, &stats, &mut logs).await;
                }
                Err(e) => {
                    // ICMP errors from an earlier inform response surface here on Linux; nothing to do but
                    // go on (the short pause keeps a persistent error from spinning).
                    tracing::debug!(error = %e, "trap socket receive error");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
        }
    }
}

async fn deliver(
    verdict: Verdict,
    socket: &UdpSocket,
    source: SocketAddr,
    hooks: &TrapHooks,
    stats: &TrapStats,
    logs: &mut LogLimiter,
) {
    match verdict {
        Verdict::Accepted { device_id, device, notification: n, response } => {
            if let Some(resp) = response {
                match socket.send_to(&resp, source).await {
                    Ok(_) => {
                        stats.informs_answered.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => tracing::debug!(%source, error = %e, "cannot send the inform response"),
                }
            } else if n.inform {
                tracing::debug!(%device, %source, "SNMPv3 inform accepted but not acknowledged (not supported)");
            }
            let kind = classify(&n.trap_oid, &n.varbinds);
            if let Some(p) = &hooks.poll_now {
                if p.request(device_id) {
                    stats.polls_requested.fetch_add(1, Ordering::Relaxed);
                } else {
                    tracing::debug!(%device, "trap from a device the scheduler does not poll; no re-poll");
                }
            }
            let label = kind.label();
            if matches!(kind, TrapKind::Other { .. }) {
                stats.unknown_kind.fetch_add(1, Ordering::Relaxed);
            }
            if n.undecodable_varbinds > 0 {
                metrics::counter!("netwarden_trap_varbinds_undecodable_total").increment(n.undecodable_varbinds as u64);
            }
            let event = TrapEvent {
                device_id,
                device,
                source,
                at: Utc::now(),
                version: n.version,
                inform: n.inform,
                trap_oid: n.trap_oid,
                varbinds: n.varbinds.iter().map(|(o, v)| format!("{o} = {v:?}")).collect(),
                kind,
            };
            if let Some(suppressed) = logs.allow("accepted") {
                let unknown = matches!(event.kind, TrapKind::Other { .. });
                tracing::info!(
                    device = %event.device,
                    %source,
                    version = event.version.as_str(),
                    kind = label,
                    trap_oid = %event.trap_oid,
                    details = ?event.kind,
                    undecodable_varbinds = n.undecodable_varbinds,
                    suppressed,
                    "{}",
                    if unknown { "SNMP trap with a notification OID netwarden does not interpret" } else { "SNMP trap" }
                );
            }
            let outcome = match &hooks.events {
                Some(tx) => match tx.try_send(event) {
                    Ok(()) => TrapOutcome::Accepted,
                    Err(_) => TrapOutcome::Dropped,
                },
                None => TrapOutcome::Accepted,
            };
            record(stats, label, outcome);
        }
        Verdict::Rejected { outcome, kind, device, detail } => {
            record(stats, kind, outcome);
            if let Some(suppressed) = logs.allow(outcome.as_str()) {
                match outcome {
                    TrapOutcome::AuthFailed => {
                        tracing::info!(device = device.as_deref().unwrap_or(""), %source, kind, suppressed, reason = %detail, "SNMP trap rejected: authentication failed")
                    }
                    TrapOutcome::Unsupported => {
                        tracing::info!(%source, kind, suppressed, reason = %detail, "SNMP message not supported")
                    }
                    _ => {
                        tracing::debug!(%source, outcome = outcome.as_str(), kind, suppressed, reason = %detail, "SNMP trap dropped")
                    }
                }
            }
        }
    }
}

fn record(stats: &TrapStats, kind: &'static str, outcome: TrapOutcome) {
    stats.count(outcome);
    metrics::counter!("netwarden_traps_total", "kind" => kind, "outcome" => outcome.as_str()).increment(1);
}

/// What the receiver decided about one datagram.
#[derive(Debug)]
pub(crate) enum Verdict {
    Accepted {
        device_id: i64,
        device: String,
        notification: Notification,
        response: Option<Vec<u8>>,
    },
    /// `kind` is the notification's kind when it could be decoded, else `undecoded` (or `v3_discovery`).
    Rejected {
        outcome: TrapOutcome,
        kind: &'static str,
        device: Option<String>,
        detail: String,
    },
}

/// An inventory device as a possible sender.
#[derive(Debug, Clone)]
struct Candidate {
    id: i64,
    name: String,
    creds: SnmpCredentials,
}

/// The pure core: datagram and source address in, verdict out. Holds the inventory index and the v3 keys.
pub(crate) struct Judge {
    /// Devices by management address, lowest id first (several devices may share an address, e.g.
    /// simulated agents on one host with different ports: the credentials decide).
    by_ip: HashMap<IpAddr, Vec<Candidate>>,
    /// v3 security with keys localized to a sender's engineID, per (engineID, device id).
    keys: HashMap<(Vec<u8>, i64), v3::Security>,
}

impl Judge {
    pub(crate) fn new(devices: &[ScheduledDevice]) -> Judge {
        let mut j = Judge { by_ip: HashMap::new(), keys: HashMap::new() };
        j.set_devices(devices);
        j
    }

    /// Replaces the inventory. Keys are dropped too: the credentials may have changed.
    pub(crate) fn set_devices(&mut self, devices: &[ScheduledDevice]) {
        self.by_ip.clear();
        self.keys.clear();
        for d in devices {
            // Exact IP match only: a device known by a host name receives no traps (resolving names on the
            // receive path would make every datagram wait on DNS).
            let host = d.device.host.trim_start_matches('[').trim_end_matches(']');
            let Ok(ip) = host.parse::<IpAddr>() else { continue };
            let c = Candidate { id: d.id, name: d.device.name.clone(), creds: d.device.snmp.clone() };
            self.by_ip.entry(ip.to_canonical()).or_default().push(c);
        }
        for list in self.by_ip.values_mut() {
            list.sort_by_key(|c| c.id);
        }
    }

    pub(crate) fn judge(&mut self, datagram: &[u8], source: IpAddr) -> Verdict {
        match message_version(datagram) {
            Ok(3) => self.judge_v3(datagram, source),
            Ok(_) => self.judge_community(datagram, source),
            Err(e) => malformed(e),
        }
    }

    fn judge_community(&self, datagram: &[u8], source: IpAddr) -> Verdict {
        let msg = match decode_community(datagram) {
            Ok(m) => m,
            Err(e) => return malformed(e),
        };
        let kind = classify(&msg.notification.trap_oid, &msg.notification.varbinds).label();
        let Some(candidates) = self.by_ip.get(&source) else {
            return unknown_source(kind);
        };
        let matching = candidates.iter().find(|c| match &c.creds {
            SnmpCredentials::V2c { community } => same_secret(community.as_bytes(), msg.community),
            SnmpCredentials::V3(_) => false,
        });
        match matching {
            Some(c) => Verdict::Accepted {
                device_id: c.id,
                device: c.name.clone(),
                notification: msg.notification,
                response: msg.response,
            },
            None => Verdict::Rejected {
                outcome: TrapOutcome::AuthFailed,
                kind,
                device: Some(names(candidates)),
                detail: format!(
                    "{} community does not match the device's v2c community",
                    msg.notification.version.as_str()
                ),
            },
        }
    }

    fn judge_v3(&mut self, datagram: &[u8], source: IpAddr) -> Verdict {
        let header = match v3_header(datagram) {
            Ok(h) => h,
            Err(e) => return malformed(e),
        };
        if header.is_discovery() {
            return Verdict::Rejected {
                outcome: TrapOutcome::Unsupported,
                kind: "v3_discovery",
                device: None,
                detail: "SNMPv3 engine discovery (snmpinform -v3 or a v3 request): the trap receiver has no \
                         authoritative engine, so SNMPv3 informs are not supported"
                    .into(),
            };
        }
        let Some(candidates) = self.by_ip.get(&source).cloned() else {
            return unknown_source("undecoded");
        };
        let users: Vec<&Candidate> = candidates
            .iter()
            .filter(|c| matches!(&c.creds, SnmpCredentials::V3(v) if v.user.as_bytes() == header.user))
            .collect();
        if users.is_empty() {
            return Verdict::Rejected {
                outcome: TrapOutcome::AuthFailed,
                kind: "undecoded",
                device: Some(names(&candidates)),
                detail: format!("no device at this address has SNMPv3 user {:?}", String::from_utf8_lossy(header.user)),
            };
        }
        let mut failure = String::new();
        for c in users {
            let sec = match self.localized(&header, c) {
                Ok(s) => s,
                Err(e) => {
                    failure = e;
                    continue;
                }
            };
            match decode_v3(datagram, &header, sec) {
                Ok(n) => {
                    return Verdict::Accepted {
                        device_id: c.id,
                        device: c.name.clone(),
                        notification: n,
                        response: None,
                    };
                }
                Err(V3Error::Auth(e)) => failure = e,
                Err(V3Error::Decode(e)) => return malformed(e),
            }
        }
        Verdict::Rejected {
            outcome: TrapOutcome::AuthFailed,
            kind: "undecoded",
            device: Some(names(&candidates)),
            detail: failure,
        }
    }

    /// The device's v3 security localized to the sender's engineID: 2.5 ms of hashing the first time, cached.
    fn localized(&mut self, header: &V3Header<'_>, c: &Candidate) -> Result<&v3::Security, String> {
        let SnmpCredentials::V3(creds) = &c.creds else { return Err("not an SNMPv3 device".into()) };
        let key = (header.engine_id.to_vec(), c.id);
        if !self.keys.contains_key(&key) {
            if self.keys.len() >= MAX_LOCALIZED_KEYS {
                self.keys.clear();
            }
            let sec = crate::snmp::v3_security(creds)
                .with_engine_id(header.engine_id)
                .map_err(|e| format!("cannot localize the device's SNMPv3 keys to the sender's engineID: {e}"))?;
            self.keys.insert(key.clone(), sec);
        }
        Ok(&self.keys[&key])
    }
}

fn malformed(e: DecodeError) -> Verdict {
    metrics::counter!("netwarden_trap_datagrams_malformed_total", "reason" => e.reason()).increment(1);
    Verdict::Rejected { outcome: TrapOutcome::Malformed, kind: "undecoded", device: None, detail: e.to_string() }
}

fn unknown_source(kind: &'static str) -> Verdict {
    Verdict::Rejected {
        outcome: TrapOutcome::UnknownSource,
        kind,
        device: None,
        detail: "no inventory device has this address as its host".into(),
    }
}

fn names(c: &[Candidate]) -> String {
    c.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(",")
}

/// Compares secrets without stopping at the first differing byte.
fn same_secret(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// At most [`LOG_BURST`] lines per category per [`LOG_WINDOW`], so a trap storm or a scan cannot flood the log.
#[derive(Default)]
struct LogLimiter {
    windows: HashMap<&'static str, (Instant, u64, u64)>,
}

impl LogLimiter {
    /// `Some(lines suppressed since the last one logged)` when this one may be logged.
    fn allow(&mut self, category: &'static str) -> Option<u64> {
        let now = Instant::now();
        let (start, logged, suppressed) = self.windows.entry(category).or_insert((now, 0, 0));
        if now.duration_since(*start) >= LOG_WINDOW {
            *start = now;
            *logged = 0;
        }
        if *logged < LOG_BURST {
            *logged += 1;
            Some(std::mem::take(suppressed))
        } else {
            *suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::{AuthProtocol, Device, PrivProtocol, SnmpV3Credentials};

    fn capture(name: &str) -> Vec<u8> {
        let path = format!("{}/testdata/traps/{name}.hex", env!("CARGO_MANIFEST_DIR"));
        let t = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let t = t.trim();
        (0..t.len()).step_by(2).map(|i| u8::from_str_radix(&t[i..i + 2], 16).unwrap()).collect()
    }

    fn device(id: i64, name: &str, host: &str, snmp: SnmpCredentials) -> ScheduledDevice {
        ScheduledDevice {
            id,
            device: Device {
                id: Some(id),
                name: name.into(),
                host: host.into(),
                snmp_port: 161,
                site: None,
                role: None,
                vendor: None,
                platform: None,
                tags: vec![],
                snmp,
                ssh: None,
                poll_interval: None,
                backup_interval: None,
            },
        }
    }

    fn v2c(c: &str) -> SnmpCredentials {
        SnmpCredentials::V2c { community: c.into() }
    }

    fn trapuser() -> SnmpCredentials {
        SnmpCredentials::V3(SnmpV3Credentials {
            user: "trapuser".into(),
            auth: Some((AuthProtocol::Sha1, "authpass123".into())),
            privacy: Some((PrivProtocol::Aes128, "privpass123".into())),
            context: None,
        })
    }

    const LO: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);

    fn accepted(v: Verdict) -> (i64, TrapKind, Notification) {
        match v {
            Verdict::Accepted { device_id, notification, .. } => {
                (device_id, classify(&notification.trap_oid, &notification.varbinds), notification)
            }
            other => panic!("expected accepted, got {other:?}"),
        }
    }

    fn rejected(v: Verdict) -> (TrapOutcome, &'static str) {
        match v {
            Verdict::Rejected { outcome, kind, .. } => (outcome, kind),
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    /// Every captured notification from snmptrap, through the whole judgement, to its kind.
    #[test]
    fn captured_traps_classify() {
        let mut j = Judge::new(&[device(1, "r1", "127.0.0.1", v2c("public"))]);
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        let cases = [
            ("v2c_link_down", TrapKind::LinkDown { if_index: Some(2) }),
            ("v2c_link_up", TrapKind::LinkUp { if_index: Some(3) }),
            ("v2c_cold_start", TrapKind::ColdStart),
            ("v2c_warm_start", TrapKind::WarmStart),
            ("v2c_auth_failure", TrapKind::AuthenticationFailure),
            ("v2c_bgp_backward_transition", TrapKind::BgpBackwardTransition { peer: ip("192.0.2.1") }),
            ("v2c_bgp_established_rfc1657", TrapKind::BgpEstablished { peer: ip("192.0.2.2") }),
            ("v2c_bgp4v2_backward_transition", TrapKind::BgpBackwardTransition { peer: ip("192.0.2.3") }),
            (
                "v2c_ospf_nbr_state_change",
                TrapKind::OspfNbrStateChange {
                    router_id: Some("10.0.0.2".parse().unwrap()),
                    state: Some(crate::routing::OspfNbrState::Down),
                },
            ),
            ("v2c_unknown_enterprise", TrapKind::Other { trap_oid: "1.3.6.1.4.1.99999.0.1".parse().unwrap() }),
            ("v1_link_down", TrapKind::LinkDown { if_index: Some(2) }),
            ("v1_cold_start", TrapKind::ColdStart),
            ("v1_enterprise_specific", TrapKind::Other { trap_oid: "1.3.6.1.4.1.99999.0.7".parse().unwrap() }),
            ("v1_bgp_backward_transition", TrapKind::BgpBackwardTransition { peer: ip("192.0.2.1") }),
            ("v2c_inform_link_down", TrapKind::LinkDown { if_index: Some(2) }),
        ];
        for (file, want) in cases {
            let (id, kind, _) = accepted(j.judge(&capture(file), LO));
            assert_eq!((id, &kind), (1, &want), "{file}");
        }
    }

    #[test]
    fn source_and_community_decide_the_device() {
        let devices = [
            device(1, "v3-box", "127.0.0.1", trapuser()),
            device(2, "private", "127.0.0.1", v2c("private")),
            device(3, "public", "127.0.0.1", v2c("public")),
            device(4, "by-name", "router.example.net", v2c("public")),
        ];
        let mut j = Judge::new(&devices);
        let (id, ..) = accepted(j.judge(&capture("v2c_link_down"), LO));
        assert_eq!(id, 3, "the device whose community matches");
        j.set_devices(&devices[..2]);
        assert_eq!(rejected(j.judge(&capture("v2c_link_down"), LO)), (TrapOutcome::AuthFailed, "link_down"));
        assert_eq!(
            rejected(j.judge(&capture("v2c_link_down"), "192.0.2.99".parse().unwrap())),
            (TrapOutcome::UnknownSource, "link_down")
        );
        // IPv4-mapped IPv6 sources (a socket bound to [::]) arrive canonicalised by the loop.
        let mapped: IpAddr = "::ffff:127.0.0.1".parse().unwrap();
        j.set_devices(&devices[2..]);
        assert!(matches!(j.judge(&capture("v2c_link_down"), mapped.to_canonical()), Verdict::Accepted { .. }));
    }

    #[test]
    fn v3_trap_uses_the_devices_keys_localized_to_the_sender() {
        let mut j =
            Judge::new(&[device(1, "plain", "127.0.0.1", v2c("public")), device(2, "v3", "127.0.0.1", trapuser())]);
        let (id, kind, n) = accepted(j.judge(&capture("v3_authpriv_link_down"), LO));
        assert_eq!((id, kind, n.version), (2, TrapKind::LinkDown { if_index: Some(2) }, TrapVersion::V3));
        assert_eq!(j.keys.len(), 1, "keys localized once per engineID and device");
        accepted(j.judge(&capture("v3_authpriv_link_down"), LO));
        assert_eq!(j.keys.len(), 1);
        // Unknown user at that address, then a wrong password.
        assert_eq!(rejected(j.judge(&capture("v3_authnopriv_cold_start"), LO)), (TrapOutcome::AuthFailed, "undecoded"));
        let SnmpCredentials::V3(mut wrong) = trapuser() else { unreachable!() };
        wrong.auth = Some((AuthProtocol::Sha1, "wrong-password".into()));
        j.set_devices(&[device(2, "v3", "127.0.0.1", SnmpCredentials::V3(wrong))]);
        assert_eq!(rejected(j.judge(&capture("v3_authpriv_link_down"), LO)), (TrapOutcome::AuthFailed, "undecoded"));
        // The v3 inform's discovery probe cannot be answered.
        assert_eq!(rejected(j.judge(&capture("v3_inform_probe"), LO)), (TrapOutcome::Unsupported, "v3_discovery"));
    }

    #[test]
    fn malformed_input_is_counted_never_fatal() {
        let mut j = Judge::new(&[device(1, "r1", "127.0.0.1", v2c("public"))]);
        let good = capture("v2c_link_down");
        let v3 = capture("v3_authpriv_link_down");
        let mut inputs: Vec<Vec<u8>> =
            vec![vec![], vec![0x30], vec![0xff; 300], vec![0x30, 0x84, 0xff, 0xff, 0xff, 0xff]];
        inputs.extend((0..good.len()).map(|n| good[..n].to_vec()));
        inputs.extend((0..v3.len()).map(|n| v3[..n].to_vec()));
        let stats = TrapStats::default();
        for input in &inputs {
            let v = j.judge(input, LO);
            if let Verdict::Rejected { outcome, .. } = &v {
                stats.count(*outcome);
            }
            assert!(
                matches!(v, Verdict::Rejected { outcome: TrapOutcome::Malformed | TrapOutcome::AuthFailed, .. }),
                "{} bytes: {v:?}",
                input.len()
            );
        }
        assert_eq!(stats.snapshot().malformed + stats.snapshot().auth_failed, inputs.len() as u64);
        // Byte flips everywhere in a v2c trap: any verdict, no panic.
        for i in 0..good.len() {
            for flip in [0x01u8, 0x80, 0xff] {
                let mut m = good.clone();
                m[i] ^= flip;
                let _ = j.judge(&m, LO);
            }
        }
        accepted(j.judge(&good, LO));
    }

    #[test]
    fn log_limiter_summarises_bursts() {
        let mut l = LogLimiter::default();
        for _ in 0..LOG_BURST {
            assert_eq!(l.allow("x"), Some(0));
        }
        assert_eq!(l.allow("x"), None);
        assert_eq!(l.allow("y"), Some(0), "categories are independent");
    }
}
