//! Inventory files: YAML and CSV import that reports every error with its line, and export.
//!
//! Import is compiled, not just parsed: each device is read into a raw, all-strings form (serde,
//! `deny_unknown_fields`), then checked and turned into a [`Device`]. Every problem in the file
//! is collected; if there is any, no device is returned, so a file is never half-applied.

use super::model::{
    AuthProtocol, BackupInterval, Device, PrivProtocol, SnmpCredentials, SnmpV3Credentials, SshAuth, SshCredentials,
};
use super::node::{self, Node, NodeKind};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const DEFAULT_SNMP_PORT: u16 = 161;
pub const DEFAULT_SSH_PORT: u16 = 22;
/// SNMPv3 user names are `SnmpAdminString (SIZE(1..32))` (RFC 3414).
const MAX_V3_USER_LEN: usize = 32;
/// RFC 3414's password-to-key algorithm needs at least 8 characters; agents reject shorter ones.
const MIN_V3_PASSWORD_LEN: usize = 8;
const MAX_NAME_LEN: usize = 128;
const MAX_POLL_INTERVAL: Duration = Duration::from_secs(24 * 60 * 60);
/// A backup is a login and a `show running-config`: more often than this would load the device for little.
const MIN_BACKUP_INTERVAL: Duration = Duration::from_secs(60);
const MAX_BACKUP_INTERVAL: Duration = Duration::from_secs(30 * 24 * 60 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Yaml,
    Csv,
}

impl Format {
    /// By extension: `.yaml`/`.yml` or `.csv` (case-insensitive).
    pub fn from_path(path: &str) -> Option<Self> {
        let ext = Path::new(path).extension()?.to_str()?.to_ascii_lowercase();
        ext.parse().ok()
    }
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "yaml" | "yml" => Ok(Format::Yaml),
            "csv" => Ok(Format::Csv),
            _ => Err(format!("inventory format {s:?} is not one of yaml, csv")),
        }
    }
}

/// One problem in an inventory file. Displays as `file:line: message`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryError {
    pub file: String,
    /// 1-based; `None` when the problem is the file as a whole.
    pub line: Option<u64>,
    pub message: String,
}

impl fmt::Display for InventoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

/// Every problem found in an inventory file, in file order. Never empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InventoryErrors {
    pub errors: Vec<InventoryError>,
}

impl fmt::Display for InventoryErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, error) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InventoryErrors {}

/// Whether `ssh.key_file` may be read, and from where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyFiles {
    /// Reject `ssh.key_file`: the text did not come from the operator's disk (an API upload, say),
    /// and must not make the server read its own files (its SSH host key is a private key too).
    Refuse,
    /// Read key files; relative paths are relative to this directory.
    ReadFrom(PathBuf),
}

/// Reads and parses an inventory file, reading `ssh.key_file` paths relative to its directory.
pub fn read_inventory_file(path: &Path, format: Option<Format>) -> Result<Vec<Device>, InventoryErrors> {
    let name = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| InventoryErrors {
        errors: vec![InventoryError { file: name.clone(), line: None, message: format!("cannot read: {e}") }],
    })?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    parse_inventory_with(&name, &text, format, &KeyFiles::ReadFrom(dir))
}

/// Parses and validates a whole inventory without touching the disk (`ssh.key_file` is refused;
/// see [`parse_inventory_with`]). `path_or_name` names the file in errors and picks the format
/// from its extension unless `format` is given.
pub fn parse_inventory(path_or_name: &str, text: &str, format: Option<Format>) -> Result<Vec<Device>, InventoryErrors> {
    parse_inventory_with(path_or_name, text, format, &KeyFiles::Refuse)
}

/// [`parse_inventory`], with `ssh.key_file` handled as `key_files` says.
pub fn parse_inventory_with(
    path_or_name: &str,
    text: &str,
    format: Option<Format>,
    key_files: &KeyFiles,
) -> Result<Vec<Device>, InventoryErrors> {
    let mut compiler =
        Compiler { file: path_or_name, key_files, errors: Vec::new(), first_line_of_name: HashMap::new() };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let devices = match format.or_else(|| Format::from_path(path_or_name)) {
        Some(Format::Yaml) => compiler.yaml(text),
        Some(Format::Csv) => compiler.csv(text),
        None => {
            compiler.file_error(
                None,
                "cannot tell the format from the file name: use .yaml, .yml or .csv, or name the format".to_owned(),
            );
            Vec::new()
        }
    };
    if compiler.errors.is_empty() {
        Ok(devices)
    } else {
        let mut errors = compiler.errors;
        errors.sort_by_key(|e| e.line); // stable: a device's errors stay in checking order
        Err(InventoryErrors { errors })
    }
}

// ---- the raw form: what a file says, all strings, before any checking ----

// No Debug: these hold secrets.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDevice {
    name: Option<String>,
    address: Option<String>,
    site: Option<String>,
    role: Option<String>,
    vendor: Option<String>,
    platform: Option<String>,
    tags: Option<Vec<String>>,
    poll_interval: Option<String>,
    backup_interval: Option<String>,
    snmp: Option<RawSnmp>,
    ssh: Option<RawSsh>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSnmp {
    version: Option<String>,
    community: Option<String>,
    user: Option<String>,
    auth: Option<String>,
    auth_password: Option<String>,
    #[serde(rename = "priv")]
    privacy: Option<String>,
    priv_password: Option<String>,
    context: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSsh {
    user: Option<String>,
    password: Option<String>,
    key: Option<String>,
    key_file: Option<String>,
    passphrase: Option<String>,
    port: Option<String>,
}

/// CSV columns and the YAML path each one stands for. The first 20 are the documented header;
/// the SSH key columns are optional extras (a key is multi-line, so it is quoted in CSV).
const CSV_COLUMNS: [(&str, &str); 23] = [
    ("name", "name"),
    ("address", "address"),
    ("site", "site"),
    ("role", "role"),
    ("vendor", "vendor"),
    ("platform", "platform"),
    ("tags", "tags"),
    ("poll_interval", "poll_interval"),
    ("backup_interval", "backup_interval"),
    ("snmp_version", "snmp.version"),
    ("community", "snmp.community"),
    ("v3_user", "snmp.user"),
    ("v3_auth", "snmp.auth"),
    ("v3_auth_password", "snmp.auth_password"),
    ("v3_priv", "snmp.priv"),
    ("v3_priv_password", "snmp.priv_password"),
    ("v3_context", "snmp.context"),
    ("ssh_user", "ssh.user"),
    ("ssh_password", "ssh.password"),
    ("ssh_port", "ssh.port"),
    ("ssh_key", "ssh.key"),
    ("ssh_key_file", "ssh.key_file"),
    ("ssh_passphrase", "ssh.passphrase"),
];
/// Columns a CSV header must have.
const CSV_REQUIRED: [&str; 3] = ["name", "address", "snmp_version"];
/// Cells kept byte for byte; every other cell is trimmed.
const SECRET_PATHS: [&str; 6] =
    ["snmp.community", "snmp.auth_password", "snmp.priv_password", "ssh.password", "ssh.key", "ssh.passphrase"];

/// Where a device came from, to put a line and a field name on each error.
#[derive(Clone, Copy)]
enum Origin<'a> {
    Yaml(&'a Node),
    Csv(u64),
}

impl Origin<'_> {
    fn line(&self, path: &str) -> u64 {
        match self {
            Origin::Yaml(entry) => entry.line_of(path),
            Origin::Csv(line) => *line,
        }
    }

    /// The field as the user wrote it: `snmp.auth` in YAML, `v3_auth` in CSV.
    fn field<'p>(&self, path: &'p str) -> &'p str {
        match self {
            Origin::Yaml(_) => path,
            Origin::Csv(_) => CSV_COLUMNS.iter().find(|(_, p)| *p == path).map_or(path, |(column, _)| column),
        }
    }
}

