//! Real devices' SNMP agents replayed by snmpsim from the snmpsim-data recordings, one process per device.
//!
//! Set-up follows shared/reference/lab.md §1. snmpsim 1.2.2 cannot pick a recording per port, so each device is
//! its own `snmpsim-command-responder` on its own 127.0.0.1 UDP port, with a data dir holding a single
//! `public.snmprec` (community `public`). Recordings are decompressed once (walks of `.bz2` files are ~20× slower)
//! into the cache dir, and snmpsim's gdbm index stays there too, so only the first start of a recording pays for
//! indexing. The venv (Debian's python3 + python3-gdbm, snmpsim, snmpsim-data) is built by `.ci/run install`;
//! the fixture never installs anything.
//!
//! Cache layout (`util::cache_dir()`, mode 0755 so `nobody` can read it):
//! `snmpsim-venv/`, `snmpsim-devices/<recording with / as __>/public.snmprec`, `snmpsim-index/` (mode 0777).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::snmpd::{self, COMMUNITY};
use crate::util;

/// Six vendors, each with ifTable and ifXTable (64-bit counters): Arista EOS (also OSPF + LLDP), Juniper JUNOS
/// (OSPF + LLDP), Cisco NX-OS (LLDP), HPE ProCurve (LLDP), H3C Comware (OSPF), Huawei VRP.
pub const VENDOR_RECORDINGS: [&str; 6] = [
    "cloud/arista-dcs-7150s-52-cl",
    "network/router/juniper-mx960-16-1r6-7-b",
    "network/switch/cisco-n5000-uk9",
    "network/switch/hpe-procurve-516733-b21",
    "network/switch/h3c-comware-7-1-075",
    "network/router/huawei-s5720",
];

/// sysDescr.0, the OID polled to see that a device is up.
pub const SYS_DESCR_OID: &str = "1.3.6.1.2.1.1.1.0";

/// Indexing the largest recording above (46 MB, Juniper) from cold takes ~10 s on a 2-core machine, longer
/// when several index at once; a warm start takes ~1–2 s.
const START_TIMEOUT: Duration = Duration::from_secs(240);

/// Running simulated devices; every process is stopped (by pid) on drop.
#[derive(Debug)]
pub struct Snmpsim {
    devices: Vec<Device>,
    _logs: tempfile::TempDir,
}

#[derive(Debug)]
struct Device {
    recording: String,
    port: u16,
    child: Child,
    log: PathBuf,
    /// Stops the process if this test process dies without dropping the `Snmpsim`.
    _watchdog: util::Watchdog,
}

