//! Benchmark: rule evaluation over many interface series, netwarden's alert engine versus Prometheus
//! (Debian's `prometheus`) evaluating equivalent alerting rules over the same values, in the same run.
//!
//! Both sides see N interface series (devices of 48 interfaces) and two rules, each true for about
//! 1 % of the series, on a different 1 % at every pass so alerts fire and resolve:
//! - InterfaceDown: `admin_status == "up" && oper_status == "down"`, in PromQL
//!   `netwarden_if_oper_status == 2 and on(device, interface) netwarden_if_admin_status == 1` (the
//!   small side on the left, as one writes it for Prometheus; another 1 % is admin down and oper
//!   down, so the `and` matters);
//! - InterfaceErrors: `in_errors > 1`, in PromQL `netwarden_if_in_errors > 1`.
//!
//! netwarden: a pass is one poll's readings of every series (12 fields each, built before timing)
//! given to `Engine::ingest` device by device, as the service does per observation; that stores
//! them and evaluates every rule on every series. Reported: median wall and CPU time of the passes
//! after the first (which creates the series), evaluations/s, and the peak RSS of a child process
//! that does only this (so the figure is the engine's plus one pass of readings). The same passes
//! against an engine without interface rules give the store's share of the time.
//! Prometheus: scrapes the same values from an HTTP endpoint this process serves on 127.0.0.1
//! (text exposition, 3 metrics per series, the next pass's values at every scrape) and evaluates
//! the two rules as one group. Reported: the group's evaluation time
//! (`prometheus_rule_group_last_duration_seconds`, median over the cycles after the first one that
//! saw every series), the per-rule times from `/api/v1/rules`, the median scrape duration, the
//! process's CPU from one evaluation to the next over intervals without a scrape (`/proc/PID/stat`),
//! and its peak RSS. netwarden's pass includes storing the values, which for Prometheus is the
//! scrape, so the ratio charges netwarden for more work than the peer. Both sides run one after the
//! other, never at the same time; both inherit this process's nice level.
//!
//! Usage: `cargo bench -p netwarden-tests --bench rules_eval` (no root; needs `/usr/bin/prometheus`:
//! `apt-get install prometheus`). Environment:
//! - `NETWARDEN_BENCH_SERIES`: series for the comparison (default 100000);
//! - `NETWARDEN_BENCH_LARGE_SERIES`: series of the netwarden-only scale run (default 500000, 0 skips it);
//! - `NETWARDEN_BENCH_PASSES`: measured netwarden passes at the comparison size (default 5, after the
//!   pass that creates the series); `NETWARDEN_BENCH_LARGE_PASSES` the same for the scale run (default 3);
//! - `NETWARDEN_BENCH_CYCLES`: Prometheus evaluation cycles measured (default 6);
//! - `NETWARDEN_BENCH_INTERVAL`: Prometheus evaluation interval in seconds (default 5);
//! - `NETWARDEN_BENCH_SCRAPE_INTERVAL`: Prometheus scrape interval in seconds (default 15, so most
//!   evaluations do not overlap a scrape and their CPU can be told apart);
//! - `NETWARDEN_BENCH_PROMETHEUS`: the prometheus binary (default `/usr/bin/prometheus`); `skip`
//!   runs the netwarden side only.

use nix::sys::resource::{UsageWho, getrusage};
use rules::engine::Engine;
use rules::source::{DeviceMeta, Reading, SeriesKey, SourceKind};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const INTERFACES: usize = 48;
/// The child process that measures netwarden for one size reads its job from this variable.
const CHILD_ENV: &str = "NETWARDEN_RULES_BENCH_CHILD";

const RULES_YAML: &str = r#"rules:
  - name: InterfaceDown
    source: interface
    when: admin_status == "up" && oper_status == "down"
    severity: major
    annotations:
      summary: "{{ device }} {{ interface }} is down"
  - name: InterfaceErrors
    source: interface
    when: in_errors > 1
    severity: warning
    annotations:
      summary: "{{ device }} {{ interface }} has {{ in_errors }} input errors/s"
"#;

