//! The HTTP API in-process against a real database: device CRUD without secrets in any response,
//! imports that are all-or-nothing, one error shape.

use axum::body::Body;
use axum::http::{Request, StatusCode};
use collector::db::{self, BackendChoice};
use collector::secrets::SecretBox;
use netwarden_tests::pg;
use serde_json::{Value, json};
use tower::ServiceExt;

async fn app(tdb: &pg::TestDb) -> axum::Router {
    let mut c = tdb.connect().await;
    db::migrate(&mut c, BackendChoice::Auto).await.unwrap();
    let pool = db::connect(&tdb.connection_string, 4).await.unwrap();
    let state = netwarden_tests::app::app_state(
        pool,
        SecretBox::from_key(&[3; 32]),
        collector::topology::Topology::build(&[], &[]),
    );
    api::http::router(state)
}

async fn call(app: &axum::Router, method: &str, uri: &str, body: Option<String>) -> (StatusCode, Value, String) {
    let mut req = Request::builder().method(method).uri(uri);
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let resp = app.clone().oneshot(req.body(body.map(Body::from).unwrap_or_else(Body::empty)).unwrap()).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null), text)
}

#[tokio::test]
async fn device_crud_never_returns_secrets() {
    let tdb = pg::fresh_db();
    let app = app(&tdb).await;
    let dev = json!({
        "name": "leaf9", "address": "10.9.9.9:1161", "site": "ams", "role": "leaf", "tags": ["pod1"],
        "snmp": {"version": "v3", "user": "noc", "auth": "SHA-256", "auth_password": "s3cret-auth", "priv": "AES-256", "priv_password": "s3cret-priv"},
        "ssh": {"user": "noc", "password": "s3cret-ssh"}
    });
    let (st, v, text) = call(&app, "POST", "/api/v1/devices", Some(dev.to_string())).await;
    assert_eq!(st, StatusCode::CREATED, "{text}");
    assert_eq!(v["name"], "leaf9");
    assert_eq!(v["snmp_port"], 1161);
    assert!(!text.contains("s3cret"), "secret in response: {text}");
    let (st, _, text) = call(&app, "POST", "/api/v1/devices", Some(dev.to_string())).await;
    assert_eq!(st, StatusCode::CONFLICT, "{text}");

    let (st, v, text) = call(&app, "GET", "/api/v1/devices/leaf9", None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["v3_auth"], "SHA-256");
    assert_eq!(v["has_ssh_password"], true);
    assert!(!text.contains("s3cret"), "{text}");
    let (_, list, text) = call(&app, "GET", "/api/v1/devices", None).await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(!text.contains("s3cret"));

    let mut changed = dev.clone();
    changed["site"] = json!("fra");
    let (st, v, _) = call(&app, "PUT", "/api/v1/devices/leaf9", Some(changed.to_string())).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["site"], "fra");
    assert_eq!(v["backup_interval_s"], Value::Null, "no own backup interval: the global one");
    // A device's own backup schedule: a duration, or off (0).
    changed["backup_interval"] = json!("6h");
    let (st, v, text) = call(&app, "PUT", "/api/v1/devices/leaf9", Some(changed.to_string())).await;
    assert_eq!(st, StatusCode::OK, "{text}");
    assert_eq!(v["backup_interval_s"], 6 * 3600);
    changed["backup_interval"] = json!("off");
    let (_, v, _) = call(&app, "PUT", "/api/v1/devices/leaf9", Some(changed.to_string())).await;
    assert_eq!(v["backup_interval_s"], 0);
    let (_, v, _) = call(&app, "GET", "/api/v1/devices/leaf9", None).await;
    assert_eq!(v["backup_interval_s"], 0);
    changed["backup_interval"] = json!("10s");
    let (st, v, _) = call(&app, "PUT", "/api/v1/devices/leaf9", Some(changed.to_string())).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        v["error"]["message"],
        "request body:1: device \"leaf9\": backup_interval \"10s\": must be a whole number of seconds from 1m to 30d, or off"
    );

    // Invalid input: 422 with the reason; a wrong name: 404; both in the one error shape.
    let mut bad = dev.clone();
    bad["snmp"]["auth"] = json!("SHA-999");
    let (st, v, _) = call(&app, "PUT", "/api/v1/devices/leaf9", Some(bad.to_string())).await;
    assert_eq!(st, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["code"], "invalid_device");
    assert!(v["error"]["message"].as_str().unwrap().contains("SHA-999"));
    let (st, v, _) = call(&app, "GET", "/api/v1/devices/nope", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(v["error"]["code"], "not_found");

    let (st, _, _) = call(&app, "DELETE", "/api/v1/devices/leaf9", None).await;
    assert_eq!(st, StatusCode::NO_CONTENT);
    let (st, _, _) = call(&app, "DELETE", "/api/v1/devices/leaf9", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn import_endpoint_is_all_or_nothing() {
    let tdb = pg::fresh_db();
    let app = app(&tdb).await;
    let bad = "devices:\n  - name: a\n    address: 10.0.0.1\n    snmp: { version: v2c, community: x }\n  - name: b\n    address: 10.0.0.300\n    snmp: { version: v2c, community: x }\n";
    let req = Request::post("/api/v1/inventory/import?format=yaml").body(Body::from(bad)).unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20).await.unwrap();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert!(v["error"]["message"].as_str().unwrap().contains(":6:"), "line of the bad address: {v}");
    let (_, list, _) = call(&app, "GET", "/api/v1/devices", None).await;
    assert_eq!(list.as_array().unwrap().len(), 0, "nothing applied");
    let good = bad.replace("10.0.0.300", "10.0.0.3");
    let req = Request::post("/api/v1/inventory/import").body(Body::from(good)).unwrap();
    let resp = app.clone().oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let (_, list, _) = call(&app, "GET", "/api/v1/devices", None).await;
    assert_eq!(list.as_array().unwrap().len(), 2);
    let (st, v, _) = call(&app, "GET", "/health", None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["database"], true);
}

#[tokio::test]
async fn topology_endpoints_and_adopting_a_discovered_neighbour() {
    let tdb = pg::fresh_db();
    let mut c = tdb.connect().await;
    db::migrate(&mut c, BackendChoice::Auto).await.unwrap();
    let secrets = SecretBox::from_key(&[3; 32]);
    let devices = collector::inventory::parse_inventory(
        "t.yaml",
        "devices:\n  - { name: spine1, address: 10.1.0.1, role: spine, snmp: { version: v2c, community: fabric-ro } }\n  - { name: leaf1, address: 10.1.0.11, role: leaf, snmp: { version: v2c, community: fabric-ro } }\n",
        None,
    )
    .unwrap();
    collector::inventory::store::import(&mut c, &secrets, &devices, collector::inventory::store::ImportMode::Merge)
        .await
        .unwrap();
    // leaf1 sees spine1 on eth1, and an unknown switch on eth9; spine1 sees leaf1.
    c.batch_execute(
        "INSERT INTO device_state (device_id, status, sys_name, lldp_chassis_id)
           SELECT id, 'up', name, CASE name WHEN 'spine1' THEN '02:00:00:00:00:01' ELSE '02:00:00:00:00:11' END FROM device;
         INSERT INTO interface (device_id, name, if_index, oper_status) SELECT id, 'eth1', 1, 1 FROM device;
         INSERT INTO interface (device_id, name, if_index, oper_status) SELECT id, 'eth9', 9, 1 FROM device WHERE name = 'leaf1';
         INSERT INTO link_neighbor (device_id, protocol, local_port_num, local_if_name, chassis_id, sys_name, port_id, mgmt_addr, first_seen, last_seen)
           SELECT id, 'lldp', 1, 'eth1', '02:00:00:00:00:11', 'leaf1', 'eth1', '10.1.0.11', now(), now() FROM device WHERE name = 'spine1';
         INSERT INTO link_neighbor (device_id, protocol, local_port_num, local_if_name, chassis_id, sys_name, port_id, mgmt_addr, first_seen, last_seen)
           SELECT id, 'lldp', 1, 'eth1', '02:00:00:00:00:01', 'spine1', 'eth1', '10.1.0.1', now(), now() FROM device WHERE name = 'leaf1';
         INSERT INTO link_neighbor (device_id, protocol, local_port_num, local_if_name, chassis_id, sys_name, port_id, mgmt_addr, first_seen, last_seen)
           SELECT id, 'lldp', 9, 'eth9', '0a:0b:0c:0d:0e:0f', 'access-sw7', 'ge-0/0/1', '10.1.0.77', now(), now() FROM device WHERE name = 'leaf1';",
    )
    .await
    .unwrap();
    let (topo, changes) = collector::store::topology::refresh(&c, None, chrono::Utc::now()).await.unwrap();
    assert!(!changes.is_empty());
    let app = {
        let pool = db::connect(&tdb.connection_string, 4).await.unwrap();
        api::http::router(netwarden_tests::app::app_state(pool, secrets.clone(), topo))
    };
    let (st, g, _) = call(&app, "GET", "/api/v1/topology", None).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(g["nodes"].as_array().unwrap().len(), 3, "{g}");
    assert_eq!(g["edges"].as_array().unwrap().len(), 2, "{g}");
    for field in ["id", "title", "mainStat"] {
        assert!(g["nodes"][0].get(field).is_some(), "Node Graph field {field}: {g}");
    }
    let (st, p, _) = call(&app, "GET", "/api/v1/topology/path?from=leaf1&to=spine1", None).await;
    assert_eq!(st, StatusCode::OK, "{p}");
    assert_eq!(p["hops"], 1);
    let (st, i, _) = call(&app, "GET", "/api/v1/topology/impact?link=spine1:eth1--leaf1:eth1&role=spine", None).await;
    assert_eq!(st, StatusCode::OK, "{i}");
    assert_eq!(i["cut_off"], json!(["leaf1"]), "{i}");
    let (_, spof, _) = call(&app, "GET", "/api/v1/topology/spof", None).await;
    assert_eq!(spof["bridges"].as_array().unwrap().len(), 1, "{spof}");
    let (st, e, _) = call(&app, "GET", "/api/v1/topology/impact?device=nope&role=spine", None).await;
    assert_eq!(st, StatusCode::NOT_FOUND, "{e}");

    // One call adds the discovered switch, with the SNMP settings of the device that saw it.
    let (st, d, text) = call(
        &app,
        "POST",
        "/api/v1/topology/discovered/0a:0b:0c:0d:0e:0f/adopt",
        Some("{\"role\": \"access\"}".into()),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{text}");
    assert_eq!(d["name"], "access-sw7");
    assert_eq!(d["host"], "10.1.0.77");
    assert_eq!(d["has_community"], true);
    assert!(!text.contains("fabric-ro"), "{text}");
    let stored = collector::inventory::store::get_by_name(&c, &secrets, "access-sw7").await.unwrap().unwrap();
    assert_eq!(stored.snmp, collector::inventory::SnmpCredentials::V2c { community: "fabric-ro".into() });
}
