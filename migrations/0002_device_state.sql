-- Current state the collector keeps per device and per interface (updated in place: this is
-- state, not samples; every change that matters also lands in a sample table).

CREATE TABLE device_state (
    device_id            bigint PRIMARY KEY REFERENCES device(id) ON DELETE CASCADE,
    status               text NOT NULL DEFAULT 'unknown' CHECK (status IN ('unknown', 'up', 'down')),
    status_since         timestamptz NOT NULL DEFAULT now(),
    last_poll            timestamptz,
    last_success         timestamptz,
    last_error_kind      text,
    last_error           text,
    consecutive_failures integer NOT NULL DEFAULT 0,
    polls_total          bigint NOT NULL DEFAULT 0,
    polls_failed         bigint NOT NULL DEFAULT 0,
    polls_skipped        bigint NOT NULL DEFAULT 0,
    sys_name             text,
    sys_descr            text,
    sys_object_id        text,
    sys_uptime_ticks     bigint,
    last_poll_duration_ms real
);

CREATE TABLE interface (
    id                 bigserial PRIMARY KEY,
    device_id          bigint NOT NULL REFERENCES device(id) ON DELETE CASCADE,
    -- identity that survives ifIndex renumbering: ifName, else ifDescr, else "ifIndex.N"
    name               text NOT NULL,
    if_index           integer NOT NULL,
    descr              text,
    alias              text,
    if_type            integer,
    mtu                integer,
    speed_bps          bigint,
    admin_status       smallint,
    oper_status        smallint,
    last_change_ticks  bigint,
    first_seen         timestamptz NOT NULL DEFAULT now(),
    last_seen          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (device_id, name)
);
CREATE INDEX interface_device_idx ON interface (device_id, if_index);
