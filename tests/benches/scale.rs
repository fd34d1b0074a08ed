//! Benchmark: the whole service at scale. N simulated 48-port switches, the real `netwarden serve`
//! polling them every interval into a private PostgreSQL, for a duration D; then, optionally, a
//! ceiling search that steps N up until polls are missed.
//!
//! Set-up per run: the simulator (`collector::sim`, N independent switches of 48 ports, each agent
//! answering every request after a modelled latency) runs in this process on loopback; its
//! inventory goes through `netwarden inventory import`; `netwarden serve` (the binary, its own
//! process) polls it into a fresh database of the test cluster (`tests/src/pg.rs`). Independent
//! switches rather than a spine-leaf fabric: in the fabric model a spine has one port per leaf, so
//! at N = 10,000 two devices would carry 10,000 ports each; here N × 48 interfaces is exact. The
//! poller still walks the routing tables on every device (they come back empty).
//!
//! Reported, from samples every 5 s: CPU of the netwarden process in cores (over the whole run and
//! over the steady part, after the first interval in which every device is polled the first time and
//! its interfaces are created), the same for PostgreSQL (postmaster and backends) and for this
//! process (the simulator), netwarden's peak (VmHWM) and steady (median VmRSS) memory, poll lag p99
//! (`netwarden_poll_lag_seconds` from `/metrics`: a rolling summary, the highest value seen in the
//! steady part), polls ok / failed / skipped (overruns) and samples dropped (`/api/v1/status`),
//! samples written per second, and database growth per device per day (`pg_total_relation_size` of
//! every partition of `if_sample` and `poll_sample`, growth over the steady part extrapolated).
//! CPU is also given per poll done in the steady part (ms of netwarden / PostgreSQL / simulator CPU
//! per poll), which compares runs that managed different poll rates, and the machine's 1-minute
//! load average at the start and the end of the run: other work on the machine takes CPU from all
//! three.
//!
//! Ceiling search (`NETWARDEN_BENCH_SCALE_CEILING=1`): runs of 3 intervals at a short interval
//! (default 10 s, so one step takes ~40 s instead of 3 min), N doubling from a start value, until a
//! run misses polls (failed or skipped), drops samples or has a lag p99 above 5 s, or the step or
//! time budget ends. The result is given as devices at 60 s with the same polls per second (N × 60 /
//! interval): the same CPU and database load, not the same memory.
//!
//! Usage: `cargo build --release -p api && cargo bench -p netwarden-tests --bench scale` (no root).
//! Environment (`NETWARDEN_BENCH_SCALE_…`): `DEVICES` (1000), `SECONDS` (D, 120), `INTERVAL` (60),
//! `LATENCY_MS` per response (2), `CEILING` (0), `CEILING_INTERVAL` (10), `CEILING_START` (2000),
//! `CEILING_STEPS` (4), `CEILING_BUDGET_S` (600). The full run: `DEVICES=10000 SECONDS=600`.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use collector::sim::agent::{AgentConfig, SimAgent};
use netwarden_tests::bench::{self, Guarded, Summary};
use netwarden_tests::{pg, util};

const PORTS: u32 = 48;
const SAMPLE_EVERY: Duration = Duration::from_secs(5);
/// Roadmap: job-queue wait p95 < 5 s; a poll waiting longer than that for its turn is late.
const LAG_GOAL_S: f64 = 5.0;

fn knob(name: &str, default: u64) -> u64 {
    bench::env_num(&format!("SCALE_{name}"), default)
}

#[derive(Debug, Clone, Copy)]
struct RunSpec {
    devices: usize,
    interval: Duration,
    duration: Duration,
    latency: Duration,
}

/// One sample of the running service.
#[derive(Debug, Clone, Default)]
struct Sample {
    at: Duration,
    netwarden_cpu: Duration,
    pg_cpu: Duration,
    sim_cpu: Duration,
    rss_kib: u64,
    polls_ok: u64,
    polls_failed: u64,
    polls_skipped: u64,
    written: u64,
    dropped: u64,
    lag_p99: Option<f64>,
    db_bytes: Option<i64>,
}

#[derive(Debug, Clone)]
struct RunResult {
    spec: RunSpec,
    import_s: f64,
    startup_s: f64,
    first: Sample,
    steady_from: Sample,
    last: Sample,
    hwm_mib: f64,
    steady_rss_mib: f64,
    lag_p99_max: Option<f64>,
    /// 1-minute load average of the machine at the start and at the end of the run.
    load: (f64, f64),
}

