//! The state writer on a real PostgreSQL: several devices' polls in one batch (interfaces, device
//! state, routing and neighbour tables, history rows), then the sample rows; failures, skipped
//! ticks and a device that appears twice before a batch is written.

use chrono::{DateTime, Duration as ChronoDuration, Utc};
use collector::counters::InterfaceRates;
use collector::db;
use collector::ifmib::{InterfaceRow, SystemInfo};
use collector::poll::DevicePoll;
use collector::routing::{BgpPeer, BgpState, LinkNeighbor, LinkProtocol, RoutingPoll};
use collector::scheduler::SchedulerStats;
use collector::store::{
    PollSampleRow, SampleWriter, StateOutcome, StateUpdate, StateWriter, StateWriterOptions, WriterHandle,
    WriterOptions,
};
use netwarden_tests::pg;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

async fn device(c: &tokio_postgres::Client, name: &str) -> i64 {
    c.query_one(
        "INSERT INTO device (name, host, snmp_port, snmp_version, snmp_secret) VALUES ($1, '127.0.0.1', 161, 'v2c', '\\x00') RETURNING id",
        &[&name],
    )
    .await
    .expect("device row")
    .get(0)
}

fn interface(if_index: u32, name: &str, oper: i16) -> InterfaceRow {
    InterfaceRow {
        if_index,
        name: Some(name.to_string()),
        descr: Some(format!("port {name}")),
        admin_status: Some(1),
        oper_status: Some(oper),
        speed_bps: Some(1_000_000_000),
        ..Default::default()
    }
}

fn bgp(state: BgpState) -> BgpPeer {
    BgpPeer {
        peer_addr: "10.0.0.1".parse().unwrap(),
        remote_as: 65001,
        local_addr: Some("10.0.0.2".parse().unwrap()),
        local_as: Some(65000),
        admin_status: None,
        state,
        established_time_s: Some(10),
        fsm_established_transitions: Some(1),
        in_updates: None,
        out_updates: None,
        last_error: None,
        afi_safi: None,
        prefixes_received: None,
        prefixes_accepted: None,
        instance: None,
        source: "BGP4-MIB".into(),
    }
}

fn lldp_neighbor() -> LinkNeighbor {
    LinkNeighbor {
        protocol: LinkProtocol::Lldp,
        local_port_num: 1,
        local_if_index: Some(1),
        local_port_match: None,
        local_if_name: Some("eth1".into()),
        chassis_id: "aa:bb:cc:dd:ee:01".into(),
        chassis_id_subtype: Some(4),
        sys_name: Some("spine1".into()),
        port_id: "Ethernet1".into(),
        port_id_subtype: Some(5),
        port_descr: None,
        mgmt_addr: None,
        remote_index: 1,
    }
}

fn routing(bgp: Vec<BgpPeer>, neighbors: Vec<LinkNeighbor>) -> RoutingPoll {
    RoutingPoll {
        bgp,
        local_as: Some(65000),
        router_id: None,
        ospf_neighbors: Vec::new(),
        ospf_interfaces: Vec::new(),
        neighbors,
        local_chassis_id: Some("aa:bb:cc:dd:ee:99".into()),
        issues: Vec::new(),
        stats: Default::default(),
        duration: Duration::from_millis(1),
    }
}

fn polled(
    device_id: i64,
    at: DateTime<Utc>,
    interfaces: Vec<InterfaceRow>,
    routing: Option<RoutingPoll>,
) -> StateUpdate {
    let rates = vec![InterfaceRates::default(); interfaces.len()];
    let poll = DevicePoll {
        target: "127.0.0.1:161".into(),
        system: SystemInfo {
            sys_name: Some(format!("dev{device_id}")),
            sys_uptime_ticks: Some(100),
            ..Default::default()
        },
        interfaces,
        issues: Vec::new(),
        stats: Default::default(),
        duration: Duration::from_millis(5),
        routing,
        routing_error: None,
    };
    StateUpdate {
        device_id,
        device: format!("dev{device_id}"),
        at,
        outcome: StateOutcome::Polled { poll: Arc::new(poll), rates: Arc::new(rates) },
        poll_rows: vec![poll_row(device_id, at, "ok")],
    }
}

