//! Scale-out: several instances on one database split the devices with leases held in PostgreSQL.
//!
//! Every third of the lease period an instance renews its heartbeat, reads which instances are
//! live (heartbeat younger than the lease), picks its share of the devices by rendezvous hashing
//! ([`assign`]), and takes or renews the leases of that share in one statement
//! ([`crate::store::lease::acquire`]): a lease is taken only when free, expired or already its
//! own. The scheduler gets, through a `watch` channel, only the devices whose lease is held.
//!
//! Never two pollers: an instance stops polling a device before its lease can expire. A lease
//! counts locally from the monotonic instant *before* the statement that took it was sent, minus
//! a safety margin, so it ends here before the database's clock (which started later) ends it
//! there. When renewals fail (the database is away) the devices are dropped at that local expiry.
//! A device the assignment moves elsewhere is first dropped from the scheduler and released a
//! round later, once its poll loop has stopped. Graceful shutdown releases everything after the
//! scheduler has stopped, so the others take over at their next round instead of after a lease.

pub mod assign;

use crate::scheduler::ScheduledDevice;
use crate::store::lease::{self, Heartbeat, Registration};
use deadpool_postgres::Pool;
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long an instance may keep the devices it leased (default 30 s), and its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterOptions {
    /// Unique among live instances; [`default_instance_name`] when not configured.
    pub instance: String,
    pub lease: Duration,
}

impl ClusterOptions {
    /// Heartbeat and lease renewal period: a third of the lease, so two renewals can fail before
    /// a lease runs out.
    pub fn renew_every(&self) -> Duration {
        self.lease / 3
    }

    /// Subtracted from the local view of a lease: covers the scheduler's reaction to a shrinking
    /// device list and clock rate differences between this host and the database.
    pub fn safety_margin(&self) -> Duration {
        (self.lease / 10).max(Duration::from_millis(200)).min(self.lease / 3)
    }
}

/// `host-pid-random`: stable for the life of a process, different for the next one.
pub fn default_instance_name() -> String {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into());
    format!("{host}-{}-{:06x}", std::process::id(), rand::random::<u32>() & 0xff_ffff)
}

/// Starts cluster membership when `opts` is set and returns the device list the scheduler should
/// follow: the devices of `all` whose lease this instance holds. Without `opts` (a single
/// instance) it is `all` itself and nothing runs.
///
/// On `cancel` the task waits until every receiver of the returned list is dropped (the scheduler
/// has stopped), then releases its leases and leaves; await the handle before closing the pool.
pub fn spawn(
    pool: Pool,
    opts: Option<ClusterOptions>,
    all: watch::Receiver<Vec<ScheduledDevice>>,
    cancel: CancellationToken,
) -> (watch::Receiver<Vec<ScheduledDevice>>, Option<tokio::task::JoinHandle<()>>) {
    let Some(opts) = opts else { return (all, None) };
    let (owned_tx, owned_rx) = watch::channel(Vec::new());
    let me = Registration {
        name: opts.instance.clone(),
        session: format!("{:016x}", rand::random::<u64>()),
        host: nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default(),
        pid: std::process::id() as i32,
    };
    let member = Member { pool, opts, me, all, owned_tx, held: Holdings::default() };
    (owned_rx, Some(tokio::spawn(member.run(cancel))))
}

/// The leases this instance holds, as far as it may rely on them.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Holdings {
    /// Devices the scheduler polls.
    pub held: BTreeSet<i64>,
    /// Until when (monotonic) they may be polled; None while holding nothing.
    pub valid_until: Option<Instant>,
    /// Dropped from the scheduler in the last round: released in the next.
    pub stopping: BTreeSet<i64>,
}

impl Holdings {
    /// After a successful round: `now_held` was taken by a statement sent at `sent_at`.
    pub fn renewed(&mut self, now_held: BTreeSet<i64>, sent_at: Instant, opts: &ClusterOptions) {
        self.stopping = self.held.difference(&now_held).copied().collect();
        self.valid_until = (!now_held.is_empty()).then(|| sent_at + opts.lease.saturating_sub(opts.safety_margin()));
        self.held = now_held;
    }

    /// Whether the local view of the leases ran out at `now` (renewals failed); if so, nothing is
    /// held any more. The leases stay in the database until they expire there.
    pub fn expire(&mut self, now: Instant) -> bool {
        if self.valid_until.is_none_or(|t| now < t) {
            return false;
        }
        self.stopping.extend(std::mem::take(&mut self.held));
        self.valid_until = None;
        true
    }

