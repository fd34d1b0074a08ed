//! Drift: a device's configuration compared with what it should be, either an intended
//! configuration rendered from a minijinja template and inventory variables, or its last
//! approved snapshot. The result is a [`DriftFinding`] that the intent and remediation code
//! consume. Comparison is by configuration path (a line together with its parents, e.g.
//! `interface eth1 > description uplink`), so the same line under another parent is different.

use super::{ConfigDiff, mask_line, normalize, store, unified_diff};
use crate::inventory::Device;
use crate::ssh::Profile;
use crate::ssh::profile::ConfigSyntax;
use serde::Serialize;
use std::collections::BTreeSet;

/// What the running configuration was compared with.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Baseline {
    Template { name: String },
    ApprovedSnapshot { snapshot_id: i64, approved_by: Option<String> },
}

/// How strictly to compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DriftMode {
    /// Every line of the baseline must be there; other lines are allowed (a template that
    /// covers part of the configuration, e.g. NTP and syslog).
    Contains,
    /// The configuration must be the baseline, no more, no less (an approved snapshot).
    Exact,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DriftFinding {
    pub device: String,
    pub baseline: Baseline,
    pub mode: DriftMode,
    /// The snapshot that was compared (the device's latest backup).
    pub snapshot_id: Option<i64>,
    pub in_sync: bool,
    /// Paths of the baseline the configuration lacks (secrets masked).
    pub missing: Vec<String>,
    /// Paths of the configuration the baseline lacks (`Exact` only; secrets masked).
    pub unexpected: Vec<String>,
    /// Unified diff from the baseline to the configuration, secrets masked.
    pub diff: ConfigDiff,
}

