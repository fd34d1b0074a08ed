//! Benchmark: poller CPU per device poll, all the way to rows ready for the database, netwarden vs
//! Debian's `prometheus-snmp-exporter` (0.21) scraping the same agent in the same run.
//!
//! Agent: one simulated 48-port switch, `netwarden sim --devices 1 --ports 48`, a separate process
//! on 127.0.0.1 (so neither side's CPU includes the agent's).
//! - netwarden: in this process, on one thread, N times: `poll::poll_interfaces` (GET of the system
//!   group, multi-column GETBULK walk of the 31 IF-MIB columns the poller stores), rates against
//!   the previous poll (`CounterState::update`), `scheduler::sample_rows`, then both sample tables'
//!   rows encoded in PostgreSQL's binary COPY format with the writer's own column values and types
//!   (`store::if_row_values`, `IF_TYPES`), into memory: no database round trip, and not the
//!   per-poll state updates (`store::state::StateWriter`, batched across devices), which are SQL.
//!   CPU: getrusage.
//! - peer: the exporter with a module that walks the same 31 columns and GETs the same 4 system
//!   scalars, max-repetitions 25 like ours, ifIndex labels with ifAlias/ifDescr/ifName lookups as
//!   the upstream `if_mib` module has (Debian ships no generated snmp.yml, and no MIBs to generate
//!   one with). N scrapes of `/snmp?target=…&module=if_mib` over loopback HTTP, one at a time;
//!   CPU: utime + stime of the exporter process from `/proc/PID/stat`, before and after.
//!
//! Usage: `cargo build --release -p api && cargo bench -p netwarden-tests --bench poll_cpu`
//! (no root). `NETWARDEN_BENCH_POLLS` sets N (default 300). Needs
//! `apt-get install --no-install-recommends prometheus-snmp-exporter` (its service need not run:
//! the bench starts its own exporter on a free loopback port and stops it by pid).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::{BufMut, BytesMut};
use collector::counters::CounterState;
use collector::ifmib::{self, IfColumn};
use collector::snmp::{ClientOptions, SnmpClient};
use collector::store::{IF_TYPES, POLL_TYPES, PollSampleRow, if_row_values, poll_row_values};
use netwarden_tests::bench::{self, Guarded, Summary};
use netwarden_tests::util;
use tokio_postgres::types::{ToSql, Type};

const EXPORTER: &str = "/usr/bin/prometheus-snmp-exporter";
const MAX_REPETITIONS: u32 = 25;
const PORTS: u32 = 48;
const GOAL: f64 = 0.2;

/// Starts `netwarden sim` with one switch; returns it and the agent's `ip:port`.
fn start_agent(dir: &Path) -> (Guarded, String) {
    let inventory = dir.join("sim.yaml");
    let mut cmd = Command::new(bench::netwarden_bin());
    cmd.args(["sim", "--devices", "1", "--ports", &PORTS.to_string(), "--base-port", "0", "--inventory"])
        .arg(&inventory)
        .env("NETWARDEN_LOG", "warn")
        .stdout(Stdio::null());
    let mut sim = Guarded::spawn(&mut cmd, "netwarden sim", Duration::from_secs(5));
    let deadline = Instant::now() + Duration::from_secs(30);
    while !inventory.exists() {
        assert!(!sim.exited(), "netwarden sim exited early");
        assert!(Instant::now() < deadline, "netwarden sim wrote no inventory within 30 s");
        std::thread::sleep(Duration::from_millis(50));
    }
    let devices = collector::inventory::read_inventory_file(&inventory, None).expect("sim inventory");
    (sim, devices[0].snmp_target())
}

/// IF-MIB name and exporter type of one of the poller's columns (None: a lookup label, not a metric).
fn exporter_metric(col: IfColumn) -> Option<(String, &'static str)> {
    let debug = format!("{col:?}");
    let name = format!("if{}", debug.replace("Hc", "HC"));
    let counter = ["Octets", "Pkts", "Discards", "Errors"].iter().any(|s| debug.ends_with(s));
    match col {
        IfColumn::Descr | IfColumn::Name | IfColumn::Alias => None,
        _ => Some((name, if counter { "counter" } else { "gauge" })),
    }
}

