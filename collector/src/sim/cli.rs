//! The simulated devices' CLI, IOS/FRR-like: a prompt per mode (`leaf001#`,
//! `leaf001(config)#`, `leaf001(config-if)#`, `leaf001(config-router)#`), show commands
//! rendered from the device's current state, and configuration commands that change the running
//! fabric through [`Fabric`] (so the SNMP agents report the change at both ends of a link).
//!
//! ```text
//! exec:          terminal length|width N; show running-config; show interfaces;
//!                show ip bgp summary; configure terminal; write [memory];
//!                copy running-config startup-config; exit
//! config:        interface ethN; router bgp ASN; end; exit; do <exec command>
//! config-if:     shutdown; no shutdown; description TEXT; no description
//! config-router: neighbor A.B.C.D shutdown; no neighbor A.B.C.D shutdown
//! ```
//!
//! Keywords may be abbreviated to any unique prefix (`conf t`, `sh run`). A line the CLI does
//! not take gets IOS's error lines (`% Invalid input detected at '^' marker.` under a caret,
//! `% Incomplete command.`), which every profile's error patterns catch. Parsing and rendering
//! are pure; [`Shell::run`] is the one place a line reaches the fabric.
//!
//! The simulator keeps no separate startup configuration: changes are live at once and stay
//! until changed back (a reboot keeps them), so `write memory` only confirms.

use super::running::{Fabric, FaultError};
use crate::ifmib;
use crate::routing::{self, BgpAdminStatus, BgpState, Varbinds};
use crate::snmp::Oid;
use std::fmt::Write as _;
use std::net::Ipv4Addr;

/// Where the CLI is; each mode has its own prompt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Exec,
    Config,
    /// Configuring the port with this ifIndex.
    Interface(u32),
    RouterBgp,
}

impl Mode {
    fn suffix(self) -> &'static str {
        match self {
            Mode::Exec => "",
            Mode::Config => "(config)",
            Mode::Interface(_) => "(config-if)",
            Mode::RouterBgp => "(config-router)",
        }
    }
}

/// The prompt of `hostname` in `mode`.
pub fn prompt(hostname: &str, mode: Mode) -> String {
    format!("{hostname}{}#", mode.suffix())
}

/// One parsed line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `terminal length|width N`: accepted (the simulator never pages).
    Terminal,
    ShowRunningConfig,
    ShowInterfaces,
    ShowBgpSummary,
    ConfigureTerminal,
    Interface(u32),
    /// `shutdown` (true) or `no shutdown` (false).
    Shutdown(bool),
    /// `description TEXT`, or `no description` (`None`).
    Description(Option<String>),
    RouterBgp(u32),
    /// `neighbor A shutdown` (shut) or `no neighbor A shutdown`.
    NeighborShutdown {
        peer: Ipv4Addr,
        shut: bool,
    },
    End,
    Exit,
    /// `write`, `write memory`, `copy running-config startup-config`.
    Write,
}

/// Why a line was not taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CliError {
    /// The word starting at this byte offset of the line is not valid there.
    Invalid {
        at: usize,
    },
    Incomplete,
    /// A device-specific refusal, printed as it is (starts with `% `).
    Refused(String),
}

impl CliError {
    /// The error lines as IOS prints them after `prompt` and the echoed line.
    pub fn render(&self, prompt: &str) -> String {
        match self {
            CliError::Invalid { at } => {
                format!("{}^\n% Invalid input detected at '^' marker.\n", " ".repeat(prompt.len() + at))
            }
            CliError::Incomplete => "% Incomplete command.\n".to_string(),
            CliError::Refused(message) => format!("{message}\n"),
        }
    }
}

/// The words of a line with their byte offsets.
fn words(line: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in line.char_indices().chain([(line.len(), ' ')]) {
        match (c.is_whitespace(), start) {
            (false, None) => start = Some(i),
            (true, Some(s)) => {
                out.push((s, &line[s..i]));
                start = None;
            }
            _ => {}
        }
    }
    out
}