struct DeviceSite<'a> {
    origin: Origin<'a>,
    /// `device "leaf2"`, or `device #3` before a name is known.
    label: String,
    /// Paths of values already reported as malformed and cut out before checking.
    suppressed: Vec<String>,
}

impl DeviceSite<'_> {
    fn is_suppressed(&self, path: &str) -> bool {
        let within =
            |inner: &str, outer: &str| inner == outer || inner.strip_prefix(outer).is_some_and(|r| r.starts_with('.'));
        self.suppressed.iter().any(|s| within(path, s) || within(s, path))
    }
}

fn device_label(name: Option<&str>, index: usize) -> String {
    match name.map(str::trim).filter(|n| !n.is_empty()) {
        Some(name) => format!("device {name:?}"),
        None => format!("device #{}", index + 1),
    }
}

fn is_set(value: &Option<String>) -> bool {
    value.as_deref().is_some_and(|v| !v.is_empty())
}

/// Trimmed, `None` when empty.
fn text(value: Option<String>) -> Option<String> {
    value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

struct Compiler<'a> {
    file: &'a str,
    key_files: &'a KeyFiles,
    errors: Vec<InventoryError>,
    first_line_of_name: HashMap<String, u64>,
}

impl Compiler<'_> {
    fn file_error(&mut self, line: Option<u64>, message: String) {
        self.errors.push(InventoryError { file: self.file.to_owned(), line, message });
    }

    /// An error about `path` (a YAML-style field path) of one device.
    fn error(&mut self, site: &DeviceSite<'_>, path: &str, message: impl fmt::Display) {
        if site.is_suppressed(path) {
            return;
        }
        let line = site.origin.line(path);
        self.file_error(Some(line), format!("{}: {message}", site.label));
    }

    /// Records the name and reports it if an earlier device already had it.
    fn check_unique_name(&mut self, site: &DeviceSite<'_>, name: Option<&str>) {
        let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) else {
            return;
        };
        let line = site.origin.line("name");
        match self.first_line_of_name.get(name) {
            Some(&first) => {
                self.error(site, "name", format!("name {name:?} is already used by the device on line {first}"))
            }
            None => {
                self.first_line_of_name.insert(name.to_owned(), line);
            }
        }
    }

    // ---- YAML ----

    fn yaml(&mut self, text: &str) -> Vec<Device> {
        let root = match node::parse(text) {
            Ok(root) => root,
            Err(e) => {
                self.file_error(e.line, format!("invalid YAML: {}", e.message));
                return Vec::new();
            }
        };
        let devices = match &root.kind {
            NodeKind::Map(entries) => {
                for (key, _) in entries.iter().filter(|(k, _)| k.as_str() != Some("devices")) {
                    let key = key.as_str().unwrap_or("?");
                    self.file_error(
                        Some(root.line_of(key)),
                        format!("unknown top-level key `{key}`, expected `devices`"),
                    );
                }
                root.entry("devices").map(|(_, v)| v)
            }
            _ => None,
        };
        let Some(devices) = devices else {
            self.file_error(Some(root.line), "expected a mapping with a `devices:` list".to_owned());
            return Vec::new();
        };
        let entries = match &devices.kind {
            NodeKind::Seq(entries) => entries.as_slice(),
            NodeKind::Null => &[],
            _ => {
                self.file_error(Some(devices.line), format!("`devices` must be a list, found {}", devices.kind_name()));
                return Vec::new();
            }
        };

        let mut out = Vec::new();
        for (index, entry) in entries.iter().enumerate() {
            let name = entry.entry("name").and_then(|(_, v)| v.as_str());
            let mut site =
                DeviceSite { origin: Origin::Yaml(entry), label: device_label(name, index), suppressed: Vec::new() };
            self.check_unique_name(&site, name);
            let (raw, errors) = node::from_node_collecting::<RawDevice>(entry);
            for e in &errors {
                let message = match e.display_path().as_str() {
                    "" => format!("{}: {}", site.label, e.message),
                    path => format!("{}: {path}: {}", site.label, e.message),
                };
                self.file_error(Some(e.line.unwrap_or(entry.line)), message);
            }
            // What was cut out is already reported; don't report it again as missing.
            site.suppressed = errors.iter().filter(|e| !e.at_key).map(|e| e.path.join(".")).collect();
            if let Some(raw) = raw {
                out.extend(self.device(&site, raw));
            }
        }
        out
    }

    // ---- CSV ----

    fn csv(&mut self, text: &str) -> Vec<Device> {
        let mut reader = csv::ReaderBuilder::new().has_headers(true).comment(Some(b'#')).from_reader(text.as_bytes());
        let header = match reader.headers() {
            Ok(header) => header.clone(),
            Err(e) => {
                self.file_error(Some(1), format!("invalid CSV header: {e}"));
                return Vec::new();
            }
        };
        let header_line = header.position().map_or(1, |p| p.line());
        // Column index → YAML path.
        let mut columns: Vec<Option<&'static str>> = Vec::with_capacity(header.len());
        let mut seen: Vec<&str> = Vec::new();
        let before = self.errors.len();
        for column in header.iter().map(str::trim) {
            match CSV_COLUMNS.iter().find(|(c, _)| c.eq_ignore_ascii_case(column)) {
                Some(&(canonical, path)) if !seen.contains(&canonical) => {
                    seen.push(canonical);
                    columns.push(Some(path));
                }
                Some(_) => {
                    self.file_error(Some(header_line), format!("column `{column}` appears twice in the header"));
                    columns.push(None);
                }
                None => {
                    let known = CSV_COLUMNS.map(|(c, _)| c).join(", ");
                    self.file_error(Some(header_line), format!("unknown column `{column}`, expected one of {known}"));
                    columns.push(None);
                }
            }
        }
        for required in CSV_REQUIRED.iter().filter(|r| !seen.contains(r)) {
            self.file_error(Some(header_line), format!("the header has no `{required}` column"));
        }
        if self.errors.len() > before {
            // Rows cannot be read reliably against a broken header.
            return Vec::new();
        }

        let mut out = Vec::new();
        for (index, record) in reader.records().enumerate() {
            let record = match record {
                Ok(record) => record,
                Err(e) => {
                    let line = e.position().map(|p| p.line());
                    let message = match e.kind() {
                        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
                            format!("row #{}: expected {expected_len} fields, found {len}", index + 1)
                        }
                        _ => format!("row #{}: {e}", index + 1),
                    };
                    self.file_error(line, message);
                    continue;
                }
            };
            let line = record.position().map_or(1, |p| p.line());
            let mut cells: HashMap<&str, String> = HashMap::new();
            for (path, cell) in columns.iter().zip(record.iter()) {
                let Some(path) = path else { continue };
                let cell = if SECRET_PATHS.contains(path) { cell } else { cell.trim() };
                if !cell.is_empty() {
                    cells.insert(path, cell.to_owned());
                }
            }
            let raw = raw_from_cells(cells);
            let site = DeviceSite {
                origin: Origin::Csv(line),
                label: device_label(raw.name.as_deref(), index),
                suppressed: Vec::new(),
            };
            self.check_unique_name(&site, raw.name.as_deref());
            out.extend(self.device(&site, raw));
        }
        out
    }

    // ---- checking one device ----

    /// `None` if the device has any error (all of them are recorded).
    fn device(&mut self, site: &DeviceSite<'_>, raw: RawDevice) -> Option<Device> {
        let before = self.errors.len();
        let name = self.name(site, raw.name);
        let address = match text(raw.address) {
            None => {
                self.error(site, "address", format_args!("{} is missing", site.origin.field("address")));
                None
            }
            Some(address) => match parse_address(&address) {
                Ok(parsed) => Some(parsed),
                Err(reason) => {
                    self.error(site, "address", format_args!("{} {address:?}: {reason}", site.origin.field("address")));
                    None
                }
            },
        };
        let tags = self.tags(site, raw.tags.unwrap_or_default());
        let poll_interval = text(raw.poll_interval).and_then(|value| match parse_interval(&value) {
            Ok(interval) => Some(interval),
            Err(reason) => {
                self.error(
                    site,
                    "poll_interval",
                    format_args!("{} {value:?}: {reason}", site.origin.field("poll_interval")),
                );
                None
            }
        });
        let backup_interval = text(raw.backup_interval).and_then(|value| match parse_backup_interval(&value) {
            Ok(interval) => Some(interval),
            Err(reason) => {
                self.error(
                    site,
                    "backup_interval",
                    format_args!("{} {value:?}: {reason}", site.origin.field("backup_interval")),
                );
                None
            }
        });
        let snmp = match raw.snmp {
            Some(snmp) => self.snmp(site, snmp),
            None => {
                self.error(site, "snmp", "snmp is missing (e.g. `snmp: { version: v2c, community: ... }`)");
                None
            }
        };
        let ssh = raw.ssh.and_then(|ssh| self.ssh(site, ssh).map(Some)).unwrap_or(None);

        if self.errors.len() > before {
            return None;
        }
        let (host, port) = address?;
        Some(Device {
            id: None,
            name: name?,
            host,
            snmp_port: port.unwrap_or(DEFAULT_SNMP_PORT),
            site: text(raw.site),
            role: text(raw.role),
            vendor: text(raw.vendor),
            platform: text(raw.platform),
            tags,
            snmp: snmp?,
            ssh,
            poll_interval,
            backup_interval,
        })
    }

    fn name(&mut self, site: &DeviceSite<'_>, name: Option<String>) -> Option<String> {
        let Some(name) = text(name) else {
            self.error(site, "name", "name is missing or empty");
            return None;
        };
        if name.chars().any(|c| c.is_whitespace() || c.is_control() || c == '/') {
            self.error(site, "name", format_args!("name {name:?} must not contain spaces, control characters or '/'"));
            None
        } else if name.chars().count() > MAX_NAME_LEN {
            self.error(site, "name", format_args!("name is longer than {MAX_NAME_LEN} characters"));
            None
        } else {
            Some(name)
        }
    }

    fn tags(&mut self, site: &DeviceSite<'_>, raw: Vec<String>) -> Vec<String> {
        let mut tags: Vec<String> = Vec::new();
        for tag in raw.iter().map(|t| t.trim()) {
            if tag.is_empty() || tag.contains(';') || tag.chars().any(char::is_control) {
                let field = site.origin.field("tags");
                self.error(site, "tags", format_args!("{field}: tag {tag:?} must be non-empty and contain no ';'"));
            } else if !tags.iter().any(|t| t == tag) {
                tags.push(tag.to_owned());
            }
        }
        tags
    }

    fn snmp(&mut self, site: &DeviceSite<'_>, raw: RawSnmp) -> Option<SnmpCredentials> {
        let field = |path| site.origin.field(path);
        let version = text(raw.version.clone()).map(|v| v.to_ascii_lowercase());
        match version.as_deref() {
            Some("v2c" | "2c" | "v2" | "2") => {
                let v3_only = [
                    ("snmp.user", &raw.user),
                    ("snmp.auth", &raw.auth),
                    ("snmp.auth_password", &raw.auth_password),
                    ("snmp.priv", &raw.privacy),
                    ("snmp.priv_password", &raw.priv_password),
                    ("snmp.context", &raw.context),
                ];
                for (path, _) in v3_only.into_iter().filter(|(_, v)| is_set(v)) {
                    self.error(site, path, format_args!("{} is only used with version v3", field(path)));
                }
                match raw.community.filter(|c| !c.is_empty()) {
                    Some(community) => Some(SnmpCredentials::V2c { community }),
                    None => {
                        let path = "snmp.community";
                        self.error(site, path, format_args!("{} is missing (required for v2c)", field(path)));
                        None
                    }
                }
            }
            Some("v3" | "3") => self.snmp_v3(site, raw).map(SnmpCredentials::V3),
            Some(other) => {
                let path = "snmp.version";
                self.error(site, path, format_args!("{} {other:?} is not one of v2c, v3", field(path)));
                None
            }
            None => {
                let path = "snmp.version";
                self.error(site, path, format_args!("{} is missing: v2c or v3", field(path)));
                None
            }
        }
    }

    fn snmp_v3(&mut self, site: &DeviceSite<'_>, raw: RawSnmp) -> Option<SnmpV3Credentials> {
        let before = self.errors.len();
        let field = |path| site.origin.field(path);
        if is_set(&raw.community) {
            let path = "snmp.community";
            self.error(site, path, format_args!("{} is only used with version v2c", field(path)));
        }
        let user = text(raw.user);
        match &user {
            None => self.error(site, "snmp.user", format_args!("{} is missing (required for v3)", field("snmp.user"))),
            Some(user) if user.chars().count() > MAX_V3_USER_LEN => self.error(
                site,
                "snmp.user",
                format_args!("{} is longer than {MAX_V3_USER_LEN} characters", field("snmp.user")),
            ),
            Some(_) => {}
        }

        let auth_named = text(raw.auth.clone()).is_some();
        let auth =
            self.v3_protocol(site, ("snmp.auth", text(raw.auth)), ("snmp.auth_password", raw.auth_password), |name| {
                AuthProtocol::from_name(name).ok_or_else(AuthProtocol::names)
            });
        if text(raw.privacy.clone()).is_some() && !auth_named {
            self.error(
                site,
                "snmp.priv",
                format_args!(
                    "{} requires {}: SNMPv3 has no privacy without authentication",
                    field("snmp.priv"),
                    field("snmp.auth")
                ),
            );
        }
        let privacy = self.v3_protocol(
            site,
            ("snmp.priv", text(raw.privacy)),
            ("snmp.priv_password", raw.priv_password),
            |name| PrivProtocol::from_name(name).ok_or_else(PrivProtocol::names),
        );
        let context = text(raw.context);
        if self.errors.len() > before {
            return None;
        }
        Some(SnmpV3Credentials { user: user?, auth, privacy, context })
    }

    /// Checks a protocol name with its password; `parse` returns the valid names on failure.
    fn v3_protocol<P>(
        &mut self,
        site: &DeviceSite<'_>,
        (proto_path, proto): (&str, Option<String>),
        (password_path, password): (&str, Option<String>),
        parse: impl Fn(&str) -> Result<P, String>,
    ) -> Option<(P, String)> {
        let (proto_field, password_field) = (site.origin.field(proto_path), site.origin.field(password_path));
        let password = password.filter(|p| !p.is_empty());
        let Some(proto) = proto else {
            if password.is_some() {
                self.error(site, password_path, format_args!("{password_field} is set but {proto_field} is not"));
            }
            return None;
        };
        let parsed = match parse(&proto) {
            Ok(parsed) => Some(parsed),
            Err(names) => {
                self.error(site, proto_path, format_args!("{proto_field} {proto:?} is not one of {names}"));
                None
            }
        };
        let password = match password {
            None => {
                self.error(site, proto_path, format_args!("{password_field} is missing (required with {proto_field})"));
                None
            }
            Some(p) if p.chars().count() < MIN_V3_PASSWORD_LEN => {
                self.error(
                    site,
                    password_path,
                    format_args!("{password_field} must be at least {MIN_V3_PASSWORD_LEN} characters (RFC 3414)"),
                );
                None
            }
            Some(p) => Some(p),
        };
        parsed.zip(password)
    }

    fn ssh(&mut self, site: &DeviceSite<'_>, raw: RawSsh) -> Option<SshCredentials> {
        let before = self.errors.len();
        let field = |path| site.origin.field(path);
        let user = text(raw.user);
        if user.is_none() {
            self.error(site, "ssh.user", format_args!("{} is missing", field("ssh.user")));
        }
        let port = match text(raw.port) {
            None => Some(DEFAULT_SSH_PORT),
            Some(port) => parse_port(&port)
                .map_err(|reason| {
                    self.error(site, "ssh.port", format_args!("{} {port:?} is {reason}", field("ssh.port")))
                })
                .ok(),
        };
        let password = raw.password.filter(|p| !p.is_empty());
        let key = raw.key.filter(|k| !k.is_empty());
        let key_file = text(raw.key_file);
        let passphrase = raw.passphrase.filter(|p| !p.is_empty());
        let given = [password.is_some(), key.is_some(), key_file.is_some()].iter().filter(|g| **g).count();
        let (password_field, key_field, key_file_field) =
            (field("ssh.password"), field("ssh.key"), field("ssh.key_file"));
        let auth = match given {
            0 => {
                self.error(
                    site,
                    "ssh",
                    format_args!("ssh needs one of {password_field}, {key_field} or {key_file_field}"),
                );
                None
            }
            1 => {
                if let Some(password) = password {
                    if passphrase.is_some() {
                        let passphrase_field = field("ssh.passphrase");
                        self.error(
                            site,
                            "ssh.passphrase",
                            format_args!("{passphrase_field} is only used with {key_field} or {key_file_field}"),
                        );
                    }
                    Some(SshAuth::Password(password))
                } else if let Some(key) = key {
                    self.private_key(site, "ssh.key", key, None)
                        .map(|private_key| SshAuth::Key { private_key, passphrase })
                } else {
                    let key_file = key_file.unwrap_or_default();
                    let path = match self.key_files {
                        KeyFiles::ReadFrom(dir) => dir.join(&key_file),
                        KeyFiles::Refuse => {
                            self.error(
                                site,
                                "ssh.key_file",
                                format_args!(
                                    "{key_file_field} is only accepted in an inventory read from disk; \
                                     put the key itself in {key_field}"
                                ),
                            );
                            return None;
                        }
                    };
                    match std::fs::read_to_string(&path) {
                        Ok(key) => self
                            .private_key(site, "ssh.key_file", key, Some(&key_file))
                            .map(|private_key| SshAuth::Key { private_key, passphrase }),
                        Err(e) => {
                            self.error(
                                site,
                                "ssh.key_file",
                                format_args!("{key_file_field} {key_file:?}: cannot read {}: {e}", path.display()),
                            );
                            None
                        }
                    }
                }
            }
            _ => {
                self.error(
                    site,
                    "ssh",
                    format_args!("{password_field}, {key_field} and {key_file_field} exclude each other; set one"),
                );
                None
            }
        };
        if self.errors.len() > before {
            return None;
        }
        Some(SshCredentials { user: user?, auth: auth?, port: port? })
    }

    /// Checks that `key` looks like a PEM private key, without ever echoing it.
    fn private_key(&mut self, site: &DeviceSite<'_>, path: &str, key: String, file: Option<&str>) -> Option<String> {
        let trimmed = key.trim();
        if trimmed.starts_with("-----BEGIN ") && trimmed.contains("PRIVATE KEY-----") {
            Some(key)
        } else {
            let what = match file {
                Some(file) => format!("{} {file:?}", site.origin.field(path)),
                None => site.origin.field(path).to_owned(),
            };
            self.error(
                site,
                path,
                format_args!("{what} does not look like a private key (expected \"-----BEGIN ... PRIVATE KEY-----\")"),
            );
            None
        }
    }
}

