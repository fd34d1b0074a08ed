//! The migration runner: numbered SQL files from `migrations/`, applied once each, in order,
//! under an advisory lock, each in its own transaction.
//!
//! A file `NNNN_name.sql` applies on every back-end; `NNNN_name.partitioned.sql` and
//! `NNNN_name.timescaledb.sql` are the two physical forms of the same logical tables, and the
//! back-end chosen at the first migrate (recorded in `netwarden_meta`) picks one of them.

use std::collections::BTreeMap;

include!(concat!(env!("OUT_DIR"), "/migrations.rs"));

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Backend {
    Partitioned,
    TimescaleDb,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Partitioned => "partitioned",
            Backend::TimescaleDb => "timescaledb",
        }
    }
}

/// What the operator asked for (`storage.backend`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendChoice {
    /// TimescaleDB when the extension can be created, else native partitioning.
    #[default]
    Auto,
    Timescaledb,
    Partitioned,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct MigrateReport {
    pub backend: Backend,
    pub applied: Vec<String>,
    pub already_applied: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("migration {file}: {source}")]
    Apply { file: String, source: tokio_postgres::Error },
    #[error(
        "migration {file} was changed after it was applied (checksum {found} in the database, {expected} now); add a new migration instead"
    )]
    Changed { file: String, found: String, expected: String },
    #[error("migration {0} has no file for back-end {1}")]
    MissingVariant(String, &'static str),
    #[error("storage back-end timescaledb was requested but the extension is not available: {0}")]
    TimescaleUnavailable(String),
    #[error("database error during migrate: {0}")]
    Db(#[from] tokio_postgres::Error),
}

const LOCK_KEY: i64 = 0x6e77_6d69_6772; // "nwmigr"

/// One logical migration: its version, name and the file per back-end.
#[derive(Debug)]
struct Migration {
    version: i32,
    name: String,
    common: Option<(&'static str, &'static str)>,
    partitioned: Option<(&'static str, &'static str)>,
    timescaledb: Option<(&'static str, &'static str)>,
}

fn migrations() -> Vec<Migration> {
    let mut by_version: BTreeMap<i32, Migration> = BTreeMap::new();
    for &(file, sql) in MIGRATION_FILES {
        let stem = file.trim_end_matches(".sql");
        let (num, rest) = stem.split_once('_').expect("migration file named NNNN_name.sql");
        let version: i32 = num.parse().expect("migration file starts with a number");
        let (name, variant) = match rest.rsplit_once('.') {
            Some((n, v)) => (n, Some(v)),
            None => (rest, None),
        };
        let m = by_version.entry(version).or_insert_with(|| Migration {
            version,
            name: name.to_string(),
            common: None,
            partitioned: None,
            timescaledb: None,
        });
        let slot = match variant {
            None => &mut m.common,
            Some("partitioned") => &mut m.partitioned,
            Some("timescaledb") => &mut m.timescaledb,
            Some(other) => panic!("migration {file}: unknown variant {other}"),
        };
        if let Some((other, _)) = slot {
            panic!("two migrations numbered {version:04}: {other} and {file}; renumber one");
        }
        *slot = Some((file, sql));
    }
    by_version.into_values().collect()
}

/// The SQL files that only TimescaleDB runs, for syntax checks in tests.
pub fn timescaledb_sql() -> Vec<(&'static str, &'static str)> {
    migrations().into_iter().filter_map(|m| m.timescaledb).collect()
}

/// FNV-1a: a stable checksum (std's hasher is not stable across releases).
fn checksum(s: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// Applies every pending migration. Safe to run concurrently from several processes.
pub async fn migrate(
    client: &mut tokio_postgres::Client,
    choice: BackendChoice,
) -> Result<MigrateReport, MigrateError> {
    client.execute("SELECT pg_advisory_lock($1)", &[&LOCK_KEY]).await?;
    let result = migrate_locked(client, choice).await;
    // Unlock even on failure; the session ends anyway if this fails.
    let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY]).await;
    result
}

