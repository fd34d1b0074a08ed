//! What changed between two topologies, as events: nodes added and removed, links added, removed, and changed
//! (status or which ends see them). Nodes are compared by name and links by key, so the same cable keeps its
//! identity from one build to the next.

use super::LinkKey;
use super::{Link, OperStatus, SeenFrom, Topology};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

/// The parts of a link that a change is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkState {
    pub status: OperStatus,
    pub seen_from: SeenFrom,
}

impl LinkState {
    fn of(link: &Link) -> Self {
        LinkState { status: link.status, seen_from: link.seen_from }
    }
}

/// One change, serialized with a `change` tag (`node_added`, `link_changed`, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum TopologyChange {
    NodeAdded { node: String, discovered: bool },
    NodeRemoved { node: String, discovered: bool },
    LinkAdded { link: LinkKey, state: LinkState },
    LinkRemoved { link: LinkKey, state: LinkState },
    LinkChanged { link: LinkKey, from: LinkState, to: LinkState },
}

/// The changes from `old` to `new`: node changes by name, then link changes by key.
pub fn diff(old: &Topology, new: &Topology) -> Vec<TopologyChange> {
    let mut changes = Vec::new();
    merge_join(
        old.nodes(),
        new.nodes(),
        |o, n| o.name.cmp(&n.name),
        |side| match side {
            Side::Old(o) => {
                changes.push(TopologyChange::NodeRemoved { node: o.name.clone(), discovered: o.is_discovered() })
            }
            Side::New(n) => {
                changes.push(TopologyChange::NodeAdded { node: n.name.clone(), discovered: n.is_discovered() })
            }
            Side::Both(..) => {}
        },
    );
    merge_join(
        old.links(),
        new.links(),
        |o, n| o.key.cmp(&n.key),
        |side| match side {
            Side::Old(o) => changes.push(TopologyChange::LinkRemoved { link: o.key.clone(), state: LinkState::of(o) }),
            Side::New(n) => changes.push(TopologyChange::LinkAdded { link: n.key.clone(), state: LinkState::of(n) }),
            Side::Both(o, n) => {
                let (from, to) = (LinkState::of(o), LinkState::of(n));
                if from != to {
                    changes.push(TopologyChange::LinkChanged { link: n.key.clone(), from, to });
                }
            }
        },
    );
    changes
}

