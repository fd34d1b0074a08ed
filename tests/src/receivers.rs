//! Notification peers: a capturing HTTP receiver that answers as scripted (the stand-in for Slack and
//! PagerDuty, and the webhook target of Alertmanager), a real SMTP server (aiosmtpd) and a real Alertmanager.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::util::{free_tcp_port, require_program, stop_child, tail};

/// How the capture server answers one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// This status with this body.
    Status(u16, String),
    /// 429 with `Retry-After: <secs>`.
    TooManyRequests { retry_after_secs: u64 },
    /// Never answer (the client times out or gives up).
    Hang,
}

/// One request the capture server received.
#[derive(Debug, Clone)]
pub struct Captured {
    pub path: String,
    pub headers: Vec<(String, String)>,
    /// The body as JSON (`Value::Null` if it was not JSON; see `problems`).
    pub body: Value,
    /// What the validator found wrong with the body.
    pub problems: Vec<String>,
    /// What the server answered.
    pub reply: Reply,
}

impl Captured {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

type Validator = Box<dyn Fn(&str, &Value) -> Vec<String> + Send + Sync>;

struct CaptureState {
    requests: Mutex<Vec<Captured>>,
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Reply>,
    validator: Option<Validator>,
    arrived: tokio::sync::Notify,
}

/// An HTTP server on 127.0.0.1 that records every request, checks its body with a validator, and answers from
/// a script (then with a default). Stopped when dropped.
pub struct CaptureServer {
    pub addr: SocketAddr,
    state: Arc<CaptureState>,
    task: tokio::task::JoinHandle<()>,
}

impl CaptureServer {
    /// Starts the server on the current tokio runtime. `validator(path, body)` returns the problems it finds.
    pub async fn start(default: Reply, validator: Option<Validator>) -> CaptureServer {
        let state = Arc::new(CaptureState {
            requests: Mutex::new(Vec::new()),
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(default),
            validator,
            arrived: tokio::sync::Notify::new(),
        });
        let app = Router::new().fallback(handle).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("binding the capture server");
        let addr = listener.local_addr().expect("capture server address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        CaptureServer { addr, state, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The next requests are answered with these replies, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.script.lock().unwrap().extend(replies);
    }

    pub fn set_default(&self, reply: Reply) {
        *self.state.default.lock().unwrap() = reply;
    }

    pub fn requests(&self) -> Vec<Captured> {
        self.state.requests.lock().unwrap().clone()
    }

    /// Waits until at least `n` requests whose path starts with `prefix` have arrived; panics after `timeout`.
    pub async fn wait_for(&self, prefix: &str, n: usize, timeout: Duration) -> Vec<Captured> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.state.arrived.notified();
            let got: Vec<Captured> = self.requests().into_iter().filter(|r| r.path.starts_with(prefix)).collect();
            if got.len() >= n {
                return got;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!(
                    "the capture server got {} request(s) to {prefix}* within {timeout:?}, expected {n}: {:#?}",
                    got.len(),
                    got.iter().map(|r| (&r.path, &r.body)).collect::<Vec<_>>()
                );
            }
        }
    }
}

impl Drop for CaptureServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(State(state): State<Arc<CaptureState>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let path = uri.path().to_string();
    let (body, mut problems) = match serde_json::from_slice::<Value>(&body) {
        Ok(v) => (v, Vec::new()),
        Err(e) => (Value::Null, vec![format!("body is not JSON: {e}")]),
    };
    if let Some(v) = &state.validator {
        problems.extend(v(&path, &body));
    }
    let reply = state.script.lock().unwrap().pop_front().unwrap_or_else(|| state.default.lock().unwrap().clone());
    let headers = headers.iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string())).collect();
    state.requests.lock().unwrap().push(Captured { path, headers, body, problems, reply: reply.clone() });
    state.arrived.notify_waiters();
    match reply {
        Reply::Status(code, body) => (StatusCode::from_u16(code).expect("a valid status"), body).into_response(),
        Reply::TooManyRequests { retry_after_secs } => {
            (StatusCode::TOO_MANY_REQUESTS, [("retry-after", retry_after_secs.to_string())], "slow down")
                .into_response()
        }
        Reply::Hang => std::future::pending().await,
    }
}

/// A private certificate authority and a server certificate it issued for 127.0.0.1 and `localhost`, made with
/// the `openssl` command (Debian's `openssl` package): what a relay with a certificate from a company CA has.
pub struct TestPki {
    /// The CA certificate (PEM): what a client must trust.
    pub ca: PathBuf,
    /// The server's certificate (PEM) and its private key.
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    _dir: tempfile::TempDir,
}