impl RunResult {
    fn window(&self) -> f64 {
        (self.last.at - self.steady_from.at).as_secs_f64().max(1e-9)
    }

    fn cores(&self, f: impl Fn(&Sample) -> Duration, from: &Sample) -> f64 {
        (f(&self.last) - f(from)).as_secs_f64() / (self.last.at - from.at).as_secs_f64().max(1e-9)
    }

    fn missed(&self) -> u64 {
        self.last.polls_failed + self.last.polls_skipped
    }

    /// Milliseconds of a process's CPU per poll done (ok or failed) in the steady part.
    fn ms_per_poll(&self, f: impl Fn(&Sample) -> Duration) -> f64 {
        let polls = (self.last.polls_ok + self.last.polls_failed)
            .saturating_sub(self.steady_from.polls_ok + self.steady_from.polls_failed);
        (f(&self.last) - f(&self.steady_from)).as_secs_f64() * 1000.0 / polls.max(1) as f64
    }

    fn samples_per_s(&self) -> f64 {
        (self.last.written - self.steady_from.written) as f64 / self.window()
    }

    fn db_bytes_per_device_day(&self) -> Option<f64> {
        let grown = self.last.db_bytes? - self.steady_from.db_bytes?;
        Some(grown as f64 / self.spec.devices as f64 / self.window() * 86_400.0)
    }

    fn passed(&self) -> bool {
        self.missed() == 0 && self.last.dropped == 0 && self.lag_p99_max.is_some_and(|l| l <= LAG_GOAL_S)
    }
}

/// The simulated switches, served on 127.0.0.1 by this process's runtime.
fn start_sim(rt: &tokio::runtime::Runtime, n: usize, latency: Duration) -> Vec<SimAgent> {
    let config = AgentConfig { latency_per_request: latency, ..Default::default() };
    let mibs = collector::sim::device::switches(n, PORTS, 10_000, device_name);
    let ip = std::net::IpAddr::from([127, 0, 0, 1]);
    rt.block_on(collector::sim::agent::bind_agents(ip, 0, mibs, &config)).expect("binding the simulated agents")
}

fn device_name(i: usize) -> String {
    format!("scale-sw{:05}", i + 1)
}

fn write_inventory(path: &Path, agents: &[SimAgent]) {
    let devices: Vec<collector::inventory::Device> = agents
        .iter()
        .enumerate()
        .map(|(i, a)| collector::inventory::Device {
            id: None,
            name: device_name(i),
            host: a.local_addr().ip().to_string(),
            snmp_port: a.local_addr().port(),
            site: Some("bench".into()),
            role: Some("leaf".into()),
            vendor: Some("netwarden-sim".into()),
            platform: None,
            tags: vec!["sim".into()],
            snmp: collector::inventory::SnmpCredentials::V2c { community: a.config().community.clone() },
            ssh: None,
            poll_interval: None,
            backup_interval: None,
        })
        .collect();
    std::fs::write(path, collector::inventory::export_yaml(&devices, true)).expect("writing the inventory");
}

fn write_config(dir: &Path, db: &pg::TestDb, api: SocketAddr, interval: Duration) -> std::path::PathBuf {
    let key = dir.join("secret.key");
    collector::secrets::SecretBox::generate_key_file(&key).expect("secret key");
    let toml = format!(
        "data_dir = {data:?}\n[database]\nurl = {url:?}\n[secrets]\nkey_file = {key:?}\n[api]\nlisten = \"{api}\"\n\
         [polling]\ninterval = \"{secs}s\"\n",
        data = dir.join("data").display().to_string(),
        url = db.connection_string,
        key = key.display().to_string(),
        secs = interval.as_secs(),
    );
    let path = dir.join("netwarden.toml");
    std::fs::write(&path, toml).expect("writing netwarden.toml");
    path
}

