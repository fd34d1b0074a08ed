//! The embedded default database: a private PostgreSQL cluster run from the locally installed server binaries.
//!
//! When no `database.url` is configured, netwarden keeps its data in a cluster of its own under its data dir.
//! The server listens on a unix socket inside the data dir only (`listen_addresses = ''`), so nothing else on the
//! machine can reach it over TCP and two instances never fight over a port; local connections use trust auth.
//!
//! Starting blocks the calling thread: initdb on the first run (about 1 s), then `pg_ctl start -w` (about 0.2 s,
//! longer when the server replays WAL after a crash). From async code, call [`EmbeddedPostgres::start`] inside
//! `tokio::task::spawn_blocking`. Dropping the handle stops the server (fast shutdown) and waits for it.
//!
//! initdb and postgres refuse to run as root, so when netwarden runs as root both run as the `postgres` system
//! user and the data dir is handed to that user.

use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use nix::sys::signal::kill;
use nix::unistd::{Pid, User, geteuid};

/// Where the server keeps its data and which binaries run it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbeddedOptions {
    /// The cluster's data directory; created (and initdb'd) on the first start, reused after that.
    pub data_dir: PathBuf,
    /// The port, which here only names the socket file (`.s.PGSQL.<port>`); 5432 when unset.
    pub port: Option<u16>,
    /// The directory holding `initdb`, `pg_ctl` and `postgres`; found automatically when unset.
    pub bin_dir: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum EmbeddedError {
    #[error("no PostgreSQL server binaries found ({searched}); install postgresql-15 or set database.url")]
    NoBinaries { searched: String },
    #[error(
        "running as root, but there is no `postgres` system user to run the embedded PostgreSQL as \
         (initdb and postgres refuse root); install postgresql-15 or set database.url"
    )]
    NoPostgresUser,
    #[error("embedded PostgreSQL: {what} {}: {source}", path.display())]
    Io { what: &'static str, path: PathBuf, source: io::Error },
    #[error("embedded PostgreSQL: socket path {} is {len} bytes, over the 107-byte limit of unix sockets; use a shorter data dir", path.display())]
    SocketPathTooLong { path: PathBuf, len: usize },
    #[error("embedded PostgreSQL: initdb failed for {}{hint}:\n{output}", data_dir.display())]
    Initdb { data_dir: PathBuf, hint: &'static str, output: String },
    #[error(
        "embedded PostgreSQL: a server (pid {pid}) is already running on {}; stop it with \
         `pg_ctl -D {} stop -m fast` or point database.url at it", data_dir.display(), data_dir.display()
    )]
    AlreadyRunning { data_dir: PathBuf, pid: i32 },
    #[error(
        "embedded PostgreSQL failed to start on {}: {output}\nlast lines of the server log {}:\n{log_tail}",
        data_dir.display(), log.display()
    )]
    Start { data_dir: PathBuf, output: String, log: PathBuf, log_tail: String },
    #[error("embedded PostgreSQL: stopping the server on {} failed: {output}", data_dir.display())]
    Stop { data_dir: PathBuf, output: String },
}

/// A running private cluster; stopped by [`EmbeddedPostgres::stop`] or on drop.
#[derive(Debug)]
pub struct EmbeddedPostgres {
    bin_dir: PathBuf,
    data_dir: PathBuf,
    port: u16,
    run_as: Option<RunAs>,
    running: bool,
}

/// The unprivileged user the server runs as when netwarden runs as root.
#[derive(Debug, Clone)]
struct RunAs {
    uid: u32,
    gid: u32,
    home: PathBuf,
}

const DEFAULT_PORT: u16 = 5432;
const SUPERUSER: &str = "postgres";
/// Written on every start and included from postgresql.conf, so that settings never need shell quoting on the
/// pg_ctl command line and an operator's manual `pg_ctl start` gets the same ones.
const SETTINGS_FILE: &str = "netwarden.conf";
const SERVER_LOG: &str = "netwarden-server.log";
/// Generous because a server that crashed replays its WAL before it accepts connections.
const START_TIMEOUT_SECS: u32 = 300;
const STOP_TIMEOUT_SECS: u32 = 60;
const LOG_TAIL_LINES: usize = 30;

impl EmbeddedPostgres {
    /// Starts the cluster in `opts.data_dir`, creating it first if needed.
    pub fn start(opts: EmbeddedOptions) -> Result<Self, EmbeddedError> {
        Self::start_with_settings(opts, &[])
    }

