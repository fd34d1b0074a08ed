//! The simulated SNMP agent against real peers: net-snmp's tools and netwarden's own poller see
//! exactly what the simulated MIB holds; wrong communities and garbage get silence, never a
//! crash; hundreds of devices run in one process.

use collector::ifmib::{self, CounterKind};
use collector::inventory::SnmpCredentials;
use collector::poll::poll_interfaces;
use collector::sim::codec::{self, RequestKind};
use collector::sim::{AgentConfig, BulkParams, Mib, SimAgent, bind_agents, device};
use collector::snmp::{ClientOptions, Oid, SnmpClient, SnmpError, Value};
use netwarden_tests::snmpd;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

fn oid(s: &str) -> Oid {
    s.parse().expect("test OID")
}

async fn start(mib: Mib, config: AgentConfig) -> SimAgent {
    SimAgent::bind(SocketAddr::new(LOCALHOST, 0), mib, config).await.expect("binding a simulated agent on 127.0.0.1")
}

fn client(target: &str, community: &str) -> SnmpClient {
    SnmpClient::new(
        target,
        SnmpCredentials::V2c { community: community.into() },
        ClientOptions { timeout: Duration::from_millis(1500), retries: 1, ..Default::default() },
    )
}

/// A value as net-snmp's tools print it, normalised like `snmpd::parse_net_snmp_output`.
fn net_snmp_form(v: &Value) -> (String, String) {
    let (t, s) = match v {
        Value::Integer(i) => ("INTEGER", i.to_string()),
        Value::OctetString(b) if b.iter().all(|c| c.is_ascii_graphic() || *c == b' ') => {
            ("STRING", String::from_utf8_lossy(b).into_owned())
        }
        Value::OctetString(b) => ("Hex-STRING", b.iter().map(|c| format!("{c:02X}")).collect::<Vec<_>>().join(" ")),
        Value::ObjectIdentifier(o) => ("OID", o.to_string()),
        Value::IpAddress(a) => ("IpAddress", format!("{}.{}.{}.{}", a[0], a[1], a[2], a[3])),
        Value::Counter32(c) => ("Counter32", c.to_string()),
        Value::Gauge32(g) => ("Gauge32", g.to_string()),
        Value::TimeTicks(t) => ("Timeticks", t.to_string()),
        Value::Counter64(c) => ("Counter64", c.to_string()),
        Value::NoSuchObject => ("NoSuchObject", String::new()),
        Value::NoSuchInstance => ("NoSuchInstance", String::new()),
        other => panic!("no net-snmp form for {other:?} in this test"),
    };
    (t.to_string(), s)
}

/// Checks net-snmp's varbinds against the MIB evaluated just before and just after the walk:
/// same OIDs in the same order, same types, fixed values equal, live values between the two.
fn assert_matches_mib(walked: &[(String, String, String)], before: &[(Oid, Value)], after: &[(Oid, Value)]) {
    // Walking the MIB's last subtree, the agent answers endOfMibView with the last OID asked
    // for, and snmpbulkwalk prints that varbind (as with a real net-snmp agent).
    let walked = match walked.split_last() {
        Some((end, rest)) if end.1 == "EndOfMibView" => {
            assert_eq!(end.0, before.last().expect("non-empty").0.to_string());
            rest
        }
        _ => walked,
    };
    assert_eq!(walked.len(), before.len(), "varbind count: net-snmp {} vs MIB {}", walked.len(), before.len());
    for ((w, b), a) in walked.iter().zip(before).zip(after) {
        assert_eq!(w.0, b.0.to_string(), "OID order");
        let (bt, bv) = net_snmp_form(&b.1);
        let (_, av) = net_snmp_form(&a.1);
        assert_eq!(w.1, bt, "type of {}", w.0);
        if bv == av {
            assert_eq!(w.2, bv, "value of {}", w.0);
        } else {
            let (lo, hi, got): (u64, u64, u64) = (bv.parse().unwrap(), av.parse().unwrap(), w.2.parse().unwrap());
            assert!(lo <= got && got <= hi, "{}: {got} not within [{lo}, {hi}]", w.0);
        }
    }
}

async fn walk_with_net_snmp(target: String, root: &'static str) -> Vec<(String, String, String)> {
    tokio::task::spawn_blocking(move || snmpd::snmpbulkwalk(&target, &snmpd::v2c_args(), root))
        .await
        .expect("snmpbulkwalk thread")
}

