//! What the API shows of a device: everything but its secrets, with flags saying which are set.

use super::model::{AuthProtocol, BackupInterval, Device, PrivProtocol, SnmpCredentials, SshAuth};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SnmpVersion {
    V2c,
    V3,
}

impl SnmpVersion {
    /// As stored in `device.snmp_version` and written in files.
    pub fn as_str(self) -> &'static str {
        match self {
            SnmpVersion::V2c => "v2c",
            SnmpVersion::V3 => "v3",
        }
    }

    pub fn from_stored(s: &str) -> Option<Self> {
        match s {
            "v2c" => Some(SnmpVersion::V2c),
            "v3" => Some(SnmpVersion::V3),
            _ => None,
        }
    }

    pub fn of(credentials: &SnmpCredentials) -> Self {
        match credentials {
            SnmpCredentials::V2c { .. } => SnmpVersion::V2c,
            SnmpCredentials::V3(_) => SnmpVersion::V3,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SshAuthKind {
    Password,
    Key,
}

impl SshAuthKind {
    /// As stored in `device.ssh_auth_kind`.
    pub fn as_str(self) -> &'static str {
        match self {
            SshAuthKind::Password => "password",
            SshAuthKind::Key => "key",
        }
    }

    pub fn from_stored(s: &str) -> Option<Self> {
        match s {
            "password" => Some(SshAuthKind::Password),
            "key" => Some(SshAuthKind::Key),
            _ => None,
        }
    }

    pub fn of(auth: &SshAuth) -> Self {
        match auth {
            SshAuth::Password(_) => SshAuthKind::Password,
            SshAuth::Key { .. } => SshAuthKind::Key,
        }
    }
}

/// A device without its secrets. Built from a [`Device`] or straight from a stored row
/// (`store::list_views`), which needs no key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceView {
    pub id: Option<i64>,
    pub name: String,
    pub host: String,
    pub snmp_port: u16,
    pub site: Option<String>,
    pub role: Option<String>,
    pub vendor: Option<String>,
    pub platform: Option<String>,
    pub tags: Vec<String>,
    /// Overrides the global poll interval when set.
    pub poll_interval_s: Option<u64>,
    /// Overrides the global configuration backup interval when set; 0 means no scheduled backup.
    pub backup_interval_s: Option<u64>,
    pub snmp_version: SnmpVersion,
    /// v2c only: a community is stored.
    pub has_community: bool,
    pub v3_user: Option<String>,
    /// `None` means noAuthNoPriv; an auth protocol always comes with its password.
    pub v3_auth: Option<AuthProtocol>,
    /// `None` means no privacy; a privacy protocol always comes with its password.
    pub v3_priv: Option<PrivProtocol>,
    pub v3_context: Option<String>,
    pub ssh_user: Option<String>,
    pub ssh_port: Option<u16>,
    pub ssh_auth: Option<SshAuthKind>,
    pub has_ssh_password: bool,
    pub has_ssh_key: bool,
}

impl From<&Device> for DeviceView {
    fn from(device: &Device) -> Self {
        let (v3_user, v3_auth, v3_priv, v3_context) = match &device.snmp {
            SnmpCredentials::V2c { .. } => (None, None, None, None),
            SnmpCredentials::V3(v3) => (
                Some(v3.user.clone()),
                v3.auth.as_ref().map(|(p, _)| *p),
                v3.privacy.as_ref().map(|(p, _)| *p),
                v3.context.clone(),
            ),
        };
        let ssh_auth = device.ssh.as_ref().map(|s| SshAuthKind::of(&s.auth));
        DeviceView {
            id: device.id,
            name: device.name.clone(),
            host: device.host.clone(),
            snmp_port: device.snmp_port,
            site: device.site.clone(),
            role: device.role.clone(),
            vendor: device.vendor.clone(),
            platform: device.platform.clone(),
            tags: device.tags.clone(),
            poll_interval_s: device.poll_interval.map(|i| i.as_secs()),
            backup_interval_s: device.backup_interval.map(BackupInterval::as_secs),
            snmp_version: SnmpVersion::of(&device.snmp),
            has_community: matches!(&device.snmp, SnmpCredentials::V2c { community } if !community.is_empty()),
            v3_user,
            v3_auth,
            v3_priv,
            v3_context,
            ssh_user: device.ssh.as_ref().map(|s| s.user.clone()),
            ssh_port: device.ssh.as_ref().map(|s| s.port),
            ssh_auth,
            has_ssh_password: ssh_auth == Some(SshAuthKind::Password),
            has_ssh_key: ssh_auth == Some(SshAuthKind::Key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::model::{SnmpV3Credentials, SshCredentials};

    #[test]
    fn view_shows_which_secrets_exist_but_never_their_values() {
        let device = Device {
            id: Some(7),
            name: "leaf1".into(),
            host: "10.0.0.1".into(),
            snmp_port: 161,
            site: None,
            role: Some("leaf".into()),
            vendor: None,
            platform: None,
            tags: vec!["lab".into()],
            snmp: SnmpCredentials::V3(SnmpV3Credentials {
                user: "netops".into(),
                auth: Some((AuthProtocol::Sha256, "authsecret1".into())),
                privacy: Some((PrivProtocol::Aes256, "privsecret1".into())),
                context: None,
            }),
            ssh: Some(SshCredentials {
                user: "admin".into(),
                auth: SshAuth::Key {
                    private_key: "-----BEGIN KEYSECRET".into(),
                    passphrase: Some("phrasesecret".into()),
                },
                port: 22,
            }),
            poll_interval: Some(std::time::Duration::from_secs(60)),
            backup_interval: Some(BackupInterval::Every(std::time::Duration::from_secs(6 * 3600))),
        };
        let view = DeviceView::from(&device);
        let json = serde_json::to_string(&view).unwrap();
        for secret in ["authsecret1", "privsecret1", "KEYSECRET", "phrasesecret"] {
            assert!(!json.contains(secret), "{json}");
        }
        let value = serde_json::to_value(&view).unwrap();
        assert_eq!(value["snmp_version"], "v3");
        assert_eq!(value["v3_auth"], "SHA-256");
        assert_eq!(value["v3_priv"], "AES-256");
        assert_eq!(value["ssh_auth"], "key");
        assert_eq!(value["has_ssh_password"], false);
        assert_eq!(value["has_ssh_key"], true);
        assert_eq!(value["has_community"], false);
        assert_eq!(value["poll_interval_s"], 60);
        assert_eq!(value["backup_interval_s"], 6 * 3600);
        let off = DeviceView::from(&Device { backup_interval: Some(BackupInterval::Off), ..device.clone() });
        assert_eq!(serde_json::to_value(&off).unwrap()["backup_interval_s"], 0);
        let default = DeviceView::from(&Device { backup_interval: None, ..device });
        assert_eq!(serde_json::to_value(&default).unwrap()["backup_interval_s"], serde_json::Value::Null);
    }
}
