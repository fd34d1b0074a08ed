//! A simulated device's MIB: an ordered OID → value store with GET / GETNEXT / GETBULK semantics.
//!
//! Values are evaluated at request time, so counters advance and sysUpTime ticks without any
//! background task: a [`MibValue::Counter`] is `base + rate × time since the device started`,
//! wrapped to its width. Time is tokio's clock, so `tokio::time::pause()` makes it deterministic.
//! Builders (system group, IF-MIB, later BGP/OSPF/LLDP) only insert entries; the store knows
//! nothing about which MIB module an OID belongs to.

use crate::snmp::{Oid, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::ops::Bound;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// A value computed from the time since the device (re)started.
pub type DynamicFn = Arc<dyn Fn(Duration) -> Value + Send + Sync>;

/// One MIB entry's value: fixed, or computed when asked for.
#[derive(Clone)]
pub enum MibValue {
    Static(Value),
    /// A counter that advances by `rate_per_s` from `base`; `bits` is 32 (Counter32) or 64
    /// (Counter64). Wraps like the real thing.
    Counter {
        base: u64,
        rate_per_s: u64,
        bits: u8,
    },
    /// sysUpTime: hundredths of a second since the device started (TimeTicks, wrapping).
    UpTime,
    /// Whole seconds since an event at `since` after the device started, as Gauge32
    /// (bgpPeerFsmEstablishedTime); 0 before it.
    SecondsSince(Duration),
    /// Anything else that depends on time (a traffic model, a state that flaps...).
    Dynamic(DynamicFn),
}

impl MibValue {
    pub fn counter32(base: u64, rate_per_s: u64) -> MibValue {
        MibValue::Counter { base, rate_per_s, bits: 32 }
    }

    pub fn counter64(base: u64, rate_per_s: u64) -> MibValue {
        MibValue::Counter { base, rate_per_s, bits: 64 }
    }

    pub fn dynamic(f: impl Fn(Duration) -> Value + Send + Sync + 'static) -> MibValue {
        MibValue::Dynamic(Arc::new(f))
    }

    /// The value at `uptime` after the device started.
    pub fn eval(&self, uptime: Duration) -> Value {
        match self {
            MibValue::Static(v) => v.clone(),
            MibValue::Counter { base, rate_per_s, bits } => {
                let v = base.wrapping_add(advance(*rate_per_s, uptime));
                if *bits == 32 { Value::Counter32(v as u32) } else { Value::Counter64(v) }
            }
            MibValue::UpTime => Value::TimeTicks((uptime.as_millis() / 10) as u32),
            MibValue::SecondsSince(since) => {
                Value::Gauge32(u32::try_from(uptime.saturating_sub(*since).as_secs()).unwrap_or(u32::MAX))
            }
            MibValue::Dynamic(f) => f(uptime),
        }
    }

    /// A counter keeps its value at `uptime` and advances at `rate_per_s` from then on (a port
    /// going down stops its counters; coming back up restarts them). Not a counter: unchanged.
    pub fn set_rate(&mut self, rate_per_s: u64, uptime: Duration) {
        if let MibValue::Counter { base, rate_per_s: rate, .. } = self {
            let now = base.wrapping_add(advance(*rate, uptime));
            *base = now.wrapping_sub(advance(rate_per_s, uptime));
            *rate = rate_per_s;
        }
    }

    /// A counter jumps to just below its wrap point, so that it wraps about `secs` seconds after
    /// `uptime` at its current rate (a zero-rate counter sits at its maximum). Not a counter:
    /// unchanged.
    pub fn wrap_in(&mut self, secs: u64, uptime: Duration) {
        if let MibValue::Counter { base, rate_per_s, bits } = self {
            let before_wrap = rate_per_s.saturating_mul(secs).max(1);
            // A Counter32 faster than 2^31 per `secs` would wrap more than once: start half-way.
            let before_wrap = if *bits == 32 { before_wrap.min(1 << 31) } else { before_wrap };
            // 2^bits - before_wrap, modulo 2^64 (2^64 itself is 0).
            let target = if *bits == 32 { (1u64 << 32).wrapping_sub(before_wrap) } else { before_wrap.wrapping_neg() };
            *base = target.wrapping_sub(advance(*rate_per_s, uptime));
        }
    }
}

/// How far a counter at `rate_per_s` has advanced after `uptime`, modulo 2^64.
fn advance(rate_per_s: u64, uptime: Duration) -> u64 {
    // u128: rate × milliseconds overflows u64 after a few days at 100 Gbit/s.
    (u128::from(rate_per_s) * uptime.as_millis() / 1000) as u64
}

impl From<Value> for MibValue {
    fn from(v: Value) -> Self {
        MibValue::Static(v)
    }
}

impl fmt::Debug for MibValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MibValue::Static(v) => write!(f, "{v:?}"),
            MibValue::Counter { base, rate_per_s, bits } => {
                write!(f, "Counter{bits}(base {base}, {rate_per_s}/s)")
            }
            MibValue::UpTime => f.write_str("UpTime"),
            MibValue::SecondsSince(t) => write!(f, "SecondsSince({t:?})"),
            MibValue::Dynamic(_) => f.write_str("Dynamic"),
        }
    }
}

