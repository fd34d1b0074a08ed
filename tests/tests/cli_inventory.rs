//! `netwarden migrate` and `netwarden inventory import/export` as a user runs them, against a
//! real database: a bad file is rejected whole with every line named; secrets stay out of
//! exports unless asked for.

use netwarden_tests::pg;
use std::path::PathBuf;
use std::process::Command;

/// The `netwarden` binary cargo built next to this test (the api package's tests build it).
fn netwarden_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let bin = dir.join("netwarden");
    assert!(bin.exists(), "{} not built (cargo test --workspace builds it)", bin.display());
    bin
}

fn run(tdb: &pg::TestDb, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(netwarden_bin())
        .args(args)
        .env("NETWARDEN_DATABASE__URL", &tdb.connection_string)
        .env("NETWARDEN_SECRET_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=")
        .env("NETWARDEN_LOG", "warn")
        .current_dir(std::env::temp_dir())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

fn testdata(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../collector/testdata/inventory").join(name).display().to_string()
}

#[test]
fn import_rejects_a_bad_file_whole_and_export_hides_secrets() {
    let tdb = pg::fresh_db();
    let (code, out, err) = run(&tdb, &["migrate"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("storage back-end: partitioned"), "{out}");

    let (code, _, err) = run(&tdb, &["inventory", "import", &testdata("bad.yaml")]);
    assert_ne!(code, 0);
    assert!(err.contains("bad.yaml:5:") && err.contains("SHA-999"), "errors name file, line and value:\n{err}");
    let (_, out, _) = run(&tdb, &["inventory", "export"]);
    assert!(!out.contains("name:"), "nothing of a bad file is applied:\n{out}");

    let (code, out, err) = run(&tdb, &["inventory", "import", &testdata("good.yaml")]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("created"), "{out}");
    let good = std::fs::read_to_string(testdata("good.yaml")).unwrap();

    let (code, out, _) = run(&tdb, &["inventory", "export"]);
    assert_eq!(code, 0);
    for secret_key in ["community:", "password:", "auth_password", "priv_password"] {
        assert!(!out.contains(secret_key), "export without --with-secrets leaks {secret_key}:\n{out}");
    }
    let (_, with, _) = run(&tdb, &["inventory", "export", "--with-secrets"]);
    assert!(with.contains("community:") || with.contains("auth_password"), "{with}");
    // Every device of the file is there.
    for line in good.lines().filter_map(|l| l.trim().strip_prefix("- name: ")) {
        assert!(out.contains(line.trim()), "{line} missing from export");
    }
    let (code, csv, _) = run(&tdb, &["inventory", "export", "--format", "csv"]);
    assert_eq!(code, 0);
    assert!(csv.starts_with("name,address,"), "{csv}");
}
