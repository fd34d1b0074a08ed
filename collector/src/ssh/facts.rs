//! Facts read over the CLI where SNMP has none, or as a cross-check of it: NTP associations,
//! syslog destinations, SNMP and AAA settings, the BGP summary. Parsers are pure functions from a
//! command's output to typed data, named in the profiles (`[facts]`) and tested on captured
//! outputs of every platform (`collector/testdata/cli/<profile>/`).

use super::{DeviceSession, SshError};
use serde::Serialize;
use std::collections::BTreeMap;

/// The facts a profile can name.
pub const FACTS: &[&str] = &["ntp", "syslog", "snmp", "aaa", "bgp_summary"];

/// The parsers a profile can name.
pub const PARSERS: &[&str] = &[
    "frr-bgp-summary",
    "ios-bgp-summary",
    "eos-bgp-summary",
    "junos-bgp-summary",
    "ios-ntp-associations",
    "ntpq-associations",
    "frr-logging",
    "ios-logging",
    "eos-logging",
    "junos-set-syslog",
    "frr-config-snmp",
    "ios-config-snmp",
    "junos-set-snmp",
    "ios-config-aaa",
    "junos-set-aaa",
];

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "fact", content = "data", rename_all = "snake_case")]
pub enum Fact {
    Ntp(Vec<NtpAssociation>),
    Syslog(SyslogSettings),
    Snmp(SnmpSettings),
    Aaa(AaaSettings),
    BgpSummary(BgpSummary),
}

