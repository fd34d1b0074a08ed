//! Benchmark: sample ingest rows/s of netwarden's `SampleWriter` versus PostgreSQL's own server-side
//! `COPY if_sample … FROM '<file>'` of the same rows into the same table, in the same run.
//!
//! A private cluster (the test fixture: fsync, synchronous_commit and full_page_writes off), migrated
//! as the service does; N `IfSampleRow`s (2,000 devices × 48 interfaces × as many polls as needed)
//! are built in memory before any timing. Each method runs 3 times, interleaved, after `TRUNCATE` and
//! `CHECKPOINT`; every run is checked to have stored exactly N rows. CPU is the client's (this
//! process, or psql for `\copy`) and the server's (postmaster and all its processes, live and exited).
//! Usage: `cargo bench -p netwarden-tests --bench ingest [-- ROWS]` (default 1,000,000; no root needed).

use chrono::{DateTime, Duration as ChronoDuration, DurationRound, Utc};
use collector::db::BackendChoice;
use collector::store::{IfSampleRow, SampleWriter, WriterOptions};
use nix::sys::resource::{UsageWho, getrusage};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

const DEVICES: i64 = 2_000;
const INTERFACES: i64 = 48;
const RUNS: usize = 3;
const COLUMNS: &str = "time, device_id, interface_id, admin_status, oper_status, speed_bps, in_bps, out_bps, \
                       in_pps, out_pps, in_errors, out_errors, in_discards, out_discards";

fn cpu(who: UsageWho) -> Duration {
    let u = getrusage(who).expect("getrusage");
    let t = |tv: nix::sys::time::TimeVal| Duration::new(tv.tv_sec() as u64, tv.tv_usec() as u32 * 1000);
    t(u.user_time()) + t(u.system_time())
}

/// `/proc/<pid>/stat` fields after `(comm) state`: ppid=0, …, utime=10, stime=11, cutime=12, cstime=13.
fn proc_stat(pid: &str) -> Option<Vec<u64>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    Some(rest.split(' ').skip(1).map(|f| f.parse().unwrap_or(0)).collect())
}

/// The postmaster's child processes (backends, walwriter, checkpointer…) with their stat fields.
fn server_children(postmaster: i32) -> Vec<(i32, Vec<u64>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let name = entry.file_name();
        let Some(pid) = name.to_str().filter(|n| n.bytes().all(|b| b.is_ascii_digit())) else { continue };
        if let Some(f) = proc_stat(pid)
            && f[0] == postmaster as u64
        {
            out.push((pid.parse().unwrap(), f));
        }
    }
    out
}

/// CPU used so far by the whole server: the postmaster, its live processes and, through the
/// postmaster's cutime/cstime, the backends that have exited and been reaped.
fn server_cpu(postmaster: i32, ticks_per_sec: f64) -> Duration {
    let own = proc_stat(&postmaster.to_string()).expect("reading the postmaster's /proc stat");
    let ticks = own[10]
        + own[11]
        + own[12]
        + own[13]
        + server_children(postmaster).iter().map(|(_, f)| f[10] + f[11]).sum::<u64>();
    Duration::from_secs_f64(ticks as f64 / ticks_per_sec)
}

