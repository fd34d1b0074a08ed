//! The alert service end to end: `netwarden serve` (the real binary) polls a simulated fabric on
//! loopback, and faults injected into the fabric become alerts delivered to real peers: a Slack and
//! a PagerDuty stand-in that check their published formats, a real SMTP server (aiosmtpd) and a
//! webhook receiver. Covered: a link failure pages every receiver and its repair resolves on every
//! receiver, also when a silence came in between; an acknowledgement reaches PagerDuty; a flapping
//! link produces one flapping notification; a spine going down suppresses the alerts of the leaves
//! behind it; the outbox and the alert state survive a SIGKILL mid-delivery.

use collector::sim::Fault;
use netwarden_tests::pg;
use netwarden_tests::receivers::{CaptureServer, Captured, Reply, SmtpServer, pagerduty_validator, slack_validator};
use netwarden_tests::serve::{
    Netwarden, ROUTE_TIMERS, WAIT, fabric, fingerprints, hook_fps, wait_requests, write_config,
};
use netwarden_tests::util::{free_tcp_port, tail};
use serde_json::{Value, json};
use std::time::Duration;

/// PagerDuty events of one action, by dedup key.
fn pd_keys(requests: &[Captured], action: &str) -> Vec<String> {
    let mut keys: Vec<String> = requests
        .iter()
        .filter(|r| r.body["event_action"] == action)
        .map(|r| r.body["dedup_key"].as_str().unwrap_or_default().to_string())
        .collect();
    keys.sort();
    keys.dedup();
    keys
}

