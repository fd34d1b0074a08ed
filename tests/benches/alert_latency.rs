//! Benchmark 5: alert → webhook latency, netwarden's alert service versus Debian's Alertmanager with
//! equivalent grouping, in the same run, into the same webhook receiver on 127.0.0.1.
//!
//! netwarden: the real alert service (`rules::service`) over a private PostgreSQL, with its outbox
//! worker and webhook notifier, fed a poll observation of one device with N interfaces. The clock
//! starts when the observation that turns interfaces down is handed to the service, and stops when
//! the webhook receives the alert, so it covers rule evaluation, the alert transaction (alert rows,
//! history, groups, outbox rows) and delivery. Alertmanager: the clock starts when the alerts are
//! posted to `/api/v2/alerts` (already evaluated, as Prometheus would send them) and stops at the
//! same receiver. Both group by `[alertname, device, interface]` with `group_wait: 0s`, so every
//! alert is its own group and notification.
//! Cases: one alert at a time on a 48-port device (repeated, each resolved before the next), and a
//! burst of N distinct groups at once (default 2,000: one poll of a device with N ports all down). Reported: p50, p95 and max per alert; the ratio is ours ÷ peer
//! at p95.
//!
//! Also measured (netwarden only): the time from an SNMP trap to a delivered notification. The
//! whole service (`api::runtime::serve`, polling every hour so only the trap can trigger a poll)
//! watches a simulated spine and leaf that send traps on link changes; the clock starts when the
//! link fails in the simulator and stops when the webhook receives the InterfaceDown alert:
//! trap, re-poll of the device, rule evaluation, alert transaction, outbox, delivery.
//!
//! Usage: `cargo bench -p netwarden-tests --bench alert_latency` (needs PostgreSQL 15 server binaries
//! and `/usr/bin/prometheus-alertmanager`). Environment: `NETWARDEN_BENCH_BURST` (default 2000),
//! `NETWARDEN_BENCH_SINGLES` (default 20).

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use chrono::Utc;
use collector::observe::Observation;
use netwarden_tests::observations::{interface_poll, port_name, scheduled};
use netwarden_tests::pg;
use netwarden_tests::receivers::Alertmanager;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, mpsc, watch};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(120);
/// Ports of the device whose single alerts are timed.
const SINGLE_PORTS: usize = 48;

/// Receipt times of webhook alerts, by (status, interface label).
#[derive(Default)]
struct Receipts {
    seen: Mutex<HashMap<(String, String), Instant>>,
    arrived: Notify,
}

async fn receive(State(r): State<Arc<Receipts>>, body: Bytes) -> &'static str {
    let now = Instant::now();
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut seen = r.seen.lock().unwrap();
    for a in v["alerts"].as_array().cloned().unwrap_or_default() {
        let key = (
            a["status"].as_str().unwrap_or("").to_string(),
            a["labels"]["interface"].as_str().unwrap_or("").to_string(),
        );
        seen.entry(key).or_insert(now);
    }
    drop(seen);
    r.arrived.notify_waiters();
    "ok"
}

impl Receipts {
    fn clear(&self) {
        self.seen.lock().unwrap().clear();
    }

    /// Waits until every `(status, interface)` has arrived; returns the receipt times in order.
    async fn wait(&self, status: &str, interfaces: &[String]) -> Vec<Instant> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let arrived = self.arrived.notified();
            {
                let seen = self.seen.lock().unwrap();
                let got: Vec<Instant> =
                    interfaces.iter().filter_map(|i| seen.get(&(status.to_string(), i.clone())).copied()).collect();
                if got.len() == interfaces.len() {
                    return got;
                }
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{} of {} {status} alerts arrived within {WAIT:?}",
                    got.len(),
                    interfaces.len()
                );
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), arrived).await;
        }
    }
}

async fn start_receiver() -> (String, Arc<Receipts>) {
    let receipts = Arc::new(Receipts::default());
    let app = Router::new().fallback(receive).with_state(receipts.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding the webhook receiver");
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, receipts)
}

fn interface(i: usize) -> String {
    port_name(i)
}

