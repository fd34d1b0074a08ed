//! Escalation end to end: `netwarden serve` (the real binary) polls a simulated fabric on loopback and
//! pages webhook receivers on real local HTTP servers along an escalation policy (`oncall` 4 s after
//! the first page, `manager` 12 s after it). An alert nobody acknowledges climbs step by step; one
//! acknowledged through the API before the first step never escalates; one resolved between the
//! steps stops climbing; resolves reach every receiver that was told, and only those.
//!
//! Nothing here measures time: each step is awaited (bounded) as an event, and an absence is
//! asserted only once a later alert with the same policy, paged after the one in question, has
//! climbed past the step that would have produced it.

use collector::sim::Fault;
use netwarden_tests::pg;
use netwarden_tests::receivers::{CaptureServer, Reply};
use netwarden_tests::serve::{Api, Netwarden, fabric, hook_fps, wait_requests, write_config};
use netwarden_tests::util::free_tcp_port;
use serde_json::{Value, json};
use std::collections::BTreeSet;

const RULE: &str = "InterfaceDown";

/// The firing InterfaceDown alert on `device` (the leaf end of a failed link), once the API shows it.
async fn firing_on(api: &Api, device: &str) -> String {
    let alerts = api
        .wait_alerts(RULE, &format!("{device} firing"), |a| {
            a.iter().any(|x| x["labels"]["device"] == device && x["state"] == "firing")
        })
        .await;
    let a = alerts.iter().find(|x| x["labels"]["device"] == device).unwrap();
    a["fingerprint"].as_str().unwrap().to_string()
}

/// Waits until `server` has received a webhook with alert `fp` in `status` (firing or resolved).
async fn wait_told(server: &CaptureServer, who: &str, fp: &str, status: &str) {
    wait_requests(server, &format!("{who} told {fp} is {status}"), |r| {
        hook_fps(r, RULE, status).iter().any(|f| f == fp)
    })
    .await;
}