fn raw_from_cells(mut cells: HashMap<&str, String>) -> RawDevice {
    let mut take = |path: &str| cells.remove(path);
    let snmp = RawSnmp {
        version: take("snmp.version"),
        community: take("snmp.community"),
        user: take("snmp.user"),
        auth: take("snmp.auth"),
        auth_password: take("snmp.auth_password"),
        privacy: take("snmp.priv"),
        priv_password: take("snmp.priv_password"),
        context: take("snmp.context"),
    };
    let ssh = RawSsh {
        user: take("ssh.user"),
        password: take("ssh.password"),
        key: take("ssh.key"),
        key_file: take("ssh.key_file"),
        passphrase: take("ssh.passphrase"),
        port: take("ssh.port"),
    };
    let has_ssh =
        [&ssh.user, &ssh.password, &ssh.key, &ssh.key_file, &ssh.passphrase, &ssh.port].iter().any(|v| v.is_some());
    RawDevice {
        name: take("name"),
        address: take("address"),
        site: take("site"),
        role: take("role"),
        vendor: take("vendor"),
        platform: take("platform"),
        tags: take("tags").map(|t| t.split(';').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect()),
        poll_interval: take("poll_interval"),
        backup_interval: take("backup_interval"),
        snmp: Some(snmp),
        ssh: has_ssh.then_some(ssh),
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address. The host keeps no brackets.
fn parse_address(address: &str) -> Result<(String, Option<u16>), String> {
    if let Some(rest) = address.strip_prefix('[') {
        let (inside, after) = rest.split_once(']').ok_or("missing ']' after the IPv6 address")?;
        inside.parse::<Ipv6Addr>().map_err(|_| format!("{inside:?} is not an IPv6 address"))?;
        let port = match after {
            "" => None,
            _ => Some(parse_address_port(after.strip_prefix(':').ok_or("expected ':port' after ']'")?)?),
        };
        return Ok((inside.to_owned(), port));
    }
    if address.parse::<Ipv6Addr>().is_ok() {
        return Ok((address.to_owned(), None));
    }
    let (host, port) = match address.split_once(':') {
        Some((_, port)) if port.contains(':') => {
            return Err("not an IPv6 address; with a port, write IPv6 as [address]:port".to_owned());
        }
        Some((host, port)) => (host, Some(parse_address_port(port)?)),
        None => (address, None),
    };
    check_host(host)?;
    Ok((host.to_owned(), port))
}

fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("the host is empty".to_owned());
    }
    let labels: Vec<&str> = host.strip_suffix('.').unwrap_or(host).split('.').collect();
    if labels.iter().all(|l| !l.is_empty() && l.bytes().all(|b| b.is_ascii_digit())) {
        return match host.parse::<Ipv4Addr>() {
            Ok(_) => Ok(()),
            Err(_) => Err("not a valid IPv4 address".to_owned()),
        };
    }
    let label_ok = |l: &&str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if host.len() <= 253 && labels.iter().all(label_ok) {
        Ok(())
    } else {
        Err("not a valid host name or IP address".to_owned())
    }
}

