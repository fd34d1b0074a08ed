//! Counter math: per-second rates from consecutive polls, on the agent's clock.
//!
//! Rules (RFC 2863 and long operational practice): the time base is sysUpTime, not our wall
//! clock; a Counter32 that went down wrapped once (unless more than one wrap fits in the
//! interval, then the sample is untrustworthy); a Counter64 that went down was reset; sysUpTime
//! going backwards or ifCounterDiscontinuityTime changing is a discontinuity. Every doubtful case
//! produces a gap (None), never a spike.

use crate::ifmib::{COUNTER_KINDS, Counter, CounterKind, InterfaceRow};
use std::collections::HashMap;

/// Why a rate is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gap {
    FirstSample,
    AgentRestarted,
    Discontinuity,
    CounterMissing,
    /// Counter width changed between polls (agent switched HC on or off).
    WidthChanged,
    /// A 64-bit counter went backwards: reset without a discontinuity marker.
    CounterReset,
    /// A Counter32 could have wrapped more than once in the interval.
    AmbiguousWrap,
    /// The delta implies more than the interface speed.
    ExceedsSpeed,
    NoTimeElapsed,
}

/// What the poller keeps between polls of one device.
#[derive(Debug, Clone, Default)]
pub struct CounterState {
    uptime_ticks: u32,
    interfaces: HashMap<String, InterfaceCounters>,
}

#[derive(Debug, Clone)]
struct InterfaceCounters {
    if_index: u32,
    discontinuity_ticks: Option<u32>,
    counters: [Option<Counter>; COUNTER_KINDS],
}

/// Rates per second for one interface; `None` is a gap.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InterfaceRates {
    pub in_bps: Option<f64>,
    pub out_bps: Option<f64>,
    pub in_pps: Option<f64>,
    pub out_pps: Option<f64>,
    pub in_errors: Option<f64>,
    pub out_errors: Option<f64>,
    pub in_discards: Option<f64>,
    pub out_discards: Option<f64>,
}

/// Tally of gaps for the poll record and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GapCounts {
    pub first_sample: u32,
    pub restarted: u32,
    pub discontinuity: u32,
    pub over_speed: u32,
    pub other: u32,
    /// Interfaces whose ifIndex changed since the last poll (tracked by name).
    pub renumbered: u32,
}

impl GapCounts {
    fn add(&mut self, g: Gap) {
        match g {
            Gap::FirstSample => self.first_sample += 1,
            Gap::AgentRestarted => self.restarted += 1,
            Gap::Discontinuity => self.discontinuity += 1,
            Gap::ExceedsSpeed => self.over_speed += 1,
            _ => self.other += 1,
        }
    }
}

/// Tolerance over nominal speed before a delta is called impossible (agents' clocks and
/// counter sampling are not simultaneous).
const SPEED_TOLERANCE: f64 = 1.10;

/// Seconds of agent time between two sysUpTime readings, if it moved forward. sysUpTime wraps
/// after 497 days; a wrap is told apart from a restart by the wall clock agreeing with it.
pub fn agent_seconds(prev_ticks: u32, cur_ticks: u32, wall_seconds: f64) -> Result<f64, Gap> {
    if cur_ticks > prev_ticks {
        return Ok(f64::from(cur_ticks - prev_ticks) / 100.0);
    }
    if cur_ticks == prev_ticks {
        return Err(Gap::NoTimeElapsed);
    }
    let wrapped = cur_ticks.wrapping_sub(prev_ticks);
    let wrapped_s = f64::from(wrapped) / 100.0;
    // Accept a wrap only when the wall clock says about that much time passed.
    if wall_seconds > 0.0 && (wrapped_s - wall_seconds).abs() <= wall_seconds.max(1.0) * 0.5 {
        Ok(wrapped_s)
    } else {
        Err(Gap::AgentRestarted)
    }
}

/// Counter delta with wrap handling. `max_per_second` (octets/s from the interface speed) lets
/// us tell one Counter32 wrap from several.
pub fn delta(prev: Counter, cur: Counter, seconds: f64, max_per_second: Option<f64>) -> Result<u64, Gap> {
    if prev.bits != cur.bits {
        return Err(Gap::WidthChanged);
    }
    if cur.value >= prev.value {
        return Ok(cur.value - prev.value);
    }
    if cur.bits == 64 {
        return Err(Gap::CounterReset);
    }
    let d = (1u64 << 32) - prev.value + cur.value;
    if let Some(max) = max_per_second {
        // If the link could move 2^32 in the interval, one wrap is not a safe assumption.
        if max * seconds >= (1u64 << 32) as f64 {
            return Err(Gap::AmbiguousWrap);
        }
    }
    Ok(d)
}

