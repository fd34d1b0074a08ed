//! Building the topology: resolving each reported neighbour to a node, then merging the two ends' reports of
//! each cable into one link.
//!
//! Resolution order, first unique match wins: chassis id (MAC notation normalised), then sys name against the
//! inventory's sysName or device name (case-insensitive; "leaf1.lab" matches "leaf1"; a CDP "(serial)" suffix is
//! ignored), then management address. A neighbour that matches nothing becomes a discovered node keyed by its
//! chassis id.
//!
//! Merging: a device reports (local interface → neighbour, neighbour's port). Two reports between the same pair
//! of devices are the same cable when each names the other's local interface, or when one of them does, or, as
//! a last resort, when each side has exactly one report left over. Interface names in the link come from the
//! reporting device's own ifName where known; the far end of a one-ended link is the neighbour's port id when
//! that names an interface (not a MAC and not a bare number), else its port description.

use super::{
    Adjacency, BuildWarning, Link, LinkEnd, LinkKey, Node, NodeOrigin, OperStatus, Protocol, SeenFrom, TopoDevice,
    Topology,
};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

impl Topology {
    /// Builds the topology from the inventory and every device's neighbour table.
    ///
    /// Never fails: adjacencies it cannot use are skipped and listed in [`Topology::warnings`]. The result does
    /// not depend on the order of either input.
    pub fn build(devices: &[TopoDevice], adjacencies: &[Adjacency]) -> Topology {
        let mut warnings = Vec::new();

        let mut devices: Vec<&TopoDevice> = devices.iter().collect();
        devices.sort_by(|x, y| x.name.cmp(&y.name).then(x.id.cmp(&y.id)));
        let mut nodes: Vec<Node> = Vec::with_capacity(devices.len());
        let mut node_of_id: HashMap<i64, usize> = HashMap::with_capacity(devices.len());
        let mut node_of_name: HashMap<&str, usize> = HashMap::with_capacity(devices.len());
        for d in &devices {
            if let Some(&existing) = node_of_name.get(d.name.as_str()) {
                warnings.push(BuildWarning::DuplicateDeviceName { name: d.name.clone(), device_id: d.id });
                node_of_id.insert(d.id, existing);
                continue;
            }
            node_of_name.insert(&d.name, nodes.len());
            node_of_id.insert(d.id, nodes.len());
            nodes.push(Node {
                name: d.name.clone(),
                sys_name: d.sys_name.clone(),
                role: d.role.clone(),
                site: d.site.clone(),
                mgmt_addr: d.mgmt_addr.clone(),
                chassis_ids: d.chassis_ids.iter().map(|c| normalize_chassis(c)).collect(),
                status: d.status,
                origin: NodeOrigin::Inventory { device_id: d.id },
            });
        }
        let resolver = Resolver::new(&nodes);

        // Process adjacencies in a canonical order so discovered nodes' attributes and tie-breaks are stable.
        let mut order: Vec<(usize, &Adjacency)> = Vec::with_capacity(adjacencies.len());
        for adj in adjacencies {
            match node_of_id.get(&adj.device_id) {
                Some(&n) => order.push((n, adj)),
                None => warnings.push(BuildWarning::UnknownReporter {
                    device_id: adj.device_id,
                    local_if_name: adj.local_if_name.clone(),
                }),
            }
        }
        order.sort_by(|(n1, a1), (n2, a2)| {
            (n1, &a1.local_if_name, a1.protocol, &a1.remote_chassis_id, &a1.remote_port_id).cmp(&(
                n2,
                &a2.local_if_name,
                a2.protocol,
                &a2.remote_chassis_id,
                &a2.remote_port_id,
            ))
        });

        // Discovered nodes are keyed by chassis id only: merging them by name or address would merge the many
        // hosts called "localhost" into one phantom node.
        let mut discovered: BTreeMap<String, usize> = BTreeMap::new();
        // Half-links deduplicated by (reporter, local interface, neighbour): LLDP and CDP about the same port
        // collapse into one.
        let mut halves: BTreeMap<(usize, String, usize), Half> = BTreeMap::new();
        for (from, adj) in order {
            let local_if = adj.local_if_name.trim().to_owned();
            let to = match resolver.resolve(adj) {
                Resolution::Device(n) => n,
                Resolution::Unmatched { ambiguous } => {
                    let Some(key) = discovered_key(adj) else {
                        warnings.push(BuildWarning::AnonymousNeighbour {
                            device: nodes[from].name.clone(),
                            local_if_name: local_if,
                        });
                        continue;
                    };
                    if !ambiguous.is_empty() {
                        let mut candidates: Vec<String> = ambiguous.iter().map(|&i| nodes[i].name.clone()).collect();
                        candidates.sort();
                        warnings.push(BuildWarning::AmbiguousNeighbour {
                            device: nodes[from].name.clone(),
                            local_if_name: local_if.clone(),
                            candidates,
                        });
                    }
                    let reporter = nodes[from].name.clone();
                    let n = *discovered.entry(key.clone()).or_insert_with(|| {
                        nodes.push(Node::bare_discovered(format!("discovered:{key}"), key));
                        nodes.len() - 1
                    });
                    let node = &mut nodes[n];
                    let chassis = normalize_chassis(&adj.remote_chassis_id);
                    if !chassis.is_empty() && !node.chassis_ids.contains(&chassis) {
                        node.chassis_ids.push(chassis);
                    }
                    if node.sys_name.is_none() {
                        node.sys_name = non_empty(adj.remote_sys_name.as_deref());
                    }
                    if node.mgmt_addr.is_none() {
                        node.mgmt_addr = non_empty(adj.remote_mgmt_addr.as_deref());
                    }
                    if let NodeOrigin::Discovered { seen_by, .. } = &mut node.origin
                        && !seen_by.contains(&reporter)
                    {
                        seen_by.push(reporter);
                        seen_by.sort();
                    }
                    n
                }
            };
            let half = Half {
                from,
                local_if: local_if.clone(),
                to,
                remote_if: remote_interface(&adj.remote_port_id, adj.remote_port_descr.as_deref()),
                status: OperStatus::from_reported(adj.local_if_oper_up),
                protocols: BTreeSet::from([adj.protocol]),
            };
            match halves.entry((from, local_if.to_lowercase(), to)) {
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert(half);
                }
                std::collections::btree_map::Entry::Occupied(mut o) => {
                    let h = o.get_mut();
                    h.status = OperStatus::merge(h.status, half.status);
                    // LLDP sorts first, so its port naming is the one kept.
                    h.protocols.extend(half.protocols);
                }
            }
        }