/// GETBULK parameters as they came in the request (RFC 3416 §4.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkParams {
    pub non_repeaters: u32,
    pub max_repetitions: u32,
}

/// One device's MIB view: sorted OIDs with their values, found by binary search.
///
/// Two layers. The template layer's OID list sits behind an `Arc`, so devices cloned from one
/// template (a fabric of identical 48-port switches) share it and each holds only its values.
/// OIDs a device adds on top (its BGP peers, OSPF neighbours, LLDP neighbours: indexed by
/// addresses, so different on every device) go to its own layer, an ordered map that also
/// takes rows being added and removed as faults come and go. [`Mib::freeze`] turns the own
/// layer into the template layer, which is how templates are made.
#[derive(Debug, Clone)]
pub struct Mib {
    keys: Arc<Vec<Oid>>,
    values: Vec<MibValue>,
    own: BTreeMap<Oid, MibValue>,
    started: Instant,
}

impl Default for Mib {
    fn default() -> Self {
        Mib::new()
    }
}

impl Mib {
    /// An empty MIB whose clock (sysUpTime, counters) starts now.
    pub fn new() -> Mib {
        Mib { keys: Arc::new(Vec::new()), values: Vec::new(), own: BTreeMap::new(), started: Instant::now() }
    }

    /// Sets `oid`'s value, adding the OID to the device's own layer if it is new.
    pub fn insert(&mut self, oid: Oid, value: impl Into<MibValue>) {
        match self.keys.binary_search(&oid) {
            Ok(i) => self.values[i] = value.into(),
            Err(_) => {
                self.own.insert(oid, value.into());
            }
        }
    }

    /// Removes `oid`. Removing a template OID copies the template's OID list for this device.
    pub fn remove(&mut self, oid: &Oid) -> Option<MibValue> {
        if let Some(v) = self.own.remove(oid) {
            return Some(v);
        }
        let i = self.keys.binary_search(oid).ok()?;
        Arc::make_mut(&mut self.keys).remove(i);
        Some(self.values.remove(i))
    }