fn poll_row(device_id: i64, at: DateTime<Utc>, status: &'static str) -> PollSampleRow {
    PollSampleRow {
        time: at,
        device_id,
        status,
        duration_ms: Some(5.0),
        requests: Some(1),
        varbinds: Some(1),
        error_kind: None,
        error: None,
    }
}

fn failed(device_id: i64, at: DateTime<Utc>) -> StateUpdate {
    StateUpdate {
        device_id,
        device: format!("dev{device_id}"),
        at,
        outcome: StateOutcome::Failed { kind: "timeout", error: "no response".into() },
        poll_rows: vec![poll_row(device_id, at, "failed")],
    }
}

/// Hands `updates` to a fresh state writer, lets it write them (one batch, split only where a
/// device repeats) and waits until their samples are written.
async fn write(pool: &db::DbPool, samples: &WriterHandle, stats: &Arc<SchedulerStats>, updates: Vec<StateUpdate>) {
    let opts = StateWriterOptions { linger: Duration::from_secs(2), ..Default::default() };
    let (handle, task) = StateWriter::spawn(pool.clone(), samples.clone(), stats.clone(), opts);
    for u in updates {
        handle.send(u).await;
    }
    drop(handle);
    task.await.expect("state writer task");
    samples.flush().await.expect("sample flush");
}

