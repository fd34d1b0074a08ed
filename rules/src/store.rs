//! The alert tables (migration 0007): active alerts, their history, silences, acknowledgements and
//! notification groups. The engine's state changes, the groups and the outbox rows of one step are
//! written in one transaction, so a crash never leaves a page without its record or the reverse.

use crate::alert::{AlertState, Labels, Notification, Severity, Suppression};
use crate::dispatch::Group;
use crate::engine::{Change, Transition};
use crate::matcher::Matcher;
use crate::suppress::Silence;
use chrono::{DateTime, Utc};
use serde::Serialize;
use std::collections::BTreeMap;
use tokio_postgres::GenericClient;

pub type DbResult<T> = Result<T, tokio_postgres::Error>;

fn change_name(c: Change) -> &'static str {
    match c {
        Change::Pending => "pending",
        Change::PendingCancelled => "pending_cancelled",
        Change::Firing => "firing",
        Change::Resolved => "resolved",
        Change::FlappingStarted => "flapping_started",
        Change::FlappingStopped => "flapping_stopped",
    }
}

/// Statements of the alert tables, each over column arrays so that one statement writes any number of rows.
/// [`write_step`] pipelines them in one transaction; the one-row functions below run the same statements.
mod sql {
    pub const ALERT_DELETE: &str = "DELETE FROM alert WHERE fingerprint = ANY($1::text[])";
    pub const ALERT_UPSERT: &str = "INSERT INTO alert (fingerprint, rule, severity, state, labels, annotations,
            device_id, series_kind, series_item, active_since, firing_since, flapping, updated_at)
         SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::jsonb[], $7::int8[],
                              $8::text[], $9::text[], $10::timestamptz[], $11::timestamptz[], $12::bool[],
                              $13::timestamptz[])
         ON CONFLICT (fingerprint) DO UPDATE SET
            state = EXCLUDED.state, labels = EXCLUDED.labels, annotations = EXCLUDED.annotations,
            firing_since = EXCLUDED.firing_since, flapping = EXCLUDED.flapping, updated_at = EXCLUDED.updated_at";
    pub const EVENT_INSERT: &str = "INSERT INTO alert_event (at, fingerprint, rule, change, state, severity, labels,
            annotations)
         SELECT at, fp, rule, change, state, severity, labels, annotations
         FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::jsonb[],
                     $8::jsonb[]) WITH ORDINALITY AS u(at, fp, rule, change, state, severity, labels, annotations, ord)
         ORDER BY ord";
    pub const ACK_UPDATE: &str = "UPDATE alert a SET ack_by = u.who, ack_comment = u.note, ack_until = u.until_at,
            ack_at = CASE WHEN u.who IS NULL THEN NULL ELSE u.at END, updated_at = u.at
         FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[])
              AS u(fp, who, note, until_at, at)
         WHERE a.fingerprint = u.fp
         RETURNING a.fingerprint";
    pub const ACK_EVENTS: &str = "INSERT INTO alert_event (at, fingerprint, rule, change, state, severity, labels,
            annotations, detail)
         SELECT u.at, a.fingerprint, a.rule, CASE WHEN u.who IS NULL THEN 'unacknowledged' ELSE 'acknowledged' END,
                a.state, a.severity, a.labels, a.annotations,
                CASE WHEN u.who IS NULL THEN NULL ELSE u.who || ': ' || coalesce(u.note, '') END
         FROM unnest($1::text[], $2::text[], $3::text[], $4::timestamptz[], $5::timestamptz[])
              WITH ORDINALITY AS u(fp, who, note, until_at, at, ord)
         JOIN alert a ON a.fingerprint = u.fp
         ORDER BY u.ord";
    pub const SUPPRESSION_UPDATE: &str = "UPDATE alert a SET suppressed_by = u.value, updated_at = u.at
         FROM unnest($1::text[], $2::jsonb[], $3::timestamptz[]) AS u(fp, value, at)
         WHERE a.fingerprint = u.fp";
    pub const SUPPRESSION_EVENTS: &str = "INSERT INTO alert_event (at, fingerprint, rule, change, state, severity,
            labels, annotations, detail)
         SELECT u.at, a.fingerprint, a.rule, CASE WHEN u.detail IS NULL THEN 'unsuppressed' ELSE 'suppressed' END,
                a.state, a.severity, a.labels, a.annotations, u.detail
         FROM unnest($1::text[], $2::text[], $3::timestamptz[]) WITH ORDINALITY AS u(fp, detail, at, ord)
         JOIN alert a ON a.fingerprint = u.fp
         ORDER BY u.ord";
    pub const GROUP_UPSERT: &str = "INSERT INTO alert_group (key, state, updated_at)
         SELECT k, s, now() FROM unnest($1::text[], $2::jsonb[]) AS u(k, s)
         ON CONFLICT (key) DO UPDATE SET state = EXCLUDED.state, updated_at = now()";
    pub const GROUP_DELETE: &str = "DELETE FROM alert_group WHERE key = ANY($1::text[])";

    /// The common step in one statement (so one message, one implicit transaction): alert rows deleted and
    /// upserted, their events, groups saved and deleted, and the outbox rows (`$23`–`$29`, as
    /// [`crate::outbox::INSERT_BATCH`]), returned in order. Valid when no alert is both deleted and upserted
    /// and there are no acknowledgements or suppression changes (those read the alert rows written before
    /// them, which a single statement's sub-statements cannot see).
    pub const STEP: &str = "WITH
        deleted AS (DELETE FROM alert WHERE fingerprint = ANY($1::text[])),
        upserted AS (INSERT INTO alert (fingerprint, rule, severity, state, labels, annotations,
                device_id, series_kind, series_item, active_since, firing_since, flapping, updated_at)
            SELECT * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::jsonb[], $7::jsonb[],
                                 $8::int8[], $9::text[], $10::text[], $11::timestamptz[], $12::timestamptz[],
                                 $13::bool[], $14::timestamptz[])
            ON CONFLICT (fingerprint) DO UPDATE SET
                state = EXCLUDED.state, labels = EXCLUDED.labels, annotations = EXCLUDED.annotations,
                firing_since = EXCLUDED.firing_since, flapping = EXCLUDED.flapping, updated_at = EXCLUDED.updated_at),
        events AS (INSERT INTO alert_event (at, fingerprint, rule, change, state, severity, labels, annotations)
            SELECT at, fp, rule, change, state, severity, labels, annotations
            FROM unnest($15::timestamptz[], $16::text[], $17::text[], $18::text[], $19::text[], $20::text[],
                        $21::jsonb[], $22::jsonb[])
                 WITH ORDINALITY AS u(at, fp, rule, change, state, severity, labels, annotations, ord)
            ORDER BY ord),
        groups AS (INSERT INTO alert_group (key, state, updated_at)
            SELECT k, s, now() FROM unnest($30::text[], $31::jsonb[]) AS u(k, s)
            ON CONFLICT (key) DO UPDATE SET state = EXCLUDED.state, updated_at = now()),
        groups_deleted AS (DELETE FROM alert_group WHERE key = ANY($32::text[])),
        outbox AS (INSERT INTO notification_outbox
                (receiver, group_key, kind, notification, created_at, due_at, state, attempts, claimed_until)
            SELECT receiver, group_key, kind, notification, created_at, now(),
                   CASE WHEN $28::bool THEN 'delivering' ELSE 'pending' END, CASE WHEN $28::bool THEN 1 ELSE 0 END,
                   CASE WHEN $28::bool THEN now() + make_interval(secs => $29::float8) END
            FROM unnest($23::text[], $24::text[], $25::text[], $26::jsonb[], $27::timestamptz[])
                 WITH ORDINALITY AS u(receiver, group_key, kind, notification, created_at, ord)
            ORDER BY ord
            RETURNING id, claimed_until)
        SELECT id, claimed_until FROM outbox";
}

