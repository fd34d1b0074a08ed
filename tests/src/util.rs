//! Helpers the fixtures share: the cache dir, free loopback ports, stopping child processes, skipping without root.

use std::collections::HashSet;
use std::net::{TcpListener, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// Where slow-to-build test assets live across runs: the snmpsim venv (built by `.ci/run install`), decompressed
/// recordings and snmpsim's index. `$NETWARDEN_TEST_CACHE`, else `/var/tmp/netwarden-test`. It must be readable
/// by `nobody`, which snmpsim runs as under root, so not under `/root`.
pub fn cache_dir() -> PathBuf {
    std::env::var_os("NETWARDEN_TEST_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp/netwarden-test"))
}

pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// For tests that need root: returns `true` (after saying why on stderr) when the test must skip.
///
/// ```no_run
/// if netwarden_tests::util::skip_unless_root("creating network namespaces") { return; }
/// ```
pub fn skip_unless_root(what: &str) -> bool {
    if is_root() {
        return false;
    }
    eprintln!("skipped: {what} needs root (CI runs as root, so it runs there)");
    true
}

/// Ports handed out by this process, so two fixtures in one test run never get the same one.
static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// A UDP port on 127.0.0.1 that was free a moment ago. Another process may still take it before the caller
/// binds it, so the fixtures retry a start that fails to bind.
pub fn free_udp_port() -> u16 {
    free_port(|| UdpSocket::bind("127.0.0.1:0").and_then(|s| s.local_addr()).map(|a| a.port()))
}

/// A TCP port on 127.0.0.1 that was free a moment ago (same caveat as [`free_udp_port`]).
pub fn free_tcp_port() -> u16 {
    free_port(|| TcpListener::bind("127.0.0.1:0").and_then(|s| s.local_addr()).map(|a| a.port()))
}

fn free_port(bind: impl Fn() -> std::io::Result<u16>) -> u16 {
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|e| e.into_inner());
    let handed_out = handed_out.get_or_insert_with(HashSet::new);
    for _ in 0..100 {
        let port = bind().expect("binding an ephemeral port on 127.0.0.1");
        if handed_out.insert(port) {
            return port;
        }
    }
    panic!("no unused ephemeral port on 127.0.0.1 after 100 tries");
}

/// Stops a child we spawned: SIGTERM, up to `grace` to exit, then SIGKILL; always reaps it. The pid cannot have
/// been reused, because an unreaped child keeps it.
pub fn stop_child(child: &mut Child, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The last `lines` lines of a text file, for error messages.
pub fn tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(e) => format!("(cannot read {}: {e})", path.display()),
    }
}

/// Panics with an install hint when a program the fixtures need is missing.
pub fn require_program(path: &str, package: &str) {
    assert!(
        Path::new(path).is_file(),
        "{path} is missing: install the Debian package {package} (`bash .ci/run install` installs everything the tests need)"
    );
}

/// Cleans up after this process if it ends without dropping a fixture: a test binary ends with `exit()`, which
/// runs no destructors (so statics such as the shared PostgreSQL cluster are never dropped), and a killed or
/// aborted one runs none at all.
///
/// It is an `sh` whose stdin is a pipe that only this process writes to. However this process ends, the kernel
/// closes the pipe; the watchdog reads EOF, sends `signal` to `pids`, waits up to 30 s for them to exit, kills
/// the rest and deletes `paths`. It runs in its own process group and ignores SIGINT/SIGTERM/SIGHUP, so a Ctrl-C
/// or a group kill aimed at the tests does not stop it before it has cleaned up. No `unsafe` (`atexit`) needed,
/// and unlike `atexit` it covers crashes. Dropping the watchdog disarms it (kills it before the pipe closes).
#[derive(Debug)]
pub struct Watchdog {
    child: Child,
    _stdin: ChildStdin,
}

const WATCHDOG_SCRIPT: &str = r#"
trap '' INT TERM HUP
while read -r _; do :; done
for p in $NW_PIDS; do kill -"$NW_SIGNAL" "$p" 2>/dev/null; done
# A pid is gone when /proc has no live (non-zombie) process for it.
alive() { s=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -c1); [ -n "$s" ] && [ "$s" != Z ] && [ "$s" != X ]; }
i=0
while [ "$i" -lt 300 ]; do
  busy=
  for p in $NW_PIDS; do alive "$p" && busy=1; done
  [ -z "$busy" ] && break
  sleep 0.1; i=$((i+1))
done
for p in $NW_PIDS; do alive "$p" && kill -KILL "$p" 2>/dev/null; done
rm -rf -- "$@"
"#;

impl Watchdog {
    /// Arms a watchdog for `pids` (sent `signal`, e.g. `"TERM"`, or `"INT"` for a PostgreSQL fast shutdown) and
    /// `paths` (removed afterwards).
    pub fn arm(signal: &str, pids: &[u32], paths: &[&Path]) -> std::io::Result<Watchdog> {
        let pids: Vec<String> = pids.iter().map(u32::to_string).collect();
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(WATCHDOG_SCRIPT)
            .arg("nw-test-watchdog")
            .args(paths)
            .env("NW_PIDS", pids.join(" "))
            .env("NW_SIGNAL", signal)
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()?;
        let stdin = child.stdin.take().expect("piped stdin");
        Ok(Watchdog { child, _stdin: stdin })
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        // Killed while its stdin is still open, so it never acts; the pipe closes right after.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