/// The store-only engine: a rule on another kind, so interface readings are stored, not evaluated.
const NO_INTERFACE_RULES_YAML: &str = r#"rules:
  - name: DeviceDown
    source: device
    when: status == "down"
    severity: critical
"#;

const PROMETHEUS_RULES: &str = r#"groups:
  - name: netwarden_bench
    rules:
      - alert: InterfaceDown
        expr: netwarden_if_oper_status == 2 and on(device, interface) netwarden_if_admin_status == 1
        labels:
          severity: major
        annotations:
          summary: "{{ $labels.device }} {{ $labels.interface }} is down"
      - alert: InterfaceErrors
        expr: netwarden_if_in_errors > 1
        labels:
          severity: warning
        annotations:
          summary: "{{ $labels.device }} {{ $labels.interface }} has {{ $value }} input errors/s"
"#;

fn env_num(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) if !v.trim().is_empty() => {
            v.replace(['_', ','], "").trim().parse().unwrap_or_else(|_| panic!("{name}={v:?} is not a number"))
        }
        _ => default,
    }
}

fn cpu_self() -> Duration {
    let u = getrusage(UsageWho::RUSAGE_SELF).expect("getrusage");
    let t = |tv: nix::sys::time::TimeVal| Duration::new(tv.tv_sec() as u64, tv.tv_usec() as u32 * 1000);
    t(u.user_time()) + t(u.system_time())
}

/// A field of `/proc/<pid>/status` in kB (`VmRSS`, `VmHWM`).
fn status_kb(pid: &str, field: &str) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// utime + stime of a process, from `/proc/<pid>/stat`, in seconds.
fn proc_cpu(pid: u32, ticks_per_sec: f64) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let Some(close) = stat.rfind(')') else { return 0.0 };
    let f: Vec<u64> = stat[close + 2..].split(' ').map(|x| x.parse().unwrap_or(0)).collect();
    (f.get(11).copied().unwrap_or(0) + f.get(12).copied().unwrap_or(0)) as f64 / ticks_per_sec
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

