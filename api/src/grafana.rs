//! `netwarden grafana provision`: the Grafana provisioning tree for this installation (data source,
//! dashboard provider, the dashboards) and the SELECT-only database role the data source logs in as.
//!
//! The dashboards are the JSON files of `dashboards/`, compiled in. The role gets a new random
//! password on every run; the password goes only into the data source file (mode 0600), which is
//! written under a temporary name before the role changes and renamed into place after, so a
//! failure at any step leaves the previous file and password working together.

use crate::config::Config;
use anyhow::{Context, Result, bail};
use rand::Rng as _;
use serde::Serialize;
use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// Every panel's data source: the provisioned one, by this fixed uid.
pub const DATASOURCE_UID: &str = "netwarden-pg";
/// The data source's name, the dashboard provider's name and the Grafana folder.
pub const NAME: &str = "netwarden";
/// The role Grafana logs in as, unless `--role` names another.
pub const DEFAULT_ROLE: &str = "netwarden_grafana";
/// The classic dashboard model's schemaVersion of the files (what Grafana 10.4 and 11.0 write).
pub const SCHEMA_VERSION: u64 = 39;

/// The dashboards (file name, JSON), as in `dashboards/`.
pub const DASHBOARDS: [(&str, &str); 4] = [
    ("fabric-overview.json", include_str!("../../dashboards/fabric-overview.json")),
    ("interfaces.json", include_str!("../../dashboards/interfaces.json")),
    ("routing.json", include_str!("../../dashboards/routing.json")),
    ("alerts-intents.json", include_str!("../../dashboards/alerts-intents.json")),
];

/// Tables the dashboards read, granted whole. Partitions (and TimescaleDB chunks) need no grant of
/// their own: PostgreSQL checks the privileges of the table a query names, so partitions created
/// later are readable through their parent without default privileges. Default privileges would
/// instead extend SELECT to every future table, secrets included, so none are granted.
pub const GRANTED_TABLES: [&str; 18] = [
    "device_state",
    "interface",
    "if_sample",
    "if_sample_5m",
    "if_sample_1h",
    "poll_sample",
    "bgp_peer",
    "ospf_neighbor",
    "ospf_interface",
    "link_neighbor",
    "state_change",
    "alert",
    "alert_event",
    "intent_result",
    "intent_event",
    "remediation_proposal",
    "snmp_trap",
    "topology_snapshot",
];

/// The inventory's columns the role may read: everything but the credentials (user names, sealed
/// secrets).
pub const DEVICE_COLUMNS: [&str; 13] = [
    "id",
    "name",
    "host",
    "snmp_port",
    "site",
    "role",
    "vendor",
    "platform",
    "tags",
    "poll_interval_s",
    "backup_interval_s",
    "created_at",
    "updated_at",
];

/// `netwarden grafana …`
#[derive(Debug, clap::Subcommand)]
pub enum GrafanaCommand {
    /// Write the Grafana provisioning for this installation (data source, dashboard provider,
    /// dashboards) into DIR, and create or update the SELECT-only role the data source logs in as,
    /// with a new password (written only into the data source file, mode 0600).
    Provision {
        /// Directory to write: DIR/provisioning/{datasources,dashboards}/netwarden.yaml, DIR/dashboards/*.json.
        #[arg(long)]
        out: PathBuf,
        /// The database role Grafana logs in as (created, or updated: new password, SELECT only).
        #[arg(long, default_value = DEFAULT_ROLE)]
        role: String,
        /// How Grafana reaches PostgreSQL when not as netwarden does: HOST:PORT, or the directory of
        /// its unix socket (port 5432).
        #[arg(long)]
        db_address: Option<String>,
    },
}

/// Runs a `grafana` subcommand.
pub async fn run(cfg: &Config, cmd: GrafanaCommand) -> Result<std::process::ExitCode> {
    match cmd {
        GrafanaCommand::Provision { out, role, db_address } => {
            let report = provision(cfg, &ProvisionOptions { out, role, db_address }).await?;
            println!("{report}");
            Ok(std::process::ExitCode::SUCCESS)
        }
    }
}

/// What `provision` was asked to do.
#[derive(Debug, Clone)]
pub struct ProvisionOptions {
    /// The directory to write (created if needed).
    pub out: PathBuf,
    /// The SELECT-only role (created or updated).
    pub role: String,
    /// How Grafana reaches PostgreSQL, when not as netwarden does (`host:port` or a socket directory).
    pub db_address: Option<String>,
}