/// A poll of device 1 where interfaces in `down` are oper down (all admin up).
fn observation(n: usize, down: std::ops::Range<usize>) -> Observation {
    interface_poll(1, "leaf001", n, down)
}

struct Percentiles {
    min: f64,
    p50: f64,
    p95: f64,
    max: f64,
}

fn percentiles(mut ms: Vec<f64>) -> Percentiles {
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() as f64 - 1.0) * q).round() as usize];
    Percentiles { min: ms[0], p50: at(0.5), p95: at(0.95), max: *ms.last().unwrap() }
}

fn since_ms(t0: Instant, times: &[Instant]) -> Vec<f64> {
    times.iter().map(|t| t.duration_since(t0).as_secs_f64() * 1000.0).collect()
}

const RULES: &str = r#"rules:
  - name: InterfaceDown
    source: interface
    when: admin_status == "up" && oper_status == "down"
    severity: major
    flap: {changes: 1000, window: 1m}
"#;

/// netwarden: (single-alert latencies, burst latencies) in ms.
async fn measure_ours(hook: &str, receipts: &Receipts, n: usize, singles: usize) -> (Vec<f64>, Vec<f64>) {
    let tdb = pg::fresh_db();
    let pool = collector::db::connect(&tdb.connection_string, 16).await.expect("database pool");
    {
        let mut c = pool.get().await.unwrap();
        let client: &mut tokio_postgres::Client = &mut c;
        collector::db::migrate(client, collector::db::BackendChoice::Auto).await.expect("migrate");
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rules.yaml"), RULES).unwrap();
    let yaml = format!(
        "rule_files: [rules.yaml]\nreceivers:\n  - {{name: hook, webhook: {{url: \"{hook}\"}}}}\nroute:\n  receiver: hook\n  \
         group_by: [alertname, device, interface]\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\n"
    );
    std::fs::write(dir.path().join("alerting.yaml"), yaml).unwrap();
    let alerting =
        rules::config::Alerting::load(Some(&dir.path().join("alerting.yaml")), "http://bench").expect("alerting file");
    let notifier = Arc::new(rules::notify::Notifier::new(&alerting.receivers, Default::default()).expect("notifier"));
    let wake = rules::outbox::Wake::default();
    let cancel = CancellationToken::new();
    let opts = rules::outbox::WorkerOptions { wake: wake.clone(), concurrency: 16, ..Default::default() };
    let worker = rules::outbox::spawn(pool.clone(), notifier, opts, cancel.clone());
    let (tx, rx) = mpsc::channel(16);
    let (_devices_tx, devices) = watch::channel(vec![scheduled(1, "leaf001")]);
    let topology = Arc::new(std::sync::RwLock::new(Arc::new(collector::topology::Topology::build(&[], &[]))));
    let inputs = rules::service::Inputs { observations: rx, devices, topology };
    let sopts = rules::service::Options { outbox_wake: wake, ..Default::default() };
    let (_handle, service) = rules::service::spawn(pool.clone(), alerting, inputs, sopts, cancel.clone());
    // Single alerts on a 48-port device (each poll evaluates its 48 interfaces), then the burst on a
    // device of N ports (the poll that brings it evaluates all N).
    tx.send(observation(SINGLE_PORTS, 0..0)).await.unwrap(); // creates the series
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut single = Vec::new();
    for _ in 0..singles {
        receipts.clear();
        let t0 = Instant::now();
        tx.send(observation(SINGLE_PORTS, 0..1)).await.unwrap();
        single.extend(since_ms(t0, &receipts.wait("firing", &[interface(0)]).await));
        tx.send(observation(SINGLE_PORTS, 0..0)).await.unwrap();
        receipts.wait("resolved", &[interface(0)]).await;
    }
    tx.send(observation(n, 0..0)).await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    receipts.clear();
    let all: Vec<String> = (0..n).map(interface).collect();
    let t0 = Instant::now();
    tx.send(observation(n, 0..n)).await.unwrap();
    let burst = since_ms(t0, &receipts.wait("firing", &all).await);
    cancel.cancel();
    let _ = service.await;
    let _ = worker.await;
    pool.close();
    (single, burst)
}

fn am_alert(i: usize, run: usize) -> Value {
    json!({
        "labels": {"alertname": "InterfaceDown", "device": "leaf001", "interface": interface(i), "severity": "major",
                   "run": run.to_string()},
        "annotations": {"summary": format!("leaf001 {} is down", interface(i))},
        "startsAt": Utc::now().to_rfc3339(),
        "generatorURL": "http://bench",
    })
}

/// Alertmanager: (single-alert latencies, burst latencies) in ms.
async fn measure_peer(hook: &str, receipts: &Receipts, n: usize, singles: usize) -> (Vec<f64>, Vec<f64>, String) {
    let am =
        tokio::task::block_in_place(|| Alertmanager::start_with(hook, &["alertname", "device", "interface"], "0s"));
    let http =
        reqwest::Client::builder().tls_backend_preconfigured(rules::notify::tls_client_config()).build().unwrap();
    let version = http
        .get(format!("{}/api/v2/status", am.url()))
        .send()
        .await
        .expect("Alertmanager status")
        .json::<Value>()
        .await
        .map(|v| v["versionInfo"]["version"].as_str().unwrap_or("?").to_string())
        .unwrap_or_default();
    let post = |alerts: Vec<Value>| {
        let http = http.clone();
        let url = format!("{}/api/v2/alerts", am.url());
        async move {
            let r = http.post(url).json(&alerts).send().await.expect("posting alerts");
            assert!(r.status().is_success(), "Alertmanager refused alerts: {}", r.status());
        }
    };
    let mut single = Vec::new();
    // Each single alert opens a new group (a new interface), as each of netwarden's does after the
    // previous one resolved; an alert joining a live group would wait for group_interval instead.
    for run in 0..singles {
        receipts.clear();
        let t0 = Instant::now();
        post(vec![am_alert(n + run, run)]).await;
        single.extend(since_ms(t0, &receipts.wait("firing", &[interface(n + run)]).await));
    }
    receipts.clear();
    let all: Vec<String> = (0..n).map(interface).collect();
    let t0 = Instant::now();
    post((0..n).map(|i| am_alert(i, singles)).collect()).await;
    let burst = since_ms(t0, &receipts.wait("firing", &all).await);
    (single, burst, version)
}

/// Trap → delivered notification through the whole service, `rounds` link failures (each repaired
/// and its resolve delivered before the next). Returns the latencies in ms.
async fn measure_trap_to_notification(hook: &str, receipts: &Receipts, rounds: usize) -> Vec<f64> {
    use collector::sim::{AgentConfig, Fabric, FabricModel, FabricSpec, Fault};
    let dir = tempfile::tempdir().unwrap();
    let tdb = pg::fresh_db();
    let spec: FabricSpec = "spines=1,leaves=1".parse().unwrap();
    let mut fabric = Fabric::build(FabricModel::build(&spec).unwrap());
    fabric.serve("127.0.0.1".parse().unwrap(), 0, &AgentConfig::default()).await.expect("serving the fabric");
    let trap_port = netwarden_tests::util::free_udp_port();
    fabric.send_traps(vec![format!("127.0.0.1:{trap_port}").parse().unwrap()], "public").expect("trap sender");
    let inventory = dir.path().join("inventory.yaml");
    std::fs::write(&inventory, collector::inventory::export_yaml(&fabric.inventory("sim", "public"), true)).unwrap();
    let key = dir.path().join("secret.key");
    std::fs::write(&key, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap();
    // The repeated link failures would make the built-in rule's alert flapping (whose resolves wait
    // until it settles): this rule does not count flaps.
    std::fs::write(dir.path().join("rules.yaml"), RULES).unwrap();
    let alerting = dir.path().join("alerting.yaml");
    std::fs::write(
        &alerting,
        format!(
            "rule_files: [rules.yaml]\nreceivers:\n  - {{name: hook, webhook: {{url: \"{hook}\"}}}}\nroute:\n  receiver: hook\n  \
             group_by: [alertname, device, interface]\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\n"
        ),
    )
    .unwrap();
    let api_port = netwarden_tests::util::free_tcp_port();
    let config = dir.path().join("netwarden.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"{d}\"\n[database]\nurl = \"{db}\"\n[secrets]\nkey_file = \"{key}\"\n[polling]\ninterval = \"1h\"\n\
             timeout = \"500ms\"\n[api]\nlisten = \"127.0.0.1:{api_port}\"\n[inventory]\nfile = \"{inv}\"\n\
             [configs]\nbackup_interval = \"0s\"\n[traps]\nenabled = true\nlisten = \"127.0.0.1:{trap_port}\"\n\
             [alerting]\nfile = \"{al}\"\n",
            d = dir.path().display(),
            db = tdb.connection_string,
            key = key.display(),
            inv = inventory.display(),
            al = alerting.display(),
        ),
    )
    .unwrap();
    let cfg = api::config::Config::load(Some(&config)).expect("configuration");
    tokio::spawn(async move {
        if let Err(e) = api::runtime::serve(cfg, false).await {
            panic!("netwarden serve: {e:#}");
        }
    });
    // The service is up (its first polls are spread over the hour-long interval, so in practice
    // only the traps trigger polls here).
    let http =
        reqwest::Client::builder().tls_backend_preconfigured(rules::notify::tls_client_config()).build().unwrap();
    let deadline = Instant::now() + WAIT;
    while !http.get(format!("http://127.0.0.1:{api_port}/health")).send().await.is_ok_and(|r| r.status().is_success()) {
        assert!(Instant::now() < deadline, "netwarden did not start");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let cut = Fault::LinkDown { a: "leaf001".into(), b: "spine1".into() };
    let eth1 = ["eth1".to_string()];
    let mut out = Vec::new();
    for _ in 0..rounds {
        receipts.clear();
        let t0 = Instant::now();
        fabric.inject(&cut).unwrap();
        out.extend(since_ms(t0, &receipts.wait("firing", &eth1).await));
        fabric.clear(&cut).unwrap();
        receipts.wait("resolved", &eth1).await;
    }
    out
}

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn row(case: &str, ours: &Percentiles, peer: &Percentiles) {
    println!(
        "{case:<22} netwarden min {:>7.1} p50 {:>8.1} ms  p95 {:>8.1} ms  max {:>8.1} ms | Alertmanager min {:>7.1} p50 {:>8.1} ms  p95 {:>8.1} ms  max {:>8.1} ms | p95 ratio {:.2}",
        ours.min,
        ours.p50,
        ours.p95,
        ours.max,
        peer.min,
        peer.p50,
        peer.p95,
        peer.max,
        ours.p95 / peer.p95
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = env_num("NETWARDEN_BENCH_BURST", 2000);
    let singles = env_num("NETWARDEN_BENCH_SINGLES", 20);
    let (hook, receipts) = start_receiver().await;
    let (ours_single, ours_burst) = measure_ours(&hook, &receipts, n, singles).await;
    let (peer_single, peer_burst, version) = measure_peer(&hook, &receipts, n, singles).await;
    let trap = percentiles(measure_trap_to_notification(&hook, &receipts, singles).await);
    println!("alert → webhook latency, {singles} single alerts and a burst of {n} groups (Alertmanager {version})");
    let (os, ob, ps, pb) =
        (percentiles(ours_single), percentiles(ours_burst), percentiles(peer_single), percentiles(peer_burst));
    row("one alert", &os, &ps);
    row(&format!("burst of {n} groups"), &ob, &pb);
    println!(
        "trap → delivered notification ({singles} link failures): p50 {:.1} ms  p95 {:.1} ms  max {:.1} ms",
        trap.p50, trap.p95, trap.max
    );
    for (name, what, ours, peer) in [
        ("alert_latency_single", "one alert", &os, &ps),
        ("alert_latency_burst", &format!("burst of {n} groups, per alert") as &str, &ob, &pb),
    ] {
        let ratio = ours.p95 / peer.p95;
        println!(
            "BENCH name={name} metric=\"alert → webhook p95 ms, {what} (p50 ours {:.1} / peer {:.1})\" ours={:.1} \
             peer={:.1} peer_version=\"Alertmanager {version}\" ratio={ratio:.2} goal=\"< 1\" met={}",
            ours.p50,
            peer.p50,
            ours.p95,
            peer.p95,
            if ratio < 1.0 { "yes" } else { "no" }
        );
    }
}
