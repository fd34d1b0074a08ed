//! A simulated spine-leaf fabric polled with netwarden's own poller: BGP Established, OSPF Full
//! and LLDP forming the cabled topology on every device; faults injected through the control
//! listener show on the next poll (link down at both ends, an unreachable agent times out, a
//! reboot is a counter discontinuity and not a rate spike, broken responses are clear errors).

use collector::counters::CounterState;
use collector::ifmib::InterfaceRow;
use collector::inventory::SnmpCredentials;
use collector::poll::{DevicePoll, poll_device};
use collector::routing::{BgpState, LinkProtocol, OspfNbrState};
use collector::sim::{AgentConfig, ControlServer, Fabric, FabricModel, FabricSpec};
use collector::snmp::{ClientOptions, SnmpClient, SnmpError};
use collector::topology::{
    Adjacency, DeviceStatus, LinkEnd, LinkKey, OperStatus, Protocol, SeenFrom, TopoDevice, Topology,
};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A 2-spine, 4-leaf fabric served on loopback with its control listener.
async fn start() -> (Arc<Fabric>, ControlServer) {
    let spec: FabricSpec = "spines=2,leaves=4".parse().expect("spec");
    let mut fabric = Fabric::build(FabricModel::build(&spec).expect("fabric model"));
    fabric.serve(LOCALHOST, 0, &AgentConfig::default()).await.expect("binding the fabric's agents on 127.0.0.1");
    let fabric = Arc::new(fabric);
    let control = ControlServer::bind(SocketAddr::new(LOCALHOST, 0), Arc::clone(&fabric))
        .await
        .expect("binding the control listener on 127.0.0.1");
    (fabric, control)
}

/// Sends one control line and returns the answer line.
async fn control(server: &ControlServer, line: &str) -> String {
    let stream = TcpStream::connect(server.local_addr()).await.expect("connecting to the control listener");
    let (read, mut write) = stream.into_split();
    write.write_all(format!("{line}\n").as_bytes()).await.expect("sending a control line");
    let mut answer = String::new();
    let mut read = BufReader::new(read);
    tokio::time::timeout(Duration::from_secs(10), read.read_line(&mut answer))
        .await
        .unwrap_or_else(|_| panic!("no answer to {line:?} from the control listener within 10 s"))
        .expect("reading the control answer");
    answer.trim_end().to_string()
}

fn client(fabric: &Fabric, device: &str, timeout: Duration, retries: u32) -> SnmpClient {
    SnmpClient::new(
        fabric.target(device).expect("served device"),
        SnmpCredentials::V2c { community: "public".into() },
        ClientOptions { timeout, retries, ..Default::default() },
    )
}

async fn poll(fabric: &Fabric, device: &str) -> DevicePoll {
    let p = poll_device(&mut client(fabric, device, Duration::from_secs(2), 2))
        .await
        .unwrap_or_else(|e| panic!("polling {device}: {e}"));
    assert!(p.issues.is_empty(), "{device}: {:?}", p.issues);
    assert_eq!(p.routing_error, None, "{device}");
    p
}

fn row(p: &DevicePoll, if_name: &str) -> InterfaceRow {
    p.interfaces.iter().find(|r| r.name.as_deref() == Some(if_name)).expect("interface").clone()
}

/// The topology's inputs as the store would give them after these polls (device ids are
/// positions in `polls`).
fn topology(fabric: &Fabric, polls: &[(String, DevicePoll)]) -> Topology {
    let mut devices = Vec::new();
    let mut adjacencies = Vec::new();
    for (id, (name, p)) in polls.iter().enumerate() {
        let r = p.routing.as_ref().expect("routing polled");
        devices.push(TopoDevice {
            id: id as i64,
            name: name.clone(),
            role: Some(fabric.model().device(name).expect("device").role.to_string()),
            site: Some("sim".into()),
            mgmt_addr: fabric.target(name).map(|t| t.split(':').next().unwrap_or_default().to_string()),
            chassis_ids: r.local_chassis_id.iter().cloned().collect(),
            sys_name: p.system.sys_name.clone(),
            status: DeviceStatus::Up,
        });
        for n in r.neighbors.iter().filter(|n| n.protocol == LinkProtocol::Lldp) {
            let local = n.local_if_name.clone().expect("local port named");
            adjacencies.push(Adjacency {
                device_id: id as i64,
                local_if_oper_up: match row(p, &local).oper_status {
                    Some(1) => Some(true),
                    Some(2) => Some(false),
                    _ => None,
                },
                local_if_name: local,
                remote_chassis_id: n.chassis_id.clone(),
                remote_sys_name: n.sys_name.clone(),
                remote_port_id: n.port_id.clone(),
                remote_port_descr: n.port_descr.clone(),
                remote_mgmt_addr: n.mgmt_addr.map(|a| a.to_string()),
                protocol: Protocol::Lldp,
            });
        }
    }
    Topology::build(&devices, &adjacencies)
}

