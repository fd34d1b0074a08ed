//! What a PTY session receives, turned into text: terminal escapes removed, line ends normalised,
//! the trailing prompt found, and the echo of the command split off. Pure functions, no I/O.

use super::profile::Profile;
use regex::Regex;
use std::sync::LazyLock;

// CSI (`ESC [ … final`), OSC (`ESC ] … BEL`), charset selection and single-character escapes.
// readline sends `ESC[?2004h`/`ESC[?2004l` around every prompt (bracketed paste).
static ESCAPES: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)|[()][0-9A-Za-z]|[=>78DEHMc])")
        .expect("static regex")
});

/// Text as a person would read it: escapes and backspace-erasures removed, `\r\n` and lone `\r`
/// turned into nothing or `\n` as a terminal shows them, other control characters dropped.
pub fn clean(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let text = ESCAPES.replace_all(&text, "");
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\t' => out.push(c),
            '\x08' => {
                out.pop();
            }
            c if c.is_control() => {} // \r, BEL, NUL
            c => out.push(c),
        }
    }
    out
}

/// A prompt found at the end of the received text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prompt {
    /// The prompt line, e.g. `leaf1(config-if)#`.
    pub line: String,
    pub host: String,
    pub config_mode: bool,
}

/// Recognises the profile's prompt, pinned to the host name learned at login.
#[derive(Debug, Clone)]
pub struct PromptMatcher {
    pattern: Regex,
    config: Regex,
    host: Option<String>,
}

impl PromptMatcher {
    pub fn new(profile: &Profile) -> PromptMatcher {
        PromptMatcher { pattern: profile.prompt.clone(), config: profile.config_prompt.clone(), host: None }
    }

    /// From now on only prompts with this host name count (an output line that ends in `#` or
    /// `>` cannot pass for the prompt).
    pub fn pin(&mut self, host: &str) {
        self.host = Some(host.to_owned());
    }

    pub fn pinned(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// If `text` ends with a prompt: the text before the prompt line, and the prompt.
    pub fn split<'t>(&self, text: &'t str) -> Option<(&'t str, Prompt)> {
        let start = text.rfind('\n').map_or(0, |i| i + 1);
        let last = &text[start..];
        let caps = self.pattern.captures(last.trim_start())?;
        let host = caps.name("host").map_or("", |m| m.as_str());
        if self.host.as_deref().is_some_and(|h| h != host) {
            return None;
        }
        let line = last.trim().to_owned();
        let config_mode = self.config.is_match(last);
        Some((&text[..start], Prompt { line, host: host.to_owned(), config_mode }))
    }
}

/// The output of `command`: `before_prompt` minus the echoed command line and the profile's noise
/// lines (e.g. Junos `[edit]`), with the trailing newline trimmed.
pub fn command_output(before_prompt: &str, command: &str, profile: &Profile) -> String {
    let mut lines = before_prompt.split('\n');
    let mut kept: Vec<&str> = Vec::new();
    if let Some(first) = lines.next() {
        // The echo: what we typed, after any left-over prompt text on the same line.
        if !(first.trim_end().ends_with(command.trim()) || (command.trim().is_empty() && first.trim().is_empty())) {
            kept.push(first);
        }
    }
    kept.extend(lines.filter(|l| !profile.noise.iter().any(|r| r.is_match(l))));
    let mut out = kept.join("\n");
    while out.ends_with('\n') {
        out.pop();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ssh::profile::Profiles;

    #[test]
    fn clean_removes_escapes_and_carriage_returns() {
        let raw = b"\x1b[?2004hleaf1# show ver\r\n\x1b[?2004l\rFRRouting 8.4.4\r\nab\x08c\r\n";
        assert_eq!(clean(raw), "leaf1# show ver\nFRRouting 8.4.4\nac\n");
    }

    #[test]
    fn prompts_are_found_only_at_the_end_and_pinned() {
        let frr = Profiles::builtin().get("frr").unwrap();
        let mut m = PromptMatcher::new(&frr);
        let (before, p) = m.split("hello\nleaf1(config-if)# ").unwrap();
        assert_eq!(
            (before, p.host.as_str(), p.config_mode, p.line.as_str()),
            ("hello\n", "leaf1", true, "leaf1(config-if)#")
        );
        assert!(m.split("leaf1#\nmore output").is_none());
        m.pin("leaf1");
        assert!(m.split("output\nspine2#").is_none(), "another host's prompt in the output is not ours");
        let (_, p) = m.split("x\nleaf1#").unwrap();
        assert!(!p.config_mode);

        let junos = Profiles::builtin().get("junos").unwrap();
        let m = PromptMatcher::new(&junos);
        let (_, p) = m.split("\n[edit]\nnetops@mx1# ").unwrap();
        assert!(p.config_mode && p.host == "mx1");
        let (_, p) = m.split("netops@mx1> ").unwrap();
        assert!(!p.config_mode);
    }

    #[test]
    fn command_output_drops_echo_and_noise() {
        let junos = Profiles::builtin().get("junos").unwrap();
        let out = command_output("set system host-name x\n\n[edit]\n", "set system host-name x", &junos);
        assert_eq!(out, "");
        let frr = Profiles::builtin().get("frr").unwrap();
        let out = command_output("show bogus\n% Unknown command: show bogus\n", "show bogus", &frr);
        assert_eq!(out, "% Unknown command: show bogus");
    }
}
