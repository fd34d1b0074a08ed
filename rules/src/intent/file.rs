//! Intent files (YAML): read into checked [`Intent`]s, every error reported with its file and line.
//!
//! ```yaml
//! intents:
//!   - name: leaf-bgp-redundancy
//!     description: Every leaf has at least two Established BGP sessions
//!     scope: {roles: [leaf]}
//!     require:
//!       bgp_established: {min: 2}
//!       lldp_neighbors: {role: spine, min: all}   # cabled to every spine of its site
//!       interfaces_down: {max: 0, name: "^Ethernet"}
//!       expr: bgp_established >= 2 || ospf_full >= 1
//!       reachable: true
//! ```

use crate::rule::Scope;
use crate::rule::expr;
use collector::inventory::node::{self, Node, NodeKind};
use regex::Regex;
use serde::Deserialize;
use std::collections::HashSet;
use std::sync::Arc;

/// One problem in an intent file.
#[derive(Debug, Clone, PartialEq)]
pub struct IntentError {
    pub file: String,
    pub line: u64,
    pub message: String,
}

impl std::fmt::Display for IntentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}: {}", self.file, self.line, self.message)
    }
}

/// What a counting check counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountFact {
    /// BGP sessions in Established.
    BgpEstablished,
    /// BGP sessions configured (any state).
    BgpPeers,
    OspfFull,
    OspfNeighbors,
    /// Distinct LLDP/CDP neighbour devices (optionally of one role).
    LldpNeighbors,
    /// Interfaces oper up.
    InterfacesUp,
    /// Interfaces admin up but oper not up.
    InterfacesDown,
}

impl CountFact {
    const ALL: [(&'static str, CountFact); 7] = [
        ("bgp_established", CountFact::BgpEstablished),
        ("bgp_peers", CountFact::BgpPeers),
        ("ospf_full", CountFact::OspfFull),
        ("ospf_neighbors", CountFact::OspfNeighbors),
        ("lldp_neighbors", CountFact::LldpNeighbors),
        ("interfaces_up", CountFact::InterfacesUp),
        ("interfaces_down", CountFact::InterfacesDown),
    ];

    pub fn as_str(self) -> &'static str {
        Self::ALL.iter().find(|(_, f)| *f == self).map_or("?", |(n, _)| n)
    }
}

/// The names an `expr` check can use (counts; `()` when not polled yet), plus `reachable`.
pub const EXPR_FACTS: [&str; 8] = [
    "interfaces",
    "interfaces_up",
    "interfaces_down",
    "bgp_peers",
    "bgp_established",
    "ospf_neighbors",
    "ospf_full",
    "lldp_neighbors",
];

#[derive(Debug, Clone, PartialEq)]
pub enum Bound {
    N(u64),
    /// Every inventory device of the check's role in the device's site.
    All,
}

#[derive(Debug, Clone)]
pub enum Check {
    /// The device answers its polls.
    Reachable,
    Count {
        fact: CountFact,
        role: Option<String>,
        name: Option<Regex>,
        min: Option<Bound>,
        max: Option<u64>,
    },
    /// A Rhai boolean expression over [`EXPR_FACTS`] and `reachable`.
    Expr {
        source: String,
        ast: Arc<rhai::AST>,
    },
}

impl std::fmt::Display for Check {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Check::Reachable => f.write_str("reachable"),
            Check::Count { fact, role, name, .. } => {
                f.write_str(fact.as_str())?;
                if let Some(r) = role {
                    write!(f, " role={r}")?;
                }
                if let Some(n) = name {
                    write!(f, " name={}", n.as_str())?;
                }
                Ok(())
            }
            Check::Expr { .. } => f.write_str("expr"),
        }
    }
}

/// A checked intent.
#[derive(Debug, Clone)]
pub struct Intent {
    pub name: String,
    pub description: String,
    pub scope: Scope,
    pub checks: Vec<Check>,
    pub file: String,
    pub line: u64,
}

