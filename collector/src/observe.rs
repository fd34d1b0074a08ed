//! What the scheduler tells the rest of netwarden after every poll: one [`Observation`] per poll
//! outcome, in memory, so the alert engine evaluates what was just seen without reading it back
//! from the database. The feed is a bounded channel; when it is full the observation is dropped
//! and counted (`netwarden_observations_dropped_total`), never waited for: polling must not stall
//! behind evaluation.

use crate::counters::InterfaceRates;
use crate::poll::DevicePoll;
use chrono::{DateTime, Utc};
use std::sync::Arc;
use tokio::sync::mpsc;

#[derive(Debug, Clone)]
pub struct Observation {
    pub device_id: i64,
    pub device: String,
    pub at: DateTime<Utc>,
    pub outcome: Outcome,
}

#[derive(Debug, Clone)]
pub enum Outcome {
    /// The poll answered. `rates` is parallel to `poll.interfaces` (empty rates on the first poll).
    Polled { poll: Arc<DevicePoll>, rates: Arc<Vec<InterfaceRates>> },
    /// The poll failed; `down` once the device has failed `down_after_failures` times in a row.
    Failed { kind: String, error: String, consecutive_failures: u32, down: bool },
    /// A poll overran its interval and this many ticks were skipped.
    Overrun { skipped: i64 },
}

/// Where the scheduler sends observations and where others ask for an immediate poll.
#[derive(Debug, Clone, Default)]
pub struct SchedulerHooks {
    pub observations: Option<mpsc::Sender<Observation>>,
    /// Device ids to poll now (a trap arrived): the device polls at once, out of phase, and then
    /// keeps its regular phase. Requests for a device already polling are merged.
    pub poll_now: Option<Arc<PollNow>>,
}

impl SchedulerHooks {
    pub(crate) fn observe(&self, o: Observation) {
        if let Some(tx) = &self.observations
            && tx.try_send(o).is_err()
        {
            metrics::counter!("netwarden_observations_dropped_total").increment(1);
        }
    }
}

/// Requests for an immediate poll, keyed by device id.
#[derive(Debug, Default)]
pub struct PollNow {
    waiters: std::sync::Mutex<std::collections::HashMap<i64, Arc<tokio::sync::Notify>>>,
}

impl PollNow {
    /// Asks device `id` to poll now. Returns false when no scheduled device has that id.
    pub fn request(&self, id: i64) -> bool {
        let map = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(&id) {
            Some(n) => {
                n.notify_one();
                true
            }
            None => false,
        }
    }

    pub(crate) fn register(&self, id: i64) -> Arc<tokio::sync::Notify> {
        let mut map = self.waiters.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(id).or_default().clone()
    }

    pub(crate) fn unregister(&self, id: i64) {
        self.waiters.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    }
}
