//! A private net-snmp `snmpd` on a free 127.0.0.1 UDP port, and net-snmp's own client as the reference to compare
//! netwarden's SNMP results with.
//!
//! The agent serves the host's real MIBs (IF-MIB with this machine's interfaces, etc.) to v2c community `public`
//! and to three v3 users, [`AUTHPRIV_SHA`], [`AUTHPRIV_SHA256`] and [`AUTHONLY`]. It runs with `-C` (no system
//! config) and a persistent dir in its temp dir, so every start gets a new engineID and engineBoots = 1.

use std::ffi::OsStr;
use std::fs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::util;

pub const COMMUNITY: &str = "public";
pub const SYS_NAME: &str = "nw-test-agent";
/// sysName.0, the OID the fixtures poll to see that an agent is up.
pub const SYS_NAME_OID: &str = "1.3.6.1.2.1.1.5.0";

const SNMPD: &str = "/usr/sbin/snmpd";
const SNMPGET: &str = "/usr/bin/snmpget";
const SNMPBULKWALK: &str = "/usr/bin/snmpbulkwalk";
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// An SNMPv3 USM user of the test agent, with protocols spelled as net-snmp 5.9 spells them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V3User {
    pub name: &'static str,
    /// `SHA` (SHA-1) or `SHA-256`.
    pub auth_protocol: &'static str,
    pub auth_password: &'static str,
    /// (`AES` = AES-128 | `AES-256`, password); `None` for authNoPriv.
    pub privacy: Option<(&'static str, &'static str)>,
}

/// authPriv, SHA-1 + AES-128.
pub const AUTHPRIV_SHA: V3User = V3User {
    name: "authpriv_sha",
    auth_protocol: "SHA",
    auth_password: "authpass123",
    privacy: Some(("AES", "privpass123")),
};
/// authPriv, SHA-256 + AES-256 (net-snmp's AES-256 key extension; snmp2 only needs its Blumenthal variant for
/// SHA-1 + AES-256, so this pair works with it as is).
pub const AUTHPRIV_SHA256: V3User = V3User {
    name: "authpriv_sha256",
    auth_protocol: "SHA-256",
    auth_password: "authpass123",
    privacy: Some(("AES-256", "privpass123")),
};
/// authNoPriv, SHA-1.
pub const AUTHONLY: V3User =
    V3User { name: "authonly", auth_protocol: "SHA", auth_password: "authpass123", privacy: None };
pub const V3_USERS: [V3User; 3] = [AUTHPRIV_SHA, AUTHPRIV_SHA256, AUTHONLY];

impl V3User {
    /// `authPriv` or `authNoPriv`.
    pub fn security_level(&self) -> &'static str {
        if self.privacy.is_some() { "authPriv" } else { "authNoPriv" }
    }

    /// net-snmp client arguments for this user, e.g. for [`snmpbulkwalk`].
    pub fn net_snmp_args(&self) -> Vec<String> {
        let mut args: Vec<String> =
            ["-v3", "-l", self.security_level(), "-u", self.name, "-a", self.auth_protocol, "-A", self.auth_password]
                .map(String::from)
                .to_vec();
        if let Some((protocol, password)) = self.privacy {
            args.extend(["-x", protocol, "-X", password].map(String::from));
        }
        args
    }

    /// The snmpd.conf lines that create this user with read-only access at its level.
    fn snmpd_conf(&self) -> String {
        let (privacy, level) = match self.privacy {
            Some((protocol, password)) => (format!(" {protocol} {password}"), "priv"),
            None => (String::new(), "auth"),
        };
        format!(
            "createUser {} {} {}{privacy}\nrouser {} {level}\n",
            self.name, self.auth_protocol, self.auth_password, self.name
        )
    }
}

/// net-snmp client arguments for v2c with the agent's community.
pub fn v2c_args() -> Vec<String> {
    ["-v2c", "-c", COMMUNITY].map(String::from).to_vec()
}

