//! Self-tests of the test fixtures: each one starts and behaves as the tests built on it assume.

use std::collections::BTreeSet;

use netwarden_tests::snmpd::{self, SYS_NAME, SYS_NAME_OID, Snmpd, V3_USERS};
use netwarden_tests::snmpsim::{SYS_DESCR_OID, Snmpsim, VENDOR_RECORDINGS};
use netwarden_tests::{pg, util};

const IF_DESCR: &str = "1.3.6.1.2.1.2.2.1.2";
const IF_HC_IN_OCTETS: &str = "1.3.6.1.2.1.31.1.1.1.6";
const SYSTEM: &str = "1.3.6.1.2.1.1";

#[tokio::test]
async fn fresh_db_gives_isolated_databases() {
    let a = pg::fresh_db();
    let b = pg::fresh_db();
    assert_ne!(a.name, b.name);

    let client_a = a.connect().await;
    client_a.batch_execute("CREATE TABLE only_in_a (id int); INSERT INTO only_in_a VALUES (1)").await.unwrap();
    let client_b = b.connect().await;
    let found = client_b
        .query_one("SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'", &[])
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(found, 0, "a table created in {} is visible in {}", a.name, b.name);
    let current: String = client_b.query_one("SELECT current_database()", &[]).await.unwrap().get(0);
    assert_eq!(current, b.name);

    // The URL form reaches the same database over the same socket.
    let config: tokio_postgres::Config = a.url().parse().unwrap();
    let (via_url, connection) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let n: i64 = via_url.query_one("SELECT count(*) FROM only_in_a", &[]).await.unwrap().get(0);
    assert_eq!(n, 1);

    // Dropping a TestDb drops its database, even with connections still open.
    let name = a.name.clone();
    drop(a);
    let admin = b.connect().await;
    let left: i64 =
        admin.query_one("SELECT count(*) FROM pg_database WHERE datname = $1", &[&name]).await.unwrap().get(0);
    assert_eq!(left, 0, "database {name} survived its TestDb");
}

#[test]
fn fresh_db_works_outside_a_runtime_and_settings_apply() {
    let db = pg::fresh_db();
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let client = db.connect().await;
        let fsync: String = client.query_one("SHOW fsync", &[]).await.unwrap().get(0);
        assert_eq!(fsync, "off");
        let listen: String = client.query_one("SHOW listen_addresses", &[]).await.unwrap().get(0);
        assert_eq!(listen, "", "the test cluster must not listen on TCP");
    });
}

#[test]
fn snmpd_answers_v2c_and_every_v3_user() {
    let agent = Snmpd::start();
    let target = agent.target();

    let v2c = snmpd::snmpget(&target, &snmpd::v2c_args(), &[SYS_NAME_OID]).expect("v2c get");
    assert_eq!(v2c, vec![(SYS_NAME_OID.to_owned(), "STRING".to_owned(), SYS_NAME.to_owned())]);

    let interfaces = snmpd::snmpbulkwalk(&target, &snmpd::v2c_args(), IF_DESCR);
    assert!(interfaces.iter().any(|(_, _, name)| name == "lo"), "no lo in ifDescr: {interfaces:?}");

    for user in V3_USERS {
        let system = snmpd::snmpbulkwalk(&target, &user.net_snmp_args(), SYSTEM);
        assert!(
            system.iter().any(|(oid, kind, value)| oid == SYS_NAME_OID && kind == "STRING" && value == SYS_NAME),
            "{} ({}): no sysName in {system:?}",
            user.name,
            user.security_level()
        );
    }

    // Wrong credentials are refused, as a poller's error path expects.
    let mut wrong = snmpd::AUTHPRIV_SHA.net_snmp_args();
    let pass = wrong.iter().position(|a| a == "-A").unwrap() + 1;
    wrong[pass] = "wrongpass123".to_owned();
    wrong.extend(["-t", "1", "-r", "0"].map(String::from));
    let err = snmpd::snmpget(&target, &wrong, &[SYS_NAME_OID]).expect_err("a wrong auth password must fail");
    assert!(err.contains("Authentication failure") || err.contains("authorizationError"), "{err}");
}

#[test]
fn snmpd_instances_are_independent() {
    let a = Snmpd::start();
    let b = Snmpd::start();
    assert_ne!(a.port(), b.port());
    let port = a.port();
    drop(a);
    let gone = snmpd::snmpget(
        &format!("127.0.0.1:{port}"),
        &["-v2c", "-c", "public", "-t", "0.3", "-r", "0"],
        &[SYS_NAME_OID],
    );
    assert!(gone.is_err(), "snmpd still answers after drop: {gone:?}");
    assert!(snmpd::snmpget(&b.target(), &snmpd::v2c_args(), &[SYS_NAME_OID]).is_ok());
}

#[test]
fn snmpsim_serves_vendor_recordings() {
    let sim = Snmpsim::start(&VENDOR_RECORDINGS);
    let devices = sim.devices();
    assert_eq!(devices.len(), VENDOR_RECORDINGS.len());

    let mut vendors = BTreeSet::new();
    for (recording, target) in &devices {
        let descr = snmpd::snmpget(target, &["-v2c", "-c", sim.community()], &[SYS_DESCR_OID])
            .unwrap_or_else(|e| panic!("{recording} at {target}: {e}"));
        let text = descr[0].2.to_lowercase();
        let vendor = ["arista", "juniper", "cisco", "procurve", "h3c", "huawei"].into_iter().find(|v| text.contains(v));
        let vendor = vendor.unwrap_or_else(|| panic!("{recording}: unexpected sysDescr {:?}", descr[0].2));
        vendors.insert(vendor);
    }
    assert!(vendors.len() >= 5, "only {vendors:?} among the sysDescrs");

    // Every recording has interface tables with 64-bit counters, which is why they were chosen.
    for (recording, target) in &devices {
        let hc = snmpd::snmpbulkwalk(target, &["-v2c", "-c", "public", "-t", "5"], IF_HC_IN_OCTETS);
        assert!(!hc.is_empty() && hc.iter().all(|(_, kind, _)| kind == "Counter64"), "{recording}: {hc:?}");
    }
}

#[test]
fn skip_unless_root_matches_the_effective_user() {
    assert_eq!(util::skip_unless_root("this self-test"), !util::is_root());
}
