//! The SNMP trap receiver against net-snmp's own senders (`snmptrap`, `snmpinform`): v1, v2c, v2c informs and
//! v3 authPriv/authNoPriv traps become events of the inventory device they came from; wrong communities,
//! unknown sources, unknown notifications and undecodable datagrams are counted; and end to end, a linkDown
//! trap makes the scheduler poll its device at once instead of at its next interval.

use collector::db::{self, BackendChoice};
use collector::inventory::{AuthProtocol, Device, PrivProtocol, SnmpCredentials, SnmpV3Credentials, store};
use collector::observe::{Outcome, PollNow, SchedulerHooks};
use collector::scheduler::{self, ScheduledDevice, SchedulerOptions, SchedulerStats};
use collector::secrets::SecretBox;
use collector::snmp::ClientOptions;
use collector::store::{SampleWriter, WriterOptions};
use collector::trap::{TrapCounts, TrapEvent, TrapHooks, TrapKind, TrapStats, TrapVersion};
use netwarden_tests::{pg, snmpd::Snmpd, util};
use std::net::SocketAddr;
use std::process::Output;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

const SNMPTRAP: &str = "/usr/bin/snmptrap";
const SNMPINFORM: &str = "/usr/bin/snmpinform";
/// The sender's engineID for v3 traps (`snmptrap -e`): the receiver localizes the user's keys to it.
const ENGINE: &str = "0x80000000010203040506";
const LINK_DOWN: &str = "1.3.6.1.6.3.1.1.5.3";

fn device(name: &str, host: &str, port: u16, snmp: SnmpCredentials, interval: Duration) -> Device {
    Device {
        id: None,
        name: name.into(),
        host: host.into(),
        snmp_port: port,
        site: None,
        role: None,
        vendor: None,
        platform: None,
        tags: vec![],
        snmp,
        ssh: None,
        poll_interval: Some(interval),
        backup_interval: None,
    }
}

fn scheduled(id: i64, name: &str, host: &str, snmp: SnmpCredentials) -> ScheduledDevice {
    let mut d = device(name, host, 161, snmp, Duration::from_secs(3600));
    d.id = Some(id);
    ScheduledDevice { id, device: d }
}

fn v2c(community: &str) -> SnmpCredentials {
    SnmpCredentials::V2c { community: community.into() }
}

fn v3(user: &str, auth: AuthProtocol, privacy: Option<PrivProtocol>) -> SnmpCredentials {
    SnmpCredentials::V3(SnmpV3Credentials {
        user: user.into(),
        auth: Some((auth, "authpass123".into())),
        privacy: privacy.map(|p| (p, "privpass123".into())),
        context: None,
    })
}

/// A running receiver on 127.0.0.1 and what it reports.
struct Receiver {
    addr: SocketAddr,
    events: mpsc::Receiver<TrapEvent>,
    stats: Arc<TrapStats>,
    devices: watch::Sender<Vec<ScheduledDevice>>,
    cancel: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    async fn start(devices: Vec<ScheduledDevice>, poll_now: Option<Arc<PollNow>>) -> Receiver {
        let socket = collector::trap::bind("127.0.0.1:0").await.expect("binding the trap receiver");
        let addr = socket.local_addr().unwrap();
        let (tx, events) = mpsc::channel(64);
        let (devices, rx) = watch::channel(devices);
        let stats = Arc::new(TrapStats::default());
        let cancel = CancellationToken::new();
        let hooks = TrapHooks { events: Some(tx), poll_now };
        let task = tokio::spawn(collector::trap::run(socket, rx, hooks, stats.clone(), cancel.clone()));
        Receiver { addr, events, stats, devices, cancel, task }
    }

    fn target(&self) -> String {
        self.addr.to_string()
    }

    async fn next_event(&mut self, what: &str) -> TrapEvent {
        match tokio::time::timeout(Duration::from_secs(10), self.events.recv()).await {
            Ok(Some(e)) => e,
            Ok(None) => panic!("{what}: the receiver's event channel closed"),
            Err(_) => panic!("{what}: no trap event within 10 s; receiver counts {:?}", self.stats.snapshot()),
        }
    }

