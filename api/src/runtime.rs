//! Start-up and ordered shutdown of the service, and the CLI verbs that need the database.

use crate::config::Config;
use anyhow::{Context, Result, bail};
use collector::db::embedded::{EmbeddedOptions, EmbeddedPostgres};
use collector::db::{DbPool, MigrateReport};
use collector::inventory::{self, Device};
use collector::scheduler::{self, ScheduledDevice, SchedulerStats};
use collector::secrets::SecretBox;
use collector::store::{SampleWriter, WriterOptions};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// The database the service uses: a configured server, or the embedded one it started.
pub struct Database {
    pub pool: DbPool,
    embedded: Mutex<Option<EmbeddedPostgres>>,
    description: String,
}

impl Database {
    pub async fn open(cfg: &Config) -> Result<Database> {
        let (url, embedded, description) = if cfg.database.url.trim().is_empty() {
            let data_dir = std::path::absolute(cfg.data_dir.join("pg")).context("data_dir")?;
            let opts = EmbeddedOptions {
                data_dir: data_dir.clone(),
                port: None,
                bin_dir: cfg.database.embedded_bin_dir.clone(),
            };
            let pg = tokio::task::spawn_blocking(move || EmbeddedPostgres::start(opts))
                .await
                .context("embedded PostgreSQL start task")??;
            let url = pg.connection_string();
            (url, Some(pg), format!("embedded PostgreSQL in {}", data_dir.display()))
        } else {
            (cfg.database.url.clone(), None, "configured PostgreSQL".to_string())
        };
        let pool = match collector::db::connect(&url, cfg.database.pool_size.max(2)).await {
            Ok(p) => p,
            Err(e) => {
                if let Some(mut pg) = embedded {
                    let _ = pg.stop();
                }
                return Err(e).context(format!("database ({description})"));
            }
        };
        Ok(Database { pool, embedded: Mutex::new(embedded), description })
    }

