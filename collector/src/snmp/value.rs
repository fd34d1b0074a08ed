//! Owned SNMP values (snmp2's borrow the session's receive buffer).

use std::fmt;

#[derive(Clone, PartialEq)]
pub enum Value {
    Integer(i64),
    OctetString(Vec<u8>),
    ObjectIdentifier(super::Oid),
    IpAddress([u8; 4]),
    Counter32(u32),
    /// Gauge32 and Unsigned32 share a tag; snmp2 reports both as Unsigned32.
    Gauge32(u32),
    TimeTicks(u32),
    Counter64(u64),
    Opaque(Vec<u8>),
    Null,
    NoSuchObject,
    NoSuchInstance,
    EndOfMibView,
}

impl Value {
    pub(crate) fn from_snmp2(v: &snmp2::Value<'_>) -> Value {
        use snmp2::Value as V;
        match v {
            V::Integer(i) => Value::Integer(*i),
            V::OctetString(s) => Value::OctetString(s.to_vec()),
            V::ObjectIdentifier(o) => super::Oid::from_snmp2(o).map(Value::ObjectIdentifier).unwrap_or(Value::Null),
            V::IpAddress(a) => Value::IpAddress(*a),
            V::Counter32(c) => Value::Counter32(*c),
            V::Unsigned32(g) => Value::Gauge32(*g),
            V::Timeticks(t) => Value::TimeTicks(*t),
            V::Counter64(c) => Value::Counter64(*c),
            V::Opaque(b) => Value::Opaque(b.to_vec()),
            V::EndOfMibView => Value::EndOfMibView,
            V::NoSuchObject => Value::NoSuchObject,
            V::NoSuchInstance => Value::NoSuchInstance,
            _ => Value::Null,
        }
    }

    /// True for the three per-varbind exceptions (RFC 3416).
    pub fn is_exception(&self) -> bool {
        matches!(self, Value::NoSuchObject | Value::NoSuchInstance | Value::EndOfMibView)
    }

    /// Integer-like values as i64 (INTEGER, Gauge32, Counter32, TimeTicks).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Integer(i) => Some(*i),
            Value::Counter32(v) | Value::Gauge32(v) | Value::TimeTicks(v) => Some(i64::from(*v)),
            Value::Counter64(v) => i64::try_from(*v).ok(),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Integer(i) => u64::try_from(*i).ok(),
            Value::Counter32(v) | Value::Gauge32(v) | Value::TimeTicks(v) => Some(u64::from(*v)),
            Value::Counter64(v) => Some(*v),
            _ => None,
        }
    }

    /// Display text of an OCTET STRING: UTF-8 (lossy), trailing NULs trimmed.
    pub fn as_text(&self) -> Option<String> {
        match self {
            Value::OctetString(b) => {
                let end = b.iter().rposition(|&c| c != 0).map_or(0, |p| p + 1);
                Some(String::from_utf8_lossy(&b[..end]).into_owned())
            }
            _ => None,
        }
    }

    /// Short type name as net-snmp prints it (`INTEGER`, `Counter64`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Integer(_) => "INTEGER",
            Value::OctetString(_) => "STRING",
            Value::ObjectIdentifier(_) => "OID",
            Value::IpAddress(_) => "IpAddress",
            Value::Counter32(_) => "Counter32",
            Value::Gauge32(_) => "Gauge32",
            Value::TimeTicks(_) => "Timeticks",
            Value::Counter64(_) => "Counter64",
            Value::Opaque(_) => "Opaque",
            Value::Null => "NULL",
            Value::NoSuchObject => "noSuchObject",
            Value::NoSuchInstance => "noSuchInstance",
            Value::EndOfMibView => "endOfMibView",
        }
    }
}

impl fmt::Debug for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Integer(i) => write!(f, "INTEGER: {i}"),
            Value::OctetString(b) => match std::str::from_utf8(b) {
                Ok(s) if s.chars().all(|c| !c.is_control() || c == '\n' || c == '\t') => write!(f, "STRING: {s:?}"),
                _ => write!(f, "Hex-STRING: {}", hex(b)),
            },
            Value::ObjectIdentifier(o) => write!(f, "OID: {o}"),
            Value::IpAddress(a) => write!(f, "IpAddress: {}.{}.{}.{}", a[0], a[1], a[2], a[3]),
            Value::Counter32(v) => write!(f, "Counter32: {v}"),
            Value::Gauge32(v) => write!(f, "Gauge32: {v}"),
            Value::TimeTicks(v) => write!(f, "Timeticks: ({v})"),
            Value::Counter64(v) => write!(f, "Counter64: {v}"),
            Value::Opaque(b) => write!(f, "Opaque: {}", hex(b)),
            other => f.write_str(other.type_name()),
        }
    }
}

pub(crate) fn hex(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() * 3);
    for (i, x) in b.iter().enumerate() {
        if i > 0 {
            s.push(' ');
        }
        s.push_str(&format!("{x:02X}"));
    }
    s
}
