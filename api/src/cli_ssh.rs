//! The CLI verbs for SSH device access: `netwarden ssh DEVICE -- COMMAND`, `netwarden ssh-trust
//! DEVICE`, `netwarden config backup [DEVICE…]`, `config diff DEVICE [FROM] [TO]`, `config history
//! DEVICE`. Each opens the database, migrates, loads the secret key and calls the collector.
//!
//! Wiring in main.rs: `Ssh(api::cli_ssh::SshArgs)`, `SshTrust(api::cli_ssh::TrustArgs)` and
//! `#[command(subcommand)] Config(api::cli_ssh::ConfigCommand)` in `Command`; the arms call
//! [`run_ssh`], [`run_trust`] and [`run_config`] with the loaded [`Config`].

use crate::config::Config;
use crate::runtime::Database;
use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use collector::configs::{BackupTrigger, backup, store as cstore};
use collector::inventory::{self, Device};
use collector::secrets::SecretBox;
use collector::ssh::{self, Profiles, SshManager, SshOptions};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Options every SSH verb takes.
#[derive(Args, Debug, Clone)]
pub struct SshCliOptions {
    /// TCP connect, SSH handshake and login, together.
    #[arg(long, default_value = "10s")]
    pub connect_timeout: humantime::Duration,
    /// Per command, until the device's prompt comes back.
    #[arg(long, default_value = "60s")]
    pub command_timeout: humantime::Duration,
    /// Extra platform profiles (*.toml), added to the built-in ones.
    #[arg(long, env = "NETWARDEN_PROFILES_DIR")]
    pub profiles: Option<PathBuf>,
}

/// `netwarden ssh DEVICE -- COMMAND…`
#[derive(Args, Debug)]
pub struct SshArgs {
    /// Device name in the inventory.
    pub device: String,
    /// The command, after `--` (words are joined with spaces; one command, one line).
    #[arg(last = true, required = true)]
    pub command: Vec<String>,
    #[command(flatten)]
    pub ssh: SshCliOptions,
}

/// `netwarden ssh-trust DEVICE [--fingerprint SHA256:…]`
#[derive(Args, Debug)]
pub struct TrustArgs {
    pub device: String,
    /// Trust the key the device presented (and was refused) only if it has this fingerprint, as
    /// checked out of band (`ssh-keygen -lf` on the device's key). Without it: the refused key,
    /// or, with none refused, forget the stored key so the next connection learns it.
    #[arg(long)]
    pub fingerprint: Option<String>,
    /// Who decided (recorded with the key); default: $USER.
    #[arg(long, env = "USER", default_value = "admin")]
    pub by: String,
}