async fn count(c: &tokio_postgres::Client, sql: &str) -> i64 {
    c.query_one(sql, &[]).await.unwrap_or_else(|e| panic!("{sql}: {e}")).get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_record_state_routing_and_history_before_samples() {
    let tdb = pg::fresh_db();
    let mut c = tdb.connect().await;
    db::migrate(&mut c, db::BackendChoice::Auto).await.expect("migrate");
    let pool = db::connect(&tdb.connection_string, 4).await.expect("pool");
    let cancel = CancellationToken::new();
    let (samples, samples_task) = SampleWriter::spawn(pool.clone(), WriterOptions::default(), cancel.clone());
    let stats = Arc::new(SchedulerStats::default());
    let (d1, d2) = (device(&c, "d1").await, device(&c, "d2").await);
    let t0 = Utc::now();

    // One batch: two devices, one with a BGP session and an LLDP neighbour.
    write(
        &pool,
        &samples,
        &stats,
        vec![
            polled(
                d1,
                t0,
                vec![interface(1, "eth1", 1), interface(2, "eth2", 1)],
                Some(routing(vec![bgp(BgpState::Established)], vec![lldp_neighbor()])),
            ),
            polled(d2, t0, vec![interface(1, "eth1", 1)], Some(routing(Vec::new(), Vec::new()))),
        ],
    )
    .await;
    assert_eq!(count(&c, "SELECT count(*) FROM device_state WHERE status = 'up' AND polls_total = 1").await, 2);
    assert_eq!(count(&c, "SELECT count(*) FROM interface").await, 3);
    assert_eq!(count(&c, "SELECT count(*) FROM if_sample").await, 3, "one sample per interface");
    assert_eq!(count(&c, "SELECT count(*) FROM poll_sample WHERE status = 'ok'").await, 2);
    assert_eq!(count(&c, "SELECT count(*) FROM bgp_peer WHERE state = 'established'").await, 1);
    assert_eq!(count(&c, "SELECT count(*) FROM link_neighbor WHERE lost_at IS NULL AND sys_name = 'spine1'").await, 1);
    assert_eq!(
        count(&c, "SELECT count(*) FROM device_state WHERE lldp_chassis_id = 'aa:bb:cc:dd:ee:99'").await,
        2,
        "local chassis ids stored"
    );
    assert_eq!(count(&c, "SELECT count(*) FROM state_change WHERE kind = 'device' AND new_state = 'up'").await, 2);
    assert_eq!(
        count(&c, "SELECT count(*) FROM state_change WHERE kind = 'bgp_peer' AND old_state IS NULL AND new_state = 'established'")
            .await,
        1
    );
    assert_eq!(
        count(&c, "SELECT count(*) FROM state_change WHERE kind = 'link_neighbor' AND key = 'eth1' AND new_state = 'spine1:Ethernet1'")
            .await,
        1
    );

    // Next batch: d1's eth2 goes down, its session drops and its neighbour vanishes; d2 fails twice
    // (the second result waits for the next batch) and goes down; d1 reports skipped ticks.
    let t1 = t0 + ChronoDuration::seconds(60);
    write(
        &pool,
        &samples,
        &stats,
        vec![
            polled(
                d1,
                t1,
                vec![interface(1, "eth1", 1), interface(2, "eth2", 2)],
                Some(routing(vec![bgp(BgpState::Idle)], Vec::new())),
            ),
            failed(d2, t1),
            failed(d2, t1 + ChronoDuration::seconds(1)),
            StateUpdate {
                device_id: d1,
                device: "dev1".into(),
                at: t1,
                outcome: StateOutcome::Skipped { count: 3 },
                poll_rows: Vec::new(),
            },
        ],
    )
    .await;
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM state_change WHERE kind = 'interface' AND key = 'eth2' AND new_state LIKE '%/down'"
        )
        .await,
        1
    );
    assert_eq!(count(&c, "SELECT count(*) FROM state_change WHERE kind = 'interface'").await, 1, "eth1 did not change");
    assert_eq!(
        count(&c, "SELECT count(*) FROM state_change WHERE kind = 'bgp_peer' AND old_state = 'established' AND new_state = 'idle'")
            .await,
        1
    );
    assert_eq!(count(&c, "SELECT count(*) FROM bgp_peer WHERE state = 'idle'").await, 1);
    assert_eq!(count(&c, "SELECT count(*) FROM link_neighbor WHERE lost_at IS NOT NULL").await, 1, "kept, marked lost");
    assert_eq!(
        count(&c, "SELECT count(*) FROM state_change WHERE kind = 'link_neighbor' AND new_state IS NULL").await,
        1
    );
    let d2_state = c
        .query_one(
            "SELECT status, consecutive_failures, polls_failed, polls_total FROM device_state WHERE device_id = $1",
            &[&d2],
        )
        .await
        .unwrap();
    assert_eq!(d2_state.get::<_, String>(0), "down");
    assert_eq!((d2_state.get::<_, i32>(1), d2_state.get::<_, i64>(2), d2_state.get::<_, i64>(3)), (2, 2, 3));
    assert_eq!(
        count(
            &c,
            "SELECT count(*) FROM state_change WHERE kind = 'device' AND old_state = 'up' AND new_state = 'down'
                AND detail->>'error_kind' = 'timeout'"
        )
        .await,
        1
    );
    let d1_state = c
        .query_one("SELECT status, polls_total, polls_skipped FROM device_state WHERE device_id = $1", &[&d1])
        .await
        .unwrap();
    assert_eq!(
        (d1_state.get::<_, String>(0), d1_state.get::<_, i64>(1), d1_state.get::<_, i64>(2)),
        ("up".to_string(), 2, 3)
    );
    assert_eq!(count(&c, "SELECT count(*) FROM if_sample").await, 5);
    assert_eq!(count(&c, "SELECT count(*) FROM poll_sample WHERE status = 'failed'").await, 2);
    assert_eq!(stats.db_errors.load(std::sync::atomic::Ordering::Relaxed), 0);
    cancel.cancel();
    samples_task.await.unwrap();
}
