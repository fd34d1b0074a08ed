//! Scale-out: instances sharing one database split the devices with leases held in PostgreSQL.
//!
//! The lease statements on a real database (take, renew, refuse, expire, release, heartbeats), then
//! three `netwarden serve` processes polling a simulated fabric on loopback: every device is
//! polled by the instance rendezvous hashing picks, one instance is killed with SIGKILL and its
//! devices are taken over within the lease bound, one is stopped with SIGTERM and hands its
//! devices over at once, and no device is ever polled by two instances at the same time.

use collector::cluster::{self, ClusterOptions, assign::Members};
use collector::db::{self, BackendChoice};
use collector::inventory::{Device, store};
use collector::scheduler::ScheduledDevice;
use collector::secrets::SecretBox;
use collector::sim::{AgentConfig, Fabric, FabricModel, FabricSpec};
use collector::store::lease::{self, Heartbeat, Registration};
use netwarden_tests::pg;
use netwarden_tests::util::{Watchdog, free_tcp_port, stop_child, tail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

// ---------------------------------------------------------------------------------------------
// The lease statements

fn registration(name: &str, session: &str) -> Registration {
    Registration { name: name.into(), session: session.into(), host: "test".into(), pid: 1 }
}

/// A migrated test database with `n` devices (ids 1..=n, no agents behind them).
async fn db_with_devices(tdb: &pg::TestDb, n: usize) -> tokio_postgres::Client {
    let mut c = tdb.connect().await;
    db::migrate(&mut c, BackendChoice::Auto).await.expect("migrate");
    let devices: Vec<Device> = (1..=n).map(|i| Device::v2c(&format!("d{i}"), "127.0.0.1", 161, "public")).collect();
    store::import(&mut c, &secrets(), &devices, store::ImportMode::Merge).await.expect("import");
    c
}

/// The key behind `SECRET_KEY`, which the processes get.
fn secrets() -> SecretBox {
    let key: [u8; 32] = std::array::from_fn(|i| i as u8);
    SecretBox::from_key(&key)
}

async fn owners(c: &tokio_postgres::Client) -> BTreeMap<i64, String> {
    c.query("SELECT device_id, owner FROM device_lease", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

#[tokio::test]
async fn leases_are_taken_renewed_refused_expired_and_released() {
    let tdb = pg::fresh_db();
    let c = db_with_devices(&tdb, 4).await;
    let ids: Vec<i64> =
        c.query("SELECT id FROM device ORDER BY id", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    let lease_for = Duration::from_secs(30);

    // Free leases are taken; a device that does not exist is skipped, not an error.
    let mut asked = ids[..3].to_vec();
    asked.push(999_999);
    assert_eq!(lease::acquire(&c, "a", &asked, lease_for).await.unwrap(), ids[..3].to_vec());
    // Another instance gets only what nobody holds.
    assert_eq!(lease::acquire(&c, "b", &ids, lease_for).await.unwrap(), vec![ids[3]]);
    // Renewal keeps the lease and pushes its expiry; acquired_at stays.
    let before: (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) = {
        let r = c
            .query_one("SELECT acquired_at, expires_at FROM device_lease WHERE device_id = $1", &[&ids[0]])
            .await
            .unwrap();
        (r.get(0), r.get(1))
    };
    assert_eq!(lease::acquire(&c, "a", &ids[..3], Duration::from_secs(60)).await.unwrap(), ids[..3].to_vec());
    let r =
        c.query_one("SELECT acquired_at, expires_at FROM device_lease WHERE device_id = $1", &[&ids[0]]).await.unwrap();
    assert_eq!(r.get::<_, chrono::DateTime<chrono::Utc>>(0), before.0);
    assert!(r.get::<_, chrono::DateTime<chrono::Utc>>(1) > before.1);

    // An expired lease goes to whoever asks next; an unexpired one stays with its holder.
    c.execute("UPDATE device_lease SET expires_at = now() - interval '1 ms' WHERE device_id = $1", &[&ids[0]])
        .await
        .unwrap();
    assert_eq!(lease::acquire(&c, "b", &ids, lease_for).await.unwrap(), vec![ids[0], ids[3]]);
    assert_eq!(owners(&c).await[&ids[0]], "b");
    // A real expiry, on the database's clock: a 1 s lease, asked for until it is free.
    assert_eq!(lease::acquire(&c, "b", &ids[..1], Duration::from_secs(1)).await.unwrap(), vec![ids[0]]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while lease::acquire(&c, "a", &ids[..1], lease_for).await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "a 1 s lease did not expire within 10 s");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(owners(&c).await[&ids[0]], "a");

    // Release gives up only the caller's own leases.
    assert_eq!(lease::release(&c, "a", &ids).await.unwrap(), 3);
    assert_eq!(owners(&c).await.into_iter().collect::<Vec<_>>(), vec![(ids[3], "b".to_string())]);
    assert_eq!(
        lease::acquire(&c, "a", &ids[..2], lease_for).await.unwrap(),
        ids[..2].to_vec(),
        "released leases are free at once"
    );
}

#[tokio::test]
async fn heartbeats_list_live_instances_and_refuse_a_name_in_use() {
    let tdb = pg::fresh_db();
    let c = db_with_devices(&tdb, 3).await;
    let lease_for = Duration::from_secs(30);
    let forget = Duration::from_secs(3600);
    let (a, b) = (registration("a", "s1"), registration("b", "s2"));
    assert_eq!(lease::heartbeat(&c, &a, lease_for, forget).await.unwrap(), Heartbeat::Live(vec!["a".into()]));
    assert_eq!(
        lease::heartbeat(&c, &b, lease_for, forget).await.unwrap(),
        Heartbeat::Live(vec!["a".into(), "b".into()])
    );
    // Another process with a's name, while a is live: refused.
    let impostor = registration("a", "s3");
    assert_eq!(lease::heartbeat(&c, &impostor, lease_for, forget).await.unwrap(), Heartbeat::NameTaken);
    // a falls silent for longer than its lease: no longer live, and its name may be reused.
    c.execute("UPDATE cluster_instance SET heartbeat_at = now() - interval '31 s' WHERE name = 'a'", &[])
        .await
        .unwrap();
    assert_eq!(lease::heartbeat(&c, &b, lease_for, forget).await.unwrap(), Heartbeat::Live(vec!["b".into()]));
    assert_eq!(
        lease::heartbeat(&c, &impostor, lease_for, forget).await.unwrap(),
        Heartbeat::Live(vec!["a".into(), "b".into()])
    );

    // The view: both live, with their lease counts; leaving removes the row and the leases.
    let ids = [1_i64, 2, 3];
    lease::acquire(&c, "a", &ids[..2], lease_for).await.unwrap();
    lease::acquire(&c, "b", &ids, lease_for).await.unwrap();
    let view = lease::cluster_view(&c).await.unwrap();
    let counts: Vec<(String, bool, i64)> = view.instances.iter().map(|i| (i.name.clone(), i.live, i.devices)).collect();
    assert_eq!(counts, vec![("a".into(), true, 2), ("b".into(), true, 1)]);
    assert_eq!(view.unleased_devices, 0);
    // The process that lost the name leaves without touching the leases of the one that has it.
    assert_eq!(lease::leave(&c, &a).await.unwrap(), 0);
    assert_eq!(lease::leave(&c, &impostor).await.unwrap(), 2);
    let view = lease::cluster_view(&c).await.unwrap();
    assert_eq!(view.instances.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(), vec!["b"]);
    assert_eq!(view.unleased_devices, 2);
    // Instances silent for longer than `forget_after` are deleted by anyone's heartbeat.
    c.execute("UPDATE cluster_instance SET heartbeat_at = now() - interval '2 hours' WHERE name = 'b'", &[])
        .await
        .unwrap();
    lease::heartbeat(&c, &a, lease_for, forget).await.unwrap();
    assert_eq!(lease::cluster_view(&c).await.unwrap().instances.len(), 1);
}

/// Runs SQL as the cluster's superuser on the `postgres` database (outside the test database).
async fn admin(sql: &str) {
    let (client, conn) = tokio_postgres::connect(&pg::server().connection_string(), tokio_postgres::NoTls)
        .await
        .expect("admin connection");
    let task = tokio::spawn(conn);
    client.batch_execute(sql).await.unwrap_or_else(|e| panic!("{sql}: {}", db::error_text(&e)));
    drop(client);
    let _ = task.await;
}

async fn wait_for_owned(rx: &mut watch::Receiver<Vec<ScheduledDevice>>, n: usize, what: &str, within: Duration) {
    let reached = matches!(tokio::time::timeout(within, rx.wait_for(|owned| owned.len() == n)).await, Ok(Ok(_)));
    assert!(reached, "{what}: not within {within:?} (holding {})", rx.borrow().len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_stops_polling_when_the_database_goes_away_and_resumes_after() {
    let tdb = pg::fresh_db();
    let c = db_with_devices(&tdb, 4).await;
    let all: Vec<ScheduledDevice> = store::list(&c, &secrets())
        .await
        .unwrap()
        .into_iter()
        .map(|d| ScheduledDevice { id: d.id.unwrap(), device: d })
        .collect();
    let (_all_tx, all_rx) = watch::channel(all);
    let pool = db::connect(&tdb.connection_string, 2).await.unwrap();
    let cancel = CancellationToken::new();
    let opts = ClusterOptions { instance: "solo".into(), lease: Duration::from_secs(1) };
    let (mut owned, task) = cluster::spawn(pool, Some(opts), all_rx, cancel.clone());
    let task = task.expect("a member runs when clustering is on");
    wait_for_owned(&mut owned, 4, "a lone instance leases every device", Duration::from_secs(10)).await;

    // The database refuses this test's database and drops its sessions: renewals fail, and the
    // member lets go of its devices when its local view of the lease runs out.
    let quoted = format!("\"{}\"", tdb.name);
    admin(&format!(
        "ALTER DATABASE {quoted} ALLOW_CONNECTIONS false;
         SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{}';",
        tdb.name
    ))
    .await;
    wait_for_owned(&mut owned, 0, "devices dropped while the database is away", Duration::from_secs(5)).await;

    admin(&format!("ALTER DATABASE {quoted} ALLOW_CONNECTIONS true")).await;
    wait_for_owned(&mut owned, 4, "devices leased again once the database is back", Duration::from_secs(10)).await;

    // Shutdown releases the leases once the owned list's receivers are gone.
    cancel.cancel();
    drop(owned);
    task.await.unwrap();
    let c = tdb.connect().await;
    let left: i64 = c.query_one("SELECT count(*) FROM device_lease", &[]).await.unwrap().get(0);
    assert_eq!(left, 0, "leases released on the way out");
}

// ---------------------------------------------------------------------------------------------
// Three processes

/// The `netwarden` binary cargo built next to this test (`cargo test --workspace` builds it).
fn netwarden_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("netwarden");
    assert!(bin.exists(), "{} not built (cargo test --workspace builds it)", bin.display());
    bin
}

const SECRET_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
const LEASE: Duration = Duration::from_secs(3);
const INTERVAL: Duration = Duration::from_secs(1);

/// One `netwarden serve` process, stopped (by its pid) when dropped, or by the watchdog if this
/// test process dies first.
struct Instance {
    name: &'static str,
    child: Child,
    api: String,
    log: PathBuf,
    _watchdog: Watchdog,
}

impl Instance {
    fn start(name: &'static str, tdb: &pg::TestDb, dir: &Path) -> Instance {
        let port = free_tcp_port();
        let data_dir = dir.join(name);
        std::fs::create_dir_all(&data_dir).unwrap();
        let log = dir.join(format!("{name}.log"));
        let child = Command::new(netwarden_bin())
            .arg("serve")
            .env("NETWARDEN_DATA_DIR", &data_dir)
            .env("NETWARDEN_DATABASE__URL", &tdb.connection_string)
            .env("NETWARDEN_DATABASE__POOL_SIZE", "4")
            .env("NETWARDEN_SECRET_KEY", SECRET_KEY)
            .env("NETWARDEN_API__LISTEN", format!("127.0.0.1:{port}"))
            .env("NETWARDEN_POLLING__INTERVAL", format!("{}s", INTERVAL.as_secs()))
            .env("NETWARDEN_CLUSTER__ENABLED", "true")
            .env("NETWARDEN_CLUSTER__INSTANCE", name)
            .env("NETWARDEN_CLUSTER__LEASE", format!("{}s", LEASE.as_secs()))
            .env("NETWARDEN_LOG", "info")
            .current_dir(&data_dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("starting netwarden serve ({name}): {e}"));
        let watchdog = Watchdog::arm("KILL", &[child.id()], &[]).expect("arming a watchdog");
        Instance { name, child, api: format!("http://127.0.0.1:{port}"), log, _watchdog: watchdog }
    }

    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("{} exited ({status}):\n{}", self.name, tail(&self.log, 40));
        }
    }

    fn kill(&mut self) {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGKILL).expect("SIGKILL");
        let _ = self.child.wait();
    }

    /// SIGTERM and wait: the graceful shutdown path.
    fn stop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(30));
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(10));
    }
}

