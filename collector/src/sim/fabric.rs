//! The simulated fabric as plain data: which devices exist (spines, leaves, border leaves, core
//! routers), their names, AS numbers, loopbacks, and every cable with its addresses and traffic.
//!
//! Pure: no MIB and no sockets. [`FabricModel::build`] turns a [`FabricSpec`] into the wiring
//! that every device's MIB is later filled from (see [`super::wiring`]), so the two ends of a
//! cable are described from one record and cannot disagree.
//!
//! Layout, mirroring tests/lab (a two-tier Clos with eBGP and OSPF on every fabric link):
//! - leaf `l` port `s` ↔ spine `s` port `l`; border `b` port `s` ↔ spine `s` port `leaves + b`;
//!   border `b` port `spines + c` ↔ core `c` port `b`. The remaining leaf and border ports face
//!   hosts (up, carrying traffic); unused spine and core ports are administratively down.
//! - A spine or core has as many ports as it needs to take every downlink, at least
//!   `ports_per_device` (a chassis spine); leaves and borders have exactly `ports_per_device`.
//! - AS numbers: spines share 65000, cores share 65500, every leaf and border has its own:
//!   65000 + n while there are fewer than 500 of them, else 4,200,000,000 + n (RFC 6996's
//!   4-byte private range).
//! - Loopback (= router ID, BGP identifier, LLDP management address): 10.0.0.0/16 + device
//!   number; link `k`'s /31 is 10.128.0.0/9 + 2k, the upper tier (spine or core) taking the
//!   even address, as in the lab.

use std::collections::HashMap;
use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

/// What a device does in the fabric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Spine,
    Leaf,
    /// A leaf that also connects the fabric to the core (border leaf).
    Border,
    Core,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Spine => "spine",
            Role::Leaf => "leaf",
            Role::Border => "border",
            Role::Core => "core",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The fabric to simulate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FabricSpec {
    pub spines: u32,
    pub leaves: u32,
    pub borders: u32,
    pub cores: u32,
    /// Ports of a leaf or border (and the least a spine or core has).
    pub ports_per_device: u32,
    pub speed_mbps: u32,
}

impl Default for FabricSpec {
    fn default() -> Self {
        FabricSpec { spines: 2, leaves: 4, borders: 0, cores: 0, ports_per_device: 48, speed_mbps: 10_000 }
    }
}

/// Why a spec does not make a fabric.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FabricError {
    #[error("fabric spec {spec:?}: {detail}")]
    Spec { spec: String, detail: String },
    #[error("a fabric needs at least one spine and one leaf (got {spines} spines, {leaves} leaves)")]
    TooSmall { spines: u32, leaves: u32 },
    #[error("cores need border leaves to connect to (got {cores} cores and no borders)")]
    CoresWithoutBorders { cores: u32 },
    #[error("a {role} has {ports} ports but needs {uplinks} uplinks (raise ports per device)")]
    NotEnoughPorts { role: Role, ports: u32, uplinks: u32 },
    #[error("{devices} devices is more than the {max} the fabric's address plan holds")]
    TooLarge { devices: u64, max: u64 },
}

/// Most devices: loopbacks are 10.0.0.0/16 + device number (1-based), without .255.255.
pub const MAX_DEVICES: u64 = 65_534;

impl FromStr for FabricSpec {
    type Err = FabricError;

    /// `spines=2,leaves=6[,borders=2][,cores=2][,ports=48][,speed=10000]`; keys not given keep
    /// their defaults (2 spines, 4 leaves, no borders or cores, 48 ports of 10 Gb/s).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |detail: String| FabricError::Spec { spec: s.to_string(), detail };
        let mut spec = FabricSpec::default();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once('=').ok_or_else(|| err(format!("{part:?} is not key=value")))?;
            let n: u32 =
                value.trim().parse().map_err(|_| err(format!("{key}: {value:?} is not a non-negative number")))?;
            match key.trim() {
                "spines" => spec.spines = n,
                "leaves" => spec.leaves = n,
                "borders" => spec.borders = n,
                "cores" => spec.cores = n,
                "ports" => spec.ports_per_device = n,
                "speed" => spec.speed_mbps = n,
                other => {
                    return Err(err(format!("unknown key {other:?} (spines, leaves, borders, cores, ports, speed)")));
                }
            }
        }
        Ok(spec)
    }
}

