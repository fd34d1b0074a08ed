//! `netwarden serve` end to end: the real binary as a child process, polling a simulated fabric served on
//! loopback, configured with fast polls and timers; its HTTP API; waiting for what receivers got.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use collector::sim::{AgentConfig, Fabric, FabricModel, FabricSpec};
use serde_json::Value;

use crate::pg::TestDb;
use crate::receivers::{CaptureServer, Captured, Reply};
use crate::util::{stop_child, tail};

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
pub const WAIT: Duration = Duration::from_secs(60);

pub fn netwarden_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("netwarden");
    assert!(bin.exists(), "{} not built (cargo test --workspace builds it)", bin.display());
    bin
}

/// A simulated fabric served on 127.0.0.1, and its inventory written for `netwarden serve`.
pub async fn fabric(spec: &str, dir: &Path) -> (Arc<Fabric>, PathBuf) {
    let spec: FabricSpec = spec.parse().expect("fabric spec");
    let mut fabric = Fabric::build(FabricModel::build(&spec).expect("fabric model"));
    fabric.serve(LOCALHOST, 0, &AgentConfig::default()).await.expect("serving the fabric on 127.0.0.1");
    let inventory = dir.join("inventory.yaml");
    let devices = fabric.inventory("sim", "public");
    std::fs::write(&inventory, collector::inventory::export_yaml(&devices, true)).expect("writing the inventory");
    (Arc::new(fabric), inventory)
}

/// The service's configuration: fast polls and timers, the test database, the alerting file.
pub fn write_config(dir: &Path, db: &TestDb, api_port: u16, inventory: &Path, alerting: &str) -> PathBuf {
    let alerting_file = dir.join("alerting.yaml");
    std::fs::write(&alerting_file, alerting).expect("writing the alerting file");
    let config = format!(
        r#"data_dir = "{dir}"
[database]
url = "{db}"
pool_size = 6
[polling]
interval = "1s"
timeout = "300ms"
retries = 0
down_after_failures = 2
[api]
listen = "127.0.0.1:{api_port}"
[inventory]
file = "{inventory}"
refresh = "2s"
[topology]
refresh = "1s"
[configs]
backup_interval = "0s"
[alerting]
file = "{alerting}"
tick = "200ms"
"#,
        dir = dir.display(),
        db = db.connection_string,
        inventory = inventory.display(),
        alerting = alerting_file.display(),
    );
    let path = dir.join("netwarden.toml");
    std::fs::write(&path, config).expect("writing the configuration");
    path
}

/// `netwarden serve` as a child process, stopped (SIGTERM, then SIGKILL) when dropped.
pub struct Netwarden {
    child: Child,
    pub log: PathBuf,
    pub api: Api,
}

impl Netwarden {
    pub async fn start(config: &Path, api_port: u16, log: PathBuf) -> Netwarden {
        Self::start_with(config, api_port, log, &[]).await
    }

    /// Waits until this process has made `n` successful polls (its status counts since it started).
    pub async fn wait_polls(&self, n: u64) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.api.get("/api/v1/status").await["polls"]["ok"].as_u64().unwrap_or(0) < n {
            assert!(tokio::time::Instant::now() < deadline, "fewer than {n} polls:\n{}", tail(&self.log, 40));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub async fn start_with(config: &Path, api_port: u16, log: PathBuf, serve_args: &[&str]) -> Netwarden {
        let out = std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("service log");
        let child = Command::new(netwarden_bin())
            .args(["--config", &config.display().to_string(), "serve"])
            .args(serve_args)
            .env("NETWARDEN_SECRET_KEY", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=")
            .env("NETWARDEN_LOG", "info")
            .stdout(Stdio::from(out.try_clone().unwrap()))
            .stderr(Stdio::from(out))
            .spawn()
            .expect("starting netwarden serve");
        let api = Api {
            base: format!("http://127.0.0.1:{api_port}"),
            http: reqwest::Client::builder()
                .tls_backend_preconfigured(rules::notify::tls_client_config())
                .build()
                .unwrap(),
        };
        let mut nw = Netwarden { child, log, api };
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Ok(Some(status)) = nw.child.try_wait() {
                panic!("netwarden exited ({status}) during start:\n{}", tail(&nw.log, 40));
            }
            if nw.api.http.get(format!("{}/health", nw.api.base)).send().await.is_ok_and(|r| r.status().is_success()) {
                return nw;
            }
            assert!(tokio::time::Instant::now() < deadline, "netwarden did not start:\n{}", tail(&nw.log, 40));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Kills the process without warning (SIGKILL): nothing is flushed or released.
    pub fn kill(&mut self) {
        self.child.kill().expect("SIGKILL netwarden");
        self.child.wait().expect("reaping netwarden");
    }
}

impl Drop for Netwarden {
    fn drop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(10));
    }
}

pub struct Api {
    pub base: String,
    pub http: reqwest::Client,
}

impl Api {
    pub async fn get(&self, path: &str) -> Value {
        let r = self.http.get(format!("{}{path}", self.base)).send().await.expect("API request");
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
        r.json().await.expect("API JSON")
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: Value) -> (u16, Value) {
        let r =
            self.http.request(method, format!("{}{path}", self.base)).json(&body).send().await.expect("API request");
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }

    /// Active alerts of one rule.
    pub async fn alerts(&self, rule: &str) -> Vec<Value> {
        let all = self.get("/api/v1/alerts").await;
        all.as_array().unwrap().iter().filter(|a| a["rule"] == rule).cloned().collect()
    }

    /// Waits until the active alerts of `rule` satisfy `ok`.
    pub async fn wait_alerts(&self, rule: &str, what: &str, ok: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let alerts = self.alerts(rule).await;
            if ok(&alerts) {
                return alerts;
            }
            assert!(tokio::time::Instant::now() < deadline, "{what}: {rule} alerts are {alerts:#?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Outbox rows of a kind (firing, resolved, acknowledged, flapping).
    pub async fn notifications(&self, kind: &str) -> Vec<Value> {
        let rows = self.get("/api/v1/notifications?limit=1000").await;
        rows.as_array().unwrap().iter().filter(|r| r["kind"] == kind).cloned().collect()
    }
}

/// Waits until the capture server holds requests satisfying `ok`.
pub async fn wait_requests(server: &CaptureServer, what: &str, ok: impl Fn(&[Captured]) -> bool) -> Vec<Captured> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let got = server.requests();
        if ok(&got) {
            return got;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: got {:#?}",
            got.iter().map(|r| (&r.path, &r.body)).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub fn fingerprints(alerts: &[Value]) -> Vec<String> {
    let mut fps: Vec<String> = alerts.iter().map(|a| a["fingerprint"].as_str().unwrap().to_string()).collect();
    fps.sort();
    fps
}

/// Webhook payloads (Alertmanager v4) about `rule` with this status, by alert fingerprint.
pub fn hook_fps(requests: &[Captured], rule: &str, status: &str) -> Vec<String> {
    let mut fps: Vec<String> = requests
        .iter()
        .filter(|r| r.path == "/hook" && r.reply == Reply::Status(200, "ok".into()))
        .flat_map(|r| r.body["alerts"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["labels"]["alertname"] == rule && a["status"] == status)
        .map(|a| a["fingerprint"].as_str().unwrap_or_default().to_string())
        .collect();
    fps.sort();
    fps.dedup();
    fps
}

/// Route timers for tests: grouped per alert name and device, flushed every second, repeated hourly.
pub const ROUTE_TIMERS: &str = "group_by: [alertname, device]\n  group_interval: 1s\n  repeat_interval: 1h";
