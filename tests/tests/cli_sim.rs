//! `netwarden sim` serves simulated switches on loopback and writes an inventory that
//! `netwarden inventory import` and `netwarden poll` take as they are.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn netwarden_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("netwarden");
    assert!(bin.exists(), "{} not built (cargo test --workspace builds it)", bin.display());
    bin
}

#[test]
fn sim_serves_devices_that_poll_and_import() {
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("sim.yaml");
    let mut sim = Command::new(netwarden_bin())
        .args(["sim", "--devices", "3", "--ports", "4", "--base-port", "0", "--inventory"])
        .arg(&inventory)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !inventory.exists() {
        assert!(Instant::now() < deadline, "no inventory written");
        assert!(sim.try_wait().unwrap().is_none(), "netwarden sim exited early");
        std::thread::sleep(Duration::from_millis(50));
    }
    let devices = collector::inventory::read_inventory_file(&inventory, None).expect("the written inventory parses");
    assert_eq!(devices.len(), 3);
    let d = &devices[1];
    assert_eq!(d.name, "sim-sw00002");
    let out = Command::new(netwarden_bin()).args(["poll", &d.snmp_target(), "--community", "public"]).output().unwrap();
    let table = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(table.contains("sysName    sim-sw00002"), "{table}");
    assert!(table.contains("4 interfaces"), "{table}");
    // The file imports as it is.
    let tdb = netwarden_tests::pg::fresh_db();
    let run = |args: &[&str]| {
        Command::new(netwarden_bin())
            .args(args)
            .env("NETWARDEN_DATABASE__URL", &tdb.connection_string)
            .env("NETWARDEN_SECRET_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
            .output()
            .unwrap()
    };
    let imported = run(&["inventory", "import", &inventory.display().to_string()]);
    assert!(imported.status.success(), "{}", String::from_utf8_lossy(&imported.stderr));
    assert!(String::from_utf8_lossy(&imported.stdout).contains("3 created"));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(sim.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = sim.wait().unwrap();
    assert!(status.success(), "sim exit: {status:?}");
}

/// `netwarden sim --fabric` with `--ssh-base-port` and `--trap-target`: the inventory carries the
/// devices' SSH logins, every device answers SSH, and a fault sent to the control port arrives at
/// the trap target as a linkDown netwarden's trap decoder classifies.
#[test]
fn sim_fabric_serves_ssh_and_sends_traps() {
    use std::io::{BufRead, BufReader, Read, Write};
    let dir = tempfile::tempdir().unwrap();
    let inventory = dir.path().join("fabric.yaml");
    let traps = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    traps.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let trap_target = traps.local_addr().unwrap().to_string();
    let mut sim = Command::new(netwarden_bin())
        .args(["sim", "--fabric", "spines=1,leaves=2", "--ports", "4", "--base-port", "0", "--control", "127.0.0.1:0"])
        .args(["--ssh-base-port", "0", "--trap-target", &trap_target, "--inventory"])
        .arg(&inventory)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    // The control address is on the line the simulator prints once everything is served.
    let mut stdout = BufReader::new(sim.stdout.take().unwrap());
    let control = loop {
        let mut line = String::new();
        assert!(stdout.read_line(&mut line).unwrap() > 0, "netwarden sim exited before serving");
        if let Some(rest) = line.trim().strip_prefix("control:") {
            break rest.split_whitespace().next().unwrap().to_string();
        }
    };
    let devices = collector::inventory::read_inventory_file(&inventory, None).expect("the written inventory parses");
    let leaf = devices.iter().find(|d| d.name == "leaf001").expect("leaf001");
    let ssh = leaf.ssh.as_ref().expect("ssh login in the inventory");
    assert_eq!(leaf.platform.as_deref(), Some("sim-fabric"));
    let mut conn = std::net::TcpStream::connect((leaf.host.as_str(), ssh.port)).expect("leaf001's ssh port");
    conn.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut banner = [0u8; 8];
    conn.read_exact(&mut banner).expect("ssh banner");
    assert_eq!(&banner, b"SSH-2.0-");

    let mut c = std::net::TcpStream::connect(&control).expect("control port");
    c.write_all(b"link-down leaf001 spine1\n").unwrap();
    let mut answer = String::new();
    BufReader::new(&c).read_line(&mut answer).unwrap();
    assert_eq!(answer.trim(), "ok");
    let mut buf = [0u8; 2048];
    let (n, from) = traps.recv_from(&mut buf).expect("a trap within 10 s");
    assert_eq!(from.ip().to_string(), leaf.host, "sent from the agents' address");
    let msg = collector::trap::decode_community(&buf[..n]).expect("an SNMPv2c trap");
    let n = msg.notification;
    assert!(
        matches!(collector::trap::classify(&n.trap_oid, &n.varbinds), collector::trap::TrapKind::LinkDown { .. }),
        "{:?}",
        n.trap_oid
    );
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(sim.id() as i32), nix::sys::signal::Signal::SIGTERM).unwrap();
    let status = sim.wait().unwrap();
    assert!(status.success(), "sim exit: {status:?}");
}