    /// Like [`EmbeddedPostgres::start`], with extra server settings (`name`, `value`) such as `("fsync", "off")`
    /// for throwaway test clusters. They are written to `netwarden.conf` in the data dir on every start.
    pub fn start_with_settings(opts: EmbeddedOptions, settings: &[(&str, &str)]) -> Result<Self, EmbeddedError> {
        let data_dir = absolute(&opts.data_dir)?;
        let bin_dir = find_bin_dir(opts.bin_dir.as_deref())?;
        let run_as = if geteuid().is_root() {
            let user = User::from_name(SUPERUSER).ok().flatten().ok_or(EmbeddedError::NoPostgresUser)?;
            Some(RunAs { uid: user.uid.as_raw(), gid: user.gid.as_raw(), home: user.dir })
        } else {
            None
        };
        let port = opts.port.unwrap_or(DEFAULT_PORT);
        let socket = data_dir.join(format!(".s.PGSQL.{port}"));
        let len = socket.as_os_str().len();
        if len > 107 {
            return Err(EmbeddedError::SocketPathTooLong { path: socket, len });
        }

        let mut pg = EmbeddedPostgres { bin_dir, data_dir, port, run_as, running: false };
        pg.prepare_data_dir()?;
        if !pg.data_dir.join("PG_VERSION").exists() {
            pg.initdb()?;
        }
        pg.write_settings(settings)?;
        pg.clear_stale_pid_file()?;
        pg.pg_ctl_start()?;
        pg.running = true;
        tracing::info!(data_dir = %pg.data_dir.display(), port, "embedded PostgreSQL started");
        Ok(pg)
    }

    /// A tokio-postgres connection string for the `postgres` database over the unix socket.
    pub fn connection_string(&self) -> String {
        self.connection_string_for(SUPERUSER)
    }

    /// A tokio-postgres connection string for the named database over the unix socket.
    pub fn connection_string_for(&self, dbname: &str) -> String {
        format!(
            "host={} port={} user={SUPERUSER} dbname={}",
            quote_conninfo(&self.socket_dir().to_string_lossy()),
            self.port,
            quote_conninfo(dbname)
        )
    }

    /// The directory that holds the server's unix socket (the data dir).
    pub fn socket_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server log (`pg_ctl -l`), in the data dir; the previous run's log is kept next to it as `.old`.
    pub fn log_file(&self) -> PathBuf {
        self.data_dir.join(SERVER_LOG)
    }

    /// The postmaster's pid while the server runs, from `postmaster.pid`.
    pub fn pid(&self) -> Option<i32> {
        read_postmaster_pid(&self.data_dir)
    }

    /// Stops the server (fast shutdown: open sessions are rolled back) and waits until it has exited.
    pub fn stop(&mut self) -> Result<(), EmbeddedError> {
        if !self.running {
            return Ok(());
        }
        self.running = false;
        let out = self.pg_ctl(&["stop", "-m", "fast", "-w", "-t", &STOP_TIMEOUT_SECS.to_string()]);
        match out {
            Ok(out) if out.status.success() => {
                tracing::info!(data_dir = %self.data_dir.display(), "embedded PostgreSQL stopped");
                Ok(())
            }
            Ok(out) => Err(EmbeddedError::Stop { data_dir: self.data_dir.clone(), output: output_text(&out) }),
            Err(e) => Err(EmbeddedError::Stop { data_dir: self.data_dir.clone(), output: e.to_string() }),
        }
    }

    /// Creates the data dir (mode 0700, owned by the server's user) unless it exists.
    fn prepare_data_dir(&self) -> Result<(), EmbeddedError> {
        let io_err = |what, source| EmbeddedError::Io { what, path: self.data_dir.clone(), source };
        fs::create_dir_all(&self.data_dir).map_err(|e| io_err("creating data dir", e))?;
        if let Some(user) = &self.run_as {
            let meta = fs::metadata(&self.data_dir).map_err(|e| io_err("reading data dir", e))?;
            use std::os::unix::fs::MetadataExt;
            if meta.uid() != user.uid {
                chown(&self.data_dir, Some(user.uid), Some(user.gid))
                    .map_err(|e| io_err("handing the data dir to the postgres user", e))?;
            }
        }
        fs::set_permissions(&self.data_dir, fs::Permissions::from_mode(0o700))
            .map_err(|e| io_err("setting mode 0700 on data dir", e))
    }