async fn poll_all(fabric: &Fabric) -> Vec<(String, DevicePoll)> {
    let mut out = Vec::new();
    for d in &fabric.model().devices {
        out.push((d.name.clone(), poll(fabric, &d.name).await));
    }
    out
}

fn key(a: &str, ai: u32, b: &str, bi: u32) -> LinkKey {
    LinkKey::new(LinkEnd::new(a, format!("eth{ai}")), LinkEnd::new(b, format!("eth{bi}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_polled_fabric_is_consistent_and_forms_the_cabled_topology() {
    let (fabric, _control) = start().await;
    let polls = poll_all(&fabric).await;
    let model = fabric.model();
    for (name, p) in &polls {
        let d = model.device(name).unwrap();
        let r = p.routing.as_ref().unwrap();
        assert!(r.issues.is_empty(), "{name}: {:?}", r.issues);
        assert_eq!(p.system.sys_name.as_deref(), Some(name.as_str()));
        assert_eq!(p.interfaces.len(), 48);
        assert_eq!((r.local_as, r.router_id), (Some(d.asn), Some(d.loopback)));
        let cables = model.links_of(d.index).count();
        assert_eq!((r.bgp.len(), r.ospf_neighbors.len(), r.neighbors.len()), (cables, cables, cables), "{name}");
        for l in model.links_of(d.index) {
            let (me, far) = l.ends_from(d.index).unwrap();
            let fd = &model.devices[far.device];
            let peer = r.bgp.iter().find(|b| b.peer_addr == IpAddr::V4(far.addr)).expect("BGP peer per cable");
            assert_eq!((peer.state, peer.remote_as), (BgpState::Established, fd.asn), "{name} → {}", fd.name);
            let nbr = r.ospf_neighbors.iter().find(|n| n.router_id == fd.loopback).expect("OSPF neighbour");
            assert_eq!((nbr.state, nbr.if_index), (OspfNbrState::Full, Some(me.if_index)), "{name} → {}", fd.name);
        }
    }
    let topo = topology(&fabric, &polls);
    assert!(topo.warnings().is_empty(), "{:?}", topo.warnings());
    assert_eq!(topo.nodes().len(), 6, "no discovered nodes: every neighbour resolves to a fabric device");
    let mut want: Vec<LinkKey> = Vec::new();
    for s in 1..=2 {
        for l in 1..=4 {
            want.push(key(&format!("spine{s}"), l, &format!("leaf00{l}"), s));
        }
    }
    want.sort();
    let got: Vec<LinkKey> = topo.links().iter().map(|l| l.key.clone()).collect();
    assert_eq!(got, want);
    for l in topo.links() {
        assert_eq!((l.status, l.seen_from), (OperStatus::Up, SeenFrom::Both), "{}", l.key);
    }
    // The BGP view of each cable matches at both ends: my local address is my peer's peer address.
    let by_name = |n: &str| polls.iter().find(|(x, _)| x == n).unwrap().1.routing.clone().unwrap();
    let (spine, leaf) = (by_name("spine2"), by_name("leaf003"));
    let s_side = spine.bgp.iter().find(|p| p.remote_as == model.device("leaf003").unwrap().asn).unwrap();
    let l_side = leaf.bgp.iter().find(|p| p.remote_as == 65000 && p.peer_addr == s_side.local_addr.unwrap()).unwrap();
    assert_eq!(l_side.local_addr, Some(s_side.peer_addr));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_fault_shows_at_both_ends_on_the_next_poll() {
    let (fabric, control_server) = start().await;
    assert_eq!(control(&control_server, "link-down leaf001 spine1").await, "ok");
    assert_eq!(control(&control_server, "faults").await, "ok link-down spine1 leaf001");
    let polls = poll_all(&fabric).await;
    for (name, peer_if, far) in [("spine1", "eth1", "leaf001"), ("leaf001", "eth1", "spine1")] {
        let p = &polls.iter().find(|(n, _)| n == name).unwrap().1;
        let r = p.routing.as_ref().unwrap();
        assert_eq!(row(p, peer_if).oper_status, Some(2), "{name} {peer_if}");
        assert!(r.neighbors.iter().all(|n| n.sys_name.as_deref() != Some(far)), "{name}: LLDP neighbour {far} gone");
        let far_rid = fabric.model().device(far).unwrap().loopback;
        assert!(r.ospf_neighbors.iter().all(|n| n.router_id != far_rid), "{name}: OSPF neighbour {far} gone");
        let far_asn = fabric.model().device(far).unwrap().asn;
        let to_far: Vec<BgpState> = r
            .bgp
            .iter()
            .filter(|b| b.remote_as == far_asn && b.local_addr.is_some_and(|a| a.to_string().starts_with("10.128.0.")))
            .map(|b| b.state)
            .collect();
        assert!(to_far.contains(&BgpState::Active), "{name}: {to_far:?}");
    }
    let topo = topology(&fabric, &polls);
    let cut = key("spine1", 1, "leaf001", 1);
    assert!(topo.link(&cut).is_none(), "neither end advertises the cable any more");
    assert_eq!(topo.links().len(), 7);
    assert!(topo.links().iter().all(|l| l.status == OperStatus::Up));
    // Unknown names and bad commands are answered, not fatal.
    assert_eq!(
        control(&control_server, "link-down leaf001 leaf002").await,
        "error: no cable between leaf001 and leaf002"
    );
    assert!(control(&control_server, "explode spine1").await.starts_with("error: unknown command \"explode\""));

    assert_eq!(control(&control_server, "link-up leaf001 spine1").await, "ok");
    let polls = poll_all(&fabric).await;
    let topo = topology(&fabric, &polls);
    assert_eq!(topo.link(&cut).map(|l| l.status), Some(OperStatus::Up));
    for (_, p) in &polls {
        assert!(p.routing.as_ref().unwrap().bgp.iter().all(|b| b.state == BgpState::Established));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_device_times_out_and_comes_back() {
    let (fabric, control_server) = start().await;
    assert_eq!(control(&control_server, "device-down leaf002").await, "ok");
    let err = poll_device(&mut client(&fabric, "leaf002", Duration::from_millis(300), 1))
        .await
        .expect_err("a device-down agent does not answer");
    assert!(matches!(err, SnmpError::Timeout { attempts: 2, .. }), "{err}");
    // Its neighbours still see it: the device is unreachable, not unplugged.
    let spine = poll(&fabric, "spine1").await;
    assert!(spine.routing.unwrap().neighbors.iter().any(|n| n.sys_name.as_deref() == Some("leaf002")));
    assert_eq!(control(&control_server, "device-up leaf002").await, "ok");
    poll(&fabric, "leaf002").await;
    assert!(fabric.agent("leaf002").unwrap().stats().silenced >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reboot_is_a_discontinuity_not_a_rate_spike() {
    let (fabric, control_server) = start().await;
    let mut counters = CounterState::default();
    let mut rates_after =
        |p: &DevicePoll, wall: f64| counters.update(p.system.sys_uptime_ticks.expect("sysUpTime"), wall, &p.interfaces);
    let first = poll(&fabric, "leaf001").await;
    rates_after(&first, 0.0);
    // sysUpTime has a resolution of 10 ms: wait for it to move on by a clear margin.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let second = poll(&fabric, "leaf001").await;
    let (rates, gaps) = rates_after(&second, 1.2);
    assert_eq!(gaps.restarted, 0);
    assert!(rates.iter().all(|r| r.in_bps.is_some()), "rates between two normal polls");
    assert_eq!(control(&control_server, "reboot leaf001").await, "ok");
    let third = poll(&fabric, "leaf001").await;
    assert!(third.system.sys_uptime_ticks < second.system.sys_uptime_ticks, "sysUpTime restarted");
    let (rates, gaps) = rates_after(&third, 0.1);
    assert_eq!(gaps.restarted as usize, third.interfaces.len(), "{gaps:?}");
    assert!(rates.iter().all(|r| r.in_bps.is_none() && r.out_bps.is_none()), "a gap, never a spike: {rates:?}");
    // The spines saw their sessions to leaf001 flap and come back.
    let spine = poll(&fabric, "spine1").await.routing.unwrap();
    let to_leaf = spine.bgp.iter().find(|b| b.remote_as == 65001).unwrap();
    assert_eq!((to_leaf.state, to_leaf.fsm_established_transitions), (BgpState::Established, Some(2)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broken_agents_give_clear_errors_and_slow_ones_time_out() {
    let (fabric, control_server) = start().await;
    let quick = |d: &str| client(&fabric, d, Duration::from_millis(500), 1);

    assert_eq!(control(&control_server, "malformed leaf001 truncated").await, "ok");
    let err = poll_device(&mut quick("leaf001")).await.expect_err("truncated responses");
    assert!(matches!(err, SnmpError::Malformed { .. }), "{err}");
    assert!(err.to_string().contains("undecodable packet"), "{err}");

    assert_eq!(control(&control_server, "malformed leaf002 non-increasing").await, "ok");
    let err = poll_device(&mut quick("leaf002")).await.expect_err("a walk that does not advance");
    assert!(matches!(err, SnmpError::NotIncreasing { .. }), "{err}");

    assert_eq!(control(&control_server, "malformed leaf003 wrong-types").await, "ok");
    let p = poll_device(&mut quick("leaf003")).await.expect("wrong types decode as issues, not a failed poll");
    assert!(!p.issues.is_empty(), "every ifTable cell has the wrong type");
    assert!(p.issues.iter().any(|i| i.to_string().contains("expected")), "{:?}", &p.issues[..3]);

    assert_eq!(control(&control_server, "slow leaf004 5s").await, "ok");
    let err = poll_device(&mut client(&fabric, "leaf004", Duration::from_millis(200), 0))
        .await
        .expect_err("an agent 25 times slower than the timeout");
    assert!(matches!(err, SnmpError::Timeout { .. }), "{err}");

    assert_eq!(control(&control_server, "clear all").await, "ok 4 cleared");
    for d in ["leaf001", "leaf002", "leaf003", "leaf004"] {
        poll(&fabric, d).await;
    }
}