impl TestPki {
    /// A new CA (P-256, valid for a week) named `name`, and a server certificate it signed.
    pub fn generate(name: &str) -> TestPki {
        require_program(OPENSSL, "openssl");
        let dir = tempfile::Builder::new().prefix("nw-pki-").tempdir().expect("a temp dir for certificates");
        let path = |f: &str| dir.path().join(f);
        let write = |f: &str, text: String| std::fs::write(path(f), text).expect("writing an openssl config");
        write(
            "ca.cnf",
            format!(
                "[req]\ndistinguished_name = dn\nprompt = no\nx509_extensions = ext\n[dn]\nCN = {name}\n[ext]\n\
                 basicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n\
                 subjectKeyIdentifier = hash\n"
            ),
        );
        write("server.cnf", "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = 127.0.0.1\n".into());
        write(
            "server.ext",
            "basicConstraints = critical,CA:FALSE\nkeyUsage = critical,digitalSignature\n\
             extendedKeyUsage = serverAuth\nsubjectAltName = IP:127.0.0.1,DNS:localhost\n\
             authorityKeyIdentifier = keyid\n"
                .into(),
        );
        let p256 = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
        let steps: [Vec<&str>; 3] = [
            [&["req", "-x509", "-config", "ca.cnf"][..], &p256, &["-keyout", "ca.key", "-out", "ca.pem", "-days", "7"]]
                .concat(),
            [&["req", "-new", "-config", "server.cnf"][..], &p256, &["-keyout", "server.key", "-out", "server.csr"]]
                .concat(),
            vec![
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-set_serial",
                "2",
                "-days",
                "7",
                "-extfile",
                "server.ext",
                "-out",
                "server.pem",
            ],
        ];
        for args in steps {
            let out = Command::new(OPENSSL).args(&args).current_dir(dir.path()).output().expect("running openssl");
            assert!(
                out.status.success(),
                "openssl {}: {}\n{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            );
        }
        TestPki { ca: path("ca.pem"), server_cert: path("server.pem"), server_key: path("server.key"), _dir: dir }
    }
}

const OPENSSL: &str = "/usr/bin/openssl";

/// How the test SMTP server protects its connections.
#[derive(Clone, Copy, Default)]
pub enum SmtpServerTls<'a> {
    /// Plain text; no STARTTLS offered.
    #[default]
    None,
    /// Plain text until STARTTLS (offered, and required before MAIL and AUTH), with this PKI's server certificate.
    Starttls(&'a TestPki),
    /// TLS from the first byte (SMTPS) with this PKI's server certificate.
    Implicit(&'a TestPki),
}

/// What the test SMTP server offers and demands.
#[derive(Clone, Copy, Default)]
pub struct SmtpServerOptions<'a> {
    /// Require AUTH with this user and password.
    pub auth: Option<(&'a str, &'a str)>,
    pub tls: SmtpServerTls<'a>,
}

/// A real SMTP server: aiosmtpd's `Controller` on 127.0.0.1, which parses each message with Python's `email`
/// package and writes it as JSON (envelope, headers, every MIME leaf part decoded, the TLS version the message
/// came over) to a directory, and logs every AUTH attempt (login and outcome, never the password).
pub struct SmtpServer {
    pub port: u16,
    child: Child,
    dir: tempfile::TempDir,
}

const SMTP_SCRIPT: &str = r#"
import email, email.policy, json, os, signal, ssl, sys
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

cfg = json.loads(sys.argv[1])
out, user, password, tls = cfg["out"], cfg["user"], cfg["password"], cfg["tls"]

class Handler:
    async def handle_DATA(self, server, session, envelope):
        msg = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        parts = [{"content_type": p.get_content_type(), "text": p.get_content()}
                 for p in msg.walk() if not p.is_multipart()]
        tls_object = server.transport.get_extra_info("ssl_object")
        record = {"mail_from": envelope.mail_from, "rcpt_tos": envelope.rcpt_tos,
                  "subject": str(msg["subject"]), "from": str(msg["from"]), "to": str(msg["to"]),
                  "content_type": msg.get_content_type(), "parts": parts,
                  "authenticated_as": session.authenticated and user,
                  "tls_version": tls_object.version() if tls_object else None}
        n = len([f for f in os.listdir(out) if f.endswith(".json")])
        tmp = os.path.join(out, "%04d.tmp" % n)
        with open(tmp, "w") as f:
            json.dump(record, f)
        os.rename(tmp, os.path.join(out, "%04d.json" % n))
        return "250 Message accepted for delivery"

def authenticator(server, session, envelope, mechanism, auth_data):
    ok = auth_data.login.decode() == user and auth_data.password.decode() == password
    with open(os.path.join(out, "auth-attempts.jsonl"), "a") as f:
        f.write(json.dumps({"mechanism": mechanism, "login": auth_data.login.decode(), "success": ok}) + "\n")
    # handled=False: aiosmtpd answers 535 itself (with the default handled=True it would say nothing)
    return AuthResult(success=ok, handled=False)

kwargs = {}
if user:
    # aiosmtpd counts only STARTTLS as TLS for auth_require_tls; over implicit TLS (and in plain-text tests)
    # AUTH must be allowed without it.
    kwargs = dict(authenticator=authenticator, auth_required=True, auth_require_tls=(tls == "starttls"))
if tls != "none":
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cfg["cert"], cfg["key"])
    if tls == "starttls":
        kwargs.update(tls_context=context, require_starttls=True)
    else:
        kwargs.update(ssl_context=context)
