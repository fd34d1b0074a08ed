//! Notifiers: turn a [`Notification`] into a Slack message, PagerDuty events, an e-mail, an Alertmanager webhook
//! payload or alerts pushed to Alertmanager, and send it.
//!
//! The payload builders are pure functions in the submodules; [`Notifier`] is the I/O edge: one HTTP client
//! (rustls with ring, timeouts), one SMTP transport per e-mail receiver, rate limits per routing key or webhook.
//! Retrying is the outbox's job ([`crate::outbox`]); a [`SendError`] says whether a retry can help and when.

pub mod alertmanager;
pub mod config;
pub mod email;
mod error;
pub mod pagerduty;
pub mod slack;

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, CertificateStore, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::Serialize;

pub use config::{ConfigError, ReceiverConfig, Secret, SecretRef, SmtpTls, validate_receivers};
pub use error::{SendError, excerpt, parse_retry_after, status_is_transient};

use crate::alert::{AlertSnapshot, Notification};

/// The one-line description of an alert: its `summary` annotation, else `description`, else rule and place.
pub fn alert_summary(a: &AlertSnapshot) -> String {
    if let Some(s) = a.annotations.get("summary").or_else(|| a.annotations.get("description")) {
        return s.clone();
    }
    let place: Vec<&str> =
        ["device", "interface"].iter().filter_map(|k| a.labels.get(*k).map(String::as_str)).collect();
    if place.is_empty() { a.rule.clone() } else { format!("{} on {}", a.rule, place.join(" ")) }
}

/// `s` cut to at most `max` characters (not bytes), ending in "…" when cut.
pub fn truncate_chars(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Timeouts and waits of the notifier.
#[derive(Debug, Clone)]
pub struct NotifierOptions {
    /// Whole HTTP request, connect to last byte.
    pub http_timeout: Duration,
    pub connect_timeout: Duration,
    /// Each SMTP command.
    pub smtp_timeout: Duration,
    /// Longest wait for a rate limit before the send fails as transient (the outbox retries it later).
    pub max_rate_wait: Duration,
}

impl Default for NotifierOptions {
    fn default() -> Self {
        NotifierOptions {
            http_timeout: Duration::from_secs(15),
            connect_timeout: Duration::from_secs(5),
            smtp_timeout: Duration::from_secs(30),
            max_rate_wait: Duration::from_secs(30),
        }
    }
}

/// A receiver with its secrets resolved and its transport built.
pub enum Receiver {
    Slack(SlackReceiver),
    PagerDuty(PagerDutyReceiver),
    Email(EmailReceiver),
    Webhook(WebhookReceiver),
    Alertmanager(AlertmanagerReceiver),
}

impl Receiver {
    pub fn kind(&self) -> &'static str {
        match self {
            Receiver::Slack(_) => "slack",
            Receiver::PagerDuty(_) => "pagerduty",
            Receiver::Email(_) => "email",
            Receiver::Webhook(_) => "webhook",
            Receiver::Alertmanager(_) => "alertmanager",
        }
    }
}

pub struct SlackReceiver {
    webhook_url: Secret,
    channel: Option<String>,
}

pub struct PagerDutyReceiver {
    routing_key: Secret,
    url: String,
}

pub struct EmailReceiver {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    smarthost: String,
    from: Mailbox,
    to: Vec<Mailbox>,
}

pub struct WebhookReceiver {
    url: String,
    bearer_token: Option<Secret>,
    max_alerts: usize,
}

pub struct AlertmanagerReceiver {
    /// `<base>/api/v2/alerts`.
    alerts_url: String,
    bearer_token: Option<Secret>,
}

struct Entry {
    receiver: Receiver,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
}

/// What a successful send did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivered {
    pub receiver: String,
    /// HTTP status or SMTP reply code of the last request.
    pub status: Option<u16>,
    /// Requests made: PagerDuty sends one event per alert, everything else one message.
    pub requests: usize,
}

/// Receivers that could not be built, every problem at once.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct NotifierError(pub Vec<ConfigError>);