/// A snmp_exporter 0.21 module over exactly the OIDs our poller asks for.
fn exporter_config(community: &str) -> String {
    let oid_of = |c: IfColumn| ifmib::IF_COLUMNS.iter().find(|(k, _)| *k == c).expect("column").1;
    let mut y = String::from("if_mib:\n  walk:\n");
    for (_, oid) in ifmib::IF_COLUMNS {
        y.push_str(&format!("  - {oid}\n"));
    }
    y.push_str("  get:\n");
    for oid in [ifmib::SYS_DESCR, ifmib::SYS_OBJECT_ID, ifmib::SYS_UPTIME, ifmib::SYS_NAME] {
        y.push_str(&format!("  - {oid}\n"));
    }
    y.push_str("  metrics:\n");
    for (name, oid, kind) in
        [("sysUpTime", "1.3.6.1.2.1.1.3", "gauge"), ("sysName", "1.3.6.1.2.1.1.5", "DisplayString")]
    {
        y.push_str(&format!("  - name: {name}\n    oid: {oid}\n    type: {kind}\n    help: {name}\n"));
    }
    let lookups = [("ifAlias", IfColumn::Alias), ("ifDescr", IfColumn::Descr), ("ifName", IfColumn::Name)];
    for (col, oid) in ifmib::IF_COLUMNS {
        let Some((name, kind)) = exporter_metric(col) else { continue };
        y.push_str(&format!(
            "  - name: {name}\n    oid: {oid}\n    type: {kind}\n    help: {name}\n    indexes:\n    - labelname: ifIndex\n      type: gauge\n    lookups:\n"
        ));
        for (label, c) in lookups {
            y.push_str(&format!(
                "    - labels: [ifIndex]\n      labelname: {label}\n      oid: {}\n      type: DisplayString\n",
                oid_of(c)
            ));
        }
    }
    y.push_str(&format!(
        "  version: 2\n  max_repetitions: {MAX_REPETITIONS}\n  retries: 3\n  timeout: 5s\n  auth:\n    community: {community}\n"
    ));
    y
}

fn exporter_version() -> String {
    let out = Command::new(EXPORTER).arg("--version").output().expect("prometheus-snmp-exporter --version");
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + String::from_utf8_lossy(&out.stderr).as_ref();
    let first = text.lines().next().unwrap_or("unknown").trim();
    // "snmp_exporter, version 0.21.0 (branch: …)" → "snmp_exporter 0.21.0"
    first.split(" (").next().unwrap_or(first).replace(", version", "").to_string()
}

/// Starts the exporter on a free loopback port and waits until it answers.
fn start_exporter(dir: &Path, community: &str) -> (Guarded, SocketAddr) {
    let config = dir.join("snmp.yml");
    std::fs::write(&config, exporter_config(community)).expect("writing snmp.yml");
    let addr = SocketAddr::from(([127, 0, 0, 1], util::free_tcp_port()));
    let log = std::fs::File::create(dir.join("exporter.log")).expect("exporter log");
    let mut cmd = Command::new(EXPORTER);
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!("--web.listen-address={addr}"))
        .stdout(Stdio::null())
        .stderr(log);
    let mut exporter = Guarded::spawn(&mut cmd, EXPORTER, Duration::from_secs(5));
    let deadline = Instant::now() + Duration::from_secs(20);
    while !matches!(bench::http_get(addr, "/", Duration::from_secs(1)), Ok((200, _))) {
        let exited = exporter.exited();
        assert!(!exited && Instant::now() < deadline, "exporter did not start: {}", exporter_log(dir));
        std::thread::sleep(Duration::from_millis(50));
    }
    (exporter, addr)
}

fn exporter_log(dir: &Path) -> String {
    util::tail(&dir.join("exporter.log"), 20)
}

struct Measured {
    cpu: Duration,
    polls: u32,
    varbinds: u64,
}

impl Measured {
    fn us_per_poll(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / f64::from(self.polls)
    }

