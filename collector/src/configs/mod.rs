//! Configuration snapshots: backups of devices' running configurations, deduplicated by hash,
//! unified diffs between any two, a change history per device, change events, and drift against
//! an intended configuration or the last approved snapshot.
//!
//! The pure core is here: [`normalize`] (volatile lines out, so a timestamp in a header is not a
//! change), [`sha256_hex`], [`mask`] and [`unified_diff`] (secrets masked in everything shown).
//! [`schedule`] says which devices are due for a backup. I/O is at the edges: [`backup`] drives
//! sessions, [`store`] owns the tables.

pub mod backup;
pub mod drift;
pub mod schedule;
pub mod store;

use crate::ssh::Profile;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Why a backup was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackupTrigger {
    /// Asked for by a person (CLI).
    Manual,
    /// The per-device schedule.
    Scheduled,
    /// Right after netwarden changed the device.
    Change,
    /// Asked for through the HTTP API.
    Api,
}

impl BackupTrigger {
    pub fn as_str(self) -> &'static str {
        match self {
            BackupTrigger::Manual => "manual",
            BackupTrigger::Scheduled => "scheduled",
            BackupTrigger::Change => "change",
            BackupTrigger::Api => "api",
        }
    }
}

/// What replaces a secret in anything shown.
pub const MASK: &str = "<masked>";

/// The configuration as stored, hashed and diffed: line ends normalised, trailing blanks
/// trimmed, the profile's volatile lines dropped, leading and trailing empty lines removed.
pub fn normalize(profile: &Profile, raw: &str) -> String {
    let lines: Vec<&str> = raw
        .lines()
        .map(|l| l.trim_end_matches(['\r', ' ', '\t']))
        .filter(|l| !profile.volatile.iter().any(|r| r.is_match(l)))
        .collect();
    let start = lines.iter().position(|l| !l.is_empty()).unwrap_or(lines.len());
    let end = lines.iter().rposition(|l| !l.is_empty()).map_or(start, |i| i + 1);
    let mut out = lines[start..end].join("\n");
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

pub fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes()).iter().map(|b| format!("{b:02x}")).collect()
}

/// `line` with every secret the profile knows replaced by [`MASK`].
pub fn mask_line(profile: &Profile, line: &str) -> String {
    let mut ranges: Vec<(usize, usize)> = Vec::new();
    for r in &profile.secrets {
        for caps in r.captures_iter(line) {
            if let Some(m) = caps.name("secret") {
                ranges.push((m.start(), m.end()));
            }
        }
    }
    if ranges.is_empty() {
        return line.to_owned();
    }
    ranges.sort();
    let mut out = String::with_capacity(line.len());
    let mut at = 0;
    for (start, end) in ranges {
        if start < at {
            at = at.max(end); // overlapping patterns: already masked
            continue;
        }
        out.push_str(&line[at..start]);
        out.push_str(MASK);
        at = end;
    }
    out.push_str(&line[at..]);
    out
}

/// A whole configuration with its secrets masked.
pub fn mask(profile: &Profile, text: &str) -> String {
    let mut out: String = text.lines().map(|l| mask_line(profile, l)).collect::<Vec<_>>().join("\n");
    if text.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// A unified diff, its size, and whether secrets were masked in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConfigDiff {
    pub diff: String,
    pub lines_added: usize,
    pub lines_removed: usize,
}

impl ConfigDiff {
    pub fn is_empty(&self) -> bool {
        self.lines_added == 0 && self.lines_removed == 0
    }
}