type Param<'a> = &'a (dyn tokio_postgres::types::ToSql + Sync);

/// An acknowledgement change as written: `by = None` takes it back.
#[derive(Debug, Clone, Copy)]
pub struct AckChange<'a> {
    pub fingerprint: &'a str,
    pub by: Option<&'a str>,
    pub comment: Option<&'a str>,
    pub until: Option<DateTime<Utc>>,
    pub at: DateTime<Utc>,
}

/// The rows one step writes, as column arrays, in the order they are written: alerts that resolved are deleted,
/// the others upserted (each alert once, as its last transition leaves it), one history event per transition,
/// then acknowledgements, suppression changes, groups saved and deleted.
/// JSON columns are serialized straight into the statement's parameters (no `serde_json::Value` in between).
#[derive(Default)]
pub struct StepRows<'a> {
    deleted: Vec<&'a str>,
    alerts: AlertColumns<'a>,
    events: EventColumns<'a>,
    acks_last: AckColumns,
    acks: AckColumns,
    suppressions_last: SuppressionColumns<'a>,
    /// Every change, for the events: the reason as text.
    suppressions: (Vec<&'a str>, Vec<Option<String>>, Vec<DateTime<Utc>>),
    groups: (Vec<&'a str>, Vec<Json<&'a Group>>),
    groups_deleted: Vec<&'a str>,
}

