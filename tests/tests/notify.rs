//! Notifiers and the notification outbox against real peers: aiosmtpd (plain, STARTTLS and implicit TLS with a
//! certificate from a CA the test makes, AUTH required), Debian's Alertmanager, PostgreSQL, and a capturing HTTP
//! receiver that stands in for Slack and PagerDuty and checks their published formats.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use collector::db::{self, BackendChoice};
use netwarden_tests::pg::{TestDb, fresh_db};
use netwarden_tests::receivers::{
    Alertmanager, CaptureServer, Reply, SmtpServer, SmtpServerOptions, SmtpServerTls, TestPki, pagerduty_validator,
    slack_validator,
};
use netwarden_tests::serve;
use rules::alert::{AlertSnapshot, AlertState, Labels, Notification, NotificationKind, Severity, fingerprint};
use rules::notify::{Notifier, NotifierOptions, ReceiverConfig};
use rules::outbox::{self, AttemptOutcome, OutboxEntry, OutboxState, WorkerOptions};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(30);

fn alert(device: &str, interface: &str, severity: Severity) -> AlertSnapshot {
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
        url: format!("http://127.0.0.1:8080/alerts/{fp}"),
        fingerprint: fp,
        rule: "InterfaceDown".into(),
        severity,
        state: AlertState::Firing,
        labels,
        annotations: [
            ("summary".to_string(), format!("{interface} down on {device}")),
            ("description".to_string(), "ifOperStatus is down(2)".to_string()),
        ]
        .into_iter()
        .collect(),
        starts_at: Utc::now() - chrono::Duration::minutes(2),
        ends_at: None,
        value: Some(2.0),
        flapping: false,
        acknowledged_by: None,
    }
}

fn notification(receiver: &str, kind: NotificationKind, alerts: Vec<AlertSnapshot>) -> Notification {
    let device = alerts[0].labels["device"].clone();
    Notification {
        receiver: receiver.into(),
        group_key: format!("{{}}:{{alertname=\"InterfaceDown\", device=\"{device}\"}}"),
        group_labels: [("alertname".to_string(), "InterfaceDown".to_string()), ("device".to_string(), device)]
            .into_iter()
            .collect(),
        kind,
        escalation_level: 0,
        alerts,
        external_url: "http://127.0.0.1:8080".into(),
        created_at: Utc::now(),
    }
}

/// Receivers as in the alerting YAML (flow style: JSON is YAML too).
fn receivers(yaml: &str) -> Vec<ReceiverConfig> {
    serde_saphyr::from_str(yaml).unwrap_or_else(|e| panic!("receiver config {yaml}: {e}"))
}

fn notifier(configs: Vec<ReceiverConfig>) -> Arc<Notifier> {
    Arc::new(Notifier::new(&configs, NotifierOptions::default()).expect("building the notifier"))
}

// ---------------------------------------------------------------------------------------------------------------
// E-mail through a real SMTP server.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_reaches_a_real_smtp_server_as_multipart_alternative() {
    let smtp = SmtpServer::start(Some(("noc", "mail-pass")));
    let n = notifier(receivers(&format!(
        r#"[{{"name": "mail", "email": {{"smarthost": "127.0.0.1:{}", "tls": "none", "username": "noc",
             "password": "mail-pass", "from": "netwarden <nw@example.net>", "to": ["noc@example.net", "Ops <ops@example.net>"]}}}}]"#,
        smtp.port
    )));
    let mut bad = alert("leaf1", "eth1", Severity::Critical);
    bad.annotations.insert("summary".into(), "<script>alert('x')</script> & eth1 down".into());
    let note = notification("mail", NotificationKind::Firing, vec![bad, alert("leaf1", "eth2", Severity::Minor)]);
    let delivered = n.send(&note).await.expect("sending the e-mail");
    assert_eq!(delivered.status, Some(250));

    let mail = smtp.wait_for_messages(1, WAIT).remove(0);
    assert_eq!(mail["subject"], "[CRITICAL] [FIRING:2] InterfaceDown leaf1");
    assert_eq!(mail["from"], "netwarden <nw@example.net>");
    assert_eq!(mail["to"], "noc@example.net, Ops <ops@example.net>");
    assert_eq!(mail["mail_from"], "nw@example.net");
    assert_eq!(mail["rcpt_tos"], json!(["noc@example.net", "ops@example.net"]));
    assert_eq!(mail["authenticated_as"], "noc");
    assert_eq!(mail["content_type"], "multipart/alternative");
    let parts = mail["parts"].as_array().unwrap();
    assert_eq!(
        parts.iter().map(|p| p["content_type"].as_str().unwrap()).collect::<Vec<_>>(),
        ["text/plain", "text/html"]
    );
    let (text, html) = (parts[0]["text"].as_str().unwrap(), parts[1]["text"].as_str().unwrap());
    assert!(text.contains("<script>alert('x')</script> & eth1 down"), "{text}");
    assert!(text.contains("eth2 down on leaf1") && text.contains("device = leaf1"), "{text}");
    assert!(!html.contains("<script>"), "the HTML part must be escaped: {html}");
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; eth1 down"), "{html}");
    assert!(html.contains("<td>interface</td><td>eth2</td>"), "{html}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_with_a_wrong_password_fails_permanently() {
    let smtp = SmtpServer::start(Some(("noc", "right")));
    let n = notifier(receivers(&format!(
        r#"[{{"name": "mail", "email": {{"smarthost": "127.0.0.1:{}", "tls": "none", "username": "noc",
             "password": "wrong", "from": "nw@example.net", "to": ["noc@example.net"]}}}}]"#,
        smtp.port
    )));
    let e = n
        .send(&notification("mail", NotificationKind::Firing, vec![alert("leaf1", "eth1", Severity::Major)]))
        .await
        .unwrap_err();
    assert!(!e.is_transient(), "a refused login is not retried: {e}");
    assert_eq!(e.status(), Some(535), "{e}");
    assert!(!e.to_string().contains("wrong"), "the password never appears in errors: {e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_to_a_closed_port_fails_transiently() {
    let port = netwarden_tests::util::free_tcp_port();
    let n = notifier(receivers(&format!(
        r#"[{{"name": "mail", "email": {{"smarthost": "127.0.0.1:{port}", "tls": "none", "from": "nw@example.net", "to": ["noc@example.net"]}}}}]"#
    )));
    let e = n
        .send(&notification("mail", NotificationKind::Firing, vec![alert("leaf1", "eth1", Severity::Major)]))
        .await
        .unwrap_err();
    assert!(e.is_transient(), "{e}");
    assert!(e.to_string().starts_with(&format!("receiver mail: SMTP to 127.0.0.1:{port}: ")), "{e}");
}