impl CounterState {
    /// Computes rates for this poll's rows and replaces the state with them.
    /// `wall_seconds` is our clock's interval, used only to recognise a sysUpTime wrap.
    pub fn update(
        &mut self,
        uptime_ticks: u32,
        wall_seconds: f64,
        rows: &[InterfaceRow],
    ) -> (Vec<InterfaceRates>, GapCounts) {
        let mut gaps = GapCounts::default();
        let first = self.interfaces.is_empty() && self.uptime_ticks == 0;
        let seconds =
            if first { Err(Gap::FirstSample) } else { agent_seconds(self.uptime_ticks, uptime_ticks, wall_seconds) };
        let mut next: HashMap<String, InterfaceCounters> = HashMap::with_capacity(rows.len());
        let mut out = Vec::with_capacity(rows.len());
        for (row, key) in rows.iter().zip(crate::ifmib::tracking_keys(rows)) {
            let prev = self.interfaces.get(&key);
            if let Some(p) = prev
                && p.if_index != row.if_index
            {
                gaps.renumbered += 1;
            }
            let rates = match (seconds, prev) {
                (Err(g), _) => {
                    gaps.add(g);
                    InterfaceRates::default()
                }
                (Ok(_), None) => {
                    gaps.add(Gap::FirstSample);
                    InterfaceRates::default()
                }
                (Ok(_), Some(p))
                    if p.discontinuity_ticks != row.discontinuity_ticks && p.discontinuity_ticks.is_some() =>
                {
                    gaps.add(Gap::Discontinuity);
                    InterfaceRates::default()
                }
                (Ok(s), Some(p)) => interface_rates(p, row, s, &mut gaps),
            };
            out.push(rates);
            next.insert(
                key,
                InterfaceCounters {
                    if_index: row.if_index,
                    discontinuity_ticks: row.discontinuity_ticks,
                    counters: row.counters,
                },
            );
        }
        self.uptime_ticks = uptime_ticks;
        self.interfaces = next;
        (out, gaps)
    }
}

