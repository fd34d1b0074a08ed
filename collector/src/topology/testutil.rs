//! Test helpers for the topology: fixtures, generated fabrics and a line-per-item rendering to compare against.

use super::{Adjacency, DeviceStatus, LinkEnd, LinkKey, NodeOrigin, Protocol, TopoDevice, Topology};
use serde::Deserialize;

pub const SPINE1: i64 = 1;
pub const SPINE2: i64 = 2;
pub const LEAF1: i64 = 11;
pub const LEAF2: i64 = 12;
pub const LEAF3: i64 = 13;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Fixture {
    devices: Vec<TopoDevice>,
    adjacencies: Vec<Adjacency>,
}

/// A fixture from `testdata/topology/<name>.yaml`.
pub fn load(name: &str) -> (Vec<TopoDevice>, Vec<Adjacency>) {
    let path = format!("{}/testdata/topology/{name}.yaml", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path}: {e}"));
    let f: Fixture = serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("parse {path}: {e}"));
    (f.devices, f.adjacencies)
}

/// The lab: spine1, spine2 × leaf1..leaf3, LLDP from both ends.
pub fn lab() -> (Vec<TopoDevice>, Vec<Adjacency>) {
    load("lab")
}

pub fn device(
    id: i64,
    name: &str,
    role: &str,
    chassis: &[&str],
    sys_name: Option<&str>,
    mgmt: Option<&str>,
) -> TopoDevice {
    TopoDevice {
        id,
        name: name.into(),
        role: Some(role.into()),
        site: None,
        mgmt_addr: mgmt.map(str::to_owned),
        chassis_ids: chassis.iter().map(|c| (*c).to_owned()).collect(),
        sys_name: sys_name.map(str::to_owned),
        status: DeviceStatus::Up,
    }
}

/// An LLDP report from `device_id` on `local_if` (oper up) of a neighbour known only by chassis and port.
pub fn lldp(device_id: i64, local_if: &str, remote_chassis: &str, remote_port: &str) -> Adjacency {
    Adjacency {
        device_id,
        local_if_name: local_if.into(),
        local_if_oper_up: Some(true),
        remote_chassis_id: remote_chassis.into(),
        remote_sys_name: None,
        remote_port_id: remote_port.into(),
        remote_port_descr: None,
        remote_mgmt_addr: None,
        protocol: Protocol::Lldp,
    }
}

/// A cable reported from both ends: `(device id, interface, that device's chassis id)` each.
pub fn cable(adjacencies: &mut Vec<Adjacency>, x: (i64, &str, &str), y: (i64, &str, &str)) {
    adjacencies.push(lldp(x.0, x.1, y.2, y.1));
    adjacencies.push(lldp(y.0, y.1, x.2, x.1));
}

/// A chassis id for generated device `id`.
pub fn chassis(id: i64) -> String {
    let b = id.to_be_bytes();
    format!("02:00:{:02x}:{:02x}:{:02x}:{:02x}", b[4], b[5], b[6], b[7])
}

/// A generated leaf-spine fabric: `spines` spines (role "spine", ids 1..) and `leaves` leaves (role "leaf",
/// ids 1001..), each leaf's `ethN` cabled to spine N's `ethM` for leaf M.
pub fn fabric(spines: usize, leaves: usize) -> (Vec<TopoDevice>, Vec<Adjacency>) {
    let spine_id = |s: usize| s as i64 + 1;
    let leaf_id = |l: usize| l as i64 + 1001;
    let mut devices = Vec::new();
    for s in 0..spines {
        let c = chassis(spine_id(s));
        devices.push(device(spine_id(s), &format!("spine{}", s + 1), "spine", &[&c], None, None));
    }
    for l in 0..leaves {
        let c = chassis(leaf_id(l));
        devices.push(device(leaf_id(l), &format!("leaf{}", l + 1), "leaf", &[&c], None, None));
    }
    let mut adjacencies = Vec::new();
    for s in 0..spines {
        for l in 0..leaves {
            cable(
                &mut adjacencies,
                (spine_id(s), &format!("eth{}", l + 1), &chassis(spine_id(s))),
                (leaf_id(l), &format!("eth{}", s + 1), &chassis(leaf_id(l))),
            );
        }
    }
    (devices, adjacencies)
}