        // Group by unordered node pair, then match each side's reports.
        let mut pairs: BTreeMap<(usize, usize), (Vec<Half>, Vec<Half>)> = BTreeMap::new();
        for half in halves.into_values() {
            let (x, y) = (half.from.min(half.to), half.from.max(half.to));
            let group = pairs.entry((x, y)).or_default();
            if half.from == x { group.0.push(half) } else { group.1.push(half) }
        }
        let mut links = Vec::new();
        for ((x, y), (from_x, from_y)) in pairs {
            if x == y {
                match_self_loops(&nodes, from_x, &mut links);
            } else {
                match_pair(&nodes, from_x, from_y, &mut links);
            }
        }

        Topology::from_parts(nodes, links, warnings)
    }
}

/// One device's report of one cable.
#[derive(Debug, Clone)]
struct Half {
    from: usize,
    local_if: String,
    to: usize,
    remote_if: String,
    status: OperStatus,
    protocols: BTreeSet<Protocol>,
}

fn same_if(x: &str, y: &str) -> bool {
    x.eq_ignore_ascii_case(y)
}

/// Pairs reports from both ends of the cables between two distinct nodes.
fn match_pair(nodes: &[Node], from_x: Vec<Half>, from_y: Vec<Half>, links: &mut Vec<Link>) {
    let mut x_left: Vec<Option<Half>> = from_x.into_iter().map(Some).collect();
    let mut y_left: Vec<Option<Half>> = from_y.into_iter().map(Some).collect();
    let exact = |hx: &Half, hy: &Half| same_if(&hx.remote_if, &hy.local_if) && same_if(&hy.remote_if, &hx.local_if);
    let either = |hx: &Half, hy: &Half| same_if(&hx.remote_if, &hy.local_if) || same_if(&hy.remote_if, &hx.local_if);
    for matches in [&exact as &dyn Fn(&Half, &Half) -> bool, &either] {
        for slot in &mut x_left {
            let Some(hx) = slot.as_ref() else { continue };
            let found = y_left.iter().position(|hy| hy.as_ref().is_some_and(|hy| matches(hx, hy)));
            if let Some(yi) = found {
                let hx = slot.take().expect("checked above");
                let hy = y_left[yi].take().expect("checked above");
                links.push(two_ended(nodes, hx, hy));
            }
        }
    }
    // Both sides see each other on exactly one port each but disagree on the names: still one cable.
    let x_rest: Vec<Half> = x_left.into_iter().flatten().collect();
    let y_rest: Vec<Half> = y_left.into_iter().flatten().collect();
    if let ([hx], [hy]) = (x_rest.as_slice(), y_rest.as_slice()) {
        links.push(two_ended(nodes, hx.clone(), hy.clone()));
        return;
    }
    links.extend(x_rest.into_iter().chain(y_rest).map(|h| one_ended(nodes, h)));
}

