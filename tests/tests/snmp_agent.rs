//! SNMP against a real net-snmp agent: netwarden's values equal net-snmp's own client's, over
//! v2c and v3, and every failure names what went wrong.

use collector::ifmib::{self, CounterKind};
use collector::inventory::{AuthProtocol, PrivProtocol, SnmpCredentials, SnmpV3Credentials};
use collector::snmp::{ClientOptions, Oid, SnmpClient, Value};
use netwarden_tests::snmpd::{self, Snmpd};
use std::collections::HashMap;
use std::time::Duration;

fn v2c() -> SnmpCredentials {
    SnmpCredentials::V2c { community: snmpd::COMMUNITY.into() }
}

fn v3(user: &snmpd::V3User) -> SnmpCredentials {
    SnmpCredentials::V3(SnmpV3Credentials {
        user: user.name.into(),
        auth: Some((user.auth_protocol.parse::<AuthProtocol>().unwrap(), user.auth_password.into())),
        privacy: user.privacy.map(|(p, pw)| (p.parse::<PrivProtocol>().unwrap(), pw.to_string())),
        context: None,
    })
}

fn client(target: &str, creds: SnmpCredentials) -> SnmpClient {
    SnmpClient::new(
        target,
        creds,
        ClientOptions { timeout: Duration::from_millis(800), retries: 1, ..Default::default() },
    )
}

/// net-snmp's walk of one column as ifIndex → (type, value).
fn reference_column(agent: &Snmpd, column: &str) -> HashMap<u32, (String, String)> {
    snmpd::snmpbulkwalk(&agent.target(), &snmpd::v2c_args(), column)
        .into_iter()
        .filter_map(|(oid, t, v)| {
            let idx = oid.strip_prefix(column)?.strip_prefix('.')?.parse().ok()?;
            Some((idx, (t, v)))
        })
        .collect()
}

#[tokio::test]
async fn interface_poll_matches_snmpbulkwalk() {
    let agent = Snmpd::start();
    let reference: Vec<(&str, HashMap<u32, (String, String)>)> =
        ifmib::IF_COLUMNS.iter().map(|(_, col)| (*col, reference_column(&agent, col))).collect();
    let mut c = client(&agent.target(), v2c());
    let poll = collector::poll::poll_interfaces(&mut c).await.expect("poll");
    assert!(poll.issues.is_empty(), "{:?}", poll.issues);
    assert_eq!(poll.system.sys_name.as_deref(), Some(snmpd::SYS_NAME));
    let (_, refs_descr) = &reference[0];
    assert_eq!(poll.interfaces.len(), refs_descr.len(), "one row per ifIndex");
    assert!(!poll.interfaces.is_empty());
    for row in &poll.interfaces {
        let i = row.if_index;
        let r = |col: &str| -> Option<String> {
            reference.iter().find(|(c, _)| *c == col).and_then(|(_, m)| m.get(&i)).map(|(_, v)| v.clone())
        };
        assert_eq!(row.descr, r("1.3.6.1.2.1.2.2.1.2"), "ifDescr.{i}");
        assert_eq!(row.if_type.map(|v| v.to_string()), r("1.3.6.1.2.1.2.2.1.3"), "ifType.{i}");
        assert_eq!(row.mtu.map(|v| v.to_string()), r("1.3.6.1.2.1.2.2.1.4"), "ifMtu.{i}");
        assert_eq!(row.admin_status.map(|v| v.to_string()), r("1.3.6.1.2.1.2.2.1.7"), "ifAdminStatus.{i}");
        assert_eq!(row.oper_status.map(|v| v.to_string()), r("1.3.6.1.2.1.2.2.1.8"), "ifOperStatus.{i}");
        assert_eq!(row.name, r("1.3.6.1.2.1.31.1.1.1.1"), "ifName.{i}");
        assert_eq!(row.alias, r("1.3.6.1.2.1.31.1.1.1.18"), "ifAlias.{i}");
        let high: Option<u64> = r("1.3.6.1.2.1.31.1.1.1.15").and_then(|v| v.parse().ok());
        let low: Option<u64> = r("1.3.6.1.2.1.2.2.1.5").and_then(|v| v.parse().ok());
        let expect_speed = match high {
            Some(h) if h > 0 => Some(h * 1_000_000),
            _ => low,
        };
        assert_eq!(row.speed_bps, expect_speed, "speed.{i}");
        // Counters only grow between net-snmp's read and ours.
        let theirs: u64 = r("1.3.6.1.2.1.31.1.1.1.6").and_then(|v| v.parse().ok()).expect("ifHCInOctets");
        let ours = row.counter(CounterKind::InOctets).expect("in octets");
        assert_eq!(ours.bits, 64, "HC counter preferred");
        assert!(ours.value >= theirs, "ifHCInOctets.{i}: ours {} < net-snmp's {theirs}", ours.value);
    }
}

