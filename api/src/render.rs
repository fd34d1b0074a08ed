//! Text rendering for the CLI.

use collector::ifmib::CounterKind;
use collector::poll::DevicePoll;
use std::fmt::Write;

fn status_name(s: Option<i16>) -> &'static str {
    s.and_then(collector::ifmib::status_name).unwrap_or("-")
}

fn speed(bps: Option<u64>) -> String {
    match bps {
        None => "-".into(),
        Some(b) if b >= 1_000_000_000 && b % 1_000_000_000 == 0 => format!("{}G", b / 1_000_000_000),
        Some(b) if b >= 1_000_000 => format!("{}M", b / 1_000_000),
        Some(b) => format!("{b}"),
    }
}

pub fn poll_table(p: &DevicePoll) -> String {
    let mut out = String::new();
    let s = &p.system;
    let _ = writeln!(out, "device     {}", p.target);
    let _ = writeln!(out, "sysName    {}", s.sys_name.as_deref().unwrap_or("-"));
    let _ = writeln!(out, "sysDescr   {}", s.sys_descr.as_deref().unwrap_or("-").replace(['\r', '\n'], " "));
    let _ = writeln!(out, "sysObjectID {}", s.sys_object_id.as_deref().unwrap_or("-"));
    let _ = writeln!(
        out,
        "sysUpTime  {}",
        s.sys_uptime_ticks.map(|t| format!("{t} ({:.1} days)", f64::from(t) / 8_640_000.0)).unwrap_or("-".into())
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:>7}  {:<18} {:<6} {:>6} {:>6} {:<6} {:<14} {:>20} {:>20} {:>10} {:>10}  {}",
        "ifIndex",
        "name",
        "type",
        "mtu",
        "speed",
        "admin",
        "oper",
        "in octets",
        "out octets",
        "in err",
        "out err",
        "alias / descr"
    );
    for r in &p.interfaces {
        let c = |k: CounterKind| r.counter(k).map(|c| c.value.to_string()).unwrap_or("-".into());
        let label = r.alias.clone().filter(|a| !a.is_empty()).or(r.descr.clone()).unwrap_or_default();
        let _ = writeln!(
            out,
            "{:>7}  {:<18} {:<6} {:>6} {:>6} {:<6} {:<14} {:>20} {:>20} {:>10} {:>10}  {}",
            r.if_index,
            r.name.as_deref().unwrap_or("-"),
            r.if_type.map(|t| t.to_string()).unwrap_or("-".into()),
            r.mtu.map(|t| t.to_string()).unwrap_or("-".into()),
            speed(r.speed_bps),
            status_name(r.admin_status),
            status_name(r.oper_status),
            c(CounterKind::InOctets),
            c(CounterKind::OutOctets),
            c(CounterKind::InErrors),
            c(CounterKind::OutErrors),
            label
        );
    }
    for i in &p.issues {
        let _ = writeln!(out, "warning: undecodable value {i}");
    }
    let _ = writeln!(
        out,
        "\n{} interfaces, {} requests, {} varbinds, {} retries, {:.1} ms",
        p.interfaces.len(),
        p.stats.requests,
        p.stats.varbinds,
        p.stats.retries,
        p.duration.as_secs_f64() * 1000.0
    );
    out
}

/// BGP, OSPF and LLDP/CDP tables of a poll, after the interface table.
pub fn routing_tables(p: &DevicePoll) -> String {
    let mut out = String::new();
    if let Some(e) = &p.routing_error {
        let _ = writeln!(out, "\nrouting tables: {e}");
    }
    let Some(r) = &p.routing else { return out };
    let _ = writeln!(
        out,
        "\nBGP (local AS {}, router id {})",
        r.local_as.map(|a| a.to_string()).unwrap_or("-".into()),
        r.router_id.map(|a| a.to_string()).unwrap_or("-".into())
    );
    if r.bgp.is_empty() {
        let _ = writeln!(out, "  no peers");
    } else {
        let _ = writeln!(
            out,
            "  {:<40} {:>10} {:<12} {:>10} {:>8} {:>8} {:<10} {}",
            "peer", "remote AS", "state", "up (s)", "in upd", "out upd", "last err", "family / source"
        );
        for b in &r.bgp {
            let _ = writeln!(
                out,
                "  {:<40} {:>10} {:<12} {:>10} {:>8} {:>8} {:<10} {}",
                b.peer_addr,
                b.remote_as,
                collector::store::routing::bgp_state_name(b.state),
                b.established_time_s.map(|v| v.to_string()).unwrap_or("-".into()),
                b.in_updates.map(|v| v.to_string()).unwrap_or("-".into()),
                b.out_updates.map(|v| v.to_string()).unwrap_or("-".into()),
                b.last_error.map(|(c, s)| format!("{c}/{s}")).unwrap_or("-".into()),
                [b.afi_safi.clone().unwrap_or_default(), b.source.clone()].join(" ").trim(),
            );
        }
    }
    let _ = writeln!(out, "\nOSPF neighbours");
    if r.ospf_neighbors.is_empty() {
        let _ = writeln!(out, "  none");
    } else {
        let _ =
            writeln!(out, "  {:<16} {:<16} {:<14} {:>8} {:>8}", "address", "router id", "state", "events", "priority");
        for n in &r.ospf_neighbors {
            let _ = writeln!(
                out,
                "  {:<16} {:<16} {:<14} {:>8} {:>8}",
                n.addr.to_string(),
                n.router_id.to_string(),
                format!("{:?}", n.state).to_lowercase(),
                n.events.map(|v| v.to_string()).unwrap_or("-".into()),
                n.priority.map(|v| v.to_string()).unwrap_or("-".into())
            );
        }
    }
    if !r.ospf_interfaces.is_empty() {
        let _ = writeln!(out, "\nOSPF interfaces");
        for i in &r.ospf_interfaces {
            let _ = writeln!(out, "  {:<16} area {:<12} {:?}", i.ip.to_string(), i.area_id.to_string(), i.state);
        }
    }
    let _ = writeln!(out, "\nLLDP/CDP neighbours");
    if r.neighbors.is_empty() {
        let _ = writeln!(out, "  none");
    } else {
        let _ = writeln!(
            out,
            "  {:<5} {:<16} {:<24} {:<20} {:<20} {}",
            "proto", "local port", "remote system", "remote port", "chassis id", "mgmt address"
        );
        for n in &r.neighbors {
            let _ = writeln!(
                out,
                "  {:<5} {:<16} {:<24} {:<20} {:<20} {}",
                format!("{:?}", n.protocol).to_lowercase(),
                n.local_if_name.clone().unwrap_or_else(|| format!("port {}", n.local_port_num)),
                n.sys_name.as_deref().unwrap_or("-"),
                n.port_id,
                n.chassis_id,
                n.mgmt_addr.map(|a| a.to_string()).unwrap_or("-".into())
            );
        }
    }
    out
}
