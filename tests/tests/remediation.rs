//! Remediation proposals end to end: `netwarden serve` (the real binary) checks the built-in
//! intents on a simulated fabric and its planner turns violations into proposals with the built-in
//! playbooks. An administrative BGP shutdown gets "no neighbor … shutdown" on the device that shut
//! it, and nothing on the spine that only sees the session drop; a port shut on a leaf gets "no
//! shutdown" there, and no bounce of the spine's port facing it (the far end is the cause). Running
//! a proposal's commands in the device's CLI (as the executor will) repairs the fabric, and the
//! proposal is retired as obsolete with why. Every proposal carries its evidence and audit trail.

use collector::sim::{Fabric, Fault, cli::Shell};
use netwarden_tests::pg;
use netwarden_tests::serve::{Api, Netwarden, WAIT, fabric, write_config};
use netwarden_tests::util::{free_tcp_port, tail};
use serde_json::Value;
use std::time::Duration;

async fn wait_proposals(nw: &Netwarden, query: &str, what: &str, ok: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let v = nw.api.get(&format!("/api/v1/remediations{query}")).await;
        let list = v.as_array().unwrap_or_else(|| panic!("{what}: not a list: {v}")).clone();
        if ok(&list) {
            return list;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: proposals are {v:#}\n{}", tail(&nw.log, 30));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs CLI lines on a simulated device as an operator (or the executor) would, each checked.
fn run_cli(fabric: &Fabric, device: &str, lines: &[String]) {
    let index = fabric.model().devices.iter().position(|d| d.name == device).expect("device in the fabric");
    let mut shell = Shell::new(fabric, index);
    for line in lines {
        let reply = shell.run(fabric, line);
        assert!(reply.ok, "{device}: {line:?} was refused: {}", reply.output);
    }
}

fn lines(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|l| l.as_str().unwrap().to_string()).collect()
}

async fn all_intents_pass(api: &Api) -> bool {
    let r = api.get("/api/v1/intents/results").await;
    let r = r.as_array().unwrap();
    r.len() == 6 && r.iter().all(|r| r["verdict"] == "pass")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn violations_get_proposals_whose_commands_repair_the_fabric() {
    let dir = tempfile::tempdir().unwrap();
    let tdb = pg::fresh_db();
    let (fabric, inventory) = fabric("spines=2,leaves=2", dir.path()).await;
    let api_port = free_tcp_port();
    let config = write_config(dir.path(), &tdb, api_port, &inventory, "rule_files: [builtin]\n");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("[remediation]\ninterval = \"300ms\"\n");
    std::fs::write(&config, text).unwrap();
    let log = dir.path().join("netwarden.log");
    let nw = Netwarden::start(&config, api_port, log.clone()).await;

    // Healthy: every intent passes and nothing is proposed.
    let deadline = tokio::time::Instant::now() + WAIT;
    while !all_intents_pass(&nw.api).await {
        assert!(tokio::time::Instant::now() < deadline, "the fabric never passed:\n{}", tail(&log, 30));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    nw.wait_polls(16).await;
    assert_eq!(nw.api.get("/api/v1/remediations").await, Value::Array(vec![]));

    // leaf001 shuts its session to spine2: one proposal, on leaf001, for that neighbour.
    let bgp = Fault::BgpDown { a: "leaf001".into(), b: "spine2".into() };
    fabric.inject(&bgp).unwrap();
    let open = wait_proposals(&nw, "?status=open", "the BGP shutdown is proposed a fix", |l| !l.is_empty()).await;
    assert_eq!(open.len(), 1, "{open:#?}");
    let p = &open[0];
    let peer = p["evidence"]["bgp_peer"]["peer"].as_str().unwrap().to_string();
    let local_as = p["evidence"]["bgp_peer"]["local_as"].as_str().unwrap().to_string();
    assert_eq!(p["device"], "leaf001");
    assert_eq!(p["intent"], "leaf-bgp-redundancy");
    assert_eq!(p["playbook"], "bgp-neighbor-admin-shutdown");
    assert_eq!(p["target"], format!("bgp_peer {peer}"));
    assert_eq!(p["status"], "proposed");
    assert_eq!((p["risk"].as_str(), p["approval_required"].as_bool()), (Some("medium"), Some(true)));
    assert_eq!(
        lines(&p["commands"]),
        ["configure terminal", &format!("router bgp {local_as}"), &format!("no neighbor {peer} shutdown"), "end"]
    );
    assert_eq!(lines(&p["rollback"])[2], format!("neighbor {peer} shutdown"));
    assert_eq!(p["evidence"]["bgp_peer"]["admin_status"], "stop");
    assert_eq!(p["evidence"]["failing_checks"][0]["check"], "bgp_established");
    assert!(p["diagnosis"].as_str().unwrap().contains("administratively shut down"), "{p:#}");
    // The spine whose session dropped fails its intent too, but the fix is not there.
    let spine = nw.api.get("/api/v1/intents/results?device=spine2&verdict=fail").await;
    assert_eq!(spine.as_array().unwrap().len(), 1, "{spine:#}");
    let id = p["id"].as_i64().unwrap();
    let one = nw.api.get(&format!("/api/v1/remediations/{id}")).await;
    assert_eq!(one["events"][0]["status"], "proposed");
    assert_eq!(one["events"][0]["actor"], "planner");
    assert_eq!(one["events"][0]["note"], "risk medium: needs approval");

    // Its commands, run in leaf001's CLI, bring the session back; the proposal retires itself.
    run_cli(&fabric, "leaf001", &lines(&p["commands"]));
    let done = wait_proposals(&nw, "?device=leaf001&status=obsolete", "the fixed violation retires", |l| {
        l.iter().any(|x| x["id"] == id)
    })
    .await;
    assert_eq!(done[0]["status_note"], "the intent passes again");
    let deadline = tokio::time::Instant::now() + WAIT;
    while !all_intents_pass(&nw.api).await {
        assert!(tokio::time::Instant::now() < deadline, "the fix did not repair:\n{}", tail(&log, 30));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let trail = nw.api.get(&format!("/api/v1/remediations/{id}")).await;
    let statuses: Vec<(&str, Option<&str>)> = trail["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["status"].as_str().unwrap(), e["previous"].as_str()))
        .collect();
    assert_eq!(statuses, [("proposed", None), ("obsolete", Some("proposed"))]);

    // leaf002 shuts its port to spine2 (eth2): "no shutdown" there; the spine's port, enabled but
    // down because the far end is shut, gets no bounce.
    run_cli(&fabric, "leaf002", &["configure terminal", "interface eth2", "shutdown", "end"].map(String::from));
    wait_proposals(&nw, "?status=open", "the shut port is proposed a fix", |l| !l.is_empty()).await;
    // Both leaf002 intents fail (cabling and BGP) and spine2's: still one proposal, for the one port.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let f = nw.api.get("/api/v1/intents/results?verdict=fail").await;
        if f.as_array().unwrap().len() == 3 {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "leaf002 and spine2 should fail: {f:#}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await; // a few more sweeps with every violation known
    let open = nw.api.get("/api/v1/remediations?status=open").await.as_array().unwrap().clone();
    assert_eq!(open.len(), 1, "{open:#?}");
    let p = &open[0];
    assert_eq!((p["device"].as_str(), p["playbook"].as_str()), (Some("leaf002"), Some("interface-admin-down")));
    assert_eq!(p["target"], "interface eth2");
    assert_eq!(lines(&p["commands"]), ["configure terminal", "interface eth2", "no shutdown", "end"]);
    assert_eq!(p["evidence"]["interface"]["lost_neighbor"], "spine2");
    assert!(p["title"].as_str().unwrap().contains("cabled to spine2"), "{p:#}");
    run_cli(&fabric, "leaf002", &lines(&p["commands"]));
    let deadline = tokio::time::Instant::now() + WAIT;
    while !all_intents_pass(&nw.api).await {
        assert!(tokio::time::Instant::now() < deadline, "no shutdown did not repair:\n{}", tail(&log, 30));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    wait_proposals(&nw, "?status=open", "the port's proposal retires", <[Value]>::is_empty).await;

    // A cut cable: a bounce proposed at both ends (low risk), each diagnosing the other end.
    let cut = Fault::LinkDown { a: "leaf001".into(), b: "spine1".into() };
    fabric.inject(&cut).unwrap();
    let open = wait_proposals(&nw, "?status=open", "the cut cable", |l| l.len() == 2).await;
    let mut got: Vec<(&str, &str, &str)> = open
        .iter()
        .map(|p| (p["device"].as_str().unwrap(), p["playbook"].as_str().unwrap(), p["risk"].as_str().unwrap()))
        .collect();
    got.sort();
    assert_eq!(got, [("leaf001", "link-down-bounce", "low"), ("spine1", "link-down-bounce", "low")]);
    fabric.clear(&cut).unwrap();
    wait_proposals(&nw, "?status=open", "the mended cable's proposals retire", <[Value]>::is_empty).await;

    // Bad requests are told what is wrong.
    let (status, body) = nw.api.send(reqwest::Method::GET, "/api/v1/remediations?status=done", Value::Null).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.to_string().contains("expected open or one of proposed"), "{body}");
    let (status, _) = nw.api.send(reqwest::Method::GET, "/api/v1/remediations/999999", Value::Null).await;
    assert_eq!(status, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_playbook_file_stops_the_start_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let tdb = pg::fresh_db();
    let (_fabric, inventory) = fabric("spines=1,leaves=1", dir.path()).await;
    let api_port = free_tcp_port();
    let config = write_config(dir.path(), &tdb, api_port, &inventory, "rule_files: [builtin]\n");
    let playbooks = dir.path().join("playbooks.yaml");
    std::fs::write(
        &playbooks,
        "playbooks:\n  - name: p\n    for_each: interface\n    risk: low\n    title: '{{ item.nam }}'\n    commands: x\n    rollback: y\n    verify: {within: 1m}\n",
    )
    .unwrap();
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str(&format!("[remediation]\nplaybooks = [\"builtin\", \"{}\"]\n", playbooks.display()));
    std::fs::write(&config, text).unwrap();
    let out = std::process::Command::new(netwarden_tests::serve::netwarden_bin())
        .args(["--config", &config.display().to_string(), "serve"])
        .env("NETWARDEN_SECRET_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:5: playbook \"p\": title: undefined value", playbooks.display())), "{err}");
}