/// Unified diff (3 lines of context) from `old` to `new`. With `reveal = false` secrets are
/// masked in every line shown: a changed password still shows as a changed line, without the
/// password.
pub fn unified_diff(
    profile: &Profile,
    old: &str,
    new: &str,
    old_label: &str,
    new_label: &str,
    reveal: bool,
) -> ConfigDiff {
    let diff = similar::TextDiff::from_lines(old, new);
    let (mut lines_added, mut lines_removed) = (0, 0);
    for change in diff.iter_all_changes() {
        match change.tag() {
            similar::ChangeTag::Insert => lines_added += 1,
            similar::ChangeTag::Delete => lines_removed += 1,
            similar::ChangeTag::Equal => {}
        }
    }
    let text =
        diff.unified_diff().context_radius(3).header(old_label, new_label).missing_newline_hint(false).to_string();
    let text = if reveal {
        text
    } else {
        let mut out = String::with_capacity(text.len());
        for line in text.lines() {
            let masked = match line.chars().next() {
                Some('+') if !line.starts_with("+++ ") => format!("+{}", mask_line(profile, &line[1..])),
                Some('-') if !line.starts_with("--- ") => format!("-{}", mask_line(profile, &line[1..])),
                Some(' ') => format!(" {}", mask_line(profile, &line[1..])),
                _ => line.to_owned(),
            };
            out.push_str(&masked);
            out.push('\n');
        }
        out
    };
    ConfigDiff { diff: text, lines_added, lines_removed }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssh::Profiles;
    use std::path::Path;

    fn capture(profile: &str, file: &str) -> String {
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/cli").join(profile).join(file))
            .unwrap()
    }

    #[test]
    fn volatile_lines_do_not_change_the_hash() {
        let ios = Profiles::builtin().get("cisco-ios").unwrap();
        let a = capture("cisco-ios", "show_running-config.txt");
        let b = a
            .replace(
                "! Last configuration change at 09:14:02 UTC Tue May 14 2024 by netops",
                "! Last configuration change at 11:00:00 UTC Wed May 15 2024 by admin",
            )
            .replace("Current configuration : 3120 bytes", "Current configuration : 3121 bytes");
        assert_ne!(a, b);
        assert_eq!(sha256_hex(&normalize(&ios, &a)), sha256_hex(&normalize(&ios, &b)));
        let n = normalize(&ios, &a);
        assert!(n.starts_with("!\n!\nversion 15.9\n"), "{}", &n[..40]);
        assert!(!n.contains("Last configuration change"));
        let c = a.replace("hostname core1", "hostname core2");
        assert_ne!(sha256_hex(&normalize(&ios, &a)), sha256_hex(&normalize(&ios, &c)));

        let junos = Profiles::builtin().get("junos").unwrap();
        let j = capture("junos", "show_configuration.txt");
        let j2 = j.replace(
            "## Last commit: 2024-05-14 09:14:02 UTC by netops",
            "## Last commit: 2024-06-01 00:00:00 UTC by root",
        );
        assert_eq!(normalize(&junos, &j), normalize(&junos, &j2));
    }

    #[test]
    fn secrets_are_masked_per_platform() {
        let profiles = Profiles::builtin();
        for (profile, file, secrets) in [
            (
                "cisco-ios",
                "show_running-config.txt",
                &["$9$Xq1B8kq3", "S3cr3tRO", "094F471A1A0A", "tacacsKey7", "0822455D0A16"][..],
            ),
            (
                "arista-eos",
                "show_running-config.txt",
                &["$6$Ab3dEf", "S3cr3tRO", "070E33455D1D", "1234567890ABCDEF"][..],
            ),
            ("junos", "show_configuration.txt", &["$6$mKq2", "$9$Hk5FCA0Ihr", "$9$tacplusSecret", "S3cr3tRO"][..]),
            ("frr", "secrets_example.txt", &["zebrapass", "bgpSecret1", "ospfKey", "md5Key"][..]),
        ] {
            let p = profiles.get(profile).unwrap();
            let text = capture(profile, file);
            let masked = mask(&p, &text);
            for s in secrets {
                assert!(text.contains(s), "{profile}: the capture has {s}");
                assert!(!masked.contains(s), "{profile}: {s} is not masked:\n{masked}");
            }
            assert!(masked.contains(MASK));
            assert_eq!(masked.lines().count(), text.lines().count());
        }
    }

    #[test]
    fn diffs_are_unified_and_masked() {
        let frr = Profiles::builtin().get("frr").unwrap();
        let old = "hostname r1\n!\ninterface eth1\n ip address 10.0.0.1/31\n!\nrouter bgp 1\n neighbor 10.0.0.0 password old1\n";
        let new = "hostname r1\n!\ninterface eth1\n description uplink\n ip address 10.0.0.1/31\n!\nrouter bgp 1\n neighbor 10.0.0.0 password new2\n";
        let d = unified_diff(&frr, old, new, "a", "b", false);
        assert_eq!((d.lines_added, d.lines_removed), (2, 1));
        assert!(d.diff.starts_with("--- a\n+++ b\n@@ "), "{}", d.diff);
        assert!(d.diff.contains("\n+ description uplink\n"), "{}", d.diff);
        assert!(
            d.diff.contains("\n- neighbor 10.0.0.0 password <masked>\n+ neighbor 10.0.0.0 password <masked>\n"),
            "{}",
            d.diff
        );
        assert!(!d.diff.contains("old1") && !d.diff.contains("new2"));
        let revealed = unified_diff(&frr, old, new, "a", "b", true);
        assert!(revealed.diff.contains("new2"));
        assert!(unified_diff(&frr, old, old, "a", "b", false).is_empty());
    }
}
