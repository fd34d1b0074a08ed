//! The sample writer: one task that batches rows and writes them with binary COPY.
//!
//! Pollers hand rows over a bounded channel and never wait on the database. When the database
//! is away, rows stay buffered (up to a bound) and the writer retries with backoff; anything
//! dropped — channel full or buffer bound reached — is counted, never silent.

use chrono::{DateTime, Utc};
use deadpool_postgres::Pool;
use futures_util::pin_mut;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone, PartialEq)]
pub struct IfSampleRow {
    pub time: DateTime<Utc>,
    pub device_id: i64,
    pub interface_id: i64,
    pub admin_status: Option<i16>,
    pub oper_status: Option<i16>,
    pub speed_bps: Option<i64>,
    pub in_bps: Option<f64>,
    pub out_bps: Option<f64>,
    pub in_pps: Option<f64>,
    pub out_pps: Option<f64>,
    pub in_errors: Option<f64>,
    pub out_errors: Option<f64>,
    pub in_discards: Option<f64>,
    pub out_discards: Option<f64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PollSampleRow {
    pub time: DateTime<Utc>,
    pub device_id: i64,
    /// ok | failed | skipped
    pub status: &'static str,
    pub duration_ms: Option<f32>,
    pub requests: Option<i32>,
    pub varbinds: Option<i32>,
    pub error_kind: Option<String>,
    pub error: Option<String>,
}

#[derive(Debug, Clone)]
pub struct WriterOptions {
    /// Rows that trigger a COPY before the flush interval.
    pub batch_rows: usize,
    pub flush_interval: Duration,
    /// Rows kept while the database is unreachable; beyond that the oldest are dropped.
    pub max_buffered_rows: usize,
    /// Poll results waiting in the channel; when full, new results are dropped and counted.
    pub channel_capacity: usize,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            batch_rows: 20_000,
            flush_interval: Duration::from_secs(1),
            max_buffered_rows: 5_000_000,
            channel_capacity: 8192,
        }
    }
}

#[derive(Debug, Default)]
pub struct WriterStats {
    pub rows_written: AtomicU64,
    pub rows_dropped: AtomicU64,
    pub copies: AtomicU64,
    pub copy_errors: AtomicU64,
}

enum Msg {
    Rows(Vec<IfSampleRow>, Vec<PollSampleRow>),
    Flush(oneshot::Sender<Result<(), String>>),
}

#[derive(Clone)]
pub struct WriterHandle {
    tx: mpsc::Sender<Msg>,
    stats: Arc<WriterStats>,
}

impl WriterHandle {
    /// Hands rows to the writer without waiting. Returns false (and counts) if they were dropped.
    pub fn submit(&self, if_rows: Vec<IfSampleRow>, poll_rows: Vec<PollSampleRow>) -> bool {
        let n = (if_rows.len() + poll_rows.len()) as u64;
        match self.tx.try_send(Msg::Rows(if_rows, poll_rows)) {
            Ok(()) => true,
            Err(_) => {
                self.stats.rows_dropped.fetch_add(n, Ordering::Relaxed);
                metrics::counter!("netwarden_samples_dropped_total", "reason" => "channel_full").increment(n);
                false
            }
        }
    }

    /// Writes everything submitted so far; Err says why the last attempt failed.
    pub async fn flush(&self) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        self.tx.send(Msg::Flush(tx)).await.map_err(|_| "sample writer stopped".to_string())?;
        rx.await.map_err(|_| "sample writer stopped".to_string())?
    }

    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }
}

pub struct SampleWriter {
    pool: Pool,
    opts: WriterOptions,
    stats: Arc<WriterStats>,
    if_buf: Vec<IfSampleRow>,
    poll_buf: Vec<PollSampleRow>,
    failures: u32,
}

