//! Receiver configuration as written in the alerting YAML, its validation, and secret references.

use std::fmt;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A secret in the configuration: inline (`"xoxb-…"`), from the environment (`{env: NAME}`) or from a file
/// (`{file: PATH}`, trailing newline trimmed). Debug and Display never show an inline value, and serialising
/// writes the reference, never the value. Resolved when the notifier is built.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged, expecting = "a secret: an inline string, {env: NAME} or {file: PATH}")]
pub enum SecretRef {
    Inline(String),
    Env(EnvRef),
    File(FileRef),
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EnvRef {
    pub env: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileRef {
    pub file: PathBuf,
}

impl fmt::Debug for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::Display for SecretRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretRef::Inline(_) => f.write_str("<inline secret>"),
            SecretRef::Env(e) => write!(f, "{{env: {}}}", e.env),
            SecretRef::File(p) => write!(f, "{{file: {}}}", p.file.display()),
        }
    }
}

impl Serialize for SecretRef {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            SecretRef::Inline(_) => s.serialize_str("<redacted>"),
            SecretRef::Env(e) => e.serialize(s),
            SecretRef::File(p) => p.serialize(s),
        }
    }
}

impl SecretRef {
    /// The value, read from where the reference points. `receiver` and `field` only name it in errors.
    pub fn resolve(&self, receiver: &str, field: &str) -> Result<Secret, ConfigError> {
        let value = match self {
            SecretRef::Inline(v) => v.clone(),
            SecretRef::Env(e) => match std::env::var(&e.env) {
                Ok(v) => v,
                Err(std::env::VarError::NotPresent) => {
                    return Err(ConfigError::new(
                        receiver,
                        format!("{field}: environment variable {} is not set", e.env),
                    ));
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(ConfigError::new(
                        receiver,
                        format!("{field}: environment variable {} is not valid UTF-8", e.env),
                    ));
                }
            },
            SecretRef::File(p) => std::fs::read_to_string(&p.file)
                .map_err(|e| ConfigError::new(receiver, format!("{field}: reading {}: {e}", p.file.display())))?
                .trim_end_matches(['\n', '\r'])
                .to_string(),
        };
        if value.is_empty() {
            return Err(ConfigError::new(receiver, format!("{field}: the secret {self} is empty")));
        }
        Ok(Secret(value))
    }
}

/// A resolved secret. Debug shows `<secret>`; the value is reachable only through [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

/// One receiver: a name and exactly one kind (`slack`, `pagerduty`, `email`, `webhook`, `alertmanager`).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slack: Option<SlackConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagerduty: Option<PagerDutyConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<EmailConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook: Option<WebhookConfig>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alertmanager: Option<AlertmanagerConfig>,
    /// Overrides the kind's default limit (PagerDuty 120/min per routing key, Slack 60/min per webhook).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimitConfig>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SlackConfig {
    pub webhook_url: SecretRef,
    /// Honoured only by legacy webhooks; app webhooks post to the channel fixed at install time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<String>,
}

pub const PAGERDUTY_EVENTS_URL: &str = "https://events.pagerduty.com/v2/enqueue";

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PagerDutyConfig {
    pub routing_key: SecretRef,
    #[serde(default = "default_pagerduty_url")]
    pub url: String,
}

fn default_pagerduty_url() -> String {
    PAGERDUTY_EVENTS_URL.to_string()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    /// Plain connection upgraded with STARTTLS (required: no downgrade), usually port 587.
    #[default]
    Starttls,
    /// Implicit TLS from the first byte, usually port 465.
    Tls,
    /// No encryption (a local relay only).
    None,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// `host:port`.
    pub smarthost: String,
    #[serde(default)]
    pub tls: SmtpTls,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<SecretRef>,
    /// A PEM file of CA certificates to trust for the server's certificate, besides the public (webpki) roots:
    /// for a relay with a certificate from a private CA. Only with `tls: starttls` or `tls: tls`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    pub from: String,
    pub to: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<SecretRef>,
    /// Most alerts per payload (the rest counted in `truncatedAlerts`); 0 = all, as in Alertmanager.
    #[serde(default)]
    pub max_alerts: usize,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AlertmanagerConfig {
    /// Base URL; alerts go to `<url>/api/v2/alerts`.
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_token: Option<SecretRef>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    pub per_minute: u32,
    /// Sends allowed at once before the rate applies; default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
}

/// A configuration problem in one receiver.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("receiver {receiver}: {message}")]
pub struct ConfigError {
    pub receiver: String,
    pub message: String,
}

impl ConfigError {
    pub fn new(receiver: &str, message: impl Into<String>) -> ConfigError {
        ConfigError { receiver: receiver.to_string(), message: message.into() }
    }
}

/// The kinds a receiver names, for "exactly one" checks and messages.
pub(crate) fn kinds(c: &ReceiverConfig) -> Vec<&'static str> {
    let mut k = Vec::new();
    if c.slack.is_some() {
        k.push("slack");
    }
    if c.pagerduty.is_some() {
        k.push("pagerduty");
    }
    if c.email.is_some() {
        k.push("email");
    }
    if c.webhook.is_some() {
        k.push("webhook");
    }
    if c.alertmanager.is_some() {
        k.push("alertmanager");
    }
    k
}