fn netwarden(config: &Path, log: &Path) -> Command {
    let mut cmd = Command::new(bench::netwarden_bin());
    let log = std::fs::File::create(log).expect("log file");
    cmd.arg("--config")
        .arg(config)
        .env("NETWARDEN_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log);
    cmd
}

fn import(config: &Path, inventory: &Path, log: &Path) -> f64 {
    let t0 = Instant::now();
    let status = netwarden(config, log).args(["inventory", "import"]).arg(inventory).status().expect("import");
    assert!(status.success(), "netwarden inventory import failed:\n{}", util::tail(log, 20));
    t0.elapsed().as_secs_f64()
}

fn start_serve(config: &Path, log: &Path, api: SocketAddr) -> (Guarded, f64) {
    let t0 = Instant::now();
    let mut serve = Guarded::spawn(netwarden(config, log).arg("serve"), "netwarden serve", Duration::from_secs(60));
    let deadline = t0 + Duration::from_secs(120);
    while !matches!(bench::http_get(api, "/health", Duration::from_secs(2)), Ok((200, _))) {
        assert!(!serve.exited(), "netwarden serve exited:\n{}", util::tail(log, 30));
        assert!(Instant::now() < deadline, "netwarden serve not healthy after 120 s:\n{}", util::tail(log, 30));
        std::thread::sleep(Duration::from_millis(100));
    }
    (serve, t0.elapsed().as_secs_f64())
}

/// Bytes of every partition (and index) of the sample tables.
async fn sample_tables_bytes(client: &tokio_postgres::Client) -> Option<i64> {
    let sql = "SELECT coalesce(sum(pg_total_relation_size(relid)), 0)::bigint FROM \
               (SELECT relid FROM pg_partition_tree('if_sample') UNION ALL \
                SELECT relid FROM pg_partition_tree('poll_sample')) t";
    client.query_one(sql, &[]).await.ok().map(|r| r.get(0))
}

struct Probe<'a> {
    rt: &'a tokio::runtime::Runtime,
    api: SocketAddr,
    pid: u32,
    postmaster: u32,
    db: tokio_postgres::Client,
    started: Instant,
}

impl Probe<'_> {
    fn sample(&self, with_db_size: bool) -> Sample {
        let status = bench::http_get(self.api, "/api/v1/status", Duration::from_secs(10))
            .ok()
            .and_then(|(_, body)| serde_json::from_str::<serde_json::Value>(&body).ok())
            .unwrap_or_default();
        let n = |path: &str| status.pointer(path).and_then(serde_json::Value::as_u64).unwrap_or(0);
        let metrics = bench::http_get(self.api, "/metrics", Duration::from_secs(10)).map(|r| r.1).unwrap_or_default();
        Sample {
            at: self.started.elapsed(),
            netwarden_cpu: bench::proc_cpu(self.pid).unwrap_or_default(),
            pg_cpu: bench::tree_cpu(self.postmaster),
            sim_cpu: bench::self_cpu(),
            rss_kib: bench::proc_status_kib(self.pid, "VmRSS").unwrap_or(0),
            polls_ok: n("/polls/ok"),
            polls_failed: n("/polls/failed"),
            polls_skipped: n("/polls/skipped"),
            written: n("/samples/written"),
            dropped: n("/samples/dropped"),
            lag_p99: bench::prom_value(&metrics, "netwarden_poll_lag_seconds{quantile=\"0.99\"}"),
            db_bytes: if with_db_size { self.rt.block_on(sample_tables_bytes(&self.db)) } else { None },
        }
    }
}

/// The machine's 1-minute load average.
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().and_then(|l| l.parse().ok()))
        .unwrap_or(f64::NAN)
}