fn median(mut v: Vec<f64>) -> f64 {
    assert!(!v.is_empty(), "median of nothing");
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The values of one series at one pass, shared by both sides.
#[derive(Clone, Copy)]
struct Values {
    admin_up: bool,
    oper_up: bool,
    in_errors: f64,
    in_bps: f64,
    speed_bps: f64,
}

fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Series `i` at pass `pass`: 1 % admin up and oper down (InterfaceDown true), 1 % admin down and
/// oper down, the rest up; 1 % with 1–11 input errors/s (InterfaceErrors true), the rest below 1.
/// A different 1 % every pass, so alerts fire and resolve between passes.
fn values(i: usize, pass: u64) -> Values {
    let h = mix((i as u64) << 20 ^ pass);
    let g = mix(h);
    let (admin_up, oper_up) = match h % 100 {
        0 => (true, false),
        1 => (false, false),
        _ => (true, true),
    };
    let in_errors = if g % 100 == 0 { 1.0 + ((g >> 8) % 1000) as f64 / 100.0 } else { ((g >> 8) % 100) as f64 / 100.0 };
    let speed_bps = if i % 5 == 0 { 10e9 } else { 1e9 };
    let in_bps = if oper_up { ((g >> 20) % 1000) as f64 / 1000.0 * speed_bps * 0.5 } else { 0.0 };
    Values { admin_up, oper_up, in_errors, in_bps, speed_bps }
}

fn device_name(d: usize) -> String {
    format!("sw{d:06}")
}

fn interface_name(port: usize) -> String {
    format!("Ethernet{port}")
}

/// One device's readings for a pass, as `rules::source::readings` builds them from a poll: labels
/// device/interface/if_index, the 12 interface fields, statuses as fresh strings.
fn device_readings(device: usize, first: usize, count: usize, pass: u64) -> Vec<Reading> {
    let kind = SourceKind::Interface;
    let types = kind.field_types();
    let field = |name: &str, text: &str| {
        let i = kind.field_index(name).expect("interface field");
        types[i].parse(text).expect("a valid field value")
    };
    let dev = device_name(device);
    (0..count)
        .map(|port| {
            let v = values(first + port, pass);
            let iface = interface_name(port + 1);
            let mut labels = BTreeMap::new();
            labels.insert("device".to_string(), dev.clone());
            labels.insert("interface".to_string(), iface.clone());
            labels.insert("if_index".to_string(), (port + 1).to_string());
            let status = |up: bool| if up { "up" } else { "down" };
            let num = |x: f64| format!("{x}");
            let out_bps = v.in_bps * 0.7;
            let fields = vec![
                field("admin_status", status(v.admin_up)),
                field("oper_status", status(v.oper_up)),
                field("speed_bps", &num(v.speed_bps)),
                field("in_bps", &num(v.in_bps)),
                field("out_bps", &num(out_bps)),
                field("in_pps", &num((v.in_bps / 8.0 / 700.0).round())),
                field("out_pps", &num((out_bps / 8.0 / 900.0).round())),
                field("in_errors", &num(v.in_errors)),
                field("out_errors", &num(0.0)),
                field("in_discards", &num(0.0)),
                field("out_discards", &num(0.0)),
                field("utilisation", &num(v.in_bps / v.speed_bps * 100.0)),
            ];
            Reading { key: SeriesKey { kind, device_id: device as i64, item: Arc::from(iface) }, labels, fields }
        })
        .collect()
}

/// Series `0..n` grouped by device: (device id, first series index, interfaces).
fn devices(n: usize) -> Vec<(usize, usize, usize)> {
    (0..n.div_ceil(INTERFACES)).map(|d| (d + 1, d * INTERFACES, INTERFACES.min(n - d * INTERFACES))).collect()
}

// ---------------------------------------------------------------------------------------------
// netwarden side (runs in a child process, one per size, so its peak RSS is its own)

fn run_passes(yaml: &str, n: usize, passes: u64) -> Value {
    let (rules, errors) = rules::rule::parse_rules("rules_eval.yaml", yaml);
    assert!(errors.is_empty(), "bench rules: {errors:?}");
    let rule_count = rules.iter().filter(|r| r.source == SourceKind::Interface).count();
    let mut engine = Engine::new(rules);
    let devs = devices(n);
    let metas = devs
        .iter()
        .map(|&(id, _, _)| DeviceMeta { id: id as i64, name: device_name(id), ..Default::default() })
        .collect();
    let base_ms: i64 = 1_800_000_000_000;
    engine.set_devices(metas, base_ms);
    let kinds: &[SourceKind] = &[SourceKind::Interface];
    let mut out = Vec::new();
    let mut rss_after_first = 0;
    for pass in 0..=passes {
        let now = base_ms + pass as i64 * 60_000;
        let evals0 = engine.stats.evaluations;
        let (mut wall, mut cpu, mut transitions) = (0.0, 0.0, 0usize);
        if pass == 0 {
            // The pass that creates the series builds each device's readings just before its ingest,
            // so the RSS after it is the engine's (plus allocator slack), not a pass of readings too.
            // Only the ingest calls are timed.
            for &(id, first, count) in &devs {
                let batch = device_readings(id, first, count, pass);
                let (c0, t0) = (cpu_self(), Instant::now());
                transitions += engine.ingest(batch, Some((id as i64, kinds)), false, now).len();
                wall += t0.elapsed().as_secs_f64();
                cpu += (cpu_self() - c0).as_secs_f64();
            }
            rss_after_first = status_kb("self", "VmRSS");
        } else {
            let readings: Vec<Vec<Reading>> =
                devs.iter().map(|&(id, first, count)| device_readings(id, first, count, pass)).collect();
            let (c0, t0) = (cpu_self(), Instant::now());
            for (batch, &(id, _, _)) in readings.into_iter().zip(&devs) {
                transitions += engine.ingest(batch, Some((id as i64, kinds)), false, now).len();
            }
            wall = t0.elapsed().as_secs_f64();
            cpu = (cpu_self() - c0).as_secs_f64();
        }
        let evaluations = engine.stats.evaluations - evals0;
        assert_eq!(engine.series_count(), n, "the engine holds {} series, expected {n}", engine.series_count());
        assert_eq!(evaluations, (n * rule_count) as u64, "pass {pass}: {evaluations} evaluations");
        assert_eq!(engine.stats.eval_errors, 0, "evaluation errors");
        out.push(json!({"wall": wall, "cpu": cpu, "evaluations": evaluations, "transitions": transitions,
                        "active": engine.active().count()}));
    }
    drop(engine);
    json!({"passes": out, "rss_after_first_kb": rss_after_first, "rules": rule_count})
}

fn child_main(spec: &str) {
    let mut parts = spec.split(',').map(|p| p.parse::<u64>().expect("child spec"));
    let (n, passes) = (parts.next().expect("series") as usize, parts.next().expect("passes"));
    let rss_start = status_kb("self", "VmRSS");
    let with_rules = run_passes(RULES_YAML, n, passes);
    let hwm = status_kb("self", "VmHWM");
    let store_only = run_passes(NO_INTERFACE_RULES_YAML, n, passes);
    let result = json!({"series": n, "rss_start_kb": rss_start, "hwm_kb": hwm,
                        "with_rules": with_rules, "store_only": store_only});
    println!("RESULT {result}");
}

struct Ours {
    series: usize,
    rules: u64,
    first_pass_s: f64,
    pass_s: f64,
    cpu_s: f64,
    evals_per_s: f64,
    store_s: f64,
    store_cpu_s: f64,
    transitions: f64,
    active: u64,
    hwm_mb: f64,
    engine_mb: f64,
    all_passes: Vec<f64>,
}

fn measure_ours(n: usize, passes: u64) -> Ours {
    let exe = std::env::current_exe().expect("current exe");
    let out = Command::new(exe)
        .env(CHILD_ENV, format!("{n},{passes}"))
        .stderr(Stdio::inherit())
        .output()
        .expect("running the netwarden side in a child process");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "the netwarden side failed ({}): {text}", out.status);
    let line = text.lines().find_map(|l| l.strip_prefix("RESULT ")).expect("the child's RESULT line");
    let r: Value = serde_json::from_str(line).expect("the child's JSON");
    let passes_of = |v: &Value, key: &str| -> Vec<f64> {
        v["passes"].as_array().unwrap()[1..].iter().map(|p| p[key].as_f64().unwrap()).collect()
    };
    let w = &r["with_rules"];
    let s = &r["store_only"];
    let pass_s = median(passes_of(w, "wall"));
    let evaluations = w["passes"][1]["evaluations"].as_f64().unwrap();
    let kb = |v: &Value| v.as_f64().unwrap() / 1024.0;
    Ours {
        series: n,
        rules: w["rules"].as_u64().unwrap(),
        first_pass_s: w["passes"][0]["wall"].as_f64().unwrap(),
        pass_s,
        cpu_s: median(passes_of(w, "cpu")),
        evals_per_s: evaluations / pass_s,
        store_s: median(passes_of(s, "wall")),
        store_cpu_s: median(passes_of(s, "cpu")),
        transitions: median(passes_of(w, "transitions")),
        active: w["passes"].as_array().unwrap().last().unwrap()["active"].as_u64().unwrap(),
        hwm_mb: kb(&r["hwm_kb"]),
        engine_mb: kb(&w["rss_after_first_kb"]) - kb(&r["rss_start_kb"]),
        all_passes: passes_of(w, "wall"),
    }
}

