//! The HTTP API's state for in-process tests: the real router over a real database, with the
//! parts a test does not drive (poller stats, metrics recorder) in their idle form.

use collector::db::DbPool;
use collector::secrets::SecretBox;
use collector::topology::Topology;
use std::sync::Arc;

/// An `AppState` over `pool`; `topology` is what the topology task would have built.
pub fn app_state(pool: DbPool, secrets: SecretBox, topology: Topology) -> api::runtime::AppState {
    let (writer, _) = collector::store::SampleWriter::spawn(pool.clone(), Default::default(), Default::default());
    let ssh = collector::ssh::SshManager::new(
        pool.clone(),
        Arc::new(collector::ssh::Profiles::builtin()),
        Default::default(),
    );
    // A real alert service with the built-in rules and no route, fed by nothing (the test drives the API).
    let alerting = rules::config::Alerting::load(None, "http://netwarden.test").expect("built-in alerting");
    let (_, observations) = tokio::sync::mpsc::channel(1);
    let (_, devices) = tokio::sync::watch::channel(Vec::new());
    let inputs = rules::service::Inputs {
        observations,
        devices,
        topology: Arc::new(std::sync::RwLock::new(Arc::new(Topology::build(&[], &[])))),
    };
    let (alerts, _) = rules::service::spawn(pool.clone(), alerting, inputs, Default::default(), Default::default());
    api::runtime::AppState {
        pool,
        secrets: Arc::new(secrets),
        scheduler_stats: Default::default(),
        writer,
        inventory_changed: Default::default(),
        backend: "partitioned",
        metrics: metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder().handle(),
        topology: Arc::new(std::sync::RwLock::new(Arc::new(topology))),
        ssh: Arc::new(ssh),
        alerts,
    }
}