fn run(rt: &tokio::runtime::Runtime, spec: RunSpec) -> RunResult {
    let load_start = load_average();
    let dir = tempfile::Builder::new().prefix("nw-bench-scale-").tempdir().expect("tempdir");
    let (config_dir, log) = (dir.path(), dir.path().join("netwarden.log"));
    let db = pg::fresh_db();
    let agents = start_sim(rt, spec.devices, spec.latency);
    write_inventory(&config_dir.join("inventory.yaml"), &agents);
    let api = SocketAddr::from(([127, 0, 0, 1], util::free_tcp_port()));
    let config = write_config(config_dir, &db, api, spec.interval);
    let import_s = import(&config, &config_dir.join("inventory.yaml"), &log);
    let (mut serve, startup_s) = start_serve(&config, &log, api);
    let probe = Probe {
        rt,
        api,
        pid: serve.pid(),
        postmaster: pg::server().pid().expect("postmaster pid") as u32,
        db: rt.block_on(db.connect()),
        started: Instant::now(),
    };
    let first = probe.sample(true);
    let steady_at = if spec.duration > spec.interval { spec.interval } else { Duration::ZERO };
    let mut steady_from: Option<Sample> = (steady_at.is_zero()).then(|| first.clone());
    let (mut rss, mut lags) = (Vec::new(), Vec::new());
    let mut last = first.clone();
    while last.at < spec.duration {
        std::thread::sleep(SAMPLE_EVERY.min(spec.duration.saturating_sub(last.at)).max(Duration::from_millis(100)));
        assert!(!serve.exited(), "netwarden serve exited during the run:\n{}", util::tail(&log, 30));
        let due = steady_from.is_none() && probe.started.elapsed() >= steady_at;
        last = probe.sample(due || probe.started.elapsed() >= spec.duration);
        if due {
            steady_from = Some(last.clone());
        }
        if steady_from.is_some() {
            rss.push(last.rss_kib);
            lags.extend(last.lag_p99);
        }
    }
    let hwm_mib = bench::proc_status_kib(serve.pid(), "VmHWM").unwrap_or(0) as f64 / 1024.0;
    drop(serve); // SIGTERM: ordered shutdown (stop polling, flush samples), then by pid if it hangs
    drop(agents);
    rss.sort_unstable();
    RunResult {
        spec,
        import_s,
        startup_s,
        first,
        steady_from: steady_from.expect("steady window"),
        last,
        hwm_mib,
        steady_rss_mib: rss.get(rss.len() / 2).copied().unwrap_or(0) as f64 / 1024.0,
        lag_p99_max: lags.into_iter().reduce(f64::max),
        load: (load_start, load_average()),
    }
}

fn print_table(results: &[RunResult]) {
    println!(
        "| devices × 48 ports | interval s | run s | netwarden CPU cores (steady / whole run) | PostgreSQL cores | \
         simulator cores | RSS MiB steady / peak | poll lag p99 s | polls ok | failed | skipped (overruns) | \
         samples/s | dropped | DB MB per device per day | import s | start s | CPU ms per poll: netwarden / PostgreSQL / \
         simulator | load avg start → end |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for r in results {
        let steady = &r.steady_from;
        println!(
            "| {} | {} | {:.0} | {:.3} / {:.3} | {:.3} | {:.3} | {:.0} / {:.0} | {} | {} | {} | {} | {:.0} | {} | {} | {:.1} | {:.1} | {:.2} / {:.2} / {:.2} | {:.1} → {:.1} |",
            r.spec.devices,
            r.spec.interval.as_secs(),
            r.last.at.as_secs_f64(),
            r.cores(|s| s.netwarden_cpu, steady),
            r.cores(|s| s.netwarden_cpu, &r.first),
            r.cores(|s| s.pg_cpu, steady),
            r.cores(|s| s.sim_cpu, steady),
            r.steady_rss_mib,
            r.hwm_mib,
            r.lag_p99_max.map_or("—".into(), |l| format!("{l:.3}")),
            r.last.polls_ok,
            r.last.polls_failed,
            r.last.polls_skipped,
            r.samples_per_s(),
            r.last.dropped,
            r.db_bytes_per_device_day().map_or("—".into(), |b| format!("{:.2}", b / 1e6)),
            r.import_s,
            r.startup_s,
            r.ms_per_poll(|s| s.netwarden_cpu),
            r.ms_per_poll(|s| s.pg_cpu),
            r.ms_per_poll(|s| s.sim_cpu),
            r.load.0,
            r.load.1,
        );
    }
}

fn summary(r: &RunResult) -> Summary {
    Summary {
        name: "scale",
        metric: format!(
            "{} devices × 48 ports @ {} s for {:.0} s: netwarden CPU cores (steady), lag p99, missed polls",
            r.spec.devices,
            r.spec.interval.as_secs(),
            r.last.at.as_secs_f64()
        ),
        ours: format!(
            "{:.3} cores, lag p99 {} s, {} missed, {:.0} samples/s, {:.0} MiB peak, load {:.1} → {:.1}",
            r.cores(|s| s.netwarden_cpu, &r.steady_from),
            r.lag_p99_max.map_or("—".into(), |l| format!("{l:.3}")),
            r.missed(),
            r.samples_per_s(),
            r.hwm_mib,
            r.load.0,
            r.load.1
        ),
        goal: format!("0 missed, 0 dropped, lag p99 <= {LAG_GOAL_S} s"),
        met: r.passed(),
        ..Default::default()
    }
}

