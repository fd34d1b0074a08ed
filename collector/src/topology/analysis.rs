//! Path questions over the topology: shortest path, what a failure cuts off, single points of failure, and
//! which devices sit behind which (for alert suppression).
//!
//! All of them use only links whose status is up (shortest path can be asked to use every link). What counts
//! is reaching a *role* ("spine", "border"): a device is cut off when it has no path left to any device of the
//! role. A device of the role itself is cut off only when it loses every other surviving device of its role.
//!
//! Discovered nodes are endpoints, never transit: most are servers running lldpd, which do not forward, and a
//! dual-homed one would otherwise invent a path between its two switches. A path can start or end at one;
//! failure impact and single points of failure only look at inventory devices and the links between them.

use super::{LinkEnd, LinkKey, OperStatus, Topology};
use petgraph::algo::articulation_points::articulation_points;
use petgraph::algo::bridges;
use petgraph::graph::{NodeIndex, UnGraph};
use petgraph::unionfind::UnionFind;
use petgraph::visit::EdgeRef;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Which links a path may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkScope {
    /// Only links whose status is up.
    #[default]
    Up,
    /// Every link, whatever its status.
    All,
}

/// One link crossed by a path, in the direction of travel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathHop {
    pub from: LinkEnd,
    pub to: LinkEnd,
    pub status: OperStatus,
}

/// A device or a link that fails (or has failed).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Failure {
    Device(String),
    Link(LinkKey),
}

/// What a failure cuts off from a role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Impact {
    pub failure: Failure,
    pub role: String,
    /// Inventory devices that had a path to the role and have none once the failure is taken out, sorted.
    pub cut_off: Vec<String>,
    /// Inventory devices that had no path to the role even before the failure, sorted.
    pub already_cut_off: Vec<String>,
}

/// Single points of failure among the links that are up.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Spof {
    /// Nodes whose failure splits the network, sorted.
    pub articulation_points: Vec<String>,
    /// Links whose failure splits the network (a link with an up parallel twin never is), sorted.
    pub bridges: Vec<LinkKey>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TopologyError {
    #[error("no device {0:?} in the topology")]
    UnknownDevice(String),
    #[error("no link {0} in the topology")]
    UnknownLink(LinkKey),
}

impl Topology {
    /// The path with the fewest hops from `from` to `to` over links that are up; `None` if either name is
    /// unknown or there is no such path. A path from a device to itself is empty.
    pub fn shortest_path(&self, from: &str, to: &str) -> Option<Vec<PathHop>> {
        self.shortest_path_over(from, to, LinkScope::Up)
    }

    /// [`Topology::shortest_path`] over the links in `scope`. Ties are broken towards links with smaller keys
    /// (a breadth-first search that takes each node's links in key order), so the same topology always gives
    /// the same path and the lab's leaf1 → leaf3 goes through spine1. Between two nodes joined by parallel
    /// links, the hop uses one that is up, then the smallest key.
    pub fn shortest_path_over(&self, from: &str, to: &str, scope: LinkScope) -> Option<Vec<PathHop>> {
        let start = self.node_index(from)?;
        let goal = self.node_index(to)?;
        let allowed = |l: usize| scope == LinkScope::All || self.links[l].is_up();
        let mut parent: Vec<Option<usize>> = vec![None; self.nodes.len()];
        let mut seen = vec![false; self.nodes.len()];
        seen[start] = true;
        let mut queue = VecDeque::from([start]);
        while let Some(v) = queue.pop_front() {
            if v == goal {
                break;
            }
            if v != start && self.nodes[v].is_discovered() {
                continue;
            }
            let mut links: Vec<usize> = self.graph.edges(NodeIndex::new(v)).map(|e| *e.weight()).collect();
            links.sort_unstable();
            for l in links.into_iter().filter(|&l| allowed(l)) {
                let (a, b) = self.link_nodes(l);
                let u = if a == v { b } else { a };
                if !seen[u] {
                    seen[u] = true;
                    parent[u] = Some(v);
                    queue.push_back(u);
                }
            }
        }
        if !seen[goal] {
            return None;
        }
        let mut path = vec![goal];
        while let Some(p) = parent[*path.last().expect("path starts non-empty")] {
            path.push(p);
        }
        path.reverse();
        let hops = path
            .windows(2)
            .map(|w| {
                let link = self
                    .graph
                    .edges_connecting(NodeIndex::new(w[0]), NodeIndex::new(w[1]))
                    .map(|e| *e.weight())
                    .filter(|&l| allowed(l))
                    .min_by_key(|&l| (!self.links[l].is_up(), l))
                    .expect("the path only crosses allowed links");
                let link = &self.links[link];
                let (near, far) = link.ends_from(&self.nodes[w[0]].name).expect("link touches its node");
                PathHop { from: near.clone(), to: far.clone(), status: link.status }
            })
            .collect();
        Some(hops)
    }

