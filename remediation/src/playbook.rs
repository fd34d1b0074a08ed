//! Playbook files (YAML): read into checked [`Playbook`]s, every error reported with its file and
//! line. A playbook answers failing intent checks on devices of some vendors; for each item of the
//! device it looks at (a BGP peer, an interface, the device itself) a Rhai condition decides whether
//! the item is what broke, and MiniJinja templates write the title, the diagnosis, the CLI that
//! fixes it and the CLI that undoes the fix.
//!
//! ```yaml
//! playbooks:
//!   - name: bgp-neighbor-admin-shutdown
//!     description: A BGP session is down because this device shuts it administratively
//!     when: {checks: [bgp_established], vendors: [cisco-ios], intents: [], scope: {roles: [leaf]}}
//!     for_each: bgp_peer                       # bgp_peer | interface | device
//!     where: admin_status == "stop" && state != "established"
//!     risk: medium                             # low | medium | high
//!     title: "Re-enable BGP neighbor {{ item.peer }} on {{ device.name }}"
//!     diagnosis: "{{ device.name }} shuts its session to {{ item.peer }}"
//!     commands: |
//!       configure terminal
//!       router bgp {{ item.local_as }}
//!       no neighbor {{ item.peer }} shutdown
//!       end
//!     rollback: |
//!       ...
//!     verify: {within: 60s}                    # the intent must pass again within this time
//! ```

use rules::rule::Scope;
use rules::rule::file::{read_entry, read_source, top_level_list};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// One problem in a playbook file.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaybookError {
    pub file: String,
    pub line: u64,
    pub message: String,
}

impl std::fmt::Display for PlaybookError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// What a playbook iterates over on the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    BgpPeer,
    Interface,
    Device,
}

impl ItemKind {
    const ALL: [(&'static str, ItemKind); 3] =
        [("bgp_peer", ItemKind::BgpPeer), ("interface", ItemKind::Interface), ("device", ItemKind::Device)];

    pub fn as_str(self) -> &'static str {
        Self::ALL.iter().find(|(_, k)| *k == self).map_or("?", |(n, _)| n)
    }

    /// The fields an item of this kind has (strings; numbers as decimal text, absent values empty).
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            ItemKind::BgpPeer => {
                &["peer", "remote_as", "local_as", "local_addr", "admin_status", "state", "last_error", "since"]
            }
            ItemKind::Interface => &[
                "name",
                "if_index",
                "descr",
                "alias",
                "admin",
                "oper",
                "neighbor",
                "lost_neighbor",
                "lost_port",
                "lost_at",
                "far_admin",
            ],
            ItemKind::Device => &["name", "role", "site", "vendor", "platform"],
        }
    }
}

/// How risky a change is; the policy decides which risks need an approval.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Risk {
    Low,
    Medium,
    High,
}

impl Risk {
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
        }
    }

    pub fn parse(s: &str) -> Option<Risk> {
        [Risk::Low, Risk::Medium, Risk::High].into_iter().find(|r| r.as_str() == s)
    }
}

/// Which violations a playbook answers.
#[derive(Debug, Clone, Default)]
pub struct When {
    /// Failing check kinds (`bgp_established`, `lldp_neighbors`, …); empty: any failing check.
    pub checks: Vec<String>,
    /// Intent names; empty: any intent.
    pub intents: Vec<String>,
    /// Device vendors (the inventory's `vendor`, which also picks the CLI profile); empty: any.
    pub vendors: Vec<String>,
    pub scope: Scope,
}

/// A checked playbook.
#[derive(Debug, Clone)]
pub struct Playbook {
    pub name: String,
    pub description: String,
    pub when: When,
    pub for_each: ItemKind,
    /// The `where` condition as written, and compiled.
    pub condition: Option<(String, Arc<rhai::AST>)>,
    pub risk: Risk,
    pub verify_within: Duration,
    /// Template sources: title, diagnosis, commands, rollback (compiled into [`Playbooks::templates`]).
    pub title: String,
    pub diagnosis: String,
    pub commands: String,
    pub rollback: String,
    pub file: String,
    pub line: u64,
}