/// Doubles N from the start value at a short interval until a run fails or the budget ends.
fn ceiling(rt: &tokio::runtime::Runtime, latency: Duration, max_devices: usize) -> Vec<RunResult> {
    let interval = Duration::from_secs(knob("CEILING_INTERVAL", 10).max(1));
    let steps = knob("CEILING_STEPS", 4).max(1);
    let budget = Duration::from_secs(knob("CEILING_BUDGET_S", 600));
    let mut n = knob("CEILING_START", 2000).max(1) as usize;
    let t0 = Instant::now();
    let mut results: Vec<RunResult> = Vec::new();
    for _ in 0..steps {
        let step_estimate = results.last().map_or(Duration::ZERO, |r| {
            Duration::from_secs_f64((r.last.at.as_secs_f64() + r.import_s + r.startup_s) * 2.0)
        });
        if n > max_devices || t0.elapsed() + step_estimate > budget {
            break;
        }
        let spec = RunSpec { devices: n, interval, duration: interval * 3, latency };
        eprintln!("ceiling step: {n} devices at {} s", interval.as_secs());
        let r = run(rt, spec);
        let passed = r.passed();
        results.push(r);
        if !passed {
            break;
        }
        n *= 2;
    }
    results
}

fn ceiling_summary(results: &[RunResult]) -> Summary {
    let best = results.iter().filter(|r| r.passed()).map(|r| r.spec.devices).max();
    let interval = results.first().map_or(60, |r| r.spec.interval.as_secs());
    let at_60 = best.map(|n| n as u64 * 60 / interval);
    let failed_at = results.iter().find(|r| !r.passed()).map(|r| r.spec.devices);
    Summary {
        name: "scale_ceiling",
        metric: format!("devices at 60 s (same polls/s as the largest passing N at {interval} s)"),
        ours: match (at_60, failed_at) {
            (Some(d), Some(f)) => format!("{d} (failed at {} ≙ {})", f, f as u64 * 60 / interval),
            (Some(d), None) => format!("≥ {d} (no step failed)"),
            (None, _) => "none passed".into(),
        },
        goal: ">= 10000".into(),
        met: at_60.is_some_and(|d| d >= 10_000),
        ..Default::default()
    }
}

/// Lifts the open-file limit to its hard maximum (one UDP socket per simulated device); returns
/// how many devices fit with room to spare.
fn raise_nofile() -> usize {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (_, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    let _ = setrlimit(Resource::RLIMIT_NOFILE, hard, hard);
    let (soft, _) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    (soft as usize).saturating_sub(2000)
}

fn main() {
    let max_devices = raise_nofile();
    let spec = RunSpec {
        devices: knob("DEVICES", 1000).max(1) as usize,
        interval: Duration::from_secs(knob("INTERVAL", 60).max(1)),
        duration: Duration::from_secs(knob("SECONDS", 120).max(10)),
        latency: Duration::from_millis(knob("LATENCY_MS", 2)),
    };
    assert!(spec.devices <= max_devices, "{} devices need more open files than the limit allows", spec.devices);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let main_run = run(&rt, spec);
    println!(
        "## netwarden serve at scale: {} simulated switches × {PORTS} ports, agent latency {} ms per response",
        spec.devices,
        spec.latency.as_millis()
    );
    println!();
    println!(
        "Steady = after the first interval. PostgreSQL {}: private cluster, fsync off. Lag p99: highest rolling p99 \
         of netwarden_poll_lag_seconds seen in the steady part.",
        pg_version(&rt)
    );
    println!();
    print_table(std::slice::from_ref(&main_run));
    println!();
    summary(&main_run).print();
    if knob("CEILING", 0) == 1 {
        let steps = ceiling(&rt, spec.latency, max_devices);
        println!();
        println!("## Ceiling search (runs of 3 intervals, N doubling until polls are missed)");
        println!();
        print_table(&steps);
        println!();
        ceiling_summary(&steps).print();
    }
}

fn pg_version(rt: &tokio::runtime::Runtime) -> String {
    let db = pg::fresh_db();
    rt.block_on(async {
        let c = db.connect().await;
        c.query_one("SHOW server_version", &[]).await.map(|r| r.get::<_, String>(0)).unwrap_or_default()
    })
}
