//! The network topology as a graph: which device is cabled to which, built from LLDP/CDP neighbour tables.
//!
//! Pure: no I/O and no SQL. The SNMP side converts what devices report into [`TopoDevice`] and [`Adjacency`]
//! values, [`Topology::build`] resolves every neighbour to an inventory device (or a *discovered* node) and merges
//! the two ends' reports of each cable into one [`Link`], and the queries answer the operational questions:
//! what changed ([`diff`]), how does traffic get from A to B ([`Topology::shortest_path`]), what is cut off if X
//! fails ([`Topology::failure_impact`]), where are the single points of failure
//! ([`Topology::single_points_of_failure`]), and what Grafana's Node Graph panel should draw
//! ([`Topology::node_graph`]).
//!
//! Identities are names: a node is its device name (discovered nodes are `discovered:<chassis id>`), and a link
//! is its [`LinkKey`], the sorted pair of (device, interface) ends. Both survive a rebuild, so two topologies
//! built at different times can be compared and their changes recorded as events.
//!
//! Link status: each end's oper status comes from the reporting device's own interface (`local_if_oper_up`). A
//! link is down if any known end is down, up if at least one end is known up and none is down, and unknown when
//! neither end's status is known. Path and failure analyses only use links whose status is `up`; device status
//! is not consulted, because a device that stopped answering SNMP may still forward, and a device that really is
//! down shows up as down ports on its neighbours. Discovered nodes are endpoints only: paths never pass through them (most are servers).

mod analysis;
mod build;
mod diff;
mod node_graph;
#[cfg(test)]
mod testutil;

pub use analysis::{Failure, Impact, LinkScope, PathHop, Spof, TopologyError};
pub use diff::{LinkState, TopologyChange, diff};
pub use node_graph::{NodeGraph, NodeGraphEdge, NodeGraphNode};

use petgraph::graph::{NodeIndex, UnGraph};
use serde::{Deserialize, Serialize};
use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

/// Whether a device answers its management protocols, as the poller last saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeviceStatus {
    Up,
    Down,
    #[default]
    Unknown,
}

/// One inventory device, as the topology needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TopoDevice {
    pub id: i64,
    pub name: String,
    #[serde(default)]
    pub role: Option<String>,
    #[serde(default)]
    pub site: Option<String>,
    /// Management address (IP literal preferred; matched against neighbours' advertised management address).
    #[serde(default)]
    pub mgmt_addr: Option<String>,
    /// The device's own LLDP chassis ids (lldpLocChassisId), any common MAC notation.
    #[serde(default)]
    pub chassis_ids: Vec<String>,
    /// sysName.0 as the device reports it.
    #[serde(default)]
    pub sys_name: Option<String>,
    #[serde(default)]
    pub status: DeviceStatus,
}

/// The discovery protocol a neighbour was learnt from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Lldp,
    Cdp,
}

/// What one device reports about one neighbour on one local port (one lldpRemTable or cdpCacheTable row).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Adjacency {
    /// The reporting device (inventory id).
    pub device_id: i64,
    /// The reporting device's interface, as ifName.
    pub local_if_name: String,
    /// ifOperStatus of that interface: `Some(true)` for up(1), `Some(false)` for down(2), `None` otherwise.
    #[serde(default)]
    pub local_if_oper_up: Option<bool>,
    pub remote_chassis_id: String,
    #[serde(default)]
    pub remote_sys_name: Option<String>,
    pub remote_port_id: String,
    #[serde(default)]
    pub remote_port_descr: Option<String>,
    #[serde(default)]
    pub remote_mgmt_addr: Option<String>,
    pub protocol: Protocol,
}

/// Oper status of one link end, or of a whole link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OperStatus {
    Up,
    Down,
    #[default]
    Unknown,
}

impl OperStatus {
    fn from_reported(up: Option<bool>) -> Self {
        match up {
            Some(true) => OperStatus::Up,
            Some(false) => OperStatus::Down,
            None => OperStatus::Unknown,
        }
    }

