//! The remediation tables (migration 0012): proposals and their audit trail. The planner's sweep
//! reads the failing intents and the state of their devices, plans, and in one transaction records
//! new proposals and retires the open ones whose violation went away.

use crate::plan::{self, DeviceState, Item, Policy, Proposal, Violation};
use crate::playbook::{ItemKind, Playbooks};
use chrono::{DateTime, Utc};
use rules::intent::CheckOutcome;
use rules::source::DeviceMeta;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use tokio_postgres::GenericClient;

pub type DbResult<T> = Result<T, tokio_postgres::Error>;

/// Statuses in which a proposal is open (at most one open per device, playbook and target).
pub const OPEN: [&str; 4] = ["proposed", "approved", "applying", "applied"];
pub const STATUSES: [&str; 9] =
    ["proposed", "approved", "rejected", "applying", "applied", "verified", "rolled_back", "failed", "obsolete"];

/// The advisory lock that keeps two instances' planners from sweeping at once.
const SWEEP_LOCK: i64 = 0x6e77_7265_6d65_6431; // "nwremed1"

const UTC_TEXT: &str = "YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"";

/// The failing intents, with their devices' inventory data.
pub async fn violations(db: &impl GenericClient) -> DbResult<Vec<Violation>> {
    let rows = db
        .query(
            "SELECT r.intent, d.id, d.name, d.site, d.role, d.vendor, d.platform, d.tags, r.message, r.checks
               FROM intent_result r JOIN device d ON d.id = r.device_id
              WHERE r.verdict = 'fail'
              ORDER BY d.name, r.intent",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Violation {
            intent: r.get(0),
            device: DeviceMeta {
                id: r.get(1),
                name: r.get(2),
                site: r.get(3),
                role: r.get(4),
                vendor: r.get(5),
                tags: r.get(7),
            },
            platform: r.get(6),
            message: r.get(8),
            checks: serde_json::from_value::<Vec<CheckOutcome>>(r.get(9)).unwrap_or_default(),
        })
        .collect())
}

/// The current BGP sessions and interfaces of `devices` (with each port's LLDP neighbour now, and
/// the one it last lost). The columns after the device id are the item's fields in the order
/// [`ItemKind::fields`] lists them.
pub async fn device_states(db: &impl GenericClient, devices: &[i64]) -> DbResult<HashMap<i64, DeviceState>> {
    let mut out: HashMap<i64, DeviceState> = HashMap::new();
    let peers = db
        .query(
            &format!(
                "SELECT device_id, host(peer_addr), coalesce(remote_as::text, ''), coalesce(local_as::text, ''),
                        coalesce(host(local_addr), ''), coalesce(admin_status, ''), state, coalesce(last_error, ''),
                        to_char(state_since AT TIME ZONE 'UTC', '{UTC_TEXT}')
                   FROM bgp_peer WHERE device_id = ANY($1) AND afi_safi = ''
                  ORDER BY device_id, peer_addr"
            ),
            &[&devices],
        )
        .await?;
    for r in &peers {
        let fields = ItemKind::BgpPeer.fields();
        let item: Item = fields.iter().enumerate().map(|(i, f)| (*f, r.get::<_, String>(i + 1))).collect();
        out.entry(r.get(0)).or_default().bgp_peers.push(item);
    }
    let interfaces = db
        .query(
            &format!(
                "SELECT i.device_id, i.name, i.if_index::text, coalesce(i.descr, ''), coalesce(i.alias, ''),
                        coalesce(netwarden_if_status(i.admin_status), ''), coalesce(netwarden_if_status(i.oper_status), ''),
                        coalesce(now_.names, ''), coalesce(lost.sys, ''), coalesce(lost.port, ''),
                        coalesce(to_char(lost.lost_at AT TIME ZONE 'UTC', '{UTC_TEXT}'), ''),
                        coalesce(netwarden_if_status(far.admin_status), '')
                   FROM interface i
                   LEFT JOIN LATERAL (
                        SELECT string_agg(coalesce(nullif(l.sys_name, ''), l.chassis_id), ', ' ORDER BY l.chassis_id) AS names
                          FROM link_neighbor l
                         WHERE l.device_id = i.device_id AND l.lost_at IS NULL
                           AND (l.local_if_index = i.if_index OR l.local_if_name = i.name)) now_ ON true
                   LEFT JOIN LATERAL (
                        SELECT coalesce(nullif(l.sys_name, ''), l.chassis_id) AS sys, l.port_id AS port, l.lost_at
                          FROM link_neighbor l
                         WHERE l.device_id = i.device_id AND l.lost_at IS NOT NULL
                           AND (l.local_if_index = i.if_index OR l.local_if_name = i.name)
                         ORDER BY l.lost_at DESC LIMIT 1) lost ON true
                   -- The far end's port, when the lost neighbour is in the inventory (by name or host part).
                   LEFT JOIN LATERAL (
                        SELECT fi.admin_status FROM device fd JOIN interface fi ON fi.device_id = fd.id
                         WHERE (lower(fd.name) = lower(lost.sys) OR lower(fd.name) = lower(split_part(lost.sys, '.', 1)))
                           AND fi.name = lost.port
                         LIMIT 1) far ON true
                  WHERE i.device_id = ANY($1)
                  ORDER BY i.device_id, i.if_index"
            ),
            &[&devices],
        )
        .await?;
    for r in &interfaces {
        let fields = ItemKind::Interface.fields();
        let item: Item = fields.iter().enumerate().map(|(i, f)| (*f, r.get::<_, String>(i + 1))).collect();
        out.entry(r.get(0)).or_default().interfaces.push(item);
    }
    Ok(out)
}