fn no_problems(server: &CaptureServer) {
    for r in server.requests() {
        assert!(
            r.problems.is_empty(),
            "{} does not follow the published format: {:?}\n{:#}",
            r.path,
            r.problems,
            r.body
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_link_failure_reaches_every_receiver_and_its_repair_resolves_everywhere_through_a_silence() {
    let dir = tempfile::tempdir().unwrap();
    let tdb = pg::fresh_db();
    let (fabric, inventory) = fabric("spines=2,leaves=2", dir.path()).await;
    let ok = || Reply::Status(200, "ok".into());
    let slack = CaptureServer::start(ok(), Some(Box::new(slack_validator()))).await;
    let pd = CaptureServer::start(
        Reply::Status(202, r#"{"status":"success"}"#.into()),
        Some(Box::new(pagerduty_validator())),
    )
    .await;
    let hook = CaptureServer::start(ok(), None).await;
    let smtp = tokio::task::spawn_blocking(|| SmtpServer::start(None)).await.unwrap();
    let alerting = format!(
        r#"rule_files: [builtin]
receivers:
  - name: slack
    slack: {{webhook_url: "{slack}"}}
  - name: pagerduty
    pagerduty: {{routing_key: "R0UT1NGKEY0000000000000000000000", url: "{pd}"}}
  - name: email
    email: {{smarthost: "127.0.0.1:{smtp}", tls: none, from: "netwarden@noc.test", to: ["noc@noc.test"]}}
  - name: hook
    webhook: {{url: "{hook}"}}
  - name: other
    webhook: {{url: "{other}"}}
route:
  receiver: other
  group_wait: 0s
  {ROUTE_TIMERS}
  routes:
    - {{match: ['alertname="InterfaceDown"'], receiver: slack, continue: true}}
    - {{match: ['alertname="InterfaceDown"'], receiver: pagerduty, continue: true}}
    - {{match: ['alertname="InterfaceDown"'], receiver: email, continue: true}}
    - {{match: ['alertname="InterfaceDown"'], receiver: hook}}
"#,
        slack = slack.url("/services/T0/B0/X"),
        pd = pd.url("/v2/enqueue"),
        smtp = smtp.port,
        hook = hook.url("/hook"),
        other = hook.url("/other"),
    );
    let api_port = free_tcp_port();
    let config = write_config(dir.path(), &tdb, api_port, &inventory, &alerting);
    let nw = Netwarden::start(&config, api_port, dir.path().join("netwarden.log")).await;
    let api = &nw.api;
    // Healthy fabric first: every device polled, nothing down.
    nw.wait_polls(8).await;
    assert!(api.alerts("InterfaceDown").await.is_empty(), "a healthy fabric has no interface down");

    // The cable leaf001–spine1 fails: both ends' interfaces go down and page all four receivers.
    let cut = Fault::LinkDown { a: "leaf001".into(), b: "spine1".into() };
    fabric.inject(&cut).unwrap();
    let alerts = api
        .wait_alerts("InterfaceDown", "both ends fire", |a| a.len() == 2 && a.iter().all(|x| x["state"] == "firing"))
        .await;
    let fps = fingerprints(&alerts);
    let devices: Vec<&str> = alerts.iter().map(|a| a["labels"]["device"].as_str().unwrap()).collect();
    assert!(devices.contains(&"leaf001") && devices.contains(&"spine1"), "{devices:?}");
    wait_requests(&pd, "PagerDuty triggers", |r| pd_keys(r, "trigger") == fps).await;
    wait_requests(&hook, "webhook firing", |r| hook_fps(r, "InterfaceDown", "firing") == fps).await;
    let slack_msgs = wait_requests(&slack, "Slack messages", |r| r.len() >= 2).await;
    assert!(slack_msgs.iter().all(|m| m.body["text"].as_str().unwrap().contains("FIRING")), "{slack_msgs:#?}");
    let mails = tokio::task::block_in_place(|| smtp.wait_for_messages(2, WAIT));
    assert!(mails.iter().all(|m| m["subject"].as_str().unwrap().contains("[FIRING:1] InterfaceDown")), "{mails:#?}");

    // A silence while it is firing: the alerts show as silenced, no new pages.
    let (status, body) = api
        .send(
            reqwest::Method::POST,
            "/api/v1/silences",
            json!({"matchers": ["alertname=\"InterfaceDown\""], "duration": "1h", "created_by": "alice", "comment": "fibre swap"}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let silence = body["id"].as_i64().unwrap();
    api.wait_alerts("InterfaceDown", "silenced", |a| {
        a.len() == 2 && a.iter().all(|x| x["suppressed_reason"] == format!("silenced by silence {silence}"))
    })
    .await;
    // An acknowledgement reaches PagerDuty (the incident is acknowledged there).
    let (status, body) = api
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/alerts/{}/ack", fps[0]),
            json!({"by": "alice", "comment": "on it"}),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    wait_requests(&pd, "PagerDuty acknowledge", |r| pd_keys(r, "acknowledge") == [fps[0].clone()]).await;
    let (status, _) =
        api.send(reqwest::Method::POST, "/api/v1/alerts/0000000000000000/ack", json!({"by": "alice"})).await;
    assert_eq!(status, 404, "acknowledging an unknown alert");

    // The cable is repaired while silenced: the resolves still go to every receiver that was paged.
    fabric.clear(&cut).unwrap();
    api.wait_alerts("InterfaceDown", "resolved", <[Value]>::is_empty).await;
    wait_requests(&pd, "PagerDuty resolves", |r| pd_keys(r, "resolve") == fps).await;
    wait_requests(&hook, "webhook resolved", |r| hook_fps(r, "InterfaceDown", "resolved") == fps).await;
    wait_requests(&slack, "Slack resolved", |r| {
        r.iter().filter(|m| m.body["text"].as_str().unwrap_or("").contains("RESOLVED")).count() >= 2
    })
    .await;
    let mails = tokio::task::block_in_place(|| smtp.wait_for_messages(5, WAIT));
    let subjects: Vec<&str> = mails.iter().map(|m| m["subject"].as_str().unwrap()).collect();
    assert_eq!(subjects.iter().filter(|s| s.contains("[RESOLVED]")).count(), 2, "{subjects:#?}");
    assert_eq!(subjects.iter().filter(|s| s.contains("[ACKNOWLEDGED]")).count(), 1, "{subjects:#?}");
    // Only the acknowledged alert was paged as acknowledged, and nothing re-paged while silenced.
    assert_eq!(pd_keys(&pd.requests(), "trigger"), fps);
    assert_eq!(pd.requests().iter().filter(|r| r.body["event_action"] == "trigger").count(), 2);
    no_problems(&pd);
    no_problems(&slack);

    // The history tells the story; every notification and attempt is visible.
    let h = api.get(&format!("/api/v1/alerts/{}/history", fps[0])).await;
    let mut changes: Vec<&str> =
        h.as_array().unwrap().iter().map(|e| e["change"].as_str().unwrap()).filter(|c| *c != "pending").collect();
    changes.reverse();
    assert_eq!(changes, ["firing", "suppressed", "acknowledged", "resolved"], "{h:#}");
    let delivered = api.get("/api/v1/notifications?state=delivered&receiver=pagerduty").await;
    assert_eq!(delivered.as_array().unwrap().len(), 5, "2 triggers, 1 acknowledge, 2 resolves: {delivered:#}");
    for n in delivered.as_array().unwrap() {
        let first = &n["attempt_log"][0];
        assert_eq!((first["outcome"].as_str(), first["http_status"].as_i64()), (Some("ok"), Some(202)), "{n:#}");
    }
    let (status, _) = api.send(reqwest::Method::DELETE, &format!("/api/v1/silences/{silence}"), Value::Null).await;
    assert_eq!(status, 204);
    assert!(api.get("/api/v1/silences").await.as_array().unwrap().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_link_sends_one_flapping_notification() {
    let dir = tempfile::tempdir().unwrap();
    let tdb = pg::fresh_db();
    let (fabric, inventory) = fabric("spines=1,leaves=1", dir.path()).await;
    let hook = CaptureServer::start(Reply::Status(200, "ok".into()), None).await;
    let rules = dir.path().join("rules.yaml");
    std::fs::write(
        &rules,
        r#"rules:
  - name: InterfaceDown
    source: interface
    when: admin_status == "up" && oper_status == "down"
    severity: major
    flap: {changes: "3", window: 10m}
    annotations: {summary: "{{ device }} {{ interface }} is down"}
"#,
    )
    .unwrap();
    let alerting = format!(
        "rule_files: [{rules}]\nreceivers:\n  - name: hook\n    webhook: {{url: \"{hook}\"}}\nroute:\n  receiver: hook\n  group_wait: 0s\n  {ROUTE_TIMERS}\n",
        rules = rules.display(),
        hook = hook.url("/hook"),
    );
    let api_port = free_tcp_port();
    let config = write_config(dir.path(), &tdb, api_port, &inventory, &alerting);
    let nw = Netwarden::start(&config, api_port, dir.path().join("netwarden.log")).await;
    let api = &nw.api;
    let cut = Fault::LinkDown { a: "leaf001".into(), b: "spine1".into() };
    // Down, up, down, up, down: each state seen by a poll before the next flip.
    for round in 0..5 {
        if round % 2 == 0 {
            fabric.inject(&cut).unwrap();
            api.wait_alerts("InterfaceDown", "down", |a| a.len() == 2 && a.iter().all(|x| x["state"] == "firing"))
                .await;
        } else {
            fabric.clear(&cut).unwrap();
            api.wait_alerts("InterfaceDown", "up", <[Value]>::is_empty).await;
        }
    }
    // The 4th change started flapping: one flapping notification per alert, no page after it.
    let flapping = api.notifications("flapping").await;
    assert_eq!(flapping.len(), 2, "{flapping:#?}");
    let firing = api.notifications("firing").await;
    let resolved = api.notifications("resolved").await;
    let first_flap = flapping.iter().map(|n| n["id"].as_i64().unwrap()).min().unwrap();
    assert!(
        firing.iter().chain(&resolved).all(|n| n["id"].as_i64().unwrap() < first_flap),
        "{firing:#?} {resolved:#?}"
    );
    let alerts = api.alerts("InterfaceDown").await;
    assert!(alerts.iter().all(|a| a["flapping"] == true && a["state"] == "firing"), "{alerts:#?}");
    let h = api.get(&format!("/api/v1/alerts/{}/history", alerts[0]["fingerprint"].as_str().unwrap())).await;
    assert!(h.as_array().unwrap().iter().any(|e| e["change"] == "flapping_started"), "{h:#}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spine_going_down_suppresses_the_leaves_behind_it() {
    let dir = tempfile::tempdir().unwrap();
    let tdb = pg::fresh_db();
    let (fabric, inventory) = fabric("spines=1,leaves=2", dir.path()).await;
    let hook = CaptureServer::start(Reply::Status(200, "ok".into()), None).await;
    let alerting = format!(
        "rule_files: [builtin]\nreceivers:\n  - name: hook\n    webhook: {{url: \"{hook}\"}}\nroute:\n  receiver: hook\n  group_wait: 3s\n  {ROUTE_TIMERS}\ntopology: {{root_role: spine}}\n",
        hook = hook.url("/hook"),
    );
    let api_port = free_tcp_port();
    let config = write_config(dir.path(), &tdb, api_port, &inventory, &alerting);
    let nw = Netwarden::start(&config, api_port, dir.path().join("netwarden.log")).await;
    let api = &nw.api;
    // The topology is learned from LLDP first: the spine is every leaf's only way to the rest.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let links = api.get("/api/v1/topology/full").await["links"].as_array().map_or(0, Vec::len);
        if links == 2 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "topology has {links} links:\n{}", tail(&nw.log, 30));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The spine dies, and the poller loses the leaves behind it too.
    for d in ["spine1", "leaf001", "leaf002"] {
        fabric.inject(&Fault::DeviceDown { device: d.into() }).unwrap();
    }
    let alerts = api
        .wait_alerts("DeviceDown", "all three down, leaves suppressed by the spine", |a| {
            a.len() == 3
                && a.iter().all(|x| x["state"] == "firing")
                && a.iter()
                    .filter(|x| x["labels"]["device"] != "spine1")
                    .all(|x| x["suppressed_reason"] == "suppressed by spine1")
        })
        .await;
    let spine = alerts.iter().find(|a| a["labels"]["device"] == "spine1").unwrap();
    assert!(spine["suppressed_reason"].is_null(), "{spine:#}");
    let spine_fp = spine["fingerprint"].as_str().unwrap().to_string();
    wait_requests(&hook, "the spine pages", |r| hook_fps(r, "DeviceDown", "firing") == [spine_fp.clone()]).await;
    // Past the group wait of the leaves' groups: still only the spine has paged.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(hook_fps(&hook.requests(), "DeviceDown", "firing"), std::slice::from_ref(&spine_fp));
    for d in ["spine1", "leaf001", "leaf002"] {
        fabric.clear(&Fault::DeviceDown { device: d.into() }).unwrap();
    }
    api.wait_alerts("DeviceDown", "recovered", <[Value]>::is_empty).await;
    wait_requests(&hook, "the spine resolves", |r| hook_fps(r, "DeviceDown", "resolved") == [spine_fp.clone()]).await;
    assert_eq!(hook_fps(&hook.requests(), "DeviceDown", "resolved"), [spine_fp]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_state_and_the_outbox_survive_a_kill_mid_delivery() {
    let dir = tempfile::tempdir().unwrap();
    let tdb = pg::fresh_db();
    let (fabric, inventory) = fabric("spines=1,leaves=1", dir.path()).await;
    // The webhook is down at first: deliveries fail and are retried.
    let hook = CaptureServer::start(Reply::Status(503, "unavailable".into()), None).await;
    let alerting = format!(
        "rule_files: [builtin]\nreceivers:\n  - name: hook\n    webhook: {{url: \"{hook}\"}}\nroute:\n  receiver: hook\n  group_wait: 0s\n  {ROUTE_TIMERS}\n",
        hook = hook.url("/hook"),
    );
    let api_port = free_tcp_port();
    let config = write_config(dir.path(), &tdb, api_port, &inventory, &alerting);
    let log = dir.path().join("netwarden.log");
    let mut nw = Netwarden::start(&config, api_port, log.clone()).await;
    let cut = Fault::LinkDown { a: "leaf001".into(), b: "spine1".into() };
    fabric.inject(&cut).unwrap();
    let alerts = nw
        .api
        .wait_alerts("InterfaceDown", "firing", |a| a.len() == 2 && a.iter().all(|x| x["state"] == "firing"))
        .await;
    let fps = fingerprints(&alerts);
    wait_requests(&hook, "failed attempts", |r| hook_fps_any(r, "InterfaceDown") == fps).await;
    // Kill between attempts (a row claimed at the moment of the kill would wait out its lease).
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let pending = nw.api.get("/api/v1/notifications?state=pending&receiver=hook").await;
        let retried = pending.as_array().unwrap().iter().filter(|n| n["attempts"].as_i64() >= Some(1)).count();
        if retried >= 2 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no retried notifications: {pending:#}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    nw.kill();

    // Back up, receiver healthy: the queued pages are delivered, the alerts are still firing and are
    // not paged a second time.
    hook.set_default(Reply::Status(200, "ok".into()));
    let nw = Netwarden::start(&config, api_port, log).await;
    wait_requests(&hook, "delivered after the restart", |r| hook_fps(r, "InterfaceDown", "firing") == fps).await;
    let alerts = nw.api.alerts("InterfaceDown").await;
    assert_eq!(fingerprints(&alerts), fps, "restored, not re-created");
    let h = nw.api.get(&format!("/api/v1/alerts/{}/history", fps[0])).await;
    assert_eq!(h.as_array().unwrap().iter().filter(|e| e["change"] == "firing").count(), 1, "{h:#}");
    // The repair after the restart resolves what was paged before it.
    fabric.clear(&cut).unwrap();
    wait_requests(&hook, "resolved after the restart", |r| hook_fps(r, "InterfaceDown", "resolved") == fps).await;
    let delivered_firing = hook
        .requests()
        .iter()
        .filter(|r| r.reply == Reply::Status(200, "ok".into()) && r.body["status"] == "firing")
        .filter(|r| r.body["commonLabels"]["alertname"] == "InterfaceDown")
        .count();
    assert_eq!(delivered_firing, 2, "one firing page per group, delivered once");
}

/// Webhook payloads about `rule`, whatever the answer, by fingerprint.
fn hook_fps_any(requests: &[Captured], rule: &str) -> Vec<String> {
    let mut fps: Vec<String> = requests
        .iter()
        .flat_map(|r| r.body["alerts"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["labels"]["alertname"] == rule)
        .map(|a| a["fingerprint"].as_str().unwrap_or_default().to_string())
        .collect();
    fps.sort();
    fps.dedup();
    fps
}

/// The README's first command: `netwarden serve --demo` simulates a fabric, and a fault injected
/// through the control port it prints shows as alerts; its devices' configurations are backed up
/// over SSH, and a configuration change becomes an alert with the diff; the planner proposes fixes for both faults.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_fabric_shows_alerts_for_an_injected_fault() {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let tdb = pg::fresh_db();
    let api_port = free_tcp_port();
    let empty = dir.path().join("none.yaml");
    std::fs::write(&empty, "devices: []\n").unwrap();
    let config = write_config(dir.path(), &tdb, api_port, &empty, "rule_files: [builtin]\n");
    let log = dir.path().join("netwarden.log");
    let nw = Netwarden::start_with(&config, api_port, log.clone(), &["--demo"]).await;
    let text = std::fs::read_to_string(&log).unwrap();
    let faults = text.lines().find(|l| l.trim_start().starts_with("faults")).expect("the demo prints its fault port");
    let words: Vec<&str> = faults.split_whitespace().collect();
    let nc = words.iter().position(|w| *w == "nc").expect("an nc command");
    let control = format!("{}:{}", words[nc + 1], words[nc + 2]);
    let devices = nw.api.get("/api/v1/devices").await;
    assert_eq!(devices.as_array().unwrap().len(), 8, "2 spines and 6 leaves");
    // A user looks first: the healthy fabric passes every intent (and its links are known).
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let results = nw.api.get("/api/v1/intents/results").await;
        let results = results.as_array().unwrap();
        if results.len() == 14 && results.iter().all(|r| r["verdict"] == "pass") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the demo fabric never passed: {results:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let stream = tokio::net::TcpStream::connect(&control).await.expect("the demo's control port");
    let (read, mut write) = stream.into_split();
    write.write_all(b"link-down leaf001 spine1\n").await.unwrap();
    let mut answer = String::new();
    BufReader::new(read).read_line(&mut answer).await.unwrap();
    assert_eq!(answer.trim(), "ok");
    let alerts = nw.api.wait_alerts("InterfaceDown", "the fault alerts", |a| a.len() == 2).await;
    let mut devices: Vec<&str> = alerts.iter().map(|a| a["labels"]["device"].as_str().unwrap()).collect();
    devices.sort();
    assert_eq!(devices, ["leaf001", "spine1"]);
    // The built-in intents see it too: leaf001 lost a spine and a session, spine1 a session.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let failing = nw.api.get("/api/v1/intents/results?verdict=fail").await;
        let mut got: Vec<(&str, &str)> = failing
            .as_array()
            .unwrap()
            .iter()
            .map(|r| (r["intent"].as_str().unwrap(), r["device"].as_str().unwrap()))
            .collect();
        got.sort();
        if got
            == [
                ("leaf-bgp-redundancy", "leaf001"),
                ("leaf-spine-cabling", "leaf001"),
                ("spine-sessions-established", "spine1"),
            ]
        {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "failing intents: {failing:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // And the planner proposes a fix: a bounce of the port at each end of the cut cable.
    for look in ["remediation http://", "NOC page   http://", "grafana    netwarden grafana provision --out "] {
        assert!(text.lines().any(|l| l.trim_start().starts_with(look)), "the demo prints {look:?}: {text}");
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let open = nw.api.get("/api/v1/remediations?status=open").await;
        let mut got: Vec<(&str, &str)> = open
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (p["device"].as_str().unwrap(), p["playbook"].as_str().unwrap()))
            .collect();
        got.sort();
        if got == [("leaf001", "link-down-bounce"), ("spine1", "link-down-bounce")] {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "remediation proposals: {open:#}\n{}", tail(&log, 40));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Each simulated device has its own address, so its linkDown trap is filed under it.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let traps = nw.api.get("/api/v1/traps?since=10m").await;
        let mut from: Vec<&str> = traps
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["kind"] == "link_down")
            .map(|t| t["device"].as_str().unwrap())
            .collect();
        from.sort();
        from.dedup();
        if from == ["leaf001", "spine1"] {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "linkDown traps filed under {from:?}: {traps:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The demo devices answer SSH: their running configurations are backed up.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let history = nw.api.get("/api/v1/devices/leaf001/configs").await;
        if history.as_array().is_some_and(|h| h.iter().any(|e| e["status"] == "ok" && e["sha256"].is_string())) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no backup of leaf001: {history:#}\n{}", tail(&log, 30));
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // An administrative BGP shutdown changes leaf001's configuration: the next backup finds the
    // change, and the ConfigChanged alert carries its diff.
    let stream = tokio::net::TcpStream::connect(&control).await.expect("the demo's control port");
    let (read, mut write) = stream.into_split();
    write.write_all(b"bgp-down leaf001 spine2\n").await.unwrap();
    let mut answer = String::new();
    BufReader::new(read).read_line(&mut answer).await.unwrap();
    assert_eq!(answer.trim(), "ok");
    let (status, body) =
        nw.api.send(reqwest::Method::POST, "/api/v1/devices/leaf001/configs/backup", Value::Null).await;
    assert!(status < 300, "on-demand backup: {status} {body}");
    let deadline = tokio::time::Instant::now() + WAIT;
    while nw.api.get("/api/v1/config-events?device=leaf001").await.as_array().is_none_or(Vec::is_empty) {
        let history = nw.api.get("/api/v1/devices/leaf001/configs?all=true").await;
        assert!(tokio::time::Instant::now() < deadline, "no config event; backups: {history:#}\n{body}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let alerts = nw.api.wait_alerts("ConfigChanged", "the change alerts", |a| a.len() == 1).await;
    let diff = alerts[0]["annotations"]["diff"].as_str().unwrap();
    assert!(diff.lines().any(|l| l.starts_with('+') && l.contains("shutdown")), "{diff}");
    assert_eq!(alerts[0]["labels"]["device"], "leaf001");
    // The shutdown is proposed its undoing, on the device that shut the session.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let open = nw.api.get("/api/v1/remediations?status=open&device=leaf001").await;
        if let Some(p) = open.as_array().unwrap().iter().find(|p| p["playbook"] == "bgp-neighbor-admin-shutdown") {
            assert!(p["commands"].to_string().contains("no neighbor"), "{p:#}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no BGP proposal: {open:#}\n{}", tail(&log, 40));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