impl FabricSpec {
    pub fn devices(&self) -> u64 {
        u64::from(self.spines) + u64::from(self.leaves) + u64::from(self.borders) + u64::from(self.cores)
    }
}

/// One simulated device of the fabric.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FabricDevice {
    /// Position in [`FabricModel::devices`].
    pub index: usize,
    pub name: String,
    pub role: Role,
    pub asn: u32,
    /// Loopback address: router ID, BGP identifier and LLDP management address.
    pub loopback: Ipv4Addr,
    /// Ports eth1..ethN (ifIndex 1..N).
    pub ports: u32,
}

impl FabricDevice {
    /// The device number in MACs and addresses (1-based: 0 would give 10.0.0.0).
    pub fn number(&self) -> u32 {
        self.index as u32 + 1
    }

    /// The LLDP chassis ID: the device's base MAC.
    pub fn chassis_mac(&self) -> [u8; 6] {
        super::device::mac(self.number(), 0)
    }
}

/// One end of a cable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkEnd {
    pub device: usize,
    pub if_index: u32,
    /// The end's address on the link's /31.
    pub addr: Ipv4Addr,
}

/// One cable; `a` is the upper tier (spine or core), `b` the lower (leaf or border).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FabricLink {
    pub index: usize,
    pub a: LinkEnd,
    pub b: LinkEnd,
    /// Octets per second from `a` to `b` while the link is up (the traffic model).
    pub a_to_b_octets_per_s: u64,
    pub b_to_a_octets_per_s: u64,
}

impl FabricLink {
    /// The end at `device` and the far end, if the link touches `device`.
    pub fn ends_from(&self, device: usize) -> Option<(LinkEnd, LinkEnd)> {
        if self.a.device == device {
            Some((self.a, self.b))
        } else if self.b.device == device {
            Some((self.b, self.a))
        } else {
            None
        }
    }

    /// Octets per second (in, out) at `device`'s end while up.
    pub fn rates_at(&self, device: usize) -> (u64, u64) {
        if self.a.device == device {
            (self.b_to_a_octets_per_s, self.a_to_b_octets_per_s)
        } else {
            (self.a_to_b_octets_per_s, self.b_to_a_octets_per_s)
        }
    }
}

/// What a device's port is used for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortUse {
    /// Cabled to another fabric device: the link's index.
    Fabric(usize),
    /// Facing servers: up and carrying traffic, no LLDP neighbour simulated.
    Host,
    /// Administratively down.
    Unused,
}

/// The whole fabric: devices and cables, with look-ups by name and by port.
#[derive(Debug, Clone)]
pub struct FabricModel {
    pub spec: FabricSpec,
    pub devices: Vec<FabricDevice>,
    pub links: Vec<FabricLink>,
    by_name: HashMap<String, usize>,
    /// Per device, the links it has, in ifIndex order.
    device_links: Vec<Vec<usize>>,
}

const SPINE_AS: u32 = 65_000;
const CORE_AS: u32 = 65_500;
/// Leaves and borders get 2-byte private AS numbers 65001..=65499 while they fit.
const MAX_TWO_BYTE_LEAVES: u32 = 499;
const FOUR_BYTE_BASE: u32 = 4_200_000_000;
const LOOPBACK_NET: u32 = u32::from_be_bytes([10, 0, 0, 0]);
const LINK_NET: u32 = u32::from_be_bytes([10, 128, 0, 0]);

fn digits(n: u32) -> usize {
    n.max(1).to_string().len()
}

