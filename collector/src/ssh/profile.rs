//! Platform profiles: how to drive one kind of device's CLI, as data (`collector/profiles/*.toml`).
//!
//! A profile says how to turn paging off, what the prompt looks like (and which prompts mean
//! configuration mode), how to enter, commit, leave and abort configuration mode, how to show and
//! save the running configuration, which output lines mean a command was rejected, which lines of
//! a configuration are volatile (ignored for hashes and diffs) or secret (masked when shown), and
//! which show commands and parsers give the CLI facts. The session code has no platform branches:
//! adding a platform means adding a file (built in: listed in [`BUILTIN`]; or any `*.toml` in a
//! directory given to [`Profiles::load_dir`]).
//!
//! The file format, by example (every key is checked; unknown keys are errors):
//!
//! ```toml
//! name = "frr"                       # unique; also what `platform` can say
//! description = "FRRouting (vtysh)"
//! platforms = ["frr", "frrouting"]   # inventory platform (else vendor) values that select it
//! newline = "\n"                     # what Enter sends (default "\n")
//! syntax = "indent"                  # "indent" | "braces": how nesting is written (drift)
//!
//! [prompt]
//! pattern = '^(?P<host>[\w.-]+)(?:\((?P<mode>[\w.-]+)\))?[#>] ?$'  # last line; `host` is pinned
//! config = '\(config[^)]*\)# ?$'     # a prompt in configuration mode
//! noise = ['^\[edit.*\]$']           # status lines removed from outputs (optional)
//!
//! [commands]
//! paging_off = ["terminal length 0"] # sent once after login
//! show_running_config = "show running-config"
//! save = ["write memory"]            # empty: nothing to save (e.g. Junos commit saves)
//!
//! [config]                           # {session} = a name unique to the change
//! enter = ["configure terminal"]
//! commit = []                        # after the lines; empty when lines apply at once
//! leave = ["end"]                    # sent if still in configuration mode after commit
//! abort = ["end"]                    # after a rejected line
//!
//! [config.confirmed]                 # optional: commit that rolls back unless confirmed
//! enter = ["configure session {session}"]
//! commit = ["commit timer {timer}"]  # {timer} = hh:mm:ss, {minutes} = whole minutes
//! confirm = ["configure session {session} commit"]
//!
//! [errors]
//! patterns = ['^% ']                 # an output line matching one = the command was rejected
//! ignore = ['^% Warning:']           # ... unless it also matches one of these
//!
//! [snapshot]
//! volatile = ['^! Last configuration change at ']   # dropped before hashing and diffing
//! secrets = ['^\s*password (?P<secret>\S+)']        # group `secret` is masked when shown
//!
//! [facts]                            # fact = { command, parser } (parsers in ssh::facts)
//! bgp_summary = { command = "show ip bgp summary", parser = "frr-bgp-summary" }
//! ```

use regex::Regex;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The profiles compiled into the binary: (file name, text).
pub const BUILTIN: &[(&str, &str)] = &[
    ("frr.toml", include_str!("../../profiles/frr.toml")),
    ("cisco-ios.toml", include_str!("../../profiles/cisco-ios.toml")),
    ("arista-eos.toml", include_str!("../../profiles/arista-eos.toml")),
    ("junos.toml", include_str!("../../profiles/junos.toml")),
    ("netwarden-sim.toml", include_str!("../../profiles/netwarden-sim.toml")),
];

/// What a profile's configuration nesting looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfigSyntax {
    /// Children are indented under their parent (IOS, EOS, FRR).
    Indent,
    /// Children are inside `{ … }` blocks and statements end in `;` (Junos).
    Braces,
}

