//! The NOC page end to end: `netwarden serve` (the real binary) on a simulated spine-leaf fabric
//! serves `/noc` (and `/`). A healthy fabric shows every device up and nothing failing; a BGP
//! shutdown and a cut cable show the firing alerts most severe first, the failing intents with
//! the affected devices and what was observed against what was expected, the interfaces down and
//! the state changes, each with a link to its JSON; an acknowledgement shows on its alert.
//! `?site=` shows one site; a device and a site whose names hold markup, and an acknowledgement
//! comment with a script, are shown escaped; a table the page cannot read (renamed under it)
//! becomes an error box in its section while the rest of the page renders.

use collector::sim::Fault;
use netwarden_tests::pg;
use netwarden_tests::serve::{Api, Netwarden, WAIT, fabric, write_config};
use netwarden_tests::util::{free_tcp_port, free_udp_port, tail};
use serde_json::{Value, json};
use std::time::Duration;

/// GET a page of the NOC: it is HTML, answered 200, never empty.
async fn page(api: &Api, path: &str) -> String {
    let r = api.http.get(format!("{}{path}", api.base)).send().await.expect("NOC page request");
    assert_eq!(r.status().as_u16(), 200, "GET {path}");
    let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    assert!(ct.starts_with("text/html"), "GET {path}: content type {ct}");
    let body = r.text().await.expect("NOC page body");
    assert!(body.starts_with("<!DOCTYPE html>") && body.ends_with("</html>"), "GET {path}: {body}");
    body
}

/// Waits until the page at `path` satisfies `ok`.
async fn wait_page(nw: &Netwarden, path: &str, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let p = page(&nw.api, path).await;
        if ok(&p) {
            return p;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: the page is\n{p}\n{}", tail(&nw.log, 30));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// The markup of one section of the page (empty if the page has none with that id).
fn section<'a>(page: &'a str, id: &str) -> &'a str {
    let Some(start) = page.find(&format!("<section id=\"{id}\"")) else { return "" };
    let len = page[start..].find("</section>").expect("a section ends");
    &page[start..start + len]
}

/// The number on a header tile.
fn tile(page: &str, id: &str) -> String {
    let marker = format!("id=\"{id}\"");
    let Some(at) = page.find(&marker) else { return format!("no tile {id}") };
    let rest = &page[at..];
    let b = rest.find("<b>").expect("a tile's number") + 3;
    rest[b..b + rest[b..].find("</b>").expect("a tile's number ends")].to_string()
}

/// The table rows of a section that contain `text`.
fn rows_with<'a>(section: &'a str, text: &str) -> Vec<&'a str> {
    section.split("<tr").filter(|r| r.contains(text)).collect()
}

