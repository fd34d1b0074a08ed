//! The `device` table (migrations/0001_inventory.sql): the only code that reads or writes it.
//!
//! Secrets are sealed with [`SecretBox`] before they reach SQL and opened after, bound to the
//! device name and the kind of secret (`device:<name>:snmp`, `device:<name>:ssh`). Reads for the
//! API (`list_views`, `get_view_by_name`) open nothing and need no key.

use super::model::{
    AuthProtocol, BackupInterval, Device, PrivProtocol, SnmpCredentials, SnmpV3Credentials, SshAuth, SshCredentials,
};
use super::view::{DeviceView, SnmpVersion, SshAuthKind};
use crate::secrets::{SecretBox, SecretError};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use std::time::Duration;
use tokio_postgres::GenericClient;
use tokio_postgres::Row;

/// What an import does with stored devices that are not in the imported set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImportMode {
    /// Create or update the imported devices; leave the others alone.
    Merge,
    /// As `Merge`, then delete every device the import does not name.
    Replace,
}

/// Device names by what the import did to them, each list sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportReport {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub unchanged: Vec<String>,
    pub deleted: Vec<String>,
}

/// A one-line summary: `inventory imported: 2 created, 1 updated, 5 unchanged, 0 deleted`.
impl std::fmt::Display for ImportReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "inventory imported: {} created, {} updated, {} unchanged, {} deleted",
            self.created.len(),
            self.updated.len(),
            self.unchanged.len(),
            self.deleted.len()
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
    #[error("device {device:?}: {source}")]
    Secret {
        device: String,
        #[source]
        source: SecretError,
    },
    /// A stored row that cannot be a [`Device`] (edited by hand, or sealed secret of the wrong shape).
    #[error("device {device:?}: stored row is invalid: {reason}")]
    InvalidRow { device: String, reason: String },
    /// A device that cannot be stored as given.
    #[error("device {device:?}: {reason}")]
    InvalidDevice { device: String, reason: String },
}

impl StoreError {
    /// Whether retrying the same call may succeed (connection lost, serialization failure, deadlock).
    pub fn is_transient(&self) -> bool {
        use tokio_postgres::error::SqlState;
        match self {
            StoreError::Db(e) => {
                e.is_closed()
                    || e.code().is_some_and(|c| {
                        *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
                    })
                    || std::error::Error::source(e).is_some_and(|s| s.is::<std::io::Error>())
            }
            _ => false,
        }
    }
}

/// Imports take this transaction-scoped advisory lock so two imports never interleave.
const IMPORT_LOCK: i64 = 0x6e77_5f69_6e76_0001;

const COLUMNS: &str = "id, name, host, snmp_port, site, role, vendor, platform, tags, \
    snmp_version, snmp_v3_user, snmp_v3_auth, snmp_v3_priv, snmp_v3_context, snmp_secret, \
    ssh_user, ssh_port, ssh_auth_kind, ssh_secret, poll_interval_s, backup_interval_s";

const UPSERT: &str = "INSERT INTO device (name, host, snmp_port, site, role, vendor, platform, tags, \
        snmp_version, snmp_v3_user, snmp_v3_auth, snmp_v3_priv, snmp_v3_context, snmp_secret, \
        ssh_user, ssh_port, ssh_auth_kind, ssh_secret, poll_interval_s, backup_interval_s) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20) \
    ON CONFLICT (name) DO UPDATE SET host = EXCLUDED.host, snmp_port = EXCLUDED.snmp_port, \
        site = EXCLUDED.site, role = EXCLUDED.role, vendor = EXCLUDED.vendor, platform = EXCLUDED.platform, \
        tags = EXCLUDED.tags, snmp_version = EXCLUDED.snmp_version, snmp_v3_user = EXCLUDED.snmp_v3_user, \
        snmp_v3_auth = EXCLUDED.snmp_v3_auth, snmp_v3_priv = EXCLUDED.snmp_v3_priv, \
        snmp_v3_context = EXCLUDED.snmp_v3_context, snmp_secret = EXCLUDED.snmp_secret, \
        ssh_user = EXCLUDED.ssh_user, ssh_port = EXCLUDED.ssh_port, ssh_auth_kind = EXCLUDED.ssh_auth_kind, \
        ssh_secret = EXCLUDED.ssh_secret, poll_interval_s = EXCLUDED.poll_interval_s, \
        backup_interval_s = EXCLUDED.backup_interval_s, updated_at = now() \
    RETURNING id, (xmax = 0) AS created"; // xmax is 0 only on a fresh insert

