//! BGP sessions: the typed record, and merging what each OID map found about a peer into it.

use super::oidmap::{OidMap, apply_map};
use super::{Varbinds, issue, want_ipv4, want_u32};
use crate::ifmib::DecodeIssue;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

/// bgpLocalAs and bgpIdentifier (BGP4-MIB scalars, walked to their `.0` instance).
pub const BGP_LOCAL_AS: &str = "1.3.6.1.2.1.15.2";
pub const BGP_IDENTIFIER: &str = "1.3.6.1.2.1.15.4";
pub(crate) const SCALARS: [&str; 2] = [BGP_LOCAL_AS, BGP_IDENTIFIER];

/// The BGP FSM state (RFC 4271), as every BGP MIB numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BgpState {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
    /// A value outside 1..6 (reported as an issue too).
    Unknown(i64),
}

impl BgpState {
    pub fn from_mib(v: i64) -> BgpState {
        match v {
            1 => BgpState::Idle,
            2 => BgpState::Connect,
            3 => BgpState::Active,
            4 => BgpState::OpenSent,
            5 => BgpState::OpenConfirm,
            6 => BgpState::Established,
            other => BgpState::Unknown(other),
        }
    }
}

/// bgpPeerAdminStatus: stop(1)/start(2); the BGP4V2 drafts call them halted/running.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BgpAdminStatus {
    Stop,
    Start,
}

/// One BGP session (or one address family of it, when `afi_safi` is set).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct BgpPeer {
    pub peer_addr: IpAddr,
    pub remote_as: u32,
    pub local_addr: Option<IpAddr>,
    /// The peer's local AS where a MIB gives it per peer, else bgpLocalAs.
    pub local_as: Option<u32>,
    pub admin_status: Option<BgpAdminStatus>,
    pub state: BgpState,
    /// Seconds in Established (or since leaving it).
    pub established_time_s: Option<u32>,
    pub fsm_established_transitions: Option<u32>,
    pub in_updates: Option<u32>,
    pub out_updates: Option<u32>,
    /// Last NOTIFICATION (code, subcode); `None` when there was none (0, 0).
    pub last_error: Option<(u8, u8)>,
    /// `ipv4-unicast`, `ipv6-unicast`, `l2vpn-evpn`, `ipv4-vpn` ...; `None` for a session-wide record.
    pub afi_safi: Option<String>,
    pub prefixes_received: Option<u64>,
    pub prefixes_accepted: Option<u64>,
    /// Routing instance from the vendor MIB's index (1 = default); `None` when only BGP4-MIB knew the peer.
    pub instance: Option<u32>,
    /// The MIBs that described this peer, `+`-joined in precedence order (e.g. `BGP4-MIB+CISCO-BGP4-MIB`).
    pub source: String,
}

/// An address family as the MIBs index it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct FamilyKey {
    pub afi: u32,
    pub safi: u32,
}

impl FamilyKey {
    pub(crate) fn name(self) -> String {
        let afi = match self.afi {
            1 => "ipv4".to_string(),
            2 => "ipv6".to_string(),
            25 => "l2vpn".to_string(),
            n => format!("afi{n}"),
        };
        let safi = match self.safi {
            1 => "unicast".to_string(),
            2 => "multicast".to_string(),
            3 => "unicast-multicast".to_string(),
            4 => "labeled-unicast".to_string(),
            70 => "evpn".to_string(),
            128 => "vpn".to_string(),
            129 => "vpn-multicast".to_string(),
            133 => "flowspec".to_string(),
            n => format!("safi{n}"),
        };
        format!("{afi}-{safi}")
    }
}

#[derive(Debug, Default)]
pub(crate) struct FamilyDraft {
    pub received: Option<u64>,
    pub accepted: Option<u64>,
}