    /// Nothing may be polled at once (e.g. this instance's name is taken by another process).
    pub fn drop_all(&mut self) {
        self.stopping.extend(std::mem::take(&mut self.held));
        self.valid_until = None;
    }
}

/// What one round against the database established.
struct Round {
    live: Vec<String>,
    held: BTreeSet<i64>,
    sent_at: Instant,
    released: u64,
}

#[derive(Debug, thiserror::Error)]
enum RoundError {
    #[error("no database connection: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    #[error("{what}: {}", crate::db::error_text(source))]
    Db { what: &'static str, source: tokio_postgres::Error },
    #[error("instance name {0:?} is used by another live process; give each instance its own [cluster] instance")]
    NameTaken(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

fn db_err(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> RoundError {
    move |source| RoundError::Db { what, source }
}

struct Member {
    pool: Pool,
    opts: ClusterOptions,
    me: Registration,
    all: watch::Receiver<Vec<ScheduledDevice>>,
    owned_tx: watch::Sender<Vec<ScheduledDevice>>,
    held: Holdings,
}

impl Member {
    async fn run(mut self, cancel: CancellationToken) {
        tracing::info!(instance = %self.me.name, lease = ?self.opts.lease, "cluster member starting");
        let mut next_round = Instant::now();
        loop {
            let wake = self.held.valid_until.map_or(next_round, |t| t.min(next_round));
            tokio::select! {
                _ = cancel.cancelled() => break,
                changed = self.all.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    self.publish();
                }
                () = tokio::time::sleep_until(wake) => {
                    if Instant::now() >= next_round {
                        self.round().await;
                        next_round = Instant::now() + self.opts.renew_every();
                    }
                    self.expire_if_due();
                }
            }
        }
        self.leave().await;
    }

    /// One heartbeat-assign-renew round, bounded so that it never outlives the local lease.
    async fn round(&mut self) {
        let budget = match self.held.valid_until {
            Some(t) => t.saturating_duration_since(Instant::now()).min(self.opts.renew_every()),
            None => self.opts.renew_every(),
        };
        let ids: Vec<i64> = self.all.borrow().iter().map(|d| d.id).collect();
        let result = match tokio::time::timeout(budget, self.exchange(&ids)).await {
            Ok(r) => r,
            Err(_) => Err(RoundError::Timeout(budget)),
        };
        match result {
            Ok(round) => self.apply(round),
            Err(e) => self.failed(e),
        }
    }

    /// The database part of a round: heartbeat, live members, release, acquire/renew.
    async fn exchange(&self, devices: &[i64]) -> Result<Round, RoundError> {
        let db = self.pool.get().await?;
        let forget_after = self.opts.lease.saturating_mul(20).max(Duration::from_secs(3600));
        let live = match lease::heartbeat(&**db, &self.me, self.opts.lease, forget_after)
            .await
            .map_err(db_err("heartbeat"))?
        {
            Heartbeat::Live(live) => live,
            Heartbeat::NameTaken => return Err(RoundError::NameTaken(self.me.name.clone())),
        };
        let wanted = assign::Members::new(&live).assigned_to(&self.me.name, devices.iter().copied());
        let wanted_set: BTreeSet<i64> = wanted.iter().copied().collect();
        let release: Vec<i64> = self.held.stopping.difference(&wanted_set).copied().collect();
        let released = if release.is_empty() {
            0
        } else {
            lease::release(&**db, &self.me.name, &release).await.map_err(db_err("releasing leases"))?
        };
        let sent_at = Instant::now();
        let held = lease::acquire(&**db, &self.me.name, &wanted, self.opts.lease)
            .await
            .map_err(db_err("acquiring and renewing leases"))?;
        Ok(Round { live, held: held.into_iter().collect(), sent_at, released })
    }

    fn apply(&mut self, round: Round) {
        let before = self.held.held.clone();
        self.held.renewed(round.held, round.sent_at, &self.opts);
        metrics::gauge!("netwarden_cluster_live_instances").set(round.live.len() as f64);
        if before != self.held.held || round.released > 0 {
            tracing::info!(
                instance = %self.me.name,
                live = ?round.live,
                leased = self.held.held.len(),
                gained = self.held.held.difference(&before).count(),
                dropped = self.held.stopping.len(),
                released = round.released,
                "device leases changed"
            );
        }
        self.publish();
    }

    fn failed(&mut self, e: RoundError) {
        metrics::counter!("netwarden_cluster_lease_renew_failures_total").increment(1);
        if matches!(e, RoundError::NameTaken(_)) {
            tracing::error!(instance = %self.me.name, error = %e, "polling nothing until the name is free");
            self.held.drop_all();
            self.publish();
            return;
        }
        let until = self.held.valid_until.map(|t| t.saturating_duration_since(Instant::now()));
        tracing::warn!(
            instance = %self.me.name,
            error = %e,
            leased = self.held.held.len(),
            polling_for_at_most = ?until,
            "cluster round failed; keeping leased devices until their lease would run out"
        );
    }

    fn expire_if_due(&mut self) {
        let n = self.held.held.len();
        if self.held.expire(Instant::now()) {
            tracing::warn!(instance = %self.me.name, devices = n, "leases not renewed in time; stopped polling their devices");
            self.publish();
        }
    }

    /// Hands the scheduler the held devices, as the inventory currently describes them.
    fn publish(&self) {
        let owned: Vec<ScheduledDevice> =
            self.all.borrow().iter().filter(|d| self.held.held.contains(&d.id)).cloned().collect();
        metrics::gauge!("netwarden_cluster_leased_devices").set(owned.len() as f64);
        self.owned_tx.send_if_modified(|cur| {
            let differs = *cur != owned;
            if differs {
                *cur = owned;
            }
            differs
        });
    }

    /// Graceful exit: once the scheduler is gone, the leases go too, so others need not wait.
    async fn leave(mut self) {
        self.held.drop_all();
        self.publish();
        let wait = self.opts.lease;
        if tokio::time::timeout(wait, self.owned_tx.closed()).await.is_err() {
            tracing::warn!(instance = %self.me.name, "the scheduler did not stop within {wait:?}; leases left to expire");
            return;
        }
        let result = match self.pool.get().await {
            Ok(db) => lease::leave(&**db, &self.me).await.map_err(|e| crate::db::error_text(&e)),
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(n) => tracing::info!(instance = %self.me.name, released = n, "left the cluster"),
            Err(e) => {
                tracing::warn!(instance = %self.me.name, error = %e, "cannot release leases; they expire on their own")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(lease_ms: u64) -> ClusterOptions {
        ClusterOptions { instance: "a".into(), lease: Duration::from_millis(lease_ms) }
    }

    fn set(ids: &[i64]) -> BTreeSet<i64> {
        ids.iter().copied().collect()
    }

    #[test]
    fn renewal_every_third_and_a_margin_inside_it() {
        let o = opts(30_000);
        assert_eq!(o.renew_every(), Duration::from_secs(10));
        assert_eq!(o.safety_margin(), Duration::from_secs(3));
        let short = opts(300);
        assert!(short.safety_margin() <= short.renew_every());
    }

    #[test]
    fn local_lease_ends_a_margin_before_the_database_one_and_counts_from_sending() {
        let o = opts(3000);
        let sent = Instant::now();
        let mut h = Holdings::default();
        h.renewed(set(&[1, 2]), sent, &o);
        assert_eq!(h.valid_until, Some(sent + Duration::from_millis(2700)));
        assert!(!h.expire(sent + Duration::from_millis(2699)));
        assert!(h.expire(sent + Duration::from_millis(2700)));
        assert!(h.held.is_empty() && h.valid_until.is_none());
        assert_eq!(h.stopping, set(&[1, 2]), "expired devices are released once the database answers again");
    }

    #[test]
    fn devices_no_longer_held_are_released_one_round_later() {
        let o = opts(3000);
        let t = Instant::now();
        let mut h = Holdings::default();
        h.renewed(set(&[1, 2, 3]), t, &o);
        assert!(h.stopping.is_empty());
        h.renewed(set(&[2, 3, 4]), t, &o);
        assert_eq!(h.held, set(&[2, 3, 4]));
        assert_eq!(h.stopping, set(&[1]));
        h.renewed(set(&[]), t, &o);
        assert_eq!(h.valid_until, None, "holding nothing: nothing to expire");
        assert_eq!(h.stopping, set(&[2, 3, 4]));
    }

    #[test]
    fn default_names_differ_per_call_and_name_the_process() {
        let (a, b) = (default_instance_name(), default_instance_name());
        assert!(a.contains(&format!("-{}-", std::process::id())), "{a}");
        // 24 random bits: a collision here would be a broken generator, not bad luck (1 in 16M).
        assert_ne!(a, b);
    }
}
