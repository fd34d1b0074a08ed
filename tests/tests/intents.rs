//! Intents end to end: `netwarden serve` (the real binary) checks the built-in intents on a
//! simulated spine-leaf fabric. A healthy fabric passes every intent; an administrative BGP
//! shutdown and a cut cable make exactly the affected devices fail, with what was observed against
//! what was expected; the violations become alerts (a rule on the `intent` source); the history
//! records each verdict change; the repair brings every verdict back to pass and resolves the
//! alerts. A restart keeps the verdicts and when they began.

use collector::sim::Fault;
use netwarden_tests::pg;
use netwarden_tests::serve::{Api, Netwarden, WAIT, fabric, write_config};
use netwarden_tests::util::{free_tcp_port, tail};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// Verdict per (intent, device), from the API.
async fn verdicts(api: &Api) -> BTreeMap<(String, String), Value> {
    let rows = api.get("/api/v1/intents/results").await;
    rows.as_array()
        .unwrap()
        .iter()
        .map(|r| ((r["intent"].as_str().unwrap().to_string(), r["device"].as_str().unwrap().to_string()), r.clone()))
        .collect()
}

/// Waits until the verdicts satisfy `ok`.
async fn wait_verdicts(
    nw: &Netwarden,
    what: &str,
    ok: impl Fn(&BTreeMap<(String, String), Value>) -> bool,
) -> BTreeMap<(String, String), Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let v = verdicts(&nw.api).await;
        if ok(&v) {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: verdicts are {v:#?}\n{}", tail(&nw.log, 30));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn verdict<'a>(v: &'a BTreeMap<(String, String), Value>, intent: &str, device: &str) -> &'a str {
    v.get(&(intent.to_string(), device.to_string())).and_then(|r| r["verdict"].as_str()).unwrap_or("absent")
}

fn failing(v: &BTreeMap<(String, String), Value>) -> Vec<(String, String)> {
    v.iter().filter(|(_, r)| r["verdict"] == "fail").map(|(k, _)| k.clone()).collect()
}

const BUILTIN: [&str; 3] = ["leaf-bgp-redundancy", "leaf-spine-cabling", "spine-sessions-established"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_builtin_intents_follow_faults_on_a_fabric_and_alert_on_violations() {
    let dir = tempfile::tempdir().unwrap();
    let tdb = pg::fresh_db();
    let (fabric, inventory) = fabric("spines=2,leaves=2", dir.path()).await;
    // The built-in rules (IntentViolated, for: 30s) and a rule of the site's own on one intent,
    // without delay, to see alerts quickly.
    let rules = dir.path().join("intent-rules.yaml");
    std::fs::write(
        &rules,
        r#"rules:
  - name: FabricRedundancyLost
    source: intent
    match: ['intent="leaf-bgp-redundancy"']
    when: state == "fail"
    severity: critical
    annotations:
      summary: "{{ device }}: {{ message }}"
"#,
    )
    .unwrap();
    let alerting = format!("rule_files: [builtin, {}]\n", rules.display());
    let api_port = free_tcp_port();
    let config = write_config(dir.path(), &tdb, api_port, &inventory, &alerting);
    let log = dir.path().join("netwarden.log");
    let nw = Netwarden::start(&config, api_port, log.clone()).await;

    // The definitions, as loaded.
    let intents = nw.api.get("/api/v1/intents").await;
    let names: Vec<&str> = intents.as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap()).collect();
    assert_eq!(names, BUILTIN);
    assert_eq!(intents[0]["require"][0], "bgp_established >= 2");
    assert!(intents[1]["defined_at"].as_str().unwrap().starts_with("builtin:"), "{intents:#}");

    // Healthy: every leaf and every spine passes what applies to it, and only that.
    let healthy = |v: &BTreeMap<(String, String), Value>| v.len() == 6 && v.values().all(|r| r["verdict"] == "pass");
    let v = wait_verdicts(&nw, "a healthy fabric passes", healthy).await;
    for leaf in ["leaf001", "leaf002"] {
        assert_eq!(verdict(&v, "leaf-bgp-redundancy", leaf), "pass");
        assert_eq!(verdict(&v, "leaf-spine-cabling", leaf), "pass");
        assert_eq!(verdict(&v, "spine-sessions-established", leaf), "absent", "a leaf is not a spine");
    }
    let check = &v[&("leaf-spine-cabling".to_string(), "leaf001".to_string())]["checks"][0];
    assert_eq!((check["observed"].as_str(), check["expected"].as_str()), (Some("2"), Some("at least 2")));

    // leaf001 shuts its BGP session to spine2: leaf001 has one session, spine2 one session down.
    let bgp = Fault::BgpDown { a: "leaf001".into(), b: "spine2".into() };
    fabric.inject(&bgp).unwrap();
    let v = wait_verdicts(&nw, "the BGP shutdown fails two intents", |v| failing(v).len() == 2).await;
    assert_eq!(
        failing(&v),
        [
            ("leaf-bgp-redundancy".to_string(), "leaf001".to_string()),
            ("spine-sessions-established".to_string(), "spine2".to_string())
        ]
    );
    let leaf = &v[&("leaf-bgp-redundancy".to_string(), "leaf001".to_string())];
    assert_eq!(leaf["message"], "bgp_established: 1, expected at least 2");
    let spine = &v[&("spine-sessions-established".to_string(), "spine2".to_string())];
    assert!(spine["message"].as_str().unwrap().contains("bgp_established = 1"), "{spine:#}");
    assert!(spine["message"].as_str().unwrap().contains("bgp_peers = 2"), "{spine:#}");
    let alerts = nw.api.wait_alerts("FabricRedundancyLost", "the violation alert", |a| a.len() == 1).await;
    assert_eq!(alerts[0]["labels"]["device"], "leaf001");
    assert_eq!(alerts[0]["labels"]["intent"], "leaf-bgp-redundancy");
    assert_eq!(alerts[0]["severity"], "critical");
    assert_eq!(alerts[0]["annotations"]["summary"], "leaf001: bgp_established: 1, expected at least 2");
    // The built-in rule sees both violations (pending for its 30 s, or firing).
    let builtin = nw.api.wait_alerts("IntentViolated", "the built-in rule", |a| a.len() == 2).await;
    let mut on: Vec<&str> = builtin.iter().map(|a| a["labels"]["device"].as_str().unwrap()).collect();
    on.sort();
    assert_eq!(on, ["leaf001", "spine2"]);

    // The cable leaf002–spine1 is cut as well: leaf002 loses spine1 as a neighbour and a session.
    let cut = Fault::LinkDown { a: "leaf002".into(), b: "spine1".into() };
    fabric.inject(&cut).unwrap();
    let v = wait_verdicts(&nw, "the cut cable fails leaf002's intents", |v| {
        verdict(v, "leaf-spine-cabling", "leaf002") == "fail" && verdict(v, "leaf-bgp-redundancy", "leaf002") == "fail"
    })
    .await;
    let cabling = &v[&("leaf-spine-cabling".to_string(), "leaf002".to_string())];
    assert_eq!(cabling["message"], "lldp_neighbors role=spine: 1, expected at least 2 (missing spine1)");
    assert_eq!(verdict(&v, "leaf-spine-cabling", "leaf001"), "pass", "leaf001 is still cabled to both");

    // The repair: every verdict passes again and the alerts resolve.
    fabric.clear(&bgp).unwrap();
    fabric.clear(&cut).unwrap();
    wait_verdicts(&nw, "the repaired fabric passes", healthy).await;
    nw.api.wait_alerts("FabricRedundancyLost", "the violation resolves", <[Value]>::is_empty).await;
    nw.api.wait_alerts("IntentViolated", "the built-in rule resolves", <[Value]>::is_empty).await;

    // The history holds each change of leaf001's redundancy: pass → fail → pass.
    let history = nw.api.get("/api/v1/intents/history?intent=leaf-bgp-redundancy&device=leaf001").await;
    let changes: Vec<(Option<&str>, &str)> = history
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .map(|e| (e["previous"].as_str(), e["verdict"].as_str().unwrap()))
        .collect();
    assert_eq!(changes, [(None, "pass"), (Some("pass"), "fail"), (Some("fail"), "pass")], "{history:#}");

    // One intent's page: its verdict on every device it scopes.
    let one = nw.api.get("/api/v1/intents/leaf-spine-cabling").await;
    assert_eq!(one["devices"]["pass"], 2, "{one:#}");
    assert_eq!(one["results"].as_array().unwrap().len(), 2);
    let (status, _) = nw.api.send(reqwest::Method::GET, "/api/v1/intents/no-such-intent", Value::Null).await;
    assert_eq!(status, 404);
    let (status, body) = nw.api.send(reqwest::Method::GET, "/api/v1/intents/results?verdict=maybe", Value::Null).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("pass, fail or unknown"), "{body}");

    // A restart keeps the verdicts and when they began: re-evaluating after the restart records
    // no change, and the next real change is recorded against the restored verdict.
    let before = verdicts(&nw.api).await;
    let events_before = nw.api.get("/api/v1/intents/history?limit=5000").await.as_array().unwrap().len();
    drop(nw);
    let nw = Netwarden::start(&config, api_port, log.clone()).await;
    nw.wait_polls(8).await;
    fabric.inject(&bgp).unwrap();
    let v = wait_verdicts(&nw, "the BGP shutdown after the restart", |v| failing(v).len() == 2).await;
    for (k, r) in &v {
        if r["verdict"] == "pass" {
            assert_eq!(r["since"], before[k]["since"], "{k:?}: the verdict's start is kept across the restart");
        }
    }
    let deadline = tokio::time::Instant::now() + WAIT;
    let history = loop {
        let h = nw.api.get("/api/v1/intents/history?limit=5000").await;
        if h.as_array().unwrap().len() >= events_before + 2 {
            break h;
        }
        assert!(tokio::time::Instant::now() < deadline, "the new failures are not in the history: {h:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let new: Vec<(&str, &str, Option<&str>, &str)> = history.as_array().unwrap()
        [..history.as_array().unwrap().len() - events_before]
        .iter()
        .map(|e| {
            (
                e["intent"].as_str().unwrap(),
                e["device"].as_str().unwrap(),
                e["previous"].as_str(),
                e["verdict"].as_str().unwrap(),
            )
        })
        .collect();
    let mut new = new;
    new.sort();
    assert_eq!(
        new,
        [
            ("leaf-bgp-redundancy", "leaf001", Some("pass"), "fail"),
            ("spine-sessions-established", "spine2", Some("pass"), "fail")
        ],
        "only the real changes are recorded after a restart"
    );
}