// ---------------------------------------------------------------------------------------------
// Prometheus side

/// The exposition Prometheus scrapes at pass `pass`: the same values as netwarden's readings.
fn exposition(n: usize, pass: u64) -> Vec<u8> {
    let mut body = String::with_capacity(n * 3 * 100);
    let series_labels = |i: usize| {
        let (d, port) = (i / INTERFACES + 1, i % INTERFACES + 1);
        format!("device=\"{}\",interface=\"{}\",if_index=\"{port}\"", device_name(d), interface_name(port))
    };
    let vals: Vec<Values> = (0..n).map(|i| values(i, pass)).collect();
    let metrics: [(&str, &dyn Fn(&Values) -> f64); 3] = [
        ("netwarden_if_admin_status", &|v| if v.admin_up { 1.0 } else { 2.0 }),
        ("netwarden_if_oper_status", &|v| if v.oper_up { 1.0 } else { 2.0 }),
        ("netwarden_if_in_errors", &|v| v.in_errors),
    ];
    for (name, value) in metrics {
        body.push_str(&format!("# TYPE {name} gauge\n"));
        for (i, v) in vals.iter().enumerate() {
            body.push_str(&format!("{name}{{{}}} {}\n", series_labels(i), value(v)));
        }
    }
    body.into_bytes()
}

