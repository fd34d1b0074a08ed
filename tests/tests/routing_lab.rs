//! Routing and topology against the routed lab (tests/lab): netwarden's view of every router must be the
//! lab's wiring: each eBGP session Established with the wired peer address and AS, each OSPF adjacency Full in
//! area 0.0.0.0, and LLDP showing exactly the cabling (local interface ↔ remote router and port).
//!
//! The lab's addresses exist only inside its namespaces (from the root namespace they would be routed out of
//! the default route), so polling runs on a dedicated thread that first joins the `nwlab-mgmt` network
//! namespace with setns(2) and then drives a current-thread tokio runtime: every socket it opens is in there.
//! The test brings the lab up (up.sh is idempotent) and leaves it up for the tests that follow.

use collector::ifmib::InterfaceRow;
use collector::inventory::SnmpCredentials;
use collector::routing::{BgpState, LinkProtocol, OspfNbrState, RoutingPoll};
use collector::snmp::{ClientOptions, SnmpClient};
use serde_json::Value as Json;
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

/// How long the routing protocols get to converge after up.sh (the lab README measures 3.5–5 s).
const CONVERGE_WITHIN: Duration = Duration::from_secs(90);

fn lab_dir() -> PathBuf {
    std::env::var_os("NWLAB_DIR").filter(|v| !v.is_empty()).map(PathBuf::from).unwrap_or_else(|| "/tmp/nwlab".into())
}