/// Sends notifications to the configured receivers.
pub struct Notifier {
    http: reqwest::Client,
    receivers: BTreeMap<String, Entry>,
    opts: NotifierOptions,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kinds: BTreeMap<&str, &str> = self.receivers.iter().map(|(n, e)| (n.as_str(), e.receiver.kind())).collect();
        f.debug_struct("Notifier").field("receivers", &kinds).finish()
    }
}

/// rustls with ring and the webpki roots: the TLS configuration of netwarden's HTTP client.
pub fn tls_client_config() -> rustls::ClientConfig {
    let roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports rustls' default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

fn limiter(per_minute: u32, burst: u32) -> Arc<DefaultDirectRateLimiter> {
    let per_minute = NonZeroU32::new(per_minute).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    Arc::new(RateLimiter::direct(Quota::per_minute(per_minute).allow_burst(burst)))
}

/// PagerDuty allows about 120 events a minute per integration key; Slack one message a second per webhook.
const PAGERDUTY_PER_MINUTE: u32 = 120;
const SLACK_PER_MINUTE: u32 = 60;

impl Notifier {
    /// Builds every receiver: resolves secrets, parses addresses, builds transports. Fails with every problem.
    pub fn new(configs: &[ReceiverConfig], opts: NotifierOptions) -> Result<Notifier, NotifierError> {
        let mut errors = config::validate_receivers(configs);
        if !errors.is_empty() {
            return Err(NotifierError(errors));
        }
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_client_config())
            .timeout(opts.http_timeout)
            .connect_timeout(opts.connect_timeout)
            .user_agent(concat!("netwarden/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| NotifierError(vec![ConfigError::new("(all)", format!("building the HTTP client: {e}"))]))?;
        // Receivers that share a routing key or webhook share its limit, as the SaaS counts it.
        let mut shared: HashMap<String, Arc<DefaultDirectRateLimiter>> = HashMap::new();
        let mut receivers = BTreeMap::new();
        for c in configs {
            let built = match build_receiver(c, &opts) {
                Ok(r) => r,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            let limiter = match (&c.rate_limit, &built) {
                (Some(r), _) => Some(limiter(r.per_minute, r.burst.unwrap_or(1))),
                (None, Receiver::PagerDuty(p)) => Some(
                    shared
                        .entry(format!("pagerduty\0{}", p.routing_key.expose()))
                        .or_insert_with(|| limiter(PAGERDUTY_PER_MINUTE, 10))
                        .clone(),
                ),
                (None, Receiver::Slack(s)) => Some(
                    shared
                        .entry(format!("slack\0{}", s.webhook_url.expose()))
                        .or_insert_with(|| limiter(SLACK_PER_MINUTE, 1))
                        .clone(),
                ),
                (None, _) => None,
            };
            receivers.insert(c.name.clone(), Entry { receiver: built, limiter });
        }
        if !errors.is_empty() {
            return Err(NotifierError(errors));
        }
        Ok(Notifier { http, receivers, opts })
    }

    pub fn receiver_names(&self) -> impl Iterator<Item = &str> {
        self.receivers.keys().map(String::as_str)
    }

    pub fn receiver(&self, name: &str) -> Option<&Receiver> {
        self.receivers.get(name).map(|e| &e.receiver)
    }

    /// Sends `n` to the receiver it names. No retries here: the error says whether one can help.
    pub async fn send(&self, n: &Notification) -> Result<Delivered, SendError> {
        let name = n.receiver.as_str();
        let entry =
            self.receivers.get(name).ok_or_else(|| SendError::UnknownReceiver { receiver: name.to_string() })?;
        let mut delivered = Delivered { receiver: name.to_string(), status: None, requests: 0 };
        match &entry.receiver {
            Receiver::Slack(s) => {
                self.wait_turn(name, entry).await?;
                let body = slack::payload(n, s.channel.as_deref());
                let what = format!("POST slack webhook at {}", url_host(s.webhook_url.expose()));
                delivered.status = Some(self.post_json(name, &what, s.webhook_url.expose(), &body, None).await?);
                delivered.requests = 1;
            }
            Receiver::PagerDuty(p) => {
                let what = format!("POST {}", redact_url(&p.url));
                for event in pagerduty::events(n, p.routing_key.expose()) {
                    self.wait_turn(name, entry).await?;
                    delivered.status = Some(self.post_json(name, &what, &p.url, &event, None).await?);
                    delivered.requests += 1;
                }
            }
            Receiver::Webhook(w) => {
                self.wait_turn(name, entry).await?;
                let body = alertmanager::webhook_message(n, name, w.max_alerts);
                let what = format!("POST {}", redact_url(&w.url));
                delivered.status = Some(self.post_json(name, &what, &w.url, &body, w.bearer_token.as_ref()).await?);
                delivered.requests = 1;
            }
            Receiver::Alertmanager(a) => {
                self.wait_turn(name, entry).await?;
                let body = alertmanager::postable_alerts(n);
                let what = format!("POST {}", redact_url(&a.alerts_url));
                delivered.status =
                    Some(self.post_json(name, &what, &a.alerts_url, &body, a.bearer_token.as_ref()).await?);
                delivered.requests = 1;
            }
            Receiver::Email(e) => {
                self.wait_turn(name, entry).await?;
                let message = email::message(n, &e.from, &e.to).map_err(|err| SendError::Invalid {
                    receiver: name.to_string(),
                    message: format!("building the e-mail: {err}"),
                })?;
                let what = format!("SMTP to {}", e.smarthost);
                let reply = e.transport.send(message).await.map_err(|err| smtp_error(name, &what, &err))?;
                delivered.status = reply.code().to_string().parse().ok();
                delivered.requests = 1;
            }
        }
        Ok(delivered)
    }

    /// Waits for the receiver's rate limit, at most `max_rate_wait`.
    async fn wait_turn(&self, name: &str, entry: &Entry) -> Result<(), SendError> {
        let Some(l) = &entry.limiter else { return Ok(()) };
        tokio::time::timeout(self.opts.max_rate_wait, l.until_ready())
            .await
            .map_err(|_| SendError::RateLimited { receiver: name.to_string(), wait: self.opts.max_rate_wait })
    }

    async fn post_json(
        &self,
        receiver: &str,
        what: &str,
        url: &str,
        body: &impl Serialize,
        bearer: Option<&Secret>,
    ) -> Result<u16, SendError> {
        let mut req = self.http.post(url).json(body);
        if let Some(token) = bearer {
            req = req.bearer_auth(token.expose());
        }
        let network = |e: reqwest::Error| SendError::Network {
            receiver: receiver.to_string(),
            what: what.to_string(),
            message: reqwest_error_text(e, self.opts.http_timeout),
        };
        let resp = req.send().await.map_err(network)?;
        let status = resp.status().as_u16();
        if resp.status().is_success() {
            return Ok(status);
        }
        let retry_after = resp
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, chrono::Utc::now()));
        let body = resp.text().await.map(|b| excerpt(&b)).unwrap_or_default();
        Err(SendError::Http { receiver: receiver.to_string(), what: what.to_string(), status, body, retry_after })
    }
}

fn build_receiver(c: &ReceiverConfig, opts: &NotifierOptions) -> Result<Receiver, ConfigError> {
    let name = c.name.as_str();
    // validate() has checked that exactly one kind is set.
    if let Some(s) = &c.slack {
        let webhook_url = s.webhook_url.resolve(name, "slack.webhook_url")?;
        if reqwest::Url::parse(webhook_url.expose()).is_err() {
            return Err(ConfigError::new(
                name,
                format!("slack.webhook_url: the value of {} is not a URL", s.webhook_url),
            ));
        }
        return Ok(Receiver::Slack(SlackReceiver { webhook_url, channel: s.channel.clone() }));
    }
    if let Some(p) = &c.pagerduty {
        let routing_key = p.routing_key.resolve(name, "pagerduty.routing_key")?;
        return Ok(Receiver::PagerDuty(PagerDutyReceiver { routing_key, url: p.url.clone() }));
    }
    if let Some(w) = &c.webhook {
        let bearer_token = w.bearer_token.as_ref().map(|t| t.resolve(name, "webhook.bearer_token")).transpose()?;
        return Ok(Receiver::Webhook(WebhookReceiver { url: w.url.clone(), bearer_token, max_alerts: w.max_alerts }));
    }
    if let Some(a) = &c.alertmanager {
        let bearer_token = a.bearer_token.as_ref().map(|t| t.resolve(name, "alertmanager.bearer_token")).transpose()?;
        let alerts_url = format!("{}/api/v2/alerts", a.url.trim_end_matches('/'));
        return Ok(Receiver::Alertmanager(AlertmanagerReceiver { alerts_url, bearer_token }));
    }
    if let Some(e) = &c.email {
        let (host, port) = config::split_host_port(&e.smarthost)
            .map_err(|m| ConfigError::new(name, format!("email.smarthost: {m}")))?;
        let extra_roots = match &e.ca_file {
            Some(path) => read_ca_file(name, path)?,
            None => Vec::new(),
        };
        // The same roots as the HTTP client (webpki), plus the receiver's own CA; rustls verifies the name.
        let tls_params = || {
            let mut p = TlsParameters::builder(host.clone()).certificate_store(CertificateStore::WebpkiRoots);
            for cert in &extra_roots {
                p = p.add_root_certificate(cert.clone());
            }
            p.build_rustls().map_err(|err| match &e.ca_file {
                Some(path) => ConfigError::new(name, format!("email.ca_file: {}: {err}", path.display())),
                None => ConfigError::new(name, format!("email: TLS parameters for {host}: {err}")),
            })
        };
        let mut b = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host.clone())
            .port(port)
            .timeout(Some(opts.smtp_timeout));
        b = match e.tls {
            SmtpTls::Starttls => b.tls(Tls::Required(tls_params()?)),
            SmtpTls::Tls => b.tls(Tls::Wrapper(tls_params()?)),
            SmtpTls::None => b.tls(Tls::None),
        };
        if let (Some(user), Some(password)) = (&e.username, &e.password) {
            let password = password.resolve(name, "email.password")?;
            b = b.credentials(Credentials::new(user.clone(), password.expose().to_string()));
        }
        let from = e.from.parse().map_err(|err| ConfigError::new(name, format!("email.from: {err}")))?;
        let to =
            e.to.iter()
                .map(|t| t.parse().map_err(|err| ConfigError::new(name, format!("email.to: {t:?}: {err}"))))
                .collect::<Result<_, _>>()?;
        return Ok(Receiver::Email(EmailReceiver { transport: b.build(), smarthost: e.smarthost.clone(), from, to }));
    }
    Err(ConfigError::new(name, "no kind given"))
}

