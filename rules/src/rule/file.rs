//! Rule files: YAML read into raw structs (`deny_unknown_fields`), then compiled into checked
//! [`Rule`]s. Every error is collected with its file and line, so `netwarden rules check` reports
//! them all at once.

use super::expr::{self, Condition};
use crate::alert::{Labels, Severity};
use crate::matcher::Matcher;
use crate::source::{DeviceMeta, SourceKind};
use collector::inventory::node::{self, Node, NodeKind};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

/// One problem in a rule file.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleError {
    pub file: String,
    pub line: u64,
    pub message: String,
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// Which devices a rule applies to: each list that is set must contain the device's value
/// (tags: any of them); unset lists do not restrict.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct Scope {
    #[serde(default)]
    pub sites: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub devices: Vec<String>,
}

impl Scope {
    pub fn includes(&self, d: &DeviceMeta) -> bool {
        let has = |list: &[String], v: &Option<String>| list.is_empty() || v.as_ref().is_some_and(|v| list.contains(v));
        has(&self.sites, &d.site)
            && has(&self.roles, &d.role)
            && (self.devices.is_empty() || self.devices.contains(&d.name))
            && (self.tags.is_empty() || d.tags.iter().any(|t| self.tags.contains(t)))
    }
}

/// Flap detection: more than `changes` state changes within `window` make an alert flapping.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FlapPolicy {
    pub changes: u32,
    pub window: Duration,
}

impl Default for FlapPolicy {
    fn default() -> Self {
        FlapPolicy { changes: 4, window: Duration::from_secs(600) }
    }
}

/// A checked rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub source: SourceKind,
    pub scope: Scope,
    pub matchers: Vec<Matcher>,
    pub when: Condition,
    pub resolve_when: Option<Condition>,
    pub pending_for: Duration,
    pub keep_firing_for: Duration,
    pub severity: Severity,
    pub labels: Labels,
    /// Annotation templates (minijinja), checked at load.
    pub annotations: BTreeMap<String, String>,
    pub flap: FlapPolicy,
    pub file: String,
    pub line: u64,
}

