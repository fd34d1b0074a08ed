//! The first-run demo: a simulated spine-leaf fabric (2 spines, 6 leaves) on loopback, in the
//! service's own process, added to the inventory, so a new user sees polling, topology, alerts and
//! configuration backups before they have devices of their own. Every device answers SNMP and SSH
//! on its own loopback address (127.0.1.1 upwards) and sends traps to the service; faults are
//! injected through a control port on loopback.

use crate::runtime::Database;
use anyhow::{Context, Result};
use collector::inventory;
use collector::secrets::SecretBox;
use collector::sim::{AgentConfig, ControlServer, Fabric, FabricModel, FabricSpec, SimSsh, SimSshConfig};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

/// The demo fabric's shape.
pub const DEMO_FABRIC: &str = "spines=2,leaves=6";
const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// The demo's devices answer on 127.0.1.1, 127.0.1.2, …
const DEMO_FIRST_ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 1, 1);

pub struct DemoFabric {
    pub devices: usize,
    pub control: SocketAddr,
    fabric: Arc<Fabric>,
    control_server: ControlServer,
    ssh: SimSsh,
}

impl DemoFabric {
    /// Stops the simulated devices and the control port.
    pub async fn stop(self) {
        self.ssh.shutdown().await;
        self.control_server.shutdown().await;
        drop(self.fabric);
    }
}

/// A free UDP port on loopback for the demo's trap receiver (when the configuration has none).
pub fn free_trap_listen() -> Result<String> {
    let port = std::net::UdpSocket::bind((LOCALHOST, 0))?.local_addr()?.port();
    Ok(format!("127.0.0.1:{port}"))
}

/// Serves the fabric on 127.0.0.1, sending traps to `trap_target`, and merges it into the
/// inventory (polled every 10 s, configuration backed up over SSH every hour).
pub async fn start(db: &Database, secrets: &SecretBox, trap_target: Option<SocketAddr>) -> Result<DemoFabric> {
    let spec: FabricSpec = DEMO_FABRIC.parse().context("demo fabric")?;
    let mut fabric = Fabric::build(FabricModel::build(&spec).context("demo fabric")?);
    let agents = AgentConfig::default();
    // Each device on its own loopback address, so a trap names its device.
    fabric.serve_each_on_own_address(DEMO_FIRST_ADDRESS, 0, &agents).await.context("serving the demo fabric")?;
    if let Some(target) = trap_target {
        fabric.send_traps(vec![target], &agents.community).context("demo fabric traps")?;
    }
    let fabric = Arc::new(fabric);
    let ssh = SimSsh::bind(Arc::clone(&fabric), SimSshConfig::default()).await.context("demo fabric SSH")?;
    let control_server = ControlServer::bind(SocketAddr::new(LOCALHOST, 0), Arc::clone(&fabric))
        .await
        .context("demo fabric control port")?;
    let mut devices = fabric.inventory("demo", &agents.community);
    for d in &mut devices {
        d.poll_interval = Some(Duration::from_secs(10));
        d.backup_interval = Some(inventory::BackupInterval::Every(Duration::from_secs(3600)));
    }
    let mut conn = db.pool.get().await?;
    inventory::store::import(&mut **conn, secrets, &devices, inventory::store::ImportMode::Merge).await?;
    let control = control_server.local_addr();
    Ok(DemoFabric { devices: devices.len(), control, fabric, control_server, ssh })
}