/// Writes `devices` in one transaction: each is created or updated by name (a device equal to
/// the stored one is left untouched, so its `updated_at` keeps meaning something); with
/// [`ImportMode::Replace`], devices not in `devices` are deleted. All or nothing.
///
/// Takes a client or a transaction (then the import runs in a savepoint).
pub async fn import(
    client: &mut impl GenericClient,
    secrets: &SecretBox,
    devices: &[Device],
    mode: ImportMode,
) -> Result<ImportReport, StoreError> {
    let mut names = HashSet::new();
    if let Some(dup) = devices.iter().find(|d| !names.insert(d.name.as_str())) {
        return Err(StoreError::InvalidDevice {
            device: dup.name.clone(),
            reason: "appears twice in the import".to_owned(),
        });
    }

    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&IMPORT_LOCK]).await?;
    let rows = tx.query(format!("SELECT {COLUMNS} FROM device FOR UPDATE").as_str(), &[]).await?;
    // A stored device that no longer opens (e.g. sealed under an old key) is simply rewritten.
    let stored: HashMap<String, Option<Device>> =
        rows.iter().map(|row| (row.get::<_, String>("name"), device_from_row(row, secrets).ok())).collect();

    let upsert = tx.prepare(UPSERT).await?;
    let mut report = ImportReport::default();
    for device in devices {
        if let Some(Some(existing)) = stored.get(&device.name)
            && (Device { id: existing.id, ..device.clone() }) == *existing
        {
            report.unchanged.push(device.name.clone());
            continue;
        }
        let params = DeviceParams::new(device, secrets)?;
        let row = tx.query_one(&upsert, &params.as_sql()).await?;
        if row.get::<_, bool>("created") {
            report.created.push(device.name.clone());
        } else {
            report.updated.push(device.name.clone());
        }
    }
    if mode == ImportMode::Replace {
        let keep: Vec<&str> = devices.iter().map(|d| d.name.as_str()).collect();
        let rows = tx.query("DELETE FROM device WHERE name <> ALL($1) RETURNING name", &[&keep]).await?;
        report.deleted = rows.iter().map(|r| r.get("name")).collect();
    }
    tx.commit().await?;

    for list in [&mut report.created, &mut report.updated, &mut report.unchanged, &mut report.deleted] {
        list.sort();
    }
    tracing::info!(
        ?mode,
        created = report.created.len(),
        updated = report.updated.len(),
        unchanged = report.unchanged.len(),
        deleted = report.deleted.len(),
        "inventory imported"
    );
    Ok(report)
}

/// Every device with its secrets opened, by name.
pub async fn list(client: &impl GenericClient, secrets: &SecretBox) -> Result<Vec<Device>, StoreError> {
    let statement = client.prepare(&format!("SELECT {COLUMNS} FROM device ORDER BY name")).await?;
    let rows = client.query(&statement, &[]).await?;
    rows.iter().map(|row| device_from_row(row, secrets)).collect()
}

pub async fn get_by_name(
    client: &impl GenericClient,
    secrets: &SecretBox,
    name: &str,
) -> Result<Option<Device>, StoreError> {
    let statement = client.prepare(&format!("SELECT {COLUMNS} FROM device WHERE name = $1")).await?;
    let row = client.query_opt(&statement, &[&name]).await?;
    row.map(|row| device_from_row(&row, secrets)).transpose()
}