    /// The status of a link from its two ends: down wins, then up, then unknown.
    fn link(a: OperStatus, b: OperStatus) -> Self {
        match (a, b) {
            (OperStatus::Down, _) | (_, OperStatus::Down) => OperStatus::Down,
            (OperStatus::Up, _) | (_, OperStatus::Up) => OperStatus::Up,
            _ => OperStatus::Unknown,
        }
    }

    /// Two reports of the same end: a known status beats unknown, down beats up.
    fn merge(a: OperStatus, b: OperStatus) -> Self {
        OperStatus::link(a, b)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OperStatus::Up => "up",
            OperStatus::Down => "down",
            OperStatus::Unknown => "unknown",
        }
    }
}

/// Which ends of a link reported it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeenFrom {
    Both,
    /// Only the `a` end (the smaller one in the key) reported the link.
    OnlyA,
    /// Only the `b` end reported the link.
    OnlyB,
}

impl SeenFrom {
    pub fn as_str(self) -> &'static str {
        match self {
            SeenFrom::Both => "both",
            SeenFrom::OnlyA => "only_a",
            SeenFrom::OnlyB => "only_b",
        }
    }
}

/// One end of a link: a node name and an interface name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct LinkEnd {
    pub device: String,
    pub interface: String,
}

impl LinkEnd {
    pub fn new(device: impl Into<String>, interface: impl Into<String>) -> Self {
        LinkEnd { device: device.into(), interface: interface.into() }
    }
}

impl fmt::Display for LinkEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.device, self.interface)
    }
}

/// A link's stable identity: its two ends, sorted so that `a <= b`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "UnsortedLinkKey")]
pub struct LinkKey {
    pub a: LinkEnd,
    pub b: LinkEnd,
}

/// What a client sends; sorted on the way in so `{a: x, b: y}` and `{a: y, b: x}` name the same link.
#[derive(Deserialize)]
struct UnsortedLinkKey {
    a: LinkEnd,
    b: LinkEnd,
}

impl From<UnsortedLinkKey> for LinkKey {
    fn from(k: UnsortedLinkKey) -> Self {
        LinkKey::new(k.a, k.b)
    }
}

impl LinkKey {
    pub fn new(x: LinkEnd, y: LinkEnd) -> Self {
        if x <= y { LinkKey { a: x, b: y } } else { LinkKey { a: y, b: x } }
    }

    /// Whether `device` is one of the two ends.
    pub fn touches(&self, device: &str) -> bool {
        self.a.device == device || self.b.device == device
    }
}

impl fmt::Display for LinkKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}--{}", self.a, self.b)
    }
}

/// Where a node comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum NodeOrigin {
    Inventory {
        device_id: i64,
    },
    /// A neighbour that matched no inventory device; the API can offer to add it.
    Discovered {
        /// Normalised chassis id (MACs as lowercase `aa:bb:cc:dd:ee:ff`).
        chassis_id: String,
        /// Inventory devices that reported it.
        seen_by: Vec<String>,
    },
}

/// A device in the topology: an inventory device or a discovered neighbour.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// Unique: the inventory name, or `discovered:<chassis id>`.
    pub name: String,
    pub sys_name: Option<String>,
    pub role: Option<String>,
    pub site: Option<String>,
    pub mgmt_addr: Option<String>,
    pub chassis_ids: Vec<String>,
    /// Always `unknown` for discovered nodes: nobody polls them.
    pub status: DeviceStatus,
    pub origin: NodeOrigin,
}

impl Node {
    /// A discovered node known only by name and chassis id (details are filled in as seen).
    pub(crate) fn bare_discovered(name: String, chassis_id: String) -> Node {
        Node {
            name,
            sys_name: None,
            role: None,
            site: None,
            mgmt_addr: None,
            chassis_ids: Vec::new(),
            status: DeviceStatus::Unknown,
            origin: NodeOrigin::Discovered { chassis_id, seen_by: Vec::new() },
        }
    }

    pub fn is_discovered(&self) -> bool {
        matches!(self.origin, NodeOrigin::Discovered { .. })
    }

    pub fn has_role(&self, role: &str) -> bool {
        self.role.as_deref().is_some_and(|r| r.eq_ignore_ascii_case(role))
    }
}

/// One cable between two interfaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    pub key: LinkKey,
    pub a_status: OperStatus,
    pub b_status: OperStatus,
    pub status: OperStatus,
    pub seen_from: SeenFrom,
    pub protocols: Vec<Protocol>,
}