/// What `provision` did.
#[derive(Debug, Clone)]
pub struct ProvisionReport {
    pub datasource_file: PathBuf,
    pub provider_file: PathBuf,
    pub dashboards_dir: PathBuf,
    pub role: String,
    pub role_created: bool,
    pub address: String,
    pub database: String,
    pub timescaledb: bool,
}

impl std::fmt::Display for ProvisionReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "grafana provisioning written")?;
        writeln!(f, "  dashboards   {} ({} files)", self.dashboards_dir.display(), DASHBOARDS.len())?;
        writeln!(f, "  provider     {} (folder {NAME:?})", self.provider_file.display())?;
        writeln!(
            f,
            "  data source  {} (uid {DATASOURCE_UID}, mode 0600, holds the role's password; PostgreSQL at {} database {}{})",
            self.datasource_file.display(),
            self.address,
            self.database,
            if self.timescaledb { ", TimescaleDB" } else { "" }
        )?;
        writeln!(
            f,
            "  role         {} ({}; SELECT on the tables the dashboards read, new password)",
            self.role,
            if self.role_created { "created" } else { "updated" }
        )?;
        write!(
            f,
            "Grafana reads the files from its provisioning directory: copy {} and {} into \
             /etc/grafana/provisioning/datasources/ and dashboards/ (or set paths.provisioning to {}), make the data \
             source file readable by Grafana's user only (chown grafana), and restart Grafana",
            self.datasource_file.display(),
            self.provider_file.display(),
            self.datasource_file.parent().and_then(Path::parent).unwrap_or(Path::new(".")).display()
        )
    }
}

/// Where Grafana finds the database: the data source's `url` and `database`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    /// `host:port`, `[v6]:port`, or a socket directory (Grafana then uses port 5432).
    address: String,
    database: String,
    sslmode: &'static str,
}

/// Writes the provisioning tree under `opts.out` and creates or updates the role, for the database
/// `cfg` names (the embedded one when `database.url` is empty).
pub async fn provision(cfg: &Config, opts: &ProvisionOptions) -> Result<ProvisionReport> {
    check_role_name(&opts.role)?;
    // Absolute, so the provider's path and the report hold wherever Grafana and the operator are.
    let out = std::path::absolute(&opts.out).with_context(|| format!("resolving --out {}", opts.out.display()))?;
    let opts = &ProvisionOptions { out, ..opts.clone() };
    // The embedded server may already run under `netwarden serve`: then use its socket, since a
    // second start on the same data dir is refused.
    if cfg.database.url.trim().is_empty() {
        let socket_dir = std::path::absolute(cfg.data_dir.join("pg")).context("data_dir")?;
        if socket_dir.join(format!(".s.PGSQL.{EMBEDDED_PORT}")).exists() {
            let mut pg = tokio_postgres::Config::new();
            pg.host_path(&socket_dir).port(EMBEDDED_PORT).user("postgres").dbname("postgres");
            if let Ok((mut client, connection)) = pg.connect(tokio_postgres::NoTls).await {
                let task = tokio::spawn(connection);
                let address = socket_dir.to_string_lossy().into_owned();
                let r = provision_with(&mut client, cfg, opts, Some(address)).await;
                drop(client);
                let _ = task.await;
                return r;
            }
        }
    }
    let db = crate::runtime::Database::open(cfg).await.context("opening the database")?;
    let r = async {
        let mut conn = db.pool.get().await.context("opening a database connection")?;
        let client: &mut tokio_postgres::Client = &mut conn;
        let embedded = db
            .is_embedded()
            .then(|| std::path::absolute(cfg.data_dir.join("pg")).unwrap_or_else(|_| cfg.data_dir.join("pg")));
        provision_with(client, cfg, opts, embedded.map(|p| p.to_string_lossy().into_owned())).await
    }
    .await;
    db.shutdown().await;
    r
}

/// The embedded server's port, which names its socket file (collector::db::embedded's default).
const EMBEDDED_PORT: u16 = 5432;

