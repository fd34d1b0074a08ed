//! Text rendering for the CLI.

use collector::ifmib::CounterKind;
use collector::poll::DevicePoll;
use std::fmt::Write;

fn status_name(s: Option<i16>) -> &'static str {
    match s {
        Some(1) => "up",
        Some(2) => "down",
        Some(3) => "testing",
        Some(4) => "unknown",
        Some(5) => "dormant",
        Some(6) => "notPresent",
        Some(7) => "lowerLayerDown",
        _ => "-",
    }
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
        "ifIndex", "name", "type", "mtu", "speed", "admin", "oper", "in octets", "out octets", "in err", "out err", "alias / descr"
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