#[derive(Debug, thiserror::Error)]
pub enum DriftError {
    #[error("template {name}: {message}")]
    Template { name: String, message: String },
    #[error("{0}: no approved snapshot")]
    NoApproved(String),
    #[error("{0}: no snapshot (no successful backup yet)")]
    NoSnapshot(String),
    #[error("database: {0}")]
    Db(#[from] tokio_postgres::Error),
}

/// Renders an intended configuration. The template sees `device` (name, host, site, role,
/// vendor, platform, tags) and `vars` (anything the caller has, e.g. per-site settings). An
/// undefined variable is an error, not an empty string: a typo must not render a config that
/// silently lacks a line.
pub fn render_intended(
    name: &str,
    template: &str,
    device: &Device,
    vars: &serde_json::Value,
) -> Result<String, DriftError> {
    let err = |e: minijinja::Error| DriftError::Template { name: name.to_owned(), message: format!("{e:#}") };
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_trim_blocks(true);
    env.set_lstrip_blocks(true);
    env.set_keep_trailing_newline(true);
    env.add_template(name, template).map_err(err)?;
    let ctx = minijinja::context! {
        device => minijinja::context! {
            name => device.name, host => device.host, site => device.site, role => device.role,
            vendor => device.vendor, platform => device.platform, tags => device.tags,
        },
        vars => minijinja::Value::from_serialize(vars),
    };
    env.get_template(name).and_then(|t| t.render(ctx)).map_err(err)
}

/// Configuration paths: each significant line with its parents, `parent > child`.
pub fn paths(profile: &Profile, text: &str) -> Vec<String> {
    match profile.syntax {
        ConfigSyntax::Indent => indent_paths(text),
        ConfigSyntax::Braces => brace_paths(text),
    }
}

fn indent_paths(text: &str) -> Vec<String> {
    let mut stack: Vec<(usize, String)> = Vec::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let body = line.trim();
        // comments and block closers carry no configuration
        if body.is_empty() || body.starts_with('!') || body == "end" || body == "exit" || body == "exit-address-family"
        {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        while stack.last().is_some_and(|(i, _)| *i >= indent) {
            stack.pop();
        }
        let mut path: Vec<&str> = stack.iter().map(|(_, t)| t.as_str()).collect();
        path.push(body);
        out.push(path.join(" > "));
        stack.push((indent, body.to_owned()));
    }
    out
}

fn brace_paths(text: &str) -> Vec<String> {
    let mut stack: Vec<String> = Vec::new();
    let mut out = Vec::new();
    for line in text.lines() {
        let mut body = line.trim();
        if let Some(i) = body.find("## ") {
            body = body[..i].trim(); // "## SECRET-DATA" and other annotations
        }
        if body.is_empty() || body.starts_with('#') || body.starts_with("/*") {
            continue;
        }
        if body == "}" {
            stack.pop();
        } else if let Some(open) = body.strip_suffix('{') {
            stack.push(open.trim().to_owned());
        } else {
            let mut path = stack.clone();
            path.push(body.trim_end_matches(';').to_owned());
            out.push(path.join(" > "));
        }
    }
    out
}

/// Compares `running` with `baseline` (both as the device prints them; volatile lines ignored).
pub fn compare(
    device: &str,
    profile: &Profile,
    baseline: Baseline,
    baseline_text: &str,
    running: &str,
    mode: DriftMode,
    snapshot_id: Option<i64>,
) -> DriftFinding {
    let want_text = normalize(profile, baseline_text);
    let have_text = normalize(profile, running);
    let want: BTreeSet<String> = paths(profile, &want_text).into_iter().collect();
    let have: BTreeSet<String> = paths(profile, &have_text).into_iter().collect();
    let missing: Vec<String> = want.difference(&have).map(|p| mask_line(profile, p)).collect();
    let unexpected: Vec<String> = match mode {
        DriftMode::Exact => have.difference(&want).map(|p| mask_line(profile, p)).collect(),
        DriftMode::Contains => Vec::new(),
    };
    let label = match &baseline {
        Baseline::Template { name } => format!("intended ({name})"),
        Baseline::ApprovedSnapshot { snapshot_id, .. } => format!("approved snapshot {snapshot_id}"),
    };
    let running_label = snapshot_id.map_or("running".to_owned(), |id| format!("snapshot {id}"));
    let diff = unified_diff(profile, &want_text, &have_text, &label, &running_label, false);
    DriftFinding {
        device: device.to_owned(),
        baseline,
        mode,
        snapshot_id,
        in_sync: missing.is_empty() && unexpected.is_empty(),
        missing,
        unexpected,
        diff,
    }
}

/// The device's latest snapshot against its last approved one (`Exact`).
pub async fn against_approved(
    client: &impl tokio_postgres::GenericClient,
    device: &Device,
    profile: &Profile,
) -> Result<DriftFinding, DriftError> {
    let id = device.id.ok_or_else(|| DriftError::NoSnapshot(device.name.clone()))?;
    let approved =
        store::approved_snapshot(client, id).await?.ok_or_else(|| DriftError::NoApproved(device.name.clone()))?;
    let latest =
        store::latest_snapshot(client, id).await?.ok_or_else(|| DriftError::NoSnapshot(device.name.clone()))?;
    Ok(compare(
        &device.name,
        profile,
        Baseline::ApprovedSnapshot { snapshot_id: approved.id, approved_by: approved.approved_by },
        &approved.content,
        &latest.content,
        DriftMode::Exact,
        Some(latest.id),
    ))
}

/// The device's latest snapshot against an intended configuration rendered from a template.
pub async fn against_template(
    client: &impl tokio_postgres::GenericClient,
    device: &Device,
    profile: &Profile,
    template_name: &str,
    template: &str,
    vars: &serde_json::Value,
    mode: DriftMode,
) -> Result<DriftFinding, DriftError> {
    let intended = render_intended(template_name, template, device, vars)?;
    let id = device.id.ok_or_else(|| DriftError::NoSnapshot(device.name.clone()))?;
    let latest =
        store::latest_snapshot(client, id).await?.ok_or_else(|| DriftError::NoSnapshot(device.name.clone()))?;
    Ok(compare(
        &device.name,
        profile,
        Baseline::Template { name: template_name.to_owned() },
        &intended,
        &latest.content,
        mode,
        Some(latest.id),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inventory::SnmpCredentials;
    use crate::ssh::Profiles;
    use std::path::Path;

    fn device() -> Device {
        Device {
            id: Some(1),
            name: "core1".into(),
            host: "192.0.2.1".into(),
            snmp_port: 161,
            site: Some("ams1".into()),
            role: Some("core".into()),
            vendor: Some("cisco".into()),
            platform: Some("ios".into()),
            tags: vec![],
            snmp: SnmpCredentials::V2c { community: "x".into() },
            ssh: None,
            poll_interval: None,
            backup_interval: None,
        }
    }

    fn running() -> String {
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/cli/cisco-ios/show_running-config.txt"),
        )
        .unwrap()
    }

    const TEMPLATE: &str = "hostname {{ device.name }}\n\
        {% for s in vars.ntp_servers %}ntp server {{ s }}\n{% endfor %}\
        snmp-server location {{ vars.location }}\n";

    #[test]
    fn template_rendered_from_inventory_and_compared() {
        let ios = Profiles::builtin().get("cisco-ios").unwrap();
        let vars = serde_json::json!({ "ntp_servers": ["10.0.0.1", "10.0.0.2"], "location": "ams1 row 3 rack 12" });
        let intended = render_intended("base", TEMPLATE, &device(), &vars).unwrap();
        assert_eq!(
            intended,
            "hostname core1\nntp server 10.0.0.1\nntp server 10.0.0.2\nsnmp-server location ams1 row 3 rack 12\n"
        );
        let f = compare(
            "core1",
            &ios,
            Baseline::Template { name: "base".into() },
            &intended,
            &running(),
            DriftMode::Contains,
            None,
        );
        assert!(f.in_sync, "{f:#?}");

        let vars = serde_json::json!({ "ntp_servers": ["10.0.0.1", "10.0.0.9"], "location": "ams1 row 3 rack 12" });
        let intended = render_intended("base", TEMPLATE, &device(), &vars).unwrap();
        let f = compare(
            "core1",
            &ios,
            Baseline::Template { name: "base".into() },
            &intended,
            &running(),
            DriftMode::Contains,
            None,
        );
        assert!(!f.in_sync);
        assert_eq!(f.missing, vec!["ntp server 10.0.0.9".to_owned()]);
        assert!(f.unexpected.is_empty());
    }

    #[test]
    fn undefined_template_variables_are_errors() {
        let e = render_intended("base", TEMPLATE, &device(), &serde_json::json!({ "ntp_servers": [] })).unwrap_err();
        assert!(e.to_string().contains("base"), "{e}");
    }

    #[test]
    fn exact_comparison_by_path_with_secrets_masked() {
        let frr = Profiles::builtin().get("frr").unwrap();
        let approved =
            "hostname r1\ninterface eth1\n description uplink\n!\nrouter bgp 1\n neighbor 10.0.0.0 password s3cret\n";
        let running = "hostname r1\ninterface eth1\n!\ninterface eth2\n description uplink\n!\nrouter bgp 1\n neighbor 10.0.0.0 password s3cret\n";
        let f = compare(
            "r1",
            &frr,
            Baseline::ApprovedSnapshot { snapshot_id: 7, approved_by: None },
            approved,
            running,
            DriftMode::Exact,
            Some(8),
        );
        assert!(!f.in_sync);
        assert_eq!(f.missing, vec!["interface eth1 > description uplink".to_owned()]);
        assert_eq!(f.unexpected, vec!["interface eth2".to_owned(), "interface eth2 > description uplink".to_owned()]);
        assert!(!f.diff.diff.contains("s3cret"));
    }

    #[test]
    fn junos_braces_become_paths() {
        let junos = Profiles::builtin().get("junos").unwrap();
        let p = paths(&junos, "system {\n    host-name mx1;\n    ntp {\n        server 10.0.0.1;\n    }\n}\n");
        assert_eq!(p, vec!["system > host-name mx1", "system > ntp > server 10.0.0.1"]);
    }
}