/// The keyword `word` abbreviates: an exact match, else the only candidate it is a prefix of.
fn keyword(word: &str, candidates: &[&'static str]) -> Option<&'static str> {
    let w = word.to_ascii_lowercase();
    if let Some(exact) = candidates.iter().find(|c| **c == w) {
        return Some(exact);
    }
    let mut matching = candidates.iter().filter(|c| c.starts_with(&w));
    match (matching.next(), matching.next()) {
        (Some(only), None) => Some(only),
        _ => None,
    }
}

/// The words of a line, consumed left to right.
struct Words<'l> {
    line: &'l str,
    words: Vec<(usize, &'l str)>,
    next: usize,
}

impl<'l> Words<'l> {
    fn new(line: &'l str) -> Self {
        Words { line, words: words(line), next: 0 }
    }

    /// The next word, which must be one of `candidates` (abbreviated or not).
    fn expect(&mut self, candidates: &[&'static str]) -> Result<&'static str, CliError> {
        let (at, word) = *self.words.get(self.next).ok_or(CliError::Incomplete)?;
        self.next += 1;
        keyword(word, candidates).ok_or(CliError::Invalid { at })
    }

    /// The next word parsed as `T`.
    fn value<T: std::str::FromStr>(&mut self) -> Result<T, CliError> {
        let (at, word) = *self.words.get(self.next).ok_or(CliError::Incomplete)?;
        self.next += 1;
        word.parse().map_err(|_| CliError::Invalid { at })
    }

    /// The next word and where it starts.
    fn word(&mut self) -> Result<(usize, &'l str), CliError> {
        let w = *self.words.get(self.next).ok_or(CliError::Incomplete)?;
        self.next += 1;
        Ok(w)
    }

    /// The rest of the line from the next word on, as typed.
    fn rest(&mut self) -> Result<&'l str, CliError> {
        let (at, _) = *self.words.get(self.next).ok_or(CliError::Incomplete)?;
        self.next = self.words.len();
        Ok(self.line[at..].trim_end())
    }

    /// Nothing may follow.
    fn end(&self) -> Result<(), CliError> {
        match self.words.get(self.next) {
            Some(&(at, _)) => Err(CliError::Invalid { at }),
            None => Ok(()),
        }
    }

    fn is_empty(&self) -> bool {
        self.words.is_empty()
    }
}

/// Parses one line typed in `mode` on a device with `ports` ports; `Ok(None)` for a blank line.
pub fn parse(mode: Mode, line: &str, ports: u32) -> Result<Option<Command>, CliError> {
    let mut w = Words::new(line);
    if w.is_empty() {
        return Ok(None);
    }
    let cmd = match mode {
        Mode::Exec => exec_command(&mut w)?,
        Mode::Config | Mode::Interface(_) | Mode::RouterBgp => config_command(mode, &mut w, ports)?,
    };
    w.end()?;
    Ok(Some(cmd))
}

fn exec_command(w: &mut Words<'_>) -> Result<Command, CliError> {
    Ok(match w.expect(&["terminal", "show", "configure", "write", "copy", "exit"])? {
        "terminal" => {
            w.expect(&["length", "width"])?;
            w.value::<u32>()?;
            Command::Terminal
        }
        "show" => match w.expect(&["running-config", "interfaces", "ip"])? {
            "running-config" => Command::ShowRunningConfig,
            "interfaces" => Command::ShowInterfaces,
            _ => {
                w.expect(&["bgp"])?;
                w.expect(&["summary"])?;
                Command::ShowBgpSummary
            }
        },
        "configure" => {
            w.expect(&["terminal"])?;
            Command::ConfigureTerminal
        }
        "write" => {
            if w.next < w.words.len() {
                w.expect(&["memory"])?;
            }
            Command::Write
        }
        "copy" => {
            w.expect(&["running-config"])?;
            w.expect(&["startup-config"])?;
            Command::Write
        }
        _ => Command::Exit,
    })
}

fn config_command(mode: Mode, w: &mut Words<'_>, ports: u32) -> Result<Command, CliError> {
    let mut words: Vec<&'static str> = vec!["interface", "router", "end", "exit", "do"];
    match mode {
        Mode::Interface(_) => words.extend(["shutdown", "description", "no"]),
        Mode::RouterBgp => words.extend(["neighbor", "no"]),
        Mode::Exec | Mode::Config => {}
    }
    Ok(match w.expect(&words)? {
        "interface" => Command::Interface(interface(w, ports)?),
        "router" => {
            w.expect(&["bgp"])?;
            Command::RouterBgp(w.value()?)
        }
        "end" => Command::End,
        "exit" => Command::Exit,
        "do" => exec_command(w)?,
        "shutdown" => Command::Shutdown(true),
        "description" => Command::Description(Some(w.rest()?.to_string())),
        "neighbor" => neighbor_shutdown(w, true)?,
        _ => match mode {
            Mode::RouterBgp => {
                w.expect(&["neighbor"])?;
                neighbor_shutdown(w, false)?
            }
            _ => match w.expect(&["shutdown", "description"])? {
                "shutdown" => Command::Shutdown(false),
                _ => Command::Description(None),
            },
        },
    })
}

/// `ethN` (any case), N a port of the device.
fn interface(w: &mut Words<'_>, ports: u32) -> Result<u32, CliError> {
    let (at, name) = w.word()?;
    let lower = name.to_ascii_lowercase();
    lower
        .strip_prefix("eth")
        .and_then(|n| n.parse::<u32>().ok())
        .filter(|n| (1..=ports).contains(n))
        .ok_or(CliError::Invalid { at })
}

fn neighbor_shutdown(w: &mut Words<'_>, shut: bool) -> Result<Command, CliError> {
    let peer = w.value()?;
    w.expect(&["shutdown"])?;
    Ok(Command::NeighborShutdown { peer, shut })
}

/// A port in `show running-config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceConfig {
    pub name: String,
    pub description: String,
    pub shutdown: bool,
}

/// A BGP neighbor in `show running-config`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NeighborConfig {
    pub addr: Ipv4Addr,
    pub remote_as: u32,
    pub shutdown: bool,
}

/// What `show running-config` shows of a device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceConfig {
    pub hostname: String,
    pub asn: u32,
    pub router_id: Ipv4Addr,
    pub interfaces: Vec<InterfaceConfig>,
    pub neighbors: Vec<NeighborConfig>,
}

