//! Test fixtures: walks saved as net-snmp `snmpbulkwalk -On` output (`.walk`) or snmpsim `.snmprec`, read
//! from `collector/testdata/routing/` into [`Varbinds`].

use super::Varbinds;
use crate::ifmib::{self, InterfaceRow};
use crate::snmp::{Oid, Value};

pub(crate) fn load(name: &str) -> Varbinds {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/routing").join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    if name.ends_with(".snmprec") { parse_snmprec(&text) } else { parse_walk(&text) }
}

/// The IF-MIB rows a fixture holds, decoded as a poll would.
pub(crate) fn interfaces(vbs: &Varbinds) -> Vec<InterfaceRow> {
    let columns: Vec<Vec<(Vec<u32>, Value)>> = ifmib::if_column_oids()
        .iter()
        .map(|col| vbs.column(col).map(|(i, v)| (i.to_vec(), v.clone())).collect())
        .collect();
    let (rows, issues) = ifmib::decode_interfaces(&columns);
    assert!(issues.is_empty(), "fixture interfaces: {issues:?}");
    rows
}

/// net-snmp `-On` output. A line that does not start a varbind continues the previous value (long Hex-STRINGs
/// wrap); `#` lines are comments.
pub(crate) fn parse_walk(text: &str) -> Varbinds {
    let mut entries: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let starts_varbind = line.starts_with('.') && line.contains(" = ");
        match (starts_varbind, entries.last_mut()) {
            (true, _) => {
                let (oid, value) = line.split_once(" = ").expect("checked");
                entries.push((oid.to_string(), value.to_string()));
            }
            (false, Some((_, value))) => {
                value.push('\n');
                value.push_str(line);
            }
            (false, None) => panic!("walk fixture starts with a continuation line: {line:?}"),
        }
    }
    entries
        .into_iter()
        .filter_map(|(oid, value)| {
            let oid: Oid = oid.parse().unwrap_or_else(|e| panic!("{e}"));
            walk_value(&value).map(|v| (oid, v))
        })
        .collect()
}

fn walk_value(s: &str) -> Option<Value> {
    if s == "\"\"" {
        return Some(Value::OctetString(Vec::new()));
    }
    if s.starts_with("No Such") || s.starts_with("No more variables") {
        return None;
    }
    let (kind, rest) = s.split_once(": ").unwrap_or_else(|| panic!("unknown walk value {s:?}"));
    let number = |t: &str| -> u64 {
        // "up(1)" when MIBs are loaded, "(1234) 0:00:12.34" for Timeticks.
        let t = match (t.find('('), t.find(')')) {
            (Some(a), Some(b)) if a < b => &t[a + 1..b],
            _ => t.trim(),
        };
        t.parse().unwrap_or_else(|_| panic!("not a number: {s:?}"))
    };
    Some(match kind {
        "INTEGER" => {
            let t = rest.trim();
            Value::Integer(t.parse().unwrap_or_else(|_| number(t) as i64))
        }
        "STRING" => {
            let t = rest.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(rest);
            Value::OctetString(t.replace("\\\"", "\"").replace("\\\\", "\\").into_bytes())
        }
        "Hex-STRING" => Value::OctetString(
            rest.split_whitespace()
                .map(|h| u8::from_str_radix(h, 16).unwrap_or_else(|_| panic!("hex {h:?}")))
                .collect(),
        ),
        "IpAddress" => Value::IpAddress(rest.trim().parse::<std::net::Ipv4Addr>().expect("IpAddress").octets()),
        "Counter32" => Value::Counter32(number(rest) as u32),
        "Gauge32" => Value::Gauge32(number(rest) as u32),
        "Timeticks" => Value::TimeTicks(number(rest) as u32),
        "Counter64" => Value::Counter64(number(rest)),
        "OID" => Value::ObjectIdentifier(rest.trim().parse().expect("OID value")),
        other => panic!("walk value type {other} not supported: {s:?}"),
    })
}

/// snmpsim `.snmprec`: `oid|tag[:variation][x]|value`, `x` meaning the value is hex.
pub(crate) fn parse_snmprec(text: &str) -> Varbinds {
    let mut out = Varbinds::default();
    for line in text.lines() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut parts = line.splitn(3, '|');
        let (Some(oid), Some(tag), Some(value)) = (parts.next(), parts.next(), parts.next()) else {
            panic!("bad snmprec line {line:?}");
        };
        let tag = tag.split(':').next().expect("split yields one");
        let (tag, hex) = match tag.strip_suffix('x') {
            Some(t) => (t, true),
            None => (tag, false),
        };
        let bytes = || -> Vec<u8> {
            if hex {
                (0..value.len()).step_by(2).map(|i| u8::from_str_radix(&value[i..i + 2], 16).expect("hex")).collect()
            } else {
                value.as_bytes().to_vec()
            }
        };
        let v = match tag {
            "2" => Value::Integer(value.parse().expect("integer")),
            "4" => Value::OctetString(bytes()),
            "5" => Value::Null,
            "6" => Value::ObjectIdentifier(value.parse().expect("oid")),
            "64" if hex => Value::IpAddress(bytes().try_into().expect("4 bytes")),
            "64" => Value::IpAddress(value.parse::<std::net::Ipv4Addr>().expect("IpAddress").octets()),
            "65" => Value::Counter32(value.parse().expect("counter32")),
            "66" => Value::Gauge32(value.parse().expect("gauge32")),
            "67" => Value::TimeTicks(value.parse().expect("timeticks")),
            "70" => Value::Counter64(value.parse().expect("counter64")),
            other => panic!("snmprec tag {other} not supported: {line:?}"),
        };
        out.insert(oid.parse().unwrap_or_else(|e| panic!("{e}")), v);
    }
    out
}

#[test]
fn both_formats_parse() {
    let w = parse_walk(
        ".1.3.6.1.2.1.15.2.0 = INTEGER: 65001\n.1.3.6.1.2.1.15.1.0 = Hex-STRING: 10 20\n30 \n.1.3.6.1.2.1.1.5.0 = STRING: \"a \\\"b\\\"\"\n.1.3.6.1.2.1.1.3.0 = Timeticks: (42) 0:00:00.42\n",
    );
    assert_eq!(w.get(&crate::routing::oid("1.3.6.1.2.1.15.2.0")), Some(&Value::Integer(65001)));
    assert_eq!(w.get(&crate::routing::oid("1.3.6.1.2.1.15.1.0")), Some(&Value::OctetString(vec![0x10, 0x20, 0x30])));
    assert_eq!(w.get(&crate::routing::oid("1.3.6.1.2.1.1.5.0")), Some(&Value::OctetString(b"a \"b\"".to_vec())));
    assert_eq!(w.get(&crate::routing::oid("1.3.6.1.2.1.1.3.0")), Some(&Value::TimeTicks(42)));
    let r = parse_snmprec(
        "1.3.6.1.2.1.14.1.1.0|64x|0a000001\n1.3.6.1.2.1.1.5.0|4|leaf1\n1.3.6.1.2.1.2.2.1.10.1|65:numeric|7\n",
    );
    assert_eq!(r.get(&crate::routing::oid("1.3.6.1.2.1.14.1.1.0")), Some(&Value::IpAddress([10, 0, 0, 1])));
    assert_eq!(r.get(&crate::routing::oid("1.3.6.1.2.1.2.2.1.10.1")), Some(&Value::Counter32(7)));
    assert_eq!(r.len(), 3);
}
