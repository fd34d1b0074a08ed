//! Which live instance should poll a device: rendezvous (highest-random-weight) hashing.
//!
//! Every instance computes the same answer from the same list of live instances, without talking
//! to the others. When an instance joins or leaves, only the devices it wins or held move (about
//! 1/N of them); every other device keeps its owner, so a membership change costs few handovers.

/// FNV-1a: stable across processes and Rust releases (std's hasher promises neither).
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// splitmix64's finaliser: spreads FNV's weak low bits over the whole word.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn weight(instance_hash: u64, device: i64) -> u64 {
    mix(instance_hash ^ mix(device as u64))
}

/// The live instances, hashed once for many devices.
#[derive(Debug, Clone)]
pub struct Members<'a> {
    hashed: Vec<(u64, &'a str)>,
}

impl<'a> Members<'a> {
    pub fn new(live: &'a [String]) -> Members<'a> {
        Members { hashed: live.iter().map(|n| (fnv1a(n.as_bytes()), n.as_str())).collect() }
    }

    /// The instance that should poll `device`; None without live instances. Ties (astronomically
    /// rare) go to the greater name, so the answer never depends on the order of the list.
    pub fn owner_of(&self, device: i64) -> Option<&'a str> {
        self.hashed.iter().max_by_key(|(h, name)| (weight(*h, device), *name)).map(|(_, name)| *name)
    }

    /// Of `devices`, those `me` should poll.
    pub fn assigned_to(&self, me: &str, devices: impl IntoIterator<Item = i64>) -> Vec<i64> {
        devices.into_iter().filter(|&d| self.owner_of(d) == Some(me)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    fn owners(live: &[String], devices: std::ops::Range<i64>) -> HashMap<i64, String> {
        let m = Members::new(live);
        devices.map(|d| (d, m.owner_of(d).expect("an owner").to_string())).collect()
    }

    fn counts(owners: &HashMap<i64, String>) -> HashMap<&str, usize> {
        let mut c = HashMap::new();
        for o in owners.values() {
            *c.entry(o.as_str()).or_default() += 1;
        }
        c
    }

    /// Instance names as the default identity makes them: host, pid, random suffix.
    const THREE: [&str; 3] = ["nms1-4711-3fa9c2", "nms1-4712-b7e410", "nms2-902-0c55d1"];

    #[test]
    fn one_owner_per_device_whatever_the_order_of_the_list() {
        let live = names(&THREE);
        let mut reversed = live.clone();
        reversed.reverse();
        assert_eq!(owners(&live, 1..1001), owners(&reversed, 1..1001));
        assert_eq!(Members::new(&[]).owner_of(1), None);
        let m = Members::new(&live);
        let split: usize = THREE.iter().map(|me| m.assigned_to(me, 1..1001).len()).sum();
        assert_eq!(split, 1000, "every device assigned exactly once");
    }

    #[test]
    fn a_thousand_devices_balance_over_three_instances() {
        let split = owners(&names(&THREE), 1..1001);
        let c = counts(&split);
        assert_eq!(c.len(), 3, "{c:?}");
        // A fair share is 333; binomial spread is about 15, so 15 % either way is over 3 sigma.
        assert!(c.values().all(|&n| (283..=383).contains(&n)), "{c:?}");
    }

    #[test]
    fn an_instance_leaving_moves_only_its_own_devices() {
        let before = owners(&names(&THREE), 1..1001);
        let after = owners(&names(&THREE[..2]), 1..1001);
        let moved: Vec<i64> = (1..1001).filter(|d| before[d] != after[d]).collect();
        assert!(moved.iter().all(|d| before[d] == THREE[2]), "only the leaver's devices move");
        assert_eq!(moved.len(), counts(&before)[THREE[2]], "all of the leaver's devices move");
        // ... and they spread over both survivors, not onto one.
        let to_first = moved.iter().filter(|d| after[d] == THREE[0]).count();
        assert!(to_first * 4 > moved.len() && to_first * 4 < moved.len() * 3, "{to_first} of {}", moved.len());
    }

    #[test]
    fn an_instance_joining_takes_about_a_quarter_and_only_from_others() {
        let before = owners(&names(&THREE), 1..1001);
        let mut four = names(&THREE);
        four.push("nms3-77-aa01f3".into());
        let after = owners(&four, 1..1001);
        let moved: Vec<i64> = (1..1001).filter(|d| before[d] != after[d]).collect();
        assert!(moved.iter().all(|d| after[d] == "nms3-77-aa01f3"), "devices only move to the newcomer");
        assert!((200..=300).contains(&moved.len()), "about 1000/4 move: {}", moved.len());
    }
}