/// `show running-config`, IOS style.
pub fn render_running_config(c: &DeviceConfig) -> String {
    let mut body = format!("!\nhostname {}\n!\n", c.hostname);
    for i in &c.interfaces {
        let _ = writeln!(body, "interface {}", i.name);
        let _ = writeln!(body, " description {}", i.description);
        if i.shutdown {
            body.push_str(" shutdown\n");
        }
        body.push_str("!\n");
    }
    let _ = writeln!(body, "router bgp {}", c.asn);
    let _ = writeln!(body, " bgp router-id {}", c.router_id);
    for n in &c.neighbors {
        let _ = writeln!(body, " neighbor {} remote-as {}", n.addr, n.remote_as);
        if n.shutdown {
            let _ = writeln!(body, " neighbor {} shutdown", n.addr);
        }
    }
    body.push_str("!\nend\n");
    format!("Building configuration...\n\nCurrent configuration : {} bytes\n{body}", body.len())
}

/// `show interfaces` (brief): one line per port from IF-MIB as the agent reports it.
pub fn render_interfaces(rows: &[ifmib::InterfaceRow]) -> String {
    let status = |s: Option<i16>| match s {
        Some(1) => "up",
        Some(2) => "down",
        _ => "unknown",
    };
    let mut out = format!("{:<10} {:<22} {:<9} {}\n", "Interface", "Status", "Protocol", "Description");
    for r in rows {
        let admin = if r.admin_status == Some(2) { "administratively down" } else { status(r.oper_status) };
        let _ = writeln!(
            out,
            "{:<10} {:<22} {:<9} {}",
            r.name.as_deref().unwrap_or("?"),
            admin,
            status(r.oper_status),
            r.alias.as_deref().unwrap_or("")
        );
    }
    out
}