/// The certificates of a PEM file (`-----BEGIN CERTIFICATE-----` blocks), at least one.
fn read_ca_file(receiver: &str, path: &std::path::Path) -> Result<Vec<Certificate>, ConfigError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let error = |m: String| ConfigError::new(receiver, format!("email.ca_file: {}: {m}", path.display()));
    let pem = std::fs::read(path).map_err(|e| error(format!("cannot read it ({e})")))?;
    let ders = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error(format!("not a PEM file ({e})")))?;
    if ders.is_empty() {
        return Err(error("holds no certificate (expected PEM \"BEGIN CERTIFICATE\" blocks)".into()));
    }
    ders.into_iter().map(|der| Certificate::from_der(der.to_vec()).map_err(|e| error(e.to_string()))).collect()
}

/// Scheme, host, port and path: no user info, query or fragment (they may hold tokens).
pub fn redact_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => {
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            format!("{}://{}{port}{}", u.scheme(), u.host_str().unwrap_or(""), u.path())
        }
        Err(_) => "(invalid URL)".to_string(),
    }
}

/// Only the host: a Slack webhook's path is its secret.
fn url_host(url: &str) -> String {
    reqwest::Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| "(invalid URL)".into())
}

/// reqwest's error without the URL, with its causes (its own Display says only "error sending request").
fn reqwest_error_text(e: reqwest::Error, timeout: Duration) -> String {
    if e.is_timeout() {
        return format!("no answer within {}s", timeout.as_secs_f64());
    }
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn smtp_error(receiver: &str, what: &str, e: &lettre::transport::smtp::Error) -> SendError {
    let code = e.status().and_then(|c| c.to_string().parse().ok());
    // 4xx replies and connection trouble (certificates included: a server can fix its own) are worth retrying;
    // 5xx replies and client-side errors (a server without STARTTLS among them) are not.
    let transient = !(e.is_permanent() || e.is_client());
    let message = if let Some(tls) = rustls_error(e) {
        match tls {
            rustls::Error::InvalidCertificate(_) => format!(
                "TLS: the server's certificate is not trusted ({tls}); nothing was sent. If a private CA issued \
                 it, trust that CA with email.ca_file"
            ),
            _ => format!("TLS: {tls}; nothing was sent"),
        }
    } else if e.is_client() && e.to_string().contains("STARTTLS is not supported") {
        // lettre has no error kind for it, only this message.
        "the server does not offer STARTTLS; with tls: starttls nothing is sent in plain text (no login, no \
         message)"
            .to_string()
    } else {
        error_chain_text(e)
    };
    SendError::Smtp { receiver: receiver.to_string(), what: what.to_string(), code, message, transient }
}

/// An error and its causes, each cause once: lettre's errors already print their source, and an `io::Error`
/// prints the error it wraps.
fn error_chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        source = s.source();
    }
    text
}