impl Link {
    pub fn is_up(&self) -> bool {
        self.status == OperStatus::Up
    }

    /// Merges another report of the same key into this one.
    fn absorb(&mut self, other: Link) {
        self.a_status = OperStatus::merge(self.a_status, other.a_status);
        self.b_status = OperStatus::merge(self.b_status, other.b_status);
        self.status = OperStatus::link(self.a_status, self.b_status);
        self.seen_from = match (self.seen_from, other.seen_from) {
            (x, y) if x == y => x,
            _ => SeenFrom::Both,
        };
        for p in other.protocols {
            if !self.protocols.contains(&p) {
                self.protocols.push(p);
            }
        }
        self.protocols.sort();
    }

    /// The end at `device`, and the other one (for a self-loop, `a` first).
    pub fn ends_from(&self, device: &str) -> Option<(&LinkEnd, &LinkEnd)> {
        if self.key.a.device == device {
            Some((&self.key.a, &self.key.b))
        } else if self.key.b.device == device {
            Some((&self.key.b, &self.key.a))
        } else {
            None
        }
    }
}

/// Something `build` could not use or could not decide; the rest of the topology is still built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BuildWarning {
    /// An adjacency from a device id that is not in the device list; skipped.
    UnknownReporter { device_id: i64, local_if_name: String },
    /// A neighbour with no chassis id, sys name or management address; skipped.
    AnonymousNeighbour { device: String, local_if_name: String },
    /// A neighbour that matched several inventory devices at every level; kept as a discovered node.
    AmbiguousNeighbour { device: String, local_if_name: String, candidates: Vec<String> },
    /// Two inventory devices with the same name; the second one's adjacencies are attributed to the first.
    DuplicateDeviceName { name: String, device_id: i64 },
}

/// The topology graph. Build it with [`Topology::build`]; it serializes as `{nodes, links, warnings}` and
/// deserializes back (so a stored snapshot can be diffed against a fresh build).
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "TopologyData")]
pub struct Topology {
    /// Sorted by name; node `i` is graph node `i`.
    nodes: Vec<Node>,
    /// Sorted by key; link `i` is graph edge `i`.
    links: Vec<Link>,
    warnings: Vec<BuildWarning>,
    by_name: HashMap<String, usize>,
    by_key: HashMap<LinkKey, usize>,
    /// Node weights are unused; edge weights are link indices.
    graph: UnGraph<(), usize>,
}

#[derive(Serialize)]
struct TopologyRef<'a> {
    nodes: &'a [Node],
    links: &'a [Link],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    warnings: &'a [BuildWarning],
}

#[derive(Deserialize)]
struct TopologyData {
    nodes: Vec<Node>,
    links: Vec<Link>,
    #[serde(default)]
    warnings: Vec<BuildWarning>,
}

impl Serialize for Topology {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        TopologyRef { nodes: &self.nodes, links: &self.links, warnings: &self.warnings }.serialize(s)
    }
}

impl From<TopologyData> for Topology {
    fn from(d: TopologyData) -> Self {
        Topology::from_parts(d.nodes, d.links, d.warnings)
    }
}

impl PartialEq for Topology {
    fn eq(&self, other: &Self) -> bool {
        self.nodes == other.nodes && self.links == other.links && self.warnings == other.warnings
    }
}