fn check_http_url(receiver: &str, field: &str, url: &str, errors: &mut Vec<ConfigError>) {
    match reqwest::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
        Ok(u) => errors
            .push(ConfigError::new(receiver, format!("{field}: expected an http(s) URL, got scheme {}", u.scheme()))),
        Err(e) => errors.push(ConfigError::new(receiver, format!("{field}: not a URL ({e})"))),
    }
}

impl ReceiverConfig {
    /// Every problem in this receiver that can be seen without resolving secrets.
    pub fn validate(&self) -> Vec<ConfigError> {
        let name = self.name.as_str();
        let mut errors = Vec::new();
        if name.trim().is_empty() {
            errors.push(ConfigError::new("(unnamed)", "name is empty"));
        }
        match kinds(self).as_slice() {
            [_] => {}
            [] => errors.push(ConfigError::new(
                name,
                "no kind given: expected exactly one of slack, pagerduty, email, webhook, alertmanager",
            )),
            many => errors.push(ConfigError::new(
                name,
                format!("{} kinds given ({}): expected exactly one", many.len(), many.join(", ")),
            )),
        }
        if let Some(p) = &self.pagerduty {
            check_http_url(name, "pagerduty.url", &p.url, &mut errors);
        }
        if let Some(w) = &self.webhook {
            check_http_url(name, "webhook.url", &w.url, &mut errors);
        }
        if let Some(a) = &self.alertmanager {
            check_http_url(name, "alertmanager.url", &a.url, &mut errors);
        }
        if let Some(e) = &self.email {
            if let Err(m) = split_host_port(&e.smarthost) {
                errors.push(ConfigError::new(name, format!("email.smarthost: {m}")));
            }
            if let Err(err) = e.from.parse::<lettre::message::Mailbox>() {
                errors.push(ConfigError::new(name, format!("email.from: {:?} is not an address ({err})", e.from)));
            }
            if e.to.is_empty() {
                errors.push(ConfigError::new(name, "email.to: no recipients"));
            }
            for to in &e.to {
                if let Err(err) = to.parse::<lettre::message::Mailbox>() {
                    errors.push(ConfigError::new(name, format!("email.to: {to:?} is not an address ({err})")));
                }
            }
            if e.username.is_some() != e.password.is_some() {
                errors.push(ConfigError::new(name, "email: username and password go together"));
            }
            if e.tls == SmtpTls::None && e.ca_file.is_some() {
                errors.push(ConfigError::new(name, "email.ca_file: set, but tls is none (it needs starttls or tls)"));
            }
        }
        if let Some(r) = &self.rate_limit {
            if r.per_minute == 0 {
                errors.push(ConfigError::new(name, "rate_limit.per_minute must be at least 1"));
            }
            if r.burst == Some(0) {
                errors.push(ConfigError::new(name, "rate_limit.burst must be at least 1"));
            }
        }
        errors
    }
}

/// Every problem in a list of receivers, including duplicate names.
pub fn validate_receivers(receivers: &[ReceiverConfig]) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for r in receivers {
        if !seen.insert(r.name.as_str()) {
            errors.push(ConfigError::new(&r.name, "defined more than once"));
        }
        errors.extend(r.validate());
    }
    errors
}