/// The TLS (rustls) error somewhere in an error's causes, also inside an `io::Error`.
fn rustls_error<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(tls) = err.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        if let Some(tls) =
            err.downcast_ref::<std::io::Error>().and_then(|io| io.get_ref()).and_then(|i| i.downcast_ref())
        {
            return Some(tls);
        }
        cur = err.source();
    }
    None
}

#[cfg(test)]
pub(crate) mod testing {
    //! Alerts and notifications for the payload tests.
    use chrono::{TimeZone, Utc};

    use crate::alert::{AlertSnapshot, AlertState, Labels, Notification, NotificationKind, Severity, fingerprint};

    pub fn alert(device: &str, interface: &str, severity: Severity) -> AlertSnapshot {
        let labels: Labels = [
            ("alertname", "InterfaceDown"),
            ("device", device),
            ("interface", interface),
            ("severity", severity.as_str()),
            ("site", "ams1"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let fp = fingerprint("InterfaceDown", &labels);
        AlertSnapshot {
            url: format!("https://nw.example.net/alerts/{fp}"),
            fingerprint: fp,
            rule: "InterfaceDown".into(),
            severity,
            state: AlertState::Firing,
            labels,
            annotations: [("summary".to_string(), format!("{interface} down on {device}"))].into_iter().collect(),
            starts_at: Utc.with_ymd_and_hms(2026, 11, 22, 3, 11, 36).unwrap(),
            ends_at: None,
            value: None,
            flapping: false,
            acknowledged_by: None,
        }
    }

    pub fn notification(kind: NotificationKind, alerts: Vec<AlertSnapshot>) -> Notification {
        let device = alerts.first().and_then(|a| a.labels.get("device").cloned()).unwrap_or_default();
        Notification {
            receiver: "noc".into(),
            group_key: format!("{{}}:{{alertname=\"InterfaceDown\", device=\"{device}\"}}"),
            group_labels: [("alertname".to_string(), "InterfaceDown".to_string()), ("device".to_string(), device)]
                .into_iter()
                .collect(),
            kind,
            escalation_level: 0,
            alerts,
            external_url: "https://nw.example.net".into(),
            created_at: Utc.with_ymd_and_hms(2026, 11, 22, 3, 12, 0).unwrap(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::{NotificationKind, Severity};
    use testing::{alert, notification};

    fn receiver(yaml: &str) -> ReceiverConfig {
        serde_saphyr::from_str(yaml).unwrap()
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate_chars("abc", 3), "abc");
        assert_eq!(truncate_chars("abcd", 3), "ab…");
        assert_eq!(truncate_chars("ééééé", 4), "ééé…");
    }

    #[test]
    fn urls_lose_credentials_and_queries() {
        assert_eq!(
            redact_url("https://u:p@hooks.example.net:8443/a/b?token=x#f"),
            "https://hooks.example.net:8443/a/b"
        );
        assert_eq!(url_host("https://hooks.slack.com/services/T0/B0/secret"), "hooks.slack.com");
    }

    #[test]
    fn building_fails_with_every_receiver_problem() {
        let configs = vec![
            receiver("name: pager\npagerduty: {routing_key: {env: NETWARDEN_TEST_UNSET_PD_KEY}}\n"),
            receiver("name: chat\nslack: {webhook_url: 'not a url'}\n"),
            receiver("name: ok\nwebhook: {url: 'http://127.0.0.1:1/'}\n"),
        ];
        let e = Notifier::new(&configs, NotifierOptions::default()).unwrap_err();
        assert_eq!(
            e.to_string(),
            "receiver pager: pagerduty.routing_key: environment variable NETWARDEN_TEST_UNSET_PD_KEY is not set; \
             receiver chat: slack.webhook_url: the value of <inline secret> is not a URL"
        );
    }

    #[test]
    fn a_bad_ca_file_is_a_configuration_error_that_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let build = |file: &std::path::Path| {
            let yaml = format!(
                "name: mail\nemail: {{smarthost: 'smtp.example.net:587', ca_file: '{}', from: a@b.c, to: [d@e.f]}}\n",
                file.display()
            );
            Notifier::new(&[receiver(&yaml)], NotifierOptions::default()).unwrap_err().to_string()
        };
        let missing = dir.path().join("missing.pem");
        let e = build(&missing);
        assert!(
            e.starts_with(&format!("receiver mail: email.ca_file: {}: cannot read it (", missing.display())),
            "{e}"
        );
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "no certificates here\n").unwrap();
        assert_eq!(
            build(&empty),
            format!(
                "receiver mail: email.ca_file: {}: holds no certificate (expected PEM \"BEGIN CERTIFICATE\" blocks)",
                empty.display()
            )
        );
        let cut = dir.path().join("cut.pem");
        std::fs::write(&cut, "-----BEGIN CERTIFICATE-----\nMIIB\n").unwrap();
        let e = build(&cut);
        assert!(e.starts_with(&format!("receiver mail: email.ca_file: {}: not a PEM file (", cut.display())), "{e}");
        let garbage = dir.path().join("garbage.pem");
        std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nAAECAwQF\n-----END CERTIFICATE-----\n").unwrap();
        let e = build(&garbage);
        assert!(e.starts_with(&format!("receiver mail: email.ca_file: {}: ", garbage.display())), "{e}");
    }

    #[tokio::test]
    async fn an_unknown_receiver_is_a_permanent_error_and_a_refused_connection_a_transient_one() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let configs = vec![receiver(&format!("name: hook\nwebhook: {{url: 'http://127.0.0.1:{port}/x?token=abc'}}\n"))];
        let notifier = Notifier::new(&configs, NotifierOptions::default()).unwrap();
        let mut n = notification(NotificationKind::Firing, vec![alert("leaf1", "eth1", Severity::Major)]);
        n.receiver = "nope".into();
        let e = notifier.send(&n).await.unwrap_err();
        assert!(!e.is_transient());
        assert_eq!(e.to_string(), "receiver nope: no such receiver is configured");
        n.receiver = "hook".into();
        let e = notifier.send(&n).await.unwrap_err();
        assert!(e.is_transient(), "{e}");
        let text = e.to_string();
        assert!(text.starts_with(&format!("receiver hook: POST http://127.0.0.1:{port}/x: ")), "{text}");
        assert!(!text.contains("token=abc"), "{text}");
        assert_eq!(format!("{notifier:?}"), r#"Notifier { receivers: {"hook": "webhook"} }"#);
    }
}