/// Every outbox row about alert `fp`, as (receiver, kind, escalation level), sorted.
async fn outbox_rows(api: &Api, fp: &str) -> Vec<(String, String, u64)> {
    let rows = api.get("/api/v1/notifications?limit=1000").await;
    let mut out: Vec<(String, String, u64)> = rows
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["notification"]["alerts"].as_array().is_some_and(|a| a.iter().any(|x| x["fingerprint"] == fp)))
        .map(|r| {
            (
                r["receiver"].as_str().unwrap().to_string(),
                r["kind"].as_str().unwrap().to_string(),
                r["notification"]["escalation_level"].as_u64().unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

fn rows(expected: &[(&str, &str, u64)]) -> Vec<(String, String, u64)> {
    let mut v: Vec<(String, String, u64)> =
        expected.iter().map(|(r, k, l)| (r.to_string(), k.to_string(), *l)).collect();
    v.sort();
    v
}

fn set(fps: &[&String]) -> BTreeSet<String> {
    fps.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unacknowledged_pages_escalate_step_by_step_and_acknowledged_or_resolved_ones_stop() {
    let dir = tempfile::tempdir().unwrap();
    let tdb = pg::fresh_db();
    let (fabric, inventory) = fabric("spines=1,leaves=3", dir.path()).await;
    let ok = || Reply::Status(200, "ok".into());
    let primary = CaptureServer::start(ok(), None).await;
    let oncall = CaptureServer::start(ok(), None).await;
    let manager = CaptureServer::start(ok(), None).await;
    let others = CaptureServer::start(ok(), None).await;
    // One group per alert (interface in group_by), so each alert escalates on its own. Only the
    // leaf ends of failed links take the escalating route; everything else goes to `others`.
    let alerting = format!(
        r#"rule_files: [builtin]
receivers:
  - {{name: primary, webhook: {{url: "{primary}"}}}}
  - {{name: oncall, webhook: {{url: "{oncall}"}}}}
  - {{name: manager, webhook: {{url: "{manager}"}}}}
  - {{name: others, webhook: {{url: "{others}"}}}}
route:
  receiver: others
  group_by: [alertname, device, interface]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - {{match: ['alertname="{RULE}"', 'device=~"leaf.*"'], receiver: primary, escalation: page}}
escalations:
  - {{name: page, steps: [{{after: 4s, receiver: oncall}}, {{after: 12s, receiver: manager}}]}}
"#,
        primary = primary.url("/hook"),
        oncall = oncall.url("/hook"),
        manager = manager.url("/hook"),
        others = others.url("/hook"),
    );
    let api_port = free_tcp_port();
    let config = write_config(dir.path(), &tdb, api_port, &inventory, &alerting);
    let nw = Netwarden::start(&config, api_port, dir.path().join("netwarden.log")).await;
    let api = &nw.api;
    nw.wait_polls(8).await;
    assert!(api.alerts(RULE).await.is_empty(), "a healthy fabric has no interface down");
    let link = |leaf: &str| Fault::LinkDown { a: leaf.into(), b: "spine1".into() };

    // 1. leaf002's uplink fails; the alert is acknowledged through the API as soon as it shows,
    //    well inside the 4 s before the first step.
    fabric.inject(&link("leaf002")).unwrap();
    let acked = firing_on(api, "leaf002").await;
    let (status, body) = api
        .send(reqwest::Method::POST, &format!("/api/v1/alerts/{acked}/ack"), json!({"by": "alice", "comment": "mine"}))
        .await;
    assert_eq!(status, 204, "{body}");
    wait_told(&primary, "primary", &acked, "firing").await;

    // 2. leaf003's uplink fails after that page; nobody acknowledges: `oncall` is told. It is
    //    repaired before the second step: both receivers told get the resolve.
    fabric.inject(&link("leaf003")).unwrap();
    let repaired = firing_on(api, "leaf003").await;
    wait_told(&primary, "primary", &repaired, "firing").await;
    wait_told(&oncall, "oncall", &repaired, "firing").await;
    fabric.clear(&link("leaf003")).unwrap();
    wait_told(&primary, "primary", &repaired, "resolved").await;
    wait_told(&oncall, "oncall", &repaired, "resolved").await;

    // 3. leaf001's uplink fails after both were paged, and nobody acknowledges: it climbs to
    //    `oncall` and then to `manager`.
    fabric.inject(&link("leaf001")).unwrap();
    let climbing = firing_on(api, "leaf001").await;
    wait_told(&primary, "primary", &climbing, "firing").await;
    wait_told(&oncall, "oncall", &climbing, "firing").await;
    wait_told(&manager, "manager", &climbing, "firing").await;

    // Its steps came due after the same steps of the two earlier alerts (same policy, paged later),
    // and each step is committed to the outbox before it is delivered: had the acknowledged alert
    // reached `oncall`, or the repaired one `manager`, it would be in the outbox by now.
    assert_eq!(
        outbox_rows(api, &acked).await.into_iter().filter(|(r, _, _)| r != "primary").collect::<Vec<_>>(),
        [],
        "the acknowledged alert went beyond its route's receiver"
    );
    assert_eq!(
        outbox_rows(api, &repaired).await,
        rows(&[
            ("primary", "firing", 0),
            ("primary", "resolved", 0),
            ("oncall", "firing", 1),
            ("oncall", "resolved", 0)
        ]),
        "the repaired alert: paged, escalated once, resolved to both, never to manager"
    );
    assert_eq!(
        hook_fps(&oncall.requests(), RULE, "firing"),
        set(&[&repaired, &climbing]).into_iter().collect::<Vec<_>>()
    );
    assert_eq!(hook_fps(&manager.requests(), RULE, "firing"), [climbing.clone()]);

    // 4. Repairs: the climbing alert's resolve reaches all three receivers told; the acknowledged
    //    one's reaches only `primary`, the only receiver it was paged to.
    fabric.clear(&link("leaf001")).unwrap();
    fabric.clear(&link("leaf002")).unwrap();
    for (server, who) in [(&primary, "primary"), (&oncall, "oncall"), (&manager, "manager")] {
        wait_told(server, who, &climbing, "resolved").await;
    }
    wait_told(&primary, "primary", &acked, "resolved").await;
    api.wait_alerts(RULE, "everything repaired", <[Value]>::is_empty).await;
    assert_eq!(
        outbox_rows(api, &climbing).await,
        rows(&[
            ("primary", "firing", 0),
            ("primary", "resolved", 0),
            ("oncall", "firing", 1),
            ("oncall", "resolved", 0),
            ("manager", "firing", 2),
            ("manager", "resolved", 0)
        ])
    );
    // A flush writes all its resolves in one transaction: none to anyone else is still to come.
    let acked_rows = outbox_rows(api, &acked).await;
    assert!(acked_rows.iter().all(|(r, _, _)| r == "primary"), "{acked_rows:?}");
    assert!(acked_rows.iter().any(|(_, k, _)| k == "resolved"), "{acked_rows:?}");
    assert_eq!(
        hook_fps(&oncall.requests(), RULE, "resolved"),
        set(&[&repaired, &climbing]).into_iter().collect::<Vec<_>>()
    );
    assert_eq!(hook_fps(&manager.requests(), RULE, "resolved"), [climbing.clone()]);
    // The spine ends went to `others` and nowhere else.
    assert_eq!(hook_fps(&others.requests(), RULE, "firing").len(), 3, "one per failed link's spine end");
    let h = api.get(&format!("/api/v1/alerts/{acked}/history")).await;
    assert!(h.as_array().unwrap().iter().any(|e| e["change"] == "acknowledged"), "{h:#}");
}