controller = Controller(Handler(), hostname="127.0.0.1", port=cfg["port"], **kwargs)
controller.start()
print("ready", flush=True)
signal.sigwait([signal.SIGTERM, signal.SIGINT])
controller.stop()
"#;

impl SmtpServer {
    /// Starts aiosmtpd in plain text; with `auth = Some((user, password))` it requires AUTH (over plain text: a
    /// test peer).
    pub fn start(auth: Option<(&str, &str)>) -> SmtpServer {
        Self::start_with(SmtpServerOptions { auth, tls: SmtpServerTls::None })
    }

    /// Starts aiosmtpd with TLS and AUTH as `opts` say.
    pub fn start_with(opts: SmtpServerOptions<'_>) -> SmtpServer {
        let dir = tempfile::Builder::new().prefix("nw-smtp-").tempdir().expect("a temp dir for mail");
        let (user, password) = opts.auth.unwrap_or(("", ""));
        let (tls, pki) = match opts.tls {
            SmtpServerTls::None => ("none", None),
            SmtpServerTls::Starttls(p) => ("starttls", Some(p)),
            SmtpServerTls::Implicit(p) => ("implicit", Some(p)),
        };
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_tcp_port();
            let cfg = serde_json::json!({
                "port": port, "out": dir.path(), "user": user, "password": password, "tls": tls,
                "cert": pki.map(|p| &p.server_cert), "key": pki.map(|p| &p.server_key),
            });
            let log = dir.path().join("aiosmtpd.log");
            let mut child = Command::new("python3")
                .args(["-c", SMTP_SCRIPT, &cfg.to_string()])
                .stdout(Stdio::piped())
                .stderr(std::fs::File::create(&log).expect("aiosmtpd log file"))
                .spawn()
                .expect("starting python3 (install python3 and aiosmtpd: bash .ci/run install)");
            let stdout = child.stdout.take().expect("piped stdout");
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let mut line = String::new();
                let _ = BufReader::new(stdout).read_line(&mut line);
                let _ = tx.send(line);
            });
            match rx.recv_timeout(Duration::from_secs(20)) {
                Ok(line) if line.trim() == "ready" => return SmtpServer { port, child, dir },
                _ => {
                    stop_child(&mut child, Duration::from_secs(2));
                    last_error = tail(&log, 20);
                }
            }
        }
        panic!("aiosmtpd did not start (is it installed? bash .ci/run install): {last_error}");
    }

    /// Every AUTH attempt so far: `{"mechanism", "login", "success"}`.
    pub fn auth_attempts(&self) -> Vec<Value> {
        match std::fs::read_to_string(self.dir.path().join("auth-attempts.jsonl")) {
            Ok(text) => text.lines().map(|l| serde_json::from_str(l).expect("an auth attempt line")).collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => panic!("reading the auth attempts: {e}"),
        }
    }

    /// The messages received so far, oldest first.
    pub fn messages(&self) -> Vec<Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .expect("reading the mail dir")
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| serde_json::from_slice(&std::fs::read(p).expect("reading a mail")).expect("mail JSON"))
            .collect()
    }

    /// Waits for at least `n` messages; panics after `timeout`.
    pub fn wait_for_messages(&self, n: usize, timeout: Duration) -> Vec<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let messages = self.messages();
            if messages.len() >= n {
                return messages;
            }
            assert!(
                Instant::now() < deadline,
                "aiosmtpd received {} message(s) within {timeout:?}, expected {n}",
                messages.len()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(5));
    }
}

/// A real Alertmanager (Debian's `prometheus-alertmanager`) on 127.0.0.1 with clustering off, routing every
/// alert (by default grouped by alertname and device, `group_wait` 1s) to a webhook receiver named `capture`.
pub struct Alertmanager {
    pub port: u16,
    child: Child,
    _dir: tempfile::TempDir,
}

pub const ALERTMANAGER: &str = "/usr/bin/prometheus-alertmanager";

impl Alertmanager {
    pub fn start(webhook_url: &str) -> Alertmanager {
        Self::start_with(webhook_url, &["alertname", "device"], "1s")
    }