impl Topology {
    /// Assembles a topology from nodes and links in any order. Links are merged by key; a link whose end names
    /// no node gets a placeholder discovered node, so the graph never has dangling edges.
    fn from_parts(mut nodes: Vec<Node>, links: Vec<Link>, warnings: Vec<BuildWarning>) -> Self {
        nodes.sort_by(|x, y| x.name.cmp(&y.name));
        nodes.dedup_by(|later, earlier| later.name == earlier.name);

        let mut merged: BTreeMap<LinkKey, Link> = BTreeMap::new();
        for link in links {
            match merged.entry(link.key.clone()) {
                Entry::Vacant(v) => {
                    v.insert(link);
                }
                Entry::Occupied(mut o) => o.get_mut().absorb(link),
            }
        }
        let links: Vec<Link> = merged.into_values().collect();

        let mut by_name: HashMap<String, usize> = nodes.iter().enumerate().map(|(i, n)| (n.name.clone(), i)).collect();
        let missing: BTreeSet<&str> = links
            .iter()
            .flat_map(|l| [l.key.a.device.as_str(), l.key.b.device.as_str()])
            .filter(|d| !by_name.contains_key(*d))
            .collect();
        if !missing.is_empty() {
            nodes.extend(missing.into_iter().map(|name| Node::bare_discovered(name.to_owned(), String::new())));
            nodes.sort_by(|x, y| x.name.cmp(&y.name));
            by_name = nodes.iter().enumerate().map(|(i, n)| (n.name.clone(), i)).collect();
        }

        let mut graph = UnGraph::with_capacity(nodes.len(), links.len());
        for _ in &nodes {
            graph.add_node(());
        }
        let mut by_key = HashMap::with_capacity(links.len());
        for (i, link) in links.iter().enumerate() {
            let a = NodeIndex::new(by_name[&link.key.a.device]);
            let b = NodeIndex::new(by_name[&link.key.b.device]);
            graph.add_edge(a, b, i);
            by_key.insert(link.key.clone(), i);
        }
        Topology { nodes, links, warnings, by_name, by_key, graph }
    }

    /// All nodes, sorted by name.
    pub fn nodes(&self) -> &[Node] {
        &self.nodes
    }

    /// All links, sorted by key.
    pub fn links(&self) -> &[Link] {
        &self.links
    }

    /// What `build` skipped or could not decide.
    pub fn warnings(&self) -> &[BuildWarning] {
        &self.warnings
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.by_name.get(name).map(|&i| &self.nodes[i])
    }

    pub fn link(&self, key: &LinkKey) -> Option<&Link> {
        self.by_key.get(key).map(|&i| &self.links[i])
    }

    /// The links at one node, sorted by key.
    pub fn links_of(&self, name: &str) -> Vec<&Link> {
        let Some(&i) = self.by_name.get(name) else { return Vec::new() };
        let mut ids: Vec<usize> = self.graph.edges(NodeIndex::new(i)).map(|e| *e.weight()).collect();
        ids.sort_unstable();
        ids.dedup();
        ids.into_iter().map(|l| &self.links[l]).collect()
    }

    fn node_index(&self, name: &str) -> Option<usize> {
        self.by_name.get(name).copied()
    }

    fn link_index(&self, key: &LinkKey) -> Option<usize> {
        self.by_key.get(key).copied()
    }

