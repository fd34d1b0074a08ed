//! The `netwarden` binary's command line, without a database: argument errors and `poll`
//! failures are clear and exit non-zero.

use std::process::Command;

fn netwarden(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_netwarden")).args(args).output().expect("run netwarden");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn help_lists_the_verbs() {
    let (code, out, _) = netwarden(&["--help"]);
    assert_eq!(code, 0);
    for verb in ["serve", "migrate", "poll", "inventory"] {
        assert!(out.contains(verb), "--help lacks {verb}:\n{out}");
    }
}

#[test]
fn poll_without_credentials_says_what_is_missing() {
    let (code, _, err) = netwarden(&["poll", "127.0.0.1:1"]);
    assert_ne!(code, 0);
    assert!(err.contains("--community") && err.contains("--v3-user"), "{err}");
}

#[test]
fn poll_rejects_an_unknown_auth_protocol() {
    let (code, _, err) =
        netwarden(&["poll", "127.0.0.1:1", "--v3-user", "u", "--auth", "SHA-999", "--auth-password", "12345678"]);
    assert_ne!(code, 0);
    assert!(err.contains("SHA-999") && err.contains("SHA-256"), "{err}");
}

#[test]
fn poll_of_a_closed_port_names_the_failure() {
    let port = std::net::UdpSocket::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let (code, _, err) =
        netwarden(&["poll", &format!("127.0.0.1:{port}"), "--community", "public", "--timeout", "300ms"]);
    assert_eq!(code, 2);
    assert!(err.contains("poll failed (network)") || err.contains("poll failed (timeout)"), "{err}");
}