use tokio_postgres::types::Json;

/// The last suppression change of each alert, for its row.
#[derive(Default)]
struct SuppressionColumns<'a> {
    fingerprint: Vec<&'a str>,
    reason: Vec<Option<Json<&'a Suppression>>>,
    at: Vec<DateTime<Utc>>,
}

#[derive(Default)]
struct AlertColumns<'a> {
    fingerprint: Vec<&'a str>,
    rule: Vec<&'a str>,
    severity: Vec<&'static str>,
    state: Vec<&'static str>,
    labels: Vec<Json<&'a Labels>>,
    annotations: Vec<Json<&'a BTreeMap<String, String>>>,
    device_id: Vec<i64>,
    series_kind: Vec<&'static str>,
    series_item: Vec<&'a str>,
    active_since: Vec<DateTime<Utc>>,
    firing_since: Vec<Option<DateTime<Utc>>>,
    flapping: Vec<bool>,
    updated_at: Vec<DateTime<Utc>>,
}

#[derive(Default)]
struct EventColumns<'a> {
    at: Vec<DateTime<Utc>>,
    fingerprint: Vec<&'a str>,
    rule: Vec<&'a str>,
    change: Vec<&'static str>,
    state: Vec<&'static str>,
    severity: Vec<&'static str>,
    labels: Vec<Json<&'a Labels>>,
    annotations: Vec<Json<&'a BTreeMap<String, String>>>,
}

#[derive(Default)]
struct AckColumns {
    fingerprint: Vec<String>,
    by: Vec<Option<String>>,
    comment: Vec<Option<String>>,
    until: Vec<Option<DateTime<Utc>>>,
    at: Vec<DateTime<Utc>>,
}

impl AlertColumns<'_> {
    /// In the order of the upsert's columns (`sql::ALERT_UPSERT` `$1`–`$13`, `sql::STEP` `$2`–`$14`).
    fn params(&self) -> Vec<Param<'_>> {
        vec![
            &self.fingerprint,
            &self.rule,
            &self.severity,
            &self.state,
            &self.labels,
            &self.annotations,
            &self.device_id,
            &self.series_kind,
            &self.series_item,
            &self.active_since,
            &self.firing_since,
            &self.flapping,
            &self.updated_at,
        ]
    }
}

impl EventColumns<'_> {
    /// In the order of the event insert's columns (`sql::EVENT_INSERT` `$1`–`$8`, `sql::STEP` `$15`–`$22`).
    fn params(&self) -> Vec<Param<'_>> {
        vec![
            &self.at,
            &self.fingerprint,
            &self.rule,
            &self.change,
            &self.state,
            &self.severity,
            &self.labels,
            &self.annotations,
        ]
    }
}

impl AckColumns {
    fn push(&mut self, a: &AckChange<'_>) {
        self.fingerprint.push(a.fingerprint.to_string());
        self.by.push(a.by.map(str::to_string));
        self.comment.push(a.comment.map(str::to_string));
        self.until.push(a.until);
        self.at.push(a.at);
    }

    fn params(&self) -> Vec<Param<'_>> {
        vec![&self.fingerprint, &self.by, &self.comment, &self.until, &self.at]
    }
}

