//! Metric series end to end: SQL queries in the alerting file become series of the `metric` rule
//! source in `netwarden serve` (the real binary, polling a simulated fabric). A query over the
//! stored poll samples makes a device that stops answering fire an alert carrying the query's
//! labels, which resolves when its rows are gone; a query that tries to write runs read-only and
//! fails, logged with its name; a query that does not fit (no `value`
//! column) stops the start with the metric's name.

use collector::sim::Fault;
use netwarden_tests::pg;
use netwarden_tests::serve::{Netwarden, fabric, netwarden_bin, write_config};
use netwarden_tests::util::{free_tcp_port, tail};
use serde_json::Value;
use std::process::Command;
use std::time::Duration;

const ALERTING: &str = r#"rule_files: [builtin, RULES]
metrics:
  - name: failed_polls_5s
    every: 1s
    query: |
      SELECT d.name AS device, 'snmp' AS transport, count(*)::float8 AS value
      FROM poll_sample p JOIN device d ON d.id = p.device_id
      WHERE p.time > now() - interval '5 seconds' AND p.status = 'failed'
      GROUP BY d.name
  - name: sneaky_write
    every: 1s
    query: SELECT name AS device, nextval('device_id_seq')::float8 AS value FROM device
"#;

const RULES: &str = r#"rules:
  - name: PollFailures
    source: metric
    match: ['metric="failed_polls_5s"']
    when: value >= 2
    severity: minor
    annotations:
      summary: "{{ device }} failed {{ value }} polls in 5 s over {{ transport }}"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metric_queries_feed_rules_read_only_and_bad_ones_stop_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let tdb = pg::fresh_db();
    let (fabric, inventory) = fabric("spines=1,leaves=2", dir.path()).await;
    let rules = dir.path().join("metric-rules.yaml");
    std::fs::write(&rules, RULES).unwrap();
    let alerting = ALERTING.replace("RULES", &rules.display().to_string());
    let api_port = free_tcp_port();
    let config = write_config(dir.path(), &tdb, api_port, &inventory, &alerting);
    let log = dir.path().join("netwarden.log");
    let nw = Netwarden::start(&config, api_port, log.clone()).await;

    // leaf001 stops answering: its failed polls become a series of the metric, and the rule fires
    // with the query's own label.
    let down = Fault::DeviceDown { device: "leaf001".into() };
    fabric.inject(&down).unwrap();
    let alerts =
        nw.api.wait_alerts("PollFailures", "failed polls alert", |a| a.iter().any(|a| a["state"] == "firing")).await;
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    let labels = &alerts[0]["labels"];
    assert_eq!(labels["device"], "leaf001");
    assert_eq!(labels["metric"], "failed_polls_5s");
    assert_eq!(labels["transport"], "snmp");
    assert_eq!(labels["site"], "sim", "the inventory's labels come with the device");
    let summary = alerts[0]["annotations"]["summary"].as_str().unwrap();
    assert!(summary.starts_with("leaf001 failed ") && summary.ends_with(" polls in 5 s over snmp"), "{summary}");

    // Repaired: once its failures leave the window the row is gone, and the alert resolves.
    fabric.clear(&down).unwrap();
    nw.api.wait_alerts("PollFailures", "the alert resolves", <[Value]>::is_empty).await;

    // The query that tries to write (a sequence) ran read-only: it failed and was logged by name.
    // (A data-modifying WITH is refused when the query is prepared: it cannot be a subquery.)
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text
        .lines()
        .find(|l| l.contains("metric query failed") && l.contains("sneaky_write"))
        .unwrap_or_else(|| panic!("no failure logged for sneaky_write:\n{}", tail(&log, 30)));
    assert!(line.contains("read-only transaction"), "{line}");
    drop(nw);

    // A query without a `value` column stops the start, naming the metric and the problem.
    let broken = ALERTING.replace("RULES", &rules.display().to_string()).replace(
        "SELECT name AS device, nextval('device_id_seq')::float8 AS value FROM device",
        "SELECT name AS device FROM device",
    );
    std::fs::write(dir.path().join("alerting.yaml"), broken).unwrap();
    let mut child = Command::new(netwarden_bin())
        .args(["--config", &config.display().to_string(), "serve"])
        .env("NETWARDEN_SECRET_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            panic!("netwarden started with a metric query that has no value column");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let out = child.wait_with_output().unwrap();
    let err = format!("{}{}", String::from_utf8_lossy(&out.stderr), String::from_utf8_lossy(&out.stdout));
    assert!(!status.success());
    assert!(err.contains("metric \"sneaky_write\"") && err.contains("q.value does not exist"), "{err}");
}