#[derive(Subcommand, Debug)]
pub enum ConfigCommand {
    /// Back up running configurations now (all devices with SSH credentials, or those named).
    Backup {
        devices: Vec<String>,
        /// Devices backed up at once.
        #[arg(long, default_value_t = 20)]
        concurrency: usize,
        #[command(flatten)]
        ssh: SshCliOptions,
    },
    /// Unified diff between two snapshots (default: the last two different ones; with FROM only:
    /// FROM against the latest). Secrets are masked unless --show-secrets.
    Diff {
        device: String,
        from: Option<i64>,
        to: Option<i64>,
        #[arg(long)]
        show_secrets: bool,
        #[arg(long)]
        profiles: Option<PathBuf>,
    },
    /// What changed when: the first backup, every change and every failure, newest first.
    History {
        device: String,
        /// Every backup, unchanged ones included.
        #[arg(long)]
        all: bool,
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
}

struct Ctx {
    db: Database,
    secrets: SecretBox,
}

async fn open(cfg: &Config) -> Result<Ctx> {
    let db = Database::open(cfg).await?;
    db.migrate(cfg).await?;
    let secrets = crate::runtime::load_secrets(cfg, db.is_embedded())?;
    Ok(Ctx { db, secrets })
}

fn profiles(dir: Option<&PathBuf>) -> Result<Arc<Profiles>> {
    Ok(Arc::new(match dir {
        Some(d) => Profiles::with_dir(d)?,
        None => Profiles::builtin(),
    }))
}

fn manager(ctx: &Ctx, o: &SshCliOptions, max_sessions: usize) -> Result<SshManager> {
    let opts = SshOptions {
        connect_timeout: o.connect_timeout.into(),
        command_timeout: o.command_timeout.into(),
        idle_timeout: Duration::from(o.command_timeout).max(Duration::from_secs(60)),
        max_sessions: max_sessions.max(1),
        ..SshOptions::default()
    };
    Ok(SshManager::new(ctx.db.pool.clone(), profiles(o.profiles.as_ref())?, opts))
}

async fn device(ctx: &Ctx, name: &str) -> Result<Device> {
    let conn = ctx.db.pool.get().await.context("database connection")?;
    inventory::store::get_by_name(&**conn, &ctx.secrets, name)
        .await?
        .with_context(|| format!("no device named {name:?}"))
}

/// `netwarden ssh DEVICE -- COMMAND`: prints the output; exit 0, 1 if the device rejected the
/// command, 2 if the session failed.
pub async fn run_ssh(cfg: &Config, args: SshArgs) -> Result<ExitCode> {
    let ctx = open(cfg).await?;
    let result = async {
        let device = device(&ctx, &args.device).await?;
        let manager = manager(&ctx, &args.ssh, 1)?;
        let command = args.command.join(" ");
        let mut session = match manager.session(&device).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("netwarden: {e}");
                return Ok(ExitCode::from(2));
            }
        };
        let out = match session.run_show(&[&command]).await {
            Ok(mut o) => o.pop().expect("one command"),
            Err(e) => {
                eprintln!("netwarden: {e}");
                return Ok(ExitCode::from(2));
            }
        };
        session.close().await;
        if !out.output.is_empty() {
            println!("{}", out.output);
        }
        Ok(match out.error {
            Some(e) => {
                eprintln!("netwarden: {}: the device rejected {command:?}: {e}", device.name);
                ExitCode::from(1)
            }
            None => ExitCode::SUCCESS,
        })
    }
    .await;
    ctx.db.shutdown().await;
    result
}

/// `netwarden ssh-trust DEVICE`: an admin's decision after "host key changed".
pub async fn run_trust(cfg: &Config, args: TrustArgs) -> Result<ExitCode> {
    let ctx = open(cfg).await?;
    let result = async {
        let conn = ctx.db.pool.get().await.context("database connection")?;
        match ssh::store::retrust(&**conn, &args.device, args.fingerprint.as_deref(), &args.by).await? {
            ssh::store::Retrust::Trusted { fingerprint, previous } => {
                println!("{}: now trusting {fingerprint} (was {previous})", args.device)
            }
            ssh::store::Retrust::Forgotten { previous } => println!(
                "{}: stored key {} forgotten; the next connection trusts the key it is offered",
                args.device,
                previous.as_deref().unwrap_or("(none)")
            ),
        }
        Ok(ExitCode::SUCCESS)
    }
    .await;
    ctx.db.shutdown().await;
    result
}

pub async fn run_config(cfg: &Config, cmd: ConfigCommand) -> Result<ExitCode> {
    let ctx = open(cfg).await?;
    let result = match cmd {
        ConfigCommand::Backup { devices, concurrency, ssh } => config_backup(&ctx, &devices, concurrency, &ssh).await,
        ConfigCommand::Diff { device, from, to, show_secrets, profiles } => {
            config_diff(&ctx, &device, from, to, show_secrets, profiles.as_ref()).await
        }
        ConfigCommand::History { device, all, limit, json } => config_history(&ctx, &device, all, limit, json).await,
    };
    ctx.db.shutdown().await;
    result
}