impl<'a> StepRows<'a> {
    /// Transitions in the order they happened.
    pub fn transitions(&mut self, ts: &'a [Transition]) {
        use std::collections::HashMap;
        // The alert row ends as the last transition of each alert leaves it; an alert that resolved in between is
        // deleted first, so a new episode starts from a fresh row as it would one transition at a time.
        let mut last: HashMap<&str, &Transition> = HashMap::new();
        let mut resolved_within: std::collections::HashSet<&str> = std::collections::HashSet::new();
        for t in ts {
            let e = &mut self.events;
            e.at.push(t.at);
            e.fingerprint.push(&t.fingerprint);
            e.rule.push(&t.rule);
            e.change.push(change_name(t.change));
            e.state.push(t.state.as_str());
            e.severity.push(t.severity.as_str());
            e.labels.push(Json(&t.labels));
            e.annotations.push(Json(&t.annotations));
            if t.state == AlertState::Resolved {
                resolved_within.insert(&t.fingerprint);
            }
            last.insert(&t.fingerprint, t);
        }
        let mut order: Vec<(&str, &Transition)> = last.into_iter().collect();
        order.sort_unstable_by_key(|(fp, _)| *fp);
        self.deleted.extend(order.iter().filter(|(fp, _)| resolved_within.contains(fp)).map(|(fp, _)| *fp));
        for (_, t) in order.into_iter().filter(|(_, t)| t.state != AlertState::Resolved) {
            let a = &mut self.alerts;
            a.fingerprint.push(&t.fingerprint);
            a.rule.push(&t.rule);
            a.severity.push(t.severity.as_str());
            a.state.push(t.state.as_str());
            a.labels.push(Json(&t.labels));
            a.annotations.push(Json(&t.annotations));
            a.device_id.push(t.device_id);
            a.series_kind.push(t.series.kind.as_str());
            a.series_item.push(&t.series.item);
            a.active_since.push(t.active_since);
            a.firing_since.push(t.firing_since);
            a.flapping.push(t.flapping);
            a.updated_at.push(t.at);
        }
    }

    /// Acknowledgement changes in the order they happened.
    pub fn acks(&mut self, acks: &[AckChange<'_>]) {
        for (i, a) in acks.iter().enumerate() {
            self.acks.push(a);
            if !acks[i + 1..].iter().any(|later| later.fingerprint == a.fingerprint) {
                self.acks_last.push(a);
            }
        }
    }

    /// Suppression changes in the order they happened.
    pub fn suppressions(&mut self, changes: &'a [(String, Option<Suppression>, DateTime<Utc>)]) {
        let mut seen = std::collections::HashSet::new();
        for (fp, sup, at) in changes.iter().rev() {
            if seen.insert(fp.as_str()) {
                self.suppressions_last.fingerprint.push(fp);
                self.suppressions_last.reason.push(sup.as_ref().map(Json));
                self.suppressions_last.at.push(*at);
            }
        }
        for (fp, sup, at) in changes {
            self.suppressions.0.push(fp);
            self.suppressions.1.push(sup.as_ref().map(ToString::to_string));
            self.suppressions.2.push(*at);
        }
    }

    /// A group's new saved state.
    pub fn save_group(&mut self, g: &'a Group) {
        self.groups.0.push(&g.key);
        self.groups.1.push(Json(g));
    }

    pub fn delete_group(&mut self, key: &'a str) {
        self.groups_deleted.push(key);
    }

    /// Whether [`sql::STEP`] can write these rows in one statement.
    fn fits_one_statement(&self) -> bool {
        self.acks.fingerprint.is_empty()
            && self.suppressions.0.is_empty()
            && !self.deleted.iter().any(|fp| self.alerts.fingerprint.contains(fp))
    }

    /// The parameters of [`sql::STEP`] `$1`–`$22` and `$30`–`$32` (the outbox's `$23`–`$29` go between).
    fn step_params<'p>(&'p self, outbox: &'p crate::outbox::InsertBatch<'_>) -> Vec<Param<'p>> {
        let mut p: Vec<Param<'p>> = vec![&self.deleted];
        p.extend(self.alerts.params());
        p.extend(self.events.params());
        p.extend(outbox.params());
        p.extend::<[Param<'p>; 3]>([&self.groups.0, &self.groups.1, &self.groups_deleted]);
        p
    }

    /// The statements to run, in order, with their parameters.
    fn statements(&self) -> Vec<(&'static str, Vec<Param<'_>>)> {
        let mut out: Vec<(&'static str, Vec<Param<'_>>)> = Vec::new();
        if !self.deleted.is_empty() {
            out.push((sql::ALERT_DELETE, vec![&self.deleted]));
        }
        if !self.alerts.fingerprint.is_empty() {
            out.push((sql::ALERT_UPSERT, self.alerts.params()));
        }
        if !self.events.at.is_empty() {
            out.push((sql::EVENT_INSERT, self.events.params()));
        }
        if !self.acks.fingerprint.is_empty() {
            out.push((sql::ACK_UPDATE, self.acks_last.params()));
            out.push((sql::ACK_EVENTS, self.acks.params()));
        }
        if !self.suppressions.0.is_empty() {
            let (l, s) = (&self.suppressions_last, &self.suppressions);
            out.push((sql::SUPPRESSION_UPDATE, vec![&l.fingerprint, &l.reason, &l.at]));
            out.push((sql::SUPPRESSION_EVENTS, vec![&s.0, &s.1, &s.2]));
        }
        if !self.groups.0.is_empty() {
            out.push((sql::GROUP_UPSERT, vec![&self.groups.0, &self.groups.1]));
        }
        if !self.groups_deleted.is_empty() {
            out.push((sql::GROUP_DELETE, vec![&self.groups_deleted]));
        }
        out
    }