/// A running `snmpd`; stopped (by pid) and its temp dir removed on drop.
#[derive(Debug)]
pub struct Snmpd {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    /// Stops snmpd if this process dies without dropping `self`.
    _watchdog: util::Watchdog,
}

impl Snmpd {
    /// Starts an agent and waits until it answers a v2c GET of sysName.0. Panics, with the agent's log, if it
    /// does not within 15 s.
    pub fn start() -> Snmpd {
        util::require_program(SNMPD, "snmpd");
        util::require_program(SNMPGET, "snmp");
        let dir = tempfile::Builder::new().prefix("nw-snmpd-").tempdir().expect("creating a temp dir for snmpd");
        let mut last_error = String::new();
        // A port that was free may be taken by the time snmpd binds it; then it exits and we try another.
        for _ in 0..3 {
            let port = util::free_udp_port();
            match start_on(&dir, port) {
                Ok((child, watchdog)) => {
                    return Snmpd { child, port, dir, _watchdog: watchdog };
                }
                Err(e) => last_error = e,
            }
        }
        panic!("snmpd did not start: {last_error}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`, as net-snmp's tools take it.
    pub fn target(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// The agent's log so far (`-Lo`).
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.path().join("snmpd.log")).unwrap_or_default()
    }
}

impl Drop for Snmpd {
    fn drop(&mut self) {
        util::stop_child(&mut self.child, Duration::from_secs(5));
    }
}

fn start_on(dir: &tempfile::TempDir, port: u16) -> Result<(Child, util::Watchdog), String> {
    let conf = dir.path().join("snmpd.conf");
    let persist = dir.path().join("persist");
    let log = dir.path().join("snmpd.log");
    fs::create_dir_all(&persist).map_err(|e| format!("creating {}: {e}", persist.display()))?;
    let mut text = format!(
        "agentaddress udp:127.0.0.1:{port}\nrocommunity {COMMUNITY} 127.0.0.1\nsysName {SYS_NAME}\n\
         sysLocation netwarden test agent\nsysContact nobody@example.invalid\n"
    );
    for user in V3_USERS {
        text.push_str(&user.snmpd_conf());
    }
    fs::write(&conf, text).map_err(|e| format!("writing {}: {e}", conf.display()))?;
    let log_file = fs::File::create(&log).map_err(|e| format!("creating {}: {e}", log.display()))?;
    let mut child = Command::new(SNMPD)
        // -f foreground, -Lo log to stdout, -C only the -c config; no IETF MIB files on Debian, so none loaded.
        .args(["-f", "-Lo", "-C", "-c"])
        .arg(&conf)
        .arg(format!("--persistentDir={}", persist.display()))
        .env("MIBS", "")
        .env("SNMP_PERSISTENT_DIR", &persist)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("spawning {SNMPD}: {e}"))?;
    let watchdog = match util::Watchdog::arm("TERM", &[child.id()], &[dir.path()]) {
        Ok(watchdog) => watchdog,
        Err(e) => {
            util::stop_child(&mut child, Duration::from_secs(2));
            return Err(format!("starting the cleanup watchdog: {e}"));
        }
    };
    let target = format!("127.0.0.1:{port}");
    let deadline = Instant::now() + START_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("snmpd on port {port} exited with {status}; its log:\n{}", util::tail(&log, 30)));
        }
        if net_snmp(SNMPGET, &target, &v2c_args(), &["-t", "0.3", "-r", "0"], &[SYS_NAME_OID]).is_ok() {
            return Ok((child, watchdog));
        }
        if Instant::now() > deadline {
            util::stop_child(&mut child, Duration::from_secs(2));
            return Err(format!(
                "snmpd on port {port} did not answer within {START_TIMEOUT:?}; its log:\n{}",
                util::tail(&log, 30)
            ));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Walks `oid` with net-snmp's `snmpbulkwalk -On -Oe -Cr25` and returns `(oid, type, value)` per varbind.
///
/// `args` selects version and credentials (`v2c_args()`, `V3User::net_snmp_args()`, or your own, e.g. `-t 5`).
/// OIDs come without the leading dot (`1.3.6.1.2.1.1.5.0`); types are net-snmp's words (`INTEGER`, `STRING`,
/// `Hex-STRING`, `Counter32`, `Counter64`, `Gauge32`, `Timeticks`, `OID`, `IpAddress`, ...); values are
/// normalised: strings unquoted and unescaped, Timeticks as the raw hundredths, OIDs without the leading dot,
/// hex strings as upper-case bytes separated by single spaces. Panics with net-snmp's message on failure.
pub fn snmpbulkwalk<S: AsRef<OsStr>>(target: &str, args: &[S], oid: &str) -> Vec<(String, String, String)> {
    util::require_program(SNMPBULKWALK, "snmp");
    net_snmp(SNMPBULKWALK, target, args, &["-Cr25"], &[oid])
        .unwrap_or_else(|e| panic!("snmpbulkwalk {target} {oid}: {e}"))
}

/// GETs `oids` with net-snmp's `snmpget`, parsed like [`snmpbulkwalk`]. An OID the agent lacks comes back with
/// type `NoSuchObject` or `NoSuchInstance` and an empty value. Errors carry net-snmp's message (e.g. "Timeout:
/// No Response from 127.0.0.1:1234" or "Authentication failure").
pub fn snmpget<S: AsRef<OsStr>>(
    target: &str,
    args: &[S],
    oids: &[&str],
) -> Result<Vec<(String, String, String)>, String> {
    util::require_program(SNMPGET, "snmp");
    net_snmp(SNMPGET, target, args, &[], oids)
}

fn net_snmp<S: AsRef<OsStr>>(
    program: &str,
    target: &str,
    args: &[S],
    extra: &[&str],
    oids: &[&str],
) -> Result<Vec<(String, String, String)>, String> {
    let out = Command::new(program)
        .args(args)
        .args(["-On", "-Oe"])
        .args(extra)
        .arg(target)
        .args(oids)
        // No MIB files to load (Debian ships none of the IETF ones), and no client state written to /var/lib/snmp.
        .env("MIBS", "")
        .env("SNMP_PERSISTENT_DIR", client_state_dir())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running {program}: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!("{} ({})", stderr.trim(), out.status));
    }
    Ok(parse_net_snmp_output(&stdout))
}

