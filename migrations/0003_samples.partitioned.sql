-- Sample tables on plain PostgreSQL: native range partitions by day, created ahead and dropped
-- after retention by netwarden_maintain(), which the service calls periodically; 5-minute and
-- 1-hour rollups are tables refreshed by the same function. Same logical tables as the
-- TimescaleDB variant (0003_samples.timescaledb.sql), so every query works on both.

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
) PARTITION BY RANGE (time);
CREATE INDEX if_sample_interface_time_idx ON if_sample (interface_id, time DESC);
CREATE INDEX if_sample_device_time_idx ON if_sample (device_id, time DESC);

CREATE TABLE poll_sample (
    time         timestamptz NOT NULL,
    device_id    bigint NOT NULL,
    status       text NOT NULL,          -- ok | failed | skipped
    duration_ms  real,
    requests     integer,
    varbinds     integer,
    error_kind   text,
    error        text
) PARTITION BY RANGE (time);
CREATE INDEX poll_sample_device_time_idx ON poll_sample (device_id, time DESC);

CREATE TABLE if_sample_5m (
    bucket        timestamptz NOT NULL,
    device_id     bigint NOT NULL,
    interface_id  bigint NOT NULL,
    n             bigint NOT NULL,
    in_bps_avg    double precision,
    in_bps_max    double precision,
    out_bps_avg   double precision,
    out_bps_max   double precision,
    in_pps_avg    double precision,
    out_pps_avg   double precision,
    in_errors_avg double precision,
    out_errors_avg double precision,
    in_discards_avg double precision,
    out_discards_avg double precision,
    PRIMARY KEY (interface_id, bucket)
);
CREATE INDEX if_sample_5m_bucket_idx ON if_sample_5m (bucket);
CREATE TABLE if_sample_1h (LIKE if_sample_5m INCLUDING ALL);

-- Which tables are partitioned, their retention and how many days ahead to create.
CREATE TABLE netwarden_partitioned (
    table_name   text PRIMARY KEY,
    retention    interval NOT NULL,
    premake_days integer NOT NULL DEFAULT 3
);
INSERT INTO netwarden_partitioned VALUES ('if_sample', '14 days', 3), ('poll_sample', '14 days', 3);
CREATE TABLE netwarden_rollup_retention (
    table_name text PRIMARY KEY,
    retention  interval NOT NULL
);
INSERT INTO netwarden_rollup_retention VALUES ('if_sample_5m', '90 days'), ('if_sample_1h', '730 days');

CREATE FUNCTION netwarden_ensure_partitions(p_now timestamptz DEFAULT now()) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    t record;
    d date;
    part text;
    created integer := 0;
BEGIN
    FOR t IN SELECT * FROM netwarden_partitioned LOOP
        FOR i IN -1 .. t.premake_days LOOP
            d := (p_now AT TIME ZONE 'UTC')::date + i;
            part := format('%s_p%s', t.table_name, to_char(d, 'YYYYMMDD'));
            IF to_regclass(part) IS NULL THEN
                EXECUTE format(
                    'CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                    part, t.table_name,
                    (d::timestamp AT TIME ZONE 'UTC'), ((d + 1)::timestamp AT TIME ZONE 'UTC'));
                created := created + 1;
            END IF;
        END LOOP;
    END LOOP;
    RETURN created;
END $$;

CREATE FUNCTION netwarden_drop_expired(p_now timestamptz DEFAULT now()) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    t record;
    p record;
    dropped integer := 0;
BEGIN
    FOR t IN SELECT * FROM netwarden_partitioned LOOP
        FOR p IN
            SELECT c.relname,
                   to_date(substring(c.relname FROM '_p(\d{8})$'), 'YYYYMMDD') AS day
              FROM pg_inherits i
              JOIN pg_class c ON c.oid = i.inhrelid
             WHERE i.inhparent = t.table_name::regclass
        LOOP
            IF p.day IS NOT NULL
               AND ((p.day + 1)::timestamp AT TIME ZONE 'UTC') < p_now - t.retention THEN
                EXECUTE format('DROP TABLE %I', p.relname);
                dropped := dropped + 1;
            END IF;
        END LOOP;
    END LOOP;
    FOR t IN SELECT * FROM netwarden_rollup_retention LOOP
        EXECUTE format('DELETE FROM %I WHERE bucket < $1', t.table_name) USING p_now - t.retention;
    END LOOP;
    RETURN dropped;