#[tokio::test]
async fn subtree_walk_equals_snmpbulkwalk_with_the_same_requests() {
    let agent = Snmpd::start();
    let mut c = client(&agent.target(), v2c());
    let table: Oid = ifmib::IF_X_TABLE.parse().unwrap();
    let reference = snmpd::snmpbulkwalk(&agent.target(), &snmpd::v2c_args(), ifmib::IF_X_TABLE);
    let ours = c.walk(&table).await.expect("walk");
    let ours_oids: Vec<String> = ours.iter().map(|(o, _)| o.to_string()).collect();
    let ref_oids: Vec<String> = reference.iter().map(|(o, _, _)| o.clone()).collect();
    assert_eq!(ours_oids, ref_oids);
    for ((_, v), (oid, t, rv)) in ours.iter().zip(&reference) {
        let ours_type = match v {
            Value::OctetString(_) => "STRING",
            other => other.type_name(),
        };
        assert!(t.starts_with(ours_type) || (ours_type == "STRING" && t == "Hex-STRING"), "{oid}: {ours_type} vs {t}");
        if !t.starts_with("Counter") && ours_type != "STRING" && t != "Timeticks" {
            assert_eq!(v.as_u64().map(|x| x.to_string()).unwrap_or_default(), *rv, "{oid}");
        }
    }
    // Same max-repetitions, same number of GETBULKs: ceil((n+1)/25).
    assert_eq!(c.stats().requests as usize, ours.len() / 25 + 1);
}

#[tokio::test]
async fn v3_auth_and_privacy_variants_poll() {
    let agent = Snmpd::start();
    for user in snmpd::V3_USERS {
        let mut c = client(&agent.target(), v3(&user));
        let poll = collector::poll::poll_interfaces(&mut c).await.unwrap_or_else(|e| panic!("{}: {e}", user.name));
        assert_eq!(poll.system.sys_name.as_deref(), Some(snmpd::SYS_NAME), "{}", user.name);
        assert!(!poll.interfaces.is_empty());
        // a second poll reuses the localized keys (no discovery) and still works
        let again =
            collector::poll::poll_interfaces(&mut c).await.unwrap_or_else(|e| panic!("{} again: {e}", user.name));
        assert_eq!(again.interfaces.len(), poll.interfaces.len());
    }
}

#[tokio::test]
async fn failures_say_what_went_wrong() {
    let agent = Snmpd::start();
    let target = agent.target();
    // Wrong community: the agent stays silent.
    let mut c = client(&target, SnmpCredentials::V2c { community: "wrong".into() });
    let e = collector::poll::poll_interfaces(&mut c).await.expect_err("wrong community");
    assert_eq!(e.kind(), "timeout", "{e}");
    assert!(e.to_string().contains("no response after 2 attempt(s)"), "{e}");
    // Wrong auth password and unknown user: authentication.
    let mut bad = snmpd::AUTHPRIV_SHA;
    bad.auth_password = "not-the-password";
    let e = collector::poll::poll_interfaces(&mut client(&target, v3(&bad))).await.expect_err("bad password");
    assert_eq!(e.kind(), "authentication", "{e}");
    let mut unknown = snmpd::AUTHPRIV_SHA;
    unknown.name = "nobody";
    let e = collector::poll::poll_interfaces(&mut client(&target, v3(&unknown))).await.expect_err("unknown user");
    assert_eq!(e.kind(), "authentication", "{e}");
    assert!(e.to_string().contains("\"nobody\""), "{e}");
    // Nothing listening.
    let closed = format!("127.0.0.1:{}", netwarden_tests::util::free_udp_port());
    let e = collector::poll::poll_interfaces(&mut client(&closed, v2c())).await.expect_err("closed port");
    assert!(matches!(e.kind(), "network" | "timeout"), "{e}");
    // An object the agent does not have comes back as an exception value, not an error.
    let mut c = client(&target, v2c());
    let got = c.get(&["1.3.6.1.2.1.1.99.0".parse().unwrap()]).await.expect("get");
    assert_eq!(got[0].1, Value::NoSuchObject);
}
