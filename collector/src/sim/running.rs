//! A running simulated fabric: every device's MIB and agent, and the faults in force.
//!
//! [`Fabric::build`] fills every MIB from the [`FabricModel`]; [`Fabric::serve`] starts one
//! agent per device on loopback. [`Fabric::inject`] and [`Fabric::clear`] change the fault set
//! and rewrite exactly what a fault touches on both ends (through [`wiring::apply_link_end`],
//! the same code that built the MIBs), so a poll right after sees a consistent network.
//! The devices' CLIs ([`super::cli`]) change the same state through [`Fabric::configure_port`]
//! and [`Fabric::shut_bgp_neighbor`]. Every change that alters a port's oper status or a BGP
//! session's state yields the notifications ([`super::traps`]) its devices send, once
//! [`Fabric::send_traps`] named where to.

use super::agent::{AgentBehaviour, AgentConfig, SharedMib, SimAgent};
use super::codec::Malformed;
use super::fabric::FabricModel;
use super::faults::{Command, Fault, HELP};
use super::traps::{Event, TrapSender};
use super::wiring::{self, NetState, PortConfig, Templates};
use crate::inventory::{Device, SnmpCredentials, SshAuth, SshCredentials};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Duration;

/// Counters moved by `counter-wrap` wrap this long after the fault at their rate.
pub const WRAP_AFTER_S: u64 = 10;

/// Why a fault cannot be injected or cleared.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    #[error("no device {0:?} in the fabric")]
    UnknownDevice(String),
    #[error("no cable between {a} and {b}")]
    NoLink { a: String, b: String },
    #[error("{0} is an event, not a state: there is nothing to clear")]
    Event(String),
    #[error("{device} has no port with ifIndex {if_index}")]
    NoPort { device: String, if_index: u32 },
    #[error("{device} has no BGP neighbor {peer}")]
    NoNeighbor { device: String, peer: Ipv4Addr },
}

/// The faults in force and the devices' CLI settings, by device and link index.
#[derive(Debug, Default)]
struct FaultSet {
    links_down: BTreeSet<usize>,
    /// (link, the device that shut its BGP session): a `bgp-down` fault or the device's
    /// `neighbor … shutdown`, which are the same state.
    bgp_down: BTreeSet<(usize, usize)>,
    devices_down: BTreeSet<usize>,
    slow: BTreeMap<usize, Duration>,
    malformed: BTreeMap<usize, Malformed>,
    /// (device, ifIndex) → what the device's CLI set on the port (not a fault: not listed or
    /// cleared with them).
    ports: BTreeMap<(usize, u32), PortConfig>,
}

impl NetState for FaultSet {
    fn cable_ok(&self, link: usize) -> bool {
        !self.links_down.contains(&link)
    }

    fn port(&self, device: usize, if_index: u32) -> PortConfig {
        self.ports.get(&(device, if_index)).cloned().unwrap_or_default()
    }

    fn bgp_shut(&self, link: usize, device: usize) -> bool {
        self.bgp_down.contains(&(link, device))
    }
}

/// Where the served fabric's devices take SSH logins (set once SSH is served).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshEndpoints {
    /// Per device, in model order.
    pub addrs: Vec<SocketAddr>,
    pub user: String,
    pub password: String,
}

struct State {
    faults: FaultSet,
    templates: Templates,
}

/// A simulated fabric: MIBs always, agents once served.
pub struct Fabric {
    model: Arc<FabricModel>,
    mibs: Vec<SharedMib>,
    behaviours: Vec<Arc<AgentBehaviour>>,
    state: Mutex<State>,
    agents: Vec<SimAgent>,
    traps: Option<TrapSender>,
    ssh: OnceLock<SshEndpoints>,
}

impl Fabric {
    /// Every device's MIB, all cables up, clocks starting now.
    pub fn build(model: FabricModel) -> Fabric {
        let mut templates = Templates::default();
        let mibs = wiring::build_all(&model, &mut templates).into_iter().map(SharedMib::new).collect();
        let behaviours = (0..model.devices.len()).map(|_| Arc::new(AgentBehaviour::default())).collect();
        Fabric {
            model: Arc::new(model),
            mibs,
            behaviours,
            state: Mutex::new(State { faults: FaultSet::default(), templates }),
            agents: Vec::new(),
            traps: None,
            ssh: OnceLock::new(),
        }
    }

