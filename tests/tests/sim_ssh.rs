//! SSH and traps on the simulated fabric, driven by netwarden's own code: the session manager backs
//! up a simulated device's running configuration and applies configuration lines to it (the change
//! shows in what the SNMP agents report at both ends of the link; an invalid line fails the apply),
//! and the trap receiver classifies the notifications the simulator sends when faults or CLI
//! changes alter a device's state.

use collector::configs::{BackupTrigger, backup, store as cstore};
use collector::db::BackendChoice;
use collector::inventory::{self, Device, ImportMode, SnmpCredentials};
use collector::poll::{DevicePoll, poll_device};
use collector::routing::BgpState;
use collector::scheduler::ScheduledDevice;
use collector::secrets::SecretBox;
use collector::sim::{AgentConfig, Fabric, FabricModel, Fault, SimSsh, SimSshConfig};
use collector::snmp::{ClientOptions, SnmpClient};
use collector::ssh::{ApplyError, ApplyOptions, ApplyStage, Profiles, Session, SshManager, SshOptions, SshTarget};
use collector::trap::{TrapEvent, TrapHooks, TrapKind, TrapStats};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// A fabric whose agents are served on loopback.
async fn served(spec: &str) -> Fabric {
    let mut fabric = Fabric::build(FabricModel::build(&spec.parse().expect("spec")).expect("fabric model"));
    fabric.serve(LOCALHOST, 0, &AgentConfig::default()).await.expect("binding the fabric's agents on 127.0.0.1");
    fabric
}

/// SSH on every device of a served fabric.
async fn with_ssh(fabric: Fabric) -> (Arc<Fabric>, SimSsh) {
    with_ssh_limit(fabric, 8).await
}

/// SSH on every device, at most `max_connections` sessions at once.
async fn with_ssh_limit(fabric: Fabric, max_connections: usize) -> (Arc<Fabric>, SimSsh) {
    let fabric = Arc::new(fabric);
    let ssh = SimSsh::bind(Arc::clone(&fabric), SimSshConfig { max_connections, ..Default::default() })
        .await
        .expect("binding the devices' ssh on 127.0.0.1");
    (fabric, ssh)
}

fn opts() -> SshOptions {
    SshOptions {
        connect_timeout: Duration::from_secs(10),
        command_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(60),
        ..SshOptions::default()
    }
}

async fn poll(fabric: &Fabric, device: &str) -> DevicePoll {
    let mut client = SnmpClient::new(
        fabric.target(device).expect("served device"),
        SnmpCredentials::V2c { community: "public".into() },
        ClientOptions { timeout: Duration::from_secs(2), retries: 2, ..Default::default() },
    );
    let p = poll_device(&mut client).await.unwrap_or_else(|e| panic!("polling {device}: {e}"));
    assert!(p.issues.is_empty(), "{device}: {:?}", p.issues);
    p
}

