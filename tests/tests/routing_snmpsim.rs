//! Routing and topology decoding against real vendors' agents replayed by snmpsim: the OSPF, LLDP and CDP
//! tables of Arista, Juniper, Cisco NX-OS, HPE ProCurve and H3C recordings decode without issues into plausible
//! neighbours, with every LLDP local port tied by its port ID to an interface the device has.
//!
//! No recording has a BGP peer table (shared/reference/lab.md §1); BGP decoding is covered by the unit tests'
//! fixtures and by routing_lab.rs.

use collector::inventory::SnmpCredentials;
use collector::routing::{LinkProtocol, OspfIfState, OspfNbrState, PortMatch};
use collector::snmp::{ClientOptions, SnmpClient};
use netwarden_tests::snmpsim::Snmpsim;
use std::collections::BTreeSet;
use std::net::Ipv4Addr;
use std::time::Duration;

/// A recording and the rows it holds (counted in the .snmprec files; lab.md Appendix A).
struct Expect {
    recording: &'static str,
    ospf_neighbors: usize,
    lldp: usize,
    cdp: usize,
}

const DEVICES: [Expect; 5] = [
    Expect { recording: "cloud/arista-dcs-7150s-52-cl", ospf_neighbors: 1, lldp: 2, cdp: 0 },
    Expect { recording: "network/router/juniper-mx960-16-1r6-7-b", ospf_neighbors: 2, lldp: 22, cdp: 0 },
    Expect { recording: "network/switch/cisco-n5000-uk9", ospf_neighbors: 0, lldp: 11, cdp: 5 },
    Expect { recording: "network/switch/hpe-procurve-516733-b21", ospf_neighbors: 0, lldp: 5, cdp: 5 },
    Expect { recording: "network/switch/h3c-comware-7-1-075", ospf_neighbors: 7, lldp: 0, cdp: 0 },
];

#[tokio::test]
async fn vendor_tables_decode_into_plausible_neighbours() {
    let names: Vec<&str> = DEVICES.iter().map(|d| d.recording).collect();
    let sim = Snmpsim::start(&names);
    for want in &DEVICES {
        let name = want.recording;
        let creds = SnmpCredentials::V2c { community: sim.community().to_string() };
        let opts = ClientOptions { timeout: Duration::from_secs(5), retries: 1, ..Default::default() };
        let mut client = SnmpClient::new(sim.target(name), creds, opts);
        let dev = collector::poll::poll_interfaces(&mut client).await.unwrap_or_else(|e| panic!("{name}: {e}"));
        let r = collector::routing::poll_routing(&mut client, &dev.interfaces)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        eprintln!(
            "{name}: {} OSPF neighbours, {} OSPF interfaces, {} link neighbours in {:?} ({} requests, {} varbinds)",
            r.ospf_neighbors.len(),
            r.ospf_interfaces.len(),
            r.neighbors.len(),
            r.duration,
            r.stats.requests,
            r.stats.varbinds
        );
        let issues: Vec<String> = r.issues.iter().map(ToString::to_string).collect();
        assert!(issues.is_empty(), "{name}: {issues:#?}");
        assert!(r.bgp.is_empty(), "{name}: no recording has BGP peers: {:?}", r.bgp);
        let if_indexes: BTreeSet<u32> = dev.interfaces.iter().map(|i| i.if_index).collect();

        assert_eq!(r.ospf_neighbors.len(), want.ospf_neighbors, "{name}: {:#?}", r.ospf_neighbors);
        for n in &r.ospf_neighbors {
            assert!(!matches!(n.state, OspfNbrState::Unknown(_)), "{name}: {n:?}");
            assert!(!n.router_id.is_unspecified() && !n.addr.is_unspecified(), "{name}: {n:?}");
            assert!(
                n.if_index.is_none_or(|i| if_indexes.contains(&i)),
                "{name}: {n:?} on an interface the device lacks"
            );
        }
        if want.ospf_neighbors > 0 {
            assert!(r.router_id.is_some_and(|id| id != Ipv4Addr::UNSPECIFIED), "{name}: router ID {:?}", r.router_id);
            assert!(!r.ospf_interfaces.is_empty(), "{name}: neighbours but no OSPF interfaces");
        }
        for i in &r.ospf_interfaces {
            assert!(!matches!(i.state, OspfIfState::Unknown(_)), "{name}: {i:?}");
            assert!(
                i.if_index.is_none_or(|x| if_indexes.contains(&x)),
                "{name}: {i:?} on an interface the device lacks"
            );
        }

        if want.lldp > 0 {
            let own = r.local_chassis_id.as_deref().unwrap_or_else(|| panic!("{name}: no lldpLocChassisId"));
            assert!(
                own.len() == 17 && own.chars().filter(|&c| c == ':').count() == 5,
                "{name}: chassis {own} is no MAC"
            );
        }
        let count = |p: LinkProtocol| r.neighbors.iter().filter(|n| n.protocol == p).count();
        assert_eq!(
            (count(LinkProtocol::Lldp), count(LinkProtocol::Cdp)),
            (want.lldp, want.cdp),
            "{name}: {:#?}",
            r.neighbors
        );
        for n in &r.neighbors {
            assert!(!n.chassis_id.is_empty(), "{name}: {n:?}");
            assert!(!n.port_id.is_empty() || n.protocol == LinkProtocol::Cdp, "{name}: {n:?}");
            let local =
                n.local_if_index.unwrap_or_else(|| panic!("{name}: local port not tied to an interface: {n:?}"));
            assert!(if_indexes.contains(&local), "{name}: {n:?} on ifIndex {local}, which the device lacks");
            assert!(n.local_if_name.is_some(), "{name}: {n:?}");
            // Every recording names its LLDP ports (by name, MAC text, or ifIndex text): no guessing needed.
            let how = if n.protocol == LinkProtocol::Lldp { PortMatch::PortId } else { PortMatch::IfIndex };
            assert_eq!(n.local_port_match, Some(how), "{name}: {n:?}");
        }
    }
}