impl FabricModel {
    /// Names, numbers and cables every device of `spec`.
    pub fn build(spec: &FabricSpec) -> Result<FabricModel, FabricError> {
        let s = spec;
        if s.spines == 0 || s.leaves == 0 {
            return Err(FabricError::TooSmall { spines: s.spines, leaves: s.leaves });
        }
        if s.cores > 0 && s.borders == 0 {
            return Err(FabricError::CoresWithoutBorders { cores: s.cores });
        }
        if s.devices() > MAX_DEVICES {
            return Err(FabricError::TooLarge { devices: s.devices(), max: MAX_DEVICES });
        }
        if s.spines > s.ports_per_device {
            return Err(FabricError::NotEnoughPorts { role: Role::Leaf, ports: s.ports_per_device, uplinks: s.spines });
        }
        if s.borders > 0 && s.spines + s.cores > s.ports_per_device {
            return Err(FabricError::NotEnoughPorts {
                role: Role::Border,
                ports: s.ports_per_device,
                uplinks: s.spines + s.cores,
            });
        }
        let lower = s.leaves + s.borders;
        let lower_asn = |n: u32| if lower <= MAX_TWO_BYTE_LEAVES { SPINE_AS + n } else { FOUR_BYTE_BASE + n };
        let leaf_width = digits(s.leaves).max(3);
        let mut devices = Vec::with_capacity(s.devices() as usize);
        let mut add = |name: String, role: Role, asn: u32, ports: u32| {
            let index = devices.len();
            let loopback = Ipv4Addr::from(LOOPBACK_NET + index as u32 + 1);
            devices.push(FabricDevice { index, name, role, asn, loopback, ports });
        };
        let spine_ports = s.ports_per_device.max(lower);
        for i in 1..=s.spines {
            add(format!("spine{i}"), Role::Spine, SPINE_AS, spine_ports);
        }
        for i in 1..=s.leaves {
            add(format!("leaf{i:0leaf_width$}"), Role::Leaf, lower_asn(i), s.ports_per_device);
        }
        for i in 1..=s.borders {
            add(format!("border{i}"), Role::Border, lower_asn(s.leaves + i), s.ports_per_device);
        }
        for i in 1..=s.cores {
            add(format!("core{i}"), Role::Core, CORE_AS, s.ports_per_device.max(s.borders));
        }
        let spine = |i: u32| (i - 1) as usize;
        let leaf = |i: u32| (s.spines + i - 1) as usize;
        let border = |i: u32| (s.spines + s.leaves + i - 1) as usize;
        let core = |i: u32| (s.spines + s.leaves + s.borders + i - 1) as usize;

        let link_count = u64::from(s.spines) * u64::from(lower) + u64::from(s.borders) * u64::from(s.cores);
        let mut links = Vec::with_capacity(link_count as usize);
        let speed_bytes = u64::from(s.speed_mbps) * 1_000_000 / 8;
        let mut cable = |(ad, ai): (usize, u32), (bd, bi): (usize, u32)| {
            let index = links.len();
            let net = LINK_NET + 2 * index as u32;
            // 5-44 % of the link each way, different per link and direction but deterministic.
            let pct = |salt: u64| 5 + (index as u64 * salt + salt) % 40;
            links.push(FabricLink {
                index,
                a: LinkEnd { device: ad, if_index: ai, addr: Ipv4Addr::from(net) },
                b: LinkEnd { device: bd, if_index: bi, addr: Ipv4Addr::from(net + 1) },
                a_to_b_octets_per_s: speed_bytes * pct(7) / 100,
                b_to_a_octets_per_s: speed_bytes * pct(11) / 100,
            });
        };
        for sp in 1..=s.spines {
            for l in 1..=s.leaves {
                cable((spine(sp), l), (leaf(l), sp));
            }
            for b in 1..=s.borders {
                cable((spine(sp), s.leaves + b), (border(b), sp));
            }
        }
        for c in 1..=s.cores {
            for b in 1..=s.borders {
                cable((core(c), b), (border(b), s.spines + c));
            }
        }

        let mut device_links = vec![Vec::new(); devices.len()];
        for l in &links {
            device_links[l.a.device].push(l.index);
            device_links[l.b.device].push(l.index);
        }
        for (d, ls) in device_links.iter_mut().enumerate() {
            ls.sort_by_key(|&i| links[i].ends_from(d).map(|(me, _)| me.if_index));
        }
        let by_name = devices.iter().map(|d| (d.name.clone(), d.index)).collect();
        Ok(FabricModel { spec: spec.clone(), devices, links, by_name, device_links })
    }

