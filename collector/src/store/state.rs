//! Device and interface state: one statement per poll, whatever the number of interfaces.

use crate::ifmib::InterfaceRow;
use crate::poll::DevicePoll;
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use tokio_postgres::GenericClient;

/// Upserts the interfaces seen in a poll and returns their ids by tracking key.
pub async fn interface_ids(
    db: &impl GenericClient,
    device_id: i64,
    at: DateTime<Utc>,
    rows: &[InterfaceRow],
) -> Result<HashMap<String, i64>, tokio_postgres::Error> {
    let mut names = Vec::with_capacity(rows.len());
    let mut idx = Vec::with_capacity(rows.len());
    let mut descr = Vec::with_capacity(rows.len());
    let mut alias = Vec::with_capacity(rows.len());
    let mut typ = Vec::with_capacity(rows.len());
    let mut mtu = Vec::with_capacity(rows.len());
    let mut speed = Vec::with_capacity(rows.len());
    let mut admin = Vec::with_capacity(rows.len());
    let mut oper = Vec::with_capacity(rows.len());
    let mut last_change = Vec::with_capacity(rows.len());
    for (r, key) in rows.iter().zip(crate::ifmib::tracking_keys(rows)) {
        names.push(key);
        idx.push(r.if_index as i32);
        descr.push(r.descr.clone());
        alias.push(r.alias.clone());
        typ.push(r.if_type);
        mtu.push(r.mtu);
        speed.push(r.speed_bps.map(|s| s.min(i64::MAX as u64) as i64));
        admin.push(r.admin_status);
        oper.push(r.oper_status);
        last_change.push(r.last_change_ticks.map(i64::from));
    }
    let rows = db
        .query(
            // One statement: the upsert, and a history row for every interface whose admin/oper
            // status changed (the `old` CTE sees the rows as they were before the upsert).
            "WITH new AS (
                 SELECT * FROM unnest($2::text[], $3::int[], $4::text[], $5::text[], $6::int[], $7::int[],
                                      $8::bigint[], $9::smallint[], $10::smallint[], $11::bigint[])
                          AS t(name, if_index, descr, alias, if_type, mtu, speed_bps, admin_status, oper_status, last_change_ticks)
             ),
             old AS (SELECT name, admin_status, oper_status FROM interface WHERE device_id = $1),
             history AS (
                 INSERT INTO state_change (time, device_id, kind, key, old_state, new_state, detail)
                 SELECT $12, $1, 'interface', n.name,
                        netwarden_if_status(o.admin_status) || '/' || netwarden_if_status(o.oper_status),
                        netwarden_if_status(n.admin_status) || '/' || netwarden_if_status(n.oper_status),
                        jsonb_build_object('if_index', n.if_index, 'last_change_ticks', n.last_change_ticks)
                   FROM new n JOIN old o USING (name)
                  WHERE (o.admin_status, o.oper_status) IS DISTINCT FROM (n.admin_status, n.oper_status)
             )
             INSERT INTO interface (device_id, name, if_index, descr, alias, if_type, mtu, speed_bps,
                                    admin_status, oper_status, last_change_ticks, first_seen, last_seen)
             SELECT $1, new.*, $12, $12 FROM new
             ON CONFLICT (device_id, name) DO UPDATE SET
                 if_index = EXCLUDED.if_index, descr = EXCLUDED.descr, alias = EXCLUDED.alias,
                 if_type = EXCLUDED.if_type, mtu = EXCLUDED.mtu, speed_bps = EXCLUDED.speed_bps,
                 admin_status = EXCLUDED.admin_status, oper_status = EXCLUDED.oper_status,
                 last_change_ticks = EXCLUDED.last_change_ticks, last_seen = EXCLUDED.last_seen
             RETURNING name, id",
            &[&device_id, &names, &idx, &descr, &alias, &typ, &mtu, &speed, &admin, &oper, &last_change, &at],
        )
        .await?;
    Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Marks the device up and stores its system group.