/// Every device as the API shows it, by name. Opens no secret.
pub async fn list_views(client: &impl GenericClient) -> Result<Vec<DeviceView>, StoreError> {
    let statement = client.prepare(&format!("SELECT {COLUMNS} FROM device ORDER BY name")).await?;
    let rows = client.query(&statement, &[]).await?;
    rows.iter().map(view_from_row).collect()
}

pub async fn get_view_by_name(client: &impl GenericClient, name: &str) -> Result<Option<DeviceView>, StoreError> {
    let statement = client.prepare(&format!("SELECT {COLUMNS} FROM device WHERE name = $1")).await?;
    let row = client.query_opt(&statement, &[&name]).await?;
    row.as_ref().map(view_from_row).transpose()
}

/// True if a device was deleted.
pub async fn delete_by_name(client: &impl GenericClient, name: &str) -> Result<bool, StoreError> {
    let statement = client.prepare("DELETE FROM device WHERE name = $1").await?;
    Ok(client.execute(&statement, &[&name]).await? > 0)
}

/// Creates or replaces one device, by name; returns it as stored (with its id).
pub async fn upsert_one(
    client: &impl GenericClient,
    secrets: &SecretBox,
    device: &Device,
) -> Result<Device, StoreError> {
    let params = DeviceParams::new(device, secrets)?;
    let statement = client.prepare(UPSERT).await?;
    let row = client.query_one(&statement, &params.as_sql()).await?;
    Ok(Device { id: Some(row.get("id")), ..device.clone() })
}

// ---- sealed secrets ----

// No Debug: these hold secrets in clear.
#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SnmpSecret {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    community: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auth_password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    priv_password: Option<String>,
}

#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SshSecret {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    private_key: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    passphrase: Option<String>,
}

fn snmp_context(name: &str) -> String {
    format!("device:{name}:snmp")
}

fn ssh_context(name: &str) -> String {
    format!("device:{name}:ssh")
}

fn seal_json<T: Serialize>(secrets: &SecretBox, device: &str, context: &str, value: &T) -> Result<Vec<u8>, StoreError> {
    let json = serde_json::to_vec(value).expect("serialising strings to JSON cannot fail");
    secrets.seal(context, &json).map_err(|source| StoreError::Secret { device: device.to_owned(), source })
}

fn open_json<T: serde::de::DeserializeOwned>(
    secrets: &SecretBox,
    device: &str,
    context: &str,
    sealed: &[u8],
) -> Result<T, StoreError> {
    let json =
        secrets.open(context, sealed).map_err(|source| StoreError::Secret { device: device.to_owned(), source })?;
    // serde_json's message names a position, never the content.
    serde_json::from_slice(&json).map_err(|e| StoreError::InvalidRow {
        device: device.to_owned(),
        reason: format!("sealed secret ({context}) is not the expected JSON: {e}"),
    })
}

// ---- rows ----

/// A device as SQL parameters, in `UPSERT` order.
struct DeviceParams<'a> {
    device: &'a Device,
    snmp_port: i32,
    snmp_version: &'static str,
    v3_user: Option<&'a str>,
    v3_auth: Option<&'static str>,
    v3_priv: Option<&'static str>,
    v3_context: Option<&'a str>,
    snmp_secret: Option<Vec<u8>>,
    ssh_user: Option<&'a str>,
    ssh_port: Option<i32>,
    ssh_auth_kind: Option<&'static str>,
    ssh_secret: Option<Vec<u8>>,
    poll_interval_s: Option<i32>,
    /// 0 is [`BackupInterval::Off`].
    backup_interval_s: Option<i32>,
}