/// What the maps found about one peer so far; the first value found for a field stays.
#[derive(Debug, Default)]
pub(crate) struct PeerDraft {
    pub state: Option<BgpState>,
    pub admin_status: Option<BgpAdminStatus>,
    pub remote_as: Option<u32>,
    pub local_as: Option<u32>,
    pub local_addr: Option<IpAddr>,
    pub established_time_s: Option<u32>,
    pub fsm_established_transitions: Option<u32>,
    pub in_updates: Option<u32>,
    pub out_updates: Option<u32>,
    pub last_error: Option<(u8, u8)>,
    pub error_received: (Option<u8>, Option<u8>),
    pub error_sent: (Option<u8>, Option<u8>),
    pub families: BTreeMap<FamilyKey, FamilyDraft>,
    sources: Vec<String>,
    /// Whether some table's index carried the routing instance.
    instance_seen: bool,
    /// Where the peer was first seen, for issues about the peer as a whole.
    first_seen: (&'static str, Vec<u32>),
}

/// Peers by (routing instance, address). BGP4-MIB has no instance: its peers are instance 1, which is what the
/// BGP4V2 drafts tell single-instance implementations to use, so the MIBs agree on the default instance.
#[derive(Debug, Default)]
pub(crate) struct Peers {
    map: BTreeMap<(u32, IpAddr), PeerDraft>,
}

impl Peers {
    /// The draft of a peer, created on first sight. `instance` is `None` when the table's index has none.
    pub(crate) fn entry(
        &mut self,
        instance: Option<u32>,
        addr: IpAddr,
        source: &str,
        column: &'static str,
        index: &[u32],
    ) -> &mut PeerDraft {
        let d = self
            .map
            .entry((instance.unwrap_or(1), addr))
            .or_insert_with(|| PeerDraft { first_seen: (column, index.to_vec()), ..Default::default() });
        if !d.sources.iter().any(|s| s == source) {
            d.sources.push(source.to_string());
        }
        d.instance_seen |= instance.is_some();
        d
    }
}

/// Decodes BGP from the scalars and every map's tables. Returns the peers, bgpLocalAs, bgpIdentifier and issues.
pub fn decode_bgp(vbs: &Varbinds, maps: &[OidMap]) -> (Vec<BgpPeer>, Option<u32>, Option<Ipv4Addr>, Vec<DecodeIssue>) {
    let mut issues = Vec::new();
    let local_as = match vbs.scalar(BGP_LOCAL_AS).map(want_u32) {
        Some(Ok(a)) => Some(a).filter(|&a| a != 0),
        Some(Err(e)) => {
            issues.push(issue(BGP_LOCAL_AS, &[0], e));
            None
        }
        None => None,
    };
    let bgp_id = match vbs.scalar(BGP_IDENTIFIER).map(want_ipv4) {
        Some(Ok(id)) => Some(id).filter(|id| !id.is_unspecified()),
        Some(Err(e)) => {
            issues.push(issue(BGP_IDENTIFIER, &[0], e));
            None
        }
        None => None,
    };
    let mut peers = Peers::default();
    for map in maps {
        apply_map(map, vbs, &mut peers, &mut issues);
    }
    let mut out = Vec::new();
    for ((instance, addr), d) in peers.map {
        let (Some(state), Some(remote_as)) = (d.state, d.remote_as) else {
            let (col, index) = &d.first_seen;
            issues.push(issue(
                col,
                index,
                format!("peer {addr} has no state or remote AS in {}", d.sources.join(", ")),
            ));
            continue;
        };
        let pair = |(code, sub): (Option<u8>, Option<u8>)| code.map(|c| (c, sub.unwrap_or(0)));
        let last_error =
            [d.last_error, pair(d.error_received), pair(d.error_sent)].into_iter().flatten().find(|&e| e != (0, 0));
        let base = BgpPeer {
            peer_addr: addr,
            remote_as,
            local_addr: d.local_addr,
            local_as: d.local_as.or(local_as),
            admin_status: d.admin_status,
            state,
            established_time_s: d.established_time_s,
            fsm_established_transitions: d.fsm_established_transitions,
            in_updates: d.in_updates,
            out_updates: d.out_updates,
            last_error,
            afi_safi: None,
            prefixes_received: None,
            prefixes_accepted: None,
            instance: d.instance_seen.then_some(instance),
            source: d.sources.join("+"),
        };
        if d.families.is_empty() {
            out.push(base);
            continue;
        }
        for (key, fam) in d.families {
            out.push(BgpPeer {
                afi_safi: Some(key.name()),
                prefixes_received: fam.received,
                prefixes_accepted: fam.accepted,
                ..base.clone()
            });
        }
    }
    (out, local_as, bgp_id, issues)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::fixture;
    use crate::routing::oidmap::builtin_maps;

    fn peer<'a>(peers: &'a [BgpPeer], addr: &str, family: Option<&str>) -> &'a BgpPeer {
        let addr: IpAddr = addr.parse().unwrap();
        peers
            .iter()
            .find(|p| p.peer_addr == addr && p.afi_safi.as_deref() == family)
            .unwrap_or_else(|| panic!("no peer {addr} {family:?} in {peers:#?}"))
    }

    #[test]
    fn frr_bgp4_mib_from_the_lab() {
        let vbs = fixture::load("frr-spine1.walk");
        let (peers, local_as, id, issues) = decode_bgp(&vbs, builtin_maps());
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(local_as, Some(65001));
        assert_eq!(id, Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(peers.len(), 3);
        let p = peer(&peers, "10.0.11.1", None);
        assert_eq!(p.remote_as, 65011);
        assert_eq!(p.state, BgpState::Established);
        assert_eq!(p.admin_status, Some(BgpAdminStatus::Start));
        assert_eq!(p.local_addr, Some("10.0.11.0".parse().unwrap()));
        assert_eq!(p.local_as, Some(65001), "from bgpLocalAs");
        assert_eq!(p.last_error, None, "00 00 is no error");
        assert!(p.established_time_s.is_some() && p.fsm_established_transitions == Some(1));
        assert_eq!(p.source, "BGP4-MIB");
        assert_eq!(p.instance, None);
    }

    #[test]
    fn arista_adds_ipv6_peers_and_prefix_counts_to_bgp4_mib() {
        let vbs = fixture::load("arista-bgp4v2.snmprec");
        let (peers, local_as, _, issues) = decode_bgp(&vbs, builtin_maps());
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(local_as, Some(65000));
        let v4 = peer(&peers, "192.0.2.1", Some("ipv4-unicast"));
        assert_eq!(v4.source, "BGP4-MIB+ARISTA-BGP4V2-MIB");
        assert_eq!((v4.remote_as, v4.state), (65001, BgpState::Established));
        assert_eq!((v4.prefixes_received, v4.prefixes_accepted), (Some(120), Some(118)));
        assert_eq!(v4.in_updates, Some(42), "BGP4-MIB's value wins over the vendor's 43");
        assert_eq!(v4.instance, Some(1));
        let v6 = peer(&peers, "2001:db8::1", Some("ipv6-unicast"));
        assert_eq!(v6.source, "ARISTA-BGP4V2-MIB");
        assert_eq!((v6.remote_as, v6.state), (4_200_000_001, BgpState::Active));
        assert_eq!(v6.local_addr, Some("2001:db8::2".parse().unwrap()));
        assert_eq!(v6.local_as, Some(65000));
        assert_eq!(v6.last_error, Some((4, 0)), "hold timer expired, received");
        assert_eq!(v6.established_time_s, Some(30));
        assert_eq!((v6.prefixes_received, v6.prefixes_accepted), (Some(0), Some(0)));
        // The ipv4 peer also carries an ipv6-unicast family (6PE-style), as its own record.
        let fam = peer(&peers, "192.0.2.1", Some("ipv6-unicast"));
        assert_eq!(fam.prefixes_accepted, Some(7));
        assert_eq!(peers.len(), 3);
    }

    #[test]
    fn cisco_bgp4_mib_peer2_table() {
        let vbs = fixture::load("cisco-bgp4.snmprec");
        let (peers, _, _, issues) = decode_bgp(&vbs, builtin_maps());
        assert!(issues.is_empty(), "{issues:?}");
        let v6 = peer(&peers, "2001:db8:1::2", Some("ipv6-unicast"));
        assert_eq!(v6.source, "CISCO-BGP4-MIB");
        assert_eq!(
            (v6.remote_as, v6.state, v6.admin_status),
            (65100, BgpState::Established, Some(BgpAdminStatus::Start))
        );
        assert_eq!(v6.prefixes_accepted, Some(15));
        assert_eq!(v6.prefixes_received, None, "CISCO-BGP4-MIB has no received count");
        assert_eq!(v6.local_as, Some(65010));
        assert_eq!(v6.established_time_s, Some(86400));
        let v4 = peer(&peers, "10.1.1.2", Some("ipv4-unicast"));
        assert_eq!(v4.state, BgpState::Idle);
        assert_eq!(v4.admin_status, Some(BgpAdminStatus::Stop));
        assert_eq!(v4.last_error, Some((6, 2)), "cease / administrative shutdown");
        assert_eq!(v4.prefixes_accepted, Some(0));
        let vpn = peer(&peers, "10.1.1.2", Some("ipv4-vpn"));
        assert_eq!(vpn.prefixes_accepted, Some(3));
    }

    #[test]
    fn frr_bgp4v2_in_both_places_and_both_index_layouts() {
        for file in ["frr9-bgp4v2.walk", "frr9.1-bgp4v2.walk", "frr10-bgp4v2.walk"] {
            let vbs = fixture::load(file);
            let (peers, _, _, issues) = decode_bgp(&vbs, builtin_maps());
            assert!(issues.is_empty(), "{file}: {issues:?}");
            assert_eq!(peers.len(), 2, "{file}: {peers:#?}");
            let v6 = peer(&peers, "fd00:125::3", None);
            assert_eq!(v6.source, "BGP4V2-MIB", "{file}");
            assert_eq!((v6.remote_as, v6.local_as, v6.state), (65003, Some(65002), BgpState::Established), "{file}");
            assert_eq!(v6.local_addr, Some("fd00:125::2".parse().unwrap()), "{file}");
            assert_eq!(v6.established_time_s, Some(13380), "{file}");
            let v4 = peer(&peers, "10.125.0.2", None);
            assert_eq!(v4.state, BgpState::Idle, "{file}");
            assert_eq!(v4.last_error, Some((6, 4)), "{file}: sent cease/admin reset");
            assert_eq!(v4.local_addr, Some("10.125.0.1".parse().unwrap()), "{file}");
        }
    }

    #[test]
    fn a_bad_cell_is_reported_and_the_peer_survives() {
        let mut vbs = fixture::load("frr-spine1.walk");
        let state = crate::routing::oid("1.3.6.1.2.1.15.3.1.2.10.0.12.1");
        vbs.insert(state, crate::snmp::Value::Integer(9));
        let inu = crate::routing::oid("1.3.6.1.2.1.15.3.1.10.10.0.13.1");
        vbs.insert(inu, crate::snmp::Value::OctetString(b"many".to_vec()));
        let (peers, _, _, issues) = decode_bgp(&vbs, builtin_maps());
        assert_eq!(peers.len(), 3);
        assert_eq!(peer(&peers, "10.0.12.1", None).state, BgpState::Unknown(9));
        assert_eq!(peer(&peers, "10.0.13.1", None).in_updates, None);
        let text: Vec<String> = issues.iter().map(ToString::to_string).collect();
        assert_eq!(text.len(), 2, "{text:?}");
        assert!(text[0].starts_with("1.3.6.1.2.1.15.3.1.2.10.0.12.1: peer state 9"), "{text:?}");
        assert!(text[1].starts_with("1.3.6.1.2.1.15.3.1.10.10.0.13.1: expected an unsigned integer"), "{text:?}");
    }

    #[test]
    fn a_peer_without_state_is_an_issue_not_a_record() {
        let vbs: Varbinds =
            [(crate::routing::oid("1.3.6.1.2.1.15.3.1.9.10.0.0.9"), crate::snmp::Value::Integer(65009))]
                .into_iter()
                .collect();
        let (peers, _, _, issues) = decode_bgp(&vbs, builtin_maps());
        assert!(peers.is_empty());
        assert_eq!(issues.len(), 1);
        assert!(issues[0].detail.contains("10.0.0.9 has no state"), "{issues:?}");
    }

    #[test]
    fn family_names() {
        assert_eq!(FamilyKey { afi: 1, safi: 1 }.name(), "ipv4-unicast");
        assert_eq!(FamilyKey { afi: 25, safi: 70 }.name(), "l2vpn-evpn");
        assert_eq!(FamilyKey { afi: 2, safi: 128 }.name(), "ipv6-vpn");
        assert_eq!(FamilyKey { afi: 9, safi: 99 }.name(), "afi9-safi99");
    }
}