/// `show ip bgp summary`, IOS style, from BGP4-MIB as the agent reports it.
pub fn render_bgp_summary(router_id: Ipv4Addr, asn: u32, peers: &[routing::BgpPeer]) -> String {
    let mut out = format!(
        "BGP router identifier {router_id}, local AS number {asn}\nBGP table version is 1, main routing table \
         version 1\n\nNeighbor        V           AS MsgRcvd MsgSent   TblVer  InQ OutQ Up/Down  State/PfxRcd\n"
    );
    for p in peers {
        let state = match (p.state, p.admin_status) {
            (BgpState::Established, _) => p.prefixes_received.unwrap_or(1).to_string(),
            (BgpState::Idle, Some(BgpAdminStatus::Stop)) => "Idle (Admin)".to_string(),
            (BgpState::Idle, _) => "Idle".to_string(),
            (BgpState::Active, _) => "Active".to_string(),
            (BgpState::Connect, _) => "Connect".to_string(),
            (BgpState::OpenSent, _) => "OpenSent".to_string(),
            (BgpState::OpenConfirm, _) => "OpenConfirm".to_string(),
            (BgpState::Unknown(v), _) => format!("Unknown({v})"),
        };
        let up_down = match p.established_time_s {
            Some(s) if p.fsm_established_transitions.unwrap_or(0) > 0 => {
                format!("{:02}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60)
            }
            _ => "never".to_string(),
        };
        let _ = writeln!(
            out,
            "{:<15} 4 {:>12} {:>7} {:>7} {:>8} {:>4} {:>4} {:<8} {state}",
            p.peer_addr.to_string(),
            p.remote_as,
            p.in_updates.unwrap_or(0),
            p.out_updates.unwrap_or(0),
            1,
            0,
            0,
            up_down,
        );
    }
    out
}

/// What one line did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Output lines (each ending in `\n`), error lines included.
    pub output: String,
    /// False when the line was rejected (the output holds the error).
    pub ok: bool,
    /// The session ends (`exit` in exec mode).
    pub quit: bool,
}

/// One CLI session on one device.
#[derive(Debug, Clone)]
pub struct Shell {
    device: usize,
    hostname: String,
    ports: u32,
    mode: Mode,
}

