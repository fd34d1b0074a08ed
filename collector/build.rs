//! Embeds every file of the workspace's `migrations/` directory, so adding a migration is
//! adding a file.

use std::{env, fs, path::PathBuf};

fn main() {
    let dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap()).join("../migrations");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut files: Vec<String> = fs::read_dir(&dir)
        .expect("migrations directory")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".sql"))
        .collect();
    files.sort();
    let mut out = String::from("pub(crate) static MIGRATION_FILES: &[(&str, &str)] = &[\n");
    for f in &files {
        let path = dir.join(f).canonicalize().unwrap();
        println!("cargo:rerun-if-changed={}", path.display());
        out.push_str(&format!("    ({f:?}, include_str!({:?})),\n", path.display().to_string()));
    }
    out.push_str("];\n");
    fs::write(PathBuf::from(env::var("OUT_DIR").unwrap()).join("migrations.rs"), out).unwrap();
}