    fn initdb(&self) -> Result<(), EmbeddedError> {
        let mut cmd = self.command("initdb");
        cmd.arg("-D")
            .arg(&self.data_dir)
            .args(["-U", SUPERUSER, "-E", "UTF8", "--locale=C.UTF-8"])
            // Only the unix socket is ever used; TCP stays closed twice over (listen_addresses = '').
            .args(["--auth-local=trust", "--auth-host=reject"]);
        let out = cmd.output().map_err(|e| EmbeddedError::Io {
            what: "running initdb",
            path: self.bin_dir.join("initdb"),
            source: e,
        })?;
        if !out.status.success() {
            let hint = if self.run_as.is_some() {
                " (initdb runs as the postgres user, which needs search permission on every parent directory)"
            } else {
                ""
            };
            return Err(EmbeddedError::Initdb { data_dir: self.data_dir.clone(), hint, output: output_text(&out) });
        }
        let conf = self.data_dir.join("postgresql.conf");
        let include = format!(
            "\n# netwarden: connection settings, rewritten on every start\ninclude_if_exists '{SETTINGS_FILE}'\n"
        );
        fs::OpenOptions::new()
            .append(true)
            .open(&conf)
            .and_then(|mut f| io::Write::write_all(&mut f, include.as_bytes()))
            .map_err(|e| EmbeddedError::Io { what: "appending the include to", path: conf, source: e })
    }

    fn write_settings(&self, extra: &[(&str, &str)]) -> Result<(), EmbeddedError> {
        let mut text =
            String::from("# written by netwarden on every start of its embedded PostgreSQL; edits are lost\n");
        let socket_dir = self.socket_dir().to_string_lossy().into_owned();
        let port = self.port.to_string();
        let base =
            [("listen_addresses", ""), ("port", port.as_str()), ("unix_socket_directories", socket_dir.as_str())];
        for (name, value) in base.iter().chain(extra) {
            text.push_str(&format!("{name} = '{}'\n", value.replace('\'', "''")));
        }
        let path = self.data_dir.join(SETTINGS_FILE);
        let io_err = |what, source| EmbeddedError::Io { what, path: path.clone(), source };
        fs::write(&path, text).map_err(|e| io_err("writing", e))?;
        if let Some(user) = &self.run_as {
            chown(&path, Some(user.uid), Some(user.gid)).map_err(|e| io_err("handing to the postgres user", e))?;
        }
        Ok(())
    }

    /// postgres refuses to start while `postmaster.pid` (or the socket's lock file) names a process that exists,
    /// even a zombie of the crashed server or an unrelated process that reuses its pid (common in containers).
    /// A live postgres there is a real second server. A pid that no longer exists is left to postgres, which
    /// then also cleans up the dead server's shared memory.
    fn clear_stale_pid_file(&self) -> Result<(), EmbeddedError> {
        let socket_lock = self.socket_dir().join(format!(".s.PGSQL.{}.lock", self.port));
        for path in [self.data_dir.join("postmaster.pid"), socket_lock] {
            let Some(pid) = read_lock_file_pid(&path) else {
                continue;
            };
            match process_state(pid) {
                ProcessState::Gone => {}
                ProcessState::LivePostgres => {
                    return Err(EmbeddedError::AlreadyRunning { data_dir: self.data_dir.clone(), pid });
                }
                ProcessState::ZombieOrOther => {
                    tracing::warn!(pid, path = %path.display(), "removing a lock file left by a server that did not stop cleanly");
                    fs::remove_file(&path).map_err(|e| EmbeddedError::Io {
                        what: "removing stale",
                        path,
                        source: e,
                    })?;
                }
            }
        }
        Ok(())
    }

    fn pg_ctl_start(&self) -> Result<(), EmbeddedError> {
        let log = self.log_file();
        if log.exists() {
            // Keep the previous run's log for crash analysis, and keep the log from growing without bound.
            let _ = fs::rename(&log, log.with_extension("log.old"));
        }
        let log_arg = log.to_string_lossy().into_owned();
        let timeout = START_TIMEOUT_SECS.to_string();
        let out = self.pg_ctl(&["start", "-w", "-t", &timeout, "-l", &log_arg]);
        let failure = match out {
            Ok(out) if out.status.success() => return Ok(()),
            Ok(out) => output_text(&out),
            Err(e) => format!("running {}: {e}", self.bin_dir.join("pg_ctl").display()),
        };
        Err(EmbeddedError::Start { data_dir: self.data_dir.clone(), output: failure, log_tail: tail(&log), log })
    }

