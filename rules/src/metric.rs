//! Metric series: rules over any numeric series the database holds, defined by SQL queries in the
//! alerting file. Each query runs on its own interval in a read-only transaction with a statement
//! timeout; each row is one series of the `metric` source: the `device` column (an inventory
//! device name) ties it to a device (scope, suppression), the `value` column is its value, and
//! every other column becomes a label. What the polls keep in memory covers the latest state;
//! metric series reach what only the database has: long windows over the stored samples and
//! rollups (a 95th percentile over a day, traffic against the same hour last week), trap rates,
//! configuration churn.
//!
//! ```yaml
//! metrics:
//!   - name: trap_rate_5m
//!     every: 1m
//!     query: |
//!       SELECT d.name AS device, count(*)::float8 / 300 AS value
//!       FROM snmp_trap t JOIN device d ON d.id = t.device_id
//!       WHERE t.received_at > now() - interval '5 minutes' GROUP BY d.name
//! ```

use crate::source::{DeviceMeta, Reading, SeriesKey, SourceKind};
use rhai::Dynamic;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A metric as written in the alerting file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricQuery {
    pub name: String,
    /// How often the query runs (default 1m).
    #[serde(default)]
    pub every: Option<String>,
    /// Longest a run may take (default 10s, and never longer than `every`).
    #[serde(default)]
    pub timeout: Option<String>,
    /// SQL returning a `device` column, a numeric `value` column and any label columns.
    pub query: String,
}

fn duration(v: &Option<String>, default: Duration) -> Result<Duration, String> {
    match v {
        None => Ok(default),
        Some(s) => {
            humantime::parse_duration(s).map_err(|e| format!("{s:?} is not a duration ({e}); write e.g. 30s, 5m"))
        }
    }
}

/// Labels a metric query may not return: the engine sets them.
const RESERVED: [&str; 6] = ["alertname", "severity", "metric", "site", "role", "vendor"];

impl MetricQuery {
    pub fn every(&self) -> Duration {
        duration(&self.every, Duration::from_secs(60)).unwrap_or(Duration::from_secs(60))
    }

    pub fn timeout(&self) -> Duration {
        duration(&self.timeout, Duration::from_secs(10)).unwrap_or(Duration::from_secs(10)).min(self.every())
    }

    /// What can be checked without a database: the name, the interval, the query not being empty.
    pub fn validate(&self) -> Result<(), String> {
        let at = format!("metric {:?}", self.name);
        if self.name.is_empty() || !self.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!("{at}: a metric name is letters, digits and _"));
        }
        let every = duration(&self.every, Duration::from_secs(60)).map_err(|e| format!("{at}: every: {e}"))?;
        duration(&self.timeout, Duration::from_secs(10)).map_err(|e| format!("{at}: timeout: {e}"))?;
        if every < Duration::from_secs(1) {
            return Err(format!("{at}: every must be at least 1s"));
        }
        if self.query.trim().is_empty() {
            return Err(format!("{at}: query is empty"));
        }
        if self.query.trim_end().trim_end_matches(';').contains(';') {
            return Err(format!("{at}: query must be one statement (no `;` inside)"));
        }
        Ok(())
    }

    /// The statement actually run: the user's query as a subquery, its `device` and `value` cast,
    /// its other columns as a JSON object of labels.
    fn wrapped(&self) -> String {
        let q = self.query.trim().trim_end_matches(';');
        format!("SELECT q.device::text, q.value::float8, to_jsonb(q) - 'device' - 'value' FROM ({q}\n) AS q")
    }
}

/// One row of a metric query.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricRow {
    pub device: String,
    pub value: Option<f64>,
    pub labels: BTreeMap<String, String>,
}

/// One complete run of one metric: every series it has now (series not in it are gone).
#[derive(Debug, Clone)]
pub struct MetricBatch {
    pub metric: String,
    pub rows: Vec<MetricRow>,
}

/// The item of a metric series: the metric name and its label values, so one row per label set.
/// Every item of a metric starts with [`item_prefix`].
pub fn item(metric: &str, labels: &BTreeMap<String, String>) -> String {
    let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    item_prefix(metric) + labels.join("\u{1f}").as_str()
}

pub fn item_prefix(metric: &str) -> String {
    format!("{metric}\u{1f}")
}

/// The readings of a batch, for the devices the engine knows; rows naming unknown devices are
/// returned by name (to count and report).
pub fn readings<'a>(
    batch: &MetricBatch,
    device: impl Fn(&str) -> Option<&'a DeviceMeta>,
) -> (Vec<Reading>, Vec<String>) {
    let mut out = Vec::new();
    let mut unknown = Vec::new();
    for row in &batch.rows {
        let Some(meta) = device(&row.device) else {
            unknown.push(row.device.clone());
            continue;
        };
        let mut labels = meta.labels();
        for (k, v) in &row.labels {
            if !RESERVED.contains(&k.as_str()) && k != "device" {
                labels.insert(k.clone(), v.clone());
            }
        }
        labels.insert("metric".into(), batch.metric.clone());
        out.push(Reading {
            key: SeriesKey {
                kind: SourceKind::Metric,
                device_id: meta.id,
                item: Arc::from(item(&batch.metric, &row.labels)),
            },
            labels,
            fields: vec![row.value.map_or(Dynamic::UNIT, Dynamic::from_float)],
        });
    }
    (out, unknown)
}

