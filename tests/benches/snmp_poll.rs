//! Benchmark: one IF-MIB poll of a ~50-interface net-snmp agent, netwarden vs net-snmp's
//! `snmpbulkwalk` on the same agent in the same run (wall time, CPU, requests).
//!
//! Runs in a private network namespace it creates for itself (`unshare`, root needed): the
//! agent, its veth interfaces and both clients live there and vanish with the process.
//! Usage: `cargo bench -p netwarden-tests --bench snmp_poll [-- ITERATIONS [PAIRS]]`.

use collector::inventory::{AuthProtocol, PrivProtocol, SnmpCredentials, SnmpV3Credentials};
use collector::snmp::{ClientOptions, Oid, SnmpClient};
use nix::sys::resource::{UsageWho, getrusage};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn cpu(who: UsageWho) -> Duration {
    let u = getrusage(who).expect("getrusage");
    let t = |tv: nix::sys::time::TimeVal| Duration::new(tv.tv_sec() as u64, tv.tv_usec() as u32 * 1000);
    t(u.user_time()) + t(u.system_time())
}

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).env("MIBS", "").output().unwrap_or_else(|e| panic!("{cmd}: {e}"));
    assert!(out.status.success(), "{cmd} {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn version_of(cmd: &str) -> String {
    let out = Command::new(cmd).arg("-V").output().map(|o| {
        let s = String::from_utf8_lossy(&o.stdout).into_owned() + String::from_utf8_lossy(&o.stderr).as_ref();
        s.lines().next().unwrap_or("").trim().to_string()
    });
    out.unwrap_or_else(|_| "unknown".into())
}

const AGENT: &str = "127.0.0.1:1161";

fn in_pkts() -> u64 {
    let v = run("snmpget", &["-v2c", "-c", "public", "-Oqv", AGENT, "1.3.6.1.2.1.11.1.0"]);
    v.trim().parse().unwrap_or(0)
}

struct Measure {
    wall: Duration,
    cpu: Duration,
    requests: u64,
    varbinds: u64,
}

fn row(name: &str, iters: u32, m: &Measure) -> String {
    format!(
        "| {name} | {:.2} | {:.2} | {:.1} | {} | {:.2} |",
        m.wall.as_secs_f64() * 1000.0 / f64::from(iters),
        m.cpu.as_secs_f64() * 1000.0 / f64::from(iters),
        m.requests as f64 / f64::from(iters),
        m.varbinds / u64::from(iters),
        m.cpu.as_secs_f64() * 1e6 / (m.varbinds.max(1) as f64),
    )
}