/// Every fabric device up, none down or failing.
fn all_up(p: &str, n: usize) -> bool {
    tile(p, "devices-total") == n.to_string()
        && tile(p, "devices-up") == n.to_string()
        && tile(p, "devices-down") == "0"
        && tile(p, "devices-unreachable") == "0"
        && tile(p, "polls-failing") == "0"
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_noc_page_shows_the_fabric_its_faults_and_one_site_escaped_and_survives_a_failing_query() {
    let dir = tempfile::tempdir().unwrap();
    let tdb = pg::fresh_db();
    let (fabric, inventory) = fabric("spines=2,leaves=2", dir.path()).await;
    // An intent violation alerts at once (the built-in IntentViolated waits 30 s).
    let rules = dir.path().join("noc-rules.yaml");
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
    let api_port = free_tcp_port();
    let config =
        write_config(dir.path(), &tdb, api_port, &inventory, &format!("rule_files: [builtin, {}]\n", rules.display()));
    let nw = Netwarden::start(&config, api_port, dir.path().join("netwarden.log")).await;

    // Healthy: every device up, every intent evaluated and passing, nothing firing.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let results = nw.api.get("/api/v1/intents/results").await;
        let results = results.as_array().unwrap();
        if results.len() == 6 && results.iter().all(|r| r["verdict"] == "pass") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the fabric's intents do not pass: {results:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let p = wait_page(&nw, "/noc", "a healthy fabric", |p| {
        all_up(p, 4) && section(p, "alerts").contains("No firing alerts.")
    })
    .await;
    assert!(section(&p, "intents").contains("No failing intents."), "{p}");
    assert!(section(&p, "devices-down").contains("Every device answers."), "{p}");
    assert!(section(&p, "interfaces-down").contains("No interface is down."), "{p}");
    assert!(section(&p, "remediations").contains("No open proposals."), "{p}");
    assert!(p.contains(r#"<meta http-equiv="refresh" content="10">"#), "refreshes every 10 s by default: {p}");
    assert!(!p.contains("class=\"error\""), "no section failed: {p}");
    let root = page(&nw.api, "/?refresh=30").await;
    assert!(root.contains(r#"<meta http-equiv="refresh" content="30">"#), "{root}");
    assert!(root.contains("id=\"alerts\""), "/ is the NOC page too");
    let bad = page(&nw.api, "/noc?refresh=soon").await;
    assert!(bad.contains(r#"content="10""#) && bad.contains("refresh=&quot;soon&quot; is neither seconds"), "{bad}");

    // leaf001 shuts its session to spine2; the cable leaf002–spine1 is cut.
    fabric.inject(&Fault::BgpDown { a: "leaf001".into(), b: "spine2".into() }).unwrap();
    fabric.inject(&Fault::LinkDown { a: "leaf002".into(), b: "spine1".into() }).unwrap();
    let p = wait_page(&nw, "/noc", "the faults on the page", |p| {
        let alerts = section(p, "alerts");
        let intents = section(p, "intents");
        rows_with(alerts, "FabricRedundancyLost").len() == 2
            && !rows_with(alerts, "InterfaceDown").is_empty()
            && !rows_with(intents, "leaf-spine-cabling").is_empty()
            && rows_with(intents, "leaf-bgp-redundancy").len() == 2
            && section(p, "changes").contains("bgp_peer")
    })
    .await;
    let alerts = section(&p, "alerts");
    // Most severe first: every critical row comes before the first major one.
    let last_critical = alerts.rfind("sev-row-critical").unwrap();
    let first_major = alerts.find("sev-row-major").expect("a major alert (InterfaceDown)");
    assert!(last_critical < first_major, "critical alerts before major ones:\n{alerts}");
    let leaf001 = rows_with(alerts, "FabricRedundancyLost").into_iter().find(|r| r.contains("leaf001")).unwrap();
    assert!(leaf001.contains(r#"<span class="sev sev-critical">critical</span>"#), "{leaf001}");
    assert!(leaf001.contains("leaf001: bgp_established: 1, expected at least 2"), "the summary: {leaf001}");
    assert!(leaf001.contains("intent=leaf-bgp-redundancy"), "the alert's other labels: {leaf001}");
    assert!(leaf001.contains("unacknowledged"), "{leaf001}");
    // Its JSON link is the alert in the API.
    let fabric_alerts = nw.api.alerts("FabricRedundancyLost").await;
    let fp = fabric_alerts.iter().find(|a| a["labels"]["device"] == "leaf001").unwrap()["fingerprint"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(leaf001.contains(&format!("href=\"/api/v1/alerts/{fp}\"")), "{leaf001}");
    assert_eq!(nw.api.get(&format!("/api/v1/alerts/{fp}")).await["rule"], "FabricRedundancyLost");

    // The failing intents: the device, the check, observed vs expected, what is missing.
    let intents = section(&p, "intents");
    let redundancy = rows_with(intents, "leaf-bgp-redundancy").into_iter().find(|r| r.contains("leaf001")).unwrap();
    assert!(
        redundancy.contains(r#"<span class="observed">1</span> vs expected <span class="expected">at least 2</span>"#),
        "{redundancy}"
    );
    let href = "/api/v1/intents/results?intent=leaf-bgp-redundancy&amp;device=leaf001";
    assert!(redundancy.contains(href), "{redundancy}");
    let json_rows = nw.api.get(&href.replace("&amp;", "&")).await;
    assert_eq!(json_rows[0]["verdict"], "fail", "the link is the verdict in the API: {json_rows}");
    let cabling = rows_with(intents, "leaf-spine-cabling").into_iter().find(|r| r.contains("leaf002")).unwrap();
    assert!(cabling.contains("missing spine1"), "{cabling}");
    assert!(section(&p, "intents").contains("spine-sessions-established"), "{intents}");
    // The cut cable: both ends admin up, oper down.
    let ifs = section(&p, "interfaces-down");
    assert!(!rows_with(ifs, "leaf002").is_empty() && !rows_with(ifs, "spine1").is_empty(), "{ifs}");
    assert!(tile(&p, "devices-up") == "4", "the devices still answer: {p}");
    // The planner's proposed fixes: the BGP shutdown undone on leaf001, a bounce at each end of the cut cable.
    let p = wait_page(&nw, "/noc", "the proposed fixes", |p| {
        let fixes = section(p, "remediations");
        rows_with(fixes, "Re-enable BGP neighbor").len() == 1 && rows_with(fixes, "Bounce").len() == 2
    })
    .await;
    let fixes = section(&p, "remediations");
    let bgp = rows_with(fixes, "Re-enable BGP neighbor")[0];
    assert!(bgp.contains("leaf001") && bgp.contains("no neighbor"), "{bgp}");
    assert!(bgp.contains("risk-medium") && bgp.contains("needs approval"), "{bgp}");
    let bounces = rows_with(fixes, "Bounce");
    assert!(bounces.iter().any(|r| r.contains("leaf002")) && bounces.iter().any(|r| r.contains("spine1")), "{fixes}");

    // An acknowledgement shows on its alert, its comment escaped.
    let (status, body) = nw
        .api
        .send(
            reqwest::Method::POST,
            &format!("/api/v1/alerts/{fp}/ack"),
            json!({"by": "noc-test", "comment": "<script>alert('ack')</script> & on it"}),
        )
        .await;
    assert_eq!(status, 204, "{body}");
    let p =
        wait_page(&nw, "/noc", "the acknowledgement", |p| section(p, "alerts").contains("acknowledged by noc-test"))
            .await;
    let acked = rows_with(section(&p, "alerts"), "acknowledged by noc-test")[0];
    assert!(acked.contains("leaf001") && acked.contains("muted"), "{acked}");
    assert!(acked.contains("&lt;script&gt;alert('ack')&lt;/script&gt; &amp; on it"), "{acked}");
    assert!(!p.to_lowercase().contains("<script"), "nothing on the page is a script: {p}");

    // A device of another site whose name and site hold markup: it does not answer.
    let evil_site = r#"lab<2>&"x""#;
    let device = json!({
        "name": "edge<script>1", "address": format!("127.0.0.1:{}", free_udp_port()), "site": evil_site,
        "snmp": {"version": "v2c", "community": "public"}
    });
    let (status, body) = nw.api.send(reqwest::Method::POST, "/api/v1/devices", device).await;
    assert_eq!(status, 201, "{body}");
    let site_query = "/noc?site=lab%3C2%3E%26%22x%22";
    let p = wait_page(&nw, site_query, "the other site's device down and alerting", |p| {
        tile(p, "devices-down") == "1" && rows_with(section(p, "alerts"), "DeviceDown").len() == 1
    })
    .await;
    assert!(!p.to_lowercase().contains("<script"), "escaped everywhere: {p}");
    assert_eq!(tile(&p, "devices-total"), "1", "only the site's devices: {p}");
    let down = section(&p, "devices-down");
    assert!(down.contains(">edge&lt;script&gt;1</a>"), "the name escaped: {down}");
    assert!(down.contains("href=\"/api/v1/devices/edge%3Cscript%3E1\""), "the link encoded: {down}");
    assert!(down.contains("lab&lt;2&gt;&amp;&quot;x&quot;"), "the site escaped: {down}");
    assert!(p.contains("<title>netwarden NOC: lab&lt;2&gt;&amp;&quot;x&quot;</title>"), "{p}");
    assert!(p.contains("href=\"?site=lab%3C2%3E%26%22x%22\""), "the site's link, encoded: {p}");
    let alerts = section(&p, "alerts");
    assert!(alerts.contains("edge&lt;script&gt;1 does not answer SNMP"), "{alerts}");
    assert!(!alerts.contains("FabricRedundancyLost"), "the fabric's alerts are another site's: {alerts}");
    assert!(section(&p, "intents").contains("No failing intents."), "the fabric's intents too: {p}");
    assert!(!section(&p, "interfaces-down").contains("leaf002"), "{p}");
    // The fabric's site without it; every site with it.
    let sim = page(&nw.api, "/noc?site=sim").await;
    assert_eq!(tile(&sim, "devices-total"), "4", "{sim}");
    assert!(!sim.contains("edge&lt;script"), "{sim}");
    assert!(rows_with(section(&sim, "alerts"), "FabricRedundancyLost").len() == 2, "{sim}");
    assert!(!section(&sim, "alerts").contains("DeviceDown"), "{sim}");
    let all = page(&nw.api, "/noc").await;
    assert_eq!(tile(&all, "devices-total"), "5", "{all}");
    assert!(!all.to_lowercase().contains("<script"), "{all}");
    let nowhere = page(&nw.api, "/noc?site=nowhere").await;
    assert!(nowhere.contains("No device in site nowhere."), "{nowhere}");

    // A table the page reads goes away: that section says so, the others render.
    let db = tdb.connect().await;
    db.batch_execute("ALTER TABLE config_event RENAME TO config_event_away").await.unwrap();
    let p = page(&nw.api, "/noc").await;
    db.batch_execute("ALTER TABLE config_event_away RENAME TO config_event").await.unwrap();
    let broken = section(&p, "config-changes");
    assert!(broken.contains(r#"<div class="error" role="alert">"#), "{broken}");
    assert!(broken.contains("Configuration changes (last 24 h) could not be read: "), "{broken}");
    assert!(broken.contains("relation &quot;config_event&quot; does not exist"), "why: {broken}");
    assert_eq!(p.matches("class=\"error\"").count(), 1, "only that section failed: {p}");
    assert!(rows_with(section(&p, "alerts"), "FabricRedundancyLost").len() == 2, "the rest renders: {p}");
    assert_eq!(tile(&p, "devices-total"), "5", "{p}");
    let p = page(&nw.api, "/noc").await;
    assert!(section(&p, "config-changes").contains("No configuration change"), "back when the table is: {p}");

    // The repair: back to healthy (the other site's device leaves).
    let (status, _) = nw.api.send(reqwest::Method::DELETE, "/api/v1/devices/edge%3Cscript%3E1", Value::Null).await;
    assert_eq!(status, 204);
    fabric.clear(&Fault::BgpDown { a: "leaf001".into(), b: "spine2".into() }).unwrap();
    fabric.clear(&Fault::LinkDown { a: "leaf002".into(), b: "spine1".into() }).unwrap();
    wait_page(&nw, "/noc", "the repaired fabric", |p| {
        all_up(p, 4) && section(p, "intents").contains("No failing intents.")
    })
    .await;
}
