//! The `netwarden` binary: wires the collector, the store and the HTTP API.

use anyhow::{Context, Result, bail};
use api::config::Config;
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

/// mimalloc instead of glibc's malloc: a poll allocates and frees thousands of small objects on two
/// runtime threads, and glibc's arenas (malloc, free, consolidation) took ~20 % of the CPU at scale.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(name = "netwarden", version, about = "Network monitoring and self-healing")]
struct Cli {
    /// Configuration file (TOML). Default: ./netwarden.toml if present.
    #[arg(long, short, global = true, env = "NETWARDEN_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service: migrate, poll the inventory, serve the API.
    Serve {
        /// Also simulate a spine-leaf fabric on 127.0.0.1 (SNMP, SSH, traps, fault injection) and poll it
        /// (first-run demo).
        #[arg(long)]
        demo: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Poll one device once and print what was collected: interfaces, BGP, OSPF, LLDP/CDP.
    Poll(PollArgs),
    /// Inventory import and export.
    #[command(subcommand)]
    Inventory(InventoryCommand),
    /// Alert rules: check rule files, run rule unit tests.
    #[command(subcommand)]
    Rules(RulesCommand),
    /// Run one command on one device over SSH: `netwarden ssh DEVICE -- show version`.
    Ssh(api::cli_ssh::SshArgs),
    /// Trust a device's new SSH host key after checking it out of band.
    SshTrust(api::cli_ssh::TrustArgs),
    /// Configuration snapshots: backup, diff, history.
    #[command(subcommand)]
    Config(api::cli_ssh::ConfigCommand),
    /// Serve simulated SNMP v2c devices on loopback and write the matching inventory file:
    /// independent switches (--devices), or a spine-leaf fabric with BGP, OSPF and LLDP and a
    /// fault-injection control port (--fabric).
    Sim(SimArgs),
    /// Grafana: write the provisioning (data source, dashboards) and the SELECT-only role it uses.
    #[command(subcommand)]
    Grafana(api::grafana::GrafanaCommand),
}

#[derive(Args)]
struct SimArgs {
    /// Number of simulated independent switches (IF-MIB and system group only).
    #[arg(long, default_value_t = 8)]
    devices: usize,
    /// Simulate a spine-leaf fabric instead: `spines=2,leaves=6[,borders=2][,cores=2]`, wired
    /// consistently in IF-MIB, BGP4-MIB, OSPF-MIB and LLDP-MIB.
    #[arg(long, conflicts_with = "devices")]
    fabric: Option<collector::sim::FabricSpec>,
    /// Fabric mode: where the fault-injection control listener takes commands (loopback TCP,
    /// one command per line, e.g. `link-down leaf001 spine1`; port 0 picks one).
    #[arg(long, default_value = "127.0.0.1:20160")]
    control: std::net::SocketAddr,
    /// Fabric mode: the site written in the inventory.
    #[arg(long, default_value = "sim")]
    site: String,
    /// Ethernet ports per device.
    #[arg(long, default_value_t = 48)]
    ports: u32,
    /// Port speed in Mb/s.
    #[arg(long, default_value_t = 10_000)]
    speed_mbps: u32,
    /// Loopback address the agents bind to (127.0.0.0/8 only).
    #[arg(long, default_value = "127.0.0.1")]
    address: std::net::Ipv4Addr,
    /// First UDP port; device i listens on base_port + i (0: any free port for each).
    #[arg(long, default_value_t = 20161)]
    base_port: u16,
    /// Agent latency per varbind (e.g. 2ms), to model slow real agents.
    #[arg(long, default_value = "0s")]
    latency_per_varbind: humantime::Duration,
    /// Where to write the inventory of the simulated devices (YAML).
    #[arg(long, default_value = "sim-inventory.yaml")]
    inventory: PathBuf,
    /// Fabric mode: also serve SSH with an IOS-like CLI on every device, device i on this port
    /// + i on its agent's address (0: any free port for each); the inventory gets the logins.
    #[arg(long, requires = "fabric")]
    ssh_base_port: Option<u16>,
    /// Fabric mode: SSH user name of every simulated device.
    #[arg(long, default_value = "netwarden", requires = "ssh_base_port")]
    ssh_user: String,
    /// Fabric mode: SSH password of every simulated device.
    #[arg(long, env = "NETWARDEN_SIM_SSH_PASSWORD", hide_env_values = true, default_value = "netwarden")]
    ssh_password: String,
    /// Fabric mode: the devices' SSH host key (OpenSSH private key file); default: a new
    /// ed25519 key at every start.
    #[arg(long, requires = "ssh_base_port")]
    ssh_host_key: Option<PathBuf>,
    /// Fabric mode: SSH connections open at once, all devices together.
    #[arg(long, default_value_t = 64, requires = "ssh_base_port")]
    ssh_max_connections: usize,
    /// Fabric mode: send SNMPv2c traps (linkDown/linkUp, coldStart, BGP) to this loopback
    /// address whenever a fault or a CLI change alters a device's state; repeatable.
    #[arg(long = "trap-target", value_parser = loopback_addr, requires = "fabric")]
    trap_targets: Vec<std::net::SocketAddr>,
}

/// A socket address on loopback (127.0.0.0/8 or ::1): the simulator sends nowhere else.
fn loopback_addr(s: &str) -> Result<std::net::SocketAddr, String> {
    let addr: std::net::SocketAddr = s.parse().map_err(|e| format!("{s:?} is not an IP:port address ({e})"))?;
    if addr.ip().is_loopback() { Ok(addr) } else { Err(format!("{addr} is not a loopback address")) }
}

#[derive(Args)]
struct PollArgs {
    /// host[:port] of the agent (port 161 by default).
    address: String,
    /// SNMPv2c community.
    #[arg(long, env = "NETWARDEN_SNMP_COMMUNITY", conflicts_with = "v3_user")]
    community: Option<String>,
    /// SNMPv3 user name.
    #[arg(long = "v3-user")]
    v3_user: Option<String>,
    /// SNMPv3 authentication protocol: MD5, SHA, SHA-224, SHA-256, SHA-384, SHA-512.
    #[arg(long, requires = "v3_user")]
    auth: Option<String>,
    #[arg(long, env = "NETWARDEN_SNMP_AUTH_PASSWORD", hide_env_values = true)]
    auth_password: Option<String>,
    /// SNMPv3 privacy protocol: DES, AES, AES-192, AES-256.
    #[arg(long, requires = "auth")]
    r#priv: Option<String>,
    #[arg(long, env = "NETWARDEN_SNMP_PRIV_PASSWORD", hide_env_values = true)]
    priv_password: Option<String>,
    /// SNMPv3 context name.
    #[arg(long)]
    context: Option<String>,
    /// Request timeout (e.g. 2s).
    #[arg(long, default_value = "2s")]
    timeout: humantime::Duration,
    #[arg(long, default_value_t = 1)]
    retries: u32,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand)]