enum Side<'a, T> {
    Old(&'a T),
    New(&'a T),
    Both(&'a T, &'a T),
}

/// Walks two slices sorted by `cmp` in step.
fn merge_join<'a, T>(old: &'a [T], new: &'a [T], cmp: impl Fn(&T, &T) -> Ordering, mut visit: impl FnMut(Side<'a, T>)) {
    let (mut i, mut j) = (0, 0);
    while i < old.len() || j < new.len() {
        let order = match (old.get(i), new.get(j)) {
            (Some(o), Some(n)) => cmp(o, n),
            (Some(_), None) => Ordering::Less,
            (None, _) => Ordering::Greater,
        };
        match order {
            Ordering::Less => {
                visit(Side::Old(&old[i]));
                i += 1;
            }
            Ordering::Greater => {
                visit(Side::New(&new[j]));
                j += 1;
            }
            Ordering::Equal => {
                visit(Side::Both(&old[i], &new[j]));
                i += 1;
                j += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::*;
    use super::super::{Adjacency, TopoDevice};
    use super::*;

    /// The changes from the lab to the lab after `edit`, one line each.
    fn check_diff(edit: impl FnOnce(&mut Vec<TopoDevice>, &mut Vec<Adjacency>), expected: &str) {
        let (mut devices, mut adjacencies) = lab();
        let old = Topology::build(&devices, &adjacencies);
        edit(&mut devices, &mut adjacencies);
        let new = Topology::build(&devices, &adjacencies);
        let got: String = diff(&old, &new).iter().map(|c| format!("{}\n", serde_json::to_string(c).unwrap())).collect();
        let want = dedent(expected);
        assert_eq!(got, want, "\n--- got:\n{got}--- want:\n{want}");
    }

    #[test]
    fn nothing_changed() {
        check_diff(|_, _| {}, "");
    }

    #[test]
    fn a_link_goes_down() {
        check_diff(
            |_, adj| {
                set_oper(adj, LEAF2, "eth1", Some(false));
                set_oper(adj, SPINE1, "eth2", Some(false));
            },
            r#"
            {"change":"link_changed","link":{"a":{"device":"leaf2","interface":"eth1"},"b":{"device":"spine1","interface":"eth2"}},"from":{"status":"up","seen_from":"both"},"to":{"status":"down","seen_from":"both"}}
            "#,
        );
    }

    #[test]
    fn a_link_is_seen_from_one_end_only() {
        check_diff(
            |_, adj| adj.retain(|a| !(a.device_id == SPINE2 && a.local_if_name == "eth1")),
            r#"
            {"change":"link_changed","link":{"a":{"device":"leaf1","interface":"eth2"},"b":{"device":"spine2","interface":"eth1"}},"from":{"status":"up","seen_from":"both"},"to":{"status":"up","seen_from":"only_a"}}
            "#,
        );
    }

    #[test]
    fn a_link_is_removed() {
        check_diff(
            |_, adj| unplug(adj, (LEAF3, "eth2"), (SPINE2, "eth3")),
            r#"
            {"change":"link_removed","link":{"a":{"device":"leaf3","interface":"eth2"},"b":{"device":"spine2","interface":"eth3"}},"state":{"status":"up","seen_from":"both"}}
            "#,
        );
    }

    #[test]
    fn a_leaf_is_added_and_a_server_appears() {
        check_diff(
            |devices, adj| {
                devices.push(device(14, "leaf4", "leaf", &["d6:ac:67:9d:9c:14"], Some("leaf4"), None));
                cable(adj, (SPINE1, "eth4", "d6:ac:67:9d:9c:01"), (14, "eth1", "d6:ac:67:9d:9c:14"));
                adj.push(unknown_neighbour());
            },
            r#"
            {"change":"node_added","node":"discovered:02:00:00:00:00:99","discovered":true}
            {"change":"node_added","node":"leaf4","discovered":false}
            {"change":"link_added","link":{"a":{"device":"discovered:02:00:00:00:00:99","interface":"ens1f0"},"b":{"device":"leaf1","interface":"eth3"}},"state":{"status":"up","seen_from":"only_b"}}
            {"change":"link_added","link":{"a":{"device":"leaf4","interface":"eth1"},"b":{"device":"spine1","interface":"eth4"}},"state":{"status":"up","seen_from":"both"}}
            "#,
        );
    }

    #[test]
    fn a_device_leaves_the_inventory() {
        // leaf3 is still cabled but no longer in the inventory: spine2 sees it through a per-port MAC, so it
        // comes back as two discovered nodes (they are keyed by chassis id only).
        check_diff(
            |devices, adj| {
                devices.retain(|d| d.id != LEAF3);
                adj.retain(|a| a.device_id != LEAF3);
            },
            r#"
            {"change":"node_added","node":"discovered:d6:ac:67:9d:9c:13","discovered":true}
            {"change":"node_added","node":"discovered:d6:ac:67:9d:bb:13","discovered":true}
            {"change":"node_removed","node":"leaf3","discovered":false}
            {"change":"link_added","link":{"a":{"device":"discovered:d6:ac:67:9d:9c:13","interface":"eth1"},"b":{"device":"spine1","interface":"eth3"}},"state":{"status":"up","seen_from":"only_b"}}
            {"change":"link_added","link":{"a":{"device":"discovered:d6:ac:67:9d:bb:13","interface":"eth2"},"b":{"device":"spine2","interface":"eth3"}},"state":{"status":"up","seen_from":"only_b"}}
            {"change":"link_removed","link":{"a":{"device":"leaf3","interface":"eth1"},"b":{"device":"spine1","interface":"eth3"}},"state":{"status":"up","seen_from":"both"}}
            {"change":"link_removed","link":{"a":{"device":"leaf3","interface":"eth2"},"b":{"device":"spine2","interface":"eth3"}},"state":{"status":"up","seen_from":"both"}}
            "#,
        );
    }
}