pub async fn record_poll_success(
    db: &impl GenericClient,
    device_id: i64,
    at: DateTime<Utc>,
    poll: &DevicePoll,
) -> Result<(), tokio_postgres::Error> {
    let s = &poll.system;
    let duration_ms = poll.duration.as_secs_f32() * 1000.0;
    db.execute(
        "WITH prev AS (SELECT status FROM device_state WHERE device_id = $1),
         upd AS (
         INSERT INTO device_state (device_id, status, status_since, last_poll, last_success, consecutive_failures,
                                   polls_total, sys_name, sys_descr, sys_object_id, sys_uptime_ticks,
                                   last_poll_duration_ms)
         VALUES ($1, 'up', $2, $2, $2, 0, 1, $3, $4, $5, $6, $7)
         ON CONFLICT (device_id) DO UPDATE SET
             status_since = CASE WHEN device_state.status = 'up' THEN device_state.status_since ELSE $2 END,
             status = 'up', last_poll = $2, last_success = $2, consecutive_failures = 0,
             polls_total = device_state.polls_total + 1,
             sys_name = $3, sys_descr = $4, sys_object_id = $5, sys_uptime_ticks = $6,
             last_poll_duration_ms = $7
         RETURNING status)
         INSERT INTO state_change (time, device_id, kind, key, old_state, new_state)
         SELECT $2, $1, 'device', 'status', prev.status, upd.status
           FROM upd LEFT JOIN prev ON true WHERE prev.status IS DISTINCT FROM upd.status",
        &[
            &device_id,
            &at,
            &s.sys_name,
            &s.sys_descr,
            &s.sys_object_id,
            &s.sys_uptime_ticks.map(i64::from),
            &duration_ms,
        ],
    )
    .await?;
    Ok(())
}

/// Counts a failed poll; the device goes down after `down_after` consecutive failures.
pub async fn record_poll_failure(
    db: &impl GenericClient,
    device_id: i64,
    at: DateTime<Utc>,
    kind: &str,
    error: &str,
    down_after: i32,
) -> Result<(), tokio_postgres::Error> {
    db.execute(
        "WITH prev AS (SELECT status FROM device_state WHERE device_id = $1),
         upd AS (
         INSERT INTO device_state (device_id, status, status_since, last_poll, last_error_kind, last_error,
                                   consecutive_failures, polls_total, polls_failed)
         VALUES ($1, CASE WHEN $5 <= 1 THEN 'down' ELSE 'unknown' END, $2, $2, $3, $4, 1, 1, 1)
         ON CONFLICT (device_id) DO UPDATE SET
             status = CASE WHEN device_state.consecutive_failures + 1 >= $5 THEN 'down' ELSE device_state.status END,
             status_since = CASE WHEN device_state.status <> 'down' AND device_state.consecutive_failures + 1 >= $5
                                 THEN $2 ELSE device_state.status_since END,
             last_poll = $2, last_error_kind = $3, last_error = $4,
             consecutive_failures = device_state.consecutive_failures + 1,
             polls_total = device_state.polls_total + 1, polls_failed = device_state.polls_failed + 1
         RETURNING status)
         INSERT INTO state_change (time, device_id, kind, key, old_state, new_state, detail)
         SELECT $2, $1, 'device', 'status', prev.status, upd.status, jsonb_build_object('error_kind', $3::text, 'error', $4::text)
           FROM upd LEFT JOIN prev ON true WHERE prev.status IS DISTINCT FROM upd.status",
        &[&device_id, &at, &kind, &error, &down_after],
    )
    .await?;
    Ok(())
}

/// Counts polls skipped because the previous one overran its interval.
pub async fn record_skipped(
    db: &impl GenericClient,
    device_id: i64,
    skipped: i64,
) -> Result<(), tokio_postgres::Error> {
    db.execute(
        "INSERT INTO device_state (device_id, polls_skipped) VALUES ($1, $2)
         ON CONFLICT (device_id) DO UPDATE SET polls_skipped = device_state.polls_skipped + $2",
        &[&device_id, &skipped],
    )
    .await?;
    Ok(())
}
