//! The cluster tables (`cluster_instance`, `device_lease`): heartbeats, and device leases taken,
//! renewed and released in batches of one statement each. The database clock decides every
//! expiry, so instances never compare their own clocks.

use chrono::{DateTime, Utc};
use serde::Serialize;
use std::time::Duration;
use tokio_postgres::GenericClient;

/// Who this process is in the cluster tables.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The instance name, unique among live instances.
    pub name: String,
    /// Random per process: tells this process from another one started with the same name.
    pub session: String,
    pub host: String,
    pub pid: i32,
}

/// What a heartbeat learnt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Heartbeat {
    /// Registered; the names of every live instance, this one included, sorted.
    Live(Vec<String>),
    /// Another live process holds this instance name (its heartbeat is younger than the lease).
    NameTaken,
}

fn millis(d: Duration) -> i32 {
    d.as_millis().clamp(1, i32::MAX as u128) as i32
}

/// Renews this instance's heartbeat (registering it if needed) and lists the live instances:
/// those whose last heartbeat is younger than their lease. Rows of instances silent for
/// `forget_after` are deleted.
pub async fn heartbeat(
    db: &impl GenericClient,
    me: &Registration,
    lease: Duration,
    forget_after: Duration,
) -> Result<Heartbeat, tokio_postgres::Error> {
    // The CTE's own writes are invisible to the outer SELECT's snapshot: the outer query lists the
    // others, `beat` says whether this instance is in.
    let row = db
        .query_one(
            "WITH beat AS (
                 INSERT INTO cluster_instance AS i (name, session, host, pid, lease_ms)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (name) DO UPDATE
                    SET session = EXCLUDED.session, host = EXCLUDED.host, pid = EXCLUDED.pid,
                        lease_ms = EXCLUDED.lease_ms, heartbeat_at = now(),
                        started_at = CASE WHEN i.session = EXCLUDED.session THEN i.started_at ELSE now() END
                  WHERE i.session = EXCLUDED.session
                     OR i.heartbeat_at < now() - make_interval(secs => i.lease_ms / 1000.0)
                 RETURNING name
             ), forgotten AS (
                 DELETE FROM cluster_instance
                  WHERE name <> $1 AND heartbeat_at < now() - make_interval(secs => $6::int4 / 1000.0)
             )
             SELECT EXISTS (SELECT 1 FROM beat),
                    array(SELECT name FROM cluster_instance
                           WHERE name <> $1 AND heartbeat_at >= now() - make_interval(secs => lease_ms / 1000.0))",
            &[&me.name, &me.session, &me.host, &me.pid, &millis(lease), &millis(forget_after)],
        )
        .await?;
    if !row.get::<_, bool>(0) {
        return Ok(Heartbeat::NameTaken);
    }
    let mut live: Vec<String> = row.get(1);
    live.push(me.name.clone());
    live.sort();
    Ok(Heartbeat::Live(live))
}

/// Takes or renews the leases of `devices` for `owner` until the database's now + `lease`, in one
/// statement: a lease is taken when it is free, expired or already `owner`'s; a lease another
/// instance holds is left alone. Returns the device ids `owner` now holds among `devices`.
/// Ids of devices that no longer exist are skipped.
pub async fn acquire(
    db: &impl GenericClient,
    owner: &str,
    devices: &[i64],
    lease: Duration,
) -> Result<Vec<i64>, tokio_postgres::Error> {
    let rows = db
        .query(
            "INSERT INTO device_lease AS l (device_id, owner, expires_at)
             SELECT d.id, $1, now() + make_interval(secs => $3::int4 / 1000.0)
               FROM device d WHERE d.id = ANY($2)
             ON CONFLICT (device_id) DO UPDATE
                SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at,
                    acquired_at = CASE WHEN l.owner = EXCLUDED.owner THEN l.acquired_at ELSE now() END
              WHERE l.owner = EXCLUDED.owner OR l.expires_at <= now()
             RETURNING device_id",
            &[&owner, &devices, &millis(lease)],
        )
        .await?;
    let mut held: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    held.sort_unstable();
    Ok(held)
}

/// Gives up `owner`'s leases of `devices` (only those it still holds). Returns how many.
pub async fn release(db: &impl GenericClient, owner: &str, devices: &[i64]) -> Result<u64, tokio_postgres::Error> {
    db.execute("DELETE FROM device_lease WHERE owner = $1 AND device_id = ANY($2)", &[&owner, &devices]).await
}

/// Graceful exit: deletes every lease `me` holds, then its instance row. Returns how many leases.
/// Nothing is deleted when another process has since taken the name (its leases are its own). If
/// this fails halfway the rest expires on its own.
pub async fn leave(db: &impl GenericClient, me: &Registration) -> Result<u64, tokio_postgres::Error> {
    let released = db
        .execute(
            "DELETE FROM device_lease WHERE owner = $1
                AND EXISTS (SELECT 1 FROM cluster_instance WHERE name = $1 AND session = $2)",
            &[&me.name, &me.session],
        )
        .await?;
    db.execute("DELETE FROM cluster_instance WHERE name = $1 AND session = $2", &[&me.name, &me.session]).await?;
    Ok(released)
}

/// An instance as `GET /api/v1/cluster` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstanceView {
    pub name: String,
    pub host: String,
    pub pid: i32,
    pub lease_seconds: f64,
    pub started_at: DateTime<Utc>,
    pub heartbeat_at: DateTime<Utc>,
    /// Heartbeat younger than the lease.
    pub live: bool,
    /// Devices whose unexpired lease this instance holds.
    pub devices: i64,
}

/// Who owns what.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterView {
    pub instances: Vec<InstanceView>,
    /// Devices in the inventory without an unexpired lease (none while every instance is healthy
    /// and the assignment has settled).
    pub unleased_devices: i64,
}

/// Every known instance with its lease count, and the devices nobody holds.
pub async fn cluster_view(db: &impl GenericClient) -> Result<ClusterView, tokio_postgres::Error> {
    let rows = db
        .query(
            "SELECT i.name, i.host, i.pid, i.lease_ms, i.started_at, i.heartbeat_at,
                    i.heartbeat_at >= now() - make_interval(secs => i.lease_ms / 1000.0),
                    (SELECT count(*) FROM device_lease l WHERE l.owner = i.name AND l.expires_at > now())
               FROM cluster_instance i ORDER BY i.name",
            &[],
        )
        .await?;
    let instances = rows
        .iter()
        .map(|r| InstanceView {
            name: r.get(0),
            host: r.get(1),
            pid: r.get(2),
            lease_seconds: f64::from(r.get::<_, i32>(3)) / 1000.0,
            started_at: r.get(4),
            heartbeat_at: r.get(5),
            live: r.get(6),
            devices: r.get(7),
        })
        .collect();
    let unleased: i64 = db
        .query_one(
            "SELECT count(*) FROM device d
              WHERE NOT EXISTS (SELECT 1 FROM device_lease l WHERE l.device_id = d.id AND l.expires_at > now())",
            &[],
        )
        .await?
        .get(0);
    Ok(ClusterView { instances, unleased_devices: unleased })
}