    fn us_per_varbind(&self) -> f64 {
        self.cpu.as_secs_f64() * 1e6 / self.varbinds.max(1) as f64
    }
}

/// N scrapes; the exporter's CPU around them. Checks every scrape returned all 48 interfaces.
fn measure_exporter(pid: u32, addr: SocketAddr, target: &str, n: u32, dir: &Path) -> Measured {
    let path = format!("/snmp?target={target}&module=if_mib");
    let scrape = || {
        let (code, body) = bench::http_get(addr, &path, Duration::from_secs(30)).expect("scrape");
        assert_eq!(code, 200, "scrape failed: {body}\n{}", exporter_log(dir));
        let interfaces = body.lines().filter(|l| l.starts_with("ifHCInOctets{")).count();
        assert_eq!(interfaces, PORTS as usize, "scrape without every interface:\n{body}");
        bench::prom_value(&body, "snmp_scrape_pdus_returned").expect("snmp_scrape_pdus_returned") as u64
    };
    scrape(); // warm-up: the first scrape parses the module and opens the socket
    let before = bench::proc_cpu(pid).expect("exporter /proc stat");
    let varbinds = (0..n).map(|_| scrape()).sum();
    let cpu = bench::proc_cpu(pid).expect("exporter /proc stat") - before;
    Measured { cpu, polls: n, varbinds }
}

/// Rows encoded exactly as `BinaryCopyInWriter` encodes them for the writer's COPY.
struct CopyEncoder {
    buf: BytesMut,
}

impl CopyEncoder {
    fn new() -> CopyEncoder {
        let mut buf = BytesMut::with_capacity(64 * 1024);
        buf.put_slice(b"PGCOPY\n\xff\r\n\0");
        buf.put_i32(0); // flags
        buf.put_i32(0); // header extension
        CopyEncoder { buf }
    }

    fn row(&mut self, values: &[&(dyn ToSql + Sync)], types: &[Type]) {
        self.buf.put_i16(values.len() as i16);
        for (v, ty) in values.iter().zip(types) {
            let at = self.buf.len();
            self.buf.put_i32(0);
            let len = match v.to_sql_checked(ty, &mut self.buf).expect("encodes") {
                tokio_postgres::types::IsNull::Yes => -1,
                tokio_postgres::types::IsNull::No => (self.buf.len() - at - 4) as i32,
            };
            self.buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
    }

    fn finish(mut self) -> usize {
        self.buf.put_i16(-1);
        self.buf.len()
    }
}

/// What netwarden keeps per device between polls (the scheduler's device loop state).
struct DeviceState {
    baseline: CounterState,
    ids: HashMap<String, i64>,
}

/// One poll to encoded rows. Rates are computed against a poll taken a second earlier (a clone of
/// that state each time: sysUpTime ticks in 10 ms, and back-to-back polls would otherwise see no
/// time elapsed and skip the rate arithmetic); the clone is charged to us.
fn poll_to_rows(rt: &tokio::runtime::Runtime, client: &mut SnmpClient, st: &DeviceState) -> (u64, usize) {
    let poll = rt.block_on(collector::poll::poll_interfaces(client)).expect("poll");
    let at = chrono::Utc::now();
    let mut counters = st.baseline.clone();
    let uptime = poll.system.sys_uptime_ticks.expect("sysUpTime");
    let (rates, _) = counters.update(uptime, 1.0, &poll.interfaces);
    assert!(rates.iter().all(|r| r.in_bps.is_some()), "rates were not computed");
    let rows = collector::scheduler::sample_rows(1, at, &poll.interfaces, &rates, &st.ids);
    assert_eq!(rows.len(), poll.interfaces.len());
    let poll_row = PollSampleRow {
        time: at,
        device_id: 1,
        status: "ok",
        duration_ms: Some(poll.duration.as_secs_f32() * 1000.0),
        requests: Some(poll.stats.requests as i32),
        varbinds: Some(poll.stats.varbinds as i32),
        error_kind: None,
        error: None,
    };
    let mut if_copy = CopyEncoder::new();
    for r in &rows {
        if_copy.row(&if_row_values(r), &IF_TYPES);
    }
    let mut poll_copy = CopyEncoder::new();
    poll_copy.row(&poll_row_values(&poll_row, &None), &POLL_TYPES);
    (poll.stats.varbinds, if_copy.finish() + poll_copy.finish())
}

fn measure_ours(target: &str, community: &str, n: u32) -> (Measured, usize) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let creds = collector::inventory::SnmpCredentials::V2c { community: community.to_string() };
    let opts = ClientOptions { max_repetitions: MAX_REPETITIONS, ..Default::default() };
    let mut client = SnmpClient::new(target, creds, opts);
    let first = rt.block_on(collector::poll::poll_interfaces(&mut client)).expect("warm-up poll");
    assert_eq!(first.interfaces.len(), PORTS as usize, "{first:?}");
    let mut baseline = CounterState::default();
    baseline.update(first.system.sys_uptime_ticks.expect("sysUpTime"), 0.0, &first.interfaces);
    let keys = ifmib::tracking_keys(&first.interfaces);
    let ids = keys.into_iter().zip(1..).collect();
    let st = DeviceState { baseline, ids };
    std::thread::sleep(Duration::from_millis(1100));
    let before = bench::self_cpu();
    let (mut varbinds, mut bytes) = (0, 0);
    for _ in 0..n {
        let (v, b) = poll_to_rows(&rt, &mut client, &st);
        varbinds += v;
        bytes = b;
    }
    (Measured { cpu: bench::self_cpu() - before, polls: n, varbinds }, bytes)
}