impl Rule {
    /// The longest history window any of its conditions needs, per field.
    pub fn history_needs(&self) -> impl Iterator<Item = (usize, Duration)> + '_ {
        self.when.history.iter().chain(self.resolve_when.iter().flat_map(|c| c.history.iter())).copied()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    source: String,
    #[serde(default)]
    scope: Scope,
    #[serde(default, rename = "match")]
    matchers: Vec<String>,
    when: String,
    resolve_when: Option<String>,
    #[serde(rename = "for")]
    pending_for: Option<String>,
    keep_firing_for: Option<String>,
    severity: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    flap: Option<RawFlap>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFlap {
    changes: String,
    window: String,
}

/// Labels a rule may not set: the engine owns them.
const RESERVED_LABELS: [&str; 2] = ["alertname", "severity"];

/// The entries of a YAML document whose one top-level key is the list `key` (`rules:`,
/// `intents:`), and every problem with its line. An empty document has no entries.
pub fn top_level_list(text: &str, key: &str) -> (Vec<Node>, Vec<(u64, String)>) {
    let mut problems = Vec::new();
    let root = match node::parse(text) {
        Ok(r) => r,
        Err(e) => return (Vec::new(), vec![(e.line.unwrap_or(1), format!("invalid YAML: {}", e.message))]),
    };
    let expected = || (root.line, format!("expected a mapping with a `{key}:` list"));
    let NodeKind::Map(entries) = &root.kind else {
        return (Vec::new(), if matches!(root.kind, NodeKind::Null) { problems } else { vec![expected()] });
    };
    for (k, _) in entries.iter().filter(|(k, _)| k.as_str() != Some(key)) {
        let k = k.as_str().unwrap_or("?");
        problems.push((root.line_of(k), format!("unknown top-level key `{k}`, expected `{key}`")));
    }
    match root.entry(key).map(|(_, v)| v) {
        Some(Node { kind: NodeKind::Seq(list), .. }) => (list.clone(), problems),
        Some(Node { kind: NodeKind::Null, .. }) => (Vec::new(), problems),
        Some(other) => {
            problems.push((other.line, format!("`{key}` must be a list, found {}", other.kind_name())));
            (Vec::new(), problems)
        }
        None => {
            problems.push(expected());
            (Vec::new(), problems)
        }
    }
}

/// Reads one list entry into `T`: its label for messages (`rule "X"`, or `rule #3` without a
/// name), the value when it deserialized, and every problem with its line.
pub fn read_entry<T: serde::de::DeserializeOwned>(
    entry: &Node,
    index: usize,
    noun: &str,
) -> (String, Option<T>, Vec<(u64, String)>) {
    let label = entry
        .entry("name")
        .and_then(|(_, v)| v.as_str())
        .map(|n| format!("{noun} {n:?}"))
        .unwrap_or_else(|| format!("{noun} #{}", index + 1));
    let (raw, errs) = node::from_node_collecting::<T>(entry);
    let problems = errs
        .iter()
        .map(|e| {
            let path = e.display_path();
            let at = if path.is_empty() { String::new() } else { format!("{path}: ") };
            (e.line.unwrap_or(entry.line), format!("{label}: {at}{}", e.message))
        })
        .collect();
    (label, raw, problems)
}

/// Parses and compiles one rule file. `file` names it in errors. Returns the rules that compiled
/// and every error (a file with errors should not be loaded; `check` callers decide).
pub fn parse_rules(file: &str, text: &str) -> (Vec<Rule>, Vec<RuleError>) {
    let mut errors = Vec::new();
    let err = |errors: &mut Vec<RuleError>, line: u64, message: String| {
        errors.push(RuleError { file: file.to_string(), line, message })
    };
    let (entries, problems) = top_level_list(text, "rules");
    for (line, message) in problems {
        err(&mut errors, line, message);
    }
    let engine = expr::engine();
    let templates = minijinja::Environment::new();
    let mut names = HashSet::new();
    let mut rules = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let (label, raw, problems) = read_entry::<RawRule>(entry, index, "rule");
        for (line, message) in problems {
            err(&mut errors, line, message);
        }
        let Some(raw) = raw else { continue };
        let line_of = |key: &str| entry.line_of(key);
        let before = errors.len();
        if raw.name.is_empty() || !raw.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            err(
                &mut errors,
                line_of("name"),
                format!("{label}: a rule name is letters, digits and _ (it becomes the alertname label)"),
            );
        }
        if !names.insert(raw.name.clone()) {
            err(
                &mut errors,
                line_of("name"),
                format!("{label}: a rule with this name is already defined in this file"),
            );
        }
        let source = match raw.source.parse::<SourceKind>() {
            Ok(s) => Some(s),
            Err(e) => {
                err(&mut errors, line_of("source"), format!("{label}: source: {e}"));
                None
            }
        };
        let severity = raw
            .severity
            .parse::<Severity>()
            .map_err(|e| err(&mut errors, line_of("severity"), format!("{label}: {e}")))
            .ok();
        let mut duration = |key: &str, v: &Option<String>| -> Duration {
            match v {
                None => Duration::ZERO,
                Some(v) => humantime::parse_duration(v).unwrap_or_else(|e| {
                    err(
                        &mut errors,
                        line_of(key),
                        format!("{label}: {key}: {v:?} is not a duration ({e}); write e.g. 30s, 5m, 1h"),
                    );
                    Duration::ZERO
                }),
            }
        };
        let pending_for = duration("for", &raw.pending_for);
        let keep_firing_for = duration("keep_firing_for", &raw.keep_firing_for);
        let flap = match &raw.flap {
            None => FlapPolicy::default(),
            Some(f) => {
                let window = humantime::parse_duration(&f.window).unwrap_or_else(|e| {
                    err(&mut errors, line_of("flap"), format!("{label}: flap.window: {e}"));
                    Duration::from_secs(600)
                });
                let changes = match f.changes.parse::<u32>() {
                    Ok(n) if n >= 2 => n,
                    _ => {
                        err(
                            &mut errors,
                            line_of("flap"),
                            format!("{label}: flap.changes must be a whole number, at least 2"),
                        );
                        4
                    }
                };
                FlapPolicy { changes, window }
            }
        };
        let mut matchers = Vec::new();
        for m in &raw.matchers {
            match Matcher::parse(m) {
                Ok(m) => matchers.push(m),
                Err(e) => err(&mut errors, line_of("match"), format!("{label}: {e}")),
            }
        }
        for k in raw.labels.keys() {
            if RESERVED_LABELS.contains(&k.as_str()) {
                err(&mut errors, line_of("labels"), format!("{label}: labels: {k:?} is set by the engine"));
            }
        }
        for (k, t) in &raw.annotations {
            if let Err(e) = templates.template_from_str(t) {
                err(&mut errors, line_of("annotations"), format!("{label}: annotations.{k}: template error: {e}"));
            }
        }
        let mut compile = |key: &str, src: &str, kind: SourceKind| match expr::compile(&engine, kind, src) {
            Ok(c) => Some(c),
            Err(e) => {
                // Block scalars (`|`) start on the line after the key.
                let base = line_of(key) + u64::from(src.contains('\n') && !src.starts_with('\n'));
                err(
                    &mut errors,
                    base + e.line as u64 - 1,
                    format!("{label}: {key}: {} (column {})", e.message, e.column),
                );
                None
            }
        };
        let (when, resolve_when) = match source {
            Some(kind) => (
                compile("when", &raw.when, kind),
                raw.resolve_when.as_deref().map(|s| compile("resolve_when", s, kind)),
            ),
            None => (None, None),
        };
        if errors.len() > before {
            continue;
        }
        let (Some(source), Some(severity), Some(when)) = (source, severity, when) else { continue };
        rules.push(Rule {
            name: raw.name,
            source,
            scope: raw.scope,
            matchers,
            when,
            resolve_when: resolve_when.flatten(),
            pending_for,
            keep_firing_for,
            severity,
            labels: raw.labels,
            annotations: raw.annotations,
            flap,
            file: file.to_string(),
            line: entry.line,
        });
    }
    (rules, errors)
}