fn interface_rates(prev: &InterfaceCounters, row: &InterfaceRow, seconds: f64, gaps: &mut GapCounts) -> InterfaceRates {
    use CounterKind as K;
    let octets_max = row.speed_bps.filter(|&s| s > 0).map(|s| s as f64 / 8.0);
    let rate = |k: K, cap: Option<f64>, gaps: &mut GapCounts| -> Option<f64> {
        let (Some(p), Some(c)) = (prev.counters[k as usize], row.counters[k as usize]) else {
            return None;
        };
        match delta(p, c, seconds, cap) {
            Ok(d) => {
                let r = d as f64 / seconds;
                if let Some(max) = cap
                    && r > max * SPEED_TOLERANCE
                {
                    gaps.add(Gap::ExceedsSpeed);
                    return None;
                }
                Some(r)
            }
            Err(g) => {
                gaps.add(g);
                None
            }
        }
    };
    let in_bps = rate(K::InOctets, octets_max, gaps).map(|r| r * 8.0);
    let out_bps = rate(K::OutOctets, octets_max, gaps).map(|r| r * 8.0);
    let sum = |parts: [Option<f64>; 3]| -> Option<f64> {
        // Unicast is required; multicast/broadcast add when the agent has them.
        parts[0].map(|u| u + parts[1].unwrap_or(0.0) + parts[2].unwrap_or(0.0))
    };
    InterfaceRates {
        in_bps,
        out_bps,
        in_pps: sum([rate(K::InUcast, None, gaps), rate(K::InMulticast, None, gaps), rate(K::InBroadcast, None, gaps)]),
        out_pps: sum([
            rate(K::OutUcast, None, gaps),
            rate(K::OutMulticast, None, gaps),
            rate(K::OutBroadcast, None, gaps),
        ]),
        in_errors: rate(K::InErrors, None, gaps),
        out_errors: rate(K::OutErrors, None, gaps),
        in_discards: rate(K::InDiscards, None, gaps),
        out_discards: rate(K::OutDiscards, None, gaps),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c32(v: u64) -> Counter {
        Counter { value: v, bits: 32 }
    }
    fn c64(v: u64) -> Counter {
        Counter { value: v, bits: 64 }
    }

    fn row(name: &str, idx: u32, in_oct: Option<Counter>, speed: u64) -> InterfaceRow {
        let mut r =
            InterfaceRow { if_index: idx, name: Some(name.into()), speed_bps: Some(speed), ..Default::default() };
        r.counters[CounterKind::InOctets as usize] = in_oct;
        r
    }

    #[test]
    fn counter32_wrap_counts_once() {
        let d = delta(c32(u32::MAX as u64 - 99), c32(100), 60.0, Some(1e6)).unwrap();
        assert_eq!(d, 200);
    }

    #[test]
    fn counter32_wrap_is_ambiguous_on_a_fast_link() {
        // 10 Gb/s moves 2^32 octets in 3.4 s: after 60 s, one wrap is a guess.
        assert_eq!(delta(c32(1000), c32(10), 60.0, Some(10e9 / 8.0)), Err(Gap::AmbiguousWrap));
    }

    #[test]
    fn counter64_going_back_is_a_reset() {
        assert_eq!(delta(c64(5_000), c64(10), 60.0, None), Err(Gap::CounterReset));
        assert_eq!(delta(c64(10), c32(20), 60.0, None), Err(Gap::WidthChanged));
    }

    #[test]
    fn rate_uses_agent_time_not_wall_time() {
        let mut st = CounterState::default();
        let (r, g) = st.update(1000, 0.0, &[row("eth0", 1, Some(c64(0)), 1_000_000_000)]);
        assert_eq!(r[0].in_bps, None);
        assert_eq!(g.first_sample, 1);
        // 10 s on the agent (1000 ticks), although our poll came 13 s later.
        let (r, g) = st.update(2000, 13.0, &[row("eth0", 1, Some(c64(1_250_000)), 1_000_000_000)]);
        assert_eq!(r[0].in_bps, Some(1_000_000.0));
        assert_eq!(g, GapCounts::default());
    }

    #[test]
    fn agent_restart_is_a_gap_not_a_spike() {
        let mut st = CounterState::default();
        st.update(500_000, 0.0, &[row("eth0", 1, Some(c32(4_000_000_000)), 1_000_000_000)]);
        let (r, g) = st.update(300, 60.0, &[row("eth0", 1, Some(c32(1_000)), 1_000_000_000)]);
        assert_eq!(r[0].in_bps, None);
        assert_eq!(g.restarted, 1);
        // and the poll after that has a rate again
        let (r, _) = st.update(6300, 60.0, &[row("eth0", 1, Some(c32(61_000)), 1_000_000_000)]);
        assert_eq!(r[0].in_bps, Some(8_000.0));
    }

    #[test]
    fn sysuptime_wrap_is_not_a_restart() {
        let prev = u32::MAX - 2_999; // 30 s before the wrap
        assert_eq!(agent_seconds(prev, 3_000, 60.0), Ok(60.0));
        assert_eq!(agent_seconds(prev, 3_000, 5_000.0), Err(Gap::AgentRestarted));
    }

    #[test]
    fn discontinuity_time_change_gives_a_gap() {
        let mut st = CounterState::default();
        let mut a = row("eth0", 1, Some(c64(0)), 1_000_000_000);
        a.discontinuity_ticks = Some(10);
        st.update(1000, 0.0, &[a.clone()]);
        let mut b = row("eth0", 1, Some(c64(1000)), 1_000_000_000);
        b.discontinuity_ticks = Some(1500);
        let (r, g) = st.update(2000, 10.0, &[b]);
        assert_eq!(r[0].in_bps, None);
        assert_eq!(g.discontinuity, 1);
    }

    #[test]
    fn delta_above_speed_is_dropped_and_counted() {
        let mut st = CounterState::default();
        st.update(1000, 0.0, &[row("eth0", 1, Some(c64(0)), 10_000_000)]);
        // 10 Mb/s link, 10 s: at most 12.5 MB; 1 GB is impossible.
        let (r, g) = st.update(2000, 10.0, &[row("eth0", 1, Some(c64(1_000_000_000)), 10_000_000)]);
        assert_eq!(r[0].in_bps, None);
        assert_eq!(g.over_speed, 1);
    }

    #[test]
    fn missing_hc_counters_fall_back_to_32_bit() {
        let mut st = CounterState::default();
        st.update(1000, 0.0, &[row("eth0", 1, Some(c32(100)), 100_000_000)]);
        let (r, _) = st.update(2000, 10.0, &[row("eth0", 1, Some(c32(1100)), 100_000_000)]);
        assert_eq!(r[0].in_bps, Some(800.0));
        let (r, _) = st.update(3000, 10.0, &[row("eth0", 1, None, 100_000_000)]);
        assert_eq!(r[0].in_bps, None);
    }

    #[test]
    fn interfaces_are_tracked_by_name_across_renumbering() {
        let mut st = CounterState::default();
        st.update(
            1000,
            0.0,
            &[row("eth0", 1, Some(c64(0)), 1_000_000_000), row("eth1", 2, Some(c64(0)), 1_000_000_000)],
        );
        // eth0 and eth1 swapped ifIndex: rates stay with the names.
        let (r, g) = st.update(
            2000,
            10.0,
            &[row("eth1", 1, Some(c64(2_000)), 1_000_000_000), row("eth0", 2, Some(c64(1_000)), 1_000_000_000)],
        );
        assert_eq!(r[0].in_bps, Some(1_600.0));
        assert_eq!(r[1].in_bps, Some(800.0));
        assert_eq!(g.renumbered, 2);
    }
}