fn label_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Runs one metric query once.
pub async fn run_once(pool: &deadpool_postgres::Pool, m: &MetricQuery) -> Result<Vec<MetricRow>, String> {
    let mut conn = pool.get().await.map_err(|e| format!("database connection: {e}"))?;
    let client: &mut tokio_postgres::Client = &mut conn;
    let err = |e: tokio_postgres::Error| collector::db::error_text(&e);
    let tx = client.build_transaction().read_only(true).start().await.map_err(err)?;
    let timeout = m.timeout().as_millis().max(1);
    tx.batch_execute(&format!("SET LOCAL statement_timeout = {timeout}")).await.map_err(err)?;
    let rows = tx.query(&m.wrapped(), &[]).await.map_err(err)?;
    tx.commit().await.map_err(err)?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let Some(device): Option<String> = r.get(0) else { continue };
        let labels: serde_json::Value = r.get(2);
        let labels =
            labels.as_object().map(|o| o.iter().map(|(k, v)| (k.clone(), label_text(v))).collect()).unwrap_or_default();
        out.push(MetricRow { device, value: r.get(1), labels });
    }
    Ok(out)
}

/// Prepares every query against the database, so a mistake (syntax, a missing `device` or
/// `value` column, a value that is not a number) stops the start with the metric's name.
pub async fn check_all(pool: &deadpool_postgres::Pool, metrics: &[MetricQuery]) -> Result<(), Vec<String>> {
    let conn = pool.get().await.map_err(|e| vec![format!("database connection: {e}")])?;
    let mut errors = Vec::new();
    for m in metrics {
        if let Err(e) = conn.prepare(&m.wrapped()).await {
            errors.push(format!("metric {:?}: {}", m.name, collector::db::error_text(&e)));
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// Runs every metric on its interval until `cancel`, sending each complete result. A failed run
/// is logged with the metric's name and counted; its series keep their last values.
pub fn spawn(
    pool: deadpool_postgres::Pool,
    metrics: Vec<MetricQuery>,
    tx: mpsc::Sender<MetricBatch>,
    cancel: CancellationToken,
) -> Vec<JoinHandle<()>> {
    metrics
        .into_iter()
        .map(|m| {
            let (pool, tx, cancel) = (pool.clone(), tx.clone(), cancel.clone());
            tokio::spawn(async move {
                let mut ticker = tokio::time::interval(m.every());
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                let mut failing = false;
                loop {
                    tokio::select! {
                        _ = cancel.cancelled() => return,
                        _ = ticker.tick() => {}
                    }
                    match run_once(&pool, &m).await {
                        Ok(rows) => {
                            if failing {
                                tracing::info!(metric = %m.name, "metric query succeeds again");
                            }
                            failing = false;
                            if tx.send(MetricBatch { metric: m.name.clone(), rows }).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            metrics::counter!("netwarden_metric_query_errors_total", "metric" => m.name.clone())
                                .increment(1);
                            if !failing {
                                tracing::warn!(metric = %m.name, error = %e, "metric query failed; its series keep their last values");
                            }
                            failing = true;
                        }
                    }
                }
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_become_series_of_known_devices_with_their_labels() {
        let leaf = DeviceMeta { id: 7, name: "leaf1".into(), site: Some("par1".into()), ..Default::default() };
        let batch = MetricBatch {
            metric: "uplink_p95".into(),
            rows: vec![
                MetricRow {
                    device: "leaf1".into(),
                    value: Some(0.5),
                    labels: [("interface".to_string(), "swp51".to_string()), ("site".to_string(), "x".to_string())]
                        .into(),
                },
                MetricRow { device: "ghost".into(), value: Some(1.0), labels: BTreeMap::new() },
            ],
        };
        let (readings, unknown) = readings(&batch, |n| (n == "leaf1").then_some(&leaf));
        assert_eq!(unknown, ["ghost"]);
        assert_eq!(readings.len(), 1);
        let r = &readings[0];
        assert_eq!(r.labels["metric"], "uplink_p95");
        assert_eq!(r.labels["interface"], "swp51");
        assert_eq!(r.labels["site"], "par1", "the inventory's site, not the query's");
        assert_eq!(r.key.device_id, 7);
        assert_eq!(r.fields[0].as_float().unwrap(), 0.5);
    }

    #[test]
    fn definitions_are_checked() {
        let m = |name: &str, q: &str| MetricQuery { name: name.into(), every: None, timeout: None, query: q.into() };
        assert!(m("ok_1", "SELECT 'a' AS device, 1 AS value;").validate().is_ok());
        assert!(m("bad name", "SELECT 1").validate().unwrap_err().contains("letters, digits"));
        let mut slow = m("slow", "SELECT 1");
        slow.every = Some("often".into());
        assert!(slow.validate().unwrap_err().contains("every: \"often\" is not a duration"));
        assert!(m("two", "SELECT 1; DROP TABLE device").validate().unwrap_err().contains("one statement"));
        assert!(m("w", "SELECT 1 AS value").wrapped().contains("FROM (SELECT 1 AS value\n) AS q"));
    }
}
