//! The planner task: sweeps on a fixed interval (the intent results it reads are in the database,
//! so it needs no channel from the alert service and picks up where it left off after a restart).
//! A database error is logged with its cause and the next sweep tries again; a playbook that fails
//! on an item is logged once per distinct message.

use crate::plan::Policy;
use crate::playbook::Playbooks;
use crate::store;
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub struct Options {
    pub interval: Duration,
    pub policy: Policy,
}

/// Starts the planner; it stops when `cancel` fires.
pub fn spawn(
    pool: deadpool_postgres::Pool,
    playbooks: Arc<Playbooks>,
    opts: Options,
    cancel: CancellationToken,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut reported: HashSet<String> = HashSet::new();
        let mut failing = false;
        let mut tick = tokio::time::interval(opts.interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = cancel.cancelled() => return,
                _ = tick.tick() => {}
            }
            let result = match pool.get().await {
                Ok(mut conn) => {
                    let client: &mut tokio_postgres::Client = &mut conn;
                    store::sweep(client, &playbooks, &opts.policy, chrono::Utc::now())
                        .await
                        .map_err(|e| collector::db::error_text(&e))
                }
                Err(e) => Err(format!("no database connection: {e}")),
            };
            match result {
                Ok(sweep) => {
                    if failing {
                        tracing::info!("remediation planner: database back, sweeping again");
                        failing = false;
                    }
                    metrics::counter!("netwarden_remediation_proposed_total").increment(sweep.proposed.len() as u64);
                    metrics::counter!("netwarden_remediation_obsoleted_total").increment(sweep.obsoleted.len() as u64);
                    if !sweep.proposed.is_empty() || !sweep.obsoleted.is_empty() {
                        tracing::info!(
                            proposed = ?sweep.proposed,
                            obsoleted = ?sweep.obsoleted,
                            violations = sweep.violations,
                            "remediation proposals updated"
                        );
                    }
                    for e in sweep.errors {
                        if reported.insert(e.clone()) {
                            tracing::warn!("remediation planner: {e}");
                        }
                    }
                }
                Err(e) => {
                    metrics::counter!("netwarden_remediation_sweep_errors_total").increment(1);
                    if !failing {
                        tracing::warn!("remediation planner: sweep failed (retrying every {:?}): {e}", opts.interval);
                        failing = true;
                    }
                }
            }
        }
    })
}