const IF_TYPES: [Type; 14] = [
    Type::TIMESTAMPTZ,
    Type::INT8,
    Type::INT8,
    Type::INT2,
    Type::INT2,
    Type::INT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
    Type::FLOAT8,
];
const POLL_TYPES: [Type; 8] =
    [Type::TIMESTAMPTZ, Type::INT8, Type::TEXT, Type::FLOAT4, Type::INT4, Type::INT4, Type::TEXT, Type::TEXT];

impl SampleWriter {
    /// Starts the writer task. It drains and flushes what it holds when `cancel` fires.
    pub fn spawn(pool: Pool, opts: WriterOptions, cancel: CancellationToken) -> (WriterHandle, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(opts.channel_capacity);
        let stats = Arc::new(WriterStats::default());
        let w = SampleWriter { pool, opts, stats: stats.clone(), if_buf: Vec::new(), poll_buf: Vec::new(), failures: 0 };
        let task = tokio::spawn(w.run(rx, cancel));
        (WriterHandle { tx, stats }, task)
    }

    fn buffered(&self) -> usize {
        self.if_buf.len() + self.poll_buf.len()
    }

    async fn run(mut self, mut rx: mpsc::Receiver<Msg>, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(self.opts.flush_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut retry_at: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(Msg::Rows(a, b)) => {
                        self.if_buf.extend(a);
                        self.poll_buf.extend(b);
                        self.enforce_bound();
                        if self.buffered() >= self.opts.batch_rows && retry_at.is_none_or(|t| tokio::time::Instant::now() >= t) {
                            retry_at = self.write_once().await;
                        }
                    }
                    Some(Msg::Flush(reply)) => {
                        let r = self.write_all_now().await;
                        retry_at = None;
                        let _ = reply.send(r);
                    }
                    None => break,
                },
                _ = tick.tick() => {
                    if self.buffered() > 0 && retry_at.is_none_or(|t| tokio::time::Instant::now() >= t) {
                        retry_at = self.write_once().await;
                    }
                }
                _ = cancel.cancelled() => break,
            }
        }
        // Shutdown: take what is still queued, then try a few times to store it.
        rx.close();
        while let Some(msg) = rx.recv().await {
            match msg {
                Msg::Rows(a, b) => {
                    self.if_buf.extend(a);
                    self.poll_buf.extend(b);
                }
                Msg::Flush(reply) => {
                    let _ = reply.send(Ok(()));
                }
            }
        }
        for _ in 0..5 {
            if self.buffered() == 0 || self.write_once().await.is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if self.buffered() > 0 {
            let n = self.buffered() as u64;
            self.stats.rows_dropped.fetch_add(n, Ordering::Relaxed);
            tracing::error!(rows = n, "sample writer stopped with rows it could not store");
        }
    }

    /// Keeps memory bounded during a long outage: drop the oldest rows, and count them.
    fn enforce_bound(&mut self) {
        let over = self.buffered().saturating_sub(self.opts.max_buffered_rows);
        if over > 0 {
            let from_if = over.min(self.if_buf.len());
            self.if_buf.drain(..from_if);
            let from_poll = (over - from_if).min(self.poll_buf.len());
            self.poll_buf.drain(..from_poll);
            self.stats.rows_dropped.fetch_add(over as u64, Ordering::Relaxed);
            metrics::counter!("netwarden_samples_dropped_total", "reason" => "buffer_full").increment(over as u64);
        }
    }

    async fn write_all_now(&mut self) -> Result<(), String> {
        let mut last = Ok(());
        for attempt in 0..3 {
            if self.buffered() == 0 {
                return Ok(());
            }
            match self.copy().await {
                Ok(()) => return Ok(()),
                Err(e) => {
                    last = Err(e);
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
            }
        }
        last
    }

    /// One attempt; on failure returns when to try again.
    async fn write_once(&mut self) -> Option<tokio::time::Instant> {
        match self.copy().await {
            Ok(()) => {
                self.failures = 0;
                None
            }
            Err(_) => {
                self.failures += 1;
                let backoff = Duration::from_millis(200u64 << self.failures.min(5)).min(Duration::from_secs(10));
                let jitter = Duration::from_millis(rand::random_range(0..100));
                Some(tokio::time::Instant::now() + backoff + jitter)
            }
        }
    }

    async fn copy(&mut self) -> Result<(), String> {
        let result = self.copy_inner().await;
        if let Err(e) = &result {
            self.stats.copy_errors.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("netwarden_sample_copy_errors_total").increment(1);
            tracing::warn!(error = %e, buffered = self.buffered(), "sample COPY failed; rows kept for retry");
            // A row outside every partition: create partitions for the days buffered rows fall
            // in (the function exists only on the partitioned back-end), then retry.
            if e.contains("no partition of relation")
                && let Ok(c) = self.pool.get().await
            {
                let mut days: Vec<chrono::NaiveDate> =
                    self.if_buf.iter().map(|r| r.time.date_naive()).chain(self.poll_buf.iter().map(|r| r.time.date_naive())).collect();
                days.sort_unstable();
                days.dedup();
                for day in days {
                    let at = day.and_hms_opt(12, 0, 0).expect("noon").and_utc();
                    if let Err(err) = c.execute("SELECT netwarden_ensure_partitions($1)", &[&at]).await {
                        tracing::warn!(error = %err, %day, "cannot create a partition for buffered samples");
                    }
                }
            }
        }
        result
    }

    async fn copy_inner(&mut self) -> Result<(), String> {
        // Errors keep the server's message (tokio-postgres' Display hides it behind "db error").
        let msg = |e: tokio_postgres::Error| crate::db::error_text(&e);
        let mut client = self.pool.get().await.map_err(|e| format!("no database connection: {e}"))?;
        let tx = client.transaction().await.map_err(msg)?;
        let n_if = self.if_buf.len();
        let n_poll = self.poll_buf.len();
        if n_if > 0 {
            let sink = tx
                .copy_in(
                    "COPY if_sample (time, device_id, interface_id, admin_status, oper_status, speed_bps, in_bps, out_bps,
                                     in_pps, out_pps, in_errors, out_errors, in_discards, out_discards) FROM STDIN BINARY",
                )
                .await
                .map_err(msg)?;
            let w = BinaryCopyInWriter::new(sink, &IF_TYPES);
            pin_mut!(w);
            for r in &self.if_buf {
                let row: [&(dyn ToSql + Sync); 14] = [
                    &r.time,
                    &r.device_id,
                    &r.interface_id,
                    &r.admin_status,
                    &r.oper_status,
                    &r.speed_bps,
                    &r.in_bps,
                    &r.out_bps,
                    &r.in_pps,
                    &r.out_pps,
                    &r.in_errors,
                    &r.out_errors,
                    &r.in_discards,
                    &r.out_discards,
                ];
                w.as_mut().write(&row).await.map_err(msg)?;
            }
            w.finish().await.map_err(msg)?;
        }
        if n_poll > 0 {
            let sink = tx
                .copy_in(
                    "COPY poll_sample (time, device_id, status, duration_ms, requests, varbinds, error_kind, error)
                     FROM STDIN BINARY",
                )
                .await
                .map_err(msg)?;
            let w = BinaryCopyInWriter::new(sink, &POLL_TYPES);
            pin_mut!(w);
            for r in &self.poll_buf {
                let status: &str = r.status;
                let row: [&(dyn ToSql + Sync); 8] =
                    [&r.time, &r.device_id, &status, &r.duration_ms, &r.requests, &r.varbinds, &r.error_kind, &r.error];
                w.as_mut().write(&row).await.map_err(msg)?;
            }
            w.finish().await.map_err(msg)?;
        }
        tx.commit().await.map_err(msg)?;
        self.if_buf.clear();
        self.poll_buf.clear();
        self.stats.rows_written.fetch_add((n_if + n_poll) as u64, Ordering::Relaxed);
        self.stats.copies.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("netwarden_samples_written_total").increment((n_if + n_poll) as u64);
        Ok(())
    }
}