    pub fn is_embedded(&self) -> bool {
        self.embedded.lock().expect("lock").is_some()
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    pub async fn migrate(&self, cfg: &Config) -> Result<MigrateReport> {
        let mut conn = self.pool.get().await.context("database connection for migrate")?;
        let client: &mut tokio_postgres::Client = &mut conn;
        Ok(collector::db::migrate(client, cfg.database.backend).await?)
    }

    /// Closes the pool, then stops the embedded server if we started it.
    pub async fn shutdown(self) {
        self.pool.close();
        let pg = self.embedded.lock().expect("lock").take();
        if let Some(mut pg) = pg {
            let r = tokio::task::spawn_blocking(move || pg.stop()).await;
            if let Ok(Err(e)) = r {
                tracing::warn!(error = %e, "embedded PostgreSQL did not stop cleanly");
            }
        }
    }
}

/// The key that seals credentials: the configured file, else `NETWARDEN_SECRET_KEY`, else (for
/// the embedded default only) `data_dir/secret.key`, created on first use.
pub fn load_secrets(cfg: &Config, embedded: bool) -> Result<SecretBox> {
    if let Some(path) = &cfg.secrets.key_file {
        return Ok(SecretBox::from_file(path)?);
    }
    if std::env::var_os("NETWARDEN_SECRET_KEY").is_some() {
        return Ok(SecretBox::from_env()?);
    }
    let default = cfg.data_dir.join("secret.key");
    if default.exists() {
        return Ok(SecretBox::from_file(&default)?);
    }
    if embedded {
        std::fs::create_dir_all(&cfg.data_dir).with_context(|| format!("creating {}", cfg.data_dir.display()))?;
        tracing::info!(path = %default.display(), "created a new secret key for credentials at rest; back it up");
        return Ok(SecretBox::generate_key_file(&default)?);
    }
    bail!(
        "no secret key: set secrets.key_file, or NETWARDEN_SECRET_KEY (32 bytes, base64), \
         to encrypt device credentials at rest"
    )
}

pub async fn import_file(
    db: &Database,
    secrets: &SecretBox,
    file: &Path,
    replace: bool,
) -> Result<inventory::store::ImportReport> {
    let devices = inventory::read_inventory_file(file, None)?;
    let mut conn = db.pool.get().await.context("database connection")?;
    let mode = if replace { inventory::store::ImportMode::Replace } else { inventory::store::ImportMode::Merge };
    Ok(inventory::store::import(&mut **conn, secrets, &devices, mode).await?)
}

pub async fn export(db: &Database, secrets: &SecretBox, format: &str, with_secrets: bool) -> Result<String> {
    let conn = db.pool.get().await.context("database connection")?;
    let devices = inventory::store::list(&**conn, secrets).await?;
    Ok(match format {
        "csv" => inventory::export_csv(&devices, with_secrets),
        _ => inventory::export_yaml(&devices, with_secrets),
    })
}

async fn scheduled_devices(pool: &DbPool, secrets: &SecretBox) -> Result<Vec<ScheduledDevice>> {
    let conn = pool.get().await.context("database connection")?;
    let devices: Vec<Device> = inventory::store::list(&**conn, secrets).await?;
    Ok(devices.into_iter().filter_map(|d| Some(ScheduledDevice { id: d.id?, device: d })).collect())
}

/// Everything the HTTP layer needs.
#[derive(Clone)]
pub struct AppState {
    pub pool: DbPool,
    pub secrets: Arc<SecretBox>,
    pub scheduler_stats: Arc<SchedulerStats>,
    pub writer: collector::store::WriterHandle,
    /// Pokes the inventory refresher after an API change.
    pub inventory_changed: Arc<tokio::sync::Notify>,
    pub backend: &'static str,
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// The latest topology graph, rebuilt by the topology task.
    pub topology: Arc<std::sync::RwLock<Arc<collector::topology::Topology>>>,
    /// SSH sessions (one per device at a time) for on-demand configuration backups.
    pub ssh: Arc<collector::ssh::SshManager>,
    /// The running alert service (acknowledgements, silence changes).
    pub alerts: rules::service::Handle,
}

/// Runs the service until SIGINT/SIGTERM, then stops in order: polling, sample flush, API,
/// database.
pub async fn serve(mut cfg: Config, demo: bool) -> Result<()> {
    let metrics = metrics_exporter_prometheus::PrometheusBuilder::new()
        .install_recorder()
        .context("installing the metrics recorder")?;
    // Playbooks are checked before anything starts, so a mistake in one stops the start naming it.
    let playbooks = if cfg.remediation.enabled {
        let loaded = remediation::load(&cfg.remediation.playbooks).map_err(|errors| {
            let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
            anyhow::anyhow!("remediation playbooks:\n  {}", lines.join("\n  "))
        })?;
        Some((Arc::new(loaded), cfg.remediation.policy()?))
    } else {
        None
    };
    let db = Database::open(&cfg).await?;
    let report = db.migrate(&cfg).await?;
    let secrets = Arc::new(load_secrets(&cfg, db.is_embedded())?);
    if let Some(file) = &cfg.inventory.file {
        let r = import_file(&db, &secrets, file, false).await?;
        tracing::info!(file = %file.display(), "{r}");
    }
    // The demo fabric sends its traps to the service: the receiver runs on loopback if not configured.
    if demo && !cfg.traps.enabled {
        cfg.traps.enabled = true;
        cfg.traps.listen = crate::demo::free_trap_listen()?;
    }
    let demo_fabric = if demo {
        let target = cfg.traps.listen.parse().ok().filter(|a: &std::net::SocketAddr| a.ip().is_loopback());
        Some(crate::demo::start(&db, &secrets, target).await?)
    } else {
        None
    };

    let cancel = CancellationToken::new();
    let writer_cancel = CancellationToken::new();
    // Scale-out: resolved once, so the poll records name the same instance as the leases.
    let cluster_opts = cfg.cluster_options();
    let writer_opts =
        WriterOptions { instance: cluster_opts.as_ref().map(|c| c.instance.clone()), ..Default::default() };
    let (writer, writer_task) = SampleWriter::spawn(db.pool.clone(), writer_opts, writer_cancel.clone());
    let stats = Arc::new(SchedulerStats::default());
    let initial = scheduled_devices(&db.pool, &secrets).await?;
    let n_devices = initial.len();
    let (dev_tx, dev_rx) = watch::channel(initial);
    let changed = Arc::new(tokio::sync::Notify::new());

    let refresher = {
        let (pool, secrets, cancel, changed, every) = (
            db.pool.clone(),
            secrets.clone(),
            cancel.clone(),
            changed.clone(),
            cfg.inventory.refresh.max(Duration::from_secs(1)),
        );
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                    _ = changed.notified() => {}
                }
                match scheduled_devices(&pool, &secrets).await {
                    Ok(list) => {
                        dev_tx.send_if_modified(|cur| {
                            let differs = *cur != list;
                            if differs {
                                *cur = list;
                            }
                            differs
                        });
                    }
                    Err(e) => tracing::warn!(error = %e, "cannot reload the inventory; keeping the current one"),
                }
            }
        })
    };
    let maintenance = {
        let (pool, cancel) = (db.pool.clone(), cancel.clone());
        tokio::spawn(async move {
            loop {
                match pool.get().await {
                    Ok(c) => match c.query_one("SELECT netwarden_maintain()", &[]).await {
                        Ok(row) => tracing::debug!(result = row.get::<_, String>(0), "storage maintenance"),
                        Err(e) => tracing::warn!(error = %e, "storage maintenance failed"),
                    },
                    Err(e) => tracing::warn!(error = %e, "storage maintenance: no database connection"),
                }
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(300)) => {}
                }
            }
        })
    };
    let topology = Arc::new(std::sync::RwLock::new(Arc::new(collector::topology::Topology::build(&[], &[]))));
    let topology_task = {
        let (pool, cancel, topology, every) =
            (db.pool.clone(), cancel.clone(), topology.clone(), cfg.topology.refresh.max(Duration::from_secs(1)));
        tokio::spawn(async move {
            let mut previous: Option<Arc<collector::topology::Topology>> = None;
            loop {
                tokio::select! {
                    _ = cancel.cancelled() => return,
                    _ = tokio::time::sleep(every) => {}
                }
                let Ok(c) = pool.get().await else { continue };
                match collector::store::topology::refresh(&**c, previous.as_deref(), chrono::Utc::now()).await {
                    Ok((topo, changes)) => {
                        for ch in &changes {
                            tracing::info!(change = ?ch, "topology changed");
                        }
                        let topo = Arc::new(topo);
                        *topology.write().expect("topology lock") = topo.clone();
                        previous = Some(topo);
                    }
                    Err(e) => tracing::warn!(error = %collector::db::error_text(&e), "topology refresh failed"),
                }
            }
        })
    };
    // Scheduled configuration backups over SSH (devices with SSH credentials only).
    let ssh = Arc::new(collector::ssh::SshManager::new(
        db.pool.clone(),
        Arc::new(collector::ssh::Profiles::builtin()),
        collector::ssh::SshOptions {
            connect_timeout: cfg.configs.connect_timeout,
            command_timeout: cfg.configs.command_timeout,
            max_sessions: cfg.configs.concurrency.max(1),
            ..Default::default()
        },
    ));
    // Always running: with a global interval of 0s, devices with their own backup_interval still have one.
    let backups = {
        let (ssh, secrets, cancel) = (ssh.clone(), secrets.clone(), cancel.clone());
        let opts = collector::configs::backup::ScheduleOptions {
            interval: cfg.configs.backup_interval,
            retry_after: cfg.configs.backup_retry.max(Duration::from_secs(1)),
            concurrency: cfg.configs.concurrency.max(1),
            ..Default::default()
        };
        tokio::spawn(async move { collector::configs::backup::run_schedule(&ssh, &secrets, &opts, cancel).await })
    };
    // A trap re-polls its device at once: the receiver follows the scheduler's device list and shares its
    // PollNow.
    let poll_now = Arc::new(collector::observe::PollNow::default());
    let traps = if cfg.traps.enabled {
        Some(start_traps(&cfg, &db.pool, dev_rx.clone(), poll_now.clone(), cancel.clone()).await?)
    } else {
        None
    };
    // Observations flow from the scheduler to the alert service; when the service falls behind, the
    // scheduler drops and counts them rather than wait (the next poll carries the state again). The alert
    // service follows every device of the inventory; in a cluster only the leased ones are observed here.
    let (observations, observed) = tokio::sync::mpsc::channel(8192);
    let alerting = start_alerting(&cfg, &db.pool, observed, dev_rx.clone(), topology.clone()).await?;
    let planner = playbooks.as_ref().map(|(playbooks, policy)| {
        let opts = remediation::planner::Options { interval: cfg.remediation.interval, policy: *policy };
        remediation::planner::spawn(db.pool.clone(), playbooks.clone(), opts, cancel.clone())
    });
    // In a cluster the scheduler follows only the devices whose lease this instance holds.
    let (dev_rx, cluster) = collector::cluster::spawn(db.pool.clone(), cluster_opts.clone(), dev_rx, cancel.clone());
    let sched = tokio::spawn(scheduler::run(
        db.pool.clone(),
        writer.clone(),
        cfg.scheduler_options(),
        stats.clone(),
        collector::observe::SchedulerHooks { observations: Some(observations), poll_now: Some(poll_now) },
        dev_rx,
        cancel.clone(),
    ));

    let state = AppState {
        pool: db.pool.clone(),
        secrets: secrets.clone(),
        scheduler_stats: stats,
        writer: writer.clone(),
        inventory_changed: changed,
        backend: report.backend.as_str(),
        metrics,
        topology,
        ssh: ssh.clone(),
        alerts: alerting.handle.clone(),
    };
    let listener = tokio::net::TcpListener::bind(&cfg.api.listen)
        .await
        .with_context(|| format!("binding the API to {}", cfg.api.listen))?;
    let addr = listener.local_addr()?;
    println!("netwarden is running");
    println!(
        "  NOC page   http://{addr}/   (alerts, failing intents, proposed fixes, devices and links down, changes)"
    );
    println!(
        "  API        http://{addr}/api/v1/devices   (health: http://{addr}/health, metrics: http://{addr}/metrics)"
    );
    println!("  database   {} (storage back-end: {})", db.description(), report.backend.as_str());
    println!("  polling    {n_devices} device(s) (default interval {:?})", cfg.polling.interval);
    if let Some(c) = &cluster_opts {
        println!("  cluster    instance {} sharing the devices by leases of {:?}", c.instance, c.lease);
    }
    if let Some(t) = &traps {
        println!("  traps      SNMP traps and informs on udp {}", t.addr);
    }
    println!("  alerts     http://{addr}/api/v1/alerts   ({})", alerting.summary);
    println!("  intents    http://{addr}/api/v1/intents   ({} intent(s) checked on every poll)", alerting.intents);
    match &playbooks {
        Some((p, policy)) => println!(
            "  remediation http://{addr}/api/v1/remediations   ({} playbook(s); {})",
            p.list.len(),
            match policy.auto_apply_up_to {
                None => "every proposal needs an approval".to_string(),
                Some(r) => format!("up to risk {} without approval", r.as_str()),
            }
        ),
        None => println!("  remediation off"),
    }
    println!(
        "  grafana    netwarden grafana provision --out {}   (data source, 4 dashboards, a read-only role; dashboards/README.md)",
        cfg.data_dir.join("grafana").display()
    );
    if let Some(f) = &demo_fabric {
        println!(
            "  demo       a simulated fabric ({}: {} devices answering SNMP and SSH on 127.0.1.1 upwards, sending traps)",
            crate::demo::DEMO_FABRIC,
            f.devices
        );
        println!(
            "  faults     printf 'link-down leaf001 spine1\\n' | nc {} {}   (then http://{addr}/api/v1/alerts and \
             /api/v1/intents/results?verdict=fail; 'clear all' repairs, 'help' lists faults)",
            f.control.ip(),
            f.control.port()
        );
    }
    println!("  stop       Ctrl-C");

    let http_cancel = CancellationToken::new();
    let server = {
        let http_cancel = http_cancel.clone();
        let app = crate::http::router(state);
        tokio::spawn(async move {
            axum::serve(listener, app).with_graceful_shutdown(async move { http_cancel.cancelled().await }).await
        })
    };

    shutdown_signal().await;
    tracing::info!("shutting down: stopping polls");
    cancel.cancel();
    let _ = sched.await;
    tracing::info!("recording the last alert changes");
    alerting.stop().await;
    if let Some(planner) = planner {
        let _ = planner.await;
    }
    if let Some(cluster) = cluster {
        let _ = cluster.await;
    }
    if let Some(t) = traps {
        let _ = t.receiver.await;
        let _ = t.writer.await;
    }
    let _ = refresher.await;
    let _ = maintenance.await;
    let _ = topology_task.await;
    let _ = backups.await;
    ssh.close_idle().await;
    tracing::info!("flushing samples");
    if let Err(e) = tokio::time::timeout(Duration::from_secs(10), writer.flush()).await.unwrap_or(Err("timeout".into()))
    {
        tracing::warn!(error = %e, "final sample flush failed");
    }
    writer_cancel.cancel();
    let _ = writer_task.await;
    http_cancel.cancel();
    let _ = server.await;
    if let Some(f) = demo_fabric {
        f.stop().await;
    }
    db.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