/// A device that sees itself: a cable from one of its ports to another.
fn match_self_loops(nodes: &[Node], halves: Vec<Half>, links: &mut Vec<Link>) {
    let mut left: Vec<Option<Half>> = halves.into_iter().map(Some).collect();
    for i in 0..left.len() {
        let Some(hi) = &left[i] else { continue };
        let found = (i + 1..left.len()).find(|&j| {
            left[j]
                .as_ref()
                .is_some_and(|hj| same_if(&hi.remote_if, &hj.local_if) || same_if(&hj.remote_if, &hi.local_if))
        });
        if let Some(j) = found {
            let hi = left[i].take().expect("checked above");
            let hj = left[j].take().expect("checked above");
            links.push(two_ended(nodes, hi, hj));
        }
    }
    links.extend(left.into_iter().flatten().map(|h| one_ended(nodes, h)));
}

fn two_ended(nodes: &[Node], h1: Half, h2: Half) -> Link {
    let e1 = LinkEnd::new(&nodes[h1.from].name, h1.local_if);
    let e2 = LinkEnd::new(&nodes[h2.from].name, h2.local_if);
    let protocols = h1.protocols.union(&h2.protocols).copied().collect();
    make_link(e1, h1.status, e2, h2.status, SeenFrom::Both, protocols)
}

fn one_ended(nodes: &[Node], h: Half) -> Link {
    let reporter = LinkEnd::new(&nodes[h.from].name, h.local_if);
    let far = LinkEnd::new(&nodes[h.to].name, h.remote_if);
    let seen_from = if reporter <= far { SeenFrom::OnlyA } else { SeenFrom::OnlyB };
    make_link(reporter, h.status, far, OperStatus::Unknown, seen_from, h.protocols.into_iter().collect())
}

/// `seen_from` must already be expressed in sorted-key terms.
fn make_link(
    e1: LinkEnd,
    s1: OperStatus,
    e2: LinkEnd,
    s2: OperStatus,
    seen_from: SeenFrom,
    protocols: Vec<Protocol>,
) -> Link {
    let (a_status, b_status) = if e1 <= e2 { (s1, s2) } else { (s2, s1) };
    Link {
        key: LinkKey::new(e1, e2),
        a_status,
        b_status,
        status: OperStatus::link(a_status, b_status),
        seen_from,
        protocols,
    }
}

enum Resolution {
    Device(usize),
    /// No unique inventory match; `ambiguous` lists the candidates of the levels that matched several devices.
    Unmatched {
        ambiguous: Vec<usize>,
    },
}

/// Indexes of the inventory for neighbour resolution. Values are node indices, deduplicated.
struct Resolver {
    by_chassis: HashMap<String, Vec<usize>>,
    by_name: HashMap<String, Vec<usize>>,
    by_short_name: HashMap<String, Vec<usize>>,
    by_addr: HashMap<String, Vec<usize>>,
}

fn index_push(map: &mut HashMap<String, Vec<usize>>, key: String, node: usize) {
    if key.is_empty() {
        return;
    }
    let v = map.entry(key).or_default();
    if !v.contains(&node) {
        v.push(node);
    }
}

impl Resolver {
    fn new(inventory: &[Node]) -> Self {
        let mut r = Resolver {
            by_chassis: HashMap::new(),
            by_name: HashMap::new(),
            by_short_name: HashMap::new(),
            by_addr: HashMap::new(),
        };
        for (i, node) in inventory.iter().enumerate() {
            for c in &node.chassis_ids {
                index_push(&mut r.by_chassis, c.clone(), i);
            }
            for name in std::iter::once(node.name.as_str()).chain(node.sys_name.as_deref()) {
                let full = normalize_name(name);
                index_push(&mut r.by_short_name, short_name(&full).to_owned(), i);
                index_push(&mut r.by_name, full, i);
            }
            if let Some(addr) = &node.mgmt_addr {
                index_push(&mut r.by_addr, normalize_addr(addr), i);
            }
        }
        r
    }