    /// Graph node indices of a link's two ends.
    fn link_nodes(&self, link: usize) -> (usize, usize) {
        let key = &self.links[link].key;
        (self.by_name[&key.a.device], self.by_name[&key.b.device])
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::*;
    use super::*;

    #[test]
    fn link_key_sorts_its_ends_also_when_deserialized() {
        let x = LinkEnd::new("spine1", "eth1");
        let y = LinkEnd::new("leaf1", "eth1");
        let key = LinkKey::new(x.clone(), y.clone());
        assert_eq!(key.a, y);
        assert_eq!(key.to_string(), "leaf1:eth1--spine1:eth1");
        let json = r#"{"a":{"device":"spine1","interface":"eth1"},"b":{"device":"leaf1","interface":"eth1"}}"#;
        let parsed: LinkKey = serde_json::from_str(json).unwrap();
        assert_eq!(parsed, key);
    }

    #[test]
    fn link_status_from_ends() {
        use OperStatus::*;
        let cases = [
            (Up, Up, Up),
            (Up, Unknown, Up),
            (Unknown, Up, Up),
            (Up, Down, Down),
            (Down, Unknown, Down),
            (Unknown, Unknown, Unknown),
        ];
        for (a, b, want) in cases {
            assert_eq!(OperStatus::link(a, b), want, "{a:?} + {b:?}");
        }
    }

    #[test]
    fn topology_round_trips_through_json() {
        let (devices, adjacencies) = lab();
        let mut adjacencies = adjacencies;
        adjacencies.push(unknown_neighbour());
        let topo = Topology::build(&devices, &adjacencies);
        let json = serde_json::to_string(&topo).unwrap();
        let back: Topology = serde_json::from_str(&json).unwrap();
        assert_eq!(back, topo);
        assert_eq!(render(&back), render(&topo));
        assert!(diff(&topo, &back).is_empty());
        assert_eq!(back.shortest_path("leaf1", "leaf3").map(|p| p.len()), Some(2));
    }

    /// 4 spines × 100 leaves: every algorithm runs over 404 nodes and 400 links (800 reports), each query once
    /// per device where that is how the API would use it. Correctness checks only; no timing.
    #[test]
    fn a_big_fabric() {
        let (devices, mut adjacencies) = fabric(4, 100);
        let topo = Topology::build(&devices, &adjacencies);
        assert_eq!((topo.nodes().len(), topo.links().len()), (104, 400));
        assert!(topo.links().iter().all(|l| l.is_up() && l.seen_from == SeenFrom::Both));

        assert_eq!(topo.single_points_of_failure(), Spof::default());
        for spine in 1..=4 {
            let impact = topo.failure_impact(&Failure::Device(format!("spine{spine}")), "spine").unwrap();
            assert!(impact.cut_off.is_empty() && impact.already_cut_off.is_empty());
        }
        for leaf in 1..=100 {
            assert!(topo.reachable_only_through(&format!("leaf{leaf}"), "spine").is_empty());
        }
        assert_eq!(topo.shortest_path("leaf1", "leaf100").map(|p| p.len()), Some(2));
        assert_eq!(topo.parents_toward("spine").len(), 100);
        let graph = topo.node_graph();
        assert_eq!((graph.nodes.len(), graph.edges.len()), (104, 400));

        // leaf7 loses three of its four uplinks: spine4 and that last link become single points for it.
        for spine in 1..=3 {
            set_oper(&mut adjacencies, 1007, &format!("eth{spine}"), Some(false));
        }
        let degraded = Topology::build(&devices, &adjacencies);
        assert_eq!(diff(&topo, &degraded).len(), 3);
        let spof = degraded.single_points_of_failure();
        assert_eq!(spof.articulation_points, ["spine4"]);
        assert_eq!(spof.bridges, [testutil::key("leaf7", "eth4", "spine4", "eth7")]);
        assert_eq!(degraded.reachable_only_through("spine4", "spine"), ["leaf7"]);
    }

    #[test]
    fn deserialized_links_to_unknown_nodes_get_placeholders() {
        let json = r#"{"nodes":[],"links":[{"key":{"a":{"device":"x","interface":"e1"},"b":{"device":"y","interface":"e2"}},
            "a_status":"up","b_status":"up","status":"up","seen_from":"both","protocols":["lldp"]}]}"#;
        let topo: Topology = serde_json::from_str(json).unwrap();
        assert_eq!(topo.nodes().len(), 2);
        assert!(topo.node("y").unwrap().is_discovered());
        assert_eq!(topo.links_of("x").len(), 1);
    }
}

impl std::str::FromStr for LinkKey {
    type Err = String;
    /// Parses the display form `deviceA:ifA--deviceB:ifB` (either order).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let end = |t: &str| -> Result<LinkEnd, String> {
            let (d, i) = t.split_once(':').ok_or_else(|| format!("{t:?} is not device:interface"))?;
            if d.is_empty() || i.is_empty() {
                return Err(format!("{t:?} is not device:interface"));
            }
            Ok(LinkEnd::new(d, i))
        };
        let (a, b) = s.split_once("--").ok_or_else(|| format!("link {s:?}: expected deviceA:ifA--deviceB:ifB"))?;
        Ok(LinkKey::new(end(a)?, end(b)?))
    }
}

#[cfg(test)]
mod link_key_tests {
    use super::*;

    #[test]
    fn display_form_round_trips_in_either_order() {
        let k: LinkKey = "spine1:eth1--leaf1:eth1".parse().unwrap();
        assert_eq!(k.to_string().parse::<LinkKey>().unwrap(), k);
        assert_eq!("leaf1:eth1--spine1:eth1".parse::<LinkKey>().unwrap(), k);
        assert!("leaf1-spine1".parse::<LinkKey>().is_err());
    }
}
