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
    /// The cluster instance that polled, recorded in every `poll_sample` row this writer writes
    /// (`None` outside a cluster).
    pub instance: Option<String>,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            batch_rows: 20_000,
            flush_interval: Duration::from_secs(1),
            max_buffered_rows: 5_000_000,
            channel_capacity: 8192,
            instance: None,
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

/// The column types of an `if_sample` COPY row, in [`if_row_values`] order.
pub const IF_TYPES: [Type; 14] = [
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
/// The column types of a `poll_sample` COPY row, in [`poll_row_values`] order.
pub const POLL_TYPES: [Type; 9] = [
    Type::TIMESTAMPTZ,
    Type::INT8,
    Type::TEXT,
    Type::FLOAT4,
    Type::INT4,
    Type::INT4,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
];

impl SampleWriter {
    /// Starts the writer task. It drains and flushes what it holds when `cancel` fires.
    pub fn spawn(
        pool: Pool,
        opts: WriterOptions,
        cancel: CancellationToken,
    ) -> (WriterHandle, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(opts.channel_capacity);
        let stats = Arc::new(WriterStats::default());
        let w =
            SampleWriter { pool, opts, stats: stats.clone(), if_buf: Vec::new(), poll_buf: Vec::new(), failures: 0 };
        let task = tokio::spawn(w.run(rx, cancel));
        (WriterHandle { tx, stats }, task)
    }

    fn buffered(&self) -> usize {
        self.if_buf.len() + self.poll_buf.len()
    }

    /// The loop keeps taking rows while a COPY runs (in its own task): a burst of polls during a
    /// slow COPY lands in the buffer, not on the floor of a full channel.
    async fn run(mut self, mut rx: mpsc::Receiver<Msg>, cancel: CancellationToken) {
        let mut tick = tokio::time::interval(self.opts.flush_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut retry_at: Option<tokio::time::Instant> = None;
        let mut in_flight: Option<tokio::task::JoinHandle<(Batch, Result<(), String>)>> = None;
        let mut waiters: Vec<oneshot::Sender<Result<(), String>>> = Vec::new();
        loop {
            let mut due = false;
            tokio::select! {
                msg = rx.recv() => match msg {
                    Some(Msg::Rows(a, b)) => {
                        self.if_buf.extend(a);
                        self.poll_buf.extend(b);
                        self.enforce_bound();
                        due = self.buffered() >= self.opts.batch_rows;
                    }
                    Some(Msg::Flush(reply)) => {
                        if self.buffered() == 0 && in_flight.is_none() {
                            let _ = reply.send(Ok(()));
                        } else {
                            waiters.push(reply);
                            retry_at = None; // a flush asks for an attempt now
                        }
                    }
                    None => break,
                },
                done = async { in_flight.as_mut().expect("guarded").await }, if in_flight.is_some() => {
                    in_flight = None;
                    let (batch, result) = match done {
                        Ok(d) => d,
                        Err(e) => (Batch::default(), Err(format!("COPY task failed: {e}"))),
                    };
                    match result {
                        Ok(()) => {
                            self.failures = 0;
                            retry_at = None;
                            if self.buffered() == 0 {
                                for w in waiters.drain(..) {
                                    let _ = w.send(Ok(()));
                                }
                            }
                        }
                        Err(e) => {
                            self.requeue(batch);
                            self.failures += 1;
                            let backoff = Duration::from_millis(200u64 << self.failures.min(5)).min(Duration::from_secs(10));
                            retry_at = Some(tokio::time::Instant::now() + backoff + Duration::from_millis(rand::random_range(0..100)));
                            for w in waiters.drain(..) {
                                let _ = w.send(Err(e.clone()));
                            }
                        }
                    }
                    due = self.buffered() >= self.opts.batch_rows || !waiters.is_empty();
                }
                _ = tick.tick() => due = self.buffered() > 0,
                _ = cancel.cancelled() => break,
            }
            let allowed = retry_at.is_none_or(|t| tokio::time::Instant::now() >= t);
            if (due || !waiters.is_empty()) && allowed && in_flight.is_none() && self.buffered() > 0 {
                in_flight = Some(self.start_copy());
            }
        }
        // Shutdown: take what is still queued, let the running COPY end, then try a few times.
        rx.close();
        while let Some(msg) = rx.recv().await {
            match msg {
                Msg::Rows(a, b) => {
                    self.if_buf.extend(a);
                    self.poll_buf.extend(b);
                }
                Msg::Flush(reply) => waiters.push(reply),
            }
        }
        if let Some(task) = in_flight.take()
            && let Ok((batch, Err(_))) = task.await
        {
            self.requeue(batch);
        }
        let mut last = Ok(());
        for _ in 0..5 {
            if self.buffered() == 0 {
                break;
            }
            let (batch, r) = self.start_copy().await.unwrap_or_else(|e| (Batch::default(), Err(e.to_string())));
            if let Err(e) = &r {
                self.requeue(batch);
                last = Err(e.clone());
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
        if self.buffered() > 0 {
            let n = self.buffered() as u64;
            self.stats.rows_dropped.fetch_add(n, Ordering::Relaxed);
            tracing::error!(rows = n, "sample writer stopped with rows it could not store");
        }
        for w in waiters {
            let _ = w.send(if self.buffered() == 0 { Ok(()) } else { last.clone() });
        }
    }

    /// Hands the buffered rows to a COPY task.
    fn start_copy(&mut self) -> tokio::task::JoinHandle<(Batch, Result<(), String>)> {
        let batch = Batch {
            if_rows: std::mem::take(&mut self.if_buf),
            poll_rows: std::mem::take(&mut self.poll_buf),
            instance: self.opts.instance.clone(),
        };
        let (pool, stats) = (self.pool.clone(), self.stats.clone());
        tokio::spawn(async move {
            let r = copy_batch(&pool, &stats, &batch).await;
            (batch, r)
        })
    }

    /// Puts the rows of a failed COPY back in front of what arrived since (order kept).
    fn requeue(&mut self, batch: Batch) {
        let mut if_rows = batch.if_rows;
        if_rows.append(&mut self.if_buf);
        self.if_buf = if_rows;
        let mut poll_rows = batch.poll_rows;
        poll_rows.append(&mut self.poll_buf);
        self.poll_buf = poll_rows;
        self.enforce_bound();
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
}

/// Rows handed to one COPY; they come back with its result, so a failure loses nothing.
#[derive(Default)]
struct Batch {
    if_rows: Vec<IfSampleRow>,
    poll_rows: Vec<PollSampleRow>,
    instance: Option<String>,
}

/// One COPY attempt of a batch, with the bookkeeping around it.
async fn copy_batch(pool: &Pool, stats: &WriterStats, batch: &Batch) -> Result<(), String> {
    let result = copy_inner(pool, batch).await;
    match &result {
        Ok(()) => {
            let n = (batch.if_rows.len() + batch.poll_rows.len()) as u64;
            stats.rows_written.fetch_add(n, Ordering::Relaxed);
            stats.copies.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("netwarden_samples_written_total").increment(n);
        }
        Err(e) => {
            stats.copy_errors.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("netwarden_sample_copy_errors_total").increment(1);
            tracing::warn!(error = %e, rows = batch.if_rows.len() + batch.poll_rows.len(), "sample COPY failed; rows kept for retry");
            // A row outside every partition: create partitions for the days the rows fall in
            // (the function exists only on the partitioned back-end), then retry.
            if e.contains("no partition of relation")
                && let Ok(c) = pool.get().await
            {
                let mut days: Vec<chrono::NaiveDate> = batch
                    .if_rows
                    .iter()
                    .map(|r| r.time.date_naive())
                    .chain(batch.poll_rows.iter().map(|r| r.time.date_naive()))
                    .collect();
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
    }
    result
}

/// One `if_sample` row as the writer's binary COPY sends it (types: [`IF_TYPES`]); public so the
/// poll CPU benchmark encodes exactly what the writer encodes.
pub fn if_row_values(r: &IfSampleRow) -> [&(dyn ToSql + Sync); 14] {
    [
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
    ]
}

/// One `poll_sample` row as the writer's binary COPY sends it (types: [`POLL_TYPES`]); `instance` is
/// the cluster instance that polled (NULL outside a cluster).
pub fn poll_row_values<'a>(r: &'a PollSampleRow, instance: &'a Option<String>) -> [&'a (dyn ToSql + Sync); 9] {
    [&r.time, &r.device_id, &r.status, &r.duration_ms, &r.requests, &r.varbinds, &r.error_kind, &r.error, instance]
}

async fn copy_inner(pool: &Pool, batch: &Batch) -> Result<(), String> {
    let (if_rows, poll_rows, instance) = (&batch.if_rows, &batch.poll_rows, &batch.instance);
    // Errors keep the server's message (tokio-postgres' Display hides it behind "db error").
    let msg = |e: tokio_postgres::Error| crate::db::error_text(&e);
    let mut client = pool.get().await.map_err(|e| format!("no database connection: {e}"))?;
    let tx = client.transaction().await.map_err(msg)?;
    let n_if = if_rows.len();
    let n_poll = poll_rows.len();
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
        for r in if_rows {
            w.as_mut().write(&if_row_values(r)).await.map_err(msg)?;
        }
        w.finish().await.map_err(msg)?;
    }
    if n_poll > 0 {
        let sink = tx
            .copy_in(
                "COPY poll_sample (time, device_id, status, duration_ms, requests, varbinds, error_kind, error, instance)
                     FROM STDIN BINARY",
            )
            .await
            .map_err(msg)?;
        let w = BinaryCopyInWriter::new(sink, &POLL_TYPES);
        pin_mut!(w);
        for r in poll_rows {
            w.as_mut().write(&poll_row_values(r, instance)).await.map_err(msg)?;
        }
        w.finish().await.map_err(msg)?;
    }
    tx.commit().await.map_err(msg)?;
    Ok(())
}