async fn provision_with(
    client: &mut tokio_postgres::Client,
    cfg: &Config,
    opts: &ProvisionOptions,
    embedded_socket: Option<String>,
) -> Result<ProvisionReport> {
    let report = collector::db::migrate(client, cfg.database.backend).await.context("applying migrations")?;
    let timescaledb = report.backend == collector::db::Backend::TimescaleDb;
    let row = client
        .query_one("SELECT current_database(), current_setting('server_version_num')::int, current_schema()", &[])
        .await
        .map_err(|e| anyhow::anyhow!("reading the database name and version: {}", collector::db::error_text(&e)))?;
    let (database, version, schema): (String, i32, String) = (row.get(0), row.get(1), row.get(2));
    let target = match (&opts.db_address, embedded_socket) {
        (Some(address), _) => Target { address: address.clone(), database, sslmode: "disable" },
        (None, Some(socket)) => Target { address: socket, database, sslmode: "disable" },
        (None, None) => target_from_url(&cfg.database.url, database)?,
    };

    let password = new_password();
    let datasource = Datasources {
        api_version: 1,
        datasources: vec![Datasource {
            name: NAME,
            r#type: "postgres",
            uid: DATASOURCE_UID,
            access: "proxy",
            url: target.address.clone(),
            user: opts.role.clone(),
            secure_json_data: SecureJsonData { password: password.clone() },
            json_data: JsonData {
                database: target.database.clone(),
                sslmode: target.sslmode,
                // Grafana's versions are major * 100 from PostgreSQL 10 on (1500 for 15).
                postgres_version: version / 10000 * 100,
                timescaledb,
                time_interval: grafana_duration(cfg.polling.interval),
                max_open_conns: 10,
                max_idle_conns: 10,
                conn_max_lifetime: 14400,
            },
            editable: false,
            version: 1,
        }],
    };
    let dashboards_dir = opts.out.join("dashboards");
    let provider = Providers {
        api_version: 1,
        providers: vec![Provider {
            name: NAME,
            org_id: 1,
            folder: NAME,
            r#type: "file",
            disable_deletion: false,
            allow_ui_updates: false,
            update_interval_seconds: 60,
            options: ProviderOptions { path: dashboards_dir.clone(), folders_from_files_structure: false },
        }],
    };

    let datasource_dir = opts.out.join("provisioning").join("datasources");
    let provider_dir = opts.out.join("provisioning").join("dashboards");
    for dir in [&dashboards_dir, &datasource_dir, &provider_dir] {
        std::fs::create_dir_all(dir).with_context(|| format!("creating directory {}", dir.display()))?;
    }
    for (file, json) in DASHBOARDS {
        write_file(&dashboards_dir.join(file), json.as_bytes(), 0o644)?;
    }
    let provider_file = provider_dir.join("netwarden.yaml");
    write_file(&provider_file, yaml(PROVIDER_HEADER, &provider)?.as_bytes(), 0o644)?;

    // The password is written (0600, temporary name) before the role changes, and the file is put in
    // place only after the change committed.
    let datasource_file = datasource_dir.join("netwarden.yaml");
    let staged = datasource_dir.join(".netwarden.yaml.new");
    write_new_file(&staged, yaml(DATASOURCE_HEADER, &datasource)?.as_bytes(), 0o600)?;
    let created = match apply_role(client, &opts.role, &password, &schema).await {
        Ok(created) => created,
        Err(e) => {
            let _ = std::fs::remove_file(&staged);
            return Err(e);
        }
    };
    std::fs::rename(&staged, &datasource_file).with_context(|| {
        format!(
            "writing {} (the role's password changed; the new one is in {})",
            datasource_file.display(),
            staged.display()
        )
    })?;
    Ok(ProvisionReport {
        datasource_file,
        provider_file,
        dashboards_dir,
        role: opts.role.clone(),
        role_created: created,
        address: target.address,
        database: target.database,
        timescaledb,
    })
}

