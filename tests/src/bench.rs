//! Helpers the benchmarks share: process CPU and memory from /proc, a loopback HTTP GET, the
//! `netwarden` binary next to the bench, and the one-line `BENCH` summary `tests/bench/run-all.sh`
//! collects.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::Duration;

use nix::sys::resource::{UsageWho, getrusage};

use crate::util::{self, Watchdog};

/// A child process a benchmark started: stopped by its pid on drop (so also when the benchmark
/// panics), SIGTERM then SIGKILL after `grace`, and by a watchdog if the benchmark dies without
/// unwinding.
#[derive(Debug)]
pub struct Guarded {
    pub child: Child,
    grace: Duration,
    _watchdog: Watchdog,
}

impl Guarded {
    pub fn spawn(cmd: &mut Command, what: &str, grace: Duration) -> Guarded {
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("starting {what}: {e}"));
        let watchdog = match Watchdog::arm("TERM", &[child.id()], &[]) {
            Ok(w) => w,
            Err(e) => {
                util::stop_child(&mut child, grace);
                panic!("cleanup watchdog for {what}: {e}");
            }
        };
        Guarded { child, grace, _watchdog: watchdog }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Whether the process has exited already.
    pub fn exited(&mut self) -> bool {
        self.child.try_wait().map(|s| s.is_some()).unwrap_or(true)
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        util::stop_child(&mut self.child, self.grace);
    }
}

/// One benchmark's result, printed as a single machine-readable line:
/// `BENCH name=poll_cpu metric="…" ours=… peer=… unit="…" peer_version="…" ratio=… goal="…" met=yes`.
/// `ratio` is ours ÷ peer; `goal` says which way it must go (`<= 0.2`, `>= 0.7`), `met` whether it did.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    pub name: &'static str,
    /// What `ours` and `peer` measure, e.g. "CPU µs per device poll".
    pub metric: String,
    pub ours: String,
    /// `None` when the benchmark has no peer (the scale run).
    pub peer: Option<String>,
    pub peer_version: Option<String>,
    pub ratio: Option<f64>,
    pub goal: String,
    pub met: bool,
}

impl Summary {
    /// `met` for a ratio that must stay at or below `limit`.
    pub fn at_most(ratio: f64, limit: f64) -> (String, bool) {
        (format!("<= {limit}"), ratio <= limit)
    }

    /// `met` for a ratio that must reach at least `limit`.
    pub fn at_least(ratio: f64, limit: f64) -> (String, bool) {
        (format!(">= {limit}"), ratio >= limit)
    }

    pub fn line(&self) -> String {
        let q = |s: &str| format!("\"{}\"", s.replace('"', "'"));
        let opt = |s: &Option<String>| s.as_deref().map_or_else(|| q("—"), q);
        format!(
            "BENCH name={} metric={} ours={} peer={} peer_version={} ratio={} goal={} met={}",
            self.name,
            q(&self.metric),
            q(&self.ours),
            opt(&self.peer),
            opt(&self.peer_version),
            self.ratio.map_or_else(|| q("—"), |r| format!("{r:.3}")),
            q(&self.goal),
            if self.met { "yes" } else { "no" }
        )
    }

    pub fn print(&self) {
        println!("{}", self.line());
    }
}

/// user + system CPU of this process (all threads) so far.
pub fn self_cpu() -> Duration {
    let u = getrusage(UsageWho::RUSAGE_SELF).expect("getrusage");
    let t = |tv: nix::sys::time::TimeVal| Duration::new(tv.tv_sec() as u64, tv.tv_usec() as u32 * 1000);
    t(u.user_time()) + t(u.system_time())
}

fn clock_ticks_per_s() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok().flatten().map_or(100.0, |t| t as f64)
}

/// Fields of `/proc/<pid>/stat` after the command name (which may hold spaces): index 0 is the state.
fn stat_fields(pid: u32) -> Option<Vec<u64>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &text[text.rfind(')')? + 2..];
    Some(after.split_whitespace().skip(1).map(|f| f.parse().unwrap_or(0)).collect())
}

