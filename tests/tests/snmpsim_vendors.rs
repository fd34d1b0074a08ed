//! Interface tables of recorded real devices (snmpsim-data) decode without error and with
//! plausible values.

use collector::inventory::SnmpCredentials;
use collector::snmp::{ClientOptions, SnmpClient};
use netwarden_tests::snmpsim::{Snmpsim, VENDOR_RECORDINGS};
use std::time::Duration;

#[tokio::test]
async fn vendor_interface_tables_decode_plausibly() {
    let sim = Snmpsim::start(&VENDOR_RECORDINGS);
    let mut vendors = 0;
    for (recording, target) in sim.devices() {
        let creds = SnmpCredentials::V2c { community: sim.community().into() };
        // snmpsim is slow on big recordings: a generous timeout.
        let opts = ClientOptions { timeout: Duration::from_secs(10), retries: 1, ..Default::default() };
        let mut client = SnmpClient::new(target.clone(), creds, opts);
        let poll = collector::poll::poll_interfaces(&mut client).await.unwrap_or_else(|e| panic!("{recording}: {e}"));
        assert!(poll.issues.is_empty(), "{recording}: {:?}", poll.issues);
        assert!(poll.system.sys_descr.as_deref().is_some_and(|d| !d.is_empty()), "{recording}: sysDescr");
        assert!(poll.system.sys_uptime_ticks.is_some(), "{recording}: sysUpTime");
        assert!(!poll.interfaces.is_empty(), "{recording}: no interfaces");
        let mut with_counters = 0;
        for i in &poll.interfaces {
            assert!(i.if_index > 0, "{recording}: ifIndex 0");
            assert!(!i.key().is_empty());
            if let Some(s) = i.oper_status {
                assert!((1..=7).contains(&s), "{recording} {}: oper {s}", i.key());
            }
            if let Some(s) = i.admin_status {
                assert!((1..=3).contains(&s), "{recording} {}: admin {s}", i.key());
            }
            if let Some(sp) = i.speed_bps {
                assert!(sp <= 1_600_000_000_000, "{recording} {}: speed {sp}", i.key());
            }
            // Junos reports "unlimited" (lsi, tunnels) as 2^31-1: any non-negative MTU is real.
            assert!(i.mtu.is_none_or(|m| m >= 0), "{recording} {}: mtu {:?}", i.key(), i.mtu);
            if i.counter(collector::ifmib::CounterKind::InOctets).is_some() {
                with_counters += 1;
            }
        }
        assert!(with_counters > 0, "{recording}: no octet counters");
        let tracking = collector::ifmib::tracking_keys(&poll.interfaces);
        let unique: std::collections::HashSet<&String> = tracking.iter().collect();
        assert_eq!(unique.len(), tracking.len(), "{recording}: tracking keys unique");
        eprintln!(
            "{recording}: {} interfaces, {} requests, {} varbinds",
            poll.interfaces.len(),
            poll.stats.requests,
            poll.stats.varbinds
        );
        vendors += 1;
    }
    assert!(vendors >= 5, "only {vendors} vendors");
}
