//! The alert service in-process over a real database: timers keep running while observations
//! arrive faster than the tick (a `for:` alert fires), and an acknowledgement and its expiry are
//! recorded.

use chrono::Utc;
use netwarden_tests::observations::{interface_poll, scheduled};
use netwarden_tests::pg;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// A poll of leaf001 with its one port, eth0, oper down.
fn observation() -> collector::observe::Observation {
    interface_poll(1, "leaf001", 1, 0..1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timers_run_while_observations_stream_in_and_acks_expire() {
    let tdb = pg::fresh_db();
    let pool = collector::db::connect(&tdb.connection_string, 4).await.unwrap();
    {
        let mut c = pool.get().await.unwrap();
        let client: &mut tokio_postgres::Client = &mut c;
        collector::db::migrate(client, collector::db::BackendChoice::Auto).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("rules.yaml"),
        "rules:\n  - {name: SlowDown, source: interface, when: 'oper_status == \"down\"', for: 1s, severity: minor}\n",
    )
    .unwrap();
    std::fs::write(dir.path().join("alerting.yaml"), "rule_files: [rules.yaml]\n").unwrap();
    let alerting = rules::config::Alerting::load(Some(&dir.path().join("alerting.yaml")), "http://nw").unwrap();
    let (tx, rx) = mpsc::channel(64);
    let (_devices_tx, devices) = watch::channel(vec![scheduled(1, "leaf001")]);
    let topology = Arc::new(std::sync::RwLock::new(Arc::new(collector::topology::Topology::build(&[], &[]))));
    let inputs = rules::service::Inputs { observations: rx, devices, topology };
    let opts = rules::service::Options { tick: Duration::from_millis(500), ..Default::default() };
    let cancel = CancellationToken::new();
    let (handle, task) = rules::service::spawn(pool.clone(), alerting, inputs, opts, cancel.clone());

    // Observations every 100 ms, five times faster than the tick: `for: 1s` must still elapse.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let fingerprint = loop {
        tx.send(observation()).await.unwrap();
        let c = pool.get().await.unwrap();
        let alerts = rules::store::active_alerts(&**c).await.unwrap();
        if let Some(a) = alerts.iter().find(|a| a.state == "firing") {
            break a.fingerprint.clone();
        }
        assert!(tokio::time::Instant::now() < deadline, "the for: 1s alert never fired: {alerts:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    // An acknowledgement until a time close by is recorded, then expires by itself.
    let until = Utc::now() + chrono::Duration::milliseconds(1500);
    let ack = rules::service::Ack { by: "alice".into(), comment: Some("looking".into()), until: Some(until) };
    handle.acknowledge(&fingerprint, ack).await.unwrap();
    let c = pool.get().await.unwrap();
    assert_eq!(rules::store::active_alerts(&**c).await.unwrap()[0].acknowledged_by.as_deref(), Some("alice"));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        tx.send(observation()).await.unwrap();
        let a = rules::store::active_alerts(&**c).await.unwrap();
        if a[0].acknowledged_by.is_none() {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the acknowledgement did not expire: {a:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let history =
        rules::store::history(&**c, Some(&fingerprint), Utc::now() - chrono::Duration::hours(1), 100).await.unwrap();
    let mut changes: Vec<&str> = history.iter().map(|e| e.change.as_str()).collect();
    changes.reverse();
    assert_eq!(changes, ["pending", "firing", "acknowledged", "unacknowledged"]);
    assert!(matches!(
        handle.acknowledge("0000", rules::service::Ack { by: "bob".into(), comment: None, until: None }).await,
        Err(rules::service::CommandError::NotFound(_))
    ));
    cancel.cancel();
    task.await.unwrap();
}