    /// Runs the statements one after the other on `db` (the caller's transaction, if any).
    async fn run(&self, db: &impl GenericClient) -> DbResult<Vec<Vec<tokio_postgres::Row>>> {
        let mut out = Vec::new();
        for (q, params) in self.statements() {
            out.push(db.query(q, &params).await?);
        }
        Ok(out)
    }
}

/// Writes one step and its notifications (`outbox`, see [`crate::outbox::INSERT_BATCH`]) in one transaction,
/// in one round trip: the statements are prepared once per connection, then `BEGIN`, the statements and
/// `COMMIT` are sent together (pipelined). Every statement's result is checked: after a failure the server
/// turns the `COMMIT` into a rollback and the first error is returned. Returns the outbox rows in the order of
/// the notifications.
///
/// The common step (no acknowledgements or suppression changes, no alert both resolved and active again) is
/// one statement, [`sql::STEP`]: atomic on its own, one message and one answer.
pub async fn write_step(
    client: &deadpool_postgres::ClientWrapper,
    rows: &StepRows<'_>,
    outbox: &crate::outbox::InsertBatch<'_>,
) -> DbResult<Vec<(i64, Option<DateTime<Utc>>)>> {
    if rows.fits_one_statement() {
        let stmt = client.prepare_cached(sql::STEP).await?;
        let returned = client.query(&stmt, &rows.step_params(outbox)).await?;
        return Ok(crate::outbox::inserted(&returned));
    }
    let mut statements = rows.statements();
    if !outbox.is_empty() {
        statements.push((crate::outbox::INSERT_BATCH, outbox.params().to_vec()));
    }
    if statements.is_empty() {
        return Ok(Vec::new());
    }
    let prepared = futures_util::future::try_join_all(statements.iter().map(|(q, _)| client.prepare_cached(q))).await?;
    type Pending<'a> =
        std::pin::Pin<Box<dyn std::future::Future<Output = DbResult<Vec<tokio_postgres::Row>>> + Send + 'a>>;
    let mut pipeline: Vec<Pending<'_>> = Vec::with_capacity(statements.len() + 2);
    pipeline.push(Box::pin(async { client.batch_execute("BEGIN").await.map(|()| Vec::new()) }));
    for (stmt, (_, params)) in prepared.iter().zip(&statements) {
        pipeline.push(Box::pin(client.query(stmt, params)));
    }
    pipeline.push(Box::pin(async { client.batch_execute("COMMIT").await.map(|()| Vec::new()) }));
    let mut results = join_in_order(pipeline).await;
    let commit = results.pop().expect("COMMIT is in the pipeline");
    let mut last = Vec::new();
    for r in results {
        last = r?;
    }
    commit?;
    Ok(if outbox.is_empty() { Vec::new() } else { crate::outbox::inserted(&last) })
}