fn parse_port(port: &str) -> Result<u16, String> {
    match port.trim().parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err("not a number from 1 to 65535".to_owned()),
    }
}

fn parse_address_port(port: &str) -> Result<u16, String> {
    parse_port(port).map_err(|reason| format!("port {port:?} is {reason}"))
}

fn parse_interval(value: &str) -> Result<Duration, String> {
    let interval = humantime::parse_duration(value)
        .map_err(|_| "expected a duration with a unit, such as 30s, 1m or 5m".to_owned())?;
    if interval.subsec_nanos() != 0 || interval < Duration::from_secs(1) || interval > MAX_POLL_INTERVAL {
        return Err("must be a whole number of seconds from 1s to 24h".to_owned());
    }
    Ok(interval)
}

/// A duration from 1m to 30d, or `off` (also `0`, `0s`): no scheduled backup for the device.
fn parse_backup_interval(value: &str) -> Result<BackupInterval, String> {
    if value.eq_ignore_ascii_case("off") || value == "0" {
        return Ok(BackupInterval::Off);
    }
    let interval = humantime::parse_duration(value)
        .map_err(|_| "expected a duration with a unit, such as 6h or 1d, or off".to_owned())?;
    if interval.is_zero() {
        return Ok(BackupInterval::Off);
    }
    if interval.subsec_nanos() != 0 || interval < MIN_BACKUP_INTERVAL || interval > MAX_BACKUP_INTERVAL {
        return Err("must be a whole number of seconds from 1m to 30d, or off".to_owned());
    }
    Ok(BackupInterval::Every(interval))
}