fn client_state_dir() -> PathBuf {
    std::env::temp_dir().join(format!("nw-net-snmp-client-{}", nix::unistd::geteuid()))
}

/// Parses net-snmp `-On` output into `(oid, type, value)`, normalised as [`snmpbulkwalk`] describes.
/// A value that runs over several lines (a long Hex-STRING, a string with newlines) is joined back together.
pub fn parse_net_snmp_output(text: &str) -> Vec<(String, String, String)> {
    let mut varbinds: Vec<(String, String, String)> = Vec::new();
    let mut raw: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let starts_varbind = line.starts_with('.') && line.as_bytes().get(1).is_some_and(u8::is_ascii_digit);
        match line.split_once(" = ") {
            Some((oid, rest)) if starts_varbind => raw.push((oid.trim_start_matches('.').to_owned(), rest.to_owned())),
            _ => {
                if let Some((_, rest)) = raw.last_mut() {
                    rest.push('\n');
                    rest.push_str(line);
                }
            }
        }
    }
    for (oid, rest) in raw {
        let (kind, value) = split_type(&rest);
        varbinds.push((oid, kind, value));
    }
    varbinds
}

fn split_type(rest: &str) -> (String, String) {
    const EXCEPTIONS: [(&str, &str); 3] = [
        ("No Such Object", "NoSuchObject"),
        ("No Such Instance", "NoSuchInstance"),
        ("No more variables left", "EndOfMibView"),
    ];
    for (prefix, kind) in EXCEPTIONS {
        if rest.starts_with(prefix) {
            return (kind.to_owned(), String::new());
        }
    }
    if rest.starts_with('"') {
        // An empty string prints as `""`, with no type word.
        return ("STRING".to_owned(), unquote(rest));
    }
    let Some((kind, value)) = rest.split_once(": ") else {
        return (String::new(), rest.trim().to_owned());
    };
    let value = match kind {
        "STRING" => unquote(value),
        "Hex-STRING" => value.split_whitespace().collect::<Vec<_>>().join(" "),
        "Timeticks" => value
            .strip_prefix('(')
            .and_then(|v| v.split_once(')'))
            .map_or_else(|| value.trim().to_owned(), |(ticks, _)| ticks.to_owned()),
        "OID" => value.trim().trim_start_matches('.').to_owned(),
        _ => value.trim().to_owned(),
    };
    (kind.to_owned(), value)
}

