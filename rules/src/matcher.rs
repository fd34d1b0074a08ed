//! Label matchers in Alertmanager's syntax (`name="value"`, `!=`, `=~`, `!~`), used by rule
//! scopes, silences, inhibition rules and routes. Regular expressions are anchored, as in
//! Alertmanager.

use crate::alert::Labels;
use regex::Regex;

#[derive(Debug, Clone)]
pub enum Op {
    Eq(String),
    Ne(String),
    Re(Regex),
    NotRe(Regex),
}

/// One matcher; a missing label matches as the empty string (Alertmanager semantics).
#[derive(Debug, Clone)]
pub struct Matcher {
    pub name: String,
    pub op: Op,
    text: String,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl Matcher {
    pub fn equal(name: &str, value: &str) -> Matcher {
        Matcher { name: name.into(), op: Op::Eq(value.into()), text: format!("{name}={value:?}") }
    }

    pub fn parse(s: &str) -> Result<Matcher, String> {
        let s = s.trim();
        let at = s.find(['=', '!']).ok_or_else(|| format!("matcher {s:?}: expected name=\"value\", !=, =~ or !~"))?;
        let name = s[..at].trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("matcher {s:?}: label name {name:?} must be letters, digits and _"));
        }
        let rest = &s[at..];
        let (op, value) = if let Some(v) = rest.strip_prefix("=~") {
            ("=~", v)
        } else if let Some(v) = rest.strip_prefix("!~") {
            ("!~", v)
        } else if let Some(v) = rest.strip_prefix("!=") {
            ("!=", v)
        } else if let Some(v) = rest.strip_prefix('=') {
            ("=", v)
        } else {
            return Err(format!("matcher {s:?}: expected =, !=, =~ or !~ after {name:?}"));
        };
        let value = value.trim();
        let value = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
            Some(v) => v.replace("\\\"", "\"").replace("\\\\", "\\"),
            None => value.to_string(),
        };
        let anchored = |v: &str| Regex::new(&format!("^(?:{v})$")).map_err(|e| format!("matcher {s:?}: {e}"));
        let op = match op {
            "=" => Op::Eq(value),
            "!=" => Op::Ne(value),
            "=~" => Op::Re(anchored(&value)?),
            _ => Op::NotRe(anchored(&value)?),
        };
        Ok(Matcher { name: name.into(), op, text: s.to_string() })
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        let v = labels.get(&self.name).map(String::as_str).unwrap_or("");
        match &self.op {
            Op::Eq(x) => v == x,
            Op::Ne(x) => v != x,
            Op::Re(r) => r.is_match(v),
            Op::NotRe(r) => !r.is_match(v),
        }
    }
}

/// All matchers match.
pub fn all_match(matchers: &[Matcher], labels: &Labels) -> bool {
    matchers.iter().all(|m| m.matches(labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers_parse_and_match_like_alertmanager() {
        let mut l = Labels::new();
        l.insert("device".into(), "leaf1".into());
        l.insert("severity".into(), "critical".into());
        let ok = |s: &str| Matcher::parse(s).unwrap().matches(&l);
        assert!(ok(r#"device="leaf1""#));
        assert!(ok("device=leaf1"));
        assert!(ok(r#"severity=~"critical|major""#));
        assert!(!ok(r#"severity=~"crit""#), "anchored");
        assert!(ok(r#"site!~".+""#), "missing label is empty");
        assert!(ok(r#"device!="leaf2""#));
        assert!(Matcher::parse("device").is_err());
        assert!(Matcher::parse(r#"a=~"(""#).is_err());
        assert!(Matcher::parse(r#"bad-name="x""#).is_err());
    }
}
