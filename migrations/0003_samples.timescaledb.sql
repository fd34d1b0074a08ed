-- Sample tables on TimescaleDB: hypertables with compression and retention policies, and
-- continuous aggregates for the 5-minute and 1-hour rollups. This file is the only
-- TimescaleDB-specific SQL; it defines the same tables, views and netwarden_maintain() as
-- 0003_samples.partitioned.sql, so queries, the API and Grafana panels are identical.
-- Requires timescaledb >= 2.13 (by_range) with the Community licence (compression, caggs).

CREATE TABLE if_sample (
    time          timestamptz NOT NULL,
    device_id     bigint NOT NULL,
    interface_id  bigint NOT NULL,
    admin_status  smallint,
    oper_status   smallint,
    speed_bps     bigint,
    in_bps        double precision,
    out_bps       double precision,
    in_pps        double precision,
    out_pps       double precision,
    in_errors     double precision,
    out_errors    double precision,
    in_discards   double precision,
    out_discards  double precision
);
SELECT create_hypertable('if_sample', by_range('time', INTERVAL '1 day'));
CREATE INDEX if_sample_interface_time_idx ON if_sample (interface_id, time DESC);
CREATE INDEX if_sample_device_time_idx ON if_sample (device_id, time DESC);
ALTER TABLE if_sample SET (timescaledb.compress,
    timescaledb.compress_segmentby = 'interface_id',
    timescaledb.compress_orderby = 'time DESC');
SELECT add_compression_policy('if_sample', compress_after => INTERVAL '2 days');
SELECT add_retention_policy('if_sample', drop_after => INTERVAL '14 days');

CREATE TABLE poll_sample (
    time         timestamptz NOT NULL,
    device_id    bigint NOT NULL,
    status       text NOT NULL,
    duration_ms  real,
    requests     integer,
    varbinds     integer,
    error_kind   text,
    error        text
);
SELECT create_hypertable('poll_sample', by_range('time', INTERVAL '1 day'));
CREATE INDEX poll_sample_device_time_idx ON poll_sample (device_id, time DESC);
ALTER TABLE poll_sample SET (timescaledb.compress,
    timescaledb.compress_segmentby = 'device_id',
    timescaledb.compress_orderby = 'time DESC');
SELECT add_compression_policy('poll_sample', compress_after => INTERVAL '2 days');
SELECT add_retention_policy('poll_sample', drop_after => INTERVAL '14 days');

-- WITH NO DATA is required: the runner applies each file in one transaction, and TimescaleDB
-- refuses CREATE MATERIALIZED VIEW ... WITH DATA (the default) inside a transaction block.
CREATE MATERIALIZED VIEW if_sample_5m WITH (timescaledb.continuous) AS
SELECT time_bucket(INTERVAL '5 minutes', time) AS bucket, device_id, interface_id,
       count(*) AS n,
       avg(in_bps) AS in_bps_avg, max(in_bps) AS in_bps_max,
       avg(out_bps) AS out_bps_avg, max(out_bps) AS out_bps_max,
       avg(in_pps) AS in_pps_avg, avg(out_pps) AS out_pps_avg,
       avg(in_errors) AS in_errors_avg, avg(out_errors) AS out_errors_avg,
       avg(in_discards) AS in_discards_avg, avg(out_discards) AS out_discards_avg
  FROM if_sample
 GROUP BY 1, 2, 3
WITH NO DATA;
SELECT add_continuous_aggregate_policy('if_sample_5m',
    start_offset => INTERVAL '3 hours', end_offset => INTERVAL '5 minutes',
    schedule_interval => INTERVAL '5 minutes');
SELECT add_retention_policy('if_sample_5m', drop_after => INTERVAL '90 days');

CREATE MATERIALIZED VIEW if_sample_1h WITH (timescaledb.continuous) AS
SELECT time_bucket(INTERVAL '1 hour', bucket) AS bucket, device_id, interface_id,
       sum(n)::bigint AS n,  -- sum(bigint) is numeric; bigint like if_sample_1h.n on the partitioned back-end
       avg(in_bps_avg) AS in_bps_avg, max(in_bps_max) AS in_bps_max,
       avg(out_bps_avg) AS out_bps_avg, max(out_bps_max) AS out_bps_max,
       avg(in_pps_avg) AS in_pps_avg, avg(out_pps_avg) AS out_pps_avg,
       avg(in_errors_avg) AS in_errors_avg, avg(out_errors_avg) AS out_errors_avg,
       avg(in_discards_avg) AS in_discards_avg, avg(out_discards_avg) AS out_discards_avg
  FROM if_sample_5m
 GROUP BY 1, 2, 3
WITH NO DATA;
SELECT add_continuous_aggregate_policy('if_sample_1h',
    start_offset => INTERVAL '1 day', end_offset => INTERVAL '1 hour',
    schedule_interval => INTERVAL '30 minutes');
SELECT add_retention_policy('if_sample_1h', drop_after => INTERVAL '730 days');

-- Chunks, compression, retention and rollups are TimescaleDB's background jobs here.
CREATE FUNCTION netwarden_maintain(p_now timestamptz DEFAULT now()) RETURNS text
LANGUAGE sql AS $$ SELECT 'timescaledb: policies run as background jobs'::text $$;