/// leaf1 eth3 sees a server that is not in the inventory.
pub fn unknown_neighbour() -> Adjacency {
    Adjacency {
        device_id: LEAF1,
        local_if_name: "eth3".into(),
        local_if_oper_up: Some(true),
        remote_chassis_id: "02:00:00:00:00:99".into(),
        remote_sys_name: Some("server1.lab".into()),
        remote_port_id: "ens1f0".into(),
        remote_port_descr: Some("Intel X710".into()),
        remote_mgmt_addr: Some("10.255.0.99".into()),
        protocol: Protocol::Lldp,
    }
}

/// The same server's second NIC port on leaf2 eth3 (down), chassis written another way.
pub fn unknown_neighbour_seen_by_leaf2() -> Adjacency {
    Adjacency {
        device_id: LEAF2,
        local_if_name: "eth3".into(),
        local_if_oper_up: Some(false),
        remote_chassis_id: "02-00-00-00-00-99".into(),
        remote_sys_name: Some("server1.lab".into()),
        remote_port_id: "ens1f1".into(),
        remote_port_descr: None,
        remote_mgmt_addr: None,
        protocol: Protocol::Lldp,
    }
}

/// Sets the reported oper status of `device_id`'s `local_if`.
pub fn set_oper(adjacencies: &mut [Adjacency], device_id: i64, local_if: &str, up: Option<bool>) {
    let mut found = false;
    for a in adjacencies.iter_mut().filter(|a| a.device_id == device_id && a.local_if_name == local_if) {
        a.local_if_oper_up = up;
        found = true;
    }
    assert!(found, "no adjacency from {device_id} on {local_if}");
}

/// Drops both ends' reports of a cable.
pub fn unplug(adjacencies: &mut Vec<Adjacency>, x: (i64, &str), y: (i64, &str)) {
    let before = adjacencies.len();
    adjacencies
        .retain(|a| (a.device_id, a.local_if_name.as_str()) != x && (a.device_id, a.local_if_name.as_str()) != y);
    assert_eq!(before - adjacencies.len(), 2, "unplug {x:?} {y:?}");
}

pub fn key(d1: &str, i1: &str, d2: &str, i2: &str) -> LinkKey {
    LinkKey::new(LinkEnd::new(d1, i1), LinkEnd::new(d2, i2))
}

/// One line per node (`node <name> <origin> <status>`) and per link
/// (`link <key> <status> <seen_from> <protocols>`), in topology order.
pub fn render(topo: &Topology) -> String {
    let mut out = String::new();
    for n in topo.nodes() {
        let origin = match n.origin {
            NodeOrigin::Inventory { .. } => "inventory",
            NodeOrigin::Discovered { .. } => "discovered",
        };
        let status = serde_json::to_value(n.status).unwrap();
        out.push_str(&format!("node {} {origin} {}\n", n.name, status.as_str().unwrap()));
    }
    for l in topo.links() {
        let protocols: Vec<String> =
            l.protocols.iter().map(|p| serde_json::to_value(p).unwrap().as_str().unwrap().to_owned()).collect();
        out.push_str(&format!(
            "link {} {} {} {}\n",
            l.key,
            l.status.as_str(),
            l.seen_from.as_str(),
            protocols.join(",")
        ));
    }
    out
}

/// Trims every line of an indented expectation and drops blank ones.
pub fn dedent(expected: &str) -> String {
    expected.lines().map(str::trim).filter(|l| !l.is_empty()).map(|l| format!("{l}\n")).collect()
}

/// Builds the topology and compares its rendering with `expected`.
pub fn check(devices: &[TopoDevice], adjacencies: &[Adjacency], expected: &str) -> Topology {
    let topo = Topology::build(devices, adjacencies);
    let got = render(&topo);
    let want = dedent(expected);
    assert_eq!(got, want, "\n--- got:\n{got}--- want:\n{want}");
    topo
}