    /// Removes every entry of the own layer under `prefix` (a table row's cells are removed
    /// column by column by the caller; this is for whole subtrees).
    pub fn remove_own_subtree(&mut self, prefix: &Oid) -> usize {
        let doomed: Vec<Oid> = self
            .own
            .range::<Oid, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, _)| k.clone())
            .collect();
        for k in &doomed {
            self.own.remove(k);
        }
        doomed.len()
    }

    /// Moves the own layer into the template layer: the OID list clones of this MIB share.
    /// Done once per template; cost O(n log n).
    pub fn freeze(&mut self) {
        if self.own.is_empty() {
            return;
        }
        let own = std::mem::take(&mut self.own);
        let mut entries: Vec<(Oid, MibValue)> =
            self.keys.iter().cloned().zip(std::mem::take(&mut self.values)).chain(own).collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        let (keys, values): (Vec<Oid>, Vec<MibValue>) = entries.into_iter().unzip();
        self.keys = Arc::new(keys);
        self.values = values;
    }

    /// The value stored for `oid` (not evaluated).
    pub fn entry(&self, oid: &Oid) -> Option<&MibValue> {
        match self.keys.binary_search(oid) {
            Ok(i) => Some(&self.values[i]),
            Err(_) => self.own.get(oid),
        }
    }

    /// The value stored for `oid`, to change in place.
    pub fn entry_mut(&mut self, oid: &Oid) -> Option<&mut MibValue> {
        match self.keys.binary_search(oid) {
            Ok(i) => Some(&mut self.values[i]),
            Err(_) => self.own.get_mut(oid),
        }
    }

    pub fn len(&self) -> usize {
        self.keys.len() + self.own.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty() && self.own.is_empty()
    }

    /// Entries in the device's own layer (not shared with a template).
    pub fn own_len(&self) -> usize {
        self.own.len()
    }

    pub fn started(&self) -> Instant {
        self.started
    }

    /// Restarts the device's clock: sysUpTime and counters start again from their bases, as
    /// after a reboot.
    pub fn restart(&mut self) {
        self.started = Instant::now();
    }

    /// Time since the device started, as of `now`.
    pub fn uptime(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.started)
    }

    /// Index of the first template OID strictly after `oid`.
    fn after(&self, oid: &Oid) -> usize {
        match self.keys.binary_search(oid) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }

    /// The first entry of either layer strictly after `oid`, unevaluated.
    fn next_entry(&self, oid: &Oid) -> Option<(&Oid, &MibValue)> {
        let i = self.after(oid);
        let template = self.keys.get(i).map(|k| (k, &self.values[i]));
        let own = self.own.range::<Oid, _>((Bound::Excluded(oid), Bound::Unbounded)).next();
        match (template, own) {
            (Some(t), Some(o)) => Some(if t.0 < o.0 { t } else { o }),
            (t, o) => t.or(o),
        }
    }

    /// The entry's value at `now`, or `NoSuchInstance` when its object has other instances
    /// (net-snmp's answer to `sysName.1`), else `NoSuchObject` (RFC 3416 GET semantics).
    pub fn get(&self, oid: &Oid, now: Instant) -> Value {
        match self.entry(oid) {
            Some(v) => v.eval(self.uptime(now)),
            None if self.has_object_under(oid) => Value::NoSuchInstance,
            None => Value::NoSuchObject,
        }
    }

    /// Whether `oid`'s parent (the object, for a scalar `x.0` or a column instance) has entries.
    fn has_object_under(&self, oid: &Oid) -> bool {
        let Some((_, parent)) = oid.arcs().split_last() else { return false };
        if parent.len() < 2 {
            return false;
        }
        let parent = Oid(parent.to_vec());
        self.next_entry(&parent).is_some_and(|(k, _)| k.starts_with(&parent))
    }

    /// The first entry strictly after `oid` in lexicographic order, or `EndOfMibView` (with the
    /// requested OID, as agents answer).
    pub fn get_next(&self, oid: &Oid, now: Instant) -> (Oid, Value) {
        match self.next_entry(oid) {
            Some((k, v)) => (k.clone(), v.eval(self.uptime(now))),
            None => (oid.clone(), Value::EndOfMibView),
        }
    }

    /// GETBULK: GETNEXT of the first `non_repeaters` OIDs, then up to `max_repetitions` rows of
    /// GETNEXT over the rest, each row continuing from the previous one. Stops early when every
    /// repeater has reached the end of the MIB (as net-snmp does) or after `max_varbinds`.
    pub fn get_bulk(&self, oids: &[Oid], params: BulkParams, max_varbinds: usize, now: Instant) -> Vec<(Oid, Value)> {
        bulk(oids, params, max_varbinds, |oid| self.get_next(oid, now))
    }

    /// Every entry with its value at `now`, in order (what a full walk would return).
    pub fn snapshot(&self, now: Instant) -> Vec<(Oid, Value)> {
        self.subtree(&Oid(Vec::new()), now)
    }

    /// Entries under `prefix`, in order, evaluated at `now`.
    pub fn subtree(&self, prefix: &Oid, now: Instant) -> Vec<(Oid, Value)> {
        let up = self.uptime(now);
        let start = self.keys.partition_point(|k| k < prefix);
        let mut template = self.keys[start..].iter().zip(&self.values[start..]).peekable();
        let mut own = self.own.range::<Oid, _>((Bound::Included(prefix), Bound::Unbounded)).peekable();
        let mut out = Vec::new();
        loop {
            let take_template = match (template.peek(), own.peek()) {
                (Some(t), Some(o)) => t.0 < o.0,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (None, None) => break,
            };
            let (k, v) = if take_template { template.next() } else { own.next() }.expect("peeked");
            if !k.starts_with(prefix) {
                break;
            }
            out.push((k.clone(), v.eval(up)));
        }
        out
    }

    /// Whether `self` and `other` share one template OID list (devices cloned from one template).
    pub fn shares_oids_with(&self, other: &Mib) -> bool {
        Arc::ptr_eq(&self.keys, &other.keys)
    }
}