    fn pg_ctl(&self, args: &[&str]) -> io::Result<Output> {
        let mut cmd = self.command("pg_ctl");
        cmd.arg("-D").arg(&self.data_dir).args(args);
        cmd.output()
    }

    /// A command for one of the server binaries, run as the server's user.
    fn command(&self, program: &str) -> Command {
        let mut cmd = Command::new(self.bin_dir.join(program));
        // The caller's working directory may be unreadable to the postgres user (e.g. /root), and initdb
        // and pg_ctl look at it.
        cmd.current_dir("/").stdin(Stdio::null());
        for var in ["PGDATA", "PGPORT", "PGHOST", "PGUSER", "PGDATABASE", "PGOPTIONS"] {
            cmd.env_remove(var);
        }
        if let Some(user) = &self.run_as {
            // std clears the supplementary groups when it sets the uid.
            cmd.uid(user.uid).gid(user.gid).env("HOME", &user.home).env("USER", SUPERUSER).env("LOGNAME", SUPERUSER);
        }
        cmd
    }
}

impl Drop for EmbeddedPostgres {
    fn drop(&mut self) {
        if let Err(e) = self.stop() {
            tracing::warn!(error = %e, "embedded PostgreSQL did not stop cleanly");
        }
    }
}

fn absolute(path: &Path) -> Result<PathBuf, EmbeddedError> {
    std::path::absolute(path).map_err(|e| EmbeddedError::Io {
        what: "resolving data dir",
        path: path.to_path_buf(),
        source: e,
    })
}

const SERVER_PROGRAMS: [&str; 3] = ["initdb", "pg_ctl", "postgres"];

fn has_server_programs(dir: &Path) -> bool {
    SERVER_PROGRAMS.iter().all(|p| dir.join(p).is_file())
}

/// An explicit bin dir, else `pg_config --bindir`, else the newest `/usr/lib/postgresql/<major>/bin` (Debian).
fn find_bin_dir(explicit: Option<&Path>) -> Result<PathBuf, EmbeddedError> {
    if let Some(dir) = explicit {
        return if has_server_programs(dir) {
            Ok(dir.to_path_buf())
        } else {
            Err(EmbeddedError::NoBinaries {
                searched: format!("bin_dir {} lacks one of {}", dir.display(), SERVER_PROGRAMS.join(", ")),
            })
        };
    }
    let mut searched = Vec::new();
    match Command::new("pg_config").arg("--bindir").stdin(Stdio::null()).output() {
        Ok(out) if out.status.success() => {
            let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
            if has_server_programs(&dir) {
                return Ok(dir);
            }
            searched.push(format!("pg_config --bindir gave {}, without the server programs", dir.display()));
        }
        _ => searched.push("no working pg_config on PATH".to_owned()),
    }
    let debian = Path::new("/usr/lib/postgresql");
    let mut versions: Vec<(u32, PathBuf)> = fs::read_dir(debian)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            has_server_programs(&bin).then_some((major, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return Ok(bin);
    }
    searched.push(format!("no {}/<version>/bin with initdb", debian.display()));
    Err(EmbeddedError::NoBinaries { searched: searched.join("; ") })
}

fn read_postmaster_pid(data_dir: &Path) -> Option<i32> {
    read_lock_file_pid(&data_dir.join("postmaster.pid"))
}

/// The pid on the first line of `postmaster.pid` or a socket lock file.
fn read_lock_file_pid(path: &Path) -> Option<i32> {
    let text = fs::read_to_string(path).ok()?;
    text.lines().next()?.trim().parse().ok().filter(|pid: &i32| *pid > 0)
}

#[derive(Debug, PartialEq, Eq)]
enum ProcessState {
    Gone,
    LivePostgres,
    ZombieOrOther,
}

fn process_state(pid: i32) -> ProcessState {
    if kill(Pid::from_raw(pid), None).is_err_and(|e| e == nix::errno::Errno::ESRCH) {
        return ProcessState::Gone;
    }
    // /proc/<pid>/stat is "pid (comm) state ..."; comm may itself contain ") ".
    let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return ProcessState::LivePostgres;
    };
    let Some((comm, rest)) = stat.split_once(" (").and_then(|(_, r)| r.rsplit_once(") ")) else {
        return ProcessState::LivePostgres;
    };
    if matches!(comm, "postgres" | "postmaster") && !rest.starts_with(['Z', 'X']) {
        ProcessState::LivePostgres
    } else {
        ProcessState::ZombieOrOther
    }
}