async fn config_backup(ctx: &Ctx, names: &[String], concurrency: usize, o: &SshCliOptions) -> Result<ExitCode> {
    let all = {
        let conn = ctx.db.pool.get().await.context("database connection")?;
        inventory::store::list(&**conn, &ctx.secrets).await?
    };
    let devices: Vec<Device> = if names.is_empty() {
        all.into_iter().filter(|d| d.ssh.is_some()).collect()
    } else {
        let mut picked = Vec::new();
        for n in names {
            picked.push(all.iter().find(|d| &d.name == n).cloned().with_context(|| format!("no device named {n:?}"))?);
        }
        picked
    };
    if devices.is_empty() {
        bail!("no device has SSH credentials in the inventory");
    }
    let manager = manager(ctx, o, concurrency)?;
    let started = Instant::now();
    let results = backup::backup_all(&manager, &devices, BackupTrigger::Manual, concurrency).await;
    let elapsed = started.elapsed();
    manager.close_idle().await;
    let width = results.iter().map(|(n, _)| n.len()).max().unwrap_or(6).max(6);
    println!("{:width$}  {:>8}  {:>8}  RESULT", "DEVICE", "SNAPSHOT", "TIME");
    let mut failed = 0;
    for (name, r) in &results {
        match r {
            Ok(o) => {
                let what = match (&o.recorded.event, o.recorded.first) {
                    (_, true) => "first snapshot".to_owned(),
                    (Some(e), _) => format!("changed (+{} -{}, event {})", e.lines_added, e.lines_removed, e.id),
                    (None, _) if o.recorded.changed => "changed".to_owned(),
                    (None, _) => "unchanged".to_owned(),
                };
                println!("{name:width$}  {:>8}  {:>7.2}s  {what}", o.recorded.snapshot_id, o.duration.as_secs_f64());
            }
            Err(e) => {
                failed += 1;
                println!("{name:width$}  {:>8}  {:>8}  failed ({}): {e}", "-", "-", e.code());
            }
        }
    }
    println!(
        "backed up {} of {} device(s) in {:.2}s (concurrency {concurrency})",
        results.len() - failed,
        results.len(),
        elapsed.as_secs_f64()
    );
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

async fn config_diff(
    ctx: &Ctx,
    name: &str,
    from: Option<i64>,
    to: Option<i64>,
    reveal: bool,
    profiles_dir: Option<&PathBuf>,
) -> Result<ExitCode> {
    let device = device(ctx, name).await?;
    let profiles = profiles(profiles_dir)?;
    let profile = profiles
        .for_device(device.platform.as_deref(), device.vendor.as_deref())
        .with_context(|| format!("{name}: no platform profile for platform {:?}", device.platform))?;
    let conn = ctx.db.pool.get().await.context("database connection")?;
    let id = device.id.context("stored device has an id")?;
    let (_, _, d) =
        cstore::diff_snapshots(&**conn, id, &profile, from, to, reveal).await.with_context(|| name.to_owned())?;
    if d.is_empty() {
        println!("no differences");
    } else {
        print!("{}", d.diff);
    }
    Ok(ExitCode::SUCCESS)
}

async fn config_history(ctx: &Ctx, name: &str, all: bool, limit: i64, json: bool) -> Result<ExitCode> {
    let device = device(ctx, name).await?;
    let conn = ctx.db.pool.get().await.context("database connection")?;
    let history = cstore::history(&**conn, device.id.context("stored device has an id")?, !all, limit).await?;
    if json {
        println!("{}", serde_json::to_string_pretty(&history)?);
        return Ok(ExitCode::SUCCESS);
    }
    if history.is_empty() {
        println!("{name}: no backups yet (netwarden config backup {name})");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{:<23}  {:<9}  {:>8}  CHANGE", "TAKEN (UTC)", "TRIGGER", "SNAPSHOT");
    for h in &history {
        let change = match (h.status.as_str(), h.changed, h.lines_added, h.lines_removed) {
            ("failed", ..) => format!("failed: {}", h.error.as_deref().unwrap_or("")),
            (_, true, Some(a), Some(r)) => format!("+{a} -{r}"),
            (_, true, ..) => "changed".to_owned(),
            _ if h.first => "first snapshot".to_owned(),
            _ => "unchanged".to_owned(),
        };
        let snapshot = h.snapshot_id.map_or("-".to_owned(), |s| s.to_string());
        println!("{:<23}  {:<9}  {:>8}  {change}", h.taken_at.format("%Y-%m-%d %H:%M:%S"), h.trigger, snapshot);
    }
    Ok(ExitCode::SUCCESS)
}