impl<'a> DeviceParams<'a> {
    fn new(device: &'a Device, secrets: &SecretBox) -> Result<Self, StoreError> {
        let name = device.name.as_str();
        let invalid = |reason: &str| StoreError::InvalidDevice { device: name.to_owned(), reason: reason.to_owned() };
        if name.is_empty() {
            return Err(invalid("the name is empty"));
        }
        let (v3_user, v3_auth, v3_priv, v3_context, snmp_secret) = match &device.snmp {
            SnmpCredentials::V2c { community } => {
                let secret = SnmpSecret { community: Some(community.clone()), ..SnmpSecret::default() };
                (None, None, None, None, Some(seal_json(secrets, name, &snmp_context(name), &secret)?))
            }
            SnmpCredentials::V3(v3) => {
                if v3.privacy.is_some() && v3.auth.is_none() {
                    return Err(invalid("SNMPv3 privacy without authentication"));
                }
                let secret = SnmpSecret {
                    community: None,
                    auth_password: v3.auth.as_ref().map(|(_, pw)| pw.clone()),
                    priv_password: v3.privacy.as_ref().map(|(_, pw)| pw.clone()),
                };
                let sealed = match v3.auth {
                    Some(_) => Some(seal_json(secrets, name, &snmp_context(name), &secret)?),
                    None => None,
                };
                (
                    Some(v3.user.as_str()),
                    v3.auth.as_ref().map(|(p, _)| p.name()),
                    v3.privacy.as_ref().map(|(p, _)| p.name()),
                    v3.context.as_deref(),
                    sealed,
                )
            }
        };
        let (ssh_user, ssh_port, ssh_auth_kind, ssh_secret) = match &device.ssh {
            None => (None, None, None, None),
            Some(ssh) => {
                let secret = match &ssh.auth {
                    SshAuth::Password(password) => {
                        SshSecret { password: Some(password.clone()), ..SshSecret::default() }
                    }
                    SshAuth::Key { private_key, passphrase } => SshSecret {
                        password: None,
                        private_key: Some(private_key.clone()),
                        passphrase: passphrase.clone(),
                    },
                };
                (
                    Some(ssh.user.as_str()),
                    Some(i32::from(ssh.port)),
                    Some(SshAuthKind::of(&ssh.auth).as_str()),
                    Some(seal_json(secrets, name, &ssh_context(name), &secret)?),
                )
            }
        };
        let poll_interval_s = match device.poll_interval {
            None => None,
            Some(interval) => match i32::try_from(interval.as_secs()) {
                Ok(secs) if secs > 0 && interval.subsec_nanos() == 0 => Some(secs),
                _ => {
                    return Err(invalid("the poll interval must be a whole number of seconds, at least 1s"));
                }
            },
        };
        let backup_interval_s = match device.backup_interval {
            None => None,
            Some(BackupInterval::Off) => Some(0),
            Some(BackupInterval::Every(interval)) => match i32::try_from(interval.as_secs()) {
                Ok(secs) if secs > 0 && interval.subsec_nanos() == 0 => Some(secs),
                _ => {
                    return Err(invalid("the backup interval must be a whole number of seconds, at least 1s"));
                }
            },
        };
        Ok(DeviceParams {
            device,
            snmp_port: i32::from(device.snmp_port),
            snmp_version: SnmpVersion::of(&device.snmp).as_str(),
            v3_user,
            v3_auth,
            v3_priv,
            v3_context,
            snmp_secret,
            ssh_user,
            ssh_port,
            ssh_auth_kind,
            ssh_secret,
            poll_interval_s,
            backup_interval_s,
        })
    }

    fn as_sql(&self) -> [&(dyn tokio_postgres::types::ToSql + Sync); 20] {
        let d = self.device;
        [
            &d.name,
            &d.host,
            &self.snmp_port,
            &d.site,
            &d.role,
            &d.vendor,
            &d.platform,
            &d.tags,
            &self.snmp_version,
            &self.v3_user,
            &self.v3_auth,
            &self.v3_priv,
            &self.v3_context,
            &self.snmp_secret,
            &self.ssh_user,
            &self.ssh_port,
            &self.ssh_auth_kind,
            &self.ssh_secret,
            &self.poll_interval_s,
            &self.backup_interval_s,
        ]
    }
}