// ---------------------------------------------------------------------------------------------------------------
// E-mail over TLS: STARTTLS (no downgrade) and implicit TLS, a private CA trusted through ca_file, AUTH.

/// An e-mail receiver named `mail` as in the alerting file; `extra` adds fields (`"ca_file": …`).
fn tls_mail_receiver(port: u16, tls: &str, password_file: &std::path::Path, extra: &str) -> Vec<ReceiverConfig> {
    receivers(&format!(
        r#"[{{"name": "mail", "email": {{"smarthost": "127.0.0.1:{port}", "tls": "{tls}", "username": "noc",
             "password": {{"file": "{}"}}, "from": "netwarden <nw@example.net>",
             "to": ["noc@example.net", "Ops <ops@example.net>"]{extra}}}}}]"#,
        password_file.display()
    ))
}

/// The password as operators keep it: in a file (with the trailing newline an editor leaves).
fn password_file(dir: &std::path::Path, password: &str) -> std::path::PathBuf {
    let p = dir.join("smtp-password");
    std::fs::write(&p, format!("{password}\n")).unwrap();
    p
}

/// Checks a message received over TLS from `tls_mail_receiver`, as the notification said.
fn check_tls_mail(mail: &Value, note: &Notification) {
    let version = mail["tls_version"].as_str().unwrap_or_default();
    assert!(version == "TLSv1.3" || version == "TLSv1.2", "the message came over TLS: {mail:#}");
    assert_eq!(mail["authenticated_as"], "noc");
    assert_eq!(mail["subject"], rules::notify::email::subject(note));
    assert_eq!(mail["from"], "netwarden <nw@example.net>");
    assert_eq!(mail["to"], "noc@example.net, Ops <ops@example.net>");
    assert_eq!(mail["mail_from"], "nw@example.net");
    assert_eq!(mail["rcpt_tos"], json!(["noc@example.net", "ops@example.net"]));
    assert_eq!(mail["content_type"], "multipart/alternative");
    let parts = mail["parts"].as_array().unwrap();
    assert_eq!(
        parts.iter().map(|p| p["content_type"].as_str().unwrap()).collect::<Vec<_>>(),
        ["text/plain", "text/html"]
    );
    assert_eq!(parts[0]["text"].as_str().unwrap().replace("\r\n", "\n"), rules::notify::email::text_body(note));
    assert_eq!(parts[1]["text"].as_str().unwrap().replace("\r\n", "\n"), rules::notify::email::html_body(note));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_over_starttls_with_auth_reaches_a_server_with_a_certificate_from_a_trusted_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate("netwarden test CA");
    let smtp = SmtpServer::start_with(SmtpServerOptions {
        auth: Some(("noc", "starttls-pass-7Qx")),
        tls: SmtpServerTls::Starttls(&pki),
    });
    let secret = password_file(dir.path(), "starttls-pass-7Qx");
    let configs = tls_mail_receiver(smtp.port, "starttls", &secret, &format!(r#", "ca_file": "{}""#, pki.ca.display()));
    let debug = format!("{configs:?}");
    assert!(!debug.contains("starttls-pass-7Qx"), "{debug}");
    let n = notifier(configs);
    let note = notification(
        "mail",
        NotificationKind::Firing,
        vec![alert("leaf1", "eth1", Severity::Critical), alert("leaf1", "eth2", Severity::Minor)],
    );
    let delivered = n.send(&note).await.expect("sending over STARTTLS");
    assert_eq!(delivered.status, Some(250));
    let mail = smtp.wait_for_messages(1, WAIT).remove(0);
    check_tls_mail(&mail, &note);
    assert_eq!(mail["subject"], "[CRITICAL] [FIRING:2] InterfaceDown leaf1");
    assert_eq!(smtp.auth_attempts(), [json!({"mechanism": "PLAIN", "login": "noc", "success": true})]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_over_implicit_tls_with_auth_reaches_a_server_with_a_certificate_from_a_trusted_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate("netwarden test CA");
    let smtp = SmtpServer::start_with(SmtpServerOptions {
        auth: Some(("noc", "smtps-pass-3Kv")),
        tls: SmtpServerTls::Implicit(&pki),
    });
    let secret = password_file(dir.path(), "smtps-pass-3Kv");
    let n = notifier(tls_mail_receiver(smtp.port, "tls", &secret, &format!(r#", "ca_file": "{}""#, pki.ca.display())));
    let mut resolved = alert("spine1", "eth9", Severity::Major);
    resolved.state = AlertState::Resolved;
    resolved.ends_at = Some(Utc::now());
    let note = notification("mail", NotificationKind::Resolved, vec![resolved]);
    assert_eq!(n.send(&note).await.expect("sending over implicit TLS").status, Some(250));
    let mail = smtp.wait_for_messages(1, WAIT).remove(0);
    check_tls_mail(&mail, &note);
    assert_eq!(mail["subject"], "[MAJOR] [RESOLVED] InterfaceDown spine1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_with_starttls_refuses_a_server_that_does_not_offer_it_before_sending_the_password() {
    let dir = tempfile::tempdir().unwrap();
    // The server takes AUTH in plain text; netwarden must not fall back to it.
    let smtp = SmtpServer::start(Some(("noc", "plain-pass-9Zr")));
    let secret = password_file(dir.path(), "plain-pass-9Zr");
    let n = notifier(tls_mail_receiver(smtp.port, "starttls", &secret, ""));
    let note = notification("mail", NotificationKind::Firing, vec![alert("leaf1", "eth1", Severity::Major)]);
    let e = n.send(&note).await.unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "receiver mail: SMTP to 127.0.0.1:{}: the server does not offer STARTTLS; with tls: starttls nothing is \
             sent in plain text (no login, no message)",
            smtp.port
        )
    );
    assert!(!e.is_transient(), "a server without STARTTLS needs someone to change something: {e}");
    assert!(smtp.auth_attempts().is_empty(), "the password was offered in plain text: {:?}", smtp.auth_attempts());
    assert!(smtp.messages().is_empty(), "a message went out in plain text: {:#?}", smtp.messages());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_refuses_a_certificate_it_does_not_trust_over_starttls_and_implicit_tls() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate("netwarden test CA");
    let other = TestPki::generate("some other CA");
    let secret = password_file(dir.path(), "untrusted-pass-4Wd");
    let auth = Some(("noc", "untrusted-pass-4Wd"));
    let starttls = SmtpServer::start_with(SmtpServerOptions { auth, tls: SmtpServerTls::Starttls(&pki) });
    let implicit = SmtpServer::start_with(SmtpServerOptions { auth, tls: SmtpServerTls::Implicit(&pki) });
    let other_ca = format!(r#", "ca_file": "{}""#, other.ca.display());
    let note = notification("mail", NotificationKind::Firing, vec![alert("leaf1", "eth1", Severity::Major)]);
    for (server, tls, extra) in [
        (&starttls, "starttls", ""),
        (&starttls, "starttls", &*other_ca),
        (&implicit, "tls", ""),
        (&implicit, "tls", &other_ca),
    ] {
        let n = notifier(tls_mail_receiver(server.port, tls, &secret, extra));
        let e = n.send(&note).await.unwrap_err();
        let text = e.to_string();
        let case = format!("tls: {tls}, ca_file: {extra:?}");
        assert!(text.starts_with(&format!("receiver mail: SMTP to 127.0.0.1:{}: ", server.port)), "{case}: {text}");
        assert_eq!(
            text,
            format!(
                "receiver mail: SMTP to 127.0.0.1:{}: TLS: the server's certificate is not trusted (invalid peer \
                 certificate: UnknownIssuer); nothing was sent. If a private CA issued it, trust that CA with \
                 email.ca_file",
                server.port
            ),
            "{case}"
        );
        // Retried like any connection failure: the server's side may fix its certificate.
        assert!(e.is_transient(), "{case}: {text}");
    }
    assert!(starttls.auth_attempts().is_empty() && implicit.auth_attempts().is_empty(), "a password was sent");
    assert!(starttls.messages().is_empty() && implicit.messages().is_empty(), "a message was sent");
}

/// `netwarden serve` with three e-mail receivers sharing one password file: one that works (STARTTLS, AUTH, the
/// private CA in ca_file), one without ca_file and one pointed at a server without STARTTLS. A link failure mails
/// the first; the others' attempts are recorded with what went wrong; the password shows nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_mails_over_starttls_records_tls_failures_and_never_shows_the_password() {
    let password = "serve-pass-R2d8";
    let dir = tempfile::tempdir().unwrap();
    let tdb = netwarden_tests::pg::fresh_db();
    let (fabric, inventory) = serve::fabric("spines=1,leaves=1", dir.path()).await;
    let pki = TestPki::generate("netwarden test CA");
    let (tls_server, plain_server) = tokio::task::block_in_place(|| {
        let auth = Some(("noc", password));
        (
            SmtpServer::start_with(SmtpServerOptions { auth, tls: SmtpServerTls::Starttls(&pki) }),
            SmtpServer::start(auth),
        )
    });
    let secret = password_file(dir.path(), password);
    let mail = |name: &str, port: u16, extra: &str| {
        format!(
            "  - name: {name}\n    email: {{smarthost: \"127.0.0.1:{port}\", tls: starttls, username: noc, password: \
             {{file: \"{}\"}}, from: \"netwarden <nw@example.net>\", to: [\"noc@example.net\"]{extra}}}\n",
            secret.display()
        )
    };
    let alerting = format!(
        "rule_files: [builtin]\nreceivers:\n{}{}{}route:\n  receiver: mail\n  group_wait: 0s\n  {}\n  routes:\n\
         \x20   - {{match: ['alertname=\"InterfaceDown\"'], receiver: mail, continue: true}}\n\
         \x20   - {{match: ['alertname=\"InterfaceDown\"'], receiver: mail-untrusted, continue: true}}\n\
         \x20   - {{match: ['alertname=\"InterfaceDown\"'], receiver: mail-no-starttls}}\n",
        mail("mail", tls_server.port, &format!(", ca_file: \"{}\"", pki.ca.display())),
        mail("mail-untrusted", tls_server.port, ""),
        mail("mail-no-starttls", plain_server.port, ""),
        serve::ROUTE_TIMERS,
    );
    let api_port = netwarden_tests::util::free_tcp_port();
    let config = serve::write_config(dir.path(), &tdb, api_port, &inventory, &alerting);
    let nw = serve::Netwarden::start(&config, api_port, dir.path().join("netwarden.log")).await;
    let api = &nw.api;

    fabric.inject(&collector::sim::Fault::LinkDown { a: "leaf001".into(), b: "spine1".into() }).unwrap();
    api.wait_alerts("InterfaceDown", "both ends fire", |a| a.len() == 2 && a.iter().all(|x| x["state"] == "firing"))
        .await;
    // The working receiver: one message per device, over TLS, authenticated, multipart.
    let deadline = tokio::time::Instant::now() + serve::WAIT;
    let mails = loop {
        let mails: Vec<Value> = tls_server
            .messages()
            .into_iter()
            .filter(|m| m["subject"].as_str().unwrap_or("").contains("InterfaceDown"))
            .collect();
        if mails.len() >= 2 {
            break mails;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "mails: {mails:#?}\n{}",
            netwarden_tests::util::tail(&nw.log, 30)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let mut subjects: Vec<&str> = mails.iter().map(|m| m["subject"].as_str().unwrap()).collect();
    subjects.sort();
    assert_eq!(subjects, ["[MAJOR] [FIRING:1] InterfaceDown leaf001", "[MAJOR] [FIRING:1] InterfaceDown spine1"]);
    for m in &mails {
        assert!(m["tls_version"].as_str().is_some_and(|v| v.starts_with("TLSv1.")), "{m:#}");
        assert_eq!(m["authenticated_as"], "noc");
        assert_eq!(
            (m["from"].as_str(), m["to"].as_str()),
            (Some("netwarden <nw@example.net>"), Some("noc@example.net"))
        );
        let parts: Vec<&str> =
            m["parts"].as_array().unwrap().iter().map(|p| p["content_type"].as_str().unwrap()).collect();
        assert_eq!(parts, ["text/plain", "text/html"], "{m:#}");
        assert!(m["parts"][0]["text"].as_str().unwrap().contains("is down"), "{m:#}");
    }
    // The other two: every attempt is recorded with its error; nothing reached their servers' AUTH.
    let failures = |receiver: &'static str, expected: &'static str| async move {
        let deadline = tokio::time::Instant::now() + serve::WAIT;
        loop {
            let rows = api.get(&format!("/api/v1/notifications?receiver={receiver}")).await;
            let errors: Vec<String> = rows
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|r| r["attempt_log"].as_array().cloned().unwrap_or_default())
                .filter_map(|a| a["error"].as_str().map(str::to_string))
                .collect();
            if errors.len() >= 2 {
                for e in &errors {
                    assert!(e.starts_with(&format!("receiver {receiver}: SMTP to 127.0.0.1:")), "{e}");
                    assert!(e.contains(expected), "{receiver}: {e}");
                }
                return rows;
            }
            assert!(tokio::time::Instant::now() < deadline, "{receiver}: {rows:#}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    let untrusted = failures(
        "mail-untrusted",
        "TLS: the server's certificate is not trusted (invalid peer certificate: UnknownIssuer)",
    )
    .await;
    let no_starttls = failures("mail-no-starttls", "the server does not offer STARTTLS").await;
    assert!(no_starttls.as_array().unwrap().iter().all(|r| r["state"] == "failed"), "not retried: {no_starttls:#}");
    let attempts: Vec<Value> =
        untrusted.as_array().unwrap().iter().flat_map(|r| r["attempt_log"].as_array().cloned().unwrap()).collect();
    assert!(attempts.iter().all(|a| a["outcome"] == "transient"), "retried: {untrusted:#}");
    assert!(plain_server.auth_attempts().is_empty() && plain_server.messages().is_empty());
    assert!(tls_server.auth_attempts().iter().all(|a| a["success"] == true), "{:?}", tls_server.auth_attempts());

    // The password: not in any notification or attempt the API returns, not in the service's log.
    let all = api.get("/api/v1/notifications?limit=1000").await.to_string();
    assert!(all.contains("mail-untrusted") && !all.contains(password), "the API shows the password");
    let alerts = api.get("/api/v1/alerts").await.to_string();
    assert!(!alerts.contains(password));
    let log = std::fs::read_to_string(&nw.log).unwrap();
    assert!(log.contains("notification attempt"), "the log records attempts: {log}");
    assert!(!log.contains(password), "the log shows the password");
}

// ---------------------------------------------------------------------------------------------------------------
// Alertmanager as a real peer, both directions.

/// The structure of a JSON value: objects keep their keys, arrays their first element, scalars become their type.
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, v)| (k.clone(), shape(v))).collect()),
        Value::Array(a) => Value::Array(a.first().map(shape).into_iter().collect()),
        Value::String(_) => json!("string"),
        Value::Number(_) => json!("number"),
        Value::Bool(_) => json!("bool"),
        Value::Null => json!("null"),
    }
}

async fn am_alerts(http: &reqwest::Client, am: &Alertmanager) -> Vec<Value> {
    let resp = http.get(format!("{}/api/v2/alerts", am.url())).send().await.expect("GET /api/v2/alerts");
    assert!(resp.status().is_success(), "GET /api/v2/alerts: {}", resp.status());
    resp.json().await.expect("Alertmanager's alerts as JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alertmanager_takes_pushed_alerts_and_its_webhook_payload_has_netwardens_structure() {
    let capture = CaptureServer::start(Reply::Status(200, String::new()), None).await;
    let am = Alertmanager::start(&capture.url("/from-alertmanager"));
    let n = notifier(receivers(&format!(
        r#"[{{"name": "am", "alertmanager": {{"url": "{}"}}}},
            {{"name": "hook", "webhook": {{"url": "{}", "bearer_token": "hook-token"}}}}]"#,
        am.url(),
        capture.url("/from-netwarden")
    )));
    let http =
        reqwest::Client::builder().tls_backend_preconfigured(rules::notify::tls_client_config()).build().unwrap();

    // (a) Push a firing alert; Alertmanager lists it. Alertmanager may still be starting: retry connection errors.
    let firing = notification("am", NotificationKind::Firing, vec![alert("leaf1", "eth1", Severity::Critical)]);
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        match n.send(&firing).await {
            Ok(d) => {
                assert_eq!(d.status, Some(200));
                break;
            }
            Err(e) if e.is_transient() && tokio::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => panic!("pushing to Alertmanager: {e}"),
        }
    }
    let listed = am_alerts(&http, &am).await;
    assert_eq!(listed.len(), 1, "{listed:#?}");
    assert_eq!(listed[0]["labels"], json!(firing.alerts[0].labels));
    assert_eq!(listed[0]["annotations"], json!(firing.alerts[0].annotations));
    assert_eq!(listed[0]["generatorURL"], firing.alerts[0].url);
    assert_eq!(listed[0]["status"]["state"], "active");

    // (b) Alertmanager's own webhook v4 payload for it, and netwarden's for the same alert.
    let theirs = capture.wait_for("/from-alertmanager", 1, WAIT).await.remove(0);
    let mut as_hook = firing.clone();
    as_hook.receiver = "hook".into();
    n.send(&as_hook).await.expect("netwarden's webhook");
    let ours = capture.wait_for("/from-netwarden", 1, WAIT).await.remove(0);
    assert_eq!(ours.header("authorization"), Some("Bearer hook-token"));
    assert_eq!(ours.header("content-type"), Some("application/json"));
    assert_eq!(shape(&ours.body), shape(&theirs.body), "ours: {:#}\nAlertmanager's: {:#}", ours.body, theirs.body);
    for key in ["status", "version", "groupLabels", "commonLabels", "commonAnnotations", "truncatedAlerts"] {
        assert_eq!(ours.body[key], theirs.body[key], "{key}");
    }
    for key in ["status", "labels", "annotations", "endsAt", "generatorURL"] {
        assert_eq!(ours.body["alerts"][0][key], theirs.body["alerts"][0][key], "alerts[0].{key}");
    }

    // Resolve: Alertmanager takes the end time and sends its resolved notification, again of the same structure.
    let mut resolved = firing.clone();
    resolved.kind = NotificationKind::Resolved;
    resolved.alerts[0].state = AlertState::Resolved;
    resolved.alerts[0].ends_at = Some(Utc::now());
    assert_eq!(n.send(&resolved).await.expect("pushing the resolved alert").status, Some(200));
    // Alertmanager no longer lists it as active (0.25 leaves resolved alerts out of the list altogether).
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let listed = am_alerts(&http, &am).await;
        if listed.iter().all(|a| a["status"]["state"] != "active") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "Alertmanager still lists the alert as active: {listed:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let theirs = capture.wait_for("/from-alertmanager", 2, WAIT).await.remove(1);
    assert_eq!(theirs.body["status"], "resolved", "{:#}", theirs.body);
    resolved.receiver = "hook".into();
    n.send(&resolved).await.expect("netwarden's resolved webhook");
    let ours = capture.wait_for("/from-netwarden", 2, WAIT).await.remove(1);
    assert_eq!(shape(&ours.body), shape(&theirs.body), "ours: {:#}\nAlertmanager's: {:#}", ours.body, theirs.body);
    assert_eq!(ours.body["status"], "resolved");
    assert_eq!(ours.body["alerts"][0]["status"], theirs.body["alerts"][0]["status"]);
}

// ---------------------------------------------------------------------------------------------------------------
// SaaS stand-ins that check the published formats, through the outbox.

/// A fresh, migrated database and a pool over it.
async fn outbox_db() -> (TestDb, deadpool_postgres::Pool) {
    let test_db = fresh_db();
    let mut c = test_db.connect().await;
    db::migrate(&mut c, BackendChoice::Partitioned).await.expect("migrate");
    let pool = db::connect(&test_db.connection_string, 8).await.expect("pool");
    (test_db, pool)
}

fn fast_worker() -> WorkerOptions {
    WorkerOptions {
        concurrency: 4,
        poll_interval: Duration::from_millis(500),
        backoff_base: Duration::from_millis(50),
        backoff_cap: Duration::from_secs(1),
        shutdown_grace: Duration::ZERO,
        ..WorkerOptions::default()
    }
}

async fn enqueue(pool: &deadpool_postgres::Pool, n: &Notification) -> i64 {
    let c = pool.get().await.unwrap();
    outbox::enqueue(&**c, n).await.expect("enqueue")
}

/// Waits until outbox row `id` is in `state`; panics with the row after `WAIT`.
async fn wait_state(pool: &deadpool_postgres::Pool, id: i64, state: OutboxState) -> OutboxEntry {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let c = pool.get().await.unwrap();
        let e = outbox::get(&**c, id).await.expect("reading the outbox").expect("the row exists");
        if e.state == state {
            return e;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "outbox row {id} did not become {state:?} within {WAIT:?}: {e:#?}"
        );
        drop(c);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn outcomes(e: &OutboxEntry) -> Vec<(AttemptOutcome, Option<i32>)> {
    e.attempt_log.iter().map(|a| (a.outcome, a.http_status)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pagerduty_events_match_the_schema_and_throttling_and_server_errors_are_retried() {
    let (_db, pool) = outbox_db().await;
    let pd = CaptureServer::start(
        Reply::Status(202, r#"{"status":"success","message":"Event processed"}"#.into()),
        Some(Box::new(pagerduty_validator())),
    )
    .await;
    pd.script([Reply::TooManyRequests { retry_after_secs: 1 }, Reply::Status(500, "oops".into())]);
    let n = notifier(receivers(&format!(
        r#"[{{"name": "pager", "pagerduty": {{"routing_key": "0123456789abcdef0123456789abcdef", "url": "{}"}}}}]"#,
        pd.url("/v2/enqueue")
    )));
    let opts = fast_worker();
    let wake = opts.wake.clone();
    let cancel = CancellationToken::new();
    let worker = outbox::spawn(pool.clone(), n, opts, cancel.clone());

    let note = notification("pager", NotificationKind::Firing, vec![alert("leaf1", "eth1", Severity::Critical)]);
    let id = enqueue(&pool, &note).await;
    wake.notify_one();
    let done = wait_state(&pool, id, OutboxState::Delivered).await;
    assert_eq!(
        outcomes(&done),
        [
            (AttemptOutcome::Transient, Some(429)),
            (AttemptOutcome::Transient, Some(500)),
            (AttemptOutcome::Ok, Some(202))
        ]
    );
    assert_eq!(done.attempts, 3);
    assert!(done.delivered_at.is_some() && done.last_error.is_none() && done.claimed_until.is_none());
    let got = pd.requests();
    assert_eq!(got.len(), 3);
    for r in &got {
        assert!(r.problems.is_empty(), "PagerDuty would not take {:#}: {:?}", r.body, r.problems);
        assert_eq!(r.body["event_action"], "trigger");
        assert_eq!(r.body["dedup_key"], note.alerts[0].fingerprint);
        assert_eq!(r.body["payload"]["severity"], "critical");
    }

    // Resolving sends a resolve for the same dedup key.
    let mut resolved = note.clone();
    resolved.kind = NotificationKind::Resolved;
    resolved.alerts[0].state = AlertState::Resolved;
    let id = enqueue(&pool, &resolved).await;
    wake.notify_one();
    wait_state(&pool, id, OutboxState::Delivered).await;
    let last = pd.requests().pop().unwrap();
    assert!(last.problems.is_empty(), "{:?}", last.problems);
    assert_eq!(
        last.body,
        json!({"routing_key": "0123456789abcdef0123456789abcdef", "event_action": "resolve", "dedup_key": note.alerts[0].fingerprint})
    );
    cancel.cancel();
    worker.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slack_messages_follow_block_kit_and_a_bad_request_is_not_retried() {
    let (_db, pool) = outbox_db().await;
    let slack = CaptureServer::start(Reply::Status(200, "ok".into()), Some(Box::new(slack_validator()))).await;
    slack.script([Reply::Status(400, "invalid_blocks".into())]);
    let n = notifier(receivers(&format!(
        r##"[{{"name": "chat", "slack": {{"webhook_url": "{}", "channel": "#noc"}}}}]"##,
        slack.url("/services/T000/B000/XXXX")
    )));
    let opts = fast_worker();
    let wake = opts.wake.clone();
    let cancel = CancellationToken::new();
    let worker = outbox::spawn(pool.clone(), n, opts, cancel.clone());

    let alerts: Vec<AlertSnapshot> = (0..60).map(|i| alert("leaf1", &format!("eth{i}"), Severity::Major)).collect();
    let rejected = enqueue(&pool, &notification("chat", NotificationKind::Firing, alerts.clone())).await;
    wake.notify_one();
    let failed = wait_state(&pool, rejected, OutboxState::Failed).await;
    assert_eq!(outcomes(&failed), [(AttemptOutcome::Permanent, Some(400))]);
    let error = failed.last_error.unwrap();
    assert!(error.contains("HTTP 400: invalid_blocks"), "{error}");
    assert!(!error.contains("XXXX"), "the webhook URL is a secret: {error}");

    let accepted = enqueue(&pool, &notification("chat", NotificationKind::Firing, alerts)).await;
    wake.notify_one();
    let delivered = wait_state(&pool, accepted, OutboxState::Delivered).await;
    assert_eq!(outcomes(&delivered), [(AttemptOutcome::Ok, Some(200))]);
    let got = slack.requests();
    assert_eq!(got.len(), 2, "the 400 was not retried");
    for r in &got {
        assert!(r.problems.is_empty(), "Slack would not take {:#}: {:?}", r.body, r.problems);
    }
    let body = &got[1].body;
    assert_eq!(body["channel"], "#noc");
    assert_eq!(body["attachments"][0]["color"], "danger");
    assert_eq!(body["blocks"].as_array().unwrap().len(), 50);
    assert_eq!(body["blocks"][48]["text"]["text"], "…and 13 more");
    cancel.cancel();
    worker.await.unwrap();
}

// ---------------------------------------------------------------------------------------------------------------
// Durability.

fn hook_notifier(capture: &CaptureServer) -> Arc<Notifier> {
    notifier(receivers(&format!(r#"[{{"name": "hook", "webhook": {{"url": "{}"}}}}]"#, capture.url("/hook"))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolled_back_enqueue_is_never_sent() {
    let (_db, pool) = outbox_db().await;
    let capture = CaptureServer::start(Reply::Status(200, String::new()), None).await;
    let opts = fast_worker();
    let wake = opts.wake.clone();
    let cancel = CancellationToken::new();
    let worker = outbox::spawn(pool.clone(), hook_notifier(&capture), opts, cancel.clone());

    let mut c = pool.get().await.unwrap();
    let tx = c.transaction().await.unwrap();
    outbox::enqueue(
        &*tx,
        &notification("hook", NotificationKind::Firing, vec![alert("rolled-back", "eth1", Severity::Major)]),
    )
    .await
    .unwrap();
    tx.rollback().await.unwrap();
    wake.notify_one();
    let tx = c.transaction().await.unwrap();
    let committed = outbox::enqueue(
        &*tx,
        &notification("hook", NotificationKind::Firing, vec![alert("committed", "eth1", Severity::Major)]),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    wake.notify_one();
    wait_state(&pool, committed, OutboxState::Delivered).await;

    let got = capture.requests();
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].body["groupLabels"]["device"], "committed");
    let all = outbox::list(&**c, &outbox::OutboxQuery::default()).await.unwrap();
    assert_eq!(all.iter().map(|e| e.id).collect::<Vec<_>>(), [committed]);
    cancel.cancel();
    worker.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_send_cut_off_by_shutdown_is_delivered_by_the_next_worker_after_the_lease() {
    let (_db, pool) = outbox_db().await;
    let capture = CaptureServer::start(Reply::Status(200, String::new()), None).await;
    capture.script([Reply::Hang]);
    let notifier = hook_notifier(&capture);
    let lease = Duration::from_secs(2);
    let opts = WorkerOptions { lease, send_timeout: Duration::from_secs(60), ..fast_worker() };
    let cancel = CancellationToken::new();
    let first = outbox::spawn(pool.clone(), notifier.clone(), opts.clone(), cancel.clone());
    let id =
        enqueue(&pool, &notification("hook", NotificationKind::Firing, vec![alert("leaf1", "eth1", Severity::Major)]))
            .await;
    opts.wake.notify_one();

    // The receiver has the request and hangs; the worker is stopped mid-send (as if the process died).
    capture.wait_for("/hook", 1, WAIT).await;
    cancel.cancel();
    first.await.unwrap();
    let c = pool.get().await.unwrap();
    let stuck = outbox::get(&**c, id).await.unwrap().unwrap();
    assert_eq!(stuck.state, OutboxState::Delivering, "{stuck:#?}");
    assert!(stuck.claimed_until.is_some() && stuck.attempt_log.is_empty(), "{stuck:#?}");

    // A new worker finds the row once the lease has expired and delivers it.
    let cancel = CancellationToken::new();
    let second = outbox::spawn(pool.clone(), notifier, WorkerOptions { lease, ..fast_worker() }, cancel.clone());
    let done = wait_state(&pool, id, OutboxState::Delivered).await;
    assert_eq!(outcomes(&done), [(AttemptOutcome::Ok, Some(200))]);
    assert_eq!(done.attempts, 2, "two claims: the abandoned one and the delivery");
    assert!(done.delivered_at.unwrap() >= stuck.claimed_until.unwrap(), "not before the lease expired");
    assert_eq!(capture.requests().len(), 2, "at least once: the cut-off send and the delivery");
    cancel.cancel();
    second.await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_rows_are_delivered_after_a_restart_exactly_once_across_two_workers() {
    let (_db, pool) = outbox_db().await;
    let capture = CaptureServer::start(Reply::Status(200, String::new()), None).await;
    // Enqueued while no worker runs (before a restart).
    let mut ids = Vec::new();
    for i in 0..30 {
        let n =
            notification("hook", NotificationKind::Firing, vec![alert(&format!("leaf{i}"), "eth1", Severity::Minor)]);
        ids.push(enqueue(&pool, &n).await);
    }
    let notifier = hook_notifier(&capture);
    let cancel = CancellationToken::new();
    let workers = [
        outbox::spawn(pool.clone(), notifier.clone(), fast_worker(), cancel.clone()),
        outbox::spawn(pool.clone(), notifier, fast_worker(), cancel.clone()),
    ];
    for &id in &ids {
        let e = wait_state(&pool, id, OutboxState::Delivered).await;
        assert_eq!((e.attempts, outcomes(&e)), (1, vec![(AttemptOutcome::Ok, Some(200))]), "{e:#?}");
    }
    let mut devices: Vec<String> =
        capture.requests().iter().map(|r| r.body["groupLabels"]["device"].as_str().unwrap().to_string()).collect();
    assert_eq!(devices.len(), 30, "one request per row");
    devices.sort();
    devices.dedup();
    assert_eq!(devices.len(), 30, "no row sent twice");
    cancel.cancel();
    for w in workers {
        w.await.unwrap();
    }
    let c = pool.get().await.unwrap();
    let listed = outbox::list(
        &**c,
        &outbox::OutboxQuery { state: Some(OutboxState::Delivered), receiver: Some("hook".into()), limit: 5 },
    )
    .await
    .unwrap();
    assert_eq!(listed.iter().map(|e| e.id).collect::<Vec<_>>(), ids.iter().rev().take(5).copied().collect::<Vec<_>>());
    assert!(listed.iter().all(|e| e.attempt_log.len() == 1));
}
