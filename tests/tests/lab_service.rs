//! The poller as a service against the routed lab: every router polled on schedule into
//! PostgreSQL, BGP/OSPF/LLDP state complete, and a link failure visible as state changes with
//! history, then restored.
//!
//! The scheduler runs on a thread inside the lab's management namespace (the lab's addresses
//! exist only there); PostgreSQL is reached over its unix socket, which works from any namespace.

use collector::db::{self, BackendChoice};
use collector::inventory::store;
use collector::scheduler::{self, ScheduledDevice, SchedulerOptions, SchedulerStats};
use collector::secrets::SecretBox;
use collector::snmp::ClientOptions;
use collector::store::{SampleWriter, WriterOptions};
use netwarden_tests::pg;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Tests in this file change the lab (a link goes down): they take turns.
static LAB: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn lab_turn() -> std::sync::MutexGuard<'static, ()> {
    LAB.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Brings the lab up (idempotent) and takes this file's turn on it; None (after saying why) when
/// not root.
fn lab_up() -> Option<std::sync::MutexGuard<'static, ()>> {
    if !netwarden_tests::util::is_root() {
        eprintln!("skipped: the routed lab needs root (network namespaces); CI runs as root");
        return None;
    }
    let turn = lab_turn();
    let up = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("lab/up.sh");
    let out = Command::new("bash").arg(&up).output().expect("up.sh");
    assert!(out.status.success(), "up.sh: {}", String::from_utf8_lossy(&out.stderr));
    Some(turn)
}

fn lab_dir() -> PathBuf {
    std::env::var_os("NWLAB_DIR").filter(|v| !v.is_empty()).map(PathBuf::from).unwrap_or_else(|| "/tmp/nwlab".into())
}

