//! Object identifiers as numeric arcs, ordered the way SNMP orders them.

use std::fmt;
use std::str::FromStr;

/// An OID as its arcs. Ordering is lexicographic on arcs (not on BER bytes, which differs).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Oid(pub Vec<u32>);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid OID {0:?}: expected dotted decimal arcs like 1.3.6.1.2.1.1.5.0")]
pub struct OidParseError(pub String);

impl Oid {
    pub fn arcs(&self) -> &[u32] {
        &self.0
    }

    pub fn starts_with(&self, prefix: &Oid) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// The arcs after `prefix` (the table index of a column instance), if `self` is under it.
    pub fn suffix(&self, prefix: &Oid) -> Option<&[u32]> {
        self.0.strip_prefix(prefix.0.as_slice())
    }

    /// `self` with `arcs` appended.
    pub fn child(&self, arcs: &[u32]) -> Oid {
        let mut v = Vec::with_capacity(self.0.len() + arcs.len());
        v.extend_from_slice(&self.0);
        v.extend_from_slice(arcs);
        Oid(v)
    }

    pub(crate) fn from_snmp2(o: &snmp2::Oid<'_>) -> Option<Oid> {
        let it = o.iter()?;
        let mut v = Vec::with_capacity(it.len());
        for arc in it {
            v.push(u32::try_from(arc).ok()?);
        }
        Some(Oid(v))
    }

    /// Decodes an snmp2 OID's arcs into `out` (cleared first), reusing its allocation. False (and
    /// `out` empty) when an arc does not fit in u32, where [`from_snmp2`](Self::from_snmp2) gives None.
    pub(crate) fn arcs_from_snmp2(o: &snmp2::Oid<'_>, out: &mut Vec<u32>) -> bool {
        out.clear();
        let Some(it) = o.iter() else { return false };
        for arc in it {
            match u32::try_from(arc) {
                Ok(a) => out.push(a),
                Err(_) => {
                    out.clear();
                    return false;
                }
            }
        }
        true
    }

    pub(crate) fn to_snmp2(&self) -> snmp2::Oid<'static> {
        let arcs: Vec<u64> = self.0.iter().map(|&a| u64::from(a)).collect();
        // Every OID we build has at least two arcs starting 0, 1 or 2; anything else is a bug.
        snmp2::Oid::from(&arcs).expect("well-formed OID")
    }
}

/// OIDs of one request in BER (content octets, as snmp2 sends them), one after the other in one
/// buffer that a walk reuses from request to request: no allocation per request OID.
#[derive(Debug, Default)]
pub(crate) struct EncodedOids {
    ber: Vec<u8>,
    ends: Vec<usize>,
}

impl EncodedOids {
    pub(crate) fn clear(&mut self) {
        self.ber.clear();
        self.ends.clear();
    }

    /// Appends one OID, encoded as [`Oid::to_snmp2`] encodes it (and with the same refusal of an
    /// OID that is not well formed, which only a bug can build).
    pub(crate) fn push(&mut self, arcs: &[u32]) {
        match arcs {
            [a, b, rest @ ..] if *a < 7 && *b < 40 => {
                self.ber.push((a * 40 + b) as u8);
                for &arc in rest {
                    let bits = 32 - arc.leading_zeros();
                    let octets = bits.div_ceil(7).max(1);
                    for i in (0..octets).rev() {
                        let flag = if i == 0 { 0 } else { 0x80 };
                        self.ber.push(((arc >> (7 * i)) & 0x7f) as u8 | flag);
                    }
                }
            }
            _ => {
                let o = Oid(arcs.to_vec()).to_snmp2();
                self.ber.extend_from_slice(o.as_bytes());
            }
        }
        self.ends.push(self.ber.len());
    }

    /// The OIDs as snmp2 takes them, borrowing the buffer.
    pub(crate) fn snmp2_oids(&self) -> Vec<snmp2::Oid<'_>> {
        let mut start = 0;
        self.ends
            .iter()
            .map(|&end| {
                let o = snmp2::Oid::new(std::borrow::Cow::Borrowed(&self.ber[start..end]));
                start = end;
                o
            })
            .collect()
    }
}

impl FromStr for Oid {
    type Err = OidParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.strip_prefix('.').unwrap_or(s);
        let arcs: Result<Vec<u32>, _> = t.split('.').map(str::parse::<u32>).collect();
        match arcs {
            Ok(a) if a.len() >= 2 && a[0] <= 2 => Ok(Oid(a)),
            _ => Err(OidParseError(s.to_string())),
        }
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for a in &self.0 {
            if !first {
                f.write_str(".")?;
            }
            first = false;
            write!(f, "{a}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Oid({self})")
    }
}

/// `oid!("1.3.6.1")`-style constant helper for tables of OIDs.
pub fn oid(s: &str) -> Oid {
    s.parse().expect("static OID literal")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_order_not_byte_order() {
        // BER encodes 16383 as ff 7f and 16384 as 81 80 00: byte order would invert these.
        let a: Oid = "1.3.6.16383".parse().unwrap();
        let b: Oid = "1.3.6.16384".parse().unwrap();
        assert!(a < b);
        assert!("1.3.6.1".parse::<Oid>().unwrap() < "1.3.6.1.0".parse::<Oid>().unwrap());
    }

    #[test]
    fn parse_and_display() {
        let o: Oid = ".1.3.6.1.2.1.1.5.0".parse().unwrap();
        assert_eq!(o.to_string(), "1.3.6.1.2.1.1.5.0");
        assert!("1.3.x".parse::<Oid>().is_err());
        assert!("7.1".parse::<Oid>().is_err());
        let round = Oid::from_snmp2(&o.to_snmp2()).unwrap();
        assert_eq!(round, o);
    }

    #[test]
    fn encoded_oids_match_snmp2_encoding() {
        let mut enc = EncodedOids::default();
        let oids =
            ["1.3.6.1.2.1.2.2.1.2", "1.3.6.1.2.1.31.1.1.1.18.16383", "1.3.6.1.4.1.4294967295.0.128.16384", "2.39.1"];
        for o in oids {
            enc.push(oid(o).arcs());
        }
        assert_eq!(enc.snmp2_oids().len(), oids.len());
        for (got, o) in enc.snmp2_oids().iter().zip(oids) {
            assert_eq!(got.as_bytes(), oid(o).to_snmp2().as_bytes(), "{o}");
            let mut arcs = Vec::new();
            assert!(Oid::arcs_from_snmp2(got, &mut arcs));
            assert_eq!(arcs, oid(o).0, "{o}");
        }
        enc.clear();
        assert!(enc.snmp2_oids().is_empty());
    }

    #[test]
    fn suffix_is_the_index() {
        let col = oid("1.3.6.1.2.1.2.2.1.2");
        let inst = oid("1.3.6.1.2.1.2.2.1.2.17");
        assert_eq!(inst.suffix(&col), Some(&[17u32][..]));
        assert_eq!(col.suffix(&inst), None);
    }
}