async fn migrate_locked(
    client: &mut tokio_postgres::Client,
    choice: BackendChoice,
) -> Result<MigrateReport, MigrateError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS netwarden_meta (key text PRIMARY KEY, value text NOT NULL);
             CREATE TABLE IF NOT EXISTS schema_migrations (
                 version integer PRIMARY KEY, name text NOT NULL, file text NOT NULL,
                 checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())",
        )
        .await?;
    let backend = backend(client, choice).await?;
    let applied: BTreeMap<i32, (String, String)> = client
        .query("SELECT version, file, checksum FROM schema_migrations", &[])
        .await?
        .into_iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    let mut report = MigrateReport { backend, applied: Vec::new(), already_applied: 0 };
    for m in migrations() {
        let (file, sql) = match (m.common, backend) {
            (Some(c), _) => c,
            (None, Backend::Partitioned) => {
                m.partitioned.ok_or(MigrateError::MissingVariant(m.name.clone(), "partitioned"))?
            }
            (None, Backend::TimescaleDb) => {
                m.timescaledb.ok_or(MigrateError::MissingVariant(m.name.clone(), "timescaledb"))?
            }
        };
        let sum = checksum(sql);
        if let Some((done_file, done_sum)) = applied.get(&m.version) {
            if *done_sum != sum {
                return Err(MigrateError::Changed { file: done_file.clone(), found: done_sum.clone(), expected: sum });
            }
            report.already_applied += 1;
            continue;
        }
        let tx = client.transaction().await?;
        tx.batch_execute(sql).await.map_err(|source| MigrateError::Apply { file: file.to_string(), source })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, file, checksum) VALUES ($1, $2, $3, $4)",
            &[&m.version, &m.name, &file, &sum],
        )
        .await?;
        tx.commit().await?;
        tracing::info!(file, backend = backend.as_str(), "migration applied");
        report.applied.push(file.to_string());
    }
    Ok(report)
}

/// The recorded back-end, or the one chosen now (and recorded).
async fn backend(client: &mut tokio_postgres::Client, choice: BackendChoice) -> Result<Backend, MigrateError> {
    if let Some(row) = client.query_opt("SELECT value FROM netwarden_meta WHERE key = 'storage_backend'", &[]).await? {
        let v: String = row.get(0);
        return Ok(if v == "timescaledb" { Backend::TimescaleDb } else { Backend::Partitioned });
    }
    let chosen = match choice {
        BackendChoice::Partitioned => Backend::Partitioned,
        BackendChoice::Auto | BackendChoice::Timescaledb => {
            let available: bool = client
                .query_one("SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')", &[])
                .await?
                .get(0);
            // The library must be preloaded: loading it into a backend otherwise ends the session
            // with FATAL, so check before trying. Not by reading shared_preload_libraries, which
            // only superusers and pg_read_all_settings may (any other role's first migrate would
            // fail): the preloaded loader defines timescaledb.max_background_workers, which every
            // role sees in pg_settings (a mere placeholder from postgresql.conf is not listed).
            let preloaded: bool = available
                && client
                    .query_one(
                        "SELECT EXISTS (SELECT 1 FROM pg_settings WHERE name = 'timescaledb.max_background_workers')",
                        &[],
                    )
                    .await?
                    .get::<_, bool>(0);
            let created = if available && !preloaded {
                Err("extension timescaledb is installed but not preloaded (shared_preload_libraries = 'timescaledb' in postgresql.conf)".to_string())
            } else if available {
                // Needs shared_preload_libraries; a failure here means "not usable", not fatal in auto.
                let tx = client.transaction().await?;
                match tx.batch_execute("CREATE EXTENSION IF NOT EXISTS timescaledb").await {
                    Ok(()) => {
                        tx.commit().await?;
                        Ok(())
                    }
                    Err(e) => Err(e.to_string()),
                }
            } else {
                Err("extension timescaledb is not installed on the server".to_string())
            };
            match (created, choice) {
                (Ok(()), _) => Backend::TimescaleDb,
                (Err(why), BackendChoice::Timescaledb) => return Err(MigrateError::TimescaleUnavailable(why)),
                (Err(why), _) => {
                    tracing::info!(reason = %why, "TimescaleDB not used; samples go to natively partitioned tables");
                    Backend::Partitioned
                }
            }
        }
    };
    client
        .execute("INSERT INTO netwarden_meta (key, value) VALUES ('storage_backend', $1)", &[&chosen.as_str()])
        .await?;
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_migration_has_a_file_for_both_backends() {
        let ms = migrations();
        assert!(!ms.is_empty());
        let mut expected = 1;
        for m in &ms {
            assert_eq!(m.version, expected, "migrations are numbered without holes");
            expected += 1;
            assert!(
                m.common.is_some() || (m.partitioned.is_some() && m.timescaledb.is_some()),
                "migration {} lacks a variant",
                m.name
            );
        }
    }
}