// ---- export ----

#[derive(Serialize)]
struct ExportFile<'a> {
    devices: Vec<ExportDevice<'a>>,
}

#[derive(Serialize)]
struct ExportDevice<'a> {
    name: &'a str,
    address: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    site: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    vendor: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    platform: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tags: Option<serde_saphyr::FlowSeq<&'a [String]>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    poll_interval: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    backup_interval: Option<String>,
    snmp: ExportSnmp<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ssh: Option<ExportSsh<'a>>,
}

#[derive(Serialize)]
struct ExportSnmp<'a> {
    version: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    community: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    user: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_password: Option<&'a str>,
    #[serde(rename = "priv", skip_serializing_if = "Option::is_none")]
    privacy: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    priv_password: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<&'a str>,
}

#[derive(Serialize)]
struct ExportSsh<'a> {
    user: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    password: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    passphrase: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
}

/// The address as a file writes it: the port only when it is not 161.
fn export_address(device: &Device) -> String {
    if device.snmp_port == DEFAULT_SNMP_PORT { device.host.clone() } else { device.snmp_target() }
}

fn export_interval(interval: Option<Duration>) -> Option<String> {
    interval.map(|i| humantime::format_duration(i).to_string())
}

fn export_backup_interval(interval: Option<BackupInterval>) -> Option<String> {
    interval.map(|i| match i {
        BackupInterval::Off => "off".to_owned(),
        BackupInterval::Every(i) => humantime::format_duration(i).to_string(),
    })
}

fn export_device(device: &Device, include_secrets: bool) -> ExportDevice<'_> {
    let keep = |s: &str| -> bool { include_secrets && !s.is_empty() };
    let snmp = match &device.snmp {
        SnmpCredentials::V2c { community } => ExportSnmp {
            version: "v2c",
            community: keep(community).then_some(community.as_str()),
            user: None,
            auth: None,
            auth_password: None,
            privacy: None,
            priv_password: None,
            context: None,
        },
        SnmpCredentials::V3(v3) => ExportSnmp {
            version: "v3",
            community: None,
            user: Some(&v3.user),
            auth: v3.auth.as_ref().map(|(p, _)| p.name()),
            auth_password: v3.auth.as_ref().map(|(_, pw)| pw.as_str()).filter(|pw| keep(pw)),
            privacy: v3.privacy.as_ref().map(|(p, _)| p.name()),
            priv_password: v3.privacy.as_ref().map(|(_, pw)| pw.as_str()).filter(|pw| keep(pw)),
            context: v3.context.as_deref(),
        },
    };
    let ssh = device.ssh.as_ref().map(|ssh| {
        let (password, key, passphrase) = match &ssh.auth {
            SshAuth::Password(password) => (Some(password.as_str()), None, None),
            SshAuth::Key { private_key, passphrase } => (None, Some(private_key.as_str()), passphrase.as_deref()),
        };
        ExportSsh {
            user: &ssh.user,
            password: password.filter(|s| keep(s)),
            key: key.filter(|s| keep(s)),
            passphrase: passphrase.filter(|s| keep(s)),
            port: (ssh.port != DEFAULT_SSH_PORT).then_some(ssh.port),
        }
    });
    ExportDevice {
        name: &device.name,
        address: export_address(device),
        site: device.site.as_deref(),
        role: device.role.as_deref(),
        vendor: device.vendor.as_deref(),
        platform: device.platform.as_deref(),
        tags: (!device.tags.is_empty()).then_some(serde_saphyr::FlowSeq(device.tags.as_slice())),
        poll_interval: export_interval(device.poll_interval),
        backup_interval: export_backup_interval(device.backup_interval),
        snmp,
        ssh,
    }
}

/// The inventory as YAML that [`parse_inventory`] reads back. Without `include_secrets`,
/// communities, passwords, keys and passphrases are left out (such a file does not import
/// until they are filled in, so a redacted export can never overwrite real secrets).
pub fn export_yaml(devices: &[Device], include_secrets: bool) -> String {
    let file = ExportFile { devices: devices.iter().map(|d| export_device(d, include_secrets)).collect() };
    let yaml = serde_saphyr::to_string(&file).expect("serialising plain strings and numbers to YAML cannot fail");
    if include_secrets {
        yaml
    } else {
        format!("# Secrets (communities, passwords, keys) are left out: add them before importing.\n{yaml}")
    }
}