/// Waits until the backends that a finished client (psql) leaves behind have exited and been
/// reaped, so their CPU has moved into the postmaster's cutime/cstime instead of vanishing.
fn settle(postmaster: i32, before: &[i32]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while server_children(postmaster).iter().any(|(pid, _)| !before.contains(pid)) {
        assert!(Instant::now() < deadline, "a server backend did not exit within 10 s");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// A small deterministic generator, so every run and every method writes identical rows.
struct SplitMix(u64);
impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Rows as pollers produce them: poll after poll of every device, each device at its own second of
/// the minute. The first poll of an interface has no rates yet (no previous counters); about one
/// interface in seven is down.
fn generate(n: usize, base: DateTime<Utc>) -> Vec<IfSampleRow> {
    let mut rng = SplitMix(0x006e_7762_656e_6368);
    let mut rows = Vec::with_capacity(n);
    'polls: for poll in 0i64.. {
        for device in 1..=DEVICES {
            let at = base + ChronoDuration::seconds(poll * 60) + ChronoDuration::milliseconds(device * 29 % 60_000);
            for ifindex in 1..=INTERFACES {
                if rows.len() == n {
                    break 'polls;
                }
                let interface_id = device * 1_000 + ifindex;
                let speed: i64 = match interface_id % 5 {
                    0 => 10_000_000_000,
                    1 => 100_000_000,
                    _ => 1_000_000_000,
                };
                let up = (interface_id * 2_654_435_761) % 7 != 0;
                let rate = |rng: &mut SplitMix, scale: f64| {
                    if up { Some((rng.unit() * scale * 1000.0).round() / 1000.0) } else { Some(0.0) }
                };
                let (in_bps, out_bps, in_pps, out_pps, in_err, out_err, in_disc, out_disc) = if poll == 0 {
                    (None, None, None, None, None, None, None, None)
                } else {
                    let ib = rate(&mut rng, speed as f64 * 0.3);
                    let ob = rate(&mut rng, speed as f64 * 0.2);
                    let errors = |rng: &mut SplitMix| {
                        if rng.unit() < 0.02 { Some((rng.unit() * 5.0 * 1000.0).round() / 1000.0) } else { Some(0.0) }
                    };
                    (
                        ib,
                        ob,
                        ib.map(|b| (b / 8.0 / 700.0 * 1000.0).round() / 1000.0),
                        ob.map(|b| (b / 8.0 / 900.0 * 1000.0).round() / 1000.0),
                        errors(&mut rng),
                        errors(&mut rng),
                        errors(&mut rng),
                        Some(0.0),
                    )
                };
                rows.push(IfSampleRow {
                    time: at,
                    device_id: device,
                    interface_id,
                    admin_status: Some(1),
                    oper_status: Some(if up { 1 } else { 2 }),
                    speed_bps: Some(speed),
                    in_bps,
                    out_bps,
                    in_pps,
                    out_pps,
                    in_errors: in_err,
                    out_errors: out_err,
                    in_discards: in_disc,
                    out_discards: out_disc,
                });
            }
        }
    }
    rows
}

/// PostgreSQL's text COPY format (tab-separated, `\N` for NULL).
fn write_text(rows: &[IfSampleRow], path: &Path) {
    let mut s = String::with_capacity(rows.len() * 160);
    let opt = |s: &mut String, v: Option<f64>| match v {
        Some(v) => write!(s, "\t{v}").unwrap(),
        None => s.push_str("\t\\N"),
    };
    for r in rows {
        write!(s, "{}\t{}\t{}", r.time.format("%Y-%m-%d %H:%M:%S%.6f+00"), r.device_id, r.interface_id).unwrap();
        for v in [r.admin_status.map(i64::from), r.oper_status.map(i64::from), r.speed_bps] {
            match v {
                Some(v) => write!(s, "\t{v}").unwrap(),
                None => s.push_str("\t\\N"),
            }
        }
        for v in [r.in_bps, r.out_bps, r.in_pps, r.out_pps, r.in_errors, r.out_errors, r.in_discards, r.out_discards] {
            opt(&mut s, v);
        }
        s.push('\n');
    }
    std::fs::write(path, s).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

/// PostgreSQL's binary COPY format: the same bytes netwarden's writer streams.
fn write_binary(rows: &[IfSampleRow], path: &Path) {
    const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
    let mut b: Vec<u8> = Vec::with_capacity(rows.len() * 150 + 32);
    b.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    b.extend_from_slice(&0i32.to_be_bytes()); // flags
    b.extend_from_slice(&0i32.to_be_bytes()); // header extension length
    for r in rows {
        b.extend_from_slice(&14i16.to_be_bytes());
        let field = |b: &mut Vec<u8>, bytes: Option<&[u8]>| match bytes {
            Some(x) => {
                b.extend_from_slice(&(x.len() as i32).to_be_bytes());
                b.extend_from_slice(x);
            }
            None => b.extend_from_slice(&(-1i32).to_be_bytes()),
        };
        field(&mut b, Some(&(r.time.timestamp_micros() - PG_EPOCH_MICROS).to_be_bytes()));
        field(&mut b, Some(&r.device_id.to_be_bytes()));
        field(&mut b, Some(&r.interface_id.to_be_bytes()));
        field(&mut b, r.admin_status.map(i16::to_be_bytes).as_ref().map(|x| &x[..]));
        field(&mut b, r.oper_status.map(i16::to_be_bytes).as_ref().map(|x| &x[..]));
        field(&mut b, r.speed_bps.map(i64::to_be_bytes).as_ref().map(|x| &x[..]));
        for v in [r.in_bps, r.out_bps, r.in_pps, r.out_pps, r.in_errors, r.out_errors, r.in_discards, r.out_discards] {
            field(&mut b, v.map(f64::to_be_bytes).as_ref().map(|x| &x[..]));
        }
    }
    b.extend_from_slice(&(-1i16).to_be_bytes());
    std::fs::write(path, b).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
}

#[derive(Clone, Copy)]
struct Measure {
    wall: Duration,
    client_cpu: Duration,
    server_cpu: Duration,
}

fn median(mut v: Vec<Measure>) -> Measure {
    v.sort_by_key(|m| m.wall);
    v[v.len() / 2]
}

fn sql_error(e: tokio_postgres::Error) -> String {
    collector::db::error_text(&e)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    let n: usize =
        args.first().map(|s| s.replace(['_', ','], "").parse().expect("ROWS must be a number")).unwrap_or(1_000_000);
    let ticks = clock_ticks();

    let db = netwarden_tests::pg::fresh_db();
    let server = netwarden_tests::pg::server();
    let postmaster = server.pid().expect("postmaster pid");
    // The fixture's temp dir: readable by the server (it runs as `postgres` when we are root) and
    // deleted with the cluster when this process exits.
    let file_dir: PathBuf = server.data_dir().parent().expect("cluster dir").to_path_buf();

    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let mut client = rt.block_on(db.connect());
    let report = rt.block_on(collector::db::migrate(&mut client, BackendChoice::Auto)).expect("migrate");
    let version: String = rt
        .block_on(client.query_one("SELECT current_setting('server_version')", &[]))
        .map_err(sql_error)
        .unwrap()
        .get(0);

    // Polls start 12 minutes ago, each device at its own second of the minute; make sure every day
    // they touch has its partition (the migration creates them from today on, by server time zone).
    let base = Utc::now().duration_trunc(ChronoDuration::minutes(1)).unwrap() - ChronoDuration::minutes(12);
    let rows = generate(n, base);
    let (first, last) = (rows.iter().map(|r| r.time).min().unwrap(), rows.iter().map(|r| r.time).max().unwrap());
    if report.backend == collector::db::Backend::Partitioned {
        for at in [first, last] {
            rt.block_on(client.execute("SELECT netwarden_ensure_partitions($1)", &[&at])).map_err(sql_error).unwrap();
        }
    }
    let text_file = file_dir.join("if_sample.copy");
    let binary_file = file_dir.join("if_sample.pgcopy");
    write_text(&rows, &text_file);
    write_binary(&rows, &binary_file);
    for f in [&text_file, &binary_file] {
        std::fs::set_permissions(f, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    }
    let file_mb = |p: &Path| std::fs::metadata(p).map(|m| m.len() as f64 / 1e6).unwrap_or(0.0);
    let psql = Command::new("psql")
        .arg("--version")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());

    let reset = |client: &tokio_postgres::Client| {
        rt.block_on(client.batch_execute("TRUNCATE if_sample; CHECKPOINT")).map_err(sql_error).unwrap();
    };
    let verify = |client: &tokio_postgres::Client, what: &str| {
        let got: i64 =
            rt.block_on(client.query_one("SELECT count(*) FROM if_sample", &[])).map_err(sql_error).unwrap().get(0);
        assert_eq!(got, n as i64, "{what}: if_sample holds {got} rows after the run, expected {n}");
    };

    let pool = rt.block_on(collector::db::connect(&db.connection_string, 4)).expect("pool");
    let opts = WriterOptions::default();
    // Keep at most half the channel's capacity of polls in flight (submitted, not yet committed):
    // the writer's when-full policy is to drop, and this measures its throughput, not that policy.
    let in_flight_limit = (opts.channel_capacity / 2 * INTERFACES as usize) as u64;
    let ours = |client: &tokio_postgres::Client| -> Measure {
        reset(client);
        let batches: Vec<Vec<IfSampleRow>> = rows.chunks(INTERFACES as usize).map(<[IfSampleRow]>::to_vec).collect();
        let m = rt.block_on(async {
            let cancel = CancellationToken::new();
            let (handle, task) = SampleWriter::spawn(pool.clone(), opts.clone(), cancel.clone());
            let (s0, c0, t0) = (server_cpu(postmaster, ticks), cpu(UsageWho::RUSAGE_SELF), Instant::now());
            let mut submitted = 0u64;
            for batch in batches {
                while submitted - handle.stats().rows_written.load(Ordering::Relaxed) >= in_flight_limit {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                submitted += batch.len() as u64;
                assert!(handle.submit(batch, Vec::new()), "the writer dropped a poll's rows (channel full)");
            }
            handle.flush().await.expect("flush");
            let m = Measure {
                wall: t0.elapsed(),
                client_cpu: cpu(UsageWho::RUSAGE_SELF) - c0,
                server_cpu: server_cpu(postmaster, ticks) - s0,
            };
            let stats = handle.stats();
            let (written, dropped) =
                (stats.rows_written.load(Ordering::Relaxed), stats.rows_dropped.load(Ordering::Relaxed));
            assert_eq!(
                (written, dropped),
                (n as u64, 0),
                "writer stats: written {written}, dropped {dropped}, expected {n} and 0"
            );
            cancel.cancel();
            task.await.expect("writer task");
            m
        });
        verify(client, "netwarden SampleWriter");
        m
    };
    let server_copy = |client: &tokio_postgres::Client, file: &Path, binary: bool| -> Measure {
        reset(client);
        let sql = format!(
            "COPY if_sample ({COLUMNS}) FROM '{}'{}",
            file.display().to_string().replace('\'', "''"),
            if binary { " WITH (FORMAT binary)" } else { "" }
        );
        let (s0, c0, t0) = (server_cpu(postmaster, ticks), cpu(UsageWho::RUSAGE_SELF), Instant::now());
        let copied = rt.block_on(client.execute(&sql, &[])).map_err(sql_error).unwrap();
        let m = Measure {
            wall: t0.elapsed(),
            client_cpu: cpu(UsageWho::RUSAGE_SELF) - c0,
            server_cpu: server_cpu(postmaster, ticks) - s0,
        };
        assert_eq!(copied, n as u64, "server-side COPY reported {copied} rows, expected {n}");
        verify(client, "server-side COPY");
        m
    };
    let psql_copy = |client: &tokio_postgres::Client, file: &Path| -> Measure {
        reset(client);
        let meta = format!("\\copy if_sample ({COLUMNS}) FROM '{}'", file.display().to_string().replace('\'', "''"));
        let before: Vec<i32> = server_children(postmaster).iter().map(|(pid, _)| *pid).collect();
        let (s0, c0, t0) = (server_cpu(postmaster, ticks), cpu(UsageWho::RUSAGE_CHILDREN), Instant::now());
        let out = Command::new("psql")
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &db.connection_string, "-c", &meta])
            .output()
            .expect("psql");
        let (wall, client_cpu) = (t0.elapsed(), cpu(UsageWho::RUSAGE_CHILDREN) - c0);
        settle(postmaster, &before);
        let m = Measure { wall, client_cpu, server_cpu: server_cpu(postmaster, ticks) - s0 };
        assert!(out.status.success(), "psql \\copy failed: {}", String::from_utf8_lossy(&out.stderr));
        verify(client, "psql \\copy");
        m
    };

    let (mut m_ours, mut m_text, mut m_bin, mut m_psql) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..RUNS {
        m_ours.push(ours(&client));
        m_text.push(server_copy(&client, &text_file, false));
        m_bin.push(server_copy(&client, &binary_file, true));
        if psql.is_some() {
            m_psql.push(psql_copy(&client, &text_file));
        }
    }

    let row = |name: &str, runs: &[Measure]| -> (String, f64) {
        let m = median(runs.to_vec());
        let rate = n as f64 / m.wall.as_secs_f64();
        let all: Vec<String> = runs.iter().map(|r| format!("{:.2}", r.wall.as_secs_f64())).collect();
        (
            format!(
                "| {name} | {:.0} | {:.2} | {:.2} | {:.2} | {} |",
                rate,
                m.wall.as_secs_f64(),
                m.client_cpu.as_secs_f64(),
                m.server_cpu.as_secs_f64(),
                all.join(" / ")
            ),
            rate,
        )
    };
    let (r_ours, ours_rate) = row("netwarden SampleWriter (binary COPY FROM STDIN, 48-row submits)", &m_ours);
    let (r_text, text_rate) = row("server-side `COPY … FROM 'file'` (text)", &m_text);
    let (r_bin, bin_rate) = row("server-side `COPY … FROM 'file'` (binary)", &m_bin);

    println!("## Ingest of {n} if_sample rows: netwarden's writer vs server-side COPY, median of {RUNS} runs");
    println!();
    println!(
        "PostgreSQL {version} ({} back-end; fsync, synchronous_commit, full_page_writes off); rows of {} devices × {} interfaces over {} one-minute polls; files {:.0} MB text, {:.0} MB binary",
        report.backend.as_str(),
        DEVICES,
        INTERFACES,
        n.div_ceil((DEVICES * INTERFACES) as usize),
        file_mb(&text_file),
        file_mb(&binary_file),
    );
    println!();
    println!("| method | rows/s | seconds | client CPU s | server CPU s | runs (s) |");
    println!("|---|---|---|---|---|---|");
    println!("{r_ours}");
    println!("{r_text}");
    println!("{r_bin}");
    if let Some(v) = &psql {
        let (r_psql, _) = row(&format!("psql `\\copy … FROM STDIN` (text; {v})"), &m_psql);
        println!("{r_psql}");
    } else {
        println!("| psql `\\copy` | skipped: no psql on PATH | | | | |");
    }
    println!();
    println!(
        "ratio netwarden ÷ server-side COPY (rows/s): {:.2} vs text, {:.2} vs binary (goal: at least 0.7)",
        ours_rate / text_rate,
        ours_rate / bin_rate
    );
    let (goal, met) = netwarden_tests::bench::Summary::at_least(ours_rate / bin_rate, 0.7);
    netwarden_tests::bench::Summary {
        name: "ingest",
        metric: "if_sample rows/s: SampleWriter vs server-side binary COPY".into(),
        ours: format!("{ours_rate:.0}"),
        peer: Some(format!("{bin_rate:.0}")),
        peer_version: Some(format!("PostgreSQL {version}")),
        ratio: Some(ours_rate / bin_rate),
        goal,
        met,
    }
    .print();
}