/// `"a \"b\""` → `a "b"`; net-snmp escapes `"` and `\` inside quoted strings.
fn unquote(value: &str) -> String {
    let value = value.trim_end_matches(['\n', ' ']);
    let inner = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vb(oid: &str, kind: &str, value: &str) -> (String, String, String) {
        (oid.to_owned(), kind.to_owned(), value.to_owned())
    }

    #[test]
    fn parses_net_snmp_output() {
        let text = r#".1.3.6.1.2.1.1.5.0 = STRING: "nw-test-agent"
.1.3.6.1.2.1.1.3.0 = Timeticks: (97) 0:00:00.97
.1.3.6.1.2.1.1.2.0 = OID: .1.3.6.1.4.1.8072.3.2.10
.1.3.6.1.2.1.1.9.0 = No Such Object available on this agent at this OID
.1.3.6.1.2.1.2.2.1.6.1 = ""
.1.3.6.1.2.1.2.2.1.6.2 = Hex-STRING: 8A 1F 73 25 D2 A8 
.1.3.6.1.2.1.31.1.1.1.6.4 = Counter64: 143645622
.1.3.6.1.2.1.4.20.1.1.127.0.0.1 = IpAddress: 127.0.0.1
.1.3.6.1.2.1.1.1.0 = STRING: "line one
line \"two\""
.1.3.6.1.4.1.9.9.1 = Hex-STRING: 00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F 
10 11 
"#;
        assert_eq!(
            parse_net_snmp_output(text),
            vec![
                vb("1.3.6.1.2.1.1.5.0", "STRING", "nw-test-agent"),
                vb("1.3.6.1.2.1.1.3.0", "Timeticks", "97"),
                vb("1.3.6.1.2.1.1.2.0", "OID", "1.3.6.1.4.1.8072.3.2.10"),
                vb("1.3.6.1.2.1.1.9.0", "NoSuchObject", ""),
                vb("1.3.6.1.2.1.2.2.1.6.1", "STRING", ""),
                vb("1.3.6.1.2.1.2.2.1.6.2", "Hex-STRING", "8A 1F 73 25 D2 A8"),
                vb("1.3.6.1.2.1.31.1.1.1.6.4", "Counter64", "143645622"),
                vb("1.3.6.1.2.1.4.20.1.1.127.0.0.1", "IpAddress", "127.0.0.1"),
                vb("1.3.6.1.2.1.1.1.0", "STRING", "line one\nline \"two\""),
                vb("1.3.6.1.4.1.9.9.1", "Hex-STRING", "00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F 10 11"),
            ]
        );
    }

    #[test]
    fn v3_args_match_net_snmp_spelling() {
        assert_eq!(
            AUTHPRIV_SHA256.net_snmp_args().join(" "),
            "-v3 -l authPriv -u authpriv_sha256 -a SHA-256 -A authpass123 -x AES-256 -X privpass123"
        );
        assert_eq!(AUTHONLY.net_snmp_args().join(" "), "-v3 -l authNoPriv -u authonly -a SHA -A authpass123");
        assert_eq!(AUTHONLY.snmpd_conf(), "createUser authonly SHA authpass123\nrouser authonly auth\n");
    }
}