/// `host:port` (IPv6 as `[::1]:25`) split into its parts.
pub(crate) fn split_host_port(s: &str) -> Result<(String, u16), String> {
    let (host, port) = s.rsplit_once(':').ok_or_else(|| format!("{s:?} has no port (expected host:port)"))?;
    let port: u16 = port.parse().map_err(|_| format!("{s:?}: port {port:?} is not a number"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(format!("{s:?} has no host"));
    }
    Ok((host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    struct File {
        receivers: Vec<ReceiverConfig>,
    }

    const EXAMPLE: &str = r##"
receivers:
  - name: noc-slack
    slack: { webhook_url: {env: SLACK_WEBHOOK_URL}, channel: "#noc" }
  - name: pager
    pagerduty: { routing_key: {env: PD_ROUTING_KEY} }
  - name: mail
    email: { smarthost: "smtp.example.net:587", tls: starttls, username: noc, password: {file: /run/secrets/smtp}, ca_file: /etc/netwarden/smtp-ca.pem, from: "netwarden <nw@example.net>", to: ["noc@example.net"] }
  - name: hook
    webhook: { url: "http://127.0.0.1:9000/hook", bearer_token: "s3cr3t-inline", max_alerts: 0 }
  - name: am
    alertmanager: { url: "http://127.0.0.1:9093" }
    rate_limit: { per_minute: 60 }
"##;

    #[test]
    fn the_documented_example_parses_and_validates() {
        let f: File = serde_saphyr::from_str(EXAMPLE).unwrap();
        assert_eq!(f.receivers.len(), 5);
        assert_eq!(validate_receivers(&f.receivers), vec![]);
        assert_eq!(f.receivers[1].pagerduty.as_ref().unwrap().url, PAGERDUTY_EVENTS_URL);
        assert_eq!(
            f.receivers[0].slack.as_ref().unwrap().webhook_url,
            SecretRef::Env(EnvRef { env: "SLACK_WEBHOOK_URL".into() })
        );
        let mail = f.receivers[2].email.as_ref().unwrap();
        assert_eq!(mail.tls, SmtpTls::Starttls);
        assert_eq!(mail.ca_file.as_deref(), Some(std::path::Path::new("/etc/netwarden/smtp-ca.pem")));
        assert_eq!(f.receivers[4].rate_limit, Some(RateLimitConfig { per_minute: 60, burst: None }));
    }

    #[test]
    fn inline_secrets_are_never_shown_or_serialised() {
        let f: File = serde_saphyr::from_str(EXAMPLE).unwrap();
        let debug = format!("{:?}", f.receivers);
        assert!(!debug.contains("s3cr3t-inline"), "{debug}");
        let json = serde_json::to_string(&f.receivers).unwrap();
        assert!(!json.contains("s3cr3t-inline"), "{json}");
        assert!(json.contains(r#""bearer_token":"<redacted>""#), "{json}");
        assert!(json.contains(r#""webhook_url":{"env":"SLACK_WEBHOOK_URL"}"#), "{json}");
        let s = SecretRef::Inline("hunter2".into()).resolve("r", "f").unwrap();
        assert_eq!(format!("{s:?}"), "<secret>");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn a_missing_environment_variable_names_receiver_and_variable() {
        let r = SecretRef::Env(EnvRef { env: "NETWARDEN_TEST_SURELY_UNSET_VARIABLE".into() });
        let e = r.resolve("pager", "pagerduty.routing_key").unwrap_err();
        assert_eq!(
            e.to_string(),
            "receiver pager: pagerduty.routing_key: environment variable NETWARDEN_TEST_SURELY_UNSET_VARIABLE is not set"
        );
    }

    #[test]
    fn file_secrets_lose_their_trailing_newline() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key");
        std::fs::write(&p, "abc123\n").unwrap();
        let s = SecretRef::File(FileRef { file: p }).resolve("r", "f").unwrap();
        assert_eq!(s.expose(), "abc123");
    }

    fn errors_of(yaml: &str) -> Vec<String> {
        match serde_saphyr::from_str::<File>(yaml) {
            Ok(f) => validate_receivers(&f.receivers).iter().map(ToString::to_string).collect(),
            Err(e) => vec![format!("parse: {e}")],
        }
    }

    #[test]
    fn validation_says_which_receiver_and_what() {
        assert_eq!(
            errors_of("receivers:\n  - name: x\n"),
            vec!["receiver x: no kind given: expected exactly one of slack, pagerduty, email, webhook, alertmanager"]
        );
        assert_eq!(
            errors_of(
                "receivers:\n  - name: two\n    webhook: {url: 'http://a/'}\n    alertmanager: {url: 'http://b/'}\n"
            ),
            vec!["receiver two: 2 kinds given (webhook, alertmanager): expected exactly one"]
        );
        assert_eq!(
            errors_of(
                "receivers:\n  - name: h\n    webhook: {url: 'ftp://a/'}\n  - name: h\n    alertmanager: {url: 'http://b/'}\n"
            ),
            vec![
                "receiver h: webhook.url: expected an http(s) URL, got scheme ftp",
                "receiver h: defined more than once"
            ]
        );
        let e = errors_of(
            "receivers:\n  - name: m\n    email: {smarthost: 'smtp', from: 'not an address', to: [], username: u}\n",
        );
        assert_eq!(e.len(), 4, "{e:?}");
        assert!(e.iter().all(|m| m.starts_with("receiver m: email")), "{e:?}");
        assert_eq!(
            errors_of(
                "receivers:\n  - name: m\n    email: {smarthost: 'h:25', tls: none, ca_file: /ca.pem, from: a@b.c, to: [d@e.f]}\n"
            ),
            vec!["receiver m: email.ca_file: set, but tls is none (it needs starttls or tls)"]
        );
        let e = errors_of("receivers:\n  - name: x\n    webhook: {url: 'http://a/', colour: red}\n");
        assert!(e[0].starts_with("parse:") && e[0].contains("colour"), "{e:?}");
        let e = errors_of("receivers:\n  - name: x\n    slack: {webhook_url: {vault: a}}\n");
        assert!(e[0].contains("a secret: an inline string, {env: NAME} or {file: PATH}"), "{e:?}");
    }

    #[test]
    fn host_and_port_split() {
        assert_eq!(split_host_port("smtp.example.net:587").unwrap(), ("smtp.example.net".into(), 587));
        assert_eq!(split_host_port("[::1]:25").unwrap(), ("::1".into(), 25));
        assert!(split_host_port("smtp").is_err());
        assert!(split_host_port(":25").is_err());
    }
}