    /// Alertmanager grouping by `group_by` with this `group_wait` (group_interval 1s, repeat 1h).
    pub fn start_with(webhook_url: &str, group_by: &[&str], group_wait: &str) -> Alertmanager {
        require_program(ALERTMANAGER, "prometheus-alertmanager");
        let dir = tempfile::Builder::new().prefix("nw-am-").tempdir().expect("a temp dir for Alertmanager");
        let group_by = group_by.join(", ");
        let config = format!(
            "route:\n  receiver: capture\n  group_by: [{group_by}]\n  group_wait: {group_wait}\n  group_interval: 1s\n  \
             repeat_interval: 1h\nreceivers:\n  - name: capture\n    webhook_configs:\n      - url: '{webhook_url}'\n        \
             send_resolved: true\n        max_alerts: 0\n"
        );
        let config_path = dir.path().join("alertmanager.yml");
        std::fs::write(&config_path, config).expect("writing alertmanager.yml");
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_tcp_port();
            let log = dir.path().join("alertmanager.log");
            let mut child = Command::new(ALERTMANAGER)
                .arg(format!("--config.file={}", config_path.display()))
                .arg(format!("--storage.path={}", dir.path().join("data").display()))
                .arg(format!("--web.listen-address=127.0.0.1:{port}"))
                .arg("--cluster.listen-address=")
                .arg("--log.level=warn")
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).expect("alertmanager log file"))
                .spawn()
                .expect("starting prometheus-alertmanager");
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return Alertmanager { port, child, _dir: dir };
                }
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            stop_child(&mut child, Duration::from_secs(2));
            last_error = tail(&log, 20);
        }
        panic!("Alertmanager did not start: {last_error}");
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        stop_child(&mut self.child, Duration::from_secs(5));
    }
}

/// Checks PagerDuty Events v2 requests against PagerDuty's published OpenAPI schema (and the limits its
/// documentation states that the schema does not).
pub fn pagerduty_validator() -> impl Fn(&str, &Value) -> Vec<String> + Send + Sync {
    let doc: Value = serde_json::from_str(include_str!("../../rules/testdata/pagerduty-events-v2.json")).unwrap();
    let mut schema = doc["paths"]["/enqueue"]["post"]["requestBody"]["content"]["application/json"]["schema"].clone();
    schema["components"] = doc["components"].clone();
    let validator = jsonschema::draft4::new(&schema).expect("PagerDuty's schema compiles");
    move |path, body| {
        let mut problems: Vec<String> =
            validator.iter_errors(body).map(|e| format!("schema: {e} at {}", e.instance_path())).collect();
        if path != "/v2/enqueue" {
            problems.push(format!("posted to {path}, not /v2/enqueue"));
        }
        if body["event_action"] == "trigger" && body.get("payload").is_none() {
            problems.push("a trigger needs a payload".into());
        }
        if body["payload"]["summary"].as_str().is_some_and(|s| s.chars().count() > 1024) {
            problems.push("payload.summary is over 1024 characters".into());
        }
        if body["dedup_key"].as_str().is_none_or(|k| k.is_empty() || k.chars().count() > 255) {
            problems.push("dedup_key missing or over 255 characters".into());
        }
        problems
    }
}

/// Checks Slack incoming-webhook messages against Block Kit's documented limits, with a text fallback and colour.
pub fn slack_validator() -> impl Fn(&str, &Value) -> Vec<String> + Send + Sync {
    |_path, body| {
        let mut problems = Vec::new();
        if body["text"].as_str().is_none_or(str::is_empty) {
            problems.push("no top-level text fallback".to_string());
        }
        let blocks = body["blocks"].as_array().cloned().unwrap_or_default();
        if blocks.is_empty() || blocks.len() > 50 {
            problems.push(format!("{} blocks (1..=50 allowed)", blocks.len()));
        }
        for (i, b) in blocks.iter().enumerate() {
            let text = b["text"]["text"].as_str().unwrap_or("");
            match b["type"].as_str() {
                Some("header") if b["text"]["type"] != "plain_text" || text.chars().count() > 150 => {
                    problems.push(format!("block {i}: header must be plain_text of at most 150 characters"))
                }
                Some("section") if text.is_empty() || text.chars().count() > 3000 => {
                    problems.push(format!("block {i}: section text must have 1..=3000 characters"))
                }
                Some("context") if b["elements"].as_array().is_none_or(|e| e.is_empty() || e.len() > 10) => {
                    problems.push(format!("block {i}: context needs 1..=10 elements"))
                }
                Some("header" | "section" | "context") => {}
                other => problems.push(format!("block {i}: unexpected type {other:?}")),
            }
        }
        if !["danger", "warning", "good"].contains(&body["attachments"][0]["color"].as_str().unwrap_or("")) {
            problems.push("attachments[0].color is not danger, warning or good".into());
        }
        problems
    }
}