/// GETBULK over any GETNEXT (the agent's fault modes answer with a distorted one).
pub fn bulk(
    oids: &[Oid],
    params: BulkParams,
    max_varbinds: usize,
    mut get_next: impl FnMut(&Oid) -> (Oid, Value),
) -> Vec<(Oid, Value)> {
    let n = (params.non_repeaters as usize).min(oids.len());
    let (non_rep, rep) = oids.split_at(n);
    // max-repetitions comes off the wire: never size an allocation by it alone.
    let wanted = n.saturating_add(rep.len().saturating_mul(params.max_repetitions as usize));
    let mut out = Vec::with_capacity(wanted.min(max_varbinds).min(1024));
    for oid in non_rep {
        if out.len() >= max_varbinds {
            return out;
        }
        out.push(get_next(oid));
    }
    let mut cursors: Vec<Oid> = rep.to_vec();
    for _ in 0..params.max_repetitions {
        if cursors.is_empty() {
            break;
        }
        let mut all_ended = true;
        for c in &mut cursors {
            if out.len() >= max_varbinds {
                return out;
            }
            let (oid, value) = get_next(c);
            if value != Value::EndOfMibView {
                all_ended = false;
            }
            c.clone_from(&oid);
            out.push((oid, value));
        }
        if all_ended {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    fn oid(s: &str) -> Oid {
        s.parse().expect("test OID")
    }

    fn mib() -> Mib {
        let mut m = Mib::new();
        m.insert(oid("1.3.6.1.2.1.1.1.0"), Value::OctetString(b"descr".to_vec()));
        m.insert(oid("1.3.6.1.2.1.1.3.0"), MibValue::UpTime);
        m.insert(oid("1.3.6.1.2.1.1.5.0"), Value::OctetString(b"dev1".to_vec()));
        for i in 1..=3u32 {
            m.insert(oid("1.3.6.1.2.1.2.2.1.2").child(&[i]), Value::OctetString(format!("eth{i}").into_bytes()));
            m.insert(oid("1.3.6.1.2.1.2.2.1.10").child(&[i]), MibValue::counter32(u64::from(u32::MAX) - 5, 10));
        }
        m
    }

    #[test]
    fn get_and_exceptions() {
        let m = mib();
        let now = m.started();
        assert_eq!(m.get(&oid("1.3.6.1.2.1.1.5.0"), now), Value::OctetString(b"dev1".to_vec()));
        assert_eq!(m.get(&oid("1.3.6.1.2.1.1.5.1"), now), Value::NoSuchInstance);
        assert_eq!(m.get(&oid("1.3.6.1.2.1.1.99.0"), now), Value::NoSuchObject);
        assert_eq!(m.get(&oid("1.3.6.1.2.1.1.3.0"), now + Duration::from_millis(1234)), Value::TimeTicks(123));
    }

    #[test]
    fn get_next_is_the_lexicographic_successor() {
        let m = mib();
        let now = m.started();
        assert_eq!(m.get_next(&oid("1.3.6.1.2.1.1"), now).0, oid("1.3.6.1.2.1.1.1.0"));
        assert_eq!(m.get_next(&oid("1.3.6.1.2.1.1.1.0"), now).0, oid("1.3.6.1.2.1.1.3.0"));
        // Numeric, not byte, order: .2.3 comes before .10.1.
        assert_eq!(m.get_next(&oid("1.3.6.1.2.1.2.2.1.2.3"), now).0, oid("1.3.6.1.2.1.2.2.1.10.1"));
        assert_eq!(
            m.get_next(&oid("1.3.6.1.2.1.2.2.1.10.3"), now),
            (oid("1.3.6.1.2.1.2.2.1.10.3"), Value::EndOfMibView)
        );
        assert_eq!(m.get_next(&oid("0.0"), now).0, oid("1.3.6.1.2.1.1.1.0"));
    }

    #[test]
    fn counters_advance_and_wrap() {
        let m = mib();
        let t0 = m.started();
        let c = oid("1.3.6.1.2.1.2.2.1.10.1");
        assert_eq!(m.get(&c, t0), Value::Counter32(u32::MAX - 5));
        assert_eq!(m.get(&c, t0 + Duration::from_millis(500)), Value::Counter32(u32::MAX));
        assert_eq!(m.get(&c, t0 + Duration::from_secs(1)), Value::Counter32(4));
        let c64 = MibValue::counter64(u64::MAX, 1);
        assert_eq!(c64.eval(Duration::from_secs(2)), Value::Counter64(1));
    }

    #[test]
    fn bulk_interleaves_rows_and_stops_at_the_end() {
        let m = mib();
        let now = m.started();
        let got = m.get_bulk(
            &[oid("1.3.6.1.2.1.1.3"), oid("1.3.6.1.2.1.2.2.1.2"), oid("1.3.6.1.2.1.2.2.1.10")],
            BulkParams { non_repeaters: 1, max_repetitions: 10 },
            1000,
            now,
        );
        let oids: Vec<String> = got.iter().map(|(o, v)| format!("{o}={}", v.type_name())).collect();
        assert_eq!(
            oids,
            [
                "1.3.6.1.2.1.1.3.0=Timeticks",
                "1.3.6.1.2.1.2.2.1.2.1=STRING",
                "1.3.6.1.2.1.2.2.1.10.1=Counter32",
                "1.3.6.1.2.1.2.2.1.2.2=STRING",
                "1.3.6.1.2.1.2.2.1.10.2=Counter32",
                "1.3.6.1.2.1.2.2.1.2.3=STRING",
                "1.3.6.1.2.1.2.2.1.10.3=Counter32",
                "1.3.6.1.2.1.2.2.1.10.1=Counter32",
                "1.3.6.1.2.1.2.2.1.10.3=endOfMibView",
                "1.3.6.1.2.1.2.2.1.10.2=Counter32",
                "1.3.6.1.2.1.2.2.1.10.3=endOfMibView",
                "1.3.6.1.2.1.2.2.1.10.3=Counter32",
                "1.3.6.1.2.1.2.2.1.10.3=endOfMibView",
                "1.3.6.1.2.1.2.2.1.10.3=endOfMibView",
                "1.3.6.1.2.1.2.2.1.10.3=endOfMibView",
            ]
        );
        let capped = m.get_bulk(&[oid("1.3")], BulkParams { non_repeaters: 0, max_repetitions: 100 }, 4, now);
        assert_eq!(capped.len(), 4);
        let no_reps = m.get_bulk(&[oid("1.3")], BulkParams { non_repeaters: 5, max_repetitions: 0 }, 100, now);
        assert_eq!(no_reps.len(), 1);
    }
}
