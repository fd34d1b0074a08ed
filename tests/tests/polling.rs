//! The poller end to end: scheduler → SNMP agent → state tables and samples in PostgreSQL, and
//! what happens when a device stops answering or a poll overruns its interval.

use collector::db::{self, BackendChoice};
use collector::inventory::{Device, store};
use collector::observe::{Outcome, PollNow, SchedulerHooks};
use collector::scheduler::{self, ScheduledDevice, SchedulerOptions, SchedulerStats};
use collector::secrets::SecretBox;
use collector::snmp::ClientOptions;
use collector::store::{SampleWriter, WriterOptions};
use netwarden_tests::{pg, snmpd::Snmpd};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

fn device(name: &str, host: &str, port: u16, interval: Duration) -> Device {
    Device {
        site: Some("test".into()),
        role: Some("leaf".into()),
        poll_interval: Some(interval),
        ..Device::v2c(name, host, port, "public")
    }
}

struct Running {
    cancel: CancellationToken,
    stats: Arc<SchedulerStats>,
    task: tokio::task::JoinHandle<()>,
    writer: collector::store::WriterHandle,
}

async fn start(tdb: &pg::TestDb, devices: Vec<Device>, client: ClientOptions) -> (tokio_postgres::Client, Running) {
    start_with(tdb, devices, client, SchedulerHooks::default()).await
}

async fn start_with(
    tdb: &pg::TestDb,
    devices: Vec<Device>,
    client: ClientOptions,
    hooks: SchedulerHooks,
) -> (tokio_postgres::Client, Running) {
    let mut c = tdb.connect().await;
    db::migrate(&mut c, BackendChoice::Auto).await.expect("migrate");
    let secrets = SecretBox::from_key(&[7; 32]);
    store::import(&mut c, &secrets, &devices, store::ImportMode::Merge).await.expect("import");
    let stored = store::list(&c, &secrets).await.unwrap();
    let scheduled: Vec<ScheduledDevice> =
        stored.into_iter().map(|d| ScheduledDevice { id: d.id.unwrap(), device: d }).collect();
    let pool = db::connect(&tdb.connection_string, 4).await.unwrap();
    let cancel = CancellationToken::new();
    let (writer, _) = SampleWriter::spawn(
        pool.clone(),
        WriterOptions { flush_interval: Duration::from_millis(200), ..Default::default() },
        cancel.clone(),
    );
    let (_tx, rx) = watch::channel(scheduled);
    let stats = Arc::new(SchedulerStats::default());
    let opts =
        SchedulerOptions { client, down_after_failures: 2, max_backoff: Duration::from_secs(2), ..Default::default() };
    let task = tokio::spawn({
        let (writer, stats, cancel) = (writer.clone(), stats.clone(), cancel.clone());
        async move {
            let _keep_sender = _tx;
            scheduler::run(pool, writer, opts, stats, hooks, rx, cancel).await
        }
    });
    (c, Running { cancel, stats, task, writer })
}