#[tokio::test]
async fn snmpbulkwalk_returns_exactly_what_the_mib_holds() {
    let agent = start(device::switch("leaf7", 48, 10_000), AgentConfig::default()).await;
    for root in [ifmib::IF_TABLE, ifmib::IF_X_TABLE, "1.3.6.1.2.1.1", "1.3.6.1.2.1"] {
        let before = agent.mib().read().subtree(&oid(root), tokio::time::Instant::now());
        let walked = walk_with_net_snmp(agent.target(), root).await;
        let after = agent.mib().read().subtree(&oid(root), tokio::time::Instant::now());
        assert_matches_mib(&walked, &before, &after);
    }
    assert_eq!(agent.stats().datagrams, agent.stats().responses);
    // ifTable: 48 rows × 22 columns, -Cr25 → 43 GETBULKs (and the system group etc. more).
    assert!(agent.stats().varbinds >= 48 * 22);
}

#[tokio::test]
async fn snmpget_answers_scalars_and_exceptions_like_net_snmp() {
    let agent = start(device::switch("leaf8", 4, 1_000), AgentConfig::default()).await;
    let target = agent.target();
    let got = tokio::task::spawn_blocking(move || {
        snmpd::snmpget(
            &target,
            &snmpd::v2c_args(),
            &[
                "1.3.6.1.2.1.1.5.0",
                "1.3.6.1.2.1.1.2.0",
                "1.3.6.1.2.1.1.99.0",
                "1.3.6.1.2.1.1.5.1",
                "1.3.6.1.2.1.2.2.1.5.4",
            ],
        )
    })
    .await
    .unwrap()
    .expect("snmpget answered");
    let want = [
        ("1.3.6.1.2.1.1.5.0", "STRING", "leaf8"),
        ("1.3.6.1.2.1.1.2.0", "OID", "1.3.6.1.4.1.99999.1.1"),
        ("1.3.6.1.2.1.1.99.0", "NoSuchObject", ""),
        ("1.3.6.1.2.1.1.5.1", "NoSuchInstance", ""),
        ("1.3.6.1.2.1.2.2.1.5.4", "Gauge32", "1000000000"),
    ];
    let want: Vec<(String, String, String)> =
        want.iter().map(|(a, b, c)| (a.to_string(), b.to_string(), c.to_string())).collect();
    assert_eq!(got, want);
}

#[tokio::test]
async fn the_poller_polls_a_48_port_switch_and_counters_advance() {
    let agent = start(device::switch("leaf9", 48, 10_000), AgentConfig::default()).await;
    let mut c = client(&agent.target(), "public");
    let first = poll_interfaces(&mut c).await.expect("first poll");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let second = poll_interfaces(&mut c).await.expect("second poll");
    for p in [&first, &second] {
        assert!(p.issues.is_empty(), "decode issues: {:?}", p.issues);
        assert_eq!(p.system.sys_name.as_deref(), Some("leaf9"));
        assert_eq!(p.interfaces.len(), 48);
        let names: Vec<String> = p.interfaces.iter().map(|r| r.key()).collect();
        assert_eq!(names, (1..=48).map(|i| format!("eth{i}")).collect::<Vec<_>>());
        assert!(p.interfaces.iter().all(|r| r.speed_bps == Some(10_000_000_000) && r.oper_status == Some(1)));
    }
    assert!(second.system.sys_uptime_ticks > first.system.sys_uptime_ticks);
    for (a, b) in first.interfaces.iter().zip(&second.interfaces) {
        for kind in [CounterKind::InOctets, CounterKind::OutOctets, CounterKind::InUcast] {
            let (x, y) = (a.counter(kind).expect("counter"), b.counter(kind).expect("counter"));
            assert_eq!(x.bits, 64, "HC counters preferred");
            assert!(y.value > x.value, "{} {kind:?}: {} then {}", a.key(), x.value, y.value);
        }
    }
    let stats = agent.stats();
    assert_eq!((stats.malformed, stats.bad_community), (0, 0));
    eprintln!("two polls of 48 ports: {} requests, {} varbinds", stats.responses, stats.varbinds);
}

#[tokio::test]
async fn a_wrong_community_gets_no_answer() {
    let agent = start(device::switch("leaf10", 2, 1_000), AgentConfig::default()).await;
    let mut c = SnmpClient::new(
        agent.target(),
        SnmpCredentials::V2c { community: "private".into() },
        ClientOptions { timeout: Duration::from_millis(300), retries: 1, ..Default::default() },
    );
    let err = poll_interfaces(&mut c).await.expect_err("no answer to a wrong community");
    assert!(matches!(err, SnmpError::Timeout { attempts: 2, .. }), "{err}");
    let target = agent.target();
    let net_snmp = tokio::task::spawn_blocking(move || {
        snmpd::snmpget(&target, &["-v2c", "-c", "private", "-t", "0.3", "-r", "0"], &["1.3.6.1.2.1.1.5.0"])
    })
    .await
    .unwrap();
    assert!(net_snmp.expect_err("net-snmp times out too").contains("Timeout"));
    let stats = agent.stats();
    assert_eq!((stats.bad_community, stats.responses), (3, 0));
}