fn main() {
    let args: Vec<String> = std::env::args().filter(|a| !a.starts_with("--")).collect();
    let iters: u32 = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(100);
    let pairs: u32 = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(25);
    if !nix::unistd::geteuid().is_root() {
        println!("skipped: this benchmark creates a network namespace and needs root");
        return;
    }
    if Command::new("snmpbulkwalk").arg("-V").output().is_err() || !std::path::Path::new("/usr/sbin/snmpd").exists() {
        println!("skipped: needs net-snmp (apt-get install snmp snmpd)");
        return;
    }
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET).expect("unshare network namespace");
    run("ip", &["link", "set", "lo", "up"]);
    for i in 0..pairs {
        run("ip", &["link", "add", &format!("p{i}a"), "type", "veth", "peer", "name", &format!("p{i}b")]);
        run("ip", &["link", "set", &format!("p{i}a"), "up"]);
        run("ip", &["link", "set", &format!("p{i}b"), "up"]);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let conf = dir.path().join("snmpd.conf");
    std::fs::write(
        &conf,
        format!(
            "agentaddress udp:{AGENT}\nrocommunity public 127.0.0.1\ncreateUser benchv3 SHA benchauthpass1 AES benchprivpass1\nrouser benchv3 priv\nsysName bench-agent\n"
        ),
    )
    .unwrap();
    let mut snmpd = Command::new("/usr/sbin/snmpd")
        .args(["-f", "-Lo", "-C", "-c"])
        .arg(&conf)
        .arg(format!("--persistentDir={}", dir.path().display()))
        .env("MIBS", "")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("snmpd");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Command::new("snmpget")
        .args(["-v2c", "-c", "public", "-t", "0.3", "-r", "0", AGENT, "1.3.6.1.2.1.1.5.0"])
        .env("MIBS", "")
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "snmpd did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let v2 = SnmpCredentials::V2c { community: "public".into() };
    let v3 = SnmpCredentials::V3(SnmpV3Credentials {
        user: "benchv3".into(),
        auth: Some((AuthProtocol::Sha1, "benchauthpass1".into())),
        privacy: Some((PrivProtocol::Aes128, "benchprivpass1".into())),
        context: None,
    });
    let opts = ClientOptions { timeout: Duration::from_secs(2), retries: 2, max_repetitions: 25, ..Default::default() };
    let if_table: Oid = collector::ifmib::IF_TABLE.parse().unwrap();
    let if_x_table: Oid = collector::ifmib::IF_X_TABLE.parse().unwrap();

    // Sizes, to report.
    let mut c = SnmpClient::new(AGENT, v2.clone(), opts.clone());
    let interfaces = rt.block_on(collector::poll::poll_interfaces(&mut c)).expect("poll").interfaces.len();

    let measure_ours = |creds: &SnmpCredentials, full_tables: bool| -> Measure {
        let mut client = SnmpClient::new(AGENT, creds.clone(), opts.clone());
        // warm-up (v3: engine discovery and key localisation happen once per device, not per poll)
        rt.block_on(collector::poll::poll_interfaces(&mut client)).expect("warm-up poll");
        let p0 = in_pkts();
        let (c0, t0) = (cpu(UsageWho::RUSAGE_SELF), Instant::now());
        let (mut requests, mut varbinds) = (0, 0);
        for _ in 0..iters {
            client.reset_stats();
            if full_tables {
                let a = rt.block_on(client.walk(&if_table)).expect("walk");
                let b = rt.block_on(client.walk(&if_x_table)).expect("walk");
                client.close();
                varbinds += (a.len() + b.len()) as u64;
            } else {
                let p = rt.block_on(collector::poll::poll_interfaces(&mut client)).expect("poll");
                varbinds += p.stats.varbinds;
            }
            requests += client.stats().requests;
        }
        let m = Measure { wall: t0.elapsed(), cpu: cpu(UsageWho::RUSAGE_SELF) - c0, requests, varbinds };
        let agent_seen = in_pkts() - p0 - 1;
        assert_eq!(agent_seen, requests, "agent counted {agent_seen} requests, we counted {requests}");
        m
    };
    let measure_peer = |v3: bool| -> Measure {
        let auth: Vec<&str> = if v3 {
            vec![
                "-v3",
                "-l",
                "authPriv",
                "-u",
                "benchv3",
                "-a",
                "SHA",
                "-A",
                "benchauthpass1",
                "-x",
                "AES",
                "-X",
                "benchprivpass1",
            ]
        } else {
            vec!["-v2c", "-c", "public"]
        };
        let p0 = in_pkts();
        let (c0, t0) = (cpu(UsageWho::RUSAGE_CHILDREN), Instant::now());
        let mut varbinds = 0u64;
        for _ in 0..iters {
            for table in [collector::ifmib::IF_TABLE, collector::ifmib::IF_X_TABLE] {
                let mut a = auth.clone();
                a.extend(["-On", "-Cr25", AGENT, table]);
                varbinds += run("snmpbulkwalk", &a).lines().count() as u64;
            }
        }
        let wall = t0.elapsed();
        let cpu_used = cpu(UsageWho::RUSAGE_CHILDREN) - c0;
        let requests = in_pkts() - p0 - 1;
        Measure { wall, cpu: cpu_used, requests, varbinds }
    };

    let ours_full = measure_ours(&v2, true);
    let peer = measure_peer(false);
    let ours_poll = measure_ours(&v2, false);
    let ours_full_v3 = measure_ours(&v3, true);
    let peer_v3 = measure_peer(true);
    let ours_poll_v3 = measure_ours(&v3, false);

    println!(
        "## IF-MIB poll of one {interfaces}-interface agent, {iters} iterations (net-snmp snmpd in a private namespace)"
    );
    println!();
    println!("peer: {} (snmpbulkwalk, -Cr25, one process per table walk)", version_of("snmpbulkwalk"));
    println!();
    println!("| client | wall ms/poll | CPU ms/poll | requests/poll | varbinds/poll | CPU µs/varbind |");
    println!("|---|---|---|---|---|---|");
    println!("{}", row("netwarden walk ifTable+ifXTable (v2c)", iters, &ours_full));
    println!("{}", row("snmpbulkwalk ifTable+ifXTable (v2c)", iters, &peer));
    println!("{}", row("netwarden poll: system + 31 IF-MIB columns (v2c)", iters, &ours_poll));
    println!("{}", row("netwarden walk ifTable+ifXTable (v3 authPriv)", iters, &ours_full_v3));
    println!("{}", row("snmpbulkwalk ifTable+ifXTable (v3 authPriv)", iters, &peer_v3));
    println!("{}", row("netwarden poll (v3 authPriv)", iters, &ours_poll_v3));
    println!();
    let per_kvb = |m: &Measure| m.cpu.as_secs_f64() * 1000.0 / (m.varbinds as f64 / 1000.0);
    println!(
        "ratios (netwarden ÷ snmpbulkwalk, same walk): wall {:.2}, CPU {:.3}, requests {:.2}; CPU per 1,000 varbinds: {:.3} ms vs {:.3} ms",
        ours_full.wall.as_secs_f64() / peer.wall.as_secs_f64(),
        ours_full.cpu.as_secs_f64() / peer.cpu.as_secs_f64(),
        ours_full.requests as f64 / peer.requests as f64,
        per_kvb(&ours_full),
        per_kvb(&peer),
    );
    println!(
        "ratios v3 (same walk): wall {:.2}, CPU {:.3}, requests {:.2}",
        ours_full_v3.wall.as_secs_f64() / peer_v3.wall.as_secs_f64(),
        ours_full_v3.cpu.as_secs_f64() / peer_v3.cpu.as_secs_f64(),
        ours_full_v3.requests as f64 / peer_v3.requests as f64,
    );
    let cpu_ratio = ours_full.cpu.as_secs_f64() / peer.cpu.as_secs_f64();
    let (goal, met) = netwarden_tests::bench::Summary::at_most(cpu_ratio, 0.5);
    netwarden_tests::bench::Summary {
        name: "snmp_poll",
        metric: format!("CPU ms per ifTable+ifXTable walk of a {interfaces}-interface agent (v2c)"),
        ours: format!("{:.2}", ours_full.cpu.as_secs_f64() * 1000.0 / f64::from(iters)),
        peer: Some(format!("{:.2}", peer.cpu.as_secs_f64() * 1000.0 / f64::from(iters))),
        peer_version: Some(version_of("snmpbulkwalk")),
        ratio: Some(cpu_ratio),
        goal,
        met,
    }
    .print();
    let _ = snmpd.kill();
    let _ = snmpd.wait();
}