fn ip(args: &[&str]) {
    let out = Command::new("ip").args(args).output().expect("ip");
    assert!(out.status.success(), "ip {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

async fn count(c: &tokio_postgres::Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e}")).get(0)
}

/// Polls `sql` (a count) until it reaches `want`; returns how long that took.
async fn wait_count(c: &tokio_postgres::Client, sql: &str, want: i64, within: Duration) -> Duration {
    let t0 = Instant::now();
    loop {
        let n = count(c, sql).await;
        if n == want {
            return t0.elapsed();
        }
        if t0.elapsed() >= within {
            let states: Vec<String> = c
                .query("SELECT d.name || ': ' || coalesce(s.status, '-') || ' ' || coalesce(s.last_error, '') FROM device d LEFT JOIN device_state s ON s.device_id = d.id", &[])
                .await
                .map(|rows| rows.iter().map(|r| r.get(0)).collect())
                .unwrap_or_default();
            panic!("after {within:?}: {n} (want {want}) for {sql}\ndevices: {states:#?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn lab_routing_state_history_and_a_link_failure() {
    let Some(_turn) = lab_up() else { return };
    let tdb = pg::fresh_db();
    let inventory = lab_dir().join("inventory.yaml");
    let wiring: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(lab_dir().join("wiring.json")).unwrap()).unwrap();
    // leaf1's first fabric link: the one we fail.
    let leaf1 = wiring["nodes"].as_array().unwrap().iter().find(|n| n["name"] == "leaf1").unwrap().clone();
    let link = leaf1["interfaces"][0].clone();
    let (if_name, peer, peer_ip) = (
        link["name"].as_str().unwrap().to_string(),
        link["peer"].as_str().unwrap().to_string(),
        link["peer_ip"].as_str().unwrap().to_string(),
    );

    let file = std::fs::File::open("/run/netns/nwlab-mgmt").expect("lab mgmt namespace");
    std::thread::spawn(move || {
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let (mut c, conn) = tokio_postgres::connect(&tdb.connection_string, tokio_postgres::NoTls).await.expect("connect");
            tokio::spawn(async move {
                if let Err(e) = conn.await {
                    eprintln!("database connection ended: {e:?}");
                }
            });
            db::migrate(&mut c, BackendChoice::Auto).await.unwrap();
            let secrets = SecretBox::from_key(&[9; 32]);
            let devices = collector::inventory::read_inventory_file(&inventory, None).expect("lab inventory");
            assert_eq!(devices.len(), 5);
            store::import(&mut c, &secrets, &devices, store::ImportMode::Merge).await.unwrap();
            let scheduled: Vec<ScheduledDevice> =
                store::list(&c, &secrets).await.unwrap().into_iter().map(|d| ScheduledDevice { id: d.id.unwrap(), device: d }).collect();
            let pool = db::connect(&tdb.connection_string, 6).await.unwrap();
            let cancel = CancellationToken::new();
            let (writer, _) = SampleWriter::spawn(pool.clone(), WriterOptions { flush_interval: Duration::from_millis(200), ..Default::default() }, cancel.clone());
            let (_tx, rx) = watch::channel(scheduled);
            let opts = SchedulerOptions {
                default_interval: Duration::from_secs(2),
                client: ClientOptions { timeout: Duration::from_secs(1), retries: 1, ..Default::default() },
                ..Default::default()
            };
            let sched = tokio::spawn(scheduler::run(pool, writer, opts, Arc::new(SchedulerStats::default()), Default::default(), rx, cancel.clone()));

            // Converged state, as the wiring says: 6 eBGP sessions seen from both ends, 6 OSPF
            // adjacencies from both ends, 6 cables seen by LLDP from both ends.
            let within = Duration::from_secs(60);
            wait_count(&c, "SELECT count(*) FROM device_state WHERE status = 'up'", 5, within).await;
            wait_count(&c, "SELECT count(*) FROM bgp_peer WHERE state = 'established' AND afi_safi = ''", 12, within).await;
            wait_count(&c, "SELECT count(*) FROM ospf_neighbor WHERE state = 'full'", 12, within).await;
            wait_count(&c, "SELECT count(*) FROM link_neighbor WHERE protocol = 'lldp'", 12, within).await;
            let asn: i64 = c
                .query_one("SELECT remote_as FROM bgp_peer b JOIN device d ON d.id = b.device_id WHERE d.name = 'leaf1' AND host(peer_addr) = $1 AND afi_safi = ''", &[&peer_ip])
                .await
                .unwrap()
                .get(0);
            assert_eq!(asn, wiring["nodes"].as_array().unwrap().iter().find(|n| n["name"] == peer.as_str()).unwrap()["asn"].as_i64().unwrap());
            let lldp_peer: String = c
                .query_one("SELECT sys_name FROM link_neighbor l JOIN device d ON d.id = l.device_id WHERE d.name = 'leaf1' AND local_if_name = $1", &[&if_name])
                .await
                .unwrap()
                .get(0);
            assert!(lldp_peer.starts_with(&peer), "{if_name} of leaf1 is cabled to {peer}, LLDP says {lldp_peer}");

            // The topology equals the wiring: 5 routers, 6 cables seen from both ends, all up.
            let (topo, _) = collector::store::topology::refresh(&c, None, chrono::Utc::now()).await.unwrap();
            assert_eq!(topo.nodes().len(), 5, "{:?}", topo.nodes());
            assert_eq!(topo.links().len(), 6, "{:#?}", topo.links());
            for l in topo.links() {
                assert_eq!(l.seen_from, collector::topology::SeenFrom::Both, "{}", l.key);
                assert!(l.is_up(), "{}", l.key);
                let spine_leaf = [&l.key.a.device, &l.key.b.device].iter().filter(|d| d.starts_with("spine")).count() == 1;
                assert!(spine_leaf, "only spine-leaf cables in this fabric: {}", l.key);
            }
            let failed_key = topo
                .links()
                .iter()
                .find(|l| l.ends_from("leaf1").is_some_and(|(mine, _)| mine.interface == if_name))
                .expect("the cable we will fail")
                .key
                .clone();
            let path = topo.shortest_path("leaf1", "leaf3").expect("a path");
            assert_eq!(path.len(), 2, "leaf-spine-leaf: {path:?}");
            let impact = topo.failure_impact(&collector::topology::Failure::Device("spine1".into()), "spine").unwrap();
            assert!(impact.cut_off.is_empty(), "every leaf has two spines: {impact:?}");
            let spof = topo.single_points_of_failure();
            assert!(spof.articulation_points.is_empty() && spof.bridges.is_empty(), "{spof:?}");

            // Fail the link from leaf1's side.
            ip(&["-n", "nwlab-leaf1", "link", "set", &if_name, "down"]);
            let bgp_seen = wait_count(
                &c,
                &format!(
                    "SELECT count(*) FROM state_change s JOIN device d ON d.id = s.device_id
                      WHERE d.name = 'leaf1' AND kind = 'bgp_peer' AND key = '{peer_ip}' AND old_state = 'established'"
                ),
                1,
                Duration::from_secs(30),
            )
            .await;
            let if_seen = wait_count(
                &c,
                &format!(
                    "SELECT count(*) FROM state_change s JOIN device d ON d.id = s.device_id
                      WHERE d.name = 'leaf1' AND kind = 'interface' AND key = '{if_name}' AND new_state LIKE '%/down'"
                ),
                1,
                Duration::from_secs(30),
            )
            .await;
            eprintln!("link down seen in netwarden's state: BGP after {bgp_seen:?}, interface after {if_seen:?} (poll interval 2 s)");
            // The OSPF adjacency over that link is gone from both ends' state and history.
            wait_count(&c, "SELECT count(*) FROM ospf_neighbor WHERE state = 'full'", 10, Duration::from_secs(30)).await;

            // The cable stays in the topology, down, and the change is recorded; leaf1 still
            // reaches leaf3 through the other spine, and now depends on it.
            tokio::time::sleep(Duration::from_secs(3)).await;
            let (topo2, changes) = collector::store::topology::refresh(&c, Some(&topo), chrono::Utc::now()).await.unwrap();
            let l = topo2.link(&failed_key).expect("a failed cable is kept, not forgotten");
            assert!(!l.is_up(), "{l:?}");
            assert!(changes.iter().any(|ch| matches!(ch, collector::topology::TopologyChange::LinkChanged { link, .. } if *link == failed_key)), "{changes:?}");
            assert_eq!(topo2.shortest_path("leaf1", "leaf3").map(|p| p.len()), Some(2));
            let spof = topo2.single_points_of_failure();
            assert_eq!(spof.bridges.len(), 1, "leaf1 now hangs on one cable: {spof:?}");
            let recorded = count(&c, &format!("SELECT count(*) FROM state_change WHERE kind = 'topology_link_changed' AND key = '{failed_key}'")).await;
            assert_eq!(recorded, 1);

            // Restore: everything returns, and the outage has a duration.
            ip(&["-n", "nwlab-leaf1", "link", "set", &if_name, "up"]);
            wait_count(&c, "SELECT count(*) FROM bgp_peer WHERE state = 'established' AND afi_safi = ''", 12, within).await;
            wait_count(&c, "SELECT count(*) FROM ospf_neighbor WHERE state = 'full'", 12, within).await;
            let leaf1_id: i64 = c.query_one("SELECT id FROM device WHERE name = 'leaf1'", &[]).await.unwrap().get(0);
            let outages = collector::store::query::outages(
                &c,
                leaf1_id,
                "bgp_peer",
                "established",
                chrono::Utc::now() - chrono::Duration::hours(1),
                chrono::Utc::now() + chrono::Duration::seconds(1),
            )
            .await
            .unwrap();
            let o = outages.iter().find(|o| o.key == peer_ip).expect("an outage for the failed peer");
            assert!(o.seconds.is_some_and(|s| s > 0.0), "{o:?}");
            cancel.cancel();
            sched.await.unwrap();
        });
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e));
}

/// `netwarden poll` against a lab router shows BGP peers, OSPF neighbours and LLDP neighbours
/// beside the interfaces, as a table and as JSON.
#[test]
fn poll_cli_shows_routing_beside_interfaces() {
    let Some(_turn) = lab_up() else { return };
    let bin = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().join("netwarden");
    assert!(bin.exists(), "{} not built", bin.display());
    let run = |extra: &[&str]| {
        let out = Command::new("ip")
            .args(["netns", "exec", "nwlab-mgmt"])
            .arg(&bin)
            .args(["poll", "10.255.0.21", "--community", "public"])
            .args(extra)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // The lab may still be converging (just built, or a link just restored): wait, bounded.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut table = run(&[]);
    let settled = |t: &str| {
        t.matches("established").count() >= 2
            && t.matches(" full ").count() >= 2
            && t.contains("spine1")
            && t.contains("spine2")
    };
    while !settled(&table) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_secs(1));
        table = run(&[]);
    }
    for want in [
        "sysName    leaf1",
        "BGP (local AS 65011",
        "established",
        "OSPF neighbours",
        "full",
        "LLDP/CDP neighbours",
        "spine1",
        "spine2",
    ] {
        assert!(table.contains(want), "{want:?} missing from:\n{table}");
    }
    let json: serde_json::Value = serde_json::from_str(&run(&["--json"])).unwrap();
    let r = &json["routing"];
    assert_eq!(r["local_as"], 65011);
    assert_eq!(r["bgp"].as_array().unwrap().iter().filter(|p| p["state"] == "established").count(), 2, "{r}");
    assert_eq!(r["ospf_neighbors"].as_array().unwrap().len(), 2);
    assert_eq!(r["neighbors"].as_array().unwrap().len(), 2);
}