impl Shell {
    pub fn new(fabric: &Fabric, device: usize) -> Shell {
        let d = &fabric.model().devices[device];
        Shell { device, hostname: d.name.clone(), ports: d.ports, mode: Mode::Exec }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn prompt(&self) -> String {
        prompt(&self.hostname, self.mode)
    }

    /// Parses and runs one line.
    pub fn run(&mut self, fabric: &Fabric, line: &str) -> Reply {
        let prompt = self.prompt();
        let result = parse(self.mode, line, self.ports).and_then(|cmd| match cmd {
            Some(cmd) => self.execute(fabric, cmd),
            None => Ok((String::new(), false)),
        });
        match result {
            Ok((output, quit)) => Reply { output, ok: true, quit },
            Err(e) => Reply { output: e.render(&prompt), ok: false, quit: false },
        }
    }

    fn execute(&mut self, fabric: &Fabric, cmd: Command) -> Result<(String, bool), CliError> {
        let d = self.device;
        let refused = |e: FaultError| match e {
            FaultError::NoNeighbor { .. } => {
                CliError::Refused("% Specify remote-as or peer-group commands first".into())
            }
            other => CliError::Refused(format!("% {other}")),
        };
        let output = match cmd {
            Command::Terminal => String::new(),
            Command::ShowRunningConfig => render_running_config(&fabric.device_config(d)),
            Command::ShowInterfaces => render_interfaces(&interface_rows(fabric, d)),
            Command::ShowBgpSummary => {
                let dev = &fabric.model().devices[d];
                render_bgp_summary(dev.loopback, dev.asn, &bgp_peers(fabric, d))
            }
            Command::ConfigureTerminal => {
                self.mode = Mode::Config;
                "Enter configuration commands, one per line.  End with CNTL/Z.\n".to_string()
            }
            Command::Interface(i) => {
                self.mode = Mode::Interface(i);
                String::new()
            }
            Command::RouterBgp(asn) => {
                let own = fabric.model().devices[d].asn;
                if asn != own {
                    return Err(CliError::Refused(format!("% BGP is already running; AS is {own}")));
                }
                self.mode = Mode::RouterBgp;
                String::new()
            }
            Command::Shutdown(shut) => {
                fabric.configure_port(d, self.interface(), Some(shut), None).map_err(refused)?;
                String::new()
            }
            Command::Description(text) => {
                fabric.configure_port(d, self.interface(), None, Some(text)).map_err(refused)?;
                String::new()
            }
            Command::NeighborShutdown { peer, shut } => {
                fabric.shut_bgp_neighbor(d, peer, shut).map_err(refused)?;
                String::new()
            }
            Command::End => {
                self.mode = Mode::Exec;
                String::new()
            }
            Command::Exit => {
                let quit = self.mode == Mode::Exec;
                self.mode = match self.mode {
                    Mode::Exec | Mode::Config => Mode::Exec,
                    Mode::Interface(_) | Mode::RouterBgp => Mode::Config,
                };
                return Ok((String::new(), quit));
            }
            Command::Write => "Building configuration...\n[OK]\n".to_string(),
        };
        Ok((output, false))
    }

    /// The port being configured (parse only yields port commands in interface mode).
    fn interface(&self) -> u32 {
        match self.mode {
            Mode::Interface(i) => i,
            other => unreachable!("a port command in {other:?}"),
        }
    }
}

/// The device's interfaces as its agent reports them now.
fn interface_rows(fabric: &Fabric, device: usize) -> Vec<ifmib::InterfaceRow> {
    let mib = fabric.device_mib(device).read();
    let now = tokio::time::Instant::now();
    let columns: Vec<Vec<(Vec<u32>, crate::snmp::Value)>> = ifmib::if_column_oids()
        .iter()
        .map(|c| mib.subtree(c, now).into_iter().filter_map(|(o, v)| Some((o.suffix(c)?.to_vec(), v))).collect())
        .collect();
    ifmib::decode_interfaces(&columns).0
}

/// The device's BGP peers as its agent reports them now.
fn bgp_peers(fabric: &Fabric, device: usize) -> Vec<routing::BgpPeer> {
    let mib = fabric.device_mib(device).read();
    let bgp: Oid = "1.3.6.1.2.1.15".parse().expect("static OID");
    let vbs: Varbinds = mib.subtree(&bgp, tokio::time::Instant::now()).into_iter().collect();
    let mut peers = routing::decode_routing(&vbs, &[]).bgp;
    peers.sort_by_key(|p| p.peer_addr);
    peers
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::FabricModel;

    fn check(mode: Mode, line: &str, expected: Result<Option<Command>, CliError>) {
        assert_eq!(parse(mode, line, 48), expected, "{mode:?} {line:?}");
    }

    #[test]
    fn exec_commands_parse_with_abbreviations() {
        let ok = |c| Ok(Some(c));
        check(Mode::Exec, "", Ok(None));
        check(Mode::Exec, "terminal length 0", ok(Command::Terminal));
        check(Mode::Exec, "term width 0", ok(Command::Terminal));
        check(Mode::Exec, "show running-config", ok(Command::ShowRunningConfig));
        check(Mode::Exec, "sh run", ok(Command::ShowRunningConfig));
        check(Mode::Exec, "show interfaces", ok(Command::ShowInterfaces));
        check(Mode::Exec, "show ip bgp summary", ok(Command::ShowBgpSummary));
        check(Mode::Exec, "conf t", ok(Command::ConfigureTerminal));
        check(Mode::Exec, "write", ok(Command::Write));
        check(Mode::Exec, "write memory", ok(Command::Write));
        check(Mode::Exec, "copy running-config startup-config", ok(Command::Write));
        check(Mode::Exec, "exit", ok(Command::Exit));
    }

    #[test]
    fn config_commands_parse_per_mode() {
        let ok = |c| Ok(Some(c));
        check(Mode::Config, "interface eth3", ok(Command::Interface(3)));
        check(Mode::Config, "int Eth48", ok(Command::Interface(48)));
        check(Mode::Config, "router bgp 65001", ok(Command::RouterBgp(65001)));
        check(Mode::Config, "do show ip bgp summary", ok(Command::ShowBgpSummary));
        check(Mode::Interface(1), "shutdown", ok(Command::Shutdown(true)));
        check(Mode::Interface(1), "no shutdown", ok(Command::Shutdown(false)));
        check(
            Mode::Interface(1),
            "description  to core  (maintenance) ",
            ok(Command::Description(Some("to core  (maintenance)".into()))),
        );
        check(Mode::Interface(1), "no description", ok(Command::Description(None)));
        check(Mode::Interface(1), "interface eth2", ok(Command::Interface(2)));
        let peer = Ipv4Addr::new(10, 128, 0, 1);
        check(Mode::RouterBgp, "neighbor 10.128.0.1 shutdown", ok(Command::NeighborShutdown { peer, shut: true }));
        check(Mode::RouterBgp, "no neighbor 10.128.0.1 shutdown", ok(Command::NeighborShutdown { peer, shut: false }));
        check(Mode::RouterBgp, "end", ok(Command::End));
    }

    #[test]
    fn errors_point_at_the_word() {
        check(Mode::Exec, "show bogus", Err(CliError::Invalid { at: 5 }));
        check(Mode::Exec, "shutdown", Err(CliError::Invalid { at: 0 }));
        check(Mode::Exec, "c run", Err(CliError::Invalid { at: 0 }));
        check(Mode::Exec, "show ip bgp", Err(CliError::Incomplete));
        check(Mode::Exec, "show running-config extra", Err(CliError::Invalid { at: 20 }));
        check(Mode::Config, "shutdown", Err(CliError::Invalid { at: 0 }));
        check(Mode::Config, "interface eth49", Err(CliError::Invalid { at: 10 }));
        check(Mode::Config, "interface ge-0/0/0", Err(CliError::Invalid { at: 10 }));
        check(Mode::Interface(2), "description", Err(CliError::Incomplete));
        check(Mode::RouterBgp, "neighbor 10.1.2 shutdown", Err(CliError::Invalid { at: 9 }));
        check(Mode::RouterBgp, "shutdown", Err(CliError::Invalid { at: 0 }));
        let lines = CliError::Invalid { at: 5 }.render("leaf001#");
        assert_eq!(lines, "             ^\n% Invalid input detected at '^' marker.\n");
    }

    fn shell(spec: &str, device: &str) -> (Fabric, Shell) {
        let f = Fabric::build(FabricModel::build(&spec.parse().unwrap()).unwrap());
        let d = f.model().index_of(device).unwrap();
        let s = Shell::new(&f, d);
        (f, s)
    }

    #[test]
    fn modes_and_prompts() {
        let (f, mut s) = shell("spines=1,leaves=1", "leaf001");
        assert_eq!(s.prompt(), "leaf001#");
        for (line, prompt) in [
            ("configure terminal", "leaf001(config)#"),
            ("interface eth1", "leaf001(config-if)#"),
            ("exit", "leaf001(config)#"),
            ("router bgp 65001", "leaf001(config-router)#"),
            ("end", "leaf001#"),
        ] {
            let r = s.run(&f, line);
            assert!(r.ok, "{line}: {}", r.output);
            assert_eq!(s.prompt(), prompt, "after {line}");
        }
        let r = s.run(&f, "configure terminal");
        assert!(r.output.starts_with("Enter configuration commands"));
        let r = s.run(&f, "router bgp 65000");
        assert_eq!((r.ok, r.output.as_str()), (false, "% BGP is already running; AS is 65001\n"));
        s.run(&f, "end");
        assert_eq!(s.run(&f, "exit"), Reply { output: String::new(), ok: true, quit: true });
    }

    #[test]
    fn running_config_follows_cli_changes() {
        let (f, mut s) = shell("spines=2,leaves=1,ports=4", "leaf001");
        for line in [
            "configure terminal",
            "interface eth2",
            "description maintenance ticket 42",
            "shutdown",
            "router bgp 65001",
            "neighbor 10.128.0.0 shutdown",
            "end",
        ] {
            let r = s.run(&f, line);
            assert!(r.ok, "{line}: {}", r.output);
        }
        let text = s.run(&f, "show running-config").output;
        let body = text.split_once("!\n").unwrap().1;
        assert_eq!(
            body,
            "hostname leaf001\n!\n\
             interface eth1\n description to spine1 eth1\n!\n\
             interface eth2\n description maintenance ticket 42\n shutdown\n!\n\
             interface eth3\n description host port 3\n!\n\
             interface eth4\n description host port 4\n!\n\
             router bgp 65001\n bgp router-id 10.0.0.3\n\
             \x20neighbor 10.128.0.0 remote-as 65000\n neighbor 10.128.0.0 shutdown\n\
             \x20neighbor 10.128.0.2 remote-as 65000\n!\nend\n"
        );
        assert!(
            text.starts_with(&format!(
                "Building configuration...\n\nCurrent configuration : {} bytes\n",
                body.len() + 2
            ))
        );
        let r = s.run(&f, "configure terminal");
        assert!(r.ok);
        s.run(&f, "router bgp 65001");
        let r = s.run(&f, "neighbor 10.9.9.9 shutdown");
        assert_eq!((r.ok, r.output.as_str()), (false, "% Specify remote-as or peer-group commands first\n"));
    }

    #[test]
    fn show_commands_report_what_the_agent_reports() {
        let (f, mut s) = shell("spines=2,leaves=1,ports=3", "leaf001");
        for line in ["conf t", "int eth1", "shutdown", "router bgp 65001", "neighbor 10.128.0.2 shutdown", "end"] {
            assert!(s.run(&f, line).ok, "{line}");
        }
        let table = s.run(&f, "show interfaces").output;
        let lines: Vec<&str> = table.lines().map(str::trim_end).collect();
        assert_eq!(
            lines,
            [
                "Interface  Status                 Protocol  Description",
                "eth1       administratively down  down      to spine1 eth1",
                "eth2       up                     up        to spine2 eth1",
                "eth3       up                     up        host port 3",
            ]
        );
        let summary = s.run(&f, "show ip bgp summary").output;
        assert!(summary.starts_with("BGP router identifier 10.0.0.3, local AS number 65001\n"), "{summary}");
        let peers: Vec<Vec<&str>> = summary.lines().skip(4).map(|l| l.split_whitespace().collect::<Vec<_>>()).collect();
        assert_eq!((peers[0][0], peers[0].last()), ("10.128.0.0", Some(&"Active")), "the shut port's session");
        assert_eq!((peers[1][0], &peers[1][9..]), ("10.128.0.2", &["Idle", "(Admin)"][..]), "the shut neighbor");
        let fact = crate::ssh::facts::parse("ios-bgp-summary", &summary).expect("netwarden's parser reads it");
        let text = format!("{fact:?}");
        assert!(text.contains("idle (admin)") && text.contains("active"), "{text}");
    }
}