    /// Waits (bounded) until the counts satisfy `done`.
    async fn wait_counts(&self, what: &str, done: impl Fn(&TrapCounts) -> bool) -> TrapCounts {
        for _ in 0..100 {
            let c = self.stats.snapshot();
            if done(&c) {
                return c;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{what}: not counted within 10 s; receiver counts {:?}", self.stats.snapshot());
    }

    fn assert_no_event(&mut self, what: &str) {
        if let Ok(e) = self.events.try_recv() {
            panic!("{what}: expected no event, got {e:?}");
        }
    }

    async fn stop(self) {
        self.cancel.cancel();
        self.task.await.expect("receiver task");
    }
}

/// Runs a net-snmp client (bounded to 30 s) with no system configuration and a private persistent dir.
async fn net_snmp(program: &str, args: &[&str]) -> Output {
    util::require_program(program, "snmp");
    let dir = tempfile::tempdir().unwrap();
    let run = tokio::process::Command::new(program)
        .args(args)
        .env("MIBS", "")
        .env("SNMPCONFPATH", dir.path())
        .env("SNMP_PERSISTENT_DIR", dir.path())
        .kill_on_drop(true)
        .output();
    match tokio::time::timeout(Duration::from_secs(30), run).await {
        Ok(out) => out.unwrap_or_else(|e| panic!("running {program}: {e}")),
        Err(_) => panic!("{program} {args:?} did not finish within 30 s"),
    }
}

/// `snmptrap` that must succeed (sending a trap always does, unless the arguments are wrong).
async fn snmptrap(args: &[&str]) {
    let out = net_snmp(SNMPTRAP, args).await;
    assert!(out.status.success(), "snmptrap {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

fn v3_args<'a>(user: &'a str, auth: &'a str, privacy: Option<&'a str>, engine: &'a str) -> Vec<&'a str> {
    let mut a = vec!["-v3", "-e", engine, "-u", user, "-a", auth, "-A", "authpass123"];
    match privacy {
        Some(p) => a.extend(["-x", p, "-X", "privpass123", "-l", "authPriv"]),
        None => a.extend(["-l", "authNoPriv"]),
    }
    a
}

#[tokio::test]
async fn v1_v2c_and_v3_traps_from_net_snmp_become_events_of_their_device() {
    let devices = vec![
        scheduled(1, "leaf-v2c", "127.0.0.1", v2c("public")),
        scheduled(2, "leaf-v3", "127.0.0.1", v3("trapuser", AuthProtocol::Sha1, Some(PrivProtocol::Aes128))),
        scheduled(
            3,
            "leaf-v3-sha256",
            "127.0.0.1",
            v3("trapuser256", AuthProtocol::Sha256, Some(PrivProtocol::Aes256)),
        ),
        scheduled(4, "leaf-v3-auth", "127.0.0.1", v3("trapauth", AuthProtocol::Sha1, None)),
    ];
    let mut r = Receiver::start(devices, None).await;
    let t = r.target();

    snmptrap(&["-v2c", "-c", "public", &t, "", LINK_DOWN, "1.3.6.1.2.1.2.2.1.1.7", "i", "7"]).await;
    let e = r.next_event("v2c linkDown").await;
    assert_eq!((e.device_id, e.device.as_str(), e.version), (1, "leaf-v2c", TrapVersion::V2c));
    assert_eq!(e.kind, TrapKind::LinkDown { if_index: Some(7) });
    assert_eq!(e.source.ip().to_string(), "127.0.0.1");
    assert!(e.varbinds.contains(&"1.3.6.1.2.1.2.2.1.1.7 = INTEGER: 7".to_string()), "{:?}", e.varbinds);

    snmptrap(&["-v1", "-c", "public", &t, "1.3.6.1.4.1.8072.2.3.1", "127.0.0.1", "0", "0", ""]).await;
    let e = r.next_event("v1 coldStart").await;
    assert_eq!((e.device_id, e.version, &e.kind), (1, TrapVersion::V1, &TrapKind::ColdStart));
    assert_eq!(e.trap_oid.to_string(), "1.3.6.1.6.3.1.1.5.1", "v1 generic-trap 0 is coldStart in v2 form");

    let peer = "1.3.6.1.2.1.15.3.1.2.192.0.2.1";
    snmptrap(&["-v2c", "-c", "public", &t, "", "1.3.6.1.2.1.15.0.2", peer, "i", "1"]).await;
    let e = r.next_event("bgpBackwardTransNotification").await;
    assert_eq!(e.kind, TrapKind::BgpBackwardTransition { peer: Some("192.0.2.1".parse().unwrap()) });

    let nbr = ["1.3.6.1.2.1.14.10.1.3.10.1.1.2.0", "a", "10.0.0.2", "1.3.6.1.2.1.14.10.1.6.10.1.1.2.0", "i", "8"];
    let mut args = vec!["-v2c", "-c", "public", &t, "", "1.3.6.1.2.1.14.16.2.2"];
    args.extend(nbr);
    snmptrap(&args).await;
    let e = r.next_event("ospfNbrStateChange").await;
    assert_eq!(
        e.kind,
        TrapKind::OspfNbrStateChange {
            router_id: Some("10.0.0.2".parse().unwrap()),
            state: Some(collector::routing::OspfNbrState::Full)
        }
    );

    // v3: the user names the device; its keys are localized to the engineID in the message.
    let mut args = v3_args("trapuser", "SHA", Some("AES"), ENGINE);
    args.extend([t.as_str(), "", LINK_DOWN, "1.3.6.1.2.1.2.2.1.1.5", "i", "5"]);
    snmptrap(&args).await;
    let e = r.next_event("v3 authPriv SHA/AES linkDown").await;
    assert_eq!((e.device_id, e.version, &e.kind), (2, TrapVersion::V3, &TrapKind::LinkDown { if_index: Some(5) }));

    // Another sender engine with the same user: localized anew, accepted too.
    let mut args = v3_args("trapuser", "SHA", Some("AES"), "0x800000000102030405ff");
    args.extend([t.as_str(), "", "1.3.6.1.6.3.1.1.5.4", "1.3.6.1.2.1.2.2.1.1.5", "i", "5"]);
    snmptrap(&args).await;
    let e = r.next_event("v3 linkUp from another engineID").await;
    assert_eq!((e.device_id, &e.kind), (2, &TrapKind::LinkUp { if_index: Some(5) }));

    let mut args = v3_args("trapuser256", "SHA-256", Some("AES-256"), ENGINE);
    args.extend([t.as_str(), "", "1.3.6.1.6.3.1.1.5.2"]);
    snmptrap(&args).await;
    let e = r.next_event("v3 authPriv SHA-256/AES-256 warmStart").await;
    assert_eq!((e.device_id, &e.kind), (3, &TrapKind::WarmStart));

    let mut args = v3_args("trapauth", "SHA", None, ENGINE);
    args.extend([t.as_str(), "", "1.3.6.1.6.3.1.1.5.5"]);
    snmptrap(&args).await;
    let e = r.next_event("v3 authNoPriv authenticationFailure").await;
    assert_eq!((e.device_id, &e.kind), (4, &TrapKind::AuthenticationFailure));

    let c = r.stats.snapshot();
    assert_eq!((c.accepted, c.auth_failed, c.malformed, c.unknown_source, c.dropped), (8, 0, 0, 0, 0), "{c:?}");
    r.stop().await;
}

#[tokio::test]
async fn a_v2c_inform_is_answered_and_a_wrong_community_is_not() {
    let mut r = Receiver::start(vec![scheduled(1, "leaf", "127.0.0.1", v2c("public"))], None).await;
    let t = r.target();
    // snmpinform exits 0 only when the Response arrives.
    let out = net_snmp(SNMPINFORM, &["-v2c", "-c", "public", "-t", "3", "-r", "1", &t, "", LINK_DOWN]).await;
    assert!(out.status.success(), "snmpinform got no response: {}", String::from_utf8_lossy(&out.stderr));
    let e = r.next_event("v2c inform").await;
    assert!(e.inform);
    assert_eq!(e.kind, TrapKind::LinkDown { if_index: None });
    assert_eq!(r.stats.snapshot().informs_answered, 1);

    let out = net_snmp(SNMPINFORM, &["-v2c", "-c", "wrong", "-t", "1", "-r", "0", &t, "", LINK_DOWN]).await;
    assert!(!out.status.success(), "an inform with the wrong community must not be answered");
    let c = r.wait_counts("inform with a wrong community", |c| c.auth_failed == 1).await;
    assert_eq!(c.informs_answered, 1);
    r.assert_no_event("inform with a wrong community");
    r.stop().await;
}

#[tokio::test]
async fn rejected_unknown_and_malformed_datagrams_are_counted_and_the_loop_goes_on() {
    let mut r = Receiver::start(
        vec![
            scheduled(1, "leaf", "127.0.0.1", v2c("public")),
            scheduled(2, "leaf-v3", "127.0.0.1", v3("trapuser", AuthProtocol::Sha1, Some(PrivProtocol::Aes128))),
        ],
        None,
    )
    .await;
    let t = r.target();

    snmptrap(&["-v2c", "-c", "not-public", &t, "", LINK_DOWN]).await;
    r.wait_counts("v2c trap with a wrong community", |c| c.auth_failed == 1).await;
    snmptrap(&["-v1", "-c", "not-public", &t, "1.3.6.1.4.1.8072", "127.0.0.1", "2", "0", ""]).await;
    r.wait_counts("v1 trap with a wrong community", |c| c.auth_failed == 2).await;

    // A v3 trap with a wrong authentication password (the command line's -A).
    let mut args = v3_args("trapuser", "SHA", Some("AES"), ENGINE);
    args[8] = "not-the-password";
    args.extend([t.as_str(), "", LINK_DOWN]);
    snmptrap(&args).await;
    r.wait_counts("v3 trap with a wrong password", |c| c.auth_failed == 3).await;
    r.assert_no_event("rejected traps");

    // A notification netwarden does not interpret: kept as Other, counted.
    snmptrap(&["-v2c", "-c", "public", &t, "", "1.3.6.1.4.1.99999.0.1", "1.3.6.1.4.1.99999.1.1", "s", "hello"]).await;
    let e = r.next_event("enterprise notification").await;
    assert_eq!(e.kind, TrapKind::Other { trap_oid: "1.3.6.1.4.1.99999.0.1".parse().unwrap() });
    assert_eq!(r.stats.snapshot().unknown_kind, 1);

    // Datagrams that are not SNMP at all, a truncated trap, a v3 discovery probe (snmpinform -v3).
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    for junk in [
        &b""[..],
        b"hello, trap receiver",
        &[0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x02],
        &[0x30, 0x03, 0x02, 0x01, 0x07],
    ] {
        sock.send_to(junk, r.addr).await.unwrap();
    }
    r.wait_counts("malformed datagrams", |c| c.malformed == 4).await;
    let out = net_snmp(SNMPINFORM, &{
        let mut a = v3_args("trapuser", "SHA", Some("AES"), ENGINE);
        a.retain(|x| *x != "-e" && *x != ENGINE);
        a.extend(["-t", "1", "-r", "0", t.as_str(), "", LINK_DOWN]);
        a
    })
    .await;
    assert!(!out.status.success(), "v3 informs are not supported, so snmpinform -v3 cannot succeed");
    r.wait_counts("v3 inform discovery probe", |c| c.unsupported >= 1).await;

    // Still receiving.
    snmptrap(&["-v2c", "-c", "public", &t, "", "1.3.6.1.6.3.1.1.5.1"]).await;
    assert_eq!(r.next_event("coldStart after the junk").await.kind, TrapKind::ColdStart);

    // An address no device has: counted as unknown source. Then the inventory gains it, no restart.
    r.devices.send_replace(vec![scheduled(9, "elsewhere", "192.0.2.9", v2c("public"))]);
    snmptrap(&["-v2c", "-c", "public", &t, "", LINK_DOWN]).await;
    r.wait_counts("trap from an unknown source", |c| c.unknown_source == 1).await;
    r.assert_no_event("trap from an unknown source");
    r.devices.send_replace(vec![scheduled(10, "leaf-again", "127.0.0.1", v2c("public"))]);
    snmptrap(&["-v2c", "-c", "public", &t, "", LINK_DOWN]).await;
    let e = r.next_event("trap after the inventory change").await;
    assert_eq!(e.device, "leaf-again");
    let c = r.stats.snapshot();
    assert_eq!((c.accepted, c.auth_failed, c.malformed, c.unknown_source), (3, 3, 4, 1), "{c:?}");
    r.stop().await;
}

/// A device name whose poll phase in a one-hour interval is at least ten minutes away, so the scheduler
/// cannot poll it on its own while the test waits.
fn name_far_from_its_phase(interval: Duration) -> String {
    let iv = interval.as_millis() as u64;
    let now = (SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64) % iv;
    (0..1000)
        .map(|i| format!("trap-agent-{i}"))
        .find(|n| {
            let phase = scheduler::stable_offset(n, interval).as_millis() as u64;
            (phase + iv - now) % iv > 10 * 60 * 1000
        })
        .expect("a name with a distant phase")
}

#[tokio::test]
async fn a_link_down_trap_polls_its_device_at_once_and_is_stored() {
    let agent = Snmpd::start();
    let tdb = pg::fresh_db();
    let mut c = tdb.connect().await;
    db::migrate(&mut c, BackendChoice::Auto).await.expect("migrate");
    let secrets = SecretBox::from_key(&[7; 32]);
    let interval = Duration::from_secs(3600);
    let name = name_far_from_its_phase(interval);
    let dev = device(&name, "127.0.0.1", agent.port(), v2c("public"), interval);
    store::import(&mut c, &secrets, &[dev], store::ImportMode::Merge).await.expect("import");
    let list: Vec<ScheduledDevice> = store::list(&c, &secrets)
        .await
        .unwrap()
        .into_iter()
        .map(|d| ScheduledDevice { id: d.id.unwrap(), device: d })
        .collect();
    let id = list[0].id;

    let pool = db::connect(&tdb.connection_string, 4).await.unwrap();
    let cancel = CancellationToken::new();
    let (writer, _) = SampleWriter::spawn(
        pool.clone(),
        WriterOptions { flush_interval: Duration::from_millis(200), ..Default::default() },
        cancel.clone(),
    );
    let (dev_tx, dev_rx) = watch::channel(list);
    let poll_now = Arc::new(PollNow::default());
    let (obs_tx, mut observations) = mpsc::channel(16);
    let hooks = SchedulerHooks { observations: Some(obs_tx), poll_now: Some(poll_now.clone()) };
    let client = ClientOptions { timeout: Duration::from_secs(1), retries: 1, ..Default::default() };
    let opts = SchedulerOptions { client, ..Default::default() };
    let sched = tokio::spawn(scheduler::run(
        pool.clone(),
        writer,
        opts,
        Arc::new(SchedulerStats::default()),
        hooks,
        dev_rx.clone(),
        cancel.clone(),
    ));

    // The receiver follows the same device list and shares the PollNow; what it accepts is stored.
    let socket = collector::trap::bind("127.0.0.1:0").await.unwrap();
    let target = socket.local_addr().unwrap().to_string();
    let (ev_tx, ev_rx) = mpsc::channel(16);
    let stats = Arc::new(TrapStats::default());
    let hooks = TrapHooks { events: Some(ev_tx), poll_now: Some(poll_now) };
    let receiver = tokio::spawn(collector::trap::run(socket, dev_rx, hooks, stats.clone(), cancel.clone()));
    let trap_writer = tokio::spawn(collector::store::trap::run_writer(pool.clone(), ev_rx, cancel.clone()));

    // The device loop registers for poll-now requests just after the scheduler starts it: until the
    // receiver reports a request the scheduler took, send the trap again (bounded).
    for attempt in 1.. {
        snmptrap(&["-v2c", "-c", "public", &target, "", LINK_DOWN, "1.3.6.1.2.1.2.2.1.1.1", "i", "1"]).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        if stats.snapshot().polls_requested > 0 {
            break;
        }
        assert!(attempt < 25, "the scheduler never took a poll request; receiver counts {:?}", stats.snapshot());
    }
    let observed = tokio::time::timeout(Duration::from_secs(15), observations.recv())
        .await
        .unwrap_or_else(|_| panic!("no poll within 15 s of the linkDown trap (the device's phase is >10 min away)"))
        .expect("observation channel open");
    assert_eq!(observed.device_id, id);
    assert!(matches!(observed.outcome, Outcome::Polled { .. }), "{:?}", observed.outcome);

    let mut polls = 0i64;
    for _ in 0..100 {
        polls = c.query_one("SELECT count(*) FROM poll_sample WHERE device_id = $1", &[&id]).await.unwrap().get(0);
        if polls > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(polls > 0, "no poll_sample row for the trap-triggered poll within 10 s");

    let mut stored = Vec::new();
    for _ in 0..100 {
        let since = chrono::Utc::now() - chrono::Duration::minutes(5);
        stored = collector::store::trap::list(&c, Some(id), since, 10).await.expect("reading snmp_trap");
        if !stored.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let row = stored.first().expect("the trap stored in snmp_trap within 10 s");
    assert_eq!((row.device.as_str(), row.kind.as_str(), row.version.as_str()), (name.as_str(), "link_down", "v2c"));
    assert_eq!(row.trap_oid, LINK_DOWN);
    assert_eq!(row.details, serde_json::json!({"if_index": 1}));

    // The API serves it.
    use tower::ServiceExt;
    let app = api::http::router(netwarden_tests::app::app_state(
        pool.clone(),
        secrets,
        collector::topology::Topology::build(&[], &[]),
    ));
    let req = axum::http::Request::get(format!("/api/v1/traps?device={name}&since=10m"))
        .body(axum::body::Body::empty())
        .unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(json[0]["kind"], "link_down", "{json}");
    assert_eq!(json[0]["device"], name.as_str());
    let req = axum::http::Request::get("/api/v1/traps?since=yesterday").body(axum::body::Body::empty()).unwrap();
    assert_eq!(app.oneshot(req).await.unwrap().status(), 400);

    cancel.cancel();
    sched.await.unwrap();
    receiver.await.unwrap();
    trap_writer.await.unwrap();
    drop(dev_tx);
}