/// The columns every row reader needs, checked; secrets still sealed.
struct RowParts {
    id: i64,
    name: String,
    host: String,
    snmp_port: u16,
    site: Option<String>,
    role: Option<String>,
    vendor: Option<String>,
    platform: Option<String>,
    tags: Vec<String>,
    snmp_version: SnmpVersion,
    v3_user: Option<String>,
    v3_auth: Option<AuthProtocol>,
    v3_priv: Option<PrivProtocol>,
    v3_context: Option<String>,
    snmp_secret: Option<Vec<u8>>,
    ssh: Option<(String, u16, SshAuthKind, Option<Vec<u8>>)>,
    poll_interval: Option<Duration>,
    backup_interval: Option<BackupInterval>,
}

impl RowParts {
    fn read(row: &Row) -> Result<Self, StoreError> {
        let name: String = row.try_get("name")?;
        let invalid = |reason: String| StoreError::InvalidRow { device: name.clone(), reason };
        let port = |column: &str, value: i32| {
            u16::try_from(value)
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| invalid(format!("{column} {value} is out of range")))
        };
        let snmp_version: String = row.try_get("snmp_version")?;
        let snmp_version = SnmpVersion::from_stored(&snmp_version)
            .ok_or_else(|| invalid(format!("snmp_version {snmp_version:?} is not v2c or v3")))?;
        let v3_auth = row
            .try_get::<_, Option<String>>("snmp_v3_auth")?
            .map(|p| AuthProtocol::from_name(&p).ok_or_else(|| invalid(format!("snmp_v3_auth {p:?} is unknown"))))
            .transpose()?;
        let v3_priv = row
            .try_get::<_, Option<String>>("snmp_v3_priv")?
            .map(|p| PrivProtocol::from_name(&p).ok_or_else(|| invalid(format!("snmp_v3_priv {p:?} is unknown"))))
            .transpose()?;
        let ssh_user: Option<String> = row.try_get("ssh_user")?;
        let ssh = match ssh_user {
            None => None,
            Some(user) => {
                let ssh_port: Option<i32> = row.try_get("ssh_port")?;
                let ssh_port = port("ssh_port", ssh_port.ok_or_else(|| invalid("ssh_port is missing".to_owned()))?)?;
                let kind: Option<String> = row.try_get("ssh_auth_kind")?;
                let kind = kind
                    .as_deref()
                    .and_then(SshAuthKind::from_stored)
                    .ok_or_else(|| invalid(format!("ssh_auth_kind {kind:?} is not password or key")))?;
                Some((user, ssh_port, kind, row.try_get("ssh_secret")?))
            }
        };
        let poll_interval = row
            .try_get::<_, Option<i32>>("poll_interval_s")?
            .map(|s| {
                u64::try_from(s)
                    .map(Duration::from_secs)
                    .map_err(|_| invalid(format!("poll_interval_s {s} is negative")))
            })
            .transpose()?;
        let backup_interval = row
            .try_get::<_, Option<i32>>("backup_interval_s")?
            .map(|s| match u64::try_from(s) {
                Ok(0) => Ok(BackupInterval::Off),
                Ok(secs) => Ok(BackupInterval::Every(Duration::from_secs(secs))),
                Err(_) => Err(invalid(format!("backup_interval_s {s} is negative"))),
            })
            .transpose()?;
        Ok(RowParts {
            id: row.try_get("id")?,
            snmp_port: port("snmp_port", row.try_get("snmp_port")?)?,
            host: row.try_get("host")?,
            site: row.try_get("site")?,
            role: row.try_get("role")?,
            vendor: row.try_get("vendor")?,
            platform: row.try_get("platform")?,
            tags: row.try_get("tags")?,
            snmp_version,
            v3_user: row.try_get("snmp_v3_user")?,
            v3_auth,
            v3_priv,
            v3_context: row.try_get("snmp_v3_context")?,
            snmp_secret: row.try_get("snmp_secret")?,
            ssh,
            poll_interval,
            backup_interval,
            name,
        })
    }
}