/// A scrape target on 127.0.0.1 serving [`exposition`], the next pass at every scrape.
struct Target {
    port: u16,
    scrapes: Arc<AtomicU64>,
    /// When the last scrape was served, in ms since the Unix epoch.
    last_scrape_ms: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Target {
    fn start(n: usize) -> Target {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding the scrape target on 127.0.0.1");
        listener.set_nonblocking(true).expect("non-blocking listener");
        let port = listener.local_addr().expect("target address").port();
        let (scrapes, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
        let last_scrape_ms = Arc::new(AtomicU64::new(0));
        let (s, st, last) = (scrapes.clone(), stop.clone(), last_scrape_ms.clone());
        let thread = std::thread::spawn(move || {
            // The next body is rendered right after a scrape, so rendering is not part of the next one.
            let mut next = exposition(n, 0);
            while !st.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        if serve(conn, &next).is_ok() {
                            last.store(unix_ms(), Ordering::Relaxed);
                            let served = s.fetch_add(1, Ordering::Relaxed) + 1;
                            next = exposition(n, served);
                        }
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        Target { port, scrapes, last_scrape_ms, stop, thread: Some(thread) }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Answers one HTTP request on `conn` with `body`.
fn serve(conn: TcpStream, body: &[u8]) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    conn.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    // Request line and headers, up to the blank line.
    for _ in 0..100 {
        line.clear();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" || line == "\n" {
            break;
        }
    }
    let mut conn = conn;
    write!(
        conn,
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )?;
    conn.write_all(body)?;
    conn.flush()
}

/// A GET on 127.0.0.1 (HTTP/1.0, so the answer is not chunked); the body of a 200.
fn http_get(port: u16, path: &str) -> Result<String, String> {
    let mut conn = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    conn.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
    write!(conn, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n").map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    conn.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").ok_or("no HTTP header")?;
    if !head.starts_with("HTTP/1.1 200") && !head.starts_with("HTTP/1.0 200") {
        return Err(format!("{path}: {}", head.lines().next().unwrap_or("")));
    }
    Ok(body.to_string())
}

/// A sample `name{…rule_group="…;<group>"…} value` (or `name value`) from a /metrics text.
fn metric(text: &str, name: &str, group: Option<&str>) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let rest = l.strip_prefix(name)?;
        let (labels, value) = match rest.strip_prefix('{') {
            Some(r) => r.split_once("} ")?,
            None => ("", rest.strip_prefix(' ')?),
        };
        if group.is_some_and(|g| !labels.contains(&format!(";{g}\""))) {
            return None;
        }
        value.trim().parse().ok()
    })
}

struct Peer {
    version: String,
    group_s: f64,
    group_runs: Vec<f64>,
    rules: Vec<(String, f64, usize)>,
    scrape_s: f64,
    /// Median CPU of the process from one evaluation to the next, over intervals without a scrape.
    cpu_per_eval_s: Option<f64>,
    hwm_mb: f64,
    cycles: usize,
}

fn prometheus_version(bin: &str) -> String {
    Command::new(bin)
        .arg("--version")
        .output()
        .ok()
        .map(|o| {
            let s = String::from_utf8_lossy(&o.stdout).into_owned() + String::from_utf8_lossy(&o.stderr).as_ref();
            s.lines().next().unwrap_or("").trim().to_string()
        })
        .unwrap_or_else(|| "unknown".into())
}

fn stop(child: &mut Child) {
    netwarden_tests::util::stop_child(child, Duration::from_secs(10));
}

fn measure_prometheus(bin: &str, n: usize, cycles: usize, interval_s: u64, scrape_s: u64) -> Peer {
    let version = prometheus_version(bin);
    let dir = tempfile::Builder::new().prefix("nw-rules-bench-").tempdir().expect("a temp dir for Prometheus");
    let target = Target::start(n);
    std::fs::write(dir.path().join("rules.yml"), PROMETHEUS_RULES).expect("writing rules.yml");
    let config = format!(
        "global:\n  scrape_interval: {scrape_s}s\n  scrape_timeout: {scrape_s}s\n  evaluation_interval: {interval_s}s\n\
         rule_files: [rules.yml]\nscrape_configs:\n  - job_name: netwarden_bench\n    static_configs:\n      \
         - targets: ['127.0.0.1:{}']\n",
        target.port
    );
    let config_path = dir.path().join("prometheus.yml");
    std::fs::write(&config_path, config).expect("writing prometheus.yml");
    let log = dir.path().join("prometheus.log");
    let (mut child, port) = 'start: {
        for _ in 0..5 {
            let port = netwarden_tests::util::free_tcp_port();
            let mut child = Command::new(bin)
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--log.level=warn")
                .current_dir(dir.path())
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).expect("prometheus log file"))
                .spawn()
                .unwrap_or_else(|e| panic!("starting {bin}: {e}"));
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if http_get(port, "/-/ready").is_ok() {
                    break 'start (child, port);
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            stop(&mut child);
        }
        panic!("Prometheus did not start: {}", netwarden_tests::util::tail(&log, 20));
    };
    let pid = child.id();
    let ticks = clock_ticks();
    let group = "netwarden_bench";
    // Evaluations are counted once every series is in the head (a scrape has completed); the first
    // of those is skipped (it creates the ALERTS series), the next `cycles` are measured.
    let deadline = Instant::now() + Duration::from_secs(60 + 2 * scrape_s + (cycles as u64 + 3) * interval_s * 2);
    let mut full_since: Option<f64> = None;
    let mut last_eval = 0.0;
    // (duration, prometheus cpu, scrapes served, ms since the last scrape), sampled just after each evaluation
    let mut evals: Vec<(f64, f64, u64, u64)> = Vec::new();
    let result = loop {
        if Instant::now() > deadline {
            break Err(format!(
                "timed out: {} measured evaluations, {} scrapes, series in head complete: {}",
                evals.len(),
                target.scrapes.load(Ordering::Relaxed),
                full_since.is_some()
            ));
        }
        if let Ok(Some(status)) = child.try_wait() {
            break Err(format!("prometheus exited: {status}"));
        }
        std::thread::sleep(Duration::from_millis(250));
        let Ok(text) = http_get(port, "/metrics") else { continue };
        let now_unix = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
        if full_since.is_none()
            && metric(&text, "prometheus_tsdb_head_series", None).is_some_and(|s| s >= (3 * n) as f64)
        {
            full_since = Some(now_unix);
        }
        let ts = metric(&text, "prometheus_rule_group_last_evaluation_timestamp_seconds", Some(group)).unwrap_or(0.0);
        if ts > last_eval {
            last_eval = ts;
            if full_since.is_some_and(|f| ts > f) {
                let d = metric(&text, "prometheus_rule_group_last_duration_seconds", Some(group)).unwrap_or(f64::NAN);
                let since_scrape = unix_ms().saturating_sub(target.last_scrape_ms.load(Ordering::Relaxed));
                evals.push((d, proc_cpu(pid, ticks), target.scrapes.load(Ordering::Relaxed), since_scrape));
                if evals.len() > cycles {
                    break Ok(());
                }
            }
        }
    };
    let rules_json = http_get(port, "/api/v1/rules").ok().and_then(|b| serde_json::from_str::<Value>(&b).ok());
    // The median scrape, so the first (which creates every series) does not count.
    let scrape = http_get(port, "/api/v1/query?query=quantile_over_time(0.5,scrape_duration_seconds%5B10m%5D)")
        .ok()
        .and_then(|b| serde_json::from_str::<Value>(&b).ok())
        .and_then(|v| v["data"]["result"][0]["value"][1].as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(f64::NAN);
    let hwm_mb = status_kb(&pid.to_string(), "VmHWM") as f64 / 1024.0;
    stop(&mut child);
    drop(target);
    if let Err(e) = result {
        panic!("measuring Prometheus failed: {e}\n{}", netwarden_tests::util::tail(&log, 20));
    }
    let mut rules = Vec::new();
    if let Some(groups) = rules_json.as_ref().and_then(|v| v["data"]["groups"].as_array()) {
        for r in groups.iter().filter(|g| g["name"] == group).flat_map(|g| g["rules"].as_array().into_iter().flatten())
        {
            assert_eq!(r["health"], "ok", "Prometheus rule {} is not healthy: {}", r["name"], r["lastError"]);
            rules.push((
                r["name"].as_str().unwrap_or("?").to_string(),
                r["evaluationTime"].as_f64().unwrap_or(f64::NAN),
                r["alerts"].as_array().map_or(0, Vec::len),
            ));
        }
    }
    let measured = &evals[1..];
    let group_runs: Vec<f64> = measured.iter().map(|e| e.0).collect();
    // CPU from one evaluation to the next where no scrape was served in between and the previous one
    // was served at least 3 s before (so its parsing and appending are over too).
    let quiet: Vec<f64> =
        evals.windows(2).filter(|w| w[0].2 == w[1].2 && w[0].3 >= 3000).map(|w| w[1].1 - w[0].1).collect();
    Peer {
        version,
        group_s: median(group_runs.clone()),
        group_runs,
        rules,
        scrape_s: scrape,
        cpu_per_eval_s: (!quiet.is_empty()).then(|| median(quiet)),
        hwm_mb,
        cycles: measured.len(),
    }
}