/// Awaits all `futures`, polling them in the order given, so that tokio-postgres sends their requests in that
/// order (it sends a request when its future is first polled).
async fn join_in_order<T>(
    mut futures: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + '_>>>,
) -> Vec<T> {
    let mut out: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (f, slot) in futures.iter_mut().zip(out.iter_mut()) {
            if slot.is_none() {
                match f.as_mut().poll(cx) {
                    std::task::Poll::Ready(v) => *slot = Some(v),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending { std::task::Poll::Pending } else { std::task::Poll::Ready(()) }
    })
    .await;
    out.into_iter().map(|v| v.expect("every future completed")).collect()
}

/// Writes one transition: the alert row (inserted, updated or deleted) and a history event.
pub async fn record_transition(db: &impl GenericClient, t: &Transition) -> DbResult<()> {
    let mut rows = StepRows::default();
    rows.transitions(std::slice::from_ref(t));
    rows.run(db).await.map(drop)
}

/// Records a change of the reason an alert is suppressed (history + current row).
pub async fn record_suppression(
    db: &impl GenericClient,
    fingerprint: &str,
    suppression: Option<&Suppression>,
    at: DateTime<Utc>,
) -> DbResult<()> {
    let mut rows = StepRows::default();
    let change = [(fingerprint.to_string(), suppression.cloned(), at)];
    rows.suppressions(&change);
    rows.run(db).await.map(drop)
}

pub async fn save_group(db: &impl GenericClient, g: &Group) -> DbResult<()> {
    let mut rows = StepRows::default();
    rows.save_group(g);
    rows.run(db).await.map(drop)
}

pub async fn delete_groups(db: &impl GenericClient, keys: &[String]) -> DbResult<()> {
    let mut rows = StepRows::default();
    keys.iter().for_each(|k| rows.delete_group(k));
    rows.run(db).await.map(drop)
}

pub async fn load_groups(db: &impl GenericClient) -> DbResult<Vec<Group>> {
    let rows = db.query("SELECT state FROM alert_group", &[]).await?;
    Ok(rows.iter().filter_map(|r| serde_json::from_value(r.get::<_, serde_json::Value>(0)).ok()).collect())
}

/// An alert as stored: what the API lists and what a restart restores.
#[derive(Debug, Clone, Serialize)]
pub struct StoredAlert {
    pub fingerprint: String,
    pub rule: String,
    pub severity: String,
    pub state: String,
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub device_id: Option<i64>,
    pub series_kind: String,
    pub series_item: String,
    pub active_since: DateTime<Utc>,
    pub firing_since: Option<DateTime<Utc>>,
    pub flapping: bool,
    pub suppressed_by: Option<Suppression>,
    /// Shown as "suppressed by spine1" etc.
    pub suppressed_reason: Option<String>,
    pub acknowledged_by: Option<String>,
    pub ack_comment: Option<String>,
    pub ack_at: Option<DateTime<Utc>>,
    pub ack_until: Option<DateTime<Utc>>,
}

/// A JSON column this module wrote (labels, annotations); unreadable reads as empty.
fn json_column<T: serde::de::DeserializeOwned + Default>(r: &tokio_postgres::Row, i: usize) -> T {
    serde_json::from_value(r.get(i)).unwrap_or_default()
}

pub async fn active_alerts(db: &impl GenericClient) -> DbResult<Vec<StoredAlert>> {
    let rows = db
        .query(
            "SELECT fingerprint, rule, severity, state, labels, annotations, device_id, series_kind, series_item,
                    active_since, firing_since, flapping, suppressed_by, ack_by, ack_comment, ack_at, ack_until
             FROM alert ORDER BY firing_since DESC NULLS LAST, active_since DESC",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| {
            let suppressed_by: Option<Suppression> =
                r.get::<_, Option<serde_json::Value>>(12).and_then(|v| serde_json::from_value(v).ok());
            StoredAlert {
                fingerprint: r.get(0),
                rule: r.get(1),
                severity: r.get(2),
                state: r.get(3),
                labels: json_column(r, 4),
                annotations: json_column(r, 5),
                device_id: r.get(6),
                series_kind: r.get(7),
                series_item: r.get(8),
                active_since: r.get(9),
                firing_since: r.get(10),
                flapping: r.get(11),
                suppressed_reason: suppressed_by.as_ref().map(ToString::to_string),
                suppressed_by,
                acknowledged_by: r.get(13),
                ack_comment: r.get(14),
                ack_at: r.get(15),
                ack_until: r.get(16),
            }
        })
        .collect())
}

/// One history event.
#[derive(Debug, Clone, Serialize)]
pub struct AlertEvent {
    pub at: DateTime<Utc>,
    pub fingerprint: String,
    pub rule: String,
    pub change: String,
    pub state: String,
    pub severity: String,
    pub labels: Labels,
    pub annotations: BTreeMap<String, String>,
    pub detail: Option<String>,
}