/// What one sweep did.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Sweep {
    /// Another instance was sweeping; nothing was done.
    pub skipped: bool,
    pub violations: usize,
    pub proposed: Vec<i64>,
    pub obsoleted: Vec<i64>,
    /// Playbooks that failed on an item (condition or template errors), with where.
    pub errors: Vec<String>,
}

/// One planning pass, in one transaction: proposals for the failing intents that have none open,
/// and open `proposed` ones retired (`obsolete`) when their intent passes again, no longer applies,
/// or their playbook no longer matches their target. A proposal someone approved is left to the
/// executor. Serialized across instances by an advisory lock.
pub async fn sweep(
    client: &mut tokio_postgres::Client,
    playbooks: &Playbooks,
    policy: &Policy,
    at: DateTime<Utc>,
) -> DbResult<Sweep> {
    let tx = client.transaction().await?;
    let locked: bool = tx.query_one("SELECT pg_try_advisory_xact_lock($1)", &[&SWEEP_LOCK]).await?.get(0);
    if !locked {
        return Ok(Sweep { skipped: true, ..Sweep::default() });
    }
    let violations = violations(&tx).await?;
    let devices: Vec<i64> = violations.iter().map(|v| v.device.id).collect::<HashSet<_>>().into_iter().collect();
    let states = device_states(&tx, &devices).await?;
    let empty = DeviceState::default();
    let mut report = Sweep { violations: violations.len(), ..Sweep::default() };
    let mut candidates: Vec<Proposal> = Vec::new();
    for v in &violations {
        let (mut ps, errors) = plan::plan(playbooks, policy, v, states.get(&v.device.id).unwrap_or(&empty));
        report.errors.extend(errors);
        // Two failing intents on one device can call for the same fix: one proposal.
        ps.retain(|p| {
            !candidates.iter().any(|c| c.device_id == p.device_id && c.playbook == p.playbook && c.target == p.target)
        });
        candidates.extend(ps);
    }
    let keys: HashSet<(i64, &str, &str)> =
        candidates.iter().map(|c| (c.device_id, c.playbook.as_str(), c.target.as_str())).collect();

    let open = tx
        .query(
            "SELECT p.id, p.device_id, p.playbook, p.target, r.verdict
               FROM remediation_proposal p
               LEFT JOIN intent_result r ON r.intent = p.intent AND r.device_id = p.device_id
              WHERE p.status = 'proposed'
                FOR UPDATE OF p",
            &[],
        )
        .await?;
    for row in &open {
        let (id, device_id, playbook, target): (i64, i64, String, String) =
            (row.get(0), row.get(1), row.get(2), row.get(3));
        if keys.contains(&(device_id, playbook.as_str(), target.as_str())) {
            continue;
        }
        let note = match row.get::<_, Option<String>>(4).as_deref() {
            Some("pass") => "the intent passes again".to_string(),
            None => "the intent no longer applies to the device".to_string(),
            // Not polled, or the device does not answer: nothing is known, keep the proposal.
            Some("unknown") => continue,
            Some(_) => format!("{playbook} no longer matches {target}: the condition it addressed is gone"),
        };
        set_status(&tx, id, "obsolete", "proposed", "planner", &note, at).await?;
        report.obsoleted.push(id);
    }

    for c in &candidates {
        let row = tx
            .query_opt(
                "INSERT INTO remediation_proposal (created_at, updated_at, device_id, device, intent, playbook, target,
                        title, diagnosis, risk, approval_required, status, commands, rollback, verify_within_s, evidence)
                 VALUES ($1, $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'proposed', $11, $12, $13, $14)
                 ON CONFLICT (device_id, playbook, target) WHERE status IN ('proposed', 'approved', 'applying', 'applied')
                 DO NOTHING
                 RETURNING id",
                &[
                    &at,
                    &c.device_id,
                    &c.device,
                    &c.intent,
                    &c.playbook,
                    &c.target,
                    &c.title,
                    &c.diagnosis,
                    &c.risk.as_str(),
                    &c.approval_required,
                    &c.commands,
                    &c.rollback,
                    &c.verify_within_s,
                    &c.evidence,
                ],
            )
            .await?;
        if let Some(row) = row {
            let id: i64 = row.get(0);
            let note = if c.approval_required {
                format!("risk {}: needs approval", c.risk.as_str())
            } else {
                format!("risk {}: the policy allows applying it without approval", c.risk.as_str())
            };
            tx.execute(
                "INSERT INTO remediation_event (proposal_id, at, status, previous, actor, note)
                 VALUES ($1, $2, 'proposed', NULL, 'planner', $3)",
                &[&id, &at, &note],
            )
            .await?;
            report.proposed.push(id);
        }
    }
    tx.commit().await?;
    Ok(report)
}