/// Creates the role or updates it (login, new password, nothing but SELECT on the dashboards'
/// tables, read-only sessions), in one transaction. Returns whether it was created.
async fn apply_role(client: &mut tokio_postgres::Client, role: &str, password: &str, schema: &str) -> Result<bool> {
    let step = |what: &str, e: tokio_postgres::Error| {
        anyhow::anyhow!("role {role}: {what}: {}", collector::db::error_text(&e))
    };
    let tx = client.transaction().await.map_err(|e| step("starting a transaction", e))?;
    let existing = tx
        .query_opt(
            "SELECT r.rolsuper OR r.rolcreaterole OR r.rolcreatedb OR r.rolreplication OR r.rolbypassrls,
                    r.rolname = current_user,
                    EXISTS (SELECT 1 FROM pg_class c WHERE c.relowner = r.oid)
               FROM pg_roles r WHERE r.rolname = $1",
            &[&role],
        )
        .await
        .map_err(|e| step("looking it up", e))?;
    if let Some(row) = &existing {
        let (privileged, is_us, owns): (bool, bool, bool) = (row.get(0), row.get(1), row.get(2));
        if is_us {
            bail!("role {role} is the role netwarden itself connects as; give Grafana a role of its own (--role)");
        }
        if privileged || owns {
            bail!(
                "role {role} exists with more than read access (superuser, CREATEROLE, CREATEDB, replication or \
                 owner of tables); refusing to change it, give Grafana a role of its own (--role)"
            );
        }
    }
    let ident = quote_ident(role);
    if existing.is_none() {
        tx.batch_execute(&format!("CREATE ROLE {ident} LOGIN"))
            .await
            .map_err(|e| step("creating it (netwarden's database user needs CREATEROLE)", e))?;
    }
    // Only the SCRAM verifier crosses the wire: the password itself never reaches the server's logs.
    let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
    tx.batch_execute(&format!(
        "ALTER ROLE {ident} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD {}",
        quote_literal(&verifier)
    ))
    .await
    .map_err(|e| step("setting its password and attributes", e))?;
    let database: String =
        tx.query_one("SELECT current_database()", &[]).await.map_err(|e| step("reading the database name", e))?.get(0);
    let schema_ident = quote_ident(schema);
    let tables: Vec<String> = GRANTED_TABLES.iter().map(|t| format!("{schema_ident}.{}", quote_ident(t))).collect();
    let columns: Vec<String> = DEVICE_COLUMNS.iter().map(|c| quote_ident(c)).collect();
    // Revoke first so a run makes the privileges exactly these, whatever the role had before.
    let sql = format!(
        "ALTER ROLE {ident} SET default_transaction_read_only = on;
         ALTER ROLE {ident} SET statement_timeout = '60s';
         ALTER ROLE {ident} SET search_path = {schema_ident};
         REVOKE ALL ON ALL TABLES IN SCHEMA {schema_ident} FROM {ident};
         REVOKE ALL ON ALL SEQUENCES IN SCHEMA {schema_ident} FROM {ident};
         GRANT CONNECT ON DATABASE {db} TO {ident};
         GRANT USAGE ON SCHEMA {schema_ident} TO {ident};
         GRANT SELECT ON {tables} TO {ident};
         GRANT SELECT ({columns}) ON {schema_ident}.device TO {ident};",
        db = quote_ident(&database),
        tables = tables.join(", "),
        columns = columns.join(", "),
    );
    tx.batch_execute(&sql).await.map_err(|e| step("granting SELECT on the dashboards' tables", e))?;
    tx.commit().await.map_err(|e| step("committing", e))?;
    Ok(existing.is_none())
}

/// The data source address for a configured `database.url`: its first host and port.
fn target_from_url(url: &str, database: String) -> Result<Target> {
    use tokio_postgres::config::{Host, SslMode};
    let cfg: tokio_postgres::Config =
        url.parse().map_err(|e| anyhow::anyhow!("database.url is not a valid PostgreSQL URL: {e}"))?;
    let port = cfg.get_ports().first().copied().unwrap_or(5432);
    // netwarden connects without TLS, so the server accepts that; `require` asks Grafana for TLS.
    let sslmode = if cfg.get_ssl_mode() == SslMode::Require { "require" } else { "disable" };
    let address = match cfg.get_hosts().first() {
        Some(Host::Tcp(host)) if host.contains(':') => format!("[{host}]:{port}"),
        Some(Host::Tcp(host)) => format!("{host}:{port}"),
        Some(Host::Unix(dir)) => {
            if port != 5432 {
                bail!(
                    "database.url uses the unix socket in {} on port {port}, but Grafana's PostgreSQL data source \
                     reaches a socket directory only on port 5432; give --db-address HOST:PORT",
                    dir.display()
                );
            }
            dir.to_string_lossy().into_owned()
        }
        None => "localhost:5432".to_string(),
    };
    Ok(Target { address, database, sslmode })
}

/// Letters and digits only: Grafana expands `$` in provisioning files, and nothing needs quoting.
/// 32 of 62 symbols: about 190 bits.
fn new_password() -> String {
    rand::rng().sample_iter(rand::distr::Alphanumeric).take(32).map(char::from).collect()
}

/// A Grafana interval (`timeInterval`): whole hours, minutes or seconds, else milliseconds.
fn grafana_duration(d: std::time::Duration) -> String {
    let ms = d.as_millis().max(1);
    match ms {
        ms if ms % 3_600_000 == 0 => format!("{}h", ms / 3_600_000),
        ms if ms % 60_000 == 0 => format!("{}m", ms / 60_000),
        ms if ms % 1000 == 0 => format!("{}s", ms / 1000),
        ms => format!("{ms}ms"),
    }
}

fn check_role_name(role: &str) -> Result<()> {
    let ok = !role.is_empty()
        && role.len() <= 63
        && role.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && role.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !ok {
        bail!("--role {role:?}: use lowercase letters, digits and _ (at most 63, not starting with a digit)");
    }
    Ok(())
}

