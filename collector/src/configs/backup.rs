//! Backups of running configurations: one device, or many with bounded concurrency. Each backup
//! is one session lease (show running-config), then one transaction (see [`super::store`]).

use super::schedule::{self, BackupPlan, Candidate, ScheduleRules};
use super::{BackupTrigger, normalize, store};
use crate::inventory::Device;
use crate::ssh::{SshError, SshManager};
use chrono::{DateTime, Utc};
use futures_util::StreamExt;
use serde::Serialize;
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// One device's successful backup.
#[derive(Debug, Clone, Serialize)]
pub struct BackupOutcome {
    pub device: String,
    pub recorded: store::Recorded,
    pub duration: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Ssh(#[from] SshError),
    #[error("{device}: the running configuration is empty")]
    Empty { device: String },
    #[error("{device}: database: {message}")]
    Db { device: String, message: String },
}

impl BackupError {
    /// A stable short name (`timeout`, `host_key_changed`, …) for tables and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            BackupError::Ssh(e) => e.code(),
            BackupError::Empty { .. } => "empty",
            BackupError::Db { .. } => "database",
        }
    }
}

/// Backs up one device's running configuration. A failure is recorded too (as a failed
/// `config_backup` row) when the database is reachable.
pub async fn backup_device(
    manager: &SshManager,
    device: &Device,
    trigger: BackupTrigger,
) -> Result<BackupOutcome, BackupError> {
    let started = Instant::now();
    let result = fetch(manager, device).await;
    let db_err = |e: &dyn std::fmt::Display| BackupError::Db { device: device.name.clone(), message: e.to_string() };
    let Some(device_id) = device.id else {
        return Err(result.err().unwrap_or_else(|| db_err(&"device is not stored in the inventory")));
    };
    let mut client = manager.db().get().await.map_err(|e| db_err(&e))?;
    match result {
        Ok((profile, normalized)) => {
            let recorded =
                store::record_backup(&mut client, device_id, &profile, &normalized, trigger, started.elapsed())
                    .await
                    .map_err(|e| db_err(&e))?;
            metrics::counter!("netwarden_config_backups_total", "status" => "ok").increment(1);
            Ok(BackupOutcome { device: device.name.clone(), recorded, duration: started.elapsed() })
        }
        Err(e) => {
            metrics::counter!("netwarden_config_backups_total", "status" => "failed").increment(1);
            tracing::warn!(device = %device.name, error = %e, "configuration backup failed");
            if let Err(db) =
                store::record_failure(&**client, device_id, trigger, &e.to_string(), started.elapsed()).await
            {
                tracing::warn!(device = %device.name, error = %db, "recording the failed backup");
            }
            Err(e)
        }
    }
}

async fn fetch(
    manager: &SshManager,
    device: &Device,
) -> Result<(std::sync::Arc<crate::ssh::Profile>, String), BackupError> {
    let mut session = manager.session(device).await?;
    let raw = session.running_config().await?;
    let profile = session.profile().clone();
    drop(session);
    let normalized = normalize(&profile, &raw);
    if normalized.trim().is_empty() {
        return Err(BackupError::Empty { device: device.name.clone() });
    }
    Ok((profile, normalized))
}

/// Backs up `devices`, at most `concurrency` at a time (each device still gets at most one
/// session: the manager's per-device lock). Results come back in `devices`' order.
pub async fn backup_all(
    manager: &SshManager,
    devices: &[Device],
    trigger: BackupTrigger,
    concurrency: usize,
) -> Vec<(String, Result<BackupOutcome, BackupError>)> {
    let mut results: Vec<(usize, String, Result<BackupOutcome, BackupError>)> =
        // Owned devices: a stream over borrowed ones is not Send-general enough for tokio::spawn.
        futures_util::stream::iter(devices.iter().cloned().enumerate())
            .map(|(i, d)| async move {
                let r = backup_device(manager, &d, trigger).await;
                (i, d.name, r)
            })
            .buffer_unordered(concurrency.max(1))
            .collect()
            .await;
    results.sort_by_key(|(i, ..)| *i);
    results.into_iter().map(|(_, name, r)| (name, r)).collect()
}

/// The backup schedule (see [`schedule`] for when a device is due).
#[derive(Debug, Clone)]
pub struct ScheduleOptions {
    /// For devices without their own `backup_interval`: backed up when this long has passed since
    /// their last successful backup. Zero: such devices have no scheduled backup.
    pub interval: Duration,
    /// After a failed attempt, the next one comes this long after it (or the device's interval,
    /// if shorter).
    pub retry_after: Duration,
    /// The longest pause between two looks at the inventory and the backup history.
    pub check_every: Duration,
    /// Backups at once.
    pub concurrency: usize,
}

impl Default for ScheduleOptions {
    fn default() -> Self {
        ScheduleOptions {
            interval: Duration::from_secs(24 * 3600),
            retry_after: Duration::from_secs(3600),
            check_every: Duration::from_secs(60),
            concurrency: 20,
        }
    }
}

impl ScheduleOptions {
    pub fn rules(&self) -> ScheduleRules {
        ScheduleRules {
            default_interval: Some(self.interval).filter(|i| !i.is_zero()),
            retry_after: self.retry_after,
            max_wait: self.check_every,
        }
    }
}