/// A 2-spine, 16-leaf fabric served on loopback, its inventory imported into the test database.
async fn fabric_in(tdb: &pg::TestDb) -> (Fabric, tokio_postgres::Client, Vec<i64>) {
    let spec: FabricSpec = "spines=2,leaves=16".parse().expect("spec");
    let mut fabric = Fabric::build(FabricModel::build(&spec).expect("fabric model"));
    fabric
        .serve(IpAddr::V4(Ipv4Addr::LOCALHOST), 0, &AgentConfig::default())
        .await
        .expect("binding the fabric's agents on 127.0.0.1");
    let mut c = tdb.connect().await;
    db::migrate(&mut c, BackendChoice::Auto).await.expect("migrate");
    store::import(&mut c, &secrets(), &fabric.inventory("lab", "public"), store::ImportMode::Merge)
        .await
        .expect("import");
    let ids = c.query("SELECT id FROM device ORDER BY id", &[]).await.unwrap().iter().map(|r| r.get(0)).collect();
    (fabric, c, ids)
}

/// Polls `check` every 200 ms until it returns Some, for at most `within`; the panic says what
/// was awaited and what `check` last saw.
async fn wait_until<T>(
    what: &str,
    within: Duration,
    instances: &mut [&mut Instance],
    mut check: impl AsyncFnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        for i in instances.iter_mut() {
            i.assert_running();
        }
        match check().await {
            Ok(v) => return v,
            Err(last) if Instant::now() >= deadline => panic!("{what}: not within {within:?}; last seen: {last}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Whether the leases are exactly rendezvous hashing of `devices` over `live`.
async fn leases_match(c: &tokio_postgres::Client, devices: &[i64], live: &[&str]) -> Result<(), String> {
    let live: Vec<String> = live.iter().map(|s| s.to_string()).collect();
    let members = Members::new(&live);
    let want: BTreeMap<i64, String> = devices.iter().map(|&d| (d, members.owner_of(d).unwrap().to_string())).collect();
    let have: BTreeMap<i64, String> = c
        .query("SELECT device_id, owner FROM device_lease WHERE expires_at > now()", &[])
        .await
        .map_err(|e| db::error_text(&e))?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    if have == want { Ok(()) } else { Err(format!("leases {have:?}, want {want:?}")) }
}

/// Devices without an ok poll by their lease holder since `since` (database time).
async fn unpolled_since(c: &tokio_postgres::Client, since: chrono::DateTime<chrono::Utc>) -> Result<(), String> {
    let rows = c
        .query(
            "SELECT l.device_id, l.owner FROM device_lease l
              WHERE NOT EXISTS (SELECT 1 FROM poll_sample p WHERE p.device_id = l.device_id
                                   AND p.instance = l.owner AND p.status = 'ok' AND p.time > $1)",
            &[&since],
        )
        .await
        .map_err(|e| db::error_text(&e))?;
    let missing: Vec<(i64, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    if missing.is_empty() { Ok(()) } else { Err(format!("not yet polled by their owner: {missing:?}")) }
}

async fn db_now(c: &tokio_postgres::Client) -> chrono::DateTime<chrono::Utc> {
    c.query_one("SELECT now()", &[]).await.unwrap().get(0)
}

/// Every poll of the run, per device in time order: (time, instance). Skipped ticks are not polls.
async fn poll_history(c: &tokio_postgres::Client) -> BTreeMap<i64, Vec<(chrono::DateTime<chrono::Utc>, String)>> {
    let mut by_device: BTreeMap<i64, Vec<_>> = BTreeMap::new();
    for r in c
        .query(
            "SELECT device_id, time, instance FROM poll_sample WHERE status <> 'skipped' ORDER BY device_id, time",
            &[],
        )
        .await
        .unwrap()
    {
        let instance: Option<String> = r.get(2);
        by_device.entry(r.get(0)).or_default().push((r.get(1), instance.expect("every poll names its instance")));
    }
    by_device
}

/// Two instances polling one device at once would both poll at the device's phase in the same
/// interval, so their polls would be next to each other with almost no time between them. Every
/// hand-over must leave at least half an interval between the two instances' polls.
/// Returns how many hand-overs there were and the ones that came too close.
fn handovers(history: &BTreeMap<i64, Vec<(chrono::DateTime<chrono::Utc>, String)>>) -> (usize, Vec<String>) {
    let min_gap = chrono::Duration::from_std(INTERVAL / 2).unwrap();
    let (mut n, mut too_close) = (0, Vec::new());
    for (device, polls) in history {
        for w in polls.windows(2) {
            let ((t0, i0), (t1, i1)) = (&w[0], &w[1]);
            if i0 == i1 {
                continue;
            }
            n += 1;
            if *t1 - *t0 < min_gap {
                too_close.push(format!("device {device}: {i0} at {t0}, {i1} at {t1}"));
            }
        }
    }
    (n, too_close)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_split_the_devices_and_take_over_from_a_killed_one() {
    let tdb = pg::fresh_db();
    let (fabric, c, devices) = fabric_in(&tdb).await;
    let names = ["nw-a", "nw-b", "nw-c"];
    let name_list = names.map(String::from);
    let three = Members::new(&name_list);
    for n in names {
        let share = three.assigned_to(n, devices.iter().copied()).len();
        eprintln!("{n} should poll {share} of {} devices", devices.len());
        assert!(share > 0, "precondition: {n} gets devices");
    }
    let dir = tempfile::tempdir().unwrap();
    let [mut a, mut b, mut cc] = names.map(|n| Instance::start(n, &tdb, dir.path()));

    // All three live, the leases settle on the rendezvous assignment, and each device is polled
    // by its lease holder.
    let settle = Duration::from_secs(60);
    wait_until(
        "leases follow the assignment over three instances",
        settle,
        &mut [&mut a, &mut b, &mut cc],
        async || leases_match(&c, &devices, &names).await,
    )
    .await;
    let settled = db_now(&c).await;
    wait_until("every device polled by its lease holder", settle, &mut [&mut a, &mut b, &mut cc], async || {
        unpolled_since(&c, settled).await
    })
    .await;
    let view = api_cluster(&a.api).await;
    let live: Vec<(&str, bool, i64)> = view["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["name"].as_str().unwrap(), i["live"].as_bool().unwrap(), i["devices"].as_i64().unwrap()))
        .collect();
    let shares: Vec<(&str, bool, i64)> =
        names.iter().map(|n| (*n, true, three.assigned_to(n, devices.iter().copied()).len() as i64)).collect();
    assert_eq!(live, shares, "GET /api/v1/cluster: {view}");

    // SIGKILL one: no release, no goodbye. Its devices come back once its leases expire: within
    // one lease, one renewal round (a third of it) and one poll interval, plus the sample
    // writer's flush and slack for a loaded machine.
    let victims: Vec<i64> = three.assigned_to("nw-c", devices.iter().copied());
    cc.kill();
    let killed = db_now(&c).await;
    let started = Instant::now();
    let bound = LEASE + LEASE / 3 + INTERVAL + Duration::from_secs(1) + Duration::from_secs(4);
    wait_until("the killed instance's devices polled by the others", bound, &mut [&mut a, &mut b], async || {
        taken_over(&c, &victims, killed).await
    })
    .await;
    eprintln!(
        "{} devices of the killed instance polled again after {:?} (lease {LEASE:?}, interval {INTERVAL:?})",
        victims.len(),
        started.elapsed()
    );
    wait_until("leases follow the assignment over the two survivors", settle, &mut [&mut a, &mut b], async || {
        leases_match(&c, &devices, &names[..2]).await
    })
    .await;

    // SIGTERM one: it releases its leases and leaves before it exits.
    a.stop();
    let left: i64 = c
        .query_one(
            "SELECT (SELECT count(*) FROM device_lease WHERE owner = 'nw-a')
                  + (SELECT count(*) FROM cluster_instance WHERE name = 'nw-a')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0, "a gracefully stopped instance leaves no leases and no instance row\n{}", tail(&a.log, 30));
    wait_until("the last instance holds every device", settle, &mut [&mut b], async || {
        leases_match(&c, &devices, &names[1..2]).await
    })
    .await;
    b.stop();

    let history = poll_history(&c).await;
    assert_eq!(history.len(), devices.len(), "every device was polled");
    let (handovers, doubles) = handovers(&history);
    assert!(doubles.is_empty(), "devices polled by two instances at once:\n{}", doubles.join("\n"));
    assert!(
        handovers >= victims.len() + shares[0].2 as usize,
        "the killed and the stopped instance's devices changed hands"
    );
    eprintln!("{handovers} hand-overs, none with two instances polling the same device at once");
    fabric.shutdown().await;
}

/// Whether every one of `victims` has an ok poll since `since` by an instance still alive.
async fn taken_over(
    c: &tokio_postgres::Client,
    victims: &[i64],
    since: chrono::DateTime<chrono::Utc>,
) -> Result<(), String> {
    let polled: BTreeSet<i64> = c
        .query(
            "SELECT DISTINCT device_id FROM poll_sample
              WHERE device_id = ANY($1) AND time > $2 AND status = 'ok' AND instance <> 'nw-c'",
            &[&victims, &since],
        )
        .await
        .map_err(|e| db::error_text(&e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let waiting: Vec<i64> = victims.iter().copied().filter(|d| !polled.contains(d)).collect();
    if waiting.is_empty() { Ok(()) } else { Err(format!("not yet taken over: {waiting:?}")) }
}

/// `GET /api/v1/cluster` of one instance.
async fn api_cluster(base: &str) -> serde_json::Value {
    let http = reqwest::Client::builder()
        .tls_backend_preconfigured(rules::notify::tls_client_config())
        .build()
        .expect("an HTTP client");
    let url = format!("{base}/api/v1/cluster");
    let resp = http.get(&url).send().await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert!(resp.status().is_success(), "GET {url}: {}", resp.status());
    resp.json().await.unwrap_or_else(|e| panic!("GET {url}: {e}"))
}