fn bring_lab_up() {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("lab/up.sh");
    let started = Instant::now();
    let out =
        Command::new("bash").arg(&script).output().unwrap_or_else(|e| panic!("running {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "{} failed ({}):\n{}\n{}",
        script.display(),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("lab: up.sh took {:?}", started.elapsed());
}

/// One router as wiring.json describes it.
#[derive(Debug, Clone)]
struct Node {
    name: String,
    asn: u32,
    router_id: Ipv4Addr,
    mgmt_ip: Ipv4Addr,
    links: Vec<Link>,
}

/// One fabric interface of a router and what is cabled to it.
#[derive(Debug, Clone)]
struct Link {
    name: String,
    ip: Ipv4Addr,
    peer: String,
    peer_if: String,
    peer_ip: Ipv4Addr,
}

struct Wiring {
    mgmt_namespace: String,
    community: String,
    nodes: Vec<Node>,
}

fn read_wiring() -> Wiring {
    let path = lab_dir().join("wiring.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let w: Json = serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()));
    let s = |v: &Json, k: &str| -> String {
        v[k].as_str().unwrap_or_else(|| panic!("{}: {k} is not a string in {v}", path.display())).to_string()
    };
    let ip =
        |v: &Json, k: &str| -> Ipv4Addr { s(v, k).parse().unwrap_or_else(|e| panic!("{}: {k}: {e}", path.display())) };
    let nodes = w["nodes"]
        .as_array()
        .expect("wiring.json has nodes[]")
        .iter()
        .map(|n| Node {
            name: s(n, "name"),
            asn: n["asn"].as_u64().and_then(|a| u32::try_from(a).ok()).expect("asn"),
            router_id: ip(n, "router_id"),
            mgmt_ip: ip(n, "mgmt_ip"),
            links: n["interfaces"]
                .as_array()
                .expect("interfaces[]")
                .iter()
                .map(|i| Link {
                    name: s(i, "name"),
                    ip: ip(i, "ip"),
                    peer: s(i, "peer"),
                    peer_if: s(i, "peer_if"),
                    peer_ip: ip(i, "peer_ip"),
                })
                .collect(),
        })
        .collect();
    Wiring {
        mgmt_namespace: s(&w["mgmt"], "namespace"),
        community: s(&w["credentials"]["snmp_v2c"], "community"),
        nodes,
    }
}

/// Runs `f` on a new thread that has joined network namespace `ns` (only that thread moves; the test process
/// stays in the root namespace).
fn in_netns<T: Send + 'static>(ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = PathBuf::from("/run/netns").join(ns);
    std::thread::Builder::new()
        .name(format!("netns-{ns}"))
        .spawn(move || {
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()));
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .unwrap_or_else(|e| panic!("setns into {}: {e}", path.display()));
            f()
        })
        .expect("spawning the namespace thread")
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

struct Observed {
    interfaces: Vec<InterfaceRow>,
    routing: RoutingPoll,
}

async fn poll_router(target: &str, community: &str) -> Result<Observed, String> {
    let creds = SnmpCredentials::V2c { community: community.to_string() };
    let opts = ClientOptions { timeout: Duration::from_secs(1), retries: 1, ..Default::default() };
    let mut client = SnmpClient::new(target, creds, opts);
    let dev = collector::poll::poll_interfaces(&mut client).await.map_err(|e| e.to_string())?;
    let routing = collector::routing::poll_routing(&mut client, &dev.interfaces).await.map_err(|e| e.to_string())?;
    Ok(Observed { interfaces: dev.interfaces, routing })
}

/// Every way one router's view differs from the wiring (empty when it matches).
fn mismatches(node: &Node, wiring: &Wiring, seen: &Observed) -> Vec<String> {
    let r = &seen.routing;
    let mut out = Vec::new();
    let mut check = |ok: bool, what: String| {
        if !ok {
            out.push(format!("{}: {what}", node.name));
        }
    };
    check(
        r.issues.is_empty(),
        format!("decode issues {:?}", r.issues.iter().map(ToString::to_string).collect::<Vec<_>>()),
    );
    check(r.local_as == Some(node.asn), format!("local AS {:?}, wired {}", r.local_as, node.asn));
    check(r.router_id == Some(node.router_id), format!("router ID {:?}, wired {}", r.router_id, node.router_id));
    let asn_of = |name: &str| wiring.nodes.iter().find(|n| n.name == name).map(|n| n.asn);
    let rid_of = |name: &str| wiring.nodes.iter().find(|n| n.name == name).map(|n| n.router_id);
    let mgmt_of = |name: &str| wiring.nodes.iter().find(|n| n.name == name).map(|n| IpAddr::V4(n.mgmt_ip));

    // BGP: exactly one Established session per link, to the wired address and AS, from the link's address.
    let want: BTreeSet<(IpAddr, u32, Option<IpAddr>)> = node
        .links
        .iter()
        .map(|l| (IpAddr::V4(l.peer_ip), asn_of(&l.peer).expect("peer node"), Some(IpAddr::V4(l.ip))))
        .collect();
    let got: BTreeSet<(IpAddr, u32, Option<IpAddr>)> =
        r.bgp.iter().map(|p| (p.peer_addr, p.remote_as, p.local_addr)).collect();
    check(got == want && r.bgp.len() == want.len(), format!("BGP peers {got:?}, wired {want:?}"));
    for p in &r.bgp {
        check(p.state == BgpState::Established, format!("BGP peer {} is {:?}", p.peer_addr, p.state));
    }

    // OSPF: one Full adjacency per link, in area 0, on the link's interface.
    let want: BTreeSet<(Ipv4Addr, Ipv4Addr, Option<String>)> =
        node.links.iter().map(|l| (l.peer_ip, rid_of(&l.peer).expect("peer node"), Some(l.name.clone()))).collect();
    let if_name = |i: Option<u32>| seen.interfaces.iter().find(|r| Some(r.if_index) == i).and_then(|r| r.name.clone());
    let got: BTreeSet<(Ipv4Addr, Ipv4Addr, Option<String>)> =
        r.ospf_neighbors.iter().map(|n| (n.addr, n.router_id, if_name(n.if_index))).collect();
    check(got == want && r.ospf_neighbors.len() == want.len(), format!("OSPF neighbours {got:?}, wired {want:?}"));
    for n in &r.ospf_neighbors {
        check(n.state == OspfNbrState::Full, format!("OSPF neighbour {} is {:?}", n.addr, n.state));
        check(n.area_id == Some(Ipv4Addr::UNSPECIFIED), format!("OSPF neighbour {} in area {:?}", n.addr, n.area_id));
    }

    // LLDP: exactly the cabling, seen from this end, with the neighbour's management address.
    let want: BTreeSet<(String, String, String, Option<IpAddr>)> =
        node.links.iter().map(|l| (l.name.clone(), l.peer.clone(), l.peer_if.clone(), mgmt_of(&l.peer))).collect();
    let lldp: Vec<_> = r.neighbors.iter().filter(|n| n.protocol == LinkProtocol::Lldp).collect();
    let got: BTreeSet<(String, String, String, Option<IpAddr>)> = lldp
        .iter()
        .map(|n| {
            (
                n.local_if_name.clone().unwrap_or_default(),
                n.sys_name.clone().unwrap_or_default(),
                n.port_id.clone(),
                n.mgmt_addr,
            )
        })
        .collect();
    check(got == want && lldp.len() == want.len(), format!("LLDP neighbours {got:?}, cabled {want:?}"));
    for n in &lldp {
        let exists = n.local_if_index.is_some_and(|i| seen.interfaces.iter().any(|r| r.if_index == i));
        check(
            exists,
            format!("LLDP port {} not tied to an existing ifIndex ({:?})", n.local_port_num, n.local_if_index),
        );
    }
    check(r.neighbors.len() == lldp.len(), "CDP neighbours on a lab without CDP".to_string());
    out
}

/// Each router's own chassis ID (lldpLocChassisId) is what its neighbours report for it.
fn chassis_mismatches(seen: &[(String, Observed)]) -> Vec<String> {
    let mut out = Vec::new();
    for (name, obs) in seen {
        let Some(own) = &obs.routing.local_chassis_id else {
            out.push(format!("{name}: no lldpLocChassisId"));
            continue;
        };
        for (other, o) in seen {
            for n in o.routing.neighbors.iter().filter(|n| n.sys_name.as_deref() == Some(name.as_str())) {
                if &n.chassis_id != own {
                    out.push(format!("{other}: sees {name} as chassis {}, {name} says {own}", n.chassis_id));
                }
            }
        }
    }
    out
}

#[test]
fn routing_state_matches_the_wiring() {
    if netwarden_tests::util::skip_unless_root("building the lab's network namespaces and joining nwlab-mgmt") {
        return;
    }
    bring_lab_up();
    let wiring = read_wiring();
    assert_eq!(wiring.nodes.len(), 5, "the lab has five routers");
    let ns = wiring.mgmt_namespace.clone();
    let report = in_netns(&ns, move || {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
        rt.block_on(async move {
            let started = Instant::now();
            let mut rounds = 0;
            loop {
                rounds += 1;
                let round = Instant::now();
                let mut problems = Vec::new();
                let mut timings = Vec::new();
                let mut seen = Vec::new();
                for node in &wiring.nodes {
                    let target = format!("{}:161", node.mgmt_ip);
                    match poll_router(&target, &wiring.community).await {
                        Ok(obs) => {
                            timings.push(format!(
                                "{} {:?} ({} requests, {} varbinds)",
                                node.name, obs.routing.duration, obs.routing.stats.requests, obs.routing.stats.varbinds
                            ));
                            problems.extend(mismatches(node, &wiring, &obs));
                            seen.push((node.name.clone(), obs));
                        }
                        Err(e) => problems.push(format!("{}: poll failed: {e}", node.name)),
                    }
                }
                problems.extend(chassis_mismatches(&seen));
                if problems.is_empty() {
                    return format!(
                        "converged view after {:?} ({rounds} round(s)); last round {:?}: {}",
                        started.elapsed(),
                        round.elapsed(),
                        timings.join(", ")
                    );
                }
                assert!(
                    started.elapsed() < CONVERGE_WITHIN,
                    "the lab's routing state does not match wiring.json after {CONVERGE_WITHIN:?}:\n{}",
                    problems.join("\n")
                );
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    });
    eprintln!("lab: {report}");
}