    /// Which inventory devices lose every path to every device of `role` if `failure` happens.
    ///
    /// Everything but the failed element is taken as it is now (links that are up). The failed element counts
    /// as working before the failure: a failed link as up, a failed device's links as up unless the device
    /// itself reports its end down. So asked about a device that is already down (its neighbours report their
    /// ports to it down), the answer is what its failure cut off, the same as when asked before it failed.
    pub fn failure_impact(&self, failure: &Failure, role: &str) -> Result<Impact, TopologyError> {
        let (failed_node, failed_link) = match failure {
            Failure::Device(name) => {
                (Some(self.node_index(name).ok_or_else(|| TopologyError::UnknownDevice(name.clone()))?), None)
            }
            Failure::Link(key) => {
                (None, Some(self.link_index(key).ok_or_else(|| TopologyError::UnknownLink(key.clone()))?))
            }
        };
        let touches_failed_node = |l: usize| {
            failed_node.is_some_and(|n| {
                let (a, b) = self.link_nodes(l);
                a == n || b == n
            })
        };
        // The failed device's links count as they were before it failed: up, unless the device itself
        // reports its end down (then the port was down independently of the failure).
        let worked_before = |l: usize| {
            let link = &self.links[l];
            if !self.is_transit(l) {
                return false;
            }
            link.is_up()
                || Some(l) == failed_link
                || (touches_failed_node(l)
                    && failed_node.is_some_and(|n| {
                        let name = &self.nodes[n].name;
                        let down = |end: &LinkEnd, status| end.device == *name && status == OperStatus::Down;
                        !down(&link.key.a, link.a_status) && !down(&link.key.b, link.b_status)
                    }))
        };
        let before = self.components(worked_before);
        let after = self.components(|l| {
            self.is_transit(l) && self.links[l].is_up() && Some(l) != failed_link && !touches_failed_node(l)
        });

        let n = self.nodes.len();
        let is_role: Vec<bool> = self.nodes.iter().map(|node| node.has_role(role)).collect();
        let mut roles_before = vec![0usize; n];
        let mut roles_after = vec![0usize; n];
        let mut survivors = 0usize;
        let mut total = 0usize;
        for v in (0..n).filter(|&v| is_role[v]) {
            total += 1;
            roles_before[before[v]] += 1;
            if Some(v) != failed_node {
                roles_after[after[v]] += 1;
                survivors += 1;
            }
        }

        let mut cut_off = Vec::new();
        let mut already_cut_off = Vec::new();
        for v in 0..n {
            if Some(v) == failed_node || self.nodes[v].is_discovered() {
                continue;
            }
            // A device of the role needs another one of the role; it does not count itself.
            let me = usize::from(is_role[v]);
            let reached_before = roles_before[before[v]] > me;
            let reaches_after = roles_after[after[v]] > me;
            let others_survive = survivors > me;
            let others_existed = total > me;
            if reached_before && !reaches_after && (others_survive || !is_role[v]) {
                cut_off.push(self.nodes[v].name.clone());
            } else if !reached_before && others_existed {
                already_cut_off.push(self.nodes[v].name.clone());
            }
        }
        Ok(Impact { failure: failure.clone(), role: role.to_owned(), cut_off, already_cut_off })
    }

    /// The devices that lose every path to `role` because `down_device` is down: their own alerts are a
    /// consequence and can be suppressed. Empty when the device is unknown.
    pub fn reachable_only_through(&self, down_device: &str, role: &str) -> Vec<String> {
        self.failure_impact(&Failure::Device(down_device.to_owned()), role)
            .map(|impact| impact.cut_off)
            .unwrap_or_default()
    }