    fn resolve(&self, adj: &Adjacency) -> Resolution {
        let mut ambiguous = Vec::new();
        let mut lookup = |map: &HashMap<String, Vec<usize>>, key: &str| -> Option<usize> {
            match map.get(key).map(Vec::as_slice) {
                Some([one]) => Some(*one),
                Some(many) => {
                    for &n in many {
                        if !ambiguous.contains(&n) {
                            ambiguous.push(n);
                        }
                    }
                    None
                }
                None => None,
            }
        };
        let chassis = normalize_chassis(&adj.remote_chassis_id);
        if !chassis.is_empty()
            && let Some(n) = lookup(&self.by_chassis, &chassis)
        {
            return Resolution::Device(n);
        }
        if let Some(name) = non_empty(adj.remote_sys_name.as_deref()) {
            let full = normalize_name(&name);
            if let Some(n) = lookup(&self.by_name, &full) {
                return Resolution::Device(n);
            }
            // Only fall back to the short name when the full name is unknown, not when it is ambiguous.
            if !self.by_name.contains_key(&full)
                && let Some(n) = lookup(&self.by_short_name, short_name(&full))
            {
                return Resolution::Device(n);
            }
        }
        if let Some(addr) = non_empty(adj.remote_mgmt_addr.as_deref())
            && let Some(n) = lookup(&self.by_addr, &normalize_addr(&addr))
        {
            return Resolution::Device(n);
        }
        Resolution::Unmatched { ambiguous }
    }
}

fn non_empty(s: Option<&str>) -> Option<String> {
    s.map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// The key of a neighbour that matched no inventory device: its chassis id, else its name, else its address.
fn discovered_key(adj: &Adjacency) -> Option<String> {
    let chassis = normalize_chassis(&adj.remote_chassis_id);
    if !chassis.is_empty() {
        return Some(chassis);
    }
    if let Some(name) = non_empty(adj.remote_sys_name.as_deref()) {
        return Some(normalize_name(&name));
    }
    non_empty(adj.remote_mgmt_addr.as_deref()).map(|a| normalize_addr(&a))
}

/// The 12 hex digits of a MAC address in any common notation (`aa:bb:..`, `AA-BB-..`, `aabb.ccdd.eeff`,
/// `aabbccddeeff`, `AA BB ..`), or None.
fn mac_digits(s: &str) -> Option<String> {
    let s = s.trim();
    let digits: String = s.chars().filter(|c| !matches!(c, ':' | '-' | '.' | ' ')).collect();
    let separators = s.len() - digits.len();
    let plausible = matches!(separators, 0 | 2 | 5);
    (digits.len() == 12 && plausible && digits.chars().all(|c| c.is_ascii_hexdigit()))
        .then(|| digits.to_ascii_lowercase())
}

/// Chassis ids compare in one notation: MACs as lowercase `aa:bb:cc:dd:ee:ff`, anything else trimmed and
/// lowercased.
pub(super) fn normalize_chassis(s: &str) -> String {
    match mac_digits(s) {
        Some(d) => {
            let pairs: Vec<&str> = (0..6).map(|i| &d[2 * i..2 * i + 2]).collect();
            pairs.join(":")
        }
        None => s.trim().to_lowercase(),
    }
}

/// Names compare case-insensitively, without a trailing dot or a CDP "(serial)" suffix.
fn normalize_name(s: &str) -> String {
    let mut s = s.trim();
    if let Some(open) = s.find('(')
        && s.ends_with(')')
        && open > 0
    {
        s = s[..open].trim_end();
    }
    s.trim_end_matches('.').to_lowercase()
}

/// The host part of a (normalised) name: "leaf1.lab.example" → "leaf1". IP literals stay whole.
fn short_name(full: &str) -> &str {
    if full.parse::<IpAddr>().is_ok() {
        return full;
    }
    full.split('.').next().unwrap_or(full)
}

fn normalize_addr(s: &str) -> String {
    let s = s.trim();
    let bare = s.split_once('/').map_or(s, |(addr, _)| addr);
    match bare.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => normalize_name(s),
    }
}