#[tokio::test]
async fn garbage_is_dropped_and_counted_and_the_agent_keeps_answering() {
    let agent = start(device::switch("leaf11", 4, 1_000), AgentConfig::default()).await;
    let sock = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let get = codec::encode_request(b"public", RequestKind::Get, 77, &[oid("1.3.6.1.2.1.1.5.0")]);
    let mut v1 = get.clone();
    v1[4] = 0; // version 0: SNMPv1, not served
    let mut garbage: Vec<Vec<u8>> =
        vec![Vec::new(), vec![0x30], vec![0x30, 0x82, 0xff, 0xff, 0x02], get[..get.len() - 3].to_vec()];
    let mut x: u32 = 0x9e37_79b9;
    for len in [3usize, 17, 64, 200, 1400] {
        let mut b = Vec::with_capacity(len);
        for _ in 0..len {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            b.push(x as u8);
        }
        garbage.push(b);
    }
    for g in &garbage {
        sock.send_to(g, agent.local_addr()).await.unwrap();
    }
    sock.send_to(&v1, agent.local_addr()).await.unwrap();
    sock.send_to(&get, agent.local_addr()).await.unwrap();
    let mut buf = vec![0u8; 65_536];
    let (n, _) = tokio::time::timeout(Duration::from_secs(2), sock.recv_from(&mut buf)).await.expect("answer").unwrap();
    let r = codec::decode_response(&buf[..n]).expect("decodes");
    assert_eq!((r.req_id, r.varbinds), (77, vec![(oid("1.3.6.1.2.1.1.5.0"), Value::OctetString(b"leaf11".to_vec()))]));
    let stats = agent.stats();
    assert_eq!(stats.malformed, garbage.len() as u64);
    assert_eq!((stats.unsupported, stats.responses), (1, 1));
    // And the poller still gets a full poll.
    let p = poll_interfaces(&mut client(&agent.target(), "public")).await.expect("poll after garbage");
    assert_eq!(p.interfaces.len(), 4);
}

/// Sends a raw request and returns the request-ids of the answers in arrival order.
async fn send_raw(sock: &UdpSocket, to: SocketAddr, req_id: i32, oids: &[Oid]) {
    let d = codec::encode_request(b"public", RequestKind::Get, req_id, oids);
    sock.send_to(&d, to).await.unwrap();
}

async fn answers(sock: &UdpSocket, wait: Duration) -> Vec<(i32, usize)> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 65_536];
    while let Ok(Ok((n, _))) = tokio::time::timeout(wait, sock.recv_from(&mut buf)).await {
        let r = codec::decode_response(&buf[..n]).expect("decodes");
        out.push((r.req_id, r.varbinds.len()));
    }
    out
}

#[tokio::test]
async fn latency_grows_with_varbinds_without_blocking_other_requests() {
    let config =
        AgentConfig { latency_per_varbind: Duration::from_millis(100), max_in_flight: 2, ..Default::default() };
    let agent = start(device::switch("slow1", 8, 1_000), config).await;
    let sock = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let ten: Vec<Oid> = (1..=8)
        .map(|i| oid("1.3.6.1.2.1.2.2.1.2").child(&[i]))
        .chain([oid("1.3.6.1.2.1.1.5.0"), oid("1.3.6.1.2.1.1.3.0")])
        .collect();
    // 10 varbinds (1 s) first, then 1 varbind (100 ms): the small one overtakes.
    send_raw(&sock, agent.local_addr(), 1, &ten).await;
    send_raw(&sock, agent.local_addr(), 2, &ten[..1]).await;
    // Both slots are taken: the third is dropped, as by an overloaded agent.
    send_raw(&sock, agent.local_addr(), 3, &ten[..1]).await;
    let got = answers(&sock, Duration::from_millis(2500)).await;
    assert_eq!(got, vec![(2, 1), (1, 10)]);
    assert_eq!(agent.stats().overloaded, 1);
    // Slots are free again afterwards.
    send_raw(&sock, agent.local_addr(), 4, &ten[..1]).await;
    assert_eq!(answers(&sock, Duration::from_millis(1000)).await, vec![(4, 1)]);
}