    /// Starts one agent per device on `ip`, device `i` on `base_port + i` (0: any free port
    /// each). Stops at the first bind error, dropping the agents already started.
    pub async fn serve(&mut self, ip: IpAddr, base_port: u16, config: &AgentConfig) -> io::Result<()> {
        let n = self.mibs.len();
        self.serve_at(config, |i| {
            if base_port == 0 {
                return Ok(SocketAddr::new(ip, 0));
            }
            let port = u16::try_from(usize::from(base_port) + i).map_err(|_| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{n} devices from port {base_port} go beyond 65535"),
                )
            })?;
            Ok(SocketAddr::new(ip, port))
        })
        .await
    }

    /// Starts one agent per device, each on its own loopback address: device `i` on `first + i`,
    /// port `port` (0: any free port). Traps and SSH then come from an address that names the
    /// device, as on a real network. All addresses must stay inside 127.0.0.0/8.
    pub async fn serve_each_on_own_address(
        &mut self,
        first: std::net::Ipv4Addr,
        port: u16,
        config: &AgentConfig,
    ) -> io::Result<()> {
        let n = self.mibs.len() as u32;
        let last = u32::from(first).checked_add(n.saturating_sub(1));
        if !first.is_loopback() || last.is_none_or(|l| !std::net::Ipv4Addr::from(l).is_loopback()) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{n} devices from {first} do not fit in 127.0.0.0/8"),
            ));
        }
        self.serve_at(config, |i| Ok(SocketAddr::new(IpAddr::V4((u32::from(first) + i as u32).into()), port))).await
    }

    async fn serve_at(
        &mut self,
        config: &AgentConfig,
        addr_of: impl Fn(usize) -> io::Result<SocketAddr>,
    ) -> io::Result<()> {
        let mut agents = Vec::with_capacity(self.mibs.len());
        for (i, (mib, behaviour)) in self.mibs.iter().zip(&self.behaviours).enumerate() {
            let addr = addr_of(i)?;
            let agent = SimAgent::bind_with(addr, mib.clone(), Arc::clone(behaviour), config.clone())
                .await
                .map_err(|e| io::Error::new(e.kind(), format!("binding {addr}: {e}")))?;
            agents.push(agent);
        }
        self.agents = agents;
        Ok(())
    }

    pub fn model(&self) -> &FabricModel {
        &self.model
    }

    pub fn agents(&self) -> &[SimAgent] {
        &self.agents
    }

    /// The device's agent, once served.
    pub fn agent(&self, device: &str) -> Option<&SimAgent> {
        self.agents.get(self.model.index_of(device)?)
    }

    /// `ip:port` of the device's agent, once served.
    pub fn target(&self, device: &str) -> Option<String> {
        self.agent(device).map(SimAgent::target)
    }

    /// The MIB of the device with this index in the model.
    pub fn device_mib(&self, device: usize) -> &SharedMib {
        &self.mibs[device]
    }

    pub fn mib(&self, device: &str) -> Option<&SharedMib> {
        self.mibs.get(self.model.index_of(device)?)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn device(&self, name: &str) -> Result<usize, FaultError> {
        self.model.index_of(name).ok_or_else(|| FaultError::UnknownDevice(name.to_string()))
    }

    fn link(&self, a: &str, b: &str) -> Result<(usize, usize), FaultError> {
        let (da, db) = (self.device(a)?, self.device(b)?);
        let l =
            self.model.link_between(da, db).ok_or_else(|| FaultError::NoLink { a: a.to_string(), b: b.to_string() })?;
        Ok((l.index, da))
    }

    /// From now on every state change sends SNMPv2c traps from the devices' agent addresses to
    /// `targets` (loopback only), with the agents' community. Call after [`Fabric::serve`].
    pub fn send_traps(&mut self, targets: Vec<SocketAddr>, community: &str) -> io::Result<()> {
        let sources: Vec<IpAddr> = self.agents.iter().map(|a| a.local_addr().ip()).collect();
        self.traps = Some(TrapSender::new(&sources, targets, community)?);
        Ok(())
    }

    /// The trap sender, once [`Fabric::send_traps`] configured one.
    pub fn trap_sender(&self) -> Option<&TrapSender> {
        self.traps.as_ref()
    }

    /// Sends the traps for `events`, from devices whose agent is answering.
    fn notify(&self, faults: &FaultSet, events: Vec<Event>) {
        let Some(sender) = &self.traps else { return };
        for e in events.into_iter().filter(|e| !faults.devices_down.contains(&e.device)) {
            let mib = self.mibs[e.device].read();
            sender.send(e.device, &e.kind, &mib);
        }
    }

    /// Rewrites both ends of `link` for the current state; `reset_at`: a device whose far-end
    /// neighbour rebooted (its established session flaps). Returns the notifications due.
    fn apply_link(&self, faults: &FaultSet, link: usize, reset_at: Option<usize>) -> Vec<Event> {
        let l = &self.model.links[link];
        let mut events = Vec::new();
        for d in [l.a.device, l.b.device] {
            if reset_at.is_some_and(|r| r != d) {
                continue;
            }
            let (me, far) = l.ends_from(d).expect("a device of the link");
            let mut mib = self.mibs[d].write();
            let uptime = mib.uptime(tokio::time::Instant::now());
            let changes = wiring::apply_link_end(&mut mib, &self.model, l, d, faults, uptime, reset_at.is_some());
            events.extend(Event::of_link_end(d, me.if_index, far.addr, changes));
        }
        events
    }

    /// Rewrites a port (and, for a cabled one, both ends of its link) after its CLI settings
    /// changed. Returns the notifications due.
    fn apply_port(&self, faults: &FaultSet, d: usize, if_index: u32) -> Vec<Event> {
        if let super::fabric::PortUse::Fabric(link) = self.model.port_use(d, if_index) {
            return self.apply_link(faults, link, None);
        }
        let mut mib = self.mibs[d].write();
        let uptime = mib.uptime(tokio::time::Instant::now());
        let oper = wiring::apply_port(&mut mib, &self.model, d, if_index, faults, uptime);
        Event::of_link_end(d, if_index, Ipv4Addr::UNSPECIFIED, wiring::EndChanges { oper, ..Default::default() })
    }

    /// Injects a fault; injecting one already in force changes nothing.
    pub fn inject(&self, fault: &Fault) -> Result<(), FaultError> {
        let mut st = self.lock();
        let State { faults, templates } = &mut *st;
        let events = match fault {
            Fault::LinkDown { a, b } => {
                let (link, _) = self.link(a, b)?;
                if faults.links_down.insert(link) { self.apply_link(faults, link, None) } else { Vec::new() }
            }
            Fault::BgpDown { a, b } => {
                let (link, by) = self.link(a, b)?;
                if faults.bgp_down.insert((link, by)) { self.apply_link(faults, link, None) } else { Vec::new() }
            }
            Fault::DeviceDown { device } => {
                let d = self.device(device)?;
                faults.devices_down.insert(d);
                self.behaviours[d].set_silent(true);
                Vec::new()
            }
            Fault::Reboot { device } => {
                let d = self.device(device)?;
                let fresh = wiring::build_device(&self.model, templates, d, faults);
                *self.mibs[d].write() = fresh;
                let mut events = vec![Event::cold_start(d)];
                for l in self.model.links_of(d) {
                    let (_, far) = l.ends_from(d).expect("own link");
                    if wiring::LinkState::of(&self.model, faults, l.index).established() {
                        events.extend(self.apply_link(faults, l.index, Some(far.device)));
                    }
                }
                events
            }
            Fault::CounterWrap { device, bits } => {
                let d = self.device(device)?;
                let mut mib = self.mibs[d].write();
                let uptime = mib.uptime(tokio::time::Instant::now());
                for port in 1..=self.model.devices[d].ports {
                    wiring::wrap_port_counters(&mut mib, port, *bits, WRAP_AFTER_S, uptime);
                }
                Vec::new()
            }
            Fault::Slow { device, latency } => {
                let d = self.device(device)?;
                if latency.is_zero() {
                    faults.slow.remove(&d);
                } else {
                    faults.slow.insert(d, *latency);
                }
                self.behaviours[d].set_extra_latency(*latency);
                Vec::new()
            }
            Fault::Malformed { device, mode } => {
                let d = self.device(device)?;
                faults.malformed.insert(d, *mode);
                self.behaviours[d].set_malformed(Some(*mode));
                Vec::new()
            }
        };
        self.notify(faults, events);
        Ok(())
    }

    /// Takes a fault back (its mode or latency does not matter for `Malformed` and `Slow`; `bgp-up`
    /// brings the session back whichever end shut it); clearing one not in force changes nothing.
    pub fn clear(&self, fault: &Fault) -> Result<(), FaultError> {
        let mut st = self.lock();
        let faults = &mut st.faults;
        let events = match fault {
            Fault::LinkDown { a, b } => {
                let (link, _) = self.link(a, b)?;
                if faults.links_down.remove(&link) { self.apply_link(faults, link, None) } else { Vec::new() }
            }
            Fault::BgpDown { a, b } => {
                let (link, _) = self.link(a, b)?;
                let before = faults.bgp_down.len();
                faults.bgp_down.retain(|&(l, _)| l != link);
                if faults.bgp_down.len() != before { self.apply_link(faults, link, None) } else { Vec::new() }
            }
            Fault::DeviceDown { device } => {
                let d = self.device(device)?;
                self.behaviours[d].set_silent(false);
                // An agent that comes back announces itself as a restarted agent does.
                if faults.devices_down.remove(&d) { vec![Event::cold_start(d)] } else { Vec::new() }
            }
            Fault::Slow { device, .. } => {
                let d = self.device(device)?;
                faults.slow.remove(&d);
                self.behaviours[d].set_extra_latency(Duration::ZERO);
                Vec::new()
            }
            Fault::Malformed { device, .. } => {
                let d = self.device(device)?;
                faults.malformed.remove(&d);
                self.behaviours[d].set_malformed(None);
                Vec::new()
            }
            Fault::Reboot { .. } | Fault::CounterWrap { .. } => return Err(FaultError::Event(fault.to_string())),
        };
        self.notify(faults, events);
        Ok(())
    }

    /// `device`'s port `if_index` as its CLI changes it: `shutdown` / `no shutdown`
    /// (`Some(true)` / `Some(false)`) and `description` (`Some(Some(text))`, `Some(None)` for
    /// `no description`); `None` leaves a setting alone. A cabled port's peer sees the change
    /// too (oper down, BGP Active at both ends while shut).
    pub fn configure_port(
        &self,
        device: usize,
        if_index: u32,
        shutdown: Option<bool>,
        description: Option<Option<String>>,
    ) -> Result<(), FaultError> {
        let name = &self.model.devices[device].name;
        if if_index == 0 || if_index > self.model.devices[device].ports {
            return Err(FaultError::NoPort { device: name.clone(), if_index });
        }
        let mut st = self.lock();
        let faults = &mut st.faults;
        let cfg = faults.ports.entry((device, if_index)).or_default();
        if let Some(shut) = shutdown {
            cfg.shutdown = Some(shut);
        }
        if let Some(text) = description {
            cfg.description = text;
        }
        let events = self.apply_port(faults, device, if_index);
        self.notify(faults, events);
        Ok(())
    }

    /// `neighbor PEER shutdown` (`shut`) or `no neighbor PEER shutdown` on `device`: the same
    /// state as a `bgp-down` fault from `device`, but only this end's shutdown is taken back.
    pub fn shut_bgp_neighbor(&self, device: usize, peer: Ipv4Addr, shut: bool) -> Result<(), FaultError> {
        let link = self
            .model
            .links_of(device)
            .find(|l| l.ends_from(device).is_some_and(|(_, far)| far.addr == peer))
            .map(|l| l.index)
            .ok_or_else(|| FaultError::NoNeighbor { device: self.model.devices[device].name.clone(), peer })?;
        let mut st = self.lock();
        let faults = &mut st.faults;
        let changed =
            if shut { faults.bgp_down.insert((link, device)) } else { faults.bgp_down.remove(&(link, device)) };
        if changed {
            let events = self.apply_link(faults, link, None);
            self.notify(faults, events);
        }
        Ok(())
    }

    /// `device`'s configuration as its CLI shows it (`show running-config`).
    pub fn device_config(&self, device: usize) -> super::cli::DeviceConfig {
        let st = self.lock();
        let faults = &st.faults;
        let d = &self.model.devices[device];
        let interfaces = (1..=d.ports)
            .map(|i| {
                let p = wiring::port_view(&self.model, device, i, faults);
                super::cli::InterfaceConfig { name: p.name, description: p.alias, shutdown: !p.admin_up }
            })
            .collect();
        let neighbors = self
            .model
            .links_of(device)
            .map(|l| {
                let (_, far) = l.ends_from(device).expect("own link");
                super::cli::NeighborConfig {
                    addr: far.addr,
                    remote_as: self.model.devices[far.device].asn,
                    shutdown: faults.bgp_shut(l.index, device),
                }
            })
            .collect();
        super::cli::DeviceConfig { hostname: d.name.clone(), asn: d.asn, router_id: d.loopback, interfaces, neighbors }
    }

    /// Clears every fault in force that names `device`.
    pub fn clear_device(&self, device: &str) -> Result<usize, FaultError> {
        self.device(device)?;
        let doomed: Vec<Fault> = self.faults().into_iter().filter(|f| f.devices().contains(&device)).collect();
        for f in &doomed {
            self.clear(f)?;
        }
        Ok(doomed.len())
    }

    /// Clears every fault in force.
    pub fn clear_all(&self) -> usize {
        let doomed = self.faults();
        for f in &doomed {
            // Every fault listed names devices and links of this fabric.
            self.clear(f).expect("a fault in force can be cleared");
        }
        doomed.len()
    }

    /// The faults in force (events are not listed).
    pub fn faults(&self) -> Vec<Fault> {
        let st = self.lock();
        let f = &st.faults;
        let name = |d: usize| self.model.devices[d].name.clone();
        let ends = |link: usize| {
            let l = &self.model.links[link];
            (name(l.a.device), name(l.b.device))
        };
        let mut out = Vec::new();
        for &link in &f.links_down {
            let (a, b) = ends(link);
            out.push(Fault::LinkDown { a, b });
        }
        for &(link, by) in &f.bgp_down {
            let l = &self.model.links[link];
            let other = if l.a.device == by { l.b.device } else { l.a.device };
            out.push(Fault::BgpDown { a: name(by), b: name(other) });
        }
        out.extend(f.devices_down.iter().map(|&d| Fault::DeviceDown { device: name(d) }));
        out.extend(f.slow.iter().map(|(&d, &latency)| Fault::Slow { device: name(d), latency }));
        out.extend(f.malformed.iter().map(|(&d, &mode)| Fault::Malformed { device: name(d), mode }));
        out
    }

    /// Runs one control command; the text after `ok` on success.
    pub fn execute(&self, cmd: &Command) -> Result<String, FaultError> {
        Ok(match cmd {
            Command::Inject(f) => {
                self.inject(f)?;
                String::new()
            }
            Command::Clear(f) => {
                self.clear(f)?;
                String::new()
            }
            Command::ClearAll => format!("{} cleared", self.clear_all()),
            Command::ClearDevice(d) => format!("{} cleared", self.clear_device(d)?),
            Command::Faults => self.faults().iter().map(ToString::to_string).collect::<Vec<_>>().join("; "),
            Command::Help => HELP.to_string(),
        })
    }

    /// The inventory of the served fabric: one device per agent, with its role, site `site`
    /// and tags (`sim`, `fabric`, the role, `as<ASN>`), and its SSH login once SSH is served,
    /// as `netwarden inventory import` takes.
    pub fn inventory(&self, site: &str, community: &str) -> Vec<Device> {
        self.agents
            .iter()
            .zip(&self.model.devices)
            .map(|(agent, d)| Device {
                id: None,
                name: d.name.clone(),
                host: agent.local_addr().ip().to_string(),
                snmp_port: agent.local_addr().port(),
                site: Some(site.to_string()),
                role: Some(d.role.as_str().to_string()),
                vendor: Some("netwarden-sim".to_string()),
                platform: Some("sim-fabric".to_string()),
                tags: vec!["sim".into(), "fabric".into(), d.role.as_str().into(), format!("as{}", d.asn)],
                snmp: SnmpCredentials::V2c { community: community.to_string() },
                ssh: self.ssh.get().map(|s| SshCredentials {
                    user: s.user.clone(),
                    auth: SshAuth::Password(s.password.clone()),
                    port: s.addrs[d.index].port(),
                }),
                poll_interval: None,
                backup_interval: None,
            })
            .collect()
    }

    /// Records where the devices take SSH logins (once; by [`super::ssh::SimSsh::bind`]).
    pub(crate) fn set_ssh(&self, endpoints: SshEndpoints) -> bool {
        self.ssh.set(endpoints).is_ok()
    }

    /// Where the devices take SSH logins, once served.
    pub fn ssh(&self) -> Option<&SshEndpoints> {
        self.ssh.get()
    }

    /// Stops every agent and waits for delayed responses to finish.
    pub async fn shutdown(self) {
        for a in self.agents {
            a.shutdown().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ifmib::{self, CounterKind, InterfaceRow};
    use crate::routing::{self, BgpState, OspfNbrState, RoutingPoll, Varbinds};
    use crate::sim::fabric::FabricSpec;
    use crate::sim::mib::Mib;
    use crate::snmp::{Oid, Value};
    use std::net::IpAddr;
    use tokio::time::Instant;

    fn fabric(spec: &str) -> Fabric {
        Fabric::build(FabricModel::build(&spec.parse::<FabricSpec>().expect("spec")).expect("model"))
    }

    /// What netwarden's decoders make of a device's MIB at `at`: interfaces and routing.
    fn view_at(mib: &Mib, at: Instant) -> (Vec<InterfaceRow>, RoutingPoll) {
        let columns: Vec<Vec<(Vec<u32>, Value)>> = ifmib::if_column_oids()
            .iter()
            .map(|c| mib.subtree(c, at).into_iter().map(|(o, v)| (o.suffix(c).expect("under").to_vec(), v)).collect())
            .collect();
        let (rows, issues) = ifmib::decode_interfaces(&columns);
        assert!(issues.is_empty(), "{issues:?}");
        let vbs: Varbinds = mib.snapshot(at).into_iter().collect();
        let r = routing::decode_routing(&vbs, &rows);
        assert!(r.issues.is_empty(), "{:?}", r.issues);
        (rows, r)
    }

    fn view(f: &Fabric, device: &str) -> (Vec<InterfaceRow>, RoutingPoll) {
        let mib = f.mib(device).expect("device").read();
        view_at(&mib, Instant::now())
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn both_ends_of_every_cable_agree() {
        let f = fabric("spines=2,leaves=4,borders=1,cores=1");
        let m = f.model();
        for d in &m.devices {
            let (rows, r) = view(&f, &d.name);
            assert_eq!(rows.len(), d.ports as usize);
            assert_eq!(r.local_as, Some(d.asn));
            assert_eq!(r.router_id, Some(d.loopback));
            assert_eq!(r.local_chassis_id.as_deref(), Some(crate::sim::device::mac_text(d.chassis_mac()).as_str()));
            let links: Vec<_> = m.links_of(d.index).collect();
            assert_eq!(
                (r.bgp.len(), r.ospf_neighbors.len(), r.neighbors.len()),
                (links.len(), links.len(), links.len())
            );
            for l in links {
                let (me, far) = l.ends_from(d.index).unwrap();
                let fd = &m.devices[far.device];
                let p = r.bgp.iter().find(|p| p.peer_addr == IpAddr::V4(far.addr)).expect("peer on the link");
                assert_eq!((p.state, p.remote_as, p.local_as), (BgpState::Established, fd.asn, Some(d.asn)));
                assert_eq!(p.local_addr, Some(IpAddr::V4(me.addr)));
                assert_eq!(p.fsm_established_transitions, Some(1));
                let n = r.ospf_neighbors.iter().find(|n| n.addr == far.addr).expect("OSPF neighbour");
                assert_eq!((n.state, n.router_id, n.if_index), (OspfNbrState::Full, fd.loopback, Some(me.if_index)));
                let lldp = r.neighbors.iter().find(|n| n.local_if_index == Some(me.if_index)).expect("LLDP neighbour");
                assert_eq!(lldp.sys_name.as_deref(), Some(fd.name.as_str()));
                assert_eq!(lldp.port_id, format!("eth{}", far.if_index));
                assert_eq!(lldp.local_if_name, Some(format!("eth{}", me.if_index)));
                assert_eq!(lldp.chassis_id, crate::sim::device::mac_text(fd.chassis_mac()));
                assert_eq!(lldp.mgmt_addr, Some(IpAddr::V4(fd.loopback)));
                let row = &rows[me.if_index as usize - 1];
                assert_eq!((row.admin_status, row.oper_status), (Some(1), Some(1)));
                assert_eq!(row.alias, Some(format!("to {} eth{}", fd.name, far.if_index)));
            }
        }
        // What one end sends, the other receives: compare rates over 10 s of the model's clock.
        let l = &m.links[0];
        let octets = |d: usize, kind: CounterKind| {
            let mib = f.mibs[d].read();
            let t0 = mib.started();
            let at = |t| view_at(&mib, t).0[(l.ends_from(d).unwrap().0.if_index - 1) as usize].counter(kind).unwrap();
            at(t0 + Duration::from_secs(10)).value - at(t0).value
        };
        assert_eq!(octets(l.a.device, CounterKind::OutOctets), octets(l.b.device, CounterKind::InOctets));
        assert_eq!(octets(l.b.device, CounterKind::OutOctets), octets(l.a.device, CounterKind::InOctets));
    }

    #[test]
    fn link_down_reaches_both_ends_and_clearing_restores_them() {
        let f = fabric("spines=2,leaves=4");
        let down = Fault::LinkDown { a: "leaf001".into(), b: "spine1".into() };
        f.inject(&down).expect("inject");
        f.inject(&down).expect("injecting twice changes nothing");
        assert_eq!(f.faults(), vec![Fault::LinkDown { a: "spine1".into(), b: "leaf001".into() }]);
        for (dev, port, peer) in [("leaf001", 1, "10.128.0.0"), ("spine1", 1, "10.128.0.1")] {
            let (rows, r) = view(&f, dev);
            assert_eq!(rows[port - 1].oper_status, Some(2), "{dev}");
            assert_eq!(rows[port - 1].admin_status, Some(1), "{dev}: a cable fault, not a shutdown");
            assert!(r.neighbors.iter().all(|n| n.local_if_index != Some(port as u32)), "{dev}: LLDP gone");
            assert!(r.ospf_neighbors.iter().all(|n| n.addr.to_string() != peer), "{dev}: OSPF neighbour gone");
            let p = r.bgp.iter().find(|p| p.peer_addr == ip(peer)).expect("the peer row stays");
            assert_eq!(p.state, BgpState::Active, "{dev}");
            // The other cables are untouched.
            assert_eq!(r.bgp.iter().filter(|p| p.state == BgpState::Established).count(), r.bgp.len() - 1);
            // The port's counters stand still while down.
            let mib = f.mib(dev).unwrap().read();
            let now = Instant::now();
            let c = |t| view_at(&mib, t).0[port - 1].counter(CounterKind::InOctets).unwrap().value;
            assert_eq!(c(now), c(now + Duration::from_secs(30)), "{dev}");
        }
        let ifs = f.mib("spine1").unwrap().read().get(&crate::sim::device::if_last_change(1), Instant::now());
        assert!(matches!(ifs, Value::TimeTicks(_)));
        f.clear(&Fault::LinkDown { a: "spine1".into(), b: "leaf001".into() }).expect("clear");
        assert!(f.faults().is_empty());
        for (dev, peer, cables) in [("leaf001", "10.128.0.0", 2), ("spine1", "10.128.0.1", 4)] {
            let (rows, r) = view(&f, dev);
            assert_eq!(rows[0].oper_status, Some(1));
            assert!(r.bgp.iter().all(|p| p.state == BgpState::Established));
            assert_eq!((r.ospf_neighbors.len(), r.neighbors.len()), (cables, cables));
            let p = r.bgp.iter().find(|p| p.peer_addr == ip(peer)).unwrap();
            assert_eq!(p.fsm_established_transitions, Some(2), "{dev}: one more transition into Established");
        }
        let err = f.inject(&Fault::LinkDown { a: "leaf001".into(), b: "leaf002".into() }).unwrap_err();
        assert_eq!(err.to_string(), "no cable between leaf001 and leaf002");
        let err = f.inject(&Fault::DeviceDown { device: "leaf9".into() }).unwrap_err();
        assert_eq!(err.to_string(), "no device \"leaf9\" in the fabric");
    }

    #[test]
    fn bgp_down_is_idle_on_the_shutting_side_and_active_on_the_other() {
        let f = fabric("spines=2,leaves=2");
        f.inject(&Fault::BgpDown { a: "spine2".into(), b: "leaf002".into() }).unwrap();
        let (rows, spine) = view(&f, "spine2");
        let p = spine.bgp.iter().find(|p| p.peer_addr == ip("10.128.0.7")).unwrap();
        assert_eq!(
            (p.state, p.admin_status, p.last_error),
            (BgpState::Idle, Some(routing::BgpAdminStatus::Stop), Some((6, 2)))
        );
        assert_eq!(rows[1].oper_status, Some(1), "the cable stays up");
        assert_eq!(spine.neighbors.len(), 2, "LLDP unaffected");
        let (_, leaf) = view(&f, "leaf002");
        let p = leaf.bgp.iter().find(|p| p.peer_addr == ip("10.128.0.6")).unwrap();
        assert_eq!(
            (p.state, p.admin_status, p.last_error),
            (BgpState::Active, Some(routing::BgpAdminStatus::Start), Some((6, 2)))
        );
        assert_eq!(leaf.ospf_neighbors.len(), 2, "OSPF unaffected");
        assert_eq!(f.faults(), vec![Fault::BgpDown { a: "spine2".into(), b: "leaf002".into() }]);
        assert_eq!(f.clear_device("leaf002"), Ok(1));
        let (_, leaf) = view(&f, "leaf002");
        assert!(leaf.bgp.iter().all(|p| p.state == BgpState::Established));
    }

    #[test]
    fn agent_faults_set_the_agents_behaviour() {
        let f = fabric("spines=1,leaves=2");
        let b = |d: &str| Arc::clone(&f.behaviours[f.model().index_of(d).unwrap()]);
        f.inject(&Fault::DeviceDown { device: "leaf002".into() }).unwrap();
        f.inject(&Fault::Slow { device: "leaf001".into(), latency: Duration::from_millis(300) }).unwrap();
        f.inject(&Fault::Malformed { device: "spine1".into(), mode: Malformed::Truncated }).unwrap();
        assert!(b("leaf002").is_silent());
        assert_eq!(b("leaf001").extra_latency(), Duration::from_millis(300));
        assert_eq!(b("spine1").malformed(), Some(Malformed::Truncated));
        assert_eq!(f.faults().len(), 3);
        let cmd: Command = "faults".parse().unwrap();
        assert_eq!(f.execute(&cmd).unwrap(), "device-down leaf002; slow leaf001 300ms; malformed spine1 truncated");
        assert_eq!(f.execute(&Command::ClearAll).unwrap(), "3 cleared");
        assert!(
            !b("leaf002").is_silent() && b("leaf001").extra_latency().is_zero() && b("spine1").malformed().is_none()
        );
        assert_eq!(
            f.clear(&Fault::Reboot { device: "leaf001".into() }).unwrap_err().to_string(),
            "reboot leaf001 is an event, not a state: there is nothing to clear"
        );
    }

    #[test]
    fn reboot_restarts_the_clock_and_counters_and_flaps_the_peers_sessions() {
        let f = fabric("spines=2,leaves=2");
        f.inject(&Fault::LinkDown { a: "leaf001".into(), b: "spine2".into() }).unwrap();
        let before = f.mib("leaf001").unwrap().read().clone();
        std::thread::sleep(Duration::from_millis(20));
        f.inject(&Fault::Reboot { device: "leaf001".into() }).unwrap();
        let after = f.mib("leaf001").unwrap().read().clone();
        assert!(after.started() > before.started());
        let t = after.started();
        let up = ifmib::SYS_UPTIME.parse::<Oid>().unwrap();
        assert_eq!(after.get(&up, t), Value::TimeTicks(0));
        let (rows, r) = view_at(&after, t);
        // Every counter is back at its base (port i: i × 1,000,000).
        for row in &rows {
            assert_eq!(row.counter(CounterKind::InOctets).unwrap().value, u64::from(row.if_index) * 1_000_000);
        }
        // The fault set survives the reboot: the cable to spine2 is still down.
        assert_eq!(rows[1].oper_status, Some(2));
        assert_eq!(r.bgp.iter().map(|p| p.state).collect::<Vec<_>>(), [BgpState::Established, BgpState::Active]);
        assert_eq!(r.bgp[0].fsm_established_transitions, Some(1));
        // spine1 saw its session to leaf001 go down and come back.
        let (_, spine) = view(&f, "spine1");
        let p = spine.bgp.iter().find(|p| p.peer_addr == ip("10.128.0.1")).unwrap();
        assert_eq!((p.state, p.fsm_established_transitions), (BgpState::Established, Some(2)));
        let other = spine.bgp.iter().find(|p| p.peer_addr == ip("10.128.0.3")).unwrap();
        assert_eq!(other.fsm_established_transitions, Some(1), "other sessions untouched");
    }

    #[test]
    fn counter_wrap_moves_running_counters_next_to_their_wrap_and_marks_the_discontinuity() {
        let f = fabric("spines=1,leaves=1");
        f.inject(&Fault::CounterWrap { device: "leaf001".into(), bits: 32 }).unwrap();
        let mib = f.mib("leaf001").unwrap().read().clone();
        let now = Instant::now();
        let in32 = "1.3.6.1.2.1.2.2.1.10.1".parse::<Oid>().unwrap();
        let hc_in = "1.3.6.1.2.1.31.1.1.1.6.1".parse::<Oid>().unwrap();
        let disc = "1.3.6.1.2.1.31.1.1.1.19.1".parse::<Oid>().unwrap();
        let c32 = |t| match mib.get(&in32, t) {
            Value::Counter32(c) => c,
            other => panic!("{other:?}"),
        };
        assert!(c32(now) > u32::MAX / 2, "{}", c32(now));
        assert!(c32(now + Duration::from_secs(WRAP_AFTER_S - 1)) > c32(now), "not wrapped yet");
        assert!(c32(now + Duration::from_secs(WRAP_AFTER_S + 1)) < c32(now), "wrapped after {WRAP_AFTER_S} s");
        assert!(matches!(mib.get(&disc, now), Value::TimeTicks(_)));
        // 64-bit counters keep counting from where they were.
        assert!(matches!(mib.get(&hc_in, now), Value::Counter64(c) if c < 1 << 40));
        f.inject(&Fault::CounterWrap { device: "leaf001".into(), bits: 64 }).unwrap();
        let mib = f.mib("leaf001").unwrap().read().clone();
        assert!(matches!(mib.get(&hc_in, now), Value::Counter64(c) if c > u64::MAX - (1 << 40)));
    }
}