    /// Devices cut off from `role` because devices in `down` are down, each with the down device it sits
    /// behind (the first one in `down` order). Links of the down devices count as up for this, since
    /// a device that stopped answering takes its own links down in the overlay, which would otherwise
    /// make everything behind it look cut off already. Other down links stay down.
    pub fn cut_off_by(&self, down: &[&str], role: &str) -> BTreeMap<String, String> {
        let mut restored = self.clone();
        for l in &mut restored.links {
            if down.iter().any(|d| l.key.touches(d)) {
                l.a_status = OperStatus::Up;
                l.b_status = OperStatus::Up;
                l.status = OperStatus::Up;
            }
        }
        let mut out = BTreeMap::new();
        for d in down {
            for c in restored.reachable_only_through(d, role) {
                if c != *d {
                    out.entry(c).or_insert_with(|| (*d).to_owned());
                }
            }
        }
        out
    }

    /// For every node with a path to `role` over up links, its neighbours one hop closer to the role (its
    /// upstreams). Devices of the role and nodes without a path are absent. Sorted.
    pub fn parents_toward(&self, role: &str) -> BTreeMap<String, Vec<String>> {
        let mut dist: Vec<Option<usize>> = vec![None; self.nodes.len()];
        let mut queue = VecDeque::new();
        for (v, node) in self.nodes.iter().enumerate() {
            if node.has_role(role) {
                dist[v] = Some(0);
                queue.push_back(v);
            }
        }
        while let Some(v) = queue.pop_front() {
            let d = dist[v].expect("queued nodes have a distance");
            if self.nodes[v].is_discovered() {
                continue;
            }
            for u in self.up_neighbours(v) {
                if dist[u].is_none() {
                    dist[u] = Some(d + 1);
                    queue.push_back(u);
                }
            }
        }
        let mut parents = BTreeMap::new();
        for (v, d) in dist.iter().enumerate() {
            let Some(d) = *d else { continue };
            if d == 0 {
                continue;
            }
            let ups: BTreeSet<&str> = self
                .up_neighbours(v)
                .filter(|&u| dist[u] == Some(d - 1))
                .map(|u| self.nodes[u].name.as_str())
                .collect();
            parents.insert(self.nodes[v].name.clone(), ups.into_iter().map(str::to_owned).collect());
        }
        parents
    }

    /// Articulation points and bridges of the graph of inventory devices and the up links between them
    /// (petgraph's Tarjan implementations, run on the simple graph; a bridge must also be the only up link
    /// between its two devices).
    pub fn single_points_of_failure(&self) -> Spof {
        let mut between: BTreeMap<(usize, usize), Vec<usize>> = BTreeMap::new();
        for l in (0..self.links.len()).filter(|&l| self.links[l].is_up() && self.is_transit(l)) {
            let (a, b) = self.link_nodes(l);
            if a != b {
                between.entry((a.min(b), a.max(b))).or_default().push(l);
            }
        }
        let mut simple: UnGraph<(), ()> = UnGraph::with_capacity(self.nodes.len(), between.len());
        for _ in &self.nodes {
            simple.add_node(());
        }
        let pairs: Vec<&Vec<usize>> = between
            .iter()
            .map(|(&(a, b), links)| {
                simple.add_edge(NodeIndex::new(a), NodeIndex::new(b), ());
                links
            })
            .collect();

        let mut points: Vec<usize> = articulation_points(&simple).into_iter().map(NodeIndex::index).collect();
        points.sort_unstable();
        let mut bridge_keys: Vec<LinkKey> = bridges(&simple)
            .filter_map(|e| match pairs[e.id().index()].as_slice() {
                [only] => Some(self.links[*only].key.clone()),
                _ => None,
            })
            .collect();
        bridge_keys.sort();
        Spof {
            articulation_points: points.into_iter().map(|v| self.nodes[v].name.clone()).collect(),
            bridges: bridge_keys,
        }
    }

    /// Whether a link can carry traffic through: both ends are inventory devices.
    fn is_transit(&self, l: usize) -> bool {
        let (a, b) = self.link_nodes(l);
        !self.nodes[a].is_discovered() && !self.nodes[b].is_discovered()
    }

