//! Service configuration: a TOML file, then `NETWARDEN_`-prefixed environment overrides
//! (`NETWARDEN_DATABASE__URL`, `NETWARDEN_POLLING__INTERVAL=30s`, ...).

use anyhow::{Context, Result};
use collector::db::BackendChoice;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the embedded database, the secret key and other local state live.
    pub data_dir: PathBuf,
    pub database: DatabaseConfig,
    pub secrets: SecretsConfig,
    pub polling: PollingConfig,
    pub api: ApiConfig,
    pub inventory: InventoryConfig,
    pub topology: TopologyConfig,
    pub configs: ConfigsConfig,
    pub traps: TrapsConfig,
    pub alerting: AlertingConfig,
    pub cluster: ClusterConfig,
    pub remediation: RemediationConfig,
}

/// Remediation: playbooks turn failing intents into proposed fixes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemediationConfig {
    /// Propose fixes (off: no planner runs; the tables stay as they are).
    pub enabled: bool,
    /// Playbook files; `builtin` names the shipped ones.
    pub playbooks: Vec<String>,
    /// How often the planner looks at the failing intents.
    #[serde(with = "humantime_serde_compat")]
    pub interval: Duration,
    /// Proposals of this risk or lower need no approval (`low`, `medium`, `high`); empty: every
    /// proposal needs one.
    pub auto_apply_up_to: String,
}

impl Default for RemediationConfig {
    fn default() -> Self {
        RemediationConfig {
            enabled: true,
            playbooks: vec!["builtin".to_string()],
            interval: Duration::from_secs(5),
            auto_apply_up_to: String::new(),
        }
    }
}