#[tokio::test]
async fn devices_can_share_a_port_on_different_loopback_addresses() {
    // 127.0.0.0/8 is all local on Linux: a fabric can give each device its own address and the
    // standard port layout, with no set-up.
    let first =
        SimAgent::bind("127.0.0.2:0".parse().unwrap(), device::switch("addr2", 2, 1_000), AgentConfig::default())
            .await
            .expect("bind 127.0.0.2");
    let port = first.local_addr().port();
    let mut agents = vec![first];
    for i in 3..=5u8 {
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 0, i)), port);
        agents.push(
            SimAgent::bind(addr, device::switch(&format!("addr{i}"), 2, 1_000), AgentConfig::default())
                .await
                .expect("bind"),
        );
    }
    for (a, i) in agents.iter().zip(2..) {
        assert_eq!(a.local_addr().port(), port);
        let p = poll_interfaces(&mut client(&a.target(), "public")).await.expect("poll");
        assert_eq!(p.system.sys_name, Some(format!("addr{i}")));
    }
}

#[tokio::test]
async fn getbulk_stops_at_the_end_of_the_mib_and_at_max_repetitions() {
    let agent = start(device::switch("leaf12", 2, 1_000), AgentConfig::default()).await;
    let sock = UdpSocket::bind((LOCALHOST, 0)).await.unwrap();
    let bulk = |n, m| RequestKind::GetBulk(BulkParams { non_repeaters: n, max_repetitions: m });
    let last = agent.mib().read().snapshot(tokio::time::Instant::now()).last().unwrap().0.clone();
    for (req_id, kind, oids, want) in [
        (1, bulk(0, 7), vec![oid("1.3.6.1.2.1.2.2.1.2")], 7),
        (2, bulk(1, 3), vec![oid("1.3.6.1.2.1.1.3"), oid("1.3.6.1.2.1.2.2.1.2"), oid("1.3.6.1.2.1.2.2.1.10")], 7),
        // From the last OID: one row of endOfMibView, then stop (not 50 rows of it).
        (3, bulk(0, 50), vec![last.clone()], 1),
    ] {
        sock.send_to(&codec::encode_request(b"public", kind, req_id, &oids), agent.local_addr()).await.unwrap();
        assert_eq!(answers(&sock, Duration::from_millis(500)).await, vec![(req_id, want)]);
    }
}

fn rss_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_devices_in_one_process_are_polled_at_once() {
    const DEVICES: usize = 500;
    let rss_before = rss_bytes();
    let started = Instant::now();
    let mibs = device::switches(DEVICES, 48, 10_000, |i| format!("sim{i:04}"));
    let agents = bind_agents(LOCALHOST, 0, mibs, &AgentConfig::default()).await.expect("500 agents");
    let setup = started.elapsed();
    let rss_agents = rss_bytes().saturating_sub(rss_before);
    let started = Instant::now();
    let mut polls = tokio::task::JoinSet::new();
    for (i, a) in agents.iter().enumerate() {
        let target = a.target();
        polls.spawn(async move {
            let mut c = SnmpClient::new(
                target,
                SnmpCredentials::V2c { community: "public".into() },
                ClientOptions { timeout: Duration::from_secs(5), retries: 2, ..Default::default() },
            );
            (i, poll_interfaces(&mut c).await)
        });
    }
    let mut ok = 0;
    while let Some(r) = polls.join_next().await {
        let (i, poll) = r.expect("poll task");
        let poll = poll.unwrap_or_else(|e| panic!("device {i}: {e}"));
        assert!(poll.issues.is_empty(), "device {i}: {:?}", poll.issues);
        assert_eq!(poll.system.sys_name, Some(format!("sim{i:04}")));
        assert_eq!(poll.interfaces.len(), 48);
        ok += 1;
    }
    let elapsed = started.elapsed();
    assert_eq!(ok, DEVICES);
    let (requests, varbinds) =
        agents.iter().fold((0, 0), |(r, v), a| (r + a.stats().responses, v + a.stats().varbinds));
    eprintln!(
        "{DEVICES} simulated 48-port devices: started in {setup:?} (process RSS +{} MiB, other tests run alongside); all polled concurrently in {elapsed:?}: \
         {requests} requests ({:.0}/s), {varbinds} varbinds ({:.0}/s), poller and agents sharing 2 threads",
        rss_agents >> 20,
        requests as f64 / elapsed.as_secs_f64(),
        varbinds as f64 / elapsed.as_secs_f64()
    );
}