impl Snmpsim {
    /// Starts one simulated device per recording (names as in snmpsim-data, e.g. `network/switch/cisco-c3560`)
    /// and waits until each answers a GET of sysDescr. Panics with the cause (and snmpsim's log) otherwise.
    pub fn start(recordings: &[&str]) -> Snmpsim {
        let started = Instant::now();
        util::require_program("/usr/bin/snmpget", "snmp");
        let venv = venv();
        let mut sorted = recordings.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), recordings.len(), "Snmpsim::start takes each recording once: {recordings:?}");

        let index_dir = util::cache_dir().join("snmpsim-index");
        fs::create_dir_all(&index_dir).unwrap_or_else(|e| panic!("creating {}: {e}", index_dir.display()));
        // snmpsim drops to `nobody` under root and writes its index there.
        let _ = fs::set_permissions(&index_dir, fs::Permissions::from_mode(0o777));

        // Held until every device answers: snmpsim indexes without locking (gdbm "nfu"), and another process
        // must not start reading an index that is half written. Locks are taken in sorted order.
        let locks: Vec<fs::File> = sorted.iter().map(|name| lock_device_dir(&device_dir(name))).collect();
        for name in &sorted {
            prepare_recording(&venv, name);
        }

        let logs = tempfile::Builder::new().prefix("nw-snmpsim-").tempdir().expect("creating a temp dir for logs");
        let mut sim = Snmpsim { devices: Vec::new(), _logs: logs };
        let mut pending = Vec::new();
        for name in recordings {
            let log = sim._logs.path().join(format!("{}.log", name.replace('/', "__")));
            pending.push(spawn_device(&venv, name, &index_dir, log));
        }
        let deadline = Instant::now() + START_TIMEOUT;
        let mut retries = 0;
        while let Some(mut device) = pending.pop() {
            // A port taken between choosing and binding it makes snmpsim exit; that device gets another.
            match wait_until_answering(&mut device, deadline) {
                Ok(()) => sim.devices.push(device),
                Err(e)
                    if retries < 3
                        && device.child.try_wait().ok().flatten().is_some()
                        && e.contains("Address already in use") =>
                {
                    retries += 1;
                    pending.push(spawn_device(&venv, &device.recording, &index_dir, device.log));
                }
                Err(e) => {
                    util::stop_child(&mut device.child, Duration::from_secs(2));
                    for mut other in pending {
                        util::stop_child(&mut other.child, Duration::from_secs(2));
                    }
                    drop(sim);
                    panic!("{e}");
                }
            }
        }
        drop(locks);
        // Back in the caller's order.
        sim.devices.sort_by_key(|d| recordings.iter().position(|r| *r == d.recording));
        eprintln!("snmpsim: {} device(s) up in {:?}", sim.devices.len(), started.elapsed());
        sim
    }

    /// `(recording, "127.0.0.1:<port>")` for each device, in the order given to [`Snmpsim::start`].
    pub fn devices(&self) -> Vec<(String, String)> {
        self.devices.iter().map(|d| (d.recording.clone(), format!("127.0.0.1:{}", d.port))).collect()
    }

    /// `127.0.0.1:<port>` of one recording's device.
    pub fn target(&self, recording: &str) -> String {
        let device = self.devices.iter().find(|d| d.recording == recording);
        let device = device.unwrap_or_else(|| panic!("{recording} was not started"));
        format!("127.0.0.1:{}", device.port)
    }

    /// The v2c community of every device.
    pub fn community(&self) -> &'static str {
        COMMUNITY
    }
}

impl Drop for Snmpsim {
    fn drop(&mut self) {
        for device in &mut self.devices {
            util::stop_child(&mut device.child, Duration::from_secs(5));
        }
    }
}

/// The venv built by `.ci/run install`, checked for completeness.
fn venv() -> PathBuf {
    let venv = util::cache_dir().join("snmpsim-venv");
    let responder = venv.join("bin/snmpsim-command-responder");
    assert!(
        venv.join(".netwarden-complete").is_file() && responder.is_file(),
        "the snmpsim venv is missing or incomplete at {}: run `bash .ci/run install` (it builds it from Debian's \
         /usr/bin/python3 with python3-venv and python3-gdbm; tests never pip install)",
        venv.display()
    );
    venv
}

/// The recordings shipped in the snmpsim-data package inside the venv.
fn recordings_dir(venv: &Path) -> PathBuf {
    let lib = venv.join("lib");
    let entries = fs::read_dir(&lib).unwrap_or_else(|e| panic!("reading {}: {e}", lib.display()));
    entries
        .flatten()
        .map(|entry| entry.path().join("site-packages/snmpsim_data/data"))
        .find(|dir| dir.is_dir())
        .unwrap_or_else(|| {
            panic!("no site-packages/snmpsim_data/data under {}; rebuild it with `bash .ci/run install`", lib.display())
        })
}

fn device_dir(recording: &str) -> PathBuf {
    util::cache_dir().join("snmpsim-devices").join(recording.replace('/', "__"))
}

fn lock_device_dir(dir: &Path) -> fs::File {
    fs::create_dir_all(dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o755));
    let path = dir.join(".lock");
    let file = fs::File::create(&path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
    file.lock().unwrap_or_else(|e| panic!("locking {}: {e}", path.display()));
    file
}