/// The rule pack that ships with netwarden.
pub const BUILTIN: &str = include_str!("../../builtin/rules.yaml");

/// The name and text of a rule or intent file: `builtin` is the shipped text, anything else a path.
pub fn read_source(path: &str, builtin: &str) -> Result<(String, String), String> {
    if path == "builtin" {
        return Ok(("builtin".to_string(), builtin.to_string()));
    }
    std::fs::read_to_string(path).map(|t| (path.to_string(), t)).map_err(|e| format!("cannot read: {e}"))
}

/// Loads rule files; `builtin` names the shipped pack. All errors of all files are returned.
pub fn load(paths: &[String]) -> Result<Vec<Rule>, Vec<RuleError>> {
    let mut rules = Vec::new();
    let mut errors = Vec::new();
    let mut names: BTreeMap<String, String> = BTreeMap::new();
    for p in paths {
        let (name, text) = match read_source(p, BUILTIN) {
            Ok(source) => source,
            Err(message) => {
                errors.push(RuleError { file: p.clone(), line: 0, message });
                continue;
            }
        };
        let (rs, es) = parse_rules(&name, &text);
        errors.extend(es);
        for r in rs {
            if let Some(other) = names.insert(r.name.clone(), format!("{}:{}", r.file, r.line)) {
                errors.push(RuleError {
                    file: r.file.clone(),
                    line: r.line,
                    message: format!("rule {:?} is also defined at {other}", r.name),
                });
            }
            rules.push(r);
        }
    }
    if errors.is_empty() { Ok(rules) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_pack_compiles() {
        let (rules, errors) = parse_rules("builtin", BUILTIN);
        assert!(errors.is_empty(), "{errors:#?}");
        assert!(rules.len() >= 10, "{}", rules.len());
    }

    #[test]
    fn every_error_is_reported_with_its_line() {
        let text = r#"rules:
  - name: A
    source: interface
    when: oper_status == "down"
    severity: major
  - name: B
    source: interfaces
    when: 'x == 1'
    severity: fatal
  - name: A
    source: device
    when: status ==
    for: soon
    severity: info
    labels: {alertname: x}
    annotations: {summary: "{{ device "}
    colour: red
"#;
        let (rules, errors) = parse_rules("r.yaml", text);
        assert_eq!(rules.len(), 1);
        let shown: Vec<String> = errors.iter().map(ToString::to_string).collect();
        let has = |needle: &str| assert!(shown.iter().any(|e| e.contains(needle)), "{needle} not in {shown:#?}");
        has("r.yaml:7: rule \"B\": source: unknown source \"interfaces\"");
        has("r.yaml:9: rule \"B\": unknown severity \"fatal\"");
        has("r.yaml:17: rule \"A\": unknown field `colour`");
        has("r.yaml:10: rule \"A\": a rule with this name is already defined");
        has("r.yaml:13: rule \"A\": for: \"soon\" is not a duration");
        has("r.yaml:15: rule \"A\": labels: \"alertname\" is set by the engine");
        has("r.yaml:16: rule \"A\": annotations.summary: template error");
        has("r.yaml:12: rule \"A\": when:");
    }

    #[test]
    fn scopes_restrict_by_site_role_tag_and_name() {
        let d = DeviceMeta {
            id: 1,
            name: "leaf1".into(),
            site: Some("par1".into()),
            role: Some("leaf".into()),
            vendor: None,
            tags: vec!["prod".into()],
        };
        assert!(Scope::default().includes(&d));
        assert!(
            Scope { roles: vec!["leaf".into()], tags: vec!["prod".into(), "lab".into()], ..Default::default() }
                .includes(&d)
        );
        assert!(!Scope { sites: vec!["ams1".into()], ..Default::default() }.includes(&d));
        assert!(!Scope { tags: vec!["lab".into()], ..Default::default() }.includes(&d));
    }
}