fn device_from_row(row: &Row, secrets: &SecretBox) -> Result<Device, StoreError> {
    let parts = RowParts::read(row)?;
    let name = parts.name.as_str();
    let invalid = |reason: &str| StoreError::InvalidRow { device: name.to_owned(), reason: reason.to_owned() };
    let snmp_secret = match &parts.snmp_secret {
        Some(sealed) => open_json::<SnmpSecret>(secrets, name, &snmp_context(name), sealed)?,
        None => SnmpSecret::default(),
    };
    let snmp = match parts.snmp_version {
        SnmpVersion::V2c => SnmpCredentials::V2c {
            community: snmp_secret.community.ok_or_else(|| invalid("v2c without a stored community"))?,
        },
        SnmpVersion::V3 => {
            let auth = match parts.v3_auth {
                None => None,
                Some(p) => {
                    Some((p, snmp_secret.auth_password.ok_or_else(|| invalid("v3 auth without a stored password"))?))
                }
            };
            let privacy = match parts.v3_priv {
                None => None,
                Some(p) => {
                    Some((p, snmp_secret.priv_password.ok_or_else(|| invalid("v3 privacy without a stored password"))?))
                }
            };
            SnmpCredentials::V3(SnmpV3Credentials {
                user: parts.v3_user.clone().ok_or_else(|| invalid("v3 without a user"))?,
                auth,
                privacy,
                context: parts.v3_context.clone(),
            })
        }
    };
    let ssh = match &parts.ssh {
        None => None,
        Some((user, port, kind, sealed)) => {
            let sealed = sealed.as_deref().ok_or_else(|| invalid("ssh without a stored secret"))?;
            let secret: SshSecret = open_json(secrets, name, &ssh_context(name), sealed)?;
            let auth = match kind {
                SshAuthKind::Password => {
                    SshAuth::Password(secret.password.ok_or_else(|| invalid("ssh password missing from the secret"))?)
                }
                SshAuthKind::Key => SshAuth::Key {
                    private_key: secret.private_key.ok_or_else(|| invalid("ssh key missing from the secret"))?,
                    passphrase: secret.passphrase,
                },
            };
            Some(SshCredentials { user: user.clone(), auth, port: *port })
        }
    };
    Ok(Device {
        id: Some(parts.id),
        name: parts.name.clone(),
        host: parts.host,
        snmp_port: parts.snmp_port,
        site: parts.site,
        role: parts.role,
        vendor: parts.vendor,
        platform: parts.platform,
        tags: parts.tags,
        snmp,
        ssh,
        poll_interval: parts.poll_interval,
        backup_interval: parts.backup_interval,
    })
}

fn view_from_row(row: &Row) -> Result<DeviceView, StoreError> {
    let parts = RowParts::read(row)?;
    let ssh_auth = parts.ssh.as_ref().map(|(_, _, kind, _)| *kind);
    Ok(DeviceView {
        id: Some(parts.id),
        name: parts.name,
        host: parts.host,
        snmp_port: parts.snmp_port,
        site: parts.site,
        role: parts.role,
        vendor: parts.vendor,
        platform: parts.platform,
        tags: parts.tags,
        poll_interval_s: parts.poll_interval.map(|i| i.as_secs()),
        backup_interval_s: parts.backup_interval.map(BackupInterval::as_secs),
        snmp_version: parts.snmp_version,
        has_community: parts.snmp_version == SnmpVersion::V2c && parts.snmp_secret.is_some(),
        v3_user: parts.v3_user,
        v3_auth: parts.v3_auth,
        v3_priv: parts.v3_priv,
        v3_context: parts.v3_context,
        ssh_user: parts.ssh.as_ref().map(|(user, ..)| user.clone()),
        ssh_port: parts.ssh.as_ref().map(|(_, port, ..)| *port),
        ssh_auth,
        has_ssh_password: ssh_auth == Some(SshAuthKind::Password),
        has_ssh_key: ssh_auth == Some(SshAuthKind::Key),
    })
}