/// Decompresses `<recording>.snmprec.bz2` into the device dir as `public.snmprec`, unless an up-to-date copy is
/// there. Called with the device dir locked.
fn prepare_recording(venv: &Path, recording: &str) {
    let source = recordings_dir(venv).join(format!("{recording}.snmprec.bz2"));
    assert!(source.is_file(), "no recording {recording} in snmpsim-data (looked for {})", source.display());
    let target = device_dir(recording).join("public.snmprec");
    let mtime = |p: &Path| fs::metadata(p).and_then(|m| m.modified()).ok();
    if mtime(&target).is_some_and(|t| Some(t) >= mtime(&source)) {
        return;
    }
    let partial = target.with_extension("partial");
    // Debian's python (bz2 is in its standard library) rather than a bzip2 binary the machine may lack.
    let out = Command::new(venv.join("bin/python"))
        .args([
            "-c",
            "import bz2, shutil, sys; shutil.copyfileobj(bz2.open(sys.argv[1]), open(sys.argv[2], 'wb'), 1 << 20)",
        ])
        .arg(&source)
        .arg(&partial)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running the venv's python to decompress {recording}: {e}"));
    assert!(out.status.success(), "decompressing {}: {}", source.display(), String::from_utf8_lossy(&out.stderr));
    let _ = fs::set_permissions(&partial, fs::Permissions::from_mode(0o644));
    fs::rename(&partial, &target).unwrap_or_else(|e| panic!("renaming into {}: {e}", target.display()));
}

fn spawn_device(venv: &Path, recording: &str, index_dir: &Path, log: PathBuf) -> Device {
    let port = util::free_udp_port();
    let log_file = fs::File::create(&log).unwrap_or_else(|e| panic!("creating {}: {e}", log.display()));
    let mut cmd = Command::new(venv.join("bin/snmpsim-command-responder"));
    cmd.arg(format!("--data-dir={}", device_dir(recording).display()))
        .arg(format!("--cache-dir={}", index_dir.display()))
        .arg(format!("--agent-udpv4-endpoint=127.0.0.1:{port}"))
        .args(["--logging-method=stdout", "--log-level=info"])
        .current_dir("/")
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("duplicating a log file handle"))
        .stderr(log_file);
    if util::is_root() {
        // It refuses to run as root; `nobody` needs to read the cache dir and write the index dir.
        cmd.args(["--process-user=nobody", "--process-group=nogroup"]);
    }
    let child = cmd.spawn().unwrap_or_else(|e| panic!("spawning snmpsim for {recording}: {e}"));
    let logs_dir = log.parent().expect("a log file in the logs dir");
    let watchdog = util::Watchdog::arm("TERM", &[child.id()], &[logs_dir])
        .unwrap_or_else(|e| panic!("starting the cleanup watchdog for snmpsim: {e}"));
    Device { recording: recording.to_owned(), port, child, log, _watchdog: watchdog }
}

fn wait_until_answering(device: &mut Device, deadline: Instant) -> Result<(), String> {
    let target = format!("127.0.0.1:{}", device.port);
    loop {
        if let Ok(Some(status)) = device.child.try_wait() {
            return Err(format!(
                "snmpsim for {} on {target} exited with {status}; its log:\n{}",
                device.recording,
                util::tail(&device.log, 30)
            ));
        }
        let answer = snmpd::snmpget(&target, &["-v2c", "-c", COMMUNITY, "-t", "0.5", "-r", "0"], &[SYS_DESCR_OID]);
        if answer.is_ok_and(|vbs| vbs.first().is_some_and(|(_, kind, _)| kind == "STRING" || kind == "Hex-STRING")) {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Err(format!(
                "snmpsim for {} on {target} did not answer sysDescr within {START_TIMEOUT:?}; its log:\n{}",
                device.recording,
                util::tail(&device.log, 30)
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