/// The inventory as CSV: the documented 20 columns, then `ssh_key` and `ssh_passphrase`.
/// Secrets are left out unless `include_secrets`, as in [`export_yaml`].
pub fn export_csv(devices: &[Device], include_secrets: bool) -> String {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let header: Vec<&str> = CSV_COLUMNS.iter().map(|(column, _)| *column).filter(|c| *c != "ssh_key_file").collect();
    writer.write_record(&header).expect("writing CSV to memory cannot fail");
    for device in devices {
        let d = export_device(device, include_secrets);
        let opt = |v: Option<&str>| v.unwrap_or_default().to_owned();
        let row = [
            d.name.to_owned(),
            d.address,
            opt(d.site),
            opt(d.role),
            opt(d.vendor),
            opt(d.platform),
            device.tags.join(";"),
            d.poll_interval.unwrap_or_default(),
            d.backup_interval.unwrap_or_default(),
            d.snmp.version.to_owned(),
            opt(d.snmp.community),
            opt(d.snmp.user),
            opt(d.snmp.auth),
            opt(d.snmp.auth_password),
            opt(d.snmp.privacy),
            opt(d.snmp.priv_password),
            opt(d.snmp.context),
            opt(d.ssh.as_ref().map(|s| s.user)),
            opt(d.ssh.as_ref().and_then(|s| s.password)),
            device.ssh.as_ref().map(|s| s.port.to_string()).unwrap_or_default(),
            opt(d.ssh.as_ref().and_then(|s| s.key)),
            opt(d.ssh.as_ref().and_then(|s| s.passphrase)),
        ];
        writer.write_record(&row).expect("writing CSV to memory cannot fail");
    }
    let bytes = writer.into_inner().expect("flushing CSV to memory cannot fail");
    String::from_utf8(bytes).expect("CSV built from strings is UTF-8")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> (String, String) {
        let path = format!("{}/testdata/inventory/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        (path, text)
    }

    /// Parses `text` as file `name` and expects exactly `expected` errors (without the file prefix).
    #[track_caller]
    fn check_errors(name: &str, text: &str, expected: &[&str]) {
        let errors = parse_inventory(name, text, None).expect_err("expected errors");
        let got: Vec<String> = errors.errors.iter().map(|e| e.to_string()).collect();
        let expected: Vec<String> = expected.iter().map(|e| format!("{name}:{e}")).collect();
        assert_eq!(got, expected, "\n{errors}");
    }

    fn v2c(name: &str, host: &str, community: &str) -> Device {
        Device {
            id: None,
            name: name.into(),
            host: host.into(),
            snmp_port: 161,
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

    const TEST_KEY: &str =
        "-----BEGIN OPENSSH PRIVATE KEY-----\nZmFrZSBrZXkgZm9yIHRlc3RzIG9ubHk=\n-----END OPENSSH PRIVATE KEY-----\n";

    fn good_devices() -> Vec<Device> {
        vec![
            Device {
                site: Some("lab".into()),
                role: Some("spine".into()),
                vendor: Some("frr".into()),
                platform: Some("frr".into()),
                tags: vec!["lab".into(), "fabric".into()],
                poll_interval: Some(Duration::from_secs(30)),
                ..v2c("spine1", "10.255.0.11", "public")
            },
            Device {
                snmp_port: 1161,
                site: Some("lab".into()),
                role: Some("leaf".into()),
                tags: vec!["lab".into(), "fabric".into()],
                poll_interval: Some(Duration::from_secs(60)),
                snmp: SnmpCredentials::V3(SnmpV3Credentials {
                    user: "netops".into(),
                    auth: Some((AuthProtocol::Sha256, "authpass123".into())),
                    privacy: Some((PrivProtocol::Aes128, "007privpass".into())),
                    context: None,
                }),
                ssh: Some(SshCredentials {
                    user: "netops".into(),
                    auth: SshAuth::Password("secret".into()),
                    port: 2222,
                }),
                ..v2c("leaf1", "leaf1.lab.example", "")
            },
            Device {
                snmp_port: 16100,
                snmp: SnmpCredentials::V3(SnmpV3Credentials {
                    user: "monitor".into(),
                    auth: None,
                    privacy: None,
                    context: None,
                }),
                ssh: Some(SshCredentials {
                    user: "netops".into(),
                    auth: SshAuth::Key { private_key: TEST_KEY.into(), passphrase: Some("hunter22".into()) },
                    port: 22,
                }),
                ..v2c("leaf2", "2001:db8::12", "")
            },
            Device {
                snmp: SnmpCredentials::V3(SnmpV3Credentials {
                    user: "netops".into(),
                    auth: Some((AuthProtocol::Md5, "12345678".into())),
                    privacy: None,
                    context: Some("vrf-mgmt".into()),
                }),
                ssh: Some(SshCredentials {
                    user: "admin".into(),
                    auth: SshAuth::Key { private_key: TEST_KEY.into(), passphrase: None },
                    port: 22,
                }),
                ..v2c("border1", "2001:db8::1", "")
            },
        ]
    }

    #[test]
    fn good_yaml() {
        let (path, text) = fixture("good.yaml");
        assert_eq!(read_inventory_file(Path::new(&path), None).unwrap(), good_devices());
        // Text that did not come from disk may not name key files.
        let errors = parse_inventory(&path, &text, None).unwrap_err().to_string();
        assert!(
            errors.ends_with(
                ":36: device \"leaf2\": ssh.key_file is only accepted in an inventory read from disk; \
                 put the key itself in ssh.key"
            ),
            "{errors}"
        );
    }

    #[test]
    fn good_csv_matches_the_yaml() {
        let (path, text) = fixture("good.csv");
        let devices = parse_inventory(&path, &text, None).unwrap();
        let mut expected = good_devices();
        expected.truncate(3);
        expected[2].ssh = None;
        assert_eq!(devices, expected);
    }

    #[test]
    fn bad_yaml_reports_every_error_with_its_line() {
        let (_, text) = fixture("bad.yaml");
        check_errors(
            "bad.yaml",
            &text,
            &[
                r#"5: device "spine1": name "spine1" is already used by the device on line 2"#,
                r#"8: device #3: name is missing or empty"#,
                r#"16: device "leaf2": snmp.auth "SHA-999" is not one of MD5, SHA, SHA-224, SHA-256, SHA-384, SHA-512"#,
                r#"19: device "leaf3": address "10.0.0.300": not a valid IPv4 address"#,
                r#"20: device "leaf3": snmp.version "v1" is not one of v2c, v3"#,
                r#"21: device "leaf3": poll_interval "30": expected a duration with a unit, such as 30s, 1m or 5m"#,
                r#"23: device "leaf4": address "leaf4:99999": port "99999" is not a number from 1 to 65535"#,
                r#"27: device "leaf4": snmp.priv requires snmp.auth: SNMPv3 has no privacy without authentication"#,
                "31: device \"leaf5\": unknown field `comunity`, expected one of `name`, `address`, `site`, `role`, \
             `vendor`, `platform`, `tags`, `poll_interval`, `backup_interval`, `snmp`, `ssh`",
                "32: device \"leaf5\": snmp: unknown field `colour`, expected one of `version`, `community`, `user`, \
             `auth`, `auth_password`, `priv`, `priv_password`, `context`",
                r#"34: device "leaf6": address "10.1.1.1:22:33": not an IPv6 address; with a port, write IPv6 as [address]:port"#,
                r#"35: device "leaf6": tags.1: invalid type: sequence, expected a string"#,
                r#"37: device "leaf6": ssh.port "0" is not a number from 1 to 65535"#,
                r#"37: device "leaf6": ssh.password, ssh.key and ssh.key_file exclude each other; set one"#,
                r#"38: device "leaf7": snmp is missing (e.g. `snmp: { version: v2c, community: ... }`)"#,
            ],
        );
    }

    #[test]
    fn bad_csv_reports_every_error_with_its_line() {
        let (_, text) = fixture("bad.csv");
        check_errors(
            "bad.csv",
            &text,
            &[
                r#"3: device "spine1": name "spine1" is already used by the device on line 2"#,
                r#"4: device #3: name is missing or empty"#,
                r#"5: device "leaf2": v3_auth "SHA-999" is not one of MD5, SHA, SHA-224, SHA-256, SHA-384, SHA-512"#,
                r#"6: device "leaf3": address "10.0.0.300": not a valid IPv4 address"#,
                r#"6: device "leaf3": poll_interval "30": expected a duration with a unit, such as 30s, 1m or 5m"#,
                r#"6: device "leaf3": snmp_version "v1" is not one of v2c, v3"#,
                r#"7: device "leaf4": address "leaf4:99999": port "99999" is not a number from 1 to 65535"#,
                r#"7: device "leaf4": v3_priv requires v3_auth: SNMPv3 has no privacy without authentication"#,
                r#"8: device "leaf5": v3_user is only used with version v3"#,
                r#"8: device "leaf5": ssh_port "70000" is not a number from 1 to 65535"#,
                r#"8: device "leaf5": ssh needs one of ssh_password, ssh_key or ssh_key_file"#,
                r#"9: row #8: expected 14 fields, found 4"#,
                r#"10: device "leaf7": poll_interval "5ms": must be a whole number of seconds from 1s to 24h"#,
                r#"10: device "leaf7": v3_user is missing (required for v3)"#,
                r#"10: device "leaf7": v3_auth_password must be at least 8 characters (RFC 3414)"#,
            ],
        );
    }

    #[test]
    fn structure_of_the_yaml_file() {
        assert_eq!(parse_inventory("i.yaml", "devices: []\n", None).unwrap(), vec![]);
        assert_eq!(parse_inventory("i.yaml", "devices:\n", None).unwrap(), vec![]);
        check_errors("i.yaml", "", &["1: expected a mapping with a `devices:` list"]);
        check_errors("i.yaml", "- a\n- b\n", &["1: expected a mapping with a `devices:` list"]);
        check_errors("i.yaml", "devices: {a: 1}\n", &["1: `devices` must be a list, found a mapping"]);
        check_errors(
            "i.yaml",
            "# inventory\nhosts: []\ndevices: []\n",
            &["2: unknown top-level key `hosts`, expected `devices`"],
        );
        check_errors(
            "i.yaml",
            "devices:\n  - spine1\n  - [a]\n",
            &["2: device #1: expected a mapping, found a scalar", "3: device #2: expected a mapping, found a list"],
        );
        let errors = parse_inventory("i.yaml", "devices:\n  - name: a\n    address: [unclosed\n", None).unwrap_err();
        assert_eq!(errors.errors.len(), 1);
        assert!(errors.errors[0].message.starts_with("invalid YAML: "), "{errors}");
        assert!(errors.errors[0].line.is_some(), "{errors}");
        let errors = parse_inventory("i.yaml", "devices:\n  - name: a\n    name: b\n", None).unwrap_err();
        assert_eq!(errors.errors[0].line, Some(3), "{errors}");
    }

    #[test]
    fn snmp_rules() {
        let one = |snmp: &str| format!("devices:\n  - name: d\n    address: 10.0.0.1\n    snmp: {snmp}\n");
        check_errors(
            "i.yaml",
            &one("{ version: v2c }"),
            &[r#"4: device "d": snmp.community is missing (required for v2c)"#],
        );
        check_errors("i.yaml", &one("{ community: x }"), &[r#"4: device "d": snmp.version is missing: v2c or v3"#]);
        check_errors(
            "i.yaml",
            &one("{ version: v2c, community: c, user: u, context: x }"),
            &[
                r#"4: device "d": snmp.user is only used with version v3"#,
                r#"4: device "d": snmp.context is only used with version v3"#,
            ],
        );
        check_errors(
            "i.yaml",
            &one("{ version: v3, user: u, community: c, auth_password: 12345678 }"),
            &[
                r#"4: device "d": snmp.community is only used with version v2c"#,
                r#"4: device "d": snmp.auth_password is set but snmp.auth is not"#,
            ],
        );
        check_errors(
            "i.yaml",
            &one("{ version: v3, user: u, auth: SHA, priv: AES-512, priv_password: abcdefgh }"),
            &[
                r#"4: device "d": snmp.auth_password is missing (required with snmp.auth)"#,
                r#"4: device "d": snmp.priv "AES-512" is not one of DES, AES, AES-192, AES-256"#,
            ],
        );
        check_errors(
            "i.yaml",
            &one("{ version: v3, user: a-user-name-that-is-far-too-long-for-snmp }"),
            &[r#"4: device "d": snmp.user is longer than 32 characters"#],
        );
        let devices = parse_inventory("i.yaml", &one("{ version: 2c, community: 007 }"), None).unwrap();
        assert_eq!(devices[0].snmp, SnmpCredentials::V2c { community: "007".into() });
        let devices =
            parse_inventory("i.yaml", &one("{ version: v3, user: u, auth: sha1, auth_password: yes-yes-yes, priv: aes-256, priv_password: 1.100000 }"), None)
                .unwrap();
        assert_eq!(
            devices[0].snmp,
            SnmpCredentials::V3(SnmpV3Credentials {
                user: "u".into(),
                auth: Some((AuthProtocol::Sha1, "yes-yes-yes".into())),
                privacy: Some((PrivProtocol::Aes256, "1.100000".into())),
                context: None,
            })
        );
    }

    #[test]
    fn addresses() {
        let ok = |a: &str| parse_address(a).unwrap();
        assert_eq!(ok("10.0.0.1"), ("10.0.0.1".into(), None));
        assert_eq!(ok("10.0.0.1:1161"), ("10.0.0.1".into(), Some(1161)));
        assert_eq!(ok("router-1.example.net"), ("router-1.example.net".into(), None));
        assert_eq!(ok("router_1:162"), ("router_1".into(), Some(162)));
        assert_eq!(ok("2001:db8::1"), ("2001:db8::1".into(), None));
        assert_eq!(ok("[2001:db8::1]"), ("2001:db8::1".into(), None));
        assert_eq!(ok("[::1]:16100"), ("::1".into(), Some(16100)));
        let bad = |a: &str| parse_address(a).unwrap_err();
        assert_eq!(bad("10.0.0.1:0"), r#"port "0" is not a number from 1 to 65535"#);
        assert_eq!(bad("10.0.0.1:"), r#"port "" is not a number from 1 to 65535"#);
        assert_eq!(bad("10.0.0"), "not a valid IPv4 address");
        assert_eq!(bad("[::1"), "missing ']' after the IPv6 address");
        assert_eq!(bad("[::1]161"), "expected ':port' after ']'");
        assert_eq!(bad("[10.0.0.1]:161"), r#""10.0.0.1" is not an IPv6 address"#);
        assert_eq!(bad("bad host"), "not a valid host name or IP address");
        assert_eq!(bad("-bad.example"), "not a valid host name or IP address");
        assert_eq!(bad(":161"), "the host is empty");
    }

    #[test]
    fn ssh_rules_and_key_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("good.key"), TEST_KEY).unwrap();
        std::fs::write(dir.path().join("not.key"), "ssh-ed25519 AAAA public-not-private").unwrap();
        let file = dir.path().join("inv.yaml");
        let read = |text: &str| {
            std::fs::write(&file, text).unwrap();
            read_inventory_file(&file, None)
        };
        let one = |ssh: &str| {
            format!(
                "devices:\n  - name: d\n    address: 10.0.0.1\n    snmp: {{ version: v2c, community: c }}\n    ssh: {ssh}\n"
            )
        };
        let devices = read(&one("{ user: u, key_file: good.key }")).unwrap();
        assert_eq!(
            devices[0].ssh,
            Some(SshCredentials {
                user: "u".into(),
                auth: SshAuth::Key { private_key: TEST_KEY.into(), passphrase: None },
                port: 22
            })
        );
        let errors = read(&one("{ user: u, key_file: not.key }")).unwrap_err().to_string();
        assert!(errors.ends_with(r#":5: device "d": ssh.key_file "not.key" does not look like a private key (expected "-----BEGIN ... PRIVATE KEY-----")"#), "{errors}");
        assert!(!errors.contains("public-not-private"), "{errors}");
        let errors = read(&one("{ user: u, key_file: missing.key }")).unwrap_err().to_string();
        assert!(errors.contains(r#"ssh.key_file "missing.key": cannot read "#), "{errors}");

        check_errors(
            "i.yaml",
            &one("{ user: u, key: s3cret-not-a-key }"),
            &[
                r#"5: device "d": ssh.key does not look like a private key (expected "-----BEGIN ... PRIVATE KEY-----")"#,
            ],
        );
        check_errors(
            "i.yaml",
            &one("{ password: pw, passphrase: pp }"),
            &[
                r#"5: device "d": ssh.user is missing"#,
                r#"5: device "d": ssh.passphrase is only used with ssh.key or ssh.key_file"#,
            ],
        );
    }

    #[test]
    fn errors_never_echo_secrets() {
        let text = "devices:\n  - name: d\n    address: 10.0.0.1\n    snmp: { version: v5, community: s3cret-community }\n    \
                    ssh: { user: u, password: s3cret-password, key: s3cret-key }\n";
        let errors = parse_inventory("i.yaml", text, None).unwrap_err().to_string();
        assert!(!errors.contains("s3cret"), "{errors}");
        let csv = "name,address,snmp_version,community,v3_auth_password\nd,10.0.0.1,v3,s3cret-community,s3cret-pw\n";
        let errors = parse_inventory("i.csv", csv, None).unwrap_err().to_string();
        assert!(!errors.contains("s3cret"), "{errors}");
    }

    #[test]
    fn csv_header_problems_stop_before_rows() {
        check_errors(
            "i.csv",
            "name,adress,snmp_version,name\nd,10.0.0.1,v2c,d\n",
            &[
                &format!("1: unknown column `adress`, expected one of {}", CSV_COLUMNS.map(|(c, _)| c).join(", ")),
                "1: column `name` appears twice in the header",
                "1: the header has no `address` column",
            ],
        );
        let devices =
            parse_inventory("i.csv", "Name, Address ,SNMP_VERSION,community\nd,10.0.0.1,v2c, spaced \n", None).unwrap();
        assert_eq!(devices, [v2c("d", "10.0.0.1", " spaced ")]);
        assert_eq!(parse_inventory("i.csv", "\u{feff}name,address,snmp_version\n", None).unwrap(), []);
    }

    #[test]
    fn format_detection_and_override() {
        assert_eq!(Format::from_path("a/b/inv.YML"), Some(Format::Yaml));
        assert_eq!(Format::from_path("inv.yaml"), Some(Format::Yaml));
        assert_eq!(Format::from_path("inv.csv"), Some(Format::Csv));
        assert_eq!(Format::from_path("inv.txt"), None);
        assert_eq!(Format::from_path("inventory"), None);
        let errors = parse_inventory("stdin", "devices: []", None).unwrap_err();
        assert_eq!(
            errors.to_string(),
            "stdin: cannot tell the format from the file name: use .yaml, .yml or .csv, or name the format"
        );
        assert_eq!(parse_inventory("stdin", "devices: []", Some(Format::Yaml)).unwrap(), []);
        assert_eq!(parse_inventory("inv.yaml", "name,address,snmp_version\n", Some(Format::Csv)).unwrap(), []);
        assert_eq!("YML".parse::<Format>(), Ok(Format::Yaml));
        assert!("toml".parse::<Format>().is_err());
    }

    /// Devices whose secrets YAML and CSV could easily mangle.
    fn awkward_devices() -> Vec<Device> {
        let mut devices = good_devices();
        devices[0].snmp = SnmpCredentials::V2c { community: "007".into() };
        devices.push(Device {
            tags: vec!["core net".into(), "x,y".into()],
            poll_interval: Some(Duration::from_secs(90)),
            backup_interval: Some(BackupInterval::Every(Duration::from_secs(6 * 3600 + 30 * 60))),
            ssh: Some(SshCredentials {
                user: "ops user".into(),
                auth: SshAuth::Password(" yes: #not a comment\n\"quoted\" ".into()),
                port: 22,
            }),
            ..v2c("odd", "10.9.9.9", "true")
        });
        devices.push(Device {
            snmp: SnmpCredentials::V3(SnmpV3Credentials {
                user: "1.10".into(),
                auth: Some((AuthProtocol::Sha512, "~ null &a *b".into())),
                privacy: Some((PrivProtocol::Des, "0x1F,;'\"".into())),
                context: Some("ctx".into()),
            }),
            backup_interval: Some(BackupInterval::Off),
            ..v2c("odd2", "fe80::1", "")
        });
        devices
    }

    #[test]
    fn yaml_export_with_secrets_round_trips() {
        let devices = awkward_devices();
        let yaml = export_yaml(&devices, true);
        assert_eq!(parse_inventory("x.yaml", &yaml, None).unwrap(), devices, "\n{yaml}");
        assert!(yaml.contains("tags: [lab, fabric]"), "{yaml}");
        assert!(yaml.contains("address: leaf1.lab.example:1161"), "{yaml}");
        assert!(yaml.contains("address: \"[2001:db8::12]:16100\""), "{yaml}");
        assert!(yaml.contains("poll_interval: 1m 30s"), "{yaml}");
        assert!(yaml.contains("backup_interval: 6h 30m"), "{yaml}");
        assert!(yaml.contains("backup_interval: \"off\""), "quoted: YAML 1.1 reads a bare off as false\n{yaml}");
    }

    #[test]
    fn csv_export_with_secrets_round_trips() {
        let devices = awkward_devices();
        let csv = export_csv(&devices, true);
        assert!(csv.starts_with(
            "name,address,site,role,vendor,platform,tags,poll_interval,backup_interval,snmp_version,community,v3_user,v3_auth,\
             v3_auth_password,v3_priv,v3_priv_password,v3_context,ssh_user,ssh_password,ssh_port,ssh_key,ssh_passphrase\n"
        ));
        assert_eq!(parse_inventory("x.csv", &csv, None).unwrap(), devices, "\n{csv}");
        assert!(csv.contains(",1m 30s,6h 30m,v2c,"), "{csv}");
        assert!(csv.contains(",,off,v3,"), "{csv}");
    }

    #[test]
    fn backup_interval_values() {
        let one = |interval: &str| {
            format!(
                "devices:\n  - name: d\n    address: 10.0.0.1\n    backup_interval: {interval}\n    \
                 snmp: {{ version: v2c, community: c }}\n"
            )
        };
        let parsed = |interval: &str| parse_inventory("i.yaml", &one(interval), None).unwrap()[0].backup_interval;
        let every = |secs: u64| Some(BackupInterval::Every(Duration::from_secs(secs)));
        assert_eq!(parsed("6h"), every(6 * 3600));
        assert_eq!(parsed("1d"), every(24 * 3600));
        assert_eq!(parsed("1m"), every(60));
        assert_eq!(parsed("30days"), every(30 * 24 * 3600));
        assert_eq!(parsed("\"2h 15m\""), every(2 * 3600 + 15 * 60));
        for off in ["off", "OFF", "0", "0s", "\"off\""] {
            assert_eq!(parsed(off), Some(BackupInterval::Off), "{off}");
        }
        assert_eq!(parsed("\"\""), None, "empty means the global interval");
        let without = "devices:\n  - { name: d, address: 10.0.0.1, snmp: { version: v2c, community: c } }\n";
        assert_eq!(parse_inventory("i.yaml", without, None).unwrap()[0].backup_interval, None);

        check_errors(
            "i.yaml",
            &one("6"),
            &[r#"4: device "d": backup_interval "6": expected a duration with a unit, such as 6h or 1d, or off"#],
        );
        check_errors(
            "i.yaml",
            &one("no"),
            &[r#"4: device "d": backup_interval "no": expected a duration with a unit, such as 6h or 1d, or off"#],
        );
        for short_or_long in ["30s", "31d", "90500ms"] {
            check_errors(
                "i.yaml",
                &one(short_or_long),
                &[&format!(
                    r#"4: device "d": backup_interval "{short_or_long}": must be a whole number of seconds from 1m to 30d, or off"#
                )],
            );
        }
        // CSV: the column's own name in the message, the row's line.
        let csv = "name,address,snmp_version,community,backup_interval\n\
                   a,10.0.0.1,v2c,c,12h\n\
                   b,10.0.0.2,v2c,c,off\n\
                   c,10.0.0.3,v2c,c,\n\
                   d,10.0.0.4,v2c,c,soon\n";
        check_errors(
            "i.csv",
            csv,
            &[r#"5: device "d": backup_interval "soon": expected a duration with a unit, such as 6h or 1d, or off"#],
        );
        let devices = parse_inventory("i.csv", &csv.replace(",soon", ",7d"), None).unwrap();
        let got: Vec<_> = devices.iter().map(|d| d.backup_interval).collect();
        assert_eq!(got, [every(12 * 3600), Some(BackupInterval::Off), None, every(7 * 24 * 3600)]);
    }

    #[test]
    fn export_without_secrets_leaks_nothing_and_does_not_import() {
        let devices = awkward_devices();
        let secrets = [
            "public",
            "authpass123",
            "007privpass",
            "secret",
            "hunter22",
            "ZmFrZSBr",
            "12345678",
            "true",
            "yes:",
            "~ null",
            "0x1F",
        ];
        for (format, text) in [("x.yaml", export_yaml(&devices, false)), ("x.csv", export_csv(&devices, false))] {
            for secret in secrets {
                assert!(!text.contains(secret), "{format} leaks {secret:?}:\n{text}");
            }
            assert!(text.contains("SHA-256") && text.contains("netops"), "{format} keeps what is not secret:\n{text}");
            let errors = parse_inventory(format, &text, None).unwrap_err().to_string();
            assert!(errors.contains("is missing"), "{errors}");
            assert!(format == "x.csv" || text.starts_with("# Secrets"), "{text}");
        }
    }
}
