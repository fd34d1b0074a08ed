//! `netwarden rules check` and `netwarden rules test` as an operator runs them: the shipped pack
//! checks and passes its tests; a broken rule file reports every error with file and line and
//! exits 1; a failing rule test says which expectation failed and where.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `netwarden` binary cargo built next to this test (the api package's tests build it).
fn netwarden_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join("netwarden");
    assert!(bin.exists(), "{} not built (cargo test --workspace builds it)", bin.display());
    bin
}

fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(netwarden_bin()).args(args).env("NETWARDEN_LOG", "warn").output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn builtin_tests() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../rules/builtin/rules.test.yaml").display().to_string()
}

#[test]
fn the_builtin_pack_checks_and_passes_its_tests() {
    let (code, out, err) = run(&["rules", "check", "builtin"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("ok: "), "{out}");
    let (code, out, err) = run(&["rules", "test", &builtin_tests()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(" passed, 0 failed"), "{out}");
}

#[test]
fn a_broken_rule_file_reports_every_error_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.yaml");
    std::fs::write(
        &file,
        "rules:\n  - name: Hot\n    source: interface\n    when: utilisation >\n    severity: warning\n  - name: Cold\n    source: fridge\n    when: 'true'\n    severity: info\n",
    )
    .unwrap();
    let f = file.display().to_string();
    let (code, out, err) = run(&["rules", "check", &f, "builtin"]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains(&format!("{f}:4: rule \"Hot\": when:")), "{err}");
    assert!(err.contains(&format!("{f}:7: rule \"Cold\": source: unknown source \"fridge\"")), "{err}");
    assert!(err.contains("2 error(s)"), "{err}");
}

#[test]
fn a_failing_rule_test_names_the_expectation() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.yaml");
    std::fs::write(
        &file,
        "rule_files: [builtin]\ntests:\n  - name: wrong on purpose\n    series:\n      - source: device\n        device: d1\n        values:\n          - {at: 0s, status: down}\n    alerts:\n      - at: 1m\n",
    )
    .unwrap();
    let (code, out, err) = run(&["rules", "test", &file.display().to_string()]);
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("FAIL"), "{out}");
    assert!(out.contains(":10: at 1m: firing alerts differ"), "{out}");
    assert!(out.contains("alertname=DeviceDown"), "{out}");
}

/// The alerting file shown in the README compiles; a broken one reports every mistake.
#[test]
fn the_readme_alerting_file_checks_and_mistakes_are_all_reported() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let start = readme.find("# alerting.yaml").expect("the README shows an alerting file");
    let yaml = &readme[start..start + readme[start..].find("```").unwrap()];
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("alerting.yaml");
    std::fs::write(&good, yaml).unwrap();
    let (code, out, err) = run(&["rules", "check-alerting", good.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("4 receiver(s)") && out.contains("1 maintenance window(s)"), "{out}");

    let bad = dir.path().join("bad.yaml");
    let broken = yaml.replace("receiver: pager,", "receiver: nobody,").replace("0 3 * * 0", "at three");
    std::fs::write(&bad, broken).unwrap();
    let (code, _, err) = run(&["rules", "check-alerting", bad.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(err.contains("unknown receiver \"nobody\"") && err.contains("at three"), "{err}");
    assert!(err.contains("2 error(s)"), "{err}");
}

#[test]
fn intent_files_are_checked_with_every_error_and_its_line() {
    let (code, out, err) = run(&["rules", "check-intents", "builtin"]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out.trim(), "ok: 3 intent(s) in 1 file(s)");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("intents.yaml");
    std::fs::write(
        &file,
        "intents:\n  - name: leaf-bgp-redundancy\n    require: {bgp_established: {min: 2}}\n  - name: uplinks\n    require:\n      lldp_neighbours: {min: 2}\n      bgp_established: {min: two}\n",
    )
    .unwrap();
    let f = file.display().to_string();
    let (code, out, err) = run(&["rules", "check-intents", "builtin", &f]);
    assert_eq!(code, 1, "{out}");
    assert!(err.contains(&format!("{f}:2: intent \"leaf-bgp-redundancy\" is already defined at builtin:")), "{err}");
    assert!(err.contains(&format!("{f}:6: intent \"uplinks\": require.lldp_neighbours: unknown check")), "{err}");
    assert!(err.contains(&format!("{f}:7: intent \"uplinks\": require.bgp_established: min: \"two\"")), "{err}");
    assert!(err.contains("3 error(s)"), "{err}");
}