/// Runs scheduled backups until `cancel`. Each round reads the inventory and the backup history,
/// backs up the devices with SSH credentials that are due (trigger `scheduled`, at most
/// `concurrency` at a time), then collects the CLI facts of those that answered; it then sleeps
/// until the next device is due, at most `check_every`. Returns how many backups it ran.
pub async fn run_schedule(
    manager: &SshManager,
    secrets: &crate::secrets::SecretBox,
    opts: &ScheduleOptions,
    cancel: tokio_util::sync::CancellationToken,
) -> usize {
    let rules = opts.rules();
    let mut ran = 0;
    // Attempts this process started, in case their outcome could not be recorded.
    let mut attempted: HashMap<i64, DateTime<Utc>> = HashMap::new();
    loop {
        let wait = match manager.db().get().await {
            Err(e) => Err(e.to_string()),
            Ok(client) => due_devices(&**client, secrets, &rules, &attempted).await.map_err(|e| e.to_string()),
        };
        let wait = match wait {
            Ok(round) if !round.due.is_empty() => {
                attempted.retain(|id, _| round.scheduled.contains(id));
                for d in &round.due {
                    attempted.extend(d.id.map(|id| (id, round.now)));
                }
                let results = tokio::select! {
                    r = backup_all(manager, &round.due, BackupTrigger::Scheduled, opts.concurrency) => r,
                    () = cancel.cancelled() => break,
                };
                let failed = results.iter().filter(|(_, r)| r.is_err()).count();
                tracing::info!(devices = results.len(), failed, "scheduled configuration backups");
                ran += results.len();
                // CLI facts (NTP, syslog, SNMP, AAA, BGP summary) of the devices that answered,
                // on the same schedule and the same (reused) sessions.
                let answered: Vec<Device> = round
                    .due
                    .iter()
                    .filter(|d| results.iter().any(|(n, r)| *n == d.name && r.is_ok()))
                    .cloned()
                    .collect();
                let facts = futures_util::stream::iter(answered)
                    .map(|d| async move { collect_facts(manager, &d).await })
                    .buffer_unordered(opts.concurrency.max(1))
                    .collect::<Vec<_>>();
                tokio::select! {
                    _ = facts => {}
                    () = cancel.cancelled() => break,
                }
                // Look again at once: more devices may have become due during the round.
                continue;
            }
            Ok(round) => round.plan.wait(round.now),
            Err(e) => {
                tracing::warn!(error = %e, "listing devices due for a configuration backup");
                opts.check_every
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = cancel.cancelled() => break,
        }
    }
    ran
}

/// Runs the profile's fact commands on a device and stores every fact (or why it failed).
pub async fn collect_facts(manager: &SshManager, device: &Device) -> Result<usize, String> {
    let Some(device_id) = device.id else { return Err(format!("{}: not stored", device.name)) };
    let mut session = manager.session(device).await.map_err(|e| e.to_string())?;
    let (facts, errors) = crate::ssh::facts::collect(&mut session).await.map_err(|e| e.to_string())?;
    drop(session);
    let client = manager.db().get().await.map_err(|e| e.to_string())?;
    for (name, fact) in &facts {
        let v = serde_json::to_value(fact).unwrap_or(serde_json::Value::Null);
        crate::ssh::store::store_fact(&**client, device_id, name, Ok(&v))
            .await
            .map_err(|e| crate::db::error_text(&e))?;
    }
    for (name, err) in &errors {
        crate::ssh::store::store_fact(&**client, device_id, name, Err(err.as_str()))
            .await
            .map_err(|e| crate::db::error_text(&e))?;
    }
    if !errors.is_empty() {
        tracing::debug!(device = %device.name, failed = errors.len(), "some CLI facts could not be read");
    }
    Ok(facts.len())
}

/// One look at the schedule: the devices due now and when to look again.
#[derive(Debug, Clone)]
pub struct DueDevices {
    /// The database's time of the look.
    pub now: DateTime<Utc>,
    /// Devices due now, in [`BackupPlan::due`] order.
    pub due: Vec<Device>,
    /// Ids of every device the schedule considered (stored, with SSH credentials).
    pub scheduled: Vec<i64>,
    pub plan: BackupPlan,
}

#[derive(Debug, thiserror::Error)]
pub enum DueError {
    #[error("reading the inventory: {0}")]
    Inventory(#[from] crate::inventory::StoreError),
    #[error("reading the backup history: {}", crate::db::error_text(.0))]
    History(#[from] tokio_postgres::Error),
}

/// The devices with SSH credentials due for a scheduled backup, from the stored inventory and
/// backup history. `attempted` holds attempts this process started whose outcome may not be
/// stored (see [`schedule::LastBackups::with_attempt`]).
pub async fn due_devices(
    client: &impl tokio_postgres::GenericClient,
    secrets: &crate::secrets::SecretBox,
    rules: &ScheduleRules,
    attempted: &HashMap<i64, DateTime<Utc>>,
) -> Result<DueDevices, DueError> {
    let devices: Vec<Device> = crate::inventory::store::list(client, secrets)
        .await?
        .into_iter()
        .filter(|d| d.ssh.is_some() && d.id.is_some())
        .collect();
    let scheduled: Vec<i64> = devices.iter().filter_map(|d| d.id).collect();
    let (now, mut last) = store::last_backups(client, &scheduled).await?;
    for (&id, &at) in attempted {
        let merged = last.get(&id).copied().unwrap_or_default().with_attempt(at);
        last.insert(id, merged);
    }
    let candidates: Vec<Candidate> =
        devices.iter().filter_map(|d| Some(Candidate { id: d.id?, interval: d.backup_interval })).collect();
    let plan = schedule::plan(&candidates, &last, rules, now);
    let mut by_id: HashMap<i64, Device> = devices.into_iter().filter_map(|d| Some((d.id?, d))).collect();
    let due = plan.due.iter().filter_map(|id| by_id.remove(id)).collect();
    Ok(DueDevices { now, due, scheduled, plan })
}