fn main() {
    let n = bench::env_num("POLLS", 300).max(1) as u32;
    if !Path::new(EXPORTER).is_file() {
        println!("skipped: {EXPORTER} is missing (apt-get install --no-install-recommends prometheus-snmp-exporter)");
        return;
    }
    let dir = tempfile::Builder::new().prefix("nw-bench-pollcpu-").tempdir().expect("tempdir");
    let community = "public";
    let (_agent, target) = start_agent(dir.path());
    let (exporter, addr) = start_exporter(dir.path(), community);
    let version = exporter_version();
    let peer = measure_exporter(exporter.pid(), addr, &target, n, dir.path());
    drop(exporter);
    let (ours, copy_bytes) = measure_ours(&target, community, n);
    report(n, &ours, &peer, &version, copy_bytes, &target);
}

fn report(n: u32, ours: &Measured, peer: &Measured, version: &str, copy_bytes: usize, target: &str) {
    let ratio = ours.us_per_poll() / peer.us_per_poll();
    println!("## Poller CPU per device poll: netwarden vs {version}, {n} polls of one {PORTS}-port simulated switch");
    println!();
    println!(
        "Agent: `netwarden sim` ({}), its own process. Same OIDs both sides: 4 system scalars + 31 IF-MIB columns, \
         max-repetitions {MAX_REPETITIONS}. netwarden: poll + rates + sample rows + binary COPY encoding \
         ({copy_bytes} bytes per poll), no database round trip. Exporter: HTTP scrape, walk, Prometheus exposition.",
        target
    );
    println!();
    println!("| poller | CPU µs per device poll | varbinds per poll | CPU µs per varbind |");
    println!("|---|---|---|---|");
    for (name, m) in [("netwarden (poll → rows encoded for COPY)", ours), (version, peer)] {
        println!(
            "| {name} | {:.1} | {} | {:.3} |",
            m.us_per_poll(),
            m.varbinds / u64::from(m.polls),
            m.us_per_varbind()
        );
    }
    println!();
    println!(
        "ratio netwarden ÷ exporter (CPU per device poll): {ratio:.3}; per varbind {:.3} (goal: at most {GOAL})",
        ours.us_per_varbind() / peer.us_per_varbind()
    );
    let (goal, met) = Summary::at_most(ratio, GOAL);
    Summary {
        name: "poll_cpu",
        metric: "CPU µs per device poll (48 ports)".into(),
        ours: format!("{:.1}", ours.us_per_poll()),
        peer: Some(format!("{:.1}", peer.us_per_poll())),
        peer_version: Some(version.to_string()),
        ratio: Some(ratio),
        goal,
        met,
    }
    .print();
}