fn quote_ident(s: &str) -> String {
    format!("\"{}\"", s.replace('"', "\"\""))
}

fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

const DATASOURCE_HEADER: &str = "# Written by `netwarden grafana provision`: the data source of the netwarden dashboards.\n\
# It holds the password of a SELECT-only role; keep it readable by Grafana only.\n";
const PROVIDER_HEADER: &str =
    "# Written by `netwarden grafana provision`: the netwarden dashboards, from the files next to this tree.\n";

fn yaml<T: Serialize>(header: &str, value: &T) -> Result<String> {
    let body = serde_saphyr::to_string(value).context("rendering YAML")?;
    Ok(format!("{header}{body}"))
}

/// Replaces `path` atomically (temporary file in the same directory, then rename) with `mode`.
fn write_file(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.new"));
    write_new_file(&tmp, bytes, mode)?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// Creates `path` with `mode` from the start (a stale file of that name is removed first), so the
/// content is never readable with wider permissions.
fn write_new_file(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e).with_context(|| format!("removing the stale {}", path.display())),
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    // The umask may have narrowed the mode: set it exactly.
    f.set_permissions(std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("setting mode {mode:o} on {}", path.display()))?;
    f.write_all(bytes).and_then(|()| f.sync_all()).with_context(|| format!("writing {}", path.display()))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Datasources {
    api_version: u32,
    datasources: Vec<Datasource>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Datasource {
    name: &'static str,
    r#type: &'static str,
    uid: &'static str,
    access: &'static str,
    url: String,
    user: String,
    secure_json_data: SecureJsonData,
    json_data: JsonData,
    editable: bool,
    version: u32,
}

#[derive(Serialize)]
struct SecureJsonData {
    password: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonData {
    database: String,
    sslmode: &'static str,
    postgres_version: i32,
    timescaledb: bool,
    time_interval: String,
    max_open_conns: u32,
    max_idle_conns: u32,
    conn_max_lifetime: u32,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Providers {
    api_version: u32,
    providers: Vec<Provider>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Provider {
    name: &'static str,
    org_id: u32,
    folder: &'static str,
    r#type: &'static str,
    disable_deletion: bool,
    allow_ui_updates: bool,
    update_interval_seconds: u32,
    options: ProviderOptions,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ProviderOptions {
    path: PathBuf,
    folders_from_files_structure: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dashboards_reference_the_provisioned_datasource_and_schema_version() {
        for (file, json) in DASHBOARDS {
            let d: serde_json::Value = serde_json::from_str(json).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert_eq!(d["schemaVersion"], SCHEMA_VERSION, "{file}");
            assert!(json.contains(&format!("\"uid\": \"{DATASOURCE_UID}\"")), "{file}");
        }
    }

    #[test]
    fn data_source_addresses_follow_the_configured_url() {
        let t = |url: &str| target_from_url(url, "nw".into());
        assert_eq!(t("postgresql://nw@db.example.net:6432/nw").unwrap().address, "db.example.net:6432");
        assert_eq!(t("host=10.0.0.5 user=nw dbname=nw").unwrap().address, "10.0.0.5:5432");
        assert_eq!(t("host=::1 port=5433 user=nw").unwrap().address, "[::1]:5433");
        assert_eq!(t("host=/run/postgresql user=nw").unwrap().address, "/run/postgresql");
        assert_eq!(t("postgresql://nw@db/nw?sslmode=require").unwrap().sslmode, "require");
        let e = t("host=/run/postgresql port=5433 user=nw").unwrap_err().to_string();
        assert!(e.contains("--db-address"), "{e}");
    }

    #[test]
    fn passwords_are_long_and_need_no_quoting() {
        let (a, b) = (new_password(), new_password());
        assert_eq!(a.len(), 32);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()), "{a}");
        assert_ne!(a, b);
    }

    #[test]
    fn role_names_are_plain_identifiers() {
        assert!(check_role_name("netwarden_grafana").is_ok());
        for bad in ["", "Grafana", "1x", "a-b", "x\"; DROP ROLE postgres; --", &"a".repeat(64)] {
            assert!(check_role_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn intervals_are_written_the_way_grafana_reads_them() {
        use std::time::Duration;
        assert_eq!(grafana_duration(Duration::from_secs(60)), "1m");
        assert_eq!(grafana_duration(Duration::from_secs(90)), "90s");
        assert_eq!(grafana_duration(Duration::from_secs(7200)), "2h");
        assert_eq!(grafana_duration(Duration::from_millis(1500)), "1500ms");
    }
}