/// A compiled, validated profile.
#[derive(Debug)]
pub struct Profile {
    pub name: String,
    pub description: String,
    pub platforms: Vec<String>,
    pub newline: String,
    pub syntax: ConfigSyntax,
    pub prompt: Regex,
    pub config_prompt: Regex,
    pub noise: Vec<Regex>,
    pub paging_off: Vec<String>,
    pub show_running_config: String,
    pub save: Vec<String>,
    pub config: ConfigCommands,
    pub confirmed: Option<ConfirmedCommands>,
    pub error_patterns: Vec<Regex>,
    pub error_ignore: Vec<Regex>,
    pub volatile: Vec<Regex>,
    pub secrets: Vec<Regex>,
    /// Fact name → how to collect it.
    pub facts: BTreeMap<String, FactSource>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigCommands {
    pub enter: Vec<String>,
    #[serde(default)]
    pub commit: Vec<String>,
    pub leave: Vec<String>,
    pub abort: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfirmedCommands {
    pub enter: Vec<String>,
    pub commit: Vec<String>,
    pub confirm: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FactSource {
    pub command: String,
    pub parser: String,
}

impl Profile {
    /// The first error line in `output`, if the device rejected what produced it.
    pub fn find_error<'a>(&self, output: &'a str) -> Option<&'a str> {
        output.lines().find(|line| {
            self.error_patterns.iter().any(|r| r.is_match(line)) && !self.error_ignore.iter().any(|r| r.is_match(line))
        })
    }

    /// Whether `platform` (or, without one, `vendor`) selects this profile.
    fn selected_by(&self, value: &str) -> bool {
        let v = value.trim().to_ascii_lowercase();
        v == self.name || self.platforms.contains(&v)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("profile {file}: {message}")]
    Invalid { file: String, message: String },
    #[error("reading profiles from {dir}: {source}")]
    Io { dir: PathBuf, source: std::io::Error },
    #[error("profiles {first} and {second} are both named {name:?}")]
    Duplicate { name: String, first: String, second: String },
}

/// Every error of every file, reported together.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
pub struct ProfileErrors(pub Vec<ProfileError>);

// The file as written; `compile` turns it into a `Profile`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    platforms: Vec<String>,
    #[serde(default = "default_newline")]
    newline: String,
    syntax: ConfigSyntax,
    prompt: RawPrompt,
    commands: RawCommands,
    config: RawConfig,
    errors: RawErrors,
    #[serde(default)]
    snapshot: RawSnapshot,
    #[serde(default)]
    facts: BTreeMap<String, FactSource>,
}