/// The neighbour's interface name: its port id when that names an interface, else its port description.
fn remote_interface(port_id: &str, port_descr: Option<&str>) -> String {
    let id = port_id.trim();
    let names_interface = !id.is_empty() && mac_digits(id).is_none() && !id.chars().all(|c| c.is_ascii_digit());
    if names_interface {
        return id.to_owned();
    }
    match non_empty(port_descr) {
        Some(descr) => descr,
        None => id.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::*;

    #[test]
    fn chassis_ids_in_any_mac_notation_compare_equal() {
        let cases = [
            ("D6:AC:67:9D:9C:82", "d6:ac:67:9d:9c:82"),
            ("d6-ac-67-9d-9c-82", "d6:ac:67:9d:9c:82"),
            ("d6ac.679d.9c82", "d6:ac:67:9d:9c:82"),
            ("D6AC679D9C82", "d6:ac:67:9d:9c:82"),
            ("D6 AC 67 9D 9C 82", "d6:ac:67:9d:9c:82"),
            (" Switch-7 ", "switch-7"),
            ("10.0.0.1", "10.0.0.1"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_chassis(input), want, "{input:?}");
        }
    }

    #[test]
    fn remote_interface_prefers_a_port_id_that_names_an_interface() {
        let cases = [
            ("eth1", Some("uplink"), "eth1"),
            ("Ethernet1/1", None, "Ethernet1/1"),
            ("d6:ac:67:9d:9c:82", Some("eth2"), "eth2"),
            ("5", Some("GigabitEthernet0/5"), "GigabitEthernet0/5"),
            ("5", None, "5"),
            ("d6:ac:67:9d:9c:82", Some("  "), "d6:ac:67:9d:9c:82"),
        ];
        for (id, descr, want) in cases {
            assert_eq!(remote_interface(id, descr), want, "{id:?} / {descr:?}");
        }
    }

    /// One neighbour report against a small inventory; `want` is the node it resolves to.
    fn check_resolve(chassis: &str, sys_name: Option<&str>, mgmt: Option<&str>, want: &str) {
        let devices = vec![
            device(1, "spine1", "spine", &["d6:ac:67:00:00:01"], Some("spine1.lab"), Some("10.255.0.1")),
            device(2, "leaf1", "leaf", &[], Some("leaf1"), Some("10.255.0.11")),
            device(3, "border1.dc1", "border", &[], None, None),
            device(4, "border1.dc2", "border", &[], None, None),
        ];
        let mut adj = lldp(2, "eth9", chassis, "eth1");
        adj.remote_sys_name = sys_name.map(str::to_owned);
        adj.remote_mgmt_addr = mgmt.map(str::to_owned);
        let topo = Topology::build(&devices, &[adj]);
        let link = &topo.links()[0];
        let (_, far) = link.ends_from("leaf1").unwrap();
        assert_eq!(far.device, want, "chassis {chassis:?} sys {sys_name:?} mgmt {mgmt:?}");
    }

    #[test]
    fn neighbours_resolve_by_chassis_then_name_then_address() {
        check_resolve("D6-AC-67-00-00-01", Some("whatever"), None, "spine1");
        check_resolve("02:00:00:00:00:01", Some("SPINE1.lab"), None, "spine1");
        check_resolve("02:00:00:00:00:01", Some("spine1"), None, "spine1");
        check_resolve("02:00:00:00:00:01", Some("spine1.lab.example.com."), None, "spine1");
        check_resolve("02:00:00:00:00:01", Some("spine1(FOX1234ABC)"), None, "spine1");
        check_resolve("02:00:00:00:00:01", None, Some("10.255.0.1"), "spine1");
        check_resolve("02:00:00:00:00:01", Some("unknown"), Some("10.255.0.1/32"), "spine1");
        check_resolve("02:00:00:00:00:01", Some("border1.dc2"), None, "border1.dc2");
        // "border1" is ambiguous between two sites: not resolved by name.
        check_resolve("02:00:00:00:00:01", Some("border1"), None, "discovered:02:00:00:00:00:01");
        check_resolve("02:00:00:00:00:01", Some("leaf9"), Some("10.9.9.9"), "discovered:02:00:00:00:00:01");
        check_resolve("", Some("Leaf9.lab"), None, "discovered:leaf9.lab");
    }

    #[test]
    fn the_lab_wiring_from_both_ends() {
        let (devices, adjacencies) = lab();
        check(
            &devices,
            &adjacencies,
            "
            node leaf1 inventory up
            node leaf2 inventory up
            node leaf3 inventory up
            node spine1 inventory up
            node spine2 inventory up
            link leaf1:eth1--spine1:eth1 up both lldp
            link leaf1:eth2--spine2:eth1 up both lldp
            link leaf2:eth1--spine1:eth2 up both lldp
            link leaf2:eth2--spine2:eth2 up both lldp
            link leaf3:eth1--spine1:eth3 up both lldp
            link leaf3:eth2--spine2:eth3 up both lldp
            ",
        );
        assert!(Topology::build(&devices, &adjacencies).warnings().is_empty());
    }

    #[test]
    fn input_order_does_not_matter() {
        let (mut devices, mut adjacencies) = lab();
        let want = render(&Topology::build(&devices, &adjacencies));
        devices.reverse();
        adjacencies.reverse();
        assert_eq!(render(&Topology::build(&devices, &adjacencies)), want);
    }

    #[test]
    fn a_link_seen_from_one_end_is_kept_and_flagged() {
        let (devices, mut adjacencies) = lab();
        // leaf3 stopped advertising on eth2 (LLDP disabled there); spine2 still reports it.
        adjacencies.retain(|a| !(a.device_id == LEAF3 && a.local_if_name == "eth2"));
        check(
            &devices,
            &adjacencies,
            "
            node leaf1 inventory up
            node leaf2 inventory up
            node leaf3 inventory up
            node spine1 inventory up
            node spine2 inventory up
            link leaf1:eth1--spine1:eth1 up both lldp
            link leaf1:eth2--spine2:eth1 up both lldp
            link leaf2:eth1--spine1:eth2 up both lldp
            link leaf2:eth2--spine2:eth2 up both lldp
            link leaf3:eth1--spine1:eth3 up both lldp
            link leaf3:eth2--spine2:eth3 up only_b lldp
            ",
        );
    }

    #[test]
    fn an_unknown_neighbour_becomes_a_discovered_node() {
        let (devices, mut adjacencies) = lab();
        adjacencies.push(unknown_neighbour());
        adjacencies.push(unknown_neighbour_seen_by_leaf2());
        let topo = check(
            &devices,
            &adjacencies,
            "
            node discovered:02:00:00:00:00:99 discovered unknown
            node leaf1 inventory up
            node leaf2 inventory up
            node leaf3 inventory up
            node spine1 inventory up
            node spine2 inventory up
            link discovered:02:00:00:00:00:99:ens1f0--leaf1:eth3 up only_b lldp
            link discovered:02:00:00:00:00:99:ens1f1--leaf2:eth3 down only_b lldp
            link leaf1:eth1--spine1:eth1 up both lldp
            link leaf1:eth2--spine2:eth1 up both lldp
            link leaf2:eth1--spine1:eth2 up both lldp
            link leaf2:eth2--spine2:eth2 up both lldp
            link leaf3:eth1--spine1:eth3 up both lldp
            link leaf3:eth2--spine2:eth3 up both lldp
            ",
        );
        let node = topo.node("discovered:02:00:00:00:00:99").unwrap();
        assert_eq!(node.sys_name.as_deref(), Some("server1.lab"));
        assert_eq!(node.mgmt_addr.as_deref(), Some("10.255.0.99"));
        assert_eq!(
            node.origin,
            NodeOrigin::Discovered {
                chassis_id: "02:00:00:00:00:99".into(),
                seen_by: vec!["leaf1".into(), "leaf2".into()]
            }
        );
    }

    #[test]
    fn oper_status_is_overlaid_per_end() {
        let (devices, mut adjacencies) = lab();
        // leaf2 eth1 went down; spine1 has not noticed yet (its IF-MIB cache is older).
        set_oper(&mut adjacencies, LEAF2, "eth1", Some(false));
        // leaf3 eth2 status unknown, spine2 side up.
        set_oper(&mut adjacencies, LEAF3, "eth2", None);
        // leaf1 eth2 status unknown on both ends.
        set_oper(&mut adjacencies, LEAF1, "eth2", None);
        set_oper(&mut adjacencies, SPINE2, "eth1", None);
        let topo = check(
            &devices,
            &adjacencies,
            "
            node leaf1 inventory up
            node leaf2 inventory up
            node leaf3 inventory up
            node spine1 inventory up
            node spine2 inventory up
            link leaf1:eth1--spine1:eth1 up both lldp
            link leaf1:eth2--spine2:eth1 unknown both lldp
            link leaf2:eth1--spine1:eth2 down both lldp
            link leaf2:eth2--spine2:eth2 up both lldp
            link leaf3:eth1--spine1:eth3 up both lldp
            link leaf3:eth2--spine2:eth3 up both lldp
            ",
        );
        let link = topo.link(&key("leaf2", "eth1", "spine1", "eth2")).unwrap();
        assert_eq!((link.a_status, link.b_status), (OperStatus::Down, OperStatus::Up));
    }

    #[test]
    fn parallel_links_are_separate_edges_and_lldp_cdp_reports_merge() {
        let devices = vec![
            device(1, "core1", "core", &["00:00:00:00:00:01"], None, None),
            device(2, "core2", "core", &["00:00:00:00:00:02"], None, None),
        ];
        let mut adjacencies = Vec::new();
        cable(&mut adjacencies, (1, "Ethernet1", "00:00:00:00:00:01"), (2, "Ethernet1", "00:00:00:00:00:02"));
        cable(&mut adjacencies, (1, "Ethernet2", "00:00:00:00:00:01"), (2, "Ethernet2", "00:00:00:00:00:02"));
        // CDP on the first cable too, with the long-form port name: merges into the LLDP link.
        let mut cdp = lldp(1, "Ethernet1", "core2(SSI1234)", "Ethernet1");
        cdp.protocol = Protocol::Cdp;
        cdp.remote_sys_name = Some("core2(SSI1234)".into());
        adjacencies.push(cdp);
        // core2 reports the second cable's far end by MAC port id and descr with other case.
        let second = adjacencies.iter_mut().find(|a| a.device_id == 2 && a.local_if_name == "Ethernet2").unwrap();
        second.remote_port_id = "00:00:00:00:01:02".into();
        second.remote_port_descr = Some("ethernet2".into());
        check(
            &devices,
            &adjacencies,
            "
            node core1 inventory up
            node core2 inventory up
            link core1:Ethernet1--core2:Ethernet1 up both lldp,cdp
            link core1:Ethernet2--core2:Ethernet2 up both lldp
            ",
        );
    }

    #[test]
    fn reports_that_disagree_on_port_names_still_pair_when_unambiguous() {
        let devices = vec![
            device(1, "a", "core", &["00:00:00:00:00:0a"], None, None),
            device(2, "b", "core", &["00:00:00:00:00:0b"], None, None),
        ];
        let mut adjacencies = Vec::new();
        cable(&mut adjacencies, (1, "Gi0/1", "00:00:00:00:00:0a"), (2, "ge-0/0/1", "00:00:00:00:00:0b"));
        for adj in &mut adjacencies {
            adj.remote_port_id = "17".into(); // a local port number, no description
        }
        check(
            &devices,
            &adjacencies,
            "
            node a inventory up
            node b inventory up
            link a:Gi0/1--b:ge-0/0/1 up both lldp
            ",
        );
    }

    #[test]
    fn unusable_adjacencies_are_reported() {
        let devices = vec![device(1, "a", "core", &[], None, None), device(2, "a", "core", &[], None, None)];
        let mut anonymous = lldp(1, "e1", "", "");
        anonymous.remote_sys_name = Some(" ".into());
        let adjacencies = vec![lldp(7, "e1", "00:00:00:00:00:01", "e1"), anonymous];
        let topo = Topology::build(&devices, &adjacencies);
        assert_eq!(
            topo.warnings(),
            [
                BuildWarning::DuplicateDeviceName { name: "a".into(), device_id: 2 },
                BuildWarning::UnknownReporter { device_id: 7, local_if_name: "e1".into() },
                BuildWarning::AnonymousNeighbour { device: "a".into(), local_if_name: "e1".into() },
            ]
        );
        assert!(topo.links().is_empty());
    }

    #[test]
    fn a_cable_between_two_ports_of_one_device_is_a_self_loop() {
        let devices = vec![device(1, "sw", "leaf", &["00:00:00:00:00:01"], None, None)];
        let mut adjacencies = Vec::new();
        cable(&mut adjacencies, (1, "e1", "00:00:00:00:00:01"), (1, "e2", "00:00:00:00:00:01"));
        check(
            &devices,
            &adjacencies,
            "
            node sw inventory up
            link sw:e1--sw:e2 up both lldp
            ",
        );
    }
}