END $$;

-- Recomputes the rollup buckets that overlap [p_from, p_to). Idempotent: re-running a window
-- gives the same rows, so a late sample is folded in by the next refresh.
CREATE FUNCTION netwarden_refresh_rollups(p_from timestamptz, p_to timestamptz) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    f5 timestamptz := date_bin('5 minutes', p_from, TIMESTAMPTZ '2000-01-01');
    f1 timestamptz := date_trunc('hour', p_from);
BEGIN
    INSERT INTO if_sample_5m
    SELECT date_bin('5 minutes', time, TIMESTAMPTZ '2000-01-01') AS bucket, device_id, interface_id,
           count(*), avg(in_bps), max(in_bps), avg(out_bps), max(out_bps), avg(in_pps), avg(out_pps),
           avg(in_errors), avg(out_errors), avg(in_discards), avg(out_discards)
      FROM if_sample
     WHERE time >= f5 AND time < p_to
     GROUP BY 1, 2, 3
    ON CONFLICT (interface_id, bucket) DO UPDATE SET
        n = EXCLUDED.n, in_bps_avg = EXCLUDED.in_bps_avg, in_bps_max = EXCLUDED.in_bps_max,
        out_bps_avg = EXCLUDED.out_bps_avg, out_bps_max = EXCLUDED.out_bps_max,
        in_pps_avg = EXCLUDED.in_pps_avg, out_pps_avg = EXCLUDED.out_pps_avg,
        in_errors_avg = EXCLUDED.in_errors_avg, out_errors_avg = EXCLUDED.out_errors_avg,
        in_discards_avg = EXCLUDED.in_discards_avg, out_discards_avg = EXCLUDED.out_discards_avg;

    INSERT INTO if_sample_1h
    SELECT date_trunc('hour', bucket), device_id, interface_id,
           sum(n), avg(in_bps_avg), max(in_bps_max), avg(out_bps_avg), max(out_bps_max),
           avg(in_pps_avg), avg(out_pps_avg), avg(in_errors_avg), avg(out_errors_avg),
           avg(in_discards_avg), avg(out_discards_avg)
      FROM if_sample_5m
     WHERE bucket >= f1 AND bucket < p_to
     GROUP BY 1, 2, 3
    ON CONFLICT (interface_id, bucket) DO UPDATE SET
        n = EXCLUDED.n, in_bps_avg = EXCLUDED.in_bps_avg, in_bps_max = EXCLUDED.in_bps_max,
        out_bps_avg = EXCLUDED.out_bps_avg, out_bps_max = EXCLUDED.out_bps_max,
        in_pps_avg = EXCLUDED.in_pps_avg, out_pps_avg = EXCLUDED.out_pps_avg,
        in_errors_avg = EXCLUDED.in_errors_avg, out_errors_avg = EXCLUDED.out_errors_avg,
        in_discards_avg = EXCLUDED.in_discards_avg, out_discards_avg = EXCLUDED.out_discards_avg;
END $$;

-- The one entry point the service calls (both back-ends define it).
CREATE FUNCTION netwarden_maintain(p_now timestamptz DEFAULT now()) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    created integer;
    dropped integer;
BEGIN
    created := netwarden_ensure_partitions(p_now);
    dropped := netwarden_drop_expired(p_now);
    PERFORM netwarden_refresh_rollups(p_now - interval '3 hours', p_now + interval '5 minutes');
    RETURN format('partitioned: %s partitions created, %s dropped, rollups refreshed', created, dropped);
END $$;

SELECT netwarden_ensure_partitions();
