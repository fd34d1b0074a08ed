//! A private PostgreSQL cluster per test process, and a fresh database per test.
//!
//! The cluster is netwarden's own embedded default ([`collector::db::embedded::EmbeddedPostgres`]) in a temp dir,
//! with durability off (`fsync`, `synchronous_commit`, `full_page_writes`). It starts on the first
//! [`fresh_db`] call in a process and is shared by all tests (threads) of that process.
//!
//! Cleanup at exit: the test harness ends the process with `exit()`, which runs no destructors, so the cluster
//! cannot be stopped from a `Drop`. Instead a [`Watchdog`] starts with the cluster: a tiny `sh` that notices
//! when this process has exited, however it ended (normal exit, panic, SIGKILL, a nextest timeout), because its
//! stdin pipe closes. It then fast-stops the server (SIGINT to the postmaster), waits for it, and deletes the
//! temp dir. No `unsafe` (`atexit`) needed, and unlike `atexit` it also covers crashes.

use std::fs;
use std::os::unix::fs::{PermissionsExt, chown};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use collector::db::embedded::{EmbeddedOptions, EmbeddedPostgres};
use tokio_postgres::NoTls;

use crate::util::Watchdog;

/// A database of its own for one test; dropped (with any open connections) when this is dropped.
#[derive(Debug)]
pub struct TestDb {
    /// The database name, unique within the test process, e.g. `t3_fresh_db_gives_isolated_databases`.
    pub name: String,
    /// A tokio-postgres key/value connection string, e.g. `host=/tmp/nw-pg-x/data port=5432 user=postgres dbname=t3_x`.
    pub connection_string: String,
}

impl TestDb {
    /// The same connection as a `postgresql://` URL (the socket dir percent-encoded as the host).
    pub fn url(&self) -> String {
        let cluster = cluster();
        format!(
            "postgresql://postgres@{}:{}/{}",
            percent_encode(&cluster.server.socket_dir().to_string_lossy()),
            cluster.server.port(),
            percent_encode(&self.name)
        )
    }

    /// A connected client; its connection task runs on the current tokio runtime.
    pub async fn connect(&self) -> tokio_postgres::Client {
        let (client, connection) = tokio_postgres::connect(&self.connection_string, NoTls)
            .await
            .unwrap_or_else(|e| panic!("connecting to test database {}: {}", self.name, pg_error(&e)));
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // FORCE ends the test's own connections, which may outlive this value on the test's runtime.
        let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(&self.name));
        if let Err(e) = admin_execute(&cluster().server.connection_string(), &sql) {
            eprintln!("warning: dropping test database {}: {e}", self.name);
        }
    }
}

/// Creates a uniquely named, empty database in this process's private cluster, starting the cluster first if
/// this is the process's first call. Safe to call from any thread, inside or outside a tokio runtime.
pub fn fresh_db() -> TestDb {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let cluster = cluster();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let name = database_name(n, std::thread::current().name().unwrap_or("test"));
    let sql = format!("CREATE DATABASE {}", quote_ident(&name));
    if let Err(e) = admin_execute(&cluster.server.connection_string(), &sql) {
        panic!("creating test database {name}: {e}");
    }
    TestDb { connection_string: cluster.server.connection_string_for(&name), name }
}

/// The process's cluster (started on first use), e.g. for tests that need the `postgres` database itself.
pub fn server() -> &'static EmbeddedPostgres {
    &cluster().server
}

struct Cluster {
    server: EmbeddedPostgres,
    /// Never dropped (statics are not): it stops the server and deletes its dir when the process exits.
    _watchdog: Watchdog,
}

fn cluster() -> &'static Cluster {
    static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
    match CLUSTER.get_or_init(start_cluster) {
        Ok(cluster) => cluster,
        Err(e) => panic!("the test PostgreSQL cluster did not start: {e}"),
    }
}

/// Durability is pointless for a cluster deleted at exit; more connections leave room for parallel tests' pools.
const TEST_SETTINGS: [(&str, &str); 4] =
    [("fsync", "off"), ("synchronous_commit", "off"), ("full_page_writes", "off"), ("max_connections", "300")];

fn start_cluster() -> Result<Cluster, String> {
    let started = Instant::now();
    let dir =
        tempfile::Builder::new().prefix("nw-pg-").tempdir().map_err(|e| format!("creating a temp dir: {e}"))?.keep();
    if crate::util::is_root() {
        // The server runs as `postgres`, which must be able to enter the dir to reach its data dir.
        if let Ok(Some(user)) = nix::unistd::User::from_name("postgres") {
            chown(&dir, Some(user.uid.as_raw()), Some(user.gid.as_raw()))
                .map_err(|e| format!("chown {}: {e}", dir.display()))?;
        }
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))
            .map_err(|e| format!("chmod {}: {e}", dir.display()))?;
    }
    let opts = EmbeddedOptions { data_dir: dir.join("data"), port: None, bin_dir: None };
    let server = match EmbeddedPostgres::start_with_settings(opts, &TEST_SETTINGS) {
        Ok(server) => server,
        Err(e) => {
            let _ = fs::remove_dir_all(&dir);
            return Err(e.to_string());
        }
    };
    let pid = server.pid().ok_or("the server started but postmaster.pid names no pid")?;
    let watchdog =
        Watchdog::arm("INT", &[pid as u32], &[&dir]).map_err(|e| format!("starting the cleanup watchdog: {e}"))?;
    eprintln!("test PostgreSQL cluster up in {:?} at {}", started.elapsed(), server.socket_dir().display());
    Ok(Cluster { server, _watchdog: watchdog })
}

/// Runs SQL on the `postgres` database from a thread of its own, so it works inside a test's tokio runtime
/// (where blocking on another runtime would panic) and outside one.
fn admin_execute(connection_string: &str, sql: &str) -> Result<(), String> {
    let (connection_string, sql) = (connection_string.to_owned(), sql.to_owned());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("building a runtime: {e}"))?;
        rt.block_on(async {
            let (client, connection) =
                tokio_postgres::connect(&connection_string, NoTls).await.map_err(|e| pg_error(&e))?;
            let task = tokio::spawn(connection);
            let result = client.batch_execute(&sql).await.map_err(|e| pg_error(&e));
            drop(client);
            let _ = task.await;
            result
        })
    })
    .join()
    .map_err(|_| "the admin thread panicked".to_owned())?
}

fn pg_error(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{}: {}", db.severity(), db.message()),
        None => e.to_string(),
    }
}

/// `t<n>_<test name>`, lowercase, at most 63 bytes (PostgreSQL's identifier limit).
fn database_name(n: u32, test: &str) -> String {
    let mut name = format!("t{n}_");
    for c in test.chars() {
        name.push(if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' });
    }
    name.truncate(63);
    name
}

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn percent_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_are_valid_identifiers() {
        assert_eq!(database_name(3, "pg::tests::Some-Test"), "t3_pg__tests__some_test");
        assert_eq!(database_name(12, &"x".repeat(100)).len(), 63);
    }

    #[test]
    fn percent_encoding_keeps_unreserved_bytes() {
        assert_eq!(percent_encode("/tmp/nw-pg-x/data"), "%2Ftmp%2Fnw-pg-x%2Fdata");
    }
}