/// History, newest first: of one alert, or of all since a time.
pub async fn history(
    db: &impl GenericClient,
    fingerprint: Option<&str>,
    since: DateTime<Utc>,
    limit: i64,
) -> DbResult<Vec<AlertEvent>> {
    let rows = db
        .query(
            "SELECT at, fingerprint, rule, change, state, severity, labels, annotations, detail FROM alert_event
             WHERE ($1::text IS NULL OR fingerprint = $1) AND at >= $2 ORDER BY at DESC, id DESC LIMIT $3",
            &[&fingerprint, &since, &limit],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| AlertEvent {
            at: r.get(0),
            fingerprint: r.get(1),
            rule: r.get(2),
            change: r.get(3),
            state: r.get(4),
            severity: r.get(5),
            labels: json_column(r, 6),
            annotations: json_column(r, 7),
            detail: r.get(8),
        })
        .collect())
}

/// Acknowledges (or, with `by = None`, un-acknowledges) an active alert. Returns false when no
/// such alert is active.
pub async fn set_ack(
    db: &impl GenericClient,
    fingerprint: &str,
    by: Option<&str>,
    comment: Option<&str>,
    until: Option<DateTime<Utc>>,
    at: DateTime<Utc>,
) -> DbResult<bool> {
    let mut rows = StepRows::default();
    rows.acks(&[AckChange { fingerprint, by, comment, until, at }]);
    let results = rows.run(db).await?;
    Ok(results.first().is_some_and(|updated| !updated.is_empty()))
}

/// A silence as the API shows it.
#[derive(Debug, Clone, Serialize)]
pub struct SilenceRow {
    pub id: i64,
    pub matchers: Vec<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub created_by: String,
    pub comment: String,
    pub created_at: DateTime<Utc>,
}

impl SilenceRow {
    pub fn compile(&self) -> Result<Silence, String> {
        let matchers = self.matchers.iter().map(|m| Matcher::parse(m)).collect::<Result<Vec<_>, _>>()?;
        Ok(Silence {
            id: self.id,
            matchers,
            starts_at: self.starts_at,
            ends_at: self.ends_at,
            created_by: self.created_by.clone(),
            comment: self.comment.clone(),
        })
    }
}

/// Silences that have not ended by `since`, oldest first.
pub async fn silences(db: &impl GenericClient, since: DateTime<Utc>) -> DbResult<Vec<SilenceRow>> {
    let rows = db
        .query(
            "SELECT id, matchers, starts_at, ends_at, created_by, comment, created_at FROM silence
             WHERE ends_at > $1 ORDER BY id",
            &[&since],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| SilenceRow {
            id: r.get(0),
            matchers: r.get(1),
            starts_at: r.get(2),
            ends_at: r.get(3),
            created_by: r.get(4),
            comment: r.get(5),
            created_at: r.get(6),
        })
        .collect())
}

/// Creates a silence after checking its matchers. Returns its id.
pub async fn create_silence(
    db: &impl GenericClient,
    matchers: &[String],
    starts_at: DateTime<Utc>,
    ends_at: DateTime<Utc>,
    created_by: &str,
    comment: &str,
) -> Result<i64, String> {
    if matchers.is_empty() {
        return Err("a silence needs at least one matcher".into());
    }
    for m in matchers {
        Matcher::parse(m)?;
    }
    if ends_at <= starts_at {
        return Err("a silence must end after it starts".into());
    }
    let row = db
        .query_one(
            "INSERT INTO silence (matchers, starts_at, ends_at, created_by, comment) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            &[&matchers, &starts_at, &ends_at, &created_by, &comment],
        )
        .await
        .map_err(|e| collector::db::error_text(&e))?;
    Ok(row.get(0))
}

/// Ends a silence now. Returns false when it does not exist or has already ended.
pub async fn expire_silence(db: &impl GenericClient, id: i64, now: DateTime<Utc>) -> DbResult<bool> {
    let n = db
        .execute(
            "UPDATE silence SET ends_at = greatest($2, starts_at + interval '1 microsecond') WHERE id = $1 AND ends_at > $2",
            &[&id, &now],
        )
        .await?;
    Ok(n > 0)
}

/// Enqueues notifications (`pending`) in the caller's transaction.
pub async fn enqueue_all(db: &impl GenericClient, ns: &[Notification]) -> Result<(), String> {
    let batch = crate::outbox::InsertBatch::new(ns, None);
    if !batch.is_empty() {
        db.query(crate::outbox::INSERT_BATCH, &batch.params()).await.map_err(|e| collector::db::error_text(&e))?;
    }
    Ok(())
}

/// Severity from its stored name (rows are written by this module, so unknown means info).
pub fn severity(s: &str) -> Severity {
    s.parse().unwrap_or(Severity::Info)
}