/// The alert service and the notification outbox worker.
struct Alerting {
    handle: rules::service::Handle,
    summary: String,
    intents: usize,
    cancel: CancellationToken,
    service: tokio::task::JoinHandle<()>,
    outbox_cancel: CancellationToken,
    outbox: tokio::task::JoinHandle<()>,
}

impl Alerting {
    /// Stops the service (it writes what is unwritten), then the outbox worker (in-flight sends get
    /// their grace period; the rest stays queued for the next start).
    async fn stop(self) {
        self.cancel.cancel();
        let _ = self.service.await;
        self.outbox_cancel.cancel();
        let _ = self.outbox.await;
    }
}

async fn start_alerting(
    cfg: &Config,
    pool: &DbPool,
    observations: tokio::sync::mpsc::Receiver<collector::observe::Observation>,
    devices: watch::Receiver<Vec<ScheduledDevice>>,
    topology: Arc<std::sync::RwLock<Arc<collector::topology::Topology>>>,
) -> Result<Alerting> {
    let default_url = format!("http://{}", cfg.api.listen);
    let mut alerting = rules::config::Alerting::load(cfg.alerting.file.as_deref(), &default_url)
        .map_err(|errors| anyhow::anyhow!("alerting configuration:\n  {}", errors.join("\n  ")))?;
    // Metric queries are prepared against the database now, so a mistake stops the start.
    rules::metric::check_all(pool, &alerting.metrics)
        .await
        .map_err(|errors| anyhow::anyhow!("alerting configuration, metric queries:\n  {}", errors.join("\n  ")))?;
    if let Some(url) = &cfg.alerting.external_url {
        alerting.external_url = url.clone();
    }
    let notifier = rules::notify::Notifier::new(&alerting.receivers, rules::notify::NotifierOptions::default())
        .map_err(|e| {
            let lines: Vec<String> = e.0.iter().map(ToString::to_string).collect();
            anyhow::anyhow!("alerting receivers:\n  {}", lines.join("\n  "))
        })?;
    let intents = alerting.intents.len();
    let summary = format!(
        "{} rule(s), {} receiver(s){}",
        alerting.rules.len(),
        alerting.receivers.len(),
        if alerting.routing.is_none() { ", no route: nothing is sent" } else { "" }
    );
    let wake = rules::outbox::Wake::default();
    let (cancel, outbox_cancel) = (CancellationToken::new(), CancellationToken::new());
    let outbox = rules::outbox::spawn(
        pool.clone(),
        Arc::new(notifier),
        rules::outbox::WorkerOptions { wake: wake.clone(), ..Default::default() },
        outbox_cancel.clone(),
    );
    let inputs = rules::service::Inputs { observations, devices, topology };
    let opts = rules::service::Options {
        tick: cfg.alerting.tick.max(Duration::from_millis(10)),
        outbox_wake: wake,
        ..Default::default()
    };
    let (handle, service) = rules::service::spawn(pool.clone(), alerting, inputs, opts, cancel.clone());
    Ok(Alerting { handle, summary, intents, cancel, service, outbox_cancel, outbox })
}

