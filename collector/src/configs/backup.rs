//! Backups of running configurations: one device, or many with bounded concurrency. Each backup
//! is one session lease (show running-config), then one transaction (see [`super::store`]).

use super::{BackupTrigger, normalize, store};
use crate::inventory::Device;
use crate::ssh::{SshError, SshManager};
use futures_util::StreamExt;
use serde::Serialize;
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

/// The backup schedule: one interval for every device with SSH credentials.
#[derive(Debug, Clone)]
pub struct ScheduleOptions {
    /// A device is backed up when its last attempt is older than this.
    pub interval: Duration,
    /// How often to look for devices that are due.
    pub check_every: Duration,
    /// Backups at once.
    pub concurrency: usize,
}

impl Default for ScheduleOptions {
    fn default() -> Self {
        ScheduleOptions {
            interval: Duration::from_secs(24 * 3600),
            check_every: Duration::from_secs(60),
            concurrency: 20,
        }
    }
}

/// Runs scheduled backups until `cancel`: at start and every `check_every`, the devices with SSH
/// credentials whose last attempt is older than `interval` are backed up (trigger `scheduled`). A
/// failed attempt counts as an attempt, so a dead device is retried once per interval, not once
/// per check. Returns how many backups it ran.
pub async fn run_schedule(
    manager: &SshManager,
    secrets: &crate::secrets::SecretBox,
    opts: &ScheduleOptions,
    cancel: tokio_util::sync::CancellationToken,
) -> usize {
    let mut ran = 0;
    loop {
        match due_devices(manager, secrets, opts.interval).await {
            Ok(due) if !due.is_empty() => {
                let results = tokio::select! {
                    r = backup_all(manager, &due, BackupTrigger::Scheduled, opts.concurrency) => r,
                    () = cancel.cancelled() => break,
                };
                let failed = results.iter().filter(|(_, r)| r.is_err()).count();
                tracing::info!(devices = results.len(), failed, "scheduled configuration backups");
                ran += results.len();
                // CLI facts (NTP, syslog, SNMP, AAA, BGP summary) of the devices that answered,
                // on the same schedule and the same (reused) sessions.
                let answered: Vec<Device> =
                    due.iter().filter(|d| results.iter().any(|(n, r)| *n == d.name && r.is_ok())).cloned().collect();
                let facts = futures_util::stream::iter(answered)
                    .map(|d| async move { collect_facts(manager, &d).await })
                    .buffer_unordered(opts.concurrency.max(1))
                    .collect::<Vec<_>>();
                tokio::select! {
                    _ = facts => {}
                    () = cancel.cancelled() => break,
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "listing devices due for a configuration backup"),
        }
        tokio::select! {
            () = tokio::time::sleep(opts.check_every) => {}
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

async fn due_devices(
    manager: &SshManager,
    secrets: &crate::secrets::SecretBox,
    interval: Duration,
) -> Result<Vec<Device>, String> {
    let client = manager.db().get().await.map_err(|e| e.to_string())?;
    let devices: Vec<Device> = crate::inventory::store::list(&**client, secrets)
        .await
        .map_err(|e| e.to_string())?
        .into_iter()
        .filter(|d| d.ssh.is_some() && d.id.is_some())
        .collect();
    let ids: Vec<i64> = devices.iter().filter_map(|d| d.id).collect();
    let due = store::due_for_backup(&**client, &ids, interval).await.map_err(|e| e.to_string())?;
    Ok(devices.into_iter().filter(|d| d.id.is_some_and(|id| due.contains(&id))).collect())
}