/// Quotes a conninfo value when it needs it (spaces, quotes, backslashes, empty).
fn quote_conninfo(value: &str) -> String {
    if !value.is_empty() && !value.contains([' ', '\'', '\\', '\t', '\n']) {
        return value.to_owned();
    }
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn output_text(out: &Output) -> String {
    let mut text = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !stdout.trim().is_empty() {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(stdout.trim());
    }
    if text.is_empty() {
        text = format!("exited with {}", out.status);
    }
    text
}

fn tail(path: &Path) -> String {
    match fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let lines: Vec<&str> = text.lines().collect();
            lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
        }
        Err(e) => format!("(cannot read it: {e})"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn tempdir() -> tempfile::TempDir {
        let dir = tempfile::Builder::new().prefix("nw-embedded-").tempdir().expect("creating temp dir");
        // Under root the server runs as `postgres`, which must be able to reach the data dir.
        fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o755)).expect("chmod temp dir");
        dir
    }

    /// Runs one statement on its own runtime, so the tests can stay synchronous like the API.
    fn query(conn: &str, sql: &str) -> Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(async {
            let (client, connection) = tokio_postgres::connect(conn, tokio_postgres::NoTls).await?;
            let task = tokio::spawn(connection);
            let rows = client.query(sql, &[]).await;
            drop(client);
            let _ = task.await;
            rows
        })
    }

    #[test]
    fn restart_reuses_the_data_dir_and_survives_a_crash() {
        let dir = tempdir();
        let opts = EmbeddedOptions { data_dir: dir.path().join("data"), port: Some(54329), bin_dir: None };

        let started = std::time::Instant::now();
        let pg = EmbeddedPostgres::start(opts.clone()).expect("first start");
        eprintln!("cold start (initdb + start): {:?}", started.elapsed());
        let conn = pg.connection_string();
        assert!(conn.contains("port=54329"), "{conn}");
        query(&conn, "CREATE TABLE kept (x int)").expect("create table");
        let rows = query(&conn, "SHOW listen_addresses").expect("show");
        assert_eq!(rows[0].get::<_, String>(0), "");
        drop(pg);

        let started = std::time::Instant::now();
        let mut pg = EmbeddedPostgres::start(opts.clone()).expect("second start");
        eprintln!("warm start: {:?}", started.elapsed());
        query(&pg.connection_string(), "SELECT * FROM kept").expect("table survived the restart");

        // A crash: the postmaster dies without cleaning up, and postmaster.pid stays behind.
        let pid = pg.pid().expect("postmaster pid");
        kill(Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL).unwrap();
        for _ in 0..100 {
            if process_state(pid) != ProcessState::LivePostgres {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        pg.running = false; // it is gone; don't try to stop it
        drop(pg);
        assert!(dir.path().join("data/postmaster.pid").exists());
        let started = std::time::Instant::now();
        let pg = EmbeddedPostgres::start(opts).expect("start after a crash");
        eprintln!("start after a crash: {:?}", started.elapsed());
        query(&pg.connection_string(), "SELECT * FROM kept").expect("table survived the crash");
    }

    #[test]
    fn second_server_on_the_same_data_dir_is_refused() {
        let dir = tempdir();
        let opts = EmbeddedOptions { data_dir: dir.path().join("data"), port: None, bin_dir: None };
        let pg = EmbeddedPostgres::start(opts.clone()).expect("first start");
        let err = EmbeddedPostgres::start(opts).expect_err("second start must fail");
        assert!(matches!(err, EmbeddedError::AlreadyRunning { pid, .. } if Some(pid) == pg.pid()), "{err}");
        assert!(pg.connection_string().contains("port=5432"));
    }

    #[test]
    fn a_bin_dir_without_server_programs_is_a_clear_error() {
        let dir = tempdir();
        let opts =
            EmbeddedOptions { data_dir: dir.path().join("data"), port: None, bin_dir: Some(dir.path().to_path_buf()) };
        let err = EmbeddedPostgres::start(opts).expect_err("must fail");
        let msg = err.to_string();
        assert!(msg.starts_with("no PostgreSQL server binaries found"), "{msg}");
        assert!(msg.contains("install postgresql-15 or set database.url"), "{msg}");
    }

    #[test]
    fn conninfo_values_are_quoted_when_needed() {
        assert_eq!(quote_conninfo("/tmp/x"), "/tmp/x");
        assert_eq!(quote_conninfo("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(quote_conninfo("it's"), "'it\\'s'");
    }
}