async fn wait_for(c: &tokio_postgres::Client, sql: &str, what: &str) -> i64 {
    for _ in 0..150 {
        let n: i64 = c.query_one(sql, &[]).await.unwrap().get(0);
        if n > 0 {
            return n;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}: {sql}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduler_polls_an_agent_into_state_and_samples() {
    let agent = Snmpd::start();
    let tdb = pg::fresh_db();
    let (c, run) =
        start(&tdb, vec![device("agent", "127.0.0.1", agent.port(), Duration::from_secs(1))], ClientOptions::default())
            .await;
    // A rate needs two polls: wait for a sample with in_bps set.
    wait_for(&c, "SELECT count(*) FROM if_sample WHERE in_bps IS NOT NULL", "a rate").await;
    run.writer.flush().await.unwrap();
    let st =
        c.query_one("SELECT status, sys_name, consecutive_failures, polls_total FROM device_state", &[]).await.unwrap();
    assert_eq!(st.get::<_, String>(0), "up");
    assert_eq!(st.get::<_, Option<String>>(1).as_deref(), Some(netwarden_tests::snmpd::SYS_NAME));
    assert_eq!(st.get::<_, i32>(2), 0);
    assert!(st.get::<_, i64>(3) >= 2);
    // Interfaces stored once each, as many as net-snmp sees.
    let reference = netwarden_tests::snmpd::snmpbulkwalk(
        &agent.target(),
        &netwarden_tests::snmpd::v2c_args(),
        "1.3.6.1.2.1.2.2.1.1",
    );
    let n_if: i64 = c.query_one("SELECT count(*) FROM interface", &[]).await.unwrap().get(0);
    assert_eq!(n_if as usize, reference.len());
    // Every successful poll is recorded with its cost; the first poll of each interface is a gap.
    let ok: i64 = c
        .query_one("SELECT count(*) FROM poll_sample WHERE status = 'ok' AND requests > 0 AND varbinds > 0", &[])
        .await
        .unwrap()
        .get(0);
    assert!(ok >= 2);
    let first_gap: i64 = c
        .query_one(
            "SELECT count(*) FROM if_sample s WHERE in_bps IS NULL AND time = (SELECT min(time) FROM if_sample)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(first_gap, n_if, "first poll has no rates (no spike from zero)");
    // Rates are never negative.
    let negative: i64 =
        c.query_one("SELECT count(*) FROM if_sample WHERE in_bps < 0 OR out_bps < 0", &[]).await.unwrap().get(0);
    assert_eq!(negative, 0);
    run.cancel.cancel();
    run.task.await.unwrap();
    assert_eq!(run.stats.polls_failed.load(Ordering::Relaxed), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_device_is_marked_down_with_the_reason_and_others_keep_polling() {
    let agent = Snmpd::start();
    // A UDP socket that reads and never answers: a device that stopped responding.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let tdb = pg::fresh_db();
    let fast = ClientOptions { timeout: Duration::from_millis(200), retries: 1, ..Default::default() };
    let (c, run) = start(
        &tdb,
        vec![
            device("silent", "127.0.0.1", silent_port, Duration::from_secs(1)),
            device("agent", "127.0.0.1", agent.port(), Duration::from_secs(1)),
        ],
        fast,
    )
    .await;
    wait_for(
        &c,
        "SELECT count(*) FROM device_state s JOIN device d ON d.id = s.device_id WHERE d.name = 'silent' AND s.status = 'down'",
        "the silent device to be down",
    )
    .await;
    let r = c
        .query_one(
            "SELECT s.last_error_kind, s.last_error, s.consecutive_failures FROM device_state s JOIN device d ON d.id = s.device_id WHERE d.name = 'silent'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(r.get::<_, String>(0), "timeout");
    assert!(r.get::<_, String>(1).contains(&format!("127.0.0.1:{silent_port}")));
    assert!(r.get::<_, i32>(2) >= 2);
    // The history says when it went down and why.
    let h = c
        .query_one(
            "SELECT count(*) FROM state_change s JOIN device d ON d.id = s.device_id
              WHERE d.name = 'silent' AND kind = 'device' AND new_state = 'down' AND detail->>'error_kind' = 'timeout'",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(h, 1);
    // The healthy device is unaffected.
    wait_for(
        &c,
        "SELECT count(*) FROM device_state s JOIN device d ON d.id = s.device_id WHERE d.name = 'agent' AND s.status = 'up'",
        "the agent to be up",
    )
    .await;
    run.writer.flush().await.unwrap();
    let failed: i64 = c
        .query_one("SELECT count(*) FROM poll_sample WHERE status = 'failed' AND error_kind = 'timeout'", &[])
        .await
        .unwrap()
        .get(0);
    assert!(failed >= 2);
    run.cancel.cancel();
    run.task.await.unwrap();
    drop(silent);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overrunning_poll_skips_ticks_and_counts_them() {
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = silent.local_addr().unwrap().port();
    let tdb = pg::fresh_db();
    // Each poll waits 2 × 1.2 s for a device polled every second: ticks must be skipped, not queued.
    let slow = ClientOptions { timeout: Duration::from_millis(1200), retries: 1, ..Default::default() };
    let (c, run) = start(&tdb, vec![device("slow", "127.0.0.1", port, Duration::from_secs(1))], slow).await;
    wait_for(&c, "SELECT count(*) FROM device_state WHERE polls_skipped > 0", "a skipped poll").await;
    run.writer.flush().await.unwrap();
    let skipped: i64 =
        c.query_one("SELECT count(*) FROM poll_sample WHERE status = 'skipped'", &[]).await.unwrap().get(0);
    assert!(skipped >= 1);
    assert!(run.stats.polls_skipped.load(Ordering::Relaxed) >= 1);
    // Never two polls of one device at once: attempts are at least a timeout apart.
    let times: Vec<chrono::DateTime<chrono::Utc>> = c
        .query("SELECT time FROM poll_sample WHERE status = 'failed' ORDER BY time", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for w in times.windows(2) {
        assert!((w[1] - w[0]).num_milliseconds() >= 2000, "polls overlapped: {times:?}");
    }
    run.cancel.cancel();
    run.task.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poll_now_request_polls_at_once_and_every_outcome_is_observed() {
    let agent = Snmpd::start();
    let tdb = pg::fresh_db();
    let (tx, mut observations) = tokio::sync::mpsc::channel(16);
    let poll_now = Arc::new(PollNow::default());
    let hooks = SchedulerHooks { observations: Some(tx), poll_now: Some(poll_now.clone()) };
    // One device on a one-hour interval and one that never answers: without a request, the first
    // would poll only at its phase within the hour.
    let devices = vec![
        device("agent", "127.0.0.1", agent.port(), Duration::from_secs(3600)),
        device("silent", "127.0.0.1", netwarden_tests::util::free_udp_port(), Duration::from_secs(3600)),
    ];
    let client = ClientOptions { timeout: Duration::from_millis(200), retries: 0, ..Default::default() };
    let (c, run) = start_with(&tdb, devices, client, hooks).await;
    let ids: std::collections::HashMap<String, i64> =
        c.query("SELECT name, id FROM device", &[]).await.unwrap().iter().map(|r| (r.get(0), r.get(1))).collect();
    assert!(!poll_now.request(-1), "an unknown device id is refused");
    // The device loops register shortly after start; keep asking until both have polled.
    let mut seen = std::collections::HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while seen.len() < 2 {
        assert!(tokio::time::Instant::now() < deadline, "no observation for a poll-now request: {seen:?}");
        for id in ids.values() {
            poll_now.request(*id);
        }
        if let Ok(Some(o)) = tokio::time::timeout(Duration::from_millis(300), observations.recv()).await {
            seen.insert(o.device.clone(), o);
        }
    }
    match &seen["agent"].outcome {
        Outcome::Polled { poll, rates } => {
            assert!(!poll.interfaces.is_empty());
            assert_eq!(rates.len(), poll.interfaces.len());
            assert_eq!(seen["agent"].device_id, ids["agent"]);
        }
        other => panic!("agent: expected a poll, got {other:?}"),
    }
    match &seen["silent"].outcome {
        Outcome::Failed { consecutive_failures, kind, .. } => {
            assert!(*consecutive_failures >= 1);
            assert_eq!(kind, "network", "a closed loopback port refuses at once");
        }
        other => panic!("silent: expected a failure, got {other:?}"),
    }
    run.cancel.cancel();
    run.task.await.unwrap();
}