/// The loaded playbooks, with their templates compiled into one MiniJinja environment.
pub struct Playbooks {
    pub list: Vec<Playbook>,
    pub(crate) templates: minijinja::Environment<'static>,
    pub(crate) rhai: rhai::Engine,
}

impl std::fmt::Debug for Playbooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Playbooks").field("list", &self.list).finish_non_exhaustive()
    }
}

/// The template names of playbook `name`'s four texts.
pub(crate) fn template_name(playbook: &str, part: &str) -> String {
    format!("{playbook}/{part}")
}

pub(crate) const PARTS: [&str; 4] = ["title", "diagnosis", "commands", "rollback"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlaybook {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    when: RawWhen,
    for_each: String,
    #[serde(rename = "where")]
    condition: Option<String>,
    risk: String,
    title: String,
    #[serde(default)]
    diagnosis: String,
    commands: String,
    rollback: String,
    verify: RawVerify,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWhen {
    #[serde(default)]
    checks: Vec<String>,
    #[serde(default)]
    intents: Vec<String>,
    #[serde(default)]
    vendors: Vec<String>,
    #[serde(default)]
    scope: Scope,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVerify {
    within: String,
}

/// The shipped playbooks (for the built-in fabric intents).
pub const BUILTIN: &str = include_str!("../builtin/playbooks.yaml");

/// The check kinds a playbook may answer (those the intent engine reports).
pub const CHECK_KINDS: [&str; 9] = [
    "reachable",
    "expr",
    "bgp_established",
    "bgp_peers",
    "ospf_full",
    "ospf_neighbors",
    "lldp_neighbors",
    "interfaces_up",
    "interfaces_down",
];

/// A sample item with every field of its kind set, for checking templates at load time.
pub(crate) fn sample(kind: ItemKind) -> BTreeMap<&'static str, String> {
    kind.fields().iter().map(|f| (*f, "x".to_string())).collect()
}

/// Parses one playbook file into `out` (templates added to `env`). Returns every error.
fn parse_into(
    file: &str,
    text: &str,
    out: &mut Vec<Playbook>,
    names: &mut HashSet<String>,
    env: &mut minijinja::Environment<'static>,
    rhai: &rhai::Engine,
) -> Vec<PlaybookError> {
    let mut errors = Vec::new();
    let err = |errors: &mut Vec<PlaybookError>, line: u64, message: String| {
        errors.push(PlaybookError { file: file.to_string(), line, message })
    };
    let (entries, problems) = top_level_list(text, "playbooks");
    for (line, message) in problems {
        err(&mut errors, line, message);
    }
    for (index, entry) in entries.iter().enumerate() {
        let (label, raw, problems) = read_entry::<RawPlaybook>(entry, index, "playbook");
        let before = errors.len();
        for (line, message) in problems {
            err(&mut errors, line, message);
        }
        let Some(raw) = raw else { continue };
        let line_of = |key: &str| entry.line_of(key);
        if raw.name.is_empty() || !raw.name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
            err(&mut errors, line_of("name"), format!("{label}: a playbook name is letters, digits, '-', '_' and '.'"));
        }
        if !names.insert(raw.name.clone()) {
            err(&mut errors, line_of("name"), format!("{label}: a playbook with this name is already defined"));
        }
        let for_each = ItemKind::ALL.iter().find(|(n, _)| *n == raw.for_each).map(|(_, k)| *k);
        if for_each.is_none() {
            err(
                &mut errors,
                line_of("for_each"),
                format!("{label}: for_each: {:?} is not one of bgp_peer, interface, device", raw.for_each),
            );
        }
        let when_line = entry.entry("when").map_or(entry.line, |(_, v)| v.line);
        for c in &raw.when.checks {
            if !CHECK_KINDS.contains(&c.as_str()) {
                err(
                    &mut errors,
                    when_line,
                    format!("{label}: when.checks: {c:?} is not a check kind ({})", CHECK_KINDS.join(", ")),
                );
            }
        }
        let risk = Risk::parse(&raw.risk);
        if risk.is_none() {
            err(&mut errors, line_of("risk"), format!("{label}: risk: {:?} is not low, medium or high", raw.risk));
        }
        let verify_line = entry.entry("verify").map_or(entry.line, |(_, v)| v.line);
        let within = match humantime::parse_duration(&raw.verify.within) {
            Ok(d) if !d.is_zero() => Some(d),
            Ok(_) => {
                err(&mut errors, verify_line, format!("{label}: verify.within must be longer than 0s"));
                None
            }
            Err(e) => {
                err(&mut errors, verify_line, format!("{label}: verify.within: {:?}: {e}", raw.verify.within));
                None
            }
        };
        if raw.commands.trim().is_empty() {
            err(&mut errors, line_of("commands"), format!("{label}: commands must list at least one CLI line"));
        }
        let (Some(for_each), Some(risk), Some(within)) = (for_each, risk, within) else { continue };
        let condition = match &raw.condition {
            None => None,
            Some(src) => {
                let mut scope = rhai::Scope::new();
                for f in for_each.fields() {
                    scope.push(*f, String::new());
                }
                match rhai.compile_expression_with_scope(&scope, src) {
                    Ok(ast) => Some((src.clone(), Arc::new(ast))),
                    Err(e) => {
                        err(
                            &mut errors,
                            line_of("where"),
                            format!(
                                "{label}: where: {} (column {}); the fields of a {} are {}",
                                e.0,
                                e.1.position().unwrap_or(1),
                                for_each.as_str(),
                                for_each.fields().join(", ")
                            ),
                        );
                        None
                    }
                }
            }
        };
        // Templates: compiled, then rendered once with a sample item, so an unknown field is an
        // error now and not when a violation needs the fix.
        let texts = [&raw.title, &raw.diagnosis, &raw.commands, &raw.rollback];
        for (part, text) in PARTS.iter().zip(texts) {
            let name = template_name(&raw.name, part);
            if let Err(e) = env.add_template_owned(name.clone(), text.clone()) {
                err(&mut errors, line_of(part), format!("{label}: {part}: {}", template_error(&e)));
                continue;
            }
            let ctx = minijinja::context! {
                device => sample(ItemKind::Device),
                item => sample(for_each),
                intent => "x",
            };
            if let Err(e) = env.get_template(&name).and_then(|t| t.render(ctx)) {
                err(
                    &mut errors,
                    line_of(part),
                    format!(
                        "{label}: {part}: {}; `item` ({}) has {}, `device` has {}, and `intent` is the intent's name",
                        template_error(&e),
                        for_each.as_str(),
                        for_each.fields().join(", "),
                        ItemKind::Device.fields().join(", ")
                    ),
                );
            }
        }
        if errors.len() > before {
            continue;
        }
        out.push(Playbook {
            name: raw.name,
            description: raw.description,
            when: When {
                checks: raw.when.checks,
                intents: raw.when.intents,
                vendors: raw.when.vendors,
                scope: raw.when.scope,
            },
            for_each,
            condition,
            risk,
            verify_within: within,
            title: raw.title,
            diagnosis: raw.diagnosis,
            commands: raw.commands,
            rollback: raw.rollback,
            file: file.to_string(),
            line: entry.line,
        });
    }
    errors
}

fn template_error(e: &minijinja::Error) -> String {
    let mut s = e.kind().to_string();
    if let Some(d) = e.detail() {
        s.push_str(": ");
        s.push_str(d);
    }
    if let Some(l) = e.line() {
        s.push_str(&format!(" (template line {l})"));
    }
    s
}

/// A MiniJinja environment that refuses undefined values (a typo is an error, not an empty string).
fn environment() -> minijinja::Environment<'static> {
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(false);
    env
}

