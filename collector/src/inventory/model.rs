//! The inventory's data model: a device, its credentials, and the validated forms the poller uses.

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A device as the NOC declares it. Secrets live in [`Credentials`], which is never serialised
/// by the API layer (see `inventory::DeviceView` for what leaves the process).
#[derive(Debug, Clone, PartialEq)]
pub struct Device {
    /// Database id; `None` until stored.
    pub id: Option<i64>,
    /// Unique, stable name (the NOC's key for the device).
    pub name: String,
    /// Management address: host name or IP literal.
    pub host: String,
    /// SNMP UDP port (161 unless set in the address as `host:port`).
    pub snmp_port: u16,
    pub site: Option<String>,
    pub role: Option<String>,
    pub vendor: Option<String>,
    pub platform: Option<String>,
    pub tags: Vec<String>,
    pub snmp: SnmpCredentials,
    pub ssh: Option<SshCredentials>,
    /// Overrides the global poll interval when set.
    pub poll_interval: Option<Duration>,
    /// Overrides the global configuration backup interval (`[configs] backup_interval`) when set.
    pub backup_interval: Option<BackupInterval>,
}

/// How often a device's running configuration is backed up on schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupInterval {
    /// No scheduled backup (on-demand backups still run).
    Off,
    /// When this long has passed since the device's last successful backup.
    Every(Duration),
}

impl BackupInterval {
    /// Seconds as stored in `device.backup_interval_s` and shown by the API: 0 is [`BackupInterval::Off`].
    pub fn as_secs(self) -> u64 {
        match self {
            BackupInterval::Off => 0,
            BackupInterval::Every(interval) => interval.as_secs(),
        }
    }

    /// The interval that applies, `None` meaning no scheduled backup.
    pub fn interval(self) -> Option<Duration> {
        match self {
            BackupInterval::Off => None,
            BackupInterval::Every(interval) => Some(interval),
        }
    }
}

impl Device {
    /// A device polled with SNMP v2c and nothing else set (no site, role, SSH or own intervals).
    pub fn v2c(name: &str, host: &str, snmp_port: u16, community: &str) -> Device {
        Device {
            id: None,
            name: name.into(),
            host: host.into(),
            snmp_port,
            site: None,
            role: None,
            vendor: None,
            platform: None,
            tags: vec![],
            snmp: SnmpCredentials::V2c { community: community.into() },
            ssh: None,
            poll_interval: None,
            backup_interval: None,
        }
    }

    /// `host:port` as the SNMP client needs it (IPv6 literals bracketed).
    pub fn snmp_target(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.snmp_port)
        } else {
            format!("{}:{}", self.host, self.snmp_port)
        }
    }
}

#[derive(Clone, PartialEq)]
pub enum SnmpCredentials {
    V2c { community: String },
    V3(SnmpV3Credentials),
}

#[derive(Clone, PartialEq)]
pub struct SnmpV3Credentials {
    pub user: String,
    /// `None` means noAuthNoPriv.
    pub auth: Option<(AuthProtocol, String)>,
    /// `None` means no privacy; requires `auth`.
    pub privacy: Option<(PrivProtocol, String)>,
    pub context: Option<String>,
}

/// Debug never prints a secret: logs and panics stay clean.
impl std::fmt::Debug for SnmpCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SnmpCredentials::V2c { .. } => f.write_str("V2c { community: <redacted> }"),
            SnmpCredentials::V3(v3) => write!(
                f,
                "V3 {{ user: {:?}, auth: {:?}, privacy: {:?}, context: {:?} }}",
                v3.user,
                v3.auth.as_ref().map(|(p, _)| p),
                v3.privacy.as_ref().map(|(p, _)| p),
                v3.context
            ),
        }
    }
}

impl std::fmt::Debug for SnmpV3Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&SnmpCredentials::V3(self.clone()), f)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AuthProtocol {
    #[serde(rename = "MD5")]
    Md5,
    #[serde(rename = "SHA")]
    Sha1,
    #[serde(rename = "SHA-224")]
    Sha224,
    #[serde(rename = "SHA-256")]
    Sha256,
    #[serde(rename = "SHA-384")]
    Sha384,
    #[serde(rename = "SHA-512")]
    Sha512,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PrivProtocol {
    #[serde(rename = "DES")]
    Des,
    #[serde(rename = "AES")]
    Aes128,
    #[serde(rename = "AES-192")]
    Aes192,
    #[serde(rename = "AES-256")]
    Aes256,
}

#[derive(Clone, PartialEq)]
pub struct SshCredentials {
    pub user: String,
    pub auth: SshAuth,
    /// SSH TCP port, 22 unless set.
    pub port: u16,
}

#[derive(Clone, PartialEq)]
pub enum SshAuth {
    Password(String),
    /// A private key in OpenSSH PEM form, with an optional passphrase.
    Key {
        private_key: String,
        passphrase: Option<String>,
    },
}

impl std::fmt::Debug for SshCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.auth {
            SshAuth::Password(_) => "password",
            SshAuth::Key { .. } => "key",
        };
        write!(f, "SshCredentials {{ user: {:?}, auth: {kind} <redacted>, port: {} }}", self.user, self.port)
    }
}

impl std::str::FromStr for AuthProtocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AuthProtocol::from_name(s).ok_or_else(|| format!("{s:?} is not one of {}", AuthProtocol::names()))
    }
}

impl std::str::FromStr for PrivProtocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PrivProtocol::from_name(s).ok_or_else(|| format!("{s:?} is not one of {}", PrivProtocol::names()))
    }
}