/// The configuration API over real SSH: a backup on demand through HTTP lands as a snapshot in
/// the history, and the response carries no secret.
#[test]
fn config_backup_through_the_api() {
    use tower::ServiceExt;
    let Some(_turn) = lab_up() else { return };
    let tdb = pg::fresh_db();
    let inventory = lab_dir().join("inventory.yaml");
    let file = std::fs::File::open("/run/netns/nwlab-mgmt").expect("lab mgmt namespace");
    std::thread::spawn(move || {
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).expect("setns");
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async move {
            let mut c = tdb.connect().await;
            db::migrate(&mut c, BackendChoice::Auto).await.unwrap();
            let secrets = SecretBox::from_key(&[9; 32]);
            let devices = collector::inventory::read_inventory_file(&inventory, None).unwrap();
            store::import(&mut c, &secrets, &devices, store::ImportMode::Merge).await.unwrap();
            let pool = db::connect(&tdb.connection_string, 4).await.unwrap();
            let state = netwarden_tests::app::app_state(pool, secrets, collector::topology::Topology::build(&[], &[]));
            let ssh = state.ssh.clone();
            let app = api::http::router(state);
            let call = |method: &str, uri: &str| {
                let req =
                    axum::http::Request::builder().method(method).uri(uri).body(axum::body::Body::empty()).unwrap();
                let app = app.clone();
                async move {
                    let resp = app.oneshot(req).await.unwrap();
                    let st = resp.status();
                    let body = axum::body::to_bytes(resp.into_body(), 1 << 22).await.unwrap();
                    (st, String::from_utf8_lossy(&body).into_owned())
                }
            };
            let (st, body) = call("POST", "/api/v1/devices/leaf2/configs/backup").await;
            assert_eq!(st, axum::http::StatusCode::OK, "{body}");
            assert!(!body.contains("netopslab1"), "{body}");
            let (st, body) = call("GET", "/api/v1/devices/leaf2/configs").await;
            assert_eq!(st, axum::http::StatusCode::OK, "{body}");
            let h: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(h.as_array().map(Vec::len), Some(1), "{body}");
            let (st, body) = call("GET", "/api/v1/devices/leaf2/configs/diff").await;
            assert_eq!(st, axum::http::StatusCode::NOT_FOUND, "one snapshot: nothing to compare yet: {body}");
            let (st, _) = call("POST", "/api/v1/devices/nope/configs/backup").await;
            assert_eq!(st, axum::http::StatusCode::NOT_FOUND);
            ssh.close_idle().await;
        });
    })
    .join()
    .unwrap_or_else(|e| std::panic::resume_unwind(e));
}