/// Parses one playbook file's text (`file` names it in errors).
pub fn parse_playbooks(file: &str, text: &str) -> (Playbooks, Vec<PlaybookError>) {
    let mut env = environment();
    let rhai = rules::rule::expr::engine();
    let mut list = Vec::new();
    let errors = parse_into(file, text, &mut list, &mut HashSet::new(), &mut env, &rhai);
    (Playbooks { list, templates: env, rhai }, errors)
}

/// Loads playbook files; `builtin` names the shipped ones. All errors of all files are returned.
pub fn load(paths: &[String]) -> Result<Playbooks, Vec<PlaybookError>> {
    let mut env = environment();
    let rhai = rules::rule::expr::engine();
    let mut list = Vec::new();
    let mut names = HashSet::new();
    let mut errors = Vec::new();
    for p in paths {
        match read_source(p, BUILTIN) {
            Ok((name, text)) => errors.extend(parse_into(&name, &text, &mut list, &mut names, &mut env, &rhai)),
            Err(message) => errors.push(PlaybookError { file: p.clone(), line: 0, message }),
        }
    }
    if errors.is_empty() { Ok(Playbooks { list, templates: env, rhai }) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_playbooks_load() {
        let p = load(&["builtin".to_string()]).expect("built-in playbooks");
        let names: Vec<&str> = p.list.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["bgp-neighbor-admin-shutdown", "interface-admin-down", "link-down-bounce"]);
        assert!(p.list.iter().all(|p| p.condition.is_some()));
    }

    #[test]
    fn errors_name_file_line_and_what() {
        let text = "playbooks:
  - name: bad
    for_each: peer
    risk: extreme
    title: x
    commands: x
    rollback: x
    verify: {within: soon}
  - name: typo
    when: {checks: [bgp_up]}
    for_each: interface
    where: adminn == \"down\"
    risk: low
    title: \"{{ item.nmae }}\"
    commands: \"no shutdown\"
    rollback: shutdown
    verify: {within: 30s}
";
        let (p, errors) = parse_playbooks("pb.yaml", text);
        assert!(p.list.is_empty());
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        let has = |needle: &str| text.iter().any(|e| e.contains(needle));
        assert!(has("pb.yaml:3: playbook \"bad\": for_each: \"peer\" is not one of"), "{text:#?}");
        assert!(has("pb.yaml:4: playbook \"bad\": risk: \"extreme\""), "{text:#?}");
        assert!(has("pb.yaml:8: playbook \"bad\": verify.within: \"soon\""), "{text:#?}");
        assert!(has("pb.yaml:10: playbook \"typo\": when.checks: \"bgp_up\" is not a check kind"), "{text:#?}");
        assert!(has("pb.yaml:12: playbook \"typo\": where:"), "{text:#?}");
        assert!(has("pb.yaml:14: playbook \"typo\": title: undefined value"), "{text:#?}");
    }

    #[test]
    fn unknown_keys_and_duplicates_are_errors() {
        let one = "  - name: a\n    for_each: device\n    risk: low\n    title: t\n    commands: c\n    rollback: r\n    verify: {within: 1m}\n";
        let text = format!(
            "playbooks:\n{one}{one}  - name: b\n    for_each: device\n    risk: low\n    title: t\n    commands: c\n    rollback: r\n    verify: {{within: 1m}}\n    auto: yes\n"
        );
        let (p, errors) = parse_playbooks("f", &text);
        assert_eq!(p.list.len(), 1, "{errors:?}");
        assert!(errors.iter().any(|e| e.line == 9 && e.message.contains("already defined")), "{errors:?}");
        assert!(errors.iter().any(|e| e.message.contains("auto")), "{errors:?}");
    }
}