/// (ifAdminStatus, ifOperStatus) of a port and the BGP state of a peer, as netwarden's poller sees them.
async fn seen(fabric: &Fabric, device: &str, if_name: &str, peer: &str) -> ((Option<i16>, Option<i16>), BgpState) {
    let p = poll(fabric, device).await;
    let row = p.interfaces.iter().find(|r| r.name.as_deref() == Some(if_name)).expect("interface");
    let routing = p.routing.as_ref().expect("routing polled");
    let peer = routing.bgp.iter().find(|b| b.peer_addr.to_string() == peer).expect("BGP peer");
    ((row.admin_status, row.oper_status), peer.state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netwarden_backs_up_and_changes_a_simulated_device_over_ssh() {
    let (fabric, ssh) = with_ssh(served("spines=2,leaves=2,ports=6").await).await;
    let devices = fabric.inventory("sim", "public");
    let leaf = devices.iter().find(|d| d.name == "leaf001").expect("leaf001 in the inventory");
    let login = leaf.ssh.as_ref().expect("the inventory carries the ssh login");
    assert_eq!((login.user.as_str(), login.port), ("netwarden", ssh.addrs()[2].port()));
    assert_eq!(
        Profiles::builtin().for_device(leaf.platform.as_deref(), leaf.vendor.as_deref()).unwrap().name,
        "netwarden-sim"
    );

    // The inventory as `netwarden inventory import` stores it, in a fresh database.
    let tdb = netwarden_tests::pg::fresh_db();
    let mut client = tdb.connect().await;
    collector::db::migrate(&mut client, BackendChoice::Auto).await.expect("migrate");
    let secrets = SecretBox::from_key(&[7u8; 32]);
    inventory::store::import(&mut client, &secrets, &devices, ImportMode::Merge).await.expect("import");
    let stored = inventory::store::list(&client, &secrets).await.expect("list");
    let leaf: Device = stored.into_iter().find(|d| d.name == "leaf001").expect("stored leaf001");
    let pool = collector::db::connect(&tdb.connection_string, 4).await.expect("pool");
    let manager = SshManager::new(pool.clone(), Arc::new(Profiles::builtin()), opts());

    let first = backup::backup_device(&manager, &leaf, BackupTrigger::Manual).await.expect("backup of leaf001");
    let id = leaf.id.unwrap();
    let snap = cstore::snapshot(&client, id, first.recorded.snapshot_id).await.unwrap().expect("snapshot");
    for line in
        ["hostname leaf001", "interface eth1", " description to spine1 eth1", " neighbor 10.128.0.0 remote-as 65000"]
    {
        assert!(snap.content.lines().any(|l| l == line), "{line:?} missing from\n{}", snap.content);
    }
    assert!(!snap.content.contains("Current configuration"), "volatile lines are dropped");

    // Show commands and a change through the same lease.
    let mut s = manager.session(&leaf).await.expect("session to leaf001");
    let out = s.run_show(&["show ip bgp summary", "show interfaces"]).await.expect("show commands");
    assert!(out.iter().all(|o| o.error.is_none()), "{out:?}");
    assert!(out[0].output.contains("local AS number 65001"), "{}", out[0].output);
    s.apply_config(&["interface eth1", "shutdown"], &ApplyOptions { save: true, ..Default::default() })
        .await
        .expect("shutting eth1");
    drop(s);
    assert_eq!(seen(&fabric, "leaf001", "eth1", "10.128.0.0").await, ((Some(2), Some(2)), BgpState::Active));
    // spine1's port 1 faces leaf001: oper down, admin still up; its session idles in Active.
    assert_eq!(seen(&fabric, "spine1", "eth1", "10.128.0.1").await, ((Some(1), Some(2)), BgpState::Active));

    let second = backup::backup_device(&manager, &leaf, BackupTrigger::Change).await.expect("second backup");
    assert!(second.recorded.changed, "the shutdown is a configuration change");
    let snap = cstore::snapshot(&client, id, second.recorded.snapshot_id).await.unwrap().unwrap();
    assert!(snap.content.contains("interface eth1\n description to spine1 eth1\n shutdown\n"), "{}", snap.content);

    // An invalid line fails the apply; the lines before it are in effect, configuration mode is left.
    let mut s = manager.session(&leaf).await.expect("session");
    let err = s
        .apply_config(&["interface eth2", "description under test", "frobnicate now"], &ApplyOptions::default())
        .await
        .expect_err("an invalid line must fail the apply");
    match err {
        ApplyError::Rejected { stage, message, lines_in_effect, aborted, .. } => {
            assert_eq!(stage, ApplyStage::Line { number: 3, line: "frobnicate now".into() });
            assert_eq!(message, "% Invalid input detected at '^' marker.");
            assert_eq!((lines_in_effect, aborted), (2, true));
        }
        other => panic!("expected a rejected line, got {other}"),
    }
    s.apply_config(&["interface eth1", "no shutdown"], &ApplyOptions::default()).await.expect("undo");
    drop(s);
    assert_eq!(seen(&fabric, "leaf001", "eth1", "10.128.0.0").await, ((Some(1), Some(1)), BgpState::Established));
    assert_eq!(seen(&fabric, "spine1", "eth1", "10.128.0.1").await, ((Some(1), Some(1)), BgpState::Established));
    let p = poll(&fabric, "leaf001").await;
    let eth2 = p.interfaces.iter().find(|r| r.name.as_deref() == Some("eth2")).unwrap();
    assert_eq!(eth2.alias.as_deref(), Some("under test"), "ifAlias follows `description`");

    // BGP neighbor shutdown: Idle on the side that shut it, Active on the other.
    let mut s = manager.session(&leaf).await.expect("session");
    s.apply_config(&["router bgp 65001", "neighbor 10.128.0.4 shutdown"], &ApplyOptions::default())
        .await
        .expect("neighbor shutdown");
    drop(s);
    assert_eq!(seen(&fabric, "leaf001", "eth2", "10.128.0.4").await.1, BgpState::Idle);
    assert_eq!(seen(&fabric, "spine2", "eth1", "10.128.0.5").await.1, BgpState::Active);
    manager.close_idle().await;
    pool.close();
    ssh.shutdown().await;
}

/// The trap receiver, started as tests/tests/traps.rs does, knowing the fabric's devices.
struct Receiver {
    addr: SocketAddr,
    events: mpsc::Receiver<TrapEvent>,
    stats: Arc<TrapStats>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(devices: Vec<ScheduledDevice>) -> Receiver {
        let socket = collector::trap::bind("127.0.0.1:0").await.expect("binding the trap receiver");
        let addr = socket.local_addr().unwrap();
        let (tx, events) = mpsc::channel(256);
        let (_devices, rx) = watch::channel(devices);
        let stats = Arc::new(TrapStats::default());
        let cancel = CancellationToken::new();
        let hooks = TrapHooks { events: Some(tx), poll_now: None };
        let task = tokio::spawn(collector::trap::run(socket, rx, hooks, stats.clone(), cancel.clone()));
        Receiver { addr, events, stats, cancel, task }
    }

    /// The next `n` events' kinds (as a set: two devices' traps may interleave).
    async fn kinds(&mut self, what: &str, n: usize) -> (BTreeSet<String>, Vec<TrapEvent>) {
        let mut events = Vec::new();
        while events.len() < n {
            match tokio::time::timeout(Duration::from_secs(10), self.events.recv()).await {
                Ok(Some(e)) => events.push(e),
                Ok(None) => panic!("{what}: the receiver's event channel closed"),
                Err(_) => panic!(
                    "{what}: {} of {n} traps within 10 s: {events:?}; counts {:?}",
                    events.len(),
                    self.stats.snapshot()
                ),
            }
        }
        (events.iter().map(|e| format!("{:?}", e.kind)).collect(), events)
    }

    async fn stop(self) {
        self.cancel.cancel();
        self.task.await.expect("receiver task");
    }
}

fn set(kinds: &[TrapKind]) -> BTreeSet<String> {
    kinds.iter().map(|k| format!("{k:?}")).collect()
}

fn peer(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_receiver_classifies_the_simulators_traps() {
    // The receiver knows the fabric's devices (by agent address and community) before the first trap.
    let mut fabric = served("spines=2,leaves=2,ports=6").await;
    let scheduled = |devices: Vec<Device>| -> Vec<ScheduledDevice> {
        let with_id = |(i, mut device): (usize, Device)| {
            device.id = Some(i as i64 + 1);
            ScheduledDevice { id: i as i64 + 1, device }
        };
        devices.into_iter().enumerate().map(with_id).collect()
    };
    let mut r = Receiver::start(scheduled(fabric.inventory("sim", "public"))).await;
    fabric.send_traps(vec![r.addr], "public").expect("trap sockets on 127.0.0.1");
    let (fabric, ssh) = with_ssh(fabric).await;
    let devices = scheduled(fabric.inventory("sim", "public"));
    use TrapKind::*;

    // A cable fault: both ends' linkDown and BGP backward transitions.
    fabric.inject(&Fault::LinkDown { a: "leaf001".into(), b: "spine1".into() }).unwrap();
    let (kinds, events) = r.kinds("link-down", 4).await;
    assert_eq!(
        kinds,
        set(&[
            LinkDown { if_index: Some(1) },
            BgpBackwardTransition { peer: peer("10.128.0.0") },
            BgpBackwardTransition { peer: peer("10.128.0.1") },
        ]),
        "spine1 port 1 and leaf001 port 1 both went down ({} traps)",
        events.len()
    );
    let down = events.iter().find(|e| matches!(e.kind, LinkDown { .. })).unwrap();
    assert_eq!(down.source.ip(), LOCALHOST, "sent from the agents' address");
    assert!(down.varbinds.contains(&"1.3.6.1.2.1.2.2.1.8.1 = INTEGER: 2".to_string()), "{:?}", down.varbinds);
    fabric.clear(&Fault::LinkDown { a: "leaf001".into(), b: "spine1".into() }).unwrap();
    let (kinds, _) = r.kinds("link-up", 4).await;
    assert_eq!(
        kinds,
        set(&[
            LinkUp { if_index: Some(1) },
            BgpEstablished { peer: peer("10.128.0.0") },
            BgpEstablished { peer: peer("10.128.0.1") },
        ])
    );

    // A reboot: coldStart from the device, its peers' sessions flap.
    fabric.inject(&Fault::Reboot { device: "leaf002".into() }).unwrap();
    let (kinds, _) = r.kinds("reboot", 5).await;
    assert_eq!(
        kinds,
        set(&[
            ColdStart,
            BgpBackwardTransition { peer: peer("10.128.0.3") },
            BgpEstablished { peer: peer("10.128.0.3") },
            BgpBackwardTransition { peer: peer("10.128.0.7") },
            BgpEstablished { peer: peer("10.128.0.7") },
        ])
    );

    // A CLI change made with netwarden's session: the port's admin status is in the linkDown trap.
    let leaf = devices.iter().find(|d| d.device.name == "leaf001").unwrap().device.clone();
    let target = SshTarget::from_device(&leaf, &Profiles::builtin()).expect("ssh target");
    let mut s = Session::open(&target, None, &opts()).await.expect("session to leaf001");
    s.apply_config(&["interface eth2", "shutdown"], &ApplyOptions::default()).await.expect("shutdown");
    let (kinds, events) = r.kinds("cli shutdown", 4).await;
    assert_eq!(
        kinds,
        set(&[
            LinkDown { if_index: Some(2) },
            LinkDown { if_index: Some(1) },
            BgpBackwardTransition { peer: peer("10.128.0.4") },
            BgpBackwardTransition { peer: peer("10.128.0.5") },
        ])
    );
    let admin_down = "1.3.6.1.2.1.2.2.1.7.2 = INTEGER: 2".to_string();
    assert!(events.iter().any(|e| e.varbinds.contains(&admin_down)), "leaf001's trap says eth2 is admin down");
    s.apply_config(&["interface eth2", "no shutdown"], &ApplyOptions::default()).await.expect("no shutdown");
    let (kinds, _) = r.kinds("cli no shutdown", 4).await;
    assert!(kinds.contains(&format!("{:?}", LinkUp { if_index: Some(2) })), "{kinds:?}");
    s.close().await;

    // A device whose agent is down sends nothing; when it answers again it sends coldStart.
    fabric.inject(&Fault::DeviceDown { device: "leaf002".into() }).unwrap();
    fabric.inject(&Fault::LinkDown { a: "leaf002".into(), b: "spine1".into() }).unwrap();
    fabric.clear(&Fault::DeviceDown { device: "leaf002".into() }).unwrap();
    let (_, events) = r.kinds("device-down, link-down, device-up", 3).await;
    let kinds: Vec<TrapKind> = events.into_iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [LinkDown { if_index: Some(2) }, BgpBackwardTransition { peer: peer("10.128.0.3") }, ColdStart],
        "only spine1's traps while leaf002's agent was down, then leaf002's coldStart"
    );
    assert_eq!(r.stats.snapshot().unknown_kind, 0);
    assert_eq!(fabric.trap_sender().unwrap().counts().failed, 0);
    r.stop().await;
    ssh.shutdown().await;
}

fn target(fabric: &Fabric, device: &str) -> SshTarget {
    let d = fabric.inventory("sim", "public").into_iter().find(|d| d.name == device).expect("device");
    SshTarget::from_device(&d, &Profiles::builtin()).expect("ssh target")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_run_concurrently_across_devices_up_to_the_fabric_limit() {
    let (fabric, ssh) = with_ssh_limit(served("spines=2,leaves=2,ports=4").await, 3).await;
    let open = |device: &'static str| {
        let target = target(&fabric, device);
        tokio::spawn(async move {
            let mut s = Session::open(&target, None, &opts()).await.unwrap_or_else(|e| panic!("{device}: {e}"));
            let out = s.run_show(&["show ip bgp summary"]).await.expect("show");
            assert!(out[0].output.contains("BGP router identifier"), "{device}: {:?}", out[0]);
            s
        })
    };
    let (a, b, c) = tokio::join!(open("spine1"), open("spine2"), open("leaf001"));
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
    assert_eq!(
        [a.prompt(), b.prompt(), c.prompt()],
        ["spine1#", "spine2#", "leaf001#"],
        "three devices' sessions open at once"
    );

    // A fourth connection is over the fabric's limit: closed at once, and counted.
    let err = Session::open(&target(&fabric, "leaf002"), None, &opts()).await.expect_err("over the limit");
    assert!(err.is_transient(), "a closed connection is worth retrying: {err}");
    assert_eq!(ssh.connection_counts(), (3, 1));

    // Once a session ends its slot is free again (the server notices the disconnect shortly after).
    a.close().await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let d = loop {
        match Session::open(&target(&fabric, "leaf002"), None, &opts()).await {
            Ok(s) => break s,
            Err(e) if tokio::time::Instant::now() < deadline => {
                assert!(e.is_transient(), "{e}");
                // The poll interval of this loop, not a wait for something to have happened.
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("no free slot within 10 s of closing a session: {e}"),
        }
    };
    assert_eq!(d.prompt(), "leaf002#");
    for s in [b, c, d] {
        s.close().await;
    }
    ssh.shutdown().await;
}