    /// Connected-component label of every node over the links `usable` accepts.
    fn components(&self, usable: impl Fn(usize) -> bool) -> Vec<usize> {
        let mut uf = UnionFind::new(self.nodes.len());
        for l in (0..self.links.len()).filter(|&l| usable(l)) {
            let (a, b) = self.link_nodes(l);
            uf.union(a, b);
        }
        uf.into_labeling()
    }

    fn up_neighbours(&self, v: usize) -> impl Iterator<Item = usize> + '_ {
        self.graph.edges(NodeIndex::new(v)).filter(|e| self.links[*e.weight()].is_up()).map(move |e| {
            let (a, b) = (e.source().index(), e.target().index());
            if a == v { b } else { a }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::{DeviceStatus, Link, Node, NodeOrigin, Protocol, SeenFrom};
    use super::*;

    fn lab_topology(edit: impl FnOnce(&mut Vec<crate::topology::Adjacency>)) -> Topology {
        let (devices, mut adjacencies) = lab();
        edit(&mut adjacencies);
        Topology::build(&devices, &adjacencies)
    }

    fn hops(path: &[PathHop]) -> Vec<String> {
        path.iter().map(|h| format!("{} -> {} {}", h.from, h.to, h.status.as_str())).collect()
    }

    #[test]
    fn shortest_path_leaf_to_leaf_crosses_a_spine() {
        let topo = lab_topology(|_| {});
        let path = topo.shortest_path("leaf1", "leaf3").unwrap();
        assert_eq!(hops(&path), ["leaf1:eth1 -> spine1:eth1 up", "spine1:eth3 -> leaf3:eth1 up"]);
        assert_eq!(topo.shortest_path("leaf1", "leaf1"), Some(vec![]));
        assert_eq!(topo.shortest_path("leaf1", "nope"), None);
    }

    #[test]
    fn shortest_path_avoids_down_links_unless_asked() {
        let topo = lab_topology(|adj| {
            set_oper(adj, LEAF1, "eth1", Some(false));
        });
        let path = topo.shortest_path("leaf1", "leaf3").unwrap();
        assert_eq!(hops(&path), ["leaf1:eth2 -> spine2:eth1 up", "spine2:eth3 -> leaf3:eth2 up"]);

        let topo = lab_topology(|adj| {
            set_oper(adj, LEAF1, "eth1", Some(false));
            set_oper(adj, LEAF1, "eth2", Some(false));
        });
        assert_eq!(topo.shortest_path("leaf1", "leaf3"), None);
        let path = topo.shortest_path_over("leaf1", "leaf3", LinkScope::All).unwrap();
        assert_eq!(hops(&path), ["leaf1:eth1 -> spine1:eth1 down", "spine1:eth3 -> leaf3:eth1 up"]);
    }

    /// `failure` against `role` on `topo`: the cut-off devices, then the already-cut-off ones.
    fn check_impact(topo: &Topology, failure: Failure, role: &str, cut_off: &[&str], already: &[&str]) {
        let impact = topo.failure_impact(&failure, role).unwrap();
        let got = (
            impact.cut_off.iter().map(String::as_str).collect::<Vec<_>>(),
            impact.already_cut_off.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        assert_eq!(got, (cut_off.to_vec(), already.to_vec()), "{failure:?}");
    }

    fn dev(name: &str) -> Failure {
        Failure::Device(name.into())
    }

    #[test]
    fn cut_off_by_a_down_spine_counts_its_own_links_as_they_were() {
        // leaf2 lost spine2 earlier; now spine1 is down and every leaf reports its spine1 port down.
        let topo = lab_topology(|adj| {
            set_oper(adj, LEAF2, "eth2", Some(false));
            for leaf in [LEAF1, LEAF2, LEAF3] {
                set_oper(adj, leaf, "eth1", Some(false));
            }
        });
        let got = topo.cut_off_by(&["spine1"], "spine");
        assert_eq!(got.into_iter().collect::<Vec<_>>(), vec![("leaf2".to_string(), "spine1".to_string())]);
        // Without the earlier failure nothing sits only behind spine1.
        let topo = lab_topology(|adj| {
            for leaf in [LEAF1, LEAF2, LEAF3] {
                set_oper(adj, leaf, "eth1", Some(false));
            }
        });
        assert!(topo.cut_off_by(&["spine1"], "spine").is_empty());
        assert!(topo.cut_off_by(&["nope"], "spine").is_empty());
    }

    #[test]
    fn failure_impact_in_the_lab() {
        let topo = lab_topology(|_| {});
        // Redundancy: no single spine or link cuts anything off.
        check_impact(&topo, dev("spine1"), "spine", &[], &[]);
        check_impact(&topo, dev("spine2"), "spine", &[], &[]);
        check_impact(&topo, dev("leaf2"), "spine", &[], &[]);
        check_impact(&topo, Failure::Link(key("leaf2", "eth1", "spine1", "eth2")), "spine", &[], &[]);
        // Leaves are the role: a leaf needs another leaf, through a spine; spines need a leaf.
        check_impact(&topo, dev("spine1"), "leaf", &[], &[]);

        // leaf2's link to spine2 is down: now its link to spine1 and spine1 itself are single points.
        let topo = lab_topology(|adj| set_oper(adj, LEAF2, "eth2", Some(false)));
        check_impact(&topo, Failure::Link(key("leaf2", "eth1", "spine1", "eth2")), "spine", &["leaf2"], &[]);
        check_impact(&topo, dev("spine1"), "spine", &["leaf2"], &[]);
        check_impact(&topo, dev("spine2"), "spine", &[], &[]);

        // Both of leaf2's links down at both ends: it was cut off already, failing spine1 changes nothing.
        let topo = lab_topology(|adj| {
            set_oper(adj, LEAF2, "eth1", Some(false));
            set_oper(adj, SPINE1, "eth2", Some(false));
            set_oper(adj, LEAF2, "eth2", Some(false));
            set_oper(adj, SPINE2, "eth2", Some(false));
        });
        check_impact(&topo, dev("spine1"), "spine", &[], &["leaf2"]);
        check_impact(&topo, dev("leaf1"), "spine", &[], &["leaf2"]);
        // Asked about one of those links, the link counts as working before: with the other one down, its
        // failure is what cuts leaf2 off.
        check_impact(&topo, Failure::Link(key("leaf2", "eth1", "spine1", "eth2")), "spine", &["leaf2"], &[]);

        assert_eq!(topo.failure_impact(&dev("spine9"), "spine"), Err(TopologyError::UnknownDevice("spine9".into())));
        let missing = key("leaf1", "eth9", "spine1", "eth9");
        assert_eq!(
            topo.failure_impact(&Failure::Link(missing.clone()), "spine"),
            Err(TopologyError::UnknownLink(missing))
        );
    }

    #[test]
    fn a_device_that_is_already_down_suppresses_what_is_behind_it() {
        // spine1 died: its neighbour table is gone and every leaf reports its port to spine1 down. The cable
        // between leaf2 and spine2 is down too (both ends say so).
        let topo = lab_topology(|adj| {
            for (device, port) in [(LEAF1, "eth1"), (LEAF2, "eth1"), (LEAF3, "eth1"), (LEAF2, "eth2"), (SPINE2, "eth2")]
            {
                set_oper(adj, device, port, Some(false));
            }
            adj.retain(|a| a.device_id != SPINE1);
        });
        assert_eq!(topo.reachable_only_through("spine1", "spine"), ["leaf2"]);
        // If spine2 went down too, leaf1 and leaf3 would follow; leaf2 is cut off already.
        assert_eq!(topo.reachable_only_through("spine2", "spine"), ["leaf1", "leaf3"]);
        assert_eq!(topo.reachable_only_through("unknown", "spine"), Vec::<String>::new());
    }

    /// A campus tree: border ─ core, core ═ dist2 (two parallel links), core ─ dist1, dist1 ─ acc1, acc2,
    /// dist2 ─ acc3.
    fn tree() -> Topology {
        let names = ["border", "core", "dist1", "dist2", "acc1", "acc2", "acc3"];
        let roles = ["border", "core", "dist", "dist", "access", "access", "access"];
        let devices: Vec<_> = names
            .iter()
            .zip(roles)
            .enumerate()
            .map(|(i, (n, r))| device(i as i64 + 1, n, r, &[&chassis(i as i64 + 1)], None, None))
            .collect();
        let id = |n: &str| names.iter().position(|x| *x == n).unwrap() as i64 + 1;
        let mut adjacencies = Vec::new();
        for (x, xi, y, yi) in [
            ("border", "e1", "core", "e1"),
            ("core", "e2", "dist1", "e1"),
            ("core", "e3", "dist2", "e1"),
            ("core", "e4", "dist2", "e2"),
            ("dist1", "e2", "acc1", "e1"),
            ("dist1", "e3", "acc2", "e1"),
            ("dist2", "e3", "acc3", "e1"),
        ] {
            cable(&mut adjacencies, (id(x), xi, &chassis(id(x))), (id(y), yi, &chassis(id(y))));
        }
        Topology::build(&devices, &adjacencies)
    }

    #[test]
    fn a_tree_has_articulation_points_and_bridges() {
        let topo = tree();
        assert_eq!(topo.links_of("dist2").len(), 3, "parallel links are separate edges");
        let spof = topo.single_points_of_failure();
        assert_eq!(spof.articulation_points, ["core", "dist1", "dist2"]);
        let bridges: Vec<String> = spof.bridges.iter().map(ToString::to_string).collect();
        assert_eq!(
            bridges,
            ["acc1:e1--dist1:e2", "acc2:e1--dist1:e3", "acc3:e1--dist2:e3", "border:e1--core:e1", "core:e2--dist1:e1",]
        );
        check_impact(&topo, dev("dist1"), "border", &["acc1", "acc2"], &[]);
        check_impact(&topo, dev("core"), "border", &["acc1", "acc2", "acc3", "dist1", "dist2"], &[]);
        check_impact(&topo, Failure::Link(key("core", "e3", "dist2", "e1")), "border", &[], &[]);
        assert_eq!(topo.reachable_only_through("dist2", "border"), ["acc3"]);
        // The only border failing cuts everyone off from the border role.
        check_impact(&topo, dev("border"), "border", &["acc1", "acc2", "acc3", "core", "dist1", "dist2"], &[]);

        let parents = topo.parents_toward("border");
        let got: Vec<String> = parents.iter().map(|(k, v)| format!("{k} <- {}", v.join(","))).collect();
        assert_eq!(
            got,
            ["acc1 <- dist1", "acc2 <- dist1", "acc3 <- dist2", "core <- border", "dist1 <- core", "dist2 <- core"]
        );
    }

    #[test]
    fn the_lab_has_no_single_point_of_failure_until_a_link_goes_down() {
        let topo = lab_topology(|_| {});
        assert_eq!(topo.single_points_of_failure(), Spof::default());
        let parents = topo.parents_toward("spine");
        assert_eq!(parents["leaf1"], ["spine1", "spine2"]);
        assert_eq!(parents.len(), 3);

        let topo = lab_topology(|adj| set_oper(adj, LEAF2, "eth2", Some(false)));
        let spof = topo.single_points_of_failure();
        assert_eq!(spof.articulation_points, ["spine1"]);
        assert_eq!(spof.bridges, [key("leaf2", "eth1", "spine1", "eth2")]);
    }

    #[test]
    fn role_devices_are_cut_off_only_when_they_lose_every_other_one() {
        // border1 ─ core ─ border2, border2 ─ edge: losing core splits the two borders apart.
        let devices = vec![
            device(1, "border1", "border", &["00:00:00:00:00:01"], None, None),
            device(2, "border2", "border", &["00:00:00:00:00:02"], None, None),
            device(3, "core", "core", &["00:00:00:00:00:03"], None, None),
            device(4, "edge", "edge", &["00:00:00:00:00:04"], None, None),
        ];
        let mut adjacencies = Vec::new();
        cable(&mut adjacencies, (1, "e1", "00:00:00:00:00:01"), (3, "e1", "00:00:00:00:00:03"));
        cable(&mut adjacencies, (2, "e1", "00:00:00:00:00:02"), (3, "e2", "00:00:00:00:00:03"));
        cable(&mut adjacencies, (2, "e2", "00:00:00:00:00:02"), (4, "e1", "00:00:00:00:00:04"));
        let topo = Topology::build(&devices, &adjacencies);
        check_impact(&topo, dev("core"), "border", &["border1", "border2"], &[]);
        // border2 failing leaves border1 alone of its role: not "cut off" from itself; edge is.
        check_impact(&topo, dev("border2"), "border", &["edge"], &[]);
    }

    fn inventory_node(name: &str) -> Node {
        Node {
            name: name.into(),
            sys_name: None,
            role: None,
            site: None,
            mgmt_addr: None,
            chassis_ids: Vec::new(),
            status: DeviceStatus::Up,
            origin: NodeOrigin::Inventory { device_id: 0 },
        }
    }

    #[test]
    fn discovered_nodes_are_endpoints_not_transit() {
        // A server dual-homed to leaf1 and leaf2 (one chassis id on both ports) while leaf2 has lost both
        // uplinks: leaf2 must not reach the spines through the server.
        let (devices, mut adjacencies) = lab();
        adjacencies.push(unknown_neighbour());
        let mut second = unknown_neighbour();
        second.device_id = LEAF2;
        adjacencies.push(second);
        for (device, port) in [(LEAF2, "eth1"), (SPINE1, "eth2"), (LEAF2, "eth2"), (SPINE2, "eth2")] {
            set_oper(&mut adjacencies, device, port, Some(false));
        }
        let topo = Topology::build(&devices, &adjacencies);
        let server = "discovered:02:00:00:00:00:99";
        assert_eq!(topo.links_of(server).len(), 2);
        assert_eq!(topo.shortest_path("leaf2", "leaf1"), None);
        assert_eq!(topo.shortest_path(server, "leaf1").map(|p| p.len()), Some(1));
        assert_eq!(topo.shortest_path("spine1", server).map(|p| p.len()), Some(2));
        check_impact(&topo, dev("spine1"), "spine", &[], &["leaf2"]);
        assert_eq!(topo.single_points_of_failure(), Spof::default());
        let parents = topo.parents_toward("spine");
        assert_eq!(parents[server], ["leaf1"]);
        assert!(!parents.contains_key("leaf2"));
    }

    /// Brute force: a node is an articulation point if removing it raises the number of components; a link
    /// is a bridge if removing it does.
    fn brute_force(topo: &Topology) -> Spof {
        let count = |skip_node: Option<usize>, skip_link: Option<usize>| {
            let labels = topo.components(|l| {
                let (a, b) = topo.link_nodes(l);
                topo.links[l].is_up() && Some(l) != skip_link && Some(a) != skip_node && Some(b) != skip_node
            });
            (0..labels.len()).filter(|&v| Some(v) != skip_node).map(|v| labels[v]).collect::<BTreeSet<_>>().len()
        };
        let base = count(None, None);
        let n = topo.nodes.len();
        Spof {
            articulation_points: (0..n)
                .filter(|&v| {
                    let isolated = topo.up_neighbours(v).all(|u| u == v);
                    count(Some(v), None) > base - usize::from(isolated)
                })
                .map(|v| topo.nodes[v].name.clone())
                .collect(),
            bridges: (0..topo.links.len())
                .filter(|&l| topo.links[l].is_up() && count(None, Some(l)) > base)
                .map(|l| topo.links[l].key.clone())
                .collect(),
        }
    }

    #[test]
    fn petgraph_spof_agrees_with_brute_force_on_random_multigraphs() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = |bound: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % bound
        };
        for round in 0..300 {
            let n = 2 + next(8);
            let m = next(n * 2);
            let mut links = Vec::new();
            for i in 0..m {
                let a = next(n);
                let b = next(n);
                let status = if next(5) == 0 { OperStatus::Down } else { OperStatus::Up };
                links.push(Link {
                    key: key(&format!("n{a}"), &format!("x{i}"), &format!("n{b}"), &format!("y{i}")),
                    a_status: status,
                    b_status: status,
                    status,
                    seen_from: SeenFrom::Both,
                    protocols: vec![Protocol::Lldp],
                });
            }
            let nodes = (0..n).map(|i| inventory_node(&format!("n{i}"))).collect();
            let topo = Topology::from_parts(nodes, links, Vec::new());
            assert_eq!(topo.single_points_of_failure(), brute_force(&topo), "round {round}: {:#?}", topo.links);
        }
    }
}