impl Intent {
    /// The checks as written, for the API (`bgp_established >= 2`, `lldp_neighbors role=spine = all`).
    pub fn requirements(&self) -> Vec<String> {
        self.checks
            .iter()
            .map(|c| match c {
                Check::Reachable => "reachable".to_string(),
                Check::Count { min, max, .. } => {
                    let mut s = c.to_string();
                    match min {
                        Some(Bound::All) => s.push_str(" >= all"),
                        Some(Bound::N(n)) => s.push_str(&format!(" >= {n}")),
                        None => {}
                    }
                    if let Some(m) = max {
                        s.push_str(&format!(" <= {m}"));
                    }
                    s
                }
                Check::Expr { source, .. } => source.clone(),
            })
            .collect()
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntent {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    scope: Scope,
    #[allow(dead_code)]
    require: serde::de::IgnoredAny,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCount {
    min: Option<String>,
    max: Option<String>,
    role: Option<String>,
    name: Option<String>,
}

/// The shipped intents: a spine-leaf fabric's basic redundancy (they apply only to devices whose
/// role is `leaf` or `spine`).
pub const BUILTIN: &str = include_str!("../../builtin/intents.yaml");

/// Parses one intent file. Returns the intents that compiled and every error.
pub fn parse_intents(file: &str, text: &str) -> (Vec<Intent>, Vec<IntentError>) {
    let mut errors = Vec::new();
    let err = |errors: &mut Vec<IntentError>, line: u64, message: String| {
        errors.push(IntentError { file: file.to_string(), line, message })
    };
    let (entries, problems) = crate::rule::file::top_level_list(text, "intents");
    for (line, message) in problems {
        err(&mut errors, line, message);
    }
    let rhai = expr::engine();
    let mut names = HashSet::new();
    let mut intents = Vec::new();
    for (index, entry) in entries.iter().enumerate() {
        let (label, raw, problems) = crate::rule::file::read_entry::<RawIntent>(entry, index, "intent");
        // Counted from before the entry's own problems: an entry with an unknown key is not loaded.
        let before = errors.len();
        for (line, message) in problems {
            err(&mut errors, line, message);
        }
        let Some(raw) = raw else { continue };
        if raw.name.is_empty() || !raw.name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')) {
            err(
                &mut errors,
                entry.line_of("name"),
                format!("{label}: an intent name is letters, digits, '-', '_' and '.'"),
            );
        }
        if !names.insert(raw.name.clone()) {
            err(&mut errors, entry.line_of("name"), format!("{label}: an intent with this name is already defined"));
        }
        let mut checks = Vec::new();
        match entry.entry("require").map(|(_, v)| v) {
            Some(Node { kind: NodeKind::Map(items), .. }) if !items.is_empty() => {
                for (key, value) in items {
                    let k = key.as_str().unwrap_or("?");
                    match parse_check(k, value, &rhai) {
                        Ok(c) => checks.push(c),
                        Err((line, m)) => err(&mut errors, line, format!("{label}: require.{k}: {m}")),
                    }
                }
            }
            _ => err(
                &mut errors,
                entry.line_of("require"),
                format!("{label}: `require` must map at least one check (reachable, expr, or a count: {})", {
                    CountFact::ALL.map(|(n, _)| n).join(", ")
                }),
            ),
        }
        if errors.len() > before {
            continue;
        }
        intents.push(Intent {
            name: raw.name,
            description: raw.description,
            scope: raw.scope,
            checks,
            file: file.to_string(),
            line: entry.line,
        });
    }
    (intents, errors)
}

fn parse_check(key: &str, value: &Node, rhai: &rhai::Engine) -> Result<Check, (u64, String)> {
    let scalar = || {
        value.as_str().map(str::to_owned).ok_or((value.line, format!("expected a value, found {}", value.kind_name())))
    };
    match key {
        "reachable" => match scalar()?.as_str() {
            "true" => Ok(Check::Reachable),
            other => Err((value.line, format!("only `reachable: true` is meaningful, found {other:?}"))),
        },
        "expr" => {
            let src = scalar()?;
            // Variables, not constants: constants would be folded into the AST at compile time.
            let mut scope = rhai::Scope::new();
            scope.push("reachable", true);
            for f in EXPR_FACTS {
                scope.push(f, 0_i64);
            }
            let ast = rhai.compile_expression_with_scope(&scope, &src).map_err(|e| {
                (
                    value.line,
                    format!(
                        "{} (column {}); names: reachable, {}",
                        e.0,
                        e.1.position().unwrap_or(1),
                        EXPR_FACTS.join(", ")
                    ),
                )
            })?;
            Ok(Check::Expr { source: src, ast: Arc::new(ast) })
        }
        _ => {
            let Some(fact) = CountFact::ALL.iter().find(|(n, _)| *n == key).map(|(_, f)| *f) else {
                return Err((
                    value.line,
                    format!(
                        "unknown check (expected reachable, expr, or one of {})",
                        CountFact::ALL.map(|(n, _)| n).join(", ")
                    ),
                ));
            };
            let raw: RawCount = node::from_node(value).map_err(|e| (e.line.unwrap_or(value.line), e.message))?;
            let number = |what: &str, s: &str| {
                s.parse::<u64>().map_err(|_| (value.line, format!("{what}: {s:?} is not a whole number")))
            };
            let min = match raw.min.as_deref() {
                None => None,
                Some("all") if raw.role.is_some() => Some(Bound::All),
                Some("all") => {
                    return Err((value.line, "min: all counts the devices of a role: set `role` too".into()));
                }
                Some(s) => Some(Bound::N(number("min", s)?)),
            };
            let max = raw.max.as_deref().map(|s| number("max", s)).transpose()?;
            if min.is_none() && max.is_none() {
                return Err((value.line, "set `min`, `max` or both".into()));
            }
            if raw.role.is_some() && fact != CountFact::LldpNeighbors {
                return Err((value.line, "`role` applies to lldp_neighbors only".into()));
            }
            let name = match &raw.name {
                None => None,
                Some(_) if !matches!(fact, CountFact::InterfacesUp | CountFact::InterfacesDown) => {
                    return Err((
                        value.line,
                        "`name` (a regex on interface names) applies to interfaces_* only".into(),
                    ));
                }
                Some(p) => Some(Regex::new(p).map_err(|e| (value.line, format!("name: {e}")))?),
            };
            Ok(Check::Count { fact, role: raw.role, name, min, max })
        }
    }
}

/// Loads intent files; `builtin` names the shipped ones. All errors of all files are returned.
pub fn load(paths: &[String]) -> Result<Vec<Intent>, Vec<IntentError>> {
    let mut intents: Vec<Intent> = Vec::new();
    let mut errors = Vec::new();
    for p in paths {
        let (name, text) = match crate::rule::file::read_source(p, BUILTIN) {
            Ok(source) => source,
            Err(message) => {
                errors.push(IntentError { file: p.clone(), line: 0, message });
                continue;
            }
        };
        let (list, errs) = parse_intents(&name, &text);
        errors.extend(errs);
        for i in list {
            if let Some(other) = intents.iter().find(|o| o.name == i.name) {
                errors.push(IntentError {
                    file: name.clone(),
                    line: i.line,
                    message: format!("intent {:?} is already defined at {}:{}", i.name, other.file, other.line),
                });
            } else {
                intents.push(i);
            }
        }
    }
    if errors.is_empty() { Ok(intents) } else { Err(errors) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_intents_compile() {
        let (intents, errors) = parse_intents("builtin", BUILTIN);
        assert!(errors.is_empty(), "{errors:?}");
        assert!(intents.len() >= 3);
    }

    #[test]
    fn every_mistake_is_reported_with_its_line() {
        let yaml = r#"intents:
  - name: ok
    require: {bgp_established: {min: 2}}
  - name: bad name
    require: {bgp_established: {min: two}}
  - name: ok
    require:
      lldp_neighbors: {min: all}
      interfaces_down: {max: 0, name: "(["}
      wat: {min: 1}
      expr: bgp_established >=
  - name: empty
    colour: red
"#;
        let (intents, errors) = parse_intents("f.yaml", yaml);
        assert_eq!(intents.len(), 1);
        let lines: Vec<(u64, &str)> = errors.iter().map(|e| (e.line, e.message.as_str())).collect();
        let has = |line: u64, text: &str| lines.iter().any(|(l, m)| *l == line && m.contains(text));
        assert!(has(4, "an intent name is"), "{lines:#?}");
        assert!(has(5, "\"two\" is not a whole number"), "{lines:#?}");
        assert!(has(6, "already defined"), "{lines:#?}");
        assert!(has(8, "set `role` too"), "{lines:#?}");
        assert!(has(9, "name: regex parse error"), "{lines:#?}");
        assert!(has(10, "unknown check"), "{lines:#?}");
        assert!(has(11, "require.expr"), "{lines:#?}");
        assert!(lines.iter().any(|(l, m)| (12..=13).contains(l) && m.contains("colour")), "{lines:#?}");
        assert!(errors.iter().all(|e| e.to_string().starts_with("f.yaml:")));
    }
}