fn default_newline() -> String {
    "\n".to_owned()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrompt {
    pattern: String,
    config: String,
    #[serde(default)]
    noise: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCommands {
    #[serde(default)]
    paging_off: Vec<String>,
    show_running_config: String,
    #[serde(default)]
    save: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    enter: Vec<String>,
    #[serde(default)]
    commit: Vec<String>,
    leave: Vec<String>,
    abort: Vec<String>,
    confirmed: Option<ConfirmedCommands>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawErrors {
    patterns: Vec<String>,
    #[serde(default)]
    ignore: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawSnapshot {
    #[serde(default)]
    volatile: Vec<String>,
    #[serde(default)]
    secrets: Vec<String>,
}

/// Parses and validates one profile file; every problem is reported, with the file name.
pub fn compile(file: &str, text: &str) -> Result<Profile, ProfileErrors> {
    let invalid = |message: String| ProfileError::Invalid { file: file.to_owned(), message };
    let raw: RawProfile = toml::from_str(text).map_err(|e| ProfileErrors(vec![invalid(e.to_string())]))?;
    let mut errors = Vec::new();
    let mut regex = |key: &str, pattern: &str| match Regex::new(pattern) {
        Ok(r) => Some(r),
        Err(e) => {
            errors.push(invalid(format!("{key}: {e}")));
            None
        }
    };
    let prompt = regex("prompt.pattern", &raw.prompt.pattern);
    let config_prompt = regex("prompt.config", &raw.prompt.config);
    let noise: Vec<_> = raw.prompt.noise.iter().filter_map(|p| regex("prompt.noise", p)).collect();
    let error_patterns: Vec<_> = raw.errors.patterns.iter().filter_map(|p| regex("errors.patterns", p)).collect();
    let error_ignore: Vec<_> = raw.errors.ignore.iter().filter_map(|p| regex("errors.ignore", p)).collect();
    let volatile: Vec<_> = raw.snapshot.volatile.iter().filter_map(|p| regex("snapshot.volatile", p)).collect();
    let secrets: Vec<_> = raw.snapshot.secrets.iter().filter_map(|p| regex("snapshot.secrets", p)).collect();

    if raw.name.trim().is_empty() || raw.name.chars().any(|c| !(c.is_ascii_alphanumeric() || c == '-' || c == '_')) {
        errors.push(invalid(format!("name {:?}: use letters, digits, '-' and '_'", raw.name)));
    }
    if let Some(p) = &prompt
        && !p.capture_names().any(|n| n == Some("host"))
    {
        errors.push(invalid("prompt.pattern needs a named group `host` (pinned after login)".to_owned()));
    }
    for (i, s) in raw.snapshot.secrets.iter().enumerate() {
        if let Some(r) = secrets.get(i)
            && !r.capture_names().any(|n| n == Some("secret"))
        {
            errors.push(invalid(format!("snapshot.secrets {s:?}: needs a named group `secret`")));
        }
    }
    if raw.errors.patterns.is_empty() {
        errors.push(invalid("errors.patterns is empty: a rejected command would pass for a success".to_owned()));
    }
    if raw.config.enter.is_empty() || raw.config.leave.is_empty() {
        errors.push(invalid("config.enter and config.leave need at least one command".to_owned()));
    }
    for (fact, source) in &raw.facts {
        if !super::facts::FACTS.contains(&fact.as_str()) {
            errors.push(invalid(format!("facts.{fact}: unknown fact (known: {})", super::facts::FACTS.join(", "))));
        }
        if !super::facts::PARSERS.contains(&source.parser.as_str()) {
            errors.push(invalid(format!(
                "facts.{fact}: unknown parser {:?} (known: {})",
                source.parser,
                super::facts::PARSERS.join(", ")
            )));
        }
    }
    if !errors.is_empty() {
        return Err(ProfileErrors(errors));
    }
    Ok(Profile {
        platforms: raw.platforms.iter().map(|p| p.trim().to_ascii_lowercase()).collect(),
        name: raw.name,
        description: raw.description,
        newline: raw.newline,
        syntax: raw.syntax,
        prompt: prompt.expect("checked"),
        config_prompt: config_prompt.expect("checked"),
        noise,
        paging_off: raw.commands.paging_off,
        show_running_config: raw.commands.show_running_config,
        save: raw.commands.save,
        config: ConfigCommands {
            enter: raw.config.enter,
            commit: raw.config.commit,
            leave: raw.config.leave,
            abort: raw.config.abort,
        },
        confirmed: raw.config.confirmed,
        error_patterns,
        error_ignore,
        volatile,
        secrets,
        facts: raw.facts,
    })
}

/// A set of profiles by name.
#[derive(Debug, Clone)]
pub struct Profiles {
    by_name: BTreeMap<String, (String, Arc<Profile>)>,
}

impl Profiles {
    /// The built-in profiles ([`BUILTIN`]). They are checked by the tests, so this cannot fail.
    pub fn builtin() -> Profiles {
        let mut p = Profiles { by_name: BTreeMap::new() };
        for (file, text) in BUILTIN {
            let profile = compile(file, text).unwrap_or_else(|e| panic!("built-in profile: {e}"));
            p.by_name.insert(profile.name.clone(), ((*file).to_owned(), Arc::new(profile)));
        }
        p
    }

    /// The built-in profiles, plus every `*.toml` in `dir` (a file whose profile name is a
    /// built-in one replaces it). All files are checked; all errors are returned together.
    pub fn with_dir(dir: &Path) -> Result<Profiles, ProfileErrors> {
        let mut p = Profiles::builtin();
        let builtin: Vec<String> = p.by_name.keys().cloned().collect();
        let mut errors = Vec::new();
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for (file, text) in read_dir(dir).map_err(|e| ProfileErrors(vec![e]))? {
            match compile(&file, &text) {
                Ok(profile) => {
                    if let Some(first) = seen.insert(profile.name.clone(), file.clone()) {
                        errors.push(ProfileError::Duplicate { name: profile.name.clone(), first, second: file });
                        continue;
                    }
                    if builtin.contains(&profile.name) {
                        tracing::info!(profile = %profile.name, file = %file, "profile file replaces the built-in one");
                    }
                    p.by_name.insert(profile.name.clone(), (file, Arc::new(profile)));
                }
                Err(ProfileErrors(e)) => errors.extend(e),
            }
        }
        if errors.is_empty() { Ok(p) } else { Err(ProfileErrors(errors)) }
    }

    pub fn get(&self, name: &str) -> Option<Arc<Profile>> {
        self.by_name.get(name).map(|(_, p)| p.clone())
    }

    pub fn names(&self) -> Vec<&str> {
        self.by_name.keys().map(String::as_str).collect()
    }

    /// The profile for a device: by its `platform`, else by its `vendor`.
    pub fn for_device(&self, platform: Option<&str>, vendor: Option<&str>) -> Option<Arc<Profile>> {
        let find = |v: &str| self.by_name.values().find(|(_, p)| p.selected_by(v)).map(|(_, p)| p.clone());
        match platform {
            Some(p) if !p.trim().is_empty() => find(p),
            _ => vendor.and_then(find),
        }
    }
}

fn read_dir(dir: &Path) -> Result<Vec<(String, String)>, ProfileError> {
    let io = |source| ProfileError::Io { dir: dir.to_owned(), source };
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().is_some_and(|e| e == "toml") {
            let text = std::fs::read_to_string(&path).map_err(io)?;
            files.push((path.display().to_string(), text));
        }
    }
    files.sort();
    Ok(files)
}

/// Fills `{session}`, `{minutes}` and `{timer}` in a profile command.
pub fn expand(command: &str, session: &str, confirm_within: std::time::Duration) -> String {
    let secs = confirm_within.as_secs().max(60);
    let timer = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    command
        .replace("{session}", session)
        .replace("{minutes}", &secs.div_ceil(60).to_string())
        .replace("{timer}", &timer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_profile_file_is_built_in_and_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
        let on_disk: Vec<String> = read_dir(&dir)
            .unwrap()
            .into_iter()
            .map(|(f, _)| Path::new(&f).file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        let built_in: Vec<&str> = BUILTIN.iter().map(|(f, _)| *f).collect();
        for f in &on_disk {
            assert!(built_in.contains(&f.as_str()), "{f} is in collector/profiles/ but not in profile::BUILTIN");
        }
        for (file, text) in BUILTIN {
            compile(file, text).unwrap_or_else(|e| panic!("{e}"));
        }
        assert_eq!(Profiles::builtin().names(), vec!["arista-eos", "cisco-ios", "frr", "junos", "netwarden-sim"]);
    }

    #[test]
    fn devices_select_profiles_by_platform_then_vendor() {
        let p = Profiles::builtin();
        let name = |platform, vendor| p.for_device(platform, vendor).map(|p| p.name.clone());
        assert_eq!(name(Some("EOS"), Some("cisco")).as_deref(), Some("arista-eos"));
        assert_eq!(name(None, Some("juniper")).as_deref(), Some("junos"));
        assert_eq!(name(Some("frr"), None).as_deref(), Some("frr"));
        assert_eq!(name(Some("vyos"), Some("cisco")), None, "a platform that names no profile does not fall back");
        assert_eq!(name(None, None), None);
    }

    #[test]
    fn bad_files_report_every_error() {
        let text = BUILTIN[0].1.replace("patterns = ['^% ']", "patterns = ['^% (']").replace("(?P<host>", "(?P<hst>");
        let e = compile("bad.toml", &text).unwrap_err().to_string();
        assert!(e.contains("bad.toml") && e.contains("errors.patterns") && e.contains("named group `host`"), "{e}");
        let e = compile("x.toml", "name = 'x'\nbogus = 1\n").unwrap_err().to_string();
        assert!(e.contains("x.toml"), "{e}");
    }

    #[test]
    fn a_directory_adds_a_platform() {
        let dir = tempfile::tempdir().unwrap();
        let vyos = BUILTIN[0]
            .1
            .replace("name = \"frr\"", "name = \"vyos\"")
            .replace("platforms = [\"frr\", \"frrouting\", \"vtysh\", \"cumulus\"]", "platforms = [\"vyos\"]");
        std::fs::write(dir.path().join("vyos.toml"), vyos).unwrap();
        let p = Profiles::with_dir(dir.path()).unwrap();
        assert_eq!(p.for_device(Some("VyOS"), None).unwrap().name, "vyos");
        assert!(p.get("frr").is_some());
    }

    #[test]
    fn errors_and_placeholders() {
        let p = Profiles::builtin();
        let ios = p.get("cisco-ios").unwrap();
        assert_eq!(
            ios.find_error("foo\n% Invalid input detected at '^' marker.\n"),
            Some("% Invalid input detected at '^' marker.")
        );
        assert_eq!(ios.find_error("% Warning: weak\nok\n"), None);
        let junos = p.get("junos").unwrap();
        assert!(junos.find_error("                 ^\nsyntax error.\n").is_some());
        let d = std::time::Duration::from_secs(300);
        assert_eq!(expand("commit timer {timer}", "s1", d), "commit timer 00:05:00");
        assert_eq!(expand("commit confirmed {minutes}", "s1", d), "commit confirmed 5");
        assert_eq!(expand("configure session {session}", "nw-1", d), "configure session nw-1");
    }
}