/// Moves a proposal to `status` (only from `from`) and records the event. False when it was not in `from`.
pub async fn set_status(
    db: &impl GenericClient,
    id: i64,
    status: &str,
    from: &str,
    actor: &str,
    note: &str,
    at: DateTime<Utc>,
) -> DbResult<bool> {
    let n = db
        .execute(
            "WITH moved AS (
                UPDATE remediation_proposal SET status = $2, status_note = $5, updated_at = $6
                 WHERE id = $1 AND status = $3 RETURNING id)
             INSERT INTO remediation_event (proposal_id, at, status, previous, actor, note)
             SELECT id, $6, $2, $3, $4, $5 FROM moved",
            &[&id, &status, &from, &actor, &note, &at],
        )
        .await?;
    Ok(n == 1)
}

/// A proposal as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct StoredProposal {
    pub id: i64,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub device_id: i64,
    pub device: String,
    pub intent: String,
    pub playbook: String,
    pub target: String,
    pub title: String,
    pub diagnosis: String,
    pub risk: String,
    pub approval_required: bool,
    pub status: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub status_note: String,
    pub commands: Vec<String>,
    pub rollback: Vec<String>,
    pub verify_within_s: i32,
    pub evidence: serde_json::Value,
}

#[derive(Debug, Clone, Serialize)]
pub struct Event {
    pub at: DateTime<Utc>,
    pub status: String,
    pub previous: Option<String>,
    pub actor: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// Which proposals to list.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    /// Statuses; empty: all. `open` stands for every open status.
    pub statuses: Vec<String>,
    pub device: Option<String>,
    pub intent: Option<String>,
    pub limit: i64,
}

const COLUMNS: &str = "id, created_at, updated_at, device_id, device, intent, playbook, target, title, diagnosis, risk,
                       approval_required, status, status_note, commands, rollback, verify_within_s, evidence";

fn proposal(r: &tokio_postgres::Row) -> StoredProposal {
    StoredProposal {
        id: r.get(0),
        created_at: r.get(1),
        updated_at: r.get(2),
        device_id: r.get(3),
        device: r.get(4),
        intent: r.get(5),
        playbook: r.get(6),
        target: r.get(7),
        title: r.get(8),
        diagnosis: r.get(9),
        risk: r.get(10),
        approval_required: r.get(11),
        status: r.get(12),
        status_note: r.get(13),
        commands: r.get(14),
        rollback: r.get(15),
        verify_within_s: r.get(16),
        evidence: r.get(17),
    }
}

/// Proposals, newest first.
pub async fn list(db: &impl GenericClient, f: &Filter) -> DbResult<Vec<StoredProposal>> {
    let mut statuses: Vec<String> = Vec::new();
    for s in &f.statuses {
        if s == "open" {
            statuses.extend(OPEN.iter().map(|s| s.to_string()));
        } else {
            statuses.push(s.clone());
        }
    }
    let limit = if f.limit > 0 { f.limit } else { 100 };
    let rows = db
        .query(
            &format!(
                "SELECT {COLUMNS} FROM remediation_proposal
                  WHERE (cardinality($1::text[]) = 0 OR status = ANY($1))
                    AND ($2::text IS NULL OR device = $2) AND ($3::text IS NULL OR intent = $3)
                  ORDER BY created_at DESC, id DESC LIMIT $4"
            ),
            &[&statuses, &f.device, &f.intent, &limit],
        )
        .await?;
    Ok(rows.iter().map(proposal).collect())
}

/// One proposal and its audit trail, oldest event first.
pub async fn get(db: &impl GenericClient, id: i64) -> DbResult<Option<(StoredProposal, Vec<Event>)>> {
    let Some(row) = db.query_opt(&format!("SELECT {COLUMNS} FROM remediation_proposal WHERE id = $1"), &[&id]).await?
    else {
        return Ok(None);
    };
    let events = db
        .query(
            "SELECT at, status, previous, actor, note FROM remediation_event WHERE proposal_id = $1 ORDER BY at, id",
            &[&id],
        )
        .await?
        .iter()
        .map(|r| Event { at: r.get(0), status: r.get(1), previous: r.get(2), actor: r.get(3), note: r.get(4) })
        .collect();
    Ok(Some((proposal(&row), events)))
}
