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
