//! The first-run demo: a private net-snmp agent on loopback, added to the inventory, so a new
//! user sees real polling before they have devices of their own. (The simulated fabric of the
//! scale issue will take its place.)

use crate::config::Config;
use crate::runtime::Database;
use anyhow::{Context, Result, bail};
use collector::inventory::{self, Device, SnmpCredentials};
use collector::secrets::SecretBox;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct DemoAgent {
    pub target: String,
    pub device_name: String,
    child: Child,
}

impl DemoAgent {
    /// Stops the agent we started (by its PID, nothing else).
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find_snmpd() -> Option<std::path::PathBuf> {
    ["/usr/sbin/snmpd", "/usr/local/sbin/snmpd"].iter().map(std::path::PathBuf::from).find(|p| p.exists())
}

pub async fn start(cfg: &Config, db: &Database, secrets: &SecretBox) -> Result<DemoAgent> {
    let Some(snmpd) = find_snmpd() else {
        bail!("--demo needs net-snmp's snmpd (apt-get install snmpd)");
    };
    let dir = std::path::absolute(cfg.data_dir.join("demo-snmpd"))?;
    std::fs::create_dir_all(dir.join("persist")).with_context(|| format!("creating {}", dir.display()))?;
    let port = std::net::UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port();
    let conf = dir.join("snmpd.conf");
    std::fs::write(
        &conf,
        format!(
            "agentaddress udp:127.0.0.1:{port}\nrocommunity public 127.0.0.1\nsysName netwarden-demo\n\
             sysLocation netwarden demo agent\nsysContact noc@example.invalid\n"
        ),
    )?;
    let child = Command::new(&snmpd)
        .args(["-f", "-Lf", &dir.join("snmpd.log").display().to_string(), "-C", "-c"])
        .arg(&conf)
        .arg(format!("--persistentDir={}", dir.join("persist").display()))
        .env("MIBS", "")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .with_context(|| format!("starting {}", snmpd.display()))?;
    let target = format!("127.0.0.1:{port}");
    let mut agent = DemoAgent { target: target.clone(), device_name: "demo-snmpd".into(), child };
    // Wait (bounded) until it answers.
    let creds = SnmpCredentials::V2c { community: "public".into() };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut c = collector::snmp::SnmpClient::new(
            target.clone(),
            creds.clone(),
            collector::snmp::ClientOptions { timeout: Duration::from_millis(300), retries: 0, ..Default::default() },
        );
        if c.get(&collector::ifmib::system_oids()).await.is_ok() {
            break;
        }
        if Instant::now() > deadline || agent.child.try_wait()?.is_some() {
            agent.stop();
            bail!("the demo snmpd did not answer on {target}; see {}", dir.join("snmpd.log").display());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let device = Device {
        id: None,
        name: agent.device_name.clone(),
        host: "127.0.0.1".into(),
        snmp_port: port,
        site: Some("demo".into()),
        role: Some("server".into()),
        vendor: Some("net-snmp".into()),
        platform: Some("linux".into()),
        tags: vec!["demo".into()],
        snmp: creds,
        ssh: None,
        poll_interval: Some(Duration::from_secs(10)),
        backup_interval: None,
    };
    let mut conn = db.pool.get().await?;
    inventory::store::import(&mut **conn, secrets, &[device], inventory::store::ImportMode::Merge).await?;
    Ok(agent)
}