enum RulesCommand {
    /// Compile rule files and report every error with its file and line (`builtin` names the
    /// shipped pack). Exits 1 when any file has an error.
    Check {
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// Compile an alerting file (its rule files, receivers, route, escalations, inhibition,
    /// maintenance windows) and report every error. Exits 1 when there is any.
    CheckAlerting { file: PathBuf },
    /// Compile intent files and report every error with its file and line (`builtin` names the
    /// shipped intents). Exits 1 when any file has an error.
    CheckIntents {
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// Compile remediation playbook files (conditions and templates, which are rendered once with
    /// every field) and report every error with its file and line (`builtin` names the shipped
    /// playbooks). Exits 1 when any file has an error.
    CheckPlaybooks {
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// Run rule unit tests (input series at times, expected alerts at times). Exits 1 on failure.
    Test {
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
}

/// Prints every error and their count; the exit code of a failed check.
fn report_errors(errors: &[impl std::fmt::Display]) -> std::process::ExitCode {
    for e in errors {
        eprintln!("{e}");
    }
    eprintln!("{} error(s)", errors.len());
    std::process::ExitCode::FAILURE
}

fn rules_command(cmd: RulesCommand) -> std::process::ExitCode {
    use std::process::ExitCode;
    match cmd {
        RulesCommand::Check { files } => match rules::rule::load(&files) {
            Ok(rules) => {
                println!("ok: {} rule(s) in {} file(s)", rules.len(), files.len());
                ExitCode::SUCCESS
            }
            Err(errors) => report_errors(&errors),
        },
        RulesCommand::CheckAlerting { file } => match rules::config::Alerting::load(Some(&file), "http://localhost") {
            Ok(a) => {
                let routes = a.routing.as_ref().map_or(0, |r| r.routes.len());
                println!(
                    "ok: {} rule(s), {} intent(s), {} receiver(s), {routes} route(s), {} inhibit rule(s), {} maintenance window(s)",
                    a.rules.len(),
                    a.intents.len(),
                    a.receivers.len(),
                    a.inhibit.len(),
                    a.windows.len()
                );
                ExitCode::SUCCESS
            }
            Err(errors) => report_errors(&errors),
        },
        RulesCommand::CheckIntents { files } => match rules::intent::load(&files) {
            Ok(intents) => {
                println!("ok: {} intent(s) in {} file(s)", intents.len(), files.len());
                ExitCode::SUCCESS
            }
            Err(errors) => report_errors(&errors),
        },
        RulesCommand::CheckPlaybooks { files } => match remediation::load(&files) {
            Ok(playbooks) => {
                println!("ok: {} playbook(s) in {} file(s)", playbooks.list.len(), files.len());
                ExitCode::SUCCESS
            }
            Err(errors) => report_errors(&errors),
        },
        RulesCommand::Test { files } => {
            let (mut passed, mut failed) = (0, 0);
            for f in &files {
                match rules::rule::testing::run_file(f) {
                    Ok(cases) => {
                        for c in cases {
                            if c.failures.is_empty() {
                                passed += 1;
                                println!("ok    {}: {}", f.display(), c.name);
                            } else {
                                failed += 1;
                                println!("FAIL  {}: {}", f.display(), c.name);
                                for line in &c.failures {
                                    println!("      {line}");
                                }
                            }
                        }
                    }
                    Err(errors) => {
                        failed += 1;
                        for e in &errors {
                            eprintln!("{e}");
                        }
                    }
                }
            }
            println!("{passed} passed, {failed} failed");
            if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
    }
}

#[derive(Subcommand)]
enum InventoryCommand {
    /// Import devices from a YAML or CSV file; nothing is applied if any row is bad.
    Import {
        file: PathBuf,
        /// Also delete devices that are not in the file.
        #[arg(long)]
        replace: bool,
    },
    /// Print the inventory as YAML (or CSV).
    Export {
        #[arg(long, value_parser = ["yaml", "csv"], default_value = "yaml")]
        format: String,
        /// Include secrets (communities, passwords) in clear text.
        #[arg(long)]
        with_secrets: bool,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    api::telemetry::init_logging();
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("netwarden: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<std::process::ExitCode> {
    match cli.command {
        Command::Poll(args) => poll(args).await,
        Command::Migrate => {
            let cfg = Config::load(cli.config.as_deref())?;
            let db = api::runtime::Database::open(&cfg).await?;
            let report = db.migrate(&cfg).await?;
            println!(
                "storage back-end: {}; applied {} migration(s), {} already applied",
                report.backend.as_str(),
                report.applied.len(),
                report.already_applied
            );
            db.shutdown().await;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Serve { demo } => {
            let cfg = Config::load(cli.config.as_deref())?;
            api::runtime::serve(cfg, demo).await?;
            Ok(std::process::ExitCode::SUCCESS)
        }
        Command::Sim(args) => sim(args).await,
        Command::Ssh(args) => api::cli_ssh::run_ssh(&Config::load(cli.config.as_deref())?, args).await,
        Command::SshTrust(args) => api::cli_ssh::run_trust(&Config::load(cli.config.as_deref())?, args).await,
        Command::Config(cmd) => api::cli_ssh::run_config(&Config::load(cli.config.as_deref())?, cmd).await,
        Command::Rules(cmd) => Ok(rules_command(cmd)),
        Command::Grafana(cmd) => api::grafana::run(&Config::load(cli.config.as_deref())?, cmd).await,
        Command::Inventory(cmd) => {
            let cfg = Config::load(cli.config.as_deref())?;
            let db = api::runtime::Database::open(&cfg).await?;
            db.migrate(&cfg).await?;
            let secrets = api::runtime::load_secrets(&cfg, db.is_embedded())?;
            let r = match cmd {
                InventoryCommand::Import { file, replace } => {
                    api::runtime::import_file(&db, &secrets, &file, replace).await.map(|report| {
                        println!("{report}");
                    })
                }
                InventoryCommand::Export { format, with_secrets } => {
                    api::runtime::export(&db, &secrets, &format, with_secrets).await.map(|text| print!("{text}"))
                }
            };
            db.shutdown().await;
            r?;
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}

async fn poll(a: PollArgs) -> Result<std::process::ExitCode> {
    use collector::inventory::{AuthProtocol, PrivProtocol, SnmpCredentials, SnmpV3Credentials};
    let creds = match (&a.community, &a.v3_user) {
        (_, Some(user)) => {
            let auth = match &a.auth {
                Some(p) => {
                    let proto: AuthProtocol = p.parse().map_err(|e: String| anyhow::anyhow!("--auth: {e}"))?;
                    let pw = a
                        .auth_password
                        .clone()
                        .context("--auth needs --auth-password (or NETWARDEN_SNMP_AUTH_PASSWORD)")?;
                    Some((proto, pw))
                }
                None => None,
            };
            let privacy = match &a.r#priv {
                Some(p) => {
                    let proto: PrivProtocol = p.parse().map_err(|e: String| anyhow::anyhow!("--priv: {e}"))?;
                    let pw = a
                        .priv_password
                        .clone()
                        .context("--priv needs --priv-password (or NETWARDEN_SNMP_PRIV_PASSWORD)")?;
                    Some((proto, pw))
                }
                None => None,
            };
            SnmpCredentials::V3(SnmpV3Credentials { user: user.clone(), auth, privacy, context: a.context.clone() })
        }
        (Some(c), None) => SnmpCredentials::V2c { community: c.clone() },
        (None, None) => bail!("give --community for SNMPv2c or --v3-user (with --auth/--priv) for SNMPv3"),
    };
    let target = if a.address.contains(':') && !a.address.starts_with('[') && a.address.matches(':').count() == 1 {
        a.address.clone()
    } else if a.address.starts_with('[') && a.address.contains("]:") {
        a.address.clone()
    } else if a.address.contains(':') {
        format!("[{}]:161", a.address.trim_matches(|c| c == '[' || c == ']'))
    } else {
        format!("{}:161", a.address)
    };
    let opts = collector::snmp::ClientOptions { timeout: a.timeout.into(), retries: a.retries, ..Default::default() };
    let mut client = collector::snmp::SnmpClient::new(target, creds, opts);
    match collector::poll::poll_device(&mut client).await {
        Ok(poll) => {
            if a.json {
                println!("{}", serde_json::to_string_pretty(&poll)?);
            } else {
                print!("{}{}", api::render::poll_table(&poll), api::render::routing_tables(&poll));
            }
            Ok(std::process::ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("netwarden: poll failed ({}): {e}", e.kind());
            Ok(std::process::ExitCode::from(2))
        }
    }
}

/// Writes the inventory file atomically (a reader never sees half of it).
fn write_inventory(path: &std::path::Path, devices: &[collector::inventory::Device]) -> Result<()> {
    let yaml = collector::inventory::export_yaml(devices, true);
    let tmp = path.with_extension("yaml.tmp");
    std::fs::write(&tmp, yaml).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Resident memory of this process, from /proc (Linux); 0 elsewhere.
fn rss_mib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    pages * 4096 >> 20
}

async fn sim_fabric(a: SimArgs, spec: collector::sim::FabricSpec) -> Result<std::process::ExitCode> {
    use collector::sim::{ControlServer, Fabric, FabricModel, FabricSpec};
    let spec = FabricSpec { ports_per_device: a.ports, speed_mbps: a.speed_mbps, ..spec };
    if !a.control.ip().is_loopback() {
        bail!("--control {}: the control listener is for loopback (127.0.0.0/8) only", a.control);
    }
    let started = std::time::Instant::now();
    let model = FabricModel::build(&spec).context("--fabric")?;
    let links = model.links.len();
    let mut fabric = Fabric::build(model);
    let built = started.elapsed();
    let config =
        collector::sim::agent::AgentConfig { latency_per_varbind: a.latency_per_varbind.into(), ..Default::default() };
    fabric.serve(std::net::IpAddr::V4(a.address), a.base_port, &config).await.with_context(|| {
        format!("binding {} agents on {}:{}..", fabric.model().devices.len(), a.address, a.base_port)
    })?;
    let bound = started.elapsed();
    let shutdown = api::runtime::shutdown_signal();
    if !a.trap_targets.is_empty() {
        fabric.send_traps(a.trap_targets.clone(), &config.community).context("--trap-target")?;
    }
    let fabric = std::sync::Arc::new(fabric);
    let ssh = match a.ssh_base_port {
        Some(base_port) => Some(serve_sim_ssh(&a, base_port, std::sync::Arc::clone(&fabric)).await?),
        None => None,
    };
    let devices = fabric.inventory(&a.site, &config.community);
    let control = ControlServer::bind(a.control, std::sync::Arc::clone(&fabric))
        .await
        .with_context(|| format!("control listener on {}", a.control))?;
    write_inventory(&a.inventory, &devices)?;
    let ports: Vec<u16> = devices.iter().map(|d| d.snmp_port).collect();
    println!(
        "simulating a fabric of {} device(s) ({} spines, {} leaves, {} borders, {} cores; {links} cables) on {}:{}-{}",
        devices.len(),
        spec.spines,
        spec.leaves,
        spec.borders,
        spec.cores,
        a.address,
        ports.iter().min().copied().unwrap_or(0),
        ports.iter().max().copied().unwrap_or(0),
    );
    println!("  built in {built:.2?}, bound in {:.2?}; resident memory {} MiB", bound - built, rss_mib());
    println!("  inventory: {} (netwarden inventory import {})", a.inventory.display(), a.inventory.display());
    println!(
        "  control:   {} (one command per line, e.g. `nc {} {}` then `link-down leaf001 spine1`; `help` lists them)",
        control.local_addr(),
        control.local_addr().ip(),
        control.local_addr().port()
    );
    if let Some(ssh) = &ssh {
        let ports: Vec<u16> = ssh.addrs().iter().map(|a| a.port()).collect();
        println!(
            "  ssh:       ports {}-{} as {:?} (host key {}; at most {} connections)",
            ports.iter().min().copied().unwrap_or(0),
            ports.iter().max().copied().unwrap_or(0),
            a.ssh_user,
            ssh.host_key_fingerprint(),
            a.ssh_max_connections
        );
    }
    if !a.trap_targets.is_empty() {
        let targets: Vec<String> = a.trap_targets.iter().map(ToString::to_string).collect();
        println!("  traps:     SNMPv2c to {} (community {:?})", targets.join(", "), config.community);
    }
    shutdown.await;
    if let Some(ssh) = ssh {
        ssh.shutdown().await;
    }
    control.shutdown().await;
    drop(fabric);
    Ok(std::process::ExitCode::SUCCESS)
}

async fn serve_sim_ssh(
    a: &SimArgs,
    base_port: u16,
    fabric: std::sync::Arc<collector::sim::Fabric>,
) -> Result<collector::sim::SimSsh> {
    let host_key = match &a.ssh_host_key {
        Some(path) => Some(collector::sim::ssh::load_host_key(path).context("--ssh-host-key")?),
        None => None,
    };
    let config = collector::sim::SimSshConfig {
        base_port,
        user: a.ssh_user.clone(),
        password: a.ssh_password.clone(),
        max_connections: a.ssh_max_connections,
        host_key,
        ..Default::default()
    };
    collector::sim::SimSsh::bind(fabric, config).await.with_context(|| format!("serving ssh from port {base_port}"))
}

async fn sim(a: SimArgs) -> Result<std::process::ExitCode> {
    use collector::inventory::{Device, SnmpCredentials};
    if !a.address.is_loopback() {
        bail!("--address {}: simulated devices live on loopback (127.0.0.0/8) only", a.address);
    }
    if let Some(spec) = a.fabric.clone() {
        return sim_fabric(a, spec).await;
    }
    let name = |i: usize| format!("sim-sw{:05}", i + 1);
    let config =
        collector::sim::agent::AgentConfig { latency_per_varbind: a.latency_per_varbind.into(), ..Default::default() };
    let mibs = collector::sim::device::switches(a.devices, a.ports, a.speed_mbps, name);
    let agents = collector::sim::agent::bind_agents(std::net::IpAddr::V4(a.address), a.base_port, mibs, &config)
        .await
        .with_context(|| format!("binding {} agents on {}:{}..", a.devices, a.address, a.base_port))?;
    let devices: Vec<Device> = agents
        .iter()
        .enumerate()
        .map(|(i, agent)| Device {
            id: None,
            name: name(i),
            host: a.address.to_string(),
            snmp_port: agent.local_addr().port(),
            site: Some("sim".into()),
            role: Some("leaf".into()),
            vendor: Some("netwarden-sim".into()),
            platform: None,
            tags: vec!["sim".into()],
            snmp: SnmpCredentials::V2c { community: config.community.clone() },
            ssh: None,
            poll_interval: None,
            backup_interval: None,
        })
        .collect();
    let shutdown = api::runtime::shutdown_signal();
    write_inventory(&a.inventory, &devices)?;
    println!(
        "simulating {} device(s) × {} ports on {}:{}-{}; inventory: {} (netwarden inventory import {})",
        agents.len(),
        a.ports,
        a.address,
        a.base_port,
        a.base_port as usize + agents.len().saturating_sub(1),
        a.inventory.display(),
        a.inventory.display()
    );
    shutdown.await;
    drop(agents);
    Ok(std::process::ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sim_args(args: &[&str]) -> Result<SimArgs, String> {
        let argv = ["netwarden", "sim"].iter().chain(args);
        match Cli::try_parse_from(argv).map_err(|e| e.to_string())?.command {
            Command::Sim(a) => Ok(a),
            _ => Err("not the sim command".to_string()),
        }
    }

    #[test]
    fn sim_takes_ssh_and_trap_flags_in_fabric_mode() {
        let a = sim_args(&[
            "--fabric",
            "spines=2,leaves=2",
            "--ssh-base-port",
            "22000",
            "--trap-target",
            "127.0.0.1:1162",
            "--trap-target",
            "127.0.0.2:2162",
        ])
        .unwrap();
        assert_eq!(a.ssh_base_port, Some(22000));
        assert_eq!((a.ssh_user.as_str(), a.ssh_max_connections), ("netwarden", 64));
        assert_eq!(a.trap_targets, ["127.0.0.1:1162".parse().unwrap(), "127.0.0.2:2162".parse().unwrap()]);
        // The existing flags keep working without the new ones.
        let plain = sim_args(&["--devices", "3", "--base-port", "0"]).unwrap();
        assert_eq!((plain.devices, plain.ssh_base_port, plain.trap_targets.len()), (3, None, 0));
    }

    #[test]
    fn sim_refuses_remote_trap_targets_and_ssh_without_a_fabric() {
        let e = sim_args(&["--fabric", "spines=1,leaves=1", "--trap-target", "192.0.2.1:162"]).err().expect("refused");
        assert!(e.contains("192.0.2.1:162 is not a loopback address"), "{e}");
        let e = sim_args(&["--fabric", "spines=1,leaves=1", "--trap-target", "localhost"]).err().expect("refused");
        assert!(e.contains("is not an IP:port address"), "{e}");
        let e = sim_args(&["--ssh-base-port", "22000"]).err().expect("refused");
        assert!(e.contains("--fabric"), "{e}");
    }
}