/// The SNMP trap receiver and the task that stores what it accepts (`snmp_trap`).
struct Traps {
    addr: std::net::SocketAddr,
    receiver: tokio::task::JoinHandle<()>,
    writer: tokio::task::JoinHandle<()>,
}

async fn start_traps(
    cfg: &Config,
    pool: &DbPool,
    devices: watch::Receiver<Vec<ScheduledDevice>>,
    poll_now: Arc<collector::observe::PollNow>,
    cancel: CancellationToken,
) -> Result<Traps> {
    let socket = collector::trap::bind(&cfg.traps.listen).await?;
    let addr = socket.local_addr()?;
    // When the store falls behind, events are dropped and counted; the re-polls still happen.
    let (events, queue) = tokio::sync::mpsc::channel(1024);
    let writer = tokio::spawn(collector::store::trap::run_writer(pool.clone(), queue, cancel.clone()));
    let hooks = collector::trap::TrapHooks { events: Some(events), poll_now: Some(poll_now) };
    let stats = Arc::new(collector::trap::TrapStats::default());
    let receiver = tokio::spawn(collector::trap::run(socket, devices, hooks, stats, cancel));
    Ok(Traps { addr, receiver, writer })
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C). The handlers are installed when this is called, not
/// when the future is first polled: call it before announcing readiness, so that a signal sent
/// right after the announcement stops the process cleanly instead of killing it.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
    let mut interrupt = signal(SignalKind::interrupt()).expect("SIGINT handler");
    async move {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = term.recv() => {}
        }
    }
}