/// user + system CPU of a live process (utime + stime, clock-tick resolution: 10 ms).
pub fn proc_cpu(pid: u32) -> Option<Duration> {
    // After the state: ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime.
    let f = stat_fields(pid)?;
    Some(Duration::from_secs_f64((f[10] + f[11]) as f64 / clock_ticks_per_s()))
}

/// CPU of a process's reaped children (cutime + cstime), e.g. PostgreSQL backends that have exited.
pub fn proc_children_cpu(pid: u32) -> Option<Duration> {
    let f = stat_fields(pid)?;
    Some(Duration::from_secs_f64((f[12] + f[13]) as f64 / clock_ticks_per_s()))
}

/// The parent pid of a process.
pub fn proc_ppid(pid: u32) -> Option<u32> {
    stat_fields(pid).map(|f| f[0] as u32)
}

/// CPU of a process and all its live children plus the children it has reaped: PostgreSQL's
/// postmaster and backends.
pub fn tree_cpu(root: u32) -> Duration {
    let mut total = proc_cpu(root).unwrap_or_default() + proc_children_cpu(root).unwrap_or_default();
    let Ok(dir) = std::fs::read_dir("/proc") else { return total };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else { continue };
        if proc_ppid(pid) == Some(root) {
            total += proc_cpu(pid).unwrap_or_default();
        }
    }
    total
}

/// A field of `/proc/<pid>/status` in KiB: `VmRSS` (resident now) or `VmHWM` (peak resident).
pub fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = text.lines().find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// GET `path` from a loopback HTTP server (HTTP/1.0, so the server closes the connection):
/// (status code, body).
pub fn http_get(addr: SocketAddr, path: &str, timeout: Duration) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_read_timeout(Some(timeout))?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let code = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    Ok((code, body.to_string()))
}

/// The `netwarden` binary of the same profile as the running bench (`target/release/netwarden` for
/// `cargo bench`); build it with `cargo build --release -p api`.
pub fn netwarden_bin() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let bin = exe.parent().and_then(|deps| deps.parent()).expect("target dir").join("netwarden");
    assert!(bin.is_file(), "{} is missing: build it first (cargo build --release -p api)", bin.display());
    bin
}

/// The value of a Prometheus text-format sample whose name and labels start with `prefix`
/// (e.g. `netwarden_poll_lag_seconds{quantile="0.99"}`): the first such line's value.
pub fn prom_value(text: &str, prefix: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let rest = l.strip_prefix(prefix)?;
        rest.split_whitespace().last()?.parse().ok()
    })
}

/// Environment knob `NETWARDEN_BENCH_<name>` as a number, else `default`.
pub fn env_num(name: &str, default: u64) -> u64 {
    std::env::var(format!("NETWARDEN_BENCH_{name}")).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_line_quotes_text_fields() {
        let (goal, met) = Summary::at_most(0.1, 0.2);
        let s = Summary {
            name: "poll_cpu",
            metric: "CPU µs per device poll".into(),
            ours: "12.5".into(),
            peer: Some("125".into()),
            peer_version: Some("snmp_exporter 0.21.0".into()),
            ratio: Some(0.1),
            goal,
            met,
        };
        assert_eq!(
            s.line(),
            "BENCH name=poll_cpu metric=\"CPU µs per device poll\" ours=\"12.5\" peer=\"125\" \
             peer_version=\"snmp_exporter 0.21.0\" ratio=0.100 goal=\"<= 0.2\" met=yes"
        );
    }

    #[test]
    fn prom_values_by_prefix() {
        let text = "# HELP x\nnetwarden_poll_lag_seconds{quantile=\"0.5\"} 0.001\n\
                    netwarden_poll_lag_seconds{quantile=\"0.99\"} 0.25\nsnmp_scrape_pdus_returned 1492\n";
        assert_eq!(prom_value(text, "netwarden_poll_lag_seconds{quantile=\"0.99\"}"), Some(0.25));
        assert_eq!(prom_value(text, "snmp_scrape_pdus_returned"), Some(1492.0));
        assert_eq!(prom_value(text, "missing"), None);
    }
}