impl RemediationConfig {
    pub fn policy(&self) -> Result<remediation::Policy> {
        let auto_apply_up_to =
            match self.auto_apply_up_to.as_str() {
                "" | "none" => None,
                s => Some(remediation::Risk::parse(s).with_context(|| {
                    format!("[remediation] auto_apply_up_to: {s:?} is not low, medium, high or empty")
                })?),
            };
        Ok(remediation::Policy { auto_apply_up_to })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertingConfig {
    /// The alerting file (rule files, receivers, routing, escalations, inhibition, maintenance
    /// windows). Empty: the built-in rules, alerts shown in the API, nothing sent.
    pub file: Option<PathBuf>,
    /// Base of the links in notifications; default `http://<api.listen>`.
    pub external_url: Option<String>,
    /// How often alert timers run (`for:`, group waits, escalations, silence ends).
    #[serde(with = "humantime_serde_compat")]
    pub tick: Duration,
}

impl Default for AlertingConfig {
    fn default() -> Self {
        AlertingConfig { file: None, external_url: None, tick: Duration::from_secs(1) }
    }
}

/// Scale-out: instances sharing one database split the devices with leases held in it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// Share the devices with the other instances on this database (off: poll every device, no
    /// lease traffic).
    pub enabled: bool,
    /// This instance's name, unique among the live ones; empty: `host-pid-random`, new for every
    /// process.
    pub instance: String,
    /// How long a lease lasts: an instance that dies has its devices taken over within this (plus
    /// one renewal round); renewed every third of it. At least 1s.
    #[serde(with = "humantime_serde_compat")]
    pub lease: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig { enabled: false, instance: String::new(), lease: Duration::from_secs(30) }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrapsConfig {
    /// Run the SNMP trap/inform receiver (off by default: it binds a UDP port).
    pub enabled: bool,
    /// UDP address to listen on; `0.0.0.0:162` for devices to reach it (port 162 needs root or
    /// CAP_NET_BIND_SERVICE).
    pub listen: String,
}

impl Default for TrapsConfig {
    fn default() -> Self {
        TrapsConfig { enabled: false, listen: collector::trap::DEFAULT_LISTEN.into() }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConfigsConfig {
    /// Back up each device's running configuration (over SSH) when this long has passed since its
    /// last successful backup, unless the device has its own `backup_interval`; 0s: only devices
    /// with their own interval are backed up on schedule.
    #[serde(with = "humantime_serde_compat")]
    pub backup_interval: Duration,
    /// A failed scheduled backup is tried again after this (or the device's interval, if shorter).
    #[serde(with = "humantime_serde_compat")]
    pub backup_retry: Duration,
    /// Backups at once.
    pub concurrency: usize,
    #[serde(with = "humantime_serde_compat")]
    pub connect_timeout: Duration,
    #[serde(with = "humantime_serde_compat")]
    pub command_timeout: Duration,
}

impl Default for ConfigsConfig {
    fn default() -> Self {
        ConfigsConfig {
            backup_interval: Duration::from_secs(24 * 3600),
            backup_retry: Duration::from_secs(3600),
            concurrency: 20,
            connect_timeout: Duration::from_secs(10),
            command_timeout: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TopologyConfig {
    /// How often the topology graph is rebuilt from the neighbour tables.
    #[serde(with = "humantime_serde_compat")]
    pub refresh: Duration,
}

impl Default for TopologyConfig {
    fn default() -> Self {
        TopologyConfig { refresh: Duration::from_secs(15) }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    /// PostgreSQL URL or key=value string. Empty: start the embedded server in `data_dir/pg`.
    pub url: String,
    pub pool_size: usize,
    /// auto | timescaledb | partitioned (chosen at the first migrate, then fixed).
    pub backend: BackendChoice,
    /// Server binaries for the embedded server; found automatically when empty.
    pub embedded_bin_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecretsConfig {
    /// File holding the 32-byte key (base64). Empty: `NETWARDEN_SECRET_KEY`, else
    /// `data_dir/secret.key` (created on first start of the embedded default).
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PollingConfig {
    #[serde(with = "humantime_serde_compat")]
    pub interval: Duration,
    #[serde(with = "humantime_serde_compat")]
    pub timeout: Duration,
    pub retries: u32,
    pub max_repetitions: u32,
    pub max_in_flight: usize,
    pub down_after_failures: i32,
    #[serde(with = "humantime_serde_compat")]
    pub max_backoff: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ApiConfig {
    pub listen: String,
}

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct InventoryConfig {
    /// Inventory file imported (merged) at start-up, if set.
    pub file: Option<PathBuf>,
    /// How often the scheduler re-reads the inventory from the database.
    #[serde(with = "humantime_serde_compat")]
    pub refresh: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("netwarden-data"),
            database: DatabaseConfig::default(),
            secrets: SecretsConfig::default(),
            polling: PollingConfig::default(),
            api: ApiConfig::default(),
            inventory: InventoryConfig { file: None, refresh: Duration::from_secs(30) },
            topology: TopologyConfig::default(),
            configs: ConfigsConfig::default(),
            traps: TrapsConfig::default(),
            alerting: AlertingConfig::default(),
            cluster: ClusterConfig::default(),
            remediation: RemediationConfig::default(),
        }
    }
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig { url: String::new(), pool_size: 16, backend: BackendChoice::Auto, embedded_bin_dir: None }
    }
}

impl Default for SecretsConfig {
    fn default() -> Self {
        SecretsConfig { key_file: None }
    }
}

impl Default for PollingConfig {
    fn default() -> Self {
        PollingConfig {
            interval: Duration::from_secs(60),
            timeout: Duration::from_secs(2),
            retries: 2,
            max_repetitions: 25,
            max_in_flight: 256,
            down_after_failures: 2,
            max_backoff: Duration::from_secs(600),
        }
    }
}

impl Default for ApiConfig {
    fn default() -> Self {
        ApiConfig { listen: "127.0.0.1:8080".into() }
    }
}

mod humantime_serde_compat {
    use serde::{Deserialize, Deserializer};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let s = String::deserialize(d)?;
        humantime::parse_duration(&s)
            .map_err(|e| serde::de::Error::custom(format!("duration {s:?}: {e} (use e.g. 30s, 5m)")))
    }
}

/// Whether an environment variable overrides a configuration key (`NETWARDEN_<top-level key>…`).
fn is_setting(var: &str) -> bool {
    let Some(rest) = var.strip_prefix("NETWARDEN_") else { return false };
    let rest = rest.to_ascii_lowercase();
    rest == "data_dir"
        || [
            "database__",
            "secrets__",
            "polling__",
            "api__",
            "inventory__",
            "topology__",
            "configs__",
            "traps__",
            "alerting__",
            "cluster__",
            "remediation__",
        ]
        .iter()
        .any(|p| rest.starts_with(p))
}

impl Config {
    /// Loads `path` (optional unless given explicitly) and the environment overrides.
    pub fn load(path: Option<&Path>) -> Result<Config> {
        Self::load_with_env(path, std::env::vars().collect())
    }

    /// [`Config::load`] with an explicit environment (tests).
    pub fn load_with_env(path: Option<&Path>, env: std::collections::HashMap<String, String>) -> Result<Config> {
        let mut b = config::Config::builder();
        match path {
            Some(p) => {
                b = b.add_source(config::File::from(p).format(config::FileFormat::Toml).required(true));
            }
            None => {
                b = b.add_source(
                    config::File::with_name("netwarden.toml").format(config::FileFormat::Toml).required(false),
                );
            }
        }
        b = b.add_source(
            config::Environment::with_prefix("NETWARDEN")
                .prefix_separator("_")
                .separator("__")
                .ignore_empty(true)
                // Only settings: NETWARDEN_SECRET_KEY, NETWARDEN_LOG, NETWARDEN_CONFIG, ... are not.
                .source(Some(env.into_iter().filter(|(k, _)| is_setting(k)).collect())),
        );
        let raw = b.build().with_context(|| match path {
            Some(p) => format!("reading configuration {}", p.display()),
            None => "reading configuration".to_string(),
        })?;
        let cfg: Config = raw.try_deserialize().context("invalid configuration")?;
        if cfg.cluster.enabled && cfg.cluster.lease < Duration::from_secs(1) {
            anyhow::bail!("invalid configuration: cluster.lease is {:?}; use at least 1s", cfg.cluster.lease);
        }
        Ok(cfg)
    }

    /// Cluster membership for this process (its name resolved once), or None outside a cluster.
    pub fn cluster_options(&self) -> Option<collector::cluster::ClusterOptions> {
        let c = &self.cluster;
        c.enabled.then(|| collector::cluster::ClusterOptions {
            instance: match c.instance.trim() {
                "" => collector::cluster::default_instance_name(),
                name => name.to_string(),
            },
            lease: c.lease,
        })
    }

    pub fn scheduler_options(&self) -> collector::scheduler::SchedulerOptions {
        let p = &self.polling;
        collector::scheduler::SchedulerOptions {
            default_interval: p.interval,
            max_in_flight: p.max_in_flight,
            client: collector::snmp::ClientOptions {
                timeout: p.timeout,
                retries: p.retries,
                max_repetitions: p.max_repetitions,
                ..Default::default()
            },
            down_after_failures: p.down_after_failures,
            max_backoff: p.max_backoff,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn file_then_environment_overrides() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("n.toml");
        std::fs::write(&f, "[polling]\ninterval = \"5m\"\nretries = 4\n[api]\nlisten = \"127.0.0.1:9000\"\n").unwrap();
        let c = Config::load_with_env(
            Some(&f),
            env(&[("NETWARDEN_POLLING__INTERVAL", "30s"), ("NETWARDEN_LOG", "debug"), ("NETWARDEN_SECRET_KEY", "x")]),
        )
        .unwrap();
        assert_eq!(c.polling.interval, Duration::from_secs(30));
        assert_eq!(c.polling.retries, 4);
        assert_eq!(c.api.listen, "127.0.0.1:9000");
        assert_eq!(c.polling.timeout, Duration::from_secs(2), "defaults fill the rest");
        assert!(!c.traps.enabled, "the trap receiver binds a port only when asked to");
        let c = Config::load_with_env(
            Some(&f),
            env(&[("NETWARDEN_TRAPS__ENABLED", "true"), ("NETWARDEN_TRAPS__LISTEN", "0.0.0.0:162")]),
        )
        .unwrap();
        assert!(c.traps.enabled);
        assert_eq!(c.traps.listen, "0.0.0.0:162");
    }

    #[test]
    fn cluster_is_off_by_default_and_named_per_process_when_on() {
        let c = Config::load_with_env(None, HashMap::new()).unwrap();
        assert!(!c.cluster.enabled);
        assert_eq!(c.cluster.lease, Duration::from_secs(30));
        assert_eq!(c.cluster_options(), None, "a single instance takes no leases");
        let c = Config::load_with_env(
            None,
            env(&[("NETWARDEN_CLUSTER__ENABLED", "true"), ("NETWARDEN_CLUSTER__LEASE", "3s")]),
        )
        .unwrap();
        let o = c.cluster_options().expect("cluster on");
        assert_eq!(o.lease, Duration::from_secs(3));
        assert!(o.instance.contains(&std::process::id().to_string()), "{}", o.instance);
        let c = Config::load_with_env(
            None,
            env(&[("NETWARDEN_CLUSTER__ENABLED", "true"), ("NETWARDEN_CLUSTER__INSTANCE", "nms-a")]),
        )
        .unwrap();
        assert_eq!(c.cluster_options().unwrap().instance, "nms-a");
        let e = Config::load_with_env(
            None,
            env(&[("NETWARDEN_CLUSTER__ENABLED", "true"), ("NETWARDEN_CLUSTER__LEASE", "100ms")]),
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("cluster.lease"), "{e:#}");
    }

    #[test]
    fn bad_values_and_unknown_keys_are_errors() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("n.toml");
        std::fs::write(&f, "[polling]\nintervall = \"5m\"\n").unwrap();
        let e = format!("{:#}", Config::load_with_env(Some(&f), HashMap::new()).unwrap_err());
        assert!(e.contains("intervall"), "{e}");
        let e =
            format!("{:#}", Config::load_with_env(None, env(&[("NETWARDEN_POLLING__TIMEOUT", "soon")])).unwrap_err());
        assert!(e.contains("soon"), "{e}");
    }
}