fn main() {
    if let Ok(spec) = std::env::var(CHILD_ENV) {
        child_main(&spec);
        return;
    }
    let n = env_num("NETWARDEN_BENCH_SERIES", 100_000) as usize;
    let large = env_num("NETWARDEN_BENCH_LARGE_SERIES", 500_000) as usize;
    let passes = env_num("NETWARDEN_BENCH_PASSES", 5).max(1);
    let large_passes = env_num("NETWARDEN_BENCH_LARGE_PASSES", 3).max(1);
    let cycles = env_num("NETWARDEN_BENCH_CYCLES", 6).max(1) as usize;
    let interval = env_num("NETWARDEN_BENCH_INTERVAL", 5).max(1);
    let scrape_interval = env_num("NETWARDEN_BENCH_SCRAPE_INTERVAL", 15).max(1);
    let bin = std::env::var("NETWARDEN_BENCH_PROMETHEUS").unwrap_or_else(|_| "/usr/bin/prometheus".into());
    let peer = if bin == "skip" {
        None
    } else {
        assert!(
            std::path::Path::new(&bin).is_file(),
            "{bin} is missing: install Debian's prometheus (`apt-get install prometheus`), or set \
             NETWARDEN_BENCH_PROMETHEUS=skip to measure netwarden alone"
        );
        Some(measure_prometheus(&bin, n, cycles, interval, scrape_interval))
    };
    let ours = measure_ours(n, passes);
    let big = (large > 0).then(|| measure_ours(large, large_passes));

    let thousands = |x: f64| {
        let digits = format!("{:.0}", x);
        let mut out = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        out
    };
    println!("## Rule evaluation over {n} interface series: netwarden's alert engine vs Prometheus, same values");
    println!();
    println!(
        "{} rules (InterfaceDown: admin up and oper down; InterfaceErrors: in_errors > 1), each true for ~1 % of the \
         series, a different 1 % at every pass. netwarden: median of {passes} passes after the one that creates the \
         series; a pass stores one reading per series and evaluates every rule on it.",
        ours.rules
    );
    match &peer {
        Some(p) => println!(
            "peer: {} (scrape every {scrape_interval} s, evaluation every {interval} s, median of {} evaluation cycles)",
            p.version, p.cycles
        ),
        None => println!("peer: skipped (NETWARDEN_BENCH_PROMETHEUS=skip)"),
    }
    println!();
    println!("| engine | series | wall s/pass | CPU s/pass | evaluations/s | active alerts | peak RSS MB |");
    println!("|---|---|---|---|---|---|---|");
    println!(
        "| netwarden `Engine::ingest` (store + evaluate) | {} | {:.3} | {:.3} | {} | {} | {:.0} |",
        n,
        ours.pass_s,
        ours.cpu_s,
        thousands(ours.evals_per_s),
        ours.active,
        ours.hwm_mb
    );
    println!(
        "| netwarden, store only (no interface rules) | {} | {:.3} | {:.3} | — | — | — |",
        n, ours.store_s, ours.store_cpu_s
    );
    if let Some(p) = &peer {
        let alerts: usize = p.rules.iter().map(|r| r.2).sum();
        println!(
            "| Prometheus rule group (evaluation only) | {} | {:.3} | {} | {} | {} | {:.0} |",
            n,
            p.group_s,
            p.cpu_per_eval_s.map_or("—".into(), |c| format!("{c:.3}")),
            thousands((n as u64 * ours.rules) as f64 / p.group_s),
            alerts,
            p.hwm_mb
        );
        println!();
        let per_rule: Vec<String> =
            p.rules.iter().map(|(name, t, a)| format!("{name} {t:.3} s ({a} alerts)")).collect();
        let runs: Vec<String> = p.group_runs.iter().map(|t| format!("{t:.2}")).collect();
        println!(
            "Prometheus per rule (last evaluation): {}; group runs (s): {}; median scrape of the {} samples: {:.3} s",
            per_rule.join(", "),
            runs.join(" / "),
            3 * n,
            p.scrape_s
        );
        let cpu_ratio = p.cpu_per_eval_s.map_or("—".into(), |c| format!("{:.2}", ours.cpu_s / c));
        println!(
            "ratio netwarden ÷ Prometheus (lower is better): wall {:.2}, CPU {cpu_ratio}; peak RSS {:.2}",
            ours.pass_s / p.group_s,
            ours.hwm_mb / p.hwm_mb
        );
    }
    summary_line(&ours, peer.as_ref());
    let runs: Vec<String> = ours.all_passes.iter().map(|t| format!("{t:.3}")).collect();
    println!(
        "netwarden passes (s): {}; first pass {:.3} s; {} transitions per pass; engine after the first pass {:.0} MB \
         ({:.2} kB per series)",
        runs.join(" / "),
        ours.first_pass_s,
        ours.transitions,
        ours.engine_mb,
        ours.engine_mb * 1024.0 / n as f64
    );
    if let Some(b) = &big {
        println!();
        println!(
            "## netwarden alone at {} interface series ({} rules, median of {large_passes} passes)",
            b.series, b.rules
        );
        println!();
        println!(
            "| series | wall s/pass | CPU s/pass | evaluations/s | evaluations/s per CPU s | store only s | first pass s | \
             engine MB | peak RSS MB |"
        );
        println!("|---|---|---|---|---|---|---|---|---|");
        println!(
            "| {} | {:.3} | {:.3} | {} | {} | {:.3} | {:.3} | {:.0} | {:.0} |",
            b.series,
            b.pass_s,
            b.cpu_s,
            thousands(b.evals_per_s),
            thousands(b.evals_per_s * b.pass_s / b.cpu_s),
            b.store_s,
            b.first_pass_s,
            b.engine_mb,
            b.hwm_mb
        );
    }
}

/// The `BENCH` line for tests/bench/run-all.sh: wall time per pass, netwarden ÷ Prometheus's group.
fn summary_line(ours: &Ours, peer: Option<&Peer>) {
    let ratio = peer.map(|p| ours.pass_s / p.group_s);
    let (goal, met) = netwarden_tests::bench::Summary::at_most(ratio.unwrap_or(f64::NAN), 1.0);
    netwarden_tests::bench::Summary {
        name: "rules_eval",
        metric: format!("wall s per evaluation pass, {} series × {} rules", ours.series, ours.rules),
        ours: format!("{:.3}", ours.pass_s),
        peer: peer.map(|p| format!("{:.3}", p.group_s)),
        peer_version: peer.map(|p| p.version.clone()),
        ratio,
        goal,
        met,
    }
    .print();
}