impl Fact {
    /// The data alone, as stored in `device_cli_fact.data`.
    pub fn data_json(&self) -> serde_json::Value {
        let mut v = serde_json::to_value(self).unwrap_or_default();
        v.get_mut("data").map(serde_json::Value::take).unwrap_or_default()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NtpAssociation {
    pub server: String,
    pub refid: String,
    pub stratum: u8,
    /// The reachability register (octal as printed, e.g. 377 = last 8 polls answered).
    pub reach: u16,
    /// The association the clock is synchronised to (tally `*`).
    pub selected: bool,
    /// Tally code as printed (`*`, `+`, `-`, `x`, `#`, ` `…).
    pub tally: char,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyslogSettings {
    pub servers: Vec<SyslogServer>,
    /// Local syslog logging level, where the platform logs to the local syslog daemon (FRR).
    pub local_syslog: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyslogServer {
    pub host: String,
    pub port: Option<u16>,
    pub protocol: Option<String>,
    pub vrf: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SnmpSettings {
    pub location: Option<String>,
    pub contact: Option<String>,
    /// Community names are secrets: only their access and whether they are a default name.
    pub communities: Vec<SnmpCommunity>,
    pub v3_users: Vec<String>,
    pub trap_hosts: Vec<String>,
    /// FRR: the daemons export their MIBs over AgentX to the host's snmpd.
    pub agentx: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SnmpCommunity {
    pub read_write: bool,
    pub acl: Option<String>,
    /// "public" or "private".
    pub default_name: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AaaSettings {
    /// IOS `aaa new-model`; `None` where the platform has no such switch.
    pub new_model: Option<bool>,
    /// Login authentication methods in order, e.g. `["group tacacs+", "local"]` or Junos's
    /// `["tacplus", "password"]`.
    pub login_methods: Vec<String>,
    pub authorization: Vec<String>,
    pub accounting: Vec<String>,
    pub tacacs_servers: Vec<String>,
    pub radius_servers: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BgpSummary {
    pub router_id: Option<String>,
    pub local_as: Option<u32>,
    pub neighbors: Vec<BgpNeighbor>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BgpNeighbor {
    pub address: String,
    pub remote_as: u32,
    /// Lower case: established, idle, active, connect, opensent, openconfirm (with a qualifier
    /// such as `idle (admin)` kept).
    pub state: String,
    pub prefixes_received: Option<u64>,
    /// As printed (`00:10:02`, `3d04h`, `1w2d 3:04:05`, `never`).
    pub up_down: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{parser}: {message}")]
pub struct ParseError {
    pub parser: String,
    pub message: String,
}

/// Parses `output` with the parser a profile names.
pub fn parse(parser: &str, output: &str) -> Result<Fact, ParseError> {
    let fact = match parser {
        "frr-bgp-summary" | "ios-bgp-summary" | "eos-bgp-summary" => Fact::BgpSummary(bgp_summary_table(output)),
        "junos-bgp-summary" => Fact::BgpSummary(junos_bgp_summary(output)),
        "ios-ntp-associations" | "ntpq-associations" => Fact::Ntp(ntp_associations(output)),
        "frr-logging" => Fact::Syslog(frr_logging(output)),
        "ios-logging" | "eos-logging" => Fact::Syslog(ios_eos_logging(output)),
        "junos-set-syslog" => Fact::Syslog(junos_syslog(output)),
        "frr-config-snmp" => {
            Fact::Snmp(SnmpSettings { agentx: output.lines().any(|l| l.trim() == "agentx"), ..Default::default() })
        }
        "ios-config-snmp" => Fact::Snmp(ios_snmp(output)),
        "junos-set-snmp" => Fact::Snmp(junos_snmp(output)),
        "ios-config-aaa" => Fact::Aaa(ios_aaa(output)),
        "junos-set-aaa" => Fact::Aaa(junos_aaa(output)),
        other => return Err(ParseError { parser: other.to_owned(), message: "no such parser".to_owned() }),
    };
    let empty_table = match &fact {
        Fact::BgpSummary(b) => b.neighbors.is_empty() && b.router_id.is_none(),
        _ => false,
    };
    if empty_table && !output.trim().is_empty() && !output.contains("not active") && !output.contains("No BGP") {
        return Err(ParseError { parser: parser.to_owned(), message: "no BGP summary found in the output".to_owned() });
    }
    Ok(fact)
}

/// Collects every fact the device's profile names, running each distinct command once.
/// Partial success: the facts that worked, and an error per fact that did not.
pub async fn collect(session: &mut DeviceSession) -> Result<(BTreeMap<String, Fact>, Vec<(String, String)>), SshError> {
    let profile = session.profile().clone();
    let mut commands: Vec<&str> = profile.facts.values().map(|s| s.command.as_str()).collect();
    commands.sort();
    commands.dedup();
    let outputs = session.run_show(&commands).await?;
    let by_command: BTreeMap<&str, _> = outputs.iter().map(|o| (o.command.as_str(), o)).collect();
    let mut facts = BTreeMap::new();
    let mut errors = Vec::new();
    for (name, source) in &profile.facts {
        let out = by_command[source.command.as_str()];
        if let Some(e) = &out.error {
            errors.push((name.clone(), format!("{:?} rejected: {e}", source.command)));
            continue;
        }
        match parse(&source.parser, &out.output) {
            Ok(f) => {
                facts.insert(name.clone(), f);
            }
            Err(e) => errors.push((name.clone(), e.to_string())),
        }
    }
    Ok((facts, errors))
}

// ---- BGP ------------------------------------------------------------------------------------

fn router_id_and_as(output: &str) -> (Option<String>, Option<u32>) {
    for line in output.lines() {
        let l = line.trim();
        let rest = l.strip_prefix("BGP router identifier ").or_else(|| l.strip_prefix("Router identifier "));
        if let Some(rest) = rest
            && let Some((id, tail)) = rest.split_once(',')
        {
            let asn = tail
                .trim()
                .strip_prefix("local AS number ")
                .and_then(|a| a.split_whitespace().next())
                .and_then(|a| a.parse().ok());
            return (Some(id.trim().to_owned()), asn);
        }
    }
    (None, None)
}

/// IOS, IOS-XE, FRR and EOS print the same kind of table; columns are found by their header.
fn bgp_summary_table(output: &str) -> BgpSummary {
    let (router_id, local_as) = router_id_and_as(output);
    let mut summary = BgpSummary { router_id, local_as, neighbors: Vec::new() };
    let mut header: Option<Vec<&str>> = None;
    for line in output.lines() {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        if tokens.first() == Some(&"Neighbor") && tokens.contains(&"AS") {
            header = Some(tokens);
            continue;
        }
        let Some(cols) = &header else { continue };
        if tokens.is_empty() || tokens[0].parse::<std::net::IpAddr>().is_err() {
            if tokens.first().is_some_and(|t| *t == "Total") {
                header = None;
            }
            continue;
        }
        // "Idle (Admin)", "Idle (PfxCt)": a parenthesised qualifier belongs to the state.
        let mut merged: Vec<String> = Vec::new();
        for t in tokens {
            match merged.last_mut() {
                Some(prev) if t.starts_with('(') => {
                    prev.push(' ');
                    prev.push_str(t);
                }
                _ => merged.push(t.to_owned()),
            }
        }
        let col = |names: &[&str]| cols.iter().position(|c| names.contains(c)).and_then(|i| merged.get(i).cloned());
        let Some(remote_as) = col(&["AS"]).and_then(|a| parse_asn(&a)) else { continue };
        let up_down = col(&["Up/Down"]).unwrap_or_default();
        let (state, prefixes) = match (col(&["State/PfxRcd"]), col(&["State"])) {
            (Some(s), _) => match s.parse::<u64>() {
                Ok(n) => ("established".to_owned(), Some(n)),
                Err(_) => (s.to_ascii_lowercase(), None),
            },
            (None, Some(s)) => {
                let state =
                    if s.eq_ignore_ascii_case("estab") { "established".to_owned() } else { s.to_ascii_lowercase() };
                (state, col(&["PfxRcd"]).and_then(|p| p.parse().ok()))
            }
            (None, None) => continue,
        };
        let description = cols.iter().position(|c| *c == "Desc").and_then(|i| {
            let rest = merged.get(i..)?.join(" ");
            (!rest.is_empty() && rest != "N/A").then_some(rest)
        });
        summary.neighbors.push(BgpNeighbor {
            address: merged[0].clone(),
            remote_as,
            state,
            prefixes_received: prefixes,
            up_down,
            description,
        });
    }
    summary
}

fn parse_asn(s: &str) -> Option<u32> {
    // asdot "1.10" = 1 * 65536 + 10
    match s.split_once('.') {
        Some((hi, lo)) => Some(hi.parse::<u32>().ok()? * 65536 + lo.parse::<u32>().ok()?),
        None => s.parse().ok(),
    }
}

/// Junos `show bgp summary`: peers after the `Peer … State|#Active/Received/Accepted/Damped`
/// header; an established peer shows its counts (on the same line with one table, or on
/// indented `inet.0: a/r/acc/d` lines below it).
fn junos_bgp_summary(output: &str) -> BgpSummary {
    let mut summary = BgpSummary::default();
    let mut in_peers = false;
    for line in output.lines() {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        if tokens.first() == Some(&"Peer") && tokens.contains(&"AS") {
            in_peers = true;
            continue;
        }
        if !in_peers || tokens.is_empty() {
            continue;
        }
        if line.starts_with(' ') {
            // "  inet.0: 3/4/4/0": the received count of the peer above
            if let (Some(n), Some(last)) =
                (tokens.get(1).and_then(|c| counts_received(c)), summary.neighbors.last_mut())
            {
                last.prefixes_received = Some(last.prefixes_received.unwrap_or(0) + n);
            }
            continue;
        }
        if tokens.len() < 7 || tokens[0].parse::<std::net::IpAddr>().is_err() {
            continue;
        }
        let Some(remote_as) = parse_asn(tokens[1]) else { continue };
        // Peer AS InPkt OutPkt OutQ Flaps <Last Up/Dwn: one or two tokens> <State or counts…>
        let rest = &tokens[6..];
        let split = rest
            .iter()
            .position(|t| counts_received(t).is_some() || t.chars().all(|c| c.is_ascii_alphabetic()))
            .unwrap_or(rest.len());
        let up_down = rest[..split].join(" ");
        let (state, prefixes) = match rest.get(split) {
            Some(t) if counts_received(t).is_some() => ("established".to_owned(), counts_received(t)),
            Some(t) if t.eq_ignore_ascii_case("establ") => ("established".to_owned(), None),
            Some(t) => (t.to_ascii_lowercase(), None),
            None => ("unknown".to_owned(), None),
        };
        summary.neighbors.push(BgpNeighbor {
            address: tokens[0].to_owned(),
            remote_as,
            state,
            prefixes_received: prefixes,
            up_down,
            description: None,
        });
    }
    summary
}

/// `3/4/4/0` → 4 (received).
fn counts_received(t: &str) -> Option<u64> {
    let parts: Vec<&str> = t.split('/').collect();
    if parts.len() == 4 && parts.iter().all(|p| p.parse::<u64>().is_ok()) { parts[1].parse().ok() } else { None }
}

// ---- NTP ------------------------------------------------------------------------------------

/// IOS `show ntp associations` and ntpq-style tables (EOS, Junos). IOS rows are
/// `*~10.0.0.1 .GPS. 1 45 64 377 …`; ntpq rows `*10.0.0.1 .GPS. 1 u 45 64 377 …`.
fn ntp_associations(output: &str) -> Vec<NtpAssociation> {
    let mut out = Vec::new();
    let mut ios = false;
    for line in output.lines() {
        if line.contains("ref clock") {
            ios = true;
            continue;
        }
        if line.trim_start().starts_with("remote") || line.starts_with("===") || line.trim().is_empty() {
            continue;
        }
        let tally = line.chars().next().unwrap_or(' ');
        let body = line.trim_start_matches(['*', '+', '-', 'x', '#', 'o', '.', ' ', '~']);
        let tokens: Vec<&str> = body.split_whitespace().collect();
        if tokens.len() < 6 || tokens[0].parse::<std::net::IpAddr>().is_err() {
            continue; // legend lines ("* sys.peer, # selected, …")
        }
        let reach_at = if ios { 5 } else { 6 };
        let (Ok(stratum), Some(reach)) =
            (tokens[2].parse::<u8>(), tokens.get(reach_at).and_then(|r| u16::from_str_radix(r, 8).ok()))
        else {
            continue;
        };
        out.push(NtpAssociation {
            server: tokens[0].to_owned(),
            refid: tokens[1].to_owned(),
            stratum,
            reach,
            selected: tally == '*',
            tally,
        });
    }
    out
}

// ---- syslog ---------------------------------------------------------------------------------

/// FRR `show logging`: one block per daemon; only local syslog exists (no remote hosts).
fn frr_logging(output: &str) -> SyslogSettings {
    let mut s = SyslogSettings::default();
    let mut daemon = String::new();
    for line in output.lines() {
        if let Some(d) = line.strip_prefix("Logging configuration for ") {
            daemon = d.trim_end_matches(':').to_owned();
        } else if let Some(v) = line.strip_prefix("Syslog logging: ")
            && v != "disabled"
        {
            s.local_syslog.push(format!("{daemon}: {v}"));
        }
    }
    s
}

/// IOS `Logging to 10.0.0.50  (udp port 514, …` and EOS `Logging to '10.0.0.50' port 514 in VRF
/// default via udp`.
fn ios_eos_logging(output: &str) -> SyslogSettings {
    let mut s = SyslogSettings::default();
    for line in output.lines() {
        let Some(rest) = line.trim().strip_prefix("Logging to ") else { continue };
        let tokens: Vec<&str> = rest.split_whitespace().collect();
        let Some(host) = tokens.first().map(|h| h.trim_matches('\'')) else { continue };
        if host.parse::<std::net::IpAddr>().is_err() && !host.contains('.') {
            continue;
        }
        let after =
            |word: &str| tokens.iter().position(|t| t.trim_start_matches('(') == word).and_then(|i| tokens.get(i + 1));
        let port = after("port").and_then(|p| p.trim_end_matches([',', ')']).parse().ok());
        let protocol = tokens.iter().find_map(|t| {
            let t = t.trim_start_matches('(').trim_end_matches([',', ')']);
            ["udp", "tcp", "tls"].contains(&t).then(|| t.to_owned())
        });
        // EOS: "in VRF MGMT"; IOS: "10.0.0.51  (Mgmt-intf) (udp port 514, …"
        let vrf = after("VRF").map(|v| v.to_string()).or_else(|| {
            tokens
                .get(1)
                .filter(|t| t.starts_with('(') && t.ends_with(')'))
                .map(|t| t.trim_matches(['(', ')']).to_owned())
        });
        s.servers.push(SyslogServer { host: host.to_owned(), port, protocol, vrf });
    }
    s
}

/// Junos `show configuration system syslog | display set`.
fn junos_syslog(output: &str) -> SyslogSettings {
    let mut servers: BTreeMap<String, SyslogServer> = BTreeMap::new();
    for line in output.lines() {
        let Some(rest) = line.trim().strip_prefix("set system syslog host ") else { continue };
        let tokens: Vec<&str> = rest.split_whitespace().collect();
        let Some(host) = tokens.first() else { continue };
        let entry = servers.entry((*host).to_owned()).or_insert_with(|| SyslogServer {
            host: (*host).to_owned(),
            port: None,
            protocol: None,
            vrf: None,
        });
        match tokens.get(1..3) {
            Some(["port", p]) => entry.port = p.parse().ok(),
            Some(["routing-instance", v]) => entry.vrf = Some((*v).to_owned()),
            Some(["transport", t]) => entry.protocol = Some((*t).to_owned()),
            _ => {}
        }
    }
    SyslogSettings { servers: servers.into_values().collect(), local_syslog: Vec::new() }
}

// ---- SNMP and AAA from configuration lines --------------------------------------------------------

fn unquote(s: &str) -> String {
    s.trim().trim_matches('"').to_owned()
}

/// IOS and EOS `snmp-server …` lines of the running configuration.
fn ios_snmp(config: &str) -> SnmpSettings {
    let mut s = SnmpSettings::default();
    for line in config.lines() {
        let Some(rest) = line.strip_prefix("snmp-server ") else { continue };
        let tokens: Vec<&str> = rest.split_whitespace().collect();
        match tokens.as_slice() {
            ["location", ..] => s.location = Some(rest["location ".len()..].trim().to_owned()),
            ["contact", ..] => s.contact = Some(rest["contact ".len()..].trim().to_owned()),
            ["community", name, more @ ..] => {
                let mut read_write = false;
                let mut acl = None;
                let mut it = more.iter().peekable();
                while let Some(t) = it.next() {
                    match t.to_ascii_lowercase().as_str() {
                        "rw" => read_write = true,
                        "ro" => {}
                        "view" => {
                            it.next();
                        }
                        "ipv6" | "ipv4" | "access" => acl = it.next().map(|a| (*a).to_owned()),
                        _ => acl = Some((*t).to_owned()),
                    }
                }
                s.communities.push(SnmpCommunity {
                    read_write,
                    acl,
                    default_name: ["public", "private"].contains(name),
                });
            }
            ["user", user, ..] => s.v3_users.push((*user).to_owned()),
            ["host", host, ..] => s.trap_hosts.push((*host).to_owned()),
            _ => {}
        }
    }
    s
}

/// Junos `show configuration snmp | display set`.
fn junos_snmp(output: &str) -> SnmpSettings {
    let mut s = SnmpSettings::default();
    let mut communities: BTreeMap<String, SnmpCommunity> = BTreeMap::new();
    for line in output.lines() {
        let Some(rest) = line.trim().strip_prefix("set snmp ") else { continue };
        let tokens: Vec<&str> = rest.split_whitespace().collect();
        match tokens.as_slice() {
            ["location", ..] => s.location = Some(unquote(&rest["location ".len()..])),
            ["contact", ..] => s.contact = Some(unquote(&rest["contact ".len()..])),
            ["community", name, more @ ..] => {
                let c = communities.entry((*name).to_owned()).or_insert_with(|| SnmpCommunity {
                    read_write: false,
                    acl: None,
                    default_name: ["public", "private"].contains(name),
                });
                match more {
                    ["authorization", a] => c.read_write = *a == "read-write",
                    ["clients", prefix, ..] => c.acl = Some((*prefix).to_owned()),
                    ["client-list-name", list] => c.acl = Some((*list).to_owned()),
                    _ => {}
                }
            }
            ["trap-group", _, "targets", host] => s.trap_hosts.push((*host).to_owned()),
            ["v3", "usm", "local-engine", "user", user, ..] if !s.v3_users.iter().any(|u| u == user) => {
                s.v3_users.push((*user).to_owned())
            }
            _ => {}
        }
    }
    s.communities = communities.into_values().collect();
    s
}

/// IOS and EOS AAA lines: `aaa …`, `tacacs-server host X`, `tacacs server NAME` + ` address
/// ipv4 X`, and the same for RADIUS.
fn ios_aaa(config: &str) -> AaaSettings {
    let mut a = AaaSettings::default();
    let mut block: Option<&str> = None; // "tacacs" or "radius" inside `tacacs server NAME`
    for line in config.lines() {
        if !line.starts_with(' ') {
            block = None;
        }
        let l = line.trim();
        if let Some(kind) = block
            && let Some(addr) = l.strip_prefix("address ipv4 ").or_else(|| l.strip_prefix("address ipv6 "))
        {
            let host = addr.split_whitespace().next().unwrap_or_default().to_owned();
            if kind == "tacacs" {
                a.tacacs_servers.push(host)
            } else {
                a.radius_servers.push(host)
            }
            continue;
        }
        if line.starts_with(' ') {
            continue;
        }
        let tokens: Vec<&str> = l.split_whitespace().collect();
        match tokens.as_slice() {
            ["aaa", "new-model"] => a.new_model = Some(true),
            ["no", "aaa", "new-model"] => a.new_model = Some(false),
            ["aaa", "authentication", "login", "default", methods @ ..] => a.login_methods = methods_of(methods),
            ["aaa", "authorization", ..] => a.authorization.push(tokens[2..].join(" ")),
            ["aaa", "accounting", ..] => a.accounting.push(tokens[2..].join(" ")),
            ["tacacs-server", "host", host, ..] => a.tacacs_servers.push((*host).to_owned()),
            ["radius-server", "host", host, ..] => a.radius_servers.push((*host).to_owned()),
            ["tacacs", "server", _] => block = Some("tacacs"),
            ["radius", "server", _] => block = Some("radius"),
            _ => {}
        }
    }
    a
}

/// `group tacacs+ local` → ["group tacacs+", "local"].
fn methods_of(tokens: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut it = tokens.iter();
    while let Some(t) = it.next() {
        match *t {
            "group" => out.push(format!("group {}", it.next().unwrap_or(&""))),
            t => out.push(t.to_owned()),
        }
    }
    out
}

/// Junos `show configuration system | display set`: authentication-order, tacplus/radius servers.
fn junos_aaa(output: &str) -> AaaSettings {
    let mut a = AaaSettings::default();
    for line in output.lines() {
        let Some(rest) = line.trim().strip_prefix("set system ") else { continue };
        let tokens: Vec<&str> = rest.split_whitespace().collect();
        match tokens.as_slice() {
            ["authentication-order", methods @ ..] => {
                for m in methods.iter().map(|m| m.trim_matches(['[', ']'])).filter(|m| !m.is_empty()) {
                    a.login_methods.push(m.to_owned());
                }
            }
            ["tacplus-server", host, ..] if !a.tacacs_servers.iter().any(|h| h == host) => {
                a.tacacs_servers.push((*host).to_owned())
            }
            ["radius-server", host, ..] if !a.radius_servers.iter().any(|h| h == host) => {
                a.radius_servers.push((*host).to_owned())
            }
            ["accounting", ..] => a.accounting.push(tokens[1..].join(" ")),
            _ => {}
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssh::profile::Profiles;
    use std::path::Path;

    fn capture(profile: &str, file: &str) -> String {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/cli").join(profile).join(file);
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Parses a capture with the parser the profile names for `fact` (so the profiles are tested too).
    fn check(profile: &str, fact: &str, file: &str) -> Fact {
        let p = Profiles::builtin().get(profile).unwrap();
        let source = p.facts.get(fact).unwrap_or_else(|| panic!("{profile} has no fact {fact}"));
        parse(&source.parser, &capture(profile, file)).unwrap()
    }

    fn bgp(f: Fact) -> BgpSummary {
        match f {
            Fact::BgpSummary(b) => b,
            other => panic!("{other:?}"),
        }
    }

    fn n(
        address: &str,
        remote_as: u32,
        state: &str,
        pfx: Option<u64>,
        up_down: &str,
        desc: Option<&str>,
    ) -> BgpNeighbor {
        BgpNeighbor {
            address: address.into(),
            remote_as,
            state: state.into(),
            prefixes_received: pfx,
            up_down: up_down.into(),
            description: desc.map(Into::into),
        }
    }

    #[test]
    fn frr_bgp_summary_from_the_lab() {
        let b = bgp(check("frr", "bgp_summary", "show_ip_bgp_summary.txt"));
        assert_eq!(b.router_id.as_deref(), Some("10.0.0.11"));
        assert_eq!(b.local_as, Some(65011));
        assert_eq!(
            b.neighbors,
            vec![
                n("10.0.11.0", 65001, "established", Some(3), "00:21:08", Some("spine1 nwlab-eth1")),
                n("10.0.21.0", 65002, "established", Some(3), "00:21:07", Some("spine2 nwlab-eth1")),
            ]
        );
        let b = bgp(check("frr", "bgp_summary", "show_ip_bgp_summary_down.txt"));
        assert_eq!(b.neighbors[0].state, "established");
        assert_eq!(b.neighbors[1].state, "idle (admin)");
        assert_eq!(b.neighbors[1].prefixes_received, None);
        assert_eq!(b.neighbors[1].description.as_deref(), Some("spine2 nwlab-eth1"));
    }

    #[test]
    fn ios_eos_junos_bgp_summaries() {
        let b = bgp(check("cisco-ios", "bgp_summary", "show_ip_bgp_summary.txt"));
        assert_eq!((b.router_id.as_deref(), b.local_as), (Some("10.0.0.1"), Some(65001)));
        assert_eq!(
            b.neighbors,
            vec![
                n("10.0.11.1", 65011, "established", Some(3), "3d04h", None),
                n("10.0.12.1", 65012, "idle (admin)", None, "never", None),
                n("10.0.13.1", 65013, "active", None, "00:01:12", None),
            ]
        );
        let b = bgp(check("arista-eos", "bgp_summary", "show_ip_bgp_summary.txt"));
        assert_eq!((b.router_id.as_deref(), b.local_as), (Some("10.0.0.11"), Some(65011)));
        assert_eq!(
            b.neighbors,
            vec![
                n("10.0.11.0", 65001, "established", Some(3), "3d04h", None),
                n("10.0.21.0", 65002, "active", None, "00:01:02", None),
            ]
        );
        let b = bgp(check("junos", "bgp_summary", "show_bgp_summary.txt"));
        assert_eq!(
            b.neighbors,
            vec![
                n("10.0.11.1", 65011, "established", Some(4), "3d 4:05:10", None),
                n("10.0.12.1", 65012, "active", None, "1:12:01", None),
                n("10.0.13.1", 65013, "established", Some(5), "1w2d 3:04:05", None),
            ]
        );
    }

    #[test]
    fn ntp_associations_per_platform() {
        for (profile, file) in [
            ("cisco-ios", "show_ntp_associations.txt"),
            ("arista-eos", "show_ntp_associations.txt"),
            ("junos", "show_ntp_associations_no-resolve.txt"),
        ] {
            let Fact::Ntp(a) = check(profile, "ntp", file) else { panic!() };
            let servers: Vec<(&str, u8, u16, bool)> =
                a.iter().map(|a| (a.server.as_str(), a.stratum, a.reach, a.selected)).collect();
            assert_eq!(
                servers,
                vec![("10.0.0.1", 1, 0o377, true), ("10.0.0.2", 2, 0o377, false), ("192.0.2.10", 16, 0, false)],
                "{profile}"
            );
        }
        assert!(!Profiles::builtin().get("frr").unwrap().facts.contains_key("ntp"), "FRR has no NTP client");
    }

    #[test]
    fn syslog_per_platform() {
        let Fact::Syslog(s) = check("frr", "syslog", "show_logging.txt") else { panic!() };
        assert!(s.servers.is_empty() && s.local_syslog.is_empty(), "{s:?}");
        let Fact::Syslog(s) = check("frr", "syslog", "show_logging_syslog.txt") else { panic!() };
        assert_eq!(s.local_syslog, vec!["zebra: level informational, facility daemon, ident zebra".to_owned()]);

        let server = |host: &str, port: Option<u16>, protocol: Option<&str>, vrf: Option<&str>| SyslogServer {
            host: host.into(),
            port,
            protocol: protocol.map(Into::into),
            vrf: vrf.map(Into::into),
        };
        let Fact::Syslog(s) = check("cisco-ios", "syslog", "show_logging.txt") else { panic!() };
        assert_eq!(
            s.servers,
            vec![
                server("10.0.0.50", Some(514), Some("udp"), None),
                server("10.0.0.51", Some(514), Some("udp"), Some("Mgmt-intf"))
            ]
        );
        let Fact::Syslog(s) = check("arista-eos", "syslog", "show_logging.txt") else { panic!() };
        assert_eq!(
            s.servers,
            vec![
                server("10.0.0.50", Some(514), Some("udp"), Some("default")),
                server("10.0.0.51", Some(1514), Some("tcp"), Some("MGMT"))
            ]
        );
        let Fact::Syslog(s) = check("junos", "syslog", "show_configuration_system_syslog.txt") else { panic!() };
        assert_eq!(
            s.servers,
            vec![server("10.0.0.50", None, None, None), server("10.0.0.51", Some(1514), None, Some("mgmt_junos"))]
        );
    }

    #[test]
    fn snmp_per_platform() {
        let Fact::Snmp(s) = check("frr", "snmp", "show_running-config.txt") else { panic!() };
        assert!(s.agentx);
        for (profile, file) in [("cisco-ios", "show_running-config.txt"), ("arista-eos", "show_running-config.txt")] {
            let Fact::Snmp(s) = check(profile, "snmp", file) else { panic!() };
            assert_eq!(s.location.as_deref(), Some("ams1 row 3 rack 12"), "{profile}");
            assert_eq!(s.contact.as_deref(), Some("noc@example.net"), "{profile}");
            assert_eq!(
                s.communities,
                vec![
                    SnmpCommunity { read_write: false, acl: Some("SNMP-RO".into()), default_name: false },
                    SnmpCommunity { read_write: true, acl: None, default_name: true },
                ],
                "{profile}"
            );
            // IOS never shows `snmp-server user` in the running configuration; EOS does
            let users: Vec<String> = if profile == "arista-eos" { vec!["netops".into()] } else { vec![] };
            assert_eq!(s.v3_users, users, "{profile}");
            assert_eq!(s.trap_hosts, vec!["10.0.0.40".to_owned()], "{profile}");
        }
        let Fact::Snmp(s) = check("junos", "snmp", "show_configuration_snmp.txt") else { panic!() };
        assert_eq!(s.location.as_deref(), Some("ams1 row 3 rack 12"));
        assert_eq!(
            s.communities,
            vec![
                SnmpCommunity { read_write: false, acl: Some("10.0.0.0/24".into()), default_name: false },
                SnmpCommunity { read_write: true, acl: None, default_name: true },
            ]
        );
        assert_eq!((s.v3_users, s.trap_hosts), (vec!["netops".to_owned()], vec!["10.0.0.40".to_owned()]));
    }

    #[test]
    fn aaa_per_platform() {
        let Fact::Aaa(a) = check("cisco-ios", "aaa", "show_running-config.txt") else { panic!() };
        assert_eq!(a.new_model, Some(true));
        assert_eq!(a.login_methods, vec!["group tacacs+", "local"]);
        assert_eq!(a.tacacs_servers, vec!["10.0.0.60", "10.0.0.61"]);
        assert_eq!(a.radius_servers, vec!["10.0.0.70"]);
        assert_eq!(a.authorization, vec!["exec default group tacacs+ local"]);
        let Fact::Aaa(a) = check("arista-eos", "aaa", "show_running-config.txt") else { panic!() };
        assert_eq!((a.new_model, a.login_methods), (None, vec!["group tacacs+".to_owned(), "local".to_owned()]));
        assert_eq!(a.tacacs_servers, vec!["10.0.0.60"]);
        let Fact::Aaa(a) = check("junos", "aaa", "show_configuration_system.txt") else { panic!() };
        assert_eq!(a.login_methods, vec!["tacplus", "password"]);
        assert_eq!(a.tacacs_servers, vec!["10.0.0.60"]);
        assert_eq!(a.radius_servers, vec!["10.0.0.70"]);
    }

    #[test]
    fn unknown_parser_and_garbage_are_errors() {
        assert!(parse("nope", "").is_err());
        assert!(parse("ios-bgp-summary", "% BGP not active\n").is_ok());
        assert!(parse("ios-bgp-summary", "something else entirely\n").is_err());
    }
}