    pub fn device(&self, name: &str) -> Option<&FabricDevice> {
        self.by_name.get(name).map(|&i| &self.devices[i])
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    /// The links of `device`, in its ifIndex order.
    pub fn links_of(&self, device: usize) -> impl Iterator<Item = &FabricLink> {
        self.device_links[device].iter().map(|&i| &self.links[i])
    }

    /// The cable between two devices (the fabric has at most one per pair).
    pub fn link_between(&self, a: usize, b: usize) -> Option<&FabricLink> {
        self.links_of(a).find(|l| l.ends_from(b).is_some())
    }

    /// What `device`'s port `if_index` is used for.
    pub fn port_use(&self, device: usize, if_index: u32) -> PortUse {
        // A device's links are sorted by its own ifIndex: a binary search, not a scan (spines of
        // large fabrics have thousands of links).
        let at = |&l: &usize| self.links[l].ends_from(device).map_or(0, |(me, _)| me.if_index);
        if let Ok(i) = self.device_links[device].binary_search_by_key(&if_index, at) {
            return PortUse::Fabric(self.device_links[device][i]);
        }
        match self.devices[device].role {
            Role::Leaf | Role::Border => PortUse::Host,
            Role::Spine | Role::Core => PortUse::Unused,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn model(s: &str) -> FabricModel {
        FabricModel::build(&s.parse().expect("spec")).expect("fabric")
    }

    #[test]
    fn the_lab_shape() {
        let m = model("spines=2,leaves=3");
        let names: Vec<&str> = m.devices.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["spine1", "spine2", "leaf001", "leaf002", "leaf003"]);
        let asns: Vec<u32> = m.devices.iter().map(|d| d.asn).collect();
        assert_eq!(asns, [65000, 65000, 65001, 65002, 65003]);
        assert_eq!(m.links.len(), 6);
        // leaf002 port 1 ↔ spine1 port 2, leaf002 port 2 ↔ spine2 port 2.
        let leaf2 = m.index_of("leaf002").unwrap();
        let ends: Vec<(String, u32, u32)> = m
            .links_of(leaf2)
            .map(|l| {
                let (me, far) = l.ends_from(leaf2).unwrap();
                (m.devices[far.device].name.clone(), me.if_index, far.if_index)
            })
            .collect();
        assert_eq!(ends, [("spine1".to_string(), 1, 2), ("spine2".to_string(), 2, 2)]);
        let l = m.link_between(m.index_of("spine1").unwrap(), leaf2).unwrap();
        assert_eq!((l.a.addr, l.b.addr), ("10.128.0.2".parse().unwrap(), "10.128.0.3".parse().unwrap()));
        assert_eq!(m.device("spine1").unwrap().loopback, Ipv4Addr::new(10, 0, 0, 1));
        assert_eq!(m.port_use(leaf2, 3), PortUse::Host);
        assert_eq!(m.port_use(0, 4), PortUse::Unused);
        assert_eq!(m.port_use(0, 3), PortUse::Fabric(2));
    }

    /// Every link appears at both ends, on distinct ports within each device's port range;
    /// names, loopbacks, link addresses and leaf AS numbers are unique.
    fn check_consistent(m: &FabricModel) {
        let mut names = HashSet::new();
        let mut loopbacks = HashSet::new();
        let mut leaf_asns = HashSet::new();
        for d in &m.devices {
            assert!(names.insert(d.name.as_str()), "duplicate name {}", d.name);
            assert!(loopbacks.insert(d.loopback), "duplicate loopback {}", d.loopback);
            if matches!(d.role, Role::Leaf | Role::Border) {
                assert!(leaf_asns.insert(d.asn), "duplicate leaf AS {}", d.asn);
                assert_ne!(d.asn, SPINE_AS);
            }
            assert_eq!(m.device(&d.name), Some(d));
        }
        let mut ports = HashSet::new();
        let mut addrs = HashSet::new();
        for l in &m.links {
            assert_ne!(l.a.device, l.b.device);
            for (me, far) in [(l.a, l.b), (l.b, l.a)] {
                assert!(me.if_index >= 1 && me.if_index <= m.devices[me.device].ports, "{l:?}");
                assert!(ports.insert((me.device, me.if_index)), "port used twice: {me:?}");
                assert!(addrs.insert(me.addr));
                assert!(m.links_of(me.device).any(|x| x.index == l.index), "link {} missing at {me:?}", l.index);
                assert_eq!(m.link_between(me.device, far.device).map(|x| x.index), Some(l.index));
                assert_eq!(m.port_use(me.device, me.if_index), PortUse::Fabric(l.index));
            }
            assert_eq!(u32::from(l.a.addr) ^ 1, u32::from(l.b.addr), "a /31");
            let (a_in, a_out) = l.rates_at(l.a.device);
            assert_eq!(l.rates_at(l.b.device), (a_out, a_in), "what one end sends the other receives");
        }
        let spec = &m.spec;
        let lower = u64::from(spec.leaves + spec.borders);
        assert_eq!(m.links.len() as u64, u64::from(spec.spines) * lower + u64::from(spec.borders * spec.cores));
    }

    #[test]
    fn sizes_from_five_to_ten_thousand_are_consistent() {
        for s in [
            "spines=2,leaves=3",
            "spines=2,leaves=2,borders=1",
            "spines=4,leaves=20,borders=2,cores=2",
            "spines=2,leaves=498,borders=1",
            "spines=2,leaves=500",
            "spines=4,leaves=9994,borders=2",
        ] {
            let m = model(s);
            check_consistent(&m);
            assert_eq!(m.devices.len() as u64, m.spec.devices(), "{s}");
        }
        let big = model("spines=4,leaves=9994,borders=2");
        assert_eq!(big.devices.len(), 10_000);
        assert_eq!(big.devices[4].name, "leaf0001");
        assert_eq!(big.devices[4].asn, 4_200_000_001);
        assert_eq!(big.device("spine1").unwrap().ports, 9996, "a spine takes every downlink");
        assert_eq!(model("spines=2,leaves=499").devices[500].asn, 65499);
    }

    #[test]
    fn bad_specs_say_why() {
        let err = |s: &str| FabricModel::build(&s.parse().expect("spec")).unwrap_err().to_string();
        assert_eq!(err("spines=0,leaves=4"), "a fabric needs at least one spine and one leaf (got 0 spines, 4 leaves)");
        assert_eq!(err("spines=49,leaves=4"), "a leaf has 48 ports but needs 49 uplinks (raise ports per device)");
        assert!(err("spines=2,leaves=4,cores=2").contains("cores need border leaves"));
        assert!(err("spines=2,leaves=70000").contains("more than the 65534"));
        let parse = |s: &str| s.parse::<FabricSpec>().unwrap_err().to_string();
        assert!(parse("spines=2,leafs=3").contains("unknown key \"leafs\""), "{}", parse("spines=2,leafs=3"));
        assert!(parse("spines").contains("is not key=value"));
        assert!(parse("spines=-1").contains("not a non-negative number"));
        assert_eq!(
            "spines=2,leaves=6,borders=2,ports=32".parse::<FabricSpec>(),
            Ok(FabricSpec { spines: 2, leaves: 6, borders: 2, cores: 0, ports_per_device: 32, speed_mbps: 10_000 })
        );
    }
}
